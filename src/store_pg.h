/*
 * store_pg.h - the PostgreSQL backend's private parts, shared by its files:
 * store_pg_conn.c (connections, statements, the read snapshot, apply),
 * store_pg_schema.c (versioned migrations), store_pg_docs.c (documents),
 * store_pg_archive.c (archives) and store_pg_dump.c (export).
 *
 * Two connections per process: the writer thread's, which runs each batch
 * as one pipelined implicit transaction, and the loop's, which answers the
 * synchronous reads of the interface. Their statements are prepared once
 * per connection from one table (pg_statement), named by pg_stmt.
 */
#ifndef VESTNIK_STORE_PG_H
#define VESTNIK_STORE_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "store_backend.h"

/* The same limit as LMDB's, counted the same way, so that whatever one
 * backend holds can be exported into the other. */
#define PG_KEY_CAP 511

typedef enum pg_stmt {
    PG_DOC_GET,
    PG_DOC_LIST,  /* one user's documents of a store, key order, keyset pages */
    PG_DOC_USERS, /* users with documents in a store, keyset pages */
    PG_DOC_PUT,
    PG_DOC_DELETE,
    PG_DOC_DELETE_USER,
    PG_ARC_LAST_ID,
    PG_ARC_COUNT_ALL,
    PG_ARC_COUNT,
    PG_ARC_COUNT_BARE,
    PG_ARC_COUNT_FULL,
    PG_ARC_PAGE_FWD, /* items in an id range, a page at a time */
    PG_ARC_PAGE_REV,
    PG_ARC_PAGE_BARE_FWD,
    PG_ARC_PAGE_BARE_REV,
    PG_ARC_PAGE_FULL_FWD,
    PG_ARC_PAGE_FULL_REV,
    PG_ARC_APPEND,
    PG_ARC_DELETE_ID,
    PG_ARC_DELETE_RANGE,
    PG_ARC_DELETE_USER_ITEMS,
    PG_ARC_DELETE_USER_META,
    PG_ARC_LOCK,
    PG_ARC_COUNTER,
    PG_STMT_COUNT
} pg_stmt;

typedef struct pg_statement {
    const char *name;
    const char *sql;
    int n_params;
} pg_statement;

/* store_pg_schema.c, beside the tables they use. */
extern const pg_statement pg_statements[PG_STMT_COUNT];

typedef struct pg_store {
    char *conninfo;
    unsigned read_timeout_ms, write_timeout_ms, snapshot_max_age_ms;

    /* The loop's (or, without a loop, the caller's) reads. */
    PGconn *rd;
    bool pinned;       /* grouped mode: reads keep to one snapshot */
    bool in_snapshot;  /* rd is inside its REPEATABLE READ transaction */
    uint64_t taken_ms; /* when the snapshot was taken */
    uv_timer_t *timer; /* renews an old snapshot when the loop is idle */

    /* Documents read in the current snapshot (store_pg_docs.c), found or
     * not: the snapshot answers the same for as long as it lives, so the
     * cache is exact, and emptied whenever a new snapshot is taken. */
    struct pg_cached_doc *cache;
    size_t cache_bytes, cache_limit;

    /* The writer's. */
    PGconn *wr;

    /* A batch that may have committed since the last refresh: the loop
     * must not take a new snapshot then (it would see writes the pending
     * view still holds). Under mu, which the writer takes before it
     * commits and the loop while it renews. */
    pthread_mutex_t mu;
    bool unrefreshed;
} pg_store;

/* A statement's parameters, built up one by one (text, or binary for
 * bytea). Values are borrowed: they must outlive the execution. */
typedef struct pg_params {
    const char *values[8];
    int lengths[8];
    int formats[8];
    char ints[8][24]; /* text of the integer parameters */
    int n;
} pg_params;

/* Whether names (NULL-terminated list of up to four, plus extra bytes)
 * fit PG_KEY_CAP as LMDB counts them; logs why not. */
bool pg_key_fits(const char *what, size_t extra, const char *a, const char *b, const char *c,
                 const char *d);

void pg_param_text(pg_params *p, const char *s);
void pg_param_bytes(pg_params *p, const void *data, size_t len);
void pg_param_int(pg_params *p, int64_t v);

/* Runs a prepared statement on the read connection and returns its result
 * (binary columns) or NULL after logging why (the connection is repaired
 * for the next call). */
PGresult *pg_read(pg_store *st, pg_stmt stmt, const pg_params *p, const char *what);
/* Renews the snapshot first if it is too old (what pg_read does). */
void pg_before_read(pg_store *st);
/* A binary int8 or int4 column of a result. */
int64_t pg_get_int(const PGresult *r, int row, int col);

/* The writer's pipeline: queue a prepared statement (false: not sent);
 * send what is queued without blocking on a full socket; take the result
 * of the next statement (NULL, with the server's message in error, if it
 * failed). */
bool pg_send(PGconn *conn, pg_stmt stmt, const pg_params *p);
bool pg_flush(PGconn *conn);
PGresult *pg_take(PGconn *conn, vn_buf *error);

/* store_pg_schema.c: creates or upgrades the schema (under an advisory lock,
 * so nodes starting together take turns). 0, or -1 with a message. */
int pg_schema_migrate(PGconn *conn, vn_buf *err);

/* store_pg_docs.c */
int pg_doc_get(void *impl, const char *host, const char *user, const char *store, const char *key,
               vn_buf *out);
void pg_doc_cache_clear(pg_store *st);
int pg_doc_foreach(void *impl, const char *host, const char *user, const char *store,
                   vn_store_key_cb cb, void *ud);
int pg_doc_foreach_user(void *impl, const char *host, const char *store, vn_store_user_cb cb,
                        void *ud);
/* Queue the statements of one write: how many results it will return,
 * or -1. */
int pg_doc_send(PGconn *conn, const vn_store_op *op);

/* store_pg_archive.c */
int pg_archive_query(void *impl, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete);
int pg_archive_count(void *impl, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, size_t *count);
int pg_archive_last_id(void *impl, const char *host, const char *user, const char *archive,
                       uint64_t *id);
/* A batch's archive counters: begin locks the counter row of each archive
 * ops append to and reads its last id (a round trip inside the batch's
 * transaction); send assigns ids from it (a synchronous append's into
 * op->id) and queues the items; send_counters queues one update per
 * archive for the appends since the last call (send calls it before a
 * deletion). NULL / -1 on failure. */
typedef struct pg_batch pg_batch;
pg_batch *pg_batch_begin(PGconn *conn, const vn_store_op *ops, vn_buf *error);
int pg_archive_send(PGconn *conn, pg_batch *b, vn_store_op *op);
int pg_batch_send_counters(PGconn *conn, pg_batch *b);
void pg_batch_free(pg_batch *b);

/* store_pg_dump.c */
int pg_dump(void *impl, const vn_store_dump_cbs *cbs, void *ud);

#endif
