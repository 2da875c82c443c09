/*
 * mod_last.c - Last Activity (XEP-0012).
 *
 * Asked of the server, it answers the server's uptime. Asked of an
 * account's bare JID, it answers 0 while the account has an available
 * resource, and otherwise the seconds since its last resource went away,
 * with the status text of that resource's last unavailable presence.
 * The logout time and status are kept in the store (store "last", key
 * "logout": "<microseconds since the epoch>\n<status>").
 *
 * XEP-0012 §4 lets only entities subscribed to the account's presence ask.
 * Subscriptions live in the roster module, which a module may not reach
 * into; until the core offers a subscription lookup, only the account
 * itself is answered and everyone else gets <forbidden/>.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/module.h>

#define NS_LAST "jabber:iq:last"
#define LAST_STORE "last"
#define LAST_KEY "logout"

static int64_t loaded_at_us; /* when the server loaded the module: start-up */

/* Per session: the status text of its last unavailable presence. */
static const char status_slot;

static void reply_seconds(const vn_stanza *iq, int64_t seconds, const char *status)
{
    vn_stanza *reply = vn_stanza_iq_result(iq);
    vn_stanza *query = vn_stanza_add_child(reply, "query", NS_LAST);
    char text[32];

    snprintf(text, sizeof text, "%" PRId64, seconds < 0 ? 0 : seconds);
    vn_stanza_set_attr(query, "seconds", text);
    if (status && *status)
        vn_stanza_add_text(query, status, strlen(status));
    vn_route(reply);
}

static vn_hook_result last_server(vn_event *ev, void *ud)
{
    reply_seconds(ev->stanza, (vn_now_us() - loaded_at_us) / 1000000, NULL);
    return VN_HANDLED;
}

static bool find_available(vn_session *s, void *ud)
{
    bool *available = ud;
    if (vn_session_available(s)) {
        *available = true;
        return false;
    }
    return true;
}

static vn_hook_result last_account(vn_event *ev, void *ud)
{
    if (!ev->from || !vn_jid_bare_equal(ev->from, ev->to)) {
        vn_route_error(ev->stanza, "auth", "forbidden", NULL);
        return VN_HANDLED;
    }
    bool available = false;
    vn_sessions_foreach(ev->to, find_available, &available);
    if (available) {
        reply_seconds(ev->stanza, 0, NULL);
        return VN_HANDLED;
    }

    vn_buf record;
    vn_buf_init(&record);
    int rc =
        vn_store_get(vn_server_store(), ev->host, ev->to->local, LAST_STORE, LAST_KEY, &record);
    if (rc == VN_STORE_OK) {
        char *status = NULL;
        long long logout_us = strtoll(record.data, &status, 10);
        if (*status == '\n')
            status++;
        reply_seconds(ev->stanza, (vn_now_us() - logout_us) / 1000000, status);
    } else if (rc == VN_STORE_NOT_FOUND) {
        vn_route_error(ev->stanza, "cancel", "item-not-found", "No logout recorded yet");
    } else {
        vn_route_error(ev->stanza, "wait", "internal-server-error", NULL);
    }
    vn_buf_free(&record);
    return VN_HANDLED;
}

/* Remember the status of each unavailable presence; always passes. */
static vn_hook_result last_note_status(vn_event *ev, void *ud)
{
    const char *type = vn_stanza_attr(ev->stanza, "type");
    if (!type || strcmp(type, "unavailable") != 0)
        return VN_PASS;
    const char *status = vn_stanza_child_text(ev->stanza, "status", VN_NS_CLIENT);
    vn_session_set_data(ev->session, &status_slot, vn_strdup(status ? status : ""), free);
    return VN_PASS;
}

static bool count_session(vn_session *s, void *ud)
{
    size_t *count = ud;
    (*count)++;
    return true;
}

/* The account's last session is going away: its logout time. */
static vn_hook_result last_record_logout(vn_event *ev, void *ud)
{
    const vn_jid *jid = vn_session_jid(ev->session);
    size_t sessions = 0;

    vn_sessions_foreach(jid, count_session, &sessions);
    /* Not the last one, or the account is being removed. */
    if (sessions > 1 || !vn_account_exists(jid->domain, jid->local))
        return VN_PASS;
    const char *status = vn_session_get_data(ev->session, &status_slot);
    char *record = vn_asprintf("%" PRId64 "\n%s", vn_now_us(), status ? status : "");
    if (vn_store_put(vn_server_store(), jid->domain, jid->local, LAST_STORE, LAST_KEY, record,
                     strlen(record)) != VN_STORE_OK)
        vn_log_error("last: cannot record the logout of %s", jid->bare);
    free(record);
    return VN_PASS;
}

/* Observers run before the presence module, which may take the presence. */
#define OBSERVER_PRIORITY 100

static int last_load(vn_module *m)
{
    loaded_at_us = vn_now_us();
    vn_hook_add("iq-get/host/" NS_LAST, 0, last_server, m);
    vn_hook_add("iq-get/bare/" NS_LAST, 0, last_account, m);
    vn_hook_add("presence/broadcast", OBSERVER_PRIORITY, last_note_status, m);
    vn_hook_add("session/closed", 0, last_record_logout, m);
    vn_disco_add_feature(NS_LAST);
    return 0;
}

static void last_unload(vn_module *m)
{
    vn_hook_remove("iq-get/host/" NS_LAST, last_server, m);
    vn_hook_remove("iq-get/bare/" NS_LAST, last_account, m);
    vn_hook_remove("presence/broadcast", last_note_status, m);
    vn_hook_remove("session/closed", last_record_logout, m);
    vn_disco_remove_feature(NS_LAST);
}

VN_MODULE("last", "Last Activity (XEP-0012)", NULL, last_load, last_unload, NULL);
