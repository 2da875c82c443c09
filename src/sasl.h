/*
 * sasl.h - SASL negotiation for client streams (RFC 6120 §6).
 *
 * Offers SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS) and, on encrypted streams
 * only and if configured, PLAIN; runs one exchange against the accounts in the store.
 * Input and output are the base64 texts of <auth/>, <response/>,
 * <challenge/> and <success/> ("=" for empty).
 */
#ifndef VESTNIK_SASL_H
#define VESTNIK_SASL_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "vestnik/stanza.h"
#include "vestnik/store.h"

typedef struct vn_sasl vn_sasl;

typedef struct vn_sasl_context {
    vn_store *store;
    const char *host; /* the stream's host; accounts are looked up there */
    SSL *ssl;         /* for channel binding; NULL without TLS or without one
                         connection (BOSH) */
    bool secure;      /* encrypted (TLS, or HTTPS for the web transports) */
    const char *peer_ip;
    bool allow_plain; /* PLAIN configured (still only offered over TLS) */
    /* Channel binding may be offered (-PLUS, XEP-0440 types): false on web
     * transports unless c2s.web_channel_binding, as a browser cannot reach
     * the TLS channel and would fail on a -PLUS it was offered. */
    bool channel_binding;
    /* The client already tried a -PLUS mechanism on this stream, so it saw
     * them offered: a later SCRAM 'y' flag means "none of your channel
     * binding types" (e.g. a tls-unique-only client on TLS 1.3), not a
     * stripped mechanism list, and is accepted. */
    bool client_tried_plus;
    /* An account whose logins from this address are held back
     * (abuse_limits.c): its attempts fail with temporary-auth-failure before
     * any credential is checked. NULL: none is. */
    bool (*account_held)(const char *host, const char *user, const char *ip);
    unsigned scram_iterations; /* new accounts' count, which unknown users show */
} vn_sasl_context;

typedef enum { VN_SASL_CONTINUE, VN_SASL_SUCCESS, VN_SASL_FAILURE } vn_sasl_status;

/* Add <mechanisms xmlns=sasl><mechanism>..</mechanism>...</mechanisms>
 * for this stream to features; channel binding types go into a
 * <sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'/> (XEP-0440) element. */
void vn_sasl_add_features(const vn_sasl_context *ctx, vn_stanza *features);
/* Add one <mechanism/> per mechanism offered to list, in list's namespace
 * (the SASL2 <authentication/> offers the same ones). */
void vn_sasl_add_mechanisms(const vn_sasl_context *ctx, vn_stanza *list);

/* Start an exchange. On an unknown or unoffered mechanism returns NULL and
 * sets *condition ("invalid-mechanism", "encryption-required"). The
 * context is copied; its strings must outlive the exchange. */
vn_sasl *vn_sasl_start(const vn_sasl_context *ctx, const char *mechanism, const char **condition);
void vn_sasl_free(vn_sasl *s);

/* One step: in is the base64 text of <auth/> or <response/> (may be "" or
 * "="). out gets the base64 text for <challenge/> (CONTINUE) or <success/>
 * (SUCCESS, "" if no additional data). On FAILURE, *condition is the SASL
 * failure condition ("not-authorized", "malformed-request",
 * "incorrect-encoding", "temporary-auth-failure", ...). */
vn_sasl_status vn_sasl_step(vn_sasl *s, const char *in, vn_buf *out, const char **condition);

/* The authenticated account's normalised localpart (after SUCCESS). */
const char *vn_sasl_username(const vn_sasl *s);
/* The normalised localpart the client tried to log in as, once the
 * exchange named one (also after FAILURE); NULL before or if invalid. */
const char *vn_sasl_attempted_username(const vn_sasl *s);
/* After FAILURE: true if the password (or SCRAM proof) was checked and
 * wrong, or the account does not exist; false for a malformed exchange, a
 * channel binding mismatch or a refusal before any check. */
bool vn_sasl_wrong_credentials(const vn_sasl *s);
const char *vn_sasl_mechanism(const vn_sasl *s);

#endif
