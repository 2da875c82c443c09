/*
 * s2s_internal.h - what the federation files share: the stream
 * (s2s_stream.c), the outgoing routes per remote domain (s2s.c) and
 * Server Dialback (s2s_dialback.c).
 *
 * Vocabulary: on every stream "local" is our domain and "remote" the
 * peer's. A pair (local, remote) is authenticated on a stream when the
 * remote domain proved itself (incoming) or we proved ourselves as local
 * (outgoing); stanzas only travel between authenticated pairs.
 */
#ifndef VESTNIK_S2S_INTERNAL_H
#define VESTNIK_S2S_INTERNAL_H

#include <stdbool.h>
#include <uthash.h>
#include <uv.h>

#include "conn.h"
#include "shaper.h"
#include "vestnik/stanza.h"
#include "xml_stream.h"

#define VN_NS_DIALBACK "jabber:server:dialback"
#define VN_NS_DIALBACK_FEATURE "urn:xmpp:features:dialback"
#define VN_NS_BIDI "urn:xmpp:bidi" /* XEP-0288 */
#define VN_NS_BIDI_FEATURE "urn:xmpp:features:bidi"

typedef struct s2s_route s2s_route;

typedef enum { S2S_OUTGOING, S2S_INCOMING } s2s_direction;

typedef struct s2s_pair {
    char *local, *remote;
    struct s2s_pair *next;
} s2s_pair;

typedef struct s2s_stream {
    s2s_direction dir;
    vn_xml_stream *xs;
    vn_conn *conn;
    char *id;          /* incoming: ours; outgoing: the one the peer gave us */
    char *local;       /* incoming: the header's 'to'; outgoing: our header's 'from' */
    char *remote;      /* incoming: the header's 'from' (may be NULL); outgoing: the route's */
    s2s_route *route;  /* outgoing only; NULL once the route let go */
    s2s_pair *pairs;   /* authenticated */
    s2s_pair *pending; /* dialback under way (result sent / verification asked) */
    bool direct_tls;   /* TLS from the first byte (XEP-0368) */
    bool connected;    /* outgoing: TCP is up */
    bool header_sent;
    bool starttls_sent, external_sent;
    bool ready; /* outgoing: features done, dialback and stanzas may flow */
    bool ever_authenticated;
    bool bidi;        /* incoming: the peer asked for XEP-0288, so stanzas to it may go back here */
    uv_timer_t timer; /* incoming: authentication deadline, then idle timeout */
    vn_shaper shaper; /* incoming: limits.s2s_stanza_rate */
    UT_hash_handle hh; /* incoming streams by id */
    struct s2s_stream *prev, *next;
} s2s_stream;

/* ---- s2s_stream.c ---- */
s2s_stream *s2s_stream_connect(s2s_route *route, const struct sockaddr *addr, bool direct_tls,
                               const char *local, const char *remote);
void s2s_stream_accept(vn_conn *c, bool direct_tls);
void s2s_stream_write_stanza(s2s_stream *s, const vn_stanza *st);
/* <db:NAME from to [id] [type]>key</db:NAME>; NULL parts are left out. */
void s2s_stream_write_dialback(s2s_stream *s, const char *name, const char *from, const char *to,
                               const char *id, const char *type, const char *key);
/* Stream error (condition NULL: none) and close. */
void s2s_stream_close(s2s_stream *s, const char *condition, const char *text);
void s2s_stream_close_all(const char *condition);
s2s_stream *s2s_incoming_find(const char *id);
/* Incoming s, authenticated for a domain (or active since): the idle
 * timeout (s2s.incoming_idle_timeout) starts again. */
void s2s_incoming_authenticated(s2s_stream *s);
/* May incoming s authenticate remote? False, with s closed, when
 * s2s.max_streams_per_domain other incoming streams already carry it. */
bool s2s_incoming_admit(s2s_stream *s, const char *remote);
/* An incoming bidirectional stream (XEP-0288) on which remote is
 * authenticated towards local, to send local's stanzas to remote; or NULL. */
s2s_stream *s2s_incoming_bidi(const char *local, const char *remote);
/* The peer's certificate is valid for its domain (false without TLS). */
bool s2s_stream_peer_valid(s2s_stream *s, const char **why);
const char *s2s_stream_peer_ip(const s2s_stream *s);
/* Pair lists. */
bool s2s_pair_has(const s2s_pair *list, const char *local, const char *remote);
void s2s_pair_add(s2s_pair **list, const char *local, const char *remote);
bool s2s_pair_remove(s2s_pair **list, const char *local, const char *remote);

/* ---- s2s.c: the outgoing side and policy, called by the streams ---- */
bool s2s_is_our_domain(const char *domain);
bool s2s_remote_allowed(const char *domain);
bool s2s_require_valid_certificate(const char *domain);
bool s2s_require_encryption(void);
bool s2s_dialback_enabled(void);
/* The outgoing stream finished its features: dialback and stanzas may flow. */
void s2s_route_ready(s2s_route *route);
/* local is now authenticated towards the route's domain (method for the log). */
void s2s_route_authenticated(s2s_route *route, const char *local, const char *method);
/* Authentication as local failed: its queued stanzas bounce. */
void s2s_route_auth_failed(s2s_route *route, const char *local, const char *reason);
/* The outgoing stream is gone. */
void s2s_route_stream_gone(s2s_route *route, s2s_stream *s, const char *reason);
/* Incoming dialback: ask remote's authoritative server whether key is
 * what it gave for (remote -> local, stream_id). The answer comes back as
 * <db:verify/> on the outgoing stream (s2s_dialback_input). */
void s2s_route_request_verify(const char *local, const char *remote, const char *stream_id,
                              const char *key);

/* ---- s2s_dialback.c ---- */
void s2s_dialback_init(void);
/* XEP-0185: hex HMAC-SHA256(hex SHA256(secret), receiving ' ' originating
 * ' ' id), with the process's secret or a given one. The caller frees it. */
char *s2s_dialback_key(const char *receiving, const char *originating, const char *stream_id);
char *s2s_dialback_key_with_secret(const char *secret, const char *receiving,
                                   const char *originating, const char *stream_id);
/* Outgoing: claim local towards the stream's remote with <db:result/>. */
void s2s_dialback_start(s2s_stream *s, const char *local);
/* A jabber:server:dialback element arrived on s. */
void s2s_dialback_input(s2s_stream *s, const vn_stanza *el);
/* The verification for (local, remote) on incoming stream stream_id could
 * not be done: tell the originating server. */
void s2s_dialback_verify_failed(const char *stream_id, const char *local, const char *remote);

#endif
