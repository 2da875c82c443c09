/*
 * presentation_verify.c - checking a presentation for a verifier
 * (xeps/documents.md §8): the format checks of sdjwt.h with the trusted
 * issuers' keys and their status lists, bound to the asker (aud) and the
 * nonce it gave, plus what the format cannot know: whether this
 * presentation was checked before (a replay).
 *
 * The replay store keeps, under the host, the (audience, nonce) of every
 * presentation accepted, for as long as its key-binding JWT could still
 * pass as fresh; the sweep drops older ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vestnik/i18n.h>

#include "jws.h"
#include "mod_credentials.h"

#define SEEN_STORE "credentials_seen"
#define LEEWAY 30

static const vn_cred_key *trusted_key(const char *iss, const char *kid, vn_cred_alg alg, void *ud)
{
    (void)kid;
    (void)ud;
    const cred_issuer *is = cred_issuer_by_iss(iss);
    return is && vn_cred_key_alg(is->key) == alg ? is->key : NULL;
}

static int local_status(const char *uri, uint64_t idx, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < cred.n_issuers; i++) {
        char *own = cred_status_uri(&cred.issuers[i]);
        bool match = strcmp(own, uri) == 0 && !cred.issuers[i].self_signed;
        free(own);
        if (match)
            return cred_status_get(&cred.issuers[i], idx);
    }
    return VN_CRED_ESTATUS;
}

int presentation_verify(const char *host, const char *presentation, const char *aud,
                        const char *nonce, vn_sdjwt_verified *r)
{
    vn_sdjwt_verify_params p = {
        .issuer_key = trusted_key,
        .status = local_status,
        .require_kb = true,
        .aud = aud,
        .nonce = nonce,
        .leeway = LEEWAY,
        .kb_max_age = cred.limits.max_presentation_age,
    };
    int rc = vn_sdjwt_verify(presentation, strlen(presentation), &p, r);
    if (rc != 0)
        return rc;
    /* One presentation per verifier and nonce: the key binding's (aud,
     * nonce), not sd_hash, which is the same for every presentation of the
     * same claims, nor the bytes, which a re-encoded signature changes. */
    vn_buf bound;
    vn_buf_init(&bound);
    vn_buf_printf(&bound, "%s\n%s", aud ? aud : "", nonce ? nonce : "");
    char *key = vn_b64url_sha256(bound.data, bound.len);
    vn_buf_free(&bound);
    vn_store *s = vn_server_store();
    vn_buf seen;
    vn_buf_init(&seen);
    if (vn_store_get(s, host, "", SEEN_STORE, key, &seen) == VN_STORE_OK) {
        rc = PRESENTATION_EREPLAYED;
    } else {
        char when[24];
        int n = snprintf(when, sizeof when, "%lld", (long long)r->kb_iat);
        if (vn_store_put(s, host, "", SEEN_STORE, key, when, (size_t)n) != VN_STORE_OK)
            rc = VN_CRED_EIO;
    }
    vn_buf_free(&seen);
    free(key);
    return rc;
}

typedef struct forget {
    int64_t before;
    json_t *old;
} forget;

static bool find_old(const char *key, const void *value, size_t len, void *ud)
{
    forget *f = ud;
    char text[24];
    snprintf(text, sizeof text, "%.*s", (int)(len < sizeof text ? len : sizeof text - 1),
             (const char *)value);
    if (strtoll(text, NULL, 10) < f->before)
        json_array_append_new(f->old, json_string(key));
    return true;
}

void presentation_forget_old(void)
{
    forget f = {.before = vn_now_us() / 1000000 - cred.limits.max_presentation_age - 2 * LEEWAY};
    for (const char *const *h = vn_local_hosts(); *h; h++) {
        f.old = json_array();
        vn_store_foreach(vn_server_store(), *h, "", SEEN_STORE, find_old, &f);
        size_t i;
        const json_t *k;
        json_array_foreach(f.old, i, k)
        {
            vn_store_delete(vn_server_store(), *h, "", SEEN_STORE, json_string_value(k));
        }
        json_decref(f.old);
    }
}

const char *presentation_condition(int err)
{
    switch (err) {
    case VN_CRED_EISSUER: return "untrusted-issuer";
    case VN_CRED_ESIGNATURE:
    case VN_CRED_EKBSIG:
    case VN_CRED_EALG:
    case VN_CRED_EKEY: return "bad-signature";
    case VN_CRED_EUNSIGNED:
    case VN_CRED_EDUPLICATE:
    case VN_CRED_ECONFLICT:
    case VN_CRED_ESDHASH: return "tampered";
    case VN_CRED_EAUD: return "wrong-audience";
    case VN_CRED_ENONCE: return "wrong-nonce";
    case VN_CRED_EEXPIRED:
    case VN_CRED_ENOTYET:
    case VN_CRED_ESTALE: return "expired";
    case VN_CRED_EREVOKED: return "revoked";
    case VN_CRED_ESUSPENDED: return "suspended";
    case VN_CRED_ESTATUS: return "status-unavailable";
    case PRESENTATION_EREPLAYED: return "replayed";
    default: return "malformed";
    }
}

const char *presentation_strerror(int err)
{
    return err == PRESENTATION_EREPLAYED ? N_("This presentation was checked before")
                                         : vn_cred_strerror(err);
}

void presentation_verify_error(const vn_stanza *iq, int err)
{
    const char *cond = presentation_condition(err);
    bool malformed = strcmp(cond, "malformed") == 0;
    cred_iq_error(iq, "modify", malformed ? "bad-request" : "not-acceptable", cond,
                  presentation_strerror(err));
}

/* A claim's value as text: strings as they are, the rest as JSON. */
char *presentation_value_text(const json_t *v)
{
    if (json_is_string(v))
        return vn_strdup(json_string_value(v));
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return text ? text : vn_strdup("");
}

void presentation_verify_iq(vn_event *ev, const char *host, const vn_stanza *payload)
{
    const char *nonce = vn_stanza_attr(payload, "nonce");
    const char *presentation = vn_stanza_child_text(payload, "presentation", CRED_NS);
    if (!nonce || !presentation || !*presentation) {
        cred_iq_error(ev->stanza, "modify", "bad-request", "malformed",
                      N_("Give the presentation and the nonce you asked with"));
        return;
    }
    char *aud = vn_asprintf("xmpp:%s", ev->from->bare);
    vn_sdjwt_verified r;
    int rc = presentation_verify(host, presentation, aud, nonce, &r);
    if (rc != 0) {
        vn_log_info("credentials: a presentation for %s refused: %s (%s)", ev->from->bare,
                    rc == PRESENTATION_EREPLAYED ? "replayed" : vn_cred_errname(rc), r.detail);
        presentation_verify_error(ev->stanza, rc);
    } else {
        vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
        vn_stanza *v = vn_stanza_add_child(reply, "verified", CRED_NS);
        vn_stanza_set_attr(v, "type", r.vct);
        vn_stanza_set_attr(v, "issuer", r.iss);
        size_t i;
        const json_t *path;
        json_array_foreach(r.disclosed, i, path)
        {
            const char *name = json_string_value(path);
            char *text = presentation_value_text(json_object_get(r.claims, name));
            vn_stanza_set_attr(vn_stanza_add_text_child(v, "claim", CRED_NS, text), "name", name);
            free(text);
        }
        vn_route(reply);
    }
    vn_sdjwt_verified_free(&r);
    free(aud);
}
