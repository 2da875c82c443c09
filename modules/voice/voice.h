/*
 * voice.h - the internal interface between the signalling files of
 * mod_voice, the conference bridge (xeps/room-calls.md).
 *
 * Every room of a host's MUC service can be called at <room>@<prefix>.<host>
 * (call.<host> by default): a contact whose one resource, "bridge", answers
 * ordinary one-to-one audio calls and puts every caller of the room into
 * the same mix of the media engine (media.h). The files, one concern each:
 * mod_voice.c (config, the engine, routing of the call domain), contact.c
 * (the call contact: disco, caps, presence, roster items), jingle.c (Jingle
 * XML to and from the engine's parameters, pure), call.c (calls and their
 * participants: JMI, Jingle sessions, engine events, moderation, what the
 * room and the participants are told). All on the loop thread.
 */
#ifndef VESTNIK_VOICE_H
#define VESTNIK_VOICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vestnik/i18n.h>
#include <vestnik/module.h>
#include <vestnik/rooms.h>

#include "media.h"

#define NS_JINGLE "urn:xmpp:jingle:1"
#define NS_JINGLE_ERRORS "urn:xmpp:jingle:errors:1"
#define NS_JINGLE_RTP "urn:xmpp:jingle:apps:rtp:1"
#define NS_JINGLE_RTP_AUDIO "urn:xmpp:jingle:apps:rtp:audio"
#define NS_JINGLE_RTP_INFO "urn:xmpp:jingle:apps:rtp:info:1"
#define NS_JINGLE_ICE "urn:xmpp:jingle:transports:ice-udp:1"
#define NS_JINGLE_DTLS "urn:xmpp:jingle:apps:dtls:0"
#define NS_JINGLE_GROUPING "urn:xmpp:jingle:apps:grouping:0"
#define NS_JINGLE_SSMA "urn:xmpp:jingle:apps:rtp:ssma:0"
#define NS_JINGLE_HDREXT "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
#define NS_JMI "urn:xmpp:jingle-message:0"
#define NS_COIN "urn:ietf:params:xml:ns:conference-info"
#define NS_CALL "urn:xmpp:vestnik:call:0"
#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_HINTS "urn:xmpp:hints"
#define NS_PING "urn:xmpp:ping"

#define VOICE_RESOURCE "bridge"
#define AUDIO_LEVEL_URI "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

/* The module's configuration, read at load and reload. */
typedef struct voice_limits {
    long long max_participants; /* per call */
    long long max_calls;        /* on the whole server */
} voice_limits;

/* One call domain: <prefix>.<host>, serving the rooms of host. */
typedef struct voice_domain {
    char *domain;
    char *host;
} voice_domain;

/* ---- mod_voice.c ---- */
const voice_domain *voice_domain_of(const char *domain);
const voice_domain *voice_domain_of_host(const char *host);
const voice_domain *voice_domain_at(size_t i); /* NULL past the end */
const voice_limits *voice_limits_get(void);
/* Rewrites a candidate's bound address (ip, size bytes) into the public
 * address configured for it (modules.voice.public_addresses), if any. */
void voice_advertise(char *ip, size_t size);
vc_engine *voice_engine(void);
const vn_module *voice_module(void);
/* An iq error with an optional Jingle condition (urn:xmpp:jingle:errors:1). */
void voice_iq_error(const vn_stanza *iq, const char *type, const char *condition,
                    const char *jingle_condition, const char *text);
/* The call contact of room local on dom: "local@dom" / ".../bridge". */
char *voice_contact_bare(const voice_domain *dom, const char *local);
char *voice_contact_full(const voice_domain *dom, const char *local);

/* ---- contact.c ---- */
/* Who may call the room, by its rules (xeps/room-calls.md §4):
 * NULL when user (a full or bare JID) may, else a msgid saying why not.
 * q is answered for the caller to read and clear. */
const char *voice_may_call(const voice_domain *dom, const char *local, const vn_jid *user,
                           vn_room_query *q);
void voice_contact_iq(const voice_domain *dom, vn_event *ev);
void voice_contact_presence(const voice_domain *dom, vn_event *ev);
/* Who is in the room's call changed: the members see it in the contact's
 * presence (<status/>). */
void voice_contact_call_changed(const voice_domain *dom, const char *local);
/* Roster items: members of rooms have the room's call contact. */
void voice_contact_start(const vn_module *m);
void voice_contact_stop(const vn_module *m);

/* ---- jingle.c ---- */
typedef enum {
    JINGLE_OK = 0,
    JINGLE_MALFORMED,                /* not a usable offer: bad-request */
    JINGLE_UNSUPPORTED_APPLICATIONS, /* no audio RTP content, or others beside it */
    JINGLE_FAILED_APPLICATION,       /* audio, but no Opus 48 kHz stereo */
    JINGLE_UNSUPPORTED_TRANSPORTS,   /* not ICE-UDP */
    JINGLE_SECURITY_ERROR,           /* no DTLS-SRTP fingerprint */
} jingle_status;

/* A session-initiate's one audio content, as the engine needs it. */
typedef struct jingle_offer {
    char *content_name;
    char *creator;
    char *ufrag, *pwd;
    char *fingerprint_hash, *fingerprint, *setup;
    bool bundle; /* a BUNDLE group of that content was offered */
    bool mux;    /* rtcp-mux offered */
    uint8_t opus_pt;
    bool opus_fec;
    uint8_t audio_level_id;
    uint32_t ssrc;
} jingle_offer;

/* Reads the session-initiate's <jingle/>; on failure *text says why
 * (static English, for the terminate or the error). */
jingle_status jingle_parse_offer(const vn_stanza *jingle, jingle_offer *out, const char **text);
void jingle_offer_free(jingle_offer *offer);
/* The engine's view of the offer; strings point into offer. */
void jingle_offer_remote(const jingle_offer *offer, vc_remote *remote);
/* <jingle action='session-accept'/> answering offer with local. */
vn_stanza *jingle_build_accept(const jingle_offer *offer, const vc_local *local, const char *sid,
                               const char *initiator, const char *responder);
/* <jingle action='session-terminate'><reason><condition/><text/>...; text may be NULL. */
vn_stanza *jingle_build_terminate(const char *sid, const char *condition, const char *text);
/* The XEP-0166 reason element name for a status / an engine failure. */
const char *jingle_status_reason(jingle_status st);
const char *jingle_failure_reason(vc_fail_reason reason);
/* The action attribute is one XEP-0166 defines. */
bool jingle_known_action(const char *action);

/* ---- call.c ---- */
void voice_call_message(const voice_domain *dom, vn_event *ev); /* JMI */
void voice_call_jingle(const voice_domain *dom, vn_event *ev);  /* iq set with <jingle/> */
void voice_call_moderate(const voice_domain *dom, vn_event *ev, const vn_stanza *cmd);
void voice_call_result(const voice_domain *dom, vn_event *ev); /* iq result/error to the bridge */
/* disco#items of the contact: who is in the call. */
void voice_call_list(const voice_domain *dom, const char *local, vn_stanza *items);
/* Participants connected in the room's call now (0: no call). */
size_t voice_call_connected(const voice_domain *dom, const char *local);
void voice_call_engine_event(const vc_event *ev, void *ud);
void voice_call_room_gone(const voice_domain *dom, const char *local);
/* A user's standing changed: drop them from a call they may not be in. */
void voice_call_recheck(const voice_domain *dom, const char *local, const char *user_bare);
void voice_calls_start(const vn_module *m);
void voice_calls_stop(void);

#endif
