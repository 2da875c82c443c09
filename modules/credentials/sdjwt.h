/*
 * sdjwt.h - SD-JWT VC: issue, hold, present and verify (RFC 9901 and
 * draft-ietf-oauth-sd-jwt-vc).
 *
 * The wire form is "<issuer-signed JWT>~<disclosure>~...~[<KB-JWT>]". The
 * issuer-signed JWT has header typ "dc+sd-jwt", alg ES256 or EdDSA, and a
 * kid; its payload carries in plain text only what the SD-JWT VC draft
 * says must not be selectively disclosable: iss, vct, iat, nbf, exp, cnf
 * (the holder key as cnf.jwk), status (status.status_list {idx, uri},
 * Token Status List draft) and _sd_alg "sha-256". Every claim the issuer
 * gives is selectively disclosable: a disclosure base64url(JSON [salt,
 * name, value]) with a 128-bit random salt, whose base64url(SHA-256) digest
 * sits in the _sd array of the object holding it, the array shuffled and
 * padded with decoy digests. A nested object (e.g. "address") is disclosed
 * recursively: its own disclosure carries an object whose members are
 * disclosures again, so a holder can show "address.locality" without
 * "address.street_address". An array is disclosed the same way: the
 * array's disclosure holds one array-element disclosure ({"...": digest})
 * per element, with decoys among them, so one driving licence category
 * can be shown without the others.
 *
 * Claim paths name claims for presentation and in results: member names
 * joined with '.', e.g. "age_over_18", "address.locality"; an object's path
 * ("address") selects all its disclosable members. Array elements appear
 * as "name.0", "name.1", ..., counted in the array as its reader sees it
 * (the holder all of it, a verifier only what was disclosed), so a path
 * always finds its value with vn_sdjwt_claim_get in the claims beside it
 * (a name with '.' in it, such as a URI, is found too). A disclosure with
 * an empty claim name is refused as malformed: it would have no path.
 *
 * Verification trusts nothing in the input: the issuer key comes from the
 * caller's callback (from the configured trusted issuers), every presented
 * disclosure's digest must be signed in exactly one _sd (or "...") place,
 * digests and disclosures must be unique, a disclosure must not override
 * a plain claim, and the key-binding JWT (typ "kb+jwt") must be signed by
 * the cnf key over the exact presented SD-JWT (sd_hash), for the expected
 * aud and nonce, with a fresh iat. Each failure has its own code
 * (cred_error.h) and a detail naming the claim, digest or field.
 *
 * Pure functions, no global state: callable from any thread.
 */
#ifndef VN_CRED_SDJWT_H
#define VN_CRED_SDJWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cred_error.h"
#include "cred_keys.h"

/* Limits of what is parsed (VN_CRED_ETOOLARGE beyond them). */
#define VN_SDJWT_MAX_LEN (512 * 1024) /* whole SD-JWT (+KB) in bytes */
#define VN_SDJWT_MAX_DISCLOSURES 512  /* disclosures in one SD-JWT */
#define VN_SDJWT_MAX_DEPTH 16         /* nesting of objects/arrays */

/* Header typ values. */
#define VN_SDJWT_TYP "dc+sd-jwt"
#define VN_SDJWT_KB_TYP "kb+jwt"
/* Media type of an SD-JWT VC (HTTP Content-Type, XMPP payloads). */
#define VN_SDJWT_MEDIA_TYPE "application/dc+sd-jwt"

/* ---- issuance ---- */

typedef struct vn_sdjwt_issue_params {
    const vn_cred_key *issuer_key; /* private; required */
    const char *kid;               /* header kid; NULL: the key's thumbprint */
    const char *iss;               /* issuer identifier (an https URL); required */
    const char *vct;               /* credential type; required */
    int64_t iat;                   /* required (seconds since the epoch) */
    int64_t nbf;                   /* 0: none */
    int64_t exp;                   /* 0: none */
    const vn_cred_key *holder_key; /* its public part becomes cnf.jwk; NULL: none */
    const char *status_uri;        /* status list URI; NULL: no status claim */
    uint64_t status_idx;           /* the credential's index in that list */
    /* The claims, all selectively disclosable (an object; none of the
     * reserved names iss, vct, iat, nbf, exp, cnf, status, _sd, _sd_alg,
     * "..."; VN_CRED_ECONFLICT otherwise). Nested objects and arrays are
     * disclosed recursively. */
    const json_t *claims;
    /* Up to this many decoy digests per _sd array and decoy elements per
     * array (a random number from 1 to decoys_max; 0: none). */
    unsigned decoys_max;
} vn_sdjwt_issue_params;

/* The credential "<jwt>~<d1>~...~<dn>~" (free()). */
int vn_sdjwt_issue(const vn_sdjwt_issue_params *p, char **out);

/* ---- holding: parse and read ---- */

typedef struct vn_sdjwt_disclosure {
    char *encoded; /* as in the SD-JWT */
    char *digest;  /* base64url(SHA-256(encoded)) */
    char *salt;
    char *name; /* NULL for an array element */
    json_t *value;
    char *path; /* where it was found in the payload; NULL: its digest is nowhere */
} vn_sdjwt_disclosure;

typedef struct vn_sdjwt {
    char *jwt;      /* the issuer-signed JWT, compact */
    json_t *header; /* decoded, NOT verified */
    json_t *payload;
    vn_sdjwt_disclosure *disclosures;
    size_t n_disclosures;
    char *kb_jwt; /* NULL when the SD-JWT ends with '~' */
} vn_sdjwt;

/* Split and decode; no signature is checked (use vn_sdjwt_verify for
 * that). Paths are resolved (disclosure->path); a digest twice is
 * VN_CRED_EDUPLICATE. */
int vn_sdjwt_parse(const char *s, size_t len, vn_sdjwt **out);
void vn_sdjwt_free(vn_sdjwt *sd); /* NULL is fine */

/* The claims as a holder sees them, every disclosure applied and _sd,
 * _sd_alg and decoys removed (new reference). paths (may be NULL) gets a
 * new array of the disclosable claim paths, in payload order: what a
 * wallet may offer to show. */
json_t *vn_sdjwt_claims(const vn_sdjwt *sd, json_t **paths);

/* The value at a claim path ("address.locality", "nationalities.1") in
 * claims as vn_sdjwt_claims or vn_sdjwt_verified give them, borrowed;
 * NULL when there is none. Array indexes count the elements present. */
const json_t *vn_sdjwt_claim_get(const json_t *claims, const char *path);

/* ---- presentation ---- */

typedef struct vn_sdjwt_present_params {
    const char *const *paths; /* claim paths to disclose (see above) */
    size_t n_paths;
    /* Key binding: when holder_key is set, a KB-JWT {iat, aud, nonce,
     * sd_hash} signed with it is appended; aud and nonce are then
     * required. holder_key must match the credential's cnf.jwk
     * (VN_CRED_ENOCNF otherwise). */
    const vn_cred_key *holder_key;
    const char *aud;
    const char *nonce;
    int64_t iat;
} vn_sdjwt_present_params;

/* From a credential as issued (or as stored: a trailing KB-JWT is dropped),
 * the presentation with only the disclosures the paths need (a nested
 * claim brings its parents' disclosures along; nothing else). A path the
 * credential cannot disclose is VN_CRED_ENOCLAIM, with the path in
 * *bad_path when bad_path is not NULL (free()). *out: free(). */
int vn_sdjwt_present(const char *sdjwt, size_t len, const vn_sdjwt_present_params *p, char **out,
                     char **bad_path);

/* ---- verification ---- */

/* The key of the issuer iss for header kid (NULL when the header has
 * none) and alg, or NULL when iss is not trusted (VN_CRED_EISSUER). The
 * key stays the caller's and must live until vn_sdjwt_verify returns. */
typedef const vn_cred_key *(*vn_sdjwt_issuer_key_cb)(const char *iss, const char *kid,
                                                     vn_cred_alg alg, void *ud);
/* The status value (0 valid, 1 invalid, 2 suspended, 3 and up: issuer
 * specific, refused) of entry idx in the list at uri, or a negative
 * vn_cred_err (VN_CRED_ESTATUS when the list cannot be had). */
typedef int (*vn_sdjwt_status_cb)(const char *uri, uint64_t idx, void *ud);

typedef struct vn_sdjwt_verify_params {
    vn_sdjwt_issuer_key_cb issuer_key; /* required */
    void *issuer_ud;
    /* NULL: the status claim is not checked (result.status -1). A
     * credential with a status claim and a status callback that fails is
     * refused (fail closed). */
    vn_sdjwt_status_cb status;
    void *status_ud;
    const char *vct; /* expected type; NULL: any */
    /* Key binding: required when require_kb (VN_CRED_EKBMISSING without
     * one); a present KB-JWT is always verified. aud and nonce, when not
     * NULL, must equal the KB-JWT's (byte for byte). */
    bool require_kb;
    const char *aud;
    const char *nonce;
    int64_t now;        /* 0: the current time */
    int64_t leeway;     /* clock skew allowed for exp, nbf, iat (seconds) */
    int64_t kb_max_age; /* KB-JWT iat no older than this (seconds); 0: 300 */
} vn_sdjwt_verify_params;

typedef struct vn_sdjwt_verified {
    /* On success: plain claims (iss, vct, iat, exp, cnf, status, ...) and
     * the disclosed ones, without _sd, _sd_alg or undisclosed digests (a
     * new reference; vn_sdjwt_verified_free drops it). */
    json_t *claims;
    json_t *disclosed; /* array of the disclosed claim paths */
    const char *iss;   /* point into claims */
    const char *vct;
    int64_t iat, exp;        /* exp 0: none */
    vn_cred_key *holder_key; /* cnf.jwk, NULL when none */
    int status;              /* the status value checked, -1 when not checked */
    /* Key binding, when a KB-JWT was verified. A replay cache keys on the
     * audience and nonce (the verifier's own request) and lives at least
     * kb_max_age + leeway; not on sd_hash, which is the same for every
     * presentation of the same disclosures of one credential. */
    bool key_bound;
    int64_t kb_iat;
    char sd_hash[48];
    char nonce[128]; /* the KB-JWT's nonce (truncated when longer) */
    /* On failure: what exactly failed (a claim path, a digest, a field
     * name, an issuer), "" when nothing more precise is known. Not
     * translated: for logs and the machine-readable part of errors. */
    char detail[160];
} vn_sdjwt_verified;

/* 0 with r filled, or the first failure's vn_cred_err with r->detail set
 * (r->claims NULL). r is always initialised; free it with
 * vn_sdjwt_verified_free in both cases. */
int vn_sdjwt_verify(const char *s, size_t len, const vn_sdjwt_verify_params *p,
                    vn_sdjwt_verified *r);
void vn_sdjwt_verified_free(vn_sdjwt_verified *r);

#endif
