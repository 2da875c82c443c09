/*
 * service.c - the rooms service other modules ask (vestnik/rooms.h).
 *
 * A feature that lives beside rooms (the conference bridge that makes
 * every room callable) needs to know whether a room exists, who belongs
 * to it and who is in it, and to tell its occupants something; it asks
 * through the "rooms/..." hooks, answered here from the service of the
 * host named in the query, and hears of affiliation changes and rooms
 * going away through the events room.c runs. Nothing here changes a room.
 */
#include <stdlib.h>
#include <string.h>

#include <vestnik/rooms.h>

#include "muc.h"

static vn_room_affiliation public_affiliation(muc_affiliation a)
{
    switch (a) {
    case MUC_AFF_OUTCAST: return VN_ROOM_OUTCAST;
    case MUC_AFF_MEMBER: return VN_ROOM_MEMBER;
    case MUC_AFF_ADMIN: return VN_ROOM_ADMIN;
    case MUC_AFF_OWNER: return VN_ROOM_OWNER;
    case MUC_AFF_NONE: break;
    }
    return VN_ROOM_NONE;
}

static muc_room *configured_room(const char *host, const char *local)
{
    muc_service *svc = host ? muc_service_of_host(host) : NULL;
    muc_room *room = svc && local ? muc_room_find(svc, local) : NULL;
    return room && !room->locked ? room : NULL;
}

/* The occupant user is: that session for a full JID, any of a bare one. */
static const muc_occupant *occupant_of(const muc_room *room, const vn_jid *user)
{
    if (user->resource)
        return muc_occupant_by_session(room, user);
    for (const muc_occupant *occ = room->occupants; occ; occ = occ->hh.next)
        if (strcmp(occ->real_bare->bare, user->bare) == 0)
            return occ;
    return NULL;
}

static vn_hook_result rooms_query(vn_event *ev, void *ud)
{
    vn_room_query *q = ev->data;
    const muc_room *room = configured_room(q->host, q->local);
    if (!room)
        return VN_PASS;
    q->found = true;
    q->jid = vn_strdup(room->jid->bare);
    q->name = room->config.name && *room->config.name ? vn_strdup(room->config.name) : NULL;
    q->members_only = room->config.members_only;
    q->password_protected = room->config.password_protected;
    vn_jid *user = q->user ? vn_jid_parse(q->user) : NULL;
    if (user) {
        q->affiliation = public_affiliation(muc_room_affiliation(room, user->bare));
        const muc_occupant *occ = occupant_of(room, user);
        q->occupant = occ != NULL;
        q->moderator = occ && occ->role == MUC_ROLE_MODERATOR;
        q->nick = occ ? vn_strdup(occ->nick) : NULL;
    }
    vn_jid_free(user);
    return VN_HANDLED;
}

static vn_hook_result rooms_foreach(vn_event *ev, void *ud)
{
    const vn_room_list *list = ev->data;
    muc_service *svc = list->host ? muc_service_of_host(list->host) : NULL;
    if (!svc)
        return VN_PASS;
    for (const muc_room *room = svc->rooms; room; room = room->hh.next)
        if (!room->locked)
            list->cb(room->local, list->ud);
    return VN_HANDLED;
}

static vn_hook_result rooms_members(vn_event *ev, void *ud)
{
    const vn_room_member_list *list = ev->data;
    const muc_room *room = configured_room(list->host, list->local);
    if (!room)
        return VN_PASS;
    for (const muc_member *m = room->members; m; m = m->hh.next)
        if (m->affiliation >= MUC_AFF_MEMBER)
            list->cb(m->jid, public_affiliation(m->affiliation), list->ud);
    return VN_HANDLED;
}

static vn_hook_result rooms_notify(vn_event *ev, void *ud)
{
    vn_jid *to = vn_jid_parse(vn_stanza_attr(ev->stanza, "to"));
    muc_service *svc = to ? muc_service_of_domain(to->domain) : NULL;
    muc_room *room = svc && to->local && !to->resource ? muc_room_find(svc, to->local) : NULL;
    vn_jid_free(to);
    if (!room || room->locked)
        return VN_PASS;
    vn_stanza *copy = vn_stanza_copy(ev->stanza);
    vn_stanza_set_attr(copy, "from", room->jid->bare);
    muc_broadcast(room, copy);
    vn_stanza_free(copy);
    if (ev->data)
        *(bool *)ev->data = true;
    return VN_HANDLED;
}

void muc_rooms_affiliation_changed(const muc_room *room, const char *bare, muc_affiliation before,
                                   muc_affiliation after)
{
    if (before == after || room->service->loading)
        return;
    vn_room_affiliation_change change = {.room = room->jid->bare,
                                         .user = bare,
                                         .before = public_affiliation(before),
                                         .after = public_affiliation(after)};
    vn_event ev = {.host = room->service->host, .data = &change};
    vn_hook_run("rooms/affiliation", &ev);
}

void muc_rooms_opened(const muc_room *room)
{
    for (const muc_member *m = room->members; m; m = m->hh.next)
        if (m->affiliation >= MUC_AFF_MEMBER)
            muc_rooms_affiliation_changed(room, m->jid, MUC_AFF_NONE, m->affiliation);
}

void muc_rooms_gone(const muc_room *room)
{
    vn_event ev = {.host = room->service->host, .data = (void *)room->jid->bare};
    vn_hook_run("rooms/gone", &ev);
}

void muc_rooms_service_start(const vn_module *m)
{
    vn_hook_add("rooms/query", 0, rooms_query, (void *)m);
    vn_hook_add("rooms/foreach", 0, rooms_foreach, (void *)m);
    vn_hook_add("rooms/members", 0, rooms_members, (void *)m);
    vn_hook_add("rooms/notify", 0, rooms_notify, (void *)m);
}

void muc_rooms_service_stop(const vn_module *m)
{
    vn_hook_remove("rooms/query", rooms_query, (void *)m);
    vn_hook_remove("rooms/foreach", rooms_foreach, (void *)m);
    vn_hook_remove("rooms/members", rooms_members, (void *)m);
    vn_hook_remove("rooms/notify", rooms_notify, (void *)m);
}
