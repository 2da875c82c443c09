#!/usr/bin/env python3
"""The services bus's durable delivery (xeps/services-bus.md): a service
(a slixmpp component) restarted mid-conversation loses nothing, in either
direction, with vestnikd restarted or killed too; a plain XEP-0114
component gets what waited for it; the queue's bound is a clear error."""

import asyncio
import hashlib

from slixmpp.exceptions import IqError

import harness
from services_component import AckingComponent, ServicesServer

DOMAIN = 'diary.localhost'
SECRET = 'diary-secret'
SMALL = 'small.localhost'
PASSWORD = 'parent-password'
ALICE = 'alice@localhost'
BOB = 'bob@localhost'
BOT = 'bot@' + DOMAIN

server = ServicesServer([(DOMAIN, SECRET, 'Diary'), (SMALL, 'small-secret', 'Small')],
                        limits_options={'component_queue_max': 10})


def setup():
    server.adduser(ALICE, PASSWORD)
    server.adduser(BOB, PASSWORD)


async def expect_bodies(component, bodies, timeout=10):
    """Every one of bodies arrives (repeats of unacknowledged ones allowed)."""
    want, seen = set(bodies), []
    while want:
        msg = await asyncio.wait_for(component.messages.get(), timeout)
        seen.append(msg['body'])
        want.discard(msg['body'])
    return seen


def test_component_restarted_mid_conversation_loses_nothing():
    asyncio.run(component_restarted())


async def component_restarted():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    service = await AckingComponent(server, DOMAIN, SECRET).start()
    for i in range(1, 4):
        alice.send_message(mto=BOT, mbody='q%d' % i, mtype='chat')
    await expect_bodies(service, ['q1', 'q2', 'q3'])
    # It handles two more but dies before acknowledging them, then more
    # come while it is away: all of them are delivered when it is back.
    service.answering = False
    alice.send_message(mto=BOT, mbody='q4', mtype='chat')
    alice.send_message(mto=BOT, mbody='q5', mtype='chat')
    await expect_bodies(service, ['q4', 'q5'])
    service.crash()
    await asyncio.sleep(0.3)
    alice.send_message(mto=BOT, mbody='q6', mtype='chat')
    alice.send_message(mto=BOT, mbody='q7', mtype='chat')
    await alice.ping()   # q6 and q7 were taken (no error came back)
    assert alice.messages.empty(), 'an error came back: %s' % alice.messages.get_nowait()
    service = await AckingComponent(server, DOMAIN, SECRET).start()
    seen = await expect_bodies(service, ['q4', 'q5', 'q6', 'q7'])
    assert 'q1' not in seen and 'q3' not in seen, seen   # acknowledged: not again
    assert seen.index('q6') < seen.index('q7'), seen
    # The other way: the service answers; its stanzas count once durable.
    service.send_acked(service.make_message(mto=ALICE + '/phone', mfrom=BOT, mbody='a7',
                                            mtype='chat'))
    reply = await asyncio.wait_for(alice.messages.get(), 5)
    assert reply['body'] == 'a7', reply
    await asyncio.wait_for(service.all_acked.wait(), 5)
    service.disconnect()
    await alice.close()


def test_both_restart_nothing_lost():
    asyncio.run(both_restart())


async def both_restart():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    service = await AckingComponent(server, DOMAIN, SECRET).start()
    service.disconnect()
    await asyncio.sleep(0.3)
    alice.send_message(mto=BOT, mbody='while away', mtype='chat')
    await alice.ping()
    await alice.close()
    server.restart()
    # The queue outlived vestnikd.
    service = await AckingComponent(server, DOMAIN, SECRET).start()
    await expect_bodies(service, ['while away'])
    # Bob is offline: the service's answers go to offline storage, and
    # once acknowledged they survive even kill -9.
    for i in range(10):
        service.send_acked(service.make_message(mto=BOB, mfrom=BOT, mbody='grade %d' % i,
                                                mtype='chat'))
    await asyncio.wait_for(service.all_acked.wait(), 10)
    outbox = service.outbox
    service.crash()
    server.kill9()
    server.start()
    # What the service had sent and not had acknowledged (none here), it
    # sends again on its next connection.
    service = await AckingComponent(server, DOMAIN, SECRET, outbox).start()
    bob = harness.Client(BOB + '/laptop', PASSWORD)
    bob.add_event_handler('session_start', lambda _: bob.send_presence())
    await bob.login(server)
    bodies = set()
    while len(bodies) < 10:
        msg = await asyncio.wait_for(bob.messages.get(), 10)
        bodies.add(msg['body'])
    assert bodies == {'grade %d' % i for i in range(10)}, bodies
    service.disconnect()
    await bob.close()


def test_unacknowledged_outbox_sent_again():
    asyncio.run(unacknowledged_outbox())


async def unacknowledged_outbox():
    # The service sends while vestnikd is going down: what was not
    # acknowledged, it sends again, and it arrives.
    service = await AckingComponent(server, DOMAIN, SECRET).start()
    service.make_message(mto=BOB, mfrom=BOT, mbody='lost in flight?', mtype='chat').send()
    await asyncio.sleep(0.2)   # slixmpp writes (and filters) on its loop
    outbox = list(service.outbox)   # not acknowledged: nothing asked yet
    assert outbox, 'the sent message is not in the outbox'
    service.crash()
    service = await AckingComponent(server, DOMAIN, SECRET, outbox).start()
    await asyncio.wait_for(service.all_acked.wait(), 10)
    bob = harness.Client(BOB + '/laptop', PASSWORD)
    bob.add_event_handler('session_start', lambda _: bob.send_presence())
    await bob.login(server)
    msg = await asyncio.wait_for(bob.messages.get(), 10)
    assert msg['body'] == 'lost in flight?', msg
    service.disconnect()
    await bob.close()


def test_plain_component_gets_the_queue_and_the_bound_is_an_error():
    stream_bodies = asyncio.run(plain_queue())
    assert stream_bodies == ['m%d' % i for i in range(10)], stream_bodies


async def plain_queue():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    for i in range(11):    # component_queue_max is 10
        alice.send_message(mto='x@' + SMALL, mbody='m%d' % i, mtype='chat')
    error = await asyncio.wait_for(alice.messages.get(), 5)
    assert error['type'] == 'error', error
    assert error['error']['condition'] == 'resource-constraint', error
    assert error['body'] == 'm10', error
    # iq requests are not kept: they need an answer now.
    try:
        await alice['xep_0030'].get_info(jid=SMALL, timeout=5)
    except IqError as e:
        assert e.iq['error']['condition'] == 'service-unavailable', e.iq
    else:
        raise AssertionError('disco#info to an absent component succeeded')
    await alice.close()
    # A plain XEP-0114 component (no acknowledgements) gets the queue.
    stream = harness.RawStream(server.component_port)
    stream.open(to=SMALL, ns='jabber:component:accept')
    while stream.header is None and not stream.eof:
        stream._read_some(asyncio.get_event_loop().time() + 5)
    digest = hashlib.sha1((stream.header.get('id') + 'small-secret').encode()).hexdigest()
    stream.send('<handshake>%s</handshake>' % digest)
    ns = 'jabber:component:accept'
    stream.expect(harness.qname(ns, 'handshake'))
    bodies = []
    for _ in range(10):
        msg = await asyncio.to_thread(stream.expect, harness.qname(ns, 'message'), 10)
        bodies.append(msg.findtext(harness.qname(ns, 'body')))
    stream.close()
    return bodies


if __name__ == '__main__':
    harness.run([test_component_restarted_mid_conversation_loses_nothing,
                 test_both_restart_nothing_lost,
                 test_unacknowledged_outbox_sent_again,
                 test_plain_component_gets_the_queue_and_the_bound_is_an_error],
                server=server, setup=setup)
