#!/usr/bin/env python3
"""test_muc_details.py - the XEP-0045 details clients show (issues 12 and 18).

With slixmpp clients over TLS against a real vestnikd with the vcard, pep
and muc modules: an occupant's vCard and PEP items asked for at its room
JID (answered for its account where the room shows real JIDs to the
requester, refused elsewhere, never left to a client that does not
answer); one user in a room under one nick from two devices (one occupant,
answers reaching the device that asked, leaving from one device only);
the status codes of configuration changes; voice requests; and the 'with'
filter of the room archive. The helpers are test_muc's.
"""

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness
import test_muc as muc
from test_muc import (NS_DATA, NS_MAM, NS_USER, codes, configure, create, error_of, iq_error,
                      iq_result, item, join, jid, login, message_from, presence_from, q,
                      reflected, room_jid)

NS_VCARD = 'vcard-temp'
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_REQUEST = 'http://jabber.org/protocol/muc#request'


class Server(muc.Server):
    """test_muc's server, with vCards and PEP for the accounts."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  vcard:\n'
                    '  pep:\n')


server = muc.server = Server()


async def publish_vcard(client, name):
    await iq_result(client, None, 'set', "<vCard xmlns='%s'><FN>%s</FN></vCard>"
                    % (NS_VCARD, name))


async def test_occupant_vcard_and_pep_items():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    await publish_vcard(bob, 'Bob Builder')
    await iq_result(bob, None, 'set', "<pubsub xmlns='%s'><publish node='urn:example:mood'>"
                    "<item id='current'><mood xmlns='urn:example:mood'>sunny</mood></item>"
                    "</publish><publish-options><x xmlns='%s' type='submit'><field var='"
                    "FORM_TYPE' type='hidden'><value>%s#publish-options</value></field>"
                    "<field var='pubsub#access_model'><value>open</value></field></x>"
                    "</publish-options></pubsub>" % (NS_PUBSUB, NS_DATA, NS_PUBSUB))
    room = room_jid('faces')
    await create(alice, room, 'Alice', {'muc#roomconfig_whois': 'anyone'})
    await join(bob, room, 'Bob')
    await join(carol, room, 'Carol')
    # a non-anonymous room: the occupant's account answers, under its room JID
    reply = await iq_result(carol, room + '/Bob', 'get', "<vCard xmlns='%s'/>" % NS_VCARD)
    assert reply['from'] == room + '/Bob', reply
    assert reply.xml.findtext('{%s}vCard/{%s}FN' % (NS_VCARD, NS_VCARD)) == 'Bob Builder', reply
    reply = await iq_result(carol, room + '/Bob', 'get', "<pubsub xmlns='%s'><items node="
                            "'urn:example:mood'/></pubsub>" % NS_PUBSUB)
    assert reply.xml.find('.//{urn:example:mood}mood').text == 'sunny', reply
    # a client fetches every occupant's avatar on joining: no message budget
    for n in range(muc.RATE + 5):
        await iq_result(carol, room + '/Bob', 'get', "<vCard xmlns='%s'/>" % NS_VCARD)
    # semi-anonymous: refused to participants, answered for moderators
    await configure(alice, room, {'muc#roomconfig_whois': 'moderators'})
    assert await iq_error(carol, room + '/Bob', 'get', "<vCard xmlns='%s'/>" % NS_VCARD) == (
        'auth', 'forbidden')
    reply = await iq_result(alice, room + '/Bob', 'get', "<vCard xmlns='%s'/>" % NS_VCARD)
    assert reply.xml.findtext('{%s}vCard/{%s}FN' % (NS_VCARD, NS_VCARD)) == 'Bob Builder', reply
    # other requests still go to the occupant's client, and its answer back
    version = await carol['xep_0092'].get_version(room + '/Bob')
    assert version['from'] == room + '/Bob' and version['software_version']['name'], version
    await muc.close_all(alice, bob, carol)


async def test_one_nick_from_two_devices():
    alice = await login('alice')
    phone, laptop = await login('bob', 'phone'), await login('bob', 'laptop')
    room = room_jid('devices')
    await create(alice, room, 'Alice')
    await join(phone, room, 'Bob', '', '<status>on the phone</status>')
    seen = await presence_from(alice, room + '/Bob')
    pres = await join(laptop, room, 'Bob', '', '<status>at the desk</status>')
    assert pres['type'] != 'error' and 110 in codes(pres), pres
    assert item(pres).get('jid') == str(laptop.boundjid), pres  # its own session
    # one occupant: the room lists Bob once, both devices get the room's traffic
    occupants = await alice['xep_0030'].get_items(jid=room)
    assert sorted(i[0] for i in occupants['disco_items']['items']) == [room + '/Alice',
                                                                        room + '/Bob']
    muc.groupchat(alice, room, 'hello devices')
    for device in (phone, laptop):
        await reflected(device, room, 'Alice', 'hello devices')
    # an answer reaches the device that asked, not the first one to join
    version = await laptop['xep_0092'].get_version(room + '/Alice')
    assert version['to'] == str(laptop.boundjid), version
    # what the room says of Bob is what the others were told, not what the
    # second device joined with
    await muc.set_role(alice, room, 'Bob', 'moderator')
    promoted = await presence_from(alice, room + '/Bob', lambda p: item(p).get('role') ==
                                   'moderator')
    assert promoted['status'] == 'on the phone', promoted
    for device in (phone, laptop):  # each device is told of itself
        own = await presence_from(device, room + '/Bob', lambda p: item(p).get('role') ==
                                  'moderator')
        assert 110 in codes(own) and item(own).get('jid') == str(device.boundjid), own
    # one device leaves: only it is told; the occupant stays
    phone.send_presence(pto=room + '/Bob', ptype='unavailable', pstatus='phone off')
    own = await presence_from(phone, room + '/Bob', lambda p: p['type'] == 'unavailable')
    assert 110 in codes(own), own
    muc.groupchat(alice, room, 'still there?')
    await reflected(laptop, room, 'Alice', 'still there?')
    while not alice.presences.empty():
        pres = alice.presences.get_nowait()
        assert not (pres['from'] == room + '/Bob' and pres['type'] == 'unavailable'), pres
    assert seen['type'] != 'unavailable'
    # the last one leaves: the occupant goes
    laptop.send_presence(pto=room + '/Bob', ptype='unavailable')
    gone = await presence_from(alice, room + '/Bob', lambda p: p['type'] == 'unavailable')
    assert item(gone).get('role') == 'none', gone
    await muc.close_all(alice, phone, laptop)


async def test_one_user_under_two_nicks():
    alice = await login('alice')
    phone, laptop = await login('bob', 'phone'), await login('bob', 'laptop')
    room = room_jid('aliases')
    await create(alice, room, 'Alice', {'muc#roomconfig_moderatedroom': '1'})
    for device, nick in ((phone, 'Bob'), (laptop, 'Robert')):
        pres = await join(device, room, nick)
        assert item(pres).get('role') == 'visitor', pres
    # an affiliation is the user's: both of his occupants get its role
    await muc.set_affiliation(alice, room, jid('bob'), 'member')
    for nick in ('Bob', 'Robert'):
        pres = await presence_from(alice, '%s/%s' % (room, nick),
                                   lambda p: item(p).get('affiliation') == 'member')
        assert item(pres).get('role') == 'participant', pres
    await muc.close_all(alice, phone, laptop)


def with_form(value):
    return ("<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value>"
            "</field><field var='with'><value>%s</value></field></x>" % (NS_DATA, NS_MAM, value))


async def bodies_with(client, room, value):
    results, fin = await muc.mam(client, room, with_form(value))
    return [muc.archived(r).findtext(q(harness.NS_CLIENT, 'body')) for r in results], fin


def time_form(var, value):
    return ("<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value>"
            "</field><field var='%s'><value>%s</value></field></x>" % (NS_DATA, NS_MAM, var, value))


async def test_room_archive_from_the_epoch():
    alice = await login('alice')
    room = room_jid('epoch')
    await create(alice, room, 'Alice')
    muc.groupchat(alice, room, 'since 1970')
    await reflected(alice, room, 'Alice', 'since 1970')
    for value in ('1970-01-01T00:00:00Z', '1969-12-31T23:59:59Z'):
        results, _ = await muc.mam(alice, room, time_form('start', value))
        assert [muc.archived(r).findtext(q(harness.NS_CLIENT, 'body')) for r in results] == \
            ['since 1970'], value
        results, fin = await muc.mam(alice, room, time_form('end', value))
        assert results == [] and fin.get('complete') == 'true', value
    await muc.close_all(alice)


async def test_room_archive_with_filter():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('sayings')
    await create(alice, room, 'Alice')
    await join(bob, room, 'Bob')
    await join(carol, room, 'Carol')
    for client, nick, body in ((bob, 'Bob', 'b1'), (carol, 'Carol', 'c1'), (bob, 'Bob', 'b2')):
        muc.groupchat(client, room, body)
        await reflected(alice, room, nick, body)
    # by occupant JID: what the one behind the nick said
    bodies, fin = await bodies_with(carol, room, room + '/Bob')
    assert bodies == ['b1', 'b2'], bodies
    assert fin.findtext('{%s}set/{%s}count' % (muc.NS_RSM, muc.NS_RSM)) == '2', fin
    assert (await bodies_with(carol, room, room + '/Nobody'))[0] == []
    assert (await bodies_with(carol, room, room))[0] == ['b1', 'c1', 'b2']
    # by real JID: only for those the room shows real JIDs to
    assert await iq_error(carol, room, 'set', "<query xmlns='%s'>%s</query>"
                          % (NS_MAM, with_form(jid('bob')))) == ('auth', 'forbidden')
    assert (await bodies_with(alice, room, jid('bob')))[0] == ['b1', 'b2']
    assert await iq_error(carol, room, 'set', "<query xmlns='%s'>%s</query>"
                          % (NS_MAM, with_form('@bad@'))) == ('modify', 'jid-malformed')
    # slixmpp's own MAM client, filtering by occupant JID
    found = [m async for m in carol['xep_0313'].iterate(room, with_jid=muc.JID(room + '/Carol'))]
    assert [m['mam_result']['forwarded']['stanza']['body'] for m in found] == ['c1'], found
    await muc.close_all(alice, bob, carol)


async def test_configuration_change_status_codes():
    alice, bob = await login('alice'), await login('bob')
    room = room_jid('settings')
    await create(alice, room, 'Alice')
    pres = await join(bob, room, 'Bob')
    assert 170 in codes(pres), pres  # the room is logged
    for fields, expected in (({'muc#roomconfig_roomname': 'Settings'}, {104}),
                             ({'muc#roomconfig_whois': 'anyone'}, {104, 172}),
                             ({'muc#roomconfig_whois': 'moderators'}, {104, 173}),
                             ({'muc#roomconfig_enablelogging': '0'}, {104, 171}),
                             ({'muc#roomconfig_enablearchiving': '1'}, {104, 170})):
        await configure(alice, room, fields)
        for client in (alice, bob):
            note = await message_from(client, room, lambda m: codes(m))
            assert codes(note) == expected, (fields, note)
            assert note['type'] == 'groupchat', note
    # an unlogged room: no 170 on joining, nothing archived, no stanza-id
    await configure(alice, room, {'muc#roomconfig_enablelogging': '0'})
    bob.send_presence(pto=room + '/Bob', ptype='unavailable')
    await presence_from(bob, room + '/Bob', lambda p: p['type'] == 'unavailable')
    pres = await join(bob, room, 'Bob')
    assert 170 not in codes(pres), pres
    muc.groupchat(alice, room, 'off the record')
    msg = await reflected(bob, room, 'Alice', 'off the record')
    assert msg.xml.find(q(muc.NS_SID, 'stanza-id')) is None, msg
    results, _ = await muc.mam(bob, room)
    assert all(muc.archived(r).findtext(q(harness.NS_CLIENT, 'body')) != 'off the record'
               for r in results), results
    await muc.close_all(alice, bob)


def request_form(fields, form_type='submit'):
    return ("<x xmlns='%s' type='%s'><field var='FORM_TYPE'><value>%s</value></field>%s</x>"
            % (NS_DATA, form_type, NS_REQUEST, ''.join(
                "<field var='%s'><value>%s</value></field>" % f for f in fields.items())))


def voice_form(msg):
    form = msg.xml.find(q(NS_DATA, 'x'))
    if form is None or form.get('type') != 'form':
        return None
    values = {f.get('var'): f.findtext(q(NS_DATA, 'value')) for f in form.iter(q(NS_DATA, 'field'))}
    return values if values.get('FORM_TYPE') == NS_REQUEST else None


async def test_voice_request():
    alice, bob, carol = await login('alice'), await login('bob'), await login('carol')
    room = room_jid('stage')
    await create(alice, room, 'Alice', {'muc#roomconfig_moderatedroom': '1'})
    await muc.set_affiliation(alice, room, jid('carol'), 'member')
    pres = await join(bob, room, 'Bob')
    assert item(pres).get('role') == 'visitor', pres
    await join(carol, room, 'Carol')
    carol_forms = []
    carol.register_handler(Callback('voice forms', MatchXPath(
        '{%s}message/{%s}x' % (harness.NS_CLIENT, NS_DATA)), carol_forms.append))
    muc.groupchat(bob, room, 'may I?')
    err = await message_from(bob, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('auth', 'forbidden'), err
    # the visitor asks (§7.13); the moderator, and only she, gets the form (§8.6)
    bob.send_raw("<message to='%s'>%s</message>" % (room, request_form(
        {'muc#role': 'participant'})))
    ask = await message_from(alice, room, lambda m: voice_form(m) is not None)
    values = voice_form(ask)
    assert values['muc#roomnick'] == 'Bob' and values['muc#jid'] == str(bob.boundjid), values
    assert values['muc#request_allow'] in ('false', '0'), values
    # a participant cannot approve, nor ask for voice she has
    values['muc#request_allow'] = 'true'
    del values['FORM_TYPE']
    carol.send_raw("<message to='%s'>%s</message>" % (room, request_form(values)))
    err = await message_from(carol, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('auth', 'forbidden'), err
    carol.send_raw("<message to='%s'>%s</message>" % (room, request_form(
        {'muc#role': 'participant'})))
    err = await message_from(carol, room, lambda m: m['type'] == 'error')
    assert error_of(err) == ('cancel', 'not-acceptable'), err
    # the moderator approves: Bob gets a voice, everyone sees it
    alice.send_raw("<message to='%s'>%s</message>" % (room, request_form(values)))
    seen = await presence_from(carol, room + '/Bob', lambda p: item(p).get('role') ==
                               'participant')
    assert item(seen).find(q(NS_USER, 'actor')) is not None, seen
    muc.groupchat(bob, room, 'thank you')
    await reflected(carol, room, 'Bob', 'thank you')
    assert not [m for m in carol_forms if voice_form(m)], 'a non-moderator got the form'
    await muc.close_all(alice, bob, carol)


if __name__ == '__main__':
    harness.run([test_occupant_vcard_and_pep_items,
                 test_one_nick_from_two_devices,
                 test_one_user_under_two_nicks,
                 test_room_archive_from_the_epoch,
                 test_room_archive_with_filter,
                 test_configuration_change_status_codes,
                 test_voice_request],
                server=server, setup=muc.setup)
