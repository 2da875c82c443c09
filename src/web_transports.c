/*
 * web_transports.c - the XML framing WebSocket and BOSH share: a stream
 * header made from framing attributes, and elements serialized to stand
 * on their own rather than inside a <stream:stream> that declares their
 * namespaces.
 */
#include <string.h>

#include "server.h"
#include "web_transports.h"
#include "xml_parser.h"

vn_stanza *vn_web_stream_header(const char *to, const char *version, const char *lang)
{
    vn_stanza *header = vn_stanza_new("stream", VN_NS_STREAMS);

    vn_stanza_set_attr(header, "xmlns", VN_NS_CLIENT);
    vn_stanza_set_attr(header, "to", to);
    vn_stanza_set_attr(header, "version", version);
    vn_stanza_set_attr(header, "xml:lang", lang);
    return header;
}

typedef struct one_element {
    vn_stanza *element;
    size_t count;
    const char *error;
} one_element;

static void on_parsed_open(void *ud, const vn_stanza *header)
{
}

static void on_parsed_element(void *ud, vn_stanza *st)
{
    one_element *found = ud;

    if (found->count++ == 0)
        found->element = st;
    else
        vn_stanza_free(st);
}

static void on_parsed_close(void *ud)
{
}

static void on_parse_error(void *ud, const char *condition, const char *text)
{
    ((one_element *)ud)->error = condition;
}

vn_stanza *vn_web_parse(const char *xml, size_t len, unsigned extra_depth, const char **condition)
{
    static const vn_xml_callbacks callbacks = {on_parsed_open, on_parsed_element, on_parsed_close,
                                               on_parse_error};
    static const char open[] = "<stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    static const char close[] = "</stream:stream>";
    const vn_config *cfg = vn_srv.cfg;
    one_element found = {NULL, 0, NULL};
    vn_xml_parser *p = vn_xml_parser_new(&callbacks, &found, cfg->max_stanza_size,
                                         cfg->max_xml_depth + extra_depth);

    if (vn_xml_parser_feed(p, open, sizeof open - 1) == 0 && vn_xml_parser_feed(p, xml, len) == 0)
        vn_xml_parser_feed(p, close, sizeof close - 1);
    vn_xml_parser_free(p);
    if (!found.error && found.count == 1)
        return found.element;
    vn_stanza_free(found.element);
    *condition = found.error ? found.error : "not-well-formed";
    return NULL;
}

void vn_web_serialize(const vn_stanza *st, vn_buf *out)
{
    static vn_buf element; /* reused: the loop is single-threaded */
    const char *ns = vn_stanza_ns(st);
    bool in_stanza_ns = vn_stanza_is_stanza_ns(ns);
    bool in_streams_ns = ns && strcmp(ns, VN_NS_STREAMS) == 0;

    /* With no stream namespace in scope the serializer leaves out what a
     * stream header would have declared; add it after the element name. */
    vn_buf_reset(&element);
    vn_stanza_serialize_to(st, NULL, &element);
    if (!in_stanza_ns && !in_streams_ns) {
        vn_buf_append(out, element.data, element.len);
        return;
    }
    size_t name_end = 1 + (in_streams_ns ? strlen("stream:") : 0) + strlen(vn_stanza_name(st));
    vn_buf_append(out, element.data, name_end);
    if (in_streams_ns)
        vn_buf_append_str(out, " xmlns:stream='" VN_NS_STREAMS "'");
    else
        vn_buf_printf(out, " xmlns='%s'", ns);
    vn_buf_append(out, element.data + name_end, element.len - name_end);
}
