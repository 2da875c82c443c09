/*
 * roster.c - roster items in the store, the roster version, and the
 * subscription state machine of RFC 6121 Appendix A.
 *
 * An item is stored as a small XML document under its contact's bare JID
 * in the account's "roster" store; the version counter sits beside the
 * items under a key no JID can take ("@version"). The state machine is a
 * pure function over an item so the tables can be tested on their own;
 * the presence module acts on its outcome (routing, delivery, replies).
 */
#include "vestnik/roster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vestnik/module.h"

#define ROSTER_STORE "roster"
#define VERSION_KEY "@version" /* a JID never starts with '@' */
#define STORED_NS "urn:vestnik:roster"

static size_t max_items = VN_ROSTER_DEFAULT_MAX_ITEMS;

static const char *const subscription_names[] = {"none", "to", "from", "both"};

const char *vn_subscription_name(vn_subscription sub)
{
    return subscription_names[sub];
}

bool vn_subscription_has_from(vn_subscription sub)
{
    return sub == VN_SUB_FROM || sub == VN_SUB_BOTH;
}

bool vn_subscription_has_to(vn_subscription sub)
{
    return sub == VN_SUB_TO || sub == VN_SUB_BOTH;
}

void vn_roster_set_max_items(size_t limit)
{
    max_items = limit;
}

size_t vn_roster_max_items(void)
{
    return max_items;
}

/* ---- items ---- */

vn_roster_item *vn_roster_item_new(const char *jid)
{
    vn_roster_item *item = vn_alloc(sizeof *item);
    item->jid = vn_strdup(jid);
    return item;
}

void vn_roster_item_clear_groups(vn_roster_item *item)
{
    for (size_t i = 0; i < item->n_groups; i++)
        free(item->groups[i]);
    free(item->groups);
    item->groups = NULL;
    item->n_groups = 0;
}

void vn_roster_item_free(vn_roster_item *item)
{
    if (!item)
        return;
    vn_roster_item_clear_groups(item);
    free(item->jid);
    free(item->name);
    free(item);
}

bool vn_roster_item_add_group(vn_roster_item *item, const char *group)
{
    for (size_t i = 0; i < item->n_groups; i++)
        if (strcmp(item->groups[i], group) == 0)
            return false;
    item->groups = vn_realloc(item->groups, (item->n_groups + 1) * sizeof *item->groups);
    item->groups[item->n_groups++] = vn_strdup(group);
    return true;
}

vn_stanza *vn_roster_item_to_stanza(const vn_roster_item *item, vn_stanza *parent)
{
    vn_stanza *el = vn_stanza_add_child(parent, "item", VN_NS_ROSTER);
    vn_stanza_set_attr(el, "jid", item->jid);
    if (item->name)
        vn_stanza_set_attr(el, "name", item->name);
    vn_stanza_set_attr(el, "subscription", vn_subscription_name(item->subscription));
    if (item->ask)
        vn_stanza_set_attr(el, "ask", "subscribe");
    if (item->approved)
        vn_stanza_set_attr(el, "approved", "true");
    for (size_t i = 0; i < item->n_groups; i++)
        vn_stanza_add_text_child(el, "group", VN_NS_ROSTER, item->groups[i]);
    return el;
}

/* ---- serialization ---- */

static char *serialize_item(const vn_roster_item *item, size_t *len)
{
    vn_stanza *el = vn_stanza_new("item", STORED_NS);
    vn_stanza_set_attr(el, "jid", item->jid);
    if (item->name)
        vn_stanza_set_attr(el, "name", item->name);
    vn_stanza_set_attr(el, "subscription", vn_subscription_name(item->subscription));
    vn_stanza_set_attr(el, "ask", item->ask ? "1" : "0");
    vn_stanza_set_attr(el, "pending-in", item->pending_in ? "1" : "0");
    vn_stanza_set_attr(el, "approved", item->approved ? "1" : "0");
    vn_stanza_set_attr(el, "listed", item->listed ? "1" : "0");
    for (size_t i = 0; i < item->n_groups; i++)
        vn_stanza_add_text_child(el, "group", STORED_NS, item->groups[i]);
    char *text = vn_stanza_serialize(el, NULL, len);
    vn_stanza_free(el);
    return text;
}

static bool attr_is_set(const vn_stanza *el, const char *name)
{
    const char *v = vn_stanza_attr(el, name);
    return v && strcmp(v, "1") == 0;
}

static vn_roster_item *parse_item(const char *data, size_t len)
{
    vn_stanza *el = vn_stanza_parse(data, len);
    if (!el || !vn_stanza_is(el, "item", STORED_NS) || !vn_stanza_attr(el, "jid")) {
        vn_stanza_free(el);
        return NULL;
    }
    vn_roster_item *item = vn_roster_item_new(vn_stanza_attr(el, "jid"));
    item->name = vn_strdup(vn_stanza_attr(el, "name"));
    const char *sub = vn_stanza_attr(el, "subscription");
    for (int i = VN_SUB_NONE; sub && i <= VN_SUB_BOTH; i++)
        if (strcmp(sub, subscription_names[i]) == 0)
            item->subscription = (vn_subscription)i;
    item->ask = attr_is_set(el, "ask");
    item->pending_in = attr_is_set(el, "pending-in");
    item->approved = attr_is_set(el, "approved");
    item->listed = attr_is_set(el, "listed");
    for (vn_stanza *g = vn_stanza_first_element(el); g; g = vn_stanza_next_element(g))
        if (vn_stanza_is(g, "group", STORED_NS))
            vn_roster_item_add_group(item, vn_stanza_text(g));
    vn_stanza_free(el);
    return item;
}

/* ---- storage ---- */

int vn_roster_version(vn_store *s, const char *host, const char *user, uint64_t *version)
{
    vn_buf buf;
    vn_buf_init(&buf);
    int rc = vn_store_get(s, host, user, ROSTER_STORE, VERSION_KEY, &buf);
    *version = 0;
    if (rc == VN_STORE_OK) {
        errno = 0;
        char *end;
        unsigned long long v = strtoull(buf.data, &end, 10);
        if (errno || *end)
            rc = VN_STORE_ERROR;
        else
            *version = v;
    } else if (rc == VN_STORE_NOT_FOUND) {
        rc = VN_STORE_OK;
    }
    vn_buf_free(&buf);
    return rc;
}

static int bump_version(vn_store *s, const char *host, const char *user, uint64_t *version)
{
    uint64_t v;
    if (vn_roster_version(s, host, user, &v) != VN_STORE_OK)
        return VN_STORE_ERROR;
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, v + 1);
    int rc = vn_store_put(s, host, user, ROSTER_STORE, VERSION_KEY, text, (size_t)n);
    if (rc == VN_STORE_OK && version)
        *version = v + 1;
    return rc;
}

int vn_roster_get(vn_store *s, const char *host, const char *user, const char *jid,
                  vn_roster_item **out)
{
    vn_buf buf;
    vn_buf_init(&buf);
    *out = NULL;
    int rc = vn_store_get(s, host, user, ROSTER_STORE, jid, &buf);
    if (rc == VN_STORE_OK) {
        *out = parse_item(buf.data, buf.len);
        if (!*out) {
            vn_log_error("roster of %s@%s: unreadable item for %s", user, host, jid);
            rc = VN_STORE_ERROR;
        }
    }
    vn_buf_free(&buf);
    return rc;
}

/* Listed items and unanswered requests from strangers are bounded apart,
 * so a flood of requests cannot stop the account adding its own contacts. */
typedef struct item_counts {
    size_t listed, unlisted;
} item_counts;

static bool count_item(const char *key, const void *value, size_t len, void *ud)
{
    item_counts *counts = ud;
    if (strcmp(key, VERSION_KEY) == 0)
        return true;
    vn_roster_item *item = parse_item(value, len);
    if (item && item->listed)
        counts->listed++;
    else
        counts->unlisted++;
    vn_roster_item_free(item);
    return true;
}

static void announce(const char *host, const char *user, const vn_roster_item *item, bool removed,
                     uint64_t version)
{
    vn_roster_change change = {user, item, removed, version};
    vn_event ev = {.host = host, .data = &change};
    vn_hook_run("roster/changed", &ev);
}

/* The item as its client sees it, serialized: equal strings, no push. */
static char *client_view(const vn_roster_item *item)
{
    if (!item || !item->listed)
        return vn_strdup("");
    vn_stanza *query = vn_stanza_new("query", VN_NS_ROSTER);
    vn_roster_item_to_stanza(item, query);
    char *text = vn_stanza_serialize(query, NULL, NULL);
    vn_stanza_free(query);
    return text;
}

int vn_roster_put(vn_store *s, const char *host, const char *user, const vn_roster_item *item,
                  uint64_t *version)
{
    vn_roster_item *old = NULL;
    int rc = vn_roster_get(s, host, user, item->jid, &old);
    if (rc == VN_STORE_ERROR)
        return rc;
    bool becomes_listed = item->listed && (!old || !old->listed);
    bool new_request = !item->listed && !old;
    if (becomes_listed || new_request) {
        item_counts counts = {0, 0};
        if (vn_store_foreach(s, host, user, ROSTER_STORE, count_item, &counts) != VN_STORE_OK) {
            vn_roster_item_free(old);
            return VN_STORE_ERROR;
        }
        if ((becomes_listed && counts.listed >= max_items) ||
            (new_request && counts.unlisted >= max_items)) {
            vn_roster_item_free(old);
            return VN_ROSTER_FULL;
        }
    }
    char *before = client_view(old), *after = client_view(item);
    bool visible_change = strcmp(before, after) != 0;
    free(before);
    free(after);
    vn_roster_item_free(old);

    size_t len;
    char *text = serialize_item(item, &len);
    rc = vn_store_put(s, host, user, ROSTER_STORE, item->jid, text, len);
    free(text);
    uint64_t v = 0;
    if (rc == VN_STORE_OK)
        rc = bump_version(s, host, user, &v);
    if (rc != VN_STORE_OK)
        return VN_STORE_ERROR;
    if (version)
        *version = v;
    if (visible_change)
        announce(host, user, item, false, v);
    return VN_STORE_OK;
}

int vn_roster_remove(vn_store *s, const char *host, const char *user, const char *jid,
                     uint64_t *version)
{
    vn_roster_item *old = NULL;
    int rc = vn_roster_get(s, host, user, jid, &old);
    if (rc == VN_STORE_NOT_FOUND)
        return VN_STORE_OK;
    /* An unreadable item is still removed: the client asked for it gone. */
    rc = vn_store_delete(s, host, user, ROSTER_STORE, jid);
    uint64_t v = 0;
    if (rc == VN_STORE_OK)
        rc = bump_version(s, host, user, &v);
    if (rc == VN_STORE_OK) {
        if (version)
            *version = v;
        if (old && old->listed)
            announce(host, user, old, true, v);
    }
    vn_roster_item_free(old);
    return rc == VN_STORE_OK ? VN_STORE_OK : VN_STORE_ERROR;
}

typedef struct foreach_ctx {
    vn_roster_item_cb cb;
    void *ud;
    const char *host, *user;
} foreach_ctx;

static bool foreach_item(const char *key, const void *value, size_t len, void *ud)
{
    foreach_ctx *ctx = ud;
    if (strcmp(key, VERSION_KEY) == 0)
        return true;
    vn_roster_item *item = parse_item(value, len);
    if (!item) {
        vn_log_error("roster of %s@%s: skipping unreadable item for %s", ctx->user, ctx->host, key);
        return true;
    }
    bool go_on = ctx->cb(item, ctx->ud);
    vn_roster_item_free(item);
    return go_on;
}

int vn_roster_foreach(vn_store *s, const char *host, const char *user, vn_roster_item_cb cb,
                      void *ud)
{
    foreach_ctx ctx = {cb, ud, host, user};
    return vn_store_foreach(s, host, user, ROSTER_STORE, foreach_item, &ctx);
}

/* ---- the subscription state machine ---- */

bool vn_subscription_type_parse(const char *type, vn_subscription_type *out)
{
    static const char *const names[] = {"subscribe", "subscribed", "unsubscribe", "unsubscribed"};
    for (size_t i = 0; type && i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(type, names[i]) == 0) {
            *out = (vn_subscription_type)i;
            return true;
        }
    }
    return false;
}

static vn_subscription add_from(vn_subscription sub)
{
    return sub == VN_SUB_TO || sub == VN_SUB_BOTH ? VN_SUB_BOTH : VN_SUB_FROM;
}

static vn_subscription drop_from(vn_subscription sub)
{
    return sub == VN_SUB_BOTH || sub == VN_SUB_TO ? VN_SUB_TO : VN_SUB_NONE;
}

static vn_subscription add_to(vn_subscription sub)
{
    return sub == VN_SUB_FROM || sub == VN_SUB_BOTH ? VN_SUB_BOTH : VN_SUB_TO;
}

static vn_subscription drop_to(vn_subscription sub)
{
    return sub == VN_SUB_BOTH || sub == VN_SUB_FROM ? VN_SUB_FROM : VN_SUB_NONE;
}

/* Tables A.2.1-A.2.4: the account sends the stanza to the contact. */
static void apply_outbound(vn_roster_item *item, vn_subscription_type type,
                           vn_subscription_outcome *o)
{
    switch (type) {
    case VN_PRESENCE_SUBSCRIBE:
        /* Always routed: the contact's server answers for a 'to' it knows. */
        o->forward = true;
        if (!vn_subscription_has_to(item->subscription) && !item->ask) {
            item->ask = true;
            o->changed = true;
        }
        if (!item->listed) {
            item->listed = true;
            o->changed = true;
        }
        break;
    case VN_PRESENCE_UNSUBSCRIBE:
        o->forward = true;
        if (vn_subscription_has_to(item->subscription) || item->ask) {
            item->subscription = drop_to(item->subscription);
            item->ask = false;
            o->changed = true;
        }
        break;
    case VN_PRESENCE_SUBSCRIBED:
        if (vn_subscription_has_from(item->subscription))
            break;
        if (item->pending_in) {
            item->pending_in = false;
            item->approved = false;
            item->subscription = add_from(item->subscription);
            item->listed = true;
            o->changed = o->forward = o->gained_from = true;
        } else if (!item->approved) {
            /* §3.4: pre-approval, kept by the server and not routed. */
            item->approved = true;
            item->listed = true;
            o->changed = true;
        }
        break;
    case VN_PRESENCE_UNSUBSCRIBED:
        if (item->pending_in) {
            item->pending_in = false;
            o->changed = o->forward = true;
        }
        if (vn_subscription_has_from(item->subscription)) {
            item->subscription = drop_from(item->subscription);
            o->changed = o->forward = o->lost_from = true;
        }
        if (item->approved) {
            item->approved = false;
            o->changed = true;
        }
        break;
    }
}

/* Tables A.3.1-A.3.4: the contact sent the stanza to the account. */
static void apply_inbound(vn_roster_item *item, vn_subscription_type type,
                          vn_subscription_outcome *o)
{
    switch (type) {
    case VN_PRESENCE_SUBSCRIBE:
        if (vn_subscription_has_from(item->subscription)) {
            o->auto_reply = true;
        } else if (item->approved) {
            item->approved = false;
            item->subscription = add_from(item->subscription);
            item->listed = true;
            o->changed = o->auto_reply = o->gained_from = true;
        } else {
            if (!item->pending_in) {
                item->pending_in = true;
                o->changed = true;
            }
            o->forward = true;
        }
        break;
    case VN_PRESENCE_UNSUBSCRIBE:
        if (item->pending_in) {
            item->pending_in = false;
            o->changed = o->forward = true;
        }
        if (vn_subscription_has_from(item->subscription)) {
            item->subscription = drop_from(item->subscription);
            o->changed = o->forward = o->lost_from = true;
        }
        break;
    case VN_PRESENCE_SUBSCRIBED:
        if (item->ask) {
            item->ask = false;
            item->subscription = add_to(item->subscription);
            o->changed = o->forward = true;
        }
        break;
    case VN_PRESENCE_UNSUBSCRIBED:
        if (item->ask || vn_subscription_has_to(item->subscription)) {
            item->ask = false;
            item->subscription = drop_to(item->subscription);
            o->changed = o->forward = true;
        }
        break;
    }
}

vn_subscription_outcome vn_roster_apply_subscription(vn_roster_item *item, bool outbound,
                                                     vn_subscription_type type)
{
    vn_subscription_outcome o = {0};
    if (outbound)
        apply_outbound(item, type, &o);
    else
        apply_inbound(item, type, &o);
    return o;
}
