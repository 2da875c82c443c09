/*
 * c2s_tcp.c - the TCP transport of client streams: an XML stream over a
 * connection (xml_stream.h; plain with STARTTLS, or direct TLS per
 * XEP-0368) whose elements go to the c2s state machine, and whose output
 * is the RFC 6120 stream itself.
 */
#include <stdlib.h>
#include <string.h>

#include "abuse_limits.h"
#include "c2s.h"
#include "server.h"
#include "xml_stream.h"

typedef struct tcp_stream {
    vn_xml_stream *xs;
    vn_c2s *c2s;
    bool counted; /* in limits.max_connections_per_ip (abuse_limits.c) */
} tcp_stream;

/* ---- output: the transport the state machine writes through ---- */

static void tcp_open(void *tx, const char *stream_id, const char *from, const char *to)
{
    tcp_stream *t = tx;
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
    vn_xml_stream_write(t->xs, hdr.data, hdr.len);
    vn_buf_free(&hdr);
}

static int tcp_element(void *tx, const vn_stanza *st)
{
    return vn_xml_stream_write_element(((tcp_stream *)tx)->xs, st, VN_NS_CLIENT);
}

static size_t tcp_queued(void *tx)
{
    return vn_conn_queued(vn_xml_stream_conn(((tcp_stream *)tx)->xs));
}

static void tcp_keepalive(void *tx)
{
    vn_xml_stream_write(((tcp_stream *)tx)->xs, " ", 1);
}

static void tcp_close(void *tx, bool flush)
{
    vn_xml_stream_close(((tcp_stream *)tx)->xs, flush);
}

static int tcp_start_tls(void *tx, SSL_CTX *ctx)
{
    return vn_conn_start_tls(vn_xml_stream_conn(((tcp_stream *)tx)->xs), ctx);
}

static bool tcp_secure(void *tx)
{
    return vn_conn_is_tls(vn_xml_stream_conn(((tcp_stream *)tx)->xs));
}

static SSL *tcp_ssl(void *tx)
{
    vn_conn *c = vn_xml_stream_conn(((tcp_stream *)tx)->xs);
    return vn_conn_is_tls(c) ? vn_conn_ssl(c) : NULL;
}

static const char *tcp_peer_ip(void *tx)
{
    return vn_conn_peer_ip(vn_xml_stream_conn(((tcp_stream *)tx)->xs));
}

/* Load shaping: pausing comes from inside the parser's stanza callback,
 * resuming from the shaper's timer, which parses what was held back. */
static void tcp_pause(void *tx, bool paused)
{
    vn_xml_stream_pause(((tcp_stream *)tx)->xs, paused);
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
    .queued = tcp_queued,
};

/* ---- input: the XML stream's events to the state machine ---- */

static void on_stream_open(void *ud, const vn_stanza *header)
{
    vn_c2s_input_open(((tcp_stream *)ud)->c2s, header);
}

static void on_element(void *ud, vn_stanza *st)
{
    tcp_stream *t = ud;

    vn_c2s_input_element(t->c2s, st);
    /* Bytes after <proceed/> or <success/> belong to a new stream that a
     * client may only start after our answer: nothing is lost. */
    if (vn_c2s_take_restart(t->c2s))
        vn_xml_stream_restart(t->xs);
}

static void on_stream_close(void *ud)
{
    vn_c2s_input_close(((tcp_stream *)ud)->c2s);
}

static void on_xml_error(void *ud, const char *condition, const char *text)
{
    vn_c2s_input_error(((tcp_stream *)ud)->c2s, condition, text);
}

static void on_data(void *ud)
{
    vn_c2s_input_activity(((tcp_stream *)ud)->c2s);
}

/* The client does not read what we send. The state machine hears of it
 * through closed, from the loop, never from inside a write. */
static void on_overflow(void *ud)
{
    tcp_stream *t = ud;
    vn_log_info("c2s %s: output buffer full (client not reading): closing",
                vn_conn_peer_ip(vn_xml_stream_conn(t->xs)));
}

static void on_closed(void *ud, const char *reason)
{
    tcp_stream *t = ud;

    if (t->counted)
        vn_limits_connection_closed(vn_conn_peer_ip(vn_xml_stream_conn(t->xs)));
    vn_c2s_gone(t->c2s, reason);
    free(t);
}

static const vn_xml_stream_handler stream_handler = {
    .stream_open = on_stream_open,
    .element = on_element,
    .stream_close = on_stream_close,
    .error = on_xml_error,
    .data = on_data,
    .overflow = on_overflow,
    .closed = on_closed,
};

void vn_c2s_accept(vn_conn *c, const vn_listener_conf *lc, void *ud)
{
    tcp_stream *t = vn_alloc(sizeof *t);

    t->counted = vn_limits_connection_open(vn_conn_peer_ip(c));
    t->xs = vn_xml_stream_accept(c, &stream_handler, t);
    t->c2s = vn_c2s_new(&tcp_transport, t);
    if (vn_xml_stream_start(t->xs) == 0 && !t->counted) {
        /* Over limits.max_connections_per_ip. On a plaintext connection our
         * header and a stream error cost nothing; direct TLS would need a
         * handshake first, so that connection just closes. */
        if (lc->type == VN_LISTEN_C2S)
            vn_c2s_close(t->c2s, "policy-violation", "Too many connections from your address");
        else
            tcp_close(t, false);
    }
}
