/*
 * s2s.c - federation: outgoing routes per remote domain, the queue of
 * stanzas waiting for them, and the policy (allow/deny, encryption,
 * certificates) the streams consult.
 *
 * A route is created by the first stanza (or dialback verification) for a
 * remote domain. It resolves the domain (s2s_peers override, else DNS SRV
 * with A/AAAA fallback), tries each address of each target in order until
 * a stream reaches its features, and from then on authenticates each of
 * our domains that has stanzas waiting (piggybacking, XEP-0220 §4.3) and
 * sends them in order. One timer per route bounds the set-up
 * (s2s.connect_timeout: queued stanzas bounce with remote-server-timeout)
 * and then closes the stream after s2s.idle_timeout without traffic. When
 * no address works, the queue bounces with remote-server-not-found.
 */
#include "s2s.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

#include "outbound.h"
#include "resolver.h"
#include "s2s_internal.h"
#include "server.h"
#include "vestnik/module.h"

typedef struct queued {
    vn_stanza *st;
    char *local; /* the sender's domain: the pair it needs */
    struct queued *next;
} queued;

/* A verification to ask the remote's authoritative server. */
typedef struct verify_request {
    char *local, *remote, *stream_id, *key;
    struct verify_request *next;
} verify_request;

struct s2s_route {
    char *domain;
    s2s_stream *stream;
    queued *queue;
    size_t queued;
    verify_request *verifies;
    vn_resolve *lookup;
    vn_srv_record *targets; /* copies */
    size_t n_targets, next_target;
    struct sockaddr_storage *addrs;
    size_t n_addrs, next_addr;
    bool direct_tls; /* of the current target */
    char *last_error;
    uv_timer_t timer;
    UT_hash_handle hh;
};

static s2s_route *routes;
static bool started;

/* ---- policy ---- */

static bool in_list(char *const *list, size_t n, const char *domain)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], domain) == 0)
            return true;
    return false;
}

/* Local hosts, components, and services under a local host (MUC...). */
bool s2s_is_our_domain(const char *domain)
{
    const vn_config *cfg = vn_srv.cfg;
    size_t len = strlen(domain);

    if (vn_is_local_host(domain))
        return true;
    for (size_t i = 0; i < cfg->n_components; i++)
        if (strcmp(cfg->components[i].domain, domain) == 0)
            return true;
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        size_t hl = strlen(cfg->hosts[i].name);
        if (len > hl + 1 && domain[len - hl - 1] == '.' &&
            strcmp(domain + len - hl, cfg->hosts[i].name) == 0)
            return true;
    }
    return false;
}

bool s2s_remote_allowed(const char *domain)
{
    const vn_config *cfg = vn_srv.cfg;

    if (in_list(cfg->s2s_deny, cfg->n_s2s_deny, domain))
        return false;
    return cfg->n_s2s_allow == 0 || in_list(cfg->s2s_allow, cfg->n_s2s_allow, domain) ||
           vn_config_s2s_peer(cfg, domain) != NULL;
}

bool s2s_require_valid_certificate(const char *domain)
{
    const vn_s2s_peer_conf *peer = domain ? vn_config_s2s_peer(vn_srv.cfg, domain) : NULL;
    return peer ? peer->require_valid_certificate : vn_srv.cfg->s2s_require_valid_certificates;
}

bool s2s_require_encryption(void)
{
    return vn_srv.cfg->s2s_require_encryption;
}

bool s2s_dialback_enabled(void)
{
    return vn_srv.cfg->s2s_dialback;
}

/* ---- routes ---- */

static void start_resolve(s2s_route *r);

static void route_closed(uv_handle_t *h)
{
    s2s_route *r = h->data;
    free(r->domain);
    free(r);
}

static void clear_targets(s2s_route *r)
{
    for (size_t i = 0; i < r->n_targets; i++)
        free(r->targets[i].target);
    free(r->targets);
    r->targets = NULL;
    r->n_targets = r->next_target = 0;
    free(r->addrs);
    r->addrs = NULL;
    r->n_addrs = r->next_addr = 0;
}

static void verify_free(verify_request *v)
{
    free(v->local);
    free(v->remote);
    free(v->stream_id);
    free(v->key);
    free(v);
}

/* Forget a route with nothing left to do. */
static void route_release(s2s_route *r)
{
    if (r->stream || r->queue || r->verifies)
        return;
    HASH_DEL(routes, r);
    vn_resolve_cancel(r->lookup);
    clear_targets(r);
    free(r->last_error);
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, route_closed);
}

static void bounce_entry(queued *q, const char *condition)
{
    bool timeout = strcmp(condition, "remote-server-timeout") == 0;

    vn_route_error(q->st, timeout ? "wait" : "cancel", condition, NULL);
    vn_stanza_free(q->st);
    free(q->local);
    free(q);
}

/* Bounce what waits for local (NULL: everything). */
static size_t bounce_queue(s2s_route *r, const char *local, const char *condition)
{
    queued *q, *next;
    size_t n = 0;

    for (q = r->queue; q; q = next) {
        next = q->next;
        if (local && strcmp(q->local, local) != 0)
            continue;
        LL_DELETE(r->queue, q);
        r->queued--;
        bounce_entry(q, condition);
        n++;
    }
    return n;
}

/* Set-up failed for good: bounce, fail verifications, close, forget. */
static void route_fail(s2s_route *r, const char *condition, const char *why)
{
    vn_log_info("s2s out %s: failed: %s (bouncing %zu stanza(s) with %s)", r->domain, why,
                r->queued, condition);
    bounce_queue(r, NULL, condition);
    while (r->verifies) {
        verify_request *v = r->verifies;
        r->verifies = v->next;
        s2s_dialback_verify_failed(v->stream_id, v->local, v->remote);
        verify_free(v);
    }
    vn_resolve_cancel(r->lookup);
    r->lookup = NULL;
    clear_targets(r);
    if (r->stream) {
        s2s_stream *s = r->stream;
        r->stream = NULL;
        s->route = NULL;
        s2s_stream_close(s, NULL, NULL);
    }
    route_release(r);
}

static void arm_idle(s2s_route *r);

static void on_route_timer(uv_timer_t *t)
{
    s2s_route *r = t->data;

    if (r->queue || r->verifies || (r->stream && r->stream->pending)) {
        route_fail(r, "remote-server-timeout", "not connected and authenticated in time");
        return;
    }
    if (r->stream) {
        vn_log_info("s2s out %s: idle for %u s: closing", r->domain, vn_srv.cfg->s2s_idle_timeout);
        s2s_stream *s = r->stream;
        r->stream = NULL;
        s->route = NULL;
        s2s_stream_close(s, NULL, NULL);
    }
    route_release(r);
}

static void arm_setup(s2s_route *r)
{
    uv_timer_start(&r->timer, on_route_timer, (uint64_t)vn_srv.cfg->s2s_connect_timeout * 1000, 0);
}

static void arm_idle(s2s_route *r)
{
    if (vn_srv.cfg->s2s_idle_timeout)
        uv_timer_start(&r->timer, on_route_timer, (uint64_t)vn_srv.cfg->s2s_idle_timeout * 1000, 0);
    else
        uv_timer_stop(&r->timer);
}

static s2s_route *route_get(const char *domain)
{
    s2s_route *r = NULL;

    HASH_FIND_STR(routes, domain, r);
    if (r)
        return r;
    r = vn_alloc(sizeof *r);
    r->domain = vn_strdup(domain);
    uv_timer_init(vn_srv.loop, &r->timer);
    r->timer.data = r;
    HASH_ADD_KEYPTR(hh, routes, r->domain, strlen(r->domain), r);
    return r;
}

/* The local domain a new stream introduces itself as. */
static const char *first_local(const s2s_route *r)
{
    if (r->queue)
        return r->queue->local;
    if (r->verifies)
        return r->verifies->local;
    return vn_local_hosts()[0];
}

static void note_error(s2s_route *r, const char *error)
{
    free(r->last_error);
    r->last_error = vn_strdup(error);
}

static void try_next_target(s2s_route *r);

/* Connect to the next address of the current target, else move on. */
static void try_next_address(s2s_route *r)
{
    while (r->next_addr < r->n_addrs) {
        const struct sockaddr *addr = (const struct sockaddr *)&r->addrs[r->next_addr++];
        const vn_srv_record *t = &r->targets[r->next_target - 1];
        vn_log_info("s2s out %s: connecting to %s port %u (%s)", r->domain, t->target, t->port,
                    r->direct_tls ? "direct TLS" : "STARTTLS");
        r->stream = s2s_stream_connect(r, addr, r->direct_tls, first_local(r), r->domain);
        if (r->stream)
            return;
    }
    try_next_target(r);
}

static void on_addresses(void *ud, const struct sockaddr_storage *addrs, size_t n,
                         const char *error)
{
    s2s_route *r = ud;
    const vn_srv_record *t = &r->targets[r->next_target - 1];

    r->lookup = NULL;
    if (n == 0) {
        char *what = vn_asprintf("%s: %s", t->target, error);
        vn_log_info("s2s out %s: cannot resolve %s", r->domain, what);
        note_error(r, what);
        free(what);
        try_next_target(r);
        return;
    }
    free(r->addrs);
    r->addrs = vn_alloc(n * sizeof *r->addrs);
    memcpy(r->addrs, addrs, n * sizeof *addrs);
    r->n_addrs = n;
    r->next_addr = 0;
    try_next_address(r);
}

static void try_next_target(s2s_route *r)
{
    if (r->next_target >= r->n_targets) {
        route_fail(r, "remote-server-not-found",
                   r->last_error ? r->last_error : "no usable address");
        return;
    }
    const vn_srv_record *t = &r->targets[r->next_target++];
    r->direct_tls = t->direct_tls;
    r->lookup = vn_resolve_address(t->target, t->port, on_addresses, r);
}

static void on_targets(void *ud, const vn_srv_record *targets, size_t n, const char *error)
{
    s2s_route *r = ud;

    r->lookup = NULL;
    if (n == 0) {
        route_fail(r, "remote-server-not-found", error);
        return;
    }
    clear_targets(r);
    r->targets = vn_alloc(n * sizeof *r->targets);
    for (size_t i = 0; i < n; i++) {
        r->targets[i] = targets[i];
        r->targets[i].target = vn_strdup(targets[i].target);
    }
    r->n_targets = n;
    try_next_target(r);
}

static void start_resolve(s2s_route *r)
{
    const vn_s2s_peer_conf *peer = vn_config_s2s_peer(vn_srv.cfg, r->domain);

    arm_setup(r);
    free(r->last_error);
    r->last_error = NULL;
    if (peer && peer->address) {
        vn_srv_record t = {.target = peer->address,
                           .port = (uint16_t)(peer->port         ? peer->port
                                              : peer->direct_tls ? 5270
                                                                 : 5269),
                           .direct_tls = peer->direct_tls};
        on_targets(r, &t, 1, NULL);
        return;
    }
    r->lookup = vn_resolve_xmpp_server(r->domain, on_targets, r);
}

/* Move the stream along: verifications, claims for waiting senders,
 * then every stanza whose pair is authenticated. */
static void route_pump(s2s_route *r)
{
    s2s_stream *s = r->stream;
    queued *q, *next;

    if (!s) {
        if (!r->lookup && (r->queue || r->verifies))
            start_resolve(r);
        return;
    }
    if (!s->ready)
        return;
    while (r->verifies) {
        verify_request *v = r->verifies;
        r->verifies = v->next;
        s2s_stream_write_dialback(s, "verify", v->local, v->remote, v->stream_id, NULL, v->key);
        verify_free(v);
    }
    for (q = r->queue; q; q = next) {
        next = q->next;
        if (!s2s_pair_has(s->pairs, q->local, r->domain)) {
            if (!s2s_pair_has(s->pending, q->local, r->domain)) {
                if (!s2s_dialback_enabled()) {
                    s2s_route_auth_failed(r, q->local, "dialback is disabled");
                    return; /* the queue changed under us */
                }
                s2s_dialback_start(s, q->local);
                arm_setup(r);
            }
            continue;
        }
        LL_DELETE(r->queue, q);
        r->queued--;
        s2s_stream_write_stanza(s, q->st);
        vn_stanza_free(q->st);
        free(q->local);
        free(q);
    }
    if (!r->queue && !s->pending)
        arm_idle(r);
}

void s2s_route_ready(s2s_route *r)
{
    route_pump(r);
}

void s2s_route_authenticated(s2s_route *r, const char *local, const char *method)
{
    vn_log_info("s2s out %s: authenticated as %s with %s", r->domain, local, method);
    route_pump(r);
}

void s2s_route_auth_failed(s2s_route *r, const char *local, const char *reason)
{
    size_t n = bounce_queue(r, local, "remote-server-not-found");

    vn_log_info("s2s out %s: authentication as %s failed: %s (bounced %zu stanza(s))", r->domain,
                local, reason, n);
    route_pump(r);
}

void s2s_route_stream_gone(s2s_route *r, s2s_stream *s, const char *reason)
{
    if (r->stream != s)
        return;
    r->stream = NULL;
    if (!s->connected || !s->ready) {
        /* This address did not work out: the next one, or the next target. */
        vn_log_info("s2s out %s: connection to %s failed: %s", r->domain, s2s_stream_peer_ip(s),
                    reason);
        note_error(r, reason);
        if (r->queue || r->verifies)
            try_next_address(r);
        else
            route_release(r);
        return;
    }
    vn_log_info("s2s out %s: closed: %s", r->domain, reason);
    clear_targets(r);
    if (s->ever_authenticated && (r->queue || r->verifies)) {
        start_resolve(r); /* it served us before: connect again */
        return;
    }
    if (r->queue || r->verifies)
        route_fail(r, "remote-server-not-found", reason);
    else
        route_release(r);
}

void s2s_route_request_verify(const char *local, const char *remote, const char *stream_id,
                              const char *key)
{
    s2s_route *r = route_get(remote);
    verify_request *v = vn_alloc(sizeof *v);

    v->local = vn_strdup(local);
    v->remote = vn_strdup(remote);
    v->stream_id = vn_strdup(stream_id);
    v->key = vn_strdup(key);
    LL_APPEND(r->verifies, v);
    route_pump(r);
}

/* ---- the public side ---- */

bool vn_s2s_route(const vn_stanza *st, const vn_jid *from, const vn_jid *to)
{
    const vn_config *cfg = vn_srv.cfg;
    s2s_route *r;

    if (!started || s2s_is_our_domain(to->domain) || !s2s_is_our_domain(from->domain))
        return false;
    if (!s2s_remote_allowed(to->domain)) {
        vn_route_error(st, "cancel", "remote-server-not-found",
                       "Federation with that domain is not allowed");
        return true;
    }
    if (!vn_outbound_permit(VN_OUTBOUND_FEDERATION, to->domain)) {
        vn_route_error(st, "cancel", "remote-server-not-found",
                       "This server does not connect to other servers");
        return true;
    }
    /* XEP-0288: back over the peer's own stream, unless stanzas wait for
     * an outgoing one (they must not be overtaken). */
    HASH_FIND_STR(routes, to->domain, r);
    s2s_stream *bidi = r && r->queue ? NULL : s2s_incoming_bidi(from->domain, to->domain);
    if (bidi) {
        s2s_stream_write_stanza(bidi, st);
        return true;
    }
    r = route_get(to->domain);
    if (r->stream && r->stream->ready && !r->queue &&
        s2s_pair_has(r->stream->pairs, from->domain, to->domain)) {
        s2s_stream_write_stanza(r->stream, st);
        arm_idle(r);
        return true;
    }
    if (r->queued >= cfg->s2s_queue_max) {
        vn_route_error(st, "wait", "resource-constraint",
                       "Too many stanzas waiting for that domain");
        return true;
    }
    queued *q = vn_alloc(sizeof *q);
    q->st = vn_stanza_copy(st);
    q->local = vn_strdup(from->domain);
    LL_APPEND(r->queue, q);
    r->queued++;
    route_pump(r);
    return true;
}

void vn_s2s_accept(vn_conn *c, const vn_listener_conf *lc, void *ud)
{
    s2s_stream_accept(c, lc->type == VN_LISTEN_S2S_TLS);
}

int vn_s2s_start(uv_loop_t *loop, vn_buf *err)
{
    if (vn_resolver_init(loop, err) != 0)
        return -1;
    s2s_dialback_init();
    started = true;
    return 0;
}

static void route_drop(s2s_route *r)
{
    while (r->queue) {
        queued *q = r->queue;
        r->queue = q->next;
        vn_stanza_free(q->st);
        free(q->local);
        free(q);
    }
    r->queued = 0;
    while (r->verifies) {
        verify_request *v = r->verifies;
        r->verifies = v->next;
        verify_free(v);
    }
    if (r->stream) {
        r->stream->route = NULL;
        r->stream = NULL;
    }
    route_release(r);
}

void vn_s2s_stop(void)
{
    if (!started)
        return;
    started = false;
    while (routes)
        route_drop(routes); /* empty, so released */
    s2s_stream_close_all("system-shutdown");
    vn_resolver_shutdown();
}
