/*
 * botapi.h - the internal interface between the files of the Bot API.
 *
 * The Bot API serves the Telegram Bot API's methods and JSON under
 * /bot<token>/<method> on the http and https listeners, so that bots
 * written with the usual frameworks (grammY, telegraf,
 * node-telegram-bot-api) run against vestnik by changing their API root.
 * A bot is the XMPP entity <username>@<bot_domain_prefix>.<host>; its
 * chats are the users' bare JIDs, with integer ids from the stable map of
 * botapi_ids.c. One concern per file:
 *   botapi.c          lifetime, config, the routes, tokens, rate limits,
 *                     the admin socket's `bot` commands
 *   botapi_request.c  request bodies: JSON, urlencoded, multipart
 *   botapi_methods.c  the methods
 *   botapi_format.c   parse_mode: Telegram's HTML and Markdown as XEP-0393
 *   botapi_updates.c  the update queue (store archive) and long polling
 *   botapi_webhook.c  webhooks: HTTPS POSTs on a worker, retries
 *   botapi_chats.c    per-chat state: started, message ids, keyboards
 *   botapi_xmpp.c     the XMPP side: stanzas to and from bots
 *   botapi_files.c    files: stored, served, fetched from users' URLs
 *   botapi_profile.c  setMyProfile: the bot's entry in the services directory
 *   botapi_http.c     outgoing HTTP requests (libcurl, on workers)
 *   botapi_ids.c, botapi_tokens.c  the store layout (botapi_store.h)
 * Everything runs on the loop thread, except the work functions of
 * botapi_webhook.c and botapi_files.c.
 */
#ifndef VESTNIK_BOTAPI_H
#define VESTNIK_BOTAPI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include <uthash.h>
#include <vestnik/http.h>

#include "botapi_store.h"
#include "services.h"

/* The module's Bot API configuration (bot_* keys). */
typedef struct botapi_config {
    long long max_request_size;
    long long max_file_size;
    long long max_text_length;
    long long max_pending_updates;
    long long max_poll_timeout;
    long long requests_per_second;
    long long webhook_timeout;
    long long webhook_max_retry_delay;
    bool webhook_allow_http;
    bool file_fetch_private;
    const char *ca_file;  /* "" for the system's */
    const char *base_url; /* files' public URLs; "" for the listener's */
} botapi_config;
extern botapi_config botapi_conf;

typedef struct botapi_poll botapi_poll;
typedef struct botapi_webhook botapi_webhook;

/* A bot in memory, loaded when first used and kept while the module runs. */
typedef struct botapi_bot {
    char *key; /* jid: username@domain, the hash key */
    char *username;
    char *domain; /* the bot domain (store host) */
    char *host;   /* the local host it belongs to */
    int64_t id;
    unsigned allowed_updates; /* BOTAPI_UPDATE_* bits */
    size_t pending;           /* updates in the queue */
    botapi_poll *polls;       /* getUpdates waiting */
    botapi_webhook *webhook;  /* NULL: none set */
    double rate_tokens;
    int64_t rate_refill_us;
    unsigned calls; /* botapi_call under way: a removed bot waits for them */
    bool retired;   /* removed (vestnikctl bot remove); freed with its last call */
    UT_hash_handle hh;
} botapi_bot;

enum {
    BOTAPI_UPDATE_MESSAGE = 1 << 0,
    BOTAPI_UPDATE_EDITED_MESSAGE = 1 << 1,
    BOTAPI_UPDATE_CALLBACK_QUERY = 1 << 2,
    BOTAPI_UPDATE_ALL = (1 << 3) - 1,
};

/* The bot with that JID (loaded from the store), or NULL if no such bot. */
botapi_bot *botapi_bot_find(const char *jid);
/* Forget a removed bot: its waiting polls end with 401. */
void botapi_bot_forget(const char *jid);
/* The bot domain of a local host (bots.<host>), or NULL. */
const char *botapi_domain_of_host(const char *host);
/* The local host of a bot domain, or NULL if it is none. */
const char *botapi_host_of_domain(const char *domain);

/* ---- one method call ---- */

/* A file part of a multipart body. */
typedef struct botapi_upload {
    char *field;
    char *filename; /* NULL: none given */
    char *content_type;
    char *data;
    size_t len;
    struct botapi_upload *next;
} botapi_upload;

typedef struct botapi_call {
    botapi_bot *bot;
    char *method;           /* as requested */
    json_t *params;         /* object: query string and body parameters */
    botapi_upload *uploads; /* multipart file parts */
    vn_http_request *req;   /* NULL: from a webhook reply (no answer) */
    bool waiting;           /* a long poll or a file fetch is pending */
} botapi_call;

/* Fill call->params and call->uploads from a request's query string (or
 * NULL), Content-Type (or NULL) and body: NULL, or the error description
 * (400). */
const char *botapi_request_parse(botapi_call *call, const char *query, const char *content_type,
                                 const char *body, size_t len);
botapi_call *botapi_call_new(botapi_bot *bot, const char *method);
void botapi_call_free(botapi_call *call);

/* Answer a call (its HTTP request if any) and free it: result is stolen. */
void botapi_call_ok(botapi_call *call, json_t *result);
/* description: Telegram's text, e.g. "Bad Request: chat not found". */
void botapi_call_fail(botapi_call *call, int code, const char *description);
/* 429 Too Many Requests with parameters.retry_after and Retry-After. */
void botapi_call_fail_429(botapi_call *call, int retry_after);

/* Parameters: present and of the right shape, else false. */
bool botapi_param_int(const botapi_call *call, const char *name, int64_t *out);
const char *botapi_param_string(const botapi_call *call, const char *name);
bool botapi_param_bool(const botapi_call *call, const char *name);
/* An object or array, given as JSON or as a JSON text; borrowed. */
json_t *botapi_param_json(const botapi_call *call, const char *name);
const botapi_upload *botapi_param_upload(const botapi_call *call, const char *name);

/* text formatted per parse_mode ("HTML", "MarkdownV2", "Markdown"; NULL
 * or "": none) as XEP-0393 styling, into *out (malloc'ed): NULL, or the
 * error description (400) and *out NULL (botapi_format.c). */
const char *botapi_format(const char *text, const char *parse_mode, char **out);

/* Run call->method on call->bot; answers the call now or later. */
void botapi_method_run(botapi_call *call);

/* ---- updates (botapi_updates.c) ---- */

void botapi_updates_load(botapi_bot *bot);
/* Queue an update: kind is BOTAPI_UPDATE_*, field its name ("message"),
 * value its object (stolen). Dropped when the bot does not want it. */
void botapi_update_push(botapi_bot *bot, unsigned kind, const char *field, json_t *value);
/* getUpdates: answered now, or when an update arrives or the timeout ends. */
void botapi_updates_get(botapi_call *call);
/* allowed_updates: the BOTAPI_UPDATE_* bits of the kinds named, or every
 * kind for an empty list. */
unsigned botapi_allowed_updates(const json_t *list);
/* Drop every queued update (deleteWebhook/setWebhook drop_pending_updates). */
void botapi_updates_drop(botapi_bot *bot);
/* The oldest queued update as JSON with its update_id, or NULL. */
json_t *botapi_updates_oldest(botapi_bot *bot, uint64_t *id);
void botapi_updates_confirm(botapi_bot *bot, uint64_t id);
/* End a bot's waiting polls (with 409 when a webhook was set, 401 when the
 * bot was removed). */
void botapi_polls_end(botapi_bot *bot, int code, const char *description);
/* The connection of a waiting call went away. */
void botapi_poll_abort(botapi_call *call);

/* ---- webhooks (botapi_webhook.c) ---- */

void botapi_webhook_load(botapi_bot *bot);
void botapi_webhook_set(botapi_call *call);
void botapi_webhook_delete(botapi_call *call);
void botapi_webhook_info(botapi_call *call);
/* An update was queued: deliver it if a webhook is set. */
void botapi_webhook_kick(botapi_bot *bot);
void botapi_webhook_free(botapi_bot *bot);
void botapi_webhooks_start(void);
void botapi_webhooks_stop(void);

/* ---- chats (botapi_chats.c) ---- */

/* Has user (a bare JID) started the bot? The one consent check. */
bool botapi_may_message(botapi_bot *bot, const char *user);
/* user wrote to the bot, in lang (xml:lang, may be NULL). */
void botapi_chat_started(botapi_bot *bot, const char *user, const char *lang);
/* The language user last wrote in (malloc'ed), or NULL. */
char *botapi_chat_lang(botapi_bot *bot, const char *user);
/* The next message id in the chat with user. */
int64_t botapi_chat_next_message_id(botapi_bot *bot, const char *user);
/* A message in a chat as the bot keeps it: its Telegram JSON and the id
 * of its XMPP stanza (for edits and retractions). */
void botapi_chat_message_put(botapi_bot *bot, const char *user, int64_t message_id,
                             const char *stanza_id, const json_t *message);
/* The stored message (new reference) and its stanza id (malloc'ed), or
 * NULL. */
json_t *botapi_chat_message_get(botapi_bot *bot, const char *user, int64_t message_id,
                                char **stanza_id);
void botapi_chat_message_delete(botapi_bot *bot, const char *user, int64_t message_id);
/* The message id of the message with that stanza id (XEP-0308 corrections
 * name the original's), or 0. */
int64_t botapi_chat_message_by_stanza(botapi_bot *bot, const char *user, const char *stanza_id);
/* The last message in the chat that has an inline keyboard; 0 if none. */
int64_t botapi_chat_keyboard_message(botapi_bot *bot, const char *user);
void botapi_chat_set_keyboard_message(botapi_bot *bot, const char *user, int64_t message_id);

/* ---- the XMPP side (botapi_xmpp.c) ---- */

void botapi_xmpp_start(void);
void botapi_xmpp_stop(void);
/* The Telegram user/chat object of a JID (new reference). */
json_t *botapi_user_json(botapi_bot *bot, const char *jid, const char *lang);
json_t *botapi_chat_json(botapi_bot *bot, const char *jid);
json_t *botapi_bot_user_json(const botapi_bot *bot);
/* Why a message from a bot did not go out: the stanza error it met on
 * the way (the platform's consent, rate limit or quota, no such user). */
typedef struct botapi_refusal {
    bool refused;
    char type[16];      /* "cancel", "wait", ... */
    char condition[48]; /* "forbidden", "policy-violation", ... */
} botapi_refusal;

/* Send a message from the bot as message_id of the chat: text (may be
 * NULL), reply_markup (or NULL), an out-of-band URL (or NULL); replace:
 * the stanza id this one corrects (XEP-0308) or NULL; reply_to: the
 * stanza id it answers (XEP-0461) or NULL. Returns the new stanza's id
 * (malloc'ed), or NULL when it was refused on the way (*refusal says why;
 * refusal may be NULL). */
char *botapi_xmpp_send(botapi_bot *bot, const char *to, int64_t message_id, const char *text,
                       const json_t *markup, const char *url, const char *replace,
                       const char *reply_to, botapi_refusal *refusal);
/* XEP-0424 retraction of the bot's stanza id (refusal as above). */
void botapi_xmpp_retract(botapi_bot *bot, const char *to, const char *stanza_id,
                         botapi_refusal *refusal);
/* A text notice from the bot (answerCallbackQuery's text). */
void botapi_xmpp_notice(botapi_bot *bot, const char *to, const char *text);
/* A XEP-0085 <composing/> chat state (sendChatAction). */
void botapi_xmpp_composing(botapi_bot *bot, const char *to);

/* ---- the directory profile (botapi_profile.c) ---- */

/* setMyProfile: answered once the directory answers. */
void botapi_profile_set(botapi_call *call);
/* An iq result or error to a bot: true if it answers a setMyProfile. */
bool botapi_profile_answer(const vn_stanza *iq);
/* The connection of a waiting setMyProfile went away. */
void botapi_profile_abort(botapi_call *call);
void botapi_profiles_stop(void);

/* ---- outgoing HTTP (botapi_http.c) ---- */

typedef struct botapi_fetch {
    /* the request: a POST of json_body, else a GET */
    char *url;
    char *json_body;
    char *secret; /* X-Telegram-Bot-Api-Secret-Token, or NULL */
    char *ca_file;
    bool allow_http;
    bool public_only; /* refuse private addresses (a user's URL) */
    long timeout_s;
    size_t max_response;
    /* the outcome: status 0 and error set when there is no response */
    long status;
    vn_buf response;
    bool too_large;
    bool refused_private;
    char error[256];
} botapi_fetch;

botapi_fetch *botapi_fetch_new(const char *url, const char *json_body, const char *secret,
                               size_t max_response);
/* The request: blocking, on a worker thread. */
void botapi_fetch_run(botapi_fetch *f);
void botapi_fetch_free(botapi_fetch *f);

/* ---- files (botapi_files.c) ---- */

void botapi_files_start(void);
void botapi_files_stop(void);
/* Keep an upload of the call as a file of its bot (written on a worker);
 * then done runs with its file object (a new reference, with "file_id",
 * "file_unique_id", "file_size") and public URL (malloc'ed), both yours,
 * or NULL and NULL on failure. */
typedef void (*botapi_stored_fn)(botapi_call *call, json_t *file, char *url, void *ud);
void botapi_file_store(botapi_call *call, const botapi_upload *up, botapi_stored_fn done, void *ud);
/* A file of the bot given by file_id: its object and public URL, or NULL. */
json_t *botapi_file_lookup(botapi_bot *bot, const char *file_id, char **url);
/* Remember a user's file at url: its object for an update (new ref). */
json_t *botapi_file_remote(botapi_bot *bot, const char *url, const char *name);
/* getFile: answered now or once the file is fetched. */
void botapi_file_get(botapi_call *call);
/* GET /file/bot<token>/<path> for bot; path is the file_path. */
void botapi_file_serve(vn_http_request *req, botapi_bot *bot, const char *path);
/* GET <files route><name>: a public file. */
void botapi_file_serve_public(vn_http_request *req);
/* The two routes' on_writable and on_abort. */
void botapi_file_on_writable(vn_http_request *req);
void botapi_file_on_abort(vn_http_request *req);

/* A random id of n bytes as hex into out (2n+1 bytes). */
void botapi_random_hex(char *out, size_t n);

#endif
