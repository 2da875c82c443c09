/*
 * store_pg_schema.c - the PostgreSQL backend's tables, their versioned
 * migrations and the statements that run on them.
 *
 * vestnikd (at start) and `vestnikctl migrate` bring the schema to the
 * newest version this build knows: each migration runs once, in order, in
 * one transaction with its row in vn_schema_migrations, under an advisory
 * lock, so several nodes starting at once on one database take turns and
 * the second finds nothing left to do. A database newer than the build is
 * refused rather than written with an older idea of the tables. A new
 * migration is appended to `migrations`, never edited once released.
 *
 * Names are text COLLATE "C" (byte order, as LMDB's keys sort, and the
 * order foreach promises); values and archive items are bytea. An item's
 * with is kept whole and as its bare JID; the "with" indexes are on their
 * md5 so that a JID of any length (RFC 7622 allows 3071 bytes) fits a
 * btree entry, and the queries compare the text itself as well.
 * vn_archives holds each archive's id counter (never lowered, so ids are
 * not reused after deletions) and its item count.
 */
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

#define MIGRATION_LOCK 0x7665737473746f72LL /* "veststor" */

typedef struct migration {
    int version;
    const char *description;
    const char *sql;
} migration;

static const migration migrations[] = {
    {1, "documents, archive items and archive counters",
     "CREATE TABLE vn_docs ("
     " host text COLLATE \"C\" NOT NULL, username text COLLATE \"C\" NOT NULL,"
     " store text COLLATE \"C\" NOT NULL, key text COLLATE \"C\" NOT NULL,"
     " value bytea NOT NULL,"
     " PRIMARY KEY (host, username, store, key));"
     "CREATE INDEX vn_docs_by_store ON vn_docs (host, store, username);"
     "CREATE TABLE vn_archives ("
     " host text COLLATE \"C\" NOT NULL, username text COLLATE \"C\" NOT NULL,"
     " archive text COLLATE \"C\" NOT NULL,"
     " last_id bigint NOT NULL, item_count bigint NOT NULL,"
     " PRIMARY KEY (host, username, archive));"
     "CREATE TABLE vn_items ("
     " host text COLLATE \"C\" NOT NULL, username text COLLATE \"C\" NOT NULL,"
     " archive text COLLATE \"C\" NOT NULL, id bigint NOT NULL, ts_us bigint NOT NULL,"
     " with_jid text COLLATE \"C\" NOT NULL, with_bare text COLLATE \"C\" NOT NULL,"
     " data bytea NOT NULL,"
     " PRIMARY KEY (host, username, archive, id));"
     "CREATE INDEX vn_items_by_bare ON vn_items (host, username, archive, md5(with_bare), id);"
     "CREATE INDEX vn_items_by_full ON vn_items (host, username, archive, md5(with_jid), id)"
     " WHERE with_jid <> with_bare;"},
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

#define ARCHIVE_IS " host = $1 AND username = $2 AND archive = $3"
#define IN_RANGE " AND id BETWEEN $4 AND $5"
#define WITH_BARE " AND md5(with_bare) = md5($6) AND with_bare = $6"
#define WITH_FULL " AND with_jid <> with_bare AND md5(with_jid) = md5($6) AND with_jid = $6"
#define PAGE_OF "SELECT id, ts_us, with_jid, data FROM vn_items WHERE" ARCHIVE_IS IN_RANGE

const pg_statement pg_statements[PG_STMT_COUNT] = {
    [PG_DOC_GET] = {"vn_doc_get",
                    "SELECT value FROM vn_docs"
                    " WHERE host = $1 AND username = $2 AND store = $3 AND key = $4",
                    4},
    [PG_DOC_LIST] = {"vn_doc_list",
                     "SELECT key, value FROM vn_docs"
                     " WHERE host = $1 AND username = $2 AND store = $3 AND key >= $4"
                     " ORDER BY key LIMIT $5",
                     5},
    [PG_DOC_USERS] = {"vn_doc_users",
                      "SELECT DISTINCT username FROM vn_docs"
                      " WHERE host = $1 AND store = $2 AND username >= $3"
                      " ORDER BY username LIMIT $4",
                      4},
    [PG_DOC_PUT] = {"vn_doc_put",
                    "INSERT INTO vn_docs (host, username, store, key, value)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (host, username, store, key)"
                    " DO UPDATE SET value = EXCLUDED.value",
                    5},
    [PG_DOC_DELETE] = {"vn_doc_delete",
                       "DELETE FROM vn_docs"
                       " WHERE host = $1 AND username = $2 AND store = $3 AND key = $4",
                       4},
    [PG_DOC_DELETE_USER] = {"vn_doc_delete_user",
                            "DELETE FROM vn_docs WHERE host = $1 AND username = $2", 2},
    [PG_ARC_LAST_ID] = {"vn_arc_last_id", "SELECT last_id FROM vn_archives WHERE" ARCHIVE_IS, 3},
    [PG_ARC_COUNT_ALL] = {"vn_arc_count_all", "SELECT item_count FROM vn_archives WHERE" ARCHIVE_IS,
                          3},
    [PG_ARC_COUNT] = {"vn_arc_count", "SELECT count(*) FROM vn_items WHERE" ARCHIVE_IS IN_RANGE, 5},
    [PG_ARC_COUNT_BARE] = {"vn_arc_count_bare",
                           "SELECT count(*) FROM vn_items WHERE" ARCHIVE_IS IN_RANGE WITH_BARE, 6},
    [PG_ARC_COUNT_FULL] = {"vn_arc_count_full",
                           "SELECT count(*) FROM vn_items WHERE" ARCHIVE_IS IN_RANGE WITH_FULL, 6},
    [PG_ARC_PAGE_FWD] = {"vn_arc_page_fwd", PAGE_OF " ORDER BY id LIMIT $6", 6},
    [PG_ARC_PAGE_REV] = {"vn_arc_page_rev", PAGE_OF " ORDER BY id DESC LIMIT $6", 6},
    [PG_ARC_PAGE_BARE_FWD] = {"vn_arc_page_bare_fwd", PAGE_OF WITH_BARE " ORDER BY id LIMIT $7", 7},
    [PG_ARC_PAGE_BARE_REV] = {"vn_arc_page_bare_rev",
                              PAGE_OF WITH_BARE " ORDER BY id DESC LIMIT $7", 7},
    [PG_ARC_PAGE_FULL_FWD] = {"vn_arc_page_full_fwd", PAGE_OF WITH_FULL " ORDER BY id LIMIT $7", 7},
    [PG_ARC_PAGE_FULL_REV] = {"vn_arc_page_full_rev",
                              PAGE_OF WITH_FULL " ORDER BY id DESC LIMIT $7", 7},
    [PG_ARC_APPEND] = {"vn_arc_append",
                       "INSERT INTO vn_items"
                       " (host, username, archive, id, ts_us, with_jid, with_bare, data)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                       8},
    [PG_ARC_DELETE_ID] = {"vn_arc_delete_id",
                          "WITH d AS (DELETE FROM vn_items WHERE" ARCHIVE_IS
                          " AND id = $4 RETURNING 1)"
                          " UPDATE vn_archives SET item_count = item_count - 1"
                          " WHERE" ARCHIVE_IS " AND EXISTS (SELECT 1 FROM d)",
                          4},
    [PG_ARC_DELETE_RANGE] = {"vn_arc_delete_range",
                             "WITH d AS (DELETE FROM vn_items WHERE" ARCHIVE_IS IN_RANGE
                             " RETURNING 1)"
                             " UPDATE vn_archives"
                             " SET item_count = GREATEST(item_count - (SELECT count(*) FROM d), 0)"
                             " WHERE" ARCHIVE_IS " AND EXISTS (SELECT 1 FROM d)",
                             5},
    [PG_ARC_DELETE_USER_ITEMS] = {"vn_arc_delete_user_items",
                                  "DELETE FROM vn_items WHERE host = $1 AND username = $2", 2},
    [PG_ARC_DELETE_USER_META] = {"vn_arc_delete_user_meta",
                                 "DELETE FROM vn_archives WHERE host = $1 AND username = $2", 2},
    /* Locks an archive's counter row (made if missing) for the batch. */
    [PG_ARC_LOCK] = {"vn_arc_lock",
                     "INSERT INTO vn_archives AS a (host, username, archive, last_id, item_count)"
                     " VALUES ($1, $2, $3, 0, 0) ON CONFLICT (host, username, archive)"
                     " DO UPDATE SET last_id = a.last_id RETURNING last_id",
                     3},
    [PG_ARC_COUNTER] =
        {"vn_arc_counter",
         "INSERT INTO vn_archives AS a (host, username, archive, last_id, item_count)"
         " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (host, username, archive)"
         " DO UPDATE SET last_id = GREATEST(a.last_id, EXCLUDED.last_id),"
         " item_count = a.item_count + EXCLUDED.item_count",
         5},
};

static bool run(PGconn *conn, const char *sql, vn_buf *err)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(r);
    bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;

    if (!ok)
        vn_buf_printf(err, "PostgreSQL schema: %s", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static int current_version(PGconn *conn, vn_buf *err)
{
    PGresult *r = PQexec(conn, "SELECT coalesce(max(version), 0) FROM vn_schema_migrations");
    int version = -1;

    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        version = atoi(PQgetvalue(r, 0, 0));
    else
        vn_buf_printf(err, "PostgreSQL schema: %s", PQresultErrorMessage(r));
    PQclear(r);
    return version;
}

static bool record(PGconn *conn, const migration *m, vn_buf *err)
{
    char version[16];
    const char *values[] = {version, m->description};

    snprintf(version, sizeof version, "%d", m->version);
    PGresult *r = PQexecParams(
        conn, "INSERT INTO vn_schema_migrations (version, description) VALUES ($1, $2)", 2, NULL,
        values, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        vn_buf_printf(err, "PostgreSQL schema: %s", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

int pg_schema_migrate(PGconn *conn, vn_buf *err)
{
    char lock[96];
    int latest = migrations[N_MIGRATIONS - 1].version;

    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", MIGRATION_LOCK);
    if (!run(conn, "BEGIN", err))
        return -1;
    bool ok = run(conn, lock, err) &&
              run(conn,
                  "CREATE TABLE IF NOT EXISTS vn_schema_migrations (version integer PRIMARY KEY,"
                  " description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                  err);
    int from = ok ? current_version(conn, err) : -1;
    if (from > latest) {
        vn_buf_printf(err,
                      "the PostgreSQL schema is at version %d, newer than this vestnik knows "
                      "(%d): run a newer vestnik",
                      from, latest);
        from = -1;
    }
    for (size_t i = 0; from >= 0 && i < N_MIGRATIONS; i++) {
        const migration *m = &migrations[i];
        if (m->version > from && !(run(conn, m->sql, err) && record(conn, m, err)))
            from = -1;
    }
    if (from < 0 || !run(conn, "COMMIT", err)) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    if (from == latest)
        vn_buf_printf(err, "PostgreSQL schema at version %d", latest);
    else
        vn_buf_printf(err, "PostgreSQL schema migrated from version %d to %d", from, latest);
    return 0;
}
