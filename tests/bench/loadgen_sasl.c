/*
 * loadgen_sasl.c - the client's side of SASL PLAIN and SCRAM-SHA-1 (RFC
 * 5802) for the load generator.
 *
 * SCRAM-SHA-1 is the one SCRAM every peer offers (Prosody has no
 * SCRAM-SHA-256). The SaltedPassword of an account is kept once derived,
 * keyed by account, salt and iteration count, as real clients keep it, so
 * that thousands of logins measure the server rather than the client's
 * PBKDF2. No channel binding: the load generator announces none ("n,,").
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <uthash.h>

#include "loadgen.h"
#include "scram.h"

#define SHA1_LEN 20

struct lg_salted_cache {
    char *account;
    unsigned char salt[64];
    size_t salt_len;
    unsigned iterations;
    unsigned char salted_password[SHA1_LEN];
    UT_hash_handle hh;
};

void lg_sasl_initial(lg_mech mech, lg_scram *sc, const char *user, const char *password,
                     vn_buf *out)
{
    if (mech == LG_MECH_PLAIN) {
        vn_buf raw;
        vn_buf_init(&raw);
        vn_buf_append(&raw, "", 1); /* empty authzid, then NUL */
        vn_buf_append_str(&raw, user);
        vn_buf_append(&raw, "", 1);
        vn_buf_append_str(&raw, password);
        vn_scram_b64_encode(raw.data, raw.len, out);
        vn_buf_free(&raw);
        return;
    }
    unsigned char nonce_raw[18];
    if (RAND_bytes(nonce_raw, sizeof nonce_raw) != 1)
        memset(nonce_raw, 0x5a, sizeof nonce_raw);
    vn_buf nonce;
    vn_buf_init(&nonce);
    vn_scram_b64_encode(nonce_raw, sizeof nonce_raw, &nonce);
    /* 18 bytes give 24 base64 characters, no padding, no ','. */
    memcpy(sc->client_nonce, nonce.data, nonce.len);
    sc->client_nonce[nonce.len] = '\0';
    vn_buf_free(&nonce);

    free(sc->client_first_bare);
    sc->client_first_bare = vn_asprintf("n=%s,r=%s", user, sc->client_nonce);
    char *first = vn_asprintf("n,,%s", sc->client_first_bare);
    vn_scram_b64_encode(first, strlen(first), out);
    free(first);
}

/* Value of attribute `key` (one letter) in a SCRAM message, or NULL. */
static const char *scram_attr(const char *msg, char key, size_t *len)
{
    const char *p = msg;
    while (*p) {
        if (p[0] == key && p[1] == '=') {
            const char *end = strchr(p + 2, ',');
            *len = end ? (size_t)(end - (p + 2)) : strlen(p + 2);
            return p + 2;
        }
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    return NULL;
}

static const unsigned char *salted_password(lg_salted_cache **cache, const char *account,
                                            const char *password, const unsigned char *salt,
                                            size_t salt_len, unsigned iterations,
                                            unsigned char *scratch)
{
    lg_salted_cache *entry = NULL;
    if (cache)
        HASH_FIND_STR(*cache, account, entry);
    if (entry && entry->salt_len == salt_len && entry->iterations == iterations &&
        memcmp(entry->salt, salt, salt_len) == 0)
        return entry->salted_password;
    if (!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iterations,
                           EVP_sha1(), SHA1_LEN, scratch))
        return NULL;
    if (!cache || salt_len > sizeof entry->salt)
        return scratch;
    if (!entry) {
        entry = vn_alloc(sizeof *entry);
        entry->account = vn_strdup(account);
        HASH_ADD_KEYPTR(hh, *cache, entry->account, strlen(entry->account), entry);
    }
    memcpy(entry->salt, salt, salt_len);
    entry->salt_len = salt_len;
    entry->iterations = iterations;
    memcpy(entry->salted_password, scratch, SHA1_LEN);
    return entry->salted_password;
}

static void hmac_sha1(const unsigned char *key, const void *data, size_t len, unsigned char *out)
{
    unsigned int out_len = SHA1_LEN;
    HMAC(EVP_sha1(), key, SHA1_LEN, data, len, out, &out_len);
}

int lg_scram_final(lg_scram *sc, lg_salted_cache **cache, const char *account, const char *password,
                   const char *challenge_b64, vn_buf *out)
{
    int result = -1;
    vn_buf server_first, salt;
    vn_buf_init(&server_first);
    vn_buf_init(&salt);
    if (!sc->client_first_bare ||
        vn_scram_b64_decode(challenge_b64, strlen(challenge_b64), &server_first) != 0)
        goto done;
    vn_buf_append(&server_first, "", 1);
    size_t nonce_len, salt_len, iter_len;
    const char *nonce = scram_attr(server_first.data, 'r', &nonce_len);
    const char *salt_b64 = scram_attr(server_first.data, 's', &salt_len);
    const char *iter_text = scram_attr(server_first.data, 'i', &iter_len);
    size_t own_len = strlen(sc->client_nonce);
    if (!nonce || !salt_b64 || !iter_text || nonce_len <= own_len ||
        memcmp(nonce, sc->client_nonce, own_len) != 0 ||
        vn_scram_b64_decode(salt_b64, salt_len, &salt) != 0)
        goto done;
    unsigned long iterations = strtoul(iter_text, NULL, 10);
    if (iterations == 0 || iterations > 10000000)
        goto done;

    unsigned char scratch[SHA1_LEN];
    const unsigned char *salted =
        salted_password(cache, account, password, (const unsigned char *)salt.data, salt.len,
                        (unsigned)iterations, scratch);
    if (!salted)
        goto done;
    unsigned char client_key[SHA1_LEN], stored_key[SHA1_LEN], server_key[SHA1_LEN];
    unsigned char signature[SHA1_LEN];
    hmac_sha1(salted, "Client Key", 10, client_key);
    SHA1(client_key, SHA1_LEN, stored_key);
    hmac_sha1(salted, "Server Key", 10, server_key);

    char *without_proof = vn_asprintf("c=biws,r=%.*s", (int)nonce_len, nonce);
    char *auth_message =
        vn_asprintf("%s,%s,%s", sc->client_first_bare, server_first.data, without_proof);
    hmac_sha1(stored_key, auth_message, strlen(auth_message), signature);
    hmac_sha1(server_key, auth_message, strlen(auth_message), sc->server_signature);
    unsigned char proof[SHA1_LEN];
    for (size_t i = 0; i < SHA1_LEN; i++)
        proof[i] = client_key[i] ^ signature[i];

    vn_buf final;
    vn_buf_init(&final);
    vn_buf_printf(&final, "%s,p=", without_proof);
    vn_scram_b64_encode(proof, SHA1_LEN, &final);
    vn_scram_b64_encode(final.data, final.len, out);
    vn_buf_free(&final);
    free(without_proof);
    free(auth_message);
    result = 0;
done:
    vn_buf_free(&server_first);
    vn_buf_free(&salt);
    return result;
}

int lg_scram_verify(const lg_scram *sc, const char *success_b64)
{
    vn_buf server_final, signature;
    vn_buf_init(&server_final);
    vn_buf_init(&signature);
    int result = -1;
    if (vn_scram_b64_decode(success_b64, strlen(success_b64), &server_final) == 0) {
        vn_buf_append(&server_final, "", 1);
        size_t len;
        const char *v = scram_attr(server_final.data, 'v', &len);
        if (v && vn_scram_b64_decode(v, len, &signature) == 0 && signature.len == SHA1_LEN &&
            memcmp(signature.data, sc->server_signature, SHA1_LEN) == 0)
            result = 0;
    }
    vn_buf_free(&server_final);
    vn_buf_free(&signature);
    return result;
}

void lg_scram_clear(lg_scram *sc)
{
    free(sc->client_first_bare);
    sc->client_first_bare = NULL;
}

void lg_salted_cache_free(lg_salted_cache **cache)
{
    lg_salted_cache *entry, *tmp;
    HASH_ITER(hh, *cache, entry, tmp)
    {
        HASH_DEL(*cache, entry);
        free(entry->account);
        free(entry);
    }
}
