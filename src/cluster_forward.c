/*
 * cluster_forward.c - stanzas between nodes.
 *
 * The node that routes a stanza runs every hook (archiving, carbons,
 * offline storage...) as for a local session; when the session it picks
 * is remote, the serialized stanza goes to vestnik.node.<its node> with
 * the chosen full JID. The receiving node only writes it to that local
 * session (running "stanza/out", which belongs to the stream). If the
 * session ended meanwhile, the stanza is routed again from here under the
 * rules for a resource that is gone (RFC 6121 §8.5.3.2: a message falls
 * back to the bare JID, so to another resource or offline storage), with
 * a hop count so that tables that disagree for a moment cannot loop it.
 *
 * Stanzas and session announcements travel on different subscriptions,
 * which libnats hands over on different threads, so a stanza could
 * overtake an announcement its sender made before it (a probe answered to
 * a resource we have not heard of yet). Each stanza therefore carries the
 * sender's announcement sequence, and waits here until that many of the
 * sender's announcements are applied (at most node_timeout_ms: by then the
 * whole table was asked for, or the node is gone).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"
#include "sessions.h"

#define MAX_HOPS 3

typedef struct waiting {
    char *node, *full;
    uint64_t seq;
    int hops;
    int64_t since_us;
    vn_stanza *st;
    struct waiting *next;
} waiting;

/* Hops of the stanza being handled now, while it is re-routed. */
static int current_hops;
static waiting *queue_head, **queue_tail = &queue_head;

void vn_cluster_forward(const char *node, const char *full, const vn_stanza *st)
{
    char subject[256], hops[8], seq[24];
    size_t len;

    if (current_hops + 1 >= MAX_HOPS) {
        vn_log_warn("cluster: dropping a stanza for %s after %d hops", full, current_hops);
        cl.forward_dropped++;
        return;
    }
    snprintf(subject, sizeof subject, "vestnik.node.%s", node);
    snprintf(hops, sizeof hops, "%d", current_hops + 1);
    snprintf(seq, sizeof seq, "%" PRIu64, cl.seq);
    char *xml = vn_stanza_serialize(st, VN_NS_CLIENT, &len);
    const char *headers[] = {"Vn-To", full,     "Vn-Node", cl.node_id, "Vn-Hops",
                             hops,    "Vn-Seq", seq,       NULL};
    cl_publish(subject, headers, xml, len);
    free(xml);
    cl.forwarded_out++;
}

/* A probe is the session's presence module's to answer, here where its
 * presence is known ("presence/full"), never the client's to see. */
static void deliver(vn_session *s, vn_stanza *st, const vn_jid *to)
{
    const char *type = vn_stanza_attr(st, "type");
    if (strcmp(vn_stanza_name(st), "presence") == 0 && type && strcmp(type, "probe") == 0) {
        vn_jid *from = vn_jid_parse(vn_stanza_attr(st, "from") ? vn_stanza_attr(st, "from") : "");
        if (from) {
            vn_event ev = {.stanza = st, .session = s, .from = from, .to = to, .host = to->domain};
            vn_hook_run("presence/full", &ev);
        }
        vn_jid_free(from);
        return;
    }
    vn_session_send(s, st);
}

/* Deliver (or re-route) one stanza and free it. */
static void handle(vn_stanza *st, const char *full, int hops)
{
    vn_jid *to = vn_jid_parse(full);
    if (!to || !to->resource) {
        vn_stanza_free(st);
        vn_jid_free(to);
        return;
    }
    vn_session *s = vn_session_find(to);
    if (s && !vn_session_node(s)) {
        deliver(s, st, to);
        vn_stanza_free(st);
    } else {
        /* Gone from here: the rules for a resource that is not there. */
        current_hops = hops;
        vn_stanza_set_attr(st, "to", full);
        vn_route(st);
        current_hops = 0;
    }
    vn_jid_free(to);
}

static bool node_waits(const char *node)
{
    for (const waiting *w = queue_head; w; w = w->next)
        if (strcmp(w->node, node) == 0)
            return true;
    return false;
}

void cl_forward_release(bool expire_only)
{
    int64_t now = vn_now_us(), limit = (int64_t)cl.node_timeout_ms * 1000;
    waiting **p = &queue_head;

    /* In order; one node's stanza still waiting holds back its later ones. */
    while (*p) {
        waiting *w = *p;
        bool ready =
            now - w->since_us >= limit || (!expire_only && cl_node_applied(w->node) >= w->seq);
        bool held = false;
        for (const waiting *before = queue_head; before != w; before = before->next)
            held |= strcmp(before->node, w->node) == 0;
        if (!ready || held) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        if (!*p)
            queue_tail = p;
        handle(w->st, w->full, w->hops);
        free(w->node);
        free(w->full);
        free(w);
        p = &queue_head; /* handling may have queued or released others */
    }
}

void cl_forward_on_stanza(natsMsg *msg)
{
    const char *full = cl_header(msg, "Vn-To");
    const char *node = cl_header(msg, "Vn-Node");
    const char *hops = cl_header(msg, "Vn-Hops");
    const char *seq_text = cl_header(msg, "Vn-Seq");
    vn_stanza *st = vn_stanza_parse(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));

    if (!st || !full || !node || !seq_text) {
        vn_log_warn("cluster: dropping an unreadable forwarded stanza");
        cl.forward_dropped++;
        vn_stanza_free(st);
        return;
    }
    cl.forwarded_in++;
    uint64_t seq = strtoull(seq_text, NULL, 10);
    int hop_count = hops ? atoi(hops) : MAX_HOPS;
    if (cl_node_applied(node) >= seq && !node_waits(node)) {
        handle(st, full, hop_count);
        return;
    }
    waiting *w = vn_alloc(sizeof *w);
    *w = (waiting){.node = vn_strdup(node),
                   .full = vn_strdup(full),
                   .seq = seq,
                   .hops = hop_count,
                   .since_us = vn_now_us(),
                   .st = st};
    *queue_tail = w;
    queue_tail = &w->next;
    cl_node_heard(node, seq, false); /* a node not heard of yet: ask for its table */
}

void cl_forward_stop(void)
{
    while (queue_head) {
        waiting *w = queue_head;
        queue_head = w->next;
        vn_stanza_free(w->st);
        free(w->node);
        free(w->full);
        free(w);
    }
    queue_tail = &queue_head;
}
