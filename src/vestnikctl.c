/*
 * vestnikctl.c - the administration command line of vestnik.
 *
 * Account commands go through the admin socket of a running vestnikd (so
 * that deleting an account also ends its sessions) and fall back to the
 * store itself when no server runs. status and reload need the server;
 * check-config runs `vestnikd --check-config`.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libintl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "../modules/services/botapi_store.h"
#include "../modules/services/registry_store.h"
#include "accounts.h"
#include "admin_protocol.h"
#include "conf_tree.h"
#include "config.h"
#include "i18n.h"
#include "log_internal.h"
#include "store_backend.h"
#include "store_xep0227.h"
#include "vestnik/jid.h"

#ifndef VN_SYSCONFDIR
#define VN_SYSCONFDIR "/etc/vestnik"
#endif
#ifndef VN_SBINDIR
#define VN_SBINDIR "/usr/local/sbin"
#endif

/* Messages for the person at the terminal, in the language of their locale
 * (LANGUAGE, LC_ALL, LC_MESSAGES, LANG), from the server's catalogs. */
#define _(text) gettext(text)

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOT_RUNNING = 3 };

/* How long to wait for vestnikd's answer (an account change hashes the
 * password on a worker, a reload reads certificates). */
#define ADMIN_ANSWER_TIMEOUT_S 60

static void usage(void)
{
    printf(_("usage: vestnikctl [-c CONFIG] COMMAND [ARGS]\n"
             "\n"
             "commands:\n"
             "  adduser JID [PASSWORD]  create the account JID (user@host)\n"
             "  passwd JID [PASSWORD]   change the password of an account\n"
             "  deluser JID             delete an account and all its data\n"
             "  listusers [HOST]        list the accounts of HOST (default: every host)\n"
             "  status                  show the status of the running server\n"
             "  reload                  make the running server re-read its configuration\n"
             "  turn-config [OPTIONS] [FILE]  write coturn's configuration, sharing\n"
             "                          modules.extdisco's TURN secret (default: to stdout);\n"
             "                          --relay-ports=MIN-MAX, --listening-ip=IP,\n"
             "                          --external-ip=IP, --allow-loopback-peers (tests)\n"
             "  check-config            validate the configuration (vestnikd --check-config)\n"
             "  migrate                 create or upgrade the PostgreSQL store's schema\n"
             "  export FILE             write the whole store to FILE (- for stdout)\n"
             "  import FILE             load a file of export into the store of a stopped\n"
             "                          server (for instance LMDB's into PostgreSQL)\n"
             "  export --format xep0227 FILE  the accounts of every host as a XEP-0227\n"
             "                          file, for another server\n"
             "  import --format xep0227 FILE  create the accounts of a XEP-0227 file\n"
             "                          (Prosody's, ejabberd's) in a stopped server's store\n"
             "  bot add NAME [HOST]     create a Bot API bot NAME@bots.HOST; prints its token\n"
             "  bot list [HOST]         list the bots of HOST (default: the first host)\n"
             "  bot remove NAME [HOST]  delete a bot, its token and its state\n"
             "  services list [HOST]    list the services (directory, consent counters)\n"
             "  services log SERVICE [N]  the newest N (50) entries of its audit log\n"
             "  services verify|unverify|suspend|resume SERVICE\n"
             "                          set the operator's badge, or suspend a service\n"
             "  cluster status          the nodes of the cluster, their sessions, NATS\n"
             "\n"
             "options:\n"
             "  -c, --config FILE  configuration file (default %s/vestnik.yaml)\n"
             "  -h, --help         show this help\n"
             "  --version          print the version\n"
             "\n"
             "Without PASSWORD, it is asked for twice on a terminal, or read as one line\n"
             "from standard input. Exit status: 0 done, 1 failed, 2 usage error,\n"
             "3 the server is not running.\n"),
           VN_SYSCONFDIR);
}

typedef struct ctl {
    const char *config_path;
    vn_config *cfg; /* NULL for check-config */
} ctl;

typedef struct ctl_command {
    const char *name;
    int min_args, max_args;
    bool needs_config;
    int (*run)(ctl *c, char **args, int n_args);
} ctl_command;

/* An account named on the command line, normalised. */
typedef struct account_name {
    vn_jid *jid;
    const char *host; /* jid->domain, a configured host */
    const char *user; /* jid->local */
} account_name;

typedef enum { ACCOUNT_ADD, ACCOUNT_PASSWD, ACCOUNT_DELETE } account_op;

static void secret_free(char *secret)
{
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
}

/* ---- passwords ---- */

/* One line of f without its line ending; NULL at end of file. */
static char *line_read(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);

    if (len < 0) {
        free(line);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

/* The terminal settings to put back if a signal ends a silent prompt. */
static struct termios terminal_saved;

static void on_signal_during_prompt(int signum)
{
    tcsetattr(STDIN_FILENO, TCSANOW, &terminal_saved);
    signal(signum, SIG_DFL);
    raise(signum);
}

/* One line read from the terminal without echo; NULL at end of input. */
static char *prompt_silently(const char *prompt)
{
    enum { N_SIGNALS = 4 };
    static const int signals[N_SIGNALS] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction restore = {.sa_handler = on_signal_during_prompt}, previous[N_SIGNALS];
    struct termios quiet;

    if (tcgetattr(STDIN_FILENO, &terminal_saved) < 0) {
        fprintf(stderr, _("vestnikctl: cannot read the terminal settings: %s\n"), strerror(errno));
        return NULL;
    }
    fputs(prompt, stderr);
    fflush(stderr);
    for (int i = 0; i < N_SIGNALS; i++)
        sigaction(signals[i], &restore, &previous[i]);
    quiet = terminal_saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    char *line = line_read(stdin);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &terminal_saved);
    for (int i = 0; i < N_SIGNALS; i++)
        sigaction(signals[i], &previous[i], NULL);
    fputc('\n', stderr);
    return line;
}

/* The password from the argument, the terminal (asked twice) or stdin. */
static char *password_get(const char *arg)
{
    char *password;

    if (arg) {
        password = vn_strdup(arg);
    } else if (isatty(STDIN_FILENO)) {
        password = prompt_silently(_("Password: "));
        char *again = password ? prompt_silently(_("Repeat password: ")) : NULL;
        if (!again || strcmp(password, again) != 0) {
            fputs(again ? _("vestnikctl: the passwords do not match\n")
                        : _("vestnikctl: no password given\n"),
                  stderr);
            secret_free(password);
            password = NULL;
        }
        secret_free(again);
    } else if (!(password = line_read(stdin))) {
        fputs(_("vestnikctl: no password on standard input\n"), stderr);
    }
    if (password && (password[0] == '\0' || strchr(password, '\n'))) {
        fputs(password[0] ? _("vestnikctl: a password cannot contain a line break\n")
                          : _("vestnikctl: the password is empty\n"),
              stderr);
        secret_free(password);
        password = NULL;
    }
    return password;
}

/* ---- talking to vestnikd ---- */

typedef enum { ADMIN_ANSWERED, ADMIN_NOT_RUNNING, ADMIN_FAILED } admin_outcome;

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Connect to the admin socket: the descriptor, or -1 with *outcome set. */
static int admin_connect(const char *path, admin_outcome *outcome)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct timeval timeout = {.tv_sec = ADMIN_ANSWER_TIMEOUT_S};

    *outcome = ADMIN_FAILED;
    if (strlen(path) >= sizeof addr.sun_path) {
        fprintf(stderr, _("vestnikctl: admin socket path %s is too long\n"), path);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, _("vestnikctl: cannot create a socket: %s\n"), strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int connect_errno = errno;
        close(fd);
        if (connect_errno == ENOENT || connect_errno == ECONNREFUSED)
            *outcome = ADMIN_NOT_RUNNING;
        else
            fprintf(stderr, _("vestnikctl: cannot connect to the admin socket %s: %s\n"), path,
                    strerror(connect_errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    return fd;
}

/* Send the request and read the whole answer until vestnikd closes. */
static admin_outcome admin_exchange(int fd, const vn_buf *request, const char *path, vn_buf *answer)
{
    char chunk[4096];
    ssize_t n = 0;

    vn_buf_reset(answer);
    if (write_all(fd, request->data, request->len) < 0 && errno != EPIPE && errno != ECONNRESET) {
        fprintf(stderr, _("vestnikctl: cannot send to vestnikd: %s\n"), strerror(errno));
        return ADMIN_FAILED;
    }
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        vn_buf_append(answer, chunk, (size_t)n);
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        fprintf(stderr, _("vestnikctl: no answer from vestnikd within %d seconds\n"),
                ADMIN_ANSWER_TIMEOUT_S);
        return ADMIN_FAILED;
    }
    if (n < 0 && errno != ECONNRESET) {
        fprintf(stderr, _("vestnikctl: cannot read the answer of vestnikd: %s\n"), strerror(errno));
        return ADMIN_FAILED;
    }
    if (answer->len == 0) {
        fprintf(stderr,
                _("vestnikctl: vestnikd closed the admin connection without answering "
                  "(only root and the server's user may use %s)\n"),
                path);
        return ADMIN_FAILED;
    }
    return ADMIN_ANSWERED;
}

/* Send one request (see admin_protocol.h) and read the answer. */
static admin_outcome admin_request(const char *path, const char *const *fields, int n_fields,
                                   vn_buf *answer)
{
    admin_outcome outcome = ADMIN_FAILED;
    vn_buf request;

    vn_buf_init(&request);
    vn_buf_printf(&request, "%d\n", n_fields);
    for (int i = 0; i < n_fields; i++)
        vn_buf_printf(&request, "%s\n", fields[i]);
    if (request.len > VN_ADMIN_MAX_REQUEST) {
        fputs(_("vestnikctl: the arguments are too long\n"), stderr);
    } else {
        int fd = admin_connect(path, &outcome);
        if (fd >= 0) {
            outcome = admin_exchange(fd, &request, path, answer);
            close(fd);
        }
    }
    explicit_bzero(request.data, request.len);
    vn_buf_free(&request);
    return outcome;
}

/* Check an answer: 0 and its body in *body for "ok"; -1 after printing
 * the error message and body for "error ...". */
static int admin_answer(const vn_buf *answer, const char **body)
{
    const char *text = answer->data;
    const char *nl = strchr(text, '\n');
    const char *rest = nl ? nl + 1 : "";
    size_t first_len = nl ? (size_t)(nl - text) : strlen(text);

    if (first_len == 2 && strncmp(text, "ok", 2) == 0) {
        if (body)
            *body = rest;
        return 0;
    }
    if (strncmp(text, "error ", 6) == 0)
        fprintf(stderr, "vestnikctl: %.*s\n%s", (int)(first_len - 6), text + 6, rest);
    else
        fputs(_("vestnikctl: unexpected answer from vestnikd\n"), stderr);
    return -1;
}

/* ---- accounts ---- */

/* The store of a stopped server. With create, data_dir and the store are
 * made if missing, as vestnikd would; without, a store that does not exist
 * yet sets *missing (there are no accounts) instead of being an error. */
static vn_store_options store_options(const vn_config *cfg, const char *path)
{
    return (vn_store_options){.backend = cfg->store_backend,
                              .path = path,
                              .map_size_mb = cfg->store_map_size_mb,
                              .conninfo = cfg->store_pg_conninfo,
                              .read_timeout_ms = cfg->store_pg_read_timeout_ms,
                              .write_timeout_ms = cfg->store_pg_write_timeout_ms,
                              .snapshot_max_age_ms = cfg->store_pg_snapshot_max_age_ms,
                              .read_cache_kb = cfg->store_pg_read_cache_kb};
}

static vn_store *store_open(const vn_config *cfg, bool create, bool *missing)
{
    char *path = vn_asprintf("%s/store", cfg->data_dir);
    vn_store_options opts = store_options(cfg, path);
    vn_store *store = NULL;
    vn_buf err;

    vn_buf_init(&err);
    *missing = false;
    if (!create && strcmp(cfg->store_backend, "lmdb") == 0 && access(path, F_OK) < 0 &&
        errno == ENOENT) {
        *missing = true;
    } else if (create && mkdir(cfg->data_dir, 0750) < 0 && errno != EEXIST) {
        fprintf(stderr, _("vestnikctl: cannot create data_dir %s: %s\n"), cfg->data_dir,
                strerror(errno));
    } else if (!(store = vn_store_open(&opts, &err))) {
        fprintf(stderr, _("vestnikctl: cannot open the store %s: %s\n"), path,
                err.data ? err.data : _("unknown error\n"));
    }
    vn_buf_free(&err);
    free(path);
    return store;
}

/* Parse JID as an account of a configured host: 0, or an exit code. */
static int account_name_parse(const vn_config *cfg, const char *arg, account_name *out)
{
    out->jid = vn_jid_parse(arg);
    if (!out->jid || !out->jid->local || out->jid->resource) {
        fprintf(stderr, _("vestnikctl: %s is not an account JID (user@host)\n"), arg);
        vn_jid_free(out->jid);
        return EXIT_USAGE;
    }
    out->host = out->jid->domain;
    out->user = out->jid->local;
    if (!vn_config_host(cfg, out->host)) {
        fprintf(stderr, _("vestnikctl: %s is not a host in %s\n"), out->host, cfg->path);
        vn_jid_free(out->jid);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* The change on the store itself, worded as vestnikd words it. */
static int account_change_direct(const vn_config *cfg, account_op op, const account_name *a,
                                 const char *password)
{
    bool missing;
    vn_store *store = store_open(cfg, op == ACCOUNT_ADD, &missing);
    if (missing)
        fprintf(stderr, _("vestnikctl: no such account %s\n"), a->jid->bare);
    if (!store)
        return EXIT_FAIL;
    int rc = -1;
    switch (op) {
    case ACCOUNT_ADD:
        rc = vn_accounts_create(store, a->host, a->user, password, cfg->scram_iterations);
        break;
    case ACCOUNT_PASSWD:
        rc = vn_accounts_set_password(store, a->host, a->user, password, cfg->scram_iterations);
        break;
    case ACCOUNT_DELETE: rc = vn_accounts_delete(store, a->host, a->user); break;
    }
    vn_store_close(store);

    if (rc == 1 && op == ACCOUNT_ADD)
        fprintf(stderr, _("vestnikctl: account %s already exists\n"), a->jid->bare);
    else if (rc == 1)
        fprintf(stderr, _("vestnikctl: no such account %s\n"), a->jid->bare);
    else if (rc < 0 && op == ACCOUNT_ADD)
        fprintf(stderr, _("vestnikctl: cannot create account %s\n"), a->jid->bare);
    else if (rc < 0 && op == ACCOUNT_PASSWD)
        fprintf(stderr, _("vestnikctl: cannot change the password of account %s\n"), a->jid->bare);
    else if (rc < 0)
        fprintf(stderr, _("vestnikctl: cannot delete account %s\n"), a->jid->bare);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

static int account_change(ctl *c, account_op op, const char *jid_arg, const char *password_arg)
{
    static const char *const commands[] = {"adduser", "passwd", "deluser"};
    account_name a;
    int rc = account_name_parse(c->cfg, jid_arg, &a);
    if (rc != EXIT_OK)
        return rc;

    char *password = NULL;
    if (op != ACCOUNT_DELETE && !(password = password_get(password_arg))) {
        vn_jid_free(a.jid);
        return EXIT_FAIL;
    }
    const char *fields[] = {commands[op], a.host, a.user, password};
    vn_buf answer;
    vn_buf_init(&answer);
    switch (admin_request(c->cfg->admin_socket, fields, op == ACCOUNT_DELETE ? 3 : 4, &answer)) {
    case ADMIN_ANSWERED: rc = admin_answer(&answer, NULL) == 0 ? EXIT_OK : EXIT_FAIL; break;
    case ADMIN_NOT_RUNNING: rc = account_change_direct(c->cfg, op, &a, password); break;
    case ADMIN_FAILED: rc = EXIT_FAIL; break;
    }
    vn_buf_free(&answer);
    secret_free(password);
    vn_jid_free(a.jid);
    return rc;
}

static int cmd_adduser(ctl *c, char **args, int n_args)
{
    return account_change(c, ACCOUNT_ADD, args[0], n_args > 1 ? args[1] : NULL);
}

static int cmd_passwd(ctl *c, char **args, int n_args)
{
    return account_change(c, ACCOUNT_PASSWD, args[0], n_args > 1 ? args[1] : NULL);
}

static int cmd_deluser(ctl *c, char **args, int n_args)
{
    return account_change(c, ACCOUNT_DELETE, args[0], NULL);
}

/* The JIDs listusers prints, collected to be sorted. */
typedef struct jid_list {
    char **jids;
    size_t n, cap;
    const char *host; /* the host being listed */
} jid_list;

static bool jid_list_add(const char *user, void *ud)
{
    jid_list *list = ud;
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 64;
        list->jids = vn_realloc(list->jids, list->cap * sizeof *list->jids);
    }
    list->jids[list->n++] = vn_asprintf("%s@%s", user, list->host);
    return true;
}

static int jid_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the users of one host from vestnikd's answer body. */
static void jid_list_add_lines(jid_list *list, const char *body)
{
    while (*body) {
        size_t len = strcspn(body, "\n");
        char *user = vn_strndup(body, len);
        jid_list_add(user, list);
        free(user);
        body += len + (body[len] == '\n');
    }
}

static int cmd_listusers(ctl *c, char **args, int n_args)
{
    const vn_config *cfg = c->cfg;
    char *only_host = NULL;
    jid_list list = {0};
    vn_store *store = NULL; /* opened when no server runs */
    vn_buf answer;
    int rc = EXIT_OK;

    if (n_args == 1) {
        only_host = vn_jid_prep_domain(args[0]);
        if (!only_host || !vn_config_host(cfg, only_host)) {
            fprintf(stderr, _("vestnikctl: %s is not a host in %s\n"), args[0], cfg->path);
            free(only_host);
            return EXIT_FAIL;
        }
    }
    vn_buf_init(&answer);
    for (size_t i = 0; i < cfg->n_hosts && rc == EXIT_OK; i++) {
        list.host = cfg->hosts[i].name;
        if (only_host && strcmp(only_host, list.host) != 0)
            continue;
        if (!store) {
            const char *fields[] = {"listusers", list.host};
            const char *body;
            admin_outcome outcome = admin_request(cfg->admin_socket, fields, 2, &answer);
            if (outcome == ADMIN_ANSWERED && admin_answer(&answer, &body) == 0) {
                jid_list_add_lines(&list, body);
                continue;
            }
            if (outcome != ADMIN_NOT_RUNNING) {
                rc = EXIT_FAIL;
                break;
            }
            bool missing;
            if (!(store = store_open(cfg, false, &missing))) {
                rc = missing ? EXIT_OK : EXIT_FAIL;
                break;
            }
        }
        if (vn_accounts_foreach(store, list.host, jid_list_add, &list) < 0) {
            fprintf(stderr, _("vestnikctl: cannot list the accounts of %s\n"), list.host);
            rc = EXIT_FAIL;
        }
    }
    if (store)
        vn_store_close(store);

    if (list.n > 1)
        qsort(list.jids, list.n, sizeof *list.jids, jid_compare);
    for (size_t i = 0; i < list.n; i++) {
        if (rc == EXIT_OK)
            puts(list.jids[i]);
        free(list.jids[i]);
    }
    free(list.jids);
    vn_buf_free(&answer);
    free(only_host);
    return rc;
}

static int usage_error(const char *problem, const char *what);

/* ---- bots of the Bot API (mod_services, modules/services/botapi_store.h) ---- */

/* The bot domain of host: modules.services.bot_domain_prefix "." host. */
static char *bot_domain(const vn_config *cfg, const char *host)
{
    const vn_module_conf *mod = vn_config_module(cfg, "services");
    const vn_conf_node *prefix =
        mod && mod->options ? vn_conf_map_get(mod->options, "bot_domain_prefix") : NULL;
    const char *text = prefix && prefix->type == VN_NODE_SCALAR && !vn_conf_is_null(prefix)
                           ? prefix->value
                           : "bots";
    char *domain = vn_asprintf("%s.%s", text, host);
    char *normalized = vn_jid_prep_domain(domain);
    free(domain);
    return normalized;
}

static bool bot_print(const botapi_bot_record *bot, void *ud)
{
    printf("%s@%s %" PRId64 "\n", bot->username, (const char *)ud, bot->id);
    return true;
}

/* The command on the store of a stopped server. */
static int bot_direct(const vn_config *cfg, const char *op, const char *host, const char *name)
{
    bool missing;
    vn_store *store = store_open(cfg, strcmp(op, "add") == 0, &missing);
    if (!store)
        return missing ? (strcmp(op, "list") == 0 ? EXIT_OK : EXIT_FAIL) : EXIT_FAIL;
    char *domain = bot_domain(cfg, host);
    int rc = -1;
    char *token = NULL;
    if (!domain)
        rc = -1;
    else if (strcmp(op, "add") == 0)
        rc = botapi_bot_add(store, domain, name, &token);
    else if (strcmp(op, "remove") == 0)
        rc = botapi_bot_remove(store, domain, name);
    else
        rc = botapi_bot_foreach(store, domain, bot_print, domain) == VN_STORE_OK ? 0 : -1;
    vn_store_close(store);
    if (token)
        puts(token);
    else if (rc == 1 && strcmp(op, "add") == 0)
        fprintf(stderr, _("vestnikctl: bot %s already exists\n"), name);
    else if (rc == 1)
        fprintf(stderr, _("vestnikctl: no such bot %s\n"), name);
    else if (rc < 0)
        fprintf(stderr, _("vestnikctl: bot %s failed\n"), op);
    secret_free(token);
    free(domain);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

/* bot add NAME [HOST], bot remove NAME [HOST], bot list [HOST]. */
static int cmd_bot(ctl *c, char **args, int n_args)
{
    const char *op = args[0];
    bool list = strcmp(op, "list") == 0;
    if (!list && strcmp(op, "add") != 0 && strcmp(op, "remove") != 0)
        return usage_error(_("unknown bot command: "), op);
    if (list ? n_args > 2 : n_args < 2)
        return usage_error(_("wrong number of arguments for bot "), op);
    const char *name = list ? NULL : args[1];
    const char *host_arg = list ? (n_args == 2 ? args[1] : NULL) : (n_args == 3 ? args[2] : NULL);
    if (!host_arg)
        host_arg = c->cfg->hosts[0].name;
    char *host = vn_jid_prep_domain(host_arg);
    if (!host || !vn_config_host(c->cfg, host)) {
        fprintf(stderr, _("vestnikctl: %s is not a host in %s\n"), host_arg, c->cfg->path);
        free(host);
        return EXIT_FAIL;
    }
    if (name && !botapi_username_valid(name)) {
        fprintf(stderr,
                _("vestnikctl: %s is not a bot username (5 to 32 of a-z, 0-9 and _, ending in "
                  "\"bot\")\n"),
                name);
        free(host);
        return EXIT_USAGE;
    }
    const char *fields[] = {"bot", op, host, name};
    vn_buf answer;
    const char *body;
    int rc = EXIT_FAIL;
    vn_buf_init(&answer);
    switch (admin_request(c->cfg->admin_socket, fields, name ? 4 : 3, &answer)) {
    case ADMIN_ANSWERED:
        if (admin_answer(&answer, &body) == 0) {
            fputs(body, stdout);
            rc = EXIT_OK;
        }
        break;
    case ADMIN_NOT_RUNNING: rc = bot_direct(c->cfg, op, host, name); break;
    case ADMIN_FAILED: break;
    }
    if (answer.data)
        explicit_bzero(answer.data, answer.len);
    vn_buf_free(&answer);
    free(host);
    return rc;
}

/* ---- services of the services platform (modules/services/registry_store.h) ---- */

static bool service_print(const service_record *r, void *ud)
{
    printf("%s\t%s\t%s\t%s%s\tsent=%" PRIu64 " received=%" PRIu64 " refused=%" PRIu64
           " broadcasts=%" PRIu64 "\n",
           r->jid, r->category ? r->category : "-", r->name ? r->name : "-",
           r->verified ? "verified" : "unverified", r->suspended ? ",suspended" : "", r->sent,
           r->received, r->refused, r->broadcasts);
    return true;
}

/* The command on the store of a stopped server. */
static int services_direct(const vn_config *cfg, const char *op, const char *arg, const char *count)
{
    bool missing, list = strcmp(op, "list") == 0, found = false;
    vn_store *store = store_open(cfg, false, &missing);
    int rc = EXIT_OK;

    if (!store)
        return missing && list ? EXIT_OK : EXIT_FAIL;
    for (size_t i = 0; i < cfg->n_hosts && rc == EXIT_OK; i++) {
        const char *host = cfg->hosts[i].name;
        service_record r;
        if (list) {
            if ((!arg || strcmp(arg, host) == 0) &&
                service_record_foreach(store, host, service_print, NULL) == VN_STORE_ERROR)
                rc = EXIT_FAIL;
            continue;
        }
        int got = service_record_get(store, host, arg, &r);
        if (got == VN_STORE_ERROR)
            rc = EXIT_FAIL;
        if (got != VN_STORE_OK)
            continue;
        found = true;
        if (strcmp(op, "log") == 0) {
            vn_buf lines;
            vn_buf_init(&lines);
            long long limit = count ? strtoll(count, NULL, 10) : 50;
            if (service_log_lines(store, host, arg, limit > 0 ? (size_t)limit : 50, &lines) ==
                VN_STORE_OK)
                fputs(lines.data ? lines.data : "", stdout);
            else
                rc = EXIT_FAIL;
            vn_buf_free(&lines);
            service_record_free(&r);
            continue;
        }
        if (strcmp(op, "verify") == 0 || strcmp(op, "unverify") == 0)
            r.verified = strcmp(op, "verify") == 0;
        else
            r.suspended = strcmp(op, "suspend") == 0;
        if (service_record_put(store, host, &r) != VN_STORE_OK)
            rc = EXIT_FAIL;
        service_record_free(&r);
    }
    vn_store_close(store);
    if (!list && !found && rc == EXIT_OK) {
        fprintf(stderr, _("vestnikctl: no such service %s\n"), arg);
        rc = EXIT_FAIL;
    }
    return rc;
}

/* services list [HOST], services log SERVICE [N],
 * services verify|unverify|suspend|resume SERVICE. */
static int cmd_services(ctl *c, char **args, int n_args)
{
    static const char *const ops[] = {"list", "log", "verify", "unverify", "suspend", "resume"};
    const char *op = args[0];
    bool known = false, list = strcmp(op, "list") == 0;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        known = known || strcmp(op, ops[i]) == 0;
    if (!known)
        return usage_error(_("unknown services command: "), op);
    bool log = strcmp(op, "log") == 0;
    if (list ? n_args > 2 : log ? n_args < 2 || n_args > 3 : n_args != 2)
        return usage_error(_("wrong number of arguments for services "), op);
    const char *arg = n_args >= 2 ? args[1] : NULL;
    const char *count = n_args == 3 ? args[2] : NULL;
    const char *fields[] = {"services", op, arg, count};
    vn_buf answer;
    const char *body;
    int rc = EXIT_FAIL;
    vn_buf_init(&answer);
    switch (admin_request(c->cfg->admin_socket, fields, count ? 4 : arg ? 3 : 2, &answer)) {
    case ADMIN_ANSWERED:
        if (admin_answer(&answer, &body) == 0) {
            fputs(body, stdout);
            rc = EXIT_OK;
        }
        break;
    case ADMIN_NOT_RUNNING: rc = services_direct(c->cfg, op, arg, count); break;
    case ADMIN_FAILED: break;
    }
    vn_buf_free(&answer);
    return rc;
}

/* ---- the server ---- */

static int server_request(ctl *c, const char *const *fields, int n_fields)
{
    const char *path = c->cfg->admin_socket;
    const char *body;
    vn_buf answer;
    int rc = EXIT_FAIL;

    vn_buf_init(&answer);
    switch (admin_request(path, fields, n_fields, &answer)) {
    case ADMIN_ANSWERED:
        if (admin_answer(&answer, &body) == 0) {
            fputs(body, stdout);
            rc = EXIT_OK;
        }
        break;
    case ADMIN_NOT_RUNNING:
        fprintf(stderr, _("vestnikctl: vestnikd is not running (no admin socket at %s)\n"), path);
        rc = EXIT_NOT_RUNNING;
        break;
    case ADMIN_FAILED: break;
    }
    vn_buf_free(&answer);
    return rc;
}

static int server_command(ctl *c, const char *command)
{
    return server_request(c, &command, 1);
}

static int cmd_status(ctl *c, char **args, int n_args)
{
    return server_command(c, "status");
}

static int cmd_reload(ctl *c, char **args, int n_args)
{
    return server_command(c, "reload");
}

/* cluster status: the running server's view of the cluster (cluster.h). */
static int cmd_cluster(ctl *c, char **args, int n_args)
{
    if (strcmp(args[0], "status") != 0)
        return usage_error(_("unknown cluster command: "), args[0]);
    const char *fields[] = {"cluster", "status"};
    return server_request(c, fields, 2);
}

/* ---- coturn beside vestnik (doc/voice.md) ---- */

/* modules.extdisco's option key as a string, or fallback when unset. */
static const char *extdisco_option(const vn_config *cfg, const char *key, const char *fallback)
{
    const vn_module_conf *mod = vn_config_module(cfg, "extdisco");
    const vn_conf_node *n = mod && mod->options ? vn_conf_map_get(mod->options, key) : NULL;
    return n && n->type == VN_NODE_SCALAR && !vn_conf_is_null(n) ? n->value : fallback;
}

typedef struct turn_options {
    long relay_min, relay_max;
    const char *listening_ip;
    const char *external_ip;
    bool allow_loopback_peers;
    const char *file;
} turn_options;

static bool parse_port_range(const char *text, long *min, long *max)
{
    char *end;
    *min = strtol(text, &end, 10);
    if (*end != '-')
        return false;
    *max = strtol(end + 1, &end, 10);
    return *end == '\0' && *min >= 1024 && *max <= 65535 && *min < *max;
}

static int parse_turn_options(char **args, int n_args, turn_options *o)
{
    *o = (turn_options){.relay_min = 49152, .relay_max = 65535};
    for (int i = 0; i < n_args; i++) {
        const char *a = args[i];
        if (strncmp(a, "--relay-ports=", 14) == 0) {
            if (!parse_port_range(a + 14, &o->relay_min, &o->relay_max))
                return usage_error(_("--relay-ports wants MIN-MAX within 1024-65535: "), a + 14);
        } else if (strncmp(a, "--listening-ip=", 15) == 0) {
            o->listening_ip = a + 15;
        } else if (strncmp(a, "--external-ip=", 14) == 0) {
            o->external_ip = a + 14;
        } else if (strcmp(a, "--allow-loopback-peers") == 0) {
            o->allow_loopback_peers = true;
        } else if (a[0] == '-' || o->file) {
            return usage_error(_("unknown turn-config argument: "), a);
        } else {
            o->file = a;
        }
    }
    return EXIT_OK;
}

/* The certificate coturn offers on turns: the first host's, as vestnikd
 * uses it (configured, or generated under data_dir/certs). */
static void turn_certificate(const vn_config *cfg, char **cert, char **key)
{
    const vn_host_conf *host = &cfg->hosts[0];
    if (host->cert_file) {
        *cert = vn_strdup(host->cert_file);
        *key = vn_strdup(host->key_file);
    } else if (cfg->tls_cert) {
        *cert = vn_strdup(cfg->tls_cert);
        *key = vn_strdup(cfg->tls_key);
    } else {
        *cert = vn_asprintf("%s/certs/%s.crt", cfg->data_dir, host->name);
        *key = vn_asprintf("%s/certs/%s.key", cfg->data_dir, host->name);
    }
}

static void write_turn_config(const vn_config *cfg, const turn_options *o, vn_buf *out)
{
    const char *secret = extdisco_option(cfg, "turn_secret", "");
    const char *turns_port = extdisco_option(cfg, "turns_port", "5349");

    vn_buf_printf(out,
                  "# coturn configuration written by `vestnikctl turn-config` from %s:\n"
                  "# TURN credentials are the ones mod_extdisco hands out (TURN REST,\n"
                  "# modules.extdisco.turn_secret). Write it again after changing that.\n"
                  "use-auth-secret\nstatic-auth-secret=%s\nrealm=%s\n"
                  "listening-port=%s\nmin-port=%ld\nmax-port=%ld\n",
                  cfg->path, secret, cfg->hosts[0].name, extdisco_option(cfg, "turn_port", "3478"),
                  o->relay_min, o->relay_max);
    if (o->listening_ip)
        vn_buf_printf(out, "listening-ip=%s\nrelay-ip=%s\n", o->listening_ip, o->listening_ip);
    if (o->external_ip)
        vn_buf_printf(out, "external-ip=%s\n", o->external_ip);
    if (strcmp(turns_port, "0") == 0) {
        vn_buf_append_str(out, "no-tls\nno-dtls\n");
    } else {
        char *cert, *key;
        turn_certificate(cfg, &cert, &key);
        vn_buf_printf(out, "tls-listening-port=%s\ncert=%s\npkey=%s\nno-tlsv1\nno-tlsv1_1\n",
                      turns_port, cert, key);
        free(cert);
        free(key);
    }
    vn_buf_append_str(out,
                      "fingerprint\nno-cli\nno-multicast-peers\nno-tcp-relay\nstale-nonce=600\n"
                      "no-rfc5780\nno-stun-backward-compatibility\n"
                      "response-origin-only-with-rfc5780\n"
                      "# Relays only to public addresses: never into this network.\n"
                      "denied-peer-ip=0.0.0.0-0.255.255.255\n"
                      "denied-peer-ip=10.0.0.0-10.255.255.255\n"
                      "denied-peer-ip=100.64.0.0-100.127.255.255\n"
                      "denied-peer-ip=169.254.0.0-169.254.255.255\n"
                      "denied-peer-ip=172.16.0.0-172.31.255.255\n"
                      "denied-peer-ip=192.168.0.0-192.168.255.255\n"
                      "denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n"
                      "denied-peer-ip=fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n");
    if (o->allow_loopback_peers)
        vn_buf_append_str(out, "# Tests only: both peers on this machine.\nallow-loopback-peers\n");
}

/* turn-config [--relay-ports=MIN-MAX] [--listening-ip=IP] [--external-ip=IP]
 * [--allow-loopback-peers] [FILE] */
static int cmd_turn_config(ctl *c, char **args, int n_args)
{
    turn_options o;
    int rc = parse_turn_options(args, n_args, &o);
    if (rc != EXIT_OK)
        return rc;
    if (!vn_config_module(c->cfg, "extdisco") || !*extdisco_option(c->cfg, "turn_secret", "")) {
        fprintf(stderr,
                _("vestnikctl: %s sets no modules.extdisco.turn_secret: set it (for example to "
                  "the output of `openssl rand -hex 32`) and run turn-config again\n"),
                c->cfg->path);
        return EXIT_FAIL;
    }
    vn_buf out;
    vn_buf_init(&out);
    write_turn_config(c->cfg, &o, &out);
    rc = EXIT_OK;
    if (!o.file) {
        fwrite(out.data, 1, out.len, stdout);
    } else {
        /* It holds the secret: not readable by everyone. */
        int fd = open(o.file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        bool ok = f && fwrite(out.data, 1, out.len, f) == out.len;
        if (f)
            ok = fclose(f) == 0 && ok;
        else if (fd >= 0)
            close(fd);
        if (!ok) {
            fprintf(stderr, _("vestnikctl: cannot write %s: %s\n"), o.file, strerror(errno));
            rc = EXIT_FAIL;
        }
    }
    explicit_bzero(out.data, out.len);
    vn_buf_free(&out);
    return rc;
}

/* vestnikd from the same directory as this program (a build tree, or the
 * same prefix), else from the configured sbindir. */
static char *vestnikd_path(void)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);

    if (len > 0) {
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            char *sibling = vn_asprintf("%s/vestnikd", self);
            if (access(sibling, X_OK) == 0)
                return sibling;
            free(sibling);
        }
    }
    return vn_strdup(VN_SBINDIR "/vestnikd");
}

static int cmd_check_config(ctl *c, char **args, int n_args)
{
    char *daemon = vestnikd_path();

    fflush(NULL);
    execl(daemon, "vestnikd", "--check-config", "-c", c->config_path, (char *)NULL);
    fprintf(stderr, _("vestnikctl: cannot run %s: %s\n"), daemon, strerror(errno));
    free(daemon);
    return EXIT_FAIL;
}

/* ---- the store itself ---- */

static int cmd_migrate(ctl *c, char **args, int n_args)
{
    vn_store_options opts = store_options(c->cfg, NULL);
    vn_buf report;

    if (strcmp(c->cfg->store_backend, "postgresql") != 0) {
        printf(_("the %s store has no schema to migrate\n"), c->cfg->store_backend);
        return EXIT_OK;
    }
    vn_buf_init(&report);
    int rc = vn_store_pg_migrate(&opts, &report);
    if (rc == 0)
        printf("%s\n", report.data);
    else
        fprintf(stderr, "vestnikctl: %s\n", report.data ? report.data : "");
    vn_buf_free(&report);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

/* [--format store|xep0227] FILE: whether the format is XEP-0227, with
 * *file the FILE; -1 after a usage error. */
static int format_xep0227(char **args, int n_args, const char **file)
{
    *file = args[n_args - 1];
    if (n_args == 1)
        return 0;
    if (n_args != 3 || strcmp(args[0], "--format") != 0) {
        usage_error(_("expected [--format store|xep0227] FILE, got "), args[0]);
        return -1;
    }
    if (strcmp(args[1], "xep0227") == 0)
        return 1;
    if (strcmp(args[1], "store") == 0)
        return 0;
    usage_error(_("unknown format: "), args[1]);
    return -1;
}

/* The configured hosts' names, for the XEP-0227 files. */
static const char **host_names(const vn_config *cfg)
{
    const char **names = vn_alloc((cfg->n_hosts + 1) * sizeof *names);
    for (size_t i = 0; i < cfg->n_hosts; i++)
        names[i] = cfg->hosts[i].name;
    return names;
}

/* export [--format F] FILE ("-": standard output): the store of a stopped
 * or running server (both backends read one consistent snapshot). */
static int cmd_export(ctl *c, char **args, int n_args)
{
    const char *file;
    int xep0227 = format_xep0227(args, n_args, &file);
    if (xep0227 < 0)
        return EXIT_USAGE;
    bool to_stdout = strcmp(file, "-") == 0, missing;
    FILE *out = to_stdout ? stdout : fopen(file, "wx");
    vn_buf err;

    if (!out) {
        fprintf(stderr, _("vestnikctl: cannot create %s: %s\n"), file, strerror(errno));
        return EXIT_FAIL;
    }
    vn_store *store = store_open(c->cfg, false, &missing);
    if (missing)
        fprintf(stderr, _("vestnikctl: there is no store in %s yet\n"), c->cfg->data_dir);
    vn_buf_init(&err);
    const char **hosts = host_names(c->cfg);
    int rc = !store    ? -1
             : xep0227 ? vn_xep0227_export(store, hosts, c->cfg->n_hosts, out, &err)
                       : vn_store_export(store, out, &err);
    free(hosts);
    if (store && rc < 0)
        fprintf(stderr, "vestnikctl: export: %s\n", err.data);
    vn_buf_free(&err);
    vn_store_close(store);
    if (!to_stdout && fclose(out) != 0)
        rc = -1;
    if (rc < 0 && !to_stdout)
        unlink(file);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

/* import [--format F] FILE: into the store of a stopped server (a running
 * one would hand out archive ids the import brings). */
static int cmd_import(ctl *c, char **args, int n_args)
{
    const char *status = "status", *file;
    vn_buf answer, err;
    bool missing;
    size_t users = 0;

    int xep0227 = format_xep0227(args, n_args, &file);
    if (xep0227 < 0)
        return EXIT_USAGE;
    vn_buf_init(&answer);
    admin_outcome running = admin_request(c->cfg->admin_socket, &status, 1, &answer);
    vn_buf_free(&answer);
    if (running != ADMIN_NOT_RUNNING) {
        fputs(_("vestnikctl: import: stop vestnikd first\n"), stderr);
        return EXIT_FAIL;
    }
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!in) {
        fprintf(stderr, _("vestnikctl: cannot open %s: %s\n"), file, strerror(errno));
        return EXIT_FAIL;
    }
    vn_store *store = store_open(c->cfg, true, &missing);
    /* XEP-0227's accounts come item by item: grouped, a commit each
     * thousand writes (store_xep0227.c) rather than each write. */
    uv_loop_t loop;
    bool grouped = xep0227 && store && uv_loop_init(&loop) == 0;
    if (grouped && vn_store_attach_loop(store, &loop) != 0) {
        uv_loop_close(&loop);
        grouped = false;
    }
    vn_buf_init(&err);
    const char **hosts = host_names(c->cfg);
    int rc = !store    ? -1
             : xep0227 ? vn_xep0227_import(store, hosts, c->cfg->n_hosts, c->cfg->scram_iterations,
                                           in, in == stdin ? "-" : file, &users, &err)
                       : vn_store_import(store, in, &err);
    free(hosts);
    if (store && rc < 0)
        fprintf(stderr, "vestnikctl: import: %s\n", err.data);
    if (xep0227 && store)
        printf(ngettext("%zu account imported\n", "%zu accounts imported\n", users), users);
    vn_buf_free(&err);
    vn_store_close(store);
    if (grouped) { /* the batcher's handles close on the loop */
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    if (in != stdin)
        fclose(in);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

static const ctl_command commands[] = {
    {"adduser", 1, 2, true, cmd_adduser},
    {"passwd", 1, 2, true, cmd_passwd},
    {"deluser", 1, 1, true, cmd_deluser},
    {"listusers", 0, 1, true, cmd_listusers},
    {"status", 0, 0, true, cmd_status},
    {"reload", 0, 0, true, cmd_reload},
    {"turn-config", 0, 5, true, cmd_turn_config},
    {"check-config", 0, 0, false, cmd_check_config},
    {"migrate", 0, 0, true, cmd_migrate}, /* the store's own: schema, dump, load */
    {"export", 1, 3, true, cmd_export},
    {"import", 1, 3, true, cmd_import},
    {"bot", 1, 3, true, cmd_bot},
    {"services", 1, 3, true, cmd_services},
    {"cluster", 1, 1, true, cmd_cluster},
};

static int usage_error(const char *problem, const char *what)
{
    if (problem)
        fprintf(stderr, "vestnikctl: %s%s\n", problem, what);
    fputs(_("Try 'vestnikctl --help'.\n"), stderr);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    ctl c = {.config_path = VN_SYSCONFDIR "/vestnik.yaml"};
    int opt;

    vn_i18n_setup_cli(NULL);

    while ((opt = getopt_long(argc, argv, "+c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': c.config_path = optarg; break;
        case 'h': usage(); return EXIT_OK;
        case 'V': printf("vestnikctl %s\n", PACKAGE_VERSION); return EXIT_OK;
        default: return usage_error(NULL, NULL); /* getopt said what is wrong */
        }
    }
    if (optind >= argc)
        return usage_error(_("no command given"), "");

    const char *name = argv[optind];
    char **args = argv + optind + 1;
    int n_args = argc - optind - 1;
    const ctl_command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd)
        return usage_error(_("unknown command: "), name);
    if (n_args < cmd->min_args || n_args > cmd->max_args)
        return usage_error(_("wrong number of arguments for "), name);

    signal(SIGPIPE, SIG_IGN);
    vn_log_setup(VN_LOG_WARN, false, "vestnikctl");
    if (cmd->needs_config) {
        vn_buf err;
        vn_buf_init(&err);
        c.cfg = vn_config_load(c.config_path, &err);
        if (!c.cfg) {
            fprintf(stderr, "vestnikctl: %s", err.data ? err.data : _("cannot load the config\n"));
            vn_buf_free(&err);
            return EXIT_FAIL;
        }
        vn_buf_free(&err);
        if (c.cfg->locale_dir) /* where the configuration keeps the catalogs */
            vn_i18n_setup_cli(c.cfg->locale_dir);
    }
    int rc = cmd->run(&c, args, n_args);
    vn_config_free(c.cfg);
    return rc;
}
