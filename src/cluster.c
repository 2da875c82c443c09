/*
 * cluster.c - the cluster's life cycle and its message dispatch.
 *
 * Joins (connect, subscribe, heartbeats), leaves (a goodbye so the others
 * drop our sessions at once rather than after node_timeout_ms), sends
 * each message received to the file that handles its subject, and
 * answers `vestnikctl cluster status`. See cluster_internal.h for the
 * subjects.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"
#include "sessions.h"

cl_state cl;
static bool enabled;
static char *node_id;
static bool nats_used; /* libnats was initialised: release it at cleanup */

bool vn_cluster_enabled(void)
{
    return enabled;
}

int vn_cluster_start(uv_loop_t *loop, const vn_config *cfg, vn_buf *err)
{
    if (!cfg->cluster_enabled)
        return 0;
    node_id = vn_strdup(cfg->cluster_node_id);
    cl = (cl_state){.node_id = node_id,
                    .heartbeat_ms = cfg->cluster_heartbeat_ms,
                    .node_timeout_ms = cfg->cluster_node_timeout_ms};
    nats_used = true;
    if (cl_nats_connect(loop, cfg->cluster_nats_url, err) < 0) {
        free(node_id);
        node_id = NULL;
        return -1;
    }
    enabled = true;
    cl_nodes_start();
    vn_log_info("cluster: node %s joined through NATS at %s", node_id, cfg->cluster_nats_url);
    return 0;
}

void vn_cluster_stop(void)
{
    if (!enabled)
        return;
    const char *headers[] = {"Vn-Node", cl.node_id, NULL};
    cl_publish(CL_SUBJECT_PREFIX "bye", headers, NULL, 0);
    cl_nodes_stop();
    cl_forward_stop();
    cl_nats_close();
    enabled = false;
    free(node_id);
    node_id = NULL;
}

void vn_cluster_cleanup(void)
{
    /* libnats' threads and global state: after the loop ended. */
    if (nats_used)
        nats_Close();
    nats_used = false;
}

void vn_cluster_session_changed(const vn_session *s, bool gone)
{
    if (enabled)
        cl_table_announce(s, gone);
}

void vn_cluster_kick_user(const char *host, const char *user, const char *condition)
{
    if (!enabled)
        return;
    const char *headers[] = {"Vn-Node", cl.node_id,     "Vn-Host", host, "Vn-User",
                             user,      "Vn-Condition", condition, NULL};
    cl_publish(CL_SUBJECT_PREFIX "kick", headers, NULL, 0);
}

void cl_dispatch(natsMsg *msg)
{
    const char *subject = natsMsg_GetSubject(msg);
    size_t prefix = strlen(CL_SUBJECT_PREFIX);

    if (strncmp(subject, CL_SUBJECT_PREFIX, prefix) != 0) {
        cl_forward_on_stanza(msg); /* vestnik.node.<us> */
        return;
    }
    const char *what = subject + prefix;
    const char *from = cl_header(msg, "Vn-Node");
    if (!from || strcmp(from, cl.node_id) == 0)
        return; /* our own, back through the wildcard */
    if (strcmp(what, "hb") == 0) {
        const char *seq = cl_header(msg, "Vn-Seq");
        cl_node_heard(from, seq ? strtoull(seq, NULL, 10) : 0, true);
    } else if (strcmp(what, "session") == 0) {
        cl_table_on_session(msg);
    } else if (strcmp(what, "table") == 0) {
        cl_table_on_table(msg);
    } else if (strncmp(what, "want.", 5) == 0) {
        if (strcmp(what + 5, cl.node_id) == 0)
            cl_table_on_want();
    } else if (strcmp(what, "kick") == 0) {
        const char *host = cl_header(msg, "Vn-Host"), *user = cl_header(msg, "Vn-User");
        if (host && user)
            vn_sessions_kick_user_here(host, user, "not-authorized");
    } else if (strcmp(what, "bye") == 0) {
        vn_log_info("cluster: node %s left", from);
        cl_node_forget(from);
        /* Its sessions closed one by one before it left, each announced,
         * and their contacts were told by it: just forget what remains. */
        cl_table_drop_node(from, false);
    }
}

void vn_cluster_metrics(vn_buf *out)
{
    if (!enabled)
        return;
    vn_buf_printf(out,
                  "# HELP vestnik_cluster_nats_connected Whether the NATS connection is up.\n"
                  "# TYPE vestnik_cluster_nats_connected gauge\n"
                  "vestnik_cluster_nats_connected %d\n"
                  "# HELP vestnik_cluster_nodes Other nodes this node hears.\n"
                  "# TYPE vestnik_cluster_nodes gauge\n"
                  "vestnik_cluster_nodes %zu\n"
                  "# HELP vestnik_cluster_remote_sessions Sessions held by the other nodes.\n"
                  "# TYPE vestnik_cluster_remote_sessions gauge\n"
                  "vestnik_cluster_remote_sessions %zu\n"
                  "# HELP vestnik_cluster_forwarded_total Stanzas between this node and others.\n"
                  "# TYPE vestnik_cluster_forwarded_total counter\n"
                  "vestnik_cluster_forwarded_total{direction=\"out\"} %llu\n"
                  "vestnik_cluster_forwarded_total{direction=\"in\"} %llu\n"
                  "vestnik_cluster_forwarded_total{direction=\"dropped\"} %llu\n",
                  cl_nats_connected() ? 1 : 0, cl_nodes_count(), vn_sessions_count_remote(NULL),
                  (unsigned long long)cl.forwarded_out, (unsigned long long)cl.forwarded_in,
                  (unsigned long long)cl.forward_dropped);
}

void vn_cluster_status(vn_buf *out)
{
    if (!enabled) {
        vn_buf_append_str(out, "error cluster is not enabled (cluster.enabled)\n");
        return;
    }
    vn_buf_append_str(out, "ok\n");
    cl_nodes_status(out);
    vn_buf_printf(out, "forwarded out %llu in %llu dropped %llu\n",
                  (unsigned long long)cl.forwarded_out, (unsigned long long)cl.forwarded_in,
                  (unsigned long long)cl.forward_dropped);
}
