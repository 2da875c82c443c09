/*
 * mod_pep.c - Personal Eventing Protocol (XEP-0163): the protocol side.
 *
 * Takes the pubsub requests addressed to an account's bare JID (XEP-0060
 * §7 publish and retract with publish-options from XEP-0223, §6.5 item
 * retrieval, §8.2 and §8.4 configure and delete for the owner), lists an
 * account's nodes in disco#items, and announces the service: identity
 * pubsub/pep and its pubsub features in the server's disco#info. The
 * service itself is in pep_service.c; pep.h lists the other files.
 */
#include <stdlib.h>
#include <string.h>

#include "pep.h"

#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

static const vn_config_key pep_keys[] = {
    {.name = "max_items_per_node",
     .type = VN_CONF_INT,
     .default_value = "256",
     .min = 1,
     .max = 100000},
    {.name = "max_item_size",
     .type = VN_CONF_INT,
     .default_value = "262144",
     .min = 1024,
     .max = 16777216},
    {.name = "max_nodes_per_user",
     .type = VN_CONF_INT,
     .default_value = "1024",
     .min = 1,
     .max = 1000000},
    {.name = "caps_max_pending",
     .type = VN_CONF_INT,
     .default_value = "1000",
     .min = 1,
     .max = 1000000},
    {.name = "caps_query_timeout",
     .type = VN_CONF_INT,
     .default_value = "60",
     .min = 5,
     .max = 3600},
    {.name = "caps_cache_size",
     .type = VN_CONF_INT,
     .default_value = "10000",
     .min = 1,
     .max = 10000000},
    {.name = NULL},
};

static const char *const pubsub_features[] = {
    "publish",          "publish-options", "auto-create",     "retract-items", "delete-nodes",
    "persistent-items", "last-published",  "access-presence", "access-open",   "access-whitelist",
    "retrieve-items",   "config-node",     "config-node-max", "item-ids",      "multi-items",
};
#define N_PUBSUB_FEATURES (sizeof pubsub_features / sizeof pubsub_features[0])

void pep_route_error(const vn_stanza *iq, const pep_error *err)
{
    vn_stanza *reply = vn_stanza_error_reply(iq, err->type, err->condition, err->text);
    if (!reply)
        return;
    vn_stanza *error = vn_stanza_child(reply, "error", vn_stanza_ns(iq));
    if (err->pubsub_condition && error)
        vn_stanza_add_child(error, err->pubsub_condition, NS_PUBSUB_ERRORS);
    vn_route(reply);
}

static void unsupported(const vn_stanza *iq, const char *feature)
{
    vn_stanza *reply = vn_stanza_error_reply(iq, "cancel", "feature-not-implemented", NULL);
    if (!reply)
        return;
    vn_stanza *error = vn_stanza_child(reply, "error", vn_stanza_ns(iq));
    if (error)
        vn_stanza_set_attr(vn_stanza_add_child(error, "unsupported", NS_PUBSUB_ERRORS), "feature",
                           feature);
    vn_route(reply);
}

/* The one action element of <pubsub xmlns=ns/>, or NULL after answering
 * bad-request. */
static const vn_stanza *action_of(const vn_event *ev, const char *ns)
{
    const vn_stanza *pubsub = vn_stanza_child(ev->stanza, "pubsub", ns);
    const vn_stanza *action = pubsub ? vn_stanza_first_element(pubsub) : NULL;
    if (!action)
        vn_route_error(ev->stanza, "modify", "bad-request", "Expected a pubsub request");
    return action;
}

static vn_stanza *pubsub_result(const vn_event *ev, const char *ns, vn_stanza **pubsub)
{
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    *pubsub = vn_stanza_add_child(reply, "pubsub", ns);
    return reply;
}

/* ---- pubsub ---- */

static void handle_publish(vn_event *ev, const pep_request *req, const vn_stanza *publish)
{
    const char *node = vn_stanza_attr(publish, "node");
    const vn_stanza *pubsub = vn_stanza_parent(publish);
    const vn_stanza *options_wrapper = vn_stanza_child(pubsub, "publish-options", NS_PUBSUB);
    const vn_stanza *options =
        options_wrapper ? vn_stanza_child(options_wrapper, "x", NS_DATA_FORMS) : NULL;
    const vn_stanza *item = vn_stanza_child(publish, "item", NS_PUBSUB);
    pep_error err;
    char *id = NULL;

    if (!pep_service_publish(req, node, item, options, &id, &err)) {
        pep_route_error(ev->stanza, &err);
        return;
    }
    vn_stanza *result;
    vn_stanza *reply = pubsub_result(ev, NS_PUBSUB, &result);
    vn_stanza *published = vn_stanza_add_child(result, "publish", NS_PUBSUB);
    vn_stanza_set_attr(published, "node", node);
    vn_stanza_set_attr(vn_stanza_add_child(published, "item", NS_PUBSUB), "id", id);
    free(id);
    vn_route_durable(reply);
}

static void handle_retract(vn_event *ev, const pep_request *req, const vn_stanza *retract)
{
    const char *notify = vn_stanza_attr(retract, "notify");
    const vn_stanza *item = vn_stanza_child(retract, "item", NS_PUBSUB);
    pep_error err;

    if (!pep_service_retract(
            req, vn_stanza_attr(retract, "node"), item ? vn_stanza_attr(item, "id") : NULL,
            notify && (strcmp(notify, "true") == 0 || strcmp(notify, "1") == 0), &err))
        pep_route_error(ev->stanza, &err);
    else
        vn_route_durable(vn_stanza_iq_result(ev->stanza));
}

static vn_hook_result pubsub_set(vn_event *ev, void *ud)
{
    const vn_stanza *action = action_of(ev, NS_PUBSUB);
    pep_request req = {ev->to, ev->from};

    if (!action)
        return VN_HANDLED;
    if (vn_stanza_is(action, "publish", NS_PUBSUB))
        handle_publish(ev, &req, action);
    else if (vn_stanza_is(action, "retract", NS_PUBSUB))
        handle_retract(ev, &req, action);
    else
        unsupported(ev->stanza, vn_stanza_name(action));
    return VN_HANDLED;
}

static vn_hook_result pubsub_get(vn_event *ev, void *ud)
{
    const vn_stanza *action = action_of(ev, NS_PUBSUB);
    pep_request req = {ev->to, ev->from};

    if (!action)
        return VN_HANDLED;
    if (!vn_stanza_is(action, "items", NS_PUBSUB)) {
        unsupported(ev->stanza, vn_stanza_name(action));
        return VN_HANDLED;
    }
    const char *max_text = vn_stanza_attr(action, "max_items");
    char *end = NULL;
    unsigned long max_items = max_text ? strtoul(max_text, &end, 10) : 0;
    if (max_text && (end == max_text || *end || max_text[0] == '-')) {
        vn_route_error(ev->stanza, "modify", "bad-request", "max_items is a number");
        return VN_HANDLED;
    }
    const char **ids = NULL;
    size_t n_ids = 0;
    for (const vn_stanza *e = vn_stanza_first_element(action); e; e = vn_stanza_next_element(e)) {
        if (vn_stanza_is(e, "item", NS_PUBSUB) && vn_stanza_attr(e, "id")) {
            ids = vn_realloc(ids, (n_ids + 1) * sizeof *ids);
            ids[n_ids++] = vn_stanza_attr(e, "id");
        }
    }
    pep_error err;
    vn_stanza *items =
        pep_service_items(&req, vn_stanza_attr(action, "node"), ids, n_ids, max_items, &err);
    free(ids);
    if (!items) {
        pep_route_error(ev->stanza, &err);
        return VN_HANDLED;
    }
    vn_stanza *result;
    vn_stanza *reply = pubsub_result(ev, NS_PUBSUB, &result);
    vn_stanza_append(result, items);
    vn_route(reply);
    return VN_HANDLED;
}

/* ---- pubsub#owner ---- */

static vn_hook_result owner_set(vn_event *ev, void *ud)
{
    const vn_stanza *action = action_of(ev, NS_PUBSUB_OWNER);
    pep_request req = {ev->to, ev->from};
    pep_error err;
    bool ok;

    if (!action)
        return VN_HANDLED;
    const char *node = vn_stanza_attr(action, "node");
    if (vn_stanza_is(action, "delete", NS_PUBSUB_OWNER)) {
        ok = pep_service_delete(&req, node, &err);
    } else if (vn_stanza_is(action, "configure", NS_PUBSUB_OWNER)) {
        const vn_stanza *form = vn_stanza_child(action, "x", NS_DATA_FORMS);
        if (!form) {
            vn_route_error(ev->stanza, "modify", "bad-request", "Expected a data form");
            return VN_HANDLED;
        }
        ok = pep_service_configure(&req, node, form, &err);
    } else {
        unsupported(ev->stanza, vn_stanza_name(action));
        return VN_HANDLED;
    }
    if (ok)
        vn_route_durable(vn_stanza_iq_result(ev->stanza));
    else
        pep_route_error(ev->stanza, &err);
    return VN_HANDLED;
}

static vn_hook_result owner_get(vn_event *ev, void *ud)
{
    const vn_stanza *action = action_of(ev, NS_PUBSUB_OWNER);
    pep_request req = {ev->to, ev->from};
    pep_config config;
    pep_error err;

    if (!action)
        return VN_HANDLED;
    if (!vn_stanza_is(action, "configure", NS_PUBSUB_OWNER)) {
        unsupported(ev->stanza, vn_stanza_name(action));
        return VN_HANDLED;
    }
    const char *node = vn_stanza_attr(action, "node");
    if (!pep_service_get_config(&req, node, &config, &err)) {
        pep_route_error(ev->stanza, &err);
        return VN_HANDLED;
    }
    vn_stanza *result;
    vn_stanza *reply = pubsub_result(ev, NS_PUBSUB_OWNER, &result);
    vn_stanza *configure = vn_stanza_add_child(result, "configure", NS_PUBSUB_OWNER);
    vn_stanza_set_attr(configure, "node", node);
    pep_form_add_config(configure, &config, vn_stanza_attr(ev->stanza, "xml:lang"));
    vn_route(reply);
    return VN_HANDLED;
}

/* ---- disco#items: the nodes the requester may read ---- */

typedef struct node_listing {
    const vn_event *ev;
    vn_stanza *query;
} node_listing;

static bool list_node(pep_node *node, void *ud)
{
    const node_listing *listing = ud;
    if (pep_service_may_read(listing->ev->to, listing->ev->from->full, &node->config)) {
        vn_stanza *item = vn_stanza_add_child(listing->query, "item", NS_DISCO_ITEMS);
        vn_stanza_set_attr(item, "jid", listing->ev->to->bare);
        vn_stanza_set_attr(item, "node", node->name);
    }
    return true;
}

static vn_hook_result account_items(vn_event *ev, void *ud)
{
    const vn_stanza *request = vn_stanza_child(ev->stanza, "query", NS_DISCO_ITEMS);
    if (!request || vn_stanza_attr(request, "node") || !ev->from)
        return VN_PASS;
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    node_listing listing = {ev, vn_stanza_add_child(reply, "query", NS_DISCO_ITEMS)};
    if (pep_node_foreach(ev->to->domain, ev->to->local, list_node, &listing) != VN_STORE_OK) {
        vn_stanza_free(reply);
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        return VN_HANDLED;
    }
    vn_route(reply);
    return VN_HANDLED;
}

/* ---- module ---- */

static void read_limits(vn_module *m)
{
    pep_limits_current = (pep_limits){
        .max_items_per_node = (size_t)vn_module_config_int(m, "max_items_per_node"),
        .max_item_size = (size_t)vn_module_config_int(m, "max_item_size"),
        .max_nodes_per_user = (size_t)vn_module_config_int(m, "max_nodes_per_user"),
        .caps_max_pending = (unsigned)vn_module_config_int(m, "caps_max_pending"),
        .caps_query_timeout = (unsigned)vn_module_config_int(m, "caps_query_timeout"),
        .caps_cache_size = (size_t)vn_module_config_int(m, "caps_cache_size"),
    };
}

static void announce(bool add)
{
    void (*feature)(const char *) = add ? vn_disco_add_feature : vn_disco_remove_feature;
    for (size_t i = 0; i < N_PUBSUB_FEATURES; i++) {
        char *var = vn_asprintf(NS_PUBSUB "#%s", pubsub_features[i]);
        feature(var);
        free(var);
    }
    if (add)
        vn_disco_add_identity("pubsub", "pep", NULL);
    else
        vn_disco_remove_identity("pubsub", "pep", NULL);
}

static void add_account_feature(vn_stanza *query, const char *var)
{
    vn_stanza_set_attr(vn_stanza_add_child(query, "feature", vn_stanza_ns(query)), "var", var);
}

/* The account is the pubsub service (XEP-0163 §4): identity and features
 * on its bare JID, where clients such as Conversations look. That is also
 * where XEP-0402 clients look for the bookmarks compatibility features
 * before they trust urn:xmpp:bookmarks:1 to reach XEP-0048 clients. */
static vn_hook_result account_features(vn_event *ev, void *ud)
{
    vn_stanza *id = vn_stanza_add_child(ev->data, "identity", vn_stanza_ns(ev->data));
    vn_stanza_set_attr(id, "category", "pubsub");
    vn_stanza_set_attr(id, "type", "pep");
    for (size_t i = 0; i < N_PUBSUB_FEATURES; i++) {
        char *var = vn_asprintf(NS_PUBSUB "#%s", pubsub_features[i]);
        add_account_feature(ev->data, var);
        free(var);
    }
    add_account_feature(ev->data, NS_BOOKMARKS2 "#compat");
    add_account_feature(ev->data, NS_BOOKMARKS2 "#compat-pep");
    return VN_PASS;
}

static int pep_load(vn_module *m)
{
    read_limits(m);
    vn_hook_add("iq-set/bare/" NS_PUBSUB, 0, pubsub_set, m);
    vn_hook_add("iq-get/bare/" NS_PUBSUB, 0, pubsub_get, m);
    vn_hook_add("iq-set/bare/" NS_PUBSUB_OWNER, 0, owner_set, m);
    vn_hook_add("iq-get/bare/" NS_PUBSUB_OWNER, 0, owner_get, m);
    vn_hook_add("iq-get/bare/" NS_DISCO_ITEMS, 0, account_items, m);
    vn_hook_add("disco/account-info", 0, account_features, m);
    pep_caps_start(m, pep_service_greet);
    pep_bookmarks_start(m);
    announce(true);
    return 0;
}

static void pep_unload(vn_module *m)
{
    vn_hook_remove("iq-set/bare/" NS_PUBSUB, pubsub_set, m);
    vn_hook_remove("iq-get/bare/" NS_PUBSUB, pubsub_get, m);
    vn_hook_remove("iq-set/bare/" NS_PUBSUB_OWNER, owner_set, m);
    vn_hook_remove("iq-get/bare/" NS_PUBSUB_OWNER, owner_get, m);
    vn_hook_remove("iq-get/bare/" NS_DISCO_ITEMS, account_items, m);
    vn_hook_remove("disco/account-info", account_features, m);
    pep_caps_stop(m);
    pep_bookmarks_stop(m);
    announce(false);
    pep_node_forget_volatile();
}

VN_MODULE("pep", "Personal Eventing Protocol (XEP-0163) with XEP-0402 bookmarks", pep_keys,
          pep_load, pep_unload, read_limits);
