#!/usr/bin/env python3
"""test_credentials_bad_input.py - what the documents protocol refuses
(xeps/documents.md §12), each with the stanza error and condition the
document names, before anything is stored or disclosed, while the server
keeps serving: issuance by strangers and for types an issuer may not issue,
unknown types and claims, bad claim values, unknown holders, expiries in
the past, revocations of what another issuer issued; requests without a
nonce or a purpose, with unknown types or claims, beyond max_pending;
presentations that are garbage, for another audience, with a wrong nonce,
replayed, tampered, too old; signatures with a wrong hash, no document, a
bad URL, too large; a private key as a holder key; ad-hoc answers that name
a request that is not there or claims that were not asked for.
"""

import asyncio
import base64
import hashlib
import xml.etree.ElementTree as ET

import harness
import test_credentials
from test_credentials import (D, HOTEL, NS, NS_COMMANDS, PASSWORD, WALLET, CredentialsServer,
                              chat, command, conditions, disclosures, form_fields, forge_disclosure,
                              message_from, note, send_iq, user)

DAVE = 'dave@' + D
REGISTRY = 'registry@' + D
STRANGER = 'stranger@' + D
MAX_AGE = 10

server = CredentialsServer(max_pending=2, max_document_size=100,
                           max_presentation_age=MAX_AGE, max_audit_entries=10)
test_credentials.server = server


def setup():
    for jid in (DAVE, HOTEL, REGISTRY, STRANGER):
        server.adduser(jid, PASSWORD)


def identity(holder=DAVE, type_='identity', claims=None, extra=''):
    claims = claims if claims is not None else {
        'given_name': 'Dave', 'family_name': 'Lister', 'birthdate': '2000-02-29'}
    return ("<issue xmlns='%s' holder='%s' type='%s'>%s%s</issue>"
            % (NS, holder, type_, ''.join("<claim name='%s'>%s</claim>" % kv
                                          for kv in claims.items()), extra))


def request(nonce='n' * 16, purpose='<purpose>Age check</purpose>',
            creds="<credential type='identity'><claim name='age_over_18'/></credential>",
            holder=DAVE):
    return ("<request xmlns='%s' holder='%s'%s>%s%s</request>"
            % (NS, holder, " nonce='%s'" % nonce if nonce is not None else '', purpose, creds))


def verify(presentation, nonce='n' * 16):
    return ("<verify xmlns='%s' nonce='%s'><presentation>%s</presentation></verify>"
            % (NS, nonce, presentation))


async def expect(client, payload, stanza, ours=None, type_='set'):
    reply = await send_iq(client, payload, type_)
    assert conditions(reply) == (stanza, ours), (conditions(reply), ET.tostring(reply))


def test_issuance_refusals():
    async def scenario():
        registry = await user(REGISTRY, 'office')
        stranger = await user(STRANGER, 'x')
        await expect(stranger, identity(), 'forbidden')
        await expect(registry, identity(type_='student'), 'forbidden')
        await expect(registry, identity(type_='passport'), 'bad-request', 'unknown-type')
        await expect(registry, identity(claims={'given_name': 'Dave', 'shoe_size': '44',
                                                'family_name': 'L', 'birthdate': '2000-01-01'}),
                     'bad-request', 'bad-claim')
        await expect(registry, identity(claims={'given_name': 'Dave', 'family_name': 'L',
                                                'birthdate': 'yesterday'}),
                     'bad-request', 'bad-claim')
        await expect(registry, identity(claims={'given_name': 'Dave'}), 'bad-request',
                     'missing-claim')
        await expect(registry, identity(holder='nobody@' + D), 'item-not-found')
        await expect(registry, identity(holder='dave@elsewhere.example'), 'item-not-found')
        await expect(registry, identity(holder='not a jid'), 'item-not-found')
        await expect(registry, identity(extra='<expires>2001-01-01T00:00:00Z</expires>'),
                     'bad-request')
        await expect(registry, "<revoke xmlns='%s' id='c-0000000000000000'/>" % NS,
                     'item-not-found')
        reply = await send_iq(registry, "<issue xmlns='%s' holder='%s'><credential "
                              "format='dc+sd-jwt'>eyJhbGciOiJub25lIn0.e30.~</credential></issue>"
                              % (NS, DAVE))
        assert conditions(reply)[0] == 'not-acceptable', ET.tostring(reply)
        await expect(stranger, "<holder-key xmlns='%s' holder='%s'/>" % (NS, DAVE), 'forbidden',
                     type_='get')
        await expect(stranger, "<holder-key xmlns='%s'><jwk>{\"kty\":\"EC\",\"crv\":\"P-256\","
                     "\"x\":\"AAAA\",\"y\":\"AAAA\",\"d\":\"AAAA\"}</jwk></holder-key>" % NS,
                     'bad-request', 'malformed')
        await expect(stranger, "<frobnicate xmlns='%s'/>" % NS, 'feature-not-implemented')
        await expect(stranger, "<query xmlns='jabber:iq:version'/>", 'service-unavailable',
                     type_='get')
        reply = await send_iq(stranger, "<ping xmlns='urn:xmpp:ping'/>", 'get',
                              to='someone@' + WALLET)
        assert conditions(reply)[0] == 'item-not-found'
        # Nothing of that reached Dave's wallet.
        dave = await user(DAVE)
        reply = await send_iq(dave, "<credentials xmlns='%s'/>" % NS, 'get')
        assert len(reply.find('{%s}credentials' % NS)) == 0, ET.tostring(reply)
        for client in (registry, stranger, dave):
            await client.close()
    asyncio.run(scenario())


async def presentation_for(hotel, dave, nonce):
    reply = await send_iq(hotel, request(nonce=nonce))
    assert reply.get('type') == 'result', ET.tostring(reply)
    await message_from(dave, WALLET, 'asks for your documents')
    dave.send_message(mto=WALLET, mbody='yes', mtype='chat')
    msg = await message_from(hotel, WALLET)
    return msg.xml.find('{%s}presentation' % NS).text


def test_request_and_verification_refusals():
    async def scenario():
        registry = await user(REGISTRY, 'office')
        dave = await user(DAVE)
        hotel = await user(HOTEL, 'desk')
        stranger = await user(STRANGER, 'x')
        assert (await send_iq(registry, identity())).get('type') == 'result'
        await message_from(dave, WALLET, 'You received a new document')

        await expect(hotel, request(nonce=None), 'bad-request', 'bad-nonce')
        await expect(hotel, request(nonce='short'), 'bad-request', 'bad-nonce')
        await expect(hotel, request(nonce='x' * 300), 'bad-request', 'bad-nonce')
        await expect(hotel, request(nonce='with space in it!'), 'bad-request', 'bad-nonce')
        await expect(hotel, request(purpose=''), 'bad-request', 'bad-purpose')
        await expect(hotel, request(purpose='<purpose>%s</purpose>' % ('x' * 600)),
                     'bad-request', 'bad-purpose')
        await expect(hotel, request(creds="<credential type='passport'><claim name='x'/>"
                                    "</credential>"), 'bad-request', 'unknown-type')
        await expect(hotel, request(creds="<credential type='identity'><claim name='iss'/>"
                                    "</credential>"), 'bad-request', 'bad-claim')
        await expect(hotel, request(creds=''), 'bad-request', 'malformed')
        await expect(hotel, request(holder='dave@elsewhere.example'), 'item-not-found')
        # A holder that does not exist looks like one who declines.
        reply = await send_iq(hotel, request(holder='ghost@' + D))
        pending = reply.find('{%s}pending' % NS).get('id')
        msg = await message_from(hotel, WALLET)
        assert msg.xml.find('{%s}declined' % NS).get('request') == pending

        good = await presentation_for(hotel, dave, 'nonce-for-the-first')
        await expect(hotel, verify('not an sd-jwt', 'nonce-for-the-first'), 'bad-request',
                     'malformed')
        await expect(hotel, "<verify xmlns='%s'><presentation>%s</presentation></verify>"
                     % (NS, good), 'bad-request', 'malformed')
        await expect(hotel, verify(good, 'another-nonce-000'), 'not-acceptable', 'wrong-nonce')
        await expect(stranger, verify(good, 'nonce-for-the-first'), 'not-acceptable',
                     'wrong-audience')
        await expect(hotel, verify(forge_disclosure(good, 'given_name', 'Rimmer'),
                                   'nonce-for-the-first'), 'not-acceptable', 'tampered')
        flipped = good[:-4] + ('AAAA' if not good.endswith('AAAA') else 'BBBB')
        await expect(hotel, verify(flipped, 'nonce-for-the-first'), 'not-acceptable',
                     'bad-signature')
        ok = await send_iq(hotel, verify(good, 'nonce-for-the-first'))
        assert ok.get('type') == 'result', ET.tostring(ok)
        claims = {c.get('name'): c.text for c in ok.find('{%s}verified' % NS)}
        assert claims == {'age_over_18': 'true'}, claims
        await expect(hotel, verify(good, 'nonce-for-the-first'), 'not-acceptable', 'replayed')
        # The ad-hoc command says the same to a verifier on any client.
        form = form_fields(await command(hotel, 'verify', {'presentation': good,
                                                            'nonce': 'nonce-for-the-first'}))
        assert form['error'] == ['replayed'], form
        done = await command(hotel, 'verify', {'presentation': 'garbage', 'nonce': 'x'})
        assert done.find('{%s}note' % NS_COMMANDS).get('type') == 'error'

        # Limits: max_pending requests per holder.
        for i in range(2):
            reply = await send_iq(hotel, request(nonce='pending-nonce-%04d' % i))
            assert reply.get('type') == 'result', ET.tostring(reply)
        await expect(hotel, request(nonce='pending-nonce-9999'), 'resource-constraint')

        # The Requests command answers only what waits, with only what was asked.
        done = await command(dave, 'requests', lambda form: {
            'request': 'q-0000000000000000', 'answer': 'share', 'claim:age_over_18': '1'})
        assert note(done) == 'This request was answered already or has expired.'
        done = await command(dave, 'requests', lambda form: {
            'answer': 'share', 'claim:given_name': '1', 'claim:age_over_18': '1'})
        msg = await message_from(hotel, WALLET)
        shown = msg.xml.find('{%s}presentation' % NS).text
        assert [d[1] for d in disclosures(shown)] == ['age_over_18'], disclosures(shown)
        assert 'Dave' not in ''.join(str(d) for d in disclosures(shown))
        # The same claims of the same document for another nonce are no replay.
        reply = await send_iq(hotel, verify(shown, 'pending-nonce-0000'))
        assert reply.get('type') == 'result', ET.tostring(reply)

        # A presentation whose key binding is too old.
        stale = await presentation_for_second(hotel, dave)
        # Meanwhile a request nobody answers (request_timeout is 30 s).
        reply = await send_iq(hotel, request(nonce='unanswered-nonce-01'))
        unanswered = reply.find('{%s}pending' % NS).get('id')
        await message_from(dave, WALLET, 'asks for your documents')
        await asyncio.sleep(MAX_AGE + 32)  # the age allowed and the clock leeway
        await expect(hotel, verify(stale, 'pending-nonce-0001'), 'not-acceptable', 'expired')
        msg = await message_from(hotel, WALLET, timeout=30)
        assert msg.xml.find('{%s}declined' % NS).get('request') == unanswered
        assert await chat(dave, 'yes', expect='waits') == 'No request waits for your answer.'
        for client in (registry, dave, hotel, stranger):
            await client.close()
    asyncio.run(scenario())


async def presentation_for_second(hotel, dave):
    """The second request waiting (pending-nonce-0001), answered yes."""
    dave.send_message(mto=WALLET, mbody='yes', mtype='chat')
    msg = await message_from(hotel, WALLET)
    return msg.xml.find('{%s}presentation' % NS).text


def test_an_expired_document_is_shown_expired_and_not_presented():
    async def scenario():
        import datetime
        registry = await user(REGISTRY, 'office')
        stranger = await user(STRANGER, 'phone')
        hotel = await user(HOTEL, 'desk')
        soon = (datetime.datetime.now(datetime.timezone.utc) +
                datetime.timedelta(seconds=3)).strftime('%Y-%m-%dT%H:%M:%SZ')
        reply = await send_iq(registry, identity(
            holder=STRANGER, extra='<expires>%s</expires>' % soon))
        assert reply.get('type') == 'result', ET.tostring(reply)
        await message_from(stranger, WALLET, 'You received a new document')
        await asyncio.sleep(4)
        stranger.send_message(mto=WALLET, mbody='list', mtype='chat')
        listing = (await message_from(stranger, WALLET, 'Your documents'))['body']
        assert '1. Identity card, Civil registry (expired)' in listing, listing
        reply = await send_iq(hotel, request(nonce='expired-nonce-0000', holder=STRANGER))
        pending = reply.find('{%s}pending' % NS).get('id')
        await message_from(stranger, WALLET, 'no valid document')
        msg = await message_from(hotel, WALLET)
        assert msg.xml.find('{%s}declined' % NS).get('request') == pending
        for client in (registry, stranger, hotel):
            await client.close()
    asyncio.run(scenario())


def test_signature_refusals():
    async def scenario():
        bank = await user(STRANGER, 'bank')
        text = 'I agree.'
        sha = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode()
        sha = sha.rstrip('=')

        def sign(doc, title='<title>Consent</title>', holder=DAVE):
            return "<sign xmlns='%s' holder='%s'>%s%s</sign>" % (NS, holder, title, doc)
        await expect(bank, sign("<document media-type='text/plain' sha-256='%s'>I disagree."
                                "</document>" % sha), 'bad-request', 'hash-mismatch')
        await expect(bank, sign(''), 'bad-request', 'malformed')
        await expect(bank, sign("<document media-type='text/plain' sha-256='%s'>%s</document>"
                                % (sha, text), title=''), 'bad-request', 'malformed')
        await expect(bank, sign("<document media-type='application/pdf' sha-256='%s' "
                                "url='file:///etc/passwd'/>" % sha), 'bad-request', 'malformed')
        await expect(bank, sign("<document media-type='text/plain' sha-256='abc'>%s</document>"
                                % text), 'bad-request', 'malformed')
        big = 'x' * 200
        big_sha = base64.urlsafe_b64encode(hashlib.sha256(big.encode()).digest()).decode()
        await expect(bank, sign("<document media-type='text/plain' sha-256='%s'>%s</document>"
                                % (big_sha.rstrip('='), big)), 'policy-violation')
        await expect(bank, sign("<document media-type='text/plain' sha-256='%s'>%s</document>"
                                % (sha, text), holder='ghost@' + D), 'item-not-found')
        await bank.ping(D)
        await bank.close()
    asyncio.run(scenario())


def test_random_payloads_all_get_an_answer():
    """Hostile shapes of every element, from a trusted issuer (which gets
    deepest) and from a stranger: each iq is answered, the server lives."""
    import random
    rnd = random.Random(15)
    names = ['issue', 'revoke', 'suspend', 'reinstate', 'holder-key', 'request', 'verify', 'sign', 'credentials',
             'presentation', 'claim', 'x']
    values = ['', ' ', DAVE, 'dave@' + D + '/res', '@', 'a' * 3000, 'identity', 'student',
              'https://vestnik.example/credentials/identity/1', 'n' * 16, '\u00e9\u00e9',
              'true', '2000-02-30', '~~~', 'eyJ.eyJ.~', '..', 'c-0000000000000000']
    attrs = ['holder', 'type', 'nonce', 'id', 'name', 'media-type', 'sha-256', 'url', 'format']

    def random_element(depth=0):
        el = ET.Element('{%s}%s' % (NS, rnd.choice(names)))
        for a in rnd.sample(attrs, rnd.randint(0, 4)):
            el.set(a, rnd.choice(values))
        if rnd.random() < 0.4:
            el.text = rnd.choice(values)
        for _ in range(rnd.randint(0, 3) if depth < 3 else 0):
            el.append(random_element(depth + 1))
        return el

    async def scenario():
        registry = await user(REGISTRY, 'fuzz')
        stranger = await user(STRANGER, 'fuzz')
        for i in range(150):
            client = registry if i % 2 else stranger
            reply = await send_iq(client, random_element(), rnd.choice(['get', 'set']))
            assert reply.get('type') in ('result', 'error'), ET.tostring(reply)
        await registry.ping(D)
        await registry.close()
        await stranger.close()
    asyncio.run(scenario())


def test_the_audit_log_keeps_its_newest_entries():
    async def scenario():
        dave = await user(DAVE)
        hotel = await user(HOTEL, 'desk')
        for i in range(4):  # eight more entries: requested, declined
            reply = await send_iq(hotel, request(nonce='audit-nonce-%08d' % i))
            assert reply.get('type') == 'result', ET.tostring(reply)
            await message_from(dave, WALLET, 'asks for your documents')
            dave.send_message(mto=WALLET, mbody='no', mtype='chat')
            await message_from(dave, WALLET, 'Nothing was shared')
        dave.send_message(mto=WALLET, mbody='history', mtype='chat')
        lines = (await message_from(dave, WALLET, 'UTC'))['body'].splitlines()
        assert len(lines) == 10, lines
        assert 'You shared nothing with hotel@localhost' in lines[0], lines
        assert not any('issued you' in line for line in lines), lines
        await dave.close()
        await hotel.close()
    asyncio.run(scenario())


if __name__ == '__main__':
    harness.run([test_issuance_refusals, test_request_and_verification_refusals,
                 test_an_expired_document_is_shown_expired_and_not_presented,
                 test_signature_refusals, test_random_payloads_all_get_an_answer,
                 test_the_audit_log_keeps_its_newest_entries],
                server=server, setup=setup, timeout=150)
