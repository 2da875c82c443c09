/*
 * loadgen.c - the load generator behind `make bench` (issue 7): one
 * program that drives vestnik, Prosody or ejabberd alike through their
 * c2s ports, so the figures compare servers and not clients.
 *
 * Usage: loadgen [options] SCENARIO
 *   register  create accounts prefix0..prefixN-1 with in-band registration
 *   login     N logins at once (at most -c in flight): logins/s, server CPU
 *   idle      N sessions logged in and left idle: server RSS per session
 *   chat      N/2 pairs exchanging one-to-one messages for -d seconds, as
 *             fast as they are delivered (-w in flight per sender) or at
 *             -r messages/s in all: delivered/s, latency percentiles, CPU
 *   muc       N occupants join -R room; occupant 0 sends groupchat
 *             messages with -w in flight: deliveries/s and latency
 * Every connection uses STARTTLS and SASL (-m scram or plain), binds,
 * sends initial presence and waits for the answer to a ping. Each message
 * body carries the sender's index and its send time (CLOCK_MONOTONIC), so
 * latency is from the sender's write to the receiver's parse, client work
 * on both ends included.
 *
 * The last line printed is "RESULT scenario=... key=value ...", which
 * tests/bench/run-bench reads; the lines before are for people.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/err.h>

#include "loadgen.h"

#define MAX_FAILURE_KINDS 8

typedef enum { SC_REGISTER, SC_LOGIN, SC_IDLE, SC_CHAT, SC_MUC } scenario_kind;

typedef struct failure_kind {
    char *text;
    unsigned count;
} failure_kind;

static struct {
    lg_options opt;
    scenario_kind scenario;
    unsigned connections;
    unsigned concurrency; /* logins or registrations in flight */
    unsigned window;      /* messages in flight per sender */
    double rate;          /* messages/s in all; 0: as fast as delivered */
    double duration;      /* seconds measured */
    double warmup;        /* seconds before measuring */
    double timeout;       /* seconds a login phase may take */
    int server_pid;
} cfg = {
    .opt =
        {
            .address = "127.0.0.1",
            .port = 5222,
            .domain = "localhost",
            .prefix = "lg",
            .password = "loadgen-secret",
            .sources = 1,
            .mech = LG_MECH_SCRAM_SHA1,
            .body_bytes = 64,
        },
    .scenario = SC_LOGIN,
    .connections = 100,
    .concurrency = 200,
    .window = 8,
    .duration = 10,
    .warmup = 2,
    .timeout = 300,
};

static lg_run run;
static lg_conn *conns;

/* Progress of the current phase. */
static struct {
    unsigned started, online, registered, failed, joined;
    bool connecting; /* the login (or registration) phase is on */
    bool starting;   /* inside check_phase_end's loop */
    unsigned starts_owed;
    bool done;
    failure_kind failures[MAX_FAILURE_KINDS];
} phase;

/* Messages. */
static struct {
    bool sending;
    bool measuring;
    uint64_t delivered;       /* while measuring */
    uint64_t delivered_total; /* since the first send */
    uint64_t sent_total;
    uint64_t start_ns;    /* rate mode: when sending began */
    unsigned next_sender; /* rate mode: round robin */
    lg_latencies latencies;
    char room_jid[128];
} traffic;

static uv_timer_t phase_timer, rate_timer;

static void stop_loop(void)
{
    phase.done = true;
    uv_stop(run.loop);
}

static void note_failure(const char *text)
{
    for (int i = 0; i < MAX_FAILURE_KINDS; i++) {
        if (!phase.failures[i].text) {
            phase.failures[i].text = vn_strdup(text);
            phase.failures[i].count = 1;
            return;
        }
        if (strcmp(phase.failures[i].text, text) == 0) {
            phase.failures[i].count++;
            return;
        }
    }
}

static void start_next(bool register_only)
{
    if (phase.started < cfg.connections) {
        lg_conn *c = &conns[phase.started++];
        lg_conn_start(c, register_only);
    }
}

/* One connection finished: start the next. A connection that fails at
 * once inside start_next comes back here; the loop, not recursion, starts
 * its successor. */
static void check_phase_end(void)
{
    unsigned finished = phase.online + phase.registered + phase.failed;
    if (finished >= cfg.connections) {
        stop_loop();
        return;
    }
    phase.starts_owed++;
    if (phase.starting)
        return;
    phase.starting = true;
    while (phase.starts_owed > 0) {
        phase.starts_owed--;
        start_next(cfg.scenario == SC_REGISTER);
    }
    phase.starting = false;
}

static void ev_online(lg_conn *c)
{
    phase.online++;
    if (phase.connecting)
        check_phase_end();
}

static void ev_registered(lg_conn *c)
{
    phase.registered++;
    if (phase.connecting)
        check_phase_end();
}

/* After the login phase, a lost session counts against the run. */
static void ev_failed(lg_conn *c)
{
    note_failure(c->failure ? c->failure : "unknown");
    phase.failed++;
    if (phase.connecting)
        check_phase_end();
}

static void send_chat(lg_conn *c)
{
    char bare[160];
    snprintf(bare, sizeof bare, "%s@%s", c->partner->account, cfg.opt.domain);
    lg_conn_send_message(c, bare, "chat");
    traffic.sent_total++;
}

static void send_groupchat(lg_conn *c)
{
    lg_conn_send_message(c, traffic.room_jid, "groupchat");
    traffic.sent_total++;
}

static void ev_message(lg_conn *c, unsigned from_index, uint64_t sent_ns)
{
    if (from_index >= cfg.connections)
        return;
    traffic.delivered_total++;
    if (traffic.measuring) {
        traffic.delivered++;
        lg_latencies_add(&traffic.latencies, uv_hrtime() - sent_ns);
    }
    lg_conn *sender = &conns[from_index];
    if (cfg.scenario == SC_MUC) {
        /* A broadcast is complete once every occupant has it. */
        uint64_t complete = traffic.delivered_total / phase.joined;
        if (traffic.sending && traffic.sent_total - complete < cfg.window &&
            sender->state == LG_CONN_ONLINE)
            send_groupchat(sender);
        return;
    }
    if (sender->in_flight > 0)
        sender->in_flight--;
    if (traffic.sending && cfg.rate == 0 && sender->state == LG_CONN_ONLINE)
        send_chat(sender);
}

static void ev_joined(lg_conn *c)
{
    phase.joined++;
}

static const lg_events events = {
    .online = ev_online,
    .registered = ev_registered,
    .failed = ev_failed,
    .message = ev_message,
    .joined = ev_joined,
};

static void on_phase_timeout(uv_timer_t *t)
{
    stop_loop();
}

/* Run the loop until the phase ends or `seconds` pass. */
static void run_phase(double seconds)
{
    phase.done = false;
    uv_timer_start(&phase_timer, on_phase_timeout, (uint64_t)(seconds * 1000), 0);
    while (!phase.done)
        uv_run(run.loop, UV_RUN_DEFAULT);
    uv_timer_stop(&phase_timer);
}

static double seconds_since(uint64_t ns)
{
    return (double)(uv_hrtime() - ns) / 1e9;
}

/* Open every connection, at most cfg.concurrency in flight. */
static double connect_all(bool register_only)
{
    memset(&phase, 0, sizeof phase);
    uint64_t start = uv_hrtime();
    unsigned first = cfg.concurrency < cfg.connections ? cfg.concurrency : cfg.connections;
    phase.connecting = true;
    for (unsigned i = 0; i < first; i++)
        start_next(register_only);
    run_phase(cfg.timeout);
    phase.connecting = false;
    return seconds_since(start);
}

static void print_failures(void)
{
    for (int i = 0; i < MAX_FAILURE_KINDS && phase.failures[i].text; i++)
        fprintf(stderr, "  %u x %s\n", phase.failures[i].count, phase.failures[i].text);
}

/* The first kind of failure, with spaces turned to '_' for the RESULT line. */
static const char *first_failure(void)
{
    static char text[128];
    if (!phase.failures[0].text)
        return "none";
    snprintf(text, sizeof text, "%s", phase.failures[0].text);
    for (char *p = text; *p; p++)
        if (*p == ' ' || *p == '=')
            *p = '_';
    return text;
}

static void on_rate_tick(uv_timer_t *t)
{
    if (!traffic.sending)
        return;
    uint64_t due = (uint64_t)(cfg.rate * seconds_since(traffic.start_ns));
    while (traffic.sent_total < due) {
        lg_conn *c = &conns[traffic.next_sender];
        traffic.next_sender = (traffic.next_sender + 1) % cfg.connections;
        if (c->state == LG_CONN_ONLINE)
            send_chat(c);
        else
            traffic.sent_total++; /* a lost sender's share is skipped */
    }
    lg_run_flush(&run);
}

static void wait_seconds(double seconds)
{
    run_phase(seconds);
}

static void report_traffic(const char *scenario, double elapsed, const lg_proc_sample *before,
                           const lg_proc_sample *after)
{
    double per_s = (double)traffic.delivered / elapsed;
    double cpu = after->cpu_seconds - before->cpu_seconds;
    double cpu_per_1000 = traffic.delivered ? cpu * 1000.0 * 1000.0 / (double)traffic.delivered : 0;
    double p50 = lg_latencies_quantile(&traffic.latencies, 0.50);
    double p99 = lg_latencies_quantile(&traffic.latencies, 0.99);
    double p999 = lg_latencies_quantile(&traffic.latencies, 0.999);
    fprintf(stderr,
            "%s: %.0f messages/s delivered over %.1f s, latency p50 %.3f ms p99 %.3f ms "
            "p99.9 %.3f ms, server CPU %.1f ms per 1000 messages, %lu bounced, %u sessions "
            "lost\n",
            scenario, per_s, elapsed, p50, p99, p999, cpu_per_1000, run.bounced, phase.failed);
    print_failures();
    printf("RESULT scenario=%s sessions=%u delivered_per_s=%.1f p50_ms=%.3f p99_ms=%.3f "
           "p999_ms=%.3f cpu_ms_per_1000=%.2f bounced=%lu lost=%u rate=%.1f window=%u\n",
           scenario, phase.online, per_s, p50, p99, p999, cpu_per_1000, run.bounced, phase.failed,
           cfg.rate, cfg.window);
}

/* Send until the measured window closes: warm-up, then duration. */
static void run_traffic(const char *scenario, void (*kick_off)(void))
{
    traffic.sending = true;
    traffic.start_ns = uv_hrtime();
    kick_off();
    lg_run_flush(&run);
    wait_seconds(cfg.warmup);
    lg_proc_sample before, after;
    lg_proc_sample_take(cfg.server_pid, &before);
    traffic.measuring = true;
    wait_seconds(cfg.duration);
    traffic.measuring = false;
    lg_proc_sample_take(cfg.server_pid, &after);
    traffic.sending = false;
    uv_timer_stop(&rate_timer);
    report_traffic(scenario, (double)(after.at_ns - before.at_ns) / 1e9, &before, &after);
}

static void kick_off_chat(void)
{
    if (cfg.rate > 0) {
        uv_timer_start(&rate_timer, on_rate_tick, 1, 1);
        return;
    }
    for (unsigned i = 0; i < cfg.connections; i++)
        for (unsigned w = 0; w < cfg.window && conns[i].state == LG_CONN_ONLINE; w++)
            send_chat(&conns[i]);
}

static void kick_off_muc(void)
{
    for (unsigned w = 0; w < cfg.window; w++)
        send_groupchat(&conns[0]);
}

static int scenario_chat(void)
{
    if (cfg.opt.accounts < cfg.connections || cfg.connections % 2) {
        fprintf(stderr, "chat needs an even number of connections, one account each\n");
        return 2;
    }
    for (unsigned i = 0; i < cfg.connections; i++)
        conns[i].partner = &conns[i ^ 1u];
    connect_all(false);
    if (phase.online < cfg.connections) {
        fprintf(stderr, "chat: only %u of %u sessions online\n", phase.online, cfg.connections);
        print_failures();
        return 1;
    }
    phase.failed = 0;
    run_traffic(cfg.rate > 0 ? "chat_rate" : "chat_max", kick_off_chat);
    return 0;
}

static void on_join_tick(uv_timer_t *t)
{
}

/* Until `wanted` occupants joined, a join was refused, or the timeout. */
static void wait_for_joins(unsigned wanted, uint64_t start)
{
    uv_timer_start(&phase_timer, on_join_tick, 100, 100);
    while (phase.joined < wanted && run.bounced == 0 && seconds_since(start) < cfg.timeout)
        uv_run(run.loop, UV_RUN_ONCE);
    uv_timer_stop(&phase_timer);
}

static int scenario_muc(void)
{
    connect_all(false);
    if (phase.online < cfg.connections) {
        fprintf(stderr, "muc: only %u of %u sessions online\n", phase.online, cfg.connections);
        print_failures();
        return 1;
    }
    snprintf(traffic.room_jid, sizeof traffic.room_jid, "%s", cfg.opt.room);
    uint64_t start = uv_hrtime();
    /* The first occupant creates the room; the others join once it exists. */
    char presence[256];
    snprintf(presence, sizeof presence,
             "<presence to='%s/n0'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
             cfg.opt.room);
    lg_conn_send(&conns[0], presence, strlen(presence));
    lg_run_flush(&run);
    wait_for_joins(1, start);
    /* Accept the default configuration (an instant room, XEP-0045 10.1.2)
     * for servers that keep a new room locked until its owner does. */
    char instant[256];
    snprintf(instant, sizeof instant,
             "<iq type='set' id='instant' to='%s'><query "
             "xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
             "type='submit'/></query></iq>",
             cfg.opt.room);
    lg_conn_send(&conns[0], instant, strlen(instant));
    lg_run_flush(&run);
    wait_seconds(0.5);
    for (unsigned i = 1; i < cfg.connections; i++) {
        snprintf(presence, sizeof presence,
                 "<presence to='%s/n%u'><x xmlns='http://jabber.org/protocol/muc'>"
                 "<history maxstanzas='0'/></x></presence>",
                 cfg.opt.room, i);
        lg_conn_send(&conns[i], presence, strlen(presence));
    }
    lg_run_flush(&run);
    wait_for_joins(cfg.connections, start);
    double join_s = seconds_since(start);
    fprintf(stderr, "muc: %u occupants joined in %.1f s\n", phase.joined, join_s);
    if (phase.joined < cfg.connections) {
        print_failures();
        printf("RESULT scenario=muc occupants=%u error=not_all_joined refused=%lu\n", phase.joined,
               run.bounced);
        return 1;
    }
    /* Let the presence flood drain before measuring. */
    wait_seconds(1);
    run_traffic("muc", kick_off_muc);
    return 0;
}

static int scenario_sessions(void)
{
    lg_proc_sample before, after;
    lg_proc_sample_take(cfg.server_pid, &before);
    double elapsed = connect_all(cfg.scenario == SC_REGISTER);
    if (cfg.scenario == SC_REGISTER) {
        fprintf(stderr, "register: %u accounts in %.1f s, %u failed\n", phase.registered, elapsed,
                phase.failed);
        print_failures();
        printf("RESULT scenario=register accounts=%u failed=%u\n", phase.registered, phase.failed);
        return phase.failed ? 1 : 0;
    }
    if (cfg.scenario == SC_LOGIN) {
        lg_proc_sample_take(cfg.server_pid, &after);
        double per_s = phase.online / elapsed;
        double cpu_ms =
            phase.online ? (after.cpu_seconds - before.cpu_seconds) * 1000.0 / phase.online : 0;
        fprintf(stderr,
                "login: %u sessions in %.2f s (%.0f/s), server CPU %.2f ms per login, "
                "%u failed\n",
                phase.online, elapsed, per_s, cpu_ms, phase.failed);
        print_failures();
        printf("RESULT scenario=login sessions=%u logins_per_s=%.1f cpu_ms_per_login=%.3f "
               "failed=%u first_failure=%s\n",
               phase.online, per_s, cpu_ms, phase.failed, first_failure());
        return 0;
    }
    /* idle: let the server settle (garbage collectors, freed handshake buffers) */
    wait_seconds(3);
    lg_proc_sample_take(cfg.server_pid, &after);
    double kib = phase.online ? (double)(after.rss_kib - before.rss_kib) / phase.online : 0;
    fprintf(stderr,
            "idle: %u sessions in %.1f s; server RSS %ld -> %ld KiB, %.2f KiB per session; "
            "%u failed\n",
            phase.online, elapsed, before.rss_kib, after.rss_kib, kib, phase.failed);
    print_failures();
    printf("RESULT scenario=idle sessions=%u rss_kib_per_session=%.2f rss_before_kib=%ld "
           "rss_after_kib=%ld failed=%u first_failure=%s\n",
           phase.online, kib, before.rss_kib, after.rss_kib, phase.failed, first_failure());
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen [options] register|login|idle|chat|muc\n"
            "  -a ADDRESS   server address (127.0.0.1)\n"
            "  -p PORT      c2s port with STARTTLS (5222)\n"
            "  -D DOMAIN    XMPP domain (localhost)\n"
            "  -u PREFIX    account localparts PREFIX0, PREFIX1, ... (lg)\n"
            "  -P PASSWORD  every account's password (loadgen-secret)\n"
            "  -n N         connections (100)\n"
            "  -A N         accounts; connection i uses account i%%N, resource r(i/N) (N=-n)\n"
            "  -c N         logins in flight at once (200)\n"
            "  -s N         source addresses 127.0.0.1..127.0.0.N (1)\n"
            "  -m MECH      scram (SCRAM-SHA-1) or plain (scram)\n"
            "  -d SECONDS   measured traffic (10), after -W SECONDS of warm-up (2)\n"
            "  -r RATE      messages/s in all; 0: as fast as delivered (0)\n"
            "  -w N         messages in flight per sender when -r is 0 (8)\n"
            "  -b BYTES     padding in each body (64)\n"
            "  -R ROOM      room JID for muc (bench@conference.localhost)\n"
            "  -x PID       server process: its RSS and CPU time are reported\n"
            "  -t SECONDS   longest a login phase may take (300)\n");
}

static int parse_args(int argc, char **argv)
{
    int opt;
    cfg.opt.room = "bench@conference.localhost";
    while ((opt = getopt(argc, argv, "a:p:D:u:P:n:A:c:s:m:d:W:r:w:b:R:x:t:h")) != -1) {
        switch (opt) {
        case 'a': cfg.opt.address = optarg; break;
        case 'p': cfg.opt.port = atoi(optarg); break;
        case 'D': cfg.opt.domain = optarg; break;
        case 'u': cfg.opt.prefix = optarg; break;
        case 'P': cfg.opt.password = optarg; break;
        case 'n': cfg.connections = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'A': cfg.opt.accounts = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'c': cfg.concurrency = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': cfg.opt.sources = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'm':
            if (strcmp(optarg, "plain") == 0)
                cfg.opt.mech = LG_MECH_PLAIN;
            else if (strcmp(optarg, "scram") == 0)
                cfg.opt.mech = LG_MECH_SCRAM_SHA1;
            else
                return -1;
            break;
        case 'd': cfg.duration = atof(optarg); break;
        case 'W': cfg.warmup = atof(optarg); break;
        case 'r': cfg.rate = atof(optarg); break;
        case 'w': cfg.window = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'b': cfg.opt.body_bytes = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'R': cfg.opt.room = optarg; break;
        case 'x': cfg.server_pid = atoi(optarg); break;
        case 't': cfg.timeout = atof(optarg); break;
        default: return -1;
        }
    }
    if (optind != argc - 1)
        return -1;
    static const char *const names[] = {"register", "login", "idle", "chat", "muc"};
    for (int i = 0; i < 5; i++)
        if (strcmp(argv[optind], names[i]) == 0) {
            cfg.scenario = (scenario_kind)i;
            break;
        } else if (i == 4) {
            return -1;
        }
    if (cfg.connections == 0 || cfg.concurrency == 0 || cfg.window == 0 || cfg.opt.sources == 0 ||
        cfg.opt.sources > 254)
        return -1;
    if (cfg.opt.accounts == 0)
        cfg.opt.accounts = cfg.connections;
    return 0;
}

/* Two descriptors per connection would do; take what the hard limit allows. */
static void raise_file_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < cfg.connections + 64)
        fprintf(stderr, "loadgen: RLIMIT_NOFILE is %lu, below %u connections\n",
                (unsigned long)limit.rlim_cur, cfg.connections);
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        usage();
        return 2;
    }
    raise_file_limit();
    run.loop = uv_default_loop();
    run.opt = &cfg.opt;
    run.ev = &events;
    vn_buf_init(&run.scratch);
    run.tls = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(run.tls, TLS1_2_VERSION);
    SSL_CTX_set_verify(run.tls, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(run.tls, SSL_MODE_RELEASE_BUFFERS);
    lg_run_flusher_init(&run);
    uv_timer_init(run.loop, &phase_timer);
    uv_timer_init(run.loop, &rate_timer);

    conns = vn_alloc(cfg.connections * sizeof *conns);
    for (unsigned i = 0; i < cfg.connections; i++) {
        conns[i].run = &run;
        conns[i].index = i;
    }
    int status;
    switch (cfg.scenario) {
    case SC_CHAT: status = scenario_chat(); break;
    case SC_MUC: status = scenario_muc(); break;
    default: status = scenario_sessions(); break;
    }
    fflush(stdout);

    for (unsigned i = 0; i < phase.started; i++)
        lg_conn_close(&conns[i]);
    lg_run_flusher_close(&run);
    uv_close((uv_handle_t *)&phase_timer, NULL);
    uv_close((uv_handle_t *)&rate_timer, NULL);
    uv_run(run.loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < cfg.connections; i++)
        free(conns[i].failure);
    for (int i = 0; i < MAX_FAILURE_KINDS; i++)
        free(phase.failures[i].text);
    free(conns);
    lg_latencies_free(&traffic.latencies);
    lg_salted_cache_free(&run.salted);
    vn_buf_free(&run.scratch);
    SSL_CTX_free(run.tls);
    uv_loop_close(run.loop);
    return status;
}
