/* vpeer.h - a simulated WebRTC participant for the media engine's tests and
 * for `make bench-voice`: the controlling ICE agent (connectivity checks with
 * USE-CANDIDATE, then consent checks), the DTLS server with its own
 * certificate (the bridge is active; AEAD_AES_128_GCM first, as Chrome), SRTP
 * with libsrtp2, Opus with libopus,
 * optional RFC 6464 levels, and an impairment stage (random loss, uniform
 * jitter) on what it sends. It records what it hears, by RTP time for quality
 * and by arrival time for latency. Driven by the caller's libuv loop.
 */
#ifndef VN_VPEER_H
#define VN_VPEER_H

#include <openssl/ssl.h>
#include <opus.h>
#include <srtp2/srtp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stun/stunagent.h>
#include <uv.h>

#include "media.h"

typedef enum vp_signal {
    VP_SILENCE,    /* what a listener's microphone sends */
    VP_TONE,       /* a sine at tone_hz */
    VP_SPEECHLIKE, /* harmonics of a gliding pitch, syllables and pauses */
} vp_signal;

typedef struct vp_config {
    vp_signal signal;
    double tone_hz;
    double amplitude;       /* of full scale */
    uint8_t level_id;       /* send RFC 6464 levels with this extmap id, 0 none */
    bool wrong_fingerprint; /* tell the bridge a fingerprint that is not ours */
    bool no_checks;         /* never send a connectivity check */
    double loss;            /* 0..1 of sent packets dropped */
    unsigned jitter_ms;     /* each sent packet delayed by 0..jitter_ms */
    bool record;            /* keep what is heard (quality, latency, tones) */
    unsigned record_ms;     /* how much, default 10000 */
    bool precoded;          /* cycle one second of packets encoded in advance */
    uint64_t t0_ms;         /* the common time origin of the envelopes */
    unsigned consent_ms;    /* consent check period, default 1000 */
    bool dtls_client;       /* signal setup=active and be the DTLS client */
    bool srtp_cm_only;      /* offer only SRTP_AES128_CM_SHA1_80, not AEAD_AES_128_GCM */
} vp_config;

typedef struct vp_peer {
    vp_config cfg;
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_timer_t timer;
    struct sockaddr_in bridge;
    char ufrag[9], pwd[25];
    char *username; /* "bridge:ours" */
    char rpwd[64];
    StunAgent stun;
    uint64_t tie;
    uint64_t last_check_ms;
    bool ice_ok, checks_stopped;
    SSL *ssl;
    char bridge_fp[96];
    bool keyed, dtls_failed, srtp_gcm, hello_sent;
    srtp_t srtp;
    OpusEncoder *enc;
    OpusDecoder *dec;
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts;
    uint64_t sample; /* signal position */
    uint8_t (*pre)[1276];
    uint16_t *pre_len;
    uint8_t *pre_level;
    /* what was heard */
    uint64_t rx_packets, rx_srtp_failures, tx_packets, tx_dropped;
    uint8_t last_rtp[1500]; /* the last SRTP packet sent, for replay tests */
    size_t last_rtp_len;
    bool have_ts0;
    uint32_t ts0;
    uint16_t rx_seq;
    int16_t *rx; /* by RTP time */
    size_t rx_cap, rx_end;
    float *env_sent, *env_heard; /* per ms since t0: mean |sample| */
    size_t env_cap;
    bool closed;
} vp_peer;

int vp_global_init(char *err, size_t errlen);
/* The signal's sample n, for sig at tone_hz/amplitude. */
int16_t vp_signal_sample(const vp_config *cfg, uint64_t n);

int vp_peer_init(vp_peer *p, uv_loop_t *loop, const vp_config *cfg);
/* What signalling would tell the bridge about this peer. */
void vp_peer_remote(const vp_peer *p, vc_remote *out);
/* Starts checks, DTLS and media towards the bridge's 127.0.0.1 candidate. */
int vp_peer_connect(vp_peer *p, const vc_local *local, const char *bridge_fingerprint);
void vp_peer_stop_checks(vp_peer *p);
void vp_peer_close(vp_peer *p);
/* Sends the last SRTP packet it sent to the bridge again (a replay). */
void vp_peer_replay_last_packet_to_bridge(vp_peer *p);
/* Sends bytes to the bridge's port as they are. */
void vp_peer_send_raw(vp_peer *p, const void *buf, size_t len);

/* Relative power at hz in pcm (Goertzel), 0..~0.5 for a full-scale sine. */
double vp_goertzel(const int16_t *pcm, size_t n, double hz);
/* The lag (ms) in [0, max_ms] where the heard envelope best matches the sent
 * one (of `from`), by cross-correlation over [start_ms, end_ms). */
int vp_latency_ms(const vp_peer *from, const vp_peer *to, size_t start_ms, size_t end_ms,
                  int max_ms);

#endif
