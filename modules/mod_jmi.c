/*
 * mod_jmi.c - one-to-one calls: Jingle Message Initiation (XEP-0353) as a
 * server sees it, and who may ring an account.
 *
 * A call starts with a body-less chat message to the callee's bare JID
 * carrying <propose xmlns='urn:xmpp:jingle-message:0'/>; the callee's
 * devices answer <ringing/>, <proceed/> or <reject/> to the caller's full
 * JID and tell each other with <accept/> or <reject/> to their own bare
 * JID; the caller may <retract/>, either side ends with <finish/>. Every
 * device of the callee must ring, whatever its presence priority, so a
 * JMI message to a bare JID goes here to every available resource with a
 * non-negative priority, stream-management sessions that hibernate
 * included (their queue keeps it; mod_push wakes the phone), but not back
 * to the resource that sent it. Nobody available: the message goes on to
 * offline storage. Full-JID messages are routed by the core, archives
 * (mod_mam), carbons (mod_carbons) and push summaries (mod_push) treat JMI
 * messages themselves.
 *
 * Who may ring: the blocking list (mod_blocking, which runs first) stops a
 * blocked caller. Beyond that each account chooses, with the ad-hoc command
 * "Calls", whether people who are not in its contacts (no item on its
 * roster) may ring it; the host's default is modules.jmi.strangers. A
 * proposal refused so is answered, on the callee's behalf and from its bare
 * JID, with <reject/> and the reason <decline/> (clients then show a
 * declined call at once and stop, where an error would read as a failure),
 * and neither reaches the callee's devices nor its archive. A Jingle RTP
 * session-initiate sent straight to a full JID by such a stranger gets
 * <service-unavailable/>, as if the resource were not there.
 */
#include <stdlib.h>
#include <string.h>

#include <vestnik/adhoc.h>
#include <vestnik/form.h>
#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_JMI "urn:xmpp:jingle-message:0"
#define NS_JINGLE "urn:xmpp:jingle:1"
#define NS_RTP "urn:xmpp:jingle:apps:rtp:1"
#define NS_HINTS "urn:xmpp:hints"
#define CALLS_STORE "jmi"
#define STRANGERS_KEY "strangers"
#define CALLS_NODE "calls"

/* After blocking (1000), before archiving (500): a refused call is not
 * archived for the callee. */
#define POLICY_PRIORITY 900
/* Before carbons (-50): every resource gets the message itself, so no
 * carbon of it is needed; offline storage (-100) only sees it when nobody
 * is available. */
#define DELIVER_PRIORITY (-40)

static const char *const policies[] = {"allow", "deny", NULL};

static const vn_config_key jmi_keys[] = {
    /* May people not in an account's contacts ring it, for accounts that
     * did not choose themselves: allow or deny. */
    {.name = "strangers", .type = VN_CONF_STRING, .default_value = "allow", .choices = policies},
    {.name = NULL},
};

static const vn_module *jmi_module;

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

/* ---- the account's choice ---- */

/* "allow" or "deny": the account's own, else the host's default. */
static bool strangers_allowed(const char *host, const char *user)
{
    vn_buf value;
    bool allowed;

    vn_buf_init(&value);
    if (vn_store_get(vn_server_store(), host, user, CALLS_STORE, STRANGERS_KEY, &value) ==
        VN_STORE_OK)
        allowed = strcmp(value.data, "deny") != 0;
    else
        allowed = strcmp(vn_module_config_string(jmi_module, "strangers"), "deny") != 0;
    vn_buf_free(&value);
    return allowed;
}

static bool is_contact(const char *host, const char *user, const vn_jid *caller)
{
    vn_roster_item *item = NULL;
    bool contact =
        vn_roster_get(vn_server_store(), host, user, caller->bare, &item) == VN_STORE_OK &&
        item->listed;
    vn_roster_item_free(item);
    return contact;
}

static bool may_ring(const vn_event *ev)
{
    if (vn_jid_bare_equal(ev->from, ev->to))
        return true;
    return strangers_allowed(ev->to->domain, ev->to->local) ||
           is_contact(ev->to->domain, ev->to->local, ev->from);
}

/* ---- refusing ---- */

/* <reject/> from the callee's bare JID, reason <decline/>. */
static void reject_proposal(const vn_event *ev, const vn_stanza *propose)
{
    const char *lang = vn_stanza_attr(ev->stanza, "xml:lang");
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);

    vn_stanza_set_attr(msg, "from", ev->to->bare);
    vn_stanza_set_attr(msg, "to", ev->from->full);
    vn_stanza_set_attr(msg, "type", "chat");
    vn_stanza *reject = vn_stanza_add_child(msg, "reject", NS_JMI);
    if (vn_stanza_attr(propose, "id"))
        vn_stanza_set_attr(reject, "id", vn_stanza_attr(propose, "id"));
    vn_stanza *reason = vn_stanza_add_child(reject, "reason", NS_JINGLE);
    vn_stanza_add_child(reason, "decline", NS_JINGLE);
    vn_stanza *text = vn_stanza_add_text_child(
        reason, "text", NS_JINGLE,
        vn_tr(lang, N_("This person takes calls only from people in their contacts")));
    vn_stanza_set_attr(text, "xml:lang", vn_tr_lang(lang));
    vn_stanza_add_child(msg, "store", NS_HINTS);
    vn_route(msg);
}

static bool is_rtp_session_initiate(const vn_stanza *iq)
{
    const vn_stanza *jingle = vn_stanza_child(iq, "jingle", NS_JINGLE);
    if (!jingle || !is_type(vn_stanza_attr(jingle, "action"), "session-initiate"))
        return false;
    for (const vn_stanza *content = vn_stanza_child(jingle, "content", NS_JINGLE); content;
         content = vn_stanza_next_element(content))
        if (vn_stanza_child(content, "description", NS_RTP))
            return true;
    return false;
}

/* "route/local": proposals and RTP session-initiates from strangers. */
static vn_hook_result jmi_policy(vn_event *ev, void *ud)
{
    const char *name = vn_stanza_name(ev->stanza);

    if (!ev->from || !ev->to->local)
        return VN_PASS;
    if (strcmp(name, "message") == 0) {
        const vn_stanza *propose = vn_stanza_child(ev->stanza, "propose", NS_JMI);
        if (!propose || is_type(vn_stanza_attr(ev->stanza, "type"), "error") || may_ring(ev))
            return VN_PASS;
        vn_log_debug("jmi: %s may not ring %s (not a contact): rejected", ev->from->full,
                     ev->to->bare);
        reject_proposal(ev, propose);
        return VN_HANDLED;
    }
    if (strcmp(name, "iq") == 0 && is_type(vn_stanza_attr(ev->stanza, "type"), "set") &&
        is_rtp_session_initiate(ev->stanza) && !may_ring(ev)) {
        vn_log_debug("jmi: %s may not call %s (not a contact)", ev->from->full, ev->to->full);
        vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return VN_HANDLED;
    }
    return VN_PASS;
}

/* ---- delivery to every device ---- */

typedef struct delivery {
    const vn_stanza *msg;
    const vn_jid *sender;
    size_t delivered;
} delivery;

static bool deliver_to_resource(vn_session *s, void *ud)
{
    delivery *d = ud;
    if (!vn_session_available(s) || vn_session_priority(s) < 0 ||
        vn_jid_equal(vn_session_jid(s), d->sender))
        return true;
    vn_session_send(s, d->msg);
    d->delivered++;
    return true;
}

/* "message/bare": a JMI chat message rings (or stops) every device. */
static vn_hook_result jmi_deliver(vn_event *ev, void *ud)
{
    if (!is_type(vn_stanza_attr(ev->stanza, "type"), "chat") ||
        !vn_stanza_child(ev->stanza, NULL, NS_JMI))
        return VN_PASS;
    delivery d = {.msg = ev->stanza, .sender = ev->from};
    vn_sessions_foreach(ev->to, deliver_to_resource, &d);
    return d.delivered ? VN_HANDLED : VN_PASS;
}

/* ---- the "Calls" command ---- */

static void calls_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    (void)ud;
    if (!req->form) {
        bool allowed = strangers_allowed(req->host, req->from->local);
        vn_stanza *form = vn_form_new("form", req->lang, N_("Calls"));
        vn_form_add_instructions(form, req->lang,
                                 N_("Who may ring you. People you blocked never can."));
        vn_stanza *field = vn_form_add_field(form, req->lang, STRANGERS_KEY, "list-single",
                                             N_("Calls from people not in my contacts"),
                                             allowed ? "allow" : "deny");
        vn_form_add_option(field, req->lang, N_("Ring"), "allow", true);
        vn_form_add_option(field, req->lang, N_("Decline them"), "deny", true);
        vn_stanza_add_child(field, "required", VN_NS_DATA);
        reply->form = form;
        return;
    }
    const char *chosen = vn_form_value(req->form, STRANGERS_KEY);
    if (!chosen || (strcmp(chosen, "allow") != 0 && strcmp(chosen, "deny") != 0)) {
        reply->note = N_("Choose one of the options offered");
        reply->note_type = VN_ADHOC_ERROR;
        return;
    }
    if (vn_store_put(vn_server_store(), req->host, req->from->local, CALLS_STORE, STRANGERS_KEY,
                     chosen, strlen(chosen)) != VN_STORE_OK) {
        reply->note = N_("The setting could not be saved; try again later");
        reply->note_type = VN_ADHOC_ERROR;
        return;
    }
    vn_log_info("jmi: %s@%s: calls from strangers: %s", req->from->local, req->host, chosen);
    reply->note = N_("Saved");
    reply->note_type = VN_ADHOC_INFO;
}

/* ---- module ---- */

static int jmi_load(vn_module *m)
{
    jmi_module = m;
    vn_hook_add("route/local", POLICY_PRIORITY, jmi_policy, m);
    vn_hook_add("message/bare", DELIVER_PRIORITY, jmi_deliver, m);
    vn_adhoc_add(CALLS_NODE, N_("Calls"), calls_command, NULL);
    return 0;
}

static void jmi_unload(vn_module *m)
{
    vn_hook_remove("route/local", jmi_policy, m);
    vn_hook_remove("message/bare", jmi_deliver, m);
    vn_adhoc_remove(CALLS_NODE);
    jmi_module = NULL;
}

VN_MODULE("jmi", "Jingle Message Initiation (XEP-0353): calls ring every device; who may call",
          jmi_keys, jmi_load, jmi_unload, NULL);
