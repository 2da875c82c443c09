/*
 * wallet.c - each account's credentials and holder key, in the store, and
 * what the account's own client asks of them (xeps/documents.md §10).
 *
 * A credential is one JSON document in the account's "credentials" store,
 * so deleting the account deletes its wallet. The holder key the server
 * keeps is wrapped (cred_keys.h) under the module's secret with the bare
 * JID as associated data; a client that keeps its own key gives its public
 * JWK instead, and new credentials are bound to that one. A host-wide index
 * maps (issuer, credential id) to the holder, for revocation.
 */
#include <stdlib.h>
#include <string.h>
#include <vestnik/i18n.h>

#include "mod_credentials.h"

#define WALLET_STORE "credentials"
#define KEYS_STORE "credentials_keys"
#define HOLDER_KEY "holder"
#define INDEX_STORE "credentials_index"

json_t *wallet_get(const char *host, const char *user, const char *id)
{
    vn_buf v;
    vn_buf_init(&v);
    json_t *c = NULL;
    if (id && vn_store_get(vn_server_store(), host, user, WALLET_STORE, id, &v) == VN_STORE_OK)
        c = json_loadb(v.data, v.len, 0, NULL);
    vn_buf_free(&v);
    return c;
}

int wallet_put(const char *host, const char *user, const json_t *c)
{
    char *text = json_dumps(c, JSON_COMPACT);
    int rc = vn_store_put(vn_server_store(), host, user, WALLET_STORE,
                          json_string_value(json_object_get(c, "id")), text, strlen(text));
    free(text);
    return rc == VN_STORE_OK ? 0 : -1;
}

int wallet_delete(const char *host, const char *user, const char *id)
{
    return vn_store_delete(vn_server_store(), host, user, WALLET_STORE, id) == VN_STORE_OK ? 0 : -1;
}

static bool collect(const char *key, const void *value, size_t len, void *ud)
{
    (void)key;
    json_t *c = json_loadb(value, len, 0, NULL);
    if (c)
        json_array_append_new(ud, c);
    return true;
}

static int by_issuance(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    json_int_t tx = json_integer_value(json_object_get(x, "issued_at"));
    json_int_t ty = json_integer_value(json_object_get(y, "issued_at"));
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x, "id")),
                  json_string_value(json_object_get(y, "id")));
}

json_t *cred_store_list(const char *host, const char *user, const char *store,
                        int (*cmp)(const void *, const void *))
{
    json_t *all = json_array();
    vn_store_foreach(vn_server_store(), host, user, store, collect, all);
    size_t n = json_array_size(all);
    json_t **items = vn_alloc((n ? n : 1) * sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(all, i));
    qsort(items, n, sizeof *items, cmp);
    json_t *sorted = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(sorted, items[i]);
    free(items);
    json_decref(all);
    return sorted;
}

json_t *wallet_list(const char *host, const char *user)
{
    return cred_store_list(host, user, WALLET_STORE, by_issuance);
}

size_t wallet_count(const char *host, const char *user)
{
    json_t *all = wallet_list(host, user);
    size_t n = json_array_size(all);
    json_decref(all);
    return n;
}

json_t *wallet_nth(const char *host, const char *user, size_t n)
{
    json_t *all = wallet_list(host, user);
    json_t *c = n >= 1 ? json_incref(json_array_get(all, n - 1)) : NULL;
    json_decref(all);
    return c;
}

const char *wallet_status(const json_t *c, int64_t now)
{
    const cred_issuer *is = cred_issuer_by_id(json_string_value(json_object_get(c, "issuer")));
    const json_t *idx = json_object_get(c, "status_idx");
    if (json_is_true(json_object_get(c, "revoked")))
        return "revoked";
    if (json_is_true(json_object_get(c, "suspended")))
        return "suspended";
    if (is && json_is_integer(idx)) {
        int st = cred_status_get(is, (uint64_t)json_integer_value(idx));
        if (st == 1)
            return "revoked";
        if (st == 2)
            return "suspended";
    }
    json_int_t exp = json_integer_value(json_object_get(c, "expires"));
    if (exp && exp <= now)
        return "expired";
    return "valid";
}

json_t *wallet_claims(const json_t *c, json_t **paths)
{
    const char *s = json_string_value(json_object_get(c, "sdjwt"));
    vn_sdjwt *sd = NULL;
    json_t *claims = NULL;
    if (s && vn_sdjwt_parse(s, strlen(s), &sd) == 0)
        claims = vn_sdjwt_claims(sd, paths);
    vn_sdjwt_free(sd);
    if (!claims) {
        claims = json_object();
        if (paths)
            *paths = json_array();
    }
    return claims;
}

char *wallet_title(const json_t *c, const char *lang)
{
    const cred_type *t = cred_type_find(json_string_value(json_object_get(c, "type")));
    const char *issuer = json_string_value(json_object_get(c, "issuer_name"));
    return vn_asprintf("%s, %s", t ? vn_tr(lang, t->label) : "?", issuer ? issuer : "?");
}

/* ---- holder keys ---- */

static json_t *read_keys(const char *host, const char *user)
{
    vn_buf v;
    vn_buf_init(&v);
    json_t *doc = NULL;
    if (vn_store_get(vn_server_store(), host, user, KEYS_STORE, HOLDER_KEY, &v) == VN_STORE_OK)
        doc = json_loadb(v.data, v.len, 0, NULL);
    vn_buf_free(&v);
    return doc ? doc : json_object();
}

static int write_keys(const char *host, const char *user, const json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    int rc =
        vn_store_put(vn_server_store(), host, user, KEYS_STORE, HOLDER_KEY, text, strlen(text));
    free(text);
    return rc == VN_STORE_OK ? 0 : -1;
}

vn_cred_key *wallet_holder_key(const char *host, const char *user, bool create,
                               vn_cred_key **client_key)
{
    char *owner = vn_asprintf("%s@%s", user, host);
    json_t *doc = read_keys(host, user);
    vn_cred_key *key = NULL;
    if (client_key) {
        *client_key = NULL;
        const json_t *jwk = json_object_get(doc, "jwk");
        if (jwk && vn_cred_key_from_jwk(jwk, client_key) != 0)
            *client_key = NULL;
    }
    const char *wrapped = json_string_value(json_object_get(doc, "wrapped"));
    if (wrapped) {
        int rc = vn_cred_key_unwrap(wrapped, cred.secret, sizeof cred.secret, owner, &key);
        if (rc != 0) {
            vn_log_error("credentials: the holder key of %s does not unwrap: %s", owner,
                         vn_cred_errname(rc));
            key = NULL;
        }
    } else if (create) {
        char *w = NULL;
        if (vn_cred_key_generate(VN_CRED_ALG_ES256, &key) != 0 ||
            vn_cred_key_wrap(key, cred.secret, sizeof cred.secret, owner, &w) != 0) {
            vn_cred_key_free(key);
            key = NULL;
        } else {
            json_object_set_new(doc, "wrapped", json_string(w));
            if (write_keys(host, user, doc) != 0) {
                vn_cred_key_free(key);
                key = NULL;
            }
        }
        free(w);
    }
    json_decref(doc);
    free(owner);
    return key;
}

vn_cred_key *wallet_holder_public(const char *host, const char *user)
{
    vn_cred_key *client = NULL;
    vn_cred_key *key = wallet_holder_key(host, user, false, &client);
    if (client) {
        vn_cred_key_free(key);
        return client;
    }
    if (!key)
        key = wallet_holder_key(host, user, true, NULL);
    vn_cred_key *pub = key ? vn_cred_key_public(key) : NULL;
    vn_cred_key_free(key);
    return pub;
}

/* ---- the issuers' index ---- */

void wallet_index_put(const char *host, const char *issuer, const char *id, const char *user)
{
    char *key = vn_asprintf("%s/%s", issuer, id);
    vn_store_put(vn_server_store(), host, "", INDEX_STORE, key, user, strlen(user));
    free(key);
}

char *wallet_holder_of(const char *host, const char *issuer, const char *id)
{
    if (strlen(id) > 64)
        return NULL;
    char *key = vn_asprintf("%s/%s", issuer, id);
    vn_buf v;
    vn_buf_init(&v);
    char *user = NULL;
    if (vn_store_get(vn_server_store(), host, "", INDEX_STORE, key, &v) == VN_STORE_OK)
        user = vn_buf_steal(&v, NULL);
    vn_buf_free(&v);
    free(key);
    return user;
}

/* ---- the holder's own client ---- */

static void list_credentials(vn_event *ev, const char *host)
{
    json_t *all = wallet_list(host, ev->from->local);
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *list = vn_stanza_add_child(reply, "credentials", CRED_NS);
    int64_t now = vn_now_us() / 1000000;
    size_t i;
    const json_t *c;
    json_array_foreach(all, i, c)
    {
        vn_stanza *e = vn_stanza_add_text_child(list, "credential", CRED_NS,
                                                json_string_value(json_object_get(c, "sdjwt")));
        vn_stanza_set_attr(e, "id", json_string_value(json_object_get(c, "id")));
        vn_stanza_set_attr(e, "type", json_string_value(json_object_get(c, "vct")));
        vn_stanza_set_attr(e, "issuer", json_string_value(json_object_get(c, "issuer_name")));
        vn_stanza_set_attr(e, "status", wallet_status(c, now));
    }
    json_decref(all);
    vn_route(reply);
}

static void set_client_key(vn_event *ev, const char *host, const vn_stanza *payload)
{
    const char *text = vn_stanza_child_text(payload, "jwk", CRED_NS);
    json_t *jwk = text ? json_loads(text, 0, NULL) : NULL;
    vn_cred_key *key = NULL;
    if (!jwk || json_object_get(jwk, "d") || vn_cred_key_from_jwk(jwk, &key) != 0) {
        cred_iq_error(ev->stanza, "modify", "bad-request", "malformed",
                      N_("Not a public JWK of a P-256 or Ed25519 key"));
    } else {
        json_t *doc = read_keys(host, ev->from->local);
        json_object_set_new(doc, "jwk", vn_cred_key_to_jwk(key, false));
        if (write_keys(host, ev->from->local, doc) != 0)
            cred_iq_error(ev->stanza, "wait", "internal-server-error", NULL, NULL);
        else
            vn_route_durable(vn_stanza_iq_result(ev->stanza));
        json_decref(doc);
    }
    vn_cred_key_free(key);
    json_decref(jwk);
}

void wallet_iq(vn_event *ev, const char *host, const vn_stanza *payload)
{
    bool own = ev->from->local && strcmp(ev->from->domain, host) == 0;
    bool get = strcmp(vn_stanza_attr(ev->stanza, "type"), "get") == 0;
    const char *name = vn_stanza_name(payload);
    if (!own && (strcmp(name, "credentials") == 0 || strcmp(name, "holder-key") == 0)) {
        cred_iq_error(ev->stanza, "auth", "forbidden", NULL,
                      N_("Only the accounts of this host have a wallet here"));
    } else if (get && strcmp(name, "credentials") == 0) {
        cred_holder_lang_set(host, ev->from->local, vn_stanza_attr(ev->stanza, "xml:lang"));
        list_credentials(ev, host);
    } else if (!get && strcmp(name, "holder-key") == 0) {
        set_client_key(ev, host, payload);
    } else {
        cred_iq_error(ev->stanza, "cancel", "feature-not-implemented", NULL, NULL);
    }
}
