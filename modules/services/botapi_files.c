/*
 * botapi_files.c - files both ways.
 *
 * A file a bot uploads (sendPhoto/sendDocument, multipart) is written to
 * data_dir/botapi/<32 hex> with its content type beside it (.type), and
 * users get it as a XEP-0066 URL <base>/botapi-files/<hex>/<name>: the
 * unguessable hex is the capability, as with HTTP upload's GET URLs. A
 * file a user sends (a XEP-0066 URL, e.g. from HTTP upload) is remembered
 * by URL and fetched only when the bot asks getFile (libcurl on a worker,
 * up to bot_max_file_size), then kept like the bot's own. The bot
 * downloads either with /file/bot<token>/<file_path>; file_path is
 * "files/<file_id>/<name>", looked up among the bot's own files only.
 * Files are sent in 64 KiB pieces read on a worker, as fast as the
 * connection takes them.
 *   (domain, bot, "botapi_files", FILE-ID)  {"hex","name","mime","size","url"}
 * ("hex" once the file is here; "url" for a user's file.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "botapi.h"

#define FILES_STORE "botapi_files"
#define HEX_LEN 32
#define IO_CHUNK 65536

static char *files_dir;

void botapi_files_start(void)
{
    char *parent = vn_asprintf("%s/botapi", vn_server_data_dir());
    if (mkdir(parent, 0750) < 0 && errno != EEXIST) /* at start, before any file */
        vn_log_error("botapi: cannot create %s: %s", parent, strerror(errno));
    files_dir = parent;
}

void botapi_files_stop(void)
{
    free(files_dir);
    files_dir = NULL;
}

static bool hex_valid(const char *hex, size_t len)
{
    if (len != HEX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return false;
    return true;
}

/* A file name safe in a path and a URL: letters, digits and ._- kept,
 * anything else becomes '_'. */
static char *safe_name(const char *name)
{
    char *out = vn_strdup(name && name[0] ? name : "file");
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            *p = '_';
    if (out[0] == '.')
        out[0] = '_';
    if (strlen(out) > 100)
        out[100] = '\0';
    return out;
}

/* Worker thread: 0, or the errno of the failure (nothing logged here). */
static int write_file(const char *path, const void *data, size_t len)
{
    char *tmp = vn_asprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int err = f ? 0 : errno;
    if (f && fwrite(data, 1, len, f) != len)
        err = errno ? errno : EIO;
    if (f && fclose(f) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err)
        remove(tmp);
    free(tmp);
    return err;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    vn_buf buf;
    vn_buf_init(&buf);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        vn_buf_append(&buf, chunk, n);
    fclose(f);
    vn_buf_append(&buf, "", 1);
    char *data = vn_buf_steal(&buf, len);
    *len -= 1;
    return data;
}

/* Write data as a new file here (on a worker thread): its hex name into
 * hex; 0 or an errno. */
static int keep_file(const void *data, size_t len, const char *mime, char hex[HEX_LEN + 1])
{
    botapi_random_hex(hex, HEX_LEN / 2);
    char *path = vn_asprintf("%s/%s", files_dir, hex);
    char *type_path = vn_asprintf("%s.type", path);
    int err = write_file(path, data, len);
    if (!err)
        err = write_file(type_path, mime, strlen(mime));
    free(path);
    free(type_path);
    return err;
}

static char *public_url(const botapi_bot *bot, const char *hex, const char *name)
{
    if (botapi_conf.base_url[0])
        return vn_asprintf("%s/botapi-files/%s/%s", botapi_conf.base_url, hex, name);
    int port = vn_http_listener_port(true);
    bool tls = port != 0;
    if (!tls)
        port = vn_http_listener_port(false);
    return vn_asprintf("%s://%s:%d/botapi-files/%s/%s", tls ? "https" : "http", bot->host, port,
                       hex, name);
}

static json_t *doc_get(botapi_bot *bot, const char *file_id)
{
    vn_buf buf;
    vn_buf_init(&buf);
    json_t *doc = NULL;
    if (file_id && strlen(file_id) < 100 &&
        vn_store_get(vn_server_store(), bot->domain, bot->username, FILES_STORE, file_id, &buf) ==
            VN_STORE_OK)
        doc = json_loadb(buf.data, buf.len, 0, NULL);
    vn_buf_free(&buf);
    return json_is_object(doc) ? doc : (json_decref(doc), NULL);
}

static void doc_put(botapi_bot *bot, const char *file_id, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    vn_store_put(vn_server_store(), bot->domain, bot->username, FILES_STORE, file_id, text,
                 strlen(text));
    free(text);
}

/* The File/Document object of a stored file. */
static json_t *file_json(const char *file_id, const json_t *doc)
{
    json_t *file =
        json_pack("{s:s, s:s%}", "file_id", file_id, "file_unique_id", file_id + 1, (size_t)12);
    const char *name = json_string_value(json_object_get(doc, "name"));
    const char *mime = json_string_value(json_object_get(doc, "mime"));
    if (name)
        json_object_set_new(file, "file_name", json_string(name));
    if (mime)
        json_object_set_new(file, "mime_type", json_string(mime));
    if (json_object_get(doc, "size"))
        json_object_set(file, "file_size", json_object_get(doc, "size"));
    return file;
}

static char *new_file_id(char kind)
{
    char hex[HEX_LEN + 1];
    botapi_random_hex(hex, HEX_LEN / 2);
    return vn_asprintf("%c%s", kind, hex);
}

typedef struct store_job {
    botapi_call *call;
    const botapi_upload *up; /* the call's */
    botapi_stored_fn done;
    void *ud;
    char hex[HEX_LEN + 1];
    int err;
} store_job;

static void store_work(void *ud)
{
    store_job *job = ud;
    job->err = keep_file(job->up->data, job->up->len, job->up->content_type, job->hex);
}

static void store_done(void *ud)
{
    store_job *job = ud;
    botapi_call *call = job->call;
    const botapi_upload *up = job->up;
    call->waiting = false;
    if (job->err) {
        vn_log_error("botapi: cannot write a file into %s: %s", files_dir, strerror(job->err));
        job->done(call, NULL, NULL, job->ud);
        free(job);
        return;
    }
    char *name = safe_name(up->filename);
    char *file_id = new_file_id('F');
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I}", "hex", job->hex, "name", name, "mime",
                            up->content_type, "size", (json_int_t)up->len);
    doc_put(call->bot, file_id, doc);
    json_t *file = file_json(file_id, doc);
    char *url = public_url(call->bot, job->hex, name);
    json_decref(doc);
    free(file_id);
    free(name);
    job->done(call, file, url, job->ud);
    free(job);
}

void botapi_file_store(botapi_call *call, const botapi_upload *up, botapi_stored_fn done, void *ud)
{
    store_job *job = vn_alloc(sizeof *job);
    job->call = call;
    job->up = up;
    job->done = done;
    job->ud = ud;
    call->waiting = true;
    vn_work_queue(store_work, store_done, job);
}

json_t *botapi_file_remote(botapi_bot *bot, const char *url, const char *name)
{
    char *safe = safe_name(name);
    char *file_id = new_file_id('U');
    json_t *doc = json_pack("{s:s, s:s}", "url", url, "name", safe);
    doc_put(bot, file_id, doc);
    json_t *file = file_json(file_id, doc);
    json_decref(doc);
    free(file_id);
    free(safe);
    return file;
}

json_t *botapi_file_lookup(botapi_bot *bot, const char *file_id, char **url)
{
    json_t *doc = doc_get(bot, file_id);
    if (!doc)
        return NULL;
    const char *hex = json_string_value(json_object_get(doc, "hex"));
    const char *remote = json_string_value(json_object_get(doc, "url"));
    const char *name = json_string_value(json_object_get(doc, "name"));
    *url = hex && !remote ? public_url(bot, hex, name ? name : "file") : vn_strdup(remote);
    json_t *file = file_json(file_id, doc);
    json_decref(doc);
    return file;
}

/* ---- getFile ---- */

static void answer_file(botapi_call *call, const char *file_id, const json_t *doc)
{
    json_t *file = file_json(file_id, doc);
    json_object_del(file, "file_name");
    json_object_del(file, "mime_type");
    const char *name = json_string_value(json_object_get(doc, "name"));
    char *path = vn_asprintf("files/%s/%s", file_id, name ? name : "file");
    json_object_set_new(file, "file_path", json_string(path));
    free(path);
    botapi_call_ok(call, file);
}

typedef struct fetch_job {
    botapi_call *call;
    char *file_id;
    botapi_fetch *fetch;
    char hex[HEX_LEN + 1]; /* the fetched file, kept (on the worker) */
    int err;
} fetch_job;

static void fetch_work(void *ud)
{
    fetch_job *job = ud;
    botapi_fetch *f = job->fetch;
    botapi_fetch_run(f);
    if (f->status == 200 && !f->too_large)
        job->err = keep_file(f->response.data ? f->response.data : "", f->response.len,
                             "application/octet-stream", job->hex);
}

static void fetch_done(void *ud)
{
    fetch_job *job = ud;
    botapi_call *call = job->call;
    botapi_fetch *f = job->fetch;
    call->waiting = false;
    json_t *doc = doc_get(call->bot, job->file_id);
    if (!doc) {
        botapi_call_fail(call, 400,
                         "Bad Request: wrong file_id or the file is temporarily unavailable");
    } else if (f->too_large) {
        botapi_call_fail(call, 400, "Bad Request: file is too big");
    } else if (f->status != 200) {
        vn_log_info("botapi: fetching %s for %s failed: %s (HTTP %ld)", f->url, call->bot->key,
                    f->error, f->status);
        botapi_call_fail(call, 400,
                         "Bad Request: wrong file_id or the file is temporarily unavailable");
    } else if (job->err) {
        vn_log_error("botapi: cannot write a file into %s: %s", files_dir, strerror(job->err));
        botapi_call_fail(call, 500, "Internal Server Error: cannot store the file");
    } else {
        json_object_set_new(doc, "hex", json_string(job->hex));
        json_object_set_new(doc, "size", json_integer((json_int_t)f->response.len));
        doc_put(call->bot, job->file_id, doc);
        answer_file(call, job->file_id, doc);
    }
    json_decref(doc);
    botapi_fetch_free(f);
    free(job->file_id);
    free(job);
}

void botapi_file_get(botapi_call *call)
{
    const char *file_id = botapi_param_string(call, "file_id");
    json_t *doc = doc_get(call->bot, file_id);
    if (!doc) {
        botapi_call_fail(call, 400, "Bad Request: invalid file_id");
        return;
    }
    if (json_object_get(doc, "hex")) {
        answer_file(call, file_id, doc);
        json_decref(doc);
        return;
    }
    fetch_job *job = vn_alloc(sizeof *job);
    job->call = call;
    job->file_id = vn_strdup(file_id);
    job->fetch = botapi_fetch_new(json_string_value(json_object_get(doc, "url")), NULL, NULL,
                                  (size_t)botapi_conf.max_file_size);
    job->fetch->public_only = !botapi_conf.file_fetch_private;
    job->fetch->allow_http = true; /* a user's file may be on http */
    json_decref(doc);
    call->waiting = true;
    vn_work_queue(fetch_work, fetch_done, job);
}

/* ---- serving ---- */

/* A file being sent: read in pieces on a worker, written as the
 * connection takes them (the request's data while it lasts). */
typedef struct transfer {
    vn_http_request *req; /* NULL once the connection went away */
    int fd;
    uint64_t size, offset;
    char *buf;
    size_t len;
    int error;
    bool job_running;
} transfer;

static void transfer_free(transfer *t)
{
    close(t->fd);
    free(t->buf);
    free(t);
}

static void read_job(void *ud)
{
    transfer *t = ud;
    size_t want = t->size - t->offset < IO_CHUNK ? (size_t)(t->size - t->offset) : IO_CHUNK;
    ssize_t n;
    do
        n = pread(t->fd, t->buf, want, (off_t)t->offset);
    while (n < 0 && errno == EINTR);
    t->error = n < 0 ? errno : n == 0 ? EIO : 0;
    t->len = n > 0 ? (size_t)n : 0;
}

static void start_read(transfer *t);

static void read_done(void *ud)
{
    transfer *t = ud;
    t->job_running = false;
    if (!t->req || t->error) {
        if (t->req) { /* the file shrank: the client sees a short body */
            vn_log_warn("botapi: cannot read a file: %s", strerror(t->error));
            vn_http_request_set_data(t->req, NULL);
        }
        transfer_free(t);
        return;
    }
    bool last = t->offset + t->len >= t->size;
    vn_http_request *req = t->req;
    if (last)
        vn_http_request_set_data(req, NULL);
    if (vn_http_write(req, t->buf, t->len) < 0) {
        if (last)
            vn_http_request_set_data(req, t); /* read it again when there is room */
        return;
    }
    t->offset += t->len;
    if (last)
        transfer_free(t);
    else if (vn_http_write_room(req))
        start_read(t);
}

static void start_read(transfer *t)
{
    t->job_running = true;
    vn_work_queue(read_job, read_done, t);
}

void botapi_file_on_writable(vn_http_request *req)
{
    transfer *t = vn_http_request_data(req);
    if (t && !t->job_running)
        start_read(t);
}

void botapi_file_on_abort(vn_http_request *req)
{
    transfer *t = vn_http_request_data(req);
    if (!t)
        return;
    t->req = NULL;
    if (!t->job_running)
        transfer_free(t);
}

static void serve(vn_http_request *req, const char *hex, const char *name)
{
    char *path = vn_asprintf("%s/%s", files_dir, hex);
    char *type_path = vn_asprintf("%s.type", path);
    size_t type_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *type = fd >= 0 ? read_file(type_path, &type_len) : NULL;
    free(path);
    free(type_path);
    if (fd < 0 || fstat(fd, &st) < 0) {
        static const char text[] = "Not Found\n";
        if (fd >= 0)
            close(fd);
        free(type);
        vn_http_respond(req, 404, "text/plain", text, sizeof text - 1);
        return;
    }
    char *disposition = vn_asprintf("attachment; filename=\"%s\"", name);
    vn_http_response_header(req, "Content-Disposition", disposition);
    vn_http_response_header(req, "X-Content-Type-Options", "nosniff");
    vn_http_response_header(req, "Content-Security-Policy", "default-src 'none'; sandbox");
    free(disposition);
    vn_http_respond_begin(req, 200, type && type[0] ? type : "application/octet-stream",
                          (uint64_t)st.st_size);
    free(type);
    if (strcmp(vn_http_request_method(req), "HEAD") == 0 || st.st_size == 0) {
        close(fd);
        return;
    }
    transfer *t = vn_alloc(sizeof *t);
    t->req = req;
    t->fd = fd;
    t->size = (uint64_t)st.st_size;
    t->buf = vn_alloc(IO_CHUNK);
    vn_http_request_set_data(req, t);
    start_read(t);
}

void botapi_file_serve(vn_http_request *req, botapi_bot *bot, const char *file_path)
{
    static const char not_found[] =
        "{\"ok\":false,\"error_code\":404,\"description\":\"Not Found\"}";
    const char *id = strncmp(file_path, "files/", 6) == 0 ? file_path + 6 : NULL;
    const char *slash = id ? strchr(id, '/') : NULL;
    char *file_id = slash ? vn_strndup(id, (size_t)(slash - id)) : NULL;
    json_t *doc = file_id ? doc_get(bot, file_id) : NULL;
    const char *hex = json_string_value(json_object_get(doc, "hex"));
    if (hex && hex_valid(hex, strlen(hex)))
        serve(req, hex, json_string_value(json_object_get(doc, "name")));
    else
        vn_http_respond(req, 404, "application/json", not_found, sizeof not_found - 1);
    json_decref(doc);
    free(file_id);
}

void botapi_file_serve_public(vn_http_request *req)
{
    const char *rest = vn_http_request_path(req) + strlen("/botapi-files/");
    const char *slash = strchr(rest, '/');
    const char *method = vn_http_request_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        vn_http_response_header(req, "Allow", "GET, HEAD");
        vn_http_respond(req, 405, NULL, NULL, 0);
        return;
    }
    if (!slash || !hex_valid(rest, (size_t)(slash - rest))) {
        static const char text[] = "Not Found\n";
        vn_http_respond(req, 404, "text/plain", text, sizeof text - 1);
        return;
    }
    char hex[HEX_LEN + 1];
    memcpy(hex, rest, HEX_LEN);
    hex[HEX_LEN] = '\0';
    char *name = safe_name(slash + 1);
    serve(req, hex, name);
    free(name);
}
