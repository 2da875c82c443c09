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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"
#include "sessions.h"

#define MAX_HOPS 3

/* Hops of the stanza being handled now, while it is re-routed. */
static int current_hops;

void vn_cluster_forward(const char *node, const char *full, const vn_stanza *st)
{
    char subject[256], hops[8];
    size_t len;

    if (current_hops + 1 >= MAX_HOPS) {
        vn_log_warn("cluster: dropping a stanza for %s after %d hops", full, current_hops);
        cl.forward_dropped++;
        return;
    }
    snprintf(subject, sizeof subject, "vestnik.node.%s", node);
    snprintf(hops, sizeof hops, "%d", current_hops + 1);
    char *xml = vn_stanza_serialize(st, VN_NS_CLIENT, &len);
    const char *headers[] = {"Vn-To", full, "Vn-Node", cl.node_id, "Vn-Hops", hops, NULL};
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

void cl_forward_on_stanza(natsMsg *msg)
{
    const char *full = cl_header(msg, "Vn-To");
    const char *hops = cl_header(msg, "Vn-Hops");
    vn_stanza *st = vn_stanza_parse(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    vn_jid *to = full ? vn_jid_parse(full) : NULL;

    if (!st || !to || !to->resource) {
        vn_log_warn("cluster: dropping an unreadable forwarded stanza");
        cl.forward_dropped++;
        goto done;
    }
    cl.forwarded_in++;
    vn_session *s = vn_session_find(to);
    if (s && !vn_session_node(s)) {
        deliver(s, st, to);
        goto done;
    }
    /* Gone from here: the rules for a resource that is not there. */
    current_hops = hops ? atoi(hops) : MAX_HOPS;
    vn_stanza_set_attr(st, "to", full);
    vn_route(st);
    st = NULL;
    current_hops = 0;
done:
    vn_stanza_free(st);
    vn_jid_free(to);
}
