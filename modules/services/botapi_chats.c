/*
 * botapi_chats.c - what a bot's chats remember, in the store under the
 * bot: whether the user started the bot (by writing to it: the consent
 * check, together with the platform's consent.c, where a user may stop or
 * mute a bot the directory lists), the user's language (xml:lang), the
 * chat's message id counter, the last message with an inline keyboard
 * (for a user answering with a number), and each message in the chat, as
 * its Telegram JSON with the id of the XMPP stanza that carried it.
 *
 *   (domain, bot, "botapi_chats", USER-JID)   {"started","lang","next","kb"}
 *   (domain, bot, "botapi_msgs", USER-JID "#" ID)     {"sid","m"}
 *   (domain, bot, "botapi_msgs", USER-JID "@" SID)    {"id"}  (stanza id -> id)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "botapi.h"

#define CHATS_STORE "botapi_chats"
#define MSGS_STORE "botapi_msgs"

static json_t *doc_get(botapi_bot *bot, const char *store, const char *key)
{
    vn_buf buf;
    vn_buf_init(&buf);
    json_t *doc = NULL;
    if (vn_store_get(vn_server_store(), bot->domain, bot->username, store, key, &buf) ==
        VN_STORE_OK)
        doc = json_loadb(buf.data, buf.len, 0, NULL);
    vn_buf_free(&buf);
    return json_is_object(doc) ? doc : (json_decref(doc), NULL);
}

static void doc_put(botapi_bot *bot, const char *store, const char *key, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    if (vn_store_put(vn_server_store(), bot->domain, bot->username, store, key, text,
                     strlen(text)) != VN_STORE_OK)
        vn_log_warn("botapi: cannot store %s of %s", store, bot->key);
    free(text);
}

static json_t *chat_get(botapi_bot *bot, const char *user)
{
    json_t *chat = doc_get(bot, CHATS_STORE, user);
    return chat ? chat : json_object();
}

/* The platform's consent (consent.c) speaks of local accounts: their host
 * and localpart, or false for a user of another server. */
static bool local_account(const char *user, char *host, size_t host_size, char *local,
                          size_t local_size)
{
    const char *at = strchr(user, '@');
    if (!at || (size_t)(at - user) >= local_size || strlen(at + 1) >= host_size ||
        !vn_is_local_host(at + 1))
        return false;
    memcpy(local, user, (size_t)(at - user));
    local[at - user] = '\0';
    strcpy(host, at + 1);
    return true;
}

bool botapi_may_message(botapi_bot *bot, const char *user)
{
    json_t *chat = doc_get(bot, CHATS_STORE, user);
    bool started = chat && json_is_true(json_object_get(chat, "started"));
    json_decref(chat);
    char host[1024], local[1024];
    /* Stopped or muted in "My services", for a bot the directory lists. */
    if (started && local_account(user, host, sizeof host, local, sizeof local))
        started = services_consent_check(bot->key, host, local, false) == NULL;
    return started;
}

void botapi_chat_started(botapi_bot *bot, const char *user, const char *lang)
{
    char host[1024], local[1024];
    if (local_account(user, host, sizeof host, local, sizeof local))
        services_consent_started(bot->key, host, local);
    json_t *chat = chat_get(bot, user);
    const char *old_lang = json_string_value(json_object_get(chat, "lang"));
    bool lang_changed = lang && lang[0] && (!old_lang || strcmp(old_lang, lang) != 0);
    if (!json_is_true(json_object_get(chat, "started")) || lang_changed) {
        json_object_set_new(chat, "started", json_true());
        if (lang_changed)
            json_object_set_new(chat, "lang", json_string(lang));
        doc_put(bot, CHATS_STORE, user, chat);
    }
    json_decref(chat);
}

char *botapi_chat_lang(botapi_bot *bot, const char *user)
{
    json_t *chat = chat_get(bot, user);
    char *lang = vn_strdup(json_string_value(json_object_get(chat, "lang")));
    json_decref(chat);
    return lang;
}

int64_t botapi_chat_next_message_id(botapi_bot *bot, const char *user)
{
    json_t *chat = chat_get(bot, user);
    json_int_t next = json_integer_value(json_object_get(chat, "next")) + 1;
    json_object_set_new(chat, "next", json_integer(next));
    doc_put(bot, CHATS_STORE, user, chat);
    json_decref(chat);
    return next;
}

int64_t botapi_chat_keyboard_message(botapi_bot *bot, const char *user)
{
    json_t *chat = chat_get(bot, user);
    int64_t kb = json_integer_value(json_object_get(chat, "kb"));
    json_decref(chat);
    return kb;
}

void botapi_chat_set_keyboard_message(botapi_bot *bot, const char *user, int64_t message_id)
{
    json_t *chat = chat_get(bot, user);
    json_object_set_new(chat, "kb", json_integer(message_id));
    doc_put(bot, CHATS_STORE, user, chat);
    json_decref(chat);
}

static char *message_key(const char *user, int64_t message_id)
{
    return vn_asprintf("%s#%" PRId64, user, message_id);
}

/* The key of the index from a stanza id to the message id. */
static char *stanza_key(const char *user, const char *stanza_id)
{
    return strlen(stanza_id) <= 128 ? vn_asprintf("%s@%s", user, stanza_id) : NULL;
}

void botapi_chat_message_put(botapi_bot *bot, const char *user, int64_t message_id,
                             const char *stanza_id, const json_t *message)
{
    char *key = message_key(user, message_id);
    json_t *doc = json_pack("{s:s, s:O}", "sid", stanza_id, "m", message);
    doc_put(bot, MSGS_STORE, key, doc);
    json_decref(doc);
    free(key);
    char *index_key = stanza_id[0] ? stanza_key(user, stanza_id) : NULL;
    if (index_key) {
        json_t *index = json_pack("{s:I}", "id", (json_int_t)message_id);
        doc_put(bot, MSGS_STORE, index_key, index);
        json_decref(index);
        free(index_key);
    }
}

int64_t botapi_chat_message_by_stanza(botapi_bot *bot, const char *user, const char *stanza_id)
{
    char *key = stanza_id ? stanza_key(user, stanza_id) : NULL;
    json_t *index = key ? doc_get(bot, MSGS_STORE, key) : NULL;
    int64_t id = json_integer_value(json_object_get(index, "id"));
    json_decref(index);
    free(key);
    return id;
}

json_t *botapi_chat_message_get(botapi_bot *bot, const char *user, int64_t message_id,
                                char **stanza_id)
{
    char *key = message_key(user, message_id);
    json_t *doc = doc_get(bot, MSGS_STORE, key);
    free(key);
    json_t *message = doc ? json_object_get(doc, "m") : NULL;
    const char *sid = doc ? json_string_value(json_object_get(doc, "sid")) : NULL;
    if (!json_is_object(message) || !sid) {
        json_decref(doc);
        return NULL;
    }
    json_incref(message);
    if (stanza_id)
        *stanza_id = vn_strdup(sid);
    json_decref(doc);
    return message;
}

void botapi_chat_message_delete(botapi_bot *bot, const char *user, int64_t message_id)
{
    char *sid = NULL;
    json_t *message = botapi_chat_message_get(bot, user, message_id, &sid);
    char *index_key = sid && sid[0] ? stanza_key(user, sid) : NULL;
    if (index_key)
        vn_store_delete(vn_server_store(), bot->domain, bot->username, MSGS_STORE, index_key);
    char *key = message_key(user, message_id);
    vn_store_delete(vn_server_store(), bot->domain, bot->username, MSGS_STORE, key);
    json_decref(message);
    free(index_key);
    free(sid);
    free(key);
}
