/*
 * c2s.h - client-to-server streams (RFC 6120): the state machine from
 * stream header through STARTTLS, SASL and resource binding to stanzas.
 *
 * The state machine works on elements; a transport carries them. The TCP
 * transport (c2s_tcp.c: plain/STARTTLS and direct TLS listeners) parses a
 * byte stream with the XML parser; web transports (WebSocket per RFC 7395,
 * BOSH per XEP-0206) hand over one element at a time and frame the output
 * their own way.
 */
#ifndef VESTNIK_C2S_H
#define VESTNIK_C2S_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "conn.h"
#include "listener.h"
#include "vestnik/stanza.h"

typedef struct vn_c2s vn_c2s;

/* What a transport does for the stream. tx is the transport's own state. */
typedef struct vn_c2s_transport {
    /* Write our stream header (or framing <open/>). to may be NULL. */
    void (*open)(void *tx, const char *stream_id, const char *from, const char *to);
    /* Write one top-level element; -1 if the transport cannot take more
     * (output cap): the stream is then aborted. */
    int (*element)(void *tx, const vn_stanza *st);
    /* Write a whitespace keepalive (may be NULL: the transport has its own). */
    void (*keepalive)(void *tx);
    /* Write our stream close (</stream:stream> or <close/>) and close the
     * connection: flush true sends what is queued first. */
    void (*close)(void *tx, bool flush);
    /* Start TLS on the connection (STARTTLS); NULL if not applicable. */
    int (*start_tls)(void *tx, SSL_CTX *ctx);
    bool (*secure)(void *tx); /* encrypted (TLS, or HTTPS for web transports) */
    SSL *(*ssl)(void *tx);    /* for channel binding; NULL if none */
    const char *(*peer_ip)(void *tx);
    /* Load shaping (shaper.h): stop reading after the current element, or
     * read again; NULL if the transport cannot pause. */
    void (*pause)(void *tx, bool paused);
    /* Bytes written and not yet sent (they count against
     * limits.max_output_buffer); NULL if the transport does not say. */
    size_t (*queued)(void *tx);
} vn_c2s_transport;

/* A new stream on a transport. The transport must call vn_c2s_gone when
 * its connection is gone, after which it must not touch the stream. */
vn_c2s *vn_c2s_new(const vn_c2s_transport *ops, void *tx);

/* Input from the transport. Restart semantics: after STARTTLS or SASL
 * success the client opens a new stream (vn_c2s_input_open again). */
void vn_c2s_input_open(vn_c2s *s, const vn_stanza *header);
void vn_c2s_input_element(vn_c2s *s, vn_stanza *st); /* takes ownership */
void vn_c2s_input_close(vn_c2s *s);
void vn_c2s_input_error(vn_c2s *s, const char *condition, const char *text);
/* The client sent bytes (for idle accounting); transports call it per read. */
void vn_c2s_input_activity(vn_c2s *s);
/* True once the stream wants the transport to reset its parser (after
 * <proceed/> or <success/>); reading it clears it. */
bool vn_c2s_take_restart(vn_c2s *s);
/* The transport's connection is gone (reason for the log). */
void vn_c2s_gone(vn_c2s *s, const char *reason);

/* Accept callback for TCP c2s listeners (see listener.h; c2s_tcp.c). */
void vn_c2s_accept(vn_conn *c, const vn_listener_conf *lc, void *ud);

/* Write a stanza to the client. */
void vn_c2s_write_stanza(vn_c2s *s, const vn_stanza *st);
/* Send a stream error (condition NULL: none) and close. */
void vn_c2s_close(vn_c2s *s, const char *condition, const char *text);
/* Close every client stream with <system-shutdown/>. */
void vn_c2s_close_all(const char *condition);
size_t vn_c2s_count(void);
bool vn_c2s_hibernating(const vn_c2s *s);
/* May a bulk sender (an offline backlog) write more now? False while the
 * output queue is over half of limits.max_output_buffer, or half of
 * limits.max_unacked_stanzas are unacknowledged (XEP-0198), or the stream
 * is hibernating or closing: either limit would end the stream. */
bool vn_c2s_can_take_more(const vn_c2s *s);

#endif
