/* jitter.c - the adaptive jitter buffer (see jitter.h for the policy).
 *
 * Sequence numbers are compared as signed 16-bit differences, so wrapping is
 * free. An underrun (nothing at all buffered) does not advance the playout
 * point: the frame is concealed and played when it comes, which is how the
 * delay grows on a jitter spike; the overflow rule takes it back down. After
 * a DTX packet, or 200 ms of concealment, an underrun is silence instead; after
 * a second of nothing (DTX, mute, a dead path) the buffer starts afresh.
 */
#include "jitter.h"

#include <string.h>

#define SAMPLES_PER_MS 48
#define CONCEAL_UNDERRUNS 10 /* frames concealed before a talker counts as gone quiet */
#define DTX_MAX_BYTES 2      /* what Opus sends when DTX starts: nothing follows it */
#define RESTART_UNDERRUNS 50
#define OVER_MARGIN 2    /* frames above target tolerated ... */
#define OVER_PATIENCE 10 /* ... for this many pops before one is dropped */

static int16_t seq_diff(uint16_t a, uint16_t b)
{
    return (int16_t)(uint16_t)(a - b);
}

void vc_jb_init(vc_jb *jb, unsigned max_ms)
{
    memset(jb, 0, sizeof(*jb));
    jb->max_frames = max_ms / VC_JB_FRAME_MS;
    if (jb->max_frames < 1)
        jb->max_frames = 1;
    if (jb->max_frames > VC_JB_SLOTS - OVER_MARGIN - 2)
        jb->max_frames = VC_JB_SLOTS - OVER_MARGIN - 2;
    jb->target = 1;
}

static void flush(vc_jb *jb)
{
    for (unsigned i = 0; i < VC_JB_SLOTS; i++)
        jb->slots[i].used = false;
    jb->started = false;
    jb->waited = 0;
    jb->underruns = 0;
    jb->over = 0;
    jb->have_last = false;
}

/* Three times the RFC 3550 jitter covers nearly all of a path's delay
 * variation (uniform 0..30 ms gives J = 10 ms and three frames); a difference
 * of transit times, J ignores a sender whose clock runs slow or fast. */
static void update_target(vc_jb *jb)
{
    unsigned target = 1 + (3 * jb->jitter16 / 16 + VC_JB_FRAME_MS / 2) / VC_JB_FRAME_MS;
    jb->target = target > jb->max_frames ? jb->max_frames : target;
}

static void note_arrival(vc_jb *jb, uint32_t ts, uint64_t now_ms)
{
    if (jb->received == 0)
        jb->ext_ts = 0;
    else
        jb->ext_ts += (int32_t)(ts - jb->last_ts);
    jb->last_ts = ts;

    int64_t transit = (int64_t)now_ms - jb->ext_ts / SAMPLES_PER_MS;
    if (jb->have_last) {
        int64_t d = transit - jb->last_transit;
        if (d < 0)
            d = -d;
        if (d > 10000)
            d = 10000;
        /* J += (|D| - J) / 16, kept as 16 J */
        jb->jitter16 = (uint32_t)((int64_t)jb->jitter16 + d - (jb->jitter16 + 8) / 16);
    }
    jb->last_transit = transit;
    jb->have_last = true;
    update_target(jb);
}

bool vc_jb_put(vc_jb *jb, uint16_t seq, uint32_t ts, uint64_t now_ms, const uint8_t *data,
               size_t len, uint8_t level)
{
    if (len == 0 || len > VC_JB_PAYLOAD_MAX)
        return false;
    if (jb->started) {
        int16_t ahead = seq_diff(seq, jb->next_seq);
        if (ahead < 0) {
            jb->late++;
            return false;
        }
        if (ahead >= VC_JB_SLOTS - 1)
            flush(jb); /* a jump: the sender restarted its numbering */
    }
    vc_jb_slot *slot = &jb->slots[seq % VC_JB_SLOTS];
    if (slot->used && slot->seq == seq) {
        jb->duplicates++;
        return false;
    }
    note_arrival(jb, ts, now_ms);
    jb->received++;
    if (!jb->have_seq || seq_diff(seq, jb->max_seq) > 0)
        jb->max_seq = seq;
    jb->have_seq = true;
    slot->used = true;
    slot->seq = seq;
    slot->level = level;
    slot->len = (uint16_t)len;
    memcpy(slot->data, data, len);
    return true;
}

/* The oldest buffered packet within a window below max_seq, or false. */
static bool oldest(const vc_jb *jb, uint16_t *seq)
{
    bool found = false;

    for (unsigned back = 0; back < VC_JB_SLOTS; back++) {
        uint16_t s = (uint16_t)(jb->max_seq - back);
        const vc_jb_slot *slot = &jb->slots[s % VC_JB_SLOTS];
        if (slot->used && slot->seq == s) {
            *seq = s;
            found = true;
        }
    }
    return found;
}

unsigned vc_jb_depth(const vc_jb *jb)
{
    if (!jb->started)
        return 0;
    int16_t d = seq_diff(jb->max_seq, jb->next_seq);
    return d < 0 ? 0 : (unsigned)d + 1;
}

static vc_jb_slot *slot_of(vc_jb *jb, uint16_t seq)
{
    vc_jb_slot *slot = &jb->slots[seq % VC_JB_SLOTS];
    return slot->used && slot->seq == seq ? slot : NULL;
}

vc_jb_kind vc_jb_pop(vc_jb *jb, const uint8_t **data, size_t *len, uint8_t *level)
{
    *data = NULL;
    *len = 0;
    *level = VC_LEVEL_UNKNOWN;

    if (!jb->started) {
        uint16_t first;
        if (!oldest(jb, &first))
            return VC_JB_NOTHING;
        unsigned span = (unsigned)seq_diff(jb->max_seq, first) + 1;
        if (span < jb->target && ++jb->waited < jb->target)
            return VC_JB_NOTHING;
        jb->started = true;
        jb->next_seq = first;
        jb->waited = 0;
        jb->underruns = 0;
        jb->over = 0;
    }

    unsigned depth = vc_jb_depth(jb);
    jb->over = depth > jb->target + OVER_MARGIN ? jb->over + 1 : 0;
    if (jb->over >= OVER_PATIENCE || depth > jb->max_frames + OVER_MARGIN) {
        vc_jb_slot *drop = slot_of(jb, jb->next_seq);
        if (drop)
            drop->used = false;
        jb->next_seq++;
        jb->dropped++;
        jb->over = 0;
        depth--;
    }

    vc_jb_slot *slot = slot_of(jb, jb->next_seq);
    if (slot) {
        slot->used = false; /* the data stays readable until the next put */
        jb->next_seq++;
        jb->underruns = 0;
        jb->last_dtx = slot->len <= DTX_MAX_BYTES;
        *data = slot->data;
        *len = slot->len;
        *level = slot->level;
        return VC_JB_PACKET;
    }
    if (depth == 0) {
        jb->underruns++;
        if (jb->underruns >= RESTART_UNDERRUNS) {
            flush(jb);
            return VC_JB_NOTHING;
        }
        if (jb->last_dtx || jb->underruns > CONCEAL_UNDERRUNS)
            return VC_JB_NOTHING;
        jb->concealed++;
        return VC_JB_LOST;
    }
    /* next_seq is missing but later packets are here: it is lost */
    jb->lost++;
    jb->underruns = 0;
    jb->next_seq++;
    vc_jb_slot *next = slot_of(jb, jb->next_seq);
    if (next) {
        jb->recovered++;
        *data = next->data;
        *len = next->len;
        *level = next->level;
        return VC_JB_FEC;
    }
    jb->concealed++;
    return VC_JB_LOST;
}

unsigned vc_jb_jitter_ms(const vc_jb *jb)
{
    return jb->jitter16 / 16;
}

unsigned vc_jb_target_ms(const vc_jb *jb)
{
    return jb->target * VC_JB_FRAME_MS;
}
