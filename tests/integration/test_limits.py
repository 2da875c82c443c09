#!/usr/bin/env python3
"""test_limits.py - limits and abuse handling on client streams.

Each limit of the limits: section (and c2s.handshake_timeout) is driven
past its value with raw streams: connections per address, login back-off
per address and per account (refused even with the right password,
doubling, other addresses and accounts unaffected), the stanza token
bucket (over it the stream is read more slowly; only sustained excess
closes it), resources per account, the output cap for a client that never
reads, and handshakes that never finish (a trickled stream header, a TLS
handshake that never starts). Every test connects from its own loopback
address (127.0.0.x), so that the per-address accounting of one test does
not leak into the next.
"""

import base64
import os
import socket
import ssl
import struct
import time

import harness
from harness import NS_CLIENT, NS_SASL, NS_STREAM, qname, tostring

PASSWORD = 'secret-password'
MAX_CONNECTIONS = 5
MAX_FAILURES = 3
BACKOFF = 2
BACKOFF_MAX = 4
STANZA_RATE = 20
STANZA_BURST = 40
MAX_THROTTLE_TIME = 3
MAX_RESOURCES = 3
MAX_OUTPUT = 65536
HANDSHAKE_TIMEOUT = 2

# ASan keeps freed memory in a quarantine (256 MiB by default), which would
# hide whether the server keeps or frees what a slow reader never took.
os.environ['ASAN_OPTIONS'] = (os.environ.get('ASAN_OPTIONS', 'detect_leaks=1')
                              + ':quarantine_size_mb=1')

server = harness.Server(handshake_timeout=HANDSHAKE_TIMEOUT, limits_options={
    'max_connections_per_ip': MAX_CONNECTIONS,
    'login_max_failures': MAX_FAILURES,
    'login_failure_window': 60,
    'login_backoff': BACKOFF,
    'login_backoff_max': BACKOFF_MAX,
    # All tests here connect from 127.0.0.x: one IPv4 /24, whose own back-off
    # test_login_policy.py covers.
    'login_range_max_failures': 0,
    'stanza_rate': STANZA_RATE,
    'stanza_burst': STANZA_BURST,
    'max_throttle_time': MAX_THROTTLE_TIME,
    'max_resources_per_account': MAX_RESOURCES,
    'max_output_buffer': MAX_OUTPUT,
})

USERS = ('alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy',
         'mallory')


def setup():
    for user in USERS:
        server.adduser('%s@%s' % (user, harness.DOMAIN), PASSWORD)


# ------------------------------------------------------------------ helpers

def stream(source, port=None, tls=False):
    s = harness.RawStream(port or server.c2s_port, source=source, tls=tls)
    s.open()
    return s


def plain_auth(s, user, password):
    """PLAIN on a stream past STARTTLS: the <success/> or <failure/> element."""
    token = base64.b64encode(b'\0' + user.encode() + b'\0' + password.encode()).decode()
    s.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, token))
    return s.next_element()


def failure_conditions(elem):
    assert elem.tag == qname(NS_SASL, 'failure'), tostring(elem)
    return [c.tag.split('}')[1] for c in elem if c.tag != qname(NS_SASL, 'text')]


def try_login(source, user, password):
    """One PLAIN attempt on a new stream: 'success' or the failure condition."""
    s = stream(source)
    try:
        s.starttls()
        elem = plain_auth(s, user, password)
        if elem.tag == qname(NS_SASL, 'success'):
            return 'success'
        return failure_conditions(elem)[0]
    finally:
        s.close()


def try_scram(source, user, password):
    """One SCRAM-SHA-256 attempt: 'success' or the failure condition."""
    s = stream(source)
    try:
        s.starttls()
        scram = harness.Scram('sha256', user, password)
        s.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
               % (NS_SASL, scram.mechanism, harness.b64(scram.client_first())))
        elem = s.next_element()
        if elem.tag == qname(NS_SASL, 'challenge'):
            final = scram.client_final(base64.b64decode(elem.text))
            s.send("<response xmlns='%s'>%s</response>" % (NS_SASL, harness.b64(final)))
            elem = s.next_element()
        if elem.tag == qname(NS_SASL, 'success'):
            return 'success'
        return failure_conditions(elem)[0]
    finally:
        s.close()


def logged_in(source, user, resource=None):
    s = stream(source)
    s.login(user, PASSWORD, resource)
    return s


def ping(s, ident):
    s.send("<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
           % (ident, harness.DOMAIN))


def expect_pong(s, ident):
    iq = s.expect(qname(NS_CLIENT, 'iq'))
    assert iq.get('type') == 'result' and iq.get('id') == ident, tostring(iq)


def stream_error_text(elem):
    text = elem.find(qname(harness.NS_STREAM_ERRORS, 'text'))
    return text.text if text is not None else None


def wait_for_log(fragment, timeout=5):
    deadline = time.monotonic() + timeout
    while fragment not in server.log_text():
        assert time.monotonic() < deadline, 'no log line with %r; log:\n%s' % (
            fragment, server.log_tail())
        time.sleep(0.05)


def rss_kib():
    with open('/proc/%d/status' % server.proc.pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise AssertionError('no VmRSS for vestnikd')


# ------------------------------------------------- connections per address

def test_connections_per_address():
    source = '127.0.0.10'
    open_streams = [stream(source) for _ in range(MAX_CONNECTIONS)]
    for s in open_streams:
        s.features()
    over = harness.RawStream(server.c2s_port, source=source)
    error = over.expect_stream_error('policy-violation')
    assert stream_error_text(error) == 'Too many connections from your address', tostring(error)
    wait_for_log('limits: %s already has %d client connections' % (source, MAX_CONNECTIONS))

    # Direct TLS: no handshake is spent on a refused connection.
    raw = socket.create_connection(('127.0.0.1', server.tls_port), timeout=5,
                                   source_address=(source, 0))
    try:
        harness.insecure_tls_context().wrap_socket(raw, server_hostname=harness.DOMAIN)
        raise AssertionError('a TLS handshake over the limit succeeded')
    except (ssl.SSLError, ConnectionError, OSError):
        pass
    finally:
        raw.close()

    # Other addresses are not affected.
    other = stream('127.0.0.11')
    other.features()
    other.close()

    # A closed connection makes room for one more.
    open_streams.pop().close()
    deadline = time.monotonic() + 5
    while True:
        s = stream(source)
        elem = s.next_element()
        if elem.tag == qname(NS_STREAM, 'features'):
            open_streams.append(s)
            break
        s.close()
        assert time.monotonic() < deadline, 'no room after a connection closed'
        time.sleep(0.1)
    for s in open_streams:
        s.close()
    server.assert_running()


# ------------------------------------------------------------ login back-off

def test_login_backoff_per_address():
    source = '127.0.0.20'
    # Failures for several accounts: the address is what is held back.
    for user in ('nobody1', 'nobody2', 'alice'):
        assert try_login(source, user, 'wrong') == 'not-authorized'
    wait_for_log('failed logins for address %s' % source)
    # Now even the right password is refused from there...
    assert try_login(source, 'alice', PASSWORD) == 'temporary-auth-failure'
    assert try_scram(source, 'alice', PASSWORD) == 'temporary-auth-failure'
    # ...but not from elsewhere (alice had one failure only).
    assert try_login('127.0.0.21', 'alice', PASSWORD) == 'success'
    time.sleep(BACKOFF + 0.3)
    assert try_login(source, 'alice', PASSWORD) == 'success'


def test_refusals_close_a_spinning_stream():
    source = '127.0.0.22'
    for user in ('nobody1', 'nobody2', 'nobody3'):
        assert try_login(source, user, 'wrong') == 'not-authorized'
    s = stream(source)
    s.starttls()
    for _ in range(2):
        assert failure_conditions(plain_auth(s, 'carol', PASSWORD)) == ['temporary-auth-failure']
    s.send("<auth xmlns='%s' mechanism='PLAIN'>=</auth>" % NS_SASL)
    assert failure_conditions(s.next_element()) == ['temporary-auth-failure']
    s.expect_stream_error('policy-violation')


def test_login_backoff_per_account():
    # One failure from each of three addresses: no address reaches the limit.
    for source in ('127.0.0.30', '127.0.0.31', '127.0.0.32'):
        assert try_login(source, 'bob', 'wrong') == 'not-authorized'
    wait_for_log('failed logins for account bob@%s' % harness.DOMAIN)
    held_since = time.monotonic()
    # The account is held for every address that never logged in to it,
    # with either mechanism, right password or not; other accounts log in
    # from the same address.
    assert try_login('127.0.0.33', 'bob', PASSWORD) == 'temporary-auth-failure'
    assert try_scram('127.0.0.33', 'bob', PASSWORD) == 'temporary-auth-failure'
    assert try_login('127.0.0.33', 'carol', PASSWORD) == 'success'
    # Refusals did not count as failures: the hold ends on time.
    time.sleep(max(0, held_since + BACKOFF + 0.3 - time.monotonic()))

    # Three more failures, no success between: the back-off doubles.
    for source in ('127.0.0.34', '127.0.0.35', '127.0.0.36'):
        assert try_login(source, 'bob', 'wrong') == 'not-authorized'
    held_since = time.monotonic()
    wait_for_log('for account bob@%s: refusing its logins from addresses it does not know '
                 'for %d s'
                 % (harness.DOMAIN, 2 * BACKOFF))
    time.sleep(BACKOFF + 0.5)
    assert try_login('127.0.0.37', 'bob', PASSWORD) == 'temporary-auth-failure'
    time.sleep(max(0, held_since + 2 * BACKOFF + 0.3 - time.monotonic()))
    assert try_scram('127.0.0.37', 'bob', PASSWORD) == 'success'


# --------------------------------------------------------------- stanza rate

def test_stanza_rate_slows_reading_down():
    s = logged_in('127.0.0.40', 'dave', 'rate')
    # Whitespace is not counted: far more than a burst of it changes nothing.
    s.send(' ' * (STANZA_BURST * 100))
    time.sleep(0.3)  # the bucket is full again after the bind
    s.send(''.join("<iq type='get' id='a%d' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                   % (i, harness.DOMAIN) for i in range(STANZA_BURST)))
    for i in range(STANZA_BURST):
        expect_pong(s, 'a%d' % i)

    # One second refills STANZA_RATE tokens; a batch twice that size is not
    # refused: the server reads the rest at STANZA_RATE per second.
    time.sleep(1.0)
    started = time.monotonic()
    s.send(''.join("<iq type='get' id='b%d' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                   % (i, harness.DOMAIN) for i in range(2 * STANZA_RATE)))
    for i in range(2 * STANZA_RATE):
        expect_pong(s, 'b%d' % i)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.6, elapsed
    time.sleep(0.5)
    ping(s, 'c')
    expect_pong(s, 'c')
    assert 'over its stanza rate (%d/s): reading slowed down' % STANZA_RATE in server.log_text()
    s.close()


def test_sustained_excess_closes_the_stream():
    s = logged_in('127.0.0.41', 'judy', 'flood')
    count = STANZA_BURST + 3 * MAX_THROTTLE_TIME * STANZA_RATE
    started = time.monotonic()
    s.send(''.join("<iq type='get' id='f%d' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                   % (i, harness.DOMAIN) for i in range(count)))
    answered = 0
    while True:
        elem = s.next_element()
        if elem.tag != qname(NS_CLIENT, 'iq'):
            break
        assert elem.get('id') == 'f%d' % answered, tostring(elem)
        answered += 1
    elapsed = time.monotonic() - started
    assert elem.tag == qname(NS_STREAM, 'error'), tostring(elem)
    assert [c.tag for c in elem] == [qname(harness.NS_STREAM_ERRORS, 'policy-violation'),
                                     qname(harness.NS_STREAM_ERRORS, 'text')], tostring(elem)
    assert 'rate' in stream_error_text(elem), tostring(elem)
    s.expect_closed()
    # Throttled (read at the rate) for max_throttle_time, then closed.
    assert MAX_THROTTLE_TIME - 0.5 <= elapsed <= MAX_THROTTLE_TIME + 3, elapsed
    expected = STANZA_BURST + MAX_THROTTLE_TIME * STANZA_RATE
    assert expected * 0.8 <= answered <= expected * 1.2 + 5, answered
    assert ('over its stanza rate (%d/s) for %d s without a break: closing'
            % (STANZA_RATE, MAX_THROTTLE_TIME)) in server.log_text()


# -------------------------------------------------------- resources per user

def test_max_resources_per_account():
    streams = [logged_in('127.0.0.50', 'erin', 'r%d' % i) for i in range(MAX_RESOURCES)]
    extra = stream('127.0.0.51')
    extra.starttls()
    extra.auth_plain('erin', PASSWORD)
    extra.send("<iq type='set' id='bind1'><bind xmlns='%s'><resource>r%d</resource></bind></iq>"
               % (harness.NS_BIND, MAX_RESOURCES))
    iq = extra.expect(qname(NS_CLIENT, 'iq'))
    assert iq.get('type') == 'error' and iq.get('id') == 'bind1', tostring(iq)
    error = iq.find(qname(NS_CLIENT, 'error'))
    assert error is not None and error.get('type') == 'wait', tostring(iq)
    assert error.find(qname(harness.NS_STANZA_ERRORS, 'resource-constraint')) is not None, (
        tostring(iq))
    # The bound ones are untouched.
    for i, s in enumerate(streams):
        ping(s, 'p%d' % i)
        expect_pong(s, 'p%d' % i)
    # Taking over a bound resource is no new resource: the older one goes.
    assert extra.bind('r0') == 'erin@%s/r0' % harness.DOMAIN
    streams[0].expect_stream_error('conflict')
    # And a closed session makes room.
    streams[1].close()
    deadline = time.monotonic() + 5
    while True:
        s = stream('127.0.0.52')
        s.starttls()
        s.auth_plain('erin', PASSWORD)
        s.send("<iq type='set' id='bind1'><bind xmlns='%s'><resource>new</resource></bind></iq>"
               % harness.NS_BIND)
        iq = s.expect(qname(NS_CLIENT, 'iq'))
        if iq.get('type') == 'result':
            break
        s.close()
        assert time.monotonic() < deadline, 'no room after a session ended: %s' % tostring(iq)
        time.sleep(0.1)
    for other in (s, extra, streams[2]):
        other.close()


# -------------------------------------------------------- slow reader's cap

def test_slow_reader_is_closed():
    # frank never reads; a small receive buffer keeps the kernel from
    # absorbing much of what the server sends.
    frank = harness.RawStream(server.c2s_port, source='127.0.0.60')
    frank.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    frank.open()
    frank_jid = frank.login('frank', PASSWORD, 'slow')

    rss_before = rss_kib()
    body = 'x' * 200000
    flooders = [logged_in('127.0.0.%d' % (61 + i), user, 'flood')
                for i, user in enumerate(('grace', 'heidi', 'ivan'))]
    # Headlines: once frank is gone, the rest is dropped, not bounced. The
    # bind took one token of each flooder's bucket; the rest is the flood.
    sent = 0
    for f in flooders:
        f.send(''.join("<message to='%s' type='headline' id='m%d'><body>%s</body></message>"
                       % (frank_jid, i, body) for i in range(STANZA_BURST - 1)))
        sent += (STANZA_BURST - 1) * len(body)
    wait_for_log('c2s 127.0.0.60: output buffer full (client not reading)', timeout=20)
    rss_growth = rss_kib() - rss_before

    # frank's connection is gone: after what the kernel held, EOF.
    frank.sock.settimeout(5)
    deadline = time.monotonic() + 10
    while True:
        try:
            data = frank.sock.recv(1 << 20)
        except socket.timeout:
            raise AssertionError('the slow reader is still connected') from None
        except OSError:  # reset, or TLS cut short
            break
        if not data:
            break
        assert time.monotonic() < deadline, 'the slow reader was not disconnected'
    frank.close()
    # The server kept far less than the flood for the reader, and serves on.
    assert rss_growth * 1024 < sent / 2, 'RSS grew by %d KiB over a %d byte flood' % (
        rss_growth, sent)
    print('# vestnikd RSS grew by %d KiB during a %d KiB flood to a slow reader'
          % (rss_growth, sent // 1024))
    time.sleep(2 / STANZA_RATE)  # a token for each flooder's ping
    for i, f in enumerate(flooders):
        ping(f, 'after%d' % i)
        while True:
            elem = f.next_element(timeout=10)
            if elem.tag == qname(NS_CLIENT, 'iq') and elem.get('id') == 'after%d' % i:
                break
        f.close()
    server.assert_running()


def test_resumed_backlog_over_the_output_cap():
    # judy's session hibernates with more unacknowledged messages than the
    # output cap holds: resending them on <resume/> overflows it, so the
    # new connection is dropped, and every message she never acknowledged
    # goes back to its sender as an error (no offline storage here).
    ns_sm = 'urn:xmpp:sm:3'
    judy = stream('127.0.0.70')
    judy_jid = judy.login('judy', PASSWORD, 'phone')
    judy.send("<enable xmlns='%s' resume='true'/>" % ns_sm)
    previd = judy.expect(qname(ns_sm, 'enabled')).get('id')
    judy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    judy.close()
    wait_for_log('session %s hibernates' % judy_jid)

    # Three senders, so that the bounces each gets stay within the cap.
    senders = [logged_in('127.0.0.%d' % (71 + i), user, 'desk')
               for i, user in enumerate(('mallory', 'heidi', 'ivan'))]
    body = 'y' * 3000
    per_sender = 10
    assert len(senders) * per_sender * len(body) > MAX_OUTPUT
    for i, sender in enumerate(senders):
        sender.send(''.join("<message to='%s' type='chat' id='b%d-%d'><body>%s</body></message>"
                            % (judy_jid, i, n, body) for n in range(per_sender)))
        ping(sender, 'queued')
        expect_pong(sender, 'queued')

    judy = stream('127.0.0.70')
    judy.starttls()
    judy.auth_plain('judy', PASSWORD)
    judy.send("<resume xmlns='%s' previd='%s' h='0'/>" % (ns_sm, previd))
    judy.expect(qname(ns_sm, 'resumed'))
    resent = 0
    try:
        while True:
            elem = judy.next_element(timeout=10)
            if elem.tag == qname(NS_CLIENT, 'message'):
                resent += 1
    except harness.StreamClosed:
        pass
    judy.close()
    assert resent < len(senders) * per_sender, 'all resent within a %d byte cap' % MAX_OUTPUT
    wait_for_log('c2s 127.0.0.70: output buffer full (client not reading)')
    server.assert_running()

    for i, sender in enumerate(senders):
        bounced = []
        while len(bounced) < per_sender:
            elem = sender.next_element(timeout=10)
            assert elem.tag == qname(NS_CLIENT, 'message') and elem.get('type') == 'error', (
                tostring(elem))
            bounced.append(elem.get('id'))
        assert bounced == ['b%d-%d' % (i, n) for n in range(per_sender)], bounced
        sender.close()
    server.assert_running()


# ------------------------------------------------------------ slowloris

def test_trickled_header_times_out():
    header = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"
              % harness.DOMAIN).encode()
    sock = socket.create_connection(('127.0.0.1', server.c2s_port), timeout=5,
                                    source_address=('127.0.0.70', 0))
    started = time.monotonic()
    received = b''
    sock.setblocking(False)
    # One byte every quarter second: the whole header would take ~35 s.
    for i in range(len(header) - 1):
        try:
            sock.send(header[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.25)
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionResetError:
            break
        received += chunk
        if not chunk or b'</stream:stream>' in received:
            break
    elapsed = time.monotonic() - started
    sock.close()
    assert b'connection-timeout' in received, received
    assert HANDSHAKE_TIMEOUT - 0.5 <= elapsed <= HANDSHAKE_TIMEOUT + 3, elapsed


def wait_for_eof(sock, at_most):
    started = time.monotonic()
    sock.settimeout(at_most)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_tls_handshake_never_starts():
    # Direct TLS: connected, but no ClientHello ever.
    sock = socket.create_connection(('127.0.0.1', server.tls_port), timeout=5,
                                    source_address=('127.0.0.71', 0))
    elapsed = wait_for_eof(sock, HANDSHAKE_TIMEOUT + 5)
    sock.close()
    assert HANDSHAKE_TIMEOUT - 0.5 <= elapsed <= HANDSHAKE_TIMEOUT + 4, elapsed

    # STARTTLS: <proceed/>, then silence.
    s = stream('127.0.0.72')
    s.features()
    started = time.monotonic()
    s.send("<starttls xmlns='%s'/>" % harness.NS_TLS)
    s.expect(qname(harness.NS_TLS, 'proceed'))
    elapsed = wait_for_eof(s.sock, HANDSHAKE_TIMEOUT + 5)
    s.close()
    assert elapsed + (time.monotonic() - started) >= HANDSHAKE_TIMEOUT - 0.5, elapsed
    assert elapsed <= HANDSHAKE_TIMEOUT + 4, elapsed
    server.assert_running()


if __name__ == '__main__':
    harness.run([
        test_connections_per_address,
        test_login_backoff_per_address,
        test_refusals_close_a_spinning_stream,
        test_login_backoff_per_account,
        test_stanza_rate_slows_reading_down,
        test_sustained_excess_closes_the_stream,
        test_max_resources_per_account,
        test_slow_reader_is_closed,
        test_resumed_backlog_over_the_output_cap,
        test_trickled_header_times_out,
        test_tls_handshake_never_starts,
    ], server=server, setup=setup, timeout=60)
