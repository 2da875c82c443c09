/*
 * store_pg_dump.c - everything a PostgreSQL store holds, for vestnikctl
 * export: one REPEATABLE READ transaction on the read connection, so the
 * dump is one consistent state even while vestnikd nodes keep writing,
 * read through cursors a page at a time.
 */
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"
#include "vestnik/log.h"

#define FETCH "FETCH 500 FROM vn_dump"

static bool exec_ok(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok)
        vn_log_error("store: dump: %s", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

/* The next page of the open cursor (binary columns), NULL on error. */
static PGresult *fetch(PGconn *conn)
{
    PGresult *r = PQexecParams(conn, FETCH, 0, NULL, NULL, NULL, NULL, 1);

    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    vn_log_error("store: dump: %s", PQresultErrorMessage(r));
    PQclear(r);
    return NULL;
}

static bool dump_docs(PGconn *conn, const vn_store_dump_cbs *cbs, void *ud, bool *go)
{
    if (!exec_ok(conn, "DECLARE vn_dump NO SCROLL CURSOR FOR SELECT host, username, store, key,"
                       " value FROM vn_docs ORDER BY host, store, username, key"))
        return false;
    for (;;) {
        PGresult *r = fetch(conn);
        if (!r)
            return false;
        int n = PQntuples(r);
        for (int i = 0; i < n && *go; i++)
            *go = cbs->doc(ud, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                           PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), (size_t)PQgetlength(r, i, 4));
        PQclear(r);
        if (!n || !*go)
            return exec_ok(conn, "CLOSE vn_dump");
    }
}

typedef struct item_relay {
    const vn_store_dump_cbs *cbs;
    void *ud;
    bool *go;
} item_relay;

static bool relay_item(const vn_archive_item *item, void *ud)
{
    item_relay *relay = ud;
    *relay->go = relay->cbs->item(relay->ud, item);
    return *relay->go;
}

/* Archives are few next to their items: their list is read whole, then
 * each archive's items by the ordinary paged query. */
static bool dump_archives(pg_store *st, const vn_store_dump_cbs *cbs, void *ud, bool *go)
{
    PGresult *list = PQexecParams(st->rd,
                                  "SELECT host, username, archive, last_id FROM vn_archives"
                                  " ORDER BY host, username, archive",
                                  0, NULL, NULL, NULL, NULL, 1);
    bool ok = PQresultStatus(list) == PGRES_TUPLES_OK;

    if (!ok)
        vn_log_error("store: dump: %s", PQresultErrorMessage(list));
    item_relay relay = {.cbs = cbs, .ud = ud, .go = go};
    for (int i = 0; ok && *go && i < PQntuples(list); i++) {
        const char *host = PQgetvalue(list, i, 0), *user = PQgetvalue(list, i, 1);
        const char *archive = PQgetvalue(list, i, 2);
        *go = cbs->archive(ud, host, user, archive, (uint64_t)pg_get_int(list, i, 3));
        if (*go)
            ok = pg_archive_query(st, host, user, archive, &(vn_archive_query){0}, relay_item,
                                  &relay, NULL) == VN_STORE_OK;
    }
    PQclear(list);
    return ok;
}

int pg_dump(void *impl, const vn_store_dump_cbs *cbs, void *ud)
{
    pg_store *st = impl;
    bool go = true;

    if (!st->rd || st->pinned) {
        vn_log_error("store: dump: not on a store in synchronous mode");
        return VN_STORE_ERROR;
    }
    bool ok = exec_ok(st->rd, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") &&
              dump_docs(st->rd, cbs, ud, &go) && (!go || dump_archives(st, cbs, ud, &go));
    PQclear(PQexec(st->rd, ok ? "COMMIT" : "ROLLBACK"));
    return ok ? VN_STORE_OK : VN_STORE_ERROR;
}
