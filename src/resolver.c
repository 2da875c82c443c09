/*
 * resolver.c - c-ares driven by the libuv loop, and the XMPP server
 * lookup (SRV for both services, RFC 2782 order, A/AAAA fallback).
 *
 * c-ares tells us through its socket-state callback which sockets it wants
 * watched; each gets a uv_poll_t, and one uv_timer_t follows ares_timeout
 * for retransmissions. Finished lookups are not reported from inside
 * c-ares (which may complete a numeric lookup inside the call that
 * started it): they wait on a list that a zero-delay timer delivers, so
 * every callback runs from the loop with no c-ares frame on the stack.
 */
#include "resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utlist.h>

#include "outbound.h"

#define QUERY_TIMEOUT_MS 3000
#define QUERY_TRIES 2

typedef enum { QUERY_SERVER, QUERY_ADDRESS } query_kind;

struct vn_resolve {
    query_kind kind;
    bool cancelled;
    int pending; /* c-ares callbacks still to come */
    union {
        vn_server_cb server;
        vn_address_cb address;
    } cb;
    void *ud;
    char *domain;
    uint16_t port;
    /* results */
    vn_srv_record *records;
    size_t n_records;
    bool no_service; /* a lone "." target */
    struct sockaddr_storage *addrs;
    size_t n_addrs;
    const char *error;
    vn_resolve *next; /* on the delivery list */
};

typedef struct watched_socket {
    uv_poll_t poll;
    ares_socket_t fd;
    struct watched_socket *prev, *next;
} watched_socket;

static uv_loop_t *resolver_loop;
static ares_channel channel;
static bool channel_ready;
static uv_timer_t timeout_timer;
static uv_timer_t delivery_timer;
static vn_resolve *finished;
static watched_socket *sockets;

/* ---- RFC 2782 ordering ---- */

static uint32_t default_random(uint32_t max, void *ud)
{
    return max == UINT32_MAX ? arc4random() : arc4random_uniform(max + 1);
}

static int by_priority_then_zero_weight(const void *a, const void *b)
{
    const vn_srv_record *x = a, *y = b;

    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return (x->weight != 0) - (y->weight != 0);
}

void vn_srv_order(vn_srv_record *records, size_t n, vn_random_fn random, void *ud)
{
    if (!random)
        random = default_random;
    qsort(records, n, sizeof *records, by_priority_then_zero_weight);
    for (size_t start = 0; start < n;) {
        size_t end = start;
        while (end < n && records[end].priority == records[start].priority)
            end++;
        /* records[start..end) share a priority; fill positions in turn */
        for (size_t pos = start; pos + 1 < end; pos++) {
            uint32_t total = 0;
            for (size_t i = pos; i < end; i++)
                total += records[i].weight;
            uint32_t draw = random(total, ud);
            size_t pick = pos;
            for (uint32_t running = 0; pick < end; pick++) {
                running += records[pick].weight;
                if (running >= draw)
                    break;
            }
            if (pick == end)
                pick = end - 1;
            vn_srv_record chosen = records[pick];
            memmove(&records[pos + 1], &records[pos], (pick - pos) * sizeof *records);
            records[pos] = chosen;
        }
        start = end;
    }
}

/* ---- the loop side of c-ares ---- */

static void on_timeout(uv_timer_t *t);

/* Follow c-ares' next retransmission deadline. */
static void schedule_timeout(void)
{
    struct timeval tv;

    if (!channel_ready)
        return;
    if (!ares_timeout(channel, NULL, &tv)) {
        uv_timer_stop(&timeout_timer);
        return;
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    uv_timer_start(&timeout_timer, on_timeout, ms, 0);
}

static void on_timeout(uv_timer_t *t)
{
    ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    schedule_timeout();
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    watched_socket *ws = poll->data;
    bool readable = status < 0 || (events & UV_READABLE);
    bool writable = status < 0 || (events & UV_WRITABLE);

    ares_process_fd(channel, readable ? ws->fd : ARES_SOCKET_BAD,
                    writable ? ws->fd : ARES_SOCKET_BAD);
    schedule_timeout();
}

static void free_watched(uv_handle_t *h)
{
    free(h->data);
}

static void unwatch(watched_socket *ws)
{
    DL_DELETE(sockets, ws);
    uv_poll_stop(&ws->poll);
    uv_close((uv_handle_t *)&ws->poll, free_watched);
}

static void on_socket_state(void *data, ares_socket_t fd, int readable, int writable)
{
    watched_socket *ws;

    DL_SEARCH_SCALAR(sockets, ws, fd, fd);
    if (!readable && !writable) {
        if (ws)
            unwatch(ws);
        return;
    }
    if (!ws) {
        ws = vn_alloc(sizeof *ws);
        ws->fd = fd;
        if (uv_poll_init_socket(resolver_loop, &ws->poll, fd) != 0) {
            free(ws);
            return;
        }
        ws->poll.data = ws;
        DL_APPEND(sockets, ws);
    }
    uv_poll_start(&ws->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

/* ---- delivery ---- */

static void query_free(vn_resolve *q)
{
    for (size_t i = 0; i < q->n_records; i++)
        free(q->records[i].target);
    free(q->records);
    free(q->addrs);
    free(q->domain);
    free(q);
}

static void deliver(vn_resolve *q)
{
    if (q->cancelled)
        return;
    if (q->kind == QUERY_ADDRESS) {
        q->cb.address(q->ud, q->addrs, q->n_addrs, q->n_addrs ? NULL : q->error);
        return;
    }
    if (q->no_service && q->n_records == 0) {
        q->cb.server(q->ud, NULL, 0, "no XMPP service (SRV target \".\")");
        return;
    }
    if (q->n_records == 0) { /* RFC 6120 §3.2.2: the domain itself */
        vn_srv_record fallback = {
            .target = q->domain, .port = VN_XMPP_SERVER_PORT, .direct_tls = false};
        q->cb.server(q->ud, &fallback, 1, NULL);
        return;
    }
    vn_srv_order(q->records, q->n_records, NULL, NULL);
    q->cb.server(q->ud, q->records, q->n_records, NULL);
}

static void on_delivery(uv_timer_t *t)
{
    while (finished) {
        vn_resolve *q = finished;
        finished = q->next;
        deliver(q);
        query_free(q);
    }
}

/* One c-ares callback of q is done; queue q once all are. */
static void query_step_done(vn_resolve *q)
{
    if (--q->pending > 0)
        return;
    q->next = NULL;
    LL_APPEND(finished, q);
    uv_timer_start(&delivery_timer, on_delivery, 0, 0);
}

/* ---- lookups ---- */

static bool is_invalid_name(const char *name)
{
    size_t len = strlen(name);
    return (len >= 8 && strcasecmp(name + len - 8, ".invalid") == 0) ||
           strcasecmp(name, "invalid") == 0;
}

static void add_srv_records(vn_resolve *q, const unsigned char *answer, int len, bool direct_tls)
{
    struct ares_srv_reply *replies = NULL;

    if (ares_parse_srv_reply(answer, len, &replies) != ARES_SUCCESS)
        return;
    size_t count = 0;
    for (struct ares_srv_reply *r = replies; r; r = r->next)
        count++;
    if (!direct_tls && count == 1 && (strcmp(replies->host, ".") == 0 || !replies->host[0]))
        q->no_service = true;
    q->records = vn_realloc(q->records, (q->n_records + count) * sizeof *q->records);
    for (struct ares_srv_reply *r = replies; r; r = r->next) {
        if (strcmp(r->host, ".") == 0 || !r->host[0])
            continue;
        q->records[q->n_records++] = (vn_srv_record){.target = vn_strdup(r->host),
                                                     .priority = r->priority,
                                                     .weight = r->weight,
                                                     .port = r->port,
                                                     .direct_tls = direct_tls};
    }
    ares_free_data(replies);
}

static void on_srv(void *arg, int status, int timeouts, unsigned char *answer, int len,
                   bool direct_tls)
{
    vn_resolve *q = arg;

    if (status == ARES_SUCCESS && !q->cancelled)
        add_srv_records(q, answer, len, direct_tls);
    query_step_done(q);
}

static void on_srv_direct(void *arg, int status, int timeouts, unsigned char *answer, int len)
{
    on_srv(arg, status, timeouts, answer, len, true);
}

static void on_srv_starttls(void *arg, int status, int timeouts, unsigned char *answer, int len)
{
    on_srv(arg, status, timeouts, answer, len, false);
}

static vn_resolve *query_new(query_kind kind, const char *domain, void *ud)
{
    vn_resolve *q = vn_alloc(sizeof *q);

    q->kind = kind;
    q->domain = vn_strdup(domain);
    q->ud = ud;
    return q;
}

vn_resolve *vn_resolve_xmpp_server(const char *domain, vn_server_cb cb, void *ud)
{
    vn_resolve *q = query_new(QUERY_SERVER, domain, ud);

    q->cb.server = cb;
    q->pending = 1; /* held until both queries are sent */
    if (!vn_outbound_permit(VN_OUTBOUND_DNS, domain)) {
        q->error = "DNS queries refused by network.allow_outbound";
    } else if (!is_invalid_name(domain)) {
        char *direct = vn_asprintf("_xmpps-server._tcp.%s", domain);
        char *starttls = vn_asprintf("_xmpp-server._tcp.%s", domain);
        q->pending += 2;
        ares_query(channel, direct, ns_c_in, ns_t_srv, on_srv_direct, q);
        ares_query(channel, starttls, ns_c_in, ns_t_srv, on_srv_starttls, q);
        free(direct);
        free(starttls);
    }
    query_step_done(q);
    schedule_timeout();
    return q;
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    vn_resolve *q = arg;

    if (status == ARES_SUCCESS && !q->cancelled) {
        size_t count = 0;
        for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next)
            count++;
        q->addrs = vn_alloc((count ? count : 1) * sizeof *q->addrs);
        for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
            if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
                n->ai_addrlen > sizeof *q->addrs)
                continue;
            struct sockaddr_storage *ss = &q->addrs[q->n_addrs++];
            memcpy(ss, n->ai_addr, n->ai_addrlen);
            if (ss->ss_family == AF_INET)
                ((struct sockaddr_in *)ss)->sin_port = htons(q->port);
            else
                ((struct sockaddr_in6 *)ss)->sin6_port = htons(q->port);
        }
    }
    if (status != ARES_SUCCESS)
        q->error = ares_strerror(status);
    else if (q->n_addrs == 0)
        q->error = "no address";
    if (res)
        ares_freeaddrinfo(res);
    query_step_done(q);
}

vn_resolve *vn_resolve_address(const char *host, uint16_t port, vn_address_cb cb, void *ud)
{
    vn_resolve *q = query_new(QUERY_ADDRESS, host, ud);
    struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};

    q->cb.address = cb;
    q->port = port;
    q->pending = 1;
    if (is_invalid_name(host)) {
        q->error = "the name does not exist (.invalid)";
        query_step_done(q);
    } else if (!vn_outbound_permit(VN_OUTBOUND_DNS, host)) {
        q->error = "DNS queries refused by network.allow_outbound";
        query_step_done(q);
    } else {
        ares_getaddrinfo(channel, host, NULL, &hints, on_addrinfo, q);
    }
    schedule_timeout();
    return q;
}

void vn_resolve_cancel(vn_resolve *q)
{
    if (q)
        q->cancelled = true;
}

/* ---- life cycle ---- */

int vn_resolver_init(uv_loop_t *loop, vn_buf *err)
{
    struct ares_options options = {
        .sock_state_cb = on_socket_state,
        .timeout = QUERY_TIMEOUT_MS,
        .tries = QUERY_TRIES,
    };
    int rc = ares_library_init(ARES_LIB_INIT_ALL);

    if (rc == ARES_SUCCESS)
        rc = ares_init_options(&channel, &options,
                               ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        vn_buf_printf(err, "cannot start the DNS resolver: %s", ares_strerror(rc));
        return -1;
    }
    resolver_loop = loop;
    uv_timer_init(loop, &timeout_timer);
    uv_timer_init(loop, &delivery_timer);
    channel_ready = true;
    return 0;
}

void vn_resolver_shutdown(void)
{
    if (!channel_ready)
        return;
    channel_ready = false;
    ares_destroy(channel); /* outstanding callbacks run with ARES_EDESTRUCTION */
    while (sockets)
        unwatch(sockets);
    for (vn_resolve *q = finished, *next; q; q = next) {
        next = q->next;
        query_free(q);
    }
    finished = NULL;
    uv_close((uv_handle_t *)&timeout_timer, NULL);
    uv_close((uv_handle_t *)&delivery_timer, NULL);
    ares_library_cleanup();
}
