"""pg.py - a real PostgreSQL server for the tests, in a temporary directory.

PostgreSQL(...).start() runs initdb into a fresh directory and starts the
server on a Unix socket only (no TCP port to collide with), with fsync on,
so that kill -9 tests of vestnikd test durability for real. PostgreSQL will
not run as root: when the tests do (CI containers), the directory is given
to the `postgres` system user and the programs run through runuser.
conninfo is what vestnikd's store.postgresql.conninfo takes.

As a program it wraps a command: `pg.py run CMD ARGS...` starts a server,
runs CMD with VN_TEST_PG_CONNINFO set (tests/run-tests runs the store unit
test this way), stops the server and exits with CMD's status. Without
PostgreSQL installed CMD runs without the variable (its PostgreSQL part is
skipped), unless VN_REQUIRE_PEERS=1, which makes that a failure.

Only the standard library is used.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def find_bindir():
    """The directory of initdb and postgres: VN_PG_BINDIR or Debian's."""
    explicit = os.environ.get('VN_PG_BINDIR')
    if explicit:
        return explicit if os.path.exists(os.path.join(explicit, 'initdb')) else None
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=lambda p: int(p.split('/')[4]) if p.split('/')[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def missing_reason():
    """None if a server can be started here, else why not."""
    if find_bindir() is None:
        return 'PostgreSQL (initdb) is not installed (.ci/run installs postgresql)'
    if os.geteuid() == 0:
        try:
            pwd.getpwnam('postgres')
        except KeyError:
            return 'running as root and there is no postgres user to run PostgreSQL as'
    return None


def required():
    return os.environ.get('VN_REQUIRE_PEERS') == '1'


class PostgreSQL:
    """One PostgreSQL cluster of its own, reachable by a Unix socket."""

    def __init__(self, user='vestnik', database='vestnik'):
        self.bindir = find_bindir()
        assert self.bindir, missing_reason()
        self.user = user
        self.database = database
        # As root, the postgres user must reach the directory: the test
        # runner's TMPDIR is root's alone, /tmp is everyone's.
        parent = '/tmp' if os.geteuid() == 0 and os.path.isdir('/tmp') else None
        self.dir = tempfile.mkdtemp(prefix='vn-pg-', dir=parent)
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, 'data')
        self.socket_dir = os.path.join(self.dir, 'socket')
        self.log_path = os.path.join(self.dir, 'postgresql.log')
        self.port = 5432
        self.proc = None
        self.run_as = None
        if os.geteuid() == 0:
            self.run_as = 'postgres'
            entry = pwd.getpwnam('postgres')
            os.mkdir(self.socket_dir)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            os.chown(self.socket_dir, entry.pw_uid, entry.pw_gid)
        else:
            os.mkdir(self.socket_dir)
        self.conninfo = 'host=%s port=%d user=%s dbname=%s' % (
            self.socket_dir, self.port, self.user, self.database)

    def _command(self, program, *args):
        argv = [os.path.join(self.bindir, program)] + list(args)
        if self.run_as:
            argv = ['runuser', '-u', self.run_as, '--'] + argv
        return argv

    def _run(self, program, *args, timeout=120):
        result = subprocess.run(self._command(program, *args), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        assert result.returncode == 0, '%s failed (%d): %s%s' % (
            program, result.returncode, result.stdout, result.stderr)
        return result.stdout

    def start(self, timeout=60):
        """Starts the server, made with its database on the first start."""
        fresh = not os.path.exists(self.data)
        if fresh:
            self._run('initdb', '-D', self.data, '-U', self.user, '-A', 'trust',
                      '-E', 'UTF8', '--locale=C', '--no-sync')
        log = open(self.log_path, 'ab')
        if self.run_as:
            os.chown(self.log_path, pwd.getpwnam(self.run_as).pw_uid, -1)
        self.proc = subprocess.Popen(
            self._command('postgres', '-D', self.data, '-k', self.socket_dir,
                          '-p', str(self.port), '-c', 'listen_addresses=',
                          '-c', 'fsync=on', '-c', 'synchronous_commit=on',
                          '-c', 'max_connections=200'),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError('postgres exited with %d; log:\n%s'
                                     % (self.proc.returncode, self.log_tail()))
            ready = subprocess.run(
                self._command('pg_isready', '-q', '-h', self.socket_dir, '-p', str(self.port)),
                stdin=subprocess.DEVNULL, capture_output=True)
            if ready.returncode == 0:
                break
            assert time.monotonic() < deadline, 'postgres did not start; log:\n' + self.log_tail()
            time.sleep(0.1)
        if fresh and self.database != 'postgres':
            self.sql('CREATE DATABASE %s' % self.database, database='postgres')
        return self

    def sql(self, statement, database=None):
        """Runs one statement with psql; its unaligned output."""
        return self._run('psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                         '-h', self.socket_dir, '-p', str(self.port), '-U', self.user,
                         '-d', database or self.database, '-c', statement)

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, errors='replace') as f:
                return '\n'.join(f.read().splitlines()[-lines:])
        except FileNotFoundError:
            return ''

    def _postmaster_pid(self):
        """The server's own pid (under runuser, self.proc is runuser's)."""
        try:
            with open(os.path.join(self.data, 'postmaster.pid')) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def stop(self, timeout=30):
        if self.proc is None:
            return
        pid = self._postmaster_pid()
        for sig in (signal.SIGINT, signal.SIGQUIT):  # fast, then immediate shutdown
            try:
                os.kill(pid, sig) if pid else self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
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


def main(argv):
    if len(argv) < 3 or argv[1] != 'run':
        sys.stderr.write('usage: pg.py run COMMAND [ARGS...]\n')
        return 2
    reason = missing_reason()
    env = dict(os.environ)
    if reason:
        if required():
            sys.stderr.write('pg.py: %s, and VN_REQUIRE_PEERS=1\n' % reason)
            return 1
        sys.stderr.write('pg.py: %s: running without it\n' % reason)
        return subprocess.call(argv[2:], env=env)
    server = PostgreSQL()
    try:
        server.start()
        env['VN_TEST_PG_CONNINFO'] = server.conninfo
        return subprocess.call(argv[2:], env=env)
    finally:
        server.cleanup()


if __name__ == '__main__':
    sys.exit(main(sys.argv))
