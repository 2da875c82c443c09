/*
 * fast.c - XEP-0484 FAST tokens and the HT-SHA-256-* mechanisms.
 *
 * HT (draft-schmaus-kitten-sasl-ht): the client's only message is
 * authcid NUL HMAC-SHA-256(token, "Initiator" || cb-data); the server
 * answers HMAC-SHA-256(token, "Responder" || cb-data) as additional data.
 * -NONE binds to nothing, -ENDP to tls-server-end-point, -EXPR to
 * tls-exporter.
 *
 * Tokens are never stored. They are 80 characters long, longer than
 * SHA-256's 64-byte block, so HMAC itself keys with SHA-256(token)
 * (RFC 2104 §2): the store keeps only that digest, from which the token
 * cannot be recovered. (The digest still verifies HT logins, as any HMAC
 * key would: a stolen store is a reason to forget every token, which a
 * password change does.) One document per client instance, store
 * VN_ACCOUNTS_FAST_STORE, key the hex SHA-256 of its user-agent id:
 *
 *   v1
 *   <slot: new|current> <mechanism> <base64 key> <issued> <expiry> <count>
 *
 * times in Unix seconds, count the highest <fast count/> seen (0: none).
 */
#include "fast.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "scram.h"
#include "server.h"
#include "tls.h"
#include "vestnik/jid.h"

#define KEY_LEN 32      /* SHA-256 */
#define TOKEN_RANDOM 60 /* bytes: 80 base64 characters, > 64 */
#define CB_DATA_MAX 128
#define DOC_VERSION "v1"

typedef struct ht_mechanism {
    const char *name;
    const char *cb_type; /* NULL: none */
} ht_mechanism;

/* Channel binding first, as a client should prefer it. */
static const ht_mechanism mechanisms[] = {
    {"HT-SHA-256-EXPR", "tls-exporter"},
    {"HT-SHA-256-ENDP", "tls-server-end-point"},
    {"HT-SHA-256-NONE", NULL},
};

enum { SLOT_NEW, SLOT_CURRENT, SLOTS };
static const char *const slot_names[SLOTS] = {"new", "current"};

typedef struct token_slot {
    bool used;
    char mechanism[24];
    unsigned char key[KEY_LEN];
    int64_t issued, expiry;
    unsigned long long count;
} token_slot;

static int64_t now_s(void)
{
    return vn_now_us() / 1000000;
}

static const ht_mechanism *find_mechanism(const char *name)
{
    for (size_t i = 0; name && i < sizeof mechanisms / sizeof mechanisms[0]; i++)
        if (strcmp(name, mechanisms[i].name) == 0)
            return &mechanisms[i];
    return NULL;
}

static bool cb_data(const vn_sasl_context *ctx, const ht_mechanism *m, unsigned char *out,
                    size_t *len)
{
    if (!m->cb_type) {
        *len = 0;
        return true;
    }
    return ctx->ssl && ctx->channel_binding &&
           vn_tls_channel_binding(ctx->ssl, m->cb_type, out, len) == 0;
}

bool vn_fast_offered(const vn_sasl_context *ctx, const char *name)
{
    const ht_mechanism *m = find_mechanism(name);
    unsigned char data[CB_DATA_MAX];
    size_t len = sizeof data;

    return m && vn_srv.cfg->fast_token_lifetime && ctx->secure && cb_data(ctx, m, data, &len);
}

void vn_fast_add_feature(const vn_sasl_context *ctx, vn_stanza *inline_el)
{
    vn_stanza *fast = NULL;

    for (size_t i = 0; i < sizeof mechanisms / sizeof mechanisms[0]; i++) {
        if (!vn_fast_offered(ctx, mechanisms[i].name))
            continue;
        if (!fast)
            fast = vn_stanza_add_child(inline_el, "fast", VN_NS_FAST);
        vn_stanza_add_text_child(fast, "mechanism", VN_NS_FAST, mechanisms[i].name);
    }
}

/* ---- the stored document ---- */

static char *instance_key(const char *ua_id)
{
    unsigned char digest[KEY_LEN];
    char *hex = vn_alloc(2 * KEY_LEN + 1);

    EVP_Digest(ua_id, strlen(ua_id), digest, NULL, EVP_sha256(), NULL);
    for (size_t i = 0; i < KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return hex;
}

static bool parse_slot(char *line, token_slot slots[SLOTS])
{
    char *save = NULL, *end;
    const char *name = strtok_r(line, " ", &save);
    const char *mech = strtok_r(NULL, " ", &save);
    const char *key = strtok_r(NULL, " ", &save);
    const char *fields[3];
    long long values[3];

    for (int i = 0; i < 3; i++)
        fields[i] = strtok_r(NULL, " ", &save);
    if (!name || !mech || !key || !fields[2] || strlen(mech) >= sizeof slots[0].mechanism)
        return false;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        values[i] = strtoll(fields[i], &end, 10);
        if (errno || *end || values[i] < 0)
            return false;
    }
    for (int i = 0; i < SLOTS; i++) {
        if (strcmp(name, slot_names[i]) != 0)
            continue;
        vn_buf bytes;
        vn_buf_init(&bytes);
        bool ok = vn_scram_b64_decode(key, strlen(key), &bytes) == 0 && bytes.len == KEY_LEN;
        if (ok) {
            token_slot *t = &slots[i];
            t->used = true;
            snprintf(t->mechanism, sizeof t->mechanism, "%s", mech);
            memcpy(t->key, bytes.data, KEY_LEN);
            t->issued = values[0];
            t->expiry = values[1];
            t->count = (unsigned long long)values[2];
        }
        vn_buf_free(&bytes);
        return ok;
    }
    return false;
}

/* The instance's slots (unused when absent); -1 on a store error. */
static int load_slots(vn_store *s, const char *host, const char *user, const char *key,
                      token_slot slots[SLOTS])
{
    vn_buf doc;
    int rc;

    memset(slots, 0, SLOTS * sizeof *slots);
    vn_buf_init(&doc);
    rc = vn_store_get(s, host, user, VN_ACCOUNTS_FAST_STORE, key, &doc);
    if (rc == VN_STORE_OK && doc.len) {
        char *text = vn_strndup(doc.data, doc.len), *save = NULL, *line;
        const char *version = strtok_r(text, "\n", &save);
        while (version && strcmp(version, DOC_VERSION) == 0 && (line = strtok_r(NULL, "\n", &save)))
            if (!parse_slot(line, slots))
                vn_log_warn("fast: an unreadable token record of %s@%s was ignored", user, host);
        OPENSSL_cleanse(text, doc.len);
        free(text);
        OPENSSL_cleanse(doc.data, doc.len);
    }
    vn_buf_free(&doc);
    return rc == VN_STORE_ERROR ? -1 : 0;
}

static int save_slots(vn_store *s, const char *host, const char *user, const char *key,
                      const token_slot slots[SLOTS])
{
    vn_buf doc;
    bool any = false;
    int rc;

    vn_buf_init(&doc);
    vn_buf_append_str(&doc, DOC_VERSION "\n");
    for (int i = 0; i < SLOTS; i++) {
        if (!slots[i].used)
            continue;
        any = true;
        vn_buf_printf(&doc, "%s %s ", slot_names[i], slots[i].mechanism);
        vn_scram_b64_encode(slots[i].key, KEY_LEN, &doc);
        vn_buf_printf(&doc, " %lld %lld %llu\n", (long long)slots[i].issued,
                      (long long)slots[i].expiry, slots[i].count);
    }
    rc = any ? vn_store_put(s, host, user, VN_ACCOUNTS_FAST_STORE, key, doc.data, doc.len)
             : vn_store_delete(s, host, user, VN_ACCOUNTS_FAST_STORE, key);
    vn_buf_free(&doc);
    return rc == VN_STORE_OK ? 0 : -1;
}

/* ---- authentication ---- */

static void hmac_message(const unsigned char key[KEY_LEN], const char *label,
                         const unsigned char *cb, size_t cb_len, unsigned char out[KEY_LEN])
{
    unsigned char msg[16 + CB_DATA_MAX];
    size_t label_len = strlen(label);
    unsigned out_len = KEY_LEN;

    memcpy(msg, label, label_len);
    memcpy(msg + label_len, cb, cb_len);
    HMAC(EVP_sha256(), key, KEY_LEN, msg, label_len + cb_len, out, &out_len);
}

/* A count attribute: a positive integer above the last one seen. */
static bool count_acceptable(const char *text, unsigned long long last, unsigned long long *value)
{
    char *end;

    if (!text)
        return true;
    if (*text < '1' || *text > '9')
        return false;
    errno = 0;
    *value = strtoull(text, &end, 10);
    return !errno && !*end && *value > last;
}

vn_sasl_status vn_fast_authenticate(const vn_sasl_context *ctx, const vn_fast_login *login,
                                    vn_buf *out, vn_fast_result *result, const char **condition)
{
    const ht_mechanism *m = find_mechanism(login->mechanism);
    unsigned char cb[CB_DATA_MAX], expected[KEY_LEN], responder[KEY_LEN];
    size_t cb_len = sizeof cb;
    vn_buf data;
    token_slot slots[SLOTS];
    vn_sasl_status status = VN_SASL_FAILURE;

    memset(result, 0, sizeof *result);
    *condition = "not-authorized";
    if (!m || !vn_fast_offered(ctx, login->mechanism) || !cb_data(ctx, m, cb, &cb_len)) {
        *condition = "invalid-mechanism";
        return VN_SASL_FAILURE;
    }
    vn_buf_init(&data);
    if (!login->initial ||
        vn_scram_b64_decode(login->initial, strlen(login->initial), &data) != 0) {
        *condition = login->initial ? "incorrect-encoding" : "malformed-request";
        vn_buf_free(&data);
        return VN_SASL_FAILURE;
    }
    const char *nul = data.len ? memchr(data.data, '\0', data.len) : NULL;
    if (!nul || nul == data.data || data.len - (size_t)(nul + 1 - data.data) != KEY_LEN) {
        *condition = "malformed-request";
        vn_buf_free(&data);
        return VN_SASL_FAILURE;
    }
    char *authcid = vn_strndup(data.data, (size_t)(nul - data.data));
    const unsigned char *proof = (const unsigned char *)nul + 1;
    result->attempted = vn_jid_prep_local(authcid);
    free(authcid);

    char *key = login->ua_id ? instance_key(login->ua_id) : NULL;
    const char *local = result->attempted;
    if (local && ctx->account_held && ctx->account_held(ctx->host, local, ctx->peer_ip)) {
        *condition = "temporary-auth-failure";
    } else if (local && key && load_slots(ctx->store, ctx->host, local, key, slots) != 0) {
        *condition = "temporary-auth-failure";
    } else if (local && key) {
        /* 'new' first: its use retires 'current' (XEP-0484 §6.1). */
        int match = -1;
        for (int i = 0; i < SLOTS && match < 0; i++) {
            if (!slots[i].used || strcmp(slots[i].mechanism, m->name) != 0)
                continue;
            hmac_message(slots[i].key, "Initiator", cb, cb_len, expected);
            if (CRYPTO_memcmp(expected, proof, KEY_LEN) == 0)
                match = i;
        }
        unsigned long long count = 0;
        if (match < 0) {
            result->wrong_credentials = true;
        } else if (slots[match].expiry <= now_s()) {
            *condition = "credentials-expired";
        } else if (!count_acceptable(login->count, slots[match].count, &count)) {
            vn_log_warn("fast: %s@%s: a replayed or invalid count '%s'", local, ctx->host,
                        login->count);
        } else {
            token_slot used = slots[match];
            bool changed = match == SLOT_NEW || login->count || login->invalidate;
            if (login->count)
                used.count = count;
            slots[SLOT_NEW].used = match == SLOT_CURRENT && slots[SLOT_NEW].used;
            slots[SLOT_CURRENT] = used;
            slots[SLOT_CURRENT].used = !login->invalidate;
            if (changed && save_slots(ctx->store, ctx->host, local, key, slots) != 0) {
                *condition = "temporary-auth-failure";
            } else {
                hmac_message(used.key, "Responder", cb, cb_len, responder);
                vn_scram_b64_encode(responder, KEY_LEN, out);
                result->user = vn_strdup(local);
                result->rotate = !login->invalidate && !slots[SLOT_NEW].used &&
                                 now_s() - used.issued >= vn_srv.cfg->fast_rotate_after;
                status = VN_SASL_SUCCESS;
            }
        }
    } else {
        result->wrong_credentials = true;
    }
    OPENSSL_cleanse(slots, sizeof slots);
    OPENSSL_cleanse(data.data, data.len);
    vn_buf_free(&data);
    free(key);
    return status;
}

void vn_fast_result_free(vn_fast_result *result)
{
    free(result->user);
    free(result->attempted);
    memset(result, 0, sizeof *result);
}

/* ---- issuing ---- */

typedef struct oldest_instance {
    char *key;
    int64_t issued;
    size_t count;
} oldest_instance;

static bool find_oldest(const char *key, const void *value, size_t len, void *ud)
{
    oldest_instance *o = ud;
    char *text = vn_strndup(value, len);
    int64_t issued = 0;

    /* The newest issue time of the instance's slots. */
    for (char *line = strchr(text, '\n'); line; line = strchr(line + 1, '\n')) {
        long long t;
        if (sscanf(line + 1, "%*s %*s %*s %lld", &t) == 1 && t > issued)
            issued = t;
    }
    OPENSSL_cleanse(text, len);
    free(text);
    if (!o->key || issued < o->issued) {
        free(o->key);
        o->key = vn_strdup(key);
        o->issued = issued;
    }
    o->count++;
    return true;
}

/* Keep the account under auth.fast_max_tokens instances, new_key aside. */
static void limit_instances(vn_store *s, const char *host, const char *user, const char *new_key)
{
    token_slot existing[SLOTS];

    if (load_slots(s, host, user, new_key, existing) == 0 &&
        (existing[SLOT_NEW].used || existing[SLOT_CURRENT].used))
        return; /* a known instance: no new one */
    for (;;) {
        oldest_instance o = {0};
        vn_store_foreach(s, host, user, VN_ACCOUNTS_FAST_STORE, find_oldest, &o);
        bool full = o.key && o.count >= vn_srv.cfg->fast_max_tokens;
        if (full) {
            vn_log_info("fast: %s@%s has %zu clients with tokens: forgetting the oldest", user,
                        host, o.count);
            full = vn_store_delete(s, host, user, VN_ACCOUNTS_FAST_STORE, o.key) == VN_STORE_OK;
        }
        free(o.key);
        if (!full)
            return;
    }
}

int vn_fast_issue(vn_store *s, const char *host, const char *user, const char *ua_id,
                  const char *mechanism, char **token, int64_t *expiry_us)
{
    unsigned char random[TOKEN_RANDOM];
    token_slot slots[SLOTS];
    vn_buf text;
    char *key = instance_key(ua_id);
    int rc = -1;

    limit_instances(s, host, user, key);
    if (!find_mechanism(mechanism) || load_slots(s, host, user, key, slots) != 0 ||
        RAND_bytes(random, sizeof random) != 1) {
        free(key);
        return -1;
    }
    vn_buf_init(&text);
    vn_scram_b64_encode(random, sizeof random, &text);
    token_slot *t = &slots[SLOT_NEW];
    t->used = true;
    snprintf(t->mechanism, sizeof t->mechanism, "%s", mechanism);
    EVP_Digest(text.data, text.len, t->key, NULL, EVP_sha256(), NULL);
    t->issued = now_s();
    t->expiry = t->issued + vn_srv.cfg->fast_token_lifetime;
    t->count = 0;
    if (save_slots(s, host, user, key, slots) == 0) {
        *token = vn_strndup(text.data, text.len);
        *expiry_us = t->expiry * 1000000;
        rc = 0;
    }
    OPENSSL_cleanse(random, sizeof random);
    OPENSSL_cleanse(text.data, text.len);
    OPENSSL_cleanse(slots, sizeof slots);
    vn_buf_free(&text);
    free(key);
    return rc;
}
