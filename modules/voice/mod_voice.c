/*
 * mod_voice.c - the conference bridge: every chat room can be called.
 *
 * Each host's rooms get a call contact at <room>@<domain_prefix>.<host>
 * (xeps/room-calls.md): members of the room find it in their
 * roster, with presence and caps that make Conversations, Dino and Monal
 * offer their ordinary call button, and whoever calls it joins the room's
 * call, mixed by the media engine (media.h) on a thread of its own.
 *
 * This file owns the module's configuration, starts and stops the engine,
 * and takes the stanzas for the call domains from the "route/remote" hook
 * (as mod_muc takes conference.<host>'s), handing each to the file that
 * deals with it: contact.c (discovery, presence, roster items) or call.c
 * (JMI, Jingle, moderation).
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voice.h"

#define ROUTE_PRIORITY 90

/* Comma- or space-separated IPv4/IPv6 literals, at most VC_MAX_ADDRESSES. */
static const char *check_addresses(const char *value)
{
    char *copy = vn_strdup(value), *save = NULL;
    const char *problem = NULL;
    size_t count = 0;
    for (char *a = strtok_r(copy, ", ", &save); a && !problem; a = strtok_r(NULL, ", ", &save)) {
        unsigned char buf[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, a, buf) != 1 && inet_pton(AF_INET6, a, buf) != 1)
            problem = "names something that is not an IPv4 or IPv6 address";
        else if (++count > VC_MAX_ADDRESSES)
            problem = "names more than 8 addresses";
    }
    free(copy);
    return problem;
}

static const vn_config_key voice_keys[] = {
    {.name = "domain_prefix", .type = VN_CONF_STRING, .default_value = "call"},
    /* Empty: every address of the machine's interfaces. */
    {.name = "addresses", .type = VN_CONF_STRING, .default_value = "", .check = check_addresses},
    /* Empty, or one address per entry of addresses: what callers are told
     * instead (1:1 NAT: bound on a private address, reached on a public one). */
    {.name = "public_addresses",
     .type = VN_CONF_STRING,
     .default_value = "",
     .check = check_addresses},
    {.name = "port_min", .type = VN_CONF_INT, .default_value = "40000", .min = 1024, .max = 65535},
    {.name = "port_max", .type = VN_CONF_INT, .default_value = "40999", .min = 1024, .max = 65535},
    {.name = "max_participants",
     .type = VN_CONF_INT,
     .default_value = "100",
     .min = 2,
     .max = 1000},
    {.name = "max_calls", .type = VN_CONF_INT, .default_value = "100", .min = 1, .max = 100000},
    {.name = "max_legs", .type = VN_CONF_INT, .default_value = "1000", .min = 2, .max = 100000},
    {.name = "bitrate", .type = VN_CONF_INT, .default_value = "32000", .min = 6000, .max = 510000},
    {.name = "max_speakers", .type = VN_CONF_INT, .default_value = "3", .min = 1, .max = 16},
    {.name = "connect_timeout", .type = VN_CONF_INT, .default_value = "15", .min = 1, .max = 300},
    {.name = "consent_timeout", .type = VN_CONF_INT, .default_value = "30", .min = 5, .max = 300},
    {.name = "jitter_max_ms", .type = VN_CONF_INT, .default_value = "200", .min = 20, .max = 2000},
    {.name = NULL},
};

static struct {
    const vn_module *module;
    vc_engine *engine;
    char *bound[VC_MAX_ADDRESSES]; /* addresses with a public_addresses entry */
    char *advertised[VC_MAX_ADDRESSES];
    size_t n_advertised;
    voice_limits limits;
    voice_domain *domains;
    size_t domain_count;
} voice;

const voice_domain *voice_domain_of(const char *domain)
{
    for (size_t i = 0; domain && i < voice.domain_count; i++)
        if (strcmp(voice.domains[i].domain, domain) == 0)
            return &voice.domains[i];
    return NULL;
}

const voice_domain *voice_domain_of_host(const char *host)
{
    for (size_t i = 0; host && i < voice.domain_count; i++)
        if (strcmp(voice.domains[i].host, host) == 0)
            return &voice.domains[i];
    return NULL;
}

const voice_domain *voice_domain_at(size_t i)
{
    return i < voice.domain_count ? &voice.domains[i] : NULL;
}

void voice_advertise(char *ip, size_t size)
{
    for (size_t i = 0; i < voice.n_advertised; i++)
        if (strcmp(voice.bound[i], ip) == 0) {
            snprintf(ip, size, "%s", voice.advertised[i]);
            return;
        }
}

const voice_limits *voice_limits_get(void)
{
    return &voice.limits;
}

vc_engine *voice_engine(void)
{
    return voice.engine;
}

const vn_module *voice_module(void)
{
    return voice.module;
}

char *voice_contact_bare(const voice_domain *dom, const char *local)
{
    return vn_asprintf("%s@%s", local, dom->domain);
}

char *voice_contact_full(const voice_domain *dom, const char *local)
{
    return vn_asprintf("%s@%s/%s", local, dom->domain, VOICE_RESOURCE);
}

void voice_iq_error(const vn_stanza *iq, const char *type, const char *condition,
                    const char *jingle_condition, const char *text)
{
    vn_stanza *reply = vn_stanza_error_reply(iq, type, condition, text);
    if (!reply)
        return;
    /* Only the error goes back: an offer echoed to its sender is noise. */
    for (vn_stanza *c = vn_stanza_first_element(reply), *next; c; c = next) {
        next = vn_stanza_next_element(c);
        if (!vn_stanza_is(c, "error", NULL))
            vn_stanza_remove(c);
    }
    if (jingle_condition)
        vn_stanza_add_child(vn_stanza_child(reply, "error", NULL), jingle_condition,
                            NS_JINGLE_ERRORS);
    vn_route(reply);
}

/* ---- dispatch ---- */

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

static void domain_iq(const voice_domain *dom, vn_event *ev)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const vn_stanza *payload = vn_stanza_first_element(ev->stanza);
    if (!is_type(type, "get") && !is_type(type, "set"))
        return;
    if (is_type(type, "get") && vn_stanza_is(payload, "query", NS_DISCO_INFO) &&
        !vn_stanza_attr(payload, "node")) {
        vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
        vn_stanza *query = vn_stanza_add_child(reply, "query", NS_DISCO_INFO);
        vn_stanza *identity = vn_stanza_add_child(query, "identity", NS_DISCO_INFO);
        vn_stanza_set_attr(identity, "category", "component");
        vn_stanza_set_attr(identity, "type", "generic");
        vn_stanza_set_attr(identity, "name",
                           vn_tr(vn_stanza_attr(ev->stanza, "xml:lang"), N_("Room calls")));
        vn_stanza_set_attr(vn_stanza_add_child(query, "feature", NS_DISCO_INFO), "var",
                           NS_DISCO_INFO);
        vn_stanza_set_attr(vn_stanza_add_child(query, "feature", NS_DISCO_INFO), "var", NS_CALL);
        vn_route(reply);
    } else if (is_type(type, "get") && vn_stanza_is(payload, "ping", NS_PING)) {
        vn_route(vn_stanza_iq_result(ev->stanza));
    } else {
        voice_iq_error(ev->stanza, "cancel", "service-unavailable", NULL, NULL);
    }
    (void)dom;
}

static void contact_iq(const voice_domain *dom, vn_event *ev)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const vn_stanza *payload = vn_stanza_first_element(ev->stanza);

    if (!is_type(type, "get") && !is_type(type, "set")) {
        voice_call_result(dom, ev);
        return;
    }
    if (ev->to->resource && strcmp(ev->to->resource, VOICE_RESOURCE) != 0) {
        voice_iq_error(ev->stanza, "cancel", "service-unavailable", NULL, NULL);
        return;
    }
    if (is_type(type, "set") && vn_stanza_is(payload, "jingle", NS_JINGLE))
        voice_call_jingle(dom, ev);
    else if (is_type(type, "set") && payload && vn_stanza_ns(payload) &&
             strcmp(vn_stanza_ns(payload), NS_CALL) == 0)
        voice_call_moderate(dom, ev, payload);
    else
        voice_contact_iq(dom, ev);
}

static void dispatch(const voice_domain *dom, vn_event *ev)
{
    const char *name = vn_stanza_name(ev->stanza);
    const char *type = vn_stanza_attr(ev->stanza, "type");

    if (strcmp(name, "iq") == 0) {
        if (ev->to->local)
            contact_iq(dom, ev);
        else
            domain_iq(dom, ev);
    } else if (strcmp(name, "presence") == 0) {
        if (ev->to->local)
            voice_contact_presence(dom, ev);
    } else if (!is_type(type, "error")) {
        if (ev->to->local)
            voice_call_message(dom, ev);
        else
            vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
    }
}

static vn_hook_result voice_route(vn_event *ev, void *ud)
{
    const voice_domain *dom = ev->to ? voice_domain_of(ev->to->domain) : NULL;
    if (!dom)
        return VN_PASS;
    if (ev->from)
        dispatch(dom, ev);
    return VN_HANDLED;
}

/* ---- module ---- */

static void read_limits(const vn_module *m)
{
    voice.limits = (voice_limits){
        .max_participants = vn_module_config_int(m, "max_participants"),
        .max_calls = vn_module_config_int(m, "max_calls"),
    };
}

static void engine_config(const vn_module *m, vc_engine_config *cfg, char **addresses)
{
    *cfg = (vc_engine_config){0};
    char *save = NULL;
    for (char *a = strtok_r(*addresses, ", ", &save); a && cfg->n_addresses < VC_MAX_ADDRESSES;
         a = strtok_r(NULL, ", ", &save))
        cfg->addresses[cfg->n_addresses++] = a;
    cfg->port_min = (uint16_t)vn_module_config_int(m, "port_min");
    cfg->port_max = (uint16_t)vn_module_config_int(m, "port_max");
    cfg->max_legs = (unsigned)vn_module_config_int(m, "max_legs");
    cfg->max_legs_per_conf = (unsigned)vn_module_config_int(m, "max_participants");
    cfg->opus_bitrate = (unsigned)vn_module_config_int(m, "bitrate");
    cfg->max_speakers = (unsigned)vn_module_config_int(m, "max_speakers");
    cfg->connect_timeout_ms = (unsigned)vn_module_config_int(m, "connect_timeout") * 1000;
    cfg->consent_timeout_ms = (unsigned)vn_module_config_int(m, "consent_timeout") * 1000;
    cfg->jitter_max_ms = (unsigned)vn_module_config_int(m, "jitter_max_ms");
    vc_engine_config_defaults(cfg); /* what no key sets */
}

static void public_addresses_free(void)
{
    for (size_t i = 0; i < voice.n_advertised; i++) {
        free(voice.bound[i]);
        free(voice.advertised[i]);
    }
    voice.n_advertised = 0;
}

/* public_addresses pairs with addresses entry by entry. */
static bool map_public_addresses(const vn_module *m, const vc_engine_config *cfg)
{
    char *list = vn_strdup(vn_module_config_string(m, "public_addresses")), *save = NULL;
    size_t n = 0;
    for (char *a = strtok_r(list, ", ", &save); a; a = strtok_r(NULL, ", ", &save), n++)
        if (n < cfg->n_addresses && n < VC_MAX_ADDRESSES) {
            voice.bound[n] = vn_strdup(cfg->addresses[n]);
            voice.advertised[n] = vn_strdup(a);
            voice.n_advertised = n + 1;
        }
    free(list);
    if (n > 0 && n != cfg->n_addresses) {
        vn_log_error("voice: public_addresses needs one address for each of addresses");
        public_addresses_free();
        return false;
    }
    return true;
}

static void domains_free(void)
{
    for (size_t i = 0; i < voice.domain_count; i++) {
        vn_disco_remove_item(voice.domains[i].host, voice.domains[i].domain);
        free(voice.domains[i].domain);
        free(voice.domains[i].host);
    }
    free(voice.domains);
    voice.domains = NULL;
    voice.domain_count = 0;
}

/* libsrtp2 keeps what srtp_init() set up (its crypto kernel) for the whole
 * process; unmapped with this module, that memory would be left with
 * nothing pointing to it. It stays loaded once used. */
static void keep_srtp_loaded(void)
{
    if (!dlopen("libsrtp2.so.1", RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE))
        vn_log_debug("voice: libsrtp2.so.1 is not loaded under that name");
}

static int voice_load(vn_module *m)
{
    voice.module = m;
    keep_srtp_loaded();
    read_limits(m);
    if (vn_module_config_int(m, "port_max") < vn_module_config_int(m, "port_min")) {
        vn_log_error("voice: port_max is below port_min");
        return -1;
    }

    const char *prefix = vn_module_config_string(m, "domain_prefix");
    const char *const *hosts = vn_local_hosts();
    for (size_t i = 0; hosts[i]; i++) {
        char *domain = vn_asprintf("%s.%s", prefix, hosts[i]);
        char *normalized = vn_jid_prep_domain(domain);
        free(domain);
        if (!normalized || vn_is_local_host(normalized)) {
            vn_log_error("voice: %s.%s cannot be a call domain", prefix, hosts[i]);
            free(normalized);
            continue;
        }
        voice.domains = vn_realloc(voice.domains, (voice.domain_count + 1) * sizeof *voice.domains);
        voice.domains[voice.domain_count++] =
            (voice_domain){.domain = normalized, .host = vn_strdup(hosts[i])};
        vn_disco_add_item(hosts[i], normalized, N_("Room calls"));
    }

    vc_engine_config cfg;
    char *addresses = vn_strdup(vn_module_config_string(m, "addresses"));
    engine_config(m, &cfg, &addresses);
    if (!map_public_addresses(m, &cfg)) {
        free(addresses);
        domains_free();
        return -1;
    }
    char err[256] = "";
    voice.engine =
        vc_engine_start(&cfg, vn_server_loop(), voice_call_engine_event, NULL, err, sizeof err);
    free(addresses);
    if (!voice.engine) {
        vn_log_error("voice: the media engine did not start: %s", err);
        public_addresses_free();
        domains_free();
        return -1;
    }
    vn_log_info("voice: media engine on UDP ports %u-%u, rooms callable at %s.<host>",
                (unsigned)cfg.port_min, (unsigned)cfg.port_max, prefix);

    vn_hook_add("route/remote", ROUTE_PRIORITY, voice_route, m);
    voice_contact_start(m);
    voice_calls_start(m);
    return 0;
}

static void voice_unload(vn_module *m)
{
    vn_hook_remove("route/remote", voice_route, m);
    voice_calls_stop();
    voice_contact_stop(m);
    vc_engine_stop(voice.engine);
    voice.engine = NULL;
    public_addresses_free();
    domains_free();
}

static void voice_reload(vn_module *m)
{
    read_limits(m);
}

VN_MODULE("voice",
          "Calls to chat rooms: a conference bridge (Jingle RTP, Opus, ICE-lite, DTLS-SRTP)",
          voice_keys, voice_load, voice_unload, voice_reload);
