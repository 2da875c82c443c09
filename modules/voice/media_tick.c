/* media_tick.c - the 20 ms tick: each leg's timers, then each call's mix.
 *
 * Per call and tick: every connected leg's jitter buffer gives up one frame;
 * its activity comes from the packet's RFC 6464 level, or from the decoded
 * frame's energy when the client sends none (those legs are always decoded).
 * The loudest max_speakers become the speakers. With one, its packets are
 * passed through to everyone else untouched. With more, only they are decoded
 * (PLC for a lost frame, the next packet's FEC when it is here); listeners
 * share one encode of all the speakers and each speaker gets its own encode
 * of the others. A mix with no voice in it is not encoded or sent at all (as
 * with DTX, the receiver's decoder makes the comfort noise). So a call costs
 * at most max_speakers decodes (plus the level-less legs) and max_speakers + 1
 * encodes per tick however many listen, and a participant's bad network only
 * ever touches its own jitter buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "media_internal.h"

#define OPUS_LOSS_PERC 10 /* what the FEC we send is sized for */

/* ---- calls */

int vc_conf_add_leg(vc_engine *e, vc_leg *leg)
{
    vc_conf *c = e->confs;

    while (c && c->id != leg->conf_id)
        c = c->next;
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return -1;
        c->id = leg->conf_id;
        c->next = e->confs;
        e->confs = c;
        atomic_fetch_add(&e->n_confs, 1);
    }
    leg->next = c->legs;
    c->legs = leg;
    c->n_legs++;
    leg->conf = c;
    return 0;
}

void vc_conf_remove_leg(vc_engine *e, vc_leg *leg)
{
    vc_conf *c = leg->conf;

    for (vc_leg **p = &c->legs; *p; p = &(*p)->next) {
        if (*p == leg) {
            *p = leg->next;
            break;
        }
    }
    c->n_legs--;
    if (leg->enc_slot)
        c->enc_used[leg->enc_slot] = false;
    leg->enc_slot = 0;
    leg->conf = NULL;
    if (c->n_legs)
        return;
    for (vc_conf **p = &e->confs; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    for (unsigned i = 0; i < VC_MAX_MIXES_PER_CONF; i++)
        if (c->enc[i])
            opus_encoder_destroy(c->enc[i]);
    free(c);
    atomic_fetch_sub(&e->n_confs, 1);
}

static OpusEncoder *encoder(vc_engine *e, vc_conf *c, unsigned slot)
{
    if (!c->enc[slot]) {
        int err;
        OpusEncoder *enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
        if (!enc)
            return NULL;
        opus_encoder_ctl(enc, OPUS_SET_BITRATE((opus_int32)e->cfg.opus_bitrate));
        opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY((opus_int32)e->cfg.opus_complexity));
        opus_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
        opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
        opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(OPUS_LOSS_PERC));
        /* no DTX: its voice detector takes steady sounds (a tone, music, hum)
         * for silence; a mix with no voice in it is not sent at all instead */
        opus_encoder_ctl(enc, OPUS_SET_DTX(0));
        c->enc[slot] = enc;
    }
    return c->enc[slot];
}

/* ---- one leg */

static void leg_timers(vc_engine *e, vc_leg *leg, uint64_t now)
{
    switch (leg->state) {
    case VC_LEG_CHECKING:
        if (now - leg->opened_ms > e->cfg.connect_timeout_ms)
            vc_leg_fail(leg, VC_FAIL_ICE_TIMEOUT, "no connectivity check nominated a pair");
        break;
    case VC_LEG_DTLS:
        if (now - leg->opened_ms > e->cfg.connect_timeout_ms)
            vc_leg_fail(leg, VC_FAIL_DTLS, "the DTLS handshake timed out");
        else
            vc_dtls_timer(leg);
        break;
    case VC_LEG_CONNECTED:
        if (now - leg->last_consent_ms > e->cfg.consent_timeout_ms) {
            vc_leg_fail(leg, VC_FAIL_CONSENT, "consent to send expired");
        } else if (now >= leg->next_rtcp_ms) {
            uint16_t r;
            vc_random(&r, sizeof(r));
            vc_rtcp_send(leg);
            /* RFC 3550 §6.3.1: randomised between 0.5 and 1.5 intervals */
            leg->next_rtcp_ms =
                now + e->cfg.rtcp_interval_ms / 2 + (uint64_t)e->cfg.rtcp_interval_ms * r / 65536;
        }
        break;
    case VC_LEG_FAILED: break;
    }
}

static void decode(vc_engine *e, vc_leg *leg)
{
    int n;

    switch (leg->kind) {
    case VC_JB_PACKET:
        n = opus_decode(leg->dec, leg->frame, (opus_int32)leg->frame_len, leg->pcm,
                        VC_FRAME_SAMPLES, 0);
        break;
    case VC_JB_FEC:
        n = opus_decode(leg->dec, leg->frame, (opus_int32)leg->frame_len, leg->pcm,
                        VC_FRAME_SAMPLES, 1);
        break;
    case VC_JB_LOST: n = opus_decode(leg->dec, NULL, 0, leg->pcm, VC_FRAME_SAMPLES, 0); break;
    default: n = 0; break;
    }
    if (leg->kind != VC_JB_NOTHING)
        atomic_fetch_add(&e->decodes, 1);
    if (n < VC_FRAME_SAMPLES) /* nothing, or a packet that is not 20 ms: silence */
        memset(leg->pcm + (n > 0 ? n : 0), 0,
               sizeof(int16_t) * (size_t)(VC_FRAME_SAMPLES - (n > 0 ? n : 0)));
    leg->have_pcm = true;
}

static void publish(vc_leg *leg)
{
    atomic_store(&leg->st.lost, leg->jb.lost);
    atomic_store(&leg->st.concealed, leg->jb.concealed);
    atomic_store(&leg->st.recovered, leg->jb.recovered);
    atomic_store(&leg->st.jitter_ms, vc_jb_jitter_ms(&leg->jb));
    atomic_store(&leg->st.buffer_ms, vc_jb_target_ms(&leg->jb));
}

/* ---- one call */

static size_t pull_frames(vc_engine *e, vc_conf *c)
{
    size_t n = 0;

    for (vc_leg *leg = c->legs; leg; leg = leg->next) {
        if (leg->state != VC_LEG_CONNECTED) {
            if (leg->enc_slot)
                c->enc_used[leg->enc_slot] = false;
            leg->enc_slot = 0;
            leg->speaking = false;
            continue;
        }
        if (n == e->cfg.max_legs_per_conf)
            break;
        uint8_t level;
        leg->have_pcm = false;
        leg->kind = vc_jb_pop(&leg->jb, &leg->frame, &leg->frame_len, &level);
        bool heard = leg->kind == VC_JB_PACKET || leg->kind == VC_JB_FEC;
        if (heard && level == VC_LEVEL_UNKNOWN) { /* no RFC 6464: measure it */
            decode(e, leg);
            level = vc_level_of_pcm(leg->pcm, VC_FRAME_SAMPLES);
        }
        leg->activity = vc_activity_update(leg->activity, heard ? level : VC_LEVEL_UNKNOWN);
        publish(leg);
        e->scratch_legs[n] = leg;
        e->scratch_in[n] = (vc_mix_input){
            .activity = leg->activity, .eligible = !leg->muted, .was_speaking = leg->speaking};
        n++;
    }
    return n;
}

static void set_speaking(vc_engine *e, vc_conf *c, vc_leg *leg, bool speaking)
{
    if (speaking != leg->speaking) {
        leg->speaking = speaking;
        atomic_store(&leg->st.speaking, speaking);
        vc_emit(e, speaking ? VC_EV_SPEAKING : VC_EV_SILENT, leg, VC_FAIL_NONE, NULL);
    }
    if (!speaking && leg->enc_slot) {
        c->enc_used[leg->enc_slot] = false;
        leg->enc_slot = 0;
    }
    if (speaking && !leg->enc_slot) {
        for (unsigned s = 1; s <= e->cfg.max_speakers; s++) {
            if (!c->enc_used[s]) {
                c->enc_used[s] = true;
                leg->enc_slot = s;
                break;
            }
        }
    }
}

static size_t encode(vc_engine *e, vc_conf *c, unsigned slot, const int16_t *pcm, uint8_t *out)
{
    OpusEncoder *enc = encoder(e, c, slot);
    if (!enc)
        return 0;
    opus_int32 n = opus_encode(enc, pcm, VC_FRAME_SAMPLES, out, VC_JB_PAYLOAD_MAX);
    atomic_fetch_add(&e->encodes, 1);
    return n > 0 ? (size_t)n : 0;
}

/* After a leg's share of a tick: a leg that got nothing starts a talkspurt
 * with its next packet, unless the nothing stood for a lost packet. */
static void end_tick(vc_leg *leg, uint64_t sent_before, bool lost)
{
    if (leg->tx_packets == sent_before && !lost)
        leg->marker = true;
    leg->ts += VC_FRAME_SAMPLES;
}

/* One voice: its packets are the listeners' mix as they came, with no decode
 * and no second encode (no tandem loss, no added codec delay). A frame it lost
 * becomes a gap in each listener's sequence numbers, so the listener's decoder
 * uses the next packet's in-band FEC or conceals, as on a direct call. */
static void forward(vc_engine *e, vc_leg **legs, size_t n, const vc_leg *voice)
{
    bool lost = voice->kind == VC_JB_LOST || voice->kind == VC_JB_FEC;

    if (voice->kind == VC_JB_PACKET)
        atomic_fetch_add(&e->forwards, 1);
    for (size_t i = 0; i < n; i++) {
        vc_leg *leg = legs[i];
        uint64_t sent = leg->tx_packets;
        if (leg != voice && voice->kind == VC_JB_PACKET)
            vc_rtp_send(leg, voice->frame, voice->frame_len);
        else if (leg != voice && lost)
            leg->seq++;
        end_tick(leg, sent, leg != voice && lost);
    }
}

static void mix_conf(vc_engine *e, vc_conf *c)
{
    size_t n = pull_frames(e, c);
    vc_leg **legs = e->scratch_legs, *voice = NULL;
    unsigned speakers = vc_mix_select(e->scratch_in, n, e->cfg.max_speakers);
    const int16_t *frames[VC_MAX_MIXES_PER_CONF];
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        set_speaking(e, c, legs[i], e->scratch_in[i].speaking);
        if (legs[i]->speaking)
            voice = legs[i];
    }
    if (speakers == 1) {
        forward(e, legs, n, voice);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!legs[i]->speaking || k == VC_MAX_MIXES_PER_CONF)
            continue;
        if (!legs[i]->have_pcm)
            decode(e, legs[i]);
        frames[k++] = legs[i]->pcm;
    }
    vc_mix_plan(e->scratch_in, n, e->scratch_mix);

    int32_t full[VC_FRAME_SAMPLES];
    int16_t pcm[VC_FRAME_SAMPLES];
    uint8_t packet[VC_JB_PAYLOAD_MAX];
    size_t listeners_len = 0;
    vc_mix_sum(full, frames, k, VC_FRAME_SAMPLES);
    if (speakers > 0 && n > speakers) {
        vc_mix_out(pcm, full, NULL, VC_FRAME_SAMPLES);
        listeners_len = encode(e, c, 0, pcm, packet);
    }
    for (size_t i = 0; i < n; i++) {
        vc_leg *leg = legs[i];
        uint64_t sent = leg->tx_packets;
        if (e->scratch_mix[i] == 0) {
            if (listeners_len)
                vc_rtp_send(leg, packet, listeners_len);
        } else if (leg->enc_slot) {
            uint8_t own[VC_JB_PAYLOAD_MAX];
            vc_mix_out(pcm, full, leg->pcm, VC_FRAME_SAMPLES);
            size_t len = encode(e, c, leg->enc_slot, pcm, own);
            if (len)
                vc_rtp_send(leg, own, len);
        }
        end_tick(leg, sent, false);
    }
}

void vc_tick(vc_engine *e)
{
    for (vc_conf *c = e->confs; c; c = c->next)
        for (vc_leg *leg = c->legs; leg; leg = leg->next)
            vc_leg_drain(leg);
    uint64_t now = vc_now_ms();
    for (vc_conf *c = e->confs; c; c = c->next)
        for (vc_leg *leg = c->legs; leg; leg = leg->next)
            leg_timers(e, leg, now);
    for (vc_conf *c = e->confs; c; c = c->next)
        mix_conf(e, c);
}
