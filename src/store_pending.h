/*
 * store_pending.h - the pending view: reads in grouped mode see the
 * backend's snapshot with the writes queued since laid over it, so a
 * module reads what it wrote before its batch is on disk (store.c's reads
 * and writes go through here; store_batch.c drops what a batch made part
 * of the snapshot).
 */
#ifndef VESTNIK_STORE_PENDING_H
#define VESTNIK_STORE_PENDING_H

#include "store_backend.h"

vn_store_pending *vn_pending_new(void);
void vn_pending_free(vn_store_pending *p);
/* The snapshot now holds every op of batches up to seq. */
void vn_pending_drop(vn_store_pending *p, uint64_t seq);

/* Records op (seq set) in the view. For APPEND it assigns op->id; for
 * DELETE_ID it answers NOT_FOUND when the item is not there. Anything but
 * OK: the op must not be queued. */
int vn_pending_register(vn_store *s, vn_store_op *op);

int vn_pending_get(vn_store *s, const char *host, const char *user, const char *store,
                   const char *key, vn_buf *out);
int vn_pending_foreach(vn_store *s, const char *host, const char *user, const char *store,
                       vn_store_key_cb cb, void *ud);
int vn_pending_foreach_user(vn_store *s, const char *host, const char *store, vn_store_user_cb cb,
                            void *ud);
int vn_pending_query(vn_store *s, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete);
int vn_pending_count(vn_store *s, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, size_t *count);
/* Whether the backend's snapshot holds the item (OK / NOT_FOUND / ERROR),
 * and its with into *with (may be NULL). */
int vn_store_snapshot_item(vn_store *s, const char *host, const char *user, const char *archive,
                           uint64_t id, vn_buf *with);

#endif
