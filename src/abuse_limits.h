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

/* A new client connection from ip: counted and true, or false (nothing
 * counted) when the address already has limits.max_connections_per_ip. */
bool vn_limits_connection_open(const char *ip);
/* A connection that vn_limits_connection_open counted has closed. */
void vn_limits_connection_closed(const char *ip);

/* Login back-off: after limits.login_max_failures wrong credentials within
 * limits.login_failure_window, logins from that address (or for that
 * account) are refused for limits.login_backoff seconds, doubling at each
 * new back-off up to limits.login_backoff_max. */
bool vn_limits_login_held_ip(const char *ip);
bool vn_limits_login_held_account(const char *host, const char *user);
/* Wrong credentials from ip; user is the normalised localpart tried, or
 * NULL if the attempt named none. */
void vn_limits_login_failed(const char *ip, const char *host, const char *user);
/* The account logged in: its failures are forgotten (the address's are
 * not, or one valid account would shield a guessing attack). */
void vn_limits_login_succeeded(const char *host, const char *user);

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
