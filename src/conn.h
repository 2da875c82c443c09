/*
 * conn.h - one TCP connection, accepted or outgoing: libuv stream,
 * optional TLS (server or client side) through OpenSSL, and a bounded
 * write queue.
 *
 * The owner (a stream state machine) sees plaintext in on_data and writes
 * plaintext with vn_conn_write; TLS is transparent once started. Writes are
 * copied and queued; when more than max_output bytes are queued (a reader
 * too slow), vn_conn_write returns -1 and the owner should close.
 */
#ifndef VESTNIK_CONN_H
#define VESTNIK_CONN_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct vn_conn vn_conn;

typedef struct vn_conn_callbacks {
    /* Plaintext received. The owner may call vn_conn_close from here. */
    void (*on_data)(vn_conn *c, void *ud, const char *data, size_t len);
    /* TLS handshake finished (STARTTLS or direct TLS); may be NULL. */
    void (*on_tls_ready)(vn_conn *c, void *ud);
    /* The connection is gone (peer closed, error, or after vn_conn_close).
     * reason is a short text for the log ("eof", "tls error: ...").
     * Called exactly once; the conn is freed right after it returns. */
    void (*on_close)(vn_conn *c, void *ud, const char *reason);
} vn_conn_callbacks;

/* Accept a pending connection on a listening stream. NULL on failure. */
vn_conn *vn_conn_accept(uv_stream_t *server, size_t max_output);
void vn_conn_set_callbacks(vn_conn *c, const vn_conn_callbacks *cb, void *ud);

/* Open an outgoing connection to addr with the callbacks set. Once it is
 * established, on_connect runs (the owner then calls vn_conn_start); if
 * it fails, only on_close runs, with a reason such as "connect: connection
 * refused". vn_conn_close before that cancels the attempt. */
typedef void (*vn_conn_connect_cb)(vn_conn *c, void *ud);
vn_conn *vn_conn_connect(uv_loop_t *loop, const struct sockaddr *addr, size_t max_output,
                         const vn_conn_callbacks *cb, vn_conn_connect_cb on_connect, void *ud);
/* Start reading (after callbacks are set). */
int vn_conn_start(vn_conn *c);

/* Load shaping: stop reading from the socket (the peer's sends back up
 * in TCP) or start again. Data of the current read is still delivered.
 * A flushing close reads (and discards) regardless. */
void vn_conn_pause_reading(vn_conn *c, bool paused);

/* Begin server-side TLS now; ctx NULL picks by SNI among the hosts
 * (direct TLS). Plaintext queued before the call is sent unencrypted
 * first (the STARTTLS <proceed/>). 0 or -1. */
int vn_conn_start_tls(vn_conn *c, SSL_CTX *ctx);
/* Begin client-side TLS now (STARTTLS after <proceed/>, or direct TLS):
 * server_name goes into SNI, alpn (wire format, may be NULL) into ALPN.
 * Checking the server's certificate is the owner's, in on_tls_ready. */
int vn_conn_start_tls_client(vn_conn *c, SSL_CTX *ctx, const char *server_name,
                             const unsigned char *alpn, unsigned alpn_len);
bool vn_conn_is_tls(const vn_conn *c);         /* handshake completed */
SSL *vn_conn_ssl(vn_conn *c);                  /* NULL before TLS */
const char *vn_conn_tls_sni(const vn_conn *c); /* client's SNI or NULL */

/* Queue plaintext. 0, or -1 if the output cap is exceeded or the
 * connection is closing (data dropped). */
int vn_conn_write(vn_conn *c, const char *data, size_t len);
size_t vn_conn_queued(const vn_conn *c);

/* Close: with flush, queued output (and TLS close_notify) is sent first,
 * bounded by a short timeout; without, at once. on_close follows later
 * from the loop, never from inside this call. */
void vn_conn_close(vn_conn *c, bool flush);

const char *vn_conn_peer_ip(const vn_conn *c); /* textual address */
int vn_conn_peer_port(const vn_conn *c);

#endif
