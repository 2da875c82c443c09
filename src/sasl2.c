/*
 * sasl2.c - XEP-0388 Extensible SASL Profile on client streams.
 *
 * The mechanisms are sasl.c's, offered alike (so SCRAM's -PLUS downgrade
 * protection holds here too: the 'y' flag is refused when -PLUS was
 * offered), plus the FAST HT-SHA-256-* mechanisms of fast.c for a token
 * login. The <authenticate/> element carries the initial response, the
 * client's <user-agent id/>, and requests to run once authenticated: an
 * XEP-0198 <resume/> (c2s_sm.c), else a Bind 2 <bind/> (bind2.c, which can
 * enable stream management anew), and a FAST <request-token/>.
 * <success/> carries their results, and the stream's features follow it
 * at once, without a restart. The login back-off (abuse_limits.c) and
 * the close after repeated failures apply as to SASL.
 */
#include "sasl2.h"

#include <stdlib.h>
#include <string.h>

#include "abuse_limits.h"
#include "c2s_internal.h"
#include "fast.h"
#include "server.h"

/* As c2s.c: after this many wrong credentials the stream is closed. */
#define MAX_AUTH_FAILURES 3
/* A user-agent id longer than this is not a client instance's id. */
#define MAX_UA_ID 256

struct vn_sasl2 {
    vn_sasl *sasl;           /* the exchange, for sasl.c's mechanisms */
    vn_stanza *authenticate; /* the request, for what follows success */
    /* Once authenticated, while an inline <resume/> waits: */
    vn_stanza *success; /* the answer being built */
    char *mechanism;    /* the one that succeeded */
    bool rotate;        /* its FAST token is due for rotation */
};

static const char *peer_ip(const vn_c2s *s)
{
    return s->tx ? s->ops->peer_ip(s->tx) : "-";
}

void vn_sasl2_free(vn_sasl2 *x)
{
    if (!x)
        return;
    vn_sasl_free(x->sasl);
    vn_stanza_free(x->authenticate);
    vn_stanza_free(x->success);
    free(x->mechanism);
    free(x);
}

static void end_exchange(vn_c2s *s)
{
    vn_sasl2_free(s->sasl2);
    s->sasl2 = NULL;
}

/* ---- features ---- */

void vn_c2s_sasl2_add_features(vn_c2s *s, const vn_sasl_context *ctx, vn_stanza *features)
{
    if (!vn_srv.cfg->sasl2)
        return;
    vn_stanza *auth = vn_stanza_add_child(features, "authentication", VN_NS_SASL2);
    vn_sasl_add_mechanisms(ctx, auth);
    vn_stanza *inline_el = vn_stanza_add_child(auth, "inline", VN_NS_SASL2);
    vn_bind2_add_feature(s->host, inline_el);
    if (vn_srv.cfg->resume_timeout)
        vn_stanza_add_child(inline_el, "sm", VN_NS_SM);
    vn_fast_add_feature(ctx, inline_el);
}

/* ---- replies ---- */

/* The text of a SASL2 data element without the whitespace examples wrap
 * it in; NULL when el is NULL, "=" (sasl.c's "empty") when it is empty. */
static char *data_text(const vn_stanza *el)
{
    if (!el)
        return NULL;
    const char *text = vn_stanza_text(el) ? vn_stanza_text(el) : "";
    char *out = vn_alloc(strlen(text) + 2), *p = out;
    for (; *text; text++)
        if (!strchr(" \t\r\n", *text))
            *p++ = *text;
    if (p == out)
        *p++ = '=';
    *p = '\0';
    return out;
}

static void send_failure(vn_c2s *s, const char *condition, const char *text)
{
    vn_stanza *failure = vn_stanza_new("failure", VN_NS_SASL2);
    vn_stanza_add_child(failure, condition, VN_NS_SASL);
    if (text)
        vn_stanza_add_text_child(failure, "text", VN_NS_SASL2, text);
    vn_c2s_write_element(s, failure);
    vn_stanza_free(failure);
}

/* A failed attempt: logged, counted toward the back-off when it tested
 * credentials, and toward closing a stream that keeps failing. */
static void failed(vn_c2s *s, const char *mechanism, const char *condition, bool wrong_credentials,
                   const char *attempted)
{
    vn_log_info("c2s %s: authentication failed (SASL2 %s, %s)", peer_ip(s), mechanism, condition);
    if (wrong_credentials)
        vn_limits_login_failed(peer_ip(s), s->host, attempted);
    end_exchange(s);
    send_failure(s, condition, NULL);
    if ((strcmp(condition, "not-authorized") == 0 ||
         strcmp(condition, "temporary-auth-failure") == 0) &&
        ++s->auth_failures >= MAX_AUTH_FAILURES)
        vn_c2s_close(s, "policy-violation", "Too many failed authentication attempts");
}

/* ---- after success ---- */

static const char *user_agent_id(const vn_stanza *authenticate)
{
    const char *id = vn_stanza_attr(vn_stanza_child(authenticate, "user-agent", VN_NS_SASL2), "id");
    return id && id[0] && strlen(id) <= MAX_UA_ID ? id : NULL;
}

/* <token/> for <success/>: when asked for (a FAST mechanism this stream
 * offers, and a client instance to bind it to), or when the token just
 * used is due for rotation. */
static void add_token(vn_c2s *s, const vn_sasl_context *ctx, vn_stanza *success,
                      const vn_stanza *authenticate, const char *fast_mechanism, bool rotate)
{
    const char *ua_id = user_agent_id(authenticate);
    const vn_stanza *request = vn_stanza_child(authenticate, "request-token", VN_NS_FAST);
    const char *mechanism = request ? vn_stanza_attr(request, "mechanism") : NULL;
    char *token = NULL;
    int64_t expiry;

    if (!mechanism && rotate)
        mechanism = fast_mechanism;
    if (!mechanism)
        return;
    if (!ua_id || !vn_fast_offered(ctx, mechanism)) {
        vn_log_info("c2s %s: no FAST token for %s@%s: %s", peer_ip(s), s->user, s->host,
                    ua_id ? "mechanism not offered" : "no <user-agent id/>");
        return;
    }
    if (vn_fast_issue(vn_srv.store, s->host, s->user, ua_id, mechanism, &token, &expiry) != 0) {
        vn_log_error("c2s %s: cannot store a FAST token for %s@%s", peer_ip(s), s->user, s->host);
        return;
    }
    char stamp[VN_DATETIME_SIZE];
    vn_datetime_format(expiry, stamp);
    vn_stanza *el = vn_stanza_add_child(success, "token", VN_NS_FAST);
    vn_stanza_set_attr(el, "expiry", stamp);
    vn_stanza_set_attr(el, "token", token);
    vn_log_info("c2s %s: FAST token (%s) for %s@%s, valid until %s", peer_ip(s), mechanism, s->user,
                s->host, stamp);
    free(token);
}

/* What follows a resumption, or its absence: Bind 2 (unless resumed),
 * the FAST token, the identity; <success/>, then the stream's features and
 * what a resumed session had not had acknowledged. */
static void finish(vn_c2s *s, bool resumed)
{
    vn_sasl2 *x = s->sasl2;
    vn_sasl_context ctx = vn_c2s_sasl_context(s);
    const vn_stanza *bind = vn_stanza_child(x->authenticate, "bind", VN_NS_BIND2);
    bool fast = vn_stanza_child(x->authenticate, "fast", VN_NS_FAST) ||
                strncmp(x->mechanism, "HT-", 3) == 0;

    if (!resumed && bind) {
        vn_stanza *bound = vn_bind2_bind(s, bind, user_agent_id(x->authenticate));
        if (bound)
            vn_stanza_append(x->success, bound);
    }
    add_token(s, &ctx, x->success, x->authenticate, fast ? x->mechanism : NULL, x->rotate);
    char *jid = s->session ? vn_strdup(vn_session_jid(s->session)->full)
                           : vn_asprintf("%s@%s", s->user, s->host);
    vn_stanza_add_text_child(x->success, "authorization-identifier", VN_NS_SASL2, jid);
    free(jid);
    vn_c2s_write_element(s, x->success);
    end_exchange(s);
    if (s->closing)
        return;
    vn_c2s_send_features(s);
    if (resumed)
        vn_c2s_sm_resend(s);
}

void vn_c2s_sasl2_resumed(vn_c2s *s, vn_stanza *answer)
{
    bool resumed = vn_stanza_is(answer, "resumed", VN_NS_SM);

    vn_stanza_append(s->sasl2->success, answer);
    finish(s, resumed);
}

/* The client's own words for its software and device (XEP-0388 §2.3),
 * for the log: printable ASCII, at most 64 characters, "-" when absent. */
static void user_agent_text(const vn_stanza *authenticate, const char *name, char out[65])
{
    const vn_stanza *ua = vn_stanza_child(authenticate, "user-agent", VN_NS_SASL2);
    const char *text = vn_stanza_child_text(ua, name, VN_NS_SASL2);
    size_t n = 0;

    for (; text && *text && n < 64; text++)
        out[n++] = *text >= 0x20 && *text < 0x7f ? *text : '?';
    if (!n)
        out[n++] = '-';
    out[n] = '\0';
}

static void succeeded(vn_c2s *s, const char *mechanism, const char *user, const char *additional,
                      bool rotate)
{
    char software[65], device[65];
    vn_sasl2 *x = s->sasl2;

    vn_sasl_free(x->sasl);
    x->sasl = NULL;
    x->mechanism = vn_strdup(mechanism);
    x->rotate = rotate;
    x->success = vn_stanza_new("success", VN_NS_SASL2);
    s->authenticated = true;
    s->user = vn_strdup(user);
    vn_limits_login_succeeded(peer_ip(s), s->host, s->user);
    user_agent_text(x->authenticate, "software", software);
    user_agent_text(x->authenticate, "device", device);
    vn_log_info("c2s %s: authenticated %s@%s with %s (SASL2; software %s, device %s)", peer_ip(s),
                s->user, s->host, mechanism, software, device);
    if (additional && additional[0])
        vn_stanza_add_text_child(x->success, "additional-data", VN_NS_SASL2, additional);
    /* XEP-0386 §3.2: a resumption first (it may wait for the store); when
     * it fails, a bind instead. */
    const vn_stanza *resume = vn_stanza_child(x->authenticate, "resume", VN_NS_SM);
    if (resume)
        vn_c2s_sm_resume_inline(s, resume);
    else
        finish(s, false);
}

/* ---- the exchange ---- */

static void step(vn_c2s *s, const char *input)
{
    const char *condition = "not-authorized";
    vn_buf out;

    vn_buf_init(&out);
    vn_sasl_status status = vn_sasl_step(s->sasl2->sasl, input, &out, &condition);
    if (status == VN_SASL_CONTINUE) {
        vn_stanza *challenge = vn_stanza_new("challenge", VN_NS_SASL2);
        if (out.len)
            vn_stanza_add_text(challenge, out.data, out.len);
        vn_c2s_write_element(s, challenge);
        vn_stanza_free(challenge);
    } else if (status == VN_SASL_SUCCESS) {
        char *user = vn_strdup(vn_sasl_username(s->sasl2->sasl));
        succeeded(s, vn_sasl_mechanism(s->sasl2->sasl), user, out.data, false);
        free(user);
    } else {
        vn_sasl *sasl = s->sasl2->sasl;
        failed(s, vn_sasl_mechanism(sasl), condition, vn_sasl_wrong_credentials(sasl),
               vn_sasl_attempted_username(sasl));
    }
    vn_buf_free(&out);
}

static void fast_login(vn_c2s *s, const vn_sasl_context *ctx, const vn_stanza *authenticate,
                       const char *mechanism)
{
    const vn_stanza *fast = vn_stanza_child(authenticate, "fast", VN_NS_FAST);
    const char *invalidate = vn_stanza_attr(fast, "invalidate");
    char *initial = data_text(vn_stanza_child(authenticate, "initial-response", VN_NS_SASL2));
    vn_fast_login login = {
        .mechanism = mechanism,
        .ua_id = user_agent_id(authenticate),
        .initial = initial,
        .count = vn_stanza_attr(fast, "count"),
        .invalidate =
            invalidate && (strcmp(invalidate, "true") == 0 || strcmp(invalidate, "1") == 0),
    };
    vn_fast_result result;
    const char *condition;
    vn_buf out;

    vn_buf_init(&out);
    if (vn_fast_authenticate(ctx, &login, &out, &result, &condition) == VN_SASL_SUCCESS) {
        if (login.invalidate)
            vn_log_info("c2s %s: FAST token of %s@%s invalidated at the client's request",
                        peer_ip(s), result.user, s->host);
        succeeded(s, mechanism, result.user, out.data, result.rotate);
    } else {
        failed(s, mechanism, condition, result.wrong_credentials, result.attempted);
    }
    vn_fast_result_free(&result);
    vn_buf_free(&out);
    free(initial);
}

static void handle_authenticate(vn_c2s *s, const vn_stanza *el)
{
    const char *mechanism = vn_stanza_attr(el, "mechanism");
    vn_sasl_context ctx = vn_c2s_sasl_context(s);
    const char *condition = "invalid-mechanism";

    end_exchange(s);
    if (!ctx.secure && vn_srv.cfg->require_encryption) {
        send_failure(s, "encryption-required", NULL);
        return;
    }
    if (vn_limits_login_held_ip(peer_ip(s))) {
        vn_log_info("c2s %s: login refused: address in back-off", peer_ip(s));
        failed(s, mechanism ? mechanism : "-", "temporary-auth-failure", false, NULL);
        return;
    }
    if (!mechanism) {
        send_failure(s, "invalid-mechanism", "No mechanism named");
        return;
    }
    s->sasl2 = vn_alloc(sizeof *s->sasl2);
    s->sasl2->authenticate = vn_stanza_copy(el);
    if (vn_fast_offered(&ctx, mechanism)) {
        fast_login(s, &ctx, el, mechanism);
        return;
    }
    if (strlen(mechanism) > 5 && strcmp(mechanism + strlen(mechanism) - 5, "-PLUS") == 0)
        s->tried_plus = true;
    s->sasl2->sasl = vn_sasl_start(&ctx, mechanism, &condition);
    if (!s->sasl2->sasl) {
        end_exchange(s);
        send_failure(s, condition, NULL);
        return;
    }
    /* No <initial-response/>: no initial response (an empty challenge
     * comes first); an empty one is an empty response. */
    char *initial = data_text(vn_stanza_child(el, "initial-response", VN_NS_SASL2));
    step(s, initial ? initial : "");
    free(initial);
}

void vn_c2s_sasl2_element(vn_c2s *s, const vn_stanza *el)
{
    const char *name = vn_stanza_name(el);

    /* XEP-0388 §3.8: once authenticated, another attempt is an error. */
    if (s->authenticated) {
        vn_c2s_close(s, "policy-violation", "Already authenticated");
    } else if (strcmp(name, "authenticate") == 0) {
        handle_authenticate(s, el);
    } else if (strcmp(name, "response") == 0 && s->sasl2 && s->sasl2->sasl) {
        char *text = data_text(el);
        step(s, text);
        free(text);
    } else if (strcmp(name, "abort") == 0) {
        end_exchange(s);
        send_failure(s, "aborted", NULL);
    } else {
        end_exchange(s);
        send_failure(s, "malformed-request", NULL);
    }
}
