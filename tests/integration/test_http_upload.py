#!/usr/bin/env python3
"""test_http_upload.py - the HTTP server and HTTP File Upload (XEP-0363).

A slixmpp client asks the server for upload slots with raw iqs; the PUT
and GET go over HTTPS with http.client (self-signed certificate accepted).
Also: the max-file-size form in disco#info, refused slots (too large, over
quota), tampered signatures and wrong sizes, one writer per slot, CORS for
web pages on other origins (preflight and responses), /health, the request
timeout of a slow client, and a malformed request answered 400 while the
server keeps serving.
"""

import asyncio
import http.client
import socket
import time
import urllib.parse
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError

import harness

D = harness.DOMAIN
ALICE = 'alice@' + D
PASSWORD = 'secret-password'
HOARDER = 'hoarder@' + D
NS_UPLOAD = 'urn:xmpp:http:upload:0'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DATA = 'jabber:x:data'
MAX_FILE_SIZE = 2000000
QUOTA = 4000000
REQUEST_TIMEOUT = 2


class Server(harness.Server):
    def __init__(self):
        self.http_port, self.https_port = harness.free_ports(2)
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('c2s:\n', f"""  - type: http
    address: 127.0.0.1
    port: {self.http_port}
  - type: https
    address: 127.0.0.1
    port: {self.https_port}
http:
  request_timeout: {REQUEST_TIMEOUT}
c2s:
""", 1)
        text += (f'  upload:\n'
                 f'    max_file_size: {MAX_FILE_SIZE}\n'
                 f'    quota_bytes: {QUOTA}\n')
        with open(self.config_path, 'w') as f:
            f.write(text)


server = Server()


def setup():
    server.adduser(ALICE, PASSWORD)
    server.adduser(HOARDER, PASSWORD)


def https(timeout=10):
    return http.client.HTTPSConnection('127.0.0.1', server.https_port, timeout=timeout,
                                       context=harness.insecure_tls_context())


async def request_slot(client, filename, size, content_type):
    """The <slot/> element, or the IqError's error iq."""
    iq = client.Iq()
    iq['type'] = 'get'
    iq['to'] = D
    request = ET.Element('{%s}request' % NS_UPLOAD,
                         {'filename': filename, 'size': str(size), 'content-type': content_type})
    iq.append(request)
    try:
        reply = await iq.send(timeout=5)
    except IqError as e:
        return None, e.iq
    slot = reply.xml.find('{%s}slot' % NS_UPLOAD)
    assert slot is not None, str(reply)
    return slot, None


def slot_urls(slot):
    put = slot.find('{%s}put' % NS_UPLOAD).get('url')
    get = slot.find('{%s}get' % NS_UPLOAD).get('url')
    return put, get


def path_of(url):
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == 'https' and parts.port == server.https_port, url
    return parts.path + ('?' + parts.query if parts.query else '')


def put(url, body, content_type):
    conn = https()
    conn.request('PUT', path_of(url), body=body,
                 headers={'Content-Type': content_type, 'Content-Length': str(len(body))})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


async def test_upload_then_download():
    client = await harness.login(server, ALICE, PASSWORD)
    body = bytes(range(256)) * 4096  # 1 MiB, every byte value
    slot, error = await request_slot(client, 'photo album.jpg', len(body), 'image/jpeg')
    assert error is None, str(error)
    put_url, get_url = slot_urls(slot)
    assert '/upload/' in get_url and get_url.endswith('/photo%20album.jpg'), get_url
    assert put(put_url, body, 'image/jpeg') == 201

    conn = https()
    conn.request('GET', path_of(get_url))
    response = conn.getresponse()
    data = response.read()
    assert response.status == 200, response.status
    assert data == body, 'downloaded %d bytes, differing' % len(data)
    assert response.getheader('Content-Type') == 'image/jpeg'
    assert response.getheader('Content-Length') == str(len(body))
    assert response.getheader('X-Content-Type-Options') == 'nosniff'
    assert response.getheader('Content-Disposition') is None  # images show inline
    # HEAD on the same keep-alive connection: headers only.
    conn.request('HEAD', path_of(get_url))
    response = conn.getresponse()
    assert response.status == 200 and response.read() == b''
    assert response.getheader('Content-Length') == str(len(body))
    conn.close()

    # A second PUT to a used slot is refused.
    assert put(put_url, body, 'image/jpeg') == 409
    await client.close()


async def test_non_image_is_an_attachment():
    client = await harness.login(server, ALICE, PASSWORD)
    body = b'<html><script>alert(1)</script></html>'
    slot, _ = await request_slot(client, 'page.html', len(body), 'text/html')
    put_url, get_url = slot_urls(slot)
    assert put(put_url, body, 'text/html') == 201
    conn = https()
    conn.request('GET', path_of(get_url))
    response = conn.getresponse()
    assert response.read() == body
    assert response.getheader('Content-Disposition') == 'attachment'
    assert response.getheader('Content-Type') == 'text/html'
    conn.close()
    await client.close()


async def test_tampered_signature_and_wrong_size_are_refused():
    client = await harness.login(server, ALICE, PASSWORD)
    body = b'x' * 1000
    slot, _ = await request_slot(client, 'a.txt', len(body), 'text/plain')
    put_url, get_url = slot_urls(slot)
    sig_at = put_url.index('sig=') + 4
    flipped = '0' if put_url[sig_at] != '0' else '1'
    tampered = put_url[:sig_at] + flipped + put_url[sig_at + 1:]
    assert put(tampered, body, 'text/plain') == 403
    later = put_url.replace('expires=', 'expires=9')
    assert put(later, body, 'text/plain') == 403
    assert put(put_url, body + b'y', 'text/plain') in (400, 403)
    assert put(put_url, body, 'application/octet-stream') in (400, 403)
    conn = https()
    conn.request('GET', path_of(get_url))
    response = conn.getresponse()
    response.read()
    assert response.status == 404  # nothing was stored
    conn.close()
    assert put(put_url, body, 'text/plain') == 201  # the slot itself is still good
    await client.close()


async def test_too_large_and_over_quota():
    client = await harness.login(server, ALICE, PASSWORD)
    _, error = await request_slot(client, 'big.bin', MAX_FILE_SIZE + 1,
                                  'application/octet-stream')
    assert error is not None
    assert error['error']['type'] == 'modify', str(error)
    assert error['error']['condition'] == 'not-acceptable', str(error)
    too_large = error.xml.find('.//{%s}file-too-large' % NS_UPLOAD)
    assert too_large is not None, str(error)
    assert too_large.findtext('{%s}max-file-size' % NS_UPLOAD) == str(MAX_FILE_SIZE)

    # Earlier tests stored a little over 1 MiB: one more file of almost
    # the maximum size fits the quota, a second one does not.
    size = MAX_FILE_SIZE - 1
    slot, error = await request_slot(client, 'fill.bin', size, 'application/octet-stream')
    assert error is None, str(error)
    assert put(slot_urls(slot)[0], b'\0' * size, 'application/octet-stream') == 201
    _, error = await request_slot(client, 'more.bin', size, 'application/octet-stream')
    assert error is not None and error['error']['condition'] == 'resource-constraint', (
        str(error))
    await client.close()


async def test_slots_count_against_the_quota_before_upload():
    # Slots handed out but not uploaded to yet use the quota too, so asking
    # for many slots cannot outrun it.
    client = await harness.login(server, HOARDER, PASSWORD)
    for name in ('a.bin', 'b.bin'):
        _, error = await request_slot(client, name, MAX_FILE_SIZE, 'application/octet-stream')
        assert error is None, str(error)
    _, error = await request_slot(client, 'c.bin', 1, 'application/octet-stream')
    assert error is not None and error['error']['condition'] == 'resource-constraint', str(error)
    await client.close()


async def test_disco_info_advertises_upload():
    client = await harness.login(server, ALICE, PASSWORD)
    info = await client['xep_0030'].get_info(jid=D)
    query = info.xml.find('{%s}query' % NS_DISCO_INFO)
    features = [f.get('var') for f in query.findall('{%s}feature' % NS_DISCO_INFO)]
    assert NS_UPLOAD in features, features
    for form in query.findall('{%s}x' % NS_DATA):
        fields = {f.get('var'): f.findtext('{%s}value' % NS_DATA)
                  for f in form.findall('{%s}field' % NS_DATA)}
        if fields.get('FORM_TYPE') == NS_UPLOAD:
            assert fields.get('max-file-size') == str(MAX_FILE_SIZE), fields
            break
    else:
        raise AssertionError('no upload form in ' + harness.tostring(query))
    await client.close()


def read_status(conn):
    response = conn.getresponse()
    response.read()
    return response


async def test_one_writer_per_slot():
    # Two PUTs to one slot at once: the second gets 409 while the first is
    # still sending, and the file published is the first one's, unchanged.
    client = await harness.login(server, ALICE, PASSWORD)
    first = b'1' * 200000
    second = b'2' * 200000
    slot, _ = await request_slot(client, 'race.bin', len(first), 'application/octet-stream')
    put_url, get_url = slot_urls(slot)
    headers = {'Content-Type': 'application/octet-stream', 'Content-Length': str(len(first))}
    slow = https()
    slow.putrequest('PUT', path_of(put_url))
    for name, value in headers.items():
        slow.putheader(name, value)
    slow.endheaders()
    slow.send(first[:100000])
    await asyncio.sleep(0.3)  # the server has the headers and half the body
    racer = https()
    racer.request('PUT', path_of(put_url), body=second, headers=headers)
    assert read_status(racer).status == 409
    racer.close()
    slow.send(first[100000:])
    assert read_status(slow).status == 201
    slow.close()
    assert put(put_url, second, 'application/octet-stream') == 409
    conn = https()
    conn.request('GET', path_of(get_url))
    response = conn.getresponse()
    assert response.read() == first
    conn.close()
    await client.close()


ORIGIN = 'https://webclient.example'


async def test_cors_for_web_pages():
    # A page on another origin uploads the way browsers do: a preflight
    # OPTIONS, then the PUT and the GET, each answer readable by the page.
    client = await harness.login(server, ALICE, PASSWORD)
    body = b'\x89PNG' + b'p' * 1000
    slot, _ = await request_slot(client, 'web.png', len(body), 'image/png')
    put_url, get_url = slot_urls(slot)
    conn = https()
    conn.request('OPTIONS', path_of(put_url),
                 headers={'Origin': ORIGIN, 'Access-Control-Request-Method': 'PUT',
                          'Access-Control-Request-Headers': 'content-type'})
    response = read_status(conn)
    assert response.status == 204, response.status
    assert response.getheader('Access-Control-Allow-Origin') == '*'
    methods = [m.strip() for m in response.getheader('Access-Control-Allow-Methods').split(',')]
    assert set(methods) >= {'PUT', 'GET', 'HEAD'}, methods
    assert 'content-type' in response.getheader('Access-Control-Allow-Headers').lower()
    assert int(response.getheader('Access-Control-Max-Age')) > 0
    conn.request('PUT', path_of(put_url), body=body,
                 headers={'Origin': ORIGIN, 'Content-Type': 'image/png'})
    response = read_status(conn)
    assert response.status == 201, response.status
    assert response.getheader('Access-Control-Allow-Origin') == '*'
    conn.request('GET', path_of(get_url), headers={'Origin': ORIGIN})
    response = conn.getresponse()
    assert response.read() == body
    assert response.getheader('Access-Control-Allow-Origin') == '*'
    # Errors are readable by the page too.
    conn.request('GET', path_of(get_url) + 'x', headers={'Origin': ORIGIN})
    response = read_status(conn)
    assert response.status == 404 and response.getheader('Access-Control-Allow-Origin') == '*'
    # A method or a header the route does not take: refused, and logged.
    conn.request('OPTIONS', path_of(put_url),
                 headers={'Origin': ORIGIN, 'Access-Control-Request-Method': 'DELETE'})
    response = read_status(conn)
    assert response.status == 403 and not response.getheader('Access-Control-Allow-Origin')
    conn.request('OPTIONS', path_of(put_url),
                 headers={'Origin': ORIGIN, 'Access-Control-Request-Method': 'PUT',
                          'Access-Control-Request-Headers': 'content-type, x-secret'})
    assert read_status(conn).status == 403
    conn.close()
    log = server.log_text()
    assert 'CORS preflight' in log and 'method not allowed' in log, server.log_tail()
    # Any page may, with the default http.allowed_origins "*": no Vary.
    assert response.getheader('Vary') is None
    await client.close()


def test_health_over_http_and_https():
    for conn in (http.client.HTTPConnection('127.0.0.1', server.http_port, timeout=5), https()):
        conn.request('GET', '/health')
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b'ok\n'
        assert response.getheader('Content-Type') == 'text/plain'
        conn.request('GET', '/no/such/thing')
        response = conn.getresponse()
        response.read()
        assert response.status == 404
        conn.close()


def read_response(sock, timeout):
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    data = b''
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_slow_client_gets_408():
    sock = socket.create_connection(('127.0.0.1', server.http_port))
    sock.sendall(b'GET /health HTTP/1.1\r\nHost: localhost\r\n')  # headers never end
    started = time.monotonic()
    data = read_response(sock, REQUEST_TIMEOUT + 5)
    elapsed = time.monotonic() - started
    assert data.startswith(b'HTTP/1.1 408 '), data
    assert REQUEST_TIMEOUT - 0.5 <= elapsed <= REQUEST_TIMEOUT + 2, elapsed
    sock.close()


def test_malformed_request_then_server_keeps_serving():
    sock = socket.create_connection(('127.0.0.1', server.http_port))
    sock.sendall(b'GET /health HTTP/1.1\r\nHost localhost\r\n\r\n')  # no colon
    data = read_response(sock, 5)
    assert data.startswith(b'HTTP/1.1 400 '), data
    sock.close()
    sock = socket.create_connection(('127.0.0.1', server.http_port))
    sock.sendall(b'GET /health HTTP/1.1\r\nX-Big: ' + b'a' * 20000 + b'\r\n\r\n')
    assert read_response(sock, 5).startswith(b'HTTP/1.1 431 ')
    sock.close()
    # Two pipelined requests on one connection, answered in order.
    sock = socket.create_connection(('127.0.0.1', server.http_port))
    sock.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'
                 b'GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    data = read_response(sock, 5)
    assert data.startswith(b'HTTP/1.1 200 ') and b'\r\n\r\nok\nHTTP/1.1 404 ' in data, data
    sock.close()


if __name__ == '__main__':
    harness.run([test_upload_then_download,
                 test_non_image_is_an_attachment,
                 test_tampered_signature_and_wrong_size_are_refused,
                 test_too_large_and_over_quota,
                 test_slots_count_against_the_quota_before_upload,
                 test_disco_info_advertises_upload,
                 test_one_writer_per_slot,
                 test_cors_for_web_pages,
                 test_health_over_http_and_https,
                 test_slow_client_gets_408,
                 test_malformed_request_then_server_keeps_serving],
                server=server, setup=setup)
