/*
 * botapi_profile.c - setMyProfile, the Bot API's one method of vestnik's
 * own: a bot publishes its profile in the services directory
 * (services.<host>, xeps/services-bus.md §4.1) as a component does, with
 * the same fields: name and category (required), description, avatar,
 * operator, privacy (a policy URL). The call sends the profile iq from
 * the bot's JID and answers with the directory's result (true) or error
 * (400 with its text); without an answer within PROFILE_TIMEOUT_MS, 504.
 */
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "botapi.h"

#define NS_SERVICES "urn:vestnik:services:0"
#define PROFILE_TIMEOUT_MS 10000

typedef struct pending {
    char id[40];
    botapi_call *call;
    vn_timer *timer;
    struct pending *next;
} pending;

static pending *pendings;

static void pending_end(pending *p)
{
    LL_DELETE(pendings, p);
    if (p->timer)
        vn_timer_stop(p->timer);
    p->call->waiting = false;
    free(p);
}

static void profile_timeout(vn_timer *t, void *ud)
{
    pending *p = ud;
    botapi_call *call = p->call;
    p->timer = NULL;
    pending_end(p);
    botapi_call_fail(call, 504, "Gateway Timeout: the services directory did not answer");
}

void botapi_profile_set(botapi_call *call)
{
    static const char *const fields[] = {"name",   "category", "description",
                                         "avatar", "operator", "privacy"};
    if (!botapi_param_string(call, "name") || !botapi_param_string(call, "category")) {
        botapi_call_fail(call, 400, "Bad Request: name and category are required");
        return;
    }
    const char *prefix = vn_module_config_string(services_module(), "directory_prefix");
    char *name = vn_asprintf("%s.%s", prefix ? prefix : "services", call->bot->host);
    char *directory = vn_jid_prep_domain(name);
    free(name);
    if (!directory) {
        botapi_call_fail(call, 400, "Bad Request: there is no services directory");
        return;
    }
    pending *p = vn_alloc(sizeof *p);
    memcpy(p->id, "profile-", 8);
    botapi_random_hex(p->id + 8, 12);
    p->call = call;
    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    vn_stanza_set_attr(iq, "type", "set");
    vn_stanza_set_attr(iq, "from", call->bot->key);
    vn_stanza_set_attr(iq, "to", directory);
    vn_stanza_set_attr(iq, "id", p->id);
    vn_stanza *profile = vn_stanza_add_child(iq, "profile", NS_SERVICES);
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const char *value = botapi_param_string(call, fields[i]);
        if (value)
            vn_stanza_add_text_child(profile, fields[i], NS_SERVICES, value);
    }
    free(directory);
    call->waiting = true;
    p->timer = vn_timer_start(PROFILE_TIMEOUT_MS, 0, profile_timeout, p);
    LL_APPEND(pendings, p);
    vn_route(iq);
}

bool botapi_profile_answer(const vn_stanza *iq)
{
    const char *id = vn_stanza_attr(iq, "id");
    pending *p = pendings;
    while (p && !(id && strcmp(p->id, id) == 0))
        p = p->next;
    if (!p)
        return false;
    botapi_call *call = p->call;
    pending_end(p);
    if (strcmp(vn_stanza_attr(iq, "type"), "result") == 0) {
        botapi_call_ok(call, json_true());
        return true;
    }
    const vn_stanza *error = vn_stanza_child(iq, "error", NULL);
    const char *text = error ? vn_stanza_child_text(error, "text", VN_NS_STANZA_ERRORS) : NULL;
    const vn_stanza *condition = error ? vn_stanza_first_element(error) : NULL;
    char *description = vn_asprintf("Bad Request: %s", text        ? text
                                                       : condition ? vn_stanza_name(condition)
                                                                   : "refused");
    botapi_call_fail(call, 400, description);
    free(description);
    return true;
}

void botapi_profile_abort(botapi_call *call)
{
    for (pending *p = pendings; p; p = p->next) {
        if (p->call == call) {
            pending_end(p);
            botapi_call_free(call);
            return;
        }
    }
}

void botapi_profiles_stop(void)
{
    while (pendings) {
        botapi_call *call = pendings->call;
        pending_end(pendings);
        botapi_call_fail(call, 503, "Service Unavailable");
    }
}
