/*
 * test_voice_mixer.c - the conference bridge's mixer: speaker selection with
 * hysteresis, one shared mix for the listeners and an n-1 mix per speaker, and
 * the energy measure used when a client sends no RFC 6464 level.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jitter.h"
#include "mixer.h"

static void test_loudest_speakers_are_picked(void **state)
{
    vc_mix_input in[6] = {0};
    /* levels in -dBov: 20 and 30 and 35 are voices, 90 is room noise */
    const uint8_t level[6] = {90, 20, 35, 30, 25, 127};

    for (int i = 0; i < 6; i++) {
        in[i].eligible = i != 4; /* 4 is muted by a moderator */
        in[i].activity = vc_activity_update(0.0f, level[i]);
    }
    assert_int_equal(vc_mix_select(in, 6, 3), 3);
    assert_false(in[0].speaking);
    assert_true(in[1].speaking);
    assert_true(in[2].speaking);
    assert_true(in[3].speaking);
    assert_false(in[4].speaking);
    assert_false(in[5].speaking);

    /* a slightly louder newcomer does not unseat a current speaker ... */
    for (int i = 0; i < 6; i++)
        in[i].was_speaking = in[i].speaking;
    in[0].activity = in[2].activity + 3.0f;
    vc_mix_select(in, 6, 3);
    assert_false(in[0].speaking);
    assert_true(in[2].speaking);
    /* ... a much louder one does */
    in[0].activity = in[2].activity + 10.0f;
    vc_mix_select(in, 6, 3);
    assert_true(in[0].speaking);
    assert_false(in[2].speaking);
}

static void test_activity_holds_then_decays(void **state)
{
    float a = vc_activity_update(0.0f, 20);

    assert_true(a > VC_SPEECH_ACTIVITY);
    /* a lost frame or a pause keeps the voice picked for a while */
    for (int i = 0; i < 10; i++)
        a = vc_activity_update(a, VC_LEVEL_UNKNOWN);
    assert_true(a > VC_SPEECH_ACTIVITY);
    for (int i = 0; i < 40; i++)
        a = vc_activity_update(a, 127);
    assert_true(a < VC_SPEECH_ACTIVITY);
}

static void test_distinct_mixes(void **state)
{
    vc_mix_input in[10] = {0};
    unsigned mix_of[10];

    /* ten in the call, three speaking: four encodes, not ten */
    in[2].speaking = in[5].speaking = in[7].speaking = true;
    assert_int_equal(vc_mix_plan(in, 10, mix_of), 4);
    for (int i = 0; i < 10; i++) {
        if (i == 2 || i == 5 || i == 7)
            assert_int_not_equal(mix_of[i], 0);
        else
            assert_int_equal(mix_of[i], 0);
    }
    assert_int_not_equal(mix_of[2], mix_of[5]);
    assert_int_not_equal(mix_of[5], mix_of[7]);
    /* everybody speaking: nobody shares */
    for (int i = 0; i < 3; i++)
        in[i].speaking = true;
    assert_int_equal(vc_mix_plan(in, 3, mix_of), 3);
    /* nobody speaking: one (silent) mix for all */
    memset(in, 0, sizeof(in));
    assert_int_equal(vc_mix_plan(in, 10, mix_of), 1);
}

static void test_n_minus_one(void **state)
{
    static int16_t a[VC_FRAME_SAMPLES], b[VC_FRAME_SAMPLES], c[VC_FRAME_SAMPLES];
    int32_t full[VC_FRAME_SAMPLES];
    int16_t out[VC_FRAME_SAMPLES];

    for (int s = 0; s < VC_FRAME_SAMPLES; s++) {
        a[s] = 1000;
        b[s] = (int16_t)(s % 2 ? 20000 : -20000);
        c[s] = 30000;
    }
    const int16_t *frames[] = {a, b, c};
    vc_mix_sum(full, frames, 3, VC_FRAME_SAMPLES);
    /* the listeners' mix: everyone, clipped */
    vc_mix_out(out, full, NULL, VC_FRAME_SAMPLES);
    assert_int_equal(out[0], 11000);
    assert_int_equal(out[1], 32767);
    /* a's mix: b + c, never a itself */
    vc_mix_out(out, full, a, VC_FRAME_SAMPLES);
    assert_int_equal(out[0], 10000);
    assert_int_equal(out[1], 32767);
    /* c's mix: a + b */
    vc_mix_out(out, full, c, VC_FRAME_SAMPLES);
    assert_int_equal(out[0], -19000);
    assert_int_equal(out[1], 21000);
}

static void test_energy_level(void **state)
{
    static int16_t pcm[VC_FRAME_SAMPLES];

    assert_int_equal(vc_level_of_pcm(pcm, VC_FRAME_SAMPLES), 127);
    for (int s = 0; s < VC_FRAME_SAMPLES; s++)
        pcm[s] = (int16_t)(s % 2 ? 3277 : -3277); /* 0.1 of full scale: -20 dBov */
    assert_int_equal(vc_level_of_pcm(pcm, VC_FRAME_SAMPLES), 20);
    for (int s = 0; s < VC_FRAME_SAMPLES; s++)
        pcm[s] = (int16_t)(s % 2 ? 32767 : -32768);
    assert_int_equal(vc_level_of_pcm(pcm, VC_FRAME_SAMPLES), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loudest_speakers_are_picked),
        cmocka_unit_test(test_activity_holds_then_decays),
        cmocka_unit_test(test_distinct_mixes),
        cmocka_unit_test(test_n_minus_one),
        cmocka_unit_test(test_energy_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
