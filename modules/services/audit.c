/*
 * audit.c - what each service sent and received, and how much it may.
 *
 * The log is an archive per service, one item per stanza exchanged with a
 * user (or per broadcast), "with" the user's bare JID (or the audience),
 * holding what it was and not what it said: kind, stanza type, id, size.
 *   (host, "", "service-audit/" SERVICE)  "KIND\tTYPE\tID\tBYTES[\tRECIPIENTS]"
 * Users see their part in "My services"; the operator the counters in
 * `vestnikctl services list`. Items older than audit_retention_days go.
 *
 * Abuse limits per service: message_rate messages a second on average
 * with message_burst at once (a token bucket), and daily_quota messages a
 * day (broadcast recipients count one each); 0 means none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

#define RETENTION_CHECK_MS (3600 * 1000)
#define US_PER_DAY 86400000000LL

static vn_timer *retention_timer;

static const char *const kind_names[] = {"in", "out", "refused", "broadcast"};
/* How a user reads them ("My services"), msgids. */
static const char *const kind_texts[] = {N_("from you:"), N_("to you:"), N_("refused:"),
                                         N_("broadcast:")};

static char *archive_name(const service *svc)
{
    return vn_asprintf(AUDIT_ARCHIVE_PREFIX "%s", svc->rec.jid);
}

void audit_log(service *svc, audit_kind kind, const char *with, const vn_stanza *st, size_t n)
{
    const char *type = vn_stanza_attr(st, "type");
    const char *id = vn_stanza_attr(st, "id");
    size_t len = 0;
    char *xml = vn_stanza_serialize(st, VN_NS_CLIENT, &len);
    free(xml);
    char *line = kind == AUDIT_BROADCAST ? vn_asprintf("%s\t%s\t%s\t%zu\t%zu", kind_names[kind],
                                                       type ? type : "normal", id ? id : "", len, n)
                                         : vn_asprintf("%s\t%s\t%s\t%zu", kind_names[kind],
                                                       type ? type : "normal", id ? id : "", len);
    char *archive = archive_name(svc);
    if (vn_archive_append(vn_server_store(), svc->host, "", archive, 0, with, line, strlen(line),
                          NULL) != VN_STORE_OK)
        vn_log_warn("services: cannot log for %s", svc->rec.jid);
    free(archive);
    free(line);
}

static const consent_refusal rate_limited = {
    "wait", "policy-violation", "rate-limited",
    N_("The service sends too fast: slow down and try again")};
static const consent_refusal quota_exceeded = {
    "wait", "resource-constraint", "quota-exceeded",
    N_("The service has sent as many messages today as it may")};

const consent_refusal *audit_allow(service *svc, size_t n, bool broadcast)
{
    int64_t now = vn_now_us();
    int64_t day = now / US_PER_DAY;

    if (svc->day != day) {
        svc->day = day;
        svc->day_count = 0;
    }
    if (platform_conf.daily_quota && svc->day_count + n > (uint64_t)platform_conf.daily_quota)
        return &quota_exceeded;
    if (!broadcast && platform_conf.message_rate) {
        if (svc->refill_us == 0) {
            svc->tokens = (double)platform_conf.message_burst;
        } else {
            svc->tokens +=
                (double)(now - svc->refill_us) / 1e6 * (double)platform_conf.message_rate;
            if (svc->tokens > (double)platform_conf.message_burst)
                svc->tokens = (double)platform_conf.message_burst;
        }
        svc->refill_us = now;
        if (svc->tokens < (double)n)
            return &rate_limited;
        svc->tokens -= (double)n;
    }
    svc->day_count += n;
    return NULL;
}

typedef struct foreach_ctx {
    audit_entry_cb cb;
    void *ud;
} foreach_ctx;

static bool each_item(const vn_archive_item *item, void *ud)
{
    foreach_ctx *ctx = ud;
    char *line = vn_strndup(item->data, item->len);
    char *fields[5] = {0};
    size_t n = 0;
    for (char *save = NULL, *f = strtok_r(line, "\t", &save); f && n < 5;
         f = strtok_r(NULL, "\t", &save))
        fields[n++] = f;
    bool go_on = true;
    for (size_t k = 0; n >= 2 && k < sizeof kind_names / sizeof *kind_names; k++) {
        if (strcmp(fields[0], kind_names[k]) != 0)
            continue;
        char *what = vn_asprintf("%s %s%s%s", item->with, fields[1], n > 2 && *fields[2] ? " " : "",
                                 n > 2 ? fields[2] : "");
        go_on = ctx->cb(item->ts_us, kind_texts[k], item->with, what, ctx->ud);
        free(what);
    }
    free(line);
    return go_on;
}

void audit_foreach(service *svc, const char *user, size_t limit, audit_entry_cb cb, void *ud)
{
    foreach_ctx ctx = {cb, ud};
    vn_archive_query q = {.with = user, .limit = limit, .reverse = true};
    char *archive = archive_name(svc);
    vn_archive_query_items(vn_server_store(), svc->host, "", archive, &q, each_item, &ctx, NULL);
    free(archive);
}

static void expire(service *svc, void *ud)
{
    int64_t before = *(const int64_t *)ud;
    char *archive = archive_name(svc);
    vn_archive_delete_before(vn_server_store(), svc->host, "", archive, before);
    free(archive);
}

static void on_retention(vn_timer *t, void *ud)
{
    int64_t before = vn_now_us() - platform_conf.audit_retention_days * US_PER_DAY;
    registry_foreach(NULL, expire, &before);
}

int audit_start(vn_module *m)
{
    retention_timer = vn_timer_start(RETENTION_CHECK_MS, RETENTION_CHECK_MS, on_retention, NULL);
    return 0;
}

void audit_stop(vn_module *m)
{
    vn_timer_stop(retention_timer);
    retention_timer = NULL;
}
