/* bench_voice.c - `make bench-voice`: the conference bridge's media engine
 * under load from simulated participants (vpeer.c) on loopback.
 *
 * Capacity: the CPU time of the engine's media thread (the only thread that
 * does media work) over a steady window, divided by the wall time, gives the
 * share of one core the load costs; participants per core is the load over
 * that share. The generator runs on the same machine, on its own thread, and
 * is not counted. Its speakers send tones and its listeners silence with
 * RFC 6464 levels, as browsers do, from packets encoded in advance.
 *
 * Latency: one talker and two listeners; the cross-correlation of the
 * talker's sent envelope and a listener's heard envelope (1 ms bins, both by
 * wall clock) gives the delay the bridge adds: jitter buffer, mixer tick,
 * decode and re-encode (Opus look-ahead included).
 *
 * Quality: a speech-like signal through the impairment stage (random loss,
 * 0..30 ms uniform jitter) to the bridge and on to a listener, scored as the
 * log-spectral distance of what the listener decodes from the original
 * (20 ms frames, 20 bands to 4.1 kHz), aligned block by block. "direct" is the same encoded stream
 * through the same impairment into the same kind of receiver (jitter buffer, FEC, PLC) with no
 * bridge: what a one-to-one call on that path would get.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "jitter.h"
#include "media.h"
#include "vpeer.h"

static uv_loop_t loop;
static unsigned connected, failed;
static bool quick;

static void on_event(const vc_event *ev, void *ud)
{
    (void)ud;
    if (ev->type == VC_EV_CONNECTED)
        connected++;
    else if (ev->type == VC_EV_FAILED)
        failed++;
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

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static vc_engine *start_engine(void)
{
    char err[256];
    vc_engine_config cfg = {.addresses = {"127.0.0.1"}, .n_addresses = 1};
    cfg.port_min = 46000;
    cfg.port_max = 48999;
    cfg.max_legs = 3000;
    cfg.max_legs_per_conf = 1000;
    vc_engine *e = vc_engine_start(&cfg, &loop, on_event, NULL, err, sizeof(err));
    if (!e) {
        fprintf(stderr, "bench-voice: %s\n", err);
        exit(1);
    }
    return e;
}

typedef struct group {
    vp_peer *peers;
    vc_leg_id *legs;
    size_t n;
} group;

static void join_all(vc_engine *e, group *g, size_t n, const vp_config *(*cfg_of)(size_t),
                     uint64_t (*conf_of)(size_t))
{
    g->peers = calloc(n, sizeof(*g->peers));
    g->legs = calloc(n, sizeof(*g->legs));
    g->n = n;
    connected = failed = 0;
    for (size_t i = 0; i < n; i++) {
        vc_remote r;
        vc_local l;
        if (vp_peer_init(&g->peers[i], &loop, cfg_of(i)) != 0) {
            fprintf(stderr, "bench-voice: peer %zu cannot start\n", i);
            exit(1);
        }
        vp_peer_remote(&g->peers[i], &r);
        int rc = vc_leg_open(e, conf_of(i), &r, &l, &g->legs[i]);
        if (rc != VC_OK) {
            fprintf(stderr, "bench-voice: leg %zu: %s\n", i, vc_strerror(rc));
            exit(1);
        }
        vp_peer_connect(&g->peers[i], &l, vc_engine_fingerprint(e));
        if (i % 50 == 49)
            run_for(20); /* let handshakes through in batches */
    }
    uint64_t until = now_ms() + 30000;
    while (connected + failed < n && now_ms() < until)
        run_for(50);
    if (connected < n) {
        fprintf(stderr, "bench-voice: only %u of %zu legs connected (%u failed)\n", connected, n,
                failed);
        exit(1);
    }
}

static void leave_all(vc_engine *e, group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        vc_leg_close(e, g->legs[i]);
        vp_peer_close(&g->peers[i]);
    }
    run_for(100);
    free(g->peers);
    free(g->legs);
}

/* ---- capacity */

typedef struct load {
    double core_share; /* of one core, media thread */
    double handled;    /* of the packets a full-rate load would make, in and out */
    double per_core;   /* participants (or calls) per core */
    double us_per_participant;
    double us_per_packet; /* media thread CPU per packet in or out */
    double encodes_per_tick, decodes_per_tick, forwards_per_tick;
    uint64_t late_ticks;
} load;

/* The media thread's CPU over `ms` for `units` calls (or participants) made of
 * `participants` legs, `receivers` of which hear a mix. The generator shares
 * the machine and may send less than 50 packets a second per participant;
 * as the engine's cost follows its packets, the load is scaled by the share
 * of a full-rate load's packets (in and out) that it handled. */
static load measure(vc_engine *e, size_t units, size_t participants, size_t receivers, unsigned ms)
{
    vc_stats a, b;
    run_for(2000); /* the speakers get picked, buffers settle */
    vc_engine_stats(e, &a);
    uint64_t t0 = uv_hrtime();
    run_for(ms);
    vc_engine_stats(e, &b);
    double wall = (double)(uv_hrtime() - t0), cpu = (double)(b.cpu_ns - a.cpu_ns);
    double ticks = (double)(b.ticks - a.ticks);
    load l = {.core_share = cpu / wall};
    double packets = (double)(b.packets_in - a.packets_in + b.packets_out - a.packets_out);
    l.handled = packets / (wall / 1e9) / (50.0 * (double)(participants + receivers));
    l.per_core = (double)units * l.handled / l.core_share;
    l.us_per_packet = cpu / 1000.0 / packets;
    l.us_per_participant = cpu / 1000.0 / (wall / 1e9) / ((double)participants * l.handled);
    l.encodes_per_tick = (double)(b.encodes - a.encodes) / ticks;
    l.decodes_per_tick = (double)(b.decodes - a.decodes) / ticks;
    l.forwards_per_tick = (double)(b.forwards - a.forwards) / ticks;
    l.late_ticks = b.late_ticks - a.late_ticks;
    return l;
}

static vp_config speaker_cfg[3], listener_cfg;

static const vp_config *big_call_cfg(size_t i)
{
    return i < 3 ? &speaker_cfg[i] : &listener_cfg;
}

static uint64_t one_conf(size_t i)
{
    (void)i;
    return 1;
}

static const vp_config *call_of_4_cfg(size_t i)
{
    return i % 4 == 0 ? &speaker_cfg[0] : &listener_cfg;
}

static uint64_t conf_of_4(size_t i)
{
    return 100 + i / 4;
}

/* ---- quality */

/* Log-spectral distance (dB) of one 20 ms frame: 20 bands of 200 Hz from 100 Hz
 * to 4.1 kHz, each the mean of 8 Goertzel bins, both spectra floored 40 dB
 * below the original's strongest band (what lies below is inaudible next to it). */
static double lsd_frame(const int16_t *x, const int16_t *y)
{
    double px[20], py[20], peak = 0, acc = 0;
    for (int band = 0; band < 20; band++) {
        px[band] = py[band] = 0;
        for (int k = 0; k < 8; k++) {
            double hz = 100 + 200 * band + 25 * k;
            px[band] += vp_goertzel(x, 960, hz);
            py[band] += vp_goertzel(y, 960, hz);
        }
        if (px[band] > peak)
            peak = px[band];
    }
    double floor = peak * 1e-4 + 1e-12;
    for (int band = 0; band < 20; band++) {
        double d = 10 * log10((px[band] > floor ? px[band] : floor) /
                              (py[band] > floor ? py[band] : floor));
        acc += d * d;
    }
    return sqrt(acc / 20);
}

/* Mean LSD over the frames of x that carry voice; -1 when none does. */
static double block_lsd(const int16_t *x, const int16_t *y, size_t n, int *frames)
{
    double total = 0;
    for (size_t f = 0; f + 960 <= n; f += 960) {
        double sx = 0;
        for (size_t k = f; k < f + 960; k++)
            sx += (double)x[k] * x[k];
        if (sx < 960.0 * 300 * 300) /* skip pauses */
            continue;
        total += lsd_frame(x + f, y + f);
        (*frames)++;
    }
    return total;
}

/* Best lag of y against x around `guess` (samples), by waveform correlation. */
static long best_lag(const int16_t *x, size_t xn, const int16_t *y, size_t yn, size_t start,
                     size_t len, long guess, long range, long step)
{
    double best = -1; /* a block with no signal keeps the guess */
    long lag_best = guess;
    for (long lag = guess - range; lag <= guess + range; lag += step) {
        double xy = 0, xx = 0, yy = 0;
        for (size_t k = start; k<start + len; k += step> 1 ? 4 : 1) {
            long j = (long)k + lag;
            if (j < 0 || (size_t)j >= yn || k >= xn)
                continue;
            xy += (double)x[k] * y[j];
            xx += (double)x[k] * x[k];
            yy += (double)y[j] * y[j];
        }
        double c = xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : -1;
        if (c > best) {
            best = c;
            lag_best = lag;
        }
    }
    return lag_best;
}

/* Mean log-spectral distance of heard y from original x, aligned per 100 ms block. */
static double quality(const int16_t *x, size_t xn, const int16_t *y, size_t yn, size_t from,
                      size_t to)
{
    long global = best_lag(x, xn, y, yn, from, 48000, 0, 48000 / 2, 4);
    global = best_lag(x, xn, y, yn, from, 48000, global, 8, 1);
    double total = 0;
    int frames = 0;
    long lag = global;
    for (size_t b = from; b + 4800 <= to; b += 4800) {
        long l = best_lag(x, xn, y, yn, b, 4800, lag, 48 * 60, 4);
        l = best_lag(x, xn, y, yn, b, 4800, l, 8, 1);
        if (b + 4800 + (size_t)(l > 0 ? l : 0) > yn || (long)b + l < 0)
            continue;
        total += block_lsd(x + b, y + (long)b + l, 4800, &frames);
        lag = l;
    }
    return frames ? total / frames : -1;
}

/* The same stream, the same impairment, our jitter buffer and decoder, no bridge. */
static double direct_quality(const vp_config *cfg, double secs)
{
    int err;
    OpusEncoder *enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    OpusDecoder *dec = opus_decoder_create(48000, 1, &err);
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(5));
    opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
    opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(15));
    size_t frames = (size_t)(secs * 50), n = frames * 960;
    int16_t *x = malloc(n * sizeof(int16_t)), *y = calloc(n + 48000, sizeof(int16_t));
    uint8_t(*pkt)[1276] = malloc(frames * sizeof(*pkt));
    size_t *len = malloc(frames * sizeof(size_t));
    uint64_t *arrive = malloc(frames * sizeof(uint64_t));
    for (size_t k = 0; k < n; k++)
        x[k] = vp_signal_sample(cfg, k);
    for (size_t f = 0; f < frames; f++) {
        uint32_t r;
        RAND_bytes((unsigned char *)&r, sizeof(r));
        opus_int32 got = opus_encode(enc, x + f * 960, 960, pkt[f], 1276);
        len[f] = got > 0 ? (size_t)got : 0;
        bool lost = (double)r / 4294967296.0 < cfg->loss;
        arrive[f] =
            lost ? UINT64_MAX : 20 * f + (cfg->jitter_ms ? (r >> 8) % (cfg->jitter_ms + 1) : 0);
    }
    vc_jb jb;
    vc_jb_init(&jb, 200);
    size_t out = 0;
    for (uint64_t t = 0; t < 20 * frames + 200 && out + 960 <= n + 48000; t += 20) {
        for (size_t f = 0; f < frames; f++) /* what arrived in (t - 20, t] */
            if (arrive[f] != UINT64_MAX && arrive[f] <= t && arrive[f] + 20 > t)
                vc_jb_put(&jb, (uint16_t)f, (uint32_t)(f * 960), 1000 + arrive[f], pkt[f], len[f],
                          VC_LEVEL_UNKNOWN);
        const uint8_t *d;
        size_t dl;
        uint8_t lv;
        vc_jb_kind k = vc_jb_pop(&jb, &d, &dl, &lv);
        int16_t *o = y + out;
        int got = 0;
        if (k == VC_JB_PACKET)
            got = opus_decode(dec, d, (opus_int32)dl, o, 960, 0);
        else if (k == VC_JB_FEC)
            got = opus_decode(dec, d, (opus_int32)dl, o, 960, 1);
        else if (k == VC_JB_LOST)
            got = opus_decode(dec, NULL, 0, o, 960, 0);
        if (got < 960)
            memset(o + (got > 0 ? got : 0), 0,
                   sizeof(int16_t) * (size_t)(960 - (got > 0 ? got : 0)));
        if (k != VC_JB_NOTHING || out > 0)
            out += 960;
    }
    double q = quality(x, n, y, out, 48000, n - 48000);
    opus_encoder_destroy(enc);
    opus_decoder_destroy(dec);
    free(x);
    free(y);
    free(pkt);
    free(len);
    free(arrive);
    return q;
}

typedef struct heard {
    double bridge, direct;
    unsigned latency_ms;
    uint64_t lost, recovered, concealed;
} heard;

/* One talker, one listener and a third participant, who speaks a quiet tone
 * when `mixing` (two voices: decoded, mixed and re-encoded) and is silent
 * otherwise (one voice: passed through). */
static heard through_bridge(vc_engine *e, double loss, unsigned jitter_ms, double secs, bool mixing)
{
    static vp_peer talker, listener, other;
    vp_config t = {.signal = VP_SPEECHLIKE,
                   .amplitude = 0.3,
                   .level_id = 1,
                   .record = true,
                   .loss = loss,
                   .jitter_ms = jitter_ms};
    vp_config l = {.signal = VP_SILENCE, .level_id = 1, .record = true};
    heard h = {0};
    t.record_ms = l.record_ms = (unsigned)(secs * 1000) + 2000;
    t.t0_ms = l.t0_ms = now_ms();
    vp_config o = l;
    o.record = false;
    if (mixing) {
        o.signal = VP_TONE;
        o.tone_hz = 3000;
        o.amplitude = 0.05;
    }

    vc_remote r;
    vc_local loc;
    vc_leg_id lt, ll, lo;
    connected = 0;
    vp_peer_init(&talker, &loop, &t);
    vp_peer_remote(&talker, &r);
    vc_leg_open(e, 9, &r, &loc, &lt);
    vp_peer_connect(&talker, &loc, vc_engine_fingerprint(e));
    vp_peer_init(&listener, &loop, &l);
    vp_peer_remote(&listener, &r);
    vc_leg_open(e, 9, &r, &loc, &ll);
    vp_peer_connect(&listener, &loc, vc_engine_fingerprint(e));
    vp_peer_init(&other, &loop, &o);
    vp_peer_remote(&other, &r);
    vc_leg_open(e, 9, &r, &loc, &lo);
    vp_peer_connect(&other, &loc, vc_engine_fingerprint(e));
    while (connected < 3)
        run_for(20);
    run_for((unsigned)(secs * 1000));

    /* the talker's signal from its first sent sample; the listener's by RTP time */
    size_t xn = (size_t)talker.sample;
    int16_t *x = malloc(xn * sizeof(int16_t));
    for (size_t k = 0; k < xn; k++)
        x[k] = vp_signal_sample(&t, k);
    size_t from = 48000, to = listener.rx_end > 96000 ? listener.rx_end - 48000 : 0;
    h.bridge = quality(x, xn, listener.rx, listener.rx_end, from, to);
    size_t start = (size_t)(listener.cfg.record_ms > 4000 ? 1500 : 500);
    h.latency_ms = (unsigned)vp_latency_ms(&talker, &listener, start, start + 4000, 300);
    vc_leg_stats ls;
    vc_leg_stats_get(e, lt, &ls);
    h.lost = ls.packets_lost;
    h.recovered = ls.packets_recovered;
    h.concealed = ls.packets_concealed;
    free(x);
    vc_leg_close(e, lt);
    vc_leg_close(e, ll);
    vc_leg_close(e, lo);
    vp_peer_close(&talker);
    vp_peer_close(&listener);
    vp_peer_close(&other);
    run_for(200);
    h.direct = direct_quality(&t, secs);
    return h;
}

int main(int argc, char **argv)
{
    char err[128];
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strncmp(argv[i], "--only=", 7) == 0)
            only = argv[i] + 7;
        else {
            fprintf(stderr, "usage: bench_voice [--quick] [--only=big|calls|quality]\n");
            return 2;
        }
    }
    if (vp_global_init(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uv_loop_init(&loop);
    static const double tones[3] = {300, 520, 770};
    for (int i = 0; i < 3; i++)
        speaker_cfg[i] = (vp_config){.signal = VP_TONE,
                                     .tone_hz = tones[i],
                                     .amplitude = 0.2,
                                     .level_id = 1,
                                     .precoded = true};
    listener_cfg = (vp_config){.signal = VP_SILENCE, .level_id = 1, .precoded = true};
    unsigned window = quick ? 3000 : 6000;
    size_t big = quick ? 200 : 500, calls = quick ? 50 : 200;

    vc_engine *e = start_engine();
    printf("vestnik voice bridge media engine, loopback, one media thread\n\n");

    group g;
    if (!only || strcmp(only, "big") == 0) {
        join_all(e, &g, big, big_call_cfg, one_conf);
        load a = measure(e, big, big, big, window);
        leave_all(e, &g);
        printf("one call of %zu, 3 speaking (%.0f%% of the full-rate packets): media thread "
               "%.1f%% of a core\n  -> %.0f participants/core, %.0f us CPU per participant per "
               "second, %.1f us per packet; per tick %.2f encodes, %.2f decodes; %llu late ticks\n",
               big, 100 * a.handled, 100 * a.core_share, a.per_core, a.us_per_participant,
               a.us_per_packet, a.encodes_per_tick, a.decodes_per_tick,
               (unsigned long long)a.late_ticks);
        fflush(stdout);
    }

    if (!only || strcmp(only, "calls") == 0) {
        join_all(e, &g, calls * 4, call_of_4_cfg, conf_of_4);
        load c = measure(e, calls, calls * 4, calls * 3, window);
        leave_all(e, &g);
        printf("%zu calls of 4, 1 speaking in each (%.0f%% of the full-rate packets): media "
               "thread %.1f%% of a core\n  -> %.0f calls/core, %.0f us CPU per participant per "
               "second, %.1f us per packet; per tick %.2f encodes, %.2f decodes, %.2f "
               "pass-throughs; %llu late ticks\n",
               calls, 100 * c.handled, 100 * c.core_share, c.per_core, c.us_per_participant,
               c.us_per_packet, c.encodes_per_tick, c.decodes_per_tick, c.forwards_per_tick,
               (unsigned long long)c.late_ticks);
        fflush(stdout);
    }

    if (!only || strcmp(only, "quality") == 0) {
        double secs = quick ? 6 : 12;
        heard q0 = through_bridge(e, 0, 0, secs, false);
        heard qm = through_bridge(e, 0, 0, secs, true);
        printf("added latency through the bridge, 0%% loss, no jitter: one voice (passed "
               "through) %u ms, two voices (decoded, mixed, encoded) %u ms\n",
               q0.latency_ms, qm.latency_ms);
        printf(
            "\nreceived quality: log-spectral distance from the original, dB (lower is better)\n");
        printf("%-22s %8s %8s %6s %6s %6s\n", "path", "bridge", "direct", "lost", "FEC", "PLC");
        printf("%-22s %8.1f %8.1f %6llu %6llu %6llu\n", "0% loss, no jitter", q0.bridge, q0.direct,
               (unsigned long long)q0.lost, (unsigned long long)q0.recovered,
               (unsigned long long)q0.concealed);
        static const double losses[3] = {0, 0.05, 0.15};
        for (int i = 0; i < 3; i++) {
            heard q = through_bridge(e, losses[i], 30, secs, false);
            char label[40];
            snprintf(label, sizeof(label), "%.0f%% loss, 30 ms jitter", losses[i] * 100);
            printf("%-22s %8.1f %8.1f %6llu %6llu %6llu\n", label, q.bridge, q.direct,
                   (unsigned long long)q.lost, (unsigned long long)q.recovered,
                   (unsigned long long)q.concealed);
            fflush(stdout);
        }
    }
    vc_engine_stop(e);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
