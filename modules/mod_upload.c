/*
 * mod_upload.c - HTTP File Upload (XEP-0363, urn:xmpp:http:upload:0).
 *
 * The server host itself is the upload service. A slot request gets a PUT
 * URL and a GET URL under <base_url>/upload/<token>/<filename>. The PUT URL
 * carries an expiry and an HMAC-SHA256 over (path, size, content type,
 * expiry) with the server's secret; the slot itself (owner, size, content
 * type) is kept in the store under the token, so a PUT must match both.
 *
 * Files live in <data_dir>/upload/<token>. Bodies are written and files
 * read on worker threads, one job at a time per request, so the loop never
 * waits on the disk. A daily timer removes files older than expire_days.
 * A slot has at most one PUT in progress (a second one gets 409 Conflict)
 * and none once it is done, so a file never changes after its 201. Web
 * pages on other origins may PUT and GET (CORS is answered by the HTTP
 * server, limited by http.allowed_origins).
 *
 * Store layout (TOKEN_HOST, never a domain name, holds what is found by
 * token alone):
 *   (TOKEN_HOST, "", "upload", token)       slot record, see slot_record
 *   (TOKEN_HOST, "", "upload_secret", "hmac") the generated secret
 *   (host, user, "upload", token)           size of a slot handed out (quota)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>
#include <vestnik/http.h>
#include <vestnik/module.h>

#define NS_UPLOAD "urn:xmpp:http:upload:0"
#define NS_DATA_FORMS "jabber:x:data"
#define ROUTE_PREFIX "/upload/"
#define SLOTS_STORE "upload"
#define SECRET_STORE "upload_secret"
#define TOKEN_HOST "*upload"
#define TOKEN_BYTES 16
#define IO_CHUNK 65536
#define DAY_MS (24 * 3600 * 1000ULL)

typedef struct upload_state {
    vn_module *module;
    char *secret;
    char *dir;
    vn_timer *expiry_timer;
} upload_state;

static upload_state state;

/* ---- slot records ---- */

typedef struct slot_record {
    bool done;         /* uploaded */
    uint64_t size;     /* bytes */
    int64_t time_s;    /* pending: PUT URL expiry; done: upload time */
    char *host, *user; /* owner */
    char *content_type;
    char *filename; /* as it appears in the URL (percent-encoded) */
} slot_record;

static void slot_record_free(slot_record *r)
{
    free(r->host);
    free(r->user);
    free(r->content_type);
    free(r->filename);
}

static void slot_record_encode(const slot_record *r, vn_buf *out)
{
    vn_buf_printf(out, "%s\n%" PRIu64 "\n%" PRId64 "\n%s\n%s\n%s\n%s", r->done ? "done" : "pending",
                  r->size, r->time_s, r->host, r->user, r->content_type, r->filename);
}

static bool slot_record_decode(const char *data, size_t len, slot_record *r)
{
    char *copy = vn_strndup(data, len), *fields[7], *save = NULL;
    size_t n = 0;

    for (char *f = strtok_r(copy, "\n", &save); f && n < 7; f = strtok_r(NULL, "\n", &save))
        fields[n++] = f;
    if (n == 7) {
        r->done = strcmp(fields[0], "done") == 0;
        r->size = strtoull(fields[1], NULL, 10);
        r->time_s = strtoll(fields[2], NULL, 10);
        r->host = vn_strdup(fields[3]);
        r->user = vn_strdup(fields[4]);
        r->content_type = vn_strdup(fields[5]);
        r->filename = vn_strdup(fields[6]);
    }
    free(copy);
    return n == 7;
}

static bool slot_load(const char *token, slot_record *r)
{
    vn_buf value;
    bool found;

    vn_buf_init(&value);
    found = vn_store_get(vn_server_store(), TOKEN_HOST, "", SLOTS_STORE, token, &value) ==
                VN_STORE_OK &&
            slot_record_decode(value.data, value.len, r);
    vn_buf_free(&value);
    return found;
}

static int slot_save(const char *token, const slot_record *r)
{
    vn_buf value;
    int rc;

    vn_buf_init(&value);
    slot_record_encode(r, &value);
    rc = vn_store_put(vn_server_store(), TOKEN_HOST, "", SLOTS_STORE, token, value.data, value.len);
    vn_buf_free(&value);
    return rc;
}

static char *file_path(const char *token)
{
    return vn_asprintf("%s/%s", state.dir, token);
}

/* ---- signing ---- */

static void hex(const unsigned char *bytes, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", bytes[i]);
}

/* 64 hex digits of HMAC-SHA256(secret, path \n size \n type \n expiry). */
static void sign(const char *path, uint64_t size, const char *content_type, int64_t expires,
                 char out[65])
{
    unsigned char mac[32];
    unsigned int mac_len = sizeof mac;
    char *message = vn_asprintf("%s\n%" PRIu64 "\n%s\n%" PRId64, path, size, content_type, expires);

    HMAC(EVP_sha256(), state.secret, (int)strlen(state.secret), (const unsigned char *)message,
         strlen(message), mac, &mac_len);
    hex(mac, sizeof mac, out);
    free(message);
}

static char *random_hex(size_t bytes)
{
    unsigned char raw[32];
    char *out = vn_alloc(2 * bytes + 1);

    if (bytes > sizeof raw || RAND_bytes(raw, (int)bytes) != 1) {
        free(out);
        return NULL;
    }
    hex(raw, bytes, out);
    return out;
}

/* The configured secret, or the one kept in the store (made on first use). */
static char *load_secret(const vn_module *m)
{
    const char *configured = vn_module_config_string(m, "secret");
    vn_buf value;
    char *secret;

    if (configured && configured[0])
        return vn_strdup(configured);
    vn_buf_init(&value);
    if (vn_store_get(vn_server_store(), TOKEN_HOST, "", SECRET_STORE, "hmac", &value) ==
        VN_STORE_OK) {
        secret = vn_buf_steal(&value, NULL);
        return secret;
    }
    vn_buf_free(&value);
    secret = random_hex(32);
    if (secret && vn_store_put(vn_server_store(), TOKEN_HOST, "", SECRET_STORE, "hmac", secret,
                               strlen(secret)) != VN_STORE_OK) {
        free(secret);
        return NULL;
    }
    return secret;
}

/* ---- slot requests ---- */

static void percent_encode(const char *s, vn_buf *out)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            vn_buf_append(out, p, 1);
        else
            vn_buf_printf(out, "%%%02X", *p);
    }
}

static bool printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static char *base_url(const char *host)
{
    const char *configured = vn_module_config_string(state.module, "base_url");
    int port;

    if (configured && configured[0])
        return vn_asprintf("%s", configured);
    port = vn_http_listener_port(true);
    if (port)
        return vn_asprintf("https://%s:%d", host, port);
    port = vn_http_listener_port(false);
    return port ? vn_asprintf("http://%s:%d", host, port) : NULL;
}

typedef struct usage_sum {
    uint64_t bytes;
} usage_sum;

static bool add_usage(const char *key, const void *value, size_t len, void *ud)
{
    usage_sum *sum = ud;
    char *text = vn_strndup(value, len);

    sum->bytes += strtoull(text, NULL, 10);
    free(text);
    return true;
}

static uint64_t usage_of(const char *host, const char *user)
{
    usage_sum sum = {0};

    vn_store_foreach(vn_server_store(), host, user, SLOTS_STORE, add_usage, &sum);
    return sum.bytes;
}

static void reply_file_too_large(const vn_stanza *iq, long long max)
{
    vn_stanza *reply = vn_stanza_error_reply(iq, "modify", "not-acceptable", "File too large");
    vn_stanza *error = reply ? vn_stanza_child(reply, "error", NULL) : NULL;
    char text[32];

    if (!error) {
        vn_stanza_free(reply);
        return;
    }
    snprintf(text, sizeof text, "%lld", max);
    vn_stanza *too_large = vn_stanza_add_child(error, "file-too-large", NS_UPLOAD);
    vn_stanza_add_text_child(too_large, "max-file-size", NS_UPLOAD, text);
    vn_route(reply);
}

static vn_stanza *slot_reply(const vn_stanza *iq, const char *url, const char *sig, int64_t expires,
                             const char *get_url)
{
    vn_stanza *reply = vn_stanza_iq_result(iq);
    vn_stanza *slot = vn_stanza_add_child(reply, "slot", NS_UPLOAD);
    vn_stanza *put = vn_stanza_add_child(slot, "put", NS_UPLOAD);
    char *put_url = vn_asprintf("%s?expires=%" PRId64 "&sig=%s", url, expires, sig);

    vn_stanza_set_attr(put, "url", put_url);
    vn_stanza_set_attr(vn_stanza_add_child(slot, "get", NS_UPLOAD), "url", get_url);
    free(put_url);
    return reply;
}

static vn_hook_result request_slot(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    const vn_stanza *request = vn_stanza_child(ev->stanza, "request", NS_UPLOAD);
    const char *filename = request ? vn_stanza_attr(request, "filename") : NULL;
    const char *size_text = request ? vn_stanza_attr(request, "size") : NULL;
    const char *content_type = request ? vn_stanza_attr(request, "content-type") : NULL;
    long long max = vn_module_config_int(m, "max_file_size");
    char *end = NULL;
    unsigned long long size = size_text ? strtoull(size_text, &end, 10) : 0;

    if (!ev->from || !ev->from->local || !vn_is_local_host(ev->from->domain)) {
        vn_route_error(ev->stanza, "cancel", "not-allowed", "Only local accounts may upload");
        return VN_HANDLED;
    }
    if (!filename || !filename[0] || strchr(filename, '/') || !printable(filename) || !size_text ||
        !end || *end || size == 0 || (content_type && !printable(content_type))) {
        vn_route_error(ev->stanza, "modify", "bad-request", "Need a filename and a size");
        return VN_HANDLED;
    }
    if (size > (unsigned long long)max) {
        reply_file_too_large(ev->stanza, max);
        return VN_HANDLED;
    }
    if (usage_of(ev->from->domain, ev->from->local) + size >
        (unsigned long long)vn_module_config_int(m, "quota_bytes")) {
        vn_route_error(ev->stanza, "wait", "resource-constraint", "Upload quota exceeded");
        return VN_HANDLED;
    }

    char *base = base_url(ev->from->domain);
    char *token = random_hex(TOKEN_BYTES);
    vn_buf path;
    vn_buf_init(&path);
    vn_buf_printf(&path, ROUTE_PREFIX "%s/", token ? token : "");
    percent_encode(filename, &path);
    slot_record r = {
        .size = size,
        .time_s = vn_now_us() / 1000000 + vn_module_config_int(m, "slot_timeout"),
        .host = (char *)ev->from->domain,
        .user = (char *)ev->from->local,
        .content_type =
            (char *)(content_type && content_type[0] ? content_type : "application/octet-stream"),
        .filename = strrchr(path.data, '/') + 1,
    };
    char size_text_stored[32];
    snprintf(size_text_stored, sizeof size_text_stored, "%llu", size);
    /* The slot counts against the quota from now on, uploaded or not (until
     * it expires), so many slots cannot outrun it. */
    if (!base || !token || slot_save(token, &r) != VN_STORE_OK ||
        vn_store_put(vn_server_store(), r.host, r.user, SLOTS_STORE, token, size_text_stored,
                     strlen(size_text_stored)) != VN_STORE_OK) {
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
    } else {
        char sig[65];
        char *url = vn_asprintf("%s%s", base, path.data);
        sign(path.data, r.size, r.content_type, r.time_s, sig);
        vn_route_durable(slot_reply(ev->stanza, url, sig, r.time_s, url));
        free(url);
    }
    vn_buf_free(&path);
    free(token);
    free(base);
    return VN_HANDLED;
}

/* The max-file-size form (XEP-0363 §3) in the host's disco#info. */
static vn_hook_result add_disco_form(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    char max[32];

    snprintf(max, sizeof max, "%lld", vn_module_config_int(m, "max_file_size"));
    vn_stanza *form = vn_stanza_add_child(ev->data, "x", NS_DATA_FORMS);
    vn_stanza_set_attr(form, "type", "result");
    vn_stanza *field = vn_stanza_add_child(form, "field", NS_DATA_FORMS);
    vn_stanza_set_attr(field, "var", "FORM_TYPE");
    vn_stanza_set_attr(field, "type", "hidden");
    vn_stanza_add_text_child(field, "value", NS_DATA_FORMS, NS_UPLOAD);
    field = vn_stanza_add_child(form, "field", NS_DATA_FORMS);
    vn_stanza_set_attr(field, "var", "max-file-size");
    vn_stanza_add_text_child(field, "value", NS_DATA_FORMS, max);
    return VN_PASS;
}

/* ---- transfers: one per HTTP request, with at most one disk job ---- */

typedef struct transfer {
    vn_http_request *req; /* NULL once the request is gone */
    char *token;
    slot_record record;
    int fd;
    bool job_running;
    bool body_complete; /* PUT: the whole body is in */
    bool sync_job;      /* PUT: the running job syncs the finished file */
    int error;          /* errno of a failed disk job, or 0 */
    vn_buf pending;     /* PUT: received, not yet written */
    vn_buf chunk;       /* PUT: the running job's data */
    char *read_buf;     /* GET: IO_CHUNK bytes */
    size_t read_len;
    uint64_t offset; /* GET: bytes read so far */
    bool writer;     /* PUT: in `writers` */
    UT_hash_handle hh;
} transfer;

static transfer *writers; /* PUTs in progress, by token: one per slot */

static void transfer_free(transfer *t)
{
    if (t->writer)
        HASH_DEL(writers, t);
    if (t->fd >= 0)
        close(t->fd);
    slot_record_free(&t->record);
    vn_buf_free(&t->pending);
    vn_buf_free(&t->chunk);
    free(t->read_buf);
    free(t->token);
    free(t);
}

static void unlink_part(const char *token)
{
    char *part = vn_asprintf("%s/%s.part", state.dir, token);

    unlink(part);
    free(part);
}

/* The request is gone or answered: the transfer ends now, or when its
 * running job is done. */
static void transfer_drop(transfer *t)
{
    if (t->req)
        vn_http_request_set_data(t->req, NULL);
    t->req = NULL;
    if (t->job_running)
        return;
    if (!t->record.done)
        unlink_part(t->token);
    transfer_free(t);
}

static transfer *transfer_new(vn_http_request *req, const char *token, slot_record *r)
{
    transfer *t = vn_alloc(sizeof *t);

    t->req = req;
    t->token = vn_strdup(token);
    t->record = *r;
    t->fd = -1;
    vn_buf_init(&t->pending);
    vn_buf_init(&t->chunk);
    vn_http_request_set_data(req, t);
    return t;
}

/* "/upload/<token>/<name>": token and name point into path; false if not. */
static bool split_path(const char *path, char *token, size_t token_size, const char **name)
{
    const char *start = path + strlen(ROUTE_PREFIX);
    const char *slash = strchr(start, '/');

    if (!slash || (size_t)(slash - start) != 2 * TOKEN_BYTES ||
        (size_t)(slash - start) >= token_size)
        return false;
    memcpy(token, start, (size_t)(slash - start));
    token[slash - start] = '\0';
    for (const char *p = token; *p; p++)
        if (!strchr("0123456789abcdef", *p))
            return false;
    *name = slash + 1;
    return true;
}

static void respond_text(vn_http_request *req, int status, const char *text)
{
    vn_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* Query parameter value (not decoded; ours are digits and hex), or NULL. */
static char *query_param(const char *query, const char *name)
{
    size_t name_len = strlen(name);

    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=')
            return vn_strndup(p + name_len + 1, len - name_len - 1);
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* The PUT is for this slot, unexpired, with the signed size and type. */
static int check_put(vn_http_request *req, const char *token, const slot_record *r)
{
    const char *type = vn_http_request_header(req, "Content-Type");
    int64_t length = vn_http_request_content_length(req);
    char *expires_text = query_param(vn_http_request_query(req), "expires");
    char *sig = query_param(vn_http_request_query(req), "sig");
    int64_t expires = expires_text ? strtoll(expires_text, NULL, 10) : 0;
    char expected[65];
    int status = 0;

    if (r->done)
        status = 409;
    else if (length < 0)
        status = 411;
    else if ((uint64_t)length != r->size || !type || strcmp(type, r->content_type) != 0)
        status = 400;
    else if (!sig || strlen(sig) != 64 || expires != r->time_s || expires < vn_now_us() / 1000000)
        status = 403;
    if (!status) {
        sign(vn_http_request_path(req), (uint64_t)length, type, expires, expected);
        if (CRYPTO_memcmp(expected, sig, 64) != 0)
            status = 403;
    }
    free(expires_text);
    free(sig);
    return status;
}

static void start_write_job(transfer *t);

static void write_job(void *ud)
{
    transfer *t = ud;

    if (t->fd < 0) {
        char *part = vn_asprintf("%s/%s.part", state.dir, t->token);
        t->fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        free(part);
    }
    if (t->fd < 0) {
        t->error = errno;
        return;
    }
    for (size_t done = 0; done < t->chunk.len;) {
        ssize_t n = write(t->fd, t->chunk.data + done, t->chunk.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            t->error = n < 0 ? errno : ENOSPC;
            return;
        }
        done += (size_t)n;
    }
    if (t->sync_job && fsync(t->fd) != 0)
        t->error = errno;
}

/* The file is complete on disk: move it in place and record it. */
static void finish_put(transfer *t)
{
    char *part = vn_asprintf("%s/%s.part", state.dir, t->token);
    char *final = file_path(t->token);
    char size[32];

    t->record.done = true;
    t->record.time_s = vn_now_us() / 1000000;
    snprintf(size, sizeof size, "%" PRIu64, t->record.size);
    close(t->fd);
    t->fd = -1;
    if (rename(part, final) != 0 || slot_save(t->token, &t->record) != VN_STORE_OK ||
        vn_store_put(vn_server_store(), t->record.host, t->record.user, SLOTS_STORE, t->token, size,
                     strlen(size)) != VN_STORE_OK) {
        unlink(part);
        respond_text(t->req, 500, "cannot store the file\n");
    } else {
        vn_log_info("upload: %s@%s stored %s (%s bytes)", t->record.user, t->record.host, t->token,
                    size);
        respond_text(t->req, 201, "created\n");
    }
    free(part);
    free(final);
}

static void write_done(void *ud)
{
    transfer *t = ud;

    t->job_running = false;
    vn_buf_reset(&t->chunk);
    if (!t->req || t->error) {
        vn_http_request *req = t->req;
        if (req)
            vn_log_warn("upload: cannot write %s: %s", t->token, strerror(t->error));
        transfer_drop(t);
        if (req)
            respond_text(req, 500, "cannot store the file\n");
        return;
    }
    if (t->sync_job) {
        vn_http_request_set_data(t->req, NULL);
        finish_put(t);
        transfer_free(t);
        return;
    }
    if (t->pending.len || t->body_complete)
        start_write_job(t);
}

/* Hands what is pending to a worker; with nothing pending after the whole
 * body, the job syncs the file instead. */
static void start_write_job(transfer *t)
{
    vn_buf swap = t->chunk;

    t->chunk = t->pending;
    t->pending = swap;
    t->sync_job = t->body_complete && t->chunk.len == 0;
    t->job_running = true;
    vn_work_queue(write_job, write_done, t);
}

static void start_read_job(transfer *t);

static void read_job(void *ud)
{
    transfer *t = ud;
    size_t want = t->record.size - t->offset < IO_CHUNK ? t->record.size - t->offset : IO_CHUNK;
    ssize_t n;

    do
        n = pread(t->fd, t->read_buf, want, (off_t)t->offset);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        t->error = n < 0 ? errno : EIO;
    else
        t->read_len = (size_t)n;
}

static void read_done(void *ud)
{
    transfer *t = ud;

    t->job_running = false;
    if (!t->req || t->error) {
        /* The file shrank under us: the client sees a short body. */
        if (t->req)
            vn_log_warn("upload: cannot read %s: %s", t->token, strerror(t->error));
        transfer_drop(t);
        return;
    }
    t->offset += t->read_len;
    bool last = t->offset >= t->record.size;
    vn_http_request *req = t->req;
    if (last)
        vn_http_request_set_data(req, NULL);
    if (vn_http_write(req, t->read_buf, t->read_len) < 0) {
        t->offset -= t->read_len; /* read it again when there is room */
        if (last)
            vn_http_request_set_data(req, t);
        return;
    }
    if (last)
        transfer_free(t);
    else if (vn_http_write_room(req))
        start_read_job(t);
}

static void start_read_job(transfer *t)
{
    t->job_running = true;
    vn_work_queue(read_job, read_done, t);
}

/* ---- HTTP handlers ---- */

static void serve_get(vn_http_request *req, const char *token, slot_record *r)
{
    char *path = file_path(token);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool inline_type = strncmp(r->content_type, "image/", 6) == 0;

    free(path);
    if (fd < 0) {
        slot_record_free(r);
        respond_text(req, 404, "not found\n");
        return;
    }
    vn_http_response_header(req, "X-Content-Type-Options", "nosniff");
    vn_http_response_header(req, "Cache-Control", "public, max-age=31536000, immutable");
    vn_http_response_header(req, "Content-Security-Policy", "default-src 'none'; sandbox");
    if (!inline_type)
        vn_http_response_header(req, "Content-Disposition", "attachment");
    if (strcmp(vn_http_request_method(req), "HEAD") == 0) {
        close(fd);
        vn_http_respond_begin(req, 200, r->content_type, r->size);
        slot_record_free(r);
        return;
    }
    transfer *t = transfer_new(req, token, r);
    t->fd = fd;
    t->read_buf = vn_alloc(IO_CHUNK);
    vn_http_respond_begin(req, 200, r->content_type, r->size);
    start_read_job(t);
}

static void on_upload_headers(vn_http_request *req, void *ud)
{
    const char *method = vn_http_request_method(req);
    char token[2 * TOKEN_BYTES + 1];
    const char *name;
    slot_record r = {0};
    int status;

    if (strcmp(method, "PUT") != 0)
        return; /* GET and HEAD are answered once complete */
    if (!split_path(vn_http_request_path(req), token, sizeof token, &name) ||
        !slot_load(token, &r) || strcmp(name, r.filename) != 0) {
        slot_record_free(&r);
        respond_text(req, 404, "no such slot\n");
        return;
    }
    status = check_put(req, token, &r);
    if (status) {
        slot_record_free(&r);
        respond_text(req, status, status == 403 ? "bad or expired signature\n" : "slot mismatch\n");
        return;
    }
    transfer *t;
    HASH_FIND_STR(writers, token, t);
    if (t) {
        slot_record_free(&r);
        respond_text(req, 409, "another upload to this slot is in progress\n");
        return;
    }
    t = transfer_new(req, token, &r);
    t->writer = true;
    HASH_ADD_KEYPTR(hh, writers, t->token, strlen(t->token), t);
}

static void on_upload_body(vn_http_request *req, const char *data, size_t len, void *ud)
{
    transfer *t = vn_http_request_data(req);

    if (!t)
        return; /* GET or HEAD with a body: ignored */
    /* No more than the signed Content-Length arrives: http_parser stops there. */
    vn_buf_append(&t->pending, data, len);
    if (!t->job_running && t->pending.len >= IO_CHUNK)
        start_write_job(t);
}

static void on_upload_request(vn_http_request *req, void *ud)
{
    const char *method = vn_http_request_method(req);
    transfer *t = vn_http_request_data(req);
    char token[2 * TOKEN_BYTES + 1];
    const char *name;
    slot_record r = {0};

    if (t) { /* a PUT whose body is all in */
        t->body_complete = true;
        if (!t->job_running)
            start_write_job(t);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        vn_http_response_header(req, "Allow", "GET, HEAD, PUT");
        respond_text(req, 405, "method not allowed\n");
        return;
    }
    if (!split_path(vn_http_request_path(req), token, sizeof token, &name) ||
        !slot_load(token, &r) || !r.done || strcmp(name, r.filename) != 0) {
        slot_record_free(&r);
        respond_text(req, 404, "not found\n");
        return;
    }
    serve_get(req, token, &r);
}

static void on_upload_writable(vn_http_request *req, void *ud)
{
    transfer *t = vn_http_request_data(req);

    if (t && !t->job_running)
        start_read_job(t);
}

static void on_upload_abort(vn_http_request *req, void *ud)
{
    transfer *t = vn_http_request_data(req);

    if (t)
        transfer_drop(t);
}

static const vn_http_cors upload_cors = {.methods = "GET, HEAD, PUT", .headers = "Content-Type"};

static const vn_http_handler upload_handler = {
    .cors = &upload_cors,
    .on_headers = on_upload_headers,
    .on_body = on_upload_body,
    .on_request = on_upload_request,
    .on_writable = on_upload_writable,
    .on_abort = on_upload_abort,
};

/* ---- expiry ---- */

typedef struct expiry_scan {
    int64_t now_s;
    int64_t max_age_s;
    vn_buf tokens; /* NUL-separated, removed after the walk */
} expiry_scan;

static bool check_expiry(const char *key, const void *value, size_t len, void *ud)
{
    expiry_scan *scan = ud;
    slot_record r = {0};

    if (slot_record_decode(value, len, &r) &&
        (r.done ? r.time_s + scan->max_age_s < scan->now_s : r.time_s + 86400 < scan->now_s))
        vn_buf_append(&scan->tokens, key, strlen(key) + 1);
    slot_record_free(&r);
    return true;
}

static void remove_upload(const char *token)
{
    slot_record r = {0};
    char *path = file_path(token);

    if (slot_load(token, &r)) /* the quota record, finished or not */
        vn_store_delete(vn_server_store(), r.host, r.user, SLOTS_STORE, token);
    unlink(path);
    vn_store_delete(vn_server_store(), TOKEN_HOST, "", SLOTS_STORE, token);
    slot_record_free(&r);
    free(path);
}

static void expire_uploads(vn_timer *timer, void *ud)
{
    const vn_module *m = ud;
    expiry_scan scan = {.now_s = vn_now_us() / 1000000,
                        .max_age_s = vn_module_config_int(m, "expire_days") * 86400};
    size_t removed = 0;

    vn_buf_init(&scan.tokens);
    vn_store_foreach(vn_server_store(), TOKEN_HOST, "", SLOTS_STORE, check_expiry, &scan);
    for (size_t off = 0; off < scan.tokens.len; off += strlen(scan.tokens.data + off) + 1) {
        remove_upload(scan.tokens.data + off);
        removed++;
    }
    if (removed)
        vn_log_info("upload: removed %zu expired file(s) or slot(s)", removed);
    vn_buf_free(&scan.tokens);
}

/* ---- module ---- */

static const vn_config_key upload_keys[] = {
    {.name = "base_url", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "secret", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "max_file_size",
     .type = VN_CONF_INT,
     .default_value = "104857600",
     .min = 1,
     .max = 1LL << 40},
    {.name = "quota_bytes",
     .type = VN_CONF_INT,
     .default_value = "1073741824",
     .min = 1,
     .max = 1LL << 50},
    {.name = "expire_days", .type = VN_CONF_INT, .default_value = "30", .min = 1, .max = 36500},
    {.name = "slot_timeout", .type = VN_CONF_INT, .default_value = "300", .min = 10, .max = 86400},
    {.name = NULL},
};

static int upload_load(vn_module *m)
{
    state.module = m;
    state.dir = vn_asprintf("%s/upload", vn_server_data_dir());
    if (mkdir(state.dir, 0750) != 0 && errno != EEXIST) {
        vn_log_error("upload: cannot create %s: %s", state.dir, strerror(errno));
        free(state.dir);
        return -1;
    }
    state.secret = load_secret(m);
    if (!state.secret) {
        vn_log_error("upload: cannot make or keep the signing secret");
        free(state.dir);
        return -1;
    }
    if (vn_http_route_add(ROUTE_PREFIX, &upload_handler, m) < 0) {
        vn_log_error("upload: the HTTP path " ROUTE_PREFIX " is taken");
        free(state.secret);
        free(state.dir);
        return -1;
    }
    vn_hook_add("iq-get/host/" NS_UPLOAD, 0, request_slot, m);
    vn_hook_add("disco/host-info", 0, add_disco_form, m);
    vn_disco_add_feature(NS_UPLOAD);
    vn_disco_add_identity("store", "file", "HTTP File Upload");
    state.expiry_timer = vn_timer_start(60000, DAY_MS, expire_uploads, m);
    return 0;
}

static void upload_unload(vn_module *m)
{
    vn_timer_stop(state.expiry_timer);
    vn_disco_remove_identity("store", "file", "HTTP File Upload");
    vn_disco_remove_feature(NS_UPLOAD);
    vn_hook_remove("disco/host-info", add_disco_form, m);
    vn_hook_remove("iq-get/host/" NS_UPLOAD, request_slot, m);
    vn_http_route_remove(ROUTE_PREFIX);
    free(state.secret);
    free(state.dir);
    memset(&state, 0, sizeof state);
}

VN_MODULE("upload", "HTTP File Upload (XEP-0363)", upload_keys, upload_load, upload_unload, NULL);
