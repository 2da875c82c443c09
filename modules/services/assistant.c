/*
 * assistant.c - the public-services assistant's dialogue (assistant.h).
 *
 * A user writes to assistant@services.<host>. A question goes to the
 * engine, which picks a knowledge base entry; the answer is its title,
 * requirements and steps, in the user's language. When the service needs
 * documents, the assistant offers to ask for them; on "yes" it sends the
 * documents wallet (xeps/documents.md §7) a presentation request per
 * document, the user approves it in their wallet, the wallet sends the
 * presentation here, the assistant has the wallet verify it (§8) and,
 * once every document is checked, tells the user the result with a
 * reference number. A decline, an error or a wallet that is not there is
 * said plainly; nothing is kept beyond the conversation, which is
 * forgotten after assistant_request_timeout seconds.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "assistant.h"
#include "platform.h"

#define NS_DOCUMENTS "urn:vestnik:documents:0"
#define NS_VCARD "vcard-temp"
#define SWEEP_MS 60000

typedef enum { STEP_IDLE, STEP_OFFERED, STEP_REQUESTED, STEP_VERIFYING } step;

/* One user's conversation. */
typedef struct conversation {
    char *user;      /* bare JID */
    char *user_full; /* where answers go */
    char *host;
    char lang[16];
    const kb_entry *entry;
    step step;
    size_t doc;     /* the document being asked for */
    char iq_id[32]; /* our pending iq to the wallet */
    char nonce[33];
    char *request_id; /* the wallet's id of the request */
    vn_buf checked;   /* claims checked so far, for the result */
    int64_t touched_us;
    struct conversation *next;
} conversation;

typedef struct assistant_host {
    char *host, *jid, *documents;
} assistant_host;

static struct {
    kb *k;
    const assistant_engine *engine;
    void *engine_state;
    assistant_host *hosts;
    size_t n_hosts;
    conversation *conversations;
    vn_timer *sweep;
    long long timeout_s;
    unsigned serial;
} as;

static const assistant_engine *const engines[] = {&assistant_rules_engine};

const char *assistant_name(void)
{
    return N_("Public services assistant");
}

static const assistant_host *host_entry(const char *host)
{
    for (size_t i = 0; host && i < as.n_hosts; i++)
        if (strcmp(as.hosts[i].host, host) == 0)
            return &as.hosts[i];
    return NULL;
}

const char *assistant_jid(const char *host)
{
    const assistant_host *h = host_entry(host);
    return h ? h->jid : NULL;
}

static void random_hex(char *out, size_t bytes)
{
    unsigned char rnd[16];
    if (bytes > sizeof rnd || RAND_bytes(rnd, (int)bytes) != 1)
        abort();
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

/* ---- conversations ---- */

static conversation *conversation_find(const char *user)
{
    conversation *c;
    LL_FOREACH(as.conversations, c)
    if (strcmp(c->user, user) == 0)
        return c;
    return NULL;
}

static void conversation_free(conversation *c)
{
    free(c->user);
    free(c->user_full);
    free(c->host);
    free(c->request_id);
    vn_buf_free(&c->checked);
    free(c);
}

static void conversation_reset(conversation *c)
{
    c->entry = NULL;
    c->step = STEP_IDLE;
    c->doc = 0;
    c->iq_id[0] = '\0';
    free(c->request_id);
    c->request_id = NULL;
    vn_buf_reset(&c->checked);
}

static void sweep(vn_timer *t, void *ud)
{
    int64_t before = vn_now_us() - as.timeout_s * 1000000LL;
    conversation **link = &as.conversations;
    while (*link) {
        conversation *c = *link;
        if (c->touched_us < before) {
            *link = c->next;
            conversation_free(c);
        } else {
            link = &c->next;
        }
    }
}

/* ---- saying things ---- */

static void say(const conversation *c, const char *text)
{
    const assistant_host *h = host_entry(c->host);
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    char id[24];
    snprintf(id, sizeof id, "as-%u", ++as.serial);
    vn_stanza_set_attr(msg, "from", h->jid);
    vn_stanza_set_attr(msg, "to", c->user_full);
    vn_stanza_set_attr(msg, "type", "chat");
    vn_stanza_set_attr(msg, "id", id);
    vn_stanza_set_attr(msg, "xml:lang", vn_tr_lang(c->lang));
    vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, text);
    vn_route(msg);
}

static void append_list(vn_buf *b, const char *heading, char *const *items)
{
    if (!items || !items[0])
        return;
    vn_buf_printf(b, "\n\n%s", heading);
    for (size_t i = 0; items[i]; i++)
        vn_buf_printf(b, "\n%zu. %s", i + 1, items[i]);
}

static void tell_topics(const conversation *c, const char *intro)
{
    vn_buf b;
    vn_buf_init(&b);
    vn_buf_append_str(&b, vn_tr(c->lang, intro));
    for (size_t i = 0; i < as.k->n; i++)
        vn_buf_printf(&b, "\n- %s", kb_text_in(&as.k->entries[i].title, c->lang));
    say(c, b.data);
    vn_buf_free(&b);
}

static void tell_entry(conversation *c, const kb_entry *e)
{
    vn_buf b;
    vn_buf_init(&b);
    vn_buf_append_str(&b, kb_text_in(&e->title, c->lang));
    append_list(&b, vn_tr(c->lang, N_("What you need:")), kb_list_in(&e->requirements, c->lang));
    append_list(&b, vn_tr(c->lang, N_("Steps:")), kb_list_in(&e->steps, c->lang));
    if (e->n_documents > 0) {
        vn_buf_printf(&b, "\n\n");
        vn_buf_printf(&b,
                      vn_tr(c->lang, N_("I can apply for you with your digital documents (%s). "
                                        "Reply \"yes\" to go on, or ask something else.")),
                      kb_text_in(&e->documents[0].purpose, c->lang));
        c->entry = e;
        c->step = STEP_OFFERED;
    } else {
        conversation_reset(c);
    }
    say(c, b.data);
    vn_buf_free(&b);
}

/* ---- the documents wallet ---- */

static void send_iq(conversation *c, vn_stanza *payload)
{
    const assistant_host *h = host_entry(c->host);
    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    snprintf(c->iq_id, sizeof c->iq_id, "as-iq-%u", ++as.serial);
    vn_stanza_set_attr(iq, "type", "set");
    vn_stanza_set_attr(iq, "id", c->iq_id);
    vn_stanza_set_attr(iq, "from", h->jid);
    vn_stanza_set_attr(iq, "to", h->documents);
    vn_stanza_append(iq, payload);
    vn_route(iq);
}

static void request_document(conversation *c)
{
    const kb_document *d = &c->entry->documents[c->doc];
    vn_stanza *req = vn_stanza_new("request", NS_DOCUMENTS);
    random_hex(c->nonce, 16);
    vn_stanza_set_attr(req, "holder", c->user);
    vn_stanza_set_attr(req, "nonce", c->nonce);
    char *purpose = vn_asprintf("%s: %s", kb_text_in(&c->entry->title, c->lang),
                                kb_text_in(&d->purpose, c->lang));
    vn_stanza_add_text_child(req, "purpose", NS_DOCUMENTS, purpose);
    free(purpose);
    vn_stanza *cred = vn_stanza_add_child(req, "credential", NS_DOCUMENTS);
    vn_stanza_set_attr(cred, "type", d->type);
    for (size_t i = 0; d->claims && d->claims[i]; i++)
        vn_stanza_set_attr(vn_stanza_add_child(cred, "claim", NS_DOCUMENTS), "name", d->claims[i]);
    free(c->request_id);
    c->request_id = NULL;
    c->step = STEP_REQUESTED;
    send_iq(c, req);
}

static void finish(conversation *c)
{
    char reference[9];
    random_hex(reference, 4);
    vn_buf b;
    vn_buf_init(&b);
    vn_buf_printf(&b, vn_tr(c->lang, N_("Done: %s")), kb_text_in(&c->entry->title, c->lang));
    const char *result = kb_text_in(&c->entry->result, c->lang);
    if (*result)
        vn_buf_printf(&b, "\n%s", result);
    vn_buf_printf(&b, "\n");
    vn_buf_printf(&b, vn_tr(c->lang, N_("Your reference number: %s")), reference);
    if (c->checked.len) {
        vn_buf_printf(&b, "\n%s%s", vn_tr(c->lang, N_("Checked from your documents:")),
                      c->checked.data);
    }
    say(c, b.data);
    vn_buf_free(&b);
    vn_log_info("services: the assistant applied for %s (%s), reference %s", c->user, c->entry->id,
                reference);
    conversation_reset(c);
}

static conversation *conversation_by_iq(const char *id)
{
    conversation *c;
    LL_FOREACH(as.conversations, c)
    if (id && c->iq_id[0] && strcmp(c->iq_id, id) == 0)
        return c;
    return NULL;
}

static void wallet_failed(conversation *c)
{
    say(c, vn_tr(c->lang, N_("I could not reach your documents wallet. You can still apply in "
                             "person with the documents listed above.")));
    conversation_reset(c);
}

/* The wallet answered one of our iqs. */
static void on_iq_answer(const vn_stanza *iq)
{
    conversation *c = conversation_by_iq(vn_stanza_attr(iq, "id"));
    if (!c)
        return;
    c->iq_id[0] = '\0';
    c->touched_us = vn_now_us();
    const char *type = vn_stanza_attr(iq, "type");
    if (!type || strcmp(type, "result") != 0) {
        if (c->step == STEP_VERIFYING) {
            say(c, vn_tr(c->lang, N_("Your document could not be verified, so I could not "
                                     "apply. Check it in your wallet, or apply in person.")));
            conversation_reset(c);
        } else {
            wallet_failed(c);
        }
        return;
    }
    if (c->step == STEP_REQUESTED) {
        const vn_stanza *pending = vn_stanza_child(iq, "pending", NS_DOCUMENTS);
        if (!pending || !vn_stanza_attr(pending, "id")) {
            wallet_failed(c);
            return;
        }
        c->request_id = vn_strdup(vn_stanza_attr(pending, "id"));
        say(c, vn_tr(c->lang, N_("I asked your documents wallet: it has written to you. Approve "
                                 "the request there, and I will go on.")));
    } else if (c->step == STEP_VERIFYING) {
        const vn_stanza *verified = vn_stanza_child(iq, "verified", NS_DOCUMENTS);
        for (const vn_stanza *cl = vn_stanza_first_element(verified); cl;
             cl = vn_stanza_next_element(cl))
            if (vn_stanza_is(cl, "claim", NS_DOCUMENTS) && vn_stanza_attr(cl, "name"))
                vn_buf_printf(&c->checked, "\n- %s: %s", vn_stanza_attr(cl, "name"),
                              vn_stanza_text(cl));
        if (++c->doc < c->entry->n_documents)
            request_document(c);
        else
            finish(c);
    }
}

/* A <presentation/> or <declined/> from the wallet. */
static void on_wallet_message(const vn_event *ev, const assistant_host *h)
{
    const vn_stanza *pres = vn_stanza_child(ev->stanza, "presentation", NS_DOCUMENTS);
    const vn_stanza *declined = vn_stanza_child(ev->stanza, "declined", NS_DOCUMENTS);
    const vn_stanza *el = pres ? pres : declined;
    const char *holder = vn_stanza_attr(el, "holder");
    conversation *c = holder ? conversation_find(holder) : NULL;
    const char *req = vn_stanza_attr(el, "request");
    if (!c || c->step != STEP_REQUESTED || !c->request_id || !req ||
        strcmp(req, c->request_id) != 0)
        return; /* not ours, or no longer wanted */
    c->touched_us = vn_now_us();
    if (declined) {
        say(c, vn_tr(c->lang, N_("You did not share the documents, so I did not apply. Nothing "
                                 "was sent.")));
        conversation_reset(c);
        return;
    }
    vn_stanza *verify = vn_stanza_new("verify", NS_DOCUMENTS);
    vn_stanza_set_attr(verify, "nonce", c->nonce);
    vn_stanza_add_text_child(verify, "presentation", NS_DOCUMENTS, vn_stanza_text(pres));
    c->step = STEP_VERIFYING;
    send_iq(c, verify);
}

/* ---- the user's messages ---- */

static bool is_one_of(const char *folded, const char *const *words)
{
    for (size_t i = 0; words[i]; i++)
        if (strcmp(folded, words[i]) == 0)
            return true;
    return false;
}

static const char *const yes_words[] = {"yes", "y", "ok", "да", "ок", "давай", "хорошо", NULL};
static const char *const no_words[] = {"no", "n", "cancel", "нет", "отмена", NULL};
static const char *const help_words[] = {"help",         "?",      "start",  "/start",
                                         "hello",        "hi",     "помощь", "привет",
                                         "здравствуйте", "начать", NULL};

typedef struct asked {
    char *user; /* the conversation may be gone when the engine answers */
} asked;

static void on_answer(const assistant_answer *answer, void *ud)
{
    asked *a = ud;
    conversation *c = conversation_find(a->user);
    free(a->user);
    free(a);
    if (!c)
        return;
    if (answer->entry)
        tell_entry(c, answer->entry);
    else
        tell_topics(c, N_("I do not know about that yet. I can help with:"));
}

/* Russian text gets a Russian answer whatever the client's language. */
static void choose_lang(conversation *c, const char *text, const char *stanza_lang)
{
    const char *lang = stanza_lang;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p == 0xD0 || *p == 0xD1) { /* U+0400..U+047F */
            lang = "ru";
            break;
        }
    snprintf(c->lang, sizeof c->lang, "%s", lang ? lang : "");
}

static void on_user_message(const vn_event *ev, const char *host)
{
    const char *body = vn_stanza_child_text(ev->stanza, "body", NULL);
    if (!body || !*body)
        return; /* chat states, receipts */
    conversation *c = conversation_find(ev->from->bare);
    if (!c) {
        c = vn_alloc(sizeof *c);
        c->user = vn_strdup(ev->from->bare);
        c->host = vn_strdup(host);
        vn_buf_init(&c->checked);
        LL_PREPEND(as.conversations, c);
    }
    free(c->user_full);
    c->user_full = vn_strdup(ev->from->full);
    c->touched_us = vn_now_us();
    choose_lang(c, body, vn_stanza_attr(ev->stanza, "xml:lang"));

    char *folded = text_fold(body);
    /* Trim what people add around a one-word answer. */
    size_t len = strlen(folded);
    while (len && strchr(" .!\n\t", folded[len - 1]))
        folded[--len] = '\0';
    const char *word = folded + strspn(folded, " \t\n");
    if (c->step == STEP_OFFERED && is_one_of(word, yes_words)) {
        request_document(c);
    } else if (c->step != STEP_IDLE && is_one_of(word, no_words)) {
        conversation_reset(c);
        say(c, vn_tr(c->lang, N_("All right, I stopped. Ask me about another service any time.")));
    } else if (c->step == STEP_REQUESTED || c->step == STEP_VERIFYING) {
        say(c, vn_tr(c->lang, N_("I am waiting for your documents wallet. Approve the request "
                                 "there, or reply \"no\" to stop.")));
    } else if (is_one_of(word, help_words)) {
        tell_topics(c, N_("Hello! I explain what public services need and can apply for you. "
                          "Ask me in your own words, for example about:"));
    } else {
        asked *a = vn_alloc(sizeof *a);
        a->user = vn_strdup(c->user);
        as.engine->ask(as.engine_state, c->lang, body, on_answer, a);
    }
    free(folded);
}

static void disco_info(const vn_event *ev)
{
    const vn_stanza *query = vn_stanza_first_element(ev->stanza);
    if (vn_stanza_attr(query, "node")) {
        directory_iq_error(ev->stanza, "cancel", "item-not-found", NULL, NULL);
        return;
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *info = vn_stanza_add_child(reply, "query", NS_DISCO_INFO);
    vn_stanza *id = vn_stanza_add_child(info, "identity", NS_DISCO_INFO);
    vn_stanza_set_attr(id, "category", "client");
    vn_stanza_set_attr(id, "type", "bot");
    vn_stanza_set_attr(id, "name", vn_tr(vn_stanza_attr(ev->stanza, "xml:lang"), assistant_name()));
    vn_stanza_set_attr(vn_stanza_add_child(info, "feature", NS_DISCO_INFO), "var", NS_DISCO_INFO);
    vn_stanza_set_attr(vn_stanza_add_child(info, "feature", NS_DISCO_INFO), "var", NS_VCARD);
    vn_route(reply);
}

/* Its vCard (XEP-0054): the name and what it does, so that clients show a
 * contact that explains itself. */
static void vcard(const vn_event *ev)
{
    const char *lang = vn_stanza_attr(ev->stanza, "xml:lang");
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *card = vn_stanza_add_child(reply, "vCard", NS_VCARD);
    vn_stanza_add_text_child(card, "FN", NS_VCARD, vn_tr(lang, assistant_name()));
    vn_stanza_add_text_child(card, "DESC", NS_VCARD,
                             vn_tr(lang, N_("Ask me in your own words what a public service "
                                            "needs; I can apply for you with your digital "
                                            "documents.")));
    vn_route(reply);
}

bool assistant_route(vn_event *ev, const char *host)
{
    const assistant_host *h = host_entry(host);
    if (!h || !ev->to->local || strcmp(ev->to->bare, h->jid) != 0)
        return false;
    const char *name = vn_stanza_name(ev->stanza);
    const char *type = vn_stanza_attr(ev->stanza, "type");
    bool from_wallet = strcmp(ev->from->domain, h->documents) == 0;
    if (strcmp(name, "iq") == 0) {
        if (type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0)) {
            if (from_wallet)
                on_iq_answer(ev->stanza);
        } else if (vn_stanza_is(vn_stanza_first_element(ev->stanza), "query", NS_DISCO_INFO) &&
                   type && strcmp(type, "get") == 0) {
            disco_info(ev);
        } else if (vn_stanza_is(vn_stanza_first_element(ev->stanza), "vCard", NS_VCARD) && type &&
                   strcmp(type, "get") == 0) {
            vcard(ev);
        } else {
            directory_iq_error(ev->stanza, "cancel", "service-unavailable", NULL, NULL);
        }
    } else if (strcmp(name, "message") == 0 && !(type && strcmp(type, "error") == 0)) {
        if (from_wallet)
            on_wallet_message(ev, h);
        else if (vn_is_local_host(ev->from->domain))
            on_user_message(ev, host);
        else
            directory_iq_error(ev->stanza, "cancel", "not-allowed", NULL,
                               N_("The assistant serves this server's users"));
    }
    return true;
}

/* ---- lifetime ---- */

static kb *load(vn_module *m)
{
    const char *path = vn_module_config_string(m, "assistant_knowledge_base");
    char *error = NULL;
    if (!*path)
        return NULL;
    kb *k = kb_load(path, &error);
    if (!k) {
        vn_log_error("services: the assistant's knowledge base %s: %s", path, error);
        free(error);
    }
    return k;
}

static void stop_hosts(void)
{
    for (size_t i = 0; i < as.n_hosts; i++) {
        free(as.hosts[i].host);
        free(as.hosts[i].jid);
        free(as.hosts[i].documents);
    }
    free(as.hosts);
    as.hosts = NULL;
    as.n_hosts = 0;
}

static void start_hosts(vn_module *m)
{
    const char *local = vn_module_config_string(m, "assistant_name");
    const char *documents = vn_module_config_string(m, "assistant_documents_prefix");
    const char *const *hosts = vn_local_hosts();
    for (size_t i = 0; hosts[i]; i++) {
        const char *domain = directory_domain_of(hosts[i]);
        if (!domain)
            continue;
        as.hosts = vn_realloc(as.hosts, (as.n_hosts + 1) * sizeof *as.hosts);
        as.hosts[as.n_hosts++] =
            (assistant_host){vn_strdup(hosts[i]), vn_asprintf("%s@%s", local, domain),
                             vn_asprintf("%s.%s", documents, hosts[i])};
    }
}

int assistant_start(vn_module *m)
{
    const char *engine = vn_module_config_string(m, "assistant_engine");
    as.timeout_s = vn_module_config_int(m, "assistant_request_timeout");
    if (!*vn_module_config_string(m, "assistant_knowledge_base"))
        return 0; /* off */
    for (size_t i = 0; i < sizeof engines / sizeof *engines; i++)
        if (strcmp(engines[i]->name, engine) == 0)
            as.engine = engines[i];
    if (!as.engine || !(as.k = load(m)))
        return -1;
    if (!(as.engine_state = as.engine->open(as.k))) {
        kb_free(as.k);
        as.k = NULL;
        return -1;
    }
    start_hosts(m);
    as.sweep = vn_timer_start(SWEEP_MS, SWEEP_MS, sweep, NULL);
    vn_log_info("services: the assistant answers from %zu services (%s engine)", as.k->n,
                as.engine->name);
    return 0;
}

void assistant_stop(vn_module *m)
{
    conversation *c, *tmp;
    if (!as.k)
        return;
    vn_timer_stop(as.sweep);
    as.sweep = NULL;
    LL_FOREACH_SAFE(as.conversations, c, tmp)
    {
        LL_DELETE(as.conversations, c);
        conversation_free(c);
    }
    as.engine->close(as.engine_state);
    as.engine_state = NULL;
    kb_free(as.k);
    as.k = NULL;
    stop_hosts();
}

/* A new knowledge base on SIGHUP; on an error the old one stays. */
void assistant_reload(vn_module *m)
{
    as.timeout_s = vn_module_config_int(m, "assistant_request_timeout");
    if (!as.k)
        return;
    kb *k = load(m);
    if (!k)
        return;
    void *state = as.engine->open(k);
    if (!state) {
        kb_free(k);
        return;
    }
    /* Conversations point into the old entries: they start again. */
    for (conversation *c = as.conversations; c; c = c->next)
        conversation_reset(c);
    as.engine->close(as.engine_state);
    kb_free(as.k);
    as.k = k;
    as.engine_state = state;
}
