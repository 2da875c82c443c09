/*
 * mod_ping.c - XMPP Ping (XEP-0199).
 *
 * Answers <iq type='get'><ping xmlns='urn:xmpp:ping'/></iq> sent to the
 * server, and sent by a client to its own bare JID, with an empty result.
 * Pings to other accounts are left to the router (the account's clients
 * are not asked on its behalf).
 */
#include <vestnik/module.h>

#define NS_PING "urn:xmpp:ping"

static vn_hook_result ping_host(vn_event *ev, void *ud)
{
    vn_route(vn_stanza_iq_result(ev->stanza));
    return VN_HANDLED;
}

static vn_hook_result ping_own_account(vn_event *ev, void *ud)
{
    if (!ev->from || !ev->to || !vn_jid_bare_equal(ev->from, ev->to))
        return VN_PASS;
    vn_route(vn_stanza_iq_result(ev->stanza));
    return VN_HANDLED;
}

static int ping_load(vn_module *m)
{
    vn_hook_add("iq-get/host/" NS_PING, 0, ping_host, m);
    vn_hook_add("iq-get/bare/" NS_PING, 0, ping_own_account, m);
    vn_disco_add_feature(NS_PING);
    return 0;
}

static void ping_unload(vn_module *m)
{
    vn_hook_remove("iq-get/host/" NS_PING, ping_host, m);
    vn_hook_remove("iq-get/bare/" NS_PING, ping_own_account, m);
    vn_disco_remove_feature(NS_PING);
}

VN_MODULE("ping", "XMPP Ping (XEP-0199)", NULL, ping_load, ping_unload, NULL);
