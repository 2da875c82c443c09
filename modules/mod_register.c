/*
 * mod_register.c - In-Band Registration (XEP-0077).
 *
 * Before authentication, and only when the operator set
 * allow_registration, a client may create an account: the stream features
 * advertise <register/>, an iq get returns the fields (username and
 * password), an iq set creates the account. Without allow_registration
 * nothing is advertised and requests get <service-unavailable/> (§3.1).
 * Accounts created from one client address are limited to
 * registrations_per_ip_per_hour (a rate limit instead of a captcha); past
 * it the request gets <policy-violation/> of type wait.
 *
 * After authentication, whatever allow_registration says, an account may
 * change its password (<username/> and <password/>, §3.3) or remove
 * itself (<remove/>, §3.2).
 *
 * Hashing a password (PBKDF2 for the SCRAM keys) takes milliseconds. The
 * password change runs it on a worker thread and answers when done, by
 * routing the result to the requesting full JID, which is dropped if that
 * session ended meanwhile. Account creation before authentication has to
 * answer within the "iq/unauthenticated" hook (its reply slot lives only
 * during the hook), so it hashes on the loop thread; the per-address rate
 * limit bounds how much loop time that can cost.
 */
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include <vestnik/form.h>
#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_REGISTER "jabber:iq:register"
#define NS_REGISTER_FEATURE "http://jabber.org/features/iq-register"
#define RATE_WINDOW_US (3600LL * 1000000)

static const vn_config_key register_keys[] = {
    {.name = "allow_registration", .type = VN_CONF_BOOL, .default_value = "false"},
    {.name = "registrations_per_ip_per_hour",
     .type = VN_CONF_INT,
     .default_value = "5",
     .min = 0,
     .max = 1000000},
    {.name = "min_password_length",
     .type = VN_CONF_INT,
     .default_value = "6",
     .min = 1,
     .max = 1024},
    {.name = NULL},
};

/* ---- registrations per client address in the last hour ---- */

typedef struct address_history {
    char *ip;
    int64_t *times_us; /* registrations inside the window, oldest first */
    size_t count;
    UT_hash_handle hh;
} address_history;

static address_history *recent_registrations;

static void forget_address(address_history *h)
{
    HASH_DEL(recent_registrations, h);
    free(h->ip);
    free(h->times_us);
    free(h);
}

/* Drop what fell out of the window, for every address (registrations are
 * rare, so the table stays small and a full pass is cheap). */
static void expire_registrations(int64_t now_us)
{
    address_history *next;

    for (address_history *h = recent_registrations; h; h = next) {
        next = h->hh.next;
        size_t expired = 0;
        while (expired < h->count && h->times_us[expired] <= now_us - RATE_WINDOW_US)
            expired++;
        h->count -= expired;
        if (h->count == 0)
            forget_address(h);
        else
            memmove(h->times_us, h->times_us + expired, h->count * sizeof *h->times_us);
    }
}

static bool over_rate_limit(const vn_module *m, const char *ip)
{
    long long limit = vn_module_config_int(m, "registrations_per_ip_per_hour");
    address_history *h = NULL;

    expire_registrations(vn_now_us());
    HASH_FIND_STR(recent_registrations, ip, h);
    return limit > 0 && h && (long long)h->count >= limit;
}

static void note_registration(const char *ip)
{
    address_history *h = NULL;

    HASH_FIND_STR(recent_registrations, ip, h);
    if (!h) {
        h = vn_alloc(sizeof *h);
        h->ip = vn_strdup(ip);
        HASH_ADD_KEYPTR(hh, recent_registrations, h->ip, strlen(h->ip), h);
    }
    h->times_us = vn_realloc(h->times_us, (h->count + 1) * sizeof *h->times_us);
    h->times_us[h->count++] = vn_now_us();
}

/* ---- replies ---- */

/* An error reply without the request's payload: it may hold a password
 * (§3.3: SHOULD NOT return the original XML). */
static vn_stanza *error_reply(const vn_stanza *iq, const char *type, const char *condition,
                              const char *text)
{
    vn_stanza *reply = vn_stanza_error_reply(iq, type, condition, text);
    vn_stanza *query = reply ? vn_stanza_child(reply, "query", NS_REGISTER) : NULL;
    if (query)
        vn_stanza_remove(query);
    return reply;
}

static void route_error(const vn_stanza *iq, const char *type, const char *condition,
                        const char *text)
{
    vn_stanza *reply = error_reply(iq, type, condition, text);
    if (reply)
        vn_route(reply);
}

static size_t utf8_length(const char *s)
{
    size_t chars = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            chars++;
    return chars;
}

/* NULL if the password is acceptable, else why not. */
static const char *password_problem(const vn_module *m, const char *password)
{
    if (!password || !*password)
        return N_("A password is required");
    if ((long long)utf8_length(password) < vn_module_config_int(m, "min_password_length"))
        return N_("The password is too short");
    return NULL;
}

/* ---- before authentication ---- */

static vn_hook_result advertise(vn_event *ev, void *ud)
{
    if (vn_module_config_bool(ud, "allow_registration"))
        vn_stanza_add_child(ev->data, "register", NS_REGISTER_FEATURE);
    return VN_PASS;
}

/* The legacy fields and, for clients that show forms, the same as a data
 * form (XEP-0077 §6), in the language of the request. */
static vn_stanza *registration_form(const vn_stanza *iq)
{
    const char *lang = vn_stanza_attr(iq, "xml:lang");
    vn_stanza *reply = vn_stanza_iq_result(iq);
    vn_stanza *query = vn_stanza_add_child(reply, "query", NS_REGISTER);
    const char *instructions = N_("Choose a username and password for use with this server.");

    vn_stanza_add_text_child(query, "instructions", NS_REGISTER, vn_tr(lang, instructions));
    vn_stanza_add_child(query, "username", NS_REGISTER);
    vn_stanza_add_child(query, "password", NS_REGISTER);
    vn_stanza *form = vn_form_new("form", lang, N_("Account registration"));
    vn_stanza_append(query, form);
    vn_form_add_instructions(form, lang, instructions);
    vn_form_add_field(form, lang, "FORM_TYPE", "hidden", NULL, NS_REGISTER);
    vn_stanza_add_child(
        vn_form_add_field(form, lang, "username", "text-single", N_("Username"), NULL), "required",
        VN_NS_DATA);
    vn_stanza_add_child(
        vn_form_add_field(form, lang, "password", "text-private", N_("Password"), NULL), "required",
        VN_NS_DATA);
    return reply;
}

/* A field of the request: the legacy element, or the data form's field. */
static const char *submitted(const vn_stanza *query, const char *name)
{
    const vn_stanza *form = vn_stanza_child(query, "x", VN_NS_DATA);
    const char *value = vn_stanza_child_text(query, name, NS_REGISTER);
    return value || !form ? value : vn_form_value(form, name);
}

static vn_stanza *create_account(const vn_module *m, const vn_stanza *iq, const vn_stanza *query,
                                 const char *host, const char *ip)
{
    const char *username = submitted(query, "username");
    const char *password = submitted(query, "password");

    if (vn_stanza_child(query, "remove", NS_REGISTER))
        return error_reply(iq, "cancel", "unexpected-request", N_("Not registered"));
    if (!username || !*username)
        return error_reply(iq, "modify", "not-acceptable", N_("A username is required"));
    const char *problem = password_problem(m, password);
    if (problem)
        return error_reply(iq, "modify", "not-acceptable", problem);
    vn_jid *jid = vn_jid_make(username, host, NULL);
    if (!jid)
        return error_reply(iq, "modify", "not-acceptable", N_("This username is not allowed"));
    if (over_rate_limit(m, ip)) {
        vn_log_info("register: refused %s from %s: too many registrations", jid->bare, ip);
        vn_jid_free(jid);
        return error_reply(iq, "wait", "policy-violation",
                           N_("Too many registrations from your address; try again later"));
    }

    vn_stanza *reply;
    /* On the loop thread: see the comment at the top of this file. */
    int rc = vn_account_create(host, jid->local, password);
    if (rc == 0) {
        note_registration(ip);
        vn_log_info("register: created %s from %s", jid->bare, ip);
        reply = vn_stanza_iq_result(iq);
    } else if (rc == 1) {
        reply = error_reply(iq, "cancel", "conflict", N_("This username is taken"));
    } else {
        vn_log_error("register: cannot create %s", jid->bare);
        reply = error_reply(iq, "wait", "internal-server-error", NULL);
    }
    vn_jid_free(jid);
    return reply;
}

static vn_hook_result register_unauthenticated(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    vn_unauthenticated_iq *unauth = ev->data;
    const vn_stanza *query = vn_stanza_first_element(ev->stanza);
    const char *type = vn_stanza_attr(ev->stanza, "type");

    if (!vn_stanza_is(query, "query", NS_REGISTER) || !type || !vn_stanza_attr(ev->stanza, "id"))
        return VN_PASS;
    if (!vn_module_config_bool(m, "allow_registration"))
        unauth->reply = error_reply(ev->stanza, "cancel", "service-unavailable", NULL);
    else if (strcmp(type, "get") == 0)
        unauth->reply = registration_form(ev->stanza);
    else if (strcmp(type, "set") == 0)
        unauth->reply = create_account(m, ev->stanza, query, ev->host, unauth->peer_ip);
    else
        return VN_PASS;
    return VN_HANDLED;
}

/* ---- after authentication ---- */

typedef struct password_change {
    char *host;
    char *user;
    char *password;
    vn_stanza *iq; /* the request, for the reply */
    int rc;
} password_change;

static void change_password_work(void *ud)
{
    password_change *job = ud;
    job->rc = vn_account_set_password(job->host, job->user, job->password);
}

static void change_password_done(void *ud)
{
    password_change *job = ud;

    if (job->rc == 0) {
        vn_log_info("register: %s@%s changed its password", job->user, job->host);
        vn_route(vn_stanza_iq_result(job->iq));
    } else {
        vn_log_error("register: cannot change the password of %s@%s", job->user, job->host);
        route_error(job->iq, "wait", "internal-server-error", NULL);
    }
    explicit_bzero(job->password, strlen(job->password));
    free(job->password);
    free(job->host);
    free(job->user);
    vn_stanza_free(job->iq);
    free(job);
}

/* The requester is an account of this host asking for itself. */
static bool own_account(const vn_event *ev)
{
    return ev->from && ev->from->local && strcmp(ev->from->domain, ev->host) == 0 &&
           (!ev->to->local || vn_jid_bare_equal(ev->from, ev->to));
}

static vn_hook_result registration_info(vn_event *ev, void *ud)
{
    if (!own_account(ev))
        return VN_PASS;
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *query = vn_stanza_add_child(reply, "query", NS_REGISTER);
    vn_stanza_add_child(query, "registered", NS_REGISTER);
    vn_stanza_add_text_child(query, "username", NS_REGISTER, ev->from->local);
    vn_route(reply);
    return VN_HANDLED;
}

static void remove_account(const vn_event *ev, const vn_stanza *query)
{
    if (vn_stanza_element_count(query) != 1) {
        route_error(ev->stanza, "modify", "bad-request", N_("<remove/> must come alone"));
        return;
    }
    char *user = vn_strdup(ev->from->local);
    char *host = vn_strdup(ev->from->domain);
    /* Answer first: removing the account closes the requester's stream. */
    vn_route(vn_stanza_iq_result(ev->stanza));
    if (vn_account_delete(host, user) == 0)
        vn_log_info("register: %s@%s removed its account", user, host);
    else
        vn_log_error("register: cannot remove %s@%s", user, host);
    free(user);
    free(host);
}

static void change_password(const vn_module *m, const vn_event *ev, const vn_stanza *query)
{
    const char *username = vn_stanza_child_text(query, "username", NS_REGISTER);
    const char *password = vn_stanza_child_text(query, "password", NS_REGISTER);

    if (!username || !password || !*password) {
        route_error(ev->stanza, "modify", "bad-request", N_("Give <username/> and a <password/>"));
        return;
    }
    char *canonical = vn_jid_prep_local(username);
    bool same_user = canonical && strcmp(canonical, ev->from->local) == 0;
    free(canonical);
    if (!same_user) {
        route_error(ev->stanza, "auth", "forbidden", N_("You may only change your own password"));
        return;
    }
    const char *problem = password_problem(m, password);
    if (problem) {
        route_error(ev->stanza, "modify", "not-acceptable", problem);
        return;
    }
    password_change *job = vn_alloc(sizeof *job);
    job->host = vn_strdup(ev->from->domain);
    job->user = vn_strdup(ev->from->local);
    job->password = vn_strdup(password);
    job->iq = vn_stanza_copy(ev->stanza);
    vn_work_queue(change_password_work, change_password_done, job);
}

static vn_hook_result registration_change(vn_event *ev, void *ud)
{
    const vn_stanza *query = vn_stanza_first_element(ev->stanza);

    if (!own_account(ev))
        return VN_PASS;
    if (!vn_stanza_is(query, "query", NS_REGISTER))
        route_error(ev->stanza, "modify", "bad-request", NULL);
    else if (vn_stanza_child(query, "remove", NS_REGISTER))
        remove_account(ev, query);
    else
        change_password(ud, ev, query);
    return VN_HANDLED;
}

/* ---- module ---- */

static int register_load(vn_module *m)
{
    vn_hook_add("stream/features/unauthenticated", 0, advertise, m);
    vn_hook_add("iq/unauthenticated", 0, register_unauthenticated, m);
    vn_hook_add("iq-get/host/" NS_REGISTER, 0, registration_info, m);
    vn_hook_add("iq-get/bare/" NS_REGISTER, 0, registration_info, m);
    vn_hook_add("iq-set/host/" NS_REGISTER, 0, registration_change, m);
    vn_hook_add("iq-set/bare/" NS_REGISTER, 0, registration_change, m);
    vn_disco_add_feature(NS_REGISTER);
    return 0;
}

static void register_unload(vn_module *m)
{
    vn_hook_remove("stream/features/unauthenticated", advertise, m);
    vn_hook_remove("iq/unauthenticated", register_unauthenticated, m);
    vn_hook_remove("iq-get/host/" NS_REGISTER, registration_info, m);
    vn_hook_remove("iq-get/bare/" NS_REGISTER, registration_info, m);
    vn_hook_remove("iq-set/host/" NS_REGISTER, registration_change, m);
    vn_hook_remove("iq-set/bare/" NS_REGISTER, registration_change, m);
    vn_disco_remove_feature(NS_REGISTER);
    while (recent_registrations)
        forget_address(recent_registrations);
}

VN_MODULE("register", "In-Band Registration (XEP-0077)", register_keys, register_load,
          register_unload, NULL);
