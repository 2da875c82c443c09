#!/usr/bin/env python3
"""test_stream_management.py - XEP-0198 Stream Management on client streams.

Raw streams check the exact elements: the <sm/> feature, <enable/> and its
refusals, acks counting exactly the client's stanzas, the server's <r/>,
acks claiming too much, resumption on a new TCP connection (only the
unacknowledged stanzas again, then those that queued while the session
hibernated), refused resumptions, the conflict for a still-open old
connection, and what happens to unacknowledged stanzas when a session ends
for good (messages to offline storage, iq requests bounced). slixmpp with
its own xep_0198 plugin shows an unmodified client resumes.
"""

import asyncio
import re
import socket
import struct
import time

import harness
from harness import qname, tostring

ALICE = 'alice@' + harness.DOMAIN
BOB = 'bob@' + harness.DOMAIN
CAROL = 'carol@' + harness.DOMAIN
DAVE = 'dave@' + harness.DOMAIN
PASSWORD = 'secret-password'
NS_SM = 'urn:xmpp:sm:3'
NS_DELAY = 'urn:xmpp:delay'
NS_VERSION = 'jabber:iq:version'
RESUME_TIMEOUT = 2
MAX_UNACKED = 50


class Server(harness.Server):
    """The harness's server with offline storage, so that messages a dead
    session never acknowledged have somewhere to go."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  offline:\n')


server = Server(c2s_options={'resume_timeout': RESUME_TIMEOUT,
                             'max_unacked_stanzas': MAX_UNACKED})


def setup():
    for jid in (ALICE, BOB, CAROL, DAVE):
        server.adduser(jid, PASSWORD)


# ------------------------------------------------------------------ helpers

XML_LANG = '{http://www.w3.org/XML/1998/namespace}lang'


def sm(name):
    return qname(NS_SM, name)


def client(name):
    return qname(harness.NS_CLIENT, name)


def assert_element(elem, tag, attrib, children=()):
    """elem is exactly <tag attrib...> with these child tags and no text."""
    assert elem.tag == tag, 'expected %s, got %s' % (tag, tostring(elem))
    # xml:lang aside: the server adds the sender's stream language to what
    # it relays (RFC 6120 §4.7.4; test_i18n checks it).
    got = {k: v for k, v in elem.attrib.items() if k != XML_LANG}
    assert got == attrib, 'expected attributes %s, got %s' % (attrib, tostring(elem))
    assert [child.tag for child in elem] == list(children), tostring(elem)
    assert not (elem.text or '').strip(), tostring(elem)


def assert_failed(elem, condition):
    assert_element(elem, sm('failed'), {}, [qname(harness.NS_STANZA_ERRORS, condition)])


def connect(jid, resource):
    """A raw stream logged in as jid with a bound resource; returns (stream, full JID)."""
    stream = harness.RawStream(server.c2s_port)
    stream.open()
    stream.requests = 0
    full = stream.login(jid.split('@')[0], PASSWORD, resource)
    assert full == '%s/%s' % (jid, resource), full
    return stream, full


def enable(stream, resume=True):
    """Enable SM; returns the resumption id (None without resume)."""
    stream.send("<enable xmlns='%s'%s/>" % (NS_SM, " resume='true'" if resume else ''))
    enabled = stream.expect(sm('enabled'))
    if not resume:
        assert_element(enabled, sm('enabled'), {})
        return None
    sm_id = enabled.get('id')
    assert sm_id and re.fullmatch(r'[0-9a-f]{32}', sm_id), tostring(enabled)
    assert_element(enabled, sm('enabled'),
                   {'id': sm_id, 'resume': 'true', 'max': str(RESUME_TIMEOUT)})
    return sm_id


def next_stanza(stream):
    """The next element that is not an <r/> from the server; stream.requests
    counts the <r/>s passed over. Where the server puts its <r/> relative
    to the stanza it follows up is left open; how many it sends is not."""
    while True:
        elem = stream.next_element()
        if elem.tag != sm('r'):
            return elem
        assert_element(elem, sm('r'), {})
        stream.requests += 1


def request_ack(stream):
    """<r/>; returns the h of the server's <a/>. Any <r/> the server sent
    before it is counted, so stream.requests is exact afterwards."""
    stream.send("<r xmlns='%s'/>" % NS_SM)
    ack = next_stanza(stream)
    assert ack.tag == sm('a'), 'expected <a/>, got %s' % tostring(ack)
    assert set(ack.attrib) == {'h'} and len(ack) == 0, tostring(ack)
    return int(ack.get('h'))


def send_ack(stream, h):
    stream.send("<a xmlns='%s' h='%d'/>" % (NS_SM, h))


def send_message(stream, to, body, msg_id):
    stream.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
                % (to, msg_id, body))


def expect_message(stream, sender, to, body, msg_id):
    msg = next_stanza(stream)
    assert_element(msg, client('message'),
                   {'from': sender, 'to': to, 'type': 'chat', 'id': msg_id},
                   [client('body')])
    assert msg[0].text == body, tostring(msg)
    return msg


def messages_until(stream, last_body):
    """Bodies of the messages that arrive up to last_body, skipping <r/>;
    any other element is an error."""
    bodies = []
    while not bodies or bodies[-1] != last_body:
        elem = next_stanza(stream)
        assert elem.tag == client('message'), tostring(elem)
        bodies.append(elem.findtext(client('body')))
    return bodies


def kill(stream):
    """Drop the TCP connection at once (RST), as a phone losing coverage does."""
    stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    stream.close()


def wait_for_log(text, count=1, timeout=5):
    """Until the server log holds text count times (it logs hibernation)."""
    deadline = time.monotonic() + timeout
    while server.log_text().count(text) < count:
        assert time.monotonic() < deadline, 'no %r in the log:\n%s' % (text, server.log_tail())
        time.sleep(0.02)


def hibernates(full_jid):
    return 'session %s hibernates' % full_jid


def authenticate(user):
    """A raw stream after SASL, before binding; returns (stream, features)."""
    stream = harness.RawStream(server.c2s_port)
    stream.requests = 0
    stream.open()
    stream.starttls()
    return stream, stream.auth_plain(user, PASSWORD)


def resume(user, previd, h):
    """A new connection resuming previd; returns (stream, <resumed/>)."""
    stream, features = authenticate(user)
    assert features.find(sm('sm')) is not None, tostring(features)
    stream.send("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, previd, h))
    return stream, stream.next_element()


def close_stream(stream):
    stream.send('</stream:stream>')
    stream.expect_closed()


# ---------------------------------------------------------- raw: negotiation

def test_sm_feature_offered_after_authentication_only():
    stream = harness.RawStream(server.c2s_port)
    stream.open()
    features = stream.starttls()
    assert features.find(sm('sm')) is None, tostring(features)
    features = stream.auth_plain('alice', PASSWORD)
    offered = features.find(sm('sm'))
    assert offered is not None, tostring(features)
    assert_element(offered, sm('sm'), {})
    assert features.find(qname(harness.NS_BIND, 'bind')) is not None, tostring(features)
    stream.close()


def test_enable_before_bind_fails_then_works_after_bind():
    stream, _ = authenticate('alice')
    stream.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    assert_failed(stream.next_element(), 'unexpected-request')
    stream.bind('early')
    enable(stream)
    assert request_ack(stream) == 0
    close_stream(stream)


def test_enable_with_resume_and_enable_twice():
    stream, _ = connect(ALICE, 'twice')
    first_id = enable(stream)
    stream.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    assert_failed(stream.next_element(), 'unexpected-request')
    # the stream goes on with the first enablement
    assert request_ack(stream) == 0
    close_stream(stream)
    # each enablement gets its own id
    stream, _ = connect(ALICE, 'twice')
    assert enable(stream) != first_id
    close_stream(stream)


def test_enable_without_resume_has_no_id_and_cannot_be_resumed():
    stream, full = connect(ALICE, 'plain')
    enable(stream, resume=False)
    assert request_ack(stream) == 0
    kill(stream)
    # the session ends at once instead of hibernating
    other, _ = connect(ALICE, 'plain')
    close_stream(other)
    assert hibernates(full) not in server.log_text()


def test_default_resume_timeout_is_advertised_as_max_300():
    default = harness.Server()
    default.start()
    try:
        default.adduser(ALICE, PASSWORD)
        stream = harness.RawStream(default.c2s_port)
        stream.open()
        stream.login('alice', PASSWORD, 'default')
        stream.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
        enabled = stream.expect(sm('enabled'))
        assert_element(enabled, sm('enabled'),
                       {'id': enabled.get('id'), 'resume': 'true', 'max': '300'})
        # the server shuts down cleanly with that session hibernating
        kill(stream)
        deadline = time.monotonic() + 5
        while 'session alice@localhost/default hibernates' not in default.log_text():
            assert time.monotonic() < deadline, default.log_tail()
            time.sleep(0.02)
    finally:
        default.stop()


def test_sm_nonza_before_enable_is_a_stream_error():
    stream, _ = connect(ALICE, 'early-r')
    stream.send("<r xmlns='%s'/>" % NS_SM)
    stream.expect_stream_error('unsupported-stanza-type')


# -------------------------------------------------------------- raw: acks

def test_a_counts_exactly_the_client_stanzas():
    stream, full = connect(ALICE, 'counter')
    enable(stream)
    assert request_ack(stream) == 0
    # a message, a directed presence and an iq: three stanzas
    send_message(stream, BOB + '/nowhere', 'hello', 'm1')
    stream.send("<presence to='%s'/>" % (BOB + '/nowhere'))
    stream.send("<iq type='get' id='ping1' to='%s'><ping xmlns='%s'/></iq>"
                % (harness.DOMAIN, harness.NS_PING))
    # the iq result is the one stanza the server sends, and it asks for an ack
    result = next_stanza(stream)
    assert_element(result, client('iq'),
                   {'type': 'result', 'id': 'ping1', 'from': harness.DOMAIN, 'to': full})
    assert request_ack(stream) == 3
    assert stream.requests == 1
    # nonzas (<r/>, <a/>) do not count; acking all leaves nothing to ask for
    send_ack(stream, 1)
    assert request_ack(stream) == 3
    assert stream.requests == 1
    stream.send("<presence/>")
    assert request_ack(stream) == 4
    close_stream(stream)


def test_server_requests_acks_and_drops_acked_stanzas():
    alice, alice_full = connect(ALICE, 'acker')
    bob, bob_full = connect(BOB, 'sender')
    enable(alice)
    send_message(bob, alice_full, 'one', 'a1')
    expect_message(alice, bob_full, alice_full, 'one', 'a1')
    send_message(bob, alice_full, 'two', 'a2')
    expect_message(alice, bob_full, alice_full, 'two', 'a2')
    # one <r/> is outstanding at a time: none for the second message
    assert request_ack(alice) == 0
    assert alice.requests == 1
    # acking one of two: the server asks again for the rest
    send_ack(alice, 1)
    assert request_ack(alice) == 0
    assert alice.requests == 2
    # acking everything: nothing more to ask for
    send_ack(alice, 2)
    assert request_ack(alice) == 0
    assert alice.requests == 2
    # the queue holds nothing now: an ack for a third stanza is too much
    send_ack(alice, 3)
    alice.expect_stream_error('undefined-condition')
    close_stream(bob)


def test_ack_for_more_than_sent_is_undefined_condition():
    stream, _ = connect(ALICE, 'liar')
    enable(stream)
    stream.send("<iq type='get' id='ping1' to='%s'><ping xmlns='%s'/></iq>"
                % (harness.DOMAIN, harness.NS_PING))
    assert next_stanza(stream).tag == client('iq')
    assert request_ack(stream) == 1
    assert stream.requests == 1
    send_ack(stream, 2)
    error = stream.expect_stream_error('undefined-condition')
    assert error.findtext(qname(harness.NS_STREAM_ERRORS, 'text')), tostring(error)


def test_ack_with_malformed_h_is_bad_format():
    stream, _ = connect(ALICE, 'garbled')
    enable(stream)
    stream.send("<a xmlns='%s' h='-1'/>" % NS_SM)
    stream.expect_stream_error('bad-format')


# ------------------------------------------------------------ raw: resumption

def test_resume_resends_exactly_the_unacked_then_the_hibernated():
    alice, alice_full = connect(ALICE, 'mobile')
    bob, bob_full = connect(BOB, 'desk')
    previd = enable(alice)
    # alice sends two stanzas of her own, so h on resumption is 2
    for n in (1, 2):
        send_message(alice, bob_full, 'from alice %d' % n, 'f%d' % n)
        expect_message(bob, alice_full, bob_full, 'from alice %d' % n, 'f%d' % n)
    sent = ['m%d' % n for n in range(1, 6)]
    originals = {}
    for body in sent:
        send_message(bob, alice_full, body, 'id-' + body)
    for body in sent:
        originals[body] = tostring(expect_message(alice, bob_full, alice_full, body,
                                                  'id-' + body))
    # alice acks two, handles a third without saying so, and loses coverage
    send_ack(alice, 2)
    assert request_ack(alice) == 2
    assert alice.requests == 2  # one for m1..m5, one for the rest after the ack
    kill(alice)
    wait_for_log(hibernates(alice_full))
    # while she is away, more arrives
    for body in ('h1', 'h2'):
        send_message(bob, alice_full, body, 'id-' + body)

    # resuming with h=3: m4, m5, h1, h2 come again, in order, once
    alice, resumed = resume('alice', previd, 3)
    assert_element(resumed, sm('resumed'), {'h': '2', 'previd': previd})
    for body in ('m4', 'm5'):
        resent = expect_message(alice, bob_full, alice_full, body, 'id-' + body)
        assert tostring(resent) == originals[body], (tostring(resent), originals[body])
    for body in ('h1', 'h2'):
        expect_message(alice, bob_full, alice_full, body, 'id-' + body)
    send_message(bob, alice_full, 'after', 'id-after')
    expect_message(alice, bob_full, alice_full, 'after', 'id-after')
    # the counters carried over: acking all five is exactly right
    send_ack(alice, 8)
    assert request_ack(alice) == 2
    assert alice.requests == 1  # the server asked once after resuming
    # and the resumed session sends as the same full JID
    send_message(alice, bob_full, 'back', 'f3')
    expect_message(bob, alice_full, bob_full, 'back', 'f3')
    assert request_ack(alice) == 3
    close_stream(alice)
    close_stream(bob)


def test_resume_twice_in_a_row_keeps_counting():
    alice, alice_full = connect(ALICE, 'tunnel')
    bob, bob_full = connect(BOB, 'tunnel')
    previd = enable(alice)
    send_message(bob, alice_full, 'one', 'x1')
    expect_message(alice, bob_full, alice_full, 'one', 'x1')
    kill(alice)
    wait_for_log(hibernates(alice_full))
    alice, resumed = resume('alice', previd, 0)
    assert_element(resumed, sm('resumed'), {'h': '0', 'previd': previd})
    assert messages_until(alice, 'one') == ['one']
    send_message(bob, alice_full, 'two', 'x2')
    assert messages_until(alice, 'two') == ['two']
    kill(alice)
    wait_for_log(hibernates(alice_full), count=2)
    alice, resumed = resume('alice', previd, 1)
    assert_element(resumed, sm('resumed'), {'h': '0', 'previd': previd})
    send_message(bob, alice_full, 'three', 'x3')
    assert messages_until(alice, 'three') == ['two', 'three']
    send_ack(alice, 3)
    assert request_ack(alice) == 0
    close_stream(alice)
    close_stream(bob)


def test_resume_refused_for_unknown_id_or_another_account():
    alice, alice_full = connect(ALICE, 'refused')
    previd = enable(alice)
    kill(alice)
    wait_for_log(hibernates(alice_full))

    for user, wrong_id in (('alice', '0' * 32), ('alice', previd + 'x'), ('bob', previd)):
        stream, _ = authenticate(user)
        stream.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, wrong_id))
        assert_failed(stream.next_element(), 'item-not-found')
        # the stream is still usable: bind instead
        assert stream.bind('fallback').startswith(user + '@')
        close_stream(stream)

    # resuming on a stream that already has a session is out of order
    stream, _ = connect(ALICE, 'bound')
    stream.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, previd))
    assert_failed(stream.next_element(), 'unexpected-request')
    close_stream(stream)

    # none of that disturbed the hibernating session
    alice, resumed = resume('alice', previd, 0)
    assert_element(resumed, sm('resumed'), {'h': '0', 'previd': previd})
    assert request_ack(alice) == 0
    close_stream(alice)
    # a cleanly closed stream cannot be resumed
    stream, _ = authenticate('alice')
    stream.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, previd))
    assert_failed(stream.next_element(), 'item-not-found')
    stream.close()


def test_resume_with_h_beyond_what_was_sent_fails_and_keeps_the_session():
    alice, alice_full = connect(ALICE, 'overclaim')
    bob, bob_full = connect(BOB, 'overclaim')
    previd = enable(alice)
    send_message(bob, alice_full, 'only one', 'u1')
    expect_message(alice, bob_full, alice_full, 'only one', 'u1')
    kill(alice)
    wait_for_log(hibernates(alice_full))
    stream, _ = authenticate('alice')
    stream.send("<resume xmlns='%s' previd='%s' h='2'/>" % (NS_SM, previd))
    assert_failed(stream.next_element(), 'unexpected-request')
    stream.close()
    alice, resumed = resume('alice', previd, 0)
    assert_element(resumed, sm('resumed'), {'h': '0', 'previd': previd})
    assert messages_until(alice, 'only one') == ['only one']
    send_ack(alice, 1)
    assert request_ack(alice) == 0
    close_stream(alice)
    close_stream(bob)


def test_resume_while_old_connection_open_conflicts_it_out():
    old, alice_full = connect(ALICE, 'two-links')
    bob, bob_full = connect(BOB, 'watcher')
    previd = enable(old)
    send_message(bob, alice_full, 'pending', 'p1')
    expect_message(old, bob_full, alice_full, 'pending', 'p1')
    assert request_ack(old) == 0

    new, resumed = resume('alice', previd, 0)
    assert_element(resumed, sm('resumed'), {'h': '0', 'previd': previd})
    expect_message(new, bob_full, alice_full, 'pending', 'p1')
    old.expect_stream_error('conflict')
    # the session lives on in the new connection
    send_message(bob, alice_full, 'still here', 'p2')
    expect_message(new, bob_full, alice_full, 'still here', 'p2')
    send_ack(new, 2)
    assert request_ack(new) == 0
    close_stream(new)
    close_stream(bob)


# ------------------------------------------------ raw: the end of a session

def test_unresumed_session_messages_go_offline_and_iq_is_bounced():
    carol, carol_full = connect(CAROL, 'lost')
    bob, bob_full = connect(BOB, 'patient')
    enable(carol)
    send_message(bob, carol_full, 'first', 'o1')
    bob.send("<iq type='get' id='v1' to='%s'><query xmlns='%s'/></iq>"
             % (carol_full, NS_VERSION))
    send_message(bob, carol_full, 'second', 'o2')
    expect_message(carol, bob_full, carol_full, 'first', 'o1')
    assert next_stanza(carol).tag == client('iq')
    expect_message(carol, bob_full, carol_full, 'second', 'o2')
    kill(carol)
    wait_for_log(hibernates(carol_full))
    started = time.monotonic()
    send_message(bob, carol_full, 'third', 'o3')

    # the session ends after resume_timeout: the iq comes back as an error
    error = bob.expect(client('iq'), timeout=RESUME_TIMEOUT + 5)
    waited = time.monotonic() - started
    assert RESUME_TIMEOUT - 0.5 <= waited, 'bounced after %.1fs' % waited
    assert_element(error, client('iq'),
                   {'type': 'error', 'id': 'v1', 'from': carol_full, 'to': bob_full},
                   [qname(NS_VERSION, 'query'), client('error')])
    assert_element(error.find(client('error')), client('error'), {'type': 'cancel'},
                   [qname(harness.NS_STANZA_ERRORS, 'service-unavailable')])

    # the messages wait in offline storage, with a delay stamp, in order, once
    carol, carol_full = connect(CAROL, 'back')
    carol.send('<presence/>')
    for body in ('first', 'second', 'third'):
        msg = carol.expect(client('message'))
        assert msg.findtext(client('body')) == body, tostring(msg)
        assert msg.get('from') == bob_full, tostring(msg)
        delay = msg.find(qname(NS_DELAY, 'delay'))
        assert delay is not None, tostring(msg)
        assert delay.get('from') == harness.DOMAIN and delay.get('stamp', '').endswith('Z'), (
            tostring(msg))
    carol.send("<iq type='get' id='ping1' to='%s'><ping xmlns='%s'/></iq>"
               % (harness.DOMAIN, harness.NS_PING))
    carol.expect(client('iq'))  # nothing else came first
    close_stream(carol)
    close_stream(bob)


def test_clean_close_bounces_unacked_iq_at_once():
    carol, carol_full = connect(CAROL, 'leaving')
    bob, bob_full = connect(BOB, 'asker')
    enable(carol)
    bob.send("<iq type='get' id='v2' to='%s'><query xmlns='%s'/></iq>"
             % (carol_full, NS_VERSION))
    assert next_stanza(carol).tag == client('iq')
    assert request_ack(carol) == 0
    close_stream(carol)  # </stream:stream>: no hibernation
    error = bob.expect(client('iq'))
    assert error.get('type') == 'error' and error.get('id') == 'v2', tostring(error)
    assert error.find('%s/%s' % (client('error'),
                                 qname(harness.NS_STANZA_ERRORS, 'service-unavailable'))
                      ) is not None, tostring(error)
    close_stream(bob)


# ------------------------------------------------------------ raw: volume

def test_two_hundred_messages_with_periodic_acks():
    # max_unacked_stanzas is 50: this only passes if acks drain the queue
    alice, alice_full = connect(ALICE, 'busy')
    bob, bob_full = connect(BOB, 'chatty')
    enable(alice)
    batch = 25
    handled = 0
    for start in range(0, 200, batch):
        bob.send(''.join("<message to='%s' type='chat' id='v%d'><body>%d</body></message>"
                         % (alice_full, n, n) for n in range(start, start + batch)))
        for n in range(start, start + batch):
            msg = next_stanza(alice)
            assert msg.tag == client('message') and msg.findtext(client('body')) == str(n), (
                tostring(msg))
            handled += 1
        send_ack(alice, handled)
        request_ack(alice)  # the server has taken the ack in
    assert handled == 200
    # nothing is left to be acknowledged: an ack for one more is too much
    assert request_ack(alice) == 0
    send_ack(alice, 201)
    alice.expect_stream_error('undefined-condition')
    close_stream(bob)


def test_too_many_unacked_is_resource_constraint_and_nothing_is_lost():
    dave, dave_full = connect(DAVE, 'silent')
    bob, bob_full = connect(BOB, 'flood')
    enable(dave)
    count = MAX_UNACKED + 1
    bob.send(''.join("<message to='%s' type='chat' id='c%d'><body>%d</body></message>"
                     % (dave_full, n, n) for n in range(count)))
    received = []
    while True:
        elem = dave.next_element()
        if elem.tag == qname(harness.NS_STREAM, 'error'):
            break
        if elem.tag == client('message'):
            received.append(elem.findtext(client('body')))
    assert [c.tag for c in elem][0] == qname(harness.NS_STREAM_ERRORS, 'resource-constraint'), (
        tostring(elem))
    dave.expect_closed()
    assert received == [str(n) for n in range(MAX_UNACKED)], received
    # none of the unacknowledged messages is lost: all wait offline
    dave, _ = connect(DAVE, 'again')
    dave.send('<presence/>')
    assert messages_until(dave, str(count - 1)) == [str(n) for n in range(count)]
    close_stream(dave)
    close_stream(bob)


def test_hibernating_session_over_the_limit_ends_and_nothing_is_lost():
    dave, dave_full = connect(DAVE, 'asleep')
    bob, bob_full = connect(BOB, 'insistent')
    previd = enable(dave)
    kill(dave)
    wait_for_log(hibernates(dave_full))
    count = MAX_UNACKED + 5
    bob.send(''.join("<message to='%s' type='chat' id='s%d'><body>%d</body></message>"
                     % (dave_full, n, n) for n in range(count)))
    bob.send("<iq type='get' id='ping1' to='%s'><ping xmlns='%s'/></iq>"
             % (harness.DOMAIN, harness.NS_PING))
    assert next_stanza(bob).get('id') == 'ping1'  # bob got no errors first
    server.assert_running()
    # the session ended at the limit: there is nothing to resume ...
    stream, _ = authenticate('dave')
    stream.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, previd))
    assert_failed(stream.next_element(), 'item-not-found')
    stream.close()
    # ... and every message, the ones past the limit too, waits offline
    dave, _ = connect(DAVE, 'awake')
    dave.send('<presence/>')
    assert messages_until(dave, str(count - 1)) == [str(n) for n in range(count)]
    close_stream(dave)
    close_stream(bob)


# ----------------------------------------------------------------- slixmpp

async def test_slixmpp_client_resumes_after_connection_loss():
    alice = harness.Client(ALICE + '/slix', PASSWORD)
    alice.register_plugin('xep_0198')
    enabled = asyncio.get_event_loop().create_future()
    resumed = asyncio.get_event_loop().create_future()
    alice.add_event_handler('sm_enabled', lambda el: enabled.done() or enabled.set_result(el))
    alice.add_event_handler('session_resumed',
                            lambda el: resumed.done() or resumed.set_result(el))
    await alice.login(server)
    await asyncio.wait_for(enabled, 5)
    sm_id = alice['xep_0198'].sm_id
    assert sm_id, 'slixmpp got no resumption id'
    bob = await harness.login(server, BOB + '/slix', PASSWORD)

    async def next_body(who):
        msg = await asyncio.wait_for(who.messages.get(), 5)
        return msg['body']

    for n in range(3):
        bob.send_message(mto=ALICE + '/slix', mbody='before %d' % n, mtype='chat')
    assert [await next_body(alice) for _ in range(3)] == ['before %d' % n for n in range(3)]
    alice.send_message(mto=BOB + '/slix', mbody='hi bob', mtype='chat')
    assert await next_body(bob) == 'hi bob'

    before = server.log_text().count(hibernates(ALICE + '/slix'))
    alice.transport.abort()
    await asyncio.wait_for(alice.disconnected_event.wait(), 5)
    await asyncio.get_event_loop().run_in_executor(
        None, lambda: wait_for_log(hibernates(ALICE + '/slix'), count=before + 1))
    for n in range(2):
        bob.send_message(mto=ALICE + '/slix', mbody='away %d' % n, mtype='chat')
    await bob.ping()  # routed before alice comes back

    # slixmpp 1.8 empties its own unacked queue when it sends <resume/>, so
    # it logs "Inconsistent sequence numbers" for the server's correct h=1
    # (alice's "hi bob"); that is the client's bookkeeping, not an error.
    alice.connect(('127.0.0.1', server.c2s_port), force_starttls=True)
    await asyncio.wait_for(resumed, 10)
    assert alice['xep_0198'].sm_id == sm_id
    assert str(alice.boundjid) == ALICE + '/slix', alice.boundjid
    # the two that queued while away, nothing seen before comes again
    assert [await next_body(alice) for _ in range(2)] == ['away 0', 'away 1']
    await alice.ping()
    assert alice.messages.empty(), 'duplicate: %s' % alice.messages.get_nowait()
    alice.send_message(mto=BOB + '/slix', mbody='back', mtype='chat')
    assert await next_body(bob) == 'back'
    assert not alice.stream_errors, alice.stream_errors
    await alice.close()
    await bob.close()


if __name__ == '__main__':
    harness.run([test_sm_feature_offered_after_authentication_only,
                 test_enable_before_bind_fails_then_works_after_bind,
                 test_enable_with_resume_and_enable_twice,
                 test_enable_without_resume_has_no_id_and_cannot_be_resumed,
                 test_default_resume_timeout_is_advertised_as_max_300,
                 test_sm_nonza_before_enable_is_a_stream_error,
                 test_a_counts_exactly_the_client_stanzas,
                 test_server_requests_acks_and_drops_acked_stanzas,
                 test_ack_for_more_than_sent_is_undefined_condition,
                 test_ack_with_malformed_h_is_bad_format,
                 test_resume_resends_exactly_the_unacked_then_the_hibernated,
                 test_resume_twice_in_a_row_keeps_counting,
                 test_resume_refused_for_unknown_id_or_another_account,
                 test_resume_with_h_beyond_what_was_sent_fails_and_keeps_the_session,
                 test_resume_while_old_connection_open_conflicts_it_out,
                 test_unresumed_session_messages_go_offline_and_iq_is_bounced,
                 test_clean_close_bounces_unacked_iq_at_once,
                 test_two_hundred_messages_with_periodic_acks,
                 test_too_many_unacked_is_resource_constraint_and_nothing_is_lost,
                 test_hibernating_session_over_the_limit_ends_and_nothing_is_lost,
                 test_slixmpp_client_resumes_after_connection_loss],
                server=server, setup=setup)
