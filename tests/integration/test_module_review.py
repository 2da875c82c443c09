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
PASSWORD = 'secret-password'
MUC = 'conference.' + harness.DOMAIN
NS_CSI = 'urn:xmpp:csi:0'
NS_MUC = 'http://jabber.org/protocol/muc'
PRESENCE = qname(harness.NS_CLIENT, 'presence')
IQ = qname(harness.NS_CLIENT, 'iq')
STATEFUL_MODULES = '  presence:\n  csi:\n  muc:\n'


class Server(harness.Server):
    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n' + STATEFUL_MODULES)


server = Server()


def setup():
    server.adduser(ALICE, PASSWORD)


class Stream(harness.RawStream):
    serial = 0

    def __init__(self, jid, resource):
        super().__init__(server.c2s_port)
        self.open()
        self.jid = self.login(jid.split('@')[0], PASSWORD, resource)

    def ping(self):
        Stream.serial += 1
        iq_id = 'p%d' % Stream.serial
        self.send("<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>"
                  % (iq_id, harness.DOMAIN, harness.NS_PING))
        while True:
            reply = self.next_element(timeout=5)
            if reply.tag == IQ and reply.get('id') == iq_id:
                assert reply.get('type') == 'result', tostring(reply)
                return


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
        test_session_data_does_not_outlive_its_module,
    ], server=server, setup=setup)
