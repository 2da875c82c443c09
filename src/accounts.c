/*
 * accounts.c - user accounts as SCRAM credentials in the store.
 *
 * One document per account, store "accounts", key "scram", under (host,
 * normalised localpart). It is text, one record per line:
 *
 *   v1
 *   SCRAM-SHA-1 <iterations> <salt> <StoredKey> <ServerKey>
 *   SCRAM-SHA-256 <iterations> <salt> <StoredKey> <ServerKey>
 *
 * with the binary fields in base64. The first line is the format version;
 * readers of v1 skip records of mechanisms they do not know, so a later
 * hash can be added without a new version. The password itself is never
 * stored: it is prepared with the PRECIS OpaqueString profile (RFC 8265
 * §4.2, the same as a resourcepart) and salted per mechanism.
 */
#include "accounts.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "vestnik/jid.h"
#include "vestnik/log.h"

#define ACCOUNTS_STORE "accounts"
#define ACCOUNTS_KEY "scram"
#define ACCOUNTS_VERSION "v1"
#define ADDRESSES_KEY "login-addresses"
#define ADDRESS_RESTAMP 86400 /* seconds before a known address's time is refreshed */

static const char *mechanism_name(vn_scram_hash hash)
{
    return hash == VN_SCRAM_SHA1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

static void format_record(const vn_scram_creds *creds, vn_buf *doc)
{
    vn_buf_printf(doc, "%s %u ", mechanism_name(creds->hash), creds->iterations);
    vn_scram_b64_encode(creds->salt, creds->salt_len, doc);
    vn_buf_append_str(doc, " ");
    vn_scram_b64_encode(creds->stored_key, creds->key_len, doc);
    vn_buf_append_str(doc, " ");
    vn_scram_b64_encode(creds->server_key, creds->key_len, doc);
    vn_buf_append_str(doc, "\n");
}

/* Decodes one base64 field into dst, which must come out between min and
 * max bytes long; its length goes to *len. */
static bool decode_field(const char *text, unsigned char *dst, size_t min, size_t max, size_t *len)
{
    vn_buf bytes;

    vn_buf_init(&bytes);
    bool ok = text && vn_scram_b64_decode(text, strlen(text), &bytes) == 0 && bytes.len >= min &&
              bytes.len <= max;
    if (ok) {
        memcpy(dst, bytes.data, bytes.len);
        *len = bytes.len;
    }
    vn_buf_free(&bytes);
    return ok;
}

/* "<iterations> <salt> <StoredKey> <ServerKey>" after the mechanism name. */
static bool parse_record(char *fields, vn_scram_hash hash, vn_scram_creds *out)
{
    char *save = NULL;
    const char *iterations = strtok_r(fields, " ", &save);
    const char *salt = strtok_r(NULL, " ", &save);
    const char *stored_key = strtok_r(NULL, " ", &save);
    const char *server_key = strtok_r(NULL, " ", &save);
    size_t key_len = hash == VN_SCRAM_SHA1 ? 20 : 32, len;
    char *end;

    if (!iterations || strtok_r(NULL, " ", &save) || iterations[0] < '1' || iterations[0] > '9')
        return false;
    errno = 0;
    unsigned long count = strtoul(iterations, &end, 10);
    if (errno || *end || count > UINT_MAX)
        return false;
    memset(out, 0, sizeof *out);
    out->hash = hash;
    out->iterations = (unsigned)count;
    out->key_len = key_len;
    return decode_field(salt, out->salt, 1, sizeof out->salt, &out->salt_len) &&
           decode_field(stored_key, out->stored_key, key_len, key_len, &len) &&
           decode_field(server_key, out->server_key, key_len, key_len, &len);
}

/* 0 with the record of hash in out; 1 if a v1 document has records of
 * other hashes only (an account imported with SCRAM-SHA-1 alone); -1 if
 * the document is not v1, has no record at all or a malformed one. */
static int parse_document(const vn_buf *doc, vn_scram_hash hash, vn_scram_creds *out)
{
    char *save = NULL;
    int rc = -1;

    if (doc->len == 0)
        return -1;
    char *text = vn_strndup(doc->data, doc->len);
    const char *version = strtok_r(text, "\n", &save);
    if (version && strcmp(version, ACCOUNTS_VERSION) == 0) {
        char *line;
        while ((line = strtok_r(NULL, "\n", &save))) {
            size_t name_len = strcspn(line, " ");
            if (line[name_len] != ' ')
                continue;
            if (strncmp(line, mechanism_name(hash), name_len) != 0 ||
                mechanism_name(hash)[name_len] != '\0') {
                rc = 1; /* another hash's record */
                continue;
            }
            rc = parse_record(line + name_len + 1, hash, out) ? 0 : -1;
            break;
        }
    }
    OPENSSL_cleanse(text, doc->len);
    free(text);
    return rc;
}

/* Writes fresh credentials for both hashes. 0 or -1. */
static int store_password(vn_store *s, const char *host, const char *user, const char *password,
                          unsigned iterations)
{
    vn_scram_creds sha1, sha256;
    vn_buf doc;
    int rc = -1;

    char *prepared = vn_jid_prep_resource(password);
    if (!prepared)
        return -1;
    if (vn_scram_creds_make(VN_SCRAM_SHA1, prepared, iterations, &sha1) == 0 &&
        vn_scram_creds_make(VN_SCRAM_SHA256, prepared, iterations, &sha256) == 0) {
        vn_buf_init(&doc);
        vn_buf_append_str(&doc, ACCOUNTS_VERSION "\n");
        format_record(&sha1, &doc);
        format_record(&sha256, &doc);
        rc = vn_store_put(s, host, user, ACCOUNTS_STORE, ACCOUNTS_KEY, doc.data, doc.len) ==
                     VN_STORE_OK
                 ? 0
                 : -1;
        vn_buf_free(&doc);
    }
    OPENSSL_cleanse(prepared, strlen(prepared));
    free(prepared);
    return rc;
}

/* VN_STORE_OK, NOT_FOUND or ERROR for the account document of a
 * normalised user; doc may be NULL. */
static int load(vn_store *s, const char *host, const char *user, vn_buf *doc)
{
    vn_buf scratch;

    vn_buf_init(&scratch);
    int rc = vn_store_get(s, host, user, ACCOUNTS_STORE, ACCOUNTS_KEY, doc ? doc : &scratch);
    vn_buf_free(&scratch);
    return rc;
}

int vn_accounts_create(vn_store *s, const char *host, const char *user, const char *password,
                       unsigned iterations)
{
    char *name = vn_jid_prep_local(user);
    int rc = -1;

    if (!name)
        return -1;
    switch (load(s, host, name, NULL)) {
    case VN_STORE_OK: rc = 1; break;
    case VN_STORE_NOT_FOUND: rc = store_password(s, host, name, password, iterations); break;
    default: break;
    }
    free(name);
    return rc;
}

static bool collect_key(const char *key, const void *value, size_t len, void *ud)
{
    vn_buf *keys = ud;

    (void)value;
    (void)len;
    vn_buf_append(keys, key, strlen(key) + 1);
    return true;
}

/* A new password: the tokens issued against the old one go (XEP-0484). */
static int forget_tokens(vn_store *s, const char *host, const char *user)
{
    vn_buf keys;
    int rc = 0;

    vn_buf_init(&keys);
    if (vn_store_foreach(s, host, user, VN_ACCOUNTS_FAST_STORE, collect_key, &keys) != VN_STORE_OK)
        rc = -1;
    for (size_t at = 0; rc == 0 && at < keys.len; at += strlen(keys.data + at) + 1)
        if (vn_store_delete(s, host, user, VN_ACCOUNTS_FAST_STORE, keys.data + at) != VN_STORE_OK)
            rc = -1;
    if (keys.len)
        vn_log_info("accounts: password of %s@%s changed: its FAST tokens are forgotten", user,
                    host);
    vn_buf_free(&keys);
    return rc;
}

int vn_accounts_set_password(vn_store *s, const char *host, const char *user, const char *password,
                             unsigned iterations)
{
    char *name = vn_jid_prep_local(user);
    int rc = -1;

    if (!name)
        return 1;
    switch (load(s, host, name, NULL)) {
    case VN_STORE_OK:
        rc = store_password(s, host, name, password, iterations);
        if (rc == 0)
            rc = forget_tokens(s, host, name);
        break;
    case VN_STORE_NOT_FOUND: rc = 1; break;
    default: break;
    }
    free(name);
    return rc;
}

int vn_accounts_delete(vn_store *s, const char *host, const char *user)
{
    char *name = vn_jid_prep_local(user);
    int rc = -1;

    if (!name)
        return 1;
    switch (load(s, host, name, NULL)) {
    case VN_STORE_OK: rc = vn_store_delete_user(s, host, name) == VN_STORE_OK ? 0 : -1; break;
    case VN_STORE_NOT_FOUND: rc = 1; break;
    default: break;
    }
    free(name);
    return rc;
}

int vn_accounts_put_creds(vn_store *s, const char *host, const char *user,
                          const vn_scram_creds *creds, size_t n)
{
    char *name = vn_jid_prep_local(user);
    vn_buf doc;
    int rc = -1;

    if (!name)
        return -1;
    vn_buf_init(&doc);
    vn_buf_append_str(&doc, ACCOUNTS_VERSION "\n");
    for (size_t i = 0; i < n; i++)
        format_record(&creds[i], &doc);
    if (n &&
        vn_store_put(s, host, name, ACCOUNTS_STORE, ACCOUNTS_KEY, doc.data, doc.len) == VN_STORE_OK)
        rc = 0;
    OPENSSL_cleanse(doc.data, doc.len);
    vn_buf_free(&doc);
    free(name);
    return rc;
}

bool vn_accounts_exists(vn_store *s, const char *host, const char *user)
{
    char *name = vn_jid_prep_local(user);

    if (!name)
        return false;
    bool exists = load(s, host, name, NULL) == VN_STORE_OK;
    free(name);
    return exists;
}

int vn_accounts_get_creds(vn_store *s, const char *host, const char *user, vn_scram_hash hash,
                          vn_scram_creds *out)
{
    char *name = vn_jid_prep_local(user);
    vn_buf doc;
    int rc = -1;

    if (!name)
        return 1;
    vn_buf_init(&doc);
    switch (load(s, host, name, &doc)) {
    case VN_STORE_OK:
        rc = parse_document(&doc, hash, out);
        if (rc < 0)
            vn_log_error("accounts: the %s credentials of %s@%s are unreadable",
                         mechanism_name(hash), name, host);
        break;
    case VN_STORE_NOT_FOUND: rc = 1; break;
    default: break;
    }
    if (doc.data)
        OPENSSL_cleanse(doc.data, doc.len);
    vn_buf_free(&doc);
    free(name);
    return rc;
}

int vn_accounts_check_password(vn_store *s, const char *host, const char *user,
                               const char *password)
{
    vn_scram_creds creds;

    int rc = vn_accounts_get_creds(s, host, user, VN_SCRAM_SHA256, &creds);
    if (rc == 1 && vn_accounts_exists(s, host, user)) /* imported with SCRAM-SHA-1 alone */
        rc = vn_accounts_get_creds(s, host, user, VN_SCRAM_SHA1, &creds);
    if (rc != 0)
        return rc;
    char *prepared = vn_jid_prep_resource(password);
    bool right = prepared && vn_scram_creds_check(&creds, prepared);
    if (prepared) {
        OPENSSL_cleanse(prepared, strlen(prepared));
        free(prepared);
    }
    OPENSSL_cleanse(&creds, sizeof creds);
    return right ? 0 : 1;
}

/* ---- known login addresses ----
 *
 *   v1
 *   <address key> <unix seconds of the last success>
 *
 * newest first, at most the caller's max lines. */

typedef struct known_address {
    char *address;
    int64_t last;
} known_address;

/* The entries younger than max_age, newest first as stored; returns their
 * count, at most cap. */
static size_t load_addresses(vn_store *s, const char *host, const char *user, int64_t now,
                             int64_t max_age, known_address *out, size_t cap)
{
    vn_buf doc;
    size_t n = 0;

    vn_buf_init(&doc);
    if (vn_store_get(s, host, user, ACCOUNTS_STORE, ADDRESSES_KEY, &doc) == VN_STORE_OK &&
        doc.len) {
        char *text = vn_strndup(doc.data, doc.len), *save = NULL, *line;
        const char *version = strtok_r(text, "\n", &save);
        while (version && strcmp(version, ACCOUNTS_VERSION) == 0 && n < cap &&
               (line = strtok_r(NULL, "\n", &save))) {
            char *space = strchr(line, ' '), *end;
            if (!space || space == line)
                continue;
            errno = 0;
            long long last = strtoll(space + 1, &end, 10);
            if (errno || *end || last > now || now - last > max_age)
                continue;
            out[n].address = vn_strndup(line, (size_t)(space - line));
            out[n++].last = last;
        }
        free(text);
    }
    vn_buf_free(&doc);
    return n;
}

static void free_addresses(known_address *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].address);
    free(list);
}

bool vn_accounts_address_known(vn_store *s, const char *host, const char *user, const char *address,
                               int64_t now, int64_t max_age)
{
    enum { CAP = 1000 };
    known_address *list = vn_alloc(CAP * sizeof *list);
    size_t n = load_addresses(s, host, user, now, max_age, list, CAP);
    bool known = false;

    for (size_t i = 0; i < n && !known; i++)
        known = strcmp(list[i].address, address) == 0;
    free_addresses(list, n);
    return known;
}

int vn_accounts_remember_address(vn_store *s, const char *host, const char *user,
                                 const char *address, int64_t now, int64_t max_age, size_t max)
{
    known_address *list = vn_alloc((max + 1) * sizeof *list);
    size_t n = load_addresses(s, host, user, now, max_age, list, max);
    int rc = 0;

    if (n && strcmp(list[0].address, address) == 0 && now - list[0].last < ADDRESS_RESTAMP) {
        free_addresses(list, n);
        return 0; /* the newest already, and fresh */
    }
    vn_buf doc;
    vn_buf_init(&doc);
    vn_buf_printf(&doc, ACCOUNTS_VERSION "\n%s %lld\n", address, (long long)now);
    for (size_t i = 0, kept = 1; i < n && kept < max; i++) {
        if (strcmp(list[i].address, address) == 0)
            continue;
        vn_buf_printf(&doc, "%s %lld\n", list[i].address, (long long)list[i].last);
        kept++;
    }
    if (vn_store_put(s, host, user, ACCOUNTS_STORE, ADDRESSES_KEY, doc.data, doc.len) !=
        VN_STORE_OK)
        rc = -1;
    vn_buf_free(&doc);
    free_addresses(list, n);
    return rc;
}

int vn_accounts_foreach(vn_store *s, const char *host, bool (*cb)(const char *user, void *ud),
                        void *ud)
{
    return vn_store_foreach_user(s, host, ACCOUNTS_STORE, cb, ud) == VN_STORE_OK ? 0 : -1;
}
