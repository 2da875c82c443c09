/*
 * test_voice_jitter.c - the conference bridge's jitter buffer: in-order play,
 * reordering, loss with and without a next packet for FEC, the adaptive
 * target under jitter, and the way back down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jitter.h"

/* Puts packet seq with media time ts (its payload is its own number). */
static bool put_ts(vc_jb *jb, uint16_t seq, uint32_t ts, uint64_t now_ms)
{
    uint8_t payload[3] = {(uint8_t)(seq >> 8), (uint8_t)seq, 0}; /* 3 bytes: not DTX */
    return vc_jb_put(jb, seq, ts, now_ms, payload, sizeof(payload), 30);
}

static bool put(vc_jb *jb, uint16_t seq, uint64_t now_ms)
{
    return put_ts(jb, seq, (uint32_t)seq * 960u, now_ms);
}

/* Pops and returns the kind; *seq is the packet's number for PACKET/FEC. */
static vc_jb_kind pop(vc_jb *jb, int *seq)
{
    const uint8_t *data;
    size_t len;
    uint8_t level;
    vc_jb_kind kind = vc_jb_pop(jb, &data, &len, &level);

    *seq = -1;
    if (kind == VC_JB_PACKET || kind == VC_JB_FEC) {
        assert_int_equal(len, 3);
        assert_int_equal(level, 30);
        *seq = data[0] << 8 | data[1];
    }
    return kind;
}

static void test_in_order_costs_one_frame(void **state)
{
    vc_jb jb;
    int seq;

    vc_jb_init(&jb, 200);
    assert_int_equal(pop(&jb, &seq), VC_JB_NOTHING);
    /* packets every 20 ms, wrapping the 16-bit sequence space */
    for (unsigned i = 0; i < 100; i++) {
        uint16_t s = (uint16_t)(65500 + i);
        assert_true(put_ts(&jb, s, 960 * i, 1000 + 20 * i));
        assert_int_equal(pop(&jb, &seq), VC_JB_PACKET);
        assert_int_equal(seq, s);
    }
    assert_int_equal(vc_jb_target_ms(&jb), 20);
    assert_int_equal(jb.lost, 0);
    assert_true(put_ts(&jb, 64, 960 * 100, 3020));
    assert_false(put_ts(&jb, 64, 960 * 100, 3021)); /* a duplicate */
    assert_int_equal(jb.duplicates, 1);
    assert_false(put_ts(&jb, 63, 960 * 99, 3022)); /* played already */
    assert_int_equal(jb.late, 1);
}

/* a repeating 0..30 ms extra delay: the 30 ms jitter of the benchmark */
static const int extra[] = {0, 30, 10, 25, 5, 15, 30, 0, 20, 10};

static void test_reorder_within_the_target(void **state)
{
    vc_jb jb;
    int seq, want = 40;

    vc_jb_init(&jb, 200);
    for (unsigned i = 0; i < 40; i++) {
        put(&jb, (uint16_t)i, 1000 + 20 * i + (uint64_t)extra[i % 10]);
        pop(&jb, &seq);
    }
    assert_true(jb.target >= 3);
    /* 41 overtakes 40: both are played, in order */
    put(&jb, 41, 1000 + 20 * 40);
    put(&jb, 40, 1000 + 20 * 40 + 15);
    put(&jb, 42, 1000 + 20 * 42);
    put(&jb, 43, 1000 + 20 * 43);
    for (int i = 0; i < 12 && want <= 43; i++)
        if (pop(&jb, &seq) == VC_JB_PACKET && seq >= 40)
            assert_int_equal(seq, want++);
    assert_int_equal(want, 44);
    assert_int_equal(jb.lost, 0);
    assert_int_equal(jb.late, 0);
}

static void test_loss_uses_fec_of_the_next_packet(void **state)
{
    vc_jb jb;
    int seq;

    vc_jb_init(&jb, 200);
    put(&jb, 10, 1000);
    assert_int_equal(pop(&jb, &seq), VC_JB_PACKET);
    put(&jb, 12, 1040); /* 11 is lost, 12 is here */
    assert_int_equal(pop(&jb, &seq), VC_JB_FEC);
    assert_int_equal(seq, 12);
    assert_int_equal(pop(&jb, &seq), VC_JB_PACKET);
    assert_int_equal(seq, 12);
    /* two lost in a row: the first is concealed, the second gets FEC */
    put(&jb, 15, 1100);
    assert_int_equal(pop(&jb, &seq), VC_JB_LOST);
    assert_int_equal(pop(&jb, &seq), VC_JB_FEC);
    assert_int_equal(seq, 15);
    assert_int_equal(pop(&jb, &seq), VC_JB_PACKET);
    assert_int_equal(jb.lost, 3);
    assert_int_equal(jb.recovered, 2);
    /* a packet that comes after its turn is late, not played */
    assert_false(put(&jb, 13, 1120));
    assert_int_equal(jb.late, 1);
}

static void test_underrun_conceals_then_waits(void **state)
{
    vc_jb jb;
    int seq;

    vc_jb_init(&jb, 200);
    put(&jb, 1, 1000);
    assert_int_equal(pop(&jb, &seq), VC_JB_PACKET);
    /* packet 2 is late: concealed, but the playout point waits for it */
    assert_int_equal(pop(&jb, &seq), VC_JB_LOST);
    put(&jb, 2, 1045);
    assert_int_equal(pop(&jb, &seq), VC_JB_PACKET);
    assert_int_equal(seq, 2);
    assert_int_equal(jb.lost, 0);
    /* the path goes dead: 200 ms of concealment, then silence */
    int concealed = 0, nothing = 0;
    for (int i = 0; i < 20; i++) {
        vc_jb_kind k = pop(&jb, &seq);
        concealed += k == VC_JB_LOST;
        nothing += k == VC_JB_NOTHING;
    }
    assert_int_equal(concealed, 10);
    assert_int_equal(nothing, 10);
    /* the talker pauses with a DTX packet: nothing to conceal after it */
    const uint8_t dtx[1] = {0x08};
    const uint8_t *data;
    size_t len;
    uint8_t level;
    vc_jb_put(&jb, 3, 3 * 960, 1500, dtx, sizeof(dtx), 127);
    assert_int_equal(vc_jb_pop(&jb, &data, &len, &level), VC_JB_PACKET);
    assert_int_equal(vc_jb_pop(&jb, &data, &len, &level), VC_JB_NOTHING);
}

static void test_jitter_raises_the_target_and_it_comes_down(void **state)
{
    vc_jb jb;
    int seq;

    vc_jb_init(&jb, 200);
    uint64_t now = 1000;
    unsigned played = 0, lost = 0;
    for (unsigned i = 0; i < 200; i++) {
        put(&jb, (uint16_t)i, 1000 + 20 * i + (uint64_t)extra[i % 10]);
        now = 1000 + 20 * i + 30;
        (void)now;
        vc_jb_kind k = pop(&jb, &seq);
        played += k == VC_JB_PACKET;
        lost += k == VC_JB_LOST || k == VC_JB_FEC;
    }
    printf("# jitter %u ms, target %u ms\n", vc_jb_jitter_ms(&jb), vc_jb_target_ms(&jb));
    assert_true(vc_jb_target_ms(&jb) >= 60 && vc_jb_target_ms(&jb) <= 80);
    assert_true(vc_jb_jitter_ms(&jb) >= 10);
    assert_true(played >= 190);
    assert_int_equal(jb.lost, 0);
    /* the path gets clean; a burst had filled the buffer: it drains to the target */
    for (unsigned i = 200; i < 400; i++) {
        put(&jb, (uint16_t)i, 1000 + 20 * i);
        if (i == 300) {
            for (unsigned j = 1; j <= 6; j++)
                put(&jb, (uint16_t)(i + j), 1000 + 20 * i);
            i += 6;
        }
        pop(&jb, &seq);
    }
    assert_int_equal(vc_jb_target_ms(&jb), 20);
    assert_true(vc_jb_depth(&jb) <= jb.target + 2);
    assert_true(jb.dropped >= 1);
}

static void test_bad_input(void **state)
{
    vc_jb jb;
    uint8_t big[VC_JB_PAYLOAD_MAX + 1] = {0};

    vc_jb_init(&jb, 200);
    assert_false(vc_jb_put(&jb, 1, 0, 0, big, sizeof(big), 0));
    assert_false(vc_jb_put(&jb, 1, 0, 0, big, 0, 0));
    /* a sequence jump far ahead restarts the buffer instead of wedging it */
    int seq;
    put(&jb, 5, 1000);
    assert_int_equal(pop(&jb, &seq), VC_JB_PACKET);
    put(&jb, 30000, 1020);
    assert_int_equal(pop(&jb, &seq), VC_JB_PACKET);
    assert_int_equal(seq, 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_costs_one_frame),
        cmocka_unit_test(test_reorder_within_the_target),
        cmocka_unit_test(test_loss_uses_fec_of_the_next_packet),
        cmocka_unit_test(test_underrun_conceals_then_waits),
        cmocka_unit_test(test_jitter_raises_the_target_and_it_comes_down),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
