/*
 * directory.c - the services directory, services.<host>: what users find
 * from any client, and where services talk to the platform.
 *
 * Users: disco#items lists the services (all of them, or one category as
 * a node), disco#info with a service as node gives its profile as a
 * XEP-0128 form, and XEP-0055 search with a data form finds them by
 * category, words and the verified badge. Services: the iqs of
 * xeps/services-bus.md (profile, audience, broadcast) come here, and
 * messages to the assistant's JID go on to the assistant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/adhoc.h>
#include <vestnik/form.h>

#include "assistant.h"
#include "platform.h"

#define ROUTE_PRIORITY 10
#define PROFILE_FORM_TYPE NS_SERVICES "#profile"
#define CATEGORY_NODE "category/"
#define FIND_NODE NS_SERVICES "#find"

typedef struct directory {
    char *domain; /* services.<host> */
    char *host;
} directory;

static directory *directories;
static size_t n_directories;

const char *directory_host_of(const char *domain)
{
    for (size_t i = 0; domain && i < n_directories; i++)
        if (strcmp(directories[i].domain, domain) == 0)
            return directories[i].host;
    return NULL;
}

const char *directory_domain_of(const char *host)
{
    for (size_t i = 0; host && i < n_directories; i++)
        if (strcmp(directories[i].host, host) == 0)
            return directories[i].domain;
    return NULL;
}

static const char *lang_of(const vn_event *ev)
{
    return vn_stanza_attr(ev->stanza, "xml:lang");
}

void directory_iq_error(const vn_stanza *iq, const char *type, const char *condition,
                        const char *app_condition, const char *text)
{
    const char *lang = vn_stanza_attr(iq, "xml:lang");
    vn_stanza *reply = vn_stanza_error_reply(iq, type, condition, text ? vn_tr(lang, text) : NULL);
    if (!reply)
        return;
    if (app_condition)
        vn_stanza_add_child(vn_stanza_child(reply, "error", NULL), app_condition, NS_SERVICES);
    vn_route(reply);
}

static void add_feature(vn_stanza *query, const char *var)
{
    vn_stanza_set_attr(vn_stanza_add_child(query, "feature", NS_DISCO_INFO), "var", var);
}

static void add_identity(vn_stanza *query, const char *category, const char *type, const char *name)
{
    vn_stanza *id = vn_stanza_add_child(query, "identity", NS_DISCO_INFO);
    vn_stanza_set_attr(id, "category", category);
    vn_stanza_set_attr(id, "type", type);
    vn_stanza_set_attr(id, "name", name);
}

static vn_stanza *add_value_field(vn_stanza *form, const char *var, const char *type,
                                  const char *value)
{
    vn_stanza *field = vn_stanza_add_child(form, "field", VN_NS_DATA);
    vn_stanza_set_attr(field, "var", var);
    if (type)
        vn_stanza_set_attr(field, "type", type);
    if (value)
        vn_stanza_add_text_child(field, "value", VN_NS_DATA, value);
    return field;
}

/* ---- disco ---- */

/* The profile of svc as a XEP-0128 extension form. */
static void add_profile_form(vn_stanza *query, const service *svc)
{
    const service_record *r = &svc->rec;
    vn_stanza *form = vn_stanza_add_child(query, "x", VN_NS_DATA);
    vn_stanza_set_attr(form, "type", "result");
    add_value_field(form, "FORM_TYPE", "hidden", PROFILE_FORM_TYPE);
    add_value_field(form, "name", NULL, r->name);
    add_value_field(form, "description", NULL, r->description);
    add_value_field(form, "category", NULL, r->category);
    add_value_field(form, "avatar", NULL, r->avatar);
    add_value_field(form, "operator", NULL, r->operator_name);
    add_value_field(form, "privacy-policy", NULL, r->privacy);
    add_value_field(form, "verified", "boolean", r->verified ? "1" : "0");
}

static void disco_info(vn_event *ev, const vn_stanza *query)
{
    const char *node = vn_stanza_attr(query, "node");
    const char *lang = lang_of(ev);
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *info = vn_stanza_add_child(reply, "query", NS_DISCO_INFO);

    if (node) {
        vn_stanza_set_attr(info, "node", node);
        service *svc = registry_find(node);
        const char *category = strncmp(node, CATEGORY_NODE, strlen(CATEGORY_NODE)) == 0
                                   ? registry_category_name(node + strlen(CATEGORY_NODE))
                                   : NULL;
        if (svc && registry_listed(svc)) {
            bool bot = strchr(svc->rec.jid, '@') != NULL;
            add_identity(info, bot ? "client" : "component", bot ? "bot" : "generic",
                         svc->rec.name);
            add_feature(info, NS_DISCO_INFO);
            add_profile_form(info, svc);
        } else if (category) {
            add_identity(info, "hierarchy", "branch", vn_tr(lang, category));
            add_feature(info, NS_DISCO_ITEMS);
        } else {
            vn_stanza_free(reply);
            directory_iq_error(ev->stanza, "cancel", "item-not-found", NULL, NULL);
            return;
        }
    } else {
        add_identity(info, "directory", "chat", vn_tr(lang, N_("Services")));
        static const char *const features[] = {NS_DISCO_INFO, NS_DISCO_ITEMS, NS_SEARCH,
                                               NS_SERVICES};
        for (size_t i = 0; i < sizeof features / sizeof *features; i++)
            add_feature(info, features[i]);
    }
    vn_route(reply);
}

typedef struct items_ctx {
    vn_stanza *items;
    const char *category; /* NULL: any */
} items_ctx;

static void add_item(service *svc, void *ud)
{
    items_ctx *ctx = ud;
    if (!registry_listed(svc) || (ctx->category && strcmp(svc->rec.category, ctx->category) != 0))
        return;
    vn_stanza *item = vn_stanza_add_child(ctx->items, "item", NS_DISCO_ITEMS);
    vn_stanza_set_attr(item, "jid", svc->rec.jid);
    vn_stanza_set_attr(item, "name", svc->rec.name);
}

static void disco_items(vn_event *ev, const vn_stanza *query, const char *host)
{
    const char *node = vn_stanza_attr(query, "node");
    const char *lang = lang_of(ev);
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    items_ctx ctx = {vn_stanza_add_child(reply, "query", NS_DISCO_ITEMS), NULL};

    if (node) {
        const char *id = strncmp(node, CATEGORY_NODE, strlen(CATEGORY_NODE)) == 0
                             ? node + strlen(CATEGORY_NODE)
                             : NULL;
        if (!registry_category_name(id)) {
            vn_stanza_free(reply);
            directory_iq_error(ev->stanza, "cancel", "item-not-found", NULL, NULL);
            return;
        }
        vn_stanza_set_attr(ctx.items, "node", node);
        ctx.category = id;
        registry_foreach(host, add_item, &ctx);
    } else {
        registry_foreach(host, add_item, &ctx);
        if (assistant_jid(host)) {
            vn_stanza *item = vn_stanza_add_child(ctx.items, "item", NS_DISCO_ITEMS);
            vn_stanza_set_attr(item, "jid", assistant_jid(host));
            vn_stanza_set_attr(item, "name", vn_tr(lang, assistant_name()));
        }
        for (size_t i = 0; registry_categories[i]; i++) {
            char *cat_node = vn_asprintf(CATEGORY_NODE "%s", registry_categories[i]);
            vn_stanza *item = vn_stanza_add_child(ctx.items, "item", NS_DISCO_ITEMS);
            vn_stanza_set_attr(item, "jid", ev->to->domain);
            vn_stanza_set_attr(item, "node", cat_node);
            vn_stanza_set_attr(item, "name",
                               vn_tr(lang, registry_category_name(registry_categories[i])));
            free(cat_node);
        }
    }
    vn_route(reply);
}

/* ---- XEP-0055 search with a data form ---- */

static vn_stanza *search_form(const char *lang)
{
    vn_stanza *form = vn_form_new("form", lang, N_("Find a service"));
    vn_form_add_instructions(form, lang,
                             N_("Choose a category, or type words from the service's name or "
                                "description, or both."));
    vn_form_add_field(form, lang, "FORM_TYPE", "hidden", NULL, NS_SEARCH);
    vn_stanza *category =
        vn_form_add_field(form, lang, "category", "list-single", N_("Category"), NULL);
    vn_form_add_option(category, lang, N_("Any"), "", true);
    for (size_t i = 0; registry_categories[i]; i++)
        vn_form_add_option(category, lang, registry_category_name(registry_categories[i]),
                           registry_categories[i], true);
    vn_form_add_field(form, lang, "text", "text-single", N_("Words"), NULL);
    vn_form_add_field(form, lang, "verified", "boolean", N_("Only services verified by the server"),
                      "0");
    return form;
}

typedef struct search_ctx {
    vn_stanza *form;
    const char *category; /* NULL or "": any */
    char **words;         /* folded */
    size_t n_words;
    bool verified_only;
    size_t found;
} search_ctx;

static bool matches(const service *svc, const search_ctx *ctx)
{
    if (!registry_listed(svc) || (ctx->verified_only && !svc->rec.verified))
        return false;
    if (ctx->category && *ctx->category && strcmp(svc->rec.category, ctx->category) != 0)
        return false;
    if (ctx->n_words == 0)
        return true;
    char *text =
        vn_asprintf("%s %s", svc->rec.name, svc->rec.description ? svc->rec.description : "");
    char *folded = text_fold(text);
    bool all = true;
    for (size_t i = 0; i < ctx->n_words && all; i++)
        all = text_has_word_prefix(folded, ctx->words[i]);
    free(folded);
    free(text);
    return all;
}

static void add_result(service *svc, void *ud)
{
    search_ctx *ctx = ud;
    if (!matches(svc, ctx))
        return;
    vn_stanza *item = vn_stanza_add_child(ctx->form, "item", VN_NS_DATA);
    add_value_field(item, "jid", NULL, svc->rec.jid);
    add_value_field(item, "name", NULL, svc->rec.name);
    add_value_field(item, "category", NULL, svc->rec.category);
    add_value_field(item, "description", NULL, svc->rec.description ? svc->rec.description : "");
    add_value_field(item, "verified", NULL, svc->rec.verified ? "1" : "0");
    ctx->found++;
}

/* The services of host matching a submitted search form, as a XEP-0004
 * result form (XEP-0055 section 8, and the ad-hoc command alike). NULL,
 * with *error a msgid, when the form asks for an unknown category. */
static vn_stanza *search_results(const char *host, const vn_stanza *submit, const char *lang,
                                 const char **error)
{
    const char *category = vn_form_value(submit, "category");
    const char *verified = vn_form_value(submit, "verified");
    const char *words = vn_form_value(submit, "text");
    if (category && *category && !registry_category_name(category)) {
        *error = N_("No such category");
        return NULL;
    }
    search_ctx ctx = {.form = vn_stanza_new("x", VN_NS_DATA),
                      .category = category,
                      .verified_only =
                          verified && (!strcmp(verified, "1") || !strcmp(verified, "true"))};
    vn_stanza_set_attr(ctx.form, "type", "result");
    add_value_field(ctx.form, "FORM_TYPE", "hidden", NS_SEARCH);
    vn_stanza *reported = vn_stanza_add_child(ctx.form, "reported", VN_NS_DATA);
    static const struct {
        const char *var, *label, *type;
    } columns[] = {{"jid", N_("Address"), "jid-single"},
                   {"name", N_("Name"), "text-single"},
                   {"category", N_("Category"), "text-single"},
                   {"description", N_("Description"), "text-single"},
                   {"verified", N_("Verified"), "boolean"}};
    for (size_t i = 0; i < sizeof columns / sizeof *columns; i++) {
        vn_stanza *f = add_value_field(reported, columns[i].var, columns[i].type, NULL);
        vn_stanza_set_attr(f, "label", vn_tr(lang, columns[i].label));
    }
    char *folded = text_fold(words ? words : "");
    for (char *save = NULL, *w = strtok_r(folded, " \t\n,.;", &save); w;
         w = strtok_r(NULL, " \t\n,.;", &save)) {
        ctx.words = vn_realloc(ctx.words, (ctx.n_words + 1) * sizeof *ctx.words);
        ctx.words[ctx.n_words++] = w;
    }
    registry_foreach(host, add_result, &ctx);
    free(ctx.words);
    free(folded);
    return ctx.form;
}

static void search_set(vn_event *ev, const vn_stanza *query, const char *host)
{
    const vn_stanza *submit = vn_stanza_child(query, "x", VN_NS_DATA);
    const char *error = NULL;
    vn_stanza *form = submit ? search_results(host, submit, lang_of(ev), &error) : NULL;
    if (!submit)
        directory_iq_error(ev->stanza, "modify", "bad-request", NULL,
                           N_("Search with the data form (XEP-0055 section 8)"));
    else if (!form)
        directory_iq_error(ev->stanza, "modify", "not-acceptable", NULL, error);
    if (!form)
        return;
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza_append(vn_stanza_add_child(reply, "query", NS_SEARCH), form);
    vn_route(reply);
}

/* The ad-hoc command "Find a service", for clients without XEP-0055
 * (Conversations shows ad-hoc commands): the same form, the same results. */
static void find_command(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    if (!req->form) {
        reply->form = search_form(req->lang);
        return;
    }
    const char *error = NULL;
    reply->result = search_results(req->host, req->form, req->lang, &error);
    if (!reply->result) {
        reply->note = error;
        reply->note_type = VN_ADHOC_ERROR;
        return;
    }
    reply->note = N_("Write to a service to start it; until then it cannot write to you.");
}

static void search_get(vn_event *ev)
{
    const char *lang = lang_of(ev);
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *query = vn_stanza_add_child(reply, "query", NS_SEARCH);
    vn_stanza_add_text_child(query, "instructions", NS_SEARCH,
                             vn_tr(lang, N_("Use the form to find a service.")));
    vn_stanza_append(query, search_form(lang));
    vn_route(reply);
}

/* ---- the services bus: a service's own profile ---- */

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void profile_iq(vn_event *ev, const vn_stanza *profile, const char *host, bool set)
{
    service *svc = registry_for(ev->from, host);
    if (!svc) {
        directory_iq_error(ev->stanza, "auth", "forbidden", "not-a-service",
                           N_("Only a service (a component or a bot) has a profile"));
        return;
    }
    if (set) {
        char *old_name = vn_strdup(svc->rec.name),
             *old_operator = vn_strdup(svc->rec.operator_name);
        if (!service_record_set_profile(&svc->rec, profile)) {
            free(old_name);
            free(old_operator);
            directory_iq_error(ev->stanza, "modify", "bad-request", NULL,
                               N_("A profile needs a name and a category, within the lengths of "
                                  "xeps/services-bus.md"));
            return;
        }
        if (!registry_category_name(svc->rec.category)) {
            free(svc->rec.category);
            svc->rec.category = vn_strdup("other");
        }
        /* The badge vouches for a name and an operator: a new one loses it. */
        if (svc->rec.verified &&
            (!same(old_name, svc->rec.name) || !same(old_operator, svc->rec.operator_name)))
            svc->rec.verified = false;
        free(old_name);
        free(old_operator);
        free(svc->host);
        svc->host = vn_strdup(host);
        registry_save(svc);
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *el = vn_stanza_add_child(reply, "service", NS_SERVICES);
    vn_stanza_set_attr(el, "jid", svc->rec.jid);
    vn_stanza_set_attr(el, "verified", svc->rec.verified ? "true" : "false");
    vn_stanza_set_attr(el, "suspended", svc->rec.suspended ? "true" : "false");
    service_record_add_profile(&svc->rec, el);
    if (set)
        vn_route_durable(reply);
    else
        vn_route(reply);
}

/* ---- routing ---- */

static void handle_iq(vn_event *ev, const char *host)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const vn_stanza *payload = vn_stanza_first_element(ev->stanza);
    bool get = type && strcmp(type, "get") == 0, set = type && strcmp(type, "set") == 0;

    if (!get && !set)
        return; /* results and errors: nothing asked them */
    if (!payload || vn_stanza_element_count(ev->stanza) != 1) {
        directory_iq_error(ev->stanza, "modify", "bad-request", NULL,
                           N_("An iq request carries exactly one payload"));
        return;
    }
    if (get && vn_stanza_is(payload, "query", NS_DISCO_INFO))
        disco_info(ev, payload);
    else if (get && vn_stanza_is(payload, "query", NS_DISCO_ITEMS))
        disco_items(ev, payload, host);
    else if (get && vn_stanza_is(payload, "query", NS_SEARCH))
        search_get(ev);
    else if (set && vn_stanza_is(payload, "query", NS_SEARCH))
        search_set(ev, payload, host);
    else if (vn_stanza_is(payload, "profile", NS_SERVICES))
        profile_iq(ev, payload, host, set);
    else if (vn_stanza_is(payload, "audience", NS_SERVICES) ||
             vn_stanza_is(payload, "broadcast", NS_SERVICES)) {
        service *svc = registry_for(ev->from, host);
        if (!svc)
            directory_iq_error(ev->stanza, "auth", "forbidden", "not-a-service",
                               N_("Only a service (a component or a bot) has audiences"));
        else if (svc->rec.suspended)
            directory_iq_error(ev->stanza, "auth", "forbidden", "suspended",
                               N_("The service is suspended by the server's operator"));
        else if (vn_stanza_is(payload, "audience", NS_SERVICES))
            broadcast_audience_iq(svc, ev, payload);
        else if (set)
            broadcast_iq(svc, ev, payload);
        else
            directory_iq_error(ev->stanza, "modify", "bad-request", NULL, NULL);
    } else
        directory_iq_error(ev->stanza, "cancel", "service-unavailable", NULL, NULL);
}

static vn_hook_result on_route(vn_event *ev, void *ud)
{
    const char *host = directory_host_of(ev->to->domain);
    if (!host)
        return VN_PASS;
    const char *name = vn_stanza_name(ev->stanza);
    if (ev->to->local) {
        if (!assistant_route(ev, host) && strcmp(name, "presence") != 0)
            directory_iq_error(ev->stanza, "cancel", "item-not-found", NULL, NULL);
    } else if (strcmp(name, "iq") == 0) {
        handle_iq(ev, host);
    } else if (strcmp(name, "message") == 0) {
        directory_iq_error(ev->stanza, "cancel", "service-unavailable", NULL,
                           N_("This is the services directory: search it, or write to a service"));
    }
    return VN_HANDLED;
}

int directory_start(vn_module *m)
{
    const char *const *hosts = vn_local_hosts();
    for (size_t i = 0; hosts[i]; i++) {
        char *domain = vn_asprintf("%s.%s", platform_conf.directory_prefix, hosts[i]);
        char *normalized = vn_jid_prep_domain(domain);
        free(domain);
        if (!normalized || vn_is_local_host(normalized) || vn_is_component(normalized)) {
            vn_log_error("services: %s.%s cannot be the services directory",
                         platform_conf.directory_prefix, hosts[i]);
            free(normalized);
            continue;
        }
        directories = vn_realloc(directories, (n_directories + 1) * sizeof *directories);
        directories[n_directories++] = (directory){normalized, vn_strdup(hosts[i])};
        vn_disco_add_item(hosts[i], normalized, N_("Services"));
    }
    vn_hook_add("route/remote", ROUTE_PRIORITY, on_route, NULL);
    vn_adhoc_add(FIND_NODE, N_("Find a service"), find_command, NULL);
    return 0;
}

void directory_stop(vn_module *m)
{
    vn_adhoc_remove(FIND_NODE);
    vn_hook_remove("route/remote", on_route, NULL);
    for (size_t i = 0; i < n_directories; i++) {
        vn_disco_remove_item(directories[i].host, directories[i].domain);
        free(directories[i].domain);
        free(directories[i].host);
    }
    free(directories);
    directories = NULL;
    n_directories = 0;
}
