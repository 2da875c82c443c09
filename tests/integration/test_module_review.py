#!/usr/bin/env python3
"""test_module_review.py - regressions found reviewing the modules.

Raw client streams against a real vestnikd: module state kept in a
session outlives neither the module (a reload that drops presence, CSI
and MUC leaves no destructor behind that points into an unloaded
object).
"""

import time

import harness
from harness import qname, tostring

ALICE = 'alice@' + harness.DOMAIN
STRANGER = 'stranger@' + harness.DOMAIN
PASSWORD = 'secret-password'
MUC = 'conference.' + harness.DOMAIN
NS_CSI = 'urn:xmpp:csi:0'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_BLOCKING = 'urn:xmpp:blocking'
PRESENCE = qname(harness.NS_CLIENT, 'presence')
IQ = qname(harness.NS_CLIENT, 'iq')
STATEFUL_MODULES = '  presence:\n  csi:\n  muc:\n'


class Server(harness.Server):
    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n  blocking:\n' + STATEFUL_MODULES)


server = Server()


def setup():
    server.adduser(ALICE, PASSWORD)
    server.adduser(STRANGER, PASSWORD)


class Stream(harness.RawStream):
    serial = 0

    def __init__(self, jid, resource):
        super().__init__(server.c2s_port)
        self.open()
        self.jid = self.login(jid.split('@')[0], PASSWORD, resource)

    def ping(self):
        """A round trip; returns every other stanza that came before it."""
        Stream.serial += 1
        iq_id = 'p%d' % Stream.serial
        self.send("<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>"
                  % (iq_id, harness.DOMAIN, harness.NS_PING))
        before = []
        while True:
            reply = self.next_element(timeout=5)
            if reply.tag == IQ and reply.get('id') == iq_id:
                assert reply.get('type') == 'result', tostring(reply)
                return before
            before.append(reply)


def test_blocking_tells_no_stranger_about_resources():
    # XEP-0191 §3.3: unavailable presence on blocking only goes to a
    # contact allowed to see the account's presence; a stranger would
    # learn the account's resources from it.
    alice = Stream(ALICE, 'secret-device')
    stranger = Stream(STRANGER, 'spam')
    alice.send('<presence/>')
    stranger.send('<presence/>')
    alice.ping()
    stranger.ping()
    alice.send("<iq type='set' id='b1'><block xmlns='%s'><item jid='%s'/></block></iq>"
               % (NS_BLOCKING, STRANGER))
    alice.ping()
    leaked = [tostring(e) for e in stranger.ping() if e.tag == PRESENCE]
    assert not leaked, leaked
    alice.send("<iq type='set' id='b2'><unblock xmlns='%s'/></iq>" % NS_BLOCKING)
    alice.ping()
    alice.close()
    stranger.close()


def wait_for_log(text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in server.log_text():
        assert time.monotonic() < deadline, 'no %r in the log:\n%s' % (text, server.log_tail())
        time.sleep(0.05)


def test_session_data_does_not_outlive_its_module():
    alice = Stream(ALICE, 'desk')
    alice.send('<presence/>')
    alice.send("<inactive xmlns='%s'/>" % NS_CSI)
    alice.send("<presence to='room@%s/alice'><x xmlns='%s'/></presence>" % (MUC, NS_MUC))
    alice.ping()
    with open(server.config_path) as f:
        original = f.read()
    with open(server.config_path, 'w') as f:
        f.write(original.replace(STATEFUL_MODULES, ''))
    try:
        server.reload()
        wait_for_log('unloading module muc')
        alice.ping()
        alice.close()
        # The session is freed with its slots; the server must live on.
        probe = Stream(ALICE, 'probe')
        probe.ping()
        probe.close()
        server.assert_running()
    finally:
        with open(server.config_path, 'w') as f:
            f.write(original)


if __name__ == '__main__':
    harness.run([
        test_blocking_tells_no_stranger_about_resources,
        test_session_data_does_not_outlive_its_module,
    ], server=server, setup=setup)
