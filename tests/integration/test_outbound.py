#!/usr/bin/env python3
"""test_outbound.py - network.allow_outbound: a server that talks to nobody.

With `allow_outbound: none`, everything local keeps working — login, chat
between two accounts, offline messages, the archive, group chat, private
storage, ad-hoc commands — while a message to another server bounces with
remote-server-not-found and no connection is ever attempted: a socket
standing in for the remote server (a static s2s_peers entry pointing at
it) is never connected to, and `vestnikctl status` lists the refused
destination. A second server with the default policy does connect to the
same kind of socket, which shows the test can see a connection.
"""

import socket
import subprocess
import time

import harness

D = harness.DOMAIN
PASSWORD = 'secret-password'
REMOTE = 'far.example'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_MAM = 'urn:xmpp:mam:2'
C = '{jabber:client}'


class Listener:
    """A TCP socket where the remote server would be; counts connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self, wait=1.0):
        count, deadline = 0, time.time() + wait
        while time.time() < deadline:
            try:
                conn, _ = self.sock.accept()
                conn.close()
                count += 1
            except BlockingIOError:
                time.sleep(0.05)
        return count


class Server(harness.Server):
    def __init__(self, policy, listener):
        self.policy, self.listener = policy, listener
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n  presence:\n  offline:\n  private:\n  adhoc:\n'
                    '  mam:\n    default: always\n  muc:\n'
                    'network:\n  allow_outbound: %s\n'
                    's2s_peers:\n  - domain: %s\n    address: 127.0.0.1\n    port: %d\n'
                    % (self.policy, REMOTE, self.listener.port))

    def status(self):
        result = subprocess.run([self.ctl, '-c', self.config_path, 'status'],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout


CLOSED = Server('none', Listener())


def setup():
    for name in ('alice', 'bob'):
        CLOSED.adduser('%s@%s' % (name, D), PASSWORD)


def login(server, user, resource='r'):
    s = harness.RawStream(server.c2s_port)
    s.open()
    s.login(user, PASSWORD, resource)
    return s


def next_message(s):
    while True:
        el = s.next_element()
        if el.tag == C + 'message':
            return el


def message_to(s, to, body, type_='chat'):
    s.send("<message to='%s' type='%s' id='m1'><body>%s</body></message>" % (to, type_, body))


def test_remote_domains_bounce_and_nothing_connects():
    alice = login(CLOSED, 'alice')
    try:
        message_to(alice, 'someone@' + REMOTE, 'hello')
        reply = alice.expect(C + 'message')
        assert reply.get('type') == 'error', harness.tostring(reply)
        assert reply.find('%serror/{%s}remote-server-not-found' % (C, NS_STANZAS)) is not None
        assert CLOSED.listener.connections() == 0
        status = CLOSED.status()
        assert 'outbound: none' in status and 'federation %s' % REMOTE in status, status
    finally:
        alice.close()


def test_chat_and_offline_messages_work():
    alice = login(CLOSED, 'alice')
    try:
        message_to(alice, 'bob@' + D, 'while you were away')
        time.sleep(0.3)
        bob = login(CLOSED, 'bob')
        try:
            bob.send("<presence/>")
            got = next_message(bob)
            assert got.findtext(C + 'body') == 'while you were away', harness.tostring(got)
            message_to(alice, 'bob@%s/r' % D, 'and now')
            got = next_message(bob)
            assert got.findtext(C + 'body') == 'and now'
        finally:
            bob.close()
    finally:
        alice.close()


def test_archive_works():
    alice = login(CLOSED, 'alice')
    try:
        alice.send("<iq type='set' id='mam'><query xmlns='%s' queryid='q'/></iq>" % NS_MAM)
        bodies = []
        while True:
            el = alice.next_element()
            if el.tag == C + 'iq':
                assert el.get('type') == 'result', harness.tostring(el)
                break
            bodies.append(el.findtext('.//%sbody' % C))
        assert 'while you were away' in bodies and 'and now' in bodies, bodies
    finally:
        alice.close()


def test_group_chat_works():
    alice = login(CLOSED, 'alice')
    try:
        room = 'tea@conference.' + D
        alice.send("<presence to='%s/alice'><x xmlns='%s'/></presence>" % (room, NS_MUC))
        presence = alice.expect(C + 'presence')
        assert presence.get('type') is None, harness.tostring(presence)
        message_to(alice, room, 'in the room', 'groupchat')
        while True:
            el = alice.next_element()
            if el.tag == C + 'message' and el.findtext(C + 'body') == 'in the room':
                break
    finally:
        alice.close()


def test_private_storage_and_commands_work():
    alice = login(CLOSED, 'alice')
    try:
        alice.send("<iq type='set' id='p'><query xmlns='jabber:iq:private'>"
                   "<n xmlns='urn:test:n'>kept</n></query></iq>")
        assert alice.expect(C + 'iq').get('type') == 'result'
        alice.send("<iq type='set' id='c' to='%s'><command xmlns='http://jabber.org/protocol/"
                   "commands' node='language' action='execute'/></iq>" % D)
        reply = alice.expect(C + 'iq')
        assert reply.get('type') == 'result', harness.tostring(reply)
    finally:
        alice.close()


def test_the_default_policy_does_connect():
    server = Server('all', Listener())
    try:
        server.start()
        server.adduser('carol@' + D, PASSWORD)
        carol = login(server, 'carol')
        try:
            message_to(carol, 'someone@' + REMOTE, 'hello')
            assert server.listener.connections(wait=3) >= 1
            status = server.status()
            assert 'outbound: all' in status and 'connect 127.0.0.1:%d' % server.listener.port \
                in status, status
        finally:
            carol.close()
    finally:
        server.stop()


if __name__ == '__main__':
    harness.run([test_remote_domains_bounce_and_nothing_connects,
                 test_chat_and_offline_messages_work,
                 test_archive_works,
                 test_group_chat_works,
                 test_private_storage_and_commands_work,
                 test_the_default_policy_does_connect],
                server=CLOSED, setup=setup)
