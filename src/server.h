/*
 * server.h - the process-wide state of vestnikd and its life cycle.
 *
 * One loop thread owns everything here. start-up order: config, logging,
 * store, TLS, hooks, modules, listeners, admin socket; shutdown reverses
 * it. SIGHUP (or `vestnikctl reload`) re-reads the config and
 * certificates without dropping sessions.
 */
#ifndef VESTNIK_SERVER_H
#define VESTNIK_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "vestnik/store.h"

typedef struct vn_server {
    uv_loop_t *loop;
    vn_config *cfg;
    vn_store *store;
    int64_t started_us;
    bool stopping;
} vn_server;

extern vn_server vn_srv;

/* Load config and bring everything up; -1 with messages in err. */
int vn_server_start(uv_loop_t *loop, const char *config_path, vn_buf *err);
/* Re-read config and certificates; on error the running config stays. */
int vn_server_reload(vn_buf *err);
/* Close streams gracefully and stop the loop. */
void vn_server_stop(void);
/* Release everything after the loop has stopped. */
void vn_server_cleanup(void);
/* One-line human-readable status (uptime, sessions, modules). */
void vn_server_status(vn_buf *out);

/* The presence that cancels an account's subscriptions both ways (RFC 6121
 * §3.2, §3.3), so that its contacts' rosters stop granting its presence and
 * their presence-access data to whoever registers the name next: collected
 * from the roster before the account is deleted (on the loop), then routed
 * if the deletion succeeded (send) or dropped. vn_account_delete does both. */
typedef struct vn_farewell vn_farewell;
vn_farewell *vn_farewell_collect(const char *host, const char *user);
void vn_farewell_finish(vn_farewell *f, bool send);

#endif
