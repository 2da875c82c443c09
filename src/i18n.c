/*
 * i18n.c - gettext lookups in the language of each reader.
 *
 * gettext translates into the process's language; a server answers many
 * readers in many languages from one loop thread. The catalogs are looked up
 * with the process's LC_MESSAGES set to C.UTF-8 (always present, unlike
 * ru_RU.UTF-8 in a container) and GNU gettext's LANGUAGE list switched to the
 * reader's catalog before each lookup; _nl_msg_cat_cntr tells gettext its
 * cache of the previous language's answers no longer holds. Switching is
 * skipped when the language is the one already selected, which is the
 * common case. Only the loop thread translates.
 */
#include "i18n.h"

#include <libintl.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vestnik/i18n.h"

#define VN_TEXT_DOMAIN "vestnik"
#ifndef VN_LOCALEDIR /* set by the build; the fuzz targets leave it out */
#define VN_LOCALEDIR "/usr/local/share/locale"
#endif

/* GNU gettext's generation counter: bumped, it drops cached lookups. */
extern int _nl_msg_cat_cntr;

typedef struct catalog {
    const char *prefix; /* primary language subtag of xml:lang */
    const char *name;   /* gettext catalog (po/NAME.po) */
    const char *tag;    /* what we answer in, for xml:lang */
} catalog;

/* zh-TW and zh-Hant readers get simplified Chinese too: closer than English. */
static const catalog catalogs[] = {
    {"en", "en", "en"},
    {"ru", "ru", "ru"},
    {"zh", "zh_CN", "zh-CN"},
    {"fa", "fa", "fa"},
};

static const catalog *default_catalog = &catalogs[0];
static const catalog *selected; /* the LANGUAGE gettext has now */

static const catalog *find_catalog(const char *lang)
{
    if (!lang)
        return NULL;
    size_t len = strcspn(lang, "-_");
    for (size_t i = 0; i < sizeof catalogs / sizeof catalogs[0]; i++) {
        if (strlen(catalogs[i].prefix) == len && strncasecmp(lang, catalogs[i].prefix, len) == 0)
            return &catalogs[i];
    }
    return NULL;
}

static const catalog *catalog_for(const char *lang)
{
    const catalog *c = find_catalog(lang);
    return c ? c : default_catalog;
}

bool vn_i18n_known(const char *lang)
{
    return find_catalog(lang) != NULL;
}

static void bind_domain(const char *locale_dir)
{
    bindtextdomain(VN_TEXT_DOMAIN, locale_dir ? locale_dir : VN_LOCALEDIR);
    bind_textdomain_codeset(VN_TEXT_DOMAIN, "UTF-8");
}

void vn_i18n_setup(const char *locale_dir, const char *default_lang)
{
    /* Not "C": in the C locale gettext ignores LANGUAGE and never translates. */
    if (!setlocale(LC_MESSAGES, "C.UTF-8"))
        setlocale(LC_MESSAGES, "C.utf8");
    bind_domain(locale_dir);
    default_catalog = catalog_for(default_lang);
    /* Set once here, before any worker thread runs: later switches only
     * replace the value, which glibc does without moving environ. */
    setenv("LANGUAGE", default_catalog->name, 1);
    ++_nl_msg_cat_cntr;
    selected = default_catalog;
}

void vn_i18n_setup_cli(const char *locale_dir)
{
    /* Only the messages: numbers, character classes and collation stay
     * the C locale's, which the configuration parser and JIDs expect. */
    setlocale(LC_MESSAGES, "");
    bind_domain(locale_dir);
    textdomain(VN_TEXT_DOMAIN);
}

const char *vn_tr(const char *lang, const char *msgid)
{
    const catalog *c = catalog_for(lang);

    if (!msgid || !*msgid)
        return msgid;
    if (c != selected) {
        setenv("LANGUAGE", c->name, 1);
        ++_nl_msg_cat_cntr;
        selected = c;
    }
    return dgettext(VN_TEXT_DOMAIN, msgid);
}

const char *vn_tr_lang(const char *lang)
{
    return catalog_for(lang)->tag;
}
