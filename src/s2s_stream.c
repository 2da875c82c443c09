/*
 * s2s_stream.c - jabber:server streams (RFC 6120), both directions.
 *
 * Outgoing: TCP (or direct TLS) → our header → the peer's features →
 * STARTTLS → restart → SASL EXTERNAL if offered (→ restart) → ready, at
 * which point s2s.c sends dialback claims, verification requests and
 * stanzas. Incoming: the peer's header → our header and features
 * (STARTTLS; then EXTERNAL when its certificate is valid for the domain
 * it names, and dialback) → authentication of domain pairs → stanzas,
 * accepted only between an authenticated pair. Every protocol fault is
 * the stream error RFC 6120 §4.9.3 names.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "s2s_internal.h"
#include "server.h"
#include "tls.h"
#include "vestnik/jid.h"
#include "vestnik/module.h"

static s2s_stream *all_streams;
static s2s_stream *incoming_by_id;

static const unsigned char alpn_xmpp_server[] = "\x0bxmpp-server";

/* ---- pairs ---- */

bool s2s_pair_has(const s2s_pair *list, const char *local, const char *remote)
{
    for (const s2s_pair *p = list; p; p = p->next)
        if (strcmp(p->local, local) == 0 && strcmp(p->remote, remote) == 0)
            return true;
    return false;
}

void s2s_pair_add(s2s_pair **list, const char *local, const char *remote)
{
    s2s_pair *p;

    if (s2s_pair_has(*list, local, remote))
        return;
    p = vn_alloc(sizeof *p);
    p->local = vn_strdup(local);
    p->remote = vn_strdup(remote);
    LL_PREPEND(*list, p);
}

static void pair_free(s2s_pair *p)
{
    free(p->local);
    free(p->remote);
    free(p);
}

bool s2s_pair_remove(s2s_pair **list, const char *local, const char *remote)
{
    for (s2s_pair **link = list; *link; link = &(*link)->next) {
        s2s_pair *p = *link;
        if (strcmp(p->local, local) == 0 && strcmp(p->remote, remote) == 0) {
            *link = p->next;
            pair_free(p);
            return true;
        }
    }
    return false;
}

static void pairs_free(s2s_pair **list)
{
    while (*list) {
        s2s_pair *p = *list;
        *list = p->next;
        pair_free(p);
    }
}

/* ---- output ---- */

const char *s2s_stream_peer_ip(const s2s_stream *s)
{
    return vn_conn_peer_ip(s->conn);
}

/* How the log names a stream: "s2s out example.org" or "s2s in 192.0.2.1". */
static void log_stream(const s2s_stream *s, vn_log_level level, const char *what)
{
    if (s->dir == S2S_OUTGOING)
        vn_log(level, "s2s out %s: %s", s->remote, what);
    else
        vn_log(level, "s2s in %s%s%s: %s", vn_conn_peer_ip(s->conn), s->remote ? " " : "",
               s->remote ? s->remote : "", what);
}

static void stream_abort(s2s_stream *s, const char *why)
{
    if (vn_xml_stream_closing(s->xs))
        return;
    log_stream(s, VN_LOG_INFO, why);
    vn_xml_stream_close(s->xs, false);
}

static void stream_write(s2s_stream *s, const char *data, size_t len)
{
    vn_xml_stream_write(s->xs, data, len);
}

static void write_element(s2s_stream *s, const vn_stanza *st)
{
    static vn_buf out; /* reused: the loop is single-threaded */

    vn_buf_reset(&out);
    vn_stanza_serialize_to(st, VN_NS_SERVER, &out);
    if (vn_log_enabled(VN_LOG_DEBUG))
        vn_log_debug("s2s %s %s SEND %s", s->dir == S2S_OUTGOING ? "out" : "in",
                     s->remote ? s->remote : vn_conn_peer_ip(s->conn), out.data);
    stream_write(s, out.data, out.len);
}

void s2s_stream_write_stanza(s2s_stream *s, const vn_stanza *st)
{
    write_element(s, st);
}

static void append_attr(vn_buf *b, const char *name, const char *value)
{
    if (!value)
        return;
    vn_buf_printf(b, " %s='", name);
    vn_buf_append_xml_escaped(b, value, strlen(value));
    vn_buf_append_str(b, "'");
}

void s2s_stream_write_dialback(s2s_stream *s, const char *name, const char *from, const char *to,
                               const char *id, const char *type, const char *key)
{
    vn_buf b;

    vn_buf_init(&b);
    vn_buf_printf(&b, "<db:%s", name);
    append_attr(&b, "from", from);
    append_attr(&b, "to", to);
    append_attr(&b, "id", id);
    append_attr(&b, "type", type);
    if (key) {
        vn_buf_append_str(&b, ">");
        vn_buf_append_xml_escaped(&b, key, strlen(key));
        vn_buf_printf(&b, "</db:%s>", name);
    } else {
        vn_buf_append_str(&b, "/>");
    }
    if (vn_log_enabled(VN_LOG_DEBUG))
        vn_log_debug("s2s %s %s SEND %s", s->dir == S2S_OUTGOING ? "out" : "in",
                     s->remote ? s->remote : vn_conn_peer_ip(s->conn), b.data);
    stream_write(s, b.data, b.len);
    vn_buf_free(&b);
}

static void send_header(s2s_stream *s, const char *to)
{
    vn_buf hdr;

    vn_buf_init(&hdr);
    vn_buf_append_str(&hdr, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                            "xmlns:stream='http://etherx.jabber.org/streams' "
                            "xmlns:db='jabber:server:dialback'");
    append_attr(&hdr, "from", s->local ? s->local : vn_local_hosts()[0]);
    append_attr(&hdr, "to", to);
    if (s->dir == S2S_INCOMING)
        append_attr(&hdr, "id", s->id);
    vn_buf_append_str(&hdr, " version='1.0'>");
    s->header_sent = true;
    stream_write(s, hdr.data, hdr.len);
    vn_buf_free(&hdr);
}

void s2s_stream_close(s2s_stream *s, const char *condition, const char *text)
{
    if (vn_xml_stream_closing(s->xs))
        return;
    if (!s->connected) { /* still connecting: nothing to say */
        vn_xml_stream_close(s->xs, false);
        return;
    }
    if (!s->header_sent)
        send_header(s, s->dir == S2S_OUTGOING ? s->remote : NULL);
    if (condition) {
        vn_stanza *err = vn_stanza_new("error", VN_NS_STREAMS);
        vn_stanza_add_child(err, condition, VN_NS_STREAM_ERRORS);
        if (text)
            vn_stanza_add_text_child(err, "text", VN_NS_STREAM_ERRORS, text);
        write_element(s, err);
        vn_stanza_free(err);
        char *what =
            vn_asprintf("stream error %s%s%s", condition, text ? ": " : "", text ? text : "");
        log_stream(s, VN_LOG_INFO, what);
        free(what);
    }
    vn_xml_stream_close(s->xs, true);
}

void s2s_stream_close_all(const char *condition)
{
    for (s2s_stream *s = all_streams; s; s = s->next)
        s2s_stream_close(s, condition, NULL);
}

s2s_stream *s2s_incoming_find(const char *id)
{
    s2s_stream *s = NULL;

    if (id)
        HASH_FIND_STR(incoming_by_id, id, s);
    return s;
}

bool s2s_stream_peer_valid(s2s_stream *s, const char **why)
{
    SSL *ssl = vn_conn_is_tls(s->conn) ? vn_conn_ssl(s->conn) : NULL;

    if (!ssl || !s->remote) {
        *why = "no TLS";
        return false;
    }
    return vn_tls_peer_valid_for(ssl, s->remote, why);
}

/* ---- outgoing: the peer's features ---- */

static bool offers_mechanism(const vn_stanza *features, const char *name)
{
    const vn_stanza *mechs = vn_stanza_child(features, "mechanisms", VN_NS_SASL);

    for (const vn_stanza *m = mechs ? vn_stanza_first_element(mechs) : NULL; m;
         m = vn_stanza_next_element(m))
        if (vn_stanza_is(m, "mechanism", VN_NS_SASL) && strcmp(vn_stanza_text(m), name) == 0)
            return true;
    return false;
}

static void out_fail(s2s_stream *s, const char *condition, const char *why)
{
    log_stream(s, VN_LOG_INFO, why);
    s2s_stream_close(s, condition, NULL);
}

static void out_features(s2s_stream *s, const vn_stanza *features)
{
    bool tls = vn_conn_is_tls(s->conn);
    const char *why = NULL;

    if (s->ready)
        return;
    if (!tls && vn_stanza_child(features, "starttls", VN_NS_TLS)) {
        stream_write(s, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", 51);
        s->starttls_sent = true;
        return;
    }
    if (!tls && s2s_require_encryption()) {
        out_fail(s, "policy-violation", "the peer does not offer STARTTLS; encryption is required");
        return;
    }
    bool valid = tls && s2s_stream_peer_valid(s, &why);
    if (tls && !valid && s2s_require_valid_certificate(s->remote)) {
        char *what = vn_asprintf("the peer's certificate is not valid (%s)", why);
        out_fail(s, "policy-violation", what);
        free(what);
        return;
    }
    if (tls && !s->external_sent && !s2s_pair_has(s->pairs, s->local, s->remote) &&
        offers_mechanism(features, "EXTERNAL")) {
        /* XEP-0178: the authorization identity is our domain. */
        unsigned char b64[4 * 256];
        int n = EVP_EncodeBlock(b64, (const unsigned char *)s->local,
                                (int)(strlen(s->local) < 190 ? strlen(s->local) : 190));
        char *auth = vn_asprintf("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                 "mechanism='EXTERNAL'>%.*s</auth>",
                                 n, b64);
        s->external_sent = true;
        stream_write(s, auth, strlen(auth));
        free(auth);
        return;
    }
    s->ready = true;
    if (s->route)
        s2s_route_ready(s->route);
}

static void out_element(s2s_stream *s, vn_stanza *el)
{
    if (vn_stanza_is(el, "features", VN_NS_STREAMS)) {
        out_features(s, el);
    } else if (s->starttls_sent && vn_stanza_is(el, "proceed", VN_NS_TLS)) {
        s->starttls_sent = false;
        vn_xml_stream_restart(s->xs); /* TLS starts once this chunk is parsed */
    } else if (s->starttls_sent && vn_stanza_is(el, "failure", VN_NS_TLS)) {
        out_fail(s, NULL, "the peer refused STARTTLS");
    } else if (s->external_sent && vn_stanza_is(el, "success", VN_NS_SASL)) {
        s2s_pair_add(&s->pairs, s->local, s->remote);
        s->ever_authenticated = true;
        vn_xml_stream_restart(s->xs);
        if (s->route)
            s2s_route_authenticated(s->route, s->local, "EXTERNAL");
    } else if (s->external_sent && vn_stanza_is(el, "failure", VN_NS_SASL)) {
        log_stream(s, VN_LOG_INFO, "SASL EXTERNAL refused: trying dialback");
        s->ready = true;
        if (s->route)
            s2s_route_ready(s->route);
    } else if (vn_stanza_is(el, NULL, VN_NS_DIALBACK)) {
        s2s_dialback_input(s, el);
    } else if (vn_stanza_is(el, NULL, VN_NS_SERVER)) {
        /* Stanzas only travel the other way on an outgoing stream
         * (bidirectional streams, XEP-0288, are not negotiated). */
        s2s_stream_close(s, "unsupported-stanza-type", "This stream is one-way");
    } else if (vn_stanza_is(el, "error", VN_NS_STREAMS)) {
        const vn_stanza *cond = vn_stanza_first_element(el);
        char *what =
            vn_asprintf("the peer sent stream error %s", cond ? vn_stanza_name(cond) : "(none)");
        out_fail(s, NULL, what);
        free(what);
    }
}

/* After <proceed/> on the outgoing side: client TLS; on SASL success: a
 * new header. Runs once the chunk with the triggering element is done. */
static void out_restart(s2s_stream *s)
{
    vn_xml_stream_reset(s->xs);
    if (!vn_conn_ssl(s->conn)) {
        char *sni = vn_tls_ascii_name(s->remote);
        int rc = vn_conn_start_tls_client(s->conn, vn_tls_ctx_for_host(s->local), sni, NULL, 0);
        free(sni);
        if (rc != 0)
            stream_abort(s, "cannot start TLS");
        return; /* the header follows in on_tls_ready */
    }
    s->header_sent = false;
    send_header(s, s->remote);
}

/* ---- incoming ---- */

static void in_features(s2s_stream *s)
{
    vn_stanza *features = vn_stanza_new("features", VN_NS_STREAMS);
    bool tls = vn_conn_is_tls(s->conn);
    const char *why = NULL;

    if (!tls) {
        vn_stanza *starttls = vn_stanza_add_child(features, "starttls", VN_NS_TLS);
        if (s2s_require_encryption())
            vn_stanza_add_child(starttls, "required", VN_NS_TLS);
    }
    if (tls || !s2s_require_encryption()) {
        if (tls && s->remote && !s->ever_authenticated && s2s_stream_peer_valid(s, &why)) {
            vn_stanza *mechs = vn_stanza_add_child(features, "mechanisms", VN_NS_SASL);
            vn_stanza_add_text_child(mechs, "mechanism", VN_NS_SASL, "EXTERNAL");
        }
        if (s2s_dialback_enabled()) {
            vn_stanza *db = vn_stanza_add_child(features, "dialback", VN_NS_DIALBACK_FEATURE);
            vn_stanza_add_child(db, "errors", VN_NS_DIALBACK_FEATURE);
        }
        vn_stanza_add_child(features, "bidi", VN_NS_BIDI_FEATURE);
    }
    write_element(s, features);
    vn_stanza_free(features);
}

static void set_remote(s2s_stream *s, const char *from)
{
    char *remote = from ? vn_jid_prep_domain(from) : NULL;

    if (remote) {
        free(s->remote);
        s->remote = remote;
    }
}

static void in_open(s2s_stream *s, const vn_stanza *header)
{
    const char *to = vn_stanza_attr(header, "to");
    const char *ns = vn_stanza_attr(header, "xmlns");
    const char *version = vn_stanza_attr(header, "version");
    char *local = to ? vn_jid_prep_domain(to) : NULL;

    set_remote(s, vn_stanza_attr(header, "from"));
    if (local && s2s_is_our_domain(local)) {
        free(s->local);
        s->local = local;
    } else {
        free(local);
        local = NULL;
    }
    send_header(s, s->remote);
    if (!vn_stanza_is(header, "stream", VN_NS_STREAMS) || !ns || strcmp(ns, VN_NS_SERVER) != 0)
        s2s_stream_close(s, "invalid-namespace", NULL);
    else if (!local)
        s2s_stream_close(s, "host-unknown", "This server does not serve that domain");
    else if (s->remote && !s2s_remote_allowed(s->remote))
        s2s_stream_close(s, "policy-violation", "Federation with your domain is not allowed");
    else if (!version || strncmp(version, "1.", 2) != 0)
        s2s_stream_close(s, "unsupported-version", "XMPP 1.0 streams only");
    else
        in_features(s);
}

static void in_starttls(s2s_stream *s)
{
    if (vn_conn_ssl(s->conn) || s->ever_authenticated) {
        s2s_stream_close(s, "policy-violation", "Unexpected TLS negotiation");
        return;
    }
    stream_write(s, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", 50);
    if (vn_conn_start_tls(s->conn, vn_tls_ctx_for_host(s->local)) != 0) {
        stream_abort(s, "cannot start TLS");
        return;
    }
    vn_tls_request_peer_certificate(vn_conn_ssl(s->conn));
    s->header_sent = false;
    vn_xml_stream_restart(s->xs);
}

static void sasl_failure(s2s_stream *s, const char *condition)
{
    char *xml =
        vn_asprintf("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><%s/></failure>", condition);
    stream_write(s, xml, strlen(xml));
    free(xml);
}

/* SASL EXTERNAL (RFC 6120 §6, XEP-0178): the certificate speaks for the
 * stream's 'from'; an authorization identity, if any, must be the same. */
static void in_auth(s2s_stream *s, const vn_stanza *auth)
{
    const char *mech = vn_stanza_attr(auth, "mechanism");
    const char *data = vn_stanza_text(auth);
    const char *why = NULL;
    char authzid[256] = "";

    if (!mech || strcmp(mech, "EXTERNAL") != 0) {
        sasl_failure(s, "invalid-mechanism");
        return;
    }
    if (!vn_conn_is_tls(s->conn) || !s->remote || s->ever_authenticated ||
        !s2s_stream_peer_valid(s, &why)) {
        sasl_failure(s, "not-authorized");
        return;
    }
    if (data[0] && strcmp(data, "=") != 0) {
        size_t len = strlen(data);
        int n = len < 340 ? EVP_DecodeBlock((unsigned char *)authzid, (const unsigned char *)data,
                                            (int)len)
                          : -1;
        if (n < 0) {
            sasl_failure(s, "incorrect-encoding");
            return;
        }
        authzid[n] = '\0'; /* padding decodes to trailing NULs */
        char *prepped = vn_jid_prep_domain(authzid);
        bool same = prepped && strcmp(prepped, s->remote) == 0;
        free(prepped);
        if (!same) {
            sasl_failure(s, "invalid-authzid");
            return;
        }
    }
    if (!s2s_incoming_admit(s, s->remote))
        return;
    stream_write(s, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", 51);
    s2s_pair_add(&s->pairs, s->local, s->remote);
    s->ever_authenticated = true;
    s2s_incoming_authenticated(s);
    log_stream(s, VN_LOG_INFO, "authenticated with EXTERNAL");
    s->header_sent = false;
    vn_xml_stream_restart(s->xs);
}

/* A stanza from the peer: only between an authenticated pair. */
static void in_stanza(s2s_stream *s, vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    const char *from_attr = vn_stanza_attr(st, "from"), *to_attr = vn_stanza_attr(st, "to");
    vn_jid *from = from_attr ? vn_jid_parse(from_attr) : NULL;
    vn_jid *to = to_attr ? vn_jid_parse(to_attr) : NULL;

    if (strcmp(name, "message") != 0 && strcmp(name, "presence") != 0 && strcmp(name, "iq") != 0) {
        s2s_stream_close(s, "unsupported-stanza-type", NULL);
    } else if (!from || !to) {
        s2s_stream_close(s, "improper-addressing", "Stanzas need a valid 'from' and 'to'");
    } else if (!s2s_is_our_domain(to->domain)) {
        s2s_stream_close(s, "host-unknown", "This server does not serve that domain");
    } else if (!s2s_pair_has(s->pairs, to->domain, from->domain)) {
        char *what =
            vn_asprintf("stanza from %s, which is not authenticated on this stream", from->domain);
        log_stream(s, VN_LOG_WARN, what);
        free(what);
        s2s_stream_close(s, "invalid-from", "That domain is not authenticated on this stream");
    } else {
        vn_stanza_replace_ns(st, VN_NS_SERVER, VN_NS_CLIENT);
        vn_stanza_set_attr(st, "from", from->full);
        vn_stanza_set_attr(st, "to", to->full);
        vn_route(st);
        st = NULL;
    }
    vn_stanza_free(st);
    vn_jid_free(from);
    vn_jid_free(to);
}

static void in_element(s2s_stream *s, vn_stanza *el)
{
    bool tls = vn_conn_is_tls(s->conn);

    if (vn_stanza_is(el, "starttls", VN_NS_TLS)) {
        in_starttls(s);
    } else if (!tls && s2s_require_encryption()) {
        s2s_stream_close(s, "policy-violation", "Encryption is required: use STARTTLS");
    } else if (vn_stanza_is(el, "bidi", VN_NS_BIDI)) {
        s->bidi = true; /* XEP-0288 §2: no answer */
        log_stream(s, VN_LOG_INFO, "bidirectional (XEP-0288)");
    } else if (vn_stanza_is(el, "auth", VN_NS_SASL)) {
        in_auth(s, el);
    } else if (vn_stanza_is(el, NULL, VN_NS_DIALBACK)) {
        s2s_dialback_input(s, el);
    } else if (vn_stanza_is(el, NULL, VN_NS_SERVER)) {
        in_stanza(s, el);
        return; /* taken */
    } else if (!vn_stanza_is(el, "error", VN_NS_STREAMS)) {
        s2s_stream_close(s, "unsupported-stanza-type", NULL);
    }
    vn_stanza_free(el);
}

/* ---- parser and connection events ---- */

static void on_stream_open(void *ud, const vn_stanza *header)
{
    s2s_stream *s = ud;
    const char *ns = vn_stanza_attr(header, "xmlns");

    if (s->dir == S2S_INCOMING) {
        in_open(s, header);
        return;
    }
    if (!vn_stanza_is(header, "stream", VN_NS_STREAMS) || !ns || strcmp(ns, VN_NS_SERVER) != 0) {
        s2s_stream_close(s, "invalid-namespace", NULL);
        return;
    }
    free(s->id);
    s->id = vn_strdup(vn_stanza_attr(header, "id") ? vn_stanza_attr(header, "id") : "");
}

static void on_element(void *ud, vn_stanza *el)
{
    s2s_stream *s = ud;

    if (vn_log_enabled(VN_LOG_DEBUG)) {
        char *xml = vn_stanza_serialize(el, VN_NS_SERVER, NULL);
        vn_log_debug("s2s %s %s RECV %s", s->dir == S2S_OUTGOING ? "out" : "in",
                     s->remote ? s->remote : vn_conn_peer_ip(s->conn), xml);
        free(xml);
    }
    if (s->dir == S2S_INCOMING) {
        const vn_config *cfg = vn_srv.cfg;
        const vn_shaper_limits lim = {cfg->s2s_stanza_rate, cfg->s2s_stanza_burst,
                                      cfg->max_throttle_time};
        if (vn_shaper_stanza(&s->shaper, &lim, s->remote ? s->remote : vn_conn_peer_ip(s->conn))) {
            in_element(s, el);
            return;
        }
        s2s_stream_close(s, "policy-violation", "Stanza rate limit exceeded: slow down");
        vn_stanza_free(el);
        return;
    }
    out_element(s, el);
    vn_stanza_free(el);
}

static void on_stream_close(void *ud)
{
    s2s_stream_close(ud, NULL, NULL);
}

static void on_xml_error(void *ud, const char *condition, const char *text)
{
    s2s_stream_close(ud, condition, text);
}

/* A restart asked for during the chunk: outgoing, TLS or a new header;
 * incoming, the peer's new header is parsed afresh. */
static void on_restart(void *ud)
{
    s2s_stream *s = ud;

    if (s->dir == S2S_OUTGOING)
        out_restart(s);
    else
        vn_xml_stream_reset(s->xs);
}

static void on_data(void *ud)
{
    s2s_stream *s = ud;

    if (s->dir == S2S_INCOMING && s->ever_authenticated)
        s2s_incoming_authenticated(s); /* anything, whitespace keepalives too, is activity */
}

/* Load shaping of incoming streams (shaper.h). */
static void shaper_pause(void *ud, bool paused)
{
    vn_xml_stream_pause(((s2s_stream *)ud)->xs, paused);
}

static void on_tls_ready(void *ud)
{
    s2s_stream *s = ud;

    if (s->dir == S2S_OUTGOING) {
        s->header_sent = false;
        send_header(s, s->remote);
    }
}

static void on_overflow(void *ud)
{
    log_stream(ud, VN_LOG_INFO, "output buffer full (peer not reading): closing");
}

static void free_stream(uv_handle_t *h)
{
    free(h->data);
}

static void on_closed(void *ud, const char *reason)
{
    s2s_stream *s = ud;

    if (s->dir == S2S_INCOMING) {
        HASH_DEL(incoming_by_id, s);
        char *what = vn_asprintf("closed: %s", reason);
        log_stream(s, VN_LOG_INFO, what);
        free(what);
    } else if (s->route) {
        s2s_route_stream_gone(s->route, s, reason);
    }
    DL_DELETE(all_streams, s);
    vn_shaper_cleanup(&s->shaper);
    pairs_free(&s->pairs);
    pairs_free(&s->pending);
    free(s->id);
    free(s->local);
    free(s->remote);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, free_stream);
}

static void on_connected(void *ud)
{
    s2s_stream *s = ud;
    char *what = vn_asprintf("connected to %s port %d%s", vn_conn_peer_ip(s->conn),
                             vn_conn_peer_port(s->conn), s->direct_tls ? " (direct TLS)" : "");

    s->connected = true;
    log_stream(s, VN_LOG_INFO, what);
    free(what);
    if (vn_xml_stream_start(s->xs) != 0)
        return;
    if (!s->direct_tls) {
        send_header(s, s->remote);
        return;
    }
    char *sni = vn_tls_ascii_name(s->remote);
    if (vn_conn_start_tls_client(s->conn, vn_tls_ctx_for_host(s->local), sni, alpn_xmpp_server,
                                 sizeof alpn_xmpp_server - 1) != 0)
        stream_abort(s, "cannot start TLS");
    free(sni);
}

static const vn_xml_stream_handler stream_handler = {
    .stream_open = on_stream_open,
    .element = on_element,
    .stream_close = on_stream_close,
    .error = on_xml_error,
    .data = on_data,
    .restart = on_restart,
    .connected = on_connected,
    .tls_ready = on_tls_ready,
    .overflow = on_overflow,
    .closed = on_closed,
};

static s2s_stream *stream_new(s2s_direction dir)
{
    s2s_stream *s = vn_alloc(sizeof *s);

    s->dir = dir;
    vn_shaper_init(&s->shaper, "s2s", shaper_pause, s);
    uv_timer_init(vn_srv.loop, &s->timer);
    s->timer.data = s;
    DL_APPEND(all_streams, s);
    return s;
}

s2s_stream *s2s_stream_connect(s2s_route *route, const struct sockaddr *addr, bool direct_tls,
                               const char *local, const char *remote)
{
    s2s_stream *s = stream_new(S2S_OUTGOING);

    s->route = route;
    s->direct_tls = direct_tls;
    s->local = vn_strdup(local);
    s->remote = vn_strdup(remote);
    s->xs = vn_xml_stream_connect(addr, &stream_handler, s);
    if (!s->xs) {
        DL_DELETE(all_streams, s);
        vn_shaper_cleanup(&s->shaper);
        free(s->local);
        free(s->remote);
        uv_close((uv_handle_t *)&s->timer, free_stream);
        return NULL;
    }
    s->conn = vn_xml_stream_conn(s->xs);
    return s;
}

/* Incoming: not authenticated within s2s.connect_timeout, or nothing
 * received for s2s.incoming_idle_timeout since (RFC 6120 §4.6.1). */
static void on_incoming_timer(uv_timer_t *t)
{
    s2s_stream *s = t->data;

    if (!s->ever_authenticated) {
        s2s_stream_close(s, "connection-timeout", "Not authenticated in time");
        return;
    }
    log_stream(s, VN_LOG_INFO, "idle for too long");
    s2s_stream_close(s, "connection-timeout", "Idle for too long");
}

void s2s_incoming_authenticated(s2s_stream *s)
{
    unsigned idle = vn_srv.cfg->s2s_incoming_idle_timeout;

    if (idle)
        uv_timer_start(&s->timer, on_incoming_timer, (uint64_t)idle * 1000, 0);
    else
        uv_timer_stop(&s->timer);
}

s2s_stream *s2s_incoming_bidi(const char *local, const char *remote)
{
    for (s2s_stream *s = incoming_by_id; s; s = s->hh.next)
        if (s->bidi && !vn_xml_stream_closing(s->xs) && s2s_pair_has(s->pairs, local, remote))
            return s;
    return NULL;
}

bool s2s_incoming_admit(s2s_stream *s, const char *remote)
{
    size_t streams = 0;

    for (s2s_stream *other = incoming_by_id; other; other = other->hh.next)
        for (const s2s_pair *p = other->pairs; other != s && p; p = p->next)
            if (strcmp(p->remote, remote) == 0) {
                streams++;
                break;
            }
    if (streams < vn_srv.cfg->s2s_max_streams_per_domain)
        return true;
    char *what = vn_asprintf("refused: %s already has %zu incoming streams", remote, streams);
    log_stream(s, VN_LOG_WARN, what);
    free(what);
    s2s_stream_close(s, "policy-violation", "Too many streams from your domain");
    return false;
}

void s2s_stream_accept(vn_conn *c, bool direct_tls)
{
    s2s_stream *s = stream_new(S2S_INCOMING);
    unsigned char rnd[16];
    char id[33];

    if (RAND_bytes(rnd, sizeof rnd) != 1)
        abort();
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    s->id = vn_strdup(id);
    HASH_ADD_KEYPTR(hh, incoming_by_id, s->id, strlen(s->id), s);
    s->conn = c;
    s->xs = vn_xml_stream_accept(c, &stream_handler, s);
    s->connected = true;
    s->direct_tls = direct_tls;
    if (direct_tls && vn_conn_ssl(c))
        vn_tls_request_peer_certificate(vn_conn_ssl(c));
    uv_timer_start(&s->timer, on_incoming_timer, (uint64_t)vn_srv.cfg->s2s_connect_timeout * 1000,
                   0);
    log_stream(s, VN_LOG_INFO,
               direct_tls ? "incoming connection (direct TLS)" : "incoming connection");
    vn_xml_stream_start(s->xs);
}
