/*
 * config.c - the server configuration: schema, defaults and validation.
 *
 * The YAML tree from conf_tree.c is walked against tables that name every
 * key, its type, its range and where its value lands in vn_config. Every
 * problem is reported with its line and the walk goes on, so that one run
 * of the loader shows the operator all mistakes in the file at once.
 * Options under modules.<name> are only kept here: the module loader
 * validates them against the keys each module declares.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "vestnik/jid.h"

/* The Makefile passes the install locations; these only serve builds outside it. */
#ifndef VN_LOCALSTATEDIR
#define VN_LOCALSTATEDIR "/var/lib/vestnik"
#endif
#ifndef VN_MODULE_DIR
#define VN_MODULE_DIR "/usr/local/lib/vestnik/modules"
#endif

typedef struct loader {
    vn_config *cfg;
    const char *file;
    vn_buf *err;
    unsigned errors;
} loader;

static void fail(loader *ld, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(loader *ld, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vn_buf_printf(ld->err, "%s:%d: %s\n", ld->file, line, msg);
    ld->errors++;
}

/* ---- the schema ---- */

typedef enum {
    FIELD_STRING,        /* char *, non-empty; one of `choices` if given */
    FIELD_BOOL,          /* bool */
    FIELD_INT,           /* int in min..max */
    FIELD_UNSIGNED,      /* unsigned in min..max */
    FIELD_SIZE,          /* size_t in min..max */
    FIELD_LOG_LEVEL,     /* vn_log_level, named by `choices` in enum order */
    FIELD_LISTENER_TYPE, /* vn_listener_type, named by `choices` in enum order */
    FIELD_SECTION,       /* a map of `fields`, stored in the same struct */
    FIELD_CUSTOM,        /* handed to `load` */
} field_kind;

typedef struct field_spec field_spec;
struct field_spec {
    const char *name;
    field_kind kind;
    size_t offset; /* where the value lands in the struct being filled */
    long long min, max;
    const char *const *choices; /* NULL-terminated */
    const field_spec *fields;   /* FIELD_SECTION, terminated by a NULL name */
    void (*load)(loader *ld, const vn_conf_node *value, int line);
};

static void load_hosts(loader *ld, const vn_conf_node *list, int line);
static void load_listeners(loader *ld, const vn_conf_node *list, int line);
static void load_modules(loader *ld, const vn_conf_node *map, int line);
static void load_components(loader *ld, const vn_conf_node *list, int line);
static void load_s2s_allow(loader *ld, const vn_conf_node *list, int line);
static void load_s2s_deny(loader *ld, const vn_conf_node *list, int line);
static void load_allowed_origins(loader *ld, const vn_conf_node *value, int line);
static void load_s2s_peers(loader *ld, const vn_conf_node *list, int line);

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const store_backends[] = {"lmdb", "postgresql", NULL};
static const char *const listener_types[] = {"c2s",       "c2s_tls", "http",    "https",
                                             "component", "s2s",     "s2s_tls", NULL};
static const char *const s2s_tls_modes[] = {"starttls", "direct", NULL};
static const char *const tls_profiles[] = {"standard", "gost", NULL};
/* The languages of po/ (vestnik/i18n.h), as xml:lang names them. */
static const char *const languages[] = {"en", "ru", "zh", "zh-CN", "fa", NULL};

/* The part of an entry that every field has; ranges and choices follow it. */
#define FIELD(key, field_kind, type, member)                                                       \
    .name = (key), .kind = (field_kind), .offset = offsetof(type, member)
#define CFG(key, field_kind, member) FIELD(key, field_kind, vn_config, member)

static const field_spec log_fields[] = {
    {CFG("level", FIELD_LOG_LEVEL, log_level), .choices = log_levels},
    {CFG("syslog", FIELD_BOOL, log_syslog)},
    {.name = NULL},
};

static const field_spec store_pg_fields[] = {
    {CFG("conninfo", FIELD_STRING, store_pg_conninfo)},
    {CFG("read_timeout_ms", FIELD_UNSIGNED, store_pg_read_timeout_ms), .min = 10, .max = 600000},
    {CFG("write_timeout_ms", FIELD_UNSIGNED, store_pg_write_timeout_ms), .min = 100,
     .max = 3600000},
    {CFG("snapshot_max_age_ms", FIELD_UNSIGNED, store_pg_snapshot_max_age_ms), .min = 1,
     .max = 60000},
    {CFG("read_cache_kb", FIELD_UNSIGNED, store_pg_read_cache_kb), .min = 0, .max = 4194304},
    {.name = NULL},
};

static const field_spec store_fields[] = {
    {CFG("backend", FIELD_STRING, store_backend), .choices = store_backends},
    {CFG("map_size_mb", FIELD_SIZE, store_map_size_mb), .min = 1, .max = 1048576},
    {.name = "postgresql", .kind = FIELD_SECTION, .fields = store_pg_fields},
    {.name = NULL},
};

static const field_spec cluster_fields[] = {
    {CFG("enabled", FIELD_BOOL, cluster_enabled)},
    {CFG("node_id", FIELD_STRING, cluster_node_id)},
    {CFG("nats_url", FIELD_STRING, cluster_nats_url)},
    {CFG("heartbeat_ms", FIELD_UNSIGNED, cluster_heartbeat_ms), .min = 50, .max = 60000},
    {CFG("node_timeout_ms", FIELD_UNSIGNED, cluster_node_timeout_ms), .min = 200, .max = 600000},
    {.name = NULL},
};

static const field_spec tls_fields[] = {
    {CFG("certificate", FIELD_STRING, tls_cert)},
    {CFG("key", FIELD_STRING, tls_key)},
    {CFG("ciphers", FIELD_STRING, tls_ciphers)},
    {CFG("ciphersuites", FIELD_STRING, tls_ciphersuites)},
    {CFG("gost_certificate", FIELD_STRING, tls_gost_cert)},
    {CFG("gost_key", FIELD_STRING, tls_gost_key)},
    {.name = NULL},
};

static const field_spec c2s_fields[] = {
    {CFG("require_encryption", FIELD_BOOL, require_encryption)},
    {CFG("allow_plain", FIELD_BOOL, allow_plain)},
    {CFG("web_channel_binding", FIELD_BOOL, web_channel_binding)},
    {CFG("handshake_timeout", FIELD_UNSIGNED, handshake_timeout), .min = 1, .max = 3600},
    {CFG("keepalive_interval", FIELD_UNSIGNED, keepalive_interval), .min = 0, .max = 86400},
    {CFG("idle_timeout", FIELD_UNSIGNED, idle_timeout), .min = 0, .max = 86400},
    {CFG("resume_timeout", FIELD_UNSIGNED, resume_timeout), .min = 0, .max = 86400},
    {CFG("max_unacked_stanzas", FIELD_SIZE, max_unacked), .min = 10, .max = 1000000},
    {.name = NULL},
};

static const field_spec auth_fields[] = {
    {CFG("scram_iterations", FIELD_UNSIGNED, scram_iterations), .min = 4096, .max = 1000000},
    {CFG("sasl2", FIELD_BOOL, sasl2)},
    {CFG("fast_token_lifetime", FIELD_UNSIGNED, fast_token_lifetime), .min = 0, .max = 31536000},
    {CFG("fast_rotate_after", FIELD_UNSIGNED, fast_rotate_after), .min = 0, .max = 31536000},
    {CFG("fast_max_tokens", FIELD_UNSIGNED, fast_max_tokens), .min = 1, .max = 1000},
    {.name = NULL},
};

static const field_spec limits_fields[] = {
    {CFG("max_stanza_size", FIELD_SIZE, max_stanza_size), .min = 1024, .max = 67108864},
    {CFG("max_xml_depth", FIELD_UNSIGNED, max_xml_depth), .min = 4, .max = 256},
    {CFG("max_output_buffer", FIELD_SIZE, max_output_buffer), .min = 4096, .max = 1073741824},
    {CFG("max_connections_per_ip", FIELD_UNSIGNED, max_connections_per_ip), .min = 0,
     .max = 1000000},
    {CFG("login_max_failures", FIELD_UNSIGNED, login_max_failures), .min = 0, .max = 1000},
    {CFG("login_failure_window", FIELD_UNSIGNED, login_failure_window), .min = 1, .max = 86400},
    {CFG("login_backoff", FIELD_UNSIGNED, login_backoff), .min = 1, .max = 86400},
    {CFG("login_backoff_max", FIELD_UNSIGNED, login_backoff_max), .min = 1, .max = 604800},
    {CFG("login_range_max_failures", FIELD_UNSIGNED, login_range_max_failures), .min = 0,
     .max = 100000},
    {CFG("login_known_addresses", FIELD_UNSIGNED, login_known_addresses), .min = 1, .max = 1000},
    {CFG("login_known_address_ttl", FIELD_UNSIGNED, login_known_address_ttl), .min = 3600,
     .max = 31536000},
    {CFG("stanza_rate", FIELD_UNSIGNED, stanza_rate), .min = 0, .max = 1000000},
    {CFG("stanza_burst", FIELD_UNSIGNED, stanza_burst), .min = 1, .max = 1000000},
    {CFG("s2s_stanza_rate", FIELD_UNSIGNED, s2s_stanza_rate), .min = 0, .max = 1000000},
    {CFG("s2s_stanza_burst", FIELD_UNSIGNED, s2s_stanza_burst), .min = 1, .max = 1000000},
    {CFG("component_stanza_rate", FIELD_UNSIGNED, component_stanza_rate), .min = 0, .max = 1000000},
    {CFG("component_stanza_burst", FIELD_UNSIGNED, component_stanza_burst), .min = 1,
     .max = 1000000},
    {CFG("component_queue_max", FIELD_UNSIGNED, component_queue_max), .min = 0, .max = 10000000},
    {CFG("max_throttle_time", FIELD_UNSIGNED, max_throttle_time), .min = 0, .max = 86400},
    {CFG("max_resources_per_account", FIELD_UNSIGNED, max_resources_per_account), .min = 0,
     .max = 100000},
    {.name = NULL},
};

static const field_spec http_fields[] = {
    {CFG("max_request_header_size", FIELD_SIZE, http_max_header_size), .min = 1024, .max = 1048576},
    {CFG("max_body_size", FIELD_SIZE, http_max_body_size), .min = 1024, .max = 1073741824},
    {CFG("request_timeout", FIELD_UNSIGNED, http_request_timeout), .min = 1, .max = 3600},
    {CFG("keepalive_timeout", FIELD_UNSIGNED, http_keepalive_timeout), .min = 1, .max = 3600},
    {CFG("websocket_path", FIELD_STRING, websocket_path)},
    {CFG("bosh_path", FIELD_STRING, bosh_path)},
    {CFG("bosh_max_wait", FIELD_UNSIGNED, bosh_max_wait), .min = 1, .max = 3600},
    {CFG("bosh_max_hold", FIELD_UNSIGNED, bosh_max_hold), .min = 1, .max = 8},
    {CFG("bosh_inactivity", FIELD_UNSIGNED, bosh_inactivity), .min = 10, .max = 86400},
    {CFG("metrics", FIELD_BOOL, http_metrics)},
    {.name = "allowed_origins", .kind = FIELD_CUSTOM, .load = load_allowed_origins},
    {.name = NULL},
};

static const field_spec s2s_fields[] = {
    {CFG("require_encryption", FIELD_BOOL, s2s_require_encryption)},
    {CFG("require_valid_certificates", FIELD_BOOL, s2s_require_valid_certificates)},
    {CFG("dialback", FIELD_BOOL, s2s_dialback)},
    {CFG("ca_file", FIELD_STRING, s2s_ca_file)},
    {CFG("connect_timeout", FIELD_UNSIGNED, s2s_connect_timeout), .min = 1, .max = 3600},
    {CFG("queue_max", FIELD_SIZE, s2s_queue_max), .min = 1, .max = 1000000},
    {CFG("idle_timeout", FIELD_UNSIGNED, s2s_idle_timeout), .min = 0, .max = 86400},
    {CFG("incoming_idle_timeout", FIELD_UNSIGNED, s2s_incoming_idle_timeout), .min = 0,
     .max = 86400},
    {CFG("max_streams_per_domain", FIELD_SIZE, s2s_max_streams_per_domain), .min = 1, .max = 10000},
    {.name = "allow", .kind = FIELD_CUSTOM, .load = load_s2s_allow},
    {.name = "deny", .kind = FIELD_CUSTOM, .load = load_s2s_deny},
    {.name = NULL},
};

static const char *const outbound_policies[] = {"all", "federation", "none", NULL};

static const field_spec network_fields[] = {
    {CFG("allow_outbound", FIELD_STRING, allow_outbound), .choices = outbound_policies},
    {.name = NULL},
};

static const field_spec admin_fields[] = {
    {CFG("socket", FIELD_STRING, admin_socket)},
    {.name = NULL},
};

static const field_spec top_fields[] = {
    {.name = "hosts", .kind = FIELD_CUSTOM, .load = load_hosts},
    {CFG("data_dir", FIELD_STRING, data_dir)},
    {.name = "log", .kind = FIELD_SECTION, .fields = log_fields},
    {.name = "store", .kind = FIELD_SECTION, .fields = store_fields},
    {.name = "cluster", .kind = FIELD_SECTION, .fields = cluster_fields},
    {.name = "tls", .kind = FIELD_SECTION, .fields = tls_fields},
    {.name = "listeners", .kind = FIELD_CUSTOM, .load = load_listeners},
    {.name = "c2s", .kind = FIELD_SECTION, .fields = c2s_fields},
    {.name = "auth", .kind = FIELD_SECTION, .fields = auth_fields},
    {.name = "limits", .kind = FIELD_SECTION, .fields = limits_fields},
    {.name = "http", .kind = FIELD_SECTION, .fields = http_fields},
    {.name = "components", .kind = FIELD_CUSTOM, .load = load_components},
    {.name = "s2s", .kind = FIELD_SECTION, .fields = s2s_fields},
    {.name = "s2s_peers", .kind = FIELD_CUSTOM, .load = load_s2s_peers},
    {.name = "admin", .kind = FIELD_SECTION, .fields = admin_fields},
    {.name = "network", .kind = FIELD_SECTION, .fields = network_fields},
    {CFG("module_path", FIELD_STRING, module_path)},
    {CFG("language", FIELD_STRING, language), .choices = languages},
    {CFG("locale_dir", FIELD_STRING, locale_dir)},
    {.name = "modules", .kind = FIELD_CUSTOM, .load = load_modules},
    {.name = NULL},
};

static const field_spec host_fields[] = {
    {FIELD("name", FIELD_STRING, vn_host_conf, name)},
    {FIELD("certificate", FIELD_STRING, vn_host_conf, cert_file)},
    {FIELD("key", FIELD_STRING, vn_host_conf, key_file)},
    {FIELD("language", FIELD_STRING, vn_host_conf, language), .choices = languages},
    {.name = NULL},
};

static const field_spec component_fields[] = {
    {FIELD("domain", FIELD_STRING, vn_component_conf, domain)},
    {FIELD("secret", FIELD_STRING, vn_component_conf, secret)},
    {FIELD("host", FIELD_STRING, vn_component_conf, host)},
    {FIELD("name", FIELD_STRING, vn_component_conf, name)},
    {.name = NULL},
};

/* An s2s_peers entry while it is read: the tls mode as written. */
typedef struct s2s_peer_entry {
    vn_s2s_peer_conf peer;
    char *tls;
} s2s_peer_entry;

static const field_spec s2s_peer_fields[] = {
    {FIELD("domain", FIELD_STRING, s2s_peer_entry, peer.domain)},
    {FIELD("address", FIELD_STRING, s2s_peer_entry, peer.address)},
    {FIELD("port", FIELD_INT, s2s_peer_entry, peer.port), .min = 1, .max = 65535},
    {FIELD("tls", FIELD_STRING, s2s_peer_entry, tls), .choices = s2s_tls_modes},
    {FIELD("require_valid_certificate", FIELD_BOOL, s2s_peer_entry,
           peer.require_valid_certificate)},
    {.name = NULL},
};

static const field_spec listener_fields[] = {
    {FIELD("type", FIELD_LISTENER_TYPE, vn_listener_conf, type), .choices = listener_types},
    {FIELD("address", FIELD_STRING, vn_listener_conf, address)},
    {FIELD("port", FIELD_INT, vn_listener_conf, port), .min = 1, .max = 65535},
    {FIELD("tls_profile", FIELD_STRING, vn_listener_conf, tls_profile), .choices = tls_profiles},
    {.name = NULL},
};

static const char *const default_modules[] = {
    "ping", "version", "disco",   "roster",  "presence", "offline", "blocking", "last",
    "time", "vcard",   "private", "carbons", "csi",      "mam",     "pep",      "adhoc",
};

/* ---- walking a map against a table ---- */

static const field_spec *find_field(const field_spec *fields, const char *name)
{
    for (const field_spec *f = fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static int choice_index(const char *const *choices, const char *value)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], value) == 0)
            return i;
    return -1;
}

/* "section: key 'name'" or, at the top level, "key 'name'". */
static void fail_key(loader *ld, int line, const char *section, const char *key,
                     const char *problem)
{
    if (section)
        fail(ld, line, "%s: key '%s' %s", section, key, problem);
    else
        fail(ld, line, "key '%s' %s", key, problem);
}

static void fail_choices(loader *ld, int line, const char *section, const field_spec *f)
{
    vn_buf list;

    vn_buf_init(&list);
    for (int i = 0; f->choices[i]; i++)
        vn_buf_printf(&list, "%s%s", i ? ", " : "", f->choices[i]);
    char *problem = vn_asprintf("must be one of: %s", list.data);
    fail_key(ld, line, section, f->name, problem);
    free(problem);
    vn_buf_free(&list);
}

static void load_map(loader *ld, const vn_conf_node *map, const char *section,
                     const field_spec *fields, void *base);

static void load_field(loader *ld, const field_spec *f, const vn_conf_node *value, int line,
                       const char *section, void *base)
{
    char *slot = (char *)base + f->offset;
    long long num;
    bool flag;
    int choice;

    switch (f->kind) {
    case FIELD_STRING:
        if (value->type != VN_NODE_SCALAR || vn_conf_is_null(value) || !value->value[0]) {
            fail_key(ld, line, section, f->name, "must be a non-empty string");
        } else if (f->choices && choice_index(f->choices, value->value) < 0) {
            fail_choices(ld, line, section, f);
        } else {
            free(*(char **)slot);
            *(char **)slot = vn_strdup(value->value);
        }
        return;
    case FIELD_BOOL:
        if (vn_conf_as_bool(value, &flag))
            *(bool *)slot = flag;
        else
            fail_key(ld, line, section, f->name, "must be true or false");
        return;
    case FIELD_INT:
    case FIELD_UNSIGNED:
    case FIELD_SIZE:
        if (!vn_conf_as_int(value, &num) || num < f->min || num > f->max) {
            char problem[96];
            snprintf(problem, sizeof problem, "must be an integer between %lld and %lld", f->min,
                     f->max);
            fail_key(ld, line, section, f->name, problem);
        } else if (f->kind == FIELD_INT) {
            *(int *)slot = (int)num;
        } else if (f->kind == FIELD_UNSIGNED) {
            *(unsigned *)slot = (unsigned)num;
        } else {
            *(size_t *)slot = (size_t)num;
        }
        return;
    case FIELD_LOG_LEVEL:
    case FIELD_LISTENER_TYPE:
        choice = value->type == VN_NODE_SCALAR ? choice_index(f->choices, value->value) : -1;
        if (choice < 0)
            fail_choices(ld, line, section, f);
        else if (f->kind == FIELD_LOG_LEVEL)
            *(vn_log_level *)slot = (vn_log_level)choice;
        else
            *(vn_listener_type *)slot = (vn_listener_type)choice;
        return;
    case FIELD_SECTION: {
        /* A section inside a section is named by its path (store.postgresql). */
        char *name = section ? vn_asprintf("%s.%s", section, f->name) : vn_strdup(f->name);
        if (!vn_conf_is_null(value) && value->type != VN_NODE_MAP)
            fail(ld, line, "'%s' must be a map of keys", name);
        else
            load_map(ld, value, name, f->fields, base);
        free(name);
        return;
    }
    case FIELD_CUSTOM: f->load(ld, value, line); return;
    }
}

/* A null map (`log:` with nothing under it) is an empty one. */
static void load_map(loader *ld, const vn_conf_node *map, const char *section,
                     const field_spec *fields, void *base)
{
    if (vn_conf_is_null(map))
        return;
    for (size_t i = 0; i < map->count; i++) {
        const field_spec *f = find_field(fields, map->keys[i]);
        if (f)
            load_field(ld, f, map->items[i], map->key_lines[i], section, base);
        else if (section)
            fail(ld, map->key_lines[i], "%s: unknown key '%s'", section, map->keys[i]);
        else
            fail(ld, map->key_lines[i], "unknown top-level key '%s'", map->keys[i]);
    }
}

static int key_line(const vn_conf_node *map, const char *key)
{
    for (size_t i = 0; map && map->type == VN_NODE_MAP && i < map->count; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->key_lines[i];
    return map ? map->line : 0;
}

/* ---- hosts ---- */

static void host_free(vn_host_conf *h)
{
    free(h->name);
    free(h->cert_file);
    free(h->key_file);
    free(h->language);
}

/* Fills h from "- example.org" or "- {name: ..., certificate: ..., key: ...}";
 * false (with errors reported) if the entry is unusable. */
static bool read_host(loader *ld, const vn_conf_node *item, vn_host_conf *h)
{
    unsigned errors_before = ld->errors;

    h->line = item->line;
    if (item->type == VN_NODE_MAP) {
        load_map(ld, item, "hosts", host_fields, h);
        if (!vn_conf_map_get(item, "name"))
            fail(ld, item->line, "hosts: a host given as a map needs a 'name'");
        if (!h->cert_file != !h->key_file)
            fail(ld, key_line(item, h->cert_file ? "certificate" : "key"),
                 "hosts: 'certificate' and 'key' must be given together");
    } else if (item->type == VN_NODE_SCALAR && !vn_conf_is_null(item) && item->value[0]) {
        h->name = vn_strdup(item->value);
    } else {
        fail(ld, item->line, "hosts: each host must be a domain name or a map with 'name'");
    }
    if (!h->name)
        return false;

    char *canonical = vn_jid_prep_domain(h->name);
    if (!canonical) {
        fail(ld, key_line(item, "name"), "hosts: '%s' is not a valid domain name", h->name);
        return false;
    }
    free(h->name);
    h->name = canonical;
    return ld->errors == errors_before;
}

static void load_hosts(loader *ld, const vn_conf_node *list, int line)
{
    vn_config *cfg = ld->cfg;

    if (list->type != VN_NODE_SEQ) {
        fail(ld, line, "hosts: must be a list of domain names");
        return;
    }
    if (list->count == 0) {
        fail(ld, line, "hosts: at least one host is required");
        return;
    }
    cfg->hosts = vn_alloc(list->count * sizeof *cfg->hosts);
    for (size_t i = 0; i < list->count; i++) {
        vn_host_conf h = {0};
        if (!read_host(ld, list->items[i], &h)) {
            host_free(&h);
            continue;
        }
        const vn_host_conf *first = vn_config_host(cfg, h.name);
        if (first) {
            fail(ld, h.line, "hosts: duplicate host '%s' (first at line %d)", h.name, first->line);
            host_free(&h);
            continue;
        }
        cfg->hosts[cfg->n_hosts++] = h;
    }
}

/* ---- listeners ---- */

/* Binary form of an IP address, so that "::" and "0::0" compare equal;
 * false if the text is not an address. */
typedef struct ip_address {
    int family;
    unsigned char bytes[16];
} ip_address;

static bool parse_address(const char *text, ip_address *out)
{
    memset(out, 0, sizeof *out);
    out->family = strchr(text, ':') ? AF_INET6 : AF_INET;
    return inet_pton(out->family, text, out->bytes) == 1;
}

static void listener_free(vn_listener_conf *l)
{
    free(l->address);
    free(l->tls_profile);
}

bool vn_listener_gost(const vn_listener_conf *l)
{
    return l->tls_profile && strcmp(l->tls_profile, "gost") == 0;
}

static bool read_listener(loader *ld, const vn_conf_node *item, vn_listener_conf *l)
{
    unsigned errors_before = ld->errors;
    ip_address addr;

    l->line = item->line;
    if (item->type != VN_NODE_MAP) {
        fail(ld, item->line, "listeners: each listener must be a map with 'type' and 'port'");
        return false;
    }
    load_map(ld, item, "listeners", listener_fields, l);
    if (!vn_conf_map_get(item, "type"))
        fail(ld, item->line,
             "listeners: a listener needs a 'type' (c2s, c2s_tls, http, https, component, "
             "s2s or s2s_tls)");
    if (!vn_conf_map_get(item, "port"))
        fail(ld, item->line, "listeners: a listener needs a 'port'");
    if (vn_listener_gost(l) && l->type != VN_LISTEN_C2S_TLS && l->type != VN_LISTEN_HTTPS)
        fail(ld, key_line(item, "tls_profile"),
             "listeners: tls_profile gost is for c2s_tls and https listeners (TLS from the "
             "first byte)");
    if (!l->address)
        l->address = vn_strdup("::");
    else if (!parse_address(l->address, &addr))
        fail(ld, key_line(item, "address"), "listeners: address '%s' is not an IP address",
             l->address);
    return ld->errors == errors_before;
}

static void load_listeners(loader *ld, const vn_conf_node *list, int line)
{
    vn_config *cfg = ld->cfg;

    if (list->type != VN_NODE_SEQ) {
        fail(ld, line, "listeners: must be a list of listeners");
        return;
    }
    if (list->count == 0) {
        fail(ld, line, "listeners: at least one listener is required");
        return;
    }
    cfg->listeners = vn_alloc(list->count * sizeof *cfg->listeners);
    for (size_t i = 0; i < list->count; i++) {
        vn_listener_conf l = {0};
        ip_address addr, other;
        bool duplicate = false;

        if (!read_listener(ld, list->items[i], &l)) {
            listener_free(&l);
            continue;
        }
        parse_address(l.address, &addr);
        for (size_t j = 0; j < cfg->n_listeners && !duplicate; j++) {
            const vn_listener_conf *prev = &cfg->listeners[j];
            parse_address(prev->address, &other);
            if (prev->port == l.port && memcmp(&addr, &other, sizeof addr) == 0) {
                fail(ld, l.line, "listeners: duplicate listener on %s port %d (first at line %d)",
                     l.address, l.port, prev->line);
                duplicate = true;
            }
        }
        if (duplicate)
            listener_free(&l);
        else
            cfg->listeners[cfg->n_listeners++] = l;
    }
}

/* ---- modules ---- */

static bool valid_module_name(const char *name)
{
    if (!name[0])
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* A null `modules:` (every entry commented out) loads no module. */
static void load_modules(loader *ld, const vn_conf_node *map, int line)
{
    vn_config *cfg = ld->cfg;

    if (vn_conf_is_null(map))
        return;
    if (map->type != VN_NODE_MAP) {
        fail(ld, line, "modules: must be a map of module names to their options");
        return;
    }
    cfg->modules = vn_alloc(map->count * sizeof *cfg->modules);
    for (size_t i = 0; i < map->count; i++) {
        const char *name = map->keys[i];
        const vn_conf_node *options = map->items[i];

        if (!valid_module_name(name)) {
            fail(ld, map->key_lines[i], "modules: invalid module name '%s' (use a-z, 0-9 and _)",
                 name);
            continue;
        }
        if (vn_conf_is_null(options)) {
            options = NULL;
        } else if (options->type != VN_NODE_MAP) {
            fail(ld, map->key_lines[i], "modules.%s: options must be a map of keys", name);
            continue;
        }
        cfg->modules[cfg->n_modules++] = (vn_module_conf){
            .name = vn_strdup(name), .options = options, .line = map->key_lines[i]};
    }
}

/* ---- defaults and whole-file rules ---- */

static vn_config *config_new(const char *path)
{
    vn_config *cfg = vn_alloc(sizeof *cfg);

    cfg->path = vn_strdup(path);
    cfg->data_dir = vn_strdup(VN_LOCALSTATEDIR);
    cfg->store_backend = vn_strdup("lmdb");
    cfg->cluster_nats_url = vn_strdup("nats://127.0.0.1:4222");
    cfg->cluster_heartbeat_ms = 1000;
    cfg->cluster_node_timeout_ms = 4000;
    cfg->store_map_size_mb = 1024;
    cfg->store_pg_read_timeout_ms = 5000;
    cfg->store_pg_write_timeout_ms = 60000;
    cfg->store_pg_snapshot_max_age_ms = 200;
    cfg->store_pg_read_cache_kb = 16384;
    cfg->log_level = VN_LOG_INFO;
    cfg->log_syslog = false;
    cfg->tls_ciphers = vn_strdup("ECDHE+AESGCM:ECDHE+CHACHA20");
    cfg->tls_ciphersuites =
        vn_strdup("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
    cfg->require_encryption = true;
    cfg->allow_plain = true;
    cfg->scram_iterations = 4096;
    cfg->sasl2 = true;
    cfg->fast_token_lifetime = 1209600;
    cfg->fast_rotate_after = 86400;
    cfg->fast_max_tokens = 10;
    cfg->max_stanza_size = 262144;
    cfg->max_xml_depth = 32;
    cfg->max_output_buffer = 1048576;
    cfg->handshake_timeout = 30;
    cfg->keepalive_interval = 60;
    cfg->idle_timeout = 0;
    cfg->resume_timeout = 300;
    cfg->max_unacked = 1000;
    cfg->max_connections_per_ip = 50;
    cfg->login_max_failures = 5;
    cfg->login_failure_window = 300;
    cfg->login_backoff = 60;
    cfg->login_backoff_max = 3600;
    cfg->login_range_max_failures = 20;
    cfg->login_known_addresses = 10;
    cfg->login_known_address_ttl = 7776000;
    cfg->stanza_rate = 50;
    cfg->stanza_burst = 200;
    cfg->s2s_stanza_rate = 1000;
    cfg->s2s_stanza_burst = 5000;
    cfg->component_stanza_rate = 1000;
    cfg->component_stanza_burst = 5000;
    cfg->component_queue_max = 10000;
    cfg->max_throttle_time = 300;
    cfg->max_resources_per_account = 10;
    cfg->http_max_header_size = 16384;
    cfg->http_max_body_size = 1048576;
    cfg->http_request_timeout = 30;
    cfg->http_keepalive_timeout = 60;
    cfg->websocket_path = vn_strdup("/xmpp-websocket");
    cfg->bosh_path = vn_strdup("/http-bind");
    cfg->bosh_max_wait = 60;
    cfg->bosh_max_hold = 1;
    cfg->bosh_inactivity = 60;
    cfg->s2s_require_encryption = true;
    cfg->s2s_require_valid_certificates = false;
    cfg->s2s_dialback = true;
    cfg->s2s_connect_timeout = 30;
    cfg->s2s_queue_max = 1000;
    cfg->s2s_idle_timeout = 600;
    cfg->s2s_incoming_idle_timeout = 1800;
    cfg->s2s_max_streams_per_domain = 10;
    cfg->module_path = vn_strdup(VN_MODULE_DIR);
    cfg->language = vn_strdup("en");
    cfg->allow_outbound = vn_strdup("all");
    return cfg;
}

/* ---- components ---- */

static void component_free(vn_component_conf *c)
{
    free(c->domain);
    free(c->secret);
    free(c->host);
    free(c->name);
}

static void load_components(loader *ld, const vn_conf_node *list, int line)
{
    vn_config *cfg = ld->cfg;

    if (list->type != VN_NODE_SEQ) {
        fail(ld, line, "components: must be a list of {domain, secret}");
        return;
    }
    cfg->components = vn_alloc((list->count + 1) * sizeof *cfg->components);
    for (size_t i = 0; i < list->count; i++) {
        const vn_conf_node *item = list->items[i];
        vn_component_conf c = {.line = item->line};
        unsigned errors_before = ld->errors;

        if (item->type != VN_NODE_MAP) {
            fail(ld, item->line, "components: each component is a map with domain and secret");
            continue;
        }
        load_map(ld, item, "components", component_fields, &c);
        char *domain = c.domain ? vn_jid_prep_domain(c.domain) : NULL;
        if (!c.domain || !c.secret || !*c.secret)
            fail(ld, item->line, "components: 'domain' and a non-empty 'secret' are required");
        else if (!domain)
            fail(ld, key_line(item, "domain"), "components: '%s' is not a valid domain name",
                 c.domain);
        free(c.domain);
        c.domain = domain;
        for (size_t j = 0; domain && j < cfg->n_components; j++)
            if (strcmp(cfg->components[j].domain, domain) == 0)
                fail(ld, item->line, "components: duplicate component '%s' (first at line %d)",
                     domain, cfg->components[j].line);
        if (ld->errors != errors_before) {
            component_free(&c);
            continue;
        }
        cfg->components[cfg->n_components++] = c;
    }
}

/* ---- federation (s2s) ---- */

/* A list of domain names, normalised; *names is NULL-free and owned. */
static void load_domain_list(loader *ld, const vn_conf_node *list, int line, const char *key,
                             char ***names, size_t *count)
{
    if (vn_conf_is_null(list))
        return;
    if (list->type != VN_NODE_SEQ) {
        fail(ld, line, "s2s: '%s' must be a list of domain names", key);
        return;
    }
    *names = vn_alloc((list->count + 1) * sizeof **names);
    for (size_t i = 0; i < list->count; i++) {
        const vn_conf_node *item = list->items[i];
        char *domain = item->type == VN_NODE_SCALAR && !vn_conf_is_null(item)
                           ? vn_jid_prep_domain(item->value)
                           : NULL;
        if (!domain)
            fail(ld, item->line, "s2s: '%s' entries must be valid domain names", key);
        else
            (*names)[(*count)++] = domain;
    }
}

static void load_s2s_allow(loader *ld, const vn_conf_node *list, int line)
{
    load_domain_list(ld, list, line, "allow", &ld->cfg->s2s_allow, &ld->cfg->n_s2s_allow);
}

static void load_s2s_deny(loader *ld, const vn_conf_node *list, int line)
{
    load_domain_list(ld, list, line, "deny", &ld->cfg->s2s_deny, &ld->cfg->n_s2s_deny);
}

/* ---- http ---- */

/* "scheme://host[:port]" as browsers send it in Origin, lower-cased; NULL
 * if the text is not one. */
static char *web_origin(const char *text)
{
    size_t scheme = strncasecmp(text, "https://", 8) == 0  ? 8
                    : strncasecmp(text, "http://", 7) == 0 ? 7
                                                           : 0;
    if (!scheme || !text[scheme] || strcspn(text + scheme, "/?#@ \t") != strlen(text + scheme))
        return NULL;
    char *origin = vn_strdup(text);
    for (char *p = origin; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return origin;
}

/* http.allowed_origins: "*" (the default: any), or a list of origins. */
static void load_allowed_origins(loader *ld, const vn_conf_node *value, int line)
{
    vn_config *cfg = ld->cfg;

    if (vn_conf_is_null(value) || (value->type == VN_NODE_SCALAR && strcmp(value->value, "*") == 0))
        return;
    if (value->type != VN_NODE_SEQ) {
        fail(ld, line, "http: 'allowed_origins' must be \"*\" or a list of origins");
        return;
    }
    cfg->http_allowed_origins = vn_alloc((value->count + 1) * sizeof *cfg->http_allowed_origins);
    for (size_t i = 0; i < value->count; i++) {
        const vn_conf_node *item = value->items[i];
        char *origin =
            item->type == VN_NODE_SCALAR && !vn_conf_is_null(item) ? web_origin(item->value) : NULL;
        if (!origin)
            fail(ld, item->line,
                 "http: 'allowed_origins' entries are origins like https://chat.example.org "
                 "(scheme, host, optional port; no path)");
        else
            cfg->http_allowed_origins[cfg->n_http_allowed_origins++] = origin;
    }
    cfg->http_origins_restricted = true;
}

static void s2s_peer_free(vn_s2s_peer_conf *p)
{
    free(p->domain);
    free(p->address);
}

static void load_s2s_peers(loader *ld, const vn_conf_node *list, int line)
{
    vn_config *cfg = ld->cfg;

    if (vn_conf_is_null(list))
        return;
    if (list->type != VN_NODE_SEQ) {
        fail(ld, line, "s2s_peers: must be a list of {domain, address, port, tls}");
        return;
    }
    cfg->s2s_peers = vn_alloc((list->count + 1) * sizeof *cfg->s2s_peers);
    for (size_t i = 0; i < list->count; i++) {
        const vn_conf_node *item = list->items[i];
        s2s_peer_entry e = {.peer.line = item->line};
        unsigned errors_before = ld->errors;

        if (item->type != VN_NODE_MAP) {
            fail(ld, item->line, "s2s_peers: each entry is a map with at least 'domain'");
            continue;
        }
        load_map(ld, item, "s2s_peers", s2s_peer_fields, &e);
        char *domain = e.peer.domain ? vn_jid_prep_domain(e.peer.domain) : NULL;
        if (!e.peer.domain)
            fail(ld, item->line, "s2s_peers: 'domain' is required");
        else if (!domain)
            fail(ld, key_line(item, "domain"), "s2s_peers: '%s' is not a valid domain name",
                 e.peer.domain);
        free(e.peer.domain);
        e.peer.domain = domain;
        e.peer.direct_tls = e.tls && strcmp(e.tls, "direct") == 0;
        free(e.tls);
        if (domain && vn_config_s2s_peer(cfg, domain))
            fail(ld, item->line, "s2s_peers: duplicate domain '%s' (first at line %d)", domain,
                 vn_config_s2s_peer(cfg, domain)->line);
        if (ld->errors != errors_before) {
            s2s_peer_free(&e.peer);
            continue;
        }
        cfg->s2s_peers[cfg->n_s2s_peers++] = e.peer;
    }
}

/* Peers without their own require_valid_certificate take s2s's, which
 * may come later in the file. */
static void finish_s2s_peers(loader *ld, const vn_conf_node *root)
{
    const vn_conf_node *list = vn_conf_map_get(root, "s2s_peers");
    vn_config *cfg = ld->cfg;

    for (size_t i = 0; list && list->type == VN_NODE_SEQ && i < list->count; i++) {
        const vn_conf_node *item = list->items[i];
        for (size_t p = 0; p < cfg->n_s2s_peers; p++)
            if (cfg->s2s_peers[p].line == item->line &&
                !vn_conf_map_get(item, "require_valid_certificate"))
                cfg->s2s_peers[p].require_valid_certificate = cfg->s2s_require_valid_certificates;
    }
}

/* A component's domain is not a host, and it is listed under a host. */
static void finish_components(loader *ld, const vn_conf_node *root)
{
    vn_config *cfg = ld->cfg;

    for (size_t i = 0; i < cfg->n_components; i++) {
        vn_component_conf *c = &cfg->components[i];
        if (vn_config_host(cfg, c->domain))
            fail(ld, c->line, "components: '%s' is also in hosts", c->domain);
        if (c->host) {
            char *host = vn_jid_prep_domain(c->host);
            if (!host || !vn_config_host(cfg, host))
                fail(ld, c->line, "components: host '%s' is not in hosts", c->host);
            free(c->host);
            c->host = host;
            continue;
        }
        /* The host it is a subdomain of, else the first one. */
        for (size_t h = 0; h < cfg->n_hosts && !c->host; h++) {
            size_t dl = strlen(c->domain), hl = strlen(cfg->hosts[h].name);
            if (dl > hl + 1 && c->domain[dl - hl - 1] == '.' &&
                strcmp(c->domain + dl - hl, cfg->hosts[h].name) == 0)
                c->host = vn_strdup(cfg->hosts[h].name);
        }
        if (!c->host && cfg->n_hosts)
            c->host = vn_strdup(cfg->hosts[0].name);
    }
}

/* What depends on more than one key, or on a key being absent. */
static void finish(loader *ld, const vn_conf_node *root)
{
    vn_config *cfg = ld->cfg;
    const vn_conf_node *tls = vn_conf_map_get(root, "tls");

    if (!vn_conf_map_get(root, "hosts"))
        fail(ld, root->line, "missing required key 'hosts'");
    if (!cfg->tls_cert != !cfg->tls_key)
        fail(ld, key_line(tls, cfg->tls_cert ? "certificate" : "key"),
             "tls: 'certificate' and 'key' must be given together");
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (vn_listener_gost(&cfg->listeners[i]) && (!cfg->tls_gost_cert || !cfg->tls_gost_key)) {
            fail(ld, cfg->listeners[i].line,
                 "listeners: tls_profile gost needs tls.gost_certificate and tls.gost_key "
                 "(a GOST R 34.10-2012 certificate; doc/crypto.md)");
            break;
        }
    }
    if (!vn_conf_map_get(root, "listeners")) {
        static const vn_listener_conf standard[] = {
            {VN_LISTEN_C2S, NULL, 5222, 0, NULL},
            {VN_LISTEN_C2S_TLS, NULL, 5223, 0, NULL},
        };
        size_t n = sizeof standard / sizeof standard[0];
        cfg->listeners = vn_alloc(sizeof standard);
        for (size_t i = 0; i < n; i++) {
            cfg->listeners[i] = standard[i];
            cfg->listeners[i].address = vn_strdup("::");
        }
        cfg->n_listeners = n;
    }
    if (!vn_conf_map_get(root, "modules")) {
        size_t n = sizeof default_modules / sizeof default_modules[0];
        cfg->modules = vn_alloc(n * sizeof *cfg->modules);
        for (size_t i = 0; i < n; i++)
            cfg->modules[i] = (vn_module_conf){.name = vn_strdup(default_modules[i])};
        cfg->n_modules = n;
    }
    const vn_conf_node *http = vn_conf_map_get(root, "http");
    if (cfg->websocket_path[0] != '/')
        fail(ld, key_line(http, "websocket_path"), "http: 'websocket_path' must start with '/'");
    if (cfg->bosh_path[0] != '/')
        fail(ld, key_line(http, "bosh_path"), "http: 'bosh_path' must start with '/'");
    const vn_conf_node *limits = vn_conf_map_get(root, "limits");
    if (cfg->login_backoff_max < cfg->login_backoff)
        fail(ld, key_line(limits, "login_backoff_max"),
             "limits: 'login_backoff_max' must not be less than 'login_backoff'");
    if (!cfg->admin_socket)
        cfg->admin_socket = vn_asprintf("%s/admin.sock", cfg->data_dir);
    const vn_conf_node *cluster = vn_conf_map_get(root, "cluster");
    if (cfg->cluster_enabled && !cfg->cluster_node_id)
        fail(ld, key_line(cluster, "enabled"), "cluster: 'node_id' is required when enabled");
    if (cfg->cluster_node_id && strpbrk(cfg->cluster_node_id, ".*> \t"))
        fail(ld, key_line(cluster, "node_id"),
             "cluster: 'node_id' may not contain '.', '*', '>' or spaces (a NATS subject token)");
    if (cfg->cluster_node_timeout_ms <= cfg->cluster_heartbeat_ms)
        fail(ld, key_line(cluster, "node_timeout_ms"),
             "cluster: 'node_timeout_ms' must be more than 'heartbeat_ms'");
    finish_components(ld, root);
    finish_s2s_peers(ld, root);
}

vn_config *vn_config_load(const char *path, vn_buf *err)
{
    vn_conf_node *root = vn_conf_parse_file(path, err);
    if (!root)
        return NULL;

    vn_config *cfg = config_new(path);
    loader ld = {.cfg = cfg, .file = path, .err = err};

    cfg->root = root;
    if (root->type != VN_NODE_MAP) {
        fail(&ld, root->line, "the configuration must be a map of keys, starting with 'hosts'");
    } else {
        load_map(&ld, root, NULL, top_fields, cfg);
        finish(&ld, root);
    }
    if (ld.errors) {
        vn_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void vn_config_free(vn_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_hosts; i++)
        host_free(&cfg->hosts[i]);
    free(cfg->hosts);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        listener_free(&cfg->listeners[i]);
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->n_modules; i++)
        free(cfg->modules[i].name);
    free(cfg->modules);
    for (size_t i = 0; i < cfg->n_components; i++)
        component_free(&cfg->components[i]);
    free(cfg->components);
    for (size_t i = 0; i < cfg->n_s2s_allow; i++)
        free(cfg->s2s_allow[i]);
    free(cfg->s2s_allow);
    for (size_t i = 0; i < cfg->n_s2s_deny; i++)
        free(cfg->s2s_deny[i]);
    free(cfg->s2s_deny);
    for (size_t i = 0; i < cfg->n_http_allowed_origins; i++)
        free(cfg->http_allowed_origins[i]);
    free(cfg->http_allowed_origins);
    for (size_t i = 0; i < cfg->n_s2s_peers; i++)
        s2s_peer_free(&cfg->s2s_peers[i]);
    free(cfg->s2s_peers);
    free(cfg->s2s_ca_file);
    free(cfg->data_dir);
    free(cfg->store_backend);
    free(cfg->store_pg_conninfo);
    free(cfg->cluster_node_id);
    free(cfg->cluster_nats_url);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->tls_gost_cert);
    free(cfg->tls_gost_key);
    free(cfg->tls_ciphers);
    free(cfg->tls_ciphersuites);
    free(cfg->websocket_path);
    free(cfg->bosh_path);
    free(cfg->admin_socket);
    free(cfg->module_path);
    free(cfg->language);
    free(cfg->allow_outbound);
    free(cfg->locale_dir);
    vn_conf_node_free(cfg->root);
    free(cfg->path);
    free(cfg);
}

const vn_host_conf *vn_config_host(const vn_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_hosts; i++)
        if (strcmp(cfg->hosts[i].name, name) == 0)
            return &cfg->hosts[i];
    return NULL;
}

const vn_module_conf *vn_config_module(const vn_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_modules; i++)
        if (strcmp(cfg->modules[i].name, name) == 0)
            return &cfg->modules[i];
    return NULL;
}

const vn_s2s_peer_conf *vn_config_s2s_peer(const vn_config *cfg, const char *domain)
{
    for (size_t i = 0; i < cfg->n_s2s_peers; i++)
        if (strcmp(cfg->s2s_peers[i].domain, domain) == 0)
            return &cfg->s2s_peers[i];
    return NULL;
}
