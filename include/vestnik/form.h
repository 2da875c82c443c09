/*
 * vestnik/form.h - XEP-0004 data forms, built and read.
 *
 * Forms are what a person fills in from a plain client (ad-hoc commands,
 * registration, room configuration). Titles, instructions and labels given
 * here are msgids: they are translated into lang with vn_tr as the form is
 * built, so a form is always in its reader's language.
 */
#ifndef VESTNIK_FORM_H
#define VESTNIK_FORM_H

#include <stdbool.h>

#include "stanza.h"

#define VN_NS_DATA "jabber:x:data"

/* <x xmlns='jabber:x:data' type=type> with a <title/> (title may be NULL). */
vn_stanza *vn_form_new(const char *type, const char *lang, const char *title);
/* <instructions/> */
void vn_form_add_instructions(vn_stanza *form, const char *lang, const char *text);
/* A <field var type label>, with <value/> if value is not NULL; returns it. */
vn_stanza *vn_form_add_field(vn_stanza *form, const char *lang, const char *var, const char *type,
                             const char *label, const char *value);
/* An <option label><value/></option> of a list field; label is shown as is
 * (a language's own name, say) unless translate is set. */
void vn_form_add_option(vn_stanza *field, const char *lang, const char *label, const char *value,
                        bool translate);
/* The first <value/> of field var in a submitted form, or NULL. */
const char *vn_form_value(const vn_stanza *form, const char *var);

#endif
