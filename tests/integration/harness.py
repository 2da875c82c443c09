"""harness.py - what every integration test needs: a real vestnikd, clients, TAP.

Server starts the built vestnikd on loopback with a temporary config, store
and log, and watches the log for sanitizer reports. Client is slixmpp set up
for the test server (self-signed certificate accepted, a chosen SASL
mechanism). RawStream is a plain socket, upgraded with ssl after <proceed/>,
for byte-level tests that must see exactly which elements arrive. run() is
a small TAP producer: each test is a function, run with a timeout, and any
exception is a "not ok" with its traceback.

Only the standard library and slixmpp are used.
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import logging
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError

NS_STREAM = 'http://etherx.jabber.org/streams'
NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_STANZA_ERRORS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'
NS_CLIENT = 'jabber:client'
NS_PING = 'urn:xmpp:ping'

DOMAIN = 'localhost'
MAX_STANZA_SIZE = 262144
SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer')


def builddir():
    return os.environ.get('VN_BUILDDIR') or os.path.abspath(
        os.path.join(os.path.dirname(__file__), '..', '..'))


def srcdir():
    return os.environ.get('VN_SRCDIR') or os.path.abspath(
        os.path.join(os.path.dirname(__file__), '..', '..'))


def qname(ns, name):
    return '{%s}%s' % (ns, name)


def free_ports(count):
    """Ports the kernel just handed out for 127.0.0.1, all distinct."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(('127.0.0.1', 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def insecure_tls_context():
    """Tests only: the server's certificate is self-signed."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --------------------------------------------------------------- the server

class Server:
    """One vestnikd with its own temporary config, store and log."""

    def __init__(self, extra_hosts=(), handshake_timeout=2, c2s_options=None,
                 limits_options=None):
        """c2s_options, limits_options: more keys for the config's c2s: and
        limits: sections, by name."""
        self.dir = tempfile.mkdtemp(prefix='vestnikd-')
        self.data_dir = os.path.join(self.dir, 'data')
        self.config_path = os.path.join(self.dir, 'vestnik.yaml')
        self.log_path = os.path.join(self.dir, 'vestnikd.log')
        self.admin_socket = os.path.join(self.dir, 'admin.sock')
        self.hosts = [DOMAIN] + list(extra_hosts)
        self.handshake_timeout = handshake_timeout
        self.c2s_options = dict(c2s_options or {})
        self.limits_options = dict(limits_options or {})
        self.c2s_port, self.tls_port = free_ports(2)
        self.daemon = os.path.join(builddir(), 'src', 'vestnikd')
        self.ctl = os.path.join(builddir(), 'src', 'vestnikctl')
        self.proc = None
        self.sanitizer_report_seen = False
        os.mkdir(self.data_dir)
        self.write_config()

    def write_config(self):
        """The config schema is the one documented in conf/vestnik.yaml."""
        hosts = ''.join('  - %s\n' % host for host in self.hosts)
        c2s_options = ''.join('  %s: %s\n' % item for item in self.c2s_options.items())
        limits_options = ''.join('  %s: %s\n' % item for item in self.limits_options.items())
        text = f"""# written by tests/integration/harness.py
hosts:
{hosts}data_dir: {self.data_dir}
log:
  level: debug
listeners:
  - type: c2s
    address: 127.0.0.1
    port: {self.c2s_port}
  - type: c2s_tls
    address: 127.0.0.1
    port: {self.tls_port}
c2s:
  handshake_timeout: {self.handshake_timeout}
{c2s_options}limits:
  max_stanza_size: {MAX_STANZA_SIZE}
{limits_options}admin:
  socket: {self.admin_socket}
module_path: {os.path.join(builddir(), 'modules', '.libs')}
locale_dir: {os.path.join(builddir(), 'locale')}
modules:
  ping:
  version:
  disco:
"""
        with open(self.config_path, 'w') as f:
            f.write(text)

    def log_text(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def log_tail(self, lines=60):
        return '\n'.join(self.log_text().splitlines()[-lines:])

    def start(self, timeout=20):
        assert self.proc is None, 'server already running'
        env = dict(os.environ)
        env.setdefault('ASAN_OPTIONS', 'detect_leaks=1')
        env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1')
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen([self.daemon, '-c', self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        pending = [self.c2s_port, self.tls_port]
        while pending:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise AssertionError('vestnikd exited with %d during start-up; log:\n%s'
                                     % (code, self.log_tail()))
            if time.monotonic() > deadline:
                self.kill9()
                raise AssertionError('vestnikd did not listen within %ds; log:\n%s'
                                     % (timeout, self.log_tail()))
            try:
                socket.create_connection(('127.0.0.1', pending[0]), timeout=1).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.05)

    def stop(self, timeout=10):
        """SIGTERM; the daemon must exit 0 in time with a clean log."""
        assert self.proc is not None, 'server not running'
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError('vestnikd did not exit within %ds of SIGTERM; log:\n%s'
                                 % (timeout, self.log_tail()))
        self.proc = None
        self.check_log()
        assert code == 0, 'vestnikd exited with %d after SIGTERM; log:\n%s' % (
            code, self.log_tail())

    def kill9(self):
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def reload(self):
        """SIGHUP: re-read config and certificates, keep sessions."""
        self.proc.send_signal(signal.SIGHUP)

    def check_log(self):
        """Sanitizer reports in the log fail the test that sees them first."""
        if self.sanitizer_report_seen:
            return
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            where = text.find(marker)
            if where >= 0:
                self.sanitizer_report_seen = True
                raise AssertionError('sanitizer report in the vestnikd log:\n'
                                     + text[max(0, where - 200):where + 4000])

    def assert_running(self):
        assert self.proc is not None and self.proc.poll() is None, (
            'vestnikd died; log:\n' + self.log_tail())

    def adduser(self, jid, password):
        result = subprocess.run([self.ctl, '-c', self.config_path, 'adduser', jid, password],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, 'vestnikctl adduser %s failed (%d): %s%s' % (
            jid, result.returncode, result.stdout, result.stderr)


# ------------------------------------------------------------ slixmpp client

_open_clients = []


class Client(slixmpp.ClientXMPP):
    """A slixmpp client for the test server; login() connects and binds."""

    def __init__(self, jid, password, mechanism=None):
        """mechanism None: slixmpp as shipped picks its SASL mechanism."""
        super().__init__(jid, password, sasl_mech=mechanism)
        self.ssl_context = insecure_tls_context()
        for plugin in ('xep_0030', 'xep_0092', 'xep_0199'):
            self.register_plugin(plugin)
        if mechanism is not None:
            self._without_channel_binding()
        self.messages = asyncio.Queue()
        self.stream_errors = []
        self.session_started = asyncio.get_event_loop().create_future()
        self.disconnected_event = asyncio.Event()
        self.add_event_handler('session_start', self._on_session_start)
        self.add_event_handler('failed_all_auth', self._on_failure('no SASL mechanism worked'))
        self.add_event_handler('connection_failed', self._on_failure('connection failed'))
        self.add_event_handler('stream_error', self.stream_errors.append)
        self.add_event_handler('disconnected', self._on_disconnected)
        self.add_event_handler('message', self.messages.put_nowait)
        _open_clients.append(self)

    def _without_channel_binding(self):
        # slixmpp 1.8 puts tls-unique data into every SCRAM exchange and,
        # for a plain SCRAM mechanism, sends the gs2 flag "y" ("I could
        # bind but you did not offer it"), which a server offering -PLUS
        # must refuse (RFC 5802 §6) unless the client tried -PLUS first on
        # that stream. A test that forces one mechanism therefore makes the
        # client behave as one without channel binding ("n").
        mechanisms = self['feature_mechanisms']
        default_credentials = mechanisms.sasl_callback

        def credentials(required, optional):
            values = default_credentials(required, optional)
            if 'channel_binding' in values:
                values['channel_binding'] = b''
            return values
        mechanisms.sasl_callback = credentials

    def _on_session_start(self, _event):
        if not self.session_started.done():
            self.session_started.set_result(True)

    def _on_failure(self, what):
        def handler(event):
            if not self.session_started.done():
                self.session_started.set_exception(
                    AssertionError('%s: %s for %s' % (what, event, self.boundjid)))
        return handler

    def _on_disconnected(self, reason):
        self.disconnected_event.set()
        self._on_failure('disconnected before the session started')(reason)

    async def login(self, server, direct_tls=False, timeout=10):
        port = server.tls_port if direct_tls else server.c2s_port
        self.connect(('127.0.0.1', port), use_ssl=direct_tls, force_starttls=not direct_tls)
        await asyncio.wait_for(self.session_started, timeout)
        return self

    async def ping(self, jid=DOMAIN, timeout=5):
        iq = await self['xep_0199'].send_ping(jid, timeout=timeout)
        assert iq['type'] == 'result', 'ping %s: %s' % (jid, iq)
        return iq

    async def iq_error(self, iq, timeout=5):
        """Send iq, which must come back as an error; return the error."""
        try:
            reply = await iq.send(timeout=timeout)
        except IqError as e:
            return e.iq
        raise AssertionError('expected an error, got %s' % reply)

    async def close(self):
        if self.transport is not None:
            await asyncio.wait_for(self.disconnect(), 5)


async def login(server, jid, password, mechanism=None, direct_tls=False):
    return await Client(jid, password, mechanism).login(server, direct_tls)


def abort_open_clients():
    while _open_clients:
        client = _open_clients.pop()
        with contextlib.suppress(Exception):
            client.abort()


# -------------------------------------------------------------- raw stream

class StreamClosed(Exception):
    pass


class RawStream:
    """A client stream at the byte level, parsed back into elements.

    Incoming bytes go through an XMLPullParser; complete depth-1 elements
    are queued and the root's end is reported as the stream closing.
    """

    def __init__(self, port, timeout=5, tls=False, source=None, lang=None):
        """source: the local address to connect from (any 127.x.y.z);
        lang: the xml:lang of every stream header sent."""
        self.timeout = timeout
        self.lang = lang
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if tls:
            self.sock = insecure_tls_context().wrap_socket(self.sock, server_hostname=DOMAIN)
        self.eof = False
        self.received = b''
        self._restart_parser()

    def _restart_parser(self):
        self.parser = ET.XMLPullParser(events=('start', 'end'))
        self.depth = 0
        self.header = None
        self.stream_ended = False
        self.elements = []

    # ---- sending
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def open(self, to=DOMAIN, version='1.0', ns=NS_CLIENT, stream_ns=NS_STREAM):
        """Send a stream header and start a new parse of the server's side."""
        self._restart_parser()
        lang = " xml:lang='%s'" % self.lang if self.lang else ''
        self.send("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s'"
                  " to='%s' version='%s'%s>" % (ns, stream_ns, to, version, lang))

    # ---- receiving
    def _feed(self, data):
        self.received += data
        self.parser.feed(data)
        for event, elem in self.parser.read_events():
            if event == 'start':
                self.depth += 1
                if self.depth == 1:
                    self.header = elem
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.elements.append(elem)
                    self.header.remove(elem)
                elif self.depth == 0:
                    self.stream_ended = True

    def _read_some(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError('nothing more within %.1fs; received so far: %r'
                               % (self.timeout, self.received[-2000:]))
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError('nothing more within %.1fs; received so far: %r'
                               % (self.timeout, self.received[-2000:])) from None
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b''
        if not data:
            self.eof = True
            return
        self._feed(data)

    def next_element(self, timeout=None):
        """The next depth-1 element from the server; StreamClosed at the end."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.elements:
            if self.stream_ended or self.eof:
                raise StreamClosed('stream closed; received: %r' % self.received[-2000:])
            self._read_some(deadline)
        return self.elements.pop(0)

    def expect(self, tag, timeout=None):
        elem = self.next_element(timeout)
        assert elem.tag == tag, 'expected %s, got %s' % (tag, tostring(elem))
        return elem

    def features(self):
        return self.expect(qname(NS_STREAM, 'features'))

    def expect_closed(self, timeout=None):
        """After the server's </stream:stream>: nothing more, then EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.stream_ended:
            assert not self.elements, 'unexpected %s' % tostring(self.elements[0])
            assert not self.eof, ('connection closed without </stream:stream>; received: %r'
                                  % self.received[-2000:])
            self._read_some(deadline)
        while not self.eof:
            self._read_some(deadline)
        assert not self.elements, 'unexpected %s' % tostring(self.elements[0])
        self.close()

    def expect_stream_error(self, condition, timeout=None):
        """A stream error with exactly this condition, the stream end, EOF.

        The server's stream header (and, if it sent one, its features)
        may come first; nothing else may.
        """
        elem = self.next_element(timeout)
        if elem.tag == qname(NS_STREAM, 'features'):
            elem = self.next_element(timeout)
        assert elem.tag == qname(NS_STREAM, 'error'), (
            'expected stream error %s, got %s' % (condition, tostring(elem)))
        conditions = [c.tag for c in elem if c.tag != qname(NS_STREAM_ERRORS, 'text')]
        assert conditions == [qname(NS_STREAM_ERRORS, condition)], (
            'expected stream error %s, got %s' % (condition, tostring(elem)))
        assert self.header is not None and self.header.tag == qname(NS_STREAM, 'stream'), (
            'the server did not open its stream before the error: %r' % self.received[:500])
        self.expect_closed(timeout)
        return elem

    # ---- negotiation steps
    def starttls(self):
        """Expect <starttls/> offered, ask for it, wrap the socket."""
        features = self.features()
        assert features.find(qname(NS_TLS, 'starttls')) is not None, tostring(features)
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        self.expect(qname(NS_TLS, 'proceed'))
        self.sock.settimeout(self.timeout)
        self.sock = insecure_tls_context().wrap_socket(self.sock, server_hostname=DOMAIN)
        self.open()
        return self.features()

    def sasl_failure(self):
        elem = self.expect(qname(NS_SASL, 'failure'))
        return [c.tag.split('}')[1] for c in elem if c.tag != qname(NS_SASL, 'text')]

    def auth_plain(self, user, password):
        """PLAIN; returns the post-auth features of the restarted stream."""
        token = base64.b64encode(b'\0' + user.encode() + b'\0' + password.encode()).decode()
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, token))
        self.expect(qname(NS_SASL, 'success'))
        self.open()
        return self.features()

    def auth_scram(self, scram):
        """Run a SCRAM exchange; returns the post-auth features."""
        self.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                  % (NS_SASL, scram.mechanism, b64(scram.client_first())))
        challenge = self.next_element()
        assert challenge.tag == qname(NS_SASL, 'challenge'), tostring(challenge)
        final = scram.client_final(base64.b64decode(challenge.text))
        self.send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64(final)))
        success = self.expect(qname(NS_SASL, 'success'))
        scram.verify_server_final(base64.b64decode(success.text or ''))
        self.open()
        return self.features()

    def bind(self, resource=None):
        """Bind; returns the full JID the server assigned."""
        inner = '<resource>%s</resource>' % resource if resource else ''
        self.send("<iq type='set' id='bind1'><bind xmlns='%s'>%s</bind></iq>" % (NS_BIND, inner))
        iq = self.expect(qname(NS_CLIENT, 'iq'))
        assert iq.get('type') == 'result' and iq.get('id') == 'bind1', tostring(iq)
        jid = iq.find('%s/%s' % (qname(NS_BIND, 'bind'), qname(NS_BIND, 'jid')))
        assert jid is not None and jid.text, tostring(iq)
        return jid.text

    def login(self, user, password, resource=None):
        """STARTTLS (on the c2s port), PLAIN, bind: ready for stanzas."""
        self.starttls()
        self.auth_plain(user, password)
        return self.bind(resource)

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


def tostring(elem):
    return ET.tostring(elem, encoding='unicode')


def b64(data):
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------- SCRAM

class Scram:
    """The client side of SCRAM (RFC 5802, RFC 7677), with channel binding."""

    def __init__(self, hash_name, user, password, cb_type=None, cb_data=b''):
        self.hash_name = hash_name
        self.digest_size = hashlib.new(hash_name).digest_size
        self.user = user
        self.password = password
        self.gs2_header = ('p=%s,,' % cb_type if cb_type else 'n,,').encode()
        self.cb_data = cb_data
        self.mechanism = 'SCRAM-%s%s' % ({'sha1': 'SHA-1', 'sha256': 'SHA-256'}[hash_name],
                                         '-PLUS' if cb_type else '')
        self.client_nonce = secrets.token_urlsafe(18)
        self.client_first_bare = 'n=%s,r=%s' % (
            user.replace('=', '=3D').replace(',', '=2C'), self.client_nonce)

    def _hmac(self, key, msg):
        return hmac.new(key, msg, self.hash_name).digest()

    def client_first(self):
        return self.gs2_header + self.client_first_bare.encode()

    def client_final(self, server_first):
        fields = dict(item.split('=', 1) for item in server_first.decode().split(','))
        assert fields['r'].startswith(self.client_nonce), 'server nonce does not extend ours'
        salted = hashlib.pbkdf2_hmac(self.hash_name, self.password.encode(),
                                     base64.b64decode(fields['s']), int(fields['i']))
        without_proof = 'c=%s,r=%s' % (b64(self.gs2_header + self.cb_data), fields['r'])
        auth_message = ','.join([self.client_first_bare, server_first.decode(),
                                 without_proof]).encode()
        client_key = self._hmac(salted, b'Client Key')
        signature = self._hmac(hashlib.new(self.hash_name, client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.expected_server_signature = self._hmac(self._hmac(salted, b'Server Key'),
                                                    auth_message)
        return ('%s,p=%s' % (without_proof, b64(proof))).encode()

    def verify_server_final(self, server_final):
        text = server_final.decode()
        assert text.startswith('v='), 'server-final-message: %r' % text
        assert base64.b64decode(text[2:]) == self.expected_server_signature, (
            'server signature does not verify')


# RFC 5929 §4.1: tls-server-end-point hashes the server certificate with the
# hash of its signature algorithm, SHA-256 if that is MD5 or SHA-1.
_SIGNATURE_HASHES = {
    '1.2.840.113549.1.1.4': 'sha256',   # md5WithRSAEncryption
    '1.2.840.113549.1.1.5': 'sha256',   # sha1WithRSAEncryption
    '1.2.840.113549.1.1.11': 'sha256',  # sha256WithRSAEncryption
    '1.2.840.113549.1.1.12': 'sha384',
    '1.2.840.113549.1.1.13': 'sha512',
    '1.2.840.10045.4.1': 'sha256',      # ecdsa-with-SHA1
    '1.2.840.10045.4.3.2': 'sha256',
    '1.2.840.10045.4.3.3': 'sha384',
    '1.2.840.10045.4.3.4': 'sha512',
}


def _der_read(data, offset):
    """One DER TLV at offset: (tag, content start, content end)."""
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7f
        length = int.from_bytes(data[offset:offset + count], 'big')
        offset += count
    return tag, offset, offset + length


def _der_oid(content):
    first = content[0]
    arcs = [first // 40, first % 40]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7f)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return '.'.join(map(str, arcs))


def tls_server_end_point(cert_der):
    # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    _, start, _ = _der_read(cert_der, 0)
    _, _, tbs_end = _der_read(cert_der, start)
    _, algorithm_start, _ = _der_read(cert_der, tbs_end)
    tag, oid_start, oid_end = _der_read(cert_der, algorithm_start)
    assert tag == 0x06, 'certificate signatureAlgorithm has no OID'
    oid = _der_oid(cert_der[oid_start:oid_end])
    assert oid in _SIGNATURE_HASHES, (
        'tls-server-end-point is undefined for signature algorithm %s' % oid)
    return hashlib.new(_SIGNATURE_HASHES[oid], cert_der).digest()


# ----------------------------------------------------------------------- TAP

class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _alarm(seconds):
    def expire(signum, frame):
        raise _Timeout('timed out after %ds' % seconds)
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _run_one(test, timeout):
    if asyncio.iscoroutinefunction(test):
        async def bounded():
            task = asyncio.ensure_future(test())
            try:
                done, _ = await asyncio.wait({task}, timeout=timeout)
                if not done:
                    where = io.StringIO()
                    task.print_stack(file=where)
                    task.cancel()
                    raise _Timeout('timed out after %ds\n%s' % (timeout, where.getvalue()))
                task.result()
            finally:
                abort_open_clients()
        asyncio.run(bounded())
    else:
        with _alarm(timeout):
            test()


def _diagnose(text):
    for line in text.rstrip('\n').splitlines():
        print('# ' + line)


def run(tests, server=None, setup=None, timeout=30):
    """Run tests as TAP: "1..N", then "ok"/"not ok" per test.

    With a server, it is started first and setup() runs (if either fails,
    every test fails with that error) and a last test stops it: a clean
    exit and no sanitizer report in its log.
    """
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
    plan = len(tests) + (1 if server else 0)
    print('1..%d' % plan, flush=True)
    failed = 0
    startup_error = None
    if server is not None:
        try:
            server.start()
            if setup is not None:
                setup()
        except Exception:
            startup_error = traceback.format_exc()

    def report(number, name, error):
        nonlocal failed
        if error is None:
            print('ok %d - %s' % (number, name))
        else:
            failed += 1
            print('not ok %d - %s' % (number, name))
            _diagnose(error)
        sys.stdout.flush()

    for number, test in enumerate(tests, 1):
        error = startup_error
        if startup_error is not None and number > 1:
            error = 'the server did not start (see test 1)'
        elif error is None:
            try:
                _run_one(test, timeout)
                if server is not None:
                    server.check_log()
            except Exception:
                error = traceback.format_exc()
        report(number, test.__name__, error)

    if server is not None:
        error = None if startup_error is None else 'the server did not start (see test 1)'
        if error is None:
            try:
                server.stop()
            except Exception:
                error = traceback.format_exc()
        server.kill9()
        report(plan, 'server stops cleanly', error)
        if failed:
            sys.stderr.write('--- end of the vestnikd log (%s):\n%s\n'
                             % (server.log_path, server.log_tail()))
        else:
            shutil.rmtree(server.dir, ignore_errors=True)
    sys.exit(1 if failed else 0)
