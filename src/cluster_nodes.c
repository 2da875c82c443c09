/*
 * cluster_nodes.c - which nodes are alive.
 *
 * Every node publishes a heartbeat every cluster.heartbeat_ms with its
 * sequence number of its last session announcement. A node not heard of for cluster.node_timeout_ms
 * is dead: its sessions leave the table (cluster_table.c says so to their contacts). A heartbeat
 * whose sequence is ahead of what we applied means we missed announcements, and one behind it that
 * the node restarted: both make us ask for its whole table. Membership is NATS's reachability, not
 * a protocol of ours: no votes, each node decides from what it hears.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "cluster_internal.h"
#include "sessions.h"

typedef struct node {
    char *id;
    int64_t last_heard_us;
    uint64_t seq; /* announcements applied */
    UT_hash_handle hh;
} node;

static node *nodes;
static vn_timer *ticker;

static void node_free(node *n)
{
    HASH_DEL(nodes, n);
    free(n->id);
    free(n);
}

static node *node_get(const char *id, bool *created)
{
    node *n = NULL;
    HASH_FIND_STR(nodes, id, n);
    *created = !n;
    if (!n) {
        n = vn_alloc(sizeof *n);
        n->id = vn_strdup(id);
        HASH_ADD_KEYPTR(hh, nodes, n->id, strlen(n->id), n);
        vn_log_info("cluster: node %s joined", id);
    }
    return n;
}

void cl_node_heard(const char *id, uint64_t seq, bool is_heartbeat)
{
    bool created;
    node *n = node_get(id, &created);
    n->last_heard_us = vn_now_us();
    /* Announcements and heartbeats come through one subscription, in the
     * order sent: at a heartbeat we have applied all before it, unless we
     * missed some (ahead) or the node restarted (behind). */
    if (created || (is_heartbeat && seq != n->seq))
        cl_table_request(id);
}

bool cl_node_seq_expected(const char *id, uint64_t seq)
{
    node *n = NULL;
    HASH_FIND_STR(nodes, id, n);
    return n && seq == n->seq + 1;
}

void cl_node_set_seq(const char *id, uint64_t seq)
{
    node *n = NULL;
    HASH_FIND_STR(nodes, id, n);
    if (!n)
        return;
    bool advanced = seq > n->seq;
    n->seq = seq;
    if (advanced)
        cl_forward_release(false);
}

uint64_t cl_node_applied(const char *id)
{
    node *n = NULL;
    HASH_FIND_STR(nodes, id, n);
    return n ? n->seq : 0;
}

void cl_node_forget(const char *id)
{
    node *n = NULL;
    HASH_FIND_STR(nodes, id, n);
    if (n)
        node_free(n);
}

/* Is this node the one that speaks for a dead node: the smallest id
 * among the living? Every survivor computes the same answer. */
static bool we_speak_for_the_dead(void)
{
    for (node *n = nodes; n; n = n->hh.next)
        if (strcmp(n->id, cl.node_id) < 0)
            return false;
    return true;
}

static void tick(vn_timer *t, void *ud)
{
    char seq[24];
    snprintf(seq, sizeof seq, "%" PRIu64, cl.seq);
    const char *headers[] = {"Vn-Node", cl.node_id, "Vn-Seq", seq, NULL};
    cl_publish(CL_SUBJECT_PREFIX "hb", headers, NULL, 0);

    cl_forward_release(true);
    int64_t now = vn_now_us(), limit = (int64_t)cl.node_timeout_ms * 1000;
    node *n, *tmp;
    HASH_ITER(hh, nodes, n, tmp)
    {
        if (now - n->last_heard_us <= limit)
            continue;
        char *id = vn_strdup(n->id);
        node_free(n);
        vn_log_warn("cluster: node %s silent for %u ms: declared dead", id, cl.node_timeout_ms);
        cl_table_drop_node(id, we_speak_for_the_dead());
        free(id);
    }
}

void cl_nodes_start(void)
{
    ticker = vn_timer_start(0, cl.heartbeat_ms, tick, NULL);
}

void cl_nodes_stop(void)
{
    if (ticker)
        vn_timer_stop(ticker);
    ticker = NULL;
    while (nodes) {
        vn_sessions_drop_node(nodes->id); /* freed with the unbound ones */
        node_free(nodes);
    }
}

size_t cl_nodes_count(void)
{
    return HASH_COUNT(nodes);
}

void cl_nodes_status(vn_buf *out)
{
    int64_t now = vn_now_us();
    vn_buf_printf(out, "node %s self sessions %zu seq %" PRIu64 " nats %s %s\n", cl.node_id,
                  vn_sessions_count(), cl.seq, cl_nats_connected() ? "connected" : "disconnected",
                  cl_nats_url());
    for (node *n = nodes; n; n = n->hh.next)
        vn_buf_printf(out, "node %s alive sessions %zu seq %" PRIu64 " heard %lld ms ago\n", n->id,
                      vn_sessions_count_remote(n->id), n->seq,
                      (long long)((now - n->last_heard_us) / 1000));
}
