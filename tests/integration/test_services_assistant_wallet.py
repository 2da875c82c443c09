#!/usr/bin/env python3
"""The public-services assistant with the real documents wallet
(modules/credentials, xeps/documents.md): the civil registry issues Alice
an identity card; Alice asks the assistant for a passport replacement and
says yes; the wallet asks her, in its chat, whether to share the three
claims with the assistant; she says yes; the assistant has the wallet
verify the presentation and tells her the result with the checked names.
A second application she refuses in the wallet ends with nothing sent."""

import asyncio
import os
import xml.etree.ElementTree as ET

import harness
import test_credentials
from test_credentials import NS, PASSWORD, WALLET, CredentialsServer, message_from, send_iq

ALICE = 'alice@' + harness.DOMAIN
REGISTRY = 'registry@' + harness.DOMAIN
ASSISTANT = 'assistant@services.' + harness.DOMAIN
KB = os.path.join(harness.srcdir(), 'examples', 'assistant', 'knowledge.yaml')


class WalletAndAssistantServer(CredentialsServer):
    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('components:\n', '  roster:\n  presence:\n  offline:\n  services:\n'
                            '    assistant_knowledge_base: %s\ncomponents:\n' % KB, 1)
        with open(self.config_path, 'w') as f:
            f.write(text)


server = WalletAndAssistantServer()
test_credentials.server = server   # its helpers use the module's server


def setup():
    for jid in (ALICE, REGISTRY):
        server.adduser(jid, PASSWORD)


async def say(client, to, text, expect=None):
    client.send_message(mto=to, mbody=text, mtype='chat')
    return (await message_from(client, to, expect))['body']


def test_applying_with_a_document_from_the_wallet():
    asyncio.run(applying())


async def applying():
    alice = await test_credentials.user(ALICE)
    registry = await test_credentials.user(REGISTRY, 'office')
    issued = await send_iq(registry, "<issue xmlns='%s' holder='%s' type='identity'>"
                           "<claim name='given_name'>Alice</claim>"
                           "<claim name='family_name'>Liddell</claim>"
                           "<claim name='birthdate'>1990-05-04</claim></issue>" % (NS, ALICE))
    assert issued.get('type') == 'result', ET.tostring(issued)
    await message_from(alice, WALLET, 'You received a new document')

    answer = await say(alice, ASSISTANT, 'I need to replace my passport', 'Reply "yes"')
    assert answer.startswith('Replacing a passport'), answer
    await say(alice, ASSISTANT, 'yes', 'Approve the request there')
    ask = await message_from(alice, WALLET, 'asks for your documents')
    assert ASSISTANT in ask['body'] and 'Replacing a passport' in ask['body'], ask['body']
    await say(alice, WALLET, 'yes', 'Shared with')
    done = await message_from(alice, ASSISTANT, 'Done:')
    assert done['body'].startswith('Done: Replacing a passport'), done['body']
    assert 'given_name: Alice' in done['body'] and 'family_name: Liddell' in done['body'], \
        done['body']
    assert 'Your reference number:' in done['body'], done['body']

    # Refused in the wallet: the assistant says so and applies for nothing.
    await say(alice, ASSISTANT, 'замена паспорта')
    await say(alice, ASSISTANT, 'да')
    await message_from(alice, WALLET, 'asks for your documents')
    assert await say(alice, WALLET, 'no', 'Nothing was shared') == 'Nothing was shared.'
    refused = await message_from(alice, ASSISTANT)
    assert 'Nothing was sent' in refused['body'] or 'ничего' in refused['body'].lower(), \
        refused['body']
    await alice.close()
    await registry.close()


if __name__ == '__main__':
    harness.run([test_applying_with_a_document_from_the_wallet], server=server, setup=setup,
                timeout=90)
