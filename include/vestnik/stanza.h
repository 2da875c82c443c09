/*
 * stanza.h - the element tree every layer of vestnik trades in.
 *
 * A vn_stanza is one XML element: a local name, the namespace URI it is in,
 * attributes and an ordered list of children (elements and text). The XML
 * parser builds them, modules inspect and build them, the serializer writes
 * them back with correct escaping and namespace declarations.
 *
 * Namespaces are resolved: prefixes from the wire are dropped and every
 * element carries its namespace URI. Attributes in the XML namespace are
 * named "xml:lang" etc.; attributes in other namespaces are named
 * "URI|local" (the separator is '|') and get a generated prefix on output.
 */
#ifndef VESTNIK_STANZA_H
#define VESTNIK_STANZA_H

#include <stdbool.h>
#include <stddef.h>

#define VN_NS_CLIENT "jabber:client"
#define VN_NS_SERVER "jabber:server"
#define VN_NS_COMPONENT "jabber:component:accept"
#define VN_NS_STREAMS "http://etherx.jabber.org/streams"
#define VN_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define VN_NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define VN_NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define VN_NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define VN_NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define VN_NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

typedef struct vn_stanza vn_stanza;

/* Construction and destruction. ns may be NULL (inherits nothing: no namespace). */
vn_stanza *vn_stanza_new(const char *name, const char *ns);
void vn_stanza_free(vn_stanza *st);             /* frees the whole subtree; NULL ok */
vn_stanza *vn_stanza_copy(const vn_stanza *st); /* deep copy, detached */

/* Lookups (vn_stanza_is, _attr, _child, _child_text, _first_element,
 * _element_count) accept NULL and answer false/NULL/0, so a chain such as
 * vn_stanza_attr(vn_stanza_child(iq, "query", ns), "ver") is safe on a
 * payload that lacks the element: hostile input must not crash a handler. */

/* Identity. */
const char *vn_stanza_name(const vn_stanza *st);
const char *vn_stanza_ns(const vn_stanza *st);
bool vn_stanza_is(const vn_stanza *st, const char *name, const char *ns); /* NULL = any */
vn_stanza *vn_stanza_parent(const vn_stanza *st);

/* Attributes. set with value NULL removes the attribute. */
const char *vn_stanza_attr(const vn_stanza *st, const char *name);
void vn_stanza_set_attr(vn_stanza *st, const char *name, const char *value);
size_t vn_stanza_attr_count(const vn_stanza *st);
/* i-th attribute in document order; returns false past the end. */
bool vn_stanza_attr_at(const vn_stanza *st, size_t i, const char **name, const char **value);

/* Children. Element iteration skips text nodes. name/ns NULL match any. */
vn_stanza *vn_stanza_child(const vn_stanza *st, const char *name, const char *ns);
vn_stanza *vn_stanza_first_element(const vn_stanza *st);
vn_stanza *vn_stanza_next_element(const vn_stanza *st); /* next sibling element */
size_t vn_stanza_element_count(const vn_stanza *st);

/* Builders. add_child creates and appends a new element and returns it. */
vn_stanza *vn_stanza_add_child(vn_stanza *parent, const char *name, const char *ns);
void vn_stanza_append(vn_stanza *parent, vn_stanza *child); /* takes ownership */
void vn_stanza_add_text(vn_stanza *st, const char *text, size_t len);
/* add_child + add_text in one: <name xmlns=ns>text</name>. */
vn_stanza *vn_stanza_add_text_child(vn_stanza *parent, const char *name, const char *ns,
                                    const char *text);
/* Unlink from parent (caller owns it afterwards) or unlink and free. */
void vn_stanza_detach(vn_stanza *child);
void vn_stanza_remove(vn_stanza *child);

/* Concatenated text of the direct text children ("" when none). Owned by the
 * stanza, valid until it is next modified. */
const char *vn_stanza_text(const vn_stanza *st);
/* Text of the first child element matching name/ns, or NULL if no such child. */
const char *vn_stanza_child_text(const vn_stanza *st, const char *name, const char *ns);

/* Serialization. stream_ns is the default namespace of the stream the
 * element is written to (jabber:client, jabber:server, ...) or NULL. A
 * top-level element in any of the three stanza namespaces is written
 * without an xmlns so it takes the stream's; elements in the streams
 * namespace are written with the "stream:" prefix the stream header
 * declared. Returns a malloc'd NUL-terminated string; *len if non-NULL. */
char *vn_stanza_serialize(const vn_stanza *st, const char *stream_ns, size_t *len);
/* Same, appending to a buffer. */
struct vn_buf;
void vn_stanza_serialize_to(const vn_stanza *st, const char *stream_ns, struct vn_buf *out);

/* A top-level stanza about to be written to many streams with only its
 * 'to' changing (fan-out, vn_route_fanout): its serialization is kept and
 * reused, with the 'to' spliced in, until anything else in the tree changes. */
void vn_stanza_share_serialization(vn_stanza *st);
/* Whether anything but the top-level 'to' of such a stanza changed since
 * the last call (a hook on the way to one recipient edited it). */
bool vn_stanza_shared_changed(vn_stanza *st);

/* Parse exactly one element serialized by vn_stanza_serialize with
 * stream_ns jabber:client (stored stanzas, documents); NULL if the text is
 * not one well-formed element. Same restrictions as the stream parser. */
vn_stanza *vn_stanza_parse(const char *xml, size_t len);

/* Every element of the tree in namespace `from` moves to `to_static`, a
 * string with static storage (VN_NS_CLIENT...): streams of other kinds
 * (server, component) turn their stanzas into the router's jabber:client. */
void vn_stanza_replace_ns(vn_stanza *st, const char *from, const char *to_static);

/* Stanza helpers used everywhere. */
bool vn_stanza_is_stanza_ns(const char *ns); /* jabber:client|server|component:accept */
/* An error reply to st: swaps from/to, keeps id, type='error', copies st's
 * children, adds <error type=...><condition xmlns=stanzas/><text/>. text may
 * be NULL. Returns NULL if st is itself an error (never answer errors). */
vn_stanza *vn_stanza_error_reply(const vn_stanza *st, const char *type, const char *condition,
                                 const char *text);
/* <iq type='result' id=... from=st.to to=st.from/> with no children. */
vn_stanza *vn_stanza_iq_result(const vn_stanza *iq);

#endif
