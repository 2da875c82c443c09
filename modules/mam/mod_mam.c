/*
 * mod_mam.c - Message Archive Management (XEP-0313, urn:xmpp:mam:2 and
 * its #extended features) for user archives, with Unique and Stable Stanza
 * IDs (XEP-0359).
 *
 * Archiving. A chat or normal message with a <body/>, or with a call's
 * Jingle Message Initiation element other than <ringing/> (XEP-0313 §5.1.1;
 * not error, groupchat or headline, nor one hinted <no-store/> or
 * <no-permanent-store/> per XEP-0334) goes into the sender's archive when
 * a local client sends it ("stanza/in") and into the recipient's when it
 * reaches a local account ("route/local"); a message to oneself is kept
 * once, on the receiving side. Each archive is the store archive "mam" of
 * the account, the item's with-JID the contact's JID as the message names
 * it (the store indexes it under the bare JID too, so 'with' may be either)
 * and its data the message as serialized. The message delivered to the recipient carries
 * <stanza-id by='recipient' id='archive id'/>; a stanza-id claiming to be
 * by the archive's owner that arrives with the message is removed first,
 * archived or not.
 *
 * Preferences (§7) are one document per account, store "mam" key "prefs":
 * the <prefs/> element as the client set it. 'roster' archives a contact
 * whose item is on the account's roster (listed, any subscription). The
 * first message archived for an account writes an empty <prefs/> (the
 * server default applies) if none exists, so the users of store "mam" are
 * exactly the accounts with an archive: the retention purge walks them.
 *
 * Retention. With retention_days > 0, an hourly timer deletes, on the loop
 * thread, the items older than that from every such archive; the store
 * removes large amounts in chunked commits.
 *
 * Queries, the form, metadata (§6.1) and preferences are answered to the
 * account's own resources only; the query itself lives in mam_query.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/module.h>

#include "mam_query.h"

#define NS_SID "urn:xmpp:sid:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_JMI "urn:xmpp:jingle-message:0"
#define NS_DATA "jabber:x:data"
#define PREFS_STORE "mam"
#define PREFS_KEY "prefs"

/* After the blocking filters (priority 1000), which stop what they block. */
#define ARCHIVE_PRIORITY 500
#define PURGE_FIRST_MS (60 * 1000)
#define PURGE_EVERY_MS (60 * 60 * 1000)
#define US_PER_DAY (86400LL * 1000000)

/* The values of <prefs default=.../> (XEP-0313 §6.1), and of the option. */
static const char *const defaults[] = {"always", "never", "roster", NULL};

static const vn_config_key mam_keys[] = {
    {.name = "max_page", .type = VN_CONF_INT, .default_value = "100", .min = 1, .max = 1000},
    {.name = "default", .type = VN_CONF_STRING, .default_value = "always", .choices = defaults},
    {.name = "retention_days", .type = VN_CONF_INT, .default_value = "0", .min = 0, .max = 36500},
    {.name = NULL},
};

static vn_timer *purge_timer;

/* ---- preferences ---- */

static bool valid_default(const char *value)
{
    for (const char *const *d = defaults; value && *d; d++)
        if (strcmp(value, *d) == 0)
            return true;
    return false;
}

/* The stored <prefs/> of an account, or NULL when it has none (or on a
 * store error: *rc tells). */
/* What prefs_save stores for an empty <prefs/>, the document of nearly
 * every account: recognised without an XML parser, which would otherwise
 * be created twice for every archived message. */
static const char EMPTY_PREFS[] = "<prefs xmlns='" MAM_NS "'/>";

static vn_stanza *prefs_load(const char *host, const char *user, int *rc)
{
    vn_buf doc;
    vn_stanza *prefs = NULL;

    vn_buf_init(&doc);
    *rc = vn_store_get(vn_server_store(), host, user, PREFS_STORE, PREFS_KEY, &doc);
    if (*rc == VN_STORE_OK && doc.len == sizeof EMPTY_PREFS - 1 &&
        memcmp(doc.data, EMPTY_PREFS, doc.len) == 0) {
        prefs = vn_stanza_new("prefs", MAM_NS);
    } else if (*rc == VN_STORE_OK) {
        prefs = vn_stanza_parse(doc.data, doc.len);
        if (!prefs || !vn_stanza_is(prefs, "prefs", MAM_NS)) {
            vn_log_warn("mam: the stored preferences of %s@%s do not parse", user, host);
            vn_stanza_free(prefs);
            prefs = vn_stanza_new("prefs", MAM_NS);
        }
    }
    vn_buf_free(&doc);
    return prefs;
}

static int prefs_save(const char *host, const char *user, const vn_stanza *prefs)
{
    size_t len;
    char *xml = vn_stanza_serialize(prefs, VN_NS_CLIENT, &len);
    int rc = vn_store_put(vn_server_store(), host, user, PREFS_STORE, PREFS_KEY, xml, len);
    free(xml);
    return rc;
}

/* The account's default, else the configured one (which the config
 * loader has checked against the same values). */
static const char *prefs_default(const vn_module *m, const vn_stanza *prefs)
{
    const char *value = prefs ? vn_stanza_attr(prefs, "default") : NULL;

    return valid_default(value) ? value : vn_module_config_string(m, "default");
}

/* Whether the <always/> or <never/> list of prefs names the contact. */
static bool listed(const vn_stanza *prefs, const char *list, const vn_jid *contact)
{
    const vn_stanza *jids = prefs ? vn_stanza_child(prefs, list, MAM_NS) : NULL;

    for (const vn_stanza *jid = jids ? vn_stanza_first_element(jids) : NULL; jid;
         jid = vn_stanza_next_element(jid)) {
        const char *text = vn_stanza_text(jid);
        if (vn_stanza_is(jid, "jid", MAM_NS) &&
            (strcmp(text, contact->bare) == 0 || strcmp(text, contact->full) == 0))
            return true;
    }
    return false;
}

static bool on_roster(const char *host, const char *user, const char *contact_bare)
{
    vn_roster_item *item = NULL;
    bool found = vn_roster_get(vn_server_store(), host, user, contact_bare, &item) == VN_STORE_OK &&
                 item->listed;
    vn_roster_item_free(item);
    return found;
}

/* Archiving asks for the preferences of both parties of every message,
 * and nearly all are the empty document: a session of the account
 * remembers that they were (a session data slot), so the store is not read
 * for them again. set_prefs, the one writer of other preferences, forgets
 * it in all the account's sessions first. */
static const char empty_prefs_key; /* the slot's key and its only value */

/* Its own code, so the core drops the slots when the module unloads. */
static void forget_empty_prefs(void *data)
{
}

static bool forget_prefs_in_session(vn_session *s, void *ud)
{
    vn_session_set_data(s, &empty_prefs_key, NULL, NULL);
    return true;
}

static bool first_session(vn_session *s, void *ud)
{
    *(vn_session **)ud = s;
    return false;
}

/* XEP-0313 §7: whether user@host archives messages with contact. Makes
 * sure the account has a preferences document (see the top of the file).
 * session, if not NULL, is one of the account's. */
static bool archiving_wanted(const vn_module *m, vn_session *session, const char *host,
                             const char *user, const vn_jid *contact)
{
    vn_stanza *prefs = NULL; /* NULL: the empty document */

    if (!session || !vn_session_get_data(session, &empty_prefs_key)) {
        int rc;
        prefs = prefs_load(host, user, &rc);
        if (rc == VN_STORE_NOT_FOUND) {
            vn_stanza *empty = vn_stanza_new("prefs", MAM_NS);
            prefs_save(host, user, empty);
            vn_stanza_free(empty);
        }
        bool empty = rc == VN_STORE_NOT_FOUND || (prefs && !vn_stanza_attr(prefs, "default") &&
                                                  !vn_stanza_first_element(prefs));
        if (session && empty)
            vn_session_set_data(session, &empty_prefs_key, (void *)&empty_prefs_key,
                                forget_empty_prefs);
    }
    bool wanted;
    const char *def = prefs_default(m, prefs);
    if (listed(prefs, "never", contact))
        wanted = false;
    else if (listed(prefs, "always", contact))
        wanted = true;
    else if (strcmp(def, "roster") == 0)
        wanted = on_roster(host, user, contact->bare);
    else
        wanted = strcmp(def, "always") == 0;
    vn_stanza_free(prefs);
    return wanted;
}

/* ---- archiving ---- */

/* XEP-0353 §4 (and XEP-0313 §5.1.1's "meaningful" messages): a call's
 * proposal and what became of it are kept, so that a missed call shows
 * after reconnecting; <ringing/> is not. */
static bool is_call_signal(const vn_stanza *msg)
{
    const vn_stanza *jmi = vn_stanza_child(msg, NULL, NS_JMI);
    return jmi && strcmp(vn_stanza_name(jmi), "ringing") != 0;
}

static bool archivable(const vn_stanza *msg)
{
    const char *type = vn_stanza_attr(msg, "type");

    if (!vn_stanza_is(msg, "message", VN_NS_CLIENT))
        return false;
    if (type && strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0)
        return false;
    return (vn_stanza_child(msg, "body", VN_NS_CLIENT) || is_call_signal(msg)) &&
           !vn_stanza_child(msg, "no-store", NS_HINTS) &&
           !vn_stanza_child(msg, "no-permanent-store", NS_HINTS);
}

/* XEP-0359 §4: a stanza-id claiming to be by the archive's owner cannot
 * come from anywhere but this server. */
static void remove_forged_ids(vn_stanza *msg, const char *owner_bare)
{
    vn_stanza *child = vn_stanza_first_element(msg);

    while (child) {
        vn_stanza *next = vn_stanza_next_element(child);
        if (vn_stanza_is(child, "stanza-id", NS_SID)) {
            char *by =
                vn_jid_normalize(vn_stanza_attr(child, "by") ? vn_stanza_attr(child, "by") : "");
            if (by && strcmp(by, owner_bare) == 0)
                vn_stanza_remove(child);
            free(by);
        }
        child = next;
    }
}

static bool archive_append(const vn_jid *owner, const vn_jid *contact, const vn_stanza *msg,
                           uint64_t *id)
{
    size_t len;
    char *xml = vn_stanza_serialize(msg, VN_NS_CLIENT, &len);
    int rc = vn_archive_append(vn_server_store(), owner->domain, owner->local, MAM_ARCHIVE, 0,
                               contact->full, xml, len, id);
    free(xml);
    if (rc != VN_STORE_OK)
        vn_log_error("mam: cannot archive a message for %s", owner->bare);
    return rc == VN_STORE_OK;
}

/* "stanza/in": the sender's copy. */
static vn_hook_result archive_outgoing(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    vn_stanza *msg = ev->stanza;

    if (!ev->from || !ev->from->local || !archivable(msg))
        return VN_PASS;
    vn_jid *to = vn_jid_parse(vn_stanza_attr(msg, "to") ? vn_stanza_attr(msg, "to") : "");
    if (to && !vn_jid_bare_equal(to, ev->from)) {
        remove_forged_ids(msg, ev->from->bare);
        if (archiving_wanted(m, ev->session, ev->from->domain, ev->from->local, to))
            archive_append(ev->from, to, msg, NULL);
    }
    vn_jid_free(to);
    return VN_PASS;
}

/* "route/local": the recipient's copy, and its stanza-id on the message. */
static vn_hook_result archive_incoming(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    vn_stanza *msg = ev->stanza;
    uint64_t id;

    if (!vn_stanza_is(msg, "message", VN_NS_CLIENT))
        return VN_PASS;
    remove_forged_ids(msg, ev->to->bare);
    vn_session *session = NULL;
    vn_sessions_foreach(ev->to, first_session, &session);
    if (!archivable(msg) || !vn_account_exists(ev->to->domain, ev->to->local) ||
        !archiving_wanted(m, session, ev->to->domain, ev->to->local, ev->from) ||
        !archive_append(ev->to, ev->from, msg, &id))
        return VN_PASS;

    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)id);
    vn_stanza *sid = vn_stanza_add_child(msg, "stanza-id", NS_SID);
    vn_stanza_set_attr(sid, "by", ev->to->bare);
    vn_stanza_set_attr(sid, "id", text);
    return VN_PASS;
}

/* ---- queries ---- */

static void reply(const vn_stanza *iq, vn_stanza *payload)
{
    vn_stanza *result = vn_stanza_iq_result(iq);
    vn_stanza_append(result, payload);
    vn_route(result);
}

/* A page read, to be sent once what it shows is durable. */
typedef struct page_reply {
    vn_stanza *iq;
    vn_jid *owner, *asker;
    mam_query q;
    mam_page page;
} page_reply;

static void send_page(int status, void *arg)
{
    page_reply *r = arg;

    if (status != VN_STORE_OK) {
        vn_route_error(r->iq, "wait", "internal-server-error", NULL);
    } else {
        for (size_t i = 0; i < r->page.count; i++) {
            vn_stanza *result =
                mam_result_message(&r->q, &r->page.items[i], r->owner->bare, r->asker->full);
            /* Writing may end a session whose client stopped reading. */
            vn_session *session = vn_session_find(r->asker);
            if (result && session)
                vn_session_send(session, result);
            vn_stanza_free(result);
        }
        vn_route(mam_fin(r->iq, &r->page));
    }
    mam_page_free(&r->page);
    mam_query_free(&r->q);
    vn_jid_free(r->owner);
    vn_jid_free(r->asker);
    vn_stanza_free(r->iq);
    free(r);
}

static void run_query(const vn_module *m, const vn_event *ev, const vn_stanza *query)
{
    page_reply *r = vn_alloc(sizeof *r);
    const char *text = NULL;
    size_t max_page = (size_t)vn_module_config_int(m, "max_page");
    const char *condition = mam_query_parse(query, max_page, &r->q, &text);
    int rc = condition
                 ? VN_STORE_OK
                 : mam_query_run(vn_server_store(), ev->to->domain, ev->to->local, &r->q, &r->page);

    if (condition)
        vn_route_error(ev->stanza, "modify", condition, text);
    else if (rc == VN_STORE_NOT_FOUND)
        vn_route_error(ev->stanza, "cancel", "item-not-found", "No such id in the archive");
    else if (rc != VN_STORE_OK)
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
    if (condition || rc != VN_STORE_OK) {
        mam_page_free(&r->page);
        mam_query_free(&r->q);
        free(r);
        return;
    }
    /* The page may show messages archived in this very batch: only what is
     * on disk is shown to a client. */
    r->iq = vn_stanza_copy(ev->stanza);
    r->owner = vn_jid_copy(ev->to);
    r->asker = vn_jid_copy(ev->from);
    vn_store_when_durable(vn_server_store(), send_page, r);
}

/* XEP-0313 §4.1.3 (form discovery): the fields a query may use. */
static vn_stanza *query_form(void)
{
    static const char *const fields[][2] = {
        {"with", "jid-single"},      {"start", "text-single"},     {"end", "text-single"},
        {"after-id", "text-single"}, {"before-id", "text-single"}, {"ids", "text-multi"},
    };
    vn_stanza *query = vn_stanza_new("query", MAM_NS);
    vn_stanza *form = vn_stanza_add_child(query, "x", NS_DATA);
    vn_stanza_set_attr(form, "type", "form");
    vn_stanza *type = vn_stanza_add_child(form, "field", NS_DATA);
    vn_stanza_set_attr(type, "var", "FORM_TYPE");
    vn_stanza_set_attr(type, "type", "hidden");
    vn_stanza_add_text_child(type, "value", NS_DATA, MAM_NS);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        vn_stanza *field = vn_stanza_add_child(form, "field", NS_DATA);
        vn_stanza_set_attr(field, "var", fields[i][0]);
        vn_stanza_set_attr(field, "type", fields[i][1]);
    }
    return query;
}

static bool keep_item(const vn_archive_item *item, void *ud)
{
    vn_archive_item *out = ud;
    *out = (vn_archive_item){.id = item->id, .ts_us = item->ts_us};
    return false;
}

/* The oldest (or newest) item of the archive as <start/> (or <end/>). */
static bool add_bound(vn_stanza *metadata, const vn_jid *owner, bool newest)
{
    vn_archive_query one = {.limit = 1, .reverse = newest};
    vn_archive_item item = {0};
    char id[24], stamp[VN_DATETIME_SIZE];

    if (vn_archive_query_items(vn_server_store(), owner->domain, owner->local, MAM_ARCHIVE, &one,
                               keep_item, &item, NULL) != VN_STORE_OK)
        return false;
    if (!item.id)
        return true;
    snprintf(id, sizeof id, "%llu", (unsigned long long)item.id);
    vn_datetime_format(item.ts_us, stamp);
    vn_stanza *bound = vn_stanza_add_child(metadata, newest ? "end" : "start", MAM_NS);
    vn_stanza_set_attr(bound, "id", id);
    vn_stanza_set_attr(bound, "timestamp", stamp);
    return true;
}

/* XEP-0313 §6.1: the first and last items of the archive. */
static void send_metadata(const vn_event *ev)
{
    vn_stanza *metadata = vn_stanza_new("metadata", MAM_NS);

    if (!add_bound(metadata, ev->to, false) || !add_bound(metadata, ev->to, true)) {
        vn_stanza_free(metadata);
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        return;
    }
    reply(ev->stanza, metadata);
}

static void send_prefs(const vn_module *m, const vn_event *ev)
{
    int rc;
    vn_stanza *stored = prefs_load(ev->to->domain, ev->to->local, &rc);

    if (rc == VN_STORE_ERROR) {
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        return;
    }
    vn_stanza *prefs = vn_stanza_new("prefs", MAM_NS);
    vn_stanza_set_attr(prefs, "default", prefs_default(m, stored));
    for (int i = 0; i < 2; i++) {
        const char *list = i == 0 ? "always" : "never";
        const vn_stanza *jids = stored ? vn_stanza_child(stored, list, MAM_NS) : NULL;
        vn_stanza_append(prefs, jids ? vn_stanza_copy(jids) : vn_stanza_new(list, MAM_NS));
    }
    vn_stanza_free(stored);
    reply(ev->stanza, prefs);
}

/* The <always/> or <never/> list of a request, normalised into prefs. */
static bool copy_list(const vn_stanza *request, const char *list, vn_stanza *prefs)
{
    const vn_stanza *jids = vn_stanza_child(request, list, MAM_NS);
    vn_stanza *out = vn_stanza_add_child(prefs, list, MAM_NS);

    for (const vn_stanza *jid = jids ? vn_stanza_first_element(jids) : NULL; jid;
         jid = vn_stanza_next_element(jid)) {
        if (!vn_stanza_is(jid, "jid", MAM_NS))
            continue;
        char *canonical = vn_jid_normalize(vn_stanza_text(jid));
        if (!canonical)
            return false;
        vn_stanza_add_text_child(out, "jid", MAM_NS, canonical);
        free(canonical);
    }
    return true;
}

static void set_prefs(const vn_module *m, const vn_event *ev, const vn_stanza *request)
{
    const char *def = vn_stanza_attr(request, "default");
    vn_stanza *prefs = vn_stanza_new("prefs", MAM_NS);

    if (!valid_default(def)) {
        vn_route_error(ev->stanza, "modify", "bad-request",
                       "default must be always, never or roster");
    } else if (!copy_list(request, "always", prefs) || !copy_list(request, "never", prefs)) {
        vn_route_error(ev->stanza, "modify", "jid-malformed", NULL);
    } else {
        vn_stanza_set_attr(prefs, "default", def);
        vn_sessions_foreach(ev->to, forget_prefs_in_session, NULL);
        if (prefs_save(ev->to->domain, ev->to->local, prefs) == VN_STORE_OK) {
            vn_stanza *result = vn_stanza_iq_result(ev->stanza);
            vn_stanza_append(result, prefs);
            vn_route_durable(result);
            return;
        }
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
    }
    vn_stanza_free(prefs);
}

static bool own_archive(const vn_event *ev)
{
    if (vn_jid_bare_equal(ev->from, ev->to))
        return true;
    vn_route_error(ev->stanza, "auth", "forbidden", "Only the account's own archive");
    return false;
}

static vn_hook_result mam_get(vn_event *ev, void *ud)
{
    const vn_stanza *payload = vn_stanza_first_element(ev->stanza);
    const char *name = vn_stanza_name(payload);

    if (!own_archive(ev))
        return VN_HANDLED;
    if (strcmp(name, "query") == 0)
        reply(ev->stanza, query_form());
    else if (strcmp(name, "metadata") == 0)
        send_metadata(ev);
    else if (strcmp(name, "prefs") == 0)
        send_prefs(ud, ev);
    else
        vn_route_error(ev->stanza, "cancel", "feature-not-implemented", NULL);
    return VN_HANDLED;
}

static vn_hook_result mam_set(vn_event *ev, void *ud)
{
    const vn_stanza *payload = vn_stanza_first_element(ev->stanza);
    const char *name = vn_stanza_name(payload);

    if (!own_archive(ev))
        return VN_HANDLED;
    if (strcmp(name, "query") == 0)
        run_query(ud, ev, payload);
    else if (strcmp(name, "prefs") == 0)
        set_prefs(ud, ev, payload);
    else
        vn_route_error(ev->stanza, "cancel", "feature-not-implemented", NULL);
    return VN_HANDLED;
}

/* ---- retention ---- */

typedef struct user_list {
    char **names;
    size_t count;
} user_list;

static bool collect_user(const char *user, void *ud)
{
    user_list *users = ud;
    users->names = vn_realloc(users->names, (users->count + 1) * sizeof *users->names);
    users->names[users->count++] = vn_strdup(user);
    return true;
}

static void purge_old_items(vn_timer *t, void *ud)
{
    const vn_module *m = ud;
    int64_t before_us = vn_now_us() - vn_module_config_int(m, "retention_days") * US_PER_DAY;
    vn_store *store = vn_server_store();

    for (const char *const *host = vn_local_hosts(); *host; host++) {
        user_list users = {0};
        if (vn_store_foreach_user(store, *host, PREFS_STORE, collect_user, &users) != VN_STORE_OK)
            vn_log_error("mam: cannot list the archives of %s", *host);
        for (size_t i = 0; i < users.count; i++) {
            if (users.names[i][0] &&
                vn_archive_delete_before(store, *host, users.names[i], MAM_ARCHIVE, before_us) !=
                    VN_STORE_OK)
                vn_log_error("mam: cannot purge the archive of %s@%s", users.names[i], *host);
            free(users.names[i]);
        }
        free(users.names);
    }
}

static void retention_start(vn_module *m)
{
    if (vn_module_config_int(m, "retention_days") > 0)
        purge_timer = vn_timer_start(PURGE_FIRST_MS, PURGE_EVERY_MS, purge_old_items, m);
}

static void retention_stop(void)
{
    if (purge_timer)
        vn_timer_stop(purge_timer);
    purge_timer = NULL;
}

/* ---- module ---- */

static const char *const features[] = {MAM_NS, MAM_NS_EXTENDED, NS_SID};

/* The archive is the account's: its features go on the bare JID too. */
static vn_hook_result account_features(vn_event *ev, void *ud)
{
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        vn_stanza *f = vn_stanza_add_child(ev->data, "feature", vn_stanza_ns(ev->data));
        vn_stanza_set_attr(f, "var", features[i]);
    }
    return VN_PASS;
}

static int mam_load(vn_module *m)
{
    vn_hook_add("stanza/in", ARCHIVE_PRIORITY, archive_outgoing, m);
    vn_hook_add("route/local", ARCHIVE_PRIORITY, archive_incoming, m);
    vn_hook_add("iq-get/bare/" MAM_NS, 0, mam_get, m);
    vn_hook_add("iq-set/bare/" MAM_NS, 0, mam_set, m);
    vn_hook_add("disco/account-info", 0, account_features, m);
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
        vn_disco_add_feature(features[i]);
    retention_start(m);
    return 0;
}

static void mam_unload(vn_module *m)
{
    retention_stop();
    vn_hook_remove("stanza/in", archive_outgoing, m);
    vn_hook_remove("route/local", archive_incoming, m);
    vn_hook_remove("iq-get/bare/" MAM_NS, mam_get, m);
    vn_hook_remove("iq-set/bare/" MAM_NS, mam_set, m);
    vn_hook_remove("disco/account-info", account_features, m);
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
        vn_disco_remove_feature(features[i]);
}

static void mam_reload(vn_module *m)
{
    retention_stop();
    retention_start(m);
}

VN_MODULE("mam", "Message Archive Management (XEP-0313) with stanza ids (XEP-0359)", mam_keys,
          mam_load, mam_unload, mam_reload);
