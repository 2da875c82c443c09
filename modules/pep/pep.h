/*
 * pep.h - what the files of mod_pep share.
 *
 * mod_pep is Personal Eventing via PubSub (XEP-0163): every account's
 * bare JID is a publish-subscribe service (the XEP-0060 subset PEP needs).
 * Its files, each of one concern, linked into the one mod_pep.so:
 *   pep_node.c      nodes and items in the store, node configuration
 *   pep_form.c      data forms: publish-options, node configuration
 *   pep_caps.c      who wants which notifications (XEP-0115 caps, +notify)
 *   pep_caps_ver.c  the XEP-0115 verification string and ver
 *   pep_service.c   publish, retract, delete, read with access control,
 *                   and the notifications they cause
 *   pep_bookmarks.c XEP-0048 bookmarks kept in XEP-0402's node
 *   mod_pep.c       the protocol: iq handlers, errors, disco, config
 */
#ifndef VESTNIK_PEP_H
#define VESTNIK_PEP_H

#include <stdbool.h>
#include <stddef.h>

#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
#define NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
#define NS_DATA_FORMS "jabber:x:data"
#define PEP_FORM_NODE_CONFIG "http://jabber.org/protocol/pubsub#node_config"
#define PEP_FORM_PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"
#define NS_BOOKMARKS2 "urn:xmpp:bookmarks:1"
#define NS_BOOKMARKS_LEGACY "storage:bookmarks"

/* Node names and item ids longer than this are refused (store keys). */
#define PEP_MAX_NAME_LEN 256

/* ---- limits (the module's config) ---- */

typedef struct pep_limits {
    size_t max_items_per_node;
    size_t max_item_size; /* serialized bytes of one <item/> */
    size_t max_nodes_per_user;
    unsigned caps_max_pending;   /* disco#info queries for caps waiting at once */
    unsigned caps_query_timeout; /* seconds a caps query waits for its answer */
    size_t caps_cache_size;      /* caps vers whose features are kept */
} pep_limits;

/* Set from the config at load and reload; read everywhere. */
extern pep_limits pep_limits_current;

/* ---- errors ---- */

/* A stanza error: type, RFC 6120 condition, optional XEP-0060
 * application condition (in NS_PUBSUB_ERRORS) and text. */
typedef struct pep_error {
    const char *type;
    const char *condition;
    const char *pubsub_condition; /* NULL: none */
    const char *text;             /* NULL: none */
} pep_error;

/* Route the error reply to iq. */
void pep_route_error(const vn_stanza *iq, const pep_error *err);

/* ---- node configuration (pep_node.c) ---- */

typedef enum { PEP_ACCESS_PRESENCE, PEP_ACCESS_OPEN, PEP_ACCESS_WHITELIST } pep_access;

typedef struct pep_config {
    pep_access access;
    bool persist_items;
    size_t max_items; /* 0: 'max', the server's max_items_per_node */
} pep_config;

/* presence access, persistent, one item: XEP-0163 §4.2's defaults (one
 * item is what PEP nodes hold unless configured otherwise). */
pep_config pep_config_default(void);
const char *pep_access_name(pep_access access);
bool pep_access_parse(const char *name, pep_access *out);
/* How many items the node keeps now. */
size_t pep_config_item_limit(const pep_config *config);

/* ---- nodes and items in the store (pep_node.c) ---- */

typedef struct pep_node {
    char *name;
    pep_config config;
    char **item_ids; /* oldest first */
    size_t n_items;
} pep_node;

pep_node *pep_node_new(const char *name, const pep_config *config);
void pep_node_free(pep_node *node);
/* VN_STORE_OK, VN_STORE_NOT_FOUND or VN_STORE_ERROR. */
int pep_node_load(const char *host, const char *user, const char *name, pep_node **out);
int pep_node_save(const char *host, const char *user, const pep_node *node);
/* The node and all its items. */
int pep_node_delete(const char *host, const char *user, const char *name);
int pep_node_count(const char *host, const char *user, size_t *count);
/* Every node of the account, in name order; return false to stop. */
typedef bool (*pep_node_cb)(pep_node *node, void *ud);
int pep_node_foreach(const char *host, const char *user, pep_node_cb cb, void *ud);
bool pep_node_has_item(const pep_node *node, const char *id);

/* Store item (an <item id/> in NS_PUBSUB), replacing one with the same id
 * and evicting the oldest past the node's limit; updates node, which the
 * caller saves. Items of a node that does not persist them are kept in
 * memory, the newest only. */
int pep_item_put(const char *host, const char *user, pep_node *node, const vn_stanza *item);
/* VN_STORE_NOT_FOUND if the node has no such item. */
int pep_item_remove(const char *host, const char *user, pep_node *node, const char *id);
/* The stored <item/>, or NULL (absent or unreadable). */
vn_stanza *pep_item_get(const char *host, const char *user, const pep_node *node, const char *id);
/* Give the node config, keeping the items that fit it: the newest only
 * when they move between the store and memory. The caller saves node. */
int pep_node_reconfigure(const char *host, const char *user, pep_node *node,
                         const pep_config *config);
/* Forget the memory-only items (module unload). */
void pep_node_forget_volatile(void);

/* ---- data forms (pep_form.c) ---- */

/* Apply a submitted publish-options or node_config form (FORM_TYPE
 * form_type) to config. With check_only, compare instead: false when a
 * field differs from config. Unknown fields are ignored. Failures set *err:
 * conflict with precondition-not-met for publish-options (a bad value is a
 * precondition the service cannot meet), not-acceptable for node_config.
 * Returns true on success. */
bool pep_form_apply(const vn_stanza *form, const char *form_type, pep_config *config,
                    bool check_only, pep_error *err);
/* The node_config form (type 'form') describing config, appended to parent. */
void pep_form_add_config(vn_stanza *parent, const pep_config *config, const char *lang);

/* ---- XEP-0115 verification (pep_caps_ver.c) ---- */

/* Base64 of a sha-1 digest, with its NUL. */
#define PEP_CAPS_SHA1_VER_SIZE 29

/* The §5.1 verification string of a disco#info <query/> (malloc'd), or
 * NULL when §5.4 says the answer must not be cached: a repeated identity,
 * feature or FORM_TYPE, or a FORM_TYPE with differing values. */
char *pep_caps_ver_string(const vn_stanza *query);
/* Its sha-1 ver into ver; false as above. */
bool pep_caps_sha1_ver(const vn_stanza *query, char ver[PEP_CAPS_SHA1_VER_SIZE]);

/* ---- interest in notifications (pep_caps.c) ---- */

/* Called when entity (a full JID) is known to want notifications of
 * service's nodes (its caps are known and it may be a subscriber): send it
 * the last items it is interested in. */
typedef void (*pep_greet_fn)(const vn_jid *service, const char *entity);

void pep_caps_start(vn_module *m, pep_greet_fn greet);
void pep_caps_stop(vn_module *m);
/* Whether the available entity advertised '<node>+notify'. */
bool pep_caps_wants(const char *entity, const char *node);
/* Every available full JID of bare that is known, with its caps or not. */
typedef void (*pep_entity_cb)(const char *entity, void *ud);
void pep_caps_foreach_entity(const char *bare, pep_entity_cb cb, void *ud);

/* ---- the service (pep_service.c) ---- */

/* The account whose service is addressed, and who asks. */
typedef struct pep_request {
    const vn_jid *service;   /* bare JID of the account */
    const vn_jid *requester; /* full JID */
} pep_request;

bool pep_is_owner(const pep_request *req);

/* Publish item (<item/>, id may be missing: one is made) to node_name,
 * creating the node with options applied to the defaults, or checking
 * options against the existing node (publish-options may be NULL). The
 * item id used is stored in *id_out (malloc'd). */
bool pep_service_publish(const pep_request *req, const char *node_name, const vn_stanza *item,
                         const vn_stanza *options, char **id_out, pep_error *err);
bool pep_service_retract(const pep_request *req, const char *node_name, const char *id, bool notify,
                         pep_error *err);
bool pep_service_delete(const pep_request *req, const char *node_name, pep_error *err);
/* <items node/> with the node's items the requester may read: those named
 * by ids (n_ids > 0), else the max_items newest (0: all), oldest first. */
vn_stanza *pep_service_items(const pep_request *req, const char *node_name, const char *const *ids,
                             size_t n_ids, size_t max_items, pep_error *err);
/* The node's config for its owner; false with *err if absent. */
bool pep_service_get_config(const pep_request *req, const char *node_name, pep_config *out,
                            pep_error *err);
bool pep_service_configure(const pep_request *req, const char *node_name, const vn_stanza *form,
                           pep_error *err);
/* The entity may read the service's node (owner, access model, roster). */
bool pep_service_may_read(const vn_jid *service, const char *entity, const pep_config *config);
/* A notification: <message type='headline'> from the service to entity
 * carrying a copy of event. */
void pep_service_send_event(const vn_jid *service, const char *entity, const vn_stanza *event);
/* Send the newest item of every node the entity wants to hear about. */
void pep_service_greet(const vn_jid *service, const char *entity);

/* ---- XEP-0048 bookmarks in XEP-0402's node (pep_bookmarks.c) ---- */

void pep_bookmarks_start(vn_module *m);
void pep_bookmarks_stop(vn_module *m);
/* The legacy storage:bookmarks PEP node is a view of NS_BOOKMARKS2. */
bool pep_bookmarks_is_legacy_node(const char *node_name);
/* Publish to the legacy node: its <storage/> replaces the bookmarks. */
bool pep_bookmarks_publish_legacy(const pep_request *req, const vn_stanza *item, pep_error *err);
/* <items node='storage:bookmarks'> with one item 'current' holding the
 * bookmarks as <storage/>; NULL with *err when there are none. */
vn_stanza *pep_bookmarks_legacy_items(const pep_request *req, pep_error *err);
/* After NS_BOOKMARKS2 changed: tell the owner's resources interested in
 * the legacy node. */
void pep_bookmarks_changed(const vn_jid *service);
/* The legacy node's item to entity, if it is an interested resource of
 * the owner and there are bookmarks. */
void pep_bookmarks_send_legacy(const vn_jid *service, const char *entity);

#endif
