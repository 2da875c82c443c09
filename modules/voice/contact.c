/*
 * contact.c - the call contact of a room, as clients see it.
 *
 * Clients offer a call button for a contact whose presence advertises,
 * through XEP-0115 caps, what a call needs (Conversations: jingle:1,
 * ice-udp:1, apps:rtp:1, dtls:0 and rtp:audio; Dino and Monal also look
 * for jingle-message:0). So the contact <room>@call.<host> is made to look
 * like a phone: its resource "bridge" is always available with caps whose
 * disco#info lists those features, and the room's members get it in their
 * roster (subscription "to", in the group "Room calls") when they become
 * members, and once for the rooms that were there before this module:
 * their clients probe it at login and get its presence. Anyone may add it
 * by hand too: a subscription request is approved for whoever may call
 * the room (voice_may_call), and refused for the others.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voice.h"

#define CAPS_NODE "https://vestnik.im/bridge"
#define SYNC_STORE "voice"
#define SYNC_KEY "roster-synced"

/* What the bridge's resource serves, sorted as XEP-0115 §5.1 orders them. */
static const char *const features[] = {
    NS_CAPS,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PING,
    NS_JINGLE,
    NS_JINGLE_DTLS,
    NS_JINGLE_GROUPING,
    NS_JINGLE_RTP,
    NS_JINGLE_RTP_AUDIO,
    NS_JINGLE_RTP_INFO,
    NS_JINGLE_HDREXT,
    NS_JINGLE_SSMA,
    NS_JINGLE_ICE,
    NS_JMI,
    NS_CALL,
    NS_COIN,
};
#define IDENTITY_CATEGORY "client"
#define IDENTITY_TYPE "phone"
#define IDENTITY_NAME "vestnik conference bridge"

static struct {
    char ver[64]; /* base64 of a SHA-1 */
    vn_timer *sync;
} contact;

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* XEP-0115 §5.1 verification string over the identity and features. */
static void compute_ver(void)
{
    const char *sorted[sizeof features / sizeof *features];
    memcpy(sorted, features, sizeof features);
    qsort(sorted, sizeof sorted / sizeof *sorted, sizeof *sorted, compare_strings);
    vn_buf s;
    vn_buf_init(&s);
    vn_buf_printf(&s, "%s/%s//%s<", IDENTITY_CATEGORY, IDENTITY_TYPE, IDENTITY_NAME);
    for (size_t i = 0; i < sizeof sorted / sizeof *sorted; i++)
        vn_buf_printf(&s, "%s<", sorted[i]);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(s.data, s.len, digest, &len, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)contact.ver, digest, (int)len);
    vn_buf_free(&s);
}

const char *voice_may_call(const voice_domain *dom, const char *local, const vn_jid *user,
                           vn_room_query *q)
{
    *q = (vn_room_query){.host = dom->host, .local = local, .user = user->full};
    vn_event ev = {.host = dom->host, .data = q};
    vn_hook_run("rooms/query", &ev);
    if (!q->found)
        return N_("There is no such room");
    if (q->affiliation == VN_ROOM_OUTCAST)
        return N_("You are banned from this room");
    if (q->affiliation >= VN_ROOM_MEMBER)
        return NULL;
    if (q->members_only)
        return N_("Only members of this room may call it");
    if (q->occupant)
        return NULL;
    if (q->password_protected)
        return N_("This room has a password: join it before calling it");
    if (!vn_is_local_host(user->domain))
        return N_("Only members of this room and accounts of this server may call it");
    return NULL;
}

/* ---- discovery ---- */

static void add_identity(vn_stanza *query, const char *lang)
{
    vn_stanza *identity = vn_stanza_add_child(query, "identity", NS_DISCO_INFO);
    vn_stanza_set_attr(identity, "category", IDENTITY_CATEGORY);
    vn_stanza_set_attr(identity, "type", IDENTITY_TYPE);
    vn_stanza_set_attr(identity, "name", IDENTITY_NAME);
    (void)lang;
}

static void disco_info(vn_event *ev, const vn_stanza *query)
{
    const char *node = vn_stanza_attr(query, "node");
    char *caps_node = vn_asprintf("%s#%s", CAPS_NODE, contact.ver);
    bool known = !node || strcmp(node, caps_node) == 0;
    free(caps_node);
    if (!known) {
        voice_iq_error(ev->stanza, "cancel", "item-not-found", NULL, NULL);
        return;
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *answer = vn_stanza_add_child(reply, "query", NS_DISCO_INFO);
    if (node)
        vn_stanza_set_attr(answer, "node", node);
    add_identity(answer, vn_stanza_attr(ev->stanza, "xml:lang"));
    for (size_t i = 0; i < sizeof features / sizeof *features; i++)
        vn_stanza_set_attr(vn_stanza_add_child(answer, "feature", NS_DISCO_INFO), "var",
                           features[i]);
    vn_route(reply);
}

void voice_contact_iq(const voice_domain *dom, vn_event *ev)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const vn_stanza *payload = vn_stanza_first_element(ev->stanza);
    bool get = type && strcmp(type, "get") == 0;

    if (get && vn_stanza_is(payload, "query", NS_DISCO_INFO)) {
        disco_info(ev, payload);
    } else if (get && vn_stanza_is(payload, "query", NS_DISCO_ITEMS)) {
        /* Who is in the call, for those who may call it. */
        vn_room_query q;
        const char *refusal = voice_may_call(dom, ev->to->local, ev->from, &q);
        vn_room_query_clear(&q);
        if (refusal) {
            voice_iq_error(ev->stanza, "auth", "forbidden", NULL, refusal);
            return;
        }
        vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
        vn_stanza *items = vn_stanza_add_child(reply, "query", NS_DISCO_ITEMS);
        voice_call_list(dom, ev->to->local, items);
        vn_route(reply);
    } else if (get && vn_stanza_is(payload, "ping", NS_PING)) {
        vn_route(vn_stanza_iq_result(ev->stanza));
    } else {
        voice_iq_error(ev->stanza, "cancel", "service-unavailable", NULL, NULL);
    }
}

/* ---- presence ---- */

static vn_stanza *contact_presence(const voice_domain *dom, const char *local, const char *to,
                                   const char *type, const char *name)
{
    char *from = voice_contact_full(dom, local);
    vn_stanza *p = vn_stanza_new("presence", VN_NS_CLIENT);
    vn_stanza_set_attr(p, "from", from);
    vn_stanza_set_attr(p, "to", to);
    free(from);
    if (type) {
        vn_stanza_set_attr(p, "type", type);
        return p;
    }
    vn_stanza *c = vn_stanza_add_child(p, "c", NS_CAPS);
    vn_stanza_set_attr(c, "hash", "sha-1");
    vn_stanza_set_attr(c, "node", CAPS_NODE);
    vn_stanza_set_attr(c, "ver", contact.ver);
    size_t in_call = voice_call_connected(dom, local);
    if (in_call > 0) {
        char *status = vn_asprintf(vn_tr(NULL, N_("In the call: %zu")), in_call);
        vn_stanza_add_text_child(p, "show", VN_NS_CLIENT, "chat");
        vn_stanza_add_text_child(p, "status", VN_NS_CLIENT, status);
        free(status);
    }
    if (name)
        vn_stanza_add_text_child(p, "nick", "http://jabber.org/protocol/nick", name);
    return p;
}

/* "Subscribed"/"unsubscribed" come from the bare JID (RFC 6121 §3.1.5). */
static void send_subscription(const voice_domain *dom, const char *local, const char *to,
                              const char *type)
{
    char *from = voice_contact_bare(dom, local);
    vn_stanza *p = vn_stanza_new("presence", VN_NS_CLIENT);
    vn_stanza_set_attr(p, "from", from);
    vn_stanza_set_attr(p, "to", to);
    vn_stanza_set_attr(p, "type", type);
    free(from);
    vn_route(p);
}

static char *display_name(const vn_room_query *q, const char *local)
{
    return vn_asprintf(vn_tr(NULL, N_("Call: %s")), q->name ? q->name : local);
}

void voice_contact_presence(const voice_domain *dom, vn_event *ev)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const char *local = ev->to->local;
    if (type && (strcmp(type, "error") == 0 || strcmp(type, "unavailable") == 0 ||
                 strcmp(type, "unsubscribed") == 0 || strcmp(type, "subscribed") == 0))
        return;
    if (type && strcmp(type, "unsubscribe") == 0) {
        vn_route(contact_presence(dom, local, ev->from->bare, "unavailable", NULL));
        return;
    }
    vn_room_query q;
    const char *refusal = voice_may_call(dom, local, ev->from, &q);
    bool subscribe = type && strcmp(type, "subscribe") == 0;
    if (refusal) {
        /* A contact that cannot be called goes from the roster's "to". */
        if (subscribe || (type && strcmp(type, "probe") == 0))
            send_subscription(dom, local, ev->from->bare, "unsubscribed");
    } else {
        if (subscribe)
            send_subscription(dom, local, ev->from->bare, "subscribed");
        char *name = display_name(&q, local);
        /* A probe or request comes from the bare JID; a directed presence
         * from one resource, which alone gets the answer. */
        vn_route(contact_presence(dom, local, type ? ev->from->bare : ev->from->full, NULL, name));
        free(name);
    }
    vn_room_query_clear(&q);
}

/* ---- roster items of members ---- */

static void add_item(const voice_domain *dom, const char *room_local, const char *user_bare)
{
    vn_jid *user = vn_jid_parse(user_bare);
    if (!user || !user->local || strcmp(user->domain, dom->host) != 0 ||
        !vn_account_exists(user->domain, user->local)) {
        vn_jid_free(user);
        return;
    }
    vn_room_query q;
    const char *refusal = voice_may_call(dom, room_local, user, &q);
    char *jid = voice_contact_bare(dom, room_local);
    vn_roster_item *item = NULL;
    int rc = refusal ? VN_STORE_ERROR
                     : vn_roster_get(vn_server_store(), user->domain, user->local, jid, &item);
    if (rc == VN_STORE_NOT_FOUND || (rc == VN_STORE_OK && !item->listed)) {
        if (!item)
            item = vn_roster_item_new(jid);
        char *name = display_name(&q, room_local);
        free(item->name);
        item->name = name;
        item->listed = true;
        if (!vn_subscription_has_to(item->subscription))
            item->subscription = item->subscription == VN_SUB_FROM ? VN_SUB_BOTH : VN_SUB_TO;
        item->ask = false;
        vn_roster_item_add_group(item, vn_tr(NULL, N_("Room calls")));
        if (vn_roster_put(vn_server_store(), user->domain, user->local, item, NULL) == VN_STORE_OK)
            vn_route(contact_presence(dom, room_local, user->bare, NULL, item->name));
    }
    vn_roster_item_free(item);
    free(jid);
    vn_room_query_clear(&q);
    vn_jid_free(user);
}

/* Only the item this module wrote goes: one in its group. */
static void remove_item(const voice_domain *dom, const char *room_local, const char *user_bare)
{
    vn_jid *user = vn_jid_parse(user_bare);
    char *jid = voice_contact_bare(dom, room_local);
    vn_roster_item *item = NULL;
    if (user && user->local && strcmp(user->domain, dom->host) == 0 &&
        vn_roster_get(vn_server_store(), user->domain, user->local, jid, &item) == VN_STORE_OK) {
        const char *group = vn_tr(NULL, N_("Room calls"));
        bool ours = false;
        for (size_t i = 0; i < item->n_groups; i++)
            ours = ours || strcmp(item->groups[i], group) == 0;
        if (ours) {
            vn_route(contact_presence(dom, room_local, user->bare, "unavailable", NULL));
            vn_roster_remove(vn_server_store(), user->domain, user->local, jid, NULL);
        }
    }
    vn_roster_item_free(item);
    free(jid);
    vn_jid_free(user);
}

/* The localpart of a room's bare JID, malloc'd, or NULL. */
static char *room_local_of(const char *room_bare)
{
    const char *at = room_bare ? strchr(room_bare, '@') : NULL;
    return at && at > room_bare ? vn_strndup(room_bare, (size_t)(at - room_bare)) : NULL;
}

static vn_hook_result affiliation_changed(vn_event *ev, void *ud)
{
    const vn_room_affiliation_change *change = ev->data;
    const voice_domain *dom = voice_domain_of_host(ev->host);
    char *local = dom ? room_local_of(change->room) : NULL;
    if (!local)
        return VN_PASS;
    bool was = change->before >= VN_ROOM_MEMBER, is = change->after >= VN_ROOM_MEMBER;
    if (is && !was)
        add_item(dom, local, change->user);
    else if (was && !is)
        remove_item(dom, local, change->user);
    voice_call_recheck(dom, local, change->user);
    free(local);
    return VN_PASS;
}

typedef struct member_walk {
    const voice_domain *dom;
    const char *local;
    bool add;
} member_walk;

static void walk_member(const char *bare, vn_room_affiliation a, void *ud)
{
    const member_walk *walk = ud;
    if (walk->add)
        add_item(walk->dom, walk->local, bare);
    else
        remove_item(walk->dom, walk->local, bare);
}

static void walk_members(const voice_domain *dom, const char *local, bool add)
{
    member_walk walk = {dom, local, add};
    vn_room_member_list list = {.host = dom->host, .local = local, .cb = walk_member, .ud = &walk};
    vn_event ev = {.host = dom->host, .data = &list};
    vn_hook_run("rooms/members", &ev);
}

static void tell_member(const char *bare, vn_room_affiliation a, void *ud)
{
    const member_walk *walk = ud;
    vn_jid *user = vn_jid_parse(bare);
    if (user && user->local && strcmp(user->domain, walk->dom->host) == 0) {
        vn_room_query q;
        if (!voice_may_call(walk->dom, walk->local, user, &q)) {
            char *name = display_name(&q, walk->local);
            vn_route(contact_presence(walk->dom, walk->local, user->bare, NULL, name));
            free(name);
        }
        vn_room_query_clear(&q);
    }
    vn_jid_free(user);
}

void voice_contact_call_changed(const voice_domain *dom, const char *local)
{
    member_walk walk = {dom, local, false};
    vn_room_member_list list = {.host = dom->host, .local = local, .cb = tell_member, .ud = &walk};
    vn_event ev = {.host = dom->host, .data = &list};
    vn_hook_run("rooms/members", &ev);
}

static vn_hook_result room_gone(vn_event *ev, void *ud)
{
    const char *room = ev->data;
    const voice_domain *dom = voice_domain_of_host(ev->host);
    char *local = dom ? room_local_of(room) : NULL;
    if (!local)
        return VN_PASS;
    voice_call_room_gone(dom, local);
    walk_members(dom, local, false);
    free(local);
    return VN_PASS;
}

static void sync_room(const char *room_local, void *ud)
{
    walk_members(ud, room_local, true);
}

/* Once per host: the members of the rooms that existed before this module
 * get their items (later members get theirs as they become members). */
static void initial_sync(vn_timer *t, void *ud)
{
    contact.sync = NULL;
    vn_store *store = vn_server_store();
    vn_buf value;
    vn_buf_init(&value);
    for (size_t i = 0;; i++) {
        const voice_domain *dom = voice_domain_at(i);
        if (!dom)
            break;
        if (vn_store_get(store, dom->host, "", SYNC_STORE, SYNC_KEY, &value) == VN_STORE_OK)
            continue;
        vn_room_list list = {.host = dom->host, .cb = sync_room, .ud = (void *)dom};
        vn_event ev = {.host = dom->host, .data = &list};
        if (vn_hook_run("rooms/foreach", &ev) == VN_HANDLED)
            vn_store_put(store, dom->host, "", SYNC_STORE, SYNC_KEY, "1", 1);
    }
    vn_buf_free(&value);
}

void voice_contact_start(const vn_module *m)
{
    compute_ver();
    vn_hook_add("rooms/affiliation", 0, affiliation_changed, (void *)m);
    vn_hook_add("rooms/gone", 0, room_gone, (void *)m);
    /* After every module has loaded: mod_muc may come later in the list. */
    contact.sync = vn_timer_start(0, 0, initial_sync, NULL);
}

void voice_contact_stop(const vn_module *m)
{
    vn_hook_remove("rooms/affiliation", affiliation_changed, (void *)m);
    vn_hook_remove("rooms/gone", room_gone, (void *)m);
    if (contact.sync)
        vn_timer_stop(contact.sync);
    contact.sync = NULL;
}
