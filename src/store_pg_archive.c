/*
 * store_pg_archive.c - archives in PostgreSQL: paged queries and counts on
 * the read connection, appends and deletions queued in the writer's
 * pipeline (store_pg_conn.c).
 *
 * A query reads pages in id order (or reverse), each bounded by the last
 * id seen, the first page just over the query's limit so that a MAM page
 * is one round trip that also tells whether the result is complete; the
 * pending view asks without a limit and stops by its callback, which the
 * growing pages serve without reading the whole archive. Ids are bigint:
 * bounds past INT64_MAX are clamped (no id gets there: ids are
 * microsecond timestamps).
 */
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"
#include "vestnik/log.h"

#define FIRST_PAGE 64
#define MAX_PAGE 1024

typedef enum { WITH_ANY, WITH_BARE, WITH_FULL } with_kind;

static with_kind with_of(const vn_archive_query *q)
{
    if (!q->with || !q->with[0])
        return WITH_ANY;
    return strchr(q->with, '/') ? WITH_FULL : WITH_BARE;
}

/* The query's id range, as LMDB computes it; false if empty. */
static bool bounds(const vn_archive_query *q, int64_t *lo, int64_t *hi)
{
    uint64_t l = 1, h = UINT64_MAX;

    if (q->start_us > 0 && (uint64_t)q->start_us > l)
        l = (uint64_t)q->start_us;
    if (q->after_id == UINT64_MAX)
        return false;
    if (q->after_id >= l)
        l = q->after_id + 1;
    if (q->end_us > 0 && (uint64_t)q->end_us < h)
        h = (uint64_t)q->end_us;
    if (q->before_id && q->before_id <= h)
        h = q->before_id - 1;
    if (h > INT64_MAX)
        h = INT64_MAX;
    if (l > h)
        return false;
    *lo = (int64_t)l;
    *hi = (int64_t)h;
    return true;
}

static void archive_params(pg_params *p, const char *host, const char *user, const char *archive)
{
    pg_param_text(p, host);
    pg_param_text(p, user);
    pg_param_text(p, archive);
}

static PGresult *read_page(void *impl, const char *host, const char *user, const char *archive,
                           const vn_archive_query *q, int64_t lo, int64_t hi, size_t size)
{
    static const pg_stmt stmts[3][2] = {{PG_ARC_PAGE_FWD, PG_ARC_PAGE_REV},
                                        {PG_ARC_PAGE_BARE_FWD, PG_ARC_PAGE_BARE_REV},
                                        {PG_ARC_PAGE_FULL_FWD, PG_ARC_PAGE_FULL_REV}};
    with_kind w = with_of(q);
    pg_params p = {0};

    archive_params(&p, host, user, archive);
    pg_param_int(&p, lo);
    pg_param_int(&p, hi);
    if (w != WITH_ANY)
        pg_param_text(&p, q->with);
    pg_param_int(&p, (int64_t)size);
    return pg_read(impl, stmts[w][q->reverse], &p, "query");
}

int pg_archive_query(void *impl, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete)
{
    int64_t lo, hi;
    size_t delivered = 0;
    size_t size = q->limit && q->limit < MAX_PAGE ? q->limit + 1 : FIRST_PAGE;
    bool stopped = false, more = false, done = !bounds(q, &lo, &hi);

    if (!pg_key_fits("query", 8, host, user, archive, NULL))
        return VN_STORE_ERROR;
    while (!done) {
        PGresult *r = read_page(impl, host, user, archive, q, lo, hi, size);
        if (!r)
            return VN_STORE_ERROR;
        int n = PQntuples(r);
        for (int i = 0; i < n && !done; i++) {
            if (stopped || (q->limit && delivered == q->limit)) {
                more = done = true;
                break;
            }
            vn_archive_item item = {
                .id = (uint64_t)pg_get_int(r, i, 0),
                .ts_us = pg_get_int(r, i, 1),
                .with = PQgetvalue(r, i, 2),
                .data = PQgetvalue(r, i, 3),
                .len = (size_t)PQgetlength(r, i, 3),
            };
            stopped = !cb(&item, ud);
            delivered++;
            if (q->reverse)
                hi = (int64_t)item.id - 1;
            else
                lo = (int64_t)item.id + 1;
        }
        if ((size_t)n < size || lo > hi)
            done = true;
        PQclear(r);
        if (size < MAX_PAGE)
            size *= 2;
    }
    if (complete)
        *complete = !more;
    return VN_STORE_OK;
}

static int count_of(void *impl, pg_stmt stmt, const pg_params *p, size_t *count)
{
    PGresult *r = pg_read(impl, stmt, p, "count");

    if (!r)
        return VN_STORE_ERROR;
    int64_t n = PQntuples(r) ? pg_get_int(r, 0, 0) : 0;
    *count = n > 0 ? (size_t)n : 0;
    PQclear(r);
    return VN_STORE_OK;
}

int pg_archive_count(void *impl, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, size_t *count)
{
    int64_t lo, hi;
    with_kind w = with_of(q);
    pg_params p = {0};

    *count = 0;
    if (!pg_key_fits("count", 8, host, user, archive, NULL))
        return VN_STORE_ERROR;
    if (!bounds(q, &lo, &hi))
        return VN_STORE_OK;
    archive_params(&p, host, user, archive);
    if (w == WITH_ANY && lo == 1 && hi == INT64_MAX)
        return count_of(impl, PG_ARC_COUNT_ALL, &p, count);
    pg_param_int(&p, lo);
    pg_param_int(&p, hi);
    if (w != WITH_ANY)
        pg_param_text(&p, q->with);
    return count_of(impl,
                    w == WITH_ANY    ? PG_ARC_COUNT
                    : w == WITH_BARE ? PG_ARC_COUNT_BARE
                                     : PG_ARC_COUNT_FULL,
                    &p, count);
}

int pg_archive_last_id(void *impl, const char *host, const char *user, const char *archive,
                       uint64_t *id)
{
    pg_params p = {0};

    *id = 0;
    if (!pg_key_fits("append", 8, host, user, archive, NULL))
        return VN_STORE_ERROR;
    archive_params(&p, host, user, archive);
    PGresult *r = pg_read(impl, PG_ARC_LAST_ID, &p, "append");
    if (!r)
        return VN_STORE_ERROR;
    if (PQntuples(r))
        *id = (uint64_t)pg_get_int(r, 0, 0);
    PQclear(r);
    return VN_STORE_OK;
}

int pg_archive_send(PGconn *conn, const vn_store_op *op)
{
    pg_params p = {0};

    archive_params(&p, op->host, op->user, op->name);
    switch (op->kind) {
    case VN_OP_APPEND: {
        if (op->id > INT64_MAX) {
            vn_log_error("store: append: archive %s has used up its ids", op->name);
            return -1;
        }
        const char *slash = strchr(op->key, '/');
        char *bare = slash ? vn_strndup(op->key, (size_t)(slash - op->key)) : NULL;
        pg_param_int(&p, op->id ? (int64_t)op->id : op->ts_us > 1 ? op->ts_us : 1);
        pg_param_int(&p, op->ts_us);
        pg_param_text(&p, op->key);
        pg_param_text(&p, bare ? bare : op->key);
        pg_param_bytes(&p, op->data, op->len);
        bool sent = pg_send(conn, PG_ARC_APPEND, &p); /* libpq copies the parameters */
        free(bare);
        return sent ? 1 : -1;
    }
    case VN_OP_DELETE_ID:
        if (op->id == 0 || op->id > INT64_MAX)
            return 0;
        pg_param_int(&p, (int64_t)op->id);
        return pg_send(conn, PG_ARC_DELETE_ID, &p) ? 1 : -1;
    case VN_OP_DELETE_BEFORE:
        pg_param_int(&p, 1);
        pg_param_int(&p, op->before_us == 0 ? INT64_MAX : op->before_us - 1);
        return pg_send(conn, PG_ARC_DELETE_RANGE, &p) ? 1 : -1;
    case VN_OP_RAISE_LAST_ID:
        if (op->id > INT64_MAX)
            return -1;
        pg_param_int(&p, (int64_t)op->id);
        return pg_send(conn, PG_ARC_RAISE_LAST_ID, &p) ? 1 : -1;
    default: return -1;
    }
}
