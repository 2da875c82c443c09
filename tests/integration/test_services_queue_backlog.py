#!/usr/bin/env python3
"""A long backlog for a service that was away (xeps/services-bus.md §6):
2,000 messages queued while the component is down arrive in order when it
connects with acknowledgements, at most 256 unacknowledged at a time,
nothing left in the queue afterwards; and once more after the component
is killed halfway through the backlog."""

import asyncio
import time

import harness
from services_component import AckingComponent, ServicesServer

DOMAIN = 'bank.localhost'
SECRET = 'bank-secret'
ALICE = 'alice@localhost'
PASSWORD = 'user-password'
COUNT = 2000

server = ServicesServer([(DOMAIN, SECRET, 'Bank')],
                        limits_options={'stanza_rate': 0, 'component_queue_max': 5000})


def setup():
    server.adduser(ALICE, PASSWORD)


async def queue_backlog(first):
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    for i in range(first, first + COUNT):
        alice.send_message(mto='support@' + DOMAIN, mbody='m%05d' % i, mtype='chat')
    await alice.ping()
    assert alice.messages.empty(), alice.messages.get_nowait()
    await alice.close()


class CountingComponent(AckingComponent):
    def __init__(self, crash_after=None, seen_before=()):
        super().__init__(server, DOMAIN, SECRET)
        self.bodies = []
        self.seen_before = set(seen_before)
        self.crash_after = crash_after
        self.done = asyncio.Event()
        self.add_event_handler('message', self._count)

    def _count(self, msg):
        self.bodies.append(msg['body'])
        if self.crash_after and len(self.bodies) == self.crash_after:
            self.answering = False
            self.crash()
            self.done.set()
        elif len(set(self.bodies) | self.seen_before) >= COUNT:
            self.done.set()


def test_backlog_arrives_in_order():
    asyncio.run(backlog())


async def backlog():
    await queue_backlog(0)
    began = time.monotonic()
    service = await CountingComponent().start()
    await asyncio.wait_for(service.done.wait(), 60)
    took = time.monotonic() - began
    assert service.bodies[:COUNT] == ['m%05d' % i for i in range(COUNT)], service.bodies[:5]
    print('# %d queued messages delivered with acks in %.2f s' % (COUNT, took))
    await asyncio.sleep(0.5)   # the last acks
    service.disconnect()
    await asyncio.sleep(0.3)
    # Nothing is left: a new connection gets nothing from before.
    again = await CountingComponent().start()
    await asyncio.sleep(1)
    assert again.bodies == [], again.bodies[:5]
    again.disconnect()


def test_killed_halfway_through_the_backlog():
    asyncio.run(killed_halfway())


async def killed_halfway():
    await queue_backlog(10000)
    first = await CountingComponent(crash_after=700).start()
    await asyncio.wait_for(first.done.wait(), 60)
    await asyncio.sleep(0.3)
    second = await CountingComponent(seen_before=first.bodies).start()
    await asyncio.wait_for(second.done.wait(), 60)
    want = ['m%05d' % i for i in range(10000, 10000 + COUNT)]
    # Whatever the first one did not acknowledge comes again, in order.
    assert set(first.bodies) | set(second.bodies) == set(want)
    assert second.bodies == sorted(second.bodies), second.bodies[:5]
    assert second.bodies[-1] == want[-1]
    # What it had acknowledged does not come again: at most the window.
    assert len(second.bodies) <= COUNT - 700 + 256, len(second.bodies)
    print('# killed after 700 of %d: %d delivered again or for the first time'
          % (COUNT, len(second.bodies)))
    second.disconnect()


if __name__ == '__main__':
    harness.run([test_backlog_arrives_in_order, test_killed_halfway_through_the_backlog],
                server=server, setup=setup, timeout=180)
