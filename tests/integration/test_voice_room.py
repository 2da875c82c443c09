#!/usr/bin/env python3
"""test_voice_room.py - calling a room with real WebRTC participants.

The media half of the conference bridge (the signalling half is
test_voice_bridge.py): StanzaJS peers in headless Chromium (the browser
call harness, tests/integration/voice/) call the room's contact
room@call.localhost with an ordinary audio call, JMI propose to the bare
JID then Jingle, each with a tone of its own; each must hear every other
tone and not its own, through the bridge's mix. Three participants, then
ten, on host candidates over loopback; with ten, the room's moderator mutes
all but three at a time (the bridge mixes the loudest few), so that over
four rounds each hears every other one, and nobody hears a muted one.

Skipped when Chromium, playwright-core or stanza/esbuild are missing;
failing instead with VN_REQUIRE_PEERS=1 or VN_REQUIRE_BROWSER=1 (CI).
"""

import asyncio
import random
import tempfile
import xml.etree.ElementTree as ET

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness
from voice import calls

D = harness.DOMAIN
MUC = 'conference.' + D
CALL = 'call.' + D
PASSWORD = 'room-call-secret'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_OWNER = NS_MUC + '#owner'
NS_DATA = 'jabber:x:data'
NS_CALL = 'urn:xmpp:vestnik:call:0'
# Tones 60 Hz apart or more, chosen (by a search) so that no harmonic, sum,
# difference or intermodulation product (2a-b, a+b-c) of some of them falls
# within 20 Hz of another: a mix carries a little of those, and evenly
# spaced tones would have them right on a neighbour's tone.
TONES = [534, 642, 798, 1197, 1539, 2052, 2508, 2643, 2820, 2886]
NAMES = ['p%d' % i for i in range(len(TONES))]
PORT_BASE = random.randrange(42000, 60000, 100)


class Server(harness.Server):
    def __init__(self):
        self.https_port, = harness.free_ports(1)
        # ten browsers log in at once: SCRAM under the sanitizers on a
        # loaded 2-core machine takes more than the harness's 2 s
        super().__init__(handshake_timeout=10)

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
                 f'    port_min: {PORT_BASE}\n    port_max: {PORT_BASE + 99}\n'
                 '    max_speakers: 8\n')
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
    owner.calls = asyncio.Queue()  # the room's <call/> notices
    owner.register_handler(Callback('call notice', MatchXPath('{%s}message/{%s}call' % (
        harness.NS_CLIENT, NS_CALL)), owner.calls.put_nowait))
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


async def wait_media(peers, timeout=40):
    """Until every peer receives audio from the bridge (DTLS after ICE)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stats = await asyncio.gather(*(p.stats() for p in peers))
        waiting = [p.name for p, st in zip(peers, stats) if (st.get('packetsReceived') or 0) < 20]
        if not waiting:
            return
        assert asyncio.get_running_loop().time() < deadline, (
            'no audio from the bridge for %s within %ds' % (waiting, timeout), stats)
        await asyncio.sleep(1)


async def room_notice(owner, pred, what, timeout=20):
    """The next <call/> notice the room sent its occupants matching pred."""
    async def find():
        while True:
            msg = await owner.calls.get()
            call = msg.xml.find('{%s}call' % NS_CALL)
            if pred(msg, call):
                return msg, call
    try:
        return await asyncio.wait_for(find(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError('no room notice: ' + what) from None


async def moderate(owner, room, element, nick):
    """A moderator's <mute/> or <unmute/> (xeps/room-calls.md §7)."""
    iq = owner.make_iq(ito='%s@%s/bridge' % (room, CALL), itype='set')
    iq.append(ET.fromstring("<%s xmlns='urn:xmpp:vestnik:call:0' nick='%s'/>"
                            % (element, nick)))
    await iq.send(timeout=5)


def assert_not_itself(p, result):
    """Its own tone is not heard: well below every tone it hears (a voice
    sent back would be as loud as the others; what is left is the noise
    floor of Opus and of concealment)."""
    levels = {int(f): v for f, v in result['levels'].items()}
    heard = calls.heard(result)
    assert p.freq not in heard, (p.name, 'hears itself', result)
    if heard:
        assert levels[p.freq] <= min(levels[f] for f in heard) - 20, (
            p.name, 'hears itself', result)


def hears_right(p, speakers, result):
    try:
        assert calls.heard(result) == sorted(s.freq for s in speakers if s is not p)
        assert_not_itself(p, result)
        return True
    except AssertionError:
        return False


async def check_hearing(peers, speakers, tones, tries=1):
    """Each peer hears exactly the speakers other than itself. With tries,
    it listens again (3 s each time) while some peer does not yet: after
    the speakers change, a browser on a loaded machine plays what it
    received seconds before (the bridge's mix changes at its next tick)."""
    for attempt in range(tries):
        results = await asyncio.gather(*(p.listen(3, tones) for p in peers))
        stats = await asyncio.gather(*(p.stats() for p in peers))
        for p, result, st in zip(peers, results, stats):
            want = sorted(s.freq for s in speakers if s is not p)
            print('# %s (%d Hz) hears %s, wants %s; received %s, lost %s' % (
                p.name, p.freq, calls.heard(result), want, st.get('packetsReceived'),
                st.get('packetsLost')))
        if all(hears_right(p, speakers, r) for p, r in zip(peers, results)):
            break
        if attempt + 1 < tries:
            print('# listening again')
    for p, result, st in zip(peers, results, stats):
        want = sorted(s.freq for s in speakers if s is not p)
        assert calls.heard(result) == want, (p.name, want, result, st)
        assert_not_itself(p, result)


async def room_call(count, room, rounds=None):
    """count participants call room and check what each hears: all at
    once, or in rounds of a few speakers with the others muted by the
    room's moderator (the bridge mixes max_speakers voices at most)."""
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
        await wait_media(peers)
        await asyncio.sleep(1)
        if rounds is None:
            # The room was told the call started, and who is in it.
            msg, _ = await room_notice(owner, lambda m, c: c.get('state') == 'active' and m[
                'body'], 'the call started')
            assert msg['from'] == '%s@%s' % (room, MUC) and CALL in msg['body'], msg
            _, call = await room_notice(owner, lambda m, c: c.get('participants') == str(
                count), 'all %d in the call' % count)
            assert sorted(p.get('nick') for p in call) == sorted(p.name for p in peers), \
                ET.tostring(call)
            await check_hearing(peers, peers, tones)
        muted = set()
        for speaking in rounds or []:
            speakers = [peers[i] for i in speaking]
            for p in peers:
                if p in speakers and p.name in muted:
                    await moderate(owner, room, 'unmute', p.name)
                    muted.discard(p.name)
                elif p not in speakers and p.name not in muted:
                    await moderate(owner, room, 'mute', p.name)
                    muted.add(p.name)
            await asyncio.sleep(1.5)
            await check_hearing(peers, speakers, tones, tries=4)
        await asyncio.gather(*(p.hangup() for p in peers))
        msg, _ = await room_notice(owner, lambda m, c: c.get('state') == 'ended', 'the end')
        assert msg['body'], msg
    finally:
        await asyncio.gather(*(p.stop() for p in peers))
        await owner.close()


async def test_three_callers_hear_each_other_not_themselves():
    await room_call(3, 'trio')


async def test_ten_callers_hear_the_other_nine():
    """Three speakers at a time, the other seven muted by the moderator:
    over the rounds everyone hears each of the nine others and never
    itself, and a muted participant is heard by nobody."""
    await room_call(10, 'ten', rounds=[[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 0, 3]])


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
