#!/usr/bin/env python3
"""test_messages.py - routing between clients: full JIDs, errors, conflicts, spoofing.

Two accounts with several resources each, all real slixmpp sessions.
"""

import asyncio

import harness

ALICE, BOB = 'alice@' + harness.DOMAIN, 'bob@' + harness.DOMAIN
PASSWORD = 'secret-password'

server = harness.Server()


def setup():
    server.adduser(ALICE, PASSWORD)
    server.adduser(BOB, PASSWORD)


async def next_message(client, timeout=5):
    return await asyncio.wait_for(client.messages.get(), timeout)


def ping_iq(client, to):
    iq = client.Iq()
    iq['type'] = 'get'
    iq['to'] = to
    iq.enable('ping')
    return iq


def assert_stanza_error(iq, to, condition, error_type='cancel'):
    assert iq['type'] == 'error', iq
    assert iq['from'] == to, 'error from %s, expected %s: %s' % (iq['from'], to, iq)
    assert iq['error']['condition'] == condition, iq
    assert iq['error']['type'] == error_type, iq


async def test_message_to_full_jid_carries_sender_full_jid():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    bob_desk = await harness.login(server, BOB + '/desk', PASSWORD)
    bob_phone = await harness.login(server, BOB + '/phone', PASSWORD)
    alice.send_message(mto=BOB + '/desk', mbody='to the desk', mtype='chat')
    alice.send_message(mto=BOB + '/phone', mbody='to the phone', mtype='chat')
    for client, body in ((bob_desk, 'to the desk'), (bob_phone, 'to the phone')):
        msg = await next_message(client)
        assert msg['body'] == body, msg
        assert msg['from'] == ALICE + '/phone', msg
        assert msg['to'] == client.boundjid, msg
        assert msg['type'] == 'chat', msg
    # each resource got exactly its own message
    await bob_desk.ping()
    await bob_phone.ping()
    assert bob_desk.messages.empty() and bob_phone.messages.empty()
    for client in (alice, bob_desk, bob_phone):
        await client.close()


async def test_iq_to_offline_resource_is_service_unavailable():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    bob = await harness.login(server, BOB + '/desk', PASSWORD)
    error = await alice.iq_error(ping_iq(alice, BOB + '/gone'))
    assert_stanza_error(error, BOB + '/gone', 'service-unavailable')
    await bob.close()
    await alice.close()


async def test_iq_to_offline_user_is_service_unavailable():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    error = await alice.iq_error(ping_iq(alice, BOB + '/desk'))
    assert_stanza_error(error, BOB + '/desk', 'service-unavailable')
    await alice.close()


async def test_iq_to_nonexistent_user_is_service_unavailable():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    nobody = 'nobody@' + harness.DOMAIN + '/x'
    error = await alice.iq_error(ping_iq(alice, nobody))
    assert_stanza_error(error, nobody, 'service-unavailable')
    await alice.close()


async def test_iq_to_unknown_remote_domain_is_remote_server_not_found():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    remote = 'someone@unknown.example/x'
    error = await alice.iq_error(ping_iq(alice, remote))
    assert_stanza_error(error, remote, 'remote-server-not-found')
    await alice.close()


async def test_same_resource_twice_conflicts_out_the_first_stream():
    first = await harness.login(server, ALICE + '/same', PASSWORD)
    second = await harness.login(server, ALICE + '/same', PASSWORD)
    await asyncio.wait_for(first.disconnected_event.wait(), 5)
    conditions = [error['condition'] for error in first.stream_errors]
    assert conditions == ['conflict'], 'first stream errors: %s' % first.stream_errors
    assert str(second.boundjid) == ALICE + '/same', second.boundjid
    await second.ping()
    # the new session is the one that receives
    bob = await harness.login(server, BOB + '/desk', PASSWORD)
    bob.send_message(mto=ALICE + '/same', mbody='still there?')
    msg = await next_message(second)
    assert msg['body'] == 'still there?' and msg['from'] == BOB + '/desk', msg
    await bob.close()
    await second.close()


async def test_spoofed_from_is_overwritten():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    bob = await harness.login(server, BOB + '/desk', PASSWORD)
    for forged in ('mallory@' + harness.DOMAIN + '/x', BOB + '/desk', ALICE + '/other',
                   'admin@elsewhere.example'):
        alice.make_message(mto=BOB + '/desk', mbody='from ' + forged, mfrom=forged).send()
        msg = await next_message(bob)
        assert msg['body'] == 'from ' + forged, msg
        assert msg['from'] == ALICE + '/phone', 'forged from %s arrived as %s' % (
            forged, msg['from'])
    await bob.close()
    await alice.close()


async def test_server_still_accepts_logins():
    client = await harness.login(server, BOB + '/last', PASSWORD)
    await client.ping()
    await client.close()


if __name__ == '__main__':
    harness.run([test_message_to_full_jid_carries_sender_full_jid,
                 test_iq_to_offline_resource_is_service_unavailable,
                 test_iq_to_offline_user_is_service_unavailable,
                 test_iq_to_nonexistent_user_is_service_unavailable,
                 test_iq_to_unknown_remote_domain_is_remote_server_not_found,
                 test_same_resource_twice_conflicts_out_the_first_stream,
                 test_spoofed_from_is_overwritten,
                 test_server_still_accepts_logins],
                server=server, setup=setup)
