/*
 * wallet_pending.c - what waits for a holder's answer: requests for claims
 * and documents to sign, one JSON document each in the account's
 * "credentials_pending" store, so they survive a restart and go with the
 * account. Whatever waits longer than request_timeout is declined.
 */
#include <stdlib.h>
#include <string.h>

#include "mod_credentials.h"

#define PENDING_STORE "credentials_pending"

int pending_put(const char *host, const char *user, const json_t *item)
{
    char *text = json_dumps(item, JSON_COMPACT);
    int rc = vn_store_put(vn_server_store(), host, user, PENDING_STORE,
                          json_string_value(json_object_get(item, "id")), text, strlen(text));
    free(text);
    return rc == VN_STORE_OK ? 0 : -1;
}

json_t *pending_get(const char *host, const char *user, const char *id)
{
    vn_buf v;
    vn_buf_init(&v);
    json_t *item = NULL;
    if (id && strlen(id) <= 64 &&
        vn_store_get(vn_server_store(), host, user, PENDING_STORE, id, &v) == VN_STORE_OK)
        item = json_loadb(v.data, v.len, 0, NULL);
    vn_buf_free(&v);
    return item;
}

void pending_delete(const char *host, const char *user, const char *id)
{
    vn_store_delete(vn_server_store(), host, user, PENDING_STORE, id);
}

static int by_creation(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(const json_t *const *)a, "created_us"));
    json_int_t y = json_integer_value(json_object_get(*(const json_t *const *)b, "created_us"));
    return x < y ? -1 : x > y;
}

json_t *pending_list(const char *host, const char *user)
{
    return cred_store_list(host, user, PENDING_STORE, by_creation);
}

size_t pending_count_from(const json_t *pending, const char *asker)
{
    size_t n = 0, i;
    const json_t *item;
    json_array_foreach(pending, i, item)
    {
        const char *from = json_string_value(json_object_get(item, "verifier"));
        if (!from)
            from = json_string_value(json_object_get(item, "service"));
        if (from && strcmp(from, asker) == 0)
            n++;
    }
    return n;
}

json_t *pending_oldest(const char *host, const char *user, const char *kind)
{
    json_t *all = pending_list(host, user);
    json_t *found = NULL;
    size_t i;
    json_t *item;
    json_array_foreach(all, i, item)
    {
        const char *k = json_string_value(json_object_get(item, "kind"));
        if (!kind || (k && strcmp(k, kind) == 0)) {
            found = json_incref(item);
            break;
        }
    }
    json_decref(all);
    return found;
}

static bool collect_user(const char *user, void *ud)
{
    json_array_append_new(ud, json_string(user));
    return true;
}

void pending_expire(void)
{
    int64_t deadline = vn_now_us() / 1000000 - cred.limits.request_timeout;
    for (const char *const *h = vn_local_hosts(); *h; h++) {
        json_t *users = json_array();
        vn_store_foreach_user(vn_server_store(), *h, PENDING_STORE, collect_user, users);
        size_t i;
        const json_t *u;
        json_array_foreach(users, i, u)
        {
            const char *user = json_string_value(u);
            json_t *items = pending_list(*h, user);
            size_t j;
            const json_t *item;
            json_array_foreach(items, j, item)
            {
                if (json_integer_value(json_object_get(item, "created")) > deadline)
                    break;
                if (strcmp(json_string_value(json_object_get(item, "kind")), "sign") == 0)
                    consent_answer(*h, user, item, false);
                else
                    presentation_answer(*h, user, item, NULL, NULL, 0);
            }
            json_decref(items);
        }
        json_decref(users);
    }
}
