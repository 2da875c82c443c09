/*
 * fast.h - XEP-0484 FAST: tokens a client gets after a password login, to
 * log in again in one round trip with an HT-SHA-256-* mechanism
 * (draft-schmaus-kitten-sasl-ht) inside SASL2 (sasl2.c).
 *
 * A token belongs to one account and one client instance (the SASL2
 * <user-agent id/>) and to the mechanism it was requested for. Each
 * instance has two slots, 'current' and 'new' (XEP-0484 §6.1): a rotated
 * token waits in 'new', the old one keeps working until the new one is
 * used. A password change forgets every token of the account (accounts.c).
 */
#ifndef VESTNIK_FAST_H
#define VESTNIK_FAST_H

#include <stdbool.h>
#include <stdint.h>

#include "sasl.h"

#define VN_NS_FAST "urn:xmpp:fast:0"

/* Add <fast xmlns='urn:xmpp:fast:0'> with the mechanisms this stream can
 * use (channel binding ones only where sasl.c would offer -PLUS) to a
 * SASL2 <inline/>; nothing when FAST is off (auth.fast_token_lifetime 0). */
void vn_fast_add_feature(const vn_sasl_context *ctx, vn_stanza *inline_el);
bool vn_fast_offered(const vn_sasl_context *ctx, const char *mechanism);

typedef struct vn_fast_login {
    const char *mechanism; /* HT-SHA-256-* as in <authenticate mechanism/> */
    const char *ua_id;     /* the <user-agent id/>; NULL: none (then no token fits) */
    const char *initial;   /* base64 text of <initial-response/>, NULL if absent */
    const char *count;     /* <fast count/>, NULL if absent */
    bool invalidate;       /* <fast invalidate='true'/> */
} vn_fast_login;

typedef struct vn_fast_result {
    char *user;             /* normalised localpart: after SUCCESS */
    char *attempted;        /* the localpart named, if valid (also after FAILURE) */
    bool wrong_credentials; /* FAILURE after checking a token (back-off) */
    bool rotate;            /* SUCCESS with a token due for rotation */
} vn_fast_result;

/* One FAST authentication (always a single step). SUCCESS: out gets the
 * base64 responder message for <additional-data/>. FAILURE: *condition is
 * the SASL condition ("not-authorized", "credentials-expired",
 * "malformed-request", "incorrect-encoding", "temporary-auth-failure"). */
vn_sasl_status vn_fast_authenticate(const vn_sasl_context *ctx, const vn_fast_login *login,
                                    vn_buf *out, vn_fast_result *result, const char **condition);
void vn_fast_result_free(vn_fast_result *result);

/* A new token for (account, client instance, mechanism), into the 'new'
 * slot (the instance's older unused one is dropped; past
 * auth.fast_max_tokens instances the least recently issued is forgotten).
 * 0 with *token (to free) and its expiry in microseconds; -1. */
int vn_fast_issue(vn_store *s, const char *host, const char *user, const char *ua_id,
                  const char *mechanism, char **token, int64_t *expiry_us);

#endif
