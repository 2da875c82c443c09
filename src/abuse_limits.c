/*
 * abuse_limits.c - per-address and per-account accounting against abuse.
 *
 * Three uthash tables, all on the loop thread: open client connections per
 * address, and login failure records per address and per account. A
 * connection count disappears with the address's last connection. A login
 * record lives while it matters: while its failure window runs, while its
 * back-off holds, and for limits.login_backoff_max seconds after that, so
 * that a new burst of failures soon after a back-off doubles it. Stale
 * records are swept whenever a table has doubled in size since the last
 * sweep (amortised constant work), and a table never holds more than
 * MAX_TRACKED records: past that, new addresses or accounts go untracked
 * rather than letting an attacker with many names exhaust memory.
 */
#include "abuse_limits.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "server.h"

#define MAX_TRACKED 100000
#define MIN_SWEEP_SIZE 1024
/* An address key: an IPv4 address, or an IPv6 /64 prefix and "/64". */
#define ADDRESS_KEY_SIZE (INET6_ADDRSTRLEN + 4)

typedef struct connection_count {
    char address[ADDRESS_KEY_SIZE];
    unsigned open;
    UT_hash_handle hh;
} connection_count;

typedef struct login_record {
    char *key; /* address key, or "user@host" */
    unsigned failures;
    uint64_t window_start_ms;
    uint64_t held_until_ms; /* 0: never held */
    uint64_t next_hold_ms;  /* length of the next back-off */
    UT_hash_handle hh;
} login_record;

typedef struct login_table {
    const char *what; /* for the log: "address" or "account" */
    login_record *records;
    unsigned sweep_at; /* sweep when the table reaches this size */
    bool full_logged;
} login_table;

static connection_count *connections;
static login_table ip_logins = {.what = "address"};
static login_table account_logins = {.what = "account"};

static uint64_t now_ms(void)
{
    return uv_now(vn_srv.loop);
}

/* The key an address is counted under: IPv4 as is, IPv6 as its /64. */
static void address_key(const char *ip, char out[ADDRESS_KEY_SIZE])
{
    struct in6_addr addr;

    if (!strchr(ip, ':') || inet_pton(AF_INET6, ip, &addr) != 1) {
        snprintf(out, ADDRESS_KEY_SIZE, "%s", ip);
        return;
    }
    memset(&addr.s6_addr[8], 0, 8);
    inet_ntop(AF_INET6, &addr, out, INET6_ADDRSTRLEN);
    strcat(out, "/64");
}

/* ---- connections per address ---- */

bool vn_limits_connection_open(const char *ip)
{
    unsigned limit = vn_srv.cfg->max_connections_per_ip;
    char key[ADDRESS_KEY_SIZE];
    connection_count *c = NULL;

    address_key(ip, key);
    HASH_FIND_STR(connections, key, c);
    if (c && limit && c->open >= limit) {
        vn_log_warn("limits: %s already has %u client connections: refusing another", key, c->open);
        return false;
    }
    if (!c) {
        c = vn_alloc(sizeof *c);
        memcpy(c->address, key, sizeof key);
        HASH_ADD_STR(connections, address, c);
    }
    c->open++;
    return true;
}

void vn_limits_connection_closed(const char *ip)
{
    char key[ADDRESS_KEY_SIZE];
    connection_count *c = NULL;

    address_key(ip, key);
    HASH_FIND_STR(connections, key, c);
    if (c && --c->open == 0) {
        HASH_DEL(connections, c);
        free(c);
    }
}

/* ---- login back-off ---- */

static void record_free(login_table *t, login_record *r)
{
    HASH_DEL(t->records, r);
    free(r->key);
    free(r);
}

/* Nothing left to remember: the window is over, and no back-off holds or
 * ended recently enough to be doubled by the next one. */
static bool record_stale(const login_record *r, uint64_t now)
{
    const vn_config *cfg = vn_srv.cfg;
    uint64_t window_ms = (uint64_t)cfg->login_failure_window * 1000;
    uint64_t memory_ms = (uint64_t)cfg->login_backoff_max * 1000;

    if (now - r->window_start_ms < window_ms)
        return false;
    return r->held_until_ms == 0 || now >= r->held_until_ms + memory_ms;
}

static void sweep(login_table *t, uint64_t now)
{
    for (login_record *r = t->records, *next; r; r = next) {
        next = r->hh.next;
        if (record_stale(r, now))
            record_free(t, r);
    }
    unsigned count = HASH_COUNT(t->records);
    t->sweep_at = count * 2 > MIN_SWEEP_SIZE ? count * 2 : MIN_SWEEP_SIZE;
}

/* The record for key, created if room is left; NULL if untracked. */
static login_record *record_for(login_table *t, const char *key, uint64_t now)
{
    login_record *r = NULL;

    HASH_FIND_STR(t->records, key, r);
    if (r)
        return r;
    if (HASH_COUNT(t->records) >= t->sweep_at)
        sweep(t, now);
    if (HASH_COUNT(t->records) >= MAX_TRACKED) {
        if (!t->full_logged)
            vn_log_warn("limits: tracking %u %s login failure records: new ones go untracked",
                        MAX_TRACKED, t->what);
        t->full_logged = true;
        return NULL;
    }
    t->full_logged = false;
    r = vn_alloc(sizeof *r);
    r->key = vn_strdup(key);
    r->window_start_ms = now;
    r->next_hold_ms = (uint64_t)vn_srv.cfg->login_backoff * 1000;
    HASH_ADD_KEYPTR(hh, t->records, r->key, strlen(r->key), r);
    return r;
}

static bool held(login_table *t, const char *key)
{
    login_record *r = NULL;

    HASH_FIND_STR(t->records, key, r);
    return r && now_ms() < r->held_until_ms;
}

static void failed(login_table *t, const char *key)
{
    const vn_config *cfg = vn_srv.cfg;
    uint64_t now = now_ms();
    login_record *r;

    if (!cfg->login_max_failures || !(r = record_for(t, key, now)))
        return;
    if (now - r->window_start_ms >= (uint64_t)cfg->login_failure_window * 1000) {
        r->failures = 0;
        r->window_start_ms = now;
    }
    if (++r->failures < cfg->login_max_failures)
        return;

    uint64_t cap_ms = (uint64_t)cfg->login_backoff_max * 1000;
    uint64_t hold_ms = r->next_hold_ms < cap_ms ? r->next_hold_ms : cap_ms;
    vn_log_warn("limits: %u failed logins for %s %s: refusing its logins for %llu s", r->failures,
                t->what, key, (unsigned long long)(hold_ms / 1000));
    r->held_until_ms = now + hold_ms;
    r->next_hold_ms = hold_ms * 2;
    r->failures = 0;
    r->window_start_ms = now;
}

static char *account_key(const char *host, const char *user)
{
    return vn_asprintf("%s@%s", user, host);
}

bool vn_limits_login_held_ip(const char *ip)
{
    char key[ADDRESS_KEY_SIZE];

    address_key(ip, key);
    return held(&ip_logins, key);
}

bool vn_limits_login_held_account(const char *host, const char *user)
{
    char *key = account_key(host, user);
    bool result = held(&account_logins, key);

    free(key);
    return result;
}

void vn_limits_login_failed(const char *ip, const char *host, const char *user)
{
    char key[ADDRESS_KEY_SIZE];

    address_key(ip, key);
    failed(&ip_logins, key);
    if (user && host) {
        char *account = account_key(host, user);
        failed(&account_logins, account);
        free(account);
    }
}

void vn_limits_login_succeeded(const char *host, const char *user)
{
    char *key = account_key(host, user);
    login_record *r = NULL;

    HASH_FIND_STR(account_logins.records, key, r);
    if (r)
        record_free(&account_logins, r);
    free(key);
}

void vn_limits_clear(void)
{
    while (connections) {
        connection_count *c = connections;
        HASH_DEL(connections, c);
        free(c);
    }
    while (ip_logins.records)
        record_free(&ip_logins, ip_logins.records);
    while (account_logins.records)
        record_free(&account_logins, account_logins.records);
    ip_logins.sweep_at = account_logins.sweep_at = 0;
}

/* ---- token bucket ---- */

bool vn_token_bucket_take(vn_token_bucket *b, unsigned rate, unsigned burst, uint64_t now_ms)
{
    if (!rate)
        return true;
    if (!b->started) {
        b->started = true;
        b->tokens = burst;
    } else if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->last_ms = now_ms;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}
