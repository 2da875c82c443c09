#!/usr/bin/env python3
"""test_login_policy.py - login back-off without a lock-out button (issue 11, item 4).

An attacker who guesses passwords gets his own address held, then his
address range (an IPv4 /24); the account he guesses at slows down only the
addresses that never logged in to it, so its owner, from an address he
logged in from before, still logs in at once. The policy and what it holds
are shown by `vestnikctl status` and written to the log. Raw streams from
loopback addresses (127.0.x.y), each test in a /24 of its own.
"""

import base64
import subprocess
import time

import harness
from harness import NS_SASL, qname, tostring

PASSWORD = 'secret-password'
MAX_FAILURES = 3
RANGE_MAX_FAILURES = 6
BACKOFF = 30

server = harness.Server(limits_options={
    'login_max_failures': MAX_FAILURES,
    'login_range_max_failures': RANGE_MAX_FAILURES,
    'login_failure_window': 60,
    'login_backoff': BACKOFF,
    'login_backoff_max': 2 * BACKOFF,
})


def setup():
    for user in ('alice', 'bob', 'carol'):
        server.adduser('%s@%s' % (user, harness.DOMAIN), PASSWORD)


def try_plain(source, user, password):
    """One PLAIN attempt on a new stream: 'success' or the failure condition."""
    s = harness.RawStream(server.c2s_port, source=source)
    try:
        s.open()
        s.starttls()
        token = base64.b64encode(b'\0' + user.encode() + b'\0' + password.encode()).decode()
        s.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, token))
        elem = s.next_element()
        if elem.tag == qname(NS_SASL, 'success'):
            return 'success'
        assert elem.tag == qname(NS_SASL, 'failure'), tostring(elem)
        return [c.tag.split('}')[1] for c in elem if c.tag != qname(NS_SASL, 'text')][0]
    finally:
        s.close()


def try_scram(source, user, password):
    s = harness.RawStream(server.c2s_port, source=source)
    try:
        s.open()
        s.starttls()
        s.auth_scram(harness.Scram('sha256', user, password))
        return 'success'
    except AssertionError as e:
        return str(e)
    finally:
        s.close()


def status():
    result = subprocess.run([server.ctl, '-c', server.config_path, 'status'],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_for_log(fragment, timeout=5):
    deadline = time.monotonic() + timeout
    while fragment not in server.log_text():
        assert time.monotonic() < deadline, 'no log line with %r; log:\n%s' % (
            fragment, server.log_tail())
        time.sleep(0.05)


def test_owner_logs_in_while_an_attacker_guesses():
    owner, attacker, stranger = '127.0.1.10', '127.0.1.66', '127.0.1.99'
    assert try_plain(owner, 'alice', PASSWORD) == 'success'  # alice's known address
    # Ten guesses from one address: wrong passwords until it is held, then
    # refused before any check.
    results = [try_plain(attacker, 'alice', 'guess%d' % i) for i in range(10)]
    assert results == ['not-authorized'] * MAX_FAILURES + \
        ['temporary-auth-failure'] * (10 - MAX_FAILURES), results
    wait_for_log('failed logins for address %s: refusing its logins for %d s'
                 % (attacker, BACKOFF))
    wait_for_log('failed logins for account alice@%s: refusing its logins from addresses it '
                 'does not know' % harness.DOMAIN)
    # The owner, from his known address, at once, with either mechanism.
    assert try_plain(owner, 'alice', PASSWORD) == 'success'
    assert try_scram(owner, 'alice', PASSWORD) == 'success'
    # The attacker's address stays held, right password or not.
    assert try_plain(attacker, 'alice', PASSWORD) == 'temporary-auth-failure'
    assert try_plain(attacker, 'bob', PASSWORD) == 'temporary-auth-failure'
    # A new address guessing at alice is slowed down; it may still log in
    # to other accounts.
    assert try_plain(stranger, 'alice', PASSWORD) == 'temporary-auth-failure'
    assert try_plain(stranger, 'bob', PASSWORD) == 'success'
    line = status()
    assert 'login back-off: %d failures in 60 s hold an address' % MAX_FAILURES in line, line
    assert 'limits: login back-off: %d failures' % MAX_FAILURES in server.log_text()
    assert 'held now: 1 address(es), 0 range(s), 1 account(s)' in line, line


def test_known_address_survives_a_restart():
    owner, attacker = '127.0.2.10', '127.0.2.66'
    assert try_plain(owner, 'carol', PASSWORD) == 'success'
    server.restart()
    for i in range(MAX_FAILURES):
        assert try_plain(attacker, 'carol', 'guess%d' % i) == 'not-authorized'
    wait_for_log('failed logins for account carol@%s' % harness.DOMAIN)
    assert try_plain(owner, 'carol', PASSWORD) == 'success'


def test_address_range_is_held():
    # One guess from each of six addresses of 127.0.3.0/24: no address
    # reaches its limit, the range does.
    for i in range(RANGE_MAX_FAILURES):
        assert try_plain('127.0.3.%d' % (10 + i), 'nobody%d' % i, 'guess') == 'not-authorized'
    wait_for_log('failed logins for address range 127.0.3.0/24: refusing its logins for %d s'
                 % BACKOFF)
    assert try_plain('127.0.3.200', 'bob', PASSWORD) == 'temporary-auth-failure'
    # Another /24 is not affected.
    assert try_plain('127.0.4.1', 'bob', PASSWORD) == 'success'
    assert '1 range(s)' in status()


if __name__ == '__main__':
    harness.run([
        test_owner_logs_in_while_an_attacker_guesses,
        test_known_address_survives_a_restart,
        test_address_range_is_held,
    ], server=server, setup=setup, timeout=60)
