/*
 * abuse_limits.h - accounting against abuse: client connections per address,
 * login back-off per address and per account, and the token bucket that
 * bounds a stream's stanza rate.
 *
 * The limits themselves are the `limits:` keys of the configuration
 * (read at each call, so a reload applies at once). Addresses are textual
 * IPs as conn.c gives them; IPv6 addresses are counted per /64, the block
 * a single host commonly holds.
 */
#ifndef VESTNIK_ABUSE_LIMITS_H
#define VESTNIK_ABUSE_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "vestnik/util.h"

/* A new client connection from ip: counted and true, or false (nothing
 * counted) when the address already has limits.max_connections_per_ip. */
bool vn_limits_connection_open(const char *ip);
/* A connection that vn_limits_connection_open counted has closed. */
void vn_limits_connection_closed(const char *ip);

/* Login back-off, without a lock-out button for attackers:
 *  - an address (IPv4, or an IPv6 /64) with limits.login_max_failures wrong
 *    credentials within limits.login_failure_window seconds is held: its
 *    logins are refused for limits.login_backoff seconds, doubling at each
 *    new back-off up to limits.login_backoff_max;
 *  - an IPv4 /24 is held the same way after limits.login_range_max_failures;
 *  - an account counts only the failures from addresses that never logged
 *    in to it (its known addresses, accounts.c, are remembered at each
 *    success); once over the limit, only such unknown addresses are held
 *    back for it, never the known ones, so guessing gets slow while the
 *    owner still logs in at once. */
bool vn_limits_login_held_ip(const char *ip);
bool vn_limits_login_held_account(const char *host, const char *user, const char *ip);
/* Wrong credentials from ip; user is the normalised localpart tried, or
 * NULL if the attempt named none. */
void vn_limits_login_failed(const char *ip, const char *host, const char *user);
/* The account logged in from ip: the address becomes (or stays) one of its
 * known addresses. The account's record of unknown-address failures stays:
 * a success of the owner must not reopen guessing at once. */
void vn_limits_login_succeeded(const char *ip, const char *host, const char *user);
/* One line for `vestnikctl status`: the policy and what is held now. */
void vn_limits_describe(vn_buf *out);

/* Forget everything (server shutdown). */
void vn_limits_clear(void);

/* A token bucket: `burst` tokens at most, refilled at `rate` per second.
 * Zero-initialised, it starts full. */
typedef struct vn_token_bucket {
    double tokens;
    uint64_t last_ms;
    bool started;
} vn_token_bucket;

/* Take one token at now_ms; false if none is left. rate 0: no limit. */
bool vn_token_bucket_take(vn_token_bucket *b, unsigned rate, unsigned burst, uint64_t now_ms);

#endif
