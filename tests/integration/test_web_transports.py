#!/usr/bin/env python3
"""test_web_transports.py - client streams over WebSocket (RFC 7395) and BOSH (XEP-0206).

Both run over the https listener with clients written here on the standard
library: a WebSocket client (the opening handshake, masked frames) and a
BOSH client (http.client). Each logs in with SCRAM-SHA-256, binds, and
exchanges messages both ways with a slixmpp client on TCP. Also: WebSocket
pings, the xmpp subprotocol required, a malformed message answered with a
stream error and <close/>; the BOSH long poll answered as soon as a message
arrives, repeated and out-of-window rids, CORS preflight, a client's
terminate. With VN_XMPP_JS_DIR naming a directory where
`npm install @xmpp/client` ran, a real web client library (xmpp.js, under
node) logs in over WebSocket too (xmpp_js_client.mjs).
"""

import asyncio
import base64
import hashlib
import http.client
import json
import os
import random
import socket
import struct
import time
import xml.etree.ElementTree as ET

import harness

D = harness.DOMAIN
ALICE = 'alice@' + D
BOB = 'bob@' + D
PASSWORD = 'secret-password'
NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'
NS_HTTPBIND = 'http://jabber.org/protocol/httpbind'
NS_XBOSH = 'urn:xmpp:xbosh'
WS_PATH = '/xmpp-websocket'
BOSH_PATH = '/http-bind'
q = harness.qname


class Server(harness.Server):
    def __init__(self):
        self.https_port, = harness.free_ports(1)
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('c2s:\n', f"""  - type: https
    address: 127.0.0.1
    port: {self.https_port}
c2s:
""", 1)
        with open(self.config_path, 'w') as f:
            f.write(text)


server = Server()


def setup():
    server.adduser(ALICE, PASSWORD)
    server.adduser(BOB, PASSWORD)


def tls_socket(timeout=10):
    raw = socket.create_connection(('127.0.0.1', server.https_port), timeout=timeout)
    return harness.insecure_tls_context().wrap_socket(raw, server_hostname=D)


# ------------------------------------------------------------ WebSocket client

class WebSocketClosed(Exception):
    pass


class WebSocket:
    """A WebSocket client (RFC 6455) for XMPP framing: one element per message."""

    def __init__(self, protocols=('xmpp',), path=WS_PATH, timeout=10):
        self.sock = tls_socket(timeout)
        self.buffer = b''
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ['GET %s HTTP/1.1' % path, 'Host: %s' % D, 'Upgrade: websocket',
                 'Connection: Upgrade', 'Sec-WebSocket-Key: ' + key,
                 'Sec-WebSocket-Version: 13']
        if protocols:
            lines.append('Sec-WebSocket-Protocol: ' + ', '.join(protocols))
        self.sock.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
        while b'\r\n\r\n' not in self.buffer:
            self._read()
        head, self.buffer = self.buffer.split(b'\r\n\r\n', 1)
        status_line, *header_lines = head.decode().split('\r\n')
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in header_lines:
            name, value = line.split(':', 1)
            self.headers[name.strip().lower()] = value.strip()
        if self.status == 101:
            expected = base64.b64encode(hashlib.sha1(
                (key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
            assert self.headers['sec-websocket-accept'] == expected, self.headers

    def _read(self):
        data = self.sock.recv(65536)
        if not data:
            raise WebSocketClosed('connection closed')
        self.buffer += data

    def _need(self, count):
        while len(self.buffer) < count:
            self._read()

    def send_frame(self, opcode, payload, fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        mask = os.urandom(4)
        header = bytes([(0x80 if fin else 0) | opcode])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 65536:
            header += bytes([0x80 | 126]) + struct.pack('!H', len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack('!Q', len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send(self, xml):
        self.send_frame(1, xml)

    def recv_frame(self):
        """(opcode, payload) of the next frame from the server (never masked)."""
        self._need(2)
        opcode = self.buffer[0] & 0x0f
        assert not self.buffer[1] & 0x80, 'a server frame must not be masked'
        length = self.buffer[1] & 0x7f
        offset = 2
        if length == 126:
            self._need(4)
            length, = struct.unpack('!H', self.buffer[2:4])
            offset = 4
        elif length == 127:
            self._need(10)
            length, = struct.unpack('!Q', self.buffer[2:10])
            offset = 10
        self._need(offset + length)
        payload = self.buffer[offset:offset + length]
        self.buffer = self.buffer[offset + length:]
        return opcode, payload

    def recv(self):
        """The next message's element; WebSocketClosed on a close frame."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 1:
                return ET.fromstring(payload.decode())
            if opcode == 8:
                raise WebSocketClosed('close frame %r' % payload)
            assert opcode in (9, 10), 'unexpected opcode %d' % opcode

    def expect(self, tag):
        elem = self.recv()
        assert elem.tag == tag, 'expected %s, got %s' % (tag, harness.tostring(elem))
        return elem

    def exchange(self, xml):
        self.send(xml)
        return self.recv()

    def open(self):
        self.send("<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, D))
        header = self.expect(q(NS_FRAMING, 'open'))
        assert header.get('from') == D and header.get('version') == '1.0', header.attrib
        assert header.get('id'), header.attrib
        return self.expect(q(harness.NS_STREAM, 'features'))

    def close(self):
        self.sock.close()


def scram_login(exchange, user):
    """SCRAM-SHA-256 (without channel binding); exchange(xml) sends one
    element and returns the one that answers it."""
    scram = harness.Scram('sha256', user, PASSWORD)
    challenge = exchange("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
                         % (harness.NS_SASL, harness.b64(scram.client_first())))
    assert challenge.tag == q(harness.NS_SASL, 'challenge'), harness.tostring(challenge)
    success = exchange("<response xmlns='%s'>%s</response>" % (
        harness.NS_SASL, harness.b64(scram.client_final(base64.b64decode(challenge.text)))))
    assert success.tag == q(harness.NS_SASL, 'success'), harness.tostring(success)
    scram.verify_server_final(base64.b64decode(success.text))


def bind_iq(resource):
    return ("<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='%s'>"
            "<resource>%s</resource></bind></iq>" % (harness.NS_BIND, resource))


def check_bound(iq, user, resource):
    assert iq.tag == q(harness.NS_CLIENT, 'iq') and iq.get('type') == 'result', (
        harness.tostring(iq))
    jid = iq.find('%s/%s' % (q(harness.NS_BIND, 'bind'), q(harness.NS_BIND, 'jid')))
    assert jid is not None and jid.text == '%s@%s/%s' % (user, D, resource), harness.tostring(iq)


def websocket_login(user, resource):
    ws = WebSocket()
    assert ws.status == 101 and ws.headers.get('sec-websocket-protocol') == 'xmpp', ws.headers
    features = ws.open()
    mechanisms = [m.text for m in features.iter(q(harness.NS_SASL, 'mechanism'))]
    assert 'SCRAM-SHA-256' in mechanisms, harness.tostring(features)
    assert features.find(q(harness.NS_TLS, 'starttls')) is None, 'no STARTTLS on WebSocket'
    scram_login(ws.exchange, user)
    features = ws.open()
    assert features.find(q(harness.NS_BIND, 'bind')) is not None, harness.tostring(features)
    ws.send(bind_iq(resource))
    check_bound(ws.recv(), user, resource)
    return ws


# ------------------------------------------------------------------ BOSH client

class Bosh:
    """A BOSH client: one HTTPS connection per outstanding request."""

    def __init__(self, wait=5, hold=1):
        self.rid = random.randrange(1 << 20, 1 << 40)
        self.sid = None
        self.wait = wait
        self.hold = hold

    def post(self, body, timeout=None, method='POST', headers=None):
        conn = http.client.HTTPSConnection('127.0.0.1', server.https_port,
                                           timeout=timeout or self.wait + 10,
                                           context=harness.insecure_tls_context())
        try:
            conn.request(method, BOSH_PATH, body=body,
                         headers=headers or {'Content-Type': 'text/xml; charset=utf-8'})
            response = conn.getresponse()
            data = response.read()
            return response, data
        finally:
            conn.close()

    def request(self, children='', attrs='', rid=None):
        """Send a <body/> with the next rid (or the one given); the reply <body/>."""
        if rid is None:
            self.rid += 1
            rid = self.rid
        sid = " sid='%s'" % self.sid if self.sid else ''
        body = "<body xmlns='%s' rid='%d'%s%s>%s</body>" % (NS_HTTPBIND, rid, sid, attrs,
                                                             children)
        response, data = self.post(body)
        assert response.status == 200, (response.status, data)
        assert response.getheader('Access-Control-Allow-Origin') == '*', response.getheaders()
        reply = ET.fromstring(data.decode())
        assert reply.tag == q(NS_HTTPBIND, 'body'), data
        return reply

    def create(self):
        reply = self.request(attrs=" to='%s' wait='%d' hold='%d' ver='1.6' xml:lang='en'"
                             " xmlns:xmpp='%s' xmpp:version='1.0'"
                             % (D, self.wait, self.hold, NS_XBOSH))
        assert reply.get('type') is None, ET.tostring(reply)
        self.sid = reply.get('sid')
        assert self.sid and reply.get('wait') == str(self.wait), reply.attrib
        assert reply.get('hold') == str(self.hold), reply.attrib
        assert reply.get('requests') == str(self.hold + 1), reply.attrib
        assert reply.get('{%s}version' % NS_XBOSH) == '1.0', reply.attrib
        assert reply.get('from') == D and reply.get('secure') == 'true', reply.attrib
        return reply

    def one(self, children='', attrs=''):
        """A request answered with exactly one element."""
        reply = self.request(children, attrs)
        assert len(reply) == 1, ET.tostring(reply)
        return reply[0]


def bosh_login(user, resource, wait=2):
    bosh = Bosh(wait=wait)
    reply = bosh.create()
    features = reply.find(q(harness.NS_STREAM, 'features'))
    assert features is not None, ET.tostring(reply)
    mechanisms = [m.text for m in features.iter(q(harness.NS_SASL, 'mechanism'))]
    assert 'SCRAM-SHA-256' in mechanisms, ET.tostring(features)
    scram_login(bosh.one, user)
    features = bosh.one(attrs=" xmlns:xmpp='%s' xmpp:restart='true' to='%s'" % (NS_XBOSH, D))
    assert features.tag == q(harness.NS_STREAM, 'features'), ET.tostring(features)
    assert features.find(q(harness.NS_BIND, 'bind')) is not None, ET.tostring(features)
    check_bound(bosh.one(bind_iq(resource)), user, resource)
    return bosh


def message(to, body, ns=True):
    return "<message%s to='%s' type='chat' id='m%d'><body>%s</body></message>" % (
        " xmlns='jabber:client'" if ns else '', to, random.randrange(1 << 30), body)


def body_text(elem):
    body = elem.find(q(harness.NS_CLIENT, 'body'))
    return body.text if body is not None else None


# ----------------------------------------------------------------------- tests

def test_websocket_login_and_ping():
    ws = websocket_login('alice', 'ws')
    try:
        ws.send("<iq xmlns='jabber:client' type='get' id='p1' to='%s'>"
                "<ping xmlns='urn:xmpp:ping'/></iq>" % D)
        reply = ws.expect(q(harness.NS_CLIENT, 'iq'))
        assert reply.get('type') == 'result' and reply.get('id') == 'p1', harness.tostring(reply)
        ws.send_frame(9, b'are you there')
        while True:
            opcode, payload = ws.recv_frame()
            if opcode == 10:
                break
        assert payload == b'are you there', payload
        ws.send("<close xmlns='%s'/>" % NS_FRAMING)
        ws.expect(q(NS_FRAMING, 'close'))
        try:
            ws.recv()
            raise AssertionError('the server must end with a close frame')
        except WebSocketClosed:
            pass
    finally:
        ws.close()


async def test_websocket_messages_with_tcp_client():
    bob = await harness.login(server, BOB + '/tcp', PASSWORD)
    ws = await asyncio.to_thread(websocket_login, 'alice', 'web')
    try:
        ws.send(message(BOB + '/tcp', 'from the browser'))
        got = await asyncio.wait_for(bob.messages.get(), 5)
        assert got['body'] == 'from the browser' and got['from'] == ALICE + '/web', got
        bob.send_message(mto=ALICE + '/web', mbody='from tcp <&>', mtype='chat')
        elem = await asyncio.to_thread(ws.expect, q(harness.NS_CLIENT, 'message'))
        assert body_text(elem) == 'from tcp <&>' and elem.get('from') == BOB + '/tcp', (
            harness.tostring(elem))
    finally:
        ws.close()
        await bob.close()


def test_websocket_needs_xmpp_subprotocol():
    for protocols in ((), ('chat', 'superchat')):
        ws = WebSocket(protocols=protocols)
        try:
            assert ws.status == 400, (ws.status, ws.headers)
        finally:
            ws.close()
    ws = WebSocket(protocols=('chat', 'xmpp'))
    try:
        assert ws.status == 101 and ws.headers['sec-websocket-protocol'] == 'xmpp', ws.headers
    finally:
        ws.close()


def test_websocket_malformed_message():
    for bad, condition in (("<message><body>unclosed</message>", 'not-well-formed'),
                           ("<message/><message/>", 'not-well-formed'),
                           ("<?xml-stylesheet href='x'?><message/>", 'restricted-xml')):
        ws = WebSocket()
        try:
            ws.open()
            ws.send(bad)
            error = ws.expect(q(harness.NS_STREAM, 'error'))
            assert error.find(q(harness.NS_STREAM_ERRORS, condition)) is not None, (
                bad, harness.tostring(error))
            ws.expect(q(NS_FRAMING, 'close'))
            try:
                ws.recv()
                raise AssertionError('the server must end with a close frame')
            except WebSocketClosed:
                pass
        finally:
            ws.close()


def test_websocket_oversized_message():
    ws = WebSocket()
    try:
        ws.open()
        ws.send("<message xmlns='jabber:client'><body>%s</body></message>"
                % ('x' * (harness.MAX_STANZA_SIZE + 1)))
        error = ws.expect(q(harness.NS_STREAM, 'error'))
        assert error.find(q(harness.NS_STREAM_ERRORS, 'policy-violation')) is not None, (
            harness.tostring(error))
    finally:
        ws.close()


async def test_bosh_login_and_messages_with_tcp_client():
    bob = await harness.login(server, BOB + '/tcp2', PASSWORD)
    bosh = await asyncio.to_thread(bosh_login, 'alice', 'bosh')
    try:
        # BOSH to TCP: nothing comes back for this request before 'wait'.
        reply = await asyncio.to_thread(bosh.request, message(BOB + '/tcp2', 'over bosh'))
        got = await asyncio.wait_for(bob.messages.get(), 5)
        assert got['body'] == 'over bosh' and got['from'] == ALICE + '/bosh', got
        assert len(reply) == 0, ET.tostring(reply)

        # TCP to BOSH: a held request returns as soon as the message arrives.
        started = time.monotonic()
        poll = asyncio.ensure_future(asyncio.to_thread(bosh.request))
        await asyncio.sleep(0.5)
        bob.send_message(mto=ALICE + '/bosh', mbody='to the poller', mtype='chat')
        reply = await asyncio.wait_for(poll, 10)
        assert time.monotonic() - started < bosh.wait, 'the long poll waited for its timeout'
        assert len(reply) == 1 and body_text(reply[0]) == 'to the poller', ET.tostring(reply)
        assert reply[0].get('from') == BOB + '/tcp2', ET.tostring(reply)

        # A message sent while no request is held waits for the next one.
        bob.send_message(mto=ALICE + '/bosh', mbody='queued', mtype='chat')
        await bob.ping()
        reply = await asyncio.to_thread(bosh.request)
        assert [body_text(e) for e in reply] == ['queued'], ET.tostring(reply)

        # The client ends the session.
        reply = await asyncio.to_thread(
            bosh.request, "<presence xmlns='jabber:client' type='unavailable'/>",
            " type='terminate'")
        assert reply.get('type') == 'terminate', ET.tostring(reply)
        reply = await asyncio.to_thread(bosh.request)
        assert reply.get('type') == 'terminate', ET.tostring(reply)
        assert reply.get('condition') == 'item-not-found', ET.tostring(reply)
    finally:
        await bob.close()


def test_bosh_long_poll_times_out_empty():
    bosh = Bosh(wait=1)
    bosh.create()
    started = time.monotonic()
    reply = bosh.request()
    elapsed = time.monotonic() - started
    assert len(reply) == 0 and reply.get('type') is None, ET.tostring(reply)
    assert 0.8 < elapsed < 3, elapsed


def test_bosh_rids():
    bosh = Bosh(wait=1)
    bosh.create()
    first = bosh.request()
    # A repeated rid gets the same answer again.
    again = bosh.request(rid=bosh.rid)
    assert ET.tostring(first) == ET.tostring(again), (ET.tostring(first), ET.tostring(again))
    # An unknown session, and a rid outside the window, end with item-not-found.
    stranger = Bosh()
    stranger.sid = 'no-such-session'
    reply = stranger.request()
    assert reply.get('type') == 'terminate' and reply.get('condition') == 'item-not-found'
    reply = bosh.request(rid=bosh.rid + 100)
    assert reply.get('type') == 'terminate' and reply.get('condition') == 'item-not-found', (
        ET.tostring(reply))
    reply = bosh.request()
    assert reply.get('type') == 'terminate', ET.tostring(reply)


async def test_bosh_early_rid_waits_for_its_predecessor():
    bosh = Bosh(wait=1)  # within the harness's handshake timeout
    await asyncio.to_thread(bosh.create)
    auth = "<auth xmlns='%s' mechanism='NO-SUCH-MECHANISM'/>" % harness.NS_SASL
    later = asyncio.ensure_future(asyncio.to_thread(bosh.request, auth, '', bosh.rid + 2))
    await asyncio.sleep(0.3)
    assert not later.done(), 'a request with a gap before it must wait'
    earlier = await asyncio.to_thread(bosh.request, '', '', bosh.rid + 1)
    replies = [earlier, await asyncio.wait_for(later, 10)]
    assert all(r.get('type') is None for r in replies), [ET.tostring(r) for r in replies]
    # Processed once, after the request before it: its answer goes back in
    # the oldest held request.
    assert len(earlier) == 1 and len(replies[1]) == 0, [ET.tostring(r) for r in replies]
    failure = earlier[0]
    assert failure.tag == q(harness.NS_SASL, 'failure'), ET.tostring(failure)
    assert failure.find(q(harness.NS_SASL, 'invalid-mechanism')) is not None


def test_bosh_bad_requests():
    bosh = Bosh()
    for body in ("<body xmlns='%s'/>" % NS_HTTPBIND,  # no rid
                 "<body xmlns='%s' rid='1'><unclosed></body>" % NS_HTTPBIND,
                 "<html rid='1'/>"):
        response, data = bosh.post(body)
        reply = ET.fromstring(data.decode())
        assert response.status == 200 and reply.get('type') == 'terminate', data
        assert reply.get('condition') == 'bad-request', data
    # A browser's CORS preflight for a page on another origin.
    response, data = bosh.post(None, method='OPTIONS', headers={
        'Origin': 'https://page.example', 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'Content-Type'})
    assert response.status == 204, response.status
    assert response.getheader('Access-Control-Allow-Origin') == '*'
    assert 'POST' in response.getheader('Access-Control-Allow-Methods')
    assert 'Content-Type' in response.getheader('Access-Control-Allow-Headers')
    response, data = bosh.post(None, method='GET')
    assert response.status == 405, response.status


def test_bosh_stream_error_terminates():
    bosh = Bosh(wait=2)
    bosh.create()
    reply = bosh.request("<message xmlns='jabber:client' to='bob@%s'/>" % D)
    assert reply.get('type') == 'terminate', ET.tostring(reply)
    assert reply.get('condition') == 'remote-stream-error', ET.tostring(reply)
    error = reply.find(q(harness.NS_STREAM, 'error'))
    assert error is not None and error.find(q(harness.NS_STREAM_ERRORS, 'not-authorized')) \
        is not None, ET.tostring(reply)


async def test_xmpp_js_client_over_websocket():
    bob = await harness.login(server, BOB + '/tcp3', PASSWORD)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'xmpp_js_client.mjs')
    env = dict(os.environ, NODE_TLS_REJECT_UNAUTHORIZED='0')
    node = await asyncio.create_subprocess_exec(
        'node', '--experimental-websocket', '--no-warnings', script,
        'wss://127.0.0.1:%d%s' % (server.https_port, WS_PATH), D, 'alice', PASSWORD,
        BOB + '/tcp3', stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        line = await asyncio.wait_for(node.stdout.readline(), 15)
        # xmpp.js logs in with SASL2 and Bind 2: the server makes the
        # resource, "<the client's tag>/<an id>" (XEP-0386 §3.2.1).
        online = (json.loads(line or b'null') or {}).get('online', '')
        assert online.startswith(ALICE + '/xmppjs/'), (line, await node.stderr.read())
        got = await asyncio.wait_for(bob.messages.get(), 5)
        assert got['body'] == 'hello from xmpp.js' and got['from'] == online, got
        bob.send_message(mto=online, mbody='hello, xmpp.js', mtype='chat')
        line = await asyncio.wait_for(node.stdout.readline(), 5)
        assert json.loads(line) == {'message': {'from': BOB + '/tcp3', 'body': 'hello, xmpp.js'}}
        assert await asyncio.wait_for(node.wait(), 10) == 0, await node.stderr.read()
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
        await bob.close()


def test_host_meta_names_both_endpoints():
    """XEP-0156: a web client finds the endpoints from the domain alone."""
    def get(path, host):
        conn = http.client.HTTPSConnection('127.0.0.1', server.https_port, timeout=10,
                                           context=harness.insecure_tls_context())
        try:
            conn.request('GET', path, headers={'Host': host})
            response = conn.getresponse()
            return response, response.read().decode()
        finally:
            conn.close()

    authority = 'localhost:%d' % server.https_port
    response, xrd = get('/.well-known/host-meta', authority)
    assert response.status == 200, (response.status, xrd)
    assert response.getheader('Content-Type') == 'application/xrd+xml'
    assert response.getheader('Access-Control-Allow-Origin') == '*'
    root = ET.fromstring(xrd)
    links = {l.get('rel'): l.get('href')
             for l in root.findall('{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link')}
    assert links == {
        'urn:xmpp:alt-connections:websocket': 'wss://%s%s' % (authority, WS_PATH),
        'urn:xmpp:alt-connections:xbosh': 'https://%s%s' % (authority, BOSH_PATH),
    }, links
    response, text = get('/.well-known/host-meta.json', 'evil.example')
    assert response.status == 200 and response.getheader('Content-Type') == 'application/json'
    hrefs = {l['rel']: l['href'] for l in json.loads(text)['links']}
    # A Host that is not ours is not reflected: the first host is named.
    assert hrefs['urn:xmpp:alt-connections:websocket'].startswith('wss://localhost:'), hrefs


if __name__ == '__main__':
    tests = [test_host_meta_names_both_endpoints,
             test_websocket_login_and_ping,
             test_websocket_messages_with_tcp_client,
             test_websocket_needs_xmpp_subprotocol,
             test_websocket_malformed_message,
             test_websocket_oversized_message,
             test_bosh_login_and_messages_with_tcp_client,
             test_bosh_long_poll_times_out_empty,
             test_bosh_rids,
             test_bosh_early_rid_waits_for_its_predecessor,
             test_bosh_bad_requests,
             test_bosh_stream_error_terminates]
    if os.environ.get('VN_XMPP_JS_DIR'):
        tests.append(test_xmpp_js_client_over_websocket)
    harness.run(tests, server=server, setup=setup)
