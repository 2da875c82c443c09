/*
 * store_pg_conn.c - the PostgreSQL backend: its connections, prepared
 * statements, read snapshot and batch transactions (the ops table).
 *
 * Writes. apply runs on the writer thread of store_batch.c, on a connection
 * only that thread uses. The whole batch goes to the server as one libpq
 * pipeline ending in a Sync, so it is one implicit transaction, one round
 * trip and one WAL flush however many writes it holds; the Sync's answer
 * comes after COMMIT, so OK means durable (synchronous_commit must stay on,
 * its default). The loop never waits for it: group commit is store_batch.c's
 * as for LMDB, and apply blocking its own thread is what that thread is for.
 *
 * Reads. The interface returns read results directly, so reads run on the
 * calling thread (the loop, in vestnikd) as one prepared statement each on
 * a second connection, bounded by read_timeout_ms (statement_timeout). A
 * read is a round trip to the server, typically some tens of microseconds
 * on a local socket; a slow or lost server costs the loop at most the
 * timeout per read, then the read fails (an error, never a hang).
 *
 * The snapshot. The pending view (store_pending.c) lays the queued writes
 * over reads and drops a batch once refresh says the reads include it; it
 * needs reads that do not see a batch before then, or an archive item in
 * flight would show twice. So in grouped mode the read connection stays in
 * a REPEATABLE READ READ ONLY transaction, a snapshot as LMDB's pinned read
 * transaction is, renewed by refresh after each batch and, so that writes
 * of other vestnikd nodes on the same database show up and no transaction
 * stays open for long, whenever it is older than snapshot_max_age_ms and no
 * batch of ours may have committed since the last refresh (a timer renews
 * it on an idle loop). The writer takes `mu` before it sends a batch; the
 * loop holds it while it takes a snapshot.
 *
 * The only cache is of the snapshot: documents read in it are kept until
 * it is renewed (store_pg_docs.c; read_cache_kb), which is exact, since
 * the snapshot answers the same meanwhile. A longer-lived cache of
 * documents, invalidated only by this process's own writes, would serve
 * stale rosters and accounts once several nodes write to one database,
 * and invalidating it from other nodes needs the cluster layer
 * (LISTEN/NOTIFY or NATS). So what a node reads is at most
 * snapshot_max_age_ms behind the other nodes' commits, cache or not.
 *
 * Archive ids: each batch first locks the counter row of every archive it
 * appends to and reads its last id (one round trip, store_pg_archive.c),
 * then stores its items with ids past it and moves each counter once, so
 * concurrent nodes never reuse an id and a batch of many appends to one
 * archive does not update (and re-find) one row version per item.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "store_pg.h"
#include "vestnik/log.h"

#define PIPELINE_FLUSH_EVERY 64

/* ---- parameters and results ---- */

void pg_param_text(pg_params *p, const char *s)
{
    p->values[p->n] = s;
    p->lengths[p->n] = 0;
    p->formats[p->n++] = 0;
}

void pg_param_bytes(pg_params *p, const void *data, size_t len)
{
    p->values[p->n] = len ? data : "";
    p->lengths[p->n] = (int)len;
    p->formats[p->n++] = 1;
}

void pg_param_int(pg_params *p, int64_t v)
{
    snprintf(p->ints[p->n], sizeof p->ints[p->n], "%" PRId64, v);
    pg_param_text(p, p->ints[p->n]);
}

int64_t pg_get_int(const PGresult *r, int row, int col)
{
    const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    uint64_t x = 0;

    for (int i = 0; i < len && i < 8; i++)
        x = x << 8 | v[i];
    if (len == 4)
        return (int32_t)(uint32_t)x;
    return (int64_t)x;
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* ---- connections ---- */

/* The server's notices ("already exists, skipping") are for the log's
 * debug level, not for vestnikctl's terminal. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    vn_log_debug("store: PostgreSQL: %.*s", (int)strcspn(message, "\n"), message);
}

static PGconn *connect_one(const pg_store *st, unsigned timeout_ms, vn_buf *err)
{
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *values[] = {st->conninfo, "vestnikd", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);

    if (PQstatus(conn) != CONNECTION_OK) {
        if (err)
            vn_buf_printf(err, "PostgreSQL: %s", conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, on_notice, NULL);
    if (PQsetClientEncoding(conn, "UTF8") != 0) {
        if (err)
            vn_buf_printf(err, "PostgreSQL: cannot use UTF8: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    char *set = vn_asprintf("SET statement_timeout = %u", timeout_ms);
    PGresult *r = PQexec(conn, set);
    free(set);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok && err)
        vn_buf_printf(err, "PostgreSQL: %s", PQresultErrorMessage(r));
    PQclear(r);
    if (!ok) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static bool prepare_all(PGconn *conn, vn_buf *err)
{
    for (int i = 0; i < PG_STMT_COUNT; i++) {
        PGresult *r = PQprepare(conn, pg_statements[i].name, pg_statements[i].sql,
                                pg_statements[i].n_params, NULL);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok && err)
            vn_buf_printf(err, "PostgreSQL: preparing %s: %s", pg_statements[i].name,
                          PQresultErrorMessage(r));
        PQclear(r);
        if (!ok)
            return false;
    }
    return true;
}

static PGconn *connect_read(const pg_store *st, vn_buf *err)
{
    PGconn *conn = connect_one(st, st->read_timeout_ms, err);
    if (conn && !prepare_all(conn, err)) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* The writer's connection pipelines without blocking on a full socket. */
static PGconn *connect_write(const pg_store *st, vn_buf *err)
{
    PGconn *conn = connect_one(st, st->write_timeout_ms, err);
    if (conn && (!prepare_all(conn, err) || PQsetnonblocking(conn, 1) != 0 ||
                 PQenterPipelineMode(conn) != 1)) {
        if (err && !err->len)
            vn_buf_printf(err, "PostgreSQL: no pipeline mode: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* ---- the read snapshot ---- */

/* Takes a new snapshot (ending the old one) unless a batch may have
 * committed since the last refresh. */
static void renew_snapshot(pg_store *st)
{
    if (!st->rd)
        return;
    pthread_mutex_lock(&st->mu);
    if (!st->unrefreshed) {
        PGresult *r = PQexec(st->rd, st->in_snapshot ? "COMMIT; BEGIN ISOLATION LEVEL "
                                                       "REPEATABLE READ READ ONLY; SELECT 1"
                                                     : "BEGIN ISOLATION LEVEL REPEATABLE READ "
                                                       "READ ONLY; SELECT 1");
        st->in_snapshot = PQresultStatus(r) == PGRES_TUPLES_OK;
        pg_doc_cache_clear(st);
        if (st->in_snapshot)
            st->taken_ms = now_ms();
        else
            vn_log_error("store: PostgreSQL snapshot: %s", PQresultErrorMessage(r));
        PQclear(r);
    }
    pthread_mutex_unlock(&st->mu);
}

/* After a failed read: a lost connection is made anew, an aborted snapshot
 * rolled back; reads go on in autocommit until a snapshot can be taken. */
static void repair_read(pg_store *st)
{
    if (PQstatus(st->rd) == CONNECTION_BAD) {
        PQfinish(st->rd);
        vn_buf err;
        vn_buf_init(&err);
        st->rd = connect_read(st, &err);
        if (!st->rd)
            vn_log_error("store: reconnecting: %s", err.data);
        vn_buf_free(&err);
    } else if (PQtransactionStatus(st->rd) != PQTRANS_IDLE) {
        PQclear(PQexec(st->rd, "ROLLBACK"));
    }
    st->in_snapshot = false;
    pg_doc_cache_clear(st);
    if (st->pinned)
        renew_snapshot(st);
}

/* Whether a connection that was idle is still there: a server that shut
 * down or restarted has said so on the socket (reading it never blocks). */
static bool still_connected(PGconn *conn)
{
    return conn && PQconsumeInput(conn) && PQstatus(conn) == CONNECTION_OK;
}

void pg_before_read(pg_store *st)
{
    if (!still_connected(st->rd))
        repair_read(st);
    else if (st->pinned && (!st->in_snapshot || now_ms() - st->taken_ms >= st->snapshot_max_age_ms))
        renew_snapshot(st);
}

PGresult *pg_read(pg_store *st, pg_stmt stmt, const pg_params *p, const char *what)
{
    pg_before_read(st);
    if (!st->rd) {
        vn_log_error("store: %s: no connection to PostgreSQL", what);
        return NULL;
    }
    PGresult *r = PQexecPrepared(st->rd, pg_statements[stmt].name, p->n, p->values, p->lengths,
                                 p->formats, 1);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    vn_log_error("store: %s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(st->rd));
    PQclear(r);
    repair_read(st);
    return NULL;
}

static void on_timer(uv_timer_t *t)
{
    pg_store *st = t->data;
    if (st && st->pinned && now_ms() - st->taken_ms >= st->snapshot_max_age_ms)
        renew_snapshot(st);
}

static void attach_loop(void *impl, uv_loop_t *loop)
{
    pg_store *st = impl;

    if (st->timer)
        return;
    st->timer = vn_alloc(sizeof *st->timer);
    uv_timer_init(loop, st->timer);
    st->timer->data = st;
    uv_unref((uv_handle_t *)st->timer);
    uv_timer_start(st->timer, on_timer, st->snapshot_max_age_ms, st->snapshot_max_age_ms);
}

static int pin_snapshot(void *impl, bool pin)
{
    pg_store *st = impl;

    st->pinned = pin;
    if (pin) {
        renew_snapshot(st);
        return st->in_snapshot ? VN_STORE_OK : VN_STORE_ERROR;
    }
    if (st->in_snapshot && st->rd)
        PQclear(PQexec(st->rd, "COMMIT"));
    st->in_snapshot = false;
    pg_doc_cache_clear(st);
    return VN_STORE_OK;
}

/* On the loop, after a batch: the writer is idle until the next submit. */
static int refresh(void *impl)
{
    pg_store *st = impl;

    pthread_mutex_lock(&st->mu);
    st->unrefreshed = false;
    pthread_mutex_unlock(&st->mu);
    if (!st->rd)
        repair_read(st);
    else
        renew_snapshot(st);
    return st->in_snapshot ? VN_STORE_OK : VN_STORE_ERROR;
}

/* ---- writes ---- */

bool pg_send(PGconn *conn, pg_stmt stmt, const pg_params *p)
{
    return PQsendQueryPrepared(conn, pg_statements[stmt].name, p->n, p->values, p->lengths,
                               p->formats, 1) == 1;
}

/* Sends what libpq buffered, reading answers meanwhile so that neither
 * side blocks on a full socket. */
bool pg_flush(PGconn *conn)
{
    int rc;

    while ((rc = PQflush(conn)) == 1) {
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN | POLLOUT};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return false;
        if ((pfd.revents & POLLIN) && !PQconsumeInput(conn))
            return false;
    }
    return rc == 0;
}

PGresult *pg_take(PGconn *conn, vn_buf *error)
{
    PGresult *r = PQgetResult(conn);
    ExecStatusType status = PQresultStatus(r);

    if (r)
        PQclear(PQgetResult(conn)); /* the NULL that ends each statement's results */
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        return r;
    if (!error->len)
        vn_buf_append_str(error, r ? PQresultErrorMessage(r) : PQerrorMessage(conn));
    PQclear(r);
    return NULL;
}

static int send_op(PGconn *conn, pg_batch *b, vn_store_op *op)
{
    int docs = 0;

    switch (op->kind) {
    case VN_OP_PUT:
    case VN_OP_DELETE: return pg_doc_send(conn, op);
    case VN_OP_DELETE_USER:
        docs = pg_doc_send(conn, op);
        int archives = docs < 0 ? -1 : pg_archive_send(conn, b, op);
        return archives < 0 ? -1 : docs + archives;
    case VN_OP_APPEND:
    case VN_OP_DELETE_ID:
    case VN_OP_DELETE_BEFORE:
    case VN_OP_RAISE_LAST_ID: return pg_archive_send(conn, b, op);
    }
    return -1;
}

/* Reads the results of n statements, then the Sync's: false if any failed
 * (then the transaction was rolled back). */
static bool take_results(PGconn *conn, long n, vn_buf *error)
{
    bool ok = true;

    for (long i = 0; i < n && PQstatus(conn) == CONNECTION_OK; i++) {
        PGresult *r = pg_take(conn, error);
        ok = ok && r;
        PQclear(r);
    }
    while (PQstatus(conn) == CONNECTION_OK) {
        PGresult *r = PQgetResult(conn);
        if (!r)
            continue;
        ExecStatusType status = PQresultStatus(r);
        if (status != PGRES_PIPELINE_SYNC && status != PGRES_COMMAND_OK &&
            status != PGRES_TUPLES_OK) {
            ok = false;
            if (!error->len)
                vn_buf_append_str(error, PQresultErrorMessage(r));
        }
        PQclear(r);
        if (status == PGRES_PIPELINE_SYNC)
            return ok;
    }
    if (!error->len)
        vn_buf_append_str(error, PQerrorMessage(conn));
    return false;
}

/* Everything of one batch up to the Sync, which commits it: the statement
 * count into *n, or false if it could not all be sent, with *before_sync
 * true if that was the connection failing before the Sync was queued. */
static bool send_batch(PGconn *conn, vn_store_op *ops, long *n, bool *before_sync, vn_buf *error)
{
    pg_batch *b = pg_batch_begin(conn, ops, error);
    size_t i = 0;
    bool sent = b != NULL;

    *n = 0;
    *before_sync = true;
    for (vn_store_op *op = ops; op && sent; op = op->next, i++) {
        int k = send_op(conn, b, op);
        *n += k;
        sent = k >= 0 && ((i + 1) % PIPELINE_FLUSH_EVERY || pg_flush(conn));
    }
    if (sent) {
        int k = pg_batch_send_counters(conn, b);
        *n += k;
        sent = k >= 0 && PQpipelineSync(conn) == 1;
        *before_sync = !sent;
        sent = sent && pg_flush(conn);
    }
    /* An error of the server's is the batch's own, unless it was the
     * server ending the connection (a FATAL, then the end of the socket,
     * which a last read finds). */
    if (!sent && *before_sync && PQconsumeInput(conn) && PQstatus(conn) == CONNECTION_OK)
        *before_sync = false;
    if (!sent && !error->len)
        vn_buf_append_str(error, PQerrorMessage(conn));
    pg_batch_free(b);
    return sent;
}

static int apply(void *impl, vn_store_op *ops)
{
    pg_store *st = impl;
    vn_buf error;
    size_t n_ops = 0;
    long n = 0;

    vn_buf_init(&error);
    pthread_mutex_lock(&st->mu);
    st->unrefreshed = true; /* from here on, reads may see this batch */
    pthread_mutex_unlock(&st->mu);
    for (vn_store_op *op = ops; op; op = op->next)
        n_ops++;
    /* A connection found gone before the batch's Sync went out committed
     * nothing of it: the batch is sent again, once, on a new one. */
    bool sent = false, before_sync = true;
    for (int attempt = 0; attempt < 2 && !sent && before_sync; attempt++) {
        if (!still_connected(st->wr)) {
            PQfinish(st->wr);
            vn_buf_reset(&error);
            st->wr = connect_write(st, &error);
            if (!st->wr) {
                vn_log_error("store: write: %s", error.data);
                vn_buf_free(&error);
                return VN_STORE_ERROR;
            }
        }
        sent = send_batch(st->wr, ops, &n, &before_sync, &error);
        if (!sent && before_sync)
            vn_log_warn("store: the connection to PostgreSQL was lost before a batch was sent; "
                        "sending it again: %s",
                        error.data);
    }
    bool ok = sent && take_results(st->wr, n, &error);
    if (!ok) {
        vn_log_error("store: a batch of %zu write(s) failed: %s", n_ops, error.data);
        if (!sent || PQstatus(st->wr) != CONNECTION_OK) {
            PQfinish(st->wr); /* never committed; made anew by the next batch */
            st->wr = NULL;
        }
    }
    vn_buf_free(&error);
    return ok ? VN_STORE_OK : VN_STORE_ERROR;
}

/* ---- checks ---- */

bool pg_key_fits(const char *what, size_t extra, const char *a, const char *b, const char *c,
                 const char *d)
{
    const char *parts[] = {a, b, c, d};
    size_t len = extra;
    for (size_t i = 0; i < 4; i++)
        if (parts[i])
            len += strlen(parts[i]) + 1;
    if (len > PG_KEY_CAP)
        vn_log_error("store: %s: key longer than the store's limit of %d bytes", what, PG_KEY_CAP);
    return len <= PG_KEY_CAP;
}

static bool valid_text(const char *s)
{
    return !s || !u8_check((const uint8_t *)s, strlen(s));
}

static int check(void *impl, const vn_store_op *op)
{
    (void)impl;
    bool fits = false;
    const char *what = "write";

    switch (op->kind) {
    case VN_OP_PUT:
    case VN_OP_DELETE:
        what = op->kind == VN_OP_PUT ? "put" : "delete";
        fits = pg_key_fits(what, 0, op->host, op->name, op->user, op->key);
        break;
    case VN_OP_DELETE_USER:
        fits = pg_key_fits("delete_user", 0, op->host, op->user, NULL, NULL);
        break;
    case VN_OP_APPEND:
        what = "append";
        fits = pg_key_fits(what, 8, op->host, op->user, op->name, NULL);
        break;
    case VN_OP_DELETE_ID:
    case VN_OP_DELETE_BEFORE:
    case VN_OP_RAISE_LAST_ID:
        fits = pg_key_fits("delete", 0, op->host, op->user, op->name, NULL);
        break;
    }
    if (!fits)
        return VN_STORE_ERROR;
    if (!valid_text(op->host) || !valid_text(op->user) || !valid_text(op->name) ||
        !valid_text(op->key)) {
        vn_log_error("store: %s: a name is not valid UTF-8", what);
        return VN_STORE_ERROR;
    }
    if (op->len > INT32_MAX) {
        vn_log_error("store: %s: value too large", what);
        return VN_STORE_ERROR;
    }
    return VN_STORE_OK;
}

/* ---- opening and closing ---- */

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void pg_close(void *impl)
{
    pg_store *st = impl;

    if (st->timer) {
        st->timer->data = NULL;
        uv_close((uv_handle_t *)st->timer, on_timer_closed);
    }
    pg_doc_cache_clear(st);
    PQfinish(st->rd);
    PQfinish(st->wr);
    pthread_mutex_destroy(&st->mu);
    free(st->conninfo);
    free(st);
}

static pg_store *pg_new(const vn_store_options *opts)
{
    pg_store *st = vn_alloc(sizeof *st);

    st->conninfo = vn_strdup(opts->conninfo ? opts->conninfo : "");
    st->read_timeout_ms = opts->read_timeout_ms ? opts->read_timeout_ms : 5000;
    st->write_timeout_ms = opts->write_timeout_ms ? opts->write_timeout_ms : 60000;
    st->snapshot_max_age_ms = opts->snapshot_max_age_ms ? opts->snapshot_max_age_ms : 200;
    st->cache_limit = (size_t)opts->read_cache_kb << 10;
    pthread_mutex_init(&st->mu, NULL);
    return st;
}

int vn_store_pg_migrate(const vn_store_options *opts, vn_buf *report)
{
    pg_store *st = pg_new(opts);
    PGconn *conn = connect_one(st, 0, report);
    int rc = conn ? pg_schema_migrate(conn, report) : -1;

    PQfinish(conn);
    pg_close(st);
    return rc;
}

void *vn_store_pg_open(const vn_store_options *opts, vn_buf *err)
{
    pg_store *st = pg_new(opts);
    vn_buf report;

    vn_buf_init(&report);
    PGconn *conn = connect_one(st, 0, err);
    int rc = conn ? pg_schema_migrate(conn, &report) : -1;
    PQfinish(conn);
    if (rc == 0)
        vn_log_info("store: %s", report.data);
    else if (conn && err)
        vn_buf_append_str(err, report.data);
    vn_buf_free(&report);
    if (rc == 0)
        st->rd = connect_read(st, err);
    if (rc == 0 && st->rd)
        st->wr = connect_write(st, err);
    if (!st->wr) {
        pg_close(st);
        return NULL;
    }
    return st;
}

const vn_store_ops vn_store_pg_ops = {
    .name = "postgresql",
    .get = pg_doc_get,
    .foreach = pg_doc_foreach,
    .foreach_user = pg_doc_foreach_user,
    .archive_query = pg_archive_query,
    .archive_count = pg_archive_count,
    .archive_last_id = pg_archive_last_id,
    .check = check,
    .apply = apply,
    .dump = pg_dump,
    .pin_snapshot = pin_snapshot,
    .refresh = refresh,
    .attach_loop = attach_loop,
    .close = pg_close,
};
