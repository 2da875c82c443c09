/*
 * cred_internal.h - what the files of the credentials core share among
 * themselves and keep from the module: the OpenSSL key behind a
 * vn_cred_key, strict JSON parsing, random bytes. Not for mod_credentials.
 */
#ifndef VN_CRED_INTERNAL_H
#define VN_CRED_INTERNAL_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

#include "cred_keys.h"

EVP_PKEY *vn_cred_key_pkey(const vn_cred_key *key);
/* JSON of any type, duplicate object members refused; NULL when invalid. */
json_t *vn_cred_json_parse(const void *data, size_t len);
/* n random bytes; aborts when the system has none to give (as the
 * allocator does when memory runs out: nothing sensible can follow). */
void vn_cred_random(void *buf, size_t n);
/* base64url of n random bytes (free()). */
char *vn_cred_random_b64url(size_t n);

#endif
