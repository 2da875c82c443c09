#!/usr/bin/env python3
"""test_admin.py - vestnikctl against a running vestnikd and a stopped one.

Account commands through the admin socket (with logins proving what they
did, and deluser ending a live session), status, reload (good and broken
configuration), check-config, usage errors and exit codes, the admin
protocol's refusals of bad requests, the socket's permissions and peer
check, a second daemon refused, and the account commands working on the
store of a server that is not running.
"""

import base64
import os
import socket
import stat
import subprocess

import harness
from harness import NS_SASL, RawStream

DOMAIN = harness.DOMAIN
OTHER_HOST = 'example.net'

server = harness.Server(extra_hosts=[OTHER_HOST])


def ctl(*args, stdin_text=None, config=None):
    """Run vestnikctl; stdin is the given text, else /dev/null (not a tty)."""
    return subprocess.run(
        [server.ctl, '-c', config or server.config_path, *args],
        input=stdin_text, stdin=None if stdin_text is not None else subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60)


def ok(result):
    assert result.returncode == 0, 'exit %d\nstdout: %s\nstderr: %s' % (
        result.returncode, result.stdout, result.stderr)
    return result


def fails(result, code, message):
    assert result.returncode == code, 'expected exit %d, got %d\nstdout: %s\nstderr: %s' % (
        code, result.returncode, result.stdout, result.stderr)
    assert message in result.stderr, 'expected %r in stderr: %r' % (message, result.stderr)
    return result


def can_login(user, password):
    stream = RawStream(server.c2s_port)
    stream.open()
    jid = stream.login(user, password)
    stream.close()
    return jid


def login_refused(user, password):
    stream = RawStream(server.c2s_port)
    stream.open()
    stream.starttls()
    token = base64.b64encode(b'\0' + user.encode() + b'\0' + password.encode()).decode()
    stream.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, token))
    conditions = stream.sasl_failure()
    stream.close()
    assert conditions == ['not-authorized'], conditions


def admin_exchange(request):
    """Send raw bytes on the admin socket; everything the server answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(server.admin_socket)
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        answer = b''
        while True:
            data = s.recv(4096)
            if not data:
                return answer
            answer += data


def listusers(*args, config=None):
    return ok(ctl('listusers', *args, config=config)).stdout.splitlines()


# ---- accounts on the running server

def test_adduser_with_argument_then_login():
    ok(ctl('adduser', 'alice@' + DOMAIN, 'wonder land'))
    assert can_login('alice', 'wonder land').startswith('alice@%s/' % DOMAIN)
    login_refused('alice', 'wrong')
    assert 'admin: created account alice@%s' % DOMAIN in server.log_text()


def test_adduser_password_from_stdin():
    ok(ctl('adduser', 'carol@' + DOMAIN, stdin_text='from stdin\n'))
    can_login('carol', 'from stdin')


def test_password_never_logged():
    ok(ctl('adduser', 'dan@' + DOMAIN, 'Tr0ub4dor&3-unique'))
    assert 'Tr0ub4dor&3-unique' not in server.log_text()


def test_adduser_normalises_the_username():
    ok(ctl('adduser', 'Bob@' + DOMAIN.upper(), 'builder'))
    assert 'bob@' + DOMAIN in listusers(DOMAIN)
    can_login('bob', 'builder')


def test_adduser_existing_account_fails():
    fails(ctl('adduser', 'alice@' + DOMAIN, 'other'), 1, 'account alice@%s already exists'
          % DOMAIN)
    can_login('alice', 'wonder land')


def test_adduser_unknown_host_fails():
    fails(ctl('adduser', 'eve@nowhere.example', 'x'), 1, 'nowhere.example is not a host')


def test_adduser_without_password_on_empty_stdin_fails():
    fails(ctl('adduser', 'frank@' + DOMAIN), 1, 'no password on standard input')
    assert 'frank@' + DOMAIN not in listusers()


def test_adduser_empty_password_fails():
    fails(ctl('adduser', 'frank@' + DOMAIN, stdin_text='\n'), 1, 'the password is empty')


def test_passwd_changes_the_password():
    ok(ctl('adduser', 'gina@' + DOMAIN, 'old one'))
    ok(ctl('passwd', 'gina@' + DOMAIN, stdin_text='new one\n'))
    login_refused('gina', 'old one')
    can_login('gina', 'new one')


def test_passwd_unknown_account_fails():
    fails(ctl('passwd', 'nobody@' + DOMAIN, 'x'), 1, 'no such account nobody@' + DOMAIN)


def test_deluser_ends_live_sessions_and_logins():
    ok(ctl('adduser', 'hank@' + DOMAIN, 'secret'))
    first, second = RawStream(server.c2s_port), RawStream(server.c2s_port)
    for stream in (first, second):
        stream.open()
        stream.login('hank', 'secret')
    ok(ctl('deluser', 'hank@' + DOMAIN))
    first.expect_stream_error('not-authorized')
    second.expect_stream_error('not-authorized')
    login_refused('hank', 'secret')
    assert 'hank@' + DOMAIN not in listusers()


def test_deluser_unknown_account_fails():
    fails(ctl('deluser', 'nobody@' + DOMAIN), 1, 'no such account nobody@' + DOMAIN)


def test_listusers_all_hosts_sorted_and_per_host():
    ok(ctl('adduser', 'zoe@' + OTHER_HOST, 'z'))
    ok(ctl('adduser', 'adam@' + OTHER_HOST, 'a'))
    everyone = listusers()
    assert everyone == sorted(everyone), everyone
    assert {'adam@' + OTHER_HOST, 'zoe@' + OTHER_HOST, 'alice@' + DOMAIN} <= set(everyone)
    assert listusers(OTHER_HOST) == ['adam@' + OTHER_HOST, 'zoe@' + OTHER_HOST]
    fails(ctl('listusers', 'nowhere.example'), 1, 'nowhere.example is not a host')


# ---- the server

def test_status_describes_the_running_server():
    result = ok(ctl('status'))
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith('vestnik '), lines
    assert 'session(s)' in lines[0] and DOMAIN in lines[0] and OTHER_HOST in lines[0], lines


def test_reload_with_a_good_config():
    ok(ctl('reload'))
    server.assert_running()
    can_login('alice', 'wonder land')


def rewrite_config(old, new):
    """Replace old by new in the server's config; returns the original text."""
    with open(server.config_path) as f:
        original = f.read()
    assert old in original, original
    with open(server.config_path, 'w') as f:
        f.write(original.replace(old, new))
    return original


def test_reload_refused_by_the_server_keeps_it_running():
    # Module options are checked by the server when it loads the modules.
    original = rewrite_config('  version:\n', '  version:\n    no_such_option: true\n')
    try:
        result = fails(ctl('reload'), 1, 'reload failed, the running configuration stays')
        assert 'no_such_option' in result.stderr, result.stderr
    finally:
        with open(server.config_path, 'w') as f:
            f.write(original)
    server.assert_running()
    can_login('alice', 'wonder land')
    ok(ctl('reload'))


def test_reload_with_an_unreadable_config_names_the_line():
    original = rewrite_config('limits:\n', 'no_such_key: 1\nlimits:\n')
    try:
        result = ctl('reload')
    finally:
        with open(server.config_path, 'w') as f:
            f.write(original)
    line = original[:original.index('limits:\n')].count('\n') + 1
    fails(result, 1, "%s:%d: unknown top-level key 'no_such_key'" % (server.config_path, line))
    server.assert_running()


def test_check_config():
    result = ok(ctl('check-config'))
    assert 'configuration ok' in result.stdout, result.stdout
    broken = os.path.join(server.dir, 'broken.yaml')
    with open(broken, 'w') as f:
        f.write('hosts:\n  - localhost\nlimits:\n  max_xml_depth: 1\n')
    result = ctl('check-config', config=broken)
    assert result.returncode == 1, result
    assert 'broken.yaml:4' in result.stderr, result.stderr


# ---- usage

def test_usage_errors_exit_2():
    fails(ctl(), 2, 'no command given')
    fails(ctl('frobnicate'), 2, 'unknown command')
    fails(ctl('status', 'extra'), 2, 'wrong number of arguments')
    fails(ctl('deluser'), 2, 'wrong number of arguments')
    fails(ctl('adduser', DOMAIN, 'x'), 2, 'is not an account JID')
    fails(ctl('adduser', 'a@%s/phone' % DOMAIN, 'x'), 2, 'is not an account JID')
    result = subprocess.run([server.ctl, '--help'], capture_output=True, text=True)
    assert result.returncode == 0 and 'listusers' in result.stdout, result


# ---- the admin socket

def test_admin_socket_is_private():
    mode = os.stat(server.admin_socket).st_mode
    assert stat.S_ISSOCK(mode), oct(mode)
    assert stat.S_IMODE(mode) == 0o600, oct(mode)


def test_admin_protocol_refuses_bad_requests():
    assert admin_exchange(b'1\nstatus\n').startswith(b'ok\nvestnik ')
    assert admin_exchange(b'x\nstatus\n') == b'error malformed request\n'
    assert admin_exchange(b'2\nstatus\n') == b'error malformed request\n'
    assert admin_exchange(b'1\nstatus\nmore') == b'error malformed request\n'
    assert admin_exchange(b'1\nfly\n') == b'error unknown command\n'
    assert admin_exchange(b'2\nstatus\nx\n') == b'error wrong number of arguments\n'
    assert admin_exchange(b'4\nadduser\nnowhere.example\nu\np\n') == (
        b'error nowhere.example is not a host of this server\n')
    assert admin_exchange(b'2\nlistusers\n%s\n' % OTHER_HOST.encode()) == b'ok\nadam\nzoe\n'
    server.assert_running()


def test_admin_socket_refuses_other_users():
    """Root only: another uid reaching the socket is turned away by SO_PEERCRED.

    The socket is opened up for the test (mode 0666, its directory 0711),
    and the other user reaches it through an inherited descriptor of the
    directory, whatever the permissions of the directories above.
    """
    directory = os.open(server.dir, os.O_PATH)
    os.chmod(server.dir, 0o711)
    os.chmod(server.admin_socket, 0o666)
    try:
        path = '/proc/self/fd/%d/%s' % (directory, os.path.basename(server.admin_socket))
        # The server may close before the request is even written.
        probe = ('import socket\n'
                 's = socket.socket(socket.AF_UNIX)\n'
                 's.connect(%r)\n'
                 'try:\n'
                 '    s.sendall(b"1\\nstatus\\n")\n'
                 '    print(repr(s.recv(100)))\n'
                 'except (BrokenPipeError, ConnectionResetError):\n'
                 '    print("reset")\n' % path)
        result = subprocess.run(['/usr/bin/python3', '-c', probe], user=65534, group=65534,
                                extra_groups=[], pass_fds=[directory], capture_output=True,
                                text=True, timeout=20)
    finally:
        os.chmod(server.admin_socket, 0o600)
        os.chmod(server.dir, 0o700)
        os.close(directory)
    assert result.returncode == 0, result
    assert result.stdout.strip() in ("b''", 'reset'), result.stdout
    assert 'admin: refused connection from uid 65534' in server.log_text()


def test_second_daemon_is_refused():
    """Same admin socket, other ports: the live socket stops the second one."""
    second_config = os.path.join(server.dir, 'second.yaml')
    c2s_port, tls_port = harness.free_ports(2)
    with open(server.config_path) as f:
        text = f.read()
    text = text.replace('port: %d\n' % server.c2s_port, 'port: %d\n' % c2s_port)
    text = text.replace('port: %d\n' % server.tls_port, 'port: %d\n' % tls_port)
    with open(second_config, 'w') as f:
        f.write(text)
    result = subprocess.run([server.daemon, '-c', second_config], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result
    assert 'another vestnikd is running (admin socket %s)' % server.admin_socket in (
        result.stderr), result.stderr
    assert stat.S_ISSOCK(os.stat(server.admin_socket).st_mode)
    ok(ctl('status'))


# ---- a stopped server

def test_stopped_server_accounts_work_on_the_store():
    stopped = harness.Server()
    try:
        config = stopped.config_path
        fails(ctl('status', config=config), 3, 'vestnikd is not running (no admin socket at %s)'
              % stopped.admin_socket)
        fails(ctl('reload', config=config), 3, 'vestnikd is not running')
        assert listusers(config=config) == []
        ok(ctl('adduser', 'offline@' + DOMAIN, 'pw one', config=config))
        ok(ctl('adduser', 'gone@' + DOMAIN, 'pw', config=config))
        ok(ctl('passwd', 'offline@' + DOMAIN, 'pw two', config=config))
        ok(ctl('deluser', 'gone@' + DOMAIN, config=config))
        fails(ctl('deluser', 'gone@' + DOMAIN, config=config), 1, 'no such account')
        assert listusers(config=config) == ['offline@' + DOMAIN]

        stopped.start()
        stream = RawStream(stopped.c2s_port)
        stream.open()
        assert stream.login('offline', 'pw two').startswith('offline@%s/' % DOMAIN)
        stream.close()
        assert listusers(config=config) == ['offline@' + DOMAIN]
        stopped.stop()
    finally:
        stopped.kill9()


TESTS = [
    test_adduser_with_argument_then_login,
    test_adduser_password_from_stdin,
    test_password_never_logged,
    test_adduser_normalises_the_username,
    test_adduser_existing_account_fails,
    test_adduser_unknown_host_fails,
    test_adduser_without_password_on_empty_stdin_fails,
    test_adduser_empty_password_fails,
    test_passwd_changes_the_password,
    test_passwd_unknown_account_fails,
    test_deluser_ends_live_sessions_and_logins,
    test_deluser_unknown_account_fails,
    test_listusers_all_hosts_sorted_and_per_host,
    test_status_describes_the_running_server,
    test_reload_with_a_good_config,
    test_reload_refused_by_the_server_keeps_it_running,
    test_reload_with_an_unreadable_config_names_the_line,
    test_check_config,
    test_usage_errors_exit_2,
    test_admin_socket_is_private,
    test_admin_protocol_refuses_bad_requests,
    test_second_daemon_is_refused,
    test_stopped_server_accounts_work_on_the_store,
]
if os.geteuid() == 0:  # needs to run a process as another user
    TESTS.append(test_admin_socket_refuses_other_users)

if __name__ == '__main__':
    harness.run(TESTS, server=server, timeout=60)
