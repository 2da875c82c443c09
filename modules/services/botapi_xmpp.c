/*
 * botapi_xmpp.c - bots on the XMPP side: the domain bots.<host> (listed
 * in the host's disco#items) and its bots <username>@bots.<host>.
 *
 * From users: a chat message to a bot becomes a "message" update (text,
 * a command as a bot_command entity, a file given as XEP-0066 URL as a
 * document), a XEP-0308 correction an "edited_message"; pressing a
 * XEP-0439 quick-response action, or answering the last inline keyboard
 * with its number, becomes a "callback_query". Writing to a bot, or
 * subscribing to its presence, starts it (the consent botapi_chats.c
 * checks).
 *
 * To users: messages from the bot carry the text with the inline keyboard
 * as a numbered list any client shows, plus XEP-0439 actions for clients
 * that draw buttons; edits are XEP-0308 corrections, deletions XEP-0424
 * retractions, files XEP-0066 URLs. A bot answers presence subscriptions
 * and probes as always available, and disco#info and pings.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "botapi.h"

#define ROUTE_PRIORITY 90
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_PING "urn:xmpp:ping"
#define NS_QR "urn:xmpp:tmp:quick-response"
#define NS_CORRECT "urn:xmpp:message-correct:0"
#define NS_RETRACT "urn:xmpp:message-retract:1"
#define NS_RETRACT_0 "urn:xmpp:message-retract:0"
#define NS_FASTEN "urn:xmpp:fasten:0"
#define NS_FALLBACK "urn:xmpp:fallback:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_OOB "jabber:x:oob"
#define NS_SID "urn:xmpp:sid:0"
#define NS_REPLY "urn:xmpp:reply:0"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"

/* ---- Telegram objects for JIDs ---- */

static json_t *id_json(botapi_bot *bot, const char *jid)
{
    return json_integer(botapi_id_of(vn_server_store(), bot->domain, jid));
}

static char *localpart(const char *jid)
{
    const char *at = strchr(jid, '@');
    return at ? vn_strndup(jid, (size_t)(at - jid)) : vn_strdup(jid);
}

json_t *botapi_user_json(botapi_bot *bot, const char *jid, const char *lang)
{
    char *name = localpart(jid);
    json_t *user = json_pack("{s:o, s:b, s:s, s:s}", "id", id_json(bot, jid), "is_bot", 0,
                             "first_name", name, "username", name);
    if (lang && lang[0])
        json_object_set_new(user, "language_code", json_string(lang));
    free(name);
    return user;
}

json_t *botapi_chat_json(botapi_bot *bot, const char *jid)
{
    char *name = localpart(jid);
    json_t *chat = json_pack("{s:o, s:s, s:s, s:s}", "id", id_json(bot, jid), "type", "private",
                             "first_name", name, "username", name);
    free(name);
    return chat;
}

json_t *botapi_bot_user_json(const botapi_bot *bot)
{
    return json_pack("{s:I, s:b, s:s, s:s}", "id", (json_int_t)bot->id, "is_bot", 1, "first_name",
                     bot->username, "username", bot->username);
}

/* ---- to users ---- */

/* The stanza being routed now: a refusal on the way (the platform's
 * consent, rate limit or quota; an unknown account) comes straight back
 * as an error while vn_route runs, and is kept here. */
static struct {
    const char *id;
    botapi_refusal *refusal;
} sending;

static void route_watched(vn_stanza *m, const char *id, botapi_refusal *refusal)
{
    if (refusal)
        *refusal = (botapi_refusal){0};
    sending.id = id;
    sending.refusal = refusal;
    vn_route(m);
    sending.id = NULL;
    sending.refusal = NULL;
}

/* An error message to a bot: the refusal of the stanza being sent? */
static void bounce_seen(const vn_stanza *st)
{
    const char *id = vn_stanza_attr(st, "id");
    if (!sending.id || !sending.refusal || !id || strcmp(id, sending.id) != 0)
        return;
    const vn_stanza *error = vn_stanza_child(st, "error", NULL);
    const vn_stanza *condition = NULL;
    for (const vn_stanza *c = error ? vn_stanza_first_element(error) : NULL; c && !condition;
         c = vn_stanza_next_element(c))
        if (vn_stanza_is(c, NULL, VN_NS_STANZA_ERRORS) && strcmp(vn_stanza_name(c), "text") != 0)
            condition = c;
    botapi_refusal *r = sending.refusal;
    r->refused = true;
    snprintf(r->condition, sizeof r->condition, "%s",
             condition ? vn_stanza_name(condition) : "undefined-condition");
    snprintf(r->type, sizeof r->type, "%s",
             error && vn_stanza_attr(error, "type") ? vn_stanza_attr(error, "type") : "cancel");
}

static vn_stanza *message_new(const botapi_bot *bot, const char *to, const char *id)
{
    vn_stanza *m = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(m, "from", bot->key);
    vn_stanza_set_attr(m, "to", to);
    vn_stanza_set_attr(m, "type", "chat");
    vn_stanza_set_attr(m, "id", id);
    return m;
}

/* The callback buttons of an inline keyboard, in reading order. */
typedef void (*button_cb)(json_t *button, size_t number, void *ud);
static size_t foreach_button(const json_t *markup, button_cb cb, void *ud)
{
    size_t number = 0, i, j;
    json_t *row, *button;
    json_array_foreach(json_object_get(markup, "inline_keyboard"), i, row)
    {
        json_array_foreach(row, j, button)
        {
            if (json_is_string(json_object_get(button, "callback_data")))
                cb(button, ++number, ud);
        }
    }
    return number;
}

typedef struct render_ctx {
    vn_buf *body;
    vn_stanza *message;
    int64_t message_id;
} render_ctx;

/* Into the body: "N. label" (ctx->body set); into the stanza: the
 * XEP-0439 action (ctx->message set). */
static void render_button(json_t *button, size_t number, void *ud)
{
    render_ctx *ctx = ud;
    const char *label = json_string_value(json_object_get(button, "text"));
    char id[64];
    if (ctx->body) {
        vn_buf_printf(ctx->body, "\n%zu. %s", number, label);
        return;
    }
    snprintf(id, sizeof id, "%" PRId64 ".%zu", ctx->message_id, number);
    vn_stanza *action = vn_stanza_add_child(ctx->message, "action", NS_QR);
    vn_stanza_set_attr(action, "id", id);
    vn_stanza_set_attr(action, "label", label);
}

/* Reply keyboards (keyboard: [[{text}|"text"]]) become quick responses
 * whose value is sent back as text: listed into body, or added to m. */
static void render_reply_keyboard(const json_t *markup, vn_stanza *m, vn_buf *body)
{
    size_t i, j;
    json_t *row, *button;
    json_array_foreach(json_object_get(markup, "keyboard"), i, row)
    {
        json_array_foreach(row, j, button)
        {
            const char *label = json_is_string(button)
                                    ? json_string_value(button)
                                    : json_string_value(json_object_get(button, "text"));
            if (!label)
                continue;
            if (body) {
                vn_buf_printf(body, "\n- %s", label);
                continue;
            }
            vn_stanza *response = vn_stanza_add_child(m, "response", NS_QR);
            vn_stanza_set_attr(response, "value", label);
            vn_stanza_set_attr(response, "label", label);
        }
    }
}

static void render_url_buttons(const json_t *markup, vn_buf *body)
{
    size_t i, j;
    json_t *row, *button;
    json_array_foreach(json_object_get(markup, "inline_keyboard"), i, row)
    {
        json_array_foreach(row, j, button)
        {
            const char *url = json_string_value(json_object_get(button, "url"));
            if (url)
                vn_buf_printf(body, "\n%s: %s", json_string_value(json_object_get(button, "text")),
                              url);
        }
    }
}

char *botapi_xmpp_send(botapi_bot *bot, const char *to, int64_t message_id, const char *text,
                       const json_t *markup, const char *url, const char *replace,
                       const char *reply_to, botapi_refusal *refusal)
{
    char sid[40] = "bot-";
    botapi_random_hex(sid + 4, 12);
    vn_stanza *m = message_new(bot, to, sid);
    vn_buf body;
    vn_buf_init(&body);
    if (text && text[0])
        vn_buf_append_str(&body, text);
    if (url) {
        if (body.len)
            vn_buf_append_str(&body, "\n");
        vn_buf_append_str(&body, url);
    }
    if (markup) {
        vn_buf_append_str(&body, body.len ? "\n" : "");
        render_ctx ctx = {.body = &body};
        size_t buttons = foreach_button(markup, render_button, &ctx);
        render_url_buttons(markup, &body);
        render_reply_keyboard(markup, NULL, &body);
        char *lang = buttons > 0 ? botapi_chat_lang(bot, to) : NULL;
        if (buttons > 0)
            vn_buf_printf(&body, "\n%s", vn_tr(lang, N_("Reply with the number of your choice.")));
        free(lang);
    }
    vn_buf_append(&body, "", 1);
    vn_stanza_add_text_child(m, "body", VN_NS_CLIENT, body.data);
    vn_buf_free(&body);
    if (markup) {
        render_ctx ctx = {.message = m, .message_id = message_id};
        foreach_button(markup, render_button, &ctx);
        render_reply_keyboard(markup, m, NULL);
    }
    if (url) {
        vn_stanza *oob = vn_stanza_add_child(m, "x", NS_OOB);
        vn_stanza_add_text_child(oob, "url", NS_OOB, url);
    }
    if (replace)
        vn_stanza_set_attr(vn_stanza_add_child(m, "replace", NS_CORRECT), "id", replace);
    if (reply_to) {
        vn_stanza *reply = vn_stanza_add_child(m, "reply", NS_REPLY);
        vn_stanza_set_attr(reply, "to", to);
        vn_stanza_set_attr(reply, "id", reply_to);
    }
    vn_stanza_set_attr(vn_stanza_add_child(m, "origin-id", NS_SID), "id", sid);
    route_watched(m, sid, refusal);
    return refusal && refusal->refused ? NULL : vn_strdup(sid);
}

void botapi_xmpp_retract(botapi_bot *bot, const char *to, const char *stanza_id,
                         botapi_refusal *refusal)
{
    char id[40] = "bot-";
    botapi_random_hex(id + 4, 12);
    vn_stanza *m = message_new(bot, to, id);
    char *lang = botapi_chat_lang(bot, to);
    vn_stanza_add_text_child(m, "body", VN_NS_CLIENT,
                             vn_tr(lang, N_("This message was deleted by the bot.")));
    free(lang);
    vn_stanza_set_attr(vn_stanza_add_child(m, "retract", NS_RETRACT), "id", stanza_id);
    vn_stanza *apply = vn_stanza_add_child(m, "apply-to", NS_FASTEN);
    vn_stanza_set_attr(apply, "id", stanza_id);
    vn_stanza_add_child(apply, "retract", NS_RETRACT_0);
    vn_stanza_set_attr(vn_stanza_add_child(m, "fallback", NS_FALLBACK), "for", NS_RETRACT);
    vn_stanza_add_child(m, "store", NS_HINTS);
    route_watched(m, id, refusal);
}

void botapi_xmpp_notice(botapi_bot *bot, const char *to, const char *text)
{
    char id[40] = "bot-";
    botapi_random_hex(id + 4, 12);
    vn_stanza *m = message_new(bot, to, id);
    vn_stanza_add_text_child(m, "body", VN_NS_CLIENT, text);
    vn_route(m);
}

void botapi_xmpp_composing(botapi_bot *bot, const char *to)
{
    char id[40] = "bot-";
    botapi_random_hex(id + 4, 12);
    vn_stanza *m = message_new(bot, to, id);
    vn_stanza_add_child(m, "composing", NS_CHATSTATES);
    vn_stanza_add_child(m, "no-store", NS_HINTS);
    vn_route(m);
}

/* ---- from users ---- */

/* A XEP-0308 correction of a message the bot has: an edited_message. */
static bool correction_from_user(botapi_bot *bot, const vn_stanza *st, const char *user,
                                 const char *text)
{
    const char *original = vn_stanza_attr(vn_stanza_child(st, "replace", NS_CORRECT), "id");
    int64_t message_id = original ? botapi_chat_message_by_stanza(bot, user, original) : 0;
    char *sid = NULL;
    json_t *message = message_id ? botapi_chat_message_get(bot, user, message_id, &sid) : NULL;
    if (!message || !json_is_string(json_object_get(message, "text"))) {
        json_decref(message);
        free(sid);
        return false;
    }
    json_object_set_new(message, "text", json_string(text));
    json_object_set_new(message, "edit_date", json_integer(vn_now_us() / 1000000));
    botapi_chat_message_put(bot, user, message_id, sid, message);
    free(sid);
    botapi_update_push(bot, BOTAPI_UPDATE_EDITED_MESSAGE, "edited_message", message);
    return true;
}

typedef struct find_ctx {
    size_t wanted;
    json_t *button;
} find_ctx;

static void find_button(json_t *button, size_t number, void *ud)
{
    find_ctx *ctx = ud;
    if (number == ctx->wanted)
        ctx->button = button;
}

/* Button number of message_id in the chat with user pressed: queue the
 * callback_query. False if there is no such button. */
static bool callback_query(botapi_bot *bot, const char *user, const char *lang, int64_t message_id,
                           size_t number)
{
    json_t *message = message_id > 0 ? botapi_chat_message_get(bot, user, message_id, NULL) : NULL;
    find_ctx ctx = {.wanted = number};
    if (message)
        foreach_button(json_object_get(message, "reply_markup"), find_button, &ctx);
    if (!ctx.button) {
        json_decref(message);
        return false;
    }
    int64_t user_id = botapi_id_of(vn_server_store(), bot->domain, user);
    char id[80], instance[32];
    int n = snprintf(id, sizeof id, "%" PRId64 "-", user_id);
    botapi_random_hex(id + n, 8);
    snprintf(instance, sizeof instance, "%" PRId64, (bot->id * 31) ^ user_id);
    json_t *query = json_pack(
        "{s:s, s:o, s:O, s:s, s:O}", "id", id, "from", botapi_user_json(bot, user, lang), "message",
        message, "chat_instance", instance, "data", json_object_get(ctx.button, "callback_data"));
    json_decref(message);
    botapi_update_push(bot, BOTAPI_UPDATE_CALLBACK_QUERY, "callback_query", query);
    return true;
}

/* A text that is only a number, 1 to 99. */
static size_t choice_number(const char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    char *end;
    long n = strtol(text, &end, 10);
    if (end == text || n < 1 || n > 99)
        return 0;
    while (isspace((unsigned char)*end) || *end == '.')
        end++;
    return *end ? 0 : (size_t)n;
}

/* UTF-16 code units of a UTF-8 string's first len bytes (Telegram's
 * entity offsets and lengths count those). */
static size_t utf16_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80)
            n += c >= 0xF0 ? 2 : 1;
    }
    return n;
}

static void message_from_user(botapi_bot *bot, const vn_stanza *st, const char *user)
{
    const char *lang = vn_stanza_attr(st, "xml:lang");
    const vn_stanza *action = vn_stanza_child(st, "action-selected", NS_QR);
    const char *text = vn_stanza_child_text(st, "body", NULL);
    const vn_stanza *oob = vn_stanza_child(st, "x", NS_OOB);
    const char *url = oob ? vn_stanza_child_text(oob, "url", NULL) : NULL;

    botapi_chat_started(bot, user, lang);
    if (action) {
        const char *id = vn_stanza_attr(action, "id");
        int64_t message_id = 0;
        size_t number = 0;
        if (id && sscanf(id, "%" SCNd64 ".%zu", &message_id, &number) == 2 &&
            callback_query(bot, user, lang, message_id, number))
            return;
    }
    if (text && !url && choice_number(text) &&
        callback_query(bot, user, lang, botapi_chat_keyboard_message(bot, user),
                       choice_number(text)))
        return;
    if (!text && !url)
        return; /* chat states, receipts, markers: nothing for the bot */
    if (text && vn_stanza_child(st, "replace", NS_CORRECT) &&
        correction_from_user(bot, st, user, text))
        return;

    int64_t message_id = botapi_chat_next_message_id(bot, user);
    json_t *message =
        json_pack("{s:I, s:o, s:o, s:I}", "message_id", (json_int_t)message_id, "from",
                  botapi_user_json(bot, user, lang), "chat", botapi_chat_json(bot, user), "date",
                  (json_int_t)(vn_now_us() / 1000000));
    if (url && (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0)) {
        const char *slash = strrchr(url, '/');
        json_t *file = botapi_file_remote(bot, url, slash && slash[1] ? slash + 1 : "file");
        if (file)
            json_object_set_new(message, "document", file);
        if (text && strcmp(text, url) != 0)
            json_object_set_new(message, "caption", json_string(text));
    } else if (text) {
        json_object_set_new(message, "text", json_string(text));
        if (text[0] == '/') {
            size_t len = strcspn(text, " \t\n");
            json_object_set_new(message, "entities",
                                json_pack("[{s:i, s:I, s:s}]", "offset", 0, "length",
                                          (json_int_t)utf16_length(text, len), "type",
                                          "bot_command"));
        }
    }
    const char *origin = vn_stanza_attr(vn_stanza_child(st, "origin-id", NS_SID), "id");
    const char *sid = vn_stanza_attr(st, "id") ? vn_stanza_attr(st, "id") : origin;
    botapi_chat_message_put(bot, user, message_id, sid ? sid : "", message);
    botapi_update_push(bot, BOTAPI_UPDATE_MESSAGE, "message", message);
}

static void presence_to_bot(botapi_bot *bot, const vn_stanza *st, const vn_jid *from)
{
    const char *type = vn_stanza_attr(st, "type");
    vn_stanza *reply = vn_stanza_new("presence", VN_NS_CLIENT);
    vn_stanza_set_attr(reply, "from", bot->key);
    vn_stanza_set_attr(reply, "to", from->bare);
    if (type && strcmp(type, "subscribe") == 0) {
        botapi_chat_started(bot, from->bare, NULL); /* added to contacts: started */
        vn_stanza_set_attr(reply, "type", "subscribed");
        vn_route(vn_stanza_copy(reply));
        vn_stanza_set_attr(reply, "type", NULL);
    } else if (type && strcmp(type, "unsubscribe") == 0) {
        vn_stanza_set_attr(reply, "type", "unsubscribed");
    } else if (!type || strcmp(type, "probe") != 0) {
        vn_stanza_free(reply); /* availability, errors, subscribed...: nothing to say */
        return;
    }
    vn_route(reply);
}

static void iq_to_bot(botapi_bot *bot, const vn_stanza *st, const char *name)
{
    const char *type = vn_stanza_attr(st, "type");
    vn_stanza *payload = vn_stanza_first_element(st);
    if (bot && type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0)) {
        botapi_profile_answer(st);
        return;
    }
    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return;
    if (strcmp(type, "get") == 0 && payload && vn_stanza_is(payload, "query", NS_DISCO_INFO)) {
        vn_stanza *result = vn_stanza_iq_result(st);
        vn_stanza *query = vn_stanza_add_child(result, "query", NS_DISCO_INFO);
        vn_stanza *identity = vn_stanza_add_child(query, "identity", NS_DISCO_INFO);
        vn_stanza_set_attr(identity, "category", bot ? "client" : "component");
        vn_stanza_set_attr(identity, "type", bot ? "bot" : "generic");
        vn_stanza_set_attr(identity, "name", name);
        static const char *const features[] = {NS_DISCO_INFO, NS_PING,    NS_OOB,
                                               NS_CORRECT,    NS_RETRACT, NS_QR};
        for (size_t i = 0; i < sizeof features / sizeof *features; i++)
            vn_stanza_set_attr(vn_stanza_add_child(query, "feature", NS_DISCO_INFO), "var",
                               features[i]);
        vn_route(result);
    } else if (strcmp(type, "get") == 0 && payload && vn_stanza_is(payload, "ping", NS_PING)) {
        vn_route(vn_stanza_iq_result(st));
    } else {
        vn_route_error(st, "cancel", "service-unavailable", NULL);
    }
}

static vn_hook_result route_to_bots(vn_event *ev, void *ud)
{
    const char *host = botapi_host_of_domain(ev->to->domain);
    if (!host)
        return VN_PASS;
    const char *name = vn_stanza_name(ev->stanza);
    botapi_bot *bot = ev->to->local ? botapi_bot_find(ev->to->bare) : NULL;
    if (ev->to->local && !bot) {
        if (strcmp(name, "presence") != 0)
            vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
    } else if (strcmp(name, "iq") == 0) {
        iq_to_bot(bot, ev->stanza,
                  bot ? bot->username : vn_tr(vn_stanza_attr(ev->stanza, "xml:lang"), N_("Bots")));
    } else if (bot && strcmp(name, "presence") == 0) {
        presence_to_bot(bot, ev->stanza, ev->from);
    } else if (bot && strcmp(name, "message") == 0) {
        const char *type = vn_stanza_attr(ev->stanza, "type");
        if (!type || strcmp(type, "chat") == 0 || strcmp(type, "normal") == 0)
            message_from_user(bot, ev->stanza, ev->from->bare);
        else if (strcmp(type, "error") == 0)
            bounce_seen(ev->stanza);
    } else if (strcmp(name, "message") == 0) {
        vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
    }
    return VN_HANDLED;
}

void botapi_xmpp_start(void)
{
    const char *const *hosts = vn_local_hosts();
    for (size_t i = 0; hosts[i]; i++) {
        const char *domain = botapi_domain_of_host(hosts[i]);
        if (domain)
            vn_disco_add_item(hosts[i], domain, N_("Bots"));
    }
    vn_hook_add("route/remote", ROUTE_PRIORITY, route_to_bots, NULL);
}

void botapi_xmpp_stop(void)
{
    vn_hook_remove("route/remote", route_to_bots, NULL);
    const char *const *hosts = vn_local_hosts();
    for (size_t i = 0; hosts[i]; i++)
        if (botapi_domain_of_host(hosts[i]))
            vn_disco_remove_item(hosts[i], botapi_domain_of_host(hosts[i]));
}
