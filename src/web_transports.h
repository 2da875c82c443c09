/*
 * web_transports.h - client streams over HTTP: WebSocket (RFC 7395,
 * http_websocket.c) and BOSH (XEP-0124/XEP-0206, http_bosh.c), each a
 * vn_c2s transport behind an HTTP route, and the few pieces of XML
 * framing the two share (web_transports.c).
 */
#ifndef VESTNIK_WEB_TRANSPORTS_H
#define VESTNIK_WEB_TRANSPORTS_H

#include "vestnik/stanza.h"
#include "vestnik/util.h"

/* Claim the configured paths (http.websocket_path, http.bosh_path) on the
 * HTTP server; at start-up, once the config is loaded. */
void vn_websocket_init(void);
void vn_bosh_init(void);
/* XEP-0156 discovery of both at /.well-known/host-meta (http_host_meta.c). */
void vn_host_meta_init(void);

/* A stream header for vn_c2s_input_open, as the TCP parser would have
 * built it from <stream:stream xmlns='jabber:client' ...>: the web
 * framings carry only to, version and xml:lang. Each may be NULL. */
vn_stanza *vn_web_stream_header(const char *to, const char *version, const char *lang);

/* Parse exactly one element (a WebSocket message, a BOSH <body/>) with
 * the stream parser's restrictions and the configured limits, nesting up
 * to limits.max_xml_depth + extra_depth. Elements without a namespace are
 * in jabber:client. NULL on failure, with *condition the stream error. */
vn_stanza *vn_web_parse(const char *xml, size_t len, unsigned extra_depth, const char **condition);

/* Append st as a standalone element: stanzas carry xmlns='jabber:client'
 * explicitly, elements of the streams namespace declare the "stream:"
 * prefix they are written with (RFC 7395 §3.3.3, XEP-0206 §7). */
void vn_web_serialize(const vn_stanza *st, vn_buf *out);

#endif
