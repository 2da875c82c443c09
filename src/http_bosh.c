/*
 * http_bosh.c - XMPP over BOSH (XEP-0124, XEP-0206): client streams
 * carried by HTTP long polling, each session a c2s transport.
 *
 * The client POSTs <body/> wrappers numbered by 'rid'. Requests are
 * processed in rid order (early ones wait for the gap to fill); their
 * child elements go to the stream, and the request is then held. Output
 * of the stream collects in the session and goes back in the oldest held
 * request; a request is answered empty when its 'wait' runs out or when
 * more than 'hold' are held. The last responses are kept so that a
 * repeated rid gets the same answer again. With no request held for
 * 'inactivity' seconds the session ends.
 *
 * When the stream closes, held requests are answered with a terminating
 * body (carrying a stream error, if any, under condition
 * 'remote-stream-error') and the session ends; a client that had no
 * request held then hears 'item-not-found' on its next one.
 *
 * Web pages on other origins may use it (CORS, answered by the HTTP
 * server) when http.allowed_origins lets them; a session counts as one
 * client connection for limits.max_connections_per_ip.
 */
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "abuse_limits.h"
#include "c2s.h"
#include "server.h"
#include "vestnik/http.h"
#include "web_transports.h"

#define NS_HTTPBIND "http://jabber.org/protocol/httpbind"
#define NS_XBOSH "urn:xmpp:xbosh"
#define BOSH_VERSION "1.11"
/* config.c caps http.bosh_max_hold at 8; 'requests' is hold + 1. */
#define MAX_REQUESTS 9
/* Largest rid a client may start from (XEP-0124 §14.1: 2^53 - 1). */
#define MAX_RID 9007199254740991ULL

typedef struct held_request {
    vn_http_request *req;
    uint64_t rid;
    uint64_t deadline_ms; /* answered empty then */
} held_request;

/* A request that came before its predecessors (a later rid). */
typedef struct early_request {
    vn_http_request *req;
    uint64_t rid;
    vn_stanza *body;
} early_request;

typedef struct sent_response {
    uint64_t rid; /* 0: none */
    char *body;
    size_t len;
} sent_response;

typedef struct bosh_session {
    char sid[33];
    vn_c2s *c2s; /* NULL once the stream is gone */
    char *peer_ip;
    char *to;        /* the client's 'to', for restarts */
    char *stream_id; /* from the stream's header: 'authid' */
    char *from;
    bool secure;
    unsigned wait, hold, requests;
    uint64_t rid;                    /* of the last request processed */
    bool first_response;             /* the session creation response is still to go */
    vn_buf out;                      /* serialized elements for the next response */
    held_request held[MAX_REQUESTS]; /* oldest first */
    size_t n_held;
    early_request early[MAX_REQUESTS];
    size_t n_early;
    sent_response sent[MAX_REQUESTS]; /* by rid % requests */
    bool in_input;                    /* feeding the stream: answer afterwards */
    bool stream_error;                /* out holds a <stream:error/> */
    bool stream_closed;               /* every response from now on terminates */
    const char *condition;            /* of the termination, or NULL */
    uv_timer_t wait_timer;            /* the oldest held request's wait */
    uv_timer_t life_timer;            /* inactivity; or the stream's end */
    int open_timers;
    UT_hash_handle hh;
} bosh_session;

static bosh_session *sessions; /* by sid */

static void flush(bosh_session *s);

/* ---- HTTP answers ---- */

static void respond(vn_http_request *req, const char *body, size_t len)
{
    vn_http_request_set_data(req, NULL);
    vn_http_respond(req, 200, "text/xml; charset=utf-8", body, len);
}

/* A terminal binding error for a request no session takes. */
static void respond_error(vn_http_request *req, const char *condition)
{
    char *body =
        vn_asprintf("<body xmlns='" NS_HTTPBIND "' type='terminate' condition='%s'/>", condition);
    respond(req, body, strlen(body));
    free(body);
}

static void append_attr(vn_buf *b, const char *name, const char *value)
{
    vn_buf_printf(b, " %s='", name);
    vn_buf_append_xml_escaped(b, value, strlen(value));
    vn_buf_append_str(b, "'");
}

static void creation_attrs(const bosh_session *s, vn_buf *b)
{
    vn_buf_printf(b,
                  " sid='%s' wait='%u' hold='%u' requests='%u' inactivity='%u' ver='" BOSH_VERSION
                  "' secure='%s' xmlns:xmpp='" NS_XBOSH "' xmpp:version='1.0'"
                  " xmpp:restartlogic='true'",
                  s->sid, s->wait, s->hold, s->requests, vn_srv.cfg->bosh_inactivity,
                  s->secure ? "true" : "false");
    if (s->from)
        append_attr(b, "from", s->from);
    if (s->stream_id)
        append_attr(b, "authid", s->stream_id);
}

/* Answer the oldest held request with what the stream has written. */
static void answer_oldest(bosh_session *s)
{
    held_request held = s->held[0];
    vn_buf body;

    memmove(&s->held[0], &s->held[1], --s->n_held * sizeof s->held[0]);
    vn_buf_init(&body);
    vn_buf_append_str(&body, "<body xmlns='" NS_HTTPBIND "' xmlns:stream='" VN_NS_STREAMS "'");
    if (s->first_response)
        creation_attrs(s, &body);
    s->first_response = false;
    if (s->stream_closed) {
        vn_buf_append_str(&body, " type='terminate'");
        if (s->condition)
            append_attr(&body, "condition", s->condition);
    }
    if (s->out.len) {
        vn_buf_append_str(&body, ">");
        vn_buf_append(&body, s->out.data, s->out.len);
        vn_buf_append_str(&body, "</body>");
        vn_buf_reset(&s->out);
    } else {
        vn_buf_append_str(&body, "/>");
    }

    sent_response *sent = &s->sent[held.rid % s->requests];
    free(sent->body);
    sent->rid = held.rid;
    sent->len = body.len;
    sent->body = vn_buf_steal(&body, NULL);
    respond(held.req, sent->body, sent->len);
}

/* ---- the session's life ---- */

static void free_session(uv_handle_t *h)
{
    bosh_session *s = h->data;

    if (--s->open_timers == 0)
        free(s);
}

/* The stream is gone; answer whatever still waits and forget the session. */
static void destroy(bosh_session *s)
{
    /* Out of the table first: answering the held requests may dispatch a
     * pipelined request, which must not find this session any more. */
    HASH_DEL(sessions, s);
    s->stream_closed = true;
    if (!s->condition)
        s->condition = "remote-connection-failed";
    while (s->n_held)
        answer_oldest(s);
    for (size_t i = 0; i < s->n_early; i++) {
        vn_stanza_free(s->early[i].body);
        respond_error(s->early[i].req, s->condition);
    }
    for (unsigned i = 0; i < s->requests; i++)
        free(s->sent[i].body);
    vn_buf_free(&s->out);
    vn_limits_connection_closed(s->peer_ip);
    free(s->peer_ip);
    free(s->to);
    free(s->stream_id);
    free(s->from);
    uv_close((uv_handle_t *)&s->wait_timer, free_session);
    uv_close((uv_handle_t *)&s->life_timer, free_session);
}

/* The stream closed (transport close): tell it it is gone, from the loop
 * rather than from inside its own close call. */
static void on_stream_end(uv_timer_t *timer)
{
    bosh_session *s = timer->data;
    vn_c2s *c2s = s->c2s;

    s->c2s = NULL;
    vn_c2s_gone(c2s, "closed");
    destroy(s);
}

static void on_inactivity(uv_timer_t *timer)
{
    bosh_session *s = timer->data;
    vn_c2s *c2s = s->c2s;

    vn_log_info("c2s %s: BOSH session %s inactive for %u s", s->peer_ip, s->sid,
                vn_srv.cfg->bosh_inactivity);
    s->c2s = NULL;
    vn_c2s_gone(c2s, "BOSH inactivity");
    destroy(s);
}

static void on_wait_expired(uv_timer_t *timer)
{
    bosh_session *s = timer->data;

    if (s->n_held)
        answer_oldest(s);
    flush(s);
}

/* Answer what can be answered, then set the timers for what is left. */
static void flush(bosh_session *s)
{
    if (s->in_input)
        return;
    if (s->stream_closed) {
        while (s->n_held)
            answer_oldest(s);
        return; /* on_stream_end follows */
    }
    if (s->out.len && s->n_held)
        answer_oldest(s);
    while (s->n_held > s->hold)
        answer_oldest(s);

    uint64_t now = uv_now(vn_srv.loop);
    if (s->n_held) {
        uint64_t deadline = s->held[0].deadline_ms;
        uv_timer_start(&s->wait_timer, on_wait_expired, deadline > now ? deadline - now : 0, 0);
        uv_timer_stop(&s->life_timer);
    } else {
        uv_timer_stop(&s->wait_timer);
        if (!uv_is_active((uv_handle_t *)&s->life_timer))
            uv_timer_start(&s->life_timer, on_inactivity,
                           (uint64_t)vn_srv.cfg->bosh_inactivity * 1000, 0);
    }
}

/* ---- the transport ---- */

static void bosh_open(void *tx, const char *stream_id, const char *from, const char *to)
{
    bosh_session *s = tx;

    free(s->stream_id);
    s->stream_id = vn_strdup(stream_id);
    free(s->from);
    s->from = vn_strdup(from);
}

static int bosh_element(void *tx, const vn_stanza *st)
{
    bosh_session *s = tx;

    if (s->out.len > vn_srv.cfg->max_output_buffer)
        return -1;
    if (vn_stanza_is(st, "error", VN_NS_STREAMS))
        s->stream_error = true;
    vn_web_serialize(st, &s->out);
    flush(s);
    return 0;
}

static void bosh_close(void *tx, bool flush_output)
{
    bosh_session *s = tx;

    if (s->stream_closed)
        return;
    s->stream_closed = true;
    if (!flush_output) {
        vn_buf_reset(&s->out);
        s->condition = "remote-connection-failed";
    } else if (s->stream_error && !s->condition) {
        s->condition = "remote-stream-error";
    }
    uv_timer_stop(&s->wait_timer);
    uv_timer_start(&s->life_timer, on_stream_end, 0, 0);
    flush(s);
}

static bool bosh_secure(void *tx)
{
    return ((bosh_session *)tx)->secure;
}

/* No channel binding: the requests of a session come over any number of
 * HTTP connections. */
static SSL *bosh_ssl(void *tx)
{
    return NULL;
}

static const char *bosh_peer_ip(void *tx)
{
    return ((bosh_session *)tx)->peer_ip;
}

static const vn_c2s_transport bosh_transport = {
    .open = bosh_open,
    .element = bosh_element,
    .keepalive = NULL,
    .close = bosh_close,
    .start_tls = NULL,
    .secure = bosh_secure,
    .ssl = bosh_ssl,
    .peer_ip = bosh_peer_ip,
};

/* ---- requests ---- */

static bool parse_uint(const char *text, uint64_t max, uint64_t *value)
{
    char *end;

    if (!text || *text < '0' || *text > '9')
        return false;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end || v > max)
        return false;
    *value = v;
    return true;
}

static void open_stream(bosh_session *s, const char *version)
{
    vn_stanza *header = vn_web_stream_header(s->to, version, NULL);
    vn_c2s_input_open(s->c2s, header);
    vn_stanza_free(header);
}

/* Hand the request's content to the stream, then hold the request. */
static void process(bosh_session *s, vn_http_request *req, uint64_t rid, vn_stanza *body)
{
    const char *type = vn_stanza_attr(body, "type");
    const char *restart = vn_stanza_attr(body, NS_XBOSH "|restart");

    s->rid = rid;
    s->in_input = true;
    if (!s->stream_closed) {
        vn_c2s_input_activity(s->c2s);
        if (restart && strcmp(restart, "true") == 0)
            open_stream(s, "1.0");
        vn_stanza *child;
        while (!s->stream_closed && (child = vn_stanza_first_element(body))) {
            vn_stanza_detach(child);
            vn_c2s_input_element(s->c2s, child);
            vn_c2s_take_restart(s->c2s); /* the client restarts by xmpp:restart */
        }
        if (!s->stream_closed && type && strcmp(type, "terminate") == 0)
            vn_c2s_input_close(s->c2s);
    }
    s->in_input = false;
    vn_stanza_free(body);
    s->held[s->n_held++] = (held_request){
        .req = req, .rid = rid, .deadline_ms = uv_now(vn_srv.loop) + (uint64_t)s->wait * 1000};
    vn_http_request_set_data(req, s);
}

/* Process the request with the next rid, and any early ones it unblocks. */
static void process_in_order(bosh_session *s, vn_http_request *req, uint64_t rid, vn_stanza *body)
{
    process(s, req, rid, body);
    for (size_t i = 0; i < s->n_early;) {
        if (s->early[i].rid != s->rid + 1) {
            i++;
            continue;
        }
        early_request next = s->early[i];
        s->early[i] = s->early[--s->n_early];
        process(s, next.req, next.rid, next.body);
        i = 0;
    }
    flush(s);
}

static void session_request(bosh_session *s, vn_http_request *req, uint64_t rid, vn_stanza *body)
{
    if (s->secure && !vn_http_request_is_tls(req)) {
        vn_stanza_free(body);
        respond_error(req, "policy-violation"); /* a secure session over plain HTTP */
        return;
    }
    if (rid <= s->rid) {
        /* A repeat: the same answer again, if it is still known. */
        const sent_response *sent = &s->sent[rid % s->requests];
        vn_stanza_free(body);
        if (sent->rid == rid)
            respond(req, sent->body, sent->len);
        else
            respond_error(req, "item-not-found");
        return;
    }
    /* Outside the window, or more requests at once than agreed: a
     * terminal binding error (XEP-0124 §14.1, §11). */
    if (rid > s->rid + s->requests || s->n_held + s->n_early >= s->requests) {
        vn_stanza_free(body);
        s->condition = rid > s->rid + s->requests ? "item-not-found" : "policy-violation";
        respond_error(req, s->condition);
        if (!s->stream_closed)
            vn_c2s_close(s->c2s, NULL, NULL);
        return;
    }
    if (rid > s->rid + 1) {
        for (size_t i = 0; i < s->n_early; i++)
            if (s->early[i].rid == rid) {
                vn_stanza_free(body);
                respond_error(req, "bad-request");
                return;
            }
        s->early[s->n_early++] = (early_request){.req = req, .rid = rid, .body = body};
        vn_http_request_set_data(req, s);
        return;
    }
    process_in_order(s, req, rid, body);
}

static unsigned requested(const vn_stanza *body, const char *name, unsigned fallback, unsigned max)
{
    uint64_t value;

    if (!parse_uint(vn_stanza_attr(body, name), UINT32_MAX, &value))
        return fallback;
    return value > max ? max : (unsigned)value;
}

static void create_session(vn_http_request *req, uint64_t rid, vn_stanza *body)
{
    const vn_config *cfg = vn_srv.cfg;
    unsigned char random[16];

    if (!vn_limits_connection_open(vn_http_request_peer_ip(req))) {
        vn_log_info("c2s %s: BOSH session refused: too many connections from the address",
                    vn_http_request_peer_ip(req));
        vn_stanza_free(body);
        respond_error(req, "policy-violation");
        return;
    }
    bosh_session *s = vn_alloc(sizeof *s);
    if (RAND_bytes(random, sizeof random) != 1)
        abort();
    for (size_t i = 0; i < sizeof random; i++)
        snprintf(s->sid + 2 * i, 3, "%02x", random[i]);
    s->peer_ip = vn_strdup(vn_http_request_peer_ip(req));
    s->to = vn_strdup(vn_stanza_attr(body, "to"));
    s->secure = vn_http_request_is_tls(req);
    s->wait = requested(body, "wait", cfg->bosh_max_wait, cfg->bosh_max_wait);
    s->hold = requested(body, "hold", 1, cfg->bosh_max_hold);
    s->requests = s->hold + 1;
    s->rid = rid - 1;
    s->first_response = true;
    vn_buf_init(&s->out);
    uv_timer_init(vn_srv.loop, &s->wait_timer);
    uv_timer_init(vn_srv.loop, &s->life_timer);
    s->wait_timer.data = s->life_timer.data = s;
    s->open_timers = 2;
    HASH_ADD_STR(sessions, sid, s);
    vn_log_info("c2s %s: BOSH session %s (wait %u, hold %u)", s->peer_ip, s->sid, s->wait, s->hold);

    s->c2s = vn_c2s_new(&bosh_transport, s);
    const char *version = vn_stanza_attr(body, NS_XBOSH "|version");
    s->in_input = true;
    open_stream(s, version ? version : "1.0");
    s->in_input = false;
    process_in_order(s, req, rid, body);
}

static void on_request(vn_http_request *req, void *ud)
{
    const char *method = vn_http_request_method(req);
    size_t len;
    const char *xml = vn_http_request_body(req, &len);

    if (strcmp(vn_http_request_path(req), vn_srv.cfg->bosh_path) != 0) {
        vn_http_respond(req, 404, "text/plain; charset=utf-8", "Not found\n", 10);
        return;
    }
    if (!vn_http_request_origin_allowed(req)) {
        static const char why[] = "403 Forbidden: origin not in http.allowed_origins\n";
        vn_log_info("c2s %s: BOSH request from origin %s refused", vn_http_request_peer_ip(req),
                    vn_http_request_header(req, "Origin"));
        vn_http_respond(req, 403, "text/plain; charset=utf-8", why, sizeof why - 1);
        return;
    }
    if (strcmp(method, "POST") != 0) {
        static const char why[] = "XMPP over BOSH: POST <body/> wrappers here\n";
        vn_http_response_header(req, "Allow", "POST");
        vn_http_respond(req, 405, "text/plain; charset=utf-8", why, sizeof why - 1);
        return;
    }

    /* A request's body counts as one stanza for limits.max_stanza_size. */
    if (len > vn_srv.cfg->max_stanza_size) {
        respond_error(req, "policy-violation");
        return;
    }
    const char *condition;
    vn_stanza *body = vn_web_parse(xml, len, 1, &condition);
    uint64_t rid;
    if (!body || !vn_stanza_is(body, "body", NS_HTTPBIND) ||
        !parse_uint(vn_stanza_attr(body, "rid"), MAX_RID, &rid) || rid == 0) {
        vn_stanza_free(body);
        respond_error(req, "bad-request");
        return;
    }
    const char *sid = vn_stanza_attr(body, "sid");
    if (!sid) {
        create_session(req, rid, body);
        return;
    }
    bosh_session *s;
    HASH_FIND_STR(sessions, sid, s);
    if (!s) {
        vn_stanza_free(body);
        respond_error(req, "item-not-found");
        return;
    }
    session_request(s, req, rid, body);
}

/* The client's connection went away with the request unanswered. */
static void on_abort(vn_http_request *req, void *ud)
{
    bosh_session *s = vn_http_request_data(req);

    if (!s)
        return;
    for (size_t i = 0; i < s->n_held; i++)
        if (s->held[i].req == req) {
            memmove(&s->held[i], &s->held[i + 1], (s->n_held - i - 1) * sizeof s->held[0]);
            s->n_held--;
            flush(s);
            return;
        }
    for (size_t i = 0; i < s->n_early; i++)
        if (s->early[i].req == req) {
            vn_stanza_free(s->early[i].body);
            s->early[i] = s->early[--s->n_early];
            return;
        }
}

static const vn_http_cors bosh_cors = {.methods = "POST", .headers = "Content-Type"};

static const vn_http_handler bosh_handler = {
    .on_request = on_request,
    .on_abort = on_abort,
    .cors = &bosh_cors,
};

void vn_bosh_init(void)
{
    if (vn_http_route_add(vn_srv.cfg->bosh_path, &bosh_handler, NULL) < 0)
        vn_log_error("http: bosh_path %s is taken by another route", vn_srv.cfg->bosh_path);
}
