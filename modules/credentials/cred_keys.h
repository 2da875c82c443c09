/*
 * cred_keys.h - the signing keys of issuers and holders.
 *
 * One opaque type for an ES256 (P-256) or EdDSA (Ed25519) key, private or
 * public only, over an OpenSSL 3 EVP_PKEY. Keys enter as PEM (operator
 * files: PKCS#8 private or SubjectPublicKeyInfo public) or as a public JWK
 * (cnf.jwk of a credential, an issuer's published jwks), and leave as PEM,
 * a public JWK, or an RFC 7638 thumbprint that serves as the "kid".
 *
 * Holder keys the server keeps for accounts are stored wrapped: AES-256-GCM
 * under a key derived (HKDF-SHA256) from a server secret that the caller
 * owns, with the owner's identity (e.g. the bare JID) as associated data,
 * so a wrapped key copied to another account does not unwrap.
 *
 * Thread-safe: nothing here touches global state; a key may be used for
 * signing from several threads at once (EVP contexts are per call).
 */
#ifndef VN_CRED_KEYS_H
#define VN_CRED_KEYS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct vn_cred_key vn_cred_key;

typedef enum vn_cred_alg {
    VN_CRED_ALG_ES256 = 1, /* ECDSA P-256 SHA-256, JWS signature raw r||s (RFC 7518 §3.4) */
    VN_CRED_ALG_EDDSA = 2, /* Ed25519 (RFC 8037), JWK kty OKP crv Ed25519 */
} vn_cred_alg;

/* "ES256" / "EdDSA": the JWS "alg" value. */
const char *vn_cred_alg_name(vn_cred_alg alg);
/* 0 and *alg from a JWS "alg" or config value ("ES256", "EdDSA"; exact
 * case), or VN_CRED_EALG. */
int vn_cred_alg_parse(const char *name, vn_cred_alg *alg);

/* A fresh private key. 0 or VN_CRED_ECRYPTO / VN_CRED_EINVAL. */
int vn_cred_key_generate(vn_cred_alg alg, vn_cred_key **out);
/* A PEM private (PKCS#8, "EC PRIVATE KEY") or public key; other curves and
 * key types, and passphrase-encrypted keys (never prompted for):
 * VN_CRED_EKEY. */
int vn_cred_key_from_pem(const char *pem, size_t len, vn_cred_key **out);
/* The same from a file (at most 64 KiB): VN_CRED_EIO when it cannot be read. */
int vn_cred_key_load_file(const char *path, vn_cred_key **out);
/* PEM text (NUL-terminated, free()), the private key as unencrypted PKCS#8
 * when with_private and the key has one, else the public key. */
char *vn_cred_key_to_pem(const vn_cred_key *key, bool with_private);
/* Write the private key as PKCS#8 PEM, created with mode 0600 and renamed
 * into place. 0 or VN_CRED_EIO / VN_CRED_EINVAL (no private part). */
int vn_cred_key_save_file(const vn_cred_key *key, const char *path);

/* A public key from a JWK object: kty EC crv P-256 (x, y) or kty OKP crv
 * Ed25519 (x). A "d" member is ignored (never imported). An "alg" member,
 * when present, must agree with the key type. */
int vn_cred_key_from_jwk(const json_t *jwk, vn_cred_key **out);
/* The public JWK (new reference): {"kty","crv","x"[,"y"]} plus "kid" (the
 * thumbprint) and "alg" when with_meta; cnf.jwk uses with_meta false. */
json_t *vn_cred_key_to_jwk(const vn_cred_key *key, bool with_meta);
/* RFC 7638 JWK thumbprint, SHA-256, base64url (43 characters; free()). */
char *vn_cred_key_thumbprint(const vn_cred_key *key);

vn_cred_alg vn_cred_key_alg(const vn_cred_key *key);
bool vn_cred_key_has_private(const vn_cred_key *key);
/* Same public key (the private parts are not compared). */
bool vn_cred_key_equal(const vn_cred_key *a, const vn_cred_key *b);
/* A public-only copy. */
vn_cred_key *vn_cred_key_public(const vn_cred_key *key);
void vn_cred_key_free(vn_cred_key *key); /* NULL is fine */

/* The server secret must have at least this many bytes (random, e.g. 32
 * bytes from a file of the operator's). */
#define VN_CRED_SECRET_MIN 16

/* Wrap the private key for storage: "v1.<nonce>.<ciphertext+tag>" in
 * base64url (free()). owner is the associated data (e.g. the bare JID);
 * the same owner must be given to unwrap. 0 or VN_CRED_EINVAL (no private
 * part, short secret). */
int vn_cred_key_wrap(const vn_cred_key *key, const unsigned char *secret, size_t secret_len,
                     const char *owner, char **out);
/* The inverse; VN_CRED_EUNWRAP for a wrong secret, wrong owner or an
 * altered blob, VN_CRED_EMALFORMED for what is not a wrapped key. */
int vn_cred_key_unwrap(const char *wrapped, const unsigned char *secret, size_t secret_len,
                       const char *owner, vn_cred_key **out);

#endif
