/*
 * mod_offline.c - offline message storage (XEP-0160) with delay stamps
 * (XEP-0203).
 *
 * A message for an existing account that has no available resource with a
 * non-negative priority is kept in the account's "offline" archive instead
 * of bouncing, up to max_messages per account (past that, the sender gets
 * <service-unavailable/>, as XEP-0160 §2 says). When a session of the
 * account sends available presence with a non-negative priority for the
 * first time, the stored messages go to that session, oldest first, each
 * stamped with <delay/>, and are removed from the archive once written; a
 * large backlog is paced by the client's output drain (see below), so it
 * never overflows the connection's limits.
 *
 * Messages to accounts that do not exist are left to the router, which
 * answers them with <service-unavailable/>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/module.h>

#define OFFLINE_ARCHIVE "offline"
#define NS_DELAY "urn:xmpp:delay"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_JMI "urn:xmpp:jingle-message:0"

static const vn_config_key offline_keys[] = {
    {.name = "max_messages",
     .type = VN_CONF_INT,
     .default_value = "1000",
     .min = 1,
     .max = 1000000},
    {.name = NULL},
};

/* The message stored as data/len, or NULL if it does not parse. */
static vn_stanza *parse_stored(const void *data, size_t len)
{
    vn_stanza *stanza = vn_stanza_parse(data, len);
    if (stanza && !vn_stanza_is(stanza, "message", VN_NS_CLIENT)) {
        vn_stanza_free(stanza);
        return NULL;
    }
    return stanza;
}

/* ---- storing ---- */

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

/* XEP-0160 §3: chat and normal messages are stored; error, groupchat and
 * headline ones are not, nor are messages that only carry chat states
 * (XEP-0085 §5.6) or nothing at all, nor a call's <ringing/> (XEP-0353),
 * which means nothing once the call is over; its proposal is kept, so the
 * phone shows a missed call. */
static bool worth_storing(const vn_stanza *msg)
{
    const char *type = vn_stanza_attr(msg, "type");
    if (type && !is_type(type, "chat") && !is_type(type, "normal"))
        return false;
    for (const vn_stanza *child = vn_stanza_first_element(msg); child;
         child = vn_stanza_next_element(child))
        if (!vn_stanza_ns(child) || (strcmp(vn_stanza_ns(child), NS_CHATSTATES) != 0 &&
                                     !vn_stanza_is(child, "ringing", NS_JMI)))
            return true;
    return false;
}

static bool find_receiving_resource(vn_session *s, void *ud)
{
    bool *found = ud;
    if (vn_session_available(s) && vn_session_priority(s) >= 0) {
        *found = true;
        return false;
    }
    return true;
}

static vn_hook_result offline_store(vn_event *ev, void *ud)
{
    const vn_module *m = ud;
    const char *user = ev->to->local;
    vn_store *store = vn_server_store();
    bool online = false;
    size_t stored = 0;

    if (!worth_storing(ev->stanza))
        return VN_PASS;
    /* Sessions first: a table lookup, where the account is a store read. */
    vn_sessions_foreach(ev->to, find_receiving_resource, &online);
    if (online || !vn_account_exists(ev->host, user))
        return VN_PASS;

    long long quota = vn_module_config_int(m, "max_messages");
    if (vn_archive_count(store, ev->host, user, OFFLINE_ARCHIVE, NULL, &stored) != VN_STORE_OK) {
        vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return VN_HANDLED;
    }
    if ((long long)stored >= quota) {
        vn_log_info("offline: storage of %s full (%zu messages); bouncing a message from %s",
                    ev->to->bare, stored, ev->from->full);
        vn_route_error(ev->stanza, "cancel", "service-unavailable", "Offline storage is full");
        return VN_HANDLED;
    }

    size_t len = 0;
    char *xml = vn_stanza_serialize(ev->stanza, NULL, &len);
    int rc = vn_archive_append(store, ev->host, user, OFFLINE_ARCHIVE, 0, ev->from->full, xml, len,
                               NULL);
    free(xml);
    if (rc != VN_STORE_OK) {
        vn_log_error("offline: cannot store a message for %s", ev->to->bare);
        vn_route_error(ev->stanza, "cancel", "service-unavailable", NULL);
        return VN_HANDLED;
    }
    vn_log_debug("offline: stored a message for %s from %s", ev->to->bare, ev->from->full);
    return VN_HANDLED;
}

/* ---- delivering ---- */

/* A backlog can be far larger than what a connection may queue
 * (limits.max_output_buffer) or leave unacknowledged (XEP-0198): it goes
 * out in steps, each as much as the client can take now
 * (vn_session_can_take_more), the next one when its output has drained,
 * polled every STEP_INTERVAL_MS. Each message is removed from the archive
 * once written. */
#define STEP_MESSAGES 100
#define STEP_INTERVAL_MS 10

typedef struct backlog {
    vn_session *session;
    vn_jid *me;
    vn_timer *timer;   /* NULL when nothing is left to send */
    uint64_t after_id; /* the last stored message handled */
    size_t sent;
    uint64_t done[STEP_MESSAGES]; /* handled in this step, to remove */
    size_t n_done;
    bool stalled; /* the client could take no more in this step */
} backlog;

static void backlog_free(void *data)
{
    backlog *b = data;
    if (b->timer)
        vn_timer_stop(b->timer);
    vn_jid_free(b->me);
    free(b);
}

static bool send_item(const vn_archive_item *item, void *ud)
{
    backlog *b = ud;
    if (!vn_session_can_take_more(b->session)) {
        b->stalled = true;
        return false;
    }
    vn_stanza *msg = parse_stored(item->data, item->len);
    if (msg) {
        char stamp[VN_DATETIME_SIZE];
        vn_datetime_format(item->ts_us, stamp);
        vn_stanza *delay = vn_stanza_add_child(msg, "delay", NS_DELAY);
        vn_stanza_set_attr(delay, "from", b->me->domain);
        vn_stanza_set_attr(delay, "stamp", stamp);
        vn_session_send(b->session, msg);
        vn_stanza_free(msg);
        b->sent++;
    } else {
        vn_log_warn("offline: dropping unreadable stored message %llu of %s",
                    (unsigned long long)item->id, b->me->bare);
    }
    b->after_id = item->id;
    b->done[b->n_done++] = item->id;
    return true;
}

static void backlog_finish(backlog *b)
{
    if (b->timer)
        vn_timer_stop(b->timer);
    b->timer = NULL;
    if (b->sent)
        vn_log_info("offline: delivered %zu stored message(s) to %s", b->sent, b->me->full);
}

static void on_step_timer(vn_timer *t, void *ud);

/* Send what the client can take of the next STEP_MESSAGES messages. */
static void backlog_step(backlog *b)
{
    vn_store *store = vn_server_store();
    vn_archive_query q = {.after_id = b->after_id, .limit = STEP_MESSAGES};
    bool complete = false;

    b->n_done = 0;
    b->stalled = false;
    int rc = vn_archive_query_items(store, b->me->domain, b->me->local, OFFLINE_ARCHIVE, &q,
                                    send_item, b, &complete);
    for (size_t i = 0; i < b->n_done; i++)
        vn_archive_delete_id(store, b->me->domain, b->me->local, OFFLINE_ARCHIVE, b->done[i]);
    if (rc != VN_STORE_OK) {
        vn_log_error("offline: cannot read the stored messages of %s", b->me->bare);
        backlog_finish(b);
    } else if (complete && !b->stalled) {
        backlog_finish(b);
    } else if (!b->timer) {
        b->timer = vn_timer_start(STEP_INTERVAL_MS, STEP_INTERVAL_MS, on_step_timer, b);
    }
}

static void on_step_timer(vn_timer *t, void *ud)
{
    backlog_step(ud);
}

static int presence_priority(const vn_stanza *presence)
{
    const char *prio = vn_stanza_child_text(presence, "priority", VN_NS_CLIENT);
    return prio ? atoi(prio) : 0;
}

/* XEP-0160 §2: on the session's first available presence with a
 * non-negative priority. This runs before the presence modules and always
 * passes, so they still see the presence. */
static vn_hook_result offline_deliver(vn_event *ev, void *ud)
{
    vn_session *session = ev->session;
    const vn_module *m = ud;

    if (vn_stanza_attr(ev->stanza, "type") || presence_priority(ev->stanza) < 0 ||
        vn_session_get_data(session, m))
        return VN_PASS;
    backlog *b = vn_alloc(sizeof *b);
    *b = (backlog){.session = session, .me = vn_jid_copy(vn_session_jid(session))};
    vn_session_set_data(session, m, b, backlog_free);
    backlog_step(b);
    return VN_PASS;
}

/* ---- module ---- */

/* Storing is the last resort before the core bounces the message; the
 * delivery hook runs before any module that takes the presence. */
#define STORE_PRIORITY (-100)
#define DELIVER_PRIORITY 100

static int offline_load(vn_module *m)
{
    vn_hook_add("message/bare", STORE_PRIORITY, offline_store, m);
    vn_hook_add("presence/broadcast", DELIVER_PRIORITY, offline_deliver, m);
    vn_disco_add_feature("msgoffline");
    return 0;
}

static void offline_unload(vn_module *m)
{
    vn_hook_remove("message/bare", offline_store, m);
    vn_hook_remove("presence/broadcast", offline_deliver, m);
    vn_disco_remove_feature("msgoffline");
}

VN_MODULE("offline", "Offline messages (XEP-0160) with delay stamps (XEP-0203)", offline_keys,
          offline_load, offline_unload, NULL);
