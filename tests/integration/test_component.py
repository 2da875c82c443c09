#!/usr/bin/env python3
"""External components (XEP-0114): handshake, routing both ways, disco
listing, and the refusals (wrong secret, unknown domain, foreign 'from',
stanzas while the component is away, a second connection)."""

import asyncio
import hashlib
import time

from slixmpp.exceptions import IqError

import harness
from harness import qname

NS_COMPONENT = 'jabber:component:accept'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
DOMAIN = 'school.localhost'
SECRET = 'diary-secret'
PASSWORD = 'parent-password'
PARENT = 'parent@localhost'


class ComponentServer(harness.Server):
    def __init__(self):
        self.component_port = harness.free_ports(1)[0]
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('listeners:\n', 'listeners:\n  - type: component\n'
                            '    address: 127.0.0.1\n    port: %d\n' % self.component_port, 1)
        text += ('components:\n  - domain: %s\n    secret: %s\n    name: School diary\n'
                 % (DOMAIN, SECRET))
        with open(self.config_path, 'w') as f:
            f.write(text)


server = ComponentServer()


def connect_component(domain=DOMAIN, secret=SECRET):
    """A raw component stream after the handshake answer was read."""
    stream = harness.RawStream(server.component_port)
    stream.open(to=domain, ns=NS_COMPONENT)
    deadline = time.monotonic() + stream.timeout
    while stream.header is None and not stream.eof:
        stream._read_some(deadline)
    assert stream.header is not None, stream.received
    stream_id = stream.header.get('id')
    assert stream_id and stream.header.get('from') == domain, stream.header.attrib
    digest = hashlib.sha1((stream_id + secret).encode()).hexdigest()
    stream.send('<handshake>%s</handshake>' % digest)
    return stream


def component():
    stream = connect_component()
    stream.expect(qname(NS_COMPONENT, 'handshake'))
    return stream


def setup():
    server.adduser(PARENT, PASSWORD)


def test_handshake_and_disco_listing():
    stream = component()

    async def scenario():
        client = await harness.login(server, PARENT + '/phone', PASSWORD)
        items = await client['xep_0030'].get_items(jid='localhost')
        found = [(i[0], i[2]) for i in items['disco_items']['items']]
        assert (DOMAIN, 'School diary') in found, found
        await client.close()
    asyncio.run(scenario())
    stream.close()


def test_messages_both_ways():
    stream = component()
    try:
        asyncio.run(messages_both_ways(stream))
    finally:
        stream.close()


async def messages_both_ways(stream):
    client = await harness.login(server, PARENT + '/phone', PASSWORD)
    client.send_message(mto='bot@' + DOMAIN, mbody='homework', mtype='chat')
    # The raw stream blocks: read it off the loop slixmpp runs on.
    msg = await asyncio.to_thread(stream.expect, qname(NS_COMPONENT, 'message'))
    assert msg.get('from') == PARENT + '/phone', msg.attrib
    assert msg.get('to') == 'bot@' + DOMAIN, msg.attrib
    assert msg.findtext(qname(NS_COMPONENT, 'body')) == 'homework'
    stream.send("<message from='bot@%s' to='%s/phone' type='chat'>"
                "<body>Maths: page 12</body></message>" % (DOMAIN, PARENT))
    reply = await asyncio.wait_for(client.messages.get(), 5)
    assert str(reply['from']) == 'bot@' + DOMAIN and reply['body'] == 'Maths: page 12'
    await client.close()


def test_stanzas_while_away_are_service_unavailable():
    async def scenario():
        client = await harness.login(server, PARENT + '/phone', PASSWORD)
        try:
            await client['xep_0030'].get_info(jid=DOMAIN, timeout=5)
        except IqError as e:
            assert e.iq['error']['condition'] == 'service-unavailable', e.iq
        else:
            raise AssertionError('disco#info to an absent component succeeded')
        await client.close()
    asyncio.run(scenario())


def test_wrong_secret_is_not_authorized_and_logged():
    stream = connect_component(secret='guess')
    stream.expect_stream_error('not-authorized')
    assert 'component %s: wrong secret' % DOMAIN in server.log_text()


def test_unknown_domain_is_host_unknown():
    stream = harness.RawStream(server.component_port)
    stream.open(to='bank.localhost', ns=NS_COMPONENT)
    stream.expect_stream_error('host-unknown')


def test_foreign_from_is_invalid_from():
    stream = component()
    stream.send("<message from='someone@localhost' to='%s'><body>x</body></message>" % PARENT)
    stream.expect_stream_error('invalid-from')


def test_second_connection_replaces_the_first():
    first = component()
    second = component()
    first.expect_stream_error('conflict')
    second.send("<iq type='get' id='p1' from='%s' to='localhost'>"
                "<ping xmlns='urn:xmpp:ping'/></iq>" % DOMAIN)
    result = second.expect(qname(NS_COMPONENT, 'iq'))
    assert result.get('type') == 'result' and result.get('id') == 'p1', result.attrib
    second.close()


def test_server_shutdown_is_system_shutdown():
    # RFC 6120 4.9.3.17: a connected component hears <system-shutdown/>
    # when the server stops, like every other stream.
    stream = component()
    server.stop()
    stream.expect_stream_error('system-shutdown')
    server.start()


if __name__ == '__main__':
    harness.run([test_handshake_and_disco_listing,
                 test_messages_both_ways,
                 test_stanzas_while_away_are_service_unavailable,
                 test_wrong_secret_is_not_authorized_and_logged,
                 test_unknown_domain_is_host_unknown,
                 test_foreign_from_is_invalid_from,
                 test_second_connection_replaces_the_first,
                 test_server_shutdown_is_system_shutdown],
                server=server, setup=setup)
