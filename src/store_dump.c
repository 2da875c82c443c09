/*
 * store_dump.c - a whole store as one XML document and back, between any
 * two backends: `vestnikctl export FILE` on a node's store, `vestnikctl
 * import FILE` into another (LMDB to PostgreSQL when a single node moves
 * to a cluster, or back).
 *
 * The document is the store's own shape, not a protocol's: every document
 * and every archive item, byte for byte (values in base64), with the ids
 * and id counters, so that MAM ids clients hold stay valid and an id is
 * never handed out twice. A name that XML attributes cannot carry as it
 * is (a control character) goes in base64 as NAME-b64.
 *
 *   <store-dump xmlns='urn:xmpp:vestnik:store-dump:0'>
 *     <doc host='h' user='u' store='roster' key='bob@x'>base64</doc>
 *     <archive host='h' user='u' name='mam' last-id='1733350000000000'>
 *       <item id='1733349999999999' ts='1733349999999999' with='bob@x/r'>base64</item>
 *     </archive>
 *   </store-dump>
 *
 * Import writes in the store's synchronous mode, IMPORT_BATCH writes per
 * commit, after the backend's own checks; it refuses an archive that
 * already has ids in the target (the ids could collide) and overwrites
 * documents, so a failed import can be run again into a fresh store.
 */
#include <expat.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "vestnik/log.h"

#define DUMP_NS "urn:xmpp:vestnik:store-dump:0"
#define IMPORT_BATCH 500

/* ---- export ---- */

typedef struct exporter {
    FILE *out;
    vn_buf line;
    bool in_archive;
    bool failed;
} exporter;

static void append_base64(vn_buf *b, const void *data, size_t len)
{
    unsigned char chunk[3 * 1024];
    unsigned char text[4 * 1024 + 1];

    for (size_t off = 0; off < len; off += sizeof chunk) {
        size_t n = len - off < sizeof chunk ? len - off : sizeof chunk;
        memcpy(chunk, (const unsigned char *)data + off, n);
        int m = EVP_EncodeBlock(text, chunk, (int)n);
        vn_buf_append(b, text, (size_t)m);
    }
}

static void attr(vn_buf *b, const char *name, const char *value)
{
    bool plain = true;
    for (const unsigned char *p = (const unsigned char *)value; *p && plain; p++)
        plain = *p >= 0x20 && *p != 0x7f;
    if (plain) {
        vn_buf_printf(b, " %s='", name);
        vn_buf_append_xml_escaped(b, value, strlen(value));
    } else {
        vn_buf_printf(b, " %s-b64='", name);
        append_base64(b, value, strlen(value));
    }
    vn_buf_append_str(b, "'");
}

static bool put_line(exporter *e)
{
    vn_buf_append_str(&e->line, "\n");
    if (fwrite(e->line.data, 1, e->line.len, e->out) != e->line.len)
        e->failed = true;
    vn_buf_reset(&e->line);
    return !e->failed;
}

static bool export_doc(void *ud, const char *host, const char *user, const char *store,
                       const char *key, const void *value, size_t len)
{
    exporter *e = ud;

    vn_buf_append_str(&e->line, "<doc");
    attr(&e->line, "host", host);
    attr(&e->line, "user", user);
    attr(&e->line, "store", store);
    attr(&e->line, "key", key);
    vn_buf_append_str(&e->line, ">");
    append_base64(&e->line, value, len);
    vn_buf_append_str(&e->line, "</doc>");
    return put_line(e);
}

static bool export_archive(void *ud, const char *host, const char *user, const char *archive,
                           uint64_t last_id)
{
    exporter *e = ud;

    if (e->in_archive) {
        vn_buf_append_str(&e->line, "</archive>");
        if (!put_line(e))
            return false;
    }
    e->in_archive = true;
    vn_buf_append_str(&e->line, "<archive");
    attr(&e->line, "host", host);
    attr(&e->line, "user", user);
    attr(&e->line, "name", archive);
    vn_buf_printf(&e->line, " last-id='%" PRIu64 "'>", last_id);
    return put_line(e);
}

static bool export_item(void *ud, const vn_archive_item *item)
{
    exporter *e = ud;

    vn_buf_printf(&e->line, "<item id='%" PRIu64 "' ts='%" PRId64 "'", item->id, item->ts_us);
    attr(&e->line, "with", item->with);
    vn_buf_append_str(&e->line, ">");
    append_base64(&e->line, item->data, item->len);
    vn_buf_append_str(&e->line, "</item>");
    return put_line(e);
}

int vn_store_export(vn_store *s, FILE *out, vn_buf *err)
{
    static const vn_store_dump_cbs cbs = {
        .doc = export_doc, .archive = export_archive, .item = export_item};
    exporter e = {.out = out};

    vn_buf_init(&e.line);
    vn_buf_append_str(&e.line,
                      "<?xml version='1.0' encoding='UTF-8'?>\n<store-dump xmlns='" DUMP_NS "'>");
    put_line(&e);
    int rc = e.failed ? VN_STORE_ERROR : s->ops->dump(s->impl, &cbs, &e);
    if (rc == VN_STORE_OK && !e.failed) {
        vn_buf_append_str(&e.line, e.in_archive ? "</archive>\n</store-dump>" : "</store-dump>");
        put_line(&e);
    }
    vn_buf_free(&e.line);
    if (e.failed || fflush(out) != 0) {
        vn_buf_append_str(err, "cannot write the dump");
        return -1;
    }
    if (rc != VN_STORE_OK) {
        vn_buf_append_str(err, "cannot read the store (see the log above)");
        return -1;
    }
    return 0;
}

/* ---- import ---- */

typedef struct importer {
    vn_store *s;
    XML_Parser parser;
    vn_buf *err;
    vn_store_op *head, *tail;
    size_t queued;
    int depth;
    vn_store_op *current; /* the doc or item being read */
    vn_buf text;
    char *host, *user, *archive; /* of the open <archive> */
    uint64_t last_id;
    size_t docs, items, archives;
} importer;

/* Ends the import with what is wrong (the first reason counts). */
static void stop(importer *im, const char *problem, const char *name)
{
    if (!im->err->len)
        vn_buf_printf(im->err, "%s%s", problem, name ? name : "");
    XML_StopParser(im->parser, XML_FALSE);
}

/* The base64 text decoded into a new buffer; false if it is not base64. */
static bool decode_base64(const vn_buf *text, void **out, size_t *len)
{
    size_t n = text->len;
    unsigned char *bytes = vn_alloc(n / 4 * 3 + 3);

    if (n % 4) {
        free(bytes);
        return false;
    }
    int m = n ? EVP_DecodeBlock(bytes, (const unsigned char *)text->data, (int)n) : 0;
    if (m < 0) {
        free(bytes);
        return false;
    }
    for (size_t i = n; i > 0 && text->data[i - 1] == '='; i--)
        m--;
    *out = bytes;
    *len = (size_t)m;
    return true;
}

/* An attribute (plain, or NAME-b64), a new string; NULL if absent. */
static char *attr_value(const XML_Char **attrs, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; attrs[i]; i += 2) {
        if (strcmp(attrs[i], name) == 0)
            return vn_strdup(attrs[i + 1]);
        if (strncmp(attrs[i], name, len) == 0 && strcmp(attrs[i] + len, "-b64") == 0) {
            vn_buf text;
            void *bytes = NULL;
            size_t n = 0;
            char *value = NULL;
            vn_buf_init(&text);
            vn_buf_append_str(&text, attrs[i + 1]);
            if (decode_base64(&text, &bytes, &n) && !memchr(bytes, '\0', n))
                value = vn_strndup(bytes, n);
            vn_buf_free(&text);
            free(bytes);
            return value;
        }
    }
    return NULL;
}

static bool attr_u64(const XML_Char **attrs, const char *name, uint64_t *out)
{
    char *text = attr_value(attrs, name), *end;
    bool ok = text && text[0] >= '0' && text[0] <= '9';
    if (ok) {
        *out = strtoull(text, &end, 10);
        ok = *end == '\0';
    }
    free(text);
    return ok;
}

static bool flush_ops(importer *im)
{
    int rc = im->head ? im->s->ops->apply(im->s->impl, im->head) : VN_STORE_OK;

    while (im->head) {
        vn_store_op *next = im->head->next;
        vn_store_op_free(im->head);
        im->head = next;
    }
    im->tail = NULL;
    im->queued = 0;
    if (rc != VN_STORE_OK)
        stop(im, "the store refused a batch of the import (see the log above)", NULL);
    return rc == VN_STORE_OK;
}

static void queue(importer *im, vn_store_op *op)
{
    if (im->s->ops->check(im->s->impl, op) != VN_STORE_OK) {
        vn_store_op_free(op);
        stop(im, "the store refused an entry (see the log above)", NULL);
        return;
    }
    if (im->tail)
        im->tail->next = op;
    else
        im->head = op;
    im->tail = op;
    if (++im->queued >= IMPORT_BATCH)
        flush_ops(im);
}

static void start_archive(importer *im, const XML_Char **attrs)
{
    uint64_t last = 1;

    im->host = attr_value(attrs, "host");
    im->user = attr_value(attrs, "user");
    im->archive = attr_value(attrs, "name");
    if (!im->host || !im->user || !im->archive || !im->host[0] || !im->archive[0] ||
        !attr_u64(attrs, "last-id", &im->last_id)) {
        stop(im, "an <archive> without host, user, name or last-id", NULL);
        return;
    }
    if (!flush_ops(im))
        return;
    if (im->s->ops->archive_last_id(im->s->impl, im->host, im->user, im->archive, &last) !=
            VN_STORE_OK ||
        last != 0)
        stop(im, "this archive is not empty in the target store: ", im->archive);
    im->archives++;
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    importer *im = ud;
    int depth = im->depth++;

    if (depth == 0) {
        if (strcmp(name, DUMP_NS "|store-dump") != 0)
            stop(im, "not a vestnik store dump (no <store-dump/>)", NULL);
        return;
    }
    vn_buf_reset(&im->text);
    if (depth == 1 && strcmp(name, DUMP_NS "|doc") == 0) {
        vn_store_op *op = vn_alloc(sizeof *op);
        op->kind = VN_OP_PUT;
        op->host = attr_value(attrs, "host");
        op->user = attr_value(attrs, "user");
        op->name = attr_value(attrs, "store");
        op->key = attr_value(attrs, "key");
        im->current = op;
        if (!op->host || !op->user || !op->name || !op->key || !op->host[0] || !op->name[0])
            stop(im, "a <doc> without host, user, store or key", NULL);
    } else if (depth == 1 && strcmp(name, DUMP_NS "|archive") == 0) {
        start_archive(im, attrs);
    } else if (depth == 2 && im->archive && strcmp(name, DUMP_NS "|item") == 0) {
        vn_store_op *op = vn_alloc(sizeof *op);
        op->kind = VN_OP_APPEND;
        op->host = vn_strdup(im->host);
        op->user = vn_strdup(im->user);
        op->name = vn_strdup(im->archive);
        op->key = attr_value(attrs, "with");
        im->current = op;
        char *ts_text = attr_value(attrs, "ts");
        bool ts_ok = ts_text && (ts_text[0] == '-' || (ts_text[0] >= '0' && ts_text[0] <= '9'));
        op->ts_us = ts_ok ? strtoll(ts_text, NULL, 10) : 0;
        free(ts_text);
        if (!op->key || !attr_u64(attrs, "id", &op->id) || op->id == 0 || !ts_ok)
            stop(im, "an <item> without id, ts or with", NULL);
    } else {
        stop(im, "unexpected element in the dump: ", name);
    }
}

static void on_end(void *ud, const XML_Char *name)
{
    importer *im = ud;
    int depth = --im->depth;
    vn_store_op *op = im->current;

    (void)name;
    if (op && (depth == 1 || depth == 2)) {
        im->current = NULL;
        if (!decode_base64(&im->text, &op->data, &op->len)) {
            vn_store_op_free(op);
            stop(im, "a value that is not base64", NULL);
            return;
        }
        if (op->kind == VN_OP_PUT)
            im->docs++;
        else
            im->items++;
        queue(im, op);
    } else if (depth == 1 && im->archive) {
        vn_store_op *raise = vn_alloc(sizeof *raise);
        raise->kind = VN_OP_RAISE_LAST_ID;
        raise->host = im->host;
        raise->user = im->user;
        raise->name = im->archive;
        raise->id = im->last_id;
        im->host = im->user = im->archive = NULL;
        queue(im, raise);
    }
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    importer *im = ud;

    if (!im->current)
        return;
    for (int i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            vn_buf_append(&im->text, s + i, 1);
}

int vn_store_import(vn_store *s, FILE *in, vn_buf *err)
{
    importer im = {.s = s, .err = err, .parser = XML_ParserCreateNS("UTF-8", '|')};
    char chunk[65536];
    bool done = false;

    vn_buf_init(&im.text);
    XML_SetUserData(im.parser, &im);
    XML_SetElementHandler(im.parser, on_start, on_end);
    XML_SetCharacterDataHandler(im.parser, on_text);
    while (!done && !err->len) {
        size_t n = fread(chunk, 1, sizeof chunk, in);
        done = n < sizeof chunk;
        if (XML_Parse(im.parser, chunk, (int)n, done) == XML_STATUS_ERROR && !err->len)
            vn_buf_printf(err, "line %lu: %s", (unsigned long)XML_GetCurrentLineNumber(im.parser),
                          XML_ErrorString(XML_GetErrorCode(im.parser)));
    }
    if (!err->len && ferror(in))
        vn_buf_append_str(err, "cannot read the dump");
    if (!err->len)
        flush_ops(&im);
    if (im.current)
        vn_store_op_free(im.current);
    while (im.head) {
        vn_store_op *next = im.head->next;
        vn_store_op_free(im.head);
        im.head = next;
    }
    free(im.host);
    free(im.user);
    free(im.archive);
    vn_buf_free(&im.text);
    XML_ParserFree(im.parser);
    if (err->len)
        return -1;
    vn_log_info("store: imported %zu documents and %zu items in %zu archives", im.docs, im.items,
                im.archives);
    return 0;
}
