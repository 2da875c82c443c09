/*
 * store_pg_docs.c - documents in PostgreSQL: reads on the read connection,
 * writes queued in the writer's pipeline (store_pg_conn.c).
 *
 * foreach and foreach_user read in pages of PAGE rows with a keyset bound
 * (key >= the last one seen, which is then skipped), so a large store is
 * never one huge result and a callback that stops early stops the reading;
 * callbacks run between pages, with the connection free for the store
 * calls they make.
 *
 * get answers from the snapshot's cache when it can: a server reads the
 * same few documents (MAM preferences, blocking lists, rosters' items)
 * for every stanza, and within one snapshot they cannot change. Entries
 * (found or not) are dropped all at once when the snapshot is renewed, or
 * when they pass cache_limit bytes.
 */
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "store_pg.h"

#define PAGE 500

typedef struct pg_cached_doc {
    char *k; /* host \0 user \0 store \0 key */
    size_t klen;
    bool found;
    void *value;
    size_t len;
    UT_hash_handle hh;
} pg_cached_doc;

void pg_doc_cache_clear(pg_store *st)
{
    pg_cached_doc *d, *tmp;

    HASH_ITER(hh, st->cache, d, tmp)
    {
        HASH_DEL(st->cache, d);
        free(d->k);
        free(d->value);
        free(d);
    }
    st->cache_bytes = 0;
}

static char *doc_key(const char *host, const char *user, const char *store, const char *key,
                     size_t *len)
{
    vn_buf k;

    vn_buf_init(&k);
    vn_buf_append(&k, host, strlen(host) + 1);
    vn_buf_append(&k, user, strlen(user) + 1);
    vn_buf_append(&k, store, strlen(store) + 1);
    vn_buf_append(&k, key, strlen(key));
    return vn_buf_steal(&k, len);
}

static void cache_put(pg_store *st, char *k, size_t klen, bool found, const void *value, size_t len)
{
    size_t cost = sizeof(pg_cached_doc) + klen + len;

    if (cost > st->cache_limit / 4) {
        free(k);
        return;
    }
    if (st->cache_bytes + cost > st->cache_limit)
        pg_doc_cache_clear(st);
    pg_cached_doc *d = vn_alloc(sizeof *d);
    d->k = k;
    d->klen = klen;
    d->found = found;
    if (found && len) {
        d->value = vn_alloc(len);
        memcpy(d->value, value, len);
    }
    d->len = len;
    HASH_ADD_KEYPTR(hh, st->cache, d->k, d->klen, d);
    st->cache_bytes += cost;
}

int pg_doc_get(void *impl, const char *host, const char *user, const char *store, const char *key,
               vn_buf *out)
{
    pg_store *st = impl;
    pg_params p = {0};
    char *k = NULL;
    size_t klen = 0;

    vn_buf_reset(out);
    if (!pg_key_fits("get", 0, host, store, user, key))
        return VN_STORE_ERROR;
    pg_before_read(st);
    if (st->in_snapshot && st->cache_limit) {
        pg_cached_doc *d;
        k = doc_key(host, user, store, key, &klen);
        HASH_FIND(hh, st->cache, k, klen, d);
        if (d) {
            free(k);
            if (d->found)
                vn_buf_append(out, d->value ? d->value : "", d->len);
            return d->found ? VN_STORE_OK : VN_STORE_NOT_FOUND;
        }
    }
    pg_param_text(&p, host);
    pg_param_text(&p, user);
    pg_param_text(&p, store);
    pg_param_text(&p, key);
    PGresult *r = pg_read(impl, PG_DOC_GET, &p, "get");
    if (!r) {
        free(k);
        return VN_STORE_ERROR;
    }
    int rc = PQntuples(r) ? VN_STORE_OK : VN_STORE_NOT_FOUND;
    if (rc == VN_STORE_OK)
        vn_buf_append(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    /* Still the snapshot it was looked up in (a failed read renews it). */
    if (k && st->in_snapshot)
        cache_put(st, k, klen, rc == VN_STORE_OK, out->data, out->len);
    else
        free(k);
    return rc;
}

int pg_doc_foreach(void *impl, const char *host, const char *user, const char *store,
                   vn_store_key_cb cb, void *ud)
{
    char *last = NULL;
    bool go = true;
    int rc = VN_STORE_OK;

    if (!pg_key_fits("foreach", 0, host, store, user, NULL))
        return VN_STORE_ERROR;
    while (go) {
        pg_params p = {0};
        pg_param_text(&p, host);
        pg_param_text(&p, user);
        pg_param_text(&p, store);
        pg_param_text(&p, last ? last : "");
        pg_param_int(&p, PAGE + 1);
        PGresult *r = pg_read(impl, PG_DOC_LIST, &p, "foreach");
        if (!r) {
            rc = VN_STORE_ERROR;
            break;
        }
        int n = PQntuples(r);
        int fresh = 0;
        for (int i = 0; i < n && go; i++) {
            const char *key = PQgetvalue(r, i, 0);
            if (last && strcmp(key, last) == 0)
                continue;
            fresh++;
            go = cb(key, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), ud);
        }
        if (n > 0) {
            free(last);
            last = vn_strdup(PQgetvalue(r, n - 1, 0));
        }
        go = go && n == PAGE + 1 && fresh > 0;
        PQclear(r);
    }
    free(last);
    return rc;
}

int pg_doc_foreach_user(void *impl, const char *host, const char *store, vn_store_user_cb cb,
                        void *ud)
{
    char *last = NULL;
    bool go = true;
    int rc = VN_STORE_OK;

    while (go) {
        pg_params p = {0};
        pg_param_text(&p, host);
        pg_param_text(&p, store);
        pg_param_text(&p, last ? last : "");
        pg_param_int(&p, PAGE + 1);
        PGresult *r = pg_read(impl, PG_DOC_USERS, &p, "foreach_user");
        if (!r) {
            rc = VN_STORE_ERROR;
            break;
        }
        int n = PQntuples(r);
        int fresh = 0;
        for (int i = 0; i < n && go; i++) {
            const char *name = PQgetvalue(r, i, 0);
            if (last && strcmp(name, last) == 0)
                continue;
            fresh++;
            go = cb(name, ud);
        }
        if (n > 0) {
            free(last);
            last = vn_strdup(PQgetvalue(r, n - 1, 0));
        }
        go = go && n == PAGE + 1 && fresh > 0;
        PQclear(r);
    }
    free(last);
    return rc;
}

int pg_doc_send(PGconn *conn, const vn_store_op *op)
{
    pg_params p = {0};

    pg_param_text(&p, op->host);
    pg_param_text(&p, op->user);
    switch (op->kind) {
    case VN_OP_PUT:
        pg_param_text(&p, op->name);
        pg_param_text(&p, op->key);
        pg_param_bytes(&p, op->data, op->len);
        return pg_send(conn, PG_DOC_PUT, &p) ? 1 : -1;
    case VN_OP_DELETE:
        pg_param_text(&p, op->name);
        pg_param_text(&p, op->key);
        return pg_send(conn, PG_DOC_DELETE, &p) ? 1 : -1;
    case VN_OP_DELETE_USER:
        /* A user's archives go with the documents, in the same transaction. */
        return pg_send(conn, PG_DOC_DELETE_USER, &p) &&
                       pg_send(conn, PG_ARC_DELETE_USER_ITEMS, &p) &&
                       pg_send(conn, PG_ARC_DELETE_USER_META, &p)
                   ? 3
                   : -1;
    default: return -1;
    }
}
