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
 *
 * Writes run in the writer's pipeline. A batch locks the counter row of
 * each archive it appends to and reads its last id first, assigns the ids
 * here, inserts the items with them and moves each counter once (or once
 * per stretch between deletions, whose item counts must include the
 * appends before them): updating the counter per item would leave one row
 * version per append for the next append to walk past.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

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

/* ---- writes ---- */

typedef struct counter {
    char *k; /* host \0 user \0 archive */
    size_t klen;
    const char *host, *user, *archive; /* of the first op naming it */
    uint64_t last_id;
    int64_t added; /* items appended since the counter was last sent */
    bool dirty;
    UT_hash_handle hh;
} counter;

struct pg_batch {
    counter *counters;
};

static char *counter_key(const char *host, const char *user, const char *archive, size_t *len)
{
    size_t h = strlen(host) + 1, u = strlen(user) + 1, a = archive ? strlen(archive) : 0;
    char *k = vn_alloc(h + u + a + 1);

    memcpy(k, host, h);
    memcpy(k + h, user, u);
    if (archive)
        memcpy(k + h + u, archive, a);
    *len = h + u + a;
    return k;
}

static counter *find_counter(pg_batch *b, const vn_store_op *op)
{
    size_t len;
    char *k = counter_key(op->host, op->user, op->name, &len);
    counter *c;

    HASH_FIND(hh, b->counters, k, len, c);
    free(k);
    return c;
}

pg_batch *pg_batch_begin(PGconn *conn, const vn_store_op *ops, vn_buf *error)
{
    pg_batch *b = vn_alloc(sizeof *b);
    long n = 0;

    for (const vn_store_op *op = ops; op; op = op->next) {
        if (op->kind != VN_OP_APPEND || find_counter(b, op))
            continue;
        counter *c = vn_alloc(sizeof *c);
        c->k = counter_key(op->host, op->user, op->name, &c->klen);
        c->host = op->host;
        c->user = op->user;
        c->archive = op->name;
        HASH_ADD_KEYPTR(hh, b->counters, c->k, c->klen, c);
        pg_params p = {0};
        archive_params(&p, op->host, op->user, op->name);
        if (!pg_send(conn, PG_ARC_LOCK, &p))
            goto failed;
        n++;
    }
    if (!n)
        return b;
    if (PQsendFlushRequest(conn) != 1 || !pg_flush(conn))
        goto failed;
    /* The answers come in the order of the hash's insertion. */
    for (counter *c = b->counters; c; c = c->hh.next) {
        PGresult *r = pg_take(conn, error);
        if (!r)
            goto failed;
        c->last_id = PQntuples(r) ? (uint64_t)pg_get_int(r, 0, 0) : 0;
        PQclear(r);
    }
    return b;
failed:
    if (!error->len)
        vn_buf_append_str(error, PQerrorMessage(conn));
    pg_batch_free(b);
    return NULL;
}

void pg_batch_free(pg_batch *b)
{
    counter *c, *tmp;

    if (!b)
        return;
    HASH_ITER(hh, b->counters, c, tmp)
    {
        HASH_DEL(b->counters, c);
        free(c->k);
        free(c);
    }
    free(b);
}

int pg_batch_send_counters(PGconn *conn, pg_batch *b)
{
    int n = 0;

    for (counter *c = b->counters; c; c = c->hh.next) {
        if (!c->dirty)
            continue;
        pg_params p = {0};
        archive_params(&p, c->host, c->user, c->archive);
        pg_param_int(&p, (int64_t)c->last_id);
        pg_param_int(&p, c->added);
        if (!pg_send(conn, PG_ARC_COUNTER, &p))
            return -1;
        c->dirty = false;
        c->added = 0;
        n++;
    }
    return n;
}

/* The id rule, max(last + 1, wanted), on the locked counter. */
static int send_append(PGconn *conn, pg_batch *b, vn_store_op *op)
{
    counter *c = find_counter(b, op);
    uint64_t wanted = op->id ? op->id : op->ts_us > 1 ? (uint64_t)op->ts_us : 1;

    if (!c || c->last_id >= INT64_MAX) {
        vn_log_error("store: append: archive %s has used up its ids", op->name);
        return -1;
    }
    uint64_t id = c->last_id + 1 > wanted ? c->last_id + 1 : wanted;
    if (id > INT64_MAX) {
        vn_log_error("store: append: archive %s has used up its ids", op->name);
        return -1;
    }
    /* In grouped mode the front end assigned the id and the loop reads
     * op meanwhile; only a synchronous append has none yet. */
    if (!op->id)
        op->id = id;
    else if (id != op->id)
        vn_log_warn("store: append: archive %s of %s@%s stores id %" PRIu64 " for %" PRIu64
                    ": another node appended to it meanwhile",
                    op->name, op->user, op->host, id, op->id);
    c->last_id = id;
    c->added++;
    c->dirty = true;

    pg_params p = {0};
    const char *slash = strchr(op->key, '/');
    char *bare = slash ? vn_strndup(op->key, (size_t)(slash - op->key)) : NULL;
    archive_params(&p, op->host, op->user, op->name);
    pg_param_int(&p, (int64_t)id);
    pg_param_int(&p, op->ts_us);
    pg_param_text(&p, op->key);
    pg_param_text(&p, bare ? bare : op->key);
    pg_param_bytes(&p, op->data, op->len);
    bool sent = pg_send(conn, PG_ARC_APPEND, &p); /* libpq copies the parameters */
    free(bare);
    return sent ? 1 : -1;
}

/* delete_user: the counters of the user's archives are gone, and so are
 * the ids they held (as with LMDB, they start again). */
static void forget_user(pg_batch *b, const vn_store_op *op)
{
    size_t len;
    char *prefix = counter_key(op->host, op->user, NULL, &len);

    for (counter *c = b->counters; c; c = c->hh.next)
        if (c->klen >= len && memcmp(c->k, prefix, len) == 0)
            c->last_id = 0;
    free(prefix);
}

int pg_archive_send(PGconn *conn, pg_batch *b, vn_store_op *op)
{
    if (op->kind == VN_OP_APPEND)
        return send_append(conn, b, op);
    /* The counts the deletions below adjust must include earlier appends. */
    int n = pg_batch_send_counters(conn, b);
    pg_params p = {0};
    bool sent = n >= 0;

    if (op->kind == VN_OP_DELETE_USER) {
        pg_param_text(&p, op->host);
        pg_param_text(&p, op->user);
        forget_user(b, op);
        return sent && pg_send(conn, PG_ARC_DELETE_USER_ITEMS, &p) &&
                       pg_send(conn, PG_ARC_DELETE_USER_META, &p)
                   ? n + 2
                   : -1;
    }
    archive_params(&p, op->host, op->user, op->name);
    switch (op->kind) {
    case VN_OP_DELETE_ID:
        if (op->id == 0 || op->id > INT64_MAX)
            return n;
        pg_param_int(&p, (int64_t)op->id);
        return sent && pg_send(conn, PG_ARC_DELETE_ID, &p) ? n + 1 : -1;
    case VN_OP_DELETE_BEFORE:
        pg_param_int(&p, 1);
        pg_param_int(&p, op->before_us == 0 ? INT64_MAX : op->before_us - 1);
        return sent && pg_send(conn, PG_ARC_DELETE_RANGE, &p) ? n + 1 : -1;
    case VN_OP_RAISE_LAST_ID: {
        counter *c = find_counter(b, op);
        if (op->id > INT64_MAX)
            return -1;
        if (c && c->last_id < op->id)
            c->last_id = op->id;
        pg_param_int(&p, (int64_t)op->id);
        pg_param_int(&p, 0);
        return sent && pg_send(conn, PG_ARC_COUNTER, &p) ? n + 1 : -1;
    }
    default: return -1;
    }
}
