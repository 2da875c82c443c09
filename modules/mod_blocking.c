/*
 * mod_blocking.c - Blocking Command (XEP-0191).
 *
 * Each account's blocklist is a set of documents in the store (store
 * "blocklist", one key per blocked JID in canonical form, empty value), so
 * it survives restarts and is read back in key order. A JID matches an
 * entry by the XEP-0191 §3 (XEP-0016) rules: user@domain/resource matches
 * only itself, user@domain any of its resources, domain/resource only
 * itself, and domain the domain, everything at it and its subdomains.
 *
 * Stanzas from a blocked entity to the account are stopped on
 * "route/local" the way §3.3 says (presence silently, messages and iq
 * requests with <service-unavailable/>, iq results silently), so the
 * account looks offline. Stanzas the account's clients send to a blocked
 * entity are stopped on "stanza/in": messages and iq requests come back
 * with <not-acceptable/> and <blocked xmlns='urn:xmpp:blocking:errors'/>;
 * presence and iq results, which a client does not expect errors for, are
 * dropped.
 *
 * Blocking sends the blocked entity unavailable presence from each of the
 * account's available resources, if it is a contact allowed to see the
 * presence (XEP-0191 §3.3: a subscription 'from' the account in the
 * roster); anyone else would learn the account's resources from it.
 * Unblocking a user JID must give the contact
 * the account's current presence again if the contact may see it (§3.4):
 * the module routes a probe from that JID to the account, which the
 * presence module answers by exactly those rules.
 *
 * A blocklist holds at most max_items entries: a block that would grow it
 * beyond that is refused whole with <policy-violation/> (XEP-0191 leaves
 * limits to the server; the entries already there keep working).
 *
 * Both filters run for every message, and most blocklists are empty: a
 * session of the account remembers that its blocklist was empty (a session
 * data slot), so the common case reads nothing from the store. Every block
 * or unblock of the account forgets it in all the account's sessions
 * before writing; this module is the only writer of the blocklist.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/module.h>

#define NS_BLOCKING "urn:xmpp:blocking"
#define NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"
#define BLOCKLIST_STORE "blocklist"

/* ---- the blocklist in the store ---- */

static bool has_entry(const char *host, const char *user, const char *jid)
{
    vn_buf value;
    vn_buf_init(&value);
    int rc = vn_store_get(vn_server_store(), host, user, BLOCKLIST_STORE, jid, &value);
    vn_buf_free(&value);
    return rc == VN_STORE_OK;
}

/* Does the blocklist of user@host match contact? Most specific first. */
static bool is_blocked(const char *host, const char *user, const vn_jid *contact)
{
    if (contact->resource && has_entry(host, user, contact->full))
        return true;
    if (contact->local && has_entry(host, user, contact->bare))
        return true;
    if (contact->resource && contact->local) {
        char *domain_resource = vn_asprintf("%s/%s", contact->domain, contact->resource);
        bool blocked = has_entry(host, user, domain_resource);
        free(domain_resource);
        if (blocked)
            return true;
    }
    for (const char *domain = contact->domain; domain; domain = strchr(domain, '.')) {
        if (*domain == '.')
            domain++;
        if (has_entry(host, user, domain))
            return true;
    }
    return false;
}

/* ---- "the blocklist is empty", remembered per session ---- */

static const char empty_list_key; /* the slot's key and its only value */

/* Its own code, so the core drops the slots when the module unloads. */
static void forget_empty(void *data)
{
}

static bool any_entry(const char *key, const void *value, size_t len, void *ud)
{
    *(bool *)ud = true;
    return false;
}

/* Is user@host's blocklist empty? session (may be NULL) is one of the
 * account's and remembers the answer when it is yes. */
static bool blocklist_empty(vn_session *session, const char *host, const char *user)
{
    if (session && vn_session_get_data(session, &empty_list_key))
        return true;
    bool found = false;
    if (vn_store_foreach(vn_server_store(), host, user, BLOCKLIST_STORE, any_entry, &found) !=
            VN_STORE_OK ||
        found)
        return false;
    if (session)
        vn_session_set_data(session, &empty_list_key, (void *)&empty_list_key, forget_empty);
    return true;
}

static bool forget_in_session(vn_session *s, void *ud)
{
    vn_session_set_data(s, &empty_list_key, NULL, NULL);
    return true;
}

static bool first_session(vn_session *s, void *ud)
{
    *(vn_session **)ud = s;
    return false;
}

static bool count_entry(const char *key, const void *value, size_t len, void *ud)
{
    ++*(size_t *)ud;
    return true;
}

/* How many of the command's items user@host's blocklist lacks. */
static size_t new_entries(const char *host, const char *user, const vn_stanza *command)
{
    size_t added = 0;
    for (const vn_stanza *item = vn_stanza_first_element(command); item;
         item = vn_stanza_next_element(item))
        added += !has_entry(host, user, vn_stanza_attr(item, "jid"));
    return added;
}

/* Would the block command grow user@host's blocklist beyond max_items?
 * VN_STORE_OK and *full set, or a store error. */
static int check_room(const vn_module *m, const char *host, const char *user,
                      const vn_stanza *command, bool *full)
{
    size_t entries = 0;
    int rc =
        vn_store_foreach(vn_server_store(), host, user, BLOCKLIST_STORE, count_entry, &entries);
    *full = rc == VN_STORE_OK && (long long)(entries + new_entries(host, user, command)) >
                                     vn_module_config_int(m, "max_items");
    return rc;
}

static bool add_item(const char *key, const void *value, size_t len, void *ud)
{
    vn_stanza *item = vn_stanza_add_child(ud, "item", NS_BLOCKING);
    vn_stanza_set_attr(item, "jid", key);
    return true;
}

/* ---- client requests ---- */

static bool from_account_itself(const vn_event *ev)
{
    return ev->from && ev->to && vn_jid_bare_equal(ev->from, ev->to);
}

static vn_hook_result blocklist_get(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    const vn_stanza *payload = vn_stanza_first_element(ev->stanza);

    if (!from_account_itself(ev))
        return VN_PASS;
    if (!vn_stanza_is(payload, "blocklist", NS_BLOCKING)) {
        vn_route_error(ev->stanza, "modify", "bad-request", NULL);
        return VN_HANDLED;
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *list = vn_stanza_add_child(reply, "blocklist", NS_BLOCKING);
    if (vn_store_foreach(vn_server_store(), ev->host, ev->to->local, BLOCKLIST_STORE, add_item,
                         list) != VN_STORE_OK) {
        vn_stanza_free(reply);
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        return VN_HANDLED;
    }
    /* This resource now gets the pushes (XEP-0191 §3.3). */
    vn_session *session = vn_session_find(ev->from);
    if (session)
        vn_session_set_data(session, m, (void *)m, NULL);
    vn_route(reply);
    return VN_HANDLED;
}

typedef struct push_context {
    const vn_module *m;
    const vn_stanza *command; /* <block/> or <unblock/> as applied */
    const char *bare;
} push_context;

static bool push_to_resource(vn_session *s, void *ud)
{
    static unsigned push_counter;
    push_context *ctx = ud;
    char id[32];

    if (!vn_session_get_data(s, ctx->m))
        return true;
    snprintf(id, sizeof id, "blocking-push-%u", ++push_counter);
    vn_stanza *push = vn_stanza_new("iq", VN_NS_CLIENT);
    vn_stanza_set_attr(push, "type", "set");
    vn_stanza_set_attr(push, "id", id);
    vn_stanza_set_attr(push, "from", ctx->bare);
    vn_stanza_set_attr(push, "to", vn_session_jid(s)->full);
    vn_stanza_append(push, vn_stanza_copy(ctx->command));
    vn_session_send(s, push);
    vn_stanza_free(push);
    return true;
}

/* Whether contact (a JID text) has a subscription 'from' the account. */
static bool sees_presence(const vn_jid *account, const char *contact)
{
    vn_jid *jid = vn_jid_parse(contact);
    vn_roster_item *item = NULL;
    bool sees = jid && jid->local &&
                vn_roster_get(vn_server_store(), account->domain, account->local, jid->bare,
                              &item) == VN_STORE_OK &&
                vn_subscription_has_from(item->subscription);
    vn_roster_item_free(item);
    vn_jid_free(jid);
    return sees;
}

/* Unavailable presence from this resource to every blocked contact that
 * sees the account's presence. */
static bool send_unavailable(vn_session *s, void *ud)
{
    const vn_stanza *command = ud;

    if (!vn_session_available(s))
        return true;
    for (const vn_stanza *item = vn_stanza_first_element(command); item;
         item = vn_stanza_next_element(item)) {
        const char *jid = vn_stanza_attr(item, "jid");
        if (!sees_presence(vn_session_jid(s), jid))
            continue;
        vn_stanza *presence = vn_stanza_new("presence", VN_NS_CLIENT);
        vn_stanza_set_attr(presence, "type", "unavailable");
        vn_stanza_set_attr(presence, "from", vn_session_jid(s)->full);
        vn_stanza_set_attr(presence, "to", jid);
        vn_route(presence);
    }
    return true;
}

/* The command's items with canonical JIDs, or NULL (*condition set). */
static vn_stanza *canonical_command(const vn_stanza *payload, const char **condition)
{
    bool block = strcmp(vn_stanza_name(payload), "block") == 0;
    vn_stanza *command = vn_stanza_new(vn_stanza_name(payload), NS_BLOCKING);

    for (const vn_stanza *item = vn_stanza_first_element(payload); item;
         item = vn_stanza_next_element(item)) {
        if (!vn_stanza_is(item, "item", NS_BLOCKING))
            continue;
        const char *jid = vn_stanza_attr(item, "jid");
        char *canonical = jid ? vn_jid_normalize(jid) : NULL;
        if (!canonical) {
            *condition = "jid-malformed";
            vn_stanza_free(command);
            return NULL;
        }
        vn_stanza_set_attr(vn_stanza_add_child(command, "item", NS_BLOCKING), "jid", canonical);
        free(canonical);
    }
    if (block && vn_stanza_element_count(command) == 0) {
        *condition = "bad-request"; /* §3.3: a block needs at least one item */
        vn_stanza_free(command);
        return NULL;
    }
    return command;
}

/* Applies command; the items an unblock removed are added to unblocked. */
static int apply_command(const char *host, const char *user, const vn_stanza *command,
                         vn_stanza *unblocked)
{
    vn_store *store = vn_server_store();
    bool block = strcmp(vn_stanza_name(command), "block") == 0;

    if (!block && vn_stanza_element_count(command) == 0) {
        /* Unblock all: delete every key of the list. */
        int rc = vn_store_foreach(store, host, user, BLOCKLIST_STORE, add_item, unblocked);
        for (const vn_stanza *item = vn_stanza_first_element(unblocked); rc == VN_STORE_OK && item;
             item = vn_stanza_next_element(item))
            rc = vn_store_delete(store, host, user, BLOCKLIST_STORE, vn_stanza_attr(item, "jid"));
        return rc;
    }
    for (const vn_stanza *item = vn_stanza_first_element(command); item;
         item = vn_stanza_next_element(item)) {
        const char *jid = vn_stanza_attr(item, "jid");
        int rc = block ? vn_store_put(store, host, user, BLOCKLIST_STORE, jid, "", 0)
                       : vn_store_delete(store, host, user, BLOCKLIST_STORE, jid);
        if (rc != VN_STORE_OK)
            return rc;
        if (!block)
            add_item(jid, NULL, 0, unblocked);
    }
    return VN_STORE_OK;
}

/* XEP-0191 §3.4: each unblocked user JID probes the account, so the
 * presence module sends it the account's current presence if its
 * subscription allows (and nothing otherwise). */
static void probe_for_unblocked(const vn_jid *account, const vn_stanza *unblocked)
{
    for (const vn_stanza *item = vn_stanza_first_element(unblocked); item;
         item = vn_stanza_next_element(item)) {
        const char *jid = vn_stanza_attr(item, "jid");
        if (!strchr(jid, '@'))
            continue;
        vn_stanza *probe = vn_stanza_new("presence", VN_NS_CLIENT);
        vn_stanza_set_attr(probe, "type", "probe");
        vn_stanza_set_attr(probe, "from", jid);
        vn_stanza_set_attr(probe, "to", account->bare);
        vn_route(probe);
    }
}

static vn_hook_result blocklist_set(vn_event *ev, void *ud)
{
    const vn_stanza *payload = vn_stanza_first_element(ev->stanza);
    const char *condition = NULL;

    if (!from_account_itself(ev))
        return VN_PASS;
    if (!vn_stanza_is(payload, "block", NS_BLOCKING) &&
        !vn_stanza_is(payload, "unblock", NS_BLOCKING)) {
        vn_route_error(ev->stanza, "modify", "bad-request", NULL);
        return VN_HANDLED;
    }
    vn_stanza *command = canonical_command(payload, &condition);
    if (!command) {
        vn_route_error(ev->stanza, "modify", condition, NULL);
        return VN_HANDLED;
    }
    bool full = false;
    if (strcmp(vn_stanza_name(command), "block") == 0 &&
        check_room(ud, ev->host, ev->to->local, command, &full) != VN_STORE_OK) {
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        vn_stanza_free(command);
        return VN_HANDLED;
    }
    if (full) {
        vn_log_info("blocking: the blocklist of %s is full", ev->to->bare);
        vn_route_error(ev->stanza, "modify", "policy-violation",
                       "The blocklist is full: unblock something first");
        vn_stanza_free(command);
        return VN_HANDLED;
    }
    vn_sessions_foreach(ev->to, forget_in_session, NULL);
    vn_stanza *unblocked = vn_stanza_new("unblock", NS_BLOCKING);
    if (apply_command(ev->host, ev->to->local, command, unblocked) != VN_STORE_OK) {
        vn_log_error("blocking: cannot update the blocklist of %s", ev->to->bare);
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        vn_stanza_free(unblocked);
        vn_stanza_free(command);
        return VN_HANDLED;
    }
    vn_route_durable(vn_stanza_iq_result(ev->stanza));

    push_context push = {.m = ud, .command = command, .bare = ev->to->bare};
    vn_sessions_foreach(ev->to, push_to_resource, &push);
    if (strcmp(vn_stanza_name(command), "block") == 0)
        vn_sessions_foreach(ev->to, send_unavailable, command);
    probe_for_unblocked(ev->to, unblocked);
    vn_stanza_free(unblocked);
    vn_stanza_free(command);
    return VN_HANDLED;
}

/* ---- enforcement ---- */

static bool is_iq_request(const vn_stanza *st)
{
    const char *type = vn_stanza_attr(st, "type");
    return strcmp(vn_stanza_name(st), "iq") == 0 && type &&
           (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
}

/* Inbound: from a blocked entity to a local account. */
static vn_hook_result filter_inbound(vn_event *ev, void *ud)
{
    if (!ev->from || vn_jid_bare_equal(ev->from, ev->to))
        return VN_PASS;
    vn_session *session = NULL;
    vn_sessions_foreach(ev->to, first_session, &session);
    if (blocklist_empty(session, ev->to->domain, ev->to->local) ||
        !is_blocked(ev->to->domain, ev->to->local, ev->from))
        return VN_PASS;
    const char *name = vn_stanza_name(ev->stanza);
    if (strcmp(name, "message") == 0 || is_iq_request(ev->stanza))
        vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
    vn_log_debug("blocking: stopped <%s/> from %s to %s", name, ev->from->full, ev->to->full);
    return VN_HANDLED;
}

/* Outbound: from one of the account's clients to a blocked entity. */
static vn_hook_result filter_outbound(vn_event *ev, void *ud)
{
    const vn_jid *me = vn_session_jid(ev->session);
    if (blocklist_empty(ev->session, me->domain, me->local))
        return VN_PASS;
    vn_jid *to = vn_jid_parse(vn_stanza_attr(ev->stanza, "to"));

    if (!to || vn_jid_bare_equal(to, me) || !is_blocked(me->domain, me->local, to)) {
        vn_jid_free(to);
        return VN_PASS;
    }
    vn_jid_free(to);
    if (strcmp(vn_stanza_name(ev->stanza), "message") != 0 && !is_iq_request(ev->stanza))
        return VN_HANDLED;
    vn_stanza *reply = vn_stanza_error_reply(ev->stanza, "cancel", "not-acceptable", NULL);
    if (!reply)
        return VN_HANDLED;
    vn_stanza *error = vn_stanza_child(reply, "error", NULL);
    vn_stanza_add_child(error, "blocked", NS_BLOCKING_ERRORS);
    vn_session_send(ev->session, reply);
    vn_stanza_free(reply);
    return VN_HANDLED;
}

/* ---- module ---- */

static const vn_config_key blocking_keys[] = {
    {.name = "max_items", .type = VN_CONF_INT, .default_value = "1000", .min = 1, .max = 1000000},
    {.name = NULL},
};

/* Filters run before anything else looks at the stanza. */
#define FILTER_PRIORITY 1000

static int blocking_load(vn_module *m)
{
    vn_hook_add("iq-get/bare/" NS_BLOCKING, 0, blocklist_get, m);
    vn_hook_add("iq-set/bare/" NS_BLOCKING, 0, blocklist_set, m);
    vn_hook_add("route/local", FILTER_PRIORITY, filter_inbound, m);
    vn_hook_add("stanza/in", FILTER_PRIORITY, filter_outbound, m);
    vn_disco_add_feature(NS_BLOCKING);
    return 0;
}

static void blocking_unload(vn_module *m)
{
    vn_hook_remove("iq-get/bare/" NS_BLOCKING, blocklist_get, m);
    vn_hook_remove("iq-set/bare/" NS_BLOCKING, blocklist_set, m);
    vn_hook_remove("route/local", filter_inbound, m);
    vn_hook_remove("stanza/in", filter_outbound, m);
    vn_disco_remove_feature(NS_BLOCKING);
}

VN_MODULE("blocking", "Blocking Command (XEP-0191)", blocking_keys, blocking_load, blocking_unload,
          NULL);
