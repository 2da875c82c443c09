/*
 * store_pg_docs.c - documents in PostgreSQL: reads on the read connection,
 * writes queued in the writer's pipeline (store_pg_conn.c).
 *
 * foreach and foreach_user read in pages of PAGE rows with a keyset bound
 * (key >= the last one seen, which is then skipped), so a large store is
 * never one huge result and a callback that stops early stops the reading;
 * callbacks run between pages, with the connection free for the store
 * calls they make.
 */
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

#define PAGE 500

int pg_doc_get(void *impl, const char *host, const char *user, const char *store, const char *key,
               vn_buf *out)
{
    pg_params p = {0};

    vn_buf_reset(out);
    if (!pg_key_fits("get", 0, host, store, user, key))
        return VN_STORE_ERROR;
    pg_param_text(&p, host);
    pg_param_text(&p, user);
    pg_param_text(&p, store);
    pg_param_text(&p, key);
    PGresult *r = pg_read(impl, PG_DOC_GET, &p, "get");
    if (!r)
        return VN_STORE_ERROR;
    int rc = PQntuples(r) ? VN_STORE_OK : VN_STORE_NOT_FOUND;
    if (rc == VN_STORE_OK)
        vn_buf_append(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
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
