/*
 * http_server.c - HTTP/1.1 on the http and https listeners.
 *
 * http_parser turns bytes into requests; routes (vestnik/http.h) answer
 * them. One request per connection is in progress at a time: when a
 * request is complete the parser is paused until its response is
 * finished, and whatever the client pipelined meanwhile waits in the
 * connection's input buffer, so responses always go out in request order.
 *
 * A per-connection timer serves one purpose at a time: the request timeout
 * (from the first byte of a request until its headers are in, and again
 * between reads of its body), the keep-alive idle timeout between requests,
 * polling for room in the output queue while a streamed response waits
 * for it (vn_conn reports no drain event), or resuming with a pipelined
 * request on the next loop turn. A response that finishes outside
 * process_input (from a route's timer or worker job) never dispatches the
 * next request from inside that call: the route's own state may be in the
 * middle of a change there.
 *
 * CORS (vestnik/http.h): the Origin of a request to a route with a
 * vn_http_cors is checked once its headers are in; preflights are answered
 * here and never reach a route.
 */
#include "http_server.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server.h"
#include "tls.h"
#include "vestnik/log.h"

#define WRITABLE_POLL_MS 5
#define HEALTH_PATH "/health"

typedef struct route {
    char *prefix;
    size_t prefix_len;
    const vn_http_handler *handler;
    void *ud;
} route;

static route *routes;
static size_t n_routes;

typedef struct header {
    char *name;
    char *value;
} header;

typedef enum { TIMER_OFF, TIMER_REQUEST, TIMER_IDLE, TIMER_WRITABLE, TIMER_RESUME } timer_purpose;

typedef struct http_conn http_conn;

struct vn_http_request {
    http_conn *hc;
    const route *route; /* NULL: answered by the server itself */
    char method[16];
    vn_buf url;
    char *path;
    char *query;
    header *headers;
    size_t n_headers;
    vn_buf field, value; /* the header being read */
    bool in_value;
    size_t header_bytes;
    int64_t content_length;
    vn_buf body; /* for routes without on_body */
    size_t body_bytes;
    bool keep_alive;
    bool upgrade;
    bool preflight;           /* a CORS preflight, answered by the server */
    const vn_http_cors *cors; /* of the route */
    char *allow_origin;       /* Access-Control-Allow-Origin for the response */
    bool complete;            /* the whole request was read */
    bool responding;          /* the response has started */
    uint64_t to_send;         /* body bytes of a streamed response still due */
    vn_buf response_headers;
    void *data;
};

struct http_conn {
    vn_conn *conn;
    http_parser parser;
    uv_timer_t timer;
    timer_purpose timer_purpose;
    bool tls;
    size_t max_header_size;
    size_t max_body_size;
    size_t max_output;
    unsigned request_timeout_ms;
    unsigned keepalive_timeout_ms;

    vn_http_request *req; /* being read or answered */
    vn_buf input;         /* received, not yet parsed */
    size_t input_off;     /* parsed up to here during process_input */
    bool processing;      /* process_input is on the stack */
    bool closing;         /* no more requests: close after the response */
    bool detached;        /* handed over after Upgrade */
    http_conn *prev, *next;
};

static http_conn *conns;
static size_t n_conns;

static void process_input(http_conn *hc);

/* ---- routes ---- */

int vn_http_route_add(const char *prefix, const vn_http_handler *handler, void *ud)
{
    for (size_t i = 0; i < n_routes; i++)
        if (strcmp(routes[i].prefix, prefix) == 0)
            return -1;
    routes = vn_realloc(routes, (n_routes + 1) * sizeof *routes);
    routes[n_routes++] = (route){vn_strdup(prefix), strlen(prefix), handler, ud};
    return 0;
}

void vn_http_route_remove(const char *prefix)
{
    for (size_t i = 0; i < n_routes; i++) {
        if (strcmp(routes[i].prefix, prefix) == 0) {
            free(routes[i].prefix);
            routes[i] = routes[--n_routes];
            return;
        }
    }
}

int vn_http_listener_port(bool tls)
{
    const vn_config *cfg = vn_srv.cfg;

    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].type == (tls ? VN_LISTEN_HTTPS : VN_LISTEN_HTTP))
            return cfg->listeners[i].port;
    return 0;
}

static const route *find_route(const char *path)
{
    const route *best = NULL;

    /* The server's own, even under a route claiming "/" (a web client). */
    if (strcmp(path, HEALTH_PATH) == 0)
        return NULL;
    for (size_t i = 0; i < n_routes; i++)
        if (strncmp(path, routes[i].prefix, routes[i].prefix_len) == 0 &&
            (!best || routes[i].prefix_len > best->prefix_len))
            best = &routes[i];
    return best;
}

/* ---- requests ---- */

static vn_http_request *request_new(http_conn *hc)
{
    vn_http_request *req = vn_alloc(sizeof *req);

    req->hc = hc;
    req->content_length = -1;
    vn_buf_init(&req->url);
    vn_buf_init(&req->field);
    vn_buf_init(&req->value);
    vn_buf_init(&req->body);
    vn_buf_init(&req->response_headers);
    return req;
}

static void request_free(vn_http_request *req)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->headers);
    free(req->path);
    free(req->query);
    free(req->allow_origin);
    vn_buf_free(&req->url);
    vn_buf_free(&req->field);
    vn_buf_free(&req->value);
    vn_buf_free(&req->body);
    vn_buf_free(&req->response_headers);
    free(req);
}

/* The route hears that its request ends without (all of) its response. */
static void request_abort(vn_http_request *req)
{
    if (req->route && req->route->handler->on_abort)
        req->route->handler->on_abort(req, req->route->ud);
}

const char *vn_http_request_method(const vn_http_request *req)
{
    return req->method;
}

const char *vn_http_request_path(const vn_http_request *req)
{
    return req->path;
}

const char *vn_http_request_query(const vn_http_request *req)
{
    return req->query;
}

const char *vn_http_request_header(const vn_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

void vn_http_request_foreach_header(const vn_http_request *req, vn_http_header_cb cb, void *ud)
{
    for (size_t i = 0; i < req->n_headers; i++)
        cb(req->headers[i].name, req->headers[i].value, ud);
}

int64_t vn_http_request_content_length(const vn_http_request *req)
{
    return req->content_length;
}

const char *vn_http_request_body(const vn_http_request *req, size_t *len)
{
    *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

bool vn_http_request_is_upgrade(const vn_http_request *req)
{
    return req->upgrade;
}

bool vn_http_request_is_tls(const vn_http_request *req)
{
    return req->hc->tls;
}

const char *vn_http_request_peer_ip(const vn_http_request *req)
{
    return vn_conn_peer_ip(req->hc->conn);
}

/* ---- origins ---- */

/* The request's Origin is the server itself as the client reached it. */
static bool is_same_origin(const vn_http_request *req, const char *origin)
{
    const char *host = vn_http_request_header(req, "Host");
    const char *scheme = req->hc->tls ? "https://" : "http://";
    size_t scheme_len = strlen(scheme);

    return host && strncasecmp(origin, scheme, scheme_len) == 0 &&
           strcasecmp(origin + scheme_len, host) == 0;
}

bool vn_http_request_origin_allowed(const vn_http_request *req)
{
    const vn_config *cfg = vn_srv.cfg;
    const char *origin = vn_http_request_header(req, "Origin");

    if (!origin || !cfg->http_origins_restricted || is_same_origin(req, origin))
        return true;
    for (size_t i = 0; i < cfg->n_http_allowed_origins; i++)
        if (strcasecmp(origin, cfg->http_allowed_origins[i]) == 0)
            return true;
    return false;
}

/* Whether token is one of the comma-separated list (case-insensitive). */
static bool list_has(const char *list, const char *token, size_t token_len)
{
    for (const char *p = list; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (len && len == token_len && strncasecmp(p, token, len) == 0)
            return true;
        p += len;
    }
    return false;
}

/* Headers-complete: what the response to a page on another origin says. */
static void check_origin(vn_http_request *req)
{
    const char *origin = vn_http_request_header(req, "Origin");

    req->cors = req->route ? req->route->handler->cors : NULL;
    req->preflight =
        strcmp(req->method, "OPTIONS") == 0 &&
        (req->cors || (origin && vn_http_request_header(req, "Access-Control-Request-Method")));
    if (req->preflight)
        req->route = NULL; /* the server answers it */
    if (!req->cors)
        return;
    if (!vn_srv.cfg->http_origins_restricted)
        req->allow_origin = vn_strdup("*");
    else if (origin && vn_http_request_origin_allowed(req))
        req->allow_origin = vn_strdup(origin);
}

void *vn_http_request_data(const vn_http_request *req)
{
    return req->data;
}

void vn_http_request_set_data(vn_http_request *req, void *data)
{
    req->data = data;
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *timer);

static void set_timer(http_conn *hc, timer_purpose purpose, uint64_t ms)
{
    hc->timer_purpose = purpose;
    if (purpose == TIMER_OFF)
        uv_timer_stop(&hc->timer);
    else
        uv_timer_start(&hc->timer, on_timer, ms, purpose == TIMER_WRITABLE ? ms : 0);
}

/* ---- responses ---- */

static const char *status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

void vn_http_response_header(vn_http_request *req, const char *name, const char *value)
{
    vn_buf_printf(&req->response_headers, "%s: %s\r\n", name, value);
}

static bool is_head(const vn_http_request *req)
{
    return strcmp(req->method, "HEAD") == 0;
}

/* Whether the connection stays open for another request after this one. */
static bool keeps_alive(const vn_http_request *req)
{
    return req->complete && req->keep_alive && !req->upgrade && !req->hc->closing;
}

static void write_head(vn_http_request *req, int status, const char *content_type,
                       uint64_t content_length)
{
    http_conn *hc = req->hc;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    vn_buf head;

    req->responding = true;
    if (!keeps_alive(req))
        hc->closing = true;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
    vn_buf_init(&head);
    vn_buf_printf(&head, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %llu\r\n", status,
                  status_text(status), date, (unsigned long long)content_length);
    if (content_type)
        vn_buf_printf(&head, "Content-Type: %s\r\n", content_type);
    if (req->allow_origin) {
        vn_buf_printf(&head, "Access-Control-Allow-Origin: %s\r\n", req->allow_origin);
        if (req->cors->expose)
            vn_buf_printf(&head, "Access-Control-Expose-Headers: %s\r\n", req->cors->expose);
    }
    if (req->cors && vn_srv.cfg->http_origins_restricted)
        vn_buf_append_str(&head, "Vary: Origin\r\n");
    vn_buf_append(&head, req->response_headers.data, req->response_headers.len);
    vn_buf_printf(&head, "Connection: %s\r\n\r\n", hc->closing ? "close" : "keep-alive");
    vn_conn_write(hc->conn, head.data, head.len);
    vn_buf_free(&head);
}

/* The response is out: forget the request, then close or read the next. */
static void finish_response(vn_http_request *req)
{
    http_conn *hc = req->hc;

    hc->req = NULL;
    request_free(req);
    if (hc->closing) {
        set_timer(hc, TIMER_OFF, 0);
        vn_conn_close(hc->conn, true);
        return;
    }
    http_parser_pause(&hc->parser, 0);
    if (hc->processing || hc->input.len == 0)
        set_timer(hc, TIMER_IDLE, hc->keepalive_timeout_ms); /* process_input goes on */
    else
        set_timer(hc, TIMER_RESUME, 0);
}

void vn_http_respond(vn_http_request *req, int status, const char *content_type, const void *body,
                     size_t len)
{
    write_head(req, status, content_type, len);
    /* A response that did not fit the output cap is cut short: the client
     * must not read the next response as the rest of this one. */
    if (len && !is_head(req) && vn_conn_write(req->hc->conn, body, len) < 0)
        req->hc->closing = true;
    finish_response(req);
}

void vn_http_respond_begin(vn_http_request *req, int status, const char *content_type,
                           uint64_t content_length)
{
    write_head(req, status, content_type, content_length);
    if (content_length == 0 || is_head(req)) {
        finish_response(req);
        return;
    }
    req->to_send = content_length;
    set_timer(req->hc, TIMER_WRITABLE, WRITABLE_POLL_MS);
}

bool vn_http_write_room(const vn_http_request *req)
{
    return vn_conn_queued(req->hc->conn) < req->hc->max_output / 2;
}

int vn_http_write(vn_http_request *req, const void *data, size_t len)
{
    http_conn *hc = req->hc;

    if (len > req->to_send)
        len = req->to_send;
    if (vn_conn_queued(hc->conn) + len > hc->max_output)
        return -1;
    if (vn_conn_write(hc->conn, data, len) < 0)
        return -1;
    req->to_send -= len;
    if (req->to_send == 0)
        finish_response(req);
    return 0;
}

/* A response of the server's own; req may belong to a route, which then
 * hears on_abort first. */
static void respond_error(http_conn *hc, int status)
{
    vn_http_request *req = hc->req;
    char body[96];
    int len;

    if (!req) {
        req = hc->req = request_new(hc);
        strcpy(req->method, "GET");
    }
    if (req->responding) {
        hc->closing = true;
        vn_conn_close(hc->conn, true);
        return;
    }
    request_abort(req);
    req->route = NULL;
    hc->closing = hc->closing || !req->complete || status == 408;
    len = snprintf(body, sizeof body, "%d %s\n", status, status_text(status));
    vn_http_respond(req, status, "text/plain; charset=utf-8", body, (size_t)len);
}

/* ---- parsing ---- */

static http_conn *conn_of(http_parser *p)
{
    return p->data;
}

static int on_message_begin(http_parser *p)
{
    http_conn *hc = conn_of(p);

    hc->req = request_new(hc);
    set_timer(hc, TIMER_REQUEST, hc->request_timeout_ms);
    return 0;
}

/* 0, or -1 after answering 431 when the head grows past the limit. */
static int count_head_bytes(http_conn *hc, size_t len)
{
    hc->req->header_bytes += len;
    if (hc->req->header_bytes <= hc->max_header_size)
        return 0;
    respond_error(hc, 431);
    return -1;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn *hc = conn_of(p);

    if (hc->req->url.len + len > hc->max_header_size) {
        respond_error(hc, 414);
        return -1;
    }
    vn_buf_append(&hc->req->url, at, len);
    return count_head_bytes(hc, len);
}

static void end_header(vn_http_request *req)
{
    if (!req->in_value)
        return;
    req->headers = vn_realloc(req->headers, (req->n_headers + 1) * sizeof *req->headers);
    req->headers[req->n_headers++] = (header){vn_strndup(req->field.data, req->field.len),
                                              vn_strndup(req->value.data, req->value.len)};
    vn_buf_reset(&req->field);
    vn_buf_reset(&req->value);
    req->in_value = false;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn *hc = conn_of(p);

    end_header(hc->req);
    vn_buf_append(&hc->req->field, at, len);
    return count_head_bytes(hc, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn *hc = conn_of(p);

    hc->req->in_value = true;
    vn_buf_append(&hc->req->value, at, len);
    return count_head_bytes(hc, len);
}

static bool split_url(vn_http_request *req)
{
    struct http_parser_url u;

    http_parser_url_init(&u);
    if (http_parser_parse_url(req->url.data, req->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
        return false;
    req->path = vn_strndup(req->url.data + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    if (u.field_set & (1 << UF_QUERY))
        req->query =
            vn_strndup(req->url.data + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    return req->path[0] == '/';
}

/* http_parser: 0 to go on, 1 to skip the body (not used), -1 to stop. */
static int on_headers_complete(http_parser *p)
{
    http_conn *hc = conn_of(p);
    vn_http_request *req = hc->req;
    const char *expect;

    end_header(req);
    snprintf(req->method, sizeof req->method, "%s", http_method_str(p->method));
    req->keep_alive = http_should_keep_alive(p);
    req->upgrade = p->upgrade;
    if (p->flags & F_CONTENTLENGTH)
        req->content_length = (int64_t)p->content_length;
    if (!split_url(req)) {
        respond_error(hc, 400);
        return -1;
    }
    req->route = find_route(req->path);
    check_origin(req);
    if (req->route && req->route->handler->on_headers) {
        req->route->handler->on_headers(req, req->route->ud);
        if (hc->req != req || req->responding)
            return -1; /* answered early */
    }
    if ((!req->route || !req->route->handler->on_body) && req->content_length >= 0 &&
        (uint64_t)req->content_length > hc->max_body_size) {
        respond_error(hc, 413);
        return -1;
    }
    expect = vn_http_request_header(req, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && req->content_length != 0)
        vn_conn_write(hc->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn *hc = conn_of(p);
    vn_http_request *req = hc->req;

    set_timer(hc, TIMER_REQUEST, hc->request_timeout_ms);
    req->body_bytes += len;
    if (req->route && req->route->handler->on_body) {
        req->route->handler->on_body(req, at, len, req->route->ud);
        return hc->req != req || req->responding ? -1 : 0;
    }
    if (req->body_bytes > hc->max_body_size) {
        respond_error(hc, 413);
        return -1;
    }
    if (req->route) /* the server's own answers ignore bodies */
        vn_buf_append(&req->body, at, len);
    return 0;
}

/* Stop here: the request is dispatched once http_parser_execute returns.
 * After an Upgrade the parser stops by itself, right past the request. */
static int on_message_complete(http_parser *p)
{
    http_conn *hc = conn_of(p);

    hc->req->complete = true;
    set_timer(hc, TIMER_OFF, 0);
    if (!p->upgrade)
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- dispatch ---- */

static void answer_health(vn_http_request *req)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        vn_http_response_header(req, "Allow", "GET, HEAD");
        vn_http_respond(req, 405, "text/plain; charset=utf-8", "405 Method Not Allowed\n", 23);
        return;
    }
    vn_http_response_header(req, "Cache-Control", "no-store");
    vn_http_respond(req, 200, "text/plain", "ok\n", 3);
}

static void refuse_preflight(vn_http_request *req, const char *origin, const char *why)
{
    static const char body[] = "403 Forbidden: cross-origin request not allowed\n";

    vn_log_info("http from %s: CORS preflight for %s from origin %s refused: %s",
                vn_conn_peer_ip(req->hc->conn), req->path, origin, why);
    free(req->allow_origin); /* nothing of the answer is for the page */
    req->allow_origin = NULL;
    vn_http_respond(req, 403, "text/plain; charset=utf-8", body, sizeof body - 1);
}

/* OPTIONS with Origin and Access-Control-Request-Method (Fetch standard,
 * CORS protocol): 204 with what the route allows, or 403. A plain OPTIONS
 * to a CORS route: 204 with Allow. */
static void answer_preflight(vn_http_request *req)
{
    const char *origin = vn_http_request_header(req, "Origin");
    const char *method = vn_http_request_header(req, "Access-Control-Request-Method");
    const char *headers = vn_http_request_header(req, "Access-Control-Request-Headers");

    if (req->cors && (!origin || !method)) {
        char *allow = vn_asprintf("%s, OPTIONS", req->cors->methods);
        vn_http_response_header(req, "Allow", allow);
        free(allow);
        vn_http_respond(req, 204, NULL, NULL, 0);
        return;
    }
    if (!req->cors) {
        refuse_preflight(req, origin, "the path takes no cross-origin requests");
        return;
    }
    if (!req->allow_origin) {
        refuse_preflight(req, origin, "origin not in http.allowed_origins");
        return;
    }
    if (!list_has(req->cors->methods, method, strlen(method))) {
        refuse_preflight(req, origin, "method not allowed");
        return;
    }
    for (const char *p = headers; p && *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (len && !list_has(req->cors->headers, p, len)) {
            refuse_preflight(req, origin, "request header not allowed");
            return;
        }
        p += len;
    }
    vn_http_response_header(req, "Access-Control-Allow-Methods", req->cors->methods);
    if (req->cors->headers)
        vn_http_response_header(req, "Access-Control-Allow-Headers", req->cors->headers);
    vn_http_response_header(req, "Access-Control-Max-Age", "86400");
    vn_http_respond(req, 204, NULL, NULL, 0);
}

static void dispatch(http_conn *hc)
{
    vn_http_request *req = hc->req;

    if (req->preflight) {
        answer_preflight(req);
    } else if (req->route) {
        req->route->handler->on_request(req, req->route->ud);
        if (!hc->detached && hc->req == req && !req->responding && req->upgrade)
            hc->closing = true; /* nothing more can be read after an Upgrade */
    } else if (strcmp(req->path, HEALTH_PATH) == 0) {
        answer_health(req);
    } else {
        respond_error(hc, 404);
    }
}

static int parse_error_status(enum http_errno err)
{
    return err == HPE_HEADER_OVERFLOW ? 431 : 400;
}

static void process_input(http_conn *hc)
{
    if (hc->processing)
        return;
    hc->processing = true;
    hc->input_off = 0;
    while (!hc->detached && !hc->closing && hc->input_off < hc->input.len &&
           !(hc->req && hc->req->complete)) {
        size_t n =
            http_parser_execute(&hc->parser, &parser_settings, hc->input.data + hc->input_off,
                                hc->input.len - hc->input_off);
        enum http_errno err = HTTP_PARSER_ERRNO(&hc->parser);

        hc->input_off += n;
        if (hc->closing)
            break; /* answered from a callback */
        if (err != HPE_OK && err != HPE_PAUSED) {
            vn_log_debug("http from %s: %s", vn_conn_peer_ip(hc->conn), http_errno_name(err));
            respond_error(hc, parse_error_status(err));
        } else if (hc->req && hc->req->complete) {
            dispatch(hc);
        }
    }
    if (!hc->detached) {
        memmove(hc->input.data, hc->input.data + hc->input_off, hc->input.len - hc->input_off);
        hc->input.len -= hc->input_off;
    }
    hc->input_off = 0;
    hc->processing = false;
}

/* ---- connections ---- */

static void conn_free(uv_handle_t *handle)
{
    http_conn *hc = handle->data;

    vn_buf_free(&hc->input);
    free(hc);
}

static void unlink_conn(http_conn *hc)
{
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    n_conns--;
    uv_close((uv_handle_t *)&hc->timer, conn_free);
}

static void on_data(vn_conn *c, void *ud, const char *data, size_t len)
{
    http_conn *hc = ud;

    if (hc->closing)
        return;
    vn_buf_append(&hc->input, data, len);
    if (hc->req && hc->req->complete && hc->input.len > hc->max_header_size + hc->max_body_size) {
        vn_log_debug("http from %s: too much pipelined input", vn_conn_peer_ip(c));
        hc->closing = true;
        vn_conn_close(c, false);
        return;
    }
    if (hc->timer_purpose == TIMER_IDLE)
        set_timer(hc, TIMER_REQUEST, hc->request_timeout_ms);
    process_input(hc);
}

static void on_close(vn_conn *c, void *ud, const char *reason)
{
    http_conn *hc = ud;

    if (hc->req) { /* a response is unfinished */
        request_abort(hc->req);
        request_free(hc->req);
        hc->req = NULL;
    }
    unlink_conn(hc);
}

static void on_timer(uv_timer_t *timer)
{
    http_conn *hc = timer->data;
    vn_http_request *req = hc->req;

    switch (hc->timer_purpose) {
    case TIMER_REQUEST:
        vn_log_debug("http from %s: request timeout", vn_conn_peer_ip(hc->conn));
        hc->closing = true;
        if (req)
            respond_error(hc, 408);
        else
            vn_conn_close(hc->conn, true);
        break;
    case TIMER_IDLE:
        hc->closing = true;
        vn_conn_close(hc->conn, true);
        break;
    case TIMER_WRITABLE:
        if (req && req->to_send && vn_http_write_room(req) && req->route &&
            req->route->handler->on_writable)
            req->route->handler->on_writable(req, req->route->ud);
        break;
    case TIMER_RESUME:
        set_timer(hc, TIMER_IDLE, hc->keepalive_timeout_ms);
        process_input(hc);
        break;
    case TIMER_OFF: break;
    }
}

static const vn_conn_callbacks http_callbacks = {
    .on_data = on_data,
    .on_close = on_close,
};

void vn_http_accept(vn_conn *c, const vn_listener_conf *lc, void *ud)
{
    const vn_config *cfg = vn_srv.cfg;
    http_conn *hc;

    if (lc->type == VN_LISTEN_HTTPS && vn_conn_start_tls(c, vn_tls_listener_ctx(lc)) != 0) {
        vn_log_warn("http connection from %s: cannot start TLS", vn_conn_peer_ip(c));
        vn_conn_close(c, false);
        return;
    }
    hc = vn_alloc(sizeof *hc);
    hc->conn = c;
    hc->tls = lc->type == VN_LISTEN_HTTPS;
    hc->max_header_size = cfg->http_max_header_size;
    hc->max_body_size = cfg->http_max_body_size;
    hc->max_output = cfg->max_output_buffer;
    hc->request_timeout_ms = cfg->http_request_timeout * 1000;
    hc->keepalive_timeout_ms = cfg->http_keepalive_timeout * 1000;
    http_parser_init(&hc->parser, HTTP_REQUEST);
    hc->parser.data = hc;
    vn_buf_init(&hc->input);
    uv_timer_init(vn_srv.loop, &hc->timer);
    hc->timer.data = hc;
    hc->next = conns;
    if (conns)
        conns->prev = hc;
    conns = hc;
    n_conns++;
    set_timer(hc, TIMER_REQUEST, hc->request_timeout_ms);
    vn_conn_set_callbacks(c, &http_callbacks, hc);
    vn_conn_start(c);
}

vn_conn *vn_http_detach(vn_http_request *req, vn_buf *rest)
{
    http_conn *hc = req->hc;
    vn_conn *c = hc->conn;

    vn_buf_append(rest, hc->input.data + hc->input_off, hc->input.len - hc->input_off);
    hc->detached = true;
    hc->req = NULL;
    request_free(req);
    set_timer(hc, TIMER_OFF, 0);
    unlink_conn(hc);
    return c;
}

/* Routes hear of their unfinished requests now, while their modules are
 * still loaded; the connections close later. */
void vn_http_close_all(void)
{
    for (http_conn *hc = conns; hc; hc = hc->next) {
        if (hc->req) {
            request_abort(hc->req);
            request_free(hc->req);
            hc->req = NULL;
        }
        hc->closing = true;
        vn_conn_close(hc->conn, false);
    }
}

size_t vn_http_count(void)
{
    return n_conns;
}
