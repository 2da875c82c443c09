/*
 * xml_parser.h - expat in streaming mode: bytes in, stream events out.
 *
 * The stream's root element opens the stream, each complete depth-1
 * element is delivered as a vn_stanza, and the root's end closes it.
 * Restricted XML (RFC 6120 §11.1) is refused: DTDs, entity declarations,
 * processing instructions and comments; so are non-UTF-8 encodings,
 * invalid UTF-8, stanzas over max_stanza_size bytes and nesting deeper
 * than max_depth below the stanza.
 *
 * Names follow stanza.h: elements carry their namespace URI, attributes in
 * the XML namespace are "xml:lang" etc., other namespaced attributes
 * "URI|local".
 */
#ifndef VESTNIK_XML_PARSER_H
#define VESTNIK_XML_PARSER_H

#include <stdbool.h>
#include <stddef.h>

#include "vestnik/stanza.h"

typedef struct vn_xml_parser vn_xml_parser;

/* All four callbacks are required. */
typedef struct vn_xml_callbacks {
    /* The root element opened; header is borrowed for the call. It holds
     * the root's name, namespace and attributes, plus a pseudo-attribute
     * "xmlns" with the default namespace the root declared, if it did. */
    void (*stream_open)(void *ud, const vn_stanza *header);
    /* A complete depth-1 element; ownership passes to the callee. */
    void (*stanza)(void *ud, vn_stanza *st);
    /* The root element closed. */
    void (*stream_close)(void *ud);
    /* Fatal error; condition is a stream error condition name:
     * "not-well-formed", "restricted-xml", "unsupported-encoding",
     * "policy-violation" (size or depth), "bad-format" (text between
     * stanzas). */
    void (*error)(void *ud, const char *condition, const char *text);
} vn_xml_callbacks;

vn_xml_parser *vn_xml_parser_new(const vn_xml_callbacks *cb, void *ud, size_t max_stanza_size,
                                 unsigned max_depth);
void vn_xml_parser_free(vn_xml_parser *p);

/* Feed bytes. Returns 0, or -1 after the error callback ran or after a
 * callback called vn_xml_parser_stop; in both cases no further callbacks
 * run for this chunk, and every later feed returns -1 at once until
 * vn_xml_parser_reset. Callbacks must not free the parser. */
int vn_xml_parser_feed(vn_xml_parser *p, const char *data, size_t len);
/* Called from inside a callback: deliver no more events from this chunk. */
void vn_xml_parser_stop(vn_xml_parser *p);
/* Called from inside the stanza callback: suspend parsing after this
 * stanza (load shaping). Bytes not parsed yet, of this chunk and of later
 * feeds, are kept until vn_xml_parser_resume. */
void vn_xml_parser_pause(vn_xml_parser *p);
/* Not from inside a callback: parse what was kept; callbacks may pause
 * again. Returns as feed does. */
int vn_xml_parser_resume(vn_xml_parser *p);
/* An idle stream: free expat's memory if the parser is between two
 * stanzas with nothing pending (true if it did); the next feed restores
 * it. Not from inside a callback. */
bool vn_xml_parser_release(vn_xml_parser *p);
/* Start over for a stream restart (after STARTTLS or SASL). Must not be
 * called from inside a callback; stop first, reset after feed returns. */
void vn_xml_parser_reset(vn_xml_parser *p);

#endif
