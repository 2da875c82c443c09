"""peers.py - vestnikd, Prosody and ejabberd started side by side for benchmarks.

Each server runs as its own instance on 127.0.0.1 with a generated config,
data directory and log under one temporary directory, on a port of its
own, so nothing of the system's own services (their configs, data, ports
5222/5269/5280) is touched. All three serve the domain "localhost" with the
same ECDSA P-256 certificate, store SCRAM-SHA-1 credentials with 4096
iterations, have no rate limits or traffic shapers, log warnings only, and
let 127.0.0.1 register accounts in band (XEP-0077) without throttling,
which is how the load generator pre-creates accounts on all three alike.

Two profiles (PROFILES):
- shipped: what users run. vestnik loads the module set of the shipped
  conf/vestnik.yaml with its settings (MAM archives every message, MUC rooms
  keep an archive), only registration opened and the MUC flood limits
  raised; Prosody adds mod_mam archiving everything, mod_offline,
  mod_carbons, mod_smacks, mod_csi_simple and mod_muc_mam; ejabberd adds
  mod_mam (default: always, rooms too), mod_offline, mod_carboncopy (its
  carbons) and mod_stream_mgmt.
- minimal: the smallest set the scenarios need (ping, disco, roster,
  presence, register, MUC without archive), as in the first benchmarks.

Prosody runs as the user prosody (it refuses root), ejabberd through
ejabberdctl as the user ejabberd under its own Erlang node name; both are
started with setuid rather than su/runuser, so they keep our file limit.
Prosody and ejabberd are the Debian packages (PEERS.md): if they are
missing, install() adds them with apt-get, and since their packages would
start system services, those are stopped again right away.

Only the standard library is used.
"""

import os
import pwd
import shutil
import socket
import subprocess
import time

DOMAIN = 'localhost'
MUC_SERVICE = 'conference.localhost'
SCRAM_ITERATIONS = 4096


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_port(port, proc_alive, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive():
            raise RuntimeError('%s exited during start-up' % what)
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError('%s did not listen on %d within %ds' % (what, port, timeout))


def make_certificate(directory):
    """One self-signed ECDSA P-256 certificate for every server."""
    key = os.path.join(directory, 'key.pem')
    cert = os.path.join(directory, 'cert.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj',
                    '/CN=' + DOMAIN, '-addext', 'subjectAltName=DNS:%s,DNS:%s'
                    % (DOMAIN, MUC_SERVICE), '-keyout', key, '-out', cert],
                   check=True, capture_output=True)
    os.chmod(key, 0o644)  # read by the prosody and ejabberd users
    return cert, key


def installed(program):
    return shutil.which(program) is not None


def install():
    """apt-get install Prosody and ejabberd if missing; keep their services stopped."""
    missing = [pkg for pkg, prog in (('prosody', 'prosody'), ('ejabberd', 'ejabberdctl'))
               if not installed(prog)]
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    subprocess.run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends'] + missing,
                   check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(['service', 'prosody', 'stop'], capture_output=True)
    subprocess.run(['ejabberdctl', 'stop'], capture_output=True)


def as_user(user):
    """Popen arguments that run a program as `user` without su or runuser,
    whose PAM session would drop RLIMIT_NOFILE back to 1024."""
    entry = pwd.getpwnam(user)
    return dict(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
                env=dict(os.environ, HOME=entry.pw_dir, USER=user, LOGNAME=user))


def pids_of(user):
    uid = pwd.getpwnam(user).pw_uid
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                if os.stat('/proc/' + entry).st_uid == uid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


PROFILES = ('shipped', 'minimal')


def shipped_modules(srcdir, overrides):
    """The modules: section of the shipped conf/vestnik.yaml, as text, with
    the options in overrides ({module: {option: value}}) set."""
    with open(os.path.join(srcdir, 'conf', 'vestnik.yaml')) as f:
        lines = f.read().splitlines()
    blocks = {}  # module: its option lines, in the order of the file
    for line in lines[lines.index('modules:') + 1:]:
        if line and not line.startswith((' ', '#')):
            break  # the next top-level key
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        if not line.startswith('   '):
            module = line.strip().rstrip(':')
            blocks[module] = []
        else:
            blocks[module].append(line)
    text = ['modules:']
    for module, options in blocks.items():
        wanted = dict(overrides.get(module, {}))
        text.append('  %s:' % module)
        for line in options:
            key = line.strip().split(':')[0]
            text.append('    %s: %s' % (key, wanted.pop(key)) if key in wanted else line)
        text += ['    %s: %s' % item for item in wanted.items()]
    return '\n'.join(text) + '\n'


class Server:
    """What the benchmark needs of each: start, stop, port, pid, MUC room."""
    name = ''
    muc_room = None  # room JID when the server has MUC

    def __init__(self, base, profile):
        self.profile = profile
        self.dir = os.path.join(base, '%s-%s' % (self.name, profile))
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.pid = None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors='replace') as f:
                return '\n'.join(f.read().splitlines()[-lines:])
        except OSError:
            return '(no log)'


class Vestnik(Server):
    name = 'vestnik'

    def __init__(self, base, builddir, cert, key, profile='minimal', srcdir='.', store=''):
        """store: a store: section for the config ('': LMDB in data_dir)."""
        super().__init__(base, profile)
        self.builddir = builddir
        self.log_path = os.path.join(self.dir, 'vestnikd.log')
        module_path = os.path.join(builddir, 'modules', '.libs')
        has_muc = os.path.exists(os.path.join(module_path, 'mod_muc.so'))
        if has_muc:
            self.muc_room = 'bench@' + MUC_SERVICE
        self.config = os.path.join(self.dir, 'vestnik.yaml')
        with open(self.config, 'w') as f:
            f.write(f"""# written by tests/bench/peers.py
hosts:
  - {DOMAIN}
data_dir: {self.dir}/data
log:
  level: warn
tls:
  certificate: {cert}
  key: {key}
listeners:
  - type: c2s
    address: 127.0.0.1
    port: {self.port}
auth:
  scram_iterations: {SCRAM_ITERATIONS}
# Off like the peers' (Prosody's mod_limits, ejabberd's shapers): the load
# generator opens thousands of sessions from one address and sends as fast
# as the server delivers.
limits:
  max_connections_per_ip: 0
  stanza_rate: 0
  max_resources_per_account: 0
admin:
  socket: {self.dir}/admin.sock
module_path: {module_path}
""")
            register = {'allow_registration': 'true', 'registrations_per_ip_per_hour': '0'}
            muc = {'max_occupants': '5000', 'max_messages_per_minute': '1000000'}
            if profile == 'shipped':
                # Rooms keep their archive (logging is on by default) and
                # history as shipped; only the flood limits are raised.
                f.write(shipped_modules(srcdir, {'register': register, 'muc': muc}))
            else:
                f.write('modules:\n  ping:\n  disco:\n  roster:\n  presence:\n  register:\n'
                        + ''.join('    %s: %s\n' % item for item in register.items()))
                if has_muc:
                    f.write('  muc:\n' + ''.join('    %s: %s\n' % item for item in muc.items())
                            + '    max_history_messages: 0\n')
            f.write(store)
        os.mkdir(os.path.join(self.dir, 'data'))
        self.proc = None

    def start(self):
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(
                [os.path.join(self.builddir, 'src', 'vestnikd'), '-c', self.config],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, lambda: self.proc.poll() is None, 30, 'vestnikd')
        self.pid = self.proc.pid

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class Prosody(Server):
    name = 'prosody'
    muc_room = 'bench@' + MUC_SERVICE

    def __init__(self, base, cert, key, profile='minimal'):
        super().__init__(base, profile)
        self.log_path = os.path.join(self.dir, 'prosody.log')
        self.pidfile = os.path.join(self.dir, 'prosody.pid')
        self.config = os.path.join(self.dir, 'prosody.cfg.lua')
        data = os.path.join(self.dir, 'data')
        os.mkdir(data)
        shipped = profile == 'shipped'
        extra = (', "mam", "offline", "carbons", "smacks", "csi_simple"' if shipped else '')
        offline = '' if shipped else '"offline", '
        # Archive every message, kept for ever, like vestnik's mam.default: always.
        archive = ('default_archive_policy = true\narchive_expires_after = "never"\n'
                   if shipped else '')
        history = 20 if shipped else 0
        muc_archive = ('  modules_enabled = { "muc_mam" }\n  muc_log_by_default = true\n'
                       '  muc_log_all_rooms = true\n  muc_log_expires_after = "never"\n'
                       if shipped else '')
        with open(self.config, 'w') as f:
            f.write(f"""-- written by tests/bench/peers.py
pidfile = "{self.pidfile}"
data_path = "{data}"
log = {{ warn = "{self.log_path}" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.port} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
network_backend = "epoll"
modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping", "register", "posix"{extra} }}
modules_disabled = {{ "s2s", {offline}"c2s_direct_tls" }}
c2s_require_encryption = true
authentication = "internal_hashed"
default_iteration_count = {SCRAM_ITERATIONS}
storage = "internal"
allow_registration = true
registration_whitelist = {{ "127.0.0.1" }}
ssl = {{ certificate = "{cert}", key = "{key}" }}
unbound = {{ hoststxt = "/etc/hosts" }}
{archive}VirtualHost "{DOMAIN}"
Component "{MUC_SERVICE}" "muc"
  muc_room_locking = false
  max_history_messages = {history}
{muc_archive}""")
        for path in (self.dir, data):
            shutil.chown(path, 'prosody', 'prosody')
        self.runner = None

    def start(self):
        with open(os.path.join(self.dir, 'stdout.log'), 'ab') as out:
            self.runner = subprocess.Popen(
                ['prosody', '--config', self.config, '-F'], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, cwd=self.dir, **as_user('prosody'))
        wait_for_port(self.port, lambda: self.runner.poll() is None, 30, 'prosody')
        with open(self.pidfile) as f:
            self.pid = int(f.read().strip())


    def stop(self):
        if self.runner:
            if self.pid:
                subprocess.run(['kill', str(self.pid)], capture_output=True)
            try:
                self.runner.wait(20)
            except subprocess.TimeoutExpired:
                subprocess.run(['kill', '-9', str(self.pid)], capture_output=True)
                self.runner.wait()
            self.runner = None


class Ejabberd(Server):
    name = 'ejabberd'
    muc_room = 'bench@' + MUC_SERVICE

    def __init__(self, base, cert, key, profile='minimal'):
        super().__init__(base, profile)
        self.node = 'vnbench%d@localhost' % os.getpid()
        self.spool = os.path.join(self.dir, 'spool')
        self.logs = os.path.join(self.dir, 'logs')
        self.log_path = os.path.join(self.logs, 'ejabberd.log')
        for path in (self.spool, self.logs):
            os.mkdir(path)
        self.pem = os.path.join(self.dir, 'server.pem')
        with open(self.pem, 'w') as out:
            for part in (cert, key):
                with open(part) as f:
                    out.write(f.read())
        self.config = os.path.join(self.dir, 'ejabberd.yml')
        shipped = profile == 'shipped'
        history = 20 if shipped else 0
        # mod_mam archiving every message (rooms too), offline storage,
        # carbons and stream management, as a mobile-ready ejabberd has.
        shipped_modules = ('      mam: true\n  mod_mam:\n    default: always\n'
                           '  mod_offline: {}\n  mod_carboncopy: {}\n  mod_stream_mgmt: {}\n'
                           if shipped else '')
        with open(self.config, 'w') as f:
            f.write(f"""# written by tests/bench/peers.py
hosts:
  - {DOMAIN}
loglevel: warning
certfiles:
  - {self.pem}
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha
registration_timeout: infinity
listen:
  - port: {self.port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
    backlog: 1024
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  register:
    allow: all
  muc_create:
    allow: all
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_register:
    ip_access: all
    access: register
    welcome_message: {{subject: "", body: ""}}
  mod_muc:
    host: {MUC_SERVICE}
    access_create: muc_create
    max_users: 5000
    max_users_presence: 5000
    history_size: {history}
    default_room_options:
      max_users: 5000
{shipped_modules}""")
        # Our own ejabberdctl.cfg: Debian's (/etc/default/ejabberd) would set
        # EJABBERD_CONFIG_PATH back to the system's config.
        self.ctl_config = os.path.join(self.dir, 'ejabberdctl.cfg')
        with open(self.ctl_config, 'w') as f:
            f.write('POLL=true\nERL_MAX_PORTS=1000000\nERL_PROCESSES=2000000\n'
                    'EJABBERD_PID_PATH=%s\n' % os.path.join(self.dir, 'ejabberd.pid'))
        for path in (self.dir, self.spool, self.logs, self.pem, self.config, self.ctl_config):
            shutil.chown(path, 'ejabberd', 'ejabberd')

    def ctl(self, *args, check=True, timeout=60):
        return subprocess.run(['ejabberdctl', '--config', self.config, '--ctl-config',
                               self.ctl_config, '--spool', self.spool, '--logs', self.logs,
                               '--node', self.node] + list(args),
                              capture_output=True, text=True, check=check, timeout=timeout,
                              cwd=self.dir, **as_user('ejabberd'))

    def start(self):
        self.ctl('start')
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if 'started' in self.ctl('status', check=False).stdout:
                break
            time.sleep(0.5)
        wait_for_port(self.port, lambda: True, 30, 'ejabberd')
        node_arg = self.node.split('@')[0]
        self.pid = next(pid for pid in pids_of('ejabberd')
                        if 'beam' in cmdline(pid) and node_arg in cmdline(pid))


    def stop(self):
        if self.pid:
            self.ctl('stop', check=False)
            deadline = time.monotonic() + 30
            while os.path.exists('/proc/%d' % self.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if os.path.exists('/proc/%d' % self.pid):
                subprocess.run(['kill', '-9', str(self.pid)], capture_output=True)
            self.pid = None
