/*
 * botapi.c - the Bot API part of mod_services: its configuration, its
 * routes on the HTTP server, tokens and rate limits, the bots in memory,
 * answers in Telegram's shape, and the admin socket's `bot` commands.
 *
 * Routes: /bot<token>/<method> (methods), /file/bot<token>/<file_path>
 * (a bot downloads a file), /botapi-files/<id>/<name> (the public URL of a
 * file a bot sent, for XMPP clients). Bodies are read here up to
 * bot_max_request_size (413 beyond, checked on Content-Length first) and
 * handed to botapi_request.c. Every answer is {"ok":true,"result":...} or
 * {"ok":false,"error_code":N,"description":"..."} with N as the HTTP
 * status: 401 unknown token, 400 bad parameters, 404 unknown method, 413
 * too large, 429 with parameters.retry_after beyond bot_requests_per_second.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "botapi.h"

#define FILES_ROUTE "/botapi-files/"

botapi_config botapi_conf;

typedef struct bot_domain {
    char *host;
    char *domain;
} bot_domain;

static bot_domain *domains;
static size_t domain_count;
static botapi_bot *bots; /* uthash by key */

/* What a request of ours carries between the HTTP callbacks. */
typedef struct req_state {
    vn_buf body;
    bool too_large;
    botapi_call *call; /* once the method runs */
} req_state;

void botapi_random_hex(char *out, size_t n)
{
    unsigned char raw[64];
    if (n > sizeof raw)
        n = sizeof raw;
    if (RAND_bytes(raw, (int)n) != 1)
        abort(); /* no entropy: nothing safe to hand out */
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* ---- bot domains and bots ---- */

const char *botapi_domain_of_host(const char *host)
{
    for (size_t i = 0; i < domain_count; i++)
        if (strcmp(domains[i].host, host) == 0)
            return domains[i].domain;
    return NULL;
}

const char *botapi_host_of_domain(const char *domain)
{
    for (size_t i = 0; i < domain_count; i++)
        if (strcmp(domains[i].domain, domain) == 0)
            return domains[i].host;
    return NULL;
}

static botapi_bot *bot_load(const char *domain, const botapi_bot_record *rec)
{
    botapi_bot *bot = vn_alloc(sizeof *bot);
    bot->key = vn_asprintf("%s@%s", rec->username, domain);
    bot->username = vn_strdup(rec->username);
    bot->domain = vn_strdup(domain);
    bot->host = vn_strdup(botapi_host_of_domain(domain));
    bot->id = rec->id;
    bot->allowed_updates = BOTAPI_UPDATE_ALL;
    bot->rate_tokens = (double)botapi_conf.requests_per_second;
    bot->rate_refill_us = vn_now_us();
    HASH_ADD_KEYPTR(hh, bots, bot->key, strlen(bot->key), bot);
    botapi_updates_load(bot);
    botapi_webhook_load(bot);
    return bot;
}

/* Out of the table (no new calls find it); freed with its last call. */
static void bot_retire(botapi_bot *bot)
{
    HASH_DEL(bots, bot);
    botapi_webhook_free(bot);
    bot->retired = true;
}

static void bot_free(botapi_bot *bot)
{
    if (!bot->retired)
        bot_retire(bot);
    free(bot->key);
    free(bot->username);
    free(bot->domain);
    free(bot->host);
    free(bot);
}

botapi_bot *botapi_bot_find(const char *jid)
{
    botapi_bot *bot;
    HASH_FIND_STR(bots, jid, bot);
    if (bot)
        return bot;
    const char *at = strchr(jid, '@');
    if (!at || !botapi_host_of_domain(at + 1) || (size_t)(at - jid) >= 256)
        return NULL;
    char username[256];
    memcpy(username, jid, (size_t)(at - jid));
    username[at - jid] = '\0';
    botapi_bot_record rec;
    if (botapi_bot_get(vn_server_store(), at + 1, username, &rec) != VN_STORE_OK)
        return NULL;
    return bot_load(at + 1, &rec);
}

const char *services_bot_host(const vn_jid *jid)
{
    botapi_bot *bot = jid && jid->local ? botapi_bot_find(jid->bare) : NULL;
    return bot ? bot->host : NULL;
}

void botapi_bot_forget(const char *jid)
{
    botapi_bot *bot;
    HASH_FIND_STR(bots, jid, bot);
    if (!bot)
        return;
    bot_retire(bot);
    bot->calls++; /* held while its polls end */
    botapi_polls_end(bot, 401, "Unauthorized");
    if (--bot->calls == 0)
        bot_free(bot);
}

/* The bot a token belongs to, or NULL. */
static botapi_bot *bot_by_token(const char *token)
{
    botapi_bot_record rec;
    for (size_t i = 0; i < domain_count; i++) {
        if (!botapi_bot_by_token(vn_server_store(), domains[i].domain, token, &rec))
            continue;
        char *jid = vn_asprintf("%s@%s", rec.username, domains[i].domain);
        botapi_bot *bot;
        HASH_FIND_STR(bots, jid, bot);
        free(jid);
        return bot ? bot : bot_load(domains[i].domain, &rec);
    }
    return NULL;
}

/* Token bucket: true if the bot may make one more call now. */
static bool rate_take(botapi_bot *bot, int *retry_after)
{
    double rate = (double)botapi_conf.requests_per_second;
    int64_t now = vn_now_us();
    bot->rate_tokens += rate * (double)(now - bot->rate_refill_us) / 1e6;
    if (bot->rate_tokens > rate)
        bot->rate_tokens = rate;
    bot->rate_refill_us = now;
    if (bot->rate_tokens >= 1.0) {
        bot->rate_tokens -= 1.0;
        return true;
    }
    *retry_after = (int)ceil((1.0 - bot->rate_tokens) / rate);
    if (*retry_after < 1)
        *retry_after = 1;
    return false;
}

/* ---- answers ---- */

static void respond_json(vn_http_request *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    req_state *st = vn_http_request_data(req);
    if (st) {
        vn_buf_free(&st->body);
        free(st);
        vn_http_request_set_data(req, NULL);
    }
    vn_http_respond(req, status, "application/json", text, strlen(text));
    free(text);
}

static void respond_error(vn_http_request *req, int code, const char *description, int retry_after)
{
    json_t *body =
        json_pack("{s:b, s:i, s:s}", "ok", 0, "error_code", code, "description", description);
    if (retry_after > 0) {
        json_object_set_new(body, "parameters", json_pack("{s:i}", "retry_after", retry_after));
        char value[16];
        snprintf(value, sizeof value, "%d", retry_after);
        vn_http_response_header(req, "Retry-After", value);
    }
    respond_json(req, code, body);
}

botapi_call *botapi_call_new(botapi_bot *bot, const char *method)
{
    botapi_call *call = vn_alloc(sizeof *call);
    call->bot = bot;
    call->method = vn_strdup(method);
    bot->calls++;
    return call;
}

void botapi_call_free(botapi_call *call)
{
    botapi_bot *bot = call->bot;
    if (--bot->calls == 0 && bot->retired)
        bot_free(bot); /* removed while this call was under way */
    json_decref(call->params);
    for (botapi_upload *up = call->uploads, *next; up; up = next) {
        next = up->next;
        free(up->field);
        free(up->filename);
        free(up->content_type);
        free(up->data);
        free(up);
    }
    free(call->method);
    free(call);
}

void botapi_call_ok(botapi_call *call, json_t *result)
{
    if (call->req)
        respond_json(call->req, 200, json_pack("{s:b, s:o}", "ok", 1, "result", result));
    else
        json_decref(result);
    botapi_call_free(call);
}

void botapi_call_fail(botapi_call *call, int code, const char *description)
{
    if (call->req)
        respond_error(call->req, code, description, 0);
    else
        vn_log_info("botapi: %s from %s's webhook reply failed: %s", call->method, call->bot->key,
                    description);
    botapi_call_free(call);
}

void botapi_call_fail_429(botapi_call *call, int retry_after)
{
    char text[64];
    snprintf(text, sizeof text, "Too Many Requests: retry after %d", retry_after);
    if (call->req)
        respond_error(call->req, 429, text, retry_after);
    botapi_call_free(call);
}

/* ---- the routes ---- */

static void bot_on_headers(vn_http_request *req, void *ud)
{
    int64_t length = vn_http_request_content_length(req);
    if (length > botapi_conf.max_request_size) {
        respond_error(req, 413, "Request Entity Too Large", 0);
        return;
    }
    req_state *st = vn_alloc(sizeof *st);
    vn_buf_init(&st->body);
    vn_http_request_set_data(req, st);
}

static void bot_on_body(vn_http_request *req, const char *data, size_t len, void *ud)
{
    req_state *st = vn_http_request_data(req);
    if (!st || st->too_large)
        return;
    if (st->body.len + len > (size_t)botapi_conf.max_request_size) {
        st->too_large = true;
        respond_error(req, 413, "Request Entity Too Large", 0);
        return;
    }
    vn_buf_append(&st->body, data, len);
}

static void bot_on_abort(vn_http_request *req, void *ud)
{
    req_state *st = vn_http_request_data(req);
    if (!st)
        return;
    vn_http_request_set_data(req, NULL);
    botapi_call *call = st->call;
    vn_buf_free(&st->body);
    free(st);
    if (call) {
        call->req = NULL;
        if (call->waiting && strcasecmp(call->method, "getUpdates") == 0)
            botapi_poll_abort(call);
        else if (call->waiting && strcasecmp(call->method, "setMyProfile") == 0)
            botapi_profile_abort(call);
    }
}

/* /bot<token>/<method>: the token's bot, or an error answered. */
static botapi_bot *split_path(vn_http_request *req, const char *rest, char **token_out,
                              const char **tail)
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || (size_t)(slash - rest) > 200) {
        respond_error(req, 404, "Not Found", 0);
        return NULL;
    }
    char *token = vn_strndup(rest, (size_t)(slash - rest));
    botapi_bot *bot = bot_by_token(token);
    if (!bot) {
        respond_error(req, 401, "Unauthorized", 0);
        free(token);
        return NULL;
    }
    *tail = slash + 1;
    if (token_out)
        *token_out = token;
    else
        free(token);
    return bot;
}

static void bot_on_request(vn_http_request *req, void *ud)
{
    req_state *st = vn_http_request_data(req);
    const char *path = vn_http_request_path(req);
    const char *method_name;

    if (!st)
        return; /* answered already */
    botapi_bot *bot = split_path(req, path + strlen("/bot"), NULL, &method_name);
    if (!bot)
        return;
    if (!method_name[0] || strchr(method_name, '/')) {
        respond_error(req, 404, "Not Found", 0);
        return;
    }
    int retry_after;
    if (strcasecmp(method_name, "getUpdates") != 0 && !rate_take(bot, &retry_after)) {
        botapi_call *call = botapi_call_new(bot, method_name);
        call->req = req;
        botapi_call_fail_429(call, retry_after);
        return;
    }
    botapi_call *call = botapi_call_new(bot, method_name);
    call->req = req;
    vn_buf_append(&st->body, "", 1);
    const char *problem = botapi_request_parse(call, vn_http_request_query(req),
                                               vn_http_request_header(req, "Content-Type"),
                                               st->body.data, st->body.len - 1);
    vn_buf_free(&st->body);
    if (problem) {
        botapi_call_fail(call, 400, problem);
        return;
    }
    st->call = call;
    botapi_method_run(call);
}

static void file_on_request(vn_http_request *req, void *ud)
{
    const char *path = vn_http_request_path(req);
    const char *file_path;
    botapi_bot *bot = split_path(req, path + strlen("/file/bot"), NULL, &file_path);
    if (bot)
        botapi_file_serve(req, bot, file_path);
}

static void public_on_request(vn_http_request *req, void *ud)
{
    botapi_file_serve_public(req);
}

static const vn_http_handler bot_handler = {
    .on_headers = bot_on_headers,
    .on_body = bot_on_body,
    .on_request = bot_on_request,
    .on_abort = bot_on_abort,
};
static void file_on_writable(vn_http_request *req, void *ud)
{
    botapi_file_on_writable(req);
}

static void file_on_abort(vn_http_request *req, void *ud)
{
    botapi_file_on_abort(req);
}

static const vn_http_handler file_handler = {
    .on_request = file_on_request,
    .on_writable = file_on_writable,
    .on_abort = file_on_abort,
};
static const vn_http_handler public_handler = {
    .on_request = public_on_request,
    .on_writable = file_on_writable,
    .on_abort = file_on_abort,
};

/* ---- admin socket: bot add|remove HOST NAME, bot list HOST ---- */

static bool list_bot(const botapi_bot_record *rec, void *ud)
{
    vn_buf **out = ud;
    vn_buf_printf(out[0], "%s@%s %lld\n", rec->username, (const char *)out[1], (long long)rec->id);
    return true;
}

static vn_hook_result admin_bot(vn_event *ev, void *ud)
{
    vn_admin_command *cmd = ev->data;
    if (strcmp(cmd->fields[0], "bot") != 0)
        return VN_PASS;
    const char *op = cmd->n_fields >= 3 ? cmd->fields[1] : "";
    const char *domain = cmd->n_fields >= 3 ? botapi_domain_of_host(cmd->fields[2]) : NULL;
    const char *name = cmd->n_fields == 4 ? cmd->fields[3] : NULL;
    vn_store *s = vn_server_store();

    if (!domain) {
        vn_buf_append_str(cmd->reply, "error no such host\n");
    } else if (strcmp(op, "list") == 0 && cmd->n_fields == 3) {
        vn_buf body;
        vn_buf_init(&body);
        vn_buf *out[2] = {&body, (vn_buf *)domain};
        if (botapi_bot_foreach(s, domain, list_bot, out) == VN_STORE_OK) {
            vn_buf_append_str(cmd->reply, "ok\n");
            if (body.len)
                vn_buf_append(cmd->reply, body.data, body.len);
        } else {
            vn_buf_append_str(cmd->reply, "error cannot list the bots\n");
        }
        vn_buf_free(&body);
    } else if (strcmp(op, "add") == 0 && name) {
        char *token = NULL;
        int rc = botapi_bot_add(s, domain, name, &token);
        if (rc == 0)
            vn_buf_printf(cmd->reply, "ok\n%s\n", token);
        else
            vn_buf_printf(cmd->reply, "error %s\n",
                          rc == 1 ? "bot already exists" : "cannot create the bot");
        if (token) {
            OPENSSL_cleanse(token, strlen(token));
            free(token);
        }
    } else if (strcmp(op, "remove") == 0 && name) {
        char *jid = vn_asprintf("%s@%s", name, domain);
        botapi_bot_forget(jid);
        free(jid);
        int rc = botapi_bot_remove(s, domain, name);
        vn_buf_printf(cmd->reply, "%s\n",
                      rc == 0   ? "ok"
                      : rc == 1 ? "error no such bot"
                                : "error cannot remove the bot");
    } else {
        vn_buf_append_str(cmd->reply, "error usage: bot add|remove HOST NAME, bot list HOST\n");
    }
    return VN_HANDLED;
}

/* ---- lifetime ---- */

static void read_config(vn_module *m)
{
    botapi_conf = (botapi_config){
        .max_request_size = vn_module_config_int(m, "bot_max_request_size"),
        .max_file_size = vn_module_config_int(m, "bot_max_file_size"),
        .max_text_length = vn_module_config_int(m, "bot_max_text_length"),
        .max_pending_updates = vn_module_config_int(m, "bot_max_pending_updates"),
        .max_poll_timeout = vn_module_config_int(m, "bot_max_poll_timeout"),
        .requests_per_second = vn_module_config_int(m, "bot_requests_per_second"),
        .webhook_timeout = vn_module_config_int(m, "bot_webhook_timeout"),
        .webhook_max_retry_delay = vn_module_config_int(m, "bot_webhook_max_retry_delay"),
        .webhook_allow_http = vn_module_config_bool(m, "bot_webhook_allow_http"),
        .file_fetch_private = vn_module_config_bool(m, "bot_file_fetch_private"),
        .ca_file = vn_module_config_string(m, "bot_ca_file"),
        .base_url = vn_module_config_string(m, "bot_file_base_url"),
    };
}

static bool load_bot(const botapi_bot_record *rec, void *ud)
{
    const char *domain = ud;
    char *jid = vn_asprintf("%s@%s", rec->username, domain);
    botapi_bot *bot;
    HASH_FIND_STR(bots, jid, bot);
    free(jid);
    if (!bot)
        bot_load(domain, rec);
    return true;
}

int botapi_start(vn_module *m)
{
    read_config(m);
    const char *prefix = vn_module_config_string(m, "bot_domain_prefix");
    const char *const *hosts = vn_local_hosts();
    for (size_t i = 0; hosts[i]; i++) {
        char *name = vn_asprintf("%s.%s", prefix, hosts[i]);
        char *domain = vn_jid_prep_domain(name);
        free(name);
        if (!domain || vn_is_local_host(domain)) {
            vn_log_error("services: %s.%s cannot be a bot domain", prefix, hosts[i]);
            free(domain);
            continue;
        }
        domains = vn_realloc(domains, (domain_count + 1) * sizeof *domains);
        domains[domain_count++] = (bot_domain){.host = vn_strdup(hosts[i]), .domain = domain};
    }
    if (vn_http_route_add("/bot", &bot_handler, NULL) < 0 ||
        vn_http_route_add("/file/bot", &file_handler, NULL) < 0 ||
        vn_http_route_add(FILES_ROUTE, &public_handler, NULL) < 0) {
        vn_log_error("services: the Bot API's HTTP routes are taken");
        botapi_stop(m);
        return -1;
    }
    vn_hook_add("admin/command", 0, admin_bot, NULL);
    botapi_files_start();
    botapi_webhooks_start();
    botapi_xmpp_start();
    /* Every bot now, so that webhooks go on delivering what waited while
     * the server was down, without waiting for the bot's next update. */
    for (size_t i = 0; i < domain_count; i++)
        botapi_bot_foreach(vn_server_store(), domains[i].domain, load_bot, domains[i].domain);
    return 0;
}

void botapi_stop(vn_module *m)
{
    botapi_xmpp_stop();
    botapi_profiles_stop();
    vn_hook_remove("admin/command", admin_bot, NULL);
    vn_http_route_remove("/bot");
    vn_http_route_remove("/file/bot");
    vn_http_route_remove(FILES_ROUTE);
    while (bots) {
        botapi_polls_end(bots, 503, "Service Unavailable");
        bot_free(bots);
    }
    botapi_webhooks_stop();
    botapi_files_stop();
    for (size_t i = 0; i < domain_count; i++) {
        free(domains[i].host);
        free(domains[i].domain);
    }
    free(domains);
    domains = NULL;
    domain_count = 0;
}

void botapi_reload(vn_module *m)
{
    read_config(m); /* the bot domains stay until restart */
}
