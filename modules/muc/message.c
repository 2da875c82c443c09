/*
 * message.c - messages in a room (XEP-0045 §7.4-§7.8, §8.1).
 *
 * Groupchat messages from occupants with voice are stamped with the
 * room's stanza-id (XEP-0359) and the sender's occupant-id (XEP-0421),
 * archived and reflected to every occupant; a message carrying only a
 * subject changes the subject when the sender may. Private messages go
 * between occupants as the room's allowpm setting permits. Mediated
 * invitations and declines are relayed by the room. A visitor's voice
 * request (muc#request) goes to the moderators as a form, and one of them
 * submitting it with muc#request_allow gives the voice. Every occupant is
 * held to max_messages_per_minute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muc.h"

#define RATE_WINDOW_US (60LL * 1000000)

static void occupant_jid(const muc_room *room, const char *nick, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", room->jid->bare, nick);
}

bool muc_rate_take(const muc_room *room, muc_occupant *occ)
{
    int64_t now = vn_now_us();
    if (now - occ->rate_window_start_us >= RATE_WINDOW_US) {
        occ->rate_window_start_us = now;
        occ->rate_count = 0;
    }
    return ++occ->rate_count <= room->service->limits->max_messages_per_minute;
}

bool muc_within_rate(const muc_room *room, muc_occupant *occ, vn_event *ev)
{
    if (muc_rate_take(room, occ))
        return true;
    vn_route_error(ev->stanza, "wait", "resource-constraint",
                   "Too many messages; wait a minute before sending more");
    return false;
}

/* A stanza-id a client would take for the room's own (XEP-0359 §3.3):
 * 'by' names the room in any spelling that normalises to its JID. One
 * that is not a JID at all names nobody, but is dropped as well. */
static bool claims_room_stamp(const muc_room *room, const vn_stanza *sid)
{
    const char *by = vn_stanza_attr(sid, "by");
    if (!by)
        return false;
    vn_jid *jid = vn_jid_parse(by);
    bool claimed = !jid || vn_jid_equal(jid, room->jid);
    vn_jid_free(jid);
    return claimed;
}

/* Elements a sender must not forge: the room's ids. */
static void strip_room_stamps(const muc_room *room, vn_stanza *msg)
{
    vn_stanza *child = vn_stanza_first_element(msg);
    while (child) {
        vn_stanza *next = vn_stanza_next_element(child);
        if (vn_stanza_is(child, "occupant-id", NS_OCCUPANT_ID) ||
            (vn_stanza_is(child, "stanza-id", NS_SID) && claims_room_stamp(room, child)) ||
            vn_stanza_is(child, "x", NS_MUC_USER))
            vn_stanza_remove(child);
        child = next;
    }
}

static void change_subject(muc_room *room, muc_occupant *occ, vn_event *ev, const char *subject)
{
    bool allowed = occ->role == MUC_ROLE_MODERATOR ||
                   (room->config.change_subject && occ->role >= MUC_ROLE_PARTICIPANT);
    if (!allowed) {
        vn_route_error(ev->stanza, "auth", "forbidden", "You may not change the subject");
        return;
    }
    free(room->subject);
    free(room->subject_nick);
    room->subject = vn_strdup(subject);
    room->subject_nick = vn_strdup(occ->nick);
    if (room->config.persistent)
        muc_store_save(room);

    char from[2048];
    occupant_jid(room, occ->nick, from, sizeof from);
    vn_stanza *msg = muc_new_stanza("message", from, NULL, "groupchat");
    if (vn_stanza_attr(ev->stanza, "id"))
        vn_stanza_set_attr(msg, "id", vn_stanza_attr(ev->stanza, "id"));
    vn_stanza_add_text_child(msg, "subject", VN_NS_CLIENT, subject);
    muc_broadcast(room, msg);
    vn_stanza_free(msg);
}

void muc_handle_groupchat(muc_room *room, muc_occupant *occ, vn_event *ev)
{
    if (!occ) {
        vn_route_error(ev->stanza, "modify", "not-acceptable", "You are not in the room");
        return;
    }
    if (!muc_within_rate(room, occ, ev))
        return;
    const char *subject = vn_stanza_child_text(ev->stanza, "subject", VN_NS_CLIENT);
    if (subject && !vn_stanza_child(ev->stanza, "body", VN_NS_CLIENT)) {
        change_subject(room, occ, ev, subject);
        return;
    }
    if (occ->role < MUC_ROLE_PARTICIPANT) {
        vn_route_error(ev->stanza, "auth", "forbidden", "You have no voice in this room");
        return;
    }
    if (!muc_check_retraction(room, occ, ev))
        return;

    char from[2048];
    occupant_jid(room, occ->nick, from, sizeof from);
    vn_stanza *msg = vn_stanza_copy(ev->stanza);
    vn_stanza_set_attr(msg, "from", from);
    vn_stanza_set_attr(msg, "to", NULL);
    strip_room_stamps(room, msg);
    vn_stanza_set_attr(vn_stanza_add_child(msg, "occupant-id", NS_OCCUPANT_ID), "id",
                       occ->occupant_id);
    uint64_t id = 0;
    if (room->config.logging && !muc_archive_message(room, msg, occ->real_bare->bare, &id)) {
        vn_stanza_free(msg);
        vn_route_error(ev->stanza, "wait", "internal-server-error", "The room cannot store it");
        return;
    }
    if (room->config.logging) { /* XEP-0359: the archive's id */
        char id_text[24];
        snprintf(id_text, sizeof id_text, "%llu", (unsigned long long)id);
        vn_stanza *sid = vn_stanza_add_child(msg, "stanza-id", NS_SID);
        vn_stanza_set_attr(sid, "id", id_text);
        vn_stanza_set_attr(sid, "by", room->jid->bare);
    }
    muc_broadcast(room, msg);
    vn_stanza_free(msg);
}

static bool may_send_private(const muc_room *room, const muc_occupant *sender)
{
    switch (room->config.allow_pm) {
    case MUC_PM_ANYONE: return true;
    case MUC_PM_PARTICIPANTS: return sender->role >= MUC_ROLE_PARTICIPANT;
    case MUC_PM_MODERATORS: return sender->role == MUC_ROLE_MODERATOR;
    case MUC_PM_NONE: return false;
    }
    return false;
}

void muc_handle_private(muc_room *room, vn_event *ev)
{
    muc_occupant *sender = muc_occupant_by_session(room, ev->from);

    if (muc_is_type(vn_stanza_attr(ev->stanza, "type"), "groupchat")) {
        vn_route_error(ev->stanza, "modify", "bad-request",
                       "Groupchat messages go to the room's bare JID");
        return;
    }
    if (!sender) {
        vn_route_error(ev->stanza, "modify", "not-acceptable", "You are not in the room");
        return;
    }
    if (!may_send_private(room, sender)) {
        vn_route_error(ev->stanza, "auth", "forbidden",
                       "Private messages are not allowed in this room");
        return;
    }
    muc_occupant *target = muc_occupant_find(room, ev->to->resource);
    if (!target) {
        vn_route_error(ev->stanza, "cancel", "item-not-found", "No such occupant");
        return;
    }
    if (!muc_within_rate(room, sender, ev))
        return;
    char from[2048];
    occupant_jid(room, sender->nick, from, sizeof from);
    vn_stanza *msg = vn_stanza_copy(ev->stanza);
    vn_stanza_set_attr(msg, "from", from);
    strip_room_stamps(room, msg);
    vn_stanza_add_child(msg, "x", NS_MUC_USER);
    muc_send_to_occupant(target, msg);
    vn_stanza_free(msg);
}

/* ---- invitations ----
 * The room remembers the invitations it relayed (at most max_occupants,
 * the oldest forgotten first), so that it relays a decline only from an
 * invitee to its inviter: it is no relay of messages from anyone to
 * anyone. Invitations count against the inviter's message budget. */

static void forget_invitation(muc_room *room, size_t i)
{
    free(room->invitations[i].invitee);
    vn_jid_free(room->invitations[i].inviter);
    memmove(&room->invitations[i], &room->invitations[i + 1],
            (room->invitation_count - i - 1) * sizeof *room->invitations);
    room->invitation_count--;
}

static size_t find_invitation(const muc_room *room, const char *invitee, const vn_jid *inviter)
{
    for (size_t i = 0; i < room->invitation_count; i++)
        if (strcmp(room->invitations[i].invitee, invitee) == 0 &&
            vn_jid_bare_equal(room->invitations[i].inviter, inviter))
            return i;
    return room->invitation_count;
}

static void remember_invitation(muc_room *room, const char *invitee, const vn_jid *inviter)
{
    size_t known = find_invitation(room, invitee, inviter);
    if (known < room->invitation_count)
        forget_invitation(room, known);
    while (room->invitation_count > 0 &&
           (long long)room->invitation_count >= room->service->limits->max_occupants)
        forget_invitation(room, 0);
    room->invitations =
        vn_realloc(room->invitations, (room->invitation_count + 1) * sizeof *room->invitations);
    room->invitations[room->invitation_count++] =
        (muc_invitation){vn_strdup(invitee), vn_jid_copy(inviter)};
}

static void relay_invite(muc_room *room, vn_event *ev, const vn_stanza *invite)
{
    muc_occupant *sender = muc_occupant_by_session(room, ev->from);
    if (!sender) {
        vn_route_error(ev->stanza, "modify", "not-acceptable", "You are not in the room");
        return;
    }
    /* XEP-0045 §7.8.2: an invitation to a members-only room makes the
     * invitee a member, which is the admins' to decide unless the room
     * lets occupants invite (muc#roomconfig_allowinvites, off by default).
     * Into an open room, which anyone may enter, any occupant invites. */
    muc_affiliation aff = muc_room_affiliation(room, ev->from->bare);
    bool may_invite =
        !room->config.members_only || room->config.allow_invites || aff >= MUC_AFF_ADMIN;
    if (!may_invite) {
        vn_route_error(ev->stanza, "auth", "forbidden", "You may not invite to this room");
        return;
    }
    if (!muc_within_rate(room, sender, ev))
        return;
    vn_jid *invitee =
        vn_jid_parse(vn_stanza_attr(invite, "to") ? vn_stanza_attr(invite, "to") : "");
    if (!invitee) {
        vn_route_error(ev->stanza, "modify", "jid-malformed", "Whom to invite?");
        return;
    }
    /* XEP-0045 §7.8.2: inviting to a members-only room makes a member. */
    if (room->config.members_only && muc_room_affiliation(room, invitee->bare) == MUC_AFF_NONE) {
        muc_room_set_affiliation(room, invitee->bare, MUC_AFF_MEMBER, NULL);
        if (room->config.persistent)
            muc_store_save(room);
    }
    const char *reason = vn_stanza_child_text(invite, "reason", NS_MUC_USER);
    vn_stanza *msg = muc_new_stanza("message", room->jid->bare, invitee->full, NULL);
    vn_stanza *x = vn_stanza_add_child(msg, "x", NS_MUC_USER);
    vn_stanza *relayed = vn_stanza_add_child(x, "invite", NS_MUC_USER);
    vn_stanza_set_attr(relayed, "from", ev->from->full);
    if (reason)
        vn_stanza_add_text_child(relayed, "reason", NS_MUC_USER, reason);
    if (room->config.password_protected && room->config.password)
        vn_stanza_add_text_child(x, "password", NS_MUC_USER, room->config.password);
    /* The invitee's language is unknown here: the inviter's is the best guess. */
    const char *lang = vn_stanza_attr(ev->stanza, "xml:lang");
    char *body = reason ? vn_asprintf(vn_tr(lang, N_("%s invites you to the room %s: %s")),
                                      ev->from->bare, room->jid->bare, reason)
                        : vn_asprintf(vn_tr(lang, N_("%s invites you to the room %s")),
                                      ev->from->bare, room->jid->bare);
    vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, body);
    free(body);
    remember_invitation(room, invitee->bare, ev->from);
    vn_route(msg);
    vn_jid_free(invitee);
}

static void relay_decline(muc_room *room, vn_event *ev, const vn_stanza *decline)
{
    vn_jid *inviter =
        vn_jid_parse(vn_stanza_attr(decline, "to") ? vn_stanza_attr(decline, "to") : "");
    if (!inviter) {
        vn_route_error(ev->stanza, "modify", "jid-malformed", "Whose invitation?");
        return;
    }
    size_t i = find_invitation(room, ev->from->bare, inviter);
    vn_jid_free(inviter);
    if (i == room->invitation_count) {
        vn_route_error(ev->stanza, "cancel", "item-not-found",
                       "That user has not invited you to this room");
        return;
    }
    inviter = vn_jid_copy(room->invitations[i].inviter);
    forget_invitation(room, i);
    const char *reason = vn_stanza_child_text(decline, "reason", NS_MUC_USER);
    vn_stanza *msg = muc_new_stanza("message", room->jid->bare, inviter->full, NULL);
    vn_stanza *relayed =
        vn_stanza_add_child(vn_stanza_add_child(msg, "x", NS_MUC_USER), "decline", NS_MUC_USER);
    vn_stanza_set_attr(relayed, "from", ev->from->bare);
    if (reason)
        vn_stanza_add_text_child(relayed, "reason", NS_MUC_USER, reason);
    vn_route(msg);
    vn_jid_free(inviter);
}

/* ---- voice requests (§7.13, §8.6) ---- */

static const char *form_value(const vn_stanza *form, const char *var)
{
    for (const vn_stanza *field = vn_stanza_first_element(form); field;
         field = vn_stanza_next_element(field)) {
        const char *name = vn_stanza_attr(field, "var");
        if (vn_stanza_is(field, "field", NS_DATA) && name && strcmp(name, var) == 0)
            return vn_stanza_child_text(field, "value", NS_DATA);
    }
    return NULL;
}

/* The form that asks a moderator to give occ a voice, in lang. */
static vn_stanza *voice_request_form(const muc_occupant *occ, const vn_jid *from, const char *lang)
{
    vn_stanza *form = vn_form_new("form", lang, N_("Voice request"));
    vn_form_add_instructions(form, lang,
                             N_("To give this occupant a voice, tick the box and submit the form"));
    vn_form_add_field(form, lang, "FORM_TYPE", "hidden", NULL, NS_MUC_REQUEST);
    vn_form_add_field(form, lang, "muc#role", "list-single", N_("Requested role"), "participant");
    vn_form_add_field(form, lang, "muc#jid", "jid-single", N_("User ID"), from->full);
    vn_form_add_field(form, lang, "muc#roomnick", "text-single", N_("Room nickname"), occ->nick);
    vn_form_add_field(form, lang, "muc#request_allow", "boolean", N_("Grant voice to this person?"),
                      "false");
    return form;
}

/* A visitor asks for voice: every moderator gets the form to approve. */
static void request_voice(muc_room *room, vn_event *ev, const vn_stanza *form)
{
    muc_occupant *occ = muc_occupant_by_session(room, ev->from);
    const char *role = form_value(form, "muc#role");

    if (!occ) {
        vn_route_error(ev->stanza, "modify", "not-acceptable", "You are not in the room");
        return;
    }
    if (!role || strcmp(role, "participant") != 0) {
        vn_route_error(ev->stanza, "modify", "bad-request", "Ask for the participant role");
        return;
    }
    if (occ->role != MUC_ROLE_VISITOR) {
        vn_route_error(ev->stanza, "cancel", "not-acceptable", "You have a voice already");
        return;
    }
    if (!muc_within_rate(room, occ, ev))
        return;
    vn_log_info("muc: %s asks for voice in %s", occ->nick, room->jid->bare);
    /* Each moderator reads the form in the language of their presence. */
    for (const muc_occupant *m = room->occupants; m; m = m->hh.next) {
        if (m->role != MUC_ROLE_MODERATOR)
            continue;
        vn_stanza *msg = muc_new_stanza("message", room->jid->bare, NULL, NULL);
        vn_stanza_append(
            msg, voice_request_form(occ, ev->from, vn_stanza_attr(m->presence, "xml:lang")));
        muc_send_to_occupant(m, msg);
        vn_stanza_free(msg);
    }
}

/* A moderator answers a voice request: allowed, the visitor gets a voice. */
static void approve_voice(muc_room *room, vn_event *ev, const vn_stanza *form)
{
    const muc_occupant *moderator = muc_occupant_by_session(room, ev->from);
    const char *allow = form_value(form, "muc#request_allow");
    const char *nick = form_value(form, "muc#roomnick");
    vn_jid *who = vn_jid_parse(form_value(form, "muc#jid") ? form_value(form, "muc#jid") : "");

    if (!moderator || moderator->role != MUC_ROLE_MODERATOR) {
        vn_route_error(ev->stanza, "auth", "forbidden", "Only moderators give voice");
    } else if (!allow || !who || !nick) {
        vn_route_error(ev->stanza, "modify", "bad-request",
                       "The form names the occupant and the decision");
    } else if (strcmp(allow, "1") == 0 || strcmp(allow, "true") == 0) {
        /* The occupant must still be the one who asked, under that nick. */
        muc_occupant *occ = muc_occupant_find(room, nick);
        if (!occ || !vn_jid_bare_equal(occ->real_bare, who)) {
            vn_route_error(ev->stanza, "cancel", "item-not-found", "That occupant has left");
        } else if (occ->role == MUC_ROLE_VISITOR) {
            vn_log_info("muc: %s gives %s a voice in %s", moderator->nick, occ->nick,
                        room->jid->bare);
            muc_occupant_set_role(room, occ, MUC_ROLE_PARTICIPANT, NULL, moderator->nick);
        }
    }
    vn_jid_free(who);
}

void muc_handle_room_message(muc_room *room, vn_event *ev)
{
    const vn_stanza *x = vn_stanza_child(ev->stanza, "x", NS_MUC_USER);
    const vn_stanza *invite = x ? vn_stanza_child(x, "invite", NS_MUC_USER) : NULL;
    const vn_stanza *decline = x ? vn_stanza_child(x, "decline", NS_MUC_USER) : NULL;
    const vn_stanza *form = vn_stanza_child(ev->stanza, "x", NS_DATA);
    const char *form_type = form ? form_value(form, "FORM_TYPE") : NULL;
    bool request = form_type && strcmp(form_type, NS_MUC_REQUEST) == 0 &&
                   muc_is_type(vn_stanza_attr(form, "type"), "submit");

    if (invite)
        relay_invite(room, ev, invite);
    else if (decline)
        relay_decline(room, ev, decline);
    else if (request && form_value(form, "muc#request_allow"))
        approve_voice(room, ev, form);
    else if (request)
        request_voice(room, ev, form);
    else
        vn_route_error(ev->stanza, "modify", "bad-request",
                       "Send groupchat messages, invitations or voice requests to the room");
}

void muc_notify_codes(muc_room *room, const int *codes, size_t count)
{
    vn_stanza *msg = muc_new_stanza("message", room->jid->bare, NULL, "groupchat");
    vn_stanza *x = vn_stanza_add_child(msg, "x", NS_MUC_USER);
    for (size_t i = 0; i < count; i++) {
        char code[8];
        snprintf(code, sizeof code, "%d", codes[i]);
        vn_stanza_set_attr(vn_stanza_add_child(x, "status", NS_MUC_USER), "code", code);
    }
    muc_broadcast(room, msg);
    vn_stanza_free(msg);
}
