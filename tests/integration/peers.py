"""peers.py - real Prosody and ejabberd instances for the federation tests.

Federation can only be shown against other servers, so a test starts the
Debian packages' binaries on loopback, each with a generated config, its own
domain, loopback address, self-signed certificate, data directory and
accounts, and stops them cleanly at the end. Nothing is installed here and
the packages' own services are left as they were: system_service_paused()
stops a running one for the whole test (it would hold port 5269 on every
address, vestnik's included) and starts it again afterwards.

Servers find each other the way they would on the Internet minus SRV
records: every server's s2s listener is on port 5269 of its own loopback
address, and each domain resolves to that address through lines in
/etc/hosts (ejabberd resolves through getaddrinfo and has no other way;
Prosody reads the file through libunbound's hoststxt option), while vestnik
has s2s_peers entries. The lines carry a marker and are removed when the
peers stop. The addresses, 127.A.B.1 to .3 with A and B taken from the
process id, differ between test runs, so a vestnikd of one run never holds
another's port, and a lock file keeps the peers of two runs at once (two
engineers, two checkouts) from overlapping. A peer's clients connect to
127.0.0.1 on a free port (c2s_port), like the harness's clients to
vestnikd, so harness.Client logs in to either.

Running the peers needs root (Prosody is started as user prosody, ejabberd
as user ejabberd) and the Debian packages prosody, lua-unbound and ejabberd;
missing() says which binary is absent so a test can skip.
"""

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time

_SUBNET = '127.%d.%d.' % (1 + (os.getpid() >> 8) % 254, os.getpid() & 0xff)
VESTNIK_DOMAIN = 'vestnik.test'
VESTNIK_ADDRESS = _SUBNET + '1'
PROSODY_DOMAIN = 'prosody.test'
PROSODY_ADDRESS = _SUBNET + '2'
EJABBERD_DOMAIN = 'ejabberd.test'
EJABBERD_ADDRESS = _SUBNET + '3'
S2S_PORT = 5269

HOSTS_FILE = '/etc/hosts'
HOSTS_MARKER = '# vestnik federation test'
LOCK_FILE = '/tmp/vestnik-federation.lock'


def _peer_tempdir(prefix, owner):
    """A directory the peer's own user can reach.

    The test runner's TMPDIR is private to root, so the peers' files live
    directly under /tmp, owned by the user the peer runs as.
    """
    path = tempfile.mkdtemp(prefix=prefix, dir='/tmp')
    os.chmod(path, 0o750)
    shutil.chown(path, owner, owner)
    return path


def _run(args, timeout=60, **kwargs):
    result = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise AssertionError('%s exited with %d: %s%s' % (
            ' '.join(args), result.returncode, result.stdout, result.stderr))
    return result.stdout


def _wait_listening(address, port, deadline, alive, describe):
    while True:
        if not alive():
            raise AssertionError('%s exited during start-up\n%s' % describe())
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError('%s did not listen on %s:%d in time\n%s'
                                     % (describe()[0], address, port, describe()[1]))
            time.sleep(0.1)


def _tail(path, lines=40):
    if path is None:
        return '(not started)'
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return '(no log at %s)' % path


def self_signed_certificate(directory, domain, owner):
    """(certificate, key) PEM paths for domain and its subdomains, readable by owner."""
    cert = os.path.join(directory, domain + '.crt')
    key = os.path.join(directory, domain + '.key')
    _run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
          '-subj', '/CN=' + domain,
          '-addext', 'subjectAltName=DNS:%s,DNS:*.%s' % (domain, domain),
          '-keyout', key, '-out', cert])
    for path in (cert, key):
        shutil.chown(path, owner, owner)
        os.chmod(path, 0o640)
    return cert, key


@contextlib.contextmanager
def _exclusive(path, timeout=180):
    """Held by one test run at a time, across processes."""
    with open(path, 'a') as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError('another test run held %s for %ds' % (path, timeout))
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _hosts_entries(entries):
    """(name, address) lines in /etc/hosts, marked; lines a killed run left
    behind are replaced, and all marked lines are gone on exit."""
    def rewrite(extra):
        with open(HOSTS_FILE) as f:
            kept = [line for line in f if not line.rstrip().endswith(HOSTS_MARKER)]
        if kept and not kept[-1].endswith('\n'):
            kept[-1] += '\n'
        with open(HOSTS_FILE, 'w') as f:
            f.writelines(kept + extra)

    rewrite(['%s %s %s\n' % (address, name, HOSTS_MARKER) for name, address in entries])
    try:
        yield
    finally:
        rewrite([])


class Peer:
    """What Prosody and ejabberd have in common: a domain, an address, accounts."""

    binary = None        # what missing() looks for
    ctl_program = None   # status/stop of the system instance
    user = None          # the system user the peer runs as
    service = None       # the init system's name for it

    def __init__(self, domain, address):
        self.domain = domain
        self.muc_domain = 'conference.' + domain
        self.address = address
        self.s2s_port = S2S_PORT
        self.c2s_port = self._free_port()
        self.dir = None
        self.log_path = None
        self.running = False
        self.keep_files = False

    @staticmethod
    def _free_port():
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            return s.getsockname()[1]

    def domains(self):
        """The domains this peer serves: its host and its chat room service."""
        return [self.domain, self.muc_domain]

    @classmethod
    def missing(cls):
        """The name of the absent program, or None when the peer can run."""
        return None if shutil.which(cls.binary) else cls.binary

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=60):
        """Files, certificate and config written, then the server started."""
        deadline = time.monotonic() + timeout
        try:
            self.dir = _peer_tempdir('vestnik-%s-' % self.user, self.user)
            self.cert, self.key = self_signed_certificate(self.dir, self.domain, self.user)
            self._write_files()
            self.running = True
            self._launch()
            for port, address in ((self.c2s_port, '127.0.0.1'), (self.s2s_port, self.address)):
                _wait_listening(address, port, deadline, self._alive,
                                lambda: (type(self).__name__, self.log_tail()))
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop()
            raise

    def stop(self):
        """Shut down and remove the files, unless keep_files says a failure
        is to be looked into."""
        try:
            if self.running:
                self.running = False
                self._shut_down()
        finally:
            if self.dir and not self.keep_files:
                shutil.rmtree(self.dir, ignore_errors=True)

    # The packages' control programs see the system instance whatever the
    # init system (Debian 12's sysvinit script for prosody cannot stop it:
    # it looks for a process named lua5.2); starting it again is the init
    # system's job.
    @classmethod
    def system_service_running(cls):
        return subprocess.run([cls.ctl_program, 'status'], stdin=subprocess.DEVNULL,
                              capture_output=True).returncode == 0

    @classmethod
    def stop_system_service(cls):
        _run([cls.ctl_program, 'stop'])

    @classmethod
    def start_system_service(cls):
        _run(['service', cls.service, 'start'])


# ------------------------------------------------------------------- Prosody

class Prosody(Peer):
    """Prosody 0.12 in the foreground as user prosody, with a MUC service."""

    binary = 'prosody'
    ctl_program = 'prosodyctl'
    user = 'prosody'
    service = 'prosody'

    def __init__(self, domain=PROSODY_DOMAIN, address=PROSODY_ADDRESS):
        super().__init__(domain, address)
        self.proc = None

    def _write_files(self):
        self.config_path = os.path.join(self.dir, 'prosody.cfg.lua')
        self.log_path = os.path.join(self.dir, 'prosody.log')
        self.data_dir = os.path.join(self.dir, 'data')
        os.mkdir(self.data_dir, 0o750)
        shutil.chown(self.data_dir, self.user, self.user)
        text = f"""-- written by tests/integration/peers.py
pidfile = "{self.dir}/prosody.pid"
data_path = "{self.data_dir}"
log = {{ debug = "{self.log_path}" }}
c2s_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.c2s_port} }}
c2s_direct_tls_ports = {{ }}
s2s_interfaces = {{ "{self.address}" }}
s2s_ports = {{ {self.s2s_port} }}
s2s_direct_tls_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
-- the test domains are in /etc/hosts; nothing under .test leaves the machine
unbound = {{ hoststxt = "{HOSTS_FILE}"; options = {{ ["local-zone"] = "test. static" }} }}
authentication = "internal_hashed"
c2s_require_encryption = true
s2s_require_encryption = true
-- self-signed certificates everywhere: dialback stands in for them
s2s_secure_auth = false
modules_enabled = {{
    "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "version";
}}
VirtualHost "{self.domain}"
    ssl = {{ certificate = "{self.cert}"; key = "{self.key}" }}
Component "{self.muc_domain}" "muc"
    ssl = {{ certificate = "{self.cert}"; key = "{self.key}" }}
    restrict_room_creation = false
    muc_room_locking = false
"""
        with open(self.config_path, 'w') as f:
            f.write(text)
        shutil.chown(self.config_path, self.user, self.user)

    def log_tail(self, lines=40):
        return _tail(self.log_path, lines)

    def _alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _launch(self):
        # Without libunbound Prosody's own resolver ignores /etc/hosts and
        # would fail every federation test in a puzzling way.
        with open(shutil.which('prosody')) as script:
            interpreter = script.readline()[2:].split()  # "#!/usr/bin/env lua5.4"
        if subprocess.run(interpreter + ['-e', 'require "lunbound"'],
                          capture_output=True).returncode != 0:
            raise AssertionError('Prosody cannot resolve the test domains: '
                                 'the Debian package lua-unbound is not installed')
        # Prosody refuses to run as root; switching user in the child (not
        # through runuser) leaves SIGTERM and the exit status to Prosody itself.
        with open(os.path.join(self.dir, 'console.log'), 'ab') as console:
            self.proc = subprocess.Popen(
                ['prosody', '--config', self.config_path], user=self.user, group=self.user,
                extra_groups=[], stdin=subprocess.DEVNULL, stdout=console,
                stderr=subprocess.STDOUT, cwd=self.dir)

    def _shut_down(self, timeout=15):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError('prosody did not exit within %ds of SIGTERM' % timeout)
        finally:
            self.proc = None
        if code != 0:
            raise AssertionError('prosody exited with %d\n%s' % (code, self.log_tail()))

    def register(self, user, password):
        _run(['prosodyctl', '--config', self.config_path, 'register', user, self.domain,
              password])


# ------------------------------------------------------------------ ejabberd

class Ejabberd(Peer):
    """ejabberd 23.01 as a node of its own (config, spool, logs, node name)."""

    binary = 'ejabberdctl'
    ctl_program = 'ejabberdctl'
    user = 'ejabberd'
    service = 'ejabberd'

    def __init__(self, domain=EJABBERD_DOMAIN, address=EJABBERD_ADDRESS):
        super().__init__(domain, address)
        self.node = 'vestnik-test-%d@localhost' % os.getpid()

    def _write_files(self):
        self.config_path = os.path.join(self.dir, 'ejabberd.yml')
        self.ctl_config_path = os.path.join(self.dir, 'ejabberdctl.cfg')
        self.pem = os.path.join(self.dir, self.domain + '.pem')
        self.spool_dir = os.path.join(self.dir, 'spool')
        self.logs_dir = os.path.join(self.dir, 'logs')
        self.log_path = os.path.join(self.logs_dir, 'ejabberd.log')
        for path in (self.spool_dir, self.logs_dir):
            os.mkdir(path, 0o750)
            shutil.chown(path, self.user, self.user)
        with open(self.pem, 'w') as out:
            for path in (self.cert, self.key):
                with open(path) as f:
                    out.write(f.read())
        shutil.chown(self.pem, self.user, self.user)
        os.chmod(self.pem, 0o640)
        text = f"""# written by tests/integration/peers.py
hosts:
  - {self.domain}
loglevel: debug
certfiles:
  - {self.pem}
listen:
  - port: {self.c2s_port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
  - port: {self.s2s_port}
    ip: "{self.address}"
    module: ejabberd_s2s_in
s2s_use_starttls: optional
s2s_dns_timeout: 3
s2s_dns_retries: 1
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  s2s:
    allow: all
modules:
  mod_disco: {{}}
  mod_muc:
    host: {self.muc_domain}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_s2s_dialback: {{}}
  mod_version: {{}}
"""
        with open(self.config_path, 'w') as f:
            f.write(text)
        # ejabberdctl sources this file; the node name is given on its command line
        with open(self.ctl_config_path, 'w') as f:
            f.write('# written by tests/integration/peers.py\n')
        # what Debian's /etc/ejabberd/inetrc says, for ejabberdctl's own lookups
        with open(os.path.join(self.dir, 'inetrc'), 'w') as f:
            f.write('{lookup, [file, native]}.\n')
        for name in ('ejabberd.yml', 'ejabberdctl.cfg', 'inetrc'):
            shutil.chown(os.path.join(self.dir, name), self.user, self.user)

    def ctl(self, *args, timeout=60):
        return _run(['ejabberdctl', '--config-dir', self.dir, '--config', self.config_path,
                     '--ctl-config', self.ctl_config_path, '--logs', self.logs_dir,
                     '--spool', self.spool_dir, '--node', self.node] + list(args),
                    timeout=timeout)

    def log_tail(self, lines=40):
        if self.dir is None:
            return '(not started)'
        return _tail(self.log_path, lines) + _tail(os.path.join(self.logs_dir, 'error.log'))

    def _alive(self):
        return True

    def _launch(self):
        self.ctl('start')
        self.ctl('started', timeout=60)

    def _shut_down(self):
        self.ctl('stop')
        self.ctl('stopped', timeout=60)

    @classmethod
    def stop_system_service(cls):
        _run(['ejabberdctl', 'stop'])
        _run(['ejabberdctl', 'stopped'])

    def register(self, user, password):
        self.ctl('register', user, self.domain, password)


@contextlib.contextmanager
def system_service_paused(peer_class):
    """The peer's Debian service stopped while the block runs, if it ran."""
    was_running = peer_class.system_service_running()
    if was_running:
        peer_class.stop_system_service()
    try:
        yield
    finally:
        if was_running:
            peer_class.start_system_service()


@contextlib.contextmanager
def federation(*peers):
    """Every test domain in /etc/hosts and the peers started, by one test run
    at a time; all undone on exit."""
    entries = [(VESTNIK_DOMAIN, VESTNIK_ADDRESS)]
    for peer in peers:
        entries += [(domain, peer.address) for domain in peer.domains()]
    with _exclusive(LOCK_FILE), _hosts_entries(entries), contextlib.ExitStack() as stack:
        for peer in peers:
            stack.enter_context(peer)
        yield peers
