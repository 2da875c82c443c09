/*
 * admin.c - the admin socket: how vestnikctl reaches a running vestnikd.
 *
 * A unix socket in the data directory (mode 0600; peers other than root
 * and the server's own user are turned away by their SO_PEERCRED
 * credentials) accepts one request per connection in the format of
 * admin_protocol.h. status and reload run on the loop; account changes
 * derive SCRAM keys (PBKDF2) and write the store, so they run on a worker
 * and answer from the done callback. Passwords are wiped from memory as
 * soon as they are used and never logged.
 */
#include "admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utlist.h>

#include "accounts.h"
#include "admin_protocol.h"
#include "cluster.h"
#include "server.h"
#include "sessions.h"
#include "vestnik/module.h"

_Static_assert(VN_ADMIN_MAX_FIELDS <= 9, "the field count is sent as one digit");

/* Time a client has to send its request, and to take the answer. */
#define ADMIN_TIMEOUT_MS 5000

typedef enum {
    CLIENT_READING, /* waiting for the complete request */
    CLIENT_WORKING, /* an account job runs on a worker */
    CLIENT_WRITING, /* the answer is being written */
    CLIENT_CLOSING, /* handles closing; a job may still hold a reference */
} client_state;

typedef struct admin_client {
    uv_pipe_t pipe;
    uv_timer_t timer;
    client_state state;
    int refs; /* open handles, plus one while an account job runs */
    char request[VN_ADMIN_MAX_REQUEST];
    size_t request_len;
    vn_buf reply;
    uv_write_t write_req;
    struct admin_client *prev, *next;
} admin_client;

typedef enum { JOB_ADDUSER, JOB_PASSWD, JOB_DELUSER, JOB_LISTUSERS } account_job_kind;

typedef struct account_job {
    account_job_kind kind;
    admin_client *client;
    vn_store *store;
    char *host;     /* normalised, a local host */
    char *user;     /* normalised localpart; NULL for listusers */
    char *password; /* wiped and freed on the worker once used */
    unsigned iterations;
    int result;            /* what the vn_accounts_* call returned */
    vn_buf users;          /* listusers: one username per line */
    vn_farewell *farewell; /* deluser: to the account's contacts once it is gone */
} account_job;

typedef struct admin_command {
    const char *name;
    int n_args;
    void (*run)(admin_client *c, char **args);
} admin_command;

static uv_loop_t *admin_loop;
static uv_pipe_t listener;
static char *socket_path; /* non-NULL while listening */
static dev_t socket_dev;  /* identity of the socket file we bound, so that */
static ino_t socket_ino;  /* stop never unlinks someone else's */
static admin_client *clients;

/* ---- connections ---- */

static void client_unref(admin_client *c)
{
    if (--c->refs > 0)
        return;
    vn_buf_free(&c->reply);
    free(c);
}

static void on_client_handle_closed(uv_handle_t *h)
{
    client_unref(h->data);
}

static void client_close(admin_client *c)
{
    if (c->state == CLIENT_CLOSING)
        return;
    c->state = CLIENT_CLOSING;
    explicit_bzero(c->request, sizeof c->request);
    DL_DELETE(clients, c);
    uv_close((uv_handle_t *)&c->pipe, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
}

static void on_reply_written(uv_write_t *req, int status)
{
    client_close(req->data);
}

static void on_timeout(uv_timer_t *t);

/* Send what is in c->reply and close the connection after it. */
static void reply_send(admin_client *c)
{
    uv_buf_t buf = uv_buf_init(c->reply.data, (unsigned)c->reply.len);

    c->state = CLIENT_WRITING;
    c->write_req.data = c;
    uv_timer_start(&c->timer, on_timeout, ADMIN_TIMEOUT_MS, 0);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->pipe, &buf, 1, on_reply_written) < 0)
        client_close(c);
}

static void reply_error(admin_client *c, const char *message)
{
    vn_buf_reset(&c->reply);
    vn_buf_printf(&c->reply, "error %s\n", message);
    reply_send(c);
}

static void on_timeout(uv_timer_t *t)
{
    admin_client *c = t->data;

    if (c->state == CLIENT_READING) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        reply_error(c, "request timed out");
    } else {
        client_close(c);
    }
}

/* ---- account commands, on a worker ---- */

static bool collect_user(const char *user, void *ud)
{
    vn_buf *users = ud;
    vn_buf_printf(users, "%s\n", user);
    return true;
}

static void account_job_work(void *ud)
{
    account_job *job = ud;

    switch (job->kind) {
    case JOB_ADDUSER:
        job->result =
            vn_accounts_create(job->store, job->host, job->user, job->password, job->iterations);
        break;
    case JOB_PASSWD:
        job->result = vn_accounts_set_password(job->store, job->host, job->user, job->password,
                                               job->iterations);
        break;
    case JOB_DELUSER: job->result = vn_accounts_delete(job->store, job->host, job->user); break;
    case JOB_LISTUSERS:
        job->result = vn_accounts_foreach(job->store, job->host, collect_user, &job->users);
        break;
    }
    if (job->password) {
        explicit_bzero(job->password, strlen(job->password));
        free(job->password);
        job->password = NULL;
    }
}

static const char *const done_verbs[] = {"created", "changed the password of", "deleted"};
static const char *const fail_verbs[] = {"create", "change the password of", "delete"};

static void account_job_log(const account_job *job)
{
    if (job->kind == JOB_LISTUSERS || job->result == 1)
        return;
    if (job->result == 0)
        vn_log_info("admin: %s account %s@%s", done_verbs[job->kind], job->user, job->host);
    else
        vn_log_error("admin: cannot %s account %s@%s", fail_verbs[job->kind], job->user, job->host);
}

/* Fill reply with the answer to a finished job. */
static void account_job_answer(const account_job *job, vn_buf *reply)
{
    const char *host = job->host, *user = job->user;

    if (job->kind == JOB_LISTUSERS) {
        if (job->result < 0)
            vn_buf_printf(reply, "error cannot list the accounts of %s\n", host);
        else
            vn_buf_printf(reply, "ok\n%s", job->users.data ? job->users.data : "");
        return;
    }
    if (job->result == 0) {
        vn_buf_append_str(reply, "ok\n");
    } else if (job->result == 1 && job->kind == JOB_ADDUSER) {
        vn_buf_printf(reply, "error account %s@%s already exists\n", user, host);
    } else if (job->result == 1) {
        vn_buf_printf(reply, "error no such account %s@%s\n", user, host);
    } else {
        vn_buf_printf(reply, "error cannot %s account %s@%s (see the server log)\n",
                      fail_verbs[job->kind], user, host);
    }
}

static void account_job_done(void *ud)
{
    account_job *job = ud;
    admin_client *c = job->client;

    /* The change is made whether or not the client is still there. */
    account_job_log(job);
    if (job->farewell)
        vn_farewell_finish(job->farewell, job->result == 0);
    if (job->kind == JOB_DELUSER && job->result == 0)
        vn_sessions_kick_user(job->host, job->user, "not-authorized");
    if (c->state != CLIENT_CLOSING) {
        vn_buf_reset(&c->reply);
        account_job_answer(job, &c->reply);
        reply_send(c);
    }
    client_unref(c);
    free(job->host);
    free(job->user);
    vn_buf_free(&job->users);
    free(job);
}

/* Validate host (and user unless NULL) and hand the job to a worker;
 * answers the client with an error instead if they are not acceptable. */
static void account_job_start(admin_client *c, account_job_kind kind, const char *host,
                              const char *user, const char *password)
{
    char *host_norm = vn_jid_prep_domain(host);
    if (!host_norm || !vn_is_local_host(host_norm)) {
        free(host_norm);
        vn_buf_reset(&c->reply);
        vn_buf_printf(&c->reply, "error %s is not a host of this server\n", host);
        reply_send(c);
        return;
    }
    char *user_norm = NULL;
    if (user && !(user_norm = vn_jid_prep_local(user))) {
        free(host_norm);
        reply_error(c, "invalid username");
        return;
    }

    account_job *job = vn_alloc(sizeof *job);
    job->kind = kind;
    job->client = c;
    job->store = vn_srv.store;
    job->host = host_norm;
    job->user = user_norm;
    job->password = vn_strdup(password);
    job->iterations = vn_srv.cfg->scram_iterations;
    job->farewell = kind == JOB_DELUSER ? vn_farewell_collect(host_norm, user_norm) : NULL;
    vn_buf_init(&job->users);
    c->state = CLIENT_WORKING;
    c->refs++;
    vn_work_queue(account_job_work, account_job_done, job);
}

static void cmd_adduser(admin_client *c, char **args)
{
    account_job_start(c, JOB_ADDUSER, args[0], args[1], args[2]);
}

static void cmd_passwd(admin_client *c, char **args)
{
    account_job_start(c, JOB_PASSWD, args[0], args[1], args[2]);
}

static void cmd_deluser(admin_client *c, char **args)
{
    account_job_start(c, JOB_DELUSER, args[0], args[1], NULL);
}

static void cmd_listusers(admin_client *c, char **args)
{
    account_job_start(c, JOB_LISTUSERS, args[0], NULL, NULL);
}

/* ---- server commands, on the loop ---- */

static void cmd_status(admin_client *c, char **args)
{
    vn_buf_reset(&c->reply);
    vn_buf_append_str(&c->reply, "ok\n");
    vn_server_status(&c->reply);
    vn_buf_append_str(&c->reply, "\n");
    reply_send(c);
}

static void cmd_reload(admin_client *c, char **args)
{
    vn_buf err;

    vn_buf_init(&err);
    vn_log_info("admin: reload requested");
    vn_buf_reset(&c->reply);
    if (vn_server_reload(&err) == 0) {
        vn_buf_append_str(&c->reply, "ok\n");
    } else {
        vn_log_error("reload failed, keeping the running configuration:\n%s",
                     err.data ? err.data : "");
        vn_buf_append_str(&c->reply, "error reload failed, the running configuration stays\n");
        if (err.data)
            vn_buf_append_str(&c->reply, err.data);
    }
    vn_buf_free(&err);
    reply_send(c);
}

/* "cluster status": the nodes this one hears, their sessions, NATS. */
static void cmd_cluster(admin_client *c, char **args)
{
    vn_buf_reset(&c->reply);
    if (strcmp(args[0], "status") == 0)
        vn_cluster_status(&c->reply);
    else
        vn_buf_append_str(&c->reply, "error usage: cluster status\n");
    reply_send(c);
}

static const admin_command commands[] = {
    {"status", 0, cmd_status},   {"reload", 0, cmd_reload},   {"adduser", 3, cmd_adduser},
    {"passwd", 3, cmd_passwd},   {"deluser", 2, cmd_deluser}, {"listusers", 1, cmd_listusers},
    {"cluster", 1, cmd_cluster},
};

static void dispatch(admin_client *c, int n_fields, char **fields)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(fields[0], commands[i].name) != 0)
            continue;
        if (n_fields - 1 != commands[i].n_args) {
            reply_error(c, "wrong number of arguments");
            return;
        }
        vn_log_debug("admin: %s", commands[i].name);
        commands[i].run(c, fields + 1);
        return;
    }
    vn_admin_command cmd = {
        .fields = (const char *const *)fields, .n_fields = n_fields, .reply = &c->reply};
    vn_event ev = {.data = &cmd};
    vn_buf_reset(&c->reply);
    if (vn_hook_run("admin/command", &ev) == VN_HANDLED && c->reply.len > 0) {
        vn_log_debug("admin: %s (a module's)", fields[0]);
        reply_send(c);
        return;
    }
    reply_error(c, "unknown command");
}

/* ---- reading the request ---- */

/* Split a request (see admin_protocol.h) into NUL-terminated fields in
 * place. Returns the number of fields, 0 if more bytes are needed, or -1
 * if the bytes cannot be the start of a valid request. */
static int request_parse(char *buf, size_t len, char *fields[VN_ADMIN_MAX_FIELDS])
{
    char *end = buf + len;
    char *line_end[VN_ADMIN_MAX_FIELDS];
    char *nl = memchr(buf, '\n', len);

    if (!nl)
        return len < 2 ? 0 : -1;
    if (nl - buf != 1 || buf[0] < '1' || buf[0] > '0' + VN_ADMIN_MAX_FIELDS)
        return -1;
    int n = buf[0] - '0';
    char *p = nl + 1;
    for (int i = 0; i < n; i++) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return memchr(buf, '\0', len) ? -1 : 0;
        fields[i] = p;
        line_end[i] = nl;
        p = nl + 1;
    }
    if (p != end || memchr(buf, '\0', len))
        return -1;
    for (int i = 0; i < n; i++)
        *line_end[i] = '\0';
    return n;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    admin_client *c = h->data;
    *buf = uv_buf_init(c->request + c->request_len, (unsigned)(sizeof c->request - c->request_len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    admin_client *c = stream->data;
    char *fields[VN_ADMIN_MAX_FIELDS];
    int n_fields;

    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            client_close(c);
            return;
        }
        n_fields = -1; /* the client stopped before its request was complete */
    } else {
        c->request_len += (size_t)nread;
        n_fields = request_parse(c->request, c->request_len, fields);
        if (n_fields == 0 && c->request_len < sizeof c->request)
            return;
    }

    uv_read_stop(stream);
    uv_timer_stop(&c->timer);
    if (n_fields == 0)
        reply_error(c, "request too large");
    else if (n_fields < 0)
        reply_error(c, "malformed request");
    else
        dispatch(c, n_fields, fields);
    explicit_bzero(c->request, c->request_len);
}

/* Only root and the user the server runs as may administer it. */
static bool peer_allowed(admin_client *c)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        vn_log_warn("admin: cannot read peer credentials: %s", strerror(errno));
        return false;
    }
    if (cred.uid == 0 || cred.uid == geteuid())
        return true;
    vn_log_warn("admin: refused connection from uid %u (pid %d)", (unsigned)cred.uid,
                (int)cred.pid);
    return false;
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        vn_log_warn("admin: accept failed: %s", uv_strerror(status));
        return;
    }
    admin_client *c = vn_alloc(sizeof *c);
    uv_pipe_init(admin_loop, &c->pipe, 0);
    uv_timer_init(admin_loop, &c->timer);
    c->pipe.data = c;
    c->timer.data = c;
    c->refs = 2;
    c->state = CLIENT_READING;
    vn_buf_init(&c->reply);
    DL_APPEND(clients, c);

    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 || !peer_allowed(c)) {
        client_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, ADMIN_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
        client_close(c);
}

/* ---- the listening socket ---- */

/* mkdir -p of the directory holding path. */
static int make_parent_dirs(const char *path, vn_buf *err)
{
    char *dir = vn_strdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;

    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; rc == 0; p++) {
            bool last = *p == '\0';
            if (*p != '/' && !last)
                continue;
            *p = '\0';
            if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
                vn_buf_printf(err, "cannot create directory %s for the admin socket: %s\n", dir,
                              strerror(errno));
                rc = -1;
            }
            if (last)
                break;
            *p = '/';
        }
    }
    free(dir);
    return rc;
}

/* A socket file left at path is either a live server's (refuse to start)
 * or a stale one from a crash (remove it). */
static int clear_stale_socket(const char *path, vn_buf *err)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        vn_buf_printf(err, "cannot check admin socket %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        vn_buf_printf(err, "admin socket path %s exists and is not a socket\n", path);
        return -1;
    }

    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vn_buf_printf(err, "cannot create a socket: %s\n", strerror(errno));
        return -1;
    }
    int connected = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    int connect_errno = errno;
    close(fd);
    if (connected == 0 || connect_errno == EAGAIN) {
        vn_buf_printf(err, "another vestnikd is running (admin socket %s)\n", path);
        return -1;
    }
    if (connect_errno != ECONNREFUSED) {
        vn_buf_printf(err, "cannot check admin socket %s: %s\n", path, strerror(connect_errno));
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        vn_buf_printf(err, "cannot remove stale admin socket %s: %s\n", path, strerror(errno));
        return -1;
    }
    vn_log_info("admin: removed stale socket %s", path);
    return 0;
}

int vn_admin_start(uv_loop_t *loop, const char *path, vn_buf *err)
{
    struct sockaddr_un addr;
    struct stat st;

    if (strlen(path) >= sizeof addr.sun_path) {
        vn_buf_printf(err, "admin socket path %s is too long (at most %zu bytes)\n", path,
                      sizeof addr.sun_path - 1);
        return -1;
    }
    if (make_parent_dirs(path, err) < 0 || clear_stale_socket(path, err) < 0)
        return -1;

    admin_loop = loop;
    uv_pipe_init(loop, &listener, 0);
    int rc = uv_pipe_bind(&listener, path);
    if (rc == 0) {
        /* Until chmod, others may connect; peer_allowed turns them away. */
        if (chmod(path, 0600) < 0 || lstat(path, &st) < 0) {
            rc = -errno;
        } else {
            socket_dev = st.st_dev;
            socket_ino = st.st_ino;
            rc = uv_listen((uv_stream_t *)&listener, 16, on_connection);
        }
        if (rc < 0)
            unlink(path);
    }
    if (rc < 0) {
        vn_buf_printf(err, "cannot listen on admin socket %s: %s\n", path, uv_strerror(rc));
        uv_close((uv_handle_t *)&listener, NULL);
        return -1;
    }
    socket_path = vn_strdup(path);
    vn_log_debug("admin: listening on %s", path);
    return 0;
}

void vn_admin_stop(void)
{
    struct stat st;

    if (!socket_path)
        return;
    uv_close((uv_handle_t *)&listener, NULL);
    while (clients) /* client_close takes each off the list */
        client_close(clients);
    if (lstat(socket_path, &st) == 0 && st.st_dev == socket_dev && st.st_ino == socket_ino)
        unlink(socket_path);
    free(socket_path);
    socket_path = NULL;
}
