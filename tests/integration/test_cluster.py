#!/usr/bin/env python3
"""test_cluster.py - three vestnikd nodes routing through a real NATS.

One PostgreSQL (pg.py) holds the store of all three nodes, one
nats-server (nats.py) carries what they say to each other, and real
slixmpp clients log in to different nodes:

 - chat both ways between users on two nodes, and
   `vestnikctl cluster status` lists the other nodes and their sessions,
   /metrics counts the sessions, nodes and stanzas forwarded;
 - presence: a contact's availability and its end reach a user on another
   node, and a user logging in learns a contact's presence from the
   contact's node (probes answered across nodes);
 - a message to a bare JID whose resources are on two nodes goes to the
   highest priority only, and a headline to both;
 - a message to a user who is offline is stored, delivered when the user
   logs in on another node, and found in that user's archive (MAM);
 - kill -9 of a node: within node_timeout_ms the others drop its sessions,
   its user's contacts get unavailable presence, and a message to its
   user's full JID goes to offline storage, delivered at the next login.

Skips without PostgreSQL or nats-server, fails then with VN_REQUIRE_PEERS=1.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import harness
import nats
import pg

PASSWORD = 'cluster-secret'
HEARTBEAT_MS = 200
NODE_TIMEOUT_MS = 1500

database = None
broker = None
nodes = {}


def jid(user, resource=None):
    return '%s@%s%s' % (user, harness.DOMAIN, '/' + resource if resource else '')


class Node(harness.Server):
    """A vestnikd of the cluster: shared PostgreSQL store, NATS."""

    def __init__(self, node_id):
        self.node_id = node_id
        self.http_port = harness.free_ports(1)[0]
        super().__init__(limits_options={'stanza_rate': 0})

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        with open(self.config_path, 'w') as f:
            f.write(text.replace('c2s:\n', '  - type: http\n    address: 127.0.0.1\n'
                                 '    port: %d\nc2s:\n' % self.http_port, 1))
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n  presence:\n  offline:\n  mam:\n  carbons:\n')
            f.write('store:\n  backend: postgresql\n  postgresql:\n    conninfo: "%s"\n'
                    % database.conninfo.replace('"', '\\"'))
            f.write('http:\n  metrics: true\n')
            f.write('cluster:\n  enabled: true\n  node_id: %s\n  nats_url: "%s"\n'
                    '  heartbeat_ms: %d\n  node_timeout_ms: %d\n'
                    % (self.node_id, broker.url, HEARTBEAT_MS, NODE_TIMEOUT_MS))

    def metrics(self):
        """/metrics, as {name (with labels): value}."""
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % self.http_port,
                                    timeout=10) as reply:
            assert reply.headers['Content-Type'].startswith('text/plain; version=0.0.4')
            text = reply.read().decode()
        return {line.rsplit(' ', 1)[0]: float(line.rsplit(' ', 1)[1])
                for line in text.splitlines() if line and not line.startswith('#')}

    def cluster_status(self):
        result = subprocess.run([self.ctl, '-c', self.config_path, 'cluster', 'status'],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


class Client(harness.Client):
    """Presence arrives in a queue too; subscriptions are approved."""

    def __init__(self, full_jid, priority=0):
        super().__init__(full_jid, PASSWORD)
        self.priority = priority
        self.presences = asyncio.Queue()
        self.add_event_handler('presence', self.presences.put_nowait)
        self.add_event_handler('session_start', self._announce)

    def _announce(self, _event):
        self.send_presence(ppriority=self.priority)

    async def next_message(self, timeout=8, body=None):
        while True:
            msg = await asyncio.wait_for(self.messages.get(), timeout)
            if msg['type'] != 'error' and (body is None or msg['body'] == body):
                return msg

    async def presence_from(self, full, ptype=None, timeout=8, status=None):
        """The next presence from full of type ptype ('available' for none)
        (with that status if given)."""
        while True:
            p = await asyncio.wait_for(self.presences.get(), timeout)
            if (str(p['from']) == full and p['type'] == (ptype or 'available')
                    and (status is None or p['status'] == status)):
                return p

    async def no_message(self, wait=1.5):
        try:
            msg = await asyncio.wait_for(self.next_message(timeout=wait), wait + 0.5)
        except asyncio.TimeoutError:
            return
        raise AssertionError('unexpected message: %s' % msg)


async def online(node, full, priority=0):
    client = Client(full, priority)
    await client.login(node)
    await asyncio.sleep(0.3)  # its initial presence is announced to the other nodes
    return client


async def subscribe(client, user, contact, contact_user, contact_resource):
    """client subscribes to contact's presence, approved by hand once the
    request is in the store: a node reads what another wrote within
    store.postgresql.snapshot_max_age_ms, and the approval of a request it
    cannot see yet is ignored (RFC 6121 §3.1.4, §3.1.5), which slixmpp's
    instant auto-approval would race."""
    for c in (client, contact):
        c.auto_authorize = None
        c.auto_subscribe = False
    client.send_presence(pto=jid(contact_user), ptype='subscribe')
    await contact.presence_from(jid(user), 'subscribe')
    await asyncio.sleep(0.6)
    contact.send_presence(pto=jid(user), ptype='subscribed')
    await client.presence_from(jid(contact_user, contact_resource))
    await asyncio.sleep(0.6)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError('not within %.1f s: %s' % (timeout, what))


async def test_chat_both_ways():
    alice = await online(nodes['a'], jid('alice', 'home'))
    bob = await online(nodes['b'], jid('bob', 'phone'))
    status = nodes['a'].cluster_status()
    assert 'node b alive sessions 1' in status, status
    assert 'node c alive' in status, status
    for i in range(5):
        alice.send_message(mto=jid('bob', 'phone'), mbody='a->b %d' % i, mtype='chat')
        bob.send_message(mto=jid('alice', 'home'), mbody='b->a %d' % i, mtype='chat')
    before = nodes['a'].metrics()
    for i in range(5):  # in order, each way
        got = await bob.next_message()
        assert got['body'] == 'a->b %d' % i and str(got['from']) == jid('alice', 'home'), got
        got = await alice.next_message()
        assert got['body'] == 'b->a %d' % i and str(got['from']) == jid('bob', 'phone'), got
    after = nodes['a'].metrics()
    assert after['vestnik_cluster_nats_connected'] == 1 and after['vestnik_cluster_nodes'] == 2
    assert after['vestnik_sessions'] == 1 and after['vestnik_cluster_remote_sessions'] == 1, after
    out = 'vestnik_cluster_forwarded_total{direction="out"}'
    assert after[out] - before[out] >= 5, (before, after)
    # A bare JID held only on the other node.
    alice.send_message(mto=jid('bob'), mbody='to your bare JID', mtype='chat')
    await bob.next_message(body='to your bare JID')
    await alice.close()
    await bob.close()


async def test_presence_across_nodes():
    carol = await online(nodes['a'], jid('carol', 'desk'))
    dave = await online(nodes['b'], jid('dave', 'laptop'))
    await subscribe(carol, 'carol', dave, 'dave', 'laptop')
    await subscribe(dave, 'dave', carol, 'carol', 'desk')
    dave.send_presence(pstatus='on the road', ppriority=1)
    await carol.presence_from(jid('dave', 'laptop'), status='on the road')
    carol.send_presence(pstatus='at my desk')
    await dave.presence_from(jid('carol', 'desk'), status='at my desk')
    await dave.close()
    await carol.presence_from(jid('dave', 'laptop'), 'unavailable')
    await carol.close()
    # Logging in on a third node, carol learns the presence of dave, online
    # on another: her probe is answered by dave's node.
    dave = Client(jid('dave', 'laptop'))
    dave.add_event_handler('session_start', lambda _: dave.send_presence(pstatus='back'))
    await dave.login(nodes['b'])
    await asyncio.sleep(0.5)
    carol = await online(nodes['c'], jid('carol', 'desk'))
    await carol.presence_from(jid('dave', 'laptop'), status='back')
    await carol.close()
    await dave.close()


async def test_bare_jid_on_two_nodes():
    low = await online(nodes['a'], jid('erin', 'low'), priority=5)
    high = await online(nodes['b'], jid('erin', 'high'), priority=10)
    frank = await online(nodes['c'], jid('frank', 'x'))
    frank.send_message(mto=jid('erin'), mbody='the highest priority only', mtype='chat')
    await high.next_message(body='the highest priority only')
    await low.no_message()
    frank.send_message(mto=jid('erin'), mbody='news for all', mtype='headline')
    await high.next_message(body='news for all')
    await low.next_message(body='news for all')
    # The full JID of the resource that is not chosen still reaches it.
    frank.send_message(mto=jid('erin', 'low'), mbody='just you', mtype='chat')
    await low.next_message(body='just you')
    for c in (low, high, frank):
        await c.close()


async def test_offline_then_login_on_another_node_and_mam():
    gina = await online(nodes['a'], jid('gina', 'g'))
    gina.send_message(mto=jid('hank'), mbody='while you were away', mtype='chat')
    await asyncio.sleep(1)
    hank = Client(jid('hank', 'h'))
    hank.register_plugin('xep_0313')
    await hank.login(nodes['b'])
    got = await hank.next_message(body='while you were away')
    assert str(got['from']).startswith(jid('gina')), got
    found = []
    async for result in hank['xep_0313'].iterate(with_jid=jid('gina'), total=20):
        found.append(result['mam_result']['forwarded']['stanza']['body'])
    assert 'while you were away' in found, found
    await gina.close()
    await hank.close()


async def test_kill9_of_a_node():
    ivan = await online(nodes['a'], jid('ivan', 'i'))
    judy = await online(nodes['c'], jid('judy', 'j'))
    await subscribe(ivan, 'ivan', judy, 'judy', 'j')
    assert 'sessions 1' in nodes['a'].cluster_status()
    killed = time.monotonic()
    nodes['c'].kill9()
    judy.abort()
    await ivan.presence_from(jid('judy', 'j'), 'unavailable', timeout=NODE_TIMEOUT_MS / 1000 + 5)
    noticed = time.monotonic() - killed
    assert noticed < NODE_TIMEOUT_MS / 1000 + 3, noticed
    for name in ('a', 'b'):  # each sweeps at its own heartbeat
        wait_until(lambda: 'node c ' not in nodes[name].cluster_status(),
                   2 * HEARTBEAT_MS / 1000 + 1, 'node %s forgets node c' % name)
    # Its user's full JID is gone from routing: offline storage.
    ivan.send_message(mto=jid('judy', 'j'), mbody='are you there?', mtype='chat')
    await asyncio.sleep(1)
    judy = Client(jid('judy', 'j2'))
    await judy.login(nodes['b'])
    await judy.next_message(body='are you there?')
    await ivan.close()
    await judy.close()
    print('# node loss noticed after %.2f s (node_timeout_ms %d)' % (noticed, NODE_TIMEOUT_MS))


async def test_deleted_account_is_closed_on_every_node():
    nodes['a'].adduser(jid('mallory'), PASSWORD)
    await asyncio.sleep(1)  # node b's snapshot of the store renews
    mallory = await online(nodes['b'], jid('mallory', 'm'))
    result = subprocess.run([nodes['a'].ctl, '-c', nodes['a'].config_path, 'deluser',
                             jid('mallory')], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    await asyncio.wait_for(mallory.disconnected_event.wait(), 10)
    assert mallory.stream_errors, 'closed without a stream error'


async def test_nodes_stop_cleanly():
    """A node holding the others' sessions stops (and frees them), then
    the other node drops at once what it held of the stopped one."""
    on_b = await online(nodes['b'], jid('alice', 'last'))
    on_a = await online(nodes['a'], jid('bob', 'last'))
    assert 'node b alive sessions 1' in nodes['a'].cluster_status()
    nodes['a'].stop()
    wait_until(lambda: 'node a ' not in nodes['b'].cluster_status(),
               NODE_TIMEOUT_MS / 2000, 'node b forgets node a at its goodbye')
    on_a.abort()
    await on_b.close()
    nodes['b'].stop()


def setup():
    for name in ('a', 'b', 'c'):
        nodes[name] = Node(name)
    nodes['a'].start()  # the schema is made once, by the first
    for name in ('b', 'c'):
        nodes[name].start()
    for user in ('alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'hank', 'ivan',
                 'judy'):
        nodes['a'].adduser(jid(user), PASSWORD)
    wait_until(lambda: nodes['a'].cluster_status().count('alive') == 2,
               5, 'node a hears b and c')


def keep_logs():
    """After a failure: the nodes' whole logs, where run-tests leaves them."""
    keep = tempfile.mkdtemp(prefix='vn-cluster-logs-', dir='/tmp')
    for node in nodes.values():
        if os.path.exists(node.log_path):
            shutil.copy(node.log_path, os.path.join(keep, 'node-%s.log' % node.node_id))
    sys.stderr.write('the nodes\' logs are in %s\n' % keep)


def main():
    global database, broker
    reason = pg.missing_reason() or nats.missing_reason()
    if reason:
        print('1..1')
        if pg.required():
            print('not ok 1 - %s (VN_REQUIRE_PEERS=1)' % reason)
            return 1
        print('ok 1 # SKIP %s' % reason)
        return 0
    database = pg.PostgreSQL().start()
    broker = nats.NatsServer().start()
    tests = [test_chat_both_ways, test_presence_across_nodes, test_bare_jid_on_two_nodes,
             test_offline_then_login_on_another_node_and_mam, test_kill9_of_a_node,
             test_deleted_account_is_closed_on_every_node, test_nodes_stop_cleanly]
    try:
        try:
            setup()
        except Exception:
            print('1..1\nnot ok 1 - the cluster did not start')
            for line in __import__('traceback').format_exc().splitlines():
                print('# ' + line)
            keep_logs()
            return 1
        harness.run(tests, timeout=90)
    except SystemExit as done:
        if done.code:
            keep_logs()
        raise
    finally:
        for node in nodes.values():
            node.kill9()
        broker.cleanup()
        database.cleanup()


if __name__ == '__main__':
    sys.exit(main())
