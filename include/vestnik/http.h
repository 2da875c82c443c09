/*
 * http.h - the HTTP server inside vestnikd, as modules and transports see it.
 *
 * A route claims a path prefix ("/upload/", "/xmpp-websocket"). The server
 * parses requests on the http and https listeners (keep-alive, pipelined
 * requests answered in order), enforces the limits of the config's `http:`
 * section, answers what no route claims (404, /health), and hands each
 * request to the route with the longest matching prefix.
 *
 * A request's life: on_headers (optional) once the request line and headers
 * are in; then the body, either buffered by the server (up to
 * http.max_body_size, else 413) when on_body is NULL, or handed piece by
 * piece to on_body with no size limit of the server's (the route checks
 * Content-Length itself); then on_request once it is complete. The route
 * answers with vn_http_respond (or vn_http_respond_begin + vn_http_write)
 * at any point: at once, or later from a timer or a worker job's done
 * function (long polling). Answering before the request is complete (e.g.
 * a 403 from on_headers) skips the rest of the callbacks and closes the
 * connection after the response. If the connection goes away before the
 * response is finished, on_abort runs instead; req is freed right after
 * on_abort, or right after the response is complete, and must not be used
 * afterwards.
 *
 * Web pages (CORS, Origin): browsers send an Origin header with the
 * requests a page makes. http.allowed_origins (config) lists the origins
 * whose pages may use the server; a request without Origin (a native
 * client) or from the server's own origin (scheme and Host of the request
 * itself) always passes. A route that pages on other origins call gives
 * a vn_http_cors; the server then answers every OPTIONS to it itself: a
 * CORS preflight (Origin and Access-Control-Request-Method) with 204 or,
 * for an origin, method or header not allowed, 403 (logged); a plain
 * OPTIONS with 204 and Allow. Every other response of the route, errors of
 * the server's own included, carries Access-Control-Allow-Origin: "*" when
 * http.allowed_origins is "*", else the request's Origin if it is allowed
 * (with Vary: Origin). A route without a vn_http_cors never sees a
 * preflight either: those get 403.
 *
 * All calls on the loop thread.
 */
#ifndef VESTNIK_HTTP_H
#define VESTNIK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vn_http_request vn_http_request;

/* What a route allows pages on other origins to do. */
typedef struct vn_http_cors {
    const char *methods; /* Access-Control-Allow-Methods, e.g. "GET, HEAD, PUT" */
    const char *headers; /* request headers allowed beyond the safelisted, e.g.
                          * "Content-Type"; NULL: none */
    const char *expose;  /* Access-Control-Expose-Headers; NULL: none */
} vn_http_cors;

typedef struct vn_http_handler {
    /* Request line and headers are in; the body is not. May be NULL. */
    void (*on_headers)(vn_http_request *req, void *ud);
    /* A piece of the body (already de-chunked). NULL: the server buffers
     * the body for vn_http_request_body. */
    void (*on_body)(vn_http_request *req, const char *data, size_t len, void *ud);
    /* The request is complete. Required. */
    void (*on_request)(vn_http_request *req, void *ud);
    /* A streaming response (vn_http_respond_begin) may take more now: the
     * output queue has drained below half its limit. May be NULL. */
    void (*on_writable)(vn_http_request *req, void *ud);
    /* The connection closed before the response was finished. May be NULL. */
    void (*on_abort)(vn_http_request *req, void *ud);
    /* Cross-origin use by web pages. NULL: none. */
    const vn_http_cors *cors;
} vn_http_handler;

/* Claim a path prefix; the longest matching prefix wins. -1 if the prefix
 * is taken already. The handler struct must outlive the route. */
int vn_http_route_add(const char *prefix, const vn_http_handler *handler, void *ud);
void vn_http_route_remove(const char *prefix);
/* Port of the first https (tls) or http listener; 0 if there is none. */
int vn_http_listener_port(bool tls);

/* ---- the request ---- */
const char *vn_http_request_method(const vn_http_request *req); /* "GET", "PUT", ... */
const char *vn_http_request_path(const vn_http_request *req);   /* raw, without query */
const char *vn_http_request_query(const vn_http_request *req);  /* raw, or NULL */
/* First header of that name (case-insensitive), or NULL. */
const char *vn_http_request_header(const vn_http_request *req, const char *name);
typedef void (*vn_http_header_cb)(const char *name, const char *value, void *ud);
void vn_http_request_foreach_header(const vn_http_request *req, vn_http_header_cb cb, void *ud);
/* Content-Length, or -1 when absent (chunked or no body). */
int64_t vn_http_request_content_length(const vn_http_request *req);
/* The buffered body (routes without on_body); "" when none. */
const char *vn_http_request_body(const vn_http_request *req, size_t *len);
bool vn_http_request_is_upgrade(const vn_http_request *req); /* Upgrade requested */
bool vn_http_request_is_tls(const vn_http_request *req);
const char *vn_http_request_peer_ip(const vn_http_request *req);
/* No Origin header, the server's own origin, or one of http.allowed_origins.
 * Routes that a page could misuse with a user's ambient credentials, or that
 * operators restrict to their web client (WebSocket, BOSH), refuse the
 * others with 403. */
bool vn_http_request_origin_allowed(const vn_http_request *req);
/* The request's slot for the route's own state. */
void *vn_http_request_data(const vn_http_request *req);
void vn_http_request_set_data(vn_http_request *req, void *data);

/* ---- the response ---- */
/* Add a response header; before vn_http_respond or vn_http_respond_begin.
 * Content-Length, Date and Connection are the server's. */
void vn_http_response_header(vn_http_request *req, const char *name, const char *value);
/* A complete response. content_type may be NULL (no body, or none wanted).
 * For HEAD the body is left out, its Content-Length kept. */
void vn_http_respond(vn_http_request *req, int status, const char *content_type, const void *body,
                     size_t len);
/* A large response: headers now, then exactly content_length bytes through
 * vn_http_write; the response is complete when they are all written (at
 * once for HEAD, where vn_http_write must not be called). */
void vn_http_respond_begin(vn_http_request *req, int status, const char *content_type,
                           uint64_t content_length);
/* 0, or -1 when the output queue is full: wait for on_writable. Write in
 * pieces of at most 64 KiB while vn_http_write_room says there is room. */
int vn_http_write(vn_http_request *req, const void *data, size_t len);
bool vn_http_write_room(const vn_http_request *req);

#endif
