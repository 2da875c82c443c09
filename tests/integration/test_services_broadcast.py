#!/usr/bin/env python3
"""Broadcasts (xeps/services-bus.md §4.3): a service puts 210 users into
an audience with one request and messages them with another; the 200 who
started it each get the message exactly once, the 10 who did not are
skipped and counted, the delivery report says so (and counts as online
only members who share their presence with the service); the daily quota stops
the next broadcast before anything is sent; bad requests are errors."""

import asyncio
import concurrent.futures
import time
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError

import harness
from services_component import AckingComponent, ServicesServer

SHOP = 'shop.localhost'
DIRECTORY = 'services.localhost'
NS = 'urn:vestnik:services:0'
PASSWORD = 'user-password'
STARTED = ['u%03d@localhost' % i for i in range(200)]
NOT_STARTED = ['n%02d@localhost' % i for i in range(10)]

# 211 clients from 127.0.0.1: more than limits.max_connections_per_ip's 50.
server = ServicesServer([(SHOP, 'shop-secret', 'Shop')],
                        modules='  services:\n    service_daily_quota: 300\n',
                        limits_options={'max_connections_per_ip': 1000},
                        handshake_timeout=60)


def setup():
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda jid: server.adduser(jid, PASSWORD), STARTED + NOT_STARTED))


async def service_iq(component, payload):
    iq = component.make_iq_set(ito=DIRECTORY, ifrom=SHOP)
    iq.append(ET.fromstring(payload))
    return await iq.send(timeout=20)


async def started_client(jid):
    client = harness.Client(jid + '/phone', PASSWORD)
    client.add_event_handler('session_start', lambda _: client.send_presence())
    await client.login(server, timeout=60)
    client.send_message(mto='offers@' + SHOP, mbody='start', mtype='chat')
    return client


def test_broadcast_to_200_users_once_each_with_a_report():
    asyncio.run(broadcast())


async def broadcast():
    shop = await AckingComponent(server, SHOP, 'shop-secret').start()
    clients = []
    for i in range(0, len(STARTED), 10):
        clients += await asyncio.gather(*(started_client(jid) for jid in STARTED[i:i + 10]))
    starts = 0
    while starts < len(STARTED):
        msg = await asyncio.wait_for(shop.messages.get(), 20)
        starts += msg['body'] == 'start'
    members = ''.join("<member jid='%s'/>" % jid for jid in STARTED + NOT_STARTED)
    result = await service_iq(shop, "<audience xmlns='%s' name='promo' action='replace'>%s"
                                    "</audience>" % (NS, members))
    assert result.xml.find('{%s}audience' % NS).get('size') == '210', result
    began = time.monotonic()
    result = await service_iq(shop, "<broadcast xmlns='%s' audience='promo'><message "
                                    "xmlns='jabber:client' type='chat' id='sale-1'><body>Sale "
                                    "today: -20%%</body></message></broadcast>" % NS)
    report = result.xml.find('{%s}report' % NS)
    # All 200 are online, but none shares presence with the shop (they
    # only wrote to it): the report must not tell it who is online.
    assert report.attrib == {'audience': 'promo', 'id': 'sale-1', 'members': '210',
                             'delivered': '200', 'online': '0', 'offline': '200',
                             'not-started': '10', 'muted': '0', 'stopped': '0'}, report.attrib

    async def received(client):
        msg = await asyncio.wait_for(client.messages.get(), 20)
        assert msg['body'] == 'Sale today: -20%' and msg['id'] == 'sale-1', msg
        assert str(msg['from']) == SHOP, msg
    await asyncio.gather(*(received(c) for c in clients))
    print('# 200 recipients got the broadcast %.2f s after the request' %
          (time.monotonic() - began))
    # The daily quota (300) does not hold another 200: refused whole.
    try:
        await service_iq(shop, "<broadcast xmlns='%s' audience='promo'><message "
                               "xmlns='jabber:client'><body>again</body></message></broadcast>"
                         % NS)
    except IqError as e:
        error = [el for el in e.iq.xml if el.tag.endswith('}error')][0]
        assert error.find('{%s}quota-exceeded' % NS) is not None, e.iq
    else:
        raise AssertionError('a broadcast past the daily quota was sent')
    await asyncio.sleep(1)   # a duplicate or the refused one would be here now
    assert all(c.messages.empty() for c in clients), 'a user got more than one message'
    # Bad input.
    for payload, condition in [
            ("<broadcast xmlns='%s' audience='nobody'><message xmlns='jabber:client'>"
             "<body>x</body></message></broadcast>" % NS, 'item-not-found'),
            ("<broadcast xmlns='%s' audience='promo'/>" % NS, 'bad-request'),
            ("<audience xmlns='%s' name='BAD NAME'/>" % NS, 'bad-request'),
            ("<audience xmlns='%s' name='x'><member jid='someone@elsewhere.example'/>"
             "</audience>" % NS, 'jid-malformed')]:
        try:
            await service_iq(shop, payload)
        except IqError as e:
            error = [el for el in e.iq.xml if el.tag.endswith('}error')][0]
            assert error.find('{urn:ietf:params:xml:ns:xmpp-stanzas}%s' % condition) \
                is not None, (payload, e.iq)
        else:
            raise AssertionError('accepted: ' + payload)
    line = [l for l in server_services_list().splitlines() if l.startswith(SHOP)][0]
    assert 'broadcasts=1' in line and 'sent=200' in line, line
    shop.disconnect()
    for c in clients:
        await c.close()


def server_services_list():
    import subprocess
    result = subprocess.run([server.ctl, '-c', server.config_path, 'services', 'list'],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


if __name__ == '__main__':
    harness.run([test_broadcast_to_200_users_once_each_with_a_report],
                server=server, setup=setup, timeout=240)
