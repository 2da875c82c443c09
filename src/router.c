/*
 * router.c - where a stanza goes.
 *
 * Given a stanza with 'from' and 'to', deliver it to a local session, hand
 * it to the hooks registered for local hosts and accounts, or bounce it
 * with the error RFC 6120/6121 prescribe. Other domains go to components,
 * then to the "route/remote" hook (services such as MUC), then to
 * federation (s2s.c).
 */
#include <stdio.h>
#include <string.h>

#include "component.h"
#include "metrics.h"
#include "s2s.h"
#include "vestnik/module.h"

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

static bool is_subscription(const char *type)
{
    return is_type(type, "subscribe") || is_type(type, "subscribed") ||
           is_type(type, "unsubscribe") || is_type(type, "unsubscribed");
}

static const char *payload_ns(const vn_stanza *st)
{
    const vn_stanza *payload = vn_stanza_first_element(st);
    return payload ? vn_stanza_ns(payload) : NULL;
}

void vn_route_error(const vn_stanza *st, const char *type, const char *condition, const char *text)
{
    vn_stanza *reply = vn_stanza_error_reply(st, type, condition, text);
    if (!reply)
        return;
    if (!vn_stanza_attr(reply, "to") || !vn_stanza_attr(reply, "from")) {
        vn_stanza_free(reply);
        return;
    }
    vn_route(reply);
}

/* iq get/set to the host or an account: run "iq-<type>/<scope>/<ns>". */
static void route_iq_request(vn_event *ev, const char *scope)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const char *ns = payload_ns(ev->stanza);

    if (ns && vn_stanza_element_count(ev->stanza) == 1) {
        char hook[512];
        int n = snprintf(hook, sizeof hook, "iq-%s/%s/%s", type, scope, ns);
        if (n > 0 && (size_t)n < sizeof hook && vn_hook_run(hook, ev) == VN_HANDLED)
            return;
        vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return;
    }
    vn_route_error(ev->stanza, "modify", "bad-request",
                   "An iq request carries exactly one payload");
}

static bool is_iq_request(const char *name, const char *type)
{
    return strcmp(name, "iq") == 0 && (is_type(type, "get") || is_type(type, "set"));
}

/* Run "<name>/<scope>"; iq here is always a result or an error. */
static vn_hook_result run_scoped_hook(vn_event *ev, const char *name, const char *scope)
{
    char hook[64];

    if (strcmp(name, "iq") == 0)
        name = "iq-result";
    snprintf(hook, sizeof hook, "%s/%s", name, scope);
    return vn_hook_run(hook, ev);
}

typedef struct bare_delivery {
    const vn_stanza *st;
    int best_priority;
    size_t delivered;
    bool all_non_negative; /* headline and presence: every available resource */
} bare_delivery;

static bool find_best_priority(vn_session *s, void *ud)
{
    bare_delivery *d = ud;
    if (vn_session_available(s) && vn_session_priority(s) >= 0 &&
        vn_session_priority(s) > d->best_priority)
        d->best_priority = vn_session_priority(s);
    return true;
}

static bool deliver_to_resource(vn_session *s, void *ud)
{
    bare_delivery *d = ud;
    if (!vn_session_available(s) || vn_session_priority(s) < 0)
        return true;
    if (!d->all_non_negative && vn_session_priority(s) != d->best_priority)
        return true;
    vn_session_send(s, d->st);
    d->delivered++;
    return true;
}

/* RFC 6121 §8.5.2.1: messages to a bare JID go to the available resources
 * with the highest non-negative priority (all of them for headlines);
 * available presence goes to every available resource. */
static size_t deliver_to_account(const vn_event *ev, bool all_non_negative)
{
    bare_delivery d = {.st = ev->stanza, .best_priority = -1, .all_non_negative = all_non_negative};
    vn_sessions_foreach(ev->to, find_best_priority, &d);
    if (d.best_priority < 0)
        return 0;
    vn_sessions_foreach(ev->to, deliver_to_resource, &d);
    return d.delivered;
}

static void route_to_account(vn_event *ev, const char *name, const char *type)
{
    if (is_iq_request(name, type)) {
        if (!vn_account_exists(ev->to->domain, ev->to->local)) {
            vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
            return;
        }
        route_iq_request(ev, "bare");
        return;
    }
    if (run_scoped_hook(ev, name, "bare") == VN_HANDLED)
        return;

    if (strcmp(name, "message") == 0) {
        if (is_type(type, "error"))
            return;
        bool headline = is_type(type, "headline");
        if (!is_type(type, "groupchat") && vn_account_exists(ev->to->domain, ev->to->local) &&
            deliver_to_account(ev, headline) > 0)
            return;
        if (!headline)
            vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return;
    }
    if (strcmp(name, "presence") == 0 && (!type || is_type(type, "unavailable")))
        deliver_to_account(ev, true);
    /* Subscription presence and iq responses without a taker are dropped
     * (RFC 6121 §8.5.2.1.2, §8.5.2.1.3 as far as the core goes). */
}

static void route_to_full(vn_event *ev, const char *name, const char *type)
{
    vn_session *target = vn_session_find(ev->to);

    if (target) {
        char hook[32];
        vn_event full = *ev;
        full.session = target;
        snprintf(hook, sizeof hook, "%s/full", name);
        if (vn_hook_run(hook, &full) != VN_HANDLED)
            vn_session_send(target, ev->stanza);
        return;
    }
    /* RFC 6121 §8.5.3.2: no such resource. */
    if (strcmp(name, "iq") == 0) {
        if (is_iq_request(name, type))
            vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return;
    }
    if (strcmp(name, "message") == 0 && !is_type(type, "groupchat")) {
        route_to_account(ev, name, type);
        return;
    }
    if (strcmp(name, "message") == 0) {
        vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return;
    }
    if (is_subscription(type))
        route_to_account(ev, name, type);
}

static void route_to_host(vn_event *ev, const char *name, const char *type)
{
    if (is_iq_request(name, type)) {
        route_iq_request(ev, "host");
        return;
    }
    run_scoped_hook(ev, name, "host");
}

/* Deliver st; the caller keeps it (vn_route frees, fan-out reuses). */
static void route_borrowed(vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    const char *type = vn_stanza_attr(st, "type");
    vn_jid *to = vn_jid_parse(vn_stanza_attr(st, "to") ? vn_stanza_attr(st, "to") : "");
    vn_jid *from = vn_jid_parse(vn_stanza_attr(st, "from") ? vn_stanza_attr(st, "from") : "");

    vn_metrics.routed++;
    if (!to || !from) {
        vn_log_warn("router: dropping <%s/> without valid from/to", name);
        goto done;
    }
    vn_event ev = {.stanza = st, .from = from, .to = to, .host = to->domain};

    if (vn_is_local_host(to->domain)) {
        if (!to->local && !to->resource)
            route_to_host(&ev, name, type);
        else if (!to->local)
            vn_route_error(st, "cancel", "service-unavailable", NULL);
        else if (vn_hook_run("route/local", &ev) == VN_HANDLED)
            ; /* taken by a filter (blocking, privacy) */
        else if (to->resource)
            route_to_full(&ev, name, type);
        else
            route_to_account(&ev, name, type);
    } else if (vn_components_route(st, to)) {
        /* delivered to the component, or bounced while it is away */
    } else if (vn_hook_run("route/remote", &ev) == VN_HANDLED) {
        /* a service of ours under its own domain (MUC) */
    } else if (!vn_s2s_route(st, from, to)) {
        vn_route_error(st, "cancel", "remote-server-not-found", NULL);
    }
done:
    vn_jid_free(to);
    vn_jid_free(from);
}

void vn_route(vn_stanza *st)
{
    route_borrowed(st);
    vn_stanza_free(st);
}

static void route_when_durable(int status, void *arg)
{
    vn_stanza *st = arg;
    const char *type = vn_stanza_attr(st, "type");

    if (status != VN_STORE_OK && strcmp(vn_stanza_name(st), "iq") == 0 && type &&
        strcmp(type, "result") == 0) {
        vn_stanza *error = vn_stanza_error_reply(st, "wait", "internal-server-error", NULL);
        vn_stanza_set_attr(error, "from", vn_stanza_attr(st, "from"));
        vn_stanza_set_attr(error, "to", vn_stanza_attr(st, "to"));
        vn_stanza_free(st);
        st = error;
    }
    vn_route(st);
}

void vn_route_durable(vn_stanza *st)
{
    vn_store_when_durable(vn_server_store(), route_when_durable, st);
}

void vn_route_fanout(const vn_stanza *st, const char *const *to, size_t n)
{
    vn_stanza *shared = vn_stanza_copy(st);

    vn_stanza_share_serialization(shared);
    for (size_t i = 0; i < n; i++) {
        vn_stanza_set_attr(shared, "to", to[i]);
        route_borrowed(shared);
        if (vn_stanza_shared_changed(shared) && i + 1 < n) {
            /* A hook edited it for this recipient: the next gets a clean copy. */
            vn_stanza_free(shared);
            shared = vn_stanza_copy(st);
            vn_stanza_share_serialization(shared);
        }
    }
    vn_stanza_free(shared);
}
