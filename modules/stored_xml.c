/*
 * stored_xml.c - parse XML a module stored back into a vn_stanza.
 *
 * The input is only what vn_stanza_serialize wrote before it went into the
 * store, and the stanza it came from had already passed the stream
 * parser's limits (size, depth, restricted XML), so none of those defences
 * are repeated here. Names follow stanza.h: elements carry their namespace
 * URI, attributes in the XML namespace are "xml:lang" etc., others
 * "URI|local" (expat's own form with '|' as the separator).
 */
#include "stored_xml.h"

#include <expat.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/util.h>

#define NS_XML_PREFIX "http://www.w3.org/XML/1998/namespace|"

typedef struct tree_builder {
    vn_stanza *root;
    vn_stanza *current; /* innermost open element */
} tree_builder;

/* expat names are "URI|local", or "local" outside any namespace. */
static vn_stanza *new_element(const char *expat_name)
{
    const char *sep = strrchr(expat_name, '|');
    if (!sep)
        return vn_stanza_new(expat_name, NULL);
    char *ns = vn_strndup(expat_name, (size_t)(sep - expat_name));
    vn_stanza *element = vn_stanza_new(sep + 1, ns);
    free(ns);
    return element;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    tree_builder *b = ud;
    vn_stanza *element = new_element(name);

    for (size_t i = 0; attrs[i]; i += 2) {
        if (strncmp(attrs[i], NS_XML_PREFIX, strlen(NS_XML_PREFIX)) == 0) {
            char *xml_name = vn_asprintf("xml:%s", attrs[i] + strlen(NS_XML_PREFIX));
            vn_stanza_set_attr(element, xml_name, attrs[i + 1]);
            free(xml_name);
        } else {
            vn_stanza_set_attr(element, attrs[i], attrs[i + 1]);
        }
    }
    if (b->current)
        vn_stanza_append(b->current, element);
    else
        b->root = element;
    b->current = element;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    tree_builder *b = ud;
    b->current = vn_stanza_parent(b->current);
}

static void XMLCALL on_text(void *ud, const XML_Char *text, int len)
{
    tree_builder *b = ud;
    if (b->current && len > 0)
        vn_stanza_add_text(b->current, text, (size_t)len);
}

vn_stanza *stored_xml_parse(const void *data, size_t len)
{
    if (len > INT_MAX)
        return NULL;
    XML_Parser expat = XML_ParserCreateNS("UTF-8", '|');
    if (!expat)
        return NULL;

    tree_builder b = {NULL, NULL};
    XML_SetUserData(expat, &b);
    XML_SetElementHandler(expat, on_start, on_end);
    XML_SetCharacterDataHandler(expat, on_text);
    bool parsed = XML_Parse(expat, data, (int)len, XML_TRUE) == XML_STATUS_OK;
    XML_ParserFree(expat);
    if (!parsed) {
        vn_stanza_free(b.root);
        return NULL;
    }
    return b.root;
}
