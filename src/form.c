/*
 * form.c - building and reading XEP-0004 data forms (vestnik/form.h), with
 * every text translated into the reader's language as it is added.
 */
#include "vestnik/form.h"

#include <string.h>

#include "vestnik/i18n.h"

vn_stanza *vn_form_new(const char *type, const char *lang, const char *title)
{
    vn_stanza *form = vn_stanza_new("x", VN_NS_DATA);
    vn_stanza_set_attr(form, "type", type);
    if (title)
        vn_stanza_add_text_child(form, "title", VN_NS_DATA, vn_tr(lang, title));
    return form;
}

void vn_form_add_instructions(vn_stanza *form, const char *lang, const char *text)
{
    vn_stanza_add_text_child(form, "instructions", VN_NS_DATA, vn_tr(lang, text));
}

vn_stanza *vn_form_add_field(vn_stanza *form, const char *lang, const char *var, const char *type,
                             const char *label, const char *value)
{
    vn_stanza *field = vn_stanza_add_child(form, "field", VN_NS_DATA);
    vn_stanza_set_attr(field, "var", var);
    vn_stanza_set_attr(field, "type", type);
    if (label)
        vn_stanza_set_attr(field, "label", vn_tr(lang, label));
    if (value)
        vn_stanza_add_text_child(field, "value", VN_NS_DATA, value);
    return field;
}

void vn_form_add_option(vn_stanza *field, const char *lang, const char *label, const char *value,
                        bool translate)
{
    vn_stanza *option = vn_stanza_add_child(field, "option", VN_NS_DATA);
    vn_stanza_set_attr(option, "label", translate ? vn_tr(lang, label) : label);
    vn_stanza_add_text_child(option, "value", VN_NS_DATA, value);
}

const char *vn_form_value(const vn_stanza *form, const char *var)
{
    for (const vn_stanza *f = vn_stanza_first_element(form); f; f = vn_stanza_next_element(f)) {
        if (vn_stanza_is(f, "field", VN_NS_DATA) && vn_stanza_attr(f, "var") &&
            strcmp(vn_stanza_attr(f, "var"), var) == 0)
            return vn_stanza_child_text(f, "value", VN_NS_DATA);
    }
    return NULL;
}
