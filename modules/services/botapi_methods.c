/*
 * botapi_methods.c - the Bot API methods, each a short function over a
 * parsed call: check the parameters (400 with Telegram's description when
 * wrong), the chat (a user's id from the id map) and consent (403 when the
 * user has not started the bot), then act on the XMPP side and answer
 * with the Telegram object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "botapi.h"

/* A chat the bot may write to: its JID (malloc'ed), or NULL after failing
 * the call. */
static char *chat_of(botapi_call *call)
{
    int64_t chat_id;
    if (!botapi_param_int(call, "chat_id", &chat_id)) {
        botapi_call_fail(call, 400,
                         json_object_get(call->params, "chat_id")
                             ? "Bad Request: chat not found"
                             : "Bad Request: chat_id is empty");
        return NULL;
    }
    char *jid = chat_id > 0 ? botapi_jid_of(vn_server_store(), call->bot->domain, chat_id) : NULL;
    if (!jid || strchr(jid, '@') == NULL || botapi_bot_find(jid)) {
        free(jid);
        botapi_call_fail(call, 400, "Bad Request: chat not found");
        return NULL;
    }
    if (!botapi_may_message(call->bot, jid)) {
        free(jid);
        botapi_call_fail(call, 403, "Forbidden: bot can't initiate conversation with a user");
        return NULL;
    }
    return jid;
}

static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* reply_markup: NULL if absent; false after failing the call if invalid.
 * Inline keyboards need text and callback_data or url on every button. */
static bool markup_of(botapi_call *call, json_t **out)
{
    *out = NULL;
    if (!json_object_get(call->params, "reply_markup"))
        return true;
    json_t *markup = botapi_param_json(call, "reply_markup");
    json_t *rows = json_object_get(markup, "inline_keyboard");
    if (!json_is_object(markup)) {
        botapi_call_fail(call, 400, "Bad Request: can't parse reply keyboard markup JSON object");
        return false;
    }
    if (rows) {
        size_t i, j;
        json_t *row, *button;
        if (!json_is_array(rows))
            goto bad;
        json_array_foreach(rows, i, row)
        {
            if (!json_is_array(row))
                goto bad;
            json_array_foreach(row, j, button)
            {
                if (!json_is_string(json_object_get(button, "text")) ||
                    !(json_is_string(json_object_get(button, "callback_data")) ||
                      json_is_string(json_object_get(button, "url"))))
                    goto bad;
            }
        }
    }
    *out = markup;
    return true;
bad:
    botapi_call_fail(call, 400, "Bad Request: can't parse inline keyboard button");
    return false;
}

/* The text parameter field as parse_mode formats it, in place of the
 * bot's own; false after failing the call. */
static bool apply_parse_mode(botapi_call *call, const char *field)
{
    const char *text = botapi_param_string(call, field);
    /* Markup makes a text longer, never by this much: too long already. */
    if (text && strlen(text) > 16 * (size_t)botapi_conf.max_text_length) {
        botapi_call_fail(call, 400, "Bad Request: message is too long");
        return false;
    }
    char *formatted;
    const char *problem = botapi_format(text, botapi_param_string(call, "parse_mode"), &formatted);
    if (problem) {
        botapi_call_fail(call, 400, problem);
        return false;
    }
    if (formatted)
        json_object_set_new(call->params, field, json_string(formatted));
    free(formatted);
    return true;
}

static bool text_ok(botapi_call *call, const char *text, bool required)
{
    if (required && (!text || !text[0])) {
        botapi_call_fail(call, 400, "Bad Request: message text is empty");
        return false;
    }
    if (text && utf8_length(text) > (size_t)botapi_conf.max_text_length) {
        botapi_call_fail(call, 400, "Bad Request: message is too long");
        return false;
    }
    return true;
}

static int64_t reply_to_of(botapi_call *call)
{
    int64_t id = 0;
    json_t *params = botapi_param_json(call, "reply_parameters");
    if (json_is_integer(json_object_get(params, "message_id")))
        return json_integer_value(json_object_get(params, "message_id"));
    botapi_param_int(call, "reply_to_message_id", &id);
    return id;
}

/* A message refused on the way, as Telegram words it: 429 for the
 * platform's rate limit and quota (the wait type), 403 for consent and
 * suspension, 400 otherwise (no such user). */
static void fail_refused(botapi_call *call, const botapi_refusal *r)
{
    if (strcmp(r->type, "wait") == 0) {
        botapi_call_fail_429(call, 1);
    } else if (strcmp(r->condition, "forbidden") == 0) {
        botapi_call_fail(call, 403, "Forbidden: bot was blocked by the user");
    } else {
        char text[96];
        snprintf(text, sizeof text, "Bad Request: the message was refused (%s)", r->condition);
        botapi_call_fail(call, 400, text);
    }
}

/* The Message object of something the bot sends now. */
static json_t *message_new(botapi_call *call, const char *chat, int64_t message_id)
{
    return json_pack("{s:I, s:o, s:o, s:I}", "message_id", (json_int_t)message_id, "from",
                     botapi_bot_user_json(call->bot), "chat", botapi_chat_json(call->bot, chat),
                     "date", (json_int_t)(vn_now_us() / 1000000));
}

static bool has_inline_keyboard(const json_t *markup)
{
    return json_array_size(json_object_get(markup, "inline_keyboard")) > 0;
}

/* Send and remember a message; answers the call with it. */
static void deliver(botapi_call *call, const char *chat, json_t *message, const char *text,
                    json_t *markup, const char *url)
{
    int64_t message_id = json_integer_value(json_object_get(message, "message_id"));
    char *reply_sid = NULL;
    int64_t reply_to = reply_to_of(call);
    json_t *replied =
        reply_to > 0 ? botapi_chat_message_get(call->bot, chat, reply_to, &reply_sid) : NULL;
    if (replied) {
        json_object_del(replied, "reply_to_message"); /* one level, as Telegram's */
        json_object_set_new(message, "reply_to_message", replied);
    }
    if (markup)
        json_object_set(message, "reply_markup", markup);
    botapi_refusal refusal;
    char *sid = botapi_xmpp_send(call->bot, chat, message_id, text, markup, url, NULL,
                                 reply_sid && reply_sid[0] ? reply_sid : NULL, &refusal);
    free(reply_sid);
    if (!sid) {
        json_decref(message);
        fail_refused(call, &refusal);
        return;
    }
    botapi_chat_message_put(call->bot, chat, message_id, sid, message);
    if (has_inline_keyboard(markup))
        botapi_chat_set_keyboard_message(call->bot, chat, message_id);
    free(sid);
    botapi_call_ok(call, message);
}

static void send_message(botapi_call *call)
{
    json_t *markup;
    if (!apply_parse_mode(call, "text"))
        return;
    const char *text = botapi_param_string(call, "text");
    if (!text_ok(call, text, true) || !markup_of(call, &markup))
        return;
    char *chat = chat_of(call);
    if (!chat)
        return;
    json_t *message = message_new(call, chat, botapi_chat_next_message_id(call->bot, chat));
    json_object_set_new(message, "text", json_string(text));
    deliver(call, chat, message, text, markup, NULL);
    free(chat);
}

/* The file of a sendPhoto or sendDocument is ready: send it. */
static void file_ready(botapi_call *call, json_t *file, char *url, void *ud)
{
    char *chat = ud;
    const char *caption = botapi_param_string(call, "caption");
    json_t *markup = json_object_get(call->params, "reply_markup")
                         ? botapi_param_json(call, "reply_markup")
                         : NULL;
    if (!file) {
        botapi_call_fail(call, 500, "Internal Server Error: cannot store the file");
        free(chat);
        return;
    }
    json_t *message = message_new(call, chat, botapi_chat_next_message_id(call->bot, chat));
    if (strcasecmp(call->method, "sendPhoto") == 0) {
        json_object_set_new(file, "width", json_integer(0));
        json_object_set_new(file, "height", json_integer(0));
        json_object_set_new(message, "photo", json_pack("[o]", file));
    } else {
        json_object_set_new(message, "document", file);
    }
    if (caption && caption[0])
        json_object_set_new(message, "caption", json_string(caption));
    deliver(call, chat, message, caption, markup, url);
    free(url);
    free(chat);
}

/* sendPhoto and sendDocument: an upload (written on a worker), a file_id
 * of the bot's, or a URL. */
static void send_file(botapi_call *call, const char *field)
{
    if (!apply_parse_mode(call, "caption"))
        return;
    const char *caption = botapi_param_string(call, "caption");
    json_t *markup;
    if (!text_ok(call, caption, false) || !markup_of(call, &markup))
        return;
    const botapi_upload *up = botapi_param_upload(call, field);
    const char *ref = up ? NULL : botapi_param_string(call, field);
    if (!up && !ref) {
        botapi_call_fail(call, 400, "Bad Request: there is no file in the request");
        return;
    }
    if (up && up->len > (size_t)botapi_conf.max_file_size) {
        botapi_call_fail(call, 413, "Request Entity Too Large");
        return;
    }
    char *chat = chat_of(call);
    if (!chat)
        return;
    if (up) {
        botapi_file_store(call, up, file_ready, chat);
        return;
    }
    char *url = NULL;
    json_t *file = strncmp(ref, "https://", 8) == 0 || strncmp(ref, "http://", 7) == 0
                       ? botapi_file_remote(call->bot, ref, NULL)
                       : botapi_file_lookup(call->bot, ref, &url);
    if (!file) {
        free(chat);
        botapi_call_fail(call, 400, "Bad Request: wrong file identifier/HTTP URL specified");
        return;
    }
    file_ready(call, file, url ? url : vn_strdup(ref), chat);
}

static void edit_message(botapi_call *call, bool text_too)
{
    int64_t message_id;
    if (text_too && !apply_parse_mode(call, "text"))
        return;
    const char *text = text_too ? botapi_param_string(call, "text") : NULL;
    json_t *markup;
    if (botapi_param_string(call, "inline_message_id")) {
        botapi_call_fail(call, 400, "Bad Request: inline messages are not supported");
        return;
    }
    if (!botapi_param_int(call, "message_id", &message_id)) {
        botapi_call_fail(call, 400, "Bad Request: message identifier is not specified");
        return;
    }
    if ((text_too && !text_ok(call, text, true)) || !markup_of(call, &markup))
        return;
    char *chat = chat_of(call);
    if (!chat)
        return;
    char *sid = NULL;
    json_t *message = botapi_chat_message_get(call->bot, chat, message_id, &sid);
    if (!message) {
        free(chat);
        botapi_call_fail(call, 400, "Bad Request: message to edit not found");
        return;
    }
    const char *old_text = json_string_value(json_object_get(message, "text"));
    if (!text_too)
        text = old_text ? old_text : json_string_value(json_object_get(message, "caption"));
    json_t *old_markup = json_object_get(message, "reply_markup");
    if (text_too && !old_text) {
        botapi_call_fail(call, 400, "Bad Request: there is no text in the message to edit");
    } else if (old_text && text && strcmp(old_text, text) == 0 &&
               ((!markup && !old_markup) || (markup && json_equal(markup, old_markup)))) {
        botapi_call_fail(call, 400,
                         "Bad Request: message is not modified: specified new message content "
                         "and reply markup are exactly the same as a current content and reply "
                         "markup of the message");
    } else {
        char *new_text = vn_strdup(text);
        if (text_too)
            json_object_set_new(message, "text", json_string(new_text));
        if (markup)
            json_object_set(message, "reply_markup", markup);
        else
            json_object_del(message, "reply_markup");
        json_object_set_new(message, "edit_date", json_integer(vn_now_us() / 1000000));
        const char *url = NULL;
        json_t *doc = json_object_get(message, "document");
        json_t *photo = json_array_get(json_object_get(message, "photo"), 0);
        char *file_url = NULL;
        if (doc || photo) {
            json_t *file = botapi_file_lookup(
                call->bot, json_string_value(json_object_get(doc ? doc : photo, "file_id")),
                &file_url);
            json_decref(file);
            url = file_url;
        }
        botapi_refusal refusal;
        char *edit_sid = botapi_xmpp_send(call->bot, chat, message_id, new_text, markup, url, sid,
                                          NULL, &refusal);
        bool sent = edit_sid != NULL;
        if (sent) {
            botapi_chat_message_put(call->bot, chat, message_id, sid, message);
            if (has_inline_keyboard(markup))
                botapi_chat_set_keyboard_message(call->bot, chat, message_id);
        }
        free(edit_sid);
        free(new_text);
        free(file_url);
        free(sid);
        free(chat);
        if (sent) {
            botapi_call_ok(call, message);
        } else {
            json_decref(message);
            fail_refused(call, &refusal);
        }
        return;
    }
    json_decref(message);
    free(sid);
    free(chat);
}

static void delete_message(botapi_call *call)
{
    int64_t message_id;
    if (!botapi_param_int(call, "message_id", &message_id)) {
        botapi_call_fail(call, 400, "Bad Request: message identifier is not specified");
        return;
    }
    char *chat = chat_of(call);
    if (!chat)
        return;
    char *sid = NULL;
    json_t *message = botapi_chat_message_get(call->bot, chat, message_id, &sid);
    if (!message) {
        free(chat);
        botapi_call_fail(call, 400, "Bad Request: message to delete not found");
        return;
    }
    botapi_refusal refusal;
    botapi_xmpp_retract(call->bot, chat, sid, &refusal);
    if (!refusal.refused)
        botapi_chat_message_delete(call->bot, chat, message_id);
    json_decref(message);
    free(sid);
    free(chat);
    if (refusal.refused)
        fail_refused(call, &refusal);
    else
        botapi_call_ok(call, json_true());
}

static void answer_callback_query(botapi_call *call)
{
    const char *id = botapi_param_string(call, "callback_query_id");
    const char *text = botapi_param_string(call, "text");
    /* Our callback query ids are "<user id>-<random>". */
    char *end = NULL;
    long long user_id = id ? strtoll(id, &end, 10) : 0;
    char *user = user_id > 0 && end && *end == '-'
                     ? botapi_jid_of(vn_server_store(), call->bot->domain, user_id)
                     : NULL;
    if (!user || !botapi_may_message(call->bot, user)) {
        free(user);
        botapi_call_fail(call, 400,
                         "Bad Request: query is too old and response timeout expired or query "
                         "ID is invalid");
        return;
    }
    if (!text_ok(call, text, false)) {
        free(user);
        return;
    }
    if (text && text[0])
        botapi_xmpp_notice(call->bot, user, text);
    free(user);
    botapi_call_ok(call, json_true());
}

static void send_chat_action(botapi_call *call)
{
    if (!botapi_param_string(call, "action")) {
        botapi_call_fail(call, 400, "Bad Request: action is empty");
        return;
    }
    char *chat = chat_of(call);
    if (!chat)
        return;
    botapi_xmpp_composing(call->bot, chat);
    free(chat);
    botapi_call_ok(call, json_true());
}

static void get_me(botapi_call *call)
{
    json_t *me = botapi_bot_user_json(call->bot);
    json_object_set_new(me, "can_join_groups", json_false());
    json_object_set_new(me, "can_read_all_group_messages", json_false());
    json_object_set_new(me, "supports_inline_queries", json_false());
    botapi_call_ok(call, me);
}

typedef struct method {
    const char *name;
    void (*run)(botapi_call *call);
} method;

static void send_photo(botapi_call *call)
{
    send_file(call, "photo");
}

static void send_document(botapi_call *call)
{
    send_file(call, "document");
}

static void edit_message_text(botapi_call *call)
{
    edit_message(call, true);
}

static void edit_message_reply_markup(botapi_call *call)
{
    edit_message(call, false);
}

static const method methods[] = {
    {"getMe", get_me},
    {"getUpdates", botapi_updates_get},
    {"setWebhook", botapi_webhook_set},
    {"deleteWebhook", botapi_webhook_delete},
    {"getWebhookInfo", botapi_webhook_info},
    {"sendMessage", send_message},
    {"answerCallbackQuery", answer_callback_query},
    {"editMessageText", edit_message_text},
    {"editMessageReplyMarkup", edit_message_reply_markup},
    {"deleteMessage", delete_message},
    {"sendPhoto", send_photo},
    {"sendDocument", send_document},
    {"sendChatAction", send_chat_action},
    {"getFile", botapi_file_get},
    {"setMyProfile", botapi_profile_set},
};

void botapi_method_run(botapi_call *call)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (strcasecmp(call->method, methods[i].name) == 0) {
            methods[i].run(call);
            return;
        }
    }
    botapi_call_fail(call, 404, "Not Found");
}
