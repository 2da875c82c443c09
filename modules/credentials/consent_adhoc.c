/*
 * consent_adhoc.c - "Sign a document" as an ad-hoc command: the oldest
 * document waiting for the holder's signature, shown whole (or by its
 * link) with its hash, and a choice that defaults to not signing.
 */
#include <stdlib.h>
#include <string.h>
#include <vestnik/form.h>
#include <vestnik/i18n.h>

#include "mod_credentials.h"

#define NODE_SIGN CRED_NODE_PREFIX "sign"

static void sign_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    const char *host = req->host, *user = req->from->local;
    cred_holder_lang_set(host, user, req->lang);
    if (!req->form) {
        json_t *item = pending_oldest(host, user, "sign");
        if (!item) {
            reply->note = N_("No document waits for your signature.");
            return;
        }
        vn_stanza *form = vn_form_new("form", req->lang, N_("Sign a document"));
        char *text = consent_describe(item, req->lang);
        char *last = strrchr(text, '\n');
        if (last)
            *last = '\0';
        vn_stanza_add_text_child(form, "instructions", VN_NS_DATA, text);
        free(text);
        vn_form_add_field(form, req->lang, "request", "hidden", NULL,
                          json_string_value(json_object_get(item, "id")));
        const char *url = json_string_value(json_object_get(item, "url"));
        if (url)
            vn_form_add_field(form, req->lang, "url", "text-single", N_("Document"), url);
        vn_stanza *answer = vn_form_add_field(form, req->lang, "answer", "list-single",
                                              N_("Your answer"), "refuse");
        vn_form_add_option(answer, req->lang, N_("I have read it and sign it"), "sign", true);
        vn_form_add_option(answer, req->lang, N_("I do not sign it"), "refuse", true);
        reply->form = form;
        json_decref(item);
        return;
    }
    json_t *item = pending_get(host, user, vn_form_value(req->form, "request"));
    if (!item || strcmp(json_string_value(json_object_get(item, "kind")), "sign") != 0) {
        reply->note = N_("This request was answered already or has expired.");
        reply->note_type = VN_ADHOC_WARN;
    } else {
        const char *answer = vn_form_value(req->form, "answer");
        bool sign = answer && strcmp(answer, "sign") == 0;
        consent_answer(host, user, item, sign);
        reply->note = sign ? N_("Signed.") : N_("Not signed.");
    }
    json_decref(item);
}

void consent_adhoc_register(void)
{
    vn_adhoc_add(NODE_SIGN, N_("Sign a document"), sign_command, NULL);
}

void consent_adhoc_unregister(void)
{
    vn_adhoc_remove(NODE_SIGN);
}
