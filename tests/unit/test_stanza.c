/*
 * test_stanza.c - the element tree: building, lookup, mutation, copying,
 * text, serialization (namespaces, escaping) and the reply helpers.
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

/* Serializes st for stream_ns, checks the output and its reported length. */
static void assert_serializes(const vn_stanza *st, const char *stream_ns, const char *expected)
{
    size_t len = 0;
    char *xml = vn_stanza_serialize(st, stream_ns, &len);
    assert_string_equal(xml, expected);
    assert_int_equal(len, strlen(expected));
    free(xml);
}

static void test_build_and_lookup(void **state)
{
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza *body = vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, "hi");
    vn_stanza *active = vn_stanza_add_child(msg, "active", "http://jabber.org/protocol/chatstates");
    vn_stanza_add_text(msg, "between", 7);
    vn_stanza *thread = vn_stanza_add_text_child(msg, "thread", VN_NS_CLIENT, NULL);

    assert_string_equal(vn_stanza_name(msg), "message");
    assert_string_equal(vn_stanza_ns(msg), VN_NS_CLIENT);
    assert_null(vn_stanza_parent(msg));
    assert_ptr_equal(vn_stanza_parent(body), msg);

    assert_true(vn_stanza_is(msg, "message", VN_NS_CLIENT));
    assert_true(vn_stanza_is(msg, NULL, VN_NS_CLIENT));
    assert_true(vn_stanza_is(msg, "message", NULL));
    assert_false(vn_stanza_is(msg, "iq", NULL));
    assert_false(vn_stanza_is(msg, NULL, VN_NS_SERVER));

    vn_stanza *no_ns = vn_stanza_new("x", NULL);
    assert_null(vn_stanza_ns(no_ns));
    assert_true(vn_stanza_is(no_ns, "x", NULL));
    assert_false(vn_stanza_is(no_ns, "x", VN_NS_CLIENT));
    vn_stanza_free(no_ns);

    assert_ptr_equal(vn_stanza_child(msg, "body", VN_NS_CLIENT), body);
    assert_ptr_equal(vn_stanza_child(msg, NULL, "http://jabber.org/protocol/chatstates"), active);
    assert_ptr_equal(vn_stanza_child(msg, "thread", NULL), thread);
    assert_null(vn_stanza_child(msg, "body", VN_NS_SERVER));
    assert_null(vn_stanza_child(msg, "subject", NULL));

    /* Element iteration skips the text node between active and thread. */
    assert_int_equal(vn_stanza_element_count(msg), 3);
    assert_ptr_equal(vn_stanza_first_element(msg), body);
    assert_ptr_equal(vn_stanza_next_element(body), active);
    assert_ptr_equal(vn_stanza_next_element(active), thread);
    assert_null(vn_stanza_next_element(thread));
    assert_null(vn_stanza_first_element(body));
    assert_int_equal(vn_stanza_element_count(body), 0);

    assert_string_equal(vn_stanza_child_text(msg, "body", NULL), "hi");
    assert_string_equal(vn_stanza_child_text(msg, "thread", NULL), "");
    assert_null(vn_stanza_child_text(msg, "subject", NULL));
    vn_stanza_free(msg);
}

static void test_attributes(void **state)
{
    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    const char *name, *value;

    assert_int_equal(vn_stanza_attr_count(iq), 0);
    assert_false(vn_stanza_attr_at(iq, 0, &name, &value));
    vn_stanza_set_attr(iq, "type", "get");
    vn_stanza_set_attr(iq, "id", "a1");
    vn_stanza_set_attr(iq, "to", "example.org");
    assert_int_equal(vn_stanza_attr_count(iq), 3);
    assert_string_equal(vn_stanza_attr(iq, "id"), "a1");
    assert_null(vn_stanza_attr(iq, "from"));

    /* Replacing keeps the position; the new value may come from the old. */
    vn_stanza_set_attr(iq, "type", "set");
    vn_stanza_set_attr(iq, "id", vn_stanza_attr(iq, "id"));
    assert_true(vn_stanza_attr_at(iq, 0, &name, &value));
    assert_string_equal(name, "type");
    assert_string_equal(value, "set");
    assert_true(vn_stanza_attr_at(iq, 1, &name, &value));
    assert_string_equal(name, "id");
    assert_string_equal(value, "a1");

    /* Removing closes the gap in document order. */
    vn_stanza_set_attr(iq, "id", NULL);
    vn_stanza_set_attr(iq, "absent", NULL);
    assert_int_equal(vn_stanza_attr_count(iq), 2);
    assert_null(vn_stanza_attr(iq, "id"));
    assert_true(vn_stanza_attr_at(iq, 1, &name, &value));
    assert_string_equal(name, "to");
    assert_string_equal(value, "example.org");
    assert_false(vn_stanza_attr_at(iq, 2, &name, &value));

    for (int i = 0; i < 40; i++) {
        char attr_name[16];
        snprintf(attr_name, sizeof attr_name, "a%d", i);
        vn_stanza_set_attr(iq, attr_name, attr_name);
    }
    assert_int_equal(vn_stanza_attr_count(iq), 42);
    assert_string_equal(vn_stanza_attr(iq, "a39"), "a39");
    vn_stanza_free(iq);
}

static void test_detach_remove_append(void **state)
{
    vn_stanza *root = vn_stanza_new("r", "urn:t");
    vn_stanza *a = vn_stanza_add_child(root, "a", "urn:t");
    vn_stanza *b = vn_stanza_add_child(root, "b", "urn:t");
    vn_stanza *c = vn_stanza_add_child(root, "c", "urn:t");

    /* Detaching the last child must let appending continue correctly. */
    vn_stanza_detach(c);
    assert_null(vn_stanza_parent(c));
    assert_null(vn_stanza_next_element(c));
    assert_null(vn_stanza_next_element(b));
    assert_int_equal(vn_stanza_element_count(root), 2);
    vn_stanza_append(root, c);
    assert_ptr_equal(vn_stanza_next_element(b), c);
    assert_ptr_equal(vn_stanza_parent(c), root);

    vn_stanza_detach(a);
    assert_ptr_equal(vn_stanza_first_element(root), b);
    vn_stanza_remove(b);
    assert_ptr_equal(vn_stanza_first_element(root), c);
    assert_int_equal(vn_stanza_element_count(root), 1);

    /* Appending an attached element moves it. */
    vn_stanza_append(a, c);
    assert_int_equal(vn_stanza_element_count(root), 0);
    assert_ptr_equal(vn_stanza_first_element(a), c);
    assert_serializes(root, "urn:t", "<r/>");
    assert_serializes(a, "urn:t", "<a><c/></a>");

    /* Freeing an attached child detaches it first. */
    vn_stanza_free(c);
    assert_int_equal(vn_stanza_element_count(a), 0);
    vn_stanza_free(a);
    vn_stanza_free(root);
    vn_stanza_free(NULL);
}

static void test_copy_is_deep_and_detached(void **state)
{
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "to", "a@b");
    vn_stanza *body = vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, "one");
    vn_stanza_add_text(msg, "tail", 4);

    vn_stanza *dup = vn_stanza_copy(body);
    assert_null(vn_stanza_parent(dup));
    vn_stanza_free(dup);

    dup = vn_stanza_copy(msg);
    vn_stanza_set_attr(msg, "to", "c@d");
    vn_stanza_add_text(body, " two", 4);
    assert_string_equal(vn_stanza_attr(dup, "to"), "a@b");
    vn_stanza *dup_body = vn_stanza_child(dup, "body", VN_NS_CLIENT);
    assert_non_null(dup_body);
    assert_ptr_not_equal(dup_body, body);
    assert_ptr_equal(vn_stanza_parent(dup_body), dup);
    assert_string_equal(vn_stanza_text(dup_body), "one");
    assert_string_equal(vn_stanza_text(dup), "tail");
    assert_serializes(dup, VN_NS_CLIENT, "<message to='a@b'><body>one</body>tail</message>");
    vn_stanza_free(msg);
    vn_stanza_free(dup);
}

static void test_text_concatenation_and_cache(void **state)
{
    vn_stanza *p = vn_stanza_new("p", NULL);

    assert_string_equal(vn_stanza_text(p), "");
    vn_stanza_add_text(p, "ab", 2);
    vn_stanza_add_text(p, "", 0);
    vn_stanza_add_text(p, "cd", 2); /* merges into the same text node */
    assert_string_equal(vn_stanza_text(p), "abcd");
    vn_stanza_add_child(p, "br", NULL);
    vn_stanza_add_text(p, "ef", 2);

    const char *joined = vn_stanza_text(p);
    assert_string_equal(joined, "abcdef");
    assert_ptr_equal(vn_stanza_text(p), joined); /* cached */

    vn_stanza_add_text(p, "g", 1); /* invalidates the cache */
    assert_string_equal(vn_stanza_text(p), "abcdefg");
    assert_serializes(p, NULL, "<p>abcd<br/>efg</p>");
    vn_stanza_free(p);
}

static void test_serialize_nested_namespaces(void **state)
{
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "to", "juliet@example.com");
    vn_stanza_set_attr(msg, "xml:lang", "en");
    vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, "hello");
    vn_stanza *sent = vn_stanza_add_child(msg, "sent", "urn:xmpp:carbons:2");
    vn_stanza *fwd = vn_stanza_add_child(sent, "forwarded", "urn:xmpp:forward:0");
    vn_stanza *inner = vn_stanza_add_child(fwd, "message", VN_NS_CLIENT);
    vn_stanza_add_text_child(inner, "body", VN_NS_CLIENT, "inner");
    vn_stanza_add_child(inner, "x", NULL);

    const char *expected = "<message to='juliet@example.com' xml:lang='en'><body>hello</body>"
                           "<sent xmlns='urn:xmpp:carbons:2'>"
                           "<forwarded xmlns='urn:xmpp:forward:0'>"
                           "<message xmlns='jabber:client'><body>inner</body><x xmlns=''/>"
                           "</message></forwarded></sent></message>";
    /* A stanza takes the stream's namespace whatever the stream's is. */
    assert_serializes(msg, VN_NS_CLIENT, expected);
    assert_serializes(msg, VN_NS_SERVER, expected);
    assert_serializes(msg, NULL, expected);

    /* Below the top level, namespaces are always declared where they change. */
    assert_serializes(inner, "urn:other", "<message><body>inner</body><x xmlns=''/></message>");
    assert_serializes(fwd, VN_NS_CLIENT,
                      "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'>"
                      "<body>inner</body><x xmlns=''/></message></forwarded>");
    assert_serializes(fwd, "urn:xmpp:forward:0",
                      "<forwarded><message xmlns='jabber:client'>"
                      "<body>inner</body><x xmlns=''/></message></forwarded>");
    vn_stanza_free(msg);
}

static void test_serialize_streams_prefix(void **state)
{
    vn_stanza *features = vn_stanza_new("features", VN_NS_STREAMS);
    vn_stanza *starttls = vn_stanza_add_child(features, "starttls", VN_NS_TLS);
    vn_stanza_add_child(starttls, "required", VN_NS_TLS);
    vn_stanza *mechs = vn_stanza_add_child(features, "mechanisms", VN_NS_SASL);
    vn_stanza_add_text_child(mechs, "mechanism", VN_NS_SASL, "SCRAM-SHA-256");
    assert_serializes(features, VN_NS_CLIENT,
                      "<stream:features>"
                      "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                      "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                      "<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>");
    vn_stanza_free(features);

    vn_stanza *error = vn_stanza_new("error", VN_NS_STREAMS);
    vn_stanza_add_child(error, "host-unknown", VN_NS_STREAM_ERRORS);
    assert_serializes(error, VN_NS_SERVER,
                      "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                      "</stream:error>");
    vn_stanza_free(error);

    /* A non-stanza top-level element in the stream's namespace needs no xmlns. */
    vn_stanza *result = vn_stanza_new("result", "jabber:server:dialback");
    assert_serializes(result, "jabber:server:dialback", "<result/>");
    assert_serializes(result, VN_NS_SERVER, "<result xmlns='jabber:server:dialback'/>");
    vn_stanza_free(result);
}

static void test_serialize_namespaced_attributes(void **state)
{
    vn_stanza *x = vn_stanza_new("x", "urn:a");
    vn_stanza_set_attr(x, "urn:b|foo", "1");
    vn_stanza_set_attr(x, "plain", "2");
    vn_stanza_set_attr(x, "urn:c|bar", "3");
    vn_stanza_set_attr(x, "xmlns:evil", "urn:ignored");
    vn_stanza_set_attr(x, "xml:lang", "de");
    assert_serializes(x, NULL,
                      "<x xmlns='urn:a' xmlns:n0='urn:b' n0:foo='1' plain='2'"
                      " xmlns:n1='urn:c' n1:bar='3' xml:lang='de'/>");
    vn_stanza_free(x);
}

static void test_escaping(void **state)
{
    vn_stanza *body = vn_stanza_new("body", "urn:t");
    vn_stanza_set_attr(body, "a", "<&>'\"");
    const char text[] = "1 < 2 & 3 > 2 'q' \"d\"";
    vn_stanza_add_text(body, text, sizeof text - 1);
    assert_serializes(body, "urn:t",
                      "<body a='&lt;&amp;&gt;&apos;&quot;'>"
                      "1 &lt; 2 &amp; 3 &gt; 2 &apos;q&apos; &quot;d&quot;</body>");
    vn_stanza_free(body);

    /* C0 controls are dropped; tab and LF survive; CR becomes a reference,
     * and so do tab and LF inside attribute values. */
    body = vn_stanza_new("body", "urn:t");
    vn_stanza_set_attr(body, "a", "x\ty\nz\r\x01!");
    const char controls[] = "\x00\x01\x08\x0b\x0c\x0e\x1f\x7f"
                            "a\tb\nc\rd\x1b[0m";
    vn_stanza_add_text(body, controls, sizeof controls - 1);
    assert_serializes(body, "urn:t",
                      "<body a='x&#9;y&#10;z&#13;!'>\x7f"
                      "a\tb\nc&#13;d[0m</body>");
    vn_stanza_free(body);
}

static void test_error_reply_message(void **state)
{
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "from", "romeo@example.net/orchard");
    vn_stanza_set_attr(msg, "to", "juliet@example.com");
    vn_stanza_set_attr(msg, "id", "m1");
    vn_stanza_set_attr(msg, "type", "chat");
    vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, "hi");

    vn_stanza *reply =
        vn_stanza_error_reply(msg, "cancel", "service-unavailable", "nobody home & away");
    assert_non_null(reply);
    assert_string_equal(vn_stanza_attr(reply, "from"), "juliet@example.com");
    assert_string_equal(vn_stanza_attr(reply, "to"), "romeo@example.net/orchard");
    assert_string_equal(vn_stanza_attr(reply, "id"), "m1");
    assert_string_equal(vn_stanza_attr(reply, "type"), "error");
    assert_serializes(reply, VN_NS_CLIENT,
                      "<message from='juliet@example.com' to='romeo@example.net/orchard' id='m1'"
                      " type='error'><body>hi</body><error type='cancel'>"
                      "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                      "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>nobody home "
                      "&amp; away"
                      "</text></error></message>");
    /* The original is untouched. */
    assert_string_equal(vn_stanza_attr(msg, "type"), "chat");
    assert_int_equal(vn_stanza_element_count(msg), 1);

    /* Never answer an error. */
    assert_null(vn_stanza_error_reply(reply, "cancel", "service-unavailable", NULL));
    vn_stanza_free(reply);
    vn_stanza_free(msg);
}

static void test_error_reply_iq(void **state)
{
    vn_stanza *iq = vn_stanza_new("iq", VN_NS_SERVER);
    vn_stanza_set_attr(iq, "type", "get");
    vn_stanza_set_attr(iq, "id", "q7");
    vn_stanza_set_attr(iq, "from", "a.example");
    vn_stanza_add_child(iq, "query", "jabber:iq:version");

    vn_stanza *reply = vn_stanza_error_reply(iq, "cancel", "feature-not-implemented", NULL);
    assert_non_null(reply);
    assert_string_equal(vn_stanza_ns(reply), VN_NS_SERVER);
    assert_null(vn_stanza_attr(reply, "from"));
    assert_string_equal(vn_stanza_attr(reply, "to"), "a.example");
    vn_stanza *error = vn_stanza_child(reply, "error", VN_NS_SERVER);
    assert_non_null(error);
    assert_non_null(vn_stanza_child(error, "feature-not-implemented", VN_NS_STANZA_ERRORS));
    assert_null(vn_stanza_child(error, "text", NULL));
    assert_serializes(reply, VN_NS_SERVER,
                      "<iq type='error' id='q7' to='a.example'>"
                      "<query xmlns='jabber:iq:version'/><error type='cancel'>"
                      "<feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                      "</error></iq>");
    vn_stanza_free(reply);
    vn_stanza_free(iq);
}

static void test_iq_result(void **state)
{
    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    vn_stanza_set_attr(iq, "from", "romeo@example.net/orchard");
    vn_stanza_set_attr(iq, "to", "example.net");
    vn_stanza_set_attr(iq, "type", "get");
    vn_stanza_set_attr(iq, "id", "p1");
    vn_stanza_add_child(iq, "ping", "urn:xmpp:ping");

    vn_stanza *result = vn_stanza_iq_result(iq);
    assert_int_equal(vn_stanza_element_count(result), 0);
    assert_serializes(result, VN_NS_CLIENT,
                      "<iq type='result' id='p1' from='example.net'"
                      " to='romeo@example.net/orchard'/>");
    vn_stanza_free(result);
    vn_stanza_free(iq);
}

static void test_serialize_to_appends(void **state)
{
    vn_buf out;
    vn_stanza *a = vn_stanza_new("presence", VN_NS_CLIENT);

    vn_buf_init(&out);
    vn_buf_append_str(&out, "X");
    vn_stanza_serialize_to(a, VN_NS_CLIENT, &out);
    vn_stanza_serialize_to(a, VN_NS_CLIENT, &out);
    assert_string_equal(out.data, "X<presence/><presence/>");
    assert_int_equal(out.len, strlen("X<presence/><presence/>"));
    vn_buf_free(&out);
    vn_stanza_free(a);

    assert_true(vn_stanza_is_stanza_ns(VN_NS_CLIENT));
    assert_true(vn_stanza_is_stanza_ns(VN_NS_SERVER));
    assert_true(vn_stanza_is_stanza_ns(VN_NS_COMPONENT));
    assert_false(vn_stanza_is_stanza_ns(VN_NS_STREAMS));
    assert_false(vn_stanza_is_stanza_ns(NULL));
}

/* A shared stanza serializes exactly like a fresh one for every 'to', and
 * any other change is seen (cache rebuilt, change reported). */
static void test_shared_serialization(void **state)
{
    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "from", "room@conference.example/teacher");
    vn_stanza_set_attr(msg, "type", "groupchat");
    vn_stanza *body = vn_stanza_add_text_child(msg, "body", VN_NS_CLIENT, "a & b");
    vn_stanza_share_serialization(msg);
    assert_false(vn_stanza_shared_changed(msg));

    static const char *const recipients[] = {"p1@example/phone", "p2@example/o'neil", NULL};
    for (int round = 0; round < 2; round++) {
        for (int i = 0; recipients[i]; i++) {
            vn_stanza_set_attr(msg, "to", recipients[i]);
            /* Expected: a fresh serialization with 'to' first. */
            vn_stanza *fresh = vn_stanza_copy(msg); /* no cache */
            vn_stanza_set_attr(fresh, "to", NULL);
            char *rest = vn_stanza_serialize(fresh, VN_NS_CLIENT, NULL);
            vn_buf want;
            vn_buf_init(&want);
            vn_buf_append_str(&want, "<message to='");
            vn_buf_append_xml_escaped(&want, recipients[i], strlen(recipients[i]));
            vn_buf_append_str(&want, "'");
            vn_buf_append_str(&want, rest + strlen("<message"));
            char *got = vn_stanza_serialize(msg, VN_NS_CLIENT, NULL);
            assert_string_equal(got, want.data);
            vn_buf_free(&want);
            free(rest);
            free(got);
            vn_stanza_free(fresh);
        }
        assert_false(vn_stanza_shared_changed(msg)); /* only 'to' changed */
        vn_stanza_add_text(body, " & c", 4);         /* a change deep inside */
        assert_true(vn_stanza_shared_changed(msg));
        assert_false(vn_stanza_shared_changed(msg)); /* reported once */
    }
    /* Written for another stream namespace: rebuilt, still right. */
    char *server = vn_stanza_serialize(msg, VN_NS_SERVER, NULL);
    assert_non_null(strstr(server, "a &amp; b &amp; c &amp; c"));
    assert_null(strstr(server, "xmlns"));
    free(server);
    vn_stanza_free(msg);
}

/* Lookups on a missing element answer "nothing" instead of crashing. */
static void test_lookups_accept_null(void **state)
{
    vn_stanza *iq = vn_stanza_new("iq", VN_NS_CLIENT);
    vn_stanza_add_child(iq, "quer", "jabber:iq:roster");
    const vn_stanza *query = vn_stanza_child(iq, "query", "jabber:iq:roster");
    assert_null(query);
    assert_null(vn_stanza_attr(query, "ver"));
    assert_null(vn_stanza_child(query, "item", NULL));
    assert_null(vn_stanza_child_text(query, "item", NULL));
    assert_null(vn_stanza_first_element(query));
    assert_int_equal(vn_stanza_element_count(query), 0);
    assert_false(vn_stanza_is(query, NULL, NULL));
    vn_stanza_free(iq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_lookup),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_detach_remove_append),
        cmocka_unit_test(test_copy_is_deep_and_detached),
        cmocka_unit_test(test_text_concatenation_and_cache),
        cmocka_unit_test(test_serialize_nested_namespaces),
        cmocka_unit_test(test_serialize_streams_prefix),
        cmocka_unit_test(test_serialize_namespaced_attributes),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_error_reply_message),
        cmocka_unit_test(test_error_reply_iq),
        cmocka_unit_test(test_iq_result),
        cmocka_unit_test(test_serialize_to_appends),
        cmocka_unit_test(test_shared_serialization),
        cmocka_unit_test(test_lookups_accept_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
