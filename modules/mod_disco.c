/*
 * mod_disco.c - Service Discovery (XEP-0030), the server's entity
 * capabilities (XEP-0115) and contact addresses (XEP-0157).
 *
 * Serves disco#info for the server from the registry every module fills
 * (vn_disco_* in module.h), extended with a serverinfo form (XEP-0128)
 * listing the contact addresses from the config; disco#items for the
 * server (the services registered with vn_disco_add_item); and disco#info for an account's bare JID
 * on the account's behalf.
 *
 * Each stream's features after authentication carry
 * <c xmlns='http://jabber.org/protocol/caps'/> whose ver is the XEP-0115
 * §5.1 hash of exactly that disco#info result. It is computed afresh for
 * each stream, so modules loaded or unloaded on reload are reflected
 * without any invalidation. The only node answered is CAPS_NODE#ver with
 * the current ver; any other gets item-not-found.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DATA_FORMS "jabber:x:data"
#define SERVERINFO_FORM_TYPE "http://jabber.org/network/serverinfo"
#define CAPS_NODE "https://vestnik.example/"

/* XEP-0157 §2 fields, each from the config key of the same name with '_'. */
static const struct {
    const char *config_key;
    const char *field_var;
} contact_fields[] = {
    {"abuse_addresses", "abuse-addresses"},       {"admin_addresses", "admin-addresses"},
    {"feedback_addresses", "feedback-addresses"}, {"sales_addresses", "sales-addresses"},
    {"security_addresses", "security-addresses"}, {"status_addresses", "status-addresses"},
    {"support_addresses", "support-addresses"},
};
#define N_CONTACT_FIELDS (sizeof contact_fields / sizeof contact_fields[0])

static const char *check_addresses(const char *list);

static const vn_config_key disco_keys[] = {
    {.name = "abuse_addresses",
     .type = VN_CONF_STRING,
     .default_value = "",
     .check = check_addresses},
    {.name = "admin_addresses",
     .type = VN_CONF_STRING,
     .default_value = "",
     .check = check_addresses},
    {.name = "feedback_addresses",
     .type = VN_CONF_STRING,
     .default_value = "",
     .check = check_addresses},
    {.name = "sales_addresses",
     .type = VN_CONF_STRING,
     .default_value = "",
     .check = check_addresses},
    {.name = "security_addresses",
     .type = VN_CONF_STRING,
     .default_value = "",
     .check = check_addresses},
    {.name = "status_addresses",
     .type = VN_CONF_STRING,
     .default_value = "",
     .check = check_addresses},
    {.name = "support_addresses",
     .type = VN_CONF_STRING,
     .default_value = "",
     .check = check_addresses},
    {.name = NULL},
};

/* ---- the server's disco#info ---- */

static void add_identity(const char *category, const char *type, const char *name, void *ud)
{
    vn_stanza *identity = vn_stanza_add_child(ud, "identity", NS_DISCO_INFO);

    vn_stanza_set_attr(identity, "category", category);
    vn_stanza_set_attr(identity, "type", type);
    if (name)
        vn_stanza_set_attr(identity, "name", name);
}

static void add_feature(const char *var, void *ud)
{
    vn_stanza_set_attr(vn_stanza_add_child(ud, "feature", NS_DISCO_INFO), "var", var);
}

static vn_stanza *add_field(vn_stanza *form, const char *var)
{
    vn_stanza *field = vn_stanza_add_child(form, "field", NS_DATA_FORMS);
    vn_stanza_set_attr(field, "var", var);
    return field;
}

/* Appends a <value/> per comma-separated, non-empty item of list, each
 * trimmed of surrounding blanks; returns how many. */
/* The next comma-separated item of *list without surrounding blanks (its
 * start, and its length in *len), or NULL after the last; empty items are
 * skipped. */
static const char *next_address(const char **list, size_t *len)
{
    static const char blanks[] = " \t\r\n";

    while (**list) {
        const char *item = *list;
        size_t n = strcspn(item, ",");
        *list = item[n] ? item + n + 1 : item + n;
        while (n > 0 && strchr(blanks, *item)) {
            item++;
            n--;
        }
        while (n > 0 && strchr(blanks, item[n - 1]))
            n--;
        if (n > 0) {
            *len = n;
            return item;
        }
    }
    return NULL;
}

static size_t add_values(vn_stanza *field, const char *list)
{
    const char *item;
    size_t len, count = 0;

    while ((item = next_address(&list, &len))) {
        char *value = vn_strndup(item, len);
        vn_stanza_add_text_child(field, "value", NS_DATA_FORMS, value);
        free(value);
        count++;
    }
    return count;
}

/* XEP-0157 addresses are URIs: each item has an RFC 3986 scheme, a colon
 * and something after it, and no blanks (a bare e-mail address is the
 * usual mistake). */
static const char *check_addresses(const char *list)
{
    const char *item;
    size_t len;

    while ((item = next_address(&list, &len))) {
        size_t scheme = 0;
        while (scheme < len && (isalnum((unsigned char)item[scheme]) || item[scheme] == '+' ||
                                item[scheme] == '-' || item[scheme] == '.'))
            scheme++;
        bool uri = scheme > 0 && isalpha((unsigned char)item[0]) && scheme + 1 < len &&
                   item[scheme] == ':';
        for (size_t i = 0; uri && i < len; i++)
            uri = !isspace((unsigned char)item[i]);
        if (!uri)
            return "must list URIs, such as mailto:abuse@example.org or xmpp:admin@example.org";
    }
    return NULL;
}

/* The XEP-0157 form, or nothing when no address is configured. */
static void add_contact_form(const vn_module *m, vn_stanza *query)
{
    vn_stanza *form = vn_stanza_new("x", NS_DATA_FORMS);
    size_t fields = 0;

    vn_stanza_set_attr(form, "type", "result");
    vn_stanza *form_type = add_field(form, "FORM_TYPE");
    vn_stanza_set_attr(form_type, "type", "hidden");
    vn_stanza_add_text_child(form_type, "value", NS_DATA_FORMS, SERVERINFO_FORM_TYPE);
    for (size_t i = 0; i < N_CONTACT_FIELDS; i++) {
        const char *list = vn_module_config_string(m, contact_fields[i].config_key);
        vn_stanza *field = add_field(form, contact_fields[i].field_var);
        vn_stanza_set_attr(field, "type", "list-multi");
        if (add_values(field, list) > 0)
            fields++;
        else
            vn_stanza_remove(field);
    }
    if (fields > 0)
        vn_stanza_append(query, form);
    else
        vn_stanza_free(form);
}

/* The host's disco#info: registered identities and features, the contact
 * form, and what modules add through "disco/host-info" (extension forms
 * such as upload limits). The caps ver hashes exactly this. */
static vn_stanza *server_info(const vn_module *m, const char *host)
{
    vn_stanza *query = vn_stanza_new("query", NS_DISCO_INFO);

    vn_disco_foreach_identity(add_identity, query);
    vn_disco_foreach_feature(add_feature, query);
    add_contact_form(m, query);
    vn_event ev = {.host = host, .data = query};
    vn_hook_run("disco/host-info", &ev);
    return query;
}

/* ---- XEP-0115 §5.1 verification string ---- */

static const char *attr_or_empty(const vn_stanza *e, const char *name)
{
    const char *value = vn_stanza_attr(e, name);
    return value ? value : "";
}

static const vn_stanza *element_at(const void *p)
{
    return *(const vn_stanza *const *)p;
}

/* Orders of §5.1, all by octets (i;octet): identities by category, type,
 * xml:lang and name; features and form fields by var; forms by FORM_TYPE;
 * field values by their text. */
static int identity_order(const void *a, const void *b)
{
    static const char *const keys[] = {"category", "type", "xml:lang", "name"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int c =
            strcmp(attr_or_empty(element_at(a), keys[i]), attr_or_empty(element_at(b), keys[i]));
        if (c != 0)
            return c;
    }
    return 0;
}

static int var_order(const void *a, const void *b)
{
    return strcmp(attr_or_empty(element_at(a), "var"), attr_or_empty(element_at(b), "var"));
}

static int text_order(const void *a, const void *b)
{
    return strcmp(vn_stanza_text(element_at(a)), vn_stanza_text(element_at(b)));
}

static bool is_form_type(const vn_stanza *field)
{
    return strcmp(attr_or_empty(field, "var"), "FORM_TYPE") == 0;
}

static const char *form_type(const vn_stanza *form)
{
    for (const vn_stanza *f = vn_stanza_first_element(form); f; f = vn_stanza_next_element(f)) {
        if (vn_stanza_is(f, "field", NS_DATA_FORMS) && is_form_type(f)) {
            const char *type = vn_stanza_child_text(f, "value", NS_DATA_FORMS);
            return type ? type : "";
        }
    }
    return "";
}

static int form_order(const void *a, const void *b)
{
    return strcmp(form_type(element_at(a)), form_type(element_at(b)));
}

/* The child elements name/ns of parent, sorted: a malloc'd array (NULL
 * when there are none) and its length in *count. */
static const vn_stanza **sorted_children(const vn_stanza *parent, const char *name, const char *ns,
                                         int (*order)(const void *, const void *), size_t *count)
{
    const vn_stanza **items = NULL;

    *count = 0;
    for (const vn_stanza *e = vn_stanza_first_element(parent); e; e = vn_stanza_next_element(e)) {
        if (!vn_stanza_is(e, name, ns))
            continue;
        items = vn_realloc(items, (*count + 1) * sizeof *items);
        items[(*count)++] = e;
    }
    if (*count > 1)
        qsort(items, *count, sizeof *items, order);
    return items;
}

/* Step 6: FORM_TYPE, then each other field's var and sorted values. */
static void append_form(const vn_stanza *form, vn_buf *s)
{
    size_t n_fields;
    const vn_stanza **fields = sorted_children(form, "field", NS_DATA_FORMS, var_order, &n_fields);

    vn_buf_printf(s, "%s<", form_type(form));
    for (size_t i = 0; i < n_fields; i++) {
        if (is_form_type(fields[i]))
            continue;
        vn_buf_printf(s, "%s<", attr_or_empty(fields[i], "var"));
        size_t n_values;
        const vn_stanza **values =
            sorted_children(fields[i], "value", NS_DATA_FORMS, text_order, &n_values);
        for (size_t j = 0; j < n_values; j++)
            vn_buf_printf(s, "%s<", vn_stanza_text(values[j]));
        free(values);
    }
    free(fields);
}

/* Base64 of the SHA-1 of the §5.1 string of a disco#info <query/>: 28
 * characters and the NUL. */
static void caps_ver(const vn_stanza *query, char ver[29])
{
    vn_buf s;
    size_t n;
    const vn_stanza **items;

    vn_buf_init(&s);
    items = sorted_children(query, "identity", NS_DISCO_INFO, identity_order, &n);
    for (size_t i = 0; i < n; i++)
        vn_buf_printf(&s, "%s/%s/%s/%s<", attr_or_empty(items[i], "category"),
                      attr_or_empty(items[i], "type"), attr_or_empty(items[i], "xml:lang"),
                      attr_or_empty(items[i], "name"));
    free(items);
    items = sorted_children(query, "feature", NS_DISCO_INFO, var_order, &n);
    for (size_t i = 0; i < n; i++)
        vn_buf_printf(&s, "%s<", attr_or_empty(items[i], "var"));
    free(items);
    items = sorted_children(query, "x", NS_DATA_FORMS, form_order, &n);
    for (size_t i = 0; i < n; i++)
        append_form(items[i], &s);
    free(items);

    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s.data, s.len, digest);
    EVP_EncodeBlock((unsigned char *)ver, digest, sizeof digest);
    vn_buf_free(&s);
}

/* ---- handlers ---- */

static vn_hook_result host_info(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    const vn_stanza *request = vn_stanza_child(ev->stanza, "query", NS_DISCO_INFO);
    const char *node = request ? vn_stanza_attr(request, "node") : NULL;
    vn_stanza *query = server_info(m, ev->host);

    if (node) {
        char ver[29];
        caps_ver(query, ver);
        size_t prefix = strlen(CAPS_NODE);
        if (strncmp(node, CAPS_NODE, prefix) != 0 || node[prefix] != '#' ||
            strcmp(node + prefix + 1, ver) != 0) {
            vn_stanza_free(query);
            vn_route_error(ev->stanza, "cancel", "item-not-found", NULL);
            return VN_HANDLED;
        }
        vn_stanza_set_attr(query, "node", node);
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza_append(reply, query);
    vn_route(reply);
    return VN_HANDLED;
}

/* An iq result carrying an empty <query xmlns=ns/>, or NULL after routing
 * item-not-found because the request names a node (none is defined). */
static vn_stanza *nodeless_result(const vn_event *ev, const char *ns)
{
    const vn_stanza *request = vn_stanza_child(ev->stanza, "query", ns);

    if (request && vn_stanza_attr(request, "node")) {
        vn_route_error(ev->stanza, "cancel", "item-not-found", NULL);
        return NULL;
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza_add_child(reply, "query", ns);
    return reply;
}

/* The disco#items query being answered, and the language of its names. */
typedef struct item_list {
    vn_stanza *query;
    const char *lang;
} item_list;

static void add_item(const char *jid, const char *name, void *ud)
{
    const item_list *list = ud;
    vn_stanza *item = vn_stanza_add_child(list->query, "item", NS_DISCO_ITEMS);
    vn_stanza_set_attr(item, "jid", jid);
    if (name)
        vn_stanza_set_attr(item, "name", vn_tr(list->lang, name));
}

static vn_hook_result host_items(vn_event *ev, void *ud)
{
    vn_stanza *reply = nodeless_result(ev, NS_DISCO_ITEMS);

    if (reply) {
        item_list list = {vn_stanza_first_element(reply), vn_stanza_attr(ev->stanza, "xml:lang")};
        vn_disco_foreach_item(ev->host, add_item, &list);
        vn_route(reply);
    }
    return VN_HANDLED;
}

static vn_hook_result account_info(vn_event *ev, void *ud)
{
    if (!ev->to || !ev->to->local || !vn_account_exists(ev->host, ev->to->local)) {
        vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return VN_HANDLED;
    }

    vn_stanza *reply = nodeless_result(ev, NS_DISCO_INFO);

    if (reply) {
        vn_stanza *query = vn_stanza_child(reply, "query", NS_DISCO_INFO);
        add_identity("account", "registered", NULL, query);
        add_feature(NS_DISCO_INFO, query);
        /* Modules serving the account (MAM, PEP, push) add theirs. */
        vn_event info = *ev;
        info.data = query;
        vn_hook_run("disco/account-info", &info);
        vn_route(reply);
    }
    return VN_HANDLED;
}

/* XEP-0115 §6.3: the server's capabilities in its stream features. */
static vn_hook_result advertise_caps(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    vn_stanza *query = server_info(m, ev->host);
    char ver[29];

    caps_ver(query, ver);
    vn_stanza_free(query);
    vn_stanza *c = vn_stanza_add_child(ev->data, "c", NS_CAPS);
    vn_stanza_set_attr(c, "hash", "sha-1");
    vn_stanza_set_attr(c, "node", CAPS_NODE);
    vn_stanza_set_attr(c, "ver", ver);
    return VN_PASS;
}

static int disco_load(vn_module *m)
{
    vn_hook_add("iq-get/host/" NS_DISCO_INFO, 0, host_info, m);
    vn_hook_add("iq-get/host/" NS_DISCO_ITEMS, 0, host_items, m);
    vn_hook_add("iq-get/bare/" NS_DISCO_INFO, 0, account_info, m);
    vn_hook_add("stream/features", 0, advertise_caps, m);
    vn_disco_add_identity("server", "im", "vestnik");
    vn_disco_add_feature(NS_DISCO_INFO);
    vn_disco_add_feature(NS_DISCO_ITEMS);
    return 0;
}

static void disco_unload(vn_module *m)
{
    vn_hook_remove("iq-get/host/" NS_DISCO_INFO, host_info, m);
    vn_hook_remove("iq-get/host/" NS_DISCO_ITEMS, host_items, m);
    vn_hook_remove("iq-get/bare/" NS_DISCO_INFO, account_info, m);
    vn_hook_remove("stream/features", advertise_caps, m);
    vn_disco_remove_identity("server", "im", "vestnik");
    vn_disco_remove_feature(NS_DISCO_INFO);
    vn_disco_remove_feature(NS_DISCO_ITEMS);
}

VN_MODULE("disco",
          "Service Discovery (XEP-0030), entity capabilities (XEP-0115), contact "
          "addresses (XEP-0157)",
          disco_keys, disco_load, disco_unload, NULL);
