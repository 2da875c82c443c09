#!/usr/bin/env python3
"""test_muc_security.py - what a hostile occupant or stranger may not do to a room.

The MUC findings of issue 11, each tried the way an attacker with an
ordinary account would, with slixmpp clients over TLS against a real
vestnikd: real JIDs of a semi-anonymous room read through nick
registration and the member list; an occupant thrown out by an error
reply someone else provoked (and, when an occupant really is gone, that
it is told); the room's stanza-id forged by spelling the room's JID in
another case; members of a members-only room inviting (and so adding)
members; and a password-protected room's archive read without the
password; and the relays the room must not be (declines, invitations,
presence floods, answers nobody asked for). An occupant from another
server is played by a component (XEP-0114) at its own domain. The
helpers are test_muc's.
"""

import asyncio
import hashlib
import time

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness
import test_muc as muc
from test_muc import (NS_ADMIN, NS_MAM, NS_REGISTER, NS_SID, NS_USER, codes, configure, create,
                      error_of, iq_error, iq_result, item, join, jid, login, message_from,
                      presence_from, q, reflected, room_jid, set_affiliation, stanza_id)

NS_PING = 'urn:xmpp:ping'
NS_COMPONENT = 'jabber:component:accept'
FARAWAY = 'faraway.localhost'  # a component: the server of an occupant from elsewhere
SECRET = 'faraway-secret'


class Server(muc.Server):
    """test_muc's server, with a component standing for another server."""

    def __init__(self):
        self.component_port = harness.free_ports(1)[0]
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('listeners:\n', 'listeners:\n  - type: component\n'
                            '    address: 127.0.0.1\n    port: %d\n' % self.component_port, 1)
        text += 'components:\n  - domain: %s\n    secret: %s\n' % (FARAWAY, SECRET)
        with open(self.config_path, 'w') as f:
            f.write(text)


server = muc.server = Server()


def faraway_server():
    """A raw component stream for FARAWAY, past the handshake."""
    stream = harness.RawStream(server.component_port)
    stream.open(to=FARAWAY, ns=NS_COMPONENT)
    deadline = time.monotonic() + stream.timeout
    while stream.header is None and not stream.eof:
        stream._read_some(deadline)
    digest = hashlib.sha1((stream.header.get('id') + SECRET).encode()).hexdigest()
    stream.send('<handshake>%s</handshake>' % digest)
    stream.expect(harness.qname(NS_COMPONENT, 'handshake'))
    return stream


def next_matching_element(stream, pred):
    while True:
        elem = stream.next_element()
        if pred(elem):
            return elem


def register(client, room, nick):
    return iq_result(client, room, 'set', "<query xmlns='%s'><username>%s</username></query>"
                     % (NS_REGISTER, nick))


MEMBER_LIST = "<query xmlns='%s'><item affiliation='member'/></query>" % NS_ADMIN


async def test_registration_and_member_list_keep_real_jids_hidden():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('masks')
    await create(alice, room, 'Alice', {'muc#roomconfig_moderatedroom': '1'})
    await set_affiliation(alice, room, jid('bob'), 'member')
    # a stranger reserves a nick in the open room: a reservation, not membership
    await register(carol, room, 'Carla')
    pres = await join(carol, room, 'Carla')
    assert item(pres).get('affiliation') == 'none', pres
    assert item(pres).get('role') == 'visitor', 'registering gave a voice: %s' % pres
    # neither he nor a real member reads the member list of a semi-anonymous room
    for who in (carol, bob):
        assert await iq_error(who, room, 'get', MEMBER_LIST) == ('auth', 'forbidden')
    members = await alice['xep_0045'].get_affiliation_list(room, 'member')
    assert [str(j) for j in members] == [jid('bob')], members
    # in a non-anonymous room everyone sees real JIDs anyway: members get the list
    await configure(alice, room, {'muc#roomconfig_whois': 'anyone'})
    reply = await iq_result(bob, room, 'get', MEMBER_LIST)
    listed = [i.get('jid') for i in reply.xml.iter(q(NS_ADMIN, 'item'))]
    assert listed == [jid('bob')], listed
    # a member who drops his nick reservation stays a member
    await register(bob, room, 'Bobby')
    await iq_result(bob, room, 'set', "<query xmlns='%s'><remove/></query>" % NS_REGISTER)
    members = await alice['xep_0045'].get_affiliation_list(room, 'member')
    assert [str(j) for j in members] == [jid('bob')], members
    # members-only: only those the admins made members reserve nicks
    club = room_jid('masks-club')
    await create(alice, club, 'Alice', {'muc#roomconfig_membersonly': '1'})
    assert await iq_error(carol, club, 'set', "<query xmlns='%s'><username>Carla</username>"
                          "</query>" % NS_REGISTER) == ('auth', 'registration-required')
    await muc.close_all(alice, bob, carol)


async def still_in_room(victim, room, nick, witness, witness_nick):
    """victim is still an occupant: it gets groupchat, its self-ping
    (XEP-0410) is answered, and witness saw no unavailable presence of it."""
    muc.groupchat(witness, room, 'are you there?')
    await reflected(victim, room, witness_nick, 'are you there?')
    await victim.ping('%s/%s' % (room, nick))
    while not witness.presences.empty():
        pres = witness.presences.get_nowait()
        assert not (pres['from'] == '%s/%s' % (room, nick) and pres['type'] == 'unavailable'), \
            'the occupant was removed: %s' % pres


async def test_provoked_errors_do_not_eject():
    alice, bob, mallory = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('crossfire')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    await join(mallory, room, 'Mallory')

    # Mallory asks Bob's client something it does not serve; it answers
    # service-unavailable, as RFC 6120 §8.4 has it. The error goes back to
    # Mallory, and Bob stays.
    def refuse(iq):
        bob.send_raw("<iq to='%s' id='%s' type='error'><error type='cancel'><service-unavailable"
                     " xmlns='%s'/></error></iq>" % (iq['from'], iq['id'],
                                                      harness.NS_STANZA_ERRORS))
    bob.register_handler(Callback('unserved', MatchXPath(
        "{%s}iq/{urn:example:nothing}query" % harness.NS_CLIENT), refuse))
    reply = await mallory.iq_error(muc.make_iq(mallory, room + '/Bob', 'get',
                                               "<query xmlns='urn:example:nothing'/>"))
    assert error_of(reply) == ('cancel', 'service-unavailable'), reply
    assert reply['from'] == room + '/Bob', reply
    await still_in_room(bob, room, 'Bob', alice, 'Alice')

    # Bob's server refuses Mallory's private message (Bob blocked her): the
    # bounce, from Bob's full JID, does not take Bob out either.
    mallory.send_message(mto=room + '/Bob', mbody='you blocked me?', mtype='chat')
    pm = await message_from(bob, room + '/Mallory', lambda m: m['body'] == 'you blocked me?')
    bob.send_raw("<message to='%s/Mallory' id='%s' type='error'><error type='cancel'>"
                 "<service-unavailable xmlns='%s'/></error></message>"
                 % (room, pm['id'], harness.NS_STANZA_ERRORS))
    await still_in_room(bob, room, 'Bob', alice, 'Alice')
    # ... nor does a bounce of a message from the room itself while Bob's
    # client still answers the room's check (XEP-0199 ping)
    bob.send_raw("<message to='%s' type='error'><error type='cancel'><recipient-unavailable "
                 "xmlns='%s'/></error></message>" % (room, harness.NS_STANZA_ERRORS))
    await still_in_room(bob, room, 'Bob', alice, 'Alice')
    # and an error of a kind that does not mean "gone" is no reason at all
    bob.send_raw("<presence to='%s/Bob' type='error'><error type='modify'><not-acceptable "
                 "xmlns='%s'/></error></presence>" % (room, harness.NS_STANZA_ERRORS))
    await still_in_room(bob, room, 'Bob', alice, 'Alice')
    await muc.close_all(alice, bob, mallory)


async def test_gone_occupant_is_removed_and_told():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('vanish')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    # Bob's resource is gone as far as his server knows: it bounces the
    # room's presence, and answers the room's ping with service-unavailable.
    pings = asyncio.Queue()
    bob.remove_handler('Ping')
    bob.register_handler(Callback('room ping', MatchXPath(
        "{%s}iq/{%s}ping" % (harness.NS_CLIENT, NS_PING)), pings.put_nowait))
    bob.send_raw("<presence to='%s/Alice' type='error'><error type='cancel'><remote-server-"
                 "not-found xmlns='%s'/></error></presence>" % (room, harness.NS_STANZA_ERRORS))
    ping = await asyncio.wait_for(pings.get(), 5)
    assert ping['from'] == room and ping['to'] == str(bob.boundjid), ping
    bob.send_raw("<iq to='%s' id='%s' type='error'><ping xmlns='%s'/><error type='cancel'>"
                 "<service-unavailable xmlns='%s'/></error></iq>"
                 % (room, ping['id'], NS_PING, harness.NS_STANZA_ERRORS))
    seen = await presence_from(alice, room + '/Bob', lambda p: p['type'] == 'unavailable')
    assert codes(seen) == {333}, seen
    # ... and Bob, should he still be there, learns that he is out
    own = await presence_from(bob, room + '/Bob', lambda p: p['type'] == 'unavailable')
    assert codes(own) == {110, 333}, own
    await muc.close_all(alice, bob)


async def test_remote_occupant_gone_by_its_servers_word():
    """The case bounces are for: an occupant from another server whose
    resource went away; its server answers the room's ping in its own name."""
    alice = await login('alice')
    room = room_jid('faraway')
    await create(alice, room, 'Alice')
    remote = faraway_server()
    guest = 'guest@%s/laptop' % FARAWAY
    remote.send("<presence from='%s' to='%s/Guest'><x xmlns='%s'/></presence>"
                % (guest, room, muc.NS_MUC))
    next_matching_element(remote, lambda e: e.tag.endswith('}presence') and '110' in [
        st.get('code') for st in e.iter('{%s}status' % NS_USER)])
    await presence_from(alice, room + '/Guest')
    # a groupchat message to the guest bounces; the room asks the guest
    remote.send("<message from='%s' to='%s/Alice' type='error'><error type='cancel'>"
                "<service-unavailable xmlns='%s'/></error></message>"
                % (guest, room, harness.NS_STANZA_ERRORS))
    ping = next_matching_element(remote, lambda e: e.tag.endswith('}iq') and e.find(
        '{%s}ping' % NS_PING) is not None)
    assert ping.get('from') == room and ping.get('to') == guest, harness.tostring(ping)
    # a stranger's word is not the server's
    remote.send("<iq from='someone@%s' to='%s' id='%s' type='error'><error type='cancel'>"
                "<service-unavailable xmlns='%s'/></error></iq>"
                % (FARAWAY, room, ping.get('id'), harness.NS_STANZA_ERRORS))
    remote.send("<iq from='%s' to='%s' id='%s' type='error'><error type='cancel'>"
                "<remote-server-not-found xmlns='%s'/></error></iq>"
                % (FARAWAY, room, ping.get('id'), harness.NS_STANZA_ERRORS))
    seen = await presence_from(alice, room + '/Guest', lambda p: p['type'] == 'unavailable')
    assert codes(seen) == {333}, seen
    told = next_matching_element(remote, lambda e: e.tag.endswith('}presence') and
                                 e.get('type') == 'unavailable')
    assert told.get('to') == guest and {'110', '333'} <= {
        st.get('code') for st in told.iter('{%s}status' % NS_USER)}, harness.tostring(told)
    remote.close()
    await alice.close()


async def test_stanza_id_by_room_in_any_spelling_is_dropped():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('forgery')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    for n, spelling in enumerate((room.upper(), 'Forgery@Conference.' + harness.DOMAIN.upper(),
                                  room + '/')):
        body = 'forged %d' % n
        bob.send_raw("<message to='%s' type='groupchat'><body>%s</body><stanza-id xmlns='%s' "
                     "by='%s' id='1'/></message>" % (room, body, NS_SID, spelling))
        forged = await reflected(alice, room, 'Bob', body)
        ids = forged.xml.findall(q(NS_SID, 'stanza-id'))
        assert len(ids) == 1 and ids[0].get('by') == room, harness.tostring(forged.xml)
        assert stanza_id(forged, room) != '1'
    # a stanza-id by someone else is theirs to keep
    bob.send_raw("<message to='%s' type='groupchat'><body>kept</body><stanza-id xmlns='%s' "
                 "by='%s' id='77'/></message>" % (room, NS_SID, jid('bob')))
    kept = await reflected(alice, room, 'Bob', 'kept')
    assert {(s.get('by'), s.get('id')) for s in kept.xml.findall(q(NS_SID, 'stanza-id'))} >= {
        (jid('bob'), '77')}, harness.tostring(kept.xml)
    await muc.close_all(alice, bob)


async def test_only_the_asked_answer_relayed_requests():
    alice, bob, mallory = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('hearsay')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    await join(mallory, room, 'Mallory')
    got = []
    alice.register_handler(Callback('iq from the room', MatchXPath(
        "{%s}iq" % harness.NS_CLIENT), lambda iq: got.append(iq) if iq['type'] in (
            'result', 'error') and iq['from'].bare == room else None))
    # Mallory answers requests nobody made, and one Alice made of Bob,
    # guessing her client's ids: none of it reaches Alice.
    for guess in ('0', '1', '2', '3', 'x'):
        mallory.send_raw("<iq to='%s/Alice' id='%s' type='result'/>" % (room, guess))
    version = await alice['xep_0092'].get_version(room + '/Bob')
    assert version['from'] == room + '/Bob', version
    await mallory.ping(room + '/Mallory')  # her stanzas before it have been handled
    await alice.ping(room + '/Alice')
    assert [iq['from'] for iq in got if iq['from'] != room + '/Alice'] == [room + '/Bob'], got
    await muc.close_all(alice, bob, mallory)


async def test_requests_waiting_for_an_answer_are_bounded():
    alice, bob, mallory = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('backlog')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    await join(mallory, room, 'Mallory')
    held = []
    bob.register_handler(Callback('slow', MatchXPath(
        "{%s}iq/{urn:example:slow}query" % harness.NS_CLIENT), held.append))
    def slow_request():
        iq = muc.make_iq(mallory, room + '/Bob', 'get', "<query xmlns='urn:example:slow'/>")
        iq['id'] = mallory.new_id()
        return iq.send(timeout=10)
    pending = [slow_request() for _ in range(muc.PENDING_IQ)]
    reply = await mallory.iq_error(muc.make_iq(mallory, room + '/Bob', 'get',
                                               "<query xmlns='urn:example:slow'/>"))
    assert error_of(reply) == ('wait', 'resource-constraint'), reply
    # Bob answers: the slots free up, and his answers reach Mallory
    while len(held) < muc.PENDING_IQ:
        await asyncio.sleep(0.05)
    for iq in held:
        bob.send_raw("<iq to='%s' id='%s' type='result'/>" % (iq['from'], iq['id']))
    for answer in await asyncio.gather(*pending):
        assert answer['from'] == room + '/Bob', answer
    await mallory['xep_0092'].get_version(room + '/Bob')
    await muc.close_all(alice, bob, mallory)


def invite(client, room, who):
    client.send_raw("<message to='%s'><x xmlns='%s'><invite to='%s'/></x></message>"
                    % (room, NS_USER, who))


async def test_members_do_not_invite_into_members_only_room_by_default():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('gated')
    await create(alice, room, 'Alice', {'muc#roomconfig_membersonly': '1'})
    reply = await iq_result(alice, room, 'get', "<query xmlns='%s#owner'/>" % muc.NS_MUC)
    field = reply.xml.find(".//%s[@var='muc#roomconfig_allowinvites']" % q(muc.NS_DATA, 'field'))
    assert field.findtext(q(muc.NS_DATA, 'value')) == '0', harness.tostring(field)
    await set_affiliation(alice, room, jid('bob'), 'member')
    await join(bob, room, 'Bob')
    invite(bob, room, jid('carol'))
    err = await message_from(bob, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('auth', 'forbidden'), err
    assert await muc.join_error(carol, room, 'Carol') == ('auth', 'registration-required')
    # the owner may let members invite
    await configure(alice, room, {'muc#roomconfig_allowinvites': '1'})
    invite(bob, room, jid('carol'))
    pres = await join(carol, room, 'Carol')
    assert item(pres).get('affiliation') == 'member', pres
    # an open room: an invitation grants nothing, so any occupant may send one
    hall = room_jid('hall')
    await create(alice, hall, 'Alice')
    await join(bob, hall, 'Bob')
    carol.send_presence()
    await carol.ping()
    invite(bob, hall, jid('carol'))
    await message_from(carol, hall, lambda m: m.xml.find(q(NS_USER, 'x')) is not None)
    await muc.close_all(alice, bob, carol)


async def test_room_relays_no_declines_nor_floods_of_invitations():
    alice, bob, mallory = await login('alice'), await login('bob'), await login('carol')
    for client in (alice, bob):
        client.send_presence()
        await client.ping()
    room = room_jid('postbox')
    await create(alice, room, 'Alice')
    # a decline from someone nobody invited is no message from the room
    mallory.send_raw("<message to='%s'><x xmlns='%s'><decline to='%s'><reason>buy now"
                     "</reason></decline></x></message>" % (room, NS_USER, jid('alice')))
    err = await message_from(mallory, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('cancel', 'item-not-found'), err
    # the one invited declines, once, to the one who invited
    invite(alice, room, jid('bob'))
    await message_from(bob, room, lambda m: m.xml.find(q(NS_USER, 'x')) is not None)
    for _ in range(2):
        bob.send_raw("<message to='%s'><x xmlns='%s'><decline to='%s'/></x></message>"
                     % (room, NS_USER, jid('alice')))
    decline = await message_from(alice, room, lambda m: m.xml.find(
        '%s/%s' % (q(NS_USER, 'x'), q(NS_USER, 'decline'))) is not None)
    assert 'buy now' not in str(decline), 'the stranger\'s decline was relayed: %s' % decline
    err = await message_from(bob, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('cancel', 'item-not-found'), err
    # invitations count against the message budget
    await join(mallory, room, 'Mallory')
    for n in range(muc.RATE + 1):
        invite(mallory, room, 'victim%d@%s' % (n, harness.DOMAIN))
    err = await message_from(mallory, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('wait', 'resource-constraint'), err
    await muc.close_all(alice, bob, mallory)


async def test_presence_floods_are_not_repeated():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('strobe')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    for n in range(muc.RATE + 10):
        bob.send_raw("<presence to='%s/Bob'><status>%d</status></presence>" % (room, n))
    await bob.ping(room + '/Bob')  # the room has handled them all
    await alice.ping(room + '/Alice')
    statuses = []
    while not alice.presences.empty():
        pres = alice.presences.get_nowait()
        if pres['from'] == room + '/Bob' and pres['status']:
            statuses.append(pres['status'])
    assert len(statuses) == muc.RATE, statuses
    # the room kept the last one for those who come later
    carol = await login('carol')
    await join(carol, room, 'Carol')
    bob_seen = [p for p in carol.joined_before_self if p['from'] == room + '/Bob']
    assert bob_seen[0]['status'] == str(muc.RATE + 9), bob_seen
    await muc.close_all(alice, bob, carol)


async def test_password_protected_archive():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('vault')
    await create(alice, room, 'Alice', {'muc#roomconfig_passwordprotectedroom': '1',
                                        'muc#roomconfig_roomsecret': 'sesame'})
    muc.groupchat(alice, room, 'the combination')
    await reflected(alice, room, 'Alice', 'the combination')
    query = "<query xmlns='%s'/>" % NS_MAM
    assert await iq_error(bob, room, 'set', query) == ('auth', 'forbidden')
    # a member still needs the password to enter, so to read
    await set_affiliation(alice, room, jid('bob'), 'member')
    assert await iq_error(bob, room, 'set', query) == ('auth', 'forbidden')
    await join(bob, room, 'Bob', '<password>sesame</password>')
    results, _ = await muc.mam(bob, room)
    bodies = [muc.archived(r).findtext(q(harness.NS_CLIENT, 'body')) for r in results]
    assert bodies == ['the combination'], bodies
    # nor does the subject of a closed room go to those outside
    alice.send_raw("<message to='%s' type='groupchat'><subject>Safe at the back</subject>"
                   "</message>" % room)
    await message_from(bob, room + '/Alice', lambda m: m['subject'] == 'Safe at the back')
    carol = await login('carol')

    def roominfo(info):
        form = info.xml.find('.//{%s}x' % muc.NS_DATA)
        return {f.get('var'): f.findtext('{%s}value' % muc.NS_DATA)
                for f in form.iter('{%s}field' % muc.NS_DATA)}
    outside = roominfo(await carol['xep_0030'].get_info(jid=room))
    assert 'muc#roominfo_subject' not in outside, outside
    inside = roominfo(await bob['xep_0030'].get_info(jid=room))
    assert inside['muc#roominfo_subject'] == 'Safe at the back', inside
    await muc.close_all(alice, bob, carol)


if __name__ == '__main__':
    harness.run([test_registration_and_member_list_keep_real_jids_hidden,
                 test_provoked_errors_do_not_eject,
                 test_gone_occupant_is_removed_and_told,
                 test_remote_occupant_gone_by_its_servers_word,
                 test_only_the_asked_answer_relayed_requests,
                 test_requests_waiting_for_an_answer_are_bounded,
                 test_stanza_id_by_room_in_any_spelling_is_dropped,
                 test_members_do_not_invite_into_members_only_room_by_default,
                 test_room_relays_no_declines_nor_floods_of_invitations,
                 test_presence_floods_are_not_repeated,
                 test_password_protected_archive],
                server=server, setup=muc.setup)
