/*
 * broadcast.c - one request, one message to a whole audience a service
 * manages (a class's parents, the customers who opted in).
 *
 * An audience is a named list of local users' bare JIDs, kept per service:
 *   (host, "", "service-audiences", SERVICE "/" NAME)  JIDs, one a line
 * A broadcast goes to the members who started the service (consent.c),
 * skipping and counting the others, with vn_route_fanout (serialized
 * once), to online resources or offline storage and push like any
 * message. The answer is the delivery report, sent once every offline copy
 * is durable. Limits: broadcast_max_audience members, max_audiences per
 * service, broadcasts_per_hour, and the daily quota (audit.c).
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vestnik/roster.h>

#include "platform.h"

#define AUDIENCE_STORE "service-audiences"
#define NAME_MAX_LEN 64

static bool in_progress;

bool broadcast_in_progress(void)
{
    return in_progress;
}

static bool name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
              *p == '.'))
            return false;
    return true;
}

static char *audience_key(const service *svc, const char *name)
{
    return vn_asprintf("%s/%s", svc->rec.jid, name);
}

typedef struct members {
    char **jids;
    size_t n;
} members;

static void members_free(members *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->jids[i]);
    free(m->jids);
    m->jids = NULL;
    m->n = 0;
}

static bool members_has(const members *m, const char *jid)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->jids[i], jid) == 0)
            return true;
    return false;
}

static void members_add(members *m, const char *jid)
{
    m->jids = vn_realloc(m->jids, (m->n + 1) * sizeof *m->jids);
    m->jids[m->n++] = vn_strdup(jid);
}

/* VN_STORE_OK, NOT_FOUND or ERROR. */
static int audience_load(const service *svc, const char *name, members *out)
{
    vn_buf value;
    char *key = audience_key(svc, name);
    vn_buf_init(&value);
    int rc = vn_store_get(vn_server_store(), svc->host, "", AUDIENCE_STORE, key, &value);
    free(key);
    if (rc == VN_STORE_OK)
        for (char *save = NULL, *line = strtok_r(value.data, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            members_add(out, line);
    vn_buf_free(&value);
    return rc;
}

static int audience_save(const service *svc, const char *name, const members *m)
{
    char *key = audience_key(svc, name);
    int rc;
    if (m->n == 0) {
        rc = vn_store_delete(vn_server_store(), svc->host, "", AUDIENCE_STORE, key);
    } else {
        vn_buf value;
        vn_buf_init(&value);
        for (size_t i = 0; i < m->n; i++)
            vn_buf_printf(&value, "%s\n", m->jids[i]);
        rc = vn_store_put(vn_server_store(), svc->host, "", AUDIENCE_STORE, key, value.data,
                          value.len);
        vn_buf_free(&value);
    }
    free(key);
    return rc;
}

typedef struct count_ctx {
    const char *prefix;
    size_t n;
} count_ctx;

static bool count_audience(const char *key, const void *value, size_t len, void *ud)
{
    count_ctx *ctx = ud;
    if (strncmp(key, ctx->prefix, strlen(ctx->prefix)) == 0)
        ctx->n++;
    return true;
}

static size_t audience_count(const service *svc)
{
    char *prefix = vn_asprintf("%s/", svc->rec.jid);
    count_ctx ctx = {prefix, 0};
    vn_store_foreach(vn_server_store(), svc->host, "", AUDIENCE_STORE, count_audience, &ctx);
    free(prefix);
    return ctx.n;
}

static vn_stanza *audience_element(const char *name, const members *m)
{
    vn_stanza *el = vn_stanza_new("audience", NS_SERVICES);
    char num[24];
    vn_stanza_set_attr(el, "name", name);
    snprintf(num, sizeof num, "%zu", m->n);
    vn_stanza_set_attr(el, "size", num);
    for (size_t i = 0; i < m->n; i++)
        vn_stanza_set_attr(vn_stanza_add_child(el, "member", NS_SERVICES), "jid", m->jids[i]);
    return el;
}

/* A member's JID as kept: a local account of the service's host, bare. */
static char *member_jid(const service *svc, const char *given)
{
    vn_jid *jid = vn_jid_parse(given ? given : "");
    char *bare = NULL;
    if (jid && jid->local && !jid->resource && strcmp(jid->domain, svc->host) == 0)
        bare = vn_strdup(jid->bare);
    vn_jid_free(jid);
    return bare;
}

void broadcast_audience_iq(service *svc, vn_event *ev, const vn_stanza *audience)
{
    const char *name = vn_stanza_attr(audience, "name");
    const char *type = vn_stanza_attr(ev->stanza, "type");
    const char *action = vn_stanza_attr(audience, "action");
    members m = {0};

    if (!name_valid(name)) {
        directory_iq_error(ev->stanza, "modify", "bad-request", NULL,
                           N_("An audience's name is 1 to 64 of a-z, 0-9, '-', '_' and '.'"));
        return;
    }
    int rc = audience_load(svc, name, &m);
    if (rc == VN_STORE_ERROR) {
        directory_iq_error(ev->stanza, "wait", "internal-server-error", NULL, NULL);
        return;
    }
    if (strcmp(type, "set") == 0) {
        if (!action)
            action = "add";
        bool add = strcmp(action, "add") == 0, remove = strcmp(action, "remove") == 0;
        if (!add && !remove && strcmp(action, "replace") != 0) {
            members_free(&m);
            directory_iq_error(ev->stanza, "modify", "bad-request", NULL,
                               N_("The action is add, remove or replace"));
            return;
        }
        if (rc == VN_STORE_NOT_FOUND && !remove &&
            audience_count(svc) >= (size_t)platform_conf.max_audiences) {
            members_free(&m);
            directory_iq_error(ev->stanza, "wait", "resource-constraint", "quota-exceeded",
                               N_("The service has as many audiences as it may"));
            return;
        }
        members next = {0}; /* replace starts empty */
        for (size_t i = 0; (add || remove) && i < m.n; i++)
            members_add(&next, m.jids[i]);
        for (const vn_stanza *el = vn_stanza_first_element(audience); el;
             el = vn_stanza_next_element(el)) {
            if (!vn_stanza_is(el, "member", NS_SERVICES))
                continue;
            char *jid = member_jid(svc, vn_stanza_attr(el, "jid"));
            if (!jid) {
                members_free(&m);
                members_free(&next);
                directory_iq_error(ev->stanza, "modify", "jid-malformed", NULL,
                                   N_("Members are bare JIDs of accounts on this server"));
                return;
            }
            if (remove) {
                for (size_t i = 0; i < next.n; i++)
                    if (strcmp(next.jids[i], jid) == 0) {
                        free(next.jids[i]);
                        next.jids[i] = next.jids[--next.n];
                        break;
                    }
            } else if (!members_has(&next, jid)) {
                members_add(&next, jid);
            }
            free(jid);
        }
        members_free(&m);
        m = next;
        if (m.n > (size_t)platform_conf.broadcast_max_audience) {
            members_free(&m);
            directory_iq_error(ev->stanza, "modify", "not-acceptable", "quota-exceeded",
                               N_("The audience would have more members than allowed"));
            return;
        }
        if (audience_save(svc, name, &m) != VN_STORE_OK) {
            members_free(&m);
            directory_iq_error(ev->stanza, "wait", "internal-server-error", NULL, NULL);
            return;
        }
    } else if (rc == VN_STORE_NOT_FOUND) {
        directory_iq_error(ev->stanza, "cancel", "item-not-found", NULL, N_("No such audience"));
        return;
    }
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza_append(reply, audience_element(name, &m));
    members_free(&m);
    vn_route_durable(reply);
}

/* ---- the broadcast ---- */

typedef struct report {
    size_t members, delivered, online, offline, not_started, muted, stopped;
} report;

static bool count_available(vn_session *s, void *ud)
{
    if (vn_session_available(s) || vn_session_hibernating(s)) {
        *(bool *)ud = true;
        return false;
    }
    return true;
}

static void set_count(vn_stanza *el, const char *name, size_t n)
{
    char num[24];
    snprintf(num, sizeof num, "%zu", n);
    vn_stanza_set_attr(el, name, num);
}

/* Does user let the service see their presence (a subscription from them,
 * in their roster)? Only then may a report count them online: starting a
 * service lets it write, not watch. */
static bool shares_presence(const service *svc, const char *user)
{
    vn_roster_item *item = NULL;
    bool shared =
        vn_roster_get(vn_server_store(), svc->host, user, svc->rec.jid, &item) == VN_STORE_OK &&
        item && vn_subscription_has_from(item->subscription);
    vn_roster_item_free(item);
    return shared;
}

/* The <message/> to send: a copy of the request's, from the service. */
static vn_stanza *broadcast_message(const vn_event *ev, const vn_stanza *given)
{
    vn_stanza *msg = vn_stanza_copy(given);
    if (strcmp(vn_stanza_ns(msg), NS_SERVICES) == 0)
        vn_stanza_replace_ns(msg, NS_SERVICES, VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "from", vn_stanza_attr(ev->stanza, "from"));
    vn_stanza_set_attr(msg, "to", NULL);
    if (!vn_stanza_attr(msg, "id")) {
        unsigned char rnd[8];
        char id[24];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            abort();
        snprintf(id, sizeof id, "bc-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        vn_stanza_set_attr(msg, "id", id);
    }
    return msg;
}

void broadcast_iq(service *svc, vn_event *ev, const vn_stanza *broadcast)
{
    const char *name = vn_stanza_attr(broadcast, "audience");
    const vn_stanza *given = vn_stanza_child(broadcast, "message", NULL);
    members m = {0};
    int64_t hour = vn_now_us() / 3600000000LL;

    if (!name_valid(name) || !given || !vn_stanza_child(given, "body", NULL)) {
        directory_iq_error(ev->stanza, "modify", "bad-request", NULL,
                           N_("A broadcast names an audience and carries a message with a body"));
        return;
    }
    if (svc->hour != hour) {
        svc->hour = hour;
        svc->hour_broadcasts = 0;
    }
    if (svc->hour_broadcasts >= (unsigned)platform_conf.broadcasts_per_hour) {
        directory_iq_error(ev->stanza, "wait", "policy-violation", "rate-limited",
                           N_("Too many broadcasts this hour: try again later"));
        return;
    }
    int rc = audience_load(svc, name, &m);
    if (rc != VN_STORE_OK) {
        members_free(&m);
        directory_iq_error(ev->stanza, rc == VN_STORE_NOT_FOUND ? "cancel" : "wait",
                           rc == VN_STORE_NOT_FOUND ? "item-not-found" : "internal-server-error",
                           NULL, rc == VN_STORE_NOT_FOUND ? N_("No such audience") : NULL);
        return;
    }
    report r = {.members = m.n};
    const char **to = vn_alloc((m.n ? m.n : 1) * sizeof *to);
    for (size_t i = 0; i < m.n; i++) {
        vn_jid *jid = vn_jid_parse(m.jids[i]);
        consent_state st = jid ? consent_get(svc->host, jid->local, svc->rec.jid) : CONSENT_NONE;
        if (svc->rec.suspended || (platform_conf.consent_required && st != CONSENT_STARTED)) {
            if (st == CONSENT_MUTED)
                r.muted++;
            else if (st == CONSENT_STOPPED)
                r.stopped++;
            else
                r.not_started++;
        } else {
            bool online = false;
            if (jid && shares_presence(svc, jid->local))
                vn_sessions_foreach(jid, count_available, &online);
            if (online)
                r.online++;
            else
                r.offline++;
            to[r.delivered++] = m.jids[i];
        }
        vn_jid_free(jid);
    }
    const consent_refusal *no = audit_allow(svc, r.delivered, true);
    if (no) {
        free(to);
        members_free(&m);
        directory_iq_error(ev->stanza, no->type, no->condition, no->app_condition, no->text);
        return;
    }
    vn_stanza *msg = broadcast_message(ev, given);
    in_progress = true;
    vn_route_fanout(msg, to, r.delivered);
    in_progress = false;
    svc->hour_broadcasts++;
    svc->rec.broadcasts++;
    svc->rec.sent += r.delivered;
    svc->rec.refused += r.not_started + r.stopped;
    registry_touch(svc);
    audit_log(svc, AUDIT_BROADCAST, name, msg, r.delivered);
    vn_log_info("services: %s broadcast to %s: %zu of %zu delivered", svc->rec.jid, name,
                r.delivered, r.members);

    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *el = vn_stanza_add_child(reply, "report", NS_SERVICES);
    vn_stanza_set_attr(el, "audience", name);
    vn_stanza_set_attr(el, "id", vn_stanza_attr(msg, "id"));
    set_count(el, "members", r.members);
    set_count(el, "delivered", r.delivered);
    set_count(el, "online", r.online);
    set_count(el, "offline", r.offline);
    set_count(el, "not-started", r.not_started);
    set_count(el, "muted", r.muted);
    set_count(el, "stopped", r.stopped);
    vn_stanza_free(msg);
    free(to);
    members_free(&m);
    vn_route_durable(reply); /* the offline copies are on disk first */
}
