/*
 * test_conn.c - TLS contexts, connections and listeners over real loopback
 * sockets: the server side runs on a libuv loop in the test's thread, the
 * client side is plain blocking sockets and OpenSSL in a second thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "conn.h"
#include "listener.h"
#include "tls.h"

#define EXPORTER_LABEL "EXPORTER-Channel-Binding"
#define WATCHDOG_MS 10000
#define FLUSH_TOTAL (512 * 1024)
#define CHUNK (16 * 1024)

static char data_dir[64];
static vn_host_conf hosts[2];
static vn_listener_conf listener_conf;
static vn_config cfg;

/* ---- small helpers ---- */

static char *cert_path(const char *host, const char *ext)
{
    return vn_asprintf("%s/certs/%s.%s", data_dir, host, ext);
}

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    vn_buf b;
    char chunk[4096];
    size_t n;

    assert_non_null(fp);
    vn_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        vn_buf_append(&b, chunk, n);
    fclose(fp);
    return vn_buf_steal(&b, NULL);
}

static X509 *read_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *cert;

    assert_non_null(fp);
    cert = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(cert);
    return cert;
}

/* A port nobody listens on right now. */
static int free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static char pattern_byte(size_t i)
{
    return (char)('a' + i % 26);
}

/* ---- the client thread ---- */

typedef enum {
    CLIENT_PING,     /* (STARTTLS,) TLS, "ping" -> "pong", close_notify both ways */
    CLIENT_READ_ALL, /* read until the server closes */
    CLIENT_IDLE,     /* connect, never read, wait to be released */
    CLIENT_RESET,    /* connect, wait for the accept, abort with RST */
    CLIENT_EOF,      /* connect, wait for the accept, close */
    CLIENT_NOT_TLS,  /* speak HTTP to a TLS port, read until closed */
} client_mode;

typedef struct client {
    client_mode mode;
    int port;
    bool tls;
    bool starttls;
    const char *sni;
    bool offer_alpn;
    int max_version;
    bool no_ems;
    uv_sem_t *accepted; /* posted by the server on accept */
    uv_sem_t *release;  /* posted by the server on close */

    /* results */
    int local_port;
    bool connected;
    bool proceed_ok;
    bool handshake_ok;
    char alpn[32];
    char peer_cn[64];
    unsigned char cert_sha256[32];
    unsigned char exporter[32];
    bool exporter_ok;
    char reply[16];
    int shutdown_rc;
    size_t bytes_read;
    bool pattern_ok;
    bool close_notify;
    bool got_fin;
} client;

static int connect_loopback(client *cl)
{
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)cl->port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval timeout = {.tv_sec = 5};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    getsockname(fd, (struct sockaddr *)&addr, &len);
    cl->local_port = ntohs(addr.sin_port);
    cl->connected = true;
    return fd;
}

static bool read_exact(int fd, char *out, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = recv(fd, out + got, len - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

static bool send_all(int fd, const char *data, size_t len)
{
    return send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len;
}

static bool ssl_read_exact(SSL *ssl, char *out, size_t len)
{
    size_t got = 0;

    while (got < len) {
        int n = SSL_read(ssl, out + got, (int)(len - got));
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

static SSL *client_handshake(client *cl, SSL_CTX *ctx, int fd)
{
    static const unsigned char protos[] = "\x02h2\x0bxmpp-client";
    SSL *ssl;

    if (cl->max_version)
        SSL_CTX_set_max_proto_version(ctx, cl->max_version);
    if (cl->no_ems)
        SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    if (cl->offer_alpn)
        SSL_CTX_set_alpn_protos(ctx, protos, sizeof protos - 1);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (cl->sni)
        SSL_set_tlsext_host_name(ssl, cl->sni);
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    cl->handshake_ok = true;
    return ssl;
}

static void client_inspect(client *cl, SSL *ssl)
{
    const unsigned char *alpn;
    unsigned int alpn_len;
    X509 *peer = SSL_get1_peer_certificate(ssl);
    unsigned int md_len;

    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn && alpn_len < sizeof cl->alpn)
        memcpy(cl->alpn, alpn, alpn_len);
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cl->peer_cn,
                              sizeof cl->peer_cn);
    X509_digest(peer, EVP_sha256(), cl->cert_sha256, &md_len);
    X509_free(peer);
    cl->exporter_ok =
        SSL_export_keying_material(ssl, cl->exporter, sizeof cl->exporter, EXPORTER_LABEL,
                                   strlen(EXPORTER_LABEL), NULL, 0, 0) == 1;
}

static void client_ping(client *cl, int fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char proceed[10];
    SSL *ssl;

    if (cl->starttls) {
        if (!send_all(fd, "<starttls/>", 11) || !read_exact(fd, proceed, sizeof proceed))
            goto out;
        cl->proceed_ok = memcmp(proceed, "<proceed/>", sizeof proceed) == 0;
    }
    ssl = client_handshake(cl, ctx, fd);
    if (!ssl)
        goto out;
    client_inspect(cl, ssl);
    /* after STARTTLS the server also wrote "tls:" during the handshake */
    if (SSL_write(ssl, "ping", 4) == 4 && ssl_read_exact(ssl, cl->reply, cl->starttls ? 8 : 4)) {
        /* first call sends close_notify, the second waits for the server's */
        if (SSL_shutdown(ssl) == 0)
            cl->shutdown_rc = SSL_shutdown(ssl);
    }
    SSL_free(ssl);
out:
    SSL_CTX_free(ctx);
}

static void client_read_all(client *cl, int fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    char buf[CHUNK];
    int n;

    cl->pattern_ok = true;
    if (cl->tls && !(ssl = client_handshake(cl, ctx, fd)))
        goto out;
    for (;;) {
        n = ssl ? SSL_read(ssl, buf, sizeof buf) : (int)recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++)
            if (buf[i] != pattern_byte(cl->bytes_read + (size_t)i))
                cl->pattern_ok = false;
        cl->bytes_read += (size_t)n;
    }
    if (ssl)
        cl->close_notify = SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN;
    cl->got_fin = ssl ? recv(fd, buf, sizeof buf, 0) == 0 : n == 0;
    SSL_free(ssl);
out:
    SSL_CTX_free(ctx);
}

static void client_thread(void *arg)
{
    client *cl = arg;
    int fd = connect_loopback(cl);
    char buf[256];

    if (fd < 0)
        return;
    switch (cl->mode) {
    case CLIENT_PING: client_ping(cl, fd); break;
    case CLIENT_READ_ALL: client_read_all(cl, fd); break;
    case CLIENT_IDLE: uv_sem_wait(cl->release); break;
    case CLIENT_RESET: {
        struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
        uv_sem_wait(cl->accepted);
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
        break;
    }
    case CLIENT_EOF: uv_sem_wait(cl->accepted); break;
    case CLIENT_NOT_TLS:
        send_all(fd, "GET / HTTP/1.0\r\n\r\n", 18);
        while (recv(fd, buf, sizeof buf, 0) > 0)
            ;
        break;
    }
    close(fd);
}

/* ---- the server side ---- */

typedef enum {
    SERVE_PING,  /* answer <starttls/> and "ping" */
    SERVE_RETRY, /* as SERVE_PING, after a TLS client start that fails (SNI too long) */
    SERVE_FLUSH, /* once ready, write FLUSH_TOTAL bytes and close with flush */
    SERVE_BYE,   /* on accept, write "bye" and close with flush */
    SERVE_FLOOD, /* write until vn_conn_write refuses, then close */
} serve_mode;

typedef struct harness {
    uv_loop_t loop;
    uv_timer_t watchdog;
    uv_timer_t flood_timer;
    bool timed_out;
    serve_mode mode;
    uv_sem_t accepted;
    uv_sem_t release;

    vn_conn *conn;
    vn_listener_type accepted_type;
    int accepts;
    int tls_ready_calls;
    int close_calls;
    bool in_close_call;
    bool on_close_inside_close_call;
    char close_reason[128];
    vn_buf received;
    char peer_ip[64];
    int peer_port;
    int write_failures;

    bool tls_at_ready;
    char sni[64];
    char alpn[32];
    int exporter_rc;
    unsigned char exporter[64];
    size_t exporter_len;
    int end_point_rc;
    unsigned char end_point[64];
    size_t end_point_len;

    size_t flood_written;
    size_t queued_at_refusal;
    bool refused;
    int failed_client_rc;
    bool ssl_after_failure;
    uint64_t close_requested_at;
    uint64_t closed_at;
} harness;

static void close_with_flush(harness *h, vn_conn *c)
{
    uv_update_time(&h->loop);
    h->close_requested_at = uv_now(&h->loop);
    h->in_close_call = true;
    vn_conn_close(c, true);
    h->in_close_call = false;
}

static void write_pattern(harness *h, vn_conn *c)
{
    static char chunk[CHUNK];

    for (size_t sent = 0; sent < FLUSH_TOTAL; sent += CHUNK) {
        for (size_t i = 0; i < CHUNK; i++)
            chunk[i] = pattern_byte(sent + i);
        if (vn_conn_write(c, chunk, CHUNK) != 0)
            h->write_failures++;
    }
    close_with_flush(h, c);
}

static void on_data(vn_conn *c, void *ud, const char *data, size_t len)
{
    harness *h = ud;

    vn_buf_append(&h->received, data, len);
    if (h->mode != SERVE_PING && h->mode != SERVE_RETRY)
        return;
    if (!vn_conn_ssl(c) && strcmp(h->received.data, "<starttls/>") == 0) {
        if (h->mode == SERVE_RETRY) {
            char name[300]; /* SNI allows 255 bytes, a JID domain 1023 */
            memset(name, 'a', sizeof name - 1);
            name[sizeof name - 1] = '\0';
            h->failed_client_rc =
                vn_conn_start_tls_client(c, vn_tls_ctx_for_host(NULL), name, NULL, 0);
            h->ssl_after_failure = vn_conn_ssl(c) != NULL;
        }
        /* "tls:" is written mid-handshake: it must follow it, encrypted */
        if (vn_conn_write(c, "<proceed/>", 10) != 0 ||
            vn_conn_start_tls(c, vn_tls_ctx_for_host("example.test")) != 0 ||
            vn_conn_write(c, "tls:", 4) != 0)
            h->write_failures++;
    } else if (vn_conn_is_tls(c) && strcmp(h->received.data, "ping") == 0) {
        if (vn_conn_write(c, "pong", 4) != 0)
            h->write_failures++;
    }
}

static void on_tls_ready(vn_conn *c, void *ud)
{
    harness *h = ud;
    SSL *ssl = vn_conn_ssl(c);
    const unsigned char *alpn;
    unsigned int alpn_len;
    const char *sni = vn_conn_tls_sni(c);

    h->tls_ready_calls++;
    h->tls_at_ready = vn_conn_is_tls(c);
    vn_buf_reset(&h->received);
    if (sni)
        snprintf(h->sni, sizeof h->sni, "%s", sni);
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn && alpn_len < sizeof h->alpn)
        memcpy(h->alpn, alpn, alpn_len);
    h->exporter_len = sizeof h->exporter;
    h->exporter_rc = vn_tls_channel_binding(ssl, "tls-exporter", h->exporter, &h->exporter_len);
    h->end_point_len = sizeof h->end_point;
    h->end_point_rc =
        vn_tls_channel_binding(ssl, "tls-server-end-point", h->end_point, &h->end_point_len);
    if (h->mode == SERVE_FLUSH)
        write_pattern(h, c);
}

static void on_close(vn_conn *c, void *ud, const char *reason)
{
    harness *h = ud;

    uv_update_time(&h->loop);
    h->closed_at = uv_now(&h->loop);
    h->close_calls++;
    if (h->in_close_call)
        h->on_close_inside_close_call = true;
    snprintf(h->close_reason, sizeof h->close_reason, "%s", reason);
    h->conn = NULL;
    uv_sem_post(&h->release);
    vn_listeners_stop();
    uv_close((uv_handle_t *)&h->watchdog, NULL);
}

static void on_flood_tick(uv_timer_t *timer)
{
    harness *h = timer->data;
    static char chunk[CHUNK];

    for (int i = 0; i < 8; i++) {
        if (vn_conn_write(h->conn, chunk, sizeof chunk) != 0) {
            h->refused = true;
            h->queued_at_refusal = vn_conn_queued(h->conn);
            uv_close((uv_handle_t *)timer, NULL);
            vn_conn_close(h->conn, false);
            return;
        }
        h->flood_written += sizeof chunk;
    }
}

static void on_accept(vn_conn *c, const vn_listener_conf *lc, void *ud)
{
    static const vn_conn_callbacks callbacks = {on_data, on_tls_ready, on_close};
    harness *h = ud;

    h->accepts++;
    h->conn = c;
    h->accepted_type = lc->type;
    snprintf(h->peer_ip, sizeof h->peer_ip, "%s", vn_conn_peer_ip(c));
    h->peer_port = vn_conn_peer_port(c);
    vn_conn_set_callbacks(c, &callbacks, h);
    assert_int_equal(vn_conn_start(c), 0);
    uv_sem_post(&h->accepted);
    if (h->mode == SERVE_FLUSH && !vn_conn_ssl(c))
        write_pattern(h, c);
    if (h->mode == SERVE_BYE) {
        assert_int_equal(vn_conn_write(c, "bye", 3), 0);
        close_with_flush(h, c);
    }
    if (h->mode == SERVE_FLOOD) {
        uv_timer_init(&h->loop, &h->flood_timer);
        h->flood_timer.data = h;
        uv_timer_start(&h->flood_timer, on_flood_tick, 1, 1);
    }
}

static void on_watchdog(uv_timer_t *timer)
{
    harness *h = timer->data;

    h->timed_out = true;
    uv_stop(&h->loop);
}

/* Listen with one listener of the given type, run the client in a
 * thread, and run the loop until the server side has closed. */
static void run(harness *h, serve_mode mode, vn_listener_type type, const char *address, client *cl)
{
    uv_thread_t thread;
    vn_buf err;

    memset(h, 0, sizeof *h);
    h->mode = mode;
    vn_buf_init(&h->received);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(uv_sem_init(&h->accepted, 0), 0);
    assert_int_equal(uv_sem_init(&h->release, 0), 0);
    uv_timer_init(&h->loop, &h->watchdog);
    h->watchdog.data = h;
    uv_timer_start(&h->watchdog, on_watchdog, WATCHDOG_MS, 0);

    listener_conf.type = type;
    listener_conf.address = (char *)address;
    listener_conf.port = free_port();
    vn_buf_init(&err);
    if (vn_listeners_start(&h->loop, &cfg, on_accept, h, &err) != 0)
        fail_msg("%s", err.data);
    vn_buf_free(&err);

    cl->port = listener_conf.port;
    cl->accepted = &h->accepted;
    cl->release = &h->release;
    assert_int_equal(uv_thread_create(&thread, client_thread, cl), 0);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    if (h->timed_out)
        fail_msg("the loop did not finish within %d ms", WATCHDOG_MS);
    uv_thread_join(&thread);
    assert_int_equal(uv_loop_close(&h->loop), 0); /* every handle was closed */
    uv_sem_destroy(&h->accepted);
    uv_sem_destroy(&h->release);
    vn_buf_free(&h->received);

    assert_true(cl->connected);
    assert_int_equal(h->accepts, 1);
    assert_int_equal(h->accepted_type, type);
    assert_int_equal(h->close_calls, 1);
    assert_false(h->on_close_inside_close_call);
}

/* ---- tests: certificates and contexts ---- */

static void test_self_signed_cert(void **state)
{
    char *crt = cert_path("example.test", "crt");
    char *key = cert_path("example.test", "key");
    char *dir = vn_asprintf("%s/certs", data_dir);
    struct stat st;
    X509 *cert = read_cert(crt);
    char *first = read_file(crt);
    char *again;
    int days, seconds;
    vn_buf err;

    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(X509_get_version(cert), X509_VERSION_3);
    assert_int_equal(X509_check_host(cert, "example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(cert, "conference.example.test", 0, 0, NULL), 1);
    assert_int_not_equal(X509_check_host(cert, "other.test", 0, 0, NULL), 1);
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(cert)), EVP_PKEY_EC);
    assert_int_equal(
        ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert), X509_get0_notAfter(cert)), 1);
    assert_in_range(days, 700, 740);
    X509_free(cert);

    /* a second start reuses the files */
    vn_tls_shutdown();
    vn_buf_init(&err);
    assert_int_equal(vn_tls_init(&cfg, &err), 0);
    again = read_file(crt);
    assert_string_equal(first, again);
    free(again);

    /* without its key the pair is generated anew */
    assert_int_equal(unlink(key), 0);
    vn_tls_shutdown();
    assert_int_equal(vn_tls_init(&cfg, &err), 0);
    again = read_file(crt);
    assert_string_not_equal(first, again);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(again);
    vn_buf_free(&err);
    free(first);
    free(dir);
    free(key);
    free(crt);
}

static void test_ctx_for_host(void **state)
{
    SSL_CTX *example = vn_tls_ctx_for_host("example.test");
    SSL_CTX *other = vn_tls_ctx_for_host("other.test");

    assert_non_null(example);
    assert_non_null(other);
    assert_ptr_not_equal(example, other);
    assert_ptr_equal(vn_tls_ctx_for_host(NULL), example);
    assert_ptr_equal(vn_tls_ctx_for_host("unknown.test"), example);
    assert_ptr_equal(vn_tls_ctx_for_host("OTHER.test"), other);
}

static void test_reload(void **state)
{
    SSL_CTX *before = vn_tls_ctx_for_host("example.test");
    char *example_crt = cert_path("example.test", "crt");
    char *example_key = cert_path("example.test", "key");
    char *other_key = cert_path("other.test", "key");
    vn_buf err;

    vn_buf_init(&err);
    hosts[1].cert_file = "/nonexistent/other.crt";
    hosts[1].key_file = "/nonexistent/other.key";
    assert_int_equal(vn_tls_reload(&cfg, &err), -1);
    assert_non_null(strstr(err.data, "/nonexistent/other.crt"));
    assert_ptr_equal(vn_tls_ctx_for_host("example.test"), before);

    vn_buf_reset(&err);
    hosts[1].cert_file = example_crt;
    hosts[1].key_file = other_key;
    assert_int_equal(vn_tls_reload(&cfg, &err), -1);
    assert_non_null(strstr(err.data, "do not match"));
    assert_non_null(strstr(err.data, example_crt));
    assert_non_null(strstr(err.data, other_key));
    assert_ptr_equal(vn_tls_ctx_for_host("example.test"), before);

    vn_buf_reset(&err);
    hosts[1].key_file = example_key;
    assert_int_equal(vn_tls_reload(&cfg, &err), 0);
    assert_ptr_not_equal(vn_tls_ctx_for_host("example.test"), before);

    vn_buf_reset(&err);
    cfg.tls_ciphers = "NO-SUCH-CIPHER";
    assert_int_equal(vn_tls_reload(&cfg, &err), -1);
    assert_non_null(strstr(err.data, "NO-SUCH-CIPHER"));
    vn_buf_free(&err);
    free(other_key);
    free(example_key);
    free(example_crt);
}

/* ---- tests: connections ---- */

static void assert_bindings_match(const harness *h, const client *cl)
{
    assert_int_equal(h->exporter_rc, 0);
    assert_int_equal(h->exporter_len, 32);
    assert_true(cl->exporter_ok);
    assert_memory_equal(h->exporter, cl->exporter, 32);
    assert_int_equal(h->end_point_rc, 0);
    assert_int_equal(h->end_point_len, 32); /* ecdsa-with-SHA256 */
    assert_memory_equal(h->end_point, cl->cert_sha256, 32);
}

static void test_direct_tls(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_PING, .sni = "other.test", .offer_alpn = true};

    run(&h, SERVE_PING, VN_LISTEN_C2S_TLS, "127.0.0.1", &cl);
    assert_true(cl.handshake_ok);
    assert_int_equal(h.tls_ready_calls, 1);
    assert_true(h.tls_at_ready);
    assert_string_equal(h.sni, "other.test");
    assert_string_equal(cl.peer_cn, "other.test"); /* SNI switched the certificate */
    assert_string_equal(h.alpn, "xmpp-client");
    assert_string_equal(cl.alpn, "xmpp-client");
    assert_bindings_match(&h, &cl);
    assert_memory_equal(cl.reply, "pong", 4);
    assert_int_equal(cl.shutdown_rc, 1); /* the server answered close_notify */
    assert_string_equal(h.close_reason, "eof");
    assert_string_equal(h.peer_ip, "127.0.0.1");
    assert_int_equal(h.peer_port, cl.local_port);
    assert_int_equal(h.write_failures, 0);
}

static void test_unknown_sni_tls12(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_PING, .sni = "nowhere.test", .max_version = TLS1_2_VERSION};

    run(&h, SERVE_PING, VN_LISTEN_C2S_TLS, "127.0.0.1", &cl);
    assert_true(cl.handshake_ok);
    assert_string_equal(cl.peer_cn, "example.test"); /* the default host */
    assert_string_equal(h.alpn, "");
    assert_string_equal(cl.alpn, "");
    assert_bindings_match(&h, &cl); /* TLS 1.2 with extended master secret */
    assert_memory_equal(cl.reply, "pong", 4);
}

static void test_tls12_without_ems(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_PING, .max_version = TLS1_2_VERSION, .no_ems = true};

    run(&h, SERVE_PING, VN_LISTEN_C2S_TLS, "127.0.0.1", &cl);
    assert_true(cl.handshake_ok);
    assert_string_equal(h.sni, "");
    assert_int_equal(h.exporter_rc, -1);
    assert_int_equal(h.end_point_rc, 0);
    assert_memory_equal(h.end_point, cl.cert_sha256, 32);
}

static void test_starttls(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_PING, .starttls = true, .sni = "example.test"};

    run(&h, SERVE_PING, VN_LISTEN_C2S, "127.0.0.1", &cl);
    assert_true(cl.proceed_ok);
    assert_true(cl.handshake_ok);
    assert_int_equal(h.tls_ready_calls, 1);
    assert_string_equal(cl.peer_cn, "example.test");
    assert_bindings_match(&h, &cl);
    assert_string_equal(cl.reply, "tls:pong");
    assert_int_equal(h.write_failures, 0);
}

/* A TLS start that fails leaves the connection as it was: no SSL attached,
 * so TLS can still start on it (and nothing is read through a dead one). */
static void test_failed_tls_client_start_detaches(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_PING, .starttls = true, .sni = "example.test"};

    run(&h, SERVE_RETRY, VN_LISTEN_C2S, "127.0.0.1", &cl);
    assert_int_equal(h.failed_client_rc, -1);
    assert_false(h.ssl_after_failure);
    assert_true(cl.handshake_ok);
    assert_string_equal(cl.reply, "tls:pong");
    assert_int_equal(h.write_failures, 0);
}

static void test_not_tls(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_NOT_TLS};

    run(&h, SERVE_PING, VN_LISTEN_C2S_TLS, "127.0.0.1", &cl);
    assert_int_equal(h.tls_ready_calls, 0);
    assert_int_equal(strncmp(h.close_reason, "tls error: ", 11), 0);
    assert_true(strlen(h.close_reason) > 11);
}

static void test_output_cap(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_IDLE};

    cfg.max_output_buffer = 256 * 1024;
    run(&h, SERVE_FLOOD, VN_LISTEN_C2S, "127.0.0.1", &cl);
    cfg.max_output_buffer = 1024 * 1024;
    assert_true(h.refused);
    assert_true(h.queued_at_refusal <= 256 * 1024);
    assert_true(h.queued_at_refusal + CHUNK > 256 * 1024);
    assert_true(h.flood_written >= h.queued_at_refusal);
    assert_string_equal(h.close_reason, "closed");
}

static void test_close_flush_tls(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_READ_ALL, .tls = true};

    run(&h, SERVE_FLUSH, VN_LISTEN_C2S_TLS, "127.0.0.1", &cl);
    assert_int_equal(h.write_failures, 0);
    assert_int_equal(cl.bytes_read, FLUSH_TOTAL);
    assert_true(cl.pattern_ok);
    assert_true(cl.close_notify);
    assert_true(cl.got_fin);
    assert_string_equal(h.close_reason, "closed");
}

static void test_close_flush_plain(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_READ_ALL};

    run(&h, SERVE_FLUSH, VN_LISTEN_C2S, "127.0.0.1", &cl);
    assert_int_equal(h.write_failures, 0);
    assert_int_equal(cl.bytes_read, FLUSH_TOTAL);
    assert_true(cl.pattern_ok);
    assert_true(cl.got_fin);
    assert_string_equal(h.close_reason, "closed");
}

static void test_close_flush_timeout(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_IDLE};

    run(&h, SERVE_BYE, VN_LISTEN_C2S, "127.0.0.1", &cl);
    assert_in_range(h.closed_at - h.close_requested_at, 1900, 3000);
    assert_string_equal(h.close_reason, "closed");
}

static void test_peer_reset(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_RESET};

    run(&h, SERVE_PING, VN_LISTEN_C2S, "127.0.0.1", &cl);
    assert_string_equal(h.close_reason, "connection reset");
}

static void test_peer_eof_dual_stack(void **state)
{
    harness h;
    client cl = {.mode = CLIENT_EOF};

    run(&h, SERVE_PING, VN_LISTEN_C2S, "::", &cl);
    assert_string_equal(h.close_reason, "eof");
    assert_string_equal(h.peer_ip, "127.0.0.1"); /* not ::ffff:127.0.0.1 */
}

/* ---- tests: listeners ---- */

static void test_listen_failure(void **state)
{
    vn_listener_conf confs[2];
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int busy = socket(AF_INET, SOCK_STREAM, 0);
    int probe;
    char *expected;
    uv_loop_t loop;
    vn_config bad = cfg;
    vn_buf err;

    assert_int_equal(bind(busy, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(busy, 1), 0);
    assert_int_equal(getsockname(busy, (struct sockaddr *)&addr, &len), 0);

    confs[0] = (vn_listener_conf){VN_LISTEN_C2S, "127.0.0.1", free_port(), 1, NULL};
    confs[1] = (vn_listener_conf){VN_LISTEN_C2S_TLS, "127.0.0.1", ntohs(addr.sin_port), 2, NULL};
    bad.listeners = confs;
    bad.n_listeners = 2;
    vn_buf_init(&err);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(vn_listeners_start(&loop, &bad, on_accept, NULL, &err), -1);
    expected = vn_asprintf("cannot listen on 127.0.0.1:%d: address already in use", confs[1].port);
    assert_string_equal(err.data, expected);
    free(expected);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* the first listener was closed again: its port is free */
    addr.sin_port = htons((uint16_t)confs[0].port);
    probe = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(probe, (struct sockaddr *)&addr, sizeof addr), 0);
    close(probe);
    close(busy);

    confs[0].address = "not-an-address";
    bad.n_listeners = 1;
    vn_buf_reset(&err);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(vn_listeners_start(&loop, &bad, on_accept, NULL, &err), -1);
    assert_non_null(strstr(err.data, "cannot listen on not-an-address:"));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    vn_buf_free(&err);
}

/* ---- fixtures ---- */

static int setup_tls(void **state)
{
    vn_buf err;
    int rc;

    for (size_t i = 0; i < 2; i++)
        hosts[i].cert_file = hosts[i].key_file = NULL;
    cfg.tls_ciphers = NULL;
    vn_buf_init(&err);
    rc = vn_tls_init(&cfg, &err);
    if (rc != 0)
        fprintf(stderr, "vn_tls_init: %s\n", err.data);
    vn_buf_free(&err);
    return rc;
}

static int teardown_tls(void **state)
{
    vn_tls_shutdown();
    return 0;
}

static int setup_group(void **state)
{
    snprintf(data_dir, sizeof data_dir, "/tmp/vn-test-conn-XXXXXX");
    if (!mkdtemp(data_dir))
        return -1;
    hosts[0] = (vn_host_conf){.name = "example.test"};
    hosts[1] = (vn_host_conf){.name = "other.test"};
    cfg.hosts = hosts;
    cfg.n_hosts = 2;
    cfg.listeners = &listener_conf;
    cfg.n_listeners = 1;
    cfg.data_dir = data_dir;
    cfg.tls_ciphersuites = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
    cfg.max_output_buffer = 1024 * 1024;
    return 0;
}

static int teardown_group(void **state)
{
    char *cmd = vn_asprintf("rm -rf '%s'", data_dir);
    int rc = system(cmd);

    free(cmd);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_self_signed_cert, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_ctx_for_host, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_reload, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_direct_tls, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_unknown_sni_tls12, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_tls12_without_ems, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_starttls, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_failed_tls_client_start_detaches, setup_tls,
                                        teardown_tls),
        cmocka_unit_test_setup_teardown(test_not_tls, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_output_cap, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_close_flush_tls, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_close_flush_plain, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_close_flush_timeout, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_peer_reset, setup_tls, teardown_tls),
        cmocka_unit_test_setup_teardown(test_peer_eof_dual_stack, setup_tls, teardown_tls),
        cmocka_unit_test(test_listen_failure),
    };

    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
