/*
 * http_server.h - the core's side of the HTTP server: the http and https
 * listeners' accept callback, and taking a connection over after an
 * Upgrade request (WebSocket).
 *
 * Routes, requests and responses are in vestnik/http.h, shared with the
 * modules. Limits come from the config's `http:` section, read at each
 * accept so that a reload applies to new connections.
 *
 * Upgrade: a request with "Connection: upgrade" and an Upgrade header goes
 * to its route's on_request like any other (its body, if any, is not
 * read). The route either answers it with vn_http_respond (an error; the
 * connection then closes) or calls vn_http_detach from on_request, and
 * writes its own "101 Switching Protocols" on the connection it gets.
 */
#ifndef VESTNIK_HTTP_SERVER_H
#define VESTNIK_HTTP_SERVER_H

#include "config.h"
#include "conn.h"
#include "vestnik/http.h"

/* vn_accept_cb for VN_LISTEN_HTTP and VN_LISTEN_HTTPS listeners; starts
 * TLS (certificate by SNI) on https ones. */
void vn_http_accept(vn_conn *c, const vn_listener_conf *lc, void *ud);

/* Take the connection of an Upgrade request out of the HTTP server; only
 * from on_request of that request. The server forgets the connection and
 * frees req; bytes the client sent after the request (the start of the
 * new protocol) are appended to rest. The caller must install its own
 * callbacks with vn_conn_set_callbacks before returning from on_request. */
vn_conn *vn_http_detach(vn_http_request *req, vn_buf *rest);

/* Close every HTTP connection (shutdown); routes' on_abort runs at once
 * for requests whose response is unfinished. */
void vn_http_close_all(void);
size_t vn_http_count(void); /* open HTTP connections */

#endif
