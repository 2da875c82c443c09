/* mixer.h - who is heard, and the distinct mixes a call needs each tick.
 *
 * Each tick the engine rates every leg's activity (from the RFC 6464 level the
 * client put in the packet, or from the decoded frame's energy when it did
 * not), picks the loudest few as the speakers, decodes only those, and builds
 * one mix for all the listeners (every speaker) plus one per speaker (every
 * speaker but that one), so a call costs max_speakers + 1 encodes per tick
 * however many listen. Pure code, no Opus here.
 */
#ifndef VN_VOICE_MIXER_H
#define VN_VOICE_MIXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VC_FRAME_SAMPLES 960 /* 20 ms at 48 kHz, mono */
/* Activity is 127 - level (dB above -127 dBov), held at peaks and decayed. */
#define VC_SPEECH_ACTIVITY 70.0f /* louder than -57 dBov is speech */
#define VC_SPEAKER_BONUS 6.0f    /* dB a new voice must beat a current speaker by */

typedef struct vc_mix_input {
    float activity;
    bool eligible;     /* connected, not muted */
    bool was_speaking; /* a speaker last tick */
    bool speaking;     /* out: a speaker this tick */
} vc_mix_input;

/* The activity after a frame of the given level (VC_LEVEL_UNKNOWN: a lost or
 * missing frame, which only decays it). */
float vc_activity_update(float prev, uint8_t level);

/* RFC 6464 level (-dBov, 0..127) of a decoded frame. */
uint8_t vc_level_of_pcm(const int16_t *pcm, size_t samples);

/* Picks at most max_speakers speakers among in[0..n). Returns how many. */
unsigned vc_mix_select(vc_mix_input *in, size_t n, unsigned max_speakers);

/* Which mix each leg hears: mix_of[i] = 0 (all speakers) for a listener,
 * 1 + k for the k-th speaker (all speakers but itself). Returns the number of
 * distinct mixes that somebody among in[0..n) hears. */
unsigned vc_mix_plan(const vc_mix_input *in, size_t n, unsigned *mix_of);

/* full[s] = sum of the frames. */
void vc_mix_sum(int32_t *full, const int16_t *const *frames, size_t n_frames, size_t samples);
/* out = full - minus (minus may be NULL), clipped to 16 bits. */
void vc_mix_out(int16_t *out, const int32_t *full, const int16_t *minus, size_t samples);

#endif
