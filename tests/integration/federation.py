"""federation.py - what the tests against Prosody and against ejabberd share.

Federation is a conversation between two servers, so both test files run
the same scenarios with the same users, each against its own peer:

- FederatedServer is the harness's vestnikd, also serving vestnik.test, with
  an s2s listener on vestnik.test's address, port 5269, and an s2s_peers
  entry pointing at each of the peer's domains. Every certificate is
  self-signed, so dialback authenticates the streams, as the peers do.
- Inbox keeps what a client received until a test asks for it, in any
  order, and says what did arrive when the expected stanza does not.
- Federation holds the scenarios as test methods and runs those a test file
  picks, with the peer started in the harness's setup step, so a peer that
  fails to start is a TAP failure, not a crash. When the peer's binary is
  missing the file reports one skipped test.

The scenarios depend on each other in order, as a user's first day would:
subscription both ways, then presence, chat, pings and a chat room.
"""

import asyncio
import contextlib
import signal
import sys
import xml.etree.ElementTree as ET

import harness
import peers

PASSWORD = 'federation-password'
ALICE = 'alice@' + peers.VESTNIK_DOMAIN
WAIT = 15
NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_USER = 'http://jabber.org/protocol/muc#user'
ROOM_NAME = 'staffroom'


class FederatedServer(harness.Server):
    """vestnikd for vestnik.test, federating through static peer entries."""

    def __init__(self, peer_domains):
        """peer_domains: (domain, address) pairs vestnik reaches over s2s."""
        self.peer_domains = list(peer_domains)
        super().__init__(extra_hosts=[peers.VESTNIK_DOMAIN])

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('listeners:\n', 'listeners:\n  - type: s2s\n    address: %s\n'
                            '    port: %d\n' % (peers.VESTNIK_ADDRESS, peers.S2S_PORT), 1)
        # 'modules:' ends the harness's config: these two join its list
        text += '  roster:\n  presence:\n'
        text += ('s2s:\n  require_encryption: true\n  require_valid_certificates: false\n'
                 '  dialback: true\n  connect_timeout: 10\n')
        text += 's2s_peers:\n' + ''.join(
            '  - domain: %s\n    address: %s\n    port: %d\n    tls: starttls\n'
            % (domain, address, peers.S2S_PORT) for domain, address in self.peer_domains)
        with open(self.config_path, 'w') as f:
            f.write(text)

    def s2s_log(self, lines=80):
        """The log's last lines about federation, for a failure report."""
        marked = [line for line in self.log_text().splitlines()
                  if 's2s' in line or 'dialback' in line or 'resolv' in line]
        return '\n'.join(marked[-lines:])


class Inbox:
    """Stanzas of one kind a client received, taken out by what they match."""

    def __init__(self):
        self.stanzas = []
        self.arrived = asyncio.Event()

    def put(self, stanza):
        self.stanzas.append(stanza)
        self.arrived.set()

    async def take(self, what, matches, timeout=WAIT):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for index, stanza in enumerate(self.stanzas):
                if matches(stanza):
                    return self.stanzas.pop(index)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError('%s: not received within %ds; received instead:\n%s' % (
                    what, timeout, '\n'.join(str(s) for s in self.stanzas) or '(nothing)'))
            self.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)


async def connect(server, jid):
    """A logged-in client that answers subscription requests only when told.

    SCRAM-SHA-1 is the one mechanism all three servers share; slixmpp's own
    pick, a -PLUS variant, binds to tls-unique, which TLS 1.3 lacks, and each
    failed try counts towards vestnik's back-off on failed logins.
    """
    client = harness.Client(jid, PASSWORD, mechanism='SCRAM-SHA-1')
    client.roster.auto_authorize = None
    client.roster.auto_subscribe = False
    client.presences = Inbox()
    client.inbox = Inbox()
    client.add_event_handler('presence', client.presences.put)
    client.add_event_handler('message', client.inbox.put)
    await client.login(server)
    # Fetching the roster makes the session an interested resource (RFC
    # 6121 §2.1.6): only those get subscription requests and approvals.
    await client.get_roster()
    return client


def presence_from(jid, kind='available', **fields):
    """A matcher: presence of this type from this JID (bare matches any resource)."""
    def matches(presence):
        sender = presence['from']
        # slixmpp's presence['type'] is the <show/> of an available presence
        actual = presence.xml.get('type', 'available')
        if (sender.full if '/' in jid else sender.bare) != jid or actual != kind:
            return False
        return all(presence[name] == value for name, value in fields.items())
    return matches


def muc_status_codes(presence):
    x = presence.xml.find('{%s}x' % NS_MUC_USER)
    return set() if x is None else {s.get('code') for s in x.findall('{%s}status' % NS_MUC_USER)}


class Federation:
    """One peer server, vestnik, a user on each, and the scenarios between them."""

    def __init__(self, peer_class):
        self.peer_class = peer_class
        self.peer = None
        self.server = None
        self.peer_user = None
        self._stack = contextlib.ExitStack()

    # ---------------------------------------------------------------- running
    def run(self, tests):
        """TAP for tests (methods of this object); exits like harness.run."""
        missing = self.peer_class.missing()
        if missing:
            print('1..1')
            print('ok 1 # SKIP %s is not installed (.ci/run installs it)' % missing)
            sys.exit(0)
        # run-tests' timeout sends SIGTERM: unwind, so the peers stop too
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
        self.peer = self.peer_class()
        self.peer_user = 'bob@' + self.peer.domain
        self.server = FederatedServer(
            (domain, self.peer.address) for domain in self.peer.domains())
        try:
            with peers.system_service_paused(self.peer_class):
                harness.run(tests, server=self.server, setup=self._setup, timeout=60)
        except SystemExit as end:
            if end.code:
                self.peer.keep_files = True
                sys.stderr.write('--- federation lines of the vestnikd log:\n%s\n'
                                 '--- end of the %s log (%s):\n%s\n' % (
                                     self.server.s2s_log(), self.peer.binary,
                                     self.peer.log_path, self.peer.log_tail(80)))
            raise
        finally:
            self.server.kill9()  # still running only if a signal cut the run short
            self._stack.close()

    def _setup(self):
        self._stack.enter_context(peers.federation(self.peer))
        self.peer.register('bob', PASSWORD)
        self.peer.register('carol', PASSWORD)
        self.server.adduser(ALICE, PASSWORD)

    async def _pair(self):
        """Alice on vestnik and Bob on the peer, both available."""
        alice = await connect(self.server, ALICE + '/laptop')
        bob = await connect(self.peer, self.peer_user + '/phone')
        return alice, bob

    # -------------------------------------------------------------- scenarios
    async def test_peer_serves_its_own_clients(self):
        """The peer itself works: two of its users chat (no federation yet)."""
        bob = await connect(self.peer, self.peer_user + '/phone')
        carol = await connect(self.peer, 'carol@%s/desk' % self.peer.domain)
        bob.send_message(mto=carol.boundjid, mbody='local hello', mtype='chat')
        await carol.inbox.take('local message', lambda m: m['body'] == 'local hello')
        await bob.close()
        await carol.close()

    async def test_subscription_both_ways(self):
        alice, bob = await self._pair()
        alice.send_presence()
        bob.send_presence()

        alice.send_presence(pto=self.peer_user, ptype='subscribe')
        await bob.presences.take('subscribe from vestnik', presence_from(ALICE, 'subscribe'))
        bob.send_presence(pto=ALICE, ptype='subscribed')
        await alice.presences.take('subscribed from the peer',
                                   presence_from(self.peer_user, 'subscribed'))
        await alice.presences.take("Bob's presence after he approved",
                                   presence_from(str(bob.boundjid)))

        bob.send_presence(pto=ALICE, ptype='subscribe')
        await alice.presences.take('subscribe from the peer',
                                   presence_from(self.peer_user, 'subscribe'))
        alice.send_presence(pto=self.peer_user, ptype='subscribed')
        await bob.presences.take('subscribed from vestnik', presence_from(ALICE, 'subscribed'))
        await bob.presences.take("Alice's presence after she approved",
                                 presence_from(str(alice.boundjid)))

        for client, contact in ((alice, self.peer_user), (bob, ALICE)):
            # the whole roster, without a version that would let the server
            # answer "no change"
            query = client.Iq(stype='get')
            query.enable('roster')
            roster = await query.send(timeout=WAIT)
            items = {str(jid): item for jid, item in roster['roster']['items'].items()}
            assert contact in items, '%s has no roster item for %s: %s' % (
                client.boundjid, contact, roster)
            assert items[contact]['subscription'] == 'both', roster
        await alice.close()
        await bob.close()

    async def test_presence_both_ways(self):
        """Probes on login, changes broadcast, unavailable on logout."""
        bob = await connect(self.peer, self.peer_user + '/phone')
        bob.send_presence(pshow='away', pstatus='on the train')
        alice = await connect(self.server, ALICE + '/laptop')
        alice.send_presence(pstatus='at school')
        await alice.presences.take("Bob's presence, answering vestnik's probe",
                                   presence_from(str(bob.boundjid), show='away',
                                                 status='on the train'))
        await bob.presences.take("Alice's initial presence",
                                 presence_from(str(alice.boundjid), status='at school'))

        bob.send_presence(pshow='chat', pstatus='home')
        await alice.presences.take("Bob's changed presence",
                                   presence_from(str(bob.boundjid), show='chat', status='home'))
        alice.send_presence(pshow='dnd', pstatus='in a lesson')
        await bob.presences.take("Alice's changed presence",
                                 presence_from(str(alice.boundjid), show='dnd',
                                               status='in a lesson'))

        bob.send_presence(ptype='unavailable')
        await alice.presences.take("Bob's unavailable presence",
                                   presence_from(str(bob.boundjid), 'unavailable'))
        # only an available resource gets presence: Bob comes back first
        bob.send_presence(pstatus='back')
        await alice.presences.take("Bob's presence when back",
                                   presence_from(str(bob.boundjid), status='back'))
        alice_jid = str(alice.boundjid)
        await alice.close()
        await bob.presences.take("Alice's unavailable presence on logout",
                                 presence_from(alice_jid, 'unavailable'))
        await bob.close()

    async def test_chat_both_ways(self):
        alice, bob = await self._pair()
        alice.send_presence()
        bob.send_presence()
        alice.send_message(mto=self.peer_user, mbody='Привет from vestnik', mtype='chat')
        message = await bob.inbox.take("Alice's message", lambda m: m['type'] == 'chat')
        assert message['from'] == alice.boundjid, message
        assert message['body'] == 'Привет from vestnik', message

        bob.send_message(mto=alice.boundjid, mbody='hello <back> & forth', mtype='chat')
        message = await alice.inbox.take("Bob's reply", lambda m: m['type'] == 'chat')
        assert message['from'] == bob.boundjid, message
        assert message['body'] == 'hello <back> & forth', message

        bob.send_message(mto=ALICE, mbody='to your bare JID', mtype='chat')
        message = await alice.inbox.take("Bob's message to the bare JID",
                                         lambda m: m['body'] == 'to your bare JID')
        assert message['from'] == bob.boundjid, message
        await alice.close()
        await bob.close()

    async def test_ping_across(self):
        """XEP-0199 iq both ways: to the other server and to the other user."""
        alice, bob = await self._pair()
        alice.send_presence()
        bob.send_presence()
        await alice.ping(self.peer.domain, timeout=WAIT)
        await alice.ping(bob.boundjid, timeout=WAIT)
        await bob.ping(peers.VESTNIK_DOMAIN, timeout=WAIT)
        await bob.ping(alice.boundjid, timeout=WAIT)
        await alice.close()
        await bob.close()

    async def test_muc_on_the_peer_joined_from_vestnik(self):
        """Bob opens a room on his server, Alice joins from vestnik, both talk."""
        room = '%s@%s' % (ROOM_NAME, self.peer.muc_domain)
        alice, bob = await self._pair()
        await join_room(bob, room, 'bob')
        await join_room(alice, room, 'alice')
        await bob.presences.take('Alice joining, seen in the room',
                                 presence_from(room + '/alice'))

        alice.send_message(mto=room, mbody='good morning, room', mtype='groupchat')
        for client in (bob, alice):
            message = await client.inbox.take(
                "Alice's groupchat message at %s" % client.boundjid,
                lambda m: m['type'] == 'groupchat' and m['body'] == 'good morning, room')
            assert message['from'] == room + '/alice', message
        bob.send_message(mto=room, mbody='morning, Alice', mtype='groupchat')
        message = await alice.inbox.take(
            "Bob's groupchat message", lambda m: m['type'] == 'groupchat' and
            m['body'] == 'morning, Alice')
        assert message['from'] == room + '/bob', message

        alice.send_presence(pto=room + '/alice', ptype='unavailable')
        left = await alice.presences.take('leaving the room',
                                          presence_from(room + '/alice', 'unavailable'))
        assert '110' in muc_status_codes(left), left
        await alice.close()
        await bob.close()


async def join_room(client, room, nick):
    """Join with a plain MUC presence; returns the room's self-presence."""
    presence = client.make_presence(pto='%s/%s' % (room, nick))
    presence.append(ET.Element('{%s}x' % NS_MUC))
    presence.send()
    mine = await client.presences.take(
        '%s joining %s' % (client.boundjid, room),
        lambda p: p['from'] == '%s/%s' % (room, nick) and '110' in muc_status_codes(p))
    assert mine['type'] != 'error', mine
    return mine
