/*
 * tls_gost.c - the GOST TLS profile: listeners with tls_profile: gost.
 *
 * Where regulation asks for national cryptography, a listener can serve TLS
 * 1.2 with the GOST cipher suites (Kuznyechik and Magma with OMAC,
 * GOST 28147-89 with its MAC) and a GOST R 34.10-2012 certificate. OpenSSL
 * 3.0 implements none of them itself: Debian's libengine-gost-openssl does,
 * and in OpenSSL 3.0 the TLS suites exist only through its engine (its
 * provider has the algorithms but not TLS), so this file, and only this
 * one, uses the engine API that OpenSSL 3 deprecates. The engine is loaded
 * once, when a GOST listener is first configured, and becomes the default
 * only for the algorithms it implements.
 *
 * One context serves every host of a GOST listener (one certificate, no
 * SNI switch): GOST deployments name their hosts in that certificate.
 * doc/crypto.md says what is and is not offered.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/engine.h>
#include <openssl/err.h>

#include "tls.h"

#define GOST_ENGINE_ID "gost"
#define GOST_CIPHERS                                                                               \
    "GOST2012-KUZNYECHIK-KUZNYECHIKOMAC:GOST2012-MAGMA-MAGMAOMAC:IANA-GOST2012-GOST8912-GOST8912"

static ENGINE *engine;
static SSL_CTX *gost_ctx;

static void append_error(vn_buf *err)
{
    unsigned long e = ERR_get_error();
    char text[256];

    ERR_error_string_n(e, text, sizeof text);
    vn_buf_append_str(err, e ? text : "unknown error");
    ERR_clear_error();
}

static int load_engine(vn_buf *err)
{
    if (engine)
        return 0;
    engine = ENGINE_by_id(GOST_ENGINE_ID);
    if (!engine) {
        vn_buf_append_str(err, "tls_profile gost: the OpenSSL gost engine is missing (install "
                               "the Debian package libengine-gost-openssl): ");
        append_error(err);
        return -1;
    }
    if (!ENGINE_init(engine) || !ENGINE_set_default(engine, ENGINE_METHOD_ALL)) {
        vn_buf_append_str(err, "tls_profile gost: cannot start the gost engine: ");
        append_error(err);
        ENGINE_free(engine);
        engine = NULL;
        return -1;
    }
    return 0;
}

static SSL_CTX *build_ctx(const vn_config *cfg, vn_buf *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (!ctx) {
        vn_buf_append_str(err, "tls_profile gost: cannot create a TLS context: ");
        append_error(err);
        return NULL;
    }
    /* The GOST suites are TLS 1.2 suites in OpenSSL 3.0. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (!SSL_CTX_set_cipher_list(ctx, GOST_CIPHERS)) {
        vn_buf_append_str(err, "tls_profile gost: the gost engine offers no GOST cipher suite: ");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_gost_cert) != 1) {
        vn_buf_printf(err, "tls.gost_certificate %s: ", cfg->tls_gost_cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_gost_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        vn_buf_printf(err, "tls.gost_key %s: ", cfg->tls_gost_key);
        goto fail;
    }
    return ctx;

fail:
    append_error(err);
    SSL_CTX_free(ctx);
    return NULL;
}

int vn_tls_gost_configure(const vn_config *cfg, vn_buf *err)
{
    bool wanted = false;

    for (size_t i = 0; i < cfg->n_listeners; i++)
        wanted = wanted || vn_listener_gost(&cfg->listeners[i]);
    if (!wanted) {
        vn_tls_gost_shutdown();
        return 0;
    }
    if (load_engine(err) != 0)
        return -1;
    SSL_CTX *ctx = build_ctx(cfg, err);
    if (!ctx)
        return -1;
    /* Connections keep a reference on the context they started with. */
    SSL_CTX_free(gost_ctx);
    gost_ctx = ctx;
    return 0;
}

void vn_tls_gost_shutdown(void)
{
    SSL_CTX_free(gost_ctx);
    gost_ctx = NULL;
    if (engine) {
        ENGINE_finish(engine);
        ENGINE_free(engine);
        engine = NULL;
    }
}

SSL_CTX *vn_tls_listener_ctx(const vn_listener_conf *lc)
{
    return vn_listener_gost(lc) ? gost_ctx : NULL;
}
