#!/usr/bin/env python3
"""test_xep0227.py - accounts moved with XEP-0227 files (vestnikctl export/import
--format xep0227), to and from real vestnikd processes and real peers.

 - vestnik to vestnik: accounts with passwords, a roster with groups and a
   pending request, a vCard, private XML, an offline message and a MAM
   archive are exported from a running server, imported into a fresh data
   dir, and slixmpp logs in there with the same passwords and gets them all
   back (the offline message with its original delay stamp).
 - to Prosody 0.12: the export, split into a file per user as Prosody's
   storage = "xep0227" keeps them, is Prosody's data; alice logs in there
   with her password and finds her roster, vCard and bookmarks.
 - from Prosody 0.12: a real Prosody with storage = "xep0227" keeps its
   users in XEP-0227 files itself; its users register with prosodyctl, set a
   roster, a vCard and private XML over slixmpp, and their files are
   imported into vestnik, where they log in with SCRAM-SHA-1 (Prosody keeps
   SCRAM-SHA-1 credentials only) and PLAIN.
 - from ejabberd 23.01: `ejabberdctl export_piefxis` of a real ejabberd
   node (SCRAM-SHA-256 credentials, a roster item with a group, a vCard, an
   offline message) in its layout of a main file XIncluding one file per
   host, imported into vestnik; its user logs in and finds it all.
 - another server's MAM archive keeps its times, loses its ids for the
   account (stanza-id by the account) and keeps the others.
 - the same export into a server on PostgreSQL (pg.py's own cluster), and
   exported from there again.
 - a file naming a host vestnik does not serve, with a DTD, truncated, with
   malformed SCRAM data, with an account without credentials or naming a
   missing file is refused with an error.

The peers and PostgreSQL are skipped when missing, unless
VN_REQUIRE_PEERS=1.
"""

import asyncio
import glob
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import harness
import peers
import pg
from harness import NS_CLIENT

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS_PIE = 'urn:xmpp:pie:0'
NS_ROSTER = 'jabber:iq:roster'
NS_VCARD = 'vcard-temp'
NS_PRIVATE = 'jabber:iq:private'
NS_MAM = 'urn:xmpp:mam:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_DELAY = 'urn:xmpp:delay'
NS_BOOKMARKS = 'storage:bookmarks'

ALICE, BOB, CAROL = 'alice@localhost', 'bob@localhost', 'carol@localhost'
PASSWORDS = {ALICE: 'alice in wonderland', BOB: 'b0b-s3cret', CAROL: 'carol'}


def q(ns, name):
    return '{%s}%s' % (ns, name)


def required():
    return os.environ.get('VN_REQUIRE_PEERS') == '1'


class Server(harness.Server):
    """The harness's server with the modules whose data XEP-0227 carries,
    on LMDB or on the store a config fragment names."""

    def __init__(self, store='', **kwargs):
        self.store = store
        super().__init__(**kwargs)

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n  presence:\n  vcard:\n  private:\n  offline:\n  mam:\n')
            f.write(self.store)

    def ctl_run(self, *args, check=True):
        result = subprocess.run([self.ctl, '-c', self.config_path] + list(args),
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=120)
        if check:
            assert result.returncode == 0, 'vestnikctl %s failed (%d): %s%s' % (
                ' '.join(args), result.returncode, result.stdout, result.stderr)
        return result


source = Server()
exported = []  # the file test_vestnik_round_trip wrote


async def iq_set(client, payload, to=None):
    iq = client.make_iq_set(ito=to)
    iq.append(payload)
    return await iq.send(timeout=10)


async def iq_get(client, payload, to=None):
    iq = client.make_iq_get(ito=to)
    iq.append(payload)
    return await iq.send(timeout=10)


def roster_item(jid, name=None, groups=()):
    query = ET.Element(q(NS_ROSTER, 'query'))
    item = ET.SubElement(query, q(NS_ROSTER, 'item'), jid=jid)
    if name:
        item.set('name', name)
    for group in groups:
        ET.SubElement(item, q(NS_ROSTER, 'group')).text = group
    return query


def vcard(full_name):
    card = ET.Element(q(NS_VCARD, 'vCard'))
    ET.SubElement(card, q(NS_VCARD, 'FN')).text = full_name
    photo = ET.SubElement(card, q(NS_VCARD, 'PHOTO'))
    ET.SubElement(photo, q(NS_VCARD, 'TYPE')).text = 'image/png'
    ET.SubElement(photo, q(NS_VCARD, 'BINVAL')).text = 'iVBORw0KGgo='
    return card


def bookmarks(room):
    query = ET.Element(q(NS_PRIVATE, 'query'))
    storage = ET.SubElement(query, q(NS_BOOKMARKS, 'storage'))
    ET.SubElement(storage, q(NS_BOOKMARKS, 'conference'), jid=room, autojoin='true')
    return query


async def fill_in(client, contact, contact_name, groups, full_name, room):
    """The data a migration must keep, set over XMPP."""
    await iq_set(client, roster_item(contact, contact_name, groups))
    await iq_set(client, vcard(full_name))
    await iq_set(client, bookmarks(room))


async def check_kept(client, contact, contact_name, groups, full_name, room):
    """What fill_in set, read back over XMPP."""
    roster = await iq_get(client, ET.Element(q(NS_ROSTER, 'query')))
    items = {i.get('jid'): i for i in roster.xml.iter(q(NS_ROSTER, 'item'))}
    assert contact in items, 'roster: %s' % harness.tostring(roster.xml)
    assert items[contact].get('name') == contact_name, harness.tostring(items[contact])
    assert sorted(g.text for g in items[contact].findall(q(NS_ROSTER, 'group'))) == \
        sorted(groups), harness.tostring(items[contact])
    card = await iq_get(client, ET.Element(q(NS_VCARD, 'vCard')), to=client.boundjid.bare)
    assert card.xml.findtext('%s/%s' % (q(NS_VCARD, 'vCard'), q(NS_VCARD, 'FN'))) == \
        full_name, harness.tostring(card.xml)
    query = ET.Element(q(NS_PRIVATE, 'query'))
    ET.SubElement(query, q(NS_BOOKMARKS, 'storage'))
    private = await iq_get(client, query)
    conference = private.xml.find('.//%s' % q(NS_BOOKMARKS, 'conference'))
    assert conference is not None and conference.get('jid') == room, \
        harness.tostring(private.xml)


async def mam_bodies(client):
    """Every body in the account's archive, oldest first."""
    results = asyncio.Queue()
    client.register_handler(Callback(
        'MAM result', MatchXPath('{%s}message/{%s}result' % (NS_CLIENT, NS_MAM)),
        results.put_nowait))
    query = ET.Element(q(NS_MAM, 'query'), queryid='all')
    await iq_set(client, query)
    bodies = []
    while not results.empty():
        msg = results.get_nowait()
        bodies.append(msg.xml.findtext('.//%s/%s' % (q(NS_CLIENT, 'message'),
                                                     q(NS_CLIENT, 'body'))))
    return bodies


def export_file(server, name):
    path = os.path.join(server.dir, name)
    server.ctl_run('export', '--format', 'xep0227', path)
    return path


def fresh_server(*files, extra_hosts=(), store=''):
    """A new vestnikd whose store is made by importing files, started."""
    target = Server(store=store, extra_hosts=extra_hosts)
    for path in files:
        result = target.ctl_run('import', '--format', 'xep0227', path)
        assert 'imported' in result.stdout, result.stdout
    target.start()
    return target


def setup():
    for jid, password in PASSWORDS.items():
        source.adduser(jid, password)


async def test_vestnik_round_trip():
    alice = await harness.login(source, ALICE, PASSWORDS[ALICE])
    bob = await harness.login(source, BOB, PASSWORDS[BOB])
    await fill_in(alice, BOB, 'Bobby', ['Friends', 'Work'], 'Alice Liddell', 'tea@party.example')
    alice.send_presence(pto=CAROL, ptype='subscribe')  # carol's request pending
    bob.send_presence()
    await bob.ping()
    alice.send_message(mto=BOB, mbody='archived hello', mtype='chat')
    await asyncio.wait_for(bob.messages.get(), 5)
    await bob.close()
    await asyncio.sleep(0.3)
    alice.send_message(mto=BOB, mbody='while you were away', mtype='chat')
    await alice.ping()
    await alice.close()

    path = export_file(source, 'export.xml')
    exported.append(path)
    tree = ET.parse(path).getroot()
    assert tree.tag == q(NS_PIE, 'server-data'), tree.tag
    users = {u.get('name'): u for u in tree.iter(q(NS_PIE, 'user'))}
    assert sorted(users) == ['alice', 'bob', 'carol'], sorted(users)
    mechanisms = sorted(c.get('mechanism') for c in users['alice'].findall(
        q('urn:xmpp:pie:0#scram', 'scram-credentials')))
    assert mechanisms == ['SCRAM-SHA-1', 'SCRAM-SHA-256'], mechanisms
    assert all(u.get('password') is None for u in users.values()), 'a password was exported'
    requests = users['carol'].findall(q(NS_CLIENT, 'presence'))
    assert [p.get('from') for p in requests] == [ALICE], ET.tostring(users['carol'])
    offline = users['bob'].findall('%s/%s' % (q(NS_PIE, 'offline-messages'),
                                              q(NS_CLIENT, 'message')))
    assert [m.findtext(q(NS_CLIENT, 'body')) for m in offline] == ['while you were away']
    stamp = offline[0].find(q(NS_DELAY, 'delay')).get('stamp')

    target = fresh_server(path)
    try:
        alice = await harness.login(target, ALICE, PASSWORDS[ALICE])
        await check_kept(alice, BOB, 'Bobby', ['Friends', 'Work'], 'Alice Liddell',
                         'tea@party.example')
        assert 'archived hello' in await mam_bodies(alice)
        await alice.close()
        for mechanism in ('SCRAM-SHA-1', 'PLAIN'):
            client = await harness.login(target, BOB, PASSWORDS[BOB], mechanism=mechanism)
            await client.close()
        bob = await harness.login(target, BOB, PASSWORDS[BOB])
        bob.send_presence()
        msg = await asyncio.wait_for(bob.messages.get(), 5)
        assert msg['body'] == 'while you were away', msg
        assert msg.xml.find(q(NS_DELAY, 'delay')).get('stamp') == stamp, msg
        assert 'archived hello' in await mam_bodies(bob)
        await bob.close()
        carol = await harness.login(target, CAROL, PASSWORDS[CAROL])
        requests = asyncio.Queue()
        carol.add_event_handler('presence_subscribe', requests.put_nowait)
        carol.send_presence()
        request = await asyncio.wait_for(requests.get(), 5)
        assert request['from'].bare == ALICE, request
        await carol.close()
        wrong = harness.Client(ALICE, 'not the password')
        try:
            await wrong.login(target)
            raise AssertionError('a wrong password logged in after the import')
        except AssertionError as e:
            assert 'auth' in str(e) or 'disconnected' in str(e), e
    finally:
        target.stop()


async def test_into_postgresql():
    """The same file into a server on PostgreSQL, and out of it again."""
    reason = pg.missing_reason()
    if reason:
        assert not required(), '%s, and VN_REQUIRE_PEERS=1' % reason
        print('# SKIP %s' % reason)
        return
    assert exported, 'test_vestnik_round_trip exported nothing'
    database = pg.PostgreSQL().start()
    try:
        store = ('store:\n  backend: postgresql\n  postgresql:\n    conninfo: "%s"\n'
                 % database.conninfo.replace('"', '\\"'))
        target = fresh_server(exported[0], store=store)
        try:
            alice = await harness.login(target, ALICE, PASSWORDS[ALICE])
            await check_kept(alice, BOB, 'Bobby', ['Friends', 'Work'], 'Alice Liddell',
                             'tea@party.example')
            await alice.close()
            bob = await harness.login(target, BOB, PASSWORDS[BOB])
            assert 'archived hello' in await mam_bodies(bob)
            await bob.close()
            again = ET.parse(export_file(target, 'again.xml')).getroot()
            users = sorted(u.get('name') for u in again.iter(q(NS_PIE, 'user')))
            assert users == ['alice', 'bob', 'carol'], users
        finally:
            target.stop()
    finally:
        database.cleanup()


def test_bad_files_refused():
    """A file that is not XEP-0227, or bad in it, is an error, not a crash."""
    head = "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>"
    bad = {
        'dtd.xml': "<!DOCTYPE x [<!ENTITY a 'aaaa'>]>" + head + '</host></server-data>',
        'truncated.xml': head + "<user name='eve' password='x'>",
        'other-root.xml': "<store-dump xmlns='urn:xmpp:vestnik:store-dump:0'/>",
        'scram.xml': head + "<user name='eve'><scram-credentials xmlns='urn:xmpp:pie:0#scram' "
                     "mechanism='SCRAM-SHA-1'><iter-count>0</iter-count><salt>!!</salt>"
                     "</scram-credentials></user></host></server-data>",
        'nothing.xml': head + "<user name='eve'/></host></server-data>",
        'include.xml': head.replace('<host', "<xi:include xmlns:xi='http://www.w3.org/2001/"
                                    "XInclude' href='missing.xml'/><host") + '</host></server-data>',
    }
    target = Server()
    for name, text in bad.items():
        path = os.path.join(target.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        result = target.ctl_run('import', '--format', 'xep0227', path, check=False)
        assert result.returncode == 1 and result.stderr, (name, result)
    result = target.ctl_run('listusers', check=False)
    assert 'eve' not in result.stdout, result


async def test_foreign_archive():
    """Another server's MAM archive: times kept, its ids for the archive gone."""
    path = os.path.join(source.dir, 'foreign.xml')
    with open(path, 'w') as f:
        f.write("<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>"
                "<user name='dave' password='dave pw'><archive xmlns='urn:xmpp:pie:0#mam'>"
                "<result xmlns='urn:xmpp:mam:2' id='5d41402a'>"
                "<forwarded xmlns='urn:xmpp:forward:0'>"
                "<delay xmlns='urn:xmpp:delay' stamp='2024-02-29T12:34:56.789Z'/>"
                "<message xmlns='jabber:client' from='eve@elsewhere.example/phone' "
                "to='dave@localhost' type='chat'><body>from the old server</body>"
                "<stanza-id xmlns='urn:xmpp:sid:0' by='dave@localhost' id='5d41402a'/>"
                "<stanza-id xmlns='urn:xmpp:sid:0' by='eve@elsewhere.example' id='keep'/>"
                "</message></forwarded></result></archive></user></host></server-data>")
    target = fresh_server(path)
    try:
        dave = await harness.login(target, 'dave@localhost', 'dave pw')
        results = asyncio.Queue()
        dave.register_handler(Callback(
            'MAM result', MatchXPath('{%s}message/{%s}result' % (NS_CLIENT, NS_MAM)),
            results.put_nowait))
        await iq_set(dave, ET.Element(q(NS_MAM, 'query'), queryid='old'))
        result = results.get_nowait().xml.find(q(NS_MAM, 'result'))
        assert result.get('id') != '5d41402a', harness.tostring(result)
        forwarded = result.find(q(NS_FORWARD, 'forwarded'))
        assert forwarded.find(q(NS_DELAY, 'delay')).get('stamp').startswith(
            '2024-02-29T12:34:56.789'), harness.tostring(result)
        message = forwarded.find(q(NS_CLIENT, 'message'))
        assert message.findtext(q(NS_CLIENT, 'body')) == 'from the old server'
        ids = {(e.get('by'), e.get('id'))
               for e in message.findall(q('urn:xmpp:sid:0', 'stanza-id'))}
        assert ('dave@localhost', '5d41402a') not in ids, ids
        assert ('eve@elsewhere.example', 'keep') in ids, ids
        assert results.empty()
        await dave.close()
    finally:
        target.stop()


def test_unknown_host_refused():
    path = os.path.join(source.dir, 'elsewhere.xml')
    with open(path, 'w') as f:
        f.write("<server-data xmlns='urn:xmpp:pie:0'><host jid='elsewhere.example'>"
                "<user name='eve' password='x'/></host></server-data>")
    target = Server()
    result = target.ctl_run('import', '--format', 'xep0227', path, check=False)
    assert result.returncode == 1 and 'elsewhere.example' in result.stderr, result
    result = target.ctl_run('import', '--format', 'dunno', path, check=False)
    assert result.returncode == 2, result


def peer_missing(peer_class):
    """Why the peer cannot run here (None if it can); raises when required."""
    why = peer_class.missing()
    if why and required():
        raise AssertionError('%s is not installed, and VN_REQUIRE_PEERS=1' % why)
    return why


class ProsodyXep0227(peers.Prosody):
    """Prosody keeping everything in XEP-0227 files, one per user."""

    def _write_files(self):
        super()._write_files()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('authentication = "internal_hashed"',
                            'authentication = "internal_hashed"\nstorage = "xep0227"')
        text = text.replace('"roster"; ', '"roster"; "vcard"; "private"; ')
        with open(self.config_path, 'w') as f:
            f.write(text)


async def test_from_prosody():
    if peer_missing(ProsodyXep0227):
        print('# SKIP prosody is not installed')
        return
    users = {'juliet': 'romeo, romeo', 'nurse': 'the nurse'}
    prosody = ProsodyXep0227(domain='prosody.localhost', address='127.0.0.1')
    prosody.s2s_port = prosody._free_port()  # unused; leaves port 5269 alone
    with prosody:
        for user, password in users.items():
            prosody.register(user, password)
        juliet = await harness.Client('juliet@' + prosody.domain, users['juliet']).login(prosody)
        await fill_in(juliet, 'nurse@' + prosody.domain, 'Nurse', ['Capulets'], 'Juliet Capulet',
                      'balcony@verona.example')
        await juliet.close()
        files = sorted(glob.glob(os.path.join(prosody.data_dir, '*.xml')))
        copies = []
        for path in files:
            copy = os.path.join(source.dir, os.path.basename(path))
            shutil.copy(path, copy)
            copies.append(copy)
    assert [os.path.basename(p) for p in copies] == \
        ['juliet@prosody.localhost.xml', 'nurse@prosody.localhost.xml'], copies

    target = fresh_server(*copies, extra_hosts=['prosody.localhost'])
    try:
        for mechanism in ('SCRAM-SHA-1', 'PLAIN'):
            client = await harness.login(target, 'nurse@prosody.localhost', users['nurse'],
                                         mechanism=mechanism)
            await client.close()
        juliet = await harness.login(target, 'juliet@prosody.localhost', users['juliet'],
                                     mechanism='SCRAM-SHA-1')
        await check_kept(juliet, 'nurse@prosody.localhost', 'Nurse', ['Capulets'],
                         'Juliet Capulet', 'balcony@verona.example')
        await juliet.close()
    finally:
        target.stop()


async def test_to_prosody():
    """vestnik's export read by Prosody: its users log in there."""
    if peer_missing(ProsodyXep0227):
        print('# SKIP prosody is not installed')
        return
    assert exported, 'test_vestnik_round_trip exported nothing'
    prosody = ProsodyXep0227(domain=harness.DOMAIN, address='127.0.0.1')
    prosody.s2s_port = prosody._free_port()
    with prosody:
        # Prosody keeps a file per user: the export's users, one a file
        ET.register_namespace('', NS_PIE)
        tree = ET.parse(exported[0]).getroot()
        for host in tree.findall(q(NS_PIE, 'host')):
            for user in host.findall(q(NS_PIE, 'user')):
                one = ET.Element(q(NS_PIE, 'server-data'))
                ET.SubElement(one, q(NS_PIE, 'host'), jid=host.get('jid')).append(user)
                path = os.path.join(prosody.data_dir, '%s@%s.xml' % (user.get('name'),
                                                                    host.get('jid')))
                ET.ElementTree(one).write(path, encoding='utf-8')
                shutil.chown(path, prosody.user, prosody.user)
        alice = await harness.Client(ALICE, PASSWORDS[ALICE]).login(prosody)
        await check_kept(alice, BOB, 'Bobby', ['Friends', 'Work'], 'Alice Liddell',
                         'tea@party.example')
        await alice.close()
        bob = await harness.Client(BOB, PASSWORDS[BOB]).login(prosody)
        await bob.close()


class EjabberdPie(peers.Ejabberd):
    """ejabberd with SCRAM-SHA-256 credentials, vCards and offline storage."""

    def _write_files(self):
        super()._write_files()
        with open(self.config_path, 'a') as f:
            f.write('  mod_vcard: {}\n  mod_offline: {}\n  mod_private: {}\n'
                    '  mod_admin_extra: {}\n'
                    'auth_password_format: scram\nauth_scram_hash: sha256\n')


async def test_from_ejabberd():
    if peer_missing(EjabberdPie):
        print('# SKIP ejabberd is not installed')
        return
    domain = 'ejabberd.localhost'
    ejabberd = EjabberdPie(domain=domain, address='127.0.0.1')
    ejabberd.s2s_port = ejabberd._free_port()  # unused; leaves port 5269 alone
    with peers.system_service_paused(EjabberdPie), ejabberd:
        ejabberd.register('romeo', 'wherefore art thou')
        ejabberd.register('tybalt', 'prince of cats')
        ejabberd.ctl('add_rosteritem', 'romeo', domain, 'tybalt', domain, 'Tybalt',
                     'Capulets', 'both')
        ejabberd.ctl('set_vcard', 'romeo', domain, 'FN', 'Romeo Montague')
        ejabberd.ctl('send_message', 'chat', 'tybalt@' + domain, 'romeo@' + domain, '',
                     'a plague on both your houses')
        out = os.path.join(ejabberd.dir, 'pie')
        os.mkdir(out)
        shutil.chown(out, ejabberd.user, ejabberd.user)
        ejabberd.ctl('export_piefxis', out)
        copy = os.path.join(source.dir, 'ejabberd-pie')
        shutil.copytree(out, copy)
    mains = [p for p in glob.glob(os.path.join(copy, '*.xml'))
             if 'xi:include' in open(p).read()]
    assert len(mains) == 1, os.listdir(copy)

    target = fresh_server(mains[0], extra_hosts=[domain])
    try:
        romeo = await harness.login(target, 'romeo@' + domain, 'wherefore art thou')
        roster = await iq_get(romeo, ET.Element(q(NS_ROSTER, 'query')))
        items = {i.get('jid'): i for i in roster.xml.iter(q(NS_ROSTER, 'item'))}
        tybalt = items.get('tybalt@' + domain)
        assert tybalt is not None and tybalt.get('subscription') == 'both', \
            harness.tostring(roster.xml)
        assert [g.text for g in tybalt.findall(q(NS_ROSTER, 'group'))] == ['Capulets']
        card = await iq_get(romeo, ET.Element(q(NS_VCARD, 'vCard')), to=romeo.boundjid.bare)
        assert 'Romeo Montague' in harness.tostring(card.xml), harness.tostring(card.xml)
        romeo.send_presence()
        msg = await asyncio.wait_for(romeo.messages.get(), 5)
        assert msg['body'] == 'a plague on both your houses', msg
        await romeo.close()
        tybalt = await harness.login(target, 'tybalt@' + domain, 'prince of cats')
        await tybalt.close()
    finally:
        target.stop()


if __name__ == '__main__':
    sys.exit(harness.run([test_vestnik_round_trip, test_into_postgresql, test_foreign_archive,
                          test_bad_files_refused,
                          test_unknown_host_refused, test_from_prosody, test_to_prosody,
                          test_from_ejabberd],
                         server=source, setup=setup, timeout=180))
