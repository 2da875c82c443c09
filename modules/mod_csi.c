/*
 * mod_csi.c - Client State Indication (XEP-0352, urn:xmpp:csi:0).
 *
 * A client tells the server with <inactive/> that nobody is looking at it
 * (a phone in a pocket) and with <active/> that somebody is again. While
 * a session is inactive, what can wait is held back on "stanza/out":
 * available and unavailable presence (only the latest one per sender full
 * JID is kept) and messages that carry nothing but chat states (XEP-0085),
 * also inside carbons. Anything else is urgent: a message with a body, an
 * iq, a subscription request. Before an urgent stanza goes out, everything
 * held goes out first, in order, so the client never sees states older
 * than the message. <active/> flushes everything, and so does a queue that
 * reached max_queued.
 *
 * When the connection of a stream-management session drops, the queue is
 * flushed into the stream's unacknowledged queue and the session counts as
 * active again: resumption then replays everything in order, and the
 * resumed client says <inactive/> again if it still is.
 */
#include <stdlib.h>
#include <string.h>

#include <uthash.h>
#include <utlist.h>
#include <vestnik/module.h>

#define NS_CSI "urn:xmpp:csi:0"
#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_HINTS "urn:xmpp:hints"
#define NS_STANZA_ID "urn:xmpp:sid:0"

static const vn_config_key csi_keys[] = {
    {.name = "max_queued", .type = VN_CONF_INT, .default_value = "500", .min = 1, .max = 100000},
    {.name = NULL},
};

typedef struct held_stanza {
    vn_stanza *stanza;
    const char *presence_from; /* the stanza's 'from' if it is presence, else NULL */
    struct held_stanza *prev, *next;
    UT_hash_handle hh; /* in held_presence, by presence_from */
} held_stanza;

typedef struct csi_state {
    bool inactive;
    held_stanza *queue;         /* in arrival order */
    held_stanza *held_presence; /* the presence stanzas of queue, by sender */
    size_t queued;
    vn_session *session; /* whose slot holds it */
    struct csi_state *prev, *next;
} csi_state;

/* Every state in a session slot: unload empties the slots, whose
 * destructor lives in this module. */
static csi_state *all_states;

/* The session whose queue is being written out: its stanzas pass. */
static vn_session *flushing;

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

/* ---- what can wait ---- */

static bool ns_is(const vn_stanza *el, const char *ns)
{
    return vn_stanza_ns(el) && strcmp(vn_stanza_ns(el), ns) == 0;
}

/* A message that only says "typing", "paused" and so on: chat states, and
 * besides them at most a thread, hints and stanza ids. */
static bool only_chat_states(const vn_stanza *msg)
{
    bool has_state = false;

    for (const vn_stanza *child = vn_stanza_first_element(msg); child;
         child = vn_stanza_next_element(child)) {
        if (ns_is(child, NS_CHATSTATES))
            has_state = true;
        else if (!ns_is(child, NS_HINTS) && !ns_is(child, NS_STANZA_ID) &&
                 !vn_stanza_is(child, "thread", NULL))
            return false;
    }
    return has_state;
}

/* The message a carbon carries, or NULL if msg is not a carbon. */
static const vn_stanza *carbon_payload(const vn_stanza *msg)
{
    const vn_stanza *wrapper = vn_stanza_child(msg, "received", NS_CARBONS);
    if (!wrapper)
        wrapper = vn_stanza_child(msg, "sent", NS_CARBONS);
    const vn_stanza *forwarded = wrapper ? vn_stanza_child(wrapper, "forwarded", NS_FORWARD) : NULL;
    return forwarded ? vn_stanza_child(forwarded, "message", NULL) : NULL;
}

static bool can_wait(const vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    const char *type = vn_stanza_attr(st, "type");

    if (strcmp(name, "presence") == 0)
        return !type || is_type(type, "unavailable");
    if (strcmp(name, "message") != 0 || is_type(type, "error"))
        return false;
    const vn_stanza *carried = carbon_payload(st);
    return only_chat_states(carried ? carried : st);
}

/* ---- the queue ---- */

static void free_held(held_stanza *h)
{
    vn_stanza_free(h->stanza);
    free(h);
}

/* Free a detached queue (it is walked by next only). */
static void free_queue(held_stanza *queue)
{
    for (held_stanza *h = queue, *next; h; h = next) {
        next = h->next;
        free_held(h);
    }
}

static void free_state(void *data)
{
    csi_state *state = data;

    HASH_CLEAR(hh, state->held_presence);
    free_queue(state->queue);
    DL_DELETE(all_states, state);
    free(state);
}

/* Write out everything held, oldest first. A write may end the session (a
 * client that stopped reading): then the rest is dropped, as it would have
 * been had it gone out at once. */
static void flush(vn_session *s, csi_state *state)
{
    held_stanza *queue = state->queue;
    size_t count = state->queued;

    if (!queue)
        return;
    state->queue = NULL;
    state->queued = 0;
    HASH_CLEAR(hh, state->held_presence);

    vn_jid *jid = vn_jid_copy(vn_session_jid(s));
    flushing = s;
    for (const held_stanza *h = queue; h; h = h->next)
        if (vn_session_find(jid) == s)
            vn_session_send(s, h->stanza);
    flushing = NULL;
    free_queue(queue);
    vn_log_debug("csi: flushed %zu held stanza(s) to %s", count, jid->full);
    vn_jid_free(jid);
}

static void hold(csi_state *state, const vn_stanza *st)
{
    held_stanza *h = vn_alloc(sizeof *h);
    h->stanza = vn_stanza_copy(st);

    if (strcmp(vn_stanza_name(st), "presence") == 0) {
        held_stanza *older = NULL;
        h->presence_from = vn_stanza_attr(h->stanza, "from");
        if (!h->presence_from)
            h->presence_from = "";
        HASH_FIND_STR(state->held_presence, h->presence_from, older);
        if (older) {
            HASH_DEL(state->held_presence, older);
            DL_DELETE(state->queue, older);
            free_held(older);
            state->queued--;
        }
        HASH_ADD_KEYPTR(hh, state->held_presence, h->presence_from, strlen(h->presence_from), h);
    }
    DL_APPEND(state->queue, h);
    state->queued++;
}

/* ---- hooks ---- */

static vn_hook_result csi_filter(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    csi_state *state = vn_session_get_data(ev->session, m);

    if (ev->session == flushing || !state || !state->inactive)
        return VN_PASS;
    if (!can_wait(ev->stanza)) {
        flush(ev->session, state);
        return VN_PASS;
    }
    hold(state, ev->stanza);
    if ((long long)state->queued >= vn_module_config_int(m, "max_queued"))
        flush(ev->session, state);
    return VN_HANDLED;
}

static vn_hook_result csi_element(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    const vn_stanza *el = ev->stanza;

    if (!ns_is(el, NS_CSI))
        return VN_PASS;
    if (!vn_stanza_is(el, "active", NULL) && !vn_stanza_is(el, "inactive", NULL))
        return VN_PASS; /* the core closes the stream: unsupported-stanza-type */

    csi_state *state = vn_session_get_data(ev->session, m);
    if (!state) {
        state = vn_alloc(sizeof *state);
        state->session = ev->session;
        DL_APPEND(all_states, state);
        vn_session_set_data(ev->session, m, state, free_state);
    }
    state->inactive = vn_stanza_is(el, "inactive", NULL);
    vn_log_debug("csi: %s is %s", vn_session_jid(ev->session)->full,
                 state->inactive ? "inactive" : "active");
    if (!state->inactive)
        flush(ev->session, state);
    return VN_HANDLED;
}

static vn_hook_result csi_hibernated(vn_event *ev, void *ud)
{
    csi_state *state = vn_session_get_data(ev->session, ud);

    if (state) {
        state->inactive = false;
        flush(ev->session, state);
    }
    return VN_PASS;
}

static vn_hook_result csi_feature(vn_event *ev, void *ud)
{
    vn_stanza_add_child(ev->data, "csi", NS_CSI);
    return VN_PASS;
}

/* Bind 2 (XEP-0386): <active/> or <inactive/> inside a SASL2 login is
 * taken as the same element on the stream (csi_element). */
static vn_hook_result csi_bind2_feature(vn_event *ev, void *ud)
{
    vn_stanza_set_attr(vn_stanza_add_child(ev->data, "feature", vn_stanza_ns(ev->data)), "var",
                       NS_CSI);
    return VN_PASS;
}

/* ---- module ---- */

static int csi_load(vn_module *m)
{
    vn_hook_add("stream/features", 0, csi_feature, m);
    vn_hook_add("stream/element", 0, csi_element, m);
    vn_hook_add("stanza/out", 0, csi_filter, m);
    vn_hook_add("session/hibernated", 0, csi_hibernated, m);
    vn_hook_add("bind2/inline", 0, csi_element, m);
    vn_hook_add("bind2/features", 0, csi_bind2_feature, m);
    return 0;
}

static void csi_unload(vn_module *m)
{
    vn_hook_remove("stream/features", csi_feature, m);
    vn_hook_remove("stream/element", csi_element, m);
    vn_hook_remove("stanza/out", csi_filter, m);
    vn_hook_remove("session/hibernated", csi_hibernated, m);
    vn_hook_remove("bind2/inline", csi_element, m);
    vn_hook_remove("bind2/features", csi_bind2_feature, m);
    /* What is held goes out now: nothing would send it later. */
    while (all_states) {
        vn_session *s = all_states->session;
        flush(s, all_states);
        vn_session_set_data(s, m, NULL, NULL);
    }
}

VN_MODULE("csi", "Client State Indication (XEP-0352)", csi_keys, csi_load, csi_unload, NULL);
