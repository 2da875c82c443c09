/*
 * strophe_client.c - log in with libstrophe and ping the server.
 *
 * A second, independent client implementation for the integration tests:
 * it connects with mandatory TLS (STARTTLS, or direct TLS with
 * --direct-tls), trusting the test server's self-signed certificate,
 * authenticates, sends an XEP-0199 ping to its domain and exits 0 only when
 * the result arrives within 10 seconds. libstrophe does not expose the SASL
 * mechanism it chose, so it is read from its debug log of the <auth/> it
 * sent and printed as "mechanism: NAME". The whole log goes to stderr.
 *
 * usage: strophe_client HOST PORT JID PASSWORD [--direct-tls]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <time.h>

#define DEADLINE_MS 10000
#define PING_ID "strophe-ping-1"

typedef struct client_state {
    bool ping_answered;
    bool finished;
    char mechanism[64];
} client_state;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remember the mechanism of the first <auth mechanism="..."> sent. */
static void note_mechanism(client_state *state, const char *msg)
{
    const char *auth, *value;
    size_t len;

    if (state->mechanism[0] != '\0' || strncmp(msg, "SENT: <auth", 11) != 0)
        return;
    auth = strstr(msg, "mechanism=");
    if (auth == NULL)
        return;
    value = auth + strlen("mechanism=") + 1; /* past the quote */
    len = strcspn(value, "\"'");
    if (len >= sizeof(state->mechanism))
        return;
    memcpy(state->mechanism, value, len);
    state->mechanism[len] = '\0';
}

static void log_handler(void *userdata, xmpp_log_level_t level, const char *area, const char *msg)
{
    note_mechanism(userdata, msg);
    fprintf(stderr, "%s %s: %s\n", level_names[level], area, msg);
}

static int ping_result_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    client_state *state = userdata;
    const char *type = xmpp_stanza_get_type(stanza);

    if (type != NULL && strcmp(type, "result") == 0) {
        state->ping_answered = true;
        printf("ping: result\n");
    } else {
        printf("ping: %s\n", type != NULL ? type : "(no type)");
    }
    xmpp_disconnect(conn);
    return 0;
}

static void send_ping(xmpp_conn_t *conn, client_state *state)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(conn);
    char *domain = xmpp_jid_domain(ctx, xmpp_conn_get_bound_jid(conn));
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "get", PING_ID);
    xmpp_stanza_t *ping = xmpp_stanza_new(ctx);

    xmpp_stanza_set_to(iq, domain);
    xmpp_stanza_set_name(ping, "ping");
    xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
    xmpp_stanza_add_child(iq, ping);
    xmpp_stanza_release(ping);
    xmpp_id_handler_add(conn, ping_result_handler, PING_ID, state);
    xmpp_send(conn, iq);
    xmpp_stanza_release(iq);
    xmpp_free(ctx, domain);
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                         xmpp_stream_error_t *stream_error, void *userdata)
{
    client_state *state = userdata;

    if (event == XMPP_CONN_CONNECT) {
        printf("mechanism: %s\n", state->mechanism[0] ? state->mechanism : "(unknown)");
        printf("bound: %s\n", xmpp_conn_get_bound_jid(conn));
        send_ping(conn, state);
        return;
    }
    if (stream_error != NULL)
        fprintf(stderr, "stream error %d: %s\n", (int)stream_error->type,
                stream_error->text != NULL ? stream_error->text : "");
    if (error != 0)
        fprintf(stderr, "connection error %d\n", error);
    state->finished = true;
}

int main(int argc, char **argv)
{
    client_state state = {0};
    xmpp_log_t log = {log_handler, &state};
    long flags = XMPP_CONN_FLAG_TRUST_TLS;
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    long long deadline;

    if (argc == 6 && strcmp(argv[5], "--direct-tls") == 0)
        flags |= XMPP_CONN_FLAG_LEGACY_SSL;
    else if (argc == 5)
        flags |= XMPP_CONN_FLAG_MANDATORY_TLS;
    else {
        fprintf(stderr, "usage: %s HOST PORT JID PASSWORD [--direct-tls]\n", argv[0]);
        return 2;
    }

    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, &log);
    conn = xmpp_conn_new(ctx);
    xmpp_conn_set_flags(conn, flags);
    xmpp_conn_set_jid(conn, argv[3]);
    xmpp_conn_set_pass(conn, argv[4]);
    if (xmpp_connect_client(conn, argv[1], (unsigned short)atoi(argv[2]), conn_handler, &state) !=
        XMPP_EOK) {
        fprintf(stderr, "cannot connect to %s:%s\n", argv[1], argv[2]);
        state.finished = true;
    }

    deadline = now_ms() + DEADLINE_MS;
    while (!state.finished && now_ms() < deadline)
        xmpp_run_once(ctx, 100);
    if (!state.ping_answered)
        fprintf(stderr, "no ping result within %d ms\n", DEADLINE_MS);

    xmpp_conn_release(conn);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    fflush(stdout);
    return state.ping_answered ? 0 : 1;
}
