/*
 * botapi_store.h - what the Bot API keeps in the store about bots and ids,
 * shared by mod_services and vestnikctl (which writes it directly when no
 * server runs, else asks the server over the admin socket).
 *
 * Everything lives under the store host of the bot domain (bots.<host>),
 * apart from any account's data:
 *   (domain, "", "botapi_bots", USERNAME)  "ID SECRET-SHA256-HEX CREATED-US"
 *   (domain, "", "botapi_ids", "j:" JID)   "ID"   the JID -> id map
 *   (domain, "", "botapi_ids", "i:" ID)    "JID"  and back
 *   (domain, USERNAME, ...)                the bot's own state (updates,
 *                                          chats, files), dropped with it
 * A token is "ID:SECRET" as Telegram's are; only the SHA-256 of SECRET is
 * kept. Ids are stable: derived from a hash of the JID (below 2^52, so
 * JavaScript numbers hold them), moved on past a collision, and never
 * reassigned.
 *
 * Plain store calls, no server needed: usable on the loop and in vestnikctl.
 */
#ifndef VESTNIK_BOTAPI_STORE_H
#define VESTNIK_BOTAPI_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <vestnik/store.h>

#define BOTAPI_SECRET_HASH_HEX 64

typedef struct botapi_bot_record {
    char username[256];
    int64_t id;
    char secret_hash[BOTAPI_SECRET_HASH_HEX + 1];
    int64_t created_us;
} botapi_bot_record;

/* The id of a bare JID (allocated on first use), or -1 on a store error. */
int64_t botapi_id_of(vn_store *s, const char *domain, const char *jid);
/* The JID with that id (malloc'ed), or NULL if none. */
char *botapi_jid_of(vn_store *s, const char *domain, int64_t id);

/* A bot username: 5 to 32 of [a-z0-9_], ending in "bot" (Telegram's rule,
 * lower-cased as a JID localpart is). */
bool botapi_username_valid(const char *username);
/* Creates a bot and its token (malloc'ed into *token): 0, 1 if the
 * username is taken, -1 on an invalid name or a store error. */
int botapi_bot_add(vn_store *s, const char *domain, const char *username, char **token);
/* 0, 1 if no such bot, -1 on a store error. Forgets its updates, chats and
 * files too. */
int botapi_bot_remove(vn_store *s, const char *domain, const char *username);
/* VN_STORE_OK, VN_STORE_NOT_FOUND or VN_STORE_ERROR. */
int botapi_bot_get(vn_store *s, const char *domain, const char *username, botapi_bot_record *out);
typedef bool (*botapi_bot_cb)(const botapi_bot_record *bot, void *ud);
int botapi_bot_foreach(vn_store *s, const char *domain, botapi_bot_cb cb, void *ud);
/* The bot a token belongs to, looked for in domain: true and *out if the
 * token is one of its bots' (compared in constant time). */
bool botapi_bot_by_token(vn_store *s, const char *domain, const char *token,
                         botapi_bot_record *out);

#endif
