/*
 * botapi_ids.c - the stable map between JIDs and the 64-bit integer ids
 * the Telegram Bot API gives users, chats and bots (botapi_store.h).
 *
 * An id is the first 52 bits of the SHA-256 of the bare JID: the same JID
 * gets the same id on every server that uses this scheme, bots can keep
 * ids in their own databases, and JavaScript numbers hold them exactly.
 * The map is stored both ways, so a collision (two JIDs with the same
 * hash) moves the newcomer to the next free id, and an id once given is
 * never given to another JID.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <vestnik/util.h>

#include "botapi_store.h"

#define IDS_STORE "botapi_ids"
#define ID_MASK ((UINT64_C(1) << 52) - 1)

static char *read_doc(vn_store *s, const char *domain, const char *key, int *rc)
{
    vn_buf buf;
    vn_buf_init(&buf);
    *rc = vn_store_get(s, domain, "", IDS_STORE, key, &buf);
    if (*rc != VN_STORE_OK) {
        vn_buf_free(&buf);
        return NULL;
    }
    vn_buf_append(&buf, "", 1);
    return vn_buf_steal(&buf, NULL);
}

static int64_t lookup_jid(vn_store *s, const char *domain, const char *jid, int *rc)
{
    char *key = vn_asprintf("j:%s", jid);
    char *value = read_doc(s, domain, key, rc);
    int64_t id = value ? strtoll(value, NULL, 10) : 0;
    free(key);
    free(value);
    return id;
}

char *botapi_jid_of(vn_store *s, const char *domain, int64_t id)
{
    char key[32];
    int rc;
    snprintf(key, sizeof key, "i:%" PRId64, id);
    return read_doc(s, domain, key, &rc);
}

int64_t botapi_id_of(vn_store *s, const char *domain, const char *jid)
{
    int rc;
    int64_t id = lookup_jid(s, domain, jid, &rc);
    if (rc == VN_STORE_OK)
        return id;
    if (rc == VN_STORE_ERROR)
        return -1;

    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)jid, strlen(jid), digest);
    uint64_t candidate = 0;
    for (int i = 0; i < 8; i++)
        candidate = candidate << 8 | digest[i];
    candidate &= ID_MASK;
    for (;; candidate = (candidate + 1) & ID_MASK) {
        if (candidate == 0)
            continue;
        char *taken = botapi_jid_of(s, domain, (int64_t)candidate);
        if (!taken)
            break;
        free(taken);
    }
    char key[32], value[32];
    snprintf(key, sizeof key, "i:%" PRIu64, candidate);
    snprintf(value, sizeof value, "%" PRIu64, candidate);
    char *jid_key = vn_asprintf("j:%s", jid);
    bool ok = vn_store_put(s, domain, "", IDS_STORE, key, jid, strlen(jid)) == VN_STORE_OK &&
              vn_store_put(s, domain, "", IDS_STORE, jid_key, value, strlen(value)) == VN_STORE_OK;
    free(jid_key);
    return ok ? (int64_t)candidate : -1;
}
