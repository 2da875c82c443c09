/*
 * c2s_tcp.c - the TCP transport of client streams: a vn_conn (plain with
 * STARTTLS, or direct TLS per XEP-0368) whose bytes go through the
 * streaming XML parser into the c2s state machine, and whose output is
 * the RFC 6120 stream itself.
 */
#include <stdlib.h>
#include <string.h>

#include "abuse_limits.h"
#include "c2s.h"
#include "server.h"
#include "xml_parser.h"

typedef struct tcp_stream {
    vn_conn *conn;
    vn_c2s *c2s; /* NULL once the stream is gone */
    vn_xml_parser *parser;
    bool in_feed;
    bool restart; /* reset the parser once the current chunk is done */
    bool closing;
    bool counted; /* in limits.max_connections_per_ip (abuse_limits.c) */
} tcp_stream;

/* ---- output ---- */

/* The client does not read what we send: drop the connection. The stream
 * hears of it through on_close, from the loop, never from inside a write. */
static void tcp_abort(tcp_stream *t)
{
    vn_log_info("c2s %s: output buffer full (client not reading): closing",
                vn_conn_peer_ip(t->conn));
    t->closing = true;
    if (t->in_feed)
        vn_xml_parser_stop(t->parser);
    vn_conn_close(t->conn, false);
}

static int tcp_write(tcp_stream *t, const char *data, size_t len)
{
    if (t->closing)
        return 0;
    if (vn_conn_write(t->conn, data, len) == 0)
        return 0;
    tcp_abort(t);
    return -1;
}

static void tcp_open(void *tx, const char *stream_id, const char *from, const char *to)
{
    vn_buf hdr;
    vn_buf_init(&hdr);
    vn_buf_append_str(&hdr, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                            "xmlns:stream='http://etherx.jabber.org/streams' id='");
    vn_buf_append_str(&hdr, stream_id);
    vn_buf_append_str(&hdr, "' from='");
    vn_buf_append_xml_escaped(&hdr, from, strlen(from));
    if (to) {
        vn_buf_append_str(&hdr, "' to='");
        vn_buf_append_xml_escaped(&hdr, to, strlen(to));
    }
    vn_buf_append_str(&hdr, "' version='1.0' xml:lang='en'>");
    tcp_write(tx, hdr.data, hdr.len);
    vn_buf_free(&hdr);
}

static int tcp_element(void *tx, const vn_stanza *st)
{
    static vn_buf out; /* reused: the loop is single-threaded */

    vn_buf_reset(&out);
    vn_stanza_serialize_to(st, VN_NS_CLIENT, &out);
    return tcp_write(tx, out.data, out.len);
}

static void tcp_keepalive(void *tx)
{
    tcp_write(tx, " ", 1);
}

static void tcp_close(void *tx, bool flush)
{
    tcp_stream *t = tx;

    if (t->closing)
        return;
    if (flush)
        tcp_write(t, "</stream:stream>", 16);
    t->closing = true;
    if (t->in_feed)
        vn_xml_parser_stop(t->parser);
    vn_conn_close(t->conn, flush);
}

static int tcp_start_tls(void *tx, SSL_CTX *ctx)
{
    tcp_stream *t = tx;
    return vn_conn_start_tls(t->conn, ctx);
}

static bool tcp_secure(void *tx)
{
    return vn_conn_is_tls(((tcp_stream *)tx)->conn);
}

static SSL *tcp_ssl(void *tx)
{
    tcp_stream *t = tx;
    return vn_conn_is_tls(t->conn) ? vn_conn_ssl(t->conn) : NULL;
}

static const char *tcp_peer_ip(void *tx)
{
    return vn_conn_peer_ip(((tcp_stream *)tx)->conn);
}

static void feed(tcp_stream *t, const char *data, size_t len);

/* Load shaping: pausing comes from inside the parser's stanza callback,
 * resuming from the shaper's timer, which parses what was held back. */
static void tcp_pause(void *tx, bool paused)
{
    tcp_stream *t = tx;

    if (t->closing)
        return;
    vn_conn_pause_reading(t->conn, paused);
    if (paused)
        vn_xml_parser_pause(t->parser);
    else
        feed(t, NULL, 0);
}

static const vn_c2s_transport tcp_transport = {
    .open = tcp_open,
    .element = tcp_element,
    .keepalive = tcp_keepalive,
    .close = tcp_close,
    .start_tls = tcp_start_tls,
    .secure = tcp_secure,
    .ssl = tcp_ssl,
    .peer_ip = tcp_peer_ip,
    .pause = tcp_pause,
};

/* ---- input: XML parser events to the state machine ---- */

static void after_element(tcp_stream *t)
{
    if (t->c2s && vn_c2s_take_restart(t->c2s)) {
        /* Bytes after <proceed/> or <success/> belong to a new stream that
         * a client may only start after our answer: nothing is lost. */
        t->restart = true;
        vn_xml_parser_stop(t->parser);
    }
}

static void on_stream_open(void *ud, const vn_stanza *header)
{
    tcp_stream *t = ud;
    if (t->c2s)
        vn_c2s_input_open(t->c2s, header);
}

static void on_stanza(void *ud, vn_stanza *st)
{
    tcp_stream *t = ud;
    if (!t->c2s || t->closing) {
        vn_stanza_free(st);
        return;
    }
    vn_c2s_input_element(t->c2s, st);
    after_element(t);
}

static void on_stream_close(void *ud)
{
    tcp_stream *t = ud;
    if (t->c2s)
        vn_c2s_input_close(t->c2s);
}

static void on_xml_error(void *ud, const char *condition, const char *text)
{
    tcp_stream *t = ud;
    if (t->c2s)
        vn_c2s_input_error(t->c2s, condition, text);
}

static const vn_xml_callbacks xml_callbacks = {
    .stream_open = on_stream_open,
    .stanza = on_stanza,
    .stream_close = on_stream_close,
    .error = on_xml_error,
};

/* ---- connection events ---- */

/* Parse data, or (data NULL) resume what a pause held back. */
static void feed(tcp_stream *t, const char *data, size_t len)
{
    t->in_feed = true;
    if (data)
        vn_xml_parser_feed(t->parser, data, len);
    else
        vn_xml_parser_resume(t->parser);
    t->in_feed = false;
    if (t->restart && !t->closing) {
        vn_xml_parser_reset(t->parser);
        t->restart = false;
    }
}

static void on_data(vn_conn *c, void *ud, const char *data, size_t len)
{
    tcp_stream *t = ud;

    if (t->closing || !t->c2s)
        return;
    vn_c2s_input_activity(t->c2s);
    feed(t, data, len);
}

static void on_close(vn_conn *c, void *ud, const char *reason)
{
    tcp_stream *t = ud;

    if (t->counted)
        vn_limits_connection_closed(vn_conn_peer_ip(c));
    if (t->c2s)
        vn_c2s_gone(t->c2s, reason);
    vn_xml_parser_free(t->parser);
    free(t);
}

static const vn_conn_callbacks conn_callbacks = {
    .on_data = on_data,
    .on_close = on_close,
};

void vn_c2s_accept(vn_conn *c, const vn_listener_conf *lc, void *ud)
{
    const vn_config *cfg = vn_srv.cfg;
    tcp_stream *t = vn_alloc(sizeof *t);

    t->conn = c;
    t->counted = vn_limits_connection_open(vn_conn_peer_ip(c));
    t->parser = vn_xml_parser_new(&xml_callbacks, t, cfg->max_stanza_size, cfg->max_xml_depth);
    t->c2s = vn_c2s_new(&tcp_transport, t);
    vn_conn_set_callbacks(c, &conn_callbacks, t);
    if (vn_conn_start(c) < 0) {
        vn_conn_close(c, false);
    } else if (!t->counted) {
        /* Over limits.max_connections_per_ip. On a plaintext connection our
         * header and a stream error cost nothing; direct TLS would need a
         * handshake first, so that connection just closes. */
        if (lc->type == VN_LISTEN_C2S)
            vn_c2s_close(t->c2s, "policy-violation", "Too many connections from your address");
        else
            tcp_close(t, false);
    }
}
