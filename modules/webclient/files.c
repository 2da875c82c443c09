/*
 * files.c - the web client's static files (Converse.js's dist/ directory,
 * the configured logo), served from a root directory.
 *
 * A file is read whole on a worker thread (the loop never waits on the
 * disk), kept in a cache of bounded size, and sent in pieces as the
 * connection drains; the next request for it is answered from memory.
 * Requests for a file being read wait for that one read, so a crowd of
 * browsers arriving at once (after a restart) costs one copy, not one each.
 * The files change only when the server is upgraded, so the cache lives
 * until the module is reloaded (SIGHUP). Each file has an ETag (size and
 * modification time) for conditional requests. A client that accepts gzip
 * gets the file's .gz beside it when there is one (fetch-converse makes
 * them: converse.min.js shrinks from 1.3 MB to a third).
 *
 * Paths are decoded and checked before they reach the disk: no empty or
 * dot segments, no hidden files, no NUL or backslash; and the real path of
 * what is opened must still lie inside the root, so a symbolic link cannot
 * lead out of it either.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>
#include <vestnik/module.h>

#include "webclient.h"

#define PIECE 65536 /* what vn_http_write takes at most */
#define MIN_PIECE 1024

/* One file in memory, shared by the cache and the responses sending it. */
typedef struct wc_file {
    char *key;        /* the cache's: 'z' (gzip accepted) or 'i', then the path */
    const char *type; /* of the file asked for */
    bool gzip;        /* data is the file's .gz */
    char *data;
    size_t len;
    char etag[48];
    unsigned refs;
    UT_hash_handle hh;
} wc_file;

struct wc_files {
    char *root;               /* as configured */
    wc_file *cache;           /* by key, oldest first */
    struct read_job *pending; /* reads in flight, by key */
    size_t cached;            /* bytes */
    size_t cache_size, max_file_size;
    unsigned jobs; /* reads in flight */
    bool freed;    /* the module let go; the last job frees */
};

/* A read in flight and the requests waiting for it (NULL: gone away). */
typedef struct read_job {
    wc_files *files;
    vn_http_request **waiters;
    size_t n_waiters;
    long long max_age;
    char *key; /* as wc_file's */
    char *rel;
    bool gzip;  /* the client accepts it */
    int status; /* 200, 404, 500 */
    char *why;  /* of a 500 */
    wc_file *file;
    UT_hash_handle hh;
} read_job;

/* A response being sent. */
typedef struct sending {
    wc_file *file;
    size_t off;
    size_t piece; /* bytes per write */
} sending;

/* What the request's data slot holds: a job or a response. */
typedef struct slot {
    read_job *job;
    sending *send;
} slot;

static void file_release(wc_file *f)
{
    if (--f->refs)
        return;
    free(f->key);
    free(f->data);
    free(f);
}

wc_files *wc_files_new(const char *root, size_t max_file_size, size_t cache_size)
{
    wc_files *files = vn_alloc(sizeof *files);

    files->root = vn_strdup(root);
    files->max_file_size = max_file_size;
    files->cache_size = cache_size;
    return files;
}

static void drop_cache(wc_files *files)
{
    wc_file *f, *tmp;

    HASH_ITER(hh, files->cache, f, tmp)
    {
        HASH_DEL(files->cache, f);
        file_release(f);
    }
    files->cached = 0;
}

static void files_destroy(wc_files *files)
{
    drop_cache(files);
    free(files->root);
    free(files);
}

void wc_files_free(wc_files *files)
{
    if (!files)
        return;
    if (files->jobs) {
        files->freed = true;
        return;
    }
    files_destroy(files);
}

/* Keep f, evicting the oldest files when the cache is full. */
static void cache_add(wc_files *files, wc_file *f)
{
    if (f->len > files->cache_size)
        return;
    while (files->cache && files->cached + f->len > files->cache_size) {
        wc_file *old = files->cache;
        HASH_DEL(files->cache, old);
        files->cached -= old->len;
        file_release(old);
    }
    f->refs++;
    files->cached += f->len;
    HASH_ADD_KEYPTR(hh, files->cache, f->key, strlen(f->key), f);
}

/* ---- paths, types, validators ---- */

bool wc_etag_matches(const char *if_none_match, const char *etag)
{
    /* Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x" too. */
    return if_none_match &&
           (strcmp(if_none_match, "*") == 0 || strstr(if_none_match, etag) != NULL);
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *wc_files_decode_path(const char *raw)
{
    size_t n = strlen(raw);
    char *out = vn_alloc(n + 1), *o = out;

    for (const char *p = raw; *p; p++) {
        if (*p == '%') {
            int hi = hex(p[1]), lo = hi < 0 ? -1 : hex(p[2]);
            if (lo < 0)
                goto bad;
            *o++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    if ((size_t)(o - out) != strlen(out) || strchr(out, '\\') || out[0] == '\0')
        goto bad;
    for (const char *seg = out;;) {
        size_t len = strcspn(seg, "/");
        if (len == 0 || seg[0] == '.') /* "", ".", "..", hidden files */
            goto bad;
        if (!seg[len])
            break;
        seg += len + 1;
    }
    return out;
bad:
    free(out);
    return NULL;
}

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".wasm", "application/wasm"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/vnd.microsoft.icon"},
    {".ttf", "font/ttf"},
    {".otf", "font/otf"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
    {".mp3", "audio/mpeg"},
    {".ogg", "audio/ogg"},
    {".txt", "text/plain; charset=utf-8"},
};

/* The Content-Type for a file name, by its extension. */
static const char *file_type(const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t ext_len = strlen(types[i].ext);
        if (len > ext_len && strcasecmp(name + len - ext_len, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* ---- reading, on a worker thread ---- */

/* 200 and *out, 404, or 500 with *why (for the log, on the loop). */
static int read_file(const char *root, const char *rel, size_t max_size, wc_file **out, char **why)
{
    char *path = vn_asprintf("%s/%s", root, rel);
    char real_root[PATH_MAX], real[PATH_MAX];
    int status = 404, fd = -1;
    struct stat st;

    if (!realpath(root, real_root) || !realpath(path, real))
        goto done;
    size_t root_len = strlen(real_root);
    if (strncmp(real, real_root, root_len) != 0 || real[root_len] != '/')
        goto done; /* a link out of the root */
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto done;
    status = 500;
    if ((uint64_t)st.st_size > max_size) {
        *why = vn_asprintf("%s is larger than max_file_size", real);
        goto done;
    }
    wc_file *f = vn_alloc(sizeof *f);
    f->len = (size_t)st.st_size;
    f->data = vn_alloc(f->len + 1);
    for (size_t got = 0; got < f->len;) {
        ssize_t n = read(fd, f->data + got, f->len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *why = vn_asprintf("reading %s: %s", real, n < 0 ? strerror(errno) : "cut short");
            free(f->data);
            free(f);
            goto done;
        }
        got += (size_t)n;
    }
    f->refs = 1;
    snprintf(f->etag, sizeof f->etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtime);
    *out = f;
    status = 200;
done:
    if (fd >= 0)
        close(fd);
    free(path);
    return status;
}

static void read_work(void *ud)
{
    read_job *job = ud;
    const wc_files *files = job->files;

    if (job->gzip) {
        char *gz = vn_asprintf("%s.gz", job->rel);
        if (read_file(files->root, gz, files->max_file_size, &job->file, &job->why) == 200)
            job->file->gzip = true;
        free(gz);
        free(job->why); /* the file itself is what matters */
        job->why = NULL;
    }
    if (job->file)
        job->status = 200;
    else
        job->status = read_file(files->root, job->rel, files->max_file_size, &job->file, &job->why);
    if (job->file) {
        job->file->key = vn_strdup(job->key);
        job->file->type = file_type(job->rel);
    }
}

/* ---- responses ---- */

static void send_pieces(vn_http_request *req, sending *s)
{
    while (vn_http_write_room(req)) {
        size_t n = s->file->len - s->off;
        if (n > s->piece)
            n = s->piece;
        bool last = s->off + n == s->file->len;
        slot *sl = vn_http_request_data(req);
        if (vn_http_write(req, s->file->data + s->off, n) < 0) {
            /* More than the connection's output cap may hold: smaller. */
            if (s->piece <= MIN_PIECE)
                return;
            s->piece /= 2;
            continue;
        }
        s->off += n;
        if (last) { /* the response is complete, and req is gone */
            free(sl);
            file_release(s->file);
            free(s);
            return;
        }
    }
}

static void respond_file(vn_http_request *req, wc_file *f, long long max_age)
{
    const char *match = vn_http_request_header(req, "If-None-Match");
    char cache[64];

    snprintf(cache, sizeof cache, "public, max-age=%lld", max_age);
    vn_http_response_header(req, "Cache-Control", cache);
    vn_http_response_header(req, "ETag", f->etag);
    vn_http_response_header(req, "Vary", "Accept-Encoding");
    if (f->gzip)
        vn_http_response_header(req, "Content-Encoding", "gzip");
    if (wc_etag_matches(match, f->etag)) {
        vn_http_respond(req, 304, NULL, NULL, 0);
        return;
    }
    bool head = strcmp(vn_http_request_method(req), "HEAD") == 0;
    vn_http_respond_begin(req, 200, f->type, f->len);
    if (f->len == 0 || head)
        return; /* complete already, and req gone */
    sending *s = vn_alloc(sizeof *s);
    slot *sl = vn_alloc(sizeof *sl);
    s->file = f;
    s->piece = PIECE;
    f->refs++;
    sl->send = s;
    vn_http_request_set_data(req, sl);
    send_pieces(req, s);
}

static void respond_status(vn_http_request *req, int status)
{
    static const char not_found[] = "404 Not Found\n";
    static const char failed[] = "500 Internal Server Error\n";

    vn_http_response_header(req, "Cache-Control", "no-cache");
    if (status == 404)
        vn_http_respond(req, 404, "text/plain; charset=utf-8", not_found, sizeof not_found - 1);
    else
        vn_http_respond(req, 500, "text/plain; charset=utf-8", failed, sizeof failed - 1);
}

static void read_done(void *ud)
{
    read_job *job = ud;
    wc_files *files = job->files;

    files->jobs--;
    HASH_DEL(files->pending, job);
    if (job->why)
        vn_log_warn("webclient: %s", job->why);
    if (job->file && !files->freed) {
        wc_file *have = NULL;
        HASH_FIND_STR(files->cache, job->file->key, have);
        if (!have)
            cache_add(files, job->file);
    }
    for (size_t i = 0; i < job->n_waiters; i++) {
        vn_http_request *req = job->waiters[i];
        if (!req)
            continue;
        free(vn_http_request_data(req));
        vn_http_request_set_data(req, NULL);
        if (job->status == 200)
            respond_file(req, job->file, job->max_age);
        else
            respond_status(req, job->status);
    }
    if (job->file)
        file_release(job->file);
    free(job->waiters);
    free(job->key);
    free(job->rel);
    free(job->why);
    free(job);
    if (files->freed && !files->jobs)
        files_destroy(files);
}

/* Accept-Encoding names gzip, with no q=0. */
static bool accepts_gzip(vn_http_request *req)
{
    const char *accept = vn_http_request_header(req, "Accept-Encoding");
    const char *p = accept ? strstr(accept, "gzip") : NULL;

    if (!p)
        return false;
    p += strspn(p + 4, " \t") + 4;
    if (*p != ';')
        return true;
    const char *q = strstr(p, "q=");
    return !q || strtod(q + 2, NULL) > 0;
}

void wc_files_serve(wc_files *files, vn_http_request *req, const char *rel, long long max_age)
{
    bool gzip = accepts_gzip(req);
    char *key = vn_asprintf("%c%s", gzip ? 'z' : 'i', rel);
    wc_file *f = NULL;

    HASH_FIND_STR(files->cache, key, f);
    if (f) {
        /* Most recently used goes last, so eviction takes the oldest. */
        HASH_DEL(files->cache, f);
        HASH_ADD_KEYPTR(hh, files->cache, f->key, strlen(f->key), f);
        respond_file(req, f, max_age);
        free(key);
        return;
    }
    read_job *job = NULL;
    HASH_FIND_STR(files->pending, key, job);
    if (!job) {
        job = vn_alloc(sizeof *job);
        job->files = files;
        job->max_age = max_age;
        job->key = key;
        job->rel = vn_strdup(rel);
        job->gzip = gzip;
        HASH_ADD_KEYPTR(hh, files->pending, job->key, strlen(job->key), job);
        files->jobs++;
        vn_work_queue(read_work, read_done, job);
    } else {
        free(key);
    }
    job->waiters = vn_realloc(job->waiters, (job->n_waiters + 1) * sizeof *job->waiters);
    job->waiters[job->n_waiters++] = req;
    slot *sl = vn_alloc(sizeof *sl);
    sl->job = job;
    vn_http_request_set_data(req, sl);
}

void wc_files_on_writable(vn_http_request *req)
{
    slot *sl = vn_http_request_data(req);

    if (sl && sl->send)
        send_pieces(req, sl->send);
}

void wc_files_on_abort(vn_http_request *req)
{
    slot *sl = vn_http_request_data(req);

    if (!sl)
        return;
    for (size_t i = 0; sl->job && i < sl->job->n_waiters; i++)
        if (sl->job->waiters[i] == req)
            sl->job->waiters[i] = NULL;
    if (sl->send) {
        file_release(sl->send->file);
        free(sl->send);
    }
    free(sl);
    vn_http_request_set_data(req, NULL);
}
