/*
 * component.c - external components (XEP-0114): the accept side of
 * jabber:component:accept streams, and routing to them.
 *
 * The stream: the component opens a stream to its domain, we answer with
 * a header carrying a fresh id, it sends <handshake/> with
 * hex(SHA-1(id + secret)), we answer <handshake/>. From then on it may
 * send stanzas from any JID at its domain (anything else is <invalid-from/>)
 * and gets every stanza routed to its domain. A wrong secret is a
 * <not-authorized/> stream error and a log line naming the domain and
 * address.
 *
 * The durable queue (xeps/services-bus.md): a service must not lose what
 * its users send while it restarts, so while a component is away, its
 * messages, subscription presences and iq results are appended to an
 * archive of the store ("component-queue" under the component's domain),
 * at most limits.component_queue_max of them (then <resource-constraint/>),
 * and delivered in order when it connects again. Only iq requests, which
 * need an answer now, are still bounced with <service-unavailable/>, and
 * other presence is dropped, as before.
 * A component that sends XEP-0198's <enable/> as its first element gets
 * acknowledged delivery both ways: every stanza written to it is kept in
 * the queue until its <a h/> counts it (so a component killed mid-stream
 * gets again, after it reconnects, what it had not acknowledged: delivery
 * is at least once, stanza ids tell repeats), and its own stanzas are
 * acknowledged only once every store write they caused is durable, as for
 * clients (c2s_sm.c). A plain XEP-0114 component gets the queue after its
 * first stanza or a short grace, each item deleted once written.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "component.h"
#include "server.h"
#include "shaper.h"
#include "vestnik/module.h"
#include "xml_stream.h"

typedef struct comp_stream comp_stream;

#define NS_SM "urn:xmpp:sm:3"
#define QUEUE_ARCHIVE "component-queue"
/* Stanzas written to an acknowledging component and not acknowledged yet,
 * at most: a flow-control window, so a long queue does not fill the
 * connection's output buffer (it is read from the store as acks come). */
#define ACK_WINDOW 256
/* A plain component's output is topped up from the queue while less than
 * this is waiting to be written. */
#define PLAIN_FLUSH_BYTES 65536
/* How long a reconnected component with a queue waiting has to send
 * <enable/> before the queue goes to it unacknowledged. */
#define ENABLE_GRACE_MS 500

typedef struct component {
    char *domain, *secret, *host, *name;
    comp_stream *stream; /* after a successful handshake */
    size_t queued;       /* items in its queue archive */
    UT_hash_handle hh;
} component;

struct comp_stream {
    vn_xml_stream *xs;
    vn_conn *conn;
    component *comp; /* once authenticated */
    char *domain;    /* the stream header's 'to' */
    char stream_id[33];
    bool header_sent;
    uv_timer_t timer; /* handshake timeout */
    vn_shaper shaper; /* limits.component_stanza_rate */
    /* the queue on this stream (after the handshake) */
    bool delivering;              /* the queue is being delivered */
    bool caught_up;               /* every queued item has been written */
    bool acked;                   /* <enable/> received: XEP-0198 acknowledgements */
    bool r_sent;                  /* an <r/> waits for its <a/> */
    bool r_again;                 /* an <r/> came while answering one */
    uint64_t sent_upto;           /* id of the last queue item written */
    uint64_t unacked[ACK_WINDOW]; /* ring of queue ids written, oldest first */
    size_t unacked_head, n_unacked;
    uint32_t h_out, h_in, ack_h;
    vn_store_waiter *ack_wait;
    comp_stream *prev, *next;
};

static component *components;
static comp_stream *all_streams;

/* ---- output and closing ---- */

static void stream_write(comp_stream *cs, const char *data, size_t len)
{
    vn_xml_stream_write(cs->xs, data, len);
}

static void write_stanza(comp_stream *cs, const vn_stanza *st)
{
    vn_xml_stream_write_element(cs->xs, st, VN_NS_COMPONENT);
}

static void send_header(comp_stream *cs)
{
    char *hdr = vn_asprintf("<?xml version='1.0'?><stream:stream "
                            "xmlns='jabber:component:accept' "
                            "xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='%s'>",
                            cs->stream_id, cs->domain ? cs->domain : vn_local_hosts()[0]);
    cs->header_sent = true;
    stream_write(cs, hdr, strlen(hdr));
    free(hdr);
}

static void detach(comp_stream *cs)
{
    vn_store_cancel(vn_server_store(), cs->ack_wait);
    cs->ack_wait = NULL;
    cs->delivering = false;
    if (cs->comp && cs->comp->stream == cs) {
        vn_log_info("component %s disconnected", cs->comp->domain);
        cs->comp->stream = NULL;
    }
    cs->comp = NULL;
}

static void stream_close(comp_stream *cs, const char *condition, const char *text)
{
    if (vn_xml_stream_closing(cs->xs))
        return;
    if (!cs->header_sent)
        send_header(cs);
    if (condition) {
        vn_stanza *err = vn_stanza_new("error", VN_NS_STREAMS);
        vn_stanza_add_child(err, condition, VN_NS_STREAM_ERRORS);
        if (text)
            vn_stanza_add_text_child(err, "text", VN_NS_STREAM_ERRORS, text);
        write_stanza(cs, err);
        vn_stanza_free(err);
        vn_log_info("component %s: stream error %s%s%s",
                    cs->domain ? cs->domain : vn_conn_peer_ip(cs->conn), condition,
                    text ? ": " : "", text ? text : "");
    }
    detach(cs);
    vn_xml_stream_close(cs->xs, true);
}

/* ---- the durable queue ---- */

static bool is_subscription(const char *type)
{
    return type && (strcmp(type, "subscribe") == 0 || strcmp(type, "subscribed") == 0 ||
                    strcmp(type, "unsubscribe") == 0 || strcmp(type, "unsubscribed") == 0);
}

/* What is kept for a component that is away: everything but iq requests,
 * which need an answer now, and presence other than subscriptions. */
static bool queueable(const vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    const char *type = vn_stanza_attr(st, "type");

    if (strcmp(name, "message") == 0)
        return true;
    if (strcmp(name, "iq") == 0)
        return type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
    return is_subscription(type);
}

static void send_nonza(comp_stream *cs, const char *name, uint32_t h, bool with_h)
{
    vn_stanza *el = vn_stanza_new(name, NS_SM);
    if (with_h) {
        char num[16];
        snprintf(num, sizeof num, "%u", h);
        vn_stanza_set_attr(el, "h", num);
    }
    write_stanza(cs, el);
    vn_stanza_free(el);
}

/* Write one stanza; on an acknowledging stream, id (its queue item) waits
 * in the window for the <a/> that counts it. */
static void deliver(comp_stream *cs, const vn_stanza *st, uint64_t id)
{
    write_stanza(cs, st);
    if (!cs->acked)
        return;
    cs->unacked[(cs->unacked_head + cs->n_unacked) % ACK_WINDOW] = id;
    cs->n_unacked++;
    cs->h_out++;
    if (!cs->r_sent) {
        cs->r_sent = true;
        send_nonza(cs, "r", 0, false);
    }
}

static bool stream_has_room(const comp_stream *cs)
{
    return cs->acked ? cs->n_unacked < ACK_WINDOW : vn_conn_queued(cs->conn) < PLAIN_FLUSH_BYTES;
}

static void queue_delete(component *comp, uint64_t id)
{
    if (vn_archive_delete_id(vn_server_store(), comp->domain, "", QUEUE_ARCHIVE, id) ==
            VN_STORE_OK &&
        comp->queued > 0)
        comp->queued--;
}

static bool flush_item(const vn_archive_item *item, void *ud)
{
    comp_stream *cs = ud;
    vn_stanza *st = vn_stanza_parse(item->data, item->len);

    cs->sent_upto = item->id;
    if (st)
        deliver(cs, st, item->id);
    else
        vn_log_warn("component %s: dropping an unreadable queue item", cs->comp->domain);
    vn_stanza_free(st);
    if (!cs->acked || !st) /* written (or unreadable): done with it */
        queue_delete(cs->comp, item->id);
    return stream_has_room(cs);
}

static void schedule_flush(comp_stream *cs);

/* Write queued items after sent_upto while the stream has room. */
static void queue_flush(comp_stream *cs)
{
    if (!cs->delivering || cs->caught_up || vn_xml_stream_closing(cs->xs))
        return;
    while (stream_has_room(cs)) {
        vn_archive_query q = {.after_id = cs->sent_upto, .limit = 64};
        bool complete = false;
        if (vn_archive_query_items(vn_server_store(), cs->comp->domain, "", QUEUE_ARCHIVE, &q,
                                   flush_item, cs, &complete) != VN_STORE_OK) {
            stream_close(cs, "internal-server-error", "Cannot read the queue");
            return;
        }
        if (complete) {
            cs->caught_up = true;
            return;
        }
    }
    if (!cs->acked)
        schedule_flush(cs); /* the output drains by itself: look again soon */
}

static void on_flush_timer(uv_timer_t *t)
{
    queue_flush(t->data);
}

static void schedule_flush(comp_stream *cs)
{
    if (!uv_is_active((uv_handle_t *)&cs->timer))
        uv_timer_start(&cs->timer, on_flush_timer, 20, 0);
}

static void start_delivering(comp_stream *cs)
{
    if (cs->delivering)
        return;
    uv_timer_stop(&cs->timer);
    cs->delivering = true;
    cs->caught_up = cs->comp->queued == 0;
    queue_flush(cs);
}

static void on_enable_grace(uv_timer_t *t)
{
    start_delivering(t->data);
}

/* Keep st for comp; false (and the sender told) when the queue is full or
 * cannot be written. */
static bool queue_append(component *comp, const vn_stanza *st)
{
    long long max = vn_srv.cfg->component_queue_max;

    if (comp->queued >= (size_t)max) {
        if (strcmp(vn_stanza_name(st), "presence") != 0)
            vn_route_error(st, "wait", max ? "resource-constraint" : "service-unavailable",
                           max ? "The service is away and its queue is full"
                               : "The service is not connected");
        if (max)
            vn_log_warn("component %s: queue full (%lld), refusing a stanza", comp->domain, max);
        return false;
    }
    size_t len;
    char *xml = vn_stanza_serialize(st, VN_NS_CLIENT, &len);
    int rc = vn_archive_append(vn_server_store(), comp->domain, "", QUEUE_ARCHIVE, 0,
                               vn_stanza_attr(st, "from"), xml, len, NULL);
    free(xml);
    if (rc != VN_STORE_OK) {
        vn_route_error(st, "wait", "internal-server-error", NULL);
        return false;
    }
    comp->queued++;
    return true;
}

/* ---- acknowledgements (XEP-0198 subset: no resumption, the queue is it) ---- */

static void answer_r(comp_stream *cs);

static void on_ack_durable(int status, void *arg)
{
    comp_stream *cs = arg;

    cs->ack_wait = NULL;
    if (status != VN_STORE_OK) {
        /* Not acknowledged: the component sends them again. */
        stream_close(cs, "internal-server-error", "Storage failed");
        return;
    }
    send_nonza(cs, "a", cs->ack_h, true);
    if (cs->r_again) {
        cs->r_again = false;
        answer_r(cs);
    }
}

static void answer_r(comp_stream *cs)
{
    if (cs->ack_wait) {
        cs->r_again = true;
        return;
    }
    cs->ack_h = cs->h_in;
    cs->ack_wait = vn_store_when_durable(vn_server_store(), on_ack_durable, cs);
}

static bool parse_h(const char *text, uint32_t *h)
{
    char *end;
    if (!text || *text < '0' || *text > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v > UINT32_MAX)
        return false;
    *h = (uint32_t)v;
    return true;
}

static void handle_ack(comp_stream *cs, const vn_stanza *el)
{
    uint32_t h;
    if (!parse_h(vn_stanza_attr(el, "h"), &h)) {
        stream_close(cs, "invalid-xml", "<a/> needs a number h");
        return;
    }
    uint32_t newly = h - (cs->h_out - (uint32_t)cs->n_unacked);
    if (newly > cs->n_unacked) {
        stream_close(cs, "undefined-condition", "Acknowledged more than was sent");
        return;
    }
    for (uint32_t i = 0; i < newly; i++) {
        uint64_t id = cs->unacked[cs->unacked_head];
        cs->unacked_head = (cs->unacked_head + 1) % ACK_WINDOW;
        cs->n_unacked--;
        if (id)
            queue_delete(cs->comp, id);
    }
    cs->r_sent = false;
    queue_flush(cs);
    if (cs->n_unacked > 0 && !cs->r_sent) {
        cs->r_sent = true;
        send_nonza(cs, "r", 0, false);
    }
}

/* An element of the urn:xmpp:sm:3 namespace after the handshake. */
static void handle_sm(comp_stream *cs, const vn_stanza *el)
{
    const char *name = vn_stanza_name(el);

    if (strcmp(name, "enable") == 0) {
        if (cs->acked || cs->h_in > 0 || vn_srv.cfg->component_queue_max == 0) {
            vn_stanza *failed = vn_stanza_new("failed", NS_SM);
            vn_stanza_add_child(failed,
                                vn_srv.cfg->component_queue_max ? "unexpected-request"
                                                                : "feature-not-implemented",
                                VN_NS_STANZA_ERRORS);
            write_stanza(cs, failed);
            vn_stanza_free(failed);
            return;
        }
        cs->acked = true;
        send_nonza(cs, "enabled", 0, false);
        start_delivering(cs);
    } else if (strcmp(name, "r") == 0 && cs->acked) {
        answer_r(cs);
    } else if (strcmp(name, "a") == 0 && cs->acked) {
        handle_ack(cs, el);
    } else {
        stream_close(cs, "unsupported-stanza-type", "Enable stream management first");
    }
}

/* ---- the handshake ---- */

static void on_stream_open(void *ud, const vn_stanza *header)
{
    comp_stream *cs = ud;
    const char *ns = vn_stanza_attr(header, "xmlns");
    const char *to = vn_stanza_attr(header, "to");
    component *comp = NULL;

    cs->domain = to ? vn_jid_prep_domain(to) : NULL;
    if (cs->domain)
        HASH_FIND_STR(components, cs->domain, comp);
    send_header(cs);
    if (!vn_stanza_is(header, "stream", VN_NS_STREAMS) || !ns || strcmp(ns, VN_NS_COMPONENT) != 0)
        stream_close(cs, "invalid-namespace", NULL);
    else if (!comp)
        stream_close(cs, "host-unknown", "No component is configured for that domain");
}

static bool handshake_valid(const comp_stream *cs, const component *comp, const char *digest)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char expected[2 * EVP_MAX_MD_SIZE + 1];
    char *input = vn_asprintf("%s%s", cs->stream_id, comp->secret);

    EVP_Digest(input, strlen(input), md, &md_len, EVP_sha1(), NULL);
    OPENSSL_cleanse(input, strlen(input));
    free(input);
    for (unsigned i = 0; i < md_len; i++)
        snprintf(expected + 2 * i, 3, "%02x", md[i]);
    size_t len = 2 * (size_t)md_len;
    char given[2 * EVP_MAX_MD_SIZE + 1] = {0};
    for (size_t i = 0; i < len && digest[i]; i++) /* compare in lower case */
        given[i] = (char)(digest[i] >= 'A' && digest[i] <= 'F' ? digest[i] + 32 : digest[i]);
    return strlen(digest) == len && CRYPTO_memcmp(given, expected, len) == 0;
}

static void handle_handshake(comp_stream *cs, const vn_stanza *st)
{
    component *comp = NULL;

    if (cs->domain)
        HASH_FIND_STR(components, cs->domain, comp);
    if (!vn_stanza_is(st, "handshake", VN_NS_COMPONENT) || !comp) {
        stream_close(cs, "not-authorized", "Send the handshake first");
        return;
    }
    if (!handshake_valid(cs, comp, vn_stanza_text(st))) {
        vn_log_warn("component %s: wrong secret from %s", comp->domain, vn_conn_peer_ip(cs->conn));
        stream_close(cs, "not-authorized", "Wrong secret");
        return;
    }
    if (comp->stream) {
        vn_log_info("component %s connected again: replacing the older connection", comp->domain);
        stream_close(comp->stream, "conflict", "Replaced by a new connection");
    }
    comp->stream = cs;
    cs->comp = comp;
    uv_timer_stop(&cs->timer);
    stream_write(cs, "<handshake/>", 12);
    vn_log_info("component %s connected from %s", comp->domain, vn_conn_peer_ip(cs->conn));
    /* With nothing waiting, deliver at once; else give it the time to
     * ask for acknowledgements first. */
    if (comp->queued == 0)
        start_delivering(cs);
    else
        uv_timer_start(&cs->timer, on_enable_grace, ENABLE_GRACE_MS, 0);
}

/* ---- stanzas from the component ---- */

static void handle_stanza(comp_stream *cs, vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    vn_jid *from = vn_jid_parse(vn_stanza_attr(st, "from") ? vn_stanza_attr(st, "from") : "");
    vn_jid *to = vn_jid_parse(vn_stanza_attr(st, "to") ? vn_stanza_attr(st, "to") : "");

    if (!vn_stanza_is(st, NULL, VN_NS_COMPONENT) ||
        (strcmp(name, "message") != 0 && strcmp(name, "presence") != 0 &&
         strcmp(name, "iq") != 0)) {
        stream_close(cs, "unsupported-stanza-type", NULL);
    } else if (!from || strcmp(from->domain, cs->comp->domain) != 0) {
        stream_close(cs, "invalid-from", "Send only from JIDs at your own domain");
    } else if (!to) {
        vn_stanza *reply = vn_stanza_error_reply(st, "modify", "jid-malformed", NULL);
        if (reply)
            write_stanza(cs, reply);
        vn_stanza_free(reply);
    } else {
        vn_stanza_replace_ns(st, VN_NS_COMPONENT, VN_NS_CLIENT);
        vn_stanza_set_attr(st, "from", from->full);
        vn_stanza_set_attr(st, "to", to->full);
        vn_route(st);
        st = NULL;
    }
    vn_stanza_free(st);
    vn_jid_free(from);
    vn_jid_free(to);
}

static void on_stanza(void *ud, vn_stanza *st)
{
    comp_stream *cs = ud;

    if (!cs->comp) {
        handle_handshake(cs, st);
        vn_stanza_free(st);
    } else if (vn_stanza_is(st, NULL, NS_SM)) {
        handle_sm(cs, st);
        vn_stanza_free(st);
    } else {
        cs->h_in++;
        start_delivering(cs); /* a plain component: it will not ask for acks */
        const vn_config *cfg = vn_srv.cfg;
        const vn_shaper_limits lim = {cfg->component_stanza_rate, cfg->component_stanza_burst,
                                      cfg->max_throttle_time};
        if (vn_shaper_stanza(&cs->shaper, &lim, cs->comp->domain)) {
            handle_stanza(cs, st);
            return;
        }
        stream_close(cs, "policy-violation", "Stanza rate limit exceeded: slow down");
        vn_stanza_free(st);
    }
}

static void on_stream_close(void *ud)
{
    stream_close(ud, NULL, NULL);
}

static void on_xml_error(void *ud, const char *condition, const char *text)
{
    stream_close(ud, condition, text);
}

/* ---- connection ---- */

/* Load shaping (shaper.h): stop reading after this stanza, or go on. */
static void shaper_pause(void *ud, bool paused)
{
    vn_xml_stream_pause(((comp_stream *)ud)->xs, paused);
}

static void on_overflow(void *ud)
{
    comp_stream *cs = ud;
    vn_log_warn("component %s: output buffer full, disconnecting",
                cs->domain ? cs->domain : vn_conn_peer_ip(cs->conn));
}

static void free_stream(uv_handle_t *h)
{
    free(h->data);
}

static void on_closed(void *ud, const char *reason)
{
    comp_stream *cs = ud;

    detach(cs);
    if (cs->prev)
        cs->prev->next = cs->next;
    else
        all_streams = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    vn_shaper_cleanup(&cs->shaper);
    vn_store_cancel(vn_server_store(), cs->ack_wait);
    cs->ack_wait = NULL;
    free(cs->domain);
    uv_timer_stop(&cs->timer);
    uv_close((uv_handle_t *)&cs->timer, free_stream);
}

static void on_handshake_timeout(uv_timer_t *t)
{
    stream_close(t->data, "connection-timeout", "Handshake not completed in time");
}

static const vn_xml_stream_handler stream_handler = {
    .stream_open = on_stream_open,
    .element = on_stanza,
    .stream_close = on_stream_close,
    .error = on_xml_error,
    .overflow = on_overflow,
    .closed = on_closed,
};

void vn_component_accept(vn_conn *c, const vn_listener_conf *lc, void *ud)
{
    const vn_config *cfg = vn_srv.cfg;
    comp_stream *cs = vn_alloc(sizeof *cs);
    unsigned char rnd[16];

    cs->conn = c;
    cs->xs = vn_xml_stream_accept(c, &stream_handler, cs);
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        abort();
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(cs->stream_id + 2 * i, 3, "%02x", rnd[i]);
    vn_shaper_init(&cs->shaper, "component", shaper_pause, cs);
    uv_timer_init(vn_srv.loop, &cs->timer);
    cs->timer.data = cs;
    uv_timer_start(&cs->timer, on_handshake_timeout, (uint64_t)cfg->handshake_timeout * 1000, 0);
    cs->next = all_streams;
    if (all_streams)
        all_streams->prev = cs;
    all_streams = cs;
    vn_xml_stream_start(cs->xs);
}

/* ---- routing and configuration ---- */

bool vn_components_route(const vn_stanza *st, const vn_jid *to)
{
    component *comp = NULL;

    HASH_FIND_STR(components, to->domain, comp);
    if (!comp)
        return false;
    comp_stream *cs = comp->stream;
    if (cs && !cs->acked && (!queueable(st) || (cs->delivering && cs->caught_up))) {
        write_stanza(cs, st); /* nothing waits before it, nor is it kept */
    } else if (!cs && !queueable(st)) {
        if (strcmp(vn_stanza_name(st), "presence") != 0)
            vn_route_error(st, "cancel", "service-unavailable", "The service is not connected");
    } else if (queue_append(comp, st) && cs) {
        cs->caught_up = false;
        queue_flush(cs);
    }
    return true;
}

bool vn_is_component(const char *domain)
{
    component *comp = NULL;

    if (domain)
        HASH_FIND_STR(components, domain, comp);
    return comp != NULL;
}

static void component_free(component *comp)
{
    if (comp->stream)
        stream_close(comp->stream, "host-gone", "The component was removed");
    vn_disco_remove_item(comp->host, comp->domain);
    HASH_DEL(components, comp);
    free(comp->domain);
    free(comp->secret);
    free(comp->host);
    free(comp->name);
    free(comp);
}

void vn_components_configure(const vn_config *cfg)
{
    component *comp, *tmp;

    HASH_ITER(hh, components, comp, tmp)
    {
        bool kept = false;
        for (size_t i = 0; i < cfg->n_components && !kept; i++)
            kept = strcmp(cfg->components[i].domain, comp->domain) == 0;
        if (!kept)
            component_free(comp);
    }
    for (size_t i = 0; i < cfg->n_components; i++) {
        const vn_component_conf *cc = &cfg->components[i];
        HASH_FIND_STR(components, cc->domain, comp);
        if (comp) {
            vn_disco_remove_item(comp->host, comp->domain);
            free(comp->secret);
            free(comp->host);
            free(comp->name);
        } else {
            comp = vn_alloc(sizeof *comp);
            comp->domain = vn_strdup(cc->domain);
            HASH_ADD_KEYPTR(hh, components, comp->domain, strlen(comp->domain), comp);
            if (vn_archive_count(vn_server_store(), comp->domain, "", QUEUE_ARCHIVE, NULL,
                                 &comp->queued) != VN_STORE_OK)
                vn_log_warn("component %s: cannot count its queue", comp->domain);
            else if (comp->queued)
                vn_log_info("component %s: %zu stanzas wait for it", comp->domain, comp->queued);
        }
        comp->secret = vn_strdup(cc->secret);
        comp->host = vn_strdup(cc->host);
        comp->name = vn_strdup(cc->name);
        vn_disco_add_item(comp->host, comp->domain, comp->name);
    }
}

void vn_components_shutdown(void)
{
    component *comp, *tmp;
    /* Streams first: component_free would tell them <host-gone/>. */
    for (comp_stream *cs = all_streams; cs; cs = cs->next)
        stream_close(cs, "system-shutdown", NULL);
    HASH_ITER(hh, components, comp, tmp)
    {
        component_free(comp);
    }
}
