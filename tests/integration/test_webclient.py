#!/usr/bin/env python3
"""test_webclient.py - the web client vestnikd serves itself (modules/webclient).

Over HTTPS with http.client: the page, its generated script and style
(branding from the config, escaped), Converse.js's files with their content
types, caching headers, conditional requests and gzip, nosniff and a CSP on
every answer, HEAD, 405 for other methods, 404 for missing files and every way
out of the root (dot segments raw and encoded, hidden files, NUL,
backslash), /health and the other routes kept, and a reload (SIGHUP) that
changes the page and moves it to /chat/.

Then a user's first session in Debian's headless Chromium, driven by
playwright-core (webclient_browser.mjs), once over WebSocket and once over
BOSH: log in through the form, add a contact (a slixmpp client that accepts
and answers), chat, reload and see the history, join a room, upload a
picture, and a second browser (a new profile) that sees the archived chat
and the room bookmark; every request the pages make must go to the server's own origin, and
nothing may be refused by the page's CSP. Screenshots of failed steps are
kept in the server's temporary directory (the path is printed).

The browser steps are skipped when Chromium (VN_CHROMIUM, default
/usr/bin/chromium) or playwright-core (VN_PLAYWRIGHT_DIR: a directory where
`npm install playwright-core` ran) is missing; .ci/run installs both.
The web client's files come from the build tree's webclient/ (`make`
fetches Converse.js there).
"""

import asyncio
import concurrent.futures
import gzip
import http.client
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import zlib

import harness

D = harness.DOMAIN
PASSWORD = 'secret-password'
NAME = 'Vestnik "test" </script>'
CHROMIUM = os.environ.get('VN_CHROMIUM', '/usr/bin/chromium')
PLAYWRIGHT = os.environ.get('VN_PLAYWRIGHT_DIR', '')
WEBCLIENT_ROOT = os.path.join(harness.builddir(), 'webclient')
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'webclient_browser.mjs')
MODULES = ('roster', 'presence', 'offline', 'vcard', 'private', 'carbons', 'mam', 'pep',
           'muc', 'upload')


class Server(harness.Server):
    def __init__(self):
        self.https_port, = harness.free_ports(1)
        self.transports = 'websocket,bosh'
        self.name = NAME
        self.path = '/'
        self.language = 'ru'
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
        text += ''.join('  %s:\n' % name for name in MODULES)
        text += (f'  webclient:\n'
                 f'    path: {self.path}\n'
                 f'    root: {WEBCLIENT_ROOT}\n'
                 f'    name: {json.dumps(self.name)}\n'
                 f'    primary_color: "#123456"\n'
                 f'    language: {self.language}\n'
                 f'    logo: {self.logo_path()}\n'
                 f'    transports: {self.transports}\n'
                 f'    theme: classic\n'
                 f'    extra_sources: ""\n')
        with open(self.config_path, 'w') as f:
            f.write(text)

    def logo_path(self):
        return os.path.join(self.dir, 'logo.png')


server = Server()


def png(width=16, height=16, rgb=(200, 30, 30)):
    """A small PNG image, made here."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body))
    rows = b''.join(b'\0' + bytes(rgb) * width for _ in range(height))
    return (b'\x89PNG\r\n\x1a\n'
            + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


def setup():
    assert os.path.isfile(os.path.join(WEBCLIENT_ROOT, 'dist', 'converse.min.js')), (
        '%s has no Converse.js: `make` fetches it with npm (see its warning)' % WEBCLIENT_ROOT)
    with open(server.logo_path(), 'wb') as f:
        f.write(png(rgb=(0, 90, 200)))
    for user in ('alice', 'bob', 'carol', 'dave'):
        server.adduser('%s@%s' % (user, D), PASSWORD)


def https():
    return http.client.HTTPSConnection('127.0.0.1', server.https_port, timeout=10,
                                       context=harness.insecure_tls_context())


def get(path, method='GET', headers=None):
    conn = https()
    try:
        conn.request(method, path, headers=dict({'Host': 'localhost:%d' % server.https_port},
                                                **(headers or {})))
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def raw_get(path):
    """The status of a request line sent as is (no client normalisation)."""
    sock = socket.create_connection(('127.0.0.1', server.https_port), timeout=10)
    sock = harness.insecure_tls_context().wrap_socket(sock, server_hostname=D)
    try:
        sock.sendall(b'GET ' + path + b' HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
        data = b''
        while b'\r\n' not in data:
            piece = sock.recv(4096)
            if not piece:
                break
            data += piece
        return int(data.split(b' ', 2)[1])
    finally:
        sock.close()


def check_common_headers(headers):
    assert headers.get('x-content-type-options') == 'nosniff', headers
    csp = headers.get('content-security-policy', '')
    assert "default-src 'none'" in csp and "script-src 'self'" in csp, csp
    assert "connect-src 'self' wss://localhost:%d" % server.https_port in csp, csp
    assert 'http' not in csp.replace('wss://localhost', ''), csp
    assert "frame-ancestors 'none'" in csp, csp


# ------------------------------------------------------------- over HTTP

def test_page():
    status, headers, body = get('/')
    assert status == 200, (status, body)
    assert headers['content-type'] == 'text/html; charset=utf-8', headers
    assert headers['cache-control'] == 'no-cache', headers
    check_common_headers(headers)
    text = body.decode()
    assert '<script type="module" src="vestnik-webclient.js"></script>' in text, text
    assert '<html lang="ru">' in text, text
    assert '<title>Vestnik &quot;test&quot; &lt;/script&gt;</title>' in text, text
    assert 'http' not in text, 'the page names another site: ' + text
    status, _, again = get('/index.html')
    assert status == 200 and again == body


def test_generated_script_and_style():
    status, headers, body = get('/vestnik-webclient.js')
    assert status == 200, status
    assert headers['content-type'] == 'text/javascript; charset=utf-8', headers
    check_common_headers(headers)
    text = body.decode()
    assert "import converse from './dist/converse.min.js';" in text, text
    # The name is a JSON string in which nothing can end the script.
    assert '"name": "Vestnik \\"test\\" \\u003c/script\\u003e"' in text, text
    assert '</script>' not in text
    for setting in ("discover_connection_methods: false", "xmpp_providers_url: ''",
                    "use_system_emojis: true", "embed_3rd_party_media_players: false",
                    "i18n: site.language", "muc_domain: site.muc_domain || 'conference.' + domain"):
        assert setting in text, setting
    assert '"hosts": ["localhost"]' in text and '"language": "ru"' in text, text
    status, headers, body = get('/vestnik-webclient.css')
    assert status == 200 and headers['content-type'] == 'text/css; charset=utf-8', headers
    assert '--primary-color: #123456 !important;' in body.decode(), body


def test_converse_files():
    for path, content_type in (('/dist/converse.min.js', 'text/javascript; charset=utf-8'),
                               ('/dist/converse.min.css', 'text/css; charset=utf-8'),
                               ('/dist/emoji.json', 'application/json'),
                               ('/dist/webfonts/muli.ttf', 'font/ttf'),
                               ('/dist/images/favicon.ico', 'image/vnd.microsoft.icon'),
                               ('/curve25519_compiled.wasm', 'application/wasm')):
        status, headers, body = get(path)
        assert status == 200, (path, status, body[:200])
        assert headers['content-type'] == content_type, (path, headers)
        assert headers['cache-control'] == 'public, max-age=86400', (path, headers)
        check_common_headers(headers)
        assert int(headers['content-length']) == len(body) > 0
    with open(os.path.join(WEBCLIENT_ROOT, 'dist', 'converse.min.js'), 'rb') as f:
        on_disk = f.read()
    status, headers, body = get('/dist/converse.min.js')
    assert body == on_disk, 'converse.min.js differs from the file (%d of %d bytes)' % (
        len(body), len(on_disk))
    # Conditional request, and HEAD: headers without the body.
    status, _, body = get('/dist/converse.min.js', headers={'If-None-Match': headers['etag']})
    assert status == 304 and body == b'', status
    for match in ('"other", W/' + headers['etag'], '*'):
        assert get('/dist/converse.min.js', headers={'If-None-Match': match})[0] == 304, match
    assert get('/dist/converse.min.js', headers={'If-None-Match': '"other"'})[0] == 200
    status, page_headers, _ = get('/')
    assert get('/', headers={'If-None-Match': page_headers['etag']})[0] == 304
    status, head_headers, body = get('/dist/converse.min.js', method='HEAD')
    assert status == 200 and body == b'', status
    assert head_headers['content-length'] == str(len(on_disk)), head_headers
    # Compressed for browsers that take it (the .gz made at build time).
    assert 'content-encoding' not in headers and headers['vary'] == 'Accept-Encoding', headers
    status, gz_headers, body = get('/dist/converse.min.js',
                                   headers={'Accept-Encoding': 'gzip, deflate, br'})
    assert status == 200 and gz_headers.get('content-encoding') == 'gzip', gz_headers
    assert gz_headers['content-type'] == 'text/javascript; charset=utf-8', gz_headers
    assert gzip.decompress(body) == on_disk and len(body) < len(on_disk) / 2, len(body)
    assert gz_headers['etag'] != headers['etag'], 'one ETag for two representations'
    status, plain_headers, body = get('/dist/converse.min.js',
                                      headers={'Accept-Encoding': 'gzip;q=0, br'})
    assert 'content-encoding' not in plain_headers and body == on_disk, plain_headers


def test_many_first_requests_at_once():
    """A crowd asking for a file not read yet: each gets all of it (they wait
    for one read), with and without gzip."""
    import concurrent.futures
    with open(os.path.join(WEBCLIENT_ROOT, 'dist', 'converse.js'), 'rb') as f:
        on_disk = f.read()

    def fetch(n):
        headers = {'Accept-Encoding': 'gzip'} if n % 2 else {}
        status, got_headers, body = get('/dist/converse.js', headers=headers)
        if got_headers.get('content-encoding') == 'gzip':
            body = gzip.decompress(body)
        return status, body == on_disk
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(fetch, range(32)))
    assert results == [(200, True)] * 32, results
    server.assert_running()


def test_logo():
    status, headers, body = get('/logo')
    assert status == 200 and headers['content-type'] == 'image/png', (status, headers)
    with open(server.logo_path(), 'rb') as f:
        assert body == f.read()


def test_errors():
    status, headers, _ = get('/', method='POST')
    assert status == 405 and headers.get('allow') == 'GET, HEAD', (status, headers)
    check_common_headers(headers)
    status, _, _ = get('/dist/no-such-file.js')
    assert status == 404, status
    status, _, _ = get('/dist')  # a directory, not a file
    assert status == 404, status
    # Ways out of the root, as the request line sends them.
    secret = os.path.join(server.dir, 'secret.txt')
    with open(secret, 'w') as f:
        f.write('secret')
    outside = os.path.relpath(secret, WEBCLIENT_ROOT).encode()
    for path in (b'/../' + outside, b'/dist/../../' + outside, b'/dist/%2e%2e/VERSION',
                 b'/dist/%2E%2E/%2e%2e/' + outside.replace(b'/', b'%2f'),
                 b'/dist/..%2fVERSION', b'/.hidden', b'/dist/./converse.min.js',
                 b'/dist//converse.min.js', b'/dist/converse.min.js%00.png',
                 b'/dist\\converse.min.js', b'/dist/%5c..%5cVERSION', b'/%zz'):
        assert raw_get(path) in (400, 404), path
    # The file the dot segments would reach is there.
    status, _, body = get('/VERSION')
    assert status == 200 and body.strip() == b'14.0.0', (status, body)
    server.assert_running()


def test_routes_of_others_stay():
    status, headers, body = get('/.well-known/host-meta.json')
    assert status == 200, status
    links = json.loads(body)['links']
    assert any(link['href'].endswith('/xmpp-websocket') for link in links), links
    status, _, _ = get('/http-bind', method='GET')
    assert status != 404, 'BOSH taken by the web client'
    status, _, body = get('/health')
    assert status == 200 and body == b'ok\n', (status, body)


def reload_until(path, text):
    server.write_config()
    server.reload()
    deadline = time.monotonic() + 10
    while True:
        status, _, body = get(path)
        if status == 200 and text in body:
            return
        assert time.monotonic() < deadline, 'no %r at %s after SIGHUP' % (text, path)
        time.sleep(0.2)


def test_reload_changes_the_page():
    server.name = 'Renamed'
    reload_until('/', b'<title>Renamed</title>')
    # Elsewhere than "/".
    server.path = '/chat/'
    reload_until('/chat/', b'<title>Renamed</title>')
    status, headers, _ = get('/chat')
    assert status == 301 and headers['location'] == '/chat/', (status, headers)
    assert get('/chat/dist/converse.min.css')[0] == 200
    assert '"assets": "/chat/dist"' in get('/chat/vestnik-webclient.js')[2].decode()
    for path in ('/', '/index.html', '/chatroom', '/dist/converse.min.css'):
        assert get(path)[0] == 404, path
    # Chinese: Converse's zh_CN, and a BCP 47 tag for the page.
    server.language = 'zh'
    reload_until('/chat/', b'<html lang="zh-CN">')
    assert '"language": "zh_CN"' in get('/chat/vestnik-webclient.js')[2].decode()
    server.name = NAME
    server.path = '/'
    server.language = 'ru'
    reload_until('/', b'<title>Vestnik')


def test_make_install_puts_it_where_the_module_looks():
    """`make install` copies Converse.js to the module's default root."""
    destdir = os.path.join(server.dir, 'destdir')
    result = subprocess.run(['make', '-s', '-C', harness.builddir(), 'install-webclient',
                             'DESTDIR=' + destdir], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    found = [os.path.join(d, f)[len(destdir):] for d, _, files in os.walk(destdir)
             for f in files if f == 'converse.min.js']
    assert len(found) == 1, found
    root = os.path.dirname(os.path.dirname(found[0]))
    with open(os.path.join(harness.builddir(), 'modules', '.libs', 'mod_webclient.so'),
              'rb') as f:
        assert (root + '\0').encode() in f.read(), 'the default root is not ' + root
    with open(os.path.join(destdir + root, 'dist', 'converse.min.js'), 'rb') as f, \
            open(os.path.join(WEBCLIENT_ROOT, 'dist', 'converse.min.js'), 'rb') as g:
        assert f.read() == g.read()


def test_bad_values_refused_with_their_line():
    """--check-config finds a bad webclient setting, with its line."""
    with open(server.config_path) as f:
        good_text = f.read()
    for bad, why in (
            ('    path: chat/', "key 'path' must start with /"),
            ('    path: /a/../b/', "key 'path' must be a path of plain segments"),
            ('    path: /%61/', "key 'path' must be a path of plain segments"),
            ('    logo: logo.png', "key 'logo' must be the absolute name of a file"),
            ('    language: russian', "key 'language' must be a locale such as"),
            ('    theme: pink', "key 'theme' must be one of classic, dracula, cyberpunk, nordic"),
            ('    primary_color: red', "key 'primary_color' must be #rgb or #rrggbb"),
            ('    transports: smoke', "key 'transports' names a transport other than"),
            ('    transports: ","', "key 'transports' must name websocket, bosh or both"),
            ('    extra_sources: "https://x.example; script-src *"',
             "key 'extra_sources' must be origins separated by spaces")):
        key = bad.split(':')[0]
        lines = good_text.splitlines()
        where = next(i for i, line in enumerate(lines)
                     if line.startswith(key + ':') and i > lines.index('  webclient:'))
        lines[where] = bad
        path = os.path.join(server.dir, 'bad.yaml')
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        result = subprocess.run([server.daemon, '--check-config', '-c', path],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 1, (bad, result.stdout + result.stderr)
        assert ':%d: modules.webclient: %s' % (where + 1, why) in result.stderr, (
            bad, result.stderr)


# -------------------------------------------------------- in the browser

def browser_missing():
    """Why the browser steps cannot run here, or None. With
    VN_REQUIRE_BROWSER set (CI) that is an error, never a skip."""
    why = browser_missing_why()
    if why and os.environ.get('VN_REQUIRE_BROWSER'):
        raise SystemExit('VN_REQUIRE_BROWSER is set but ' + why)
    return why


def browser_missing_why():
    if not shutil.which('node'):
        return 'node not installed (.ci/run installs it)'
    if not os.access(CHROMIUM, os.X_OK):
        return '%s not installed (Debian chromium; .ci/run installs it)' % CHROMIUM
    if not PLAYWRIGHT or not os.path.isdir(os.path.join(PLAYWRIGHT, 'node_modules',
                                                        'playwright-core')):
        return 'playwright-core not found (VN_PLAYWRIGHT_DIR; .ci/run installs it)'
    return None


STEPS = ('login page shown', 'log in through the form', 'add a contact',
         'chat with the contact', 'history after a reload', 'join a room',
         'upload a picture', 'a second browser sees the archived chat',
         'the second browser sees the room bookmark',
         'the %s transport was used', "every request went to the server's own origin")
results = {}


async def answering_peer(jid):
    """A contact that accepts subscriptions and answers every chat."""
    peer = harness.Client(jid, PASSWORD)
    peer.roster.auto_authorize = True
    peer.roster.auto_subscribe = True

    def answer(msg):
        if msg['type'] in ('chat', 'normal') and msg['body']:
            peer.send_message(mto=msg['from'].bare, mbody='re: ' + msg['body'], mtype='chat')
    peer.add_event_handler('message', answer)
    await peer.login(server)
    peer.send_presence()
    return peer


def use_transport(transport):
    server.transports = transport
    server.write_config()
    server.reload()
    deadline = time.monotonic() + 10
    want = '"websocket": %s' % ('true' if 'websocket' in transport else 'false')
    while want not in get('/vestnik-webclient.js')[2].decode():
        assert time.monotonic() < deadline, 'the script did not change on SIGHUP'
        time.sleep(0.2)


async def browser_session(transport, user, peer_user):
    use_transport(transport)
    image = os.path.join(server.dir, 'picture-%s.png' % transport)
    with open(image, 'wb') as f:
        f.write(png())
    shots = os.path.join(server.dir, 'screenshots')
    os.makedirs(shots, exist_ok=True)
    peer = await answering_peer('%s@%s' % (peer_user, D))
    settings = {
        'url': 'https://localhost:%d/' % server.https_port,
        'jid': '%s@%s' % (user, D), 'password': PASSWORD,
        'peer': '%s@%s' % (peer_user, D), 'room': 'webroom-%s@conference.%s' % (transport, D),
        'image': image, 'transport': transport, 'shots': shots,
        'playwright': PLAYWRIGHT, 'chromium': CHROMIUM,
    }
    node = await asyncio.create_subprocess_exec(
        'node', SCRIPT, json.dumps(settings), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    got = {}
    try:
        while True:
            line = await asyncio.wait_for(node.stdout.readline(), 120)
            if not line:
                break
            event = json.loads(line)
            got[event['step']] = event
        await asyncio.wait_for(node.wait(), 30)
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
        await peer.close()
    stderr = (await node.stderr.read()).decode(errors='replace')
    for name in STEPS:
        name = name % transport if '%s' in name else name
        results[(transport, name)] = got.get(name) or {
            'ok': False, 'error': 'the browser script stopped before this step (exit %s): %s'
            % (node.returncode, stderr[-2000:]), 'screenshot': None}
    server.assert_running()


def browser_tests(transport, user, peer_user):
    missing = browser_missing()
    tests = []

    async def session():
        await browser_session(transport, user, peer_user)
    session.__name__ = '%s: the browser session ran' % transport
    tests.append(session)
    for name in STEPS:
        name = name % transport if '%s' in name else name

        def check(name=name):
            result = results.get((transport, name))
            assert result is not None, 'the browser session did not run'
            if not result['ok']:
                shot = result.get('screenshot')
                raise AssertionError('%s%s' % (result['error'],
                                               '\nscreenshot: %s' % shot if shot else ''))
        check.__name__ = '%s: %s' % (transport, name)
        tests.append(check)
    if missing:
        for test in tests:
            def skipped():
                pass
            skipped.__name__ = '%s # SKIP %s' % (test.__name__, missing)
            tests[tests.index(test)] = skipped
    return tests


def converse_caps_cached():
    """Converse's entity capabilities verify (XEP-0115) and are cached: its
    four sessions above cost the server one disco#info query in all."""
    log = server.log_text()
    assert 'do not hash to their ver' not in log, server.log_tail()
    queries = re.findall(r"SEND <iq type='get' id='pep-caps-[0-9]+' [^>]*"
                         r"to='[^']*/converse\.js-[^']*'", log)
    assert len(queries) == 1, queries


def caps_test():
    missing = browser_missing()
    if not missing:
        return converse_caps_cached

    def skipped():
        pass
    skipped.__name__ = 'converse_caps_cached # SKIP %s' % missing
    return skipped


if __name__ == '__main__':
    harness.run([test_page, test_generated_script_and_style, test_converse_files,
                 test_many_first_requests_at_once, test_logo,
                 test_errors, test_routes_of_others_stay, test_reload_changes_the_page,
                 test_bad_values_refused_with_their_line,
                 test_make_install_puts_it_where_the_module_looks]
                + browser_tests('websocket', 'alice', 'bob')
                + browser_tests('bosh', 'carol', 'dave') + [caps_test()],
                server=server, setup=setup, timeout=240)
