/*
 * c2s.c - client-to-server streams (RFC 6120).
 *
 * One vn_c2s per client connection. It drives the stream through its
 * stages: stream header → (STARTTLS → restart) → SASL → restart → resource
 * binding → stanzas, answering each protocol fault with the stream or
 * stanza error the RFC assigns. Once a resource is bound, stanzas from the
 * client get their 'from' stamped and go to the router; stanzas for the
 * client arrive through vn_c2s_write_stanza.
 */
#include <ctype.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "abuse_limits.h"
#include "c2s_internal.h"
#include "i18n.h"
#include "sasl.h"
#include "sasl2.h"
#include "server.h"
#include "sessions.h"
#include "tls.h"
#include "vestnik/i18n.h"
#include "vestnik/module.h"

/* After this many wrong credentials the stream is closed. */
#define MAX_AUTH_FAILURES 3

static vn_c2s *all_streams;
static size_t stream_count;

static void c2s_abort(vn_c2s *s, const char *reason);

/* ---- output ---- */

static const char *peer_ip(const vn_c2s *s)
{
    return s->tx ? s->ops->peer_ip(s->tx) : "-";
}

static bool secure(const vn_c2s *s)
{
    return s->tx && s->ops->secure(s->tx);
}

void vn_c2s_write_element(vn_c2s *s, const vn_stanza *st)
{
    if (!s->tx)
        return;
    if (vn_log_enabled(VN_LOG_DEBUG)) {
        char *xml = vn_stanza_serialize(st, VN_NS_CLIENT, NULL);
        vn_log_debug("c2s %s SEND %s", s->session ? vn_session_jid(s->session)->full : peer_ip(s),
                     xml);
        free(xml);
    }
    if (s->ops->element(s->tx, st) < 0)
        c2s_abort(s, "output buffer full (client not reading)");
}

void vn_c2s_write_stanza(vn_c2s *s, const vn_stanza *st)
{
    if (s->closing)
        return;
    bool counted = s->sm.enabled && vn_stanza_is_stanza_ns(vn_stanza_ns(st));
    if (counted && s->sm.unacked >= vn_srv.cfg->max_unacked) {
        /* Over the limit: this stanza joins the unacknowledged ones, which
         * are routed again or bounced as the stream closes. */
        vn_c2s_sm_sent(s, st);
        vn_c2s_close(s, "resource-constraint", "Too many unacknowledged stanzas");
        return;
    }
    vn_c2s_write_element(s, st);
    /* After the write: the <r/> follows the stanza it asks about, and a
     * write that aborted the stream has already ended its SM state. */
    if (counted && s->sm.enabled)
        vn_c2s_sm_sent(s, st);
}

static void send_header(vn_c2s *s, const char *client_from)
{
    s->header_sent = true;
    if (s->tx)
        s->ops->open(s->tx, s->stream_id, s->host ? s->host : vn_local_hosts()[0], client_from);
}

/* ---- closing ---- */

static void unbind(vn_c2s *s, const char *reason)
{
    if (!s->session)
        return;
    vn_session *session = s->session;
    vn_jid *jid = vn_jid_copy(vn_session_jid(session));
    s->session = NULL;
    vn_sessions_unbind(session, reason);
    vn_c2s_sm_end(s, jid);
    vn_jid_free(jid);
}

/* Tear down at once, without a stream error (the peer cannot take one). */
static void c2s_abort(vn_c2s *s, const char *reason)
{
    if (s->closing)
        return;
    vn_log_info("c2s %s: closing: %s", peer_ip(s), reason);
    s->closing = true;
    unbind(s, reason);
    if (s->tx)
        s->ops->close(s->tx, false);
    else
        vn_c2s_destroy(s);
}

void vn_c2s_close(vn_c2s *s, const char *condition, const char *text)
{
    if (s->closing)
        return;
    if (!s->header_sent)
        send_header(s, NULL);
    if (condition) {
        vn_stanza *err = vn_stanza_new("error", VN_NS_STREAMS);
        vn_stanza_add_child(err, condition, VN_NS_STREAM_ERRORS);
        if (text) {
            vn_stanza *t =
                vn_stanza_add_text_child(err, "text", VN_NS_STREAM_ERRORS, vn_tr(s->lang, text));
            vn_stanza_set_attr(t, "xml:lang", vn_tr_lang(s->lang));
        }
        vn_c2s_write_element(s, err);
        vn_stanza_free(err);
        vn_log_info("c2s %s: stream error %s%s%s", peer_ip(s), condition, text ? ": " : "",
                    text ? text : "");
    }
    s->closing = true;
    unbind(s, condition);
    if (s->tx)
        s->ops->close(s->tx, true);
    else
        vn_c2s_destroy(s); /* a hibernating stream: no transport to wait for */
}

void vn_c2s_close_all(const char *condition)
{
    for (vn_c2s *s = all_streams; s; s = s->next)
        vn_c2s_close(s, condition, NULL);
}

size_t vn_c2s_count(void)
{
    return stream_count;
}

bool vn_c2s_hibernating(const vn_c2s *s)
{
    return s->hibernating;
}

/* ---- stream features ---- */

vn_sasl_context vn_c2s_sasl_context(vn_c2s *s)
{
    vn_sasl_context ctx = {
        .store = vn_srv.store,
        .host = s->host,
        .ssl = s->tx ? s->ops->ssl(s->tx) : NULL,
        .secure = secure(s),
        .peer_ip = peer_ip(s),
        .allow_plain = vn_srv.cfg->allow_plain,
        /* Web transports (no STARTTLS of their own) serve browsers. */
        .channel_binding = s->ops->start_tls || vn_srv.cfg->web_channel_binding,
        .client_tried_plus = s->tried_plus,
        .account_held = vn_limits_login_held_account,
        .scram_iterations = vn_srv.cfg->scram_iterations,
    };
    return ctx;
}

void vn_c2s_send_features(vn_c2s *s)
{
    vn_stanza *features = vn_stanza_new("features", VN_NS_STREAMS);
    bool tls = secure(s);

    if (!s->authenticated) {
        if (!tls && !s->ops->start_tls && vn_srv.cfg->require_encryption) {
            /* A web transport over plain HTTP cannot be upgraded. */
            vn_stanza_free(features);
            vn_c2s_close(s, "policy-violation", "Encryption is required: use https");
            return;
        }
        if (!tls && s->ops->start_tls) {
            vn_stanza *starttls = vn_stanza_add_child(features, "starttls", VN_NS_TLS);
            if (vn_srv.cfg->require_encryption)
                vn_stanza_add_child(starttls, "required", VN_NS_TLS);
        }
        if (tls || !vn_srv.cfg->require_encryption) {
            vn_sasl_context ctx = vn_c2s_sasl_context(s);
            vn_sasl_add_features(&ctx, features);
            vn_c2s_sasl2_add_features(s, &ctx, features);
            vn_event ev = {.host = s->host, .data = features};
            vn_hook_run("stream/features/unauthenticated", &ev);
        }
    } else {
        if (!s->session) { /* SASL2 with Bind 2 may have bound one */
            vn_stanza_add_child(features, "bind", VN_NS_BIND);
            vn_stanza *session = vn_stanza_add_child(features, "session", VN_NS_SESSION);
            vn_stanza_add_child(session, "optional", VN_NS_SESSION);
        }
        vn_c2s_sm_add_feature(s, features);
        vn_event ev = {.host = s->host, .data = features};
        vn_hook_run("stream/features", &ev);
    }
    vn_c2s_write_element(s, features);
    vn_stanza_free(features);
}

/* ---- stream header ---- */

/* A language tag as RFC 5646 spells them (letters, digits, hyphens). */
static bool valid_lang(const char *lang)
{
    size_t len = lang ? strlen(lang) : 0;
    if (len == 0 || len > 35)
        return false;
    for (const char *p = lang; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
    return true;
}

/* The stream's language: its header's xml:lang, else the account's choice
 * (once authenticated), else the host's default. */
static void set_stream_lang(vn_c2s *s, const char *lang)
{
    const vn_host_conf *host = s->host ? vn_config_host(vn_srv.cfg, s->host) : NULL;

    free(s->lang);
    s->lang = NULL;
    if (valid_lang(lang))
        s->lang = vn_strdup(lang);
    else if (s->authenticated)
        s->lang = vn_user_language(s->host, s->user);
    if (!s->lang)
        s->lang = vn_strdup(host && host->language ? host->language : vn_srv.cfg->language);
}

void vn_c2s_input_open(vn_c2s *s, const vn_stanza *header)
{
    const char *to = vn_stanza_attr(header, "to");
    const char *version = vn_stanza_attr(header, "version");
    const char *from = vn_stanza_attr(header, "from");
    char *from_norm = from ? vn_jid_normalize(from) : NULL;

    if (!s->host) {
        char *host = to ? vn_jid_prep_domain(to) : vn_strdup(vn_local_hosts()[0]);
        if (host && vn_is_local_host(host))
            s->host = host;
        else
            free(host);
    }
    send_header(s, from_norm);
    free(from_norm);
    set_stream_lang(s, vn_stanza_attr(header, "xml:lang"));

    if (!vn_stanza_is(header, "stream", VN_NS_STREAMS) || !vn_stanza_attr(header, "xmlns") ||
        strcmp(vn_stanza_attr(header, "xmlns"), VN_NS_CLIENT) != 0) {
        vn_c2s_close(s, "invalid-namespace", NULL);
        return;
    }
    if (!s->host) {
        vn_c2s_close(s, "host-unknown", "This server does not serve that domain");
        return;
    }
    if (!version || strncmp(version, "1.", 2) != 0) {
        vn_c2s_close(s, "unsupported-version", "XMPP 1.0 streams only");
        return;
    }
    vn_c2s_send_features(s);
}

/* ---- SASL ---- */

static void sasl_failure(vn_c2s *s, const char *condition)
{
    vn_stanza *failure = vn_stanza_new("failure", VN_NS_SASL);
    vn_stanza_add_child(failure, condition, VN_NS_SASL);
    vn_c2s_write_stanza(s, failure);
    vn_stanza_free(failure);
}

static void sasl_reply(vn_c2s *s, const char *name, const char *b64)
{
    vn_stanza *reply = vn_stanza_new(name, VN_NS_SASL);
    if (b64 && *b64)
        vn_stanza_add_text(reply, b64, strlen(b64));
    vn_c2s_write_stanza(s, reply);
    vn_stanza_free(reply);
}

static void sasl_step(vn_c2s *s, const char *input)
{
    const char *condition = "not-authorized";
    vn_buf out;
    vn_buf_init(&out);
    vn_sasl_status status = vn_sasl_step(s->sasl, input, &out, &condition);

    if (status == VN_SASL_CONTINUE) {
        sasl_reply(s, "challenge", out.data);
    } else if (status == VN_SASL_SUCCESS) {
        sasl_reply(s, "success", out.data);
        s->authenticated = true;
        s->user = vn_strdup(vn_sasl_username(s->sasl));
        vn_limits_login_succeeded(peer_ip(s), s->host, s->user);
        vn_log_info("c2s %s: authenticated %s@%s with %s", peer_ip(s), s->user, s->host,
                    vn_sasl_mechanism(s->sasl));
        vn_sasl_free(s->sasl);
        s->sasl = NULL;
        s->restart = true;
        s->header_sent = false;
    } else {
        vn_log_info("c2s %s: authentication failed (%s, %s)", peer_ip(s),
                    vn_sasl_mechanism(s->sasl), condition);
        /* Wrong passwords count toward the login back-off (abuse_limits.c). */
        if (vn_sasl_wrong_credentials(s->sasl))
            vn_limits_login_failed(peer_ip(s), s->host, vn_sasl_attempted_username(s->sasl));
        vn_sasl_free(s->sasl);
        s->sasl = NULL;
        sasl_failure(s, condition);
        if (strcmp(condition, "not-authorized") == 0 && ++s->auth_failures >= MAX_AUTH_FAILURES)
            vn_c2s_close(s, "policy-violation", "Too many failed authentication attempts");
    }
    vn_buf_free(&out);
}

static void handle_sasl(vn_c2s *s, vn_stanza *st)
{
    const char *name = vn_stanza_name(st);

    if (s->authenticated) {
        vn_c2s_close(s, "policy-violation", "Already authenticated");
        return;
    }
    if (strcmp(name, "auth") == 0) {
        if (!secure(s) && vn_srv.cfg->require_encryption) {
            sasl_failure(s, "encryption-required");
            return;
        }
        /* This address is in login back-off: refuse before any work. The
         * refusals count toward closing the stream, so that a client
         * cannot spin on them. */
        if (vn_limits_login_held_ip(peer_ip(s))) {
            vn_log_info("c2s %s: login refused: address in back-off", peer_ip(s));
            sasl_failure(s, "temporary-auth-failure");
            if (++s->auth_failures >= MAX_AUTH_FAILURES)
                vn_c2s_close(s, "policy-violation", "Too many failed authentication attempts");
            return;
        }
        vn_sasl_free(s->sasl);
        s->sasl = NULL;
        const char *mech = vn_stanza_attr(st, "mechanism");
        const char *condition = "invalid-mechanism";
        vn_sasl_context ctx = vn_c2s_sasl_context(s);
        if (mech)
            s->sasl = vn_sasl_start(&ctx, mech, &condition);
        if (mech && strlen(mech) > 5 && strcmp(mech + strlen(mech) - 5, "-PLUS") == 0)
            s->tried_plus = true;
        if (!s->sasl) {
            sasl_failure(s, condition);
            return;
        }
        sasl_step(s, vn_stanza_text(st));
    } else if (strcmp(name, "response") == 0 && s->sasl) {
        sasl_step(s, vn_stanza_text(st));
    } else if (strcmp(name, "abort") == 0) {
        vn_sasl_free(s->sasl);
        s->sasl = NULL;
        sasl_failure(s, "aborted");
    } else {
        sasl_failure(s, "malformed-request");
    }
}

/* ---- STARTTLS ---- */

static void handle_starttls(vn_c2s *s, vn_stanza *st)
{
    if (secure(s) || s->authenticated || !s->ops->start_tls ||
        !vn_stanza_is(st, "starttls", NULL)) {
        vn_c2s_close(s, "policy-violation", "Unexpected TLS negotiation");
        return;
    }
    vn_stanza *proceed = vn_stanza_new("proceed", VN_NS_TLS);
    vn_c2s_write_stanza(s, proceed);
    vn_stanza_free(proceed);
    if (s->ops->start_tls(s->tx, vn_tls_ctx_for_host(s->host)) < 0) {
        c2s_abort(s, "cannot start TLS");
        return;
    }
    s->restart = true;
    s->header_sent = false;
}

/* ---- resource binding ---- */

static void reply_error(vn_c2s *s, const vn_stanza *st, const char *type, const char *cond,
                        const char *text)
{
    vn_stanza *reply = vn_stanza_error_reply(st, type, cond, text);
    if (!reply)
        return;
    vn_stanza_set_attr(reply, "from", NULL);
    vn_c2s_write_stanza(s, reply);
    vn_stanza_free(reply);
}

static void handle_bind(vn_c2s *s, vn_stanza *iq, const vn_stanza *bind)
{
    if (s->session) {
        reply_error(s, iq, "cancel", "not-allowed", N_("A resource is already bound"));
        return;
    }
    const char *condition = "bad-request";
    const char *resource = vn_stanza_child_text(bind, "resource", VN_NS_BIND);
    s->session = vn_sessions_bind(s, s->host, s->user, resource, &condition);
    if (!s->session && strcmp(condition, "resource-constraint") == 0) {
        /* RFC 6120 §7.6.2.2: limits.max_resources_per_account reached. */
        reply_error(s, iq, "wait", condition, N_("Too many resources bound for this account"));
        return;
    }
    if (!s->session) {
        reply_error(s, iq, "modify", condition, N_("Invalid resource"));
        return;
    }
    vn_stanza *result = vn_stanza_iq_result(iq);
    vn_stanza_set_attr(result, "from", NULL);
    vn_stanza_set_attr(result, "to", NULL);
    vn_stanza *b = vn_stanza_add_child(result, "bind", VN_NS_BIND);
    vn_stanza_add_text_child(b, "jid", VN_NS_BIND, vn_session_jid(s->session)->full);
    vn_c2s_write_stanza(s, result);
    vn_stanza_free(result);
    vn_c2s_start_session_timer(s);
}

/* <iq type='set'> with <bind/> or the legacy <session/> (RFC 3921);
 * false for any other iq. */
static bool handle_session_setup(vn_c2s *s, vn_stanza *st)
{
    const char *type = vn_stanza_attr(st, "type");
    if (!vn_stanza_is(st, "iq", VN_NS_CLIENT) || !type || strcmp(type, "set") != 0)
        return false;
    vn_stanza *payload = vn_stanza_first_element(st);
    if (payload && vn_stanza_is(payload, "bind", VN_NS_BIND)) {
        handle_bind(s, st, payload);
        return true;
    }
    if (payload && s->session && vn_stanza_is(payload, "session", VN_NS_SESSION)) {
        vn_stanza *result = vn_stanza_iq_result(st);
        vn_stanza_set_attr(result, "from", NULL);
        vn_stanza_set_attr(result, "to", NULL);
        vn_c2s_write_stanza(s, result);
        vn_stanza_free(result);
        return true;
    }
    return false;
}

/* ---- before authentication ---- */

/* Only modules may take an iq before authentication (in-band
 * registration); anything else closes the stream. */
static void handle_unauthenticated_iq(vn_c2s *s, vn_stanza *st)
{
    vn_unauthenticated_iq unauth = {.peer_ip = peer_ip(s)};
    vn_event ev = {.stanza = st, .host = s->host, .data = &unauth};

    if (!vn_stanza_is(st, "iq", VN_NS_CLIENT) ||
        vn_hook_run("iq/unauthenticated", &ev) != VN_HANDLED) {
        vn_c2s_close(s, "not-authorized", NULL);
        return;
    }
    if (unauth.reply) {
        vn_c2s_write_stanza(s, unauth.reply);
        vn_stanza_free(unauth.reply);
    }
}

/* ---- stanzas from a bound client ---- */

static bool valid_iq(const vn_stanza *st)
{
    const char *type = vn_stanza_attr(st, "type");
    if (!vn_stanza_attr(st, "id") || !type)
        return false;
    return strcmp(type, "get") == 0 || strcmp(type, "set") == 0 || strcmp(type, "result") == 0 ||
           strcmp(type, "error") == 0;
}

/* Presence without 'to' is the client's broadcast presence. Modules
 * (presence, roster) take it through "presence/broadcast"; the core only
 * records availability and priority, which bare-JID delivery needs. */
static void handle_broadcast_presence(vn_c2s *s, vn_stanza *st)
{
    vn_event ev = {
        .stanza = st, .session = s->session, .from = vn_session_jid(s->session), .host = s->host};
    if (vn_hook_run("presence/broadcast", &ev) == VN_HANDLED)
        return;
    const char *type = vn_stanza_attr(st, "type");
    if (type && strcmp(type, "unavailable") != 0)
        return;
    const char *prio = vn_stanza_child_text(st, "priority", VN_NS_CLIENT);
    long p = prio ? strtol(prio, NULL, 10) : 0;
    vn_session_set_priority(s->session, p < -128 ? -128 : p > 127 ? 127 : (int)p);
    vn_session_set_available(s->session, type == NULL);
}

static void handle_client_stanza(vn_c2s *s, vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    const vn_jid *me = vn_session_jid(s->session);

    if (strcmp(name, "iq") == 0 && !valid_iq(st)) {
        reply_error(s, st, "modify", "bad-request", N_("An iq needs an id and a valid type"));
        vn_stanza_free(st);
        return;
    }
    vn_stanza_set_attr(st, "from", me->full);

    const char *to = vn_stanza_attr(st, "to");
    if (to) {
        char *norm = vn_jid_normalize(to);
        if (!norm) {
            vn_stanza_set_attr(st, "from", NULL);
            reply_error(s, st, "modify", "jid-malformed", NULL);
            vn_stanza_free(st);
            return;
        }
        vn_stanza_set_attr(st, "to", norm);
        free(norm);
    } else if (strcmp(name, "presence") == 0) {
        handle_broadcast_presence(s, st);
        vn_stanza_free(st);
        return;
    } else {
        vn_stanza_set_attr(st, "to", me->bare);
    }

    vn_event ev = {.stanza = st, .session = s->session, .from = me, .host = s->host};
    if (vn_hook_run("stanza/in", &ev) == VN_HANDLED) {
        vn_stanza_free(st);
        return;
    }
    vn_route(st);
}

static bool is_client_stanza(const vn_stanza *st)
{
    const char *name = vn_stanza_name(st);
    return vn_stanza_ns(st) && strcmp(vn_stanza_ns(st), VN_NS_CLIENT) == 0 &&
           (strcmp(name, "message") == 0 || strcmp(name, "presence") == 0 ||
            strcmp(name, "iq") == 0);
}

void vn_c2s_input_element(vn_c2s *s, vn_stanza *st)
{
    const char *ns = vn_stanza_ns(st) ? vn_stanza_ns(st) : "";

    vn_log_debug("c2s %s RECV <%s xmlns='%s'>",
                 s->session ? vn_session_jid(s->session)->full : peer_ip(s), vn_stanza_name(st),
                 ns);
    if (s->closing) {
        vn_stanza_free(st);
        return;
    }
    /* RFC 6120 §4.7.4: a stanza without xml:lang is in the stream's
     * language; saying so lets every reply and relay pick its texts. */
    if (is_client_stanza(st) && !vn_stanza_attr(st, "xml:lang") && s->lang)
        vn_stanza_set_attr(st, "xml:lang", s->lang);
    /* limits.stanza_rate: stanzas only, whatever the stream's stage. Over
     * the rate the stream is read more slowly; only sustained excess closes. */
    const vn_shaper_limits lim = {vn_srv.cfg->stanza_rate, vn_srv.cfg->stanza_burst,
                                  vn_srv.cfg->max_throttle_time};
    if (is_client_stanza(st) &&
        !vn_shaper_stanza(&s->shaper, &lim,
                          s->session ? vn_session_jid(s->session)->full : peer_ip(s))) {
        vn_c2s_close(s, "policy-violation", "Stanza rate limit exceeded: slow down");
        vn_stanza_free(st);
        return;
    }
    if (strcmp(ns, VN_NS_TLS) == 0) {
        handle_starttls(s, st);
    } else if (!secure(s) && vn_srv.cfg->require_encryption && strcmp(ns, VN_NS_SASL) != 0) {
        vn_c2s_close(s, "policy-violation", "Use STARTTLS first");
    } else if (strcmp(ns, VN_NS_SASL) == 0) {
        handle_sasl(s, st);
    } else if (strcmp(ns, VN_NS_SASL2) == 0) {
        vn_c2s_sasl2_element(s, st);
    } else if (!s->authenticated) {
        handle_unauthenticated_iq(s, st);
    } else if (strcmp(ns, VN_NS_SM) == 0) {
        vn_c2s_sm_element(s, st);
    } else if (vn_stanza_is(st, "iq", VN_NS_CLIENT) && handle_session_setup(s, st)) {
        vn_c2s_sm_received(s);
    } else if (!s->session) {
        vn_c2s_close(s, "not-authorized", "Bind a resource first");
    } else if (is_client_stanza(st)) {
        vn_c2s_sm_received(s);
        handle_client_stanza(s, st);
        return; /* ownership passed */
    } else {
        vn_event ev = {.stanza = st, .session = s->session, .host = s->host};
        if (vn_hook_run("stream/element", &ev) != VN_HANDLED)
            vn_c2s_close(s, "unsupported-stanza-type", NULL);
    }
    vn_stanza_free(st);
}

void vn_c2s_input_close(vn_c2s *s)
{
    vn_c2s_close(s, NULL, NULL);
}

void vn_c2s_input_error(vn_c2s *s, const char *condition, const char *text)
{
    vn_c2s_close(s, condition, text);
}

void vn_c2s_input_activity(vn_c2s *s)
{
    s->last_input_ms = uv_now(vn_srv.loop);
}

bool vn_c2s_take_restart(vn_c2s *s)
{
    bool restart = s->restart;
    s->restart = false;
    return restart;
}

/* ---- timers ---- */

static void on_handshake_timeout(uv_timer_t *t)
{
    vn_c2s *s = t->data;
    vn_c2s_close(s, "connection-timeout", "Handshake not completed in time");
}

static void on_session_tick(uv_timer_t *t)
{
    vn_c2s *s = t->data;
    uint64_t idle_ms = uv_now(vn_srv.loop) - s->last_input_ms;
    const vn_config *cfg = vn_srv.cfg;

    if (cfg->idle_timeout && idle_ms >= (uint64_t)cfg->idle_timeout * 1000)
        vn_c2s_close(s, "connection-timeout", "Idle for too long");
    else if (cfg->keepalive_interval && idle_ms >= (uint64_t)cfg->keepalive_interval * 1000)
        if (s->tx && s->ops->keepalive)
            s->ops->keepalive(s->tx);
}

void vn_c2s_start_session_timer(vn_c2s *s)
{
    const vn_config *cfg = vn_srv.cfg;
    unsigned period = cfg->keepalive_interval ? cfg->keepalive_interval : cfg->idle_timeout;

    uv_timer_stop(&s->timer);
    if (period)
        uv_timer_start(&s->timer, on_session_tick, (uint64_t)period * 1000,
                       (uint64_t)period * 1000);
}

/* ---- life cycle ---- */

static void free_stream(uv_handle_t *h)
{
    free(h->data);
}

void vn_c2s_destroy(vn_c2s *s)
{
    vn_shaper_cleanup(&s->shaper);
    if (s->prev)
        s->prev->next = s->next;
    else
        all_streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    stream_count--;

    vn_c2s_sm_free(s);
    vn_sasl_free(s->sasl);
    vn_sasl2_free(s->sasl2);
    free(s->host);
    free(s->lang);
    free(s->user);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, free_stream);
}

void vn_c2s_gone(vn_c2s *s, const char *reason)
{
    if (!s->closing)
        vn_log_info("c2s %s: disconnected: %s", peer_ip(s), reason);
    s->tx = NULL;
    vn_shaper_cleanup(&s->shaper); /* nothing left to pause or resume */
    if (!s->closing && vn_c2s_sm_hibernate(s))
        return;
    s->closing = true;
    unbind(s, reason);
    vn_c2s_destroy(s);
}

static void shaper_pause(void *ud, bool paused)
{
    vn_c2s *s = ud;
    if (s->tx)
        s->ops->pause(s->tx, paused);
}

vn_c2s *vn_c2s_new(const vn_c2s_transport *ops, void *tx)
{
    vn_c2s *s = vn_alloc(sizeof *s);
    unsigned char rnd[16];

    s->ops = ops;
    s->tx = tx;
    vn_shaper_init(&s->shaper, "c2s", ops->pause ? shaper_pause : NULL, s);
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        abort();
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(s->stream_id + 2 * i, 3, "%02x", rnd[i]);
    s->last_input_ms = uv_now(vn_srv.loop);
    uv_timer_init(vn_srv.loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_handshake_timeout, (uint64_t)vn_srv.cfg->handshake_timeout * 1000,
                   0);

    s->next = all_streams;
    if (all_streams)
        all_streams->prev = s;
    all_streams = s;
    stream_count++;
    vn_log_debug("c2s %s: connected", peer_ip(s));
    return s;
}
