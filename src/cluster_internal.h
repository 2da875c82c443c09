/*
 * cluster_internal.h - what the cluster's files share: the NATS link
 * (cluster_nats.c), the node registry (cluster_nodes.c), the replicated
 * session table (cluster_table.c) and stanza forwarding
 * (cluster_forward.c). Subjects:
 *   vestnik.node.<id>          stanzas for sessions on node <id>
 *   vestnik.cluster.hb         heartbeats (node, announcement sequence)
 *   vestnik.cluster.session    one local session bound/changed/gone
 *   vestnik.cluster.want.<id>  asks <id> for its whole table
 *   vestnik.cluster.table      a node's whole table (its answer)
 *   vestnik.cluster.kick       close an account's sessions (deleted)
 *   vestnik.cluster.bye        a node leaving cleanly
 * Everything under vestnik.cluster. comes through one subscription, so a
 * node's announcements and snapshots arrive in the order it sent them.
 */
#ifndef VESTNIK_CLUSTER_INTERNAL_H
#define VESTNIK_CLUSTER_INTERNAL_H

#include <nats/nats.h>
#include <stdint.h>

#include "cluster.h"

#define CL_SUBJECT_PREFIX "vestnik.cluster."

typedef struct cl_state {
    const char *node_id;
    unsigned heartbeat_ms, node_timeout_ms;
    uint64_t seq; /* our announcements so far */
    uint64_t forwarded_out, forwarded_in, forward_dropped;
} cl_state;

extern cl_state cl;

/* cluster_nats.c: the connection, on the loop through libnats' libuv
 * adapter; received messages are handed to cl_dispatch on the loop. */
int cl_nats_connect(uv_loop_t *loop, const char *url, vn_buf *err);
void cl_nats_close(void);
/* Publish with headers given as NULL-terminated name, value pairs. */
void cl_publish(const char *subject, const char *const *headers, const void *data, size_t len);
bool cl_nats_connected(void);
const char *cl_nats_url(void);
void cl_dispatch(natsMsg *msg); /* cluster.c, on the loop */
/* The header's value, or NULL. */
const char *cl_header(natsMsg *msg, const char *name);

/* cluster_nodes.c */
void cl_nodes_start(void);
void cl_nodes_stop(void);
/* A message from node id with its announcement sequence: it is alive; a
 * new node, or a heartbeat ahead of what we applied, makes us ask for its
 * table. */
void cl_node_heard(const char *id, uint64_t seq, bool is_heartbeat);
void cl_node_forget(const char *id);
bool cl_node_seq_expected(const char *id, uint64_t seq);
void cl_node_set_seq(const char *id, uint64_t seq);
/* Announcements of node id applied here; 0 for a node not heard of. */
uint64_t cl_node_applied(const char *id);
void cl_nodes_status(vn_buf *out);
size_t cl_nodes_count(void); /* other nodes alive */

/* cluster_table.c */
void cl_table_announce(const vn_session *s, bool gone);
void cl_table_on_session(natsMsg *msg);
void cl_table_on_want(void);
void cl_table_on_table(natsMsg *msg);
void cl_table_request(const char *node);
/* A node left or died: forget its sessions; with speak, tell their
 * contacts and the accounts' other resources they are unavailable. */
void cl_table_drop_node(const char *node, bool speak);

/* cluster_forward.c */
void cl_forward_on_stanza(natsMsg *msg);
/* Handle the stanzas that waited for their sender's announcements and
 * have them now (or waited node_timeout_ms; only those with expire_only). */
void cl_forward_release(bool expire_only);
void cl_forward_stop(void); /* drop what still waits */

#endif
