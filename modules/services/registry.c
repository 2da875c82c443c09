/*
 * registry.c - the services in memory: each one's record (profile, the
 * operator's verified and suspended flags, counters; registry_store.h),
 * loaded from every local host's store at start and written back when
 * changed, and the admin socket's `services` commands (vestnikctl
 * services list|log|verify|unverify|suspend|resume on a running server).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "botapi.h"
#include "platform.h"

/* Counters are written at most this often (a crash loses that much). */
#define SAVE_INTERVAL_MS 5000
/* Entries `vestnikctl services log` shows unless told. */
#define LOG_LINES 50

const char *const registry_categories[] = {"bank",      "school",    "government", "shop", "health",
                                           "transport", "utilities", "other",      NULL};
static const char *const category_names[] = {
    N_("Banks"),  N_("Schools"),   N_("Government services"), N_("Shops"),
    N_("Health"), N_("Transport"), N_("Utilities"),           N_("Other services"),
};

static service *services;       /* by rec.jid */
static size_t account_services; /* of them, bot accounts (ids with '@') */
static vn_timer *save_timer;

const char *registry_category_name(const char *id)
{
    for (size_t i = 0; id && registry_categories[i]; i++)
        if (strcmp(registry_categories[i], id) == 0)
            return category_names[i];
    return NULL;
}

service *registry_find(const char *id)
{
    service *svc = NULL;
    if (id)
        HASH_FIND_STR(services, id, svc);
    return svc;
}

static service *service_add(const char *host, const char *id)
{
    service *svc = vn_alloc(sizeof *svc);
    svc->host = vn_strdup(host);
    svc->rec.jid = vn_strdup(id);
    HASH_ADD_KEYPTR(hh, services, svc->rec.jid, strlen(svc->rec.jid), svc);
    if (strchr(id, '@'))
        account_services++;
    return svc;
}

service *registry_ensure(const char *host, const char *id)
{
    service *svc = registry_find(id);
    return svc ? svc : service_add(host, id);
}

bool registry_may_speak_for(const char *jid)
{
    const char *at = strchr(jid, '@');
    const char *domain = at ? at + 1 : jid;
    size_t len = strcspn(domain, "/");
    char buf[1024];
    if (len >= sizeof buf)
        return true; /* let the full check decide */
    memcpy(buf, domain, len);
    buf[len] = '\0';
    return vn_is_component(buf) || (at && (account_services > 0 || botapi_host_of_domain(buf)));
}

service *registry_for(const vn_jid *jid, const char *host)
{
    if (!jid || vn_is_local_host(jid->domain))
        return registry_find(jid ? jid->bare : NULL); /* a bot account, if registered */
    const char *bot_host = services_bot_host(jid);    /* a Bot API bot */
    if (bot_host) {
        service *svc = registry_find(jid->bare);
        return svc ? svc : service_add(bot_host, jid->bare);
    }
    if (!vn_is_component(jid->domain))
        return NULL;
    service *svc = registry_find(jid->domain);
    return svc ? svc : service_add(host ? host : vn_local_hosts()[0], jid->domain);
}

bool registry_listed(const service *svc)
{
    return svc->rec.name && svc->rec.category && !svc->rec.suspended;
}

void registry_save(service *svc)
{
    if (service_record_put(vn_server_store(), svc->host, &svc->rec) != VN_STORE_OK)
        vn_log_warn("services: cannot save the record of %s", svc->rec.jid);
    svc->dirty = false;
}

void registry_touch(service *svc)
{
    svc->dirty = true;
}

static void save_dirty(vn_timer *t, void *ud)
{
    for (service *svc = services; svc; svc = svc->hh.next)
        if (svc->dirty)
            registry_save(svc);
}

void registry_foreach(const char *host, registry_cb cb, void *ud)
{
    for (service *svc = services; svc; svc = svc->hh.next)
        if (!host || strcmp(svc->host, host) == 0)
            cb(svc, ud);
}

/* ---- loading ---- */

typedef struct load_ctx {
    const char *host;
} load_ctx;

static bool load_record(const service_record *r, void *ud)
{
    const load_ctx *ctx = ud;
    if (registry_find(r->jid))
        return true; /* listed by another host already */
    service_record *dst = &service_add(ctx->host, r->jid)->rec;
    dst->name = vn_strdup(r->name);
    dst->description = vn_strdup(r->description);
    dst->category = vn_strdup(r->category);
    dst->avatar = vn_strdup(r->avatar);
    dst->operator_name = vn_strdup(r->operator_name);
    dst->privacy = vn_strdup(r->privacy);
    dst->verified = r->verified;
    dst->suspended = r->suspended;
    dst->sent = r->sent;
    dst->received = r->received;
    dst->refused = r->refused;
    dst->broadcasts = r->broadcasts;
    return true;
}

/* ---- the admin socket: services list [HOST] | log JID [N] | verify | unverify |
 * suspend | resume JID ---- */

static void list_line(service *svc, void *ud)
{
    vn_buf *out = ud;
    const service_record *r = &svc->rec;
    vn_buf_printf(out,
                  "%s\t%s\t%s\t%s%s\tsent=%" PRIu64 " received=%" PRIu64 " refused=%" PRIu64
                  " broadcasts=%" PRIu64 "\n",
                  r->jid, r->category ? r->category : "-", r->name ? r->name : "-",
                  r->verified ? "verified" : "unverified", r->suspended ? ",suspended" : "",
                  r->sent, r->received, r->refused, r->broadcasts);
}

static vn_hook_result on_admin(vn_event *ev, void *ud)
{
    vn_admin_command *cmd = ev->data;

    if (cmd->n_fields < 2 || strcmp(cmd->fields[0], "services") != 0)
        return VN_PASS;
    const char *op = cmd->fields[1];
    if (strcmp(op, "list") == 0) {
        vn_buf_append_str(cmd->reply, "ok\n");
        registry_foreach(cmd->n_fields > 2 ? cmd->fields[2] : NULL, list_line, cmd->reply);
        return VN_HANDLED;
    }
    service *svc = cmd->n_fields > 2 ? registry_find(cmd->fields[2]) : NULL;
    if (!svc) {
        vn_buf_append_str(cmd->reply, "error no such service\n");
        return VN_HANDLED;
    }
    if (strcmp(op, "log") == 0) {
        long long limit = cmd->n_fields > 3 ? strtoll(cmd->fields[3], NULL, 10) : LOG_LINES;
        vn_buf_append_str(cmd->reply, "ok\n");
        if (service_log_lines(vn_server_store(), svc->host, svc->rec.jid,
                              limit > 0 ? (size_t)limit : LOG_LINES, cmd->reply) != VN_STORE_OK) {
            vn_buf_reset(cmd->reply);
            vn_buf_append_str(cmd->reply, "error cannot read the log\n");
        }
        return VN_HANDLED;
    }
    if (strcmp(op, "verify") == 0)
        svc->rec.verified = true;
    else if (strcmp(op, "unverify") == 0)
        svc->rec.verified = false;
    else if (strcmp(op, "suspend") == 0)
        svc->rec.suspended = true;
    else if (strcmp(op, "resume") == 0)
        svc->rec.suspended = false;
    else {
        vn_buf_append_str(cmd->reply, "error unknown services command\n");
        return VN_HANDLED;
    }
    registry_save(svc);
    vn_log_info("services: %s %s (operator)", op, svc->rec.jid);
    vn_buf_append_str(cmd->reply, "ok\n");
    return VN_HANDLED;
}

int registry_start(vn_module *m)
{
    const char *const *hosts = vn_local_hosts();
    for (size_t i = 0; hosts[i]; i++) {
        load_ctx ctx = {hosts[i]};
        if (service_record_foreach(vn_server_store(), hosts[i], load_record, &ctx) ==
            VN_STORE_ERROR)
            vn_log_warn("services: cannot read the services of %s", hosts[i]);
    }
    save_timer = vn_timer_start(SAVE_INTERVAL_MS, SAVE_INTERVAL_MS, save_dirty, NULL);
    vn_hook_add("admin/command", 0, on_admin, NULL);
    return 0;
}

void registry_stop(vn_module *m)
{
    service *svc, *tmp;

    vn_hook_remove("admin/command", on_admin, NULL);
    vn_timer_stop(save_timer);
    save_timer = NULL;
    HASH_ITER(hh, services, svc, tmp)
    {
        if (svc->dirty)
            registry_save(svc);
        HASH_DEL(services, svc);
        if (strchr(svc->rec.jid, '@'))
            account_services--;
        service_record_free(&svc->rec);
        free(svc->host);
        free(svc);
    }
}
