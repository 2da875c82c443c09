#!/usr/bin/env python3
"""test_register.py - in-band registration (XEP-0077) against a real vestnikd.

Registration before authentication on raw streams (features, form, create,
conflict, refusals, the per-address hourly limit), a server where it is
off, and, after authentication, password change and account removal with
slixmpp. The tests share one server and one client address, so they run in
order: the rate-limit test counts the registrations made before it.
"""

import asyncio
import xml.etree.ElementTree as ET

import harness

NS_REGISTER = 'jabber:iq:register'
NS_REGISTER_FEATURE = 'http://jabber.org/features/iq-register'
REGISTRATIONS_PER_HOUR = 3
PASSWORD = 'secret-password'


class Server(harness.Server):
    """The harness's server with mod_register configured as given."""

    def __init__(self, register_options=''):
        self.register_options = register_options
        super().__init__()

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  register:\n' + self.register_options)


server = Server('    allow_registration: true\n'
                '    registrations_per_ip_per_hour: %d\n'
                '    min_password_length: 8\n' % REGISTRATIONS_PER_HOUR)


def setup():
    server.adduser('erin@' + harness.DOMAIN, PASSWORD)
    server.adduser('frank@' + harness.DOMAIN, PASSWORD)


def open_unauthenticated(srv):
    """A STARTTLS'd stream before authentication; returns it and its features."""
    stream = harness.RawStream(srv.c2s_port)
    stream.open()
    return stream, stream.starttls()


def register_iq(stream, iq_type, iq_id, payload=''):
    stream.send("<iq type='%s' id='%s'><query xmlns='%s'>%s</query></iq>"
                % (iq_type, iq_id, NS_REGISTER, payload))
    reply = stream.expect(harness.qname(harness.NS_CLIENT, 'iq'))
    assert reply.get('id') == iq_id, harness.tostring(reply)
    return reply


def create(stream, user, password, iq_id='reg'):
    return register_iq(stream, 'set', iq_id, '<username>%s</username><password>%s</password>'
                       % (user, password))


def error_condition(reply):
    assert reply.get('type') == 'error', harness.tostring(reply)
    error = reply.find(harness.qname(harness.NS_CLIENT, 'error'))
    conditions = [c.tag.split('}')[1] for c in error
                  if c.tag.startswith('{%s}' % harness.NS_STANZA_ERRORS)
                  and not c.tag.endswith('}text')]
    return error.get('type'), conditions


def assert_no_password_echoed(reply):
    assert reply.find('.//' + harness.qname(NS_REGISTER, 'password')) is None, (
        harness.tostring(reply))


def plain_auth_fails(srv, user, password):
    stream, _ = open_unauthenticated(srv)
    token = harness.b64(b'\0' + user.encode() + b'\0' + password.encode())
    stream.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (harness.NS_SASL, token))
    conditions = stream.sasl_failure()
    stream.close()
    return conditions == ['not-authorized']


# ------------------------------------------------------- before authentication

def test_register_feature_form_and_account_creation():
    stream, features = open_unauthenticated(server)
    assert features.find(harness.qname(NS_REGISTER_FEATURE, 'register')) is not None, (
        harness.tostring(features))
    form = register_iq(stream, 'get', 'form')
    assert form.get('type') == 'result', harness.tostring(form)
    query = form.find(harness.qname(NS_REGISTER, 'query'))
    fields = [child.tag for child in query]
    assert fields == [harness.qname(NS_REGISTER, name)
                      for name in ('instructions', 'username', 'password')] + [
                          '{jabber:x:data}x'], fields
    # the same fields as a data form (XEP-0077 §6), for clients that show forms
    x = query.find('{jabber:x:data}x')
    assert [f.get('var') for f in x.findall('{jabber:x:data}field')] == [
        'FORM_TYPE', 'username', 'password'], harness.tostring(x)

    reply = create(stream, 'Gina', 'gina-password')
    assert reply.get('type') == 'result', harness.tostring(reply)
    # the new account logs in on the same stream, with its canonical name
    stream.auth_plain('gina', 'gina-password')
    assert stream.bind('new') == 'gina@%s/new' % harness.DOMAIN
    stream.close()


def test_existing_username_is_a_conflict():
    stream, _ = open_unauthenticated(server)
    reply = create(stream, 'erin', 'another-password')
    assert error_condition(reply) == ('cancel', ['conflict']), harness.tostring(reply)
    assert_no_password_echoed(reply)
    stream.close()
    assert plain_auth_fails(server, 'erin', 'another-password')


def test_missing_or_invalid_fields_are_not_acceptable():
    stream, _ = open_unauthenticated(server)
    for n, payload in enumerate([
            '<username>hank</username>',
            '<username>hank</username><password/>',
            '<username>hank</username><password>short</password>',
            '<password>long-enough-password</password>',
            '<username>bad@name</username><password>long-enough-password</password>',
            '<username></username><password>long-enough-password</password>']):
        reply = register_iq(stream, 'set', 'bad%d' % n, payload)
        assert error_condition(reply) == ('modify', ['not-acceptable']), (
            payload, harness.tostring(reply))
        assert_no_password_echoed(reply)
    stream.close()


def test_other_requests_before_authentication_close_the_stream():
    stream, _ = open_unauthenticated(server)
    stream.send("<iq type='get' id='v'><query xmlns='jabber:iq:version'/></iq>")
    stream.expect_stream_error('not-authorized')


def test_registrations_per_address_are_limited():
    # one registration was made by the first test
    for n in range(1, REGISTRATIONS_PER_HOUR):
        stream, _ = open_unauthenticated(server)
        reply = create(stream, 'user%d' % n, PASSWORD)
        assert reply.get('type') == 'result', harness.tostring(reply)
        stream.close()
    stream, _ = open_unauthenticated(server)
    reply = create(stream, 'one-too-many', PASSWORD)
    assert error_condition(reply) == ('wait', ['policy-violation']), harness.tostring(reply)
    stream.close()
    assert plain_auth_fails(server, 'one-too-many', PASSWORD)


def test_registration_off_by_default():
    closed = Server()
    closed.start()
    try:
        stream, features = open_unauthenticated(closed)
        assert features.find(harness.qname(NS_REGISTER_FEATURE, 'register')) is None, (
            harness.tostring(features))
        for iq_type, payload in (('get', ''),
                                 ('set', '<username>ivy</username><password>%s</password>'
                                  % PASSWORD)):
            reply = register_iq(stream, iq_type, iq_type, payload)
            assert error_condition(reply) == ('cancel', ['service-unavailable']), (
                harness.tostring(reply))
        stream.close()
        assert plain_auth_fails(closed, 'ivy', PASSWORD)
    finally:
        closed.stop()
        closed.kill9()


# -------------------------------------------------------- after authentication

def register_query(client, *children):
    iq = client.make_iq_set()
    query = ET.SubElement(iq.xml, '{%s}query' % NS_REGISTER)
    for name, text in children:
        ET.SubElement(query, '{%s}%s' % (NS_REGISTER, name)).text = text
    return iq


async def test_password_change_then_login_with_the_new_password():
    erin = await harness.login(server, 'erin@%s/desk' % harness.DOMAIN, PASSWORD)
    info = erin.make_iq_get()
    ET.SubElement(info.xml, '{%s}query' % NS_REGISTER)
    reply = await info.send()
    query = reply.xml.find('{%s}query' % NS_REGISTER)
    assert query.find('{%s}registered' % NS_REGISTER) is not None, reply
    assert query.findtext('{%s}username' % NS_REGISTER) == 'erin', reply

    for children, condition in (
            ((('username', 'frank'), ('password', 'frank-is-mine')), 'forbidden'),
            ((('username', 'erin'), ('password', 'short')), 'not-acceptable'),
            ((('username', 'erin'), ('password', '')), 'bad-request')):
        error = await erin.iq_error(register_query(erin, *children))
        assert error['error']['condition'] == condition, (children, error)
        assert 'frank-is-mine' not in str(error), error

    await register_query(erin, ('username', 'erin'), ('password', 'new-password')).send()
    await erin.close()
    again = await harness.login(server, 'erin@%s/desk' % harness.DOMAIN, 'new-password')
    await again.close()
    assert plain_auth_fails(server, 'erin', PASSWORD)
    assert plain_auth_fails(server, 'frank', 'frank-is-mine')


async def test_account_removal_closes_the_session_and_the_account():
    frank = await harness.login(server, 'frank@%s/desk' % harness.DOMAIN, PASSWORD)
    removal = frank.make_iq_set()
    query = ET.SubElement(removal.xml, '{%s}query' % NS_REGISTER)
    ET.SubElement(query, '{%s}remove' % NS_REGISTER)
    reply = await removal.send()
    assert reply['type'] == 'result', reply
    await asyncio.wait_for(frank.disconnected_event.wait(), 5)
    assert plain_auth_fails(server, 'frank', PASSWORD)


if __name__ == '__main__':
    harness.run([test_register_feature_form_and_account_creation,
                 test_existing_username_is_a_conflict,
                 test_missing_or_invalid_fields_are_not_acceptable,
                 test_other_requests_before_authentication_close_the_stream,
                 test_registrations_per_address_are_limited,
                 test_registration_off_by_default,
                 test_password_change_then_login_with_the_new_password,
                 test_account_removal_closes_the_session_and_the_account],
                server=server, setup=setup)
