/*
 * store_lmdb.c - the LMDB storage backend (the default).
 *
 * One LMDB environment lives in the store directory; vestnikd and vestnikctl
 * may open it at the same time (LMDB's lock file arbitrates), and any thread
 * may use it (MDB_NOTLS). apply runs a list of writes in one write
 * transaction committed with LMDB's default durable sync (data pages synced
 * before the meta page is written), so what it returns OK for survives
 * kill -9 and power loss; in grouped mode it runs on the writer thread, the
 * only thread that ever holds a write transaction. Reads use a fresh read
 * transaction each, or in grouped mode the loop's pinned snapshot, renewed
 * by refresh. Callbacks run inside the read transaction and may call back
 * into the store, reads and writes alike.
 *
 * Key layout. Names are C strings, so each is stored NUL-terminated: no key
 * component can be a prefix of another ("a\0" vs "ab\0"), and byte order of
 * the keys is the component-wise order of the names. Ids are 8 bytes
 * big-endian, so byte order is numeric order.
 *
 *   docs       host \0 store \0 user \0 key \0            -> value
 *              foreach(host,user,store) is the range "host\0store\0user\0";
 *              foreach_user(host,store) walks "host\0store\0" seeking past
 *              each user; delete_user visits each store of the host.
 *   items      host \0 user \0 archive \0 id               -> item
 *              item: ts_us (8, big-endian two's complement), with length
 *              (4, big-endian), with, \0, data.
 *   with_index host \0 user \0 archive \0 jid \0 id       -> (empty)
 *              one entry under the bare JID of every item's with and, when
 *              with is a full JID, one more under the full JID, so a "with"
 *              query is a range scan that needs no filtering. A jid longer
 *              than WITH_KEY_MAX bytes is indexed as its first
 *              WITH_KEY_MAX + 1 - 64 bytes and the hex SHA-256 of all of it:
 *              WITH_KEY_MAX + 1 bytes, a length no plain jid is stored at.
 *   archives   host \0 user \0 archive \0                  -> last id (8),
 *              item count (8); the id counter survives deletions so ids are
 *              never reused, and an unfiltered count is one lookup.
 *
 * Ids are max(last id + 1, ts_us): id order is time order, and an archive's
 * time bounds are id bounds. In grouped mode the front end assigns them (it
 * knows the queued appends); apply refuses one that is not past the
 * archive's last id. Deleting many entries (delete_user, delete_before)
 * commits in chunks of DELETE_CHUNK so a huge archive cannot exceed LMDB's
 * dirty page limit; each chunk keeps the counts consistent.
 */
#include <errno.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_backend.h"
#include "vestnik/log.h"

#define KEY_CAP 511 /* LMDB's default (and Debian's) maximum key size */
#define WITH_KEY_MAX 128
#define ITEM_HEADER 12
#define META_SIZE 16
#define DELETE_CHUNK 10000
#define DEFAULT_MAP_SIZE_MB 1024

typedef struct lmdb_store {
    MDB_env *env;
    MDB_dbi docs, items, with_index, archives;
    size_t max_key;
    MDB_txn *snap; /* grouped mode: the read snapshot of every read */
} lmdb_store;

typedef struct key_buf {
    size_t len;
    bool too_long;
    unsigned char data[KEY_CAP];
} key_buf;

typedef struct archive_meta {
    uint64_t last_id;
    uint64_t count;
} archive_meta;

/* ---- keys and values ---- */

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void key_add_bytes(key_buf *k, const void *bytes, size_t n)
{
    if (k->too_long || n > KEY_CAP - k->len) {
        k->too_long = true;
        return;
    }
    memcpy(k->data + k->len, bytes, n);
    k->len += n;
}

/* A name with its terminating NUL. */
static void key_add_name(key_buf *k, const char *name)
{
    key_add_bytes(k, name, strlen(name) + 1);
}

static void key_add_id(key_buf *k, uint64_t id)
{
    unsigned char be[8];
    put_be64(be, id);
    key_add_bytes(k, be, sizeof be);
}

static bool key_fits(const lmdb_store *st, const key_buf *k, const char *what)
{
    if (k->too_long || k->len > st->max_key) {
        vn_log_error("store: %s: key longer than LMDB's limit of %zu bytes", what, st->max_key);
        return false;
    }
    return true;
}

static MDB_val key_val(const key_buf *k)
{
    return (MDB_val){.mv_size = k->len, .mv_data = (void *)k->data};
}

static bool has_prefix(const MDB_val *key, const key_buf *prefix)
{
    return key->mv_size >= prefix->len && memcmp(key->mv_data, prefix->data, prefix->len) == 0;
}

/* host \0 user \0 archive \0 */
static key_buf archive_prefix(const char *host, const char *user, const char *archive)
{
    key_buf k = {0};
    key_add_name(&k, host);
    key_add_name(&k, user);
    key_add_name(&k, archive);
    return k;
}

/* The with_index prefix of one JID under an archive prefix. */
static key_buf with_prefix(const key_buf *archive, const char *jid, size_t jid_len)
{
    key_buf k = *archive;
    if (jid_len <= WITH_KEY_MAX) {
        key_add_bytes(&k, jid, jid_len);
    } else {
        unsigned char digest[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH + 1];
        SHA256((const unsigned char *)jid, jid_len, digest);
        OPENSSL_buf2hexstr_ex(hex, sizeof hex, NULL, digest, sizeof digest, '\0');
        key_add_bytes(&k, jid, WITH_KEY_MAX + 1 - 2 * SHA256_DIGEST_LENGTH);
        key_add_bytes(&k, hex, 2 * SHA256_DIGEST_LENGTH);
    }
    key_add_bytes(&k, "", 1);
    return k;
}

static size_t bare_len(const char *jid)
{
    const char *slash = strchr(jid, '/');
    return slash ? (size_t)(slash - jid) : strlen(jid);
}

/* The one or two with_index keys of an item. Returns how many. */
static int with_index_keys(const key_buf *archive, const char *with, uint64_t id, key_buf out[2])
{
    size_t full = strlen(with), bare = bare_len(with);
    int n = 0;

    if (!full)
        return 0;
    out[n] = with_prefix(archive, with, bare);
    key_add_id(&out[n++], id);
    if (bare < full) {
        out[n] = with_prefix(archive, with, full);
        key_add_id(&out[n++], id);
    }
    return n;
}

static bool item_decode(const MDB_val *val, uint64_t id, vn_archive_item *item)
{
    const unsigned char *p = val->mv_data;
    if (val->mv_size < ITEM_HEADER + 1)
        return false;
    uint32_t with_len = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
    if (with_len > val->mv_size - ITEM_HEADER - 1 || p[ITEM_HEADER + with_len] != '\0')
        return false;
    item->id = id;
    item->ts_us = (int64_t)get_be64(p);
    item->with = (const char *)p + ITEM_HEADER;
    item->data = p + ITEM_HEADER + with_len + 1;
    item->len = val->mv_size - ITEM_HEADER - with_len - 1;
    return true;
}

static void item_encode(unsigned char *p, int64_t ts_us, const char *with, size_t with_len,
                        const void *data, size_t len)
{
    put_be64(p, (uint64_t)ts_us);
    p[8] = (unsigned char)(with_len >> 24);
    p[9] = (unsigned char)(with_len >> 16);
    p[10] = (unsigned char)(with_len >> 8);
    p[11] = (unsigned char)with_len;
    memcpy(p + ITEM_HEADER, with, with_len + 1);
    if (len)
        memcpy(p + ITEM_HEADER + with_len + 1, data, len);
}

/* ---- transactions and errors ---- */

static int fail(const char *what, int rc)
{
    if (rc == MDB_MAP_FULL)
        vn_log_error("store: %s: the LMDB map is full; raise the store's map_size_mb", what);
    else if (rc == MDB_MAP_RESIZED)
        vn_log_error("store: %s: another process grew the LMDB map; give vestnikd and "
                     "vestnikctl the same map_size_mb and restart",
                     what);
    else
        vn_log_error("store: %s: %s", what, mdb_strerror(rc));
    return VN_STORE_ERROR;
}

static int begin(lmdb_store *st, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(st->env, NULL, flags, txn);
    if (rc == MDB_READERS_FULL) {
        int dead = 0;
        mdb_reader_check(st->env, &dead);
        if (dead > 0)
            rc = mdb_txn_begin(st->env, NULL, flags, txn);
    }
    return rc;
}

/* A read transaction: the pinned snapshot, or a fresh one. */
static int begin_read(lmdb_store *st, MDB_txn **txn)
{
    if (st->snap) {
        *txn = st->snap;
        return 0;
    }
    return begin(st, MDB_RDONLY, txn);
}

/* Ends a read transaction (and its cursor) and maps rc to a result. */
static int end_read(lmdb_store *st, MDB_txn *txn, MDB_cursor *cur, int rc, const char *what)
{
    if (cur)
        mdb_cursor_close(cur);
    if (txn != st->snap)
        mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return VN_STORE_NOT_FOUND;
    return rc ? fail(what, rc) : VN_STORE_OK;
}

/* Commits a write transaction after rc == 0, aborts it otherwise. */
static int end_write(MDB_txn *txn, int rc, const char *what)
{
    if (rc) {
        mdb_txn_abort(txn);
        return fail(what, rc);
    }
    rc = mdb_txn_commit(txn);
    return rc ? fail(what, rc) : VN_STORE_OK;
}

static int meta_read(MDB_txn *txn, lmdb_store *st, const key_buf *archive, archive_meta *meta)
{
    MDB_val key = key_val(archive), val;
    int rc = mdb_get(txn, st->archives, &key, &val);

    *meta = (archive_meta){0};
    if (rc)
        return rc;
    if (val.mv_size != META_SIZE)
        return MDB_CORRUPTED;
    meta->last_id = get_be64(val.mv_data);
    meta->count = get_be64((const unsigned char *)val.mv_data + 8);
    return 0;
}

static int meta_write(MDB_txn *txn, lmdb_store *st, const key_buf *archive,
                      const archive_meta *meta)
{
    unsigned char buf[META_SIZE];
    MDB_val key = key_val(archive), val = {.mv_size = sizeof buf, .mv_data = buf};

    put_be64(buf, meta->last_id);
    put_be64(buf + 8, meta->count);
    return mdb_put(txn, st->archives, &key, &val, 0);
}

/* Deletes up to *budget entries whose keys start with prefix. */
static int delete_prefix(MDB_txn *txn, MDB_dbi dbi, const key_buf *prefix, size_t *budget)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);

    if (rc)
        return rc;
    while (*budget > 0) {
        MDB_val key = key_val(prefix), val;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc || !has_prefix(&key, prefix))
            break;
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        (*budget)--;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Deletes up to *budget items with lo <= id <= hi, with their index
 * entries; *deleted counts them. */
static int delete_items(MDB_txn *txn, lmdb_store *st, const key_buf *archive, uint64_t lo,
                        uint64_t hi, size_t *budget, uint64_t *deleted)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->items, &cur);

    if (rc)
        return rc;
    while (*budget > 0 && lo <= hi) {
        key_buf seek = *archive;
        key_add_id(&seek, lo);
        MDB_val key = key_val(&seek), val;
        vn_archive_item item;
        key_buf index_keys[2];

        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc || key.mv_size != archive->len + 8 || !has_prefix(&key, archive))
            break;
        uint64_t id = get_be64((const unsigned char *)key.mv_data + archive->len);
        if (id > hi)
            break;
        if (!item_decode(&val, id, &item)) {
            rc = MDB_CORRUPTED;
            break;
        }
        int n = with_index_keys(archive, item.with, id, index_keys);
        for (int i = 0; i < n && !rc; i++) {
            MDB_val index_key = key_val(&index_keys[i]);
            rc = mdb_del(txn, st->with_index, &index_key, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        }
        if (!rc)
            rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        (*budget)--;
        (*deleted)++;
        if (id == UINT64_MAX)
            break;
        lo = id + 1;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- documents ---- */

static key_buf doc_key(const char *host, const char *user, const char *store)
{
    key_buf k = {0};
    key_add_name(&k, host);
    key_add_name(&k, store);
    key_add_name(&k, user);
    return k;
}

static int lmdb_get(void *impl, const char *host, const char *user, const char *store,
                    const char *key, vn_buf *out)
{
    lmdb_store *st = impl;
    key_buf k = doc_key(host, user, store);
    MDB_txn *txn;
    MDB_val kv, val;

    vn_buf_reset(out);
    key_add_name(&k, key);
    if (!key_fits(st, &k, "get"))
        return VN_STORE_ERROR;
    int rc = begin_read(st, &txn);
    if (rc)
        return fail("get", rc);
    kv = key_val(&k);
    rc = mdb_get(txn, st->docs, &kv, &val);
    if (!rc)
        vn_buf_append(out, val.mv_data, val.mv_size);
    return end_read(st, txn, NULL, rc, "get");
}

static int lmdb_foreach(void *impl, const char *host, const char *user, const char *store,
                        vn_store_key_cb cb, void *ud)
{
    lmdb_store *st = impl;
    key_buf prefix = doc_key(host, user, store);
    MDB_txn *txn;
    MDB_cursor *cur = NULL;

    if (!key_fits(st, &prefix, "foreach"))
        return VN_STORE_ERROR;
    int rc = begin_read(st, &txn);
    if (rc)
        return fail("foreach", rc);
    rc = mdb_cursor_open(txn, st->docs, &cur);
    MDB_val key = key_val(&prefix), val;
    for (MDB_cursor_op op = MDB_SET_RANGE; !rc; op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc || !has_prefix(&key, &prefix))
            break;
        if (!cb((const char *)key.mv_data + prefix.len, val.mv_data, val.mv_size, ud))
            break;
    }
    rc = end_read(st, txn, cur, rc, "foreach");
    return rc == VN_STORE_NOT_FOUND ? VN_STORE_OK : rc;
}

static int lmdb_foreach_user(void *impl, const char *host, const char *store, vn_store_user_cb cb,
                             void *ud)
{
    lmdb_store *st = impl;
    key_buf prefix = {0};
    MDB_txn *txn;
    MDB_cursor *cur = NULL;

    key_add_name(&prefix, host);
    key_add_name(&prefix, store);
    if (!key_fits(st, &prefix, "foreach_user"))
        return VN_STORE_ERROR;
    int rc = begin_read(st, &txn);
    if (rc)
        return fail("foreach_user", rc);
    rc = mdb_cursor_open(txn, st->docs, &cur);
    key_buf seek = prefix;
    while (!rc) {
        MDB_val key = key_val(&seek), val;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc || !has_prefix(&key, &prefix))
            break;
        const char *found = (const char *)key.mv_data + prefix.len;
        if (!cb(found, ud))
            break;
        /* The next user sorts at or after user "\x01", past all its keys. */
        seek = prefix;
        key_add_bytes(&seek, found, strlen(found));
        key_add_bytes(&seek, "\x01", 1);
    }
    rc = end_read(st, txn, cur, rc, "foreach_user");
    return rc == VN_STORE_NOT_FOUND ? VN_STORE_OK : rc;
}

/* Deletes up to *budget documents of user, one store of host at a time. */
static int delete_user_documents(MDB_txn *txn, lmdb_store *st, const char *host, const char *user,
                                 size_t *budget)
{
    key_buf host_prefix = {0};
    MDB_cursor *cur;

    key_add_name(&host_prefix, host);
    key_buf seek = host_prefix;
    int rc = mdb_cursor_open(txn, st->docs, &cur);
    if (rc)
        return rc;
    while (*budget > 0) {
        MDB_val key = key_val(&seek), val;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc || !has_prefix(&key, &host_prefix))
            break;
        const char *store = (const char *)key.mv_data + host_prefix.len;
        key_buf user_docs = host_prefix;
        key_add_name(&user_docs, store);
        key_add_name(&user_docs, user);
        seek = host_prefix;
        key_add_bytes(&seek, store, strlen(store));
        key_add_bytes(&seek, "\x01", 1);
        if (user_docs.too_long)
            continue; /* such a key could not have been stored */
        rc = delete_prefix(txn, st->docs, &user_docs, budget);
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Deletes up to *budget items of user, archive by archive; an archive's
 * record goes with its last item. */
static int delete_user_archives(MDB_txn *txn, lmdb_store *st, const key_buf *user_prefix,
                                size_t *budget)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->archives, &cur);

    if (rc)
        return rc;
    while (*budget > 0) {
        MDB_val key = key_val(user_prefix), val;
        archive_meta meta;
        uint64_t deleted = 0;

        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
        if (rc || !has_prefix(&key, user_prefix))
            break;
        key_buf archive = {0};
        key_add_bytes(&archive, key.mv_data, key.mv_size);
        rc = meta_read(txn, st, &archive, &meta);
        if (!rc)
            rc = delete_items(txn, st, &archive, 1, UINT64_MAX, budget, &deleted);
        if (rc)
            break;
        if (*budget == 0) {
            meta.count = meta.count > deleted ? meta.count - deleted : 0;
            rc = meta_write(txn, st, &archive, &meta);
        } else {
            MDB_val archive_key = key_val(&archive);
            rc = mdb_del(txn, st->archives, &archive_key, NULL);
        }
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- archives ---- */

/* A positioned walk over the items (or the with_index entries) of one
 * archive whose ids lie in [lo, hi], in either direction. */
typedef struct archive_scan {
    lmdb_store *st;
    MDB_txn *txn;
    MDB_cursor *cur;
    key_buf archive; /* item key prefix */
    key_buf prefix;  /* prefix of the walked keys: archive, or archive + jid */
    uint64_t lo, hi;
    bool reverse;
    bool unbounded;   /* no id or time bounds at all */
    bool by_with;     /* walking with_index entries rather than items */
    MDB_val key, val; /* the current entry */
} archive_scan;

/* Prepares the scan. False if there is nothing to walk: *key_ok tells an
 * unusable (too long) key from a query no id can match. */
static bool scan_init(archive_scan *sc, lmdb_store *st, const char *host, const char *user,
                      const char *archive_name, const vn_archive_query *q, bool *key_ok)
{
    bool empty = false;

    *sc = (archive_scan){.st = st, .lo = 1, .hi = UINT64_MAX, .reverse = q->reverse};
    sc->archive = archive_prefix(host, user, archive_name);
    sc->prefix = sc->archive;
    if (q->with && q->with[0]) {
        sc->by_with = true;
        sc->prefix = with_prefix(&sc->archive, q->with, strlen(q->with));
    }
    *key_ok = key_fits(st, &sc->archive, "query") && key_fits(st, &sc->prefix, "query");
    if (q->start_us > 0 && (uint64_t)q->start_us > sc->lo)
        sc->lo = (uint64_t)q->start_us;
    if (q->after_id == UINT64_MAX)
        empty = true;
    else if (q->after_id >= sc->lo)
        sc->lo = q->after_id + 1;
    if (q->end_us > 0 && (uint64_t)q->end_us < sc->hi)
        sc->hi = (uint64_t)q->end_us;
    if (q->before_id && q->before_id <= sc->hi)
        sc->hi = q->before_id - 1;
    empty = empty || sc->lo > sc->hi;
    sc->unbounded = !empty && sc->lo == 1 && sc->hi == UINT64_MAX;
    return *key_ok && !empty;
}

/* Moves to the first or the next walked entry in range: 0, MDB_NOTFOUND
 * past the end, or an LMDB error. */
static int scan_step(archive_scan *sc, bool first, uint64_t *id)
{
    int rc;

    if (!first) {
        rc = mdb_cursor_get(sc->cur, &sc->key, &sc->val, sc->reverse ? MDB_PREV : MDB_NEXT);
    } else {
        key_buf seek = sc->prefix;
        key_add_id(&seek, sc->reverse ? sc->hi : sc->lo);
        sc->key = key_val(&seek);
        rc = mdb_cursor_get(sc->cur, &sc->key, &sc->val, MDB_SET_RANGE);
        if (sc->reverse) {
            if (rc == MDB_NOTFOUND)
                rc = mdb_cursor_get(sc->cur, &sc->key, &sc->val, MDB_LAST);
            else if (!rc && (sc->key.mv_size != seek.len ||
                             memcmp(sc->key.mv_data, seek.data, seek.len) != 0))
                rc = mdb_cursor_get(sc->cur, &sc->key, &sc->val, MDB_PREV);
        }
    }
    if (rc)
        return rc;
    if (sc->key.mv_size != sc->prefix.len + 8 || !has_prefix(&sc->key, &sc->prefix))
        return MDB_NOTFOUND;
    *id = get_be64((const unsigned char *)sc->key.mv_data + sc->prefix.len);
    return *id < sc->lo || *id > sc->hi ? MDB_NOTFOUND : 0;
}

/* Moves to the first or the next matching item and, if item is non-NULL,
 * decodes it there. */
static int scan_next(archive_scan *sc, bool first, vn_archive_item *item)
{
    uint64_t id;
    int rc = scan_step(sc, first, &id);

    if (rc || !item)
        return rc;
    MDB_val val = sc->val;
    if (sc->by_with) {
        key_buf item_key = sc->archive;
        key_add_id(&item_key, id);
        MDB_val key = key_val(&item_key);
        rc = mdb_get(sc->txn, sc->st->items, &key, &val);
        if (rc)
            return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    }
    return item_decode(&val, id, item) ? 0 : MDB_CORRUPTED;
}

static int scan_begin(archive_scan *sc)
{
    int rc = begin_read(sc->st, &sc->txn);
    if (rc)
        return rc;
    rc = mdb_cursor_open(sc->txn, sc->by_with ? sc->st->with_index : sc->st->items, &sc->cur);
    if (rc) {
        if (sc->txn != sc->st->snap)
            mdb_txn_abort(sc->txn);
        sc->txn = NULL;
    }
    return rc;
}

static int lmdb_archive_query(void *impl, const char *host, const char *user, const char *archive,
                              const vn_archive_query *q, vn_archive_cb cb, void *ud, bool *complete)
{
    archive_scan sc;
    bool key_ok, more = false;

    if (!scan_init(&sc, impl, host, user, archive, q, &key_ok)) {
        if (complete)
            *complete = key_ok;
        return key_ok ? VN_STORE_OK : VN_STORE_ERROR;
    }
    int rc = scan_begin(&sc);
    if (rc)
        return fail("query", rc);
    size_t delivered = 0;
    bool stopped = false;
    vn_archive_item item;
    for (bool first = true; !(rc = scan_next(&sc, first, &item)); first = false) {
        if (stopped || (q->limit && delivered == q->limit)) {
            more = true;
            break;
        }
        stopped = !cb(&item, ud);
        delivered++;
    }
    rc = end_read(sc.st, sc.txn, sc.cur, rc, "query");
    if (rc == VN_STORE_ERROR)
        return rc;
    if (complete)
        *complete = !more;
    return VN_STORE_OK;
}

static int lmdb_archive_count(void *impl, const char *host, const char *user, const char *archive,
                              const vn_archive_query *q, size_t *count)
{
    archive_scan sc;
    bool key_ok;

    *count = 0;
    if (!scan_init(&sc, impl, host, user, archive, q, &key_ok))
        return key_ok ? VN_STORE_OK : VN_STORE_ERROR;
    int rc = scan_begin(&sc);
    if (rc)
        return fail("count", rc);
    if (sc.unbounded && !sc.by_with) {
        archive_meta meta;
        rc = meta_read(sc.txn, sc.st, &sc.archive, &meta);
        *count = (size_t)meta.count;
    } else {
        for (bool first = true; !(rc = scan_next(&sc, first, NULL)); first = false)
            (*count)++;
    }
    rc = end_read(sc.st, sc.txn, sc.cur, rc, "count");
    return rc == VN_STORE_ERROR ? rc : VN_STORE_OK;
}

/* ---- writes ---- */

static int apply_put(MDB_txn *txn, lmdb_store *st, const vn_store_op *op)
{
    key_buf k = doc_key(op->host, op->user, op->name);
    key_add_name(&k, op->key);
    MDB_val kv = key_val(&k), val = {.mv_size = op->len, .mv_data = op->data ? op->data : ""};
    return mdb_put(txn, st->docs, &kv, &val, 0);
}

static int apply_delete(MDB_txn *txn, lmdb_store *st, const vn_store_op *op)
{
    key_buf k = doc_key(op->host, op->user, op->name);
    key_add_name(&k, op->key);
    MDB_val kv = key_val(&k);
    int rc = mdb_del(txn, st->docs, &kv, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Up to *budget entries; *done once nothing of the user is left. */
static int apply_delete_user(MDB_txn *txn, lmdb_store *st, const vn_store_op *op, size_t *budget,
                             bool *done)
{
    key_buf user_prefix = {0};

    key_add_name(&user_prefix, op->host);
    key_add_name(&user_prefix, op->user);
    int rc = delete_user_documents(txn, st, op->host, op->user, budget);
    if (!rc && *budget > 0)
        rc = delete_user_archives(txn, st, &user_prefix, budget);
    *done = *budget > 0;
    return rc;
}

static int apply_append(MDB_txn *txn, lmdb_store *st, vn_store_op *op)
{
    key_buf archive = archive_prefix(op->host, op->user, op->name);
    size_t with_len = strlen(op->key);
    archive_meta meta;
    int rc = meta_read(txn, st, &archive, &meta);

    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (!op->id) {
        if (meta.last_id == UINT64_MAX) {
            vn_log_error("store: append: archive %s has used up its ids", op->name);
            return MDB_KEYEXIST;
        }
        op->id = meta.last_id + 1;
        if (op->ts_us > 0 && (uint64_t)op->ts_us > op->id)
            op->id = (uint64_t)op->ts_us;
    } else if (op->id <= meta.last_id) {
        vn_log_error("store: append: id %llu of archive %s is taken: another process writes "
                     "to this store",
                     (unsigned long long)op->id, op->name);
        return MDB_KEYEXIST;
    }

    key_buf item_key = archive, index_keys[2];
    key_add_id(&item_key, op->id);
    int index_count = with_index_keys(&archive, op->key, op->id, index_keys);
    MDB_val key = key_val(&item_key);
    MDB_val val = {.mv_size = ITEM_HEADER + with_len + 1 + op->len, .mv_data = NULL};
    rc = mdb_put(txn, st->items, &key, &val, MDB_NOOVERWRITE | MDB_RESERVE);
    if (!rc)
        item_encode(val.mv_data, op->ts_us, op->key, with_len, op->data, op->len);
    for (int i = 0; i < index_count && !rc; i++) {
        MDB_val index_key = key_val(&index_keys[i]), empty = {0, NULL};
        rc = mdb_put(txn, st->with_index, &index_key, &empty, 0);
    }
    meta.last_id = op->id;
    meta.count++;
    return rc ? rc : meta_write(txn, st, &archive, &meta);
}

static int apply_delete_id(MDB_txn *txn, lmdb_store *st, const vn_store_op *op)
{
    key_buf archive = archive_prefix(op->host, op->user, op->name);
    archive_meta meta;
    size_t budget = 1;
    uint64_t deleted = 0;
    int rc = meta_read(txn, st, &archive, &meta);

    if (!rc && op->id > 0)
        rc = delete_items(txn, st, &archive, op->id, op->id, &budget, &deleted);
    if (rc || !deleted)
        return rc == MDB_NOTFOUND ? 0 : rc;
    meta.count = meta.count > 0 ? meta.count - 1 : 0;
    return meta_write(txn, st, &archive, &meta);
}

/* Up to *budget items; *done once none older is left. */
static int apply_delete_before(MDB_txn *txn, lmdb_store *st, const vn_store_op *op, size_t *budget,
                               bool *done)
{
    key_buf archive = archive_prefix(op->host, op->user, op->name);
    uint64_t hi = op->before_us == 0 ? UINT64_MAX : (uint64_t)op->before_us - 1;
    archive_meta meta;
    uint64_t deleted = 0;
    int rc = meta_read(txn, st, &archive, &meta);

    *done = true;
    if (rc)
        return rc == MDB_NOTFOUND ? 0 : rc;
    rc = delete_items(txn, st, &archive, 1, hi, budget, &deleted);
    *done = *budget > 0;
    meta.count = meta.count > deleted ? meta.count - deleted : 0;
    if (!rc && deleted > 0)
        rc = meta_write(txn, st, &archive, &meta);
    return rc;
}

static int apply_raise_last_id(MDB_txn *txn, lmdb_store *st, const vn_store_op *op)
{
    key_buf archive = archive_prefix(op->host, op->user, op->name);
    archive_meta meta;
    int rc = meta_read(txn, st, &archive, &meta);

    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (meta.last_id >= op->id)
        return 0;
    meta.last_id = op->id;
    return meta_write(txn, st, &archive, &meta);
}

static int apply_one(MDB_txn *txn, lmdb_store *st, vn_store_op *op, size_t *budget, bool *done)
{
    *done = true;
    switch (op->kind) {
    case VN_OP_PUT: return apply_put(txn, st, op);
    case VN_OP_DELETE: return apply_delete(txn, st, op);
    case VN_OP_DELETE_USER: return apply_delete_user(txn, st, op, budget, done);
    case VN_OP_APPEND: return apply_append(txn, st, op);
    case VN_OP_DELETE_ID: return apply_delete_id(txn, st, op);
    case VN_OP_DELETE_BEFORE: return apply_delete_before(txn, st, op, budget, done);
    case VN_OP_RAISE_LAST_ID: return apply_raise_last_id(txn, st, op);
    }
    return MDB_INVALID;
}

/* One durable commit for all of ops, unless a large deletion among them
 * needs more than one chunk: then a commit per chunk. */
static int lmdb_apply(void *impl, vn_store_op *ops)
{
    lmdb_store *st = impl;
    size_t budget = DELETE_CHUNK;
    MDB_txn *txn;
    int rc = begin(st, 0, &txn);

    if (rc)
        return fail("write", rc);
    for (vn_store_op *op = ops; op;) {
        bool done;
        rc = apply_one(txn, st, op, &budget, &done);
        if (rc)
            break;
        if (done)
            op = op->next;
        if (budget > 0)
            continue;
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (!rc)
            rc = begin(st, 0, &txn);
        if (rc)
            return fail("write", rc);
        budget = DELETE_CHUNK;
    }
    return end_write(txn, rc, "write");
}

static int lmdb_check(void *impl, const vn_store_op *op)
{
    lmdb_store *st = impl;
    key_buf k = {0}, index_keys[2];

    switch (op->kind) {
    case VN_OP_PUT:
    case VN_OP_DELETE:
        k = doc_key(op->host, op->user, op->name);
        key_add_name(&k, op->key);
        return key_fits(st, &k, op->kind == VN_OP_PUT ? "put" : "delete") ? VN_STORE_OK
                                                                          : VN_STORE_ERROR;
    case VN_OP_DELETE_USER:
        key_add_name(&k, op->host);
        key_add_name(&k, op->user);
        return key_fits(st, &k, "delete_user") ? VN_STORE_OK : VN_STORE_ERROR;
    case VN_OP_APPEND:
        k = archive_prefix(op->host, op->user, op->name);
        if (!key_fits(st, &k, "append"))
            return VN_STORE_ERROR;
        size_t with_len = strlen(op->key);
        if (with_len > UINT32_MAX || op->len > SIZE_MAX - ITEM_HEADER - with_len - 1) {
            vn_log_error("store: append: item too large");
            return VN_STORE_ERROR;
        }
        int n = with_index_keys(&k, op->key, 0, index_keys);
        for (int i = 0; i < n; i++)
            if (!key_fits(st, &index_keys[i], "append"))
                return VN_STORE_ERROR;
        key_add_id(&k, 0);
        return key_fits(st, &k, "append") ? VN_STORE_OK : VN_STORE_ERROR;
    case VN_OP_DELETE_ID:
    case VN_OP_DELETE_BEFORE:
    case VN_OP_RAISE_LAST_ID:
        k = archive_prefix(op->host, op->user, op->name);
        return key_fits(st, &k, op->kind == VN_OP_DELETE_ID ? "delete_id" : "delete_before")
                   ? VN_STORE_OK
                   : VN_STORE_ERROR;
    }
    return VN_STORE_ERROR;
}

static int lmdb_archive_last_id(void *impl, const char *host, const char *user,
                                const char *archive_name, uint64_t *id)
{
    lmdb_store *st = impl;
    key_buf archive = archive_prefix(host, user, archive_name);
    archive_meta meta;
    MDB_txn *txn;

    *id = 0;
    if (!key_fits(st, &archive, "append"))
        return VN_STORE_ERROR;
    int rc = begin_read(st, &txn);
    if (rc)
        return fail("append", rc);
    rc = meta_read(txn, st, &archive, &meta);
    *id = meta.last_id;
    rc = end_read(st, txn, NULL, rc, "append");
    return rc == VN_STORE_NOT_FOUND ? VN_STORE_OK : rc;
}

/* ---- dumping everything ---- */

/* The n NUL-terminated names at the start of key into names; false if
 * the key does not hold them. */
static bool split_names(const MDB_val *key, const char **names, int n, size_t *used)
{
    const char *p = key->mv_data, *end = p + key->mv_size;

    for (int i = 0; i < n; i++) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul)
            return false;
        names[i] = p;
        p = nul + 1;
    }
    *used = (size_t)(p - (const char *)key->mv_data);
    return true;
}

static int dump_archive_items(MDB_txn *txn, lmdb_store *st, const MDB_val *archive_key,
                              const vn_store_dump_cbs *cbs, void *ud, bool *go)
{
    MDB_cursor *cur;
    key_buf prefix = {0};
    int rc = mdb_cursor_open(txn, st->items, &cur);

    if (rc)
        return rc;
    key_add_bytes(&prefix, archive_key->mv_data, archive_key->mv_size);
    MDB_val key = key_val(&prefix), val;
    for (MDB_cursor_op op = MDB_SET_RANGE; *go; op = MDB_NEXT) {
        vn_archive_item item;
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc || key.mv_size != prefix.len + 8 || !has_prefix(&key, &prefix))
            break;
        uint64_t id = get_be64((const unsigned char *)key.mv_data + prefix.len);
        if (!item_decode(&val, id, &item)) {
            rc = MDB_CORRUPTED;
            break;
        }
        *go = cbs->item(ud, &item);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int lmdb_dump(void *impl, const vn_store_dump_cbs *cbs, void *ud)
{
    lmdb_store *st = impl;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    bool go = true;
    int rc = begin_read(st, &txn);

    if (rc)
        return fail("dump", rc);
    rc = mdb_cursor_open(txn, st->docs, &cur);
    MDB_val key, val;
    for (MDB_cursor_op op = MDB_FIRST; !rc && go; op = MDB_NEXT) {
        const char *n[4]; /* host, store, user, key */
        size_t used;
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (!rc && !split_names(&key, n, 4, &used))
            rc = MDB_CORRUPTED;
        if (!rc)
            go = cbs->doc(ud, n[0], n[2], n[1], n[3], val.mv_data, val.mv_size);
    }
    if (cur)
        mdb_cursor_close(cur);
    cur = NULL;
    if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_open(txn, st->archives, &cur);
    for (MDB_cursor_op op = MDB_FIRST; !rc && go; op = MDB_NEXT) {
        const char *n[3]; /* host, user, archive */
        size_t used;
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (!rc && (!split_names(&key, n, 3, &used) || val.mv_size != META_SIZE))
            rc = MDB_CORRUPTED;
        if (!rc)
            go = cbs->archive(ud, n[0], n[1], n[2], get_be64(val.mv_data));
        if (!rc && go)
            rc = dump_archive_items(txn, st, &key, cbs, ud, &go);
    }
    rc = end_read(st, txn, cur, rc, "dump");
    return rc == VN_STORE_NOT_FOUND ? VN_STORE_OK : rc;
}

/* ---- the snapshot of grouped mode ---- */

static int lmdb_pin_snapshot(void *impl, bool pin)
{
    lmdb_store *st = impl;

    if (st->snap)
        mdb_txn_abort(st->snap);
    st->snap = NULL;
    if (!pin)
        return VN_STORE_OK;
    int rc = begin(st, MDB_RDONLY, &st->snap);
    if (rc) {
        st->snap = NULL;
        return fail("snapshot", rc);
    }
    return VN_STORE_OK;
}

static int lmdb_refresh(void *impl)
{
    lmdb_store *st = impl;

    if (!st->snap)
        return lmdb_pin_snapshot(impl, true);
    mdb_txn_reset(st->snap);
    int rc = mdb_txn_renew(st->snap);
    if (rc) {
        mdb_txn_abort(st->snap);
        st->snap = NULL;
        return fail("snapshot", rc);
    }
    return VN_STORE_OK;
}

/* ---- opening and closing ---- */

static bool ensure_directory(const char *path, vn_buf *err)
{
    struct stat sb;

    if (mkdir(path, 0700) == 0)
        return true;
    if (errno == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return true;
    if (err)
        vn_buf_printf(err, "store directory %s: %s", path,
                      errno == EEXIST ? "not a directory" : strerror(errno));
    return false;
}

static int open_databases(lmdb_store *st)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, 0, &txn);

    if (rc)
        return rc;
    const struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"docs", &st->docs},
               {"items", &st->items},
               {"with_index", &st->with_index},
               {"archives", &st->archives}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && !rc; i++)
        rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

void *vn_store_lmdb_open(const vn_store_options *opts, vn_buf *err)
{
    size_t map_mb = opts->map_size_mb ? opts->map_size_mb : DEFAULT_MAP_SIZE_MB;
    lmdb_store *st;
    int rc, dead = 0;

    if (!opts->path || !opts->path[0]) {
        if (err)
            vn_buf_append_str(err, "no store path given");
        return NULL;
    }
    if (map_mb > SIZE_MAX >> 20) {
        if (err)
            vn_buf_printf(err, "store map size of %zu MB is too large", map_mb);
        return NULL;
    }
    if (!ensure_directory(opts->path, err))
        return NULL;
    st = vn_alloc(sizeof *st);
    rc = mdb_env_create(&st->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(st->env, 4);
    if (!rc)
        rc = mdb_env_set_mapsize(st->env, map_mb << 20);
    if (!rc)
        rc = mdb_env_open(st->env, opts->path, MDB_NOTLS, 0600);
    if (!rc)
        rc = mdb_reader_check(st->env, &dead);
    if (!rc)
        rc = open_databases(st);
    if (rc) {
        if (err)
            vn_buf_printf(err, "LMDB store in %s: %s", opts->path, mdb_strerror(rc));
        if (st->env)
            mdb_env_close(st->env);
        free(st);
        return NULL;
    }
    if (dead > 0)
        vn_log_info("store: cleared %d stale LMDB reader slot(s) in %s", dead, opts->path);
    int max_key = mdb_env_get_maxkeysize(st->env);
    st->max_key = max_key > 0 && max_key < KEY_CAP ? (size_t)max_key : KEY_CAP;
    return st;
}

static void lmdb_close(void *impl)
{
    lmdb_store *st = impl;
    if (st->snap)
        mdb_txn_abort(st->snap);
    mdb_env_close(st->env);
    free(st);
}

const vn_store_ops vn_store_lmdb_ops = {
    .name = "lmdb",
    .get = lmdb_get,
    .foreach = lmdb_foreach,
    .foreach_user = lmdb_foreach_user,
    .archive_query = lmdb_archive_query,
    .archive_count = lmdb_archive_count,
    .archive_last_id = lmdb_archive_last_id,
    .check = lmdb_check,
    .apply = lmdb_apply,
    .dump = lmdb_dump,
    .pin_snapshot = lmdb_pin_snapshot,
    .refresh = lmdb_refresh,
    .close = lmdb_close,
};
