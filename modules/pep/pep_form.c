/*
 * pep_form.c - node configuration as data forms (XEP-0004).
 *
 * The same three fields travel in a node's configuration form
 * (pubsub#node_config, XEP-0060 §8.2) and in publish-options (XEP-0223):
 * pubsub#access_model (presence, open, whitelist), pubsub#persist_items
 * and pubsub#max_items (a number or 'max', which the account's disco#info
 * announces as pubsub#config-node-max). Publish-options are preconditions
 * (XEP-0060 §7.1.5, XEP-0223 §3): on an existing node each given field must
 * match the node's config, on a new one it must be a value the service can
 * apply; either failure is <conflict/> with <precondition-not-met/>, which
 * clients recover from by configuring the node. A bad value in a node
 * configuration form is not-acceptable. Other fields are accepted and
 * ignored, as their defaults are what this service does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pep.h"

#define FIELD_ACCESS "pubsub#access_model"
#define FIELD_PERSIST "pubsub#persist_items"
#define FIELD_MAX_ITEMS "pubsub#max_items"

static const char *field_value(const vn_stanza *field)
{
    const char *value = vn_stanza_child_text(field, "value", NS_DATA_FORMS);
    return value ? value : "";
}

static bool parse_bool(const char *text, bool *out)
{
    if (strcmp(text, "1") == 0 || strcmp(text, "true") == 0)
        *out = true;
    else if (strcmp(text, "0") == 0 || strcmp(text, "false") == 0)
        *out = false;
    else
        return false;
    return true;
}

/* 'max' is 0; a number must be 1 to the server's limit. */
static bool parse_max_items(const char *text, size_t *out)
{
    if (strcmp(text, "max") == 0) {
        *out = 0;
        return true;
    }
    char *end;
    unsigned long long n = strtoull(text, &end, 10);
    if (end == text || *end || text[0] == '-' || n < 1 || n > pep_limits_current.max_items_per_node)
        return false;
    *out = (size_t)n;
    return true;
}

static size_t effective_max(size_t max_items)
{
    return max_items ? max_items : pep_limits_current.max_items_per_node;
}

static bool refuse(pep_error *err, const char *form_type, const char *text)
{
    if (strcmp(form_type, PEP_FORM_PUBLISH_OPTIONS) == 0)
        *err = (pep_error){"cancel", "conflict", "precondition-not-met", text};
    else
        *err = (pep_error){"modify", "not-acceptable", NULL, text};
    return false;
}

bool pep_form_apply(const vn_stanza *form, const char *form_type, pep_config *config,
                    bool check_only, pep_error *err)
{
    pep_config wanted = *config;

    for (const vn_stanza *f = vn_stanza_first_element(form); f; f = vn_stanza_next_element(f)) {
        const char *var = vn_stanza_attr(f, "var");
        if (!vn_stanza_is(f, "field", NS_DATA_FORMS) || !var)
            continue;
        const char *value = field_value(f);
        if (strcmp(var, "FORM_TYPE") == 0) {
            if (strcmp(value, form_type) != 0)
                return refuse(err, form_type, N_("Unexpected FORM_TYPE"));
        } else if (strcmp(var, FIELD_ACCESS) == 0) {
            if (!pep_access_parse(value, &wanted.access))
                return refuse(err, form_type, N_("Unsupported pubsub#access_model"));
        } else if (strcmp(var, FIELD_PERSIST) == 0) {
            if (!parse_bool(value, &wanted.persist_items))
                return refuse(err, form_type, N_("pubsub#persist_items is a boolean"));
        } else if (strcmp(var, FIELD_MAX_ITEMS) == 0) {
            if (!parse_max_items(value, &wanted.max_items))
                return refuse(err, form_type,
                              N_("pubsub#max_items is 'max' or 1 to the server's limit"));
        }
    }
    if (check_only &&
        (wanted.access != config->access || wanted.persist_items != config->persist_items ||
         effective_max(wanted.max_items) != effective_max(config->max_items))) {
        return refuse(err, form_type, N_("The node exists with a different configuration"));
    }
    *config = wanted;
    return true;
}

static vn_stanza *add_field(vn_stanza *form, const char *var, const char *type, const char *value)
{
    vn_stanza *field = vn_stanza_add_child(form, "field", NS_DATA_FORMS);
    vn_stanza_set_attr(field, "var", var);
    vn_stanza_set_attr(field, "type", type);
    vn_stanza_add_text_child(field, "value", NS_DATA_FORMS, value);
    return field;
}

void pep_form_add_config(vn_stanza *parent, const pep_config *config, const char *lang)
{
    vn_stanza *form = vn_stanza_add_child(parent, "x", NS_DATA_FORMS);
    vn_stanza_set_attr(form, "type", "form");
    add_field(form, "FORM_TYPE", "hidden", PEP_FORM_NODE_CONFIG);

    vn_stanza *access =
        add_field(form, FIELD_ACCESS, "list-single", pep_access_name(config->access));
    vn_stanza_set_attr(access, "label", vn_tr(lang, N_("Who may subscribe and retrieve items")));
    for (pep_access a = PEP_ACCESS_PRESENCE; a <= PEP_ACCESS_WHITELIST; a++) {
        vn_stanza *option = vn_stanza_add_child(access, "option", NS_DATA_FORMS);
        vn_stanza_add_text_child(option, "value", NS_DATA_FORMS, pep_access_name(a));
    }
    add_field(form, FIELD_PERSIST, "boolean", config->persist_items ? "1" : "0");

    char max[32];
    if (config->max_items)
        snprintf(max, sizeof max, "%zu", config->max_items);
    else
        snprintf(max, sizeof max, "max");
    add_field(form, FIELD_MAX_ITEMS, "text-single", max);
}
