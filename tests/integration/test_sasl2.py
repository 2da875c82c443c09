#!/usr/bin/env python3
"""test_sasl2.py - which login methods each transport offers.

TCP streams offer SCRAM-*-PLUS with their XEP-0440 channel binding types;
WebSocket and BOSH do not, because a browser cannot bind to the TLS
channel and web clients that pick -PLUS when offered then fail
(c2s.web_channel_binding turns it on); PLAIN is offered on both, over
https.
"""

import base64
import http.client
import os
import random
import socket
import struct
import xml.etree.ElementTree as ET

import harness
from harness import NS_SASL, NS_STREAM, qname, tostring

D = harness.DOMAIN
PASSWORD = 'secret-password'
NS_SASL_CB = 'urn:xmpp:sasl-cb:0'
NS_HTTPBIND = 'http://jabber.org/protocol/httpbind'
NS_XBOSH = 'urn:xmpp:xbosh'
NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'


class Server(harness.Server):
    """The harness server with an https listener for BOSH."""

    def __init__(self, **kwargs):
        self.https_port, = harness.free_ports(1)
        super().__init__(**kwargs)

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
    server.adduser('alice@' + D, PASSWORD)


def mechanisms(features, ns=NS_SASL):
    return [m.text for m in features.iter(qname(ns, 'mechanism'))]


def cb_types(features):
    return [c.get('type') for c in features.iter(qname(NS_SASL_CB, 'channel-binding'))]


def bosh_features():
    """The stream features of a new BOSH session (XEP-0206)."""
    body = ("<body xmlns='%s' rid='%d' to='%s' wait='5' hold='1' ver='1.6' xmlns:xmpp='%s'"
            " xmpp:version='1.0'/>" % (NS_HTTPBIND, random.randrange(1 << 20, 1 << 40), D,
                                       NS_XBOSH))
    conn = http.client.HTTPSConnection('127.0.0.1', server.https_port, timeout=10,
                                       context=harness.insecure_tls_context())
    try:
        conn.request('POST', '/http-bind', body=body,
                     headers={'Content-Type': 'text/xml; charset=utf-8'})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    assert response.status == 200, (response.status, data)
    features = ET.fromstring(data).find(qname(NS_STREAM, 'features'))
    assert features is not None, data
    return features


class WebSocket:
    """Just enough of a WebSocket client (RFC 6455, RFC 7395) for a login:
    text frames each carrying one element."""

    def __init__(self):
        raw = socket.create_connection(('127.0.0.1', server.https_port), timeout=10)
        self.sock = harness.insecure_tls_context().wrap_socket(raw, server_hostname=D)
        self.buffer = b''
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(('GET /xmpp-websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n'
                           'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
                           'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n'
                           % (D, key)).encode())
        while b'\r\n\r\n' not in self.buffer:
            self._read()
        head, self.buffer = self.buffer.split(b'\r\n\r\n', 1)
        assert head.startswith(b'HTTP/1.1 101'), head

    def _read(self):
        data = self.sock.recv(65536)
        assert data, 'WebSocket connection closed'
        self.buffer += data

    def _need(self, count):
        while len(self.buffer) < count:
            self._read()

    def send(self, xml):
        payload = xml.encode()
        mask = os.urandom(4)
        length = (bytes([0x80 | len(payload)]) if len(payload) < 126
                  else bytes([0x80 | 126]) + struct.pack('!H', len(payload)))
        self.sock.sendall(bytes([0x81]) + length + mask +
                          bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self):
        self._need(2)
        length, offset = self.buffer[1] & 0x7f, 2
        if length == 126:
            self._need(4)
            length, offset = struct.unpack('!H', self.buffer[2:4])[0], 4
        self._need(offset + length)
        payload = self.buffer[offset:offset + length]
        self.buffer = self.buffer[offset + length:]
        return ET.fromstring(payload.decode())

    def features(self):
        self.send("<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, D))
        assert self.recv().tag == qname(NS_FRAMING, 'open')
        features = self.recv()
        assert features.tag == qname(NS_STREAM, 'features'), tostring(features)
        return features

    def close(self):
        self.sock.close()


def websocket_features():
    ws = WebSocket()
    try:
        return ws.features()
    finally:
        ws.close()


def tcp_features():
    s = harness.RawStream(server.c2s_port)
    try:
        s.open()
        return s.starttls()
    finally:
        s.close()


def test_web_transports_offer_no_channel_binding():
    tcp = tcp_features()
    assert mechanisms(tcp)[:2] == ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'], tostring(tcp)
    assert cb_types(tcp) == ['tls-exporter', 'tls-server-end-point'], tostring(tcp)
    for web in (websocket_features(), bosh_features()):
        assert mechanisms(web) == ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'], tostring(web)
        assert cb_types(web) == [], tostring(web)


if __name__ == '__main__':
    harness.run([
        test_web_transports_offer_no_channel_binding,
    ], server=server, setup=setup)
