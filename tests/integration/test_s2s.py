#!/usr/bin/env python3
"""Federation between two vestnikd instances on loopback (alpha.test and
beta.test, each with an s2s listener and an s2s_peers entry pointing at the
other): messages, presence subscriptions and iq both ways; bounces with
remote-server-not-found (a name under .invalid) and remote-server-timeout
(a peer that accepts connections and never answers); and a raw s2s stream
that authenticates as one domain by dialback and then sends from another.

The servers use generated self-signed certificates, so each side finds the
other's certificate invalid and authenticates with Server Dialback: the
expected path here. One more pair of servers gets certificates from a test
CA that both trust (s2s.ca_file) and authenticates with SASL EXTERNAL.
"""

import asyncio
import os
import re
import socket
import ssl
import subprocess
import threading
import time

from slixmpp.exceptions import IqError

import harness
from harness import qname

NS_SERVER = 'jabber:server'
NS_DIALBACK = 'jabber:server:dialback'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
ALPHA, BETA = 'alpha.test', 'beta.test'
SPOOF = 'spoof.test'          # authoritative server: a fake in this test
BLACKHOLE = 'blackhole.test'  # accepts TCP, never answers
PASSWORD = 'federation-password'
CONNECT_TIMEOUT = 3


class FederatedServer(harness.Server):
    """A vestnikd serving one domain, with an s2s listener and peers."""

    def __init__(self, domain, parent, certificate=None, ca_file=None, s2s_options=''):
        """certificate: (cert, key) files for the host; ca_file: trusted CAs;
        s2s_options: more keys of the s2s section, as YAML lines."""
        self.domain = domain
        self.s2s_options = s2s_options
        self.certificate = certificate
        self.ca_file = ca_file
        self.s2s_port, self.s2s_tls_port = harness.free_ports(2)
        self.peers = []  # (domain, port) or (domain, port, 'direct')
        super().__init__()
        self.hosts = [domain]
        # under the federation's directory, which goes away after success
        where = os.path.join(parent, domain)
        os.rename(self.dir, where)
        self.dir = where
        self.data_dir = os.path.join(where, 'data')
        self.config_path = os.path.join(where, 'vestnik.yaml')
        self.log_path = os.path.join(where, 'vestnikd.log')
        self.admin_socket = os.path.join(where, 'admin.sock')

    def write_config(self):
        peers = ''.join('  - domain: %s\n    address: 127.0.0.1\n    port: %d\n'
                        '    tls: %s\n' % (peer + ('starttls',))[:3] for peer in self.peers)
        host = self.domain
        if self.certificate:
            host = '{name: %s, certificate: %s, key: %s}' % (self.domain, *self.certificate)
        ca_file = '  ca_file: %s\n' % self.ca_file if self.ca_file else ''
        text = f"""# written by tests/integration/test_s2s.py
hosts:
  - {host}
data_dir: {self.data_dir}
log:
  level: debug
listeners:
  - type: c2s
    address: 127.0.0.1
    port: {self.c2s_port}
  - type: c2s_tls
    address: 127.0.0.1
    port: {self.tls_port}
  - type: s2s
    address: 127.0.0.1
    port: {self.s2s_port}
  - type: s2s_tls
    address: 127.0.0.1
    port: {self.s2s_tls_port}
c2s:
  handshake_timeout: {self.handshake_timeout}
s2s:
  connect_timeout: {CONNECT_TIMEOUT}
  idle_timeout: 60
{self.s2s_options}{ca_file}s2s_peers:
{peers if peers else '  []'}
admin:
  socket: {self.admin_socket}
module_path: {os.path.join(harness.builddir(), 'modules', '.libs')}
modules:
  ping:
  version:
  disco:
  roster:
  presence:
"""
        if not peers:
            text = text.replace('s2s_peers:\n  []\n', '')
        with open(self.config_path, 'w') as f:
            f.write(text)


class Blackhole:
    """A listening socket that accepts and never reads or writes."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]


class Federation:
    """Both servers, started and stopped together for harness.run."""

    def __init__(self):
        self.dir = harness.tempfile.mkdtemp(prefix='vestnik-s2s-')
        self.log_path = os.path.join(self.dir, '*', 'vestnikd.log')
        self.blackhole = Blackhole()
        self.spoof_port = harness.free_ports(1)[0]
        self.alpha = FederatedServer(ALPHA, self.dir)
        self.beta = FederatedServer(BETA, self.dir)
        self.alpha.peers = [(BETA, self.beta.s2s_port), (BLACKHOLE, self.blackhole.port),
                            (SPOOF, self.spoof_port)]
        self.beta.peers = [(ALPHA, self.alpha.s2s_port)]
        self.alpha.write_config()
        self.beta.write_config()

    def start(self):
        self.alpha.start()
        self.beta.start()

    def stop(self):
        try:
            self.alpha.stop()
        finally:
            self.beta.stop()

    def check_log(self):
        self.alpha.check_log()
        self.beta.check_log()

    def kill9(self):
        self.alpha.kill9()
        self.beta.kill9()

    def log_tail(self):
        return '%s:\n%s\n%s:\n%s' % (ALPHA, self.alpha.log_tail(), BETA, self.beta.log_tail())


fed = Federation()
ALICE, BOB = 'alice@' + ALPHA, 'bob@' + BETA


def setup():
    fed.alpha.adduser(ALICE, PASSWORD)
    fed.beta.adduser(BOB, PASSWORD)


async def both_online():
    alice = await harness.login(fed.alpha, ALICE + '/phone', PASSWORD)
    bob = await harness.login(fed.beta, BOB + '/laptop', PASSWORD)
    alice.register_plugin('xep_0092')
    for client in (alice, bob):
        client.send_presence()
    return alice, bob


async def next_message(client, timeout=10):
    while True:
        msg = await asyncio.wait_for(client.messages.get(), timeout)
        if msg['type'] != 'error':
            return msg


async def test_messages_both_ways():
    alice, bob = await both_online()
    alice.send_message(mto=BOB, mbody='hello from alpha')
    msg = await next_message(bob)
    assert msg['body'] == 'hello from alpha', msg
    assert msg['from'].bare == ALICE, msg['from']
    bob.send_message(mto=msg['from'], mbody='hello from beta')
    reply = await next_message(alice)
    assert reply['body'] == 'hello from beta' and reply['from'].full == BOB + '/laptop', reply
    for i in range(20):  # in order, over the established streams
        alice.send_message(mto=BOB, mbody='burst %d' % i)
    for i in range(20):
        assert (await next_message(bob))['body'] == 'burst %d' % i
    await alice.close()
    await bob.close()
    log = fed.alpha.log_text()
    assert re.search(r's2s out beta\.test: authenticated as alpha\.test with dialback', log), (
        fed.alpha.log_tail())
    assert re.search(r's2s in 127\.0\.0\.1: beta\.test authenticated with dialback '
                     r'\(to alpha\.test\)', log), fed.alpha.log_tail()


async def wait_for(predicate, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out waiting for ' + what
        await asyncio.sleep(0.05)


async def test_subscriptions_and_presence_both_ways():
    alice, bob = await both_online()
    for client in (alice, bob):  # interested resources get roster pushes
        await client.get_roster()
    # slixmpp answers subscription requests (auto_authorize) and asks back
    # (auto_subscribe), so one request ends in 'both' on each side.
    bob_online = asyncio.get_event_loop().create_future()
    alice.add_event_handler('presence_available', lambda p: p['from'].bare == BOB and
                            not bob_online.done() and bob_online.set_result(p))
    alice.send_presence_subscription(pto=BOB)
    await wait_for(lambda: alice.client_roster[BOB]['subscription'] == 'both',
                   'alice to see bob as both: %s' % alice.client_roster[BOB]['subscription'])
    await wait_for(lambda: bob.client_roster[ALICE]['subscription'] == 'both',
                   'bob to see alice as both')
    bob.send_presence(pstatus='at work')
    presence = await asyncio.wait_for(bob_online, 10)
    assert presence['from'].full == BOB + '/laptop', presence
    # The server's roster agrees: a new resource reads it.
    tablet = await harness.login(fed.alpha, ALICE + '/tablet', PASSWORD)
    await tablet.get_roster()
    assert tablet.client_roster[BOB]['subscription'] == 'both', tablet.client_roster
    await tablet.close()
    await alice.close()
    await bob.close()


async def test_iq_to_remote_user_and_server():
    alice, bob = await both_online()
    await alice.ping(BOB + '/laptop')
    await bob.ping(ALICE + '/phone')
    version = await alice['xep_0092'].get_version(BETA)
    assert version['software_version']['name'] == 'vestnik', version
    await alice.close()
    await bob.close()


async def expect_iq_error(client, to, condition, timeout):
    iq = client.make_iq_get(ito=to)
    iq.enable('ping')
    start = time.monotonic()
    try:
        reply = await iq.send(timeout=timeout)
    except IqError as e:
        assert e.iq['error']['condition'] == condition, e.iq
        return time.monotonic() - start
    raise AssertionError('expected %s, got %s' % (condition, reply))


async def test_unknown_domain_is_remote_server_not_found():
    alice = await harness.login(fed.alpha, ALICE + '/phone', PASSWORD)
    await expect_iq_error(alice, 'nobody@nowhere.invalid', 'remote-server-not-found', 10)
    await alice.close()
    assert 's2s out nowhere.invalid: failed:' in fed.alpha.log_text(), fed.alpha.log_tail()


async def test_silent_peer_is_remote_server_timeout():
    alice = await harness.login(fed.alpha, ALICE + '/phone', PASSWORD)
    elapsed = await expect_iq_error(alice, 'someone@' + BLACKHOLE, 'remote-server-timeout',
                                    CONNECT_TIMEOUT + 10)
    assert CONNECT_TIMEOUT - 0.5 <= elapsed <= CONNECT_TIMEOUT + 5, elapsed
    await alice.close()


# ---- spoofing: a raw s2s stream with a fake authoritative server

class FakeAuthoritative(threading.Thread):
    """spoof.test's authoritative server: the receiving side of alpha's
    verification stream (STARTTLS with alpha's own self-signed certificate,
    which alpha does not trust either way), answering every <db:verify/>
    with type='valid'."""

    def __init__(self, port, certfile, keyfile, receiving=ALPHA):
        super().__init__(daemon=True)
        self.receiving = receiving
        self.listener = socket.create_server(('127.0.0.1', port))
        self.listener.settimeout(15)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile, keyfile)
        self.verified = []
        self.error = None

    @staticmethod
    def read_until(conn, pattern, buffer):
        while not re.search(pattern, buffer):
            data = conn.recv(65536)
            if not data:
                raise EOFError('closed; received %r' % buffer)
            buffer += data
        match = re.search(pattern, buffer)
        return match, buffer[match.end():]

    def run(self):
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(15)
            header = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                      b"xmlns:stream='http://etherx.jabber.org/streams' "
                      b"xmlns:db='jabber:server:dialback' from='spoof.test' id='%s' "
                      b"version='1.0'>")
            _, rest = self.read_until(conn, rb'<stream:stream[^>]*>', b'')
            conn.sendall(header % b'fake1' + b"<stream:features><starttls "
                         b"xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                         b"</stream:features>")
            _, rest = self.read_until(conn, rb'<starttls[^>]*/>', rest)
            conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            conn = self.context.wrap_socket(conn, server_side=True)
            _, rest = self.read_until(conn, rb'<stream:stream[^>]*>', b'')
            conn.sendall(header % b'fake2' + b"<stream:features><dialback "
                         b"xmlns='urn:xmpp:features:dialback'/></stream:features>")
            self.conn = conn  # kept open until the test ends
            while True:
                match, rest = self.read_until(
                    conn, rb"<db:verify[^>]*id='([^']+)'[^>]*>([^<]*)</db:verify>", rest)
                stream_id, key = match.group(1).decode(), match.group(2).decode()
                self.verified.append((stream_id, key))
                conn.sendall(("<db:verify from='%s' to='%s' id='%s' type='valid'/>"
                              % (SPOOF, self.receiving, stream_id)).encode())
        except Exception as e:  # reported by the test
            if not self.verified:
                self.error = e


def s2s_open(stream, sender, to=ALPHA):
    stream._restart_parser()
    stream.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                "xmlns:stream='%s' xmlns:db='%s' from='%s' to='%s' version='1.0'>"
                % (harness.NS_STREAM, NS_DIALBACK, sender, to))
    return stream.features()


def s2s_secure(sender, server=None):
    """A raw s2s stream to alpha (or server) after STARTTLS; returns
    (stream, features)."""
    server = server or fed.alpha
    stream = harness.RawStream(server.s2s_port, timeout=10)
    features = s2s_open(stream, sender, server.domain)
    assert features.find(qname(harness.NS_TLS, 'starttls')) is not None, harness.tostring(features)
    stream.send("<starttls xmlns='%s'/>" % harness.NS_TLS)
    stream.expect(qname(harness.NS_TLS, 'proceed'))
    stream.sock = harness.insecure_tls_context().wrap_socket(stream.sock,
                                                             server_hostname=server.domain)
    return stream, s2s_open(stream, sender, server.domain)


def test_stanzas_before_authentication_are_refused():
    stream, features = s2s_secure(BETA)
    assert features.find(qname('urn:xmpp:features:dialback', 'dialback')) is not None, (
        harness.tostring(features))
    stream.send("<message from='bob@%s' to='%s'><body>sneaky</body></message>" % (BETA, ALICE))
    stream.expect_stream_error('invalid-from')


def test_claiming_the_receiving_servers_own_domain_is_invalid_from():
    stream, _ = s2s_secure(BETA)
    stream.send("<db:result from='%s' to='%s'>any-key</db:result>" % (ALPHA, ALPHA))
    stream.expect_stream_error('invalid-from')


def test_spoofed_from_is_invalid_from():
    certs = os.path.join(fed.alpha.data_dir, 'certs')
    fake = FakeAuthoritative(fed.spoof_port, os.path.join(certs, ALPHA + '.crt'),
                             os.path.join(certs, ALPHA + '.key'))
    fake.start()

    async def scenario():
        alice = await harness.login(fed.alpha, ALICE + '/phone', PASSWORD)
        alice.send_presence()
        await alice.ping(ALPHA)

        def raw():
            stream, _ = s2s_secure(SPOOF)
            stream.send("<db:result from='%s' to='%s'>some-key</db:result>" % (SPOOF, ALPHA))
            result = stream.expect(qname(NS_DIALBACK, 'result'))
            assert result.get('type') == 'valid', harness.tostring(result)
            assert fake.error is None, fake.error
            assert fake.verified and fake.verified[0][1] == 'some-key', fake.verified
            # authenticated as spoof.test: its stanzas are delivered ...
            stream.send("<message from='eve@%s' to='%s' type='chat'><body>legit</body>"
                        "</message>" % (SPOOF, ALICE))
            return stream
        stream = await asyncio.get_event_loop().run_in_executor(None, raw)
        msg = await next_message(alice)
        assert msg['body'] == 'legit' and msg['from'].bare == 'eve@' + SPOOF, msg

        # ... but not stanzas claiming beta.test, which it never proved.
        def spoof():
            stream.send("<message from='bob@%s' to='%s' type='chat'><body>forged</body>"
                        "</message>" % (BETA, ALICE))
            stream.expect_stream_error('invalid-from')
        await asyncio.get_event_loop().run_in_executor(None, spoof)
        await asyncio.sleep(0.3)
        assert alice.messages.empty(), alice.messages.get_nowait()
        await alice.close()
    asyncio.run(scenario())
    assert 'stanza from beta.test, which is not authenticated' in fed.alpha.log_text()


def test_incoming_streams_bidi_capped_per_domain_and_closed_when_idle():
    """Bidirectional streams (XEP-0288): offered, and a peer that asks gets
    our stanzas back over its own stream. s2s.max_streams_per_domain
    authenticated incoming streams from one domain, no more
    (policy-violation); an incoming stream silent for
    s2s.incoming_idle_timeout is closed with connection-timeout, one kept
    alive with whitespace is not."""
    eta = 'eta.test'
    spoof_port = harness.free_ports(1)[0]
    e = FederatedServer(eta, fed.dir, s2s_options='  incoming_idle_timeout: 3\n'
                        '  max_streams_per_domain: 2\n')
    e.peers = [(SPOOF, spoof_port)]
    e.write_config()
    e.start()
    try:
        certs = os.path.join(e.data_dir, 'certs')
        fake = FakeAuthoritative(spoof_port, os.path.join(certs, eta + '.crt'),
                                 os.path.join(certs, eta + '.key'), receiving=eta)
        fake.start()
        e.adduser('frank@' + eta, PASSWORD)
        streams = []
        for i in range(3):
            stream, features = s2s_secure(SPOOF, e)
            assert features.find(qname('urn:xmpp:features:bidi', 'bidi')) is not None, (
                harness.tostring(features))
            if i == 0:
                stream.send("<bidi xmlns='urn:xmpp:bidi'/>")
            stream.send("<db:result from='%s' to='%s'>key</db:result>" % (SPOOF, eta))
            streams.append(stream)
        for stream in streams[:2]:
            result = stream.expect(qname(NS_DIALBACK, 'result'))
            assert result.get('type') == 'valid', harness.tostring(result)
        streams[2].expect_stream_error('policy-violation')
        assert fake.error is None, fake.error
        assert 'refused: spoof.test already has 2 incoming streams' in e.log_text(), e.log_tail()

        async def send():
            frank = await harness.login(e, 'frank@%s/desk' % eta, PASSWORD)
            frank.send_message(mto='eve@%s/x' % SPOOF, mbody='back over your stream')
            await frank.ping(eta)
            await frank.close()
        asyncio.run(send())
        message = streams[0].expect(qname(NS_SERVER, 'message'))
        assert message.get('from') == 'frank@%s/desk' % eta, harness.tostring(message)
        assert message.findtext(qname(NS_SERVER, 'body')) == 'back over your stream'

        started = time.monotonic()
        for _ in range(5):  # a whitespace keepalive every second keeps the first one
            time.sleep(1)
            streams[0].send(' ')
        streams[1].expect_stream_error('connection-timeout', timeout=10)
        assert 2.5 <= time.monotonic() - started <= 8, time.monotonic() - started
        streams[0].send("<message from='eve@%s' to='%s'/>" % (SPOOF, eta))
        try:
            element = streams[0].next_element(timeout=1)
            raise AssertionError('unexpected %s' % harness.tostring(element))
        except TimeoutError:
            pass  # still open, nothing to say
        streams[0].expect_stream_error('connection-timeout', timeout=10)
        e.stop()
    finally:
        e.kill9()


def make_test_ca(where, domains, san='DNS:%s'):
    """A CA and a certificate per domain (serverAuth and clientAuth) whose
    subjectAltName is san with the domain in it."""
    def openssl(*args):
        subprocess.run(['openssl'] + list(args), cwd=where, check=True, capture_output=True)
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    openssl('req', '-x509', *ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
            '-subj', '/CN=vestnik test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign')
    files = {}
    for domain in domains:
        with open(os.path.join(where, domain + '.ext'), 'w') as f:
            f.write('subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' % (
                san % domain))
        openssl('req', *ec, '-keyout', domain + '.key', '-out', domain + '.csr',
                '-subj', '/CN=' + domain)
        openssl('x509', '-req', '-in', domain + '.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
                '-CAcreateserial', '-days', '2', '-extfile', domain + '.ext',
                '-out', domain + '.crt')
        files[domain] = (os.path.join(where, domain + '.crt'),
                         os.path.join(where, domain + '.key'))
    return os.path.join(where, 'ca.crt'), files


def test_trusted_certificates_authenticate_with_external_starttls_and_direct_tls():
    external_both_ways('gamma.test', 'delta.test', 'ca', 'DNS:%s')


def test_srv_id_certificates_authenticate_with_external():
    """Certificates naming the domain only by SRV-ID (RFC 6120 §13.7.1.2.1:
    SRVName _xmpp-server.<domain>, RFC 4985), and a DNS-ID of another
    name, which does not count."""
    external_both_ways('epsilon.test', 'zeta.test', 'ca-srv',
                       'otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.%s,DNS:other.test')


def external_both_ways(gamma, delta, ca_dir, san):
    where = os.path.join(fed.dir, ca_dir)
    os.mkdir(where)
    ca, certs = make_test_ca(where, [gamma, delta], san)
    g = FederatedServer(gamma, fed.dir, certs[gamma], ca)
    d = FederatedServer(delta, fed.dir, certs[delta], ca)
    # gamma reaches delta with STARTTLS, delta reaches gamma in direct TLS
    g.peers, d.peers = [(delta, d.s2s_port)], [(gamma, g.s2s_tls_port, 'direct')]
    g.write_config()
    d.write_config()
    g.start()
    try:
        d.start()
        g.adduser('carol@' + gamma, PASSWORD)
        d.adduser('dave@' + delta, PASSWORD)

        async def scenario():
            carol = await harness.login(g, 'carol@%s/desk' % gamma, PASSWORD)
            dave = await harness.login(d, 'dave@%s/desk' % delta, PASSWORD)
            carol.send_message(mto='dave@%s/desk' % delta, mbody='over EXTERNAL')
            assert (await next_message(dave))['body'] == 'over EXTERNAL'
            dave.send_message(mto='carol@%s/desk' % gamma, mbody='and back')
            assert (await next_message(carol))['body'] == 'and back'
            await carol.close()
            await dave.close()
        asyncio.run(scenario())
        for server, local, remote in ((g, gamma, delta), (d, delta, gamma)):
            log = server.log_text()
            assert 's2s out %s: authenticated as %s with EXTERNAL' % (remote, local) in log, (
                server.log_tail())
            assert 's2s in 127.0.0.1 %s: authenticated with EXTERNAL' % remote in log, (
                server.log_tail())
            assert 'with dialback' not in log, server.log_tail()
        assert re.search(r's2s out %s: connecting to 127\.0\.0\.1 port %d '
                         r'\(direct TLS\)' % (re.escape(gamma), g.s2s_tls_port),
                         d.log_text()), d.log_tail()
        assert 's2s in 127.0.0.1: incoming connection (direct TLS)' in g.log_text()
        d.stop()
    finally:
        d.kill9()
        g.stop()


def test_unknown_host_in_header_is_host_unknown():
    stream = harness.RawStream(fed.alpha.s2s_port, timeout=5)
    stream._restart_parser()
    stream.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                "xmlns:stream='%s' from='%s' to='elsewhere.test' version='1.0'>"
                % (harness.NS_STREAM, BETA))
    stream.expect_stream_error('host-unknown')


if __name__ == '__main__':
    harness.run([test_messages_both_ways,
                 test_subscriptions_and_presence_both_ways,
                 test_iq_to_remote_user_and_server,
                 test_unknown_domain_is_remote_server_not_found,
                 test_silent_peer_is_remote_server_timeout,
                 test_stanzas_before_authentication_are_refused,
                 test_claiming_the_receiving_servers_own_domain_is_invalid_from,
                 test_spoofed_from_is_invalid_from,
                 test_unknown_host_in_header_is_host_unknown,
                 test_trusted_certificates_authenticate_with_external_starttls_and_direct_tls,
                 test_srv_id_certificates_authenticate_with_external,
                 test_incoming_streams_bidi_capped_per_domain_and_closed_when_idle],
                server=fed, setup=setup, timeout=30)
