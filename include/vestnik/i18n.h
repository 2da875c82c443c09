/*
 * vestnik/i18n.h - the server's human text in the reader's language.
 *
 * Every text vestnik shows a person (a stanza or stream error text, a form
 * label, a service message) is an English literal in the code, marked for
 * xgettext with N_() where it is written, and looked up in the gettext
 * catalog (po/) of the reader's language when it is sent. The language comes
 * from the stanza's xml:lang (c2s gives stanzas without one the stream's
 * xml:lang, RFC 6120 §4.7.4), then the account's saved preference, then the
 * host's `language` in the configuration.
 *
 * Catalogs exist for en, ru, zh_CN and fa. Persian strings that embed a JID
 * or a number carry Unicode bidi isolates (U+2068 ... U+2069) around the
 * placeholder, so a left-to-right value displays correctly inside
 * right-to-left text; the catalog test checks that.
 *
 * Loop thread only: the lookup switches the gettext language per call.
 */
#ifndef VESTNIK_I18N_H
#define VESTNIK_I18N_H

/* Marks a literal for extraction into po/vestnik.pot; translated later by
 * vn_tr (vn_route_error and vn_stanza_error_reply do that themselves). */
#define N_(text) (text)

/* msgid in the language named by an xml:lang value ("ru", "zh-Hans-CN",
 * "fa-IR"...); lang NULL or without a catalog: the server's default
 * language. Returns msgid itself when nothing translates it. The result
 * lives as long as the catalogs (the whole run). format_arg: a translated
 * format string is checked against the arguments like its msgid. */
const char *vn_tr(const char *lang, const char *msgid) __attribute__((format_arg(2)));

/* The language tag vn_tr(lang, ...) answers in: "en", "ru", "zh-CN" or
 * "fa", to put in the xml:lang of the element that carries the text. */
const char *vn_tr_lang(const char *lang);

#endif
