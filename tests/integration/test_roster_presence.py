#!/usr/bin/env python3
"""test_roster_presence.py - RFC 6121 rosters, subscriptions and presence.

Most tests drive raw client streams (harness.RawStream), so they see
exactly which stanzas arrive and with which attributes: roster get, set
and remove with pushes and versioning, the subscription flow both ways,
requests redelivered while unanswered, pre-approval, presence fan-out over
three accounts and several resources, unavailable presence when a socket
dies, directed presence, negative priority, and the error cases. One test
runs slixmpp's own roster and presence handling against the server.
"""

import asyncio

import harness

D = harness.DOMAIN
PASSWORD = 'secret-password'
MAX_ITEMS = 5
MAX_DIRECTED = 2
NS_ROSTER = 'jabber:iq:roster'
IQ = harness.qname(harness.NS_CLIENT, 'iq')
PRESENCE = harness.qname(harness.NS_CLIENT, 'presence')
MESSAGE = harness.qname(harness.NS_CLIENT, 'message')
QUERY = harness.qname(NS_ROSTER, 'query')
ITEM = harness.qname(NS_ROSTER, 'item')
GROUP = harness.qname(NS_ROSTER, 'group')
ACCOUNTS = ['ra', 'rerr', 'sa', 'sb', 'pa', 'pb', 'qa', 'qb', 'fa', 'fb', 'fc', 'ua', 'ub',
            'da', 'db', 'na', 'nb', 'xa', 'xb', 'ma', 'mb']


class Server(harness.Server):
    """The harness server with the roster and presence modules loaded."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n    max_items: %d\n  presence:\n    max_directed: %d\n' %
                    (MAX_ITEMS, MAX_DIRECTED))


server = Server()


def setup():
    for user in ACCOUNTS:
        server.adduser('%s@%s' % (user, D), PASSWORD)


def bare(user):
    return '%s@%s' % (user, D)


class Conn:
    """One bound resource on a raw stream. Elements a test did not ask for
    yet wait in a backlog, so interleaved pushes and presence are fine."""

    def __init__(self, user, resource):
        self.stream = harness.RawStream(server.c2s_port)
        self.stream.open()
        self.jid = self.stream.login(user, PASSWORD, resource)
        self.bare = bare(user)
        self.backlog = []
        self.ids = 0

    def send(self, xml):
        self.stream.send(xml)

    def take(self, pred, what, timeout=5):
        for i, elem in enumerate(self.backlog):
            if pred(elem):
                return self.backlog.pop(i)
        try:
            while True:
                elem = self.stream.next_element(timeout)
                if pred(elem):
                    return elem
                self.backlog.append(elem)
        except TimeoutError:
            raise AssertionError('%s: no %s; unclaimed: %s' % (
                self.jid, what, [harness.tostring(e) for e in self.backlog])) from None

    def next_id(self):
        self.ids += 1
        return 'q%d' % self.ids

    def iq(self, type_, payload, to=None):
        """Send an iq and return the reply with the same id."""
        ident = self.next_id()
        to_attr = " to='%s'" % to if to else ''
        self.send("<iq type='%s' id='%s'%s>%s</iq>" % (type_, ident, to_attr, payload))
        return self.take(lambda e: e.tag == IQ and e.get('id') == ident and
                         e.get('type') in ('result', 'error'), 'reply to ' + ident)

    def flush(self):
        """A ping round trip: everything the server sent before is here."""
        reply = self.iq('get', "<ping xmlns='%s'/>" % harness.NS_PING, to=D)
        assert reply.get('type') == 'result', harness.tostring(reply)

    def settle(self):
        self.flush()
        self.backlog.clear()

    def quiet(self):
        """Nothing arrived that the test did not claim."""
        self.flush()
        assert not self.backlog, '%s got unexpected: %s' % (
            self.jid, [harness.tostring(e) for e in self.backlog])

    # ---- roster
    def roster_get(self, ver=None):
        attr = " ver='%s'" % ver if ver is not None else ''
        return self.iq('get', "<query xmlns='%s'%s/>" % (NS_ROSTER, attr))

    def roster_set(self, items_xml, to=None):
        return self.iq('set', "<query xmlns='%s'>%s</query>" % (NS_ROSTER, items_xml), to)

    def push(self):
        elem = self.take(lambda e: e.tag == IQ and e.get('type') == 'set' and
                         e.find(QUERY) is not None, 'roster push')
        assert elem.get('from') == self.bare and elem.get('to') == self.jid, (
            harness.tostring(elem))
        self.send("<iq type='result' id='%s'/>" % elem.get('id'))
        return elem

    # ---- presence
    def presence(self, frm, type_=None):
        return self.take(lambda e: e.tag == PRESENCE and e.get('from') == frm and
                         e.get('type') == type_, 'presence type=%s from %s' % (type_, frm))

    def available(self, extra=''):
        self.send('<presence>%s</presence>' % extra)

    def close(self):
        self.send('</stream:stream>')
        self.stream.close()

    def kill(self):
        """The socket dies without a closing tag."""
        self.stream.close()


XML_LANG = '{http://www.w3.org/XML/1998/namespace}lang'


def attrs(elem):
    """Attributes but xml:lang, which the server adds from the sender's
    stream (RFC 6120 §4.7.4; test_i18n checks it)."""
    return {k: v for k, v in elem.attrib.items() if k != XML_LANG}


def items(reply):
    query = reply.find(QUERY)
    assert query is not None, harness.tostring(reply)
    return [(attrs(i), [g.text or '' for g in i.findall(GROUP)]) for i in query.findall(ITEM)]


def push_item(push, ver=None):
    query = push.find(QUERY)
    assert attrs(query) == ({'ver': ver} if ver is not None else {}), harness.tostring(push)
    [item] = items(push)
    return item


def error_of(reply):
    assert reply.get('type') == 'error', harness.tostring(reply)
    error = reply.find(harness.qname(harness.NS_CLIENT, 'error'))
    conditions = [c.tag.split('}')[1] for c in error
                  if c.tag.startswith('{%s}' % harness.NS_STANZA_ERRORS) and
                  not c.tag.endswith('}text')]
    return error.get('type'), conditions


def item_xml(jid, name=None, groups=(), extra=''):
    name_attr = " name='%s'" % name if name is not None else ''
    inner = ''.join('<group>%s</group>' % g for g in groups)
    return "<item jid='%s'%s%s>%s</item>" % (jid, name_attr, extra, inner)


def subscribe(conn, to, type_='subscribe'):
    conn.send("<presence to='%s' type='%s'/>" % (to, type_))


def sub_item(jid, subscription, **extra):
    d = {'jid': jid, 'subscription': subscription}
    d.update(extra)
    return (d, [])


def go_online(conns, extra=None):
    """Initial presence on every connection; each waits for the presence of
    every resource of its own account, so nothing is still under way."""
    for c in conns:
        c.available((extra or {}).get(c.jid, ''))
    for c in conns:
        for other in conns:
            if other.bare == c.bare:
                c.presence(other.jid)
        c.settle()


def befriend(a, b):
    """Mutual subscription between two online, available resources."""
    subscribe(a, b.bare)
    b.presence(a.bare, 'subscribe')
    subscribe(b, a.bare, 'subscribed')
    a.presence(b.bare, 'subscribed')
    subscribe(b, a.bare)
    a.presence(b.bare, 'subscribe')
    subscribe(a, b.bare, 'subscribed')
    b.presence(a.bare, 'subscribed')
    a.settle()
    b.settle()


# ------------------------------------------------------------------ roster

def test_roster_get_set_remove_pushes_and_versioning():
    one, two, three = Conn('ra', 'one'), Conn('ra', 'two'), Conn('ra', 'three')
    for c in (one, two):
        reply = c.roster_get(ver='')
        assert reply.get('type') == 'result', harness.tostring(reply)
        assert attrs(reply.find(QUERY)) == {'ver': '0'}, harness.tostring(reply)
        assert items(reply) == []

    reply = one.roster_set(item_xml('Friend@localhost', 'Friend', ['Work', 'Близкие']))
    assert reply.get('type') == 'result' and len(reply) == 0, harness.tostring(reply)
    expected = ({'jid': 'friend@localhost', 'name': 'Friend', 'subscription': 'none'},
                ['Work', 'Близкие'])
    for c in (one, two):
        assert push_item(c.push(), ver='1') == expected

    # the client is up to date: an empty result, no query
    reply = two.roster_get(ver='1')
    assert reply.get('type') == 'result' and len(reply) == 0, harness.tostring(reply)
    # an old version gets everything, with the current version
    reply = two.roster_get(ver='0')
    assert attrs(reply.find(QUERY)) == {'ver': '1'} and items(reply) == [expected]
    # without versioning, no ver at all
    reply = three.roster_get()
    assert attrs(reply.find(QUERY)) == {} and items(reply) == [expected]

    reply = two.roster_set(item_xml('friend@localhost', 'Pal'))
    assert reply.get('type') == 'result', harness.tostring(reply)
    updated = ({'jid': 'friend@localhost', 'name': 'Pal', 'subscription': 'none'}, [])
    for c in (one, two):
        assert push_item(c.push(), ver='2') == updated
    assert push_item(three.push()) == updated

    reply = one.roster_set(item_xml('friend@localhost', extra=" subscription='remove'"))
    assert reply.get('type') == 'result', harness.tostring(reply)
    for c in (one, two):
        assert push_item(c.push(), ver='3') == (
            {'jid': 'friend@localhost', 'subscription': 'remove'}, [])
    assert push_item(three.push()) == ({'jid': 'friend@localhost', 'subscription': 'remove'}, [])
    assert items(one.roster_get(ver='')) == []
    for c in (one, two, three):
        c.quiet()

    # a resource that never asked for the roster gets no pushes
    four = Conn('ra', 'four')
    one.roster_set(item_xml('other@localhost'))
    one.push()
    four.quiet()
    for c in (one, two, three, four):
        c.close()


def test_roster_set_errors():
    c = Conn('rerr', 'one')
    c.roster_get()
    cases = [
        (item_xml('a@localhost') + item_xml('b@localhost'), ('modify', ['bad-request'])),
        (item_xml('a@localhost', groups=['G', 'G']), ('modify', ['bad-request'])),
        ("<item jid='a@localhost'><group/></item>", ('modify', ['not-acceptable'])),
        (item_xml('a@localhost', groups=['g' * 1024]), ('modify', ['not-acceptable'])),
        (item_xml('a@localhost', name='n' * 1024), ('modify', ['not-acceptable'])),
        (item_xml('a@localhost', groups=['g%d' % i for i in range(65)]),
         ('modify', ['not-acceptable'])),
        (item_xml('not@valid@jid'), ('modify', ['jid-malformed'])),
        (item_xml('a@localhost/res'), ('modify', ['bad-request'])),
        (item_xml('nobody@localhost', extra=" subscription='remove'"),
         ('cancel', ['item-not-found'])),
        ('', ('modify', ['bad-request'])),
    ]
    for payload, expected in cases:
        reply = c.roster_set(payload)
        assert error_of(reply) == expected, (payload[:80], harness.tostring(reply))
        assert reply.get('from') is None or reply.get('from') == c.bare, harness.tostring(reply)

    # another account's roster is not ours to read or change
    reply = c.iq('get', "<query xmlns='%s'/>" % NS_ROSTER, to=bare('ra'))
    assert error_of(reply) == ('auth', ['forbidden']) and reply.get('from') == bare('ra')
    reply = c.roster_set(item_xml('a@localhost'), to=bare('ra'))
    assert error_of(reply) == ('auth', ['forbidden']) and reply.get('from') == bare('ra')

    # 'subscription' other than remove is ignored (RFC 6121 §2.1.2.5)
    reply = c.roster_set(item_xml('c0@localhost', extra=" subscription='both'"))
    assert reply.get('type') == 'result', harness.tostring(reply)
    assert push_item(c.push()) == sub_item('c0@localhost', 'none')
    for i in range(1, MAX_ITEMS):
        assert c.roster_set(item_xml('c%d@localhost' % i)).get('type') == 'result'
        c.push()
    reply = c.roster_set(item_xml('toomany@localhost'))
    assert error_of(reply) == ('cancel', ['not-allowed']), harness.tostring(reply)
    # updating an existing item is still fine at the limit
    assert c.roster_set(item_xml('c0@localhost', 'Zero')).get('type') == 'result'
    c.push()
    assert len(items(c.roster_get())) == MAX_ITEMS

    # a subscription request to oneself is ignored and not stored
    subscribe(c, c.bare)
    subscribe(c, c.jid)
    c.quiet()
    assert [i for i, _ in items(c.roster_get()) if i['jid'] == c.bare] == []

    # a malformed address on presence
    c.send("<presence to='a@b@c' type='subscribe' id='bad'/>")
    error = c.take(lambda e: e.tag == PRESENCE and e.get('id') == 'bad', 'presence error')
    assert error_of(error) == ('modify', ['jid-malformed']), harness.tostring(error)
    c.quiet()
    c.close()


# ----------------------------------------------------------- subscriptions

def test_subscription_flow_both_ways():
    a1, a2, b1, b2 = Conn('sa', '1'), Conn('sa', '2'), Conn('sb', '1'), Conn('sb', '2')
    for c in (a1, a2, b1, b2):
        c.roster_get()
    go_online([a1, a2, b1, b2])

    a1.send("<presence to='sb@localhost/1' type='subscribe'><status>hi</status></presence>")
    for c in (a1, a2):
        assert push_item(c.push()) == sub_item('sb@localhost', 'none', ask='subscribe')
    for c in (b1, b2):
        p = c.presence('sa@localhost', 'subscribe')
        assert attrs(p) == {'from': 'sa@localhost', 'to': 'sb@localhost', 'type': 'subscribe'}
        assert p.findtext(harness.qname(harness.NS_CLIENT, 'status')) == 'hi'
    # an unanswered request is not a roster item
    assert items(b2.roster_get()) == []

    subscribe(b1, 'sa@localhost', 'subscribed')
    for c in (b1, b2):
        assert push_item(c.push()) == sub_item('sa@localhost', 'from')
    for c in (a1, a2):
        assert push_item(c.push()) == sub_item('sb@localhost', 'to')
        assert attrs(c.presence('sb@localhost', 'subscribed')) == {
            'from': 'sb@localhost', 'to': 'sa@localhost', 'type': 'subscribed'}
        for r in ('1', '2'):
            assert attrs(c.presence('sb@localhost/' + r)) == {
                'from': 'sb@localhost/' + r, 'to': 'sa@localhost'}

    subscribe(b2, 'sa@localhost')
    for c in (b1, b2):
        assert push_item(c.push()) == sub_item('sa@localhost', 'from', ask='subscribe')
    for c in (a1, a2):
        assert attrs(c.presence('sb@localhost', 'subscribe')) == {
            'from': 'sb@localhost', 'to': 'sa@localhost', 'type': 'subscribe'}
    subscribe(a2, 'sb@localhost', 'subscribed')
    for c in (a1, a2):
        assert push_item(c.push()) == sub_item('sb@localhost', 'both')
    for c in (b1, b2):
        assert push_item(c.push()) == sub_item('sa@localhost', 'both')
        c.presence('sa@localhost', 'subscribed')
        for r in ('1', '2'):
            c.presence('sa@localhost/' + r)
    for c in (a1, a2, b1, b2):
        c.quiet()

    # a presence update reaches the subscriber's resources and our own
    a1.available('<show>away</show>')
    for c in (b1, b2, a1, a2):
        p = c.presence('sa@localhost/1')
        assert p.findtext(harness.qname(harness.NS_CLIENT, 'show')) == 'away'
    for c in (a1, a2, b1, b2):
        c.quiet()

    # sa stops following sb: sb's resources go unavailable for sa
    subscribe(a1, 'sb@localhost', 'unsubscribe')
    for c in (a1, a2):
        assert push_item(c.push()) == sub_item('sb@localhost', 'from')
        for r in ('1', '2'):
            assert attrs(c.presence('sb@localhost/' + r, 'unavailable')) == {
                'from': 'sb@localhost/' + r, 'to': 'sa@localhost', 'type': 'unavailable'}
    for c in (b1, b2):
        assert push_item(c.push()) == sub_item('sa@localhost', 'to')
        c.presence('sa@localhost', 'unsubscribe')

    # sa cancels sb's subscription to it (A.2.4 from -> none)
    subscribe(a1, 'sb@localhost', 'unsubscribed')
    for c in (a1, a2):
        assert push_item(c.push()) == sub_item('sb@localhost', 'none')
    for c in (b1, b2):
        assert push_item(c.push()) == sub_item('sa@localhost', 'none')
        assert attrs(c.presence('sa@localhost', 'unsubscribed')) == {
            'from': 'sa@localhost', 'to': 'sb@localhost', 'type': 'unsubscribed'}
        for r in ('1', '2'):
            c.presence('sa@localhost/' + r, 'unavailable')
    for c in (a1, a2, b1, b2):
        c.quiet()
    for c in (a1, a2, b1, b2):
        c.close()


def test_pending_request_redelivered_until_answered():
    a = Conn('pa', '1')
    a.roster_get()
    go_online([a])
    subscribe(a, 'pb@localhost')
    assert push_item(a.push()) == sub_item('pb@localhost', 'none', ask='subscribe')

    # pb is offline; each initial presence shows the request again
    b = None
    for resource in ('1', '2'):
        if b is not None:
            b.kill()
        b = Conn('pb', resource)
        b.quiet()  # nothing before the initial presence
        b.available()
        assert attrs(b.presence('pa@localhost', 'subscribe')) == {
            'from': 'pa@localhost', 'to': 'pb@localhost', 'type': 'subscribe'}
    subscribe(b, 'pa@localhost', 'subscribed')
    assert attrs(a.presence('pb@localhost', 'subscribed')) == {
        'from': 'pb@localhost', 'to': 'pa@localhost', 'type': 'subscribed'}
    assert push_item(a.push()) == sub_item('pb@localhost', 'to')
    assert attrs(a.presence('pb@localhost/2')) == {'from': 'pb@localhost/2', 'to': 'pa@localhost'}
    b.close()
    assert attrs(a.presence('pb@localhost/2', 'unavailable'))['type'] == 'unavailable'

    b = Conn('pb', '3')
    b.available()
    b.presence('pb@localhost/3')
    b.quiet()  # answered: no more redelivery
    a.presence('pb@localhost/3')
    a.quiet()
    b.close()
    a.close()


def test_pre_approval():
    stream = harness.RawStream(server.c2s_port)
    stream.open()
    stream.starttls()
    features = stream.auth_plain('qa', PASSWORD)
    assert features.find(harness.qname('urn:xmpp:features:pre-approval', 'sub')) is not None
    assert features.find(harness.qname('urn:xmpp:features:rosterver', 'ver')) is not None
    stream.close()

    a, b = Conn('qa', '1'), Conn('qb', '1')
    for c in (a, b):
        c.roster_get()
    go_online([a, b])
    subscribe(a, 'qb@localhost', 'subscribed')
    assert push_item(a.push()) == sub_item('qb@localhost', 'none', approved='true')
    b.quiet()  # a pre-approval is not routed

    subscribe(b, 'qa@localhost')
    assert push_item(b.push()) == sub_item('qa@localhost', 'none', ask='subscribe')
    assert push_item(b.push()) == sub_item('qa@localhost', 'to')
    assert attrs(b.presence('qa@localhost', 'subscribed')) == {
        'from': 'qa@localhost', 'to': 'qb@localhost', 'type': 'subscribed'}
    b.presence('qa@localhost/1')
    assert push_item(a.push()) == sub_item('qb@localhost', 'from')
    a.quiet()  # approved already: the request is not shown
    b.quiet()
    a.close()
    b.close()


# --------------------------------------------------------------- presence

def test_presence_fan_out_over_three_accounts():
    fa = [Conn('fa', r) for r in ('1', '2', '3')]
    fb = [Conn('fb', r) for r in ('1', '2')]
    fc = Conn('fc', '1')
    for c in fa + fb + [fc]:
        c.roster_get()
    go_online(fa + fb + [fc])
    befriend(fa[0], fb[0])
    befriend(fa[0], fc)
    for c in fa + fb + [fc]:
        c.settle()

    # an update from fa/1: its contacts' resources and its own, once each
    fa[0].available('<status>here</status><priority>5</priority>')
    for c in fa + fb + [fc]:
        p = c.presence('fa@localhost/1')
        assert p.findtext(harness.qname(harness.NS_CLIENT, 'status')) == 'here'
    for c in fa + fb + [fc]:
        c.quiet()

    # a new resource learns everyone's presence; everyone learns of it
    new = Conn('fa', '4')
    new.available()
    for frm in ('fa@localhost/1', 'fa@localhost/2', 'fa@localhost/3', 'fa@localhost/4',
                'fb@localhost/1', 'fb@localhost/2', 'fc@localhost/1'):
        p = new.presence(frm)
        assert p.get('type') is None and p.get('to') in (new.jid, new.bare), harness.tostring(p)
    for c in fa + fb + [fc]:
        assert attrs(c.presence('fa@localhost/4'))['from'] == 'fa@localhost/4'
    # fb and fc are not subscribed to each other
    for c in fb + [fc, new]:
        c.quiet()

    # explicit unavailable
    fb[1].send("<presence type='unavailable'><status>bye</status></presence>")
    for c in fa + [new, fb[0]]:
        p = c.presence('fb@localhost/2', 'unavailable')
        assert p.findtext(harness.qname(harness.NS_CLIENT, 'status')) == 'bye'
    fc.quiet()
    for c in fa + fb + [fc, new]:
        c.close()


def test_unavailable_on_ungraceful_disconnect():
    a1, a2, b = Conn('ua', '1'), Conn('ua', '2'), Conn('ub', 'phone')
    go_online([a1, a2, b])
    befriend(a1, b)
    b.kill()
    for c in (a1, a2):
        assert attrs(c.presence('ub@localhost/phone', 'unavailable')) == {
            'from': 'ub@localhost/phone', 'to': 'ua@localhost', 'type': 'unavailable'}
    a2.kill()
    assert attrs(a1.presence('ua@localhost/2', 'unavailable'))['type'] == 'unavailable'
    a1.close()


def test_directed_presence():
    a, b = Conn('da', '1'), Conn('db', '1')
    go_online([a, b])
    a.send("<presence to='db@localhost/1'><status>just you</status></presence>")
    p = b.presence('da@localhost/1')
    assert attrs(p) == {'from': 'da@localhost/1', 'to': 'db@localhost/1'}
    # broadcasts do not reach a directed-presence recipient ...
    a.available('<show>dnd</show>')
    a.presence('da@localhost/1')
    b.quiet()
    # ... but the unavailable presence at the end does
    a.kill()
    assert attrs(b.presence('da@localhost/1', 'unavailable')) == {
        'from': 'da@localhost/1', 'to': 'db@localhost/1', 'type': 'unavailable'}
    # a probe without a subscription learns nothing
    b.send("<presence to='da@localhost' type='probe'/>")
    b.quiet()
    b.close()


def test_directed_presence_list_is_capped():
    a, b = Conn('ma', '1'), Conn('mb', '1')
    go_online([a, b])
    for resource in ('1', '2'):
        a.send("<presence to='mb@localhost/%s'/>" % resource)
    b.presence('ma@localhost/1')
    # one more address than max_directed: refused, and never delivered
    a.send("<presence id='p3' to='mb@localhost/3'/>")
    error = a.take(lambda e: e.tag == PRESENCE and e.get('type') == 'error', 'presence error')
    assert error.get('id') == 'p3' and error_of(error) == ('modify', ['policy-violation']), (
        harness.tostring(error))
    # presence to an address already told costs nothing; unavailable frees a place
    a.send("<presence to='mb@localhost/1'><show>away</show></presence>")
    b.presence('ma@localhost/1')
    a.send("<presence to='mb@localhost/2' type='unavailable'/>")
    a.send("<presence to='mb@localhost/3'/>")
    a.quiet()
    # and the unavailable presence at the end reaches every remembered address
    a.kill()
    b.presence('ma@localhost/1', 'unavailable')
    b.quiet()
    b.close()


def test_negative_priority_gets_no_bare_jid_messages():
    low, high, sender = Conn('na', 'low'), Conn('na', 'high'), Conn('nb', '1')
    go_online([low, high, sender], {low.jid: '<priority>-1</priority>',
                                    high.jid: '<priority>1</priority>'})
    sender.send("<message to='na@localhost' type='chat' id='m1'><body>hi</body></message>")
    msg = high.take(lambda e: e.tag == MESSAGE, 'message')
    assert attrs(msg) == {'from': 'nb@localhost/1', 'to': 'na@localhost', 'type': 'chat',
                          'id': 'm1'}
    low.quiet()
    # a full JID still reaches the negative-priority resource
    sender.send("<message to='na@localhost/low' type='chat' id='m2'><body>hi</body></message>")
    msg = low.take(lambda e: e.tag == MESSAGE, 'message')
    assert msg.get('id') == 'm2'
    high.quiet()
    for c in (low, high, sender):
        c.close()


# ------------------------------------------------------------------ slixmpp

async def test_slixmpp_clients_subscribe_and_see_each_other():
    xa = harness.Client(bare('xa') + '/laptop', PASSWORD)
    xb = harness.Client(bare('xb') + '/phone', PASSWORD)
    for c in (xa, xb):
        await c.login(server)
        await c.get_roster()
        c.send_presence()
    online = asyncio.get_event_loop().create_future()

    def got_online(presence):
        if presence['from'].bare == bare('xb') and not online.done():
            online.set_result(str(presence['from']))
    xa.add_event_handler('got_online', got_online)
    # slixmpp approves and subscribes back on its own (auto_authorize)
    xa.send_presence_subscription(pto=bare('xb'))
    assert await asyncio.wait_for(online, 5) == bare('xb') + '/phone'
    for _ in range(50):
        if (xa.client_roster[bare('xb')]['subscription'] == 'both' and
                xb.client_roster[bare('xa')]['subscription'] == 'both'):
            break
        await asyncio.sleep(0.1)
    assert xa.client_roster[bare('xb')]['subscription'] == 'both'
    assert xb.client_roster[bare('xa')]['subscription'] == 'both'
    for c in (xa, xb):
        await c.close()


if __name__ == '__main__':
    harness.run([test_roster_get_set_remove_pushes_and_versioning,
                 test_roster_set_errors,
                 test_subscription_flow_both_ways,
                 test_pending_request_redelivered_until_answered,
                 test_pre_approval,
                 test_presence_fan_out_over_three_accounts,
                 test_unavailable_on_ungraceful_disconnect,
                 test_directed_presence,
                 test_directed_presence_list_is_capped,
                 test_negative_priority_gets_no_bare_jid_messages,
                 test_slixmpp_clients_subscribe_and_see_each_other],
                server=server, setup=setup)
