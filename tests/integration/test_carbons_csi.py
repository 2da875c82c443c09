#!/usr/bin/env python3
"""test_carbons_csi.py - Message Carbons (XEP-0280) and Client State Indication (XEP-0352).

Raw client streams against a real vestnikd, so every test sees exactly
which stanzas arrive and in what order: sent and received carbons between
two resources of one account, for full-JID and bare-JID delivery, with
<private/>, <no-copy/> and disabling respected; a CSI-inactive session that
gets messages with a body at once but presence and chat states only later,
in order and only the latest presence per sender.
"""

import harness
from harness import qname, tostring

ALICE = 'alice@' + harness.DOMAIN
BOB = 'bob@' + harness.DOMAIN
PASSWORD = 'secret-password'
NS_CARBONS = 'urn:xmpp:carbons:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_HINTS = 'urn:xmpp:hints'
NS_CSI = 'urn:xmpp:csi:0'
NS_CHATSTATES = 'http://jabber.org/protocol/chatstates'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
MESSAGE = qname(harness.NS_CLIENT, 'message')
PRESENCE = qname(harness.NS_CLIENT, 'presence')
IQ = qname(harness.NS_CLIENT, 'iq')
SILENCE = 0.5  # seconds a held-back stanza must stay away

class Server(harness.Server):
    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  carbons:\n'
                    '  csi:\n'
                    '    max_queued: 5\n')

server = Server()

def setup():
    for jid in (ALICE, BOB):
        server.adduser(jid, PASSWORD)

class Stream(harness.RawStream):
    """A bound raw stream with a few stanza helpers."""

    serial = 0

    def __init__(self, jid, resource):
        super().__init__(server.c2s_port)
        self.open()
        self.jid = self.login(jid.split('@')[0], PASSWORD, resource)

    def iq(self, payload, type_='set', to=None):
        """Send an iq and return its answer, which must be the next stanza."""
        Stream.serial += 1
        iq_id = 'q%d' % Stream.serial
        self.send("<iq type='%s' id='%s'%s>%s</iq>"
                  % (type_, iq_id, " to='%s'" % to if to else '', payload))
        reply = self.expect(IQ)
        assert reply.get('id') == iq_id, tostring(reply)
        return reply

    def barrier(self):
        """A ping round trip: whatever the server wrote before is read."""
        reply = self.iq("<ping xmlns='%s'/>" % harness.NS_PING, 'get', harness.DOMAIN)
        assert reply.get('type') == 'result', tostring(reply)

    def message(self, to, body=None, type_='chat', extra=''):
        body_xml = '<body>%s</body>' % body if body is not None else ''
        self.send("<message to='%s' type='%s'>%s%s</message>" % (to, type_, body_xml, extra))

    def expect_nothing(self, wait=None):
        """Nothing arrives: after a barrier if possible, or for a while."""
        if wait is None:
            self.barrier()
            return
        try:
            elem = self.next_element(timeout=wait)
        except TimeoutError:
            return
        raise AssertionError('unexpected %s' % tostring(elem))

    def enable_carbons(self, enable=True):
        reply = self.iq("<%s xmlns='%s'/>" % ('enable' if enable else 'disable', NS_CARBONS))
        assert reply.get('type') == 'result', tostring(reply)

    def available(self, priority=0):
        self.send('<presence><priority>%d</priority></presence>' % priority)

def carbon(msg, kind):
    """The message a carbon of this kind carries; checks the wrapper."""
    assert msg.tag == MESSAGE, tostring(msg)
    forwarded = msg.find('%s/%s' % (qname(NS_CARBONS, kind), qname(NS_FORWARD, 'forwarded')))
    assert forwarded is not None, 'not a <%s/> carbon: %s' % (kind, tostring(msg))
    inner = forwarded.find(MESSAGE)
    assert inner is not None, tostring(msg)
    return inner

def body(msg):
    return msg.findtext(qname(harness.NS_CLIENT, 'body'))

# ------------------------------------------------------------------ carbons

def test_carbons_advertised():
    alice = Stream(ALICE, 'disco')
    reply = alice.iq("<query xmlns='%s'/>" % NS_DISCO_INFO, 'get', harness.DOMAIN)
    features = [f.get('var') for f in reply.iter(qname(NS_DISCO_INFO, 'feature'))]
    assert NS_CARBONS in features, features
    alice.close()

def test_sent_and_received_carbons_between_two_resources():
    phone = Stream(ALICE, 'phone')
    desk = Stream(ALICE, 'desk')
    bob = Stream(BOB, 'laptop')
    phone.enable_carbons()
    desk.enable_carbons()

    # sent: phone -> bob; desk gets a <sent/> copy, phone none
    phone.message(bob.jid, 'hello from the phone')
    msg = bob.expect(MESSAGE)
    assert body(msg) == 'hello from the phone' and msg.get('from') == phone.jid, tostring(msg)
    phone.expect_nothing()
    copy = desk.expect(MESSAGE)
    assert copy.get('from') == ALICE and copy.get('to') == desk.jid, tostring(copy)
    assert copy.get('type') == 'chat', tostring(copy)
    inner = carbon(copy, 'sent')
    assert inner.get('from') == phone.jid and inner.get('to') == bob.jid, tostring(inner)
    assert body(inner) == 'hello from the phone', tostring(inner)
    bob.expect_nothing()

    # received, full JID: bob -> desk; phone gets a <received/> copy
    bob.message(desk.jid, 'to the desk')
    msg = desk.expect(MESSAGE)
    assert body(msg) == 'to the desk', tostring(msg)
    bob.barrier()
    inner = carbon(phone.expect(MESSAGE), 'received')
    assert inner.get('from') == bob.jid and inner.get('to') == desk.jid, tostring(inner)
    assert body(inner) == 'to the desk', tostring(inner)
    desk.expect_nothing()
    bob.expect_nothing()

    # received, bare JID: only the highest priority gets it, the other a copy
    phone.available(5)
    desk.available(1)
    phone.barrier()
    desk.barrier()
    bob.message(ALICE, 'to the account')
    msg = phone.expect(MESSAGE)
    assert body(msg) == 'to the account' and msg.get('to') == ALICE, tostring(msg)
    bob.barrier()
    inner = carbon(desk.expect(MESSAGE), 'received')
    assert body(inner) == 'to the account', tostring(inner)
    phone.expect_nothing()
    desk.expect_nothing()

    # a normal message with a body is eligible; without a body it is not
    phone.message(bob.jid, 'normal one', type_='normal')
    phone.message(bob.jid, None, type_='normal', extra="<x xmlns='urn:example:nobody'/>")
    phone.barrier()
    assert body(carbon(desk.expect(MESSAGE), 'sent')) == 'normal one'
    desk.expect_nothing()
    for session in (phone, desk, bob):
        session.close()

def test_private_no_copy_and_disable_respected():
    phone = Stream(ALICE, 'phone2')
    desk = Stream(ALICE, 'desk2')
    bob = Stream(BOB, 'laptop2')
    phone.enable_carbons()
    desk.enable_carbons()

    phone.message(bob.jid, 'secret', extra="<private xmlns='%s'/>" % NS_CARBONS)
    assert body(bob.expect(MESSAGE)) == 'secret'
    phone.barrier()
    desk.expect_nothing()

    bob.message(phone.jid, 'not for the others', extra="<no-copy xmlns='%s'/>" % NS_HINTS)
    assert body(phone.expect(MESSAGE)) == 'not for the others'
    bob.barrier()
    desk.expect_nothing()

    # groupchat is never copied
    bob.message(phone.jid, 'room talk', type_='groupchat')
    assert body(phone.expect(MESSAGE)) == 'room talk'
    bob.barrier()
    desk.expect_nothing()

    # carbons are not copied again: a client cannot make the server loop
    bob.message(phone.jid, None,
                extra="<received xmlns='%s'><forwarded xmlns='%s'><message xmlns='jabber:client'"
                      " type='chat'><body>x</body></message></forwarded></received>"
                      % (NS_CARBONS, NS_FORWARD))
    phone.expect(MESSAGE)
    bob.barrier()
    desk.expect_nothing()

    desk.enable_carbons(False)
    phone.message(bob.jid, 'after disable')
    assert body(bob.expect(MESSAGE)) == 'after disable'
    phone.barrier()
    desk.expect_nothing()

    # only for one's own session
    reply = bob.iq("<enable xmlns='%s'/>" % NS_CARBONS, to=ALICE)
    assert reply.get('type') == 'error', tostring(reply)
    for session in (phone, desk, bob):
        session.close()

# ---------------------------------------------------------------------- CSI

class CsiStream(Stream):
    """Logs in by hand to look at the post-authentication features."""

    def __init__(self, jid, resource):
        harness.RawStream.__init__(self, server.c2s_port)
        self.open()
        self.starttls()
        self.features_after_auth = self.auth_plain(jid.split('@')[0], PASSWORD)
        self.jid = self.bind(resource)

    def set_state(self, state):
        self.send("<%s xmlns='%s'/>" % (state, NS_CSI))

def presence_to(sender, to, status):
    sender.send("<presence to='%s'><status>%s</status></presence>" % (to, status))

def test_csi_holds_presence_and_chat_states_but_not_bodies():
    bob = CsiStream(BOB, 'pocket')
    assert bob.features_after_auth.find(qname(NS_CSI, 'csi')) is not None, (
        tostring(bob.features_after_auth))
    alice = Stream(ALICE, 'pc')
    bob.set_state('inactive')
    bob.barrier()  # the iq result is urgent, but nothing is held yet

    presence_to(alice, bob.jid, 'one')
    presence_to(alice, bob.jid, 'two')
    alice.message(bob.jid, extra="<composing xmlns='%s'/>" % NS_CHATSTATES)
    alice.barrier()
    bob.expect_nothing(wait=SILENCE)

    # a body goes out at once, after what was held, in order, with only
    # the latest presence of the sender
    alice.message(bob.jid, 'wake up')
    first = bob.expect(PRESENCE)
    assert first.findtext(qname(harness.NS_CLIENT, 'status')) == 'two', tostring(first)
    state = bob.expect(MESSAGE)
    assert state.find(qname(NS_CHATSTATES, 'composing')) is not None, tostring(state)
    assert body(bob.expect(MESSAGE)) == 'wake up'
    bob.expect_nothing(wait=SILENCE)

    # still inactive: presence waits until <active/>, latest per full JID
    tablet = Stream(ALICE, 'tablet')
    for sender, status in ((alice, 'three'), (tablet, 'tablet'), (alice, 'four')):
        presence_to(sender, bob.jid, status)
        sender.barrier()  # two connections: keep the order the server sees
    bob.expect_nothing(wait=SILENCE)
    bob.set_state('active')
    got = [bob.expect(PRESENCE) for _ in range(2)]
    seen = [(p.get('from'), p.findtext(qname(harness.NS_CLIENT, 'status'))) for p in got]
    assert seen == [(tablet.jid, 'tablet'), (alice.jid, 'four')], seen
    bob.expect_nothing()

    # active: presence flows at once
    presence_to(alice, bob.jid, 'five')
    assert bob.expect(PRESENCE).findtext(qname(harness.NS_CLIENT, 'status')) == 'five'
    for session in (alice, tablet, bob):
        session.close()

def test_csi_queue_is_bounded():
    bob = CsiStream(BOB, 'bounded')
    alice = Stream(ALICE, 'many')
    bob.set_state('inactive')
    bob.barrier()
    senders = [Stream(ALICE, 'r%d' % i) for i in range(5)]
    for i, sender in enumerate(senders[:4]):
        presence_to(sender, bob.jid, 'p%d' % i)
        sender.barrier()
    bob.expect_nothing(wait=SILENCE)
    # the fifth held stanza fills the queue (max_queued: 5): all go out
    presence_to(senders[4], bob.jid, 'p4')
    statuses = [bob.expect(PRESENCE).findtext(qname(harness.NS_CLIENT, 'status'))
                for _ in range(5)]
    assert statuses == ['p0', 'p1', 'p2', 'p3', 'p4'], statuses
    bob.expect_nothing(wait=SILENCE)
    for session in [alice, bob] + senders:
        session.close()

def test_csi_unknown_element_is_a_stream_error():
    bob = CsiStream(BOB, 'bad')
    bob.send("<sleepy xmlns='%s'/>" % NS_CSI)
    bob.expect_stream_error('unsupported-stanza-type')

if __name__ == '__main__':
    harness.run([
        test_carbons_advertised,
        test_sent_and_received_carbons_between_two_resources,
        test_private_no_copy_and_disable_respected,
        test_csi_holds_presence_and_chat_states_but_not_bodies,
        test_csi_queue_is_bounded,
        test_csi_unknown_element_is_a_stream_error,
    ], server=server, setup=setup)
