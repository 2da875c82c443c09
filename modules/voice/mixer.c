/* mixer.c - speaker selection and mixing (see mixer.h). */
#include "mixer.h"

#include <math.h>

#include "jitter.h"

#define ACTIVITY_DECAY 1.5f /* dB per 20 ms: a voice stays picked ~0.4 s after it stops */

float vc_activity_update(float prev, uint8_t level)
{
    float now = level == VC_LEVEL_UNKNOWN ? 0.0f : 127.0f - (float)(level & 0x7f);
    float decayed = prev - ACTIVITY_DECAY;

    if (now > decayed)
        return now;
    return decayed > 0.0f ? decayed : 0.0f;
}

uint8_t vc_level_of_pcm(const int16_t *pcm, size_t samples)
{
    double sum = 0.0;

    for (size_t i = 0; i < samples; i++)
        sum += (double)pcm[i] * pcm[i];
    if (samples == 0 || sum <= 0.0)
        return 127;
    double rms = sqrt(sum / (double)samples) / 32768.0;
    double dbov = -20.0 * log10(rms);
    if (dbov < 0.0)
        return 0;
    return dbov >= 126.5 ? 127 : (uint8_t)(dbov + 0.5);
}

unsigned vc_mix_select(vc_mix_input *in, size_t n, unsigned max_speakers)
{
    unsigned chosen = 0;

    for (size_t i = 0; i < n; i++)
        in[i].speaking = false;
    while (chosen < max_speakers) {
        size_t best = n;
        float best_score = 0.0f;
        for (size_t i = 0; i < n; i++) {
            if (!in[i].eligible || in[i].speaking || in[i].activity < VC_SPEECH_ACTIVITY)
                continue;
            float score = in[i].activity + (in[i].was_speaking ? VC_SPEAKER_BONUS : 0.0f);
            if (best == n || score > best_score) {
                best = i;
                best_score = score;
            }
        }
        if (best == n)
            break;
        in[best].speaking = true;
        chosen++;
    }
    return chosen;
}

unsigned vc_mix_plan(const vc_mix_input *in, size_t n, unsigned *mix_of)
{
    unsigned speakers = 0;
    bool listener = false;

    for (size_t i = 0; i < n; i++) {
        if (in[i].speaking) {
            mix_of[i] = ++speakers;
        } else {
            mix_of[i] = 0;
            listener = true;
        }
    }
    return speakers + (listener ? 1 : 0);
}

void vc_mix_sum(int32_t *full, const int16_t *const *frames, size_t n_frames, size_t samples)
{
    for (size_t s = 0; s < samples; s++)
        full[s] = 0;
    for (size_t f = 0; f < n_frames; f++)
        for (size_t s = 0; s < samples; s++)
            full[s] += frames[f][s];
}

void vc_mix_out(int16_t *out, const int32_t *full, const int16_t *minus, size_t samples)
{
    for (size_t s = 0; s < samples; s++) {
        int32_t v = full[s] - (minus ? minus[s] : 0);
        out[s] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
}
