/* media_internal.h - what the media engine's files share; nothing here is for mod_voice.
 *
 * Ownership: vc_engine_* and vc_leg_* (media.h) run on the caller's loop thread
 * and touch only what `lock` guards (the command and event queues and the leg
 * table); everything else in a leg, and every vc_conf, belongs to the media
 * thread. A leg reaches the media thread through an OPEN command and leaves it
 * through CLOSE; counters the loop thread reads for stats are atomics.
 */
#ifndef VN_VOICE_MEDIA_INTERNAL_H
#define VN_VOICE_MEDIA_INTERNAL_H

#include <openssl/ssl.h>
#include <opus.h>
#include <pthread.h>
#include <srtp2/srtp.h>
#include <stdatomic.h>
#include <stun/stunagent.h>
#include <sys/socket.h>

#include "jitter.h"
#include "media.h"
#include "mixer.h"

#define VC_TICK_MS 20
#define VC_PACKET_MAX 1500
#define VC_MAX_MIXES_PER_CONF 9  /* the listeners' mix + up to 8 speakers */
#define VC_RX_BATCH 8            /* datagrams per recvmmsg */
#define VC_RX_BATCHES_PER_TICK 4 /* recvmmsg calls per leg and tick, at most */

typedef enum vc_leg_state {
    VC_LEG_CHECKING,  /* waiting for a nominating connectivity check */
    VC_LEG_DTLS,      /* nominated; handshaking */
    VC_LEG_CONNECTED, /* SRTP keyed */
    VC_LEG_FAILED,
} vc_leg_state;

typedef struct vc_leg_counters {
    _Atomic uint64_t in, out, lost, concealed, recovered, srtp_failures;
    _Atomic unsigned jitter_ms, buffer_ms;
    atomic_bool connected, speaking, muted;
} vc_leg_counters;

typedef struct vc_conf vc_conf;

#define VC_ICE_PATHS 8 /* remote addresses remembered as checked, per leg */

/* A candidate pair as the socket sees it: the remote's address (IPv4
 * unmapped) and ours it wrote to (IP_PKTINFO; family 0 when unknown). What
 * goes back on the pair leaves from that address, as ICE requires, not from
 * whichever one routing picks for the wildcard-bound socket. */
typedef struct vc_path {
    struct sockaddr_storage remote, local;
    socklen_t remote_len; /* 0: no path */
} vc_path;

typedef struct vc_leg {
    vc_engine *e;
    vc_leg_id id;
    uint64_t conf_id;
    vc_conf *conf;
    struct vc_leg *next; /* in conf->legs */
    vc_leg_state state;
    uv_udp_t udp;
    bool udp_open;
    int fd;     /* until the media thread's handle owns it */
    int family; /* of the socket: AF_INET6 (dual-stack) or AF_INET */
    uint64_t opened_ms, last_consent_ms;

    /* ICE-lite */
    char lufrag[9], lpwd[25];
    char *username; /* "ours:theirs", what the remote's checks carry */
    StunAgent stun;
    uint64_t tie;
    vc_path peer;    /* where DTLS and media go: the nominated pair, until... */
    bool peer_heard; /* ...DTLS or SRTP came from a checked pair: then the last one's */
    vc_path checked[VC_ICE_PATHS]; /* pairs that passed an authenticated check */
    unsigned next_checked;

    /* DTLS */
    SSL *ssl;
    bool dtls_client;
    const EVP_MD *fp_md;
    unsigned char fp[EVP_MAX_MD_SIZE];
    unsigned fp_len;

    /* SRTP */
    srtp_t srtp;

    /* what comes in */
    uint8_t opus_pt, level_id;
    bool remote_fec;
    uint32_t remote_ssrc;
    bool have_ssrc;
    vc_jb jb;
    OpusDecoder *dec;
    int16_t pcm[VC_FRAME_SAMPLES];
    bool have_pcm;
    vc_jb_kind kind; /* this tick's frame */
    const uint8_t *frame;
    size_t frame_len;
    float activity;
    bool speaking, muted;
    unsigned enc_slot; /* this speaker's encoder in conf->enc, 0 none */
    /* RFC 3550 reception statistics for our receiver reports */
    bool rx_started;
    uint16_t rx_base, rx_max;
    uint32_t rx_cycles;
    uint64_t rx_received, rx_expected_prior, rx_received_prior;
    uint32_t rx_lsr;
    uint64_t rx_lsr_ms;

    /* what goes out */
    uint32_t ssrc;
    char cname[17];
    uint16_t seq;
    uint32_t ts;
    bool marker;
    uint64_t tx_packets, tx_octets;
    uint64_t next_rtcp_ms;
    uint32_t rtcp_rand; /* never 0 */

    vc_leg_counters st;
} vc_leg;

struct vc_conf {
    uint64_t id;
    vc_leg *legs;
    unsigned n_legs;
    OpusEncoder *enc[VC_MAX_MIXES_PER_CONF]; /* [0] the listeners', [k] speaker slot k */
    bool enc_used[VC_MAX_MIXES_PER_CONF];
    struct vc_conf *next;
};

typedef enum vc_cmd_type { VC_CMD_OPEN, VC_CMD_MUTE, VC_CMD_CLOSE, VC_CMD_STOP } vc_cmd_type;

typedef struct vc_cmd {
    vc_cmd_type type;
    vc_leg *leg;
    bool flag;
} vc_cmd;

typedef struct vc_slot {
    vc_leg_id id;
    uint64_t conf;
    vc_leg *leg;
} vc_slot;

struct vc_engine {
    vc_engine_config cfg;
    /* the caller's side */
    uv_loop_t *xloop;
    uv_async_t *xasync;
    vc_event_cb cb;
    void *ud;
    char addrs[VC_MAX_ADDRESSES][46];
    size_t n_addrs;
    uint16_t next_port;

    /* shared, under lock */
    pthread_mutex_t lock;
    vc_cmd *cmds;
    size_t n_cmds, cap_cmds;
    vc_event *events;
    size_t n_events, cap_events;
    vc_slot *slots; /* cfg.max_legs of them */
    unsigned n_legs;
    vc_leg_id next_id;

    /* immutable after start */
    SSL_CTX *ssl_ctx;
    BIO_METHOD *bio_method;
    char fingerprint[96];

    /* the media thread's */
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t cmd_async;
    uv_timer_t tick;
    uint64_t tick_due_ms;
    vc_conf *confs;
    vc_leg **scratch_legs;
    vc_mix_input *scratch_in;
    unsigned *scratch_mix;
    uint8_t rxbuf[VC_RX_BATCH][2048];

    /* stats */
    _Atomic uint64_t ticks, late_ticks, decodes, encodes, forwards, packets_in, packets_out,
        srtp_failures, cpu_ns;
    atomic_uint legs_connected, n_confs;
};

uint64_t vc_now_ms(void);
void vc_random(void *buf, size_t len);

/* media_engine.c: commands to the media thread, events to the caller's */
int vc_engine_post(vc_engine *e, vc_cmd_type type, vc_leg *leg, bool flag);
void vc_emit(vc_engine *e, vc_event_type type, const vc_leg *leg, vc_fail_reason reason,
             const char *detail);

/* media_leg.c: on the media thread */
int vc_leg_start(vc_engine *e, vc_leg *leg);
void vc_leg_release(vc_leg *leg);
void vc_leg_fail(vc_leg *leg, vc_fail_reason reason, const char *detail);
/* Reads and handles every datagram waiting on the leg's socket. */
void vc_leg_drain(vc_leg *leg);
int vc_leg_send(vc_leg *leg, const void *buf, size_t len); /* to the peer */
int vc_leg_send_to(vc_leg *leg, const void *buf, size_t len, const vc_path *to);

/* media_demux.c (RFC 7983) */
typedef enum vc_demux {
    VC_DEMUX_DROP,
    VC_DEMUX_STUN,
    VC_DEMUX_DTLS,
    VC_DEMUX_RTP,
    VC_DEMUX_RTCP,
} vc_demux;
vc_demux vc_demux_classify(const uint8_t *buf, size_t len);

/* ice_lite.c */
void vc_ice_init(vc_leg *leg);
void vc_ice_input(vc_leg *leg, const uint8_t *buf, size_t len, const vc_path *path);
/* Whether an authenticated check came from remote (IPv4 unmapped). */
bool vc_ice_checked(const vc_leg *leg, const struct sockaddr *remote);
bool vc_same_addr(const struct sockaddr *a, const struct sockaddr *b);

/* dtls.c */
int vc_dtls_ctx_new(vc_engine *e, char *err, size_t errlen);
void vc_dtls_ctx_free(vc_engine *e);
int vc_dtls_parse_fingerprint(vc_leg *leg, const char *hash, const char *value);
int vc_dtls_leg_new(vc_leg *leg);
void vc_dtls_start(vc_leg *leg);
void vc_dtls_input(vc_leg *leg, const uint8_t *buf, size_t len);
void vc_dtls_timer(vc_leg *leg);

/* srtp_session.c */
void vc_srtp_global_init(void);
int vc_srtp_start(vc_leg *leg, bool gcm, const uint8_t *tx_key, const uint8_t *rx_key);
/* In place; *len grows by the tag (room: VC_SRTP_TRAILER). 0 or -1. */
#define VC_SRTP_TRAILER 32
int vc_srtp_protect(vc_leg *leg, uint8_t *buf, size_t *len, bool rtcp);
int vc_srtp_unprotect(vc_leg *leg, uint8_t *buf, size_t *len, bool rtcp);

/* media_rtp.c */
/* arrival_ms: the kernel's receive time, realtime clock */
/* Both: whether the packet passed SRTP authentication */
bool vc_rtp_input(vc_leg *leg, uint8_t *buf, size_t len, uint64_t arrival_ms);
bool vc_rtcp_input(vc_leg *leg, uint8_t *buf, size_t len);
void vc_rtp_send(vc_leg *leg, const uint8_t *payload, size_t len);
void vc_rtcp_send(vc_leg *leg);
/* Finds the RFC 6464 level in an RTP packet's header extension (8285 one- or
 * two-byte form); VC_LEVEL_UNKNOWN when absent. */
uint8_t vc_rtp_audio_level(const uint8_t *ext, size_t ext_len, uint16_t profile, uint8_t id);

/* media_tick.c */
void vc_tick(vc_engine *e);
void vc_conf_remove_leg(vc_engine *e, vc_leg *leg);
int vc_conf_add_leg(vc_engine *e, vc_leg *leg);

#endif
