#!/usr/bin/env python3
"""test_push_extdisco.py - Push Notifications (XEP-0357) and External Service Discovery (XEP-0215).

The app server of the push tests is a second local account: XEP-0357 lets
the app server be any JID, so its full JID is registered and the test reads
the pubsub publish it receives off a raw stream, answering it as an app
server would. Pushes are checked for a stream-management session whose
connection dropped (it hibernates), for an account that logged out (its
messages go to offline storage), with coalescing under min_interval, after
<disable/>, and after the app server answered with an error.

External service discovery is checked against the TURN REST scheme: the
test computes HMAC-SHA1 of the username itself.
"""

import base64
import datetime
import hashlib
import hmac
import time

import harness
from harness import qname, tostring

ALICE = 'alice@' + harness.DOMAIN
BOB = 'bob@' + harness.DOMAIN
CAROL = 'carol@' + harness.DOMAIN
DAVE = 'dave@' + harness.DOMAIN
APP = 'pushsrv@' + harness.DOMAIN
PASSWORD = 'secret-password'
NS_SM = 'urn:xmpp:sm:3'
NS_PUSH = 'urn:xmpp:push:0'
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_DATA = 'jabber:x:data'
NS_EXTDISCO = 'urn:xmpp:extdisco:2'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
MESSAGE = qname(harness.NS_CLIENT, 'message')
IQ = qname(harness.NS_CLIENT, 'iq')
MIN_INTERVAL = 1
QUIET = MIN_INTERVAL + 0.5  # long enough for a coalesced publish to show up
TURN_SECRET = 'turn-shared-secret'
TURN_TTL = 600


class Server(harness.Server):
    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  offline:\n'
                    '  push:\n'
                    '    include_body: true\n'
                    '    min_interval: %d\n'
                    '  extdisco:\n'
                    '    stun_host: stun.example.net\n'
                    '    turn_host: turn.example.net\n'
                    '    turn_port: 3479\n'
                    '    turn_secret: %s\n'
                    '    turn_ttl: %d\n'
                    '    turns_port: 5350\n'
                    '    transports: udp,tcp\n' % (MIN_INTERVAL, TURN_SECRET, TURN_TTL))


server = Server()


def setup():
    for jid in (ALICE, BOB, CAROL, DAVE, APP):
        server.adduser(jid, PASSWORD)


class Stream(harness.RawStream):
    """A bound raw stream; stream management's <r/> requests are skipped."""

    serial = 0

    def __init__(self, jid, resource):
        super().__init__(server.c2s_port)
        self.open()
        self.jid = self.login(jid.split('@')[0], PASSWORD, resource)

    def next_element(self, timeout=None):
        while True:
            elem = super().next_element(timeout)
            if elem.tag != qname(NS_SM, 'r'):
                return elem

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
        reply = self.iq("<ping xmlns='%s'/>" % harness.NS_PING, 'get', harness.DOMAIN)
        assert reply.get('type') == 'result', tostring(reply)

    def expect_nothing(self, wait):
        try:
            elem = self.next_element(timeout=wait)
        except TimeoutError:
            return
        raise AssertionError('unexpected %s' % tostring(elem))

    def message(self, to, body):
        self.send("<message to='%s' type='chat'><body>%s</body></message>" % (to, body))

    def push_enable(self, node, options=''):
        return self.iq("<enable xmlns='%s' jid='%s' node='%s'>%s</enable>"
                       % (NS_PUSH, app_jid(), node, options))

    def push_disable(self, node=None):
        node_attr = " node='%s'" % node if node else ''
        reply = self.iq("<disable xmlns='%s' jid='%s'%s/>" % (NS_PUSH, app_jid(), node_attr))
        assert reply.get('type') == 'result', tostring(reply)

    def logout(self):
        self.send('</stream:stream>')
        self.expect_closed()


def app_jid():
    return APP + '/app'


def server_features(stream):
    reply = stream.iq("<query xmlns='%s'/>" % NS_DISCO_INFO, 'get', harness.DOMAIN)
    return [f.get('var') for f in reply.iter(qname(NS_DISCO_INFO, 'feature'))]


def form_fields(form):
    return {field.get('var'): field.findtext(qname(NS_DATA, 'value'))
            for field in form.iter(qname(NS_DATA, 'field'))}


def expect_publish(app, account, node):
    """The next publish the app server gets: checked, answered; its summary."""
    iq = app.expect(IQ, timeout=5)
    assert iq.get('type') == 'set' and iq.get('from') == account, tostring(iq)
    assert iq.get('to') == app_jid(), tostring(iq)
    publish = iq.find('%s/%s' % (qname(NS_PUBSUB, 'pubsub'), qname(NS_PUBSUB, 'publish')))
    assert publish is not None and publish.get('node') == node, tostring(iq)
    form = publish.find('%s/%s/%s' % (qname(NS_PUBSUB, 'item'), qname(NS_PUSH, 'notification'),
                                      qname(NS_DATA, 'x')))
    assert form is not None and form.get('type') == 'submit', tostring(iq)
    fields = form_fields(form)
    assert fields.get('FORM_TYPE') == 'urn:xmpp:push:summary', tostring(iq)
    options = iq.find('%s/%s/%s' % (qname(NS_PUBSUB, 'pubsub'),
                                    qname(NS_PUBSUB, 'publish-options'), qname(NS_DATA, 'x')))
    fields['options'] = form_fields(options) if options is not None else None
    fields['id'] = iq.get('id')
    return fields


def answer(app, fields, account, error=None):
    if error is None:
        app.send("<iq type='result' id='%s' to='%s'/>" % (fields['id'], account))
    else:
        app.send("<iq type='error' id='%s' to='%s'><error type='cancel'><%s xmlns='%s'/>"
                 "</error></iq>" % (fields['id'], account, error, harness.NS_STANZA_ERRORS))
    app.barrier()


def wait_for_log(text, timeout=5):
    deadline = time.monotonic() + timeout
    while text not in server.log_text():
        assert time.monotonic() < deadline, 'no %r in the log' % text
        time.sleep(0.05)


# --------------------------------------------------------------------- push

def test_push_advertised_and_only_for_oneself():
    bob = Stream(BOB, 'check')
    assert NS_PUSH in server_features(bob)
    reply = bob.iq("<enable xmlns='%s' jid='%s' node='n'/>" % (NS_PUSH, app_jid()), to=ALICE)
    assert reply.get('type') == 'error', tostring(reply)
    assert reply.find('*/' + qname(harness.NS_STANZA_ERRORS, 'forbidden')) is not None, (
        tostring(reply))
    reply = bob.iq("<enable xmlns='%s' jid='%s'/>" % (NS_PUSH, app_jid()))
    assert reply.find('*/' + qname(harness.NS_STANZA_ERRORS, 'bad-request')) is not None, (
        tostring(reply))
    bob.close()


def test_push_for_hibernating_session_with_coalescing():
    app = Stream(APP, 'app')
    alice = Stream(ALICE, 'phone')
    alice.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    enabled = alice.expect(qname(NS_SM, 'enabled'))
    assert enabled.get('resume') == 'true', tostring(enabled)
    alice.send('<presence/>')
    options = ("<x xmlns='%s' type='submit'><field var='FORM_TYPE'>"
               "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
               "<field var='secret'><value>app-secret</value></field></x>" % NS_DATA)
    reply = alice.push_enable('alice-node', options)
    assert reply.get('type') == 'result', tostring(reply)

    bob = Stream(BOB, 'desk')
    bob.message(alice.jid, 'while online')
    assert alice.expect(MESSAGE) is not None
    bob.barrier()
    app.expect_nothing(QUIET)  # a session with a connection sees it itself

    alice.sock.close()  # the connection drops without </stream:stream>
    wait_for_log('session %s hibernates' % alice.jid)

    bob.message(ALICE, 'one')
    fields = expect_publish(app, ALICE, 'alice-node')
    assert fields['message-count'] == '1', fields
    assert fields['last-message-sender'] == bob.jid, fields
    assert fields['last-message-body'] == 'one', fields
    assert fields['options'] == {
        'FORM_TYPE': 'http://jabber.org/protocol/pubsub#publish-options',
        'secret': 'app-secret'}, fields
    answer(app, fields, ALICE)

    # within min_interval: one publish at its end, with the count then
    for body in ('two', 'three', 'four'):
        bob.message(alice.jid, body)  # to the full JID of the hibernating session
    bob.barrier()
    started = time.monotonic()
    fields = expect_publish(app, ALICE, 'alice-node')
    assert time.monotonic() - started > MIN_INTERVAL / 4, 'not rate-limited'
    assert fields['message-count'] == '4', fields
    assert fields['last-message-body'] == 'four', fields
    answer(app, fields, ALICE)
    app.expect_nothing(QUIET)
    for stream in (app, bob):
        stream.close()


def test_push_for_logged_out_account_then_disable():
    app = Stream(APP, 'app')
    bob = Stream(BOB, 'desk2')
    carol = Stream(CAROL, 'tablet')
    assert carol.push_enable('carol-node').get('type') == 'result'
    carol.logout()

    bob.message(CAROL, 'are you there?')
    fields = expect_publish(app, CAROL, 'carol-node')
    assert fields['message-count'] == '1', fields
    assert fields['last-message-sender'] == bob.jid, fields
    assert fields['last-message-body'] == 'are you there?', fields
    assert fields['options'] is None, fields
    answer(app, fields, CAROL)

    carol = Stream(CAROL, 'tablet')
    carol.push_disable()  # every node of that app server
    carol.logout()
    time.sleep(MIN_INTERVAL)
    bob.message(CAROL, 'nobody is told')
    bob.barrier()
    app.expect_nothing(QUIET)
    for stream in (app, bob):
        stream.close()


def test_app_server_error_disables_registration():
    app = Stream(APP, 'app')
    bob = Stream(BOB, 'desk3')
    dave = Stream(DAVE, 'watch')
    assert dave.push_enable('dave-node').get('type') == 'result'
    dave.logout()

    bob.message(DAVE, 'first')
    fields = expect_publish(app, DAVE, 'dave-node')
    answer(app, fields, DAVE, error='item-not-found')
    time.sleep(MIN_INTERVAL)
    bob.message(DAVE, 'second')
    bob.barrier()
    app.expect_nothing(QUIET)
    for stream in (app, bob):
        stream.close()


# ----------------------------------------------------------------- extdisco

def services_of(reply, element='services'):
    assert reply.get('type') == 'result', tostring(reply)
    container = reply.find(qname(NS_EXTDISCO, element))
    assert container is not None, tostring(reply)
    return [dict(s.attrib) for s in container.findall(qname(NS_EXTDISCO, 'service'))]


def check_turn(service, user, requested_at, port='3479'):
    username = service['username']
    expiry, who = username.split(':', 1)
    assert who == user, service
    assert abs(int(expiry) - (requested_at + TURN_TTL)) <= 5, (service, requested_at)
    expected = base64.b64encode(hmac.new(TURN_SECRET.encode(), username.encode(),
                                         hashlib.sha1).digest()).decode()
    assert service['password'] == expected, (service, expected)
    expires = datetime.datetime.fromtimestamp(int(expiry), datetime.timezone.utc)
    assert service['expires'] == expires.strftime('%Y-%m-%dT%H:%M:%SZ'), service
    assert service['restricted'] == '1', service
    assert service['host'] == 'turn.example.net' and service['port'] == port, service


def test_extdisco_services_with_turn_rest_credentials():
    alice = Stream(ALICE, 'call')
    assert NS_EXTDISCO in server_features(alice)
    requested_at = int(time.time())
    services = services_of(alice.iq("<services xmlns='%s'/>" % NS_EXTDISCO, 'get',
                                    harness.DOMAIN))
    stun = [s for s in services if s['type'] == 'stun']
    turn = [s for s in services if s['type'] == 'turn']
    turns = [s for s in services if s['type'] == 'turns']
    assert len(services) == 5, services
    assert stun == [{'type': 'stun', 'host': 'stun.example.net', 'port': '3478',
                     'transport': t} for t in ('udp', 'tcp')], stun
    assert [s['transport'] for s in turn] == ['udp', 'tcp'], turn
    for service in turn:
        check_turn(service, ALICE, requested_at)
    # TURN over TLS: once, over tcp (Conversations ignores an entry without
    # a transport).
    assert [s['transport'] for s in turns] == ['tcp'], turns
    check_turn(turns[0], ALICE, requested_at, port='5350')

    only_turn = services_of(alice.iq("<services xmlns='%s' type='turn'/>" % NS_EXTDISCO, 'get',
                                     harness.DOMAIN))
    assert [s['type'] for s in only_turn] == ['turn', 'turn'], only_turn

    creds = services_of(alice.iq("<credentials xmlns='%s'><service type='turn'"
                                 " host='turn.example.net'/></credentials>" % NS_EXTDISCO,
                                 'get', harness.DOMAIN), 'credentials')
    assert len(creds) == 2 and all(s['type'] == 'turn' for s in creds), creds
    for service in creds:
        check_turn(service, ALICE, requested_at)

    reply = alice.iq("<credentials xmlns='%s'><service type='turn' host='elsewhere.example'/>"
                     "</credentials>" % NS_EXTDISCO, 'get', harness.DOMAIN)
    assert reply.get('type') == 'error', tostring(reply)
    assert reply.find('*/' + qname(harness.NS_STANZA_ERRORS, 'item-not-found')) is not None, (
        tostring(reply))
    alice.close()


if __name__ == '__main__':
    harness.run([
        test_push_advertised_and_only_for_oneself,
        test_push_for_hibernating_session_with_coalescing,
        test_push_for_logged_out_account_then_disable,
        test_app_server_error_disables_registration,
        test_extdisco_services_with_turn_rest_credentials,
    ], server=server, setup=setup)
