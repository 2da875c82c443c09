/*
 * issuer_status.c - the status list of each issuer the server signs for
 * (Token Status List): entries handed out at issuance, set on revocation,
 * read by verification and served, signed, by cred_http.c's route.
 *
 * One list per issuer, so every credential of an issuer hides in the same
 * crowd; it lives in the store as raw bytes under the first host (issuers
 * are server-wide) with the next free index beside it, and grows by
 * STATUS_CHUNK entries when full.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mod_credentials.h"
#include "status_list.h"

#define STATUS_STORE "credentials_status"
#define STATUS_CHUNK 16384 /* entries added at a time */
#define STATUS_TTL 60      /* seconds a verifier may cache a list */
#define STATUS_VALIDITY 86400

static const char *list_host(void)
{
    return vn_local_hosts()[0];
}

static int read_list(const cred_issuer *is, vn_buf *lst)
{
    return vn_store_get(vn_server_store(), list_host(), "", STATUS_STORE, is->id, lst);
}

char *cred_status_uri(const cred_issuer *is)
{
    return vn_asprintf("%s/credentials/status/%s", cred.base_url, is->id);
}

int cred_status_alloc(const cred_issuer *is, uint64_t *idx)
{
    vn_store *s = vn_server_store();
    char *next_key = vn_asprintf("%s.next", is->id);
    vn_buf v, lst;
    vn_buf_init(&v);
    vn_buf_init(&lst);
    uint64_t next = 0;
    if (vn_store_get(s, list_host(), "", STATUS_STORE, next_key, &v) == VN_STORE_OK)
        next = strtoull(v.data, NULL, 10);
    int rc = -1;
    if (read_list(is, &lst) != VN_STORE_OK)
        vn_buf_reset(&lst);
    size_t need = vn_status_list_size(next + 1, VN_STATUS_BITS);
    if (lst.len < need) {
        size_t grown = vn_status_list_size(next + STATUS_CHUNK, VN_STATUS_BITS);
        size_t old = lst.len;
        char *zeros = vn_alloc(grown - old);
        vn_buf_append(&lst, zeros, grown - old);
        free(zeros);
        if (vn_store_put(s, list_host(), "", STATUS_STORE, is->id, lst.data, lst.len) !=
            VN_STORE_OK)
            goto out;
    }
    char text[24];
    int n = snprintf(text, sizeof text, "%llu", (unsigned long long)(next + 1));
    if (vn_store_put(s, list_host(), "", STATUS_STORE, next_key, text, (size_t)n) == VN_STORE_OK) {
        *idx = next;
        rc = 0;
    }
out:
    vn_buf_free(&v);
    vn_buf_free(&lst);
    free(next_key);
    return rc;
}

int cred_status_set(const cred_issuer *is, uint64_t idx, unsigned value)
{
    vn_buf lst;
    vn_buf_init(&lst);
    int rc = -1;
    if (read_list(is, &lst) == VN_STORE_OK &&
        vn_status_list_set((unsigned char *)lst.data, lst.len, VN_STATUS_BITS, idx, value) == 0 &&
        vn_store_put(vn_server_store(), list_host(), "", STATUS_STORE, is->id, lst.data, lst.len) ==
            VN_STORE_OK)
        rc = 0;
    vn_buf_free(&lst);
    return rc;
}

int cred_status_get(const cred_issuer *is, uint64_t idx)
{
    vn_buf lst;
    vn_buf_init(&lst);
    int rc = VN_CRED_ESTATUS;
    if (read_list(is, &lst) == VN_STORE_OK)
        rc = vn_status_list_get((const unsigned char *)lst.data, lst.len, VN_STATUS_BITS, idx);
    vn_buf_free(&lst);
    return rc;
}

char *cred_status_token(const char *list_id, int64_t *max_age)
{
    const cred_issuer *is = cred_issuer_by_id(list_id);
    if (!is || is->self_signed)
        return NULL;
    vn_buf lst;
    vn_buf_init(&lst);
    if (read_list(is, &lst) != VN_STORE_OK) {
        /* No credential issued yet: an empty list of one chunk. */
        size_t size = vn_status_list_size(STATUS_CHUNK, VN_STATUS_BITS);
        char *zeros = vn_alloc(size);
        vn_buf_append(&lst, zeros, size);
        free(zeros);
    }
    char *uri = cred_status_uri(is);
    int64_t now = vn_now_us() / 1000000;
    vn_status_list_token_params p = {
        .key = is->key,
        .uri = uri,
        .iat = now,
        .exp = now + STATUS_VALIDITY,
        .ttl = STATUS_TTL,
        .bits = VN_STATUS_BITS,
        .lst = (const unsigned char *)lst.data,
        .len = lst.len,
    };
    char *jwt = NULL;
    if (vn_status_list_sign(&p, &jwt) != 0)
        jwt = NULL;
    free(uri);
    vn_buf_free(&lst);
    *max_age = STATUS_TTL;
    return jwt;
}
