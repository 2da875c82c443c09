/*
 * c2s_sm.c - Stream Management (XEP-0198, urn:xmpp:sm:3) for client
 * streams: acknowledgements, and resumption of a session whose
 * connection dropped.
 *
 * Every stanza sent on a stream with SM enabled is kept (as a copy) until
 * the client acknowledges it. When the connection drops, a resumable
 * stream hibernates: its session stays bound, stanzas for it queue up, and
 * a new connection of the same account may take it over with <resume/>,
 * receiving everything it had not acknowledged. When a session ends for
 * good, nothing unacknowledged is dropped silently: messages with a body
 * are routed again (to the account's other resources or offline storage)
 * and iq requests are answered with <service-unavailable/>.
 *
 * An ack is a promise that the counted stanzas will not be lost, and
 * handling a stanza may have written to the store (MAM, offline storage),
 * whose writes become durable a batch later (store.h). So <a h='...'/>
 * answers an <r/> only once everything written before is durable, and
 * carries the h of when the <r/> came; <resumed h='...'/> waits likewise.
 */
#include <errno.h>
#include <openssl/rand.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s_internal.h"
#include "sasl2.h"
#include "server.h"
#include "sessions.h"

static sm_state *resumable; /* by id */

static vn_c2s *stream_of(sm_state *sm)
{
    return (vn_c2s *)((char *)sm - offsetof(vn_c2s, sm));
}

static void run_session_hook(const char *name, vn_c2s *s)
{
    vn_event ev = {.session = s->session, .from = vn_session_jid(s->session), .host = s->host};
    vn_hook_run(name, &ev);
}

static void send_nonza(vn_c2s *s, vn_stanza *el)
{
    vn_c2s_write_element(s, el);
    vn_stanza_free(el);
}

static vn_stanza *failed_element(const char *condition)
{
    vn_stanza *failed = vn_stanza_new("failed", VN_NS_SM);
    vn_stanza_add_child(failed, condition, VN_NS_STANZA_ERRORS);
    return failed;
}

static vn_stanza *h_element(vn_c2s *s, const char *name, uint32_t h)
{
    char num[16];
    vn_stanza *el = vn_stanza_new(name, VN_NS_SM);
    snprintf(num, sizeof num, "%u", h);
    vn_stanza_set_attr(el, "h", num);
    if (strcmp(name, "resumed") == 0)
        vn_stanza_set_attr(el, "previd", s->sm.id);
    return el;
}

static void send_h(vn_c2s *s, const char *name, uint32_t h)
{
    send_nonza(s, h_element(s, name, h));
}

static void answer_r(vn_c2s *s);

static void on_ack_durable(int status, void *arg)
{
    vn_c2s *s = arg;

    s->sm.ack_wait = NULL;
    if (s->closing)
        return;
    if (status != VN_STORE_OK) {
        /* Not acknowledged: the client sends them again on its next session. */
        vn_c2s_close(s, "internal-server-error", "Storage failed");
        return;
    }
    send_h(s, "a", s->sm.ack_h);
    if (s->sm.r_again) {
        s->sm.r_again = false;
        answer_r(s);
    }
}

static void answer_r(vn_c2s *s)
{
    if (s->sm.ack_wait) {
        s->sm.r_again = true;
        return;
    }
    s->sm.ack_h = s->sm.h_in;
    s->sm.ack_wait = vn_store_when_durable(vn_server_store(), on_ack_durable, s);
}

static void cancel_ack(vn_c2s *s)
{
    vn_store_cancel(vn_server_store(), s->sm.ack_wait);
    s->sm.ack_wait = NULL;
    s->sm.r_again = false;
}

static void request_ack(vn_c2s *s)
{
    if (s->sm.ack_requested || !s->tx || s->sm.unacked == 0)
        return;
    s->sm.ack_requested = true;
    send_nonza(s, vn_stanza_new("r", VN_NS_SM));
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

/* Drop what the client says it handled; false if it claims more than sent. */
static bool apply_ack(sm_state *sm, uint32_t h)
{
    uint32_t newly = h - sm->acked; /* modulo 2^32, as XEP-0198 counts */
    if (newly > sm->unacked)
        return false;
    for (uint32_t i = 0; i < newly; i++) {
        sm_item *item = sm->head;
        sm->head = item->next;
        vn_stanza_free(item->stanza);
        free(item);
    }
    if (!sm->head)
        sm->tail = NULL;
    sm->unacked -= newly;
    sm->acked = h;
    return true;
}

void vn_c2s_sm_add_feature(vn_c2s *s, vn_stanza *features)
{
    if (!s->sm.enabled) /* Bind 2 may have enabled it already */
        vn_stanza_add_child(features, "sm", VN_NS_SM);
}

vn_stanza *vn_c2s_sm_enable(vn_c2s *s, const vn_stanza *el)
{
    const char *resume = vn_stanza_attr(el, "resume");
    unsigned timeout = vn_srv.cfg->resume_timeout;

    if (!s->session || s->sm.enabled)
        return failed_element("unexpected-request");
    s->sm.enabled = true;
    vn_stanza *enabled = vn_stanza_new("enabled", VN_NS_SM);
    if (resume && (strcmp(resume, "true") == 0 || strcmp(resume, "1") == 0) && timeout > 0) {
        unsigned char rnd[16];
        char max[16];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            abort();
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(s->sm.id + 2 * i, 3, "%02x", rnd[i]);
        s->sm.resumable = true;
        HASH_ADD_STR(resumable, id, &s->sm);
        snprintf(max, sizeof max, "%u", timeout);
        vn_stanza_set_attr(enabled, "id", s->sm.id);
        vn_stanza_set_attr(enabled, "resume", "true");
        vn_stanza_set_attr(enabled, "max", max);
    }
    return enabled;
}

static void handle_enable(vn_c2s *s, const vn_stanza *el)
{
    send_nonza(s, vn_c2s_sm_enable(s, el));
}

/* Take the old stream's session, SM state and queue over into s. */
static void take_over(vn_c2s *s, vn_c2s *old)
{
    HASH_DEL(resumable, &old->sm);
    cancel_ack(old); /* the <resumed/> answers for it */
    s->sm = old->sm;
    memset(&old->sm, 0, sizeof old->sm);
    HASH_ADD_STR(resumable, id, &s->sm);
    s->sm.ack_requested = false;

    s->session = old->session;
    old->session = NULL;
    vn_session_set_stream(s->session, s);

    if (old->tx) {
        /* The old connection has not noticed it is dead yet. */
        vn_c2s_close(old, "conflict", "The session was resumed on another connection");
    } else {
        old->closing = true;
        vn_c2s_destroy(old);
    }
}

static void handle_resume(vn_c2s *s, const vn_stanza *el, bool durable, bool inline_resume);

/* Where the answer to a <resume/> goes: the stream, or the SASL2 login it
 * came inside (sasl2.c, which writes it in its <success/>). */
static void resume_answer(vn_c2s *s, bool inline_resume, vn_stanza *answer)
{
    if (inline_resume)
        vn_c2s_sasl2_resumed(s, answer);
    else
        send_nonza(s, answer);
}

static void on_resume_durable(int status, void *arg)
{
    vn_c2s *s = arg;
    vn_stanza *el = s->sm.resume_el;
    bool inline_resume = s->sm.resume_inline;

    s->sm.resume_wait = NULL;
    s->sm.resume_el = NULL;
    s->sm.resume_inline = false;
    if (!s->closing && status != VN_STORE_OK)
        resume_answer(s, inline_resume, failed_element("internal-server-error"));
    else if (!s->closing)
        handle_resume(s, el, true, inline_resume);
    vn_stanza_free(el);
}

/* durable: everything written before is on disk, so the old stream's h
 * may be told. */
static void handle_resume(vn_c2s *s, const vn_stanza *el, bool durable, bool inline_resume)
{
    const char *previd = vn_stanza_attr(el, "previd");
    sm_state *sm = NULL;
    uint32_t h;

    if (s->session || s->sm.resume_wait) {
        resume_answer(s, inline_resume, failed_element("unexpected-request"));
        return;
    }
    if (previd)
        HASH_FIND_STR(resumable, previd, sm);
    vn_c2s *old = sm ? stream_of(sm) : NULL;
    if (!old || !old->session || strcmp(old->host, s->host) != 0 ||
        strcmp(old->user, s->user) != 0) {
        resume_answer(s, inline_resume, failed_element("item-not-found"));
        return;
    }
    if (!parse_h(vn_stanza_attr(el, "h"), &h)) {
        resume_answer(s, inline_resume, failed_element("unexpected-request"));
        return;
    }
    if (!durable) {
        s->sm.resume_el = vn_stanza_copy(el);
        s->sm.resume_inline = inline_resume;
        s->sm.resume_wait = vn_store_when_durable(vn_server_store(), on_resume_durable, s);
        return;
    }
    if (!apply_ack(&old->sm, h)) {
        resume_answer(s, inline_resume, failed_element("unexpected-request"));
        return;
    }
    take_over(s, old);
    vn_log_info("session resumed: %s (%zu stanza(s) to resend)", vn_session_jid(s->session)->full,
                s->sm.unacked);
    resume_answer(s, inline_resume, h_element(s, "resumed", s->sm.h_in));
    if (!inline_resume)
        vn_c2s_sm_resend(s);
}

void vn_c2s_sm_resend(vn_c2s *s)
{
    /* A backlog over the output cap aborts the stream from inside a write,
     * which ends the session and frees the queue being walked. */
    for (sm_item *item = s->sm.head; item && !s->closing;) {
        vn_c2s_write_element(s, item->stanza);
        item = s->closing ? NULL : item->next;
    }
    if (s->closing)
        return;
    request_ack(s);
    vn_c2s_start_session_timer(s);
    run_session_hook("session/resumed", s);
}

void vn_c2s_sm_resume_inline(vn_c2s *s, const vn_stanza *el)
{
    handle_resume(s, el, false, true);
}

void vn_c2s_sm_element(vn_c2s *s, const vn_stanza *el)
{
    const char *name = vn_stanza_name(el);
    uint32_t h;

    if (strcmp(name, "enable") == 0) {
        handle_enable(s, el);
    } else if (strcmp(name, "resume") == 0) {
        handle_resume(s, el, false, false);
    } else if (!s->sm.enabled) {
        vn_c2s_close(s, "unsupported-stanza-type", "Stream management is not enabled");
    } else if (strcmp(name, "r") == 0) {
        answer_r(s);
    } else if (strcmp(name, "a") == 0) {
        if (!parse_h(vn_stanza_attr(el, "h"), &h)) {
            vn_c2s_close(s, "bad-format", "Invalid 'h' in <a/>");
        } else if (!apply_ack(&s->sm, h)) {
            vn_c2s_close(s, "undefined-condition", "Acknowledged more stanzas than were sent");
        } else {
            s->sm.ack_requested = false;
            request_ack(s);
        }
    } else {
        vn_c2s_close(s, "unsupported-stanza-type", NULL);
    }
}

void vn_c2s_sm_received(vn_c2s *s)
{
    if (s->sm.enabled)
        s->sm.h_in++;
}

void vn_c2s_sm_sent(vn_c2s *s, const vn_stanza *st)
{
    sm_item *item = vn_alloc(sizeof *item);
    item->stanza = vn_stanza_copy(st);
    if (s->sm.tail)
        s->sm.tail->next = item;
    else
        s->sm.head = item;
    s->sm.tail = item;
    s->sm.unacked++;
    request_ack(s);
}

static void on_hibernation_timeout(uv_timer_t *t)
{
    vn_c2s *s = t->data;
    vn_log_info("session %s was not resumed in time", vn_session_jid(s->session)->full);
    vn_c2s_close(s, NULL, NULL);
}

/* Stream management's unacknowledged window is one of the two limits a
 * bulk sender must stay under; the transport's output queue the other. */
bool vn_c2s_can_take_more(const vn_c2s *s)
{
    if (s->closing || s->hibernating || !s->tx)
        return false;
    if (s->sm.enabled && s->sm.unacked >= vn_srv.cfg->max_unacked / 2)
        return false;
    return !s->ops->queued || s->ops->queued(s->tx) < vn_srv.cfg->max_output_buffer / 2;
}

bool vn_c2s_sm_hibernate(vn_c2s *s)
{
    if (!s->sm.resumable || !s->session || vn_srv.stopping)
        return false;
    s->hibernating = true;
    uv_timer_stop(&s->timer);
    uv_timer_start(&s->timer, on_hibernation_timeout, (uint64_t)vn_srv.cfg->resume_timeout * 1000,
                   0);
    vn_log_info("session %s hibernates: resumable for %u s, %zu unacknowledged",
                vn_session_jid(s->session)->full, vn_srv.cfg->resume_timeout, s->sm.unacked);
    run_session_hook("session/hibernated", s);
    return true;
}

/* A stanza the client never acknowledged, once its session is gone. */
static void settle_unacked(vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    const char *type = vn_stanza_attr(st, "type");

    if (strcmp(name, "message") == 0 && vn_stanza_child(st, "body", NULL) &&
        (!type || (strcmp(type, "error") != 0 && strcmp(type, "groupchat") != 0))) {
        vn_route(vn_stanza_copy(st)); /* other resources, or offline storage */
    } else if (strcmp(name, "iq") == 0 && type &&
               (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
        vn_route_error(st, "cancel", "service-unavailable", NULL);
    }
}

void vn_c2s_sm_end(vn_c2s *s, const vn_jid *jid)
{
    if (s->sm.resumable)
        HASH_DEL(resumable, &s->sm);
    cancel_ack(s);
    sm_item *item = s->sm.head;
    if (s->sm.unacked)
        vn_log_info("%s: %zu unacknowledged stanza(s) routed again or bounced", jid->full,
                    s->sm.unacked);
    memset(&s->sm, 0, sizeof s->sm);
    while (item) {
        sm_item *next = item->next;
        settle_unacked(item->stanza);
        vn_stanza_free(item->stanza);
        free(item);
        item = next;
    }
}

void vn_c2s_sm_free(vn_c2s *s)
{
    cancel_ack(s);
    vn_store_cancel(vn_server_store(), s->sm.resume_wait);
    s->sm.resume_wait = NULL;
    vn_stanza_free(s->sm.resume_el);
    s->sm.resume_el = NULL;
}
