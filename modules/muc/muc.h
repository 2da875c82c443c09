/*
 * muc.h - the internal interface between the files of mod_muc.
 *
 * mod_muc (XEP-0045) is one shared object built from several files, one
 * concern each: room.c (rooms, occupants, affiliations, roles, presence),
 * message.c (groupchat, subject, private messages, invitations),
 * config.c (the muc#roomconfig and muc#roominfo forms), admin.c (the
 * muc#admin and muc#owner protocols, nick registration, destruction),
 * history.c (the room archive: history on join, MAM, stanza-id,
 * moderation and retraction), store.c (persistent rooms), service.c (what
 * other modules may ask, vestnik/rooms.h) and mod_muc.c
 * (the service: hooks, routing, disco, self-ping). Everything runs on the
 * loop thread.
 */
#ifndef VESTNIK_MUC_H
#define VESTNIK_MUC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>
#include <vestnik/form.h>
#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_MUC_ADMIN "http://jabber.org/protocol/muc#admin"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define NS_DATA "jabber:x:data"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_REGISTER "jabber:iq:register"
#define NS_PING "urn:xmpp:ping"
#define NS_DELAY "urn:xmpp:delay"
#define NS_MAM "urn:xmpp:mam:2"
#define NS_RSM "http://jabber.org/protocol/rsm"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_SID "urn:xmpp:sid:0"
#define NS_OCCUPANT_ID "urn:xmpp:occupant-id:0"
#define NS_FASTEN "urn:xmpp:fasten:0"
#define NS_MODERATE_0 "urn:xmpp:message-moderate:0"
#define NS_MODERATE_1 "urn:xmpp:message-moderate:1"
#define NS_RETRACT_0 "urn:xmpp:message-retract:0"
#define NS_RETRACT_1 "urn:xmpp:message-retract:1"
#define NS_CONFERENCE "jabber:x:conference"
#define NS_MUC_REQUEST "http://jabber.org/protocol/muc#request"

/* Ordered: a higher affiliation outranks a lower one. */
typedef enum {
    MUC_AFF_OUTCAST,
    MUC_AFF_NONE,
    MUC_AFF_MEMBER,
    MUC_AFF_ADMIN,
    MUC_AFF_OWNER
} muc_affiliation;

typedef enum { MUC_ROLE_NONE, MUC_ROLE_VISITOR, MUC_ROLE_PARTICIPANT, MUC_ROLE_MODERATOR } muc_role;

/* Who may send private messages (muc#roomconfig_allowpm). */
typedef enum { MUC_PM_ANYONE, MUC_PM_PARTICIPANTS, MUC_PM_MODERATORS, MUC_PM_NONE } muc_pm_policy;

/* Service-wide limits from the module's configuration. */
typedef struct muc_limits {
    long long max_rooms;
    long long max_rooms_per_user;
    long long max_occupants;
    long long max_messages_per_minute;
    long long max_pending_iq;
    long long max_history_messages;
} muc_limits;

typedef struct muc_config {
    char *name;
    char *description;
    char *password; /* NULL unless password_protected */
    bool persistent;
    bool public_room;
    bool members_only;
    bool moderated;
    bool password_protected;
    bool whois_anyone; /* non-anonymous: everyone sees real JIDs */
    bool change_subject;
    bool allow_invites;
    bool logging; /* messages archived: history, MAM, stanza-ids (170/171) */
    muc_pm_policy allow_pm;
    long long max_occupants;
    long long history_length;
} muc_config;

/* An affiliation (and registered nick) of one bare JID. */
typedef struct muc_member {
    char *jid; /* bare JID, hash key */
    muc_affiliation affiliation;
    char *nick;   /* registered nick or NULL */
    char *reason; /* or NULL */
    UT_hash_handle hh;
} muc_member;

/* A room participant under one nick; a user may join with several
 * resources under the same nick (each is one session). */
typedef struct muc_occupant {
    char *nick; /* resource of the occupant JID, hash key */
    vn_jid *real_bare;
    vn_jid **sessions; /* real full JIDs, at least one */
    size_t session_count;
    vn_stanza *presence; /* the last presence as sent, without the MUC payload */
    muc_role role;
    char occupant_id[32]; /* XEP-0421 */
    int64_t rate_window_start_us;
    long long rate_count;
    long long relays_pending; /* its iq requests relayed, not answered yet */
    UT_hash_handle hh;
} muc_occupant;

/* A mediated invitation (XEP-0045 §7.8.2) not answered yet: who may
 * decline it, to whom. */
typedef struct muc_invitation {
    char *invitee;   /* bare JID */
    vn_jid *inviter; /* real full JID */
} muc_invitation;

typedef struct muc_service muc_service;

typedef struct muc_room {
    char *local; /* hash key */
    vn_jid *jid; /* room@service */
    muc_service *service;
    muc_config config;
    bool locked; /* created, not configured yet: only the owner is in */
    char *subject;
    char *subject_nick;
    char *creator;            /* bare JID of the creator */
    unsigned char secret[32]; /* per-room key for occupant ids */
    muc_member *members;      /* affiliations by bare JID */
    muc_occupant *occupants;  /* by nick */
    size_t occupant_count;
    muc_invitation *invitations; /* oldest first, at most max_occupants */
    size_t invitation_count;
    UT_hash_handle hh;
} muc_room;

struct muc_service {
    char *domain; /* conference.<host> */
    char *host;   /* the local host it serves */
    muc_room *rooms;
    size_t room_count;
    const muc_limits *limits;
    const vn_module *module;
    bool loading; /* rooms being read from the store: no events for them */
};

/* Extra content of a presence about an occupant. */
#define MUC_MAX_CODES 6
typedef struct muc_presence_info {
    const char *type; /* NULL (available) or "unavailable" */
    int codes[MUC_MAX_CODES];
    size_t code_count;
    int self_codes[MUC_MAX_CODES]; /* only for the occupant's own sessions */
    size_t self_code_count;
    const char *reason;
    const char *actor_nick;
    const char *new_nick;     /* 303 */
    const vn_stanza *destroy; /* <destroy/> of a destroyed room */
} muc_presence_info;

/* ---- room.c ---- */
const char *muc_affiliation_name(muc_affiliation a);
bool muc_affiliation_parse(const char *name, muc_affiliation *out);
const char *muc_role_name(muc_role r);
bool muc_role_parse(const char *name, muc_role *out);

muc_room *muc_room_find(muc_service *svc, const char *local);
muc_room *muc_room_create(muc_service *svc, const char *local, const char *creator);
/* Removes and frees the room; occupants must have been told already. */
void muc_room_free(muc_room *room);
size_t muc_rooms_created_by(muc_service *svc, const char *bare);

muc_affiliation muc_room_affiliation(const muc_room *room, const char *bare);
muc_member *muc_room_member(const muc_room *room, const char *bare);
/* Sets an affiliation in the list (MUC_AFF_NONE removes it unless a nick
 * is registered); no side effects on occupants. */
void muc_room_set_affiliation(muc_room *room, const char *bare, muc_affiliation a,
                              const char *reason);
/* Reserves nick (taken over; NULL releases it) for bare, whose
 * affiliation stays what it is. */
void muc_room_set_nick(muc_room *room, const char *bare, char *nick);
size_t muc_room_owner_count(const muc_room *room);
const char *muc_room_nick_owner(const muc_room *room, const char *nick);

muc_occupant *muc_occupant_find(const muc_room *room, const char *nick);
/* The occupant the real full JID joined as, or NULL. */
muc_occupant *muc_occupant_by_session(const muc_room *room, const vn_jid *full);
/* A nick a room accepts (RFC 7700 in spirit), already resourceprepped. */
bool muc_valid_nick(const char *nick);
muc_role muc_default_role(const muc_room *room, muc_affiliation a);
bool muc_can_see_jids(const muc_room *room, const muc_occupant *viewer);

/* Routes a copy of st (to rewritten) to every session of occ; st stays
 * the caller's. */
void muc_send_to_occupant(const muc_occupant *occ, vn_stanza *st);
/* Routes st to every session of every occupant; st stays the caller's. */
void muc_broadcast(const muc_room *room, vn_stanza *st);
/* occ's presence (info may add codes etc.) to every occupant. */
void muc_broadcast_presence(muc_room *room, muc_occupant *occ, const muc_presence_info *info);
/* Routes a copy of own (an occupant's presence as it sees it itself) to
 * one of its sessions, the item naming that very session. */
void muc_send_own_presence(const vn_stanza *own, const vn_jid *session);
/* The presence of occ as recipient sees it. */
vn_stanza *muc_occupant_presence(const muc_room *room, const muc_occupant *occ,
                                 const muc_presence_info *info, bool with_jid, bool self);
/* Removes occ from the room (after the caller broadcast its going). */
void muc_occupant_remove(muc_room *room, muc_occupant *occ);
/* Removes occ with an unavailable presence carrying info to everyone. */
void muc_occupant_eject(muc_room *room, muc_occupant *occ, const muc_presence_info *info);
/* The room's role for occ changed: recompute from its affiliation. */
void muc_occupant_set_role(muc_room *room, muc_occupant *occ, muc_role role, const char *reason,
                           const char *actor_nick);

/* Presence to room/nick from a real full JID. */
void muc_handle_presence(muc_service *svc, muc_room *room, vn_event *ev);
/* Forget a real full JID everywhere (session closed, delivery failed). */
void muc_session_gone(muc_service *svc, muc_room *room, const vn_jid *full, int code);
/* A temporary room with nobody left goes away. */
void muc_room_maybe_drop(muc_room *room);

/* ---- message.c ---- */
/* Counts a message (presence, invitation, voice request) against occ's
 * budget of max_messages_per_minute; false (error sent) when over. */
bool muc_within_rate(const muc_room *room, muc_occupant *occ, vn_event *ev);
/* The same without the error: false when over. */
bool muc_rate_take(const muc_room *room, muc_occupant *occ);
void muc_handle_groupchat(muc_room *room, muc_occupant *occ, vn_event *ev);
void muc_handle_private(muc_room *room, vn_event *ev);
void muc_handle_room_message(muc_room *room, vn_event *ev);
/* A plain message from the room (room@service, no nick) to everyone. */
void muc_notify_codes(muc_room *room, const int *codes, size_t count);

/* ---- config.c ---- */
void muc_config_defaults(muc_config *cfg, const muc_limits *limits);
void muc_config_free(muc_config *cfg);
vn_stanza *muc_config_form(const muc_room *room, const char *lang);
/* Applies a submitted form; on error returns false with the stanza error. */
bool muc_config_submit(muc_room *room, const vn_stanza *form, const char **type,
                       const char **condition, const char **text);
/* insider: the requester is an occupant or a member, and sees the subject
 * of a closed room too. */
void muc_room_disco_info(const muc_room *room, vn_stanza *query, bool insider, const char *lang);

/* ---- admin.c ---- */
void muc_handle_admin(muc_room *room, vn_event *ev);
void muc_handle_owner(muc_room *room, vn_event *ev);
void muc_handle_register(muc_room *room, vn_event *ev);
/* Owner-level destruction: tells the occupants, deletes the room. */
void muc_room_destroy(muc_room *room, const char *alternate, const char *reason);

/* ---- history.c ---- */
/* Archives a groupchat message as broadcast; sets *id. false on error. */
bool muc_archive_message(muc_room *room, const vn_stanza *msg, const char *real_bare, uint64_t *id);
void muc_send_history(muc_room *room, const vn_jid *to, const vn_stanza *history);
void muc_handle_mam(muc_room *room, vn_event *ev);
void muc_handle_moderate(muc_room *room, vn_event *ev);
/* XEP-0424 retraction of an own message; false (error sent) if refused. */
bool muc_check_retraction(muc_room *room, const muc_occupant *occ, vn_event *ev);
void muc_add_delay(vn_stanza *st, const char *from, int64_t ts_us);

/* ---- store.c ---- */
void muc_store_save(const muc_room *room);
/* Removes the room's document, archive and tombstones. */
void muc_store_delete(const muc_room *room);
void muc_store_load(muc_service *svc);

/* ---- mod_muc.c ---- */
/* Remember that full joined room, for when its session closes. */
void muc_track_session(const muc_room *room, const vn_jid *full, bool joined);
/* An error stanza from ev->from reached the room: if it may mean that
 * occupant resource is gone, ask it (its answer decides). */
void muc_suspect_gone(muc_room *room, vn_event *ev);

/* The service of a local host / at a domain, or NULL. */
muc_service *muc_service_of_host(const char *host);
muc_service *muc_service_of_domain(const char *domain);

/* ---- service.c: what other modules ask (vestnik/rooms.h) ---- */
void muc_rooms_service_start(const vn_module *m);
void muc_rooms_service_stop(const vn_module *m);
/* Events for them: an affiliation changed; a room is about to be
 * destroyed or dropped (not freed at shutdown). */
void muc_rooms_affiliation_changed(const muc_room *room, const char *bare, muc_affiliation before,
                                   muc_affiliation after);
void muc_rooms_gone(const muc_room *room);
/* A new room was configured: its affiliations (its owner's, set while it
 * was locked) are announced as new. */
void muc_rooms_opened(const muc_room *room);

/* Helpers shared by the files. */
bool muc_is_type(const char *type, const char *want);
vn_stanza *muc_new_stanza(const char *name, const char *from, const char *to, const char *type);
void muc_iq_error(vn_event *ev, const char *type, const char *condition, const char *text);

#endif
