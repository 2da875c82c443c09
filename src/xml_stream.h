/*
 * xml_stream.h - an XML stream over a connection: a vn_conn whose bytes go
 * through the streaming parser (xml_parser.h) to the stream's owner, and
 * whose owner writes the stream back. Client streams over TCP (c2s_tcp.c),
 * both directions of federation (s2s_stream.c) and external components
 * (component.c) are all this, with their own protocol on top.
 *
 * What it takes care of, so that no stream type repeats it:
 * - a closing stream reads nothing more: elements still in the chunk being
 *   parsed are dropped, and closing from inside a parser callback stops
 *   the parser at once;
 * - an element may ask for a stream restart (after STARTTLS or SASL the
 *   peer opens a new stream, RFC 6120 §5.3.4, §6.4.6): the parser stops
 *   after that element, and once the chunk is done it is reset (or the
 *   owner's restart callback runs), so the next header parses afresh;
 * - output over limits.max_output_buffer closes the connection, from
 *   inside the write, without flushing; the owner hears of it through
 *   overflow (for its log) and later closed;
 * - load shaping (shaper.h): a pause stops the parser after the current
 *   stanza and the socket from being read; the resume parses what was
 *   held back.
 *
 * Parser limits are the configuration's limits.max_stanza_size and
 * limits.max_xml_depth. Loop thread only.
 */
#ifndef VESTNIK_XML_STREAM_H
#define VESTNIK_XML_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "vestnik/stanza.h"

typedef struct vn_xml_stream vn_xml_stream;

typedef struct vn_xml_stream_handler {
    /* What the parser reads (xml_parser.h); element owns el. None of them
     * runs once the stream is closing. */
    void (*stream_open)(void *ud, const vn_stanza *header);
    void (*element)(void *ud, vn_stanza *el);
    void (*stream_close)(void *ud);
    void (*error)(void *ud, const char *condition, const char *text);
    /* The rest may be NULL. Bytes arrived, before they are parsed. */
    void (*data)(void *ud);
    /* A restart asked for with vn_xml_stream_restart, once the chunk is
     * parsed: instead of the parser reset (call vn_xml_stream_reset). */
    void (*restart)(void *ud);
    void (*connected)(void *ud); /* vn_xml_stream_connect: TCP is up */
    void (*tls_ready)(void *ud); /* the TLS handshake is done */
    /* The output went over its limit: the connection is closing. */
    void (*overflow)(void *ud);
    /* The connection is gone (reason for the log); the stream is freed
     * right after this returns. */
    void (*closed)(void *ud, const char *reason);
} vn_xml_stream_handler;

/* Takes over an accepted connection; reading starts with
 * vn_xml_stream_start. */
vn_xml_stream *vn_xml_stream_accept(vn_conn *c, const vn_xml_stream_handler *h, void *ud);
/* Connects to addr: connected runs once TCP is up (start reading from
 * there), or only closed if it fails. NULL if the connection cannot even
 * be attempted. */
vn_xml_stream *vn_xml_stream_connect(const struct sockaddr *addr, const vn_xml_stream_handler *h,
                                     void *ud);
/* Starts reading; -1 (and the connection closes) if it cannot. */
int vn_xml_stream_start(vn_xml_stream *x);

/* 0, also when the stream is closing (the data is dropped); -1 when this
 * write went over the output limit (the stream is now closing). */
int vn_xml_stream_write(vn_xml_stream *x, const char *data, size_t len);
/* el serialized with default_ns as the stream's default namespace. */
int vn_xml_stream_write_element(vn_xml_stream *x, const vn_stanza *el, const char *default_ns);

/* Ends the stream: graceful writes </stream:stream> and closes once the
 * output is flushed; otherwise the connection just closes. Nothing more is
 * parsed or written. Once only: later calls do nothing. */
void vn_xml_stream_close(vn_xml_stream *x, bool graceful);
bool vn_xml_stream_closing(const vn_xml_stream *x);

/* From inside element: the peer's next bytes open a new stream. */
void vn_xml_stream_restart(vn_xml_stream *x);
void vn_xml_stream_reset(vn_xml_stream *x); /* the parser, now */
void vn_xml_stream_pause(vn_xml_stream *x, bool paused);

vn_conn *vn_xml_stream_conn(const vn_xml_stream *x);

#endif
