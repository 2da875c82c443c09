#!/usr/bin/env python3
"""test_voice_direct.py - one-to-one calls through vestnik and coturn.

Two StanzaJS peers in headless Chromium (tests/integration/voice/) call
each other: XEP-0353 propose to the callee's bare JID, proceed, Jingle
session-initiate (audio, Opus), with relay-only ICE, so that media can only
flow through the coturn this test starts (free ports, a temporary
directory, the configuration `vestnikctl turn-config` writes for this
server, --allow-loopback-peers) with the credentials mod_extdisco hands
out. Each must hear the other's tone and not its own, over relayed
candidate pairs, and coturn must have allocated relays.

The browser part is skipped when Chromium, playwright-core, stanza/esbuild
(VN_STANZA_DIR) or coturn is missing, and fails instead with
VN_REQUIRE_PEERS=1 (CI).
"""

import asyncio
import os
import tempfile

import harness
from voice import calls

D = harness.DOMAIN
ALICE = 'alice@' + D
BOB = 'bob@' + D
PASSWORD = 'secret-password'
TURN_SECRET = 'test-turn-secret'
ALICE_HZ = 440
BOB_HZ = 740
MODULES = ('roster', 'presence', 'offline', 'carbons', 'mam', 'blocking', 'push')


class Server(harness.Server):
    def __init__(self):
        self.https_port, = harness.free_ports(1)
        self.turn_port, = calls.free_udp_tcp_ports(1)
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
        text += ''.join('  %s:\n' % name for name in MODULES)
        text += (f'  extdisco:\n'
                 f'    stun_host: 127.0.0.1\n'
                 f'    stun_port: {self.turn_port}\n'
                 f'    turn_host: 127.0.0.1\n'
                 f'    turn_port: {self.turn_port}\n'
                 f'    turn_secret: {TURN_SECRET}\n')
        with open(self.config_path, 'w') as f:
            f.write(text)

    def ws_url(self):
        return 'wss://127.0.0.1:%d/xmpp-websocket' % self.https_port


server = Server()


def setup():
    for jid in (ALICE, BOB):
        server.adduser(jid, PASSWORD)


def coturn_config(directory):
    relay_min, = calls.free_udp_tcp_ports(1)
    return ('listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port=%d\n'
            'min-port=%d\nmax-port=%d\nuse-auth-secret\nstatic-auth-secret=%s\n'
            'realm=%s\nfingerprint\nno-tls\nno-dtls\nno-multicast-peers\n'
            % (server.turn_port, 49152, 65535, TURN_SECRET, D))


async def test_call_through_coturn_only():
    tmp = tempfile.mkdtemp(prefix='vestnik-voice-')
    coturn = calls.Coturn(tmp, coturn_config(tmp), ['--allow-loopback-peers', '-v'])
    coturn.start(server.turn_port)
    bundle = calls.bundle(tmp)
    alice = calls.Peer(bundle, tmp, 'alice', ALICE_HZ)
    bob = calls.Peer(bundle, tmp, 'bob', BOB_HZ)
    try:
        await asyncio.gather(alice.start(), bob.start())
        got = await alice.connect(server.ws_url(), ALICE, PASSWORD, relay=True)
        assert got['iceServers'] >= 2, got
        await bob.connect(server.ws_url(), BOB, PASSWORD, relay=True)
        await bob.answer('accept')
        sid = await alice.call(BOB)
        await bob.wait_event(lambda e: e.get('event') == 'jmi' and e['action'] == 'propose'
                             and e['id'] == sid)
        await alice.wait_event(lambda e: e.get('event') == 'jmi' and e['action'] == 'proceed')
        await asyncio.gather(alice.wait_connected(), bob.wait_connected())
        await asyncio.sleep(1)
        heard_by_alice, heard_by_bob = await asyncio.gather(
            alice.listen(3, [ALICE_HZ, BOB_HZ]), bob.listen(3, [ALICE_HZ, BOB_HZ]))
        stats = await alice.stats()
        print('# alice hears %s, bob hears %s; alice stats %s'
              % (heard_by_alice, heard_by_bob, stats))
        assert calls.heard(heard_by_alice) == [BOB_HZ], heard_by_alice
        assert calls.absent(heard_by_alice) == [ALICE_HZ], heard_by_alice
        assert calls.heard(heard_by_bob) == [ALICE_HZ], heard_by_bob
        assert calls.absent(heard_by_bob) == [BOB_HZ], heard_by_bob
        assert stats['localCandidate'] == 'relay', stats
        assert stats['codec'] == 'audio/opus', stats
        await alice.hangup()
        await bob.wait_event(lambda e: e.get('event') == 'terminated')
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
        coturn.stop()
        print('# coturn log:\n# ' + coturn.log_tail(15).replace('\n', '\n# '))


if __name__ == '__main__':
    harness.run([test_call_through_coturn_only], server=server, setup=setup, timeout=180)
