/*
 * roster.h - the per-account roster (RFC 6121 §2) and the subscription
 * state machine (RFC 6121 §3, Appendix A).
 *
 * A roster is shared by the roster protocol module (jabber:iq:roster) and
 * the presence module (subscriptions, broadcast), so it lives in the core.
 * Items are documents in the store "roster" of the account, one key per
 * contact (its canonical bare JID), plus one version counter that grows
 * with every write: clients use it for roster versioning.
 *
 * Writes announce themselves: after vn_roster_put or vn_roster_remove
 * changed what the account's client sees of an item, the hook "roster/changed"
 * runs with ev->host the account's host and ev->data a vn_roster_change,
 * so the roster module can push it to interested resources.
 */
#ifndef VESTNIK_ROSTER_H
#define VESTNIK_ROSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stanza.h"
#include "store.h"

#define VN_NS_ROSTER "jabber:iq:roster"

#define VN_ROSTER_MAX_GROUPS 64 /* groups per item */
#define VN_ROSTER_MAX_TEXT 1023 /* bytes in a name or a group name */
#define VN_ROSTER_DEFAULT_MAX_ITEMS 1000

typedef enum { VN_SUB_NONE, VN_SUB_TO, VN_SUB_FROM, VN_SUB_BOTH } vn_subscription;

typedef struct vn_roster_item {
    char *jid;                    /* the contact's canonical bare JID */
    char *name;                   /* NULL when none */
    vn_subscription subscription; /* as the account sees it */
    bool ask;                     /* our request is pending: ask='subscribe' */
    bool pending_in;              /* the contact's request awaits an answer */
    bool approved;                /* pre-approved (RFC 6121 §3.4) */
    bool listed;                  /* on the roster the client sees; an unlisted item
                                     only holds an inbound request */
    char **groups;
    size_t n_groups;
} vn_roster_item;

typedef struct vn_roster_change {
    const char *user;           /* the account's localpart */
    const vn_roster_item *item; /* the item as now stored */
    bool removed;               /* item is gone: push subscription='remove' */
    uint64_t version;           /* roster version after the change */
} vn_roster_change;

vn_roster_item *vn_roster_item_new(const char *jid);
void vn_roster_item_free(vn_roster_item *item);
/* false (and nothing added) when the group is already there. */
bool vn_roster_item_add_group(vn_roster_item *item, const char *group);
void vn_roster_item_clear_groups(vn_roster_item *item);
/* The item as the client sees it: <item xmlns='jabber:iq:roster' jid
 * [name] subscription [ask]><group/>...</item>, appended to parent. */
vn_stanza *vn_roster_item_to_stanza(const vn_roster_item *item, vn_stanza *parent);
const char *vn_subscription_name(vn_subscription sub);

/* The per-account item limit (mod_roster's max_items; default 1000): for
 * listed items, and separately for unanswered requests from strangers. */
void vn_roster_set_max_items(size_t max_items);
size_t vn_roster_max_items(void);

enum { VN_ROSTER_FULL = 2 }; /* beside VN_STORE_OK, NOT_FOUND and ERROR */

/* *out gets a new item: OK, NOT_FOUND or ERROR. */
int vn_roster_get(vn_store *s, const char *host, const char *user, const char *jid,
                  vn_roster_item **out);
/* Create or replace; a new item past the limit is refused with FULL. Bumps
 * the version (stored in *version if non-NULL); runs "roster/changed" when
 * the client's view of the item changed (not for pending_in alone). */
int vn_roster_put(vn_store *s, const char *host, const char *user, const vn_roster_item *item,
                  uint64_t *version);
/* OK (also when absent) or ERROR; bumps the version and runs
 * "roster/changed" if a listed item went away. */
int vn_roster_remove(vn_store *s, const char *host, const char *user, const char *jid,
                     uint64_t *version);
/* Every item, listed or not, in key order; return false to stop. */
typedef bool (*vn_roster_item_cb)(const vn_roster_item *item, void *ud);
int vn_roster_foreach(vn_store *s, const char *host, const char *user, vn_roster_item_cb cb,
                      void *ud);
/* 0 for a roster never written. */
int vn_roster_version(vn_store *s, const char *host, const char *user, uint64_t *version);

/* ---- subscriptions: RFC 6121 Appendix A ---- */

typedef enum {
    VN_PRESENCE_SUBSCRIBE,
    VN_PRESENCE_SUBSCRIBED,
    VN_PRESENCE_UNSUBSCRIBE,
    VN_PRESENCE_UNSUBSCRIBED
} vn_subscription_type;

/* Parses a presence type attribute; false if it is not one of the four. */
bool vn_subscription_type_parse(const char *type, vn_subscription_type *out);

typedef struct vn_subscription_outcome {
    bool changed;     /* the item's state changed: store it */
    bool forward;     /* outbound: route to the contact; inbound: deliver to
                         the account's available resources */
    bool auto_reply;  /* inbound subscribe already approved: answer
                         'subscribed' on the account's behalf */
    bool gained_from; /* the contact now gets our presence: send it */
    bool lost_from;   /* the contact no longer does: send unavailable */
} vn_subscription_outcome;

/* Apply one subscription stanza the account sent (outbound) or received
 * (inbound) to the item for that contact. */
vn_subscription_outcome vn_roster_apply_subscription(vn_roster_item *item, bool outbound,
                                                     vn_subscription_type type);

/* Whether the contact receives our presence / we receive the contact's. */
bool vn_subscription_has_from(vn_subscription sub);
bool vn_subscription_has_to(vn_subscription sub);

#endif
