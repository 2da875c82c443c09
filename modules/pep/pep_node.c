/*
 * pep_node.c - PEP nodes and their items in the store.
 *
 * A node is a document in the store "pep_nodes" of its account, keyed by
 * the node name: <node xmlns='urn:xmpp:vestnik:pep:0' access persist max>
 * listing its item ids oldest first. Each item is a document in
 * "pep_items", keyed by the hex SHA-256 of node name and item id (so any
 * name fits the store's key size), holding the serialized <item/>.
 *
 * A node that does not persist its items (pubsub#persist_items false)
 * keeps only its newest item, in memory: it is still sent to contacts that
 * show up, but is gone after a restart.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "pep.h"

#define NODE_STORE "pep_nodes"
#define ITEM_STORE "pep_items"
#define NS_NODE_DOC "urn:xmpp:vestnik:pep:0"

pep_limits pep_limits_current = {256, 262144, 1024, 1000, 60, 10000};

/* ---- configuration ---- */

static const char *const access_names[] = {
    [PEP_ACCESS_PRESENCE] = "presence",
    [PEP_ACCESS_OPEN] = "open",
    [PEP_ACCESS_WHITELIST] = "whitelist",
};

pep_config pep_config_default(void)
{
    return (pep_config){.access = PEP_ACCESS_PRESENCE, .persist_items = true, .max_items = 1};
}

const char *pep_access_name(pep_access access)
{
    return access_names[access];
}

bool pep_access_parse(const char *name, pep_access *out)
{
    for (size_t i = 0; i < sizeof access_names / sizeof access_names[0]; i++) {
        if (strcmp(name, access_names[i]) == 0) {
            *out = (pep_access)i;
            return true;
        }
    }
    return false;
}

size_t pep_config_item_limit(const pep_config *config)
{
    size_t limit = pep_limits_current.max_items_per_node;
    if (config->max_items != 0 && config->max_items < limit)
        limit = config->max_items;
    return config->persist_items ? limit : 1;
}

/* ---- memory-only items ---- */

typedef struct volatile_item {
    char *key; /* item key of the node's newest item, with host and user */
    vn_stanza *item;
    UT_hash_handle hh;
} volatile_item;

static volatile_item *volatile_items;

static void volatile_drop(volatile_item *v)
{
    HASH_DEL(volatile_items, v);
    free(v->key);
    vn_stanza_free(v->item);
    free(v);
}

void pep_node_forget_volatile(void)
{
    while (volatile_items)
        volatile_drop(volatile_items);
}

/* ---- nodes ---- */

pep_node *pep_node_new(const char *name, const pep_config *config)
{
    pep_node *node = vn_alloc(sizeof *node);
    node->name = vn_strdup(name);
    node->config = *config;
    return node;
}

void pep_node_free(pep_node *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n_items; i++)
        free(node->item_ids[i]);
    free(node->item_ids);
    free(node->name);
    free(node);
}

static void node_append_id(pep_node *node, const char *id)
{
    node->item_ids = vn_realloc(node->item_ids, (node->n_items + 1) * sizeof *node->item_ids);
    node->item_ids[node->n_items++] = vn_strdup(id);
}

/* Index of id in the node's list, or n_items. */
static size_t node_find_id(const pep_node *node, const char *id)
{
    size_t i = 0;
    while (i < node->n_items && strcmp(node->item_ids[i], id) != 0)
        i++;
    return i;
}

bool pep_node_has_item(const pep_node *node, const char *id)
{
    return node_find_id(node, id) < node->n_items;
}

static void node_drop_index(pep_node *node, size_t i)
{
    free(node->item_ids[i]);
    memmove(&node->item_ids[i], &node->item_ids[i + 1],
            (node->n_items - i - 1) * sizeof *node->item_ids);
    node->n_items--;
}

static pep_node *node_from_document(const char *name, const char *xml, size_t len)
{
    vn_stanza *doc = vn_stanza_parse(xml, len);
    if (!doc || !vn_stanza_is(doc, "node", NS_NODE_DOC)) {
        vn_stanza_free(doc);
        return NULL;
    }
    pep_config config = pep_config_default();
    const char *access = vn_stanza_attr(doc, "access");
    const char *persist = vn_stanza_attr(doc, "persist");
    const char *max = vn_stanza_attr(doc, "max");
    if (access)
        pep_access_parse(access, &config.access);
    config.persist_items = !persist || strcmp(persist, "1") == 0;
    config.max_items = max ? strtoul(max, NULL, 10) : 1;

    pep_node *node = pep_node_new(name, &config);
    for (const vn_stanza *e = vn_stanza_first_element(doc); e; e = vn_stanza_next_element(e))
        if (vn_stanza_is(e, "item", NS_NODE_DOC) && vn_stanza_attr(e, "id"))
            node_append_id(node, vn_stanza_attr(e, "id"));
    vn_stanza_free(doc);
    return node;
}

int pep_node_load(const char *host, const char *user, const char *name, pep_node **out)
{
    vn_buf value;
    vn_buf_init(&value);
    *out = NULL;
    int rc = vn_store_get(vn_server_store(), host, user, NODE_STORE, name, &value);
    if (rc == VN_STORE_OK) {
        *out = node_from_document(name, value.data, value.len);
        if (!*out) {
            vn_log_error("pep: stored node %s of %s@%s does not parse", name, user, host);
            rc = VN_STORE_ERROR;
        }
    }
    vn_buf_free(&value);
    return rc;
}

int pep_node_save(const char *host, const char *user, const pep_node *node)
{
    vn_stanza *doc = vn_stanza_new("node", NS_NODE_DOC);
    char max[32];

    snprintf(max, sizeof max, "%zu", node->config.max_items);
    vn_stanza_set_attr(doc, "access", pep_access_name(node->config.access));
    vn_stanza_set_attr(doc, "persist", node->config.persist_items ? "1" : "0");
    vn_stanza_set_attr(doc, "max", max);
    for (size_t i = 0; i < node->n_items; i++)
        vn_stanza_set_attr(vn_stanza_add_child(doc, "item", NS_NODE_DOC), "id", node->item_ids[i]);
    size_t len;
    char *xml = vn_stanza_serialize(doc, VN_NS_CLIENT, &len);
    int rc = vn_store_put(vn_server_store(), host, user, NODE_STORE, node->name, xml, len);
    free(xml);
    vn_stanza_free(doc);
    return rc;
}

typedef struct count_ctx {
    size_t count;
} count_ctx;

static bool count_node(const char *key, const void *value, size_t len, void *ud)
{
    ((count_ctx *)ud)->count++;
    return true;
}

int pep_node_count(const char *host, const char *user, size_t *count)
{
    count_ctx ctx = {0};
    int rc = vn_store_foreach(vn_server_store(), host, user, NODE_STORE, count_node, &ctx);
    *count = ctx.count;
    return rc;
}

typedef struct foreach_ctx {
    pep_node_cb cb;
    void *ud;
} foreach_ctx;

static bool visit_node(const char *key, const void *value, size_t len, void *ud)
{
    const foreach_ctx *ctx = ud;
    pep_node *node = node_from_document(key, value, len);
    if (!node)
        return true;
    bool more = ctx->cb(node, ctx->ud);
    pep_node_free(node);
    return more;
}

int pep_node_foreach(const char *host, const char *user, pep_node_cb cb, void *ud)
{
    foreach_ctx ctx = {cb, ud};
    return vn_store_foreach(vn_server_store(), host, user, NODE_STORE, visit_node, &ctx);
}

/* ---- items ---- */

/* Hex SHA-256 of node name, NUL and id: 64 characters and the NUL. */
static void item_key(const char *node, const char *id, char key[65])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *sha = EVP_MD_CTX_new();

    if (!sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(sha, node, strlen(node) + 1) || !EVP_DigestUpdate(sha, id, strlen(id)) ||
        !EVP_DigestFinal_ex(sha, digest, NULL)) {
        vn_log_error("pep: SHA-256 failed");
        abort();
    }
    EVP_MD_CTX_free(sha);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(key + 2 * i, 3, "%02x", digest[i]);
}

static char *volatile_key(const char *host, const char *user, const char *node)
{
    char key[65];
    item_key(node, "", key);
    return vn_asprintf("%s\n%s\n%s", host, user, key);
}

static volatile_item *volatile_find(const char *host, const char *user, const char *node)
{
    char *key = volatile_key(host, user, node);
    volatile_item *v = NULL;
    HASH_FIND_STR(volatile_items, key, v);
    free(key);
    return v;
}

static int stored_item_delete(const char *host, const char *user, const char *node, const char *id)
{
    char key[65];
    item_key(node, id, key);
    return vn_store_delete(vn_server_store(), host, user, ITEM_STORE, key);
}

/* Drop the oldest ids until the node fits its limit. */
static int trim(const char *host, const char *user, pep_node *node)
{
    size_t limit = pep_config_item_limit(&node->config);
    while (node->n_items > limit) {
        if (node->config.persist_items &&
            stored_item_delete(host, user, node->name, node->item_ids[0]) != VN_STORE_OK)
            return VN_STORE_ERROR;
        node_drop_index(node, 0);
    }
    return VN_STORE_OK;
}

int pep_item_put(const char *host, const char *user, pep_node *node, const vn_stanza *item)
{
    const char *id = vn_stanza_attr(item, "id");
    size_t at = node_find_id(node, id);
    if (at < node->n_items)
        node_drop_index(node, at);

    if (node->config.persist_items) {
        char key[65];
        size_t len;
        char *xml = vn_stanza_serialize(item, VN_NS_CLIENT, &len);
        item_key(node->name, id, key);
        int rc = vn_store_put(vn_server_store(), host, user, ITEM_STORE, key, xml, len);
        free(xml);
        if (rc != VN_STORE_OK)
            return rc;
    } else {
        volatile_item *v = volatile_find(host, user, node->name);
        if (!v) {
            v = vn_alloc(sizeof *v);
            v->key = volatile_key(host, user, node->name);
            HASH_ADD_KEYPTR(hh, volatile_items, v->key, strlen(v->key), v);
        }
        vn_stanza_free(v->item);
        v->item = vn_stanza_copy(item);
    }
    node_append_id(node, id);
    return trim(host, user, node);
}

int pep_item_remove(const char *host, const char *user, pep_node *node, const char *id)
{
    size_t at = node_find_id(node, id);
    if (at == node->n_items)
        return VN_STORE_NOT_FOUND;
    if (node->config.persist_items) {
        if (stored_item_delete(host, user, node->name, id) != VN_STORE_OK)
            return VN_STORE_ERROR;
    } else {
        volatile_item *v = volatile_find(host, user, node->name);
        if (v)
            volatile_drop(v);
    }
    node_drop_index(node, at);
    return VN_STORE_OK;
}

vn_stanza *pep_item_get(const char *host, const char *user, const pep_node *node, const char *id)
{
    if (!pep_node_has_item(node, id))
        return NULL;
    if (!node->config.persist_items) {
        const volatile_item *v = volatile_find(host, user, node->name);
        return v && strcmp(vn_stanza_attr(v->item, "id"), id) == 0 ? vn_stanza_copy(v->item) : NULL;
    }
    char key[65];
    vn_buf value;
    vn_stanza *item = NULL;
    item_key(node->name, id, key);
    vn_buf_init(&value);
    if (vn_store_get(vn_server_store(), host, user, ITEM_STORE, key, &value) == VN_STORE_OK) {
        item = vn_stanza_parse(value.data, value.len);
        if (!item)
            vn_log_error("pep: stored item %s of node %s of %s@%s does not parse", id, node->name,
                         user, host);
    }
    vn_buf_free(&value);
    return item;
}

int pep_node_reconfigure(const char *host, const char *user, pep_node *node,
                         const pep_config *config)
{
    if (node->config.persist_items == config->persist_items) {
        node->config = *config;
        return trim(host, user, node);
    }
    /* Where the items live changes: only the newest moves along. */
    vn_stanza *newest =
        node->n_items ? pep_item_get(host, user, node, node->item_ids[node->n_items - 1]) : NULL;
    int rc = VN_STORE_OK;
    while (node->n_items > 0 && rc == VN_STORE_OK)
        rc = pep_item_remove(host, user, node, node->item_ids[node->n_items - 1]);
    node->config = *config;
    if (rc == VN_STORE_OK && newest)
        rc = pep_item_put(host, user, node, newest);
    vn_stanza_free(newest);
    return rc;
}

int pep_node_delete(const char *host, const char *user, const char *name)
{
    pep_node *node = NULL;
    int rc = pep_node_load(host, user, name, &node);
    if (rc != VN_STORE_OK)
        return rc;
    while (node->n_items > 0 && rc == VN_STORE_OK)
        rc = pep_item_remove(host, user, node, node->item_ids[node->n_items - 1]);
    if (rc == VN_STORE_OK)
        rc = vn_store_delete(vn_server_store(), host, user, NODE_STORE, name);
    pep_node_free(node);
    return rc;
}
