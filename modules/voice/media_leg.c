/* media_leg.c - a participant's leg: opened on the caller's thread (its port
 * bound and its answer filled in at once), run on the media thread, where its
 * socket's datagrams are sorted per RFC 7983 to ICE, DTLS or SRTP.
 *
 * Each leg has a UDP port of its own from the configured range (rtcp-mux: one
 * port carries everything), bound to the wildcard address, dual-stack when the
 * system allows, and offered as a host candidate on every configured address.
 * The address each datagram was sent to comes with it (IP_PKTINFO) and what
 * goes back leaves from that address. DTLS and SRTP are accepted from every
 * pair that passed an authenticated check (ice_lite.c), and the peer moves to
 * the pair they last came from: the browser sends on the pair it selected.
 *
 * The sockets are not polled: each mixer tick drains every leg's socket with
 * recvmmsg, taking the kernel's receive time of each datagram (SO_TIMESTAMPNS)
 * for the jitter buffer. The media thread so wakes 50 times a second, not once
 * per packet, which was a quarter of its time; a handshake flight waits for
 * the next tick, 10 ms on average.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "media_internal.h"

#define ICE_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

static void random_token(char *out, size_t n, const char *alphabet)
{
    unsigned char r[64];
    size_t k = strlen(alphabet);

    vc_random(r, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[r[i] % k];
    out[n] = '\0';
}

/* A socket on a free port of the range; its family in *family. */
static int bind_port(vc_engine *e, uint16_t *port, int *family)
{
    unsigned span = (unsigned)e->cfg.port_max - e->cfg.port_min + 1;

    for (unsigned tries = 0; tries < span; tries++) {
        uint16_t p = e->next_port;
        e->next_port = p >= e->cfg.port_max ? e->cfg.port_min : (uint16_t)(p + 1);

        int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            int off = 0, on = 1;
            struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(p)};
            a6.sin6_addr = in6addr_any;
            if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) == 0 &&
                setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) == 0 &&
                setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) == 0 &&
                bind(fd, (struct sockaddr *)&a6, sizeof(a6)) == 0) {
                *port = p;
                *family = AF_INET6;
                return fd;
            }
            close(fd);
            if (errno == EADDRINUSE)
                continue;
        }
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return VC_ESYS;
        struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(p)};
        int on = 1;
        a4.sin_addr.s_addr = htonl(INADDR_ANY);
        if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) == 0 &&
            setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)) == 0 &&
            bind(fd, (struct sockaddr *)&a4, sizeof(a4)) == 0) {
            *port = p;
            *family = AF_INET;
            return fd;
        }
        close(fd);
    }
    return VC_ENOPORT;
}

static void leg_free(vc_leg *leg)
{
    if (leg->ssl)
        SSL_free(leg->ssl);
    if (leg->srtp)
        srtp_dealloc(leg->srtp);
    if (leg->dec)
        opus_decoder_destroy(leg->dec);
    free(leg->username);
    free(leg);
}

static void fill_local(vc_engine *e, const vc_leg *leg, uint16_t port, int family, vc_local *local)
{
    memset(local, 0, sizeof(*local));
    memcpy(local->ice_ufrag, leg->lufrag, sizeof(local->ice_ufrag));
    memcpy(local->ice_pwd, leg->lpwd, sizeof(local->ice_pwd));
    local->ssrc = leg->ssrc;
    memcpy(local->cname, leg->cname, sizeof(local->cname));
    local->setup = leg->dtls_client ? VC_SETUP_ACTIVE : VC_SETUP_PASSIVE;
    local->fingerprint_hash = "sha-256";
    snprintf(local->fingerprint, sizeof(local->fingerprint), "%s", e->fingerprint);
    local->opus_pt = leg->opus_pt;
    for (size_t i = 0; i < e->n_addrs && local->n_candidates < VC_MAX_CANDIDATES; i++) {
        if (family == AF_INET && strchr(e->addrs[i], ':'))
            continue;
        vc_candidate *c = &local->candidates[local->n_candidates++];
        snprintf(c->ip, sizeof(c->ip), "%s", e->addrs[i]);
        c->port = port;
        /* RFC 8445 §5.1.2.1: host type preference 126, local preference by order */
        c->priority = (126u << 24) | ((65535u - (unsigned)i) << 8) | 255u;
        snprintf(c->foundation, sizeof(c->foundation), "%u", (unsigned)(i + 1) % 100);
        c->component = 1;
    }
}

static bool valid_ice_string(const char *s, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;

    if (n < min || n > max)
        return false;
    return strspn(s, ICE_CHARS) == n;
}

int vc_leg_open(vc_engine *e, uint64_t conf, const vc_remote *r, vc_local *local, vc_leg_id *out)
{
    if (!e || !r || !local || !out)
        return VC_EINVAL;
    /* RFC 8839 §5.4: ufrag 4..256, pwd 22..256 ice-chars; some clients send
     * shorter ones, which are still unambiguous */
    if (!valid_ice_string(r->ice_ufrag, 1, 256) || !valid_ice_string(r->ice_pwd, 1, 256))
        return VC_EINVAL;
    if (r->opus_pt > 127 || (r->opus_pt >= 64 && r->opus_pt <= 95))
        return VC_EINVAL; /* RFC 5761 §4: those collide with RTCP on a muxed port */

    vc_leg *leg = calloc(1, sizeof(*leg));
    if (!leg)
        return VC_ENOMEM;
    leg->e = e;
    leg->conf_id = conf;
    leg->fd = -1;
    int rc = vc_dtls_parse_fingerprint(leg, r->fingerprint_hash, r->fingerprint);
    if (rc != VC_OK) {
        leg_free(leg);
        return rc;
    }
    random_token(leg->lufrag, 8, ICE_CHARS);
    random_token(leg->lpwd, 24, ICE_CHARS);
    random_token(leg->cname, 16, ICE_CHARS);
    do
        vc_random(&leg->ssrc, sizeof(leg->ssrc));
    while (leg->ssrc == 0 || leg->ssrc == r->ssrc);
    vc_random(&leg->seq, sizeof(leg->seq));
    vc_random(&leg->ts, sizeof(leg->ts));
    leg->rtcp_rand = leg->ssrc; /* nonzero */
    leg->marker = true;
    size_t ulen = strlen(leg->lufrag) + 1 + strlen(r->ice_ufrag) + 1;
    leg->username = malloc(ulen);
    if (!leg->username) {
        leg_free(leg);
        return VC_ENOMEM;
    }
    snprintf(leg->username, ulen, "%s:%s", leg->lufrag, r->ice_ufrag);
    leg->dtls_client = r->setup != VC_SETUP_ACTIVE;
    leg->opus_pt = r->opus_pt;
    leg->level_id = r->audio_level_id;
    leg->remote_fec = r->opus_fec;
    leg->remote_ssrc = r->ssrc;
    leg->have_ssrc = r->ssrc != 0;
    (void)r->ice_pwd; /* ICE-lite never sends checks, so the remote's password is unused */

    int err;
    leg->dec = opus_decoder_create(48000, 1, &err);
    if (!leg->dec) {
        leg_free(leg);
        return VC_ENOMEM;
    }
    if (vc_dtls_leg_new(leg) != VC_OK) {
        leg_free(leg);
        return VC_ECRYPTO;
    }
    vc_jb_init(&leg->jb, e->cfg.jitter_max_ms);
    vc_ice_init(leg);

    pthread_mutex_lock(&e->lock);
    unsigned in_conf = 0;
    vc_slot *free_slot = NULL;
    for (unsigned i = 0; i < e->cfg.max_legs; i++) {
        if (e->slots[i].id == 0) {
            if (!free_slot)
                free_slot = &e->slots[i];
        } else if (e->slots[i].conf == conf) {
            in_conf++;
        }
    }
    if (!free_slot || in_conf >= e->cfg.max_legs_per_conf) {
        pthread_mutex_unlock(&e->lock);
        leg_free(leg);
        return VC_EFULL;
    }
    uint16_t port;
    int family;
    int fd = bind_port(e, &port, &family);
    if (fd < 0) {
        pthread_mutex_unlock(&e->lock);
        leg_free(leg);
        return fd;
    }
    leg->fd = fd;
    leg->family = family;
    leg->id = e->next_id++;
    if (e->next_id == 0)
        e->next_id = 1;
    *free_slot = (vc_slot){.id = leg->id, .conf = conf, .leg = leg};
    e->n_legs++;
    pthread_mutex_unlock(&e->lock);

    fill_local(e, leg, port, family, local);
    *out = leg->id;
    rc = vc_engine_post(e, VC_CMD_OPEN, leg, false);
    if (rc != VC_OK) {
        vc_leg_close(e, leg->id);
        return rc;
    }
    return VC_OK;
}

static vc_slot *find_slot(vc_engine *e, vc_leg_id id)
{
    for (unsigned i = 0; id && i < e->cfg.max_legs; i++)
        if (e->slots[i].id == id)
            return &e->slots[i];
    return NULL;
}

int vc_leg_close(vc_engine *e, vc_leg_id id)
{
    pthread_mutex_lock(&e->lock);
    vc_slot *slot = find_slot(e, id);
    if (!slot) {
        pthread_mutex_unlock(&e->lock);
        return VC_ENOENT;
    }
    vc_leg *leg = slot->leg;
    *slot = (vc_slot){0};
    e->n_legs--;
    pthread_mutex_unlock(&e->lock);
    return vc_engine_post(e, VC_CMD_CLOSE, leg, false);
}

int vc_leg_set_muted(vc_engine *e, vc_leg_id id, bool muted)
{
    pthread_mutex_lock(&e->lock);
    vc_slot *slot = find_slot(e, id);
    vc_leg *leg = slot ? slot->leg : NULL;
    pthread_mutex_unlock(&e->lock);
    return leg ? vc_engine_post(e, VC_CMD_MUTE, leg, muted) : VC_ENOENT;
}

int vc_leg_stats_get(vc_engine *e, vc_leg_id id, vc_leg_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&e->lock);
    vc_slot *slot = find_slot(e, id);
    if (slot) {
        const vc_leg_counters *st = &slot->leg->st;
        out->conf = slot->conf;
        out->connected = atomic_load(&st->connected);
        out->speaking = atomic_load(&st->speaking);
        out->muted = atomic_load(&st->muted);
        out->packets_in = atomic_load(&st->in);
        out->packets_out = atomic_load(&st->out);
        out->packets_lost = atomic_load(&st->lost);
        out->packets_concealed = atomic_load(&st->concealed);
        out->packets_recovered = atomic_load(&st->recovered);
        out->srtp_failures = atomic_load(&st->srtp_failures);
        out->jitter_ms = atomic_load(&st->jitter_ms);
        out->buffer_ms = atomic_load(&st->buffer_ms);
    }
    pthread_mutex_unlock(&e->lock);
    return slot ? VC_OK : VC_ENOENT;
}

/* ---- the media thread's side */

/* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; ICE and STUN want
 * them as IPv4. */
static void unmap(const struct sockaddr *from, struct sockaddr_storage *out, socklen_t *len)
{
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)from;

    memset(out, 0, sizeof(*out));
    if (from->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
        struct sockaddr_in *a4 = (struct sockaddr_in *)out;
        a4->sin_family = AF_INET;
        a4->sin_port = a6->sin6_port;
        memcpy(&a4->sin_addr, &a6->sin6_addr.s6_addr[12], 4);
        *len = sizeof(*a4);
    } else if (from->sa_family == AF_INET6) {
        memcpy(out, from, sizeof(struct sockaddr_in6));
        *len = sizeof(struct sockaddr_in6);
    } else {
        memcpy(out, from, sizeof(struct sockaddr_in));
        *len = sizeof(struct sockaddr_in);
    }
}

int vc_leg_send(vc_leg *leg, const void *buf, size_t len)
{
    if (leg->peer.remote_len == 0)
        return -1;
    return vc_leg_send_to(leg, buf, len, &leg->peer);
}

/* An IPv4 address as a dual-stack socket writes it: ::ffff:a.b.c.d */
static struct in6_addr mapped_of(const struct sockaddr *a)
{
    struct in6_addr out = {0};

    if (a->sa_family == AF_INET6)
        return ((const struct sockaddr_in6 *)a)->sin6_addr;
    out.s6_addr[10] = 0xff;
    out.s6_addr[11] = 0xff;
    memcpy(&out.s6_addr[12], &((const struct sockaddr_in *)a)->sin_addr, 4);
    return out;
}

int vc_leg_send_to(vc_leg *leg, const void *buf, size_t len, const vc_path *to)
{
    const struct sockaddr *dst = (const struct sockaddr *)&to->remote;
    const struct sockaddr *src = (const struct sockaddr *)&to->local;
    struct sockaddr_in6 mapped;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } ctrl = {0};
    struct msghdr msg = {
        .msg_name = (void *)dst, .msg_namelen = to->remote_len, .msg_iov = &iov, .msg_iovlen = 1};
    uv_os_fd_t fd;

    if (!leg->udp_open || uv_fileno((uv_handle_t *)&leg->udp, &fd) != 0)
        return -1;
    if (leg->family == AF_INET6 && dst->sa_family == AF_INET) {
        mapped = (struct sockaddr_in6){.sin6_family = AF_INET6,
                                       .sin6_port = ((const struct sockaddr_in *)dst)->sin_port,
                                       .sin6_addr = mapped_of(dst)};
        msg.msg_name = &mapped;
        msg.msg_namelen = sizeof(mapped);
    }
    /* from the address the remote wrote to: with several on the host, the
     * routing's choice would be one the remote has no pair with */
    if (src->sa_family == AF_INET || src->sa_family == AF_INET6) {
        struct cmsghdr *c = (struct cmsghdr *)ctrl.buf;
        msg.msg_control = ctrl.buf;
        if (leg->family == AF_INET6) {
            struct in6_pktinfo pi = {.ipi6_addr = mapped_of(src)};
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(c), &pi, sizeof(pi));
            msg.msg_controllen = CMSG_SPACE(sizeof(pi));
        } else {
            struct in_pktinfo pi = {.ipi_spec_dst = ((const struct sockaddr_in *)src)->sin_addr};
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(c), &pi, sizeof(pi));
            msg.msg_controllen = CMSG_SPACE(sizeof(pi));
        }
    }
    return sendmsg(fd, &msg, MSG_DONTWAIT) == (ssize_t)len ? 0 : -1;
}

/* The pair to follow: DTLS or SRTP came on it. */
static void follow(vc_leg *leg, const vc_path *path)
{
    leg->peer = *path;
    leg->peer_heard = true;
}

static void input(vc_leg *leg, uint8_t *p, size_t n, const struct sockaddr *addr,
                  const struct sockaddr_storage *local, uint64_t arrival_ms)
{
    vc_path path = {.local = *local};

    if (leg->state == VC_LEG_FAILED)
        return;
    unmap(addr, &path.remote, &path.remote_len);
    vc_demux kind = vc_demux_classify(p, n);
    if (kind == VC_DEMUX_STUN) {
        vc_ice_input(leg, p, n, &path);
        return;
    }
    if (!vc_ice_checked(leg, (struct sockaddr *)&path.remote))
        return; /* DTLS and media only on pairs that passed a check */
    switch (kind) {
    case VC_DEMUX_DTLS:
        follow(leg, &path);
        vc_dtls_input(leg, p, n);
        break;
    case VC_DEMUX_RTP:
        if (vc_rtp_input(leg, p, n, arrival_ms))
            follow(leg, &path);
        break;
    case VC_DEMUX_RTCP:
        if (vc_rtcp_input(leg, p, n))
            follow(leg, &path);
        break;
    default: break;
    }
}

/* The address the datagram was sent to (IP_PKTINFO), IPv4 unmapped; family
 * 0 when the kernel did not say. */
static void local_of(struct msghdr *msg, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
            socklen_t len;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            a6.sin6_addr = pi.ipi6_addr;
            unmap((struct sockaddr *)&a6, out, &len);
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            struct sockaddr_in *a4 = (struct sockaddr_in *)out;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            a4->sin_family = AF_INET;
            a4->sin_addr = pi.ipi_addr;
        }
    }
}

/* The kernel's receive time (SO_TIMESTAMPNS), in ms of the realtime clock. */
static uint64_t arrival_of(struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

void vc_leg_drain(vc_leg *leg)
{
    vc_engine *e = leg->e;
    struct mmsghdr msgs[VC_RX_BATCH];
    struct iovec iov[VC_RX_BATCH];
    struct sockaddr_storage from[VC_RX_BATCH], local;
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } ctrl[VC_RX_BATCH] = {0};
    uv_os_fd_t fd;

    if (!leg->udp_open || uv_fileno((uv_handle_t *)&leg->udp, &fd) != 0)
        return;
    /* a bounded share per tick (a normal leg has one or two datagrams): a
     * flood on one port fills its own socket buffer, not the others' tick */
    for (int batch = 0; batch < VC_RX_BATCHES_PER_TICK; batch++) {
        for (int i = 0; i < VC_RX_BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = e->rxbuf[i], .iov_len = sizeof(e->rxbuf[i])};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                              .msg_namelen = sizeof(from[i]),
                                              .msg_iov = &iov[i],
                                              .msg_iovlen = 1,
                                              .msg_control = ctrl[i].buf,
                                              .msg_controllen = sizeof(ctrl[i].buf)};
        }
        int n = recvmmsg(fd, msgs, VC_RX_BATCH, MSG_DONTWAIT, NULL);
        for (int i = 0; i < n && leg->state != VC_LEG_FAILED; i++) {
            if (!(msgs[i].msg_hdr.msg_flags & MSG_TRUNC) && msgs[i].msg_len > 0) {
                local_of(&msgs[i].msg_hdr, &local);
                input(leg, e->rxbuf[i], msgs[i].msg_len, (struct sockaddr *)&from[i], &local,
                      arrival_of(&msgs[i].msg_hdr));
            }
        }
        if (n < VC_RX_BATCH)
            return;
    }
}

int vc_leg_start(vc_engine *e, vc_leg *leg)
{
    leg->opened_ms = vc_now_ms();
    leg->state = VC_LEG_CHECKING;
    if (uv_udp_init(&e->loop, &leg->udp) != 0)
        return -1;
    leg->udp.data = leg;
    leg->udp_open = true;
    if (uv_udp_open(&leg->udp, leg->fd) != 0)
        return -1;
    leg->fd = -1; /* the handle owns it now; the tick reads it (vc_leg_drain) */
    return vc_conf_add_leg(e, leg);
}

void vc_leg_fail(vc_leg *leg, vc_fail_reason reason, const char *detail)
{
    if (leg->state == VC_LEG_FAILED)
        return;
    if (leg->state == VC_LEG_CONNECTED)
        atomic_fetch_sub(&leg->e->legs_connected, 1);
    leg->state = VC_LEG_FAILED;
    atomic_store(&leg->st.connected, false);
    vc_emit(leg->e, VC_EV_FAILED, leg, reason, detail);
}

static void on_closed(uv_handle_t *h)
{
    leg_free(h->data);
}

void vc_leg_release(vc_leg *leg)
{
    if (leg->state == VC_LEG_CONNECTED)
        atomic_fetch_sub(&leg->e->legs_connected, 1);
    leg->state = VC_LEG_FAILED;
    if (leg->conf)
        vc_conf_remove_leg(leg->e, leg);
    if (leg->fd >= 0)
        close(leg->fd);
    if (leg->udp_open)
        uv_close((uv_handle_t *)&leg->udp, on_closed);
    else
        leg_free(leg);
}
