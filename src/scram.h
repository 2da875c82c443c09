/*
 * scram.h - SCRAM (RFC 5802, RFC 7677) credentials and the server side of
 * the exchange, with channel binding (the -PLUS mechanisms).
 *
 * Only salted keys are ever stored: StoredKey = H(HMAC(SaltedPassword,
 * "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key"), the salt
 * and the iteration count. Pure computation, no I/O.
 */
#ifndef VESTNIK_SCRAM_H
#define VESTNIK_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "vestnik/util.h"

#define VN_SCRAM_MAX_KEY 64

typedef enum { VN_SCRAM_SHA1, VN_SCRAM_SHA256 } vn_scram_hash;

typedef struct vn_scram_creds {
    vn_scram_hash hash;
    unsigned iterations;
    unsigned char salt[64]; /* ours are 16 bytes; imported ones may be longer */
    size_t salt_len;
    unsigned char stored_key[VN_SCRAM_MAX_KEY];
    unsigned char server_key[VN_SCRAM_MAX_KEY];
    size_t key_len; /* 20 for SHA-1, 32 for SHA-256 */
} vn_scram_creds;

/* Derive credentials from a password (already SASLprep'd/normalised by the
 * caller as UTF-8) with a fresh random salt. 0 or -1. */
int vn_scram_creds_make(vn_scram_hash hash, const char *password, unsigned iterations,
                        vn_scram_creds *out);
/* Derive with a given salt (test vectors, PLAIN verification). */
int vn_scram_creds_derive(vn_scram_hash hash, const char *password, const unsigned char *salt,
                          size_t salt_len, unsigned iterations, vn_scram_creds *out);
/* Constant-time check of a plaintext password against stored credentials. */
bool vn_scram_creds_check(const vn_scram_creds *creds, const char *password);

/* Server side of one exchange. */
typedef struct vn_scram_server vn_scram_server;

typedef enum { VN_SCRAM_CONTINUE, VN_SCRAM_SUCCESS, VN_SCRAM_FAILURE } vn_scram_status;

typedef struct vn_scram_server_params {
    vn_scram_hash hash;
    bool plus;            /* the -PLUS mechanism was selected */
    bool server_has_plus; /* the server offered -PLUS (for the 'y' downgrade check) */
    /* Fills channel binding data for cb_type (*len in: capacity, out:
     * length); 0 or -1 (unsupported type). */
    int (*cb_data)(void *ud, const char *cb_type, unsigned char *out, size_t *len);
    /* Looks up credentials for a username (already unescaped from =2C/=3D,
     * not yet normalised); 0 found, 1 unknown user, -1 error. On unknown
     * users the exchange continues with fake credentials and fails at the
     * end, so user existence is not revealed. */
    int (*lookup)(void *ud, const char *username, vn_scram_creds *out);
    void *ud;
    const char *nonce_override; /* tests only: fixed server nonce part; NULL = random */
    /* The iteration count an unknown user appears to have: the one new
     * accounts get (auth.scram_iterations), so the challenge does not tell
     * them apart; 0: 4096. */
    unsigned unknown_iterations;
} vn_scram_server_params;

vn_scram_server *vn_scram_server_new(const vn_scram_server_params *params);
void vn_scram_server_free(vn_scram_server *s);
/* Feed the next client message (raw, not base64). out receives the next
 * server message (server-first, or server-final on success). On FAILURE,
 * *condition names the SASL failure condition ("not-authorized",
 * "malformed-request", "temporary-auth-failure"), and out may hold a
 * server-final "e=..." message. */
vn_scram_status vn_scram_server_step(vn_scram_server *s, const char *in, size_t len, vn_buf *out,
                                     const char **condition);
const char *vn_scram_server_username(const vn_scram_server *s); /* after SUCCESS */
/* The client's authorization identity (unescaped), "" when it sent none;
 * the caller decides whether it may act as that identity. */
const char *vn_scram_server_authzid(const vn_scram_server *s);

/* Base64 (RFC 4648, padded, no whitespace) as SCRAM, SASL and the account
 * documents use it. encode appends; decode appends and returns 0, or -1
 * if text is not strict base64. */
void vn_scram_b64_encode(const void *data, size_t len, vn_buf *out);
int vn_scram_b64_decode(const char *text, size_t len, vn_buf *out);

#endif
