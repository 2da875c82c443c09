/*
 * mod_roster.c - the roster protocol, jabber:iq:roster (RFC 6121 §2).
 *
 * Roster get (with versioning, §2.6), roster set (add, update, remove) with
 * the validation of §2.3.3, and roster pushes to the account's interested
 * resources: those that asked for the roster in this session. The items
 * live in the core's roster store (vestnik/roster.h), which the presence
 * module changes too; every change announces itself through
 * "roster/changed", and this module turns it into pushes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_ROSTER_VER "urn:xmpp:features:rosterver"

/* A session's interest in pushes, in the slot keyed by the module. */
typedef struct roster_interest {
    bool versioned; /* the client sent 'ver': pushes carry it too */
} roster_interest;

static const vn_config_key roster_config[] = {
    {.name = "max_items", .type = VN_CONF_INT, .default_value = "1000", .min = 1, .max = 1000000},
    {.name = NULL},
};

static uint64_t push_counter;

static void reply_error(vn_event *ev, const char *type, const char *condition, const char *text)
{
    vn_route_error(ev->stanza, type, condition, text);
}

static void reply_store_error(vn_event *ev)
{
    reply_error(ev, "wait", "internal-server-error", N_("The roster could not be read or saved"));
}

/* Only the account itself may read or change its roster (RFC 6121 §2.1.5). */
static bool from_owner(const vn_event *ev)
{
    return ev->from && ev->to && vn_jid_bare_equal(ev->from, ev->to);
}

static void version_text(uint64_t version, char *out, size_t size)
{
    snprintf(out, size, "%" PRIu64, version);
}

/* ---- roster get ---- */

static bool add_listed_item(const vn_roster_item *item, void *ud)
{
    if (item->listed)
        vn_roster_item_to_stanza(item, ud);
    return true;
}

static vn_hook_result roster_get(vn_event *ev, void *ud)
{
    vn_module *m = ud;
    if (!from_owner(ev)) {
        reply_error(ev, "auth", "forbidden", N_("Not your roster"));
        return VN_HANDLED;
    }
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", VN_NS_ROSTER);
    if (!query) { /* the payload is in the roster namespace but no <query/> */
        reply_error(ev, "modify", "bad-request", N_("Expected <query xmlns='jabber:iq:roster'/>"));
        return VN_HANDLED;
    }
    const char *client_ver = vn_stanza_attr(query, "ver");
    vn_store *store = vn_server_store();
    const char *host = ev->to->domain, *user = ev->to->local;
    uint64_t version;
    if (vn_roster_version(store, host, user, &version) != VN_STORE_OK) {
        reply_store_error(ev);
        return VN_HANDLED;
    }

    vn_session *session = vn_session_find(ev->from);
    if (session) {
        roster_interest *interest = vn_alloc(sizeof *interest);
        interest->versioned = client_ver != NULL;
        vn_session_set_data(session, m, interest, free);
    }

    char ver[24];
    version_text(version, ver, sizeof ver);
    vn_stanza *result = vn_stanza_iq_result(ev->stanza);
    /* §2.6.3: an unchanged roster is an empty result; changes come as pushes. */
    if (client_ver && strcmp(client_ver, ver) == 0) {
        vn_route(result);
        return VN_HANDLED;
    }
    vn_stanza *items = vn_stanza_add_child(result, "query", VN_NS_ROSTER);
    if (client_ver)
        vn_stanza_set_attr(items, "ver", ver);
    if (vn_roster_foreach(store, host, user, add_listed_item, items) != VN_STORE_OK) {
        vn_stanza_free(result);
        reply_store_error(ev);
        return VN_HANDLED;
    }
    vn_route(result);
    return VN_HANDLED;
}

/* ---- roster set ---- */

static void send_from_account(const vn_jid *account, const char *contact, const char *type)
{
    vn_stanza *p = vn_stanza_new("presence", VN_NS_CLIENT);
    vn_stanza_set_attr(p, "from", account->bare);
    vn_stanza_set_attr(p, "to", contact);
    vn_stanza_set_attr(p, "type", type);
    vn_route(p);
}

typedef struct withdraw_ctx {
    const char *contact;
} withdraw_ctx;

static bool withdraw_presence(vn_session *s, void *ud)
{
    const withdraw_ctx *ctx = ud;
    if (!vn_session_available(s))
        return true;
    vn_stanza *p = vn_stanza_new("presence", VN_NS_CLIENT);
    vn_stanza_set_attr(p, "from", vn_session_jid(s)->full);
    vn_stanza_set_attr(p, "to", ctx->contact);
    vn_stanza_set_attr(p, "type", "unavailable");
    vn_route(p);
    return true;
}

/* §2.5.2: removing an item cancels the subscriptions both ways. */
static void roster_remove(vn_event *ev, const char *contact)
{
    vn_store *store = vn_server_store();
    const char *host = ev->to->domain, *user = ev->to->local;
    vn_roster_item *item = NULL;
    int rc = vn_roster_get(store, host, user, contact, &item);
    if (rc == VN_STORE_NOT_FOUND || (rc == VN_STORE_OK && !item->listed)) {
        vn_roster_item_free(item);
        reply_error(ev, "cancel", "item-not-found", NULL);
        return;
    }
    if (rc != VN_STORE_OK) {
        reply_store_error(ev);
        return;
    }
    if (vn_roster_remove(store, host, user, contact, NULL) != VN_STORE_OK) {
        vn_roster_item_free(item);
        reply_store_error(ev);
        return;
    }
    if (vn_subscription_has_from(item->subscription) || item->pending_in) {
        send_from_account(ev->to, contact, "unsubscribed");
        if (vn_subscription_has_from(item->subscription)) {
            withdraw_ctx ctx = {contact};
            vn_sessions_foreach(ev->to, withdraw_presence, &ctx);
        }
    }
    if (vn_subscription_has_to(item->subscription) || item->ask)
        send_from_account(ev->to, contact, "unsubscribe");
    vn_roster_item_free(item);
    vn_route_durable(vn_stanza_iq_result(ev->stanza));
}

/* §2.3.3: groups must be non-empty, within limits and distinct. Sets
 * *condition and returns false otherwise. */
static bool read_groups(const vn_stanza *el, vn_roster_item *item, const char **condition)
{
    for (vn_stanza *g = vn_stanza_first_element(el); g; g = vn_stanza_next_element(g)) {
        if (!vn_stanza_is(g, "group", VN_NS_ROSTER))
            continue;
        const char *name = vn_stanza_text(g);
        size_t len = strlen(name);
        if (len == 0 || len > VN_ROSTER_MAX_TEXT || item->n_groups >= VN_ROSTER_MAX_GROUPS) {
            *condition = "not-acceptable";
            return false;
        }
        if (!vn_roster_item_add_group(item, name)) {
            *condition = "bad-request";
            return false;
        }
    }
    return true;
}

static void roster_update(vn_event *ev, const vn_stanza *el, const char *contact)
{
    vn_store *store = vn_server_store();
    const char *host = ev->to->domain, *user = ev->to->local;
    const char *name = vn_stanza_attr(el, "name");
    if (name && strlen(name) > VN_ROSTER_MAX_TEXT) {
        reply_error(ev, "modify", "not-acceptable", N_("The name is too long"));
        return;
    }
    vn_roster_item *item = NULL;
    int rc = vn_roster_get(store, host, user, contact, &item);
    if (rc == VN_STORE_NOT_FOUND)
        item = vn_roster_item_new(contact);
    else if (rc != VN_STORE_OK) {
        reply_store_error(ev);
        return;
    }
    vn_roster_item_clear_groups(item);
    const char *condition = NULL;
    if (!read_groups(el, item, &condition)) {
        vn_roster_item_free(item);
        reply_error(ev, "modify", condition, NULL);
        return;
    }
    free(item->name);
    item->name = name && *name ? vn_strdup(name) : NULL;
    item->listed = true;
    rc = vn_roster_put(store, host, user, item, NULL);
    vn_roster_item_free(item);
    if (rc == VN_ROSTER_FULL)
        reply_error(ev, "cancel", "not-allowed", N_("The roster is full"));
    else if (rc != VN_STORE_OK)
        reply_store_error(ev);
    else
        vn_route_durable(vn_stanza_iq_result(ev->stanza));
}

static vn_hook_result roster_set(vn_event *ev, void *ud)
{
    if (!from_owner(ev)) {
        reply_error(ev, "auth", "forbidden", N_("Not your roster"));
        return VN_HANDLED;
    }
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", VN_NS_ROSTER);
    const vn_stanza *el = query ? vn_stanza_first_element(query) : NULL;
    if (!el || vn_stanza_element_count(query) != 1 || !vn_stanza_is(el, "item", VN_NS_ROSTER)) {
        reply_error(ev, "modify", "bad-request", N_("A roster set carries exactly one item"));
        return VN_HANDLED;
    }
    vn_jid *contact = vn_jid_parse(vn_stanza_attr(el, "jid") ? vn_stanza_attr(el, "jid") : "");
    if (!contact) {
        reply_error(ev, "modify", "jid-malformed", NULL);
        return VN_HANDLED;
    }
    if (contact->resource) {
        reply_error(ev, "modify", "bad-request", N_("A roster item is a bare JID"));
    } else {
        /* §2.1.2.5: every 'subscription' value but "remove" is ignored. */
        const char *sub = vn_stanza_attr(el, "subscription");
        if (sub && strcmp(sub, "remove") == 0)
            roster_remove(ev, contact->bare);
        else
            roster_update(ev, el, contact->bare);
    }
    vn_jid_free(contact);
    return VN_HANDLED;
}

/* ---- pushes ---- */

typedef struct push_ctx {
    const vn_module *m;
    const vn_roster_change *change;
    const char *bare;
} push_ctx;

static bool push_to_session(vn_session *s, void *ud)
{
    const push_ctx *ctx = ud;
    const roster_interest *interest = vn_session_get_data(s, ctx->m);
    if (!interest)
        return true;
    char id[48], ver[24];
    snprintf(id, sizeof id, "push-%" PRIu64, ++push_counter);
    version_text(ctx->change->version, ver, sizeof ver);

    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    vn_stanza_set_attr(iq, "type", "set");
    vn_stanza_set_attr(iq, "id", id);
    vn_stanza_set_attr(iq, "from", ctx->bare);
    vn_stanza_set_attr(iq, "to", vn_session_jid(s)->full);
    vn_stanza *query = vn_stanza_add_child(iq, "query", VN_NS_ROSTER);
    if (interest->versioned)
        vn_stanza_set_attr(query, "ver", ver);
    if (ctx->change->removed) {
        vn_stanza *el = vn_stanza_add_child(query, "item", VN_NS_ROSTER);
        vn_stanza_set_attr(el, "jid", ctx->change->item->jid);
        vn_stanza_set_attr(el, "subscription", "remove");
    } else {
        vn_roster_item_to_stanza(ctx->change->item, query);
    }
    vn_session_send(s, iq);
    vn_stanza_free(iq);
    return true;
}

static vn_hook_result roster_changed(vn_event *ev, void *ud)
{
    const vn_roster_change *change = ev->data;
    vn_jid *account = vn_jid_make(change->user, ev->host, NULL);
    if (!account)
        return VN_PASS;
    push_ctx ctx = {ud, change, account->bare};
    vn_sessions_foreach(account, push_to_session, &ctx);
    vn_jid_free(account);
    return VN_PASS;
}

static vn_hook_result add_stream_feature(vn_event *ev, void *ud)
{
    vn_stanza_add_child(ev->data, "ver", NS_ROSTER_VER);
    return VN_PASS;
}

/* ---- module ---- */

static void roster_configure(vn_module *m)
{
    vn_roster_set_max_items((size_t)vn_module_config_int(m, "max_items"));
}

static int roster_load(vn_module *m)
{
    roster_configure(m);
    vn_hook_add("iq-get/bare/" VN_NS_ROSTER, 0, roster_get, m);
    vn_hook_add("iq-set/bare/" VN_NS_ROSTER, 0, roster_set, m);
    vn_hook_add("roster/changed", 0, roster_changed, m);
    vn_hook_add("stream/features", 0, add_stream_feature, m);
    return 0;
}

static void roster_unload(vn_module *m)
{
    vn_hook_remove("iq-get/bare/" VN_NS_ROSTER, roster_get, m);
    vn_hook_remove("iq-set/bare/" VN_NS_ROSTER, roster_set, m);
    vn_hook_remove("roster/changed", roster_changed, m);
    vn_hook_remove("stream/features", add_stream_feature, m);
    vn_roster_set_max_items(VN_ROSTER_DEFAULT_MAX_ITEMS);
}

VN_MODULE("roster", "Roster management (RFC 6121 §2) with versioning", roster_config, roster_load,
          roster_unload, roster_configure);
