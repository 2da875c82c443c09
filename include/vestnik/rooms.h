/*
 * vestnik/rooms.h - what a module may ask the chat rooms service about its
 * rooms, and what it hears from it.
 *
 * Modules never reach into each other; the Multi-User Chat module answers
 * these hooks for the rooms of its services, and another feature that
 * lives beside rooms (the conference bridge of mod_voice, which makes every
 * room callable) asks through them. A hook nobody answers (no MUC module
 * loaded) leaves the query as the asker initialised it: `found` false.
 * Everything runs on the loop thread; strings in queries stay the
 * asker's, strings in answers are malloc'd for the asker to free.
 *
 * Queries (ev->data is the struct named; the answerer returns VN_HANDLED):
 *   "rooms/query"    a vn_room_query: one room of the MUC service of a
 *                    local host, and where one user stands in it
 *   "rooms/foreach"  a vn_room_list: every room of a host's service
 *   "rooms/members"  a vn_room_member_list: a room's affiliated users
 *   "rooms/notify"   ev->stanza is a <message/> addressed to a room's bare
 *                    JID ('to'); the service sends a copy from the room's
 *                    bare JID to every occupant's sessions, as it sends its
 *                    own notices (ev->data: a bool * set to true when done)
 * Events the service runs (VN_PASS expected):
 *   "rooms/affiliation" ev->data is a vn_room_affiliation_change, after a
 *                    user's affiliation to a room changed; for a new room,
 *                    once it is configured, for each affiliation it has
 *                    (its creator's owner), as changed from VN_ROOM_NONE
 *   "rooms/gone"     ev->data is the room's bare JID (const char *), just
 *                    before a room is destroyed or, temporary, goes away
 *                    empty (not when the service shuts down: its rooms
 *                    stay)
 */
#ifndef VESTNIK_ROOMS_H
#define VESTNIK_ROOMS_H

#include <stdbool.h>
#include <stdlib.h>

/* XEP-0045 affiliations, in rank order. */
typedef enum {
    VN_ROOM_OUTCAST,
    VN_ROOM_NONE,
    VN_ROOM_MEMBER,
    VN_ROOM_ADMIN,
    VN_ROOM_OWNER
} vn_room_affiliation;

typedef struct vn_room_query {
    /* asked */
    const char *host;  /* the local host whose service holds the room */
    const char *local; /* the room's localpart */
    const char *user;  /* a bare or full JID, or NULL */
    /* answered */
    bool found; /* the room exists and is configured (not locked) */
    char *jid;  /* the room's bare JID */
    char *name; /* its configured name, or NULL */
    bool members_only;
    bool password_protected;
    vn_room_affiliation affiliation; /* of user's bare JID */
    bool occupant;                   /* user is in the room (that very session
                                        for a full JID, any for a bare one) */
    bool moderator;                  /* ... with the moderator role */
    char *nick;                      /* ... under this nick, else NULL */
} vn_room_query;

/* Frees the answered strings of q (q itself stays the caller's). */
static inline void vn_room_query_clear(vn_room_query *q)
{
    free(q->jid);
    free(q->name);
    free(q->nick);
    q->jid = q->name = q->nick = NULL;
}

typedef void (*vn_room_cb)(const char *room_local, void *ud);
typedef struct vn_room_list {
    const char *host;
    vn_room_cb cb;
    void *ud;
} vn_room_list;

typedef void (*vn_room_member_cb)(const char *bare, vn_room_affiliation a, void *ud);
typedef struct vn_room_member_list {
    const char *host;
    const char *local;
    vn_room_member_cb cb; /* for each affiliation member, admin or owner */
    void *ud;
} vn_room_member_list;

typedef struct vn_room_affiliation_change {
    const char *room; /* bare JID */
    const char *user; /* bare JID */
    vn_room_affiliation before, after;
} vn_room_affiliation_change;

#endif
