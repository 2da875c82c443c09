/*
 * issuer.c - what trusted issuers do (xeps/documents.md §6): issue a
 * credential to a holder of this host, from claims (the server signs with
 * the issuer's key it holds) or finished (the issuer signed it itself),
 * ask for a holder's key for that, and revoke what they issued.
 *
 * Only the issuers of issuers_file may do any of it, each only for its own
 * types and its own credentials; everything else is refused with the
 * condition the document names, before anything is stored.
 */
#include <stdlib.h>
#include <string.h>
#include <vestnik/i18n.h>

#include "mod_credentials.h"
#include "status_list.h"

#define DECOYS_MAX 3

/* The localpart of holder if it is an account of host (malloc'd). */
static char *local_holder(const char *host, const char *holder)
{
    vn_jid *jid = holder ? vn_jid_parse(holder) : NULL;
    char *user = NULL;
    if (jid && jid->local && !jid->resource && strcmp(jid->domain, host) == 0 &&
        vn_account_exists(host, jid->local))
        user = vn_strdup(jid->local);
    vn_jid_free(jid);
    return user;
}

static bool may_issue(const cred_issuer *is, const cred_type *t)
{
    for (size_t i = 0; i < is->n_types; i++)
        if (strcmp(is->types[i], t->name) == 0)
            return true;
    return false;
}

/* The claims of <issue/>, checked against the type; NULL after answering. */
static json_t *read_claims(const vn_event *ev, const vn_stanza *payload, const cred_type *t)
{
    json_t *claims = json_object();
    for (vn_stanza *c = vn_stanza_first_element(payload); c; c = vn_stanza_next_element(c)) {
        if (!vn_stanza_is(c, "claim", CRED_NS))
            continue;
        const char *name = vn_stanza_attr(c, "name");
        const char *value = vn_stanza_text(c);
        const cred_claim_def *def = cred_type_claim(t, name);
        if (!def || !cred_claim_valid(def, value) || json_object_get(claims, name)) {
            cred_iq_error(ev->stanza, "modify", "bad-request", "bad-claim",
                          N_("A claim is unknown for this type, repeated, or not a valid value"));
            json_decref(claims);
            return NULL;
        }
        json_object_set_new(claims, name,
                            def->kind == CRED_CLAIM_BOOL ? json_boolean(strcmp(value, "true") == 0)
                                                         : json_string(value));
    }
    for (const char *const *r = t->required; *r; r++) {
        if (!json_object_get(claims, *r)) {
            cred_iq_error(ev->stanza, "modify", "bad-request", "missing-claim",
                          N_("A claim this type requires is missing"));
            json_decref(claims);
            return NULL;
        }
    }
    const char *birthdate = json_string_value(json_object_get(claims, "birthdate"));
    if (birthdate)
        cred_add_age_predicates(claims, birthdate, vn_now_us() / 1000000);
    return claims;
}

/* Store a credential in the holder's wallet and tell everyone concerned. */
static void deliver(vn_event *ev, const char *host, const char *user, const cred_issuer *is,
                    const cred_type *t, const char *sdjwt, int64_t iat, int64_t exp, bool has_idx,
                    uint64_t idx)
{
    char *id = cred_new_id("c");
    json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "id", id, "type", t->name,
                          "vct", t->vct, "issuer", is->id, "issuer_name", is->name, "sdjwt", sdjwt,
                          "issued_at", (json_int_t)iat, "expires", (json_int_t)exp);
    if (has_idx)
        json_object_set_new(c, "status_idx", json_integer((json_int_t)idx));
    if (wallet_put(host, user, c) != 0) {
        cred_iq_error(ev->stanza, "wait", "internal-server-error", NULL, NULL);
        json_decref(c);
        free(id);
        return;
    }
    wallet_index_put(host, is->id, id, user);
    audit_log(host, user, "issued", ev->from->bare,
              json_pack("{s:s, s:s, s:s}", "id", id, "type", t->name, "issuer", is->name));
    const char *lang = cred_holder_lang(host, user);
    char *title = wallet_title(c, lang);
    char *text =
        vn_asprintf(vn_tr(lang, N_("You received a new document: %s. Write \"list\" to see your "
                                   "documents.")),
                    title);
    cred_tell(host, user, text);
    free(text);
    free(title);

    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *issued = vn_stanza_add_child(reply, "issued", CRED_NS);
    vn_stanza_set_attr(issued, "id", id);
    if (has_idx) {
        char idx_text[24];
        snprintf(idx_text, sizeof idx_text, "%llu", (unsigned long long)idx);
        vn_stanza_set_attr(issued, "status-index", idx_text);
    }
    vn_route_durable(reply);
    json_decref(c);
    free(id);
}

static void issue_from_claims(vn_event *ev, const char *host, const char *user,
                              const cred_issuer *is, const vn_stanza *payload)
{
    const cred_type *t = cred_type_find(vn_stanza_attr(payload, "type"));
    if (!t) {
        cred_iq_error(ev->stanza, "modify", "bad-request", "unknown-type",
                      N_("Unknown credential type"));
        return;
    }
    if (!may_issue(is, t) || is->self_signed) {
        cred_iq_error(ev->stanza, "auth", "forbidden", NULL,
                      N_("This issuer may not issue this type here"));
        return;
    }
    int64_t now = vn_now_us() / 1000000;
    int64_t exp = now + cred.limits.default_validity;
    const char *expires = vn_stanza_child_text(payload, "expires", CRED_NS);
    int64_t exp_us;
    if (expires && (!vn_datetime_parse(expires, &exp_us) || exp_us / 1000000 <= now)) {
        cred_iq_error(ev->stanza, "modify", "bad-request", NULL,
                      N_("The expiry is not a date in the future"));
        return;
    } else if (expires) {
        exp = exp_us / 1000000;
    }
    json_t *claims = read_claims(ev, payload, t);
    if (!claims)
        return;
    vn_cred_key *holder = wallet_holder_public(host, user);
    uint64_t idx = 0;
    char *uri = cred_status_uri(is);
    char *sdjwt = NULL;
    vn_sdjwt_issue_params p = {
        .issuer_key = is->key,
        .iss = is->iss,
        .vct = t->vct,
        .iat = now,
        .exp = exp,
        .holder_key = holder,
        .status_uri = uri,
        .claims = claims,
        .decoys_max = DECOYS_MAX,
    };
    if (!holder || cred_status_alloc(is, &idx) != 0) {
        cred_iq_error(ev->stanza, "wait", "internal-server-error", NULL, NULL);
    } else {
        p.status_idx = idx;
        int rc = vn_sdjwt_issue(&p, &sdjwt);
        if (rc != 0) {
            vn_log_warn("credentials: issuing for %s failed: %s", is->id, vn_cred_errname(rc));
            cred_iq_error(ev->stanza, "modify", "bad-request", "bad-claim", vn_cred_strerror(rc));
        } else {
            deliver(ev, host, user, is, t, sdjwt, now, exp, true, idx);
        }
    }
    free(sdjwt);
    free(uri);
    vn_cred_key_free(holder);
    json_decref(claims);
}

static const vn_cred_key *own_key(const char *iss, const char *kid, vn_cred_alg alg, void *ud)
{
    (void)kid;
    const cred_issuer *is = ud;
    return strcmp(iss, is->iss) == 0 && vn_cred_key_alg(is->key) == alg ? is->key : NULL;
}

/* A credential the issuer signed: its key, its type, our holder's key. */
static void issue_signed(vn_event *ev, const char *host, const char *user, const cred_issuer *is,
                         const char *sdjwt)
{
    vn_sdjwt_verify_params p = {.issuer_key = own_key, .issuer_ud = (void *)is};
    vn_sdjwt_verified r;
    int rc = vn_sdjwt_verify(sdjwt, strlen(sdjwt), &p, &r);
    const cred_type *t = rc == 0 ? cred_type_find(r.vct) : NULL;
    vn_cred_key *holder = wallet_holder_public(host, user);
    if (rc != 0) {
        cred_iq_error(ev->stanza, "modify", "not-acceptable", presentation_condition(rc),
                      vn_cred_strerror(rc));
    } else if (!t || !may_issue(is, t)) {
        cred_iq_error(ev->stanza, "auth", "forbidden", NULL,
                      N_("This issuer may not issue this type here"));
    } else if (!r.holder_key || !holder || !vn_cred_key_equal(r.holder_key, holder)) {
        cred_iq_error(ev->stanza, "modify", "not-acceptable", "wrong-holder",
                      N_("The credential is not bound to the holder's key"));
    } else {
        /* Stored without what a holder must not keep: a key-binding JWT. */
        vn_sdjwt *sd = NULL;
        if (vn_sdjwt_parse(sdjwt, strlen(sdjwt), &sd) == 0) {
            vn_buf clean;
            vn_buf_init(&clean);
            vn_buf_printf(&clean, "%s~", sd->jwt);
            for (size_t i = 0; i < sd->n_disclosures; i++)
                vn_buf_printf(&clean, "%s~", sd->disclosures[i].encoded);
            deliver(ev, host, user, is, t, clean.data, r.iat, r.exp, false, 0);
            vn_buf_free(&clean);
        }
        vn_sdjwt_free(sd);
    }
    vn_cred_key_free(holder);
    vn_sdjwt_verified_free(&r);
}

static void issue(vn_event *ev, const char *host, const cred_issuer *is, const vn_stanza *payload)
{
    char *user = local_holder(host, vn_stanza_attr(payload, "holder"));
    if (!user) {
        cred_iq_error(ev->stanza, "cancel", "item-not-found", NULL, N_("No such holder here"));
        return;
    }
    if (wallet_count(host, user) >= cred.limits.max_credentials) {
        cred_iq_error(ev->stanza, "wait", "resource-constraint", NULL,
                      N_("The holder's wallet is full"));
    } else {
        const vn_stanza *signed_cred = vn_stanza_child(payload, "credential", CRED_NS);
        if (signed_cred)
            issue_signed(ev, host, user, is, vn_stanza_text(signed_cred));
        else
            issue_from_claims(ev, host, user, is, payload);
    }
    free(user);
}

static char *status_note(unsigned value, const char *lang, const char *title)
{
    switch (value) {
    case VN_STATUS_INVALID:
        return vn_asprintf(vn_tr(lang, N_("Your document %s was revoked by its issuer.")), title);
    case VN_STATUS_SUSPENDED:
        return vn_asprintf(vn_tr(lang, N_("Your document %s was suspended by its issuer.")), title);
    default: return vn_asprintf(vn_tr(lang, N_("Your document %s is valid again.")), title);
    }
}

/* <revoke/>, <suspend/> or <reinstate/>: the credential's status list
 * entry (and, for credentials the issuer signed itself, the wallet's mark,
 * the one status the server keeps for them). Revocation is final. */
static void set_status(vn_event *ev, const char *host, const cred_issuer *is,
                       const vn_stanza *payload)
{
    const char *name = vn_stanza_name(payload);
    unsigned value = strcmp(name, "revoke") == 0    ? VN_STATUS_INVALID
                     : strcmp(name, "suspend") == 0 ? VN_STATUS_SUSPENDED
                                                    : VN_STATUS_VALID;
    const char *id = vn_stanza_attr(payload, "id");
    char *user = id ? wallet_holder_of(host, is->id, id) : NULL;
    json_t *c = user ? wallet_get(host, user, id) : NULL;
    if (!c) {
        cred_iq_error(ev->stanza, "cancel", "item-not-found", NULL,
                      N_("This issuer issued no such credential here"));
        free(user);
        return;
    }
    if (strcmp(wallet_status(c, 0), "revoked") == 0) {
        cred_iq_error(ev->stanza, "cancel", "not-allowed", NULL,
                      N_("The credential is revoked for good"));
        json_decref(c);
        free(user);
        return;
    }
    const json_t *idx = json_object_get(c, "status_idx");
    int rc = 0;
    if (json_is_integer(idx))
        rc = cred_status_set(is, (uint64_t)json_integer_value(idx), value);
    json_object_del(c, "suspended");
    if (value == VN_STATUS_INVALID)
        json_object_set_new(c, "revoked", json_true());
    else if (value == VN_STATUS_SUSPENDED)
        json_object_set_new(c, "suspended", json_true());
    if (rc != 0 || wallet_put(host, user, c) != 0) {
        cred_iq_error(ev->stanza, "wait", "internal-server-error", NULL, NULL);
    } else {
        static const char *const events[] = {"reinstated", "revoked", "suspended"};
        audit_log(host, user, events[value], ev->from->bare,
                  json_pack("{s:s, s:s}", "id", id, "type",
                            json_string_value(json_object_get(c, "type"))));
        const char *lang = cred_holder_lang(host, user);
        char *title = wallet_title(c, lang);
        char *text = status_note(value, lang, title);
        cred_tell(host, user, text);
        free(text);
        free(title);
        vn_route_durable(vn_stanza_iq_result(ev->stanza));
    }
    json_decref(c);
    free(user);
}

static void holder_key(vn_event *ev, const char *host, const vn_stanza *payload)
{
    const char *holder = vn_stanza_attr(payload, "holder");
    char *user = local_holder(host, holder);
    vn_cred_key *key = user ? wallet_holder_public(host, user) : NULL;
    if (!key) {
        cred_iq_error(ev->stanza, "cancel", "item-not-found", NULL, N_("No such holder here"));
    } else {
        json_t *jwk = vn_cred_key_to_jwk(key, false);
        char *text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
        vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
        vn_stanza *hk = vn_stanza_add_child(reply, "holder-key", CRED_NS);
        vn_stanza_set_attr(hk, "holder", holder);
        vn_stanza_add_text_child(hk, "jwk", CRED_NS, text);
        vn_route(reply);
        free(text);
        json_decref(jwk);
    }
    vn_cred_key_free(key);
    free(user);
}

void cred_issuer_iq(vn_event *ev, const char *host, const vn_stanza *payload)
{
    const cred_issuer *is = cred_issuer_by_jid(ev->from);
    const char *name = vn_stanza_name(payload);
    bool set = strcmp(vn_stanza_attr(ev->stanza, "type"), "set") == 0;
    if (!is) {
        cred_iq_error(ev->stanza, "auth", "forbidden", NULL, N_("Not a trusted issuer"));
    } else if (strcmp(name, "holder-key") == 0) {
        holder_key(ev, host, payload);
    } else if (!set) {
        cred_iq_error(ev->stanza, "modify", "bad-request", NULL, NULL);
    } else if (strcmp(name, "issue") == 0) {
        issue(ev, host, is, payload);
    } else {
        set_status(ev, host, is, payload);
    }
}
