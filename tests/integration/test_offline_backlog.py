#!/usr/bin/env python3
"""test_offline_backlog.py - a large offline backlog reaches the client whole.

5,000 stored messages are several times limits.max_output_buffer (1 MiB by
default; about 2.5 MiB here) and five times limits.max_unacked_stanzas.
mod_offline must hand them over in steps paced by the client's reading
(and, with stream management, its acks), never over either limit: all
arrive, in order, and the stream stays open. Sent all at once, the first
case is cut off for its output cap and the second with
<resource-constraint/> for its unacknowledged stanzas.
"""

import harness
from harness import NS_CLIENT, qname, tostring

PASSWORD = 'secret-password'
SENDER = 'alice'
BACKLOG = 5000
NS_SM = 'urn:xmpp:sm:3'
NS_DELAY = 'urn:xmpp:delay'
FILLER = 'x' * 400  # a body about the size of a real message's XML


class Server(harness.Server):
    """Offline storage large enough for the backlog; no stanza rate limit,
    so the sender's burst is stored at once."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  offline:\n'
                    '    max_messages: %d\n' % (2 * BACKLOG))


server = Server(limits_options={'stanza_rate': 0})


def setup():
    for user in (SENDER, 'bob', 'carol'):
        server.adduser('%s@%s' % (user, harness.DOMAIN), PASSWORD)


def login(user, resource):
    stream = harness.RawStream(server.c2s_port, timeout=30)
    stream.open()
    stream.login(user, PASSWORD, resource)
    return stream


def store_backlog(recipient):
    """BACKLOG messages to the offline recipient; the ping's answer comes
    after the server has handled (stored) every one of them."""
    sender = login(SENDER, 'outbox')
    to = '%s@%s' % (recipient, harness.DOMAIN)
    for start in range(0, BACKLOG, 500):
        sender.send(''.join("<message to='%s' type='chat' id='m%d'><body>%d %s</body></message>"
                            % (to, i, i, FILLER) for i in range(start, start + 500)))
    sender.send("<iq type='get' id='done'><ping xmlns='urn:xmpp:ping'/></iq>")
    while True:
        elem = sender.next_element()
        assert elem.tag != qname(NS_CLIENT, 'message'), 'bounced: %s' % tostring(elem)
        if elem.tag == qname(NS_CLIENT, 'iq') and elem.get('id') == 'done':
            break
    sender.close()


def receive_backlog(stream, ack_every=None):
    """Every stored message, in order, then the answer to a ping; <r/> is
    answered as a client with stream management does."""
    stream.send('<presence/>')
    handled = 0
    got = []
    while len(got) < BACKLOG:
        elem = stream.next_element()
        if elem.tag == qname(NS_SM, 'r'):
            stream.send("<a xmlns='%s' h='%d'/>" % (NS_SM, handled))
            continue
        if elem.tag == qname(NS_SM, 'a'):
            continue
        handled += 1
        if elem.tag != qname(NS_CLIENT, 'message'):
            continue
        assert elem.find(qname(NS_DELAY, 'delay')) is not None, tostring(elem)
        got.append(int(elem.find(qname(NS_CLIENT, 'body')).text.split()[0]))
    assert got == list(range(BACKLOG)), 'out of order or missing: first %r' % got[:20]
    # Still connected and answering.
    stream.send("<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>")
    while True:
        elem = stream.next_element()
        if elem.tag == qname(NS_SM, 'r'):
            stream.send("<a xmlns='%s' h='%d'/>" % (NS_SM, handled))
        elif elem.tag == qname(NS_CLIENT, 'iq') and elem.get('id') == 'after':
            assert elem.get('type') == 'result', tostring(elem)
            return


def test_backlog_larger_than_the_output_cap_arrives_whole():
    store_backlog('bob')
    bob = login('bob', 'phone')
    receive_backlog(bob)
    bob.close()
    # Delivered once: nothing is left.
    bob = login('bob', 'phone')
    bob.send("<presence/><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    elem = bob.next_element()
    assert elem.tag == qname(NS_CLIENT, 'iq'), 'unexpected %s' % tostring(elem)
    bob.close()
    server.check_log()


def test_backlog_larger_than_the_unacked_limit_waits_for_acks():
    store_backlog('carol')
    carol = login('carol', 'phone')
    carol.send("<enable xmlns='%s'/>" % NS_SM)
    assert carol.next_element().tag == qname(NS_SM, 'enabled')
    receive_backlog(carol)
    carol.close()
    server.check_log()


if __name__ == '__main__':
    harness.run([test_backlog_larger_than_the_output_cap_arrives_whole,
                 test_backlog_larger_than_the_unacked_limit_waits_for_acks],
                server=server, setup=setup, timeout=300)
