/*
 * store_backend.h - what a storage backend implements, and opening one.
 *
 * store.c forwards the public vn_store_* and vn_archive_* calls: reads to
 * the backend's read ops through the pending view (store_pending.c), writes
 * as vn_store_op records that store_batch.c groups into batches and hands
 * to the backend's apply op on a writer thread. LMDB (store_lmdb.c) is the
 * default backend; PostgreSQL (store_pg*.c) implements the same table with
 * apply as one SQL transaction and refresh as a new read snapshot.
 */
#ifndef VESTNIK_STORE_BACKEND_H
#define VESTNIK_STORE_BACKEND_H

#include <stdio.h>
#include <uv.h>

#include "vestnik/store.h"

/* One write, as issued on the loop. Immutable once queued: the writer
 * thread applies it while the loop reads it for the pending view. */
typedef enum vn_store_op_kind {
    VN_OP_PUT,           /* host, user, name (store), key, data/len */
    VN_OP_DELETE,        /* host, user, name (store), key */
    VN_OP_DELETE_USER,   /* host, user */
    VN_OP_APPEND,        /* host, user, name (archive), key (with), data/len, ts_us, id */
    VN_OP_DELETE_ID,     /* host, user, name (archive), id */
    VN_OP_DELETE_BEFORE, /* host, user, name (archive), before_us */
    VN_OP_RAISE_LAST_ID, /* host, user, name (archive), id: the counter is at least id
                          * (imports keep ids unused after deletions; never queued) */
} vn_store_op_kind;

typedef struct vn_store_op {
    vn_store_op_kind kind;
    uint64_t seq; /* the batch it belongs to */
    char *host, *user, *name, *key;
    void *data;
    size_t len;
    int64_t ts_us;     /* APPEND: never 0 once queued */
    uint64_t id;       /* APPEND: 0 lets the backend assign it; DELETE_ID: the item */
    int64_t before_us; /* DELETE_BEFORE */
    struct vn_store_op *next;
} vn_store_op;

/* Everything a store holds, for vestnikctl export (store_dump.c). Return
 * false to stop. */
typedef struct vn_store_dump_cbs {
    bool (*doc)(void *ud, const char *host, const char *user, const char *store, const char *key,
                const void *value, size_t len);
    /* An archive and its last id ever assigned; its items follow. */
    bool (*archive)(void *ud, const char *host, const char *user, const char *archive,
                    uint64_t last_id);
    bool (*item)(void *ud, const vn_archive_item *item);
} vn_store_dump_cbs;

typedef struct vn_store_ops {
    const char *name;
    /* Reads: on the calling thread, from the current snapshot. */
    int (*get)(void *impl, const char *host, const char *user, const char *store, const char *key,
               vn_buf *out);
    int (*foreach)(void *impl, const char *host, const char *user, const char *store,
                   vn_store_key_cb cb, void *ud);
    int (*foreach_user)(void *impl, const char *host, const char *store, vn_store_user_cb cb,
                        void *ud);
    int (*archive_query)(void *impl, const char *host, const char *user, const char *archive,
                         const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete);
    int (*archive_count)(void *impl, const char *host, const char *user, const char *archive,
                         const vn_archive_query *q, size_t *count);
    /* The archive's last id ever assigned (0 for none) into *id. */
    int (*archive_last_id)(void *impl, const char *host, const char *user, const char *archive,
                           uint64_t *id);
    /* Refuses (logging why) an op the backend could never apply, such as
     * a key over its size limit, so that apply fails only on the disk. */
    int (*check)(void *impl, const vn_store_op *op);
    /* Applies ops in order and returns once they are durable: OK or ERROR
     * (then none or only some of them are applied). Runs on the writer
     * thread in grouped mode, on the caller's otherwise; an APPEND with
     * id 0 gets its id here. */
    int (*apply)(void *impl, vn_store_op *ops);
    /* Grouped mode: reads keep to one snapshot, taken anew by refresh
     * (on the loop, after a batch is durable) so they never see a batch
     * the pending view still holds. */
    int (*pin_snapshot)(void *impl, bool pin);
    int (*refresh)(void *impl);
    /* Every document, then every archive with its items (synchronous
     * mode, one consistent snapshot). OK or ERROR. */
    int (*dump)(void *impl, const vn_store_dump_cbs *cbs, void *ud);
    /* Optional: grouped mode on loop begins (timers of the backend). */
    void (*attach_loop)(void *impl, uv_loop_t *loop);
    void (*close)(void *impl);
} vn_store_ops;

typedef struct vn_store_pending vn_store_pending; /* store_pending.c */
typedef struct vn_store_batcher vn_store_batcher; /* store_batch.c */

struct vn_store {
    const vn_store_ops *ops;
    void *impl;
    vn_store_pending *pending; /* grouped mode: writes not yet in the snapshot */
    vn_store_batcher *batcher; /* NULL: synchronous mode */
};

typedef struct vn_store_options {
    const char *backend; /* "lmdb" or "postgresql" */
    const char *path;    /* directory for LMDB */
    size_t map_size_mb;  /* the most the data may grow to; 0: 1024 */
    /* PostgreSQL: a libpq connection string or URI ("" or NULL: libpq's
     * defaults and PG* environment variables), and limits; 0: defaults. */
    const char *conninfo;
    unsigned read_timeout_ms;     /* one read; 5000 */
    unsigned write_timeout_ms;    /* one batch; 60000 */
    unsigned snapshot_max_age_ms; /* how old the read snapshot may get; 200 */
    unsigned read_cache_kb;       /* documents read in one snapshot; 0: none */
} vn_store_options;

/* NULL with a message in err on failure. The store starts in synchronous
 * mode: each write is durable when its call returns (vestnikctl). */
vn_store *vn_store_open(const vn_store_options *opts, vn_buf *err);
/* Writes everything pending, waiting for the disk, then closes. */
void vn_store_close(vn_store *s);

/* Grouped mode on loop (vestnikd): writes are batched and made durable by
 * a writer thread; see store.h. 0 or a negative errno. */
int vn_store_attach_loop(vn_store *s, uv_loop_t *loop);
/* Blocks until every write issued is durable and runs the callbacks that
 * are due: at shutdown, and before a module's code is unmapped. */
void vn_store_flush(vn_store *s);

/* store_batch.c, for store.c: queue a write (grouped mode). */
uint64_t vn_store_batch_seq(vn_store *s);
void vn_store_batch_queue(vn_store *s, vn_store_op *op);
vn_store_batcher *vn_store_batcher_new(vn_store *s, uv_loop_t *loop, int *err);
void vn_store_batcher_free(vn_store *s);

void vn_store_op_free(vn_store_op *op);

/* store_dump.c: the whole store as an XML document and back, between any
 * two backends (vestnikctl export / import). import refuses an archive the
 * target already has items or ids in, keeps every id and counter, and
 * overwrites documents. 0, or -1 with a message in err. */
int vn_store_export(vn_store *s, FILE *out, vn_buf *err);
int vn_store_import(vn_store *s, FILE *in, vn_buf *err);

/* The LMDB backend's constructor (store_lmdb.c). */
void *vn_store_lmdb_open(const vn_store_options *opts, vn_buf *err);
extern const vn_store_ops vn_store_lmdb_ops;

/* The PostgreSQL backend's constructor (store_pg_conn.c), which migrates
 * the schema first, and the migration alone (vestnikctl migrate): 0 with
 * what was done in report, or -1 with why not. */
void *vn_store_pg_open(const vn_store_options *opts, vn_buf *err);
extern const vn_store_ops vn_store_pg_ops;
int vn_store_pg_migrate(const vn_store_options *opts, vn_buf *report);

#endif
