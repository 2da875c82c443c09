/*
 * cred_http.h - the credentials module's routes on the http listener.
 *
 * Three things a verifier fetches without XMPP:
 *   GET /.well-known/jwt-vc-issuer[/<issuer-path>]
 *       the SD-JWT VC issuer metadata {"issuer", "jwks": {"keys": [...]}}
 *       for the issuer identifier https://<host>[/<issuer-path>]
 *       (draft-ietf-oauth-sd-jwt-vc, "JWT VC Issuer Metadata");
 *   GET <status_prefix><list-id>
 *       a status list token, Content-Type application/statuslist+jwt,
 *       Cache-Control max-age from its ttl;
 *   GET <link_prefix><token>
 *       a short-lived object (a presentation behind a QR code) that
 *       expires after its ttl and after its last allowed fetch.
 * Only GET and HEAD (405 otherwise, with Allow). Errors are an HTTP status
 * with a JSON body {"error": <token>, "error_description": <English>}.
 * All three may be used by pages on any origin (CORS: GET).
 *
 * The module owns the data: the routes ask it through callbacks for the
 * metadata and the tokens, so nothing is cached here that the module might
 * change (a revocation shows in the next fetch). The one-time links are
 * the exception: they live here, in memory only (lost on restart, by
 * design: they are short-lived).
 *
 * Loop thread only (vestnik/http.h).
 */
#ifndef VN_CRED_HTTP_H
#define VN_CRED_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cred_keys.h"

typedef struct vn_cred_http_ops {
    /* The metadata document for issuer_path ("" for the bare host, else
     * e.g. "university" for https://host/university), a new reference,
     * or NULL: 404. vn_cred_issuer_metadata builds one. */
    json_t *(*issuer_metadata)(const char *issuer_path, void *ud);
    /* The signed status list token for list_id (the path after
     * status_prefix; free()), or NULL: 404. *max_age: seconds for
     * Cache-Control (0: no-cache). */
    char *(*status_list)(const char *list_id, int64_t *max_age, void *ud);
} vn_cred_http_ops;

typedef struct vn_cred_http_config {
    const char *status_prefix; /* NULL: "/credentials/status/" */
    const char *link_prefix;   /* NULL: "/credentials/link/" */
    size_t max_links;          /* live one-time links at most; 0: 1000 */
    size_t max_link_size;      /* bytes per link body; 0: 64 KiB */
} vn_cred_http_config;

/* Claim the three route prefixes. ops and ud must live until
 * vn_cred_http_stop. 0, or VN_CRED_EINVAL when already started or a
 * prefix is taken by another route (nothing is claimed then). */
int vn_cred_http_start(const vn_cred_http_config *cfg, const vn_cred_http_ops *ops, void *ud);
/* Remove the routes and forget every link. Fine when not started. */
void vn_cred_http_stop(void);

/* Serve body (copied) at a new unguessable path (a 128-bit random token)
 * under link_prefix for ttl seconds (1 to 604800) and at most max_uses
 * GETs (0: 1; a HEAD does not count).
 * *path: "<link_prefix><token>" (free()); the caller prefixes its public
 * base URL. VN_CRED_ETOOLARGE over max_link_size, VN_CRED_EINVAL when not
 * started or when max_links are live (expired ones are dropped first). */
int vn_cred_http_link_create(const char *content_type, const void *body, size_t len, int64_t ttl,
                             unsigned max_uses, char **path);
/* Withdraw a link early (path as returned); unknown paths are fine. */
void vn_cred_http_link_remove(const char *path);

/* {"issuer": issuer, "jwks": {"keys": [public JWKs with kid and alg]}}, a
 * new reference. */
json_t *vn_cred_issuer_metadata(const char *issuer, const vn_cred_key *const *keys, size_t n);
/* The issuer path of an issuer identifier: "https://host/a/b" -> "a/b",
 * "https://host" -> "" (free()); NULL when not an https URL or it has a
 * query or fragment. Metadata URL: https://host/.well-known/jwt-vc-issuer
 * followed by "/" and the path when the path is not empty. */
char *vn_cred_issuer_path(const char *issuer);

#endif
