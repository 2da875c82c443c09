/*
 * cluster_table.c - the session table, replicated to every node.
 *
 * Each node announces its own sessions (bound, priority or availability
 * changed, gone) on vestnik.cluster.session, numbered by a sequence, and
 * answers a request for its whole table. The others apply them as remote
 * entries of sessions.c, so routing reads only memory. A gap in the
 * sequence (a lost message, a reconnect) is mended by asking for the
 * whole table again.
 *
 * Why plain subjects and not a JetStream KV bucket: the table is only true
 * while its node lives, and a KV bucket would keep a dead node's entries
 * until a survivor deleted them (nats-server 2.9 has no per-key TTL), so
 * the cleanup would be ours anyway; plain subjects need no JetStream
 * storage, and a node's entries vanish with its heartbeats. What must
 * survive a node (offline messages, archives, rosters) is in the shared
 * PostgreSQL store, not here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"
#include "server.h"
#include "sessions.h"

void cl_table_announce(const vn_session *s, bool gone)
{
    char seq[24], priority[8];
    snprintf(seq, sizeof seq, "%" PRIu64, ++cl.seq);
    snprintf(priority, sizeof priority, "%d", vn_session_priority(s));
    const char *headers[] = {"Vn-Node",
                             cl.node_id,
                             "Vn-Seq",
                             seq,
                             "Vn-Op",
                             gone ? "gone" : "up",
                             "Vn-Jid",
                             vn_session_jid(s)->full,
                             "Vn-Priority",
                             priority,
                             "Vn-Available",
                             vn_session_available(s) ? "1" : "0",
                             NULL};
    cl_publish(CL_SUBJECT_PREFIX "session", headers, NULL, 0);
}

static uint64_t parse_seq(natsMsg *msg)
{
    const char *v = cl_header(msg, "Vn-Seq");
    return v ? strtoull(v, NULL, 10) : 0;
}

static int parse_priority(const char *v)
{
    long p = v ? strtol(v, NULL, 10) : 0;
    return p < -128 ? -128 : p > 127 ? 127 : (int)p;
}

void cl_table_on_session(natsMsg *msg)
{
    const char *node = cl_header(msg, "Vn-Node");
    const char *op = cl_header(msg, "Vn-Op");
    const char *jid = cl_header(msg, "Vn-Jid");
    uint64_t seq = parse_seq(msg);

    if (!node || !op || !jid || strcmp(node, cl.node_id) == 0)
        return;
    cl_node_heard(node, seq, false);
    /* Applied even after a gap: it is the node's newest word on that JID;
     * the whole table, asked for, settles the rest. */
    if (strcmp(op, "gone") == 0)
        vn_sessions_drop_remote(node, jid);
    else
        vn_sessions_put_remote(
            node, jid, parse_priority(cl_header(msg, "Vn-Priority")),
            strcmp(cl_header(msg, "Vn-Available") ? cl_header(msg, "Vn-Available") : "0", "1") ==
                0);
    if (cl_node_seq_expected(node, seq))
        cl_node_set_seq(node, seq);
    else
        cl_table_request(node);
}

void cl_table_request(const char *node)
{
    char subject[256];
    snprintf(subject, sizeof subject, CL_SUBJECT_PREFIX "want.%s", node);
    const char *headers[] = {"Vn-Node", cl.node_id, NULL};
    cl_publish(subject, headers, NULL, 0);
}

static bool write_line(vn_session *s, void *ud)
{
    vn_buf_printf(ud, "%d %d %s\n", vn_session_priority(s), vn_session_available(s) ? 1 : 0,
                  vn_session_jid(s)->full);
    return true;
}

/* Our whole table, to everyone (whoever missed something takes it too). */
void cl_table_on_want(void)
{
    char seq[24];
    vn_buf body;
    vn_buf_init(&body);
    vn_sessions_foreach_of_node(NULL, write_line, &body);
    snprintf(seq, sizeof seq, "%" PRIu64, cl.seq);
    const char *headers[] = {"Vn-Node", cl.node_id, "Vn-Seq", seq, NULL};
    cl_publish(CL_SUBJECT_PREFIX "table", headers, body.data, body.len);
    vn_buf_free(&body);
}

/* Lines "PRIORITY AVAILABLE FULLJID\n": a JID has no control characters
 * (RFC 7622), so a line ends it. */
void cl_table_on_table(natsMsg *msg)
{
    const char *node = cl_header(msg, "Vn-Node");
    if (!node || strcmp(node, cl.node_id) == 0)
        return;
    char *copy = vn_strdup(node); /* the header stays valid, but be plain */
    cl_node_heard(copy, parse_seq(msg), false);
    vn_sessions_drop_node(copy);

    const char *p = natsMsg_GetData(msg);
    const char *end = p + natsMsg_GetDataLength(msg);
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        char line[3200];
        size_t n = (size_t)(nl - p);
        if (n < sizeof line) {
            int priority, available, used = 0;
            memcpy(line, p, n);
            line[n] = '\0';
            if (sscanf(line, "%d %d %n", &priority, &available, &used) == 2 && used > 0)
                vn_sessions_put_remote(copy, line + used, parse_priority(line), available == 1);
        }
        p = nl + 1;
    }
    cl_node_set_seq(copy, parse_seq(msg));
    free(copy);
}

typedef struct gone_list {
    char **jids;
    size_t n;
} gone_list;

static bool collect_available(vn_session *s, void *ud)
{
    gone_list *l = ud;
    if (vn_session_available(s)) {
        l->jids = vn_realloc(l->jids, (l->n + 1) * sizeof *l->jids);
        l->jids[l->n++] = vn_strdup(vn_session_jid(s)->full);
    }
    return true;
}

typedef struct farewell {
    const char *from;
} farewell;

static bool to_subscriber(const vn_roster_item *item, void *ud)
{
    const farewell *f = ud;
    if (vn_subscription_has_from(item->subscription)) {
        vn_stanza *p = vn_stanza_new("presence", VN_NS_CLIENT);
        vn_stanza_set_attr(p, "from", f->from);
        vn_stanza_set_attr(p, "to", item->jid);
        vn_stanza_set_attr(p, "type", "unavailable");
        vn_route(p);
    }
    return true;
}

/* RFC 6121 §4.5.2 on behalf of a session whose node died: its contacts and
 * its account's other resources learn it is gone. */
static void say_unavailable(const char *full)
{
    vn_jid *jid = vn_jid_parse(full);
    if (!jid)
        return;
    farewell f = {full};
    vn_log_debug("cluster: %s is unavailable (its node died)", full);
    if (vn_roster_foreach(vn_server_store(), jid->domain, jid->local, to_subscriber, &f) !=
        VN_STORE_OK)
        vn_log_error("cluster: cannot read the roster of %s", jid->bare);
    vn_stanza *own = vn_stanza_new("presence", VN_NS_CLIENT);
    vn_stanza_set_attr(own, "from", full);
    vn_stanza_set_attr(own, "to", jid->bare);
    vn_stanza_set_attr(own, "type", "unavailable");
    vn_route(own);
    vn_jid_free(jid);
}

void cl_table_drop_node(const char *node, bool speak)
{
    gone_list gone = {0};
    if (speak)
        vn_sessions_foreach_of_node(node, collect_available, &gone);
    size_t n = vn_sessions_drop_node(node);
    vn_log_info("cluster: %zu session(s) of node %s removed%s", n, node,
                speak ? ", their contacts told" : "");
    for (size_t i = 0; i < gone.n; i++) {
        say_unavailable(gone.jids[i]);
        free(gone.jids[i]);
    }
    free(gone.jids);
}
