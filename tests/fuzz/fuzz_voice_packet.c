/*
 * fuzz_voice_packet.c - libFuzzer target for what the conference bridge's
 * media engine (modules/voice/, libvcmedia) does with the UDP datagrams
 * anyone can send to a leg's port: the RFC 7983 demultiplexing, ICE-lite's
 * STUN checks (libnice's STUN library underneath), DTLS records, and on a
 * keyed leg SRTP/SRTCP, the RTP header with its RFC 8285 extensions and
 * RFC 6464 audio level, RTCP compounds, the jitter buffer, Opus decoding and
 * the mixer tick that answers.
 *
 * The engine is built as vc_engine_start builds it, but without its media
 * thread: the harness plays that thread. Each input opens two real legs of
 * one call with vc_leg_open (each its own UDP port on the wildcard address)
 * and starts them as the OPEN command would: a listener, nominated and keyed
 * at once, so that the other's voice is decoded and mixed for someone, and
 * the fuzzed leg, to which it sends the input's datagrams over loopback from
 * a socket of its own; vc_tick drains and handles them exactly as the mixer tick does
 * (recvmmsg, kernel timestamps, timers, decoding, mixing, our RTP and RTCP
 * going back). Both legs are closed and released at the end of the input.
 *
 * Input: a byte of settings (bits 0-1: the remote's DTLS setup; bits 2-5:
 * the audio level extension id; bit 6: AES-GCM rather than AES-CM keys;
 * bit 7: a signalled SSRC), then records of [kind][length: 2 bytes][bytes]:
 *   0 a raw datagram;
 *   1 a connectivity check signed with the leg's credentials (byte 0:
 *     USE-CANDIDATE, controlling; bytes 1-4 PRIORITY; 5-12 the tie-breaker),
 *     so that inputs get past MESSAGE-INTEGRITY and nominate the pair;
 *   2 a plaintext RTP packet, SRTP-protected with the leg's inbound keys;
 *   3 a plaintext RTCP compound, SRTCP-protected likewise;
 *   4 a tick, then keys the leg as a finished DTLS handshake would (fixed
 *     keys: a handshake from the fuzzer cannot succeed, and what is fuzzed
 *     here is what comes after it) if the tick left the pair nominated;
 *   5 a mixer tick now (one also follows every 8 datagrams and the input).
 *
 * fuzz-sources: modules/voice/media_engine.c modules/voice/media_leg.c
 * fuzz-sources: modules/voice/media_demux.c modules/voice/media_rtp.c
 * fuzz-sources: modules/voice/media_tick.c modules/voice/ice_lite.c
 * fuzz-sources: modules/voice/dtls.c modules/voice/srtp_session.c
 * fuzz-sources: modules/voice/jitter.c modules/voice/mixer.c
 * fuzz-pkg: nice libsrtp2 opus
 * fuzz-libs: -lm
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stun/usages/ice.h>

#include "voice/media_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REMOTE_UFRAG "fuzz"
#define REMOTE_PWD "fuzzfuzzfuzzfuzzfuzzfuzz"
#define FP                                                                                         \
    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:"   \
    "67:89"

static vc_engine *e;
static uv_loop_t xloop; /* the caller's loop: events are queued, never delivered */
static uv_async_t xasync;
static int sock;        /* the remote's socket, 127.0.0.1 */
static StunAgent agent; /* the remote's ICE agent */
static const uint16_t remote_attrs[] = {STUN_ATTRIBUTE_USERNAME, STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                        STUN_ATTRIBUTE_FINGERPRINT,
                                        STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, 0};
static const uint8_t rx_key[30] = "fuzz srtp master key and salt";
static const uint8_t tx_key[30] = "bridge srtp key and its salt!";

static void noop_async(uv_async_t *a)
{
    (void)a;
}

/* vc_engine_start's set-up, less the media thread. */
static void engine_init(void)
{
    char err[256];
    e = calloc(1, sizeof(*e));
    if (!e)
        abort();
    e->cfg.port_min = 47100;
    e->cfg.port_max = 47199;
    e->cfg.rtcp_interval_ms = 2; /* a report at nearly every tick */
    e->cfg.max_legs = 4;
    e->cfg.max_legs_per_conf = 4;
    vc_engine_config_defaults(&e->cfg);
    e->next_port = e->cfg.port_min;
    e->next_id = 1;
    pthread_mutex_init(&e->lock, NULL);
    vc_srtp_global_init();
    e->slots = calloc(e->cfg.max_legs, sizeof(*e->slots));
    e->scratch_legs = calloc(e->cfg.max_legs_per_conf, sizeof(*e->scratch_legs));
    e->scratch_in = calloc(e->cfg.max_legs_per_conf, sizeof(*e->scratch_in));
    e->scratch_mix = calloc(e->cfg.max_legs_per_conf, sizeof(*e->scratch_mix));
    if (!e->slots || !e->scratch_legs || !e->scratch_in || !e->scratch_mix)
        abort();
    uv_loop_init(&xloop);
    uv_async_init(&xloop, &xasync, noop_async);
    e->xasync = &xasync;
    snprintf(e->addrs[0], sizeof e->addrs[0], "127.0.0.1");
    e->n_addrs = 1;
    if (vc_dtls_ctx_new(e, err, sizeof err) != VC_OK) {
        fprintf(stderr, "fuzz_voice_packet: %s\n", err);
        abort();
    }
    uv_loop_init(&e->loop);
    uv_async_init(&e->loop, &e->cmd_async, noop_async);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    engine_init();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (sock < 0 || bind(sock, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("fuzz_voice_packet: socket");
        abort();
    }
    return 0;
}

/* Runs the commands vc_leg_* posted, as the media thread's on_commands does. */
static vc_leg *run_commands(void)
{
    vc_leg *opened = NULL;
    for (size_t i = 0; i < e->n_cmds; i++) {
        vc_cmd cmd = e->cmds[i];
        if (cmd.type == VC_CMD_OPEN) {
            if (vc_leg_start(e, cmd.leg) != 0)
                vc_leg_fail(cmd.leg, VC_FAIL_INTERNAL, "cannot start the leg's socket");
            opened = cmd.leg;
        } else if (cmd.type == VC_CMD_CLOSE) {
            vc_leg_release(cmd.leg);
        }
    }
    e->n_cmds = 0;
    return opened;
}

static void tick(void)
{
    uint8_t buf[2048];
    vc_tick(e);
    while (recv(sock, buf, sizeof buf, 0) > 0) /* the bridge's answers */
        ;
}

/* As handshake_done in dtls.c, with the harness's keys. */
static void connect_leg(vc_leg *leg, bool gcm)
{
    if (leg->state != VC_LEG_DTLS || vc_srtp_start(leg, gcm, tx_key, rx_key) != 0)
        return;
    uint64_t now = vc_now_ms();
    leg->state = VC_LEG_CONNECTED;
    leg->last_consent_ms = now;
    leg->next_rtcp_ms = now;
    atomic_fetch_add(&e->legs_connected, 1);
    atomic_store(&leg->st.connected, true);
    vc_emit(e, VC_EV_CONNECTED, leg, VC_FAIL_NONE, NULL);
}

static srtp_t remote_srtp(bool gcm)
{
    srtp_policy_t p;
    srtp_t s = NULL;
    memset(&p, 0, sizeof p);
    if (gcm) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp);
    } else {
        srtp_crypto_policy_set_rtp_default(&p.rtp);
        srtp_crypto_policy_set_rtcp_default(&p.rtcp);
    }
    p.ssrc.type = ssrc_any_outbound;
    p.key = (unsigned char *)rx_key;
    p.window_size = 1024;
    p.allow_repeat_tx = 1;
    return srtp_create(&s, &p) == srtp_err_status_ok ? s : NULL;
}

static size_t conncheck(const vc_local *local, const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
    StunMessage msg;
    char username[64];
    uint8_t f[13] = {0};
    memcpy(f, p, n < sizeof f ? n : sizeof f);
    uint32_t priority = (uint32_t)f[1] << 24 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 8 | f[4];
    uint64_t tie = 0;
    for (int i = 5; i < 13; i++)
        tie = tie << 8 | f[i];
    int ulen = snprintf(username, sizeof username, "%s:" REMOTE_UFRAG, local->ice_ufrag);
    /* Afresh each time: an agent keeps the ids of requests it sent until
     * their answers come (the harness reads none), and refuses new ones once
     * its table is full. */
    stun_agent_init(&agent, remote_attrs, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    return stun_usage_ice_conncheck_create(&agent, &msg, out, cap, (const uint8_t *)username,
                                           (size_t)ulen, (const uint8_t *)local->ice_pwd,
                                           strlen(local->ice_pwd), f[0] & 1, f[0] & 2, priority,
                                           tie, NULL, STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
}

/* A leg of call 1 as vc_leg_open and the OPEN command make it; *to is its port. */
static vc_leg *open_leg(const vc_remote *remote, vc_local *local, vc_leg_id *id,
                        struct sockaddr_in *to)
{
    if (vc_leg_open(e, 1, remote, local, id) != VC_OK)
        abort();
    vc_leg *leg = run_commands();
    if (!leg || local->n_candidates != 1)
        abort();
    *to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(local->candidates[0].port)};
    inet_pton(AF_INET, "127.0.0.1", &to->sin_addr);
    return leg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t settings = data[0];
    bool gcm = settings & 0x40;
    vc_remote remote = {.ice_ufrag = REMOTE_UFRAG,
                        .ice_pwd = REMOTE_PWD,
                        .fingerprint_hash = "sha-256",
                        .fingerprint = FP,
                        .setup = (vc_setup)(settings & 3) % 3,
                        .opus_pt = 111,
                        .opus_fec = true,
                        .audio_level_id = (uint8_t)((settings >> 2) & 15) % 15,
                        .ssrc = settings & 0x80 ? 0x11223344 : 0};
    vc_local local;
    vc_leg_id id, listener_id;
    struct sockaddr_in to;
    vc_leg *listener = open_leg(&remote, &local, &listener_id, &to);
    uint8_t check[512];
    size_t check_len = conncheck(&local, (const uint8_t *)"\1", 1, check, sizeof check);
    for (int tries = 0; tries < 3 && listener->state == VC_LEG_CHECKING; tries++) {
        sendto(sock, check, check_len, 0, (struct sockaddr *)&to, sizeof to);
        tick();
    }
    connect_leg(listener, false);
    if (listener->state != VC_LEG_CONNECTED) {
        fprintf(stderr, "fuzz_voice_packet: the listener leg did not connect\n");
        abort();
    }
    vc_leg *leg = open_leg(&remote, &local, &id, &to);
    srtp_t srtp = remote_srtp(gcm);
    if (!srtp)
        abort();

    unsigned sent = 0;
    for (size_t off = 1; off + 3 <= size;) {
        uint8_t kind = data[off] % 6;
        size_t len = ((size_t)data[off + 1] << 8 | data[off + 2]) % (VC_PACKET_MAX + 1);
        off += 3;
        if (len > size - off)
            len = size - off;
        const uint8_t *p = data + off;
        off += len;

        uint8_t pkt[VC_PACKET_MAX + SRTP_MAX_TRAILER_LEN + 64];
        size_t n = 0;
        switch (kind) {
        case 0:
        case 2:
        case 3:
            memcpy(pkt, p, len);
            n = len;
            if (kind != 0 && n > 0 && leg->srtp) {
                int m = (int)n;
                srtp_err_status_t st =
                    kind == 2 ? srtp_protect(srtp, pkt, &m) : srtp_protect_rtcp(srtp, pkt, &m);
                if (st == srtp_err_status_ok)
                    n = (size_t)m; /* else sent as it is, to be refused */
            }
            break;
        case 1: n = conncheck(&local, p, len, pkt, sizeof pkt); break;
        case 4:
            tick(); /* the checks sent so far nominate first */
            connect_leg(leg, gcm);
            break;
        case 5: tick(); break;
        }
        if (n > 0) {
            sendto(sock, pkt, n, 0, (struct sockaddr *)&to, sizeof to);
            if (++sent % 8 == 0)
                tick();
        }
    }
    tick();

    srtp_dealloc(srtp);
    vc_leg_close(e, id);
    vc_leg_close(e, listener_id);
    run_commands();
    uv_run(&e->loop, UV_RUN_NOWAIT); /* the socket's close frees the leg */
    e->n_events = 0;
    return 0;
}
