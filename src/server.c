/*
 * server.c - the process-wide state of vestnikd: start-up, reload,
 * shutdown, and the server-information part of the module API.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "abuse_limits.h"
#include "accounts.h"
#include "admin.h"
#include "c2s.h"
#include "cluster.h"
#include "component.h"
#include "hooks.h"
#include "http_server.h"
#include "i18n.h"
#include "listener.h"
#include "log_internal.h"
#include "metrics.h"
#include "modload.h"
#include "outbound.h"
#include "s2s.h"
#include "server.h"
#include "sessions.h"
#include "shaper.h"
#include "store_backend.h"
#include "tls.h"
#include "vestnik/module.h"
#include "web_transports.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

vn_server vn_srv;

static const char **host_names; /* NULL-terminated view of cfg->hosts */

static void set_hosts(const vn_config *cfg)
{
    free(host_names);
    host_names = vn_alloc((cfg->n_hosts + 1) * sizeof *host_names);
    for (size_t i = 0; i < cfg->n_hosts; i++)
        host_names[i] = cfg->hosts[i].name;
}

static int make_dir(const char *path, vn_buf *err)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST)
        return 0;
    vn_buf_printf(err, "cannot create data_dir %s: %s\n", path, strerror(errno));
    return -1;
}

static const char *listener_type_name(vn_listener_type type)
{
    switch (type) {
    case VN_LISTEN_C2S: return "c2s";
    case VN_LISTEN_C2S_TLS: return "c2s_tls";
    case VN_LISTEN_HTTP: return "http";
    case VN_LISTEN_HTTPS: return "https";
    case VN_LISTEN_COMPONENT: return "component";
    case VN_LISTEN_S2S: return "s2s";
    case VN_LISTEN_S2S_TLS: return "s2s_tls";
    }
    return "?";
}

static void describe_listeners(const vn_config *cfg, vn_buf *out)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const vn_listener_conf *l = &cfg->listeners[i];
        vn_buf_printf(out, "%s%s [%s]:%d", i ? ", " : "", listener_type_name(l->type), l->address,
                      l->port);
    }
}

/* Hands each accepted connection to the stream layer its listener serves. */
static void accept_connection(vn_conn *c, const vn_listener_conf *lc, void *ud)
{
    switch (lc->type) {
    case VN_LISTEN_HTTP:
    case VN_LISTEN_HTTPS: vn_http_accept(c, lc, ud); break;
    case VN_LISTEN_COMPONENT: vn_component_accept(c, lc, ud); break;
    case VN_LISTEN_S2S:
    case VN_LISTEN_S2S_TLS: vn_s2s_accept(c, lc, ud); break;
    case VN_LISTEN_C2S:
    case VN_LISTEN_C2S_TLS: vn_c2s_accept(c, lc, ud); break;
    }
}

int vn_server_start(uv_loop_t *loop, const char *config_path, vn_buf *err)
{
    vn_srv.loop = loop;
    vn_srv.started_us = vn_now_us();
    vn_srv.cfg = vn_config_load(config_path, err);
    if (!vn_srv.cfg)
        return -1;
    const vn_config *cfg = vn_srv.cfg;
    vn_log_setup(cfg->log_level, cfg->log_syslog, "vestnikd");
    vn_i18n_setup(cfg->locale_dir, cfg->language);
    vn_language_command_register();
    set_hosts(cfg);

    if (make_dir(cfg->data_dir, err) < 0)
        return -1;
    char *store_path = vn_asprintf("%s/store", cfg->data_dir);
    vn_store_options opts = {.backend = cfg->store_backend,
                             .path = store_path,
                             .map_size_mb = cfg->store_map_size_mb,
                             .conninfo = cfg->store_pg_conninfo,
                             .read_timeout_ms = cfg->store_pg_read_timeout_ms,
                             .write_timeout_ms = cfg->store_pg_write_timeout_ms,
                             .snapshot_max_age_ms = cfg->store_pg_snapshot_max_age_ms,
                             .read_cache_kb = cfg->store_pg_read_cache_kb};
    vn_srv.store = vn_store_open(&opts, err);
    free(store_path);
    if (!vn_srv.store)
        return -1;
    int rc = vn_store_attach_loop(vn_srv.store, loop);
    if (rc < 0) {
        vn_buf_printf(err, "store: cannot start its writer: %s", uv_strerror(rc));
        return -1;
    }
    if (vn_tls_init(cfg, err) < 0 || vn_modules_load(cfg, err) < 0)
        return -1;
    vn_components_configure(cfg);
    if (vn_s2s_start(loop, err) < 0 || vn_cluster_start(loop, cfg, err) < 0)
        return -1;
    vn_websocket_init();
    vn_bosh_init();
    vn_host_meta_init();
    vn_metrics_init();
    /* The admin socket first: it tells a second vestnikd on the same
     * data_dir that one is running, before the ports say it less clearly. */
    if (vn_admin_start(loop, cfg->admin_socket, err) < 0)
        return -1;
    if (vn_listeners_start(loop, cfg, accept_connection, NULL, err) < 0)
        return -1;

    vn_buf where;
    vn_buf_init(&where);
    describe_listeners(cfg, &where);
    vn_log_info("vestnik %s started: %zu host(s), listening on %s", PACKAGE_VERSION, cfg->n_hosts,
                where.data);
    vn_buf_reset(&where);
    vn_limits_describe(&where);
    vn_log_info("limits: %s", where.data);
    vn_buf_free(&where);
    return 0;
}

int vn_server_reload(vn_buf *err)
{
    vn_config *next = vn_config_load(vn_srv.cfg->path, err);
    if (!next)
        return -1;
    if (vn_tls_reload(next, err) < 0 || vn_modules_reload(next, err) < 0) {
        vn_config_free(next);
        return -1;
    }
    if (strcmp(next->data_dir, vn_srv.cfg->data_dir) != 0 ||
        next->n_listeners != vn_srv.cfg->n_listeners)
        vn_log_warn("reload: data_dir and listener changes take effect after a restart");

    vn_config *old = vn_srv.cfg;
    vn_srv.cfg = next;
    set_hosts(next);
    vn_components_configure(next);
    vn_log_setup(next->log_level, next->log_syslog, "vestnikd");
    vn_i18n_setup(next->locale_dir, next->language);
    vn_config_free(old);

    vn_event ev = {0};
    vn_hook_run("host/reload", &ev);
    vn_log_info("configuration reloaded from %s", next->path);
    return 0;
}

void vn_server_stop(void)
{
    if (vn_srv.stopping)
        return;
    vn_srv.stopping = true;
    vn_log_info("shutting down");
    vn_admin_stop();
    vn_listeners_stop();
    vn_c2s_close_all("system-shutdown");
    vn_cluster_stop(); /* after the sessions' goodbyes were announced */
    vn_components_shutdown();
    vn_s2s_stop();
    vn_http_close_all();
    /* What waits for the disk runs now, while every module is loaded. */
    vn_store_flush(vn_srv.store);
    /* Sessions' data may hold module functions: release them first. */
    vn_sessions_reap();
    vn_modules_unload_all();
    vn_timers_stop_all();
}

void vn_server_cleanup(void)
{
    vn_outbound_reset();
    vn_cluster_stop();
    vn_modules_unload_all();
    vn_hooks_clear();
    vn_disco_clear();
    vn_tls_shutdown();
    vn_limits_clear();
    if (vn_srv.store)
        vn_store_close(vn_srv.store);
    vn_config_free(vn_srv.cfg);
    free(host_names);
    host_names = NULL;
    vn_cluster_cleanup();
    memset(&vn_srv, 0, sizeof vn_srv);
}

void vn_server_status(vn_buf *out)
{
    int64_t up = (vn_now_us() - vn_srv.started_us) / 1000000;
    vn_buf_printf(out, "vestnik %s up %lld s, %zu session(s), %zu connection(s), hosts:",
                  PACKAGE_VERSION, (long long)up, vn_sessions_count(), vn_c2s_count());
    for (size_t i = 0; i < vn_srv.cfg->n_hosts; i++)
        vn_buf_printf(out, " %s", vn_srv.cfg->hosts[i].name);
    vn_shaper_stats shaped;
    vn_shaper_get_stats(&shaped);
    vn_buf_printf(out,
                  ", throttled: %zu stream(s) now, %llu episode(s), %llu closed for "
                  "sustained excess",
                  shaped.throttled_now, (unsigned long long)shaped.episodes,
                  (unsigned long long)shaped.closed);
    vn_buf_append_str(out, ", modules: ");
    vn_modules_describe(out);
    vn_buf_append_str(out, "; ");
    vn_limits_describe(out);
    vn_buf_append_str(out, "; ");
    vn_outbound_describe(out);
}

/* ---- the module API's server information ---- */

bool vn_is_local_host(const char *domain)
{
    return domain && vn_srv.cfg && vn_config_host(vn_srv.cfg, domain) != NULL;
}

const char *const *vn_local_hosts(void)
{
    return host_names;
}

vn_store *vn_server_store(void)
{
    return vn_srv.store;
}

const char *vn_server_data_dir(void)
{
    return vn_srv.cfg->data_dir;
}

struct uv_loop_s *vn_server_loop(void)
{
    return vn_srv.loop;
}

const char *vn_server_version(void)
{
    return PACKAGE_VERSION;
}

int64_t vn_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

bool vn_account_exists(const char *host, const char *user)
{
    return vn_accounts_exists(vn_srv.store, host, user);
}

int vn_account_create(const char *host, const char *user, const char *password)
{
    return vn_accounts_create(vn_srv.store, host, user, password, vn_srv.cfg->scram_iterations);
}

int vn_account_set_password(const char *host, const char *user, const char *password)
{
    return vn_accounts_set_password(vn_srv.store, host, user, password,
                                    vn_srv.cfg->scram_iterations);
}

int vn_account_check_password(const char *host, const char *user, const char *password)
{
    return vn_accounts_check_password(vn_srv.store, host, user, password);
}

struct vn_farewell {
    char *from;           /* the account's bare JID */
    vn_stanza **presence; /* to send once the account is gone */
    size_t n;
};

static void farewell_add(vn_farewell *f, const char *to, const char *type)
{
    vn_stanza *p = vn_stanza_new("presence", VN_NS_CLIENT);
    vn_stanza_set_attr(p, "from", f->from);
    vn_stanza_set_attr(p, "to", to);
    vn_stanza_set_attr(p, "type", type);
    f->presence = vn_realloc(f->presence, (f->n + 1) * sizeof *f->presence);
    f->presence[f->n++] = p;
}

static bool farewell_item(const vn_roster_item *item, void *ud)
{
    bool from = item->subscription == VN_SUB_FROM || item->subscription == VN_SUB_BOTH;
    bool to = item->subscription == VN_SUB_TO || item->subscription == VN_SUB_BOTH;
    if (from || item->pending_in)
        farewell_add(ud, item->jid, "unsubscribed");
    if (to || item->ask)
        farewell_add(ud, item->jid, "unsubscribe");
    return true;
}

vn_farewell *vn_farewell_collect(const char *host, const char *user)
{
    vn_farewell *f = vn_alloc(sizeof *f);
    f->from = vn_asprintf("%s@%s", user, host);
    vn_roster_foreach(vn_srv.store, host, user, farewell_item, f);
    return f;
}

void vn_farewell_finish(vn_farewell *f, bool send)
{
    for (size_t i = 0; i < f->n; i++) {
        if (send)
            vn_route(f->presence[i]);
        else
            vn_stanza_free(f->presence[i]);
    }
    free(f->presence);
    free(f->from);
    free(f);
}

int vn_account_delete(const char *host, const char *user)
{
    vn_farewell *f = vn_farewell_collect(host, user);
    int rc = vn_accounts_delete(vn_srv.store, host, user);
    vn_farewell_finish(f, rc == 0);
    if (rc == 0)
        vn_sessions_kick_user(host, user, "not-authorized");
    return rc;
}
