"""nats.py - a real nats-server for the tests, in a temporary directory.

NatsServer().start() runs nats-server (Debian's nats-server package) on a
free loopback port with its own directory, logging to a file there; url
is what vestnikd's cluster.nats_url takes. Without nats-server installed
missing_reason() says why, and a test skips, unless VN_REQUIRE_PEERS=1
(required()), which makes that a failure.

Only the standard library is used.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness


def find_server():
    """VN_NATS_SERVER, or nats-server on PATH, or Debian's /usr/sbin one."""
    explicit = os.environ.get('VN_NATS_SERVER')
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which('nats-server')
    if found:
        return found
    return '/usr/sbin/nats-server' if os.access('/usr/sbin/nats-server', os.X_OK) else None


def missing_reason():
    if find_server() is None:
        return 'nats-server is not installed (.ci/run installs nats-server)'
    return None


def required():
    return os.environ.get('VN_REQUIRE_PEERS') == '1'


class NatsServer:
    """One nats-server of its own on 127.0.0.1."""

    def __init__(self, jetstream=False):
        self.program = find_server()
        assert self.program, missing_reason()
        self.dir = tempfile.mkdtemp(prefix='vn-nats-')
        self.log_path = os.path.join(self.dir, 'nats-server.log')
        self.port = harness.free_ports(1)[0]
        self.url = 'nats://127.0.0.1:%d' % self.port
        self.jetstream = jetstream
        self.proc = None

    def start(self, timeout=20):
        args = [self.program, '-a', '127.0.0.1', '-p', str(self.port), '-l', self.log_path]
        if self.jetstream:
            args += ['-js', '-sd', os.path.join(self.dir, 'jetstream')]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError('nats-server exited with %d; log:\n%s'
                                     % (self.proc.returncode, self.log_tail()))
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError('nats-server did not listen within %ds' % timeout)
                time.sleep(0.05)

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, errors='replace') as f:
                return '\n'.join(f.read().splitlines()[-lines:])
        except FileNotFoundError:
            return ''

    def stop(self, timeout=10):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
