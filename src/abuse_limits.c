/*
 * abuse_limits.c - per-address and per-account accounting against abuse.
 *
 * Four uthash tables, all on the loop thread: open client connections per
 * address, and login failure records per address, per IPv4 /24 range and
 * per account. An account's record counts only failures from addresses
 * that never logged in to it: its known addresses are kept in the store
 * beside it (accounts.c), so that a restart does not hand an attacker the
 * owner's lock-out, and its hold never applies to them. A
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

#include "accounts.h"
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
static login_table range_logins = {.what = "address range"};
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

/* The IPv4 /24 an address is in, as "a.b.c.0/24"; false for IPv6, whose
 * address key is already its /64. */
static bool range_key(const char *ip, char out[ADDRESS_KEY_SIZE])
{
    struct in_addr addr;

    if (inet_pton(AF_INET, ip, &addr) != 1)
        return false;
    addr.s_addr &= htonl(0xffffff00u);
    inet_ntop(AF_INET, &addr, out, INET_ADDRSTRLEN);
    strcat(out, "/24");
    return true;
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

/* One more failure for key; past max within the window, a back-off
 * starts, logged with what it holds (whom, for how long). */
static void failed(login_table *t, const char *key, unsigned max, const char *scope)
{
    const vn_config *cfg = vn_srv.cfg;
    uint64_t now = now_ms();
    login_record *r;

    if (!max || !(r = record_for(t, key, now)))
        return;
    if (now - r->window_start_ms >= (uint64_t)cfg->login_failure_window * 1000) {
        r->failures = 0;
        r->window_start_ms = now;
    }
    if (++r->failures < max)
        return;

    uint64_t cap_ms = (uint64_t)cfg->login_backoff_max * 1000;
    uint64_t hold_ms = r->next_hold_ms < cap_ms ? r->next_hold_ms : cap_ms;
    vn_log_warn("limits: %u failed logins for %s %s: refusing its logins%s for %llu s", r->failures,
                t->what, key, scope, (unsigned long long)(hold_ms / 1000));
    r->held_until_ms = now + hold_ms;
    r->next_hold_ms = hold_ms * 2;
    r->failures = 0;
    r->window_start_ms = now;
}

static char *account_key(const char *host, const char *user)
{
    return vn_asprintf("%s@%s", user, host);
}

static int64_t now_s(void)
{
    return vn_now_us() / 1000000;
}

/* ip (by its address key) logged in to the account before. */
static bool known_address(const char *host, const char *user, const char *ip)
{
    char key[ADDRESS_KEY_SIZE];

    address_key(ip, key);
    return vn_accounts_address_known(vn_srv.store, host, user, key, now_s(),
                                     vn_srv.cfg->login_known_address_ttl);
}

bool vn_limits_login_held_ip(const char *ip)
{
    char key[ADDRESS_KEY_SIZE];

    address_key(ip, key);
    if (held(&ip_logins, key))
        return true;
    return range_key(ip, key) && held(&range_logins, key);
}

bool vn_limits_login_held_account(const char *host, const char *user, const char *ip)
{
    char *key = account_key(host, user);
    bool result = held(&account_logins, key) && !known_address(host, user, ip);

    if (result)
        vn_log_info("limits: login to %s from %s refused: the account is in back-off for "
                    "addresses it does not know",
                    key, ip);
    free(key);
    return result;
}

void vn_limits_login_failed(const char *ip, const char *host, const char *user)
{
    const vn_config *cfg = vn_srv.cfg;
    char key[ADDRESS_KEY_SIZE];

    address_key(ip, key);
    failed(&ip_logins, key, cfg->login_max_failures, "");
    if (range_key(ip, key))
        failed(&range_logins, key, cfg->login_range_max_failures, "");
    if (user && host && !known_address(host, user, ip)) {
        char *account = account_key(host, user);
        failed(&account_logins, account, cfg->login_max_failures,
               " from addresses it does not know");
        free(account);
    }
}

void vn_limits_login_succeeded(const char *ip, const char *host, const char *user)
{
    const vn_config *cfg = vn_srv.cfg;
    char key[ADDRESS_KEY_SIZE];

    address_key(ip, key);
    if (vn_accounts_remember_address(vn_srv.store, host, user, key, now_s(),
                                     cfg->login_known_address_ttl, cfg->login_known_addresses) != 0)
        vn_log_warn("limits: cannot record %s as a known address of %s@%s", key, user, host);
}

static unsigned count_held(const login_table *t)
{
    uint64_t now = now_ms();
    unsigned n = 0;

    for (const login_record *r = t->records; r; r = r->hh.next)
        n += now < r->held_until_ms;
    return n;
}

void vn_limits_describe(vn_buf *out)
{
    const vn_config *cfg = vn_srv.cfg;

    if (!cfg->login_max_failures) {
        vn_buf_append_str(out, "login back-off: off");
        return;
    }
    vn_buf_printf(out, "login back-off: %u failures in %u s hold an address (IPv6: its /64)",
                  cfg->login_max_failures, cfg->login_failure_window);
    if (cfg->login_range_max_failures)
        vn_buf_printf(out, ", %u an IPv4 /24", cfg->login_range_max_failures);
    vn_buf_printf(out,
                  ", %u an account for addresses it does not know (never its %u known ones),"
                  " for %u s doubling to %u s; held now: %u address(es), %u range(s), "
                  "%u account(s)",
                  cfg->login_max_failures, cfg->login_known_addresses, cfg->login_backoff,
                  cfg->login_backoff_max, count_held(&ip_logins), count_held(&range_logins),
                  count_held(&account_logins));
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
    while (range_logins.records)
        record_free(&range_logins, range_logins.records);
    while (account_logins.records)
        record_free(&account_logins, account_logins.records);
    ip_logins.sweep_at = range_logins.sweep_at = account_logins.sweep_at = 0;
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
