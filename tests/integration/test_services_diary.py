#!/usr/bin/env python3
"""The school diary on the services platform (examples/school_diary.c,
doc/services.md): parents join their child's class from slixmpp, a
teacher's homework reaches every parent of the class (online at once,
offline from offline storage) with one broadcast and a delivery report,
no parent of another class, and the class's MUC room; only teachers
post."""

import asyncio
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import harness
from services_component import ServicesServer

DOMAIN = 'school.localhost'
SECRET = 'diary-secret'
DIARY = 'diary@' + DOMAIN
PASSWORD = 'user-password'
TEACHER = 'teacher@localhost'
PARENTS_5A = ['p1@localhost', 'p2@localhost', 'p3@localhost']
PARENT_6B = 'p4@localhost'
ROOM = 'class-5a@conference.localhost'

server = ServicesServer([(DOMAIN, SECRET, 'School')], modules='  muc:\n  services:\n')
diary = None
diary_log = None


def setup():
    global diary, diary_log
    for jid in [TEACHER, PARENT_6B] + PARENTS_5A:
        server.adduser(jid, PASSWORD)
    diary_log = os.path.join(server.dir, 'diary.log')
    env = dict(os.environ, VESTNIK_COMPONENT_SECRET=SECRET)
    with open(diary_log, 'w') as log:
        diary = subprocess.Popen([os.path.join(harness.builddir(), 'examples', 'school_diary'),
                                  '-d', DOMAIN, '-p', str(server.component_port),
                                  '-c', '5A', '-t', TEACHER],
                                 env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=log)
    deadline = time.monotonic() + 10
    while 'listed in the services directory' not in open(diary_log).read():
        assert diary.poll() is None, open(diary_log).read()
        assert time.monotonic() < deadline, 'the diary did not list itself: ' + open(
            diary_log).read()
        time.sleep(0.1)


async def command(client, body):
    client.send_message(mto=DIARY, mbody=body, mtype='chat')
    while True:
        msg = await asyncio.wait_for(client.messages.get(), 5)
        if str(msg['from']) == DOMAIN:
            return msg['body']


async def online(jid):
    client = harness.Client(jid + '/phone', PASSWORD)
    client.add_event_handler('session_start', lambda _: client.send_presence())
    return await client.login(server)


def test_teachers_homework_reaches_every_parent_of_the_class():
    asyncio.run(homework())


async def homework():
    parents = [await online(jid) for jid in PARENTS_5A]
    other = await online(PARENT_6B)
    for p in parents:
        assert (await command(p, 'join 5A')).startswith("You will get 5A's homework"), p
    assert (await command(other, 'join 6B')).startswith("You will get 6B's"), other
    # p3 goes offline: the homework waits for it in offline storage.
    await parents[2].close()
    teacher = await online(TEACHER)
    # The teacher opens the class's room; the diary posts there too.
    teacher.register_plugin('xep_0045')
    joined = asyncio.get_event_loop().create_future()
    teacher.add_event_handler('muc::%s::got_online' % ROOM,
                              lambda p: joined.done() or joined.set_result(p))
    teacher['xep_0045'].join_muc(ROOM, 'Maria Ivanovna')
    await asyncio.wait_for(joined, 5)
    # Gajim's "Create group chat" does this: a persistent room, unlocked.
    iq = teacher.make_iq_set(ito=ROOM)
    iq.append(ET.fromstring(
        "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
        "type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig"
        "</value></field><field var='muc#roomconfig_persistentroom'><value>1</value></field>"
        "</x></query>"))
    await iq.send(timeout=5)
    report = await command(teacher, 'homework 5A Maths: page 12, exercises 1-5')
    # Online, but sharing no presence with the diary: not seen online.
    assert report == ('Sent to 3 of 3 parent(s), 0 of them seen online; '
                      '0 have not started the diary.'), report
    for p in parents[:2]:
        msg = await asyncio.wait_for(p.messages.get(), 5)
        assert msg['body'] == 'Homework for 5A: Maths: page 12, exercises 1-5', msg
        assert str(msg['from']) == DOMAIN, msg
    await asyncio.sleep(0.5)
    assert other.messages.empty(), 'a parent of 6B got 5A\'s homework'
    late = await online(PARENTS_5A[2])
    msg = await asyncio.wait_for(late.messages.get(), 5)
    assert msg['body'] == 'Homework for 5A: Maths: page 12, exercises 1-5', msg
    # A grade goes the same way; a parent may not post.
    report = await command(teacher, 'grade 5A Masha 5')
    assert report.startswith('Sent to 3 of 3 parent(s), 0 of them seen online'), report
    for p in parents[:2] + [late]:
        msg = await asyncio.wait_for(p.messages.get(), 5)
        assert msg['body'] == 'New grade for Masha: 5', msg
    assert (await command(parents[0], 'homework 5A no homework today!')) == \
        'Only teachers post homework and grades.'
    for c in parents[:2] + [late, other, teacher]:
        await c.close()


def test_class_room_has_the_homework():
    asyncio.run(class_room())


async def class_room():
    parent = harness.Client(PARENTS_5A[0] + '/laptop', PASSWORD)
    parent.register_plugin('xep_0045')
    await parent.login(server)
    assert (await command(parent, 'room 5A')) == 'The chat room of 5A: ' + ROOM
    # The diary's own vCard, as clients show it for the contact.
    iq = parent.make_iq_get(ito=DOMAIN)
    iq.append(ET.fromstring("<vCard xmlns='vcard-temp'/>"))
    card = (await iq.send(timeout=5)).xml.find('{vcard-temp}vCard')
    assert card.findtext('{vcard-temp}FN') == 'School diary', ET.tostring(card)
    history = asyncio.Queue()
    parent.add_event_handler('groupchat_message', history.put_nowait)
    parent['xep_0045'].join_muc(ROOM, 'Mother of Masha', maxhistory='20')
    bodies = []
    while 'Homework for 5A: Maths: page 12, exercises 1-5' not in bodies:
        try:
            bodies.append((await asyncio.wait_for(history.get(), 5))['body'])
        except asyncio.TimeoutError:
            raise AssertionError('\n'.join(l for l in server.log_text().splitlines()
                                           if 'class-5a' in l)[-3000:])
    await parent.close()


def teardown_and_stop_check():
    diary.send_signal(signal.SIGTERM)
    assert diary.wait(10) == 0


if __name__ == '__main__':
    try:
        harness.run([test_teachers_homework_reaches_every_parent_of_the_class,
                     test_class_room_has_the_homework,
                     teardown_and_stop_check],
                    server=server, setup=setup)
    finally:
        if diary and diary.poll() is None:
            diary.kill()
