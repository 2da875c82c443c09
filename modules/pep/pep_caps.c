/*
 * pep_caps.c - who wants which PEP notifications (XEP-0163 §4.3, XEP-0115).
 *
 * A contact asks for a node's notifications by listing '<node>+notify'
 * among the features behind the entity capabilities in its presence. This
 * file keeps, for every available entity (full JID) seen, its caps and the
 * PEP services (accounts) that saw its presence:
 *   - local clients: from their own presence broadcast; the services are
 *     their own account and the local contacts whose presence they get;
 *   - remote entities: from the presence they send to a local account
 *     whose roster gives them a subscription to its presence ('from' or
 *     'both'); caps in anyone else's presence are not looked at, so a
 *     stranger can neither fill the cache nor make the server query him.
 * The features behind a caps ver are asked once with disco#info, from the
 * bare JID of a service, and cached by ver when the answer hashes to it
 * (XEP-0115 §5.4, pep_caps_ver.c); otherwise they are kept for that entity
 * alone. Queries wait at most pep.caps_query_timeout for their answer, at
 * most pep.caps_max_pending at once and one per entity; pep.caps_cache_size
 * vers are kept, the least recently used going first. Once an
 * entity's features are known, each of its services is told once (the
 * greet callback), so it can send the last items; a new ver tells them
 * again. Unavailable presence and closed sessions forget the entity.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "pep.h"

#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define QUERY_ID_PREFIX "pep-caps-"
#define PRESENCE_PRIORITY 50
#define RESULT_PRIORITY 50

/* The features behind one caps ver, or behind one entity's caps when they
 * could not be verified (key "!" and the entity's JID). */
typedef struct caps_record {
    char *key;
    char **features; /* sorted */
    size_t n_features;
    bool known;
    int64_t asked_us; /* when a query last went out; 0: never */
    UT_hash_handle hh;
} caps_record;

typedef struct service_ref {
    char *bare;
    bool greeted;
} service_ref;

typedef struct entity {
    char *jid; /* full JID */
    char *bare;
    char *caps_key; /* NULL: no caps in its presence */
    char *query_id; /* its disco#info query waiting for an answer, or NULL */
    service_ref *services;
    size_t n_services;
    UT_hash_handle hh;      /* in entities, by jid */
    UT_hash_handle by_bare; /* in the group of its bare JID */
} entity;

typedef struct bare_group {
    char *bare;
    entity *members;
    UT_hash_handle hh;
} bare_group;

typedef struct pending_query {
    char *id;
    char *entity;   /* whom it was sent to */
    char *caps_key; /* the record it answers */
    bool verify;    /* a sha-1 ver: check the answer hashes to it */
    int64_t sent_us;
    UT_hash_handle hh; /* in queries, oldest first */
} pending_query;

static caps_record *records;
static entity *entities;
static bare_group *groups;
static pending_query *queries;
static size_t n_shared; /* records keyed by ver, as opposed to "!" + JID */
static unsigned long long query_counter;
static pep_greet_fn greet_fn;

/* ---- caps records ---- */

static bool is_shared(const caps_record *r)
{
    return r->key[0] != '!';
}

static void record_free(caps_record *r)
{
    if (is_shared(r))
        n_shared--;
    HASH_DEL(records, r);
    for (size_t i = 0; i < r->n_features; i++)
        free(r->features[i]);
    free(r->features);
    free(r->key);
    free(r);
}

/* The record of key, made if new. The table is in order of last use: a
 * new shared record past pep.caps_cache_size pushes out the one used
 * least recently (an entity whose record went is asked again at its next
 * presence). */
static caps_record *record_get(const char *key)
{
    caps_record *r = NULL;
    HASH_FIND_STR(records, key, r);
    if (r) {
        HASH_DEL(records, r);
        HASH_ADD_KEYPTR(hh, records, r->key, strlen(r->key), r);
        return r;
    }
    r = vn_alloc(sizeof *r);
    r->key = vn_strdup(key);
    if (is_shared(r)) {
        for (caps_record *old = records; old && n_shared >= pep_limits_current.caps_cache_size;) {
            caps_record *next = old->hh.next;
            if (is_shared(old))
                record_free(old);
            old = next;
        }
        n_shared++;
    }
    HASH_ADD_KEYPTR(hh, records, r->key, strlen(r->key), r);
    return r;
}

static int string_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void record_set_features(caps_record *r, const vn_stanza *query)
{
    for (const vn_stanza *e = query ? vn_stanza_first_element(query) : NULL; e;
         e = vn_stanza_next_element(e)) {
        if (vn_stanza_is(e, "feature", NS_DISCO_INFO) && vn_stanza_attr(e, "var")) {
            r->features = vn_realloc(r->features, (r->n_features + 1) * sizeof *r->features);
            r->features[r->n_features++] = vn_strdup(vn_stanza_attr(e, "var"));
        }
    }
    if (r->n_features > 1)
        qsort(r->features, r->n_features, sizeof *r->features, string_order);
    r->known = true;
}

static bool record_has(const caps_record *r, const char *feature)
{
    return r->known && r->n_features > 0 &&
           bsearch(&feature, r->features, r->n_features, sizeof *r->features, string_order) != NULL;
}

typedef struct string_list {
    char **items;
    size_t count;
} string_list;

static void list_add(string_list *list, char *owned)
{
    list->items = vn_realloc(list->items, (list->count + 1) * sizeof *list->items);
    list->items[list->count++] = owned;
}

static bool answer_matches_ver(const vn_stanza *query, const char *ver)
{
    char computed[PEP_CAPS_SHA1_VER_SIZE];
    return pep_caps_sha1_ver(query, computed) && strcmp(computed, ver) == 0;
}

/* ---- pending queries ---- */

static int64_t query_timeout_us(void)
{
    return (int64_t)pep_limits_current.caps_query_timeout * 1000000;
}

static void query_free(pending_query *q);

/* Forget the queries older than the timeout: their ver may be asked again. */
static void expire_queries(int64_t now_us)
{
    while (queries && now_us - queries->sent_us >= query_timeout_us()) {
        caps_record *r = NULL;
        HASH_FIND_STR(records, queries->caps_key, r);
        if (r && !r->known)
            r->asked_us = 0;
        vn_log_debug("pep: no answer from %s to disco#info %s", queries->entity, queries->id);
        query_free(queries);
    }
}

/* ---- entities ---- */

static entity *entity_find(const char *jid)
{
    entity *e = NULL;
    HASH_FIND_STR(entities, jid, e);
    return e;
}

static void entity_forget(const char *jid)
{
    entity *e = entity_find(jid);
    if (!e)
        return;
    bare_group *g = NULL;
    HASH_FIND_STR(groups, e->bare, g);
    if (g) {
        HASH_DELETE(by_bare, g->members, e);
        if (!g->members) {
            HASH_DEL(groups, g);
            free(g->bare);
            free(g);
        }
    }
    HASH_DEL(entities, e);
    pending_query *q = NULL;
    if (e->query_id)
        HASH_FIND_STR(queries, e->query_id, q);
    if (q)
        query_free(q);
    caps_record *own = NULL;
    if (e->caps_key && e->caps_key[0] == '!')
        HASH_FIND_STR(records, e->caps_key, own);
    if (own)
        record_free(own);
    for (size_t i = 0; i < e->n_services; i++)
        free(e->services[i].bare);
    free(e->services);
    free(e->caps_key);
    free(e->query_id);
    free(e->bare);
    free(e->jid);
    free(e);
}

static entity *entity_get(const vn_jid *jid)
{
    entity *e = entity_find(jid->full);
    if (e)
        return e;
    e = vn_alloc(sizeof *e);
    e->jid = vn_strdup(jid->full);
    e->bare = vn_strdup(jid->bare);
    HASH_ADD_KEYPTR(hh, entities, e->jid, strlen(e->jid), e);

    bare_group *g = NULL;
    HASH_FIND_STR(groups, e->bare, g);
    if (!g) {
        g = vn_alloc(sizeof *g);
        g->bare = vn_strdup(e->bare);
        HASH_ADD_KEYPTR(hh, groups, g->bare, strlen(g->bare), g);
    }
    HASH_ADD_KEYPTR(by_bare, g->members, e->jid, strlen(e->jid), e);
    return e;
}

static void entity_add_service(entity *e, const char *bare)
{
    for (size_t i = 0; i < e->n_services; i++)
        if (strcmp(e->services[i].bare, bare) == 0)
            return;
    e->services = vn_realloc(e->services, (e->n_services + 1) * sizeof *e->services);
    e->services[e->n_services++] = (service_ref){vn_strdup(bare), false};
}

static const caps_record *entity_record(const entity *e)
{
    caps_record *r = NULL;
    if (e->caps_key)
        HASH_FIND_STR(records, e->caps_key, r);
    return r;
}

/* Tell every service not yet told that the entity's features are known.
 * The callback may route stanzas, which may end sessions and forget
 * entities: look the entity up again after each call. */
static void entity_greet(const char *jid)
{
    for (size_t i = 0;; i++) {
        entity *e = entity_find(jid);
        const caps_record *r = e ? entity_record(e) : NULL;
        if (!r || !r->known || i >= e->n_services)
            return;
        if (e->services[i].greeted)
            continue;
        e->services[i].greeted = true;
        vn_jid *service = vn_jid_parse(e->services[i].bare);
        char *entity_jid = vn_strdup(jid);
        if (service)
            greet_fn(service, entity_jid);
        free(entity_jid);
        vn_jid_free(service);
    }
}

/* Ask e for the features behind r, unless too many queries are out; an
 * earlier query of e's is dropped (its caps have changed since). */
static void send_query(const char *from, entity *e, caps_record *r, const char *node_ver,
                       bool verify)
{
    int64_t now = vn_now_us();
    pending_query *q = NULL;

    expire_queries(now);
    if (e->query_id)
        HASH_FIND_STR(queries, e->query_id, q);
    if (q)
        query_free(q);
    if (HASH_COUNT(queries) >= pep_limits_current.caps_max_pending) {
        vn_log_debug("pep: %u caps queries pending: not asking %s", HASH_COUNT(queries), e->jid);
        return;
    }
    q = vn_alloc(sizeof *q);
    q->id = vn_asprintf(QUERY_ID_PREFIX "%llu", ++query_counter);
    q->entity = vn_strdup(e->jid);
    q->caps_key = vn_strdup(r->key);
    q->verify = verify;
    q->sent_us = now;
    HASH_ADD_KEYPTR(hh, queries, q->id, strlen(q->id), q);
    e->query_id = vn_strdup(q->id);
    r->asked_us = now;

    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    vn_stanza_set_attr(iq, "type", "get");
    vn_stanza_set_attr(iq, "id", q->id);
    vn_stanza_set_attr(iq, "from", from);
    vn_stanza_set_attr(iq, "to", e->jid);
    vn_stanza_set_attr(vn_stanza_add_child(iq, "query", NS_DISCO_INFO), "node", node_ver);
    vn_route(iq);
}

/* Record an available presence of jid, seen by the services (at least
 * one); the first asks for the caps when they are unknown. */
static void seen_available(const vn_jid *jid, const vn_stanza *presence,
                           const char *const *services, size_t n_services)
{
    const vn_stanza *c = vn_stanza_child(presence, "c", NS_CAPS);
    const char *ver = c ? vn_stanza_attr(c, "ver") : NULL;
    const char *node = c ? vn_stanza_attr(c, "node") : NULL;
    const char *hash = c ? vn_stanza_attr(c, "hash") : NULL;
    bool verify = hash && strcmp(hash, "sha-1") == 0;
    entity *e = entity_get(jid);
    char *key = !ver || !node ? NULL : verify ? vn_strdup(ver) : vn_asprintf("!%s", jid->full);

    if ((key == NULL) != (e->caps_key == NULL) || (key && strcmp(key, e->caps_key) != 0)) {
        /* New caps: any service may now want other items. */
        free(e->caps_key);
        e->caps_key = key;
        for (size_t i = 0; i < e->n_services; i++)
            e->services[i].greeted = false;
    } else {
        free(key);
    }
    for (size_t i = 0; i < n_services; i++)
        entity_add_service(e, services[i]);
    if (!e->caps_key)
        return;

    caps_record *r = record_get(e->caps_key);
    if (!r->known) {
        if (!r->asked_us || vn_now_us() - r->asked_us >= query_timeout_us()) {
            char *node_ver = vn_asprintf("%s#%s", node, ver);
            send_query(services[0], e, r, node_ver, verify);
            free(node_ver);
        }
        return;
    }
    entity_greet(jid->full);
}

/* ---- hooks ---- */

/* The contacts whose presence the account gets (subscription 'to'). */
typedef struct contact_list {
    char **jids;
    size_t count;
} contact_list;

static bool collect_contact(const vn_roster_item *item, void *ud)
{
    contact_list *list = ud;
    if (vn_subscription_has_to(item->subscription)) {
        list->jids = vn_realloc(list->jids, (list->count + 1) * sizeof *list->jids);
        list->jids[list->count++] = vn_strdup(item->jid);
    }
    return true;
}

/* "presence/broadcast": a local client's own presence. Its services are
 * its own account and the local accounts whose presence it gets (whose
 * roster gives it 'from'; the greeting checks their side). */
static vn_hook_result local_presence(vn_event *ev, void *ud)
{
    vn_jid *me = vn_jid_copy(vn_session_jid(ev->session));
    const char *type = vn_stanza_attr(ev->stanza, "type");

    if (type) {
        if (strcmp(type, "unavailable") == 0)
            entity_forget(me->full);
        vn_jid_free(me);
        return VN_PASS;
    }
    contact_list contacts = {NULL, 0};
    if (vn_roster_foreach(vn_server_store(), me->domain, me->local, collect_contact, &contacts) !=
        VN_STORE_OK)
        vn_log_error("pep: cannot read the roster of %s", me->bare);

    const char **services = vn_alloc((contacts.count + 1) * sizeof *services);
    size_t n_services = 0;
    services[n_services++] = me->bare;
    for (size_t i = 0; i < contacts.count; i++) {
        const char *at = strchr(contacts.jids[i], '@');
        if (at && vn_is_local_host(at + 1))
            services[n_services++] = contacts.jids[i];
    }
    seen_available(me, ev->stanza, services, n_services);
    free(services);
    for (size_t i = 0; i < contacts.count; i++)
        free(contacts.jids[i]);
    free(contacts.jids);
    vn_jid_free(me);
    return VN_PASS;
}

/* The account's roster lets contact see its presence. */
static bool is_contact(const vn_jid *account, const vn_jid *contact)
{
    vn_roster_item *item = NULL;
    bool subscribed = vn_roster_get(vn_server_store(), account->domain, account->local,
                                    contact->bare, &item) == VN_STORE_OK &&
                      vn_subscription_has_from(item->subscription);
    vn_roster_item_free(item);
    return subscribed;
}

/* "presence/bare", "presence/full": presence a remote entity sends to a
 * local account. Local senders are known from their broadcast already. */
static vn_hook_result remote_presence(vn_event *ev, void *ud)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");

    if (!ev->from || !ev->from->resource || !ev->to || !ev->to->local ||
        vn_is_local_host(ev->from->domain))
        return VN_PASS;
    if (!type) {
        if (!is_contact(ev->to, ev->from))
            return VN_PASS;
        const char *service = ev->to->bare;
        seen_available(ev->from, ev->stanza, &service, 1);
    } else if (strcmp(type, "unavailable") == 0) {
        entity_forget(ev->from->full);
    }
    return VN_PASS;
}

static vn_hook_result session_closed(vn_event *ev, void *ud)
{
    entity_forget(vn_session_jid(ev->session)->full);
    return VN_PASS;
}

static void query_free(pending_query *q)
{
    entity *e = entity_find(q->entity);
    if (e && e->query_id && strcmp(e->query_id, q->id) == 0) {
        free(e->query_id);
        e->query_id = NULL;
    }
    HASH_DEL(queries, q);
    free(q->id);
    free(q->entity);
    free(q->caps_key);
    free(q);
}

/* Greet every entity whose caps are now known. */
static void greet_all_with(const char *caps_key)
{
    string_list waiting = {NULL, 0};
    for (entity *e = entities; e; e = e->hh.next)
        if (e->caps_key && strcmp(e->caps_key, caps_key) == 0)
            list_add(&waiting, vn_strdup(e->jid));
    for (size_t i = 0; i < waiting.count; i++) {
        entity_greet(waiting.items[i]);
        free(waiting.items[i]);
    }
    free(waiting.items);
}

/* "iq-result/bare": the answer to one of our disco#info queries. */
static vn_hook_result query_answer(vn_event *ev, void *ud)
{
    const char *id = vn_stanza_attr(ev->stanza, "id");
    pending_query *q = NULL;

    if (!id || strncmp(id, QUERY_ID_PREFIX, strlen(QUERY_ID_PREFIX)) != 0)
        return VN_PASS;
    expire_queries(vn_now_us());
    HASH_FIND_STR(queries, id, q);
    if (!q || !ev->from || strcmp(ev->from->full, q->entity) != 0)
        return VN_PASS;

    const char *type = vn_stanza_attr(ev->stanza, "type");
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", NS_DISCO_INFO);
    bool ok = type && strcmp(type, "result") == 0 && query;
    char *key = vn_strdup(q->caps_key);

    if (ok && q->verify && !answer_matches_ver(query, q->caps_key)) {
        vn_log_info("pep: caps of %s do not hash to their ver; trusted for it alone", q->entity);
        ok = false;
    }
    if (!ok) {
        /* The ver stays unknown for others; this entity gets what it said. */
        caps_record *shared = NULL;
        HASH_FIND_STR(records, key, shared);
        if (shared && !shared->known)
            shared->asked_us = 0;
        free(key);
        key = vn_asprintf("!%s", q->entity);
        entity *e = entity_find(q->entity);
        if (e) {
            free(e->caps_key);
            e->caps_key = vn_strdup(key);
        }
    }
    caps_record *r = record_get(key);
    if (!r->known)
        record_set_features(r, type && strcmp(type, "result") == 0 ? query : NULL);
    query_free(q);
    greet_all_with(key);
    free(key);
    return VN_HANDLED;
}

/* ---- interface ---- */

bool pep_caps_wants(const char *jid, const char *node)
{
    const entity *e = entity_find(jid);
    const caps_record *r = e ? entity_record(e) : NULL;
    if (!r)
        return false;
    char *feature = vn_asprintf("%s+notify", node);
    bool wants = record_has(r, feature);
    free(feature);
    return wants;
}

void pep_caps_foreach_entity(const char *bare, pep_entity_cb cb, void *ud)
{
    bare_group *g = NULL;
    HASH_FIND_STR(groups, bare, g);
    if (!g)
        return;
    string_list jids = {NULL, 0};
    for (const entity *e = g->members; e; e = e->by_bare.next)
        list_add(&jids, vn_strdup(e->jid));
    for (size_t i = 0; i < jids.count; i++) {
        cb(jids.items[i], ud);
        free(jids.items[i]);
    }
    free(jids.items);
}

void pep_caps_start(vn_module *m, pep_greet_fn greet)
{
    greet_fn = greet;
    vn_hook_add("presence/broadcast", PRESENCE_PRIORITY, local_presence, m);
    vn_hook_add("presence/bare", PRESENCE_PRIORITY, remote_presence, m);
    vn_hook_add("presence/full", PRESENCE_PRIORITY, remote_presence, m);
    vn_hook_add("session/closed", PRESENCE_PRIORITY, session_closed, m);
    vn_hook_add("iq-result/bare", RESULT_PRIORITY, query_answer, m);
}

void pep_caps_stop(vn_module *m)
{
    vn_hook_remove("presence/broadcast", local_presence, m);
    vn_hook_remove("presence/bare", remote_presence, m);
    vn_hook_remove("presence/full", remote_presence, m);
    vn_hook_remove("session/closed", session_closed, m);
    vn_hook_remove("iq-result/bare", query_answer, m);
    while (entities)
        entity_forget(entities->jid);
    while (records)
        record_free(records);
    while (queries)
        query_free(queries);
}
