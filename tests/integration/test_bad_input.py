#!/usr/bin/env python3
"""test_bad_input.py - hostile and broken clients get the right stream error.

Each case talks raw bytes to the server and asserts the exact element that
comes back, the server's </stream:stream> and the close; the last test
checks that after all of it a normal client still logs in.
"""

import select
import socket
import ssl
import time

import harness
from harness import NS_CLIENT, NS_PING, NS_SASL, RawStream, Scram, qname

USER, PASSWORD = 'carol', 'correct horse'
JID = USER + '@' + harness.DOMAIN
HANDSHAKE_TIMEOUT = 2
TEN_MB = 10 * 1024 * 1024

server = harness.Server(handshake_timeout=HANDSHAKE_TIMEOUT)


def opened():
    stream = RawStream(server.c2s_port)
    stream.open()
    return stream


def test_not_well_formed():
    stream = opened()
    stream.send('<message><body>mismatched</message>')
    stream.expect_stream_error('not-well-formed')


def test_billion_laughs_doctype_is_restricted_xml():
    entities = ['<!ENTITY lol0 "lol">'] + [
        '<!ENTITY lol%d "%s">' % (n, '&lol%d;' % (n - 1) * 10) for n in range(1, 10)]
    stream = RawStream(server.c2s_port)
    stream.send("<?xml version='1.0'?><!DOCTYPE stream:stream [%s]>"
                "<stream:stream xmlns='jabber:client' xmlns:stream='%s' to='%s'"
                " version='1.0'><message><body>&lol9;</body></message>"
                % (''.join(entities), harness.NS_STREAM, harness.DOMAIN))
    stream.expect_stream_error('restricted-xml')


def test_processing_instruction_is_restricted_xml():
    stream = opened()
    stream.send('<?evil instruction?>')
    stream.expect_stream_error('restricted-xml')


def test_comment_is_restricted_xml():
    stream = opened()
    stream.send('<!-- a comment -->')
    stream.expect_stream_error('restricted-xml')


def test_ten_megabyte_stanza_is_policy_violation():
    stream = RawStream(server.c2s_port)
    # A small send buffer keeps what is in flight when the server gives up
    # small, so the count below measures the server, not the kernel.
    stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    stream.open()
    stream.login(USER, PASSWORD)
    stream.send("<message to='%s/x' type='chat'><body>" % JID)
    chunk = b'a' * 65536
    sent = 0
    stream.sock.settimeout(2)
    while sent < TEN_MB:
        if stream.sock.pending() or select.select([stream.sock], [], [], 0)[0]:
            break  # the server answered: stop and read it
        try:
            stream.sock.sendall(chunk)
        except (socket.timeout, ConnectionError, ssl.SSLError):
            break  # the server stopped reading or closed
        sent += len(chunk)
    assert sent < 4 * 1024 * 1024, 'the server swallowed %d bytes of one stanza' % sent
    stream.expect_stream_error('policy-violation')


def test_iso_8859_1_is_unsupported_encoding():
    stream = RawStream(server.c2s_port)
    stream.send("<?xml version='1.0' encoding='ISO-8859-1'?>"
                "<stream:stream xmlns='jabber:client' xmlns:stream='%s' to='%s'"
                " version='1.0'>" % (harness.NS_STREAM, harness.DOMAIN))
    stream.expect_stream_error('unsupported-encoding')


def test_invalid_utf8_is_not_well_formed():
    stream = opened()
    stream.send(b"<message to='x@localhost'><body>\xc3\x28 \xff\xfe</body></message>")
    stream.expect_stream_error('not-well-formed')


def test_wrong_stream_namespace_is_invalid_namespace():
    stream = RawStream(server.c2s_port)
    stream.open(stream_ns='http://example.com/not-streams')
    stream.expect_stream_error('invalid-namespace')


def test_unknown_host_is_host_unknown():
    stream = RawStream(server.c2s_port)
    stream.open(to='unknown.example')
    stream.expect_stream_error('host-unknown')


def test_wrong_password_fails_and_the_stream_stays_open():
    stream = opened()
    stream.starttls()
    token = harness.b64(b'\0' + USER.encode() + b'\0wrong password')
    stream.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, token))
    assert stream.sasl_failure() == ['not-authorized']
    scram = Scram('sha256', USER, 'also wrong')
    stream.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                % (NS_SASL, scram.mechanism, harness.b64(scram.client_first())))
    challenge = stream.expect(qname(NS_SASL, 'challenge'))
    final = scram.client_final(harness.base64.b64decode(challenge.text))
    stream.send("<response xmlns='%s'>%s</response>" % (NS_SASL, harness.b64(final)))
    assert stream.sasl_failure() == ['not-authorized']
    stream.auth_scram(Scram('sha256', USER, PASSWORD))
    assert stream.bind('retry') == JID + '/retry'
    stream.close()


def test_auth_before_starttls_is_encryption_required():
    stream = opened()
    stream.features()
    token = harness.b64(b'\0' + USER.encode() + b'\0' + PASSWORD.encode())
    stream.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, token))
    assert stream.sasl_failure() == ['encryption-required']
    stream.close()


def assert_connection_timeout(stream):
    started = time.monotonic()
    stream.expect_stream_error('connection-timeout', timeout=HANDSHAKE_TIMEOUT + 8)
    waited = time.monotonic() - started
    assert waited >= HANDSHAKE_TIMEOUT - 0.5, 'closed after only %.1fs' % waited


def test_silent_client_gets_connection_timeout():
    assert_connection_timeout(RawStream(server.c2s_port))


def test_client_stuck_after_header_gets_connection_timeout():
    assert_connection_timeout(opened())


def test_iq_before_bind_is_not_authorized():
    stream = opened()
    stream.starttls()
    stream.auth_plain(USER, PASSWORD)
    stream.send("<iq type='get' id='early' to='%s'><ping xmlns='%s'/></iq>"
                % (harness.DOMAIN, NS_PING))
    stream.expect_stream_error('not-authorized')


def test_bound_stream_still_works_after_all_that():
    stream = opened()
    full_jid = stream.login(USER, PASSWORD)
    stream.send("<iq type='get' id='late' to='%s'><ping xmlns='%s'/></iq>"
                % (harness.DOMAIN, NS_PING))
    reply = stream.expect(qname(NS_CLIENT, 'iq'))
    assert reply.get('type') == 'result' and reply.get('to') == full_jid, harness.tostring(reply)
    stream.close()


async def test_server_still_accepts_logins():
    client = await harness.login(server, JID + '/after', PASSWORD)
    await client.ping()
    await client.close()


if __name__ == '__main__':
    harness.run([test_not_well_formed,
                 test_billion_laughs_doctype_is_restricted_xml,
                 test_processing_instruction_is_restricted_xml,
                 test_comment_is_restricted_xml,
                 test_ten_megabyte_stanza_is_policy_violation,
                 test_iso_8859_1_is_unsupported_encoding,
                 test_invalid_utf8_is_not_well_formed,
                 test_wrong_stream_namespace_is_invalid_namespace,
                 test_unknown_host_is_host_unknown,
                 test_wrong_password_fails_and_the_stream_stays_open,
                 test_auth_before_starttls_is_encryption_required,
                 test_silent_client_gets_connection_timeout,
                 test_client_stuck_after_header_gets_connection_timeout,
                 test_iq_before_bind_is_not_authorized,
                 test_bound_stream_still_works_after_all_that,
                 test_server_still_accepts_logins],
                server=server, setup=lambda: server.adduser(JID, PASSWORD))
