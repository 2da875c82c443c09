/*
 * test_sdjwt.c - the credentials core of modules/credentials/: base64url,
 * keys (RFC 8037 thumbprint and signature vectors, PEM, JWK, wrapping),
 * JWS, SD-JWT VC issuance and presentation with the RFC 9901 disclosure
 * digests, the verifier's refusal of every tampering it names, the Token
 * Status List draft's examples, and QR PNGs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cred_error.h"
#include "cred_internal.h"
#include "cred_keys.h"
#include "jws.h"
#include "qr.h"
#include "sdjwt.h"
#include "status_list.h"

#define ISS "https://example.org/university"
#define VCT "https://example.org/credentials/student"
#define NOW 1780000000

/* ---- base64url ---- */

static void test_b64url(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"\xfb\xff", "-_8"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *e = vn_b64url_encode(cases[i][0], strlen(cases[i][0]));
        assert_string_equal(e, cases[i][1]);
        unsigned char *d;
        size_t n;
        assert_int_equal(vn_b64url_decode(e, strlen(e), &d, &n), 0);
        assert_int_equal(n, strlen(cases[i][0]));
        assert_memory_equal(d, cases[i][0], n);
        free(d);
        free(e);
    }
    unsigned char *d;
    size_t n;
    /* Padding, the standard alphabet, a lone character, non-zero tail bits. */
    assert_int_equal(vn_b64url_decode("Zg==", 4, &d, &n), VN_CRED_EMALFORMED);
    assert_int_equal(vn_b64url_decode("+/8", 3, &d, &n), VN_CRED_EMALFORMED);
    assert_int_equal(vn_b64url_decode("Zm9vZ", 5, &d, &n), VN_CRED_EMALFORMED);
    assert_int_equal(vn_b64url_decode("Zh", 2, &d, &n), VN_CRED_EMALFORMED);
}

/* ---- RFC 9901 disclosure digests ---- */

static void test_rfc9901_digests(void **state)
{
    (void)state;
    /* §4.2.1 and §4.2.3 (an object property), §4.2.2 (an array element). */
    const char *prop = "WyIyR0xDNDJzS1F2ZUNmR2ZyeU5STjl3IiwgImdpdmVuX25hbWUiLCAiSm9obiJd";
    const char *elem = "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0";
    char *d1 = vn_b64url_sha256(prop, strlen(prop));
    char *d2 = vn_b64url_sha256(elem, strlen(elem));
    assert_string_equal(d1, "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4");
    assert_string_equal(d2, "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs");
    free(d1);
    free(d2);
}

/* ---- keys ---- */

/* RFC 8037 Appendix A.1 (private) and A.2 (public). */
static const unsigned char rfc8037_d[32] = {
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};

static vn_cred_key *rfc8037_key(void)
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, rfc8037_d, 32);
    assert_non_null(pkey);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    char *pem;
    long n = BIO_get_mem_data(bio, &pem);
    vn_cred_key *key;
    assert_int_equal(vn_cred_key_from_pem(pem, (size_t)n, &key), 0);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return key;
}

static void test_rfc8037_vectors(void **state)
{
    (void)state;
    vn_cred_key *key = rfc8037_key();
    assert_int_equal(vn_cred_key_alg(key), VN_CRED_ALG_EDDSA);
    /* A.3: the RFC 7638 thumbprint of the public key. */
    char *tp = vn_cred_key_thumbprint(key);
    assert_string_equal(tp, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    free(tp);
    json_t *jwk = vn_cred_key_to_jwk(key, false);
    assert_string_equal(json_string_value(json_object_get(jwk, "x")),
                        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    json_decref(jwk);
    /* A.4: Ed25519 is deterministic, so the JWS is the RFC's to the byte. */
    const char *msg = "Example of Ed25519 signing";
    char *jws;
    assert_int_equal(vn_jws_sign(key, NULL, NULL, msg, strlen(msg), &jws), 0);
    assert_string_equal(jws, "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
                             "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt"
                             "9g7sVvpAr_MuM0KAg");
    free(jws);
    vn_cred_key_free(key);
}

static void test_key_formats(void **state)
{
    (void)state;
    vn_cred_alg algs[] = {VN_CRED_ALG_ES256, VN_CRED_ALG_EDDSA};
    for (size_t i = 0; i < 2; i++) {
        vn_cred_key *key, *back, *pub;
        assert_int_equal(vn_cred_key_generate(algs[i], &key), 0);
        assert_true(vn_cred_key_has_private(key));
        char *pem = vn_cred_key_to_pem(key, true);
        assert_non_null(strstr(pem, "BEGIN PRIVATE KEY"));
        assert_int_equal(vn_cred_key_from_pem(pem, strlen(pem), &back), 0);
        assert_true(vn_cred_key_has_private(back));
        assert_true(vn_cred_key_equal(key, back));
        free(pem);
        vn_cred_key_free(back);
        /* Public PEM and JWK give the same public key, without the private part. */
        pem = vn_cred_key_to_pem(key, false);
        assert_int_equal(vn_cred_key_from_pem(pem, strlen(pem), &pub), 0);
        assert_false(vn_cred_key_has_private(pub));
        assert_true(vn_cred_key_equal(key, pub));
        free(pem);
        vn_cred_key_free(pub);
        json_t *jwk = vn_cred_key_to_jwk(key, true);
        assert_null(json_object_get(jwk, "d"));
        assert_int_equal(vn_cred_key_from_jwk(jwk, &pub), 0);
        assert_true(vn_cred_key_equal(key, pub));
        char *tp = vn_cred_key_thumbprint(pub);
        assert_string_equal(tp, json_string_value(json_object_get(jwk, "kid")));
        free(tp);
        json_decref(jwk);
        vn_cred_key_free(pub);
        /* Wrapped for storage: only the right secret and owner unwrap it. */
        const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";
        const unsigned char other[32] = "0123456789abcdef0123456789abcdeX";
        char *w;
        assert_int_equal(vn_cred_key_wrap(key, secret, 32, "alice@example.org", &w), 0);
        assert_null(strstr(w, "PRIVATE"));
        assert_int_equal(vn_cred_key_unwrap(w, secret, 32, "alice@example.org", &back), 0);
        assert_true(vn_cred_key_has_private(back));
        assert_true(vn_cred_key_equal(key, back));
        vn_cred_key_free(back);
        assert_int_equal(vn_cred_key_unwrap(w, other, 32, "alice@example.org", &back),
                         VN_CRED_EUNWRAP);
        assert_int_equal(vn_cred_key_unwrap(w, secret, 32, "bob@example.org", &back),
                         VN_CRED_EUNWRAP);
        w[strlen(w) - 3] = w[strlen(w) - 3] == 'A' ? 'B' : 'A';
        assert_int_equal(vn_cred_key_unwrap(w, secret, 32, "alice@example.org", &back),
                         VN_CRED_EUNWRAP);
        assert_int_equal(vn_cred_key_unwrap("v2.x.y", secret, 32, "a", &back), VN_CRED_EMALFORMED);
        free(w);
        assert_int_equal(vn_cred_key_wrap(key, secret, 8, "a", &w), VN_CRED_EINVAL);
        assert_null(w);
        vn_cred_key_free(key);
    }
    /* Keys of other curves and types are refused. */
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, p384);
    char *pem;
    long n = BIO_get_mem_data(bio, &pem);
    vn_cred_key *k;
    assert_int_equal(vn_cred_key_from_pem(pem, (size_t)n, &k), VN_CRED_EKEY);
    BIO_free(bio);
    EVP_PKEY_free(p384);
    /* A passphrase-protected key is refused, never prompted for. */
    vn_cred_key *plain;
    assert_int_equal(vn_cred_key_generate(VN_CRED_ALG_ES256, &plain), 0);
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, vn_cred_key_pkey(plain), EVP_aes_256_cbc(), NULL,
                                              0, NULL, (void *)"secret"),
                     1);
    n = BIO_get_mem_data(bio, &pem);
    assert_non_null(strstr(pem, "ENCRYPTED"));
    assert_int_equal(vn_cred_key_from_pem(pem, (size_t)n, &k), VN_CRED_EKEY);
    BIO_free(bio);
    vn_cred_key_free(plain);
    /* A JWK point that is not on the curve. */
    json_t *bad = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x",
                            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "y",
                            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE");
    assert_int_equal(vn_cred_key_from_jwk(bad, &k), VN_CRED_EKEY);
    json_decref(bad);
}

/* ---- JWS ---- */

static void test_jws(void **state)
{
    (void)state;
    vn_cred_key *es, *ed;
    assert_int_equal(vn_cred_key_generate(VN_CRED_ALG_ES256, &es), 0);
    assert_int_equal(vn_cred_key_generate(VN_CRED_ALG_EDDSA, &ed), 0);
    json_t *payload = json_pack("{s:s, s:i}", "sub", "x", "n", 1);
    char *jws;
    assert_int_equal(vn_jws_sign_json(es, NULL, "k1", payload, &jws), 0);
    /* Raw r||s: 64 bytes, 86 base64url characters. */
    assert_int_equal(strlen(strrchr(jws, '.') + 1), 86);
    json_t *h, *p;
    assert_int_equal(vn_jws_verify(jws, strlen(jws), es, &h, &p), 0);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(h, "kid")), "k1");
    assert_true(json_equal(p, payload));
    json_decref(h);
    json_decref(p);
    /* Another key, another algorithm, a changed payload. */
    assert_int_equal(vn_jws_verify(jws, strlen(jws), ed, NULL, NULL), VN_CRED_EALG);
    vn_cred_key *es2;
    assert_int_equal(vn_cred_key_generate(VN_CRED_ALG_ES256, &es2), 0);
    assert_int_equal(vn_jws_verify(jws, strlen(jws), es2, NULL, NULL), VN_CRED_ESIGNATURE);
    char *dot = strchr(jws, '.');
    dot[3] ^= 1;
    assert_int_not_equal(vn_jws_verify(jws, strlen(jws), es, NULL, NULL), 0);
    free(jws);
    /* alg none, and crit. */
    const char *none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    assert_int_not_equal(vn_jws_verify(none, strlen(none), es, NULL, NULL), 0);
    json_t *crit = json_pack("{s:[s]}", "crit", "exp");
    assert_int_equal(vn_jws_sign_json(ed, crit, NULL, payload, &jws), 0);
    assert_int_equal(vn_jws_verify(jws, strlen(jws), ed, NULL, NULL), VN_CRED_EMALFORMED);
    free(jws);
    json_decref(crit);
    /* Detached. */
    const char doc[] = "sha-256 of a contract";
    assert_int_equal(vn_jws_sign_detached(ed, NULL, NULL, doc, sizeof(doc), &jws), 0);
    assert_non_null(strstr(jws, ".."));
    assert_int_equal(vn_jws_verify_detached(jws, strlen(jws), ed, doc, sizeof(doc), NULL), 0);
    assert_int_equal(vn_jws_verify_detached(jws, strlen(jws), ed, doc, sizeof(doc) - 1, NULL),
                     VN_CRED_ESIGNATURE);
    free(jws);
    /* Duplicate member names are not JSON we accept. */
    char *dup_h = vn_b64url_encode("{\"alg\":\"EdDSA\",\"alg\":\"none\"}", 29);
    char *dup = NULL;
    assert_true(asprintf(&dup, "%s.e30.AAAA", dup_h) > 0);
    assert_int_equal(vn_jws_decode(dup, strlen(dup), NULL, NULL), VN_CRED_EMALFORMED);
    free(dup);
    free(dup_h);
    json_decref(payload);
    vn_cred_key_free(es);
    vn_cred_key_free(es2);
    vn_cred_key_free(ed);
}

/* ---- SD-JWT ---- */

typedef struct fixture {
    vn_cred_key *issuer, *holder, *other;
    char *credential;
    int status; /* what the status callback answers */
} fixture;

static const vn_cred_key *issuer_cb(const char *iss, const char *kid, vn_cred_alg alg, void *ud)
{
    fixture *f = ud;
    (void)kid;
    return strcmp(iss, ISS) == 0 && alg == vn_cred_key_alg(f->issuer) ? f->issuer : NULL;
}

static int status_cb(const char *uri, uint64_t idx, void *ud)
{
    fixture *f = ud;
    return strcmp(uri, "https://example.org/credentials/status/1") == 0 && idx == 7
               ? f->status
               : VN_CRED_ESTATUS;
}

static char *issue(fixture *f, int64_t exp)
{
    json_t *claims = json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s, s:s}, s:[s,s]}", "given_name",
                               "Erika", "family_name", "Mustermann", "birthdate", "2001-02-03",
                               "age_over_18", 1, "address", "street_address", "Heidestr. 17",
                               "locality", "Köln", "country", "DE", "categories", "B", "C1");
    vn_sdjwt_issue_params p = {.issuer_key = f->issuer,
                               .iss = ISS,
                               .vct = VCT,
                               .iat = NOW - 100,
                               .exp = exp,
                               .holder_key = f->holder,
                               .status_uri = "https://example.org/credentials/status/1",
                               .status_idx = 7,
                               .claims = claims,
                               .decoys_max = 3};
    char *out;
    assert_int_equal(vn_sdjwt_issue(&p, &out), 0);
    json_decref(claims);
    return out;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(vn_cred_key_generate(VN_CRED_ALG_ES256, &f->issuer), 0);
    assert_int_equal(vn_cred_key_generate(VN_CRED_ALG_EDDSA, &f->holder), 0);
    assert_int_equal(vn_cred_key_generate(VN_CRED_ALG_ES256, &f->other), 0);
    f->credential = issue(f, NOW + 3600);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vn_cred_key_free(f->issuer);
    vn_cred_key_free(f->holder);
    vn_cred_key_free(f->other);
    free(f->credential);
    free(f);
    return 0;
}

static vn_sdjwt_verify_params vparams(fixture *f)
{
    return (vn_sdjwt_verify_params){.issuer_key = issuer_cb,
                                    .issuer_ud = f,
                                    .status = status_cb,
                                    .status_ud = f,
                                    .vct = VCT,
                                    .require_kb = true,
                                    .aud = "hotel@services.example.org",
                                    .nonce = "n-0S6_WzA2Mj",
                                    .now = NOW,
                                    .leeway = 30,
                                    .kb_max_age = 300};
}

static char *present(fixture *f, const char *const *paths, size_t n, const vn_cred_key *holder,
                     const char *nonce, int64_t iat)
{
    vn_sdjwt_present_params p = {.paths = paths,
                                 .n_paths = n,
                                 .holder_key = holder,
                                 .aud = "hotel@services.example.org",
                                 .nonce = nonce,
                                 .iat = iat};
    char *out = NULL;
    int rc = vn_sdjwt_present(f->credential, strlen(f->credential), &p, &out, NULL);
    if (rc != 0)
        fail_msg("present: %s", vn_cred_errname(rc));
    return out;
}

static int verify(fixture *f, const char *s, vn_sdjwt_verify_params *p, vn_sdjwt_verified *r)
{
    return vn_sdjwt_verify(s, strlen(s), p, r);
}

static void test_issue_shape(void **state)
{
    fixture *f = *state;
    vn_sdjwt *sd;
    assert_int_equal(vn_sdjwt_parse(f->credential, strlen(f->credential), &sd), 0);
    assert_string_equal(json_string_value(json_object_get(sd->header, "typ")), "dc+sd-jwt");
    assert_non_null(json_object_get(sd->header, "kid"));
    json_t *pl = sd->payload;
    assert_string_equal(json_string_value(json_object_get(pl, "_sd_alg")), "sha-256");
    assert_non_null(json_object_get(json_object_get(pl, "cnf"), "jwk"));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(pl, "status"), "status_list"), "idx")),
                     7);
    /* Every issued claim is selectively disclosable: none in the payload, in
     * any form (quoted: a random digest may contain "C1"). */
    char *text = json_dumps(pl, JSON_COMPACT);
    const char *hidden[] = {"\"given_name\"",   "\"Erika\"",       "\"Mustermann\"",
                            "\"birthdate\"",    "\"age_over_18\"", "\"address\"",
                            "\"Heidestr. 17\"", "\"categories\"",  "\"C1\""};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
        assert_null(strstr(text, hidden[i]));
    free(text);
    /* 6 top-level claims plus 1 to 3 decoys; 3 address members and 2
     * categories, with decoys of their own. */
    size_t top = json_array_size(json_object_get(pl, "_sd"));
    assert_true(top >= 7 && top <= 9);
    assert_int_equal(sd->n_disclosures, 11);
    json_t *paths;
    json_t *claims = vn_sdjwt_claims(sd, &paths);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(claims, "address"), "locality")), "Köln");
    assert_int_equal(json_array_size(json_object_get(claims, "categories")), 2);
    assert_string_equal(json_string_value(vn_sdjwt_claim_get(claims, "address.locality")), "Köln");
    assert_string_equal(json_string_value(vn_sdjwt_claim_get(claims, "categories.1")), "C1");
    assert_null(vn_sdjwt_claim_get(claims, "categories.2"));
    assert_null(vn_sdjwt_claim_get(claims, "categories.x"));
    assert_null(vn_sdjwt_claim_get(claims, "address.locality.x"));
    assert_null(json_object_get(claims, "_sd"));
    assert_int_equal(json_array_size(paths), 11);
    json_decref(paths);
    json_decref(claims);
    vn_sdjwt_free(sd);
}

static void test_present_and_verify(void **state)
{
    fixture *f = *state;
    const char *paths[] = {"age_over_18", "address.locality"};
    char *pres = present(f, paths, 2, f->holder, "n-0S6_WzA2Mj", NOW - 5);
    vn_sdjwt_verify_params p = vparams(f);
    vn_sdjwt_verified r;
    assert_int_equal(verify(f, pres, &p, &r), 0);
    assert_true(r.key_bound);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.iss, ISS);
    assert_string_equal(r.nonce, "n-0S6_WzA2Mj");
    assert_int_equal(strlen(r.sd_hash), 43);
    assert_true(json_is_true(json_object_get(r.claims, "age_over_18")));
    json_t *addr = json_object_get(r.claims, "address");
    assert_string_equal(json_string_value(json_object_get(addr, "locality")), "Köln");
    assert_int_equal(json_object_size(addr), 1);
    assert_null(json_object_get(r.claims, "given_name"));
    assert_null(json_object_get(r.claims, "birthdate"));
    assert_int_equal(json_array_size(r.disclosed), 3); /* address, address.locality, age_over_18 */
    assert_true(vn_cred_key_equal(r.holder_key, f->holder));
    vn_sdjwt_verified_free(&r);
    /* Nothing undisclosed in what the verifier got, in any form. */
    vn_sdjwt *sd;
    assert_int_equal(vn_sdjwt_parse(pres, strlen(pres), &sd), 0);
    assert_int_equal(sd->n_disclosures, 3);
    for (size_t i = 0; i < sd->n_disclosures; i++) {
        char *v = json_dumps(sd->disclosures[i].value, JSON_ENCODE_ANY);
        assert_null(strstr(v, "Erika"));
        assert_null(strstr(v, "Heidestr"));
        free(v);
    }
    vn_sdjwt_free(sd);
    free(pres);
    /* One element of an array: the others leave no trace. */
    const char *one[] = {"categories.1"};
    pres = present(f, one, 1, f->holder, "n-0S6_WzA2Mj", NOW);
    assert_int_equal(verify(f, pres, &p, &r), 0);
    json_t *cats = json_object_get(r.claims, "categories");
    assert_int_equal(json_array_size(cats), 1);
    assert_string_equal(json_string_value(json_array_get(cats, 0)), "C1");
    assert_string_equal(json_string_value(vn_sdjwt_claim_get(r.claims, "categories.0")), "C1");
    assert_int_equal(json_array_size(r.disclosed), 2); /* categories, categories.0 */
    vn_sdjwt_verified_free(&r);
    assert_int_equal(vn_sdjwt_parse(pres, strlen(pres), &sd), 0);
    assert_int_equal(sd->n_disclosures, 2);
    for (size_t i = 0; i < sd->n_disclosures; i++)
        assert_false(json_is_string(sd->disclosures[i].value) &&
                     strcmp(json_string_value(sd->disclosures[i].value), "B") == 0);
    vn_sdjwt_free(sd);
    free(pres);
    /* A whole object, and a claim that is not there. */
    const char *whole[] = {"address"};
    pres = present(f, whole, 1, NULL, NULL, 0);
    p.require_kb = false;
    assert_int_equal(verify(f, pres, &p, &r), 0);
    assert_int_equal(json_object_size(json_object_get(r.claims, "address")), 3);
    assert_false(r.key_bound);
    vn_sdjwt_verified_free(&r);
    free(pres);
    const char *missing[] = {"nationality"};
    vn_sdjwt_present_params pp = {.paths = missing, .n_paths = 1};
    char *out, *bad;
    assert_int_equal(vn_sdjwt_present(f->credential, strlen(f->credential), &pp, &out, &bad),
                     VN_CRED_ENOCLAIM);
    assert_string_equal(bad, "nationality");
    free(bad);
    /* Binding with a key that is not cnf's. */
    pp = (vn_sdjwt_present_params){
        .paths = whole, .n_paths = 1, .holder_key = f->other, .aud = "a", .nonce = "n", .iat = NOW};
    assert_int_equal(vn_sdjwt_present(f->credential, strlen(f->credential), &pp, &out, NULL),
                     VN_CRED_ENOCNF);
}

static void expect_refused(fixture *f, const char *s, vn_sdjwt_verify_params *p, int err)
{
    vn_sdjwt_verified r;
    int rc = verify(f, s, p, &r);
    if (rc != err)
        fail_msg("expected %s, got %s (%s)", vn_cred_errname(err), vn_cred_errname(rc), r.detail);
    assert_null(r.claims);
    vn_sdjwt_verified_free(&r);
}

/* Replace the i-th '~'-separated part of s (0: the JWT). */
static char *replace_part(const char *s, size_t i, const char *with)
{
    const char *start = s;
    for (size_t k = 0; k < i; k++)
        start = strchr(start, '~') + 1;
    const char *end = strchr(start, '~');
    char *out = NULL;
    assert_true(asprintf(&out, "%.*s%s%s", (int)(start - s), s, with, end ? end : "") > 0);
    return out;
}

static void test_tampering_refused(void **state)
{
    fixture *f = *state;
    vn_sdjwt_verify_params p = vparams(f);
    const char *paths[] = {"age_over_18"};
    char *pres = present(f, paths, 1, f->holder, "n-0S6_WzA2Mj", NOW);

    /* A disclosure changed to "age_over_21" with the same salt: its digest
     * is not signed (the KB-JWT's sd_hash fails first unless re-signed, so
     * build the presentation by hand and bind it again). */
    vn_sdjwt *sd;
    assert_int_equal(vn_sdjwt_parse(pres, strlen(pres), &sd), 0);
    char *forged_json = NULL;
    assert_true(asprintf(&forged_json, "[\"%s\",\"age_over_21\",true]", sd->disclosures[0].salt) >
                0);
    char *forged = vn_b64url_encode(forged_json, strlen(forged_json));
    char *body = NULL;
    assert_true(asprintf(&body, "%s~%s~", sd->jwt, forged) > 0);
    vn_sdjwt_free(sd);
    json_t *kbh = json_pack("{s:s}", "typ", "kb+jwt");
    char *sd_hash = vn_b64url_sha256(body, strlen(body));
    json_t *kbp = json_pack("{s:i, s:s, s:s, s:s}", "iat", NOW, "aud", "hotel@services.example.org",
                            "nonce", "n-0S6_WzA2Mj", "sd_hash", sd_hash);
    char *kb;
    assert_int_equal(vn_jws_sign_json(f->holder, kbh, NULL, kbp, &kb), 0);
    char *tampered = NULL;
    assert_true(asprintf(&tampered, "%s%s", body, kb) > 0);
    expect_refused(f, tampered, &p, VN_CRED_EUNSIGNED);
    free(tampered);
    free(kb);
    free(sd_hash);
    json_decref(kbh);
    json_decref(kbp);
    free(body);
    free(forged);
    free(forged_json);

    /* A disclosure's bytes changed: no longer a disclosure at all. */
    char *flipped = strdup(pres);
    char *d = strchr(flipped, '~') + 1;
    d[5] = d[5] == 'A' ? 'B' : 'A';
    expect_refused(f, flipped, &p, VN_CRED_EDISCLOSURE);
    free(flipped);

    /* Another signed disclosure swapped in after binding (the holder shows
     * given_name where the KB-JWT covered age_over_18): sd_hash. */
    assert_int_equal(vn_sdjwt_parse(f->credential, strlen(f->credential), &sd), 0);
    const char *given = NULL;
    for (size_t i = 0; i < sd->n_disclosures; i++)
        if (sd->disclosures[i].name && strcmp(sd->disclosures[i].name, "given_name") == 0)
            given = sd->disclosures[i].encoded;
    assert_non_null(given);
    char *swapped = replace_part(pres, 1, given);
    vn_sdjwt_free(sd);
    expect_refused(f, swapped, &p, VN_CRED_ESDHASH);
    free(swapped);

    /* A disclosure dropped after binding. */
    char *dropped = replace_part(pres, 1, "");
    /* "jwt~~kb": an empty disclosure is malformed; drop it with its '~'. */
    char *dd = strstr(dropped, "~~");
    memmove(dd, dd + 1, strlen(dd));
    expect_refused(f, dropped, &p, VN_CRED_ESDHASH);
    free(dropped);

    /* Wrong nonce, wrong audience, stale, from the future. */
    char *other = present(f, paths, 1, f->holder, "another-nonce", NOW);
    expect_refused(f, other, &p, VN_CRED_ENONCE);
    free(other);
    vn_sdjwt_verify_params p2 = p;
    p2.aud = "museum@services.example.org";
    expect_refused(f, pres, &p2, VN_CRED_EAUD);
    char *stale = present(f, paths, 1, f->holder, "n-0S6_WzA2Mj", NOW - 400);
    expect_refused(f, stale, &p, VN_CRED_ESTALE);
    free(stale);
    char *future = present(f, paths, 1, f->holder, "n-0S6_WzA2Mj", NOW + 120);
    expect_refused(f, future, &p, VN_CRED_ESTALE);
    free(future);

    /* No KB-JWT where one is required; a KB-JWT by another key. */
    char *unbound = present(f, paths, 1, NULL, NULL, 0);
    expect_refused(f, unbound, &p, VN_CRED_EKBMISSING);
    char *kb_other = NULL;
    {
        json_t *h = json_pack("{s:s}", "typ", "kb+jwt");
        char *hash = vn_b64url_sha256(unbound, strlen(unbound));
        json_t *pl =
            json_pack("{s:i, s:s, s:s, s:s}", "iat", NOW, "aud", "hotel@services.example.org",
                      "nonce", "n-0S6_WzA2Mj", "sd_hash", hash);
        char *jwt;
        assert_int_equal(vn_jws_sign_json(f->other, h, NULL, pl, &jwt), 0);
        assert_true(asprintf(&kb_other, "%s%s", unbound, jwt) > 0);
        free(jwt);
        free(hash);
        json_decref(h);
        json_decref(pl);
    }
    expect_refused(f, kb_other, &p, VN_CRED_EKBSIG);
    free(kb_other);

    /* The same disclosure twice. */
    char *twice = NULL;
    const char *first = strchr(unbound, '~') + 1;
    assert_true(asprintf(&twice, "%s%.*s~", unbound, (int)(strchr(first, '~') - first), first) > 0);
    p2 = p;
    p2.require_kb = false;
    expect_refused(f, twice, &p2, VN_CRED_EDUPLICATE);
    free(twice);

    /* The issuer's JWT changed, or by an unknown issuer. */
    char *sig_bad = strdup(unbound);
    char *sig = strrchr(strtok(sig_bad, "~"), '.') + 1;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    sig_bad[strlen(sig_bad)] = '~';
    expect_refused(f, sig_bad, &p2, VN_CRED_ESIGNATURE);
    free(sig_bad);
    fixture stranger = *f;
    stranger.issuer = f->other;
    char *foreign = issue(&stranger, NOW + 3600);
    vn_sdjwt_verify_params p3 = p2;
    expect_refused(f, foreign, &p3, VN_CRED_ESIGNATURE);
    free(foreign);

    /* Expired, revoked, suspended, status unavailable, another vct. */
    free(f->credential);
    f->credential = issue(f, NOW - 60);
    char *expired = present(f, paths, 1, NULL, NULL, 0);
    expect_refused(f, expired, &p2, VN_CRED_EEXPIRED);
    free(expired);
    free(f->credential);
    f->credential = issue(f, NOW + 3600);
    f->status = 1;
    expect_refused(f, unbound, &p2, VN_CRED_EREVOKED);
    f->status = 2;
    expect_refused(f, unbound, &p2, VN_CRED_ESUSPENDED);
    f->status = VN_CRED_ESTATUS;
    expect_refused(f, unbound, &p2, VN_CRED_ESTATUS);
    f->status = 0;
    p3 = p2;
    p3.vct = "https://example.org/credentials/identity";
    expect_refused(f, unbound, &p3, VN_CRED_EVCT);
    free(unbound);
    free(pres);

    /* Garbage of every shape is refused, never crashes. */
    const char *junk[] = {"", "~", "a.b.c~", "eyJ9.e30.AA~", "~~~", "a~b~c"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        vn_sdjwt_verified r;
        assert_int_not_equal(vn_sdjwt_verify(junk[i], strlen(junk[i]), &p, &r), 0);
        vn_sdjwt_verified_free(&r);
    }
}

/* A disclosure whose name collides with a plain claim of the payload. */
static void test_conflicting_disclosure(void **state)
{
    fixture *f = *state;
    const char *dj = "[\"c2FsdHNhbHRzYWx0\",\"vct\",\"https://evil.example/x\"]";
    char *disc = vn_b64url_encode(dj, strlen(dj));
    char *digest = vn_b64url_sha256(disc, strlen(disc));
    json_t *pl = json_pack("{s:s, s:i, s:s, s:s, s:[s]}", "iss", ISS, "iat", NOW, "vct", VCT,
                           "_sd_alg", "sha-256", "_sd", digest);
    json_t *h = json_pack("{s:s}", "typ", "dc+sd-jwt");
    char *jwt;
    assert_int_equal(vn_jws_sign_json(f->issuer, h, NULL, pl, &jwt), 0);
    char *s = NULL;
    assert_true(asprintf(&s, "%s~%s~", jwt, disc) > 0);
    vn_sdjwt_verify_params p = vparams(f);
    p.require_kb = false;
    expect_refused(f, s, &p, VN_CRED_ECONFLICT);
    free(s);
    free(jwt);
    json_decref(h);
    json_decref(pl);
    free(digest);
    free(disc);
}

/* Claim names that are URIs have dots; their paths still find them. */
static void test_dotted_claim_names(void **state)
{
    fixture *f = *state;
    /* "https://example" is a prefix of the other names at a '.': it must
     * not pass for the object around them, nor they for its children. */
    json_t *claims = json_pack("{s:s, s:{s:s}, s:s}", "https://example.org/claims/level", "gold",
                               "https://example.org/claims/org", "unit.name", "Physics",
                               "https://example", "secret");
    vn_sdjwt_issue_params p = {
        .issuer_key = f->issuer, .iss = ISS, .vct = VCT, .iat = NOW, .claims = claims};
    char *cred, *pres;
    assert_int_equal(vn_sdjwt_issue(&p, &cred), 0);
    const char *paths[] = {"https://example.org/claims/org.unit.name"};
    vn_sdjwt_present_params pp = {.paths = paths, .n_paths = 1};
    assert_int_equal(vn_sdjwt_present(cred, strlen(cred), &pp, &pres, NULL), 0);
    vn_sdjwt_verify_params vp = vparams(f);
    vp.require_kb = false;
    vn_sdjwt_verified r;
    assert_int_equal(verify(f, pres, &vp, &r), 0);
    assert_int_equal(json_array_size(r.disclosed), 2);
    for (size_t i = 0; i < 2; i++)
        assert_non_null(
            vn_sdjwt_claim_get(r.claims, json_string_value(json_array_get(r.disclosed, i))));
    assert_string_equal(json_string_value(vn_sdjwt_claim_get(r.claims, paths[0])), "Physics");
    assert_null(json_object_get(r.claims, "https://example.org/claims/level"));
    assert_null(json_object_get(r.claims, "https://example"));
    vn_sdjwt_verified_free(&r);
    free(pres);
    const char *short_name[] = {"https://example"};
    pp.paths = short_name;
    assert_int_equal(vn_sdjwt_present(cred, strlen(cred), &pp, &pres, NULL), 0);
    assert_int_equal(verify(f, pres, &vp, &r), 0);
    assert_int_equal(json_array_size(r.disclosed), 1);
    assert_string_equal(json_string_value(json_object_get(r.claims, "https://example")), "secret");
    vn_sdjwt_verified_free(&r);
    free(pres);
    free(cred);
    json_decref(claims);
}

/* NumericDates out of any sane range are malformed, not overflowed. */
static void test_out_of_range_dates(void **state)
{
    fixture *f = *state;
    json_t *h = json_pack("{s:s}", "typ", "dc+sd-jwt");
    json_t *dates[] = {json_integer(INT64_MAX), json_integer(INT64_MIN), json_real(1e300),
                       json_string("tomorrow")};
    for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
        json_t *pl =
            json_pack("{s:s, s:i, s:s, s:o}", "iss", ISS, "iat", NOW, "vct", VCT, "exp", dates[i]);
        char *jwt, *s = NULL;
        assert_int_equal(vn_jws_sign_json(f->issuer, h, NULL, pl, &jwt), 0);
        assert_true(asprintf(&s, "%s~", jwt) > 0);
        vn_sdjwt_verify_params p = vparams(f);
        p.require_kb = false;
        expect_refused(f, s, &p, VN_CRED_EMALFORMED);
        free(s);
        free(jwt);
        json_decref(pl);
    }
    json_decref(h);
}

/* ---- status lists ---- */

static void test_status_list(void **state)
{
    (void)state;
    /* The draft's examples (§4.1): one bit, and two bits per entry. */
    unsigned char *lst;
    size_t len;
    assert_int_equal(vn_status_list_decode("eNrbuRgAAhcBXQ", &lst, &len), 0);
    int one[] = {1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1};
    assert_int_equal(len, 2);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(vn_status_list_get(lst, len, 1, i), one[i]);
    free(lst);
    assert_int_equal(vn_status_list_decode("eNo76fITAAPfAgc", &lst, &len), 0);
    int two[] = {1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3};
    assert_int_equal(len, 3);
    for (size_t i = 0; i < 12; i++)
        assert_int_equal(vn_status_list_get(lst, len, 2, i), two[i]);
    assert_int_equal(vn_status_list_get(lst, len, 2, 12), VN_CRED_ESTATUS);
    free(lst);
    /* Built here, those entries give the same bytes. */
    unsigned char buf[3] = {0};
    for (size_t i = 0; i < 12; i++)
        assert_int_equal(vn_status_list_set(buf, 3, 2, i, (unsigned)two[i]), 0);
    assert_memory_equal(buf, "\xc9\x44\xf9", 3);
    assert_int_equal(vn_status_list_set(buf, 3, 2, 0, 4), VN_CRED_EINVAL);
    assert_int_equal(vn_status_list_size(100000, 2), 25000);
    /* The signed token, and what a verifier reads back. */
    vn_cred_key *key;
    assert_int_equal(vn_cred_key_generate(VN_CRED_ALG_ES256, &key), 0);
    unsigned char big[25000] = {0};
    assert_int_equal(vn_status_list_set(big, sizeof(big), 2, 99999, VN_STATUS_SUSPENDED), 0);
    vn_status_list_token_params tp = {.key = key,
                                      .uri = "https://example.org/credentials/status/1",
                                      .iat = NOW,
                                      .exp = NOW + 86400,
                                      .ttl = 43200,
                                      .bits = 2,
                                      .lst = big,
                                      .len = sizeof(big)};
    char *jwt;
    assert_int_equal(vn_status_list_sign(&tp, &jwt), 0);
    assert_true(strlen(jwt) < 1000); /* mostly zeros: DEFLATE makes it tiny */
    unsigned bits;
    assert_int_equal(
        vn_status_list_verify(jwt, strlen(jwt), key, tp.uri, NOW, 0, &bits, &lst, &len), 0);
    assert_int_equal(bits, 2);
    assert_int_equal(vn_status_list_get(lst, len, bits, 99999), VN_STATUS_SUSPENDED);
    assert_int_equal(vn_status_list_get(lst, len, bits, 99998), VN_STATUS_VALID);
    free(lst);
    assert_int_equal(
        vn_status_list_verify(jwt, strlen(jwt), key, "https://other/x", NOW, 0, &bits, &lst, &len),
        VN_CRED_ESTATUS);
    assert_int_equal(
        vn_status_list_verify(jwt, strlen(jwt), key, tp.uri, NOW + 90000, 0, &bits, &lst, &len),
        VN_CRED_ESTATUS);
    free(jwt);
    vn_cred_key_free(key);
    /* A DEFLATE bomb is cut off at the limit. */
    size_t huge = VN_STATUS_LIST_MAX_BYTES + 1;
    unsigned char *zeros = calloc(1, huge);
    char *enc = vn_status_list_encode(zeros, huge);
    free(zeros);
    assert_int_equal(vn_status_list_decode(enc, &lst, &len), VN_CRED_ETOOLARGE);
    free(enc);
    assert_int_equal(vn_status_list_decode("eNo76fITAAPfAg", &lst, &len), VN_CRED_EMALFORMED);
}

/* ---- QR ---- */

static void test_qr(void **state)
{
    (void)state;
    unsigned char *png;
    size_t len;
    assert_int_equal(vn_qr_png("https://example.org/credentials/link/abc", 4, 4, &png, &len), 0);
    assert_true(len > 100);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    /* IHDR width: (version 3 = 29 modules + 8 quiet) * 4 = 148. */
    uint32_t w = (uint32_t)png[16] << 24 | (uint32_t)png[17] << 16 | png[18] << 8 | png[19];
    assert_int_equal(w % 4, 0);
    assert_true(w >= (21 + 8) * 4);
    free(png);
    char *longtext = malloc(VN_QR_MAX_TEXT + 2);
    memset(longtext, 'a', VN_QR_MAX_TEXT + 1);
    longtext[VN_QR_MAX_TEXT + 1] = '\0';
    assert_int_equal(vn_qr_png(longtext, 4, 4, &png, &len), VN_CRED_EQR);
    free(longtext);
    assert_int_equal(vn_qr_png("x", 0, 4, &png, &len), VN_CRED_EINVAL);
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(vn_cred_errname(VN_CRED_EREVOKED), "revoked");
    assert_string_equal(vn_cred_errname(VN_CRED_ENONCE), "wrong_nonce");
    assert_string_equal(vn_cred_errname(-999), "unknown");
    for (int e = 0; e >= -60; e--)
        assert_non_null(vn_cred_strerror(e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_rfc9901_digests),
        cmocka_unit_test(test_rfc8037_vectors),
        cmocka_unit_test(test_key_formats),
        cmocka_unit_test(test_jws),
        cmocka_unit_test_setup_teardown(test_issue_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_present_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampering_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicting_disclosure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotted_claim_names, setup, teardown),
        cmocka_unit_test(test_status_list),
        cmocka_unit_test(test_qr),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("sdjwt", tests, NULL, NULL);
}
