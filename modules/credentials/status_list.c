/*
 * status_list.c - Token Status List entries, compression and the signed
 * statuslist+jwt (status_list.h).
 *
 * The list is compressed with zlib's DEFLATE in the ZLIB data format
 * (RFC 1950), as the draft requires, at the best compression: lists are
 * mostly zeros and verifiers fetch them often.
 */
#include "status_list.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <vestnik/util.h>
#include <zlib.h>

#include "cred_error.h"
#include "cred_internal.h"
#include "jws.h"

static bool bits_ok(unsigned bits)
{
    return bits == 1 || bits == 2 || bits == 4 || bits == 8;
}

size_t vn_status_list_size(uint64_t entries, unsigned bits)
{
    if (!bits_ok(bits) || entries > (uint64_t)SIZE_MAX / 8)
        return 0;
    return (size_t)((entries * bits + 7) / 8);
}

int vn_status_list_get(const unsigned char *lst, size_t len, unsigned bits, uint64_t idx)
{
    if (!bits_ok(bits))
        return VN_CRED_EINVAL;
    uint64_t per_byte = 8 / bits;
    if (!lst || idx / per_byte >= len)
        return VN_CRED_ESTATUS;
    unsigned shift = (unsigned)(idx % per_byte) * bits;
    return (lst[idx / per_byte] >> shift) & ((1u << bits) - 1);
}

int vn_status_list_set(unsigned char *lst, size_t len, unsigned bits, uint64_t idx, unsigned value)
{
    if (!bits_ok(bits) || value >= (1u << bits))
        return VN_CRED_EINVAL;
    uint64_t per_byte = 8 / bits;
    if (!lst || idx / per_byte >= len)
        return VN_CRED_ESTATUS;
    unsigned shift = (unsigned)(idx % per_byte) * bits;
    unsigned mask = ((1u << bits) - 1) << shift;
    unsigned char *b = &lst[idx / per_byte];
    *b = (unsigned char)((*b & ~mask) | (value << shift));
    return 0;
}

char *vn_status_list_encode(const unsigned char *lst, size_t len)
{
    uLongf out_len = compressBound((uLong)len);
    unsigned char *z = vn_alloc(out_len);
    char *b64 = NULL;
    if (compress2(z, &out_len, lst, (uLong)len, Z_BEST_COMPRESSION) == Z_OK)
        b64 = vn_b64url_encode(z, out_len);
    free(z);
    return b64;
}

int vn_status_list_decode(const char *encoded, unsigned char **lst, size_t *len)
{
    *lst = NULL;
    *len = 0;
    unsigned char *z;
    size_t z_len;
    if (!encoded || vn_b64url_decode(encoded, strlen(encoded), &z, &z_len) != 0)
        return VN_CRED_EMALFORMED;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit(&zs) != Z_OK) {
        free(z);
        return VN_CRED_ECRYPTO;
    }
    vn_buf out;
    vn_buf_init(&out);
    unsigned char chunk[16384];
    zs.next_in = z;
    zs.avail_in = (uInt)z_len;
    int zr, rc = 0;
    do {
        zs.next_out = chunk;
        zs.avail_out = sizeof(chunk);
        zr = inflate(&zs, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END) {
            rc = VN_CRED_EMALFORMED;
            break;
        }
        vn_buf_append(&out, chunk, sizeof(chunk) - zs.avail_out);
        if (out.len > VN_STATUS_LIST_MAX_BYTES) {
            rc = VN_CRED_ETOOLARGE;
            break;
        }
        if (zr == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            rc = VN_CRED_EMALFORMED; /* truncated stream */
            break;
        }
    } while (zr != Z_STREAM_END);
    /* Nothing may follow the stream. */
    if (rc == 0 && zs.avail_in != 0)
        rc = VN_CRED_EMALFORMED;
    inflateEnd(&zs);
    free(z);
    if (rc != 0) {
        vn_buf_free(&out);
        return rc;
    }
    *lst = (unsigned char *)vn_buf_steal(&out, len);
    return 0;
}

int vn_status_list_sign(const vn_status_list_token_params *p, char **jwt)
{
    *jwt = NULL;
    if (!p || !p->key || !p->uri || !p->lst || !bits_ok(p->bits) || p->len == 0)
        return VN_CRED_EINVAL;
    char *lst = vn_status_list_encode(p->lst, p->len);
    if (!lst)
        return VN_CRED_ECRYPTO;
    json_t *payload = json_object();
    json_object_set_new(payload, "sub", json_string(p->uri));
    json_object_set_new(payload, "iat", json_integer(p->iat));
    if (p->exp)
        json_object_set_new(payload, "exp", json_integer(p->exp));
    if (p->ttl)
        json_object_set_new(payload, "ttl", json_integer(p->ttl));
    json_object_set_new(payload, "status_list",
                        json_pack("{s:i, s:s}", "bits", (int)p->bits, "lst", lst));
    free(lst);
    json_t *header = json_pack("{s:s}", "typ", VN_STATUS_TYP);
    char *kid = p->kid ? NULL : vn_cred_key_thumbprint(p->key);
    int rc = vn_jws_sign_json(p->key, header, p->kid ? p->kid : kid, payload, jwt);
    free(kid);
    json_decref(header);
    json_decref(payload);
    return rc;
}

int vn_status_list_verify(const char *jwt, size_t len, const vn_cred_key *key, const char *uri,
                          int64_t now, int64_t leeway, unsigned *bits, unsigned char **lst,
                          size_t *lst_len)
{
    *lst = NULL;
    *lst_len = 0;
    json_t *header = NULL, *payload = NULL;
    int rc = vn_jws_verify(jwt, len, key, &header, &payload);
    if (rc != 0)
        return rc;
    const char *typ = json_string_value(json_object_get(header, "typ"));
    const char *sub = json_string_value(json_object_get(payload, "sub"));
    json_t *exp = json_object_get(payload, "exp");
    json_t *sl = json_object_get(payload, "status_list");
    json_t *b = json_object_get(sl, "bits");
    if (!typ || strcmp(typ, VN_STATUS_TYP) != 0)
        rc = VN_CRED_ETYP;
    else if (!sub || (uri && strcmp(sub, uri) != 0))
        rc = VN_CRED_ESTATUS;
    else if (exp && (!json_is_integer(exp) || json_integer_value(exp) < now - leeway))
        rc = VN_CRED_ESTATUS;
    else if (!json_is_integer(b) || json_integer_value(b) > 8 ||
             !bits_ok((unsigned)json_integer_value(b)))
        rc = VN_CRED_ESTATUS;
    if (rc == 0) {
        rc = vn_status_list_decode(json_string_value(json_object_get(sl, "lst")), lst, lst_len);
        if (rc == VN_CRED_EMALFORMED)
            rc = VN_CRED_ESTATUS;
        *bits = (unsigned)json_integer_value(b);
    }
    json_decref(header);
    json_decref(payload);
    return rc;
}
