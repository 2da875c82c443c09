/*
 * store_pending.c - read-your-writes in grouped mode.
 *
 * In grouped mode a write is queued (store_batch.c) and reaches the
 * backend a batch later, while reads go to the backend's snapshot, which
 * is renewed only after a batch is durable. This file keeps, on the loop
 * thread, what the queued writes change, and lays it over the snapshot for
 * every read, so a module sees its own writes at once, in the same loop
 * turn included:
 *
 *  - documents: the last queued put or delete per key (pointing at the
 *    queued op, which lives until its batch is done);
 *  - wiped users: a queued delete_user hides all the user's snapshot data;
 *  - archives: the last id handed out (ids are assigned here, so the
 *    writer never has to tell them back), the queued appends in id order,
 *    the snapshot items deleted since, and a lower bound below which
 *    delete_before hides snapshot items.
 *
 * A queued append's id is above every id of the snapshot's archive, so an
 * archive read is the snapshot's part (minus deleted items) followed by the
 * queued part, or the reverse for newest first. Everything recorded for
 * batch N is dropped once the snapshot includes N: the two never overlap.
 * The view is small: at most the batch being written and the one filling.
 */
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "store_pending.h"
#include "vestnik/log.h"

typedef struct doc_entry {
    char *k; /* host \0 user \0 store \0 key */
    size_t klen;
    const vn_store_op *op; /* the last PUT or DELETE */
    UT_hash_handle hh;
} doc_entry;

typedef struct wipe_entry {
    char *k; /* host \0 user */
    size_t klen;
    uint64_t seq;
    UT_hash_handle hh;
} wipe_entry;

typedef struct deleted_item {
    uint64_t id;
    char *with;
    uint64_t seq;      /* of the delete */
    uint64_t item_seq; /* of a queued append it deleted: counted once that landed; 0 */
} deleted_item;

typedef struct archive_entry {
    char *k; /* host \0 user \0 archive */
    size_t klen;
    bool have_last;
    uint64_t last_id, last_seq;
    const vn_store_op **items; /* queued appends, id order */
    size_t n_items, cap_items;
    deleted_item *deleted; /* snapshot items deleted by queued ops */
    size_t n_deleted, cap_deleted;
    uint64_t hide_below; /* snapshot ids below it are deleted */
    uint64_t hide_seq;
    UT_hash_handle hh;
} archive_entry;

struct vn_store_pending {
    doc_entry *docs;
    wipe_entry *wipes;
    archive_entry *archives;
    uint64_t landed; /* the last batch the snapshot includes */
};

/* ---- keys ---- */

/* Up to four names joined by NULs (no trailing NUL counted). */
static char *compose(size_t *len, const char *a, const char *b, const char *c, const char *d)
{
    const char *parts[] = {a, b, c, d};
    vn_buf k;

    vn_buf_init(&k);
    for (size_t i = 0; i < 4 && parts[i]; i++)
        vn_buf_append(&k, parts[i], strlen(parts[i]) + (i + 1 < 4 && parts[i + 1] != NULL));
    vn_buf_append(&k, "", 1); /* a NUL after the end, for the prefix test of wipes */
    char *out = vn_buf_steal(&k, len);
    (*len)--;
    return out;
}

static bool has_prefix(const char *k, size_t klen, const char *prefix, size_t plen)
{
    return klen > plen && memcmp(k, prefix, plen) == 0 && k[plen] == '\0';
}

vn_store_pending *vn_pending_new(void)
{
    return vn_alloc(sizeof(vn_store_pending));
}

static void free_doc(vn_store_pending *p, doc_entry *d)
{
    HASH_DEL(p->docs, d);
    free(d->k);
    free(d);
}

static void free_archive(vn_store_pending *p, archive_entry *a)
{
    HASH_DEL(p->archives, a);
    for (size_t i = 0; i < a->n_deleted; i++)
        free(a->deleted[i].with);
    free(a->deleted);
    free(a->items);
    free(a->k);
    free(a);
}

void vn_pending_free(vn_store_pending *p)
{
    if (!p)
        return;
    doc_entry *d, *dt;
    HASH_ITER(hh, p->docs, d, dt)
    {
        free_doc(p, d);
    }
    wipe_entry *w, *wt;
    HASH_ITER(hh, p->wipes, w, wt)
    {
        HASH_DEL(p->wipes, w);
        free(w->k);
        free(w);
    }
    archive_entry *a, *at;
    HASH_ITER(hh, p->archives, a, at)
    {
        free_archive(p, a);
    }
    free(p);
}

static uint64_t wiped(const vn_store_pending *p, const char *host, const char *user)
{
    size_t len;
    char *k = compose(&len, host, user, NULL, NULL);
    wipe_entry *w;
    HASH_FIND(hh, p->wipes, k, len, w);
    free(k);
    return w ? w->seq : 0;
}

static archive_entry *find_archive(vn_store_pending *p, const char *host, const char *user,
                                   const char *archive, bool create)
{
    size_t len;
    char *k = compose(&len, host, user, archive, NULL);
    archive_entry *a;

    HASH_FIND(hh, p->archives, k, len, a);
    if (a || !create) {
        free(k);
        return a;
    }
    a = vn_alloc(sizeof *a);
    a->k = k;
    a->klen = len;
    HASH_ADD_KEYPTR(hh, p->archives, a->k, a->klen, a);
    return a;
}

static bool archive_empty(const archive_entry *a)
{
    return !a->have_last && !a->n_items && !a->n_deleted && !a->hide_below;
}

/* ---- dropping what landed ---- */

void vn_pending_drop(vn_store_pending *p, uint64_t seq)
{
    doc_entry *d, *dt;
    HASH_ITER(hh, p->docs, d, dt)
    {
        if (d->op->seq <= seq)
            free_doc(p, d);
    }
    wipe_entry *w, *wt;
    HASH_ITER(hh, p->wipes, w, wt)
    {
        if (w->seq <= seq) {
            HASH_DEL(p->wipes, w);
            free(w->k);
            free(w);
        }
    }

    archive_entry *a, *at;
    HASH_ITER(hh, p->archives, a, at)
    {
        size_t keep = 0;
        while (keep < a->n_items && a->items[keep]->seq <= seq)
            keep++;
        if (keep) {
            memmove(a->items, a->items + keep, (a->n_items - keep) * sizeof *a->items);
            a->n_items -= keep;
        }
        size_t j = 0;
        for (size_t i = 0; i < a->n_deleted; i++) {
            if (a->deleted[i].seq <= seq)
                free(a->deleted[i].with);
            else
                a->deleted[j++] = a->deleted[i];
        }
        a->n_deleted = j;
        if (a->hide_seq <= seq)
            a->hide_below = 0;
        if (a->last_seq <= seq)
            a->have_last = false;
        if (archive_empty(a))
            free_archive(p, a);
    }
    p->landed = seq;
}

/* ---- archive matching ---- */

/* The id range of q, as the backend computes it; false if empty. */
static bool query_bounds(const vn_archive_query *q, uint64_t *lo, uint64_t *hi)
{
    *lo = 1;
    *hi = UINT64_MAX;
    if (q->start_us > 0 && (uint64_t)q->start_us > *lo)
        *lo = (uint64_t)q->start_us;
    if (q->after_id == UINT64_MAX)
        return false;
    if (q->after_id >= *lo)
        *lo = q->after_id + 1;
    if (q->end_us > 0 && (uint64_t)q->end_us < *hi)
        *hi = (uint64_t)q->end_us;
    if (q->before_id && q->before_id <= *hi)
        *hi = q->before_id - 1;
    return *lo <= *hi;
}

static bool with_matches(const char *want, const char *with)
{
    if (!want || !want[0])
        return true;
    if (strcmp(want, with) == 0)
        return true;
    const char *slash = strchr(with, '/');
    size_t bare = slash ? (size_t)(slash - with) : strlen(with);
    return strlen(want) == bare && strncmp(want, with, bare) == 0;
}

static bool item_matches(const vn_archive_query *q, uint64_t id, const char *with)
{
    uint64_t lo, hi;
    return query_bounds(q, &lo, &hi) && id >= lo && id <= hi && with_matches(q->with, with);
}

/* q with its lower bound raised past the ids delete_before hides. */
static vn_archive_query snapshot_query(const vn_archive_query *q, const archive_entry *a)
{
    vn_archive_query sq = *q;
    if (a && a->hide_below > 1 && sq.after_id < a->hide_below - 1)
        sq.after_id = a->hide_below - 1;
    sq.limit = 0;
    return sq;
}

static bool is_deleted(const archive_entry *a, uint64_t id)
{
    for (size_t i = 0; a && i < a->n_deleted; i++)
        if (a->deleted[i].id == id)
            return true;
    return false;
}

/* ---- registering writes ---- */

static void record_doc(vn_store_pending *p, const vn_store_op *op)
{
    size_t len;
    char *k = compose(&len, op->host, op->user, op->name, op->key);
    doc_entry *d;

    HASH_FIND(hh, p->docs, k, len, d);
    if (d) {
        free(k);
        d->op = op;
        return;
    }
    d = vn_alloc(sizeof *d);
    d->k = k;
    d->klen = len;
    d->op = op;
    HASH_ADD_KEYPTR(hh, p->docs, d->k, d->klen, d);
}

static void record_wipe(vn_store_pending *p, const vn_store_op *op)
{
    size_t len;
    char *k = compose(&len, op->host, op->user, NULL, NULL);

    doc_entry *d, *dt;
    HASH_ITER(hh, p->docs, d, dt)
    {
        if (has_prefix(d->k, d->klen, k, len))
            free_doc(p, d);
    }
    /* Cleared rather than freed: a read in progress may hold them. */
    archive_entry *a, *at;
    HASH_ITER(hh, p->archives, a, at)
    {
        if (!has_prefix(a->k, a->klen, k, len))
            continue;
        for (size_t i = 0; i < a->n_deleted; i++)
            free(a->deleted[i].with);
        a->n_deleted = a->n_items = 0;
        a->hide_below = 0;
        a->have_last = false;
    }
    wipe_entry *w;
    HASH_FIND(hh, p->wipes, k, len, w);
    if (w) {
        free(k);
    } else {
        w = vn_alloc(sizeof *w);
        w->k = k;
        w->klen = len;
        HASH_ADD_KEYPTR(hh, p->wipes, w->k, w->klen, w);
    }
    w->seq = op->seq;
}

static int record_append(vn_store *s, vn_store_op *op)
{
    vn_store_pending *p = s->pending;
    archive_entry *a = find_archive(p, op->host, op->user, op->name, true);

    if (!a->have_last) {
        a->last_id = 0;
        if (!wiped(p, op->host, op->user) &&
            s->ops->archive_last_id(s->impl, op->host, op->user, op->name, &a->last_id) !=
                VN_STORE_OK)
            return VN_STORE_ERROR;
        a->have_last = true;
    }
    if (a->last_id == UINT64_MAX) {
        vn_log_error("store: append: archive %s has used up its ids", op->name);
        return VN_STORE_ERROR;
    }
    op->id = a->last_id + 1;
    if (op->ts_us > 0 && (uint64_t)op->ts_us > op->id)
        op->id = (uint64_t)op->ts_us;
    a->last_id = op->id;
    a->last_seq = op->seq;
    if (a->n_items == a->cap_items) {
        a->cap_items = a->cap_items ? 2 * a->cap_items : 8;
        a->items = vn_realloc(a->items, a->cap_items * sizeof *a->items);
    }
    a->items[a->n_items++] = op;
    return VN_STORE_OK;
}

static void add_deleted(archive_entry *a, uint64_t id, const char *with, uint64_t seq,
                        uint64_t item_seq)
{
    if (a->n_deleted == a->cap_deleted) {
        a->cap_deleted = a->cap_deleted ? 2 * a->cap_deleted : 8;
        a->deleted = vn_realloc(a->deleted, a->cap_deleted * sizeof *a->deleted);
    }
    a->deleted[a->n_deleted++] =
        (deleted_item){.id = id, .with = vn_strdup(with), .seq = seq, .item_seq = item_seq};
}

static int record_delete_id(vn_store *s, const vn_store_op *op)
{
    vn_store_pending *p = s->pending;
    archive_entry *a = find_archive(p, op->host, op->user, op->name, false);

    for (size_t i = 0; a && i < a->n_items; i++) {
        const vn_store_op *item = a->items[i];
        if (item->id != op->id)
            continue;
        memmove(a->items + i, a->items + i + 1, (a->n_items - i - 1) * sizeof *a->items);
        a->n_items--;
        /* In an earlier batch, it reaches the snapshot before this delete. */
        if (item->seq < op->seq)
            add_deleted(a, item->id, item->key, op->seq, item->seq);
        return VN_STORE_OK;
    }
    if (is_deleted(a, op->id) || (a && op->id < a->hide_below) || wiped(p, op->host, op->user))
        return VN_STORE_NOT_FOUND;
    vn_buf with;
    vn_buf_init(&with);
    int rc = vn_store_snapshot_item(s, op->host, op->user, op->name, op->id, &with);
    if (rc == VN_STORE_OK)
        add_deleted(find_archive(p, op->host, op->user, op->name, true), op->id,
                    with.data ? with.data : "", op->seq, 0);
    vn_buf_free(&with);
    return rc;
}

static void record_delete_before(vn_store_pending *p, const vn_store_op *op)
{
    archive_entry *a = find_archive(p, op->host, op->user, op->name, true);
    uint64_t bound = op->before_us == 0 ? UINT64_MAX : (uint64_t)op->before_us;

    if (bound > a->hide_below) {
        a->hide_below = bound;
        a->hide_seq = op->seq;
    }
    size_t j = 0;
    for (size_t i = 0; i < a->n_items; i++)
        if (a->items[i]->id >= bound)
            a->items[j++] = a->items[i];
    a->n_items = j;
    j = 0;
    for (size_t i = 0; i < a->n_deleted; i++) {
        if (a->deleted[i].id < bound)
            free(a->deleted[i].with);
        else
            a->deleted[j++] = a->deleted[i];
    }
    a->n_deleted = j;
}

int vn_pending_register(vn_store *s, vn_store_op *op)
{
    switch (op->kind) {
    case VN_OP_PUT:
    case VN_OP_DELETE: record_doc(s->pending, op); return VN_STORE_OK;
    case VN_OP_DELETE_USER: record_wipe(s->pending, op); return VN_STORE_OK;
    case VN_OP_APPEND: return record_append(s, op);
    case VN_OP_DELETE_ID: return record_delete_id(s, op);
    case VN_OP_DELETE_BEFORE: record_delete_before(s->pending, op); return VN_STORE_OK;
    case VN_OP_RAISE_LAST_ID: break; /* applied directly by imports only */
    }
    return VN_STORE_ERROR;
}

/* ---- documents ---- */

int vn_pending_get(vn_store *s, const char *host, const char *user, const char *store,
                   const char *key, vn_buf *out)
{
    if (!s->pending->docs && !s->pending->wipes)
        return s->ops->get(s->impl, host, user, store, key, out);
    size_t len;
    char *k = compose(&len, host, user, store, key);
    doc_entry *d;

    HASH_FIND(hh, s->pending->docs, k, len, d);
    free(k);
    if (d || wiped(s->pending, host, user)) {
        vn_buf_reset(out);
        if (!d || d->op->kind != VN_OP_PUT)
            return VN_STORE_NOT_FOUND;
        vn_buf_append(out, d->op->data, d->op->len);
        return VN_STORE_OK;
    }
    return s->ops->get(s->impl, host, user, store, key, out);
}

static int compare_ops_by_key(const void *a, const void *b)
{
    const vn_store_op *x = *(const vn_store_op *const *)a, *y = *(const vn_store_op *const *)b;
    return strcmp(x->key, y->key);
}

/* The queued puts and deletes of one (host, user, store), in key order. */
static const vn_store_op **docs_of(const vn_store_pending *p, const char *host, const char *user,
                                   const char *store, size_t *n)
{
    size_t plen;
    char *prefix = compose(&plen, host, user, store, NULL);
    const vn_store_op **out = NULL;
    const doc_entry *d, *dt;

    *n = 0;
    HASH_ITER(hh, p->docs, d, dt)
    {
        if (has_prefix(d->k, d->klen, prefix, plen)) {
            out = vn_realloc(out, (*n + 1) * sizeof *out);
            out[(*n)++] = d->op;
        }
    }
    free(prefix);
    if (*n > 1)
        qsort(out, *n, sizeof *out, compare_ops_by_key);
    return out;
}

typedef struct doc_merge {
    const vn_store_op **ops;
    size_t n, next;
    vn_store_key_cb cb;
    void *ud;
    bool stopped;
} doc_merge;

/* Delivers the queued documents sorting before key (all if NULL); false
 * once the caller's callback stopped. */
static bool emit_queued_before(doc_merge *m, const char *key)
{
    while (!m->stopped && m->next < m->n && (!key || strcmp(m->ops[m->next]->key, key) < 0)) {
        const vn_store_op *op = m->ops[m->next++];
        if (op->kind == VN_OP_PUT && !m->cb(op->key, op->data, op->len, m->ud))
            m->stopped = true;
    }
    return !m->stopped;
}

static bool merge_doc(const char *key, const void *value, size_t len, void *ud)
{
    doc_merge *m = ud;

    if (!emit_queued_before(m, key))
        return false;
    if (m->next < m->n && strcmp(m->ops[m->next]->key, key) == 0) {
        const vn_store_op *op = m->ops[m->next++];
        if (op->kind == VN_OP_PUT && !m->cb(op->key, op->data, op->len, m->ud))
            m->stopped = true;
        return !m->stopped;
    }
    m->stopped = !m->cb(key, value, len, m->ud);
    return !m->stopped;
}

int vn_pending_foreach(vn_store *s, const char *host, const char *user, const char *store,
                       vn_store_key_cb cb, void *ud)
{
    doc_merge m = {.cb = cb, .ud = ud};
    if (!s->pending->docs && !s->pending->wipes)
        return s->ops->foreach (s->impl, host, user, store, cb, ud);
    bool gone = wiped(s->pending, host, user) != 0;
    int rc = VN_STORE_OK;

    m.ops = docs_of(s->pending, host, user, store, &m.n);
    if (!m.n && !gone) {
        free(m.ops);
        return s->ops->foreach (s->impl, host, user, store, cb, ud);
    }
    if (!gone)
        rc = s->ops->foreach (s->impl, host, user, store, merge_doc, &m);
    if (rc == VN_STORE_OK)
        emit_queued_before(&m, NULL);
    free(m.ops);
    return rc;
}

typedef struct name_list {
    char **names;
    size_t n;
} name_list;

static bool collect_user(const char *user, void *ud)
{
    name_list *l = ud;
    l->names = vn_realloc(l->names, (l->n + 1) * sizeof *l->names);
    l->names[l->n++] = vn_strdup(user);
    return true;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool found_one(const char *key, const void *value, size_t len, void *ud)
{
    (void)key, (void)value, (void)len;
    *(bool *)ud = true;
    return false;
}

/* With queued writes around, each candidate user (of the snapshot or the
 * queue) is checked for one visible document: slow, but foreach_user is
 * for expiry runs and administration, not for every stanza. */
int vn_pending_foreach_user(vn_store *s, const char *host, const char *store, vn_store_user_cb cb,
                            void *ud)
{
    vn_store_pending *p = s->pending;
    name_list users = {0};

    if (!HASH_COUNT(p->docs) && !HASH_COUNT(p->wipes))
        return s->ops->foreach_user(s->impl, host, store, cb, ud);
    int rc = s->ops->foreach_user(s->impl, host, store, collect_user, &users);
    const doc_entry *d, *dt;
    HASH_ITER(hh, p->docs, d, dt)
    {
        if (strcmp(d->op->host, host) == 0 && strcmp(d->op->name, store) == 0)
            collect_user(d->op->user, &users);
    }
    if (users.n > 1)
        qsort(users.names, users.n, sizeof *users.names, compare_names);
    bool go = true;
    for (size_t i = 0; i < users.n && rc == VN_STORE_OK && go; i++) {
        bool visible = false;
        if (i > 0 && strcmp(users.names[i], users.names[i - 1]) == 0)
            continue;
        rc = vn_pending_foreach(s, host, users.names[i], store, found_one, &visible);
        if (rc == VN_STORE_OK && visible)
            go = cb(users.names[i], ud);
    }
    for (size_t i = 0; i < users.n; i++)
        free(users.names[i]);
    free(users.names);
    return rc;
}

/* ---- archives ---- */

typedef struct item_merge {
    const vn_archive_query *q;
    const archive_entry *a;
    vn_archive_cb cb;
    void *ud;
    size_t delivered;
    bool stopped, more;
} item_merge;

/* One visible item in query order; false once the walk can end. */
static bool offer(item_merge *m, const vn_archive_item *item)
{
    if (m->stopped || (m->q->limit && m->delivered == m->q->limit)) {
        m->more = true;
        return false;
    }
    m->stopped = !m->cb(item, m->ud);
    m->delivered++;
    return true;
}

static bool offer_snapshot_item(const vn_archive_item *item, void *ud)
{
    item_merge *m = ud;
    return is_deleted(m->a, item->id) || offer(m, item);
}

/* The queued items matching q, in id order (a copy: the callback may
 * change the queue). */
static const vn_store_op **queued_items(const archive_entry *a, const vn_archive_query *q,
                                        size_t *n)
{
    const vn_store_op **out = NULL;

    *n = 0;
    for (size_t i = 0; a && i < a->n_items; i++)
        if (item_matches(q, a->items[i]->id, a->items[i]->key)) {
            out = vn_realloc(out, (*n + 1) * sizeof *out);
            out[(*n)++] = a->items[i];
        }
    return out;
}

static bool offer_queued(item_merge *m, const vn_store_op **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const vn_store_op *op = items[m->q->reverse ? n - 1 - i : i];
        vn_archive_item item = {
            .id = op->id, .ts_us = op->ts_us, .with = op->key, .data = op->data, .len = op->len};
        if (!offer(m, &item))
            return false;
    }
    return true;
}

int vn_pending_query(vn_store *s, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete)
{
    archive_entry *a = find_archive(s->pending, host, user, archive, false);
    bool gone = wiped(s->pending, host, user) != 0;

    if (!a && !gone)
        return s->ops->archive_query(s->impl, host, user, archive, q, cb, ud, complete);
    item_merge m = {.q = q, .a = a, .cb = cb, .ud = ud};
    size_t n;
    const vn_store_op **items = queued_items(a, q, &n);
    vn_archive_query sq = snapshot_query(q, a);
    int rc = VN_STORE_OK;
    bool go = true;

    if (q->reverse)
        go = offer_queued(&m, items, n);
    if (go && !gone)
        rc =
            s->ops->archive_query(s->impl, host, user, archive, &sq, offer_snapshot_item, &m, NULL);
    if (rc == VN_STORE_OK && !q->reverse && !m.more)
        offer_queued(&m, items, n);
    free(items);
    if (rc == VN_STORE_OK && complete)
        *complete = !m.more;
    return rc;
}

int vn_pending_count(vn_store *s, const char *host, const char *user, const char *archive,
                     const vn_archive_query *q, size_t *count)
{
    vn_store_pending *p = s->pending;
    archive_entry *a = find_archive(p, host, user, archive, false);
    bool gone = wiped(p, host, user) != 0;

    if (!a && !gone)
        return s->ops->archive_count(s->impl, host, user, archive, q, count);
    *count = 0;
    vn_archive_query sq = snapshot_query(q, a);
    if (!gone) {
        int rc = s->ops->archive_count(s->impl, host, user, archive, &sq, count);
        if (rc != VN_STORE_OK)
            return rc;
        for (size_t i = 0; a && i < a->n_deleted; i++) {
            const deleted_item *d = &a->deleted[i];
            if (d->item_seq <= p->landed && item_matches(&sq, d->id, d->with) && *count > 0)
                (*count)--;
        }
    }
    for (size_t i = 0; a && i < a->n_items; i++)
        if (item_matches(q, a->items[i]->id, a->items[i]->key))
            (*count)++;
    return VN_STORE_OK;
}

typedef struct found_item {
    vn_buf *with;
    bool found;
} found_item;

static bool keep_with(const vn_archive_item *item, void *ud)
{
    found_item *f = ud;
    f->found = true;
    if (f->with) {
        vn_buf_reset(f->with);
        vn_buf_append(f->with, item->with, strlen(item->with) + 1);
    }
    return false;
}

int vn_store_snapshot_item(vn_store *s, const char *host, const char *user, const char *archive,
                           uint64_t id, vn_buf *with)
{
    found_item f = {.with = with};

    if (id == 0)
        return VN_STORE_NOT_FOUND;
    vn_archive_query q = {
        .after_id = id - 1, .before_id = id == UINT64_MAX ? 0 : id + 1, .limit = 1};
    int rc = s->ops->archive_query(s->impl, host, user, archive, &q, keep_with, &f, NULL);
    if (rc != VN_STORE_OK)
        return rc;
    return f.found ? VN_STORE_OK : VN_STORE_NOT_FOUND;
}
