#!/usr/bin/env python3
"""test_durability.py - what the server acknowledged survives kill -9.

A sender with stream management enabled floods messages to an offline
account, with offline storage and MAM loaded, asking for acks as it goes;
vestnikd is killed with SIGKILL in the middle of the flood. After a
restart, every message covered by the last <a h='...'/> the sender
received must be there exactly once: delivered from offline storage when
the recipient comes online, and in both the recipient's and the sender's
archives. Messages sent after that ack may or may not have made it, but
never twice.

Why an SM ack means "stored": the server counts a stanza toward h before
handling it, but answers <r/> only when it reaches the <r/> in the input,
after every earlier stanza was handled in turn on the loop thread; the
handling of a message to an offline account archives it (mod_mam, on
"stanza/in" and "route/local") and stores it (mod_offline, on
"message/bare") with synchronous store calls, each one LMDB write
transaction committed with a durable sync (store_lmdb.c) before it
returns. So the <a/> is written after the commits.
"""

import time

import harness
from harness import NS_CLIENT, qname, tostring

PASSWORD = 'secret-password'
SENDER = 'alice'
RECIPIENT = 'bob'
NS_SM = 'urn:xmpp:sm:3'
NS_MAM = 'urn:xmpp:mam:2'
NS_RSM = 'http://jabber.org/protocol/rsm'
NS_FORWARD = 'urn:xmpp:forward:0'
BATCH = 50
MAX_MESSAGES = 20000
KILL_AFTER_ACKED = 400  # kill once this many are acknowledged
PAGE = 1000
IN_FLIGHT = 4 * BATCH  # messages sent but not yet acknowledged, at most


class Server(harness.Server):
    """Offline storage and MAM; no stanza rate limit, so the flood is the
    store's pace alone."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  offline:\n'
                    '    max_messages: %d\n'
                    '  mam:\n'
                    '    max_page: %d\n' % (MAX_MESSAGES, PAGE))


server = Server(limits_options={'stanza_rate': 0})


def setup():
    for user in (SENDER, RECIPIENT):
        server.adduser('%s@%s' % (user, harness.DOMAIN), PASSWORD)


def body_of(message):
    body = message.find(qname(NS_CLIENT, 'body'))
    return body.text if body is not None else None


def flood_until_killed(stream):
    """Send messages in batches, each followed by <r/>; kill -9 once enough
    are acknowledged. Returns (messages sent, last h received)."""
    recipient = '%s@%s' % (RECIPIENT, harness.DOMAIN)
    sent = 0
    acked = 0
    killed = False
    while not killed and sent < MAX_MESSAGES:
        batch = ''.join("<message to='%s' type='chat' id='m%d'><body>durable %d</body></message>"
                        % (recipient, i, i) for i in range(sent, sent + BATCH))
        try:
            stream.send(batch + "<r xmlns='%s'/>" % NS_SM)
        except OSError:
            break
        sent += BATCH
        # Keep a few batches in flight: wait for acks only past that window.
        while sent - acked > IN_FLIGHT:
            elem = stream.next_element(timeout=30)
            assert elem.tag == qname(NS_SM, 'a'), 'unexpected %s' % tostring(elem)
            acked = max(acked, int(elem.get('h')))
        if acked >= KILL_AFTER_ACKED:
            server.kill9()
            killed = True
    assert killed, 'only %d of %d messages acknowledged before the flood ended' % (acked, sent)
    # Acks the server wrote before dying may still be in our socket buffer.
    stream.sock.settimeout(2)
    while not stream.eof:
        try:
            stream._read_some(time.monotonic() + 2)
        except (TimeoutError, OSError):
            break
    for elem in stream.elements:
        if elem.tag == qname(NS_SM, 'a'):
            acked = max(acked, int(elem.get('h')))
    stream.close()
    return sent, acked


def offline_delivery(stream):
    """Bodies delivered after initial presence, until quiet for a while."""
    stream.send('<presence/>')
    bodies = []
    while True:
        try:
            elem = stream.next_element(timeout=3)
        except TimeoutError:
            return bodies
        if elem.tag == qname(NS_CLIENT, 'message'):
            bodies.append(body_of(elem))


def archive(stream, with_jid):
    """Every archived body of the stream's own account exchanged with with_jid."""
    bodies = []
    after = ''
    for page in range(MAX_MESSAGES // PAGE + 2):
        query_id = 'q%d' % page
        stream.send(
            "<iq type='set' id='%s'><query xmlns='%s' queryid='%s'>"
            "<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE' type='hidden'><value>%s</value></field>"
            "<field var='with'><value>%s</value></field></x>"
            "<set xmlns='%s'><max>%d</max>%s</set></query></iq>"
            % (query_id, NS_MAM, query_id, NS_MAM, with_jid, NS_RSM, PAGE,
               '<after>%s</after>' % after if after else ''))
        while True:
            elem = stream.next_element(timeout=20)
            if elem.tag == qname(NS_CLIENT, 'iq'):
                break
            result = elem.find(qname(NS_MAM, 'result'))
            assert result is not None and result.get('queryid') == query_id, tostring(elem)
            forwarded = result.find(qname(NS_FORWARD, 'forwarded'))
            bodies.append(body_of(forwarded.find(qname(NS_CLIENT, 'message'))))
        assert elem.get('type') == 'result' and elem.get('id') == query_id, tostring(elem)
        fin = elem.find(qname(NS_MAM, 'fin'))
        if fin.get('complete') == 'true':
            return bodies
        after = fin.find('%s/%s' % (qname(NS_RSM, 'set'), qname(NS_RSM, 'last'))).text
    raise AssertionError('the archive did not end')


def check(where, bodies, sent, acked):
    counts = {}
    for body in bodies:
        counts[body] = counts.get(body, 0) + 1
    duplicates = sorted(body for body, n in counts.items() if n > 1)
    assert not duplicates, '%s: stored more than once: %s' % (where, duplicates[:10])
    expected = {'durable %d' % i for i in range(sent)}
    strangers = sorted(set(counts) - expected)
    assert not strangers, '%s: never sent: %s' % (where, strangers[:10])
    missing = [i for i in range(acked) if 'durable %d' % i not in counts]
    assert not missing, '%s: %d acknowledged messages lost, first %s' % (
        where, len(missing), missing[:10])


def test_acknowledged_messages_survive_kill9():
    sender = harness.RawStream(server.c2s_port)
    sender.open()
    sender.login(SENDER, PASSWORD, 'flood')
    sender.send("<enable xmlns='%s'/>" % NS_SM)
    sender.expect(qname(NS_SM, 'enabled'))

    sent, acked = flood_until_killed(sender)
    assert acked >= KILL_AFTER_ACKED, acked
    print('# %d messages sent, %d acknowledged when vestnikd was killed' % (sent, acked))

    server.start()
    recipient = harness.RawStream(server.c2s_port)
    recipient.open()
    recipient.login(RECIPIENT, PASSWORD, 'phone')
    delivered = offline_delivery(recipient)
    check('offline delivery', delivered, sent, acked)
    check("recipient's archive", archive(recipient, '%s@%s' % (SENDER, harness.DOMAIN)),
          sent, acked)
    recipient.close()
    print('# %d delivered from offline storage after the restart' % len(delivered))

    sender = harness.RawStream(server.c2s_port)
    sender.open()
    sender.login(SENDER, PASSWORD, 'desk')
    check("sender's archive", archive(sender, '%s@%s' % (RECIPIENT, harness.DOMAIN)),
          sent, acked)
    sender.close()

    # Delivered means removed from offline storage: a second login gets none.
    again = harness.RawStream(server.c2s_port)
    again.open()
    again.login(RECIPIENT, PASSWORD, 'tablet')
    assert offline_delivery(again) == [], 'offline messages delivered twice'
    again.close()


if __name__ == '__main__':
    harness.run([test_acknowledged_messages_survive_kill9], server=server, setup=setup,
                timeout=300)
