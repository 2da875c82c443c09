/*
 * mod_muc.c - the Multi-User Chat service (XEP-0045) of each local host.
 *
 * Every configured host gets a service at <domain_prefix>.<host>, listed
 * in the host's disco#items. Stanzas for a domain that is not a local
 * host reach the "route/remote" hook; this module takes those addressed
 * to one of its services and passes the rest on. Here they are sorted by
 * address (service, room, occupant) and kind, and handed to the file that
 * deals with them; this file itself answers service discovery, self-pings
 * (XEP-0410), relays iq between occupants, and notices occupants that are
 * gone: their session closed, or the room asked after a bounce and their
 * server said so.
 *
 * Handling one stanza routes others, and routing can come straight back
 * here (an error bouncing off a vanished resource, a session closing while
 * being written to). Such re-entrant arrivals are queued and handled once
 * the outer stanza is done, so no handler sees a room change under it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "muc.h"

#define ROUTE_PRIORITY 100

static const vn_config_key muc_keys[] = {
    {.name = "domain_prefix", .type = VN_CONF_STRING, .default_value = "conference"},
    {.name = "max_rooms",
     .type = VN_CONF_INT,
     .default_value = "100000",
     .min = 1,
     .max = 100000000},
    {.name = "max_rooms_per_user",
     .type = VN_CONF_INT,
     .default_value = "100",
     .min = 0,
     .max = 1000000},
    {.name = "max_occupants",
     .type = VN_CONF_INT,
     .default_value = "1000",
     .min = 1,
     .max = 1000000},
    {.name = "max_messages_per_minute",
     .type = VN_CONF_INT,
     .default_value = "120",
     .min = 1,
     .max = 1000000},
    {.name = "max_pending_iq",
     .type = VN_CONF_INT,
     .default_value = "200",
     .min = 1,
     .max = 100000},
    {.name = "max_history_messages",
     .type = VN_CONF_INT,
     .default_value = "50",
     .min = 0,
     .max = 10000},
    {.name = NULL},
};

static struct {
    const vn_module *module;
    muc_limits limits;
    muc_service **services;
    size_t service_count;
} muc;

/* ---- helpers shared by the files ---- */

bool muc_is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

vn_stanza *muc_new_stanza(const char *name, const char *from, const char *to, const char *type)
{
    vn_stanza *st = vn_stanza_new(name, VN_NS_CLIENT);
    vn_stanza_set_attr(st, "from", from);
    if (to)
        vn_stanza_set_attr(st, "to", to);
    if (type)
        vn_stanza_set_attr(st, "type", type);
    return st;
}

void muc_iq_error(vn_event *ev, const char *type, const char *condition, const char *text)
{
    vn_route_error(ev->stanza, type, condition, text);
}

static muc_service *service_for(const char *domain)
{
    for (size_t i = 0; i < muc.service_count; i++)
        if (strcmp(muc.services[i]->domain, domain) == 0)
            return muc.services[i];
    return NULL;
}

muc_service *muc_service_of_domain(const char *domain)
{
    return service_for(domain);
}

muc_service *muc_service_of_host(const char *host)
{
    for (size_t i = 0; i < muc.service_count; i++)
        if (strcmp(muc.services[i]->host, host) == 0)
            return muc.services[i];
    return NULL;
}

/* ---- sessions: which rooms each local resource is in ---- */

typedef struct joined_rooms {
    char **rooms; /* room bare JIDs */
    size_t count;
} joined_rooms;

static void joined_rooms_free(void *data)
{
    joined_rooms *joined = data;
    for (size_t i = 0; i < joined->count; i++)
        free(joined->rooms[i]);
    free(joined->rooms);
    free(joined);
}

void muc_track_session(const muc_room *room, const vn_jid *full, bool joined)
{
    vn_session *session = vn_is_local_host(full->domain) ? vn_session_find(full) : NULL;
    if (!session)
        return;
    joined_rooms *list = vn_session_get_data(session, muc.module);
    if (!list) {
        if (!joined)
            return;
        list = vn_alloc(sizeof *list);
        vn_session_set_data(session, muc.module, list, joined_rooms_free);
    }
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->rooms[i], room->jid->bare) == 0) {
            if (!joined) {
                free(list->rooms[i]);
                list->rooms[i] = list->rooms[--list->count];
            }
            return;
        }
    if (joined) {
        list->rooms = vn_realloc(list->rooms, (list->count + 1) * sizeof *list->rooms);
        list->rooms[list->count++] = vn_strdup(room->jid->bare);
    }
}

/* ---- re-entrancy: work that arrives while a stanza is being handled ---- */

typedef struct pending_work {
    vn_stanza *stanza; /* a stanza to dispatch, or NULL for: */
    vn_jid *gone;      /* a real full JID that left every room */
    char *room;        /* ... or just this room (bare JID) */
    int code;          /* status code for its departure */
} pending_work;

static struct {
    int depth;
    pending_work *items;
    size_t count, head;
} queue;

static void dispatch(vn_event *ev);

static void forget_in_room(const char *room_bare, const vn_jid *full, int code)
{
    vn_jid *room_jid = vn_jid_parse(room_bare);
    muc_service *svc = room_jid ? service_for(room_jid->domain) : NULL;
    muc_room *room = svc ? muc_room_find(svc, room_jid->local) : NULL;
    if (room)
        muc_session_gone(svc, room, full, code);
    vn_jid_free(room_jid);
}

static void run_work(pending_work *work)
{
    if (work->stanza) {
        vn_jid *to = vn_jid_parse(vn_stanza_attr(work->stanza, "to"));
        vn_jid *from = vn_jid_parse(vn_stanza_attr(work->stanza, "from"));
        if (to && from) {
            vn_event ev = {.stanza = work->stanza, .from = from, .to = to, .host = to->domain};
            dispatch(&ev);
        }
        vn_jid_free(to);
        vn_jid_free(from);
        vn_stanza_free(work->stanza);
    } else {
        forget_in_room(work->room, work->gone, work->code);
        vn_jid_free(work->gone);
        free(work->room);
    }
}

static void enqueue(pending_work work)
{
    queue.items = vn_realloc(queue.items, (queue.count + 1) * sizeof *queue.items);
    queue.items[queue.count++] = work;
}

/* Handles what was queued while something else was being handled. */
static void drain(void)
{
    while (queue.head < queue.count) {
        pending_work next = queue.items[queue.head++];
        run_work(&next);
    }
    free(queue.items);
    queue.items = NULL;
    queue.count = queue.head = 0;
}

/* Runs work now if nothing is being handled, else after it. */
static void submit(pending_work work)
{
    if (queue.depth > 0) {
        enqueue(work);
        return;
    }
    queue.depth++;
    run_work(&work);
    drain();
    queue.depth--;
}

/* ---- delivery failures ----
 *
 * A stanza the room sent may bounce because the occupant's resource is
 * gone without a word (its server crashed, the link broke). But most
 * errors that come back say something else, and many can be provoked by
 * a third party: an occupant's client refusing an iq someone relayed to
 * it, its server refusing a private message from someone it blocked. So
 * no error removes an occupant by itself (XEP-0045 §18.1.3 leaves the
 * decision to the service). An error of a kind that could mean "gone",
 * from one of an occupant's own resources, makes the room ask that
 * resource directly with a ping of its own (XEP-0199, as XEP-0410 has
 * clients do it the other way round); only the answer to that ping, from
 * that resource (its server answers for it when it has gone), can remove
 * it. Errors to relayed iq requests are relayed back to the requester and
 * start nothing. */

#define CHECK_TIMEOUT_US (60LL * 1000000)

/* prefix and 32 hex digits of randomness; false if there is none. */
static bool random_id(char *out, size_t size, const char *prefix)
{
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return false;
    int n = snprintf(out, size, "%s", prefix);
    for (size_t i = 0; i < sizeof nonce && n > 0 && (size_t)n + 2 < size; i++)
        n += snprintf(out + n, size - (size_t)n, "%02x", nonce[i]);
    return true;
}

typedef struct occupant_check {
    char *room;   /* bare JID of the room */
    vn_jid *full; /* the resource being asked */
    char id[40];  /* of the ping */
    int64_t started_us;
} occupant_check;

static struct {
    occupant_check *items;
    size_t count;
} checks;

static void check_drop(size_t i)
{
    free(checks.items[i].room);
    vn_jid_free(checks.items[i].full);
    checks.items[i] = checks.items[--checks.count];
}

static void checks_free(void)
{
    while (checks.count > 0)
        check_drop(0);
    free(checks.items);
    checks.items = NULL;
}

/* Errors that say the resource is not there any more, from it or its
 * server; none of them is transient. */
static bool error_means_gone(const vn_stanza *st)
{
    static const char *const conditions[] = {"service-unavailable",   "item-not-found",
                                             "recipient-unavailable", "remote-server-not-found",
                                             "remote-server-timeout", "gone"};
    const vn_stanza *error = vn_stanza_child(st, "error", NULL);
    for (const vn_stanza *c = error ? vn_stanza_first_element(error) : NULL; c;
         c = vn_stanza_next_element(c))
        for (size_t i = 0; i < sizeof conditions / sizeof *conditions; i++)
            if (vn_stanza_is(c, conditions[i], VN_NS_STANZA_ERRORS))
                return true;
    return false;
}

void muc_suspect_gone(muc_room *room, vn_event *ev)
{
    if (!error_means_gone(ev->stanza) || !muc_occupant_by_session(room, ev->from))
        return;
    int64_t now = vn_now_us();
    for (size_t i = checks.count; i-- > 0;) {
        occupant_check *c = &checks.items[i];
        if (now - c->started_us >= CHECK_TIMEOUT_US)
            check_drop(i); /* unanswered: the resource did not say it is gone */
        else if (strcmp(c->room, room->jid->bare) == 0 && vn_jid_equal(c->full, ev->from))
            return; /* being asked already */
    }
    occupant_check check = {.started_us = now};
    if (!random_id(check.id, sizeof check.id, "check-"))
        return;
    check.room = vn_strdup(room->jid->bare);
    check.full = vn_jid_copy(ev->from);
    checks.items = vn_realloc(checks.items, (checks.count + 1) * sizeof *checks.items);
    checks.items[checks.count++] = check;

    vn_log_debug("muc: %s bounced a stanza of %s; asking it whether it is still there",
                 ev->from->full, room->jid->bare);
    vn_stanza *ping = muc_new_stanza("iq", room->jid->bare, ev->from->full, "get");
    vn_stanza_set_attr(ping, "id", check.id);
    vn_stanza_add_child(ping, "ping", NS_PING);
    vn_route(ping);
}

/* An iq result or error to the room itself: the answer to a check? */
static void check_answered(muc_room *room, vn_event *ev)
{
    const char *id = vn_stanza_attr(ev->stanza, "id");
    for (size_t i = 0; id && i < checks.count; i++) {
        occupant_check *c = &checks.items[i];
        /* The resource answers, or its server in its own name. */
        bool from_its_server = !ev->from->local && !ev->from->resource &&
                               strcmp(ev->from->domain, c->full->domain) == 0;
        if (strcmp(c->id, id) != 0 || strcmp(c->room, room->jid->bare) != 0 ||
            !(vn_jid_equal(c->full, ev->from) || from_its_server))
            continue;
        vn_jid *full = vn_jid_copy(c->full);
        check_drop(i);
        /* A result, or an error that does not mean gone (a client without
         * pings says feature-not-implemented): it is there. */
        if (muc_is_type(vn_stanza_attr(ev->stanza, "type"), "error") &&
            error_means_gone(ev->stanza) && muc_occupant_by_session(room, full))
            enqueue((pending_work){.gone = full, .room = vn_strdup(room->jid->bare), .code = 333});
        else
            vn_jid_free(full);
        return;
    }
}

/* ---- service discovery ---- */

static void service_disco_info(muc_service *svc, vn_event *ev, const vn_stanza *query)
{
    if (vn_stanza_attr(query, "node")) {
        muc_iq_error(ev, "cancel", "item-not-found", NULL);
        return;
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *info = vn_stanza_add_child(reply, "query", NS_DISCO_INFO);
    vn_stanza *identity = vn_stanza_add_child(info, "identity", NS_DISCO_INFO);
    vn_stanza_set_attr(identity, "category", "conference");
    vn_stanza_set_attr(identity, "type", "text");
    vn_stanza_set_attr(identity, "name",
                       vn_tr(vn_stanza_attr(ev->stanza, "xml:lang"), N_("Chatrooms")));
    static const char *const features[] = {NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC,
                                           NS_PING,       NS_MAM,         NS_OCCUPANT_ID};
    for (size_t i = 0; i < sizeof features / sizeof *features; i++)
        vn_stanza_set_attr(vn_stanza_add_child(info, "feature", NS_DISCO_INFO), "var", features[i]);
    vn_route(reply);
}

static void service_disco_items(muc_service *svc, vn_event *ev)
{
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *items = vn_stanza_add_child(reply, "query", NS_DISCO_ITEMS);
    for (const muc_room *room = svc->rooms; room; room = room->hh.next) {
        if (!room->config.public_room || room->locked)
            continue;
        vn_stanza *item = vn_stanza_add_child(items, "item", NS_DISCO_ITEMS);
        vn_stanza_set_attr(item, "jid", room->jid->bare);
        vn_stanza_set_attr(item, "name", room->config.name ? room->config.name : room->local);
    }
    vn_route(reply);
}

static void room_disco_info(muc_room *room, vn_event *ev, const vn_stanza *query)
{
    const char *node = vn_stanza_attr(query, "node");
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *info = vn_stanza_add_child(reply, "query", NS_DISCO_INFO);

    if (node && strcmp(node, "x-roomuser-item") == 0) {
        /* XEP-0045 §7.12: the requester's registered nick, if any. */
        const muc_member *member = muc_room_member(room, ev->from->bare);
        vn_stanza_set_attr(info, "node", node);
        if (member && member->nick) {
            vn_stanza *identity = vn_stanza_add_child(info, "identity", NS_DISCO_INFO);
            vn_stanza_set_attr(identity, "category", "conference");
            vn_stanza_set_attr(identity, "type", "text");
            vn_stanza_set_attr(identity, "name", member->nick);
        }
    } else if (node) {
        vn_stanza_free(reply);
        muc_iq_error(ev, "cancel", "item-not-found", NULL);
        return;
    } else {
        muc_room_disco_info(room, info,
                            muc_occupant_by_session(room, ev->from) ||
                                muc_room_affiliation(room, ev->from->bare) >= MUC_AFF_MEMBER,
                            vn_stanza_attr(ev->stanza, "xml:lang"));
    }
    vn_route(reply);
}

/* XEP-0045 §6.5: occupants are listed to occupants only. */
static void room_disco_items(muc_room *room, vn_event *ev)
{
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *items = vn_stanza_add_child(reply, "query", NS_DISCO_ITEMS);
    if (muc_occupant_by_session(room, ev->from))
        for (const muc_occupant *occ = room->occupants; occ; occ = occ->hh.next) {
            char *jid = vn_asprintf("%s/%s", room->jid->bare, occ->nick);
            vn_stanza_set_attr(vn_stanza_add_child(items, "item", NS_DISCO_ITEMS), "jid", jid);
            free(jid);
        }
    vn_route(reply);
}

/* ---- iq ---- */

static const char *payload_ns(const vn_stanza *st)
{
    const vn_stanza *payload = vn_stanza_first_element(st);
    return payload ? vn_stanza_ns(payload) : NULL;
}

static bool ns_is(const char *ns, const char *want)
{
    return ns && strcmp(ns, want) == 0;
}

static void service_iq(muc_service *svc, vn_event *ev)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const char *ns = payload_ns(ev->stanza);

    if (!muc_is_type(type, "get") && !muc_is_type(type, "set"))
        return;
    if (muc_is_type(type, "get") && ns_is(ns, NS_DISCO_INFO))
        service_disco_info(svc, ev, vn_stanza_first_element(ev->stanza));
    else if (muc_is_type(type, "get") && ns_is(ns, NS_DISCO_ITEMS))
        service_disco_items(svc, ev);
    else if (muc_is_type(type, "get") && ns_is(ns, NS_PING))
        vn_route(vn_stanza_iq_result(ev->stanza));
    else
        muc_iq_error(ev, "cancel", "service-unavailable", NULL);
}

static void room_iq(muc_room *room, vn_event *ev)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const char *ns = payload_ns(ev->stanza);
    bool get = muc_is_type(type, "get");

    if (!get && !muc_is_type(type, "set")) {
        check_answered(room, ev);
        return;
    }
    if (room->locked && muc_room_affiliation(room, ev->from->bare) != MUC_AFF_OWNER) {
        muc_iq_error(ev, "cancel", "item-not-found", "The room is not configured yet");
        return;
    }
    if (get && ns_is(ns, NS_DISCO_INFO))
        room_disco_info(room, ev, vn_stanza_first_element(ev->stanza));
    else if (get && ns_is(ns, NS_DISCO_ITEMS))
        room_disco_items(room, ev);
    else if (get && ns_is(ns, NS_PING))
        vn_route(vn_stanza_iq_result(ev->stanza));
    else if (ns_is(ns, NS_MUC_ADMIN))
        muc_handle_admin(room, ev);
    else if (ns_is(ns, NS_MUC_OWNER))
        muc_handle_owner(room, ev);
    else if (ns_is(ns, NS_REGISTER))
        muc_handle_register(room, ev);
    else if (ns_is(ns, NS_MAM))
        muc_handle_mam(room, ev);
    else if (!get && (ns_is(ns, NS_MODERATE_1) || ns_is(ns, NS_FASTEN)))
        muc_handle_moderate(room, ev);
    else
        muc_iq_error(ev, "cancel", "service-unavailable", NULL);
}

/* ---- iq between occupants ----
 *
 * The room relays a request to an occupant under the requester's occupant
 * JID and an id of its own, and remembers whose it was: the answer goes
 * back to the very resource that asked, under its id (a user in the room
 * from several devices gets it on the one that asked). What a client does
 * not serve but its account does, the vCard (vcard-temp, vCard4) and PEP
 * items, goes to the occupant's bare JID, where its server answers, as
 * Prosody and ejabberd do; but only for requesters the room shows real
 * JIDs to: to anyone else the answer would tell who is behind the nick.
 * An occupant may have max_pending_iq requests relayed and not yet
 * answered, which bounds what the room remembers (for RELAY_TIMEOUT_US
 * at most); they do not count against its message budget: a client
 * asks every occupant of a big room for its caps and avatar on joining. */

#define RELAY_TIMEOUT_US (60LL * 1000000)
#define NS_VCARD_TEMP "vcard-temp"
#define NS_VCARD4 "urn:ietf:params:xml:ns:vcard-4.0"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"

typedef struct relayed_iq {
    char *room;           /* bare JID of the room */
    char id[40];          /* the room's id on the relayed request */
    char *requester_id;   /* the requester's, or NULL */
    vn_jid *requester;    /* its real full JID */
    vn_jid *responder;    /* where the request went */
    char *responder_nick; /* the occupant asked */
    int64_t started_us;
    UT_hash_handle hh; /* by id, oldest first */
} relayed_iq;

static relayed_iq *relays;

static void relay_drop(relayed_iq *r)
{
    vn_jid *room_jid = vn_jid_parse(r->room);
    muc_service *svc = room_jid ? service_for(room_jid->domain) : NULL;
    muc_room *room = svc ? muc_room_find(svc, room_jid->local) : NULL;
    muc_occupant *requester = room ? muc_occupant_by_session(room, r->requester) : NULL;
    if (requester && requester->relays_pending > 0)
        requester->relays_pending--;
    vn_jid_free(room_jid);
    HASH_DEL(relays, r);
    free(r->room);
    free(r->requester_id);
    vn_jid_free(r->requester);
    vn_jid_free(r->responder);
    free(r->responder_nick);
    free(r);
}

static void relays_free(void)
{
    while (relays)
        relay_drop(relays);
}

static bool served_by_account(const vn_stanza *iq)
{
    const vn_stanza *payload = vn_stanza_first_element(iq);
    if (!muc_is_type(vn_stanza_attr(iq, "type"), "get") || !payload)
        return false;
    return vn_stanza_is(payload, "vCard", NS_VCARD_TEMP) ||
           vn_stanza_is(payload, "vcard", NS_VCARD4) ||
           (vn_stanza_is(payload, "pubsub", NS_PUBSUB) &&
            vn_stanza_child(payload, "items", NS_PUBSUB));
}

static void relay_request(muc_room *room, muc_occupant *sender, const muc_occupant *target,
                          vn_event *ev)
{
    const vn_jid *to = target->sessions[0];
    if (served_by_account(ev->stanza)) {
        if (!muc_can_see_jids(room, sender)) {
            muc_iq_error(ev, "auth", "forbidden",
                         "This room does not tell you who its occupants are");
            return;
        }
        to = target->real_bare;
    }
    int64_t now = vn_now_us();
    while (relays && now - relays->started_us >= RELAY_TIMEOUT_US)
        relay_drop(relays); /* never answered */
    if (sender->relays_pending >= room->service->limits->max_pending_iq) {
        muc_iq_error(ev, "wait", "resource-constraint",
                     "Too many of your requests wait for an answer");
        return;
    }
    char id[sizeof relays->id];
    if (!random_id(id, sizeof id, "iq-")) {
        muc_iq_error(ev, "wait", "internal-server-error", NULL);
        return;
    }
    relayed_iq *relay = vn_alloc(sizeof *relay);
    memcpy(relay->id, id, sizeof id);
    relay->room = vn_strdup(room->jid->bare);
    relay->requester_id = vn_strdup(vn_stanza_attr(ev->stanza, "id"));
    relay->requester = vn_jid_copy(ev->from);
    relay->responder = vn_jid_copy(to);
    relay->responder_nick = vn_strdup(target->nick);
    relay->started_us = now;
    HASH_ADD_STR(relays, id, relay);
    sender->relays_pending++;

    char *from = vn_asprintf("%s/%s", room->jid->bare, sender->nick);
    vn_stanza *relayed = vn_stanza_copy(ev->stanza);
    vn_stanza_set_attr(relayed, "from", from);
    vn_stanza_set_attr(relayed, "to", to->full);
    vn_stanza_set_attr(relayed, "id", id);
    free(from);
    vn_route(relayed);
}

/* A result or error to an occupant JID: the answer to a relayed request,
 * from where it went, goes back to the requester; anything else is
 * dropped. */
static void relay_answer(const muc_room *room, const vn_event *ev)
{
    const char *id = vn_stanza_attr(ev->stanza, "id");
    relayed_iq *r = NULL;
    if (id)
        HASH_FIND_STR(relays, id, r);
    if (!r || strcmp(r->room, room->jid->bare) != 0 || !vn_jid_equal(r->responder, ev->from))
        return;
    char *from = vn_asprintf("%s/%s", room->jid->bare, r->responder_nick);
    vn_stanza *answer = vn_stanza_copy(ev->stanza);
    vn_stanza_set_attr(answer, "from", from);
    vn_stanza_set_attr(answer, "to", r->requester->full);
    vn_stanza_set_attr(answer, "id", r->requester_id);
    free(from);
    relay_drop(r);
    vn_route(answer);
}

static void occupant_iq(muc_room *room, vn_event *ev)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    muc_occupant *sender = muc_occupant_by_session(room, ev->from);
    const muc_occupant *target = muc_occupant_find(room, ev->to->resource);

    if (!muc_is_type(type, "get") && !muc_is_type(type, "set")) {
        relay_answer(room, ev);
        return;
    }
    if (!sender) {
        muc_iq_error(ev, "cancel", "not-acceptable", "You are not in the room");
        return;
    }
    /* XEP-0410: a ping to one's own occupant JID is answered here. */
    if (target == sender && ns_is(payload_ns(ev->stanza), NS_PING)) {
        vn_route(vn_stanza_iq_result(ev->stanza));
        return;
    }
    if (!target) {
        muc_iq_error(ev, "cancel", "item-not-found", "No such occupant");
        return;
    }
    relay_request(room, sender, target, ev);
}

/* ---- dispatch by address ---- */

static void room_message(muc_room *room, vn_event *ev)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    if (muc_is_type(type, "error"))
        muc_suspect_gone(room, ev);
    else if (muc_is_type(type, "groupchat"))
        muc_handle_groupchat(room, muc_occupant_by_session(room, ev->from), ev);
    else
        muc_handle_room_message(room, ev);
}

static void occupant_message(muc_room *room, vn_event *ev)
{
    if (muc_is_type(vn_stanza_attr(ev->stanza, "type"), "error"))
        muc_suspect_gone(room, ev);
    else
        muc_handle_private(room, ev);
}

static void dispatch(vn_event *ev)
{
    muc_service *svc = service_for(ev->to->domain);
    const char *name = vn_stanza_name(ev->stanza);
    bool iq = strcmp(name, "iq") == 0, presence = strcmp(name, "presence") == 0;
    const char *type = vn_stanza_attr(ev->stanza, "type");

    if (!ev->to->local) {
        if (iq)
            service_iq(svc, ev);
        else if (!presence && !muc_is_type(type, "error"))
            vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return;
    }
    muc_room *room = muc_room_find(svc, ev->to->local);
    if (presence && ev->to->resource) {
        muc_handle_presence(svc, room, ev);
        return;
    }
    if (presence) {
        /* XEP-0045 §7.2.1: entering needs a nick. */
        if (!type)
            vn_route_error(ev->stanza, "modify", "jid-malformed", "Join with a nickname");
        else if (room && muc_is_type(type, "error"))
            muc_suspect_gone(room, ev);
        return;
    }
    if (!room) {
        if (iq ? muc_is_type(type, "get") || muc_is_type(type, "set") : !muc_is_type(type, "error"))
            vn_route_error(ev->stanza, "cancel", "item-not-found", "No such room");
        return;
    }
    if (iq && ev->to->resource)
        occupant_iq(room, ev);
    else if (iq)
        room_iq(room, ev);
    else if (ev->to->resource)
        occupant_message(room, ev);
    else
        room_message(room, ev);
}

/* ---- hooks ---- */

static vn_hook_result muc_route(vn_event *ev, void *ud)
{
    if (!service_for(ev->to->domain))
        return VN_PASS;
    if (queue.depth > 0) {
        enqueue((pending_work){.stanza = vn_stanza_copy(ev->stanza)});
        return VN_HANDLED;
    }
    queue.depth++;
    dispatch(ev);
    drain();
    queue.depth--;
    return VN_HANDLED;
}

static vn_hook_result muc_session_closed(vn_event *ev, void *ud)
{
    joined_rooms *list = vn_session_get_data(ev->session, muc.module);
    if (!list)
        return VN_PASS;
    const vn_jid *full = vn_session_jid(ev->session);
    /* Leaving a room edits the list: work from a copy. */
    size_t count = list->count;
    char **rooms = vn_alloc((count ? count : 1) * sizeof *rooms);
    for (size_t i = 0; i < count; i++)
        rooms[i] = vn_strdup(list->rooms[i]);
    for (size_t i = 0; i < count; i++)
        submit((pending_work){.gone = vn_jid_copy(full), .room = rooms[i]});
    free(rooms);
    return VN_PASS;
}

/* ---- module ---- */

static void read_limits(const vn_module *m)
{
    muc.limits = (muc_limits){
        .max_rooms = vn_module_config_int(m, "max_rooms"),
        .max_rooms_per_user = vn_module_config_int(m, "max_rooms_per_user"),
        .max_occupants = vn_module_config_int(m, "max_occupants"),
        .max_messages_per_minute = vn_module_config_int(m, "max_messages_per_minute"),
        .max_pending_iq = vn_module_config_int(m, "max_pending_iq"),
        .max_history_messages = vn_module_config_int(m, "max_history_messages"),
    };
}

static int muc_load(vn_module *m)
{
    const char *prefix = vn_module_config_string(m, "domain_prefix");
    const char *const *hosts = vn_local_hosts();

    muc.module = m;
    read_limits(m);
    for (size_t i = 0; hosts[i]; i++) {
        char *domain = vn_asprintf("%s.%s", prefix, hosts[i]);
        char *normalized = vn_jid_prep_domain(domain);
        free(domain);
        if (!normalized || vn_is_local_host(normalized)) {
            vn_log_error("muc: %s.%s cannot be a MUC service domain", prefix, hosts[i]);
            free(normalized);
            continue;
        }
        muc_service *svc = vn_alloc(sizeof *svc);
        svc->domain = normalized;
        svc->host = vn_strdup(hosts[i]);
        svc->limits = &muc.limits;
        svc->module = m;
        muc.services = vn_realloc(muc.services, (muc.service_count + 1) * sizeof *muc.services);
        muc.services[muc.service_count++] = svc;
        svc->loading = true;
        muc_store_load(svc);
        svc->loading = false;
        vn_disco_add_item(svc->host, svc->domain, N_("Chatrooms"));
    }
    vn_hook_add("route/remote", ROUTE_PRIORITY, muc_route, m);
    vn_hook_add("session/closed", 0, muc_session_closed, m);
    muc_rooms_service_start(m);
    return 0;
}

static void muc_reload(vn_module *m)
{
    read_limits(m);
}

/* XEP-0045 §9.10 (status 332): the service goes away under its rooms. */
static void shut_down_room(muc_room *room)
{
    muc_presence_info info = {.type = "unavailable", .codes = {332}, .code_count = 1};
    for (muc_occupant *occ = room->occupants; occ; occ = occ->hh.next) {
        vn_stanza *own = muc_occupant_presence(room, occ, &info, true, true);
        for (size_t i = 0; i < occ->session_count; i++)
            muc_send_own_presence(own, occ->sessions[i]);
        vn_stanza_free(own);
    }
    if (!room->config.persistent)
        muc_store_delete(room);
    muc_room_free(room);
}

static void muc_unload(vn_module *m)
{
    vn_hook_remove("route/remote", muc_route, m);
    vn_hook_remove("session/closed", muc_session_closed, m);
    muc_rooms_service_stop(m);
    for (size_t i = 0; i < muc.service_count; i++) {
        muc_service *svc = muc.services[i];
        while (svc->rooms)
            shut_down_room(svc->rooms);
        vn_disco_remove_item(svc->host, svc->domain);
        free(svc->domain);
        free(svc->host);
        free(svc);
    }
    free(muc.services);
    muc.services = NULL;
    muc.service_count = 0;
    checks_free();
    relays_free();
}

VN_MODULE("muc", "Multi-User Chat (XEP-0045) with MAM, moderation and occupant ids", muc_keys,
          muc_load, muc_unload, muc_reload);
