/* dtls.c - DTLS-SRTP (RFC 5763, RFC 5764) through OpenSSL.
 *
 * The engine makes one ECDSA P-256 certificate at start; its sha-256
 * fingerprint goes into every answer. Each leg has an SSL object reading from
 * a memory BIO (fed the datagrams the RFC 7983 demultiplexer hands over) and
 * writing through a small BIO of ours that sends each record flight straight
 * to the leg's peer, so a flight never waits for a poll. Certificates are
 * self-signed on both sides: OpenSSL's chain check is waived and the peer's
 * certificate is held against the fingerprint signalled in Jingle instead,
 * once the handshake is done. The keys come from SSL_export_keying_material
 * (RFC 5764 §4.2) for the profile the handshake chose: AEAD_AES_128_GCM
 * (RFC 7714) when the client offers it, else SRTP_AES128_CM_SHA1_80.
 */
#include <ctype.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/srtp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "media_internal.h"

#define DTLS_MTU 1200
#define SRTP_PROFILES "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"

static int verify_later(int ok, X509_STORE_CTX *store)
{
    return 1; /* held against the signalled fingerprint when the handshake is done */
}

static int bio_write(BIO *b, const char *data, int len)
{
    vc_leg *leg = BIO_get_data(b);

    vc_leg_send(leg, data, (size_t)len); /* a lost flight is retransmitted on timeout */
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU: return DTLS_MTU;
    default: return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void format_fingerprint(const unsigned char *md, unsigned n, char *out, size_t outlen)
{
    size_t pos = 0;

    for (unsigned i = 0; i < n && pos + 3 < outlen; i++)
        pos += (size_t)snprintf(out + pos, outlen - pos, i ? ":%02X" : "%02X", md[i]);
}

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    uint32_t serial;

    if (!x)
        return NULL;
    vc_random(&serial, sizeof(serial));
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_set_version(x, 2) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(serial & 0x7fffffff)) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) || X509_set_pubkey(x, key) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"vestnik", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1 || X509_sign(x, key, EVP_sha256()) == 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int vc_dtls_ctx_new(vc_engine *e, char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = key ? self_signed(key) : NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    int rc = VC_ECRYPTO;

    if (!cert || X509_digest(cert, EVP_sha256(), md, &n) != 1)
        goto out;
    format_fingerprint(md, n, e->fingerprint, sizeof(e->fingerprint));

    e->ssl_ctx = SSL_CTX_new(DTLS_method());
    if (!e->ssl_ctx || SSL_CTX_set_min_proto_version(e->ssl_ctx, DTLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate(e->ssl_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(e->ssl_ctx, key) != 1 ||
        SSL_CTX_set_tlsext_use_srtp(e->ssl_ctx, SRTP_PROFILES) != 0)
        goto out;
    SSL_CTX_set_verify(e->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_later);

    e->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vestnik-voice");
    if (!e->bio_method || BIO_meth_set_write(e->bio_method, bio_write) != 1 ||
        BIO_meth_set_ctrl(e->bio_method, bio_ctrl) != 1 ||
        BIO_meth_set_create(e->bio_method, bio_create) != 1)
        goto out;
    rc = VC_OK;
out:
    if (rc != VC_OK) {
        const char *why = ERR_reason_error_string(ERR_get_error());
        snprintf(err, errlen, "voice: cannot set up DTLS: %s", why ? why : "no certificate");
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

void vc_dtls_ctx_free(vc_engine *e)
{
    SSL_CTX_free(e->ssl_ctx);
    BIO_meth_free(e->bio_method);
}

int vc_dtls_parse_fingerprint(vc_leg *leg, const char *hash, const char *value)
{
    static const struct {
        const char *name;
        const EVP_MD *(*md)(void);
    } hashes[] = {{"sha-1", EVP_sha1},
                  {"sha-224", EVP_sha224},
                  {"sha-256", EVP_sha256},
                  {"sha-384", EVP_sha384},
                  {"sha-512", EVP_sha512}};

    if (!hash || !value)
        return VC_EINVAL;
    leg->fp_md = NULL;
    for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
        if (strcasecmp(hash, hashes[i].name) == 0)
            leg->fp_md = hashes[i].md();
    if (!leg->fp_md)
        return VC_EFINGERPRINT;

    unsigned want = (unsigned)EVP_MD_get_size(leg->fp_md);
    const char *p = value;
    leg->fp_len = 0;
    while (*p) {
        if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) || leg->fp_len == want)
            return VC_EINVAL;
        unsigned byte;
        sscanf(p, "%2x", &byte);
        leg->fp[leg->fp_len++] = (unsigned char)byte;
        p += 2;
        if (*p == ':')
            p++;
        else if (*p)
            return VC_EINVAL;
    }
    return leg->fp_len == want ? VC_OK : VC_EINVAL;
}

int vc_dtls_leg_new(vc_leg *leg)
{
    vc_engine *e = leg->e;
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(e->bio_method);

    leg->ssl = SSL_new(e->ssl_ctx);
    if (!leg->ssl || !rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        return VC_ECRYPTO;
    }
    BIO_set_mem_eof_return(rbio, -1);
    BIO_set_data(wbio, leg);
    SSL_set_bio(leg->ssl, rbio, wbio);
    SSL_set_options(leg->ssl, SSL_OP_NO_QUERY_MTU);
    DTLS_set_link_mtu(leg->ssl, DTLS_MTU);
    if (leg->dtls_client)
        SSL_set_connect_state(leg->ssl);
    else
        SSL_set_accept_state(leg->ssl);
    return VC_OK;
}

static bool fingerprint_matches(vc_leg *leg)
{
    X509 *peer = SSL_get1_peer_certificate(leg->ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    bool ok = peer && X509_digest(peer, leg->fp_md, md, &n) == 1 && n == leg->fp_len &&
              CRYPTO_memcmp(md, leg->fp, n) == 0;

    X509_free(peer);
    return ok;
}

static void handshake_done(vc_leg *leg)
{
    if (!fingerprint_matches(leg)) {
        vc_leg_fail(leg, VC_FAIL_DTLS, "the DTLS certificate does not match the fingerprint");
        return;
    }
    const SRTP_PROTECTION_PROFILE *profile = SSL_get_selected_srtp_profile(leg->ssl);
    if (!profile) {
        vc_leg_fail(leg, VC_FAIL_DTLS, "no SRTP profile negotiated");
        return;
    }
    bool gcm = profile->id == SRTP_AEAD_AES_128_GCM;
    size_t key = 16, salt = gcm ? 12 : 14;
    uint8_t mat[2 * (16 + 14)], client[16 + 14], server[16 + 14];
    if (SSL_export_keying_material(leg->ssl, mat, 2 * (key + salt), "EXTRACTOR-dtls_srtp", 19, NULL,
                                   0, 0) != 1) {
        vc_leg_fail(leg, VC_FAIL_DTLS, "cannot export the SRTP keys");
        return;
    }
    /* RFC 5764 §4.2: client key, server key, client salt, server salt */
    memcpy(client, mat, key);
    memcpy(server, mat + key, key);
    memcpy(client + key, mat + 2 * key, salt);
    memcpy(server + key, mat + 2 * key + salt, salt);
    int rc = leg->dtls_client ? vc_srtp_start(leg, gcm, client, server)
                              : vc_srtp_start(leg, gcm, server, client);
    OPENSSL_cleanse(mat, sizeof(mat));
    OPENSSL_cleanse(client, sizeof(client));
    OPENSSL_cleanse(server, sizeof(server));
    if (rc != 0) {
        vc_leg_fail(leg, VC_FAIL_INTERNAL, "cannot set up SRTP");
        return;
    }
    uint64_t now = vc_now_ms();
    leg->state = VC_LEG_CONNECTED;
    leg->last_consent_ms = now;
    leg->next_rtcp_ms = now + leg->e->cfg.rtcp_interval_ms / 2;
    atomic_fetch_add(&leg->e->legs_connected, 1);
    atomic_store(&leg->st.connected, true);
    vc_emit(leg->e, VC_EV_CONNECTED, leg, VC_FAIL_NONE, NULL);
}

static void step(vc_leg *leg)
{
    int r = SSL_do_handshake(leg->ssl);

    if (r == 1) {
        handshake_done(leg);
        return;
    }
    int err = SSL_get_error(leg->ssl, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        vc_leg_fail(leg, VC_FAIL_DTLS, "the DTLS handshake failed");
    }
}

void vc_dtls_start(vc_leg *leg)
{
    if (leg->dtls_client)
        step(leg); /* the ClientHello */
}

void vc_dtls_input(vc_leg *leg, const uint8_t *buf, size_t len)
{
    BIO_write(SSL_get_rbio(leg->ssl), buf, (int)len);
    if (leg->state == VC_LEG_DTLS) {
        step(leg);
        return;
    }
    /* after the handshake: retransmitted flights, alerts, close_notify */
    uint8_t scratch[256];
    int r = SSL_read(leg->ssl, scratch, sizeof(scratch));
    if (r <= 0) {
        int err = SSL_get_error(leg->ssl, r);
        ERR_clear_error();
        if (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SSL)
            vc_leg_fail(leg, VC_FAIL_DTLS, "the remote closed DTLS");
    }
    BIO_reset(SSL_get_rbio(leg->ssl));
}

void vc_dtls_timer(vc_leg *leg)
{
    if (leg->state == VC_LEG_DTLS && DTLSv1_handle_timeout(leg->ssl) < 0)
        vc_leg_fail(leg, VC_FAIL_DTLS, "DTLS retransmissions exhausted");
}
