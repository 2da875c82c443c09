/*
 * store.c - the storage front end: picks a backend by name and forwards the
 * public vn_store_* and vn_archive_* calls to its ops.
 *
 * Argument checks live here, once for every backend, so a bad call from a
 * module fails with a log line and VN_STORE_ERROR instead of reaching (and
 * crashing) backend code.
 */
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "vestnik/log.h"

typedef struct store_backend {
    const char *name;
    void *(*open)(const vn_store_options *opts, vn_buf *err);
    const vn_store_ops *ops;
} store_backend;

static const store_backend backends[] = {
    {"lmdb", vn_store_lmdb_open, &vn_store_lmdb_ops},
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

void vn_store_close(vn_store *s)
{
    if (!s)
        return;
    s->ops->close(s->impl);
    free(s);
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
    return s->ops->get(s->impl, host, user, store, key, out);
}

int vn_store_put(vn_store *s, const char *host, const char *user, const char *store,
                 const char *key, const void *value, size_t len)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "store", store) ||
        !valid_arg(__func__, key != NULL, "key is NULL") ||
        !valid_arg(__func__, value != NULL || len == 0, "value is NULL"))
        return VN_STORE_ERROR;
    return s->ops->put(s->impl, host, user, store, key, value ? value : "", len);
}

int vn_store_delete(vn_store *s, const char *host, const char *user, const char *store,
                    const char *key)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "store", store) ||
        !valid_arg(__func__, key != NULL, "key is NULL"))
        return VN_STORE_ERROR;
    return s->ops->del(s->impl, host, user, store, key);
}

int vn_store_foreach(vn_store *s, const char *host, const char *user, const char *store,
                     vn_store_key_cb cb, void *ud)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "store", store) ||
        !valid_arg(__func__, cb != NULL, "no callback"))
        return VN_STORE_ERROR;
    return s->ops->foreach (s->impl, host, user, store, cb, ud);
}

int vn_store_foreach_user(vn_store *s, const char *host, const char *store, vn_store_user_cb cb,
                          void *ud)
{
    if (!valid_call(__func__, s, host, "") || !valid_name(__func__, "store", store) ||
        !valid_arg(__func__, cb != NULL, "no callback"))
        return VN_STORE_ERROR;
    return s->ops->foreach_user(s->impl, host, store, cb, ud);
}

int vn_store_delete_user(vn_store *s, const char *host, const char *user)
{
    if (!valid_call(__func__, s, host, user))
        return VN_STORE_ERROR;
    return s->ops->delete_user(s->impl, host, user);
}

int vn_archive_append(vn_store *s, const char *host, const char *user, const char *archive,
                      int64_t ts_us, const char *with, const void *data, size_t len, uint64_t *id)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "archive", archive) ||
        !valid_arg(__func__, data != NULL || len == 0, "data is NULL"))
        return VN_STORE_ERROR;
    return s->ops->archive_append(s->impl, host, user, archive, ts_us, with ? with : "",
                                  data ? data : "", len, id);
}

int vn_archive_query_items(vn_store *s, const char *host, const char *user, const char *archive,
                           const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete)
{
    static const vn_archive_query everything;

    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "archive", archive) ||
        !valid_arg(__func__, cb != NULL, "no callback"))
        return VN_STORE_ERROR;
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
    return s->ops->archive_count(s->impl, host, user, archive, q ? q : &everything, count);
}

int vn_archive_delete_id(vn_store *s, const char *host, const char *user, const char *archive,
                         uint64_t id)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "archive", archive))
        return VN_STORE_ERROR;
    return s->ops->archive_delete_id(s->impl, host, user, archive, id);
}

int vn_archive_delete_before(vn_store *s, const char *host, const char *user, const char *archive,
                             int64_t before_us)
{
    if (!valid_call(__func__, s, host, user) || !valid_name(__func__, "archive", archive))
        return VN_STORE_ERROR;
    return s->ops->archive_delete_before(s->impl, host, user, archive, before_us);
}
