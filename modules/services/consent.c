/*
 * consent.c - a service may message only the users who started it.
 *
 * A user starts a service by writing to it (as one presses "Start" for a
 * bot), by subscribing to its presence, or with the ad-hoc command "My
 * services", where they also mute it (broadcasts skip them; answers still
 * come), stop it (nothing comes), and see what each service may do and
 * what it exchanged with them. Kept per user in the store:
 *   (host, user, "service-consent", SERVICE)  "started" | "muted" | "stopped"
 * The filter on "route/local" refuses a service's message (or
 * subscription request, whose text is shown like one) to a user who
 * has not started it with <forbidden/> and <not-started/> in our
 * namespace, counts the refusal against the service and logs it; it also
 * applies the operator's suspension and the service's rate and quota
 * (audit.c). Broadcasts check consent before they fan out (broadcast.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/adhoc.h>
#include <vestnik/form.h>

#include "platform.h"

#define CONSENT_STORE "service-consent"
#define FILTER_PRIORITY 950 /* after blocking (1000), before archiving (500) */
#define MY_SERVICES_NODE NS_SERVICES "#mine"
#define ACTIVITY_SHOWN 10

static const char *const state_names[] = {"none", "started", "muted", "stopped"};

const char *consent_state_name(consent_state st)
{
    return state_names[st];
}

consent_state consent_get(const char *host, const char *user, const char *service_id)
{
    vn_buf value;
    consent_state st = CONSENT_NONE;

    vn_buf_init(&value);
    if (vn_store_get(vn_server_store(), host, user, CONSENT_STORE, service_id, &value) ==
        VN_STORE_OK)
        for (int i = CONSENT_STARTED; i <= CONSENT_STOPPED; i++)
            if (strcmp(value.data, state_names[i]) == 0)
                st = (consent_state)i;
    vn_buf_free(&value);
    return st;
}

int consent_set(const char *host, const char *user, const char *service_id, consent_state st)
{
    if (st == CONSENT_NONE)
        return vn_store_delete(vn_server_store(), host, user, CONSENT_STORE, service_id);
    return vn_store_put(vn_server_store(), host, user, CONSENT_STORE, service_id, state_names[st],
                        strlen(state_names[st]));
}

static const consent_refusal not_started = {
    "cancel", "forbidden", "not-started",
    N_("The user has not started this service: a service may write only to users who started "
       "it")};
static const consent_refusal stopped = {"cancel", "forbidden", "stopped",
                                        N_("The user has stopped this service")};
static const consent_refusal muted = {"cancel", "forbidden", "muted",
                                      N_("The user has muted this service's broadcasts")};
static const consent_refusal suspended = {"cancel", "forbidden", "suspended",
                                          N_("The service is suspended by the server's operator")};

/* The refusal for a message from svc to user, or NULL; no side effects. */
static const consent_refusal *check(const service *svc, const char *host, const char *user,
                                    bool broadcast)
{
    if (svc->rec.suspended)
        return &suspended;
    if (!platform_conf.consent_required)
        return NULL;
    switch (consent_get(host, user, svc->rec.jid)) {
    case CONSENT_STARTED: return NULL;
    case CONSENT_MUTED: return broadcast ? &muted : NULL;
    case CONSENT_STOPPED: return &stopped;
    case CONSENT_NONE: break;
    }
    return &not_started;
}

const char *services_consent_check(const char *service_id, const char *host, const char *user,
                                   bool broadcast)
{
    service *svc = registry_ensure(host, service_id); /* the caller says it is one */
    const consent_refusal *no = check(svc, host, user, broadcast);
    if (no) {
        svc->rec.refused++;
        registry_touch(svc);
    }
    return no ? no->text : NULL;
}

void services_consent_started(const char *service_id, const char *host, const char *user)
{
    consent_state st = consent_get(host, user, service_id);
    if (st == CONSENT_NONE || st == CONSENT_STOPPED)
        consent_set(host, user, service_id, CONSENT_STARTED);
}

static void refuse(const vn_stanza *st, const consent_refusal *no)
{
    directory_iq_error(st, no->type, no->condition, no->app_condition, no->text);
}

static bool is_error(const vn_stanza *st)
{
    const char *type = vn_stanza_attr(st, "type");
    return type && strcmp(type, "error") == 0;
}

/* ---- the filter: what services send to local users ---- */

/* A subscription request: its status text (and nick) are shown to the
 * user like a message, so it asks the same consent. */
static bool is_subscribe(const vn_stanza *st)
{
    const char *type = vn_stanza_attr(st, "type");
    return strcmp(vn_stanza_name(st), "presence") == 0 && type && strcmp(type, "subscribe") == 0;
}

static vn_hook_result filter_inbound(vn_event *ev, void *ud)
{
    bool subscribe = is_subscribe(ev->stanza);
    if ((strcmp(vn_stanza_name(ev->stanza), "message") != 0 && !subscribe) ||
        broadcast_in_progress())
        return VN_PASS;
    service *svc = registry_for(ev->from, ev->host);
    if (!svc)
        return VN_PASS;
    const consent_refusal *no = check(svc, ev->host, ev->to->local, false);
    if (subscribe) {
        if (!no)
            return VN_PASS;
        svc->rec.refused++;
        registry_touch(svc);
        audit_log(svc, AUDIT_REFUSED, ev->to->bare, ev->stanza, 1);
        refuse(ev->stanza, no);
        return VN_HANDLED;
    }
    if (is_error(ev->stanza)) {
        /* An error answers what the user sent: to a user who has not
         * started the service it answers nothing, and its body and text
         * would reach them unasked. Dropped: an error is never answered. */
        if (!no)
            return VN_PASS;
        svc->rec.refused++;
        registry_touch(svc);
        audit_log(svc, AUDIT_REFUSED, ev->to->bare, ev->stanza, 1);
        return VN_HANDLED;
    }
    if (no) {
        svc->rec.refused++;
        registry_touch(svc);
        audit_log(svc, AUDIT_REFUSED, ev->to->bare, ev->stanza, 1);
    } else if ((no = audit_allow(svc, 1, false)) != NULL) {
        audit_log(svc, AUDIT_REFUSED, ev->to->bare, ev->stanza, 1);
    }
    if (no) {
        refuse(ev->stanza, no);
        return VN_HANDLED;
    }
    svc->rec.sent++;
    registry_touch(svc);
    audit_log(svc, AUDIT_OUT, ev->to->bare, ev->stanza, 1);
    return VN_PASS;
}

/* ---- what users send to services: starting, stopping, the log ---- */

static vn_hook_result watch_outbound(vn_event *ev, void *ud)
{
    const char *name = vn_stanza_name(ev->stanza);
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const char *to_attr = vn_stanza_attr(ev->stanza, "to");
    if (strcmp(name, "iq") == 0 || !to_attr || !registry_may_speak_for(to_attr))
        return VN_PASS; /* most stanzas: no JID to parse */
    vn_jid *to = vn_jid_parse(to_attr);
    service *svc = to ? registry_for(to, ev->host) : NULL;
    vn_jid_free(to);
    if (!svc)
        return VN_PASS;
    const char *user = ev->from->local;
    if (strcmp(name, "message") == 0 && !is_error(ev->stanza) &&
        vn_stanza_child(ev->stanza, "body", NULL)) {
        services_consent_started(svc->rec.jid, ev->host, user);
        svc->rec.received++;
        registry_touch(svc);
        audit_log(svc, AUDIT_IN, ev->from->bare, ev->stanza, 1);
    } else if (strcmp(name, "presence") == 0 && type && strcmp(type, "subscribe") == 0) {
        services_consent_started(svc->rec.jid, ev->host, user);
    } else if (strcmp(name, "presence") == 0 && type && strcmp(type, "unsubscribe") == 0) {
        consent_set(ev->host, user, svc->rec.jid, CONSENT_STOPPED);
    }
    return VN_PASS;
}

/* ---- the ad-hoc command "My services" ---- */

typedef struct mine_ctx {
    const char *host, *user, *lang;
    vn_stanza *form, *choice;
    size_t n;
} mine_ctx;

static const char *what_it_may_do(consent_state st)
{
    switch (st) {
    case CONSENT_STARTED: return N_("started: may write to you and include you in its broadcasts");
    case CONSENT_MUTED: return N_("muted: may answer you, but its broadcasts skip you");
    case CONSENT_STOPPED: return N_("stopped: may not write to you");
    case CONSENT_NONE: break;
    }
    return N_("not started: may not write to you until you write to it");
}

static void add_mine(service *svc, void *ud)
{
    mine_ctx *ctx = ud;
    consent_state st = consent_get(ctx->host, ctx->user, svc->rec.jid);
    if (st == CONSENT_NONE)
        return;
    const char *name = svc->rec.name ? svc->rec.name : svc->rec.jid;
    char *line =
        vn_asprintf("%s%s — %s", name, svc->rec.verified ? vn_tr(ctx->lang, N_(" (verified)")) : "",
                    vn_tr(ctx->lang, what_it_may_do(st)));
    vn_form_add_field(ctx->form, ctx->lang, NULL, "fixed", NULL, line);
    vn_form_add_option(ctx->choice, ctx->lang, name, svc->rec.jid, false);
    free(line);
    ctx->n++;
}

typedef struct activity_ctx {
    vn_stanza *form;
    const char *lang;
} activity_ctx;

static bool add_activity(int64_t ts_us, const char *kind, const char *with, const char *what,
                         void *ud)
{
    activity_ctx *ctx = ud;
    char when[VN_DATETIME_SIZE];
    vn_datetime_format(ts_us, when);
    when[19] = '\0'; /* to the second */
    char *line = vn_asprintf("%s %s %s", when, vn_tr(ctx->lang, kind), what);
    vn_form_add_field(ctx->form, ctx->lang, NULL, "fixed", NULL, line);
    free(line);
    return true;
}

static void my_services(const vn_adhoc_request *req, vn_adhoc_reply *reply, void *ud)
{
    const char *user = req->from->local;
    if (!req->form) {
        mine_ctx ctx = {.host = req->host, .user = user, .lang = req->lang};
        ctx.form = vn_form_new("form", req->lang, N_("My services"));
        vn_form_add_instructions(ctx.form, req->lang,
                                 N_("The services you started, and what each may do. Choose one "
                                    "to start, mute or stop it, or to see what it exchanged with "
                                    "you."));
        ctx.choice = vn_stanza_new("field", VN_NS_DATA); /* filled, then appended */
        registry_foreach(req->host, add_mine, &ctx);
        if (ctx.n == 0) {
            vn_stanza_free(ctx.choice);
            vn_stanza_free(ctx.form);
            reply->note = N_("You have not started any service yet. Find one in the services "
                             "directory and write to it.");
            return;
        }
        vn_stanza_set_attr(ctx.choice, "var", "service");
        vn_stanza_set_attr(ctx.choice, "type", "list-single");
        vn_stanza_set_attr(ctx.choice, "label", vn_tr(req->lang, N_("Service")));
        vn_stanza_append(ctx.form, ctx.choice);
        vn_stanza *action =
            vn_form_add_field(ctx.form, req->lang, "action", "list-single", N_("Action"), "show");
        vn_form_add_option(action, req->lang, N_("Show what it exchanged with me"), "show", true);
        vn_form_add_option(action, req->lang, N_("Start"), "start", true);
        vn_form_add_option(action, req->lang, N_("Mute its broadcasts"), "mute", true);
        vn_form_add_option(action, req->lang, N_("Stop"), "stop", true);
        reply->form = ctx.form;
        return;
    }
    const char *id = vn_form_value(req->form, "service");
    const char *action = vn_form_value(req->form, "action");
    service *svc = registry_find(id);
    if (!svc || !action) {
        reply->note = N_("Choose a service and an action.");
        reply->note_type = VN_ADHOC_ERROR;
        return;
    }
    if (strcmp(action, "show") == 0) {
        activity_ctx ctx = {vn_form_new("form", req->lang,
                                        N_("What the service exchanged with "
                                           "you")),
                            req->lang};
        vn_form_add_instructions(ctx.form, req->lang, svc->rec.name ? svc->rec.name : svc->rec.jid);
        audit_foreach(svc, req->from->bare, ACTIVITY_SHOWN, add_activity, &ctx);
        reply->form = ctx.form;
        return;
    }
    consent_state st = strcmp(action, "start") == 0  ? CONSENT_STARTED
                       : strcmp(action, "mute") == 0 ? CONSENT_MUTED
                       : strcmp(action, "stop") == 0 ? CONSENT_STOPPED
                                                     : CONSENT_NONE;
    if (st == CONSENT_NONE || consent_set(req->host, user, svc->rec.jid, st) != VN_STORE_OK) {
        reply->note = N_("That did not work.");
        reply->note_type = VN_ADHOC_ERROR;
        return;
    }
    reply->note = st == CONSENT_STARTED ? N_("Started: the service may write to you.")
                  : st == CONSENT_MUTED ? N_("Muted: the service's broadcasts skip you.")
                                        : N_("Stopped: the service may not write to you.");
}

int consent_start(vn_module *m)
{
    vn_hook_add("route/local", FILTER_PRIORITY, filter_inbound, NULL);
    vn_hook_add("stanza/in", FILTER_PRIORITY, watch_outbound, NULL);
    vn_adhoc_add(MY_SERVICES_NODE, N_("My services"), my_services, NULL);
    return 0;
}

void consent_stop(vn_module *m)
{
    vn_adhoc_remove(MY_SERVICES_NODE);
    vn_hook_remove("stanza/in", watch_outbound, NULL);
    vn_hook_remove("route/local", filter_inbound, NULL);
}
