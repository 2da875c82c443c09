#!/usr/bin/env python3
"""test_login.py - stream negotiation and login, from features to a bound session.

Covers what a client sees before and after TLS and SASL, every SASL
mechanism the server offers (with slixmpp, libstrophe and, for -PLUS, our
own SCRAM client), resource binding and the ping/version/disco modules.
"""

import base64
import os
import re
import subprocess

import harness
from harness import (NS_BIND, NS_CLIENT, NS_PING, NS_SASL, NS_SESSION, NS_TLS,
                     RawStream, Scram, qname, tostring)

USER, PASSWORD = 'alice', 'wonder land'
JID = USER + '@' + harness.DOMAIN
NS_SASL_CB = 'urn:xmpp:sasl-cb:0'
MECHANISMS = {'SCRAM-SHA-256', 'SCRAM-SHA-1', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS',
              'PLAIN'}

server = harness.Server()


def children(elem):
    return [child.tag for child in elem]


def mechanisms(features):
    mechs = features.find(qname(NS_SASL, 'mechanisms'))
    assert mechs is not None, 'no mechanisms in %s' % tostring(features)
    return {m.text for m in mechs.findall(qname(NS_SASL, 'mechanism'))}


def test_features_before_tls_are_only_required_starttls():
    stream = RawStream(server.c2s_port)
    stream.open()
    features = stream.features()
    assert children(features) == [qname(NS_TLS, 'starttls')], tostring(features)
    starttls = features.find(qname(NS_TLS, 'starttls'))
    assert children(starttls) == [qname(NS_TLS, 'required')], tostring(features)
    assert stream.header.get('from') == harness.DOMAIN, stream.received[:300]
    assert stream.header.get('version') == '1.0', stream.received[:300]
    assert stream.header.get('id'), stream.received[:300]
    stream.close()


def test_mechanisms_after_starttls_include_plain():
    stream = RawStream(server.c2s_port)
    stream.open()
    features = stream.starttls()
    assert features.find(qname(NS_TLS, 'starttls')) is None, tostring(features)
    assert mechanisms(features) == MECHANISMS, tostring(features)
    stream.close()


def test_mechanisms_on_direct_tls_include_plain():
    stream = RawStream(server.tls_port, tls=True)
    stream.open()
    features = stream.features()
    assert features.find(qname(NS_TLS, 'starttls')) is None, tostring(features)
    assert mechanisms(features) == MECHANISMS, tostring(features)
    stream.close()


def test_features_after_auth_are_bind_and_optional_session():
    stream = RawStream(server.c2s_port)
    stream.open()
    stream.starttls()
    features = stream.auth_plain(USER, PASSWORD)
    assert features.find(qname(NS_SASL, 'mechanisms')) is None, tostring(features)
    assert features.find(qname(NS_BIND, 'bind')) is not None, tostring(features)
    session = features.find(qname(NS_SESSION, 'session'))
    assert session is not None, tostring(features)
    assert children(session) == [qname(NS_SESSION, 'optional')], tostring(features)
    stream.close()


def test_empty_bind_gets_a_server_generated_resource():
    stream = RawStream(server.c2s_port)
    stream.open()
    full_jid = stream.login(USER, PASSWORD)
    bare, slash, resource = full_jid.partition('/')
    assert bare == JID and slash and resource, full_jid
    stream.send("<iq type='get' id='p1' to='%s'><ping xmlns='%s'/></iq>"
                % (harness.DOMAIN, NS_PING))
    reply = stream.expect(qname(NS_CLIENT, 'iq'))
    assert reply.get('type') == 'result' and reply.get('id') == 'p1', tostring(reply)
    assert reply.get('from') == harness.DOMAIN and reply.get('to') == full_jid, tostring(reply)
    stream.close()


def test_requested_resource_is_bound():
    stream = RawStream(server.c2s_port)
    stream.open()
    assert stream.login(USER, PASSWORD, resource='desk') == JID + '/desk'
    stream.close()


def scram_plus(stream, hash_name):
    features = stream.starttls()
    assert 'SCRAM-%s-PLUS' % {'sha1': 'SHA-1', 'sha256': 'SHA-256'}[hash_name] \
        in mechanisms(features), tostring(features)
    binding = features.find(qname(NS_SASL_CB, 'sasl-channel-binding'))
    assert binding is not None, 'no XEP-0440 channel binding list: %s' % tostring(features)
    types = {cb.get('type') for cb in binding.findall(qname(NS_SASL_CB, 'channel-binding'))}
    assert 'tls-server-end-point' in types, tostring(binding)
    cb_data = harness.tls_server_end_point(stream.sock.getpeercert(binary_form=True))
    scram = Scram(hash_name, USER, PASSWORD, 'tls-server-end-point', cb_data)
    stream.auth_scram(scram)
    assert stream.bind().startswith(JID + '/')


def test_scram_sha_256_plus_with_tls_server_end_point():
    stream = RawStream(server.c2s_port)
    stream.open()
    scram_plus(stream, 'sha256')
    stream.close()


def test_scram_sha_1_plus_with_tls_server_end_point():
    stream = RawStream(server.c2s_port)
    stream.open()
    scram_plus(stream, 'sha1')
    stream.close()


def test_scram_plus_with_wrong_binding_data_fails():
    stream = RawStream(server.c2s_port)
    stream.open()
    stream.starttls()
    scram = Scram('sha256', USER, PASSWORD, 'tls-server-end-point', b'\0' * 32)
    stream.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                % (NS_SASL, scram.mechanism, harness.b64(scram.client_first())))
    challenge = stream.expect(qname(NS_SASL, 'challenge'))
    final = scram.client_final(harness.base64.b64decode(challenge.text))
    stream.send("<response xmlns='%s'>%s</response>" % (NS_SASL, harness.b64(final)))
    assert stream.sasl_failure() == ['not-authorized']
    stream.close()


async def slixmpp_login(mechanism, direct_tls=False):
    client = await harness.login(server, JID + '/sx', PASSWORD, mechanism, direct_tls)
    assert str(client.boundjid) == JID + '/sx', client.boundjid
    await client.ping()
    await client.close()


async def test_unmodified_slixmpp_falls_back_to_scram_sha_256():
    # Debian 12's slixmpp tries -PLUS with tls-unique (refused on TLS 1.3),
    # then SCRAM-SHA-256 with the gs2 flag 'y', which the server accepts
    # because that same stream saw the client try -PLUS first.
    for direct_tls in (False, True):
        await slixmpp_login(None, direct_tls)
    logins = re.findall(r'authenticated (\S+) with (\S+)', server.log_text())
    assert logins[-2:] == [(JID, 'SCRAM-SHA-256')] * 2, logins


async def test_slixmpp_scram_sha_256_over_starttls():
    await slixmpp_login('SCRAM-SHA-256')


async def test_slixmpp_scram_sha_256_over_direct_tls():
    await slixmpp_login('SCRAM-SHA-256', direct_tls=True)


async def test_slixmpp_scram_sha_1():
    await slixmpp_login('SCRAM-SHA-1')


async def test_slixmpp_plain_over_tls():
    await slixmpp_login('PLAIN')


async def test_slixmpp_plain_over_direct_tls():
    await slixmpp_login('PLAIN', direct_tls=True)


async def test_ping_version_and_disco_info():
    client = await harness.login(server, JID + '/q', PASSWORD)
    pong = await client.ping()
    assert pong['from'] == harness.DOMAIN, pong
    version = await client['xep_0092'].get_version(harness.DOMAIN, timeout=5)
    assert version['type'] == 'result', version
    assert version['software_version']['name'] == 'vestnik', version
    assert version['software_version']['version'], version
    info = await client['xep_0030'].get_info(jid=harness.DOMAIN, local=False, cached=False,
                                              timeout=5)
    features = set(info['disco_info']['features'])
    for feature in ('urn:xmpp:ping', 'jabber:iq:version', 'http://jabber.org/protocol/disco#info'):
        assert feature in features, '%s missing from %s' % (feature, sorted(features))
    assert info['disco_info']['identities'], info
    await client.close()


def strophe_login(port, *extra):
    client = os.path.join(harness.builddir(), 'tests', 'integration', 'strophe_client')
    result = subprocess.run([client, '127.0.0.1', str(port), JID, PASSWORD, *extra],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=20)
    assert result.returncode == 0, 'strophe_client %s exited %d:\n%s%s' % (
        ' '.join(extra), result.returncode, result.stdout, result.stderr)
    assert "mechanism: SCRAM-SHA-256\n" in result.stdout, result.stdout


def test_libstrophe_over_starttls():
    strophe_login(server.c2s_port)


def test_libstrophe_over_direct_tls():
    strophe_login(server.tls_port, '--direct-tls')


async def test_server_still_accepts_logins():
    await slixmpp_login('SCRAM-SHA-256')


class IterationsServer(harness.Server):
    """New accounts get auth.scram_iterations 5000."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('auth:\n  scram_iterations: 5000\n')


def test_unknown_names_get_the_configured_iteration_count():
    # The SCRAM challenge for a name with no account must not differ from
    # that for a real one, or accounts can be enumerated.
    server = IterationsServer()
    try:
        server.start()
        server.adduser('real@' + harness.DOMAIN, PASSWORD)
        counts = {}
        for user in ('real', 'nobody-here'):
            stream = harness.RawStream(server.c2s_port)
            try:
                stream.open()
                stream.starttls()
                scram = Scram('sha256', user, PASSWORD)
                stream.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
                            % (NS_SASL, scram.mechanism, harness.b64(scram.client_first())))
                challenge = stream.expect(qname(NS_SASL, 'challenge'))
                fields = dict(kv.split('=', 1) for kv in
                              base64.b64decode(challenge.text).decode().split(','))
                counts[user] = fields['i']
            finally:
                stream.close()
        assert counts == {'real': '5000', 'nobody-here': '5000'}, counts
    finally:
        server.stop()


if __name__ == '__main__':
    harness.run([test_features_before_tls_are_only_required_starttls,
                 test_unmodified_slixmpp_falls_back_to_scram_sha_256,
                 test_mechanisms_after_starttls_include_plain,
                 test_mechanisms_on_direct_tls_include_plain,
                 test_features_after_auth_are_bind_and_optional_session,
                 test_empty_bind_gets_a_server_generated_resource,
                 test_requested_resource_is_bound,
                 test_scram_sha_256_plus_with_tls_server_end_point,
                 test_scram_sha_1_plus_with_tls_server_end_point,
                 test_scram_plus_with_wrong_binding_data_fails,
                 test_slixmpp_scram_sha_256_over_starttls,
                 test_slixmpp_scram_sha_256_over_direct_tls,
                 test_slixmpp_scram_sha_1,
                 test_slixmpp_plain_over_tls,
                 test_slixmpp_plain_over_direct_tls,
                 test_ping_version_and_disco_info,
                 test_libstrophe_over_starttls,
                 test_libstrophe_over_direct_tls,
                 test_server_still_accepts_logins,
                 test_unknown_names_get_the_configured_iteration_count],
                server=server, setup=lambda: server.adduser(JID, PASSWORD))
