/*
 * mam_bench.c - how fast the first page of a MAM query comes back from a
 * large archive (issue 4: under 10 ms over 1,000,000 messages).
 *
 * A benchmark, not a test: it creates a temporary LMDB store, fills one
 * account's archive with N realistic chat messages (10 contacts, both
 * directions, one every 30 seconds) through vn_archive_append, then times
 * the first page, newest first (RSM <max>50</max><before/>), of three
 * queries: unfiltered, filtered by 'with', and bounded by start/end. Each
 * run goes through mam_query.c exactly as mod_mam runs a client's query
 * (parse the <query/>, read the page and the count, build and serialize
 * every result message and the <fin/>), so the times are the server's
 * work for one query minus the socket write.
 *
 * Every append is a durable commit (fsync). The store lives in /dev/shm
 * when it exists, where a sync costs nothing and a million appends take
 * seconds; on a disk each costs a sync (about 0.44 ms here). Queries read
 * from the page cache either way. -d picks another directory.
 *
 * Usage: mam_bench [-n messages] [-r runs] [-d directory] [-k]
 *   -n  messages to archive (default 1000000)
 *   -r  timed runs per query (default 200)
 *   -d  where the temporary store is created (default /dev/shm, else $TMPDIR or /tmp)
 *   -k  keep the store afterwards (its path is printed)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mam_query.h"
#include "store_backend.h"

#define HOST "localhost"
#define USER "alice"
#define CONTACTS 10
#define SPACING_US (30LL * 1000000)
#define BASE_US (1704067200LL * 1000000) /* 2024-01-01T00:00:00Z */
#define PAGE 50
#define WINDOW_US (7LL * 86400 * 1000000)

static const char *const phrases[] = {
    "Are we still on for lunch tomorrow?",
    "I pushed the fix; can you have a look at the review when you get a minute?",
    "ok",
    "The train is late again, I will be there in about twenty minutes.",
    "Did you see the photos from the weekend? The view from the top was unreal.",
    "Call me when you are free, nothing urgent.",
    "Thanks! That worked perfectly.",
    "Happy birthday! Hope you have a great day 🎉",
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void contact_jid(size_t i, char *out, size_t size)
{
    snprintf(out, size, "contact%zu@example.net", i % CONTACTS);
}

/* Message i as a client sends it (even i) or receives it (odd i). */
static char *message_xml(size_t i, size_t *len)
{
    char contact[64], full[96], text[256], id[64];
    bool outgoing = i % 2 == 0;

    contact_jid(i / 2, contact, sizeof contact);
    snprintf(full, sizeof full, "%s/%s", contact, i % 3 ? "phone" : "laptop-7f3a");
    snprintf(id, sizeof id, "msg-%08zx-%04zx-4c1e-9d2b", i * 2654435761u, i % 65536);
    snprintf(text, sizeof text, "%s (#%zu)", phrases[i % (sizeof phrases / sizeof phrases[0])], i);

    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "from", outgoing ? USER "@" HOST "/phone-3b1f" : full);
    vn_stanza_set_attr(msg, "to", outgoing ? contact : USER "@" HOST);
    vn_stanza_set_attr(msg, "type", "chat");
    vn_stanza_set_attr(msg, "id", id);
    vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, text);
    vn_stanza_add_child(msg, "active", "http://jabber.org/protocol/chatstates");
    vn_stanza_add_child(msg, "request", "urn:xmpp:receipts");
    vn_stanza_set_attr(vn_stanza_add_child(msg, "origin-id", "urn:xmpp:sid:0"), "id", id);
    char *xml = vn_stanza_serialize(msg, VN_NS_CLIENT, len);
    vn_stanza_free(msg);
    return xml;
}

static int fill(vn_store *store, size_t count)
{
    double started = now_ms();
    size_t bytes = 0;

    for (size_t i = 0; i < count; i++) {
        char contact[64];
        size_t len;
        char *xml = message_xml(i, &len);
        contact_jid(i / 2, contact, sizeof contact);
        int rc = vn_archive_append(store, HOST, USER, MAM_ARCHIVE,
                                   BASE_US + (int64_t)i * SPACING_US, contact, xml, len, NULL);
        bytes += len;
        free(xml);
        if (rc != VN_STORE_OK) {
            fprintf(stderr, "mam_bench: append %zu failed\n", i);
            return -1;
        }
        if ((i + 1) % 100000 == 0)
            fprintf(stderr, "  %zu appended\n", i + 1);
    }
    double took = now_ms() - started;
    printf("filled %zu messages (%.0f bytes each on average) in %.1f s (%.1f us per append)\n",
           count, count ? (double)bytes / count : 0.0, took / 1e3,
           count ? took * 1e3 / count : 0.0);
    return 0;
}

/* The <query/> a client sends for the newest page; with/start/end optional. */
static vn_stanza *newest_page_query(const char *with, int64_t start_us, int64_t end_us)
{
    char stamp[VN_DATETIME_SIZE];
    vn_stanza *query = vn_stanza_new("query", MAM_NS);
    vn_stanza_set_attr(query, "queryid", "bench");
    vn_stanza *form = vn_stanza_add_child(query, "x", "jabber:x:data");
    vn_stanza_set_attr(form, "type", "submit");
    vn_stanza *type = vn_stanza_add_child(form, "field", "jabber:x:data");
    vn_stanza_set_attr(type, "var", "FORM_TYPE");
    vn_stanza_add_text_child(type, "value", "jabber:x:data", MAM_NS);
    const char *names[] = {"with", "start", "end"};
    for (int i = 0; i < 3; i++) {
        const char *value = i == 0 ? with : stamp;
        if (i > 0 && !(i == 1 ? start_us : end_us))
            continue;
        if (i == 0 && !with)
            continue;
        if (i > 0)
            vn_datetime_format(i == 1 ? start_us : end_us, stamp);
        vn_stanza *field = vn_stanza_add_child(form, "field", "jabber:x:data");
        vn_stanza_set_attr(field, "var", names[i]);
        vn_stanza_add_text_child(field, "value", "jabber:x:data", value);
    }
    vn_stanza *set = vn_stanza_add_child(query, "set", "http://jabber.org/protocol/rsm");
    vn_stanza_add_text_child(set, "max", "http://jabber.org/protocol/rsm", "50");
    vn_stanza_add_child(set, "before", "http://jabber.org/protocol/rsm");
    return query;
}

/* One query as mod_mam answers it; returns the items on the page. */
static size_t answer(vn_store *store, const vn_stanza *iq, const vn_stanza *query, vn_buf *out)
{
    mam_query q;
    mam_page page;
    const char *text = NULL;

    if (mam_query_parse(query, 100, &q, &text)) {
        fprintf(stderr, "mam_bench: query refused: %s\n", text);
        exit(1);
    }
    if (mam_query_run(store, HOST, USER, &q, &page) != VN_STORE_OK) {
        fprintf(stderr, "mam_bench: query failed\n");
        exit(1);
    }
    vn_buf_reset(out);
    for (size_t i = 0; i < page.count; i++) {
        vn_stanza *msg =
            mam_result_message(&q, &page.items[i], USER "@" HOST, USER "@" HOST "/phone-3b1f");
        vn_stanza_serialize_to(msg, VN_NS_CLIENT, out);
        vn_stanza_free(msg);
    }
    vn_stanza *fin = mam_fin(iq, &page);
    vn_stanza_serialize_to(fin, VN_NS_CLIENT, out);
    vn_stanza_free(fin);
    size_t count = page.count;
    mam_page_free(&page);
    mam_query_free(&q);
    return count;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void time_query(vn_store *store, const char *name, vn_stanza *query, int runs)
{
    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    vn_stanza_set_attr(iq, "type", "set");
    vn_stanza_set_attr(iq, "id", "q1");
    vn_stanza_set_attr(iq, "from", USER "@" HOST "/phone-3b1f");
    vn_stanza_set_attr(iq, "to", USER "@" HOST);
    double *times = vn_alloc((size_t)runs * sizeof *times);
    vn_buf out;
    size_t items = 0;

    vn_buf_init(&out);
    for (int i = 0; i < runs; i++) {
        double started = now_ms();
        items = answer(store, iq, query, &out);
        times[i] = now_ms() - started;
    }
    qsort(times, (size_t)runs, sizeof *times, compare_doubles);
    printf("%-22s %2zu items, %6zu bytes: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", name, items,
           out.len, times[runs / 2], times[(runs * 99) / 100 - (runs >= 100 ? 1 : 0)],
           times[runs - 1]);
    vn_buf_free(&out);
    free(times);
    vn_stanza_free(iq);
    vn_stanza_free(query);
}

static const char *default_parent(void)
{
    struct stat sb;

    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    return getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
}

static void remove_store(const char *dir)
{
    DIR *d = opendir(dir);
    const struct dirent *entry;

    while (d && (entry = readdir(d))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char *path = vn_asprintf("%s/%s", dir, entry->d_name);
        unlink(path);
        free(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    size_t count = 1000000;
    int runs = 200, opt;
    const char *parent = default_parent();
    bool keep = false;

    while ((opt = getopt(argc, argv, "n:r:d:k")) != -1) {
        switch (opt) {
        case 'n': count = strtoull(optarg, NULL, 10); break;
        case 'r': runs = atoi(optarg); break;
        case 'd': parent = optarg; break;
        case 'k': keep = true; break;
        default:
            fprintf(stderr, "usage: %s [-n messages] [-r runs] [-d directory] [-k]\n", argv[0]);
            return 2;
        }
    }
    if (count < 2 * CONTACTS * PAGE || runs < 1) {
        fprintf(stderr, "mam_bench: at least %d messages and one run\n", 2 * CONTACTS * PAGE);
        return 2;
    }

    char *dir = vn_asprintf("%s/vestnik-mam-bench-XXXXXX", parent);
    if (!mkdtemp(dir)) {
        perror(dir);
        return 1;
    }
    vn_buf err;
    vn_buf_init(&err);
    vn_store_options opts = {.backend = "lmdb", .path = dir, .map_size_mb = 1024 + count / 256};
    vn_store *store = vn_store_open(&opts, &err);
    if (!store) {
        fprintf(stderr, "mam_bench: %s\n", err.data);
        return 1;
    }
    printf("store: %s\n", dir);
    if (fill(store, count) != 0)
        return 1;

    size_t archived = 0;
    struct stat sb;
    char *data_file = vn_asprintf("%s/data.mdb", dir);
    vn_archive_count(store, HOST, USER, MAM_ARCHIVE, NULL, &archived);
    printf("archive: %zu messages, data.mdb %.1f MB\n", archived,
           stat(data_file, &sb) == 0 ? sb.st_size / 1048576.0 : 0.0);
    free(data_file);

    int64_t span_us = (int64_t)count * SPACING_US;
    int64_t start_us = BASE_US + span_us * 2 / 5;
    printf("first page of %d, newest first, %d runs each:\n", PAGE, runs);
    time_query(store, "unfiltered", newest_page_query(NULL, 0, 0), runs);
    time_query(store, "with contact3", newest_page_query("contact3@example.net", 0, 0), runs);
    time_query(store, "start/end (7 days)", newest_page_query(NULL, start_us, start_us + WINDOW_US),
               runs);

    vn_store_close(store);
    if (!keep)
        remove_store(dir);
    free(dir);
    vn_buf_free(&err);
    return 0;
}
