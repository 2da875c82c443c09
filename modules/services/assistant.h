/*
 * assistant.h - the public-services assistant: a chat partner at
 * assistant@services.<host> that answers questions in plain language
 * ("passport replacement", "зарегистрировать машину") with the
 * requirements and steps from a knowledge base the operator edits (YAML,
 * examples/assistant/knowledge.yaml), asks the user's documents wallet
 * (modules/credentials, xeps/documents.md) for what the service needs, and
 * delivers the result.
 *
 *   assistant.c        the dialogue: messages in and out, the documents
 *                      request and its presentation
 *   assistant_kb.c     the knowledge base: loaded from YAML with libyaml
 *   assistant_rules.c  the shipped engine: keywords and rules, offline
 *
 * Which entry answers a question is the engine's business, behind the
 * function table below, so that an operator can plug in another (a
 * language-model service asked over HTTP, say) without touching the
 * dialogue: only the choice of entry is delegated; every text the user
 * reads comes from the knowledge base or the catalogs.
 */
#ifndef VESTNIK_SERVICES_ASSISTANT_H
#define VESTNIK_SERVICES_ASSISTANT_H

#include <stdbool.h>
#include <stddef.h>

#include "services.h"

/* ---- the knowledge base ---- */

/* A text in several languages: parallel arrays, lang tags like "en", "ru". */
typedef struct kb_text {
    char **langs;
    char **texts;
    size_t n;
} kb_text;

/* A list in several languages (requirements, steps, keywords). */
typedef struct kb_list {
    char **langs;
    char ***items; /* items[i] is NULL-terminated, for langs[i] */
    size_t n;
} kb_list;

/* A document the service needs, asked from the user's wallet. */
typedef struct kb_document {
    char *type;    /* a credential type of xeps/documents.md ("identity") */
    char **claims; /* NULL-terminated */
    kb_text purpose;
} kb_document;

typedef struct kb_entry {
    char *id;
    kb_text title;
    kb_list keywords;
    kb_list requirements;
    kb_list steps;
    kb_document *documents;
    size_t n_documents;
    kb_text result; /* told once the documents were checked */
} kb_entry;

typedef struct kb {
    kb_entry *entries;
    size_t n;
} kb;

/* NULL on error, with *error (malloc'ed) saying what and at which line. */
kb *kb_load(const char *path, char **error);
void kb_free(kb *k);
/* The text in lang, else in English, else the first; "" if none. */
const char *kb_text_in(const kb_text *t, const char *lang);
/* The list in lang, else English, else the first; NULL if none. */
char *const *kb_list_in(const kb_list *l, const char *lang);

/* ---- the answering engine ---- */

typedef struct assistant_answer {
    const kb_entry *entry; /* NULL: the question was not understood */
} assistant_answer;
typedef void (*assistant_answer_cb)(const assistant_answer *answer, void *ud);

typedef struct assistant_engine {
    const char *name; /* as assistant_engine in the configuration */
    /* Prepare to answer from k (which outlives the state); NULL on error. */
    void *(*open)(const kb *k);
    /* Choose the entry for question (in lang, an xml:lang tag); done runs
     * on the loop thread, now or later, exactly once, unless close comes
     * first (then never). */
    void (*ask)(void *state, const char *lang, const char *question, assistant_answer_cb done,
                void *ud);
    void (*close)(void *state);
} assistant_engine;

extern const assistant_engine assistant_rules_engine;

/* ---- for the directory ---- */

/* The assistant's JID on host, or NULL when it is off. */
const char *assistant_jid(const char *host);
/* Its name, a msgid. */
const char *assistant_name(void);
/* A stanza for a JID at the directory's domain: handled (true) if it is
 * the assistant's. */
bool assistant_route(vn_event *ev, const char *host);

#endif
