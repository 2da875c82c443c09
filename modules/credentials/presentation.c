/*
 * presentation.c - a verifier asks a holder for claims, the holder
 * consents claim by claim, the wallet answers (xeps/documents.md §7).
 *
 * A request is checked whole before anything happens (types, claims,
 * nonce, purpose, limits), then waits in the holder's pending store while
 * the holder is told who asks, for what and why. The verifier learns
 * nothing until the holder answers: a <pending/> id now, and later either
 * a presentation disclosing exactly the approved claims, bound to it (aud)
 * and to its nonce by a key-binding JWT, or <declined/>, which also covers
 * "no such holder" and "no such document".
 */
#include <stdlib.h>
#include <string.h>
#include <vestnik/i18n.h>

#include "mod_credentials.h"

#define NONCE_MIN 16
#define NONCE_MAX 256

static bool nonce_ok(const char *nonce)
{
    size_t n = nonce ? strlen(nonce) : 0;
    if (n < NONCE_MIN || n > NONCE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (nonce[i] < 0x21 || nonce[i] > 0x7e)
            return false;
    return true;
}

/* The wanted credentials of <request/> as JSON, or NULL after answering. */
static json_t *read_wants(const vn_event *ev, const vn_stanza *payload)
{
    json_t *wants = json_array();
    size_t total = 0;
    for (vn_stanza *c = vn_stanza_first_element(payload); c; c = vn_stanza_next_element(c)) {
        if (!vn_stanza_is(c, "credential", CRED_NS))
            continue;
        const cred_type *t = cred_type_find(vn_stanza_attr(c, "type"));
        if (!t) {
            cred_iq_error(ev->stanza, "modify", "bad-request", "unknown-type",
                          N_("Unknown credential type"));
            json_decref(wants);
            return NULL;
        }
        json_t *claims = json_array();
        for (vn_stanza *cl = vn_stanza_first_element(c); cl; cl = vn_stanza_next_element(cl)) {
            if (!vn_stanza_is(cl, "claim", CRED_NS))
                continue;
            const char *name = vn_stanza_attr(cl, "name");
            if (!cred_type_claim(t, name) || ++total > cred.limits.max_claims) {
                cred_iq_error(ev->stanza, "modify", "bad-request", "bad-claim",
                              N_("A claim is unknown for this type, or there are too many"));
                json_decref(claims);
                json_decref(wants);
                return NULL;
            }
            json_array_append_new(claims, json_string(name));
        }
        if (json_array_size(claims) == 0) {
            json_decref(claims);
            continue;
        }
        json_array_append_new(wants, json_pack("{s:s, s:o}", "type", t->name, "claims", claims));
    }
    if (json_array_size(wants) == 0) {
        cred_iq_error(ev->stanza, "modify", "bad-request", "malformed",
                      N_("The request names no credential and claim"));
        json_decref(wants);
        return NULL;
    }
    return wants;
}

static bool json_array_has(const json_t *a, const char *s)
{
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

json_t *presentation_match(const char *host, const char *user, const json_t *item, json_t **paths)
{
    json_t *all = wallet_list(host, user);
    int64_t now = vn_now_us() / 1000000;
    json_t *best = NULL;
    *paths = NULL;
    size_t i;
    const json_t *want;
    json_array_foreach(json_object_get(item, "wants"), i, want)
    {
        const char *type = json_string_value(json_object_get(want, "type"));
        size_t j;
        json_t *c;
        json_array_foreach(all, j, c)
        {
            if (strcmp(json_string_value(json_object_get(c, "type")), type) != 0 ||
                strcmp(wallet_status(c, now), "valid") != 0)
                continue;
            json_t *have = NULL;
            json_decref(wallet_claims(c, &have));
            json_t *can = json_array();
            size_t k;
            const json_t *claim;
            json_array_foreach(json_object_get(want, "claims"), k, claim)
            {
                if (json_array_has(have, json_string_value(claim)))
                    json_array_append(can, (json_t *)claim);
            }
            json_decref(have);
            if (json_array_size(can) > 0 &&
                (!*paths || json_array_size(can) > json_array_size(*paths))) {
                json_decref(best);
                json_decref(*paths);
                best = json_incref(c);
                *paths = can;
            } else {
                json_decref(can);
            }
        }
        if (best)
            break;
    }
    json_decref(all);
    return best;
}

char *presentation_describe(const char *host, const char *user, const json_t *item,
                            const char *lang)
{
    vn_buf out;
    vn_buf_init(&out);
    const char *verifier = json_string_value(json_object_get(item, "verifier"));
    vn_buf_printf(&out, vn_tr(lang, N_("%s asks for your documents.")), verifier);
    vn_buf_append_str(&out, "\n");
    vn_buf_printf(&out, vn_tr(lang, N_("Purpose: %s")),
                  json_string_value(json_object_get(item, "purpose")));
    vn_buf_append_str(&out, "\n");
    json_t *paths = NULL;
    json_t *c = presentation_match(host, user, item, &paths);
    if (!c) {
        vn_buf_append_str(&out, vn_tr(lang, N_("You have no valid document with what is asked.")));
    } else {
        char *title = wallet_title(c, lang);
        vn_buf_printf(&out, vn_tr(lang, N_("From your %s:")), title);
        free(title);
        size_t i;
        const json_t *p;
        json_array_foreach(paths, i, p)
        {
            vn_buf_printf(&out, "\n  %zu. %s", i + 1,
                          vn_tr(lang, cred_claim_label(json_string_value(p))));
        }
        vn_buf_append_str(&out, "\n");
        vn_buf_append_str(&out, vn_tr(lang, N_("Reply \"yes\" to share all of it, \"no\" to "
                                               "refuse, or the numbers to share only those "
                                               "(e.g. \"1\"). Nothing is shared until you do.")));
    }
    json_decref(c);
    json_decref(paths);
    char *text = vn_buf_steal(&out, NULL);
    return text ? text : vn_strdup("");
}

static void send_declined(const char *host, const json_t *item, const char *holder)
{
    vn_stanza *d = vn_stanza_new("declined", CRED_NS);
    vn_stanza_set_attr(d, "request", json_string_value(json_object_get(item, "id")));
    vn_stanza_set_attr(d, "holder", holder);
    cred_send_payload(host, json_string_value(json_object_get(item, "from")), d, NULL);
}

void presentation_answer(const char *host, const char *user, const json_t *item,
                         const char *credential, const char *const *paths, size_t n_paths)
{
    const char *id = json_string_value(json_object_get(item, "id"));
    const char *verifier = json_string_value(json_object_get(item, "verifier"));
    const char *lang = cred_holder_lang(host, user);
    char *holder = vn_asprintf("%s@%s", user, host);
    json_t *c = credential && n_paths ? wallet_get(host, user, credential) : NULL;
    char *presentation = NULL;
    json_t *shown = json_array();
    if (c && strcmp(wallet_status(c, vn_now_us() / 1000000), "valid") == 0) {
        /* Never more than was asked, whatever the approval names. */
        const json_t *want = NULL;
        size_t i;
        const json_t *w;
        json_array_foreach(json_object_get(item, "wants"), i, w)
        {
            if (strcmp(json_string_value(json_object_get(w, "type")),
                       json_string_value(json_object_get(c, "type"))) == 0)
                want = w;
        }
        const char **ok = vn_alloc(n_paths * sizeof *ok);
        size_t n_ok = 0;
        for (size_t k = 0; want && k < n_paths; k++)
            if (json_array_has(json_object_get(want, "claims"), paths[k]) &&
                !json_array_has(shown, paths[k])) {
                ok[n_ok++] = paths[k];
                json_array_append_new(shown, json_string(paths[k]));
            }
        vn_cred_key *key = n_ok ? wallet_holder_key(host, user, false, NULL) : NULL;
        char *aud = vn_asprintf("xmpp:%s", verifier);
        const char *sd = json_string_value(json_object_get(c, "sdjwt"));
        vn_sdjwt_present_params p = {
            .paths = ok,
            .n_paths = n_ok,
            .holder_key = key,
            .aud = aud,
            .nonce = json_string_value(json_object_get(item, "nonce")),
            .iat = vn_now_us() / 1000000,
        };
        int rc = key ? vn_sdjwt_present(sd, strlen(sd), &p, &presentation, NULL) : VN_CRED_ENOCNF;
        if (rc != 0 && n_ok) {
            vn_log_warn("credentials: presenting %s of %s failed: %s", credential, holder,
                        vn_cred_errname(rc));
            cred_tell(host, user,
                      vn_tr(lang, N_("This document is bound to a key your device keeps: "
                                     "present it from that device. Nothing was shared.")));
        }
        vn_cred_key_free(key);
        free(aud);
        free(ok);
    }
    if (presentation) {
        vn_stanza *pr = vn_stanza_new("presentation", CRED_NS);
        vn_stanza_set_attr(pr, "request", id);
        vn_stanza_set_attr(pr, "holder", holder);
        vn_stanza_set_attr(pr, "nonce", json_string_value(json_object_get(item, "nonce")));
        vn_stanza_set_attr(pr, "format", CRED_FORMAT);
        vn_stanza_add_text(pr, presentation, strlen(presentation));
        cred_send_payload(host, json_string_value(json_object_get(item, "from")), pr, NULL);
        audit_log(host, user, "disclosed", verifier,
                  json_pack("{s:s, s:s, s:O, s:s}", "request", id, "type",
                            json_string_value(json_object_get(c, "type")), "claims", shown,
                            "purpose", json_string_value(json_object_get(item, "purpose"))));
        vn_buf text;
        vn_buf_init(&text);
        vn_buf_printf(&text, vn_tr(lang, N_("Shared with %s: ")), verifier);
        size_t i;
        const json_t *s;
        json_array_foreach(shown, i, s)
        {
            vn_buf_printf(&text, "%s%s", i ? ", " : "",
                          vn_tr(lang, cred_claim_label(json_string_value(s))));
        }
        cred_tell(host, user, text.data);
        vn_buf_free(&text);
    } else {
        send_declined(host, item, holder);
        audit_log(host, user, "declined", verifier, json_pack("{s:s}", "request", id));
    }
    pending_delete(host, user, id);
    free(presentation);
    json_decref(shown);
    json_decref(c);
    free(holder);
}

static void reply_pending(const vn_event *ev, const char *id)
{
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza_set_attr(vn_stanza_add_child(reply, "pending", CRED_NS), "id", id);
    vn_route_durable(reply);
}

void presentation_request_iq(vn_event *ev, const char *host, const vn_stanza *payload)
{
    vn_jid *holder = vn_jid_parse(vn_stanza_attr(payload, "holder"));
    const char *nonce = vn_stanza_attr(payload, "nonce");
    const char *purpose = vn_stanza_child_text(payload, "purpose", CRED_NS);
    json_t *wants = NULL;
    if (!holder || !holder->local || holder->resource || strcmp(holder->domain, host) != 0) {
        cred_iq_error(ev->stanza, "cancel", "item-not-found", NULL,
                      N_("The holder has no wallet here"));
    } else if (!nonce_ok(nonce)) {
        cred_iq_error(ev->stanza, "modify", "bad-request", "bad-nonce",
                      N_("The nonce must be 16 to 256 printable ASCII characters"));
    } else if (!purpose || !*purpose || strlen(purpose) > cred.limits.max_purpose) {
        cred_iq_error(ev->stanza, "modify", "bad-request", "bad-purpose",
                      N_("Say why you ask, briefly"));
    } else if ((wants = read_wants(ev, payload))) {
        char *id = cred_new_id("q");
        json_t *item =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:I, s:I}", "id", id, "kind", "present",
                      "from", ev->from->full, "verifier", ev->from->bare, "nonce", nonce, "purpose",
                      purpose, "wants", wants, "created_us", (json_int_t)vn_now_us(), "created",
                      (json_int_t)(vn_now_us() / 1000000));
        const char *user = holder->local;
        json_t *pending = NULL;
        if (!vn_account_exists(host, user)) {
            reply_pending(ev, id);
            send_declined(host, item, holder->bare);
        } else if (json_array_size(pending = pending_list(host, user)) >= cred.limits.max_pending ||
                   pending_count_from(pending, ev->from->bare) >=
                       cred.limits.max_pending_per_asker) {
            /* The holder's queue is not the first asker's to fill. */
            cred_iq_error(ev->stanza, "wait", "resource-constraint", NULL,
                          N_("The holder has too many requests waiting"));
        } else if (pending_put(host, user, item) != 0) {
            cred_iq_error(ev->stanza, "wait", "internal-server-error", NULL, NULL);
        } else {
            json_t *names = json_array();
            size_t i;
            const json_t *w;
            json_array_foreach(wants, i, w)
            {
                size_t j;
                const json_t *cl;
                json_array_foreach(json_object_get(w, "claims"), j, cl)
                {
                    if (!json_array_has(names, json_string_value(cl)))
                        json_array_append(names, (json_t *)cl);
                }
            }
            audit_log(
                host, user, "requested", ev->from->bare,
                json_pack("{s:s, s:o, s:s}", "request", id, "claims", names, "purpose", purpose));
            reply_pending(ev, id);
            /* The request itself rides along, for a client that keeps its
             * own key and answers the verifier by itself (§10). */
            const char *lang = cred_holder_lang(host, user);
            char *text = presentation_describe(host, user, item, lang);
            vn_stanza *copy = vn_stanza_copy(payload);
            vn_stanza_set_attr(copy, "id", id);
            vn_stanza_set_attr(copy, "from", ev->from->full);
            cred_send_payload(host, holder->bare, copy, text);
            free(text);
            json_t *paths = NULL;
            json_t *c = presentation_match(host, user, item, &paths);
            if (!c)
                presentation_answer(host, user, item, NULL, NULL, 0);
            json_decref(c);
            json_decref(paths);
        }
        json_decref(pending);
        json_decref(item);
        free(id);
    }
    json_decref(wants);
    vn_jid_free(holder);
}
