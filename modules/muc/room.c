/*
 * room.c - rooms, occupants, affiliations and roles (XEP-0045 §5, §7).
 *
 * A room holds its configuration, its affiliation list (by bare JID) and
 * its occupants (by nick). This file decides who may enter and with which
 * role, keeps the occupant table, and builds and fans out occupant
 * presence with the muc#user payload and status codes each recipient is
 * entitled to: real JIDs only to those the room's whois setting allows,
 * 110 only to the occupant itself. Each variant of a presence is built
 * once and only its 'to' changes per recipient.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "muc.h"

/* RFC 7700 nicknames are short human names; longer ones are refused. */
#define MAX_NICK_BYTES 128

static const char *const affiliation_names[] = {"outcast", "none", "member", "admin", "owner"};
static const char *const role_names[] = {"none", "visitor", "participant", "moderator"};

const char *muc_affiliation_name(muc_affiliation a)
{
    return affiliation_names[a];
}

bool muc_affiliation_parse(const char *name, muc_affiliation *out)
{
    for (size_t i = 0; name && i < sizeof affiliation_names / sizeof *affiliation_names; i++)
        if (strcmp(name, affiliation_names[i]) == 0) {
            *out = (muc_affiliation)i;
            return true;
        }
    return false;
}

const char *muc_role_name(muc_role r)
{
    return role_names[r];
}

bool muc_role_parse(const char *name, muc_role *out)
{
    for (size_t i = 0; name && i < sizeof role_names / sizeof *role_names; i++)
        if (strcmp(name, role_names[i]) == 0) {
            *out = (muc_role)i;
            return true;
        }
    return false;
}

/* ---- rooms ---- */

muc_room *muc_room_find(muc_service *svc, const char *local)
{
    muc_room *room = NULL;
    if (local)
        HASH_FIND_STR(svc->rooms, local, room);
    return room;
}

muc_room *muc_room_create(muc_service *svc, const char *local, const char *creator)
{
    muc_room *room = vn_alloc(sizeof *room);
    room->local = vn_strdup(local);
    room->jid = vn_jid_make(local, svc->domain, NULL);
    room->service = svc;
    muc_config_defaults(&room->config, svc->limits);
    room->creator = vn_strdup(creator);
    if (RAND_bytes(room->secret, sizeof room->secret) != 1)
        vn_log_warn("muc: no randomness for the occupant-id key of %s", room->jid->bare);
    HASH_ADD_KEYPTR(hh, svc->rooms, room->local, strlen(room->local), room);
    svc->room_count++;
    return room;
}

static void occupant_free(muc_occupant *occ)
{
    for (size_t i = 0; i < occ->session_count; i++)
        vn_jid_free(occ->sessions[i]);
    free(occ->sessions);
    vn_jid_free(occ->real_bare);
    vn_stanza_free(occ->presence);
    free(occ->nick);
    free(occ);
}

void muc_room_free(muc_room *room)
{
    muc_occupant *occ, *next_occ;
    muc_member *member, *next_member;

    HASH_ITER(hh, room->occupants, occ, next_occ)
    {
        HASH_DEL(room->occupants, occ);
        occupant_free(occ);
    }
    HASH_ITER(hh, room->members, member, next_member)
    {
        HASH_DEL(room->members, member);
        free(member->jid);
        free(member->nick);
        free(member->reason);
        free(member);
    }
    HASH_DEL(room->service->rooms, room);
    room->service->room_count--;
    muc_config_free(&room->config);
    vn_jid_free(room->jid);
    free(room->local);
    free(room->subject);
    free(room->subject_nick);
    free(room->creator);
    for (size_t i = 0; i < room->invitation_count; i++) {
        free(room->invitations[i].invitee);
        vn_jid_free(room->invitations[i].inviter);
    }
    free(room->invitations);
    free(room);
}

size_t muc_rooms_created_by(muc_service *svc, const char *bare)
{
    size_t count = 0;
    for (muc_room *room = svc->rooms; room; room = room->hh.next)
        if (room->creator && strcmp(room->creator, bare) == 0)
            count++;
    return count;
}

void muc_room_maybe_drop(muc_room *room)
{
    if (room->config.persistent || room->occupant_count > 0)
        return;
    vn_log_info("muc: temporary room %s is empty and goes away", room->jid->bare);
    muc_rooms_gone(room);
    muc_store_delete(room);
    muc_room_free(room);
}

/* ---- affiliations ---- */

muc_member *muc_room_member(const muc_room *room, const char *bare)
{
    muc_member *member = NULL;
    HASH_FIND_STR(room->members, bare, member);
    return member;
}

muc_affiliation muc_room_affiliation(const muc_room *room, const char *bare)
{
    const muc_member *member = muc_room_member(room, bare);
    return member ? member->affiliation : MUC_AFF_NONE;
}

void muc_room_set_affiliation(muc_room *room, const char *bare, muc_affiliation a,
                              const char *reason)
{
    muc_member *member = muc_room_member(room, bare);
    muc_affiliation before = member ? member->affiliation : MUC_AFF_NONE;

    if (!member) {
        if (a == MUC_AFF_NONE)
            return;
        member = vn_alloc(sizeof *member);
        member->jid = vn_strdup(bare);
        HASH_ADD_KEYPTR(hh, room->members, member->jid, strlen(member->jid), member);
    }
    member->affiliation = a;
    free(member->reason);
    member->reason = vn_strdup(reason);
    if (a == MUC_AFF_OUTCAST || (a == MUC_AFF_NONE && !member->nick)) {
        free(member->nick);
        HASH_DEL(room->members, member);
        if (a == MUC_AFF_NONE) {
            free(member->jid);
            free(member->reason);
            free(member);
            muc_rooms_affiliation_changed(room, bare, before, a);
            return;
        }
        member->nick = NULL;
        HASH_ADD_KEYPTR(hh, room->members, member->jid, strlen(member->jid), member);
    }
    muc_rooms_affiliation_changed(room, bare, before, a);
}

void muc_room_set_nick(muc_room *room, const char *bare, char *nick)
{
    muc_member *member = muc_room_member(room, bare);
    if (!member && nick) {
        member = vn_alloc(sizeof *member);
        member->jid = vn_strdup(bare);
        member->affiliation = MUC_AFF_NONE;
        HASH_ADD_KEYPTR(hh, room->members, member->jid, strlen(member->jid), member);
    }
    if (!member) {
        free(nick);
        return;
    }
    free(member->nick);
    member->nick = nick;
    if (!nick && member->affiliation == MUC_AFF_NONE) {
        HASH_DEL(room->members, member);
        free(member->jid);
        free(member->reason);
        free(member);
    }
}

size_t muc_room_owner_count(const muc_room *room)
{
    size_t owners = 0;
    for (const muc_member *m = room->members; m; m = m->hh.next)
        if (m->affiliation == MUC_AFF_OWNER)
            owners++;
    return owners;
}

const char *muc_room_nick_owner(const muc_room *room, const char *nick)
{
    for (const muc_member *m = room->members; m; m = m->hh.next)
        if (m->nick && strcmp(m->nick, nick) == 0)
            return m->jid;
    return NULL;
}

/* ---- occupants ---- */

muc_occupant *muc_occupant_find(const muc_room *room, const char *nick)
{
    muc_occupant *occ = NULL;
    if (nick)
        HASH_FIND_STR(room->occupants, nick, occ);
    return occ;
}

muc_occupant *muc_occupant_by_session(const muc_room *room, const vn_jid *full)
{
    for (muc_occupant *occ = room->occupants; occ; occ = occ->hh.next)
        for (size_t i = 0; i < occ->session_count; i++)
            if (vn_jid_equal(occ->sessions[i], full))
                return occ;
    return NULL;
}

muc_role muc_default_role(const muc_room *room, muc_affiliation a)
{
    if (a >= MUC_AFF_ADMIN)
        return MUC_ROLE_MODERATOR;
    if (room->config.moderated && a < MUC_AFF_MEMBER)
        return MUC_ROLE_VISITOR;
    return MUC_ROLE_PARTICIPANT;
}

bool muc_can_see_jids(const muc_room *room, const muc_occupant *viewer)
{
    return room->config.whois_anyone || viewer->role == MUC_ROLE_MODERATOR;
}

/* XEP-0421: base64 of HMAC-SHA-256(room secret, real bare JID), cut to 24
 * characters: stable for a user in a room, unlinkable across rooms. */
static void compute_occupant_id(const muc_room *room, const char *bare, char *out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    HMAC(EVP_sha256(), room->secret, sizeof room->secret, (const unsigned char *)bare, strlen(bare),
         digest, &digest_len);
    EVP_EncodeBlock((unsigned char *)out, digest, 18); /* 24 characters and a NUL */
}

static muc_occupant *occupant_add(muc_room *room, const char *nick, const vn_jid *full)
{
    muc_occupant *occ = vn_alloc(sizeof *occ);
    occ->nick = vn_strdup(nick);
    occ->real_bare = vn_jid_bare_copy(full);
    occ->sessions = vn_alloc(sizeof *occ->sessions);
    occ->sessions[0] = vn_jid_copy(full);
    occ->session_count = 1;
    occ->role = muc_default_role(room, muc_room_affiliation(room, full->bare));
    compute_occupant_id(room, full->bare, occ->occupant_id);
    HASH_ADD_KEYPTR(hh, room->occupants, occ->nick, strlen(occ->nick), occ);
    room->occupant_count++;
    return occ;
}

static void occupant_add_session(muc_occupant *occ, const vn_jid *full)
{
    occ->sessions = vn_realloc(occ->sessions, (occ->session_count + 1) * sizeof *occ->sessions);
    occ->sessions[occ->session_count++] = vn_jid_copy(full);
}

static void occupant_drop_session(muc_occupant *occ, const vn_jid *full)
{
    for (size_t i = 0; i < occ->session_count; i++)
        if (vn_jid_equal(occ->sessions[i], full)) {
            vn_jid_free(occ->sessions[i]);
            occ->sessions[i] = occ->sessions[--occ->session_count];
            return;
        }
}

void muc_occupant_remove(muc_room *room, muc_occupant *occ)
{
    for (size_t i = 0; i < occ->session_count; i++)
        muc_track_session(room, occ->sessions[i], false);
    HASH_DEL(room->occupants, occ);
    room->occupant_count--;
    occupant_free(occ);
}

/* ---- presence ---- */

static void add_status_codes(vn_stanza *x, const int *codes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char code[8];
        snprintf(code, sizeof code, "%d", codes[i]);
        vn_stanza_set_attr(vn_stanza_add_child(x, "status", NS_MUC_USER), "code", code);
    }
}

/* The presence payload worth repeating: everything but MUC elements. */
static bool is_muc_payload(const vn_stanza *child)
{
    return vn_stanza_is(child, "x", NS_MUC) || vn_stanza_is(child, "x", NS_MUC_USER) ||
           vn_stanza_is(child, "occupant-id", NS_OCCUPANT_ID);
}

vn_stanza *muc_occupant_presence(const muc_room *room, const muc_occupant *occ,
                                 const muc_presence_info *info, bool with_jid, bool self)
{
    char from[2048];
    const char *type = info ? info->type : NULL;
    const char *stored_type = occ->presence ? vn_stanza_attr(occ->presence, "type") : NULL;

    snprintf(from, sizeof from, "%s/%s", room->jid->bare, occ->nick);
    vn_stanza *pres = muc_new_stanza("presence", from, NULL, type);
    /* Show and status of an available presence, or of the unavailable
     * presence the occupant left with; not of the one it was kicked in. */
    if (occ->presence && (!type || muc_is_type(stored_type, "unavailable")))
        for (const vn_stanza *child = vn_stanza_first_element(occ->presence); child;
             child = vn_stanza_next_element(child))
            if (!is_muc_payload(child))
                vn_stanza_append(pres, vn_stanza_copy(child));

    vn_stanza *x = vn_stanza_add_child(pres, "x", NS_MUC_USER);
    vn_stanza *item = vn_stanza_add_child(x, "item", NS_MUC_USER);
    muc_affiliation aff = muc_room_affiliation(room, occ->real_bare->bare);
    vn_stanza_set_attr(item, "affiliation",
                       muc_affiliation_name(info && info->destroy ? MUC_AFF_NONE : aff));
    vn_stanza_set_attr(item, "role", muc_role_name(type ? MUC_ROLE_NONE : occ->role));
    if (with_jid && occ->session_count > 0)
        vn_stanza_set_attr(item, "jid", occ->sessions[0]->full);
    if (info && info->new_nick)
        vn_stanza_set_attr(item, "nick", info->new_nick);
    if (info && info->actor_nick)
        vn_stanza_set_attr(vn_stanza_add_child(item, "actor", NS_MUC_USER), "nick",
                           info->actor_nick);
    if (info && info->reason)
        vn_stanza_add_text_child(item, "reason", NS_MUC_USER, info->reason);
    if (info)
        add_status_codes(x, info->codes, info->code_count);
    if (self) {
        int own[] = {110};
        add_status_codes(x, own, 1);
        if (info)
            add_status_codes(x, info->self_codes, info->self_code_count);
    }
    if (info && info->destroy)
        vn_stanza_append(x, vn_stanza_copy(info->destroy));
    vn_stanza_set_attr(vn_stanza_add_child(pres, "occupant-id", NS_OCCUPANT_ID), "id",
                       occ->occupant_id);
    return pres;
}

static void route_copy_to(const vn_stanza *st, const vn_jid *to)
{
    vn_stanza *copy = vn_stanza_copy(st);
    vn_stanza_set_attr(copy, "to", to->full);
    vn_route(copy);
}

void muc_send_to_occupant(const muc_occupant *occ, vn_stanza *st)
{
    for (size_t i = 0; i < occ->session_count; i++)
        route_copy_to(st, occ->sessions[i]);
}

void muc_broadcast(const muc_room *room, vn_stanza *st)
{
    /* Routing may end up removing occupants (a delivery error bounces
     * synchronously), so deliver to a snapshot of the recipients; the core
     * serializes the message once for all of them. */
    size_t count = 0;
    for (const muc_occupant *occ = room->occupants; occ; occ = occ->hh.next)
        count += occ->session_count;
    char **targets = vn_alloc((count ? count : 1) * sizeof *targets);
    size_t n = 0;
    for (const muc_occupant *occ = room->occupants; occ; occ = occ->hh.next)
        for (size_t i = 0; i < occ->session_count; i++)
            targets[n++] = vn_strdup(occ->sessions[i]->full);
    vn_route_fanout(st, (const char *const *)targets, n);
    for (size_t i = 0; i < n; i++)
        free(targets[i]);
    free(targets);
}

void muc_send_own_presence(const vn_stanza *own, const vn_jid *session)
{
    vn_stanza *copy = vn_stanza_copy(own);
    vn_stanza *item = vn_stanza_child(vn_stanza_child(copy, "x", NS_MUC_USER), "item", NS_MUC_USER);
    if (item)
        vn_stanza_set_attr(item, "jid", session->full);
    vn_stanza_set_attr(copy, "to", session->full);
    vn_route(copy);
}

void muc_broadcast_presence(muc_room *room, muc_occupant *occ, const muc_presence_info *info)
{
    vn_stanza *plain = muc_occupant_presence(room, occ, info, false, false);
    vn_stanza *with_jid = muc_occupant_presence(room, occ, info, true, false);
    vn_stanza *own = muc_occupant_presence(room, occ, info, true, true);

    size_t count = 0;
    for (const muc_occupant *r = room->occupants; r; r = r->hh.next)
        count += r->session_count;
    vn_jid **targets = vn_alloc((count ? count : 1) * sizeof *targets);
    const vn_stanza **variants = vn_alloc((count ? count : 1) * sizeof *variants);
    size_t n = 0;
    for (const muc_occupant *r = room->occupants; r; r = r->hh.next) {
        const vn_stanza *variant = r == occ ? own : muc_can_see_jids(room, r) ? with_jid : plain;
        for (size_t i = 0; i < r->session_count; i++) {
            targets[n] = vn_jid_copy(r->sessions[i]);
            variants[n++] = variant;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (variants[i] == own)
            muc_send_own_presence(own, targets[i]);
        else
            route_copy_to(variants[i], targets[i]);
        vn_jid_free(targets[i]);
    }
    free(targets);
    free(variants);
    vn_stanza_free(plain);
    vn_stanza_free(with_jid);
    vn_stanza_free(own);
}

void muc_occupant_eject(muc_room *room, muc_occupant *occ, const muc_presence_info *info)
{
    muc_broadcast_presence(room, occ, info);
    muc_occupant_remove(room, occ);
}

void muc_occupant_set_role(muc_room *room, muc_occupant *occ, muc_role role, const char *reason,
                           const char *actor_nick)
{
    muc_presence_info info = {.reason = reason, .actor_nick = actor_nick};
    if (role == MUC_ROLE_NONE) {
        info.type = "unavailable";
        info.codes[info.code_count++] = 307;
        muc_occupant_eject(room, occ, &info);
        return;
    }
    occ->role = role;
    muc_broadcast_presence(room, occ, &info);
}

/* ---- entering, changing nick, leaving ---- */

bool muc_valid_nick(const char *nick)
{
    size_t len = nick ? strlen(nick) : 0;
    if (len == 0 || len > MAX_NICK_BYTES || nick[0] == ' ' || nick[len - 1] == ' ')
        return false;
    for (const unsigned char *p = (const unsigned char *)nick; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static vn_stanza *clean_presence(const vn_stanza *st)
{
    vn_stanza *copy = vn_stanza_new("presence", VN_NS_CLIENT);
    const char *type = vn_stanza_attr(st, "type");
    if (type)
        vn_stanza_set_attr(copy, "type", type);
    /* The language of its status, and of the texts the room sends it. */
    const char *lang = vn_stanza_attr(st, "xml:lang");
    if (lang)
        vn_stanza_set_attr(copy, "xml:lang", lang);
    for (const vn_stanza *child = vn_stanza_first_element(st); child;
         child = vn_stanza_next_element(child))
        if (!is_muc_payload(child))
            vn_stanza_append(copy, vn_stanza_copy(child));
    return copy;
}

static void send_subject(const muc_room *room, const vn_jid *to)
{
    char from[2048];
    if (room->subject_nick)
        snprintf(from, sizeof from, "%s/%s", room->jid->bare, room->subject_nick);
    else
        snprintf(from, sizeof from, "%s", room->jid->bare);
    vn_stanza *msg = muc_new_stanza("message", from, to->full, "groupchat");
    vn_stanza_add_text_child(msg, "subject", VN_NS_CLIENT, room->subject ? room->subject : "");
    vn_route(msg);
}

/* The reason a user may not enter (XEP-0045 §7.2), or NULL. */
static bool refuse_entry(const muc_room *room, vn_event *ev, muc_affiliation aff, bool created)
{
    const vn_stanza *x = vn_stanza_child(ev->stanza, "x", NS_MUC);
    const char *nick = ev->to->resource;
    const muc_occupant *holder = muc_occupant_find(room, nick);
    const char *nick_owner = muc_room_nick_owner(room, nick);

    if (room->locked && !created && aff != MUC_AFF_OWNER) {
        vn_route_error(ev->stanza, "cancel", "item-not-found", "The room is not configured yet");
        return true;
    }
    if (aff == MUC_AFF_OUTCAST) {
        vn_route_error(ev->stanza, "auth", "forbidden", "You are banned from this room");
        return true;
    }
    if (room->config.members_only && aff < MUC_AFF_MEMBER) {
        vn_route_error(ev->stanza, "auth", "registration-required", "The room is members-only");
        return true;
    }
    if ((holder && !vn_jid_bare_equal(holder->real_bare, ev->from)) ||
        (nick_owner && strcmp(nick_owner, ev->from->bare) != 0)) {
        vn_route_error(ev->stanza, "cancel", "conflict", "That nickname is taken");
        return true;
    }
    if (holder)
        return false; /* another resource of the same occupant */
    if (room->config.password_protected && aff < MUC_AFF_OWNER) {
        const char *given = x ? vn_stanza_child_text(x, "password", NS_MUC) : NULL;
        const char *password = room->config.password ? room->config.password : "";
        if (!given || strlen(given) != strlen(password) ||
            CRYPTO_memcmp(given, password, strlen(password)) != 0) {
            vn_route_error(ev->stanza, "auth", "not-authorized", "A password is required");
            return true;
        }
    }
    if ((long long)room->occupant_count >= room->config.max_occupants && aff < MUC_AFF_ADMIN) {
        vn_route_error(ev->stanza, "wait", "service-unavailable", "The room is full");
        return true;
    }
    return false;
}

static void send_occupant_list(const muc_room *room, const muc_occupant *self, const vn_jid *to)
{
    for (const muc_occupant *other = room->occupants; other; other = other->hh.next) {
        if (other == self)
            continue;
        vn_stanza *pres =
            muc_occupant_presence(room, other, NULL, muc_can_see_jids(room, self), false);
        vn_stanza_set_attr(pres, "to", to->full);
        vn_route(pres);
    }
}

static void join(muc_service *svc, muc_room *room, vn_event *ev)
{
    const char *nick = ev->to->resource;
    bool created = false;

    if (!muc_valid_nick(nick)) {
        vn_route_error(ev->stanza, "modify", "jid-malformed", "Not a valid nickname");
        return;
    }
    if (!room) {
        if (!vn_is_local_host(ev->from->domain)) {
            vn_route_error(ev->stanza, "cancel", "not-allowed",
                           "Only local users may create rooms");
            return;
        }
        if ((long long)svc->room_count >= svc->limits->max_rooms) {
            vn_route_error(ev->stanza, "wait", "resource-constraint",
                           "The service has as many rooms as it may hold");
            return;
        }
        if ((long long)muc_rooms_created_by(svc, ev->from->bare) >=
            svc->limits->max_rooms_per_user) {
            vn_route_error(ev->stanza, "cancel", "not-allowed",
                           "You have created as many rooms as you may");
            return;
        }
        room = muc_room_create(svc, ev->to->local, ev->from->bare);
        room->locked = true;
        muc_room_set_affiliation(room, ev->from->bare, MUC_AFF_OWNER, NULL);
        created = true;
        vn_log_info("muc: %s created %s", ev->from->full, room->jid->bare);
    }
    muc_affiliation aff = muc_room_affiliation(room, ev->from->bare);
    if (refuse_entry(room, ev, aff, created))
        return;

    muc_occupant *occ = muc_occupant_find(room, nick);
    bool another_session = occ != NULL;
    /* Another device of an occupant: the others keep seeing the presence
     * they were sent, until the occupant sends a new one. */
    if (another_session) {
        occupant_add_session(occ, ev->from);
    } else {
        occ = occupant_add(room, nick, ev->from);
        occ->presence = clean_presence(ev->stanza);
    }
    muc_track_session(room, ev->from, true);

    send_occupant_list(room, occ, ev->from);
    muc_presence_info info = {.self_code_count = 0};
    if (room->config.whois_anyone)
        info.self_codes[info.self_code_count++] = 100;
    if (room->config.logging)
        info.self_codes[info.self_code_count++] = 170;
    if (created)
        info.self_codes[info.self_code_count++] = 201;
    if (another_session) {
        vn_stanza *own = muc_occupant_presence(room, occ, &info, true, true);
        muc_send_own_presence(own, ev->from);
        vn_stanza_free(own);
    } else {
        muc_broadcast_presence(room, occ, &info);
    }
    if (!created) {
        const vn_stanza *x = vn_stanza_child(ev->stanza, "x", NS_MUC);
        muc_send_history(room, ev->from, x ? vn_stanza_child(x, "history", NS_MUC) : NULL);
    }
    send_subject(room, ev->from);
}

static void change_nick(muc_room *room, muc_occupant *occ, vn_event *ev)
{
    const char *nick = ev->to->resource;
    const muc_occupant *holder = muc_occupant_find(room, nick);
    const char *nick_owner = muc_room_nick_owner(room, nick);

    if (!muc_valid_nick(nick)) {
        vn_route_error(ev->stanza, "modify", "jid-malformed", "Not a valid nickname");
        return;
    }
    if ((holder && holder != occ) ||
        (nick_owner && strcmp(nick_owner, occ->real_bare->bare) != 0)) {
        vn_route_error(ev->stanza, "cancel", "conflict", "That nickname is taken");
        return;
    }
    muc_presence_info gone = {.type = "unavailable", .new_nick = nick, .codes = {303}};
    gone.code_count = 1;
    muc_broadcast_presence(room, occ, &gone);
    HASH_DEL(room->occupants, occ);
    free(occ->nick);
    occ->nick = vn_strdup(nick);
    HASH_ADD_KEYPTR(hh, room->occupants, occ->nick, strlen(occ->nick), occ);
    vn_stanza_free(occ->presence);
    occ->presence = clean_presence(ev->stanza);
    muc_broadcast_presence(room, occ, NULL);
}

static void leave(muc_room *room, muc_occupant *occ, vn_event *ev)
{
    muc_presence_info info = {.type = "unavailable"};
    /* One device of several leaves: it alone is told, the occupant stays
     * with the presence it had. */
    if (occ->session_count > 1) {
        vn_stanza *own = muc_occupant_presence(room, occ, &info, true, true);
        muc_send_own_presence(own, ev->from);
        vn_stanza_free(own);
        occupant_drop_session(occ, ev->from);
        muc_track_session(room, ev->from, false);
        return;
    }
    vn_stanza_free(occ->presence);
    occ->presence = clean_presence(ev->stanza);
    muc_occupant_eject(room, occ, &info);
    muc_room_maybe_drop(room);
}

void muc_handle_presence(muc_service *svc, muc_room *room, vn_event *ev)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    muc_occupant *occ = room ? muc_occupant_by_session(room, ev->from) : NULL;

    if (muc_is_type(type, "error")) {
        if (room)
            muc_suspect_gone(room, ev);
        return;
    }
    if (muc_is_type(type, "unavailable")) {
        if (occ)
            leave(room, occ, ev);
        return;
    }
    if (type)
        return; /* subscriptions and probes mean nothing to a room */
    if (!occ) {
        join(svc, room, ev);
        return;
    }
    if (strcmp(occ->nick, ev->to->resource) != 0) {
        if (muc_within_rate(room, occ, ev))
            change_nick(room, occ, ev);
        return;
    }
    /* Every presence goes to every occupant: it counts against the
     * message budget. Over it, the room keeps the presence (for those who
     * join) but does not repeat it; an error would tell the client it left. */
    vn_stanza_free(occ->presence);
    occ->presence = clean_presence(ev->stanza);
    if (muc_rate_take(room, occ))
        muc_broadcast_presence(room, occ, NULL);
}

void muc_session_gone(muc_service *svc, muc_room *room, const vn_jid *full, int code)
{
    muc_occupant *occ = muc_occupant_by_session(room, full);
    if (!occ)
        return;
    if (code) {
        /* The resource may still be there after all (a server that answers
         * for a resource it lost track of): then it learns it is out. */
        muc_presence_info own_info = {.type = "unavailable", .codes = {code}, .code_count = 1};
        vn_stanza *own = muc_occupant_presence(room, occ, &own_info, true, true);
        muc_send_own_presence(own, full);
        vn_stanza_free(own);
    }
    occupant_drop_session(occ, full);
    muc_track_session(room, full, false);
    if (occ->session_count > 0)
        return;
    muc_presence_info info = {.type = "unavailable"};
    if (code)
        info.codes[info.code_count++] = code;
    vn_log_info("muc: %s left %s (%s)", full->full, room->jid->bare,
                code ? "delivery failed" : "session closed");
    muc_occupant_eject(room, occ, &info);
    muc_room_maybe_drop(room);
}
