/*
 * test_voice_jingle.c - modules/voice/jingle.c, the bridge's Jingle XML to
 * and from the media engine's parameters: offers shaped as Conversations
 * (WebRTC, BUNDLE, audio level, RED and G.722 beside Opus) and Dino (no
 * BUNDLE, SDES crypto beside DTLS) send them, every offer the bridge must
 * refuse with the reason it gives, and the session-accept it writes, read
 * back as an offer would be.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "voice.h"

#define FP                                                                                         \
    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:"   \
    "67:89"

static const char conversations[] =
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='x1' "
    "initiator='juliet@example.org/Conversations.abcd'>"
    "<content creator='initiator' name='0' senders='both'>"
    "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
    "<payload-type id='111' name='opus' clockrate='48000' channels='2'>"
    "<parameter name='minptime' value='10'/><parameter name='useinbandfec' value='1'/>"
    "<rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/></payload-type>"
    "<payload-type id='63' name='red' clockrate='48000' channels='2'>"
    "<parameter name='' value='111/111'/></payload-type>"
    "<payload-type id='9' name='G722' clockrate='8000'/>"
    "<rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='1' "
    "uri='urn:ietf:params:rtp-hdrext:ssrc-audio-level'/>"
    "<rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='2' "
    "uri='http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time'/>"
    "<extmap-allow-mixed xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0'/>"
    "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3735928559'>"
    "<parameter name='cname' value='c1'/><parameter name='msid' value='s t'/></source>"
    "<rtcp-mux/></description>"
    "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='Kx9q' "
    "pwd='aaaaaaaaaaaaaaaaaaaaaaaa'>"
    "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>" FP
    "</fingerprint></transport></content>"
    "<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='0'/>"
    "</group></jingle>";

static const char dino[] =
    "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='d1'>"
    "<content creator='initiator' name='audio' senders='both'>"
    "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>"
    "<payload-type id='96' name='OPUS' channels='2' clockrate='48000'/>"
    "<payload-type id='8' name='PCMA' clockrate='8000'/>"
    "<encryption xmlns='urn:xmpp:jingle:apps:rtp:1'><crypto crypto-suite='AES_CM_128_HMAC_SHA1_80' "
    "key-params='inline:xyz' tag='1'/></encryption><rtcp-mux/></description>"
    "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='dino' "
    "pwd='bbbbbbbbbbbbbbbbbbbbbbbb'>"
    "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>" FP
    "</fingerprint></transport></content></jingle>";

static vn_stanza *parse(const char *xml)
{
    vn_stanza *st = vn_stanza_parse(xml, strlen(xml));
    assert_non_null(st);
    return st;
}

/* The Conversations offer with one substitution. */
static char *edited(const char *from, const char *to)
{
    const char *at = strstr(conversations, from);
    assert_non_null(at);
    return vn_asprintf("%.*s%s%s", (int)(at - conversations), conversations, to, at + strlen(from));
}

static jingle_status status_of(const char *xml)
{
    vn_stanza *jingle = parse(xml);
    jingle_offer offer;
    const char *text = NULL;
    jingle_status st = jingle_parse_offer(jingle, &offer, &text);
    if (st == JINGLE_OK)
        jingle_offer_free(&offer);
    else
        assert_non_null(text);
    vn_stanza_free(jingle);
    return st;
}

static void test_conversations_offer(void **state)
{
    vn_stanza *jingle = parse(conversations);
    jingle_offer offer;
    const char *text = NULL;
    assert_int_equal(jingle_parse_offer(jingle, &offer, &text), JINGLE_OK);
    assert_string_equal(offer.content_name, "0");
    assert_string_equal(offer.creator, "initiator");
    assert_int_equal(offer.opus_pt, 111);
    assert_true(offer.opus_fec);
    assert_int_equal(offer.audio_level_id, 1);
    assert_int_equal(offer.ssrc, 3735928559u);
    assert_true(offer.bundle);
    assert_true(offer.mux);
    assert_string_equal(offer.ufrag, "Kx9q");
    assert_string_equal(offer.fingerprint, FP);

    vc_remote remote;
    jingle_offer_remote(&offer, &remote);
    assert_int_equal(remote.setup, VC_SETUP_ACTPASS);
    assert_string_equal(remote.fingerprint_hash, "sha-256");
    assert_int_equal(remote.opus_pt, 111);
    jingle_offer_free(&offer);
    vn_stanza_free(jingle);
}

static void test_dino_offer(void **state)
{
    vn_stanza *jingle = parse(dino);
    jingle_offer offer;
    const char *text = NULL;
    assert_int_equal(jingle_parse_offer(jingle, &offer, &text), JINGLE_OK);
    assert_string_equal(offer.content_name, "audio");
    assert_int_equal(offer.opus_pt, 96); /* the codec name in capitals */
    assert_false(offer.opus_fec);
    assert_int_equal(offer.audio_level_id, 0);
    assert_false(offer.bundle);
    vc_remote remote;
    jingle_offer_remote(&offer, &remote);
    assert_int_equal(remote.setup, VC_SETUP_ACTIVE);
    jingle_offer_free(&offer);
    vn_stanza_free(jingle);
}

static void test_refused_offers(void **state)
{
    static const struct {
        const char *from, *to;
        jingle_status want;
    } cases[] = {
        {"name='opus'", "name='speex'", JINGLE_FAILED_APPLICATION},
        {"clockrate='48000' channels='2'>", "clockrate='16000' channels='2'>",
         JINGLE_FAILED_APPLICATION},
        {"media='audio'", "media='video'", JINGLE_UNSUPPORTED_APPLICATIONS},
        {"urn:xmpp:jingle:transports:ice-udp:1", "urn:xmpp:jingle:transports:raw-udp:1",
         JINGLE_UNSUPPORTED_TRANSPORTS},
        {"urn:xmpp:jingle:apps:dtls:0", "urn:xmpp:jingle:apps:dtls:9", JINGLE_SECURITY_ERROR},
        {"ufrag='Kx9q' ", "", JINGLE_MALFORMED},
        {"ufrag='Kx9q' ", "ufrag='K' ", JINGLE_MALFORMED},
        {"setup='actpass'", "setup='holdconn'", JINGLE_MALFORMED},
        {"payload-type id='9'", "payload-type id='300'", JINGLE_MALFORMED},
        {"name='0' senders", "senders", JINGLE_MALFORMED},
        /* a second content (a data channel, video) beside the audio */
        {"<group ",
         "<content creator='initiator' name='1'><description "
         "xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/></content><group ",
         JINGLE_UNSUPPORTED_APPLICATIONS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *xml = edited(cases[i].from, cases[i].to);
        jingle_status st = status_of(xml);
        if (st != cases[i].want)
            fail_msg("case %zu (%s -> %s): %d, not %d", i, cases[i].from, cases[i].to, st,
                     cases[i].want);
        free(xml);
    }
    assert_int_equal(
        status_of("<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='e'/>"),
        JINGLE_MALFORMED);
}

static void test_accept_answers_the_offer(void **state)
{
    vn_stanza *jingle = parse(conversations);
    jingle_offer offer;
    const char *text = NULL;
    assert_int_equal(jingle_parse_offer(jingle, &offer, &text), JINGLE_OK);
    vc_local local = {.ice_ufrag = "brdg",
                      .ice_pwd = "cccccccccccccccccccccccc",
                      .ssrc = 42,
                      .cname = "mix",
                      .setup = VC_SETUP_ACTIVE,
                      .fingerprint_hash = "sha-256",
                      .fingerprint = FP,
                      .opus_pt = 111,
                      .n_candidates = 1};
    local.candidates[0] =
        (vc_candidate){.ip = "192.0.2.1", .port = 40000, .priority = 2130706431, .foundation = "1"};

    vn_stanza *accept = jingle_build_accept(&offer, &local, "x1", "juliet@example.org/c",
                                            "room@call.example.org/bridge");
    assert_string_equal(vn_stanza_attr(accept, "action"), "session-accept");
    assert_string_equal(vn_stanza_attr(accept, "responder"), "room@call.example.org/bridge");
    const vn_stanza *content = vn_stanza_child(accept, "content", NS_JINGLE);
    const vn_stanza *desc = vn_stanza_child(content, "description", NS_JINGLE_RTP);
    assert_int_equal(vn_stanza_element_count(desc), 4); /* opus, hdrext, source, rtcp-mux */
    const vn_stanza *pt = vn_stanza_child(desc, "payload-type", NS_JINGLE_RTP);
    assert_string_equal(vn_stanza_attr(pt, "name"), "opus");
    assert_string_equal(vn_stanza_attr(pt, "channels"), "2");
    const vn_stanza *transport = vn_stanza_child(content, "transport", NS_JINGLE_ICE);
    const vn_stanza *fp = vn_stanza_child(transport, "fingerprint", NS_JINGLE_DTLS);
    assert_string_equal(vn_stanza_attr(fp, "setup"), "active");
    const vn_stanza *cand = vn_stanza_child(transport, "candidate", NS_JINGLE_ICE);
    assert_string_equal(vn_stanza_attr(cand, "ip"), "192.0.2.1");
    assert_string_equal(vn_stanza_attr(cand, "port"), "40000");
    assert_string_equal(vn_stanza_attr(cand, "type"), "host");
    assert_non_null(vn_stanza_child(accept, "group", NS_JINGLE_GROUPING));

    /* Read back, the answer is an offer the bridge itself would take. */
    char *xml = vn_stanza_serialize(accept, NULL, NULL);
    vn_stanza *again = parse(xml);
    jingle_offer back;
    assert_int_equal(jingle_parse_offer(again, &back, &text), JINGLE_OK);
    assert_int_equal(back.opus_pt, 111);
    assert_true(back.opus_fec && back.mux && back.bundle);
    assert_int_equal(back.audio_level_id, 1);
    assert_int_equal(back.ssrc, 42);
    assert_string_equal(back.setup, "active");
    jingle_offer_free(&back);
    vn_stanza_free(again);
    free(xml);
    vn_stanza_free(accept);

    /* Passive when the caller wants to be the DTLS client. */
    local.setup = VC_SETUP_PASSIVE;
    accept = jingle_build_accept(&offer, &local, "x1", "a@b/c", "r@call.b/bridge");
    fp = vn_stanza_child(
        vn_stanza_child(vn_stanza_child(accept, "content", NS_JINGLE), "transport", NS_JINGLE_ICE),
        "fingerprint", NS_JINGLE_DTLS);
    assert_string_equal(vn_stanza_attr(fp, "setup"), "passive");
    vn_stanza_free(accept);
    jingle_offer_free(&offer);
    vn_stanza_free(jingle);
}

static void test_terminate_and_reasons(void **state)
{
    vn_stanza *t = jingle_build_terminate("s", "busy", "full");
    const vn_stanza *reason = vn_stanza_child(t, "reason", NS_JINGLE);
    assert_non_null(vn_stanza_child(reason, "busy", NS_JINGLE));
    assert_string_equal(vn_stanza_child_text(reason, "text", NS_JINGLE), "full");
    vn_stanza_free(t);

    assert_string_equal(jingle_status_reason(JINGLE_FAILED_APPLICATION), "failed-application");
    assert_string_equal(jingle_status_reason(JINGLE_UNSUPPORTED_TRANSPORTS),
                        "unsupported-transports");
    assert_string_equal(jingle_failure_reason(VC_FAIL_ICE_TIMEOUT), "connectivity-error");
    assert_string_equal(jingle_failure_reason(VC_FAIL_CONSENT), "connectivity-error");
    assert_string_equal(jingle_failure_reason(VC_FAIL_DTLS), "security-error");
    assert_true(jingle_known_action("transport-info"));
    assert_false(jingle_known_action("dance"));
    assert_false(jingle_known_action(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversations_offer),
        cmocka_unit_test(test_dino_offer),
        cmocka_unit_test(test_refused_offers),
        cmocka_unit_test(test_accept_answers_the_offer),
        cmocka_unit_test(test_terminate_and_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
