/*
 * store.h - the storage interface: documents and archives.
 *
 * Two shapes cover everything the server keeps:
 *  - documents: a value (bytes, usually serialized XML) under
 *    (host, user, store, key) — accounts, rosters, vCards, private XML;
 *  - archives: append-only lists of items under (host, user, archive),
 *    each with a unique increasing id, a timestamp and a "with" JID, read
 *    back by id or time range, optionally filtered by "with", in either
 *    direction — MAM, offline messages, queues.
 *
 * user may be "" for host-wide data. Backends implement the table of
 * src/store_backend.h; LMDB is the default one. Names and a document key
 * together must fit the backend's key size (LMDB: 511 bytes counting one
 * separator per part); a longer one is an error.
 *
 * Writes are grouped (group commit). In vestnikd every write call returns
 * at once, without waiting for the disk: the writes of one loop turn form
 * a batch, and a writer thread makes the batch durable with one commit and
 * one sync while the loop goes on; writes made during that commit form the
 * next batch. (vestnikctl, with no loop, writes durably in each call.)
 *  - Errors known at once (bad arguments, a key too long, delete_id of an
 *    item that does not exist) are returned by the call; a failure of the
 *    disk reaches the durable callbacks below.
 *  - Read-your-writes: every read, in the same loop turn too, sees every
 *    write issued before it, durable or not, in the order issued; the
 *    assigned archive id is known when append returns.
 *  - Durability: a write is durable, surviving kill -9 and power loss, once
 *    a durable callback registered after it has been called with OK. Never
 *    tell anyone outside the process (a client's stream-management ack, an
 *    iq result saying "saved", a MAM result) that a write happened before
 *    that: reply from the callback, or with vn_route_durable (module.h).
 *  - Ordering: batches are made durable in the order of their writes, and
 *    durable callbacks run in the order registered.
 *
 * Callbacks (foreach, query) run inside a read and may call the store
 * again, reads and writes alike. A durable callback runs on the loop
 * thread, never inside vn_store_when_durable, and may do anything a hook
 * may, including writing again and registering another callback; it must
 * not call vn_store_flush.
 *
 * The interface is shaped for an asynchronous backend too: a PostgreSQL
 * backend runs a batch as one transaction and calls back after COMMIT,
 * keeping the same read-your-writes view of the queued writes meanwhile.
 *
 * Why a writer thread owns LMDB's write transactions, rather than commits
 * without sync on the loop and mdb_env_sync on another thread: only a
 * synced commit orders the data pages before the meta page on disk, so
 * unsynced commits can leave a corrupt environment after a power loss
 * (LMDB's own warning for MDB_NOSYNC), and a write transaction must end on
 * the thread that began it. See src/store_batch.c.
 */
#ifndef VESTNIK_STORE_H
#define VESTNIK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct vn_store vn_store;

enum { VN_STORE_OK = 0, VN_STORE_NOT_FOUND = 1, VN_STORE_ERROR = -1 };

/* ---- durability ---- */

typedef struct vn_store_waiter vn_store_waiter;
typedef void (*vn_store_durable_cb)(int status, void *arg);

/* Calls cb(VN_STORE_OK, arg) once every write issued so far is durable, or
 * cb(VN_STORE_ERROR, arg) if a batch holding some of them failed (those
 * writes are then lost, and reads no longer show them). With nothing
 * pending, cb runs at the end of the current loop turn. The returned handle
 * cancels it (until it has run; then it is gone). Without a loop
 * (vestnikctl) cb runs at once and NULL is returned. */
vn_store_waiter *vn_store_when_durable(vn_store *s, vn_store_durable_cb cb, void *arg);
/* NULL is ignored. Whoever owns arg cancels before freeing it. */
void vn_store_cancel(vn_store *s, vn_store_waiter *w);

/* ---- documents ---- */

/* Copies the value into out (out is reset first). OK, NOT_FOUND or ERROR. */
int vn_store_get(vn_store *s, const char *host, const char *user, const char *store,
                 const char *key, vn_buf *out);
int vn_store_put(vn_store *s, const char *host, const char *user, const char *store,
                 const char *key, const void *value, size_t len);
/* OK (also when it did not exist) or ERROR. */
int vn_store_delete(vn_store *s, const char *host, const char *user, const char *store,
                    const char *key);

/* Called per key in key order; return false to stop. */
typedef bool (*vn_store_key_cb)(const char *key, const void *value, size_t len, void *ud);
int vn_store_foreach(vn_store *s, const char *host, const char *user, const char *store,
                     vn_store_key_cb cb, void *ud);

/* Called per user that has at least one key in store on host, in order
 * ("" too, if host-wide data is in that store). */
typedef bool (*vn_store_user_cb)(const char *user, void *ud);
int vn_store_foreach_user(vn_store *s, const char *host, const char *store, vn_store_user_cb cb,
                          void *ud);

/* Remove every document and archive item of one user on one host. Very
 * large amounts are removed in several commits: after a crash midway, call
 * it again to finish. Archive ids of the user start again afterwards. */
int vn_store_delete_user(vn_store *s, const char *host, const char *user);

/* ---- archives ----
 *
 * An item's id is max(previous id + 1, ts_us): its timestamp, unless that is
 * not later than the archive's newest item, in which case it sorts right
 * after it. Ids are never reused, even after deletion. Time bounds
 * (start_us, end_us, delete_before) apply to ids, so id order is time
 * order; item.ts_us reports the timestamp as appended.
 */

typedef struct vn_archive_item {
    uint64_t id;      /* unique within the archive, increasing with time */
    int64_t ts_us;    /* microseconds since the epoch */
    const char *with; /* bare or full JID the item is "with"; "" if none */
    const void *data;
    size_t len;
} vn_archive_item;

/* A NULL query means every item, oldest first. */
typedef struct vn_archive_query {
    const char *with;   /* NULL or "": any; a bare JID also matches its full JIDs */
    int64_t start_us;   /* 0: unbounded; inclusive */
    int64_t end_us;     /* 0: unbounded; inclusive */
    uint64_t after_id;  /* 0: none; exclusive */
    uint64_t before_id; /* 0: none; exclusive */
    size_t limit;       /* 0: no limit */
    bool reverse;       /* newest first */
} vn_archive_query;

/* ts_us 0 means now. The assigned id is stored in *id if non-NULL. */
int vn_archive_append(vn_store *s, const char *host, const char *user, const char *archive,
                      int64_t ts_us, const char *with, const void *data, size_t len, uint64_t *id);
/* Called per matching item in query order; the item is valid during the
 * call only. Return false to stop. *complete (if non-NULL) is set to true
 * when no further matching item exists past the last one delivered. */
typedef bool (*vn_archive_cb)(const vn_archive_item *item, void *ud);
int vn_archive_query_items(vn_store *s, const char *host, const char *user, const char *archive,
                           const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete);
/* Count the items matching q (limit ignored). */
int vn_archive_count(vn_store *s, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, size_t *count);
/* OK, NOT_FOUND (no such item) or ERROR. */
int vn_archive_delete_id(vn_store *s, const char *host, const char *user, const char *archive,
                         uint64_t id);
/* Delete the items older than before_us, i.e. with id < before_us (0: all);
 * like delete_user, very many are removed in several commits. */
int vn_archive_delete_before(vn_store *s, const char *host, const char *user, const char *archive,
                             int64_t before_us);

#endif
