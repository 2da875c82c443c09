/*
 * test_voice_loopback.c - the media engine against real peers on loopback:
 * ICE checks, a DTLS handshake, SRTP and Opus from tests/bench/voice/vpeer.c.
 * Three in a call each hear the others' tones (Goertzel) and never their own,
 * with and without RFC 6464 levels, the bridge as DTLS client or server; one on a lossy, jittery
 * path disturbs nobody else's voice; a muted one goes unheard; replayed or garbage packets are
 * counted and dropped; a wrong fingerprint, checks that never come and consent that stops each end
 * the leg with the right reason. Also the RFC 7983 demultiplexer and the argument checks of
 * vc_leg_open().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media_internal.h"
#include "vpeer.h"

#define MAX_EVENTS 256

static uv_loop_t loop;
static vc_event events[MAX_EVENTS];
static size_t n_events;

static void on_event(const vc_event *ev, void *ud)
{
    (void)ud;
    if (n_events < MAX_EVENTS)
        events[n_events++] = *ev;
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void run_for(unsigned ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_loop, ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static const vc_event *find_event(vc_event_type type, vc_leg_id leg)
{
    for (size_t i = 0; i < n_events; i++)
        if (events[i].type == type && events[i].leg == leg)
            return &events[i];
    return NULL;
}

static bool wait_event(vc_event_type type, vc_leg_id leg, unsigned max_ms)
{
    for (unsigned waited = 0; waited < max_ms; waited += 20) {
        if (find_event(type, leg))
            return true;
        run_for(20);
    }
    for (size_t i = 0; i < n_events; i++)
        printf("# event %d leg %u reason %d %s\n", events[i].type, events[i].leg, events[i].reason,
               events[i].detail ? events[i].detail : "");
    return false;
}

static vc_engine *start_engine(unsigned connect_ms, unsigned consent_ms, unsigned per_conf)
{
    char err[256] = "";
    vc_engine_config cfg = {.addresses = {"127.0.0.1"}, .n_addresses = 1};

    cfg.port_min = 45000;
    cfg.port_max = 45999;
    cfg.connect_timeout_ms = connect_ms;
    cfg.consent_timeout_ms = consent_ms;
    cfg.max_legs_per_conf = per_conf;
    n_events = 0;
    uv_loop_init(&loop);
    vc_engine *e = vc_engine_start(&cfg, &loop, on_event, NULL, err, sizeof(err));
    if (!e)
        fail_msg("engine: %s", err);
    assert_int_equal(strlen(vc_engine_fingerprint(e)), 95);
    return e;
}

static void stop_engine(vc_engine *e)
{
    vc_engine_stop(e);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static vc_leg_id join(vc_engine *e, vp_peer *p, const vp_config *cfg, uint64_t conf)
{
    vc_remote remote;
    vc_local local;
    vc_leg_id leg;

    assert_int_equal(vp_peer_init(p, &loop, cfg), 0);
    vp_peer_remote(p, &remote);
    assert_int_equal(vc_leg_open(e, conf, &remote, &local, &leg), VC_OK);
    assert_int_not_equal(leg, 0);
    assert_true(local.n_candidates >= 1);
    assert_int_equal(local.candidates[0].component, 1);
    /* actpass: we are the DTLS client; the remote active: we are the server */
    assert_int_equal(local.setup, cfg->dtls_client ? VC_SETUP_PASSIVE : VC_SETUP_ACTIVE);
    assert_string_equal(local.fingerprint, vc_engine_fingerprint(e));
    assert_int_equal(vp_peer_connect(p, &local, vc_engine_fingerprint(e)), 0);
    return leg;
}

/* Power of hz over the last ms of what p heard, as the mean of 100 ms windows:
 * the jitter buffer's stretching shifts a tone's phase, which a single long
 * window would count against it. */
static double heard(const vp_peer *p, double hz, unsigned ms)
{
    size_t n = (size_t)ms * 48, w = 4800;
    double sum = 0.0;
    if (p->rx_end < n)
        return 0.0;
    for (size_t at = p->rx_end - n; at + w <= p->rx_end; at += w)
        sum += vp_goertzel(p->rx + at, w, hz);
    return sum / (double)(n / w);
}

static void test_three_hear_each_other_not_themselves(void **state)
{
    static vp_peer a, b, c;
    vp_config ca = {
        .signal = VP_TONE, .tone_hz = 440, .amplitude = 0.3, .level_id = 1, .record = true};
    vp_config cb = {
        .signal = VP_TONE, .tone_hz = 1000, .amplitude = 0.3, .record = true, .srtp_cm_only = true};
    vp_config cc = {.signal = VP_SILENCE, .level_id = 1, .record = true, .dtls_client = true};
    vc_engine *e = start_engine(5000, 5000, 0);

    ca.t0_ms = cb.t0_ms = cc.t0_ms = uv_hrtime() / 1000000u;
    vc_leg_id la = join(e, &a, &ca, 7), lb = join(e, &b, &cb, 7), lc = join(e, &c, &cc, 7);
    assert_true(wait_event(VC_EV_CONNECTED, la, 5000));
    assert_true(wait_event(VC_EV_CONNECTED, lb, 5000));
    assert_true(wait_event(VC_EV_CONNECTED, lc, 5000));
    assert_true(c.keyed);     /* c is the DTLS client, the bridge its server */
    assert_true(a.srtp_gcm);  /* AEAD_AES_128_GCM when offered ... */
    assert_false(b.srtp_gcm); /* ... else AES_CM_128_HMAC_SHA1_80 */
    run_for(2000);

    /* a (levels in its packets) and b (none: the bridge measures energy) speak */
    assert_non_null(find_event(VC_EV_SPEAKING, la));
    assert_non_null(find_event(VC_EV_SPEAKING, lb));
    assert_null(find_event(VC_EV_SPEAKING, lc));
    double a440 = heard(&a, 440, 1000), a1000 = heard(&a, 1000, 1000);
    double b440 = heard(&b, 440, 1000), b1000 = heard(&b, 1000, 1000);
    double c440 = heard(&c, 440, 1000), c1000 = heard(&c, 1000, 1000);
    printf("# a hears 440 %.5f 1000 %.5f; b 440 %.5f 1000 %.5f; c 440 %.5f 1000 %.5f\n", a440,
           a1000, b440, b1000, c440, c1000);
    assert_true(a1000 > 0.02 && a440 < a1000 / 100);
    assert_true(b440 > 0.02 && b1000 < b440 / 100);
    assert_true(c440 > 0.02 && c1000 > 0.02);

    vc_stats st;
    vc_engine_stats(e, &st);
    assert_int_equal(st.legs, 3);
    assert_int_equal(st.legs_connected, 3);
    assert_int_equal(st.confs, 1);
    /* two speakers: the listener's mix and one per speaker, never one per leg */
    assert_true(st.encodes <= 3 * st.ticks);
    assert_true(st.encodes > 0);
    assert_true(st.packets_in > 100);

    /* replays and garbage are counted and dropped */
    vc_leg_stats ls;
    for (int i = 0; i < 3; i++)
        vp_peer_replay_last_packet_to_bridge(&a);
    static const uint8_t junk[] = {0x80, 0x6f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    vp_peer_send_raw(&a, junk, sizeof(junk));
    vp_peer_send_raw(&a, junk + 1, 3);
    /* DTLS records that are no records: an alert, application data, a
     * handshake message, all with garbage in them, from the peer's address */
    static const uint8_t records[][24] = {
        {21, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 2, 2, 40},
        {23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 8, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9},
        {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0x30, 0, 11, 1, 0, 0, 0xff, 0xff},
    };
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
        vp_peer_send_raw(&a, records[i], sizeof(records[i]));
    run_for(200);
    assert_int_equal(vc_leg_stats_get(e, la, &ls), VC_OK);
    assert_true(ls.srtp_failures >= 4);
    assert_true(ls.connected);
    assert_null(find_event(VC_EV_FAILED, la));

    /* the moderator mutes a: c stops hearing 440 */
    assert_int_equal(vc_leg_set_muted(e, la, true), VC_OK);
    run_for(1000);
    assert_non_null(find_event(VC_EV_SILENT, la));
    printf("# muted: c hears 440 %.6f 1000 %.5f\n", heard(&c, 440, 400), heard(&c, 1000, 400));
    assert_true(heard(&c, 440, 400) < 0.0005);
    assert_true(heard(&c, 1000, 400) > 0.02);
    /* b alone speaks: its packets go to c as they came, nothing is encoded */
    vc_stats before = st;
    vc_engine_stats(e, &st);
    assert_true(st.forwards > before.forwards + 20);

    assert_int_equal(vc_leg_close(e, la), VC_OK);
    assert_int_equal(vc_leg_close(e, la), VC_ENOENT);
    assert_int_equal(vc_leg_close(e, lb), VC_OK);
    vp_peer_close(&a);
    vp_peer_close(&b);
    vp_peer_close(&c);
    stop_engine(e); /* lc still open: the stop closes it */
}

/* The weakest 100 ms of hz in the last ms of what p heard. */
static double weakest(const vp_peer *p, double hz, unsigned ms)
{
    size_t n = (size_t)ms * 48, w = 4800;
    double min = 1.0;
    for (size_t at = p->rx_end - n; at + w <= p->rx_end; at += w) {
        double g = vp_goertzel(p->rx + at, w, hz);
        if (g < min)
            min = g;
    }
    return min;
}

static void test_a_bad_network_disturbs_only_its_own_voice(void **state)
{
    static vp_peer a, b, c;
    /* a sends through 30% loss and 0-60 ms jitter; b and c have clean paths */
    vp_config ca = {.signal = VP_TONE,
                    .tone_hz = 440,
                    .amplitude = 0.3,
                    .level_id = 1,
                    .loss = 0.3,
                    .jitter_ms = 60,
                    .record = true};
    vp_config cb = {
        .signal = VP_TONE, .tone_hz = 1000, .amplitude = 0.3, .level_id = 1, .record = true};
    vp_config cc = {.signal = VP_SILENCE, .level_id = 1, .record = true};
    vc_engine *e = start_engine(5000, 5000, 0);

    vc_leg_id la = join(e, &a, &ca, 3), lb = join(e, &b, &cb, 3), lc = join(e, &c, &cc, 3);
    assert_true(wait_event(VC_EV_CONNECTED, la, 5000));
    assert_true(wait_event(VC_EV_CONNECTED, lb, 5000));
    assert_true(wait_event(VC_EV_CONNECTED, lc, 5000));
    run_for(3000);

    vc_leg_stats sa, sb;
    assert_int_equal(vc_leg_stats_get(e, la, &sa), VC_OK);
    assert_int_equal(vc_leg_stats_get(e, lb, &sb), VC_OK);
    printf("# a: lost %llu fec %llu plc %llu jitter %u ms buffer %u ms; b: lost %llu buffer %u "
           "ms; c's weakest 100 ms of b %.4f\n",
           (unsigned long long)sa.packets_lost, (unsigned long long)sa.packets_recovered,
           (unsigned long long)sa.packets_concealed, sa.jitter_ms, sa.buffer_ms,
           (unsigned long long)sb.packets_lost, sb.buffer_ms, weakest(&c, 1000, 1000));
    assert_true(sa.packets_lost > 10);
    assert_true(sa.packets_recovered > 0);
    assert_true(sa.buffer_ms >= 60);      /* a's buffer grew to its jitter ... */
    assert_int_equal(sb.packets_lost, 0); /* ... and b lost nothing by it */
    /* b's voice reaches c whole, in every 100 ms; a's, concealed, too */
    assert_true(weakest(&c, 1000, 1000) > 0.01); /* a dropout would be ~0 */
    assert_true(heard(&c, 440, 1000) > 0.01);
    assert_true(heard(&b, 440, 1000) > 0.01);
    vp_peer_close(&a);
    vp_peer_close(&b);
    vp_peer_close(&c);
    stop_engine(e);
}

static void test_wrong_fingerprint_fails_dtls(void **state)
{
    static vp_peer p;
    vp_config cfg = {
        .signal = VP_TONE, .tone_hz = 440, .amplitude = 0.3, .wrong_fingerprint = true};
    vc_engine *e = start_engine(5000, 5000, 0);
    vc_leg_id leg = join(e, &p, &cfg, 1);

    assert_true(wait_event(VC_EV_FAILED, leg, 5000));
    assert_int_equal(find_event(VC_EV_FAILED, leg)->reason, VC_FAIL_DTLS);
    assert_null(find_event(VC_EV_CONNECTED, leg));
    vc_leg_close(e, leg);
    vp_peer_close(&p);
    stop_engine(e);
}

static void test_no_checks_is_an_ice_timeout(void **state)
{
    static vp_peer p;
    vp_config cfg = {.signal = VP_SILENCE, .no_checks = true};
    vc_engine *e = start_engine(800, 5000, 0);
    vc_leg_id leg = join(e, &p, &cfg, 1);

    assert_true(wait_event(VC_EV_FAILED, leg, 3000));
    assert_int_equal(find_event(VC_EV_FAILED, leg)->reason, VC_FAIL_ICE_TIMEOUT);
    vc_leg_close(e, leg);
    vp_peer_close(&p);
    stop_engine(e);
}

static void test_consent_lost(void **state)
{
    static vp_peer p;
    vp_config cfg = {.signal = VP_TONE, .tone_hz = 440, .amplitude = 0.3, .consent_ms = 200};
    vc_engine *e = start_engine(5000, 1000, 0);
    vc_leg_id leg = join(e, &p, &cfg, 1);

    assert_true(wait_event(VC_EV_CONNECTED, leg, 5000));
    run_for(1500); /* consent checks every 200 ms keep it up */
    assert_null(find_event(VC_EV_FAILED, leg));
    vp_peer_stop_checks(&p);
    assert_true(wait_event(VC_EV_FAILED, leg, 3000));
    assert_int_equal(find_event(VC_EV_FAILED, leg)->reason, VC_FAIL_CONSENT);
    vc_leg_close(e, leg);
    vp_peer_close(&p);
    stop_engine(e);
}

static void test_bad_arguments(void **state)
{
    vc_engine *e = start_engine(5000, 5000, 2);
    vc_remote r = {.ice_ufrag = "abcd",
                   .ice_pwd = "0123456789012345678901",
                   .fingerprint_hash = "sha-256",
                   .fingerprint = "AB:CD",
                   .opus_pt = 111};
    vc_local l;
    vc_leg_id leg, l1, l2;

    assert_int_equal(vc_leg_open(e, 1, &r, &l, &leg), VC_EINVAL); /* too short */
    r.fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
                    "AB:CD:EF:01:23:45:67:8G";
    assert_int_equal(vc_leg_open(e, 1, &r, &l, &leg), VC_EINVAL); /* not hex */
    r.fingerprint_hash = "md5";
    assert_int_equal(vc_leg_open(e, 1, &r, &l, &leg), VC_EFINGERPRINT);
    r.fingerprint_hash = "SHA-256";
    r.fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
                    "AB:CD:EF:01:23:45:67:89";
    r.ice_ufrag = "bad ufrag";
    assert_int_equal(vc_leg_open(e, 1, &r, &l, &leg), VC_EINVAL);
    r.ice_ufrag = "abcd";
    r.opus_pt = 72; /* collides with RTCP */
    assert_int_equal(vc_leg_open(e, 1, &r, &l, &leg), VC_EINVAL);
    r.opus_pt = 111;
    assert_int_equal(vc_leg_open(e, 1, &r, &l, &l1), VC_OK);
    assert_int_equal(vc_leg_open(e, 1, &r, &l, &l2), VC_OK);
    assert_int_equal(vc_leg_open(e, 1, &r, &l, &leg), VC_EFULL);
    assert_int_equal(vc_leg_open(e, 2, &r, &l, &leg), VC_OK); /* another call */
    assert_int_equal(vc_leg_set_muted(e, 12345, true), VC_ENOENT);
    assert_string_equal(vc_strerror(VC_EFULL), "too many participants");
    assert_int_equal(vc_leg_close(e, l1), VC_OK);
    stop_engine(e);
}

static void test_demux(void **state)
{
    uint8_t b[64] = {0};

    b[0] = 0x00; /* STUN binding request */
    assert_int_equal(vc_demux_classify(b, 20), VC_DEMUX_STUN);
    assert_int_equal(vc_demux_classify(b, 19), VC_DEMUX_DROP);
    b[0] = 22; /* DTLS handshake */
    assert_int_equal(vc_demux_classify(b, 40), VC_DEMUX_DTLS);
    b[0] = 0x80;
    b[1] = 111;
    assert_int_equal(vc_demux_classify(b, 40), VC_DEMUX_RTP);
    b[1] = 0x80 | 111; /* marker bit */
    assert_int_equal(vc_demux_classify(b, 40), VC_DEMUX_RTP);
    b[1] = 200; /* SR */
    assert_int_equal(vc_demux_classify(b, 40), VC_DEMUX_RTCP);
    b[1] = 201; /* RR */
    assert_int_equal(vc_demux_classify(b, 8), VC_DEMUX_RTCP);
    b[0] = 16; /* ZRTP range */
    assert_int_equal(vc_demux_classify(b, 40), VC_DEMUX_DROP);
    b[0] = 64; /* TURN channel */
    assert_int_equal(vc_demux_classify(b, 40), VC_DEMUX_DROP);
    b[0] = 200;
    assert_int_equal(vc_demux_classify(b, 40), VC_DEMUX_DROP);
    assert_int_equal(vc_demux_classify(b, 0), VC_DEMUX_DROP);
}

static void test_audio_level_extension(void **state)
{
    /* one-byte form (RFC 8285 §4.2): a padding byte, id 3 (2 bytes), id 1 (level) */
    const uint8_t one[] = {0x00, 0x31, 0xaa, 0xbb, 0x10, 0x80 | 42, 0, 0};
    assert_int_equal(vc_rtp_audio_level(one, sizeof(one), 0xBEDE, 1), 42);
    assert_int_equal(vc_rtp_audio_level(one, sizeof(one), 0xBEDE, 5), VC_LEVEL_UNKNOWN);
    /* two-byte form (§4.3) */
    const uint8_t two[] = {0x07, 0x01, 0x80 | 99, 0x00};
    assert_int_equal(vc_rtp_audio_level(two, sizeof(two), 0x1000, 7), 99);
    /* truncated: no read past the end */
    const uint8_t cut[] = {0x1f};
    assert_int_equal(vc_rtp_audio_level(cut, sizeof(cut), 0xBEDE, 1), VC_LEVEL_UNKNOWN);
}

int main(void)
{
    char err[128];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demux),
        cmocka_unit_test(test_audio_level_extension),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_three_hear_each_other_not_themselves),
        cmocka_unit_test(test_a_bad_network_disturbs_only_its_own_voice),
        cmocka_unit_test(test_wrong_fingerprint_fails_dtls),
        cmocka_unit_test(test_no_checks_is_an_ice_timeout),
        cmocka_unit_test(test_consent_lost),
    };
    if (vp_global_init(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
