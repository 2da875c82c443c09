/*
 * i18n.h - setting up the catalogs behind vestnik/i18n.h (server start and
 * reload; vestnikctl).
 */
#ifndef VN_I18N_INTERNAL_H
#define VN_I18N_INTERNAL_H

#include <stdbool.h>

/* Binds the "vestnik" text domain to locale_dir (NULL: the compiled-in
 * LOCALEDIR) and makes default_lang (an xml:lang value; NULL: "en") the
 * language of texts whose reader's language has no catalog. */
void vn_i18n_setup(const char *locale_dir, const char *default_lang);

/* True if lang names a language vestnik has a catalog for. */
bool vn_i18n_known(const char *lang);

/* For vestnikctl: texts in the language of the user's locale (LANG,
 * LC_MESSAGES, LANGUAGE) instead of per-call switching. */
void vn_i18n_setup_cli(const char *locale_dir);

/* language.c: the language an account chose (a tag vn_tr knows), as a
 * string to free, or NULL if none; and the "Language" ad-hoc command. */
char *vn_user_language(const char *host, const char *user);
void vn_language_command_register(void);

#endif
