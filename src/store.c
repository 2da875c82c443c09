/*
 * store.c - the storage front end: picks a backend by name and forwards the
 * public vn_store_* and vn_archive_* calls to it.
 *
 * Argument checks live here, once for every backend, so a bad call from a
 * module fails with a log line and VN_STORE_ERROR instead of reaching (and
 * crashing) backend code. Every write becomes a vn_store_op: applied at
 * once in synchronous mode, queued for the next batch in grouped mode
 * (store_batch.c), where reads go through the pending view
 * (store_pending.c) so that they see the queued writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_backend.h"
#include "store_pending.h"
#include "vestnik/log.h"

typedef struct store_backend {
    const char *name;
    void *(*open)(const vn_store_options *opts, vn_buf *err);
    const vn_store_ops *ops;
} store_backend;

static const store_backend backends[] = {
    {"lmdb", vn_store_lmdb_open, &vn_store_lmdb_ops},
    {"postgresql", vn_store_pg_open, &vn_store_pg_ops},
};

#define BACKEND_COUNT (sizeof backends / sizeof backends[0])

static void append_valid_backends(vn_buf *err)
{
    vn_buf_append_str(err, " (valid:");
    for (size_t i = 0; i < BACKEND_COUNT; i++)
        vn_buf_printf(err, " %s", backends[i].name);
    vn_buf_append_str(err, ")");
}

vn_store *vn_store_open(const vn_store_options *opts, vn_buf *err)
{
    const char *name = opts ? opts->backend : NULL;
    const store_backend *backend = NULL;

    for (size_t i = 0; name && i < BACKEND_COUNT; i++)
        if (strcmp(backends[i].name, name) == 0)
            backend = &backends[i];
    if (!backend) {
        if (err) {
            if (name && name[0])
                vn_buf_printf(err, "unknown store backend \"%s\"", name);
            else
                vn_buf_append_str(err, "no store backend given");
            append_valid_backends(err);
        }
        return NULL;
    }
    void *impl = backend->open(opts, err);
    if (!impl)
        return NULL;
    vn_store *s = vn_alloc(sizeof *s);
    s->ops = backend->ops;
    s->impl = impl;
    return s;
}

int vn_store_attach_loop(vn_store *s, uv_loop_t *loop)
{
    int err = 0;

    if (s->batcher)
        return 0;
    int rc = s->ops->pin_snapshot(s->impl, true);
    if (rc != VN_STORE_OK)
        return -EIO;
    s->pending = vn_pending_new();
    s->batcher = vn_store_batcher_new(s, loop, &err);
    if (!s->batcher) {
        vn_pending_free(s->pending);
        s->pending = NULL;
        s->ops->pin_snapshot(s->impl, false);
    } else if (s->ops->attach_loop) {
        s->ops->attach_loop(s->impl, loop);
    }
    return err;
}

void vn_store_close(vn_store *s)
{
    if (!s)
        return;
    if (s->batcher) {
        vn_store_batcher_free(s);
        s->ops->pin_snapshot(s->impl, false);
    }
    vn_pending_free(s->pending);
    s->ops->close(s->impl);
    free(s);
}

/* ---- writes ---- */

static vn_store_op *new_op(vn_store_op_kind kind, const char *host, const char *user,
                           const char *name, const char *key, const void *data, size_t len)
{
    vn_store_op *op = vn_alloc(sizeof *op);
    op->kind = kind;
    op->host = vn_strdup(host);
    op->user = vn_strdup(user);
    op->name = vn_strdup(name);
    op->key = vn_strdup(key);
    if (len) {
        op->data = vn_alloc(len);
        memcpy(op->data, data, len);
    }
    op->len = len;
    return op;
}

void vn_store_op_free(vn_store_op *op)
{
    free(op->host);
    free(op->user);
    free(op->name);
    free(op->key);
    free(op->data);
    free(op);
}

/* Applies op now, or queues it for the next batch; takes it over. */
static int write_op(vn_store *s, vn_store_op *op, uint64_t *id)
{
    int rc = s->ops->check(s->impl, op);

    if (rc == VN_STORE_OK && s->batcher) {
        op->seq = vn_store_batch_seq(s);
        rc = vn_pending_register(s, op);
        if (rc == VN_STORE_OK) {
            if (id)
                *id = op->id;
            vn_store_batch_queue(s, op);
            return rc;
        }
    } else if (rc == VN_STORE_OK) {
        if (op->kind == VN_OP_DELETE_ID)
            rc = vn_store_snapshot_item(s, op->host, op->user, op->name, op->id, NULL);
        if (rc == VN_STORE_OK)
            rc = s->ops->apply(s->impl, op);
        if (rc == VN_STORE_OK && id)
            *id = op->id;
    }
    vn_store_op_free(op);
    return rc;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Logs and returns false when a call cannot be forwarded. */
static bool valid_call(const char *fn, vn_store *s, const char *host, const char *user)
{
    const char *problem = NULL;
    if (!s)
        problem = "no store";
    else if (!host || !host[0])
        problem = "no host";
    else if (!user)
        problem = "user is NULL";
    if (problem)
        vn_log_error("store: %s: %s", fn, problem);
    return !problem;
}

static bool valid_name(const char *fn, const char *what, const char *name)
{
    if (!name || !name[0]) {
        vn_log_error("store: %s: no %s name", fn, what);
        return false;
    }
    return true;
}

static bool valid_arg(const char *fn, bool ok, const char *problem)
{
    if (!ok)
        vn_log_error("store: %s: %s", fn, problem);
    return ok;
}

int vn_store_get(vn_store *s, const char *host, const char *user, const char *store,
                 const char *key, vn_buf *out)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "store", store) ||
        !valid_arg(__func__, key != NULL, "key is NULL") ||
        !valid_arg(__func__, out != NULL, "no output buffer"))
        return VN_STORE_ERROR;
    return s->batcher ? vn_pending_get(s, host, user, store, key, out)
                      : s->ops->get(s->impl, host, user, store, key, out);
}

int vn_store_put(vn_store *s, const char *host, const char *user, const char *store,
                 const char *key, const void *value, size_t len)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "store", store) ||
        !valid_arg(__func__, key != NULL, "key is NULL") ||
        !valid_arg(__func__, value != NULL || len == 0, "value is NULL"))
        return VN_STORE_ERROR;
    return write_op(s, new_op(VN_OP_PUT, host, user, store, key, value, len), NULL);
}

int vn_store_delete(vn_store *s, const char *host, const char *user, const char *store,
                    const char *key)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "store", store) ||
        !valid_arg(__func__, key != NULL, "key is NULL"))
        return VN_STORE_ERROR;
    return write_op(s, new_op(VN_OP_DELETE, host, user, store, key, NULL, 0), NULL);
}

int vn_store_foreach(vn_store *s, const char *host, const char *user, const char *store,
                     vn_store_key_cb cb, void *ud)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "store", store) ||
        !valid_arg(__func__, cb != NULL, "no callback"))
        return VN_STORE_ERROR;
    return s->batcher ? vn_pending_foreach(s, host, user, store, cb, ud)
                      : s->ops->foreach (s->impl, host, user, store, cb, ud);
}

int vn_store_foreach_user(vn_store *s, const char *host, const char *store, vn_store_user_cb cb,
                          void *ud)
{
    if (!valid_call(__func__, s, host, "") || !valid_name(__func__, "store", store) ||
        !valid_arg(__func__, cb != NULL, "no callback"))
        return VN_STORE_ERROR;
    return s->batcher ? vn_pending_foreach_user(s, host, store, cb, ud)
                      : s->ops->foreach_user(s->impl, host, store, cb, ud);
}

int vn_store_delete_user(vn_store *s, const char *host, const char *user)
{
    if (!valid_call(__func__, s, host, user))
        return VN_STORE_ERROR;
    return write_op(s, new_op(VN_OP_DELETE_USER, host, user, NULL, NULL, NULL, 0), NULL);
}

int vn_archive_append(vn_store *s, const char *host, const char *user, const char *archive,
                      int64_t ts_us, const char *with, const void *data, size_t len, uint64_t *id)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "archive", archive) ||
        !valid_arg(__func__, data != NULL || len == 0, "data is NULL"))
        return VN_STORE_ERROR;
    vn_store_op *op = new_op(VN_OP_APPEND, host, user, archive, with ? with : "", data, len);
    op->ts_us = ts_us ? ts_us : now_us();
    return write_op(s, op, id);
}

int vn_archive_query_items(vn_store *s, const char *host, const char *user, const char *archive,
                           const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete)
{
    static const vn_archive_query everything;

    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "archive", archive) ||
        !valid_arg(__func__, cb != NULL, "no callback"))
        return VN_STORE_ERROR;
    if (s->batcher)
        return vn_pending_query(s, host, user, archive, q ? q : &everything, cb, ud, complete);
    return s->ops->archive_query(s->impl, host, user, archive, q ? q : &everything, cb, ud,
                                 complete);
}

int vn_archive_count(vn_store *s, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, size_t *count)
{
    static const vn_archive_query everything;

    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "archive", archive) ||
        !valid_arg(__func__, count != NULL, "no count output"))
        return VN_STORE_ERROR;
    return s->batcher
               ? vn_pending_count(s, host, user, archive, q ? q : &everything, count)
               : s->ops->archive_count(s->impl, host, user, archive, q ? q : &everything, count);
}

int vn_archive_delete_id(vn_store *s, const char *host, const char *user, const char *archive,
                         uint64_t id)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "archive", archive))
        return VN_STORE_ERROR;
    vn_store_op *op = new_op(VN_OP_DELETE_ID, host, user, archive, NULL, NULL, 0);
    op->id = id;
    return write_op(s, op, NULL);
}

int vn_archive_delete_before(vn_store *s, const char *host, const char *user, const char *archive,
                             int64_t before_us)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "archive", archive))
        return VN_STORE_ERROR;
    if (before_us < 0 || before_us == 1)
        return VN_STORE_OK; /* ids start at 1: nothing is older */
    vn_store_op *op = new_op(VN_OP_DELETE_BEFORE, host, user, archive, NULL, NULL, 0);
    op->before_us = before_us;
    return write_op(s, op, NULL);
}
