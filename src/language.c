/*
 * language.c - the language an account chose for the server's texts, and
 * the "Language" ad-hoc command that sets it.
 *
 * A client that names no xml:lang on its stream (many bots and simple
 * clients) gets texts in the account's chosen language before the host's
 * default (vestnik/i18n.h). The choice is a document of its own in the
 * account's "settings" store, so deleting the account deletes it too.
 */
#include "i18n.h"

#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "vestnik/adhoc.h"
#include "vestnik/form.h"
#include "vestnik/i18n.h"
#include "vestnik/module.h"

#define SETTINGS_STORE "settings"
#define LANGUAGE_KEY "language"
#define LANGUAGE_NODE "language"

/* Each language by its own name, so that anyone finds theirs. */
static const struct {
    const char *tag;
    const char *own_name;
} languages[] = {
    {"en", "English"},
    {"ru", "Русский"},
    {"zh-CN", "中文（简体）"},
    {"fa", "فارسی"},
};

char *vn_user_language(const char *host, const char *user)
{
    vn_buf value;
    char *lang = NULL;

    vn_buf_init(&value);
    if (vn_store_get(vn_server_store(), host, user, SETTINGS_STORE, LANGUAGE_KEY, &value) ==
            VN_STORE_OK &&
        vn_i18n_known(value.data))
        lang = vn_buf_steal(&value, NULL);
    vn_buf_free(&value);
    return lang;
}

static bool offered(const char *tag)
{
    for (size_t i = 0; tag && i < sizeof languages / sizeof languages[0]; i++)
        if (strcmp(languages[i].tag, tag) == 0)
            return true;
    return false;
}

static void language_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    if (!req->form) {
        char *current = vn_user_language(req->host, req->from->local);
        vn_stanza *form = vn_form_new("form", req->lang, N_("Language"));
        vn_form_add_instructions(form, req->lang,
                                 N_("The language the server writes to you in when your "
                                    "client does not say which it prefers."));
        vn_stanza *field = vn_form_add_field(form, req->lang, "language", "list-single",
                                             N_("Language"), current ? current : "");
        for (size_t i = 0; i < sizeof languages / sizeof languages[0]; i++)
            vn_form_add_option(field, req->lang, languages[i].own_name, languages[i].tag, false);
        vn_stanza_add_child(field, "required", VN_NS_DATA);
        free(current);
        reply->form = form;
        return;
    }
    const char *chosen = vn_form_value(req->form, "language");
    if (!offered(chosen)) {
        reply->note = N_("Choose one of the languages offered");
        reply->note_type = VN_ADHOC_ERROR;
        return;
    }
    if (vn_store_put(vn_server_store(), req->host, req->from->local, SETTINGS_STORE, LANGUAGE_KEY,
                     chosen, strlen(chosen)) != VN_STORE_OK) {
        reply->note = N_("The language could not be saved; try again later");
        reply->note_type = VN_ADHOC_ERROR;
        return;
    }
    reply->note = N_("Language saved");
    reply->note_type = VN_ADHOC_INFO;
}

void vn_language_command_register(void)
{
    vn_adhoc_add(LANGUAGE_NODE, N_("Language"), language_command, NULL);
}
