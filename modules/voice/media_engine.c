/* media_engine.c - the media engine's thread, its queues and its stats.
 *
 * The media thread runs a libuv loop of its own: the 20 ms mixer tick, which
 * also drains the legs' UDP sockets (media_leg.c), and an async handle for
 * commands. libuv rather than the
 * GLib main loop libnice's agent would need: the server side is ICE-lite
 * (RFC 8445 §2.5), which only answers connectivity checks, and libnice's
 * exported STUN library (stun/stunagent.h, stun/usages/ice.h) does that on a
 * plain socket with no agent and no GLib loop; the rest of the server is libuv
 * too. Commands come in and events go out through mutex-guarded queues and a
 * uv_async on each side, never shared state.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include "media_internal.h"

const char *vc_strerror(int err)
{
    switch (err) {
    case VC_OK: return "success";
    case VC_EINVAL: return "invalid argument";
    case VC_ENOMEM: return "out of memory";
    case VC_EFULL: return "too many participants";
    case VC_ENOPORT: return "no free UDP port in the configured range";
    case VC_EFINGERPRINT: return "unsupported DTLS fingerprint";
    case VC_ESYS: return "system error";
    case VC_ECRYPTO: return "cryptographic setup failed";
    case VC_ENOENT: return "no such participant";
    default: return "unknown error";
    }
}

void vc_engine_config_defaults(vc_engine_config *cfg)
{
#define DEF(field, value)                                                                          \
    if (!cfg->field)                                                                               \
    cfg->field = value
    DEF(port_min, 40000);
    DEF(port_max, 40999);
    DEF(max_legs, 1000);
    DEF(max_legs_per_conf, 500);
    DEF(opus_bitrate, 32000);
    DEF(opus_complexity, 5);
    DEF(max_speakers, 3);
    DEF(connect_timeout_ms, 15000);
    DEF(consent_timeout_ms, 30000);
    DEF(jitter_max_ms, 200);
    DEF(rtcp_interval_ms, 1000);
#undef DEF
    if (cfg->max_speakers > VC_MAX_MIXES_PER_CONF - 1)
        cfg->max_speakers = VC_MAX_MIXES_PER_CONF - 1;
    if (cfg->opus_complexity > 10)
        cfg->opus_complexity = 10;
    if (cfg->port_max < cfg->port_min)
        cfg->port_max = cfg->port_min;
}

uint64_t vc_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

void vc_random(void *buf, size_t len)
{
    if (RAND_bytes(buf, (int)len) != 1)
        abort(); /* no randomness: ICE passwords and SSRCs cannot be made safely */
}

/* ---- events, delivered on the caller's loop */

void vc_emit(vc_engine *e, vc_event_type type, const vc_leg *leg, vc_fail_reason reason,
             const char *detail)
{
    pthread_mutex_lock(&e->lock);
    if (e->n_events == e->cap_events) {
        size_t cap = e->cap_events ? 2 * e->cap_events : 64;
        vc_event *ev = realloc(e->events, cap * sizeof(*ev));
        if (!ev) {
            pthread_mutex_unlock(&e->lock);
            return;
        }
        e->events = ev;
        e->cap_events = cap;
    }
    e->events[e->n_events++] = (vc_event){
        .type = type, .leg = leg->id, .conf = leg->conf_id, .reason = reason, .detail = detail};
    pthread_mutex_unlock(&e->lock);
    uv_async_send(e->xasync);
}

/* Only the caller's thread writes the leg table, so it reads it unlocked. */
static bool leg_is_open(const vc_engine *e, vc_leg_id id)
{
    for (unsigned i = 0; i < e->cfg.max_legs; i++)
        if (e->slots[i].id == id)
            return true;
    return false;
}

static void on_events(uv_async_t *async)
{
    vc_engine *e = async->data;

    if (!e)
        return;
    /* take the whole queue at once; a callback may close legs, and no event
     * of a closed leg is delivered */
    pthread_mutex_lock(&e->lock);
    vc_event *events = e->events;
    size_t n = e->n_events;
    e->events = NULL;
    e->n_events = e->cap_events = 0;
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < n; i++)
        if (leg_is_open(e, events[i].leg))
            e->cb(&events[i], e->ud);
    free(events);
}

/* ---- commands, run on the media thread */

int vc_engine_post(vc_engine *e, vc_cmd_type type, vc_leg *leg, bool flag)
{
    pthread_mutex_lock(&e->lock);
    if (e->n_cmds == e->cap_cmds) {
        size_t cap = e->cap_cmds ? 2 * e->cap_cmds : 64;
        vc_cmd *c = realloc(e->cmds, cap * sizeof(*c));
        if (!c) {
            pthread_mutex_unlock(&e->lock);
            return VC_ENOMEM;
        }
        e->cmds = c;
        e->cap_cmds = cap;
    }
    e->cmds[e->n_cmds++] = (vc_cmd){.type = type, .leg = leg, .flag = flag};
    pthread_mutex_unlock(&e->lock);
    uv_async_send(&e->cmd_async);
    return VC_OK;
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void shut_down(vc_engine *e)
{
    while (e->confs) /* a call has legs until its last one goes, which frees it */
        vc_leg_release(e->confs->legs);
    close_handle((uv_handle_t *)&e->tick);
    close_handle((uv_handle_t *)&e->cmd_async);
}

static void on_commands(uv_async_t *async)
{
    vc_engine *e = async->data;

    for (;;) {
        pthread_mutex_lock(&e->lock);
        if (e->n_cmds == 0) {
            pthread_mutex_unlock(&e->lock);
            return;
        }
        vc_cmd cmd = e->cmds[0];
        memmove(e->cmds, e->cmds + 1, (e->n_cmds - 1) * sizeof(cmd));
        e->n_cmds--;
        pthread_mutex_unlock(&e->lock);

        switch (cmd.type) {
        case VC_CMD_OPEN:
            if (vc_leg_start(e, cmd.leg) != 0)
                vc_leg_fail(cmd.leg, VC_FAIL_INTERNAL, "cannot start the leg's socket");
            break;
        case VC_CMD_MUTE:
            cmd.leg->muted = cmd.flag;
            atomic_store(&cmd.leg->st.muted, cmd.flag);
            break;
        case VC_CMD_CLOSE: vc_leg_release(cmd.leg); break;
        case VC_CMD_STOP: shut_down(e); return;
        }
    }
}

static void on_tick(uv_timer_t *t)
{
    vc_engine *e = t->data;
    uint64_t now = vc_now_ms();

    if (now > e->tick_due_ms + VC_TICK_MS / 2)
        atomic_fetch_add(&e->late_ticks, 1);
    if (now > e->tick_due_ms + 5 * VC_TICK_MS)
        e->tick_due_ms = now; /* too far behind to catch up: realign */
    vc_tick(e);
    atomic_fetch_add(&e->ticks, 1);
    e->tick_due_ms += VC_TICK_MS;

    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    atomic_store(&e->cpu_ns, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    now = vc_now_ms();
    uv_timer_start(&e->tick, on_tick, e->tick_due_ms > now ? e->tick_due_ms - now : 0, 0);
}

static void *media_thread(void *arg)
{
    vc_engine *e = arg;

    e->tick_due_ms = vc_now_ms() + VC_TICK_MS;
    uv_timer_start(&e->tick, on_tick, VC_TICK_MS, 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- addresses offered as host candidates */

static void add_addr(vc_engine *e, const char *ip)
{
    for (size_t i = 0; i < e->n_addrs; i++)
        if (strcmp(e->addrs[i], ip) == 0)
            return;
    if (e->n_addrs < VC_MAX_ADDRESSES)
        snprintf(e->addrs[e->n_addrs++], sizeof(e->addrs[0]), "%s", ip);
}

static int find_addresses(vc_engine *e, char *err, size_t errlen)
{
    for (size_t i = 0; i < e->cfg.n_addresses && i < VC_MAX_ADDRESSES; i++) {
        unsigned char bin[sizeof(struct in6_addr)];
        const char *a = e->cfg.addresses[i];
        if (!a || (inet_pton(AF_INET, a, bin) != 1 && inet_pton(AF_INET6, a, bin) != 1)) {
            snprintf(err, errlen, "voice: %s is not an IP address", a ? a : "(null)");
            return VC_EINVAL;
        }
        add_addr(e, a);
    }
    if (e->n_addrs)
        return VC_OK;

    struct ifaddrs *ifs, *ifa;
    if (getifaddrs(&ifs) == 0) {
        for (ifa = ifs; ifa; ifa = ifa->ifa_next) {
            char ip[INET6_ADDRSTRLEN];
            if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP) || (ifa->ifa_flags & IFF_LOOPBACK))
                continue;
            if (ifa->ifa_addr->sa_family == AF_INET) {
                inet_ntop(AF_INET, &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr, ip,
                          sizeof(ip));
            } else if (ifa->ifa_addr->sa_family == AF_INET6) {
                const struct in6_addr *a6 = &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
                if (IN6_IS_ADDR_LINKLOCAL(a6))
                    continue;
                inet_ntop(AF_INET6, a6, ip, sizeof(ip));
            } else {
                continue;
            }
            add_addr(e, ip);
        }
        freeifaddrs(ifs);
    }
    if (e->n_addrs == VC_MAX_ADDRESSES)
        e->n_addrs--;
    add_addr(e, "127.0.0.1");
    return VC_OK;
}

/* ---- start and stop */

static void free_async(uv_handle_t *h)
{
    free(h);
}

static void engine_free(vc_engine *e)
{
    if (e->xasync) {
        e->xasync->data = NULL;
        uv_close((uv_handle_t *)e->xasync, free_async);
    }
    vc_dtls_ctx_free(e);
    pthread_mutex_destroy(&e->lock);
    free(e->cmds);
    free(e->events);
    free(e->slots);
    free(e->scratch_legs);
    free(e->scratch_in);
    free(e->scratch_mix);
    free(e);
}

vc_engine *vc_engine_start(const vc_engine_config *cfg, uv_loop_t *loop, vc_event_cb cb, void *ud,
                           char *err, size_t errlen)
{
    vc_engine *e = calloc(1, sizeof(*e));

    if (!e) {
        snprintf(err, errlen, "voice: out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    vc_engine_config_defaults(&e->cfg);
    e->xloop = loop;
    e->cb = cb;
    e->ud = ud;
    e->next_port = e->cfg.port_min;
    e->next_id = 1;
    pthread_mutex_init(&e->lock, NULL);
    vc_srtp_global_init();

    unsigned per_conf = e->cfg.max_legs_per_conf;
    e->slots = calloc(e->cfg.max_legs, sizeof(*e->slots));
    e->scratch_legs = calloc(per_conf, sizeof(*e->scratch_legs));
    e->scratch_in = calloc(per_conf, sizeof(*e->scratch_in));
    e->scratch_mix = calloc(per_conf, sizeof(*e->scratch_mix));
    e->xasync = calloc(1, sizeof(*e->xasync));
    if (!e->slots || !e->scratch_legs || !e->scratch_in || !e->scratch_mix || !e->xasync) {
        snprintf(err, errlen, "voice: out of memory");
        free(e->xasync);
        e->xasync = NULL;
        engine_free(e);
        return NULL;
    }
    if (uv_async_init(loop, e->xasync, on_events) != 0) {
        snprintf(err, errlen, "voice: cannot create the event handle");
        free(e->xasync);
        e->xasync = NULL;
        engine_free(e);
        return NULL;
    }
    e->xasync->data = e;
    if (find_addresses(e, err, errlen) != VC_OK || vc_dtls_ctx_new(e, err, errlen) != VC_OK) {
        engine_free(e);
        return NULL;
    }
    if (uv_loop_init(&e->loop) != 0) {
        snprintf(err, errlen, "voice: cannot create the media loop");
        engine_free(e);
        return NULL;
    }
    uv_async_init(&e->loop, &e->cmd_async, on_commands);
    e->cmd_async.data = e;
    uv_timer_init(&e->loop, &e->tick);
    e->tick.data = e;
    if (pthread_create(&e->thread, NULL, media_thread, e) != 0) {
        snprintf(err, errlen, "voice: cannot start the media thread: %s", strerror(errno));
        uv_close((uv_handle_t *)&e->cmd_async, NULL);
        uv_close((uv_handle_t *)&e->tick, NULL);
        uv_run(&e->loop, UV_RUN_DEFAULT);
        uv_loop_close(&e->loop);
        engine_free(e);
        return NULL;
    }
    pthread_setname_np(e->thread, "vc-media"); /* for top -H and perf */
    return e;
}

void vc_engine_stop(vc_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    for (unsigned i = 0; i < e->cfg.max_legs; i++)
        e->slots[i] = (vc_slot){0};
    e->n_legs = 0;
    pthread_mutex_unlock(&e->lock);
    vc_engine_post(e, VC_CMD_STOP, NULL, false);
    pthread_join(e->thread, NULL);
    uv_loop_close(&e->loop);
    engine_free(e);
}

const char *vc_engine_fingerprint(const vc_engine *e)
{
    return e->fingerprint;
}

void vc_engine_stats(vc_engine *e, vc_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&e->lock);
    out->legs = e->n_legs;
    for (unsigned i = 0; i < e->cfg.max_legs; i++) {
        if (!e->slots[i].id)
            continue;
        const vc_leg_counters *st = &e->slots[i].leg->st;
        out->packets_lost += atomic_load(&st->lost);
        out->packets_concealed += atomic_load(&st->concealed);
        out->packets_recovered += atomic_load(&st->recovered);
    }
    pthread_mutex_unlock(&e->lock);
    out->legs_connected = atomic_load(&e->legs_connected);
    out->confs = atomic_load(&e->n_confs);
    out->ticks = atomic_load(&e->ticks);
    out->late_ticks = atomic_load(&e->late_ticks);
    out->decodes = atomic_load(&e->decodes);
    out->encodes = atomic_load(&e->encodes);
    out->forwards = atomic_load(&e->forwards);
    out->packets_in = atomic_load(&e->packets_in);
    out->packets_out = atomic_load(&e->packets_out);
    out->srtp_failures = atomic_load(&e->srtp_failures);
    out->cpu_ns = atomic_load(&e->cpu_ns);
}
