/*
 * botapi_updates.c - a bot's update queue and getUpdates long polling.
 *
 * Updates wait in a store archive under the bot, so none is lost when the
 * server restarts before the bot fetched them; the archive id is the
 * update_id (increasing, below 2^53). getUpdates with offset N confirms
 * and deletes every update below N, as Telegram's does. At most
 * bot_max_pending_updates wait; beyond, the oldest goes. A getUpdates with
 * a timeout and nothing to return waits (up to bot_max_poll_timeout) for
 * the next update; a newer getUpdates ends an older one with 409, as on
 * Telegram, and so does setWebhook.
 */
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "botapi.h"

#define UPDATES_ARCHIVE "botapi_updates"
#define DEFAULT_LIMIT 100

struct botapi_poll {
    botapi_call *call;
    vn_timer *timer;
    size_t limit;
    struct botapi_poll *next;
};

void botapi_updates_load(botapi_bot *bot)
{
    size_t count = 0;
    vn_archive_count(vn_server_store(), bot->domain, bot->username, UPDATES_ARCHIVE, NULL, &count);
    bot->pending = count;
}

typedef struct collect_ctx {
    json_t *list;
    uint64_t last_id;
} collect_ctx;

static bool collect_item(const vn_archive_item *item, void *ud)
{
    collect_ctx *ctx = ud;
    json_t *update = json_loadb(item->data, item->len, 0, NULL);
    ctx->last_id = item->id;
    if (!json_is_object(update)) {
        json_decref(update);
        return true;
    }
    json_object_set_new(update, "update_id", json_integer((json_int_t)item->id));
    json_array_append_new(ctx->list, update);
    return true;
}

static json_t *updates_read(botapi_bot *bot, size_t limit)
{
    collect_ctx ctx = {.list = json_array()};
    vn_archive_query q = {.limit = limit};
    vn_archive_query_items(vn_server_store(), bot->domain, bot->username, UPDATES_ARCHIVE, &q,
                           collect_item, &ctx, NULL);
    return ctx.list;
}

json_t *botapi_updates_oldest(botapi_bot *bot, uint64_t *id)
{
    json_t *list = updates_read(bot, 1);
    json_t *update = json_array_get(list, 0);
    if (update) {
        json_incref(update);
        *id = (uint64_t)json_integer_value(json_object_get(update, "update_id"));
    }
    json_decref(list);
    return update;
}

void botapi_updates_confirm(botapi_bot *bot, uint64_t id)
{
    if (vn_archive_delete_id(vn_server_store(), bot->domain, bot->username, UPDATES_ARCHIVE, id) ==
            VN_STORE_OK &&
        bot->pending > 0)
        bot->pending--;
}

/* Confirm everything below offset. */
static void updates_confirm_below(botapi_bot *bot, uint64_t offset)
{
    vn_archive_delete_before(vn_server_store(), bot->domain, bot->username, UPDATES_ARCHIVE,
                             (int64_t)offset);
    botapi_updates_load(bot);
}

void botapi_updates_drop(botapi_bot *bot)
{
    vn_archive_delete_before(vn_server_store(), bot->domain, bot->username, UPDATES_ARCHIVE, 0);
    bot->pending = 0;
}

/* ---- long polls ---- */

static void poll_free(botapi_bot *bot, botapi_poll *poll)
{
    LL_DELETE(bot->polls, poll);
    if (poll->timer)
        vn_timer_stop(poll->timer);
    poll->call->waiting = false;
    free(poll);
}

static void poll_timeout(vn_timer *t, void *ud)
{
    botapi_poll *poll = ud;
    botapi_call *call = poll->call;
    poll->timer = NULL; /* a one-shot timer is freed after this callback */
    poll_free(call->bot, poll);
    botapi_call_ok(call, json_array());
}

void botapi_polls_end(botapi_bot *bot, int code, const char *description)
{
    while (bot->polls) {
        botapi_call *call = bot->polls->call;
        poll_free(bot, bot->polls);
        botapi_call_fail(call, code, description);
    }
}

void botapi_poll_abort(botapi_call *call)
{
    for (botapi_poll *poll = call->bot->polls; poll; poll = poll->next) {
        if (poll->call == call) {
            poll_free(call->bot, poll);
            botapi_call_free(call);
            return;
        }
    }
}

static void polls_wake(botapi_bot *bot)
{
    while (bot->polls && bot->pending > 0) {
        botapi_poll *poll = bot->polls;
        botapi_call *call = poll->call;
        size_t limit = poll->limit;
        poll_free(bot, poll);
        botapi_call_ok(call, updates_read(bot, limit));
    }
}

unsigned botapi_allowed_updates(const json_t *list)
{
    unsigned bits = 0;
    size_t i;
    json_t *name;
    json_array_foreach(list, i, name)
    {
        const char *text = json_string_value(name);
        if (!text)
            continue;
        if (strcmp(text, "message") == 0)
            bits |= BOTAPI_UPDATE_MESSAGE;
        else if (strcmp(text, "edited_message") == 0)
            bits |= BOTAPI_UPDATE_EDITED_MESSAGE;
        else if (strcmp(text, "callback_query") == 0)
            bits |= BOTAPI_UPDATE_CALLBACK_QUERY;
    }
    return json_array_size(list) == 0 ? BOTAPI_UPDATE_ALL : bits;
}

void botapi_updates_get(botapi_call *call)
{
    botapi_bot *bot = call->bot;
    int64_t offset = 0, limit = DEFAULT_LIMIT, timeout = 0;

    if (bot->webhook) {
        botapi_call_fail(call, 409,
                         "Conflict: can't use getUpdates method while webhook is active; use "
                         "deleteWebhook to delete the webhook first");
        return;
    }
    if ((json_object_get(call->params, "offset") && !botapi_param_int(call, "offset", &offset)) ||
        (json_object_get(call->params, "limit") && !botapi_param_int(call, "limit", &limit)) ||
        (json_object_get(call->params, "timeout") &&
         !botapi_param_int(call, "timeout", &timeout))) {
        botapi_call_fail(call, 400, "Bad Request: offset, limit and timeout must be integers");
        return;
    }
    json_t *allowed = botapi_param_json(call, "allowed_updates");
    if (json_is_array(allowed))
        bot->allowed_updates = botapi_allowed_updates(allowed);
    if (limit < 1 || limit > 100)
        limit = DEFAULT_LIMIT;
    if (timeout < 0)
        timeout = 0;
    if (timeout > botapi_conf.max_poll_timeout)
        timeout = botapi_conf.max_poll_timeout;
    if (offset > 0)
        updates_confirm_below(bot, (uint64_t)offset);

    botapi_polls_end(bot, 409, "Conflict: terminated by other getUpdates request");
    if (bot->pending > 0 || timeout == 0) {
        botapi_call_ok(call, updates_read(bot, (size_t)limit));
        return;
    }
    botapi_poll *poll = vn_alloc(sizeof *poll);
    poll->call = call;
    poll->limit = (size_t)limit;
    poll->timer = vn_timer_start((uint64_t)timeout * 1000, 0, poll_timeout, poll);
    call->waiting = true;
    LL_APPEND(bot->polls, poll);
}

void botapi_update_push(botapi_bot *bot, unsigned kind, const char *field, json_t *value)
{
    if (!(bot->allowed_updates & kind)) {
        json_decref(value);
        return;
    }
    json_t *update = json_pack("{s:o}", field, value);
    char *text = json_dumps(update, JSON_COMPACT);
    json_decref(update);
    vn_store *s = vn_server_store();
    if (vn_archive_append(s, bot->domain, bot->username, UPDATES_ARCHIVE, 0, "", text, strlen(text),
                          NULL) == VN_STORE_OK)
        bot->pending++;
    free(text);
    while (bot->pending > (size_t)botapi_conf.max_pending_updates) {
        uint64_t oldest;
        json_t *dropped = botapi_updates_oldest(bot, &oldest);
        if (!dropped)
            break;
        json_decref(dropped);
        vn_log_info("botapi: %s has %zu updates waiting; dropping the oldest", bot->key,
                    bot->pending);
        botapi_updates_confirm(bot, oldest);
    }
    if (bot->webhook)
        botapi_webhook_kick(bot);
    else
        polls_wake(bot);
}
