/*
 * call.c - the calls of rooms and their participants.
 *
 * A room's call exists while someone is in it: the first accepted
 * session-initiate to the room's call contact opens it (one conference
 * number of the media engine), the last participant leaving ends it. A
 * participant is one Jingle session (caller's full JID, sid) and one leg
 * of the engine. The life of one:
 *
 *   JMI <propose/>  ->  <ringing/> and <proceed/> from .../bridge
 *   session-initiate  ->  result, then session-accept (the engine's answer)
 *   engine CONNECTED  ->  in the call: the room and the participants hear
 *   session-terminate (either side), engine FAILED, a moderator's
 *   <remove/>, the caller's session closing, the room going away  ->  out,
 *   its leg closed at once.
 *
 * Nothing waits on anyone: a JMI propose is answered on the spot (the
 * bridge "picks up" at once), and a session-initiate with or without one
 * before it is taken the same way. Errors follow XEP-0166: a Jingle
 * request about no session gets <unknown-session/>, one that makes no
 * sense in the session's state <out-of-order/>, a malformed one
 * bad-request; an offer the bridge cannot take is acknowledged and ended
 * with the reason saying why (jingle.c).
 *
 * What the room sees (xeps/room-calls.md §6): a notice from the
 * room when the call starts and ends, and a <call/> element with who is
 * in it each time that changes; each participant gets the XEP-0298
 * conference-info of the call in an iq, which Dino shows.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "voice.h"

typedef struct call call;

typedef struct participant {
    char *key; /* "<full JID> <sid>", hash key */
    char *full;
    char *bare;
    char *sid;
    char *nick;
    vc_leg_id leg;
    char accept_id[48]; /* our session-accept, until its result */
    bool connected;
    bool muted;
    call *call;
    UT_hash_handle hh;     /* by key */
    UT_hash_handle hh_leg; /* by leg */
} participant;

struct call {
    char *contact; /* room@call.host, hash key */
    char *room;    /* room@conference.host */
    char *local;
    const voice_domain *dom;
    uint64_t conf;
    participant **members;
    size_t count;
    unsigned version;  /* of the conference-info */
    bool announced;    /* the room was told it started */
    bool closing;      /* every participant is being ended: no updates */
    size_t told_count; /* in the call, as the contact's presence last said */
    UT_hash_handle hh;
};

static struct {
    const vn_module *module;
    call *calls;
    participant *sessions;
    participant *by_leg;
    uint64_t next_conf;
    uint32_t boot; /* random, per start */
    unsigned long next_id;
} calls;

/* Ids of what the bridge sends: unique across restarts too (clients drop
 * a message whose id and sender they have seen before). */
static void next_id(char *out, size_t size, const char *prefix)
{
    snprintf(out, size, "%s%08x%lu", prefix, calls.boot, ++calls.next_id);
}

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

/* ---- calls ---- */

static call *call_find(const voice_domain *dom, const char *local)
{
    char *contact = voice_contact_bare(dom, local);
    call *c = NULL;
    HASH_FIND_STR(calls.calls, contact, c);
    free(contact);
    return c;
}

static call *call_open(const voice_domain *dom, const char *local, const char *room)
{
    call *c = vn_alloc(sizeof *c);
    c->contact = voice_contact_bare(dom, local);
    c->room = vn_strdup(room);
    c->local = vn_strdup(local);
    c->dom = dom;
    c->conf = ++calls.next_conf;
    HASH_ADD_KEYPTR(hh, calls.calls, c->contact, strlen(c->contact), c);
    return c;
}

static size_t connected_count(const call *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->count; i++)
        n += c->members[i]->connected;
    return n;
}

size_t voice_call_connected(const voice_domain *dom, const char *local)
{
    const call *c = call_find(dom, local);
    return c && !c->closing ? connected_count(c) : 0;
}

/* The <call/> element of xeps/room-calls.md §6. */
static vn_stanza *call_element(const call *c, bool active)
{
    char number[24];
    vn_stanza *el = vn_stanza_new("call", NS_CALL);
    vn_stanza_set_attr(el, "jid", c->contact);
    vn_stanza_set_attr(el, "state", active ? "active" : "ended");
    snprintf(number, sizeof number, "%zu", active ? connected_count(c) : 0);
    vn_stanza_set_attr(el, "participants", number);
    for (size_t i = 0; active && i < c->count; i++) {
        const participant *p = c->members[i];
        if (!p->connected)
            continue;
        vn_stanza *item = vn_stanza_add_child(el, "participant", NS_CALL);
        vn_stanza_set_attr(item, "nick", p->nick);
        if (p->muted)
            vn_stanza_set_attr(item, "muted", "true");
    }
    return el;
}

/* A notice from the room to its occupants; body NULL for none. */
static void tell_room(const call *c, bool active, const char *body)
{
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "to", c->room);
    vn_stanza_set_attr(msg, "type", "groupchat");
    char id[48];
    next_id(id, sizeof id, "call-");
    vn_stanza_set_attr(msg, "id", id);
    if (body)
        vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, body);
    vn_stanza_append(msg, call_element(c, active));
    vn_stanza_add_child(msg, "no-permanent-store", NS_HINTS);
    vn_event ev = {.stanza = msg, .host = c->dom->host};
    vn_hook_run("rooms/notify", &ev);
    vn_stanza_free(msg);
}

/* XEP-0298 (RFC 4575) conference-info to every connected participant. */
static void send_conference_info(call *c)
{
    char number[24];
    c->version++;
    char *from = voice_contact_full(c->dom, c->local);
    for (size_t i = 0; i < c->count; i++) {
        const participant *to = c->members[i];
        if (!to->connected)
            continue;
        vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
        vn_stanza_set_attr(iq, "from", from);
        vn_stanza_set_attr(iq, "to", to->full);
        vn_stanza_set_attr(iq, "type", "set");
        char id[48];
        next_id(id, sizeof id, "coin-");
        vn_stanza_set_attr(iq, "id", id);
        vn_stanza *info = vn_stanza_add_child(iq, "conference-info", NS_COIN);
        char *entity = vn_asprintf("xmpp:%s", c->contact);
        vn_stanza_set_attr(info, "entity", entity);
        free(entity);
        snprintf(number, sizeof number, "%u", c->version);
        vn_stanza_set_attr(info, "version", number);
        vn_stanza_set_attr(info, "state", "full");
        vn_stanza *users = vn_stanza_add_child(info, "users", NS_COIN);
        for (size_t k = 0; k < c->count; k++) {
            const participant *p = c->members[k];
            if (!p->connected)
                continue;
            vn_stanza *user = vn_stanza_add_child(users, "user", NS_COIN);
            char *who = vn_asprintf("xmpp:%s/%s", c->room, p->nick);
            vn_stanza_set_attr(user, "entity", who);
            vn_stanza_set_attr(user, "state", "full");
            vn_stanza_add_text_child(user, "display-text", NS_COIN, p->nick);
            vn_stanza *endpoint = vn_stanza_add_child(user, "endpoint", NS_COIN);
            vn_stanza_set_attr(endpoint, "entity", who);
            free(who);
            vn_stanza *media = vn_stanza_add_child(endpoint, "media", NS_COIN);
            vn_stanza_set_attr(media, "id", "audio");
            vn_stanza_add_text_child(media, "type", NS_COIN, "audio");
            vn_stanza_add_text_child(media, "status", NS_COIN, p->muted ? "recvonly" : "sendrecv");
        }
        vn_route(iq);
    }
    free(from);
}

/* Who is in the call changed: the room and the participants hear. */
static void call_changed(call *c)
{
    if (c->closing)
        return;
    size_t connected = connected_count(c);
    if (connected != c->told_count) {
        c->told_count = connected;
        voice_contact_call_changed(c->dom, c->local);
    }
    if (connected > 0 && !c->announced) {
        c->announced = true;
        char *body = vn_asprintf(vn_tr(NULL, N_("A call started in this room: call %s to join")),
                                 c->contact);
        tell_room(c, true, body);
        free(body);
    } else if (c->announced) {
        tell_room(c, true, NULL);
    }
    send_conference_info(c);
}

static void call_close(call *c)
{
    if (c->announced)
        tell_room(c, false, vn_tr(NULL, N_("The call in this room ended")));
    HASH_DEL(calls.calls, c);
    if (c->told_count > 0)
        voice_contact_call_changed(c->dom, c->local);
    free(c->members);
    free(c->contact);
    free(c->room);
    free(c->local);
    free(c);
}

/* ---- participants ---- */

static participant *session_find(const char *full, const char *sid)
{
    char *key = vn_asprintf("%s %s", full, sid);
    participant *p = NULL;
    HASH_FIND_STR(calls.sessions, key, p);
    free(key);
    return p;
}

static participant *participant_add(call *c, const vn_jid *from, const char *sid, const char *nick,
                                    vc_leg_id leg)
{
    participant *p = vn_alloc(sizeof *p);
    p->key = vn_asprintf("%s %s", from->full, sid);
    p->full = vn_strdup(from->full);
    p->bare = vn_strdup(from->bare);
    p->sid = vn_strdup(sid);
    p->nick = vn_strdup(nick);
    p->leg = leg;
    p->call = c;
    HASH_ADD_KEYPTR(hh, calls.sessions, p->key, strlen(p->key), p);
    HASH_ADD(hh_leg, calls.by_leg, leg, sizeof p->leg, p);
    c->members = vn_realloc(c->members, (c->count + 1) * sizeof *c->members);
    c->members[c->count++] = p;
    return p;
}

/* Takes p out of its call and frees it; the call ends with its last. */
static void participant_drop(participant *p)
{
    call *c = p->call;
    bool was_connected = p->connected;
    vc_leg_stats st;
    if (vc_leg_stats_get(voice_engine(), p->leg, &st) == VC_OK)
        vn_log_info("voice: %s: %llu packets in, %llu out, %llu lost, %llu concealed, "
                    "%llu recovered by FEC, %llu SRTP failures, jitter %u ms",
                    p->full, (unsigned long long)st.packets_in, (unsigned long long)st.packets_out,
                    (unsigned long long)st.packets_lost, (unsigned long long)st.packets_concealed,
                    (unsigned long long)st.packets_recovered, (unsigned long long)st.srtp_failures,
                    st.jitter_ms);
    vc_leg_close(voice_engine(), p->leg);
    HASH_DEL(calls.sessions, p);
    HASH_DELETE(hh_leg, calls.by_leg, p);
    for (size_t i = 0; i < c->count; i++)
        if (c->members[i] == p) {
            memmove(&c->members[i], &c->members[i + 1], (c->count - i - 1) * sizeof *c->members);
            c->count--;
            break;
        }
    vn_log_info("voice: %s left the call of %s", p->full, c->room);
    free(p->key);
    free(p->full);
    free(p->bare);
    free(p->sid);
    free(p->nick);
    free(p);
    if (c->count == 0)
        call_close(c);
    else if (was_connected)
        call_changed(c);
}

static void send_jingle(const call *c, const char *to, vn_stanza *jingle)
{
    char *from = voice_contact_full(c->dom, c->local);
    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    vn_stanza_set_attr(iq, "from", from);
    vn_stanza_set_attr(iq, "to", to);
    vn_stanza_set_attr(iq, "type", "set");
    char id[48];
    next_id(id, sizeof id, "jingle-");
    vn_stanza_set_attr(iq, "id", id);
    vn_stanza_append(iq, jingle);
    free(from);
    vn_route(iq);
}

/* A session-terminate from the bridge, and the participant is gone. */
static void participant_end(participant *p, const char *reason, const char *text,
                            const char *app_condition)
{
    vn_stanza *jingle = jingle_build_terminate(p->sid, reason, text);
    if (app_condition)
        vn_stanza_add_child(vn_stanza_child(jingle, "reason", NS_JINGLE), app_condition, NS_CALL);
    send_jingle(p->call, p->full, jingle);
    participant_drop(p);
}

/* ---- JMI (XEP-0353) ---- */

static void send_jmi(const voice_domain *dom, const char *local, const char *to,
                     const char *element, const char *id, const char *reason, const char *text)
{
    char *from = voice_contact_full(dom, local);
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "from", from);
    vn_stanza_set_attr(msg, "to", to);
    vn_stanza_set_attr(msg, "type", "chat");
    char mid[48];
    next_id(mid, sizeof mid, "jmi-");
    vn_stanza_set_attr(msg, "id", mid);
    vn_stanza *el = vn_stanza_add_child(msg, element, NS_JMI);
    vn_stanza_set_attr(el, "id", id);
    if (reason) {
        vn_stanza *r = vn_stanza_add_child(el, "reason", NS_JINGLE);
        vn_stanza_add_child(r, reason, NS_JINGLE);
        if (text)
            vn_stanza_add_text_child(r, "text", NS_JINGLE, text);
    }
    vn_stanza_add_child(msg, "store", NS_HINTS);
    free(from);
    vn_route(msg);
}

/* Would one more participant fit? NULL or the reason it would not. */
static const char *no_room_for_one_more(const voice_domain *dom, const char *local)
{
    const voice_limits *limits = voice_limits_get();
    const call *c = call_find(dom, local);
    if (c && (long long)c->count >= limits->max_participants)
        return N_("The call is full");
    if (!c && (long long)HASH_COUNT(calls.calls) >= limits->max_calls)
        return N_("The server has as many calls as it can take");
    return NULL;
}

static bool proposes_audio(const vn_stanza *propose)
{
    for (const vn_stanza *d = vn_stanza_first_element(propose); d; d = vn_stanza_next_element(d))
        if (vn_stanza_is(d, "description", NS_JINGLE_RTP) && vn_stanza_attr(d, "media") &&
            strcmp(vn_stanza_attr(d, "media"), "audio") == 0)
            return true;
    return false;
}

void voice_call_message(const voice_domain *dom, vn_event *ev)
{
    const vn_stanza *propose = vn_stanza_child(ev->stanza, "propose", NS_JMI);
    const char *local = ev->to->local;
    if (!propose) {
        /* retract, finish and the rest need nothing from the bridge: it
         * answers at once, and a session ends with its terminate. */
        const vn_stanza *jmi = vn_stanza_first_element(ev->stanza);
        if (!jmi || !vn_stanza_ns(jmi) || strcmp(vn_stanza_ns(jmi), NS_JMI) != 0)
            vn_route_error(ev->stanza, "cancel", "feature-not-implemented",
                           N_("This is a room's call contact: call it to join the call"));
        return;
    }
    const char *id = vn_stanza_attr(propose, "id");
    if (!id || !*id || strlen(id) > 256) {
        vn_route_error(ev->stanza, "modify", "bad-request", NULL);
        return;
    }
    const char *lang = vn_stanza_attr(ev->stanza, "xml:lang");
    vn_room_query q;
    const char *refusal = voice_may_call(dom, local, ev->from, &q);
    vn_room_query_clear(&q);
    const char *full = refusal ? NULL : no_room_for_one_more(dom, local);
    if (refusal)
        send_jmi(dom, local, ev->from->full, "reject", id, "decline", vn_tr(lang, refusal));
    else if (full)
        send_jmi(dom, local, ev->from->full, "reject", id, "busy", vn_tr(lang, full));
    else if (!proposes_audio(propose))
        send_jmi(dom, local, ev->from->full, "reject", id, "unsupported-applications",
                 vn_tr(lang, N_("The room's call is audio only")));
    else {
        send_jmi(dom, local, ev->from->full, "ringing", id, NULL, NULL);
        send_jmi(dom, local, ev->from->full, "proceed", id, NULL, NULL);
    }
}

/* ---- Jingle ---- */

static void ack(const vn_event *ev)
{
    vn_route(vn_stanza_iq_result(ev->stanza));
}

/* An offer the bridge cannot take: acknowledged, then ended with why. */
static void refuse_session(const voice_domain *dom, vn_event *ev, const char *sid,
                           const char *reason, const char *text)
{
    ack(ev);
    char *from = voice_contact_full(dom, ev->to->local);
    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    vn_stanza_set_attr(iq, "from", from);
    vn_stanza_set_attr(iq, "to", ev->from->full);
    vn_stanza_set_attr(iq, "type", "set");
    char id[48];
    next_id(id, sizeof id, "jingle-");
    vn_stanza_set_attr(iq, "id", id);
    vn_stanza_append(iq, jingle_build_terminate(sid, reason, text));
    free(from);
    vn_route(iq);
}

static const char *leg_error_reason(int err)
{
    switch (err) {
    case VC_EFULL:
    case VC_ENOPORT: return "busy";
    case VC_EFINGERPRINT: return "security-error";
    case VC_EINVAL: return "failed-application";
    default: return "general-error";
    }
}

static void session_initiate(const voice_domain *dom, vn_event *ev, const vn_stanza *jingle,
                             const char *sid)
{
    const char *local = ev->to->local;
    const char *lang = vn_stanza_attr(ev->stanza, "xml:lang");
    if (session_find(ev->from->full, sid)) {
        voice_iq_error(ev->stanza, "cancel", "unexpected-request", "out-of-order",
                       N_("A session with this sid exists already"));
        return;
    }
    vn_room_query q;
    const char *refusal = voice_may_call(dom, local, ev->from, &q);
    if (refusal) {
        vn_room_query_clear(&q);
        voice_iq_error(ev->stanza, "auth", "forbidden", NULL, refusal);
        return;
    }
    char *nick = q.nick ? vn_strdup(q.nick)
                        : vn_strdup(ev->from->local ? ev->from->local : ev->from->domain);
    char *room = vn_strdup(q.jid);
    vn_room_query_clear(&q);

    jingle_offer offer;
    const char *text = NULL;
    jingle_status st = jingle_parse_offer(jingle, &offer, &text);
    const char *full = no_room_for_one_more(dom, local);
    if (st == JINGLE_MALFORMED) {
        voice_iq_error(ev->stanza, "modify", "bad-request", NULL, text);
    } else if (st != JINGLE_OK) {
        refuse_session(dom, ev, sid, jingle_status_reason(st), vn_tr(lang, text));
    } else if (full) {
        refuse_session(dom, ev, sid, "busy", vn_tr(lang, full));
    } else {
        call *c = call_find(dom, local);
        bool opened = !c;
        if (!c)
            c = call_open(dom, local, room);
        vc_remote remote;
        vc_local answer;
        vc_leg_id leg = 0;
        jingle_offer_remote(&offer, &remote);
        int rc = vc_leg_open(voice_engine(), c->conf, &remote, &answer, &leg);
        if (rc < 0) {
            vn_log_warn("voice: no leg for %s in %s: %s", ev->from->full, room, vc_strerror(rc));
            if (opened)
                call_close(c);
            refuse_session(dom, ev, sid, leg_error_reason(rc),
                           vn_tr(lang, strcmp(leg_error_reason(rc), "busy") == 0
                                           ? N_("The call cannot take more participants")
                                           : N_("The bridge could not open the call")));
        } else {
            participant *p = participant_add(c, ev->from, sid, nick, leg);
            for (size_t i = 0; i < answer.n_candidates; i++)
                voice_advertise(answer.candidates[i].ip, sizeof answer.candidates[i].ip);
            const char *initiator = vn_stanza_attr(jingle, "initiator");
            char *responder = voice_contact_full(dom, local);
            vn_stanza *accept = jingle_build_accept(
                &offer, &answer, sid, initiator ? initiator : ev->from->full, responder);
            free(responder);
            ack(ev);
            vn_log_info("voice: %s joins the call of %s (leg %u)", ev->from->full, room,
                        (unsigned)leg);
            char *from = voice_contact_full(dom, local);
            vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
            vn_stanza_set_attr(iq, "from", from);
            vn_stanza_set_attr(iq, "to", p->full);
            vn_stanza_set_attr(iq, "type", "set");
            next_id(p->accept_id, sizeof p->accept_id, "accept-");
            vn_stanza_set_attr(iq, "id", p->accept_id);
            vn_stanza_append(iq, accept);
            free(from);
            vn_route(iq);
        }
    }
    if (st == JINGLE_OK)
        jingle_offer_free(&offer);
    free(nick);
    free(room);
}

/* session-info payloads of XEP-0167 §7 (and an empty one, a ping). */
static bool known_session_info(const vn_stanza *jingle)
{
    static const char *const infos[] = {"active", "hold", "mute", "unhold", "unmute", "ringing"};
    const vn_stanza *info = vn_stanza_first_element(jingle);
    if (!info)
        return true;
    for (size_t i = 0; i < sizeof infos / sizeof *infos; i++)
        if (vn_stanza_is(info, infos[i], NS_JINGLE_RTP_INFO))
            return true;
    return false;
}

void voice_call_jingle(const voice_domain *dom, vn_event *ev)
{
    const vn_stanza *jingle = vn_stanza_child(ev->stanza, "jingle", NS_JINGLE);
    const char *action = vn_stanza_attr(jingle, "action");
    const char *sid = vn_stanza_attr(jingle, "sid");
    if (!jingle_known_action(action) || !sid || !*sid || strlen(sid) > 256) {
        voice_iq_error(ev->stanza, "modify", "bad-request", NULL,
                       N_("A Jingle request needs a known action and a sid"));
        return;
    }
    if (strcmp(action, "session-initiate") == 0) {
        session_initiate(dom, ev, jingle, sid);
        return;
    }
    participant *p = session_find(ev->from->full, sid);
    if (!p || strcmp(p->call->local, ev->to->local) != 0 || p->call->dom != dom) {
        voice_iq_error(ev->stanza, "cancel", "item-not-found", "unknown-session", NULL);
        return;
    }
    if (strcmp(action, "session-terminate") == 0) {
        ack(ev);
        participant_drop(p);
    } else if (strcmp(action, "session-accept") == 0) {
        /* The bridge is the responder: accepting is its part. */
        voice_iq_error(ev->stanza, "cancel", "unexpected-request", "out-of-order", NULL);
    } else if (strcmp(action, "session-info") == 0) {
        if (known_session_info(jingle))
            ack(ev);
        else
            voice_iq_error(ev->stanza, "cancel", "feature-not-implemented", "unsupported-info",
                           NULL);
    } else if (strcmp(action, "content-add") == 0) {
        ack(ev);
        vn_stanza *reject = vn_stanza_copy(jingle);
        vn_stanza_set_attr(reject, "action", "content-reject");
        send_jingle(p->call, p->full, reject);
    } else if (strcmp(action, "transport-replace") == 0) {
        ack(ev);
        vn_stanza *reject = vn_stanza_copy(jingle);
        vn_stanza_set_attr(reject, "action", "transport-reject");
        send_jingle(p->call, p->full, reject);
    } else {
        /* transport-info (an ICE-lite bridge learns the caller's addresses
         * from its checks), description-info, security-info and the
         * content/transport answers: taken, nothing to do. */
        ack(ev);
    }
}

void voice_call_result(const voice_domain *dom, vn_event *ev)
{
    const char *id = vn_stanza_attr(ev->stanza, "id");
    if (!id || strncmp(id, "accept-", 7) != 0)
        return; /* conference-info, terminates: nothing hangs on them */
    for (participant *p = calls.sessions; p; p = p->hh.next) {
        if (strcmp(p->accept_id, id) != 0 || strcmp(p->full, ev->from->full) != 0)
            continue;
        p->accept_id[0] = '\0';
        if (is_type(vn_stanza_attr(ev->stanza, "type"), "error")) {
            vn_log_info("voice: %s refused the session-accept", p->full);
            participant_drop(p);
        }
        return;
    }
    (void)dom;
}

/* ---- the engine ---- */

/* What a participant is told when the engine gave up on its leg. */
static const char *failure_text(vc_fail_reason reason)
{
    switch (reason) {
    case VC_FAIL_ICE_TIMEOUT: return N_("The call's audio could not get through to the bridge");
    case VC_FAIL_DTLS: return N_("The call's encryption could not be set up");
    case VC_FAIL_CONSENT: return N_("The bridge lost the connection to you");
    case VC_FAIL_INTERNAL:
    case VC_FAIL_NONE: break;
    }
    return N_("The bridge had a problem with this call");
}

void voice_call_engine_event(const vc_event *ev, void *ud)
{
    participant *p = NULL;
    HASH_FIND(hh_leg, calls.by_leg, &ev->leg, sizeof ev->leg, p);
    if (!p)
        return;
    switch (ev->type) {
    case VC_EV_CONNECTED:
        if (!p->connected) {
            p->connected = true;
            vn_log_info("voice: %s is in the call of %s", p->full, p->call->room);
            call_changed(p->call);
        }
        break;
    case VC_EV_FAILED:
        vn_log_info("voice: the leg of %s failed: %s", p->full,
                    ev->detail ? ev->detail : jingle_failure_reason(ev->reason));
        participant_end(p, jingle_failure_reason(ev->reason), vn_tr(NULL, failure_text(ev->reason)),
                        NULL);
        break;
    case VC_EV_SPEAKING:
    case VC_EV_SILENT: break;
    }
}

/* ---- moderation and listing ---- */

static participant *by_nick(const call *c, const char *nick)
{
    for (size_t i = 0; c && nick && i < c->count; i++)
        if (strcmp(c->members[i]->nick, nick) == 0)
            return c->members[i];
    return NULL;
}

void voice_call_moderate(const voice_domain *dom, vn_event *ev, const vn_stanza *cmd)
{
    const char *name = vn_stanza_name(cmd);
    bool mute = strcmp(name, "mute") == 0, unmute = strcmp(name, "unmute") == 0;
    bool remove = strcmp(name, "remove") == 0;
    if (!mute && !unmute && !remove) {
        voice_iq_error(ev->stanza, "cancel", "feature-not-implemented", NULL, NULL);
        return;
    }
    vn_room_query q;
    const char *refusal = voice_may_call(dom, ev->to->local, ev->from, &q);
    bool moderator = !refusal && (q.moderator || q.affiliation >= VN_ROOM_ADMIN);
    vn_room_query_clear(&q);
    if (!moderator) {
        voice_iq_error(ev->stanza, "auth", "forbidden", NULL,
                       N_("Only the room's moderators may do that"));
        return;
    }
    call *c = call_find(dom, ev->to->local);
    participant *p = by_nick(c, vn_stanza_attr(cmd, "nick"));
    if (!p) {
        voice_iq_error(ev->stanza, "cancel", "item-not-found", NULL,
                       N_("Nobody in the call has that nick"));
        return;
    }
    if (remove) {
        vn_log_info("voice: %s removes %s from the call of %s", ev->from->full, p->full, c->room);
        ack(ev);
        participant_end(p, "decline",
                        vn_tr(vn_stanza_attr(ev->stanza, "xml:lang"),
                              N_("A moderator removed you from the call")),
                        "removed");
        return;
    }
    vc_leg_set_muted(voice_engine(), p->leg, mute);
    p->muted = mute;
    ack(ev);
    if (p->connected)
        call_changed(c);
}

void voice_call_list(const voice_domain *dom, const char *local, vn_stanza *items)
{
    const call *c = call_find(dom, local);
    for (size_t i = 0; c && i < c->count; i++) {
        const participant *p = c->members[i];
        if (!p->connected)
            continue;
        char *jid = vn_asprintf("%s/%s", c->room, p->nick);
        vn_stanza *item = vn_stanza_add_child(items, "item", NS_DISCO_ITEMS);
        vn_stanza_set_attr(item, "jid", jid);
        vn_stanza_set_attr(item, "name", p->nick);
        free(jid);
    }
}

/* ---- going away ---- */

static void end_all(call *c, const char *reason, const char *text, bool tell)
{
    c->closing = true;
    if (!tell)
        c->announced = false; /* the room is going: nobody to tell */
    while (c && c->count > 0) {
        bool last = c->count == 1;
        participant_end(c->members[c->count - 1], reason, text, NULL);
        if (last)
            break; /* c is freed with its last participant */
    }
}

void voice_call_room_gone(const voice_domain *dom, const char *local)
{
    call *c = call_find(dom, local);
    if (c)
        end_all(c, "gone", vn_tr(NULL, N_("The room is gone")), false);
}

void voice_call_recheck(const voice_domain *dom, const char *local, const char *user_bare)
{
    call *c = call_find(dom, local);
    for (size_t i = c ? c->count : 0; i-- > 0;) {
        participant *p = c->members[i];
        if (strcmp(p->bare, user_bare) != 0)
            continue;
        vn_jid *who = vn_jid_parse(p->full);
        vn_room_query q;
        const char *refusal = who ? voice_may_call(dom, local, who, &q) : "";
        if (who)
            vn_room_query_clear(&q);
        vn_jid_free(who);
        if (refusal) {
            bool last = c->count == 1;
            participant_end(p, "decline", vn_tr(NULL, N_("You may no longer call this room")),
                            NULL);
            if (last)
                return;
        }
    }
}

/* The caller's resource went away: its sessions end with it. */
static vn_hook_result session_closed(vn_event *ev, void *ud)
{
    const vn_jid *full = vn_session_jid(ev->session);
    participant *p, *next;
    HASH_ITER(hh, calls.sessions, p, next)
    {
        if (strcmp(p->full, full->full) == 0)
            participant_drop(p);
    }
    return VN_PASS;
}

void voice_calls_start(const vn_module *m)
{
    calls.module = m;
    if (RAND_bytes((unsigned char *)&calls.boot, sizeof calls.boot) != 1)
        calls.boot = (uint32_t)vn_now_us();
    vn_hook_add("session/closed", 0, session_closed, (void *)m);
}

void voice_calls_stop(void)
{
    vn_hook_remove("session/closed", session_closed, (void *)calls.module);
    while (calls.calls)
        end_all(calls.calls, "gone", vn_tr(NULL, N_("The server is shutting the calls down")),
                true);
}
