/*
 * config.c - a room's configuration as data forms (XEP-0045 §10.2,
 * §15.5.3 muc#roomconfig; §15.5.4 muc#roominfo; XEP-0004).
 *
 * Builds the form an owner fills in and applies a submitted one, checking
 * each field's type: a value that is not of the field's type is a
 * <bad-request/>, a well-typed value the service will not accept (an
 * unknown list option, more occupants than the service allows, a
 * password-protected room without a password) is <not-acceptable/>.
 * Nothing changes unless the whole form is acceptable. Also describes a
 * room in disco#info: its features and the muc#roominfo form.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muc.h"

#define FORM_ROOMCONFIG NS_MUC "#roomconfig"
#define FORM_ROOMINFO NS_MUC "#roominfo"

static const char *const pm_values[] = {"anyone", "participants", "moderators", "none"};

void muc_config_defaults(muc_config *cfg, const muc_limits *limits)
{
    *cfg = (muc_config){
        .public_room = true,
        .allow_invites = false, /* XEP-0045 §7.8.2: in members-only rooms, admins invite */
        .logging = true,
        .change_subject = false,
        .allow_pm = MUC_PM_ANYONE,
        .max_occupants = limits->max_occupants,
        .history_length = limits->max_history_messages,
    };
}

void muc_config_free(muc_config *cfg)
{
    free(cfg->name);
    free(cfg->description);
    free(cfg->password);
    cfg->name = cfg->description = cfg->password = NULL;
}

/* ---- the form ---- */

static void add_bool_field(vn_stanza *x, const char *lang, const char *var, const char *label,
                           bool value)
{
    vn_form_add_field(x, lang, var, "boolean", label, value ? "1" : "0");
}

vn_stanza *muc_config_form(const muc_room *room, const char *lang)
{
    const muc_config *cfg = &room->config;
    char number[32];
    vn_stanza *x = vn_form_new("form", lang, N_("Room configuration"));

    vn_form_add_field(x, lang, "FORM_TYPE", "hidden", NULL, FORM_ROOMCONFIG);
    vn_form_add_field(x, lang, "muc#roomconfig_roomname", "text-single", "Name",
                      cfg->name ? cfg->name : "");
    vn_form_add_field(x, lang, "muc#roomconfig_roomdesc", "text-single", "Description",
                      cfg->description ? cfg->description : "");
    add_bool_field(x, lang, "muc#roomconfig_persistentroom", N_("Persistent"), cfg->persistent);
    add_bool_field(x, lang, "muc#roomconfig_publicroom", N_("Listed in the directory"),
                   cfg->public_room);
    add_bool_field(x, lang, "muc#roomconfig_membersonly", N_("Members only"), cfg->members_only);
    add_bool_field(x, lang, "muc#roomconfig_moderatedroom", N_("Moderated"), cfg->moderated);
    add_bool_field(x, lang, "muc#roomconfig_passwordprotectedroom", N_("Password protected"),
                   cfg->password_protected);
    vn_form_add_field(x, lang, "muc#roomconfig_roomsecret", "text-private", "Password",
                      cfg->password ? cfg->password : "");
    snprintf(number, sizeof number, "%lld", cfg->max_occupants);
    vn_form_add_field(x, lang, "muc#roomconfig_maxusers", "text-single",
                      "Maximum number of occupants", number);
    vn_stanza *whois =
        vn_form_add_field(x, lang, "muc#roomconfig_whois", "list-single", "Who may see real JIDs",
                          cfg->whois_anyone ? "anyone" : "moderators");
    vn_form_add_option(whois, lang, N_("Moderators only"), "moderators", true);
    vn_form_add_option(whois, lang, N_("Anyone"), "anyone", true);
    snprintf(number, sizeof number, "%lld", cfg->history_length);
    vn_form_add_field(x, lang, "muc#maxhistoryfetch", "text-single",
                      "Messages of history sent on joining", number);
    add_bool_field(x, lang, "muc#roomconfig_changesubject", N_("Occupants may change the subject"),
                   cfg->change_subject);
    add_bool_field(x, lang, "muc#roomconfig_allowinvites", N_("Occupants may invite others"),
                   cfg->allow_invites);
    add_bool_field(x, lang, "muc#roomconfig_enablelogging",
                   N_("Keep an archive of the messages (history on joining, MAM)"), cfg->logging);
    vn_stanza *pm = vn_form_add_field(x, lang, "muc#roomconfig_allowpm", "list-single",
                                      "Who may send private messages", pm_values[cfg->allow_pm]);
    vn_form_add_option(pm, lang, N_("Anyone"), "anyone", true);
    vn_form_add_option(pm, lang, N_("Participants"), "participants", true);
    vn_form_add_option(pm, lang, N_("Moderators"), "moderators", true);
    vn_form_add_option(pm, lang, N_("Nobody"), "none", true);
    return x;
}

/* ---- submission ---- */

typedef struct form_error {
    const char *type;
    const char *condition;
    const char *text;
} form_error;

static bool fail(form_error *err, const char *type, const char *condition, const char *text)
{
    *err = (form_error){type, condition, text};
    return false;
}

/* The single value of a field ("" when it has none); NULL (error set) if
 * a single-valued field has several. */
static const char *single_value(const vn_stanza *field, form_error *err)
{
    const vn_stanza *first = vn_stanza_child(field, "value", NS_DATA);
    size_t count = 0;
    for (const vn_stanza *v = vn_stanza_first_element(field); v; v = vn_stanza_next_element(v))
        if (vn_stanza_is(v, "value", NS_DATA))
            count++;
    if (count > 1) {
        fail(err, "modify", "bad-request", N_("A single-valued field has several values"));
        return NULL;
    }
    return first ? vn_stanza_text(first) : "";
}

static bool parse_bool(const char *value, bool *out, form_error *err)
{
    if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0) {
        *out = false;
        return true;
    }
    return fail(err, "modify", "bad-request", N_("A boolean field holds 0, 1, true or false"));
}

static bool parse_count(const char *value, long long max, long long *out, form_error *err)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (!*value || *end || errno || n < 0)
        return fail(err, "modify", "bad-request", N_("A number field holds a whole number"));
    if (n > max)
        return fail(err, "cancel", "not-acceptable", N_("More than this service allows"));
    *out = n;
    return true;
}

static bool apply_field(muc_config *cfg, const muc_limits *limits, const char *var,
                        const char *value, form_error *err)
{
    if (strcmp(var, "FORM_TYPE") == 0)
        return strcmp(value, FORM_ROOMCONFIG) == 0 ||
               fail(err, "modify", "bad-request", N_("Not a muc#roomconfig form"));
    if (strcmp(var, "muc#roomconfig_roomname") == 0) {
        free(cfg->name);
        cfg->name = *value ? vn_strdup(value) : NULL;
        return true;
    }
    if (strcmp(var, "muc#roomconfig_roomdesc") == 0) {
        free(cfg->description);
        cfg->description = *value ? vn_strdup(value) : NULL;
        return true;
    }
    if (strcmp(var, "muc#roomconfig_roomsecret") == 0) {
        free(cfg->password);
        cfg->password = *value ? vn_strdup(value) : NULL;
        return true;
    }
    if (strcmp(var, "muc#roomconfig_persistentroom") == 0)
        return parse_bool(value, &cfg->persistent, err);
    if (strcmp(var, "muc#roomconfig_publicroom") == 0)
        return parse_bool(value, &cfg->public_room, err);
    if (strcmp(var, "muc#roomconfig_membersonly") == 0)
        return parse_bool(value, &cfg->members_only, err);
    if (strcmp(var, "muc#roomconfig_moderatedroom") == 0)
        return parse_bool(value, &cfg->moderated, err);
    if (strcmp(var, "muc#roomconfig_passwordprotectedroom") == 0)
        return parse_bool(value, &cfg->password_protected, err);
    if (strcmp(var, "muc#roomconfig_changesubject") == 0)
        return parse_bool(value, &cfg->change_subject, err);
    if (strcmp(var, "muc#roomconfig_allowinvites") == 0)
        return parse_bool(value, &cfg->allow_invites, err);
    /* Prosody's name for the same (mod_muc_mam) */
    if (strcmp(var, "muc#roomconfig_enablelogging") == 0 ||
        strcmp(var, "muc#roomconfig_enablearchiving") == 0)
        return parse_bool(value, &cfg->logging, err);
    if (strcmp(var, "muc#roomconfig_maxusers") == 0) {
        if (!parse_count(value, limits->max_occupants, &cfg->max_occupants, err))
            return false;
        return cfg->max_occupants > 0 ||
               fail(err, "cancel", "not-acceptable", N_("A room holds at least one occupant"));
    }
    if (strcmp(var, "muc#maxhistoryfetch") == 0 || strcmp(var, "muc#roomconfig_historylength") == 0)
        return parse_count(value, limits->max_history_messages, &cfg->history_length, err);
    if (strcmp(var, "muc#roomconfig_whois") == 0) {
        if (strcmp(value, "anyone") != 0 && strcmp(value, "moderators") != 0)
            return fail(err, "cancel", "not-acceptable", N_("whois is moderators or anyone"));
        cfg->whois_anyone = strcmp(value, "anyone") == 0;
        return true;
    }
    if (strcmp(var, "muc#roomconfig_allowpm") == 0) {
        for (size_t i = 0; i < sizeof pm_values / sizeof *pm_values; i++)
            if (strcmp(value, pm_values[i]) == 0) {
                cfg->allow_pm = (muc_pm_policy)i;
                return true;
            }
        return fail(err, "cancel", "not-acceptable",
                    N_("allowpm is anyone, participants, moderators or none"));
    }
    return true; /* XEP-0004 §3.3: fields the service does not know are ignored */
}

bool muc_config_submit(muc_room *room, const vn_stanza *form, const char **type,
                       const char **condition, const char **text)
{
    muc_config cfg = room->config;
    form_error err = {0};
    bool ok = true;

    cfg.name = vn_strdup(room->config.name);
    cfg.description = vn_strdup(room->config.description);
    cfg.password = vn_strdup(room->config.password);
    for (const vn_stanza *field = vn_stanza_first_element(form); ok && field;
         field = vn_stanza_next_element(field)) {
        if (!vn_stanza_is(field, "field", NS_DATA))
            continue;
        const char *var = vn_stanza_attr(field, "var");
        const char *value = single_value(field, &err);
        if (!var)
            ok = fail(&err, "modify", "bad-request", N_("A submitted field has no var"));
        else if (!value)
            ok = false;
        else
            ok = apply_field(&cfg, room->service->limits, var, value, &err);
    }
    if (ok && cfg.password_protected && !cfg.password)
        ok = fail(&err, "cancel", "not-acceptable",
                  N_("A password-protected room needs a password"));
    if (!ok) {
        muc_config_free(&cfg);
        *type = err.type;
        *condition = err.condition;
        *text = err.text;
        return false;
    }
    if (!cfg.password_protected) {
        free(cfg.password);
        cfg.password = NULL;
    }
    muc_config_free(&room->config);
    room->config = cfg;
    return true;
}

/* ---- disco#info of a room ---- */

static void add_feature(vn_stanza *query, const char *var)
{
    vn_stanza_set_attr(vn_stanza_add_child(query, "feature", NS_DISCO_INFO), "var", var);
}

void muc_room_disco_info(const muc_room *room, vn_stanza *query, bool insider, const char *lang)
{
    const muc_config *cfg = &room->config;
    vn_stanza *identity = vn_stanza_add_child(query, "identity", NS_DISCO_INFO);
    vn_stanza_set_attr(identity, "category", "conference");
    vn_stanza_set_attr(identity, "type", "text");
    vn_stanza_set_attr(identity, "name", cfg->name ? cfg->name : room->local);

    add_feature(query, NS_MUC);
    add_feature(query, NS_DISCO_INFO);
    add_feature(query, NS_DISCO_ITEMS);
    add_feature(query, NS_REGISTER);
    add_feature(query, NS_MAM);
    add_feature(query, NS_SID);
    add_feature(query, NS_OCCUPANT_ID);
    add_feature(query, NS_MODERATE_0);
    add_feature(query, NS_MODERATE_1);
    add_feature(query, NS_MUC "#stable_id");
    add_feature(query, "http://jabber.org/protocol/muc#self-ping-optimization");
    add_feature(query, cfg->persistent ? "muc_persistent" : "muc_temporary");
    add_feature(query, cfg->members_only ? "muc_membersonly" : "muc_open");
    add_feature(query, cfg->moderated ? "muc_moderated" : "muc_unmoderated");
    add_feature(query, cfg->password_protected ? "muc_passwordprotected" : "muc_unsecured");
    add_feature(query, cfg->public_room ? "muc_public" : "muc_hidden");
    add_feature(query, cfg->whois_anyone ? "muc_nonanonymous" : "muc_semianonymous");

    char count[32];
    vn_stanza *x = vn_form_new("result", lang, NULL);
    vn_stanza_append(query, x);
    vn_form_add_field(x, lang, "FORM_TYPE", "hidden", NULL, FORM_ROOMINFO);
    vn_form_add_field(x, lang, "muc#roominfo_description", "text-single", "Description",
                      cfg->description ? cfg->description : "");
    snprintf(count, sizeof count, "%zu", room->occupant_count);
    vn_form_add_field(x, lang, "muc#roominfo_occupants", "text-single", "Number of occupants",
                      count);
    /* What is said inside a members-only or password-protected room,
     * its subject included, is for those who may enter. */
    bool closed = cfg->members_only || cfg->password_protected;
    if (!closed || insider)
        vn_form_add_field(x, lang, "muc#roominfo_subject", "text-single", "Subject",
                          room->subject ? room->subject : "");
    vn_form_add_field(x, lang, "muc#roominfo_changesubject", "boolean",
                      "Occupants may change the subject", cfg->change_subject ? "1" : "0");
    vn_form_add_field(x, lang, "muc#roomconfig_roomname", "text-single", "Name",
                      cfg->name ? cfg->name : "");
    snprintf(count, sizeof count, "%lld", cfg->max_occupants);
    vn_form_add_field(x, lang, "muc#roomconfig_maxusers", "text-single",
                      "Maximum number of occupants", count);
    vn_form_add_field(x, lang, "muc#roomconfig_allowinvites", "boolean",
                      "Occupants may invite others", cfg->allow_invites ? "1" : "0");
}
