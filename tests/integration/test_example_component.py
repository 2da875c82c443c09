#!/usr/bin/env python3
"""The example component examples/school_diary (libstrophe) against a real
vestnikd: it connects with its secret, is listed in disco, answers a real
client's "homework", and pushes a grade to a subscribed parent."""

import asyncio
import os
import signal
import subprocess
import time

import harness
from test_component import ComponentServer

DOMAIN = 'school.localhost'
PASSWORD = 'parent-password'

server = ComponentServer()
diary = None


def setup():
    global diary
    server.adduser('parent@localhost', PASSWORD)
    server.adduser('teacher@localhost', PASSWORD)
    env = dict(os.environ, VESTNIK_COMPONENT_SECRET='diary-secret')
    diary = subprocess.Popen([os.path.join(harness.builddir(), 'examples', 'school_diary'),
                              '-d', DOMAIN, '-p', str(server.component_port)],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while 'component %s connected' % DOMAIN not in server.log_text():
        assert diary.poll() is None, diary.stderr.read()
        assert time.monotonic() < deadline, 'the example component did not connect'
        time.sleep(0.1)


async def reply_to(client, body):
    client.send_message(mto='diary@' + DOMAIN, mbody=body, mtype='chat')
    msg = await asyncio.wait_for(client.messages.get(), 5)
    assert str(msg['from']) == DOMAIN, msg
    return msg['body']


def test_listed_and_described_in_disco():
    async def scenario():
        client = await harness.login(server, 'parent@localhost/phone', PASSWORD)
        items = await client['xep_0030'].get_items(jid='localhost')
        assert DOMAIN in [i[0] for i in items['disco_items']['items']]
        info = await client['xep_0030'].get_info(jid=DOMAIN)
        identities = info['disco_info']['identities']
        assert ('component', 'generic', None, 'School diary') in identities, identities
        await client.ping(DOMAIN)
        await client.close()
    asyncio.run(scenario())


def test_homework_and_grade_notification():
    async def scenario():
        parent = await harness.login(server, 'parent@localhost/phone', PASSWORD)
        teacher = await harness.login(server, 'teacher@localhost/laptop', PASSWORD)
        # Online, so that messages to the parent's bare JID reach the phone.
        parent.send_presence()
        assert (await reply_to(parent, 'homework')).startswith('Homework for ')
        assert await reply_to(parent, 'subscribe') == 'You will get grade notifications.'
        assert await reply_to(teacher, 'grade Masha 5') == 'Sent to 1 parent(s).'
        note = await asyncio.wait_for(parent.messages.get(), 5)
        assert note['body'] == 'New grade for Masha: 5', note
        await parent.close()
        await teacher.close()
    asyncio.run(scenario())


def teardown_and_stop_check():
    diary.send_signal(signal.SIGTERM)
    assert diary.wait(10) == 0


if __name__ == '__main__':
    try:
        harness.run([test_listed_and_described_in_disco,
                     test_homework_and_grade_notification,
                     teardown_and_stop_check],
                    server=server, setup=setup)
    finally:
        if diary and diary.poll() is None:
            diary.kill()
