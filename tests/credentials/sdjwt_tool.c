/*
 * sdjwt_tool.c - the credentials core (modules/credentials/) on the command
 * line, for tests/integration/test_credentials_interop.py: one JSON request
 * on stdin, one JSON answer on stdout, so that an independent SD-JWT
 * implementation (npm @sd-jwt) can check what vestnik issues and presents,
 * and vestnik's verifier what npm does. The server's own tests go through
 * vestnikd; this only exposes the library.
 *
 *   sdjwt_tool keygen     {"alg"}                     -> {"private_pem", "jwk", "kid"}
 *   sdjwt_tool issue      {"issuer_pem", "iss", "vct", "iat", "exp", "holder_jwk",
 *                          "status_uri", "status_idx", "claims", "decoys"} -> {"sdjwt"}
 *   sdjwt_tool present    {"sdjwt", "paths", "holder_pem", "aud", "nonce", "iat"}
 *                                                     -> {"presentation"}
 *   sdjwt_tool verify     {"presentation", "issuers": {iss: jwk}, "aud", "nonce",
 *                          "require_kb", "now", "status_lists": {uri: jwt}}
 *                          -> {"ok": true, "claims", "disclosed"} | {"ok": false, "error",
 * "detail"} sdjwt_tool statuslist {"issuer_pem", "uri", "entries", "set": {idx: value}, "iat",
 *                          "exp", "ttl"}              -> {"jwt"}
 * Exit status 0 when an answer was written (a refused verification
 * included), 1 on a bad request or a library error (with {"error"}).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cred_error.h"
#include "cred_keys.h"
#include "jws.h"
#include "sdjwt.h"
#include "status_list.h"

static int answer(json_t *out)
{
    json_dumpf(out, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(out);
    return 0;
}

static int fail(int err, const char *what)
{
    json_t *out = json_pack("{s:s, s:s}", "error", vn_cred_errname(err), "detail", what);
    json_dumpf(out, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(out);
    return 1;
}

static const char *str(const json_t *req, const char *name)
{
    return json_string_value(json_object_get(req, name));
}

static vn_cred_key *pem_key(const json_t *req, const char *name)
{
    const char *pem = str(req, name);
    vn_cred_key *key = NULL;
    if (pem)
        vn_cred_key_from_pem(pem, strlen(pem), &key);
    return key;
}

static int cmd_keygen(const json_t *req)
{
    vn_cred_alg alg;
    vn_cred_key *key;
    if (vn_cred_alg_parse(str(req, "alg"), &alg) != 0)
        return fail(VN_CRED_EALG, "alg");
    int rc = vn_cred_key_generate(alg, &key);
    if (rc != 0)
        return fail(rc, "generate");
    char *pem = vn_cred_key_to_pem(key, true);
    char *kid = vn_cred_key_thumbprint(key);
    json_t *out = json_pack("{s:s, s:o, s:s}", "private_pem", pem, "jwk",
                            vn_cred_key_to_jwk(key, false), "kid", kid);
    free(pem);
    free(kid);
    vn_cred_key_free(key);
    return answer(out);
}

static int cmd_issue(const json_t *req)
{
    vn_cred_key *issuer = pem_key(req, "issuer_pem"), *holder = NULL;
    if (!issuer)
        return fail(VN_CRED_EKEY, "issuer_pem");
    if (json_object_get(req, "holder_jwk") &&
        vn_cred_key_from_jwk(json_object_get(req, "holder_jwk"), &holder) != 0) {
        vn_cred_key_free(issuer);
        return fail(VN_CRED_EKEY, "holder_jwk");
    }
    vn_sdjwt_issue_params p = {
        .issuer_key = issuer,
        .iss = str(req, "iss"),
        .vct = str(req, "vct"),
        .iat = json_integer_value(json_object_get(req, "iat")),
        .exp = json_integer_value(json_object_get(req, "exp")),
        .holder_key = holder,
        .status_uri = str(req, "status_uri"),
        .status_idx = (uint64_t)json_integer_value(json_object_get(req, "status_idx")),
        .claims = json_object_get(req, "claims"),
        .decoys_max = json_object_get(req, "decoys")
                          ? (unsigned)json_integer_value(json_object_get(req, "decoys"))
                          : 3,
    };
    if (!p.iat)
        p.iat = (int64_t)time(NULL);
    char *sdjwt;
    int rc = vn_sdjwt_issue(&p, &sdjwt);
    vn_cred_key_free(issuer);
    vn_cred_key_free(holder);
    if (rc != 0)
        return fail(rc, "issue");
    json_t *out = json_pack("{s:s}", "sdjwt", sdjwt);
    free(sdjwt);
    return answer(out);
}

static int cmd_present(const json_t *req)
{
    const char *sdjwt = str(req, "sdjwt");
    const json_t *paths = json_object_get(req, "paths");
    if (!sdjwt || !json_is_array(paths))
        return fail(VN_CRED_EINVAL, "sdjwt/paths");
    size_t n = json_array_size(paths);
    const char **list = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        list[i] = json_string_value(json_array_get(paths, i));
    vn_cred_key *holder = pem_key(req, "holder_pem");
    vn_sdjwt_present_params p = {
        .paths = list,
        .n_paths = n,
        .holder_key = holder,
        .aud = str(req, "aud"),
        .nonce = str(req, "nonce"),
        .iat = json_object_get(req, "iat") ? json_integer_value(json_object_get(req, "iat"))
                                           : (int64_t)time(NULL),
    };
    char *out = NULL, *bad = NULL;
    int rc = vn_sdjwt_present(sdjwt, strlen(sdjwt), &p, &out, &bad);
    free(list);
    vn_cred_key_free(holder);
    if (rc != 0) {
        rc = fail(rc, bad ? bad : "present");
        free(bad);
        return rc;
    }
    json_t *ans = json_pack("{s:s}", "presentation", out);
    free(out);
    return answer(ans);
}

typedef struct verify_ctx {
    const json_t *req;
    vn_cred_key *issuer; /* the last one resolved, freed at the end */
    vn_cred_key *status_key;
} verify_ctx;

static const vn_cred_key *issuer_cb(const char *iss, const char *kid, vn_cred_alg alg, void *ud)
{
    verify_ctx *c = ud;
    (void)kid;
    vn_cred_key_free(c->issuer);
    c->issuer = NULL;
    const json_t *jwk = json_object_get(json_object_get(c->req, "issuers"), iss);
    if (!jwk || vn_cred_key_from_jwk(jwk, &c->issuer) != 0 || vn_cred_key_alg(c->issuer) != alg)
        return NULL;
    /* Status lists of this tool's tests are signed by the credential's issuer. */
    vn_cred_key_free(c->status_key);
    c->status_key = vn_cred_key_public(c->issuer);
    return c->issuer;
}

static int status_cb(const char *uri, uint64_t idx, void *ud)
{
    verify_ctx *c = ud;
    const char *jwt =
        json_string_value(json_object_get(json_object_get(c->req, "status_lists"), uri));
    if (!jwt || !c->status_key)
        return VN_CRED_ESTATUS;
    unsigned bits;
    unsigned char *lst;
    size_t len;
    int rc = vn_status_list_verify(jwt, strlen(jwt), c->status_key, uri, (int64_t)time(NULL), 60,
                                   &bits, &lst, &len);
    if (rc != 0)
        return VN_CRED_ESTATUS;
    rc = vn_status_list_get(lst, len, bits, idx);
    free(lst);
    return rc;
}

static int cmd_verify(const json_t *req)
{
    const char *pres = str(req, "presentation");
    if (!pres)
        return fail(VN_CRED_EINVAL, "presentation");
    verify_ctx c = {.req = req};
    vn_sdjwt_verify_params p = {
        .issuer_key = issuer_cb,
        .issuer_ud = &c,
        .status = json_object_get(req, "status_lists") ? status_cb : NULL,
        .status_ud = &c,
        .vct = str(req, "vct"),
        .require_kb = json_is_true(json_object_get(req, "require_kb")),
        .aud = str(req, "aud"),
        .nonce = str(req, "nonce"),
        .now = json_integer_value(json_object_get(req, "now")),
        .leeway = 30,
        .kb_max_age = 300,
    };
    vn_sdjwt_verified r;
    int rc = vn_sdjwt_verify(pres, strlen(pres), &p, &r);
    json_t *out;
    if (rc == 0)
        out = json_pack("{s:b, s:O, s:O, s:b, s:s}", "ok", 1, "claims", r.claims, "disclosed",
                        r.disclosed, "key_bound", r.key_bound, "sd_hash", r.sd_hash);
    else
        out = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "error", vn_cred_errname(rc), "detail",
                        r.detail, "text", vn_cred_strerror(rc));
    vn_sdjwt_verified_free(&r);
    vn_cred_key_free(c.issuer);
    vn_cred_key_free(c.status_key);
    return answer(out);
}

static int cmd_statuslist(const json_t *req)
{
    vn_cred_key *key = pem_key(req, "issuer_pem");
    if (!key)
        return fail(VN_CRED_EKEY, "issuer_pem");
    uint64_t entries = (uint64_t)json_integer_value(json_object_get(req, "entries"));
    size_t len = vn_status_list_size(entries, VN_STATUS_BITS);
    if (!len || len > VN_STATUS_LIST_MAX_BYTES) {
        vn_cred_key_free(key);
        return fail(VN_CRED_EINVAL, "entries");
    }
    unsigned char *lst = calloc(1, len);
    const char *idx;
    json_t *v;
    int rc = 0;
    json_object_foreach(json_object_get(req, "set"), idx, v)
    {
        if (rc == 0)
            rc = vn_status_list_set(lst, len, VN_STATUS_BITS, strtoull(idx, NULL, 10),
                                    (unsigned)json_integer_value(v));
    }
    vn_status_list_token_params p = {
        .key = key,
        .uri = str(req, "uri"),
        .iat = json_object_get(req, "iat") ? json_integer_value(json_object_get(req, "iat"))
                                           : (int64_t)time(NULL),
        .exp = json_integer_value(json_object_get(req, "exp")),
        .ttl = json_integer_value(json_object_get(req, "ttl")),
        .bits = VN_STATUS_BITS,
        .lst = lst,
        .len = len,
    };
    char *jwt = NULL;
    if (rc == 0)
        rc = vn_status_list_sign(&p, &jwt);
    free(lst);
    vn_cred_key_free(key);
    if (rc != 0)
        return fail(rc, "statuslist");
    json_t *out = json_pack("{s:s}", "jwt", jwt);
    free(jwt);
    return answer(out);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(const json_t *req);
    } cmds[] = {{"keygen", cmd_keygen},
                {"issue", cmd_issue},
                {"present", cmd_present},
                {"verify", cmd_verify},
                {"statuslist", cmd_statuslist}};
    if (argc != 2) {
        fprintf(stderr,
                "usage: sdjwt_tool keygen|issue|present|verify|statuslist < request.json\n");
        return 2;
    }
    json_error_t e;
    json_t *req = json_loadf(stdin, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(req)) {
        json_decref(req);
        return fail(VN_CRED_EMALFORMED, "request");
    }
    int rc = 2;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            rc = cmds[i].run(req);
    if (rc == 2)
        fprintf(stderr, "sdjwt_tool: unknown command %s\n", argv[1]);
    json_decref(req);
    return rc;
}
