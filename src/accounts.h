/*
 * accounts.h - user accounts in the store.
 *
 * An account is one document (store "accounts", key "scram") under
 * (host, user) holding SCRAM-SHA-1 and SCRAM-SHA-256 salted credentials —
 * never the password. The username is the normalised localpart.
 */
#ifndef VESTNIK_ACCOUNTS_H
#define VESTNIK_ACCOUNTS_H

#include <stdbool.h>

#include "scram.h"
#include "vestnik/store.h"

/* 0 created; 1 exists already; -1 error (invalid username or store). */
int vn_accounts_create(vn_store *s, const char *host, const char *user, const char *password,
                       unsigned iterations);
/* 0 changed; 1 no such account; -1 error. */
int vn_accounts_set_password(vn_store *s, const char *host, const char *user, const char *password,
                             unsigned iterations);
/* 0 deleted (with all the user's data); 1 no such account; -1 error. */
int vn_accounts_delete(vn_store *s, const char *host, const char *user);
bool vn_accounts_exists(vn_store *s, const char *host, const char *user);
/* 0 found; 1 no such account; -1 error. */
int vn_accounts_get_creds(vn_store *s, const char *host, const char *user, vn_scram_hash hash,
                          vn_scram_creds *out);
/* 0 password right; 1 wrong or no account; -1 error. */
int vn_accounts_check_password(vn_store *s, const char *host, const char *user,
                               const char *password);
/* Calls cb per account on host in order. */
int vn_accounts_foreach(vn_store *s, const char *host, bool (*cb)(const char *user, void *ud),
                        void *ud);

#endif
