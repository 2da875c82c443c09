#!/usr/bin/env python3
"""SD-JWT VC interoperability of vestnik's credentials core with an
independent implementation: npm @sd-jwt/sd-jwt-vc, @sd-jwt/core and
@sd-jwt/crypto-nodejs 0.19.0 with jose (credentials_npm.mjs).

Both directions, with ES256 and EdDSA issuers and holders: npm verifies the
credentials and key-bound presentations vestnik issues and presents, and
reads vestnik's 2-bit status lists (revoked and suspended refused); vestnik
verifies what npm issues and presents (nested objects and array elements
selectively disclosed), and refuses tampered ones with the precise error.
Selective disclosure is checked on what the verifier received: every part
of the presentation is decoded and no undisclosed claim name or value may
appear in any of them.

@sd-jwt's verify() alone is not a complete verifier (PEERS.md): it accepts
a disclosure the issuer never signed once the KB-JWT is signed again and
does not check aud, so credentials_npm.mjs verifies a second time on jose
alone (signed digests, aud, nonce, sd_hash, iat), and both must agree.

The C side is tests/credentials/sdjwt_tool (the library the module links,
on stdin/stdout). The HTTP side runs in a real vestnikd with
mod_credentials: the issuer metadata at /.well-known/jwt-vc-issuer/...
and the status lists over HTTPS, read by jose and @sd-jwt/jwt-status-list,
and the JSON errors of those routes. The module's end-to-end test
(test_credentials.py) drives the rest of the server.
Needs node and VN_SD_JWT_DIR (where .ci/run installs the npm packages);
without them the tests skip, or fail when VN_REQUIRE_PEERS=1.
"""
import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import time

import harness

NPM_DIR = os.environ.get('VN_SD_JWT_DIR')
NPM_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'credentials_npm.mjs')
TOOL = os.path.join(harness.builddir(), 'tests', 'credentials', 'sdjwt_tool')
ISS = 'https://localhost/university'
VCT = 'https://localhost/credentials/identity'
STATUS_URI = 'https://localhost/credentials/status/identity-1'
AUD = 'hotel@services.localhost'
NONCE = 'nonce-4bXq0p2z'
REGISTERED = {'iss', 'vct', 'iat', 'nbf', 'exp', 'cnf', 'status', 'sub'}

CLAIMS = {
    'given_name': 'Erika',
    'family_name': 'Mustermann',
    'birthdate': '1990-04-01',
    'age_over_18': True,
    'age_over_21': True,
    'address': {'street_address': 'Heidestrasse 17', 'locality': 'Koeln', 'country': 'DE'},
    'nationalities': ['DE', 'FR'],
}
# Names and values a presentation of age_over_18 and address.locality must
# not carry in any form.
UNDISCLOSED = ['given_name', 'Erika', 'family_name', 'Mustermann', 'birthdate', '1990-04-01',
               'age_over_21', 'street_address', 'Heidestrasse', 'nationalities', '"FR"', 'country']


def tool(op, req):
    out = subprocess.run([TOOL, op], input=json.dumps(req), capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, (op, out.stdout, out.stderr)
    return json.loads(out.stdout)


def npm(op, req):
    env = dict(os.environ, VN_SD_JWT_DIR=NPM_DIR)
    out = subprocess.run(['node', NPM_SCRIPT, op], input=json.dumps(req), capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode == 0, (op, out.stdout, out.stderr)
    return json.loads(out.stdout)


def b64d(text):
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def sha256(text):
    return b64e(hashlib.sha256(text.encode()).digest())


def decoded_parts(presentation):
    """Every part of a presentation as text: the JWT's header and payload,
    each disclosure, the KB-JWT's header and payload."""
    parts = presentation.split('~')
    texts = []
    for jwt in (parts[0], parts[-1]):
        if jwt:
            texts += [b64d(p).decode() for p in jwt.split('.')[:2]]
    texts += [b64d(d).decode() for d in parts[1:-1]]
    return texts


def assert_only_disclosed(presentation, hidden):
    for text in decoded_parts(presentation):
        for word in hidden:
            assert word not in text, (word, text)


def user_claims(claims):
    return {k: v for k, v in claims.items() if k not in REGISTERED}


def status_list(issuer_pem, statuses):
    return tool('statuslist', {'issuer_pem': issuer_pem, 'uri': STATUS_URI, 'entries': 1000,
                               'set': {str(k): v for k, v in statuses.items()},
                               'exp': int(time.time()) + 3600, 'ttl': 300})['jwt']


def vestnik_credential(issuer, holder, idx=3, exp=3600):
    now = int(time.time())
    return tool('issue', {'issuer_pem': issuer['private_pem'], 'iss': ISS, 'vct': VCT,
                          'iat': now - 10, 'exp': now + exp, 'holder_jwk': holder['jwk'],
                          'status_uri': STATUS_URI, 'status_idx': idx,
                          'claims': CLAIMS})['sdjwt']


def vestnik_present(sdjwt, holder, paths, aud=AUD, nonce=NONCE, iat=None):
    return tool('present', {'sdjwt': sdjwt, 'paths': paths, 'holder_pem': holder['private_pem'],
                            'aud': aud, 'nonce': nonce,
                            'iat': iat or int(time.time())})['presentation']


def npm_verify(presentation, issuer, statuses=None, aud=AUD, nonce=NONCE):
    lists = {STATUS_URI: status_list(issuer['private_pem'], statuses or {})}
    return npm('verify', {'presentation': presentation, 'issuer_jwk': issuer['jwk'], 'aud': aud,
                          'nonce': nonce, 'now': int(time.time()), 'status_lists': lists})


def vestnik_verify(presentation, issuer, statuses=None, aud=AUD, nonce=NONCE, issuers=None):
    lists = {STATUS_URI: status_list(issuer['private_pem'], statuses or {})}
    return tool('verify', {'presentation': presentation,
                           'issuers': issuers if issuers is not None else {ISS: issuer['jwk']},
                           'aud': aud, 'nonce': nonce, 'require_kb': True, 'vct': VCT,
                           'status_lists': lists})


def keys(alg):
    return tool('keygen', {'alg': alg})


def npm_keys(alg):
    """An npm-made key pair, with the public JWK vestnik's verifier gets."""
    pair = npm('keygen', {'alg': alg})
    pair['alg'] = alg
    return pair


# ---- vestnik issues and presents, npm verifies

def test_npm_verifies_vestnik_presentations():
    for issuer_alg, holder_alg in (('ES256', 'EdDSA'), ('EdDSA', 'ES256')):
        issuer, holder = keys(issuer_alg), keys(holder_alg)
        sdjwt = vestnik_credential(issuer, holder)
        pres = vestnik_present(sdjwt, holder, ['age_over_18', 'address.locality'])
        result = npm_verify(pres, issuer)
        assert result['npm']['ok'], result
        assert result['independent']['ok'], result
        expected = {'age_over_18': True, 'address': {'locality': 'Koeln'}}
        assert user_claims(result['npm']['payload']) == expected, result
        assert user_claims(result['independent']['claims']) == expected, result
        assert result['npm']['kb']['aud'] == AUD, result
        assert_only_disclosed(pres, UNDISCLOSED)
        # One element of an array: npm sees that one and nothing of the other.
        one = vestnik_present(sdjwt, holder, ['nationalities.1'])
        result = npm_verify(one, issuer)
        assert result['npm']['ok'] and result['independent']['ok'], result
        assert user_claims(result['npm']['payload']) == {'nationalities': ['FR']}, result
        assert_only_disclosed(one, ['"DE"', 'Erika', 'Koeln', 'age_over_18'])
        # The credential itself, every claim disclosed, also verifies in npm.
        full = vestnik_present(sdjwt, holder, sorted(CLAIMS))
        result = npm_verify(full, issuer)
        assert result['npm']['ok'] and user_claims(result['npm']['payload']) == CLAIMS, result


def test_npm_reads_vestnik_status_lists():
    """2 bits per entry: 0 valid, 1 revoked, 2 suspended; npm refuses both."""
    issuer, holder = keys('ES256'), keys('EdDSA')
    pres = vestnik_present(vestnik_credential(issuer, holder, idx=517), holder, ['age_over_18'])
    assert npm_verify(pres, issuer, {516: 1, 518: 2})['npm']['ok']
    for status in (1, 2):
        result = npm_verify(pres, issuer, {517: status})
        assert not result['npm']['ok'] and 'Status is not valid' in result['npm']['error'], result
    assert vestnik_verify(pres, issuer, {517: 1})['error'] == 'revoked'
    assert vestnik_verify(pres, issuer, {517: 2})['error'] == 'suspended'
    assert vestnik_verify(pres, issuer, {517: 0})['ok']


def forge_kb(body, holder_pem, alg, aud=AUD, nonce=NONCE):
    """body ("<jwt>~<disclosures>~", as given) bound again with a KB-JWT of
    the holder's, as a dishonest holder would after altering disclosures."""
    return npm('bind', {'body': body, 'holder_pem': holder_pem, 'alg': alg, 'aud': aud,
                        'nonce': nonce, 'iat': int(time.time())})['presentation']


def test_tampered_vestnik_presentations_refused():
    issuer, holder = keys('ES256'), keys('ES256')
    sdjwt = vestnik_credential(issuer, holder)
    pres = vestnik_present(sdjwt, holder, ['age_over_18'])
    jwt, disclosure = pres.split('~')[:2]
    salt = json.loads(b64d(disclosure))[0]

    # A disclosure the issuer never signed ("age_over_21": true with the
    # same salt), the KB-JWT signed again: @sd-jwt's verify() alone lets
    # this through (PEERS.md); the independent check and vestnik do not.
    forged = b64e(json.dumps([salt, 'age_over_21', True]).encode())
    bad = '%s~%s~' % (jwt, forged)
    bad = forge_kb(bad, holder['private_pem'], 'ES256')
    result = npm_verify(bad, issuer)
    assert not result['independent']['ok'] and 'unsigned' in result['independent']['error'], result
    assert vestnik_verify(bad, issuer)['error'] == 'unsigned_disclosure'

    # A signed disclosure swapped in after binding: sd_hash.
    full = sdjwt.split('~')
    given = next(d for d in full[1:-1] if json.loads(b64d(d))[1] == 'given_name')
    parts = pres.split('~')
    swapped = '~'.join([parts[0], given] + parts[2:])
    result = npm_verify(swapped, issuer)
    assert not result['npm']['ok'] and not result['independent']['ok'], result
    assert vestnik_verify(swapped, issuer)['error'] == 'sd_hash_mismatch'

    # The issuer's signature broken.
    head, payload, sig = jwt.split('.')
    claims = json.loads(b64d(payload))
    claims['vct'] = 'https://localhost/credentials/diplomatic-passport'
    resigned = '.'.join([head, b64e(json.dumps(claims).encode()), sig])
    bad = forge_kb('%s~%s~' % (resigned, disclosure), holder['private_pem'], 'ES256')
    result = npm_verify(bad, issuer)
    assert not result['npm']['ok'] and not result['independent']['ok'], result
    assert vestnik_verify(bad, issuer)['error'] == 'invalid_signature'

    # For another verifier, for another request.
    result = npm_verify(pres, issuer, aud='museum@services.localhost')
    assert not result['independent']['ok'] and result['independent']['error'] == 'aud', result
    assert vestnik_verify(pres, issuer, aud='museum@services.localhost')['error'] == \
        'wrong_audience'
    result = npm_verify(pres, issuer, nonce='another')
    assert not result['npm']['ok'] and not result['independent']['ok'], result
    assert vestnik_verify(pres, issuer, nonce='another')['error'] == 'wrong_nonce'


# ---- npm issues and presents, vestnik verifies

FRAME = {'_sd': ['given_name', 'family_name', 'birthdate', 'age_over_18', 'age_over_21',
                 'address', 'nationalities'],
         'address': {'_sd': ['street_address', 'locality', 'country']},
         'nationalities': {'_sd': [0, 1]},
         '_sd_decoy': 2}


def npm_credential(issuer, holder, exp=3600, iat=None):
    now = int(time.time())
    payload = dict(CLAIMS, iss=ISS, vct=VCT, iat=iat or now - 10, exp=now + exp,
                   cnf={'jwk': holder['jwk']},
                   status={'status_list': {'idx': 12, 'uri': STATUS_URI}})
    return npm('issue', {'issuer_pem': issuer['private_pem'], 'alg': issuer['alg'],
                         'kid': 'npm-key-1', 'payload': payload, 'frame': FRAME})['sdjwt']


def npm_present(sdjwt, holder, alg, frame, aud=AUD, nonce=NONCE, iat=None):
    return npm('present', {'sdjwt': sdjwt, 'frame': frame, 'holder_pem': holder['private_pem'],
                           'alg': alg, 'aud': aud, 'nonce': nonce,
                           'iat': iat or int(time.time())})['presentation']


def test_vestnik_verifies_npm_presentations():
    for issuer_alg, holder_alg in (('ES256', 'EdDSA'), ('EdDSA', 'ES256')):
        issuer, holder = npm_keys(issuer_alg), keys(holder_alg)
        sdjwt = npm_credential(issuer, holder)
        frame = {'age_over_18': True, 'address': {'locality': True}, 'nationalities': {1: True}}
        pres = npm_present(sdjwt, holder, holder_alg, frame)
        result = vestnik_verify(pres, issuer)
        assert result['ok'], result
        expected = {'age_over_18': True, 'address': {'locality': 'Koeln'},
                    'nationalities': ['FR']}
        assert user_claims(result['claims']) == expected, result
        assert result['key_bound'] and len(result['sd_hash']) == 43, result
        assert set(result['disclosed']) == {'age_over_18', 'address', 'address.locality',
                                            'nationalities', 'nationalities.0'}, result
        # vestnik, as the holder's wallet, presents npm's credential; npm
        # and vestnik both accept it, with exactly the chosen claims.
        mine = vestnik_present(sdjwt, holder, ['age_over_21', 'nationalities'])
        result = npm_verify(mine, issuer)
        assert result['npm']['ok'] and result['independent']['ok'], result
        expected = {'age_over_21': True, 'nationalities': ['DE', 'FR']}
        assert user_claims(result['npm']['payload']) == expected, result
        assert user_claims(vestnik_verify(mine, issuer)['claims']) == expected
        assert_only_disclosed(mine, ['Erika', 'Mustermann', 'Heidestrasse', 'Koeln', 'birthdate',
                                     'age_over_18'])


def test_vestnik_refuses_tampered_npm_presentations():
    issuer, holder = npm_keys('ES256'), keys('EdDSA')
    sdjwt = npm_credential(issuer, holder)
    frame = {'age_over_18': True}
    pres = npm_present(sdjwt, holder, 'EdDSA', frame)
    assert vestnik_verify(pres, issuer)['ok']

    def refused(presentation, error, **kw):
        result = vestnik_verify(presentation, issuer, **kw)
        assert not result['ok'] and result['error'] == error, (error, result)
        assert 'claims' not in result, result

    # A changed disclosure, bound again by the holder.
    jwt, disclosure = pres.split('~')[:2]
    salt, name, _ = json.loads(b64d(disclosure))
    forged = b64e(json.dumps([salt, name, False]).encode())
    refused(forge_kb('%s~%s~' % (jwt, forged), holder['private_pem'], 'EdDSA'),
            'unsigned_disclosure')
    # The same disclosure twice.
    refused(forge_kb('%s~%s~%s~' % (jwt, disclosure, disclosure), holder['private_pem'], 'EdDSA'),
            'duplicate_disclosure')
    # Bound by a key that is not the credential's cnf.
    stranger = keys('EdDSA')
    refused(forge_kb('%s~%s~' % (jwt, disclosure), stranger['private_pem'], 'EdDSA'),
            'invalid_key_binding')
    # No key binding at all.
    refused('%s~%s~' % (jwt, disclosure), 'missing_key_binding')
    # Wrong audience, wrong nonce, too old.
    refused(npm_present(sdjwt, holder, 'EdDSA', frame, aud='museum@services.localhost'),
            'wrong_audience')
    refused(npm_present(sdjwt, holder, 'EdDSA', frame, nonce='replayed'), 'wrong_nonce')
    refused(npm_present(sdjwt, holder, 'EdDSA', frame, iat=int(time.time()) - 3600),
            'stale_presentation')
    # Expired; revoked; suspended; an issuer nobody trusts.
    expired = npm_credential(issuer, holder, exp=-120, iat=int(time.time()) - 7200)
    refused(npm_present(expired, holder, 'EdDSA', frame), 'expired')
    refused(pres, 'revoked', statuses={12: 1})
    refused(pres, 'suspended', statuses={12: 2})
    refused(pres, 'unknown_issuer', issuers={})
    other = npm_keys('ES256')
    refused(pres, 'invalid_signature', issuers={ISS: other['jwk']})
    # Cut short, or not an SD-JWT at all.
    refused(pres[:len(pres) // 2], 'malformed')
    refused('not an sd-jwt', 'malformed')


# ---- the HTTP routes of a running server

class CredentialsServer(harness.Server):
    """vestnikd with an https listener and mod_credentials holding one
    issuer's key (generated at first start)."""

    def __init__(self):
        self.https_port, = harness.free_ports(1)
        super().__init__()

    def write_config(self):
        super().write_config()
        issuers = os.path.join(self.dir, 'issuers.json')
        with open(issuers, 'w') as f:
            json.dump({'issuers': [{'id': 'university', 'name': 'Example University',
                                    'jid': 'registrar@localhost', 'types': ['student']}]}, f)
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('listeners:\n', """listeners:
  - type: https
    address: 127.0.0.1
    port: %d
""" % self.https_port, 1)
        text += """  adhoc:
  credentials:
    issuers_file: %s
    base_url: %s
""" % (issuers, self.base_url())
        with open(self.config_path, 'w') as f:
            f.write(text)

    def base_url(self):
        return 'https://127.0.0.1:%d' % self.https_port

    def request(self, method, path, headers=None):
        conn = http.client.HTTPSConnection('127.0.0.1', self.https_port, timeout=10,
                                           context=harness.insecure_tls_context())
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


server = CredentialsServer()


def test_issuer_metadata_and_status_list_over_https():
    """What a verifier fetches: the issuer's keys at the SD-JWT VC
    well-known URL and its status list, both checked by jose and
    @sd-jwt/jwt-status-list; and the same status list through the C
    verifier with the published key."""
    iss = server.base_url() + '/issuers/university'
    status, headers, body = server.request('GET', '/.well-known/jwt-vc-issuer/issuers/university')
    assert status == 200 and headers['Content-Type'] == 'application/json', (status, body)
    meta = json.loads(body)
    assert meta['issuer'] == iss, meta
    (jwk,) = meta['jwks']['keys']
    assert jwk['alg'] == 'ES256' and jwk['kty'] == 'EC' and 'd' not in jwk, jwk
    # The kid is the RFC 7638 thumbprint of the key.
    canon = json.dumps({k: jwk[k] for k in ('crv', 'kty', 'x', 'y')}, separators=(',', ':'),
                       sort_keys=True)
    assert jwk['kid'] == sha256(canon), jwk

    uri = server.base_url() + '/credentials/status/university'
    status, headers, body = server.request('GET', '/credentials/status/university')
    assert status == 200, (status, body)
    assert headers['Content-Type'] == 'application/statuslist+jwt', headers
    assert headers['Cache-Control'].startswith('max-age='), headers
    jwt = body.decode()
    read = npm('statuslist', {'jwt': jwt, 'jwk': jwk, 'uri': uri, 'idx': 0})
    assert read == {'ok': True, 'bits': 2, 'status': 0}, read
    # HEAD: the same headers, no body.
    status, headers, body = server.request('HEAD', '/credentials/status/university')
    assert status == 200 and body == b'' and int(headers['Content-Length']) == len(jwt), headers


def test_http_errors_are_json():
    for path in ('/.well-known/jwt-vc-issuer/issuers/nobody', '/.well-known/jwt-vc-issuer',
                 '/.well-known/jwt-vc-issuerX', '/credentials/status/nobody',
                 '/credentials/status/', '/credentials/link/not-a-token'):
        status, headers, body = server.request('GET', path)
        assert status == 404, (path, status, body)
        assert headers['Content-Type'] == 'application/json', (path, headers)
        error = json.loads(body)
        assert error['error'] == 'not_found' and error['error_description'], (path, error)
    for method in ('POST', 'PUT', 'DELETE'):
        status, headers, body = server.request(method, '/credentials/status/university')
        assert status == 405 and headers['Allow'] == 'GET, HEAD', (method, status, headers)
        assert json.loads(body)['error'] == 'method_not_allowed', body


def peer_missing():
    if not NPM_DIR or not os.path.isdir(os.path.join(NPM_DIR, 'node_modules', '@sd-jwt')):
        return 'VN_SD_JWT_DIR does not name a directory with @sd-jwt installed'
    if not shutil.which('node'):
        return 'no node'
    return None


if __name__ == '__main__':
    with_npm = [test_npm_verifies_vestnik_presentations, test_npm_reads_vestnik_status_lists,
                test_tampered_vestnik_presentations_refused,
                test_vestnik_verifies_npm_presentations,
                test_vestnik_refuses_tampered_npm_presentations,
                test_issuer_metadata_and_status_list_over_https]
    missing = peer_missing()
    if missing and os.environ.get('VN_REQUIRE_PEERS') != '1':
        skipped = []
        for test in with_npm:
            def skip():
                pass
            skip.__name__ = '%s # SKIP %s' % (test.__name__, missing)
            skipped.append(skip)
        with_npm = skipped
    elif missing:
        def peer_present():
            raise AssertionError('VN_REQUIRE_PEERS=1 but ' + missing)
        with_npm = [peer_present] + with_npm
    harness.run(with_npm + [test_http_errors_are_json], server=server, timeout=120)
