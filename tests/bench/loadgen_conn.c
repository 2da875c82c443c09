/*
 * loadgen_conn.c - one client connection of the load generator: a libuv
 * TCP stream, TLS through OpenSSL memory BIOs after STARTTLS, the XMPP
 * login (stream, STARTTLS, SASL, bind, initial presence) or an in-band
 * registration, and the messages of a scenario.
 *
 * Incoming bytes go through vestnik's own stream parser (expat), which
 * hands over each depth-1 element as a vn_stanza. A connection counts as
 * online once the server answered a ping sent right after the initial
 * presence, so the presence has been processed too.
 */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "loadgen.h"

#define NS_REGISTER "jabber:iq:register"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define READ_CHUNK 65536

typedef struct write_req {
    uv_write_t req;
    char data[];
} write_req;

static char read_buffer[READ_CHUNK];

static void conn_fail(lg_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void on_close(uv_handle_t *handle)
{
    lg_conn *c = handle->data;
    if (c->ssl)
        SSL_free(c->ssl); /* frees both BIOs */
    c->ssl = NULL;
    vn_xml_parser_free(c->parser);
    c->parser = NULL;
    lg_scram_clear(&c->scram);
    vn_buf_free(&c->pending_out);
}

void lg_conn_close(lg_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void conn_fail(lg_conn *c, const char *fmt, ...)
{
    if (c->closing)
        return;
    va_list ap;
    va_start(ap, fmt);
    char text[256];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(c->failure);
    c->failure = vn_strdup(text);
    c->state = LG_CONN_FAILED;
    lg_conn_close(c);
    c->run->ev->failed(c);
}

static void on_write(uv_write_t *req, int status)
{
    lg_conn *c = req->handle->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED)
        conn_fail(c, "write: %s", uv_strerror(status));
}

/* Bytes for the socket, in order: what the kernel takes now, the rest
 * queued in libuv. */
static void write_raw(lg_conn *c, const char *data, size_t len)
{
    if (c->closing || len == 0)
        return;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    int written = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (written == (int)len)
        return;
    if (written < 0 && written != UV_EAGAIN) {
        conn_fail(c, "write: %s", uv_strerror(written));
        return;
    }
    size_t done = written > 0 ? (size_t)written : 0;
    write_req *w = vn_alloc(sizeof *w + len - done);
    memcpy(w->data, data + done, len - done);
    buf = uv_buf_init(w->data, (unsigned)(len - done));
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc < 0) {
        free(w);
        conn_fail(c, "write: %s", uv_strerror(rc));
    }
}

static void flush_tls(lg_conn *c)
{
    char chunk[16384];
    int n;
    while ((n = BIO_read(c->net_out, chunk, sizeof chunk)) > 0)
        write_raw(c, chunk, (size_t)n);
}

static void send_now(lg_conn *c, const char *xml, size_t len)
{
    if (c->closing || len == 0)
        return;
    if (!c->ssl) {
        write_raw(c, xml, len);
        return;
    }
    /* A memory BIO takes everything: SSL_write never comes back short. */
    if (SSL_write(c->ssl, xml, (int)len) <= 0) {
        conn_fail(c, "TLS write failed");
        return;
    }
    flush_tls(c);
}

void lg_conn_send(lg_conn *c, const char *xml, size_t len)
{
    if (c->closing)
        return;
    vn_buf_append(&c->pending_out, xml, len);
    if (c->flush_queued)
        return;
    lg_run *run = c->run;
    if (run->to_flush_count == run->to_flush_cap) {
        run->to_flush_cap = run->to_flush_cap ? run->to_flush_cap * 2 : 1024;
        run->to_flush = vn_realloc(run->to_flush, run->to_flush_cap * sizeof *run->to_flush);
    }
    run->to_flush[run->to_flush_count++] = c;
    c->flush_queued = true;
}

void lg_run_flush(lg_run *run)
{
    /* send_now may fail a connection, whose callback may queue more. */
    for (size_t i = 0; i < run->to_flush_count; i++) {
        lg_conn *c = run->to_flush[i];
        c->flush_queued = false;
        if (c->closing)
            continue; /* on_close frees pending_out */
        send_now(c, c->pending_out.data, c->pending_out.len);
        vn_buf_reset(&c->pending_out);
    }
    run->to_flush_count = 0;
}

static void on_check(uv_check_t *check)
{
    lg_run_flush(check->data);
}

void lg_run_flusher_init(lg_run *run)
{
    uv_check_init(run->loop, &run->flusher);
    run->flusher.data = run;
    uv_check_start(&run->flusher, on_check);
}

void lg_run_flusher_close(lg_run *run)
{
    uv_close((uv_handle_t *)&run->flusher, NULL);
    free(run->to_flush);
    run->to_flush = NULL;
}

static void send_str(lg_conn *c, const char *xml)
{
    lg_conn_send(c, xml, strlen(xml));
}

static void send_stream_header(lg_conn *c)
{
    char header[256];
    int len = snprintf(header, sizeof header,
                       "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                       "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>",
                       c->run->opt->domain);
    lg_conn_send(c, header, (size_t)len);
}

void lg_conn_send_message(lg_conn *c, const char *to_jid, const char *type)
{
    vn_buf *b = &c->run->scratch;
    vn_buf_reset(b);
    c->sent++;
    vn_buf_printf(b, "<message to='%s' type='%s' id='m%llu'><body>lg %u %llu ", to_jid, type,
                  (unsigned long long)c->sent, c->index, (unsigned long long)uv_hrtime());
    for (unsigned i = 0; i < c->run->opt->body_bytes; i++)
        vn_buf_append(b, "x", 1);
    vn_buf_append_str(b, "</body></message>");
    c->in_flight++;
    lg_conn_send(c, b->data, b->len);
}

/* ---------------------------------------------------------------- stanzas */

static void send_auth(lg_conn *c, const vn_stanza *features)
{
    const lg_options *opt = c->run->opt;
    const char *wanted = opt->mech == LG_MECH_PLAIN ? "PLAIN" : "SCRAM-SHA-1";
    const vn_stanza *mechs = vn_stanza_child(features, "mechanisms", VN_NS_SASL);
    bool offered = false;
    for (const vn_stanza *m = mechs ? vn_stanza_first_element(mechs) : NULL; m && !offered;
         m = vn_stanza_next_element(m))
        offered = strcmp(vn_stanza_text(m), wanted) == 0;
    if (!offered) {
        conn_fail(c, "the server does not offer %s", wanted);
        return;
    }
    vn_buf *b = &c->run->scratch;
    vn_buf_reset(b);
    vn_buf_printf(b, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>", wanted);
    lg_sasl_initial(opt->mech, &c->scram, c->account, opt->password, b);
    vn_buf_append_str(b, "</auth>");
    c->state = LG_CONN_AUTHENTICATING;
    lg_conn_send(c, b->data, b->len);
}

static void send_registration(lg_conn *c)
{
    vn_buf *b = &c->run->scratch;
    vn_buf_reset(b);
    vn_buf_printf(b,
                  "<iq type='set' id='reg' to='%s'><query xmlns='jabber:iq:register'>"
                  "<username>%s</username><password>%s</password></query></iq>",
                  c->run->opt->domain, c->account, c->run->opt->password);
    c->state = LG_CONN_REGISTERING;
    lg_conn_send(c, b->data, b->len);
}

static void send_bind(lg_conn *c, const vn_stanza *features)
{
    const vn_stanza *session = vn_stanza_child(features, "session", VN_NS_SESSION);
    c->session_pending = session && !vn_stanza_child(session, "optional", NULL);
    vn_buf *b = &c->run->scratch;
    vn_buf_reset(b);
    vn_buf_printf(b,
                  "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  "<resource>%s</resource></bind></iq>",
                  c->resource);
    if (c->session_pending)
        vn_buf_append_str(b, "<iq type='set' id='sess'>"
                             "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    c->state = LG_CONN_BINDING;
    lg_conn_send(c, b->data, b->len);
}

static void send_presence(lg_conn *c)
{
    char xml[256];
    int len = snprintf(xml, sizeof xml,
                       "<presence/><iq type='get' id='ping' to='%s'>"
                       "<ping xmlns='urn:xmpp:ping'/></iq>",
                       c->run->opt->domain);
    c->state = LG_CONN_PRESENCE;
    lg_conn_send(c, xml, (size_t)len);
}

static const char *error_condition(const vn_stanza *st)
{
    const vn_stanza *error = vn_stanza_child(st, "error", NULL);
    const vn_stanza *cond = error ? vn_stanza_first_element(error) : NULL;
    return cond ? vn_stanza_name(cond) : "(none)";
}

static void handle_features(lg_conn *c, const vn_stanza *st)
{
    switch (c->state) {
    case LG_CONN_PLAIN_STREAM:
        if (!vn_stanza_child(st, "starttls", VN_NS_TLS)) {
            conn_fail(c, "the server does not offer STARTTLS");
            return;
        }
        send_str(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        return;
    case LG_CONN_TLS_STREAM:
        if (c->register_only)
            send_registration(c);
        else
            send_auth(c, st);
        return;
    case LG_CONN_AUTHED_STREAM: send_bind(c, st); return;
    default: conn_fail(c, "stream features in state %d", (int)c->state); return;
    }
}

static void handle_iq(lg_conn *c, const vn_stanza *st)
{
    const char *id = vn_stanza_attr(st, "id");
    const char *type = vn_stanza_attr(st, "type");
    if (!id || !type)
        return;
    if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) {
        /* The server asks something (a ping): say it is not served. */
        vn_stanza *reply = vn_stanza_error_reply(st, "cancel", "service-unavailable", NULL);
        if (reply) {
            vn_buf *b = &c->run->scratch;
            vn_buf_reset(b);
            vn_stanza_serialize_to(reply, VN_NS_CLIENT, b);
            lg_conn_send(c, b->data, b->len);
            vn_stanza_free(reply);
        }
        return;
    }
    bool ok = strcmp(type, "result") == 0;
    if (strcmp(id, "reg") == 0 && c->state == LG_CONN_REGISTERING) {
        if (!ok && strcmp(error_condition(st), "conflict") != 0) {
            conn_fail(c, "registration of %s: %s", c->account, error_condition(st));
            return;
        }
        c->state = LG_CONN_DONE;
        lg_conn_close(c);
        c->run->ev->registered(c);
    } else if (strcmp(id, "bind") == 0 && c->state == LG_CONN_BINDING) {
        const char *jid =
            vn_stanza_child_text(vn_stanza_child(st, "bind", VN_NS_BIND), "jid", VN_NS_BIND);
        if (!ok || !jid) {
            conn_fail(c, "bind: %s", error_condition(st));
            return;
        }
        snprintf(c->full_jid, sizeof c->full_jid, "%s", jid);
        if (!c->session_pending)
            send_presence(c);
    } else if (strcmp(id, "sess") == 0 && c->state == LG_CONN_BINDING) {
        if (!ok) {
            conn_fail(c, "session: %s", error_condition(st));
            return;
        }
        c->session_pending = false;
        send_presence(c);
    } else if (strcmp(id, "ping") == 0 && c->state == LG_CONN_PRESENCE) {
        c->state = LG_CONN_ONLINE;
        c->run->ev->online(c);
    }
}

static void handle_message(lg_conn *c, const vn_stanza *st)
{
    const char *type = vn_stanza_attr(st, "type");
    if (type && strcmp(type, "error") == 0) {
        c->run->bounced++;
        return;
    }
    const char *body = vn_stanza_child_text(st, "body", NULL);
    unsigned from_index;
    unsigned long long sent_ns;
    if (body && sscanf(body, "lg %u %llu", &from_index, &sent_ns) == 2) {
        c->received++;
        c->run->ev->message(c, from_index, sent_ns);
    }
}

static void handle_presence(lg_conn *c, const vn_stanza *st)
{
    const char *type = vn_stanza_attr(st, "type");
    if (type && strcmp(type, "error") == 0) {
        c->run->bounced++;
        return;
    }
    const vn_stanza *x = vn_stanza_child(st, "x", NS_MUC_USER);
    if (c->joined || !x)
        return;
    for (const vn_stanza *e = vn_stanza_first_element(x); e; e = vn_stanza_next_element(e)) {
        const char *code = vn_stanza_attr(e, "code");
        if (vn_stanza_is(e, "status", NS_MUC_USER) && code && strcmp(code, "110") == 0) {
            c->joined = true;
            c->run->ev->joined(c);
            return;
        }
    }
}

static void handle_sasl(lg_conn *c, const vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    if (c->state != LG_CONN_AUTHENTICATING) {
        conn_fail(c, "SASL <%s/> out of turn", name);
    } else if (strcmp(name, "challenge") == 0) {
        vn_buf *b = &c->run->scratch;
        vn_buf_reset(b);
        vn_buf_append_str(b, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
        if (lg_scram_final(&c->scram, &c->run->salted, c->account, c->run->opt->password,
                           vn_stanza_text(st), b) != 0) {
            conn_fail(c, "malformed SCRAM challenge");
            return;
        }
        vn_buf_append_str(b, "</response>");
        lg_conn_send(c, b->data, b->len);
    } else if (strcmp(name, "success") == 0) {
        if (c->run->opt->mech == LG_MECH_SCRAM_SHA1 &&
            lg_scram_verify(&c->scram, vn_stanza_text(st)) != 0) {
            conn_fail(c, "the server's SCRAM signature does not match");
            return;
        }
        c->state = LG_CONN_AUTHED_STREAM;
        c->restart_stream = true;
        vn_xml_parser_stop(c->parser);
    } else if (strcmp(name, "failure") == 0) {
        const vn_stanza *cond = vn_stanza_first_element(st);
        conn_fail(c, "SASL failure for %s: %s", c->account, cond ? vn_stanza_name(cond) : "?");
    }
}

static void on_stanza(void *ud, vn_stanza *st)
{
    lg_conn *c = ud;
    const char *ns = vn_stanza_ns(st);
    const char *name = vn_stanza_name(st);
    if (c->closing) {
        /* nothing: the connection is going away */
    } else if (ns && strcmp(ns, VN_NS_CLIENT) == 0) {
        if (strcmp(name, "message") == 0)
            handle_message(c, st);
        else if (strcmp(name, "presence") == 0)
            handle_presence(c, st);
        else if (strcmp(name, "iq") == 0)
            handle_iq(c, st);
    } else if (vn_stanza_is(st, "features", VN_NS_STREAMS)) {
        handle_features(c, st);
    } else if (vn_stanza_is(st, "error", VN_NS_STREAMS)) {
        const vn_stanza *cond = vn_stanza_first_element(st);
        conn_fail(c, "stream error: %s", cond ? vn_stanza_name(cond) : "?");
    } else if (vn_stanza_is(st, "proceed", VN_NS_TLS)) {
        c->state = LG_CONN_TLS_HANDSHAKE;
        c->restart_stream = true;
        vn_xml_parser_stop(c->parser);
    } else if (ns && strcmp(ns, VN_NS_SASL) == 0) {
        handle_sasl(c, st);
    }
    vn_stanza_free(st);
}

static void on_stream_open(void *ud, const vn_stanza *header)
{
}

static void on_stream_close(void *ud)
{
    conn_fail(ud, "the server closed the stream");
}

static void on_parse_error(void *ud, const char *condition, const char *text)
{
    conn_fail(ud, "XML from the server: %s (%s)", condition, text ? text : "");
}

static const vn_xml_callbacks parser_callbacks = {
    .stream_open = on_stream_open,
    .stanza = on_stanza,
    .stream_close = on_stream_close,
    .error = on_parse_error,
};

/* ------------------------------------------------------------- transport */

static void start_tls(lg_conn *c)
{
    c->ssl = SSL_new(c->run->tls);
    c->net_in = BIO_new(BIO_s_mem());
    c->net_out = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->net_in || !c->net_out) {
        conn_fail(c, "out of memory for TLS");
        return;
    }
    SSL_set_bio(c->ssl, c->net_in, c->net_out);
    SSL_set_tlsext_host_name(c->ssl, c->run->opt->domain);
    SSL_set_connect_state(c->ssl);
}

/* Feed plaintext to the parser; handle the stream restarts it asked for. */
static void feed(lg_conn *c, const char *data, size_t len)
{
    int rc = vn_xml_parser_feed(c->parser, data, len);
    if (c->closing)
        return;
    if (c->restart_stream) {
        c->restart_stream = false;
        vn_xml_parser_reset(c->parser);
        if (c->state == LG_CONN_TLS_HANDSHAKE)
            start_tls(c);
        else
            send_stream_header(c);
        return;
    }
    if (rc != 0)
        conn_fail(c, "XML parser stopped");
}

static void pump_tls(lg_conn *c)
{
    if (!SSL_is_init_finished(c->ssl)) {
        int rc = SSL_do_handshake(c->ssl);
        flush_tls(c);
        if (rc <= 0) {
            int err = SSL_get_error(c->ssl, rc);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
                char text[160];
                ERR_error_string_n(ERR_get_error(), text, sizeof text);
                conn_fail(c, "TLS handshake: %s", text);
            }
            return;
        }
        c->state = LG_CONN_TLS_STREAM;
        send_stream_header(c);
    }
    for (;;) {
        int n = SSL_read(c->ssl, read_buffer, sizeof read_buffer);
        if (n <= 0) {
            int err = SSL_get_error(c->ssl, n);
            if (err != SSL_ERROR_WANT_READ)
                conn_fail(c, "TLS read: error %d", err);
            break;
        }
        feed(c, read_buffer, (size_t)n);
        if (c->closing)
            return;
    }
    flush_tls(c);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char socket_buffer[READ_CHUNK];
    *buf = uv_buf_init(socket_buffer, sizeof socket_buffer);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    lg_conn *c = stream->data;
    if (nread < 0) {
        if (c->state == LG_CONN_DONE)
            lg_conn_close(c);
        else
            conn_fail(c, "connection lost: %s", uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || c->closing)
        return;
    if (!c->ssl) {
        feed(c, buf->base, (size_t)nread);
        /* STARTTLS: the handshake's first flight goes out now. */
        if (c->ssl && !c->closing)
            pump_tls(c);
        return;
    }
    BIO_write(c->net_in, buf->base, (int)nread);
    pump_tls(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    lg_conn *c = req->handle->data;
    free(req);
    if (c->closing)
        return;
    if (status < 0) {
        conn_fail(c, "connect: %s", uv_strerror(status));
        return;
    }
    c->parser = vn_xml_parser_new(&parser_callbacks, c, 1 << 20, 64);
    c->state = LG_CONN_PLAIN_STREAM;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        conn_fail(c, "read: %s", uv_strerror(rc));
        return;
    }
    send_stream_header(c);
}

void lg_conn_start(lg_conn *c, bool register_only)
{
    const lg_options *opt = c->run->opt;
    unsigned account = c->index % opt->accounts;
    snprintf(c->account, sizeof c->account, "%s%u", opt->prefix, account);
    snprintf(c->resource, sizeof c->resource, "r%u", c->index / opt->accounts);
    c->register_only = register_only;
    c->state = LG_CONN_CONNECTING;

    uv_tcp_init_ex(c->run->loop, &c->tcp, AF_INET);
    c->tcp.data = c;
    if (opt->sources > 1) {
        /* Several loopback source addresses, each with its own ephemeral
         * ports: the port is picked at connect() time, per 4-tuple. */
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in source = {.sin_family = AF_INET};
        source.sin_addr.s_addr = htonl(0x7f000001u + c->index % opt->sources);
        int rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&source, 0);
        if (rc < 0) {
            conn_fail(c, "bind: %s", uv_strerror(rc));
            return;
        }
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_in server;
    uv_ip4_addr(opt->address, opt->port, &server);
    uv_connect_t *req = vn_alloc(sizeof *req);
    int rc = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&server, on_connect);
    if (rc < 0) {
        free(req);
        conn_fail(c, "connect: %s", uv_strerror(rc));
    }
}
