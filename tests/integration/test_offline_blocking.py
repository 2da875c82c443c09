#!/usr/bin/env python3
"""test_offline_blocking.py - what happens while an account is away, and blocking.

Offline storage (XEP-0160) with delay stamps (XEP-0203) and its quota,
messages to accounts that do not exist, the blocking command (XEP-0191)
with two resources, last activity (XEP-0012) and entity time (XEP-0202),
all through real slixmpp sessions against a real vestnikd.
"""

import asyncio
import datetime

import slixmpp

import harness

ALICE = 'alice@' + harness.DOMAIN
BOB = 'bob@' + harness.DOMAIN
CAROL = 'carol@' + harness.DOMAIN
DAVE = 'dave@' + harness.DOMAIN
PASSWORD = 'secret-password'
OFFLINE_QUOTA = 4
BLOCKLIST_MAX = 3
NS_DELAY = 'urn:xmpp:delay'
NS_BLOCKING = 'urn:xmpp:blocking'
NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors'


class Server(harness.Server):
    """The harness's server with this file's modules loaded."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  offline:\n'
                    '    max_messages: %d\n'
                    '  blocking:\n'
                    '    max_items: %d\n'
                    '  last:\n'
                    '  time:\n' % (OFFLINE_QUOTA, BLOCKLIST_MAX))


server = Server()


def setup():
    for jid in (ALICE, BOB, CAROL, DAVE):
        server.adduser(jid, PASSWORD)


async def login(jid):
    client = harness.Client(jid, PASSWORD)
    for plugin in ('xep_0012', 'xep_0191', 'xep_0202'):
        client.register_plugin(plugin)
    return await client.login(server)


async def next_message(client, timeout=5):
    return await asyncio.wait_for(client.messages.get(), timeout)


async def assert_no_message(client):
    """Nothing queued once a round trip to the server is done."""
    await client.ping()
    assert client.messages.empty(), 'unexpected %s' % client.messages.get_nowait()


async def go_online(client):
    """Initial presence; the ping makes sure the server handled it."""
    client.send_presence()
    await client.ping()


def delay_stamp(msg):
    delay = msg.xml.find('{%s}delay' % NS_DELAY)
    assert delay is not None, 'no <delay/> in %s' % msg
    assert delay.get('from') == harness.DOMAIN, msg
    stamp = delay.get('stamp')
    assert stamp.endswith('Z'), stamp
    return datetime.datetime.fromisoformat(stamp[:-1]).replace(tzinfo=datetime.timezone.utc)


def assert_error(stanza, condition, error_type='cancel'):
    assert stanza['type'] == 'error', stanza
    assert stanza['error']['condition'] == condition, stanza
    assert stanza['error']['type'] == error_type, stanza


# ------------------------------------------------------------------ offline

async def test_offline_messages_delivered_in_order_with_delay_then_forgotten():
    alice = await login(ALICE + '/phone')
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    bodies = ['first', 'second', 'third']
    for body in bodies:
        alice.send_message(mto=BOB, mbody=body, mtype='chat')
    alice.send_message(mto=BOB + '/gone', mbody='to a resource', mtype='normal')
    await assert_no_message(alice)  # stored, not bounced

    bob = await login(BOB + '/desk')
    await assert_no_message(bob)  # nothing before initial presence
    await go_online(bob)
    stamps = []
    for body in bodies + ['to a resource']:
        msg = await next_message(bob)
        assert msg['body'] == body, 'expected %r, got %s' % (body, msg)
        assert msg['from'] == ALICE + '/phone', msg
        stamps.append(delay_stamp(msg))
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    assert stamps == sorted(stamps), stamps
    assert before <= stamps[0] and stamps[-1] <= after, (before, stamps, after)
    await assert_no_message(bob)
    await bob.close()

    # delivered once: the archive is empty now
    bob = await login(BOB + '/desk')
    await go_online(bob)
    await assert_no_message(bob)
    # and online messages carry no delay
    alice.send_message(mto=BOB, mbody='live', mtype='chat')
    msg = await next_message(bob)
    assert msg['body'] == 'live' and msg.xml.find('{%s}delay' % NS_DELAY) is None, msg
    await bob.close()
    await alice.close()


async def test_negative_priority_and_chat_states_are_not_delivered():
    alice = await login(ALICE + '/phone')
    state = alice.make_message(mto=CAROL, mtype='chat')
    state.xml.append(slixmpp.xmlstream.ET.Element(
        '{http://jabber.org/protocol/chatstates}composing'))
    state.send()
    alice.send_message(mto=CAROL, mbody='kept', mtype='chat')
    await assert_no_message(alice)

    carol = await login(CAROL + '/quiet')
    carol.send_presence(ppriority=-1)
    await carol.ping()
    await assert_no_message(carol)
    await carol.close()

    carol = await login(CAROL + '/desk')
    await go_online(carol)
    msg = await next_message(carol)
    assert msg['body'] == 'kept', msg
    await assert_no_message(carol)
    await carol.close()
    await alice.close()


async def test_offline_quota_bounces_with_service_unavailable():
    alice = await login(ALICE + '/phone')
    for n in range(OFFLINE_QUOTA):
        alice.send_message(mto=DAVE, mbody='fits %d' % n, mtype='chat')
    alice.send_message(mto=DAVE, mbody='too many', mtype='chat')
    error = await next_message(alice)
    assert_error(error, 'service-unavailable')
    assert error['from'] == DAVE, error
    await assert_no_message(alice)

    dave = await login(DAVE + '/desk')
    await go_online(dave)
    for n in range(OFFLINE_QUOTA):
        msg = await next_message(dave)
        assert msg['body'] == 'fits %d' % n, msg
    await assert_no_message(dave)
    await dave.close()
    await alice.close()


async def test_message_to_nonexistent_user_is_service_unavailable():
    alice = await login(ALICE + '/phone')
    nobody = 'nobody@' + harness.DOMAIN
    alice.send_message(mto=nobody, mbody='anyone?', mtype='chat')
    error = await next_message(alice)
    assert_error(error, 'service-unavailable')
    assert error['from'] == nobody, error
    await alice.close()


# ----------------------------------------------------------------- blocking

def blocked_pushes(client):
    pushes = asyncio.Queue()
    client.add_event_handler('blocked', pushes.put_nowait)
    client.add_event_handler('unblocked', pushes.put_nowait)
    return pushes


def push_items(iq, kind):
    element = iq.xml.find('{%s}%s' % (NS_BLOCKING, kind))
    assert element is not None, 'expected a <%s/> push, got %s' % (kind, iq)
    return sorted(item.get('jid') for item in element)


async def test_block_filters_both_ways_and_pushes_to_resources():
    alice = await login(ALICE + '/phone')
    alice_presence = asyncio.Queue()
    alice.add_event_handler('presence_unavailable', alice_presence.put_nowait)
    await go_online(alice)  # presence to a bare JID reaches available resources
    bob = await login(BOB + '/one')
    bob_two = await login(BOB + '/two')
    await go_online(bob)
    for client in (bob, bob_two):
        blocklist = await client['xep_0191'].get_blocked()
        assert list(blocklist['blocklist']['items']) == [], blocklist
    pushes = blocked_pushes(bob_two)

    await bob['xep_0191'].block([ALICE])
    push = await asyncio.wait_for(pushes.get(), 5)
    assert push_items(push, 'block') == [ALICE]
    # alice has no subscription to bob's presence: no unavailable presence
    # tells her bob's resources (XEP-0191 §3.3)
    await alice.ping()
    assert alice_presence.empty(), alice_presence.get_nowait()
    blocklist = await bob_two['xep_0191'].get_blocked()
    assert [str(j) for j in blocklist['blocklist']['items']] == [ALICE], blocklist

    # inbound: messages bounce as if bob were offline, iq requests too
    alice.send_message(mto=BOB, mbody='hello?', mtype='chat')
    alice.send_message(mto=BOB + '/two', mbody='hello two?', mtype='chat')
    for _ in range(2):
        assert_error(await next_message(alice), 'service-unavailable')
    ping = alice.make_iq_get(ito=BOB + '/one')
    ping.enable('ping')
    assert_error(await alice.iq_error(ping), 'service-unavailable')
    await assert_no_message(bob)
    await assert_no_message(bob_two)

    # outbound: refused with the blocking error
    bob.send_message(mto=ALICE + '/phone', mbody='psst', mtype='chat')
    refused = await next_message(bob)
    assert_error(refused, 'not-acceptable')
    assert refused.xml.find('{jabber:client}error/{%s}blocked' % NS_BLOCKING_ERRORS) is not None, (
        refused)
    ping = bob.make_iq_get(ito=ALICE + '/phone')
    ping.enable('ping')
    error = await bob.iq_error(ping)
    assert_error(error, 'not-acceptable')
    await assert_no_message(alice)

    # unblocking restores both ways
    await bob['xep_0191'].unblock([ALICE])
    push = await asyncio.wait_for(pushes.get(), 5)
    assert push_items(push, 'unblock') == [ALICE]
    alice.send_message(mto=BOB + '/one', mbody='back', mtype='chat')
    assert (await next_message(bob))['body'] == 'back'
    bob.send_message(mto=ALICE + '/phone', mbody='hi', mtype='chat')
    assert (await next_message(alice))['body'] == 'hi'
    for client in (alice, bob, bob_two):
        await client.close()


async def test_domain_block_matches_its_users_and_unblock_all_empties_the_list():
    bob = await login(BOB + '/one')
    carol = await login(CAROL + '/desk')
    await bob['xep_0191'].get_blocked()
    pushes = blocked_pushes(bob)
    await bob['xep_0191'].block([harness.DOMAIN + '/nothing', 'example.org'])
    assert push_items(await asyncio.wait_for(pushes.get(), 5), 'block') == [
        'example.org', harness.DOMAIN + '/nothing']
    # a domain/resource item does not cover users of that domain
    carol.send_message(mto=BOB + '/one', mbody='still through', mtype='chat')
    assert (await next_message(bob))['body'] == 'still through'
    # a domain item covers its subdomains' users
    bob.send_message(mto='someone@sub.example.org', mbody='x', mtype='chat')
    assert_error(await next_message(bob), 'not-acceptable')

    unblock_all = bob.make_iq_set()
    unblock_all.xml.append(slixmpp.xmlstream.ET.Element('{%s}unblock' % NS_BLOCKING))
    await unblock_all.send()
    assert push_items(await asyncio.wait_for(pushes.get(), 5), 'unblock') == []
    blocklist = await bob['xep_0191'].get_blocked()
    assert list(blocklist['blocklist']['items']) == [], blocklist
    await bob.close()
    await carol.close()


async def test_block_with_invalid_jid_is_jid_malformed():
    bob = await login(BOB + '/one')
    for items in (["<item jid='bad@@example.org'/>"], []):
        iq = bob.make_iq_set()
        iq.xml.append(slixmpp.xmlstream.ET.fromstring(
            "<block xmlns='%s'>%s</block>" % (NS_BLOCKING, ''.join(items))))
        error = await bob.iq_error(iq)
        assert_error(error, 'jid-malformed' if items else 'bad-request', 'modify')
    blocklist = await bob['xep_0191'].get_blocked()
    assert list(blocklist['blocklist']['items']) == [], blocklist
    await bob.close()


async def test_blocklist_is_capped_at_max_items():
    dave = await login(DAVE + '/cap')
    await dave['xep_0191'].block(['one@example.org', 'two@example.org'])
    # past max_items the whole command is refused, nothing of it applied
    iq = dave.make_iq_set()
    iq.xml.append(slixmpp.xmlstream.ET.fromstring(
        "<block xmlns='%s'><item jid='three@example.org'/><item jid='four@example.org'/>"
        "</block>" % NS_BLOCKING))
    error = (await dave.iq_error(iq)).xml.find('{jabber:client}error')
    # slixmpp does not know RFC 6120's policy-violation: read the XML
    assert error.get('type') == 'modify' and error.find(
        '{urn:ietf:params:xml:ns:xmpp-stanzas}policy-violation') is not None, error
    blocklist = await dave['xep_0191'].get_blocked()
    assert sorted(str(jid) for jid in blocklist['blocklist']['items']) == [
        'one@example.org', 'two@example.org'], blocklist
    # what is already listed does not count twice; up to the cap is fine
    await dave['xep_0191'].block(['Two@example.org', 'three@example.org'])
    blocklist = await dave['xep_0191'].get_blocked()
    assert len(blocklist['blocklist']['items']) == BLOCKLIST_MAX, blocklist
    await dave['xep_0191'].unblock(['one@example.org'])
    await dave['xep_0191'].block(['four@example.org'])
    await dave['xep_0191'].unblock([])
    await dave.close()


# ------------------------------------------------------ last activity, time

async def test_last_activity_of_own_account_and_server():
    alice = await login(ALICE + '/away')
    await go_online(alice)
    alice.send_presence(ptype='unavailable', pstatus='gone fishing')
    await alice.ping()
    await alice.close()

    alice = await login(ALICE + '/back')
    last = await alice['xep_0012'].get_last_activity(ALICE)
    assert 0 <= last['last_activity']['seconds'] < 30, last
    assert last['last_activity']['status'] == 'gone fishing', last
    await go_online(alice)
    last = await alice['xep_0012'].get_last_activity(ALICE)
    assert last['last_activity']['seconds'] == 0, last

    uptime = await alice['xep_0012'].get_last_activity(harness.DOMAIN)
    assert 0 <= uptime['last_activity']['seconds'] < 3600, uptime

    bob = await login(BOB + '/one')
    query = bob.make_iq_get(ito=ALICE)
    query.enable('last_activity')
    assert_error(await bob.iq_error(query), 'forbidden', 'auth')
    await bob.close()
    await alice.close()


async def test_entity_time_of_the_server():
    alice = await login(ALICE + '/clock')
    reply = await alice['xep_0202'].get_entity_time(harness.DOMAIN)
    xml = reply.xml.find('{urn:xmpp:time}time')
    assert xml.findtext('{urn:xmpp:time}tzo') == '+00:00', reply
    utc = xml.findtext('{urn:xmpp:time}utc')
    assert utc.endswith('Z'), utc
    then = datetime.datetime.fromisoformat(utc[:-1]).replace(tzinfo=datetime.timezone.utc)
    drift = abs((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())
    assert drift < 5, 'server time %s is %ss off' % (utc, drift)
    await alice.close()


if __name__ == '__main__':
    harness.run([test_offline_messages_delivered_in_order_with_delay_then_forgotten,
                 test_negative_priority_and_chat_states_are_not_delivered,
                 test_offline_quota_bounces_with_service_unavailable,
                 test_message_to_nonexistent_user_is_service_unavailable,
                 test_block_filters_both_ways_and_pushes_to_resources,
                 test_domain_block_matches_its_users_and_unblock_all_empties_the_list,
                 test_block_with_invalid_jid_is_jid_malformed,
                 test_blocklist_is_capped_at_max_items,
                 test_last_activity_of_own_account_and_server,
                 test_entity_time_of_the_server],
                server=server, setup=setup)
