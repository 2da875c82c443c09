/*
 * test_store.c - the storage interface against a real LMDB environment.
 *
 * Every test gets a fresh store in its own mkdtemp directory (removed
 * afterwards), so the tests exercise exactly what vestnikd runs on:
 * documents, archives with paging and "with" filters, deletion, reopening,
 * and durability across kill -9 of a writing process.
 *
 * With VN_TEST_PG_CONNINFO set (tests/run-tests starts a PostgreSQL server
 * through tests/integration/pg.py), every group runs a second time on the
 * PostgreSQL backend, each test in a fresh schema named after its
 * directory (dropped afterwards): the same tests, the same answers.
 *
 * The tests of the interface run three times: in synchronous mode (each
 * write durable on return, as vestnikctl uses it), in grouped mode with no
 * batch ever landing before the end (every read answered by the pending
 * view over an empty snapshot), and in grouped mode with a flush every few
 * calls (reads over a snapshot and queued writes at once). Then group
 * commit itself: batching, callbacks and their order, kill -9.
 */
#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <lmdb.h>
#include <uv.h>

#include "store_backend.h"
#include "vestnik/store.h"

typedef struct fixture {
    char dir[64];   /* the mkdtemp directory */
    char path[128]; /* the store directory inside it, created by the store */
    vn_store *s;
} fixture;

/* How the fixture's store runs: see the top of the file. */
enum { SYNC, GROUPED, LANDING };
static int mode = SYNC;
static unsigned calls;
static uv_loop_t loop;
static uv_loop_t *store_loop = &loop;

/* PostgreSQL: the server's connection string, NULL while LMDB runs. */
static const char *pg_base;
static unsigned pg_write_timeout_ms;

/* The schema of the store directory path: t_ and its letters and digits
 * after "vn-store-", in lower case, as search_path folds it. */
static void pg_schema_of(const char *path, char *out, size_t size)
{
    const char *dash = strrchr(path, '-');
    size_t n = snprintf(out, size, "t_");

    for (const char *c = dash ? dash + 1 : "none"; *c && n + 1 < size; c++)
        if (isalnum((unsigned char)*c))
            out[n++] = (char)tolower((unsigned char)*c);
    out[n] = '\0';
}

static PGconn *pg_connect(const char *path)
{
    char schema[32];
    pg_schema_of(path, schema, sizeof schema);
    char *conninfo = vn_asprintf("%s options='-csearch_path=%s'", pg_base, schema);
    PGconn *conn = PQconnectdb(conninfo);
    free(conninfo);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    return conn;
}

static void pg_exec(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static void pg_schema(const char *path, bool create)
{
    char schema[32], sql[96];
    pg_schema_of(path, schema, sizeof schema);
    PGconn *conn = pg_connect(path);
    snprintf(sql, sizeof sql,
             create ? "CREATE SCHEMA IF NOT EXISTS \"%s\"" : "DROP SCHEMA IF EXISTS \"%s\" CASCADE",
             schema);
    pg_exec(conn, sql);
    PQfinish(conn);
}

static vn_store *open_store(const char *path)
{
    vn_store_options opts = {.backend = "lmdb", .path = path, .map_size_mb = 64};
    char schema[32];
    char *conninfo = NULL;
    vn_buf err;

    if (pg_base) {
        pg_schema_of(path, schema, sizeof schema);
        conninfo = vn_asprintf("%s options='-csearch_path=%s'", pg_base, schema);
        opts = (vn_store_options){.backend = "postgresql",
                                  .conninfo = conninfo,
                                  .write_timeout_ms = pg_write_timeout_ms,
                                  .read_cache_kb = 1024};
    }
    vn_buf_init(&err);
    vn_store *s = vn_store_open(&opts, &err);
    if (!s)
        print_error("open %s: %s\n", path, err.data);
    vn_buf_free(&err);
    free(conninfo);
    if (s && mode != SYNC)
        assert_int_equal(vn_store_attach_loop(s, store_loop), 0);
    return s;
}

static void close_store(vn_store *s)
{
    vn_store_close(s);
    uv_run(store_loop, UV_RUN_NOWAIT); /* the store's handles close */
}

/* In LANDING mode, every third helper call makes what was queued durable. */
static void tick(vn_store *s)
{
    if (mode == LANDING && ++calls % 3 == 0)
        vn_store_flush(s);
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d))) {
        char child[512];
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        if (lstat(child, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(child);
        else
            unlink(child);
    }
    closedir(d);
    rmdir(path);
}

static int setup(void **state)
{
    fixture *f = vn_alloc(sizeof *f);

    snprintf(f->dir, sizeof f->dir, "/tmp/vn-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/db", f->dir);
    if (pg_base)
        pg_schema(f->path, true);
    f->s = open_store(f->path);
    *state = f;
    return f->s ? 0 : -1;
}

static int setup_grouped(void **state)
{
    mode = GROUPED;
    return setup(state);
}

static int setup_landing(void **state)
{
    mode = LANDING;
    calls = 0;
    return setup(state);
}

static int teardown(void **state)
{
    fixture *f = *state;

    close_store(f->s);
    mode = SYNC;
    pg_write_timeout_ms = 0;
    if (pg_base)
        pg_schema(f->path, false);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static void put_str(vn_store *s, const char *host, const char *user, const char *store,
                    const char *key, const char *value)
{
    tick(s);
    assert_int_equal(vn_store_put(s, host, user, store, key, value, strlen(value)), VN_STORE_OK);
}

/* ---- collecting results ---- */

typedef struct got_item {
    uint64_t id;
    int64_t ts_us;
    char with[160];
    char data[32];
} got_item;

typedef struct collected {
    got_item *items;
    size_t n, cap;
    size_t stop_after; /* return false after this many; 0: never */
    char text[512];    /* keys or users joined with ',' */
} collected;

static bool collect_item(const vn_archive_item *it, void *ud)
{
    collected *c = ud;

    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->items = vn_realloc(c->items, c->cap * sizeof *c->items);
    }
    got_item *g = &c->items[c->n++];
    g->id = it->id;
    g->ts_us = it->ts_us;
    snprintf(g->with, sizeof g->with, "%s", it->with);
    snprintf(g->data, sizeof g->data, "%.*s", (int)it->len, (const char *)it->data);
    return !(c->stop_after && c->n == c->stop_after);
}

static void append_text(collected *c, const char *s)
{
    size_t len = strlen(c->text);
    snprintf(c->text + len, sizeof c->text - len, "%s%s", len ? "," : "", s);
}

static bool collect_key(const char *key, const void *value, size_t len, void *ud)
{
    collected *c = ud;
    char entry[128];

    snprintf(entry, sizeof entry, "%s=%.*s", key, (int)len, (const char *)value);
    append_text(c, entry);
    c->n++;
    return !(c->stop_after && c->n == c->stop_after);
}

static bool collect_user(const char *user, void *ud)
{
    collected *c = ud;

    append_text(c, user[0] ? user : "<host>");
    c->n++;
    return !(c->stop_after && c->n == c->stop_after);
}

static void collected_reset(collected *c)
{
    free(c->items);
    memset(c, 0, sizeof *c);
}

static bool query(vn_store *s, const char *user, const char *archive, const vn_archive_query *q,
                  collected *c)
{
    bool complete = false;

    tick(s);
    collected_reset(c);
    assert_int_equal(vn_archive_query_items(s, "h", user, archive, q, collect_item, c, &complete),
                     VN_STORE_OK);
    return complete;
}

static uint64_t append(vn_store *s, const char *user, const char *archive, int64_t ts_us,
                       const char *with, const char *data)
{
    uint64_t id = 0;

    tick(s);
    assert_int_equal(vn_archive_append(s, "h", user, archive, ts_us, with, data, strlen(data), &id),
                     VN_STORE_OK);
    assert_true(id > 0);
    return id;
}

static size_t count(vn_store *s, const char *user, const char *archive, const vn_archive_query *q)
{
    size_t n = 12345;

    tick(s);
    assert_int_equal(vn_archive_count(s, "h", user, archive, q, &n), VN_STORE_OK);
    return n;
}

/* ---- opening and arguments ---- */

static void test_open_errors(void **state)
{
    fixture *f = *state;
    vn_buf err;
    char file[160];

    vn_buf_init(&err);
    vn_store_options opts = {.backend = "postgres", .path = f->path, .map_size_mb = 8};
    assert_null(vn_store_open(&opts, &err));
    assert_non_null(strstr(err.data, "\"postgres\""));
    assert_non_null(strstr(err.data, "lmdb"));

    vn_buf_reset(&err);
    opts.backend = NULL;
    assert_null(vn_store_open(&opts, &err));
    assert_non_null(strstr(err.data, "lmdb"));

    vn_buf_reset(&err);
    snprintf(file, sizeof file, "%s/plain-file", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    opts = (vn_store_options){.backend = "lmdb", .path = file, .map_size_mb = 8};
    assert_null(vn_store_open(&opts, &err));
    assert_non_null(strstr(err.data, "not a directory"));
    vn_buf_free(&err);
}

static void test_store_directory_mode(void **state)
{
    fixture *f = *state;
    struct stat sb;

    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
}

static bool never_called_key(const char *key, const void *value, size_t len, void *ud)
{
    fail_msg("callback called for %s", key);
    return false;
}

static void test_invalid_arguments(void **state)
{
    fixture *f = *state;
    vn_buf out;
    size_t n;
    uint64_t id;

    vn_buf_init(&out);
    assert_int_equal(vn_store_get(f->s, NULL, "u", "x", "k", &out), VN_STORE_ERROR);
    assert_int_equal(vn_store_get(f->s, "", "u", "x", "k", &out), VN_STORE_ERROR);
    assert_int_equal(vn_store_get(f->s, "h", NULL, "x", "k", &out), VN_STORE_ERROR);
    assert_int_equal(vn_store_get(f->s, "h", "u", NULL, "k", &out), VN_STORE_ERROR);
    assert_int_equal(vn_store_get(f->s, "h", "u", "", "k", &out), VN_STORE_ERROR);
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", NULL, &out), VN_STORE_ERROR);
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", "k", NULL), VN_STORE_ERROR);
    assert_int_equal(vn_store_get(NULL, "h", "u", "x", "k", &out), VN_STORE_ERROR);
    assert_int_equal(vn_store_put(f->s, "h", "u", "x", "k", NULL, 3), VN_STORE_ERROR);
    assert_int_equal(vn_store_put(f->s, "", "u", "x", "k", "v", 1), VN_STORE_ERROR);
    assert_int_equal(vn_store_delete(f->s, "h", "u", "", "k"), VN_STORE_ERROR);
    assert_int_equal(vn_store_foreach(f->s, "h", "u", "x", NULL, NULL), VN_STORE_ERROR);
    assert_int_equal(vn_store_foreach(f->s, NULL, "u", "x", never_called_key, NULL),
                     VN_STORE_ERROR);
    assert_int_equal(vn_store_foreach_user(f->s, "h", NULL, collect_user, NULL), VN_STORE_ERROR);
    assert_int_equal(vn_store_delete_user(f->s, "h", NULL), VN_STORE_ERROR);
    assert_int_equal(vn_archive_append(f->s, "h", "u", "", 0, "a@b", "x", 1, &id), VN_STORE_ERROR);
    assert_int_equal(vn_archive_append(f->s, "h", "u", "mam", 0, "a@b", NULL, 1, &id),
                     VN_STORE_ERROR);
    assert_int_equal(vn_archive_query_items(f->s, "h", "u", "mam", NULL, NULL, NULL, NULL),
                     VN_STORE_ERROR);
    assert_int_equal(vn_archive_count(f->s, "h", "u", NULL, NULL, &n), VN_STORE_ERROR);
    assert_int_equal(vn_archive_count(f->s, "h", "u", "mam", NULL, NULL), VN_STORE_ERROR);
    assert_int_equal(vn_archive_delete_id(f->s, NULL, "u", "mam", 1), VN_STORE_ERROR);
    assert_int_equal(vn_archive_delete_before(f->s, "h", "u", NULL, 0), VN_STORE_ERROR);

    /* Nothing was written by any of them. */
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", "k", &out), VN_STORE_NOT_FOUND);
    assert_int_equal(count(f->s, "u", "mam", NULL), 0);
    vn_buf_free(&out);
}

static void test_key_too_long(void **state)
{
    fixture *f = *state;
    char key[600];
    vn_buf out;

    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    vn_buf_init(&out);
    assert_int_equal(vn_store_put(f->s, "h", "u", "x", key, "v", 1), VN_STORE_ERROR);
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", key, &out), VN_STORE_ERROR);
    assert_int_equal(vn_archive_append(f->s, "h", key, "mam", 0, "a@b", "x", 1, NULL),
                     VN_STORE_ERROR);
    vn_buf_free(&out);
}

/* ---- documents ---- */

static void test_put_get_overwrite_delete(void **state)
{
    fixture *f = *state;
    vn_buf out;

    vn_buf_init(&out);
    assert_int_equal(vn_store_get(f->s, "h", "alice", "roster", "bob@x", &out), VN_STORE_NOT_FOUND);
    put_str(f->s, "h", "alice", "roster", "bob@x", "<item jid='bob@x'/>");
    assert_int_equal(vn_store_get(f->s, "h", "alice", "roster", "bob@x", &out), VN_STORE_OK);
    assert_int_equal(out.len, strlen("<item jid='bob@x'/>"));
    assert_string_equal(out.data, "<item jid='bob@x'/>");

    put_str(f->s, "h", "alice", "roster", "bob@x", "short");
    assert_int_equal(vn_store_get(f->s, "h", "alice", "roster", "bob@x", &out), VN_STORE_OK);
    assert_int_equal(out.len, 5);
    assert_string_equal(out.data, "short");

    /* Binary values with NULs and empty values survive as they are. */
    assert_int_equal(vn_store_put(f->s, "h", "alice", "bin", "k", "a\0b", 3), VN_STORE_OK);
    assert_int_equal(vn_store_get(f->s, "h", "alice", "bin", "k", &out), VN_STORE_OK);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "a\0b", 3);
    assert_int_equal(vn_store_put(f->s, "h", "", "bin", "", NULL, 0), VN_STORE_OK);
    assert_int_equal(vn_store_get(f->s, "h", "", "bin", "", &out), VN_STORE_OK);
    assert_int_equal(out.len, 0);

    assert_int_equal(vn_store_delete(f->s, "h", "alice", "roster", "bob@x"), VN_STORE_OK);
    assert_int_equal(vn_store_get(f->s, "h", "alice", "roster", "bob@x", &out), VN_STORE_NOT_FOUND);
    assert_int_equal(out.len, 0);
    assert_int_equal(vn_store_delete(f->s, "h", "alice", "roster", "bob@x"), VN_STORE_OK);
    /* Other documents are untouched. */
    assert_int_equal(vn_store_get(f->s, "h", "alice", "bin", "k", &out), VN_STORE_OK);
    vn_buf_free(&out);
}

static void test_foreach_order_isolation_and_stop(void **state)
{
    fixture *f = *state;
    collected c = {0};

    put_str(f->s, "h", "a", "x", "b", "1");
    put_str(f->s, "h", "a", "x", "ab", "2");
    put_str(f->s, "h", "a", "x", "c", "3");
    put_str(f->s, "h", "a", "x", "a", "4");
    /* Neighbours that share a prefix with user "a" or store "x". */
    put_str(f->s, "h", "ab", "x", "a", "no");
    put_str(f->s, "h", "a", "xy", "a", "no");
    put_str(f->s, "h", "", "x", "a", "no");
    put_str(f->s, "h2", "a", "x", "a", "no");
    put_str(f->s, "hh", "a", "x", "a", "no");

    assert_int_equal(vn_store_foreach(f->s, "h", "a", "x", collect_key, &c), VN_STORE_OK);
    assert_string_equal(c.text, "a=4,ab=2,b=1,c=3");

    collected_reset(&c);
    c.stop_after = 2;
    assert_int_equal(vn_store_foreach(f->s, "h", "a", "x", collect_key, &c), VN_STORE_OK);
    assert_string_equal(c.text, "a=4,ab=2");

    collected_reset(&c);
    assert_int_equal(vn_store_foreach(f->s, "h", "nobody", "x", collect_key, &c), VN_STORE_OK);
    assert_int_equal(c.n, 0);
    collected_reset(&c);
}

static void test_foreach_user(void **state)
{
    fixture *f = *state;
    collected c = {0};

    put_str(f->s, "h", "b", "x", "k1", "v");
    put_str(f->s, "h", "b", "x", "k2", "v");
    put_str(f->s, "h", "ab", "x", "k", "v");
    put_str(f->s, "h", "a", "x", "k1", "v");
    put_str(f->s, "h", "a", "x", "k2", "v");
    put_str(f->s, "h", "a", "x", "k3", "v");
    put_str(f->s, "h", "", "x", "k", "v");
    put_str(f->s, "h", "a\x01", "x", "k", "v"); /* sorts right after all of "a" */
    put_str(f->s, "h", "only-xy", "xy", "k", "v");
    put_str(f->s, "h", "only-w", "w", "k", "v");
    put_str(f->s, "h2", "other-host", "x", "k", "v");
    put_str(f->s, "g", "other-host", "x", "k", "v");

    assert_int_equal(vn_store_foreach_user(f->s, "h", "x", collect_user, &c), VN_STORE_OK);
    assert_string_equal(c.text, "<host>,a,a\x01,ab,b");

    collected_reset(&c);
    assert_int_equal(vn_store_foreach_user(f->s, "h", "xy", collect_user, &c), VN_STORE_OK);
    assert_string_equal(c.text, "only-xy");

    collected_reset(&c);
    c.stop_after = 2;
    assert_int_equal(vn_store_foreach_user(f->s, "h", "x", collect_user, &c), VN_STORE_OK);
    assert_string_equal(c.text, "<host>,a");

    collected_reset(&c);
    assert_int_equal(vn_store_foreach_user(f->s, "h2", "x", collect_user, &c), VN_STORE_OK);
    assert_string_equal(c.text, "other-host");

    collected_reset(&c);
    assert_int_equal(vn_store_foreach_user(f->s, "nohost", "x", collect_user, &c), VN_STORE_OK);
    assert_int_equal(c.n, 0);
    collected_reset(&c);
}

static void test_delete_user(void **state)
{
    fixture *f = *state;
    collected c = {0};
    vn_buf out;

    vn_buf_init(&out);
    put_str(f->s, "h", "a", "roster", "bob@x", "v");
    put_str(f->s, "h", "a", "vcard", "", "v");
    put_str(f->s, "h", "a", "accounts", "creds", "v");
    put_str(f->s, "h", "ab", "roster", "bob@x", "keep");
    put_str(f->s, "h", "", "roster", "k", "keep");
    put_str(f->s, "h2", "a", "roster", "bob@x", "keep");
    uint64_t last_a = append(f->s, "a", "mam", 0, "bob@x/phone", "m1");
    append(f->s, "a", "mam", 0, "carol@y", "m2");
    append(f->s, "a", "offline", 0, "bob@x", "o1");
    append(f->s, "ab", "mam", 0, "bob@x", "keep");

    assert_int_equal(vn_store_delete_user(f->s, "h", "a"), VN_STORE_OK);

    assert_int_equal(vn_store_get(f->s, "h", "a", "roster", "bob@x", &out), VN_STORE_NOT_FOUND);
    assert_int_equal(vn_store_get(f->s, "h", "a", "vcard", "", &out), VN_STORE_NOT_FOUND);
    assert_int_equal(vn_store_get(f->s, "h", "a", "accounts", "creds", &out), VN_STORE_NOT_FOUND);
    assert_int_equal(vn_store_get(f->s, "h", "ab", "roster", "bob@x", &out), VN_STORE_OK);
    assert_int_equal(vn_store_get(f->s, "h", "", "roster", "k", &out), VN_STORE_OK);
    assert_int_equal(vn_store_get(f->s, "h2", "a", "roster", "bob@x", &out), VN_STORE_OK);
    assert_int_equal(count(f->s, "a", "mam", NULL), 0);
    assert_int_equal(count(f->s, "a", "offline", NULL), 0);
    vn_archive_query by_bob = {.with = "bob@x"};
    assert_int_equal(count(f->s, "a", "mam", &by_bob), 0);
    assert_true(query(f->s, "a", "mam", NULL, &c));
    assert_int_equal(c.n, 0);
    assert_int_equal(count(f->s, "ab", "mam", NULL), 1);
    assert_int_equal(count(f->s, "ab", "mam", &by_bob), 1);

    assert_int_equal(vn_store_foreach_user(f->s, "h", "roster", collect_user, &c), VN_STORE_OK);
    assert_string_equal(c.text, "<host>,ab");

    /* The user can start over. */
    assert_true(append(f->s, "a", "mam", 0, "bob@x", "new") > last_a);
    assert_int_equal(count(f->s, "a", "mam", NULL), 1);
    collected_reset(&c);
    vn_buf_free(&out);
}

/* ---- archives ---- */

static void test_append_and_query_both_directions(void **state)
{
    fixture *f = *state;
    collected c = {0};
    uint64_t ids[5];

    for (int i = 0; i < 5; i++) {
        char data[16];
        snprintf(data, sizeof data, "m%d", i);
        ids[i] = append(f->s, "u", "mam", 1000000 + i * 1000, i % 2 ? "bob@x/pc" : "", data);
        if (i > 0)
            assert_true(ids[i] > ids[i - 1]);
    }
    assert_int_equal(ids[0], 1000000); /* the id is the timestamp when it can be */

    assert_true(query(f->s, "u", "mam", NULL, &c));
    assert_int_equal(c.n, 5);
    for (int i = 0; i < 5; i++) {
        char data[16];
        snprintf(data, sizeof data, "m%d", i);
        assert_int_equal(c.items[i].id, ids[i]);
        assert_int_equal(c.items[i].ts_us, 1000000 + i * 1000);
        assert_string_equal(c.items[i].with, i % 2 ? "bob@x/pc" : "");
        assert_string_equal(c.items[i].data, data);
    }

    vn_archive_query q = {.reverse = true};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(c.items[i].id, ids[4 - i]);

    /* Other archives and users see none of it. */
    assert_true(query(f->s, "u", "offline", NULL, &c));
    assert_int_equal(c.n, 0);
    assert_true(query(f->s, "u2", "mam", NULL, &c));
    assert_int_equal(c.n, 0);
    collected_reset(&c);
}

static void test_with_filter(void **state)
{
    fixture *f = *state;
    collected c = {0};
    char long_jid[300];

    snprintf(long_jid, sizeof long_jid, "%0200d@example.org/res", 7);
    append(f->s, "u", "mam", 0, "bob@x", "1");
    append(f->s, "u", "mam", 0, "bob@x/phone", "2");
    append(f->s, "u", "mam", 0, "bob@xy", "3");
    append(f->s, "u", "mam", 0, "bob@x/phone2", "4");
    append(f->s, "u", "mam", 0, "alice@x/phone", "5");
    append(f->s, "u", "mam", 0, "", "6");
    append(f->s, "u", "mam", 0, "bob@x/phone/extra", "7");
    append(f->s, "u", "mam", 0, long_jid, "8");

    vn_archive_query q = {.with = "bob@x"};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 4);
    assert_string_equal(c.items[0].data, "1");
    assert_string_equal(c.items[1].data, "2");
    assert_string_equal(c.items[2].data, "4");
    assert_string_equal(c.items[3].data, "7");
    assert_int_equal(count(f->s, "u", "mam", &q), 4);

    q.reverse = true;
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 4);
    assert_string_equal(c.items[0].data, "7");
    assert_string_equal(c.items[3].data, "1");

    q = (vn_archive_query){.with = "bob@x/phone"};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.items[0].data, "2");
    assert_string_equal(c.items[0].with, "bob@x/phone");

    q.with = "bob@x/phone/extra";
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.items[0].data, "7");

    q.with = "nobody@x";
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 0);

    /* JIDs too long for a plain index key still match exactly. */
    q.with = long_jid;
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.items[0].data, "8");
    long_jid[strlen(long_jid) - 4] = '\0'; /* its bare JID */
    q.with = long_jid;
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 1);
    assert_string_equal(c.items[0].data, "8");
    assert_int_equal(count(f->s, "u", "mam", &q), 1);

    /* "" is no filter. */
    q.with = "";
    assert_int_equal(count(f->s, "u", "mam", &q), 8);
    collected_reset(&c);
}

static void test_time_bounds(void **state)
{
    fixture *f = *state;
    collected c = {0};

    for (int i = 1; i <= 6; i++)
        append(f->s, "u", "mam", i * 1000, i % 2 ? "bob@x" : "carol@y", "m");

    vn_archive_query q = {.start_us = 2000, .end_us = 4000};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 3);
    assert_int_equal(c.items[0].ts_us, 2000);
    assert_int_equal(c.items[2].ts_us, 4000);
    assert_int_equal(count(f->s, "u", "mam", &q), 3);

    q.reverse = true;
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 3);
    assert_int_equal(c.items[0].ts_us, 4000);
    assert_int_equal(c.items[2].ts_us, 2000);

    q = (vn_archive_query){.start_us = 2500, .with = "bob@x"};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 2);
    assert_int_equal(c.items[0].ts_us, 3000);
    assert_int_equal(c.items[1].ts_us, 5000);

    q = (vn_archive_query){.end_us = 999};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 0);
    q = (vn_archive_query){.start_us = 4000, .end_us = 3000};
    assert_int_equal(count(f->s, "u", "mam", &q), 0);
    collected_reset(&c);
}

static void test_limit_and_callback_stop_set_complete(void **state)
{
    fixture *f = *state;
    collected c = {0};

    for (int i = 1; i <= 4; i++)
        append(f->s, "u", "mam", i * 1000, "bob@x", "m");

    vn_archive_query q = {.limit = 4};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 4);
    q.limit = 3;
    assert_false(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 3);
    q.reverse = true;
    assert_false(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.items[2].ts_us, 2000);

    /* A callback that stops early leaves the query incomplete, unless it
     * stopped at the last item. */
    q = (vn_archive_query){0};
    collected_reset(&c);
    c.stop_after = 2;
    bool complete = true;
    assert_int_equal(vn_archive_query_items(f->s, "h", "u", "mam", &q, collect_item, &c, &complete),
                     VN_STORE_OK);
    assert_int_equal(c.n, 2);
    assert_false(complete);
    collected_reset(&c);
    c.stop_after = 4;
    assert_int_equal(vn_archive_query_items(f->s, "h", "u", "mam", &q, collect_item, &c, &complete),
                     VN_STORE_OK);
    assert_int_equal(c.n, 4);
    assert_true(complete);
    collected_reset(&c);
}

/* Pages through 250 items (every third "with" bob) 50 at a time. */
static void page_through(vn_store *s, bool reverse, const char *with, size_t total,
                         const uint64_t *ids)
{
    collected c = {0};
    uint64_t cursor = 0;
    size_t seen = 0;

    for (;;) {
        vn_archive_query q = {.with = with, .limit = 50, .reverse = reverse};
        if (reverse)
            q.before_id = cursor;
        else
            q.after_id = cursor;
        bool complete = query(s, "u", "mam", &q, &c);
        assert_true(c.n <= 50);
        for (size_t i = 0; i < c.n; i++) {
            size_t want = reverse ? total - 1 - seen - i : seen + i;
            assert_int_equal(c.items[i].id, ids[want]);
        }
        seen += c.n;
        assert_int_equal(complete, seen == total);
        if (complete)
            break;
        cursor = c.items[c.n - 1].id;
    }
    assert_int_equal(seen, total);
    collected_reset(&c);
}

static void test_paging_250_in_pages_of_50(void **state)
{
    fixture *f = *state;
    uint64_t all[250], bob[250];
    size_t bob_count = 0;

    for (int i = 0; i < 250; i++) {
        const char *with = i % 3 == 0 ? "bob@x/r" : "carol@y";
        all[i] = append(f->s, "u", "mam", 0, with, "m");
        if (i % 3 == 0)
            bob[bob_count++] = all[i];
    }
    page_through(f->s, false, NULL, 250, all);
    page_through(f->s, true, NULL, 250, all);
    page_through(f->s, false, "bob@x", bob_count, bob);
    page_through(f->s, true, "bob@x", bob_count, bob);
    page_through(f->s, true, "bob@x/r", bob_count, bob);
    assert_int_equal(bob_count, 84);

    /* Both bounds at once: the items strictly between two ids. */
    collected c = {0};
    vn_archive_query q = {.after_id = all[10], .before_id = all[20]};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 9);
    assert_int_equal(c.items[0].id, all[11]);
    assert_int_equal(c.items[8].id, all[19]);
    assert_int_equal(count(f->s, "u", "mam", &q), 9);
    q = (vn_archive_query){.after_id = all[249]};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 0);
    collected_reset(&c);
}

static void test_count(void **state)
{
    fixture *f = *state;

    assert_int_equal(count(f->s, "u", "mam", NULL), 0);
    for (int i = 1; i <= 10; i++)
        append(f->s, "u", "mam", i * 1000, i <= 3 ? "bob@x/a" : "carol@y", "m");
    assert_int_equal(count(f->s, "u", "mam", NULL), 10);
    vn_archive_query q = {.limit = 2}; /* ignored */
    assert_int_equal(count(f->s, "u", "mam", &q), 10);
    q = (vn_archive_query){.with = "bob@x"};
    assert_int_equal(count(f->s, "u", "mam", &q), 3);
    q = (vn_archive_query){.with = "carol@y", .start_us = 5000};
    assert_int_equal(count(f->s, "u", "mam", &q), 6);
    q = (vn_archive_query){.before_id = 5000, .reverse = true};
    assert_int_equal(count(f->s, "u", "mam", &q), 4);
}

static void test_delete_id(void **state)
{
    fixture *f = *state;
    collected c = {0};

    uint64_t a = append(f->s, "u", "mam", 0, "bob@x/r", "a");
    uint64_t b = append(f->s, "u", "mam", 0, "bob@x/r", "b");
    uint64_t d = append(f->s, "u", "mam", 0, "bob@x/r", "c");

    assert_int_equal(vn_archive_delete_id(f->s, "h", "u", "mam", b), VN_STORE_OK);
    assert_int_equal(vn_archive_delete_id(f->s, "h", "u", "mam", b), VN_STORE_NOT_FOUND);
    assert_int_equal(vn_archive_delete_id(f->s, "h", "u", "nothing", b), VN_STORE_NOT_FOUND);
    assert_int_equal(vn_archive_delete_id(f->s, "h", "u2", "mam", a), VN_STORE_NOT_FOUND);

    assert_true(query(f->s, "u", "mam", NULL, &c));
    assert_int_equal(c.n, 2);
    assert_int_equal(c.items[0].id, a);
    assert_int_equal(c.items[1].id, d);
    assert_int_equal(count(f->s, "u", "mam", NULL), 2);
    vn_archive_query q = {.with = "bob@x"};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 2);
    q.with = "bob@x/r";
    assert_int_equal(count(f->s, "u", "mam", &q), 2);

    /* A deleted id is never handed out again. */
    assert_int_equal(vn_archive_delete_id(f->s, "h", "u", "mam", d), VN_STORE_OK);
    assert_true(append(f->s, "u", "mam", 1, "", "e") > d);
    collected_reset(&c);
}

static void test_delete_before(void **state)
{
    fixture *f = *state;
    collected c = {0};

    for (int i = 1; i <= 6; i++)
        append(f->s, "u", "mam", i * 1000, "bob@x/r", "m");
    append(f->s, "u", "other", 1000, "bob@x", "m");

    assert_int_equal(vn_archive_delete_before(f->s, "h", "u", "mam", 3000), VN_STORE_OK);
    assert_true(query(f->s, "u", "mam", NULL, &c));
    assert_int_equal(c.n, 4);
    assert_int_equal(c.items[0].ts_us, 3000);
    assert_int_equal(count(f->s, "u", "mam", NULL), 4);
    vn_archive_query q = {.with = "bob@x"};
    assert_int_equal(count(f->s, "u", "mam", &q), 4);
    q.with = "bob@x/r";
    assert_int_equal(count(f->s, "u", "mam", &q), 4);

    assert_int_equal(vn_archive_delete_before(f->s, "h", "u", "mam", 0), VN_STORE_OK);
    assert_int_equal(count(f->s, "u", "mam", NULL), 0);
    assert_int_equal(count(f->s, "u", "mam", &q), 0);
    assert_int_equal(count(f->s, "u", "other", NULL), 1);
    assert_int_equal(vn_archive_delete_before(f->s, "h", "u", "missing", 0), VN_STORE_OK);

    /* Ids keep growing after everything was deleted. */
    assert_int_equal(append(f->s, "u", "mam", 10, "", "m"), 6001);
    collected_reset(&c);
}

static void test_ids_increase_when_clock_goes_back(void **state)
{
    fixture *f = *state;
    collected c = {0};

    uint64_t first = append(f->s, "u", "mam", 5000, "", "a");
    uint64_t second = append(f->s, "u", "mam", 3000, "", "b");
    uint64_t third = append(f->s, "u", "mam", 5001, "", "c");
    uint64_t fourth = append(f->s, "u", "mam", 9000, "", "d");
    assert_int_equal(first, 5000);
    assert_int_equal(second, 5001);
    assert_int_equal(third, 5002);
    assert_int_equal(fourth, 9000);

    /* Timestamps are kept as given; order is by id. */
    assert_true(query(f->s, "u", "mam", NULL, &c));
    assert_int_equal(c.n, 4);
    assert_int_equal(c.items[1].ts_us, 3000);
    assert_string_equal(c.items[1].data, "b");

    /* ts_us 0 is now. */
    int64_t before = (int64_t)time(NULL) * 1000000;
    uint64_t now_id = append(f->s, "u", "mam", 0, "", "e");
    assert_true(now_id >= (uint64_t)before);
    assert_true(query(f->s, "u", "mam", &(vn_archive_query){.after_id = fourth}, &c));
    assert_int_equal(c.n, 1);
    assert_true(c.items[0].ts_us >= before);
    collected_reset(&c);
}

static void test_reopen_keeps_everything(void **state)
{
    fixture *f = *state;
    collected c = {0};
    vn_buf out;

    put_str(f->s, "h", "u", "x", "k", "value");
    uint64_t id = append(f->s, "u", "mam", 0, "bob@x/r", "kept");
    close_store(f->s);
    f->s = open_store(f->path);
    assert_non_null(f->s);

    vn_buf_init(&out);
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", "k", &out), VN_STORE_OK);
    assert_string_equal(out.data, "value");
    vn_archive_query q = {.with = "bob@x"};
    assert_true(query(f->s, "u", "mam", &q, &c));
    assert_int_equal(c.n, 1);
    assert_int_equal(c.items[0].id, id);
    assert_string_equal(c.items[0].data, "kept");
    assert_true(append(f->s, "u", "mam", 1, "", "next") > id);
    vn_buf_free(&out);
    collected_reset(&c);
}

/* vestnikctl export and import, into a fresh store of the same backend:
 * the same documents (names no XML attribute carries as they are too),
 * the same items with the same ids, and the ids of deleted items stay
 * used. */
static void test_export_import_round_trip(void **state)
{
    fixture *f = *state;
    char copy_path[160];
    collected before = {0}, after = {0};
    vn_buf err, out;
    char *dump = NULL;
    size_t dump_len = 0;

    put_str(f->s, "h", "a\x01b", "x", "k'<&>", "v1");
    assert_int_equal(vn_store_put(f->s, "h", "", "bin", "k", "a\0b", 3), VN_STORE_OK);
    append(f->s, "u", "mam", 1000, "bob@x/r", "one");
    append(f->s, "u", "mam", 2000, "", "two");
    uint64_t gone = append(f->s, "u", "mam", 3000, "carol@y", "three");
    assert_int_equal(vn_archive_delete_id(f->s, "h", "u", "mam", gone), VN_STORE_OK);

    FILE *fp = open_memstream(&dump, &dump_len);
    vn_buf_init(&err);
    assert_int_equal(vn_store_export(f->s, fp, &err), 0);
    fclose(fp);
    assert_non_null(strstr(dump, "user-b64="));

    snprintf(copy_path, sizeof copy_path, "%s/copy", f->dir);
    if (pg_base)
        pg_schema(copy_path, true);
    vn_store *copy = open_store(copy_path);
    assert_non_null(copy);
    fp = fmemopen(dump, dump_len, "r");
    assert_int_equal(vn_store_import(copy, fp, &err), 0);
    fclose(fp);

    vn_buf_init(&out);
    assert_int_equal(vn_store_get(copy, "h", "a\x01b", "x", "k'<&>", &out), VN_STORE_OK);
    assert_string_equal(out.data, "v1");
    assert_int_equal(vn_store_get(copy, "h", "", "bin", "k", &out), VN_STORE_OK);
    assert_memory_equal(out.data, "a\0b", 3);
    query(f->s, "u", "mam", NULL, &before);
    query(copy, "u", "mam", NULL, &after);
    assert_int_equal(after.n, 2);
    for (size_t i = 0; i < after.n; i++) {
        assert_int_equal(after.items[i].id, before.items[i].id);
        assert_int_equal(after.items[i].ts_us, before.items[i].ts_us);
        assert_string_equal(after.items[i].with, before.items[i].with);
        assert_string_equal(after.items[i].data, before.items[i].data);
    }
    assert_int_equal(count(copy, "u", "mam", NULL), 2);
    assert_true(append(copy, "u", "mam", 1, "", "next") > gone);

    /* Importing again: the archive is there already. */
    fp = fmemopen(dump, dump_len, "r");
    vn_buf_reset(&err);
    assert_int_equal(vn_store_import(copy, fp, &err), -1);
    assert_non_null(strstr(err.data, "not empty"));
    fclose(fp);
    /* Not a dump at all. */
    fp = fmemopen("<other/>", 8, "r");
    vn_buf_reset(&err);
    assert_int_equal(vn_store_import(copy, fp, &err), -1);
    assert_non_null(strstr(err.data, "not a vestnik store dump"));
    fclose(fp);

    close_store(copy);
    if (pg_base)
        pg_schema(copy_path, false);
    else
        remove_tree(copy_path);
    vn_buf_free(&err);
    vn_buf_free(&out);
    collected_reset(&before);
    collected_reset(&after);
    free(dump);
}

static void test_two_handles_see_each_others_writes(void **state)
{
    fixture *f = *state;

    /* What vestnikctl does next to a running vestnikd, minus the second
     * process: a child writes through its own environment. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vn_store *s = open_store(f->path);
        int ok = s && vn_store_put(s, "h", "ctl", "accounts", "k", "v", 1) == VN_STORE_OK;
        vn_store_close(s);
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    vn_buf out;
    vn_buf_init(&out);
    assert_int_equal(vn_store_get(f->s, "h", "ctl", "accounts", "k", &out), VN_STORE_OK);
    vn_buf_free(&out);
}

/* ---- durability ---- */

typedef struct ack {
    uint64_t id;
    uint64_t seq;
} ack;

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void appender_child(const char *path, int out_fd)
{
    vn_store *s = open_store(path);
    if (!s)
        _exit(2);
    for (uint64_t seq = 0;; seq++) {
        char data[32];
        ack a = {.seq = seq};
        snprintf(data, sizeof data, "item %" PRIu64, seq);
        if (vn_archive_append(s, "h", "u", "mam", 0, "bob@x/r", data, strlen(data), &a.id) !=
            VN_STORE_OK)
            _exit(3);
        if (write(out_fd, &a, sizeof a) != (ssize_t)sizeof a)
            _exit(4);
    }
}

/* Reads one acknowledgement; false at end of file. */
static bool read_ack(int fd, ack **acks, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        *acks = vn_realloc(*acks, *cap * sizeof **acks);
    }
    ssize_t got = read(fd, &(*acks)[*n], sizeof **acks);
    if (got <= 0)
        return false;
    assert_int_equal(got, sizeof **acks);
    (*n)++;
    return true;
}

static void test_acknowledged_appends_survive_kill9(void **state)
{
    fixture *f = *state;
    ack *acks = NULL;
    size_t n = 0, cap = 0;
    int fds[2];

    /* The parent must not hold the environment across fork. */
    close_store(f->s);
    f->s = NULL;
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        appender_child(f->path, fds[1]);
    }
    close(fds[1]);

    int64_t deadline = monotonic_ms() + 300;
    for (int64_t now; (now = monotonic_ms()) < deadline;) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - now)) == 1)
            read_ack(fds[0], &acks, &n, &cap);
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    while (read_ack(fds[0], &acks, &n, &cap)) /* what was written before the kill */
        ;
    close(fds[0]);
    assert_true(n > 0);

    f->s = open_store(f->path);
    assert_non_null(f->s);
    collected c = {0};
    assert_true(query(f->s, "u", "mam", NULL, &c));
    print_message("# kill -9: %zu appends acknowledged, %zu stored\n", n, c.n);
    assert_true(c.n >= n);
    assert_true(c.n <= n + 1); /* at most the one in flight when killed */
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char data[32];
        assert_int_equal(acks[i].seq, i);
        while (j < c.n && c.items[j].id < acks[i].id)
            j++;
        assert_true(j < c.n);
        assert_int_equal(c.items[j].id, acks[i].id);
        assert_true(j + 1 == c.n || c.items[j + 1].id != acks[i].id);
        snprintf(data, sizeof data, "item %zu", i);
        assert_string_equal(c.items[j].data, data);
    }
    assert_int_equal(count(f->s, "u", "mam", NULL), c.n);
    /* The store is fully usable after the crash. */
    assert_true(append(f->s, "u", "mam", 0, "", "after") > c.items[c.n - 1].id);
    free(acks);
    collected_reset(&c);
}

/* ---- group commit ---- */

/* LMDB's last committed transaction, as another process reads it (LMDB
 * allows one environment handle per process). */
static uint64_t committed_txnid(const char *path)
{
    int fds[2];
    uint64_t id = 0;

    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        MDB_env *env;
        MDB_envinfo info;
        close(fds[0]);
        if (!mdb_env_create(&env) && !mdb_env_set_maxdbs(env, 4) &&
            !mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS, 0600) && !mdb_env_info(env, &info))
            id = info.me_last_txnid;
        _exit(write(fds[1], &id, sizeof id) == (ssize_t)sizeof id ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &id, sizeof id), sizeof id);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(id > 0);
    return id;
}

/* PostgreSQL: how many transactions wrote the documents and items there
 * are (each row's xmin names the transaction that wrote it). */
static long pg_transactions(const char *path)
{
    PGconn *conn = pg_connect(path);
    PGresult *r = PQexec(conn, "SELECT count(DISTINCT x) FROM (SELECT xmin::text AS x FROM vn_docs"
                               " UNION ALL SELECT xmin::text FROM vn_items) AS w");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(conn);
    return n;
}

/* Whether another process, opening the store afresh, finds the document:
 * what is on disk, not what this process holds. */
static bool on_disk(const char *path, const char *key)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        mode = SYNC;
        vn_store *s = open_store(path);
        vn_buf out;
        vn_buf_init(&out);
        _exit(s && vn_store_get(s, "h", "u", "x", key, &out) == VN_STORE_OK ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

typedef struct calls_seen {
    int tag[16];
    int status[16];
    bool durable[16]; /* the document named after the tag was on disk */
    size_t n;
    const char *path;
} calls_seen;

static calls_seen seen;

static void note(int status, void *arg)
{
    int tag = (int)(intptr_t)arg;
    char key[16];

    snprintf(key, sizeof key, "k%d", tag);
    seen.tag[seen.n] = tag;
    seen.status[seen.n] = status;
    seen.durable[seen.n] = on_disk(seen.path, key);
    seen.n++;
}

static void keep_alive(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop (kept alive by a timer: the store's handles do not keep
 * it running) until n durable callbacks were seen. */
static void run_until_seen(size_t n)
{
    uv_timer_t timer;

    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, keep_alive, 2, 2);
    for (int i = 0; seen.n < n && i < 5000; i++)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(seen.n, n);
}

static void test_one_batch_per_loop_turn(void **state)
{
    fixture *f = *state;
    uint64_t before = pg_base ? 0 : committed_txnid(f->path);

    memset(&seen, 0, sizeof seen);
    seen.path = f->path;
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        put_str(f->s, "h", "u", "x", key, "v");
        append(f->s, "u", "mam", 0, "bob@x/r", "m");
    }
    vn_store_when_durable(f->s, note, (void *)(intptr_t)99);
    assert_int_equal(seen.n, 0); /* never inside the call */
    assert_false(on_disk(f->path, "k99"));
    run_until_seen(1);
    assert_int_equal(seen.status[0], VN_STORE_OK);
    assert_true(seen.durable[0]);
    if (pg_base)
        assert_int_equal(pg_transactions(f->path), 1);
    else
        assert_int_equal(committed_txnid(f->path), before + 1);
    assert_int_equal(count(f->s, "u", "mam", NULL), 100);
}

static void test_writes_during_a_commit_form_the_next_batch(void **state)
{
    fixture *f = *state;
    uint64_t before = pg_base ? 0 : committed_txnid(f->path);
    uv_timer_t timer;

    memset(&seen, 0, sizeof seen);
    seen.path = f->path;
    put_str(f->s, "h", "u", "x", "k1", "a");
    vn_store_when_durable(f->s, note, (void *)(intptr_t)1);
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, keep_alive, 2, 2);
    uv_run(&loop, UV_RUN_NOWAIT); /* the end of a turn: k1 goes to the writer */
    put_str(f->s, "h", "u", "x", "k2", "b");
    put_str(f->s, "h", "u", "x", "k3", "c");
    vn_store_when_durable(f->s, note, (void *)(intptr_t)2);
    vn_store_when_durable(f->s, note, (void *)(intptr_t)3);
    uv_close((uv_handle_t *)&timer, NULL);
    run_until_seen(3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(seen.tag[i], i + 1);
        assert_int_equal(seen.status[i], VN_STORE_OK);
        assert_true(seen.durable[i]);
    }
    if (pg_base)
        assert_int_equal(pg_transactions(f->path), 2);
    else
        assert_int_equal(committed_txnid(f->path), before + 2);
}

static void test_durable_callbacks_order_and_cancel(void **state)
{
    fixture *f = *state;

    memset(&seen, 0, sizeof seen);
    seen.path = f->path;
    /* Nothing pending: still not inside the call, but at the turn's end. */
    vn_store_when_durable(f->s, note, (void *)(intptr_t)0);
    assert_int_equal(seen.n, 0);
    put_str(f->s, "h", "u", "x", "k1", "a");
    vn_store_when_durable(f->s, note, (void *)(intptr_t)1);
    vn_store_waiter *gone = vn_store_when_durable(f->s, note, (void *)(intptr_t)7);
    put_str(f->s, "h", "u", "x", "k2", "b");
    vn_store_when_durable(f->s, note, (void *)(intptr_t)2);
    vn_store_cancel(f->s, gone);
    vn_store_when_durable(f->s, note, (void *)(intptr_t)3);
    run_until_seen(4);
    int expected[] = {0, 1, 2, 3};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(seen.tag[i], expected[i]);
        assert_int_equal(seen.status[i], VN_STORE_OK);
    }
    assert_false(seen.durable[0]); /* k0 was never written */
    assert_true(seen.durable[1] && seen.durable[2]);
}

static void test_read_your_writes_before_durable(void **state)
{
    fixture *f = *state;
    collected c = {0};
    vn_buf out;

    memset(&seen, 0, sizeof seen);
    seen.path = f->path;
    vn_buf_init(&out);
    put_str(f->s, "h", "u", "x", "k1", "old");
    uint64_t a = append(f->s, "u", "offline", 0, "bob@x/r", "one");
    vn_store_when_durable(f->s, note, (void *)(intptr_t)1);
    run_until_seen(1);

    /* One turn: change what is on disk, read it back at once. */
    put_str(f->s, "h", "u", "x", "k1", "new");
    put_str(f->s, "h", "u", "x", "k2", "two");
    uint64_t b = append(f->s, "u", "offline", 0, "carol@x", "two");
    assert_true(b > a);
    assert_int_equal(vn_archive_delete_id(f->s, "h", "u", "offline", a), VN_STORE_OK);
    assert_int_equal(vn_archive_delete_id(f->s, "h", "u", "offline", a), VN_STORE_NOT_FOUND);
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", "k1", &out), VN_STORE_OK);
    assert_string_equal(out.data, "new");
    assert_int_equal(count(f->s, "u", "offline", NULL), 1);
    assert_true(query(f->s, "u", "offline", NULL, &c));
    assert_int_equal(c.n, 1);
    assert_int_equal(c.items[0].id, b);
    assert_false(on_disk(f->path, "k2"));

    vn_store_when_durable(f->s, note, (void *)(intptr_t)2);
    run_until_seen(2);
    assert_true(seen.durable[1]);
    /* Now from the snapshot alone: the same answers. */
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", "k1", &out), VN_STORE_OK);
    assert_string_equal(out.data, "new");
    assert_int_equal(count(f->s, "u", "offline", NULL), 1);
    assert_true(query(f->s, "u", "offline", NULL, &c));
    assert_int_equal(c.n, 1);
    assert_int_equal(c.items[0].id, b);
    vn_buf_free(&out);
    collected_reset(&c);
}

static void test_failed_batch_is_reported_and_undone(void **state)
{
    fixture *f = *state;
    size_t size = 1 << 20;
    char *big = vn_alloc(size);
    vn_buf out;

    memset(&seen, 0, sizeof seen);
    seen.path = f->path;
    vn_buf_init(&out);
    /* LMDB: more than the 64 MB map in one batch: the commit fails.
     * PostgreSQL: another session locks the table past the batch's
     * write_timeout_ms (reads are not blocked by that lock). */
    PGconn *locker = NULL;
    if (pg_base) {
        close_store(f->s);
        pg_write_timeout_ms = 300;
        f->s = open_store(f->path);
        locker = pg_connect(f->path);
        pg_exec(locker, "BEGIN");
        pg_exec(locker, "LOCK TABLE vn_docs IN EXCLUSIVE MODE");
    }
    for (int i = 0; i < (pg_base ? 3 : 80); i++) {
        char key[16];
        snprintf(key, sizeof key, "big%d", i);
        assert_int_equal(vn_store_put(f->s, "h", "u", "x", key, big, size), VN_STORE_OK);
    }
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", "big2", &out), VN_STORE_OK);
    vn_store_when_durable(f->s, note, (void *)(intptr_t)1);
    run_until_seen(1);
    if (locker) {
        pg_exec(locker, "COMMIT");
        PQfinish(locker);
    }
    assert_int_equal(seen.status[0], VN_STORE_ERROR);
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", "big2", &out), VN_STORE_NOT_FOUND);
    /* The store goes on. */
    put_str(f->s, "h", "u", "x", "k2", "small");
    vn_store_when_durable(f->s, note, (void *)(intptr_t)2);
    run_until_seen(2);
    assert_int_equal(seen.status[1], VN_STORE_OK);
    assert_true(seen.durable[1]);
    free(big);
    vn_buf_free(&out);
}

/* A vestnikd-like writer: a timer appends a few items per loop turn and
 * reports them only from the durable callback. */
typedef struct turn_acks {
    int fd;
    size_t n;
    ack acks[8];
} turn_acks;

static vn_store *child_store;
static uint64_t child_seq;

static void report_turn(int status, void *arg)
{
    turn_acks *t = arg;
    if (status != VN_STORE_OK ||
        write(t->fd, t->acks, t->n * sizeof *t->acks) != (ssize_t)(t->n * sizeof *t->acks))
        _exit(5);
    free(t);
}

static void append_turn(uv_timer_t *timer)
{
    turn_acks *t = vn_alloc(sizeof *t);

    t->fd = (int)(intptr_t)timer->data;
    for (t->n = 0; t->n < 8; t->n++, child_seq++) {
        char data[32];
        ack *a = &t->acks[t->n];
        a->seq = child_seq;
        snprintf(data, sizeof data, "item %" PRIu64, child_seq);
        if (vn_archive_append(child_store, "h", "u", "mam", 0, "bob@x/r", data, strlen(data),
                              &a->id) != VN_STORE_OK)
            _exit(3);
    }
    vn_store_when_durable(child_store, report_turn, t);
}

static void grouped_appender_child(const char *path, int out_fd)
{
    static uv_loop_t child_loop;
    uv_timer_t timer;

    uv_loop_init(&child_loop);
    store_loop = &child_loop;
    mode = GROUPED;
    child_store = open_store(path);
    if (!child_store)
        _exit(2);
    uv_timer_init(&child_loop, &timer);
    timer.data = (void *)(intptr_t)out_fd;
    uv_timer_start(&timer, append_turn, 0, 0);
    uv_timer_start(&timer, append_turn, 0, 0);
    uv_timer_set_repeat(&timer, 0);
    for (;;) {
        uv_timer_start(&timer, append_turn, 0, 0);
        uv_run(&child_loop, UV_RUN_ONCE);
    }
}

static void test_grouped_acknowledged_appends_survive_kill9(void **state)
{
    fixture *f = *state;
    ack *acks = NULL;
    size_t n = 0, cap = 0;
    int fds[2];

    close_store(f->s);
    f->s = NULL;
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        grouped_appender_child(f->path, fds[1]);
    }
    close(fds[1]);

    int64_t deadline = monotonic_ms() + 500;
    for (int64_t now; (now = monotonic_ms()) < deadline;) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - now)) == 1)
            read_ack(fds[0], &acks, &n, &cap);
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    while (read_ack(fds[0], &acks, &n, &cap))
        ;
    close(fds[0]);
    assert_true(n > 0);

    f->s = open_store(f->path);
    assert_non_null(f->s);
    collected c = {0};
    assert_true(query(f->s, "u", "mam", NULL, &c));
    print_message("# kill -9, grouped: %zu appends acknowledged, %zu stored\n", n, c.n);
    assert_true(c.n >= n);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char data[32];
        assert_int_equal(acks[i].seq, i);
        while (j < c.n && c.items[j].id < acks[i].id)
            j++;
        assert_true(j < c.n);
        assert_int_equal(c.items[j].id, acks[i].id);
        snprintf(data, sizeof data, "item %zu", i);
        assert_string_equal(c.items[j].data, data);
    }
    free(acks);
    collected_reset(&c);
}

/* ---- PostgreSQL only ---- */

static void test_pg_open_errors(void **state)
{
    (void)state;
    vn_buf err;

    vn_buf_init(&err);
    vn_store_options opts = {.backend = "postgresql", .conninfo = "host=/nonexistent port=1"};
    assert_null(vn_store_open(&opts, &err));
    assert_non_null(strstr(err.data, "PostgreSQL"));
    vn_buf_reset(&err);
    opts.conninfo = "no-such-key=1";
    assert_null(vn_store_open(&opts, &err));
    assert_non_null(strstr(err.data, "no-such-key"));
    vn_buf_free(&err);
}

static void test_pg_schema_versions(void **state)
{
    fixture *f = *state;
    char schema[32];
    vn_buf report;

    pg_schema_of(f->path, schema, sizeof schema);
    char *conninfo = vn_asprintf("%s options='-csearch_path=%s'", pg_base, schema);
    vn_store_options opts = {.backend = "postgresql", .conninfo = conninfo};
    vn_buf_init(&report);
    /* Opening migrated it; migrating again finds nothing to do. */
    assert_int_equal(vn_store_pg_migrate(&opts, &report), 0);
    assert_non_null(strstr(report.data, "at version 1"));

    PGconn *conn = pg_connect(f->path);
    PGresult *r = PQexec(conn, "SELECT version, description FROM vn_schema_migrations");
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    /* A schema from a newer vestnik is refused, not written. */
    pg_exec(conn, "INSERT INTO vn_schema_migrations (version, description) VALUES (999, 'x')");
    vn_buf_reset(&report);
    assert_null(vn_store_open(&opts, &report));
    assert_non_null(strstr(report.data, "version 999"));
    pg_exec(conn, "DELETE FROM vn_schema_migrations WHERE version = 999");
    PQfinish(conn);
    vn_buf_free(&report);
    free(conninfo);
}

/* Two vestnikd nodes on one database: both assign the same id to their
 * appends before either batch lands; the counter row in the transaction
 * keeps the stored ids distinct and increasing. */
static void test_pg_ids_unique_across_nodes(void **state)
{
    fixture *f = *state;
    collected c = {0};
    uint64_t a, b;

    close_store(f->s);
    mode = GROUPED;
    f->s = open_store(f->path);
    vn_store *other = open_store(f->path);
    assert_non_null(other);
    assert_int_equal(vn_archive_append(f->s, "h", "room", "muc", 1000, "", "one", 3, &a), 0);
    assert_int_equal(vn_archive_append(other, "h", "room", "muc", 1000, "", "two", 3, &b), 0);
    assert_int_equal(a, b);
    vn_store_flush(f->s);
    vn_store_flush(other);
    mode = SYNC;
    close_store(other);
    close_store(f->s);
    f->s = open_store(f->path);
    assert_true(query(f->s, "room", "muc", NULL, &c));
    assert_int_equal(c.n, 2);
    assert_int_equal(c.items[0].id, 1000);
    assert_int_equal(c.items[1].id, 1001);
    assert_int_equal(count(f->s, "room", "muc", NULL), 2);

    /* A node reading in grouped mode sees another node's writes once its
     * snapshot is renewed, within snapshot_max_age_ms (200 by default). */
    close_store(f->s);
    mode = GROUPED;
    f->s = open_store(f->path);
    other = open_store(f->path);
    vn_buf out;
    vn_buf_init(&out);
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", "k", &out), VN_STORE_NOT_FOUND);
    assert_int_equal(vn_store_put(other, "h", "u", "x", "k", "v", 1), VN_STORE_OK);
    vn_store_flush(other);
    usleep(250 * 1000);
    assert_int_equal(vn_store_get(f->s, "h", "u", "x", "k", &out), VN_STORE_OK);
    close_store(other);
    vn_buf_free(&out);
    collected_reset(&c);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define INTERFACE_TESTS(S)                                                                         \
    cmocka_unit_test_setup_teardown(test_invalid_arguments, S, teardown),                          \
        cmocka_unit_test_setup_teardown(test_key_too_long, S, teardown),                           \
        cmocka_unit_test_setup_teardown(test_put_get_overwrite_delete, S, teardown),               \
        cmocka_unit_test_setup_teardown(test_foreach_order_isolation_and_stop, S, teardown),       \
        cmocka_unit_test_setup_teardown(test_foreach_user, S, teardown),                           \
        cmocka_unit_test_setup_teardown(test_delete_user, S, teardown),                            \
        cmocka_unit_test_setup_teardown(test_append_and_query_both_directions, S, teardown),       \
        cmocka_unit_test_setup_teardown(test_with_filter, S, teardown),                            \
        cmocka_unit_test_setup_teardown(test_time_bounds, S, teardown),                            \
        cmocka_unit_test_setup_teardown(test_limit_and_callback_stop_set_complete, S, teardown),   \
        cmocka_unit_test_setup_teardown(test_paging_250_in_pages_of_50, S, teardown),              \
        cmocka_unit_test_setup_teardown(test_count, S, teardown),                                  \
        cmocka_unit_test_setup_teardown(test_delete_id, S, teardown),                              \
        cmocka_unit_test_setup_teardown(test_delete_before, S, teardown),                          \
        cmocka_unit_test_setup_teardown(test_ids_increase_when_clock_goes_back, S, teardown),      \
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, S, teardown)
    const struct CMUnitTest sync_tests[] = {
        T(test_open_errors),
        T(test_store_directory_mode),
        INTERFACE_TESTS(setup),
        T(test_export_import_round_trip),
        T(test_two_handles_see_each_others_writes),
        T(test_acknowledged_appends_survive_kill9),
    };
    const struct CMUnitTest pg_sync_tests[] = {
        T(test_pg_open_errors),
        INTERFACE_TESTS(setup),
        T(test_export_import_round_trip),
        T(test_two_handles_see_each_others_writes),
        T(test_acknowledged_appends_survive_kill9),
        T(test_pg_schema_versions),
        T(test_pg_ids_unique_across_nodes),
    };
    const struct CMUnitTest grouped_tests[] = {INTERFACE_TESTS(setup_grouped)};
    const struct CMUnitTest landing_tests[] = {INTERFACE_TESTS(setup_landing)};
    const struct CMUnitTest group_commit_tests[] = {
        cmocka_unit_test_setup_teardown(test_one_batch_per_loop_turn, setup_grouped, teardown),
        cmocka_unit_test_setup_teardown(test_writes_during_a_commit_form_the_next_batch,
                                        setup_grouped, teardown),
        cmocka_unit_test_setup_teardown(test_durable_callbacks_order_and_cancel, setup_grouped,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_read_your_writes_before_durable, setup_grouped,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_is_reported_and_undone, setup_grouped,
                                        teardown),
        T(test_grouped_acknowledged_appends_survive_kill9),
    };
#undef INTERFACE_TESTS
#undef T
    uv_loop_init(&loop);
    int failed = cmocka_run_group_tests_name("synchronous", sync_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("grouped, nothing landed", grouped_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("grouped, landing", landing_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("group commit", group_commit_tests, NULL, NULL);
    pg_base = getenv("VN_TEST_PG_CONNINFO");
    if (pg_base && pg_base[0]) {
        failed += cmocka_run_group_tests_name("postgresql, synchronous", pg_sync_tests, NULL, NULL);
        failed += cmocka_run_group_tests_name("postgresql, grouped, nothing landed", grouped_tests,
                                              NULL, NULL);
        failed +=
            cmocka_run_group_tests_name("postgresql, grouped, landing", landing_tests, NULL, NULL);
        failed +=
            cmocka_run_group_tests_name("postgresql, group commit", group_commit_tests, NULL, NULL);
    } else {
        print_message("# VN_TEST_PG_CONNINFO not set: the PostgreSQL backend is not tested\n");
    }
    uv_loop_close(&loop);
    return failed;
}
