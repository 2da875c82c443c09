/*
 * scram.c - SCRAM credentials and the server side of one exchange
 * (RFC 5802 with SHA-1, RFC 7677 with SHA-256), channel binding included.
 *
 * The exchange is two client messages:
 *   client-first  gs2-header n=user,r=cnonce[,ext]  ->  r=nonce,s=salt,i=n
 *   client-final  c=cbind,r=nonce[,ext],p=proof      ->  v=signature
 * An unknown user gets credentials derived from a per-process secret, so
 * the exchange looks the same as for a real one until the proof fails.
 * OpenSSL does all the cryptography and base64.
 */
#include "scram.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "vestnik/log.h"

#define SCRAM_SALT_LEN 16
#define SCRAM_NONCE_BYTES 18       /* 24 base64 characters */
#define SCRAM_FAKE_ITERATIONS 4096 /* an unknown user's, unless the caller says */
#define SCRAM_CB_MAX 128           /* channel binding data: a hash or exporter output */

static const char COND_MALFORMED[] = "malformed-request";
static const char COND_NOT_AUTHORIZED[] = "not-authorized";
static const char COND_TEMPORARY[] = "temporary-auth-failure";

typedef enum { AWAIT_CLIENT_FIRST, AWAIT_CLIENT_FINAL, FINISHED } scram_state;

struct vn_scram_server {
    vn_scram_server_params params;
    scram_state state;
    char *server_nonce;
    char *username;          /* unescaped */
    char *authzid;           /* unescaped, "" if none */
    vn_buf expected_cbind;   /* gs2 header + channel binding data: what c= must hold */
    char *client_first_bare; /* as received, for the AuthMessage */
    char *server_first;
    char *nonce; /* client nonce + server nonce */
    vn_scram_creds creds;
    bool user_known;
};

/* ---- base64 ---- */

void vn_scram_b64_encode(const void *data, size_t len, vn_buf *out)
{
    size_t text_len = 4 * ((len + 2) / 3);
    unsigned char *text = vn_alloc(text_len + 1);

    EVP_EncodeBlock(text, data, (int)len);
    vn_buf_append(out, text, text_len);
    free(text);
}

static bool is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* EVP_DecodeBlock skips surrounding whitespace and decodes padding as zero
 * bytes, so the text is checked first and the padding subtracted after. */
int vn_scram_b64_decode(const char *text, size_t len, vn_buf *out)
{
    size_t pad = 0;

    if (len % 4 != 0 || len > INT_MAX)
        return -1;
    if (len == 0)
        return 0;
    if (text[len - 1] == '=')
        pad = text[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++)
        if (!is_b64_char(text[i]))
            return -1;
    unsigned char *data = vn_alloc(len / 4 * 3);
    int decoded = EVP_DecodeBlock(data, (const unsigned char *)text, (int)len);
    if (decoded >= 0)
        vn_buf_append(out, data, (size_t)decoded - pad);
    free(data);
    return decoded >= 0 ? 0 : -1;
}

/* ---- credentials ---- */

static const EVP_MD *hash_md(vn_scram_hash hash)
{
    return hash == VN_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
}

static size_t hash_size(vn_scram_hash hash)
{
    return hash == VN_SCRAM_SHA1 ? 20 : 32;
}

static bool hmac(vn_scram_hash hash, const unsigned char *key, size_t key_len, const void *data,
                 size_t len, unsigned char *out)
{
    unsigned int out_len;
    return HMAC(hash_md(hash), key, (int)key_len, data, len, out, &out_len) != NULL;
}

int vn_scram_creds_derive(vn_scram_hash hash, const char *password, const unsigned char *salt,
                          size_t salt_len, unsigned iterations, vn_scram_creds *out)
{
    unsigned char salted[VN_SCRAM_MAX_KEY], client_key[VN_SCRAM_MAX_KEY];
    size_t key_len = hash_size(hash);
    size_t password_len = password ? strlen(password) : 0;

    memset(out, 0, sizeof *out);
    if (!password || password_len > INT_MAX || salt_len == 0 || salt_len > sizeof out->salt ||
        iterations == 0 || iterations > INT_MAX)
        return -1;
    out->hash = hash;
    out->iterations = iterations;
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    out->key_len = key_len;
    bool ok = PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, (int)iterations,
                                hash_md(hash), (int)key_len, salted) == 1 &&
              hmac(hash, salted, key_len, "Client Key", 10, client_key) &&
              EVP_Digest(client_key, key_len, out->stored_key, NULL, hash_md(hash), NULL) == 1 &&
              hmac(hash, salted, key_len, "Server Key", 10, out->server_key);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    if (!ok)
        memset(out, 0, sizeof *out);
    return ok ? 0 : -1;
}

int vn_scram_creds_make(vn_scram_hash hash, const char *password, unsigned iterations,
                        vn_scram_creds *out)
{
    unsigned char salt[SCRAM_SALT_LEN];

    if (RAND_bytes(salt, sizeof salt) != 1) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return vn_scram_creds_derive(hash, password, salt, sizeof salt, iterations, out);
}

bool vn_scram_creds_check(const vn_scram_creds *creds, const char *password)
{
    vn_scram_creds derived;

    if (vn_scram_creds_derive(creds->hash, password, creds->salt, creds->salt_len,
                              creds->iterations, &derived) != 0 ||
        derived.key_len != creds->key_len)
        return false;
    /* Both compared in full, whatever the first says. */
    int stored_diff = CRYPTO_memcmp(derived.stored_key, creds->stored_key, creds->key_len);
    int server_diff = CRYPTO_memcmp(derived.server_key, creds->server_key, creds->key_len);
    return stored_diff == 0 && server_diff == 0;
}

static bool creds_usable(const vn_scram_creds *creds, vn_scram_hash hash)
{
    return creds->hash == hash && creds->key_len == hash_size(hash) && creds->salt_len > 0 &&
           creds->salt_len <= sizeof creds->salt && creds->iterations > 0;
}

/* ---- credentials for unknown users ---- */

static unsigned char fake_secret[32];
static pthread_once_t fake_secret_once = PTHREAD_ONCE_INIT;

static void fake_secret_init(void)
{
    if (RAND_bytes(fake_secret, sizeof fake_secret) != 1)
        vn_log_warn("scram: no random secret for unknown users; their salts are predictable");
}

/* The same salt for the same unknown name for the life of the process;
 * the keys stay zero and never match a proof. */
static void fake_creds(vn_scram_hash hash, const char *username, unsigned iterations,
                       vn_scram_creds *out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];

    pthread_once(&fake_secret_once, fake_secret_init);
    memset(out, 0, sizeof *out);
    out->hash = hash;
    out->iterations = iterations ? iterations : SCRAM_FAKE_ITERATIONS;
    out->key_len = hash_size(hash);
    out->salt_len = SCRAM_SALT_LEN;
    if (!hmac(VN_SCRAM_SHA256, fake_secret, sizeof fake_secret, username, strlen(username), digest))
        memset(digest, 0, sizeof digest);
    memcpy(out->salt, digest, SCRAM_SALT_LEN);
}

/* ---- the exchange ---- */

vn_scram_server *vn_scram_server_new(const vn_scram_server_params *params)
{
    unsigned char random[SCRAM_NONCE_BYTES];
    vn_buf nonce;

    vn_buf_init(&nonce);
    if (params->nonce_override) {
        vn_buf_append_str(&nonce, params->nonce_override);
    } else {
        if (RAND_bytes(random, sizeof random) != 1)
            return NULL;
        vn_scram_b64_encode(random, sizeof random, &nonce);
    }
    vn_scram_server *s = vn_alloc(sizeof *s);
    s->params = *params;
    s->params.nonce_override = NULL;
    s->state = AWAIT_CLIENT_FIRST;
    s->server_nonce = vn_buf_steal(&nonce, NULL);
    vn_buf_init(&s->expected_cbind);
    return s;
}

void vn_scram_server_free(vn_scram_server *s)
{
    if (!s)
        return;
    free(s->server_nonce);
    free(s->username);
    free(s->authzid);
    vn_buf_free(&s->expected_cbind);
    free(s->client_first_bare);
    free(s->server_first);
    free(s->nonce);
    OPENSSL_cleanse(&s->creds, sizeof s->creds);
    free(s);
}

const char *vn_scram_server_username(const vn_scram_server *s)
{
    return s->username;
}

const char *vn_scram_server_authzid(const vn_scram_server *s)
{
    return s->authzid ? s->authzid : "";
}

/* Ends the exchange: the SASL condition, and the RFC 5802 server-error
 * value as a server-final "e=" message in out. */
static vn_scram_status fail(vn_scram_server *s, vn_buf *out, const char **condition,
                            const char *sasl_condition, const char *server_error)
{
    s->state = FINISHED;
    *condition = sasl_condition;
    vn_buf_reset(out);
    vn_buf_printf(out, "e=%s", server_error);
    return VN_SCRAM_FAILURE;
}

/* Length of the attribute value at p: up to the next ',' or the end. */
static size_t value_len(const char *p)
{
    return strcspn(p, ",");
}

/* saslname: "=2C" is ',', "=3D" is '='; any other '=' is malformed, and
 * the result must be non-empty UTF-8. NULL if invalid. */
static char *saslname_unescape(const char *p, size_t len)
{
    char *name = vn_alloc(len + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (p[i] != '=') {
            name[n++] = p[i];
        } else if (i + 3 <= len && strncmp(p + i, "=2C", 3) == 0) {
            name[n++] = ',';
            i += 2;
        } else if (i + 3 <= len && strncmp(p + i, "=3D", 3) == 0) {
            name[n++] = '=';
            i += 2;
        } else {
            free(name);
            return NULL;
        }
    }
    if (n == 0 || u8_check((const uint8_t *)name, n)) {
        free(name);
        return NULL;
    }
    return name;
}

static bool is_cb_name(const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
            c != '.' && c != '-')
            return false;
    }
    return true;
}

/* Optional extensions after the nonce: ",x=value" each, ignored. */
static bool extensions_ok(const char *p)
{
    while (*p) {
        if (p[0] != ',' || !((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z')) ||
            p[2] != '=')
            return false;
        p += 1 + value_len(p + 1);
    }
    return true;
}

static vn_scram_status client_first(vn_scram_server *s, const char *msg, vn_buf *out,
                                    const char **condition)
{
    const char *p = msg;
    char flag = *p;
    char *cb_type = NULL;

    /* gs2-header = ("p=" cb-name / "n" / "y") "," [ "a=" saslname ] "," */
    if (flag == 'n' || flag == 'y') {
        p++;
    } else if (strncmp(p, "p=", 2) == 0 && is_cb_name(p + 2, value_len(p + 2))) {
        cb_type = vn_strndup(p + 2, value_len(p + 2));
        p += 2 + value_len(p + 2);
    } else {
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    }
    if (*p++ != ',') {
        free(cb_type);
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    }
    if (strncmp(p, "a=", 2) == 0) {
        s->authzid = saslname_unescape(p + 2, value_len(p + 2));
        if (!s->authzid) {
            free(cb_type);
            return fail(s, out, condition, COND_MALFORMED, "invalid-encoding");
        }
        p += 2 + value_len(p + 2);
    }
    if (*p++ != ',') {
        free(cb_type);
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    }
    vn_buf_append(&s->expected_cbind, msg, (size_t)(p - msg));

    /* Channel binding: 'p' goes with -PLUS and only with it; 'y' while we
     * offer -PLUS means someone removed it from the client's view. */
    if (s->params.plus != (cb_type != NULL)) {
        free(cb_type);
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    }
    if (cb_type) {
        unsigned char cb[SCRAM_CB_MAX];
        size_t cb_len = sizeof cb;
        bool have = s->params.cb_data && s->params.cb_data(s->params.ud, cb_type, cb, &cb_len) == 0;
        free(cb_type);
        if (!have)
            return fail(s, out, condition, COND_NOT_AUTHORIZED, "unsupported-channel-binding-type");
        vn_buf_append(&s->expected_cbind, cb, cb_len);
    } else if (flag == 'y' && s->params.server_has_plus) {
        return fail(s, out, condition, COND_NOT_AUTHORIZED, "server-does-support-channel-binding");
    }

    /* client-first-message-bare = [m=..,] n=saslname,r=nonce[,extensions] */
    const char *bare = p;
    if (strncmp(p, "m=", 2) == 0)
        return fail(s, out, condition, COND_MALFORMED, "extensions-not-supported");
    if (strncmp(p, "n=", 2) != 0)
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    s->username = saslname_unescape(p + 2, value_len(p + 2));
    if (!s->username)
        return fail(s, out, condition, COND_MALFORMED, "invalid-encoding");
    p += 2 + value_len(p + 2);
    if (strncmp(p, ",r=", 3) != 0 || value_len(p + 3) == 0)
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    const char *client_nonce = p + 3;
    size_t client_nonce_len = value_len(client_nonce);
    for (size_t i = 0; i < client_nonce_len; i++)
        if (client_nonce[i] < 0x21 || client_nonce[i] > 0x7E)
            return fail(s, out, condition, COND_MALFORMED, "other-error");
    if (!extensions_ok(client_nonce + client_nonce_len))
        return fail(s, out, condition, COND_MALFORMED, "other-error");

    int found = s->params.lookup(s->params.ud, s->username, &s->creds);
    if (found == 0 && !creds_usable(&s->creds, s->params.hash)) {
        vn_log_error("scram: stored credentials of %s are not usable for this mechanism",
                     s->username);
        found = -1;
    }
    if (found < 0)
        return fail(s, out, condition, COND_TEMPORARY, "other-error");
    s->user_known = found == 0;
    if (!s->user_known)
        fake_creds(s->params.hash, s->username, s->params.unknown_iterations, &s->creds);

    s->client_first_bare = vn_strdup(bare);
    s->nonce = vn_asprintf("%.*s%s", (int)client_nonce_len, client_nonce, s->server_nonce);
    vn_buf_reset(out);
    vn_buf_printf(out, "r=%s,s=", s->nonce);
    vn_scram_b64_encode(s->creds.salt, s->creds.salt_len, out);
    vn_buf_printf(out, ",i=%u", s->creds.iterations);
    s->server_first = vn_strndup(out->data, out->len);
    s->state = AWAIT_CLIENT_FINAL;
    return VN_SCRAM_CONTINUE;
}

static vn_scram_status client_final(vn_scram_server *s, const char *msg, vn_buf *out,
                                    const char **condition)
{
    const vn_scram_creds *creds = &s->creds;
    unsigned char signature[EVP_MAX_MD_SIZE], client_key[EVP_MAX_MD_SIZE];
    unsigned char stored_key[EVP_MAX_MD_SIZE];
    vn_buf cbind, proof;
    const char *p = msg;

    /* c=base64(gs2 header + cb data),r=nonce[,extensions],p=proof */
    if (strncmp(p, "c=", 2) != 0)
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    vn_buf_init(&cbind);
    int decoded = vn_scram_b64_decode(p + 2, value_len(p + 2), &cbind);
    bool cbind_ok = decoded == 0 && cbind.len == s->expected_cbind.len &&
                    CRYPTO_memcmp(cbind.data, s->expected_cbind.data, cbind.len) == 0;
    vn_buf_free(&cbind);
    if (decoded != 0)
        return fail(s, out, condition, COND_MALFORMED, "invalid-encoding");
    if (!cbind_ok)
        return fail(s, out, condition, COND_NOT_AUTHORIZED, "channel-bindings-dont-match");
    p += 2 + value_len(p + 2);
    if (strncmp(p, ",r=", 3) != 0)
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    if (value_len(p + 3) != strlen(s->nonce) || strncmp(p + 3, s->nonce, strlen(s->nonce)) != 0)
        return fail(s, out, condition, COND_NOT_AUTHORIZED, "other-error");
    p += 3 + value_len(p + 3);

    /* The proof is the last attribute; what precedes it is signed. */
    const char *proof_attr = strrchr(p, ',');
    if (!proof_attr || strncmp(proof_attr, ",p=", 3) != 0)
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    size_t without_proof_len = (size_t)(proof_attr - msg);
    char *extensions = vn_strndup(p, (size_t)(proof_attr - p));
    bool extensions_valid = extensions_ok(extensions);
    free(extensions);
    if (!extensions_valid)
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    vn_buf_init(&proof);
    if (vn_scram_b64_decode(proof_attr + 3, strlen(proof_attr + 3), &proof) != 0 ||
        proof.len != creds->key_len) {
        vn_buf_free(&proof);
        return fail(s, out, condition, COND_MALFORMED, "invalid-proof");
    }

    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    char *auth_message = vn_asprintf("%s,%s,%.*s", s->client_first_bare, s->server_first,
                                     (int)without_proof_len, msg);
    size_t auth_len = strlen(auth_message);
    bool ok =
        hmac(creds->hash, creds->stored_key, creds->key_len, auth_message, auth_len, signature);
    for (size_t i = 0; ok && i < creds->key_len; i++)
        client_key[i] = (unsigned char)proof.data[i] ^ signature[i];
    ok = ok &&
         EVP_Digest(client_key, creds->key_len, stored_key, NULL, hash_md(creds->hash), NULL) == 1;
    bool proof_ok = ok && CRYPTO_memcmp(stored_key, creds->stored_key, creds->key_len) == 0;
    ok = ok &&
         hmac(creds->hash, creds->server_key, creds->key_len, auth_message, auth_len, signature);
    vn_buf_free(&proof);
    free(auth_message);
    OPENSSL_cleanse(client_key, sizeof client_key);
    if (!ok)
        return fail(s, out, condition, COND_TEMPORARY, "other-error");
    if (!proof_ok || !s->user_known)
        return fail(s, out, condition, COND_NOT_AUTHORIZED, "invalid-proof");

    vn_buf_reset(out);
    vn_buf_append_str(out, "v=");
    vn_scram_b64_encode(signature, creds->key_len, out);
    s->state = FINISHED;
    return VN_SCRAM_SUCCESS;
}

vn_scram_status vn_scram_server_step(vn_scram_server *s, const char *in, size_t len, vn_buf *out,
                                     const char **condition)
{
    if (s->state == FINISHED)
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    if (len == 0 || memchr(in, '\0', len))
        return fail(s, out, condition, COND_MALFORMED, "other-error");
    char *msg = vn_strndup(in, len);
    vn_scram_status status = s->state == AWAIT_CLIENT_FIRST ? client_first(s, msg, out, condition)
                                                            : client_final(s, msg, out, condition);
    free(msg);
    return status;
}
