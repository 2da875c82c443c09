/*
 * mod_push.c - Push Notifications (XEP-0357, urn:xmpp:push:0).
 *
 * A client registers an app server (any JID: a component, a remote
 * service, even another account's full JID) and a node with <enable/>,
 * optionally with a publish-options form (the app server's secret, say);
 * <disable/> removes one node or every node of an app server. The
 * registrations of an account are one document in the store ("push",
 * key "registrations"), so they outlive sessions and restarts.
 *
 * When a message with a body, or a call's proposal (XEP-0353 <propose/>),
 * arrives that nobody will see now, each registration's app server gets a
 * pubsub publish, from the account's bare JID, of a urn:xmpp:push:summary
 * form: message count, last sender and, with include_body, the last body.
 * A call's summary always has the body "Incoming call" (in the host's
 * language), which tells the app server to ring, and says no more than
 * that a call came. Since a call rings every device (mod_jmi), one is
 * notified while any of the account's sessions hibernates, even when
 * another has its connection. "Nobody will see it" means the message
 * goes to a session that hibernates (its stream-management connection
 * dropped: the stanza only queues) or to no session at all (it goes to
 * offline storage). Sessions that are merely CSI-inactive are not
 * detected: that state belongs to mod_csi, and a module never reaches into
 * another one. The count runs from the account's last login or
 * resumption.
 *
 * Per registration, at most one publish goes out every min_interval
 * seconds: messages that arrive in between are coalesced into one publish
 * at the end of the interval, with the count at that time. An error from
 * the app server disables the registration (XEP-0357 §6); the publish's id
 * carries the node so the error can name it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>
#include <vestnik/i18n.h>
#include <vestnik/module.h>

#define NS_PUSH "urn:xmpp:push:0"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_DATA "jabber:x:data"
#define NS_JMI "urn:xmpp:jingle-message:0"
#define PUSH_STORE "push"
#define PUSH_KEY "registrations"
#define SUMMARY_FORM "urn:xmpp:push:summary"
#define PUBLISH_ID_PREFIX "vn-push:"
#define MAX_REGISTRATIONS 32

/* Before mod_jmi (-40) delivers a call to every device and offline storage
 * (-100) takes the message; after filters. */
#define NOTIFY_PRIORITY (-30)

static const vn_config_key push_keys[] = {
    /* Send the message text to the app server (and so to the phone
     * vendor's push service). */
    {.name = "include_body", .type = VN_CONF_BOOL, .default_value = "false"},
    /* Seconds between two publishes to one registration (0: no limit). */
    {.name = "min_interval", .type = VN_CONF_INT, .default_value = "5", .min = 0, .max = 3600},
    {.name = NULL},
};

static const vn_module *push_module;

/* ---- registrations in the store ---- */

static bool is_type(const char *type, const char *want)
{
    return type && strcmp(type, want) == 0;
}

static bool attr_is(const vn_stanza *el, const char *name, const char *value)
{
    const char *attr = vn_stanza_attr(el, name);
    return attr && strcmp(attr, value) == 0;
}

/* <registrations> holding one <enable jid node>[form]</enable> each; an
 * empty one when there are none. NULL on a store error. */
static vn_stanza *load_registrations(const char *host, const char *user)
{
    vn_buf value;
    vn_stanza *regs = NULL;

    vn_buf_init(&value);
    int rc = vn_store_get(vn_server_store(), host, user, PUSH_STORE, PUSH_KEY, &value);
    if (rc == VN_STORE_OK) {
        regs = vn_stanza_parse(value.data, value.len);
        if (!regs)
            vn_log_warn("push: unreadable registrations of %s@%s; starting afresh", user, host);
    } else if (rc != VN_STORE_NOT_FOUND) {
        vn_log_error("push: cannot read the registrations of %s@%s", user, host);
        vn_buf_free(&value);
        return NULL;
    }
    vn_buf_free(&value);
    return regs ? regs : vn_stanza_new("registrations", NS_PUSH);
}

static int save_registrations(const char *host, const char *user, const vn_stanza *regs)
{
    if (vn_stanza_element_count(regs) == 0)
        return vn_store_delete(vn_server_store(), host, user, PUSH_STORE, PUSH_KEY);
    size_t len = 0;
    char *xml = vn_stanza_serialize(regs, VN_NS_CLIENT, &len);
    int rc = vn_store_put(vn_server_store(), host, user, PUSH_STORE, PUSH_KEY, xml, len);
    free(xml);
    return rc;
}

/* Remove the registrations of app server jid: one node, or all if node is
 * NULL. Returns how many went. */
static size_t remove_registrations(vn_stanza *regs, const char *jid, const char *node)
{
    size_t removed = 0;
    for (vn_stanza *reg = vn_stanza_first_element(regs), *next; reg; reg = next) {
        next = vn_stanza_next_element(reg);
        if (attr_is(reg, "jid", jid) && (!node || attr_is(reg, "node", node))) {
            vn_stanza_remove(reg);
            removed++;
        }
    }
    return removed;
}

static vn_stanza *find_registration(const vn_stanza *regs, const char *jid, const char *node)
{
    for (vn_stanza *reg = vn_stanza_first_element(regs); reg; reg = vn_stanza_next_element(reg))
        if (attr_is(reg, "jid", jid) && attr_is(reg, "node", node))
            return reg;
    return NULL;
}

/* ---- what an account missed since its last login ---- */

typedef struct missed {
    char *bare; /* key */
    unsigned long count;
    char *last_sender;
    char *last_body;
    bool last_is_call; /* last_body says "Incoming call" */
    UT_hash_handle hh;
} missed;

static missed *missed_by_account;

static void missed_free(missed *m)
{
    HASH_DEL(missed_by_account, m);
    free(m->bare);
    free(m->last_sender);
    free(m->last_body);
    free(m);
}

static const missed *record_missed(const vn_jid *account, const vn_stanza *msg, const char *from)
{
    missed *m = NULL;
    HASH_FIND_STR(missed_by_account, account->bare, m);
    if (!m) {
        m = vn_alloc(sizeof *m);
        m->bare = vn_strdup(account->bare);
        HASH_ADD_KEYPTR(hh, missed_by_account, m->bare, strlen(m->bare), m);
    }
    m->count++;
    free(m->last_sender);
    free(m->last_body);
    m->last_sender = vn_strdup(from);
    m->last_is_call = vn_stanza_child(msg, "propose", NS_JMI) != NULL;
    m->last_body = vn_strdup(m->last_is_call ? vn_tr(NULL, N_("Incoming call"))
                                             : vn_stanza_child_text(msg, "body", NULL));
    return m;
}

/* ---- publishing ---- */

static void add_field(vn_stanza *form, const char *var, const char *type, const char *value)
{
    vn_stanza *field = vn_stanza_add_child(form, "field", NS_DATA);
    vn_stanza_set_attr(field, "var", var);
    if (type)
        vn_stanza_set_attr(field, "type", type);
    vn_stanza_add_text_child(field, "value", NS_DATA, value);
}

static void publish(const char *account, const vn_stanza *reg, const missed *summary)
{
    static unsigned long serial;
    const char *node = vn_stanza_attr(reg, "node");
    char count[32];

    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    char *id = vn_asprintf(PUBLISH_ID_PREFIX "%lu:%s", ++serial, node);
    vn_stanza_set_attr(iq, "type", "set");
    vn_stanza_set_attr(iq, "id", id);
    vn_stanza_set_attr(iq, "from", account);
    vn_stanza_set_attr(iq, "to", vn_stanza_attr(reg, "jid"));
    free(id);

    vn_stanza *pubsub = vn_stanza_add_child(iq, "pubsub", NS_PUBSUB);
    vn_stanza *item =
        vn_stanza_add_child(vn_stanza_add_child(pubsub, "publish", NS_PUBSUB), "item", NS_PUBSUB);
    vn_stanza_set_attr(vn_stanza_child(pubsub, "publish", NS_PUBSUB), "node", node);
    vn_stanza *form =
        vn_stanza_add_child(vn_stanza_add_child(item, "notification", NS_PUSH), "x", NS_DATA);
    vn_stanza_set_attr(form, "type", "submit");
    add_field(form, "FORM_TYPE", "hidden", SUMMARY_FORM);
    snprintf(count, sizeof count, "%lu", summary ? summary->count : 0UL);
    add_field(form, "message-count", NULL, count);
    if (summary && summary->last_sender)
        add_field(form, "last-message-sender", NULL, summary->last_sender);
    if (summary && summary->last_body &&
        (summary->last_is_call || vn_module_config_bool(push_module, "include_body")))
        add_field(form, "last-message-body", NULL, summary->last_body);

    const vn_stanza *options = vn_stanza_child(reg, "x", NS_DATA);
    if (options)
        vn_stanza_append(vn_stanza_add_child(pubsub, "publish-options", NS_PUBSUB),
                         vn_stanza_copy(options));
    vn_log_debug("push: notifying %s (node %s) for %s", vn_stanza_attr(reg, "jid"), node, account);
    vn_route(iq);
}

/* ---- rate limit: one publish per registration per min_interval ---- */

typedef struct push_window {
    char *key; /* account, jid and node, one per line */
    char *host, *user, *jid, *node;
    vn_timer *timer;
    bool pending; /* something arrived during the window */
    UT_hash_handle hh;
} push_window;

static push_window *open_windows;

static char *window_key(const char *bare, const char *jid, const char *node)
{
    return vn_asprintf("%s\n%s\n%s", bare, jid, node);
}

static void window_free(push_window *w)
{
    HASH_DEL(open_windows, w);
    if (w->timer)
        vn_timer_stop(w->timer);
    free(w->key);
    free(w->host);
    free(w->user);
    free(w->jid);
    free(w->node);
    free(w);
}

static void window_end(vn_timer *t, void *ud);

static void window_open(push_window *w)
{
    uint64_t interval_ms = (uint64_t)vn_module_config_int(push_module, "min_interval") * 1000;
    w->pending = false;
    w->timer = vn_timer_start(interval_ms, 0, window_end, w);
}

/* The interval is over: publish what was coalesced, if the registration
 * still exists, and keep limiting; or forget the window. */
static void window_end(vn_timer *t, void *ud)
{
    push_window *w = ud;
    w->timer = NULL;
    if (!w->pending) {
        window_free(w);
        return;
    }
    vn_jid *account = vn_jid_make(w->user, w->host, NULL);
    vn_stanza *regs = account ? load_registrations(w->host, w->user) : NULL;
    const vn_stanza *reg = regs ? find_registration(regs, w->jid, w->node) : NULL;
    if (reg) {
        missed *summary = NULL;
        HASH_FIND_STR(missed_by_account, account->bare, summary);
        publish(account->bare, reg, summary);
        window_open(w);
    }
    vn_stanza_free(regs);
    vn_jid_free(account);
    if (!reg)
        window_free(w);
}

static void notify(const vn_jid *account, const vn_stanza *reg, const missed *summary)
{
    const char *jid = vn_stanza_attr(reg, "jid"), *node = vn_stanza_attr(reg, "node");

    if (vn_module_config_int(push_module, "min_interval") == 0) {
        publish(account->bare, reg, summary);
        return;
    }
    char *key = window_key(account->bare, jid, node);
    push_window *w = NULL;
    HASH_FIND_STR(open_windows, key, w);
    if (w) {
        w->pending = true;
        free(key);
        return;
    }
    publish(account->bare, reg, summary);
    w = vn_alloc(sizeof *w);
    w->key = key;
    w->host = vn_strdup(account->domain);
    w->user = vn_strdup(account->local);
    w->jid = vn_strdup(jid);
    w->node = vn_strdup(node);
    HASH_ADD_KEYPTR(hh, open_windows, w->key, strlen(w->key), w);
    window_open(w);
}

static void forget_window(const char *bare, const char *jid, const char *node)
{
    char *key = window_key(bare, jid, node);
    push_window *w = NULL;
    HASH_FIND_STR(open_windows, key, w);
    if (w)
        window_free(w);
    free(key);
}

/* ---- messages nobody sees ---- */

static bool worth_notifying(const vn_stanza *msg)
{
    const char *type = vn_stanza_attr(msg, "type");
    return !is_type(type, "error") && !is_type(type, "groupchat") && !is_type(type, "headline") &&
           (vn_stanza_child(msg, "body", NULL) || vn_stanza_child(msg, "propose", NS_JMI));
}

static void message_unseen(const vn_event *ev)
{
    vn_stanza *regs = load_registrations(ev->to->domain, ev->to->local);
    if (!regs)
        return;
    if (vn_stanza_element_count(regs) > 0) {
        vn_jid *account = vn_jid_bare_copy(ev->to);
        const missed *summary = record_missed(account, ev->stanza, ev->from->full);
        for (const vn_stanza *reg = vn_stanza_first_element(regs); reg;
             reg = vn_stanza_next_element(reg))
            notify(account, reg, summary);
        vn_jid_free(account);
    }
    vn_stanza_free(regs);
}

typedef struct receivers {
    int best_priority;
    bool live;     /* a receiving session has a connection */
    bool sleeping; /* a call: a receiving session hibernates */
} receivers;

static bool find_best_priority(vn_session *s, void *ud)
{
    receivers *r = ud;
    if (vn_session_available(s) && vn_session_priority(s) > r->best_priority)
        r->best_priority = vn_session_priority(s);
    return true;
}

static bool find_live_receiver(vn_session *s, void *ud)
{
    receivers *r = ud;
    if (vn_session_available(s) && vn_session_priority(s) == r->best_priority &&
        !vn_session_hibernating(s))
        r->live = true;
    return !r->live;
}

/* A call rings every available device (mod_jmi): one whose connection
 * dropped must be woken even while another one is live. */
static bool find_sleeping_receiver(vn_session *s, void *ud)
{
    receivers *r = ud;
    if (vn_session_available(s) && vn_session_priority(s) >= 0) {
        r->live = r->live || !vn_session_hibernating(s);
        r->sleeping = r->sleeping || vn_session_hibernating(s);
    }
    return !r->sleeping;
}

/* To the bare JID: the core delivers to the available resources with the
 * highest non-negative priority, or offline storage takes it. */
static vn_hook_result push_bare(vn_event *ev, void *ud)
{
    receivers r = {.best_priority = -1};

    if (!worth_notifying(ev->stanza))
        return VN_PASS;
    if (vn_stanza_child(ev->stanza, "propose", NS_JMI)) {
        vn_sessions_foreach(ev->to, find_sleeping_receiver, &r);
        if (r.sleeping || !r.live)
            message_unseen(ev);
        return VN_PASS;
    }
    vn_sessions_foreach(ev->to, find_best_priority, &r);
    if (r.best_priority >= 0)
        vn_sessions_foreach(ev->to, find_live_receiver, &r);
    if (!r.live)
        message_unseen(ev);
    return VN_PASS;
}

static vn_hook_result push_full(vn_event *ev, void *ud)
{
    if (worth_notifying(ev->stanza) && vn_session_hibernating(ev->session))
        message_unseen(ev);
    return VN_PASS;
}

/* Back online: the count starts again. */
static vn_hook_result push_reset(vn_event *ev, void *ud)
{
    missed *m = NULL;
    HASH_FIND_STR(missed_by_account, vn_session_jid(ev->session)->bare, m);
    if (m)
        missed_free(m);
    return VN_PASS;
}

/* ---- the app server's answers ---- */

static vn_hook_result push_answer(vn_event *ev, void *ud)
{
    const char *id = vn_stanza_attr(ev->stanza, "id");

    /* Any iq result to an account passes here: look past the prefix only
     * once the id is known to have it. */
    if (!id || strncmp(id, PUBLISH_ID_PREFIX, strlen(PUBLISH_ID_PREFIX)) != 0)
        return VN_PASS;
    const char *node = strchr(id + strlen(PUBLISH_ID_PREFIX), ':');
    if (!node)
        return VN_PASS;
    node++;
    if (!is_type(vn_stanza_attr(ev->stanza, "type"), "error"))
        return VN_HANDLED;

    vn_stanza *regs = load_registrations(ev->to->domain, ev->to->local);
    if (regs && remove_registrations(regs, ev->from->full, node) > 0 &&
        save_registrations(ev->to->domain, ev->to->local, regs) == VN_STORE_OK) {
        vn_log_info("push: %s answered with an error: registration %s of %s disabled",
                    ev->from->full, node, ev->to->bare);
        forget_window(ev->to->bare, ev->from->full, node);
    }
    vn_stanza_free(regs);
    return VN_HANDLED;
}

/* ---- enable / disable ---- */

/* The app server's JID in canonical form, or NULL after answering an error. */
static char *requested_jid(const vn_event *ev, const vn_stanza *request)
{
    const char *jid = vn_stanza_attr(request, "jid");
    char *norm = jid ? vn_jid_normalize(jid) : NULL;

    if (!norm)
        vn_route_error(ev->stanza, "modify", jid ? "jid-malformed" : "bad-request",
                       "The app server's 'jid' is missing or invalid");
    return norm;
}

static bool enable(const vn_event *ev, const vn_stanza *request, vn_stanza *regs, const char *jid)
{
    const char *node = vn_stanza_attr(request, "node");
    const vn_stanza *options = vn_stanza_child(request, "x", NS_DATA);

    if (!node || !*node) {
        vn_route_error(ev->stanza, "modify", "bad-request", "<enable/> needs a 'node'");
        return false;
    }
    if (options && !attr_is(options, "type", "submit")) {
        vn_route_error(ev->stanza, "modify", "bad-request", "Publish options are a submitted form");
        return false;
    }
    remove_registrations(regs, jid, node);
    if (vn_stanza_element_count(regs) >= MAX_REGISTRATIONS) {
        vn_route_error(ev->stanza, "wait", "resource-constraint", "Too many push registrations");
        return false;
    }
    vn_stanza *reg = vn_stanza_add_child(regs, "enable", NS_PUSH);
    vn_stanza_set_attr(reg, "jid", jid);
    vn_stanza_set_attr(reg, "node", node);
    if (options)
        vn_stanza_append(reg, vn_stanza_copy(options));
    return true;
}

static vn_hook_result push_iq(vn_event *ev, void *ud)
{
    const vn_stanza *request = vn_stanza_first_element(ev->stanza);
    const char *name = vn_stanza_name(request);
    bool is_enable = strcmp(name, "enable") == 0;

    if (!vn_jid_bare_equal(ev->from, ev->to)) {
        vn_route_error(ev->stanza, "auth", "forbidden", "Only the account sets its push services");
        return VN_HANDLED;
    }
    if (!is_enable && strcmp(name, "disable") != 0) {
        vn_route_error(ev->stanza, "modify", "bad-request", "Expected <enable/> or <disable/>");
        return VN_HANDLED;
    }
    char *jid = requested_jid(ev, request);
    if (!jid)
        return VN_HANDLED;
    vn_stanza *regs = load_registrations(ev->to->domain, ev->to->local);
    const char *node = vn_stanza_attr(request, "node");
    bool ok = regs != NULL;

    if (!ok)
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
    else if (is_enable)
        ok = enable(ev, request, regs, jid);
    else
        remove_registrations(regs, jid, node);

    if (ok && save_registrations(ev->to->domain, ev->to->local, regs) != VN_STORE_OK) {
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
        ok = false;
    }
    if (ok) {
        if (!is_enable && node)
            forget_window(ev->to->bare, jid, node);
        vn_log_info("push: %s %s for %s (node %s)", ev->to->bare,
                    is_enable ? "enabled" : "disabled", jid, node ? node : "*");
        vn_route_durable(vn_stanza_iq_result(ev->stanza));
    }
    vn_stanza_free(regs);
    free(jid);
    return VN_HANDLED;
}

/* ---- module ---- */

/* Clients look for push support on their own account's JID. */
static vn_hook_result account_features(vn_event *ev, void *ud)
{
    vn_stanza *f = vn_stanza_add_child(ev->data, "feature", vn_stanza_ns(ev->data));
    vn_stanza_set_attr(f, "var", NS_PUSH);
    return VN_PASS;
}

static int push_load(vn_module *m)
{
    push_module = m;
    vn_hook_add("iq-set/bare/" NS_PUSH, 0, push_iq, m);
    vn_hook_add("iq-result/bare", 0, push_answer, m);
    vn_hook_add("message/bare", NOTIFY_PRIORITY, push_bare, m);
    vn_hook_add("message/full", NOTIFY_PRIORITY, push_full, m);
    vn_hook_add("session/bound", 0, push_reset, m);
    vn_hook_add("session/resumed", 0, push_reset, m);
    vn_hook_add("disco/account-info", 0, account_features, m);
    vn_disco_add_feature(NS_PUSH);
    return 0;
}

static void push_unload(vn_module *m)
{
    vn_hook_remove("iq-set/bare/" NS_PUSH, push_iq, m);
    vn_hook_remove("iq-result/bare", push_answer, m);
    vn_hook_remove("message/bare", push_bare, m);
    vn_hook_remove("message/full", push_full, m);
    vn_hook_remove("session/bound", push_reset, m);
    vn_hook_remove("session/resumed", push_reset, m);
    vn_hook_remove("disco/account-info", account_features, m);
    vn_disco_remove_feature(NS_PUSH);
    while (open_windows)
        window_free(open_windows);
    while (missed_by_account)
        missed_free(missed_by_account);
    push_module = NULL;
}

VN_MODULE("push", "Push Notifications (XEP-0357)", push_keys, push_load, push_unload, NULL);
