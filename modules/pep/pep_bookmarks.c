/*
 * pep_bookmarks.c - XEP-0048 bookmarks kept in XEP-0402's node (XEP-0402
 * §5, urn:xmpp:bookmarks:1#compat and #compat-pep).
 *
 * The bookmarks live in one place: the PEP node urn:xmpp:bookmarks:1, one
 * item per conference (id = room JID), whitelist access, max_items 'max'.
 * Clients that still speak XEP-0048 see the same bookmarks as a
 * <storage xmlns='storage:bookmarks'/> document, through either
 *   - Private XML Storage (XEP-0049): a get or set of storage:bookmarks is
 *     taken here, before mod_private, and everything else left to it;
 *   - the PEP node storage:bookmarks, a view with one item 'current'.
 * Writing a <storage/> replaces the bookmarks: conferences it no longer
 * lists are retracted, new or changed ones published, so XEP-0402 clients
 * get notified. URL bookmarks have no XEP-0402 form and are not kept.
 * Private storage still answers with what it stored itself until the
 * account has XEP-0402 bookmarks.
 */
#include <stdlib.h>
#include <string.h>

#include "pep.h"

#define NS_PRIVATE "jabber:iq:private"
#define LEGACY_ITEM_ID "current"
/* Before mod_private, which answers every jabber:iq:private request. */
#define PRIVATE_PRIORITY 10

/* Set while a <storage/> is imported, so the legacy view is announced once
 * at the end rather than per conference. */
static bool importing;

bool pep_bookmarks_is_legacy_node(const char *node_name)
{
    return strcmp(node_name, NS_BOOKMARKS_LEGACY) == 0;
}

static bool is_true(const char *value)
{
    return value && (strcmp(value, "true") == 0 || strcmp(value, "1") == 0);
}

/* ---- conversions ---- */

/* XEP-0402 <conference/> for a legacy one (jid already checked). */
static vn_stanza *conference_from_legacy(const vn_stanza *legacy)
{
    vn_stanza *conf = vn_stanza_new("conference", NS_BOOKMARKS2);
    vn_stanza *extensions = NULL;

    if (vn_stanza_attr(legacy, "name"))
        vn_stanza_set_attr(conf, "name", vn_stanza_attr(legacy, "name"));
    if (is_true(vn_stanza_attr(legacy, "autojoin")))
        vn_stanza_set_attr(conf, "autojoin", "true");
    for (const vn_stanza *e = vn_stanza_first_element(legacy); e; e = vn_stanza_next_element(e)) {
        if (vn_stanza_is(e, "nick", NS_BOOKMARKS_LEGACY) ||
            vn_stanza_is(e, "password", NS_BOOKMARKS_LEGACY)) {
            vn_stanza_add_text_child(conf, vn_stanza_name(e), NS_BOOKMARKS2, vn_stanza_text(e));
        } else if (strcmp(vn_stanza_ns(e), NS_BOOKMARKS_LEGACY) != 0) {
            if (!extensions)
                extensions = vn_stanza_new("extensions", NS_BOOKMARKS2);
            vn_stanza_append(extensions, vn_stanza_copy(e));
        }
    }
    if (extensions)
        vn_stanza_append(conf, extensions);
    return conf;
}

/* Legacy <conference jid/> for a stored XEP-0402 item, appended to
 * storage. */
static void add_legacy_conference(vn_stanza *storage, const vn_stanza *item)
{
    const vn_stanza *conf = vn_stanza_child(item, "conference", NS_BOOKMARKS2);
    if (!conf)
        return;
    vn_stanza *legacy = vn_stanza_add_child(storage, "conference", NS_BOOKMARKS_LEGACY);
    vn_stanza_set_attr(legacy, "jid", vn_stanza_attr(item, "id"));
    if (vn_stanza_attr(conf, "name"))
        vn_stanza_set_attr(legacy, "name", vn_stanza_attr(conf, "name"));
    vn_stanza_set_attr(legacy, "autojoin",
                       is_true(vn_stanza_attr(conf, "autojoin")) ? "true" : "false");
    for (const vn_stanza *e = vn_stanza_first_element(conf); e; e = vn_stanza_next_element(e)) {
        if (vn_stanza_is(e, "nick", NS_BOOKMARKS2) || vn_stanza_is(e, "password", NS_BOOKMARKS2))
            vn_stanza_add_text_child(legacy, vn_stanza_name(e), NS_BOOKMARKS_LEGACY,
                                     vn_stanza_text(e));
        else if (vn_stanza_is(e, "extensions", NS_BOOKMARKS2))
            for (const vn_stanza *x = vn_stanza_first_element(e); x; x = vn_stanza_next_element(x))
                vn_stanza_append(legacy, vn_stanza_copy(x));
    }
}

/* The account's bookmarks as a legacy <storage/>; NULL when it has no
 * XEP-0402 node, or (with *failed) when the store fails. */
static vn_stanza *legacy_storage(const vn_jid *service, bool *failed)
{
    pep_node *node = NULL;
    int rc = pep_node_load(service->domain, service->local, NS_BOOKMARKS2, &node);
    *failed = rc == VN_STORE_ERROR;
    if (rc != VN_STORE_OK)
        return NULL;
    vn_stanza *storage = vn_stanza_new("storage", NS_BOOKMARKS_LEGACY);
    for (size_t i = 0; i < node->n_items; i++) {
        vn_stanza *item = pep_item_get(service->domain, service->local, node, node->item_ids[i]);
        if (item)
            add_legacy_conference(storage, item);
        vn_stanza_free(item);
    }
    pep_node_free(node);
    return storage;
}

static vn_stanza *legacy_items(vn_stanza *storage, const char *ns)
{
    vn_stanza *items = vn_stanza_new("items", ns);
    vn_stanza_set_attr(items, "node", NS_BOOKMARKS_LEGACY);
    vn_stanza *item = vn_stanza_add_child(items, "item", ns);
    vn_stanza_set_attr(item, "id", LEGACY_ITEM_ID);
    vn_stanza_append(item, storage);
    return items;
}

/* ---- import ---- */

static vn_stanza *bookmarks_options(void)
{
    static const char *const fields[][2] = {
        {"FORM_TYPE", PEP_FORM_PUBLISH_OPTIONS},
        {"pubsub#access_model", "whitelist"},
        {"pubsub#max_items", "max"},
    };
    vn_stanza *form = vn_stanza_new("x", NS_DATA_FORMS);
    vn_stanza_set_attr(form, "type", "submit");
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        vn_stanza *field = vn_stanza_add_child(form, "field", NS_DATA_FORMS);
        vn_stanza_set_attr(field, "var", fields[i][0]);
        vn_stanza_add_text_child(field, "value", NS_DATA_FORMS, fields[i][1]);
    }
    return form;
}

static bool same_element(const vn_stanza *a, const vn_stanza *b)
{
    char *xa = vn_stanza_serialize(a, VN_NS_CLIENT, NULL);
    char *xb = vn_stanza_serialize(b, VN_NS_CLIENT, NULL);
    bool same = strcmp(xa, xb) == 0;
    free(xa);
    free(xb);
    return same;
}

/* The canonical room JIDs of storage's conferences, their XEP-0402 form
 * alongside; a conference without a valid jid is skipped. */
typedef struct conference_set {
    char **jids;
    vn_stanza **conferences;
    size_t count;
} conference_set;

static void set_free(conference_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free(set->jids[i]);
        vn_stanza_free(set->conferences[i]);
    }
    free(set->jids);
    free(set->conferences);
}

static bool set_has(const conference_set *set, const char *jid)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->jids[i], jid) == 0)
            return true;
    return false;
}

static void set_from_storage(conference_set *set, const vn_stanza *storage)
{
    for (const vn_stanza *e = vn_stanza_first_element(storage); e; e = vn_stanza_next_element(e)) {
        const char *jid =
            vn_stanza_is(e, "conference", NS_BOOKMARKS_LEGACY) ? vn_stanza_attr(e, "jid") : NULL;
        char *canonical = jid ? vn_jid_normalize(jid) : NULL;
        if (!canonical || set_has(set, canonical)) {
            free(canonical);
            continue;
        }
        size_t n = set->count + 1;
        set->jids = vn_realloc(set->jids, n * sizeof *set->jids);
        set->conferences = vn_realloc(set->conferences, n * sizeof *set->conferences);
        set->jids[set->count] = canonical;
        set->conferences[set->count] = conference_from_legacy(e);
        set->count = n;
    }
}

/* Retract what set no longer has and publish what is new or changed. */
static bool sync_node(const pep_request *req, const conference_set *set, pep_error *err)
{
    pep_node *node = NULL;
    int rc = pep_node_load(req->service->domain, req->service->local, NS_BOOKMARKS2, &node);
    if (rc == VN_STORE_ERROR) {
        *err = (pep_error){"wait", "internal-server-error", NULL, NULL};
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && node && i < node->n_items; i++)
        if (!set_has(set, node->item_ids[i]))
            ok = pep_service_retract(req, NS_BOOKMARKS2, node->item_ids[i], true, err);

    vn_stanza *options = node ? NULL : bookmarks_options();
    for (size_t i = 0; ok && i < set->count; i++) {
        vn_stanza *item = vn_stanza_new("item", NS_PUBSUB);
        vn_stanza_set_attr(item, "id", set->jids[i]);
        vn_stanza_append(item, vn_stanza_copy(set->conferences[i]));
        vn_stanza *stored =
            node ? pep_item_get(req->service->domain, req->service->local, node, set->jids[i])
                 : NULL;
        if (!stored || !same_element(stored, item)) {
            char *id = NULL;
            ok = pep_service_publish(req, NS_BOOKMARKS2, item, options, &id, err);
            free(id);
        }
        vn_stanza_free(stored);
        vn_stanza_free(item);
    }
    vn_stanza_free(options);
    pep_node_free(node);
    return ok;
}

static bool import_storage(const pep_request *req, const vn_stanza *storage, pep_error *err)
{
    conference_set set = {NULL, NULL, 0};
    set_from_storage(&set, storage);
    importing = true;
    bool ok = sync_node(req, &set, err);
    importing = false;
    set_free(&set);
    pep_bookmarks_changed(req->service);
    return ok;
}

/* ---- the legacy PEP node ---- */

bool pep_bookmarks_publish_legacy(const pep_request *req, const vn_stanza *item, pep_error *err)
{
    const vn_stanza *storage = vn_stanza_first_element(item);
    if (!vn_stanza_is(storage, "storage", NS_BOOKMARKS_LEGACY)) {
        *err = (pep_error){"modify", "bad-request", "invalid-payload",
                           N_("storage:bookmarks holds <storage xmlns='storage:bookmarks'/>")};
        return false;
    }
    return import_storage(req, storage, err);
}

vn_stanza *pep_bookmarks_legacy_items(const pep_request *req, pep_error *err)
{
    if (!pep_is_owner(req)) {
        *err = (pep_error){"cancel", "not-allowed", "closed-node", N_("Bookmarks are private")};
        return NULL;
    }
    bool failed;
    vn_stanza *storage = legacy_storage(req->service, &failed);
    if (!storage) {
        *err = failed ? (pep_error){"wait", "internal-server-error", NULL, NULL}
                      : (pep_error){"cancel", "item-not-found", NULL, NULL};
        return NULL;
    }
    return legacy_items(storage, NS_PUBSUB);
}

void pep_bookmarks_send_legacy(const vn_jid *service, const char *entity)
{
    vn_jid *who = vn_jid_parse(entity);
    bool wanted =
        who && vn_jid_bare_equal(who, service) && pep_caps_wants(entity, NS_BOOKMARKS_LEGACY);
    vn_jid_free(who);
    if (!wanted)
        return;
    bool failed;
    vn_stanza *storage = legacy_storage(service, &failed);
    if (!storage)
        return;
    vn_stanza *event = vn_stanza_new("event", NS_PUBSUB_EVENT);
    vn_stanza_append(event, legacy_items(storage, NS_PUBSUB_EVENT));
    pep_service_send_event(service, entity, event);
    vn_stanza_free(event);
}

static void send_legacy_to_resource(const char *entity, void *ud)
{
    pep_bookmarks_send_legacy(ud, entity);
}

void pep_bookmarks_changed(const vn_jid *service)
{
    if (!importing)
        pep_caps_foreach_entity(service->bare, send_legacy_to_resource, (void *)service);
}

/* ---- private XML storage ---- */

/* The request's <storage xmlns='storage:bookmarks'/>, if it is the
 * account's own request about bookmarks; NULL to leave it to mod_private. */
static vn_stanza *bookmarks_request(const vn_event *ev)
{
    vn_stanza *query = vn_stanza_child(ev->stanza, "query", NS_PRIVATE);
    if (!query || !ev->from || !vn_jid_bare_equal(ev->from, ev->to))
        return NULL;
    return vn_stanza_child(query, "storage", NS_BOOKMARKS_LEGACY);
}

static vn_hook_result private_get(vn_event *ev, void *ud)
{
    const vn_stanza *request = bookmarks_request(ev);
    if (!request || vn_stanza_element_count(vn_stanza_parent(request)) != 1)
        return VN_PASS;
    bool failed;
    vn_stanza *storage = legacy_storage(ev->to, &failed);
    if (!storage && !failed)
        return VN_PASS; /* no XEP-0402 bookmarks: whatever mod_private keeps */
    if (failed) {
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        return VN_HANDLED;
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza_append(vn_stanza_add_child(reply, "query", NS_PRIVATE), storage);
    vn_route(reply);
    return VN_HANDLED;
}

static vn_hook_result private_set(vn_event *ev, void *ud)
{
    vn_stanza *storage = bookmarks_request(ev);
    if (!storage)
        return VN_PASS;
    vn_jid *service = vn_jid_bare_copy(ev->to);
    pep_request req = {service, ev->from};
    pep_error err;
    bool ok = import_storage(&req, storage, &err);
    vn_jid_free(service);
    if (!ok) {
        pep_route_error(ev->stanza, &err);
        return VN_HANDLED;
    }
    vn_stanza *query = vn_stanza_parent(storage);
    if (vn_stanza_element_count(query) > 1) {
        /* The other elements are mod_private's to store and answer. */
        vn_stanza_remove(storage);
        return VN_PASS;
    }
    vn_route(vn_stanza_iq_result(ev->stanza));
    return VN_HANDLED;
}

void pep_bookmarks_start(vn_module *m)
{
    vn_hook_add("iq-get/bare/" NS_PRIVATE, PRIVATE_PRIORITY, private_get, m);
    vn_hook_add("iq-set/bare/" NS_PRIVATE, PRIVATE_PRIORITY, private_set, m);
    vn_disco_add_feature(NS_BOOKMARKS2 "#compat");
    vn_disco_add_feature(NS_BOOKMARKS2 "#compat-pep");
}

void pep_bookmarks_stop(vn_module *m)
{
    vn_hook_remove("iq-get/bare/" NS_PRIVATE, private_get, m);
    vn_hook_remove("iq-set/bare/" NS_PRIVATE, private_set, m);
    vn_disco_remove_feature(NS_BOOKMARKS2 "#compat");
    vn_disco_remove_feature(NS_BOOKMARKS2 "#compat-pep");
}
