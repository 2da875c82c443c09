/*
 * loadgen.h - what the files of the load generator share.
 *
 * The load generator (tests/bench/loadgen.c) drives any XMPP server with
 * many client connections from one libuv loop: loadgen_conn.c is one
 * client connection (TCP, TLS through memory BIOs, the XMPP login and the
 * stanzas of a scenario), loadgen_sasl.c the client side of SASL PLAIN and
 * SCRAM-SHA-1, loadgen_stats.c latency percentiles and the server's
 * /proc figures. The scenarios live in loadgen.c.
 */
#ifndef VESTNIK_LOADGEN_H
#define VESTNIK_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "vestnik/stanza.h"
#include "vestnik/util.h"
#include "xml_parser.h"

/* ------------------------------------------------------------------ SASL */

typedef enum { LG_MECH_SCRAM_SHA1, LG_MECH_PLAIN } lg_mech;

/* The client's side of one SCRAM-SHA-1 exchange. */
typedef struct lg_scram {
    char client_nonce[32];
    char *client_first_bare; /* n=user,r=nonce */
    unsigned char server_signature[20];
} lg_scram;

/* The account's SaltedPassword is derived once per (account, salt,
 * iterations) and kept, as real clients keep it: a login then costs the
 * client a few HMACs, and the server's share of the work is what shows. */
typedef struct lg_salted_cache lg_salted_cache;

/* <auth/>'s base64 text for the mechanism: client-first for SCRAM (state
 * kept in sc), authzid-less PLAIN otherwise. Appends to out. */
void lg_sasl_initial(lg_mech mech, lg_scram *sc, const char *user, const char *password,
                     vn_buf *out);
/* Answer a SCRAM server-first (base64 text of <challenge/>): appends the
 * base64 client-final to out. cache may be NULL. 0, or -1 if the challenge
 * is malformed. */
int lg_scram_final(lg_scram *sc, lg_salted_cache **cache, const char *account, const char *password,
                   const char *challenge_b64, vn_buf *out);
/* Check server-final (base64 text of <success/>): 0 if v= matches. */
int lg_scram_verify(const lg_scram *sc, const char *success_b64);
void lg_scram_clear(lg_scram *sc);
void lg_salted_cache_free(lg_salted_cache **cache);

/* ------------------------------------------------------------ statistics */

/* Delivery latencies in microseconds, all kept, sorted when reported. */
typedef struct lg_latencies {
    uint32_t *samples_us;
    size_t count, cap;
    bool sorted;
} lg_latencies;

void lg_latencies_add(lg_latencies *l, uint64_t ns);
/* Sorts on the first call after an add. q in [0,1]; milliseconds. */
double lg_latencies_quantile(lg_latencies *l, double q);
void lg_latencies_free(lg_latencies *l);

/* One sample of the server process: resident memory and CPU time. */
typedef struct lg_proc_sample {
    long rss_kib;
    double cpu_seconds; /* user + system */
    uint64_t at_ns;     /* uv_hrtime() when taken */
} lg_proc_sample;

/* 0, or -1 if /proc/PID cannot be read (pid <= 0: zeroes, 0). */
int lg_proc_sample_take(int pid, lg_proc_sample *out);

/* ------------------------------------------------------------ connection */

typedef enum {
    LG_CONN_CONNECTING,
    LG_CONN_PLAIN_STREAM,  /* stream opened, waiting for features with STARTTLS */
    LG_CONN_TLS_HANDSHAKE, /* <proceed/> seen */
    LG_CONN_TLS_STREAM,    /* encrypted stream opened, waiting for features */
    LG_CONN_AUTHENTICATING,
    LG_CONN_REGISTERING, /* in-band registration (XEP-0077) in flight */
    LG_CONN_AUTHED_STREAM,
    LG_CONN_BINDING,
    LG_CONN_PRESENCE, /* presence sent, waiting for the ping that follows */
    LG_CONN_ONLINE,
    LG_CONN_DONE,   /* registration finished, or closed on purpose */
    LG_CONN_FAILED, /* see failure */
} lg_conn_state;

typedef struct lg_run lg_run;
typedef struct lg_conn lg_conn;

struct lg_conn {
    uv_tcp_t tcp;
    lg_run *run;
    unsigned index;
    lg_conn_state state;
    char account[64]; /* localpart */
    char resource[32];
    char full_jid[160];
    char *failure; /* why the connection failed, for the report */

    SSL *ssl;
    BIO *net_in;  /* bytes from the socket, read by OpenSSL */
    BIO *net_out; /* bytes OpenSSL wrote, for the socket */
    vn_xml_parser *parser;
    bool restart_stream;  /* after <proceed/> or <success/>: reset the parser */
    bool register_only;   /* create the account, then close */
    bool session_pending; /* the server wants a legacy session (RFC 3921) */
    bool closing;
    lg_scram scram;
    /* Stanzas written during this loop iteration, sent together (one TLS
     * record, one system call) when the iteration ends. */
    vn_buf pending_out;
    bool flush_queued;

    /* 1:1 chat */
    lg_conn *partner;
    unsigned in_flight; /* sent by this connection, not yet delivered */
    uint64_t sent, received;
    /* MUC: joined the room (own presence with status 110 arrived) */
    bool joined;
};

/* What a connection tells the scenario. */
typedef struct lg_events {
    void (*online)(lg_conn *c);     /* bound, presence set, ping answered */
    void (*registered)(lg_conn *c); /* account created (or already there) */
    void (*failed)(lg_conn *c);
    /* A <message/> with a loadgen body arrived: sender index, send time. */
    void (*message)(lg_conn *c, unsigned from_index, uint64_t sent_ns);
    void (*joined)(lg_conn *c); /* MUC self-presence */
} lg_events;

typedef struct lg_options {
    const char *address;  /* server's IPv4 address */
    int port;             /* its STARTTLS c2s port */
    const char *domain;   /* XMPP domain */
    const char *prefix;   /* account localparts: prefix + number */
    const char *password; /* every account's password */
    unsigned accounts;    /* connections share accounts beyond this */
    unsigned sources;     /* 127.0.0.1 .. 127.0.0.N as source addresses */
    lg_mech mech;
    unsigned body_bytes; /* padding of each message body */
    const char *room;    /* MUC room JID for the muc scenario */
} lg_options;

struct lg_run {
    uv_loop_t *loop;
    SSL_CTX *tls;
    const lg_options *opt;
    const lg_events *ev;
    lg_salted_cache *salted; /* SaltedPassword per account */
    vn_buf scratch;          /* serialization buffer, reused */
    unsigned long bounced;   /* error stanzas received */
    uv_check_t flusher;      /* sends every connection's pending_out */
    lg_conn **to_flush;
    size_t to_flush_count, to_flush_cap;
};

/* Start connecting c (zeroed by the caller but for run/index); the
 * account and resource follow from index. register_only: create the
 * account with in-band registration instead of logging in. */
void lg_conn_start(lg_conn *c, bool register_only);
/* Send a chat message to to_jid whose body carries this connection's
 * index and the send time. type: "chat" or "groupchat". */
void lg_conn_send_message(lg_conn *c, const char *to_jid, const char *type);
/* Queue raw stanza text (already serialized) for the stream; it goes out
 * at the end of the loop iteration. */
void lg_conn_send(lg_conn *c, const char *xml, size_t len);
/* Send what lg_conn_send queued now: for stanzas queued outside I/O
 * callbacks (timers, between loop runs), which the end-of-iteration flush
 * would only see after the next wake-up. */
void lg_run_flush(lg_run *run);
/* Set up and tear down the end-of-iteration flush of a run. */
void lg_run_flusher_init(lg_run *run);
void lg_run_flusher_close(lg_run *run);
/* Close the socket; no callbacks follow. */
void lg_conn_close(lg_conn *c);

#endif
