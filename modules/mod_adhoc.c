/*
 * mod_adhoc.c - Ad-Hoc Commands (XEP-0050) for the commands features offer
 * through vestnik/adhoc.h.
 *
 * Answers, on each local host's JID and for that host's own accounts:
 * disco#items of the commands node (the list a client shows as the
 * server's menu), disco#info of each command's node, and <command/>
 * requests: execute, then complete (or execute, next) with the submitted
 * form, or cancel. A command that shows a form opens a session, which
 * lives for session_timeout seconds and only for the full JID that opened
 * it; max_sessions bounds the sessions of one account. Names, notes and
 * forms come back in the language of the request.
 */
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <vestnik/adhoc.h>
#include <vestnik/form.h>
#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_COMMANDS "http://jabber.org/protocol/commands"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

typedef struct adhoc_session {
    char id[33];
    char *node;
    char *owner; /* full JID */
    char *bare;
    int64_t expires_us;
    UT_hash_handle hh;
} adhoc_session;

static struct {
    adhoc_session *sessions;
    unsigned timeout_s;
    unsigned max_sessions;
    vn_timer *sweeper;
} state;

static void session_free(adhoc_session *s)
{
    HASH_DEL(state.sessions, s);
    free(s->node);
    free(s->owner);
    free(s->bare);
    free(s);
}

static void sweep(vn_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    int64_t now = vn_now_us();
    adhoc_session *s, *tmp;
    HASH_ITER(hh, state.sessions, s, tmp)
    {
        if (s->expires_us <= now)
            session_free(s);
    }
}

static unsigned sessions_of(const char *bare)
{
    unsigned n = 0;
    for (const adhoc_session *s = state.sessions; s; s = s->hh.next)
        n += strcmp(s->bare, bare) == 0;
    return n;
}

static adhoc_session *session_open(const char *node, const vn_jid *owner)
{
    unsigned char raw[16];
    if (sessions_of(owner->bare) >= state.max_sessions || RAND_bytes(raw, sizeof raw) != 1)
        return NULL;

    adhoc_session *s = vn_alloc(sizeof *s);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(s->id + 2 * i, 3, "%02x", raw[i]);
    s->node = vn_strdup(node);
    s->owner = vn_strdup(owner->full);
    s->bare = vn_strdup(owner->bare);
    s->expires_us = vn_now_us() + (int64_t)state.timeout_s * 1000000;
    HASH_ADD_STR(state.sessions, id, s);
    return s;
}

/* Commands are for the host's own accounts. */
static bool may_use(const vn_event *ev)
{
    return ev->from && ev->from->local && ev->from->resource &&
           strcmp(ev->from->domain, ev->host) == 0;
}

static const char *request_lang(const vn_event *ev)
{
    return vn_stanza_attr(ev->stanza, "xml:lang");
}

/* ---- discovery ---- */

static vn_hook_result list_commands(vn_event *ev, void *ud)
{
    (void)ud;
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", NS_DISCO_ITEMS);
    const char *node = vn_stanza_attr(query, "node");
    if (!node || strcmp(node, NS_COMMANDS) != 0)
        return VN_PASS;

    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *items = vn_stanza_add_child(reply, "query", NS_DISCO_ITEMS);
    vn_stanza_set_attr(items, "node", NS_COMMANDS);
    if (may_use(ev)) {
        const vn_adhoc_command *c;
        for (size_t i = 0; (c = vn_adhoc_at(i)); i++) {
            vn_stanza *item = vn_stanza_add_child(items, "item", NS_DISCO_ITEMS);
            vn_stanza_set_attr(item, "jid", ev->host);
            vn_stanza_set_attr(item, "node", c->node);
            vn_stanza_set_attr(item, "name", vn_tr(request_lang(ev), c->name));
        }
    }
    vn_route(reply);
    return VN_HANDLED;
}

static vn_hook_result command_info(vn_event *ev, void *ud)
{
    (void)ud;
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", NS_DISCO_INFO);
    const vn_adhoc_command *c = vn_adhoc_find(vn_stanza_attr(query, "node"));
    if (!c)
        return VN_PASS;
    if (!may_use(ev)) {
        vn_route_error(ev->stanza, "cancel", "item-not-found", NULL);
        return VN_HANDLED;
    }

    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *info = vn_stanza_add_child(reply, "query", NS_DISCO_INFO);
    vn_stanza_set_attr(info, "node", c->node);
    vn_stanza *identity = vn_stanza_add_child(info, "identity", NS_DISCO_INFO);
    vn_stanza_set_attr(identity, "category", "automation");
    vn_stanza_set_attr(identity, "type", "command-node");
    vn_stanza_set_attr(identity, "name", vn_tr(request_lang(ev), c->name));
    vn_stanza_set_attr(vn_stanza_add_child(info, "feature", NS_DISCO_INFO), "var", NS_COMMANDS);
    vn_stanza_set_attr(vn_stanza_add_child(info, "feature", NS_DISCO_INFO), "var", VN_NS_DATA);
    vn_route(reply);
    return VN_HANDLED;
}

/* ---- execution ---- */

static void bad_session(const vn_event *ev)
{
    vn_stanza *reply = vn_stanza_error_reply(ev->stanza, "modify", "bad-request",
                                             N_("This command session is unknown or has expired"));
    if (!reply)
        return;
    vn_stanza *error = vn_stanza_child(reply, "error", vn_stanza_ns(reply));
    vn_stanza_add_child(error, "bad-sessionid", NS_COMMANDS);
    vn_route(reply);
}

static vn_stanza *command_reply(const vn_event *ev, const char *node, const char *sessionid,
                                const char *status)
{
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *command = vn_stanza_add_child(reply, "command", NS_COMMANDS);
    vn_stanza_set_attr(command, "node", node);
    if (sessionid)
        vn_stanza_set_attr(command, "sessionid", sessionid);
    vn_stanza_set_attr(command, "status", status);
    return reply;
}

static void send_outcome(const vn_event *ev, const vn_adhoc_command *c, adhoc_session *session,
                         vn_adhoc_reply *out)
{
    const char *lang = request_lang(ev);

    if (out->form) {
        vn_stanza_free(out->result);
        if (!session && !(session = session_open(c->node, ev->from))) {
            vn_stanza_free(out->form);
            vn_route_error(ev->stanza, "wait", "resource-constraint",
                           N_("Too many commands open at once: finish or cancel one"));
            return;
        }
        vn_stanza *reply = command_reply(ev, c->node, session->id, "executing");
        vn_stanza *command = vn_stanza_first_element(reply);
        vn_stanza *actions = vn_stanza_add_child(command, "actions", NS_COMMANDS);
        vn_stanza_set_attr(actions, "execute", "complete");
        vn_stanza_add_child(actions, "complete", NS_COMMANDS);
        vn_stanza_append(command, out->form);
        vn_route(reply);
        return;
    }
    vn_stanza *reply = command_reply(ev, c->node, session ? session->id : NULL, "completed");
    if (out->result)
        vn_stanza_append(vn_stanza_first_element(reply), out->result);
    if (out->note) {
        static const char *const types[] = {"info", "warn", "error"};
        vn_stanza *note = vn_stanza_add_text_child(vn_stanza_first_element(reply), "note",
                                                   NS_COMMANDS, vn_tr(lang, out->note));
        vn_stanza_set_attr(note, "type", types[out->note_type]);
        vn_stanza_set_attr(note, "xml:lang", vn_tr_lang(lang));
    }
    if (session)
        session_free(session);
    vn_route(reply);
}

static vn_hook_result run_command(vn_event *ev, void *ud)
{
    (void)ud;
    const vn_stanza *command = vn_stanza_child(ev->stanza, "command", NS_COMMANDS);
    const vn_adhoc_command *c = vn_adhoc_find(vn_stanza_attr(command, "node"));
    const char *action = vn_stanza_attr(command, "action");
    const char *sessionid = vn_stanza_attr(command, "sessionid");

    if (!c || !may_use(ev)) {
        vn_route_error(ev->stanza, "cancel", "item-not-found", N_("No such command"));
        return VN_HANDLED;
    }
    if (!action)
        action = "execute";
    adhoc_session *session = NULL;
    if (sessionid) {
        HASH_FIND_STR(state.sessions, sessionid, session);
        if (!session || strcmp(session->owner, ev->from->full) != 0 ||
            strcmp(session->node, c->node) != 0) {
            bad_session(ev);
            return VN_HANDLED;
        }
    }
    if (strcmp(action, "cancel") == 0) {
        if (session)
            session_free(session);
        vn_route(command_reply(ev, c->node, sessionid, "canceled"));
        return VN_HANDLED;
    }
    if (strcmp(action, "execute") != 0 && strcmp(action, "complete") != 0 &&
        strcmp(action, "next") != 0) {
        vn_route_error(ev->stanza, "modify", "bad-request",
                       N_("This command goes forward only: execute, complete or cancel"));
        return VN_HANDLED;
    }

    const vn_stanza *form = vn_stanza_child(command, "x", VN_NS_DATA);
    const char *form_type = vn_stanza_attr(form, "type");
    if (form && (!form_type || strcmp(form_type, "submit") != 0))
        form = NULL;
    if (session && !form) {
        vn_route_error(ev->stanza, "modify", "bad-request", N_("Submit the form to go on"));
        return VN_HANDLED;
    }

    vn_adhoc_request req = {.from = ev->from,
                            .host = ev->host,
                            .lang = request_lang(ev),
                            .form = session ? form : NULL};
    vn_adhoc_reply out = {0};
    c->fn(&req, &out, c->ud);
    send_outcome(ev, c, session, &out);
    return VN_HANDLED;
}

/* ---- module ---- */

static const vn_config_key adhoc_keys[] = {
    {.name = "session_timeout",
     .type = VN_CONF_INT,
     .default_value = "600",
     .min = 10,
     .max = 86400},
    {.name = "max_sessions", .type = VN_CONF_INT, .default_value = "10", .min = 1, .max = 1000},
    {.name = NULL},
};

static void adhoc_configure(vn_module *m)
{
    state.timeout_s = (unsigned)vn_module_config_int(m, "session_timeout");
    state.max_sessions = (unsigned)vn_module_config_int(m, "max_sessions");
}

static int adhoc_load(vn_module *m)
{
    adhoc_configure(m);
    vn_hook_add("iq-get/host/" NS_DISCO_ITEMS, 10, list_commands, m);
    vn_hook_add("iq-get/host/" NS_DISCO_INFO, 10, command_info, m);
    vn_hook_add("iq-set/host/" NS_COMMANDS, 0, run_command, m);
    vn_disco_add_feature(NS_COMMANDS);
    state.sweeper = vn_timer_start(10000, 10000, sweep, NULL);
    return 0;
}

static void adhoc_unload(vn_module *m)
{
    vn_hook_remove("iq-get/host/" NS_DISCO_ITEMS, list_commands, m);
    vn_hook_remove("iq-get/host/" NS_DISCO_INFO, command_info, m);
    vn_hook_remove("iq-set/host/" NS_COMMANDS, run_command, m);
    vn_disco_remove_feature(NS_COMMANDS);
    vn_timer_stop(state.sweeper);
    while (state.sessions)
        session_free(state.sessions);
}

VN_MODULE("adhoc", "Ad-Hoc Commands (XEP-0050)", adhoc_keys, adhoc_load, adhoc_unload,
          adhoc_configure);
