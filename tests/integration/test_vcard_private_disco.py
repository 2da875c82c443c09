#!/usr/bin/env python3
"""test_vcard_private_disco.py - profile data and what the server says of itself.

vcard-temp (XEP-0054) through slixmpp's own plugin, avatar hashes in
presence (XEP-0153) seen by a second resource of the same account, private
XML storage (XEP-0049), entity capabilities in the stream features
(XEP-0115, the ver recomputed here from the disco#info result), the
contact-address form (XEP-0157) from the config, and disco#info for
accounts.
"""

import asyncio
import base64
import hashlib
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0054.stanza import VCardTemp
from slixmpp.xmlstream import ElementBase

import harness

D = harness.DOMAIN
ALICE = 'alice@' + D
BOB = 'bob@' + D
CAROL = 'carol@' + D
PASSWORD = 'secret-password'
VCARD_MAX_SIZE = 4096
PRIVATE_MAX_SIZE = 2048
ABUSE = ['mailto:abuse@example.org', 'xmpp:abuse@localhost']
SUPPORT = ['https://example.org/support']
CAPS_NODE = 'https://vestnik.example/'

NS_VCARD = 'vcard-temp'
NS_VCARD_UPDATE = 'vcard-temp:x:update'
NS_PRIVATE = 'jabber:iq:private'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_CAPS = 'http://jabber.org/protocol/caps'
NS_DATA = 'jabber:x:data'
XML_LANG = '{http://www.w3.org/XML/1998/namespace}lang'
IQ = harness.qname(harness.NS_CLIENT, 'iq')
PRESENCE = harness.qname(harness.NS_CLIENT, 'presence')


class Server(harness.Server):
    """The harness's server with this file's modules and options. The
    harness's config ends with `disco:`, so the first lines here are its
    options."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('    abuse_addresses: "%s"\n' % ' , '.join(ABUSE + ['']) +
                    '    support_addresses: %s\n' % SUPPORT[0] +
                    '  roster:\n'
                    '  presence:\n'
                    '  vcard:\n'
                    '    max_size: %d\n'
                    '  private:\n'
                    '    max_size: %d\n' % (VCARD_MAX_SIZE, PRIVATE_MAX_SIZE))


server = Server()


def setup():
    for jid in (ALICE, BOB, CAROL):
        server.adduser(jid, PASSWORD)


async def login(jid):
    client = harness.Client(jid, PASSWORD)
    for plugin in ('xep_0054', 'xep_0049'):
        client.register_plugin(plugin)
    return await client.login(server)


def assert_error(stanza, condition, error_type):
    """From the XML: slixmpp 1.8 does not know RFC 6120's policy-violation."""
    assert stanza['type'] == 'error', stanza
    error = stanza.xml.find(harness.qname(harness.NS_CLIENT, 'error'))
    conditions = [c.tag for c in error if c.tag != '{%s}text' % harness.NS_STANZA_ERRORS]
    assert conditions == ['{%s}%s' % (harness.NS_STANZA_ERRORS, condition)], stanza
    assert error.get('type') == error_type, stanza


def iq_with(client, type_, payload, to=None):
    iq = client.make_iq(itype=type_, ito=to)
    iq.append(ET.fromstring(payload))
    return iq


# ------------------------------------------------------------------ vCard

PHOTO = bytes(range(256)) * 4  # binary, not text


def vcard_with_photo(nickname, image):
    vcard = VCardTemp()
    vcard['NICKNAME'] = nickname
    vcard['PHOTO']['TYPE'] = 'image/png'
    vcard['PHOTO']['BINVAL'] = image
    return vcard


def vcard_of(iq):
    vcard = iq.xml.find('{%s}vCard' % NS_VCARD)
    assert vcard is not None, iq
    return vcard


async def test_vcard_empty_then_set_and_read_by_owner_and_others():
    alice = await login(ALICE + '/desk')
    bob = await login(BOB + '/desk')

    # none yet: an empty vCard, not an error
    empty = vcard_of(await alice['xep_0054'].get_vcard(local=False))
    assert len(empty) == 0 and not (empty.text or '').strip(), ET.tostring(empty)

    await alice['xep_0054'].publish_vcard(vcard_with_photo('Al', PHOTO))
    for reader, jid in ((alice, None), (alice, ALICE), (bob, ALICE)):
        vcard = vcard_of(await reader['xep_0054'].get_vcard(jid, local=False))
        assert vcard.findtext('{%s}NICKNAME' % NS_VCARD) == 'Al', ET.tostring(vcard)
        binval = vcard.findtext('{%s}PHOTO/{%s}BINVAL' % (NS_VCARD, NS_VCARD))
        assert base64.b64decode(binval) == PHOTO, ET.tostring(vcard)

    # a new set replaces the whole vCard
    vcard = VCardTemp()
    vcard['FN'] = 'Alice Liddell'
    await alice['xep_0054'].publish_vcard(vcard)
    stored = vcard_of(await bob['xep_0054'].get_vcard(ALICE, local=False))
    assert stored.findtext('{%s}FN' % NS_VCARD) == 'Alice Liddell', ET.tostring(stored)
    assert stored.find('{%s}NICKNAME' % NS_VCARD) is None, ET.tostring(stored)
    await bob.close()
    await alice.close()


async def test_vcard_set_for_someone_else_is_forbidden_and_oversized_is_refused():
    alice = await login(ALICE + '/forbidden')
    bob = await login(BOB + '/forbidden')
    before = ET.tostring(vcard_of(await alice['xep_0054'].get_vcard(BOB, local=False)))

    vcard = VCardTemp()
    vcard['FN'] = 'Not Bob'
    try:
        await alice['xep_0054'].publish_vcard(vcard, jid=BOB)
        raise AssertionError('setting another account\'s vCard succeeded')
    except IqError as e:
        assert_error(e.iq, 'forbidden', 'auth')

    big = VCardTemp()
    big['DESC'] = 'x' * VCARD_MAX_SIZE
    try:
        await bob['xep_0054'].publish_vcard(big)
        raise AssertionError('an oversized vCard was accepted')
    except IqError as e:
        assert_error(e.iq, 'policy-violation', 'modify')

    after = ET.tostring(vcard_of(await alice['xep_0054'].get_vcard(BOB, local=False)))
    assert after == before, (before, after)

    # not a vCard element in the vcard-temp namespace
    reply = await bob.iq_error(iq_with(bob, 'set', "<card xmlns='%s'/>" % NS_VCARD))
    assert_error(reply, 'bad-request', 'modify')
    # nor for an account that does not exist
    reply = await bob.iq_error(iq_with(bob, 'get', "<vCard xmlns='%s'/>" % NS_VCARD,
                                       to='nobody@' + D))
    assert_error(reply, 'service-unavailable', 'cancel')
    await bob.close()
    await alice.close()


async def next_presence(queue, frm, timeout=5):
    while True:
        presence = await asyncio.wait_for(queue.get(), timeout)
        if presence['from'] == frm and presence['type'] == 'available':
            return presence


def photo_of(presence):
    update = presence.xml.find('{%s}x' % NS_VCARD_UPDATE)
    assert update is not None, 'no vcard-temp:x:update in %s' % presence
    photos = update.findall('{%s}photo' % NS_VCARD_UPDATE)
    assert len(photos) == 1, presence
    return photos[0].text or ''


async def test_avatar_hash_in_presence_seen_by_another_resource():
    image = b'\x89PNG\r\n\x1a\n' + bytes(range(200))
    carol1 = await login(CAROL + '/one')
    carol2 = await login(CAROL + '/two')
    seen = asyncio.Queue()
    carol1.add_event_handler('presence', seen.put_nowait)
    carol1.send_presence()
    await next_presence(seen, CAROL + '/one')

    # no vCard yet: the presence passes untouched
    carol2.send_presence()
    presence = await next_presence(seen, CAROL + '/two')
    assert presence.xml.find('{%s}x' % NS_VCARD_UPDATE) is None, presence

    await carol2['xep_0054'].publish_vcard(vcard_with_photo('C', image))
    carol2.send_presence(pstatus='with avatar')
    presence = await next_presence(seen, CAROL + '/two')
    assert photo_of(presence) == hashlib.sha1(image).hexdigest(), presence

    # a client that is "not ready" (an empty <x/>) gets the hash filled in
    ready = carol2.make_presence(pstatus='not ready')
    ready.append(ET.Element('{%s}x' % NS_VCARD_UPDATE))
    ready.send()
    presence = await next_presence(seen, CAROL + '/two')
    assert photo_of(presence) == hashlib.sha1(image).hexdigest(), presence

    # the client's own <photo/> is kept as it is
    own = carol2.make_presence(pstatus='own hash')
    update = ET.Element('{%s}x' % NS_VCARD_UPDATE)
    ET.SubElement(update, '{%s}photo' % NS_VCARD_UPDATE).text = 'ab' * 20
    own.append(update)
    own.send()
    presence = await next_presence(seen, CAROL + '/two')
    assert photo_of(presence) == 'ab' * 20, presence

    # a vCard without a photo: an empty <photo/>, "no avatar"
    plain = VCardTemp()
    plain['FN'] = 'Carol'
    await carol2['xep_0054'].publish_vcard(plain)
    carol2.send_presence(pstatus='no avatar')
    presence = await next_presence(seen, CAROL + '/two')
    assert photo_of(presence) == '', presence

    # BINVAL that is not base64 is refused
    reply = await carol2.iq_error(iq_with(
        carol2, 'set', "<vCard xmlns='%s'><PHOTO><BINVAL>*not base64*</BINVAL></PHOTO></vCard>"
        % NS_VCARD))
    assert_error(reply, 'bad-request', 'modify')
    await carol2.close()
    await carol1.close()


# ------------------------------------------------------------ private XML

class Prefs(ElementBase):
    """The element test_private_storage_round_trip stores, for slixmpp."""
    name = 'prefs'
    namespace = 'urn:example:prefs'
    plugin_attrib = 'prefs'
    interfaces = {'theme'}


def private_query(*elements):
    return "<query xmlns='%s'>%s</query>" % (NS_PRIVATE, ''.join(elements))


def private_children(reply):
    query = reply.xml.find('{%s}query' % NS_PRIVATE)
    assert query is not None, reply
    return list(query)


async def test_private_storage_round_trip():
    alice = await login(ALICE + '/private')
    prefs = "<prefs xmlns='urn:example:prefs' theme='dark'><font size='12'>mono</font></prefs>"
    notes = "<notes xmlns='urn:example:notes'>remember the milk</notes>"
    await iq_with(alice, 'set', private_query(prefs, notes)).send()

    [got] = private_children(await iq_with(
        alice, 'get', private_query("<prefs xmlns='urn:example:prefs'/>")).send())
    assert got.tag == '{urn:example:prefs}prefs' and got.get('theme') == 'dark', ET.tostring(got)
    assert got.findtext('{urn:example:prefs}font') == 'mono', ET.tostring(got)
    [got] = private_children(await iq_with(
        alice, 'get', private_query("<notes xmlns='urn:example:notes'/>"), to=ALICE).send())
    assert got.text == 'remember the milk', ET.tostring(got)

    # nothing stored: the request's element comes back empty
    [got] = private_children(await iq_with(
        alice, 'get', private_query("<other xmlns='urn:example:prefs'/>")).send())
    assert got.tag == '{urn:example:prefs}other' and len(got) == 0 and not got.text, (
        ET.tostring(got))

    # an empty element clears what was stored under its name
    await iq_with(alice, 'set', private_query("<notes xmlns='urn:example:notes'/>")).send()
    [got] = private_children(await iq_with(
        alice, 'get', private_query("<notes xmlns='urn:example:notes'/>")).send())
    assert not got.text and len(got) == 0, ET.tostring(got)

    # slixmpp's own plugin reads what was stored
    alice['xep_0049'].register(Prefs)
    reply = await alice['xep_0049'].retrieve('prefs')
    assert reply['private']['prefs']['theme'] == 'dark', reply
    await alice.close()


async def test_private_storage_refusals():
    alice = await login(ALICE + '/refused')
    bob = await login(BOB + '/refused')
    secret = "<secret xmlns='urn:example:secret'>alice's</secret>"
    await iq_with(alice, 'set', private_query(secret)).send()

    # another account's data, neither read nor written
    for type_, payload in (('get', "<secret xmlns='urn:example:secret'/>"), ('set', secret)):
        reply = await bob.iq_error(iq_with(bob, type_, private_query(payload), to=ALICE))
        assert_error(reply, 'forbidden', 'auth')

    # reserved namespaces: jabber:iq:private (what a child without its own
    # namespace inherits) and the stanza namespaces
    for element in ("<bare/>", "<x xmlns='%s'/>" % NS_PRIVATE,
                    "<message xmlns='jabber:client'/>", "<iq xmlns='jabber:server'/>"):
        for type_ in ('get', 'set'):
            reply = await alice.iq_error(iq_with(alice, type_, private_query(element)))
            assert_error(reply, 'not-acceptable', 'modify')

    # a get naming nothing, or two namespaces; a set storing nothing
    reply = await alice.iq_error(iq_with(alice, 'get', private_query()))
    assert_error(reply, 'bad-request', 'modify')
    reply = await alice.iq_error(iq_with(alice, 'get', private_query(
        "<a xmlns='urn:example:a'/>", "<b xmlns='urn:example:b'/>")))
    assert_error(reply, 'bad-request', 'modify')
    reply = await alice.iq_error(iq_with(alice, 'set', private_query()))
    assert_error(reply, 'not-acceptable', 'modify')

    # past the account's quota nothing of the set is stored
    half = "<blob%d xmlns='urn:example:blob'>%s</blob%d>"
    await iq_with(alice, 'set', private_query(half % (1, 'x' * (PRIVATE_MAX_SIZE // 2), 1))).send()
    reply = await alice.iq_error(iq_with(alice, 'set', private_query(
        "<small xmlns='urn:example:blob'/>" "<tiny xmlns='urn:example:blob'>t</tiny>",
        half % (2, 'y' * (PRIVATE_MAX_SIZE // 2), 2))))
    assert_error(reply, 'policy-violation', 'modify')
    [got] = private_children(await iq_with(
        alice, 'get', private_query("<tiny xmlns='urn:example:blob'/>")).send())
    assert not got.text, ET.tostring(got)
    # replacing an element counts its new size, not both
    await iq_with(alice, 'set', private_query(half % (1, 'z' * (PRIVATE_MAX_SIZE // 2), 1))).send()

    [got] = private_children(await iq_with(
        alice, 'get', private_query("<secret xmlns='urn:example:secret'/>")).send())
    assert got.text == "alice's", ET.tostring(got)
    await bob.close()
    await alice.close()


# ------------------------------------------------------------------- disco

def caps_ver(query):
    """XEP-0115 §5.1 over a disco#info <query/> (code point order is the
    octet order of UTF-8)."""
    identities = sorted((i.get('category', ''), i.get('type', ''), i.get(XML_LANG, ''),
                         i.get('name', ''))
                        for i in query.findall('{%s}identity' % NS_DISCO_INFO))
    s = ''.join('%s/%s/%s/%s<' % i for i in identities)
    s += ''.join(v + '<' for v in sorted(f.get('var')
                                         for f in query.findall('{%s}feature' % NS_DISCO_INFO)))
    forms = []
    for form in query.findall('{%s}x' % NS_DATA):
        fields = {f.get('var'): sorted(v.text or '' for v in f.findall('{%s}value' % NS_DATA))
                  for f in form.findall('{%s}field' % NS_DATA)}
        [form_type] = fields.pop('FORM_TYPE')
        forms.append(form_type + '<' + ''.join(
            var + '<' + ''.join(v + '<' for v in values)
            for var, values in sorted(fields.items())))
    s += ''.join(sorted(forms))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def test_caps_ver_matches_the_xep_example():
    """The ver function above against XEP-0115 §5.3's complex example."""
    query = ET.fromstring(
        "<query xmlns='%s'>"
        "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
        "<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>"
        "<feature var='http://jabber.org/protocol/caps'/>"
        "<feature var='http://jabber.org/protocol/disco#info'/>"
        "<feature var='http://jabber.org/protocol/disco#items'/>"
        "<feature var='http://jabber.org/protocol/muc'/>"
        "<x xmlns='jabber:x:data' type='result'>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value>"
        "</field><field var='ip_version'><value>ipv4</value><value>ipv6</value></field>"
        "<field var='os'><value>Mac</value></field>"
        "<field var='os_version'><value>10.5.1</value></field>"
        "<field var='software'><value>Psi</value></field>"
        "<field var='software_version'><value>0.11</value></field></x></query>" % NS_DISCO_INFO)
    assert caps_ver(query) == 'q07IKJEyjvHSyhy//CH0CxmKi8w=', caps_ver(query)


class Conn:
    """A bound resource on a raw stream, keeping its post-auth features."""

    def __init__(self, user, resource):
        self.stream = harness.RawStream(server.c2s_port)
        self.stream.open()
        self.stream.starttls()
        self.features = self.stream.auth_plain(user, PASSWORD)
        self.jid = self.stream.bind(resource)
        self.ids = 0

    def iq(self, payload, to=D, type_='get'):
        self.ids += 1
        ident = 'd%d' % self.ids
        self.stream.send("<iq type='%s' id='%s' to='%s'>%s</iq>" % (type_, ident, to, payload))
        while True:
            elem = self.stream.next_element()
            if elem.tag == IQ and elem.get('id') == ident:
                return elem

    def close(self):
        self.stream.send('</stream:stream>')
        self.stream.close()


def info_query(reply):
    assert reply.get('type') == 'result', harness.tostring(reply)
    query = reply.find('{%s}query' % NS_DISCO_INFO)
    assert query is not None, harness.tostring(reply)
    return query


def error_condition(reply):
    assert reply.get('type') == 'error', harness.tostring(reply)
    error = reply.find(harness.qname(harness.NS_CLIENT, 'error'))
    return [c.tag.split('}')[1] for c in error
            if c.tag.startswith('{%s}' % harness.NS_STANZA_ERRORS) and
            not c.tag.endswith('}text')]


def test_caps_in_stream_features_match_disco_info():
    conn = Conn('alice', 'caps')
    caps = conn.features.find('{%s}c' % NS_CAPS)
    assert caps is not None, harness.tostring(conn.features)
    assert caps.get('hash') == 'sha-1' and caps.get('node') == CAPS_NODE, harness.tostring(caps)

    query = info_query(conn.iq("<query xmlns='%s'/>" % NS_DISCO_INFO))
    features = {f.get('var') for f in query.findall('{%s}feature' % NS_DISCO_INFO)}
    for feature in (NS_DISCO_INFO, NS_VCARD, NS_PRIVATE, harness.NS_PING):
        assert feature in features, (feature, features)
    assert caps.get('ver') == caps_ver(query), (caps.get('ver'), harness.tostring(query))

    # the caps node answers the same, naming the node
    node = '%s#%s' % (CAPS_NODE, caps.get('ver'))
    by_node = info_query(conn.iq("<query xmlns='%s' node='%s'/>" % (NS_DISCO_INFO, node)))
    assert by_node.get('node') == node, harness.tostring(by_node)
    assert [harness.tostring(e) for e in by_node] == [harness.tostring(e) for e in query]
    # any other node, including an outdated ver, does not exist
    for other in (CAPS_NODE + '#AAAAAAAAAAAAAAAAAAAAAAAAAAA=', CAPS_NODE, 'urn:example:node'):
        reply = conn.iq("<query xmlns='%s' node='%s'/>" % (NS_DISCO_INFO, other))
        assert error_condition(reply) == ['item-not-found'], harness.tostring(reply)
    conn.close()


def test_contact_addresses_form():
    conn = Conn('bob', 'contact')
    query = info_query(conn.iq("<query xmlns='%s'/>" % NS_DISCO_INFO))
    [form] = query.findall('{%s}x' % NS_DATA)
    assert form.get('type') == 'result', harness.tostring(form)
    fields = {f.get('var'): [v.text for v in f.findall('{%s}value' % NS_DATA)]
              for f in form.findall('{%s}field' % NS_DATA)}
    assert fields == {'FORM_TYPE': ['http://jabber.org/network/serverinfo'],
                      'abuse-addresses': ABUSE, 'support-addresses': SUPPORT}, fields
    form_type = form.find('{%s}field' % NS_DATA)
    assert form_type.get('var') == 'FORM_TYPE' and form_type.get('type') == 'hidden', (
        harness.tostring(form))
    conn.close()


def test_account_disco_info():
    conn = Conn('bob', 'accounts')
    for account in (ALICE, BOB):
        query = info_query(conn.iq("<query xmlns='%s'/>" % NS_DISCO_INFO, to=account))
        identities = [(i.get('category'), i.get('type'))
                      for i in query.findall('{%s}identity' % NS_DISCO_INFO)]
        assert identities == [('account', 'registered')], harness.tostring(query)
    reply = conn.iq("<query xmlns='%s'/>" % NS_DISCO_INFO, to='nobody@' + D)
    assert error_condition(reply) == ['service-unavailable'], harness.tostring(reply)
    conn.close()


if __name__ == '__main__':
    harness.run([test_vcard_empty_then_set_and_read_by_owner_and_others,
                 test_vcard_set_for_someone_else_is_forbidden_and_oversized_is_refused,
                 test_avatar_hash_in_presence_seen_by_another_resource,
                 test_private_storage_round_trip,
                 test_private_storage_refusals,
                 test_caps_ver_matches_the_xep_example,
                 test_caps_in_stream_features_match_disco_info,
                 test_contact_addresses_form,
                 test_account_disco_info],
                server=server, setup=setup)
