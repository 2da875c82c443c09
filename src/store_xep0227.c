/*
 * store_xep0227.c - accounts to and from XEP-0227 files (urn:xmpp:pie:0),
 * the format other servers export (Prosody's mod_storage_xep0227 and
 * prosody-migrator, ejabberd's export_piefxis), so users move to vestnik
 * with their passwords, contacts and messages, or away from it.
 *
 *   <server-data xmlns='urn:xmpp:pie:0'>
 *     <host jid='example.org'>
 *       <user name='juliet' [password='...']>
 *         <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'>
 *           <iter-count/><salt/><server-key/><stored-key/>   (base64)
 *         </scram-credentials>
 *         <query xmlns='jabber:iq:roster'><item jid name subscription ask><group/>..
 *         <presence xmlns='jabber:client' from='romeo@..' type='subscribe'/>
 *         <vCard xmlns='vcard-temp'/>   <query xmlns='jabber:iq:private'>..</query>
 *         <offline-messages><message xmlns='jabber:client'><delay stamp/>..</offline-messages>
 *         <archive xmlns='urn:xmpp:pie:0#mam'>
 *           <result xmlns='urn:xmpp:mam:2' id><forwarded xmlns='urn:xmpp:forward:0'>
 *             <delay xmlns='urn:xmpp:delay' stamp/><message xmlns='jabber:client'/>..
 *
 * vestnik keeps no passwords, so an export carries SCRAM credentials only
 * (both hashes); an import takes either, and an account that comes with
 * SCRAM-SHA-1 alone logs in with SCRAM-SHA-1 and PLAIN until its password
 * is next set. MAM ids are the other server's: imported items get vestnik
 * ids from their timestamps. PEP nodes and privacy lists are not carried.
 *
 * A file may name its <host/> or <user/> elements in others with XInclude
 * (§5: <xi:include href='example.org.xml'/>, relative to the including
 * file; ejabberd's export_piefxis writes one file per host so).
 *
 * Export writes element by element and import reads with expat in the same
 * way: one child of <user/> at a time, and inside <offline-messages/> and
 * <archive/> one message at a time, so an archive need not fit in memory.
 */
#include "store_xep0227.h"

#include <expat.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "store_backend.h"
#include "vestnik/jid.h"
#include "vestnik/log.h"
#include "vestnik/module.h"
#include "vestnik/roster.h"

#define NS_PIE "urn:xmpp:pie:0"
#define NS_PIE_SCRAM "urn:xmpp:pie:0#scram"
#define NS_PIE_MAM "urn:xmpp:pie:0#mam"
#define NS_MAM "urn:xmpp:mam:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_DELAY "urn:xmpp:delay"
#define NS_SID "urn:xmpp:sid:0"
#define NS_VCARD "vcard-temp"
#define NS_PRIVATE "jabber:iq:private"
#define NS_XML "http://www.w3.org/XML/1998/namespace"
#define NS_XINCLUDE "http://www.w3.org/2001/XInclude"
#define MAX_INCLUDE_NESTING 4

/* The stores and archives of the modules (mod_vcard, mod_private,
 * mod_offline, mod_mam), whose documents this file reads and writes. */
#define VCARD_STORE "vcard"
#define VCARD_KEY "vcard"
#define PHOTO_KEY "photo"
#define PRIVATE_STORE "private"
#define PRIVATE_MAX_KEY 400
#define OFFLINE_ARCHIVE "offline"
#define MAM_ARCHIVE "mam"

/* Bad input stops the import rather than exhausting memory: the bytes of
 * one child of <user/> (or one archived message), and its nesting. */
#define MAX_ELEMENT_BYTES (16u * 1024 * 1024)
#define MAX_ELEMENT_DEPTH 64
/* Writes between two waits for the disk when the store groups them. */
#define IMPORT_BATCH 1000

static bool host_listed(const char *const *hosts, size_t n_hosts, const char *host)
{
    for (size_t i = 0; i < n_hosts; i++)
        if (strcmp(hosts[i], host) == 0)
            return true;
    return false;
}

/* ---- export ---- */

typedef struct exporter {
    vn_store *s;
    FILE *out;
    const char *host, *user;
    vn_stanza *parent; /* what the foreach callbacks fill */
    bool failed;
} exporter;

static void write_text(exporter *x, const char *text, size_t len)
{
    if (len && fwrite(text, 1, len, x->out) != len)
        x->failed = true;
}

static void write_element(exporter *x, const vn_stanza *el)
{
    size_t len;
    char *xml = vn_stanza_serialize(el, NULL, &len);

    write_text(x, xml, len);
    write_text(x, "\n", 1);
    free(xml);
}

/* A jabber:client stanza as a child of <user/> or <offline-messages/>:
 * the serializer leaves a top-level stanza's xmlns out (in a stream it
 * takes the stream's), and here it must be written. */
static void write_stanza(exporter *x, const vn_stanza *el)
{
    size_t len, name_end = 1 + strlen(vn_stanza_name(el));
    char *xml = vn_stanza_serialize(el, NULL, &len);

    write_text(x, xml, name_end);
    write_text(x, " xmlns='" VN_NS_CLIENT "'", sizeof " xmlns='" VN_NS_CLIENT "'" - 1);
    write_text(x, xml + name_end, len - name_end);
    write_text(x, "\n", 1);
    free(xml);
}

static void export_scram(exporter *x, vn_scram_hash hash)
{
    vn_scram_creds creds;
    vn_buf b64;

    if (vn_accounts_get_creds(x->s, x->host, x->user, hash, &creds) != 0)
        return;
    vn_stanza *el = vn_stanza_new("scram-credentials", NS_PIE_SCRAM);
    vn_stanza_set_attr(el, "mechanism", hash == VN_SCRAM_SHA1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256");
    char count[16];
    snprintf(count, sizeof count, "%u", creds.iterations);
    vn_stanza_add_text_child(el, "iter-count", NS_PIE_SCRAM, count);
    const struct {
        const char *name;
        const unsigned char *data;
        size_t len;
    } fields[] = {{"salt", creds.salt, creds.salt_len},
                  {"server-key", creds.server_key, creds.key_len},
                  {"stored-key", creds.stored_key, creds.key_len}};
    vn_buf_init(&b64);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        vn_buf_reset(&b64);
        vn_scram_b64_encode(fields[i].data, fields[i].len, &b64);
        vn_stanza_add_text_child(el, fields[i].name, NS_PIE_SCRAM, b64.data);
    }
    vn_buf_free(&b64);
    OPENSSL_cleanse(&creds, sizeof creds);
    write_element(x, el);
    vn_stanza_free(el);
}

static bool roster_item_out(const vn_roster_item *item, void *ud)
{
    exporter *x = ud;

    if (item->listed)
        vn_roster_item_to_stanza(item, x->parent);
    return true;
}

/* The requests awaiting an answer, as XEP-0227 §4.8 has them. */
static bool roster_request_out(const vn_roster_item *item, void *ud)
{
    exporter *x = ud;

    if (item->pending_in) {
        vn_stanza *p = vn_stanza_new("presence", VN_NS_CLIENT);
        vn_stanza_set_attr(p, "from", item->jid);
        vn_stanza_set_attr(p, "type", "subscribe");
        write_stanza(x, p);
        vn_stanza_free(p);
    }
    return true;
}

static void export_roster(exporter *x)
{
    x->parent = vn_stanza_new("query", VN_NS_ROSTER);
    if (vn_roster_foreach(x->s, x->host, x->user, roster_item_out, x) != VN_STORE_OK)
        x->failed = true;
    if (vn_stanza_first_element(x->parent))
        write_element(x, x->parent);
    vn_stanza_free(x->parent);
    x->parent = NULL;
    if (vn_roster_foreach(x->s, x->host, x->user, roster_request_out, x) != VN_STORE_OK)
        x->failed = true;
}

static void export_vcard(exporter *x)
{
    vn_buf doc;

    vn_buf_init(&doc);
    if (vn_store_get(x->s, x->host, x->user, VCARD_STORE, VCARD_KEY, &doc) == VN_STORE_OK) {
        vn_stanza *vcard = vn_stanza_parse(doc.data, doc.len);
        if (vcard)
            write_element(x, vcard);
        else
            vn_log_warn("xep0227: the stored vCard of %s@%s does not parse; left out", x->user,
                        x->host);
        vn_stanza_free(vcard);
    }
    vn_buf_free(&doc);
}

static bool private_out(const char *key, const void *value, size_t len, void *ud)
{
    exporter *x = ud;
    vn_stanza *el = vn_stanza_parse(value, len);

    if (el)
        vn_stanza_append(x->parent, el);
    else
        vn_log_warn("xep0227: private %s of %s@%s does not parse; left out", key, x->user, x->host);
    return true;
}

static void export_private(exporter *x)
{
    x->parent = vn_stanza_new("query", NS_PRIVATE);
    if (vn_store_foreach(x->s, x->host, x->user, PRIVATE_STORE, private_out, x) != VN_STORE_OK)
        x->failed = true;
    if (vn_stanza_first_element(x->parent))
        write_element(x, x->parent);
    vn_stanza_free(x->parent);
    x->parent = NULL;
}

/* A stored message with its time as a <delay/>. */
static vn_stanza *stored_message(const exporter *x, const vn_archive_item *item)
{
    vn_stanza *msg = vn_stanza_parse(item->data, item->len);
    char stamp[VN_DATETIME_SIZE];

    if (!msg || !vn_stanza_is(msg, "message", VN_NS_CLIENT)) {
        vn_log_warn("xep0227: a stored message of %s@%s does not parse; left out", x->user,
                    x->host);
        vn_stanza_free(msg);
        return NULL;
    }
    vn_datetime_format(item->ts_us, stamp);
    vn_stanza *delay = vn_stanza_new("delay", NS_DELAY);
    vn_stanza_set_attr(delay, "from", x->host);
    vn_stanza_set_attr(delay, "stamp", stamp);
    vn_stanza_append(msg, delay);
    return msg;
}

static bool offline_out(const vn_archive_item *item, void *ud)
{
    exporter *x = ud;
    vn_stanza *msg = stored_message(x, item);

    if (msg)
        write_stanza(x, msg);
    vn_stanza_free(msg);
    return !x->failed;
}

static bool mam_out(const vn_archive_item *item, void *ud)
{
    exporter *x = ud;
    vn_stanza *msg = stored_message(x, item);
    char id[24];

    if (!msg)
        return true;
    vn_stanza *delay = vn_stanza_child(msg, "delay", NS_DELAY);
    vn_stanza_detach(delay);
    vn_stanza *result = vn_stanza_new("result", NS_MAM);
    snprintf(id, sizeof id, "%llu", (unsigned long long)item->id);
    vn_stanza_set_attr(result, "id", id);
    vn_stanza *forwarded = vn_stanza_add_child(result, "forwarded", NS_FORWARD);
    vn_stanza_append(forwarded, delay);
    vn_stanza_append(forwarded, msg);
    write_element(x, result);
    vn_stanza_free(result);
    return !x->failed;
}

/* Open and close tags of a container written child by child. */
static void export_archive(exporter *x, const char *archive, const char *open, const char *close,
                           vn_archive_cb cb)
{
    size_t count = 0;

    if (vn_archive_count(x->s, x->host, x->user, archive, NULL, &count) != VN_STORE_OK) {
        x->failed = true;
        return;
    }
    if (!count)
        return;
    write_text(x, open, strlen(open));
    if (vn_archive_query_items(x->s, x->host, x->user, archive, NULL, cb, x, NULL) != VN_STORE_OK)
        x->failed = true;
    write_text(x, close, strlen(close));
}

static bool user_out(const char *user, void *ud)
{
    exporter *x = ud;
    vn_buf tag;

    if (!*user)
        return true;
    x->user = user;
    vn_buf_init(&tag);
    vn_buf_append_str(&tag, "<user name='");
    vn_buf_append_xml_escaped(&tag, user, strlen(user));
    vn_buf_append_str(&tag, "'>\n");
    write_text(x, tag.data, tag.len);
    vn_buf_free(&tag);
    export_scram(x, VN_SCRAM_SHA1);
    export_scram(x, VN_SCRAM_SHA256);
    export_roster(x);
    export_vcard(x);
    export_private(x);
    export_archive(x, OFFLINE_ARCHIVE, "<offline-messages>\n", "</offline-messages>\n",
                   offline_out);
    export_archive(x, MAM_ARCHIVE, "<archive xmlns='" NS_PIE_MAM "'>\n", "</archive>\n", mam_out);
    write_text(x, "</user>\n", 8);
    return !x->failed;
}

int vn_xep0227_export(vn_store *s, const char *const *hosts, size_t n_hosts, FILE *out, vn_buf *err)
{
    exporter x = {.s = s, .out = out};
    vn_buf tag;

    vn_buf_init(&tag);
    vn_buf_append_str(&tag, "<?xml version='1.0' encoding='UTF-8'?>\n"
                            "<server-data xmlns='" NS_PIE "'>\n");
    write_text(&x, tag.data, tag.len);
    for (size_t i = 0; i < n_hosts && !x.failed; i++) {
        vn_buf_reset(&tag);
        vn_buf_append_str(&tag, "<host jid='");
        vn_buf_append_xml_escaped(&tag, hosts[i], strlen(hosts[i]));
        vn_buf_append_str(&tag, "'>\n");
        write_text(&x, tag.data, tag.len);
        x.host = hosts[i];
        if (vn_accounts_foreach(s, hosts[i], user_out, &x) != 0)
            x.failed = true;
        write_text(&x, "</host>\n", 8);
    }
    write_text(&x, "</server-data>\n", 15);
    vn_buf_free(&tag);
    if (!x.failed && fflush(out) != 0)
        x.failed = true;
    if (x.failed)
        vn_buf_append_str(err, "cannot read the store or write the file");
    return x.failed ? -1 : 0;
}

/* ---- import ---- */

typedef enum { IN_NONE, IN_OFFLINE, IN_MAM } container;

typedef struct importer {
    vn_store *s;
    const char *const *hosts;
    size_t n_hosts;
    unsigned iterations;
    XML_Parser parser;
    vn_buf *err;
    const char *path; /* of the file being read, for messages and XInclude */
    int includes;     /* nesting of the files being read */
    int depth;
    char *host, *user, *password, *user_bare;
    vn_scram_creds creds[2];
    bool have_creds[2];
    container in;   /* the container at depth 4 being read item by item */
    int unit_depth; /* where the element being built starts; 0: none */
    vn_stanza *unit, *cur;
    size_t unit_bytes;
    size_t users, skipped;
    size_t unflushed; /* writes since the last wait for the disk */
} importer;

static void stop(importer *im, const char *problem, const char *name)
{
    if (!im->err->len)
        vn_buf_printf(im->err, "%s: line %lu: %s%s", im->path,
                      (unsigned long)XML_GetCurrentLineNumber(im->parser), problem,
                      name ? name : "");
    XML_StopParser(im->parser, XML_FALSE);
}

static void on_durable(int status, void *arg)
{
    *(int *)arg = status;
}

/* With the store grouping writes (vestnikctl attached a loop), waits for
 * the disk every IMPORT_BATCH writes, or now when force. */
static void flush_writes(importer *im, bool force)
{
    int status = VN_STORE_OK;

    if (!force && ++im->unflushed < IMPORT_BATCH)
        return;
    im->unflushed = 0;
    vn_store_when_durable(im->s, on_durable, &status);
    vn_store_flush(im->s);
    if (status != VN_STORE_OK)
        stop(im, "cannot write the store, at ", im->user_bare);
}

/* expat's "URI|local" into its parts (ns "" when none). */
static void split_name(const char *name, char **ns, const char **local)
{
    const char *bar = strrchr(name, '|');

    *ns = bar ? vn_strndup(name, (size_t)(bar - name)) : vn_strdup("");
    *local = bar ? bar + 1 : name;
}

static bool name_is(const char *name, const char *ns, const char *local)
{
    size_t n = strlen(ns);
    return strncmp(name, ns, n) == 0 && name[n] == '|' && strcmp(name + n + 1, local) == 0;
}

static const char *attr_of(const XML_Char **attrs, const char *name)
{
    for (size_t i = 0; attrs[i]; i += 2)
        if (strcmp(attrs[i], name) == 0)
            return attrs[i + 1];
    return NULL;
}

/* Base64 field of the SCRAM credentials into dst, min..max bytes; twice:
 * base64 of base64, as ejabberd 23.01's export_piefxis writes them. */
static bool scram_field(const vn_stanza *el, const char *name, bool twice, unsigned char *dst,
                        size_t min, size_t max, size_t *len)
{
    const char *text = vn_stanza_child_text(el, name, NS_PIE_SCRAM);
    vn_buf once, bytes;

    vn_buf_init(&once);
    vn_buf_init(&bytes);
    bool ok = text && vn_scram_b64_decode(text, strlen(text), &once) == 0;
    if (ok && twice)
        ok = vn_scram_b64_decode(once.data, once.len, &bytes) == 0;
    const vn_buf *field = twice ? &bytes : &once;
    ok = ok && field->len >= min && field->len <= max;
    if (ok) {
        memcpy(dst, field->data, field->len);
        *len = field->len;
    }
    vn_buf_free(&once);
    vn_buf_free(&bytes);
    return ok;
}

static void import_scram(importer *im, const vn_stanza *el)
{
    const char *mechanism = vn_stanza_attr(el, "mechanism");
    const char *count = vn_stanza_child_text(el, "iter-count", NS_PIE_SCRAM);
    vn_scram_hash hash;
    char *end = NULL;
    size_t len;

    if (mechanism && strcmp(mechanism, "SCRAM-SHA-1") == 0) {
        hash = VN_SCRAM_SHA1;
    } else if (mechanism && strcmp(mechanism, "SCRAM-SHA-256") == 0) {
        hash = VN_SCRAM_SHA256;
    } else {
        vn_log_warn("xep0227: %s: %s credentials left out (vestnik has SCRAM-SHA-1 and -256)",
                    im->user_bare, mechanism ? mechanism : "unnamed");
        return;
    }
    vn_scram_creds *c = &im->creds[hash];
    memset(c, 0, sizeof *c);
    c->hash = hash;
    c->key_len = hash == VN_SCRAM_SHA1 ? 20 : 32;
    unsigned long iterations = count ? strtoul(count, &end, 10) : 0;
    bool twice = !scram_field(el, "server-key", false, c->server_key, c->key_len, c->key_len, &len);
    if (!count || *end || iterations == 0 || iterations > 10000000 ||
        !scram_field(el, "salt", twice, c->salt, 1, sizeof c->salt, &c->salt_len) ||
        !scram_field(el, "server-key", twice, c->server_key, c->key_len, c->key_len, &len) ||
        !scram_field(el, "stored-key", twice, c->stored_key, c->key_len, c->key_len, &len)) {
        stop(im, "malformed scram-credentials of ", im->user_bare);
        return;
    }
    c->iterations = (unsigned)iterations;
    im->have_creds[hash] = true;
}

/* The item for jid, new (unlisted) if there is none yet. */
static vn_roster_item *roster_item(importer *im, const char *jid)
{
    vn_roster_item *item = NULL;

    if (vn_roster_get(im->s, im->host, im->user, jid, &item) != VN_STORE_OK)
        item = vn_roster_item_new(jid);
    return item;
}

static void roster_put(importer *im, vn_roster_item *item)
{
    if (vn_roster_put(im->s, im->host, im->user, item, NULL) != VN_STORE_OK)
        stop(im, "cannot store the roster of ", im->user_bare);
    vn_roster_item_free(item);
    flush_writes(im, false);
}

static void import_roster(importer *im, const vn_stanza *query)
{
    static const char *const subscriptions[] = {"none", "to", "from", "both"};

    for (const vn_stanza *e = vn_stanza_first_element(query); e; e = vn_stanza_next_element(e)) {
        vn_jid *jid = vn_stanza_is(e, "item", VN_NS_ROSTER)
                          ? vn_jid_parse(vn_stanza_attr(e, "jid") ? vn_stanza_attr(e, "jid") : "")
                          : NULL;
        if (!jid || jid->resource || strcmp(jid->bare, im->user_bare) == 0) {
            im->skipped++;
            vn_jid_free(jid);
            continue;
        }
        vn_roster_item *item = roster_item(im, jid->bare);
        vn_jid_free(jid);
        const char *sub = vn_stanza_attr(e, "subscription"), *ask = vn_stanza_attr(e, "ask"),
                   *approved = vn_stanza_attr(e, "approved"), *name = vn_stanza_attr(e, "name");
        item->subscription = VN_SUB_NONE;
        for (int i = VN_SUB_NONE; sub && i <= VN_SUB_BOTH; i++)
            if (strcmp(sub, subscriptions[i]) == 0)
                item->subscription = (vn_subscription)i;
        item->ask = ask && strcmp(ask, "subscribe") == 0;
        item->approved = approved && (strcmp(approved, "true") == 0 || strcmp(approved, "1") == 0);
        item->listed = true;
        free(item->name);
        item->name = name && *name && strlen(name) <= VN_ROSTER_MAX_TEXT ? vn_strdup(name) : NULL;
        vn_roster_item_clear_groups(item);
        for (const vn_stanza *g = vn_stanza_first_element(e); g; g = vn_stanza_next_element(g)) {
            const char *group = vn_stanza_text(g);
            if (vn_stanza_is(g, "group", VN_NS_ROSTER) && group && *group &&
                strlen(group) <= VN_ROSTER_MAX_TEXT && item->n_groups < VN_ROSTER_MAX_GROUPS)
                vn_roster_item_add_group(item, group);
        }
        roster_put(im, item);
    }
}

/* An inbound subscription request awaiting an answer (§4.8). */
static void import_request(importer *im, const vn_stanza *presence)
{
    const char *type = vn_stanza_attr(presence, "type");
    vn_jid *from =
        vn_jid_parse(vn_stanza_attr(presence, "from") ? vn_stanza_attr(presence, "from") : "");

    if (type && strcmp(type, "subscribe") == 0 && from) {
        vn_roster_item *item = roster_item(im, from->bare);
        item->pending_in = true;
        roster_put(im, item);
    } else {
        im->skipped++;
    }
    vn_jid_free(from);
}

/* The hex SHA-1 of the vCard's photo, as mod_vcard keeps it for
 * vcard-temp:x:update (XEP-0153); "" when there is no photo. */
static bool photo_hash(const vn_stanza *vcard, char hex[2 * SHA_DIGEST_LENGTH + 1])
{
    const vn_stanza *photo = vn_stanza_child(vcard, "PHOTO", NS_VCARD);
    const char *binval = photo ? vn_stanza_child_text(photo, "BINVAL", NS_VCARD) : NULL;
    size_t len = binval ? strlen(binval) : 0;
    int chunk = 0, tail = 0;

    hex[0] = '\0';
    if (!len)
        return true;
    if (len > INT32_MAX)
        return false;
    unsigned char *image = vn_alloc(len / 4 * 3 + 3);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    bool decoded = false;
    if (ctx) {
        EVP_DecodeInit(ctx);
        decoded =
            EVP_DecodeUpdate(ctx, image, &chunk, (const unsigned char *)binval, (int)len) >= 0 &&
            EVP_DecodeFinal(ctx, image + chunk, &tail) == 1;
        EVP_ENCODE_CTX_free(ctx);
    }
    if (decoded && chunk + tail > 0) {
        unsigned char digest[SHA_DIGEST_LENGTH];
        SHA1(image, (size_t)(chunk + tail), digest);
        for (size_t i = 0; i < sizeof digest; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    free(image);
    return decoded;
}

static void import_vcard(importer *im, const vn_stanza *vcard)
{
    char hash[2 * SHA_DIGEST_LENGTH + 1];
    size_t len;

    if (!photo_hash(vcard, hash)) {
        vn_log_warn("xep0227: the vCard photo of %s is not base64; vCard left out", im->user_bare);
        im->skipped++;
        return;
    }
    char *xml = vn_stanza_serialize(vcard, NULL, &len);
    if (vn_store_put(im->s, im->host, im->user, VCARD_STORE, VCARD_KEY, xml, len) != VN_STORE_OK ||
        (*hash && vn_store_put(im->s, im->host, im->user, VCARD_STORE, PHOTO_KEY, hash,
                               strlen(hash)) != VN_STORE_OK))
        stop(im, "cannot store the vCard of ", im->user_bare);
    free(xml);
}

static void import_private(importer *im, const vn_stanza *query)
{
    for (const vn_stanza *e = vn_stanza_first_element(query); e; e = vn_stanza_next_element(e)) {
        const char *ns = vn_stanza_ns(e);
        if (!ns || !*ns || strcmp(ns, NS_PRIVATE) == 0 || vn_stanza_is_stanza_ns(ns)) {
            im->skipped++;
            continue;
        }
        char *key = vn_asprintf("{%s}%s", ns, vn_stanza_name(e));
        size_t len;
        char *xml =
            strlen(key) <= PRIVATE_MAX_KEY ? vn_stanza_serialize(e, VN_NS_CLIENT, &len) : NULL;
        if (!xml)
            im->skipped++;
        else if (vn_store_put(im->s, im->host, im->user, PRIVATE_STORE, key, xml, len) !=
                 VN_STORE_OK)
            stop(im, "cannot store the private XML of ", im->user_bare);
        free(xml);
        free(key);
    }
}

/* Takes the message's <delay/> stamp (removing the delay) into *ts_us,
 * 0 (now) when it has none. */
static void take_stamp(vn_stanza *holder, int64_t *ts_us)
{
    vn_stanza *delay = vn_stanza_child(holder, "delay", NS_DELAY);

    *ts_us = 0;
    if (delay && !vn_datetime_parse(
                     vn_stanza_attr(delay, "stamp") ? vn_stanza_attr(delay, "stamp") : "", ts_us))
        *ts_us = 0;
    vn_stanza_remove(delay);
}

static void append_message(importer *im, const char *archive, int64_t ts_us, const char *with,
                           const vn_stanza *msg)
{
    size_t len;
    char *xml = vn_stanza_serialize(msg, VN_NS_CLIENT, &len);

    if (vn_archive_append(im->s, im->host, im->user, archive, ts_us, with ? with : "", xml, len,
                          NULL) != VN_STORE_OK)
        stop(im, "cannot store a message of ", im->user_bare);
    free(xml);
    flush_writes(im, false);
}

static void import_offline(importer *im, vn_stanza *msg)
{
    int64_t ts_us;

    if (!vn_stanza_is(msg, "message", VN_NS_CLIENT)) {
        im->skipped++;
        return;
    }
    take_stamp(msg, &ts_us);
    vn_jid *from = vn_jid_parse(vn_stanza_attr(msg, "from") ? vn_stanza_attr(msg, "from") : "");
    append_message(im, OFFLINE_ARCHIVE, ts_us, from ? from->full : "", msg);
    vn_jid_free(from);
}

static void import_mam(importer *im, vn_stanza *result)
{
    vn_stanza *forwarded = vn_stanza_is(result, "result", NS_MAM)
                               ? vn_stanza_child(result, "forwarded", NS_FORWARD)
                               : NULL;
    vn_stanza *msg = forwarded ? vn_stanza_child(forwarded, "message", VN_NS_CLIENT) : NULL;
    int64_t ts_us;

    if (!msg) {
        im->skipped++;
        return;
    }
    take_stamp(forwarded, &ts_us);
    vn_stanza_remove(vn_stanza_child(msg, "delay", NS_DELAY));
    /* The old server's id for the archive stands for its own, not ours
     * (mod_mam keeps no stanza-id of the owner's either). */
    for (vn_stanza *e = vn_stanza_first_element(msg), *next; e; e = next) {
        const char *by = vn_stanza_attr(e, "by");
        next = vn_stanza_next_element(e);
        if (vn_stanza_is(e, "stanza-id", NS_SID) && by && strcmp(by, im->user_bare) == 0)
            vn_stanza_remove(e);
    }
    /* "with" is the other party: the recipient of what the user sent. */
    vn_jid *from = vn_jid_parse(vn_stanza_attr(msg, "from") ? vn_stanza_attr(msg, "from") : "");
    vn_jid *to = vn_jid_parse(vn_stanza_attr(msg, "to") ? vn_stanza_attr(msg, "to") : "");
    vn_jid *with = from && strcmp(from->bare, im->user_bare) == 0 ? to : from;
    append_message(im, MAM_ARCHIVE, ts_us, with ? with->full : "", msg);
    vn_jid_free(from);
    vn_jid_free(to);
}

/* A complete child of <user/>, or an item of a container. */
static void import_element(importer *im, vn_stanza *el)
{
    if (im->in == IN_OFFLINE)
        import_offline(im, el);
    else if (im->in == IN_MAM)
        import_mam(im, el);
    else if (vn_stanza_is(el, "scram-credentials", NS_PIE_SCRAM))
        import_scram(im, el);
    else if (vn_stanza_is(el, "query", VN_NS_ROSTER))
        import_roster(im, el);
    else if (vn_stanza_is(el, "presence", VN_NS_CLIENT))
        import_request(im, el);
    else if (vn_stanza_is(el, "vCard", NS_VCARD))
        import_vcard(im, el);
    else if (vn_stanza_is(el, "query", NS_PRIVATE))
        import_private(im, el);
    else
        im->skipped++; /* PEP, privacy lists, another server's extensions */
}

static void begin_user(importer *im, const XML_Char **attrs)
{
    const char *name = attr_of(attrs, "name"), *password = attr_of(attrs, "password");

    im->user = name ? vn_jid_prep_local(name) : NULL;
    if (!im->user) {
        stop(im, "a user without a valid name on ", im->host);
        return;
    }
    im->user_bare = vn_asprintf("%s@%s", im->user, im->host);
    if (vn_accounts_exists(im->s, im->host, im->user)) {
        stop(im, "the account exists already: ", im->user_bare);
        return;
    }
    im->password = vn_strdup(password);
    memset(im->have_creds, 0, sizeof im->have_creds);
}

static void end_user(importer *im)
{
    vn_scram_creds creds[2];
    size_t n = 0;

    for (int h = VN_SCRAM_SHA1; h <= VN_SCRAM_SHA256; h++)
        if (im->have_creds[h])
            creds[n++] = im->creds[h];
    int rc = n ? vn_accounts_put_creds(im->s, im->host, im->user, creds, n)
             : im->password
                 ? vn_accounts_create(im->s, im->host, im->user, im->password, im->iterations)
                 : -2;
    if (rc == -2)
        stop(im, "no password and no SCRAM-SHA-1/256 credentials for ", im->user_bare);
    else if (rc != 0)
        stop(im, "cannot create the account ", im->user_bare);
    else
        im->users++;
    flush_writes(im, true); /* an account counts once it is on disk */
    OPENSSL_cleanse(creds, sizeof creds);
    OPENSSL_cleanse(im->creds, sizeof im->creds);
    if (im->password)
        OPENSSL_cleanse(im->password, strlen(im->password));
    free(im->password);
    free(im->user);
    free(im->user_bare);
    im->password = im->user = im->user_bare = NULL;
}

static void element_attrs(importer *im, vn_stanza *el, const XML_Char **attrs)
{
    for (size_t i = 0; attrs[i]; i += 2) {
        const char *name = attrs[i];
        char *xml_name = NULL;
        if (strncmp(name, NS_XML "|", sizeof NS_XML) == 0)
            name = xml_name = vn_asprintf("xml:%s", name + sizeof NS_XML);
        vn_stanza_set_attr(el, name, attrs[i + 1]);
        im->unit_bytes += strlen(name) + strlen(attrs[i + 1]);
        free(xml_name);
    }
}

static void include_file(importer *im, const XML_Char **attrs, int depth);

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    importer *im = ud;
    int depth = ++im->depth;

    if (im->unit_depth) {
        char *ns;
        const char *local;
        if (depth - im->unit_depth >= MAX_ELEMENT_DEPTH) {
            stop(im, "elements nested too deeply in ", im->user_bare);
            return;
        }
        split_name(name, &ns, &local);
        vn_stanza *el = vn_stanza_new(local, ns);
        free(ns);
        element_attrs(im, el, attrs);
        if (im->cur)
            vn_stanza_append(im->cur, el);
        else
            im->unit = el;
        im->cur = el;
        im->unit_bytes += strlen(name);
        if (im->unit_bytes > MAX_ELEMENT_BYTES)
            stop(im, "an element too large in ", im->user_bare);
        return;
    }
    if ((depth == 2 || depth == 3) && name_is(name, NS_XINCLUDE, "include")) {
        include_file(im, attrs, depth);
    } else if (depth == 1 && (im->includes || !name_is(name, NS_PIE, "server-data"))) {
        stop(im, "not a XEP-0227 file: the root is ", name);
    } else if (depth == 2) {
        const char *jid = name_is(name, NS_PIE, "host") ? attr_of(attrs, "jid") : NULL;
        im->host = jid ? vn_jid_prep_domain(jid) : NULL;
        if (!im->host)
            stop(im, "expected <host jid=.../>, got ", name);
        else if (!host_listed(im->hosts, im->n_hosts, im->host))
            stop(im, "not a host of this server: ", im->host);
    } else if (depth == 3) {
        if (name_is(name, NS_PIE, "user"))
            begin_user(im, attrs);
        else
            stop(im, "expected <user/>, got ", name);
    } else if (depth == 4 && name_is(name, NS_PIE, "offline-messages")) {
        im->in = IN_OFFLINE;
    } else if (depth == 4 && name_is(name, NS_PIE_MAM, "archive")) {
        im->in = IN_MAM;
    } else if (depth == 4 || (depth == 5 && im->in != IN_NONE)) {
        im->unit_depth = depth;
        im->unit_bytes = 0;
        im->depth--; /* counted again as the unit's root */
        on_start(ud, name, attrs);
    }
}

static void on_end(void *ud, const XML_Char *name)
{
    importer *im = ud;
    int depth = im->depth--;

    if (im->unit_depth) {
        im->cur = vn_stanza_parent(im->cur);
        if (depth == im->unit_depth) {
            import_element(im, im->unit);
            vn_stanza_free(im->unit);
            im->unit = im->cur = NULL;
            im->unit_depth = 0;
        }
    } else if (name_is(name, NS_XINCLUDE, "include")) {
        return; /* the included file's element ended in it */
    } else if (depth == 4) {
        im->in = IN_NONE;
    } else if (depth == 3 && im->user) {
        end_user(im);
    } else if (depth == 2) {
        free(im->host);
        im->host = NULL;
    }
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    importer *im = ud;

    if (!im->cur)
        return; /* whitespace between the elements */
    vn_stanza_add_text(im->cur, s, (size_t)len);
    im->unit_bytes += (size_t)len;
    if (im->unit_bytes > MAX_ELEMENT_BYTES)
        stop(im, "an element too large in ", im->user_bare);
}

/* Entities a DTD declares could expand without bound: none are read. */
static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    stop(ud, "a DTD is not allowed", NULL);
}

/* Parses one file, its root at depth+1; false after an error. */
static bool parse_file(importer *im, FILE *in, const char *path, int depth)
{
    XML_Parser outer = im->parser;
    const char *outer_path = im->path;
    char chunk[65536];
    bool done = false;

    im->parser = XML_ParserCreateNS("UTF-8", '|');
    im->path = path;
    im->depth = depth;
    XML_SetUserData(im->parser, im);
    XML_SetElementHandler(im->parser, on_start, on_end);
    XML_SetCharacterDataHandler(im->parser, on_text);
    XML_SetStartDoctypeDeclHandler(im->parser, on_doctype);
    while (!done && !im->err->len) {
        size_t n = fread(chunk, 1, sizeof chunk, in);
        done = n < sizeof chunk;
        if (XML_Parse(im->parser, chunk, (int)n, done) == XML_STATUS_ERROR && !im->err->len)
            vn_buf_printf(im->err, "%s: line %lu: %s", path,
                          (unsigned long)XML_GetCurrentLineNumber(im->parser),
                          XML_ErrorString(XML_GetErrorCode(im->parser)));
    }
    if (!im->err->len && ferror(in))
        vn_buf_printf(im->err, "%s: cannot read it", path);
    XML_ParserFree(im->parser);
    im->parser = outer;
    im->path = outer_path;
    return !im->err->len;
}

/* <xi:include href/> standing for the element at depth: the file it names,
 * relative to the including one, is read in its place. */
static void include_file(importer *im, const XML_Char **attrs, int depth)
{
    const char *href = attr_of(attrs, "href"), *parse = attr_of(attrs, "parse");
    XML_Parser outer = im->parser;

    if (!href || !*href || (parse && strcmp(parse, "xml") != 0) || strstr(href, "://")) {
        stop(im, "an xi:include without a local href", NULL);
        return;
    }
    if (im->includes >= MAX_INCLUDE_NESTING) {
        stop(im, "xi:include nested too deeply: ", href);
        return;
    }
    const char *slash = strrchr(im->path, '/');
    char *path = href[0] == '/' || !slash
                     ? vn_strdup(href)
                     : vn_asprintf("%.*s/%s", (int)(slash - im->path), im->path, href);
    FILE *in = fopen(path, "r");
    if (!in) {
        stop(im, "cannot open the included file ", path);
    } else {
        im->includes++;
        if (!parse_file(im, in, path, depth - 1))
            XML_StopParser(outer, XML_FALSE);
        im->includes--;
        im->depth = depth;
        fclose(in);
    }
    free(path);
}

int vn_xep0227_import(vn_store *s, const char *const *hosts, size_t n_hosts, unsigned iterations,
                      FILE *in, const char *path, size_t *users, vn_buf *err)
{
    importer im = {.s = s,
                   .hosts = hosts,
                   .n_hosts = n_hosts,
                   .iterations = iterations,
                   .err = err,
                   .path = path};

    parse_file(&im, in, path, 0);
    vn_stanza_free(im.unit);
    if (im.password)
        OPENSSL_cleanse(im.password, strlen(im.password));
    OPENSSL_cleanse(im.creds, sizeof im.creds);
    free(im.password);
    free(im.user);
    free(im.user_bare);
    free(im.host);
    *users = im.users;
    if (im.skipped)
        vn_log_warn("xep0227: %zu elements left out (PEP, privacy lists, malformed items)",
                    im.skipped);
    return err->len ? -1 : 0;
}
