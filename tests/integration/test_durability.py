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

Why an SM ack means "stored": the handling of a message to an offline
account archives it (mod_mam, on "stanza/in" and "route/local") and stores
it (mod_offline, on "message/bare"); those store writes join the loop
turn's batch, which a writer thread commits with one durable LMDB commit
(group commit, src/store_batch.c). The server answers an <r/> only from
the store's durable callback registered when the <r/> arrived, with the h
of that moment (src/c2s_sm.c), so the <a/> covers only stanzas whose
writes are on disk.

Two cases: a steady flood with a few batches in flight, killed early; and
a flood of 10,000 messages with up to 3,000 unacknowledged at a time,
killed as soon as half of them are acknowledged, while the rest are still
arriving: in the socket, in the open batch and in the one being committed.
With acks given before the writes are durable, the second case loses
thousands of acknowledged messages.
"""

import time

import harness
from harness import NS_CLIENT, qname, tostring

PASSWORD = 'secret-password'
SENDER = 'alice'
RECIPIENT = 'bob'
FLOOD_SENDER = 'carol'
FLOOD_RECIPIENT = 'dave'
FLOOD = 10000
FLOOD_BATCH = 100
FLOOD_KILL_AFTER_ACKED = FLOOD // 2
FLOOD_IN_FLIGHT = 3000
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


# The default output cap (1 MiB) stays: mod_offline paces the backlog of
# 10,000 messages by the connection's drain (test_offline_backlog.py).
server = Server(limits_options={'stanza_rate': 0})


def setup():
    for user in (SENDER, RECIPIENT, FLOOD_SENDER, FLOOD_RECIPIENT):
        server.adduser('%s@%s' % (user, harness.DOMAIN), PASSWORD)


def body_of(message):
    body = message.find(qname(NS_CLIENT, 'body'))
    return body.text if body is not None else None


def flood_until_killed(stream, recipient, prefix, total, batch, in_flight, kill_after):
    """Send messages in batches, each followed by <r/>, keeping at most
    in_flight unacknowledged; kill -9 once kill_after are acknowledged.
    Returns (messages sent, last h received)."""
    sent = 0
    acked = 0
    killed = False
    while not killed and sent < total:
        batch_xml = ''.join("<message to='%s' type='chat' id='m%d'><body>%s %d</body></message>"
                            % (recipient, i, prefix, i) for i in range(sent, sent + batch))
        try:
            stream.send(batch_xml + "<r xmlns='%s'/>" % NS_SM)
        except OSError:
            break
        sent += batch
        # Keep a few batches in flight: wait for acks only past that window.
        while sent - acked > in_flight:
            elem = stream.next_element(timeout=30)
            assert elem.tag == qname(NS_SM, 'a'), 'unexpected %s' % tostring(elem)
            acked = max(acked, int(elem.get('h')))
        if acked >= kill_after:
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


def check(where, bodies, sent, acked, prefix='durable'):
    counts = {}
    for body in bodies:
        counts[body] = counts.get(body, 0) + 1
    duplicates = sorted(body for body, n in counts.items() if n > 1)
    assert not duplicates, '%s: stored more than once: %s' % (where, duplicates[:10])
    expected = {'%s %d' % (prefix, i) for i in range(sent)}
    strangers = sorted(set(counts) - expected)
    assert not strangers, '%s: never sent: %s' % (where, strangers[:10])
    missing = [i for i in range(acked) if '%s %d' % (prefix, i) not in counts]
    assert not missing, '%s: %d acknowledged messages lost, first %s' % (
        where, len(missing), missing[:10])


def flood_kill_and_verify(sender_name, recipient_name, prefix, total, batch, in_flight,
                          kill_after):
    sender_jid = '%s@%s' % (sender_name, harness.DOMAIN)
    recipient_jid = '%s@%s' % (recipient_name, harness.DOMAIN)
    sender = harness.RawStream(server.c2s_port)
    sender.open()
    sender.login(sender_name, PASSWORD, 'flood')
    sender.send("<enable xmlns='%s'/>" % NS_SM)
    sender.expect(qname(NS_SM, 'enabled'))

    started = time.monotonic()
    sent, acked = flood_until_killed(sender, recipient_jid, prefix, total, batch, in_flight,
                                     kill_after)
    assert acked >= kill_after, acked
    print('# %d messages sent, %d acknowledged when vestnikd was killed (%.1f s)'
          % (sent, acked, time.monotonic() - started))

    server.start()
    recipient = harness.RawStream(server.c2s_port)
    recipient.open()
    recipient.login(recipient_name, PASSWORD, 'phone')
    delivered = offline_delivery(recipient)
    check('offline delivery', delivered, sent, acked, prefix)
    check("recipient's archive", archive(recipient, sender_jid), sent, acked, prefix)
    recipient.close()
    print('# %d delivered from offline storage after the restart' % len(delivered))

    sender = harness.RawStream(server.c2s_port)
    sender.open()
    sender.login(sender_name, PASSWORD, 'desk')
    check("sender's archive", archive(sender, recipient_jid), sent, acked, prefix)
    sender.close()

    # Delivered means removed from offline storage: a second login gets none.
    again = harness.RawStream(server.c2s_port)
    again.open()
    again.login(recipient_name, PASSWORD, 'tablet')
    assert offline_delivery(again) == [], 'offline messages delivered twice'
    again.close()


def test_acknowledged_messages_survive_kill9():
    flood_kill_and_verify(SENDER, RECIPIENT, 'durable', MAX_MESSAGES, BATCH, IN_FLIGHT,
                          KILL_AFTER_ACKED)


def test_flood_of_10000_acknowledged_messages_survive_kill9():
    """Group commit under load: thousands in flight when killed."""
    flood_kill_and_verify(FLOOD_SENDER, FLOOD_RECIPIENT, 'flood', FLOOD, FLOOD_BATCH,
                          FLOOD_IN_FLIGHT, FLOOD_KILL_AFTER_ACKED)


if __name__ == '__main__':
    harness.run([test_acknowledged_messages_survive_kill9,
                 test_flood_of_10000_acknowledged_messages_survive_kill9],
                server=server, setup=setup, timeout=300)
