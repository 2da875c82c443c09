/*
 * botapi_webhook.c - setWebhook, deleteWebhook, getWebhookInfo, and the
 * delivery of updates to a bot's webhook.
 *
 * One update at a time per bot, oldest first, as an HTTPS POST of its
 * JSON (botapi_http.c, on a worker) with the bot's secret_token in
 * X-Telegram-Bot-Api-Secret-Token. A 2xx answer confirms the update; its
 * body may carry a method call to run ({"method":"sendMessage",...}, as
 * telegraf's webhook replies do). Anything else keeps the update and
 * retries after 1, 2, 4... seconds up to bot_webhook_max_retry_delay, and
 * getWebhookInfo shows the failure in last_error_date/last_error_message.
 * The webhook is kept in the store (it survives restarts):
 *   (domain, bot, "botapi_state", "webhook")  {"url","secret","allowed"}
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "botapi.h"

#define STATE_STORE "botapi_state"
#define WEBHOOK_KEY "webhook"
#define MAX_REPLY_SIZE (1 << 20)

typedef struct delivery delivery;

struct botapi_webhook {
    botapi_bot *bot;
    char *url;
    char *secret; /* NULL: none */
    json_t *allowed;
    delivery *in_flight;
    vn_timer *retry;
    long long delay_s; /* the next wait after a failure */
    int64_t last_error_date;
    char *last_error;
};

struct delivery {
    botapi_webhook *hook; /* NULL once the webhook is gone */
    botapi_fetch *fetch;
    uint64_t update_id;
};

static void webhook_free(botapi_webhook *hook)
{
    if (hook->in_flight)
        hook->in_flight->hook = NULL;
    if (hook->retry)
        vn_timer_stop(hook->retry);
    free(hook->url);
    free(hook->secret);
    json_decref(hook->allowed);
    free(hook->last_error);
    free(hook);
}

void botapi_webhook_free(botapi_bot *bot)
{
    if (bot->webhook)
        webhook_free(bot->webhook);
    bot->webhook = NULL;
}

static botapi_webhook *webhook_new(botapi_bot *bot, const char *url, const char *secret,
                                   json_t *allowed)
{
    botapi_webhook *hook = vn_alloc(sizeof *hook);
    hook->bot = bot;
    hook->url = vn_strdup(url);
    hook->secret = secret && secret[0] ? vn_strdup(secret) : NULL;
    hook->allowed = json_is_array(allowed) ? json_incref(allowed) : NULL;
    hook->delay_s = 1;
    return hook;
}

void botapi_webhook_load(botapi_bot *bot)
{
    vn_buf buf;
    vn_buf_init(&buf);
    if (vn_store_get(vn_server_store(), bot->domain, bot->username, STATE_STORE, WEBHOOK_KEY,
                     &buf) == VN_STORE_OK) {
        json_t *doc = json_loadb(buf.data, buf.len, 0, NULL);
        const char *url = json_string_value(json_object_get(doc, "url"));
        if (url) {
            bot->webhook = webhook_new(bot, url, json_string_value(json_object_get(doc, "secret")),
                                       json_object_get(doc, "allowed"));
            botapi_webhook_kick(bot);
        }
        json_decref(doc);
    }
    vn_buf_free(&buf);
}

/* ---- delivery ---- */

static void retry_fire(vn_timer *t, void *ud)
{
    botapi_webhook *hook = ud;
    hook->retry = NULL;
    botapi_webhook_kick(hook->bot);
}

static void delivery_failed(botapi_webhook *hook, const char *error)
{
    free(hook->last_error);
    hook->last_error = vn_strdup(error);
    hook->last_error_date = vn_now_us() / 1000000;
    vn_log_info("botapi: webhook of %s failed (%s); retrying in %lld s", hook->bot->key, error,
                hook->delay_s);
    hook->retry = vn_timer_start((uint64_t)hook->delay_s * 1000, 0, retry_fire, hook);
    hook->delay_s *= 2;
    if (hook->delay_s > botapi_conf.webhook_max_retry_delay)
        hook->delay_s = botapi_conf.webhook_max_retry_delay;
}

/* A webhook reply that is a method call: run it, answering nobody. */
static void run_reply(botapi_bot *bot, const vn_buf *reply)
{
    json_t *doc = reply->len ? json_loadb(reply->data, reply->len, 0, NULL) : NULL;
    const char *method = json_string_value(json_object_get(doc, "method"));
    if (!method) {
        json_decref(doc);
        return;
    }
    botapi_call *call = botapi_call_new(bot, method);
    json_object_del(doc, "method");
    call->params = doc;
    botapi_method_run(call);
}

static void delivery_work(void *ud)
{
    botapi_fetch_run(((delivery *)ud)->fetch);
}

static void delivery_done(void *ud)
{
    delivery *d = ud;
    botapi_webhook *hook = d->hook;
    botapi_fetch *f = d->fetch;
    if (hook) {
        hook->in_flight = NULL;
        botapi_bot *bot = hook->bot;
        if (f->status >= 200 && f->status < 300) {
            hook->delay_s = 1;
            botapi_updates_confirm(bot, d->update_id);
            run_reply(bot, &f->response);
            /* The reply's method may have removed the webhook. */
            if (bot->webhook == hook)
                botapi_webhook_kick(bot);
        } else if (f->status) {
            char error[96];
            snprintf(error, sizeof error, "Wrong response from the webhook: %ld", f->status);
            delivery_failed(hook, error);
        } else {
            delivery_failed(hook, f->error);
        }
    }
    botapi_fetch_free(f);
    free(d);
}

void botapi_webhook_kick(botapi_bot *bot)
{
    botapi_webhook *hook = bot->webhook;
    if (!hook || hook->in_flight || hook->retry)
        return;
    uint64_t id;
    json_t *update = botapi_updates_oldest(bot, &id);
    if (!update)
        return;
    char *body = json_dumps(update, JSON_COMPACT);
    json_decref(update);
    delivery *d = vn_alloc(sizeof *d);
    d->hook = hook;
    d->update_id = id;
    d->fetch = botapi_fetch_new(hook->url, body, hook->secret, MAX_REPLY_SIZE);
    free(body);
    hook->in_flight = d;
    vn_work_queue(delivery_work, delivery_done, d);
}

/* ---- methods ---- */

static bool secret_valid(const char *secret)
{
    size_t len = strlen(secret);
    if (len < 1 || len > 256)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = secret[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void webhook_store(botapi_bot *bot)
{
    vn_store *s = vn_server_store();
    botapi_webhook *hook = bot->webhook;
    if (!hook) {
        vn_store_delete(s, bot->domain, bot->username, STATE_STORE, WEBHOOK_KEY);
        return;
    }
    json_t *doc = json_pack("{s:s}", "url", hook->url);
    if (hook->secret)
        json_object_set_new(doc, "secret", json_string(hook->secret));
    if (hook->allowed)
        json_object_set(doc, "allowed", hook->allowed);
    char *text = json_dumps(doc, JSON_COMPACT);
    vn_store_put(s, bot->domain, bot->username, STATE_STORE, WEBHOOK_KEY, text, strlen(text));
    free(text);
    json_decref(doc);
}

void botapi_webhook_delete(botapi_call *call)
{
    botapi_bot *bot = call->bot;
    botapi_webhook_free(bot);
    webhook_store(bot);
    if (botapi_param_bool(call, "drop_pending_updates"))
        botapi_updates_drop(bot);
    botapi_call_ok(call, json_true());
}

void botapi_webhook_set(botapi_call *call)
{
    botapi_bot *bot = call->bot;
    const char *url = botapi_param_string(call, "url");
    const char *secret = botapi_param_string(call, "secret_token");
    json_t *allowed = botapi_param_json(call, "allowed_updates");

    if (!url || !url[0]) {
        botapi_webhook_delete(call);
        return;
    }
    CURLU *parsed = curl_url();
    bool valid = curl_url_set(parsed, CURLUPART_URL, url, 0) == CURLUE_OK;
    curl_url_cleanup(parsed);
    bool https = strncmp(url, "https://", 8) == 0;
    if (!valid ||
        (!https && !(botapi_conf.webhook_allow_http && strncmp(url, "http://", 7) == 0))) {
        botapi_call_fail(call, 400,
                         "Bad Request: bad webhook: An HTTPS URL must be provided for webhook");
        return;
    }
    if (secret && !secret_valid(secret)) {
        botapi_call_fail(call, 400, "Bad Request: secret token contains unallowed characters");
        return;
    }
    botapi_webhook_free(bot);
    bot->webhook = webhook_new(bot, url, secret, allowed);
    if (json_is_array(allowed))
        bot->allowed_updates = botapi_allowed_updates(allowed);
    webhook_store(bot);
    if (botapi_param_bool(call, "drop_pending_updates"))
        botapi_updates_drop(bot);
    botapi_polls_end(bot, 409, "Conflict: terminated by setWebhook request");
    botapi_webhook_kick(bot);
    botapi_call_ok(call, json_true());
}

void botapi_webhook_info(botapi_call *call)
{
    botapi_bot *bot = call->bot;
    botapi_webhook *hook = bot->webhook;
    json_t *info =
        json_pack("{s:s, s:b, s:I}", "url", hook ? hook->url : "", "has_custom_certificate", 0,
                  "pending_update_count", (json_int_t)bot->pending);
    if (hook) {
        json_object_set_new(info, "max_connections", json_integer(1));
        if (hook->last_error) {
            json_object_set_new(info, "last_error_date", json_integer(hook->last_error_date));
            json_object_set_new(info, "last_error_message", json_string(hook->last_error));
        }
        if (hook->allowed)
            json_object_set(info, "allowed_updates", hook->allowed);
    }
    botapi_call_ok(call, info);
}

void botapi_webhooks_start(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void botapi_webhooks_stop(void)
{
    curl_global_cleanup();
}
