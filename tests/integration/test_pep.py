#!/usr/bin/env python3
"""test_pep.py - Personal Eventing Protocol (XEP-0163) against a real vestnikd.

Clients here are raw streams that announce entity capabilities (XEP-0115)
with a correct sha-1 ver and answer the server's disco#info query for it,
so each test decides exactly which '+notify' features a contact has, and
sees every element the server sends. Covered: publish, retract, items,
delete and configure by the owner; notifications to the owner and to
contacts that asked for them (and not to those that did not), the last
item on arrival; presence/open/whitelist access; publish-options
preconditions; avatars, nickname, OMEMO device lists; XEP-0402 bookmarks
seen through XEP-0048 private storage and the storage:bookmarks node, both
ways; the configured limits.
"""

import asyncio
import base64
import hashlib
import itertools
import xml.etree.ElementTree as ET

import harness
from harness import qname

PASSWORD = 'secret-password'
D = harness.DOMAIN
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_PUBSUB_OWNER = NS_PUBSUB + '#owner'
NS_PUBSUB_EVENT = NS_PUBSUB + '#event'
NS_PUBSUB_ERRORS = NS_PUBSUB + '#errors'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_CAPS = 'http://jabber.org/protocol/caps'
NS_PRIVATE = 'jabber:iq:private'
NS_DATA = 'jabber:x:data'
NS_AVATAR_DATA = 'urn:xmpp:avatar:data'
NS_AVATAR_METADATA = 'urn:xmpp:avatar:metadata'
NS_NICK = 'http://jabber.org/protocol/nick'
NS_DEVICELIST = 'eu.siacs.conversations.axolotl.devicelist'
NS_BOOKMARKS2 = 'urn:xmpp:bookmarks:1'
NS_BOOKMARKS = 'storage:bookmarks'
CAPS_NODE = 'https://vestnik.example/test-client'
MAX_ITEMS = 5
MAX_ITEM_SIZE = 4096
MAX_NODES = 6

USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy',
         'mallory', 'oscar', 'peggy', 'trent']


class Server(harness.Server):
    """The harness's server with rosters, presence, private storage and PEP."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n'
                    '  presence:\n'
                    '  private:\n'
                    '  pep:\n'
                    '    max_items_per_node: %d\n'
                    '    max_item_size: %d\n'
                    '    max_nodes_per_user: %d\n' % (MAX_ITEMS, MAX_ITEM_SIZE, MAX_NODES))


server = Server()


def setup():
    for user in USERS:
        server.adduser('%s@%s' % (user, D), PASSWORD)


def caps_ver(identities, features):
    """XEP-0115 §5.1 with sha-1, no forms."""
    s = ''.join('%s/%s//%s<' % i for i in sorted(identities))
    s += ''.join(f + '<' for f in sorted(features))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def form(form_type, **fields):
    x = "<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value>" \
        "</field>" % (NS_DATA, form_type)
    for var, value in fields.items():
        x += "<field var='pubsub#%s'><value>%s</value></field>" % (var, value)
    return x + '</x>'


def publish_options(**fields):
    return '<publish-options>%s</publish-options>' % form(NS_PUBSUB + '#publish-options',
                                                          **fields)


class Pep:
    """A raw client stream with caps; disco#info queries are answered."""

    ids = itertools.count(1)

    def __init__(self, user, resource='r', notify=()):
        self.stream = harness.RawStream(server.c2s_port)
        self.stream.open()
        self.jid = self.stream.login(user, PASSWORD, resource)
        self.bare = '%s@%s' % (user, D)
        self.identities = [('client', 'pc', 'test')]
        self.features = [NS_DISCO_INFO] + ['%s+notify' % node for node in notify]
        self.ver = caps_ver(self.identities, self.features)
        self.messages = []
        self.disco_queries = 0

    def send(self, xml):
        self.stream.send(xml)

    def _answer_disco(self, iq):
        query = iq.find(qname(NS_DISCO_INFO, 'query'))
        self.disco_queries += 1
        body = ''.join("<identity category='%s' type='%s' name='%s'/>" % i
                       for i in self.identities)
        body += ''.join("<feature var='%s'/>" % f for f in self.features)
        self.send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'>%s</query>"
                  "</iq>" % (iq.get('id'), iq.get('from'), NS_DISCO_INFO, query.get('node'),
                             body))

    def _next(self, timeout=None):
        """The next element that is not a disco#info query (those are answered)."""
        while True:
            elem = self.stream.next_element(timeout)
            if (elem.tag == qname(harness.NS_CLIENT, 'iq') and elem.get('type') == 'get'
                    and elem.find(qname(NS_DISCO_INFO, 'query')) is not None):
                self._answer_disco(elem)
                continue
            return elem

    def request(self, type_, payload, to=None):
        """An iq; returns the reply (result or error), keeping messages seen meanwhile."""
        iq_id = 'q%d' % next(self.ids)
        to_attr = " to='%s'" % to if to else ''
        self.send("<iq type='%s' id='%s'%s>%s</iq>" % (type_, iq_id, to_attr, payload))
        while True:
            elem = self._next()
            if elem.tag == qname(harness.NS_CLIENT, 'iq') and elem.get('id') == iq_id:
                return elem
            if elem.tag == qname(harness.NS_CLIENT, 'message'):
                self.messages.append(elem)

    def ok(self, type_, payload, to=None):
        reply = self.request(type_, payload, to)
        assert reply.get('type') == 'result', ET.tostring(reply)
        return reply

    def sync(self):
        """Two round trips: whatever the server had to send us has arrived."""
        for _ in range(2):
            self.ok('get', "<ping xmlns='%s'/>" % harness.NS_PING, to=D)

    def online(self):
        self.send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>"
                  % (NS_CAPS, CAPS_NODE, self.ver))
        self.sync()

    def events(self, node):
        """The pubsub events for node received so far, taken off the list."""
        taken = []
        for msg in list(self.messages):
            event = msg.find(qname(NS_PUBSUB_EVENT, 'event'))
            if event is None:
                continue
            child = event[0]
            if child.get('node') == node:
                assert msg.get('type') == 'headline', ET.tostring(msg)
                taken.append(child)
                self.messages.remove(msg)
        return taken

    def close(self):
        self.send('</stream:stream>')
        self.stream.close()


def befriend(owner, contact):
    """contact subscribes to owner's presence and owner approves: 'from' on owner's side."""
    owner_stream = Pep(owner, 'roster')
    contact_stream = Pep(contact, 'roster')
    contact_stream.send("<presence to='%s@%s' type='subscribe'/>" % (owner, D))
    contact_stream.sync()
    owner_stream.send("<presence to='%s@%s' type='subscribed'/>" % (contact, D))
    owner_stream.sync()
    reply = owner_stream.ok('get', "<query xmlns='jabber:iq:roster'/>")
    items = {i.get('jid'): i.get('subscription') for i in reply.iter('{jabber:iq:roster}item')}
    assert items.get('%s@%s' % (contact, D)) in ('from', 'both'), items
    owner_stream.close()
    contact_stream.close()


def publish(client, node, payload, item_id=None, options='', to=None):
    id_attr = " id='%s'" % item_id if item_id else ''
    return client.request('set', "<pubsub xmlns='%s'><publish node='%s'><item%s>%s</item>"
                          "</publish>%s</pubsub>" % (NS_PUBSUB, node, id_attr, payload, options),
                          to)


def published_id(reply):
    assert reply.get('type') == 'result', ET.tostring(reply)
    item = reply.find('%s/%s/%s' % (qname(NS_PUBSUB, 'pubsub'), qname(NS_PUBSUB, 'publish'),
                                    qname(NS_PUBSUB, 'item')))
    assert item is not None and item.get('id'), ET.tostring(reply)
    return item.get('id')


def items(client, owner, node, inner='', max_items=None):
    max_attr = " max_items='%d'" % max_items if max_items else ''
    return client.request('get', "<pubsub xmlns='%s'><items node='%s'%s>%s</items></pubsub>"
                          % (NS_PUBSUB, node, max_attr, inner), to=owner)


def item_list(reply):
    assert reply.get('type') == 'result', ET.tostring(reply)
    found = reply.find('%s/%s' % (qname(NS_PUBSUB, 'pubsub'), qname(NS_PUBSUB, 'items')))
    assert found is not None, ET.tostring(reply)
    return found.findall(qname(NS_PUBSUB, 'item'))


def assert_error(reply, condition, error_type, pubsub_condition=None):
    assert reply.get('type') == 'error', ET.tostring(reply)
    error = reply.find(qname(harness.NS_CLIENT, 'error'))
    assert error is not None and error.get('type') == error_type, ET.tostring(reply)
    assert error.find(qname(harness.NS_STANZA_ERRORS, condition)) is not None, \
        ET.tostring(reply)
    if pubsub_condition:
        assert error.find(qname(NS_PUBSUB_ERRORS, pubsub_condition)) is not None, \
            ET.tostring(reply)


def note(text):
    return "<note xmlns='urn:example:note'>%s</note>" % text


def note_texts(found):
    return [i.findtext('{urn:example:note}note') for i in found]


# ------------------------------------------------------------------- tests

def test_disco_announces_pep():
    # On the server and on the account's own bare JID (XEP-0163 §4).
    for to in (D, 'trent@' + D):
        disco_announces_pep(to)


def disco_announces_pep(to):
    client = Pep('trent')
    reply = client.ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=to)
    query = reply.find(qname(NS_DISCO_INFO, 'query'))
    identities = {(i.get('category'), i.get('type'))
                  for i in query.findall(qname(NS_DISCO_INFO, 'identity'))}
    features = {f.get('var') for f in query.findall(qname(NS_DISCO_INFO, 'feature'))}
    assert ('pubsub', 'pep') in identities, identities
    for feature in ('publish', 'publish-options', 'auto-create', 'retract-items',
                    'delete-nodes', 'persistent-items', 'last-published', 'access-presence',
                    'access-open', 'access-whitelist'):
        assert NS_PUBSUB + '#' + feature in features, feature
    if to == D:
        assert NS_BOOKMARKS2 + '#compat' in features and NS_BOOKMARKS2 + '#compat-pep' in features
    client.close()


def test_owner_publishes_reads_retracts_and_deletes():
    alice = Pep('alice', 'desk')
    alice.online()
    node = 'urn:example:notes'
    for n, item_id in enumerate(['a', 'b', 'c', 'd']):
        reply = publish(alice, node, note('n%d' % n), item_id, publish_options(max_items=3))
        assert published_id(reply) == item_id
    # the owner's available resource hears about every publication
    assert len(alice.events(node)) == 4

    assert note_texts(item_list(items(alice, None, node))) == ['n1', 'n2', 'n3']
    assert note_texts(item_list(items(alice, None, node, max_items=1))) == ['n3']
    assert note_texts(item_list(items(alice, None, node, "<item id='c'/>"))) == ['n2']
    generated = published_id(publish(alice, node, note('n4')))
    assert generated not in ('a', 'b', 'c', 'd')
    # republishing an id replaces that item
    published_id(publish(alice, node, note('n2bis'), 'c'))
    assert note_texts(item_list(items(alice, None, node))) == ['n3', 'n4', 'n2bis']

    alice.events(node)
    alice.ok('set', "<pubsub xmlns='%s'><retract node='%s' notify='true'><item id='c'/>"
             "</retract></pubsub>" % (NS_PUBSUB, node))
    alice.sync()
    [retracted] = alice.events(node)
    assert retracted.find(qname(NS_PUBSUB_EVENT, 'retract')).get('id') == 'c'
    assert note_texts(item_list(items(alice, None, node))) == ['n3', 'n4']
    assert_error(alice.request('set', "<pubsub xmlns='%s'><retract node='%s'><item id='zz'/>"
                               "</retract></pubsub>" % (NS_PUBSUB, node)),
                 'item-not-found', 'cancel')

    # configuration: read, change, read back
    reply = alice.ok('get', "<pubsub xmlns='%s'><configure node='%s'/></pubsub>"
                     % (NS_PUBSUB_OWNER, node))
    fields = {f.get('var'): f.findtext(qname(NS_DATA, 'value'))
              for f in reply.iter(qname(NS_DATA, 'field'))}
    assert fields['pubsub#max_items'] == '3' and fields['pubsub#access_model'] == 'presence'
    alice.ok('set', "<pubsub xmlns='%s'><configure node='%s'>%s</configure></pubsub>"
             % (NS_PUBSUB_OWNER, node, form(NS_PUBSUB + '#node_config', max_items=1,
                                             access_model='open')))
    assert note_texts(item_list(items(alice, None, node))) == ['n4']

    # a stranger may not publish here
    dave = Pep('dave')
    assert_error(publish(dave, node, note('x'), to='alice@' + D), 'forbidden', 'auth')
    dave.close()

    alice.ok('set', "<pubsub xmlns='%s'><delete node='%s'/></pubsub>" % (NS_PUBSUB_OWNER, node))
    assert_error(items(alice, None, node), 'item-not-found', 'cancel')
    alice.close()


def test_notifications_follow_caps_and_last_item_on_arrival():
    befriend('erin', 'frank')
    befriend('erin', 'grace')
    erin = Pep('erin')
    published_id(publish(erin, NS_NICK, "<nick xmlns='%s'>Erin</nick>" % NS_NICK))

    # frank asks for nick notifications: the last item comes when he shows up
    frank = Pep('frank', notify=[NS_NICK])
    frank.online()
    frank.sync()
    assert frank.disco_queries == 1, 'caps were not queried once'
    [first] = frank.events(NS_NICK)
    assert first.find(qname(NS_PUBSUB_EVENT, 'item')).findtext('{%s}nick' % NS_NICK) == 'Erin'
    # grace does not ask
    grace = Pep('grace', notify=[NS_AVATAR_METADATA])
    grace.online()

    published_id(publish(erin, NS_NICK, "<nick xmlns='%s'>Erin E.</nick>" % NS_NICK))
    frank.sync()
    grace.sync()
    [update] = frank.events(NS_NICK)
    assert update.get('node') == NS_NICK
    assert update.find(qname(NS_PUBSUB_EVENT, 'item')).findtext('{%s}nick' % NS_NICK) == \
        'Erin E.'
    assert frank.messages == [] and grace.messages == [], (frank.messages, grace.messages)

    # a second resource with the same caps: the ver is known, no new query
    frank2 = Pep('frank', 'two', notify=[NS_NICK])
    frank2.online()
    frank2.sync()
    assert frank2.disco_queries == 0
    assert len(frank2.events(NS_NICK)) == 1
    for c in (erin, frank, frank2, grace):
        c.close()


def test_access_models():
    befriend('heidi', 'ivan')
    heidi = Pep('heidi')
    for node, access in (('urn:example:presence', None), ('urn:example:open', 'open'),
                         ('urn:example:whitelist', 'whitelist')):
        options = publish_options(access_model=access) if access else ''
        published_id(publish(heidi, node, note(node), 'one', options))
    ivan = Pep('ivan')      # a contact with a subscription from heidi
    judy = Pep('judy')      # a stranger
    owner = 'heidi@' + D

    assert note_texts(item_list(items(ivan, owner, 'urn:example:presence'))) == \
        ['urn:example:presence']
    assert_error(items(judy, owner, 'urn:example:presence'), 'not-authorized', 'auth',
                 'presence-subscription-required')
    for reader in (ivan, judy):
        assert note_texts(item_list(items(reader, owner, 'urn:example:open'))) == \
            ['urn:example:open']
        assert_error(items(reader, owner, 'urn:example:whitelist'), 'not-allowed', 'cancel',
                     'closed-node')
    assert note_texts(item_list(items(heidi, None, 'urn:example:whitelist'))) == \
        ['urn:example:whitelist']
    assert_error(items(judy, owner, 'urn:example:none'), 'item-not-found', 'cancel')
    for c in (heidi, ivan, judy):
        c.close()


def test_publish_options_preconditions():
    mallory = Pep('mallory')
    node = 'urn:example:precondition'
    published_id(publish(mallory, node, note('1'), 'x',
                         publish_options(access_model='open', max_items='max')))
    assert_error(publish(mallory, node, note('2'), 'x', publish_options(access_model='presence')),
                 'conflict', 'cancel', 'precondition-not-met')
    assert_error(publish(mallory, node, note('2'), 'x', publish_options(max_items=2)),
                 'conflict', 'cancel', 'precondition-not-met')
    # matching options, including 'max' as the number it stands for
    published_id(publish(mallory, node, note('3'), 'x',
                         publish_options(access_model='open', max_items=MAX_ITEMS)))
    # An option the service cannot apply to a new node is a precondition not
    # met too (XEP-0223 §3), which clients recover from.
    assert_error(publish(mallory, 'urn:example:bad', note('4'), 'x',
                         publish_options(access_model='roster')), 'conflict', 'cancel',
                 'precondition-not-met')
    assert note_texts(item_list(items(mallory, None, node))) == ['3']
    mallory.close()


def test_avatar_round_trip_seen_by_contact():
    befriend('oscar', 'peggy')
    peggy = Pep('peggy', notify=[NS_AVATAR_METADATA])
    peggy.online()
    oscar = Pep('oscar')
    image = bytes(range(256)) * 8
    digest = hashlib.sha1(image).hexdigest()
    published_id(publish(oscar, NS_AVATAR_DATA, "<data xmlns='%s'>%s</data>"
                         % (NS_AVATAR_DATA, base64.b64encode(image).decode()), digest))
    published_id(publish(oscar, NS_AVATAR_METADATA,
                         "<metadata xmlns='%s'><info bytes='%d' id='%s' type='image/png' "
                         "height='64' width='64'/></metadata>"
                         % (NS_AVATAR_METADATA, len(image), digest), digest))
    peggy.sync()
    assert peggy.events(NS_AVATAR_DATA) == [], 'data went to a contact without +notify for it'
    [event] = peggy.events(NS_AVATAR_METADATA)
    info = event.find('%s/{%s}metadata/{%s}info' % (qname(NS_PUBSUB_EVENT, 'item'),
                                                     NS_AVATAR_METADATA, NS_AVATAR_METADATA))
    assert info.get('id') == digest and info.get('bytes') == str(len(image))
    [data] = item_list(items(peggy, 'oscar@' + D, NS_AVATAR_DATA, "<item id='%s'/>" % digest))
    assert base64.b64decode(data.findtext('{%s}data' % NS_AVATAR_DATA)) == image
    peggy.close()
    oscar.close()


async def test_slixmpp_avatar_and_nick():
    """An unmodified slixmpp publishes with its XEP-0084/XEP-0172 plugins; another reads."""
    async def login(user):
        client = harness.Client('%s@%s/sx' % (user, D), PASSWORD)
        for plugin in ('xep_0060', 'xep_0163', 'xep_0084', 'xep_0172'):
            client.register_plugin(plugin)
        return await client.login(server)

    judy = await login('judy')
    trent = await login('trent')
    image = b'\x89PNG\r\n\x1a\n' + bytes(range(100))
    avatar_id = judy['xep_0084'].generate_id(image)
    await judy['xep_0084'].publish_avatar(image)
    await judy['xep_0084'].publish_avatar_metadata(
        {'id': avatar_id, 'type': 'image/png', 'bytes': len(image)},
        options=None)
    await judy['xep_0172'].publish_nick('Judy')
    # access 'presence' by default: trent is no contact of judy's
    try:
        await trent['xep_0084'].retrieve_avatar('judy@' + D, avatar_id)
        raise AssertionError('a stranger read a presence-access avatar')
    except harness.IqError as e:
        assert e.iq['error']['condition'] == 'not-authorized', e.iq
    own = await judy['xep_0084'].retrieve_avatar('judy@' + D, avatar_id)
    assert own['pubsub']['items']['item']['avatar_data']['value'] == image
    nick = await judy['xep_0060'].get_items('judy@' + D, 'http://jabber.org/protocol/nick')
    assert nick.xml.findtext('.//{%s}nick' % NS_NICK) == 'Judy', nick
    await asyncio.gather(judy.close(), trent.close())


def test_omemo_devicelist_open_to_strangers():
    carol = Pep('carol')
    devicelist = "<list xmlns='%s'><device id='12345'/><device id='4223'/></list>" % NS_DEVICELIST
    published_id(publish(carol, NS_DEVICELIST, devicelist, 'current',
                         publish_options(access_model='open')))
    bundle_node = 'eu.siacs.conversations.axolotl.bundles:12345'
    published_id(publish(carol, bundle_node, "<bundle xmlns='eu.siacs.conversations.axolotl'>"
                         "<signedPreKeyPublic signedPreKeyId='1'>AAAA</signedPreKeyPublic>"
                         "</bundle>", 'current', publish_options(access_model='open')))
    stranger = Pep('dave', 'omemo')
    [current] = item_list(items(stranger, 'carol@' + D, NS_DEVICELIST))
    ids = [d.get('id') for d in current.iter('{%s}device' % NS_DEVICELIST)]
    assert ids == ['12345', '4223'], ids
    assert len(item_list(items(stranger, 'carol@' + D, bundle_node))) == 1
    stranger.close()
    carol.close()


def private_bookmarks(client):
    reply = client.ok('get', "<query xmlns='%s'><storage xmlns='%s'/></query>"
                      % (NS_PRIVATE, NS_BOOKMARKS))
    storage = reply.find('%s/{%s}storage' % (qname(NS_PRIVATE, 'query'), NS_BOOKMARKS))
    assert storage is not None, ET.tostring(reply)
    return {c.get('jid'): (c.get('name'), c.get('autojoin'), c.findtext('{%s}nick' % NS_BOOKMARKS))
            for c in storage.findall('{%s}conference' % NS_BOOKMARKS)}


def bookmarks2(client):
    return {i.get('id'): (i.find('{%s}conference' % NS_BOOKMARKS2).get('name'),
                          i.find('{%s}conference' % NS_BOOKMARKS2).get('autojoin'),
                          i.findtext('{%s}conference/{%s}nick' % (NS_BOOKMARKS2, NS_BOOKMARKS2)))
            for i in item_list(items(client, None, NS_BOOKMARKS2))}


def test_bookmarks2_and_xep0048_private_storage_agree():
    bob = Pep('bob', notify=[NS_BOOKMARKS2])
    bob.online()
    options = publish_options(access_model='whitelist', max_items='max')
    published_id(publish(bob, NS_BOOKMARKS2, "<conference xmlns='%s' name='Coven' "
                         "autojoin='true'><nick>bobby</nick></conference>" % NS_BOOKMARKS2,
                         'coven@muc.example', options))
    assert private_bookmarks(bob) == {'coven@muc.example': ('Coven', 'true', 'bobby')}

    # a XEP-0048 client rewrites the list through private storage
    bob.events(NS_BOOKMARKS2)
    bob.ok('set', "<query xmlns='%s'><storage xmlns='%s'>"
           "<conference jid='coven@muc.example' name='The Coven' autojoin='false'>"
           "<nick>bobby</nick></conference>"
           "<conference jid='tea@muc.example' name='Tea' autojoin='true'/>"
           "</storage></query>" % (NS_PRIVATE, NS_BOOKMARKS))
    assert bookmarks2(bob) == {'coven@muc.example': ('The Coven', None, 'bobby'),
                               'tea@muc.example': ('Tea', 'true', None)}, bookmarks2(bob)
    bob.sync()
    assert len(bob.events(NS_BOOKMARKS2)) == 2, 'XEP-0402 clients were not notified'

    # the storage:bookmarks PEP node is the same list
    [current] = item_list(items(bob, None, NS_BOOKMARKS))
    jids = sorted(c.get('jid') for c in current.iter('{%s}conference' % NS_BOOKMARKS))
    assert jids == ['coven@muc.example', 'tea@muc.example'], jids
    published_id(publish(bob, NS_BOOKMARKS, "<storage xmlns='%s'><conference "
                         "jid='tea@muc.example' name='Tea' autojoin='true'/></storage>"
                         % NS_BOOKMARKS, 'current'))
    assert list(bookmarks2(bob)) == ['tea@muc.example']
    bob.sync()
    [retracted] = [e for e in bob.events(NS_BOOKMARKS2)
                   if e.find(qname(NS_PUBSUB_EVENT, 'retract')) is not None]
    assert retracted.find(qname(NS_PUBSUB_EVENT, 'retract')).get('id') == 'coven@muc.example'
    assert private_bookmarks(bob) == {'tea@muc.example': ('Tea', 'true', None)}

    # whitelist: nobody else reads them; other private data is still mod_private's
    stranger = Pep('dave', 'bookmarks')
    assert_error(items(stranger, 'bob@' + D, NS_BOOKMARKS2), 'not-allowed', 'cancel',
                 'closed-node')
    stranger.close()
    bob.ok('set', "<query xmlns='%s'><prefs xmlns='urn:example:prefs'>x</prefs></query>"
           % NS_PRIVATE)
    reply = bob.ok('get', "<query xmlns='%s'><prefs xmlns='urn:example:prefs'/></query>"
                   % NS_PRIVATE)
    assert reply.findtext('%s/{urn:example:prefs}prefs' % qname(NS_PRIVATE, 'query')) == 'x'
    bob.close()


def converse_publish(client, bookmark_jid, name, max_items):
    """A bookmark as Converse.js 14 publishes it (headless/plugins/bookmarks/collection.js
    sendBookmarkStanza, pubsub/api.js publish): 'max' if the account's disco#info has
    pubsub#config-node-max, else 9999."""
    iq_id = 'cv%d' % next(Pep.ids)
    client.send(
        "<iq xmlns='jabber:client' from='%s' type='set' to='%s' id='%s'>"
        "<pubsub xmlns='%s'><publish node='%s'><item id='%s'>"
        "<conference xmlns='%s' name='%s' autojoin='true'><nick>me</nick></conference>"
        "</item></publish><publish-options><x xmlns='%s' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'><value>%s#publish-options</value></field>"
        "<field var='pubsub#persist_items'><value>true</value></field>"
        "<field var='pubsub#max_items'><value>%s</value></field>"
        "<field var='pubsub#send_last_published_item'><value>never</value></field>"
        "<field var='pubsub#access_model'><value>whitelist</value></field>"
        "</x></publish-options></pubsub></iq>"
        % (client.bare, client.bare, iq_id, NS_PUBSUB, NS_BOOKMARKS2, bookmark_jid,
           NS_BOOKMARKS2, name, NS_DATA, NS_PUBSUB, max_items))
    while True:
        elem = client._next()
        if elem.get('id') == iq_id:
            return elem
        client.messages.append(elem)


def test_converse_bookmarks_are_saved():
    # Converse looks for config-node-max and the bookmarks compat feature on
    # the account's bare JID, then publishes each room with max_items 'max'.
    judy = Pep('judy', 'converse')
    reply = judy.ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=judy.bare)
    features = {f.get('var') for f in reply.iter(qname(NS_DISCO_INFO, 'feature'))}
    for feature in (NS_PUBSUB + '#config-node-max', NS_PUBSUB + '#publish-options',
                    NS_BOOKMARKS2 + '#compat'):
        assert feature in features, (feature, sorted(features))
    max_items = 'max' if NS_PUBSUB + '#config-node-max' in features else '9999'
    for room, name in (('tea@muc.example', 'Tea'), ('coven@muc.example', 'Coven')):
        reply = converse_publish(judy, room, name, max_items)
        assert reply.get('type') == 'result', ET.tostring(reply)
    # A second browser sees both rooms.
    other = Pep('judy', 'second-browser')
    assert sorted(bookmarks2(other)) == ['coven@muc.example', 'tea@muc.example']
    # An older Converse sends a number above the limit: a precondition not
    # met, answered the way XEP-0060 §7.1.5 says, not not-acceptable.
    assert_error(converse_publish(judy, 'tea@muc.example', 'Tea', '9999'), 'conflict', 'cancel',
                 'precondition-not-met')
    # Converse's recovery (api.pubsub.config.set): the owner configures the
    # node with the form it read, 'max' included, and publishes again.
    reply = judy.ok('get', "<pubsub xmlns='%s'><configure node='%s'/></pubsub>"
                    % (NS_PUBSUB_OWNER, NS_BOOKMARKS2))
    fields = {f.get('var'): f.findtext(qname(NS_DATA, 'value'))
              for f in reply.iter(qname(NS_DATA, 'field'))}
    assert fields['pubsub#max_items'] in ('max', str(MAX_ITEMS)), fields
    judy.ok('set', "<pubsub xmlns='%s'><configure node='%s'>%s</configure></pubsub>"
            % (NS_PUBSUB_OWNER, NS_BOOKMARKS2,
               form(NS_PUBSUB + '#node_config', persist_items='true', max_items='max',
                    access_model='whitelist', send_last_published_item='never')))
    reply = converse_publish(judy, 'tea@muc.example', 'Tea room', 'max')
    assert reply.get('type') == 'result', ET.tostring(reply)
    other.close()
    judy.close()


def test_limits():
    peggy = Pep('peggy', 'limits')
    big = note('x' * MAX_ITEM_SIZE)
    assert_error(publish(peggy, 'urn:example:big', big), 'not-acceptable', 'modify',
                 'payload-too-big')
    assert_error(publish(peggy, 'urn:example:many', note('x'), 'a',
                         publish_options(max_items=MAX_ITEMS + 1)), 'conflict', 'cancel',
                 'precondition-not-met')
    for n in range(MAX_ITEMS + 2):
        published_id(publish(peggy, 'urn:example:many', note(str(n)), 'i%d' % n,
                             publish_options(max_items='max')))
    assert len(item_list(items(peggy, None, 'urn:example:many'))) == MAX_ITEMS
    assert_error(peggy.request('set', "<pubsub xmlns='%s'><configure node='urn:example:many'>%s"
                               "</configure></pubsub>" % (NS_PUBSUB_OWNER, form(
                                   NS_PUBSUB + '#node_config', max_items=MAX_ITEMS + 1))),
                 'not-acceptable', 'modify')
    assert_error(publish(peggy, 'urn:example:two', "<a xmlns='x'/><b xmlns='x'/>"),
                 'bad-request', 'modify', 'invalid-payload')
    assert_error(publish(peggy, 'urn:example:none', ''), 'bad-request', 'modify',
                 'payload-required')
    # the nodes made above count towards the limit
    reply = peggy.ok('get', "<query xmlns='http://jabber.org/protocol/disco#items'/>",
                     to='peggy@' + D)
    existing = len(reply.findall('.//{http://jabber.org/protocol/disco#items}item'))
    for n in range(existing, MAX_NODES):
        published_id(publish(peggy, 'urn:example:node%d' % n, note('n')))
    assert_error(publish(peggy, 'urn:example:one-too-many', note('n')), 'not-allowed', 'cancel',
                 'max-nodes-exceeded')
    peggy.close()


if __name__ == '__main__':
    harness.run([test_disco_announces_pep,
                 test_owner_publishes_reads_retracts_and_deletes,
                 test_notifications_follow_caps_and_last_item_on_arrival,
                 test_access_models,
                 test_publish_options_preconditions,
                 test_avatar_round_trip_seen_by_contact,
                 test_slixmpp_avatar_and_nick,
                 test_omemo_devicelist_open_to_strangers,
                 test_bookmarks2_and_xep0048_private_storage_agree,
                 test_converse_bookmarks_are_saved,
                 test_limits],
                server=server, setup=setup)
