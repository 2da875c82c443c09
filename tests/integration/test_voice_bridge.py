#!/usr/bin/env python3
"""test_voice_bridge.py - calling a room: the conference bridge of mod_voice.

The signalling half, with slixmpp clients and Jingle written out by hand
(xeps/vestnik-room-calls.md): the call contact room@call.localhost is in
the host's disco#items, its presence carries XEP-0115 caps whose disco#info
lists what Conversations, Dino and Monal look for before they offer the
call button; members of a room find it in their roster (and lose it with
their membership); a non-member of a members-only room is refused at the
JMI propose and at session-initiate; an open room can be called by any
account of the server. Then the bad input: Jingle without sid or with an
unknown action, requests about unknown sessions, offers without Opus, with
video, without ICE-UDP or without a fingerprint, a second session-initiate
and a caller's session-accept (out-of-order), and limits (participants per
call); an accepted session whose ICE never completes ends with
connectivity-error; a terminated one is gone (its sid is unknown after).

The media half, real WebRTC participants in headless Chromium (the browser
call harness, tests/integration/voice/), is test_voice_room.py.
"""

import asyncio
import base64
import hashlib
import random
import xml.etree.ElementTree as ET

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness

PASSWORD = 'voice-secret'
MUC = 'conference.' + harness.DOMAIN
CALL = 'call.' + harness.DOMAIN
NS_MUC = 'http://jabber.org/protocol/muc'
NS_OWNER = NS_MUC + '#owner'
NS_ADMIN = NS_MUC + '#admin'
NS_DATA = 'jabber:x:data'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_CAPS = 'http://jabber.org/protocol/caps'
NS_ROSTER = 'jabber:iq:roster'
NS_JINGLE = 'urn:xmpp:jingle:1'
NS_JINGLE_ERRORS = 'urn:xmpp:jingle:errors:1'
NS_RTP = 'urn:xmpp:jingle:apps:rtp:1'
NS_ICE = 'urn:xmpp:jingle:transports:ice-udp:1'
NS_DTLS = 'urn:xmpp:jingle:apps:dtls:0'
NS_GROUP = 'urn:xmpp:jingle:apps:grouping:0'
NS_JMI = 'urn:xmpp:jingle-message:0'
NS_CALL = 'urn:xmpp:vestnik:call:0'
NS_STANZAS = harness.NS_STANZA_ERRORS
USERS = ['owner', 'member', 'outsider', 'walker', 'third']
PORT_BASE = random.randrange(42000, 60000, 100)
PUBLIC = '192.0.2.7'  # public_addresses: what callers are told instead of 127.0.0.1
# What a client checks before it offers a call (Conversations' RtpCapability,
# Dino's and Monal's checks for JMI).
CALL_FEATURES = {NS_JINGLE, NS_RTP, 'urn:xmpp:jingle:apps:rtp:audio', NS_ICE, NS_DTLS, NS_JMI}


def jid(user):
    return '%s@%s' % (user, harness.DOMAIN)


def q(ns, name):
    return '{%s}%s' % (ns, name)


class Server(harness.Server):
    """The harness's server with rosters, presence, MUC and the bridge."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n'
                    '  presence:\n'
                    '  muc:\n'
                    '  voice:\n'
                    '    addresses: 127.0.0.1\n'
                    '    public_addresses: %s\n'
                    '    port_min: %d\n'
                    '    port_max: %d\n'
                    '    max_participants: 2\n'
                    '    connect_timeout: 3\n' % (PUBLIC, PORT_BASE, PORT_BASE + 99))


server = Server()


def setup():
    for user in USERS:
        server.adduser(jid(user), PASSWORD)


# ------------------------------------------------------------------ clients

async def login(user, resource='phone'):
    client = harness.Client('%s/%s' % (jid(user), resource), PASSWORD)
    client.register_plugin('xep_0045')
    client.presences = asyncio.Queue()
    client.add_event_handler('presence', client.presences.put_nowait)
    client.stanzas = asyncio.Queue()
    client.register_handler(Callback('every message', MatchXPath('{%s}message' % harness.NS_CLIENT),
                                     client.stanzas.put_nowait))
    client.jingle = asyncio.Queue()
    client.register_handler(Callback('jingle', MatchXPath('{%s}iq/{%s}jingle' % (
        harness.NS_CLIENT, NS_JINGLE)), client.jingle.put_nowait))
    client.coin = asyncio.Queue()
    client.pushes = asyncio.Queue()
    client.register_handler(Callback('roster push', MatchXPath('{%s}iq/{%s}query' % (
        harness.NS_CLIENT, NS_ROSTER)), client.pushes.put_nowait))
    await client.login(server)
    await client.get_roster()  # roster pushes reach those who asked
    client.send_presence()     # presence to the bare JID reaches the available
    return client


async def next_matching(queue, pred, what, timeout=5):
    async def find():
        while True:
            st = await queue.get()
            if pred(st):
                return st
    try:
        return await asyncio.wait_for(find(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError('no %s within %ds' % (what, timeout)) from None


def make_iq(client, to, itype, payload):
    iq = client.make_iq(ito=to, itype=itype)
    iq.append(ET.fromstring(payload))
    return iq


async def iq_result(client, to, itype, payload):
    return await make_iq(client, to, itype, payload).send(timeout=5)


def conditions(st):
    """(type, stanza condition, Jingle condition or None) of an error."""
    assert st['type'] == 'error', 'expected an error, got %s' % st
    error = st.xml.find(q(harness.NS_CLIENT, 'error'))
    stanza = [c.tag.split('}')[1] for c in error if c.tag.startswith('{%s}' % NS_STANZAS)
              and not c.tag.endswith('}text')]
    jingle = [c.tag.split('}')[1] for c in error if c.tag.startswith('{%s}' % NS_JINGLE_ERRORS)]
    return error.get('type'), stanza[0], jingle[0] if jingle else None


async def iq_error(client, to, itype, payload):
    return conditions(await client.iq_error(make_iq(client, to, itype, payload)))


async def create_room(client, name, members_only=False):
    room = '%s@%s' % (name, MUC)
    client.send_raw("<presence to='%s/%s'><x xmlns='%s'/></presence>"
                    % (room, client.boundjid.user, NS_MUC))
    await next_matching(client.presences, lambda p: p['from'].bare == room, 'the room')
    fields = ("<field var='FORM_TYPE'><value>%s#roomconfig</value></field>"
              "<field var='muc#roomconfig_persistentroom'><value>1</value></field>"
              "<field var='muc#roomconfig_roomname'><value>Room %s</value></field>"
              "<field var='muc#roomconfig_membersonly'><value>%d</value></field>"
              % (NS_MUC, name, int(members_only)))
    await iq_result(client, room, 'set', "<query xmlns='%s'><x xmlns='%s' type='submit'>%s</x>"
                    "</query>" % (NS_OWNER, NS_DATA, fields))
    return room


async def set_affiliation(client, room, who, affiliation):
    return await iq_result(client, room, 'set', "<query xmlns='%s'><item affiliation='%s' "
                           "jid='%s'/></query>" % (NS_ADMIN, affiliation, who))


def contact(name):
    return '%s@%s' % (name, CALL)


def bridge(name):
    return contact(name) + '/bridge'


def offer(sid, media='audio', codec='opus', transport=NS_ICE, fingerprint=True, bundle=True):
    fp = ("<fingerprint xmlns='%s' hash='sha-256' setup='actpass'>%s</fingerprint>"
          % (NS_DTLS, ':'.join(['AB'] * 32))) if fingerprint else ''
    group = ("<group xmlns='%s' semantics='BUNDLE'><content name='0'/></group>"
             % NS_GROUP) if bundle else ''
    return ("<jingle xmlns='%s' action='session-initiate' sid='%s'>"
            "<content creator='initiator' name='0' senders='both'>"
            "<description xmlns='%s' media='%s'>"
            "<payload-type id='111' name='%s' clockrate='48000' channels='2'>"
            "<parameter name='useinbandfec' value='1'/></payload-type>"
            "<payload-type id='0' name='PCMU' clockrate='8000'/>"
            "<rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='1' "
            "uri='urn:ietf:params:rtp-hdrext:ssrc-audio-level'/>"
            "<rtcp-mux/></description>"
            "<transport xmlns='%s' ufrag='a1b2c3d4' pwd='0123456789abcdefghijklmn'>%s"
            "<candidate component='1' foundation='1' generation='0' id='c1' ip='127.0.0.1' "
            "network='0' port='9' priority='2130706431' protocol='udp' type='host'/>"
            "</transport></content>%s</jingle>"
            % (NS_JINGLE, sid, NS_RTP, media, codec, transport, fp, group))


def jingle_action(sid, action, inner=''):
    return "<jingle xmlns='%s' action='%s' sid='%s'>%s</jingle>" % (NS_JINGLE, action, sid, inner)


async def jingle_from(client, sid, action, timeout=5):
    def match(iq):
        j = iq.xml.find(q(NS_JINGLE, 'jingle'))
        return j is not None and j.get('sid') == sid and j.get('action') == action
    iq = await next_matching(client.jingle, match, '%s for %s' % (action, sid), timeout)
    if iq['type'] == 'set':
        iq.reply().send()
    return iq.xml.find(q(NS_JINGLE, 'jingle'))


def reason_of(jingle):
    reason = jingle.find(q(NS_JINGLE, 'reason'))
    assert reason is not None, ET.tostring(jingle)
    return [c.tag.split('}')[1] for c in reason if not c.tag.endswith('}text')][0]


def caps_ver(info):
    """XEP-0115 §5.1 from a disco#info <query/>."""
    s = ''
    for ident in sorted(info.findall(q(NS_DISCO_INFO, 'identity')),
                        key=lambda i: (i.get('category'), i.get('type'), i.get('xml:lang', ''),
                                       i.get('name', ''))):
        s += '%s/%s/%s/%s<' % (ident.get('category'), ident.get('type'),
                               ident.get('{http://www.w3.org/XML/1998/namespace}lang', ''),
                               ident.get('name', ''))
    for var in sorted(f.get('var') for f in info.findall(q(NS_DISCO_INFO, 'feature'))):
        s += var + '<'
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


# -------------------------------------------------------------------- tests

async def test_call_contact_discovery_and_caps():
    """The call domain in disco#items; the contact's disco#info has every
    feature clients look for, and its presence the caps that hash to it."""
    owner = await login('owner')
    room = await create_room(owner, 'lobby')
    items = await iq_result(owner, harness.DOMAIN, 'get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS)
    assert CALL in [i.get('jid') for i in items.xml.iter(q(NS_DISCO_ITEMS, 'item'))], items
    info = (await iq_result(owner, bridge('lobby'), 'get', "<query xmlns='%s'/>" % NS_DISCO_INFO)
            ).xml.find(q(NS_DISCO_INFO, 'query'))
    features = {f.get('var') for f in info.findall(q(NS_DISCO_INFO, 'feature'))}
    assert CALL_FEATURES <= features, features
    assert 'urn:ietf:params:xml:ns:conference-info' in features and NS_CALL in features
    assert 'urn:xmpp:jingle:apps:rtp:video' not in features, 'audio only'

    owner.send_raw("<presence to='%s' type='subscribe'/>" % contact('lobby'))
    pres = await next_matching(owner.presences, lambda p: p['from'] == bridge('lobby')
                               and p['type'] == 'available', 'the bridge presence')
    c = pres.xml.find(q(NS_CAPS, 'c'))
    assert c is not None and c.get('hash') == 'sha-1', pres
    assert c.get('ver') == caps_ver(info), (c.get('ver'), caps_ver(info))
    node = await iq_result(owner, bridge('lobby'), 'get', "<query xmlns='%s' node='%s#%s'/>"
                           % (NS_DISCO_INFO, c.get('node'), c.get('ver')))
    assert caps_ver(node.xml.find(q(NS_DISCO_INFO, 'query'))) == c.get('ver')
    # A room that does not exist has no contact.
    assert (await iq_error(owner, bridge('nowhere'), 'set', offer('s0')))[1] == 'forbidden'
    assert room
    await owner.close()


async def test_members_get_the_call_contact_in_their_roster():
    """Creating a room, or becoming a member, pushes room@call.<host> into
    the roster with the bridge's presence; losing the membership takes it
    out again."""
    owner = await login('owner')
    member = await login('member')
    room = await create_room(owner, 'club', members_only=True)
    # The creator, its owner, has it as soon as the room is configured.
    await next_matching(owner.pushes, lambda iq: any(
        i.get('jid') == contact('club') for i in iq.xml.iter(q(NS_ROSTER, 'item'))),
        "the owner's roster push")
    await set_affiliation(owner, room, jid('member'), 'member')
    push = await next_matching(member.pushes, lambda iq: iq.xml.find(
        '%s/%s' % (q(NS_ROSTER, 'query'), q(NS_ROSTER, 'item'))) is not None, 'a roster push')
    item = push.xml.find('%s/%s' % (q(NS_ROSTER, 'query'), q(NS_ROSTER, 'item')))
    assert item.get('jid') == contact('club') and item.get('subscription') == 'to', \
        ET.tostring(item)
    assert item.get('name') == 'Call: Room club', item.get('name')
    assert [g.text for g in item.findall(q(NS_ROSTER, 'group'))] == ['Room calls']
    await next_matching(member.presences, lambda p: p['from'] == bridge('club'), 'presence')
    roster = await iq_result(member, None, 'get', "<query xmlns='%s'/>" % NS_ROSTER)
    assert contact('club') in [i.get('jid') for i in roster.xml.iter(q(NS_ROSTER, 'item'))]

    # At the next login the client's probe brings the presence back.
    again = await login('member', 'laptop')
    await next_matching(again.presences, lambda p: p['from'] == bridge('club')
                        and p.xml.find(q(NS_CAPS, 'c')) is not None, 'presence after probe')
    await again.close()

    await set_affiliation(owner, room, jid('member'), 'none')
    push = await next_matching(member.pushes, lambda iq: any(
        i.get('subscription') == 'remove' for i in iq.xml.iter(q(NS_ROSTER, 'item'))),
        'the removal push')
    await owner.close()
    await member.close()


async def test_non_members_are_refused():
    """Members-only: a JMI propose from a non-member gets <reject/>, its
    session-initiate forbidden, its subscription request unsubscribed;
    the member's propose gets ringing and proceed from the bridge."""
    owner = await login('owner')
    outsider = await login('outsider')
    member = await login('member')
    room = await create_room(owner, 'private', members_only=True)
    await set_affiliation(owner, room, jid('member'), 'member')
    outsider.send_raw("<message to='%s' type='chat' id='m1'><propose xmlns='%s' id='p1'>"
                      "<description xmlns='%s' media='audio'/></propose></message>"
                      % (contact('private'), NS_JMI, NS_RTP))
    msg = await next_matching(outsider.stanzas, lambda m: m['from'] == bridge('private'),
                              'the JMI answer')
    reject = msg.xml.find(q(NS_JMI, 'reject'))
    assert reject is not None and reject.get('id') == 'p1', msg
    assert reject.find('%s/%s' % (q(NS_JINGLE, 'reason'), q(NS_JINGLE, 'decline'))) is not None
    assert (await iq_error(outsider, bridge('private'), 'set', offer('s1')))[:2] == (
        'auth', 'forbidden')
    outsider.send_raw("<presence to='%s' type='subscribe'/>" % contact('private'))
    await next_matching(outsider.presences, lambda p: p['from'] == contact('private')
                        and p['type'] == 'unsubscribed', 'unsubscribed')
    disco = await iq_error(outsider, bridge('private'), 'get', "<query xmlns='%s'/>"
                           % NS_DISCO_ITEMS)
    assert disco[1] == 'forbidden', disco

    member.send_raw("<message to='%s' type='chat' id='m2'><propose xmlns='%s' id='p2'>"
                    "<description xmlns='%s' media='audio'/></propose></message>"
                    % (contact('private'), NS_JMI, NS_RTP))
    got = []
    for _ in range(2):
        m = await next_matching(member.stanzas, lambda m: m['from'] == bridge('private'), 'JMI')
        got += [c.tag.split('}')[1] for c in m.xml if c.tag.startswith('{%s}' % NS_JMI)]
    assert got == ['ringing', 'proceed'], got
    for c in (owner, outsider, member):
        await c.close()


async def test_open_room_any_local_account_may_call():
    """An open room: any account of the server subscribes and is approved."""
    owner = await login('owner')
    walker = await login('walker')
    await create_room(owner, 'plaza')
    walker.send_raw("<presence to='%s' type='subscribe'/>" % contact('plaza'))
    await next_matching(walker.presences, lambda p: p['from'] == contact('plaza')
                        and p['type'] == 'subscribed', 'subscribed')
    await next_matching(walker.presences, lambda p: p['from'] == bridge('plaza')
                        and p['type'] == 'available', 'the bridge presence')
    await owner.close()
    await walker.close()


async def test_malformed_jingle_gets_errors():
    owner = await login('owner')
    await create_room(owner, 'errors')
    to = bridge('errors')
    assert await iq_error(owner, to, 'set', "<jingle xmlns='%s' action='session-initiate'/>"
                          % NS_JINGLE) == ('modify', 'bad-request', None)
    assert (await iq_error(owner, to, 'set', jingle_action('x', 'dance')))[1] == 'bad-request'
    for action in ('transport-info', 'session-terminate', 'session-info', 'content-add'):
        assert await iq_error(owner, to, 'set', jingle_action('nosuch', action)) == (
            'cancel', 'item-not-found', 'unknown-session'), action
    # A content without a transport's credentials is malformed.
    bad = offer('s-bad').replace("ufrag='a1b2c3d4' ", '')
    assert (await iq_error(owner, to, 'set', bad))[1] == 'bad-request'
    # Offers the bridge cannot take: acknowledged, then terminated with why.
    for sid, kwargs, reason in (('s-codec', {'codec': 'G722'}, 'failed-application'),
                                ('s-video', {'media': 'video'}, 'unsupported-applications'),
                                ('s-raw', {'transport': 'urn:xmpp:jingle:transports:raw-udp:1'},
                                 'unsupported-transports'),
                                ('s-nofp', {'fingerprint': False}, 'security-error')):
        await iq_result(owner, to, 'set', offer(sid, **kwargs))
        term = await jingle_from(owner, sid, 'session-terminate')
        assert reason_of(term) == reason, (sid, ET.tostring(term))
    await owner.close()


async def test_session_accept_then_terminate_frees_the_leg():
    """A good offer is answered with Opus 48 kHz and in-band FEC,
    rtcp-mux, the BUNDLE group, host candidates (on the public address
    configured for the bound one) and a fingerprint with setup=active; the
    caller's terminate frees the session."""
    owner = await login('owner')
    await create_room(owner, 'talk')
    to = bridge('talk')
    await iq_result(owner, to, 'set', offer('s-good'))
    accept = await jingle_from(owner, 's-good', 'session-accept')
    assert accept.get('responder') == to, ET.tostring(accept)
    content = accept.find(q(NS_JINGLE, 'content'))
    assert content.get('name') == '0' and content.get('creator') == 'initiator'
    desc = content.find(q(NS_RTP, 'description'))
    pts = desc.findall(q(NS_RTP, 'payload-type'))
    assert [(p.get('id'), p.get('name'), p.get('clockrate')) for p in pts] == [
        ('111', 'opus', '48000')], ET.tostring(desc)
    params = {p.get('name'): p.get('value') for p in pts[0].findall(q(NS_RTP, 'parameter'))}
    assert params.get('useinbandfec') == '1', params
    assert desc.find(q(NS_RTP, 'rtcp-mux')) is not None
    transport = content.find(q(NS_ICE, 'transport'))
    assert transport.get('ufrag') and transport.get('pwd'), ET.tostring(transport)
    fp = transport.find(q(NS_DTLS, 'fingerprint'))
    assert fp.get('setup') == 'active' and fp.get('hash') == 'sha-256' and len(fp.text) == 95
    cands = transport.findall(q(NS_ICE, 'candidate'))
    assert cands and all(c.get('ip') == PUBLIC and c.get('type') == 'host' and
                         PORT_BASE <= int(c.get('port')) < PORT_BASE + 100 for c in cands), \
        [c.attrib for c in cands]
    group = accept.find(q(NS_GROUP, 'group'))
    assert group is not None and group.get('semantics') == 'BUNDLE'

    # Out of order: the same sid again, and an accept from the caller.
    assert await iq_error(owner, to, 'set', offer('s-good')) == (
        'cancel', 'unexpected-request', 'out-of-order')
    assert (await iq_error(owner, to, 'set', jingle_action('s-good', 'session-accept')))[2] == \
        'out-of-order'
    await iq_result(owner, to, 'set', jingle_action(
        's-good', 'transport-info', "<content creator='initiator' name='0'><transport "
        "xmlns='%s' ufrag='a1b2c3d4' pwd='0123456789abcdefghijklmn'/></content>" % NS_ICE))
    await iq_result(owner, to, 'set', jingle_action(
        's-good', 'session-terminate', "<reason><success/></reason>"))
    assert (await iq_error(owner, to, 'set', jingle_action('s-good', 'transport-info')))[2] == \
        'unknown-session'
    await owner.close()


async def test_ice_that_never_completes_ends_with_connectivity_error():
    owner = await login('owner')
    await create_room(owner, 'silent')
    await iq_result(owner, bridge('silent'), 'set', offer('s-ice'))
    await jingle_from(owner, 's-ice', 'session-accept')
    term = await jingle_from(owner, 's-ice', 'session-terminate', timeout=15)
    assert reason_of(term) == 'connectivity-error', ET.tostring(term)
    await owner.close()


async def test_participants_per_call_limit_and_moderation():
    """max_participants 2: the third caller is busy; only moderators mute,
    and only those who are in the call."""
    owner = await login('owner')
    walker = await login('walker')
    third = await login('third')
    await create_room(owner, 'small')
    to = bridge('small')
    await iq_result(owner, to, 'set', offer('a'))
    await jingle_from(owner, 'a', 'session-accept')
    await iq_result(walker, to, 'set', offer('b'))
    await jingle_from(walker, 'b', 'session-accept')
    await iq_result(third, to, 'set', offer('c'))
    assert reason_of(await jingle_from(third, 'c', 'session-terminate')) == 'busy'

    mute = "<mute xmlns='%s' nick='%s'/>"
    assert (await iq_error(walker, to, 'set', mute % (NS_CALL, 'owner')))[1] == 'forbidden'
    assert (await iq_error(owner, to, 'set', mute % (NS_CALL, 'nobody')))[1] == 'item-not-found'
    await iq_result(owner, to, 'set', mute % (NS_CALL, 'walker'))
    await iq_result(owner, to, 'set', "<remove xmlns='%s' nick='walker'/>" % NS_CALL)
    term = await jingle_from(walker, 'b', 'session-terminate')
    assert reason_of(term) == 'decline', ET.tostring(term)
    assert term.find('%s/%s' % (q(NS_JINGLE, 'reason'), q(NS_CALL, 'removed'))) is not None
    # Its place is free again.
    await iq_result(third, to, 'set', offer('d'))
    await jingle_from(third, 'd', 'session-accept')
    # A caller whose stream closes is out of the call at once.
    await third.close()
    await asyncio.sleep(0.5)
    await iq_result(walker, to, 'set', offer('e'))
    await jingle_from(walker, 'e', 'session-accept')
    for c in (owner, walker):
        await c.close()


async def test_destroyed_room_ends_its_call_and_leaves_the_rosters():
    """The owner destroys the room: the call's sessions end with <gone/>
    and the members' roster items go; a server restart keeps them."""
    owner = await login('owner')
    member = await login('member')
    room = await create_room(owner, 'doomed', members_only=True)
    await set_affiliation(owner, room, jid('member'), 'member')
    await next_matching(member.pushes, lambda iq: any(
        i.get('jid') == contact('doomed') and i.get('subscription') == 'to'
        for i in iq.xml.iter(q(NS_ROSTER, 'item'))), 'the item')
    await iq_result(member, bridge('doomed'), 'set', offer('s-doomed'))
    await jingle_from(member, 's-doomed', 'session-accept')
    await iq_result(owner, room, 'set', "<query xmlns='%s'><destroy/></query>" % NS_OWNER)
    term = await jingle_from(member, 's-doomed', 'session-terminate')
    assert reason_of(term) == 'gone', ET.tostring(term)
    await next_matching(member.pushes, lambda iq: any(
        i.get('jid') == contact('doomed') and i.get('subscription') == 'remove'
        for i in iq.xml.iter(q(NS_ROSTER, 'item'))), 'the removal push')
    await owner.close()
    await member.close()


async def test_restart_keeps_the_roster_items():
    """A server that stops and starts again takes no item away (the rooms
    stay), and adds none twice."""
    owner = await login('owner')
    room = await create_room(owner, 'lasting', members_only=True)
    await set_affiliation(owner, room, jid('third'), 'member')
    await owner.close()
    server.restart()
    third = await login('third')
    roster = await iq_result(third, None, 'get', "<query xmlns='%s'/>" % NS_ROSTER)
    items = [i.get('jid') for i in roster.xml.iter(q(NS_ROSTER, 'item'))]
    assert items.count(contact('lasting')) == 1, items
    await next_matching(third.presences, lambda p: p['from'] == bridge('lasting'),
                        'the bridge presence after the restart')
    await third.close()


class ServerWithoutBridge(Server):
    """The same server before the bridge was enabled."""
    with_voice = False

    def write_config(self):
        super().write_config()
        if not self.with_voice:
            with open(self.config_path) as f:
                text = f.read()
            with open(self.config_path, 'w') as f:
                f.write(text[:text.index('  voice:\n')])


async def test_rooms_from_before_the_bridge_give_their_members_the_contact():
    """Members of rooms that existed before the bridge was enabled get the
    call contact when the server first starts with it."""
    before = ServerWithoutBridge()
    before.start()
    try:
        for user in ('owner', 'member'):
            before.adduser(jid(user), PASSWORD)
        owner = harness.Client('%s/setup' % jid('owner'), PASSWORD)
        owner.presences = asyncio.Queue()
        owner.add_event_handler('presence', owner.presences.put_nowait)
        await owner.login(before)
        room = await create_room(owner, 'old', members_only=True)
        await set_affiliation(owner, room, jid('member'), 'member')
        await owner.close()
        before.stop()
        before.with_voice = True
        before.write_config()
        before.start()
        member = harness.Client('%s/again' % jid('member'), PASSWORD)
        await member.login(before)
        roster = await iq_result(member, None, 'get', "<query xmlns='%s'/>" % NS_ROSTER)
        items = [i.get('jid') for i in roster.xml.iter(q(NS_ROSTER, 'item'))]
        assert items == [contact('old')], items
        await member.close()
        before.stop()
    finally:
        before.kill9()


if __name__ == '__main__':
    harness.run([test_call_contact_discovery_and_caps,
                 test_members_get_the_call_contact_in_their_roster,
                 test_non_members_are_refused,
                 test_open_room_any_local_account_may_call,
                 test_malformed_jingle_gets_errors,
                 test_session_accept_then_terminate_frees_the_leg,
                 test_ice_that_never_completes_ends_with_connectivity_error,
                 test_participants_per_call_limit_and_moderation,
                 test_destroyed_room_ends_its_call_and_leaves_the_rosters,
                 test_restart_keeps_the_roster_items,
                 test_rooms_from_before_the_bridge_give_their_members_the_contact],
                server=server, setup=setup)
