#!/usr/bin/env python3
"""test_web_origins.py - web pages' origins and per-address limits on the web transports.

A server whose http.allowed_origins lists one web client's origin: the
WebSocket upgrade and BOSH refuse pages from other origins with 403 (and
log it), take requests without Origin (native clients) and from the
server's own origin, and give CORS answers (echoed origin, Vary: Origin)
only to the listed page. WebSocket streams and BOSH sessions count for
limits.max_connections_per_ip like TCP streams. A request pipelined behind
a BOSH request answered by its wait timer is answered after it, in order.
"""

import base64
import hashlib
import http.client
import os
import socket
import time
import xml.etree.ElementTree as ET

import harness

D = harness.DOMAIN
WS_PATH = '/xmpp-websocket'
BOSH_PATH = '/http-bind'
NS_HTTPBIND = 'http://jabber.org/protocol/httpbind'
PAGE = 'https://chat.example.org'
EVIL = 'https://evil.example'
MAX_PER_IP = 3


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
http:
  allowed_origins: ["{PAGE}"]
c2s:
""", 1)
        text = text.replace('limits:\n', f'limits:\n  max_connections_per_ip: {MAX_PER_IP}\n', 1)
        with open(self.config_path, 'w') as f:
            f.write(text)


server = Server()


def tls_socket(timeout=10):
    raw = socket.create_connection(('127.0.0.1', server.https_port), timeout=timeout)
    return harness.insecure_tls_context().wrap_socket(raw, server_hostname=D)


def own_origin():
    return 'https://%s:%d' % (D, server.https_port)


def upgrade(origin=None):
    """A WebSocket opening handshake; the status and the open socket."""
    sock = tls_socket()
    lines = ['GET %s HTTP/1.1' % WS_PATH, 'Host: %s:%d' % (D, server.https_port),
             'Upgrade: websocket', 'Connection: Upgrade',
             'Sec-WebSocket-Key: ' + base64.b64encode(os.urandom(16)).decode(),
             'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: xmpp']
    if origin:
        lines.append('Origin: ' + origin)
    sock.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
    head = b''
    while b'\r\n\r\n' not in head:
        data = sock.recv(65536)
        if not data:
            break
        head += data
    return int(head.split(b' ', 2)[1]), sock


def https():
    return http.client.HTTPSConnection('127.0.0.1', server.https_port, timeout=10,
                                       context=harness.insecure_tls_context())


def bosh_post(body, origin=None):
    conn = https()
    headers = {'Content-Type': 'text/xml; charset=utf-8',
               'Host': '%s:%d' % (D, server.https_port)}
    if origin:
        headers['Origin'] = origin
    conn.request('POST', BOSH_PATH, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def session_body(rid):
    return ("<body xmlns='%s' rid='%d' to='%s' wait='1' hold='1' ver='1.6' "
            "xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>" % (NS_HTTPBIND, rid, D))


def bosh_end(reply, rid):
    sid = ET.fromstring(reply).get('sid')
    assert sid, reply
    bosh_post("<body xmlns='%s' rid='%d' sid='%s' type='terminate'/>" % (NS_HTTPBIND, rid, sid))


def test_websocket_origin_check():
    for origin in (None, PAGE, own_origin()):
        status, sock = upgrade(origin)
        assert status == 101, (origin, status)
        sock.close()
    status, sock = upgrade(EVIL)
    assert status == 403, status
    sock.close()
    assert 'WebSocket from origin %s refused' % EVIL in server.log_text(), server.log_tail()


def test_bosh_origin_check_and_cors():
    response, data = bosh_post(session_body(100), EVIL)
    assert response.status == 403, (response.status, data)
    assert response.getheader('Access-Control-Allow-Origin') is None
    response, data = bosh_post(session_body(200), PAGE)
    assert response.status == 200, (response.status, data)
    assert response.getheader('Access-Control-Allow-Origin') == PAGE
    assert 'Origin' in response.getheader('Vary', '')
    bosh_end(data, 201)
    response, data = bosh_post(session_body(300))  # a native client
    assert response.status == 200, (response.status, data)
    assert response.getheader('Access-Control-Allow-Origin') is None
    bosh_end(data, 301)
    for origin, status in ((PAGE, 204), (EVIL, 403)):
        conn = https()
        conn.request('OPTIONS', BOSH_PATH, headers={
            'Origin': origin, 'Access-Control-Request-Method': 'POST',
            'Access-Control-Request-Headers': 'content-type'})
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == status, (origin, response.status)
        allowed = response.getheader('Access-Control-Allow-Origin')
        assert allowed == (PAGE if status == 204 else None), allowed
    assert 'origin not in http.allowed_origins' in server.log_text(), server.log_tail()


def test_host_meta_cors_for_the_listed_page_only():
    for origin, allowed in ((PAGE, PAGE), (EVIL, None)):
        conn = https()
        conn.request('GET', '/.well-known/host-meta', headers={'Origin': origin})
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 200
        assert response.getheader('Access-Control-Allow-Origin') == allowed, (origin, allowed)


def test_web_streams_count_per_address():
    streams = []
    for _ in range(MAX_PER_IP):
        status, sock = upgrade()
        assert status == 101, status
        streams.append(sock)
    status, sock = upgrade()
    assert status == 429, status
    sock.close()
    response, data = bosh_post(session_body(400))
    reply = ET.fromstring(data)
    assert reply.get('type') == 'terminate' and reply.get('condition') == 'policy-violation', data
    streams.pop().close()
    deadline = time.monotonic() + 5
    while True:
        status, sock = upgrade()
        sock.close()
        if status == 101 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 101, 'a closed WebSocket stream still counts'
    for sock in streams:
        sock.close()


def test_pipelined_request_behind_a_timer_answer():
    response, data = bosh_post(session_body(500))
    sid = ET.fromstring(data).get('sid')
    sock = tls_socket()
    body = "<body xmlns='%s' rid='501' sid='%s'/>" % (NS_HTTPBIND, sid)
    sock.sendall(('POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml\r\n'
                  'Content-Length: %d\r\n\r\n%s' % (BOSH_PATH, D, len(body), body)).encode()
                 + b'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    data = b''
    started = time.monotonic()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert time.monotonic() - started >= 0.9, 'the held request was not held'
    first, second = data.split(b'HTTP/1.1 ', 2)[1:]
    assert first.startswith(b'200 ') and b'<body' in first, data
    assert second.startswith(b'200 ') and second.endswith(b'ok\n'), data
    server.assert_running()


if __name__ == '__main__':
    harness.run([test_websocket_origin_check,
                 test_bosh_origin_check_and_cors,
                 test_host_meta_cors_for_the_listed_page_only,
                 test_web_streams_count_per_address,
                 test_pipelined_request_behind_a_timer_answer],
                server=server, setup=None)
