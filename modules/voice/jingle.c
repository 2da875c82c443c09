/*
 * jingle.c - Jingle XML to and from the media engine's parameters.
 *
 * The bridge takes one kind of session: an audio call (XEP-0167) over
 * ICE-UDP (XEP-0176) with DTLS-SRTP (XEP-0320) and Opus at 48 kHz
 * (RFC 7587). This file reads such a session-initiate into a jingle_offer
 * (what vc_leg_open needs) and writes the session-accept from what the
 * engine answered: the same content, Opus with in-band FEC, rtcp-mux, the
 * audio-level header extension (XEP-0294) when offered, the bridge's
 * source (XEP-0339), its ICE credentials, host candidates and fingerprint
 * with setup as the engine plays it, and the BUNDLE group (XEP-0338) when
 * one was offered. Anything else in an offer (video, data channels, a
 * second audio stream, another transport) refuses the whole session with
 * the XEP-0166 reason for it: a client calling the room offers audio
 * alone, as its caps ask. No state and no I/O here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "voice.h"

static const char *const actions[] = {
    "content-accept", "content-add",      "content-modify",    "content-reject",
    "content-remove", "description-info", "security-info",     "session-accept",
    "session-info",   "session-initiate", "session-terminate", "transport-accept",
    "transport-info", "transport-reject", "transport-replace",
};

bool jingle_known_action(const char *action)
{
    for (size_t i = 0; action && i < sizeof actions / sizeof *actions; i++)
        if (strcmp(actions[i], action) == 0)
            return true;
    return false;
}

/* A decimal attribute in [min, max]; false if absent or not one. */
static bool attr_number(const vn_stanza *st, const char *name, unsigned long min, unsigned long max,
                        unsigned long *out)
{
    const char *text = vn_stanza_attr(st, name);
    if (!text || !*text || strspn(text, "0123456789") != strlen(text) || strlen(text) > 10)
        return false;
    unsigned long value = strtoul(text, NULL, 10);
    if (value < min || value > max)
        return false;
    *out = value;
    return true;
}

static bool is_opus(const vn_stanza *pt)
{
    const char *name = vn_stanza_attr(pt, "name");
    unsigned long clockrate = 0, channels = 1;
    if (!name || strcasecmp(name, "opus") != 0 ||
        !attr_number(pt, "clockrate", 48000, 48000, &clockrate))
        return false;
    /* RFC 7587 §7: always "2"; a missing attribute means 1, which some
     * clients write anyway: the stream is the same. */
    if (vn_stanza_attr(pt, "channels") && !attr_number(pt, "channels", 1, 2, &channels))
        return false;
    return true;
}

static bool parameter_is(const vn_stanza *pt, const char *name, const char *value)
{
    for (const vn_stanza *p = vn_stanza_first_element(pt); p; p = vn_stanza_next_element(p))
        if (vn_stanza_is(p, "parameter", NULL) && vn_stanza_attr(p, "name") &&
            strcmp(vn_stanza_attr(p, "name"), name) == 0)
            return vn_stanza_attr(p, "value") && strcmp(vn_stanza_attr(p, "value"), value) == 0;
    return false;
}

static jingle_status read_description(const vn_stanza *desc, jingle_offer *out, const char **text)
{
    const vn_stanza *opus = NULL;
    for (const vn_stanza *c = vn_stanza_first_element(desc); c; c = vn_stanza_next_element(c)) {
        unsigned long value = 0;
        if (vn_stanza_is(c, "payload-type", NS_JINGLE_RTP)) {
            if (!attr_number(c, "id", 0, 127, &value)) {
                *text = N_("A payload-type has no valid id");
                return JINGLE_MALFORMED;
            }
            if (!opus && is_opus(c)) {
                opus = c;
                out->opus_pt = (uint8_t)value;
            }
        } else if (vn_stanza_is(c, "rtcp-mux", NS_JINGLE_RTP)) {
            out->mux = true;
        } else if (vn_stanza_is(c, "rtp-hdrext", NS_JINGLE_HDREXT)) {
            const char *uri = vn_stanza_attr(c, "uri");
            if (uri && strcmp(uri, AUDIO_LEVEL_URI) == 0 && attr_number(c, "id", 1, 14, &value))
                out->audio_level_id = (uint8_t)value;
        } else if (vn_stanza_is(c, "source", NS_JINGLE_SSMA) && !out->ssrc) {
            if (attr_number(c, "ssrc", 1, UINT32_MAX, &value))
                out->ssrc = (uint32_t)value;
        }
    }
    if (!opus) {
        *text = N_("The bridge speaks Opus at 48 kHz only");
        return JINGLE_FAILED_APPLICATION;
    }
    out->opus_fec = parameter_is(opus, "useinbandfec", "1");
    return JINGLE_OK;
}

static jingle_status read_transport(const vn_stanza *transport, jingle_offer *out,
                                    const char **text)
{
    if (!transport || !vn_stanza_is(transport, "transport", NS_JINGLE_ICE)) {
        *text = N_("The bridge takes ICE-UDP transports only");
        return JINGLE_UNSUPPORTED_TRANSPORTS;
    }
    const char *ufrag = vn_stanza_attr(transport, "ufrag");
    const char *pwd = vn_stanza_attr(transport, "pwd");
    /* RFC 8839 §5.4: ufrag 4 to 256 characters, pwd 22 to 256. */
    if (!ufrag || !pwd || strlen(ufrag) < 4 || strlen(ufrag) > 256 || strlen(pwd) < 22 ||
        strlen(pwd) > 256) {
        *text = N_("The transport needs ICE credentials");
        return JINGLE_MALFORMED;
    }
    const vn_stanza *fp = vn_stanza_child(transport, "fingerprint", NS_JINGLE_DTLS);
    const char *hash = vn_stanza_attr(fp, "hash");
    const char *setup = vn_stanza_attr(fp, "setup");
    const char *value = fp ? vn_stanza_text(fp) : "";
    if (!fp || !hash || !*value || strlen(value) > 200) {
        *text = N_("The bridge needs DTLS-SRTP (a fingerprint in the transport)");
        return JINGLE_SECURITY_ERROR;
    }
    if (setup && strcmp(setup, "actpass") != 0 && strcmp(setup, "active") != 0 &&
        strcmp(setup, "passive") != 0) {
        *text = N_("The fingerprint's setup is not actpass, active or passive");
        return JINGLE_MALFORMED;
    }
    out->ufrag = vn_strdup(ufrag);
    out->pwd = vn_strdup(pwd);
    out->fingerprint_hash = vn_strdup(hash);
    out->fingerprint = vn_strdup(value);
    out->setup = vn_strdup(setup ? setup : "actpass");
    return JINGLE_OK;
}

static bool bundles(const vn_stanza *jingle, const char *content_name)
{
    for (const vn_stanza *g = vn_stanza_first_element(jingle); g; g = vn_stanza_next_element(g)) {
        const char *semantics = vn_stanza_attr(g, "semantics");
        if (!vn_stanza_is(g, "group", NS_JINGLE_GROUPING) || !semantics ||
            strcmp(semantics, "BUNDLE") != 0)
            continue;
        for (const vn_stanza *c = vn_stanza_first_element(g); c; c = vn_stanza_next_element(c))
            if (vn_stanza_is(c, "content", NULL) && vn_stanza_attr(c, "name") &&
                strcmp(vn_stanza_attr(c, "name"), content_name) == 0)
                return true;
    }
    return false;
}

jingle_status jingle_parse_offer(const vn_stanza *jingle, jingle_offer *out, const char **text)
{
    const vn_stanza *content = NULL;
    *out = (jingle_offer){0};
    for (const vn_stanza *c = vn_stanza_first_element(jingle); c; c = vn_stanza_next_element(c)) {
        if (!vn_stanza_is(c, "content", NS_JINGLE))
            continue;
        if (!vn_stanza_attr(c, "name") || !vn_stanza_attr(c, "creator")) {
            *text = N_("A content has no name or creator");
            return JINGLE_MALFORMED;
        }
        if (content) {
            *text = N_("The bridge takes one audio stream and nothing else");
            return JINGLE_UNSUPPORTED_APPLICATIONS;
        }
        content = c;
    }
    if (!content) {
        *text = N_("The session has no content");
        return JINGLE_MALFORMED;
    }
    const vn_stanza *desc = vn_stanza_child(content, "description", NS_JINGLE_RTP);
    const char *media = vn_stanza_attr(desc, "media");
    if (!desc || !media || strcmp(media, "audio") != 0) {
        *text = N_("The bridge takes audio calls only");
        return JINGLE_UNSUPPORTED_APPLICATIONS;
    }
    jingle_status st = read_description(desc, out, text);
    if (st == JINGLE_OK)
        st = read_transport(vn_stanza_child(content, "transport", NULL), out, text);
    if (st != JINGLE_OK) {
        jingle_offer_free(out);
        return st;
    }
    out->content_name = vn_strdup(vn_stanza_attr(content, "name"));
    out->creator = vn_strdup(vn_stanza_attr(content, "creator"));
    out->bundle = bundles(jingle, out->content_name);
    return JINGLE_OK;
}

void jingle_offer_free(jingle_offer *offer)
{
    free(offer->content_name);
    free(offer->creator);
    free(offer->ufrag);
    free(offer->pwd);
    free(offer->fingerprint_hash);
    free(offer->fingerprint);
    free(offer->setup);
    *offer = (jingle_offer){0};
}

void jingle_offer_remote(const jingle_offer *offer, vc_remote *remote)
{
    vc_setup setup = VC_SETUP_ACTPASS;
    if (strcmp(offer->setup, "active") == 0)
        setup = VC_SETUP_ACTIVE;
    else if (strcmp(offer->setup, "passive") == 0)
        setup = VC_SETUP_PASSIVE;
    *remote = (vc_remote){.ice_ufrag = offer->ufrag,
                          .ice_pwd = offer->pwd,
                          .fingerprint_hash = offer->fingerprint_hash,
                          .fingerprint = offer->fingerprint,
                          .setup = setup,
                          .opus_pt = offer->opus_pt,
                          .opus_fec = offer->opus_fec,
                          .audio_level_id = offer->audio_level_id,
                          .ssrc = offer->ssrc};
}

static void add_parameter(vn_stanza *parent, const char *ns, const char *name, const char *value)
{
    vn_stanza *p = vn_stanza_add_child(parent, "parameter", ns);
    vn_stanza_set_attr(p, "name", name);
    vn_stanza_set_attr(p, "value", value);
}

static void add_description(vn_stanza *content, const jingle_offer *offer, const vc_local *local)
{
    char number[16];
    vn_stanza *desc = vn_stanza_add_child(content, "description", NS_JINGLE_RTP);
    vn_stanza_set_attr(desc, "media", "audio");

    vn_stanza *pt = vn_stanza_add_child(desc, "payload-type", NS_JINGLE_RTP);
    snprintf(number, sizeof number, "%u", (unsigned)local->opus_pt);
    vn_stanza_set_attr(pt, "id", number);
    vn_stanza_set_attr(pt, "name", "opus");
    vn_stanza_set_attr(pt, "clockrate", "48000");
    vn_stanza_set_attr(pt, "channels", "2");
    add_parameter(pt, NS_JINGLE_RTP, "minptime", "10");
    add_parameter(pt, NS_JINGLE_RTP, "useinbandfec", "1");

    if (offer->audio_level_id) {
        vn_stanza *ext = vn_stanza_add_child(desc, "rtp-hdrext", NS_JINGLE_HDREXT);
        snprintf(number, sizeof number, "%u", (unsigned)offer->audio_level_id);
        vn_stanza_set_attr(ext, "id", number);
        vn_stanza_set_attr(ext, "uri", AUDIO_LEVEL_URI);
    }
    vn_stanza *source = vn_stanza_add_child(desc, "source", NS_JINGLE_SSMA);
    snprintf(number, sizeof number, "%u", (unsigned)local->ssrc);
    vn_stanza_set_attr(source, "ssrc", number);
    add_parameter(source, NS_JINGLE_SSMA, "cname", local->cname);
    char *msid = vn_asprintf("vestnik-%s mix", local->cname);
    add_parameter(source, NS_JINGLE_SSMA, "msid", msid);
    free(msid);
    vn_stanza_add_child(desc, "rtcp-mux", NS_JINGLE_RTP);
}

static void add_transport(vn_stanza *content, const vc_local *local)
{
    char number[16], id[32];
    vn_stanza *transport = vn_stanza_add_child(content, "transport", NS_JINGLE_ICE);
    vn_stanza_set_attr(transport, "ufrag", local->ice_ufrag);
    vn_stanza_set_attr(transport, "pwd", local->ice_pwd);
    vn_stanza *fp =
        vn_stanza_add_text_child(transport, "fingerprint", NS_JINGLE_DTLS, local->fingerprint);
    vn_stanza_set_attr(fp, "hash", local->fingerprint_hash);
    vn_stanza_set_attr(fp, "setup", local->setup == VC_SETUP_PASSIVE ? "passive" : "active");
    for (size_t i = 0; i < local->n_candidates; i++) {
        const vc_candidate *c = &local->candidates[i];
        vn_stanza *cand = vn_stanza_add_child(transport, "candidate", NS_JINGLE_ICE);
        snprintf(number, sizeof number, "%u", c->component ? c->component : 1);
        vn_stanza_set_attr(cand, "component", number);
        vn_stanza_set_attr(cand, "foundation", c->foundation);
        vn_stanza_set_attr(cand, "generation", "0");
        snprintf(id, sizeof id, "bridge%zu", i);
        vn_stanza_set_attr(cand, "id", id);
        vn_stanza_set_attr(cand, "ip", c->ip);
        vn_stanza_set_attr(cand, "network", "0");
        snprintf(number, sizeof number, "%u", (unsigned)c->port);
        vn_stanza_set_attr(cand, "port", number);
        snprintf(number, sizeof number, "%u", (unsigned)c->priority);
        vn_stanza_set_attr(cand, "priority", number);
        vn_stanza_set_attr(cand, "protocol", "udp");
        vn_stanza_set_attr(cand, "type", "host");
    }
}

vn_stanza *jingle_build_accept(const jingle_offer *offer, const vc_local *local, const char *sid,
                               const char *initiator, const char *responder)
{
    vn_stanza *jingle = vn_stanza_new("jingle", NS_JINGLE);
    vn_stanza_set_attr(jingle, "action", "session-accept");
    vn_stanza_set_attr(jingle, "initiator", initiator);
    vn_stanza_set_attr(jingle, "responder", responder);
    vn_stanza_set_attr(jingle, "sid", sid);
    vn_stanza *content = vn_stanza_add_child(jingle, "content", NS_JINGLE);
    vn_stanza_set_attr(content, "creator", offer->creator);
    vn_stanza_set_attr(content, "name", offer->content_name);
    vn_stanza_set_attr(content, "senders", "both");
    add_description(content, offer, local);
    add_transport(content, local);
    if (offer->bundle) {
        vn_stanza *group = vn_stanza_add_child(jingle, "group", NS_JINGLE_GROUPING);
        vn_stanza_set_attr(group, "semantics", "BUNDLE");
        vn_stanza_set_attr(vn_stanza_add_child(group, "content", NS_JINGLE_GROUPING), "name",
                           offer->content_name);
    }
    return jingle;
}

vn_stanza *jingle_build_terminate(const char *sid, const char *condition, const char *text)
{
    vn_stanza *jingle = vn_stanza_new("jingle", NS_JINGLE);
    vn_stanza_set_attr(jingle, "action", "session-terminate");
    vn_stanza_set_attr(jingle, "sid", sid);
    vn_stanza *reason = vn_stanza_add_child(jingle, "reason", NS_JINGLE);
    vn_stanza_add_child(reason, condition, NS_JINGLE);
    if (text)
        vn_stanza_add_text_child(reason, "text", NS_JINGLE, text);
    return jingle;
}

const char *jingle_status_reason(jingle_status st)
{
    switch (st) {
    case JINGLE_UNSUPPORTED_APPLICATIONS: return "unsupported-applications";
    case JINGLE_FAILED_APPLICATION: return "failed-application";
    case JINGLE_UNSUPPORTED_TRANSPORTS: return "unsupported-transports";
    case JINGLE_SECURITY_ERROR: return "security-error";
    case JINGLE_MALFORMED:
    case JINGLE_OK: break;
    }
    return "failed-application";
}

const char *jingle_failure_reason(vc_fail_reason reason)
{
    switch (reason) {
    case VC_FAIL_ICE_TIMEOUT:
    case VC_FAIL_CONSENT: return "connectivity-error";
    case VC_FAIL_DTLS: return "security-error";
    case VC_FAIL_INTERNAL:
    case VC_FAIL_NONE: break;
    }
    return "media-error";
}
