/*
 * presentation_adhoc.c - consent and checking as ad-hoc commands:
 * "Requests" shows the oldest request waiting for the holder, who asks,
 * what and why, with one checkbox per claim, all off (XEP-0070-style
 * confirmation: nothing is shared unless the holder ticks it and submits);
 * "Check a presentation" verifies one for a verifier on any client.
 */
#include <stdlib.h>
#include <string.h>
#include <vestnik/form.h>
#include <vestnik/i18n.h>

#include "mod_credentials.h"

#define NODE_REQUESTS CRED_NODE_PREFIX "requests"
#define NODE_VERIFY CRED_NODE_PREFIX "verify"

static vn_stanza *request_form(const char *host, const char *user, const json_t *item,
                               const char *lang)
{
    vn_stanza *form = vn_form_new("form", lang, N_("A request for your documents"));
    char *text = presentation_describe(host, user, item, lang);
    /* Instructions are plain text: the chat's last line (how to reply) is
     * for the chat only. */
    char *last = strrchr(text, '\n');
    if (last)
        *last = '\0';
    vn_stanza_add_text_child(form, "instructions", VN_NS_DATA, text);
    free(text);
    vn_form_add_field(form, lang, "request", "hidden", NULL,
                      json_string_value(json_object_get(item, "id")));
    json_t *paths = NULL;
    json_t *c = presentation_match(host, user, item, &paths);
    if (c) {
        vn_form_add_field(form, lang, "credential", "hidden", NULL,
                          json_string_value(json_object_get(c, "id")));
        size_t i;
        const json_t *p;
        json_array_foreach(paths, i, p)
        {
            const char *name = json_string_value(p);
            char *var = vn_asprintf("claim:%s", name);
            vn_form_add_field(form, lang, var, "boolean", cred_claim_label(name), "0");
            free(var);
        }
    }
    vn_stanza *answer =
        vn_form_add_field(form, lang, "answer", "list-single", N_("Your answer"), "decline");
    vn_form_add_option(answer, lang, N_("Share what I ticked"), "share", true);
    vn_form_add_option(answer, lang, N_("Share nothing"), "decline", true);
    json_decref(c);
    json_decref(paths);
    return form;
}

static bool ticked(const vn_stanza *form, const char *var)
{
    const char *v = vn_form_value(form, var);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

static void requests_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    const char *host = req->host, *user = req->from->local;
    cred_holder_lang_set(host, user, req->lang);
    if (!req->form) {
        json_t *item = pending_oldest(host, user, "present");
        if (!item)
            reply->note = N_("No request waits for your answer.");
        else
            reply->form = request_form(host, user, item, req->lang);
        json_decref(item);
        return;
    }
    json_t *item = pending_get(host, user, vn_form_value(req->form, "request"));
    if (!item || strcmp(json_string_value(json_object_get(item, "kind")), "present") != 0) {
        reply->note = N_("This request was answered already or has expired.");
        reply->note_type = VN_ADHOC_WARN;
        json_decref(item);
        return;
    }
    const char *answer = vn_form_value(req->form, "answer");
    const char *credential = vn_form_value(req->form, "credential");
    json_t *paths = NULL;
    json_t *c = presentation_match(host, user, item, &paths);
    const char **approved = vn_alloc((json_array_size(paths) + 1) * sizeof *approved);
    size_t n = 0;
    /* Only a claim offered for the credential offered can be approved. */
    if (c && credential && strcmp(json_string_value(json_object_get(c, "id")), credential) == 0 &&
        answer && strcmp(answer, "share") == 0) {
        size_t i;
        const json_t *p;
        json_array_foreach(paths, i, p)
        {
            char *var = vn_asprintf("claim:%s", json_string_value(p));
            if (ticked(req->form, var))
                approved[n++] = json_string_value(p);
            free(var);
        }
    }
    presentation_answer(host, user, item, n ? credential : NULL, approved, n);
    reply->note = n ? N_("Shared what you ticked, and nothing else.") : N_("Nothing was shared.");
    free(approved);
    json_decref(c);
    json_decref(paths);
    json_decref(item);
}

static void verify_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    if (!req->form) {
        vn_stanza *form = vn_form_new("form", req->lang, N_("Check a presentation"));
        vn_form_add_instructions(form, req->lang,
                                 N_("Paste the presentation you received for your account and "
                                    "the nonce you asked with."));
        vn_form_add_field(form, req->lang, "presentation", "text-multi", N_("Presentation"), NULL);
        vn_form_add_field(form, req->lang, "nonce", "text-single", N_("Nonce"), NULL);
        reply->form = form;
        return;
    }
    /* A text-multi value may come in several lines: join them. */
    vn_buf pres;
    vn_buf_init(&pres);
    for (vn_stanza *f = vn_stanza_first_element(req->form); f; f = vn_stanza_next_element(f)) {
        const char *var = vn_stanza_attr(f, "var");
        if (!var || strcmp(var, "presentation") != 0)
            continue;
        for (vn_stanza *v = vn_stanza_first_element(f); v; v = vn_stanza_next_element(v))
            if (vn_stanza_is(v, "value", VN_NS_DATA))
                vn_buf_append_str(&pres, vn_stanza_text(v));
    }
    const char *nonce = vn_form_value(req->form, "nonce");
    if (!pres.len || !nonce) {
        reply->note = N_("Give the presentation and the nonce you asked with");
        reply->note_type = VN_ADHOC_ERROR;
        vn_buf_free(&pres);
        return;
    }
    char *aud = vn_asprintf("xmpp:%s", req->from->bare);
    vn_sdjwt_verified r;
    int rc = presentation_verify(req->host, pres.data, aud, nonce, &r);
    if (rc != 0) {
        reply->note = presentation_strerror(rc);
        reply->note_type = VN_ADHOC_ERROR;
        reply->result = vn_form_new("result", req->lang, N_("Check a presentation"));
        vn_form_add_field(reply->result, req->lang, "error", "text-single", N_("Refused"),
                          presentation_condition(rc));
    } else {
        vn_stanza *form = vn_form_new("result", req->lang, N_("Check a presentation"));
        const cred_issuer *is = cred_issuer_by_iss(r.iss);
        const cred_type *t = cred_type_find(r.vct);
        vn_form_add_field(form, req->lang, "issuer", "text-single", N_("Issuer"),
                          is ? is->name : r.iss);
        vn_form_add_field(form, req->lang, "type", "text-single", N_("Document"),
                          t ? vn_tr(req->lang, t->label) : r.vct);
        size_t i;
        const json_t *p;
        json_array_foreach(r.disclosed, i, p)
        {
            const char *name = json_string_value(p);
            char *value = presentation_value_text(json_object_get(r.claims, name));
            char *var = vn_asprintf("claim:%s", name);
            vn_form_add_field(form, req->lang, var, "text-single", cred_claim_label(name), value);
            free(var);
            free(value);
        }
        reply->result = form;
        reply->note = N_("The presentation is valid.");
    }
    vn_sdjwt_verified_free(&r);
    free(aud);
    vn_buf_free(&pres);
}

void presentation_adhoc_register(void)
{
    vn_adhoc_add(NODE_REQUESTS, N_("Requests for my documents"), requests_command, NULL);
    vn_adhoc_add(NODE_VERIFY, N_("Check a presentation"), verify_command, NULL);
}

void presentation_adhoc_unregister(void)
{
    vn_adhoc_remove(NODE_REQUESTS);
    vn_adhoc_remove(NODE_VERIFY);
}
