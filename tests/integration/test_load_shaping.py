#!/usr/bin/env python3
"""test_load_shaping.py - a client over its stanza rate is slowed down, not cut off.

Issue 10: a client flushing its outbox (or a service notifying its users)
sends a burst far beyond limits.stanza_rate. The server stops reading from
it while its token bucket refills (TCP back-pressure) instead of closing
the stream, so the whole burst arrives, in order, at the configured rate,
and the sender stays connected; `vestnikctl status` counts the stream as
throttled meanwhile. (That sustained excess past limits.max_throttle_time
does close the stream is in test_limits.py.)

The sender is a raw TLS stream writing 10,000 messages in one go from a
thread; the recipient is a second raw stream reading them.
"""

import subprocess
import threading
import time

import harness
from harness import NS_CLIENT, qname, tostring

PASSWORD = 'secret-password'
RATE = 2000
BURST = 200
MESSAGES = 10000

server = harness.Server(limits_options={'stanza_rate': RATE, 'stanza_burst': BURST})


def setup():
    for user in ('alice', 'bob'):
        server.adduser('%s@%s' % (user, harness.DOMAIN), PASSWORD)


def status():
    result = subprocess.run([server.ctl, '-c', server.config_path, 'status'],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_burst_is_delivered_in_full_at_the_rate():
    receiver = harness.RawStream(server.c2s_port, timeout=10)
    receiver.open()
    bob = receiver.login('bob', PASSWORD, 'phone')
    sender = harness.RawStream(server.c2s_port, timeout=10)
    sender.open()
    sender.login('alice', PASSWORD, 'outbox')
    burst = ''.join("<message to='%s' type='chat' id='m%d'><body>queued message %d</body>"
                    "</message>" % (bob, i, i) for i in range(MESSAGES)).encode()
    sent = threading.Event()
    failure = []

    def send_all():
        try:
            sender.sock.sendall(burst)  # blocks while the server is not reading
        except OSError as e:
            failure.append(e)
        sent.set()

    started = time.monotonic()
    threading.Thread(target=send_all, daemon=True).start()
    seen_throttled = False
    for i in range(MESSAGES):
        msg = receiver.expect(qname(NS_CLIENT, 'message'))
        assert msg.get('id') == 'm%d' % i, 'expected m%d, got %s' % (i, tostring(msg))
        assert msg.findtext(qname(NS_CLIENT, 'body')) == 'queued message %d' % i, tostring(msg)
        if i == MESSAGES // 2:
            text = status()
            assert 'throttled: 1 stream(s) now' in text, text
            seen_throttled = True
    elapsed = time.monotonic() - started
    assert seen_throttled
    assert sent.wait(10) and not failure, failure
    # At RATE per second after the first BURST: about 4.9 s. Faster means
    # nothing was shaped; the upper bound leaves room for a slow machine.
    assert elapsed >= (MESSAGES - BURST) / RATE * 0.8, elapsed
    assert elapsed <= (MESSAGES - BURST) / RATE * 4 + 5, elapsed

    # The sender was never disconnected and is read normally again.
    time.sleep(1.5)
    sender.send("<iq type='get' id='after' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                % harness.DOMAIN)
    iq = sender.expect(qname(NS_CLIENT, 'iq'))
    assert iq.get('id') == 'after' and iq.get('type') == 'result', tostring(iq)
    assert not sender.elements, [tostring(e) for e in sender.elements]
    text = status()
    assert 'throttled: 0 stream(s) now, 1 episode(s), 0 closed' in text, text
    log = server.log_text()
    assert 'over its stanza rate (%d/s): reading slowed down' % RATE in log
    assert 'policy-violation' not in log
    sender.close()
    receiver.close()
    server.assert_running()


if __name__ == '__main__':
    harness.run([test_burst_is_delivered_in_full_at_the_rate], server=server, setup=setup,
                timeout=120)
