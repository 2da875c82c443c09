/*
 * university_issuer.c - an example credential issuer: a university's XMPP
 * component (XEP-0114, libstrophe) issuing student cards into its
 * students' vestnik wallets (xeps/documents.md §6, doc/documents.md).
 *
 * The operator lists the component as a trusted issuer of "student"
 * credentials (modules.credentials.issuers_file); vestnik holds its signing
 * key. The component keeps a register of its students and talks to the
 * wallet service:
 *   a student writes "card"        the university sends <issue/> with the
 *                                  student's claims; the student's wallet
 *                                  gets the card and the student a note
 *   the registrar writes
 *   "revoke JID"                   <revoke/> of the card issued to JID
 *
 *   university_issuer -d university.localhost -w documents.localhost \
 *       -f students.txt [-a registrar@localhost] [-s 127.0.0.1] [-p 5347]
 * The shared secret comes from VESTNIK_COMPONENT_SECRET. A register line is
 *   jid;given_name;family_name;birthdate;student_id;faculty
 * e.g. "alice@localhost;Alice;Liddell;2004-05-04;S-1865;Mathematics".
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>
#include <unistd.h>

#define NS_DOCUMENTS "urn:vestnik:documents:0"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_PING "urn:xmpp:ping"
#define MAX_STUDENTS 1024
#define UNIVERSITY "Example University"

typedef struct student {
    char *jid, *given_name, *family_name, *birthdate, *student_id, *faculty;
    char *card; /* id of the card issued, or NULL */
} student;

typedef struct university {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    const char *domain, *wallet, *registrar;
    student students[MAX_STUDENTS];
    int n_students;
    unsigned long next_id;
} university;

/* What an outstanding <issue/> or <revoke/> is about. */
typedef struct pending {
    university *u;
    student *s;
    char *asker; /* full JID to tell the outcome */
} pending;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void load_students(university *u, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    char line[1024];
    while (fgets(line, sizeof line, f) && u->n_students < MAX_STUDENTS) {
        line[strcspn(line, "\r\n")] = '\0';
        char *fields[6], *save = NULL;
        int n = 0;
        for (char *p = strtok_r(line, ";", &save); p && n < 6; p = strtok_r(NULL, ";", &save))
            fields[n++] = p;
        if (n != 6 || line[0] == '#')
            continue;
        student *s = &u->students[u->n_students++];
        s->jid = strdup(fields[0]);
        s->given_name = strdup(fields[1]);
        s->family_name = strdup(fields[2]);
        s->birthdate = strdup(fields[3]);
        s->student_id = strdup(fields[4]);
        s->faculty = strdup(fields[5]);
    }
    fclose(f);
}

static student *find_student(university *u, const char *jid)
{
    size_t n = strcspn(jid, "/");
    for (int i = 0; i < u->n_students; i++)
        if (strlen(u->students[i].jid) == n && strncmp(u->students[i].jid, jid, n) == 0)
            return &u->students[i];
    return NULL;
}

static void send_chat(university *u, const char *to, const char *text)
{
    xmpp_stanza_t *msg = xmpp_message_new(u->ctx, "chat", to, NULL);
    xmpp_stanza_set_from(msg, u->domain);
    xmpp_message_set_body(msg, text);
    xmpp_send(u->conn, msg);
    xmpp_stanza_release(msg);
}

static xmpp_stanza_t *element(university *u, xmpp_stanza_t *parent, const char *name,
                              const char *text)
{
    xmpp_stanza_t *e = xmpp_stanza_new(u->ctx);
    xmpp_stanza_set_name(e, name);
    if (text) {
        xmpp_stanza_t *t = xmpp_stanza_new(u->ctx);
        xmpp_stanza_set_text(t, text);
        xmpp_stanza_add_child(e, t);
        xmpp_stanza_release(t);
    }
    xmpp_stanza_add_child(parent, e);
    xmpp_stanza_release(e);
    return e;
}

static void claim(university *u, xmpp_stanza_t *issue, const char *name, const char *value)
{
    xmpp_stanza_set_attribute(element(u, issue, "claim", value), "name", name);
}

/* The wallet service's condition in an error, for people. */
static const char *error_condition(xmpp_stanza_t *iq)
{
    xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(iq, "error");
    for (xmpp_stanza_t *c = error ? xmpp_stanza_get_children(error) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *ns = xmpp_stanza_get_ns(c);
        if (ns && strcmp(ns, NS_DOCUMENTS) == 0)
            return xmpp_stanza_get_name(c);
    }
    for (xmpp_stanza_t *c = error ? xmpp_stanza_get_children(error) : NULL; c;
         c = xmpp_stanza_get_next(c))
        if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "text") != 0)
            return xmpp_stanza_get_name(c);
    return "unknown";
}

static int on_issued(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *userdata)
{
    (void)conn;
    pending *p = userdata;
    char text[512];
    if (strcmp(xmpp_stanza_get_type(iq), "result") == 0) {
        xmpp_stanza_t *issued = xmpp_stanza_get_child_by_name(iq, "issued");
        const char *id = issued ? xmpp_stanza_get_attribute(issued, "id") : NULL;
        free(p->s->card);
        p->s->card = id ? strdup(id) : NULL;
        printf("issued %s to %s\n", id ? id : "?", p->s->jid);
        fflush(stdout);
        snprintf(text, sizeof text,
                 "Your student card of %s is in your wallet: write \"list\" to %s.", UNIVERSITY,
                 p->u->wallet);
    } else {
        snprintf(text, sizeof text, "The wallet service refused the card: %s.",
                 error_condition(iq));
    }
    send_chat(p->u, p->asker, text);
    free(p->asker);
    free(p);
    return 0;
}

static void issue_card(university *u, student *s, const char *asker)
{
    char id[32];
    snprintf(id, sizeof id, "issue%lu", ++u->next_id);
    xmpp_stanza_t *iq = xmpp_iq_new(u->ctx, "set", id);
    xmpp_stanza_set_from(iq, u->domain);
    xmpp_stanza_set_to(iq, u->wallet);
    xmpp_stanza_t *issue = element(u, iq, "issue", NULL);
    xmpp_stanza_set_ns(issue, NS_DOCUMENTS);
    xmpp_stanza_set_attribute(issue, "holder", s->jid);
    xmpp_stanza_set_attribute(issue, "type", "student");
    claim(u, issue, "given_name", s->given_name);
    claim(u, issue, "family_name", s->family_name);
    claim(u, issue, "birthdate", s->birthdate);
    claim(u, issue, "university", UNIVERSITY);
    claim(u, issue, "student_id", s->student_id);
    claim(u, issue, "faculty", s->faculty);
    pending *p = calloc(1, sizeof *p);
    *p = (pending){.u = u, .s = s, .asker = strdup(asker)};
    xmpp_id_handler_add(u->conn, on_issued, id, p);
    xmpp_send(u->conn, iq);
    xmpp_stanza_release(iq);
}

static int on_revoked(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *userdata)
{
    (void)conn;
    pending *p = userdata;
    char text[512];
    if (strcmp(xmpp_stanza_get_type(iq), "result") == 0) {
        snprintf(text, sizeof text, "Revoked the student card of %s.", p->s->jid);
        free(p->s->card);
        p->s->card = NULL;
    } else {
        snprintf(text, sizeof text, "The wallet service refused: %s.", error_condition(iq));
    }
    send_chat(p->u, p->asker, text);
    free(p->asker);
    free(p);
    return 0;
}

static void revoke_card(university *u, student *s, const char *asker)
{
    char id[32];
    snprintf(id, sizeof id, "revoke%lu", ++u->next_id);
    xmpp_stanza_t *iq = xmpp_iq_new(u->ctx, "set", id);
    xmpp_stanza_set_from(iq, u->domain);
    xmpp_stanza_set_to(iq, u->wallet);
    xmpp_stanza_t *revoke = element(u, iq, "revoke", NULL);
    xmpp_stanza_set_ns(revoke, NS_DOCUMENTS);
    xmpp_stanza_set_attribute(revoke, "id", s->card);
    pending *p = calloc(1, sizeof *p);
    *p = (pending){.u = u, .s = s, .asker = strdup(asker)};
    xmpp_id_handler_add(u->conn, on_revoked, id, p);
    xmpp_send(u->conn, iq);
    xmpp_stanza_release(iq);
}

static bool is_registrar(const university *u, const char *from)
{
    size_t n = strcspn(from, "/");
    return u->registrar && strlen(u->registrar) == n && strncmp(u->registrar, from, n) == 0;
}

static void handle_command(university *u, const char *from, const char *body)
{
    char who[512];
    student *s;
    if (strcasecmp(body, "card") == 0) {
        if ((s = find_student(u, from)))
            issue_card(u, s, from);
        else
            send_chat(u, from, "You are not in the register of " UNIVERSITY ".");
    } else if (is_registrar(u, from) && sscanf(body, "revoke %511s", who) == 1) {
        if (!(s = find_student(u, who)) || !s->card)
            send_chat(u, from, "No card of that student to revoke.");
        else
            revoke_card(u, s, from);
    } else {
        send_chat(u, from,
                  is_registrar(u, from) ? "Commands: card, revoke JID." : "Commands: card.");
    }
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    (void)conn;
    university *u = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    const char *from = xmpp_stanza_get_from(stanza);
    char *body = xmpp_message_get_body(stanza);
    if (body && from && (!type || strcmp(type, "error") != 0))
        handle_command(u, from, body);
    xmpp_free(u->ctx, body);
    return 1;
}

static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    university *u = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    xmpp_stanza_t *payload = xmpp_stanza_get_children(stanza);
    const char *ns = payload ? xmpp_stanza_get_ns(payload) : NULL;
    xmpp_stanza_t *reply;
    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return 1;
    if (strcmp(type, "get") == 0 && ns && strcmp(ns, NS_DISCO_INFO) == 0) {
        reply = xmpp_iq_new(u->ctx, "result", xmpp_stanza_get_id(stanza));
        xmpp_stanza_set_to(reply, xmpp_stanza_get_from(stanza));
        xmpp_stanza_t *query = element(u, reply, "query", NULL);
        xmpp_stanza_set_ns(query, NS_DISCO_INFO);
        xmpp_stanza_t *identity = element(u, query, "identity", NULL);
        xmpp_stanza_set_attribute(identity, "category", "component");
        xmpp_stanza_set_attribute(identity, "type", "generic");
        xmpp_stanza_set_attribute(identity, "name", UNIVERSITY);
        xmpp_stanza_set_attribute(element(u, query, "feature", NULL), "var", NS_DISCO_INFO);
        xmpp_stanza_set_attribute(element(u, query, "feature", NULL), "var", NS_PING);
    } else if (strcmp(type, "get") == 0 && ns && strcmp(ns, NS_PING) == 0) {
        reply = xmpp_iq_new(u->ctx, "result", xmpp_stanza_get_id(stanza));
        xmpp_stanza_set_to(reply, xmpp_stanza_get_from(stanza));
    } else {
        reply = xmpp_stanza_reply_error(stanza, "cancel", "service-unavailable", NULL);
    }
    xmpp_stanza_set_from(reply, xmpp_stanza_get_to(stanza));
    xmpp_send(conn, reply);
    xmpp_stanza_release(reply);
    return 1;
}

static void on_connection(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                          xmpp_stream_error_t *stream_error, void *userdata)
{
    (void)conn;
    (void)error;
    university *u = userdata;
    if (status == XMPP_CONN_CONNECT) {
        fprintf(stderr, "university_issuer: serving %s, issuing into %s\n", u->domain, u->wallet);
        return;
    }
    fprintf(stderr, "university_issuer: disconnected %s\n",
            stream_error && stream_error->text ? stream_error->text : "");
    xmpp_stop(u->ctx);
}

static void ignore_event(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                         xmpp_stream_error_t *stream_error, void *userdata)
{
    (void)conn;
    (void)status;
    (void)error;
    (void)stream_error;
    (void)userdata;
}

/* libstrophe 0.12.2 (Debian 12) allocates a connection's stream management
 * state only in xmpp_connect_client(): see school_diary.c. */
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
    fprintf(stderr, "usage: VESTNIK_COMPONENT_SECRET=... university_issuer -d DOMAIN -w WALLET "
                    "-f STUDENTS [-a REGISTRAR] [-s SERVER] [-p PORT]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    university u = {0};
    const char *server = "127.0.0.1", *students = NULL;
    unsigned short port = 5347;
    const char *secret = getenv("VESTNIK_COMPONENT_SECRET");
    int opt;
    while ((opt = getopt(argc, argv, "d:w:f:a:s:p:h")) != -1) {
        switch (opt) {
        case 'd': u.domain = optarg; break;
        case 'w': u.wallet = optarg; break;
        case 'f': students = optarg; break;
        case 'a': u.registrar = optarg; break;
        case 's': server = optarg; break;
        case 'p': port = (unsigned short)atoi(optarg); break;
        default: usage();
        }
    }
    if (!u.domain || !u.wallet || !students || !secret || !*secret || optind != argc)
        usage();
    load_students(&u, students);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    xmpp_initialize();
    u.ctx = xmpp_ctx_new(NULL, NULL);
    while (!stopping) {
        u.conn = xmpp_conn_new(u.ctx);
        xmpp_conn_set_jid(u.conn, u.domain);
        xmpp_conn_set_pass(u.conn, secret);
        xmpp_handler_add(u.conn, on_message, NULL, "message", NULL, &u);
        xmpp_handler_add(u.conn, on_iq, NULL, "iq", NULL, &u);
        prepare_component_conn(u.ctx, u.conn, server, port);
        if (xmpp_connect_component(u.conn, server, port, on_connection, &u) == XMPP_EOK) {
            while (!stopping && (xmpp_conn_is_connecting(u.conn) || xmpp_conn_is_connected(u.conn)))
                xmpp_run_once(u.ctx, 200);
        }
        xmpp_conn_release(u.conn);
        if (!stopping)
            sleep(2);
    }
    xmpp_ctx_free(u.ctx);
    xmpp_shutdown();
    for (int i = 0; i < u.n_students; i++) {
        student *s = &u.students[i];
        free(s->jid);
        free(s->given_name);
        free(s->family_name);
        free(s->birthdate);
        free(s->student_id);
        free(s->faculty);
        free(s->card);
    }
    return 0;
}
