/*
 * mod_version.c - Software Version (XEP-0092).
 *
 * Tells who asks the server which software it runs: the name and version,
 * and the operating system only if the operator enables show_os (it helps
 * attackers more than users, so it is off by default).
 */
#include <stdlib.h>
#include <sys/utsname.h>

#include <vestnik/module.h>

#define NS_VERSION "jabber:iq:version"

static const vn_config_key version_keys[] = {
    {.name = "show_os", .type = VN_CONF_BOOL, .default_value = "false"},
    {.name = NULL},
};

static vn_hook_result version_query(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *query = vn_stanza_add_child(reply, "query", NS_VERSION);
    struct utsname system;

    vn_stanza_add_text_child(query, "name", NS_VERSION, "vestnik");
    vn_stanza_add_text_child(query, "version", NS_VERSION, vn_server_version());
    if (vn_module_config_bool(m, "show_os") && uname(&system) == 0) {
        char *os = vn_asprintf("%s %s", system.sysname, system.release);
        vn_stanza_add_text_child(query, "os", NS_VERSION, os);
        free(os);
    }
    vn_route(reply);
    return VN_HANDLED;
}

static int version_load(vn_module *m)
{
    vn_hook_add("iq-get/host/" NS_VERSION, 0, version_query, m);
    vn_disco_add_feature(NS_VERSION);
    return 0;
}

static void version_unload(vn_module *m)
{
    vn_hook_remove("iq-get/host/" NS_VERSION, version_query, m);
    vn_disco_remove_feature(NS_VERSION);
}

VN_MODULE("version", "Software Version (XEP-0092)", version_keys, version_load, version_unload,
          NULL);
