/*
 * jws.h - base64url and JWS compact serialization (RFC 7515).
 *
 * Only what SD-JWT needs: the compact form header.payload.signature with
 * ES256 or EdDSA (cred_keys.h). The header's "alg" is always set from the
 * key; the verifier takes the algorithm from the key it is given, never
 * from the header ("alg":"none" and algorithm confusion are refused), and
 * requires the header's "alg" to match it. Unknown "crit" headers are
 * refused (RFC 7515 §4.1.11).
 */
#ifndef VN_CRED_JWS_H
#define VN_CRED_JWS_H

#include <jansson.h>
#include <stddef.h>

#include "cred_keys.h"

/* A JWS (or SD-JWT issuer part, KB-JWT) longer than this is refused:
 * VN_CRED_ETOOLARGE. */
#define VN_JWS_MAX_LEN (256 * 1024)

/* base64url without padding (RFC 4648 §5), NUL-terminated (free()). */
char *vn_b64url_encode(const void *data, size_t len);
/* Decode len characters (no padding accepted, no whitespace) into a new
 * buffer (free(); NUL-terminated, not counted in *out_len).
 * VN_CRED_EMALFORMED on any other character or a non-canonical tail. */
int vn_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len);
/* base64url(SHA-256(data)) (free()): the SD-JWT digest and sd_hash. */
char *vn_b64url_sha256(const void *data, size_t len);

/* Sign payload bytes: header is copied and gets "alg" (and "kid" when kid
 * is not NULL; a header's own "kid" is kept otherwise). *out is the compact
 * JWS (free()). 0 or VN_CRED_EINVAL (no private key) / VN_CRED_ECRYPTO. */
int vn_jws_sign(const vn_cred_key *key, const json_t *header, const char *kid, const void *payload,
                size_t payload_len, char **out);
/* The same with a JSON payload (serialized compactly, keys in order). */
int vn_jws_sign_json(const vn_cred_key *key, const json_t *header, const char *kid,
                     const json_t *payload, char **out);

/* Decode without verifying (to read "kid", "typ", "iss" before choosing a
 * key). header and payload are new references (either may be NULL when not
 * wanted); the payload must be a JSON object. */
int vn_jws_decode(const char *jws, size_t len, json_t **header, json_t **payload);
/* Verify with key and decode. VN_CRED_ESIGNATURE when the signature does
 * not verify, VN_CRED_EALG when the header's alg is not the key's. */
int vn_jws_verify(const char *jws, size_t len, const vn_cred_key *key, json_t **header,
                  json_t **payload);

/* Detached payload (RFC 7515 Appendix F): "header..signature" over payload
 * bytes the verifier already has (a document hash for consent signing). */
int vn_jws_sign_detached(const vn_cred_key *key, const json_t *header, const char *kid,
                         const void *payload, size_t payload_len, char **out);
int vn_jws_verify_detached(const char *jws, size_t len, const vn_cred_key *key, const void *payload,
                           size_t payload_len, json_t **header);

#endif
