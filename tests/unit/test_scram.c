/*
 * test_scram.c - SCRAM credentials and the server side of the exchange:
 * the RFC 5802 and RFC 7677 test vectors byte for byte, channel binding,
 * the downgrade check, failures and malformed messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "scram.h"

/* ---- a directory of one account, as the lookup callback sees it ---- */

typedef struct account {
    const char *user;
    vn_scram_creds creds;
    int result_for_others; /* what lookup returns for other names: 1 or -1 */
    char *looked_up;       /* the last name asked for */
} account;

static int lookup(void *ud, const char *username, vn_scram_creds *out)
{
    account *acct = ud;

    free(acct->looked_up);
    acct->looked_up = strdup(username);
    if (strcmp(username, acct->user) != 0)
        return acct->result_for_others;
    *out = acct->creds;
    return 0;
}

static const unsigned char test_cb[] = "0123456789abcdef0123456789abcdef";

static int cb_data(void *ud, const char *cb_type, unsigned char *out, size_t *len)
{
    if (strcmp(cb_type, "tls-exporter") != 0 || *len < sizeof test_cb - 1)
        return -1;
    memcpy(out, test_cb, sizeof test_cb - 1);
    *len = sizeof test_cb - 1;
    return 0;
}

static void account_init(account *acct, vn_scram_hash hash, const char *user, const char *password,
                         const char *salt_b64)
{
    vn_buf salt;

    memset(acct, 0, sizeof *acct);
    acct->user = user;
    acct->result_for_others = 1;
    vn_buf_init(&salt);
    assert_int_equal(vn_scram_b64_decode(salt_b64, strlen(salt_b64), &salt), 0);
    assert_int_equal(vn_scram_creds_derive(hash, password, (unsigned char *)salt.data, salt.len,
                                           4096, &acct->creds),
                     0);
    vn_buf_free(&salt);
}

static vn_scram_server *server_new(account *acct, vn_scram_hash hash, bool plus,
                                   bool server_has_plus, const char *nonce)
{
    vn_scram_server_params params = {
        .hash = hash,
        .plus = plus,
        .server_has_plus = server_has_plus,
        .cb_data = cb_data,
        .lookup = lookup,
        .ud = acct,
        .nonce_override = nonce,
    };
    vn_scram_server *s = vn_scram_server_new(&params);
    assert_non_null(s);
    return s;
}

static vn_scram_status step(vn_scram_server *s, const char *in, vn_buf *out, const char **condition)
{
    *condition = NULL;
    vn_buf_reset(out);
    return vn_scram_server_step(s, in, strlen(in), out, condition);
}

/* ---- a reference client: computes the proof for an exchange ---- */

static const EVP_MD *md_of(vn_scram_hash hash)
{
    return hash == VN_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
}

/* Appends "c=...,r=nonce,p=proof" for the given password to final, and
 * the expected server signature (base64) to server_sig. */
static void client_final(vn_scram_hash hash, const char *password, const char *client_first_bare,
                         const char *server_first, const void *cbind, size_t cbind_len,
                         vn_buf *final, vn_buf *server_sig)
{
    const EVP_MD *md = md_of(hash);
    int key_len = EVP_MD_get_size(md);
    unsigned char salted[64], client_key[64], stored_key[64], signature[64], server_key[64];
    unsigned int n;
    vn_buf salt;
    char nonce[256];
    unsigned iterations;

    assert_int_equal(sscanf(server_first, "r=%255[^,],", nonce), 1);
    const char *s_attr = strstr(server_first, ",s=");
    const char *i_attr = strstr(server_first, ",i=");
    assert_non_null(s_attr);
    assert_non_null(i_attr);
    assert_int_equal(sscanf(i_attr, ",i=%u", &iterations), 1);
    vn_buf_init(&salt);
    assert_int_equal(vn_scram_b64_decode(s_attr + 3, (size_t)(i_attr - s_attr - 3), &salt), 0);

    vn_buf_append_str(final, "c=");
    vn_scram_b64_encode(cbind, cbind_len, final);
    vn_buf_printf(final, ",r=%s", nonce);
    char *auth_message = malloc(strlen(client_first_bare) + strlen(server_first) + final->len + 3);
    assert_non_null(auth_message);
    sprintf(auth_message, "%s,%s,%s", client_first_bare, server_first, final->data);

    assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), (unsigned char *)salt.data,
                                       (int)salt.len, (int)iterations, md, key_len, salted),
                     1);
    HMAC(md, salted, key_len, (const unsigned char *)"Client Key", 10, client_key, &n);
    EVP_Digest(client_key, (size_t)key_len, stored_key, NULL, md, NULL);
    HMAC(md, stored_key, key_len, (unsigned char *)auth_message, strlen(auth_message), signature,
         &n);
    for (int i = 0; i < key_len; i++)
        client_key[i] ^= signature[i];
    vn_buf_append_str(final, ",p=");
    vn_scram_b64_encode(client_key, (size_t)key_len, final);

    HMAC(md, salted, key_len, (const unsigned char *)"Server Key", 10, server_key, &n);
    HMAC(md, server_key, key_len, (unsigned char *)auth_message, strlen(auth_message), signature,
         &n);
    vn_buf_append_str(server_sig, "v=");
    vn_scram_b64_encode(signature, (size_t)key_len, server_sig);
    free(auth_message);
    vn_buf_free(&salt);
}

/* ---- test vectors ---- */

static void run_vector(vn_scram_hash hash, const char *salt_b64, const char *server_nonce,
                       const char *client_first, const char *server_first,
                       const char *client_final_msg, const char *server_final)
{
    account acct;
    const char *condition;
    vn_buf out;

    account_init(&acct, hash, "user", "pencil", salt_b64);
    vn_buf_init(&out);
    vn_scram_server *s = server_new(&acct, hash, false, false, server_nonce);
    assert_int_equal(step(s, client_first, &out, &condition), VN_SCRAM_CONTINUE);
    assert_string_equal(out.data, server_first);
    assert_string_equal(acct.looked_up, "user");
    assert_int_equal(step(s, client_final_msg, &out, &condition), VN_SCRAM_SUCCESS);
    assert_string_equal(out.data, server_final);
    assert_string_equal(vn_scram_server_username(s), "user");
    assert_string_equal(vn_scram_server_authzid(s), "");
    /* The exchange is over: anything more is an error. */
    assert_int_equal(step(s, client_final_msg, &out, &condition), VN_SCRAM_FAILURE);
    assert_string_equal(condition, "malformed-request");
    vn_scram_server_free(s);
    vn_buf_free(&out);
    free(acct.looked_up);
}

static void test_rfc5802_sha1_vector(void **state)
{
    run_vector(VN_SCRAM_SHA1, "QSXCR+Q6sek8bf92", "3rfcNHYJY1ZVvWVs7j",
               "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
               "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
               "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
               "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

static void test_rfc7677_sha256_vector(void **state)
{
    run_vector(VN_SCRAM_SHA256, "W22ZaJ0SNY7soEsUEjb6gQ==", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
               "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
               "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
               "i=4096",
               "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"
               "Ute9ytag9zjfMHgsqmmiz7AndVQ=",
               "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/* ---- full exchanges through the reference client ---- */

typedef struct exchange {
    vn_scram_hash hash;
    bool plus, server_has_plus;
    const char *client_first; /* gs2 header + bare */
    const char *password;
    const void *cbind_data; /* what the client puts after the gs2 header in c= */
    size_t cbind_data_len;
    const char *condition; /* set on failure */
    vn_scram_status first_status;
} exchange;

/* Runs one exchange against the account user/pencil with random server
 * nonces; returns the final status and checks the server signature on
 * success. */
static vn_scram_status run_exchange(exchange *x)
{
    account acct;
    vn_buf out, final, server_sig, cbind;

    account_init(&acct, x->hash, "user", "pencil", "QSXCR+Q6sek8bf92");
    vn_buf_init(&out);
    vn_buf_init(&final);
    vn_buf_init(&server_sig);
    vn_buf_init(&cbind);
    vn_scram_server *s = server_new(&acct, x->hash, x->plus, x->server_has_plus, NULL);
    vn_scram_status status = step(s, x->client_first, &out, &x->condition);
    x->first_status = status;
    if (status == VN_SCRAM_CONTINUE) {
        const char *bare = strstr(x->client_first, "n=");
        size_t header_len = (size_t)(bare - x->client_first);
        vn_buf_append(&cbind, x->client_first, header_len);
        if (x->cbind_data)
            vn_buf_append(&cbind, x->cbind_data, x->cbind_data_len);
        client_final(x->hash, x->password, bare, out.data, cbind.data, cbind.len, &final,
                     &server_sig);
        status = step(s, final.data, &out, &x->condition);
        if (status == VN_SCRAM_SUCCESS)
            assert_string_equal(out.data, server_sig.data);
    }
    vn_scram_server_free(s);
    vn_buf_free(&out);
    vn_buf_free(&final);
    vn_buf_free(&server_sig);
    vn_buf_free(&cbind);
    free(acct.looked_up);
    return status;
}

static void test_exchange_both_hashes(void **state)
{
    exchange sha1 = {
        .hash = VN_SCRAM_SHA1, .client_first = "n,,n=user,r=abcdef", .password = "pencil"};
    exchange sha256 = {
        .hash = VN_SCRAM_SHA256, .client_first = "n,,n=user,r=abcdef", .password = "pencil"};
    assert_int_equal(run_exchange(&sha1), VN_SCRAM_SUCCESS);
    assert_int_equal(run_exchange(&sha256), VN_SCRAM_SUCCESS);
}

static void test_wrong_password(void **state)
{
    exchange x = {
        .hash = VN_SCRAM_SHA256, .client_first = "n,,n=user,r=abcdef", .password = "pencil2"};
    assert_int_equal(run_exchange(&x), VN_SCRAM_FAILURE);
    assert_string_equal(x.condition, "not-authorized");
}

static void test_channel_binding_ok(void **state)
{
    exchange x = {.hash = VN_SCRAM_SHA256,
                  .plus = true,
                  .server_has_plus = true,
                  .client_first = "p=tls-exporter,,n=user,r=abcdef",
                  .password = "pencil",
                  .cbind_data = test_cb,
                  .cbind_data_len = sizeof test_cb - 1};
    assert_int_equal(run_exchange(&x), VN_SCRAM_SUCCESS);
    x.hash = VN_SCRAM_SHA1;
    assert_int_equal(run_exchange(&x), VN_SCRAM_SUCCESS);
}

static void test_channel_binding_mismatch(void **state)
{
    exchange x = {.hash = VN_SCRAM_SHA256,
                  .plus = true,
                  .server_has_plus = true,
                  .client_first = "p=tls-exporter,,n=user,r=abcdef",
                  .password = "pencil",
                  .cbind_data = "another connection's binding",
                  .cbind_data_len = 28};
    assert_int_equal(run_exchange(&x), VN_SCRAM_FAILURE);
    assert_string_equal(x.condition, "not-authorized");

    /* No channel binding data at all in c= */
    x.cbind_data = NULL;
    x.cbind_data_len = 0;
    assert_int_equal(run_exchange(&x), VN_SCRAM_FAILURE);
    assert_string_equal(x.condition, "not-authorized");
}

static void test_channel_binding_type_unsupported(void **state)
{
    exchange x = {.hash = VN_SCRAM_SHA256,
                  .plus = true,
                  .server_has_plus = true,
                  .client_first = "p=tls-unique,,n=user,r=abcdef",
                  .password = "pencil"};
    assert_int_equal(run_exchange(&x), VN_SCRAM_FAILURE);
    assert_int_equal(x.first_status, VN_SCRAM_FAILURE);
    assert_string_equal(x.condition, "not-authorized");
}

static void test_gs2_flag_rules(void **state)
{
    /* 'y' (client supports binding, thinks the server does not) while the
     * server offered -PLUS: a downgrade. */
    exchange y = {.hash = VN_SCRAM_SHA256,
                  .server_has_plus = true,
                  .client_first = "y,,n=user,r=abcdef",
                  .password = "pencil"};
    assert_int_equal(run_exchange(&y), VN_SCRAM_FAILURE);
    assert_int_equal(y.first_status, VN_SCRAM_FAILURE);
    assert_string_equal(y.condition, "not-authorized");
    /* The same without -PLUS on offer is fine, and c= then holds "y,,". */
    y.server_has_plus = false;
    assert_int_equal(run_exchange(&y), VN_SCRAM_SUCCESS);

    /* 'p' on a non-PLUS mechanism, 'n' on a PLUS one. */
    exchange p = {.hash = VN_SCRAM_SHA256,
                  .server_has_plus = true,
                  .client_first = "p=tls-exporter,,n=user,r=abcdef",
                  .password = "pencil",
                  .cbind_data = test_cb,
                  .cbind_data_len = sizeof test_cb - 1};
    assert_int_equal(run_exchange(&p), VN_SCRAM_FAILURE);
    assert_string_equal(p.condition, "malformed-request");
    exchange n = {.hash = VN_SCRAM_SHA256,
                  .plus = true,
                  .server_has_plus = true,
                  .client_first = "n,,n=user,r=abcdef",
                  .password = "pencil"};
    assert_int_equal(run_exchange(&n), VN_SCRAM_FAILURE);
    assert_string_equal(n.condition, "malformed-request");
}

static void test_unknown_user(void **state)
{
    account acct;
    const char *condition;
    vn_buf first1, first2, other, final, sig;

    account_init(&acct, VN_SCRAM_SHA256, "user", "pencil", "QSXCR+Q6sek8bf92");
    vn_buf_init(&first1);
    vn_buf_init(&first2);
    vn_buf_init(&other);
    vn_buf_init(&final);
    vn_buf_init(&sig);

    /* The salt offered for an unknown name is the same every time, and
     * differs between names. */
    vn_scram_server *s1 = server_new(&acct, VN_SCRAM_SHA256, false, false, "N");
    vn_scram_server *s2 = server_new(&acct, VN_SCRAM_SHA256, false, false, "N");
    vn_scram_server *s3 = server_new(&acct, VN_SCRAM_SHA256, false, false, "N");
    assert_int_equal(step(s1, "n,,n=nobody,r=abc", &first1, &condition), VN_SCRAM_CONTINUE);
    assert_int_equal(step(s2, "n,,n=nobody,r=abc", &first2, &condition), VN_SCRAM_CONTINUE);
    assert_int_equal(step(s3, "n,,n=someone,r=abc", &other, &condition), VN_SCRAM_CONTINUE);
    assert_string_equal(first1.data, first2.data);
    assert_string_not_equal(first1.data, other.data);
    assert_non_null(strstr(first1.data, ",i=4096"));

    /* Whatever the client proves, it fails at the end. */
    client_final(VN_SCRAM_SHA256, "pencil", "n=nobody,r=abc", first1.data, "n,,", 3, &final, &sig);
    assert_int_equal(step(s1, final.data, &first1, &condition), VN_SCRAM_FAILURE);
    assert_string_equal(condition, "not-authorized");

    vn_scram_server_free(s1);
    vn_scram_server_free(s2);
    vn_scram_server_free(s3);
    vn_buf_free(&first1);
    vn_buf_free(&first2);
    vn_buf_free(&other);
    vn_buf_free(&final);
    vn_buf_free(&sig);
    free(acct.looked_up);
}

static void test_lookup_error(void **state)
{
    account acct;
    const char *condition;
    vn_buf out;

    account_init(&acct, VN_SCRAM_SHA1, "user", "pencil", "QSXCR+Q6sek8bf92");
    acct.result_for_others = -1;
    vn_buf_init(&out);
    vn_scram_server *s = server_new(&acct, VN_SCRAM_SHA1, false, false, NULL);
    assert_int_equal(step(s, "n,,n=broken,r=abc", &out, &condition), VN_SCRAM_FAILURE);
    assert_string_equal(condition, "temporary-auth-failure");
    vn_scram_server_free(s);

    /* Credentials of the other hash are not usable. */
    s = server_new(&acct, VN_SCRAM_SHA256, false, false, NULL);
    assert_int_equal(step(s, "n,,n=user,r=abc", &out, &condition), VN_SCRAM_FAILURE);
    assert_string_equal(condition, "temporary-auth-failure");
    vn_scram_server_free(s);
    vn_buf_free(&out);
    free(acct.looked_up);
}

static void test_saslname_escapes(void **state)
{
    account acct;
    const char *condition;
    vn_buf out;

    account_init(&acct, VN_SCRAM_SHA1, "a,b=c", "pencil", "QSXCR+Q6sek8bf92");
    vn_buf_init(&out);
    vn_scram_server *s = server_new(&acct, VN_SCRAM_SHA1, false, false, NULL);
    assert_int_equal(step(s, "n,a=admin=2Cx=3D,n=a=2Cb=3Dc,r=abc", &out, &condition),
                     VN_SCRAM_CONTINUE);
    assert_string_equal(acct.looked_up, "a,b=c");
    assert_string_equal(vn_scram_server_username(s), "a,b=c");
    assert_string_equal(vn_scram_server_authzid(s), "admin,x=");
    vn_scram_server_free(s);
    vn_buf_free(&out);
    free(acct.looked_up);
}

static void test_malformed_client_first(void **state)
{
    static const char *const bad[] = {
        "",
        "x,,n=user,r=abc",
        "n,n=user,r=abc",
        "n,,n=us=er,r=abc", /* '=' not followed by 2C or 3D */
        "n,,n=us=2c,r=abc", /* escapes are upper case */
        "n,,n=user=,r=abc", /* '=' at the end */
        "n,,n=,r=abc",      /* empty username */
        "n,,r=abc",         /* no username */
        "n,,n=user",        /* no nonce */
        "n,,n=user,r=",     /* empty nonce */
        "n,,n=user,r=a\x01"
        "b",                     /* nonce not printable */
        "n,,m=ext,n=user,r=abc", /* mandatory extension */
        "n,,n=user,r=abc,",      /* empty extension */
        "n,,n=user,r=abc,1=x",   /* extension name not a letter */
        "n,,n=u\xc3,r=abc",      /* username not UTF-8 */
        "n,a=,n=user,r=abc",     /* empty authzid */
        "p=,,n=user,r=abc",      /* empty channel binding name */
        "p=tls_exporter,,n=user,r=abc",
    };
    account acct;
    const char *condition;
    vn_buf out;

    account_init(&acct, VN_SCRAM_SHA1, "user", "pencil", "QSXCR+Q6sek8bf92");
    vn_buf_init(&out);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vn_scram_server *s = server_new(&acct, VN_SCRAM_SHA1, bad[i][0] == 'p', true, NULL);
        if (step(s, bad[i], &out, &condition) != VN_SCRAM_FAILURE)
            fail_msg("accepted client-first \"%s\"", bad[i]);
        assert_string_equal(condition, "malformed-request");
        vn_scram_server_free(s);
    }
    /* A NUL inside the message */
    vn_scram_server *s = server_new(&acct, VN_SCRAM_SHA1, false, false, NULL);
    assert_int_equal(vn_scram_server_step(s, "n,,n=us\0er,r=abc", 16, &out, &condition),
                     VN_SCRAM_FAILURE);
    assert_string_equal(condition, "malformed-request");
    vn_scram_server_free(s);
    /* Unknown optional extensions are ignored. */
    s = server_new(&acct, VN_SCRAM_SHA1, false, false, NULL);
    assert_int_equal(step(s, "n,,n=user,r=abc,x=whatever", &out, &condition), VN_SCRAM_CONTINUE);
    vn_scram_server_free(s);
    vn_buf_free(&out);
    free(acct.looked_up);
}

static void test_malformed_client_final(void **state)
{
    static const struct {
        const char *final;
        const char *condition;
    } cases[] = {
        {"", "malformed-request"},
        {"r=abcNONCE,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "malformed-request"}, /* no c= */
        {"c=bi ws,r=abcNONCE,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "malformed-request"},
        {"c=biw,r=abcNONCE,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "malformed-request"},
        {"c=eSws,r=abcNONCE,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not-authorized"}, /* "y,," */
        {"c=biws,r=abcOTHER,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not-authorized"},
        {"c=biws,r=abc,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not-authorized"},
        {"c=biws,r=abcNONCE", "malformed-request"},        /* no proof */
        {"c=biws,r=abcNONCE,p=AAAA", "malformed-request"}, /* short proof */
        {"c=biws,r=abcNONCE,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA", "malformed-request"},
        {"c=biws,r=abcNONCE,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=,x=y", "malformed-request"},
        {"c=biws,r=abcNONCE,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not-authorized"}, /* wrong */
        {"c=biws,r=abcNONCE,x=ext,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not-authorized"},
    };
    account acct;
    const char *condition;
    vn_buf out;

    account_init(&acct, VN_SCRAM_SHA1, "user", "pencil", "QSXCR+Q6sek8bf92");
    vn_buf_init(&out);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vn_scram_server *s = server_new(&acct, VN_SCRAM_SHA1, false, false, "NONCE");
        assert_int_equal(step(s, "n,,n=user,r=abc", &out, &condition), VN_SCRAM_CONTINUE);
        if (step(s, cases[i].final, &out, &condition) != VN_SCRAM_FAILURE)
            fail_msg("accepted client-final \"%s\"", cases[i].final);
        if (strcmp(condition, cases[i].condition) != 0)
            fail_msg("\"%s\": %s, expected %s", cases[i].final, condition, cases[i].condition);
        vn_scram_server_free(s);
    }
    vn_buf_free(&out);
    free(acct.looked_up);
}

/* ---- credentials and base64 ---- */

static void test_creds_check(void **state)
{
    vn_scram_creds a, b;

    assert_int_equal(vn_scram_creds_make(VN_SCRAM_SHA256, "s3cret", 4096, &a), 0);
    assert_int_equal(a.hash, VN_SCRAM_SHA256);
    assert_int_equal(a.key_len, 32);
    assert_int_equal(a.iterations, 4096);
    assert_true(vn_scram_creds_check(&a, "s3cret"));
    assert_false(vn_scram_creds_check(&a, "s3cret "));
    assert_false(vn_scram_creds_check(&a, ""));

    /* A fresh salt every time: the same password gives other keys. */
    assert_int_equal(vn_scram_creds_make(VN_SCRAM_SHA256, "s3cret", 4096, &b), 0);
    assert_memory_not_equal(a.salt, b.salt, a.salt_len);
    assert_memory_not_equal(a.stored_key, b.stored_key, a.key_len);

    assert_int_equal(vn_scram_creds_make(VN_SCRAM_SHA1, "s3cret", 1000, &b), 0);
    assert_int_equal(b.key_len, 20);
    assert_true(vn_scram_creds_check(&b, "s3cret"));
    assert_false(vn_scram_creds_check(&b, "S3cret"));
    /* A tampered server key fails even with the right password. */
    b.server_key[0] ^= 1;
    assert_false(vn_scram_creds_check(&b, "s3cret"));

    assert_int_equal(vn_scram_creds_make(VN_SCRAM_SHA1, "x", 0, &b), -1);
    /* Salts up to 64 bytes: Prosody's are 36 (a UUID), vestnik's 16. */
    unsigned char big_salt[65] = {0};
    assert_int_equal(vn_scram_creds_derive(VN_SCRAM_SHA1, "x", big_salt, 36, 1, &b), 0);
    assert_true(vn_scram_creds_check(&b, "x"));
    assert_int_equal(vn_scram_creds_derive(VN_SCRAM_SHA1, "x", big_salt, 65, 1, &b), -1);
    assert_int_equal(vn_scram_creds_derive(VN_SCRAM_SHA1, "x", big_salt, 0, 1, &b), -1);
}

static void test_base64(void **state)
{
    vn_buf out;

    vn_buf_init(&out);
    assert_int_equal(vn_scram_b64_decode("", 0, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(vn_scram_b64_decode("QQ==", 4, &out), 0);
    assert_int_equal(out.len, 1);
    assert_memory_equal(out.data, "A", 1);
    vn_buf_reset(&out);
    assert_int_equal(vn_scram_b64_decode("QUI=", 4, &out), 0);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "AB", 2);
    vn_buf_reset(&out);
    assert_int_equal(vn_scram_b64_decode("biws", 4, &out), 0);
    assert_string_equal(out.data, "n,,");

    static const char *const bad[] = {
        "QQ=", "Q===", "====", " QQ==", "QQ== ", "QQ==QQ==", "Q\nQ=", "QQ-_", "=", "Q"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (vn_scram_b64_decode(bad[i], strlen(bad[i]), &out) != -1)
            fail_msg("accepted base64 \"%s\"", bad[i]);

    vn_buf_reset(&out);
    vn_scram_b64_encode("n,,", 3, &out);
    assert_string_equal(out.data, "biws");
    vn_buf_reset(&out);
    vn_scram_b64_encode("A", 1, &out);
    assert_string_equal(out.data, "QQ==");
    vn_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5802_sha1_vector),
        cmocka_unit_test(test_rfc7677_sha256_vector),
        cmocka_unit_test(test_exchange_both_hashes),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_channel_binding_ok),
        cmocka_unit_test(test_channel_binding_mismatch),
        cmocka_unit_test(test_channel_binding_type_unsupported),
        cmocka_unit_test(test_gs2_flag_rules),
        cmocka_unit_test(test_unknown_user),
        cmocka_unit_test(test_lookup_error),
        cmocka_unit_test(test_saslname_escapes),
        cmocka_unit_test(test_malformed_client_first),
        cmocka_unit_test(test_malformed_client_final),
        cmocka_unit_test(test_creds_check),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
