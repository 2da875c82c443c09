/*
 * botapi_tokens.c - bots and their tokens in the store (botapi_store.h),
 * shared by the Bot API and `vestnikctl bot`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <vestnik/util.h>

#include "botapi_store.h"

#define BOTS_STORE "botapi_bots"
#define SECRET_LENGTH 35

static const char secret_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool botapi_username_valid(const char *username)
{
    size_t len = strlen(username);
    if (len < 5 || len > 32 || strcmp(username + len - 3, "bot") != 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = username[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static void secret_hash(const char *secret, size_t len, char out[BOTAPI_SECRET_HASH_HEX + 1])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)secret, len, digest);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static bool record_parse(const char *username, const char *value, size_t len,
                         botapi_bot_record *out)
{
    char text[160];
    if (len >= sizeof text || strlen(username) >= sizeof out->username)
        return false;
    memcpy(text, value, len);
    text[len] = '\0';
    memset(out, 0, sizeof *out);
    strcpy(out->username, username);
    return sscanf(text, "%" SCNd64 " %64s %" SCNd64, &out->id, out->secret_hash,
                  &out->created_us) == 3 &&
           strlen(out->secret_hash) == BOTAPI_SECRET_HASH_HEX;
}

int botapi_bot_get(vn_store *s, const char *domain, const char *username, botapi_bot_record *out)
{
    vn_buf buf;
    vn_buf_init(&buf);
    int rc = vn_store_get(s, domain, "", BOTS_STORE, username, &buf);
    if (rc == VN_STORE_OK && !record_parse(username, buf.data, buf.len, out))
        rc = VN_STORE_ERROR;
    vn_buf_free(&buf);
    return rc;
}

int botapi_bot_add(vn_store *s, const char *domain, const char *username, char **token)
{
    botapi_bot_record existing;
    if (!botapi_username_valid(username))
        return -1;
    int rc = botapi_bot_get(s, domain, username, &existing);
    if (rc == VN_STORE_OK)
        return 1;
    if (rc != VN_STORE_NOT_FOUND)
        return -1;

    char *jid = vn_asprintf("%s@%s", username, domain);
    int64_t id = botapi_id_of(s, domain, jid);
    free(jid);
    unsigned char random[SECRET_LENGTH];
    if (id < 0 || RAND_bytes(random, sizeof random) != 1)
        return -1;
    char secret[SECRET_LENGTH + 1];
    for (int i = 0; i < SECRET_LENGTH; i++)
        secret[i] = secret_alphabet[random[i] & 63];
    secret[SECRET_LENGTH] = '\0';

    char hash[BOTAPI_SECRET_HASH_HEX + 1];
    secret_hash(secret, SECRET_LENGTH, hash);
    char *value = vn_asprintf("%" PRId64 " %s %" PRId64, id, hash, now_us());
    rc = vn_store_put(s, domain, "", BOTS_STORE, username, value, strlen(value));
    free(value);
    if (rc != VN_STORE_OK)
        return -1;
    *token = vn_asprintf("%" PRId64 ":%s", id, secret);
    OPENSSL_cleanse(secret, sizeof secret);
    return 0;
}

int botapi_bot_remove(vn_store *s, const char *domain, const char *username)
{
    botapi_bot_record existing;
    int rc = botapi_bot_get(s, domain, username, &existing);
    if (rc != VN_STORE_OK)
        return rc == VN_STORE_NOT_FOUND ? 1 : -1;
    if (vn_store_delete(s, domain, "", BOTS_STORE, username) != VN_STORE_OK ||
        vn_store_delete_user(s, domain, username) != VN_STORE_OK)
        return -1;
    return 0;
}

typedef struct foreach_ctx {
    botapi_bot_cb cb;
    void *ud;
} foreach_ctx;

static bool foreach_record(const char *key, const void *value, size_t len, void *ud)
{
    foreach_ctx *ctx = ud;
    botapi_bot_record bot;
    return !record_parse(key, value, len, &bot) || ctx->cb(&bot, ctx->ud);
}

int botapi_bot_foreach(vn_store *s, const char *domain, botapi_bot_cb cb, void *ud)
{
    foreach_ctx ctx = {cb, ud};
    return vn_store_foreach(s, domain, "", BOTS_STORE, foreach_record, &ctx);
}

bool botapi_bot_by_token(vn_store *s, const char *domain, const char *token, botapi_bot_record *out)
{
    char *end;
    long long id = strtoll(token, &end, 10);
    if (end == token || *end != ':' || id <= 0)
        return false;
    char *jid = botapi_jid_of(s, domain, id);
    if (!jid)
        return false;
    char *at = strchr(jid, '@');
    bool found = at && strcmp(at + 1, domain) == 0 &&
                 (*at = '\0', botapi_bot_get(s, domain, jid, out) == VN_STORE_OK) && out->id == id;
    free(jid);
    if (!found)
        return false;
    char hash[BOTAPI_SECRET_HASH_HEX + 1];
    secret_hash(end + 1, strlen(end + 1), hash);
    return CRYPTO_memcmp(hash, out->secret_hash, BOTAPI_SECRET_HASH_HEX) == 0;
}
