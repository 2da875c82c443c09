/*
 * chat.c - the wallet as a plain chat with documents.<host>, for clients
 * that render no ad-hoc commands (Conversations, Dino, Monal): every
 * command of wallet_adhoc.c, presentation_adhoc.c and consent_adhoc.c as a
 * word, numbers for choices, "yes"/"no" for answers (xeps/documents.md
 * §11).
 *
 * The one state kept between messages is a deletion waiting for "yes";
 * otherwise "yes", "no" and numbers answer the oldest request or
 * signature waiting, as the message announcing it said.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <vestnik/i18n.h>

#include "mod_credentials.h"

#define MAX_WORDS 64
#define HISTORY_LINES 20

typedef struct chat_state {
    char *key;       /* user@host */
    char *delete_id; /* the credential a "yes" deletes */
    UT_hash_handle hh;
} chat_state;

static chat_state *states;

static chat_state *state_of(const char *host, const char *user, bool create)
{
    char *key = vn_asprintf("%s@%s", user, host);
    chat_state *st = NULL;
    HASH_FIND_STR(states, key, st);
    if (!st && create) {
        st = vn_alloc(sizeof *st);
        st->key = key;
        HASH_ADD_KEYPTR(hh, states, st->key, strlen(st->key), st);
        return st;
    }
    free(key);
    return st;
}

static void state_drop(chat_state *st)
{
    if (!st)
        return;
    HASH_DEL(states, st);
    free(st->key);
    free(st->delete_id);
    free(st);
}

void chat_forget_all(void)
{
    chat_state *st, *tmp;
    HASH_ITER(hh, states, st, tmp)
    {
        state_drop(st);
    }
}

typedef struct chat_ctx {
    const char *host, *user, *to, *lang;
} chat_ctx;

static void say(const chat_ctx *c, const char *text)
{
    cred_send_payload(c->host, c->to, NULL, text);
}

static void help(const chat_ctx *c)
{
    /* TRANSLATORS: keep the command words (list, show, qr, delete, history,
     * who, requests) as they are: the chat understands those; "yes" and
     * "no" are understood in the reader's language too. */
    say(c, vn_tr(c->lang, N_("Your documents. Write:\n"
                             "  list: your documents, numbered\n"
                             "  show N: document number N\n"
                             "  qr N: show document N in person, as a QR code\n"
                             "  delete N: delete document N\n"
                             "  history: everything done with your documents\n"
                             "  who: who saw what\n"
                             "  requests: what waits for your answer\n"
                             "  yes, no or numbers: answer the request waiting")));
}

static void list(const chat_ctx *c)
{
    json_t *all = wallet_list(c->host, c->user);
    if (json_array_size(all) == 0) {
        say(c, vn_tr(c->lang, N_("You have no documents yet.")));
        json_decref(all);
        return;
    }
    vn_buf out;
    vn_buf_init(&out);
    vn_buf_append_str(&out, vn_tr(c->lang, N_("Your documents:")));
    int64_t now = vn_now_us() / 1000000;
    size_t i;
    const json_t *cr;
    json_array_foreach(all, i, cr)
    {
        char *t = wallet_title(cr, c->lang);
        vn_buf_printf(&out, "\n%zu. %s (%s)", i + 1, t,
                      vn_tr(c->lang, wallet_status_label(wallet_status(cr, now))));
        free(t);
    }
    vn_buf_append_str(&out, "\n");
    vn_buf_append_str(&out, vn_tr(c->lang, N_("Write \"show N\" to see one.")));
    say(c, out.data);
    vn_buf_free(&out);
    json_decref(all);
}

static json_t *nth_or_say(const chat_ctx *c, const char *word)
{
    char *end = NULL;
    long n = word ? strtol(word, &end, 10) : 0;
    json_t *cr = n > 0 && end && !*end ? wallet_nth(c->host, c->user, (size_t)n) : NULL;
    if (!cr)
        say(c, vn_tr(c->lang, N_("No such document. Write \"list\" to see their numbers.")));
    return cr;
}

static void show(const chat_ctx *c, const char *word)
{
    json_t *cr = nth_or_say(c, word);
    if (!cr)
        return;
    vn_buf out;
    vn_buf_init(&out);
    char *t = wallet_title(cr, c->lang);
    vn_buf_printf(&out, "%s (%s)", t,
                  vn_tr(c->lang, wallet_status_label(wallet_status(cr, vn_now_us() / 1000000))));
    free(t);
    json_t *paths = NULL;
    json_t *claims = wallet_claims(cr, &paths);
    size_t i;
    const json_t *p;
    json_array_foreach(paths, i, p)
    {
        char *v = presentation_value_text(json_object_get(claims, json_string_value(p)));
        vn_buf_printf(&out, "\n  %zu. %s: %s", i + 1,
                      vn_tr(c->lang, cred_claim_label(json_string_value(p))), v);
        free(v);
    }
    say(c, out.data);
    vn_buf_free(&out);
    json_decref(paths);
    json_decref(claims);
    json_decref(cr);
}

static void qr(const chat_ctx *c, char **words, size_t n)
{
    json_t *cr = nth_or_say(c, n > 1 ? words[1] : NULL);
    if (!cr)
        return;
    json_t *paths = NULL;
    json_decref(wallet_claims(cr, &paths));
    if (n < 3) {
        show(c, words[1]);
        char *text = vn_asprintf(vn_tr(c->lang, N_("Write \"qr %s\" and the numbers of what to "
                                                   "show, e.g. \"qr %s 1 3\".")),
                                 words[1], words[1]);
        say(c, text);
        free(text);
    } else {
        const char **chosen = vn_alloc(n * sizeof *chosen);
        size_t k = 0;
        bool bad = false;
        for (size_t i = 2; i < n; i++) {
            char *end = NULL;
            long idx = strtol(words[i], &end, 10);
            if (idx < 1 || (size_t)idx > json_array_size(paths) || *end)
                bad = true;
            else
                chosen[k++] = json_string_value(json_array_get(paths, (size_t)idx - 1));
        }
        const char *err =
            bad ? N_("Those numbers are not in the list of the document.")
                : wallet_send_qr(c->host, c->user, c->to, cr, chosen, k, c->lang, NULL, NULL);
        if (err)
            say(c, vn_tr(c->lang, err));
        free(chosen);
    }
    json_decref(paths);
    json_decref(cr);
}

static void ask_delete(const chat_ctx *c, const char *word)
{
    json_t *cr = nth_or_say(c, word);
    if (!cr)
        return;
    chat_state *st = state_of(c->host, c->user, true);
    free(st->delete_id);
    st->delete_id = vn_strdup(json_string_value(json_object_get(cr, "id")));
    char *t = wallet_title(cr, c->lang);
    char *text = vn_asprintf(vn_tr(c->lang, N_("Delete %s from your wallet? Reply \"yes\" or "
                                               "\"no\".")),
                             t);
    say(c, text);
    free(text);
    free(t);
    json_decref(cr);
}

static void log_lines(const chat_ctx *c, bool who_saw)
{
    char *text = audit_text(c->host, c->user, who_saw, HISTORY_LINES, c->lang);
    if (!*text)
        say(c, vn_tr(c->lang, who_saw ? N_("Nobody has seen anything of your documents.")
                                      : N_("Nothing happened with your documents yet.")));
    else
        say(c, text);
    free(text);
}

static void requests(const chat_ctx *c)
{
    json_t *item = pending_oldest(c->host, c->user, NULL);
    if (!item) {
        say(c, vn_tr(c->lang, N_("No request waits for your answer.")));
        return;
    }
    bool sign = strcmp(json_string_value(json_object_get(item, "kind")), "sign") == 0;
    char *text = sign ? consent_describe(item, c->lang)
                      : presentation_describe(c->host, c->user, item, c->lang);
    say(c, text);
    free(text);
    json_decref(item);
}

static bool is_word(const char *w, const char *a, const char *b)
{
    return strcmp(w, a) == 0 || (b && strcmp(w, b) == 0);
}

/* "yes", "no" or numbers for the deletion or the oldest item waiting. */
static bool answer(const chat_ctx *c, char **words, size_t n)
{
    /* The reader's own words too ("да", "нет"), as the catalog says them.
     * TRANSLATORS: "yes" and "no" as one lower-case word a person replies. */
    bool yes = is_word(words[0], "yes", "y") || is_word(words[0], vn_tr(c->lang, N_("yes")), NULL);
    bool no = is_word(words[0], "no", "n") || is_word(words[0], vn_tr(c->lang, N_("no")), NULL);
    bool numbers = true;
    for (size_t i = 0; i < n; i++)
        numbers = numbers && strspn(words[i], "0123456789") == strlen(words[i]);
    if (!yes && !no && !numbers)
        return false;
    chat_state *st = state_of(c->host, c->user, false);
    if (st && st->delete_id && (yes || no)) {
        json_t *cr = yes ? wallet_get(c->host, c->user, st->delete_id) : NULL;
        if (cr)
            wallet_remove(c->host, c->user, cr);
        say(c, vn_tr(c->lang, cr ? N_("The document was deleted.") : N_("Nothing was deleted.")));
        json_decref(cr);
        state_drop(st);
        return true;
    }
    json_t *item = pending_oldest(c->host, c->user, NULL);
    if (!item) {
        if (numbers && n == 1) {
            show(c, words[0]);
            return true;
        }
        say(c, vn_tr(c->lang, N_("No request waits for your answer.")));
        return true;
    }
    if (strcmp(json_string_value(json_object_get(item, "kind")), "sign") == 0) {
        if (numbers)
            say(c, vn_tr(c->lang, N_("Reply \"yes\" to sign it or \"no\" to refuse.")));
        else
            consent_answer(c->host, c->user, item, yes);
        json_decref(item);
        return true;
    }
    json_t *paths = NULL;
    json_t *cr = presentation_match(c->host, c->user, item, &paths);
    size_t max = json_array_size(paths);
    /* One slot a number given (repeats included: presentation_answer
     * shares each claim once), or a claim for "yes". */
    const char **chosen = vn_alloc(((n > max ? n : max) + 1) * sizeof *chosen);
    size_t k = 0;
    bool bad = false;
    if (yes) {
        for (size_t i = 0; i < max; i++)
            chosen[k++] = json_string_value(json_array_get(paths, i));
    } else if (numbers) {
        for (size_t i = 0; i < n; i++) {
            long idx = strtol(words[i], NULL, 10);
            if (idx < 1 || (size_t)idx > max)
                bad = true;
            else
                chosen[k++] = json_string_value(json_array_get(paths, (size_t)idx - 1));
        }
    }
    if (bad) {
        say(c, vn_tr(c->lang, N_("Those numbers are not in the list of the request.")));
    } else {
        presentation_answer(c->host, c->user, item,
                            cr ? json_string_value(json_object_get(cr, "id")) : NULL, chosen, k);
        if (!k)
            say(c, vn_tr(c->lang, N_("Nothing was shared.")));
    }
    free(chosen);
    json_decref(cr);
    json_decref(paths);
    json_decref(item);
    return true;
}

void chat_message(vn_event *ev, const char *host)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    if (type && (strcmp(type, "error") == 0 || strcmp(type, "groupchat") == 0))
        return; /* never answer errors; a room is no place for a wallet */
    if (!ev->from || !ev->from->local || strcmp(ev->from->domain, host) != 0) {
        cred_iq_error(ev->stanza, "cancel", "service-unavailable", NULL,
                      N_("Only the accounts of this host have a wallet here"));
        return;
    }
    const char *body = vn_stanza_child_text(ev->stanza, "body", NULL);
    if (!body)
        return; /* chat states, receipts */
    const char *lang = vn_stanza_attr(ev->stanza, "xml:lang");
    cred_holder_lang_set(host, ev->from->local, lang);
    chat_ctx c = {.host = host, .user = ev->from->local, .to = ev->from->full, .lang = lang};

    char *text = vn_strdup(body);
    char *words[MAX_WORDS];
    size_t n = 0;
    for (char *p = text; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p || n == MAX_WORDS)
            break;
        words[n++] = p;
        while (*p && !isspace((unsigned char)*p) && *p != ',') {
            *p = (char)tolower((unsigned char)*p);
            p++;
        }
        if (*p)
            *p++ = '\0';
    }
    if (n == 0 || answer(&c, words, n)) {
        /* answered (or empty) */
    } else if (is_word(words[0], "list", "documents")) {
        list(&c);
    } else if (is_word(words[0], "show", NULL)) {
        show(&c, n > 1 ? words[1] : NULL);
    } else if (is_word(words[0], "qr", NULL)) {
        qr(&c, words, n);
    } else if (is_word(words[0], "delete", NULL)) {
        ask_delete(&c, n > 1 ? words[1] : NULL);
    } else if (is_word(words[0], "history", NULL)) {
        log_lines(&c, false);
    } else if (is_word(words[0], "who", NULL)) {
        log_lines(&c, true);
    } else if (is_word(words[0], "requests", "pending")) {
        requests(&c);
    } else {
        help(&c);
    }
    if (n > 0 && !is_word(words[0], "delete", NULL) && !is_word(words[0], "yes", "y") &&
        !is_word(words[0], "no", "n"))
        state_drop(state_of(host, ev->from->local, false));
    free(text);
}
