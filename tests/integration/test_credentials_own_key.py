#!/usr/bin/env python3
"""test_credentials_own_key.py - a client that keeps its holder key on the
device (xeps/documents.md §10): it gives the wallet service its public JWK,
the next credential is bound to it, the client lists its credentials with
their SD-JWT, takes the verifier's <request/> from the message announcing
it, builds the presentation itself (an ES256 key-binding JWT made here
with the cryptography package) and sends it to the verifier, who has it
verified. The server cannot present such a credential for the holder: a
"yes" in the chat shares nothing.
"""

import asyncio
import base64
import hashlib
import json
import time
import xml.etree.ElementTree as ET

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import harness
import test_credentials
from test_credentials import (D, HOTEL, NS, PASSWORD, WALLET, CredentialsServer, conditions,
                              message_from, send_iq, user)

FRANK = 'frank@' + D
REGISTRY = 'registry@' + D

server = CredentialsServer()
test_credentials.server = server


def setup():
    for jid in (FRANK, HOTEL, REGISTRY):
        server.adduser(jid, PASSWORD)


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip('=')


def public_jwk(key):
    numbers = key.public_key().public_numbers()
    return {'kty': 'EC', 'crv': 'P-256', 'x': b64(numbers.x.to_bytes(32, 'big')),
            'y': b64(numbers.y.to_bytes(32, 'big'))}


def es256(key, signing_input):
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))


def present(credential, names, key, aud, nonce):
    """The device's own presentation: the disclosures of names, a KB-JWT."""
    jwt, *rest = credential.split('~')
    keep = [d for d in rest if d and json.loads(base64.urlsafe_b64decode(
        d + '=' * (-len(d) % 4)))[1] in names]
    body = '~'.join([jwt] + keep) + '~'
    header = b64(json.dumps({'alg': 'ES256', 'typ': 'kb+jwt'}).encode())
    payload = b64(json.dumps({'iat': int(time.time()), 'aud': aud, 'nonce': nonce,
                              'sd_hash': b64(hashlib.sha256(body.encode()).digest())}).encode())
    return body + header + '.' + payload + '.' + es256(key, (header + '.' + payload).encode())


def test_the_device_keeps_the_key_and_presents():
    async def scenario():
        frank = await user(FRANK)
        hotel = await user(HOTEL, 'desk')
        registry = await user(REGISTRY, 'office')
        key = ec.generate_private_key(ec.SECP256R1())
        reply = await send_iq(frank, "<holder-key xmlns='%s'><jwk>%s</jwk></holder-key>"
                              % (NS, json.dumps(public_jwk(key))))
        assert reply.get('type') == 'result', ET.tostring(reply)
        reply = await send_iq(registry, "<issue xmlns='%s' holder='%s' type='identity'>"
                              "<claim name='given_name'>Frank</claim>"
                              "<claim name='family_name'>Poole</claim>"
                              "<claim name='birthdate'>1995-06-01</claim></issue>" % (NS, FRANK))
        assert reply.get('type') == 'result', ET.tostring(reply)
        await message_from(frank, WALLET, 'You received a new document')

        reply = await send_iq(frank, "<credentials xmlns='%s'/>" % NS, 'get')
        creds = reply.findall('{%s}credentials/{%s}credential' % (NS, NS))
        assert len(creds) == 1 and creds[0].get('status') == 'valid', ET.tostring(reply)
        credential = creds[0].text
        payload = json.loads(base64.urlsafe_b64decode(
            credential.split('.')[1] + '=' * (-len(credential.split('.')[1]) % 4)))
        assert payload['cnf']['jwk'] == public_jwk(key), payload['cnf']

        reply = await send_iq(hotel, "<request xmlns='%s' holder='%s' nonce='own-key-nonce-00001'>"
                              "<purpose>Age check</purpose><credential type='identity'><claim "
                              "name='age_over_18'/></credential></request>" % (NS, FRANK))
        assert reply.get('type') == 'result', ET.tostring(reply)
        ask = await message_from(frank, WALLET, 'asks for your documents')
        request = ask.xml.find('{%s}request' % NS)
        # The server cannot answer for a key it does not have.
        frank.send_message(mto=WALLET, mbody='yes', mtype='chat')
        await message_from(frank, WALLET, 'bound to a key your device keeps')
        msg = await message_from(hotel, WALLET)
        assert msg.xml.find('{%s}declined' % NS) is not None, ET.tostring(msg.xml)

        # The device answers by itself, from what the message carried.
        verifier = request.get('from').split('/')[0]
        presentation = present(credential, {'age_over_18'}, key, 'xmpp:' + verifier,
                               request.get('nonce'))
        reply = await send_iq(hotel, "<verify xmlns='%s' nonce='%s'><presentation>%s"
                              "</presentation></verify>" % (NS, request.get('nonce'),
                                                            presentation))
        verified = reply.find('{%s}verified' % NS)
        assert verified is not None, ET.tostring(reply)
        assert {c.get('name'): c.text for c in verified} == {'age_over_18': 'true'}
        # Another key cannot stand in for the device's.
        other = ec.generate_private_key(ec.SECP256R1())
        forged = present(credential, {'age_over_18'}, other, 'xmpp:' + verifier, 'own-key-x-00001')
        reply = await send_iq(hotel, "<verify xmlns='%s' nonce='own-key-x-00001'><presentation>"
                              "%s</presentation></verify>" % (NS, forged))
        assert conditions(reply) == ('not-acceptable', 'bad-signature'), ET.tostring(reply)
        for client in (frank, hotel, registry):
            await client.close()
    asyncio.run(scenario())


if __name__ == '__main__':
    harness.run([test_the_device_keeps_the_key_and_presents], server=server, setup=setup,
                timeout=90)
