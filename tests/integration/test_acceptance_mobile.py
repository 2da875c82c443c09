#!/usr/bin/env python3
"""test_acceptance_mobile.py - issue 4's "Done when" for a mobile-class client.

One scenario on one server with everything a Conversations-class client
uses (stream management with resumption, carbons, CSI, MAM, PEP, HTTP
upload on an https listener), driven by unmodified slixmpp clients
through their own plugins: xep_0198, xep_0280, xep_0352, xep_0313,
xep_0084 (with xep_0115 caps for +notify), xep_0363. Alice has a phone
and a tablet, later a laptop; Bob is her contact on a desktop. Carbons
keep the phone and tablet in step, CSI holds back the inactive phone's
presence but not its messages, the phone's TCP connection is dropped and
the session resumed with nothing lost or repeated, the laptop catches up
on the whole conversation from the archive, Bob sees Alice's new avatar,
and a file Alice uploads (PUT over HTTPS through slixmpp's plugin, which
checks the server's certificate) is downloaded by Bob with a GET.

The web transports (WebSocket, BOSH) are test_web_transports.py's.
"""

import asyncio
import hashlib
import io
import os
import time
import urllib.parse
import urllib.request

import harness

D = harness.DOMAIN
ALICE = 'alice@' + D
BOB = 'bob@' + D
PASSWORD = 'secret-password'
RESUME_TIMEOUT = 60
NS_CARBONS = 'urn:xmpp:carbons:2'
NS_CSI = 'urn:xmpp:csi:0'
NS_SM = 'urn:xmpp:sm:3'
NS_MAM = 'urn:xmpp:mam:2'
NS_SID = 'urn:xmpp:sid:0'
NS_UPLOAD = 'urn:xmpp:http:upload:0'
NS_AVATAR_METADATA = 'urn:xmpp:avatar:metadata'
NS_OOB = 'jabber:x:oob'


class Server(harness.Server):
    """Every module a mobile client needs, and an https listener."""

    def __init__(self):
        self.https_port, = harness.free_ports(1)
        super().__init__(c2s_options={'resume_timeout': RESUME_TIMEOUT})

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('c2s:\n', f"""  - type: https
    address: 127.0.0.1
    port: {self.https_port}
c2s:
""", 1)
        text += ('  roster:\n'
                 '  presence:\n'
                 '  offline:\n'
                 '  carbons:\n'
                 '  csi:\n'
                 '  mam:\n'
                 '  pep:\n'
                 '  upload:\n')
        with open(self.config_path, 'w') as f:
            f.write(text)

    def certificate(self):
        return os.path.join(self.data_dir, 'certs', D + '.crt')


server = Server()


def setup():
    for jid in (ALICE, BOB):
        server.adduser(jid, PASSWORD)


class Device(harness.Client):
    """slixmpp as a mobile client sets itself up: its plugins, caps, the
    events it reports queued for the test."""

    def __init__(self, jid, plugins=()):
        super().__init__(jid, PASSWORD)
        for plugin in ('xep_0115', 'xep_0280', 'xep_0313', 'xep_0359') + tuple(plugins):
            self.register_plugin(plugin)
        self.carbons = asyncio.Queue()
        self.presences = asyncio.Queue()
        self.add_event_handler('carbon_received', self.carbons.put_nowait)
        self.add_event_handler('carbon_sent', self.carbons.put_nowait)
        self.add_event_handler('presence', self.presences.put_nowait)

    async def online(self):
        await self.login(server)
        await self.get_roster()
        self.send_presence()
        await self.ping()
        return self


async def settle(*clients):
    """Two rounds of pings: what the server routed because of anything
    these clients sent before has reached each of them."""
    for _ in range(2):
        for client in clients:
            await client.ping()


def drain(queue):
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def quiet_while_inactive(inactive, *others):
    """settle() for the others, then a while for the inactive client,
    which must not send a ping: the answer to an iq is urgent and would
    flush what CSI holds back."""
    await settle(*others)
    await asyncio.sleep(0.5)


async def next_message(client):
    return await asyncio.wait_for(client.messages.get(), 5)


async def expect_message(client, sender, to, body):
    msg = await next_message(client)
    assert (str(msg['from']), str(msg['to']), msg['type'], msg['body']) == (
        sender, to, 'chat', body), 'at %s: %s' % (client.boundjid, msg)
    return msg


async def expect_carbon(client, kind, sender, to, body):
    """A <received/> or <sent/> carbon from the account, forwarding this message."""
    carbon = await asyncio.wait_for(client.carbons.get(), 5)
    assert str(carbon['from']) == ALICE and str(carbon['to']) == str(client.boundjid), carbon
    assert carbon.xml.find('{%s}%s' % (NS_CARBONS, kind)) is not None, carbon
    inner = carbon['carbon_%s' % kind]
    assert (str(inner['from']), str(inner['to']), inner['body']) == (sender, to, body), carbon


async def assert_quiet(*clients):
    await settle(*clients)
    for client in clients:
        for queue in (client.messages, client.carbons):
            assert queue.empty(), 'unexpected at %s: %s' % (client.boundjid, queue.get_nowait())


async def befriend(alice, bob):
    """Alice asks, slixmpp at Bob approves and asks back, Alice's approves."""
    alice.send_presence_subscription(pto=BOB)
    for _ in range(100):
        if (alice.client_roster[BOB]['subscription'] == 'both' and
                bob.client_roster[ALICE]['subscription'] == 'both'):
            return
        await asyncio.sleep(0.05)
    raise AssertionError('no mutual subscription: %s, %s' % (
        alice.client_roster[BOB]['subscription'], bob.client_roster[ALICE]['subscription']))


def wait_for_log(text, timeout=5):
    deadline = time.monotonic() + timeout
    while text not in server.log_text():
        assert time.monotonic() < deadline, 'no %r in the log' % text
        time.sleep(0.02)


async def test_mobile_flow_resume_carbons_csi_mam_avatar_upload():
    phone = Device(ALICE + '/phone', ('xep_0198', 'xep_0352', 'xep_0084'))
    sm_enabled = asyncio.get_event_loop().create_future()
    phone.add_event_handler('sm_enabled', lambda e: sm_enabled.done() or sm_enabled.set_result(e))
    csi_offered = asyncio.get_event_loop().create_future()
    phone.add_event_handler('csi_enabled',
                            lambda e: csi_offered.done() or csi_offered.set_result(e))
    await phone.online()
    await asyncio.wait_for(sm_enabled, 5)
    await asyncio.wait_for(csi_offered, 5)
    assert phone['xep_0198'].sm_id, 'no resumption id'
    assert phone['xep_0352'].enabled
    # what Conversations reads from the account's own bare JID before using
    # MAM, OMEMO (publish-options, open access) and bookmarks 2
    account = await phone['xep_0030'].get_info(jid=ALICE, local=False, cached=False)
    assert ('pubsub', 'pep') in [i[:2] for i in account['disco_info']['identities']], account
    for feature in (NS_MAM, 'http://jabber.org/protocol/pubsub#publish-options',
                    'http://jabber.org/protocol/pubsub#access-open',
                    'urn:xmpp:bookmarks:1#compat'):
        assert feature in account['disco_info']['features'], (feature, account)
    bob = await Device(BOB + '/desk', ('xep_0084',)).online()
    await befriend(phone, bob)
    tablet = await Device(ALICE + '/tablet', ('xep_0363', 'xep_0066')).online()
    await settle(phone, tablet, bob)
    for client in (phone, tablet, bob):
        drain(client.presences)
    conversation = []

    # ---- carbons: the phone and the tablet see each other's conversation
    for device in (phone, tablet):
        reply = await device['xep_0280'].enable()
        assert reply['type'] == 'result', reply
    bob.send_message(mto=ALICE + '/phone', mbody='m1 bob to the phone', mtype='chat')
    await expect_message(phone, BOB + '/desk', ALICE + '/phone', 'm1 bob to the phone')
    await expect_carbon(tablet, 'received', BOB + '/desk', ALICE + '/phone', 'm1 bob to the phone')
    phone.send_message(mto=BOB, mbody='m2 phone to bob', mtype='chat')
    await expect_message(bob, ALICE + '/phone', BOB, 'm2 phone to bob')
    await expect_carbon(tablet, 'sent', ALICE + '/phone', BOB, 'm2 phone to bob')
    tablet.send_message(mto=BOB, mbody='m3 tablet to bob', mtype='chat')
    await expect_message(bob, ALICE + '/tablet', BOB, 'm3 tablet to bob')
    await expect_carbon(phone, 'sent', ALICE + '/tablet', BOB, 'm3 tablet to bob')
    conversation += ['m1 bob to the phone', 'm2 phone to bob', 'm3 tablet to bob']
    await assert_quiet(phone, tablet, bob)

    # ---- CSI: the inactive phone gets Bob's messages at once, his presence later
    phone['xep_0352'].send_inactive()
    await phone.ping()
    bob.send_presence(pstatus='at lunch', pshow='away')
    await quiet_while_inactive(phone, bob, tablet)
    assert [p['status'] for p in drain(tablet.presences)] == ['at lunch']
    assert drain(phone.presences) == [], 'presence reached an inactive client'
    # a message is never held; what was held goes first, keeping the order
    bob.send_message(mto=ALICE + '/phone', mbody='m4 while inactive', mtype='chat')
    await expect_message(phone, BOB + '/desk', ALICE + '/phone', 'm4 while inactive')
    await expect_carbon(tablet, 'received', BOB + '/desk', ALICE + '/phone', 'm4 while inactive')
    conversation.append('m4 while inactive')
    assert [p['status'] for p in drain(phone.presences)] == ['at lunch']
    bob.send_presence(pstatus='back from lunch')
    await quiet_while_inactive(phone, bob, tablet)
    assert [p['status'] for p in drain(tablet.presences)] == ['back from lunch']
    assert drain(phone.presences) == [], 'presence reached an inactive client'
    phone['xep_0352'].send_active()
    await phone.ping()
    [flushed] = drain(phone.presences)
    assert (str(flushed['from']), flushed['show'], flushed['status']) == (
        BOB + '/desk', '', 'back from lunch'), flushed
    await assert_quiet(phone, tablet, bob)

    # ---- the phone loses its connection; the session waits and resumes
    resumed = asyncio.get_event_loop().create_future()
    phone.add_event_handler('session_resumed',
                            lambda e: resumed.done() or resumed.set_result(e))
    sm_id = phone['xep_0198'].sm_id
    phone.transport.abort()
    await asyncio.wait_for(phone.disconnected_event.wait(), 5)
    await asyncio.to_thread(wait_for_log, 'session %s/phone hibernates' % ALICE)
    for body in ('m5 while away', 'm6 while away'):
        bob.send_message(mto=ALICE + '/phone', mbody=body, mtype='chat')
        await expect_carbon(tablet, 'received', BOB + '/desk', ALICE + '/phone', body)
    conversation += ['m5 while away', 'm6 while away']
    phone.connect(('127.0.0.1', server.c2s_port), force_starttls=True)
    await asyncio.wait_for(resumed, 10)
    assert phone['xep_0198'].sm_id == sm_id and str(phone.boundjid) == ALICE + '/phone'
    for body in ('m5 while away', 'm6 while away'):
        await expect_message(phone, BOB + '/desk', ALICE + '/phone', body)
    phone.send_message(mto=BOB, mbody='m7 back online', mtype='chat')
    await expect_message(bob, ALICE + '/phone', BOB, 'm7 back online')
    await expect_carbon(tablet, 'sent', ALICE + '/phone', BOB, 'm7 back online')
    conversation.append('m7 back online')
    await assert_quiet(phone, tablet, bob)  # nothing duplicated by the resumption
    assert not phone.stream_errors, phone.stream_errors

    # ---- a new device catches up on the whole conversation from MAM
    laptop = await Device(ALICE + '/laptop').online()
    archived = [msg async for msg in laptop['xep_0313'].iterate(with_jid=BOB, rsm={'max': 3})]
    forwarded = [m['mam_result']['forwarded']['stanza'] for m in archived]
    assert [m['body'] for m in forwarded] == conversation, [m['body'] for m in forwarded]
    senders = [str(m['from']) for m in forwarded]
    assert senders == [BOB + '/desk', ALICE + '/phone', ALICE + '/tablet', BOB + '/desk',
                       BOB + '/desk', BOB + '/desk', ALICE + '/phone'], senders
    for message in archived:
        assert str(message['from']) == ALICE, message  # the account's own archive
        assert message['mam_result']['forwarded']['delay']['stamp'] is not None, message
    # the ids MAM gives are the stanza-ids the live messages carried
    drain(bob.messages)
    bob.send_message(mto=ALICE + '/laptop', mbody='m8 to the laptop', mtype='chat')
    live = await expect_message(laptop, BOB + '/desk', ALICE + '/laptop', 'm8 to the laptop')
    [stanza_id] = [e for e in live.xml.findall('{%s}stanza-id' % NS_SID) if e.get('by') == ALICE]
    [newest] = [msg async for msg in laptop['xep_0313'].iterate(
        with_jid=BOB, reverse=True, rsm={'max': 1}, total=1)]
    assert newest['mam_result']['forwarded']['stanza']['body'] == 'm8 to the laptop', newest
    assert newest['mam_result']['id'] == stanza_id.get('id'), (newest, stanza_id)

    # ---- the phone publishes an avatar; Bob, interested through caps, sees it
    notified = asyncio.get_event_loop().create_future()
    bob.add_event_handler('avatar_metadata_publish',
                          lambda m: notified.done() or notified.set_result(m))
    image = b'\x89PNG\r\n\x1a\n' + hashlib.sha256(b'avatar').digest() * 32
    avatar_id = phone['xep_0084'].generate_id(image)
    await phone['xep_0084'].publish_avatar(image)
    await phone['xep_0084'].publish_avatar_metadata(
        {'id': avatar_id, 'type': 'image/png', 'bytes': len(image)})
    event = await asyncio.wait_for(notified, 5)
    assert str(event['from']) == ALICE, event
    [info] = event['pubsub_event']['items']['item']['avatar_metadata']['items']
    assert (info['id'], info['type'], int(info['bytes'])) == (avatar_id, 'image/png',
                                                              len(image)), info
    data = await bob['xep_0084'].retrieve_avatar(ALICE, avatar_id)
    assert data['pubsub']['items']['item']['avatar_data']['value'] == image

    # ---- the tablet shares a file through HTTP upload; Bob downloads it
    # slixmpp 1.8.3's own service discovery for upload (get_info_from_domain)
    # passes coroutines to asyncio.wait, which Python 3.11 refuses; what it
    # would find is checked here and handed to the plugin instead.
    info = await tablet['xep_0030'].get_info(jid=D, local=False, cached=False)
    assert ('store', 'file') in [i[:2] for i in info['disco_info']['identities']], info
    assert NS_UPLOAD in info['disco_info']['features'], info
    [form] = [f for f in info['disco_info'].iterables
              if f['values'].get('FORM_TYPE') == [NS_UPLOAD]]
    tablet['xep_0363'].upload_service = info['from']
    tablet['xep_0363'].max_file_size = int(form['values']['max-file-size'])
    content = os.urandom(300000)
    url = await tablet['xep_0363'].upload_file('holiday photo.jpg', input_file=io.BytesIO(content),
                                               content_type='image/jpeg', timeout=10)
    parts = urllib.parse.urlsplit(url)
    assert (parts.scheme, parts.port) == ('https', server.https_port), url
    assert parts.path.endswith('/holiday%20photo.jpg'), url
    # shared the way Conversations does: the URL as body and in <x xmlns='jabber:x:oob'/>
    share = tablet.make_message(mto=BOB, mbody=url, mtype='chat')
    share['oob']['url'] = url
    share.send()
    share = await expect_message(bob, ALICE + '/tablet', BOB, url)
    assert share.xml.findtext('{%s}x/{%s}url' % (NS_OOB, NS_OOB)) == url, share
    response = await asyncio.to_thread(download, url)
    assert response == (200, 'image/jpeg', content), response[:2]

    for client in (phone, tablet, laptop, bob):
        await client.close()


def download(url):
    """GET as Bob's client would, trusting the server's certificate."""
    context = harness.ssl.create_default_context(cafile=server.certificate())
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        return response.status, response.headers['Content-Type'], response.read()


if __name__ == '__main__':
    # slixmpp's upload plugin PUTs with aiohttp and the default certificate
    # checks: let it trust the test server's generated certificate, whose
    # name (localhost) is the one in the URLs.
    os.environ['SSL_CERT_FILE'] = server.certificate()
    harness.run([test_mobile_flow_resume_carbons_csi_mam_avatar_upload],
                server=server, setup=setup, timeout=120)
