#!/usr/bin/env python3
"""test_mam.py - Message Archive Management (XEP-0313) with stanza ids (XEP-0359).

Real slixmpp sessions against a real vestnikd with mod_mam: messages kept
in both parties' archives with the delivered stanza-id matching the archive
id, paging forward, backward and flipped over 120 messages with exact
first/last/count/complete (RSM, XEP-0059), the with/start/end/after-id/
before-id/ids filters, preferences, forged stanza-ids, metadata, the form,
and the errors a client can provoke.
"""

import asyncio

from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness

ALICE = 'alice@' + harness.DOMAIN
BOB = 'bob@' + harness.DOMAIN
CAROL = 'carol@' + harness.DOMAIN
DAVE = 'dave@' + harness.DOMAIN
ERIN = 'erin@' + harness.DOMAIN
FRANK = 'frank@' + harness.DOMAIN
GRACE = 'grace@' + harness.DOMAIN
HEIDI = 'heidi@' + harness.DOMAIN
PASSWORD = 'secret-password'
MAX_PAGE = 100
DEFAULT_PAGE = 50
PAGING_MESSAGES = 120

NS_MAM = 'urn:xmpp:mam:2'
NS_SID = 'urn:xmpp:sid:0'
NS_RSM = 'http://jabber.org/protocol/rsm'
NS_DATA = 'jabber:x:data'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_DELAY = 'urn:xmpp:delay'
NS_CLIENT = 'jabber:client'


class Server(harness.Server):
    """The harness's server with mod_mam loaded."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n'
                    '  mam:\n'
                    '    max_page: %d\n' % MAX_PAGE)


server = Server()


def setup():
    for jid in (ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE, HEIDI):
        server.adduser(jid, PASSWORD)


def q(ns, name):
    return '{%s}%s' % (ns, name)


async def login(jid):
    """A session that also queues MAM results (slixmpp's 'message' event
    is for messages with a body only)."""
    client = harness.Client(jid, PASSWORD)
    client.results = asyncio.Queue()
    client.register_handler(Callback(
        'MAM result', MatchXPath('{%s}message/{%s}result' % (NS_CLIENT, NS_MAM)),
        client.results.put_nowait))
    return await client.login(server)


async def online(jid):
    client = await login(jid)
    client.send_presence()
    await client.ping()
    return client


async def next_message(client, timeout=5):
    return await asyncio.wait_for(client.messages.get(), timeout)


async def receive(client, count):
    return [await next_message(client) for _ in range(count)]


def stanza_ids(msg):
    return [(e.get('by'), e.get('id')) for e in msg.xml.findall(q(NS_SID, 'stanza-id'))]


class Item:
    """One archived message as a result: its id, stamp and the message."""

    def __init__(self, message):
        result = message.xml.find(q(NS_MAM, 'result'))
        self.queryid = result.get('queryid')
        self.id = result.get('id')
        forwarded = result.find(q(NS_FORWARD, 'forwarded'))
        self.stamp = forwarded.find(q(NS_DELAY, 'delay')).get('stamp')
        self.message = forwarded.find(q(NS_CLIENT, 'message'))
        self.body = self.message.findtext(q(NS_CLIENT, 'body'))
        self.sender = message['from']


def query_element(fields=(), rsm=None, queryid='q1', flip=False):
    """<query/> with a submitted form (fields: (var, value or [values])) and RSM."""
    query = ET.Element(q(NS_MAM, 'query'))
    if queryid is not None:
        query.set('queryid', queryid)
    if fields:
        form = ET.SubElement(query, q(NS_DATA, 'x'), type='submit')
        for var, value in (('FORM_TYPE', NS_MAM),) + tuple(fields):
            field = ET.SubElement(form, q(NS_DATA, 'field'), var=var)
            for text in value if isinstance(value, list) else [value]:
                ET.SubElement(field, q(NS_DATA, 'value')).text = text
    if rsm is not None:
        rsm_set = ET.SubElement(query, q(NS_RSM, 'set'))
        for name, text in rsm:
            ET.SubElement(rsm_set, q(NS_RSM, name)).text = text
    if flip:
        ET.SubElement(query, q(NS_MAM, 'flip-page'))
    return query


class Page:
    def __init__(self, items, fin):
        self.items = items
        self.ids = [item.id for item in items]
        self.bodies = [item.body for item in items]
        self.complete = fin.get('complete')
        rsm_set = fin.find(q(NS_RSM, 'set'))
        self.first = rsm_set.findtext(q(NS_RSM, 'first'))
        self.last = rsm_set.findtext(q(NS_RSM, 'last'))
        self.count = rsm_set.findtext(q(NS_RSM, 'count'))


async def mam_query(client, fields=(), rsm=None, queryid='q1', flip=False, to=None):
    """Run a query; every result arrives before the iq result."""
    iq = client.make_iq_set(ito=to)
    iq.append(query_element(fields, rsm, queryid, flip))
    reply = await iq.send(timeout=10)
    fin = reply.xml.find(q(NS_MAM, 'fin'))
    assert fin is not None, reply
    await client.ping()  # the results came first: their events are handled by now
    assert client.messages.empty(), 'unexpected %s' % client.messages.get_nowait()
    items = []
    while not client.results.empty():
        item = Item(client.results.get_nowait())
        assert item.queryid == queryid, msg
        assert item.sender == client.boundjid.bare, msg
        items.append(item)
    page = Page(items, fin)
    if items:
        assert (page.first, page.last) == (items[0].id, items[-1].id), (
            page.first, page.last, page.ids)
    else:
        assert page.first is None and page.last is None, harness.tostring(fin)
    return page


async def mam_error(client, fields=(), rsm=None, payload=None, to=None, iq_type='set'):
    iq = client.make_iq_set(ito=to) if iq_type == 'set' else client.make_iq_get(ito=to)
    iq.append(payload if payload is not None else query_element(fields, rsm))
    return await client.iq_error(iq)


def assert_error(stanza, condition, error_type):
    assert stanza['type'] == 'error', stanza
    assert stanza['error']['condition'] == condition, stanza
    assert stanza['error']['type'] == error_type, stanza


# ------------------------------------------------------------------ archiving

async def test_disco_advertises_mam_and_stanza_ids():
    alice = await login(ALICE)
    # The registry mod_disco serves for the server; XEP-0313 §6 wants them on
    # the account too, which mod_disco does not list yet.
    info = await alice['xep_0030'].get_info(jid=harness.DOMAIN, timeout=5)
    features = set(info['disco_info']['features'])
    for feature in (NS_MAM, NS_MAM + '#extended', NS_SID):
        assert feature in features, (feature, features)
    await alice.close()


async def test_both_sides_archived_with_matching_stanza_id():
    alice = await online(ALICE + '/phone')
    bob = await online(BOB + '/desk')
    bodies = ['hello bob', 'how are you?', 'bye']
    for body in bodies:
        alice.send_message(mto=BOB, mbody=body, mtype='chat')
    received = await receive(bob, len(bodies))
    assert [m['body'] for m in received] == bodies, received
    delivered_ids = []
    for msg in received:
        ids = stanza_ids(msg)
        assert len(ids) == 1 and ids[0][0] == BOB, ids
        delivered_ids.append(ids[0][1])

    page = await mam_query(bob)
    assert page.bodies == bodies, page.bodies
    assert page.ids == delivered_ids, (page.ids, delivered_ids)
    assert page.complete == 'true' and page.count == '3', (page.complete, page.count)
    for item in page.items:
        assert item.message.get('from') == ALICE + '/phone', harness.tostring(item.message)
        assert item.stamp.endswith('Z'), item.stamp

    mine = await mam_query(alice, queryid='sent')
    assert mine.bodies == bodies, mine.bodies
    assert [i.message.get('to') for i in mine.items] == [BOB] * 3
    assert mine.ids == sorted(mine.ids, key=int), mine.ids
    assert mine.complete == 'true', mine.complete

    # chat states and headlines are not archived (the headline, sent last,
    # tells when both went through)
    state = alice.make_message(mto=BOB, mtype='chat')
    state.xml.append(ET.Element('{http://jabber.org/protocol/chatstates}composing'))
    state.send()
    alice.send_message(mto=BOB, mbody='news', mtype='headline')
    assert (await next_message(bob))['body'] == 'news'

    assert (await mam_query(bob)).bodies == bodies
    await bob.close()
    await alice.close()


async def test_forged_stanza_id_is_removed():
    alice = await online(ALICE + '/phone')
    bob = await online(BOB + '/desk')
    msg = alice.make_message(mto=BOB, mbody='forged', mtype='chat')
    for by, value in ((BOB, 'forged-1'), ('BOB@' + harness.DOMAIN.upper(), 'forged-2'),
                      ('elsewhere.example', 'kept')):
        ET.SubElement(msg.xml, q(NS_SID, 'stanza-id'), by=by, id=value)
    msg.send()
    received = await next_message(bob)
    ids = stanza_ids(received)
    assert ('elsewhere.example', 'kept') in ids, ids
    own = [value for by, value in ids if by == BOB]
    assert len(own) == 1 and own[0] not in ('forged-1', 'forged-2'), ids
    page = await mam_query(bob, fields=(('ids', [own[0]]),))
    assert page.bodies == ['forged'] and page.ids == own, (page.bodies, page.ids)
    await bob.close()
    await alice.close()


# ------------------------------------------------------------------- paging

async def fill_paging_archive():
    """carol sends dave PAGING_MESSAGES messages; dave's archive ids, oldest first."""
    carol = await online(CAROL + '/laptop')
    dave = await online(DAVE + '/phone')
    for n in range(PAGING_MESSAGES):
        carol.send_message(mto=DAVE, mbody='m%03d' % n, mtype='chat')
    received = await receive(dave, PAGING_MESSAGES)
    ids = [stanza_ids(m)[0][1] for m in received]
    assert [m['body'] for m in received] == ['m%03d' % n for n in range(PAGING_MESSAGES)]
    await carol.close()
    return dave, ids


async def test_paging_forward_and_backward_over_120_messages():
    dave, ids = await fill_paging_archive()
    total = str(PAGING_MESSAGES)

    # forward: the default page, then <after/> twice
    page = await mam_query(dave)
    assert page.ids == ids[:DEFAULT_PAGE], page.ids
    assert (page.complete, page.count) == ('false', total)
    page = await mam_query(dave, rsm=[('max', '50'), ('after', page.last)])
    assert page.ids == ids[50:100] and page.complete == 'false', (page.ids, page.complete)
    page = await mam_query(dave, rsm=[('max', '50'), ('after', page.last)])
    assert page.ids == ids[100:] and page.complete == 'true', (page.ids, page.complete)
    assert page.count == total
    page = await mam_query(dave, rsm=[('max', '50'), ('after', page.last)])
    assert page.ids == [] and page.complete == 'true', (page.ids, page.complete)

    # backward: <before/> is the last page, in chronological order
    page = await mam_query(dave, rsm=[('max', '50'), ('before', '')])
    assert page.ids == ids[70:] and page.complete == 'false', (page.ids, page.complete)
    assert page.bodies == ['m%03d' % n for n in range(70, 120)]
    page = await mam_query(dave, rsm=[('max', '50'), ('before', page.first)])
    assert page.ids == ids[20:70] and page.complete == 'false', (page.ids, page.complete)
    page = await mam_query(dave, rsm=[('max', '50'), ('before', page.first)])
    assert page.ids == ids[:20] and page.complete == 'true', (page.ids, page.complete)
    assert page.count == total

    # flipped: the same pages, newest first
    page = await mam_query(dave, rsm=[('max', '10'), ('before', '')], flip=True)
    assert page.ids == ids[-10:][::-1] and page.complete == 'false', page.ids
    page = await mam_query(dave, rsm=[('max', '10'), ('before', page.last)], flip=True)
    assert page.ids == ids[-20:-10][::-1], page.ids
    page = await mam_query(dave, rsm=[('max', '10')], flip=True)
    assert page.ids == ids[:10][::-1], page.ids

    # max is capped by max_page; max 0 asks for the count only
    page = await mam_query(dave, rsm=[('max', '1000')])
    assert page.ids == ids[:MAX_PAGE] and page.complete == 'false', len(page.ids)
    page = await mam_query(dave, rsm=[('max', '0')])
    assert page.ids == [] and page.count == total, (page.ids, page.count)
    await dave.close()


async def test_filters_with_start_end_and_ids():
    dave = await login(DAVE + '/filters')
    everything = (await mam_query(dave, rsm=[('max', '100')])).items
    everything += (await mam_query(dave, rsm=[('after', everything[-1].id)])).items
    ids = [item.id for item in everything]
    assert len(ids) == PAGING_MESSAGES, len(ids)

    # with: carol's messages, by bare and by full JID; nobody else's
    page = await mam_query(dave, fields=(('with', CAROL),), rsm=[('max', '100')])
    assert page.ids == ids[:100] and page.complete == 'false', len(page.ids)
    page = await mam_query(dave, fields=(('with', 'Carol@' + harness.DOMAIN + '/laptop'),),
                           rsm=[('max', '5'), ('before', '')])
    assert page.ids == ids[-5:], page.ids
    page = await mam_query(dave, fields=(('with', CAROL + '/elsewhere'),))
    assert page.ids == [] and page.complete == 'true' and page.count == '0', page.ids
    page = await mam_query(dave, fields=(('with', ALICE),))
    assert page.ids == [] and page.complete == 'true', page.ids

    # start and end are inclusive
    start, end = everything[30].stamp, everything[59].stamp
    page = await mam_query(dave, fields=(('start', start), ('end', end)))
    assert page.ids == ids[30:60] and page.complete == 'true', page.ids
    assert page.count == '30', page.count
    page = await mam_query(dave, fields=(('start', start),), rsm=[('max', '10'), ('before', '')])
    assert page.ids == ids[-10:], page.ids
    page = await mam_query(dave, fields=(('end', end),), rsm=[('max', '100')])
    assert page.ids == ids[:60] and page.complete == 'true', page.ids

    # any XEP-0082 DateTime is a bound, the epoch and earlier too: Dino asks
    # for everything since 1970-01-01T00:00:00Z on every login
    for since in ('1970-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '1969-07-20T20:17:40Z',
                  '0001-01-01T00:00:00.000Z', '1970-01-01T01:00:00+01:00'):
        page = await mam_query(dave, fields=(('start', since),), rsm=[('max', '100')])
        assert page.ids == ids[:100] and page.count == str(len(ids)), (since, page.count)
        page = await mam_query(dave, fields=(('start', since), ('end', end)),
                               rsm=[('max', '100')])
        assert page.ids == ids[:60] and page.complete == 'true', (since, page.ids)
        page = await mam_query(dave, fields=(('end', since),))
        assert page.ids == [] and page.complete == 'true' and page.count == '0', since

    # after-id and before-id are exclusive, and combine with RSM
    page = await mam_query(dave, fields=(('after-id', ids[9]), ('before-id', ids[20])))
    assert page.ids == ids[10:20] and page.complete == 'true', page.ids
    page = await mam_query(dave, fields=(('after-id', ids[9]), ('before-id', ids[20])),
                           rsm=[('max', '4'), ('after', ids[12])])
    assert page.ids == ids[13:17] and page.complete == 'false', page.ids
    page = await mam_query(dave, fields=(('after-id', ids[9]), ('before-id', ids[20])),
                           rsm=[('max', '4'), ('before', '')])
    assert page.ids == ids[16:20] and page.complete == 'false', page.ids

    # ids: exactly those items, in archive order, paged like any result
    wanted = [ids[70], ids[3], ids[111], ids[3]]
    page = await mam_query(dave, fields=(('ids', wanted),))
    assert page.ids == [ids[3], ids[70], ids[111]], page.ids
    assert page.complete == 'true' and page.count == '3', (page.complete, page.count)
    page = await mam_query(dave, fields=(('ids', wanted),), rsm=[('max', '2'), ('before', '')])
    assert page.ids == [ids[70], ids[111]] and page.complete == 'false', page.ids
    page = await mam_query(dave, fields=(('ids', [ids[5], '12345']), ('with', CAROL)))
    assert page.ids == [ids[5]], page.ids
    await dave.close()


async def test_metadata_and_form():
    dave = await login(DAVE + '/meta')
    first = (await mam_query(dave, rsm=[('max', '1')])).items[0]
    last = (await mam_query(dave, rsm=[('max', '1'), ('before', '')])).items[0]
    iq = dave.make_iq_get()
    iq.append(ET.Element(q(NS_MAM, 'metadata')))
    metadata = (await iq.send(timeout=5)).xml.find(q(NS_MAM, 'metadata'))
    start, end = metadata.find(q(NS_MAM, 'start')), metadata.find(q(NS_MAM, 'end'))
    assert (start.get('id'), start.get('timestamp')) == (first.id, first.stamp)
    assert (end.get('id'), end.get('timestamp')) == (last.id, last.stamp)

    frank = await login(FRANK + '/new')
    iq = frank.make_iq_get()
    iq.append(ET.Element(q(NS_MAM, 'metadata')))
    metadata = (await iq.send(timeout=5)).xml.find(q(NS_MAM, 'metadata'))
    assert len(metadata) == 0, harness.tostring(metadata)

    iq = dave.make_iq_get()
    iq.append(ET.Element(q(NS_MAM, 'query')))
    form = (await iq.send(timeout=5)).xml.find('%s/%s' % (q(NS_MAM, 'query'), q(NS_DATA, 'x')))
    fields = {f.get('var') for f in form.findall(q(NS_DATA, 'field'))}
    assert fields == {'FORM_TYPE', 'with', 'start', 'end', 'after-id', 'before-id', 'ids'}, fields
    await frank.close()
    await dave.close()


# ------------------------------------------------------------- preferences

def prefs_element(default, always=(), never=()):
    prefs = ET.Element(q(NS_MAM, 'prefs'), default=default)
    for name, jids in (('always', always), ('never', never)):
        element = ET.SubElement(prefs, q(NS_MAM, name))
        for jid in jids:
            ET.SubElement(element, q(NS_MAM, 'jid')).text = jid
    return prefs


async def set_prefs(client, prefs):
    iq = client.make_iq_set()
    iq.append(prefs)
    return (await iq.send(timeout=5)).xml.find(q(NS_MAM, 'prefs'))


def prefs_lists(prefs):
    return {name: [j.text for j in prefs.find(q(NS_MAM, name))] for name in ('always', 'never')}


async def test_prefs_decide_what_is_archived():
    erin = await online(ERIN + '/desk')
    alice = await online(ALICE + '/phone')
    frank = await online(FRANK + '/desk')

    iq = erin.make_iq_get()
    iq.append(ET.Element(q(NS_MAM, 'prefs')))
    prefs = (await iq.send(timeout=5)).xml.find(q(NS_MAM, 'prefs'))
    assert prefs.get('default') == 'always', harness.tostring(prefs)
    assert prefs_lists(prefs) == {'always': [], 'never': []}, harness.tostring(prefs)

    stored = await set_prefs(erin, prefs_element('always', never=['Alice@' + harness.DOMAIN]))
    assert stored.get('default') == 'always'
    assert prefs_lists(stored) == {'always': [], 'never': [ALICE]}, harness.tostring(stored)

    alice.send_message(mto=ERIN, mbody='not kept', mtype='chat')
    frank.send_message(mto=ERIN, mbody='kept', mtype='chat')
    first, second = await receive(erin, 2)
    assert first['body'] == 'not kept' and stanza_ids(first) == [], first
    assert second['body'] == 'kept' and len(stanza_ids(second)) == 1, second
    erin.send_message(mto=ALICE, mbody='reply not kept', mtype='chat')
    await next_message(alice)
    assert (await mam_query(erin)).bodies == ['kept']

    # default never with frank always
    await set_prefs(erin, prefs_element('never', always=[FRANK]))
    alice.send_message(mto=ERIN, mbody='still not', mtype='chat')
    frank.send_message(mto=ERIN, mbody='frank again', mtype='chat')
    await receive(erin, 2)
    assert (await mam_query(erin)).bodies == ['kept', 'frank again']

    # roster: frank is not on erin's roster; then he is
    await set_prefs(erin, prefs_element('roster'))
    frank.send_message(mto=ERIN, mbody='not a contact', mtype='chat')
    await next_message(erin)
    await erin.update_roster(FRANK, name='Frank')
    frank.send_message(mto=ERIN, mbody='a contact', mtype='chat')
    await next_message(erin)
    assert (await mam_query(erin)).bodies == ['kept', 'frank again', 'a contact']

    error = await mam_error(erin, payload=prefs_element('sometimes'))
    assert_error(error, 'bad-request', 'modify')
    await frank.close()
    await alice.close()
    await erin.close()


async def test_prefs_set_from_another_resource_apply_at_once():
    """The sessions of an account remember that its preferences are the
    default ones; a change from any resource must reach all of them."""
    phone = await online(GRACE + '/phone')
    desk = await online(GRACE + '/desk')
    heidi = await online(HEIDI + '/desk')
    heidi.send_message(mto=GRACE + '/phone', mbody='one', mtype='chat')
    assert len(stanza_ids(await next_message(phone))) == 1
    phone.send_message(mto=HEIDI, mbody='two', mtype='chat')
    await next_message(heidi)

    await set_prefs(desk, prefs_element('never'))
    heidi.send_message(mto=GRACE + '/phone', mbody='three', mtype='chat')
    assert stanza_ids(await next_message(phone)) == []
    phone.send_message(mto=HEIDI, mbody='four', mtype='chat')
    await next_message(heidi)
    assert (await mam_query(desk)).bodies == ['one', 'two']
    for client in (heidi, desk, phone):
        await client.close()


# ------------------------------------------------------------------- errors

async def test_errors():
    dave = await login(DAVE + '/errors')
    ids = (await mam_query(dave, rsm=[('max', '2')])).ids

    for fields in ((('start', 'yesterday'),), (('end', '2024-13-01T00:00:00Z'),),
                   (('with', 'not a@valid@jid'),), (('colour', 'blue'),),
                   (('FORM_TYPE', 'urn:xmpp:mam:1'),)):
        error = await mam_error(dave, fields=fields)
        assert_error(error, 'bad-request', 'modify')
    error = await mam_error(dave, rsm=[('max', 'many')])
    assert_error(error, 'bad-request', 'modify')

    for rsm in ([('after', '42')], [('before', 'not-an-id')], [('after', ids[0] + '1')]):
        error = await mam_error(dave, rsm=rsm)
        assert_error(error, 'item-not-found', 'cancel')
    error = await mam_error(dave, fields=(('after-id', '7'),))
    assert_error(error, 'item-not-found', 'cancel')

    error = await mam_error(dave, to=CAROL)
    assert_error(error, 'forbidden', 'auth')
    error = await mam_error(dave, payload=ET.Element(q(NS_MAM, 'prefs')), to=CAROL,
                            iq_type='get')
    assert_error(error, 'forbidden', 'auth')
    await dave.close()


if __name__ == '__main__':
    harness.run([test_disco_advertises_mam_and_stanza_ids,
                 test_both_sides_archived_with_matching_stanza_id,
                 test_forged_stanza_id_is_removed,
                 test_paging_forward_and_backward_over_120_messages,
                 test_filters_with_start_end_and_ids,
                 test_metadata_and_form,
                 test_prefs_decide_what_is_archived,
                 test_prefs_set_from_another_resource_apply_at_once,
                 test_errors],
                server=server, setup=setup, timeout=60)
