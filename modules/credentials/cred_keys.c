/*
 * cred_keys.c - ES256 and EdDSA keys: generation, PEM, JWK, RFC 7638
 * thumbprints, and AES-256-GCM wrapping for storage (cred_keys.h).
 *
 * A vn_cred_key is an EVP_PKEY plus the algorithm it is for, decided once
 * when the key enters (only P-256 EC keys and Ed25519 keys are accepted),
 * so that no later caller has to ask OpenSSL what a key is.
 */
#include "cred_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vestnik/util.h>

#include "cred_error.h"
#include "cred_internal.h"
#include "jws.h"

struct vn_cred_key {
    EVP_PKEY *pkey;
    vn_cred_alg alg;
    bool has_private;
};

#define KEY_FILE_MAX (64 * 1024)
#define WRAP_PREFIX "v1."
#define WRAP_INFO "vestnik credentials key wrap v1"
#define WRAP_NONCE 12
#define WRAP_TAG 16

void vn_cred_random(void *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1) {
        fprintf(stderr, "credentials: no random bytes from OpenSSL\n");
        abort();
    }
}

char *vn_cred_random_b64url(size_t n)
{
    unsigned char buf[64];
    if (n > sizeof(buf))
        n = sizeof(buf);
    vn_cred_random(buf, n);
    return vn_b64url_encode(buf, n);
}

const char *vn_cred_alg_name(vn_cred_alg alg)
{
    return alg == VN_CRED_ALG_EDDSA ? "EdDSA" : "ES256";
}

int vn_cred_alg_parse(const char *name, vn_cred_alg *alg)
{
    if (name && strcmp(name, "ES256") == 0)
        *alg = VN_CRED_ALG_ES256;
    else if (name && strcmp(name, "EdDSA") == 0)
        *alg = VN_CRED_ALG_EDDSA;
    else
        return VN_CRED_EALG;
    return 0;
}

EVP_PKEY *vn_cred_key_pkey(const vn_cred_key *key)
{
    return key->pkey;
}

/* Take pkey (consumed) if it is a key of ours. */
static int wrap_pkey(EVP_PKEY *pkey, bool has_private, vn_cred_key **out)
{
    vn_cred_alg alg;
    char group[32] = "";
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        alg = VN_CRED_ALG_EDDSA;
    } else if (EVP_PKEY_is_a(pkey, "EC") &&
               EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                              sizeof(group), NULL) == 1 &&
               (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
        alg = VN_CRED_ALG_ES256;
    } else {
        EVP_PKEY_free(pkey);
        return VN_CRED_EKEY;
    }
    vn_cred_key *k = vn_alloc(sizeof(*k));
    k->pkey = pkey;
    k->alg = alg;
    k->has_private = has_private;
    *out = k;
    return 0;
}

int vn_cred_key_generate(vn_cred_alg alg, vn_cred_key **out)
{
    *out = NULL;
    EVP_PKEY *pkey;
    if (alg == VN_CRED_ALG_ES256)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (alg == VN_CRED_ALG_EDDSA)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else
        return VN_CRED_EINVAL;
    if (!pkey)
        return VN_CRED_ECRYPTO;
    return wrap_pkey(pkey, true, out);
}

/* A PEM passphrase is never asked for: without this OpenSSL would read one
 * from the terminal, blocking the server. Encrypted keys are refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int vn_cred_key_from_pem(const char *pem, size_t len, vn_cred_key **out)
{
    *out = NULL;
    if (!pem || len > KEY_FILE_MAX)
        return VN_CRED_EKEY;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return VN_CRED_ECRYPTO;
    bool priv = true;
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (!pkey) {
        priv = false;
        BIO_free(bio);
        bio = BIO_new_mem_buf(pem, (int)len);
        pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL) : NULL;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (!pkey)
        return VN_CRED_EKEY;
    return wrap_pkey(pkey, priv, out);
}

int vn_cred_key_load_file(const char *path, vn_cred_key **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return VN_CRED_EIO;
    char *buf = vn_alloc(KEY_FILE_MAX + 1);
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    bool err = ferror(f);
    fclose(f);
    int rc = err                ? VN_CRED_EIO
             : n > KEY_FILE_MAX ? VN_CRED_ETOOLARGE
                                : vn_cred_key_from_pem(buf, n, out);
    OPENSSL_cleanse(buf, KEY_FILE_MAX + 1);
    free(buf);
    return rc;
}

char *vn_cred_key_to_pem(const vn_cred_key *key, bool with_private)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return NULL;
    int ok = with_private && key->has_private
                 ? PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_bio_PUBKEY(bio, key->pkey);
    char *out = NULL;
    if (ok == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        out = vn_strndup(data, (size_t)n);
    }
    BIO_free_all(bio); /* a mem BIO frees (not cleanses) its buffer */
    return out;
}

int vn_cred_key_save_file(const vn_cred_key *key, const char *path)
{
    if (!key || !key->has_private || !path)
        return VN_CRED_EINVAL;
    char *pem = vn_cred_key_to_pem(key, true);
    if (!pem)
        return VN_CRED_ECRYPTO;
    char *tmp = vn_asprintf("%s.tmp", path);
    int rc = VN_CRED_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        size_t len = strlen(pem), off = 0;
        while (off < len) {
            ssize_t w = write(fd, pem + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (off == len && fsync(fd) == 0)
            rc = 0;
        if (close(fd) != 0)
            rc = VN_CRED_EIO;
        if (rc == 0 && rename(tmp, path) != 0)
            rc = VN_CRED_EIO;
        if (rc != 0)
            unlink(tmp);
    }
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    free(tmp);
    return rc;
}

/* ---- JWK ---- */

static int jwk_coord(const json_t *jwk, const char *name, unsigned char out[32])
{
    const char *s = json_string_value(json_object_get(jwk, name));
    unsigned char *raw;
    size_t len;
    if (!s || vn_b64url_decode(s, strlen(s), &raw, &len) != 0)
        return VN_CRED_EKEY;
    int rc = len == 32 ? 0 : VN_CRED_EKEY;
    if (rc == 0)
        memcpy(out, raw, 32);
    free(raw);
    return rc;
}

static EVP_PKEY *ec_from_point(const unsigned char point[65])
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, 65),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pkey = NULL;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    /* Off-curve points must not get as far as a signature check. */
    if (pkey) {
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!check || EVP_PKEY_public_check(check) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(check);
    }
    ERR_clear_error();
    return pkey;
}

int vn_cred_key_from_jwk(const json_t *jwk, vn_cred_key **out)
{
    *out = NULL;
    if (!json_is_object(jwk))
        return VN_CRED_EKEY;
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    const json_t *alg_j = json_object_get(jwk, "alg");
    const char *alg = json_string_value(alg_j);
    if (!kty || !crv || (alg_j && !alg))
        return VN_CRED_EKEY;
    unsigned char x[32], point[65];
    EVP_PKEY *pkey = NULL;
    if (strcmp(kty, "EC") == 0 && strcmp(crv, "P-256") == 0) {
        if ((alg && strcmp(alg, "ES256") != 0) || jwk_coord(jwk, "x", point + 1) != 0 ||
            jwk_coord(jwk, "y", point + 33) != 0)
            return VN_CRED_EKEY;
        point[0] = 0x04;
        pkey = ec_from_point(point);
    } else if (strcmp(kty, "OKP") == 0 && strcmp(crv, "Ed25519") == 0) {
        if ((alg && strcmp(alg, "EdDSA") != 0 && strcmp(alg, "Ed25519") != 0) ||
            jwk_coord(jwk, "x", x) != 0)
            return VN_CRED_EKEY;
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof(x));
    } else {
        return VN_CRED_EKEY;
    }
    if (!pkey)
        return VN_CRED_EKEY;
    return wrap_pkey(pkey, false, out);
}

/* The public coordinates, base64url: x (and y for EC). */
static int public_coords(const vn_cred_key *key, char **x, char **y)
{
    *x = *y = NULL;
    if (key->alg == VN_CRED_ALG_EDDSA) {
        unsigned char raw[32];
        size_t len = sizeof(raw);
        if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &len) != 1 || len != 32)
            return VN_CRED_ECRYPTO;
        *x = vn_b64url_encode(raw, len);
        return 0;
    }
    BIGNUM *bx = NULL, *by = NULL;
    unsigned char rx[32], ry[32];
    int rc = VN_CRED_ECRYPTO;
    if (EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
        EVP_PKEY_get_bn_param(key->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1 &&
        BN_bn2binpad(bx, rx, 32) == 32 && BN_bn2binpad(by, ry, 32) == 32) {
        *x = vn_b64url_encode(rx, 32);
        *y = vn_b64url_encode(ry, 32);
        rc = 0;
    }
    BN_free(bx);
    BN_free(by);
    return rc;
}

char *vn_cred_key_thumbprint(const vn_cred_key *key)
{
    char *x, *y;
    if (public_coords(key, &x, &y) != 0)
        return NULL;
    /* RFC 7638 §3.2: the required members only, in lexicographic order,
     * no whitespace. */
    char *canon =
        key->alg == VN_CRED_ALG_EDDSA
            ? vn_asprintf("{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x)
            : vn_asprintf("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    char *tp = vn_b64url_sha256(canon, strlen(canon));
    free(canon);
    free(x);
    free(y);
    return tp;
}

json_t *vn_cred_key_to_jwk(const vn_cred_key *key, bool with_meta)
{
    char *x, *y;
    if (public_coords(key, &x, &y) != 0)
        return NULL;
    json_t *jwk = json_object();
    bool ed = key->alg == VN_CRED_ALG_EDDSA;
    json_object_set_new(jwk, "kty", json_string(ed ? "OKP" : "EC"));
    json_object_set_new(jwk, "crv", json_string(ed ? "Ed25519" : "P-256"));
    json_object_set_new(jwk, "x", json_string(x));
    if (y)
        json_object_set_new(jwk, "y", json_string(y));
    free(x);
    free(y);
    if (with_meta) {
        char *kid = vn_cred_key_thumbprint(key);
        json_object_set_new(jwk, "kid", json_string(kid));
        free(kid);
        json_object_set_new(jwk, "alg", json_string(vn_cred_alg_name(key->alg)));
        json_object_set_new(jwk, "use", json_string("sig"));
    }
    return jwk;
}

vn_cred_alg vn_cred_key_alg(const vn_cred_key *key)
{
    return key->alg;
}

bool vn_cred_key_has_private(const vn_cred_key *key)
{
    return key->has_private;
}

bool vn_cred_key_equal(const vn_cred_key *a, const vn_cred_key *b)
{
    return a && b && a->alg == b->alg && EVP_PKEY_eq(a->pkey, b->pkey) == 1;
}

vn_cred_key *vn_cred_key_public(const vn_cred_key *key)
{
    json_t *jwk = vn_cred_key_to_jwk(key, false);
    vn_cred_key *pub = NULL;
    if (jwk)
        vn_cred_key_from_jwk(jwk, &pub);
    json_decref(jwk);
    return pub;
}

void vn_cred_key_free(vn_cred_key *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

/* ---- wrapping ---- */

static int derive_wrap_key(const unsigned char *secret, size_t secret_len, unsigned char out[32])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)WRAP_INFO,
                                          strlen(WRAP_INFO)),
        OSSL_PARAM_construct_end(),
    };
    int ok = ctx && EVP_KDF_derive(ctx, out, 32, params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : VN_CRED_ECRYPTO;
}

/* AES-256-GCM one way or the other; out has room for in_len bytes. */
static int gcm(bool enc, const unsigned char key[32], const unsigned char nonce[WRAP_NONCE],
               const char *owner, const unsigned char *in, size_t in_len, unsigned char *out,
               unsigned char tag[WRAP_TAG])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WRAP_TAG, tag) == 1;
    if (ok && owner && *owner)
        ok = EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)owner, (int)strlen(owner));
    if (ok)
        ok = EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) == 1;
    if (ok)
        ok = EVP_CipherFinal_ex(ctx, out + n, &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, WRAP_TAG, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : enc ? VN_CRED_ECRYPTO : VN_CRED_EUNWRAP;
}

int vn_cred_key_wrap(const vn_cred_key *key, const unsigned char *secret, size_t secret_len,
                     const char *owner, char **out)
{
    *out = NULL;
    if (!key || !key->has_private || !secret || secret_len < VN_CRED_SECRET_MIN)
        return VN_CRED_EINVAL;
    unsigned char wkey[32], nonce[WRAP_NONCE];
    int rc = derive_wrap_key(secret, secret_len, wkey);
    if (rc != 0)
        return rc;
    vn_cred_random(nonce, sizeof(nonce));
    char *pem = vn_cred_key_to_pem(key, true);
    size_t len = pem ? strlen(pem) : 0;
    unsigned char *ct = vn_alloc(len + WRAP_TAG);
    rc = pem ? gcm(true, wkey, nonce, owner, (unsigned char *)pem, len, ct, ct + len)
             : VN_CRED_ECRYPTO;
    if (rc == 0) {
        char *n64 = vn_b64url_encode(nonce, sizeof(nonce));
        char *c64 = vn_b64url_encode(ct, len + WRAP_TAG);
        *out = vn_asprintf(WRAP_PREFIX "%s.%s", n64, c64);
        free(n64);
        free(c64);
    }
    if (pem) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    free(ct);
    OPENSSL_cleanse(wkey, sizeof(wkey));
    return rc;
}

int vn_cred_key_unwrap(const char *wrapped, const unsigned char *secret, size_t secret_len,
                       const char *owner, vn_cred_key **out)
{
    *out = NULL;
    if (!secret || secret_len < VN_CRED_SECRET_MIN || !wrapped)
        return VN_CRED_EINVAL;
    size_t plen = strlen(WRAP_PREFIX);
    if (strncmp(wrapped, WRAP_PREFIX, plen) != 0)
        return VN_CRED_EMALFORMED;
    const char *n64 = wrapped + plen, *dot = strchr(n64, '.');
    if (!dot)
        return VN_CRED_EMALFORMED;
    unsigned char *nonce = NULL, *ct = NULL;
    size_t nonce_len, ct_len;
    int rc = VN_CRED_EMALFORMED;
    if (vn_b64url_decode(n64, (size_t)(dot - n64), &nonce, &nonce_len) == 0 &&
        nonce_len == WRAP_NONCE && vn_b64url_decode(dot + 1, strlen(dot + 1), &ct, &ct_len) == 0 &&
        ct_len > WRAP_TAG && ct_len <= KEY_FILE_MAX)
        rc = 0;
    unsigned char wkey[32];
    if (rc == 0)
        rc = derive_wrap_key(secret, secret_len, wkey);
    if (rc == 0) {
        size_t len = ct_len - WRAP_TAG;
        unsigned char *pem = vn_alloc(len + 1);
        rc = gcm(false, wkey, nonce, owner, ct, len, pem, ct + len);
        if (rc == 0 && vn_cred_key_from_pem((char *)pem, len, out) != 0)
            rc = VN_CRED_EUNWRAP;
        OPENSSL_cleanse(pem, len);
        free(pem);
        OPENSSL_cleanse(wkey, sizeof(wkey));
    }
    free(nonce);
    free(ct);
    return rc;
}
