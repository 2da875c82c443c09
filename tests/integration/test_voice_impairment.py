#!/usr/bin/env python3
"""test_voice_impairment.py - one caller of a room on a bad network.

Four StanzaJS participants in headless Chromium call a room's contact
(tests/integration/voice/ is the harness). Between the first of them and
the bridge sits a UDP relay written here with asyncio, inserted by
rewriting the bridge's candidate that participant sees (the harness's
redirect(): its browser is told the relay's address, the relay forwards to
the bridge's real one). Its media (RTP and RTCP, RFC 7983's 128-191 first
byte; STUN and DTLS pass untouched) goes through a bad network both ways:
random loss, bursts of loss (a Gilbert-Elliott model), delay with jitter
beyond the packet interval, hence reordering, and now and then one packet
held back longer. The others reach the bridge directly. Every participant
must hear every other one's tone, the impaired one too, and the impaired
one's losses must be real (its receiver reports them) while the others
lose nothing to speak of.

Skipped when Chromium, playwright-core or stanza/esbuild are missing;
failing instead with VN_REQUIRE_PEERS=1 or VN_REQUIRE_BROWSER=1 (CI).
"""

import asyncio
import random
import tempfile

import harness
import test_voice_room as room_test
from voice import calls

D = harness.DOMAIN
PASSWORD = room_test.PASSWORD
TONES = room_test.TONES[:4]
NAMES = room_test.NAMES[:4]


class Server(room_test.Server):
    pass


server = Server()
room_test.server = server


def setup():
    for name in NAMES + ['owner']:
        server.adduser('%s@%s' % (name, D), PASSWORD)


class BadNetwork:
    """What one direction of an impaired flow goes through."""

    def __init__(self, rng):
        self.rng = rng
        self.bad = False  # Gilbert-Elliott state
        self.dropped = self.passed = 0

    def delay(self):
        """Seconds to hold a packet, or None to drop it."""
        r = self.rng.random
        self.bad = r() < (0.7 if self.bad else 0.02)  # bursts of ~3 packets
        if r() < (0.5 if self.bad else 0.03):
            self.dropped += 1
            return None
        self.passed += 1
        held = 0.040 + r() * 0.030  # 40 ms, 30 ms of jitter: reordering
        if r() < 0.02:
            held += 0.080  # one held back well behind the others
        return held


def is_media(data):
    return len(data) > 0 and 128 <= data[0] <= 191


class Relay:
    """UDP between one caller and the bridge, through a BadNetwork each way."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(7)
        self.up, self.down = BadNetwork(self.rng), BadNetwork(self.rng)
        self.front = None
        self.target = None  # the bridge's candidate, once the browser saw it
        self.flows = {}     # caller address -> its socket towards the bridge

    async def start(self):
        self.front, _ = await self.loop.create_datagram_endpoint(
            lambda: Front(self), local_addr=('127.0.0.1', 0))
        return self.front.get_extra_info('sockname')[1]

    def stop(self):
        self.front.close()
        for flow in self.flows.values():
            flow.close()

    def send(self, transport, data, addr, network):
        if not is_media(data):
            transport.sendto(data, addr)
            return
        held = network.delay()
        if held is not None:
            self.loop.call_later(held, self._send_late, transport, data, addr)

    @staticmethod
    def _send_late(transport, data, addr):
        if not transport.is_closing():
            transport.sendto(data, addr)


class Flow:
    """One address of the caller's: a socket of its own towards the bridge."""

    def __init__(self, relay, caller):
        self.relay, self.caller = relay, caller
        self.back = None
        asyncio.ensure_future(self._open())

    async def _open(self):
        self.back, _ = await self.relay.loop.create_datagram_endpoint(
            lambda: Back(self), remote_addr=self.relay.target)

    def from_caller(self, data):
        if self.back is not None:  # checks before it are retransmitted
            self.relay.send(self.back, data, None, self.relay.up)

    def from_bridge(self, data):
        self.relay.send(self.relay.front, data, self.caller, self.relay.down)

    def close(self):
        if self.back is not None:
            self.back.close()


class Front(asyncio.DatagramProtocol):
    def __init__(self, relay):
        self.relay = relay

    def datagram_received(self, data, addr):
        if self.relay.target is None:
            return
        flow = self.relay.flows.get(addr)
        if flow is None:
            flow = self.relay.flows[addr] = Flow(self.relay, addr)
        flow.from_caller(data)


class Back(asyncio.DatagramProtocol):
    def __init__(self, flow):
        self.flow = flow

    def datagram_received(self, data, addr):
        self.flow.from_bridge(data)


async def test_one_impaired_caller_does_not_disturb_the_others():
    tmp = tempfile.mkdtemp(prefix='impair-', dir=server.dir)
    bundle = calls.bundle(tmp)
    relay = Relay()
    relay_port = await relay.start()
    owner = await room_test.create_room('rough')
    peers = [calls.Peer(bundle, tmp, NAMES[i], TONES[i]) for i in range(len(TONES))]
    contact = 'rough@call.' + D
    try:
        await asyncio.gather(*(p.start() for p in peers))
        await asyncio.gather(*(p.connect(server.ws_url(), '%s@%s' % (p.name, D), PASSWORD,
                                         relay=False) for p in peers))
        impaired, others = peers[0], peers[1:]
        await impaired.redirect('127.0.0.1', relay_port)
        await impaired.call(contact)
        seen = await impaired.wait_event(lambda e: e.get('event') == 'redirected', 30)
        relay.target = (seen['ip'], int(seen['port']))
        for p in others:
            await p.call(contact)
        await asyncio.gather(*(p.wait_connected(60) for p in peers))
        await room_test.wait_media(peers)
        await asyncio.sleep(2)
        results = await asyncio.gather(*(p.listen(4, TONES) for p in peers))
        stats = await asyncio.gather(*(p.stats() for p in peers))
        dropped = relay.up.dropped + relay.down.dropped
        passed = relay.up.passed + relay.down.passed
        print('# the bad network dropped %d of %d media packets' % (dropped, dropped + passed))
        for p, result, st in zip(peers, results, stats):
            print('# %s (%d Hz) hears %s; lost %s, concealed %s' % (
                p.name, p.freq, calls.heard(result), st.get('packetsLost'),
                st.get('concealedSamples')))
        for p, result, st in zip(peers, results, stats):
            want = sorted(t for t in TONES if t != p.freq)
            assert calls.heard(result) == want, (p.name, result, st)
            room_test.assert_not_itself(p, result)
        assert dropped > 0.02 * (dropped + passed), (dropped, passed)
        assert stats[0]['packetsLost'] > 0, stats[0]
        for st in stats[1:]:
            assert st['packetsLost'] <= max(2, 0.01 * st['packetsReceived']), st
        await asyncio.gather(*(p.hangup() for p in peers))
    finally:
        await asyncio.gather(*(p.stop() for p in peers))
        await owner.close()
        relay.stop()


def browser_test():
    try:
        why = calls.missing()
    except SystemExit as e:
        def required():
            raise AssertionError(str(e))
        required.__name__ = test_one_impaired_caller_does_not_disturb_the_others.__name__
        return required
    if not why:
        return test_one_impaired_caller_does_not_disturb_the_others

    def skipped():
        pass
    skipped.__name__ = (test_one_impaired_caller_does_not_disturb_the_others.__name__ +
                        ' # SKIP ' + why)
    return skipped


if __name__ == '__main__':
    harness.run([browser_test()], server=server, setup=setup, timeout=240)
