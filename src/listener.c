/*
 * listener.c - the configured listening sockets.
 *
 * Each listener keeps its own copy of its configuration entry, because the
 * configuration may be replaced on reload while the sockets stay open. An
 * accepted connection on a direct-TLS listener is put into server-side TLS
 * (context chosen by SNI) before the stream layer sees it.
 */
#include "listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

#define LISTEN_BACKLOG 511

typedef struct listener {
    uv_tcp_t tcp;
    vn_listener_conf conf; /* private copy; address is the one bound */
    size_t max_output;
} listener;

static listener **listeners;
static size_t n_listeners;
static vn_accept_cb accept_cb;
static void *accept_ud;

static const char *type_name(vn_listener_type type)
{
    switch (type) {
    case VN_LISTEN_C2S: return "c2s";
    case VN_LISTEN_C2S_TLS: return "c2s direct TLS";
    case VN_LISTEN_HTTP: return "http";
    case VN_LISTEN_HTTPS: return "https";
    case VN_LISTEN_COMPONENT: return "components";
    case VN_LISTEN_S2S: return "s2s";
    case VN_LISTEN_S2S_TLS: return "s2s direct TLS";
    }
    return "?";
}

/* "192.0.2.1:5222" or "[::]:5222" */
static void format_endpoint(char *out, size_t size, const char *address, int port)
{
    if (strchr(address, ':'))
        snprintf(out, size, "[%s]:%d", address, port);
    else
        snprintf(out, size, "%s:%d", address, port);
}

static void on_listener_closed(uv_handle_t *handle)
{
    listener *l = handle->data;

    free(l->conf.address);
    free(l->conf.tls_profile);
    free(l);
}

static void on_connection(uv_stream_t *server, int status)
{
    listener *l = server->data;
    vn_conn *c;

    if (status < 0) {
        vn_log_warn("accepting on %s port %d failed: %s", l->conf.address, l->conf.port,
                    uv_strerror(status));
        return;
    }
    c = vn_conn_accept(server, l->max_output);
    if (!c)
        return;
    bool direct_tls = l->conf.type == VN_LISTEN_C2S_TLS || l->conf.type == VN_LISTEN_S2S_TLS;
    if (direct_tls && vn_conn_start_tls(c, vn_tls_listener_ctx(&l->conf)) != 0) {
        vn_log_warn("connection from %s port %d: cannot start TLS", vn_conn_peer_ip(c),
                    vn_conn_peer_port(c));
        vn_conn_close(c, false);
        return;
    }
    accept_cb(c, &l->conf, accept_ud);
}

static int bind_and_listen(listener *l)
{
    struct sockaddr_storage addr;
    int rc;

    if (strchr(l->conf.address, ':'))
        rc = uv_ip6_addr(l->conf.address, l->conf.port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(l->conf.address, l->conf.port, (struct sockaddr_in *)&addr);
    if (rc == 0) /* IPv6 sockets are dual-stack: libuv clears IPV6_V6ONLY */
        rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    return rc;
}

/* 0, or a libuv error code with nothing left open. */
static int open_listener(uv_loop_t *loop, const vn_listener_conf *lc, const char *address,
                         size_t max_output)
{
    listener *l = vn_alloc(sizeof *l);
    int rc = uv_tcp_init(loop, &l->tcp);

    if (rc < 0) {
        free(l);
        return rc;
    }
    l->tcp.data = l;
    l->conf = *lc;
    l->conf.address = vn_strdup(address);
    l->conf.tls_profile = vn_strdup(lc->tls_profile);
    l->max_output = max_output;
    rc = bind_and_listen(l);
    if (rc < 0) {
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return rc;
    }
    listeners = vn_realloc(listeners, (n_listeners + 1) * sizeof *listeners);
    listeners[n_listeners++] = l;
    return 0;
}

int vn_listeners_start(uv_loop_t *loop, const vn_config *cfg, vn_accept_cb cb, void *ud,
                       vn_buf *err)
{
    accept_cb = cb;
    accept_ud = ud;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const vn_listener_conf *lc = &cfg->listeners[i];
        const char *address = lc->address ? lc->address : "::";
        char endpoint[128];
        int rc = open_listener(loop, lc, address, cfg->max_output_buffer);

        if ((rc == UV_EAFNOSUPPORT || rc == UV_EADDRNOTAVAIL) && strcmp(address, "::") == 0) {
            vn_log_info("IPv6 is unavailable (%s): listening on 0.0.0.0 port %d instead",
                        uv_strerror(rc), lc->port);
            address = "0.0.0.0";
            rc = open_listener(loop, lc, address, cfg->max_output_buffer);
        }
        format_endpoint(endpoint, sizeof endpoint, address, lc->port);
        if (rc < 0) {
            vn_buf_printf(err, "cannot listen on %s: %s", endpoint, uv_strerror(rc));
            vn_listeners_stop();
            return -1;
        }
        vn_log_info("listening for %s on %s", type_name(lc->type), endpoint);
    }
    return 0;
}

void vn_listeners_stop(void)
{
    for (size_t i = 0; i < n_listeners; i++)
        uv_close((uv_handle_t *)&listeners[i]->tcp, on_listener_closed);
    free(listeners);
    listeners = NULL;
    n_listeners = 0;
}
