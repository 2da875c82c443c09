/*
 * pep_service.c - the PEP service of one account: publish, retract,
 * delete, configure and read nodes, and the notifications they cause.
 *
 * Only the account itself publishes and manages its nodes (XEP-0163 §3).
 * Who else reads a node follows its access model (XEP-0060 §4.5): open is
 * anyone, presence is contacts with a subscription 'from' the account,
 * whitelist is the account alone. Notifications (<message type='headline'>
 * with a pubsub#event payload) go to the account's available resources and
 * to every available resource of a contact that may read the node and
 * whose caps ask for '<node>+notify' (pep_caps.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pep.h"

static bool fail(pep_error *err, const char *type, const char *condition,
                 const char *pubsub_condition, const char *text)
{
    *err = (pep_error){type, condition, pubsub_condition, text};
    return false;
}

static bool store_failed(pep_error *err)
{
    return fail(err, "wait", "internal-server-error", NULL, NULL);
}

bool pep_is_owner(const pep_request *req)
{
    return vn_jid_bare_equal(req->requester, req->service);
}

static bool contact_has_from(const vn_jid *service, const char *bare)
{
    vn_roster_item *item = NULL;
    bool has_from = vn_roster_get(vn_server_store(), service->domain, service->local, bare,
                                  &item) == VN_STORE_OK &&
                    vn_subscription_has_from(item->subscription);
    vn_roster_item_free(item);
    return has_from;
}

bool pep_service_may_read(const vn_jid *service, const char *entity, const pep_config *config)
{
    vn_jid *who = vn_jid_parse(entity);
    bool may = false;

    if (who && vn_jid_bare_equal(who, service))
        may = true;
    else if (who && config->access == PEP_ACCESS_OPEN)
        may = true;
    else if (who && config->access == PEP_ACCESS_PRESENCE)
        may = contact_has_from(service, who->bare);
    vn_jid_free(who);
    return may;
}

/* ---- notifications ---- */

void pep_service_send_event(const vn_jid *service, const char *to, const vn_stanza *event)
{
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "type", "headline");
    vn_stanza_set_attr(msg, "from", service->bare);
    vn_stanza_set_attr(msg, "to", to);
    vn_stanza_append(msg, vn_stanza_copy(event));
    vn_route(msg);
}

typedef struct recipients {
    char **jids;
    size_t count;
    const char *node;
} recipients;

static void add_recipient(recipients *r, const char *jid)
{
    r->jids = vn_realloc(r->jids, (r->count + 1) * sizeof *r->jids);
    r->jids[r->count++] = vn_strdup(jid);
}

static bool add_own_resource(vn_session *s, void *ud)
{
    if (vn_session_available(s))
        add_recipient(ud, vn_session_jid(s)->full);
    return true;
}

static void add_if_interested(const char *entity, void *ud)
{
    recipients *r = ud;
    if (pep_caps_wants(entity, r->node))
        add_recipient(r, entity);
}

static bool add_contact_resources(const vn_roster_item *item, void *ud)
{
    if (vn_subscription_has_from(item->subscription))
        pep_caps_foreach_entity(item->jid, add_if_interested, ud);
    return true;
}

static void notify(const vn_jid *service, const char *node, const pep_config *config,
                   const vn_stanza *event)
{
    recipients r = {NULL, 0, node};

    vn_sessions_foreach(service, add_own_resource, &r);
    if (config->access != PEP_ACCESS_WHITELIST &&
        vn_roster_foreach(vn_server_store(), service->domain, service->local, add_contact_resources,
                          &r) != VN_STORE_OK)
        vn_log_error("pep: cannot read the roster of %s", service->bare);
    for (size_t i = 0; i < r.count; i++) {
        pep_service_send_event(service, r.jids[i], event);
        free(r.jids[i]);
    }
    free(r.jids);
}

/* <event><items node/></event> and its <items/>, for the caller to fill. */
static vn_stanza *items_event(const char *node, vn_stanza **items)
{
    vn_stanza *event = vn_stanza_new("event", NS_PUBSUB_EVENT);
    *items = vn_stanza_add_child(event, "items", NS_PUBSUB_EVENT);
    vn_stanza_set_attr(*items, "node", node);
    return event;
}

/* A copy of item (id and payload) in namespace ns. */
static vn_stanza *item_copy(const vn_stanza *item, const char *ns)
{
    vn_stanza *copy = vn_stanza_new("item", ns);
    vn_stanza_set_attr(copy, "id", vn_stanza_attr(item, "id"));
    for (const vn_stanza *e = vn_stanza_first_element(item); e; e = vn_stanza_next_element(e))
        vn_stanza_append(copy, vn_stanza_copy(e));
    return copy;
}

static void after_change(const vn_jid *service, const char *node)
{
    if (strcmp(node, NS_BOOKMARKS2) == 0)
        pep_bookmarks_changed(service);
}

/* ---- publish ---- */

static bool check_name(const char *name, const char *what, pep_error *err)
{
    if (!name || !*name)
        return fail(err, "modify", "bad-request", "nodeid-required", what);
    if (strlen(name) > PEP_MAX_NAME_LEN)
        return fail(err, "modify", "not-acceptable", NULL, N_("Name too long"));
    return true;
}

/* The node to publish to: loaded and checked against the options, or new
 * with the options applied (not stored yet). NULL with *err. */
static pep_node *node_for_publish(const pep_request *req, const char *node_name,
                                  const vn_stanza *options, pep_error *err)
{
    const char *host = req->service->domain, *user = req->service->local;
    pep_node *node = NULL;
    int rc = pep_node_load(host, user, node_name, &node);

    if (rc == VN_STORE_OK) {
        if (options &&
            !pep_form_apply(options, PEP_FORM_PUBLISH_OPTIONS, &node->config, true, err)) {
            pep_node_free(node);
            return NULL;
        }
        return node;
    }
    size_t count = 0;
    if (rc == VN_STORE_ERROR || pep_node_count(host, user, &count) != VN_STORE_OK) {
        store_failed(err);
        return NULL;
    }
    if (count >= pep_limits_current.max_nodes_per_user) {
        fail(err, "cancel", "not-allowed", "max-nodes-exceeded", N_("Too many nodes"));
        return NULL;
    }
    pep_config config = pep_config_default();
    if (options && !pep_form_apply(options, PEP_FORM_PUBLISH_OPTIONS, &config, false, err))
        return NULL;
    return pep_node_new(node_name, &config);
}

static char *new_item_id(void)
{
    static unsigned counter;
    return vn_asprintf("%llx-%x", (unsigned long long)vn_now_us(), ++counter);
}

bool pep_service_publish(const pep_request *req, const char *node_name, const vn_stanza *item,
                         const vn_stanza *options, char **id_out, pep_error *err)
{
    *id_out = NULL;
    if (!pep_is_owner(req))
        return fail(err, "auth", "forbidden", NULL, N_("Only the account publishes here"));
    if (!check_name(node_name, N_("Name the node"), err))
        return false;
    if (!item)
        return fail(err, "modify", "bad-request", "item-required", NULL);
    const char *given_id = vn_stanza_attr(item, "id");
    if (given_id && !check_name(given_id, N_("Empty item id"), err))
        return false;
    size_t n_payloads = vn_stanza_element_count(item);
    if (n_payloads != 1)
        return fail(err, "modify", "bad-request",
                    n_payloads ? "invalid-payload" : "payload-required", NULL);
    if (pep_bookmarks_is_legacy_node(node_name)) {
        *id_out = vn_strdup(given_id ? given_id : "current");
        return pep_bookmarks_publish_legacy(req, item, err);
    }

    char *id = given_id ? vn_strdup(given_id) : new_item_id();
    vn_stanza *stored = item_copy(item, NS_PUBSUB);
    vn_stanza_set_attr(stored, "id", id);
    size_t size = 0;
    free(vn_stanza_serialize(stored, VN_NS_CLIENT, &size));
    if (size > pep_limits_current.max_item_size) {
        vn_stanza_free(stored);
        free(id);
        return fail(err, "modify", "not-acceptable", "payload-too-big", NULL);
    }

    pep_node *node = node_for_publish(req, node_name, options, err);
    bool ok =
        node &&
        pep_item_put(req->service->domain, req->service->local, node, stored) == VN_STORE_OK &&
        pep_node_save(req->service->domain, req->service->local, node) == VN_STORE_OK;
    if (node && !ok)
        store_failed(err);
    if (ok) {
        vn_stanza *items;
        vn_stanza *event = items_event(node_name, &items);
        vn_stanza_append(items, item_copy(stored, NS_PUBSUB_EVENT));
        notify(req->service, node_name, &node->config, event);
        vn_stanza_free(event);
        after_change(req->service, node_name);
        *id_out = id;
        id = NULL;
    }
    pep_node_free(node);
    vn_stanza_free(stored);
    free(id);
    return ok;
}

/* ---- retract, delete, configure ---- */

/* The account's node, or NULL with *err (item-not-found when absent). */
static pep_node *owned_node(const pep_request *req, const char *node_name, pep_error *err)
{
    pep_node *node = NULL;
    if (!pep_is_owner(req)) {
        fail(err, "auth", "forbidden", NULL, N_("Only the account manages its nodes"));
        return NULL;
    }
    if (!check_name(node_name, N_("Name the node"), err))
        return NULL;
    int rc = pep_node_load(req->service->domain, req->service->local, node_name, &node);
    if (rc == VN_STORE_NOT_FOUND)
        fail(err, "cancel", "item-not-found", NULL, NULL);
    else if (rc != VN_STORE_OK)
        store_failed(err);
    return node;
}

bool pep_service_retract(const pep_request *req, const char *node_name, const char *id,
                         bool notify_subscribers, pep_error *err)
{
    if (!id || !*id)
        return fail(err, "modify", "bad-request", "item-required", NULL);
    pep_node *node = owned_node(req, node_name, err);
    if (!node)
        return false;
    const char *host = req->service->domain, *user = req->service->local;
    int rc = pep_item_remove(host, user, node, id);
    bool ok = rc == VN_STORE_OK && pep_node_save(host, user, node) == VN_STORE_OK;
    if (rc == VN_STORE_NOT_FOUND)
        fail(err, "cancel", "item-not-found", NULL, NULL);
    else if (!ok)
        store_failed(err);
    if (ok && notify_subscribers) {
        vn_stanza *items;
        vn_stanza *event = items_event(node_name, &items);
        vn_stanza_set_attr(vn_stanza_add_child(items, "retract", NS_PUBSUB_EVENT), "id", id);
        notify(req->service, node_name, &node->config, event);
        vn_stanza_free(event);
    }
    if (ok)
        after_change(req->service, node_name);
    pep_node_free(node);
    return ok;
}

bool pep_service_delete(const pep_request *req, const char *node_name, pep_error *err)
{
    pep_node *node = owned_node(req, node_name, err);
    if (!node)
        return false;
    bool ok = pep_node_delete(req->service->domain, req->service->local, node_name) == VN_STORE_OK;
    if (ok) {
        vn_stanza *event = vn_stanza_new("event", NS_PUBSUB_EVENT);
        vn_stanza_set_attr(vn_stanza_add_child(event, "delete", NS_PUBSUB_EVENT), "node",
                           node_name);
        notify(req->service, node_name, &node->config, event);
        vn_stanza_free(event);
        after_change(req->service, node_name);
    } else {
        store_failed(err);
    }
    pep_node_free(node);
    return ok;
}

bool pep_service_get_config(const pep_request *req, const char *node_name, pep_config *out,
                            pep_error *err)
{
    pep_node *node = owned_node(req, node_name, err);
    if (node)
        *out = node->config;
    pep_node_free(node);
    return node != NULL;
}

bool pep_service_configure(const pep_request *req, const char *node_name, const vn_stanza *form,
                           pep_error *err)
{
    pep_node *node = owned_node(req, node_name, err);
    if (!node)
        return false;
    pep_config config = node->config;
    bool ok = pep_form_apply(form, PEP_FORM_NODE_CONFIG, &config, false, err);
    if (ok) {
        const char *host = req->service->domain, *user = req->service->local;
        ok = pep_node_reconfigure(host, user, node, &config) == VN_STORE_OK &&
             pep_node_save(host, user, node) == VN_STORE_OK;
        if (!ok)
            store_failed(err);
    }
    pep_node_free(node);
    return ok;
}

/* ---- reading ---- */

static bool refuse_reader(const pep_config *config, pep_error *err)
{
    if (config->access == PEP_ACCESS_PRESENCE)
        return fail(err, "auth", "not-authorized", "presence-subscription-required",
                    N_("Items are for contacts with a presence subscription"));
    return fail(err, "cancel", "not-allowed", "closed-node", N_("Items are for the account only"));
}

vn_stanza *pep_service_items(const pep_request *req, const char *node_name, const char *const *ids,
                             size_t n_ids, size_t max_items, pep_error *err)
{
    if (!check_name(node_name, N_("Name the node"), err))
        return NULL;
    if (pep_bookmarks_is_legacy_node(node_name))
        return pep_bookmarks_legacy_items(req, err);

    const char *host = req->service->domain, *user = req->service->local;
    pep_node *node = NULL;
    int rc = pep_node_load(host, user, node_name, &node);
    if (rc != VN_STORE_OK) {
        if (rc == VN_STORE_NOT_FOUND)
            fail(err, "cancel", "item-not-found", NULL, NULL);
        else
            store_failed(err);
        return NULL;
    }
    if (!pep_service_may_read(req->service, req->requester->full, &node->config)) {
        refuse_reader(&node->config, err);
        pep_node_free(node);
        return NULL;
    }

    vn_stanza *items = vn_stanza_new("items", NS_PUBSUB);
    vn_stanza_set_attr(items, "node", node_name);
    size_t first = max_items && max_items < node->n_items ? node->n_items - max_items : 0;
    size_t count = n_ids ? n_ids : node->n_items - first;
    for (size_t i = 0; i < count; i++) {
        vn_stanza *item =
            pep_item_get(host, user, node, n_ids ? ids[i] : node->item_ids[first + i]);
        if (item)
            vn_stanza_append(items, item);
    }
    pep_node_free(node);
    return items;
}

/* ---- the last items for an entity that just became interested ---- */

typedef struct greeting {
    const vn_jid *service;
    const char *entity;
    vn_stanza **events;
    size_t n_events;
} greeting;

static bool greet_node(pep_node *node, void *ud)
{
    greeting *g = ud;
    if (node->n_items == 0 || !pep_caps_wants(g->entity, node->name) ||
        !pep_service_may_read(g->service, g->entity, &node->config))
        return true;
    vn_stanza *item = pep_item_get(g->service->domain, g->service->local, node,
                                   node->item_ids[node->n_items - 1]);
    if (!item)
        return true;
    vn_stanza *items;
    vn_stanza *event = items_event(node->name, &items);
    vn_stanza_append(items, item_copy(item, NS_PUBSUB_EVENT));
    vn_stanza_free(item);
    g->events = vn_realloc(g->events, (g->n_events + 1) * sizeof *g->events);
    g->events[g->n_events++] = event;
    return true;
}

void pep_service_greet(const vn_jid *service, const char *entity)
{
    greeting g = {service, entity, NULL, 0};
    if (pep_node_foreach(service->domain, service->local, greet_node, &g) != VN_STORE_OK)
        vn_log_error("pep: cannot read the nodes of %s", service->bare);
    for (size_t i = 0; i < g.n_events; i++) {
        pep_service_send_event(service, entity, g.events[i]);
        vn_stanza_free(g.events[i]);
    }
    free(g.events);
    pep_bookmarks_send_legacy(service, entity);
}
