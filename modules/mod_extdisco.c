/*
 * mod_extdisco.c - External Service Discovery (XEP-0215,
 * urn:xmpp:extdisco:2) for STUN and TURN.
 *
 * Clients making calls ask the server for their STUN and TURN servers. The
 * services are configured once and offered on every host. TURN credentials
 * follow the TURN REST scheme coturn and others implement
 * (use-auth-secret): the username is "<expiry unix time>:<bare JID>", the
 * password base64(HMAC-SHA1(shared secret, username)), so the TURN server
 * checks them with the secret alone and they stop working at the expiry.
 *
 * Each service is offered once per configured transport, with the
 * 'transport' attribute, which Conversations needs (it ignores an entry
 * without one); TURN over TLS ("turns", turns_port) once, over tcp. The
 * TURN server is coturn beside vestnik (doc/voice.md): `vestnikctl
 * turn-config` writes its configuration with the same secret.
 *
 * Only the server's own users get services: TURN relays cost bandwidth.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vestnik/module.h>

#define NS_EXTDISCO "urn:xmpp:extdisco:2"

/* The transports option: udp and tcp, comma- or space-separated, at
 * least one. */
static const char *check_transports(const char *value)
{
    char *transports = vn_strdup(value);
    char *save = NULL;
    size_t count = 0;
    bool valid = true;

    for (char *t = strtok_r(transports, ", ", &save); t && valid; t = strtok_r(NULL, ", ", &save)) {
        valid = strcmp(t, "udp") == 0 || strcmp(t, "tcp") == 0;
        count++;
    }
    free(transports);
    if (!valid)
        return "names a transport other than udp and tcp";
    return count ? NULL : "must name at least one of udp, tcp";
}

static const vn_config_key extdisco_keys[] = {
    /* Empty: no STUN service. */
    {.name = "stun_host", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "stun_port", .type = VN_CONF_INT, .default_value = "3478", .min = 1, .max = 65535},
    /* Empty host or secret: no TURN service. */
    {.name = "turn_host", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "turn_port", .type = VN_CONF_INT, .default_value = "3478", .min = 1, .max = 65535},
    {.name = "turn_secret", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "turn_ttl", .type = VN_CONF_INT, .default_value = "86400", .min = 60, .max = 31536000},
    /* TURN over TLS on turn_host (0: not offered). */
    {.name = "turns_port", .type = VN_CONF_INT, .default_value = "5349", .min = 0, .max = 65535},
    /* Comma-separated, each udp or tcp. */
    {.name = "transports",
     .type = VN_CONF_STRING,
     .default_value = "udp,tcp",
     .check = check_transports},
    {.name = NULL},
};

typedef struct service_request {
    const vn_module *m;
    const vn_jid *user;
    const char *type; /* only this type, or NULL */
    const char *host; /* only this host, or NULL */
    bool credentials; /* a TURN service comes with username and password */
    vn_stanza *parent;
    size_t added;
} service_request;

/* ---- TURN REST credentials ---- */

static void format_iso_time(time_t when, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* password = base64(HMAC-SHA1(secret, username)); false on an OpenSSL failure. */
static bool turn_password(const char *secret, const char *username, char *out, size_t size)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    if (!HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)username,
              strlen(username), digest, &digest_len))
        return false;
    if (size < 4 * ((digest_len + 2) / 3) + 1)
        return false;
    EVP_EncodeBlock((unsigned char *)out, digest, (int)digest_len);
    return true;
}

static bool add_turn_credentials(const service_request *req, vn_stanza *service)
{
    const char *secret = vn_module_config_string(req->m, "turn_secret");
    time_t expiry = (time_t)(vn_now_us() / 1000000) + vn_module_config_int(req->m, "turn_ttl");
    char *username = vn_asprintf("%lld:%s", (long long)expiry, req->user->bare);
    char password[64], expires[32];

    bool ok = turn_password(secret, username, password, sizeof password);
    if (ok) {
        format_iso_time(expiry, expires, sizeof expires);
        vn_stanza_set_attr(service, "username", username);
        vn_stanza_set_attr(service, "password", password);
        vn_stanza_set_attr(service, "expires", expires);
        vn_stanza_set_attr(service, "restricted", "1");
    } else {
        vn_log_error("extdisco: cannot compute a TURN password");
    }
    free(username);
    return ok;
}

/* ---- the service list ---- */

static bool wanted(const service_request *req, const char *type, const char *host)
{
    return (!req->type || strcmp(req->type, type) == 0) &&
           (!req->host || strcmp(req->host, host) == 0);
}

static void add_one(service_request *req, const char *type, const char *host, const char *port,
                    const char *transport)
{
    vn_stanza *service = vn_stanza_add_child(req->parent, "service", NS_EXTDISCO);
    vn_stanza_set_attr(service, "type", type);
    vn_stanza_set_attr(service, "host", host);
    vn_stanza_set_attr(service, "port", port);
    vn_stanza_set_attr(service, "transport", transport);
    if (strcmp(type, "stun") != 0 && !add_turn_credentials(req, service)) {
        vn_stanza_remove(service);
        return;
    }
    req->added++;
}

/* One <service/> per configured transport; "turns" only over tcp. */
static void add_service(service_request *req, const char *type, const char *host_key,
                        const char *port_key)
{
    const char *host = vn_module_config_string(req->m, host_key);
    long long port_number = vn_module_config_int(req->m, port_key);
    char port[16];

    if (!*host || port_number == 0 || !wanted(req, type, host))
        return;
    snprintf(port, sizeof port, "%lld", port_number);
    if (strcmp(type, "turns") == 0) {
        add_one(req, type, host, port, "tcp");
        return;
    }
    char *transports = vn_strdup(vn_module_config_string(req->m, "transports"));
    char *save = NULL;
    for (char *t = strtok_r(transports, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
        if (strcmp(t, "udp") == 0 || strcmp(t, "tcp") == 0) /* else reported at load */
            add_one(req, type, host, port, t);
    free(transports);
}

static void add_services(service_request *req)
{
    add_service(req, "stun", "stun_host", "stun_port");
    if (*vn_module_config_string(req->m, "turn_secret")) {
        add_service(req, "turn", "turn_host", "turn_port");
        add_service(req, "turns", "turn_host", "turns_port");
    }
}

/* ---- requests ---- */

static vn_hook_result extdisco_get(vn_event *ev, void *ud)
{
    const vn_stanza *request = vn_stanza_first_element(ev->stanza);
    const char *name = vn_stanza_name(request);
    service_request req = {.m = ud, .user = ev->from};

    if (!ev->from->local || !vn_is_local_host(ev->from->domain)) {
        vn_route_error(ev->stanza, "auth", "forbidden", "Services are for this server's users");
        return VN_HANDLED;
    }
    if (strcmp(name, "services") == 0) {
        req.type = vn_stanza_attr(request, "type");
    } else if (strcmp(name, "credentials") == 0) {
        /* XEP-0215 §3.3: credentials for one service named by host and type. */
        const vn_stanza *service = vn_stanza_child(request, "service", NS_EXTDISCO);
        req.host = service ? vn_stanza_attr(service, "host") : NULL;
        req.type = service ? vn_stanza_attr(service, "type") : NULL;
        req.credentials = true;
        if (!req.host) {
            vn_route_error(ev->stanza, "modify", "bad-request", "Name a <service/> by its host");
            return VN_HANDLED;
        }
    } else {
        vn_route_error(ev->stanza, "modify", "bad-request",
                       "Expected <services/> or <credentials/>");
        return VN_HANDLED;
    }

    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    req.parent = vn_stanza_add_child(reply, name, NS_EXTDISCO);
    if (req.type && !req.credentials)
        vn_stanza_set_attr(req.parent, "type", req.type);
    add_services(&req);
    if (req.credentials && req.added == 0) {
        vn_stanza_free(reply);
        vn_route_error(ev->stanza, "cancel", "item-not-found", NULL);
        return VN_HANDLED;
    }
    vn_route(reply);
    return VN_HANDLED;
}

/* ---- module ---- */

static int extdisco_load(vn_module *m)
{
    vn_hook_add("iq-get/host/" NS_EXTDISCO, 0, extdisco_get, m);
    vn_disco_add_feature(NS_EXTDISCO);
    return 0;
}

static void extdisco_unload(vn_module *m)
{
    vn_hook_remove("iq-get/host/" NS_EXTDISCO, extdisco_get, m);
    vn_disco_remove_feature(NS_EXTDISCO);
}

VN_MODULE("extdisco", "External Service Discovery (XEP-0215): STUN and TURN", extdisco_keys,
          extdisco_load, extdisco_unload, NULL);
