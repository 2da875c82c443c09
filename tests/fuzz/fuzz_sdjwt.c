/*
 * fuzz_sdjwt.c - libFuzzer target for the credentials core's readers of
 * untrusted input (modules/credentials/): SD-JWT parsing, the holder's
 * view, presentation and verification (sdjwt.c), JWS (jws.c), JWK import
 * (cred_keys.c) and status list tokens (status_list.c).
 *
 * The input is one SD-JWT, presentation, status list token or JWK. The
 * seeds (corpus/sdjwt/) are signed by the fixed test keys below, so the
 * verifier gets past the signatures and into the disclosures, the key
 * binding and the status. Besides memory safety it checks what callers
 * rely on: verified claims carry no _sd, _sd_alg or "..." anywhere and
 * every disclosed path finds its value; presenting every claim of a
 * parsed SD-JWT gives one that parses to the same claims.
 *
 * fuzz-sources: modules/credentials/cred_error.c modules/credentials/cred_keys.c
 * fuzz-sources: modules/credentials/jws.c modules/credentials/sdjwt.c
 * fuzz-sources: modules/credentials/status_list.c
 * fuzz-libs: -ljansson -lz
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credentials/cred_keys.h"
#include "credentials/jws.h"
#include "credentials/sdjwt.h"
#include "credentials/status_list.h"
#include "vestnik/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test keys only: the seeds' issuer (ES256) and holder (EdDSA). */
static const char issuer_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJYHnh72f5IUDQLL/\n"
    "4EW/8NGaTd3BlS/9fOz0YzC3V5qhRANCAAS35vHyt6A2z431/CaUdYnbN2qqhuMd\n"
    "S+3eqEdG+mvyu4aoTU1Qx+vjmLdkRj/Bi7CQLR/JFLswxWnfGN+jyHhb\n"
    "-----END PRIVATE KEY-----\n";
static const char holder_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIBxCATjw0uixEtYLIwETaj+yoaxsli5SuvYdvLy+9A0B\n"
    "-----END PRIVATE KEY-----\n";
#define NOW 1780000000

static vn_cred_key *issuer, *holder;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (vn_cred_key_from_pem(issuer_pem, strlen(issuer_pem), &issuer) != 0 ||
        vn_cred_key_from_pem(holder_pem, strlen(holder_pem), &holder) != 0)
        abort();
    return 0;
}

static const vn_cred_key *issuer_key(const char *iss, const char *kid, vn_cred_alg alg, void *ud)
{
    (void)iss;
    (void)kid;
    (void)ud;
    return alg == VN_CRED_ALG_ES256 ? issuer : NULL;
}

static int status(const char *uri, uint64_t idx, void *ud)
{
    (void)uri;
    (void)ud;
    return (int)(idx % 4);
}

/* No SD-JWT machinery may survive into the claims a reader gets. */
static void check_clean(const json_t *v)
{
    const char *name;
    json_t *member;
    size_t i;
    if (json_is_object(v)) {
        if (json_object_get(v, "_sd") || json_object_get(v, "_sd_alg") || json_object_get(v, "..."))
            abort();
        json_object_foreach((json_t *)v, name, member)
        {
            check_clean(member);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, member)
        {
            check_clean(member);
        }
    }
}

static void check_paths(const json_t *claims, const json_t *paths)
{
    size_t i;
    json_t *path;
    json_array_foreach(paths, i, path)
    {
        if (!vn_sdjwt_claim_get(claims, json_string_value(path)))
            abort();
    }
}

static void fuzz_verify(const char *s, size_t len)
{
    vn_sdjwt_verify_params p = {.issuer_key = issuer_key,
                                .status = status,
                                .aud = "hotel@services.localhost",
                                .nonce = "n-4bXq0p2z",
                                .now = NOW,
                                .leeway = 30,
                                .kb_max_age = 300};
    vn_sdjwt_verified r;
    if (vn_sdjwt_verify(s, len, &p, &r) == 0) {
        check_clean(r.claims);
        check_paths(r.claims, r.disclosed);
    } else if (r.claims) {
        abort();
    }
    vn_sdjwt_verified_free(&r);
}

/* The holder's side: its view, and presenting all of it. */
static void fuzz_hold(const char *s, size_t len)
{
    vn_sdjwt *sd;
    if (vn_sdjwt_parse(s, len, &sd) != 0)
        return;
    json_t *paths;
    json_t *claims = vn_sdjwt_claims(sd, &paths);
    if (!claims)
        abort();
    check_clean(claims);
    check_paths(claims, paths);
    size_t n = json_array_size(paths);
    const char **list = vn_alloc((n + 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        list[i] = json_string_value(json_array_get(paths, i));
    vn_sdjwt_present_params pp = {.paths = list,
                                  .n_paths = n,
                                  .holder_key = holder,
                                  .aud = "hotel@services.localhost",
                                  .nonce = "n-4bXq0p2z",
                                  .iat = NOW};
    char *out = NULL;
    int rc = vn_sdjwt_present(s, len, &pp, &out, NULL);
    if (rc == VN_CRED_ENOCNF) {
        pp.holder_key = NULL;
        rc = vn_sdjwt_present(s, len, &pp, &out, NULL);
    }
    if (rc != 0)
        abort();
    vn_sdjwt *again;
    if (vn_sdjwt_parse(out, strlen(out), &again) != 0)
        abort();
    json_t *claims2 = vn_sdjwt_claims(again, NULL);
    if (!json_equal(claims, claims2))
        abort();
    json_decref(claims2);
    vn_sdjwt_free(again);
    free(out);
    free(list);
    json_decref(paths);
    json_decref(claims);
    vn_sdjwt_free(sd);
}

static void fuzz_other(const char *s, size_t len)
{
    unsigned bits;
    unsigned char *lst;
    size_t lst_len;
    if (vn_status_list_verify(s, len, issuer, NULL, NOW, 30, &bits, &lst, &lst_len) == 0) {
        for (uint64_t i = 0; i < 64; i++)
            vn_status_list_get(lst, lst_len, bits, i);
        free(lst);
    }
    json_error_t e;
    json_t *jwk = json_loadb(s, len, 0, &e);
    vn_cred_key *key;
    if (jwk && vn_cred_key_from_jwk(jwk, &key) == 0) {
        char *tp = vn_cred_key_thumbprint(key);
        if (!tp || strlen(tp) != 43)
            abort();
        free(tp);
        vn_cred_key_free(key);
    }
    json_decref(jwk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = vn_strndup((const char *)data, size);
    size_t len = strlen(s);
    fuzz_verify(s, len);
    fuzz_hold(s, len);
    fuzz_other(s, len);
    free(s);
    return 0;
}
