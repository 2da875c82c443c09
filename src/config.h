/*
 * config.h - the server configuration, loaded from YAML and validated.
 *
 * Every key of the file is listed and documented in conf/vestnik.yaml. The
 * loader rejects unknown keys and wrong types with "file:line: message".
 * Module options are kept as a tree and validated against each module's
 * declared keys once it is loaded (see modload.c).
 */
#ifndef VESTNIK_CONFIG_H
#define VESTNIK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "conf_tree.h"
#include "vestnik/log.h"
#include "vestnik/util.h"

typedef enum {
    VN_LISTEN_C2S,       /* client-to-server, STARTTLS (5222) */
    VN_LISTEN_C2S_TLS,   /* client-to-server, direct TLS, XEP-0368 (5223) */
    VN_LISTEN_HTTP,      /* HTTP: upload, WebSocket, BOSH, /health (5280) */
    VN_LISTEN_HTTPS,     /* the same over direct TLS (5281) */
    VN_LISTEN_COMPONENT, /* external components, XEP-0114 (5347) */
    VN_LISTEN_S2S,       /* server-to-server, STARTTLS (5269) */
    VN_LISTEN_S2S_TLS,   /* server-to-server, direct TLS, XEP-0368 (5270) */
} vn_listener_type;

typedef struct vn_listener_conf {
    vn_listener_type type;
    char *address; /* default "::" (dual stack) */
    int port;
    int line;
    char *tls_profile; /* NULL or "standard"; "gost": GOST TLS (tls_gost.c) */
} vn_listener_conf;

typedef struct vn_host_conf {
    char *name;      /* normalised domain */
    char *cert_file; /* NULL: tls.certificate, else generated */
    char *key_file;
    char *language; /* texts for readers without a known language; NULL: `language` */
    int line;
} vn_host_conf;

typedef struct vn_component_conf {
    char *domain; /* normalised; served by the component, not a local host */
    char *secret; /* the handshake's shared secret */
    char *host;   /* the local host whose disco#items list it */
    char *name;   /* for disco#items; may be NULL */
    int line;
} vn_component_conf;

/* A remote domain with its own federation settings (s2s_peers). */
typedef struct vn_s2s_peer_conf {
    char *domain;                   /* normalised */
    char *address;                  /* host name or IP to connect to; NULL: DNS SRV */
    int port;                       /* 0: 5269, or 5270 with direct TLS */
    bool direct_tls;                /* XEP-0368 direct TLS instead of STARTTLS */
    bool require_valid_certificate; /* else dialback may stand in */
    int line;
} vn_s2s_peer_conf;

typedef struct vn_module_conf {
    char *name;
    const vn_conf_node *options; /* map or NULL; points into config->root */
    int line;
} vn_module_conf;

typedef struct vn_config {
    char *path;
    vn_conf_node *root;

    vn_host_conf *hosts;
    size_t n_hosts;
    vn_listener_conf *listeners;
    size_t n_listeners;

    char *data_dir;      /* store, generated certificates, admin socket */
    char *store_backend; /* "lmdb" or "postgresql" */
    size_t store_map_size_mb;
    char *store_pg_conninfo; /* NULL: libpq's defaults */
    unsigned store_pg_read_timeout_ms, store_pg_write_timeout_ms, store_pg_snapshot_max_age_ms;
    unsigned store_pg_read_cache_kb;

    bool cluster_enabled;   /* route through NATS with other nodes (cluster.c) */
    char *cluster_node_id;  /* this node's name in the cluster; required when enabled */
    char *cluster_nats_url; /* libnats server list, comma-separated */
    unsigned cluster_heartbeat_ms, cluster_node_timeout_ms;

    vn_log_level log_level;
    bool log_syslog;

    char *tls_cert; /* default certificate for hosts without their own */
    char *tls_key;
    char *tls_ciphers;      /* TLS 1.2 cipher list */
    char *tls_ciphersuites; /* TLS 1.3 suites */
    char *tls_gost_cert;    /* GOST R 34.10-2012 certificate for tls_profile: gost */
    char *tls_gost_key;

    bool require_encryption;  /* c2s: STARTTLS before anything else */
    bool allow_plain;         /* SASL PLAIN (only ever over TLS) */
    bool web_channel_binding; /* offer SCRAM-*-PLUS on WebSocket and BOSH too */
    unsigned scram_iterations;
    bool sasl2;                   /* offer XEP-0388 SASL2 (with Bind 2 and FAST) */
    unsigned fast_token_lifetime; /* seconds a FAST token is valid; 0: no FAST */
    unsigned fast_rotate_after;   /* token age (s) at which a FAST login gets a new one */
    unsigned fast_max_tokens;     /* FAST tokens (client instances) per account */

    size_t max_stanza_size;      /* bytes */
    unsigned max_xml_depth;      /* element nesting inside a stanza */
    size_t max_output_buffer;    /* bytes queued to a slow reader */
    unsigned handshake_timeout;  /* seconds until a stream must be authenticated */
    unsigned keepalive_interval; /* seconds of silence before a whitespace ping */
    unsigned idle_timeout;       /* seconds of silence before the stream is closed */
    unsigned resume_timeout;     /* seconds a dropped SM session waits for resumption */
    size_t max_unacked;          /* unacknowledged stanzas kept per SM session */

    /* limits: abuse handling (abuse_limits.c); 0 turns a count limit off */
    unsigned max_connections_per_ip;    /* open client connections per address */
    unsigned login_max_failures;        /* wrong credentials before a back-off */
    unsigned login_failure_window;      /* seconds over which failures count */
    unsigned login_backoff;             /* seconds of the first back-off; doubles */
    unsigned login_backoff_max;         /* seconds, the longest back-off */
    unsigned login_range_max_failures;  /* wrong credentials from an IPv4 /24 before a back-off */
    unsigned login_known_addresses;     /* successful addresses remembered per account */
    unsigned login_known_address_ttl;   /* seconds an address stays known */
    unsigned stanza_rate;               /* stanzas per second per stream */
    unsigned stanza_burst;              /* stanzas a stream may send at once */
    unsigned max_resources_per_account; /* bound resources per account */

    /* limits: load shaping (shaper.c) of the other stream types, and when
     * a stream over its rate is closed */
    unsigned s2s_stanza_rate, s2s_stanza_burst;
    unsigned component_stanza_rate, component_stanza_burst;
    unsigned component_queue_max; /* stanzas kept for an absent component */
    unsigned max_throttle_time;   /* seconds over the rate without a break; 0: never */

    size_t http_max_header_size;     /* request line and headers, bytes */
    size_t http_max_body_size;       /* bodies the server buffers for a route */
    unsigned http_request_timeout;   /* seconds for the headers, and between body reads */
    unsigned http_keepalive_timeout; /* seconds an idle keep-alive connection stays open */
    char *websocket_path;            /* XMPP over WebSocket (RFC 7395) */
    char *bosh_path;                 /* XMPP over BOSH (XEP-0206) */
    unsigned bosh_max_wait;          /* seconds a BOSH request may be held */
    unsigned bosh_max_hold;          /* BOSH requests held at once per session */
    unsigned bosh_inactivity;        /* seconds a BOSH session lives with no request */
    bool http_metrics;               /* serve /metrics (http_metrics.c) */
    bool http_origins_restricted;    /* http.allowed_origins is a list, not "*" */
    char **http_allowed_origins;     /* lower-cased "scheme://host[:port]" */
    size_t n_http_allowed_origins;

    vn_component_conf *components;
    size_t n_components;

    bool s2s_require_encryption;         /* STARTTLS or direct TLS on every s2s stream */
    bool s2s_require_valid_certificates; /* no dialback in place of a valid certificate */
    bool s2s_dialback;                   /* offer and use XEP-0220 */
    char *s2s_ca_file;                   /* extra trust anchors (PEM), besides the system's */
    unsigned s2s_connect_timeout;        /* seconds to resolve, connect and authenticate */
    size_t s2s_queue_max;                /* stanzas waiting per remote domain */
    unsigned s2s_idle_timeout;           /* seconds before an unused outgoing stream closes */
    unsigned s2s_incoming_idle_timeout;  /* seconds of silence before an incoming one closes */
    size_t s2s_max_streams_per_domain;   /* authenticated incoming streams per remote domain */
    char **s2s_allow;                    /* if non-empty, the only remote domains */
    size_t n_s2s_allow;
    char **s2s_deny; /* remote domains refused */
    size_t n_s2s_deny;
    vn_s2s_peer_conf *s2s_peers;
    size_t n_s2s_peers;

    char *allow_outbound; /* network.allow_outbound: "all", "federation" or "none" */

    char *language;   /* default language of texts for people (i18n.c) */
    char *locale_dir; /* where the gettext catalogs are; NULL: LOCALEDIR */

    char *admin_socket;
    char *module_path;
    vn_module_conf *modules;
    size_t n_modules;
} vn_config;

/* A listener with tls_profile: gost. */
bool vn_listener_gost(const vn_listener_conf *l);

/* Load and validate; NULL on failure, with every problem found appended to
 * err as a "file:line: message\n" line. */
vn_config *vn_config_load(const char *path, vn_buf *err);
void vn_config_free(vn_config *cfg);
/* name in canonical form (as vn_jid_prep_domain returns it). */
const vn_host_conf *vn_config_host(const vn_config *cfg, const char *name);
const vn_module_conf *vn_config_module(const vn_config *cfg, const char *name);
/* The s2s_peers entry for a normalised domain, or NULL. */
const vn_s2s_peer_conf *vn_config_s2s_peer(const vn_config *cfg, const char *domain);

#endif
