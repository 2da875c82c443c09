/*
 * fuzz_sasl.c - libFuzzer target for SASL message parsing: the SCRAM
 * server (scram.c: client-first and client-final, gs2 header, saslname
 * escapes, channel binding, extensions, proof) and PLAIN through the
 * negotiation layer (sasl.c: authzid/authcid/password split, base64).
 *
 * Input: one control byte, then client messages separated by 0xFF bytes
 * (never part of valid UTF-8, so never needed inside one).
 *   control & 3      0 SCRAM-SHA-1, 1 SCRAM-SHA-256, 2 or 3 PLAIN
 *   control & 0x04   SCRAM: the -PLUS mechanism
 *   control & 0x08   SCRAM: the server offered -PLUS ('y' downgrade check)
 *   control & 0x10   SCRAM: a final message ending in ",p=" gets the right
 *                    proof appended, so the fuzzer reaches the success path
 *   control & 0x20   PLAIN: the message is passed as the base64 text itself
 *                    (fuzzing the decoder) instead of being encoded
 * The SCRAM server nonce is fixed ("fuzz"), so a client-final can carry the
 * right nonce; the account "juliet" (password "r0m30") exists for both
 * SCRAM (lookup callback) and PLAIN (an LMDB store in a temporary dir).
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "fuzz_tmpdir.h"
#include "log_internal.h"
#include "sasl.h"
#include "scram.h"
#include "store_backend.h"

#define HOST "localhost"
#define USER "juliet"
#define PASSWORD "r0m30"
#define ITERATIONS 4096
#define SERVER_NONCE "fuzz"
#define MAX_MESSAGES 4

static const unsigned char salt[16] = "vestnik-fuzzsalt";
static vn_scram_creds creds[2];                       /* by vn_scram_hash */
static unsigned char client_key[2][VN_SCRAM_MAX_KEY]; /* HMAC(SaltedPassword, "Client Key") */
static vn_store *store;
static SSL_CTX *ssl_ctx;
static SSL *ssl; /* never handshaken: PLAIN is offered, channel binding is not */

static const EVP_MD *md_of(vn_scram_hash hash)
{
    return hash == VN_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
}

static void derive_keys(vn_scram_hash hash)
{
    unsigned char salted[VN_SCRAM_MAX_KEY];
    unsigned int len;
    int key_len = EVP_MD_get_size(md_of(hash));

    if (vn_scram_creds_derive(hash, PASSWORD, salt, sizeof salt, ITERATIONS, &creds[hash]) != 0 ||
        PKCS5_PBKDF2_HMAC(PASSWORD, strlen(PASSWORD), salt, sizeof salt, ITERATIONS, md_of(hash),
                          key_len, salted) != 1 ||
        !HMAC(md_of(hash), salted, key_len, (const unsigned char *)"Client Key", 10,
              client_key[hash], &len))
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vn_log_setup(VN_LOG_ERROR, false, "fuzz_sasl");
    derive_keys(VN_SCRAM_SHA1);
    derive_keys(VN_SCRAM_SHA256);

    vn_buf err;
    vn_buf_init(&err);
    char *path = vn_asprintf("%s/store", fuzz_tmpdir_make());
    vn_store_options opts = {.backend = "lmdb", .path = path, .map_size_mb = 64};
    store = vn_store_open(&opts, &err);
    free(path);
    if (!store || vn_accounts_create(store, HOST, USER, PASSWORD, ITERATIONS) != 0) {
        fprintf(stderr, "fuzz_sasl: cannot set up the store: %s\n", err.data ? err.data : "");
        exit(1);
    }
    vn_buf_free(&err);
    ssl_ctx = SSL_CTX_new(TLS_server_method());
    ssl = ssl_ctx ? SSL_new(ssl_ctx) : NULL;
    if (!ssl)
        abort();
    return 0;
}

/* ---- SCRAM ---- */

static int cb_data(void *ud, const char *cb_type, unsigned char *out, size_t *len)
{
    static const unsigned char binding[32] = "channel binding data for fuzzing";

    if (strcmp(cb_type, "tls-exporter") != 0 && strcmp(cb_type, "tls-server-end-point") != 0)
        return -1;
    if (*len < sizeof binding)
        return -1;
    memcpy(out, binding, sizeof binding);
    *len = sizeof binding;
    return 0;
}

static int lookup(void *ud, const char *username, vn_scram_creds *out)
{
    const vn_scram_creds *known = ud;
    if (strcmp(username, USER) != 0)
        return 1;
    *out = *known;
    return 0;
}

/* Append the proof a real client with the right password would send. */
static void append_proof(vn_scram_hash hash, const char *client_first_bare,
                         const char *server_first, vn_buf *final)
{
    unsigned char signature[EVP_MAX_MD_SIZE], proof[VN_SCRAM_MAX_KEY];
    unsigned int len;
    size_t key_len = creds[hash].key_len;
    char *auth = vn_asprintf("%s,%s,%.*s", client_first_bare, server_first, (int)(final->len - 3),
                             final->data);

    if (!HMAC(md_of(hash), creds[hash].stored_key, (int)key_len, (const unsigned char *)auth,
              strlen(auth), signature, &len))
        abort();
    for (size_t i = 0; i < key_len; i++)
        proof[i] = client_key[hash][i] ^ signature[i];
    vn_scram_b64_encode(proof, key_len, final);
    free(auth);
}

static void run_scram(uint8_t control, vn_buf *messages, size_t count)
{
    vn_scram_hash hash = (control & 3) == 0 ? VN_SCRAM_SHA1 : VN_SCRAM_SHA256;
    vn_scram_server_params params = {
        .hash = hash,
        .plus = control & 0x04,
        .server_has_plus = control & 0x08,
        .cb_data = cb_data,
        .lookup = lookup,
        .ud = &creds[hash],
        .nonce_override = SERVER_NONCE,
    };
    vn_scram_server *server = vn_scram_server_new(&params);
    vn_buf out, server_first;
    const char *condition = NULL;
    const char *client_first_bare = NULL;

    vn_buf_init(&out);
    vn_buf_init(&server_first);
    for (size_t i = 0; i < count; i++) {
        vn_buf *msg = &messages[i];
        if (i == 1 && (control & 0x10) && client_first_bare && msg->len >= 3 &&
            memcmp(msg->data + msg->len - 3, ",p=", 3) == 0)
            append_proof(hash, client_first_bare, server_first.data, msg);
        vn_scram_status status =
            vn_scram_server_step(server, msg->data ? msg->data : "", msg->len, &out, &condition);
        if (status == VN_SCRAM_FAILURE) {
            if (!condition)
                abort();
            break;
        }
        if (status == VN_SCRAM_SUCCESS && !vn_scram_server_username(server))
            abort();
        if (i == 0) {
            /* client-first-message-bare follows the gs2 header's second comma. */
            const char *comma = memchr(msg->data, ',', msg->len);
            comma =
                comma ? memchr(comma + 1, ',', msg->len - (size_t)(comma + 1 - msg->data)) : NULL;
            client_first_bare = comma ? comma + 1 : NULL;
            vn_buf_append(&server_first, out.data, out.len);
        }
    }
    vn_scram_server_free(server);
    vn_buf_free(&out);
    vn_buf_free(&server_first);
}

/* ---- PLAIN ---- */

static void run_plain(uint8_t control, vn_buf *messages, size_t count)
{
    vn_sasl_context ctx = {
        .store = store, .host = HOST, .ssl = ssl, .secure = true, .allow_plain = true};
    const char *condition = NULL;
    vn_sasl *sasl = vn_sasl_start(&ctx, "PLAIN", &condition);
    vn_buf text, out;

    if (!sasl)
        abort(); /* PLAIN is offered with TLS and allow_plain */
    vn_buf_init(&text);
    vn_buf_init(&out);
    for (size_t i = 0; i < count; i++) {
        vn_buf_reset(&text);
        if (control & 0x20)
            vn_buf_append(&text, messages[i].data, messages[i].len);
        else
            vn_scram_b64_encode(messages[i].data, messages[i].len, &text);
        vn_buf_append(&text, "", 1);
        vn_sasl_status status = vn_sasl_step(sasl, text.data, &out, &condition);
        if (status == VN_SASL_FAILURE)
            break;
        if (status == VN_SASL_SUCCESS && strcmp(vn_sasl_username(sasl), USER) != 0)
            abort(); /* only the one account's password can succeed */
    }
    vn_sasl_free(sasl);
    vn_buf_free(&text);
    vn_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vn_buf messages[MAX_MESSAGES];
    size_t count = 0;

    if (size < 1)
        return 0;
    uint8_t control = data[0];
    const uint8_t *p = data + 1, *end = data + size;
    while (count < MAX_MESSAGES) {
        const uint8_t *sep = memchr(p, 0xFF, (size_t)(end - p));
        const uint8_t *stop = sep ? sep : end;
        vn_buf_init(&messages[count]);
        vn_buf_append(&messages[count], p, (size_t)(stop - p));
        count++;
        if (!sep)
            break;
        p = sep + 1;
    }
    if ((control & 3) < 2)
        run_scram(control, messages, count);
    else
        run_plain(control, messages, count);
    for (size_t i = 0; i < count; i++)
        vn_buf_free(&messages[i]);
    return 0;
}
