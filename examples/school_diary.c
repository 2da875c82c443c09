/*
 * school_diary.c - an example XMPP component (XEP-0114) on libstrophe: a
 * school diary bot, the seed of vestnik's service SDK.
 *
 * It serves its own domain (e.g. diary.localhost) on a vestnik server:
 *   "homework"          today's homework, from the built-in week or a file
 *   "subscribe"         the sender receives grade notifications from now on
 *   "unsubscribe"       ... no longer
 *   "grade NAME MARK"   a teacher records a grade: every subscribed parent
 *                       gets "New grade for NAME: MARK"
 * It answers disco#info and pings, accepts presence subscriptions, and
 * reconnects when the server goes away.
 *
 *   school_diary -d diary.localhost [-s 127.0.0.1] [-p 5347] [-f homework.txt]
 * The shared secret comes from the environment (VESTNIK_COMPONENT_SECRET),
 * not the command line, so that it does not show in `ps`.
 * A homework file has one line per weekday: "Monday: Maths p. 12".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUBSCRIBERS 256
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_PING "urn:xmpp:ping"

static const char *const weekdays[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};

typedef struct diary {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    const char *domain;
    char *homework[7]; /* by weekday */
    char *subscribers[MAX_SUBSCRIBERS];
    int n_subscribers;
} diary;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    stopping = 1;
}

static void load_homework(diary *d, const char *path)
{
    static const char *const week[7] = {
        "No school today.",
        "Maths: page 12, exercises 1-5.",
        "Reading: chapter 3.",
        "Science: draw the water cycle.",
        "Maths: multiplication table of 7.",
        "History: the first printed books.",
        "No school today.",
    };
    for (int i = 0; i < 7; i++)
        d->homework[i] = strdup(week[i]);
    if (!path)
        return;
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        for (int i = 0; i < 7; i++) {
            size_t n = strlen(weekdays[i]);
            if (strncmp(line, weekdays[i], n) == 0 && line[n] == ':') {
                free(d->homework[i]);
                d->homework[i] = strdup(line + n + 1 + (line[n + 1] == ' '));
            }
        }
    }
    fclose(f);
}

/* "parent@example.org/phone" -> "parent@example.org" (caller frees). */
static char *bare_of(const char *jid)
{
    size_t n = strcspn(jid, "/");
    char *bare = malloc(n + 1);
    memcpy(bare, jid, n);
    bare[n] = '\0';
    return bare;
}

static void send_chat(diary *d, const char *to, const char *text)
{
    xmpp_stanza_t *msg = xmpp_message_new(d->ctx, "chat", to, NULL);
    xmpp_stanza_set_from(msg, d->domain);
    xmpp_message_set_body(msg, text);
    xmpp_send(d->conn, msg);
    xmpp_stanza_release(msg);
}

static int find_subscriber(const diary *d, const char *bare)
{
    for (int i = 0; i < d->n_subscribers; i++)
        if (strcmp(d->subscribers[i], bare) == 0)
            return i;
    return -1;
}

static void handle_command(diary *d, const char *from, const char *body)
{
    char reply[2048];
    char *bare = bare_of(from);
    char name[128], mark[32];

    if (strcasecmp(body, "homework") == 0) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        snprintf(reply, sizeof reply, "Homework for %s: %s", weekdays[tm.tm_wday],
                 d->homework[tm.tm_wday]);
    } else if (strcasecmp(body, "subscribe") == 0) {
        if (find_subscriber(d, bare) < 0 && d->n_subscribers < MAX_SUBSCRIBERS)
            d->subscribers[d->n_subscribers++] = strdup(bare);
        snprintf(reply, sizeof reply, "You will get grade notifications.");
    } else if (strcasecmp(body, "unsubscribe") == 0) {
        int i = find_subscriber(d, bare);
        if (i >= 0) {
            free(d->subscribers[i]);
            d->subscribers[i] = d->subscribers[--d->n_subscribers];
        }
        snprintf(reply, sizeof reply, "No more grade notifications.");
    } else if (sscanf(body, "grade %127s %31s", name, mark) == 2) {
        char note[256];
        snprintf(note, sizeof note, "New grade for %s: %s", name, mark);
        for (int i = 0; i < d->n_subscribers; i++)
            send_chat(d, d->subscribers[i], note);
        snprintf(reply, sizeof reply, "Sent to %d parent(s).", d->n_subscribers);
    } else {
        snprintf(reply, sizeof reply,
                 "Commands: homework, subscribe, unsubscribe, grade NAME MARK.");
    }
    send_chat(d, from, reply);
    free(bare);
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    diary *d = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    const char *from = xmpp_stanza_get_from(stanza);
    char *body = xmpp_message_get_body(stanza);

    if (body && from && (!type || strcmp(type, "error") != 0))
        handle_command(d, from, body);
    xmpp_free(d->ctx, body);
    return 1;
}

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    diary *d = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    const char *from = xmpp_stanza_get_from(stanza);
    const char *to = xmpp_stanza_get_to(stanza);

    if (!from || !to || !type || strcmp(type, "subscribe") != 0)
        return 1;
    /* Anyone may follow the diary: approve, then show it online. */
    const char *answers[] = {"subscribed", NULL};
    for (int i = 0; i < 2; i++) {
        xmpp_stanza_t *p = xmpp_presence_new(d->ctx);
        if (answers[i])
            xmpp_stanza_set_type(p, answers[i]);
        xmpp_stanza_set_from(p, to);
        xmpp_stanza_set_to(p, from);
        xmpp_send(conn, p);
        xmpp_stanza_release(p);
    }
    return 1;
}

/* An empty <iq type='result'/> answering iq. */
static xmpp_stanza_t *iq_result(diary *d, xmpp_stanza_t *iq)
{
    xmpp_stanza_t *result = xmpp_iq_new(d->ctx, "result", xmpp_stanza_get_id(iq));
    xmpp_stanza_set_to(result, xmpp_stanza_get_from(iq));
    return result;
}

static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    diary *d = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    xmpp_stanza_t *payload = xmpp_stanza_get_children(stanza);
    const char *ns = payload ? xmpp_stanza_get_ns(payload) : NULL;
    xmpp_stanza_t *reply;

    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return 1;
    if (strcmp(type, "get") == 0 && ns && strcmp(ns, NS_DISCO_INFO) == 0) {
        reply = iq_result(d, stanza);
        xmpp_stanza_t *query = xmpp_stanza_new(d->ctx);
        xmpp_stanza_set_name(query, "query");
        xmpp_stanza_set_ns(query, NS_DISCO_INFO);
        xmpp_stanza_t *identity = xmpp_stanza_new(d->ctx);
        xmpp_stanza_set_name(identity, "identity");
        xmpp_stanza_set_attribute(identity, "category", "component");
        xmpp_stanza_set_attribute(identity, "type", "generic");
        xmpp_stanza_set_attribute(identity, "name", "School diary");
        xmpp_stanza_add_child(query, identity);
        xmpp_stanza_release(identity);
        for (int i = 0; i < 2; i++) {
            xmpp_stanza_t *feature = xmpp_stanza_new(d->ctx);
            xmpp_stanza_set_name(feature, "feature");
            xmpp_stanza_set_attribute(feature, "var", i ? NS_PING : NS_DISCO_INFO);
            xmpp_stanza_add_child(query, feature);
            xmpp_stanza_release(feature);
        }
        xmpp_stanza_add_child(reply, query);
        xmpp_stanza_release(query);
    } else if (strcmp(type, "get") == 0 && ns && strcmp(ns, NS_PING) == 0) {
        reply = iq_result(d, stanza);
    } else {
        reply = xmpp_stanza_reply_error(stanza, "cancel", "service-unavailable", NULL);
    }
    /* A component names itself as the sender (XEP-0114). */
    xmpp_stanza_set_from(reply, xmpp_stanza_get_to(stanza));
    xmpp_send(conn, reply);
    xmpp_stanza_release(reply);
    return 1;
}

static void on_connection(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                          xmpp_stream_error_t *stream_error, void *userdata)
{
    diary *d = userdata;

    if (status == XMPP_CONN_CONNECT) {
        fprintf(stderr, "school_diary: serving %s\n", d->domain);
        return;
    }
    fprintf(stderr, "school_diary: disconnected%s\n",
            stream_error && stream_error->text ? stream_error->text : "");
    xmpp_stop(d->ctx);
}

static void ignore_event(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                         xmpp_stream_error_t *stream_error, void *userdata)
{
}

/* libstrophe 0.12.2 (Debian 12) allocates a connection's stream management
 * state only in xmpp_connect_client(), yet reads it for every stanza a
 * component connection receives. Start and at once drop a client
 * connection, which leaves the state in place for the component one. */
static void prepare_component_conn(xmpp_ctx_t *ctx, xmpp_conn_t *conn, const char *server,
                                   unsigned short port)
{
    if (xmpp_connect_client(conn, server, port, ignore_event, NULL) != XMPP_EOK)
        return;
    xmpp_disconnect(conn);
    for (int i = 0; i < 100 && !xmpp_conn_is_disconnected(conn); i++)
        xmpp_run_once(ctx, 10);
}

static void usage(void)
{
    fprintf(stderr, "usage: VESTNIK_COMPONENT_SECRET=... school_diary -d DOMAIN "
                    "[-s SERVER] [-p PORT] [-f HOMEWORK_FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    diary d = {0};
    const char *server = "127.0.0.1", *homework_file = NULL;
    unsigned short port = 5347;
    const char *secret = getenv("VESTNIK_COMPONENT_SECRET");
    int opt;

    while ((opt = getopt(argc, argv, "d:s:p:f:h")) != -1) {
        switch (opt) {
        case 'd': d.domain = optarg; break;
        case 's': server = optarg; break;
        case 'p': port = (unsigned short)atoi(optarg); break;
        case 'f': homework_file = optarg; break;
        default: usage();
        }
    }
    if (!d.domain || !secret || !*secret || optind != argc)
        usage();
    load_homework(&d, homework_file);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    xmpp_initialize();
    d.ctx = xmpp_ctx_new(NULL, NULL);
    while (!stopping) {
        d.conn = xmpp_conn_new(d.ctx);
        xmpp_conn_set_jid(d.conn, d.domain);
        xmpp_conn_set_pass(d.conn, secret);
        /* Before connecting: libstrophe 0.12 must not get handlers added
         * while it dispatches the handshake that calls on_connection. */
        xmpp_handler_add(d.conn, on_message, NULL, "message", NULL, &d);
        xmpp_handler_add(d.conn, on_presence, NULL, "presence", NULL, &d);
        xmpp_handler_add(d.conn, on_iq, NULL, "iq", NULL, &d);
        prepare_component_conn(d.ctx, d.conn, server, port);
        if (xmpp_connect_component(d.conn, server, port, on_connection, &d) == XMPP_EOK) {
            while (!stopping && xmpp_conn_is_connecting(d.conn) | xmpp_conn_is_connected(d.conn))
                xmpp_run_once(d.ctx, 200);
        }
        xmpp_conn_release(d.conn);
        if (!stopping)
            sleep(2); /* the server restarts: try again */
    }
    xmpp_ctx_free(d.ctx);
    xmpp_shutdown();
    for (int i = 0; i < 7; i++)
        free(d.homework[i]);
    for (int i = 0; i < d.n_subscribers; i++)
        free(d.subscribers[i]);
    return 0;
}
