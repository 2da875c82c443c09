#!/usr/bin/env python3
"""test_store_postgresql.py - a real vestnikd on a real PostgreSQL.

One PostgreSQL server (tests/integration/pg.py: initdb into a temporary
directory, Unix socket only, fsync on) holds the store of vestnikd with
store.backend: postgresql; real clients over sockets do what users do, and
the test looks into the database with psql to see that the data is there
and not in an LMDB directory:

 - accounts made by vestnikctl log in, a roster item is saved;
 - messages to an offline account are delivered from offline storage and
   found in both MAM archives after a restart;
 - a persistent room's messages are in its MUC archive after a restart;
 - kill -9 during a flood with stream management: every acknowledged
   message is there exactly once afterwards;
 - PostgreSQL restarting under a running vestnikd: what needs the store
   fails cleanly meanwhile (no crash, no hang), and vestnikd reconnects;
 - a server on LMDB is exported, imported into a fresh database, and the
   PostgreSQL server then serves its accounts, offline messages and
   archive, with the same MAM ids.

Skips without PostgreSQL, fails then with VN_REQUIRE_PEERS=1.
"""

import os
import subprocess
import sys
import time

import harness
import pg
from harness import NS_CLIENT, qname, tostring

PASSWORD = 'pg-secret'
NS_SM = 'urn:xmpp:sm:3'
NS_MAM = 'urn:xmpp:mam:2'
NS_RSM = 'http://jabber.org/protocol/rsm'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_ROSTER = 'jabber:iq:roster'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_OWNER = 'http://jabber.org/protocol/muc#owner'
NS_DATA = 'jabber:x:data'
MUC = 'conference.' + harness.DOMAIN
PAGE = 500


class Server(harness.Server):
    """The modules users need, on the given store (a config fragment)."""

    def __init__(self, store, **kwargs):
        self.store = store
        super().__init__(limits_options={'stanza_rate': 0}, **kwargs)

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n  presence:\n  offline:\n    max_messages: 20000\n'
                    '  mam:\n    max_page: %d\n  muc:\n' % PAGE)
            f.write(self.store)


def pg_store(conninfo):
    return ('store:\n  backend: postgresql\n  postgresql:\n    conninfo: "%s"\n'
            '    read_timeout_ms: 5000\n' % conninfo.replace('"', '\\"'))


database = None
server = None


def jid(user):
    return '%s@%s' % (user, harness.DOMAIN)


def login(srv, user, resource='r'):
    stream = harness.RawStream(srv.c2s_port, timeout=20)
    stream.open()
    stream.login(user, PASSWORD, resource)
    return stream


def body_of(message):
    body = message.find(qname(NS_CLIENT, 'body'))
    return body.text if body is not None else None


def until_quiet(stream, seconds=3):
    elements = []
    while True:
        try:
            elements.append(stream.next_element(timeout=seconds))
        except TimeoutError:
            return elements


def iq(stream, xml, iq_id):
    stream.send(xml)
    while True:
        elem = stream.next_element(timeout=20)
        if elem.tag == qname(NS_CLIENT, 'iq') and elem.get('id') == iq_id:
            return elem


def mam(stream, to=None, with_jid=None):
    """Every (id, body) of an archive, paged."""
    items = []
    after = ''
    for page in range(100):
        query_id = 'q%d' % page
        form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                "<value>%s</value></field>%s</x>" % (
                    NS_MAM, "<field var='with'><value>%s</value></field>" % with_jid
                    if with_jid else ''))
        stream.send("<iq type='set' id='%s'%s><query xmlns='%s' queryid='%s'>%s"
                    "<set xmlns='%s'><max>%d</max>%s</set></query></iq>"
                    % (query_id, " to='%s'" % to if to else '', NS_MAM, query_id, form, NS_RSM,
                       PAGE, '<after>%s</after>' % after if after else ''))
        while True:
            elem = stream.next_element(timeout=20)
            if elem.tag == qname(NS_CLIENT, 'iq') and elem.get('id') == query_id:
                break
            result = elem.find(qname(NS_MAM, 'result'))
            if result is None or result.get('queryid') != query_id:
                continue  # presence of a room, for instance
            forwarded = result.find(qname(NS_FORWARD, 'forwarded'))
            items.append((result.get('id'), body_of(forwarded.find(qname(NS_CLIENT, 'message')))))
        assert elem.get('type') == 'result', tostring(elem)
        fin = elem.find(qname(NS_MAM, 'fin'))
        if fin.get('complete') == 'true':
            return items
        after = fin.find('%s/%s' % (qname(NS_RSM, 'set'), qname(NS_RSM, 'last'))).text
    raise AssertionError('the archive did not end')


def send_chats(stream, to, prefix, n):
    stream.send(''.join("<message to='%s' type='chat' id='%s%d'><body>%s %d</body></message>"
                        % (to, prefix, i, prefix, i) for i in range(n)))


def setup():
    for user in ('alice', 'bob', 'carol', 'dave', 'erin', 'frank'):
        server.adduser(jid(user), PASSWORD)


def psql(statement, db='vestnik'):
    return database.sql(statement, database=db).strip()


# ---------------------------------------------------------------- tests

def test_accounts_and_roster_are_rows_in_postgresql():
    assert not os.path.exists(os.path.join(server.data_dir, 'store')), 'an LMDB store was made'
    assert psql("SELECT count(*) FROM vn_docs WHERE store = 'accounts'") == '6'
    assert psql('SELECT max(version) FROM vn_schema_migrations') == '1'
    stream = login(server, 'alice')
    reply = iq(stream, "<iq type='set' id='r1'><query xmlns='%s'><item jid='%s' name='Bob'/>"
               "</query></iq>" % (NS_ROSTER, jid('bob')), 'r1')
    assert reply.get('type') == 'result', tostring(reply)
    stream.close()
    rows = psql("SELECT count(*) FROM vn_docs WHERE username = 'alice' AND store <> 'accounts'")
    assert int(rows) >= 1, rows
    stream = login(server, 'alice', 'again')
    reply = iq(stream, "<iq type='get' id='r2'><query xmlns='%s'/></iq>" % NS_ROSTER, 'r2')
    items = reply.findall('%s/%s' % (qname(NS_ROSTER, 'query'), qname(NS_ROSTER, 'item')))
    assert [i.get('jid') for i in items] == [jid('bob')], tostring(reply)
    stream.close()


def test_offline_and_mam_survive_a_restart():
    alice = login(server, 'alice', 'send')
    send_chats(alice, jid('bob'), 'offline', 20)
    until_quiet(alice, 1)
    alice.close()
    server.restart()
    bob = login(server, 'bob')
    bob.send('<presence/>')
    got = [body_of(e) for e in until_quiet(bob) if e.tag == qname(NS_CLIENT, 'message')]
    assert got == ['offline %d' % i for i in range(20)], got
    archived = mam(bob, with_jid=jid('alice'))
    assert [b for _, b in archived] == ['offline %d' % i for i in range(20)], archived
    bob.close()
    alice = login(server, 'alice', 'read')
    assert [b for _, b in mam(alice, with_jid=jid('bob'))] == ['offline %d' % i
                                                               for i in range(20)]
    alice.close()
    assert psql("SELECT count(*) FROM vn_items WHERE username IN ('alice', 'bob')"
                " AND archive <> 'offline'") == '40'


def test_muc_archive_survives_a_restart():
    room = 'pgroom@' + MUC
    carol = login(server, 'carol')
    carol.send("<presence to='%s/carol'><x xmlns='%s'/></presence>" % (room, NS_MUC))
    until_quiet(carol, 1)
    config = iq(carol, "<iq type='set' id='c1' to='%s'><query xmlns='%s'>"
                "<x xmlns='%s' type='submit'><field var='FORM_TYPE'>"
                "<value>http://jabber.org/protocol/muc#roomconfig</value></field>"
                "<field var='muc#roomconfig_persistentroom'><value>1</value></field>"
                "</x></query></iq>" % (room, NS_MUC_OWNER, NS_DATA), 'c1')
    assert config.get('type') == 'result', tostring(config)
    carol.send(''.join("<message to='%s' type='groupchat'><body>room %d</body></message>"
                       % (room, i) for i in range(5)))
    until_quiet(carol, 1)
    carol.close()
    server.restart()
    dave = login(server, 'dave')
    dave.send("<presence to='%s/dave'><x xmlns='%s'/></presence>" % (room, NS_MUC))
    until_quiet(dave, 1)
    archived = mam(dave, to=room)
    assert [b for _, b in archived] == ['room %d' % i for i in range(5)], archived
    dave.close()


def flood_until_killed(stream, to, total, batch, in_flight, kill_after):
    sent = acked = 0
    while sent < total:
        stream.send(''.join("<message to='%s' type='chat' id='f%d'><body>flood %d</body>"
                            "</message>" % (to, i, i) for i in range(sent, sent + batch))
                    + "<r xmlns='%s'/>" % NS_SM)
        sent += batch
        while sent - acked > in_flight:
            elem = stream.next_element(timeout=30)
            if elem.tag == qname(NS_SM, 'a'):
                acked = max(acked, int(elem.get('h')))
        if acked >= kill_after:
            server.kill9()
            break
    stream.sock.settimeout(2)
    while not stream.eof:
        try:
            stream._read_some(time.monotonic() + 2)
        except (TimeoutError, OSError):
            break
    for elem in stream.elements:
        if elem.tag == qname(NS_SM, 'a'):
            acked = max(acked, int(elem.get('h')))
    stream.close()
    return sent, acked


def test_acknowledged_messages_survive_kill9():
    erin = login(server, 'erin')
    erin.send("<enable xmlns='%s'/>" % NS_SM)
    erin.expect(qname(NS_SM, 'enabled'))
    sent, acked = flood_until_killed(erin, jid('frank'), 20000, 100, 1500, 3000)
    assert acked >= 3000, acked
    print('# %d sent, %d acknowledged when vestnikd was killed' % (sent, acked))
    server.start()
    frank = login(server, 'frank')
    frank.send('<presence/>')
    got = [body_of(e) for e in until_quiet(frank) if e.tag == qname(NS_CLIENT, 'message')]
    archived = [b for _, b in mam(frank, with_jid=jid('erin'))]
    frank.close()
    for where, bodies in (('offline', got), ('archive', archived)):
        assert len(bodies) == len(set(bodies)), '%s: duplicates' % where
        missing = [i for i in range(acked) if 'flood %d' % i not in set(bodies)]
        assert not missing, '%s: %d acknowledged lost, first %s' % (where, len(missing),
                                                                    missing[:5])


def failed_condition(failure):
    return ','.join(c.tag.split('}')[1] for c in failure)


def test_postgresql_restart_under_a_running_server():
    alice = login(server, 'alice', 'before')
    database.stop()
    # Past snapshot_max_age_ms, when vestnikd has found its snapshot gone
    # (until then it may answer from it: what it read at most that long ago).
    time.sleep(1)
    # A login needs the account's credentials: refused, not hung.
    failed = harness.RawStream(server.c2s_port, timeout=20)
    failed.open()
    failed.starttls()
    failed.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (
        harness.NS_SASL, harness.b64(b'\0bob\0' + PASSWORD.encode())))
    answer = failed.next_element(timeout=20)
    assert answer.tag == qname(harness.NS_SASL, 'failure'), tostring(answer)
    print('# login with the database down: %s' % failed_condition(answer))
    failed.close()
    server.assert_running()
    alice.close()
    database.start()
    bob = login(server, 'bob', 'after')
    bob.send("<message to='%s' type='chat'><body>after the restart</body></message>"
             % jid('carol'))
    until_quiet(bob, 1)
    bob.close()
    carol = login(server, 'carol', 'after')
    carol.send('<presence/>')
    got = [body_of(e) for e in until_quiet(carol) if e.tag == qname(NS_CLIENT, 'message')]
    assert 'after the restart' in got, got
    carol.close()


def test_import_from_lmdb_then_serve():
    lmdb = Server('')
    lmdb.start()
    try:
        for user in ('gina', 'hank'):
            lmdb.adduser(jid(user), PASSWORD)
        gina = login(lmdb, 'gina')
        send_chats(gina, jid('hank'), 'moved', 7)
        until_quiet(gina, 1)
        lmdb_ids = mam(gina, with_jid=jid('hank'))
        gina.close()
        lmdb.stop()
    finally:
        lmdb.kill9()
    assert len(lmdb_ids) == 7, lmdb_ids
    dump = os.path.join(lmdb.dir, 'store.xml')
    result = subprocess.run([lmdb.ctl, '-c', lmdb.config_path, 'export', dump],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    psql('CREATE DATABASE moved', db='postgres')
    target = Server(pg_store(database.conninfo.replace('dbname=vestnik', 'dbname=moved')))
    for args in (['migrate'], ['import', dump]):
        result = subprocess.run([target.ctl, '-c', target.config_path] + args,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    # Once more into the same database: the archives are refused.
    again = subprocess.run([target.ctl, '-c', target.config_path, 'import', dump],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and 'not empty' in again.stderr, again.stderr

    target.start()
    try:
        hank = login(target, 'hank')
        hank.send('<presence/>')
        got = [body_of(e) for e in until_quiet(hank) if e.tag == qname(NS_CLIENT, 'message')]
        assert got == ['moved %d' % i for i in range(7)], got
        hank.close()
        gina = login(target, 'gina')
        assert mam(gina, with_jid=jid('hank')) == lmdb_ids
        send_chats(gina, jid('hank'), 'after', 1)
        until_quiet(gina, 1)
        after = mam(gina, with_jid=jid('hank'))
        assert after[:7] == lmdb_ids and len(after) == 8
        assert int(after[7][0]) > int(lmdb_ids[-1][0]), after
        gina.close()
        target.stop()
    finally:
        target.kill9()


def main():
    global database, server
    reason = pg.missing_reason()
    if reason:
        print('1..1')
        if pg.required():
            print('not ok 1 - %s (VN_REQUIRE_PEERS=1)' % reason)
            return 1
        print('ok 1 # SKIP %s' % reason)
        return 0
    database = pg.PostgreSQL().start()
    try:
        server = Server(pg_store(database.conninfo))
        harness.run([test_accounts_and_roster_are_rows_in_postgresql,
                     test_offline_and_mam_survive_a_restart,
                     test_muc_archive_survives_a_restart,
                     test_acknowledged_messages_survive_kill9,
                     test_postgresql_restart_under_a_running_server,
                     test_import_from_lmdb_then_serve],
                    server=server, setup=setup, timeout=240)
    finally:
        database.cleanup()


if __name__ == '__main__':
    sys.exit(main())
