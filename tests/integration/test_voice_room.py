#!/usr/bin/env python3
"""test_voice_room.py - calling a room with real WebRTC participants.

The media half of the conference bridge (the signalling half is
test_voice_bridge.py): StanzaJS peers in headless Chromium (the browser
call harness, tests/integration/voice/) call the room's contact
room@call.localhost with an ordinary audio call, JMI propose to the bare
JID then Jingle, each with a tone of its own; each must hear every other
tone and not its own, through the bridge's mix. Three participants, then
ten, on host candidates over loopback.

Skipped when Chromium, playwright-core or stanza/esbuild are missing;
failing instead with VN_REQUIRE_PEERS=1 or VN_REQUIRE_BROWSER=1 (CI).
"""

import asyncio
import random
import tempfile
import xml.etree.ElementTree as ET

import harness
from voice import calls

D = harness.DOMAIN
MUC = 'conference.' + D
CALL = 'call.' + D
PASSWORD = 'room-call-secret'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_OWNER = NS_MUC + '#owner'
NS_DATA = 'jabber:x:data'
# Tones 70 Hz apart or more, chosen so that no harmonic, sum, difference or
# intermodulation product 2a-b of two of them falls within 30 Hz of a third
# (a mix of evenly spaced tones has 2a-b exactly on a neighbour's tone).
TONES = [300, 370, 475, 545, 881, 986, 1056, 1322, 1903, 2008]
NAMES = ['p%d' % i for i in range(len(TONES))]
PORT_BASE = random.randrange(42000, 60000, 100)


class Server(harness.Server):
    def __init__(self):
        self.https_port, = harness.free_ports(1)
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('c2s:\n', f"""  - type: https
    address: 127.0.0.1
    port: {self.https_port}
c2s:
""", 1)
        text += ('  roster:\n  presence:\n  muc:\n  extdisco:\n  voice:\n'
                 '    addresses: 127.0.0.1\n'
                 f'    port_min: {PORT_BASE}\n    port_max: {PORT_BASE + 99}\n')
        with open(self.config_path, 'w') as f:
            f.write(text)

    def ws_url(self):
        return 'wss://127.0.0.1:%d/xmpp-websocket' % self.https_port


server = Server()


def setup():
    for name in NAMES + ['owner']:
        server.adduser('%s@%s' % (name, D), PASSWORD)


async def create_room(name):
    """An open persistent room, made by 'owner' over slixmpp."""
    owner = harness.Client('owner@%s/setup' % D, PASSWORD)
    await owner.login(server)
    room = '%s@%s' % (name, MUC)
    owner.send_raw("<presence to='%s/owner'><x xmlns='%s'/></presence>" % (room, NS_MUC))
    await asyncio.sleep(0.5)
    iq = owner.make_iq(ito=room, itype='set')
    iq.append(ET.fromstring(
        "<query xmlns='%s'><x xmlns='%s' type='submit'><field var='FORM_TYPE'><value>%s#"
        "roomconfig</value></field><field var='muc#roomconfig_persistentroom'><value>1</value>"
        "</field></x></query>" % (NS_OWNER, NS_DATA, NS_MUC)))
    await iq.send(timeout=5)
    return owner


async def room_call(count, room):
    """count participants call room and check what each hears."""
    tmp = tempfile.mkdtemp(prefix='room-', dir=server.dir)
    bundle = calls.bundle(tmp)
    owner = await create_room(room)
    peers = [calls.Peer(bundle, tmp, NAMES[i], TONES[i]) for i in range(count)]
    tones = TONES[:count]
    try:
        await asyncio.gather(*(p.start() for p in peers))
        await asyncio.gather(*(p.connect(server.ws_url(), '%s@%s' % (p.name, D), PASSWORD,
                                         relay=False) for p in peers))
        for p in peers:
            await p.call('%s@%s' % (room, CALL))
        await asyncio.gather(*(p.wait_connected(60) for p in peers))
        # ICE is up; DTLS and the first mixes follow.
        await asyncio.sleep(6)
        results = await asyncio.gather(*(p.listen(3, tones) for p in peers))
        stats = await asyncio.gather(*(p.stats() for p in peers))
        for p, result in zip(peers, results):
            others = sorted(t for t in tones if t != p.freq)
            print('# %s (%d Hz) hears %s' % (p.name, p.freq, calls.heard(result)))
            assert calls.heard(result) == others, (p.name, result, stats)
            assert p.freq in calls.absent(result), (p.name, 'hears itself', result)
        await asyncio.gather(*(p.hangup() for p in peers))
    finally:
        await asyncio.gather(*(p.stop() for p in peers))
        await owner.close()


async def test_three_callers_hear_each_other_not_themselves():
    await room_call(3, 'trio')


async def test_ten_callers_hear_the_other_nine():
    await room_call(10, 'ten')


def browser_tests():
    """The tests, or stand-ins: skipped when a peer is missing, failing
    with VN_REQUIRE_PEERS / VN_REQUIRE_BROWSER."""
    tests = [test_three_callers_hear_each_other_not_themselves,
             test_ten_callers_hear_the_other_nine]
    try:
        why = calls.missing()
    except SystemExit as e:
        def required(name):
            def run():
                raise AssertionError(str(e))
            run.__name__ = name
            return run
        return [required(t.__name__) for t in tests]
    if not why:
        return tests

    def skipped(name):
        def run():
            pass
        run.__name__ = name + ' # SKIP ' + why
        return run
    return [skipped(t.__name__) for t in tests]


if __name__ == '__main__':
    harness.run(browser_tests(), server=server, setup=setup, timeout=200)
