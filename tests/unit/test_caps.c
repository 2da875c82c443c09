/*
 * test_caps.c - the XEP-0115 verification string and sha-1 ver of
 * modules/pep/pep_caps_ver.c: the examples of XEP-0115 §5.2 and §5.3, the
 * disco#info answers of real clients with the ver they announced
 * (Conversations and Gajim, from the public capsdb collection, CC0), and
 * the answers §5.4 says must not be cached.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pep.h"

static vn_stanza *parse(const char *xml)
{
    vn_stanza *query = vn_stanza_parse(xml, strlen(xml));
    assert_non_null(query);
    return query;
}

static void assert_ver(const char *xml, const char *expected)
{
    vn_stanza *query = parse(xml);
    char ver[PEP_CAPS_SHA1_VER_SIZE];

    assert_true(pep_caps_sha1_ver(query, ver));
    assert_string_equal(ver, expected);
    vn_stanza_free(query);
}

static void assert_refused(const char *xml)
{
    vn_stanza *query = parse(xml);
    char ver[PEP_CAPS_SHA1_VER_SIZE];

    assert_null(pep_caps_ver_string(query));
    assert_false(pep_caps_sha1_ver(query, ver));
    vn_stanza_free(query);
}

#define DISCO "<query xmlns='http://jabber.org/protocol/disco#info'>"

/* XEP-0115 §5.2, in a different order than sorted. */
static const char simple[] = DISCO "<feature var='http://jabber.org/protocol/muc'/>"
                                   "<identity category='client' name='Exodus 0.9.1' type='pc'/>"
                                   "<feature var='http://jabber.org/protocol/disco#items'/>"
                                   "<feature var='http://jabber.org/protocol/caps'/>"
                                   "<feature var='http://jabber.org/protocol/disco#info'/></query>";

static void test_xep0115_simple(void **state)
{
    vn_stanza *query = parse(simple);
    char *s = pep_caps_ver_string(query);

    assert_string_equal(s, "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<"
                           "http://jabber.org/protocol/disco#info<"
                           "http://jabber.org/protocol/disco#items<"
                           "http://jabber.org/protocol/muc<");
    free(s);
    vn_stanza_free(query);
    assert_ver(simple, "QgayPKawpkPSDYmwT/WM94uAlu0=");
}

/* XEP-0115 §5.3: two identities with xml:lang, a form. */
static const char complex_example[] =
    DISCO "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
          "<identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>"
          "<feature var='http://jabber.org/protocol/caps'/>"
          "<feature var='http://jabber.org/protocol/disco#info'/>"
          "<feature var='http://jabber.org/protocol/disco#items'/>"
          "<feature var='http://jabber.org/protocol/muc'/>"
          "<x xmlns='jabber:x:data' type='result'>"
          "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value>"
          "</field>"
          "<field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value>"
          "</field>"
          "<field var='os'><value>Mac</value></field>"
          "<field var='os_version'><value>10.5.1</value></field>"
          "<field var='software'><value>Psi</value></field>"
          "<field var='software_version'><value>0.11</value></field>"
          "</x></query>";

static void test_xep0115_complex(void **state)
{
    vn_stanza *query = parse(complex_example);
    char *s = pep_caps_ver_string(query);

    assert_string_equal(s, "client/pc/el/\xce\xa8 0.11<client/pc/en/Psi 0.11<"
                           "http://jabber.org/protocol/caps<"
                           "http://jabber.org/protocol/disco#info<"
                           "http://jabber.org/protocol/disco#items<"
                           "http://jabber.org/protocol/muc<"
                           "urn:xmpp:dataforms:softwareinfo<"
                           "ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<"
                           "software<Psi<software_version<0.11<");
    free(s);
    vn_stanza_free(query);
    assert_ver(complex_example, "q07IKJEyjvHSyhy//CH0CxmKi8w=");
}

/* Sorting after '<' is appended put "muc#admin<" before "muc<" and
 * "activity+notify<" before "activity<": every Gajim caps failed so. */
static void test_sort_before_separator(void **state)
{
    vn_stanza *query = parse(DISCO "<feature var='vcard-temp:x:update'/>"
                                   "<feature var='vcard-temp'/></query>");
    char *s = pep_caps_ver_string(query);

    assert_string_equal(s, "vcard-temp<vcard-temp:x:update<");
    free(s);
    vn_stanza_free(query);
}

/* Conversations 1.8.0-beta, node http://conversations.im. */
static void test_conversations(void **state)
{
    assert_ver(DISCO "<identity category='client' name='Conversations 1.8.0-beta' type='phone'/>"
                     "<feature var='eu.siacs.conversations.axolotl.devicelist+notify'/>"
                     "<feature var='http://jabber.org/protocol/caps'/>"
                     "<feature var='http://jabber.org/protocol/chatstates'/>"
                     "<feature var='http://jabber.org/protocol/disco#info'/>"
                     "<feature var='http://jabber.org/protocol/muc'/>"
                     "<feature var='http://jabber.org/protocol/nick+notify'/>"
                     "<feature var='jabber:iq:version'/><feature var='jabber:x:conference'/>"
                     "<feature var='urn:xmpp:avatar:metadata+notify'/>"
                     "<feature var='urn:xmpp:chat-markers:0'/><feature var='urn:xmpp:jingle:1'/>"
                     "<feature var='urn:xmpp:jingle:apps:file-transfer:3'/>"
                     "<feature var='urn:xmpp:jingle:transports:ibb:1'/>"
                     "<feature var='urn:xmpp:jingle:transports:s5b:1'/>"
                     "<feature var='urn:xmpp:ping'/><feature var='urn:xmpp:receipts'/></query>",
               "ISj/bKGb7ln8UqQ0vGUhjKYCvhM=");
}

/* Gajim, node http://gajim.org. */
static void test_gajim(void **state)
{
    assert_ver(DISCO "<identity category='client' name='Gajim' type='pc'/>"
                     "<feature var='http://jabber.org/protocol/activity'/>"
                     "<feature var='http://jabber.org/protocol/activity+notify'/>"
                     "<feature var='http://jabber.org/protocol/bytestreams'/>"
                     "<feature var='http://jabber.org/protocol/chatstates'/>"
                     "<feature var='http://jabber.org/protocol/commands'/>"
                     "<feature var='http://jabber.org/protocol/disco#info'/>"
                     "<feature var='http://jabber.org/protocol/geoloc+notify'/>"
                     "<feature var='http://jabber.org/protocol/mood'/>"
                     "<feature var='http://jabber.org/protocol/mood+notify'/>"
                     "<feature var='http://jabber.org/protocol/muc'/>"
                     "<feature var='http://jabber.org/protocol/muc#admin'/>"
                     "<feature var='http://jabber.org/protocol/muc#owner'/>"
                     "<feature var='http://jabber.org/protocol/muc#roomconfig'/>"
                     "<feature var='http://jabber.org/protocol/muc#user'/>"
                     "<feature var='http://jabber.org/protocol/nick'/>"
                     "<feature var='http://jabber.org/protocol/nick+notify'/>"
                     "<feature var='http://jabber.org/protocol/rosterx'/>"
                     "<feature var='http://jabber.org/protocol/si'/>"
                     "<feature var='http://jabber.org/protocol/si/profile/file-transfer'/>"
                     "<feature var='http://jabber.org/protocol/tune'/>"
                     "<feature var='http://jabber.org/protocol/tune+notify'/>"
                     "<feature var='http://www.xmpp.org/extensions/xep-0116.html#ns'/>"
                     "<feature var='ipv6'/><feature var='jabber:iq:gateway'/>"
                     "<feature var='jabber:iq:last'/><feature var='jabber:iq:privacy'/>"
                     "<feature var='jabber:iq:private'/><feature var='jabber:iq:register'/>"
                     "<feature var='jabber:iq:version'/><feature var='jabber:x:data'/>"
                     "<feature var='jabber:x:encrypted'/><feature var='msglog'/>"
                     "<feature var='sslc2s'/><feature var='stringprep'/>"
                     "<feature var='urn:xmpp:jingle:1'/><feature var='urn:xmpp:jingle:apps:rtp:1'/>"
                     "<feature var='urn:xmpp:jingle:apps:rtp:audio'/>"
                     "<feature var='urn:xmpp:jingle:apps:rtp:video'/>"
                     "<feature var='urn:xmpp:jingle:transports:ice-udp:1'/>"
                     "<feature var='urn:xmpp:ping'/><feature var='urn:xmpp:receipts'/>"
                     "<feature var='urn:xmpp:ssn'/><feature var='urn:xmpp:time'/></query>",
               "zTcejWPZTB2nfaiquz6lgGoHARY=");
}

/* §5.4 3.1-3.4: such answers are not cached by ver. */
static void test_refused_answers(void **state)
{
    assert_refused(DISCO "<identity category='client' type='pc' name='x'/>"
                         "<identity category='client' type='pc' name='x'/></query>");
    assert_refused(DISCO "<feature var='urn:xmpp:ping'/><feature var='urn:xmpp:ping'/></query>");
    assert_refused(DISCO "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' "
                         "type='hidden'><value>urn:a</value></field></x>"
                         "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' "
                         "type='hidden'><value>urn:a</value></field></x></query>");
    assert_refused(DISCO "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' "
                         "type='hidden'><value>urn:a</value><value>urn:b</value></field>"
                         "</x></query>");
}

/* §5.4 3.5: a form whose FORM_TYPE is not hidden is left out; so is one
 * without FORM_TYPE. */
static void test_forms_left_out(void **state)
{
    static const char without[] = DISCO "<identity category='client' type='pc' name='x'/></query>";
    vn_stanza *plain = parse(without);
    char *expected = pep_caps_ver_string(plain);
    vn_stanza *forms =
        parse(DISCO "<identity category='client' type='pc' name='x'/>"
                    "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'>"
                    "<value>urn:a</value></field><field var='f'><value>1</value></field></x>"
                    "<x xmlns='jabber:x:data' type='result'><field var='f'><value>2</value>"
                    "</field></x></query>");
    char *s = pep_caps_ver_string(forms);

    assert_string_equal(expected, "client/pc//x<");
    assert_string_equal(s, expected);
    free(s);
    free(expected);
    vn_stanza_free(forms);
    vn_stanza_free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xep0115_simple),
        cmocka_unit_test(test_xep0115_complex),
        cmocka_unit_test(test_sort_before_separator),
        cmocka_unit_test(test_conversations),
        cmocka_unit_test(test_gajim),
        cmocka_unit_test(test_refused_answers),
        cmocka_unit_test(test_forms_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
