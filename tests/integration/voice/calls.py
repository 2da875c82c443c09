"""calls.py - the browser call harness: real WebRTC call participants for
the voice tests (test_voice_direct.py, test_voice_bridge.py).

Each participant is StanzaJS (npm `stanza`: Jingle RTP sessions; the
XEP-0353 elements are defined in page.js) in its own headless Chromium
(driven by npm `playwright-core`, peer.mjs), whose fake microphone plays a
WAV with a tone of the participant's own frequency. It logs in over the
server's WebSocket listener, takes its ICE servers from XEP-0215
(mod_extdisco), can force relay-only ICE, calls (JMI propose, then Jingle
session-initiate, audio only, Opus) or answers, and reports which
frequencies it hears (an averaged WebAudio spectrum) and getStats figures.

How to use it (a test in tests/integration/, which has this directory's
parent on sys.path):

    from voice import calls
    why = calls.missing()              # None, or why no call can run here
                                       # (raises with VN_REQUIRE_PEERS=1)
    bundle = calls.bundle(tmpdir)      # esbuild page.js -> tmpdir (once)
    coturn = calls.Coturn(tmpdir, config_text)   # optional: a TURN relay
    coturn.start(port) ... coturn.stop()   # config_text: `vestnikctl turn-config`
    alice = calls.Peer(bundle, tmpdir, 'alice', 440)   # tone of 440 Hz
    await alice.start()                # browser up
    await alice.connect(ws_url, 'alice@localhost', password, relay=True)
    await bob.answer('accept')         # or 'reject', 'ring', 'ignore'
    sid = await alice.call('bob@localhost')      # JMI propose to the bare JID
    await alice.wait_connected()       # ICE connected (an 'ice' event)
    heard = await alice.listen(3, [440, 660])    # {'levels': {'440': dB, ...}}
    stats = await alice.stats()        # packetsLost, jitter, candidate types
    await alice.hangup(); await alice.stop()

calls.heard(result) lists the frequencies heard (well above the spectrum's
median and near the loudest), calls.absent(result) those clearly not there
(far below the loudest: Opus leaves a little of everything). Pick tones
at least 50 Hz apart, between 200 and 3000 Hz. To call a room's bridge,
call() its JID (room@call.localhost): the session goes to the full JID
that answers <proceed/>; call(full_jid, jmi=False) skips XEP-0353.
ws_url is the server's WebSocket endpoint, wss://127.0.0.1:PORT/xmpp-websocket
(certificates are not checked). Every event the page reports (JMI elements
received, ICE and session states, console errors) is in peer.events;
peer.log() returns them as text for assertion messages.

Environment: VN_CHROMIUM (default /usr/bin/chromium), VN_PLAYWRIGHT_DIR (where
`npm install playwright-core` ran), VN_STANZA_DIR (where `npm install stanza
events esbuild` ran); .ci/run installs them. coturn is Debian's (`turnserver`).
"""

import asyncio
import json
import math
import os
import shutil
import socket
import struct
import subprocess
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = os.environ.get('VN_CHROMIUM', '/usr/bin/chromium')
PLAYWRIGHT = os.environ.get('VN_PLAYWRIGHT_DIR', '')
STANZA = os.environ.get('VN_STANZA_DIR', '')
TURNSERVER = shutil.which('turnserver') or '/usr/bin/turnserver'
HEARD_DB = 25.0     # a tone heard is this far above the spectrum's median,
HEARD_SPREAD = 20.0  # and at most this far below the loudest tone asked for;
ABSENT_DB = 35.0    # one absent is this far below the loudest (or not above the floor)


def missing(need_turn=False):
    """Why calls cannot run here, or None. With VN_REQUIRE_PEERS (or
    VN_REQUIRE_BROWSER) set, as in CI, a missing peer is an error."""
    why = _missing_why(need_turn)
    if why and (os.environ.get('VN_REQUIRE_PEERS') or os.environ.get('VN_REQUIRE_BROWSER')):
        raise SystemExit('VN_REQUIRE_PEERS is set but ' + why)
    return why


def _missing_why(need_turn):
    if not shutil.which('node'):
        return 'node not installed (.ci/run installs it)'
    if not os.access(CHROMIUM, os.X_OK):
        return '%s not installed (Debian chromium)' % CHROMIUM
    if not PLAYWRIGHT or not os.path.isdir(os.path.join(PLAYWRIGHT, 'node_modules',
                                                        'playwright-core')):
        return 'playwright-core not found (VN_PLAYWRIGHT_DIR; .ci/run installs it)'
    for package in ('stanza', 'events', 'esbuild'):
        if not STANZA or not os.path.isdir(os.path.join(STANZA, 'node_modules', package)):
            return 'npm %s not found (VN_STANZA_DIR; .ci/run installs it)' % package
    if need_turn and not os.access(TURNSERVER, os.X_OK):
        return 'coturn not installed (tools/install-deps installs it)'
    return None


def heard(result):
    """The frequencies (ints) a listen() result hears."""
    levels = {int(f): v for f, v in result['levels'].items()}
    loudest = max(levels.values())
    return sorted(f for f, v in levels.items() if v >= HEARD_DB and v >= loudest - HEARD_SPREAD)


def absent(result):
    """The frequencies (ints) a listen() result clearly does not hear."""
    levels = {int(f): v for f, v in result['levels'].items()}
    loudest = max(levels.values())
    return sorted(f for f, v in levels.items() if v < HEARD_DB and (
        v <= loudest - ABSENT_DB or loudest < HEARD_DB))


def bundle(directory):
    """page.js with StanzaJS, bundled for the browser into directory."""
    target = os.path.join(directory, 'voice-page.js')
    esbuild = os.path.join(STANZA, 'node_modules', '.bin', 'esbuild')
    result = subprocess.run(
        [esbuild, os.path.join(HERE, 'page.js'), '--bundle', '--format=iife',
         '--platform=browser', '--target=chrome100', '--log-level=warning',
         '--define:global=globalThis', '--outfile=' + target],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, NODE_PATH=os.path.join(STANZA, 'node_modules')))
    assert result.returncode == 0, 'esbuild failed: ' + result.stdout + result.stderr
    return target


def tone_wav(path, freq, seconds=4, rate=48000, amplitude=0.3):
    """A mono 16-bit WAV of one sine tone; Chromium loops it."""
    with wave.open(path, 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        # About a whole number of periods, so the loop has no click.
        frames = int(round(round(seconds * freq) * rate / freq))
        w.writeframes(b''.join(
            struct.pack('<h', int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)))
            for i in range(frames)))
    return path


def free_udp_tcp_ports(count):
    """Ports free for both TCP and UDP on 127.0.0.1."""
    ports = []
    while len(ports) < count:
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.bind(('127.0.0.1', 0))
            port = t.getsockname()[1]
            try:
                u.bind(('127.0.0.1', port))
            except OSError:
                continue
            if port not in ports:
                ports.append(port)
    return ports


class Coturn:
    """Debian's coturn (turnserver) with a configuration file written by
    `vestnikctl turn-config` (or by the test), in its own directory. Extra
    command-line options (--allow-loopback-peers in tests) go in args."""

    def __init__(self, directory, config_text, args=()):
        self.dir = directory
        self.config_path = os.path.join(directory, 'turnserver.conf')
        self.log_path = os.path.join(directory, 'turnserver.log')
        with open(self.config_path, 'w') as f:
            f.write(config_text)
        self.args = list(args)
        self.proc = None

    def start(self, port, timeout=15):
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(
                # Verbose: the log tells each allocation's relayed packets.
                [TURNSERVER, '-c', self.config_path, '--log-file', 'stdout', '--no-cli', '-v',
                 '--pidfile', os.path.join(self.dir, 'turnserver.pid'),
                 '--userdb', os.path.join(self.dir, 'turndb')] + self.args,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, 'turnserver exited: ' + self.log_tail()
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, 'turnserver not listening: ' + self.log_tail()
                time.sleep(0.1)

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return '(no log)'

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class Peer:
    """One participant: peer.mjs and its browser, with a tone of its own."""

    def __init__(self, bundle_path, directory, name, freq):
        self.name = name
        self.freq = freq
        self.wav = tone_wav(os.path.join(directory, '%s-%d.wav' % (name, freq)), freq)
        self.bundle = bundle_path
        self.proc = None
        self.events = []
        self._replies = {}
        self._serial = 0
        self._event_added = None
        self._reader = None
        self.stderr_path = os.path.join(directory, '%s-peer.log' % name)

    async def start(self, timeout=60):
        settings = {'playwright': PLAYWRIGHT, 'chromium': CHROMIUM, 'bundle': self.bundle,
                    'wav': self.wav}
        self._event_added = asyncio.Event()
        self._stderr = open(self.stderr_path, 'wb')
        self.proc = await asyncio.create_subprocess_exec(
            'node', os.path.join(HERE, 'peer.mjs'), json.dumps(settings),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self._stderr,
            limit=1 << 20)
        self._reader = asyncio.ensure_future(self._read())
        await self.wait_event(lambda e: e.get('event') == 'ready', timeout)

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            message = json.loads(line)
            if 'id' in message and 'event' not in message:
                self._replies[message['id']] = message
            else:
                message['t'] = time.monotonic()
                self.events.append(message)
            self._event_added.set()

    async def _until(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            found = predicate()
            if found is not None:
                return found
            if self.proc.returncode is not None or self._reader.done():
                raise AssertionError('%s: peer.mjs exited while waiting for %s\n%s'
                                     % (self.name, what, self.log()))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError('%s: no %s within %ds\n%s'
                                     % (self.name, what, timeout, self.log()))
            self._event_added.clear()
            try:
                await asyncio.wait_for(self._event_added.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def request(self, method, *args, timeout=60):
        self._serial += 1
        serial = self._serial
        self.proc.stdin.write((json.dumps({'id': serial, 'method': method,
                                           'args': list(args)}) + '\n').encode())
        await self.proc.stdin.drain()
        reply = await self._until(lambda: self._replies.pop(serial, None), timeout,
                                  'answer to ' + method)
        if not reply['ok']:
            raise AssertionError('%s: %s failed: %s\n%s' % (self.name, method, reply['error'],
                                                             self.log()))
        return reply['result']

    async def wait_event(self, predicate, timeout=30, since=0):
        """The first event (from index since) for which predicate is true."""
        def find():
            for event in self.events[since:]:
                if predicate(event):
                    return event
            return None
        return await self._until(find, timeout, 'matching event')

    def log(self):
        lines = [json.dumps(e) for e in self.events[-60:]]
        try:
            with open(self.stderr_path, errors='replace') as f:
                lines.append(f.read()[-3000:])
        except OSError:
            pass
        return '\n'.join(lines)

    async def connect(self, ws_url, jid, password, resource=None, relay=True, types=None):
        """types: use only the XEP-0215 services of these types ('turns')."""
        return await self.request('connect', {'url': ws_url, 'jid': jid, 'password': password,
                                              'resource': resource or self.name,
                                              'relay': relay, 'types': types})

    async def answer(self, mode):
        return await self.request('answer', mode)

    async def call(self, to, jmi=True):
        return await self.request('call', to, {'jmi': jmi})

    async def wait_connected(self, timeout=30):
        return await self.wait_event(lambda e: e.get('event') == 'ice' and e.get('state') in (
            'connected', 'completed'), timeout)

    async def listen(self, seconds, freqs):
        return await self.request('listen', seconds, list(freqs), timeout=seconds + 30)

    async def stats(self):
        return await self.request('stats')

    async def redirect(self, ip, port):
        """The bridge's or callee's candidates this peer sees from now on
        become ip:port (a relay of the test's); 'redirected' events tell
        the originals."""
        return await self.request('redirect', {'ip': ip, 'port': port})

    async def hangup(self):
        return await self.request('hangup')

    async def send_jmi(self, to, action, sid):
        return await self.request('sendJmi', to, action, sid)

    async def stop(self):
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await self._reader
        self._stderr.close()
        self.proc = None
