#!/usr/bin/env python3
"""test_pep_caps.py - the entity capabilities (XEP-0115) behind PEP notifications.

Real clients' caps (Gajim's disco#info answer and the ver Gajim computed
for it, from the public capsdb collection) verify, are cached, and a
second login or a second account with the same caps costs no disco#info
query. Presence from entities outside the server, sent through an external
component (XEP-0114) that plays a remote domain, is looked at only when
the account's roster lets that contact see its presence; queries the
contact never answers are bounded (pep.caps_max_pending) and expire
(pep.caps_query_timeout); the cache holds pep.caps_cache_size vers.
"""

import hashlib
import time

import harness
from harness import qname

D = harness.DOMAIN
PASSWORD = 'secret-password'
NS_CAPS = 'http://jabber.org/protocol/caps'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_COMPONENT = 'jabber:component:accept'
REMOTE = 'far.localhost'
SECRET = 'far-secret'
MAX_PENDING = 2
QUERY_TIMEOUT = 5
CACHE_SIZE = 3

GAJIM_NODE = 'http://gajim.org'
GAJIM_VER = 'zTcejWPZTB2nfaiquz6lgGoHARY='
GAJIM_IDENTITY = "<identity category='client' name='Gajim' type='pc'/>"
GAJIM_FEATURES = [
    'http://jabber.org/protocol/activity', 'http://jabber.org/protocol/activity+notify',
    'http://jabber.org/protocol/bytestreams', 'http://jabber.org/protocol/chatstates',
    'http://jabber.org/protocol/commands', 'http://jabber.org/protocol/disco#info',
    'http://jabber.org/protocol/geoloc+notify', 'http://jabber.org/protocol/mood',
    'http://jabber.org/protocol/mood+notify', 'http://jabber.org/protocol/muc',
    'http://jabber.org/protocol/muc#admin', 'http://jabber.org/protocol/muc#owner',
    'http://jabber.org/protocol/muc#roomconfig', 'http://jabber.org/protocol/muc#user',
    'http://jabber.org/protocol/nick', 'http://jabber.org/protocol/nick+notify',
    'http://jabber.org/protocol/rosterx', 'http://jabber.org/protocol/si',
    'http://jabber.org/protocol/si/profile/file-transfer', 'http://jabber.org/protocol/tune',
    'http://jabber.org/protocol/tune+notify',
    'http://www.xmpp.org/extensions/xep-0116.html#ns', 'ipv6', 'jabber:iq:gateway',
    'jabber:iq:last', 'jabber:iq:privacy', 'jabber:iq:private', 'jabber:iq:register',
    'jabber:iq:version', 'jabber:x:data', 'jabber:x:encrypted', 'msglog', 'sslc2s',
    'stringprep', 'urn:xmpp:jingle:1', 'urn:xmpp:jingle:apps:rtp:1',
    'urn:xmpp:jingle:apps:rtp:audio', 'urn:xmpp:jingle:apps:rtp:video',
    'urn:xmpp:jingle:transports:ice-udp:1', 'urn:xmpp:ping', 'urn:xmpp:receipts',
    'urn:xmpp:ssn', 'urn:xmpp:time']
GAJIM_ANSWER = GAJIM_IDENTITY + ''.join("<feature var='%s'/>" % f for f in GAJIM_FEATURES)


class Server(harness.Server):
    """Rosters, presence and PEP, and a component standing in for a remote domain."""

    def __init__(self):
        self.component_port = harness.free_ports(1)[0]
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('listeners:\n', 'listeners:\n  - type: component\n'
                            '    address: 127.0.0.1\n    port: %d\n' % self.component_port, 1)
        text += ('  roster:\n  presence:\n  pep:\n'
                 '    caps_max_pending: %d\n    caps_query_timeout: %d\n'
                 '    caps_cache_size: %d\n'
                 'components:\n  - domain: %s\n    secret: %s\n'
                 % (MAX_PENDING, QUERY_TIMEOUT, CACHE_SIZE, REMOTE, SECRET))
        with open(self.config_path, 'w') as f:
            f.write(text)


server = Server()


def setup():
    for user in ('alice', 'bob', 'carol'):
        server.adduser('%s@%s' % (user, D), PASSWORD)


def is_disco_query(elem):
    return (elem.tag.endswith('}iq') and elem.get('type') == 'get'
            and elem.find(qname(NS_DISCO_INFO, 'query')) is not None)


class Client:
    """A raw client stream announcing Gajim's caps and counting disco#info queries."""

    def __init__(self, user, resource):
        self.stream = harness.RawStream(server.c2s_port)
        self.stream.open()
        self.jid = self.stream.login(user, PASSWORD, resource)
        self.disco_queries = []

    def online(self):
        self.stream.send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>"
                         % (NS_CAPS, GAJIM_NODE, GAJIM_VER))
        self.settle()

    def settle(self, rounds=3):
        """Round trips until the server has sent what the presence caused."""
        for n in range(rounds):
            self.stream.send("<iq type='get' id='ping%d' to='%s'><ping xmlns='%s'/></iq>"
                             % (n, D, harness.NS_PING))
            while True:
                elem = self.stream.next_element()
                if is_disco_query(elem):
                    self.answer(elem)
                elif elem.get('id') == 'ping%d' % n:
                    break

    def answer(self, iq):
        self.disco_queries.append(iq)
        node = iq.find(qname(NS_DISCO_INFO, 'query')).get('node')
        self.stream.send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'>%s"
                         "</query></iq>" % (iq.get('id'), iq.get('from'), NS_DISCO_INFO, node,
                                            GAJIM_ANSWER))

    def close(self):
        self.stream.send('</stream:stream>')
        self.stream.close()


def test_real_client_caps_verify_and_are_cached():
    first = Client('alice', 'gajim')
    first.online()
    assert len(first.disco_queries) == 1, first.disco_queries
    assert first.disco_queries[0].find(qname(NS_DISCO_INFO, 'query')).get('node') == \
        '%s#%s' % (GAJIM_NODE, GAJIM_VER)
    first.close()
    assert 'do not hash to their ver' not in server.log_text(), server.log_tail()
    # The next login of the same client, and another account's Gajim: the
    # cache answers, no query goes out.
    again = Client('alice', 'gajim')
    again.online()
    other = Client('bob', 'gajim')
    other.online()
    assert again.disco_queries == [] and other.disco_queries == [], (
        again.disco_queries, other.disco_queries)
    again.close()
    other.close()


# ---- remote entities, through the component

def component():
    stream = harness.RawStream(server.component_port)
    stream.open(to=REMOTE, ns=NS_COMPONENT)
    deadline = time.monotonic() + stream.timeout
    while stream.header is None and not stream.eof:
        stream._read_some(deadline)
    digest = hashlib.sha1((stream.header.get('id') + SECRET).encode()).hexdigest()
    stream.send('<handshake>%s</handshake>' % digest)
    stream.expect(qname(NS_COMPONENT, 'handshake'))
    return stream


def queries_within(stream, seconds):
    """The disco#info queries the component receives within that time."""
    found = []
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return found
        try:
            elem = stream.next_element(remaining)
        except TimeoutError:
            return found
        if is_disco_query(elem):
            found.append(elem)


def remote_presence(stream, user, to, ver):
    stream.send("<presence from='%s@%s/r' to='%s'><c xmlns='%s' hash='sha-1' node='urn:far' "
                "ver='%s'/></presence>" % (user, REMOTE, to, NS_CAPS, ver))


def befriend(account, remote_users, stream):
    """Each remote user subscribes to the account's presence; the account approves."""
    for user in remote_users:
        stream.send("<presence from='%s@%s' to='%s' type='subscribe'/>" % (user, REMOTE, account))
    owner = harness.RawStream(server.c2s_port)
    owner.open()
    owner.login(account.split('@')[0], PASSWORD, 'approver')
    for user in remote_users:
        owner.send("<presence to='%s@%s' type='subscribed'/>" % (user, REMOTE))
    owner.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
    while True:
        elem = owner.next_element()
        if elem.get('id') == 'r1':
            break
    subs = {i.get('jid'): i.get('subscription') for i in elem.iter('{jabber:iq:roster}item')}
    for user in remote_users:
        assert subs.get('%s@%s' % (user, REMOTE)) in ('from', 'both'), subs
    owner.send('</stream:stream>')
    owner.close()


def test_only_contacts_caps_are_looked_at():
    stream = component()
    # A stranger's caps: no query, nothing cached for him.
    remote_presence(stream, 'stranger', 'carol@' + D, 'strangerver0000000000000000=')
    assert queries_within(stream, 1.5) == []
    # The same once carol's roster lets him see her presence.
    befriend('carol@' + D, ['stranger'], stream)
    queries_within(stream, 0.5)  # whatever the subscription caused
    remote_presence(stream, 'stranger', 'carol@' + D, 'strangerver0000000000000000=')
    [query] = queries_within(stream, 3)
    assert query.get('to') == 'stranger@%s/r' % REMOTE and query.get('from') == 'carol@' + D
    stream.send("<iq type='result' id='%s' from='%s' to='%s'><query xmlns='%s'>"
                "<identity category='client' type='pc' name='far'/></query></iq>"
                % (query.get('id'), query.get('to'), query.get('from'), NS_DISCO_INFO))
    stream.close()


def test_unanswered_queries_are_bounded_and_expire():
    stream = component()
    contacts = ['c1', 'c2', 'c3']
    befriend('carol@' + D, contacts, stream)
    queries_within(stream, 0.5)
    for n, user in enumerate(contacts):
        remote_presence(stream, user, 'carol@' + D, 'pendingver%d00000000000000000=' % n)
    asked = queries_within(stream, 2)
    assert len(asked) == MAX_PENDING, [q.get('to') for q in asked]
    # Unanswered, they expire: c3 is asked once its presence comes again.
    time.sleep(QUERY_TIMEOUT + 0.5 - 2)
    remote_presence(stream, 'c3', 'carol@' + D, 'pendingver200000000000000000=')
    [query] = queries_within(stream, 3)
    assert query.get('to') == 'c3@%s/r' % REMOTE, harness.tostring(query)
    stream.close()
    server.assert_running()


def test_cache_keeps_the_most_recently_used():
    # Since Gajim's ver was last used, the tests above brought four other
    # vers (the stranger's, c1 to c3's): with room for three, Gajim's went
    # and is asked again, once.
    client = Client('bob', 'gajim')
    client.online()
    assert len(client.disco_queries) == 1, client.disco_queries
    client.close()
    client = Client('bob', 'gajim')
    client.online()
    assert client.disco_queries == [], client.disco_queries
    client.close()


if __name__ == '__main__':
    harness.run([test_real_client_caps_verify_and_are_cached,
                 test_only_contacts_caps_are_looked_at,
                 test_unanswered_queries_are_bounded_and_expire,
                 test_cache_keeps_the_most_recently_used],
                server=server, setup=setup)
