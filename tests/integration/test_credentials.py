#!/usr/bin/env python3
"""test_credentials.py - digital documents end to end (issue 15's "Done
when", doc/documents.md step by step, xeps/documents.md).

A slixmpp user on the real server receives a student card from the example
issuer (examples/university_issuer, a libstrophe component the test
starts), shows "over 18" and nothing else to the example hotel
(examples/hotel_verifier, libstrophe) through the "Requests" ad-hoc
command; the npm verifier (examples/hotel_verifier.mjs on @sd-jwt 0.19.0
and jose) accepts that presentation and rejects tampered ones; vestnik's
own verifier refuses a replay; the registrar revokes the card and both
verifiers refuse it, the wallet shows it revoked and a new request is
declined; a bank has a consent signed (a detached JWS over the document's
SHA-256, checked here with the cryptography package); the user reads the
audit log ("Who saw what", "History").

Needs node and VN_SD_JWT_DIR (where .ci/run installs the npm packages) for
the npm half; without them that part skips, or fails when VN_REQUIRE_PEERS=1.
"""

import asyncio
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness

D = harness.DOMAIN
WALLET = 'documents.' + D
UNIVERSITY = 'university.' + D
SECRET = 'university-secret'
PASSWORD = 'secret-password'
ALICE = 'alice@' + D
HOTEL = 'hotel@' + D
REGISTRAR = 'registrar@' + D
BANK = 'bank@' + D
NS = 'urn:vestnik:documents:0'
NS_COMMANDS = 'http://jabber.org/protocol/commands'
NS_DATA = 'jabber:x:data'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_OOB = 'jabber:x:oob'
NPM_DIR = os.environ.get('VN_SD_JWT_DIR')
STUDENT = ('alice@localhost', 'Alice', 'Liddell', '2004-05-04', 'S-1865', 'Mathematics')


class CredentialsServer(harness.Server):
    """vestnikd with a component listener for the university, http(s)
    listeners for keys, status lists and QR codes, and the module."""

    def __init__(self, **options):
        """options: more keys of modules.credentials."""
        self.component_port, self.http_port, self.https_port = harness.free_ports(3)
        self.options = options
        super().__init__()

    def write_config(self):
        super().write_config()
        self.issuers_path = os.path.join(self.dir, 'issuers.json')
        with open(self.issuers_path, 'w') as f:
            json.dump({'issuers': [
                {'id': 'university', 'name': 'Example University', 'jid': UNIVERSITY,
                 'types': ['student']},
                {'id': 'registry', 'name': 'Civil registry', 'jid': 'registry@' + D,
                 'types': ['identity', 'driving_licence']},
            ]}, f)
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('listeners:\n', f"""listeners:
  - type: component
    address: 127.0.0.1
    port: {self.component_port}
  - type: http
    address: 127.0.0.1
    port: {self.http_port}
  - type: https
    address: 127.0.0.1
    port: {self.https_port}
""", 1)
        text += f"""  adhoc:
  credentials:
    issuers_file: {self.issuers_path}
    base_url: https://127.0.0.1:{self.https_port}
    request_timeout: 30
{''.join('    %s: %s' % item + chr(10) for item in self.options.items())}components:
  - domain: {UNIVERSITY}
    secret: {SECRET}
    name: Example University
"""
        with open(self.config_path, 'w') as f:
            f.write(text)

    def start_university(self):
        students = os.path.join(self.dir, 'students.txt')
        with open(students, 'w') as f:
            f.write(';'.join(STUDENT) + '\n')
        env = dict(os.environ, VESTNIK_COMPONENT_SECRET=SECRET)
        self.university = subprocess.Popen(
            [os.path.join(harness.builddir(), 'examples', 'university_issuer'), '-d', UNIVERSITY,
             '-w', WALLET, '-f', students, '-a', REGISTRAR, '-p', str(self.component_port)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while 'component %s connected' % UNIVERSITY not in self.log_text():
            assert self.university.poll() is None, self.university.stderr.read()
            assert time.monotonic() < deadline, 'the university did not connect'
            time.sleep(0.1)

    def stop_university(self):
        if self.university.poll() is None:
            self.university.send_signal(signal.SIGTERM)
            assert self.university.wait(10) == 0


server = CredentialsServer()


def setup():
    for jid in (ALICE, HOTEL, REGISTRAR, BANK, 'bob@' + D, 'registry@' + D):
        server.adduser(jid, PASSWORD)
    server.start_university()


def peer_missing():
    if not shutil.which('node'):
        return 'node is not installed'
    if not NPM_DIR or not os.path.isdir(os.path.join(NPM_DIR, 'node_modules', '@sd-jwt',
                                                     'sd-jwt-vc')):
        return 'VN_SD_JWT_DIR does not name a directory with @sd-jwt installed'
    return None


def require_npm():
    """True when the npm half can run; raises in CI when it cannot."""
    missing = peer_missing()
    if missing and os.environ.get('VN_REQUIRE_PEERS') == '1':
        raise AssertionError('VN_REQUIRE_PEERS=1 but ' + missing)
    return missing is None


# ------------------------------------------------------------ client helpers

async def user(jid, resource='phone'):
    client = await harness.login(server, '%s/%s' % (jid, resource), PASSWORD)
    # slixmpp's "message" event is for messages with a body; the documents
    # protocol's answers have none.
    for name in ('presentation', 'declined', 'signature'):
        client.register_handler(Callback(
            'documents ' + name, MatchXPath('{jabber:client}message/{%s}%s' % (NS, name)),
            client.messages.put_nowait))
    client.send_presence()
    return client


async def message_from(client, sender, contains=None, timeout=20):
    """The next message from sender (bare or full) with contains in its body
    (or with no body check); other messages are dropped."""
    def matches(msg):
        return (msg['type'] != 'error' and
                (msg['from'].bare == sender or str(msg['from']) == sender) and
                (contains is None or contains in msg['body']))
    kept = client.__dict__.setdefault('kept_messages', [])
    for msg in kept:
        if matches(msg):
            kept.remove(msg)
            return msg
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, 'no message from %s containing %r; kept: %s' % (
            sender, contains, [m['body'] for m in kept])
        try:
            msg = await asyncio.wait_for(client.messages.get(), left)
        except asyncio.TimeoutError:
            continue
        if matches(msg):
            return msg
        kept.append(msg)


async def chat(client, text, to=WALLET, expect=None):
    client.send_message(mto=to, mbody=text, mtype='chat')
    return (await message_from(client, to, expect))['body']


def element(xml):
    return ET.fromstring(xml)


async def send_iq(client, payload, type_='set', to=WALLET):
    """The reply iq's XML (a result, or the error's iq)."""
    iq = client.Iq()
    iq['type'] = type_
    iq['to'] = to
    iq.append(element(payload) if isinstance(payload, str) else payload)
    try:
        return (await iq.send(timeout=10)).xml
    except IqError as e:
        return e.iq.xml


def conditions(reply):
    """(stanza condition, documents condition) of an error reply."""
    error = reply.find('{jabber:client}error')
    assert reply.get('type') == 'error' and error is not None, ET.tostring(reply)
    stanza = [c.tag.split('}')[1] for c in error
              if c.tag.startswith('{%s}' % NS_STANZAS) and not c.tag.endswith('}text')]
    ours = [c.tag.split('}')[1] for c in error if c.tag.startswith('{%s}' % NS)]
    return stanza[0], (ours[0] if ours else None)


async def command(client, node, fields=None):
    """Run an ad-hoc command of the host: execute, then (with fields)
    complete with the form filled in. Returns the last <command/>."""
    reply = await send_iq(client, "<command xmlns='%s' node='%s#%s' action='execute'/>"
                          % (NS_COMMANDS, NS, node), to=D)
    assert reply.get('type') == 'result', ET.tostring(reply)
    cmd = reply.find('{%s}command' % NS_COMMANDS)
    if fields is None:
        return cmd
    form = cmd.find('{%s}x' % NS_DATA)
    assert form is not None, ET.tostring(cmd)
    values = fields(form) if callable(fields) else fields
    x = ET.Element('{%s}x' % NS_DATA, type='submit')
    for var, value in values.items():
        f = ET.SubElement(x, '{%s}field' % NS_DATA, var=var)
        for v in (value if isinstance(value, list) else [value]):
            ET.SubElement(f, '{%s}value' % NS_DATA).text = v
    # The hidden fields go back as they came.
    for field in form.findall('{%s}field' % NS_DATA):
        if field.get('type') == 'hidden' and field.get('var') not in values:
            f = ET.SubElement(x, '{%s}field' % NS_DATA, var=field.get('var'))
            ET.SubElement(f, '{%s}value' % NS_DATA).text = field.findtext('{%s}value' % NS_DATA)
    c = ET.Element('{%s}command' % NS_COMMANDS, node='%s#%s' % (NS, node), action='complete',
                   sessionid=cmd.get('sessionid'))
    c.append(x)
    reply = await send_iq(client, c, to=D)
    assert reply.get('type') == 'result', ET.tostring(reply)
    done = reply.find('{%s}command' % NS_COMMANDS)
    assert done.get('status') == 'completed', ET.tostring(done)
    return done


def form_fields(cmd):
    """{var: [values]} of the command's form, with labels in '_labels'."""
    form = cmd.find('{%s}x' % NS_DATA)
    out = {'_labels': {}}
    for field in ([] if form is None else form.findall('{%s}field' % NS_DATA)):
        var = field.get('var')
        out[var] = [v.text or '' for v in field.findall('{%s}value' % NS_DATA)]
        out['_labels'][var] = field.get('label')
        out.setdefault('_options', {})[var] = [o.findtext('{%s}value' % NS_DATA)
                                               for o in field.findall('{%s}option' % NS_DATA)]
    return out


def note(cmd):
    return cmd.findtext('{%s}note' % NS_COMMANDS)


def b64decode(part):
    return base64.urlsafe_b64decode(part + '=' * (-len(part) % 4))


def disclosures(presentation):
    """The decoded disclosures of an SD-JWT presentation."""
    parts = presentation.split('~')
    return [json.loads(b64decode(d)) for d in parts[1:-1] if d]


def everything_in(presentation):
    """All the text a verifier can decode from a presentation."""
    out = []
    for piece in re.split(r'[~.]', presentation):
        try:
            out.append(b64decode(piece).decode('utf-8', 'replace'))
        except Exception:
            out.append(piece)
    return '\n'.join(out)


class Hotel:
    """examples/hotel_verifier as a subprocess."""

    def __init__(self, guest=ALICE, claims=None):
        self.out = tempfile.NamedTemporaryFile(prefix='presentation-', delete=False).name
        args = [os.path.join(harness.builddir(), 'examples', 'hotel_verifier'), '-j', HOTEL,
                '-g', guest, '-p', str(server.c2s_port), '-o', self.out, '-t', '30']
        if claims:
            args += ['-c', claims]
        self.args = args
        self.lines = []

    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, env=dict(os.environ, VESTNIK_PASSWORD=PASSWORD),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return await self.line('pending ')

    async def line(self, prefix, timeout=20):
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            assert raw, 'hotel_verifier ended before %r: %s %s' % (
                prefix, self.lines, (await self.proc.stderr.read()).decode())
            text = raw.decode().rstrip('\n')
            self.lines.append(text)
            if text.startswith(prefix):
                return text[len(prefix):]

    async def finish(self):
        rest = (await asyncio.wait_for(self.proc.stdout.read(), 20)).decode().splitlines()
        self.lines += rest
        return await asyncio.wait_for(self.proc.wait(), 10)


def npm_verify(presentation, nonce, audience='xmpp:' + HOTEL):
    with tempfile.NamedTemporaryFile('w', prefix='presentation-', delete=False) as f:
        f.write(presentation)
    try:
        result = subprocess.run(
            ['node', os.path.join(harness.srcdir(), 'examples', 'hotel_verifier.mjs'), f.name,
             audience, nonce, '--insecure'],
            env=dict(os.environ, VN_SD_JWT_DIR=NPM_DIR), capture_output=True, text=True,
            timeout=60)
    finally:
        os.unlink(f.name)
    assert result.stdout, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def forge_disclosure(presentation, name, value):
    """The presentation with one more disclosure, made up by the holder."""
    parts = presentation.split('~')
    forged = base64.urlsafe_b64encode(json.dumps(['c2FsdHNhbHRzYWx0', name, value]).encode())
    return '~'.join(parts[:-1] + [forged.decode().rstrip('=')] + parts[-1:])


def verify_detached_jws(jws, digest):
    """Check a detached compact JWS (ES256) over digest with its header's jwk."""
    header_b64, empty, sig_b64 = jws.split('.')
    assert empty == '', 'the payload is not detached'
    header = json.loads(b64decode(header_b64))
    jwk = header['jwk']
    key = ec.EllipticCurvePublicNumbers(int.from_bytes(b64decode(jwk['x']), 'big'),
                                        int.from_bytes(b64decode(jwk['y']), 'big'),
                                        ec.SECP256R1()).public_key()
    raw = b64decode(sig_b64)
    signature = encode_dss_signature(int.from_bytes(raw[:32], 'big'),
                                     int.from_bytes(raw[32:], 'big'))
    signing_input = (header_b64 + '.' + base64.urlsafe_b64encode(digest).decode().rstrip('='))
    key.verify(signature, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    return header


# ------------------------------------------------------------ the scenario

def test_student_card_over_18_consent_revocation_and_audit():
    async def scenario():
        npm = require_npm()
        alice = await user(ALICE)
        # 1. The student asks the university for a card; it lands in her wallet.
        await chat(alice, 'card', to=UNIVERSITY, expect='is in your wallet')
        note_msg = await message_from(alice, WALLET, 'You received a new document')
        assert 'Student card, Example University' in note_msg['body'], note_msg['body']
        listing = form_fields(await command(alice, 'list'))
        assert listing['document1'] == ['Student card, Example University (valid)'], listing

        # 2. The hotel asks for name and age; she shares "Over 18" only.
        hotel = Hotel()
        request_id = await hotel.start()
        ask = await message_from(alice, WALLET, 'asks for your documents')
        body = ask['body']
        assert HOTEL in body and 'guests must be adults' in body and '3. Over 18' in body, body
        copy = ask.xml.find('{%s}request' % NS)  # for a client that answers by itself
        assert copy.get('id') == request_id and copy.get('from').startswith(HOTEL + '/'), \
            ET.tostring(ask.xml)
        form = await command(alice, 'requests')
        fields = form_fields(form)
        assert fields['request'] == [request_id], fields
        assert set(v for v in fields if v.startswith('claim:')) == {
            'claim:given_name', 'claim:family_name', 'claim:age_over_18'}, fields
        assert all(fields[v] == ['0'] for v in fields if v.startswith('claim:')), fields
        done = await command(alice, 'requests', {'claim:age_over_18': '1', 'answer': 'share'})
        assert note(done) == 'Shared what you ticked, and nothing else.', ET.tostring(done)
        presentation = await hotel.line('presentation ')
        nonce = await hotel.line('nonce ')
        assert await hotel.finish() == 0, hotel.lines
        claims = [line for line in hotel.lines if line.startswith('claim ')]
        assert claims == ['claim age_over_18 true'], hotel.lines
        assert any(line.startswith('verified https://vestnik.example/credentials/student/1 '
                                   'https://127.0.0.1:') for line in hotel.lines), hotel.lines
        # Nothing undisclosed in any form: one disclosure, no other value.
        assert [d[1:] for d in disclosures(presentation)] == [['age_over_18', True]]
        decoded = everything_in(presentation)
        for secret in STUDENT[1:]:
            assert secret not in decoded, secret
        assert 'age_over_21' not in decoded and 'birthdate' not in decoded
        kb = json.loads(b64decode(presentation.split('~')[-1].split('.')[1]))
        assert kb['aud'] == 'xmpp:' + HOTEL and kb['nonce'] == nonce, kb

        # 3. The npm verifier accepts it and refuses tampered ones.
        if npm:
            result = npm_verify(presentation, nonce)
            assert result['ok'] and result['claims'] == {'age_over_18': True}, result
            forged = forge_disclosure(presentation, 'given_name', 'Mallory')
            assert not npm_verify(forged, nonce)['ok']
            sig_flipped = presentation[:-3] + ('A' if presentation[-3] != 'A' else 'B') + \
                presentation[-2:]
            assert not npm_verify(sig_flipped, nonce)['ok']
            assert not npm_verify(presentation, 'another-nonce-0123456789')['ok']
            assert not npm_verify(presentation, nonce, 'xmpp:museum@' + D)['ok']

        # vestnik's verifier, asked by the hotel: a replay and a tampering.
        desk = await user(HOTEL, 'desk')
        again = await send_iq(desk, "<verify xmlns='%s' nonce='%s'><presentation>%s"
                              "</presentation></verify>" % (NS, nonce, presentation))
        assert conditions(again) == ('not-acceptable', 'replayed'), ET.tostring(again)
        tampered = await send_iq(desk, "<verify xmlns='%s' nonce='%s'><presentation>%s"
                                 "</presentation></verify>"
                                 % (NS, nonce, forge_disclosure(presentation, 'age_over_21',
                                                                True)))
        assert conditions(tampered)[1] in ('tampered', 'bad-signature'), ET.tostring(tampered)

        # 4. Revocation: the registrar revokes the card.
        registrar = await user(REGISTRAR, 'office')
        await chat(registrar, 'revoke ' + ALICE, to=UNIVERSITY, expect='Revoked')
        await message_from(alice, WALLET, 'was revoked')
        listing = form_fields(await command(alice, 'list'))
        assert listing['document1'] == ['Student card, Example University (revoked)'], listing
        if npm:
            result = npm_verify(presentation, nonce)
            assert not result['ok'], result
        hotel2 = Hotel(claims='age_over_18')
        await hotel2.start()
        await message_from(alice, WALLET, 'no valid document')
        assert await hotel2.finish() == 1 and 'declined' in hotel2.lines, hotel2.lines

        # 5. A consent signed through the ad-hoc command.
        bank = await user(BANK, 'backend')
        text = 'I agree that Example Bank processes my personal data to open an account.'
        digest = hashlib.sha256(text.encode()).digest()
        sha = base64.urlsafe_b64encode(digest).decode().rstrip('=')
        pending = await send_iq(bank, "<sign xmlns='%s' holder='%s'><title>Consent to the "
                                "processing of personal data</title><document "
                                "media-type='text/plain' sha-256='%s'>%s</document></sign>"
                                % (NS, ALICE, sha, text))
        sign_id = pending.find('{%s}pending' % NS).get('id')
        await message_from(alice, WALLET, text)
        form = form_fields(await command(alice, 'sign'))
        assert form['request'] == [sign_id] and form['answer'] == ['refuse'], form
        done = await command(alice, 'sign', {'answer': 'sign'})
        assert note(done) == 'Signed.'
        msg = await message_from(bank, WALLET)
        sig = msg.xml.find('{%s}signature' % NS)
        assert sig is not None and sig.get('request') == sign_id, ET.tostring(msg.xml)
        header = verify_detached_jws(sig.text, digest)
        assert header['iss'] == 'xmpp:' + ALICE and header['aud'] == 'xmpp:' + BANK, header
        assert header['sha-256'] == sha and abs(header['iat'] - time.time()) < 60, header
        try:
            verify_detached_jws(sig.text, hashlib.sha256(b'another text').digest())
            raise AssertionError('the signature verified over another document')
        except Exception as e:
            assert 'InvalidSignature' in type(e).__name__, e

        # 6. The user reads the audit log.
        who = form_fields(await command(alice, 'who'))['log']
        assert len(who) == 1 and 'hotel@localhost saw from your Student card: Over 18. ' \
            'Purpose: Check-in at Hotel Example' in who[0], who
        history = '\n'.join(form_fields(await command(alice, 'history'))['log'])
        for expected in ('university.localhost issued you: Student card',
                         'hotel@localhost asked for: Given name, Family name, Over 18',
                         'university.localhost revoked: Student card',
                         'You shared nothing with hotel@localhost',
                         'You signed "Consent to the processing of personal data" for '
                         'bank@localhost'):
            assert expected in history, (expected, history)
        for client in (alice, desk, registrar, bank):
            await client.close()
    asyncio.run(scenario())


def test_in_person_qr_code():
    async def scenario():
        bob = await user('bob@' + D)
        registry = await user('registry@' + D, 'office')
        reply = await send_iq(registry, "<issue xmlns='%s' holder='bob@%s' type='identity'>"
                              "<claim name='given_name'>Bob</claim>"
                              "<claim name='family_name'>Builder</claim>"
                              "<claim name='birthdate'>2010-01-01</claim></issue>" % (NS, D))
        assert reply.get('type') == 'result', ET.tostring(reply)
        cred_id = reply.find('{%s}issued' % NS).get('id')
        form = form_fields(await command(bob, 'qr'))
        assert cred_id in form['_options']['credential'], form
        assert 'age_over_18' in form['_options']['claims'], form
        done = await command(bob, 'qr', {'credential': cred_id, 'claims': ['age_over_18']})
        url = form_fields(done)['url'][0]
        msg = await message_from(bob, WALLET, 'QR code')
        assert msg.xml.find('{%s}x/{%s}url' % (NS_OOB, NS_OOB)).text == url
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPSConnection('127.0.0.1', parts.port, timeout=10,
                                           context=harness.insecure_tls_context())
        conn.request('GET', parts.path)
        response = conn.getresponse()
        png = response.read()
        assert response.status == 200 and png.startswith(b'\x89PNG'), (response.status, png[:20])
        assert response.getheader('Content-Type') == 'image/png'
        # The code holds a one-time link to the presentation, which any
        # verifier checks with the issuer's published key.
        link = urllib.parse.urlsplit(form_fields(done)['link'][0])
        conn.request('GET', link.path)
        response = conn.getresponse()
        presentation = response.read().decode()
        assert response.status == 200, (response.status, presentation)
        assert [d[1:] for d in disclosures(presentation)] == [['age_over_18', False]]
        assert 'Bob' not in everything_in(presentation)
        kb = json.loads(b64decode(presentation.split('~')[-1].split('.')[1]))
        assert kb['aud'] == 'https://127.0.0.1:%d' % server.https_port, kb
        if require_npm():
            result = npm_verify(presentation, kb['nonce'], kb['aud'])
            assert result['ok'] and result['claims'] == {'age_over_18': False}, result
        conn.request('GET', link.path)
        response = conn.getresponse()
        assert response.status == 404, response.status
        response.read()
        history = '\n'.join(form_fields(await command(bob, 'who'))['log'])
        assert 'Shown in person from your Identity card: Over 18' in history, history
        await bob.close()
        await registry.close()
    asyncio.run(scenario())


def teardown_university():
    server.stop_university()


if __name__ == '__main__':
    try:
        harness.run([test_student_card_over_18_consent_revocation_and_audit,
                     test_in_person_qr_code, teardown_university],
                    server=server, setup=setup, timeout=120)
    finally:
        university = getattr(server, 'university', None)
        if university and university.poll() is None:
            university.kill()
