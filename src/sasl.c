/*
 * sasl.c - SASL for client streams (RFC 6120 §6): which mechanisms a
 * stream is offered, and one exchange of SCRAM (scram.c) or PLAIN
 * (RFC 4616) against the accounts of the stream's host.
 *
 * The -PLUS mechanisms are offered only when the TLS connection yields a
 * channel binding of a type we support and the transport may use it (not
 * on web transports by default); the types go into the XEP-0440
 * <sasl-channel-binding/> feature. PLAIN is offered only on encrypted streams and
 * only if configured.
 */
#include "sasl.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "scram.h"
#include "tls.h"
#include "vestnik/jid.h"

#define NS_SASL_CB "urn:xmpp:sasl-cb:0"
#define CB_DATA_MAX 128

typedef struct mechanism {
    const char *name;
    bool scram;
    vn_scram_hash hash;
    bool plus;
} mechanism;

/* In order of preference, as offered. */
static const mechanism mechanisms[] = {
    {"SCRAM-SHA-256-PLUS", true, VN_SCRAM_SHA256, true},
    {"SCRAM-SHA-1-PLUS", true, VN_SCRAM_SHA1, true},
    {"SCRAM-SHA-256", true, VN_SCRAM_SHA256, false},
    {"SCRAM-SHA-1", true, VN_SCRAM_SHA1, false},
    {"PLAIN", false, VN_SCRAM_SHA256, false},
};

/* Channel binding types, preferred first. */
static const char *const cb_types[] = {"tls-exporter", "tls-server-end-point"};

struct vn_sasl {
    vn_sasl_context ctx;
    const mechanism *mech;
    vn_scram_server *scram; /* SCRAM mechanisms only */
    char *username;         /* normalised localpart, after SUCCESS */
    char *attempted;        /* normalised localpart the client named */
    bool wrong_credentials; /* failed on the password itself */
    bool started;           /* the first step (the <auth/> text) was seen */
    bool finished;
};

/* ---- what is offered ---- */

static bool cb_type_available(SSL *ssl, const char *type)
{
    unsigned char data[CB_DATA_MAX];
    size_t len = sizeof data;

    return vn_tls_channel_binding(ssl, type, data, &len) == 0;
}

static bool plus_available(const vn_sasl_context *ctx)
{
    if (!ctx->ssl || !ctx->channel_binding)
        return false;
    for (size_t i = 0; i < sizeof cb_types / sizeof cb_types[0]; i++)
        if (cb_type_available(ctx->ssl, cb_types[i]))
            return true;
    return false;
}

static bool mechanism_offered(const vn_sasl_context *ctx, const mechanism *mech)
{
    if (mech->plus)
        return plus_available(ctx);
    if (!mech->scram)
        return ctx->secure && ctx->allow_plain;
    return true;
}

void vn_sasl_add_mechanisms(const vn_sasl_context *ctx, vn_stanza *list)
{
    for (size_t i = 0; i < sizeof mechanisms / sizeof mechanisms[0]; i++)
        if (mechanism_offered(ctx, &mechanisms[i]))
            vn_stanza_add_text_child(list, "mechanism", vn_stanza_ns(list), mechanisms[i].name);
}

void vn_sasl_add_features(const vn_sasl_context *ctx, vn_stanza *features)
{
    vn_stanza *bindings = NULL;

    vn_sasl_add_mechanisms(ctx, vn_stanza_add_child(features, "mechanisms", VN_NS_SASL));
    for (size_t i = 0; plus_available(ctx) && i < sizeof cb_types / sizeof cb_types[0]; i++) {
        if (!cb_type_available(ctx->ssl, cb_types[i]))
            continue;
        if (!bindings)
            bindings = vn_stanza_add_child(features, "sasl-channel-binding", NS_SASL_CB);
        vn_stanza *binding = vn_stanza_add_child(bindings, "channel-binding", NS_SASL_CB);
        vn_stanza_set_attr(binding, "type", cb_types[i]);
    }
}

/* ---- SCRAM callbacks ---- */

static int scram_cb_data(void *ud, const char *cb_type, unsigned char *out, size_t *len)
{
    const vn_sasl *s = ud;

    for (size_t i = 0; i < sizeof cb_types / sizeof cb_types[0]; i++)
        if (strcmp(cb_type, cb_types[i]) == 0)
            return s->ctx.ssl ? vn_tls_channel_binding(s->ctx.ssl, cb_type, out, len) : -1;
    return -1;
}

static bool account_held(const vn_sasl *s, const char *local)
{
    return s->ctx.account_held && s->ctx.account_held(s->ctx.host, local, s->ctx.peer_ip);
}

static int scram_lookup(void *ud, const char *username, vn_scram_creds *out)
{
    vn_sasl *s = ud;
    char *local = vn_jid_prep_local(username);

    if (!local)
        return 1;
    free(s->attempted);
    s->attempted = local;
    if (account_held(s, local))
        return -1; /* temporary-auth-failure */
    return vn_accounts_get_creds(s->ctx.store, s->ctx.host, local, s->mech->hash, out);
}

/* ---- the exchange ---- */

vn_sasl *vn_sasl_start(const vn_sasl_context *ctx, const char *mechanism_name,
                       const char **condition)
{
    const mechanism *mech = NULL;

    for (size_t i = 0; i < sizeof mechanisms / sizeof mechanisms[0]; i++)
        if (strcmp(mechanism_name, mechanisms[i].name) == 0)
            mech = &mechanisms[i];
    if (!mech || !mechanism_offered(ctx, mech)) {
        bool plain_needs_tls = mech && !mech->scram && ctx->allow_plain && !ctx->secure;
        *condition = plain_needs_tls ? "encryption-required" : "invalid-mechanism";
        return NULL;
    }

    vn_sasl *s = vn_alloc(sizeof *s);
    s->ctx = *ctx;
    s->mech = mech;
    if (mech->scram) {
        vn_scram_server_params params = {
            .hash = mech->hash,
            .plus = mech->plus,
            .server_has_plus = plus_available(ctx) && !ctx->client_tried_plus,
            .cb_data = scram_cb_data,
            .lookup = scram_lookup,
            .ud = s,
            .unknown_iterations = ctx->scram_iterations,
        };
        s->scram = vn_scram_server_new(&params);
        if (!s->scram) {
            free(s);
            *condition = "temporary-auth-failure";
            return NULL;
        }
    }
    return s;
}

void vn_sasl_free(vn_sasl *s)
{
    if (!s)
        return;
    vn_scram_server_free(s->scram);
    free(s->username);
    free(s->attempted);
    free(s);
}

const char *vn_sasl_username(const vn_sasl *s)
{
    return s->username;
}

const char *vn_sasl_attempted_username(const vn_sasl *s)
{
    return s->attempted;
}

bool vn_sasl_wrong_credentials(const vn_sasl *s)
{
    return s->wrong_credentials;
}

const char *vn_sasl_mechanism(const vn_sasl *s)
{
    return s->mech->name;
}

/* An authorization identity is accepted only when it names the account
 * itself (user@host, no resource). */
static bool authzid_acceptable(const vn_sasl *s, const char *authzid, const char *local)
{
    if (!authzid[0])
        return true;
    vn_jid *requested = vn_jid_parse(authzid);
    vn_jid *own = vn_jid_make(local, s->ctx.host, NULL);
    bool same = requested && own && vn_jid_equal(requested, own);
    vn_jid_free(requested);
    vn_jid_free(own);
    return same;
}

/* PLAIN: [authzid] NUL authcid NUL passwd (RFC 4616). */
static vn_sasl_status plain_step(vn_sasl *s, const vn_buf *data, const char **condition)
{
    const char *msg = data->data;
    const char *nul1 = data->len ? memchr(msg, '\0', data->len) : NULL;
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', data->len - (size_t)(nul1 + 1 - msg)) : NULL;

    if (!nul2 || nul2 == nul1 + 1 || nul2 + 1 == msg + data->len ||
        memchr(nul2 + 1, '\0', data->len - (size_t)(nul2 + 1 - msg))) {
        *condition = "malformed-request";
        return VN_SASL_FAILURE;
    }
    char *authcid = vn_strndup(nul1 + 1, (size_t)(nul2 - nul1 - 1));
    char *password = vn_strndup(nul2 + 1, data->len - (size_t)(nul2 + 1 - msg));
    char *local = vn_jid_prep_local(authcid);
    bool refused = local && account_held(s, local);
    int rc = local && !refused
                 ? vn_accounts_check_password(s->ctx.store, s->ctx.host, local, password)
                 : 1;
    OPENSSL_cleanse(password, strlen(password));
    free(password);
    free(authcid);
    if (local)
        s->attempted = vn_strdup(local);

    vn_sasl_status status = VN_SASL_FAILURE;
    if (rc < 0 || refused) {
        *condition = "temporary-auth-failure";
    } else if (rc > 0) {
        *condition = "not-authorized";
        s->wrong_credentials = true;
    } else if (!authzid_acceptable(s, msg, local)) {
        *condition = "invalid-authzid";
    } else {
        s->username = local;
        local = NULL;
        status = VN_SASL_SUCCESS;
    }
    free(local);
    return status;
}

static vn_sasl_status scram_step(vn_sasl *s, const vn_buf *data, vn_buf *out,
                                 const char **condition)
{
    vn_buf message;

    vn_buf_init(&message);
    vn_scram_status status = vn_scram_server_step(s->scram, data->data ? data->data : "", data->len,
                                                  &message, condition);
    if (status == VN_SCRAM_FAILURE) {
        /* RFC 5802's "invalid-proof" is the one failure that tested the
         * password (a channel binding mismatch, say, did not). */
        s->wrong_credentials = message.data && strcmp(message.data, "e=invalid-proof") == 0 &&
                               strcmp(*condition, "not-authorized") == 0;
        vn_buf_free(&message);
        return VN_SASL_FAILURE;
    }
    if (status == VN_SCRAM_SUCCESS) {
        char *local = vn_jid_prep_local(vn_scram_server_username(s->scram));
        if (!local || !authzid_acceptable(s, vn_scram_server_authzid(s->scram), local)) {
            free(local);
            vn_buf_free(&message);
            *condition = local ? "invalid-authzid" : "not-authorized";
            return VN_SASL_FAILURE;
        }
        s->username = local;
    }
    vn_scram_b64_encode(message.data, message.len, out);
    vn_buf_free(&message);
    return status == VN_SCRAM_SUCCESS ? VN_SASL_SUCCESS : VN_SASL_CONTINUE;
}

vn_sasl_status vn_sasl_step(vn_sasl *s, const char *in, vn_buf *out, const char **condition)
{
    vn_buf data;
    bool first = !s->started;

    vn_buf_reset(out);
    if (s->finished) {
        *condition = "malformed-request";
        return VN_SASL_FAILURE;
    }
    s->started = true;
    /* <auth/> without text: no initial response, so an empty challenge. */
    if (first && !in[0])
        return VN_SASL_CONTINUE;

    vn_buf_init(&data);
    if (strcmp(in, "=") != 0 && vn_scram_b64_decode(in, strlen(in), &data) != 0) {
        s->finished = true;
        *condition = "incorrect-encoding";
        return VN_SASL_FAILURE;
    }
    vn_sasl_status status =
        s->mech->scram ? scram_step(s, &data, out, condition) : plain_step(s, &data, condition);
    if (data.data)
        OPENSSL_cleanse(data.data, data.len);
    vn_buf_free(&data);
    if (status != VN_SASL_CONTINUE)
        s->finished = true;
    return status;
}
