/*
 * disco.c - the service discovery registry (vn_disco_* in module.h).
 *
 * Modules announce the features and identities they provide here; mod_disco
 * serves them. Both are reference-counted, so two modules may announce the
 * same feature and it stays listed until both have withdrawn it. Features
 * are kept sorted by var, identities in registration order.
 */
#include "hooks.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "vestnik/module.h"

typedef struct disco_feature {
    char *var;
    unsigned refs;
    UT_hash_handle hh;
} disco_feature;

typedef struct disco_identity {
    char *category;
    char *type;
    char *name; /* may be NULL */
    unsigned refs;
} disco_identity;

static disco_feature *features;
static disco_identity *identities;
static size_t n_identities;
static size_t cap_identities;

static int feature_order(const disco_feature *a, const disco_feature *b)
{
    return strcmp(a->var, b->var);
}

void vn_disco_add_feature(const char *var)
{
    disco_feature *f;

    HASH_FIND_STR(features, var, f);
    if (f) {
        f->refs++;
        return;
    }
    f = vn_alloc(sizeof *f);
    f->var = vn_strdup(var);
    f->refs = 1;
    HASH_ADD_KEYPTR_INORDER(hh, features, f->var, strlen(f->var), f, feature_order);
}

static void feature_free(disco_feature *f)
{
    HASH_DEL(features, f);
    free(f->var);
    free(f);
}

void vn_disco_remove_feature(const char *var)
{
    disco_feature *f;

    HASH_FIND_STR(features, var, f);
    if (!f) {
        vn_log_warn("disco: removing feature %s, which is not registered", var);
        return;
    }
    if (--f->refs == 0)
        feature_free(f);
}

void vn_disco_foreach_feature(vn_disco_feature_cb cb, void *ud)
{
    for (const disco_feature *f = features; f; f = f->hh.next)
        cb(f->var, ud);
}

static bool str_equal(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static disco_identity *identity_find(const char *category, const char *type, const char *name)
{
    for (size_t i = 0; i < n_identities; i++) {
        disco_identity *id = &identities[i];
        if (str_equal(id->category, category) && str_equal(id->type, type) &&
            str_equal(id->name, name))
            return id;
    }
    return NULL;
}

void vn_disco_add_identity(const char *category, const char *type, const char *name)
{
    disco_identity *id = identity_find(category, type, name);

    if (id) {
        id->refs++;
        return;
    }
    if (n_identities == cap_identities) {
        cap_identities = cap_identities ? cap_identities * 2 : 4;
        identities = vn_realloc(identities, cap_identities * sizeof *identities);
    }
    identities[n_identities++] = (disco_identity){.category = vn_strdup(category),
                                                  .type = vn_strdup(type),
                                                  .name = vn_strdup(name),
                                                  .refs = 1};
}

static void identity_free(disco_identity *id)
{
    free(id->category);
    free(id->type);
    free(id->name);
}

void vn_disco_remove_identity(const char *category, const char *type, const char *name)
{
    disco_identity *id = identity_find(category, type, name);

    if (!id) {
        vn_log_warn("disco: removing identity %s/%s, which is not registered", category, type);
        return;
    }
    if (--id->refs > 0)
        return;
    identity_free(id);
    size_t index = (size_t)(id - identities);
    memmove(id, id + 1, (n_identities - index - 1) * sizeof *id);
    n_identities--;
}

void vn_disco_foreach_identity(vn_disco_identity_cb cb, void *ud)
{
    for (size_t i = 0; i < n_identities; i++)
        cb(identities[i].category, identities[i].type, identities[i].name, ud);
}

/* ---- items (services on subdomains: MUC, components) ---- */

typedef struct disco_item {
    char *host, *jid, *name;
} disco_item;

static disco_item *items;
static size_t n_items;

void vn_disco_add_item(const char *host, const char *jid, const char *name)
{
    items = vn_realloc(items, (n_items + 1) * sizeof *items);
    items[n_items++] = (disco_item){vn_strdup(host), vn_strdup(jid), vn_strdup(name)};
}

static void item_free(disco_item *item)
{
    free(item->host);
    free(item->jid);
    free(item->name);
}

void vn_disco_remove_item(const char *host, const char *jid)
{
    for (size_t i = 0; i < n_items; i++) {
        if (strcmp(items[i].host, host) == 0 && strcmp(items[i].jid, jid) == 0) {
            item_free(&items[i]);
            memmove(&items[i], &items[i + 1], (n_items - i - 1) * sizeof *items);
            n_items--;
            return;
        }
    }
}

void vn_disco_foreach_item(const char *host, vn_disco_item_cb cb, void *ud)
{
    for (size_t i = 0; i < n_items; i++)
        if (strcmp(items[i].host, host) == 0)
            cb(items[i].jid, items[i].name, ud);
}

void vn_disco_clear(void)
{
    for (size_t i = 0; i < n_items; i++)
        item_free(&items[i]);
    free(items);
    items = NULL;
    n_items = 0;
    while (features)
        feature_free(features);
    for (size_t i = 0; i < n_identities; i++)
        identity_free(&identities[i]);
    free(identities);
    identities = NULL;
    n_identities = cap_identities = 0;
}
