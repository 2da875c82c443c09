/*
 * cluster.h - several vestnikd nodes routing through NATS (issue 17).
 *
 * With cluster.enabled every node connects to NATS, announces its bound
 * sessions and keeps, in memory, the sessions of every other node as
 * remote entries of the session table (sessions.c): routing stays a
 * synchronous lookup on the loop, and a stanza for a remote session is
 * published to its node's subject, vestnik.node.<id>. With the cluster
 * disabled (the default) none of this runs and the table holds local
 * sessions only.
 */
#ifndef VESTNIK_CLUSTER_H
#define VESTNIK_CLUSTER_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "vestnik/module.h"

/* Connect to NATS and join the cluster if cfg->cluster_enabled; 0 when
 * disabled. -1 with a message in err. */
int vn_cluster_start(uv_loop_t *loop, const vn_config *cfg, vn_buf *err);
/* Say goodbye (the others drop our sessions at once) and disconnect. */
void vn_cluster_stop(void);
/* Release libnats after the loop has stopped. */
void vn_cluster_cleanup(void);
bool vn_cluster_enabled(void);

/* A local session was bound, changed priority or availability, or is
 * going away (gone): tell the other nodes. */
void vn_cluster_session_changed(const vn_session *s, bool gone);
/* Publish st for the session full on node (vn_session_send of a remote
 * session). */
void vn_cluster_forward(const char *node, const char *full, const vn_stanza *st);

/* Ask the other nodes to close the account's sessions (it was deleted). */
void vn_cluster_kick_user(const char *host, const char *user, const char *condition);

/* The cluster's part of /metrics (Prometheus text format); nothing when
 * disabled. */
void vn_cluster_metrics(vn_buf *out);

/* `vestnikctl cluster status`: "ok\n" and one line per node. */
void vn_cluster_status(vn_buf *out);

#endif
