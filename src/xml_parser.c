/*
 * xml_parser.c - turns the bytes of an XMPP stream into stream events.
 *
 * expat runs in streaming mode with namespace processing. Its separator
 * between a namespace URI and a local name is '|': it cannot occur in a
 * URI (RFC 3986) and expat refuses namespace declarations that contain the
 * separator, so "URI|local" splits unambiguously; stanza.h names namespaced
 * attributes the same way.
 *
 * The stanza size limit is enforced while bytes arrive, not after a stanza
 * is complete: feed() hands expat at most as many bytes as the stanza in
 * progress may still grow by, so an endless text node or start tag is
 * refused after max_stanza_size bytes and never buffered whole.
 *
 * Idle streams: expat keeps about 10 KiB per parser (hash tables, name
 * pools, its input buffer). Between two stanzas, when every byte fed has
 * been reported, nothing of that is needed but the root element's context
 * (its namespace declarations and name), so vn_xml_parser_release frees the
 * parser and keeps a copy of the root's start tag as it arrived; the next
 * feed creates a new parser and replays that tag to it without callbacks,
 * which puts it back exactly where the old one was. `base` maps the new
 * parser's byte offsets onto the stream's.
 */
#include "xml_parser.h"

#include <expat.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vestnik/i18n.h"
#include "vestnik/log.h"
#include "vestnik/util.h"

#define NS_SEPARATOR '|'
#define XML_NS_PREFIX "http://www.w3.org/XML/1998/namespace|"

struct vn_xml_parser {
    XML_Parser expat;
    vn_xml_callbacks cb;
    void *ud;
    size_t max_stanza_size;
    unsigned max_depth;

    unsigned open_elements; /* root included */
    vn_stanza *stanza;      /* depth-1 element being built, or NULL */
    vn_stanza *current;     /* innermost open element of stanza */
    vn_buf text;            /* character data not yet added to current */
    char *root_default_ns;  /* default namespace declared on the root */

    /* Stream byte offsets, counted since the stream started. */
    uint64_t fed;        /* bytes handed to expat */
    uint64_t unit_start; /* where the stanza (or stream header) in progress began */
    uint64_t base;       /* the stream offset of expat's byte 0 */
    char *root_tag;      /* the root's start tag as received, for a replay */
    size_t root_tag_len;
    bool replaying; /* feeding root_tag to a new parser: no callbacks */
    bool halted;    /* error or stop: deliver nothing until reset */
    bool paused;    /* expat suspended; input kept in held */
    vn_buf held;    /* fed while paused, not yet handed to expat */
};

static void halt(vn_xml_parser *p)
{
    p->halted = true;
    if (p->expat)
        XML_StopParser(p->expat, XML_FALSE);
}

static void fail(vn_xml_parser *p, const char *condition, const char *text)
{
    if (p->halted)
        return;
    halt(p);
    p->cb.error(p->ud, condition, text);
}

/* The stream offset just past the event expat is reporting. */
static uint64_t event_end(const vn_xml_parser *p)
{
    return p->base + (uint64_t)XML_GetCurrentByteIndex(p->expat) +
           (uint64_t)XML_GetCurrentByteCount(p->expat);
}

/* Keep the root's start tag, as received, for a replay after a release. */
static void save_root_tag(vn_xml_parser *p)
{
    int offset, size;
    const char *context = XML_GetInputContext(p->expat, &offset, &size);
    int count = XML_GetCurrentByteCount(p->expat);

    free(p->root_tag);
    p->root_tag = NULL;
    if (context && count > 0 && offset >= 0 && count <= size - offset) {
        p->root_tag = vn_strndup(context + offset, (size_t)count);
        p->root_tag_len = (size_t)count;
    }
}

/* "URI|local" -> ns, local; a name without separator has no namespace. */
static vn_stanza *element_for(const char *expanded_name)
{
    const char *sep = strrchr(expanded_name, NS_SEPARATOR);
    if (!sep)
        return vn_stanza_new(expanded_name, NULL);

    char *ns = vn_strndup(expanded_name, (size_t)(sep - expanded_name));
    vn_stanza *st = vn_stanza_new(sep + 1, ns);
    free(ns);
    return st;
}

static void set_attrs(vn_stanza *st, const XML_Char **atts)
{
    for (size_t i = 0; atts[i]; i += 2) {
        const char *name = atts[i];
        if (strncmp(name, XML_NS_PREFIX, sizeof XML_NS_PREFIX - 1) == 0) {
            char *xml_name = vn_asprintf("xml:%s", name + sizeof XML_NS_PREFIX - 1);
            vn_stanza_set_attr(st, xml_name, atts[i + 1]);
            free(xml_name);
        } else {
            vn_stanza_set_attr(st, name, atts[i + 1]);
        }
    }
}

static void flush_text(vn_xml_parser *p)
{
    if (p->text.len)
        vn_stanza_add_text(p->current, p->text.data, p->text.len);
    vn_buf_reset(&p->text);
}

static void XMLCALL on_namespace_start(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
    vn_xml_parser *p = ud;

    if (p->halted || p->replaying || p->open_elements > 0 || prefix)
        return;
    free(p->root_default_ns);
    p->root_default_ns = vn_strdup(uri ? uri : "");
}

static void open_stream(vn_xml_parser *p, const XML_Char *name, const XML_Char **atts)
{
    vn_stanza *header = element_for(name);

    set_attrs(header, atts);
    if (p->root_default_ns)
        vn_stanza_set_attr(header, "xmlns", p->root_default_ns);
    p->unit_start = event_end(p);
    p->cb.stream_open(p->ud, header);
    vn_stanza_free(header);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    vn_xml_parser *p = ud;
    unsigned depth = p->open_elements;

    if (p->halted)
        return;
    if (depth > p->max_depth) {
        fail(p, "policy-violation", N_("elements nested too deeply"));
        return;
    }
    /* <xml:name/> parses, but nothing can write it back: the xml prefix
     * may not be declared, nor its namespace made the default one. */
    if (strncmp(name, XML_NS_PREFIX, strlen(XML_NS_PREFIX)) == 0) {
        fail(p, "bad-format", N_("elements in the reserved xml namespace are not allowed"));
        return;
    }
    p->open_elements++;
    if (depth == 0) {
        if (!p->replaying) {
            save_root_tag(p);
            open_stream(p, name, atts);
        }
        return;
    }
    vn_stanza *el = element_for(name);
    set_attrs(el, atts);
    if (depth == 1) {
        p->stanza = el;
        p->unit_start = p->base + (uint64_t)XML_GetCurrentByteIndex(p->expat);
    } else {
        flush_text(p);
        vn_stanza_append(p->current, el);
    }
    p->current = el;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    vn_xml_parser *p = ud;

    if (p->halted)
        return;
    unsigned depth = --p->open_elements;
    if (depth == 0) {
        p->cb.stream_close(p->ud);
        return;
    }
    flush_text(p);
    if (depth > 1) {
        p->current = vn_stanza_parent(p->current);
        return;
    }
    /* An idle stream keeps no text buffer. */
    vn_buf_free(&p->text);
    vn_stanza *done = p->stanza;
    p->stanza = p->current = NULL;
    p->unit_start = event_end(p);
    p->cb.stanza(p->ud, done);
}

static bool all_whitespace(const char *s, int len)
{
    for (int i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    return true;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    vn_xml_parser *p = ud;

    if (p->halted)
        return;
    if (p->open_elements > 1) {
        vn_buf_append(&p->text, s, (size_t)len);
        return;
    }
    /* Between stanzas: whitespace keepalives are consumed, text is not XMPP. */
    if (!all_whitespace(s, len)) {
        fail(p, "bad-format", N_("text between stanzas"));
        return;
    }
    p->unit_start = event_end(p);
}

static void XMLCALL on_xml_decl(void *ud, const XML_Char *version, const XML_Char *encoding,
                                int standalone)
{
    vn_xml_parser *p = ud;

    if (encoding && strcasecmp(encoding, "UTF-8") != 0)
        fail(p, "unsupported-encoding", N_("only UTF-8 is supported"));
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    fail(ud, "restricted-xml", N_("document type declarations are not allowed"));
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_parameter_entity,
                                   const XML_Char *value, int value_length, const XML_Char *base,
                                   const XML_Char *system_id, const XML_Char *public_id,
                                   const XML_Char *notation_name)
{
    fail(ud, "restricted-xml", N_("entity declarations are not allowed"));
}

static void XMLCALL on_processing_instruction(void *ud, const XML_Char *target,
                                              const XML_Char *data)
{
    fail(ud, "restricted-xml", N_("processing instructions are not allowed"));
}

static void XMLCALL on_comment(void *ud, const XML_Char *data)
{
    fail(ud, "restricted-xml", N_("comments are not allowed"));
}

static XML_Parser expat_new(vn_xml_parser *p)
{
    /* The encoding argument makes expat read UTF-8 whatever the document
     * declares; a declaration of anything else is refused in on_xml_decl. */
    XML_Parser expat = XML_ParserCreateNS("UTF-8", NS_SEPARATOR);
    if (!expat) {
        vn_log_error("out of memory creating an XML parser");
        abort();
    }

    XML_SetUserData(expat, p);
    XML_SetElementHandler(expat, on_start, on_end);
    XML_SetCharacterDataHandler(expat, on_text);
    XML_SetStartNamespaceDeclHandler(expat, on_namespace_start);
    XML_SetXmlDeclHandler(expat, on_xml_decl);
    XML_SetStartDoctypeDeclHandler(expat, on_doctype);
    XML_SetEntityDeclHandler(expat, on_entity_decl);
    XML_SetProcessingInstructionHandler(expat, on_processing_instruction);
    XML_SetCommentHandler(expat, on_comment);
    /* Entities are refused with the DOCTYPE before any could be declared,
     * so entity expansion (billion laughs) cannot start. */
    XML_SetParamEntityParsing(expat, XML_PARAM_ENTITY_PARSING_NEVER);
    /* A stream is interactive: report each stanza as soon as its last byte
     * arrives instead of waiting for more input to make re-parsing cheap. */
    XML_SetReparseDeferralEnabled(expat, XML_FALSE);
    return expat;
}

vn_xml_parser *vn_xml_parser_new(const vn_xml_callbacks *cb, void *ud, size_t max_stanza_size,
                                 unsigned max_depth)
{
    vn_xml_parser *p = vn_alloc(sizeof *p);

    p->cb = *cb;
    p->ud = ud;
    p->max_stanza_size = max_stanza_size;
    p->max_depth = max_depth;
    vn_buf_init(&p->text);
    p->expat = expat_new(p);
    return p;
}

static void clear_stream_state(vn_xml_parser *p)
{
    vn_stanza_free(p->stanza);
    p->stanza = p->current = NULL;
    vn_buf_free(&p->text);
    free(p->root_default_ns);
    p->root_default_ns = NULL;
    free(p->root_tag);
    p->root_tag = NULL;
    p->open_elements = 0;
    p->fed = p->unit_start = p->base = 0;
    p->halted = false;
    p->paused = false;
    vn_buf_free(&p->held);
}

void vn_xml_parser_free(vn_xml_parser *p)
{
    if (!p)
        return;
    clear_stream_state(p);
    XML_ParserFree(p->expat);
    free(p);
}

void vn_xml_parser_reset(vn_xml_parser *p)
{
    clear_stream_state(p);
    XML_ParserFree(p->expat);
    p->expat = expat_new(p);
}

bool vn_xml_parser_release(vn_xml_parser *p)
{
    if (!p->expat || p->halted || p->paused || p->open_elements != 1 || p->stanza ||
        p->fed != p->unit_start || !p->root_tag)
        return false;
    XML_ParserFree(p->expat);
    p->expat = NULL;
    vn_buf_free(&p->text);
    return true;
}

/* After a release: a new parser, inside the root element again. */
static void revive(vn_xml_parser *p)
{
    p->expat = expat_new(p);
    p->base = p->fed - p->root_tag_len;
    p->open_elements = 0;
    p->replaying = true;
    enum XML_Status status = XML_Parse(p->expat, p->root_tag, (int)p->root_tag_len, XML_FALSE);
    p->replaying = false;
    if (status != XML_STATUS_OK || p->open_elements != 1)
        fail(p, "internal-server-error", N_("cannot restore the stream's parser"));
}

void vn_xml_parser_stop(vn_xml_parser *p)
{
    if (!p->halted)
        halt(p);
}

void vn_xml_parser_pause(vn_xml_parser *p)
{
    if (!p->halted && !p->paused && XML_StopParser(p->expat, XML_TRUE) == XML_STATUS_OK)
        p->paused = true;
}

static const char *condition_for(enum XML_Error code)
{
    switch (code) {
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING: return "unsupported-encoding";
    case XML_ERROR_UNDEFINED_ENTITY: return "restricted-xml";
    default: return "not-well-formed";
    }
}

int vn_xml_parser_feed(vn_xml_parser *p, const char *data, size_t len)
{
    if (p->paused && !p->halted) {
        vn_buf_append(&p->held, data, len);
        return 0;
    }
    if (!p->expat && !p->halted && len > 0)
        revive(p);
    while (!p->halted && len > 0) {
        /* Bytes the stanza (or stream header) in progress may still grow by. */
        uint64_t used = p->fed - p->unit_start;
        if (used >= p->max_stanza_size) {
            fail(p, "policy-violation", N_("stanza too large"));
            break;
        }
        uint64_t room = p->max_stanza_size - used;
        size_t slice = room < len ? (size_t)room : len;
        if (slice > INT32_MAX)
            slice = INT32_MAX;

        p->fed += slice;
        enum XML_Status status = XML_Parse(p->expat, data, (int)slice, XML_FALSE);
        if (status == XML_STATUS_ERROR && !p->halted) {
            enum XML_Error code = XML_GetErrorCode(p->expat);
            fail(p, condition_for(code), XML_ErrorString(code));
        }
        data += slice;
        len -= slice;
        if (status == XML_STATUS_SUSPENDED && !p->halted) {
            /* expat keeps the rest of the slice; we keep what follows it. */
            vn_buf_append(&p->held, data, len);
            break;
        }
    }
    return p->halted ? -1 : 0;
}

int vn_xml_parser_resume(vn_xml_parser *p)
{
    if (!p->paused || p->halted)
        return p->halted ? -1 : 0;
    p->paused = false;
    enum XML_Status status = XML_ResumeParser(p->expat);
    if (status == XML_STATUS_ERROR && !p->halted) {
        enum XML_Error code = XML_GetErrorCode(p->expat);
        fail(p, condition_for(code), XML_ErrorString(code));
    }
    if (status == XML_STATUS_SUSPENDED || p->halted || p->held.len == 0)
        return p->halted ? -1 : 0;
    size_t len;
    char *rest = vn_buf_steal(&p->held, &len);
    int rc = vn_xml_parser_feed(p, rest, len);
    free(rest);
    return rc;
}

/* ---- parsing one stored element (vn_stanza_parse, declared in stanza.h) ---- */

typedef struct single_parse {
    vn_stanza *result;
    bool failed;
} single_parse;

static void single_open(void *ud, const vn_stanza *header)
{
}

static void single_stanza(void *ud, vn_stanza *st)
{
    single_parse *sp = ud;
    if (sp->result)
        sp->failed = true;
    vn_stanza_free(sp->result);
    sp->result = st;
}

static void single_close(void *ud)
{
}

static void single_error(void *ud, const char *condition, const char *text)
{
    ((single_parse *)ud)->failed = true;
}

vn_stanza *vn_stanza_parse(const char *xml, size_t len)
{
    static const vn_xml_callbacks cb = {single_open, single_stanza, single_close, single_error};
    static const char open[] = "<stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    static const char close[] = "</stream:stream>";
    single_parse sp = {NULL, false};
    vn_xml_parser *p = vn_xml_parser_new(&cb, &sp, sizeof open + len, 256);

    if (vn_xml_parser_feed(p, open, sizeof open - 1) < 0 || vn_xml_parser_feed(p, xml, len) < 0 ||
        vn_xml_parser_feed(p, close, sizeof close - 1) < 0)
        sp.failed = true;
    vn_xml_parser_free(p);
    if (sp.failed) {
        vn_stanza_free(sp.result);
        return NULL;
    }
    return sp.result;
}
