/*
 * status_list.h - Token Status List (draft-ietf-oauth-status-list).
 *
 * A credential's status is an entry of `bits` bits (1, 2, 4 or 8; vestnik
 * issues 2, so that suspended can be told from valid) in a byte array:
 * entry i lives in byte i*bits/8, starting at the least significant bits
 * (the draft's §4.1 order). The array is kept in the store by its owner;
 * these functions read and change it in place and turn it into the signed
 * token served over HTTP:
 *
 *   header  {"alg", "kid", "typ": "statuslist+jwt"}
 *   payload {"sub": <the list's URI>, "iat", "exp", "ttl",
 *            "status_list": {"bits": 2, "lst": base64url(zlib DEFLATE)}}
 *
 * Pure functions: callable from any thread.
 */
#ifndef VN_CRED_STATUS_LIST_H
#define VN_CRED_STATUS_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "cred_keys.h"

#define VN_STATUS_VALID 0
#define VN_STATUS_INVALID 1 /* revoked */
#define VN_STATUS_SUSPENDED 2
#define VN_STATUS_BITS 2 /* what vestnik issues */
#define VN_STATUS_TYP "statuslist+jwt"
#define VN_STATUS_MEDIA_TYPE "application/statuslist+jwt"
/* A decompressed list larger than this is refused (VN_CRED_ETOOLARGE). */
#define VN_STATUS_LIST_MAX_BYTES (16 * 1024 * 1024)

/* Bytes needed for entries entries of bits bits (0 for bad bits). */
size_t vn_status_list_size(uint64_t entries, unsigned bits);
/* Entry idx: its value (>= 0), or VN_CRED_EINVAL (bad bits) /
 * VN_CRED_ESTATUS (idx beyond the list). */
int vn_status_list_get(const unsigned char *lst, size_t len, unsigned bits, uint64_t idx);
/* Set entry idx to value (< 2^bits). 0 or VN_CRED_EINVAL / VN_CRED_ESTATUS. */
int vn_status_list_set(unsigned char *lst, size_t len, unsigned bits, uint64_t idx, unsigned value);

/* base64url(zlib DEFLATE(lst)) (free()): the "lst" member. */
char *vn_status_list_encode(const unsigned char *lst, size_t len);
/* The inverse, refusing more than VN_STATUS_LIST_MAX_BYTES. */
int vn_status_list_decode(const char *encoded, unsigned char **lst, size_t *len);

typedef struct vn_status_list_token_params {
    const vn_cred_key *key; /* the issuer's private key */
    const char *kid;        /* NULL: the key's thumbprint */
    const char *uri;        /* "sub": the URI credentials point at */
    int64_t iat;
    int64_t exp; /* 0: none */
    int64_t ttl; /* seconds a verifier may cache it; 0: none */
    unsigned bits;
    const unsigned char *lst;
    size_t len;
} vn_status_list_token_params;

/* The signed statuslist+jwt (free()). */
int vn_status_list_sign(const vn_status_list_token_params *p, char **jwt);

/* Verify a statuslist+jwt with key: typ, signature, sub equal to uri,
 * exp not past at now (with leeway seconds), and decode its list.
 * *lst: free(). Then vn_status_list_get(*lst, *len, *bits, idx). */
int vn_status_list_verify(const char *jwt, size_t len, const vn_cred_key *key, const char *uri,
                          int64_t now, int64_t leeway, unsigned *bits, unsigned char **lst,
                          size_t *lst_len);

#endif
