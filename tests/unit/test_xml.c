/*
 * test_xml.c - the streaming parser: stream events, chunking, restricted
 * XML, encodings, size and depth limits, stop and reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vestnik/stanza.h"
#include "vestnik/util.h"
#include "xml_parser.h"

#define MAX_STANZAS 16

/* What the callbacks saw. */
typedef struct events {
    vn_stanza *header;
    vn_stanza *stanzas[MAX_STANZAS];
    size_t stanza_count;
    int opens;
    int closes;
    int errors;
    char condition[64];
    size_t stop_after; /* call vn_xml_parser_stop after this many stanzas; 0 = never */
    bool pause_each;   /* call vn_xml_parser_pause after every stanza */
    vn_xml_parser *parser;
} events;

static void on_open(void *ud, const vn_stanza *header)
{
    events *ev = ud;
    ev->opens++;
    vn_stanza_free(ev->header);
    ev->header = vn_stanza_copy(header);
}

static void on_stanza(void *ud, vn_stanza *st)
{
    events *ev = ud;
    assert_true(ev->stanza_count < MAX_STANZAS);
    assert_null(vn_stanza_parent(st));
    ev->stanzas[ev->stanza_count++] = st;
    if (ev->stop_after && ev->stanza_count == ev->stop_after)
        vn_xml_parser_stop(ev->parser);
    if (ev->pause_each)
        vn_xml_parser_pause(ev->parser);
}

static void on_close(void *ud)
{
    events *ev = ud;
    ev->closes++;
}

static void on_error(void *ud, const char *condition, const char *text)
{
    events *ev = ud;
    ev->errors++;
    assert_non_null(text);
    snprintf(ev->condition, sizeof ev->condition, "%s", condition);
}

static const vn_xml_callbacks callbacks = {on_open, on_stanza, on_close, on_error};

static vn_xml_parser *parser_for(events *ev, size_t max_stanza_size, unsigned max_depth)
{
    memset(ev, 0, sizeof *ev);
    ev->parser = vn_xml_parser_new(&callbacks, ev, max_stanza_size, max_depth);
    return ev->parser;
}

static void events_clear(events *ev)
{
    vn_stanza_free(ev->header);
    for (size_t i = 0; i < ev->stanza_count; i++)
        vn_stanza_free(ev->stanzas[i]);
}

static void done(events *ev)
{
    vn_xml_parser_free(ev->parser);
    events_clear(ev);
}

static int feed_str(vn_xml_parser *p, const char *s)
{
    return vn_xml_parser_feed(p, s, strlen(s));
}

static void assert_serializes(const vn_stanza *st, const char *expected)
{
    char *xml = vn_stanza_serialize(st, VN_NS_CLIENT, NULL);
    assert_string_equal(xml, expected);
    free(xml);
}

static const char client_header[] =
    "<?xml version='1.0' encoding='UTF-8'?>"
    "<stream:stream from='juliet@im.example.com' to='im.example.com' version='1.0'"
    " xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

static const char client_stanzas[] =
    "<iq type='get' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>\n"
    "<message to='romeo@example.net' type='chat'><body>Art thou not Romeo &amp; a "
    "Montague?</body></message>";

/* Checks the events of client_header + client_stanzas + the close tag. */
static void assert_client_stream(const events *ev)
{
    assert_int_equal(ev->errors, 0);
    assert_int_equal(ev->opens, 1);
    assert_true(vn_stanza_is(ev->header, "stream", VN_NS_STREAMS));
    assert_string_equal(vn_stanza_attr(ev->header, "from"), "juliet@im.example.com");
    assert_string_equal(vn_stanza_attr(ev->header, "to"), "im.example.com");
    assert_string_equal(vn_stanza_attr(ev->header, "version"), "1.0");
    assert_string_equal(vn_stanza_attr(ev->header, "xml:lang"), "en");
    assert_string_equal(vn_stanza_attr(ev->header, "xmlns"), VN_NS_CLIENT);
    assert_null(vn_stanza_attr(ev->header, "xmlns:stream"));
    assert_int_equal(vn_stanza_attr_count(ev->header), 5);

    assert_int_equal(ev->stanza_count, 2);
    assert_true(vn_stanza_is(ev->stanzas[0], "iq", VN_NS_CLIENT));
    assert_non_null(vn_stanza_child(ev->stanzas[0], "bind", VN_NS_BIND));
    assert_true(vn_stanza_is(ev->stanzas[1], "message", VN_NS_CLIENT));
    assert_string_equal(vn_stanza_child_text(ev->stanzas[1], "body", VN_NS_CLIENT),
                        "Art thou not Romeo & a Montague?");
    assert_int_equal(ev->closes, 1);
}

static void test_full_client_stream(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 65536, 16);

    assert_int_equal(feed_str(p, client_header), 0);
    assert_int_equal(ev.opens, 1);
    assert_int_equal(ev.stanza_count, 0);
    assert_int_equal(feed_str(p, client_stanzas), 0);
    assert_int_equal(ev.closes, 0);
    assert_int_equal(feed_str(p, "</stream:stream>"), 0);
    assert_client_stream(&ev);
    done(&ev);
}

static void test_byte_at_a_time(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 65536, 16);
    vn_buf all;

    vn_buf_init(&all);
    vn_buf_append_str(&all, client_header);
    vn_buf_append_str(&all, client_stanzas);
    vn_buf_append_str(&all, "</stream:stream>");
    size_t first_stanza_end = strlen(client_header) +
                              (size_t)(strstr(client_stanzas, "</iq>") - client_stanzas) +
                              strlen("</iq>");
    for (size_t i = 0; i < all.len; i++) {
        assert_int_equal(vn_xml_parser_feed(p, all.data + i, 1), 0);
        /* Each stanza is delivered as soon as its last byte arrives. */
        if (i + 1 == first_stanza_end - 1)
            assert_int_equal(ev.stanza_count, 0);
        if (i + 1 == first_stanza_end)
            assert_int_equal(ev.stanza_count, 1);
        if (i + 1 == all.len - strlen("</stream:stream>"))
            assert_int_equal(ev.stanza_count, 2);
    }
    assert_client_stream(&ev);
    vn_buf_free(&all);
    done(&ev);
}

static void test_mixed_namespaces_and_lang(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 65536, 16);

    assert_int_equal(feed_str(p, client_header), 0);
    assert_int_equal(
        feed_str(p, "<message xml:lang='de' xmlns:c='urn:xmpp:carbons:2' xmlns:e='urn:ext'"
                    " e:flag='1'><body>Hallo\nWelt</body><c:sent><forwarded"
                    " xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' id='x'>"
                    "<body xml:lang='fr'>salut</body></message></forwarded></c:sent>"
                    "<x xmlns=''/></message>"),
        0);
    assert_int_equal(ev.errors, 0);
    assert_int_equal(ev.stanza_count, 1);

    vn_stanza *msg = ev.stanzas[0];
    assert_string_equal(vn_stanza_attr(msg, "xml:lang"), "de");
    assert_string_equal(vn_stanza_attr(msg, "urn:ext|flag"), "1");
    assert_int_equal(vn_stanza_attr_count(msg), 2);
    assert_string_equal(vn_stanza_child_text(msg, "body", VN_NS_CLIENT), "Hallo\nWelt");
    vn_stanza *sent = vn_stanza_child(msg, "sent", "urn:xmpp:carbons:2");
    assert_non_null(sent);
    vn_stanza *fwd = vn_stanza_child(sent, "forwarded", "urn:xmpp:forward:0");
    assert_non_null(fwd);
    vn_stanza *inner = vn_stanza_child(fwd, "message", VN_NS_CLIENT);
    assert_non_null(inner);
    vn_stanza *inner_body = vn_stanza_child(inner, "body", VN_NS_CLIENT);
    assert_string_equal(vn_stanza_attr(inner_body, "xml:lang"), "fr");
    vn_stanza *x = vn_stanza_child(msg, "x", NULL);
    assert_non_null(x);
    assert_null(vn_stanza_ns(x));

    assert_serializes(msg, "<message xml:lang='de' xmlns:n0='urn:ext' n0:flag='1'>"
                           "<body>Hallo\nWelt</body><sent xmlns='urn:xmpp:carbons:2'>"
                           "<forwarded xmlns='urn:xmpp:forward:0'>"
                           "<message xmlns='jabber:client' id='x'>"
                           "<body xml:lang='fr'>salut</body></message></forwarded></sent>"
                           "<x xmlns=''/></message>");
    done(&ev);
}

static void test_whitespace_keepalive(void **state)
{
    events ev;
    /* A small limit: keepalives between stanzas must not count towards it. */
    vn_xml_parser *p = parser_for(&ev, 200, 16);

    assert_int_equal(feed_str(p, client_header + strlen("<?xml version='1.0' encoding='UTF-8'?>")),
                     0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(feed_str(p, " \n\t\r\n"), 0);
    assert_int_equal(feed_str(p, "<presence/> \n<presence/>"), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(feed_str(p, "  "), 0);
    assert_int_equal(ev.errors, 0);
    assert_int_equal(ev.stanza_count, 2);
    assert_serializes(ev.stanzas[1], "<presence/>");

    assert_int_equal(feed_str(p, "stray text"), -1);
    assert_int_equal(ev.errors, 1);
    assert_string_equal(ev.condition, "bad-format");
    done(&ev);
}

/* Feeds one document to a fresh parser and expects one error with condition. */
static void assert_refused(const char *document, const char *condition)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 65536, 16);

    assert_int_equal(feed_str(p, document), -1);
    assert_int_equal(ev.errors, 1);
    assert_string_equal(ev.condition, condition);
    assert_int_equal(ev.stanza_count, 0);
    /* Nothing more after an error, not even for a later chunk. */
    assert_int_equal(feed_str(p, "<message/></stream:stream>"), -1);
    assert_int_equal(ev.errors, 1);
    assert_int_equal(ev.stanza_count, 0);
    assert_int_equal(ev.closes, 0);
    done(&ev);
}

static void test_billion_laughs_doctype(void **state)
{
    assert_refused("<?xml version='1.0'?>"
                   "<!DOCTYPE lolz [<!ENTITY lol 'lol'>"
                   "<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
                   "<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"
                   "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>"
                   "]><stream:stream xmlns='jabber:client'"
                   " xmlns:stream='http://etherx.jabber.org/streams'>"
                   "<message><body>&lol3;</body></message>",
                   "restricted-xml");
}

static void test_processing_instruction(void **state)
{
    char doc[512];
    snprintf(doc, sizeof doc, "%s<?evil data?><message/>", client_header);
    assert_refused(doc, "restricted-xml");
    snprintf(doc, sizeof doc, "%s<message><?evil data?></message>", client_header);
    assert_refused(doc, "restricted-xml");
}

static void test_comment(void **state)
{
    char doc[512];
    snprintf(doc, sizeof doc, "%s<message><!-- hidden --></message>", client_header);
    assert_refused(doc, "restricted-xml");
    assert_refused("<!-- before the root --><stream:stream/>", "restricted-xml");
}

static void test_undeclared_entity(void **state)
{
    char doc[512];
    snprintf(doc, sizeof doc, "%s<message><body>&nbsp;</body></message>", client_header);
    assert_refused(doc, "restricted-xml");
}

static void test_other_encoding(void **state)
{
    assert_refused("<?xml version='1.0' encoding='ISO-8859-1'?>"
                   "<stream:stream xmlns='jabber:client'"
                   " xmlns:stream='http://etherx.jabber.org/streams'>",
                   "unsupported-encoding");
}

static void test_utf8_declaration_accepted(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 65536, 16);

    assert_int_equal(feed_str(p, "<?xml version='1.0' encoding='utf-8'?><stream:stream"
                                 " xmlns:stream='http://etherx.jabber.org/streams'>"),
                     0);
    assert_int_equal(ev.opens, 1);
    assert_null(vn_stanza_attr(ev.header, "xmlns"));
    assert_int_equal(feed_str(p, "<message><body>\xc3\xa9\xe2\x82\xac</body></message>"), 0);
    assert_int_equal(ev.stanza_count, 1);
    assert_string_equal(vn_stanza_child_text(ev.stanzas[0], "body", NULL), "\xc3\xa9\xe2\x82\xac");
    done(&ev);
}

static void test_invalid_utf8(void **state)
{
    char doc[512];
    snprintf(doc, sizeof doc, "%s<message><body>caf\xe9 \xff</body></message>", client_header);
    assert_refused(doc, "not-well-formed");
    snprintf(doc, sizeof doc, "%s<message><body>\xc0\xaf</body></message>", client_header);
    assert_refused(doc, "not-well-formed");
    snprintf(doc, sizeof doc, "%s<message><body>&#1;</body></message>", client_header);
    assert_refused(doc, "not-well-formed");
    snprintf(doc, sizeof doc, "%s<message></iq>", client_header);
    assert_refused(doc, "not-well-formed");
    snprintf(doc, sizeof doc, "%s<message><x:y/></message>", client_header);
    assert_refused(doc, "not-well-formed");
}

static void test_huge_text_refused_while_streaming(void **state)
{
    enum { CHUNK = 64 * 1024, TOTAL = 10 * 1024 * 1024, MAX = 256 * 1024 };
    events ev;
    vn_xml_parser *p = parser_for(&ev, MAX, 16);
    char *chunk = malloc(CHUNK);
    assert_non_null(chunk);
    memset(chunk, 'a', CHUNK);

    assert_int_equal(feed_str(p, client_header), 0);
    assert_int_equal(feed_str(p, "<message><body>"), 0);
    int result = 0;
    size_t fed_chunks = 0;
    while (result == 0 && fed_chunks * CHUNK < TOTAL) {
        result = vn_xml_parser_feed(p, chunk, CHUNK);
        fed_chunks++;
    }
    assert_int_equal(result, -1);
    assert_int_equal(ev.errors, 1);
    assert_string_equal(ev.condition, "policy-violation");
    /* Refused within the chunk that carried the stanza past the limit:
     * the 4th, as "<message><body>" came first. */
    assert_int_equal(fed_chunks, MAX / CHUNK);
    assert_int_equal(ev.stanza_count, 0);
    free(chunk);
    done(&ev);
}

static void test_huge_start_tag_refused(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 1024, 16);
    char attr_chunk[256];
    memset(attr_chunk, 'v', sizeof attr_chunk);

    assert_int_equal(feed_str(p, client_header), 0);
    assert_int_equal(feed_str(p, "<message to='"), 0);
    int result = 0;
    int chunks = 0;
    while (result == 0 && chunks < 100) {
        result = vn_xml_parser_feed(p, attr_chunk, sizeof attr_chunk);
        chunks++;
    }
    assert_int_equal(result, -1);
    assert_int_equal(chunks, 4);
    assert_string_equal(ev.condition, "policy-violation");
    done(&ev);

    /* The stream header counts as well. */
    p = parser_for(&ev, 64, 16);
    assert_int_equal(feed_str(p, client_header), -1);
    assert_int_equal(ev.opens, 0);
    assert_string_equal(ev.condition, "policy-violation");
    done(&ev);
}

static void test_many_small_stanzas_in_one_chunk(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 40, 16);
    const char *stanza = "<message><body>0123456789</body></message>";

    /* A root start tag over the limit. */
    assert_int_equal(feed_str(p, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"),
                     -1);
    assert_string_equal(ev.condition, "policy-violation");
    done(&ev);

    /* Each stanza fits the limit exactly, the chunk as a whole does not. */
    p = parser_for(&ev, strlen(stanza), 16);
    assert_int_equal(feed_str(p, "<s>"), 0);
    vn_buf many;
    vn_buf_init(&many);
    for (int i = 0; i < MAX_STANZAS; i++)
        vn_buf_append_str(&many, stanza);
    assert_int_equal(vn_xml_parser_feed(p, many.data, many.len), 0);
    assert_int_equal(ev.errors, 0);
    assert_int_equal(ev.stanza_count, MAX_STANZAS);
    vn_buf_free(&many);
    done(&ev);
}

static void test_depth_limit(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 65536, 3);

    assert_int_equal(feed_str(p, client_header), 0);
    /* message = depth 1, x = 2, y = 3: allowed. */
    assert_int_equal(feed_str(p, "<message><x><y>deep</y></x></message>"), 0);
    assert_int_equal(ev.stanza_count, 1);
    assert_string_equal(
        vn_stanza_text(vn_stanza_child(vn_stanza_child(ev.stanzas[0], "x", NULL), "y", NULL)),
        "deep");
    /* z = 4: refused. */
    assert_int_equal(feed_str(p, "<message><x><y><z/></y></x></message>"), -1);
    assert_int_equal(ev.errors, 1);
    assert_string_equal(ev.condition, "policy-violation");
    assert_int_equal(ev.stanza_count, 1);
    done(&ev);
}

static void test_stop_inside_callback(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 65536, 16);

    ev.stop_after = 1;
    assert_int_equal(feed_str(p, client_header), 0);
    assert_int_equal(feed_str(p, "<presence/><message/><iq/></stream:stream>"), -1);
    assert_int_equal(ev.stanza_count, 1);
    assert_true(vn_stanza_is(ev.stanzas[0], "presence", VN_NS_CLIENT));
    assert_int_equal(ev.errors, 0);
    assert_int_equal(ev.closes, 0);
    assert_int_equal(feed_str(p, "<message/>"), -1);
    assert_int_equal(ev.stanza_count, 1);
    assert_int_equal(ev.errors, 0);
    done(&ev);
}

/* Load shaping: a pause holds back the rest of the chunk and later feeds;
 * each resume delivers the next stanza, in order, nothing lost, also when
 * the stanza size limit cut the input into several slices for expat. */
static void test_pause_and_resume(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 100, 16);
    char id[24];
    const char *header = "<stream:stream xmlns='jabber:client' "
                         "xmlns:stream='http://etherx.jabber.org/streams'>";

    assert_int_equal(feed_str(p, header), 0);
    ev.pause_each = true;
    assert_int_equal(feed_str(p, "<message id='0'/><message id='1'/><message id='2'/>"
                                 "<message id='3'/><message id='4'/><message id='5'/>"),
                     0);
    assert_int_equal(ev.stanza_count, 1);
    assert_int_equal(feed_str(p, "<message id='6'/><message id='7'/>"), 0);
    assert_int_equal(ev.stanza_count, 1);
    assert_int_equal(vn_xml_parser_resume(p), 0);
    assert_int_equal(ev.stanza_count, 2);
    ev.pause_each = false;
    assert_int_equal(vn_xml_parser_resume(p), 0);
    assert_int_equal(ev.stanza_count, 8);
    for (size_t i = 0; i < ev.stanza_count; i++) {
        snprintf(id, sizeof id, "%zu", i);
        assert_string_equal(vn_stanza_attr(ev.stanzas[i], "id"), id);
    }
    /* Not paused: resume does nothing, feeding goes on as before. */
    assert_int_equal(vn_xml_parser_resume(p), 0);
    assert_int_equal(feed_str(p, "<iq/></stream:stream>"), 0);
    assert_int_equal(ev.stanza_count, 9);
    assert_int_equal(ev.closes, 1);
    assert_int_equal(ev.errors, 0);

    /* Stopping (the stream closes) while paused: nothing more, ever. */
    vn_xml_parser_reset(p);
    events_clear(&ev);
    memset(&ev, 0, sizeof ev);
    ev.parser = p;
    ev.pause_each = true;
    assert_int_equal(feed_str(p, header), 0);
    assert_int_equal(feed_str(p, "<presence/><message/>"), 0);
    assert_int_equal(ev.stanza_count, 1);
    vn_xml_parser_stop(p);
    assert_int_equal(vn_xml_parser_resume(p), -1);
    assert_int_equal(ev.stanza_count, 1);
    done(&ev);
}

/* Idle memory: expat is freed between stanzas and comes back on the next
 * byte, inside the same root: the root's namespace prefixes still apply,
 * the stanza size limit still counts from the stanza's start, and the
 * root's end still closes the stream. */
static void test_release_between_stanzas(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 200, 16);
    const char *header = "<stream:stream xmlns='jabber:client' xmlns:db='jabber:server:dialback' "
                         "xmlns:stream='http://etherx.jabber.org/streams'>";

    assert_false(vn_xml_parser_release(p)); /* no stream yet */
    assert_int_equal(feed_str(p, header), 0);
    assert_true(vn_xml_parser_release(p));
    assert_false(vn_xml_parser_release(p)); /* once is enough */
    assert_int_equal(feed_str(p, "<message id='1'><body>a</body></message> "), 0);
    assert_int_equal(ev.stanza_count, 1);
    assert_true(vn_stanza_is(ev.stanzas[0], "message", VN_NS_CLIENT));
    assert_true(vn_xml_parser_release(p));

    /* In the middle of a stanza, or with bytes expat has not reported: kept. */
    assert_int_equal(feed_str(p, "<db:result to='a'>k"), 0);
    assert_false(vn_xml_parser_release(p));
    assert_int_equal(feed_str(p, "ey</db:result><iq"), 0);
    assert_false(vn_xml_parser_release(p));
    assert_int_equal(feed_str(p, " id='2'/>"), 0);
    assert_int_equal(ev.stanza_count, 3);
    assert_true(vn_stanza_is(ev.stanzas[1], "result", "jabber:server:dialback"));
    assert_string_equal(vn_stanza_text(ev.stanzas[1]), "key");
    assert_true(vn_stanza_is(ev.stanzas[2], "iq", VN_NS_CLIENT));

    /* The size limit after a release: 200 bytes from the stanza's start. */
    assert_true(vn_xml_parser_release(p));
    char big[256];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "<message><body>", 15);
    assert_int_equal(feed_str(p, "<presence/>"), 0);
    assert_true(vn_xml_parser_release(p));
    assert_int_equal(feed_str(p, big), -1);
    assert_int_equal(ev.errors, 1);
    assert_string_equal(ev.condition, "policy-violation");
    assert_int_equal(ev.stanza_count, 4);

    /* And the root's end closes the stream. */
    vn_xml_parser_reset(p);
    events_clear(&ev);
    memset(&ev, 0, sizeof ev);
    ev.parser = p;
    assert_int_equal(feed_str(p, header), 0);
    assert_int_equal(feed_str(p, "<presence/>"), 0);
    assert_true(vn_xml_parser_release(p));
    assert_int_equal(feed_str(p, "</stream:stream>"), 0);
    assert_int_equal(ev.closes, 1);
    assert_int_equal(ev.opens, 1);
    assert_int_equal(ev.errors, 0);
    done(&ev);
}

static void test_reset_then_new_stream(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 65536, 16);

    /* Stop in the middle of a stanza, as after <proceed/> with bytes behind it. */
    ev.stop_after = 1;
    assert_int_equal(feed_str(p, client_header), 0);
    assert_int_equal(feed_str(p, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message>"),
                     -1);
    assert_int_equal(ev.stanza_count, 1);
    assert_true(vn_stanza_is(ev.stanzas[0], "starttls", VN_NS_TLS));

    vn_xml_parser_reset(p);
    events_clear(&ev);
    memset(&ev, 0, sizeof ev);
    ev.parser = p;
    assert_int_equal(feed_str(p, client_header), 0);
    assert_int_equal(feed_str(p, client_stanzas), 0);
    assert_int_equal(feed_str(p, "</stream:stream>"), 0);
    assert_client_stream(&ev);

    /* Reset after an error as well. */
    vn_xml_parser_reset(p);
    events_clear(&ev);
    memset(&ev, 0, sizeof ev);
    ev.parser = p;
    assert_int_equal(feed_str(p, "<!DOCTYPE x>"), -1);
    assert_int_equal(ev.errors, 1);
    vn_xml_parser_reset(p);
    assert_int_equal(feed_str(p, client_header), 0);
    assert_int_equal(ev.opens, 1);
    assert_int_equal(ev.errors, 1);
    done(&ev);
}

/* vn_stanza_parse reads back what the serializer wrote for storage. */
static void test_stanza_parse_round_trip(void **state)
{
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "to", "bob@example.org");
    vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, "a < b & 'c'");
    vn_stanza_add_child(msg, "delay", "urn:xmpp:delay");
    size_t len;
    char *xml = vn_stanza_serialize(msg, VN_NS_CLIENT, &len);

    vn_stanza *back = vn_stanza_parse(xml, len);
    assert_non_null(back);
    assert_true(vn_stanza_is(back, "message", VN_NS_CLIENT));
    assert_string_equal(vn_stanza_attr(back, "to"), "bob@example.org");
    assert_string_equal(vn_stanza_child_text(back, "body", VN_NS_CLIENT), "a < b & 'c'");
    assert_non_null(vn_stanza_child(back, "delay", "urn:xmpp:delay"));

    vn_stanza *small = vn_stanza_parse("<x xmlns='a'/>", 14); /* shorter than the wrapper */
    assert_non_null(small);
    assert_true(vn_stanza_is(small, "x", "a"));
    vn_stanza_free(small);
    assert_null(vn_stanza_parse("<message>", 9));
    assert_null(vn_stanza_parse("<a/><b/>", 8));
    assert_null(vn_stanza_parse("<!-- x --><a/>", 14));
    vn_stanza_free(back);
    vn_stanza_free(msg);
    free(xml);
}

/* Found by fuzz_xml_parser: an element in the xml namespace cannot be
 * serialized back, so the parser refuses it. */
static void test_xml_namespace_element_refused(void **state)
{
    events ev;
    vn_xml_parser *p = parser_for(&ev, 65536, 32);
    assert_int_equal(feed_str(p, "<stream:stream xmlns='jabber:client' "
                                 "xmlns:stream='http://etherx.jabber.org/streams'>"
                                 "<xml:starttls xmlns='urn:x'/>"),
                     -1);
    assert_int_equal(ev.errors, 1);
    assert_string_equal(ev.condition, "bad-format");
    assert_int_equal(ev.stanza_count, 0);
    done(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_client_stream),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_mixed_namespaces_and_lang),
        cmocka_unit_test(test_whitespace_keepalive),
        cmocka_unit_test(test_billion_laughs_doctype),
        cmocka_unit_test(test_processing_instruction),
        cmocka_unit_test(test_comment),
        cmocka_unit_test(test_undeclared_entity),
        cmocka_unit_test(test_other_encoding),
        cmocka_unit_test(test_utf8_declaration_accepted),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_huge_text_refused_while_streaming),
        cmocka_unit_test(test_huge_start_tag_refused),
        cmocka_unit_test(test_many_small_stanzas_in_one_chunk),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_stop_inside_callback),
        cmocka_unit_test(test_pause_and_resume),
        cmocka_unit_test(test_release_between_stanzas),
        cmocka_unit_test(test_reset_then_new_stream),
        cmocka_unit_test(test_stanza_parse_round_trip),
        cmocka_unit_test(test_xml_namespace_element_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
