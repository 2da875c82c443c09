/*
 * mod_disco.c - Service Discovery (XEP-0030).
 *
 * Serves disco#info for the server from the registry every module fills
 * (vn_disco_* in module.h), disco#items for the server (no items yet), and
 * disco#info for an account's bare JID on the account's behalf. No nodes
 * are defined, so a query naming one gets item-not-found.
 */
#include <vestnik/module.h>

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

static void add_identity(const char *category, const char *type, const char *name, void *ud)
{
    vn_stanza *identity = vn_stanza_add_child(ud, "identity", NS_DISCO_INFO);

    vn_stanza_set_attr(identity, "category", category);
    vn_stanza_set_attr(identity, "type", type);
    if (name)
        vn_stanza_set_attr(identity, "name", name);
}

static void add_feature(const char *var, void *ud)
{
    vn_stanza_set_attr(vn_stanza_add_child(ud, "feature", NS_DISCO_INFO), "var", var);
}

/* An iq result carrying an empty <query xmlns=ns/>, or NULL after routing
 * item-not-found because the request names a node (none is defined). */
static vn_stanza *query_result(const vn_event *ev, const char *ns)
{
    const vn_stanza *request = vn_stanza_child(ev->stanza, "query", ns);

    if (request && vn_stanza_attr(request, "node")) {
        vn_route_error(ev->stanza, "cancel", "item-not-found", NULL);
        return NULL;
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza_add_child(reply, "query", ns);
    return reply;
}

static vn_hook_result host_info(vn_event *ev, void *ud)
{
    vn_stanza *reply = query_result(ev, NS_DISCO_INFO);

    if (reply) {
        vn_stanza *query = vn_stanza_child(reply, "query", NS_DISCO_INFO);
        vn_disco_foreach_identity(add_identity, query);
        vn_disco_foreach_feature(add_feature, query);
        vn_route(reply);
    }
    return VN_HANDLED;
}

static vn_hook_result host_items(vn_event *ev, void *ud)
{
    vn_stanza *reply = query_result(ev, NS_DISCO_ITEMS);

    if (reply)
        vn_route(reply);
    return VN_HANDLED;
}

static vn_hook_result account_info(vn_event *ev, void *ud)
{
    if (!ev->to || !ev->to->local || !vn_account_exists(ev->host, ev->to->local)) {
        vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return VN_HANDLED;
    }

    vn_stanza *reply = query_result(ev, NS_DISCO_INFO);

    if (reply) {
        vn_stanza *query = vn_stanza_child(reply, "query", NS_DISCO_INFO);
        add_identity("account", "registered", NULL, query);
        add_feature(NS_DISCO_INFO, query);
        vn_route(reply);
    }
    return VN_HANDLED;
}

static int disco_load(vn_module *m)
{
    vn_hook_add("iq-get/host/" NS_DISCO_INFO, 0, host_info, m);
    vn_hook_add("iq-get/host/" NS_DISCO_ITEMS, 0, host_items, m);
    vn_hook_add("iq-get/bare/" NS_DISCO_INFO, 0, account_info, m);
    vn_disco_add_identity("server", "im", "vestnik");
    vn_disco_add_feature(NS_DISCO_INFO);
    vn_disco_add_feature(NS_DISCO_ITEMS);
    return 0;
}

static void disco_unload(vn_module *m)
{
    vn_hook_remove("iq-get/host/" NS_DISCO_INFO, host_info, m);
    vn_hook_remove("iq-get/host/" NS_DISCO_ITEMS, host_items, m);
    vn_hook_remove("iq-get/bare/" NS_DISCO_INFO, account_info, m);
    vn_disco_remove_identity("server", "im", "vestnik");
    vn_disco_remove_feature(NS_DISCO_INFO);
    vn_disco_remove_feature(NS_DISCO_ITEMS);
}

VN_MODULE("disco", "Service Discovery (XEP-0030)", NULL, disco_load, disco_unload, NULL);
