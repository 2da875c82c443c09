/*
 * mod_private.c - Private XML Storage (XEP-0049).
 *
 * An account keeps arbitrary elements on the server, each keyed by its
 * name and namespace (store "private", key "{namespace}name", value the
 * serialized element). Only the account itself may read or write its
 * data; anyone else gets <forbidden/> (§3, the preferred condition).
 *
 * A set may carry several elements and stores all of them; an element
 * with no attributes or content clears what was stored under its name. A
 * get names one namespace (one or more elements in it) and is answered
 * with the stored elements, or the requested empty element for those that
 * are not stored. Elements in the jabber:iq:private namespace itself
 * (which is also what a child without its own namespace inherits) and in
 * the stanza namespaces are refused with <not-acceptable/> (§3); a get
 * naming nothing, or several namespaces, is a <bad-request/>.
 *
 * max_size bounds what one account keeps, counted in serialized bytes
 * over all its elements; a set that would pass it is refused with
 * <policy-violation/>, as the limit is local service policy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_PRIVATE "jabber:iq:private"
#define PRIVATE_STORE "private"
/* Keys stay well within the store's key size (store.h). */
#define MAX_KEY_LEN 400

static const vn_config_key private_keys[] = {
    {.name = "max_size",
     .type = VN_CONF_INT,
     .default_value = "262144",
     .min = 1024,
     .max = 16777216},
    {.name = NULL},
};

/* "{namespace}name" into a malloc'd string, or NULL if too long to be a
 * store key. */
static char *element_key(const vn_stanza *element)
{
    char *key = vn_asprintf("{%s}%s", vn_stanza_ns(element), vn_stanza_name(element));
    if (strlen(key) > MAX_KEY_LEN) {
        free(key);
        return NULL;
    }
    return key;
}

/* The request's <query/> if it may proceed; otherwise NULL after routing
 * the error. Checks the sender and the namespaces of the elements. */
static const vn_stanza *checked_query(const vn_event *ev)
{
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", NS_PRIVATE);

    if (!query) {
        vn_route_error(ev->stanza, "modify", "bad-request",
                       "Expected <query xmlns='jabber:iq:private'/>");
        return NULL;
    }
    if (!ev->from || !vn_jid_bare_equal(ev->from, ev->to)) {
        vn_route_error(ev->stanza, "auth", "forbidden", "Private data belongs to its account");
        return NULL;
    }
    for (const vn_stanza *e = vn_stanza_first_element(query); e; e = vn_stanza_next_element(e)) {
        const char *ns = vn_stanza_ns(e);
        if (!ns || strcmp(ns, NS_PRIVATE) == 0 || vn_stanza_is_stanza_ns(ns)) {
            vn_route_error(ev->stanza, "modify", "not-acceptable",
                           "Elements need their own, non-reserved namespace");
            return NULL;
        }
    }
    return query;
}

/* ---- get ---- */

/* The stored element for request, a copy of request when nothing is
 * stored, or NULL on a store error. */
static vn_stanza *stored_element(const vn_event *ev, const vn_stanza *request, const char *key)
{
    vn_buf value;
    vn_buf_init(&value);
    int rc = vn_store_get(vn_server_store(), ev->host, ev->to->local, PRIVATE_STORE, key, &value);
    vn_stanza *element = NULL;

    if (rc == VN_STORE_NOT_FOUND) {
        element = vn_stanza_copy(request);
    } else if (rc == VN_STORE_OK) {
        element = vn_stanza_parse(value.data, value.len);
        if (!element)
            vn_log_error("private: stored %s of %s does not parse", key, ev->to->bare);
    }
    vn_buf_free(&value);
    return element;
}

static vn_hook_result private_get(vn_event *ev, void *ud)
{
    const vn_stanza *query = checked_query(ev);
    if (!query)
        return VN_HANDLED;

    const vn_stanza *first = vn_stanza_first_element(query);
    if (!first) {
        vn_route_error(ev->stanza, "modify", "bad-request", "Name the element to get");
        return VN_HANDLED;
    }
    for (const vn_stanza *e = first; e; e = vn_stanza_next_element(e)) {
        if (strcmp(vn_stanza_ns(e), vn_stanza_ns(first)) != 0) {
            vn_route_error(ev->stanza, "modify", "bad-request", "One namespace per get");
            return VN_HANDLED;
        }
    }

    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *answer = vn_stanza_add_child(reply, "query", NS_PRIVATE);
    for (const vn_stanza *e = first; e; e = vn_stanza_next_element(e)) {
        char *key = element_key(e);
        vn_stanza *element = key ? stored_element(ev, e, key) : vn_stanza_copy(e);
        free(key);
        if (!element) {
            vn_stanza_free(reply);
            vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
            return VN_HANDLED;
        }
        vn_stanza_append(answer, element);
    }
    vn_route(reply);
    return VN_HANDLED;
}

/* ---- set ---- */

/* One element of a set, ready to be written. */
typedef struct pending_write {
    char *key;
    char *value; /* serialized element; NULL to clear the key */
    size_t len;
} pending_write;

typedef struct write_batch {
    pending_write *writes;
    size_t count;
    size_t kept_bytes; /* what the account keeps under other keys */
} write_batch;

static void batch_free(write_batch *batch)
{
    for (size_t i = 0; i < batch->count; i++) {
        free(batch->writes[i].key);
        free(batch->writes[i].value);
    }
    free(batch->writes);
}

static bool is_empty_element(const vn_stanza *e)
{
    return vn_stanza_attr_count(e) == 0 && !vn_stanza_first_element(e) &&
           vn_stanza_text(e)[0] == '\0';
}

/* Adds the element to the batch; a later element with the same key
 * replaces an earlier one. false if its key is too long. */
static bool batch_add(write_batch *batch, const vn_stanza *e)
{
    char *key = element_key(e);
    if (!key)
        return false;

    pending_write *w = NULL;
    for (size_t i = 0; i < batch->count && !w; i++)
        if (strcmp(batch->writes[i].key, key) == 0)
            w = &batch->writes[i];
    if (w) {
        free(key);
        free(w->value);
    } else {
        batch->writes = vn_realloc(batch->writes, (batch->count + 1) * sizeof *batch->writes);
        w = &batch->writes[batch->count++];
        w->key = key;
    }
    w->value = is_empty_element(e) ? NULL : vn_stanza_serialize(e, VN_NS_CLIENT, &w->len);
    if (!w->value)
        w->len = 0;
    return true;
}

static bool count_kept(const char *key, const void *value, size_t len, void *ud)
{
    write_batch *batch = ud;
    for (size_t i = 0; i < batch->count; i++)
        if (strcmp(batch->writes[i].key, key) == 0)
            return true; /* replaced by the batch */
    batch->kept_bytes += len;
    return true;
}

static size_t batch_bytes(const write_batch *batch)
{
    size_t total = 0;
    for (size_t i = 0; i < batch->count; i++)
        total += batch->writes[i].len;
    return total;
}

static bool batch_write(const vn_event *ev, const write_batch *batch)
{
    vn_store *store = vn_server_store();
    for (size_t i = 0; i < batch->count; i++) {
        const pending_write *w = &batch->writes[i];
        int rc = w->value ? vn_store_put(store, ev->host, ev->to->local, PRIVATE_STORE, w->key,
                                         w->value, w->len)
                          : vn_store_delete(store, ev->host, ev->to->local, PRIVATE_STORE, w->key);
        if (rc != VN_STORE_OK)
            return false;
    }
    return true;
}

static vn_hook_result private_set(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    const vn_stanza *query = checked_query(ev);
    if (!query)
        return VN_HANDLED;
    if (!vn_stanza_first_element(query)) {
        vn_route_error(ev->stanza, "modify", "not-acceptable", "Nothing to store");
        return VN_HANDLED;
    }

    write_batch batch = {NULL, 0, 0};
    for (const vn_stanza *e = vn_stanza_first_element(query); e; e = vn_stanza_next_element(e)) {
        if (!batch_add(&batch, e)) {
            vn_route_error(ev->stanza, "modify", "not-acceptable", "Element name too long");
            batch_free(&batch);
            return VN_HANDLED;
        }
    }

    long long max_size = vn_module_config_int(m, "max_size");
    if (vn_store_foreach(vn_server_store(), ev->host, ev->to->local, PRIVATE_STORE, count_kept,
                         &batch) != VN_STORE_OK) {
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
    } else if (batch.kept_bytes + batch_bytes(&batch) > (unsigned long long)max_size) {
        char *text = vn_asprintf(vn_tr(vn_stanza_attr(ev->stanza, "xml:lang"),
                                       N_("An account may keep at most %lld bytes")),
                                 max_size);
        vn_route_error(ev->stanza, "modify", "policy-violation", text);
        free(text);
    } else if (!batch_write(ev, &batch)) {
        vn_log_error("private: cannot store the data of %s", ev->to->bare);
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
    } else {
        vn_route_durable(vn_stanza_iq_result(ev->stanza));
    }
    batch_free(&batch);
    return VN_HANDLED;
}

static int private_load(vn_module *m)
{
    vn_hook_add("iq-get/bare/" NS_PRIVATE, 0, private_get, m);
    vn_hook_add("iq-set/bare/" NS_PRIVATE, 0, private_set, m);
    vn_disco_add_feature(NS_PRIVATE);
    return 0;
}

static void private_unload(vn_module *m)
{
    vn_hook_remove("iq-get/bare/" NS_PRIVATE, private_get, m);
    vn_hook_remove("iq-set/bare/" NS_PRIVATE, private_set, m);
    vn_disco_remove_feature(NS_PRIVATE);
}

VN_MODULE("private", "Private XML Storage (XEP-0049)", private_keys, private_load, private_unload,
          NULL);
