/*
 * mod_carbons.c - Message Carbons (XEP-0280, urn:xmpp:carbons:2).
 *
 * A client turns carbons on or off for its own session with an iq set of
 * <enable/> or <disable/> to its bare JID; the state lives in a session
 * data slot, so it ends with the session. Then:
 *  - a message one resource sends ("stanza/in") is copied to the account's
 *    other enabled resources, wrapped in <sent/>;
 *  - a message delivered to one resource ("message/full"), or to the
 *    highest-priority resources of a bare JID ("message/bare"), is copied
 *    to the enabled resources that did not get it, wrapped in <received/>.
 *
 * Eligible (§6): type chat, or normal with a <body/>. Never copied: errors,
 * groupchat and headline messages, messages marked <private/> (carbons) or
 * <no-copy/> (XEP-0334), carbons themselves, and private messages from a
 * MUC occupant (they carry <x xmlns='.../muc#user'/>), which only the
 * resource that joined the room can make sense of.
 *
 * The hooks run late (negative priorities), after filters such as
 * blocking, so a message that is refused is not copied either.
 */
#include <stdio.h>
#include <string.h>

#include <vestnik/module.h>

#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

/* Session slot value of a session with carbons on (the pointer is only a
 * marker: the slot is either this or absent/NULL). */
static char carbons_on;

#define CARBONS_PRIORITY (-50)

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

static bool enabled(const vn_session *s, const vn_module *m)
{
    return vn_session_get_data(s, m) == &carbons_on;
}

/* ---- enable / disable ---- */

static vn_hook_result carbons_iq(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    const vn_stanza *request = vn_stanza_first_element(ev->stanza);
    const char *name = vn_stanza_name(request);
    vn_session *session = vn_session_find(ev->from);

    if (!session || !vn_jid_bare_equal(ev->from, ev->to)) {
        vn_route_error(ev->stanza, "cancel", "not-allowed",
                       "Carbons are set by a client for its own session");
        return VN_HANDLED;
    }
    if (strcmp(name, "enable") == 0) {
        vn_session_set_data(session, m, &carbons_on, NULL);
    } else if (strcmp(name, "disable") == 0) {
        vn_session_set_data(session, m, NULL, NULL);
    } else {
        vn_route_error(ev->stanza, "modify", "bad-request", "Expected <enable/> or <disable/>");
        return VN_HANDLED;
    }
    vn_log_debug("carbons: %s for %s", name, ev->from->full);
    vn_route(vn_stanza_iq_result(ev->stanza));
    return VN_HANDLED;
}

/* Bind 2 (XEP-0386): <enable/> inside a SASL2 login. */
static vn_hook_result carbons_bind2(vn_event *ev, void *ud)
{
    if (!vn_stanza_is(ev->stanza, "enable", NS_CARBONS))
        return VN_PASS;
    vn_session_set_data(ev->session, ud, &carbons_on, NULL);
    vn_log_debug("carbons: enable for %s (Bind 2)", ev->from->full);
    return VN_HANDLED;
}

static vn_hook_result carbons_bind2_feature(vn_event *ev, void *ud)
{
    vn_stanza_set_attr(vn_stanza_add_child(ev->data, "feature", vn_stanza_ns(ev->data)), "var",
                       NS_CARBONS);
    return VN_PASS;
}

/* ---- which messages ---- */

static bool eligible(const vn_stanza *msg, bool received)
{
    const char *type = vn_stanza_attr(msg, "type");

    if (is_type(type, "error") || is_type(type, "groupchat") || is_type(type, "headline"))
        return false;
    if (!is_type(type, "chat") && !vn_stanza_child(msg, "body", NULL))
        return false;
    if (vn_stanza_child(msg, "private", NS_CARBONS) || vn_stanza_child(msg, "no-copy", NS_HINTS) ||
        vn_stanza_child(msg, "sent", NS_CARBONS) || vn_stanza_child(msg, "received", NS_CARBONS))
        return false;
    return !(received && vn_stanza_child(msg, "x", NS_MUC_USER));
}

/* <message from=bare type=...><kind><forwarded>msg</forwarded></kind></message>
 * without 'to'; it is set per recipient. */
static vn_stanza *wrap(const vn_stanza *msg, const char *kind, const char *account)
{
    vn_stanza *carbon = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(carbon, "from", account);
    vn_stanza_set_attr(carbon, "type", vn_stanza_attr(msg, "type"));
    vn_stanza *forwarded =
        vn_stanza_add_child(vn_stanza_add_child(carbon, kind, NS_CARBONS), "forwarded", NS_FORWARD);
    vn_stanza_append(forwarded, vn_stanza_copy(msg));
    return carbon;
}

/* The carbon is made when the first resource that gets one is found: most
 * messages have none (one resource, or carbons off). */
typedef struct copy_run {
    const vn_module *m;
    const vn_stanza *msg;
    const char *kind;       /* "sent" or "received" */
    const char *account;    /* the carbon's from */
    vn_stanza *carbon;      /* NULL until needed */
    const vn_session *skip; /* the resource that sent or received the original */
    const vn_jid *sender;   /* its sender, which never gets a copy either */
    int receivers_priority; /* bare delivery: resources at this priority got it */
    bool skip_receivers;    /* whether to apply receivers_priority */
    size_t sent;
} copy_run;

static bool received_original(const vn_session *s, const copy_run *run)
{
    return run->skip_receivers && vn_session_available(s) && vn_session_priority(s) >= 0 &&
           vn_session_priority(s) == run->receivers_priority;
}

static bool gets_copy(const vn_session *s, const copy_run *run)
{
    return s != run->skip && enabled(s, run->m) && !received_original(s, run) &&
           !(run->sender && vn_jid_equal(vn_session_jid(s), run->sender));
}

typedef struct receiver_scan {
    const copy_run *run;
    bool found;
} receiver_scan;

static bool find_copy_receiver(vn_session *s, void *ud)
{
    receiver_scan *scan = ud;
    scan->found = gets_copy(s, scan->run);
    return !scan->found;
}

static bool send_copy(vn_session *s, void *ud)
{
    copy_run *run = ud;

    if (!gets_copy(s, run))
        return true;
    if (!run->carbon)
        run->carbon = wrap(run->msg, run->kind, run->account);
    vn_stanza_set_attr(run->carbon, "to", vn_session_jid(s)->full);
    vn_session_send(s, run->carbon);
    run->sent++;
    return true;
}

static void copy_to_account(copy_run *run, const vn_jid *account)
{
    vn_sessions_foreach(account, send_copy, run);
    if (run->sent)
        vn_log_debug("carbons: %zu copy(ies) for %s", run->sent, account->bare);
    vn_stanza_free(run->carbon);
}

/* ---- sent ---- */

static vn_hook_result carbons_sent(vn_event *ev, void *ud)
{
    const vn_stanza *msg = ev->stanza;

    if (strcmp(vn_stanza_name(msg), "message") != 0 || !eligible(msg, false))
        return VN_PASS;
    copy_run run = {
        .m = ud, .msg = msg, .kind = "sent", .account = ev->from->bare, .skip = ev->session};
    receiver_scan scan = {.run = &run};
    vn_sessions_foreach(ev->from, find_copy_receiver, &scan);
    if (!scan.found)
        return VN_PASS;
    /* To its own account, the received side makes the copies. */
    vn_jid *to = vn_jid_parse(vn_stanza_attr(msg, "to"));
    if (to && !vn_jid_bare_equal(to, ev->from))
        copy_to_account(&run, ev->from);
    vn_jid_free(to);
    return VN_PASS;
}

/* ---- received ---- */

static vn_hook_result carbons_received_full(vn_event *ev, void *ud)
{
    if (!eligible(ev->stanza, true))
        return VN_PASS;
    copy_run run = {.m = ud,
                    .msg = ev->stanza,
                    .kind = "received",
                    .account = ev->to->bare,
                    .skip = ev->session,
                    .sender = ev->from};
    copy_to_account(&run, ev->to);
    return VN_PASS;
}

static bool find_best_priority(vn_session *s, void *ud)
{
    int *best = ud;
    if (vn_session_available(s) && vn_session_priority(s) > *best)
        *best = vn_session_priority(s);
    return true;
}

/* The core then delivers to the available resources with the highest
 * non-negative priority (RFC 6121 §8.5.2.1.1); the others get copies. When
 * there is none, the message goes to offline storage or bounces: no copy. */
static vn_hook_result carbons_received_bare(vn_event *ev, void *ud)
{
    int best = -1;

    if (!eligible(ev->stanza, true))
        return VN_PASS;
    vn_sessions_foreach(ev->to, find_best_priority, &best);
    if (best < 0)
        return VN_PASS;
    copy_run run = {.m = ud,
                    .msg = ev->stanza,
                    .kind = "received",
                    .account = ev->to->bare,
                    .sender = ev->from,
                    .receivers_priority = best,
                    .skip_receivers = true};
    copy_to_account(&run, ev->to);
    return VN_PASS;
}

/* ---- module ---- */

static int carbons_load(vn_module *m)
{
    vn_hook_add("iq-set/bare/" NS_CARBONS, 0, carbons_iq, m);
    vn_hook_add("stanza/in", CARBONS_PRIORITY, carbons_sent, m);
    vn_hook_add("message/full", CARBONS_PRIORITY, carbons_received_full, m);
    vn_hook_add("message/bare", CARBONS_PRIORITY, carbons_received_bare, m);
    vn_hook_add("bind2/inline", 0, carbons_bind2, m);
    vn_hook_add("bind2/features", 0, carbons_bind2_feature, m);
    vn_disco_add_feature(NS_CARBONS);
    return 0;
}

static void carbons_unload(vn_module *m)
{
    vn_hook_remove("iq-set/bare/" NS_CARBONS, carbons_iq, m);
    vn_hook_remove("stanza/in", carbons_sent, m);
    vn_hook_remove("message/full", carbons_received_full, m);
    vn_hook_remove("message/bare", carbons_received_bare, m);
    vn_hook_remove("bind2/inline", carbons_bind2, m);
    vn_hook_remove("bind2/features", carbons_bind2_feature, m);
    vn_disco_remove_feature(NS_CARBONS);
}

VN_MODULE("carbons", "Message Carbons (XEP-0280)", NULL, carbons_load, carbons_unload, NULL);
