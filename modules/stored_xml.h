/*
 * stored_xml.h - turning XML a module stored back into a vn_stanza.
 *
 * module.h can serialize a stanza (vn_stanza_serialize) but offers no way
 * back, so the modules that keep XML documents in the store (mod_vcard,
 * mod_private) share this small expat tree builder. It is compiled into
 * each of them; it is not part of the core API.
 */
#ifndef VESTNIK_STORED_XML_H
#define VESTNIK_STORED_XML_H

#include <stddef.h>

#include <vestnik/stanza.h>

/* The one element serialized in data/len (as vn_stanza_serialize wrote it
 * with a NULL stream namespace), or NULL if it is not well-formed XML. */
vn_stanza *stored_xml_parse(const void *data, size_t len);

#endif
