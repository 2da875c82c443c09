/*
 * mod_time.c - Entity Time (XEP-0202).
 *
 * Tells who asks the server its current time. The server reports UTC with
 * a zero offset: it is what it keeps its logs and stamps in, and the host's
 * local zone says nothing useful to a remote client.
 */
#include <time.h>

#include <vestnik/module.h>

#define NS_TIME "urn:xmpp:time"

static vn_hook_result time_query(vn_event *ev, void *ud)
{
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *entity_time = vn_stanza_add_child(reply, "time", NS_TIME);
    time_t now = (time_t)(vn_now_us() / 1000000);
    struct tm utc;
    char stamp[32];

    gmtime_r(&now, &utc);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
    vn_stanza_add_text_child(entity_time, "tzo", NS_TIME, "+00:00");
    vn_stanza_add_text_child(entity_time, "utc", NS_TIME, stamp);
    vn_route(reply);
    return VN_HANDLED;
}

static int time_load(vn_module *m)
{
    vn_hook_add("iq-get/host/" NS_TIME, 0, time_query, m);
    vn_disco_add_feature(NS_TIME);
    return 0;
}

static void time_unload(vn_module *m)
{
    vn_hook_remove("iq-get/host/" NS_TIME, time_query, m);
    vn_disco_remove_feature(NS_TIME);
}

VN_MODULE("time", "Entity Time (XEP-0202)", NULL, time_load, time_unload, NULL);
