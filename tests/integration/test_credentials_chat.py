#!/usr/bin/env python3
"""test_credentials_chat.py - the wallet as a plain chat with
documents.<host> (xeps/documents.md §11), for clients that render no
ad-hoc commands (Conversations, Dino, Monal): a slixmpp user that only
sends chat messages gets a document from the civil registry, lists and
shows it, shares one claim of two with a hotel by its number, refuses a
second request with "no", signs a consent with "yes", reads who saw what,
and deletes the document after confirming. Also: the hotel receives only
what was shared; a PDF by URL is signed by its hash; an issuer suspends,
reinstates and revokes; the service is in disco; a component gets an
error, not a wallet; a reload changes the issuers; wallets, pending
requests and keys survive a restart.
"""

import asyncio
import base64
import hashlib
import json
import time
import xml.etree.ElementTree as ET

import harness
import test_credentials
from test_credentials import (BANK, D, HOTEL, NS, PASSWORD, WALLET, CredentialsServer,
                              conditions, disclosures, message_from, send_iq, user)

CAROL = 'carol@' + D
REGISTRY = 'registry@' + D

server = CredentialsServer()
test_credentials.server = server  # its helpers talk to this one


def setup():
    for jid in (CAROL, HOTEL, BANK, REGISTRY):
        server.adduser(jid, PASSWORD)


async def say(client, text, expect=None):
    client.send_message(mto=WALLET, mbody=text, mtype='chat')
    return (await message_from(client, WALLET, expect))['body']


async def ask_for(hotel, claims, nonce):
    payload = ("<request xmlns='%s' holder='%s' nonce='%s'><purpose>Check-in</purpose>"
               "<credential type='identity'>%s</credential></request>"
               % (NS, CAROL, nonce, ''.join("<claim name='%s'/>" % c for c in claims)))
    reply = await send_iq(hotel, payload)
    assert reply.get('type') == 'result', ET.tostring(reply)
    return reply.find('{%s}pending' % NS).get('id')


def test_the_whole_wallet_by_chat():
    async def scenario():
        carol = await user(CAROL)
        hotel = await user(HOTEL, 'desk')
        bank = await user(BANK, 'backend')
        registry = await user(REGISTRY, 'office')

        assert 'list: your documents' in await say(carol, 'help')
        assert 'list: your documents' in await say(carol, 'what can you do?')
        assert await say(carol, 'list') == 'You have no documents yet.'
        issued = await send_iq(registry, "<issue xmlns='%s' holder='%s' type='identity'>"
                               "<claim name='given_name'>Carol</claim>"
                               "<claim name='family_name'>Danvers</claim>"
                               "<claim name='birthdate'>1990-03-08</claim></issue>"
                               % (NS, CAROL))
        assert issued.get('type') == 'result', ET.tostring(issued)
        await message_from(carol, WALLET, 'You received a new document')
        listing = await say(carol, 'List')
        assert '1. Identity card, Civil registry (valid)' in listing, listing
        shown = await say(carol, 'show 1')
        assert 'Given name: Carol' in shown and 'Over 18: true' in shown, shown
        assert 'Over 21: true' in shown and 'Date of birth: 1990-03-08' in shown, shown
        assert 'No such document' in await say(carol, 'show 7')

        # A request, answered with the number of one claim.
        request = await ask_for(hotel, ['given_name', 'age_over_18'], 'nonce-0123456789abcdef')
        ask = await message_from(carol, WALLET, 'asks for your documents')
        assert '1. Given name' in ask['body'] and '2. Over 18' in ask['body'], ask['body']
        assert 'not in the list' in await say(carol, '5')
        assert await say(carol, '2', expect='Shared with') == 'Shared with hotel@localhost: ' \
            'Over 18'
        got = await message_from(hotel, WALLET)
        presentation = got.xml.find('{%s}presentation' % NS)
        assert presentation.get('request') == request, ET.tostring(got.xml)
        assert [d[1:] for d in disclosures(presentation.text)] == [['age_over_18', True]]
        assert 'Carol' not in base64.urlsafe_b64decode(
            presentation.text.split('.')[1] + '==').decode('utf-8', 'replace')

        # A second one, refused.
        request = await ask_for(hotel, ['family_name'], 'nonce-fedcba9876543210')
        await message_from(carol, WALLET, 'asks for your documents')
        assert await say(carol, 'no') == 'Nothing was shared.'
        got = await message_from(hotel, WALLET)
        assert got.xml.find('{%s}declined' % NS).get('request') == request
        assert await say(carol, 'no') == 'No request waits for your answer.'

        # A consent, signed with "yes".
        text = 'I accept the terms of the lease of flat 5.'
        sha = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode()
        reply = await send_iq(bank, "<sign xmlns='%s' holder='%s'><title>Lease</title>"
                              "<document media-type='text/plain' sha-256='%s'>%s</document>"
                              "</sign>" % (NS, CAROL, sha.rstrip('='), text))
        assert reply.get('type') == 'result', ET.tostring(reply)
        await message_from(carol, WALLET, 'asks you to sign: "Lease"')
        assert 'waits for your answer' not in await say(carol, 'requests')
        assert await say(carol, 'yes') == 'You signed "Lease" for bank@localhost.'
        got = await message_from(bank, WALLET)
        assert got.xml.find('{%s}signature' % NS) is not None, ET.tostring(got.xml)

        who = await say(carol, 'who')
        assert 'hotel@localhost saw from your Identity card: Over 18. Purpose: Check-in' in who
        assert 'Family name' not in who, who
        history = await say(carol, 'history')
        assert 'You signed "Lease" for bank@localhost' in history, history
        assert 'You shared nothing with hotel@localhost' in history, history

        # Deleting asks first.
        assert 'Reply "yes" or "no"' in await say(carol, 'delete 1')
        assert await say(carol, 'no') == 'Nothing was deleted.'
        await say(carol, 'delete 1')
        assert await say(carol, 'yes') == 'The document was deleted.'
        assert await say(carol, 'list') == 'You have no documents yet.'
        assert 'You deleted: Identity card' in await say(carol, 'history')
        for client in (carol, hotel, bank, registry):
            await client.close()
    asyncio.run(scenario())


def test_qr_by_chat_needs_numbers_of_a_document_held():
    async def scenario():
        carol = await user(CAROL)
        assert 'No such document' in await say(carol, 'qr 1')
        registry = await user(REGISTRY, 'office')
        await send_iq(registry, "<issue xmlns='%s' holder='%s' type='identity'>"
                      "<claim name='given_name'>Carol</claim>"
                      "<claim name='family_name'>Danvers</claim>"
                      "<claim name='birthdate'>1990-03-08</claim></issue>" % (NS, CAROL))
        await message_from(carol, WALLET, 'You received a new document')
        assert 'qr 1 1 3' in await say(carol, 'qr 1', expect='numbers of what')
        assert 'not in the list' in await say(carol, 'qr 1 99', expect='not in the list')
        carol.send_message(mto=WALLET, mbody='qr 1 3', mtype='chat')
        msg = await message_from(carol, WALLET, 'Show this QR code')
        url = msg.xml.find('{jabber:x:oob}x/{jabber:x:oob}url').text
        assert url.startswith('https://127.0.0.1:%d/' % server.https_port) and url in msg['body']
        await carol.close()
        await registry.close()
    asyncio.run(scenario())


def test_a_pdf_by_url_is_signed_by_its_hash():
    async def scenario():
        carol = await user(CAROL)
        bank = await user(BANK, 'backend')
        url = 'https://upload.example/files/lease.pdf'
        sha = base64.urlsafe_b64encode(hashlib.sha256(b'%PDF-1.7 lease').digest()).decode()
        reply = await send_iq(bank, "<sign xmlns='%s' holder='%s'><title>Lease of flat 5</title>"
                              "<document media-type='application/pdf' sha-256='%s' url='%s'/>"
                              "</sign>" % (NS, CAROL, sha.rstrip('='), url))
        assert reply.get('type') == 'result', ET.tostring(reply)
        msg = await message_from(carol, WALLET, 'Lease of flat 5')
        assert url in msg['body'] and sha.rstrip('=') in msg['body'], msg['body']
        assert msg.xml.find('{jabber:x:oob}x/{jabber:x:oob}url').text == url
        assert await say(carol, 'yes') == 'You signed "Lease of flat 5" for bank@localhost.'
        got = await message_from(bank, WALLET)
        jws = got.xml.find('{%s}signature' % NS).text
        header = json.loads(base64.urlsafe_b64decode(jws.split('.')[0] + '=='))
        assert header['cty'] == 'application/pdf' and header['sha-256'] == sha.rstrip('=')
        assert jws.split('.')[1] == '', 'the payload is detached'
        await carol.close()
        await bank.close()
    asyncio.run(scenario())


def test_suspend_reinstate_revoke():
    async def scenario():
        carol = await user(CAROL)
        hotel = await user(HOTEL, 'desk')
        registry = await user(REGISTRY, 'office')
        reply = await send_iq(registry, "<issue xmlns='%s' holder='%s' type='identity'>"
                              "<claim name='given_name'>Carol</claim>"
                              "<claim name='family_name'>Danvers</claim>"
                              "<claim name='birthdate'>1990-03-08</claim></issue>" % (NS, CAROL))
        cred_id = reply.find('{%s}issued' % NS).get('id')
        await message_from(carol, WALLET, 'You received a new document')

        async def shown(nonce):
            """A presentation of Over 18 for nonce, or None when declined."""
            await ask_for(hotel, ['age_over_18'], nonce)
            await message_from(carol, WALLET, 'asks for your documents')
            carol.send_message(mto=WALLET, mbody='yes', mtype='chat')
            msg = await message_from(hotel, WALLET)
            p = msg.xml.find('{%s}presentation' % NS)
            return None if p is None else p.text

        async def status(op):
            return await send_iq(registry, "<%s xmlns='%s' id='%s'/>" % (op, NS, cred_id))

        async def verify(presentation, nonce):
            return await send_iq(hotel, "<verify xmlns='%s' nonce='%s'><presentation>%s"
                                 "</presentation></verify>" % (NS, nonce, presentation))

        before = await shown('status-nonce-000001')
        assert (await status('suspend')).get('type') == 'result'
        await message_from(carol, WALLET, 'was suspended by its issuer')
        assert '(suspended)' in await say(carol, 'list', expect='Your documents')
        assert conditions(await verify(before, 'status-nonce-000001')) == \
            ('not-acceptable', 'suspended')
        # A suspended document is not presented: the request finds none valid.
        await ask_for(hotel, ['age_over_18'], 'status-nonce-000002')
        await message_from(carol, WALLET, 'no valid document')
        assert (await message_from(hotel, WALLET)).xml.find('{%s}declined' % NS) is not None

        assert (await status('reinstate')).get('type') == 'result'
        await message_from(carol, WALLET, 'is valid again')
        again = await shown('status-nonce-000003')
        assert (await verify(again, 'status-nonce-000003')).get('type') == 'result'

        assert (await status('revoke')).get('type') == 'result'
        await message_from(carol, WALLET, 'was revoked by its issuer')
        assert conditions(await status('reinstate')) == ('not-allowed', None)
        assert '(revoked)' in await say(carol, 'list', expect='Your documents')
        history = await say(carol, 'history', expect='UTC')
        assert 'registry@localhost suspended: Identity card' in history, history
        assert 'registry@localhost made valid again: Identity card' in history, history
        await say(carol, 'delete 1', expect='Delete')
        await say(carol, 'yes', expect='The document was deleted.')
        for client in (carol, hotel, registry):
            await client.close()
    asyncio.run(scenario())


def test_a_number_given_again_shares_its_claim_once():
    """More numbers than the request has claims ("1 1 1" for one): the
    claim is shared once and the wallet keeps running (the answer's list
    of chosen claims was sized by the claims, not the numbers)."""
    async def scenario():
        carol = await user(CAROL)
        hotel = await user(HOTEL, 'desk')
        registry = await user(REGISTRY, 'office')
        reply = await send_iq(registry, "<issue xmlns='%s' holder='%s' type='identity'>"
                              "<claim name='given_name'>Carol</claim>"
                              "<claim name='family_name'>Danvers</claim>"
                              "<claim name='birthdate'>1990-03-08</claim></issue>" % (NS, CAROL))
        assert reply.get('type') == 'result', ET.tostring(reply)
        await message_from(carol, WALLET, 'You received a new document')
        await ask_for(hotel, ['age_over_18'], 'repeat-nonce-0000001')
        await message_from(carol, WALLET, 'asks for your documents')
        assert await say(carol, ' '.join(['1'] * 40), expect='Shared with') == \
            'Shared with hotel@localhost: Over 18'
        got = await message_from(hotel, WALLET)
        presentation = got.xml.find('{%s}presentation' % NS)
        assert [d[1:] for d in disclosures(presentation.text)] == [['age_over_18', True]]
        await say(carol, 'delete 1', expect='Delete')
        await say(carol, 'yes', expect='The document was deleted.')
        for client in (carol, hotel, registry):
            await client.close()
    asyncio.run(scenario())


def test_the_wallet_service_is_discovered():
    async def scenario():
        carol = await user(CAROL)
        items = await carol['xep_0030'].get_items(jid=D)
        assert (WALLET, None, 'Documents') in items['disco_items']['items'], items
        info = await carol['xep_0030'].get_info(jid=WALLET)
        assert ('component', 'generic', None, 'Documents') in \
            info['disco_info']['identities'], info
        assert NS in info['disco_info']['features'], info
        await carol.ping(WALLET)
        await carol.close()
    asyncio.run(scenario())


def test_only_local_accounts_have_a_wallet():
    stream = harness.RawStream(server.component_port)
    stream.open(to='university.localhost', ns='jabber:component:accept')
    deadline = time.monotonic() + stream.timeout
    while stream.header is None and not stream.eof:
        stream._read_some(deadline)
    digest = hashlib.sha1((stream.header.get('id') + 'university-secret').encode()).hexdigest()
    stream.send('<handshake>%s</handshake>' % digest)
    stream.expect('{jabber:component:accept}handshake')
    stream.send("<message from='university.localhost' to='%s' type='chat'><body>list</body>"
                "</message>" % WALLET)
    reply = stream.expect('{jabber:component:accept}message')
    assert reply.get('type') == 'error', harness.tostring(reply)
    assert conditions_of(reply) == 'service-unavailable'
    stream.send("<iq from='university.localhost' to='%s' type='get' id='l'>"
                "<credentials xmlns='%s'/></iq>" % (WALLET, NS))
    reply = stream.expect('{jabber:component:accept}iq')
    assert conditions_of(reply) == 'forbidden', harness.tostring(reply)
    stream.close()


def test_issuers_change_on_reload():
    async def scenario():
        registry = await user(REGISTRY, 'office')
        issue = ("<issue xmlns='%s' holder='%s' type='identity'><claim name='given_name'>C"
                 "</claim><claim name='family_name'>D</claim><claim name='birthdate'>1990-03-08"
                 "</claim></issue>" % (NS, CAROL))
        with open(server.issuers_path) as f:
            original = f.read()
        kept = json.loads(original)
        kept['issuers'] = [i for i in kept['issuers'] if i['id'] != 'registry']
        with open(server.issuers_path, 'w') as f:
            json.dump(kept, f)
        server.reload()
        deadline = asyncio.get_event_loop().time() + 10
        while '1 trusted issuer(s)' not in server.log_text():
            assert asyncio.get_event_loop().time() < deadline, server.log_tail()
            await asyncio.sleep(0.1)
        assert conditions(await send_iq(registry, issue))[0] == 'forbidden'
        with open(server.issuers_path, 'w') as f:
            f.write(original)
        server.reload()
        deadline = asyncio.get_event_loop().time() + 10
        while server.log_text().count('2 trusted issuer(s)') < 2:
            assert asyncio.get_event_loop().time() < deadline, server.log_tail()
            await asyncio.sleep(0.1)
        assert (await send_iq(registry, issue)).get('type') == 'result'
        await registry.close()
    asyncio.run(scenario())


def test_wallets_and_keys_survive_a_restart():
    """Credentials, pending requests, the holder key (wrapped under the
    secret in data_dir) and the issuer's key all outlive the process."""
    async def issue_and_ask():
        registry = await user(REGISTRY, 'office')
        hotel = await user(HOTEL, 'desk')
        carol = await user(CAROL)
        reply = await send_iq(registry, "<issue xmlns='%s' holder='%s' type='identity'>"
                              "<claim name='given_name'>Carol</claim>"
                              "<claim name='family_name'>Danvers</claim>"
                              "<claim name='birthdate'>1990-03-08</claim></issue>" % (NS, CAROL))
        assert reply.get('type') == 'result', ET.tostring(reply)
        await message_from(carol, WALLET, 'You received a new document')
        await ask_for(hotel, ['age_over_18'], 'restart-nonce-00001')
        await message_from(carol, WALLET, 'asks for your documents')
        for client in (registry, hotel, carol):
            await client.close()

    async def answer_after():
        hotel = await user(HOTEL, 'desk')
        carol = await user(CAROL)
        assert '1. Identity card, Civil registry (valid)' in await say(carol, 'list',
                                                                       expect='Your documents')
        carol.send_message(mto=WALLET, mbody='yes', mtype='chat')
        msg = await message_from(hotel, WALLET)
        presentation = msg.xml.find('{%s}presentation' % NS)
        assert presentation is not None, ET.tostring(msg.xml)
        reply = await send_iq(hotel, "<verify xmlns='%s' nonce='restart-nonce-00001'>"
                              "<presentation>%s</presentation></verify>" % (NS, presentation.text))
        assert reply.get('type') == 'result', ET.tostring(reply)
        await say(carol, 'delete 1', expect='Delete')
        await say(carol, 'yes', expect='The document was deleted.')
        for client in (hotel, carol):
            await client.close()
    asyncio.run(issue_and_ask())
    server.restart()
    asyncio.run(answer_after())


def conditions_of(reply):
    error = reply.find('{jabber:component:accept}error')
    assert error is not None, harness.tostring(reply)
    return [c.tag.split('}')[1] for c in error if not c.tag.endswith('}text')][0]


if __name__ == '__main__':
    harness.run([test_the_whole_wallet_by_chat, test_a_pdf_by_url_is_signed_by_its_hash,
                 test_suspend_reinstate_revoke, test_a_number_given_again_shares_its_claim_once,
                 test_the_wallet_service_is_discovered, test_qr_by_chat_needs_numbers_of_a_document_held,
                 test_only_local_accounts_have_a_wallet, test_issuers_change_on_reload,
                 test_wallets_and_keys_survive_a_restart],
                server=server, setup=setup, timeout=90)
