/*
 * mod_credentials.c - digital documents (xeps/documents.md): the module's
 * entry, its configuration, and the wallet service's address.
 *
 * Every host gets a wallet service at <domain_prefix>.<host> (listed in the
 * host's disco#items). Stanzas to it reach the "route/remote" hook; this
 * file answers service discovery and pings there and hands the documents
 * protocol (iq payloads in urn:vestnik:documents:0) to issuer.c, wallet.c,
 * presentation*.c and consent.c, and chat messages to chat.c. It also
 * loads the trusted issuers the operator lists in issuers_file, with their
 * keys, the secret that wraps holder keys, and starts the HTTP routes of
 * cred_http.h (issuer metadata, status lists, one-time links).
 */
#include "mod_credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>
#include <vestnik/form.h>
#include <vestnik/http.h>
#include <vestnik/i18n.h>

#include "cred_http.h"

#define ROUTE_PRIORITY 90
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_PING "urn:xmpp:ping"
#define SWEEP_MS 15000

cred_state cred;

static vn_timer *sweeper;

/* ---- the issuers file ---- */

/* What is wrong with one issuer entry, or NULL. */
static const char *issuer_entry_problem(const json_t *e)
{
    if (!json_is_object(e))
        return "lists an issuer that is not an object";
    const char *id = json_string_value(json_object_get(e, "id"));
    if (!id || !*id || strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(id))
        return "lists an issuer without an id of a-z, 0-9, '-' and '_'";
    if (!json_is_string(json_object_get(e, "name")))
        return "lists an issuer without a name";
    const char *jid = json_string_value(json_object_get(e, "jid"));
    char *norm = jid ? vn_jid_normalize(jid) : NULL;
    free(norm);
    if (!norm)
        return "lists an issuer without a valid jid";
    const json_t *types = json_object_get(e, "types");
    if (!json_is_array(types) || json_array_size(types) == 0)
        return "lists an issuer without types";
    size_t i;
    const json_t *t;
    json_array_foreach(types, i, t)
    {
        if (!cred_type_find(json_string_value(t)))
            return "lists an issuer with an unknown credential type";
    }
    const json_t *key = json_object_get(e, "key_file");
    if (key && !json_is_string(key))
        return "lists an issuer whose key_file is not a string";
    const json_t *iss = json_object_get(e, "iss");
    if (iss && (!json_is_string(iss) || strncmp(json_string_value(iss), "https://", 8) != 0))
        return "lists an issuer whose iss is not an https URL";
    return NULL;
}

static const char *check_issuers_file(const char *path)
{
    if (!*path)
        return NULL;
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc)
        return "names a file that is not readable JSON";
    const char *problem = NULL;
    const json_t *list = json_object_get(doc, "issuers");
    if (!json_is_array(list))
        problem = "names a file without an \"issuers\" array";
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        if (!problem)
            problem = issuer_entry_problem(e);
    }
    json_decref(doc);
    return problem;
}

static void issuers_free_list(cred_issuer *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cred_issuer *is = &list[i];
        free(is->id);
        free(is->name);
        free(is->jid);
        for (size_t j = 0; j < is->n_types; j++)
            free(is->types[j]);
        free(is->types);
        vn_cred_key_free(is->key);
        free(is->iss);
    }
    free(list);
}

static void issuers_free(void)
{
    issuers_free_list(cred.issuers, cred.n_issuers);
    cred.issuers = NULL;
    cred.n_issuers = 0;
}

/* The server's own key for an issuer: kept in data_dir, made on first use. */
static vn_cred_key *server_issuer_key(const char *id)
{
    char *dir = vn_asprintf("%s/credentials", vn_server_data_dir());
    char *path = vn_asprintf("%s/issuer-%s.pem", dir, id);
    vn_cred_key *key = NULL;
    if (vn_cred_key_load_file(path, &key) != 0) {
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            vn_log_error("credentials: cannot create %s: %s", dir, strerror(errno));
        if (vn_cred_key_generate(VN_CRED_ALG_ES256, &key) != 0 ||
            vn_cred_key_save_file(key, path) != 0) {
            vn_log_error("credentials: cannot make the key of issuer %s in %s", id, path);
            vn_cred_key_free(key);
            key = NULL;
        }
    }
    free(path);
    free(dir);
    return key;
}

static int issuers_load(const char *path)
{
    if (!*path)
        return 0;
    const char *problem = check_issuers_file(path);
    if (problem) {
        vn_log_error("credentials: issuers_file %s", problem);
        return -1;
    }
    json_t *doc = json_load_file(path, 0, NULL);
    const json_t *list = json_object_get(doc, "issuers");
    size_t n = json_array_size(list);
    cred.issuers = vn_alloc((n ? n : 1) * sizeof *cred.issuers);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *e = json_array_get(list, i);
        cred_issuer *is = &cred.issuers[cred.n_issuers];
        const char *key_file = json_string_value(json_object_get(e, "key_file"));
        is->id = vn_strdup(json_string_value(json_object_get(e, "id")));
        if (key_file && vn_cred_key_load_file(key_file, &is->key) != 0) {
            vn_log_error("credentials: issuer %s: key_file %s is not a usable key", is->id,
                         key_file);
            rc = -1;
        } else if (!key_file) {
            is->key = server_issuer_key(is->id);
        }
        if (!is->key) {
            free(is->id);
            rc = -1;
            break;
        }
        is->self_signed = !vn_cred_key_has_private(is->key);
        is->name = vn_strdup(json_string_value(json_object_get(e, "name")));
        is->jid = vn_jid_normalize(json_string_value(json_object_get(e, "jid")));
        const json_t *types = json_object_get(e, "types");
        is->n_types = json_array_size(types);
        is->types = vn_alloc(is->n_types * sizeof *is->types);
        for (size_t j = 0; j < is->n_types; j++)
            is->types[j] =
                vn_strdup(cred_type_find(json_string_value(json_array_get(types, j)))->name);
        /* An issuer signing itself names its own identifier; the server's
         * issuers are under its base URL, where their keys are published. */
        const char *iss = json_string_value(json_object_get(e, "iss"));
        is->iss = iss && is->self_signed ? vn_strdup(iss)
                                         : vn_asprintf("%s/issuers/%s", cred.base_url, is->id);
        cred.n_issuers++;
    }
    json_decref(doc);
    return rc;
}

const cred_issuer *cred_issuer_by_jid(const vn_jid *from)
{
    for (size_t i = 0; from && i < cred.n_issuers; i++)
        if (strcmp(cred.issuers[i].jid, from->bare) == 0)
            return &cred.issuers[i];
    return NULL;
}

const cred_issuer *cred_issuer_by_id(const char *id)
{
    for (size_t i = 0; id && i < cred.n_issuers; i++)
        if (strcmp(cred.issuers[i].id, id) == 0)
            return &cred.issuers[i];
    return NULL;
}

const cred_issuer *cred_issuer_by_iss(const char *iss)
{
    for (size_t i = 0; iss && i < cred.n_issuers; i++)
        if (strcmp(cred.issuers[i].iss, iss) == 0)
            return &cred.issuers[i];
    return NULL;
}

/* ---- the secret wrapping holder keys ---- */

static int secret_load(const char *configured)
{
    char *path = *configured ? vn_strdup(configured)
                             : vn_asprintf("%s/credentials.secret", vn_server_data_dir());
    int rc = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, cred.secret, sizeof cred.secret);
        close(fd);
        if (n == (ssize_t)sizeof cred.secret)
            rc = 0;
        else
            vn_log_error("credentials: %s must hold %zu bytes", path, sizeof cred.secret);
    } else if (errno == ENOENT && !*configured) {
        /* First start: a new random secret, readable by the server only. */
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 && RAND_bytes(cred.secret, sizeof cred.secret) == 1 &&
            write(fd, cred.secret, sizeof cred.secret) == (ssize_t)sizeof cred.secret &&
            fsync(fd) == 0)
            rc = 0;
        if (fd >= 0)
            close(fd);
        if (rc != 0)
            vn_log_error("credentials: cannot create %s: %s", path, strerror(errno));
    } else {
        vn_log_error("credentials: cannot read %s: %s", path, strerror(errno));
    }
    free(path);
    return rc;
}

/* ---- addresses, replies ---- */

const char *cred_service_host(const char *domain)
{
    size_t plen = strlen(cred.prefix);
    if (!domain || strncmp(domain, cred.prefix, plen) != 0 || domain[plen] != '.')
        return NULL;
    const char *host = domain + plen + 1;
    for (const char *const *h = vn_local_hosts(); *h; h++)
        if (strcmp(*h, host) == 0)
            return *h;
    return NULL;
}

char *cred_service_jid(const char *host)
{
    return vn_asprintf("%s.%s", cred.prefix, host);
}

char *cred_new_id(const char *prefix)
{
    unsigned char raw[8];
    char hex[17];
    RAND_bytes(raw, sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    return vn_asprintf("%s-%s", prefix, hex);
}

void cred_iq_error(const vn_stanza *iq, const char *type, const char *condition,
                   const char *app_condition, const char *text)
{
    const char *lang = vn_stanza_attr(iq, "xml:lang");
    vn_stanza *reply = vn_stanza_error_reply(iq, type, condition, text ? vn_tr(lang, text) : NULL);
    if (!reply)
        return;
    vn_stanza *error = vn_stanza_child(reply, "error", NULL);
    if (app_condition)
        vn_stanza_add_child(error, app_condition, CRED_NS);
    /* The request is not echoed back: it may hold claims or a document. */
    for (vn_stanza *c = vn_stanza_first_element(reply); c;) {
        vn_stanza *next = vn_stanza_next_element(c);
        if (c != error)
            vn_stanza_remove(c);
        c = next;
    }
    vn_route(reply);
}

void cred_send_payload(const char *host, const char *to, vn_stanza *payload, const char *body)
{
    char *from = cred_service_jid(host);
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "from", from);
    vn_stanza_set_attr(msg, "to", to);
    if (body) {
        vn_stanza_set_attr(msg, "type", "chat");
        vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, body);
    }
    if (payload)
        vn_stanza_append(msg, payload);
    free(from);
    /* After what the message tells of is on disk, and in order with the
     * iq results that say so (a <declined/> must not overtake <pending/>). */
    vn_route_durable(msg);
}

void cred_tell(const char *host, const char *user, const char *body)
{
    char *to = vn_asprintf("%s@%s", user, host);
    cred_send_payload(host, to, NULL, body);
    free(to);
}

typedef struct holder_lang {
    char *key; /* user@host */
    char *lang;
    UT_hash_handle hh;
} holder_lang;

static holder_lang *langs;

const char *cred_holder_lang(const char *host, const char *user)
{
    char *key = vn_asprintf("%s@%s", user, host);
    holder_lang *hl = NULL;
    HASH_FIND_STR(langs, key, hl);
    free(key);
    return hl ? hl->lang : NULL;
}

void cred_holder_lang_set(const char *host, const char *user, const char *lang)
{
    if (!lang)
        return;
    char *key = vn_asprintf("%s@%s", user, host);
    holder_lang *hl = NULL;
    HASH_FIND_STR(langs, key, hl);
    if (hl) {
        free(key);
        if (strcmp(hl->lang, lang) == 0)
            return;
        free(hl->lang);
    } else {
        hl = vn_alloc(sizeof *hl);
        hl->key = key;
        HASH_ADD_KEYPTR(hh, langs, hl->key, strlen(hl->key), hl);
    }
    hl->lang = vn_strdup(lang);
}

static void langs_free(void)
{
    holder_lang *hl, *tmp;
    HASH_ITER(hh, langs, hl, tmp)
    {
        HASH_DEL(langs, hl);
        free(hl->key);
        free(hl->lang);
        free(hl);
    }
}

/* ---- the service's stanzas ---- */

static void disco_info(vn_event *ev)
{
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *query = vn_stanza_add_child(reply, "query", NS_DISCO_INFO);
    vn_stanza *id = vn_stanza_add_child(query, "identity", NS_DISCO_INFO);
    vn_stanza_set_attr(id, "category", "component");
    vn_stanza_set_attr(id, "type", "generic");
    vn_stanza_set_attr(id, "name", vn_tr(vn_stanza_attr(ev->stanza, "xml:lang"), N_("Documents")));
    static const char *const features[] = {NS_DISCO_INFO, NS_PING, CRED_NS};
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
        vn_stanza_set_attr(vn_stanza_add_child(query, "feature", NS_DISCO_INFO), "var",
                           features[i]);
    vn_route(reply);
}

static void service_iq(vn_event *ev, const char *host)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    if (!type || strcmp(type, "result") == 0 || strcmp(type, "error") == 0)
        return;
    vn_stanza *payload = vn_stanza_first_element(ev->stanza);
    if (!payload) { /* RFC 6120 §8.2.3: a get or set carries one payload */
        cred_iq_error(ev->stanza, "modify", "bad-request", NULL, NULL);
        return;
    }
    const char *ns = vn_stanza_ns(payload);
    bool get = strcmp(type, "get") == 0;
    if (get && vn_stanza_is(payload, "query", NS_DISCO_INFO) && !vn_stanza_attr(payload, "node")) {
        disco_info(ev);
    } else if (get && vn_stanza_is(payload, "query", NS_DISCO_ITEMS)) {
        vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
        vn_stanza_add_child(reply, "query", NS_DISCO_ITEMS);
        vn_route(reply);
    } else if (get && vn_stanza_is(payload, "ping", NS_PING)) {
        vn_route(vn_stanza_iq_result(ev->stanza));
    } else if (ns && strcmp(ns, CRED_NS) == 0 && ev->from) {
        const char *name = vn_stanza_name(payload);
        if (strcmp(name, "issue") == 0 || strcmp(name, "revoke") == 0 ||
            strcmp(name, "suspend") == 0 || strcmp(name, "reinstate") == 0 ||
            (get && strcmp(name, "holder-key") == 0 && vn_stanza_attr(payload, "holder")))
            cred_issuer_iq(ev, host, payload);
        else if (strcmp(name, "request") == 0 && !get)
            presentation_request_iq(ev, host, payload);
        else if (strcmp(name, "verify") == 0 && !get)
            presentation_verify_iq(ev, host, payload);
        else if (strcmp(name, "sign") == 0 && !get)
            consent_sign_iq(ev, host, payload);
        else
            wallet_iq(ev, host, payload);
    } else {
        cred_iq_error(ev->stanza, "cancel", "service-unavailable", NULL, NULL);
    }
}

static vn_hook_result service_route(vn_event *ev, void *ud)
{
    (void)ud;
    const char *host = ev->to ? cred_service_host(ev->to->domain) : NULL;
    if (!host)
        return VN_PASS;
    if (ev->to->local || ev->to->resource) {
        cred_iq_error(ev->stanza, "cancel", "item-not-found", NULL, NULL);
        return VN_HANDLED;
    }
    const char *name = vn_stanza_name(ev->stanza);
    if (strcmp(name, "iq") == 0)
        service_iq(ev, host);
    else if (strcmp(name, "message") == 0)
        chat_message(ev, host);
    return VN_HANDLED;
}

/* ---- HTTP ---- */

static json_t *http_issuer_metadata(const char *issuer_path, void *ud)
{
    (void)ud;
    if (strncmp(issuer_path, "issuers/", 8) != 0)
        return NULL;
    const cred_issuer *is = cred_issuer_by_id(issuer_path + 8);
    if (!is)
        return NULL;
    vn_cred_key *pub = vn_cred_key_public(is->key);
    const vn_cred_key *keys[] = {pub};
    json_t *doc = vn_cred_issuer_metadata(is->iss, keys, 1);
    vn_cred_key_free(pub);
    return doc;
}

static char *http_status_list(const char *list_id, int64_t *max_age, void *ud)
{
    (void)ud;
    return cred_status_token(list_id, max_age);
}

static const vn_cred_http_ops http_ops = {
    .issuer_metadata = http_issuer_metadata,
    .status_list = http_status_list,
};

/* ---- module ---- */

static const vn_config_key cred_keys_conf[] = {
    {.name = "domain_prefix", .type = VN_CONF_STRING, .default_value = "documents"},
    {.name = "base_url", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "issuers_file",
     .type = VN_CONF_STRING,
     .default_value = "",
     .check = check_issuers_file},
    {.name = "secret_file", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "request_timeout",
     .type = VN_CONF_INT,
     .default_value = "600",
     .min = 30,
     .max = 86400},
    {.name = "max_pending", .type = VN_CONF_INT, .default_value = "10", .min = 1, .max = 1000},
    {.name = "max_pending_per_asker",
     .type = VN_CONF_INT,
     .default_value = "3",
     .min = 1,
     .max = 1000},
    {.name = "max_claims_per_request",
     .type = VN_CONF_INT,
     .default_value = "32",
     .min = 1,
     .max = 256},
    {.name = "max_purpose_length",
     .type = VN_CONF_INT,
     .default_value = "500",
     .min = 10,
     .max = 10000},
    {.name = "max_document_size",
     .type = VN_CONF_INT,
     .default_value = "1048576",
     .min = 1,
     .max = 16777216},
    {.name = "max_credentials",
     .type = VN_CONF_INT,
     .default_value = "100",
     .min = 1,
     .max = 10000},
    {.name = "max_presentation_age",
     .type = VN_CONF_INT,
     .default_value = "300",
     .min = 10,
     .max = 86400},
    {.name = "qr_lifetime", .type = VN_CONF_INT, .default_value = "300", .min = 30, .max = 86400},
    {.name = "default_validity_days",
     .type = VN_CONF_INT,
     .default_value = "365",
     .min = 1,
     .max = 36500},
    {.name = "max_audit_entries",
     .type = VN_CONF_INT,
     .default_value = "10000",
     .min = 10,
     .max = 10000000},
    {.name = NULL},
};

static void read_limits(const vn_module *m)
{
    cred.limits = (cred_limits){
        .request_timeout = vn_module_config_int(m, "request_timeout"),
        .max_pending = (size_t)vn_module_config_int(m, "max_pending"),
        .max_pending_per_asker = (size_t)vn_module_config_int(m, "max_pending_per_asker"),
        .max_claims = (size_t)vn_module_config_int(m, "max_claims_per_request"),
        .max_purpose = (size_t)vn_module_config_int(m, "max_purpose_length"),
        .max_document = (size_t)vn_module_config_int(m, "max_document_size"),
        .max_credentials = (size_t)vn_module_config_int(m, "max_credentials"),
        .max_presentation_age = vn_module_config_int(m, "max_presentation_age"),
        .qr_lifetime = vn_module_config_int(m, "qr_lifetime"),
        .default_validity = vn_module_config_int(m, "default_validity_days") * 86400,
        .max_audit = (size_t)vn_module_config_int(m, "max_audit_entries"),
    };
}

static char *default_base_url(void)
{
    const char *host = vn_local_hosts()[0];
    int port = vn_http_listener_port(true);
    if (port)
        return vn_asprintf("https://%s:%d", host, port);
    port = vn_http_listener_port(false);
    if (port)
        return vn_asprintf("http://%s:%d", host, port);
    return vn_asprintf("https://%s", host);
}

static void sweep(vn_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    pending_expire();
    presentation_forget_old();
}

static void cred_unload(vn_module *m)
{
    (void)m;
    vn_hook_remove("route/remote", service_route, NULL);
    for (const char *const *h = vn_local_hosts(); *h; h++) {
        char *jid = cred_service_jid(*h);
        vn_disco_remove_item(*h, jid);
        free(jid);
    }
    wallet_adhoc_unregister();
    vn_cred_http_stop();
    if (sweeper)
        vn_timer_stop(sweeper);
    sweeper = NULL;
    issuers_free();
    langs_free();
    chat_forget_all();
    free(cred.prefix);
    free(cred.base_url);
    OPENSSL_cleanse(cred.secret, sizeof cred.secret);
    memset(&cred, 0, sizeof cred);
}

static int cred_load(vn_module *m)
{
    cred.module = m;
    read_limits(m);
    cred.prefix = vn_strdup(vn_module_config_string(m, "domain_prefix"));
    const char *base = vn_module_config_string(m, "base_url");
    cred.base_url = *base ? vn_strdup(base) : default_base_url();
    size_t blen = strlen(cred.base_url);
    while (blen > 0 && cred.base_url[blen - 1] == '/')
        cred.base_url[--blen] = '\0';
    if (secret_load(vn_module_config_string(m, "secret_file")) != 0 ||
        issuers_load(vn_module_config_string(m, "issuers_file")) != 0) {
        cred_unload(m);
        return -1;
    }
    vn_cred_http_config http = {0};
    if (vn_cred_http_start(&http, &http_ops, NULL) != 0)
        vn_log_warn("credentials: the HTTP routes are taken: no issuer keys, status lists or "
                    "QR codes over HTTP");
    vn_hook_add("route/remote", ROUTE_PRIORITY, service_route, NULL);
    for (const char *const *h = vn_local_hosts(); *h; h++) {
        char *jid = cred_service_jid(*h);
        vn_disco_add_item(*h, jid, N_("Documents"));
        free(jid);
    }
    wallet_adhoc_register();
    sweeper = vn_timer_start(SWEEP_MS, SWEEP_MS, sweep, NULL);
    vn_log_info("credentials: %zu trusted issuer(s), wallet service at %s.<host>, base URL %s",
                cred.n_issuers, cred.prefix, cred.base_url);
    return 0;
}

/* Limits and issuers change on reload; the address, the base URL and the
 * secret need a restart (they are in every credential and wrapped key). */
static void cred_reload(vn_module *m)
{
    read_limits(m);
    cred_issuer *old = cred.issuers;
    size_t n_old = cred.n_issuers;
    cred.issuers = NULL;
    cred.n_issuers = 0;
    if (issuers_load(vn_module_config_string(m, "issuers_file")) != 0) {
        issuers_free();
        cred.issuers = old;
        cred.n_issuers = n_old;
        vn_log_warn("credentials: the issuers were not reloaded; the previous ones stay");
        return;
    }
    issuers_free_list(old, n_old);
    vn_log_info("credentials: %zu trusted issuer(s)", cred.n_issuers);
}

VN_MODULE("credentials", "Digital documents: SD-JWT verifiable credentials (xeps/documents.md)",
          cred_keys_conf, cred_load, cred_unload, cred_reload);
