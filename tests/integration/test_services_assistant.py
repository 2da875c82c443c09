#!/usr/bin/env python3
"""The public-services assistant (doc/services.md): a slixmpp user asks in
plain language, in English and in Russian, and gets the requirements and
steps from the knowledge base of examples/assistant/; a question it does
not know gets the topics it knows; "yes" has it ask the documents wallet
(xeps/documents.md §7-8, played here by a component at documents.localhost
speaking that protocol) and deliver the result; a declined request and a
missing wallet are said plainly; a broken knowledge base is refused with
its line number."""

import asyncio
import os
import time
import xml.etree.ElementTree as ET

import harness
from services_component import AckingComponent, ServicesServer

NS_DOCS = 'urn:vestnik:documents:0'
WALLET = 'documents.localhost'
ASSISTANT = 'assistant@services.localhost'
PASSWORD = 'user-password'
ALICE = 'alice@localhost'
KB = os.path.join(harness.srcdir(), 'examples', 'assistant', 'knowledge.yaml')

server = ServicesServer([(WALLET, 'wallet-secret', 'Documents')],
                        modules='  services:\n    assistant_knowledge_base: %s\n' % KB)


def setup():
    server.adduser(ALICE, PASSWORD)


async def ask(client, text, lang=None, timeout=5):
    msg = client.make_message(mto=ASSISTANT, mbody=text, mtype='chat')
    if lang:
        msg['lang'] = lang
    msg.send()
    reply = await asyncio.wait_for(client.messages.get(), timeout)
    assert str(reply['from']) == ASSISTANT, reply
    return reply['body']


def test_known_question_in_english_and_russian():
    asyncio.run(known_question())


async def known_question():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    answer = await ask(alice, 'How do I replace my lost passport?', lang='en')
    assert answer.startswith('Replacing a passport'), answer
    assert 'Two photos, 35 x 45 mm' in answer and 'Steps:' in answer, answer
    assert 'Reply "yes"' in answer, answer
    answer = await ask(alice, 'нет')
    answer = await ask(alice, 'Как зарегистрировать машину?')
    assert answer.startswith('Регистрация автомобиля'), answer
    assert 'ОСАГО' in answer, answer
    await ask(alice, 'нет')
    await alice.close()


def test_unknown_question_gets_the_topics():
    asyncio.run(unknown_question())


async def unknown_question():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    answer = await ask(alice, 'What will the weather be tomorrow?', lang='en')
    assert answer.startswith('I do not know about that yet'), answer
    assert 'Replacing a passport' in answer and 'Registering a car' in answer, answer
    # The assistant is listed in the directory.
    items = await alice['xep_0030'].get_items(jid='services.localhost')
    assert ASSISTANT in [i[0] for i in items['disco_items']['items']], items
    # It explains itself: disco#info and a vCard.
    info = await alice['xep_0030'].get_info(jid=ASSISTANT)
    assert ('client', 'bot', None, 'Public services assistant') in \
        info['disco_info']['identities'], info
    iq = alice.make_iq_get(ito=ASSISTANT)
    iq.append(ET.fromstring("<vCard xmlns='vcard-temp'/>"))
    card = (await iq.send(timeout=5)).xml.find('{vcard-temp}vCard')
    assert card.findtext('{vcard-temp}FN') == 'Public services assistant', ET.tostring(card)
    assert 'digital documents' in card.findtext('{vcard-temp}DESC'), ET.tostring(card)
    await alice.close()


class Wallet(AckingComponent):
    """The documents wallet's side of xeps/documents.md §7-8."""

    def __init__(self, decline=False):
        super().__init__(server, WALLET, 'wallet-secret')
        self.decline = decline
        self.requests = asyncio.Queue()
        self.register_handler(harness_callback('{%s}request' % NS_DOCS, self._on_request))
        self.register_handler(harness_callback('{%s}verify' % NS_DOCS, self._on_verify))

    def _on_request(self, iq):
        request = iq.xml.find('{%s}request' % NS_DOCS)
        reply = iq.reply()
        reply.append(ET.fromstring("<pending xmlns='%s' id='q-%s'/>"
                                   % (NS_DOCS, request.get('nonce')[:6])))
        reply.send()
        self.requests.put_nowait(request)
        # The holder approves (or declines) in the wallet: the result goes
        # to the full JID that asked.
        body = ("<declined xmlns='%s' request='q-%s' holder='%s'/>" if self.decline else
                "<presentation xmlns='%s' request='q-%s' holder='%s' nonce='" +
                request.get('nonce') + "' format='dc+sd-jwt'>eyJ.fake~</presentation>")
        msg = self.make_message(mto=str(iq['from']), mfrom=WALLET)
        msg.append(ET.fromstring(body % (NS_DOCS, request.get('nonce')[:6],
                                         request.get('holder'))))
        msg.send()

    def _on_verify(self, iq):
        verify = iq.xml.find('{%s}verify' % NS_DOCS)
        reply = iq.reply()
        claims = ''.join("<claim name='%s'>%s</claim>" % c
                         for c in (('given_name', 'Alice'), ('family_name', 'Liddell')))
        reply.append(ET.fromstring("<verified xmlns='%s' type='identity' issuer='x' "
                                   "nonce='%s'>%s</verified>"
                                   % (NS_DOCS, verify.get('nonce'), claims)))
        reply.send()


def harness_callback(path, fn):
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
    return Callback(path, MatchXPath('{jabber:component:accept}iq/' + path), fn)


def test_applying_with_documents():
    asyncio.run(applying())


async def applying():
    wallet = await Wallet().start()
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    await ask(alice, 'passport replacement', lang='en')
    answer = await ask(alice, 'yes')
    assert 'Approve the request there' in answer, answer
    request = await asyncio.wait_for(wallet.requests.get(), 5)
    assert request.get('holder') == ALICE, ET.tostring(request)
    cred = request.find('{%s}credential' % NS_DOCS)
    assert cred.get('type') == 'identity', ET.tostring(request)
    assert [c.get('name') for c in cred] == ['given_name', 'family_name', 'birthdate']
    assert 'Replacing a passport' in request.findtext('{%s}purpose' % NS_DOCS)
    result = await asyncio.wait_for(alice.messages.get(), 5)
    assert result['body'].startswith('Done: Replacing a passport'), result['body']
    assert 'Your reference number:' in result['body'], result['body']
    assert 'given_name: Alice' in result['body'], result['body']
    wallet.disconnect()
    # Declined in the wallet: said, nothing applied.
    wallet = await Wallet(decline=True).start()
    await ask(alice, 'замена паспорта')
    await ask(alice, 'да')
    result = await asyncio.wait_for(alice.messages.get(), 5)
    assert 'ничего не отправлено' in result['body'].lower() or 'Nothing was sent' in \
        result['body'], result['body']
    wallet.disconnect()
    await alice.close()


def test_no_wallet_and_a_broken_knowledge_base():
    asyncio.run(no_wallet())
    # A knowledge base with an error: the reload keeps the old one and
    # says where the error is.
    broken = os.path.join(server.dir, 'broken.yaml')
    with open(broken, 'w') as f:
        f.write('services:\n  - id: x\n    title: {en: X}\n    keywords: [not, by, language]\n')
    with open(server.config_path) as f:
        text = f.read()
    with open(server.config_path, 'w') as f:
        f.write(text.replace(KB, broken))
    server.reload()
    end = time.monotonic() + 5
    while 'broken.yaml: line 4' not in server.log_text() and time.monotonic() < end:
        time.sleep(0.1)
    assert 'broken.yaml: line 4' in server.log_text(), server.log_tail()
    asyncio.run(still_answers())
    with open(server.config_path, 'w') as f:
        f.write(text)


async def no_wallet():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    await ask(alice, 'register a car', lang='en')
    await ask(alice, 'yes', timeout=5)   # the request goes; the queue keeps it
    await alice.close()


async def still_answers():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    answer = await ask(alice, 'tax deduction for treatment', lang='en')
    assert answer.startswith('Tax deduction'), answer
    await alice.close()


if __name__ == '__main__':
    harness.run([test_known_question_in_english_and_russian,
                 test_unknown_question_gets_the_topics,
                 test_applying_with_documents,
                 test_no_wallet_and_a_broken_knowledge_base],
                server=server, setup=setup)
