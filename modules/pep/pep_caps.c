/*
 * pep_caps.c - who wants which PEP notifications (XEP-0163 §4.3, XEP-0115).
 *
 * A contact asks for a node's notifications by listing '<node>+notify'
 * among the features behind the entity capabilities in its presence. This
 * file keeps, for every available entity (full JID) seen, its caps and the
 * PEP services (accounts) that saw its presence:
 *   - local clients: from their own presence broadcast; the services are
 *     their own account and the local contacts whose presence they get;
 *   - remote entities: from the presence they send to a local account.
 * The features behind a caps ver are asked once with disco#info, from the
 * bare JID of a service, and cached by ver when the answer hashes to it
 * (XEP-0115 §5.4); otherwise they are kept for that entity alone. Once an
 * entity's features are known, each of its services is told once (the
 * greet callback), so it can send the last items; a new ver tells them
 * again. Unavailable presence and closed sessions forget the entity.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "pep.h"

#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define QUERY_ID_PREFIX "pep-caps-"
/* An unanswered disco#info query is sent again after this long. */
#define QUERY_RETRY_US (60 * 1000000LL)
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
    UT_hash_handle hh;
} pending_query;

static caps_record *records;
static entity *entities;
static bare_group *groups;
static pending_query *queries;
static unsigned long long query_counter;
static pep_greet_fn greet_fn;

/* ---- caps records ---- */

static void record_free(caps_record *r)
{
    HASH_DEL(records, r);
    for (size_t i = 0; i < r->n_features; i++)
        free(r->features[i]);
    free(r->features);
    free(r->key);
    free(r);
}

static caps_record *record_get(const char *key)
{
    caps_record *r = NULL;
    HASH_FIND_STR(records, key, r);
    if (!r) {
        r = vn_alloc(sizeof *r);
        r->key = vn_strdup(key);
        HASH_ADD_KEYPTR(hh, records, r->key, strlen(r->key), r);
    }
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

/* ---- XEP-0115 §5.1 verification string of a disco#info answer ---- */

static const char *attr_or_empty(const vn_stanza *e, const char *name)
{
    const char *value = vn_stanza_attr(e, name);
    return value ? value : "";
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

/* Sorted, appended to out, freed. */
static void list_flush(string_list *list, vn_buf *out)
{
    if (list->count > 1)
        qsort(list->items, list->count, sizeof *list->items, string_order);
    for (size_t i = 0; i < list->count; i++) {
        vn_buf_append_str(out, list->items[i]);
        free(list->items[i]);
    }
    free(list->items);
    *list = (string_list){NULL, 0};
}

/* One extended form: FORM_TYPE, then each other field with its values. */
static char *form_string(const vn_stanza *form)
{
    vn_buf out;
    const char *form_type = "";
    string_list fields = {NULL, 0};

    vn_buf_init(&out);
    for (const vn_stanza *f = vn_stanza_first_element(form); f; f = vn_stanza_next_element(f)) {
        if (!vn_stanza_is(f, "field", NS_DATA_FORMS))
            continue;
        const char *var = attr_or_empty(f, "var");
        if (strcmp(var, "FORM_TYPE") == 0) {
            const char *value = vn_stanza_child_text(f, "value", NS_DATA_FORMS);
            form_type = value ? value : "";
            continue;
        }
        vn_buf field;
        string_list values = {NULL, 0};
        vn_buf_init(&field);
        vn_buf_printf(&field, "%s<", var);
        for (const vn_stanza *v = vn_stanza_first_element(f); v; v = vn_stanza_next_element(v))
            if (vn_stanza_is(v, "value", NS_DATA_FORMS))
                list_add(&values, vn_asprintf("%s<", vn_stanza_text(v)));
        list_flush(&values, &field);
        list_add(&fields, vn_buf_steal(&field, NULL));
    }
    vn_buf_printf(&out, "%s<", form_type);
    list_flush(&fields, &out);
    return vn_buf_steal(&out, NULL);
}

static bool answer_matches_ver(const vn_stanza *query, const char *ver)
{
    string_list identities = {NULL, 0}, features = {NULL, 0}, forms = {NULL, 0};
    vn_buf s;

    for (const vn_stanza *e = vn_stanza_first_element(query); e; e = vn_stanza_next_element(e)) {
        if (vn_stanza_is(e, "identity", NS_DISCO_INFO))
            list_add(&identities,
                     vn_asprintf("%s/%s/%s/%s<", attr_or_empty(e, "category"),
                                 attr_or_empty(e, "type"), attr_or_empty(e, "xml:lang"),
                                 attr_or_empty(e, "name")));
        else if (vn_stanza_is(e, "feature", NS_DISCO_INFO))
            list_add(&features, vn_asprintf("%s<", attr_or_empty(e, "var")));
        else if (vn_stanza_is(e, "x", NS_DATA_FORMS))
            list_add(&forms, form_string(e));
    }
    vn_buf_init(&s);
    list_flush(&identities, &s);
    list_flush(&features, &s);
    list_flush(&forms, &s);

    unsigned char digest[SHA_DIGEST_LENGTH];
    char computed[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    SHA1((const unsigned char *)s.data, s.len, digest);
    EVP_EncodeBlock((unsigned char *)computed, digest, sizeof digest);
    vn_buf_free(&s);
    return strcmp(computed, ver) == 0;
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
    caps_record *own = NULL;
    if (e->caps_key && e->caps_key[0] == '!')
        HASH_FIND_STR(records, e->caps_key, own);
    if (own)
        record_free(own);
    for (size_t i = 0; i < e->n_services; i++)
        free(e->services[i].bare);
    free(e->services);
    free(e->caps_key);
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

static void send_query(const char *from, entity *e, caps_record *r, const char *node_ver,
                       bool verify)
{
    pending_query *q = vn_alloc(sizeof *q);
    q->id = vn_asprintf(QUERY_ID_PREFIX "%llu", ++query_counter);
    q->entity = vn_strdup(e->jid);
    q->caps_key = vn_strdup(r->key);
    q->verify = verify;
    HASH_ADD_KEYPTR(hh, queries, q->id, strlen(q->id), q);
    r->asked_us = vn_now_us();

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
        if (!r->asked_us || vn_now_us() - r->asked_us > QUERY_RETRY_US) {
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

/* "presence/bare", "presence/full": presence a remote entity sends to a
 * local account. Local senders are known from their broadcast already. */
static vn_hook_result remote_presence(vn_event *ev, void *ud)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");

    if (!ev->from || !ev->from->resource || vn_is_local_host(ev->from->domain))
        return VN_PASS;
    if (!type) {
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
