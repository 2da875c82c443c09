/*
 * jws.c - base64url and the JWS compact serialization for ES256 and EdDSA.
 *
 * ES256 signatures are the raw 64-byte r||s of RFC 7518 §3.4, converted
 * from and to OpenSSL's DER ECDSA-Sig-Value here. JSON is parsed with
 * duplicate member names refused, so that what a verifier checks is what
 * any other JSON parser would read.
 */
#include "jws.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <vestnik/util.h>

#include "cred_error.h"
#include "cred_internal.h"

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *vn_b64url_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = vn_alloc(len / 3 * 4 + 5);
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int vn_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len % 4 == 1)
        return VN_CRED_EMALFORMED;
    unsigned char *buf = vn_alloc(len / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(s[i]);
        if (v < 0) {
            free(buf);
            return VN_CRED_EMALFORMED;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The bits left over must be zero: one encoding per byte string. */
    if (acc != 0) {
        free(buf);
        return VN_CRED_EMALFORMED;
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}

char *vn_b64url_sha256(const void *data, size_t len)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    return vn_b64url_encode(md, sizeof(md));
}

/* ---- signatures ---- */

/* ES256: DER ECDSA-Sig-Value to raw r||s and back. */
static int es256_der_to_raw(const unsigned char *der, size_t len, unsigned char raw[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!sig)
        return VN_CRED_ECRYPTO;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : VN_CRED_ECRYPTO;
}

static int es256_raw_to_der(const unsigned char *raw, unsigned char **der, size_t *der_len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return VN_CRED_ECRYPTO;
    }
    unsigned char *out = NULL;
    int n = i2d_ECDSA_SIG(sig, &out);
    ECDSA_SIG_free(sig);
    if (n <= 0)
        return VN_CRED_ECRYPTO;
    *der = out;
    *der_len = (size_t)n;
    return 0;
}

/* The raw JWS signature of input (64 bytes for both algorithms). */
static int sign_input(const vn_cred_key *key, const char *input, size_t len, unsigned char sig[64])
{
    EVP_PKEY *pkey = vn_cred_key_pkey(key);
    bool es = vn_cred_key_alg(key) == VN_CRED_ALG_ES256;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t der_len = es ? sizeof(der) : 64;
    int rc = VN_CRED_ECRYPTO;
    if (ctx && EVP_DigestSignInit(ctx, NULL, es ? EVP_sha256() : NULL, NULL, pkey) == 1 &&
        EVP_DigestSign(ctx, es ? der : sig, &der_len, (const unsigned char *)input, len) == 1)
        rc = es ? es256_der_to_raw(der, der_len, sig) : (der_len == 64 ? 0 : VN_CRED_ECRYPTO);
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int verify_input(const vn_cred_key *key, const char *input, size_t len,
                        const unsigned char *sig, size_t sig_len)
{
    if (sig_len != 64)
        return VN_CRED_ESIGNATURE;
    EVP_PKEY *pkey = vn_cred_key_pkey(key);
    bool es = vn_cred_key_alg(key) == VN_CRED_ALG_ES256;
    unsigned char *der = NULL;
    size_t der_len = 64;
    if (es && es256_raw_to_der(sig, &der, &der_len) != 0)
        return VN_CRED_ESIGNATURE;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, es ? EVP_sha256() : NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, es ? der : sig, der_len, (const unsigned char *)input, len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok ? 0 : VN_CRED_ESIGNATURE;
}

static char *header_b64(const vn_cred_key *key, const json_t *header, const char *kid)
{
    json_t *h = header ? json_deep_copy(header) : json_object();
    json_object_set_new(h, "alg", json_string(vn_cred_alg_name(vn_cred_key_alg(key))));
    if (kid)
        json_object_set_new(h, "kid", json_string(kid));
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    char *b64 = vn_b64url_encode(text, strlen(text));
    free(text);
    return b64;
}

static int sign_common(const vn_cred_key *key, const json_t *header, const char *kid,
                       const void *payload, size_t payload_len, bool detached, char **out)
{
    *out = NULL;
    if (!key || !vn_cred_key_has_private(key) || (header && !json_is_object(header)))
        return VN_CRED_EINVAL;
    char *h = header_b64(key, header, kid);
    char *p = vn_b64url_encode(payload, payload_len);
    vn_buf b;
    vn_buf_init(&b);
    vn_buf_printf(&b, "%s.%s", h, p);
    unsigned char sig[64];
    int rc = sign_input(key, b.data, b.len, sig);
    if (rc == 0) {
        char *s = vn_b64url_encode(sig, sizeof(sig));
        if (detached) {
            vn_buf_reset(&b);
            vn_buf_printf(&b, "%s.", h);
        }
        vn_buf_printf(&b, ".%s", s);
        free(s);
        *out = vn_buf_steal(&b, NULL);
    }
    vn_buf_free(&b);
    free(h);
    free(p);
    return rc;
}

int vn_jws_sign(const vn_cred_key *key, const json_t *header, const char *kid, const void *payload,
                size_t payload_len, char **out)
{
    return sign_common(key, header, kid, payload, payload_len, false, out);
}

int vn_jws_sign_json(const vn_cred_key *key, const json_t *header, const char *kid,
                     const json_t *payload, char **out)
{
    *out = NULL;
    if (!json_is_object(payload))
        return VN_CRED_EINVAL;
    char *text = json_dumps(payload, JSON_COMPACT);
    int rc = sign_common(key, header, kid, text, strlen(text), false, out);
    free(text);
    return rc;
}

int vn_jws_sign_detached(const vn_cred_key *key, const json_t *header, const char *kid,
                         const void *payload, size_t payload_len, char **out)
{
    return sign_common(key, header, kid, payload, payload_len, true, out);
}

/* ---- decoding ---- */

typedef struct jws_parts {
    const char *h, *p, *s; /* starts */
    size_t h_len, p_len, s_len;
} jws_parts;

static int split(const char *jws, size_t len, jws_parts *parts)
{
    if (len > VN_JWS_MAX_LEN)
        return VN_CRED_ETOOLARGE;
    const char *d1 = memchr(jws, '.', len);
    if (!d1)
        return VN_CRED_EMALFORMED;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jws));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jws)))
        return VN_CRED_EMALFORMED;
    parts->h = jws;
    parts->h_len = (size_t)(d1 - jws);
    parts->p = d1 + 1;
    parts->p_len = (size_t)(d2 - d1 - 1);
    parts->s = d2 + 1;
    parts->s_len = len - (size_t)(d2 + 1 - jws);
    return parts->h_len && parts->s_len ? 0 : VN_CRED_EMALFORMED;
}

json_t *vn_cred_json_parse(const void *data, size_t len)
{
    json_error_t e;
    return json_loadb(data, len, JSON_REJECT_DUPLICATES, &e);
}

static int decode_object(const char *b64, size_t len, json_t **out)
{
    unsigned char *raw;
    size_t raw_len;
    if (vn_b64url_decode(b64, len, &raw, &raw_len) != 0)
        return VN_CRED_EMALFORMED;
    json_t *j = vn_cred_json_parse(raw, raw_len);
    free(raw);
    if (!json_is_object(j)) {
        json_decref(j);
        return VN_CRED_EMALFORMED;
    }
    *out = j;
    return 0;
}

/* Header checks shared by attached and detached verification. */
static int check_header(const json_t *h, const vn_cred_key *key)
{
    const char *alg = json_string_value(json_object_get(h, "alg"));
    if (!alg || strcmp(alg, vn_cred_alg_name(vn_cred_key_alg(key))) != 0)
        return VN_CRED_EALG;
    /* No extension is understood, so any "crit" is refused. */
    if (json_object_get(h, "crit"))
        return VN_CRED_EMALFORMED;
    return 0;
}

int vn_jws_decode(const char *jws, size_t len, json_t **header, json_t **payload)
{
    jws_parts parts;
    json_t *h = NULL, *p = NULL;
    int rc = split(jws, len, &parts);
    if (rc == 0)
        rc = decode_object(parts.h, parts.h_len, &h);
    if (rc == 0)
        rc = decode_object(parts.p, parts.p_len, &p);
    if (rc != 0 || !header)
        json_decref(h);
    else
        *header = h;
    if (rc != 0 || !payload)
        json_decref(p);
    else
        *payload = p;
    return rc;
}

static int verify_parts(const jws_parts *parts, const char *input, size_t input_len,
                        const vn_cred_key *key, json_t **header)
{
    json_t *h = NULL;
    int rc = decode_object(parts->h, parts->h_len, &h);
    if (rc == 0)
        rc = check_header(h, key);
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (rc == 0 && vn_b64url_decode(parts->s, parts->s_len, &sig, &sig_len) != 0)
        rc = VN_CRED_EMALFORMED;
    if (rc == 0)
        rc = verify_input(key, input, input_len, sig, sig_len);
    free(sig);
    if (rc == 0 && header)
        *header = h;
    else
        json_decref(h);
    return rc;
}

int vn_jws_verify(const char *jws, size_t len, const vn_cred_key *key, json_t **header,
                  json_t **payload)
{
    if (!key)
        return VN_CRED_EINVAL;
    jws_parts parts;
    int rc = split(jws, len, &parts);
    if (rc != 0)
        return rc;
    json_t *p = NULL;
    rc = decode_object(parts.p, parts.p_len, &p);
    if (rc == 0)
        rc = verify_parts(&parts, jws, (size_t)(parts.s - 1 - jws), key, header);
    if (rc == 0 && payload)
        *payload = p;
    else
        json_decref(p);
    return rc;
}

int vn_jws_verify_detached(const char *jws, size_t len, const vn_cred_key *key, const void *payload,
                           size_t payload_len, json_t **header)
{
    if (!key)
        return VN_CRED_EINVAL;
    jws_parts parts;
    int rc = split(jws, len, &parts);
    if (rc != 0)
        return rc;
    if (parts.p_len != 0)
        return VN_CRED_EMALFORMED;
    char *p = vn_b64url_encode(payload, payload_len);
    vn_buf input;
    vn_buf_init(&input);
    vn_buf_append(&input, parts.h, parts.h_len);
    vn_buf_printf(&input, ".%s", p);
    free(p);
    rc = verify_parts(&parts, input.data, input.len, key, header);
    vn_buf_free(&input);
    return rc;
}
