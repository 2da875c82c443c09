#!/usr/bin/env python3
"""The services directory and consent (xeps/services-bus.md): services
publish their profile, users find them by category from slixmpp (disco
and XEP-0055 search with a data form), the operator verifies one with
vestnikctl, and a service writing to a user who never started it is
refused with a clear error and counted; starting, muting and stopping
from the ad-hoc command "My services"."""

import asyncio
import subprocess
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError

import harness
from services_component import AckingComponent, ServicesServer

BANK, SCHOOL, SHOP = 'bank.localhost', 'school.localhost', 'shop.localhost'
DIRECTORY = 'services.localhost'
NS = 'urn:vestnik:services:0'
NS_DATA = 'jabber:x:data'
NS_SEARCH = 'jabber:iq:search'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_COMMANDS = 'http://jabber.org/protocol/commands'
PASSWORD = 'user-password'
ALICE, BOB = 'alice@localhost', 'bob@localhost'

server = ServicesServer([(BANK, 'bank-secret', 'Bank'), (SCHOOL, 'school-secret', 'School'),
                         (SHOP, 'shop-secret', 'Shop')],
                        modules='  services:\n    service_message_burst: 5\n'
                                '    service_message_rate: 1\n')


def setup():
    server.adduser(ALICE, PASSWORD)
    server.adduser(BOB, PASSWORD)


def error_of(stanza):
    """(condition, text, app condition) of an error as a component sees it:
    in jabber:component:accept, where slixmpp's Error plugin does not look."""
    error = [el for el in stanza.xml if el.tag.endswith('}error')][0]
    condition = [el.tag.split('}')[1] for el in error if el.tag.startswith('{%s}' % NS_STANZAS)
                 and not el.tag.endswith('}text')][0]
    app = [el.tag.split('}')[1] for el in error if el.tag.startswith('{%s}' % NS)]
    return condition, error.findtext('{%s}text' % NS_STANZAS), app[0] if app else None


def ctl(*args):
    result = subprocess.run([server.ctl, '-c', server.config_path, 'services'] + list(args),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


async def publish(component, domain, name, category, description):
    iq = component.make_iq_set(ito=DIRECTORY, ifrom=domain)
    iq.append(ET.fromstring(
        "<profile xmlns='%s'><name>%s</name><description>%s</description>"
        "<category>%s</category><operator>%s Ltd</operator>"
        "<privacy>https://%s/privacy</privacy></profile>"
        % (NS, name, description, category, name, domain)))
    result = await iq.send(timeout=5)
    return result.xml.find('{%s}service' % NS)


async def search(client, **fields):
    iq = client.make_iq_set(ito=DIRECTORY)
    form = "".join("<field var='%s'><value>%s</value></field>" % f for f in fields.items())
    iq.append(ET.fromstring("<query xmlns='%s'><x xmlns='%s' type='submit'>"
                            "<field var='FORM_TYPE'><value>%s</value></field>%s</x></query>"
                            % (NS_SEARCH, NS_DATA, NS_SEARCH, form)))
    result = await iq.send(timeout=5)
    rows = []
    for item in result.xml.iter('{%s}item' % NS_DATA):
        rows.append({f.get('var'): f.findtext('{%s}value' % NS_DATA)
                     for f in item.findall('{%s}field' % NS_DATA)})
    return rows


def test_directory_search_by_category():
    asyncio.run(directory_search())


async def directory_search():
    bank = await AckingComponent(server, BANK, 'bank-secret').start()
    school = await AckingComponent(server, SCHOOL, 'school-secret').start()
    shop = await AckingComponent(server, SHOP, 'shop-secret').start()
    record = await publish(bank, BANK, 'Example Bank', 'bank', 'Accounts, cards and loans')
    assert record.get('verified') == 'false', ET.tostring(record)
    await publish(school, SCHOOL, 'School 57', 'school', 'Homework and grades')
    await publish(shop, SHOP, 'Corner Shop', 'shop', 'Groceries delivered')
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    # The host lists the directory; the directory lists the services.
    items = await alice['xep_0030'].get_items(jid='localhost')
    assert DIRECTORY in [i[0] for i in items['disco_items']['items']], items
    info = await alice['xep_0030'].get_info(jid=DIRECTORY)
    assert NS_SEARCH in info['disco_info']['features'], info
    items = await alice['xep_0030'].get_items(jid=DIRECTORY)
    listed = {i[0]: i[2] for i in items['disco_items']['items'] if not i[1]}
    assert listed.get(BANK) == 'Example Bank' and SCHOOL in listed, listed
    banks = await alice['xep_0030'].get_items(jid=DIRECTORY, node='category/bank')
    assert [i[0] for i in banks['disco_items']['items']] == [BANK], banks
    # The profile as a XEP-0128 form, by node.
    info = await alice['xep_0030'].get_info(jid=DIRECTORY, node=BANK)
    form = info.xml.find('.//{%s}x' % NS_DATA)
    values = {f.get('var'): f.findtext('{%s}value' % NS_DATA)
              for f in form.findall('{%s}field' % NS_DATA)}
    assert values['FORM_TYPE'] == NS + '#profile', values
    assert values['category'] == 'bank' and values['verified'] == '0', values
    assert values['privacy-policy'] == 'https://%s/privacy' % BANK, values
    # XEP-0055: the form, then a search by category and by words.
    iq = alice.make_iq_get(ito=DIRECTORY)
    iq.append(ET.fromstring("<query xmlns='%s'/>" % NS_SEARCH))
    form = (await iq.send(timeout=5)).xml.find('.//{%s}x' % NS_DATA)
    category = [f for f in form.findall('{%s}field' % NS_DATA) if f.get('var') == 'category'][0]
    assert 'school' in [o.findtext('{%s}value' % NS_DATA)
                        for o in category.findall('{%s}option' % NS_DATA)]
    rows = await search(alice, category='school')
    assert [r['jid'] for r in rows] == [SCHOOL], rows
    rows = await search(alice, text='groceries')
    assert [r['jid'] for r in rows] == [SHOP], rows
    # The same from the ad-hoc command "Find a service" (Conversations).
    iq = alice.make_iq_set(ito='localhost')
    iq.append(ET.fromstring("<command xmlns='%s' node='%s#find' action='execute'/>"
                            % (NS_COMMANDS, NS)))
    command = (await iq.send(timeout=5)).xml.find('{%s}command' % NS_COMMANDS)
    iq = alice.make_iq_set(ito='localhost')
    iq.append(ET.fromstring(
        "<command xmlns='%s' node='%s#find' sessionid='%s' action='complete'>"
        "<x xmlns='%s' type='submit'><field var='category'><value>school</value></field>"
        "</x></command>" % (NS_COMMANDS, NS, command.get('sessionid'), NS_DATA)))
    done = (await iq.send(timeout=5)).xml.find('{%s}command' % NS_COMMANDS)
    assert done.get('status') == 'completed', harness.tostring(done)
    found = [f.findtext('{%s}value' % NS_DATA) for f in done.iter('{%s}field' % NS_DATA)
             if f.get('var') == 'jid' and f.findtext('{%s}value' % NS_DATA)]
    assert found == [SCHOOL], harness.tostring(done)
    # The operator's badge, from vestnikctl on the running server.
    ctl('verify', BANK)
    rows = await search(alice, category='bank', verified='1')
    assert [(r['jid'], r['verified']) for r in rows] == [(BANK, '1')], rows
    assert await search(alice, category='shop', verified='1') == []
    listing = ctl('list')
    assert BANK in listing and 'verified' in listing, listing
    # A new name takes the badge away again.
    record = await publish(bank, BANK, 'Totally Other Bank', 'bank', 'Loans')
    assert record.get('verified') == 'false', ET.tostring(record)
    ctl('verify', BANK)
    await publish(bank, BANK, 'Totally Other Bank', 'bank', 'Accounts and loans')
    for c in (bank, school, shop):
        c.disconnect()
    await alice.close()


def test_consent_refusal_is_an_error_and_counted():
    asyncio.run(consent_refusal())


async def consent_refusal():
    shop = await AckingComponent(server, SHOP, 'shop-secret').start()
    bob = await harness.login(server, BOB + '/laptop', PASSWORD)
    shop.make_message(mto=BOB, mfrom='ads@' + SHOP, mbody='BUY NOW', mtype='chat').send()
    error = await asyncio.wait_for(shop.messages.get(), 5)
    assert error['type'] == 'error', error
    condition, text, app = error_of(error)
    assert (condition, app) == ('forbidden', 'not-started'), error
    assert 'not started' in text, error
    assert bob.messages.empty(), 'the unsolicited message was delivered'
    line = [l for l in ctl('list').splitlines() if l.startswith(SHOP)][0]
    assert 'refused=1' in line, line
    # Bob writes to the shop: now it may answer.
    bob.send_message(mto='orders@' + SHOP, mbody='my order?', mtype='chat')
    msg = await asyncio.wait_for(shop.messages.get(), 5)
    assert msg['body'] == 'my order?', msg
    shop.make_message(mto=BOB + '/laptop', mfrom='orders@' + SHOP, mbody='on its way',
                      mtype='chat').send()
    reply = await asyncio.wait_for(bob.messages.get(), 5)
    assert reply['body'] == 'on its way', reply
    # Flooding hits the per-service rate (burst 5, 1 a second).
    for i in range(8):
        shop.make_message(mto=BOB + '/laptop', mfrom='orders@' + SHOP, mbody='spam %d' % i,
                          mtype='chat').send()
    error = await asyncio.wait_for(shop.messages.get(), 5)
    assert error['type'] == 'error', error
    assert error_of(error)[::2] == ('policy-violation', 'rate-limited'), error
    # "My services": Bob sees the shop and stops it.
    iq = bob.make_iq_set(ito='localhost')
    iq.append(ET.fromstring("<command xmlns='%s' node='%s#mine' action='execute'/>"
                            % (NS_COMMANDS, NS)))
    command = (await iq.send(timeout=5)).xml.find('{%s}command' % NS_COMMANDS)
    texts = [f.findtext('{%s}value' % NS_DATA) for f in command.iter('{%s}field' % NS_DATA)
             if f.get('type') == 'fixed']
    assert any('Corner Shop' in t and 'started' in t for t in texts), texts
    iq = bob.make_iq_set(ito='localhost')
    iq.append(ET.fromstring(
        "<command xmlns='%s' node='%s#mine' sessionid='%s' action='complete'>"
        "<x xmlns='%s' type='submit'><field var='service'><value>%s</value></field>"
        "<field var='action'><value>stop</value></field></x></command>"
        % (NS_COMMANDS, NS, command.get('sessionid'), NS_DATA, SHOP)))
    done = (await iq.send(timeout=5)).xml.find('{%s}command' % NS_COMMANDS)
    assert done.get('status') == 'completed', harness.tostring(done)
    await asyncio.sleep(0.5)   # let the rate bucket refill a little
    shop.make_message(mto=BOB, mfrom='orders@' + SHOP, mbody='still there?', mtype='chat').send()
    while True:
        error = await asyncio.wait_for(shop.messages.get(), 5)
        if error['body'] == 'still there?':
            break
    assert error['type'] == 'error' and error_of(error)[2] == 'stopped', error
    # The operator's view of the shop's log: what it sent and had refused.
    log = ctl('log', SHOP, '30')
    assert '\t%s\trefused\tchat\t' % BOB in log, log
    assert '\t%s\tin\tchat\t' % BOB in log and '\t%s\tout\tchat\t' % BOB in log, log
    shop.disconnect()
    await bob.close()


def test_operator_suspends_and_resumes():
    asyncio.run(suspend())


async def suspend():
    ctl('suspend', SCHOOL)
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    items = await alice['xep_0030'].get_items(jid=DIRECTORY)
    assert SCHOOL not in [i[0] for i in items['disco_items']['items']], items
    school = await AckingComponent(server, SCHOOL, 'school-secret').start()
    alice.send_message(mto='diary@' + SCHOOL, mbody='hello', mtype='chat')
    await asyncio.wait_for(school.messages.get(), 5)
    school.make_message(mto=ALICE, mfrom='diary@' + SCHOOL, mbody='hi', mtype='chat').send()
    error = await asyncio.wait_for(school.messages.get(), 5)
    assert error_of(error)[2] == 'suspended', error
    ctl('resume', SCHOOL)
    school.make_message(mto=ALICE + '/phone', mfrom='diary@' + SCHOOL, mbody='hi again',
                        mtype='chat').send()
    msg = await asyncio.wait_for(alice.messages.get(), 5)
    assert msg['body'] == 'hi again', msg
    school.disconnect()
    await alice.close()


def test_profile_survives_restart_and_bad_input():
    server.stop()
    # vestnikctl works on the store of a stopped server too.
    assert [l.split('\t')[:4] for l in ctl('list').splitlines() if l.startswith(BANK)] == [
        [BANK, 'bank', 'Totally Other Bank', 'verified']]
    assert '\trefused\t' in ctl('log', SHOP)
    server.start()
    asyncio.run(after_restart())


async def after_restart():
    alice = await harness.login(server, ALICE + '/phone', PASSWORD)
    rows = await search(alice, category='bank')
    assert [(r['jid'], r['name'], r['verified']) for r in rows] == [
        (BANK, 'Totally Other Bank', '1')], rows
    # Bad input: a user is no service; a search without a form.
    iq = alice.make_iq_set(ito=DIRECTORY)
    iq.append(ET.fromstring("<profile xmlns='%s'><name>x</name><category>bank</category>"
                            "</profile>" % NS))
    try:
        await iq.send(timeout=5)
    except IqError as e:
        assert e.iq['error']['condition'] == 'forbidden', e.iq
    else:
        raise AssertionError('a user set a service profile')
    iq = alice.make_iq_set(ito=DIRECTORY)
    iq.append(ET.fromstring("<query xmlns='%s'/>" % NS_SEARCH))
    try:
        await iq.send(timeout=5)
    except IqError as e:
        assert e.iq['error']['condition'] == 'bad-request', e.iq
    else:
        raise AssertionError('a search without a form succeeded')
    await alice.close()


if __name__ == '__main__':
    harness.run([test_directory_search_by_category,
                 test_consent_refusal_is_an_error_and_counted,
                 test_operator_suspends_and_resumes,
                 test_profile_survives_restart_and_bad_input],
                server=server, setup=setup)
