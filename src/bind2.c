/*
 * bind2.c - XEP-0386 Bind 2: resource binding inside SASL2 (sasl2.c), with
 * the session's features enabled in the same step.
 *
 * The core enables stream management itself (c2s_sm.c); carbons, CSI and
 * whatever else a module serves come through two hooks of
 * include/vestnik/module.h: "bind2/features" lists them in the stream
 * feature, "bind2/inline" hands each request of a <bind/> to its module
 * once the session is bound.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "c2s_internal.h"
#include "sasl2.h"
#include "sessions.h"
#include "vestnik/jid.h"

/* Longest client tag kept in a resource, in bytes. */
#define MAX_TAG 64
/* Hex digits of the generated part of a resource. */
#define ID_DIGITS 12

void vn_bind2_add_feature(const char *host, vn_stanza *inline_el)
{
    vn_stanza *bind = vn_stanza_add_child(inline_el, "bind", VN_NS_BIND2);
    vn_stanza *features = vn_stanza_add_child(bind, "inline", VN_NS_BIND2);
    vn_stanza *sm = vn_stanza_add_child(features, "feature", VN_NS_BIND2);
    vn_stanza_set_attr(sm, "var", VN_NS_SM);
    vn_event ev = {.host = host, .data = features};
    vn_hook_run("bind2/features", &ev);
}

/* "<tag>/<id>": the id is the start of SHA-256 over the account and the
 * client instance (stable for it, and not revealing its user-agent id);
 * random without an instance. A tag that is not a valid resource, or too
 * long, is left out. */
static char *make_resource(const vn_c2s *s, const char *tag, const char *ua_id)
{
    unsigned char digest[32];
    char id[ID_DIGITS + 1];

    if (ua_id) {
        char *input = vn_asprintf("%s@%s\n%s\n%s", s->user, s->host, ua_id, tag ? tag : "");
        EVP_Digest(input, strlen(input), digest, NULL, EVP_sha256(), NULL);
        free(input);
    } else if (RAND_bytes(digest, sizeof digest) != 1) {
        abort();
    }
    for (size_t i = 0; i < ID_DIGITS / 2; i++)
        snprintf(id + 2 * i, 3, "%02x", digest[i]);
    char *prepared = tag && strlen(tag) <= MAX_TAG ? vn_jid_prep_resource(tag) : NULL;
    char *resource = prepared ? vn_asprintf("%s/%s", prepared, id) : vn_strdup(id);
    free(prepared);
    return resource;
}

vn_stanza *vn_bind2_bind(vn_c2s *s, const vn_stanza *bind, const char *ua_id)
{
    const char *condition = "bad-request";
    char *resource = make_resource(s, vn_stanza_child_text(bind, "tag", VN_NS_BIND2), ua_id);

    s->session = vn_sessions_bind(s, s->host, s->user, resource, &condition);
    free(resource);
    if (!s->session) {
        vn_log_info("c2s: Bind 2 for %s@%s failed: %s", s->user, s->host, condition);
        return NULL;
    }
    vn_stanza *bound = vn_stanza_new("bound", VN_NS_BIND2);
    for (vn_stanza *el = vn_stanza_first_element(bind); el; el = vn_stanza_next_element(el)) {
        if (vn_stanza_is(el, "tag", VN_NS_BIND2))
            continue;
        if (vn_stanza_is(el, "enable", VN_NS_SM)) {
            vn_stanza_append(bound, vn_c2s_sm_enable(s, el));
            continue;
        }
        vn_event ev = {.stanza = el,
                       .session = s->session,
                       .from = vn_session_jid(s->session),
                       .host = s->host,
                       .data = bound};
        if (vn_hook_run("bind2/inline", &ev) != VN_HANDLED)
            vn_log_debug("c2s %s: Bind 2 request <%s xmlns='%s'> not served",
                         vn_session_jid(s->session)->full, vn_stanza_name(el),
                         vn_stanza_ns(el) ? vn_stanza_ns(el) : "");
    }
    vn_c2s_start_session_timer(s);
    return bound;
}
