/*
 * mod_credentials.h - what the files of the documents module (the XMPP
 * binding of xeps/documents.md) share.
 *
 * The core C1 wrote (keys, JWS, SD-JWT, status lists, QR, HTTP routes) is
 * format and crypto only; these files are the service around it: the wallet
 * service at <domain_prefix>.<host>, its issuers, the holders' wallets,
 * presentations with consent, signatures, the audit log, and the two ways a
 * person drives it (ad-hoc commands and a plain chat). Each file owns one
 * concern and its store names:
 *   issuer*.c        issuance, revocation, credential types, status lists
 *   wallet*.c        the credentials and holder key of each account, the
 *                    pending requests, the wallet's ad-hoc commands
 *   presentation*.c  requests for claims, consent, presenting, verifying, QR
 *   consent.c        signing documents
 *   audit.c          the per-account log of everything above
 *   chat.c           the plain-chat dialogue with the wallet service
 */
#ifndef VN_MOD_CREDENTIALS_H
#define VN_MOD_CREDENTIALS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vestnik/adhoc.h>
#include <vestnik/module.h>

#include "cred_keys.h"
#include "sdjwt.h"

#define CRED_NS "urn:vestnik:documents:0"
#define CRED_NODE_PREFIX CRED_NS "#"
#define CRED_FORMAT "dc+sd-jwt"

/* ---- configuration and module state (mod_credentials.c) ---- */

typedef struct cred_issuer {
    char *id;     /* short name, the last part of its iss and of its status list */
    char *name;   /* shown to holders as given by the operator */
    char *jid;    /* bare JID or component domain that may issue */
    char **types; /* short names of the types it may issue */
    size_t n_types;
    vn_cred_key *key; /* private: the server signs for it; public: it signs itself */
    bool self_signed;
    char *iss; /* <base_url>/issuers/<id> */
} cred_issuer;

typedef struct cred_limits {
    int64_t request_timeout;      /* seconds a pending request or signature waits */
    size_t max_pending;           /* pending items per holder */
    size_t max_pending_per_asker; /* of them, from one verifier or service */
    size_t max_claims;            /* claims in one request */
    size_t max_purpose;           /* characters of a purpose or a title */
    size_t max_document;          /* bytes of an inline document */
    size_t max_credentials;       /* credentials in one wallet */
    int64_t max_presentation_age;
    int64_t qr_lifetime;
    int64_t default_validity; /* seconds a credential is valid when the issuer says nothing */
    size_t max_audit;         /* audit entries kept per account */
} cred_limits;

typedef struct cred_state {
    vn_module *module;
    char *prefix;   /* domain_prefix */
    char *base_url; /* https://host:port, no trailing slash */
    cred_issuer *issuers;
    size_t n_issuers;
    unsigned char secret[32]; /* wraps the holder keys */
    cred_limits limits;
} cred_state;

extern cred_state cred;

/* The local host whose wallet service is domain (documents.<host>), or NULL. */
const char *cred_service_host(const char *domain);
/* "documents.<host>" (malloc'd). */
char *cred_service_jid(const char *host);
const cred_issuer *cred_issuer_by_jid(const vn_jid *from);
const cred_issuer *cred_issuer_by_id(const char *id);
const cred_issuer *cred_issuer_by_iss(const char *iss);

/* ---- replies (mod_credentials.c) ---- */

/* An error reply to iq with an application condition in CRED_NS (may be
 * NULL) and an attribute name=value on it (both NULL: none). text: msgid. */
void cred_iq_error(const vn_stanza *iq, const char *type, const char *condition,
                   const char *app_condition, const char *text);
/* A chat message from the wallet service of host to the account's bare JID. */
void cred_tell(const char *host, const char *user, const char *body);
/* A message from the wallet service to jid carrying payload (taken), sent
 * once the writes before it are durable (vn_route_durable). */
void cred_send_payload(const char *host, const char *to, vn_stanza *payload, const char *body);
/* The language texts to a holder are in: the last one their client used
 * with the wallet service, else the server's default (NULL). */
const char *cred_holder_lang(const char *host, const char *user);
void cred_holder_lang_set(const char *host, const char *user, const char *lang);
/* A fresh random id "<prefix>-<16 hex digits>" (malloc'd). */
char *cred_new_id(const char *prefix);

/* ---- credential types (issuer_types.c) ---- */

typedef enum { CRED_CLAIM_STRING, CRED_CLAIM_DATE, CRED_CLAIM_BOOL } cred_claim_kind;

typedef struct cred_claim_def {
    const char *name;
    const char *label; /* msgid */
    cred_claim_kind kind;
} cred_claim_def;

typedef struct cred_type {
    const char *name; /* short name */
    const char *vct;
    const char *label;            /* msgid: "Student card" */
    const cred_claim_def *claims; /* terminated by name NULL */
    const char *const *required;  /* claims an issuance must give; NULL-terminated */
} cred_type;

/* By short name or vct; NULL if unknown. */
const cred_type *cred_type_find(const char *name);
const cred_claim_def *cred_type_claim(const cred_type *t, const char *name);
/* The label (msgid) of a claim of any type, or the name itself. */
const char *cred_claim_label(const char *name);
/* Is value a valid claim value of that kind ("2004-05-04", "true")? */
bool cred_claim_valid(const cred_claim_def *c, const char *value);
/* The predicates derived from a birth date at time now: age_over_18 and
 * age_over_21 added to claims. */
void cred_add_age_predicates(json_t *claims, const char *birthdate, int64_t now);

/* ---- issuance and status (issuer.c, issuer_status.c) ---- */

void cred_issuer_iq(vn_event *ev, const char *host, const vn_stanza *payload);
/* A new entry in the issuer's status list (0 or -1). */
int cred_status_alloc(const cred_issuer *is, uint64_t *idx);
int cred_status_set(const cred_issuer *is, uint64_t idx, unsigned value);
/* The value of an entry, or a negative vn_cred_err. */
int cred_status_get(const cred_issuer *is, uint64_t idx);
/* The URI of the issuer's list (malloc'd). */
char *cred_status_uri(const cred_issuer *is);
/* The signed token of list_id for the HTTP route, or NULL. */
char *cred_status_token(const char *list_id, int64_t *max_age);

/* ---- wallets (wallet.c) ---- */

/* A stored credential, as JSON: id, type (short name), vct, issuer (id),
 * issuer_name, sdjwt, issued_at, expires (0: none), status_idx. */
json_t *wallet_get(const char *host, const char *user, const char *id);
int wallet_put(const char *host, const char *user, const json_t *cred);
int wallet_delete(const char *host, const char *user, const char *id);
/* Every JSON document of an account's store, sorted by cmp (a qsort
 * comparator over json_t *const *); wallets and pending requests. */
json_t *cred_store_list(const char *host, const char *user, const char *store,
                        int (*cmp)(const void *, const void *));
/* The credentials, oldest first (new reference: an array). */
json_t *wallet_list(const char *host, const char *user);
size_t wallet_count(const char *host, const char *user);
/* "valid", "revoked", "suspended" or "expired". */
const char *wallet_status(const json_t *c, int64_t now);
/* The claims of a stored credential as the holder sees them (new ref). */
json_t *wallet_claims(const json_t *c, json_t **paths);
/* The holder's key: the private one the server keeps (made on first use
 * when create), or NULL when the account's client keeps its own (then
 * *client_jwk, if not NULL, gets the public one: new reference). */
vn_cred_key *wallet_holder_key(const char *host, const char *user, bool create,
                               vn_cred_key **client_key);
/* The public key credentials are bound to (a new key, free it). */
vn_cred_key *wallet_holder_public(const char *host, const char *user);
void wallet_iq(vn_event *ev, const char *host, const vn_stanza *payload);
/* "Student card, Example University" in lang (malloc'd). */
char *wallet_title(const json_t *c, const char *lang);
/* The index'th credential (1-based, as listed) or NULL. */
json_t *wallet_nth(const char *host, const char *user, size_t n);
/* Which account holds credential id issued by issuer (malloc'd), or NULL. */
char *wallet_holder_of(const char *host, const char *issuer, const char *id);
void wallet_index_put(const char *host, const char *issuer, const char *id, const char *user);

/* ---- pending requests and signatures (wallet_pending.c) ---- */

/* A pending item, as JSON: id, kind ("present" or "sign"), from (full JID
 * of the asker), created (seconds) and created_us (the order they came
 * in), and the kind's own members. */
int pending_put(const char *host, const char *user, const json_t *item);
json_t *pending_get(const char *host, const char *user, const char *id);
void pending_delete(const char *host, const char *user, const char *id);
/* Pending items of the holder, oldest first (new reference). */
json_t *pending_list(const char *host, const char *user);
/* How many items of a pending_list() asker (a bare JID) is waiting for. */
size_t pending_count_from(const json_t *pending, const char *asker);
/* The oldest of a kind (NULL: any), or NULL. */
json_t *pending_oldest(const char *host, const char *user, const char *kind);
/* Decline what waited longer than request_timeout, on every host. */
void pending_expire(void);

/* ---- presentation (presentation*.c) ---- */

/* A presentation checked before (not a vn_cred_err: the replay store is
 * the binding's, not the format's). */
#define PRESENTATION_EREPLAYED (-100)

void presentation_request_iq(vn_event *ev, const char *host, const vn_stanza *payload);
void presentation_verify_iq(vn_event *ev, const char *host, const vn_stanza *payload);
/* The holder approved these claim paths of the item (none: declined).
 * credential: the id chosen. Sends the presentation or the refusal. */
void presentation_answer(const char *host, const char *user, const json_t *item,
                         const char *credential, const char *const *paths, size_t n_paths);
/* The credential of the holder matching the request best, with the paths
 * it can disclose of those asked (new references), or NULL. */
json_t *presentation_match(const char *host, const char *user, const json_t *item, json_t **paths);
/* Verify a presentation for aud and nonce and record the pair against
 * replays; 0, a vn_cred_err or PRESENTATION_EREPLAYED; r as
 * vn_sdjwt_verify. */
int presentation_verify(const char *host, const char *presentation, const char *aud,
                        const char *nonce, vn_sdjwt_verified *r);
/* A QR code for in-person showing: the URL of its PNG (malloc'd) or NULL
 * with *err set; *link (malloc'd) gets the one-time link the code holds. */
char *presentation_qr(const char *host, const char *user, const json_t *c, const char *const *paths,
                      size_t n_paths, char **link, int *err);
/* The text a holder reads about a pending request (malloc'd). */
char *presentation_describe(const char *host, const char *user, const json_t *item,
                            const char *lang);
/* Drop replay records too old to matter (the sweep). */
void presentation_forget_old(void);
/* A person's sentence (msgid) for a verification failure. */
const char *presentation_strerror(int err);
/* A claim's value as text (malloc'd). */
char *presentation_value_text(const json_t *v);
/* The error stanza for a vn_cred_err from verification. */
void presentation_verify_error(const vn_stanza *iq, int err);
/* "the nonce does not match" etc.: the CRED_NS condition of an error. */
const char *presentation_condition(int err);

/* ---- signatures (consent.c) ---- */

void consent_sign_iq(vn_event *ev, const char *host, const vn_stanza *payload);
/* The holder signed (true) or refused the item. */
void consent_answer(const char *host, const char *user, const json_t *item, bool sign);
char *consent_describe(const json_t *item, const char *lang);

/* ---- audit (audit.c) ---- */

/* Events: "issued", "revoked", "deleted", "requested", "disclosed",
 * "declined", "signed", "refused", "shown" (QR). with: the other party's
 * JID. detail: an object (taken, may be NULL). */
void audit_log(const char *host, const char *user, const char *event, const char *with,
               json_t *detail);
/* One line per entry, newest first, at most limit; disclosures only when
 * who_saw (malloc'd, "" when none). */
char *audit_text(const char *host, const char *user, bool who_saw, size_t limit, const char *lang);

/* ---- people's interfaces (wallet_adhoc.c, presentation_adhoc.c, chat.c) ---- */

void wallet_adhoc_register(void);
void wallet_adhoc_unregister(void);
void presentation_adhoc_register(void);
void presentation_adhoc_unregister(void);
void consent_adhoc_register(void);
void consent_adhoc_unregister(void);
/* "valid" etc. as a msgid. */
const char *wallet_status_label(const char *status);
/* A result form showing a credential and its claims. */
vn_stanza *wallet_show_form(const json_t *c, const char *lang);
/* Delete a credential from the wallet, with its audit entry. */
void wallet_remove(const char *host, const char *user, const json_t *c);
/* Make a QR code of paths of c and send its image's link to `to`
 * (XEP-0066); NULL, or what went wrong (a msgid). *url and *link (may be
 * NULL) get the image's link and the one-time link the code holds. */
const char *wallet_send_qr(const char *host, const char *user, const char *to, const json_t *c,
                           const char *const *paths, size_t n, const char *lang, char **url,
                           char **link);
void chat_message(vn_event *ev, const char *host);
void chat_forget_all(void);

#endif
