/*
 * school_diary.c - an example XMPP component (XEP-0114) on libstrophe: a
 * school diary bot, the seed of vestnik's service SDK.
 *
 * It serves its own domain (e.g. school.localhost) on a vestnik server:
 *   "homework"          today's homework, from the built-in week or a file
 *   "join CLASS"        a parent gets CLASS's homework and grades from now on
 *   "leave CLASS"       ... no longer
 *   "subscribe", "unsubscribe"  the same for the default class (-c)
 *   "room CLASS"        the class's chat room
 * and from a teacher (-t JID, repeatable; without -t anyone may post):
 *   "homework CLASS TEXT"       every parent of CLASS gets the homework
 *   "grade [CLASS] NAME MARK"   every parent of CLASS gets the grade
 * It answers disco#info and pings, accepts presence subscriptions, and
 * reconnects when the server goes away.
 *
 * On vestnik's services platform (doc/services.md, xeps/services-bus.md)
 * it publishes its profile to the directory services.<host>, keeps each
 * class's parents as the audience "class-<class>" there, and sends
 * homework and grades as one broadcast per class, answering the teacher
 * with the delivery report; the platform skips parents who did not start
 * the diary and keeps the message for those offline. It also posts in the
 * class's room class-<class>@conference.<host> once a teacher opened it. Without
 * the platform it keeps the parents itself and writes to each of them.
 *
 *   school_diary -d school.localhost [-s 127.0.0.1] [-p 5347] [-f homework.txt]
 *                [-c CLASS] [-t TEACHER]...
 * The shared secret comes from the environment (VESTNIK_COMPONENT_SECRET),
 * not the command line, so that it does not show in `ps`.
 * A homework file has one line per weekday: "Monday: Maths p. 12".
 */
#include <ctype.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUBSCRIBERS 256
#define MAX_TEACHERS 16
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_PING "urn:xmpp:ping"
#define NS_SERVICES "urn:vestnik:services:0"
#define NS_VCARD "vcard-temp"
#define NS_MUC "http://jabber.org/protocol/muc"

static const char *const weekdays[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};

/* Without the platform: a parent of a class. */
typedef struct subscriber {
    char *jid, *class_name;
} subscriber;

typedef struct diary {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    const char *domain;
    const char *host;    /* the domain's parent: school.localhost -> localhost */
    char directory[256]; /* services.<host> */
    char room_self[300]; /* its occupant's real JID in class rooms */
    const char *default_class;
    const char *teachers[MAX_TEACHERS];
    int n_teachers;
    char *homework[7]; /* by weekday */
    subscriber subscribers[MAX_SUBSCRIBERS];
    int n_subscribers;
    bool platform; /* the directory answered */
    unsigned serial;
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

static int find_subscriber(const diary *d, const char *bare, const char *class_name)
{
    for (int i = 0; i < d->n_subscribers; i++)
        if (strcmp(d->subscribers[i].jid, bare) == 0 &&
            strcmp(d->subscribers[i].class_name, class_name) == 0)
            return i;
    return -1;
}

/* "5A" -> "5a", the form used in audience and room names; false if it
 * is not a class name (letters and digits, at most 15). */
static bool class_key(const char *name, char out[16])
{
    size_t n = strlen(name);
    if (n == 0 || n >= 16)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (name[i] && !isalnum((unsigned char)name[i]))
            return false;
        out[i] = (char)tolower((unsigned char)name[i]);
    }
    return true;
}

static bool is_teacher(const diary *d, const char *bare)
{
    if (d->n_teachers == 0)
        return true;
    for (int i = 0; i < d->n_teachers; i++)
        if (strcmp(d->teachers[i], bare) == 0)
            return true;
    return false;
}

static xmpp_stanza_t *element(diary *d, const char *name, const char *ns)
{
    xmpp_stanza_t *el = xmpp_stanza_new(d->ctx);
    xmpp_stanza_set_name(el, name);
    if (ns)
        xmpp_stanza_set_ns(el, ns);
    return el;
}

static void add_child(xmpp_stanza_t *parent, xmpp_stanza_t *child)
{
    xmpp_stanza_add_child(parent, child);
    xmpp_stanza_release(child);
}

static void add_text_child(diary *d, xmpp_stanza_t *parent, const char *name, const char *text)
{
    xmpp_stanza_t *el = element(d, name, NULL);
    xmpp_stanza_t *t = xmpp_stanza_new(d->ctx);
    xmpp_stanza_set_text(t, text);
    add_child(el, t);
    add_child(parent, el);
}

/* An iq set to the directory with payload; handler gets its answer. */
static void directory_iq(diary *d, xmpp_stanza_t *payload, xmpp_handler handler, void *ud)
{
    char id[32];
    snprintf(id, sizeof id, "sd-%u", ++d->serial);
    xmpp_stanza_t *iq = xmpp_iq_new(d->ctx, "set", id);
    xmpp_stanza_set_from(iq, d->domain);
    xmpp_stanza_set_to(iq, d->directory);
    add_child(iq, payload);
    if (handler)
        xmpp_id_handler_add(d->conn, handler, id, ud);
    xmpp_send(d->conn, iq);
    xmpp_stanza_release(iq);
}

static void audience_change(diary *d, const char *key, const char *bare, bool add);

static int on_profile_answer(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    diary *d = userdata;
    d->platform = strcmp(xmpp_stanza_get_type(stanza), "result") == 0;
    fprintf(stderr, "school_diary: %s\n",
            d->platform ? "listed in the services directory" : "no services directory");
    /* Parents who joined before the answer came: into their audiences. */
    for (int i = 0; d->platform && i < d->n_subscribers; i++)
        audience_change(d, d->subscribers[i].class_name, d->subscribers[i].jid, true);
    return 0;
}

static void publish_profile(diary *d)
{
    xmpp_stanza_t *profile = element(d, "profile", NS_SERVICES);
    add_text_child(d, profile, "name", "School diary");
    add_text_child(d, profile, "description", "Homework, grades and class chats for parents");
    add_text_child(d, profile, "category", "school");
    add_text_child(d, profile, "operator", d->domain);
    directory_iq(d, profile, on_profile_answer, d);
}

/* The class's room, class-<class>@conference.<host>: opened by the
 * teacher (only local users may create rooms); the diary joins it before
 * posting (again each time: the room may be new, and a repeated join is
 * only a presence update). */
static void room_jid(const diary *d, const char *key, char *out, size_t size)
{
    snprintf(out, size, "class-%s@conference.%s", key, d->host);
}

static void join_room(diary *d, const char *key)
{
    char room[300], occupant[400];
    room_jid(d, key, room, sizeof room);
    snprintf(occupant, sizeof occupant, "%s/Diary", room);
    xmpp_stanza_t *p = xmpp_presence_new(d->ctx);
    xmpp_stanza_set_from(p, d->room_self);
    xmpp_stanza_set_to(p, occupant);
    xmpp_stanza_t *x = element(d, "x", NS_MUC);
    xmpp_stanza_t *history = element(d, "history", NULL);
    xmpp_stanza_set_attribute(history, "maxstanzas", "0");
    add_child(x, history);
    add_child(p, x);
    xmpp_send(d->conn, p);
    xmpp_stanza_release(p);
}

static void post_in_room(diary *d, const char *key, const char *text)
{
    char room[300];
    room_jid(d, key, room, sizeof room);
    xmpp_stanza_t *msg = xmpp_message_new(d->ctx, "groupchat", room, NULL);
    xmpp_stanza_set_from(msg, d->room_self);
    xmpp_message_set_body(msg, text);
    xmpp_send(d->conn, msg);
    xmpp_stanza_release(msg);
}

static void audience_change(diary *d, const char *key, const char *bare, bool add)
{
    char name[32];
    snprintf(name, sizeof name, "class-%s", key);
    xmpp_stanza_t *audience = element(d, "audience", NS_SERVICES);
    xmpp_stanza_set_attribute(audience, "name", name);
    xmpp_stanza_set_attribute(audience, "action", add ? "add" : "remove");
    xmpp_stanza_t *member = element(d, "member", NULL);
    xmpp_stanza_set_attribute(member, "jid", bare);
    add_child(audience, member);
    directory_iq(d, audience, NULL, NULL);
}

/* A broadcast waiting for its report, to tell the teacher. */
typedef struct pending_report {
    diary *d;
    char *teacher;
} pending_report;

static int on_report(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    pending_report *p = userdata;
    xmpp_stanza_t *report = xmpp_stanza_get_child_by_name_and_ns(stanza, "report", NS_SERVICES);
    char reply[512];
    if (report) {
        const char *none = "0";
        const char *delivered = xmpp_stanza_get_attribute(report, "delivered");
        const char *members = xmpp_stanza_get_attribute(report, "members");
        /* online: only the parents who share their presence with the
         * diary (xeps/services-bus.md §4.3). */
        const char *online = xmpp_stanza_get_attribute(report, "online");
        const char *not_started = xmpp_stanza_get_attribute(report, "not-started");
        snprintf(reply, sizeof reply,
                 "Sent to %s of %s parent(s), %s of them seen online; %s have not started the "
                 "diary.",
                 delivered ? delivered : none, members ? members : none, online ? online : none,
                 not_started ? not_started : none);
    } else {
        snprintf(reply, sizeof reply, "Not sent: no parent has joined that class yet.");
    }
    send_chat(p->d, p->teacher, reply);
    free(p->teacher);
    free(p);
    return 0;
}

/* Tell every parent of the class (key): one broadcast on the platform,
 * else a message each. NULL, or the reply for the teacher now. */
static const char *tell_class(diary *d, const char *teacher, const char *key, const char *text,
                              char *reply, size_t size)
{
    join_room(d, key);
    post_in_room(d, key, text);
    if (d->platform) {
        char name[32];
        snprintf(name, sizeof name, "class-%s", key);
        xmpp_stanza_t *broadcast = element(d, "broadcast", NS_SERVICES);
        xmpp_stanza_set_attribute(broadcast, "audience", name);
        xmpp_stanza_t *msg = xmpp_message_new(d->ctx, "chat", NULL, NULL);
        xmpp_stanza_set_ns(msg, "jabber:client");
        xmpp_message_set_body(msg, text);
        add_child(broadcast, msg);
        pending_report *p = malloc(sizeof *p);
        p->d = d;
        p->teacher = strdup(teacher);
        directory_iq(d, broadcast, on_report, p);
        return NULL;
    }
    int sent = 0;
    for (int i = 0; i < d->n_subscribers; i++)
        if (strcmp(d->subscribers[i].class_name, key) == 0) {
            send_chat(d, d->subscribers[i].jid, text);
            sent++;
        }
    snprintf(reply, size, "Sent to %d parent(s).", sent);
    return reply;
}

static void join(diary *d, const char *bare, const char *key, bool join_it)
{
    int i = find_subscriber(d, bare, key);
    if (join_it && i < 0 && d->n_subscribers < MAX_SUBSCRIBERS) {
        d->subscribers[d->n_subscribers].jid = strdup(bare);
        d->subscribers[d->n_subscribers++].class_name = strdup(key);
    } else if (!join_it && i >= 0) {
        free(d->subscribers[i].jid);
        free(d->subscribers[i].class_name);
        d->subscribers[i] = d->subscribers[--d->n_subscribers];
    }
    if (d->platform)
        audience_change(d, key, bare, join_it);
}

static void handle_command(diary *d, const char *from, const char *body)
{
    char reply[2048];
    char *bare = bare_of(from);
    char a[128], b[128], c[32], key[16];
    int text_at = 0;
    const char *answer = reply;

    if (strcasecmp(body, "homework") == 0) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        snprintf(reply, sizeof reply, "Homework for %s: %s", weekdays[tm.tm_wday],
                 d->homework[tm.tm_wday]);
    } else if (strcasecmp(body, "subscribe") == 0 || strcasecmp(body, "unsubscribe") == 0) {
        bool on = strcasecmp(body, "subscribe") == 0;
        class_key(d->default_class, key);
        join(d, bare, key, on);
        snprintf(reply, sizeof reply,
                 on ? "You will get grade notifications." : "No more grade notifications.");
    } else if ((sscanf(body, "join %15s", a) == 1 || sscanf(body, "leave %15s", a) == 1) &&
               class_key(a, key)) {
        bool on = strncasecmp(body, "join", 4) == 0;
        char room[300];
        join(d, bare, key, on);
        room_jid(d, key, room, sizeof room);
        if (on)
            snprintf(reply, sizeof reply,
                     "You will get %s's homework and grades. The class chat: %s", a, room);
        else
            snprintf(reply, sizeof reply, "No more news of %s.", a);
    } else if (sscanf(body, "room %15s", a) == 1 && class_key(a, key)) {
        char room[300];
        room_jid(d, key, room, sizeof room);
        snprintf(reply, sizeof reply, "The chat room of %s: %s", a, room);
    } else if ((sscanf(body, "homework %15s %n", a, &text_at) == 1 && text_at > 0 &&
                body[text_at]) ||
               sscanf(body, "grade %127s %127s %31s", a, b, c) >= 2) {
        bool homework = strncasecmp(body, "homework", 8) == 0;
        int n = homework ? 0 : sscanf(body, "grade %127s %127s %31s", a, b, c);
        char note[1200];
        if (!is_teacher(d, bare)) {
            snprintf(reply, sizeof reply, "Only teachers post homework and grades.");
        } else if (homework ? !class_key(a, key) : !class_key(n == 3 ? a : d->default_class, key)) {
            snprintf(reply, sizeof reply, "Which class? For example: homework 5A Maths p. 12");
        } else {
            if (homework)
                snprintf(note, sizeof note, "Homework for %s: %s", a, body + text_at);
            else
                snprintf(note, sizeof note, "New grade for %s: %s", n == 3 ? b : a, n == 3 ? c : b);
            answer = tell_class(d, from, key, note, reply, sizeof reply);
        }
    } else {
        snprintf(reply, sizeof reply,
                 "Commands: homework, join CLASS, leave CLASS, room CLASS, subscribe, "
                 "unsubscribe; teachers: homework CLASS TEXT, grade [CLASS] NAME MARK.");
    }
    if (answer)
        send_chat(d, from, answer);
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
        static const char *const features[] = {NS_DISCO_INFO, NS_PING, NS_VCARD};
        for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
            xmpp_stanza_t *feature = xmpp_stanza_new(d->ctx);
            xmpp_stanza_set_name(feature, "feature");
            xmpp_stanza_set_attribute(feature, "var", features[i]);
            xmpp_stanza_add_child(query, feature);
            xmpp_stanza_release(feature);
        }
        xmpp_stanza_add_child(reply, query);
        xmpp_stanza_release(query);
    } else if (strcmp(type, "get") == 0 && ns && strcmp(ns, NS_PING) == 0) {
        reply = iq_result(d, stanza);
    } else if (strcmp(type, "get") == 0 && ns && strcmp(ns, NS_VCARD) == 0) {
        /* XEP-0054: the name and description clients show for the contact. */
        reply = iq_result(d, stanza);
        xmpp_stanza_t *card = element(d, "vCard", NS_VCARD);
        add_text_child(d, card, "FN", "School diary");
        add_text_child(d, card, "DESC",
                       "Homework, grades and class chats for parents. "
                       "Write \"join 5A\" to follow a class.");
        add_child(reply, card);
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
        d->platform = false;
        publish_profile(d);
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
                    "[-s SERVER] [-p PORT] [-f HOMEWORK_FILE] [-c CLASS] [-t TEACHER]...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    diary d = {.default_class = "1A"};
    const char *server = "127.0.0.1", *homework_file = NULL;
    unsigned short port = 5347;
    const char *secret = getenv("VESTNIK_COMPONENT_SECRET");
    int opt;

    while ((opt = getopt(argc, argv, "d:s:p:f:c:t:h")) != -1) {
        switch (opt) {
        case 'd': d.domain = optarg; break;
        case 'c': d.default_class = optarg; break;
        case 't':
            if (d.n_teachers == MAX_TEACHERS)
                usage();
            d.teachers[d.n_teachers++] = optarg;
            break;
        case 's': server = optarg; break;
        case 'p': port = (unsigned short)atoi(optarg); break;
        case 'f': homework_file = optarg; break;
        default: usage();
        }
    }
    char key[16];
    if (!d.domain || !secret || !*secret || optind != argc || !strchr(d.domain, '.') ||
        !class_key(d.default_class, key))
        usage();
    d.host = strchr(d.domain, '.') + 1;
    snprintf(d.directory, sizeof d.directory, "services.%s", d.host);
    snprintf(d.room_self, sizeof d.room_self, "diary@%s/classes", d.domain);
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
    for (int i = 0; i < d.n_subscribers; i++) {
        free(d.subscribers[i].jid);
        free(d.subscribers[i].class_name);
    }
    return 0;
}
