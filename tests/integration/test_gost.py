#!/usr/bin/env python3
"""test_gost.py - a c2s_tls listener with the GOST TLS profile.

The certificate is a GOST R 34.10-2012 (256-bit, paramset A) one made here
with `openssl req` and Debian's gost engine (libengine-gost-openssl). The
peer is `openssl s_client` with the same engine: it completes a TLS 1.2
handshake on each GOST suite vestnikd offers (Kuznyechik-OMAC, Magma-OMAC)
and then speaks XMPP over it — a stream header gets the stream features.
A client offering only the standard suites is refused, and the ordinary
c2s_tls listener beside it still serves the ordinary certificate.
"""

import os
import subprocess
import tempfile

import harness

ENGINE_CONF = """openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
gost = gost_section
[gost_section]
engine_id = gost
default_algorithms = ALL
"""

WORK = tempfile.mkdtemp(prefix='gost-')
CONF = os.path.join(WORK, 'openssl-gost.cnf')
CERT = os.path.join(WORK, 'gost.crt')
KEY = os.path.join(WORK, 'gost.key')


def openssl(*args, stdin=None, timeout=20):
    env = dict(os.environ, OPENSSL_CONF=CONF)
    return subprocess.run(['openssl'] + list(args), input=stdin, capture_output=True,
                          env=env, timeout=timeout)


def make_certificate():
    with open(CONF, 'w') as f:
        f.write(ENGINE_CONF)
    run = openssl('req', '-x509', '-newkey', 'gost2012_256', '-pkeyopt', 'paramset:A',
                  '-nodes', '-keyout', KEY, '-out', CERT, '-days', '30',
                  '-subj', '/CN=' + harness.DOMAIN,
                  '-addext', 'subjectAltName=DNS:' + harness.DOMAIN)
    assert run.returncode == 0, run.stderr.decode()


class Server(harness.Server):
    def __init__(self):
        self.gost_port, = harness.free_ports(1)
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('listeners:\n', 'listeners:\n  - type: c2s_tls\n'
                            '    address: 127.0.0.1\n    port: %d\n    tls_profile: gost\n'
                            % self.gost_port, 1)
        text += 'tls:\n  gost_certificate: %s\n  gost_key: %s\n' % (CERT, KEY)
        with open(self.config_path, 'w') as f:
            f.write(text)


make_certificate()
SERVER = Server()


def s_client(port, cipher, data=b''):
    return openssl('s_client', '-connect', '127.0.0.1:%d' % port, '-tls1_2', '-cipher', cipher,
                   '-servername', harness.DOMAIN, '-ign_eof', stdin=data, timeout=15)


def stream_header():
    return ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"
            % harness.DOMAIN).encode()


def check_gost_suite(cipher):
    run = s_client(SERVER.gost_port, cipher, stream_header())
    out = run.stdout.decode(errors='replace')
    assert 'Cipher is %s' % cipher in out, out + run.stderr.decode(errors='replace')
    assert 'GOST R 34.10-2012' in openssl('x509', '-in', CERT, '-noout', '-text').stdout.decode()
    assert '<stream:features>' in out and 'mechanism' in out, out


def test_kuznyechik_handshake_and_stream():
    check_gost_suite('GOST2012-KUZNYECHIK-KUZNYECHIKOMAC')


def test_magma_handshake_and_stream():
    check_gost_suite('GOST2012-MAGMA-MAGMAOMAC')


def test_standard_suites_are_refused_on_the_gost_listener():
    run = s_client(SERVER.gost_port, 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256')
    out = run.stdout.decode(errors='replace')
    assert 'Cipher is (NONE)' in out or run.returncode != 0, out
    assert 'Cipher is ECDHE' not in out, out


def test_the_standard_listener_is_unchanged():
    run = s_client(SERVER.tls_port, 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256',
                   stream_header())
    out = run.stdout.decode(errors='replace')
    assert 'Cipher is ECDHE' in out and '<stream:features>' in out, out


if __name__ == '__main__':
    harness.run([test_kuznyechik_handshake_and_stream,
                 test_magma_handshake_and_stream,
                 test_standard_suites_are_refused_on_the_gost_listener,
                 test_the_standard_listener_is_unchanged],
                server=SERVER)
