/*
 * http_websocket.c - XMPP over WebSocket (RFC 7395): the HTTP route that
 * accepts an Upgrade with the "xmpp" subprotocol, and the c2s transport on
 * the connection it takes over. wslay does the framing; each text message
 * is one element, with <open/> and <close/> of the framing namespace in
 * place of the stream header and its end. There is no STARTTLS: the
 * stream is secure when the HTTP connection is (an https listener).
 *
 * Browsers send Origin with the upgrade and WebSocket has no CORS: the
 * Origin check of http.allowed_origins is the only say the server has
 * over which pages connect. A stream counts as one client connection for
 * limits.max_connections_per_ip, like a TCP one.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "abuse_limits.h"
#include "c2s.h"
#include "http_server.h"
#include "server.h"
#include "web_transports.h"

#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"
#define WEBSOCKET_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct ws_stream {
    vn_conn *conn;
    vn_c2s *c2s;
    wslay_event_context_ptr ws;
    const char *input; /* received bytes wslay has yet to read */
    size_t input_len;
    uint64_t message_size; /* of the message being received, so far */
    bool in_recv;          /* inside wslay_event_recv: send afterwards */
    bool closing;
    bool flush_on_close;  /* send what is queued before closing */
    bool close_frame_due; /* ours, after the queued messages */
    /* Load shaping (shaper.h): while paused, wslay reads nothing more; the
     * messages it had buffered already wait in held_messages (length, then
     * bytes, each) and unread input in held_input, in order. */
    bool paused;
    vn_buf held_messages;
    vn_buf held_input;
} ws_stream;

/* ---- output ---- */

static void ws_finish_close(ws_stream *t);

/* Hand wslay's queue to the connection; inside wslay_event_recv, on_data
 * does it afterwards. */
static void ws_send(ws_stream *t)
{
    if (t->in_recv)
        return;
    if (t->closing) {
        ws_finish_close(t);
    } else if (wslay_event_send(t->ws) != 0) {
        vn_log_info("c2s %s: output buffer full (client not reading): closing",
                    vn_conn_peer_ip(t->conn));
        t->closing = true;
        vn_conn_close(t->conn, false);
    }
}

/* wslay sends control frames ahead of queued messages: the close frame is
 * queued only once the messages before it (a stream error, <close/>) are
 * out. */
static void ws_finish_close(ws_stream *t)
{
    if (t->flush_on_close && wslay_event_send(t->ws) == 0 && t->close_frame_due) {
        wslay_event_queue_close(t->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
        wslay_event_send(t->ws);
    }
    t->close_frame_due = false;
    vn_conn_close(t->conn, t->flush_on_close);
}

static int ws_queue(ws_stream *t, uint8_t opcode, const char *data, size_t len)
{
    struct wslay_event_msg msg = {
        .opcode = opcode, .msg = (const uint8_t *)data, .msg_length = len};

    if (t->closing)
        return 0;
    if (wslay_event_queue_msg(t->ws, &msg) != 0)
        return -1;
    ws_send(t);
    return t->closing ? -1 : 0;
}

static void ws_open(void *tx, const char *stream_id, const char *from, const char *to)
{
    vn_buf open;

    vn_buf_init(&open);
    vn_buf_append_str(&open, "<open xmlns='" NS_FRAMING "' id='");
    vn_buf_append_str(&open, stream_id);
    vn_buf_append_str(&open, "' from='");
    vn_buf_append_xml_escaped(&open, from, strlen(from));
    if (to) {
        vn_buf_append_str(&open, "' to='");
        vn_buf_append_xml_escaped(&open, to, strlen(to));
    }
    vn_buf_append_str(&open, "' version='1.0' xml:lang='en'/>");
    ws_queue(tx, WSLAY_TEXT_FRAME, open.data, open.len);
    vn_buf_free(&open);
}

static int ws_element(void *tx, const vn_stanza *st)
{
    static vn_buf out; /* reused: the loop is single-threaded */

    vn_buf_reset(&out);
    vn_web_serialize(st, &out);
    return ws_queue(tx, WSLAY_TEXT_FRAME, out.data, out.len);
}

static void ws_keepalive(void *tx)
{
    ws_queue(tx, WSLAY_PING, "", 0);
}

static void ws_close(void *tx, bool flush)
{
    static const char close[] = "<close xmlns='" NS_FRAMING "'/>";
    ws_stream *t = tx;

    if (t->closing)
        return;
    if (flush) {
        ws_queue(t, WSLAY_TEXT_FRAME, close, sizeof close - 1);
        t->close_frame_due = true;
    }
    t->closing = true;
    t->flush_on_close = flush;
    ws_send(t);
}

static bool ws_secure(void *tx)
{
    return vn_conn_is_tls(((ws_stream *)tx)->conn);
}

static SSL *ws_ssl(void *tx)
{
    ws_stream *t = tx;
    return vn_conn_is_tls(t->conn) ? vn_conn_ssl(t->conn) : NULL;
}

static const char *ws_peer_ip(void *tx)
{
    return vn_conn_peer_ip(((ws_stream *)tx)->conn);
}

static void ws_pause(void *tx, bool paused);

static const vn_c2s_transport ws_transport = {
    .open = ws_open,
    .element = ws_element,
    .keepalive = ws_keepalive,
    .close = ws_close,
    .start_tls = NULL,
    .secure = ws_secure,
    .ssl = ws_ssl,
    .peer_ip = ws_peer_ip,
    .pause = ws_pause,
};

/* ---- input: one message, one element ---- */

static void on_text_message(ws_stream *t, const char *data, size_t len)
{
    const char *condition;

    if (t->paused) {
        vn_buf_append(&t->held_messages, &len, sizeof len);
        vn_buf_append(&t->held_messages, data, len);
        return;
    }
    vn_stanza *el = vn_web_parse(data, len, 0, &condition);

    if (!el) {
        vn_c2s_input_error(t->c2s, condition, "Each message must be one XML element");
        return;
    }
    if (vn_stanza_is(el, "open", NS_FRAMING)) {
        vn_stanza *header =
            vn_web_stream_header(vn_stanza_attr(el, "to"), vn_stanza_attr(el, "version"),
                                 vn_stanza_attr(el, "xml:lang"));
        vn_c2s_input_open(t->c2s, header);
        vn_stanza_free(header);
        vn_stanza_free(el);
    } else if (vn_stanza_is(el, "close", NS_FRAMING)) {
        vn_stanza_free(el);
        vn_c2s_input_close(t->c2s);
    } else {
        vn_c2s_input_element(t->c2s, el);
    }
    /* A restart needs nothing of ours: the client sends a new <open/>. */
    vn_c2s_take_restart(t->c2s);
}

/* Refuse an oversized message from its frame headers, before wslay has
 * buffered all of it. */
static void on_frame_start(wslay_event_context_ptr ws,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *ud)
{
    ws_stream *t = ud;

    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        t->message_size = arg->payload_length;
    else if (arg->opcode == WSLAY_CONTINUATION_FRAME)
        t->message_size += arg->payload_length;
    else
        return;
    if (t->message_size > vn_srv.cfg->max_stanza_size && !t->closing)
        vn_c2s_input_error(t->c2s, "policy-violation", "Message larger than max_stanza_size");
}

static void on_message(wslay_event_context_ptr ws, const struct wslay_event_on_msg_recv_arg *arg,
                       void *ud)
{
    ws_stream *t = ud;

    if (t->closing)
        return;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME: on_text_message(t, (const char *)arg->msg, arg->msg_length); break;
    case WSLAY_BINARY_FRAME:
        vn_c2s_input_error(t->c2s, "bad-format", "XMPP over WebSocket uses text messages");
        break;
    case WSLAY_CONNECTION_CLOSE:
        /* Closed without <close/>: like a TCP end of stream. wslay has
         * queued its answering close frame; on_data sends it. */
        t->closing = true;
        t->flush_on_close = true;
        break;
    default: break; /* wslay answers pings itself; pongs count as activity */
    }
}

static ssize_t ws_recv(wslay_event_context_ptr ws, uint8_t *buf, size_t len, int flags, void *ud)
{
    ws_stream *t = ud;

    if (t->input_len == 0 || t->paused) {
        wslay_event_set_error(ws, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < t->input_len ? len : t->input_len;
    memcpy(buf, t->input, n);
    t->input += n;
    t->input_len -= n;
    return (ssize_t)n;
}

static ssize_t ws_write(wslay_event_context_ptr ws, const uint8_t *data, size_t len, int flags,
                        void *ud)
{
    ws_stream *t = ud;

    if (vn_conn_write(t->conn, (const char *)data, len) < 0) {
        wslay_event_set_error(ws, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static const struct wslay_event_callbacks wslay_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_write,
    .on_frame_recv_start_callback = on_frame_start,
    .on_msg_recv_callback = on_message,
};

/* ---- connection events ---- */

static void on_data(vn_conn *c, void *ud, const char *data, size_t len)
{
    ws_stream *t = ud;

    if (t->closing)
        return;
    vn_c2s_input_activity(t->c2s);
    if (t->paused) {
        vn_buf_append(&t->held_input, data, len);
        return;
    }
    t->input = data;
    t->input_len = len;
    t->in_recv = true;
    int rc = wslay_event_recv(t->ws);
    t->in_recv = false;
    if (t->paused && t->input_len)
        vn_buf_append(&t->held_input, t->input, t->input_len);
    t->input_len = 0;
    if (rc != 0 && !t->closing) {
        vn_log_info("c2s %s: WebSocket protocol error: closing", vn_conn_peer_ip(c));
        t->closing = true;
        t->flush_on_close = true; /* wslay queued a close frame saying why */
    }
    ws_send(t);
}

static void on_close(vn_conn *c, void *ud, const char *reason)
{
    ws_stream *t = ud;

    vn_limits_connection_closed(vn_conn_peer_ip(c));
    vn_c2s_gone(t->c2s, reason);
    wslay_event_context_free(t->ws);
    vn_buf_free(&t->held_messages);
    vn_buf_free(&t->held_input);
    free(t);
}

/* Resuming hands over the held messages, then the held input, unless a
 * message pauses the stream again (what is left is held on). */
static void ws_pause(void *tx, bool paused)
{
    ws_stream *t = tx;
    size_t len, off = 0;

    if (t->closing || t->paused == paused)
        return;
    t->paused = paused;
    vn_conn_pause_reading(t->conn, paused);
    if (paused)
        return;
    char *held = vn_buf_steal(&t->held_messages, &len);
    while (off < len && !t->paused && !t->closing) {
        size_t n;
        memcpy(&n, held + off, sizeof n);
        on_text_message(t, held + off + sizeof n, n);
        off += sizeof n + n;
    }
    if (off < len && t->paused) /* the rest, ahead of nothing: held is empty */
        vn_buf_append(&t->held_messages, held + off, len - off);
    free(held);
    if (t->paused || t->closing || !t->held_input.len)
        return;
    char *input = vn_buf_steal(&t->held_input, &len);
    on_data(t->conn, t, input, len);
    free(input);
}

static const vn_conn_callbacks conn_callbacks = {
    .on_data = on_data,
    .on_close = on_close,
};

/* ---- the HTTP route: the opening handshake (RFC 6455 §4.2) ---- */

typedef struct protocol_search {
    bool xmpp_offered;
} protocol_search;

/* Sec-WebSocket-Protocol may come as several headers, each a list. */
static void find_xmpp_protocol(const char *name, const char *value, void *ud)
{
    protocol_search *search = ud;

    if (strcasecmp(name, "Sec-WebSocket-Protocol") != 0)
        return;
    for (const char *p = value; *p;) {
        p += strspn(p, " \t,");
        size_t token_len = strcspn(p, " \t,");
        if (token_len == 4 && strncmp(p, "xmpp", 4) == 0)
            search->xmpp_offered = true;
        p += token_len;
    }
}

static bool header_is(const vn_http_request *req, const char *name, const char *value)
{
    const char *found = vn_http_request_header(req, name);
    return found && strcasecmp(found, value) == 0;
}

static void refuse(vn_http_request *req, int status, const char *why)
{
    vn_http_respond(req, status, "text/plain; charset=utf-8", why, strlen(why));
}

static void accept_key(const char *key, char accept[29])
{
    unsigned char digest[SHA_DIGEST_LENGTH];
    char *keyed = vn_asprintf("%s%s", key, WEBSOCKET_GUID);

    SHA1((const unsigned char *)keyed, strlen(keyed), digest);
    free(keyed);
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
}

static void start_stream(vn_conn *c, const vn_buf *rest)
{
    const vn_config *cfg = vn_srv.cfg;
    ws_stream *t = vn_alloc(sizeof *t);

    t->conn = c;
    if (wslay_event_context_server_init(&t->ws, &wslay_callbacks, t) != 0)
        abort(); /* out of memory */
    /* A hard cap for wslay's buffer; on_frame_start refuses anything over
     * max_stanza_size with a stream error first. */
    wslay_event_config_set_max_recv_msg_length(t->ws, 2 * cfg->max_stanza_size);
    vn_conn_set_callbacks(c, &conn_callbacks, t);
    t->c2s = vn_c2s_new(&ws_transport, t);
    if (rest->len)
        on_data(c, t, rest->data, rest->len);
}

static void on_request(vn_http_request *req, void *ud)
{
    const char *key = vn_http_request_header(req, "Sec-WebSocket-Key");
    protocol_search search = {false};

    if (strcmp(vn_http_request_path(req), vn_srv.cfg->websocket_path) != 0) {
        refuse(req, 404, "Not found\n");
        return;
    }
    if (strcmp(vn_http_request_method(req), "GET") != 0 || !vn_http_request_is_upgrade(req) ||
        !header_is(req, "Upgrade", "websocket")) {
        vn_http_response_header(req, "Upgrade", "websocket");
        refuse(req, 426, "XMPP over WebSocket: upgrade this GET to a WebSocket\n");
        return;
    }
    if (!header_is(req, "Sec-WebSocket-Version", "13")) {
        vn_http_response_header(req, "Sec-WebSocket-Version", "13");
        refuse(req, 426, "WebSocket version 13 only\n");
        return;
    }
    vn_http_request_foreach_header(req, find_xmpp_protocol, &search);
    if (!key || !*key || !search.xmpp_offered) {
        refuse(req, 400, "The WebSocket subprotocol 'xmpp' is required (RFC 7395)\n");
        return;
    }
    if (!vn_http_request_origin_allowed(req)) {
        vn_log_info("c2s %s: WebSocket from origin %s refused", vn_http_request_peer_ip(req),
                    vn_http_request_header(req, "Origin"));
        refuse(req, 403, "Origin not in http.allowed_origins\n");
        return;
    }
    if (!vn_limits_connection_open(vn_http_request_peer_ip(req))) {
        vn_log_info("c2s %s: WebSocket refused: too many connections from the address",
                    vn_http_request_peer_ip(req));
        refuse(req, 429, "Too many connections from your address\n");
        return;
    }

    char accept[29];
    accept_key(key, accept);
    vn_buf rest;
    vn_buf_init(&rest);
    vn_conn *c = vn_http_detach(req, &rest);
    vn_buf response;
    vn_buf_init(&response);
    vn_buf_printf(&response,
                  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                  "Sec-WebSocket-Protocol: xmpp\r\n\r\n",
                  accept);
    vn_conn_write(c, response.data, response.len);
    vn_buf_free(&response);
    start_stream(c, &rest);
    vn_buf_free(&rest);
}

static const vn_http_handler websocket_handler = {
    .on_request = on_request,
};

void vn_websocket_init(void)
{
    if (vn_http_route_add(vn_srv.cfg->websocket_path, &websocket_handler, NULL) < 0)
        vn_log_error("http: websocket_path %s is taken by another route",
                     vn_srv.cfg->websocket_path);
}
