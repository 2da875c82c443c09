/*
 * tls.c - the server's OpenSSL contexts: one SSL_CTX per host, chosen by SNI.
 *
 * Every context is built the same way (TLS 1.2 minimum, the configured
 * cipher lists, X25519/P-256/P-384, no compression or renegotiation, ALPN
 * "xmpp-client" for XEP-0368) and differs only in its certificate: the
 * host's own, else the server-wide default, else a self-signed one that we
 * generate once into <data_dir>/certs/ and reuse on later starts.
 *
 * Session resumption uses stateless tickets only (the server-side session
 * cache is off, so resumption costs no server memory; one ticket per full
 * handshake). Ticket keys are random per context, so a reload invalidates
 * outstanding tickets, which merely costs those clients a full handshake.
 *
 * Host names are IDNA U-labels in the configuration; certificates, SNI and
 * file names use the A-label (punycode) form.
 *
 * Federation uses the same contexts in both roles (they are built with
 * TLS_method), so an outgoing s2s connection presents the host's own
 * certificate for SASL EXTERNAL. Peer certificates are checked after the
 * handshake against one trust store (the system's CAs plus s2s.ca_file)
 * and the peer's domain (RFC 6125 DNS-ID, or the XMPP xmppAddr), so that
 * an invalid certificate is not a failed handshake but a reason to fall
 * back to dialback.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <idn2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TLS_GROUPS "X25519:P-256:P-384"
#define SELF_SIGNED_DAYS 730
#define SELF_SIGNED_RENEW_DAYS 30

typedef struct tls_host {
    char *name;       /* as configured (U-label) */
    char *ascii_name; /* A-label, what SNI and certificates carry */
    SSL_CTX *ctx;
} tls_host;

typedef struct tls_set {
    tls_host *hosts;
    size_t n_hosts;
    X509_STORE *trust; /* for peer certificates (s2s) */
} tls_set;

/* The contexts in use. Connections hold their own reference on the
 * SSL_CTX they started with, so replacing the set never pulls a context
 * from under a live connection. */
static tls_set active;

/* Append the reason of the most recent OpenSSL error and clear the queue. */
static void append_openssl_error(vn_buf *err)
{
    unsigned long code = ERR_peek_last_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;

    if (reason)
        vn_buf_append_str(err, reason);
    else if (code)
        vn_buf_printf(err, "OpenSSL error %lx", code);
    else
        vn_buf_append_str(err, "unknown error");
    ERR_clear_error();
}

static const tls_host *find_host(const tls_set *set, const char *name)
{
    for (size_t i = 0; i < set->n_hosts; i++) {
        const tls_host *h = &set->hosts[i];
        if (strcasecmp(h->name, name) == 0 || strcasecmp(h->ascii_name, name) == 0)
            return h;
    }
    return NULL;
}

/* SNI: move the connection to the named host's context. An unknown name
 * keeps the context the connection started with. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const tls_host *h = name ? find_host(&active, name) : NULL;

    if (!h)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_get_SSL_CTX(ssl) != h->ctx && !SSL_set_SSL_CTX(ssl, h->ctx))
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: select "xmpp-client" or "xmpp-server" when offered (XEP-0368);
 * otherwise none. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char supported[] = "\x0bxmpp-client\x0bxmpp-server";

    if (SSL_select_next_proto((unsigned char **)out, outlen, supported, sizeof supported - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *new_server_ctx(const vn_config *cfg, vn_buf *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());

    if (!ctx) {
        vn_buf_append_str(err, "cannot create a TLS context: ");
        append_openssl_error(err);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);

    if (cfg->tls_ciphers && !SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers)) {
        vn_buf_printf(err, "tls.ciphers \"%s\": ", cfg->tls_ciphers);
        goto fail;
    }
    if (cfg->tls_ciphersuites && !SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites)) {
        vn_buf_printf(err, "tls.ciphersuites \"%s\": ", cfg->tls_ciphersuites);
        goto fail;
    }
    if (!SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
        vn_buf_append_str(err, "cannot set the key exchange groups " TLS_GROUPS ": ");
        goto fail;
    }
    return ctx;

fail:
    append_openssl_error(err);
    SSL_CTX_free(ctx);
    return NULL;
}

static EVP_PKEY *read_key_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    EVP_PKEY *key = fp ? PEM_read_PrivateKey(fp, NULL, NULL, NULL) : NULL;

    if (fp)
        fclose(fp);
    return key;
}

/* A configured certificate chain and key (the key may be in the
 * certificate file when key_file is NULL). */
static int use_cert_files(SSL_CTX *ctx, const char *host, const char *cert_file,
                          const char *key_file, vn_buf *err)
{
    EVP_PKEY *key;
    int rc = -1;

    if (!key_file)
        key_file = cert_file;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        vn_buf_printf(err, "host %s: cannot load certificate %s: ", host, cert_file);
        append_openssl_error(err);
        return -1;
    }
    key = read_key_file(key_file);
    if (!key) {
        vn_buf_printf(err, "host %s: cannot load private key %s: ", host, key_file);
        if (ERR_peek_last_error())
            append_openssl_error(err);
        else
            vn_buf_append_str(err, strerror(errno)); /* fopen */
    } else if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) != 1) {
        ERR_clear_error();
        vn_buf_printf(err, "host %s: certificate %s and key %s do not match", host, cert_file,
                      key_file);
    } else if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        vn_buf_printf(err, "host %s: cannot use private key %s: ", host, key_file);
        append_openssl_error(err);
    } else {
        rc = 0;
    }
    EVP_PKEY_free(key);
    if (rc == 0 && X509_check_host(SSL_CTX_get0_certificate(ctx), host, 0, 0, NULL) != 1)
        vn_log_warn("certificate %s does not name %s: clients will refuse it for that host",
                    cert_file, host);
    return rc;
}

/* Write a PEM file atomically (temporary file, then rename) with mode. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, vn_buf *err)
{
    char *tmp = vn_asprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    int ok = 0;

    if (!fp) {
        vn_buf_printf(err, "cannot create %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(tmp);
        return -1;
    }
    if (fchmod(fd, mode) == 0) {
        ok = key ? PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_X509(fp, cert);
        ok = ok && fflush(fp) == 0 && fsync(fd) == 0;
    }
    if (fclose(fp) != 0)
        ok = 0;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok) {
        vn_buf_printf(err, "cannot write %s: %s", path, strerror(errno));
        ERR_clear_error();
        unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

static int add_extension(X509 *cert, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    int ok = ext && X509_add_ext(cert, ext, -1);

    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A self-signed X.509 v3 certificate for host: EC P-256, random serial,
 * CN and subjectAltName host and *.host, valid about two years. */
static X509 *make_self_signed(const char *host, EVP_PKEY *key)
{
    X509 *cert = X509_new();
    BIGNUM *serial = BN_new();
    X509_NAME *name;
    X509V3_CTX v3;
    char *san;
    int ok;

    if (!cert || !serial) {
        X509_free(cert);
        BN_free(serial);
        return NULL;
    }
    name = X509_get_subject_name(cert);
    san = vn_asprintf("DNS:%s,DNS:*.%s", host, host);
    ok = BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
         BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) &&
         X509_set_version(cert, X509_VERSION_3) &&
         X509_gmtime_adj(X509_getm_notBefore(cert), -3600) &&
         X509_time_adj_ex(X509_getm_notAfter(cert), SELF_SIGNED_DAYS, 0, NULL) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1,
                                    0) &&
         X509_set_issuer_name(cert, name) && X509_set_pubkey(cert, key);

    if (ok) {
        X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
        ok = add_extension(cert, &v3, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
             add_extension(cert, &v3, NID_key_usage, "critical,digitalSignature") == 0 &&
             add_extension(cert, &v3, NID_ext_key_usage, "serverAuth,clientAuth") == 0 &&
             add_extension(cert, &v3, NID_subject_key_identifier, "hash") == 0 &&
             add_extension(cert, &v3, NID_subject_alt_name, san) == 0 &&
             X509_sign(cert, key, EVP_sha256()) > 0;
    }
    free(san);
    BN_free(serial);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static X509 *read_cert_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    X509 *cert = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;

    if (fp)
        fclose(fp);
    return cert;
}

/* The previously generated pair, if it is still usable. */
static int load_generated(const char *cert_path, const char *key_path, X509 **cert, EVP_PKEY **key)
{
    time_t renew_by = time(NULL) + (time_t)SELF_SIGNED_RENEW_DAYS * 86400;

    *cert = read_cert_file(cert_path);
    *key = read_key_file(key_path);
    if (*cert && *key && X509_check_private_key(*cert, *key) == 1 &&
        X509_cmp_time(X509_get0_notAfter(*cert), &renew_by) > 0)
        return 0;
    X509_free(*cert);
    EVP_PKEY_free(*key);
    *cert = NULL;
    *key = NULL;
    ERR_clear_error();
    return -1;
}

static int make_dir(const char *path, vn_buf *err)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    vn_buf_printf(err, "cannot create directory %s: %s", path, strerror(errno));
    return -1;
}

static void log_generated(const char *host, const char *cert_path, X509 *cert)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char hex[EVP_MAX_MD_SIZE * 3 + 1] = "";

    X509_digest(cert, EVP_sha256(), md, &md_len);
    for (unsigned int i = 0; i < md_len; i++)
        snprintf(hex + i * 3, 4, i + 1 < md_len ? "%02X:" : "%02X", md[i]);
    vn_log_info("generated a self-signed certificate for %s in %s (SHA-256 fingerprint %s): "
                "clients will warn about it; configure tls.certificate for production",
                host, cert_path, hex);
}

/* The self-signed certificate of host under <data_dir>/certs/, generated
 * on first use and reused while it is valid for another month. */
static int use_generated_cert(SSL_CTX *ctx, const vn_config *cfg, const char *host, vn_buf *err)
{
    char *dir, *cert_path, *key_path;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = -1;

    if (!cfg->data_dir) {
        vn_buf_printf(err, "host %s: no certificate configured and no data_dir to generate one in",
                      host);
        return -1;
    }
    dir = vn_asprintf("%s/certs", cfg->data_dir);
    cert_path = vn_asprintf("%s/%s.crt", dir, host);
    key_path = vn_asprintf("%s/%s.key", dir, host);

    if (load_generated(cert_path, key_path, &cert, &key) != 0) {
        if (make_dir(cfg->data_dir, err) != 0 || make_dir(dir, err) != 0)
            goto out;
        key = EVP_EC_gen("P-256");
        cert = key ? make_self_signed(host, key) : NULL;
        if (!cert) {
            vn_buf_printf(err, "host %s: cannot generate a self-signed certificate: ", host);
            append_openssl_error(err);
            goto out;
        }
        /* The key goes first: a certificate on disk implies its key is. */
        if (write_pem(key_path, 0600, key, NULL, err) != 0 ||
            write_pem(cert_path, 0644, NULL, cert, err) != 0)
            goto out;
        log_generated(host, cert_path, cert);
    }
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        vn_buf_printf(err, "host %s: cannot use %s: ", host, cert_path);
        append_openssl_error(err);
        goto out;
    }
    rc = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    free(key_path);
    free(cert_path);
    free(dir);
    return rc;
}

static void free_set(tls_set *set)
{
    for (size_t i = 0; i < set->n_hosts; i++) {
        SSL_CTX_free(set->hosts[i].ctx);
        free(set->hosts[i].name);
        free(set->hosts[i].ascii_name);
    }
    free(set->hosts);
    set->hosts = NULL;
    set->n_hosts = 0;
    X509_STORE_free(set->trust);
    set->trust = NULL;
}

static int build_host(tls_host *h, const vn_config *cfg, const vn_host_conf *hc, vn_buf *err)
{
    char *ascii = NULL;
    int rc = idn2_to_ascii_8z(hc->name, &ascii, IDN2_NONTRANSITIONAL);

    if (rc != IDN2_OK) {
        vn_buf_printf(err, "host %s: not usable as a certificate name: %s", hc->name,
                      idn2_strerror(rc));
        return -1;
    }
    h->name = vn_strdup(hc->name);
    h->ascii_name = vn_strdup(ascii);
    idn2_free(ascii);

    h->ctx = new_server_ctx(cfg, err);
    if (!h->ctx)
        return -1;
    if (hc->cert_file)
        return use_cert_files(h->ctx, h->ascii_name, hc->cert_file, hc->key_file, err);
    if (cfg->tls_cert)
        return use_cert_files(h->ctx, h->ascii_name, cfg->tls_cert, cfg->tls_key, err);
    return use_generated_cert(h->ctx, cfg, h->ascii_name, err);
}

static X509_STORE *build_trust(const vn_config *cfg, vn_buf *err)
{
    X509_STORE *store = X509_STORE_new();

    if (!store || !X509_STORE_set_default_paths(store)) {
        vn_buf_append_str(err, "cannot load the system's CA certificates: ");
        append_openssl_error(err);
        X509_STORE_free(store);
        return NULL;
    }
    if (cfg->s2s_ca_file && !X509_STORE_load_file(store, cfg->s2s_ca_file)) {
        vn_buf_printf(err, "s2s.ca_file %s: ", cfg->s2s_ca_file);
        append_openssl_error(err);
        X509_STORE_free(store);
        return NULL;
    }
    ERR_clear_error(); /* missing system paths are not an error */
    return store;
}

static int build_set(tls_set *set, const vn_config *cfg, vn_buf *err)
{
    set->n_hosts = 0;
    set->hosts = NULL;
    set->trust = build_trust(cfg, err);
    if (!set->trust)
        return -1;
    if (cfg->n_hosts == 0) {
        vn_buf_append_str(err, "no hosts configured");
        return -1;
    }
    set->hosts = vn_alloc(cfg->n_hosts * sizeof *set->hosts);
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        set->n_hosts++;
        if (build_host(&set->hosts[i], cfg, &cfg->hosts[i], err) != 0) {
            free_set(set);
            return -1;
        }
    }
    return 0;
}

int vn_tls_init(const vn_config *cfg, vn_buf *err)
{
    tls_set set;

    if (build_set(&set, cfg, err) != 0)
        return -1;
    if (vn_tls_gost_configure(cfg, err) != 0) {
        free_set(&set);
        return -1;
    }
    free_set(&active);
    active = set;
    return 0;
}

int vn_tls_reload(const vn_config *cfg, vn_buf *err)
{
    return vn_tls_init(cfg, err);
}

void vn_tls_shutdown(void)
{
    vn_tls_gost_shutdown();
    free_set(&active);
}

SSL_CTX *vn_tls_ctx_for_host(const char *host)
{
    const tls_host *h = host ? find_host(&active, host) : NULL;

    if (h)
        return h->ctx;
    return active.n_hosts ? active.hosts[0].ctx : NULL;
}

/* RFC 5929 section 4.1: the certificate's signature hash (for RSA-PSS the
 * one in its parameters), with MD5 and SHA-1, and signatures without a
 * separate hash such as Ed25519, upgraded to SHA-256. */
static const EVP_MD *end_point_digest(X509 *cert)
{
    int md_nid = NID_undef;
    const EVP_MD *md = NULL;

    if (X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) && md_nid != NID_md5 &&
        md_nid != NID_sha1 && md_nid != NID_undef)
        md = EVP_get_digestbynid(md_nid);
    if (!md || EVP_MD_get_size(md) < 32)
        md = EVP_sha256();
    return md;
}

int vn_tls_channel_binding(SSL *ssl, const char *type, unsigned char *out, size_t *len)
{
    static const char exporter_label[] = "EXPORTER-Channel-Binding";

    if (!SSL_is_init_finished(ssl))
        return -1;
    if (strcmp(type, "tls-exporter") == 0) {
        if (*len < 32 || (SSL_version(ssl) < TLS1_3_VERSION && SSL_get_extms_support(ssl) != 1))
            return -1;
        if (SSL_export_keying_material(ssl, out, 32, exporter_label, sizeof exporter_label - 1,
                                       NULL, 0, 0) != 1) {
            ERR_clear_error();
            return -1;
        }
        *len = 32;
        return 0;
    }
    if (strcmp(type, "tls-server-end-point") == 0) {
        X509 *cert = SSL_get_certificate(ssl);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len;

        if (!cert || !X509_digest(cert, end_point_digest(cert), md, &md_len) || md_len > *len) {
            ERR_clear_error();
            return -1;
        }
        memcpy(out, md, md_len);
        *len = md_len;
        return 0;
    }
    return -1;
}

char *vn_tls_ascii_name(const char *domain)
{
    char *ascii = NULL;

    if (idn2_to_ascii_8z(domain, &ascii, IDN2_NONTRANSITIONAL) != IDN2_OK)
        return NULL;
    char *copy = vn_strdup(ascii);
    idn2_free(ascii);
    return copy;
}

/* The handshake goes on whatever the client presents: the stream layer
 * decides what an invalid certificate means (dialback instead). */
static int accept_any_certificate(int preverify_ok, X509_STORE_CTX *ctx)
{
    return 1;
}

void vn_tls_request_peer_certificate(SSL *ssl)
{
    SSL_set_verify(ssl, SSL_VERIFY_PEER, accept_any_certificate);
}

/* Whether the certificate's subjectAltName has an otherName of type oid
 * whose string (of ASN.1 type string_type) is name, ignoring case. */
static bool names_other_name(X509 *cert, const char *oid, int string_type, const char *name)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    ASN1_OBJECT *type = OBJ_txt2obj(oid, 1);
    size_t len = strlen(name);
    bool found = false;

    for (int i = 0; names && type && i < sk_GENERAL_NAME_num(names) && !found; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != GEN_OTHERNAME || OBJ_cmp(gn->d.otherName->type_id, type) != 0 ||
            gn->d.otherName->value->type != string_type)
            continue;
        const ASN1_STRING *text = gn->d.otherName->value->value.asn1_string;
        found =
            (size_t)text->length == len && strncasecmp((const char *)text->data, name, len) == 0;
    }
    ASN1_OBJECT_free(type);
    GENERAL_NAMES_free(names);
    return found;
}

/* The identities RFC 6120 §13.7.1.2 accepts for a server's domain: a
 * DNS-ID, an SRV-ID (RFC 4985 SRVName "_xmpp-server.<domain>", as RFC 6125
 * §6.5 and RFC 7673 use it) or an id-on-xmppAddr (§13.7.1.4). */
static bool names_server(X509 *cert, const char *domain)
{
    char *ascii = vn_tls_ascii_name(domain);
    char *srv_id = ascii ? vn_asprintf("_xmpp-server.%s", ascii) : NULL;
    bool named =
        (ascii && X509_check_host(cert, ascii, 0, 0, NULL) == 1) ||
        (srv_id && names_other_name(cert, "1.3.6.1.5.5.7.8.7", V_ASN1_IA5STRING, srv_id)) ||
        names_other_name(cert, "1.3.6.1.5.5.7.8.5", V_ASN1_UTF8STRING, domain);

    free(srv_id);
    free(ascii);
    ERR_clear_error();
    return named;
}

bool vn_tls_peer_valid_for(SSL *ssl, const char *domain, const char **why)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    X509_STORE_CTX *verify;
    bool named;
    int ok;

    if (!cert) {
        *why = "no certificate";
        return false;
    }
    verify = X509_STORE_CTX_new();
    ok = verify && active.trust && X509_STORE_CTX_init(verify, active.trust, cert, chain) == 1 &&
         X509_verify_cert(verify) == 1;
    if (!ok)
        *why = verify ? X509_verify_cert_error_string(X509_STORE_CTX_get_error(verify))
                      : "cannot verify";
    X509_STORE_CTX_free(verify);
    ERR_clear_error();
    if (!ok)
        return false;
    named = names_server(cert, domain);
    if (!named)
        *why = "the certificate does not name the domain";
    return named;
}
