/*
 * conn.c - a TCP connection, accepted or outgoing: reading, TLS, a bounded
 * write queue and an orderly close.
 *
 * Memory per idle connection is kept small: all connections read into one
 * process-wide buffer, and OpenSSL is attached through a tiny BIO that
 * reads ciphertext straight from that buffer and appends its output to the
 * connection's write queue, so no per-connection I/O buffer outlives a read
 * or a write (memory BIOs would keep their high-water allocation forever).
 *
 * Output is batched per loop turn: vn_conn_write only appends (plaintext
 * for TLS, to be encrypted later) and marks the connection; a uv_check
 * handle, which runs once per turn after the I/O callbacks, then encrypts
 * each marked connection's plaintext with one SSL_write (one TLS record up
 * to 16 KiB, instead of one per stanza) and hands everything to one
 * uv_write; a connection with a full record's worth (16 KiB) waiting is
 * written at once. At most one uv_write is in flight; whatever accumulates
 * meanwhile goes out in the turn it completes. An idle handle runs while
 * connections are marked so that the loop does not block in poll before
 * the check has run. The byte cap counts queued plaintext as well.
 *
 * Closing with flush: reading is stopped from the owner's point of view
 * (input is discarded), TLS close_notify is queued, the queue drains, the
 * write side is shut down, and the socket closes when the peer closes its
 * side too (so unread input does not turn our close into a reset that
 * destroys the data we just sent), all within CLOSE_FLUSH_TIMEOUT_MS.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound.h"
#include "tls.h"
#include "vestnik/log.h"
#include "vestnik/util.h"

#define CLOSE_FLUSH_TIMEOUT_MS 2000

typedef enum {
    CONN_OPEN,
    CONN_DRAINING, /* flushing close in progress */
    CONN_CLOSED,   /* handles closing; on_close pending */
} conn_state;

/* Allocated only once a flushing close begins. */
typedef struct conn_drain {
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    bool shutdown_started;
    bool shutdown_done;
} conn_drain;

typedef struct write_req {
    uv_write_t req;
    char *data;
    size_t len;
} write_req;

/* The per-loop output batch: connections with output to hand to libuv.
 * It lives while connections do, so that a loop can be closed after them. */
typedef struct out_batch {
    uv_check_t check;
    uv_idle_t idle;
    vn_conn *marked; /* list through vn_conn.next_marked */
    size_t conns;
    int open_handles;
} out_batch;

struct vn_conn {
    uv_tcp_t tcp;
    vn_conn_callbacks cb;
    void *ud;
    conn_state state;
    int open_handles; /* libuv handles not yet closed; freed at zero */
    bool reading;
    bool paused; /* load shaping: the owner does not want input now */
    bool peer_eof;
    char *close_reason; /* the first cause wins */
    conn_drain *drain;

    size_t max_output;
    vn_buf out;      /* not yet handed to libuv; ciphertext under TLS */
    vn_buf plain;    /* TLS: plaintext written this turn, not yet encrypted */
    size_t inflight; /* bytes of the uv_write in progress */
    out_batch *batch;
    bool marked; /* on batch->marked */
    vn_conn *prev_marked, *next_marked;

    SSL *ssl;
    bool tls_ready;
    bool tls_failed;      /* fatal TLS error: no close_notify any more */
    vn_buf tls_backlog;   /* plaintext written before the handshake ended */
    const char *tls_feed; /* ciphertext OpenSSL has yet to consume */
    size_t tls_feed_len;

    char peer_ip[INET6_ADDRSTRLEN];
    int peer_port;

    uv_connect_t connect_req; /* outgoing only */
    vn_conn_connect_cb on_connect;
    bool outgoing;
};

/* Shared by all connections: a read is fully processed before the next. */
static char read_buf[65536];
static char plaintext_buf[SSL3_RT_MAX_PLAIN_LENGTH];

static void flush_output(vn_conn *c);

static out_batch *batch; /* of the loop connections are on now */

static void batch_closed(uv_handle_t *handle)
{
    out_batch *b = handle->data;

    if (--b->open_handles == 0)
        free(b);
}

static void unmark(vn_conn *c)
{
    if (!c->marked)
        return;
    c->marked = false;
    if (c->prev_marked)
        c->prev_marked->next_marked = c->next_marked;
    else
        c->batch->marked = c->next_marked;
    if (c->next_marked)
        c->next_marked->prev_marked = c->prev_marked;
    c->prev_marked = c->next_marked = NULL;
    if (!c->batch->marked)
        uv_idle_stop(&c->batch->idle);
}

static void on_batch_idle(uv_idle_t *idle)
{
}

/* Once per loop turn: every marked connection's output, one write each. */
static void on_batch_check(uv_check_t *check)
{
    out_batch *b = check->data;

    while (b->marked) {
        vn_conn *c = b->marked;
        unmark(c);
        flush_output(c);
    }
}

/* The output batch for a new connection on loop. */
static out_batch *batch_join(uv_loop_t *loop)
{
    if (!batch || batch->check.loop != loop) {
        batch = vn_alloc(sizeof *batch);
        uv_check_init(loop, &batch->check);
        uv_idle_init(loop, &batch->idle);
        batch->check.data = batch->idle.data = batch;
        batch->open_handles = 2;
        /* Neither keeps the loop alive: the connections do. */
        uv_unref((uv_handle_t *)&batch->check);
        uv_unref((uv_handle_t *)&batch->idle);
        uv_check_start(&batch->check, on_batch_check);
    }
    batch->conns++;
    return batch;
}

static void batch_leave(out_batch *b)
{
    if (--b->conns > 0)
        return;
    if (batch == b)
        batch = NULL;
    uv_close((uv_handle_t *)&b->check, batch_closed);
    uv_close((uv_handle_t *)&b->idle, batch_closed);
}

/* Output is waiting: write it in this loop turn's check phase. */
static void mark(vn_conn *c)
{
    out_batch *b = c->batch;

    if (c->marked || c->state == CONN_CLOSED)
        return;
    if (!b->marked)
        uv_idle_start(&b->idle, on_batch_idle);
    c->marked = true;
    c->next_marked = b->marked;
    if (b->marked)
        b->marked->prev_marked = c;
    b->marked = c;
}

static const char *uv_reason(int status)
{
    switch (status) {
    case UV_EOF: return "eof";
    case UV_ECONNRESET:
    case UV_EPIPE: return "connection reset";
    default: return uv_strerror(status);
    }
}

static void finish(vn_conn *c)
{
    if (c->cb.on_close)
        c->cb.on_close(c, c->ud, c->close_reason ? c->close_reason : "closed");
    unmark(c);
    batch_leave(c->batch);
    SSL_free(c->ssl);
    vn_buf_free(&c->out);
    vn_buf_free(&c->plain);
    vn_buf_free(&c->tls_backlog);
    free(c->drain);
    free(c->close_reason);
    free(c);
}

static void on_handle_closed(uv_handle_t *handle)
{
    vn_conn *c = handle->data;

    if (--c->open_handles == 0)
        finish(c);
}

static void close_handles(vn_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    c->state = CONN_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    if (c->drain)
        uv_close((uv_handle_t *)&c->drain->timer, on_handle_closed);
}

static void on_drain_timeout(uv_timer_t *timer)
{
    close_handles(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    vn_conn *c = req->data;

    if (status == UV_ECANCELED)
        return;
    c->drain->shutdown_done = true;
    if (status < 0 || c->peer_eof)
        close_handles(c);
}

/* The queue is empty: send FIN, then wait for the peer's (or the timer). */
static void drain_shutdown(vn_conn *c)
{
    if (c->drain->shutdown_started)
        return;
    c->drain->shutdown_started = true;
    c->drain->shutdown.data = c;
    if (uv_shutdown(&c->drain->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        close_handles(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

static int start_reading(vn_conn *c)
{
    int rc;

    if (c->reading || c->peer_eof)
        return 0;
    rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0)
        return rc;
    c->reading = true;
    return 0;
}

static int tls_write(vn_conn *c, const char *data, size_t len);

/* TLS: this turn's plaintext into records, appended to out. */
static void encrypt_plain(vn_conn *c)
{
    size_t len;
    char *data;

    if (c->plain.len == 0)
        return;
    data = vn_buf_steal(&c->plain, &len); /* an idle connection keeps no buffer */
    tls_write(c, data, len);
    free(data);
}

static void start_drain(vn_conn *c)
{
    c->state = CONN_DRAINING;
    vn_buf_free(&c->tls_backlog); /* cannot be sent without a handshake */
    encrypt_plain(c);             /* what was written goes before close_notify */
    if (c->tls_ready && !c->tls_failed) {
        ERR_clear_error();
        SSL_shutdown(c->ssl); /* queues close_notify */
        ERR_clear_error();
    }
    c->drain = vn_alloc(sizeof *c->drain);
    uv_timer_init(c->tcp.loop, &c->drain->timer);
    c->drain->timer.data = c;
    c->open_handles++;
    uv_timer_start(&c->drain->timer, on_drain_timeout, CLOSE_FLUSH_TIMEOUT_MS, 0);
    /* Keep reading (and discarding) to see the peer's EOF. */
    if (start_reading(c) < 0) {
        close_handles(c);
        return;
    }
    flush_output(c);
}

static void conn_close(vn_conn *c, const char *reason, bool flush)
{
    if (c->state == CONN_CLOSED)
        return;
    if (!c->close_reason)
        c->close_reason = vn_strdup(reason);
    if (!flush)
        close_handles(c);
    else if (c->state == CONN_OPEN)
        start_drain(c);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    vn_conn *c = req->data;

    free(w->data);
    free(w);
    c->inflight = 0;
    if (status == UV_ECANCELED)
        return;
    if (status < 0) {
        conn_close(c, uv_reason(status), false);
        return;
    }
    if (c->out.len || c->plain.len || c->state == CONN_DRAINING)
        mark(c);
}

static void flush_output(vn_conn *c)
{
    write_req *w;
    uv_buf_t buf;
    int rc;

    if (c->state == CONN_CLOSED || c->inflight)
        return;
    if (c->tls_ready && !c->tls_failed)
        encrypt_plain(c);
    if (c->state == CONN_CLOSED || c->inflight)
        return; /* a TLS error: the close flushed already */
    if (c->out.len == 0) {
        if (c->state == CONN_DRAINING)
            drain_shutdown(c);
        return;
    }
    w = vn_alloc(sizeof *w);
    w->data = vn_buf_steal(&c->out, &w->len);
    w->req.data = c;
    buf = uv_buf_init(w->data, (unsigned int)w->len);
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc < 0) {
        free(w->data);
        free(w);
        conn_close(c, uv_reason(rc), false);
        return;
    }
    c->inflight = w->len;
}

/* A fatal TLS error: log it and close, sending the alert OpenSSL queued. */
static void tls_fail(vn_conn *c, int ssl_error)
{
    char reason[256];

    if (ssl_error == SSL_ERROR_SSL) {
        const char *text = ERR_reason_error_string(ERR_peek_last_error());
        snprintf(reason, sizeof reason, "tls error: %s", text ? text : "unknown");
    } else {
        snprintf(reason, sizeof reason, "tls error: unexpected result %d", ssl_error);
    }
    ERR_clear_error();
    c->tls_failed = true;
    vn_log_info("connection %s %s port %d: %s", c->outgoing ? "to" : "from", c->peer_ip,
                c->peer_port, reason);
    conn_close(c, reason, true);
}

static int tls_write(vn_conn *c, const char *data, size_t len)
{
    size_t written;

    if (len == 0)
        return 0;
    ERR_clear_error();
    if (!SSL_write_ex(c->ssl, data, len, &written)) {
        tls_fail(c, SSL_get_error(c->ssl, 0));
        return -1;
    }
    return 0;
}

static void tls_handshake(vn_conn *c)
{
    int rc;

    ERR_clear_error();
    rc = SSL_do_handshake(c->ssl);
    if (rc != 1) {
        int ssl_error = SSL_get_error(c->ssl, rc);
        if (ssl_error != SSL_ERROR_WANT_READ)
            tls_fail(c, ssl_error);
        return;
    }
    c->tls_ready = true;
    if (c->tls_backlog.len) {
        int written = tls_write(c, c->tls_backlog.data, c->tls_backlog.len);
        vn_buf_free(&c->tls_backlog);
        if (written != 0)
            return;
    }
    if (c->cb.on_tls_ready)
        c->cb.on_tls_ready(c, c->ud);
}

static void tls_input(vn_conn *c, const char *data, size_t len)
{
    c->tls_feed = data;
    c->tls_feed_len = len;
    if (!c->tls_ready)
        tls_handshake(c);
    while (c->state == CONN_OPEN && c->tls_ready) {
        size_t got;
        int ssl_error;

        ERR_clear_error();
        if (SSL_read_ex(c->ssl, plaintext_buf, sizeof plaintext_buf, &got)) {
            c->cb.on_data(c, c->ud, plaintext_buf, got);
            continue;
        }
        ssl_error = SSL_get_error(c->ssl, 0);
        if (ssl_error == SSL_ERROR_ZERO_RETURN)
            conn_close(c, "eof", true); /* close_notify: answer it */
        else if (ssl_error != SSL_ERROR_WANT_READ)
            tls_fail(c, ssl_error);
        break;
    }
    c->tls_feed_len = 0;
    mark(c); /* handshake records, tickets, alerts, and the answers */
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    vn_conn *c = stream->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        c->reading = false;
        uv_read_stop(stream);
        if (nread == UV_EOF)
            c->peer_eof = true;
        if (c->state == CONN_DRAINING && nread == UV_EOF) {
            if (c->drain->shutdown_done)
                close_handles(c);
            return;
        }
        conn_close(c, uv_reason((int)nread), false);
        return;
    }
    if (c->state != CONN_OPEN)
        return; /* draining: input is discarded */
    if (c->ssl)
        tls_input(c, buf->base, (size_t)nread);
    else
        c->cb.on_data(c, c->ud, buf->base, (size_t)nread);
}

/* A BIO that feeds OpenSSL from tls_feed and appends its output to out. */
static int conn_bio_read(BIO *bio, char *dst, int size)
{
    vn_conn *c = BIO_get_data(bio);
    size_t n = c->tls_feed_len < (size_t)size ? c->tls_feed_len : (size_t)size;

    BIO_clear_retry_flags(bio);
    if (n == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    memcpy(dst, c->tls_feed, n);
    c->tls_feed += n;
    c->tls_feed_len -= n;
    return (int)n;
}

static int conn_bio_write(BIO *bio, const char *src, int len)
{
    vn_conn *c = BIO_get_data(bio);

    BIO_clear_retry_flags(bio);
    vn_buf_append(&c->out, src, (size_t)len);
    return len;
}

static long conn_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    vn_conn *c = BIO_get_data(bio);

    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return (long)c->tls_feed_len;
    default: return 0;
    }
}

static BIO_METHOD *conn_bio_method(void)
{
    static BIO_METHOD *method;

    if (!method) {
        method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vestnik conn");
        if (method) {
            BIO_meth_set_read(method, conn_bio_read);
            BIO_meth_set_write(method, conn_bio_write);
            BIO_meth_set_ctrl(method, conn_bio_ctrl);
        }
    }
    return method;
}

static void set_peer_address(vn_conn *c, const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
        uv_ip4_name(sin, c->peer_ip, sizeof c->peer_ip);
        c->peer_port = ntohs(sin->sin_port);
    } else if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
        c->peer_port = ntohs(sin6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) /* dual-stack: show plain IPv4 */
            inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], c->peer_ip, sizeof c->peer_ip);
        else
            uv_ip6_name(sin6, c->peer_ip, sizeof c->peer_ip);
    } else {
        snprintf(c->peer_ip, sizeof c->peer_ip, "unknown");
    }
}

vn_conn *vn_conn_accept(uv_stream_t *server, size_t max_output)
{
    vn_conn *c = vn_alloc(sizeof *c);
    struct sockaddr_storage addr;
    int addr_len = sizeof addr;
    int rc;

    rc = uv_tcp_init(server->loop, &c->tcp);
    if (rc < 0) {
        vn_log_warn("cannot accept a connection: %s", uv_strerror(rc));
        free(c);
        return NULL;
    }
    c->tcp.data = c;
    c->open_handles = 1;
    c->batch = batch_join(server->loop);
    /* One uv_write carries the whole queue; keep it within a uv_buf_t. */
    c->max_output = max_output < UINT_MAX / 2 ? max_output : UINT_MAX / 2;
    rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc == 0)
        rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &addr_len);
    if (rc == 0)
        rc = uv_tcp_nodelay(&c->tcp, 1);
    if (rc < 0) { /* typically the peer has gone already */
        vn_log_info("cannot accept a connection: %s", uv_strerror(rc));
        close_handles(c); /* no callbacks set: just freed */
        return NULL;
    }
    set_peer_address(c, &addr);
    return c;
}

void vn_conn_set_callbacks(vn_conn *c, const vn_conn_callbacks *cb, void *ud)
{
    c->cb = *cb;
    c->ud = ud;
}

static void on_connected(uv_connect_t *req, int status)
{
    vn_conn *c = req->data;
    char reason[128];

    if (status == UV_ECANCELED)
        return; /* closed while connecting: on_close follows */
    if (status < 0) {
        snprintf(reason, sizeof reason, "connect: %s", uv_strerror(status));
        conn_close(c, reason, false);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->on_connect(c, c->ud);
}

vn_conn *vn_conn_connect(uv_loop_t *loop, const struct sockaddr *addr, size_t max_output,
                         const vn_conn_callbacks *cb, vn_conn_connect_cb on_connect, void *ud)
{
    vn_conn *c = vn_alloc(sizeof *c);
    struct sockaddr_storage peer = {0};
    char reason[128];
    int rc;

    rc = uv_tcp_init(loop, &c->tcp);
    if (rc < 0) {
        vn_log_warn("cannot open a connection: %s", uv_strerror(rc));
        free(c);
        return NULL;
    }
    c->tcp.data = c;
    c->open_handles = 1;
    c->batch = batch_join(loop);
    c->max_output = max_output < UINT_MAX / 2 ? max_output : UINT_MAX / 2;
    c->outgoing = true;
    c->cb = *cb;
    c->ud = ud;
    c->on_connect = on_connect;
    memcpy(&peer, addr,
           addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    set_peer_address(c, &peer);
    unsigned port =
        ntohs(addr->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)addr)->sin6_port
                                          : ((const struct sockaddr_in *)addr)->sin_port);
    snprintf(reason, sizeof reason, "%s:%u", c->peer_ip, port);
    if (!vn_outbound_permit(VN_OUTBOUND_CONNECT, reason)) {
        conn_close(c, "connect: refused by network.allow_outbound", false);
        return c;
    }
    c->connect_req.data = c;
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connected);
    if (rc < 0) { /* reported through on_close, from the loop */
        snprintf(reason, sizeof reason, "connect: %s", uv_strerror(rc));
        conn_close(c, reason, false);
    }
    return c;
}

int vn_conn_start(vn_conn *c)
{
    int rc;

    if (c->state != CONN_OPEN)
        return -1;
    if (c->paused)
        return 0;
    rc = start_reading(c);
    if (rc < 0) {
        conn_close(c, uv_reason(rc), false);
        return -1;
    }
    return 0;
}

void vn_conn_pause_reading(vn_conn *c, bool paused)
{
    int rc;

    if (c->paused == paused)
        return;
    c->paused = paused;
    if (c->state != CONN_OPEN)
        return; /* closing: reads on to see the peer's EOF */
    if (paused) {
        if (c->reading)
            uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        return;
    }
    rc = start_reading(c);
    if (rc < 0)
        conn_close(c, uv_reason(rc), false);
}

/* An SSL on ctx reading and writing through the connection. */
static int attach_ssl(vn_conn *c, SSL_CTX *ctx)
{
    BIO_METHOD *method = conn_bio_method();
    SSL *ssl;
    BIO *bio;

    if (c->ssl || c->state != CONN_OPEN || !method || !ctx)
        return -1;
    ssl = SSL_new(ctx);
    bio = BIO_new(method);
    if (!ssl || !bio) {
        SSL_free(ssl);
        BIO_free(bio);
        ERR_clear_error();
        return -1;
    }
    BIO_set_data(bio, c);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio);
    c->ssl = ssl;
    return 0;
}

int vn_conn_start_tls(vn_conn *c, SSL_CTX *ctx)
{
    if (attach_ssl(c, ctx ? ctx : vn_tls_ctx_for_host(NULL)) != 0)
        return -1;
    SSL_set_accept_state(c->ssl);
    return 0;
}

int vn_conn_start_tls_client(vn_conn *c, SSL_CTX *ctx, const char *server_name,
                             const unsigned char *alpn, unsigned alpn_len)
{
    if (attach_ssl(c, ctx) != 0)
        return -1;
    SSL_set_connect_state(c->ssl);
    if ((server_name && !SSL_set_tlsext_host_name(c->ssl, server_name)) ||
        (alpn && SSL_set_alpn_protos(c->ssl, alpn, alpn_len) != 0)) {
        /* Nothing was sent: the connection stays as it was, without TLS. */
        SSL_free(c->ssl); /* and its BIO */
        c->ssl = NULL;
        ERR_clear_error();
        return -1;
    }
    tls_handshake(c); /* the ClientHello */
    flush_output(c);
    return 0;
}

bool vn_conn_is_tls(const vn_conn *c)
{
    return c->tls_ready;
}

SSL *vn_conn_ssl(vn_conn *c)
{
    return c->ssl;
}

const char *vn_conn_tls_sni(const vn_conn *c)
{
    return c->ssl ? SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

int vn_conn_write(vn_conn *c, const char *data, size_t len)
{
    if (c->state != CONN_OPEN)
        return -1;
    if (len > c->max_output || vn_conn_queued(c) > c->max_output - len)
        return -1;
    if (!c->ssl) {
        vn_buf_append(&c->out, data, len);
    } else if (!c->tls_ready) {
        vn_buf_append(&c->tls_backlog, data, len);
        return 0;
    } else {
        vn_buf_append(&c->plain, data, len);
    }
    /* A full record's worth goes out at once, as the kernel may take it. */
    if (c->plain.len + c->out.len >= SSL3_RT_MAX_PLAIN_LENGTH)
        flush_output(c);
    else
        mark(c);
    return 0;
}

size_t vn_conn_queued(const vn_conn *c)
{
    return c->out.len + c->plain.len + c->inflight + c->tls_backlog.len;
}

void vn_conn_close(vn_conn *c, bool flush)
{
    conn_close(c, "closed", flush);
}

const char *vn_conn_peer_ip(const vn_conn *c)
{
    return c->peer_ip;
}

int vn_conn_peer_port(const vn_conn *c)
{
    return c->peer_port;
}
