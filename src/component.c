/*
 * component.c - external components (XEP-0114): the accept side of
 * jabber:component:accept streams, and routing to them.
 *
 * The stream: the component opens a stream to its domain, we answer with
 * a header carrying a fresh id, it sends <handshake/> with
 * hex(SHA-1(id + secret)), we answer <handshake/>. From then on it may
 * send stanzas from any JID at its domain (anything else is <invalid-from/>)
 * and gets every stanza routed to its domain. A wrong secret is a
 * <not-authorized/> stream error and a log line naming the domain and
 * address. While a component is away, stanzas for it are bounced with
 * <service-unavailable/> (durable queueing comes with the services bus).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "component.h"
#include "server.h"
#include "shaper.h"
#include "vestnik/module.h"
#include "xml_stream.h"

typedef struct comp_stream comp_stream;

typedef struct component {
    char *domain, *secret, *host, *name;
    comp_stream *stream; /* after a successful handshake */
    UT_hash_handle hh;
} component;

struct comp_stream {
    vn_xml_stream *xs;
    vn_conn *conn;
    component *comp; /* once authenticated */
    char *domain;    /* the stream header's 'to' */
    char stream_id[33];
    bool header_sent;
    uv_timer_t timer; /* handshake timeout */
    vn_shaper shaper; /* limits.component_stanza_rate */
    comp_stream *prev, *next;
};

static component *components;
static comp_stream *all_streams;

/* ---- output and closing ---- */

static void stream_write(comp_stream *cs, const char *data, size_t len)
{
    vn_xml_stream_write(cs->xs, data, len);
}

static void write_stanza(comp_stream *cs, const vn_stanza *st)
{
    vn_xml_stream_write_element(cs->xs, st, VN_NS_COMPONENT);
}

static void send_header(comp_stream *cs)
{
    char *hdr = vn_asprintf("<?xml version='1.0'?><stream:stream "
                            "xmlns='jabber:component:accept' "
                            "xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='%s'>",
                            cs->stream_id, cs->domain ? cs->domain : vn_local_hosts()[0]);
    cs->header_sent = true;
    stream_write(cs, hdr, strlen(hdr));
    free(hdr);
}

static void detach(comp_stream *cs)
{
    if (cs->comp && cs->comp->stream == cs) {
        vn_log_info("component %s disconnected", cs->comp->domain);
        cs->comp->stream = NULL;
    }
    cs->comp = NULL;
}

static void stream_close(comp_stream *cs, const char *condition, const char *text)
{
    if (vn_xml_stream_closing(cs->xs))
        return;
    if (!cs->header_sent)
        send_header(cs);
    if (condition) {
        vn_stanza *err = vn_stanza_new("error", VN_NS_STREAMS);
        vn_stanza_add_child(err, condition, VN_NS_STREAM_ERRORS);
        if (text)
            vn_stanza_add_text_child(err, "text", VN_NS_STREAM_ERRORS, text);
        write_stanza(cs, err);
        vn_stanza_free(err);
        vn_log_info("component %s: stream error %s%s%s",
                    cs->domain ? cs->domain : vn_conn_peer_ip(cs->conn), condition,
                    text ? ": " : "", text ? text : "");
    }
    detach(cs);
    vn_xml_stream_close(cs->xs, true);
}

/* ---- the handshake ---- */

static void on_stream_open(void *ud, const vn_stanza *header)
{
    comp_stream *cs = ud;
    const char *ns = vn_stanza_attr(header, "xmlns");
    const char *to = vn_stanza_attr(header, "to");
    component *comp = NULL;

    cs->domain = to ? vn_jid_prep_domain(to) : NULL;
    if (cs->domain)
        HASH_FIND_STR(components, cs->domain, comp);
    send_header(cs);
    if (!vn_stanza_is(header, "stream", VN_NS_STREAMS) || !ns || strcmp(ns, VN_NS_COMPONENT) != 0)
        stream_close(cs, "invalid-namespace", NULL);
    else if (!comp)
        stream_close(cs, "host-unknown", "No component is configured for that domain");
}

static bool handshake_valid(const comp_stream *cs, const component *comp, const char *digest)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char expected[2 * EVP_MAX_MD_SIZE + 1];
    char *input = vn_asprintf("%s%s", cs->stream_id, comp->secret);

    EVP_Digest(input, strlen(input), md, &md_len, EVP_sha1(), NULL);
    OPENSSL_cleanse(input, strlen(input));
    free(input);
    for (unsigned i = 0; i < md_len; i++)
        snprintf(expected + 2 * i, 3, "%02x", md[i]);
    size_t len = 2 * (size_t)md_len;
    char given[2 * EVP_MAX_MD_SIZE + 1] = {0};
    for (size_t i = 0; i < len && digest[i]; i++) /* compare in lower case */
        given[i] = (char)(digest[i] >= 'A' && digest[i] <= 'F' ? digest[i] + 32 : digest[i]);
    return strlen(digest) == len && CRYPTO_memcmp(given, expected, len) == 0;
}

static void handle_handshake(comp_stream *cs, const vn_stanza *st)
{
    component *comp = NULL;

    if (cs->domain)
        HASH_FIND_STR(components, cs->domain, comp);
    if (!vn_stanza_is(st, "handshake", VN_NS_COMPONENT) || !comp) {
        stream_close(cs, "not-authorized", "Send the handshake first");
        return;
    }
    if (!handshake_valid(cs, comp, vn_stanza_text(st))) {
        vn_log_warn("component %s: wrong secret from %s", comp->domain, vn_conn_peer_ip(cs->conn));
        stream_close(cs, "not-authorized", "Wrong secret");
        return;
    }
    if (comp->stream) {
        vn_log_info("component %s connected again: replacing the older connection", comp->domain);
        stream_close(comp->stream, "conflict", "Replaced by a new connection");
    }
    comp->stream = cs;
    cs->comp = comp;
    uv_timer_stop(&cs->timer);
    stream_write(cs, "<handshake/>", 12);
    vn_log_info("component %s connected from %s", comp->domain, vn_conn_peer_ip(cs->conn));
}

/* ---- stanzas from the component ---- */

static void handle_stanza(comp_stream *cs, vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    vn_jid *from = vn_jid_parse(vn_stanza_attr(st, "from") ? vn_stanza_attr(st, "from") : "");
    vn_jid *to = vn_jid_parse(vn_stanza_attr(st, "to") ? vn_stanza_attr(st, "to") : "");

    if (!vn_stanza_is(st, NULL, VN_NS_COMPONENT) ||
        (strcmp(name, "message") != 0 && strcmp(name, "presence") != 0 &&
         strcmp(name, "iq") != 0)) {
        stream_close(cs, "unsupported-stanza-type", NULL);
    } else if (!from || strcmp(from->domain, cs->comp->domain) != 0) {
        stream_close(cs, "invalid-from", "Send only from JIDs at your own domain");
    } else if (!to) {
        vn_stanza *reply = vn_stanza_error_reply(st, "modify", "jid-malformed", NULL);
        if (reply)
            write_stanza(cs, reply);
        vn_stanza_free(reply);
    } else {
        vn_stanza_replace_ns(st, VN_NS_COMPONENT, VN_NS_CLIENT);
        vn_stanza_set_attr(st, "from", from->full);
        vn_stanza_set_attr(st, "to", to->full);
        vn_route(st);
        st = NULL;
    }
    vn_stanza_free(st);
    vn_jid_free(from);
    vn_jid_free(to);
}

static void on_stanza(void *ud, vn_stanza *st)
{
    comp_stream *cs = ud;

    if (!cs->comp) {
        handle_handshake(cs, st);
        vn_stanza_free(st);
    } else {
        const vn_config *cfg = vn_srv.cfg;
        const vn_shaper_limits lim = {cfg->component_stanza_rate, cfg->component_stanza_burst,
                                      cfg->max_throttle_time};
        if (vn_shaper_stanza(&cs->shaper, &lim, cs->comp->domain)) {
            handle_stanza(cs, st);
            return;
        }
        stream_close(cs, "policy-violation", "Stanza rate limit exceeded: slow down");
        vn_stanza_free(st);
    }
}

static void on_stream_close(void *ud)
{
    stream_close(ud, NULL, NULL);
}

static void on_xml_error(void *ud, const char *condition, const char *text)
{
    stream_close(ud, condition, text);
}

/* ---- connection ---- */

/* Load shaping (shaper.h): stop reading after this stanza, or go on. */
static void shaper_pause(void *ud, bool paused)
{
    vn_xml_stream_pause(((comp_stream *)ud)->xs, paused);
}

static void on_overflow(void *ud)
{
    comp_stream *cs = ud;
    vn_log_warn("component %s: output buffer full, disconnecting",
                cs->domain ? cs->domain : vn_conn_peer_ip(cs->conn));
}

static void free_stream(uv_handle_t *h)
{
    free(h->data);
}

static void on_closed(void *ud, const char *reason)
{
    comp_stream *cs = ud;

    detach(cs);
    if (cs->prev)
        cs->prev->next = cs->next;
    else
        all_streams = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    vn_shaper_cleanup(&cs->shaper);
    free(cs->domain);
    uv_timer_stop(&cs->timer);
    uv_close((uv_handle_t *)&cs->timer, free_stream);
}

static void on_handshake_timeout(uv_timer_t *t)
{
    stream_close(t->data, "connection-timeout", "Handshake not completed in time");
}

static const vn_xml_stream_handler stream_handler = {
    .stream_open = on_stream_open,
    .element = on_stanza,
    .stream_close = on_stream_close,
    .error = on_xml_error,
    .overflow = on_overflow,
    .closed = on_closed,
};

void vn_component_accept(vn_conn *c, const vn_listener_conf *lc, void *ud)
{
    const vn_config *cfg = vn_srv.cfg;
    comp_stream *cs = vn_alloc(sizeof *cs);
    unsigned char rnd[16];

    cs->conn = c;
    cs->xs = vn_xml_stream_accept(c, &stream_handler, cs);
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        abort();
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(cs->stream_id + 2 * i, 3, "%02x", rnd[i]);
    vn_shaper_init(&cs->shaper, "component", shaper_pause, cs);
    uv_timer_init(vn_srv.loop, &cs->timer);
    cs->timer.data = cs;
    uv_timer_start(&cs->timer, on_handshake_timeout, (uint64_t)cfg->handshake_timeout * 1000, 0);
    cs->next = all_streams;
    if (all_streams)
        all_streams->prev = cs;
    all_streams = cs;
    vn_xml_stream_start(cs->xs);
}

/* ---- routing and configuration ---- */

bool vn_components_route(const vn_stanza *st, const vn_jid *to)
{
    component *comp = NULL;

    HASH_FIND_STR(components, to->domain, comp);
    if (!comp)
        return false;
    if (comp->stream)
        write_stanza(comp->stream, st);
    else if (strcmp(vn_stanza_name(st), "presence") != 0)
        vn_route_error(st, "cancel", "service-unavailable", "The service is not connected");
    return true;
}

static void component_free(component *comp)
{
    if (comp->stream)
        stream_close(comp->stream, "host-gone", "The component was removed");
    vn_disco_remove_item(comp->host, comp->domain);
    HASH_DEL(components, comp);
    free(comp->domain);
    free(comp->secret);
    free(comp->host);
    free(comp->name);
    free(comp);
}

void vn_components_configure(const vn_config *cfg)
{
    component *comp, *tmp;

    HASH_ITER(hh, components, comp, tmp)
    {
        bool kept = false;
        for (size_t i = 0; i < cfg->n_components && !kept; i++)
            kept = strcmp(cfg->components[i].domain, comp->domain) == 0;
        if (!kept)
            component_free(comp);
    }
    for (size_t i = 0; i < cfg->n_components; i++) {
        const vn_component_conf *cc = &cfg->components[i];
        HASH_FIND_STR(components, cc->domain, comp);
        if (comp) {
            vn_disco_remove_item(comp->host, comp->domain);
            free(comp->secret);
            free(comp->host);
            free(comp->name);
        } else {
            comp = vn_alloc(sizeof *comp);
            comp->domain = vn_strdup(cc->domain);
            HASH_ADD_KEYPTR(hh, components, comp->domain, strlen(comp->domain), comp);
        }
        comp->secret = vn_strdup(cc->secret);
        comp->host = vn_strdup(cc->host);
        comp->name = vn_strdup(cc->name);
        vn_disco_add_item(comp->host, comp->domain, comp->name);
    }
}

void vn_components_shutdown(void)
{
    component *comp, *tmp;
    /* Streams first: component_free would tell them <host-gone/>. */
    for (comp_stream *cs = all_streams; cs; cs = cs->next)
        stream_close(cs, "system-shutdown", NULL);
    HASH_ITER(hh, components, comp, tmp)
    {
        component_free(comp);
    }
}
