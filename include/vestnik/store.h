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
 * user may be "" for host-wide data. Backends implement vn_store_ops; LMDB
 * is the default one. Calls are synchronous; a write returns only after it
 * is durable (committed and synced), so a caller may acknowledge it.
 * Callbacks may call the store again, reads and writes alike. Names and a
 * document key together must fit the backend's key size (LMDB: 511 bytes
 * counting one separator per part); a longer one is an error.
 */
#ifndef VESTNIK_STORE_H
#define VESTNIK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct vn_store vn_store;

enum { VN_STORE_OK = 0, VN_STORE_NOT_FOUND = 1, VN_STORE_ERROR = -1 };

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
 * it again to finish. */
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
