/*
 * accounts.h - user accounts in the store.
 *
 * An account is one document (store "accounts", key "scram") under
 * (host, user) holding SCRAM-SHA-1 and SCRAM-SHA-256 salted credentials —
 * never the password. The username is the normalised localpart. Other
 * documents of the account (its known login addresses, its FAST tokens)
 * live beside it and go with it when it is deleted.
 */
#ifndef VESTNIK_ACCOUNTS_H
#define VESTNIK_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scram.h"
#include "vestnik/store.h"

/* The store of the account's FAST tokens (fast.c), forgotten whenever its
 * password changes. */
#define VN_ACCOUNTS_FAST_STORE "fast-tokens"

/* 0 created; 1 exists already; -1 error (invalid username or store). */
int vn_accounts_create(vn_store *s, const char *host, const char *user, const char *password,
                       unsigned iterations);
/* 0 changed (and every FAST token of the account forgotten); 1 no such
 * account; -1 error. */
int vn_accounts_set_password(vn_store *s, const char *host, const char *user, const char *password,
                             unsigned iterations);
/* 0 deleted (with all the user's data); 1 no such account; -1 error. */
int vn_accounts_delete(vn_store *s, const char *host, const char *user);
/* The account's credentials as they are, replacing any (vestnikctl import
 * of XEP-0227 SCRAM data, which has no password to hash): one record per
 * hash, n >= 1. 0 or -1. */
int vn_accounts_put_creds(vn_store *s, const char *host, const char *user,
                          const vn_scram_creds *creds, size_t n);
bool vn_accounts_exists(vn_store *s, const char *host, const char *user);
/* 0 found; 1 no such account, or none for that hash; -1 error. */
int vn_accounts_get_creds(vn_store *s, const char *host, const char *user, vn_scram_hash hash,
                          vn_scram_creds *out);
/* 0 password right; 1 wrong or no account; -1 error. */
int vn_accounts_check_password(vn_store *s, const char *host, const char *user,
                               const char *password);
/* The addresses an account logged in from (abuse_limits.c), one document
 * (key "login-addresses") of address keys with the time of their last
 * success. Times are Unix seconds; entries older than max_age count as
 * gone. */
bool vn_accounts_address_known(vn_store *s, const char *host, const char *user, const char *address,
                               int64_t now, int64_t max_age);
/* Record a success from address, keeping the max newest addresses; the
 * store is written only when the list changes or the entry's time is a
 * day old. 0 or -1. */
int vn_accounts_remember_address(vn_store *s, const char *host, const char *user,
                                 const char *address, int64_t now, int64_t max_age, size_t max);
/* Calls cb per account on host in order. */
int vn_accounts_foreach(vn_store *s, const char *host, bool (*cb)(const char *user, void *ud),
                        void *ud);

#endif
