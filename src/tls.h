/*
 * tls.h - OpenSSL server contexts per host, certificates, channel binding.
 *
 * One SSL_CTX per configured host (TLS 1.2+, modern ciphers, no
 * renegotiation, no compression), selected by SNI on direct TLS and by the
 * stream's 'to' on STARTTLS. A host without a configured certificate gets
 * a self-signed one generated into <data_dir>/certs/ on first start (and
 * reused afterwards); the log says so. vn_tls_reload swaps in new contexts
 * on SIGHUP; connections already up keep the context they started with.
 */
#ifndef VESTNIK_TLS_H
#define VESTNIK_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

int vn_tls_init(const vn_config *cfg, vn_buf *err);   /* 0 ok; -1 with message */
int vn_tls_reload(const vn_config *cfg, vn_buf *err); /* on failure the old contexts stay */
void vn_tls_shutdown(void);

/* tls_gost.c: the context of listeners with tls_profile: gost (GOST R
 * 34.10-2012 certificate, GOST TLS 1.2 suites through the gost engine of
 * libengine-gost-openssl), built when one is configured; NULL otherwise. */
int vn_tls_gost_configure(const vn_config *cfg, vn_buf *err);
void vn_tls_gost_shutdown(void);
/* The context a direct-TLS listener starts connections with: the GOST one
 * for tls_profile: gost, else NULL (the hosts' contexts, chosen by SNI). */
SSL_CTX *vn_tls_listener_ctx(const vn_listener_conf *lc);

/* Context for a host; NULL or unknown host gives the first host's. */
SSL_CTX *vn_tls_ctx_for_host(const char *host);

/* Channel binding data (RFC 9266 "tls-exporter", RFC 5929
 * "tls-server-end-point") for an established server-side connection.
 * Returns 0 and fills out (*len in: capacity, out: length), or -1 when the
 * type is unknown or not available on this connection (tls-exporter needs
 * TLS 1.3 or the extended master secret). */
int vn_tls_channel_binding(SSL *ssl, const char *type, unsigned char *out, size_t *len);

/* Federation. The host contexts also serve as client contexts. */
/* A server-side connection asks the peer for its certificate (without
 * failing the handshake when it is missing or invalid). */
void vn_tls_request_peer_certificate(SSL *ssl);
/* Whether the peer's certificate chains to a trusted CA (the system's plus
 * s2s.ca_file) and names domain as a server (DNS-ID, SRV-ID for
 * _xmpp-server, or xmppAddr). On false, *why
 * says what is wrong, for the log. */
bool vn_tls_peer_valid_for(SSL *ssl, const char *domain, const char **why);
/* A domain's IDNA A-label (for SNI and certificate names); NULL if it
 * has none. The caller frees it. */
char *vn_tls_ascii_name(const char *domain);

#endif
