/*
 * wallet_adhoc.c - the wallet as ad-hoc commands (XEP-0050) on each host's
 * JID, for clients that render them (Gajim, Converse.js, Cheogram): "My
 * documents", "Show", "Delete", "History", "Who saw what" and "Show in
 * person (QR)". The requests and signatures waiting for an answer have
 * their commands in presentation_adhoc.c and consent_adhoc.c; chat.c does
 * all of this for clients that render none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vestnik/form.h>
#include <vestnik/i18n.h>

#include "mod_credentials.h"

#define NODE_LIST CRED_NODE_PREFIX "list"
#define NODE_SHOW CRED_NODE_PREFIX "show"
#define NODE_DELETE CRED_NODE_PREFIX "delete"
#define NODE_HISTORY CRED_NODE_PREFIX "history"
#define NODE_WHO CRED_NODE_PREFIX "who"
#define NODE_QR CRED_NODE_PREFIX "qr"
#define HISTORY_LINES 100

const char *wallet_status_label(const char *status)
{
    if (strcmp(status, "revoked") == 0)
        return N_("revoked");
    if (strcmp(status, "suspended") == 0)
        return N_("suspended");
    if (strcmp(status, "expired") == 0)
        return N_("expired");
    return N_("valid");
}

/* A field whose label is already in the reader's language. */
static vn_stanza *text_field(vn_stanza *form, const char *lang, const char *var, const char *label,
                             const char *value)
{
    vn_stanza *f = vn_form_add_field(form, lang, var, "text-single", NULL, value);
    vn_stanza_set_attr(f, "label", label);
    return f;
}

static vn_stanza *choose_credential(const char *lang, const char *title, const json_t *all)
{
    vn_stanza *form = vn_form_new("form", lang, title);
    vn_stanza *f = vn_form_add_field(form, lang, "credential", "list-single", N_("Document"), NULL);
    vn_stanza_add_child(f, "required", VN_NS_DATA);
    int64_t now = vn_now_us() / 1000000;
    size_t i;
    const json_t *c;
    json_array_foreach(all, i, c)
    {
        char *t = wallet_title(c, lang);
        char *label = vn_asprintf("%zu. %s (%s)", i + 1, t,
                                  vn_tr(lang, wallet_status_label(wallet_status(c, now))));
        vn_form_add_option(f, lang, label, json_string_value(json_object_get(c, "id")), false);
        free(label);
        free(t);
    }
    return form;
}

static void list_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    json_t *all = wallet_list(req->host, req->from->local);
    if (json_array_size(all) == 0) {
        reply->note = N_("You have no documents yet.");
    } else {
        vn_stanza *form = vn_form_new("result", req->lang, N_("My documents"));
        int64_t now = vn_now_us() / 1000000;
        size_t i;
        const json_t *c;
        json_array_foreach(all, i, c)
        {
            char var[32], label[24];
            snprintf(var, sizeof var, "document%zu", i + 1);
            snprintf(label, sizeof label, "%zu", i + 1);
            char *t = wallet_title(c, req->lang);
            char *value = vn_asprintf("%s (%s)", t,
                                      vn_tr(req->lang, wallet_status_label(wallet_status(c, now))));
            text_field(form, req->lang, var, label, value);
            free(value);
            free(t);
        }
        reply->result = form;
    }
    json_decref(all);
}

/* The credential the submitted form names, if it is the person's. */
static json_t *chosen(const vn_adhoc_request *req)
{
    return wallet_get(req->host, req->from->local, vn_form_value(req->form, "credential"));
}

vn_stanza *wallet_show_form(const json_t *c, const char *lang)
{
    vn_stanza *form = vn_form_new("result", lang, N_("Document"));
    char *t = wallet_title(c, lang);
    vn_form_add_field(form, lang, "document", "text-single", N_("Document"), t);
    free(t);
    vn_form_add_field(form, lang, "status", "text-single", N_("Status"),
                      vn_tr(lang, wallet_status_label(wallet_status(c, vn_now_us() / 1000000))));
    char when[VN_DATETIME_SIZE];
    vn_datetime_format(json_integer_value(json_object_get(c, "issued_at")) * 1000000, when);
    vn_form_add_field(form, lang, "issued", "text-single", N_("Issued"), when);
    json_int_t exp = json_integer_value(json_object_get(c, "expires"));
    if (exp) {
        vn_datetime_format(exp * 1000000, when);
        vn_form_add_field(form, lang, "expires", "text-single", N_("Valid until"), when);
    }
    json_t *paths = NULL;
    json_t *claims = wallet_claims(c, &paths);
    size_t i;
    const json_t *p;
    json_array_foreach(paths, i, p)
    {
        const char *name = json_string_value(p);
        char *value = presentation_value_text(json_object_get(claims, name));
        char *var = vn_asprintf("claim:%s", name);
        vn_form_add_field(form, lang, var, "text-single", cred_claim_label(name), value);
        free(var);
        free(value);
    }
    json_decref(paths);
    json_decref(claims);
    return form;
}

static void show_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    if (!req->form) {
        json_t *all = wallet_list(req->host, req->from->local);
        if (json_array_size(all) == 0)
            reply->note = N_("You have no documents yet.");
        else
            reply->form = choose_credential(req->lang, N_("Show a document"), all);
        json_decref(all);
        return;
    }
    json_t *c = chosen(req);
    if (!c) {
        reply->note = N_("No such document");
        reply->note_type = VN_ADHOC_ERROR;
        return;
    }
    reply->result = wallet_show_form(c, req->lang);
    json_decref(c);
}

void wallet_remove(const char *host, const char *user, const json_t *c)
{
    const char *id = json_string_value(json_object_get(c, "id"));
    if (wallet_delete(host, user, id) == 0)
        audit_log(host, user, "deleted", json_string_value(json_object_get(c, "issuer_name")),
                  json_pack("{s:s, s:s}", "id", id, "type",
                            json_string_value(json_object_get(c, "type"))));
}

static void delete_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    if (!req->form) {
        json_t *all = wallet_list(req->host, req->from->local);
        if (json_array_size(all) == 0) {
            reply->note = N_("You have no documents yet.");
        } else {
            reply->form = choose_credential(req->lang, N_("Delete a document"), all);
            vn_form_add_field(reply->form, req->lang, "confirm", "boolean",
                              N_("Yes, delete it from my wallet"), "0");
        }
        json_decref(all);
        return;
    }
    json_t *c = chosen(req);
    const char *confirm = vn_form_value(req->form, "confirm");
    if (!c) {
        reply->note = N_("No such document");
        reply->note_type = VN_ADHOC_ERROR;
    } else if (!confirm || (strcmp(confirm, "1") != 0 && strcmp(confirm, "true") != 0)) {
        reply->note = N_("Nothing was deleted.");
    } else {
        wallet_remove(req->host, req->from->local, c);
        reply->note = N_("The document was deleted.");
    }
    json_decref(c);
}

static void log_result(const vn_adhoc_request *req, vn_adhoc_reply *reply, bool who_saw)
{
    char *text = audit_text(req->host, req->from->local, who_saw, HISTORY_LINES, req->lang);
    if (!*text) {
        reply->note = who_saw ? N_("Nobody has seen anything of your documents.")
                              : N_("Nothing happened with your documents yet.");
        free(text);
        return;
    }
    vn_stanza *form =
        vn_form_new("result", req->lang, who_saw ? N_("Who saw what") : N_("History"));
    vn_stanza *f = vn_form_add_field(form, req->lang, "log", "text-multi", NULL, NULL);
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        vn_stanza_add_text_child(f, "value", VN_NS_DATA, line);
    }
    free(text);
    reply->result = form;
}

static void history_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    log_result(req, reply, false);
}

static void who_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    log_result(req, reply, true);
}

/* Send the holder the QR code of a presentation: 0 or an error msgid. */
const char *wallet_send_qr(const char *host, const char *user, const char *to, const json_t *c,
                           const char *const *paths, size_t n, const char *lang, char **url_out,
                           char **link_out)
{
    int err = 0;
    char *link = NULL;
    char *url = presentation_qr(host, user, c, paths, n, &link, &err);
    if (!url)
        return vn_cred_strerror(err);
    if (link_out)
        *link_out = link;
    else
        free(link);
    vn_stanza *oob = vn_stanza_new("x", "jabber:x:oob");
    vn_stanza_add_text_child(oob, "url", "jabber:x:oob", url);
    char *body = vn_asprintf("%s\n%s", vn_tr(lang, N_("Show this QR code to the verifier:")), url);
    cred_send_payload(host, to, oob, body);
    free(body);
    if (url_out)
        *url_out = url;
    else
        free(url);
    return NULL;
}

static void qr_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    const char *user = req->from->local;
    if (!req->form) {
        json_t *all = wallet_list(req->host, user);
        if (json_array_size(all) == 0) {
            reply->note = N_("You have no documents yet.");
            json_decref(all);
            return;
        }
        vn_stanza *form = choose_credential(req->lang, N_("Show in person (QR)"), all);
        vn_stanza *f =
            vn_form_add_field(form, req->lang, "claims", "list-multi", N_("What to show"), NULL);
        json_t *offered = json_array();
        size_t i;
        const json_t *c;
        json_array_foreach(all, i, c)
        {
            json_t *paths = NULL;
            json_decref(wallet_claims(c, &paths));
            size_t j;
            const json_t *p;
            json_array_foreach(paths, j, p)
            {
                const char *name = json_string_value(p);
                bool seen = false;
                size_t k;
                const json_t *o;
                json_array_foreach(offered, k, o)
                {
                    seen = seen || strcmp(json_string_value(o), name) == 0;
                }
                if (!seen) {
                    json_array_append_new(offered, json_string(name));
                    vn_form_add_option(f, req->lang, cred_claim_label(name), name, true);
                }
            }
            json_decref(paths);
        }
        json_decref(offered);
        json_decref(all);
        reply->form = form;
        return;
    }
    json_t *c = chosen(req);
    if (!c || strcmp(wallet_status(c, vn_now_us() / 1000000), "valid") != 0) {
        reply->note = c ? N_("This document is no longer valid") : N_("No such document");
        reply->note_type = VN_ADHOC_ERROR;
        json_decref(c);
        return;
    }
    json_t *have = NULL;
    json_decref(wallet_claims(c, &have));
    const char **paths = vn_alloc((json_array_size(have) + 1) * sizeof *paths);
    size_t n = 0;
    for (vn_stanza *f = vn_stanza_first_element(req->form); f; f = vn_stanza_next_element(f)) {
        if (!vn_stanza_is(f, "field", VN_NS_DATA) ||
            strcmp(vn_stanza_attr(f, "var") ? vn_stanza_attr(f, "var") : "", "claims") != 0)
            continue;
        for (vn_stanza *v = vn_stanza_first_element(f); v; v = vn_stanza_next_element(v)) {
            size_t i;
            const json_t *p;
            json_array_foreach(have, i, p)
            {
                if (vn_stanza_is(v, "value", VN_NS_DATA) &&
                    strcmp(json_string_value(p), vn_stanza_text(v)) == 0 &&
                    n < json_array_size(have))
                    paths[n++] = json_string_value(p);
            }
        }
    }
    char *url = NULL, *link = NULL;
    const char *err =
        n ? wallet_send_qr(req->host, user, req->from->full, c, paths, n, req->lang, &url, &link)
          : N_("Choose what to show");
    if (err) {
        reply->note = err;
        reply->note_type = VN_ADHOC_ERROR;
    } else {
        reply->result = vn_form_new("result", req->lang, N_("Show in person (QR)"));
        vn_form_add_field(reply->result, req->lang, "url", "text-single", N_("QR code"), url);
        vn_form_add_field(reply->result, req->lang, "link", "text-single",
                          N_("The link in the code"), link);
        reply->note = N_("The QR code was sent to you in a message; it works once, for a few "
                         "minutes.");
    }
    free(url);
    free(link);
    free(paths);
    json_decref(have);
    json_decref(c);
}

void wallet_adhoc_register(void)
{
    vn_adhoc_add(NODE_LIST, N_("My documents"), list_command, NULL);
    vn_adhoc_add(NODE_SHOW, N_("Show a document"), show_command, NULL);
    vn_adhoc_add(NODE_QR, N_("Show in person (QR)"), qr_command, NULL);
    presentation_adhoc_register();
    consent_adhoc_register();
    vn_adhoc_add(NODE_HISTORY, N_("History of my documents"), history_command, NULL);
    vn_adhoc_add(NODE_WHO, N_("Who saw what"), who_command, NULL);
    vn_adhoc_add(NODE_DELETE, N_("Delete a document"), delete_command, NULL);
}

void wallet_adhoc_unregister(void)
{
    vn_adhoc_remove(NODE_LIST);
    vn_adhoc_remove(NODE_SHOW);
    vn_adhoc_remove(NODE_QR);
    presentation_adhoc_unregister();
    consent_adhoc_unregister();
    vn_adhoc_remove(NODE_HISTORY);
    vn_adhoc_remove(NODE_WHO);
    vn_adhoc_remove(NODE_DELETE);
}
