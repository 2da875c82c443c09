/*
 * fuzz_jingle.c - libFuzzer target for the conference bridge's reading of
 * Jingle (modules/voice/jingle.c): what a caller sends the bridge in a
 * session-initiate, transport-info or session-terminate, through the real
 * streaming XML parser as c2s hands stanzas over.
 *
 * The input (after the first byte, which sets the chunk size as in
 * fuzz_c2s) is the rest of a client stream after its header; every <iq/>
 * carrying <jingle xmlns='urn:xmpp:jingle:1'/> goes where call.c sends it:
 * the action and sid checks, and for a session-initiate jingle_parse_offer
 * into the engine's parameters, then the session-accept the bridge would
 * answer (with a fixed engine answer) or the session-terminate with the
 * reason it gives. Besides memory safety it checks what call.c relies on:
 * a taken offer has the credentials, fingerprint and setup within their
 * limits; a refusal names a reason and a text; the accept, serialized and
 * parsed back, is itself an offer the bridge takes, for the same content,
 * payload type, audio level id and BUNDLE.
 *
 * fuzz-sources: modules/voice/jingle.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"
#include "vestnik/stanza.h"
#include "vestnik/util.h"
#include "voice/voice.h"
#include "xml_parser.h"

#define MAX_STANZA_SIZE 65536
#define MAX_DEPTH 32
#define STREAM_HEADER                                                                              \
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "        \
    "to='localhost' version='1.0'>"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the engine answers in vc_leg_open, fixed. */
static vc_local bridge_answer(uint8_t opus_pt)
{
    vc_local local = {
        .ice_ufrag = "fuzzufrg",
        .ice_pwd = "fuzzfuzzfuzzfuzzfuzzfuzz",
        .ssrc = 0x12345678,
        .cname = "0123456789abcdef",
        .setup = VC_SETUP_ACTIVE,
        .fingerprint_hash = "sha-256",
        .fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
                       "AB:CD:EF:01:23:45:67:89",
        .opus_pt = opus_pt,
        .n_candidates = 2,
    };
    local.candidates[0] = (vc_candidate){.ip = "192.0.2.7",
                                         .port = 40000,
                                         .priority = 2130706431,
                                         .foundation = "1",
                                         .component = 1};
    local.candidates[1] = (vc_candidate){
        .ip = "2001:db8::7", .port = 40000, .priority = 2130706175, .foundation = "2"};
    return local;
}

static void check_offer(const jingle_offer *o)
{
    if (!o->content_name || !o->creator || !o->ufrag || !o->pwd || !o->fingerprint_hash ||
        !o->fingerprint || !o->setup)
        abort();
    size_t ufrag = strlen(o->ufrag), pwd = strlen(o->pwd);
    if (ufrag < 4 || ufrag > 256 || pwd < 22 || pwd > 256 || !*o->fingerprint ||
        strlen(o->fingerprint) > 200 || o->opus_pt > 127 || o->audio_level_id > 14)
        abort();
    if (strcmp(o->setup, "actpass") != 0 && strcmp(o->setup, "active") != 0 &&
        strcmp(o->setup, "passive") != 0)
        abort();
}

/* The bridge's accept is an offer it would take itself, for the same stream. */
static void check_accept(const jingle_offer *offer, const vn_stanza *accept)
{
    size_t len;
    char *xml = vn_stanza_serialize(accept, VN_NS_CLIENT, &len);
    vn_stanza *again = vn_stanza_parse(xml, len);
    jingle_offer back;
    const char *text = NULL;
    if (!again || jingle_parse_offer(again, &back, &text) != JINGLE_OK)
        abort();
    check_offer(&back);
    if (strcmp(back.content_name, offer->content_name) != 0 ||
        strcmp(back.creator, offer->creator) != 0 || back.opus_pt != offer->opus_pt ||
        back.audio_level_id != offer->audio_level_id || back.bundle != offer->bundle ||
        !back.opus_fec || !back.mux || back.ssrc != 0x12345678)
        abort();
    jingle_offer_free(&back);
    vn_stanza_free(again);
    free(xml);
}

static void session_initiate(const vn_stanza *jingle, const char *sid)
{
    jingle_offer offer;
    const char *text = NULL;
    jingle_status st = jingle_parse_offer(jingle, &offer, &text);
    vn_stanza *answer;
    if (st == JINGLE_OK) {
        check_offer(&offer);
        vc_remote remote;
        jingle_offer_remote(&offer, &remote);
        if (remote.ice_ufrag != offer.ufrag || remote.setup > VC_SETUP_PASSIVE)
            abort();
        vc_local local = bridge_answer(remote.opus_pt);
        answer = jingle_build_accept(&offer, &local, sid, "juliet@localhost/balcony",
                                     "room@call.localhost/bridge");
        check_accept(&offer, answer);
        jingle_offer_free(&offer);
    } else {
        if (!text || !*text || !jingle_status_reason(st))
            abort();
        answer = jingle_build_terminate(sid, jingle_status_reason(st), text);
    }
    free(vn_stanza_serialize(answer, VN_NS_CLIENT, NULL));
    vn_stanza_free(answer);
}

static void on_stanza(void *ud, vn_stanza *st)
{
    (void)ud;
    const vn_stanza *jingle = vn_stanza_child(st, "jingle", NS_JINGLE);
    const char *action = vn_stanza_attr(jingle, "action");
    const char *sid = vn_stanza_attr(jingle, "sid");
    if (vn_stanza_is(st, "iq", VN_NS_CLIENT) && jingle_known_action(action) && sid && *sid &&
        strlen(sid) <= 256) {
        if (strcmp(action, "session-initiate") == 0) {
            session_initiate(jingle, sid);
        } else if (strcmp(action, "session-terminate") == 0) {
            /* The bridge's own terminate for an engine failure, as call.c sends it. */
            for (int r = VC_FAIL_NONE; r <= VC_FAIL_INTERNAL; r++) {
                vn_stanza *t = jingle_build_terminate(sid, jingle_failure_reason(r), NULL);
                free(vn_stanza_serialize(t, VN_NS_CLIENT, NULL));
                vn_stanza_free(t);
            }
        }
    }
    vn_stanza_free(st);
}

static void on_open(void *ud, const vn_stanza *header)
{
    (void)ud;
    (void)header;
}

static void on_close(void *ud)
{
    (void)ud;
}

static void on_error(void *ud, const char *condition, const char *text)
{
    (void)ud;
    (void)condition;
    (void)text;
}

static const vn_xml_callbacks callbacks = {
    .stream_open = on_open,
    .stanza = on_stanza,
    .stream_close = on_close,
    .error = on_error,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    vn_log_setup(VN_LOG_ERROR, false, "fuzz_jingle");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = data[0] % 128 + 1;
    const char *bytes = (const char *)data + 1;
    size_t left = size - 1;
    vn_xml_parser *parser = vn_xml_parser_new(&callbacks, NULL, MAX_STANZA_SIZE, MAX_DEPTH);

    vn_xml_parser_feed(parser, STREAM_HEADER, strlen(STREAM_HEADER));
    while (left > 0) {
        size_t n = left < chunk ? left : chunk;
        if (vn_xml_parser_feed(parser, bytes, n) < 0)
            break;
        bytes += n;
        left -= n;
    }
    vn_xml_parser_free(parser);
    return 0;
}
