/* jitter.h - the adaptive jitter buffer of one participant's incoming Opus stream.
 *
 * The mixer pops one 20 ms frame per tick. Packets are kept by RTP sequence
 * number; the buffer waits for `target` frames before it starts playing and
 * adapts that target to the RFC 3550 interarrival jitter of the stream, so a
 * clean path costs one frame and a 30 ms jittery path about three. A frame
 * that has not arrived at its turn is lost: it is rebuilt from the next
 * packet's in-band FEC when that one is already here, else concealed (PLC).
 * When the buffer holds clearly more than the target for a while, one frame is
 * dropped to bring the delay back down. Pure code: no I/O, no clock of its own.
 */
#ifndef VN_VOICE_JITTER_H
#define VN_VOICE_JITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VC_JB_SLOTS 32
#define VC_JB_PAYLOAD_MAX 1276 /* the largest Opus packet, RFC 6716 */
#define VC_JB_FRAME_MS 20
#define VC_LEVEL_UNKNOWN 255

typedef struct vc_jb_slot {
    bool used;
    uint16_t seq;
    uint8_t level; /* RFC 6464 -dBov, VC_LEVEL_UNKNOWN without the extension */
    uint16_t len;
    uint8_t data[VC_JB_PAYLOAD_MAX];
} vc_jb_slot;

typedef enum vc_jb_kind {
    VC_JB_NOTHING, /* nothing to play: not started, or the talker went quiet (DTX) */
    VC_JB_PACKET,  /* the frame itself */
    VC_JB_FEC,     /* lost, but the next packet is here: decode its FEC */
    VC_JB_LOST,    /* lost: conceal */
} vc_jb_kind;

typedef struct vc_jb {
    vc_jb_slot slots[VC_JB_SLOTS];
    unsigned max_frames;
    unsigned target; /* frames */
    bool started;
    uint16_t next_seq; /* the next frame to play */
    uint16_t max_seq;  /* the highest sequence number seen */
    bool have_seq;
    unsigned underruns; /* consecutive pops with nothing at all buffered */
    unsigned waited;    /* pops since the first packet while not started */
    bool last_dtx;      /* the last frame played was a DTX one: the talker paused */
    unsigned over;      /* consecutive pops with too much buffered */
    /* RFC 3550 interarrival jitter, in 1/16 ms */
    int64_t last_transit;
    bool have_last;
    uint32_t jitter16;
    /* media time of the first packet, and the running extended timestamp */
    uint32_t last_ts;
    int64_t ext_ts;
    /* counters */
    uint64_t received, late, duplicates, lost, recovered, concealed, dropped;
} vc_jb;

void vc_jb_init(vc_jb *jb, unsigned max_ms);

/* Stores a packet that arrived at now_ms. Returns false (and drops it) when it
 * is a duplicate, too late, or too large. */
bool vc_jb_put(vc_jb *jb, uint16_t seq, uint32_t ts, uint64_t now_ms, const uint8_t *data,
               size_t len, uint8_t level);

/* The frame for this tick. For PACKET and FEC, *data and *len point into the
 * buffer (valid until the next put or pop) and *level is that packet's level. */
vc_jb_kind vc_jb_pop(vc_jb *jb, const uint8_t **data, size_t *len, uint8_t *level);

unsigned vc_jb_jitter_ms(const vc_jb *jb);
unsigned vc_jb_target_ms(const vc_jb *jb);
/* Frames from the next one to play to the newest one received. */
unsigned vc_jb_depth(const vc_jb *jb);

#endif
