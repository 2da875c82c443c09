/*
 * c2s_internal.h - the client stream's state, shared by the state machine
 * (c2s.c) and stream management (c2s_sm.c). Nothing else includes it.
 */
#ifndef VESTNIK_C2S_INTERNAL_H
#define VESTNIK_C2S_INTERNAL_H

#include <stdint.h>
#include <uthash.h>
#include <uv.h>

#include "abuse_limits.h"
#include "c2s.h"
#include "sasl.h"
#include "shaper.h"
#include "vestnik/module.h"

#define VN_NS_SM "urn:xmpp:sm:3"

/* A stanza sent but not yet acknowledged by the client (XEP-0198). */
typedef struct sm_item {
    vn_stanza *stanza;
    struct sm_item *next;
} sm_item;

typedef struct sm_state {
    bool enabled;
    bool resumable;
    char id[33];          /* resumption id; key of the resumable table */
    uint32_t h_in;        /* stanzas received and handled */
    uint32_t acked;       /* h the client acknowledged last */
    sm_item *head, *tail; /* unacknowledged, oldest first */
    size_t unacked;
    bool ack_requested; /* an <r/> is outstanding */
    /* An <a/> waits until what the counted stanzas stored is durable. */
    vn_store_waiter *ack_wait;
    uint32_t ack_h; /* the h it will carry */
    bool r_again;   /* another <r/> came meanwhile */
    /* A <resume/> waits likewise for the old stream's last writes. */
    vn_store_waiter *resume_wait;
    vn_stanza *resume_el;
    bool resume_inline; /* it came inside a SASL2 login (sasl2.c) */
    UT_hash_handle hh;
} sm_state;

struct vn_c2s {
    const vn_c2s_transport *ops;
    void *tx;   /* the transport's state; NULL once the transport is gone */
    char *host; /* the stream's local host, from the header's 'to' */
    char *lang; /* the stream's xml:lang, else the host's `language` */
    char stream_id[33];
    bool header_sent; /* our header for the current stream */
    bool restart;     /* the transport must reset its parser */
    bool closing;
    bool hibernating; /* transport gone, session kept for resumption */
    bool authenticated;
    char *user; /* normalised localpart, after SASL */
    vn_sasl *sasl;
    struct vn_sasl2 *sasl2; /* a SASL2 exchange in progress (sasl2.c) */
    unsigned auth_failures;
    bool tried_plus;     /* a -PLUS mechanism was attempted (see sasl.h) */
    vn_session *session; /* after resource binding (or resumption) */
    sm_state sm;
    vn_shaper shaper; /* limits.stanza_rate */
    uv_timer_t timer; /* handshake timeout, keepalive/idle checks, hibernation */
    uint64_t last_input_ms;
    struct vn_c2s *prev, *next;
};

/* c2s.c */
void vn_c2s_write_element(vn_c2s *s, const vn_stanza *st); /* any state, no SM counting */
void vn_c2s_start_session_timer(vn_c2s *s);
void vn_c2s_destroy(vn_c2s *s);
/* For SASL2 (sasl2.c): the features of the stream in its current state,
 * and the SASL context of its transport and account. */
void vn_c2s_send_features(vn_c2s *s);
vn_sasl_context vn_c2s_sasl_context(vn_c2s *s);

/* c2s_sm.c */
void vn_c2s_sm_add_feature(vn_c2s *s, vn_stanza *features);
/* The answer to an <enable/> (<enabled/> or <failed/>), unsent: Bind 2
 * puts it in <bound/>. */
vn_stanza *vn_c2s_sm_enable(vn_c2s *s, const vn_stanza *el);
/* A <resume/> inside a SASL2 login: its answer (<resumed/>, the session
 * taken over, or <failed/>) goes to vn_c2s_sasl2_resumed, maybe later,
 * once what the old stream stored is durable; after writing it, the
 * caller has vn_c2s_sm_resend send what the client had not acknowledged. */
void vn_c2s_sm_resume_inline(vn_c2s *s, const vn_stanza *el);
void vn_c2s_sm_resend(vn_c2s *s);
/* A <enable/>, <r/>, <a/> or <resume/> from the client. */
void vn_c2s_sm_element(vn_c2s *s, const vn_stanza *el);
/* A stanza was handled (counts toward h). */
void vn_c2s_sm_received(vn_c2s *s);
/* A stanza was sent: queue a copy until acknowledged (the caller keeps
 * the queue within c2s.max_unacked_stanzas). */
void vn_c2s_sm_sent(vn_c2s *s, const vn_stanza *st);
/* The transport is gone: true if the stream now hibernates instead of ending. */
bool vn_c2s_sm_hibernate(vn_c2s *s);
/* The session ends: bounce or re-route what the client never acknowledged,
 * then forget the SM state. jid is the ended session's full JID. */
void vn_c2s_sm_end(vn_c2s *s, const vn_jid *jid);
/* The stream is freed: nothing may call back into it. */
void vn_c2s_sm_free(vn_c2s *s);

#endif
