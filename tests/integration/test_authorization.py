#!/usr/bin/env python3
"""test_authorization.py - the authorization matrix: who may read, change or
trigger what, tried the way an attacker works through a server.

One server runs every shipped module and store (private storage, vCards,
rosters, blocking, carbons, push, offline, MAM, PEP, MUC, upload, TURN
credentials, registration, ad-hoc commands, who may ring whom) with https, component and s2s
listeners and http.allowed_origins set. The actors are ordinary accounts:
alice (the victim, with data in every store and the owner of the rooms),
bob (her contact, subscribed both ways, a member and an admin in her
rooms), mallory (the attacker: a stranger to alice and an occupant of her
open room), the operator (vestnikctl), a component, unauthenticated c2s,
BOSH and s2s streams, and web pages of an allowed and another origin.

Each row of MATRIX is one TAP line named "actor | target | action ->
expected outcome": that the attempt is refused with the condition the
standard names (a stanza error's type and condition, a stream error, a
SASL failure, an HTTP status) and that nothing changed or leaked. A few
rows are positive controls (what an actor may do), so that a refusal is
known to come from the check and not from a broken fixture. New modules
add their rows with iq_row() (one refused iq), component_row() or the
row() decorator (anything longer); a row that changes the fixture's state
for later rows says so in its body, and rows run in the order written.

Clients are raw streams (harness.RawStream: STARTTLS, PLAIN, bind) driven
synchronously, so each row sees exactly which elements arrive; like a real
client (RFC 6120 §8.4) they answer iq requests they do not understand with
<service-unavailable/>. Logins that are meant to fail come from addresses
of their own (127.0.N.1, one /24 each), so that the login back-off they
feed never holds the address the other rows use.
"""

import base64
import contextlib
import hashlib
import hmac
import http.client
import os
import socket
import stat
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET

import harness
from harness import qname, tostring

D = harness.DOMAIN
MUC = 'conference.' + D
COMPONENT = 'bot.localhost'
COMPONENT_SECRET = 'bot-secret-for-the-matrix'
PASSWORD = 'matrix-password'
REMOTE = 'remote.example'
WEB_ORIGIN = 'https://chat.example'
EVIL_ORIGIN = 'https://evil.example'

NS_CLIENT = harness.NS_CLIENT
NS_STANZAS = harness.NS_STANZA_ERRORS
NS_COMPONENT = 'jabber:component:accept'
NS_SERVER = 'jabber:server'
NS_DIALBACK = 'jabber:server:dialback'
NS_PRIVATE = 'jabber:iq:private'
NS_VCARD = 'vcard-temp'
NS_ROSTER = 'jabber:iq:roster'
NS_BLOCKING = 'urn:xmpp:blocking'
NS_CARBONS = 'urn:xmpp:carbons:2'
NS_PUSH = 'urn:xmpp:push:0'
NS_MAM = 'urn:xmpp:mam:2'
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner'
NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors'
NS_DATA = 'jabber:x:data'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_REGISTER = 'jabber:iq:register'
NS_LAST = 'jabber:iq:last'
NS_OFFLINE = 'http://jabber.org/protocol/offline'
NS_COMMANDS = 'http://jabber.org/protocol/commands'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_USER = NS_MUC + '#user'
NS_MUC_ADMIN = NS_MUC + '#admin'
NS_MUC_OWNER = NS_MUC + '#owner'
NS_SID = 'urn:xmpp:sid:0'
NS_RETRACT = 'urn:xmpp:message-retract:1'
NS_MODERATE = 'urn:xmpp:message-moderate:1'
NS_FASTEN = 'urn:xmpp:fasten:0'
NS_UPLOAD = 'urn:xmpp:http:upload:0'
NS_EXTDISCO = 'urn:xmpp:extdisco:2'
NS_SM = 'urn:xmpp:sm:3'
NS_SASL2 = 'urn:xmpp:sasl:2'
NS_FAST = 'urn:xmpp:fast:0'
NS_BOOKMARKS = 'urn:xmpp:bookmarks:1'

IQ = qname(NS_CLIENT, 'iq')
MESSAGE = qname(NS_CLIENT, 'message')
PRESENCE = qname(NS_CLIENT, 'presence')

UPLOAD_MAX_FILE = 60000
UPLOAD_QUOTA = 100000

USERS = ('alice', 'bob', 'carol', 'dave', 'mallory', 'trudy', 'erin', 'frank', 'grace', 'henry',
         'ivan', 'kate')


def bare(user):
    return '%s@%s' % (user, D)


# ------------------------------------------------------------------ server

class Server(harness.Server):
    """The harness's server with every shipped module and listener."""

    def __init__(self):
        self.http_port, self.https_port, self.component_port, self.s2s_port = (
            harness.free_ports(4))
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('c2s:\n', f"""  - type: https
    address: 127.0.0.1
    port: {self.https_port}
  - type: component
    address: 127.0.0.1
    port: {self.component_port}
  - type: s2s
    address: 127.0.0.1
    port: {self.s2s_port}
http:
  allowed_origins: ["{WEB_ORIGIN}"]
components:
  - domain: {COMPONENT}
    secret: {COMPONENT_SECRET}
c2s:
""", 1)
        text += ('  roster:\n  presence:\n  offline:\n  blocking:\n  last:\n  time:\n'
                 '  vcard:\n  private:\n  carbons:\n  csi:\n  mam:\n  pep:\n'
                 '  register:\n    allow_registration: true\n'
                 '  upload:\n    max_file_size: %d\n    quota_bytes: %d\n'
                 '  push:\n    min_interval: 0\n'
                 '  extdisco:\n    turn_host: turn.localhost\n    turn_secret: turn-secret\n'
                 '  muc:\n'
                 '  adhoc:\n'
                 '  jmi:\n'
                 '  services:\n'
                 '  credentials:\n' % (UPLOAD_MAX_FILE, UPLOAD_QUOTA))
        with open(self.config_path, 'w') as f:
            f.write(text)


server = Server()

_next_subnet = [10]


def fresh_address():
    """A loopback address in a /24 no other row uses (login back-off)."""
    _next_subnet[0] += 1
    return '127.0.%d.1' % _next_subnet[0]


# ------------------------------------------------------------------ actors

class Actor:
    """A bound client stream, driven synchronously.

    Elements that a wait does not ask for are kept in a backlog for later
    waits. Incoming iq requests are recorded in self.requests; pings are
    answered, anything else gets <service-unavailable/>, as a client that
    does not know it does.
    """

    def __init__(self, user, resource, source=None):
        self.user = user
        self.bare = bare(user)
        self.stream = harness.RawStream(server.c2s_port, source=source)
        self.stream.open()
        self.jid = self.stream.login(user, PASSWORD, resource)
        self.backlog = []
        self.requests = []
        self.counter = 0

    def send(self, xml):
        self.stream.send(xml)

    def _next(self, deadline):
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            elem = self.stream.next_element(timeout=remaining)
            if elem.tag == IQ and elem.get('type') in ('get', 'set'):
                self.requests.append(elem)
                if elem.find(qname(harness.NS_PING, 'ping')) is not None:
                    self.send("<iq type='result' id='%s' to='%s'/>"
                              % (elem.get('id'), elem.get('from')))
                else:
                    self.send("<iq type='error' id='%s' to='%s'><error type='cancel'>"
                              "<service-unavailable xmlns='%s'/></error></iq>"
                              % (elem.get('id'), elem.get('from'), NS_STANZAS))
                continue
            return elem

    def wait(self, pred, what, timeout=5):
        for i, elem in enumerate(self.backlog):
            if pred(elem):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            try:
                elem = self._next(deadline)
            except TimeoutError:
                raise AssertionError('%s: no %s within %ss' % (self.jid, what, timeout)) from None
            if pred(elem):
                return elem
            self.backlog.append(elem)

    def quiet(self, pred, what, seconds=1.0):
        """Nothing matching pred arrives within seconds."""
        for elem in self.backlog:
            assert not pred(elem), '%s received %s: %s' % (self.jid, what, tostring(elem))
        deadline = time.monotonic() + seconds
        while True:
            try:
                elem = self._next(deadline)
            except TimeoutError:
                return
            assert not pred(elem), '%s received %s: %s' % (self.jid, what, tostring(elem))
            self.backlog.append(elem)

    def pump(self, seconds):
        """Read (and answer iq requests) for a while."""
        self.quiet(lambda e: False, 'nothing', seconds)

    def iq(self, type_, to, payload, timeout=5):
        """Send an iq and return its result or error element."""
        self.counter += 1
        iq_id = '%s-%d' % (self.user, self.counter)
        self.send("<iq type='%s' id='%s'%s>%s</iq>"
                  % (type_, iq_id, " to='%s'" % to if to else '', payload))
        return self.wait(lambda e: e.tag == IQ and e.get('id') == iq_id and
                         e.get('type') in ('result', 'error'), 'answer to iq %s' % iq_id, timeout)

    def ok(self, type_, to, payload):
        reply = self.iq(type_, to, payload)
        assert reply.get('type') == 'result', 'expected a result, got %s' % tostring(reply)
        return reply

    def close(self):
        with contextlib.suppress(OSError):
            self.send('</stream:stream>')
        self.stream.close()


A = {}  # the actors of the fixture, by name


# ---------------------------------------------------------------- verdicts

def refused(reply, *allowed):
    """reply is an error with one of the allowed 'type condition [pubsub-condition]'."""
    assert reply.get('type') == 'error', 'expected a refusal, got %s' % tostring(reply)
    errors = [c for c in reply if c.tag.endswith('}error')]
    assert len(errors) == 1, tostring(reply)
    error = errors[0]
    conditions = [c.tag.split('}', 1)[1] for c in error
                  if c.tag.startswith('{%s}' % NS_STANZAS) and not c.tag.endswith('}text')]
    app = [c.tag.split('}', 1)[1] for c in error if c.tag.startswith('{%s}' % NS_PUBSUB_ERRORS)]
    got = ' '.join([error.get('type') or '?'] + conditions + app)
    assert got in allowed, 'expected %s, got %s' % (' or '.join(allowed), tostring(reply))


def text_of(elem):
    return ''.join(elem.itertext())


# ------------------------------------------------------------------ matrix

MATRIX = []


def row(actor, target, action, expected):
    """Add the decorated function to MATRIX as one TAP line."""
    def add(fn):
        fn.__name__ = '%s | %s | %s -> %s' % (actor, target, action, expected)
        MATRIX.append(fn)
        return fn
    return add


def iq_row(actor, target, action, who, type_, to, payload, *allowed, verify=None):
    """A row that is one iq from A[who], refused with one of allowed."""
    def check():
        refused(A[who].iq(type_, to, payload), *allowed)
        if verify is not None:
            verify()
    check.__name__ = '%s | %s | %s -> %s' % (actor, target, action, ' or '.join(allowed))
    MATRIX.append(check)


# ---------------------------------------------------------------- fixture

ALICE_PRIVATE = "<secret xmlns='urn:example:diary'>alice-private-note</secret>"
ALICE_VCARD_FN = 'Alice Liddell'
OPEN_NODE = 'urn:example:open'
PRESENCE_NODE = 'urn:example:presence'
WHITELIST_NODE = 'urn:example:whitelist'
ROOM_OPEN = 'tea@' + MUC
ROOM_CLUB = 'club@' + MUC
ROOM_VAULT = 'vault@' + MUC
ROOM_STAFF = 'staff@' + MUC
VAULT_SECRET = 'sesame'
FIXTURE = {}


def publish_options(**fields):
    values = ''.join("<field var='pubsub#%s'><value>%s</value></field>" % kv
                     for kv in fields.items())
    return ("<publish-options><x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'>"
            "<value>%s#publish-options</value></field>%s</x></publish-options>"
            % (NS_DATA, NS_PUBSUB, values))


def publish(actor, node, item_id, payload, **options):
    actor.ok('set', None, "<pubsub xmlns='%s'><publish node='%s'><item id='%s'>%s</item>"
             "</publish>%s</pubsub>" % (NS_PUBSUB, node, item_id, payload,
                                        publish_options(**options) if options else ''))


def subscribe_both(a, b):
    """a and b end up with subscription 'both' to each other."""
    for x, y in ((a, b), (b, a)):
        x.send("<presence to='%s' type='subscribe'/>" % y.bare)
        y.wait(lambda e: e.tag == PRESENCE and e.get('type') == 'subscribe' and
               e.get('from', '').startswith(x.bare), 'subscribe from %s' % x.bare)
        y.send("<presence to='%s' type='subscribed'/>" % x.bare)
    deadline = time.monotonic() + 5
    while True:
        roster = a.ok('get', None, "<query xmlns='%s'/>" % NS_ROSTER)
        items = roster.findall('{%s}query/{%s}item' % (NS_ROSTER, NS_ROSTER))
        if any(i.get('jid') == b.bare and i.get('subscription') == 'both' for i in items):
            return
        assert time.monotonic() < deadline, 'no subscription both: %s' % tostring(roster)
        time.sleep(0.1)


def codes(presence):
    x = presence.find(qname(NS_MUC_USER, 'x'))
    return {int(s.get('code')) for s in x.findall(qname(NS_MUC_USER, 'status'))} if x is not None \
        else set()


def join(actor, room, nick, inner=''):
    """Join room; the self-presence, or the error presence."""
    full = '%s/%s' % (room, nick)
    actor.send("<presence to='%s'><x xmlns='%s'>%s</x></presence>" % (full, NS_MUC, inner))
    presence = actor.wait(lambda e: e.tag == PRESENCE and e.get('from') == full and
                          (e.get('type') == 'error' or 110 in codes(e)),
                          'self-presence in %s' % full)
    if presence.get('type') != 'error':
        actor.wait(lambda e: e.tag == MESSAGE and e.get('from') == room and
                   e.find(qname(NS_CLIENT, 'subject')) is not None, 'subject of %s' % room)
    return presence


def room_form(fields):
    values = ''.join("<field var='%s'><value>%s</value></field>" % kv for kv in fields.items())
    return ("<query xmlns='%s'><x xmlns='%s' type='submit'><field var='FORM_TYPE'>"
            "<value>%s#roomconfig</value></field>%s</x></query>"
            % (NS_MUC_OWNER, NS_DATA, NS_MUC, values))


def create_room(owner, room, nick, **fields):
    presence = join(owner, room, nick)
    assert 201 in codes(presence), tostring(presence)
    owner.ok('set', room, room_form(fields))


def set_affiliation(actor, room, jid, affiliation):
    return actor.iq('set', room, "<query xmlns='%s'><item affiliation='%s' jid='%s'/></query>"
                    % (NS_MUC_ADMIN, affiliation, jid))


def groupchat(actor, room, body, extra=''):
    """Send a groupchat message; the room's reflection of it."""
    actor.send("<message to='%s' type='groupchat'><body>%s</body>%s</message>"
               % (room, body, extra))
    return actor.wait(lambda e: e.tag == MESSAGE and e.get('type') == 'groupchat' and
                      e.findtext(qname(NS_CLIENT, 'body')) == body, 'reflection of %r' % body)


def room_stanza_id(message, room):
    for sid in message.findall(qname(NS_SID, 'stanza-id')):
        if sid.get('by') == room:
            return sid.get('id')
    raise AssertionError('no stanza-id by %s in %s' % (room, tostring(message)))


def request_slot(actor, filename, size, content_type='text/plain'):
    return actor.iq('get', D, "<request xmlns='%s' filename='%s' size='%d' content-type='%s'/>"
                    % (NS_UPLOAD, filename, size, content_type))


def slot_urls(reply):
    slot = reply.find(qname(NS_UPLOAD, 'slot'))
    assert slot is not None, tostring(reply)
    return (slot.find(qname(NS_UPLOAD, 'put')).get('url'),
            slot.find(qname(NS_UPLOAD, 'get')).get('url'))


def setup():
    for user in USERS:
        server.adduser(bare(user), PASSWORD)
    alice = A['alice'] = Actor('alice', 'desk')
    bob = A['bob'] = Actor('bob', 'desk')
    mallory = A['mallory'] = Actor('mallory', 'evil')
    carol = A['carol'] = Actor('carol', 'desk')
    for actor in (alice, bob, mallory, carol):
        actor.send('<presence/>')
    subscribe_both(alice, bob)

    # alice's data in every per-account store
    alice.ok('set', None, "<query xmlns='%s'>%s</query>" % (NS_PRIVATE, ALICE_PRIVATE))
    alice.ok('set', None, "<vCard xmlns='%s'><FN>%s</FN></vCard>" % (NS_VCARD, ALICE_VCARD_FN))
    alice.ok('set', None, "<block xmlns='%s'><item jid='spam@example.net'/></block>"
             % NS_BLOCKING)
    carol.ok('set', None, "<block xmlns='%s'><item jid='%s'/></block>"
             % (NS_BLOCKING, mallory.bare))
    publish(alice, OPEN_NODE, 'o1', "<note xmlns='urn:example'>open-item</note>",
            access_model='open')
    publish(alice, PRESENCE_NODE, 'p1', "<note xmlns='urn:example'>presence-item</note>")
    publish(alice, WHITELIST_NODE, 'w1', "<note xmlns='urn:example'>whitelist-item</note>",
            access_model='whitelist')
    publish(alice, NS_BOOKMARKS, ROOM_CLUB,
            "<conference xmlns='%s' autojoin='true' name='Club'><nick>Alice</nick></conference>"
            % NS_BOOKMARKS, persist_items='true', access_model='whitelist')
    alice.send("<message to='%s' type='chat' id='mam1'><body>alice-to-bob-secret</body>"
               "</message>" % bob.bare)
    bob.wait(lambda e: e.tag == MESSAGE and
             e.findtext(qname(NS_CLIENT, 'body')) == 'alice-to-bob-secret', 'alice\'s message')

    # rooms: an open semi-anonymous one with alice, bob and mallory in it,
    # a members-only one where bob is a member, a password-protected one
    create_room(alice, ROOM_OPEN, 'Alice', **{'muc#roomconfig_persistentroom': '1'})
    assert join(bob, ROOM_OPEN, 'Bob').get('type') != 'error'
    assert join(mallory, ROOM_OPEN, 'Mallory').get('type') != 'error'
    FIXTURE['bob_open_id'] = room_stanza_id(groupchat(bob, ROOM_OPEN, 'bob-in-tea'), ROOM_OPEN)
    assert set_affiliation(alice, ROOM_OPEN, bare('grace'), 'outcast').get('type') == 'result'

    create_room(alice, ROOM_CLUB, 'Alice', **{'muc#roomconfig_membersonly': '1',
                                              'muc#roomconfig_persistentroom': '1'})
    assert set_affiliation(alice, ROOM_CLUB, bob.bare, 'member').get('type') == 'result'
    assert join(bob, ROOM_CLUB, 'Bob').get('type') != 'error'
    groupchat(bob, ROOM_CLUB, 'club-secret')

    create_room(alice, ROOM_VAULT, 'Alice', **{
        'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': VAULT_SECRET,
        'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_publicroom': '1'})
    assert join(bob, ROOM_VAULT, 'Bob', '<password>%s</password>' % VAULT_SECRET).get(
        'type') != 'error'
    groupchat(bob, ROOM_VAULT, 'vault-secret')

    # a room where bob and carol are admins
    create_room(alice, ROOM_STAFF, 'Alice')
    for admin in (bob, carol):
        assert set_affiliation(alice, ROOM_STAFF, admin.bare, 'admin').get('type') == 'result'
    assert join(bob, ROOM_STAFF, 'Bob').get('type') != 'error'

    # a resumable stream-management session of alice
    sm = A['alice_sm'] = Actor('alice', 'sm')
    sm.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    enabled = sm.wait(lambda e: e.tag == qname(NS_SM, 'enabled'), 'SM enabled')
    FIXTURE['alice_smid'] = enabled.get('id')

    # erin's usual address has logged in before (login back-off rows)
    FIXTURE['erin_address'] = fresh_address()
    Actor('erin', 'home', source=FIXTURE['erin_address']).close()


# ============================================================ the rows

# ---- private XML storage (XEP-0049 §3: only the account; <forbidden/>)

def alice_private_intact():
    reply = A['alice'].ok('get', None, "<query xmlns='%s'><secret xmlns='urn:example:diary'/>"
                          "</query>" % NS_PRIVATE)
    assert 'alice-private-note' in text_of(reply), tostring(reply)


iq_row('stranger', "alice's private storage", 'get', 'mallory', 'get', bare('alice'),
       "<query xmlns='%s'><secret xmlns='urn:example:diary'/></query>" % NS_PRIVATE,
       'auth forbidden')
iq_row('contact', "alice's private storage", 'get', 'bob', 'get', bare('alice'),
       "<query xmlns='%s'><secret xmlns='urn:example:diary'/></query>" % NS_PRIVATE,
       'auth forbidden')
iq_row('stranger', "alice's private storage", 'overwrite', 'mallory', 'set', bare('alice'),
       "<query xmlns='%s'><secret xmlns='urn:example:diary'>owned</secret></query>"
       % NS_PRIVATE, 'auth forbidden', verify=alice_private_intact)


iq_row('stranger', "alice's bookmarks through private storage (XEP-0048)", 'get', 'mallory',
       'get', bare('alice'), "<query xmlns='%s'><storage xmlns='storage:bookmarks'/></query>"
       % NS_PRIVATE, 'auth forbidden')


# ---- vCard (XEP-0054: anyone reads, only the account sets)

def alice_vcard_intact():
    reply = A['bob'].ok('get', bare('alice'), "<vCard xmlns='%s'/>" % NS_VCARD)
    assert reply.findtext('{%s}vCard/{%s}FN' % (NS_VCARD, NS_VCARD)) == ALICE_VCARD_FN, (
        tostring(reply))


iq_row('stranger', "alice's vCard", 'set', 'mallory', 'set', bare('alice'),
       "<vCard xmlns='%s'><FN>Mallory was here</FN></vCard>" % NS_VCARD, 'auth forbidden',
       verify=alice_vcard_intact)
iq_row('contact', "alice's vCard", 'set', 'bob', 'set', bare('alice'),
       "<vCard xmlns='%s'><FN>Bob was here</FN></vCard>" % NS_VCARD, 'auth forbidden',
       verify=alice_vcard_intact)


@row('stranger', "alice's vCard", 'get', 'allowed (public profile)')
def _():
    reply = A['mallory'].ok('get', bare('alice'), "<vCard xmlns='%s'/>" % NS_VCARD)
    assert ALICE_VCARD_FN in text_of(reply)


# ---- rosters (RFC 6121 §2.1.5: only the account's own; <forbidden/>)

iq_row('stranger', "alice's roster", 'get', 'mallory', 'get', bare('alice'),
       "<query xmlns='%s'/>" % NS_ROSTER, 'auth forbidden')
iq_row('contact', "alice's roster", 'get', 'bob', 'get', bare('alice'),
       "<query xmlns='%s'/>" % NS_ROSTER, 'auth forbidden')


def alice_roster_unchanged():
    roster = A['alice'].ok('get', None, "<query xmlns='%s'/>" % NS_ROSTER)
    jids = [i.get('jid') for i in roster.iter(qname(NS_ROSTER, 'item'))]
    assert bare('mallory') not in jids and jids == [bare('bob')], tostring(roster)


iq_row('stranger', "alice's roster", 'add himself', 'mallory', 'set', bare('alice'),
       "<query xmlns='%s'><item jid='%s' name='friend'/></query>" % (NS_ROSTER, bare('mallory')),
       'auth forbidden', verify=alice_roster_unchanged)
iq_row('stranger', "alice's roster", 'remove her contact', 'mallory', 'set', bare('alice'),
       "<query xmlns='%s'><item jid='%s' subscription='remove'/></query>"
       % (NS_ROSTER, bare('bob')), 'auth forbidden', verify=alice_roster_unchanged)


# ---- presence and last activity (RFC 6121 §4.3, XEP-0012 §4)

@row('stranger', "alice's presence", 'probe', 'no presence revealed')
def _():
    mallory = A['mallory']
    mallory.send("<presence to='%s' type='probe'/>" % bare('alice'))
    mallory.quiet(lambda e: e.tag == PRESENCE and e.get('from', '').startswith(bare('alice')) and
                  e.get('type') in (None, 'unavailable'), "alice's presence")


@row('stranger', "alice's presence", 'probe her full JID', 'no presence revealed')
def _():
    mallory = A['mallory']
    mallory.send("<presence to='%s' type='probe'/>" % A['alice'].jid)
    mallory.quiet(lambda e: e.tag == PRESENCE and e.get('from', '').startswith(bare('alice')) and
                  e.get('type') in (None, 'unavailable'), "alice's presence")


@row('stranger', "alice's presence", 'subscribe', 'no presence until alice approves')
def _():
    mallory = A['mallory']
    # the request stays pending: the 'pending requester' rows below use it
    mallory.send("<presence to='%s' type='subscribe'/>" % bare('alice'))
    A['alice'].wait(lambda e: e.tag == PRESENCE and e.get('type') == 'subscribe' and
                    e.get('from', '').startswith(mallory.bare), "mallory's request")
    mallory.quiet(lambda e: e.tag == PRESENCE and e.get('from', '').startswith(bare('alice')) and
                  e.get('type') in (None, 'subscribed'), "alice's presence or approval")


@row('stranger', "alice's roster", "unsolicited 'subscribed' (RFC 6121 §3.1.6)",
     'ignored: no subscription, not delivered')
def _():
    A['mallory'].send("<presence to='%s' type='subscribed'/>" % bare('alice'))
    A['alice'].quiet(lambda e: e.tag == PRESENCE and e.get('type') == 'subscribed' and
                     e.get('from', '').startswith(bare('mallory')), "mallory's 'subscribed'",
                     seconds=0.5)
    roster = A['alice'].ok('get', None, "<query xmlns='%s'/>" % NS_ROSTER)
    for item in roster.iter(qname(NS_ROSTER, 'item')):
        assert item.get('jid') != bare('mallory') or item.get('subscription') in (
            None, 'none', 'from'), tostring(roster)


@row('stranger', 'alice', "groupchat message to her bare JID (RFC 6121 §8.5.2.1.1)",
     'service-unavailable')
def _():
    mallory = A['mallory']
    mallory.send("<message to='%s' type='groupchat' id='gc-bare'><body>fake room</body>"
                 "</message>" % bare('alice'))
    refused(mallory.wait(lambda e: e.tag == MESSAGE and e.get('id') == 'gc-bare', 'the bounce'),
            'cancel service-unavailable')


iq_row('stranger', "alice's last activity", 'get', 'mallory', 'get', bare('alice'),
       "<query xmlns='%s'/>" % NS_LAST, 'auth forbidden')


# ---- blocking (XEP-0191): another's list is not served; a block holds

def alice_blocklist_unchanged():
    reply = A['alice'].ok('get', None, "<blocklist xmlns='%s'/>" % NS_BLOCKING)
    jids = [i.get('jid') for i in reply.iter(qname(NS_BLOCKING, 'item'))]
    assert jids == ['spam@example.net'], tostring(reply)


iq_row('stranger', "alice's blocklist", 'get', 'mallory', 'get', bare('alice'),
       "<blocklist xmlns='%s'/>" % NS_BLOCKING, 'cancel service-unavailable')
iq_row('stranger', "alice's blocklist", 'unblock for her', 'mallory', 'set', bare('alice'),
       "<unblock xmlns='%s'/>" % NS_BLOCKING, 'cancel service-unavailable',
       verify=alice_blocklist_unchanged)
iq_row('stranger', "alice's blocklist", 'block bob for her', 'mallory', 'set', bare('alice'),
       "<block xmlns='%s'><item jid='%s'/></block>" % (NS_BLOCKING, bare('bob')),
       'cancel service-unavailable', verify=alice_blocklist_unchanged)


@row('blocked stranger', 'carol', 'message', 'service-unavailable, nothing delivered')
def _():
    mallory = A['mallory']
    mallory.send("<message to='%s' type='chat' id='blocked1'><body>let me in</body></message>"
                 % A['carol'].jid)
    reply = mallory.wait(lambda e: e.tag == MESSAGE and e.get('id') == 'blocked1',
                         'the bounce')
    refused(reply, 'cancel service-unavailable')
    A['carol'].quiet(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'let me in',
                     "the blocked sender's message")


iq_row('blocked stranger', "carol's vCard", 'get', 'mallory', 'get', bare('carol'),
       "<vCard xmlns='%s'/>" % NS_VCARD, 'cancel service-unavailable')
iq_row('blocked stranger', 'carol', 'iq to her client', 'mallory', 'get', bare('carol') + '/desk',
       "<query xmlns='jabber:iq:version'/>", 'cancel service-unavailable')


# ---- carbons (XEP-0280): a session enables its own copies only

@row('stranger', "alice's messages", 'enable carbons on her account',
     'not-allowed, no copies')
def _():
    mallory = A['mallory']
    refused(mallory.iq('set', bare('alice'), "<enable xmlns='%s'/>" % NS_CARBONS),
            'cancel not-allowed')
    A['alice'].send("<message to='%s' type='chat'><body>not for mallory</body></message>"
                    % bare('bob'))
    mallory.quiet(lambda e: 'not for mallory' in text_of(e), "a copy of alice's chat")


# ---- push (XEP-0357): only the account registers its app servers

@row('stranger', "dave's push services", 'enable push to himself', 'forbidden, no notification')
def _():
    mallory = A['mallory']
    reply = mallory.iq('set', bare('dave'), "<enable xmlns='%s' jid='%s' node='steal'/>"
                       % (NS_PUSH, mallory.bare))
    refused(reply, 'auth forbidden')
    A['bob'].send("<message to='%s' type='chat'><body>for dave only</body></message>"
                  % bare('dave'))
    mallory.quiet(lambda e: e.tag == IQ, 'a push notification', seconds=1.5)
    assert not [r for r in mallory.requests if NS_PUBSUB in tostring(r)], mallory.requests


@row('stranger', "henry's push registration", "forge his app server's error, and iq results "
     'with short ids', 'registration kept, notification sent')
def _():
    frank = Actor('frank', 'pusher')  # the app server: an account's full JID will do
    henry = Actor('henry', 'phone')
    henry.ok('set', None, "<enable xmlns='%s' jid='%s' node='n1'/>" % (NS_PUSH, frank.jid))
    henry.close()
    mallory = A['mallory']
    for short_id in ('x', 'vn-push', 'vn-push:'):
        mallory.send("<iq type='result' id='%s' to='%s'/>" % (short_id, bare('henry')))
    mallory.send("<iq type='error' id='vn-push:1:n1' to='%s'><error type='cancel'>"
                 "<item-not-found xmlns='%s'/></error></iq>" % (bare('henry'), NS_STANZAS))
    mallory.ok('get', D, "<ping xmlns='%s'/>" % harness.NS_PING)  # all of it handled
    A['bob'].send("<message to='%s' type='chat'><body>for henry</body></message>"
                  % bare('henry'))
    frank.pump(2)
    published = [r for r in frank.requests if r.get('from') == bare('henry') and
                 r.find('{%s}pubsub/{%s}publish' % (NS_PUBSUB, NS_PUBSUB)) is not None]
    assert published, 'no notification: %s' % [tostring(r) for r in frank.requests]
    frank.close()


# ---- offline storage (XEP-0160; XEP-0013 not offered)

iq_row('stranger', "dave's offline messages", 'fetch (XEP-0013)', 'mallory', 'get', bare('dave'),
       "<offline xmlns='%s'><fetch/></offline>" % NS_OFFLINE, 'cancel service-unavailable')


# ---- forged 'from' on c2s (RFC 6120 §8.1.2.1: the server stamps it)

@row('stranger', 'bob', "message with from='alice'", "delivered from mallory's own full JID")
def _():
    A['mallory'].send("<message from='%s/desk' to='%s' type='chat'><body>forged-1</body>"
                      "</message>" % (bare('alice'), A['bob'].jid))
    msg = A['bob'].wait(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'forged-1', 'forged-1')
    assert msg.get('from') == A['mallory'].jid, tostring(msg)


@row('stranger', 'bob', "message with from=the server", "delivered from mallory's own full JID")
def _():
    A['mallory'].send("<message from='%s' to='%s' type='headline'><body>forged-2</body>"
                      "</message>" % (D, A['bob'].jid))
    msg = A['bob'].wait(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'forged-2', 'forged-2')
    assert msg.get('from') == A['mallory'].jid, tostring(msg)


@row('stranger', 'bob', "presence with from='alice'", "delivered from mallory's own full JID")
def _():
    A['mallory'].send("<presence from='%s/desk' to='%s'><status>forged-3</status></presence>"
                      % (bare('alice'), A['bob'].jid))
    presence = A['bob'].wait(lambda e: e.findtext(qname(NS_CLIENT, 'status')) == 'forged-3',
                             'forged-3')
    assert presence.get('from') == A['mallory'].jid, tostring(presence)


@row('stranger', "alice's roster", "roster get with from='alice'", 'answered with his own roster')
def _():
    mallory = A['mallory']
    mallory.counter += 1
    mallory.send("<iq type='get' id='forged-roster' from='%s/desk'><query xmlns='%s'/></iq>"
                 % (bare('alice'), NS_ROSTER))
    reply = mallory.wait(lambda e: e.tag == IQ and e.get('id') == 'forged-roster', 'the roster')
    jids = [i.get('jid') for i in reply.iter(qname(NS_ROSTER, 'item'))]
    assert bare('bob') not in jids, tostring(reply)
    A['alice'].quiet(lambda e: e.get('id') == 'forged-roster', 'the answer to the forged iq')


@row('stranger', 'dave (offline)', "message with from='alice'",
     "stored and delivered from mallory's JID")
def _():
    A['mallory'].send("<message from='%s/desk' to='%s' type='chat'><body>forged-offline</body>"
                      "</message>" % (bare('alice'), bare('dave')))
    time.sleep(0.3)
    dave = Actor('dave', 'phone')
    dave.send('<presence/>')
    msg = dave.wait(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'forged-offline',
                    'the offline message')
    assert msg.get('from') == A['mallory'].jid, tostring(msg)
    dave.close()


@row('stranger', 'alice', 'message carrying a stanza-id by her account',
     'the forged stanza-id is stripped')
def _():
    A['mallory'].send("<message to='%s' type='chat'><body>sid-1</body>"
                      "<stanza-id xmlns='%s' by='%s' id='forged-sid'/>"
                      "<stanza-id xmlns='%s' by='%s' id='forged-sid-2'/></message>"
                      % (A['alice'].jid, NS_SID, bare('alice'), NS_SID, bare('Alice')))
    msg = A['alice'].wait(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'sid-1', 'sid-1')
    ids = [s.get('id') for s in msg.findall(qname(NS_SID, 'stanza-id'))]
    assert 'forged-sid' not in ids and 'forged-sid-2' not in ids, tostring(msg)


# ---- MAM (XEP-0313 §4: only the account's own archive)

iq_row('stranger', "alice's archive", 'query', 'mallory', 'set', bare('alice'),
       "<query xmlns='%s' queryid='steal'/>" % NS_MAM, 'auth forbidden')
iq_row('contact', "alice's archive", 'query', 'bob', 'set', bare('alice'),
       "<query xmlns='%s' queryid='steal'/>" % NS_MAM, 'auth forbidden')
iq_row('stranger', "alice's archive", 'read preferences', 'mallory', 'get', bare('alice'),
       "<prefs xmlns='%s'/>" % NS_MAM, 'auth forbidden')
iq_row('stranger', "alice's archive", 'set preferences to never', 'mallory', 'set', bare('alice'),
       "<prefs xmlns='%s' default='never'/>" % NS_MAM, 'auth forbidden')
iq_row('stranger', "alice's archive", 'metadata', 'mallory', 'get', bare('alice'),
       "<metadata xmlns='%s'/>" % NS_MAM, 'auth forbidden')


@row('stranger', "alice's archive", "his own archive filtered on alice's JID",
     'nothing of alice and bob')
def _():
    mallory = A['mallory']
    form = ("<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value>"
            "</field><field var='with'><value>%s</value></field></x>" % (NS_DATA, NS_MAM,
                                                                          bare('bob')))
    mallory.ok('set', None, "<query xmlns='%s' queryid='own'>%s</query>" % (NS_MAM, form))
    mallory.quiet(lambda e: 'alice-to-bob-secret' in text_of(e),
                  "alice's archived message", seconds=0.5)


# ---- PEP (XEP-0163, XEP-0060 §6.5.9 and §7: access models, owner only)

def pep_items(node):
    return "<pubsub xmlns='%s'><items node='%s'/></pubsub>" % (NS_PUBSUB, node)


iq_row('stranger', "alice's presence-access node", 'read items', 'mallory', 'get', bare('alice'),
       pep_items(PRESENCE_NODE), 'auth not-authorized presence-subscription-required')
iq_row('stranger', "alice's whitelist node", 'read items', 'mallory', 'get', bare('alice'),
       pep_items(WHITELIST_NODE), 'cancel not-allowed closed-node')
iq_row('contact', "alice's whitelist node", 'read items', 'bob', 'get', bare('alice'),
       pep_items(WHITELIST_NODE), 'cancel not-allowed closed-node')
iq_row('stranger', "alice's bookmarks (XEP-0402)", 'read', 'mallory', 'get', bare('alice'),
       pep_items(NS_BOOKMARKS), 'cancel not-allowed closed-node')
iq_row('contact', "alice's bookmarks (XEP-0402)", 'read', 'bob', 'get', bare('alice'),
       pep_items(NS_BOOKMARKS), 'cancel not-allowed closed-node')
iq_row('stranger', "alice's legacy bookmarks (storage:bookmarks)", 'read', 'mallory', 'get',
       bare('alice'), pep_items('storage:bookmarks'), 'cancel not-allowed closed-node')


iq_row('stranger with a pending request', "alice's presence-access node", 'read items',
       'mallory', 'get', bare('alice'), pep_items(PRESENCE_NODE),
       'auth not-authorized presence-subscription-required')


@row("alice's contact without 'from'", "alice's presence-access node", 'read items',
     'not-authorized, presence-subscription-required')
def _():
    alice, carol = A['alice'], A['carol']
    # alice subscribes to carol: alice's item for carol is 'to', carol's 'from'
    alice.send("<presence to='%s' type='subscribe'/>" % carol.bare)
    carol.wait(lambda e: e.tag == PRESENCE and e.get('type') == 'subscribe', "alice's request")
    carol.send("<presence to='%s' type='subscribed'/>" % alice.bare)
    alice.wait(lambda e: e.tag == PRESENCE and e.get('type') == 'subscribed', 'the approval')
    refused(carol.iq('get', alice.bare, pep_items(PRESENCE_NODE)),
            'auth not-authorized presence-subscription-required')


@row('contact', "alice's presence-access node", 'read items', 'allowed')
def _():
    reply = A['bob'].ok('get', bare('alice'), pep_items(PRESENCE_NODE))
    assert 'presence-item' in text_of(reply), tostring(reply)


@row('stranger', "alice's open node", 'read items', 'allowed')
def _():
    reply = A['mallory'].ok('get', bare('alice'), pep_items(OPEN_NODE))
    assert 'open-item' in text_of(reply), tostring(reply)


@row('stranger', "alice's PEP nodes", 'disco items', 'lists only the open node')
def _():
    reply = A['mallory'].ok('get', bare('alice'), "<query xmlns='%s'/>" % NS_DISCO_ITEMS)
    nodes = sorted(i.get('node') for i in reply.iter(qname(NS_DISCO_ITEMS, 'item')))
    assert nodes == [OPEN_NODE], tostring(reply)


def alice_open_node_intact():
    reply = A['alice'].ok('get', None, pep_items(OPEN_NODE))
    items = reply.findall('.//{%s}item' % NS_PUBSUB)
    assert [i.get('id') for i in items] == ['o1'], tostring(reply)
    assert 'open-item' in text_of(reply), tostring(reply)


iq_row('stranger', "alice's open node", 'publish', 'mallory', 'set', bare('alice'),
       "<pubsub xmlns='%s'><publish node='%s'><item id='o1'><note xmlns='urn:example'>"
       "defaced</note></item></publish></pubsub>" % (NS_PUBSUB, OPEN_NODE), 'auth forbidden',
       verify=alice_open_node_intact)
iq_row('stranger', "alice's PEP", 'publish a new node', 'mallory', 'set', bare('alice'),
       "<pubsub xmlns='%s'><publish node='urn:example:planted'><item><note xmlns='urn:example'>"
       "x</note></item></publish></pubsub>" % NS_PUBSUB, 'auth forbidden')
iq_row('stranger', "alice's open node", 'retract an item', 'mallory', 'set', bare('alice'),
       "<pubsub xmlns='%s'><retract node='%s' notify='true'><item id='o1'/></retract></pubsub>"
       % (NS_PUBSUB, OPEN_NODE), 'auth forbidden', verify=alice_open_node_intact)
iq_row('stranger', "alice's open node", 'delete the node', 'mallory', 'set', bare('alice'),
       "<pubsub xmlns='%s'><delete node='%s'/></pubsub>" % (NS_PUBSUB_OWNER, OPEN_NODE),
       'auth forbidden', verify=alice_open_node_intact)
iq_row('stranger', "alice's whitelist node", 'read configuration', 'mallory', 'get',
       bare('alice'), "<pubsub xmlns='%s'><configure node='%s'/></pubsub>"
       % (NS_PUBSUB_OWNER, WHITELIST_NODE), 'auth forbidden')
iq_row('stranger', "alice's whitelist node", 'reconfigure to open', 'mallory', 'set',
       bare('alice'), "<pubsub xmlns='%s'><configure node='%s'><x xmlns='%s' type='submit'>"
       "<field var='FORM_TYPE' type='hidden'><value>%s#node_config</value></field>"
       "<field var='pubsub#access_model'><value>open</value></field></x></configure></pubsub>"
       % (NS_PUBSUB_OWNER, WHITELIST_NODE, NS_DATA, NS_PUBSUB), 'auth forbidden',
       verify=lambda: refused(A['mallory'].iq('get', bare('alice'), pep_items(WHITELIST_NODE)),
                              'cancel not-allowed closed-node'))


# ---- MUC (XEP-0045 §8-10: moderators, admins and owners; §6.5, §7)

def owner_query(inner=''):
    return "<query xmlns='%s'>%s</query>" % (NS_MUC_OWNER, inner)


def admin_item(**attrs):
    return "<query xmlns='%s'><item %s/></query>" % (
        NS_MUC_ADMIN, ' '.join("%s='%s'" % kv for kv in attrs.items()))


def room_still_there():
    reply = A['bob'].ok('get', ROOM_OPEN, "<query xmlns='%s'/>" % NS_DISCO_ITEMS)
    nicks = sorted(i.get('jid').split('/', 1)[1] for i in reply.iter(qname(NS_DISCO_ITEMS,
                                                                          'item')))
    assert {'Alice', 'Bob', 'Mallory'} <= set(nicks), tostring(reply)


def affiliation_of(room, jid):
    for affiliation in ('owner', 'admin', 'member', 'outcast'):
        reply = A['alice'].ok('get', room, admin_item(affiliation=affiliation))
        if jid in [i.get('jid') for i in reply.iter(qname(NS_MUC_ADMIN, 'item'))]:
            return affiliation
    return 'none'


def no_affiliation(room, jid):
    affiliation = affiliation_of(room, jid)
    assert affiliation == 'none', '%s is %s of %s' % (jid, affiliation, room)


iq_row('room occupant', 'room configuration', 'get the owner form', 'mallory', 'get', ROOM_OPEN,
       owner_query(), 'auth forbidden')
iq_row('room occupant', 'room configuration', 'submit a new configuration', 'mallory', 'set',
       ROOM_OPEN, room_form({'muc#roomconfig_membersonly': '1'}), 'auth forbidden',
       verify=room_still_there)
iq_row('room occupant', 'room', 'destroy', 'mallory', 'set', ROOM_OPEN,
       owner_query("<destroy><reason>mine now</reason></destroy>"), 'auth forbidden',
       verify=room_still_there)
iq_row('stranger (not in the room)', 'room', 'destroy', 'carol', 'set', ROOM_CLUB,
       owner_query('<destroy/>'), 'auth forbidden')
iq_row('room occupant', 'another occupant', 'kick', 'mallory', 'set', ROOM_OPEN,
       admin_item(nick='Bob', role='none'), 'auth forbidden', verify=room_still_there)
iq_row('room occupant', 'the owner', 'kick', 'mallory', 'set', ROOM_OPEN,
       admin_item(nick='Alice', role='none'), 'auth forbidden', verify=room_still_there)
iq_row('room occupant', 'another occupant', 'ban', 'mallory', 'set', ROOM_OPEN,
       admin_item(jid=bare('bob'), affiliation='outcast'), 'auth forbidden',
       verify=room_still_there)
iq_row('room occupant', 'another occupant', 'revoke voice', 'mallory', 'set', ROOM_OPEN,
       admin_item(nick='Bob', role='visitor'), 'auth forbidden')
iq_row('room occupant', 'himself', 'grant himself moderator', 'mallory', 'set', ROOM_OPEN,
       admin_item(nick='Mallory', role='moderator'), 'auth forbidden')
iq_row('room occupant', 'himself', 'grant himself owner', 'mallory', 'set', ROOM_OPEN,
       admin_item(jid=bare('mallory'), affiliation='owner'), 'auth forbidden',
       verify=lambda: no_affiliation(ROOM_OPEN, bare('mallory')))
iq_row('room occupant', 'himself', 'grant himself admin', 'mallory', 'set', ROOM_OPEN,
       admin_item(jid=bare('mallory'), affiliation='admin'), 'auth forbidden')
iq_row('stranger (not in the room)', 'members-only room', 'grant himself membership', 'mallory',
       'set', ROOM_CLUB, admin_item(jid=bare('mallory'), affiliation='member'), 'auth forbidden')
iq_row('room occupant', 'owner list', 'read', 'mallory', 'get', ROOM_OPEN,
       admin_item(affiliation='owner'), 'auth forbidden')
iq_row('room occupant', 'admin list', 'read', 'mallory', 'get', ROOM_OPEN,
       admin_item(affiliation='admin'), 'auth forbidden')
iq_row('room occupant', 'ban list', 'read', 'mallory', 'get', ROOM_OPEN,
       admin_item(affiliation='outcast'), 'auth forbidden')
iq_row('room occupant', 'member list (semi-anonymous room)', 'read', 'mallory', 'get',
       ROOM_OPEN, admin_item(affiliation='member'), 'auth forbidden')
iq_row('room occupant', 'moderator list', 'read', 'mallory', 'get', ROOM_OPEN,
       admin_item(role='moderator'), 'auth forbidden')
iq_row('member', 'members-only room', 'read the ban list', 'bob', 'get', ROOM_CLUB,
       admin_item(affiliation='outcast'), 'auth forbidden')


iq_row('admin', 'the owner', 'ban', 'bob', 'set', ROOM_STAFF,
       admin_item(jid=bare('alice'), affiliation='outcast'), 'cancel not-allowed')
iq_row('admin', 'the owner', 'kick', 'bob', 'set', ROOM_STAFF,
       admin_item(nick='Alice', role='none'), 'cancel not-allowed')
iq_row('admin', 'another admin', 'demote to member', 'bob', 'set', ROOM_STAFF,
       admin_item(jid=bare('carol'), affiliation='member'), 'cancel not-allowed')
iq_row('admin', 'himself', 'grant himself owner', 'bob', 'set', ROOM_STAFF,
       admin_item(jid=bare('bob'), affiliation='owner'), 'auth forbidden')
iq_row('admin', 'room', 'destroy', 'bob', 'set', ROOM_STAFF, owner_query('<destroy/>'),
       'auth forbidden')
iq_row('admin', 'room configuration', 'get the owner form', 'bob', 'get', ROOM_STAFF,
       owner_query(), 'auth forbidden')


@row('room occupant', 'member list (semi-anonymous room)',
     'register a nick, then read the list', 'forbidden: no real JIDs')
def _():
    mallory = A['mallory']
    alice = A['alice']
    # bob is a member with a reserved nick: his real JID is what leaks
    alice.ok('set', ROOM_OPEN, admin_item(jid=bare('bob'), affiliation='member', nick='Bob'))
    mallory.iq('set', ROOM_OPEN, "<query xmlns='%s'><username>Mal</username></query>"
               % NS_REGISTER)
    reply = mallory.iq('get', ROOM_OPEN, admin_item(affiliation='member'))
    assert bare('bob') not in tostring(reply), 'real JIDs leaked: %s' % tostring(reply)
    refused(reply, 'auth forbidden')


@row('stranger (not in the room)', 'members-only room', 'register to become a member',
     'refused, still not a member')
def _():
    reply = A['mallory'].iq('set', ROOM_CLUB, "<query xmlns='%s'><username>Mal</username>"
                            "</query>" % NS_REGISTER)
    refused(reply, 'auth registration-required', 'cancel not-allowed', 'auth forbidden')
    no_affiliation(ROOM_CLUB, bare('mallory'))


@row('stranger (not in the room)', 'members-only room', 'join', 'registration-required')
def _():
    presence = join(A['mallory'], ROOM_CLUB, 'Mallory')
    refused(presence, 'auth registration-required')


@row('banned user', 'open room', 'join', 'forbidden')
def _():
    grace = Actor('grace', 'desk')
    refused(join(grace, ROOM_OPEN, 'Grace'), 'auth forbidden')
    grace.close()


@row('banned user', 'open room archive', 'MAM query', 'forbidden')
def _():
    grace = Actor('grace', 'archive')
    refused(grace.iq('set', ROOM_OPEN, "<query xmlns='%s' queryid='ban'/>" % NS_MAM),
            'auth forbidden')
    grace.quiet(lambda e: 'bob-in-tea' in text_of(e), 'the archive', seconds=0.3)
    grace.close()


@row('stranger (not in the room)', 'password-protected room', 'join without the password',
     'not-authorized')
def _():
    refused(join(A['mallory'], ROOM_VAULT, 'Mallory'), 'auth not-authorized')


@row('stranger (not in the room)', 'password-protected room', 'join with a wrong password',
     'not-authorized')
def _():
    refused(join(A['mallory'], ROOM_VAULT, 'Mallory', '<password>guess</password>'),
            'auth not-authorized')


iq_row('stranger (not in the room)', 'members-only room archive', 'MAM query', 'mallory', 'set',
       ROOM_CLUB, "<query xmlns='%s' queryid='club'/>" % NS_MAM, 'auth forbidden')
iq_row('stranger (no password)', 'password-protected room archive', 'MAM query', 'carol', 'set',
       ROOM_VAULT, "<query xmlns='%s' queryid='vault'/>" % NS_MAM, 'auth forbidden')


@row('member', 'members-only room', 'invite a stranger (allow_invites default)',
     'forbidden, stranger not added')
def _():
    bob, mallory = A['bob'], A['mallory']
    bob.send("<message to='%s' id='inv1'><x xmlns='%s'><invite to='%s'/></x></message>"
             % (ROOM_CLUB, NS_MUC_USER, mallory.bare))
    mallory.quiet(lambda e: e.tag == MESSAGE and e.get('from') == ROOM_CLUB and
                  e.find(qname(NS_MUC_USER, 'x')) is not None, 'an invitation from a member')
    no_affiliation(ROOM_CLUB, mallory.bare)
    refused(bob.wait(lambda e: e.tag == MESSAGE and e.get('id') == 'inv1', 'the refusal'),
            'auth forbidden')


@row('stranger (not in the room)', 'open room', 'invite someone through it (spam)',
     'not-acceptable, nothing relayed')
def _():
    carol, bob = A['carol'], A['bob']
    carol.send("<message to='%s' id='inv2'><x xmlns='%s'><invite to='%s'><reason>buy now</reason>"
               "</invite></x></message>" % (ROOM_OPEN, NS_MUC_USER, bob.bare))
    refused(carol.wait(lambda e: e.tag == MESSAGE and e.get('id') == 'inv2', 'the refusal'),
            'modify not-acceptable')
    bob.quiet(lambda e: 'buy now' in text_of(e), 'the relayed invitation', seconds=0.5)


@row('stranger (not in the room)', 'open room', 'groupchat message', 'not-acceptable, not shown')
def _():
    carol = A['carol']
    carol.send("<message to='%s' type='groupchat' id='gc1'><body>outsider</body></message>"
               % ROOM_OPEN)
    refused(carol.wait(lambda e: e.tag == MESSAGE and e.get('id') == 'gc1', 'the refusal'),
            'modify not-acceptable')
    A['bob'].quiet(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'outsider',
                   "the outsider's message", seconds=0.5)


@row('stranger (not in the room)', 'open room', 'disco items', 'no occupants listed')
def _():
    reply = A['carol'].ok('get', ROOM_OPEN, "<query xmlns='%s'/>" % NS_DISCO_ITEMS)
    assert not list(reply.iter(qname(NS_DISCO_ITEMS, 'item'))), tostring(reply)


@row('stranger (not in the room)', 'occupant', 'iq through the room',
     'not-acceptable (XEP-0410 §4)')
def _():
    refused(A['carol'].iq('get', ROOM_OPEN + '/Bob', "<query xmlns='jabber:iq:version'/>"),
            'cancel not-acceptable')


@row('room occupant', 'semi-anonymous room', 'occupant presence', 'carries no real JIDs')
def _():
    dave = Actor('dave', 'muc')
    join(dave, ROOM_OPEN, 'Dave')
    seen = [e for e in dave.backlog if e.tag == PRESENCE and
            e.get('from', '').startswith(ROOM_OPEN + '/')]
    assert len(seen) >= 3, [tostring(e) for e in seen]
    for presence in seen:
        for item in presence.iter(qname(NS_MUC_USER, 'item')):
            assert item.get('jid') is None or presence.get('from').endswith('/Dave'), (
                tostring(presence))
    dave.close()


@row('room occupant', 'semi-anonymous room archive', "filter on bob's real JID",
     'forbidden: no real-JID oracle')
def _():
    form = ("<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value>"
            "</field><field var='with'><value>%s</value></field></x>" % (NS_DATA, NS_MAM,
                                                                          bare('bob')))
    reply = A['mallory'].iq('set', ROOM_OPEN, "<query xmlns='%s' queryid='oracle'>%s</query>"
                            % (NS_MAM, form))
    refused(reply, 'auth forbidden')


@row('room occupant', 'his own role', 'presence claiming owner and moderator',
     'still a participant')
def _():
    mallory = A['mallory']
    mallory.send("<presence to='%s/Mallory'><show>away</show><x xmlns='%s'><item "
                 "affiliation='owner' role='moderator'/></x></presence>" % (ROOM_OPEN, NS_MUC_USER))
    presence = mallory.wait(lambda e: e.tag == PRESENCE and e.get('from') == ROOM_OPEN +
                            '/Mallory' and e.findtext(qname(NS_CLIENT, 'show')) == 'away',
                            'his own presence')
    item = presence.find('{%s}x/{%s}item' % (NS_MUC_USER, NS_MUC_USER))
    assert item is not None and item.get('role') == 'participant', tostring(presence)
    assert item.get('affiliation') in ('none', 'member'), tostring(presence)
    refused(mallory.iq('get', ROOM_OPEN, owner_query()), 'auth forbidden')


@row('stranger (not in the room)', "an occupant's nick", 'join under it', 'conflict')
def _():
    refused(join(A['carol'], ROOM_OPEN, 'Bob'), 'cancel conflict')
    room_still_there()


@row('room occupant', "another occupant's nick", 'change his own nick to it', 'conflict')
def _():
    mallory = A['mallory']
    mallory.send("<presence to='%s/Bob'/>" % ROOM_OPEN)
    refused(mallory.wait(lambda e: e.tag == PRESENCE and e.get('from') == ROOM_OPEN + '/Bob' and
                         e.get('type') == 'error', 'the refusal'), 'cancel conflict')


@row('room occupant', 'semi-anonymous room archive', 'read it (public room)',
     'allowed, without real JIDs')
def _():
    mallory = A['mallory']
    mallory.ok('set', ROOM_OPEN, "<query xmlns='%s' queryid='tea'/>" % NS_MAM)
    mallory.pump(0.5)
    results = [e for e in mallory.backlog if e.tag == MESSAGE and
               e.find(qname(NS_MAM, 'result')) is not None and
               e.find(qname(NS_MAM, 'result')).get('queryid') == 'tea']
    assert any('bob-in-tea' in text_of(e) for e in results), [tostring(e) for e in results]
    for e in results:
        assert bare('bob') not in tostring(e) and bare('alice') not in tostring(e), tostring(e)


@row('room occupant', 'semi-anonymous room history', 'join and read it', 'no real JIDs')
def _():
    frank = Actor('frank', 'history')
    join(frank, ROOM_OPEN, 'Frank')
    history = [e for e in frank.backlog if e.tag == MESSAGE and e.get('from', '').startswith(
        ROOM_OPEN)]
    assert any('bob-in-tea' in text_of(e) for e in history), [tostring(e) for e in history]
    for e in history + [e for e in frank.backlog if e.tag == PRESENCE]:
        if e.get('from') == ROOM_OPEN + '/Frank':
            continue
        assert bare('bob') not in tostring(e) and bare('mallory') not in tostring(e), (
            tostring(e))
    frank.close()


@row('visitor', 'moderated room', 'groupchat message', 'forbidden, not shown')
def _():
    mallory, bob = A['mallory'], A['bob']
    A['alice'].ok('set', ROOM_STAFF, room_form({'muc#roomconfig_moderatedroom': '1'}))
    presence = join(mallory, ROOM_STAFF, 'Mallory')
    item = presence.find('{%s}x/{%s}item' % (NS_MUC_USER, NS_MUC_USER))
    assert item is not None and item.get('role') == 'visitor', tostring(presence)
    mallory.send("<message to='%s' type='groupchat' id='mute1'><body>unvoiced</body></message>"
                 % ROOM_STAFF)
    refused(mallory.wait(lambda e: e.tag == MESSAGE and e.get('id') == 'mute1', 'the refusal'),
            'auth forbidden')
    bob.quiet(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'unvoiced', "the visitor's message",
              seconds=0.5)


@row('room occupant', 'subject', 'change it (changesubject off)', 'forbidden')
def _():
    mallory = A['mallory']
    mallory.send("<message to='%s' type='groupchat' id='subj1'><subject>pwned</subject>"
                 "</message>" % ROOM_OPEN)
    refused(mallory.wait(lambda e: e.tag == MESSAGE and e.get('id') == 'subj1', 'the refusal'),
            'auth forbidden')


@row('room occupant', "another occupant's message", 'retract it (XEP-0424)', 'forbidden')
def _():
    mallory = A['mallory']
    mallory.send("<message to='%s' type='groupchat' id='retr1'><retract xmlns='%s' id='%s'/>"
                 "<fallback xmlns='urn:xmpp:fallback:0' for='%s'/><body>x</body></message>"
                 % (ROOM_OPEN, NS_RETRACT, FIXTURE['bob_open_id'], NS_RETRACT))
    refused(mallory.wait(lambda e: e.tag == MESSAGE and e.get('id') == 'retr1', 'the refusal'),
            'auth forbidden')


@row('room occupant', "another occupant's message", 'moderate it (XEP-0425)', 'forbidden')
def _():
    reply = A['mallory'].iq('set', ROOM_OPEN, "<moderate xmlns='%s' id='%s'><retract xmlns='%s'/>"
                            "</moderate>" % (NS_MODERATE, FIXTURE['bob_open_id'], NS_RETRACT))
    refused(reply, 'auth forbidden')


@row('room occupant', 'another occupant', 'provoke an error reply (XEP-0045 §18.1.3)',
     'the target stays in the room')
def _():
    mallory, bob = A['mallory'], A['bob']
    before = len(bob.requests)
    mallory.send("<iq type='get' id='eject1' to='%s/Bob'><query xmlns='urn:example:unknown'/>"
                 "</iq>" % ROOM_OPEN)
    bob.pump(1.0)
    assert len(bob.requests) > before, "the iq did not reach bob's client"
    mallory.quiet(lambda e: e.tag == PRESENCE and e.get('from') == ROOM_OPEN + '/Bob' and
                  e.get('type') == 'unavailable', "bob's removal from the room", seconds=1.0)
    bob.quiet(lambda e: e.tag == PRESENCE and e.get('from') == ROOM_OPEN + '/Bob' and
              e.get('type') == 'unavailable', 'his own removal from the room', seconds=0.2)
    room_still_there()
    # bob's client answered; the answer goes back to the one who asked
    refused(mallory.wait(lambda e: e.tag == IQ and e.get('id') == 'eject1', "bob's answer"),
            'cancel service-unavailable')


@row('room occupant', 'room stanza-ids', "forge one by the room's JID in other case",
     "the room's own stanza-id only")
def _():
    reflected = groupchat(A['mallory'], ROOM_OPEN, 'sid-room',
                          "<stanza-id xmlns='%s' by='%s' id='forged-room-sid'/>"
                          % (NS_SID, ROOM_OPEN.upper()))
    ids = [s.get('id') for s in reflected.findall(qname(NS_SID, 'stanza-id'))]
    assert 'forged-room-sid' not in ids, tostring(reflected)
    room_stanza_id(reflected, ROOM_OPEN)


# ---- HTTP File Upload (XEP-0363 §4-5; the PUT URL is a signed capability)

def https():
    return http.client.HTTPSConnection('127.0.0.1', server.https_port, timeout=10,
                                       context=harness.insecure_tls_context())


def path_of(url):
    parts = urllib.parse.urlsplit(url)
    return parts.path + ('?' + parts.query if parts.query else '')


def http_request(method, path, body=b'', content_type='text/plain'):
    conn = https()
    headers = {'Content-Length': str(len(body))}
    if content_type:
        headers['Content-Type'] = content_type
    conn.request(method, path, body=body if method == 'PUT' else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def alice_slot(name, size=10):
    reply = request_slot(A['alice'], name, size)
    assert reply.get('type') == 'result', tostring(reply)
    return slot_urls(reply)


@row('account', 'upload service', 'slot larger than max_file_size',
     'not-acceptable, file-too-large')
def _():
    reply = request_slot(A['mallory'], 'big.bin', UPLOAD_MAX_FILE + 1)
    refused(reply, 'modify not-acceptable')
    assert reply.find('.//{%s}file-too-large' % NS_UPLOAD) is not None, tostring(reply)


@row('account', 'upload service', 'slots beyond the quota', 'resource-constraint')
def _():
    mallory = A['mallory']
    assert request_slot(mallory, 'one.bin', UPLOAD_MAX_FILE).get('type') == 'result'
    refused(request_slot(mallory, 'two.bin', UPLOAD_QUOTA - UPLOAD_MAX_FILE + 1),
            'wait resource-constraint')


@row('component', 'upload service', 'ask for a slot', 'not-allowed (local accounts only)')
def _():
    stream = component()
    stream.send("<iq type='get' id='up1' from='%s' to='%s'><request xmlns='%s' filename='a.txt'"
                " size='5' content-type='text/plain'/></iq>" % (COMPONENT, D, NS_UPLOAD))
    refused(stream.expect(qname(NS_COMPONENT, 'iq')), 'cancel not-allowed')
    stream.close()


@row('stranger', "alice's unfinished upload", 'GET', '404')
def _():
    _, get_url = alice_slot('pending.txt')
    assert http_request('GET', path_of(get_url))[0] == 404


@row('stranger', "alice's slot", 'PUT to her GET URL (no signature)', '403, nothing stored')
def _():
    put_url, get_url = alice_slot('unsigned.txt')
    assert http_request('PUT', path_of(get_url), b'mallory!!!')[0] == 403
    assert http_request('GET', path_of(get_url))[0] == 404


@row('stranger', "alice's slot", "PUT with the signature of his own slot", '403')
def _():
    _, alice_get = alice_slot('victim.txt')
    reply = request_slot(A['mallory'], 'victim.txt', 10)
    mallory_put, _ = slot_urls(reply)
    query = urllib.parse.urlsplit(mallory_put).query
    assert http_request('PUT', path_of(alice_get) + '?' + query, b'mallory!!!')[0] == 403
    assert http_request('GET', path_of(alice_get))[0] == 404


@row('account', 'own slot', 'PUT URL with another file name', '404 or 403')
def _():
    put_url, _ = alice_slot('named.txt')
    parts = urllib.parse.urlsplit(put_url)
    tampered = parts.path.rsplit('/', 1)[0] + '/other.txt?' + parts.query
    assert http_request('PUT', tampered, b'0123456789')[0] in (403, 404)


@row('account', 'own slot', 'PUT URL with a later expiry', '403')
def _():
    put_url, _ = alice_slot('expiry.txt')
    parts = urllib.parse.urlsplit(put_url)
    query = urllib.parse.parse_qs(parts.query)
    query['expires'] = [str(int(query['expires'][0]) + 86400)]
    tampered = parts.path + '?' + urllib.parse.urlencode(query, doseq=True)
    assert http_request('PUT', tampered, b'0123456789')[0] == 403


@row('account', 'own slot', 'PUT with another size or content type', '400')
def _():
    put_url, _ = alice_slot('typed.txt')
    assert http_request('PUT', path_of(put_url), b'0123456789', 'text/html')[0] == 400
    assert http_request('PUT', path_of(put_url), b'0123456789abc')[0] == 400


@row('stranger', 'upload directory', 'GET with ../ in the path', '404')
def _():
    for path in ('/upload/../vestnik.yaml', '/upload/..%2f..%2fvestnik.yaml',
                 '/upload/%2e%2e/%2e%2e/vestnik.yaml', '/upload', '/upload/', '/upload//',
                 '/upload/' + '0' * 32 + '/'):
        status, body = http_request('GET', path)
        assert status in (400, 404) and b'data_dir' not in body, (path, status)


@row('stranger', "alice's finished upload", 'PUT again with her URL', '409, file unchanged')
def _():
    put_url, get_url = alice_slot('final.txt')
    assert http_request('PUT', path_of(put_url), b'0123456789')[0] == 201
    assert http_request('PUT', path_of(put_url), b'mallory!!!')[0] == 409
    assert http_request('GET', path_of(get_url)) == (200, b'0123456789')


@row('holder of the PUT URL', "alice's slot", 'a second PUT while the first is running',
     '409, the first upload wins')
def _():
    size = 20000
    put_url, get_url = alice_slot('race.bin', size)
    first = harness.insecure_tls_context().wrap_socket(
        socket.create_connection(('127.0.0.1', server.https_port), timeout=10),
        server_hostname=D)
    first.sendall(('PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n'
                   'Content-Length: %d\r\n\r\n' % (path_of(put_url), D, size)).encode()
                  + b'A' * (size // 2))
    time.sleep(0.3)
    second = http_request('PUT', path_of(put_url), b'B' * size)[0]
    first.sendall(b'A' * (size - size // 2))
    answer = first.recv(4096)
    first.close()
    assert answer.startswith(b'HTTP/1.1 201'), answer[:200]
    assert second == 409, 'the second PUT got %d' % second
    assert http_request('GET', path_of(get_url)) == (200, b'A' * size)


# ---- a hostile web page (a browser sends no credential of its own)

NS_HTTPBIND = 'http://jabber.org/protocol/httpbind'


def bosh_post(body, origin=WEB_ORIGIN):
    """POST to BOSH from a page of origin; (status, the reply <body/> or None)."""
    conn = https()
    conn.request('POST', '/http-bind', body=body, headers={
        'Content-Type': 'text/xml; charset=utf-8', 'Origin': origin})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, ET.fromstring(data.decode()) if response.status == 200 else None


BOSH_CREATE = ("<body xmlns='%s' rid='1000' to='%s' wait='2' hold='1' ver='1.6' "
               "xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>" % (NS_HTTPBIND, D))


@row('hostile web page', 'BOSH', 'open a session from another origin', '403')
def _():
    assert bosh_post(BOSH_CREATE, EVIL_ORIGIN)[0] == 403


@row('hostile web page', 'WebSocket', 'open a stream from another origin', '403')
def _():
    sock = harness.insecure_tls_context().wrap_socket(
        socket.create_connection(('127.0.0.1', server.https_port), timeout=10),
        server_hostname=D)
    sock.sendall(('GET /xmpp-websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n'
                  'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
                  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n'
                  'Origin: %s\r\n\r\n' % (D, EVIL_ORIGIN)).encode())
    answer = sock.recv(4096)
    sock.close()
    assert answer.startswith(b'HTTP/1.1 403'), answer[:200]


@row('hostile web page', 'upload', 'CORS preflight for a PUT from another origin',
     '403, no Access-Control-Allow-Origin')
def _():
    conn = https()
    conn.request('OPTIONS', '/upload/x/y', headers={
        'Origin': EVIL_ORIGIN, 'Access-Control-Request-Method': 'PUT'})
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 403, response.status
    assert response.getheader('Access-Control-Allow-Origin') is None, response.getheaders()


@row('allowed web page', 'alice', 'message over BOSH without logging in',
     'terminated with not-authorized, nothing delivered')
def _():
    status, created = bosh_post(BOSH_CREATE)
    assert status == 200 and created.get('sid'), (status, created)
    status, reply = bosh_post("<body xmlns='%s' rid='1001' sid='%s'><message xmlns='%s' to='%s' "
                              "type='chat'><body>from-a-web-page</body></message></body>"
                              % (NS_HTTPBIND, created.get('sid'), NS_CLIENT, bare('alice')))
    assert status == 200 and reply.get('type') == 'terminate', (status, reply)
    error = reply.find(qname(harness.NS_STREAM, 'error'))
    assert error is not None and error.find(
        qname(harness.NS_STREAM_ERRORS, 'not-authorized')) is not None, tostring(reply)
    A['alice'].quiet(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'from-a-web-page',
                     "the web page's message", seconds=0.3)


@row('stranger', 'BOSH sessions', 'post to a session id he made up',
     'terminated with item-not-found')
def _():
    status, reply = bosh_post("<body xmlns='%s' rid='5000' sid='%s'><message xmlns='%s' to='%s'>"
                              "<body>guessed</body></message></body>"
                              % (NS_HTTPBIND, '0' * 32, NS_CLIENT, bare('alice')))
    assert status == 200 and reply.get('type') == 'terminate', (status, reply)
    assert reply.get('condition') == 'item-not-found', tostring(reply)
    A['alice'].quiet(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'guessed',
                     'the guessed session\'s message', seconds=0.3)


@row('hostile web page', 'uploaded HTML and SVG files', 'open them as pages of the server',
     'nosniff, sandbox CSP, HTML as attachment')
def _():
    page = b'<script>alert(document.domain)</script>'
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for name, content_type, body in (('page.html', 'text/html', page),
                                     ('pic.svg', 'image/svg+xml', svg)):
        reply = request_slot(A['mallory'], name, len(body), content_type)
        put_url, get_url = slot_urls(reply)
        assert http_request('PUT', path_of(put_url), body, content_type)[0] == 201
        conn = https()
        conn.request('GET', path_of(get_url))
        response = conn.getresponse()
        response.read()
        conn.close()
        headers = response.getheaders()
        assert response.status == 200, response.status
        assert response.getheader('X-Content-Type-Options') == 'nosniff', headers
        assert 'sandbox' in (response.getheader('Content-Security-Policy') or ''), headers
        if content_type == 'text/html':
            assert (response.getheader('Content-Disposition') or '').startswith('attachment'), (
                headers)


@row('account', 'upload service', 'content type with CR LF (response header injection)',
     'bad-request')
def _():
    reply = A['mallory'].iq('get', D, "<request xmlns='%s' filename='a.txt' size='5' "
                            "content-type='text/plain&#13;&#10;Set-Cookie: a=b'/>" % NS_UPLOAD)
    refused(reply, 'modify bad-request')


# ---- SASL (RFC 6120 §6.5, RFC 4422, RFC 4616)

def tls_stream(source=None):
    stream = harness.RawStream(server.c2s_port, source=source)
    stream.open()
    stream.starttls()
    return stream


def plain(authzid, user, password):
    return base64.b64encode(('%s\0%s\0%s' % (authzid, user, password)).encode()).decode()


def sasl_refused(stream, mechanism, initial, condition):
    stream.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (harness.NS_SASL, mechanism,
                                                              initial))
    got = stream.sasl_failure()
    assert got == [condition], 'expected <%s/>, got %s' % (condition, got)


@row('unauthenticated stream', 'SASL', 'a mechanism not offered (ANONYMOUS)', 'invalid-mechanism')
def _():
    stream = tls_stream()
    sasl_refused(stream, 'ANONYMOUS', '=', 'invalid-mechanism')
    stream.close()


@row('unauthenticated stream', 'SASL', 'EXTERNAL without a client certificate',
     'invalid-mechanism')
def _():
    stream = tls_stream()
    sasl_refused(stream, 'EXTERNAL', '=', 'invalid-mechanism')
    stream.close()


@row('unauthenticated stream', 'SASL', 'PLAIN before TLS', 'encryption-required')
def _():
    stream = harness.RawStream(server.c2s_port)
    stream.open()
    stream.features()
    sasl_refused(stream, 'PLAIN', plain('', 'mallory', PASSWORD), 'encryption-required')
    stream.close()


@row('account', "alice's account", 'PLAIN with authzid alice', 'invalid-authzid')
def _():
    stream = tls_stream(fresh_address())
    sasl_refused(stream, 'PLAIN', plain(bare('alice'), 'trudy', PASSWORD), 'invalid-authzid')
    stream.close()


@row('account', "alice's account", 'SCRAM-SHA-256 with authzid alice', 'invalid-authzid')
def _():
    stream = tls_stream(fresh_address())
    scram = harness.Scram('sha256', 'trudy', PASSWORD)
    scram.gs2_header = ('n,a=%s,' % bare('alice')).encode()
    stream.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                % (harness.NS_SASL, scram.mechanism, harness.b64(scram.client_first())))
    challenge = stream.expect(qname(harness.NS_SASL, 'challenge'))
    stream.send("<response xmlns='%s'>%s</response>" % (
        harness.NS_SASL, harness.b64(scram.client_final(base64.b64decode(challenge.text)))))
    assert stream.sasl_failure() == ['invalid-authzid']
    stream.close()


@row('stranger', "alice's account", 'wrong password', 'not-authorized')
def _():
    stream = tls_stream(fresh_address())
    sasl_refused(stream, 'PLAIN', plain('', 'frank', 'guess'), 'not-authorized')
    stream.close()


@row('stranger', 'a name with no account', 'any password',
     'not-authorized, as for a wrong password')
def _():
    stream = tls_stream(fresh_address())
    sasl_refused(stream, 'PLAIN', plain('', 'nobody-here', 'guess'), 'not-authorized')
    stream.close()


def sasl2(stream, mechanism, initial, children=''):
    """One SASL2 <authenticate/> (XEP-0388); the answer."""
    stream.send("<authenticate xmlns='%s' mechanism='%s'><initial-response>%s</initial-response>"
                "%s</authenticate>" % (NS_SASL2, mechanism, harness.b64(initial), children))
    return stream.next_element()


def sasl2_failure(answer):
    assert answer.tag == qname(NS_SASL2, 'failure'), tostring(answer)
    return [c.tag.split('}')[1] for c in answer if c.tag.startswith('{%s}' % harness.NS_SASL)]


USER_AGENT = "<user-agent id='matrix-ua'><software>matrix</software></user-agent>"


@row('account', "alice's account", 'SASL2 PLAIN with authzid alice', 'invalid-authzid')
def _():
    stream = tls_stream(fresh_address())
    answer = sasl2(stream, 'PLAIN', ('%s\0trudy\0%s' % (bare('alice'), PASSWORD)).encode())
    assert sasl2_failure(answer) == ['invalid-authzid']
    stream.close()


@row('account', "alice's account", "log in as alice with his own FAST token (XEP-0484)",
     'not-authorized')
def _():
    stream = tls_stream()
    answer = sasl2(stream, 'PLAIN', ('\0trudy\0%s' % PASSWORD).encode(), USER_AGENT +
                   "<request-token xmlns='%s' mechanism='HT-SHA-256-NONE'/>" % NS_FAST)
    token = answer.find(qname(NS_FAST, 'token'))
    assert answer.tag == qname(NS_SASL2, 'success') and token is not None, tostring(answer)
    stream.close()
    stream = tls_stream(fresh_address())
    proof = hmac.new(token.get('token').encode(), b'Initiator', hashlib.sha256).digest()
    answer = sasl2(stream, 'HT-SHA-256-NONE', b'alice\0' + proof,
                   USER_AGENT + "<fast xmlns='%s'/>" % NS_FAST)
    assert sasl2_failure(answer) == ['not-authorized']
    stream.close()


def scram_first(user):
    """The server-first-message of SCRAM-SHA-256 for user, as a dict."""
    stream = tls_stream()
    scram = harness.Scram('sha256', user, 'any-password')
    stream.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                % (harness.NS_SASL, scram.mechanism, harness.b64(scram.client_first())))
    challenge = stream.expect(qname(harness.NS_SASL, 'challenge'))
    stream.send("<abort xmlns='%s'/>" % harness.NS_SASL)
    stream.close()
    text = base64.b64decode(challenge.text).decode()
    return dict(item.split('=', 1) for item in text.split(','))


@row('stranger', 'account names', 'SCRAM challenge for a name with no account',
     'looks like an account: same iterations, stable salt of the same size')
def _():
    real = scram_first('alice')
    fake = scram_first('nobody-at-all')
    again = scram_first('nobody-at-all')
    assert fake['i'] == real['i'], 'iterations differ: %s for accounts, %s for others' % (
        real['i'], fake['i'])
    assert len(base64.b64decode(fake['s'])) == len(base64.b64decode(real['s'])), (real, fake)
    assert again['s'] == fake['s'], 'the salt of an unknown name changes between attempts'


@row('stranger', 'the SM session of alice', 'resume it (XEP-0198)', 'failed item-not-found')
def _():
    stream = tls_stream()
    stream.auth_plain('mallory', PASSWORD)
    stream.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, FIXTURE['alice_smid']))
    failed = stream.expect(qname(NS_SM, 'failed'))
    assert failed.find(qname(NS_STANZAS, 'item-not-found')) is not None, tostring(failed)
    stream.close()


def failed_logins(user, source, count):
    for _ in range(count):
        stream = tls_stream(source)
        stream.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                    % (harness.NS_SASL, plain('', user, 'wrong-guess')))
        stream.sasl_failure()
        stream.close()


@row('stranger', "erin's account", 'five wrong passwords from his address',
     'erin still logs in from her usual address')
def _():
    attacker = fresh_address()
    FIXTURE['attacker_address'] = attacker
    failed_logins('erin', attacker, 6)
    Actor('erin', 'home', source=FIXTURE['erin_address']).close()


@row('stranger', 'login back-off', "his own address after guessing erin's password",
     'held: temporary-auth-failure')
def _():
    stream = tls_stream(FIXTURE['attacker_address'])
    sasl_refused(stream, 'PLAIN', plain('', 'trudy', PASSWORD), 'temporary-auth-failure')
    stream.close()


# ---- unauthenticated c2s streams (RFC 6120 §4.9.3.12, §5.3.1)

@row('unauthenticated stream', 'a component and the MUC service', 'open a client stream to them',
     'host-unknown stream error')
def _():
    for domain in (COMPONENT, MUC):
        stream = harness.RawStream(server.c2s_port)
        stream.open(to=domain)
        stream.expect_stream_error('host-unknown')


@row('unauthenticated stream', 'alice', 'message before TLS', 'policy-violation stream error')
def _():
    stream = harness.RawStream(server.c2s_port)
    stream.open()
    stream.features()
    stream.send("<message to='%s'><body>pre-tls</body></message>" % bare('alice'))
    stream.expect_stream_error('policy-violation')
    A['alice'].quiet(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'pre-tls',
                     'the pre-TLS message', seconds=0.3)


@row('unauthenticated stream', 'alice', 'message after TLS, before SASL',
     'not-authorized stream error')
def _():
    stream = tls_stream()
    stream.send("<message to='%s'><body>pre-auth</body></message>" % bare('alice'))
    stream.expect_stream_error('not-authorized')
    A['alice'].quiet(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'pre-auth',
                     'the unauthenticated message', seconds=0.3)


@row('unauthenticated stream', "alice's roster", 'roster get before SASL',
     'not-authorized stream error')
def _():
    stream = tls_stream()
    stream.send("<iq type='get' id='r1' to='%s'><query xmlns='%s'/></iq>"
                % (bare('alice'), NS_ROSTER))
    stream.expect_stream_error('not-authorized')


@row('authenticated, unbound stream', 'alice', 'message before resource binding',
     'not-authorized stream error')
def _():
    stream = tls_stream()
    stream.auth_plain('mallory', PASSWORD)
    stream.send("<message to='%s'><body>pre-bind</body></message>" % bare('alice'))
    stream.expect_stream_error('not-authorized')


@row('unauthenticated stream', "alice's account", 'register her username again (XEP-0077)',
     'conflict, password unchanged')
def _():
    stream = tls_stream()
    stream.send("<iq type='set' id='reg1'><query xmlns='%s'><username>alice</username>"
                "<password>taken-over</password></query></iq>" % NS_REGISTER)
    refused(stream.expect(IQ), 'cancel conflict')
    stream.close()
    Actor('alice', 'check').close()


@row('unauthenticated stream', "alice's account", 'register ALICE or fullwidth alice',
     'conflict: the same name after PRECIS mapping')
def _():
    stream = tls_stream()
    for n, name in enumerate(('ALICE', '\uff41\uff4c\uff49\uff43\uff45')):
        stream.send("<iq type='set' id='reg3-%d'><query xmlns='%s'><username>%s</username>"
                    "<password>taken-over</password></query></iq>" % (n, NS_REGISTER, name))
        refused(stream.expect(IQ), 'cancel conflict')
    stream.close()


@row('unauthenticated stream', "alice's account", 'remove it (XEP-0077)',
     'refused, account kept')
def _():
    stream = tls_stream()
    stream.send("<iq type='set' id='reg2'><query xmlns='%s'><username>alice</username>"
                "<password>%s</password><remove/></query></iq>" % (NS_REGISTER, 'guess'))
    reply = stream.expect(IQ)
    assert reply.get('type') == 'error', tostring(reply)
    stream.close()
    Actor('alice', 'check').close()


@row('unauthenticated stream', 'registration', 'more accounts than registrations_per_ip_per_hour',
     'policy-violation after 5')
def _():
    stream = tls_stream(fresh_address())
    answers = []
    for n in range(6):
        stream.send("<iq type='set' id='mass%d'><query xmlns='%s'><username>mass%d</username>"
                    "<password>mass-password</password></query></iq>" % (n, NS_REGISTER, n))
        answers.append(stream.expect(IQ))
    assert [a.get('type') for a in answers[:5]] == ['result'] * 5, [tostring(a) for a in answers]
    refused(answers[5], 'wait policy-violation')
    stream.close()


@row('authenticated stream', "alice's account", 'authenticate again as alice',
     'policy-violation stream error')
def _():
    stream = tls_stream()
    stream.auth_plain('trudy', PASSWORD)
    stream.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                % (harness.NS_SASL, plain('', 'alice', 'guess')))
    stream.expect_stream_error('policy-violation')


@row('stranger', "a removed account's name", 'register it again after its owner left',
     "inherits none of ivan's data or subscriptions")
def _():
    bob = A['bob']
    ivan = Actor('ivan', 'old')
    ivan.send('<presence/>')
    subscribe_both(ivan, bob)
    publish(bob, 'urn:example:bob-presence', 'b1', "<note xmlns='urn:example'>bob-status</note>")
    ivan.ok('set', None, "<query xmlns='%s'><secret xmlns='urn:example:diary'>ivan-note</secret>"
            "</query>" % NS_PRIVATE)
    ivan.ok('set', None, "<vCard xmlns='%s'><FN>Ivan the First</FN></vCard>" % NS_VCARD)
    ivan.ok('set', None, "<block xmlns='%s'><item jid='spam@example.net'/></block>" % NS_BLOCKING)
    publish(ivan, WHITELIST_NODE, 'i1', "<note xmlns='urn:example'>ivan-item</note>",
            access_model='whitelist')
    bob.send("<message to='%s' type='chat'><body>ivan-archived</body></message>" % ivan.bare)
    ivan.wait(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'ivan-archived', 'the message')
    ivan.send("<iq type='set' id='bye'><query xmlns='%s'><remove/></query></iq>" % NS_REGISTER)
    ivan.wait(lambda e: e.tag == IQ and e.get('id') == 'bye', 'the removal')
    ivan.stream.close()
    bob.send("<message to='%s' type='chat'><body>ivan-offline</body></message>" % ivan.bare)

    stream = tls_stream(fresh_address())
    stream.send("<iq type='set' id='again'><query xmlns='%s'><username>ivan</username>"
                "<password>%s</password></query></iq>" % (NS_REGISTER, PASSWORD))
    assert stream.expect(IQ).get('type') == 'result', 'ivan could not be registered again'
    stream.close()
    new = Actor('ivan', 'new')
    new.send('<presence/>')
    problems = []
    if 'ivan-note' in text_of(new.ok('get', None, "<query xmlns='%s'><secret "
                                     "xmlns='urn:example:diary'/></query>" % NS_PRIVATE)):
        problems.append('private storage')
    if 'Ivan the First' in text_of(new.ok('get', None, "<vCard xmlns='%s'/>" % NS_VCARD)):
        problems.append('vCard')
    if list(new.ok('get', None, "<query xmlns='%s'/>" % NS_ROSTER).iter(qname(NS_ROSTER,
                                                                            'item'))):
        problems.append('roster')
    if list(new.ok('get', None, "<blocklist xmlns='%s'/>" % NS_BLOCKING).iter(
            qname(NS_BLOCKING, 'item'))):
        problems.append('blocklist')
    if 'ivan-item' in text_of(new.iq('get', None, pep_items(WHITELIST_NODE))):
        problems.append('PEP node')
    new.ok('set', None, "<query xmlns='%s' queryid='inherit'/>" % NS_MAM)
    new.pump(0.5)
    seen = ' '.join(text_of(e) for e in new.backlog)
    if 'ivan-archived' in seen:
        problems.append('archive')
    if 'ivan-offline' in seen:
        problems.append('offline messages')
    for item in bob.ok('get', None, "<query xmlns='%s'/>" % NS_ROSTER).iter(
            qname(NS_ROSTER, 'item')):
        if item.get('jid') == new.bare and item.get('subscription') in ('from', 'both'):
            problems.append("bob's subscription from the old ivan")
    if new.iq('get', bob.bare, pep_items('urn:example:bob-presence')).get('type') == 'result':
        problems.append("bob's presence-access PEP node")
    if any(e.tag == PRESENCE and e.get('from', '').startswith(bob.bare) and
           e.get('type') is None for e in new.backlog):
        problems.append("bob's presence")
    new.close()
    assert not problems, 'the new ivan inherited: ' + ', '.join(problems)


@row('operator', "kate's contacts", 'vestnikctl deluser kate',
     "bob's subscription to and from kate is cancelled")
def _():
    bob = A['bob']
    kate = Actor('kate', 'desk')
    kate.send('<presence/>')
    subscribe_both(kate, bob)
    result = subprocess.run([server.ctl, '-c', server.config_path, 'deluser', kate.bare],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    deadline = time.monotonic() + 5
    while True:
        roster = bob.ok('get', None, "<query xmlns='%s'/>" % NS_ROSTER)
        left = [i for i in roster.iter(qname(NS_ROSTER, 'item')) if i.get('jid') == kate.bare and
                i.get('subscription') not in (None, 'none')]
        if not left:
            break
        assert time.monotonic() < deadline, 'bob still has %s' % tostring(left[0])
        time.sleep(0.1)


# ---- ad-hoc commands (XEP-0050) and admin operations

iq_row('account', 'server', 'execute an admin command (XEP-0133 add-user)', 'mallory', 'set', D,
       "<command xmlns='%s' node='http://jabber.org/protocol/admin#add-user' action='execute'/>"
       % NS_COMMANDS, 'cancel item-not-found')
iq_row('account', 'server', 'iq in an unknown namespace', 'mallory', 'get', D,
       "<query xmlns='urn:example:admin'/>", 'cancel service-unavailable')


@row('account', "alice's command session", 'continue it with her session id',
     'bad-request, bad-sessionid')
def _():
    started = A['alice'].ok('set', D, "<command xmlns='%s' node='language' action='execute'/>"
                            % NS_COMMANDS)
    sessionid = started.find(qname(NS_COMMANDS, 'command')).get('sessionid')
    assert sessionid, tostring(started)
    reply = A['mallory'].iq('set', D, "<command xmlns='%s' node='language' sessionid='%s' "
                            "action='cancel'/>" % (NS_COMMANDS, sessionid))
    refused(reply, 'modify bad-request')
    assert reply.find('.//{%s}bad-sessionid' % NS_COMMANDS) is not None, tostring(reply)
    A['alice'].ok('set', D, "<command xmlns='%s' node='language' sessionid='%s' action='cancel'/>"
                  % (NS_COMMANDS, sessionid))


@row('component', 'server commands', 'execute the Language command', 'item-not-found')
def _():
    stream = component()
    stream.send("<iq type='set' id='cmd1' from='%s' to='%s'><command xmlns='%s' node='language' "
                "action='execute'/></iq>" % (COMPONENT, D, NS_COMMANDS))
    refused(stream.expect(qname(NS_COMPONENT, 'iq')), 'cancel item-not-found')
    stream.close()


@row('component', 'server commands', 'execute the Calls command', 'item-not-found')
def _():
    stream = component()
    stream.send("<iq type='set' id='cmd2' from='%s' to='%s'><command xmlns='%s' node='calls' "
                "action='execute'/></iq>" % (COMPONENT, D, NS_COMMANDS))
    refused(stream.expect(qname(NS_COMPONENT, 'iq')), 'cancel item-not-found')
    stream.close()


# ---- calls (XEP-0353): the blocking list and each account's "Calls" setting

NS_JMI = 'urn:xmpp:jingle-message:0'


def propose(actor, to, sid):
    actor.send("<message to='%s' type='chat'><propose xmlns='%s' id='%s'><description "
               "xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>"
               "<store xmlns='urn:xmpp:hints'/></message>" % (to, NS_JMI, sid))


def is_proposal(sid):
    return lambda e: e.tag == MESSAGE and e.find(
        "{%s}propose[@id='%s']" % (NS_JMI, sid)) is not None


def calls_setting(actor, value):
    started = actor.ok('set', D, "<command xmlns='%s' node='calls' action='execute'/>"
                       % NS_COMMANDS)
    sessionid = started.find(qname(NS_COMMANDS, 'command')).get('sessionid')
    actor.ok('set', D, "<command xmlns='%s' node='calls' sessionid='%s' action='complete'>"
             "<x xmlns='jabber:x:data' type='submit'><field var='strangers'><value>%s</value>"
             "</field></x></command>" % (NS_COMMANDS, sessionid, value))


@row('account', "carol's devices (she blocked mallory)", 'ring her (XEP-0353 propose)',
     'service-unavailable; nothing rings')
def _():
    propose(A['mallory'], A['carol'].bare, 'auth-call-1')
    error = A['mallory'].wait(lambda e: e.tag == MESSAGE and e.get('type') == 'error',
                              'the error')
    refused(error, 'cancel service-unavailable')
    A['carol'].quiet(is_proposal('auth-call-1'), 'the proposal')


@row('account', "bob's devices (he declines strangers)", 'ring him (XEP-0353 propose)',
     'a reject with decline from his bare JID; nothing rings; his contact still rings')
def _():
    calls_setting(A['bob'], 'deny')
    try:
        propose(A['mallory'], A['bob'].bare, 'auth-call-2')
        reject = A['mallory'].wait(lambda e: e.tag == MESSAGE and e.find(
            "{%s}reject[@id='auth-call-2']" % NS_JMI) is not None, 'the reject')
        assert reject.get('from') == A['bob'].bare, tostring(reject)
        A['bob'].quiet(is_proposal('auth-call-2'), 'the proposal')
        propose(A['alice'], A['bob'].bare, 'auth-call-3')
        A['bob'].wait(is_proposal('auth-call-3'), "alice's proposal")
    finally:
        calls_setting(A['bob'], 'allow')


@row('another local user', 'admin socket', 'connect', 'the socket is mode 0600')
def _():
    mode = stat.S_IMODE(os.stat(server.admin_socket).st_mode)
    assert mode & 0o077 == 0, oct(mode)


# ---- registration (XEP-0077 §3.3: only one's own password and account)

def victim_can_log_in(user):
    def check():
        Actor(user, 'check').close()
    return check


iq_row('account', "dave's password", 'change it through the server (username dave)', 'mallory',
       'set', D, "<query xmlns='%s'><username>dave</username><password>owned-now</password>"
       "</query>" % NS_REGISTER, 'auth forbidden', verify=victim_can_log_in('dave'))
iq_row('account', "dave's password", "change it at dave's bare JID", 'mallory', 'set',
       bare('dave'), "<query xmlns='%s'><username>dave</username><password>owned-now</password>"
       "</query>" % NS_REGISTER, 'cancel service-unavailable', verify=victim_can_log_in('dave'))
iq_row('account', "dave's account", "remove it at dave's bare JID", 'mallory', 'set',
       bare('dave'), "<query xmlns='%s'><remove/></query>" % NS_REGISTER,
       'cancel service-unavailable', verify=victim_can_log_in('dave'))
iq_row('account', "dave's registration", 'read it', 'mallory', 'get', bare('dave'),
       "<query xmlns='%s'/>" % NS_REGISTER, 'cancel service-unavailable')


# ---- components (XEP-0114)

def component_stream(domain=COMPONENT):
    stream = harness.RawStream(server.component_port)
    stream.open(to=domain, ns=NS_COMPONENT)
    deadline = time.monotonic() + stream.timeout
    while stream.header is None and not stream.eof:
        stream._read_some(deadline)
    return stream


def handshake(stream, secret=COMPONENT_SECRET):
    digest = hashlib.sha1((stream.header.get('id') + secret).encode()).hexdigest()
    stream.send('<handshake>%s</handshake>' % digest)


def component():
    stream = component_stream()
    handshake(stream)
    stream.expect(qname(NS_COMPONENT, 'handshake'))
    return stream


@row('component', 'TURN credentials (XEP-0215)', 'ask for them', 'forbidden (local accounts only)')
def _():
    stream = component()
    stream.send("<iq type='get' id='turn1' from='%s' to='%s'><services xmlns='%s'/></iq>"
                % (COMPONENT, D, NS_EXTDISCO))
    refused(stream.expect(qname(NS_COMPONENT, 'iq')), 'auth forbidden')
    stream.close()


@row('account', 'TURN credentials (XEP-0215)', 'ask for them', 'allowed, issued in his own name')
def _():
    reply = A['mallory'].ok('get', D, "<services xmlns='%s'/>" % NS_EXTDISCO)
    turn = [s for s in reply.iter(qname(NS_EXTDISCO, 'service')) if s.get('type') == 'turn']
    assert turn and all(s.get('username', '').endswith(':' + bare('mallory')) for s in turn), (
        tostring(reply))


def component_row(target, action, type_, payload, *allowed):
    """A row that is one iq from the component to alice's bare JID."""
    def check():
        stream = component()
        stream.send("<iq type='%s' id='c1' from='%s' to='%s'>%s</iq>"
                    % (type_, COMPONENT, bare('alice'), payload))
        refused(stream.expect(qname(NS_COMPONENT, 'iq')), *allowed)
        stream.close()
    check.__name__ = 'component | %s | %s -> %s' % (target, action, ' or '.join(allowed))
    MATRIX.append(check)


component_row("alice's private storage", 'get', 'get', "<query xmlns='%s'><secret "
              "xmlns='urn:example:diary'/></query>" % NS_PRIVATE, 'auth forbidden')
component_row("alice's roster", 'add itself', 'set', "<query xmlns='%s'><item jid='%s'/></query>"
              % (NS_ROSTER, COMPONENT), 'auth forbidden')
component_row("alice's vCard", 'set', 'set', "<vCard xmlns='%s'><FN>bot</FN></vCard>" % NS_VCARD,
              'auth forbidden')
component_row("alice's archive", 'query', 'set', "<query xmlns='%s'/>" % NS_MAM, 'auth forbidden')
component_row("alice's whitelist node", 'read items', 'get', "<pubsub xmlns='%s'><items node='%s'/>"
              "</pubsub>" % (NS_PUBSUB, WHITELIST_NODE), 'cancel not-allowed closed-node')


# The services platform (xeps/services-bus.md): the directory's iqs are a
# service's own, and a service writes only to users who started it.
SERVICES = 'services.' + D
NS_SERVICES = 'urn:vestnik:services:0'
iq_row('stranger', 'a service profile in the directory', 'publish one', 'mallory', 'set',
       SERVICES, "<profile xmlns='%s'><name>Bank</name><category>bank</category></profile>"
       % NS_SERVICES, 'auth forbidden')
iq_row('stranger', "a service's audience", 'fill one', 'mallory', 'set', SERVICES,
       "<audience xmlns='%s' name='all'><member jid='%s'/></audience>"
       % (NS_SERVICES, bare('alice')), 'auth forbidden')
iq_row('stranger', 'a broadcast', 'send one', 'mallory', 'set', SERVICES,
       "<broadcast xmlns='%s' audience='all'><message xmlns='jabber:client'><body>x</body>"
       "</message></broadcast>" % NS_SERVICES, 'auth forbidden')

# Digital documents (xeps/documents.md): only the operator's trusted issuers
# issue, revoke or learn a holder's key.
WALLET = 'documents.' + D
NS_DOCUMENTS = 'urn:vestnik:documents:0'
ISSUE_TO_ALICE = ("<issue xmlns='%s' holder='%s' type='identity'><claim name='given_name'>Alice"
                  "</claim><claim name='family_name'>L</claim><claim name='birthdate'>2000-01-01"
                  "</claim></issue>" % (NS_DOCUMENTS, bare('alice')))
iq_row('stranger', "alice's wallet", 'issue her a credential', 'mallory', 'set', WALLET,
       ISSUE_TO_ALICE, 'auth forbidden')
iq_row('stranger', "alice's wallet", 'revoke a credential', 'mallory', 'set', WALLET,
       "<revoke xmlns='%s' id='c-0000000000000000'/>" % NS_DOCUMENTS, 'auth forbidden')
iq_row('stranger', "alice's holder key", 'read it', 'mallory', 'get', WALLET,
       "<holder-key xmlns='%s' holder='%s'/>" % (NS_DOCUMENTS, bare('alice')), 'auth forbidden')


def sign_request(holder, title):
    text = 'Terms %s' % title
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=')
    return ("<sign xmlns='%s' holder='%s'><title>%s</title><document media-type='text/plain' "
            "sha-256='%s'>%s</document></sign>"
            % (NS_DOCUMENTS, bare(holder), title, digest.decode(), text))


@row('stranger', "bob's pending requests", 'fill them all with sign requests',
     'wait resource-constraint after max_pending_per_asker; others still reach bob')
def _():
    # Bob's queue (max_pending, 10) is his, not the first asker's: one asker
    # holds at most max_pending_per_asker (3) of it until bob answers.
    answers = [A['mallory'].iq('set', WALLET, sign_request('bob', 'flood-%d' % i))
               for i in range(6)]
    kinds = [a.get('type') for a in answers]
    assert kinds == ['result'] * 3 + ['error'] * 3, kinds
    refused(answers[3], 'wait resource-constraint')
    A['alice'].ok('set', WALLET, sign_request('bob', 'from-alice'))


@row('component', "alice's wallet", 'issue her a credential', 'auth forbidden')
def _():
    stream = component()
    stream.send("<iq type='set' id='d1' from='%s' to='%s'>%s</iq>"
                % (COMPONENT, WALLET, ISSUE_TO_ALICE))
    refused(stream.expect(qname(NS_COMPONENT, 'iq')), 'auth forbidden')
    stream.close()


@row('component', 'alice', 'message her before she started the service',
     'cancel forbidden (not-started)')
def _():
    stream = component()
    stream.send("<message id='spam1' from='ads@%s' to='%s' type='chat'><body>BUY</body>"
                "</message>" % (COMPONENT, bare('alice')))
    reply = stream.expect(qname(NS_COMPONENT, 'message'))
    refused(reply, 'cancel forbidden')
    error = [c for c in reply if c.tag.endswith('}error')][0]
    assert error.find('{%s}not-started' % NS_SERVICES) is not None, tostring(reply)
    stream.close()


@row('component', 'alice', "message type='error' with a body before she started the service",
     'dropped, nothing delivered')
def _():
    # An error answers what the user sent; she sent the service nothing, so
    # its text would reach her unasked, past consent, rate and quota.
    stream = component()
    stream.send("<message id='spam2' type='error' from='ads@%s' to='%s'><body>err-spam</body>"
                "<error type='cancel'><undefined-condition xmlns='%s'/><text xmlns='%s'>"
                "err-spam</text></error></message>"
                % (COMPONENT, A['alice'].jid, NS_STANZAS, NS_STANZAS))
    A['alice'].quiet(lambda e: 'err-spam' in tostring(e), "the service's unasked error",
                     seconds=0.5)
    stream.close()


@row('component', 'alice', 'subscription request with a text before she started the service',
     'cancel forbidden (not-started), nothing delivered')
def _():
    stream = component()
    stream.send("<presence id='spam3' type='subscribe' from='ads@%s' to='%s'><status>sub-spam"
                "</status></presence>" % (COMPONENT, bare('alice')))
    reply = stream.expect(qname(NS_COMPONENT, 'presence'))
    refused(reply, 'cancel forbidden')
    A['alice'].quiet(lambda e: 'sub-spam' in tostring(e), "the service's subscription request",
                     seconds=0.5)
    stream.close()


@row('unauthenticated component', 'alice', 'message before the handshake',
     'not-authorized stream error')
def _():
    stream = component_stream()
    stream.send("<message from='x@%s' to='%s'><body>pre-handshake</body></message>"
                % (COMPONENT, bare('alice')))
    stream.expect_stream_error('not-authorized')


@row('unauthenticated component', 'component domain', 'handshake with a wrong secret',
     'not-authorized stream error')
def _():
    stream = component_stream()
    handshake(stream, 'guessed-secret')
    stream.expect_stream_error('not-authorized')


@row('unauthenticated component', 'the server host', "stream to a host's domain",
     'host-unknown stream error')
def _():
    stream = component_stream(D)
    stream.expect_stream_error('host-unknown')


@row('component', 'bob', "message from alice's JID", 'invalid-from stream error, not delivered')
def _():
    stream = component()
    stream.send("<message from='%s' to='%s' type='chat'><body>comp-forged</body></message>"
                % (A['alice'].jid, A['bob'].jid))
    stream.expect_stream_error('invalid-from')
    A['bob'].quiet(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'comp-forged',
                   "the component's forged message", seconds=0.3)


@row('component', 'bob', "message from the server's domain", 'invalid-from stream error')
def _():
    stream = component()
    stream.send("<message from='%s' to='%s' type='headline'><body>comp-host</body></message>"
                % (D, A['bob'].jid))
    stream.expect_stream_error('invalid-from')


@row('component', 'bob', 'message from a JID at its own domain', 'allowed, delivered as sent')
def _():
    stream = component()
    # Bob starts the service (xeps/services-bus.md §5): it may write to him now.
    A['bob'].send("<message to='news@%s' type='chat'><body>start</body></message>" % COMPONENT)
    stream.expect(qname(NS_COMPONENT, 'message'))
    stream.send("<message from='news@%s' to='%s' type='chat'><body>comp-own</body></message>"
                % (COMPONENT, A['bob'].jid))
    msg = A['bob'].wait(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 'comp-own', 'comp-own')
    assert msg.get('from') == 'news@' + COMPONENT, tostring(msg)
    stream.close()


# ---- s2s (RFC 6120 §13.? invalid-from, XEP-0220)

def s2s_secure(sender):
    def open_s2s(stream):
        stream._restart_parser()
        stream.send("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' "
                    "xmlns:db='%s' from='%s' to='%s' version='1.0'>"
                    % (NS_SERVER, harness.NS_STREAM, NS_DIALBACK, sender, D))
        return stream.features()
    stream = harness.RawStream(server.s2s_port)
    open_s2s(stream)
    stream.send("<starttls xmlns='%s'/>" % harness.NS_TLS)
    stream.expect(qname(harness.NS_TLS, 'proceed'))
    stream.sock = harness.insecure_tls_context().wrap_socket(stream.sock, server_hostname=D)
    open_s2s(stream)
    return stream


@row('unauthenticated server', 'alice', 'stanza before dialback', 'invalid-from stream error')
def _():
    stream = s2s_secure(REMOTE)
    stream.send("<message xmlns='%s' from='eve@%s' to='%s'><body>s2s-early</body></message>"
                % (NS_SERVER, REMOTE, bare('alice')))
    stream.expect_stream_error('invalid-from')
    A['alice'].quiet(lambda e: e.findtext(qname(NS_CLIENT, 'body')) == 's2s-early',
                     'the unauthenticated s2s message', seconds=0.3)


@row('unauthenticated server', 'dialback', "claim this server's own domain", 'invalid-from')
def _():
    stream = s2s_secure(REMOTE)
    stream.send("<db:result from='%s' to='%s'>any-key</db:result>" % (D, D))
    stream.expect_stream_error('invalid-from')


@row('unauthenticated server', 'dialback', 'ask for a domain not served here',
     'host-unknown')
def _():
    stream = s2s_secure(REMOTE)
    stream.send("<db:result from='%s' to='elsewhere.example'>any-key</db:result>" % REMOTE)
    stream.expect_stream_error('host-unknown')


@row('unauthenticated server', 'SASL EXTERNAL', 'without a client certificate', 'not-authorized')
def _():
    stream = s2s_secure(REMOTE)
    stream.send("<auth xmlns='%s' mechanism='EXTERNAL'>=</auth>" % harness.NS_SASL)
    assert stream.sasl_failure() == ['not-authorized']
    stream.close()


@row('unauthenticated server', 'SASL EXTERNAL', "as this server's own domain", 'not-authorized')
def _():
    stream = s2s_secure(D)
    stream.send("<auth xmlns='%s' mechanism='EXTERNAL'>%s</auth>"
                % (harness.NS_SASL, base64.b64encode(D.encode()).decode()))
    assert stream.sasl_failure() == ['not-authorized']
    stream.close()


@row('unauthenticated server', 'alice', 'stanza before TLS', 'policy-violation stream error')
def _():
    stream = harness.RawStream(server.s2s_port)
    stream.send("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' "
                "xmlns:db='%s' from='%s' to='%s' version='1.0'>"
                % (NS_SERVER, harness.NS_STREAM, NS_DIALBACK, REMOTE, D))
    stream.features()
    stream.send("<message xmlns='%s' from='eve@%s' to='%s'><body>s2s-plain</body></message>"
                % (NS_SERVER, REMOTE, bare('alice')))
    stream.expect_stream_error('policy-violation')


if __name__ == '__main__':
    harness.run(MATRIX, server=server, setup=setup, timeout=60)
