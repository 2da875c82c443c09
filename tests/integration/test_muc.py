#!/usr/bin/env python3
"""test_muc.py - Multi-User Chat (XEP-0045) with real clients.

The service at conference.localhost: discovery, creating instant and
reserved rooms, joining with history, nick conflicts and changes, private
messages, kick, ban, members-only, passwords, max occupants, configuration
forms with wrong field types, invitations, nick registration, destruction,
stanza-id and occupant-id, MUC self-ping, MAM on the room, moderation
(XEP-0425) and retraction (XEP-0424), the per-occupant message rate, rooms
per user, occupants whose session ends, persistence across a restart, and
the issue's class room: a teacher, members, a moderated message, and a
parent reading the history on two devices. Both slixmpp's own MUC plugins
and stanzas written out by hand are used, and the exact elements and
status codes that come back are checked.
"""

import asyncio
import xml.etree.ElementTree as ET

from slixmpp import JID
from slixmpp.exceptions import PresenceError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness

PASSWORD = 'muc-secret'
MUC = 'conference.' + harness.DOMAIN
NS_MUC = 'http://jabber.org/protocol/muc'
NS_USER = NS_MUC + '#user'
NS_ADMIN = NS_MUC + '#admin'
NS_OWNER = NS_MUC + '#owner'
NS_DATA = 'jabber:x:data'
NS_STANZAS = harness.NS_STANZA_ERRORS
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_DELAY = 'urn:xmpp:delay'
NS_SID = 'urn:xmpp:sid:0'
NS_OID = 'urn:xmpp:occupant-id:0'
NS_MAM = 'urn:xmpp:mam:2'
NS_RSM = 'http://jabber.org/protocol/rsm'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_FASTEN = 'urn:xmpp:fasten:0'
NS_MODERATE_0 = 'urn:xmpp:message-moderate:0'
NS_MODERATE_1 = 'urn:xmpp:message-moderate:1'
NS_RETRACT_0 = 'urn:xmpp:message-retract:0'
NS_RETRACT_1 = 'urn:xmpp:message-retract:1'
NS_REGISTER = 'jabber:iq:register'
MAX_OCCUPANTS = 50
MAX_HISTORY = 20
RATE = 15
PENDING_IQ = 5
ROOMS_PER_USER = 4
USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'teacher', 'parent1', 'parent2',
         'outsider']


def jid(user):
    return '%s@%s' % (user, harness.DOMAIN)


def room_jid(name):
    return '%s@%s' % (name, MUC)


def q(ns, name):
    return '{%s}%s' % (ns, name)


class Server(harness.Server):
    """The harness's server with presence and the MUC service."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n'
                    '  presence:\n'
                    '  muc:\n'
                    '    max_occupants: %d\n'
                    '    max_history_messages: %d\n'
                    '    max_messages_per_minute: %d\n'
                    '    max_rooms_per_user: %d\n'
                    '    max_pending_iq: %d\n'
                    % (MAX_OCCUPANTS, MAX_HISTORY, RATE, ROOMS_PER_USER, PENDING_IQ))


server = Server()


def setup():
    for user in USERS:
        server.adduser(jid(user), PASSWORD)


# ------------------------------------------------------------------ clients

async def login(user, resource='test'):
    client = harness.Client('%s/%s' % (jid(user), resource), PASSWORD)
    for plugin in ('xep_0004', 'xep_0045', 'xep_0059', 'xep_0313', 'xep_0359', 'xep_0421',
                   'xep_0422', 'xep_0424', 'xep_0425'):
        client.register_plugin(plugin)
    client.presences = asyncio.Queue()
    client.add_event_handler('presence', client.presences.put_nowait)
    # slixmpp's 'message' event only covers messages with a body.
    client.stanzas = asyncio.Queue()
    client.register_handler(Callback('every message', MatchXPath('{%s}message' % harness.NS_CLIENT),
                                     client.stanzas.put_nowait))
    await client.login(server)
    return client


async def next_matching(queue, pred, what, timeout=5):
    """The next stanza of queue for which pred holds; others are skipped."""
    async def find():
        while True:
            st = await queue.get()
            if pred(st):
                return st
    try:
        return await asyncio.wait_for(find(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError('no %s within %ds' % (what, timeout)) from None


def codes(st):
    return {int(s.get('code')) for s in st.xml.findall('%s/%s' % (q(NS_USER, 'x'),
                                                                   q(NS_USER, 'status')))}


def item(st):
    found = st.xml.find('%s/%s' % (q(NS_USER, 'x'), q(NS_USER, 'item')))
    assert found is not None, 'no muc#user item in %s' % st
    return found


def error_of(st):
    """(type, condition) of an error stanza."""
    assert st['type'] == 'error', 'expected an error, got %s' % st
    error = st.xml.find(q(harness.NS_CLIENT, 'error'))
    conditions = [c.tag.split('}')[1] for c in error if c.tag.startswith('{%s}' % NS_STANZAS)
                  and not c.tag.endswith('}text')]
    return error.get('type'), conditions[0]


async def presence_from(client, full, pred=lambda p: True, what=None):
    return await next_matching(client.presences, lambda p: p['from'] == full and pred(p),
                               what or 'presence from %s' % full)


async def message_from(client, sender, pred=lambda m: True, what=None):
    return await next_matching(client.stanzas, lambda m: m['from'] == sender and pred(m),
                               what or 'message from %s' % sender)


def send_join(client, room, nick, inner='', outer=''):
    client.send_raw("<presence to='%s/%s'><x xmlns='%s'>%s</x>%s</presence>"
                    % (room, nick, NS_MUC, inner, outer))


async def join(client, room, nick, inner='', outer=''):
    """Join; the self-presence (status 110) or the error presence.

    inner goes into the <x/> of the join, outer next to it (show, status).

    Sets client.joined_before_self (the occupants' presence) and
    client.history (the messages before the subject).
    """
    send_join(client, room, nick, inner, outer)
    full = '%s/%s' % (room, nick)
    client.joined_before_self = []

    def self_or_error(p):
        if p['type'] == 'error' or 110 in codes(p):
            return True
        if p['from'].bare == room:
            client.joined_before_self.append(p)
        return False
    pres = await next_matching(client.presences, lambda p: self_or_error(p) and p['from'] == full,
                               'self-presence or error for %s' % full)
    client.history = []
    if pres['type'] != 'error':
        def subject(m):
            if m.xml.find(q(harness.NS_CLIENT, 'subject')) is not None:
                return True
            if m['from'].bare == room:
                client.history.append(m)
            return False
        await next_matching(client.stanzas, lambda m: m['from'].bare == room and subject(m),
                            'the subject of %s' % room)
    return pres


async def join_error(client, room, nick, inner=''):
    pres = await join(client, room, nick, inner)
    return error_of(pres)


def make_iq(client, to, itype, payload):
    iq = client.make_iq(ito=to, itype=itype)
    iq.append(ET.fromstring(payload))
    return iq


async def iq_result(client, to, itype, payload):
    return await make_iq(client, to, itype, payload).send(timeout=5)


async def iq_error(client, to, itype, payload):
    reply = await client.iq_error(make_iq(client, to, itype, payload))
    return error_of(reply)


def form(fields, form_type='submit'):
    """A muc#roomconfig form; values are strings or lists of strings."""
    parts = ["<x xmlns='%s' type='%s'>" % (NS_DATA, form_type),
             "<field var='FORM_TYPE'><value>%s#roomconfig</value></field>" % NS_MUC]
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        parts.append("<field var='%s'>%s</field>" % (
            var, ''.join('<value>%s</value>' % v for v in values)))
    parts.append('</x>')
    return ''.join(parts)


async def configure(client, room, fields):
    return await iq_result(client, room, 'set',
                           "<query xmlns='%s'>%s</query>" % (NS_OWNER, form(fields)))


async def create(client, room, nick, fields=None):
    """Create room (status 201) and configure it (instant if no fields)."""
    pres = await join(client, room, nick)
    assert pres['type'] != 'error', 'cannot create %s: %s' % (room, pres)
    assert {110, 201} <= codes(pres), pres
    assert item(pres).get('affiliation') == 'owner' and item(pres).get('role') == 'moderator'
    if fields is None:
        await iq_result(client, room, 'set', "<query xmlns='%s'><x xmlns='%s' type='submit'/>"
                        "</query>" % (NS_OWNER, NS_DATA))
    else:
        await configure(client, room, fields)


async def set_affiliation(client, room, who, affiliation, reason=None):
    inner = '<reason>%s</reason>' % reason if reason else ''
    return await iq_result(client, room, 'set', "<query xmlns='%s'><item affiliation='%s' "
                           "jid='%s'>%s</item></query>" % (NS_ADMIN, affiliation, who, inner))


async def set_role(client, room, nick, role, reason=None):
    inner = '<reason>%s</reason>' % reason if reason else ''
    return await iq_result(client, room, 'set', "<query xmlns='%s'><item role='%s' nick='%s'>"
                           "%s</item></query>" % (NS_ADMIN, role, nick, inner))


def groupchat(client, room, body):
    msg = client.make_message(mto=room, mbody=body, mtype='groupchat')
    msg.send()
    return msg


async def reflected(client, room, nick, body):
    return await message_from(client, '%s/%s' % (room, nick), lambda m: m['body'] == body,
                              'groupchat %r from %s' % (body, nick))


def stanza_id(msg, room):
    sid = msg.xml.find(q(NS_SID, 'stanza-id'))
    assert sid is not None and sid.get('by') == room, 'no stanza-id by %s in %s' % (room, msg)
    return sid.get('id')


def occupant_id(st):
    oid = st.xml.find(q(NS_OID, 'occupant-id'))
    assert oid is not None and oid.get('id'), 'no occupant-id in %s' % st
    return oid.get('id')


async def mam(client, room, inner=''):
    """A MAM query on room: (messages in order, <fin/>)."""
    query_id = 'q%d' % id(inner)
    iq = make_iq(client, room, 'set', "<query xmlns='%s' queryid='%s'>%s</query>"
                 % (NS_MAM, query_id, inner))
    reply = await iq.send(timeout=5)
    results = []
    while not client.stanzas.empty():
        msg = client.stanzas.get_nowait()
        result = msg.xml.find(q(NS_MAM, 'result'))
        if result is not None and result.get('queryid') == query_id:
            results.append(result)
    return results, reply.xml.find(q(NS_MAM, 'fin'))


def archived(result):
    inner = result.find('%s/%s' % (q(NS_FORWARD, 'forwarded'), q(harness.NS_CLIENT, 'message')))
    assert inner is not None, harness.tostring(result)
    return inner


async def close_all(*clients):
    for c in clients:
        await c.close()


# -------------------------------------------------------------------- tests

async def test_service_discovery():
    alice = await login('alice')
    items = await alice['xep_0030'].get_items(jid=harness.DOMAIN)
    assert (MUC, None, 'Chatrooms') in items['disco_items']['items'], items
    info = await alice['xep_0030'].get_info(jid=MUC)
    assert ('conference', 'text', None, 'Chatrooms') in info['disco_info']['identities'], info
    assert NS_MUC in info['disco_info']['features'], info
    assert await iq_error(alice, room_jid('nowhere'), 'get',
                          "<query xmlns='%s'/>" % NS_DISCO_INFO) == ('cancel', 'item-not-found')
    await alice.close()


async def test_instant_room_locked_until_configured():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('lobby')
    pres = await join(alice, room, 'Alice')
    assert {110, 201, 170} <= codes(pres) and 100 not in codes(pres), pres
    assert item(pres).get('jid') == str(alice.boundjid), pres
    assert await join_error(bob, room, 'Bob') == ('cancel', 'item-not-found')
    await iq_result(alice, room, 'set', "<query xmlns='%s'><x xmlns='%s' type='submit'/></query>"
                    % (NS_OWNER, NS_DATA))
    pres = await join(bob, room, 'Bob')
    assert codes(pres) == {110, 170}, pres
    assert item(pres).get('affiliation') == 'none' and item(pres).get('role') == 'participant'
    # semi-anonymous: the owner, a moderator, sees real JIDs; bob does not
    seen = await presence_from(alice, room + '/Bob')
    assert item(seen).get('role') == 'participant', seen
    assert item(seen).get('jid') == str(bob.boundjid) and 110 not in codes(seen), seen
    owner = bob.joined_before_self[0]
    assert owner['from'] == room + '/Alice' and item(owner).get('jid') is None, owner
    assert item(owner).get('affiliation') == 'owner', owner
    info = await bob['xep_0030'].get_info(jid=room)
    features = set(info['disco_info']['features'])
    assert {'muc_temporary', 'muc_open', 'muc_unmoderated', 'muc_unsecured', 'muc_public',
            'muc_semianonymous', NS_MUC, NS_MAM, NS_OID, NS_SID} <= features, features
    assert 'http://jabber.org/protocol/muc#roominfo' in str(info), info
    items = await alice['xep_0030'].get_items(jid=MUC)
    assert (room, None, 'lobby') in items['disco_items']['items'], items
    occupants = await bob['xep_0030'].get_items(jid=room)
    assert {i[0] for i in occupants['disco_items']['items']} == {room + '/Alice',
                                                                  room + '/Bob'}, occupants
    await close_all(alice, bob)


async def test_groupchat_stanza_id_and_occupant_id():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('ids')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    groupchat(bob, room, 'first')
    first_at_alice = await reflected(alice, room, 'Bob', 'first')
    first_at_bob = await reflected(bob, room, 'Bob', 'first')
    assert stanza_id(first_at_alice, room) == stanza_id(first_at_bob, room)
    groupchat(bob, room, 'second')
    second = await reflected(alice, room, 'Bob', 'second')
    assert int(stanza_id(second, room)) > int(stanza_id(first_at_alice, room))
    assert occupant_id(second) == occupant_id(first_at_alice)
    groupchat(alice, room, 'mine')
    mine = await reflected(bob, room, 'Alice', 'mine')
    assert occupant_id(mine) != occupant_id(second), 'occupant ids collide'
    # a forged stanza-id by the room is dropped
    bob.send_raw("<message to='%s' type='groupchat'><body>forged</body><stanza-id xmlns='%s' "
                 "by='%s' id='1'/></message>" % (room, NS_SID, room))
    forged = await reflected(alice, room, 'Bob', 'forged')
    assert stanza_id(forged, room) != '1'
    assert len(forged.xml.findall(q(NS_SID, 'stanza-id'))) == 1, forged
    # a groupchat message from someone not in the room
    carol = await login('carol')
    groupchat(carol, room, 'outside')
    err = await message_from(carol, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('modify', 'not-acceptable'), err
    await close_all(alice, bob, carol)


async def test_history_on_join():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('history')
    await create(alice, room, 'Alice', {'muc#roomconfig_persistentroom': '1'})
    for n in range(5):
        groupchat(alice, room, 'line %d' % n)
        await reflected(alice, room, 'Alice', 'line %d' % n)

    async def history_with(inner):
        pres = await join(bob, room, 'Bob', inner)
        assert pres['type'] != 'error', pres
        lines = []
        for msg in bob.history:
            if msg['body']:
                delay = msg.xml.find(q(NS_DELAY, 'delay'))
                assert delay is not None and delay.get('from') == room, msg
                stanza_id(msg, room)
                lines.append(msg['body'])
        bob.send_presence(pto=room + '/Bob', ptype='unavailable')
        await presence_from(bob, room + '/Bob', lambda p: p['type'] == 'unavailable')
        return lines

    # History comes before the subject, which join() waits for.
    assert await history_with('') == ['line %d' % n for n in range(5)]
    assert await history_with("<history maxstanzas='2'/>") == ['line 3', 'line 4']
    assert await history_with("<history maxchars='0'/>") == []
    assert await history_with("<history seconds='3600'/>") == ['line %d' % n for n in range(5)]
    assert await history_with("<history since='2999-01-01T00:00:00Z'/>") == []
    assert await history_with("<history since='2000-01-01T00:00:00Z' maxstanzas='1'/>") == [
        'line 4']
    await close_all(alice, bob)


async def test_nick_conflict_invalid_nick_and_nick_change():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('nicks')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    assert await join_error(carol, room, 'Bob') == ('cancel', 'conflict')
    # no nick at all: the bare room JID
    carol.send_raw("<presence to='%s'><x xmlns='%s'/></presence>" % (room, NS_MUC))
    pres = await presence_from(carol, room, lambda p: p['type'] == 'error')
    assert error_of(pres) == ('modify', 'jid-malformed'), pres
    # a nick with surrounding space
    assert await join_error(carol, room, ' Carol') == ('modify', 'jid-malformed')
    # bob becomes Robert: 303 with the new nick, then the new presence
    bob.send_raw("<presence to='%s/Robert'/>" % room)
    gone = await presence_from(alice, room + '/Bob', lambda p: p['type'] == 'unavailable')
    assert codes(gone) == {303} and item(gone).get('nick') == 'Robert', gone
    back = await presence_from(alice, room + '/Robert')
    assert back['type'] != 'unavailable' and item(back).get('role') == 'participant', back
    own = await presence_from(bob, room + '/Robert')
    assert 110 in codes(own), own
    # a change to a taken nick
    bob.send_raw("<presence to='%s/Alice'/>" % room)
    pres = await presence_from(bob, room + '/Alice', lambda p: p['type'] == 'error')
    assert error_of(pres) == ('cancel', 'conflict'), pres
    await close_all(alice, bob, carol)


async def test_private_messages():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('whispers')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    bob.send_message(mto=room + '/Alice', mbody='psst', mtype='chat')
    pm = await message_from(alice, room + '/Bob', lambda m: m['body'] == 'psst')
    assert pm['type'] == 'chat' and pm.xml.find(q(NS_USER, 'x')) is not None, pm
    bob.send_message(mto=room + '/Nobody', mbody='hello?', mtype='chat')
    err = await message_from(bob, room + '/Nobody', lambda m: m['type'] == 'error')
    assert error_of(err) == ('cancel', 'item-not-found'), err
    await configure(alice, room, {'muc#roomconfig_allowpm': 'none'})
    bob.send_message(mto=room + '/Alice', mbody='again', mtype='chat')
    err = await message_from(bob, room + '/Alice', lambda m: m['type'] == 'error')
    assert error_of(err) == ('auth', 'forbidden'), err
    await close_all(alice, bob)


async def test_kick_and_non_moderator_kick():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('kicks')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    await join(carol, room, 'Carol')
    assert await iq_error(bob, room, 'set', "<query xmlns='%s'><item role='none' nick='Carol'/>"
                          "</query>" % NS_ADMIN) == ('auth', 'forbidden')
    assert await iq_error(alice, room, 'set', "<query xmlns='%s'><item role='none' "
                          "nick='Ghost'/></query>" % NS_ADMIN) == ('cancel', 'item-not-found')
    await set_role(alice, room, 'Carol', 'none', 'behave')
    own = await presence_from(carol, room + '/Carol', lambda p: p['type'] == 'unavailable')
    assert codes(own) == {307, 110}, own
    assert item(own).get('role') == 'none', own
    assert item(own).find(q(NS_USER, 'actor')).get('nick') == 'Alice', own
    assert item(own).findtext(q(NS_USER, 'reason')) == 'behave', own
    seen = await presence_from(bob, room + '/Carol', lambda p: p['type'] == 'unavailable')
    assert codes(seen) == {307}, seen
    # a moderator cannot kick the owner
    await set_role(alice, room, 'Bob', 'moderator')
    assert await iq_error(bob, room, 'set', "<query xmlns='%s'><item role='none' nick='Alice'/>"
                          "</query>" % NS_ADMIN) == ('cancel', 'not-allowed')
    # not even the owner takes an admin's moderation away (XEP-0045 §9.7)
    await set_affiliation(alice, room, jid('bob'), 'admin')
    assert await iq_error(alice, room, 'set', "<query xmlns='%s'><item role='participant' "
                          "nick='Bob'/></query>" % NS_ADMIN) == ('cancel', 'not-allowed')
    await close_all(alice, bob, carol)


async def test_ban():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('bans')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    await join(carol, room, 'Carol')
    assert await iq_error(bob, room, 'set', "<query xmlns='%s'><item affiliation='outcast' "
                          "jid='%s'/></query>" % (NS_ADMIN, jid('carol'))) == ('auth',
                                                                              'forbidden')
    await set_affiliation(alice, room, jid('carol'), 'outcast', 'spam')
    own = await presence_from(carol, room + '/Carol', lambda p: p['type'] == 'unavailable')
    assert codes(own) == {301, 110}, own
    assert item(own).get('affiliation') == 'outcast', own
    seen = await presence_from(bob, room + '/Carol', lambda p: p['type'] == 'unavailable')
    assert codes(seen) == {301}, seen
    assert await join_error(carol, room, 'Carol') == ('auth', 'forbidden')
    outcasts = await alice['xep_0045'].get_affiliation_list(room, 'outcast')
    assert [str(j) for j in outcasts] == [jid('carol')], outcasts
    assert await iq_error(bob, room, 'get', "<query xmlns='%s'><item affiliation='outcast'/>"
                          "</query>" % NS_ADMIN) == ('auth', 'forbidden')
    # the last owner stays an owner
    assert await iq_error(alice, room, 'set', "<query xmlns='%s'><item affiliation='none' "
                          "jid='%s'/></query>" % (NS_ADMIN, jid('alice'))) == ('cancel',
                                                                              'conflict')
    await close_all(alice, bob, carol)


async def test_members_only_password_and_max_occupants():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    club = room_jid('club')
    await create(alice, club, 'Alice', {'muc#roomconfig_membersonly': '1'})
    assert await join_error(bob, club, 'Bob') == ('auth', 'registration-required')
    await set_affiliation(alice, club, jid('bob'), 'member')
    pres = await join(bob, club, 'Bob')
    assert item(pres).get('affiliation') == 'member', pres
    info = await bob['xep_0030'].get_info(jid=club)
    assert 'muc_membersonly' in info['disco_info']['features'], info
    # losing membership in a members-only room: 321
    await set_affiliation(alice, club, jid('bob'), 'none')
    own = await presence_from(bob, club + '/Bob', lambda p: p['type'] == 'unavailable')
    assert codes(own) == {321, 110}, own

    locked = room_jid('locked')
    await create(alice, locked, 'Alice', {'muc#roomconfig_passwordprotectedroom': '1',
                                          'muc#roomconfig_roomsecret': 'sesame'})
    assert await join_error(bob, locked, 'Bob') == ('auth', 'not-authorized')
    assert await join_error(bob, locked, 'Bob', '<password>wrong</password>') == (
        'auth', 'not-authorized')
    pres = await join(bob, locked, 'Bob', '<password>sesame</password>')
    assert pres['type'] != 'error', pres

    tiny = room_jid('tiny')
    await create(alice, tiny, 'Alice', {'muc#roomconfig_maxusers': '2'})
    await join(bob, tiny, 'Bob')
    assert await join_error(carol, tiny, 'Carol') == ('wait', 'service-unavailable')
    await close_all(alice, bob, carol)


async def test_members_only_switch_removes_non_members():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('closing')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    await configure(alice, room, {'muc#roomconfig_membersonly': '1',
                                  'muc#roomconfig_whois': 'anyone'})
    note = await message_from(bob, room, lambda m: codes(m))
    assert codes(note) == {104, 172}, note
    own = await presence_from(bob, room + '/Bob', lambda p: p['type'] == 'unavailable')
    assert codes(own) == {322, 110}, own
    await close_all(alice, bob)


async def test_config_form_type_checks():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('forms')
    await create(alice, room, 'Alice')
    reply = await iq_result(alice, room, 'get', "<query xmlns='%s'/>" % NS_OWNER)
    fields = {f.get('var'): f.get('type') for f in reply.xml.iter(q(NS_DATA, 'field'))}
    for var, kind in (('muc#roomconfig_persistentroom', 'boolean'),
                      ('muc#roomconfig_publicroom', 'boolean'),
                      ('muc#roomconfig_membersonly', 'boolean'),
                      ('muc#roomconfig_moderatedroom', 'boolean'),
                      ('muc#roomconfig_passwordprotectedroom', 'boolean'),
                      ('muc#roomconfig_roomsecret', 'text-private'),
                      ('muc#roomconfig_maxusers', 'text-single'),
                      ('muc#roomconfig_whois', 'list-single'),
                      ('muc#maxhistoryfetch', 'text-single'),
                      ('muc#roomconfig_changesubject', 'boolean'),
                      ('muc#roomconfig_allowinvites', 'boolean'),
                      ('muc#roomconfig_allowpm', 'list-single')):
        assert fields.get(var) == kind, (var, fields)

    async def refused(fields):
        return await iq_error(alice, room, 'set', "<query xmlns='%s'>%s</query>"
                              % (NS_OWNER, form(fields)))
    assert await refused({'muc#roomconfig_persistentroom': 'maybe'}) == ('modify', 'bad-request')
    assert await refused({'muc#roomconfig_maxusers': 'lots'}) == ('modify', 'bad-request')
    assert await refused({'muc#roomconfig_maxusers': ['1', '2']}) == ('modify', 'bad-request')
    assert await refused({'muc#roomconfig_maxusers': str(MAX_OCCUPANTS + 1)}) == (
        'cancel', 'not-acceptable')
    assert await refused({'muc#roomconfig_whois': 'everyone'}) == ('cancel', 'not-acceptable')
    assert await refused({'muc#roomconfig_allowpm': 'sometimes'}) == ('cancel', 'not-acceptable')
    assert await refused({'muc#roomconfig_passwordprotectedroom': '1'}) == (
        'cancel', 'not-acceptable')
    # nothing of a refused form was applied
    info = await alice['xep_0030'].get_info(jid=room)
    assert 'muc_temporary' in info['disco_info']['features'], info
    await join(bob, room, 'Bob')
    assert await iq_error(bob, room, 'set', "<query xmlns='%s'>%s</query>" % (
        NS_OWNER, form({'muc#roomconfig_publicroom': '0'}))) == ('auth', 'forbidden')
    assert await iq_error(bob, room, 'get', "<query xmlns='%s'/>" % NS_OWNER) == ('auth',
                                                                                   'forbidden')
    await close_all(alice, bob)


async def test_moderated_room_voice_and_subject():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('stage')
    await create(alice, room, 'Alice', {'muc#roomconfig_moderatedroom': '1'})
    pres = await join(bob, room, 'Bob')
    assert item(pres).get('role') == 'visitor', pres
    groupchat(bob, room, 'may I?')
    err = await message_from(bob, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('auth', 'forbidden'), err
    await set_role(alice, room, 'Bob', 'participant')
    voiced = await presence_from(bob, room + '/Bob', lambda p: item(p).get('role') ==
                                 'participant')
    assert 110 in codes(voiced), voiced
    groupchat(bob, room, 'thanks')
    await reflected(alice, room, 'Bob', 'thanks')
    # subject: occupants may not change it by default, the moderator may
    bob.send_raw("<message to='%s' type='groupchat'><subject>mine</subject></message>" % room)
    err = await message_from(bob, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('auth', 'forbidden'), err
    alice.send_raw("<message to='%s' type='groupchat'><subject>Rules</subject></message>"
                   % room)
    subject = await message_from(bob, room + '/Alice', lambda m: m['subject'] == 'Rules')
    assert not subject['body'], subject
    await close_all(alice, bob)


async def test_invitations():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('party')
    for client in (alice, bob):  # available, to get messages sent to the bare JID
        client.send_presence()
        await client.ping()
    await create(alice, room, 'Alice', {'muc#roomconfig_membersonly': '1'})
    alice.send_raw("<message to='%s'><x xmlns='%s'><invite to='%s'><reason>come</reason>"
                   "</invite></x></message>" % (room, NS_USER, jid('bob')))
    invite = await message_from(bob, room, lambda m: m.xml.find(q(NS_USER, 'x')) is not None)
    inv = invite.xml.find('%s/%s' % (q(NS_USER, 'x'), q(NS_USER, 'invite')))
    assert inv.get('from') == str(alice.boundjid), invite
    assert inv.findtext(q(NS_USER, 'reason')) == 'come', invite
    # the invitation made bob a member of the members-only room
    pres = await join(bob, room, 'Bob')
    assert item(pres).get('affiliation') == 'member', pres
    bob.send_raw("<message to='%s'><x xmlns='%s'><decline to='%s'><reason>busy</reason>"
                 "</decline></x></message>" % (room, NS_USER, jid('alice')))
    decline = await message_from(alice, room, lambda m: m.xml.find(q(NS_USER, 'x')) is not None)
    dec = decline.xml.find('%s/%s' % (q(NS_USER, 'x'), q(NS_USER, 'decline')))
    assert dec.get('from') == jid('bob') and dec.findtext(q(NS_USER, 'reason')) == 'busy'
    # XEP-0249 direct invitations go from user to user untouched
    bob.send_raw("<message to='%s'><x xmlns='jabber:x:conference' jid='%s' reason='join'/>"
                 "</message>" % (carol.boundjid, room))
    direct = await message_from(carol, bob.boundjid)
    assert direct.xml.find('{jabber:x:conference}x').get('jid') == room, direct
    await close_all(alice, bob, carol)


async def test_nick_registration():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('registry')
    await create(alice, room, 'Alice')
    reply = await iq_result(bob, room, 'get', "<query xmlns='%s'/>" % NS_REGISTER)
    assert reply.xml.find('.//%s[@var="muc#register_roomnick"]' % q(NS_DATA, 'field')) is not None
    await iq_result(bob, room, 'set', "<query xmlns='%s'><x xmlns='%s' type='submit'><field "
                    "var='FORM_TYPE'><value>%s#register</value></field><field "
                    "var='muc#register_roomnick'><value>Bobby</value></field></x></query>"
                    % (NS_REGISTER, NS_DATA, NS_MUC))
    reply = await iq_result(bob, room, 'get', "<query xmlns='%s'/>" % NS_REGISTER)
    assert reply.xml.find('.//%s' % q(NS_REGISTER, 'registered')) is not None, reply
    assert reply.xml.findtext('.//%s' % q(NS_REGISTER, 'username')) == 'Bobby', reply
    assert await join_error(carol, room, 'Bobby') == ('cancel', 'conflict')
    assert await iq_error(carol, room, 'set', "<query xmlns='%s'><username>Bobby</username>"
                          "</query>" % NS_REGISTER) == ('cancel', 'conflict')
    pres = await join(bob, room, 'Bobby')
    assert item(pres).get('affiliation') == 'none', pres  # a reservation, not membership
    reply = await iq_result(bob, room, 'get', "<query xmlns='%s' node='x-roomuser-item'/>"
                            % NS_DISCO_INFO)
    assert reply.xml.find('.//%s' % q(NS_DISCO_INFO, 'identity')).get('name') == 'Bobby'
    await close_all(alice, bob, carol)


async def test_self_ping():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('pings')
    await create(alice, room, 'Alice')
    await alice.ping(room + '/Alice')
    assert await iq_error(bob, room + '/Alice', 'get', "<ping xmlns='urn:xmpp:ping'/>") == (
        'cancel', 'not-acceptable')
    await close_all(alice, bob)


async def test_mam_on_the_room():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('archive')
    await create(alice, room, 'Alice', {'muc#roomconfig_membersonly': '1'})
    ids = []
    for n in range(6):
        groupchat(alice, room, 'entry %d' % n)
        ids.append(stanza_id(await reflected(alice, room, 'Alice', 'entry %d' % n), room))
    assert await iq_error(bob, room, 'set', "<query xmlns='%s'/>" % NS_MAM) == ('auth',
                                                                                 'forbidden')
    await set_affiliation(alice, room, jid('bob'), 'member')
    results, fin = await mam(bob, room, "<set xmlns='%s'><max>4</max></set>" % NS_RSM)
    assert [r.get('id') for r in results] == ids[:4], results
    assert [archived(r).findtext(q(harness.NS_CLIENT, 'body')) for r in results] == [
        'entry %d' % n for n in range(4)]
    assert archived(results[0]).get('from') == room + '/Alice'
    assert fin.get('complete') != 'true', harness.tostring(fin)
    assert fin.findtext('%s/%s' % (q(NS_RSM, 'set'), q(NS_RSM, 'last'))) == ids[3]
    assert fin.findtext('%s/%s' % (q(NS_RSM, 'set'), q(NS_RSM, 'count'))) == '6'
    results, fin = await mam(bob, room, "<set xmlns='%s'><max>4</max><after>%s</after></set>"
                             % (NS_RSM, ids[3]))
    assert [r.get('id') for r in results] == ids[4:] and fin.get('complete') == 'true'
    results, fin = await mam(bob, room, "<set xmlns='%s'><max>2</max><before/></set>" % NS_RSM)
    assert [r.get('id') for r in results] == ids[4:], results
    # slixmpp's own MAM client against the room
    found = [m async for m in bob['xep_0313'].iterate(room, total=6)]
    assert len(found) == 6, found
    await close_all(alice, bob, carol)


async def test_moderation_and_retraction():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('moderated')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    await join(carol, room, 'Carol')
    groupchat(bob, room, 'rude words')
    rude = stanza_id(await reflected(alice, room, 'Bob', 'rude words'), room)
    groupchat(bob, room, 'more rude words')
    more = stanza_id(await reflected(alice, room, 'Bob', 'more rude words'), room)
    groupchat(carol, room, 'a typo')
    typo = stanza_id(await reflected(carol, room, 'Carol', 'a typo'), room)

    # a participant cannot moderate
    assert await iq_error(carol, room, 'set', "<moderate xmlns='%s' id='%s'><retract xmlns='%s'/>"
                          "</moderate>" % (NS_MODERATE_1, rude, NS_RETRACT_1)) == ('auth',
                                                                                    'forbidden')
    assert await iq_error(alice, room, 'set', "<moderate xmlns='%s' id='999'><retract xmlns='%s'/>"
                          "</moderate>" % (NS_MODERATE_1, NS_RETRACT_1)) == ('cancel',
                                                                              'item-not-found')
    # XEP-0425 version 1
    await iq_result(alice, room, 'set', "<moderate xmlns='%s' id='%s'><retract xmlns='%s'/>"
                    "<reason>Be nice</reason></moderate>" % (NS_MODERATE_1, rude, NS_RETRACT_1))
    notice = await message_from(carol, room, lambda m: m.xml.find(q(NS_RETRACT_1, 'retract'))
                                is not None)
    retract = notice.xml.find(q(NS_RETRACT_1, 'retract'))
    assert retract.get('id') == rude and retract.findtext(q(NS_RETRACT_1, 'reason')) == 'Be nice'
    assert retract.find(q(NS_MODERATE_1, 'moderated')).get('by') == room + '/Alice', notice
    # XEP-0425 version 0, as slixmpp sends it
    await alice['xep_0425'].moderate(JID(room), more, 'Still not nice')
    notice = await message_from(carol, room, lambda m: m.xml.find(q(NS_FASTEN, 'apply-to'))
                                is not None)
    apply_to = notice.xml.find(q(NS_FASTEN, 'apply-to'))
    assert apply_to.get('id') == more and apply_to.find(
        '%s/%s' % (q(NS_MODERATE_0, 'moderated'), q(NS_RETRACT_0, 'retract'))) is not None
    # XEP-0424: only the author retracts
    alice.send_raw("<message to='%s' type='groupchat' id='r1'><retract xmlns='%s' id='%s'/>"
                   "<body>/me retracted</body></message>" % (room, NS_RETRACT_1, typo))
    err = await message_from(alice, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('auth', 'forbidden'), err
    carol.send_raw("<message to='%s' type='groupchat' id='r2'><retract xmlns='%s' id='%s'/>"
                   "<body>/me retracted a message</body></message>" % (room, NS_RETRACT_1, typo))
    await message_from(bob, room + '/Carol', lambda m: m['id'] == 'r2')
    # the archive holds tombstones, not the words
    results, _ = await mam(bob, room)
    by_id = {r.get('id'): archived(r) for r in results}
    for gone in (rude, more, typo):
        assert by_id[gone].find(q(harness.NS_CLIENT, 'body')) is None, harness.tostring(
            by_id[gone])
    assert by_id[rude].find(q(NS_RETRACT_1, 'retracted')) is not None
    assert by_id[more].find(q(NS_MODERATE_0, 'moderated')) is not None
    assert by_id[typo].find(q(NS_RETRACT_1, 'retracted')) is not None
    await close_all(alice, bob, carol)


async def test_message_rate_limit():
    frank, alice = await login('frank'), await login('alice')
    room = room_jid('chatty')
    await create(alice, room, 'Alice')
    await join(frank, room, 'Frank')
    for n in range(RATE):
        groupchat(frank, room, 'msg %d' % n)
    await reflected(frank, room, 'Frank', 'msg %d' % (RATE - 1))
    groupchat(frank, room, 'one too many')
    err = await message_from(frank, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('wait', 'resource-constraint'), err
    await close_all(frank, alice)


async def test_rooms_per_user_limit():
    erin = await login('erin')
    for n in range(ROOMS_PER_USER):
        await create(erin, room_jid('erin%d' % n), 'Erin')
    assert await join_error(erin, room_jid('erin-extra'), 'Erin') == ('cancel', 'not-allowed')
    await erin.close()


async def test_occupant_session_ends():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('leavers')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    bob.abort()
    gone = await presence_from(alice, room + '/Bob', lambda p: p['type'] == 'unavailable')
    assert item(gone).get('role') == 'none', gone
    await alice.close()


async def test_destroy():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('doomed')
    await create(alice, room, 'Alice', {'muc#roomconfig_persistentroom': '1'})
    await join(bob, room, 'Bob')
    assert await iq_error(bob, room, 'set', "<query xmlns='%s'><destroy/></query>" % NS_OWNER) \
        == ('auth', 'forbidden')
    await iq_result(alice, room, 'set', "<query xmlns='%s'><destroy jid='%s'><reason>moved"
                    "</reason></destroy></query>" % (NS_OWNER, room_jid('lobby')))
    gone = await presence_from(bob, room + '/Bob', lambda p: p['type'] == 'unavailable')
    destroy = gone.xml.find('%s/%s' % (q(NS_USER, 'x'), q(NS_USER, 'destroy')))
    assert destroy is not None and destroy.get('jid') == room_jid('lobby'), gone
    assert destroy.findtext(q(NS_USER, 'reason')) == 'moved', gone
    assert item(gone).get('role') == 'none' and item(gone).get('affiliation') == 'none'
    assert await iq_error(bob, room, 'get', "<query xmlns='%s'/>" % NS_DISCO_INFO) == (
        'cancel', 'item-not-found')
    await close_all(alice, bob)


CLASS = room_jid('class5b')


async def test_teacher_class_room_history_on_two_devices():
    """The issue's "done when", with slixmpp's MUC, MAM and moderation."""
    teacher = await login('teacher')
    room = CLASS
    await create(teacher, room, 'Ms Smith', {'muc#roomconfig_roomname': 'Class 5B',
                                             'muc#roomconfig_persistentroom': '1',
                                             'muc#roomconfig_membersonly': '1',
                                             'muc#roomconfig_publicroom': '0'})
    await teacher['xep_0045'].set_affiliation(room, 'member', jid=jid('parent1'))
    await teacher['xep_0045'].set_affiliation(room, 'member', jid=jid('parent2'))
    members = await teacher['xep_0045'].get_affiliation_list(room, 'member')
    assert sorted(str(j) for j in members) == [jid('parent1'), jid('parent2')], members
    parent2 = await login('parent2')
    await parent2['xep_0045'].join_muc_wait(room, 'Dad', maxstanzas=0, timeout=5)
    groupchat(teacher, room, 'Trip on Friday')
    await reflected(teacher, room, 'Ms Smith', 'Trip on Friday')
    groupchat(parent2, room, 'something inappropriate')
    bad = await reflected(teacher, room, 'Dad', 'something inappropriate')
    groupchat(teacher, room, 'Bring a lunch')
    await reflected(teacher, room, 'Ms Smith', 'Bring a lunch')
    await teacher['xep_0425'].moderate(JID(room), stanza_id(bad, room), 'Off topic')
    await message_from(parent2, room, lambda m: m.xml.find(q(NS_FASTEN, 'apply-to')) is not None)

    outsider = await login('outsider')
    try:
        await outsider['xep_0045'].join_muc_wait(room, 'Nosy', timeout=5)
        raise AssertionError('a non-member entered the members-only room')
    except PresenceError as e:
        assert e.condition == 'registration-required', e

    phone, laptop = await login('parent1', 'phone'), await login('parent1', 'laptop')
    for device in (phone, laptop):
        _, subject, occupants, history = await device['xep_0045'].join_muc_wait(
            room, 'Mum', maxstanzas=10, timeout=5)
        bodies = [m['body'] for m in history if m['body']]
        assert bodies == ['Trip on Friday', 'Bring a lunch'], bodies
        assert not any('inappropriate' in str(m) for m in history), history
        nicks = {p['from'].resource for p in occupants}
        assert {'Ms Smith', 'Dad'} <= nicks, nicks
    # both devices are the same occupant: messages reach both
    groupchat(teacher, room, 'See you')
    for device in (phone, laptop):
        await reflected(device, room, 'Ms Smith', 'See you')
    await close_all(teacher, parent2, outsider, phone, laptop)


async def test_persistent_room_survives_restart():
    server.restart()
    parent1, outsider = await login('parent1'), await login('outsider')
    room = CLASS
    assert await join_error(outsider, room, 'Nosy') == ('auth', 'registration-required')
    pres = await join(parent1, room, 'Mum', "<history maxstanzas='5'/>")
    assert item(pres).get('affiliation') == 'member', pres
    info = await parent1['xep_0030'].get_info(jid=room)
    features = set(info['disco_info']['features'])
    assert {'muc_persistent', 'muc_membersonly', 'muc_hidden'} <= features, features
    results, _ = await mam(parent1, room)
    bodies = [archived(r).findtext(q(harness.NS_CLIENT, 'body')) for r in results]
    assert bodies[:1] == ['Trip on Friday'] and 'Bring a lunch' in bodies, bodies
    assert 'something inappropriate' not in bodies, bodies
    teacher = await login('teacher')
    members = await teacher['xep_0045'].get_affiliation_list(room, 'member')
    assert sorted(str(j) for j in members) == [jid('parent1'), jid('parent2')], members
    # the occupant id of a user is stable across the restart
    await join(teacher, room, 'Ms Smith')
    groupchat(teacher, room, 'Back again')
    msg = await reflected(parent1, room, 'Ms Smith', 'Back again')
    earlier = [r for r in results if archived(r).get('from') == room + '/Ms Smith']
    assert occupant_id(msg) == archived(earlier[0]).find(q(NS_OID, 'occupant-id')).get('id')
    await close_all(parent1, outsider, teacher)


if __name__ == '__main__':
    harness.run([test_service_discovery,
                 test_instant_room_locked_until_configured,
                 test_groupchat_stanza_id_and_occupant_id,
                 test_history_on_join,
                 test_nick_conflict_invalid_nick_and_nick_change,
                 test_private_messages,
                 test_kick_and_non_moderator_kick,
                 test_ban,
                 test_members_only_password_and_max_occupants,
                 test_members_only_switch_removes_non_members,
                 test_config_form_type_checks,
                 test_moderated_room_voice_and_subject,
                 test_invitations,
                 test_nick_registration,
                 test_self_ping,
                 test_mam_on_the_room,
                 test_moderation_and_retraction,
                 test_message_rate_limit,
                 test_rooms_per_user_limit,
                 test_occupant_session_ends,
                 test_destroy,
                 test_teacher_class_room_history_on_two_devices,
                 test_persistent_room_survives_restart],
                server=server, setup=setup)
