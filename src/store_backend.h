/*
 * store_backend.h - what a storage backend implements, and opening one.
 *
 * store.c forwards the public vn_store_* and vn_archive_* calls to the
 * backend's ops. LMDB (store_lmdb.c) is the default; a PostgreSQL backend
 * implements the same table later.
 */
#ifndef VESTNIK_STORE_BACKEND_H
#define VESTNIK_STORE_BACKEND_H

#include "vestnik/store.h"

typedef struct vn_store_ops {
    const char *name;
    int (*get)(void *impl, const char *host, const char *user, const char *store, const char *key,
               vn_buf *out);
    int (*put)(void *impl, const char *host, const char *user, const char *store, const char *key,
               const void *value, size_t len);
    int (*del)(void *impl, const char *host, const char *user, const char *store, const char *key);
    int (*foreach)(void *impl, const char *host, const char *user, const char *store,
                   vn_store_key_cb cb, void *ud);
    int (*foreach_user)(void *impl, const char *host, const char *store, vn_store_user_cb cb,
                        void *ud);
    int (*delete_user)(void *impl, const char *host, const char *user);
    int (*archive_append)(void *impl, const char *host, const char *user, const char *archive,
                          int64_t ts_us, const char *with, const void *data, size_t len,
                          uint64_t *id);
    int (*archive_query)(void *impl, const char *host, const char *user, const char *archive,
                         const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete);
    int (*archive_count)(void *impl, const char *host, const char *user, const char *archive,
                         const vn_archive_query *q, size_t *count);
    int (*archive_delete_id)(void *impl, const char *host, const char *user, const char *archive,
                             uint64_t id);
    int (*archive_delete_before)(void *impl, const char *host, const char *user,
                                 const char *archive, int64_t before_us);
    void (*close)(void *impl);
} vn_store_ops;

struct vn_store {
    const vn_store_ops *ops;
    void *impl;
};

typedef struct vn_store_options {
    const char *backend; /* "lmdb" */
    const char *path;    /* directory for LMDB */
    size_t map_size_mb;  /* the most the data may grow to; 0: 1024 */
} vn_store_options;

/* NULL with a message in err on failure. */
vn_store *vn_store_open(const vn_store_options *opts, vn_buf *err);
void vn_store_close(vn_store *s);

/* The LMDB backend's constructor (store_lmdb.c). */
void *vn_store_lmdb_open(const vn_store_options *opts, vn_buf *err);
extern const vn_store_ops vn_store_lmdb_ops;

#endif
