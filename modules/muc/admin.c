/*
 * admin.c - moderators, admins and owners at work (XEP-0045 §8-§10), and
 * nick registration (§7.10).
 *
 * muc#admin: role changes by nick (kick, voice, moderator) and
 * affiliation changes by bare JID (ban, member, admin, owner, none), with
 * the XEP's rules on who may do what to whom and the status codes the
 * affected occupants see (307 kicked, 301 banned, 321 affiliation lost in
 * a members-only room, 322 room became members-only); the lists by role
 * or affiliation. muc#owner: the configuration form (which unlocks a new
 * room) and destruction with an alternate venue. jabber:iq:register:
 * reserving a nick. A reservation is only that: membership (voice in a
 * moderated room, the member list of a non-anonymous one, entry to a
 * members-only one) is the admins' to give, so in a members-only room only
 * those they made members reserve nicks, and in an open room a reservation
 * leaves the affiliation as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muc.h"

/* ---- affiliation and role changes ---- */

typedef struct actor {
    muc_occupant *occupant; /* NULL if not in the room */
    muc_affiliation affiliation;
    const char *nick; /* for <actor nick=.../>, or NULL */
} actor;

static actor actor_of(const muc_room *room, const vn_event *ev)
{
    actor a = {.occupant = muc_occupant_by_session(room, ev->from),
               .affiliation = muc_room_affiliation(room, ev->from->bare)};
    a.nick = a.occupant ? a.occupant->nick : NULL;
    return a;
}

typedef struct change_error {
    const char *type, *condition, *text;
} change_error;

static bool refuse(change_error *err, const char *type, const char *condition, const char *text)
{
    *err = (change_error){type, condition, text};
    return false;
}

/* XEP-0045 §8.2-§8.6, §9.6-§9.7: role changes by moderators. */
static bool check_role_change(const muc_room *room, const actor *by, const vn_stanza *item,
                              change_error *err)
{
    muc_role role;
    const char *nick = vn_stanza_attr(item, "nick");

    if (!muc_role_parse(vn_stanza_attr(item, "role"), &role) || !nick)
        return refuse(err, "modify", "bad-request", N_("A role item has a role and a nick"));
    if (!by->occupant || by->occupant->role != MUC_ROLE_MODERATOR)
        return refuse(err, "auth", "forbidden", N_("Only moderators change roles"));
    const muc_occupant *target = muc_occupant_find(room, nick);
    if (!target)
        return refuse(err, "cancel", "item-not-found", N_("No occupant with that nick"));
    muc_affiliation target_aff = muc_room_affiliation(room, target->real_bare->bare);
    if (role == MUC_ROLE_MODERATOR && by->affiliation < MUC_AFF_ADMIN)
        return refuse(err, "auth", "forbidden", N_("Only admins grant moderation"));
    /* An admin's or owner's moderation comes with the affiliation: nobody
     * kicks, mutes or demotes them (§8.2, §8.4, §9.7); change the
     * affiliation instead. */
    if (role != MUC_ROLE_MODERATOR && target_aff >= MUC_AFF_ADMIN)
        return refuse(err, "cancel", "not-allowed", N_("Admins and owners keep their role"));
    return true;
}

static void apply_role_change(muc_room *room, const actor *by, const vn_stanza *item)
{
    muc_role role = MUC_ROLE_NONE;
    muc_role_parse(vn_stanza_attr(item, "role"), &role);
    muc_occupant *target = muc_occupant_find(room, vn_stanza_attr(item, "nick"));
    const char *reason = vn_stanza_child_text(item, "reason", NS_MUC_ADMIN);
    vn_log_info("muc: %s sets the role of %s in %s to %s", by->nick ? by->nick : "?", target->nick,
                room->jid->bare, muc_role_name(role));
    muc_occupant_set_role(room, target, role, reason, by->nick);
}

/* XEP-0045 §9.1-§9.5, §10.3-§10.7: affiliation changes. */
static bool check_affiliation_change(const muc_room *room, const actor *by, const vn_stanza *item,
                                     change_error *err)
{
    muc_affiliation affiliation;
    const char *jid_text = vn_stanza_attr(item, "jid");

    if (!muc_affiliation_parse(vn_stanza_attr(item, "affiliation"), &affiliation) || !jid_text)
        return refuse(err, "modify", "bad-request",
                      N_("An affiliation item has an affiliation and a jid"));
    vn_jid *jid = vn_jid_parse(jid_text);
    if (!jid)
        return refuse(err, "modify", "jid-malformed", N_("Not a JID"));
    muc_affiliation current = muc_room_affiliation(room, jid->bare);
    vn_jid_free(jid);
    if (by->affiliation < MUC_AFF_ADMIN)
        return refuse(err, "auth", "forbidden", N_("Only admins and owners change affiliations"));
    if (affiliation >= MUC_AFF_ADMIN && by->affiliation < MUC_AFF_OWNER)
        return refuse(err, "auth", "forbidden", N_("Only owners grant admin or owner"));
    if (current >= MUC_AFF_ADMIN && by->affiliation < MUC_AFF_OWNER)
        return refuse(err, "cancel", "not-allowed", N_("An admin cannot change an admin or owner"));
    if (current == MUC_AFF_OWNER && affiliation != MUC_AFF_OWNER && muc_room_owner_count(room) == 1)
        return refuse(err, "cancel", "conflict", N_("A room keeps at least one owner"));
    return true;
}

static void apply_affiliation_change(muc_room *room, const actor *by, const vn_stanza *item)
{
    muc_affiliation affiliation = MUC_AFF_NONE;
    muc_affiliation_parse(vn_stanza_attr(item, "affiliation"), &affiliation);
    vn_jid *jid = vn_jid_parse(vn_stanza_attr(item, "jid"));
    const char *reason = vn_stanza_child_text(item, "reason", NS_MUC_ADMIN);

    vn_log_info("muc: %s in %s is now %s", jid->bare, room->jid->bare,
                muc_affiliation_name(affiliation));
    muc_room_set_affiliation(room, jid->bare, affiliation, reason);
    /* Every occupant of that user: one may be in the room under several
     * nicks. */
    muc_occupant *occ, *next;
    HASH_ITER(hh, room->occupants, occ, next)
    {
        if (strcmp(occ->real_bare->bare, jid->bare) != 0)
            continue;
        muc_presence_info info = {.reason = reason, .actor_nick = by->nick};
        if (affiliation == MUC_AFF_OUTCAST ||
            (affiliation == MUC_AFF_NONE && room->config.members_only)) {
            info.type = "unavailable";
            info.codes[info.code_count++] = affiliation == MUC_AFF_OUTCAST ? 301 : 321;
            muc_occupant_eject(room, occ, &info);
            continue;
        }
        occ->role = muc_default_role(room, affiliation);
        muc_broadcast_presence(room, occ, &info);
    }
    vn_jid_free(jid);
}

static void admin_set(muc_room *room, vn_event *ev, const vn_stanza *query)
{
    actor by = actor_of(room, ev);
    change_error err = {0};
    size_t items = 0;

    for (const vn_stanza *item = vn_stanza_first_element(query); item;
         item = vn_stanza_next_element(item)) {
        if (!vn_stanza_is(item, "item", NS_MUC_ADMIN))
            continue;
        items++;
        bool ok = vn_stanza_attr(item, "role") ? check_role_change(room, &by, item, &err)
                                               : check_affiliation_change(room, &by, item, &err);
        if (!ok) {
            muc_iq_error(ev, err.type, err.condition, err.text);
            return;
        }
    }
    if (items == 0) {
        muc_iq_error(ev, "modify", "bad-request", "Nothing to change");
        return;
    }
    for (const vn_stanza *item = vn_stanza_first_element(query); item;
         item = vn_stanza_next_element(item)) {
        if (!vn_stanza_is(item, "item", NS_MUC_ADMIN))
            continue;
        if (vn_stanza_attr(item, "role")) {
            /* An earlier item of the same request may have removed it. */
            if (muc_occupant_find(room, vn_stanza_attr(item, "nick")))
                apply_role_change(room, &by, item);
        } else {
            apply_affiliation_change(room, &by, item);
        }
        by.occupant = muc_occupant_by_session(room, ev->from);
        by.nick = by.occupant ? by.occupant->nick : NULL;
    }
    if (room->config.persistent)
        muc_store_save(room);
    vn_route_durable(vn_stanza_iq_result(ev->stanza));
}

static void admin_get(muc_room *room, vn_event *ev, const vn_stanza *query)
{
    const vn_stanza *want = vn_stanza_child(query, "item", NS_MUC_ADMIN);
    actor by = actor_of(room, ev);
    muc_affiliation affiliation;
    muc_role role;

    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *list = vn_stanza_add_child(reply, "query", NS_MUC_ADMIN);
    if (want && muc_affiliation_parse(vn_stanza_attr(want, "affiliation"), &affiliation) &&
        affiliation != MUC_AFF_NONE) {
        /* XEP-0045 §5.1: the lists hold real JIDs, so they are for admins
         * and owners; members see theirs only where every occupant sees
         * real JIDs anyway (non-anonymous rooms). */
        bool member_may = affiliation == MUC_AFF_MEMBER && by.affiliation == MUC_AFF_MEMBER &&
                          room->config.whois_anyone;
        if (by.affiliation < MUC_AFF_ADMIN && !member_may) {
            vn_stanza_free(reply);
            muc_iq_error(ev, "auth", "forbidden", "Only admins and owners see this list");
            return;
        }
        for (const muc_member *m = room->members; m; m = m->hh.next) {
            if (m->affiliation != affiliation)
                continue;
            vn_stanza *item = vn_stanza_add_child(list, "item", NS_MUC_ADMIN);
            vn_stanza_set_attr(item, "affiliation", muc_affiliation_name(m->affiliation));
            vn_stanza_set_attr(item, "jid", m->jid);
            if (m->nick)
                vn_stanza_set_attr(item, "nick", m->nick);
            if (m->reason)
                vn_stanza_add_text_child(item, "reason", NS_MUC_ADMIN, m->reason);
        }
    } else if (want && muc_role_parse(vn_stanza_attr(want, "role"), &role) &&
               role != MUC_ROLE_NONE) {
        if (!by.occupant || by.occupant->role != MUC_ROLE_MODERATOR) {
            vn_stanza_free(reply);
            muc_iq_error(ev, "auth", "forbidden", "Only moderators see this list");
            return;
        }
        for (const muc_occupant *occ = room->occupants; occ; occ = occ->hh.next) {
            if (occ->role != role)
                continue;
            vn_stanza *item = vn_stanza_add_child(list, "item", NS_MUC_ADMIN);
            vn_stanza_set_attr(item, "role", muc_role_name(occ->role));
            vn_stanza_set_attr(item, "nick", occ->nick);
            vn_stanza_set_attr(
                item, "affiliation",
                muc_affiliation_name(muc_room_affiliation(room, occ->real_bare->bare)));
            vn_stanza_set_attr(item, "jid", occ->sessions[0]->full);
        }
    } else {
        vn_stanza_free(reply);
        muc_iq_error(ev, "modify", "bad-request", "Ask for one affiliation or role");
        return;
    }
    vn_route(reply);
}

void muc_handle_admin(muc_room *room, vn_event *ev)
{
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", NS_MUC_ADMIN);
    if (muc_is_type(vn_stanza_attr(ev->stanza, "type"), "set"))
        admin_set(room, ev, query);
    else
        admin_get(room, ev, query);
}

/* ---- owner: configuration and destruction ---- */

void muc_room_destroy(muc_room *room, const char *alternate, const char *reason)
{
    vn_stanza *destroy = vn_stanza_new("destroy", NS_MUC_USER);
    if (alternate)
        vn_stanza_set_attr(destroy, "jid", alternate);
    if (reason)
        vn_stanza_add_text_child(destroy, "reason", NS_MUC_USER, reason);
    muc_presence_info info = {.type = "unavailable", .destroy = destroy};

    vn_log_info("muc: %s destroyed%s%s", room->jid->bare, alternate ? ", moving to " : "",
                alternate ? alternate : "");
    for (muc_occupant *occ = room->occupants; occ; occ = occ->hh.next) {
        vn_stanza *own = muc_occupant_presence(room, occ, &info, true, true);
        for (size_t i = 0; i < occ->session_count; i++)
            muc_send_own_presence(own, occ->sessions[i]);
        vn_stanza_free(own);
        for (size_t i = 0; i < occ->session_count; i++)
            muc_track_session(room, occ->sessions[i], false);
    }
    vn_stanza_free(destroy);
    muc_rooms_gone(room);
    muc_store_delete(room);
    muc_room_free(room);
}

/* Tell occupants what changed (§10.2.1: 104, and 170/171 for logging,
 * 172/173 for who sees real JIDs; rooms here are never fully anonymous,
 * so never 174) and apply members-only (§9.3). */
static void config_changed(muc_room *room, const muc_config *before, bool was_locked)
{
    int codes[3];
    size_t count = 0;

    if (!was_locked) {
        codes[count++] = 104;
        if (room->config.logging != before->logging)
            codes[count++] = room->config.logging ? 170 : 171;
        if (room->config.whois_anyone != before->whois_anyone)
            codes[count++] = room->config.whois_anyone ? 172 : 173;
        muc_notify_codes(room, codes, count);
    }
    if (room->config.members_only && !before->members_only) {
        muc_occupant *occ = room->occupants;
        while (occ) {
            muc_occupant *next = occ->hh.next;
            if (muc_room_affiliation(room, occ->real_bare->bare) < MUC_AFF_MEMBER) {
                muc_presence_info info = {.type = "unavailable", .codes = {322}, .code_count = 1};
                muc_occupant_eject(room, occ, &info);
            }
            occ = next;
        }
    }
    if (room->config.moderated != before->moderated)
        for (muc_occupant *occ = room->occupants; occ; occ = occ->hh.next) {
            muc_role role =
                muc_default_role(room, muc_room_affiliation(room, occ->real_bare->bare));
            if (role != occ->role && occ->role != MUC_ROLE_MODERATOR) {
                occ->role = role;
                muc_broadcast_presence(room, occ, NULL);
            }
        }
}

static void owner_submit(muc_room *room, vn_event *ev, const vn_stanza *form)
{
    const char *form_type = vn_stanza_attr(form, "type");
    bool was_locked = room->locked;

    if (muc_is_type(form_type, "cancel")) {
        vn_route(vn_stanza_iq_result(ev->stanza));
        if (was_locked)
            muc_room_destroy(room, NULL, NULL);
        return;
    }
    if (!muc_is_type(form_type, "submit")) {
        muc_iq_error(ev, "modify", "bad-request", "Submit or cancel the form");
        return;
    }
    muc_config before = room->config;
    const char *type, *condition, *text;
    if (!muc_config_submit(room, form, &type, &condition, &text)) {
        muc_iq_error(ev, type, condition, text);
        return;
    }
    room->locked = false;
    muc_store_save(room);
    vn_log_info("muc: %s configured by %s", room->jid->bare, ev->from->full);
    vn_route_durable(vn_stanza_iq_result(ev->stanza));
    config_changed(room, &before, was_locked);
    if (was_locked)
        muc_rooms_opened(room);
    muc_room_maybe_drop(room);
}

void muc_handle_owner(muc_room *room, vn_event *ev)
{
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", NS_MUC_OWNER);

    if (muc_room_affiliation(room, ev->from->bare) != MUC_AFF_OWNER) {
        muc_iq_error(ev, "auth", "forbidden", "Only owners configure or destroy a room");
        return;
    }
    if (muc_is_type(vn_stanza_attr(ev->stanza, "type"), "get")) {
        vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
        vn_stanza_append(vn_stanza_add_child(reply, "query", NS_MUC_OWNER),
                         muc_config_form(room, vn_stanza_attr(ev->stanza, "xml:lang")));
        vn_route(reply);
        return;
    }
    const vn_stanza *destroy = vn_stanza_child(query, "destroy", NS_MUC_OWNER);
    const vn_stanza *form = vn_stanza_child(query, "x", NS_DATA);
    if (destroy) {
        vn_route(vn_stanza_iq_result(ev->stanza));
        muc_room_destroy(room, vn_stanza_attr(destroy, "jid"),
                         vn_stanza_child_text(destroy, "reason", NS_MUC_OWNER));
    } else if (form) {
        owner_submit(room, ev, form);
    } else {
        muc_iq_error(ev, "modify", "bad-request", "Expected a form or <destroy/>");
    }
}

/* ---- nick registration ---- */

static const char *submitted_nick(const vn_stanza *query)
{
    const vn_stanza *form = vn_stanza_child(query, "x", NS_DATA);
    if (!form)
        return vn_stanza_child_text(query, "username", NS_REGISTER);
    for (const vn_stanza *field = vn_stanza_first_element(form); field;
         field = vn_stanza_next_element(field)) {
        const char *var = vn_stanza_attr(field, "var");
        if (var && strcmp(var, "muc#register_roomnick") == 0)
            return vn_stanza_child_text(field, "value", NS_DATA);
    }
    return NULL;
}

static void register_get(muc_room *room, vn_event *ev, const muc_member *member)
{
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *query = vn_stanza_add_child(reply, "query", NS_REGISTER);
    if (member && member->nick) {
        vn_stanza_add_child(query, "registered", NS_REGISTER);
        vn_stanza_add_text_child(query, "username", NS_REGISTER, member->nick);
        vn_route(reply);
        return;
    }
    const char *lang = vn_stanza_attr(ev->stanza, "xml:lang");
    vn_stanza_add_text_child(query, "instructions", NS_REGISTER,
                             vn_tr(lang, N_("Choose the nickname to reserve in this room")));
    vn_stanza *form = vn_form_new("form", lang, NULL);
    vn_stanza_append(query, form);
    vn_form_add_field(form, lang, "FORM_TYPE", "hidden", NULL, NS_MUC "#register");
    vn_stanza *nick =
        vn_form_add_field(form, lang, "muc#register_roomnick", "text-single", N_("Nickname"), NULL);
    vn_stanza_add_child(nick, "required", NS_DATA);
    vn_route(reply);
}

void muc_handle_register(muc_room *room, vn_event *ev)
{
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", NS_REGISTER);
    muc_affiliation aff = muc_room_affiliation(room, ev->from->bare);
    muc_member *member = muc_room_member(room, ev->from->bare);

    if (aff == MUC_AFF_OUTCAST) {
        muc_iq_error(ev, "auth", "forbidden", "You are banned from this room");
        return;
    }
    if (room->config.members_only && aff < MUC_AFF_MEMBER) {
        muc_iq_error(ev, "auth", "registration-required",
                     "Only members register in a members-only room");
        return;
    }
    if (muc_is_type(vn_stanza_attr(ev->stanza, "type"), "get")) {
        register_get(room, ev, member);
        return;
    }
    if (vn_stanza_child(query, "remove", NS_REGISTER)) {
        muc_room_set_nick(room, ev->from->bare, NULL);
        muc_store_save(room);
        vn_route_durable(vn_stanza_iq_result(ev->stanza));
        return;
    }
    const char *wanted = submitted_nick(query);
    char *nick = wanted ? vn_jid_prep_resource(wanted) : NULL;
    if (!nick || !muc_valid_nick(nick)) {
        free(nick);
        muc_iq_error(ev, "modify", "not-acceptable", "Not a valid nickname");
        return;
    }
    const char *holder = muc_room_nick_owner(room, nick);
    const muc_occupant *in_use = muc_occupant_find(room, nick);
    if ((holder && strcmp(holder, ev->from->bare) != 0) ||
        (in_use && strcmp(in_use->real_bare->bare, ev->from->bare) != 0)) {
        free(nick);
        muc_iq_error(ev, "cancel", "conflict", "That nickname is taken");
        return;
    }
    muc_room_set_nick(room, ev->from->bare, nick);
    muc_store_save(room);
    vn_route_durable(vn_stanza_iq_result(ev->stanza));
}
