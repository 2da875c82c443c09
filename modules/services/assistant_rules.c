/*
 * assistant_rules.c - the shipped answering engine: keywords and rules,
 * no network, no model. A question and the knowledge base's keywords are
 * case-folded (text.c); a keyword (a stem, one or more words) matches
 * where the question has words starting with each of its words in turn.
 * The entry whose keywords cover the most words of the question wins; a
 * tie goes to the entry listed first; no match at all is "not understood".
 * Keywords of every language count, so a Russian question in a client set
 * to English is understood too.
 */
#include <stdlib.h>
#include <string.h>

#include "assistant.h"
#include "platform.h"

typedef struct rules {
    const kb *k;
} rules;

static void *rules_open(const kb *k)
{
    rules *r = vn_alloc(sizeof *r);
    r->k = k;
    return r;
}

static void rules_close(void *state)
{
    free(state);
}

/* How many words a keyword matched in folded question (0: none). */
static size_t keyword_score(const char *question, const char *keyword)
{
    char *folded = text_fold(keyword);
    size_t words = 0;
    bool all = true;
    for (char *save = NULL, *w = strtok_r(folded, " ", &save); w && all;
         w = strtok_r(NULL, " ", &save)) {
        all = text_has_word_prefix(question, w);
        words++;
    }
    free(folded);
    return all ? words : 0;
}

static size_t entry_score(const kb_entry *e, const char *question)
{
    size_t score = 0;
    for (size_t l = 0; l < e->keywords.n; l++)
        for (char **kw = e->keywords.items[l]; *kw; kw++)
            score += keyword_score(question, *kw);
    return score;
}

static void rules_ask(void *state, const char *lang, const char *question, assistant_answer_cb done,
                      void *ud)
{
    const rules *r = state;
    char *folded = text_fold(question);
    assistant_answer answer = {NULL};
    size_t best = 0;

    for (size_t i = 0; i < r->k->n; i++) {
        size_t score = entry_score(&r->k->entries[i], folded);
        if (score > best) {
            best = score;
            answer.entry = &r->k->entries[i];
        }
    }
    free(folded);
    done(&answer, ud);
}

const assistant_engine assistant_rules_engine = {
    .name = "rules",
    .open = rules_open,
    .ask = rules_ask,
    .close = rules_close,
};
