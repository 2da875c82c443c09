/*
 * mod_presence.c - presence and subscriptions (RFC 6121 §3, §4).
 *
 * Owns a client's availability: initial presence (probes to the contacts
 * whose presence we have, broadcast to those who have ours and to the
 * account's other resources, stored subscription requests redelivered),
 * later updates, unavailable presence (explicit or when the stream dies),
 * directed presence, probes received for an account, and the subscription
 * state machine for stanzas the account sends and receives (the tables
 * themselves are in the core's roster.c). The router keeps using the
 * availability and priority set here for bare-JID delivery.
 *
 * The hook "presence/initial" runs after a session's first available
 * presence has been handled (ev->session, ev->stanza), for modules that
 * deliver stored data then (offline messages).
 */
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include <vestnik/module.h>

#define NS_PRE_APPROVAL "urn:xmpp:features:pre-approval"

/* A recipient of directed available presence (RFC 6121 §4.6). */
typedef struct directed_entry {
    char *jid;
    UT_hash_handle hh;
} directed_entry;

/* What the module keeps per session, in the slot keyed by the module. */
typedef struct presence_state {
    vn_stanza *last;          /* last available broadcast, without from/to */
    directed_entry *directed; /* must get our unavailable presence */
} presence_state;

static void forget_directed(presence_state *state, directed_entry *e)
{
    HASH_DEL(state->directed, e);
    free(e->jid);
    free(e);
}

static void state_free(void *p)
{
    presence_state *state = p;
    while (state->directed)
        forget_directed(state, state->directed);
    vn_stanza_free(state->last);
    free(state);
}

static presence_state *session_state(vn_module *m, vn_session *s)
{
    presence_state *state = vn_session_get_data(s, m);
    if (!state) {
        state = vn_alloc(sizeof *state);
        vn_session_set_data(s, m, state, state_free);
    }
    return state;
}

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

static vn_stanza *presence_new(const char *from, const char *to, const char *type)
{
    vn_stanza *p = vn_stanza_new("presence", VN_NS_CLIENT);
    vn_stanza_set_attr(p, "from", from);
    vn_stanza_set_attr(p, "to", to);
    vn_stanza_set_attr(p, "type", type);
    return p;
}

static void route_copy(const vn_stanza *st, const char *from, const char *to)
{
    vn_stanza *copy = vn_stanza_copy(st);
    vn_stanza_set_attr(copy, "from", from);
    vn_stanza_set_attr(copy, "to", to);
    vn_route(copy);
}

static void send_copy(vn_session *s, const vn_stanza *st, const char *from)
{
    vn_stanza *copy = vn_stanza_copy(st);
    vn_stanza_set_attr(copy, "from", from);
    vn_stanza_set_attr(copy, "to", vn_session_jid(s)->full);
    vn_session_send(s, copy);
    vn_stanza_free(copy);
}

static void update_priority(vn_session *s, const vn_stanza *st)
{
    const char *text = vn_stanza_child_text(st, "priority", VN_NS_CLIENT);
    long p = text ? strtol(text, NULL, 10) : 0;
    vn_session_set_priority(s, p < -128 ? -128 : p > 127 ? 127 : (int)p);
}

/* ---- the account's presence towards one contact ---- */

typedef struct current_presence_ctx {
    vn_module *m;
    const char *to;
    bool unavailable; /* send unavailable instead of the current presence */
    size_t sent;
} current_presence_ctx;

static bool send_current_presence(vn_session *s, void *ud)
{
    current_presence_ctx *ctx = ud;
    const presence_state *state = vn_session_get_data(s, ctx->m);
    if (!vn_session_available(s) || !state || !state->last)
        return true;
    if (ctx->unavailable)
        vn_route(presence_new(vn_session_jid(s)->full, ctx->to, "unavailable"));
    else
        route_copy(state->last, vn_session_jid(s)->full, ctx->to);
    ctx->sent++;
    return true;
}

/* Presence of every available resource of account to 'to'; returns how
 * many were sent. */
static size_t send_account_presence(vn_module *m, const vn_jid *account, const char *to,
                                    bool unavailable)
{
    current_presence_ctx ctx = {m, to, unavailable, 0};
    vn_sessions_foreach(account, send_current_presence, &ctx);
    return ctx.sent;
}

/* ---- broadcast ---- */

typedef struct broadcast_ctx {
    vn_module *m;
    vn_session *sender;
    const vn_stanza *st;
    bool to_sender; /* the account's resources include the sender */
} broadcast_ctx;

static bool broadcast_to_subscriber(const vn_roster_item *item, void *ud)
{
    const broadcast_ctx *ctx = ud;
    if (vn_subscription_has_from(item->subscription))
        route_copy(ctx->st, vn_session_jid(ctx->sender)->full, item->jid);
    return true;
}

static bool broadcast_to_own_resource(vn_session *s, void *ud)
{
    const broadcast_ctx *ctx = ud;
    if (vn_session_available(s) && (s != ctx->sender || ctx->to_sender))
        send_copy(s, ctx->st, vn_session_jid(ctx->sender)->full);
    return true;
}

/* RFC 6121 §4.2.2, §4.4.2, §4.5.2: to every contact with a subscription
 * from the account, and to the account's available resources. */
static void broadcast(vn_module *m, vn_session *sender, const vn_stanza *st, bool to_sender)
{
    const vn_jid *me = vn_session_jid(sender);
    broadcast_ctx ctx = {m, sender, st, to_sender};
    if (vn_roster_foreach(vn_server_store(), me->domain, me->local, broadcast_to_subscriber,
                          &ctx) != VN_STORE_OK)
        vn_log_error("presence: cannot read the roster of %s", me->bare);
    vn_sessions_foreach(me, broadcast_to_own_resource, &ctx);
}

/* ---- initial presence ---- */

typedef struct initial_ctx {
    vn_module *m;
    vn_session *session;
} initial_ctx;

typedef struct probe_answer_ctx {
    vn_module *m;
    vn_session *to;
} probe_answer_ctx;

static bool answer_into_session(vn_session *s, void *ud)
{
    const probe_answer_ctx *ctx = ud;
    if (vn_session_is_remote(s)) {
        /* Its presence is known on its node: that node answers. */
        vn_route(presence_new(vn_session_jid(ctx->to)->full, vn_session_jid(s)->full, "probe"));
        return true;
    }
    const presence_state *state = vn_session_get_data(s, ctx->m);
    if (vn_session_available(s) && state && state->last)
        send_copy(ctx->to, state->last, vn_session_jid(s)->full);
    return true;
}

/* A local contact's presence comes straight from the session table, once
 * the contact's own roster confirms the subscription. */
static void probe_local_contact(const initial_ctx *ctx, const vn_jid *contact)
{
    const vn_jid *me = vn_session_jid(ctx->session);
    vn_roster_item *theirs = NULL;
    if (vn_roster_get(vn_server_store(), contact->domain, contact->local, me->bare, &theirs) ==
            VN_STORE_OK &&
        vn_subscription_has_from(theirs->subscription)) {
        probe_answer_ctx answer = {ctx->m, ctx->session};
        vn_sessions_foreach(contact, answer_into_session, &answer);
    }
    vn_roster_item_free(theirs);
}

static bool probe_and_redeliver(const vn_roster_item *item, void *ud)
{
    const initial_ctx *ctx = ud;
    const vn_jid *me = vn_session_jid(ctx->session);
    if (vn_subscription_has_to(item->subscription)) {
        vn_jid *contact = vn_jid_parse(item->jid);
        if (contact && contact->local && vn_is_local_host(contact->domain))
            probe_local_contact(ctx, contact);
        else if (contact)
            vn_route(presence_new(me->bare, item->jid, "probe"));
        vn_jid_free(contact);
    }
    /* §3.1.3: a request still unanswered is shown again. */
    if (item->pending_in) {
        vn_stanza *request = presence_new(item->jid, me->bare, "subscribe");
        vn_session_send(ctx->session, request);
        vn_stanza_free(request);
    }
    return true;
}

static bool send_other_resource(vn_session *s, void *ud)
{
    const initial_ctx *ctx = ud;
    const presence_state *state = vn_session_get_data(s, ctx->m);
    if (s != ctx->session && vn_session_available(s) && state && state->last)
        send_copy(ctx->session, state->last, vn_session_jid(s)->full);
    return true;
}

static void initial_presence(vn_module *m, vn_session *s, vn_stanza *st)
{
    const vn_jid *me = vn_session_jid(s);
    initial_ctx ctx = {m, s};
    vn_sessions_foreach(me, send_other_resource, &ctx);
    if (vn_roster_foreach(vn_server_store(), me->domain, me->local, probe_and_redeliver, &ctx) !=
        VN_STORE_OK)
        vn_log_error("presence: cannot read the roster of %s", me->bare);
    vn_event ev = {.stanza = st, .session = s, .from = me, .host = me->domain};
    vn_hook_run("presence/initial", &ev);
}

/* ---- unavailable ---- */

static void go_unavailable(vn_module *m, vn_session *s, const vn_stanza *st)
{
    presence_state *state = session_state(m, s);
    vn_session_set_available(s, false);
    broadcast(m, s, st, false);
    while (state->directed) {
        route_copy(st, vn_session_jid(s)->full, state->directed->jid);
        forget_directed(state, state->directed);
    }
    vn_stanza_free(state->last);
    state->last = NULL;
}

/* "presence/broadcast": presence without 'to' from a client. */
static vn_hook_result client_broadcast(vn_event *ev, void *ud)
{
    vn_module *m = ud;
    vn_session *s = ev->session;
    const char *type = vn_stanza_attr(ev->stanza, "type");

    if (type && !is_type(type, "unavailable"))
        return VN_HANDLED; /* probes and subscriptions need an address */
    update_priority(s, ev->stanza);
    vn_stanza *clean = vn_stanza_copy(ev->stanza);
    vn_stanza_set_attr(clean, "from", NULL);
    vn_stanza_set_attr(clean, "to", NULL);

    if (type) {
        if (vn_session_available(s))
            go_unavailable(m, s, clean);
        vn_stanza_free(clean);
        return VN_HANDLED;
    }
    presence_state *state = session_state(m, s);
    bool initial = !vn_session_available(s);
    vn_stanza_free(state->last);
    state->last = clean;
    vn_session_set_available(s, true);
    broadcast(m, s, clean, true);
    if (initial)
        initial_presence(m, s, clean);
    return VN_HANDLED;
}

static vn_hook_result session_closed(vn_event *ev, void *ud)
{
    vn_module *m = ud;
    if (!vn_session_available(ev->session))
        return VN_PASS;
    vn_stanza *gone = vn_stanza_new("presence", VN_NS_CLIENT);
    vn_stanza_set_attr(gone, "type", "unavailable");
    go_unavailable(m, ev->session, gone);
    vn_stanza_free(gone);
    return VN_PASS;
}

/* ---- subscriptions ---- */

/* Store the item after a change: an item left with nothing in it goes. */
static int save_item(const vn_jid *account, const vn_roster_item *item)
{
    vn_store *store = vn_server_store();
    if (!item->listed && !item->pending_in)
        return vn_roster_remove(store, account->domain, account->local, item->jid, NULL);
    return vn_roster_put(store, account->domain, account->local, item, NULL);
}

typedef struct deliver_ctx {
    vn_stanza *st;
} deliver_ctx;

static bool deliver_to_available(vn_session *s, void *ud)
{
    const deliver_ctx *ctx = ud;
    if (vn_session_available(s))
        vn_session_send(s, ctx->st);
    return true;
}

/* The account sent a subscription stanza (RFC 6121 §3.1.2, §3.2.2, §3.3.2,
 * §3.4): change the roster, then route it from the bare JID. */
static void outbound_subscription(vn_module *m, vn_event *ev, vn_subscription_type type)
{
    const vn_jid *me = ev->from;
    vn_jid *to = vn_jid_parse(vn_stanza_attr(ev->stanza, "to"));
    if (!to || vn_jid_bare_equal(to, me)) {
        vn_jid_free(to); /* to oneself: nothing to subscribe to */
        return;
    }
    vn_roster_item *item = NULL;
    int rc = vn_roster_get(vn_server_store(), me->domain, me->local, to->bare, &item);
    if (rc == VN_STORE_NOT_FOUND)
        item = vn_roster_item_new(to->bare);
    if (rc == VN_STORE_ERROR) {
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        vn_jid_free(to);
        return;
    }
    vn_subscription_outcome o = vn_roster_apply_subscription(item, true, type);
    if (o.changed) {
        rc = save_item(me, item);
        if (rc != VN_STORE_OK) {
            vn_route_error(ev->stanza, "cancel",
                           rc == VN_ROSTER_FULL ? "not-allowed" : "internal-server-error",
                           rc == VN_ROSTER_FULL ? "The roster is full" : NULL);
            vn_roster_item_free(item);
            vn_jid_free(to);
            return;
        }
    }
    if (o.forward)
        route_copy(ev->stanza, me->bare, to->bare);
    if (o.gained_from || o.lost_from) {
        vn_jid *account = vn_jid_bare_copy(me);
        send_account_presence(m, account, to->bare, o.lost_from);
        vn_jid_free(account);
    }
    vn_roster_item_free(item);
    vn_jid_free(to);
}

/* A subscription stanza for a local account (RFC 6121 §3.1.3, §3.1.6,
 * §3.2.3, §3.3.3). A full 'to' is treated as the bare JID. */
static void inbound_subscription(vn_module *m, vn_event *ev, vn_subscription_type type)
{
    vn_jid *me = vn_jid_bare_copy(ev->to);
    vn_jid *contact = vn_jid_bare_copy(ev->from);
    vn_roster_item *item = NULL;

    if (vn_jid_equal(me, contact))
        goto done; /* a request to oneself is not stored */
    if (!vn_account_exists(me->domain, me->local)) {
        if (type == VN_PRESENCE_SUBSCRIBE)
            vn_route(presence_new(me->bare, contact->bare, "unsubscribed"));
        goto done;
    }
    int rc = vn_roster_get(vn_server_store(), me->domain, me->local, contact->bare, &item);
    if (rc == VN_STORE_NOT_FOUND && type == VN_PRESENCE_SUBSCRIBE)
        item = vn_roster_item_new(contact->bare);
    if (!item)
        goto done; /* nothing to change: no item, or unreadable */

    vn_subscription_outcome o = vn_roster_apply_subscription(item, false, type);
    if (o.changed && save_item(me, item) != VN_STORE_OK) {
        vn_log_warn("presence: %s from %s to %s not stored", vn_stanza_attr(ev->stanza, "type"),
                    contact->bare, me->bare);
        goto done;
    }
    if (o.auto_reply)
        vn_route(presence_new(me->bare, contact->bare, "subscribed"));
    if (o.gained_from || o.lost_from)
        send_account_presence(m, me, contact->bare, o.lost_from);
    if (o.forward) {
        /* From the contact's bare JID to ours, as §3.1.3 shows it. */
        deliver_ctx ctx = {vn_stanza_copy(ev->stanza)};
        vn_stanza_set_attr(ctx.st, "from", contact->bare);
        vn_stanza_set_attr(ctx.st, "to", me->bare);
        vn_sessions_foreach(me, deliver_to_available, &ctx);
        vn_stanza_free(ctx.st);
    }
done:
    vn_roster_item_free(item);
    vn_jid_free(me);
    vn_jid_free(contact);
}

/* RFC 6121 §4.3.2: only a contact with a subscription from the account
 * learns its presence; anyone else's probe is ignored. */
static void answer_probe(vn_module *m, vn_event *ev)
{
    vn_jid *me = vn_jid_bare_copy(ev->to);
    vn_roster_item *item = NULL;

    if (vn_jid_bare_equal(me, ev->from) || !vn_account_exists(me->domain, me->local))
        goto done;
    if (vn_roster_get(vn_server_store(), me->domain, me->local, ev->from->bare, &item) !=
            VN_STORE_OK ||
        !vn_subscription_has_from(item->subscription))
        goto done;
    if (ev->to->resource && ev->session && vn_session_is_remote(ev->session)) {
        vn_session_send(ev->session, ev->stanza); /* its node answers */
    } else if (ev->to->resource) {
        const presence_state *state = ev->session ? vn_session_get_data(ev->session, m) : NULL;
        if (state && state->last && vn_session_available(ev->session))
            route_copy(state->last, ev->to->full, ev->from->full);
        else
            vn_route(presence_new(ev->to->full, ev->from->full, "unavailable"));
    } else if (send_account_presence(m, me, ev->from->full, false) == 0) {
        vn_route(presence_new(me->bare, ev->from->full, "unavailable"));
    }
done:
    vn_roster_item_free(item);
    vn_jid_free(me);
}

/* "presence/bare" and "presence/full": presence for a local account. */
static vn_hook_result inbound_presence(vn_event *ev, void *ud)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    vn_subscription_type sub;
    if (vn_subscription_type_parse(type, &sub)) {
        inbound_subscription(ud, ev, sub);
        return VN_HANDLED;
    }
    if (is_type(type, "probe")) {
        answer_probe(ud, ev);
        return VN_HANDLED;
    }
    return VN_PASS;
}

/* ---- presence a client sends to an address ---- */

/* Does contact have a subscription 'from' the account me (so that it gets
 * the unavailable broadcast anyway)? */
static bool is_subscriber(const vn_jid *me, const vn_jid *contact)
{
    vn_roster_item *item = NULL;
    bool subscriber = vn_roster_get(vn_server_store(), me->domain, me->local, contact->bare,
                                    &item) == VN_STORE_OK &&
                      vn_subscription_has_from(item->subscription);
    vn_roster_item_free(item);
    return subscriber;
}

/* Remembers who got directed available presence, so that they get our
 * unavailable presence later. False when the session already has
 * max_directed of them: that presence must not go out, since nobody would
 * tell its recipient when we leave. */
static bool track_directed(vn_module *m, vn_event *ev, const char *type)
{
    const vn_jid *me = ev->from;
    vn_jid *to = vn_jid_parse(vn_stanza_attr(ev->stanza, "to"));
    bool tracked = true;
    if (!to || vn_jid_bare_equal(to, me)) {
        vn_jid_free(to);
        return true;
    }
    presence_state *state = session_state(m, ev->session);
    directed_entry *e = NULL;
    HASH_FIND_STR(state->directed, to->full, e);
    if (type && e) {
        forget_directed(state, e);
    } else if (!type && !e && !is_subscriber(me, to)) {
        tracked = HASH_COUNT(state->directed) < (size_t)vn_module_config_int(m, "max_directed");
        if (tracked) {
            e = vn_alloc(sizeof *e);
            e->jid = vn_strdup(to->full);
            HASH_ADD_KEYPTR(hh, state->directed, e->jid, strlen(e->jid), e);
        }
    }
    vn_jid_free(to);
    return tracked;
}

/* "stanza/in": subscription stanzas go through the state machine; directed
 * presence is remembered; probes leave from the bare JID. */
static vn_hook_result client_presence(vn_event *ev, void *ud)
{
    if (!vn_stanza_is(ev->stanza, "presence", NULL) || !ev->session)
        return VN_PASS;
    const char *type = vn_stanza_attr(ev->stanza, "type");
    vn_subscription_type sub;
    if (vn_subscription_type_parse(type, &sub)) {
        outbound_subscription(ud, ev, sub);
        return VN_HANDLED;
    }
    if (is_type(type, "probe"))
        vn_stanza_set_attr(ev->stanza, "from", ev->from->bare);
    else if ((!type || is_type(type, "unavailable")) && !track_directed(ud, ev, type)) {
        vn_log_info("presence: %s has sent directed presence to too many addresses",
                    ev->from->full);
        vn_stanza *reply =
            vn_stanza_error_reply(ev->stanza, "modify", "policy-violation",
                                  "Directed presence to too many addresses: send unavailable "
                                  "to some first");
        if (reply)
            vn_session_send(ev->session, reply);
        vn_stanza_free(reply);
        return VN_HANDLED;
    }
    return VN_PASS;
}

static vn_hook_result add_stream_feature(vn_event *ev, void *ud)
{
    vn_stanza_add_child(ev->data, "sub", NS_PRE_APPROVAL);
    return VN_PASS;
}

/* ---- module ---- */

static const vn_config_key presence_keys[] = {
    {.name = "max_directed", .type = VN_CONF_INT, .default_value = "1000", .min = 1, .max = 100000},
    {.name = NULL},
};

static int presence_load(vn_module *m)
{
    vn_hook_add("presence/broadcast", 0, client_broadcast, m);
    vn_hook_add("presence/bare", 0, inbound_presence, m);
    vn_hook_add("presence/full", 0, inbound_presence, m);
    vn_hook_add("stanza/in", 0, client_presence, m);
    vn_hook_add("session/closed", 0, session_closed, m);
    vn_hook_add("stream/features", 0, add_stream_feature, m);
    return 0;
}

static void presence_unload(vn_module *m)
{
    vn_hook_remove("presence/broadcast", client_broadcast, m);
    vn_hook_remove("presence/bare", inbound_presence, m);
    vn_hook_remove("presence/full", inbound_presence, m);
    vn_hook_remove("stanza/in", client_presence, m);
    vn_hook_remove("session/closed", session_closed, m);
    vn_hook_remove("stream/features", add_stream_feature, m);
}

VN_MODULE("presence", "Presence and subscriptions (RFC 6121 §3, §4)", presence_keys, presence_load,
          presence_unload, NULL);
