#!/usr/bin/env python3
"""test_i18n_forms.py - forms, server messages and vestnikctl in the reader's language.

test_i18n checks the catalogs and the error texts; this one checks the other
texts the server writes for people, from a real vestnikd over real streams:
the MUC room configuration form (XEP-0045 §10.2) asked for on a Russian
stream, and on the same stream by an iq in Persian; the in-band registration
form (XEP-0077) on a Chinese stream, submitted back as a data form; a voice
request that reaches a Russian moderator as a Russian form while the visitor
writes English; an invitation's body in the inviter's language; the MUC
service's name in disco#items and disco#info; a stream error of the XML
parser in Persian; and vestnikctl's messages under LANGUAGE=ru with the
build's catalogs (the config's locale_dir), English in the C locale.
"""

import os
import subprocess

import harness

D = harness.DOMAIN
MUC = 'conference.' + D
PASSWORD = 'forms-password'
NS_DATA = 'jabber:x:data'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_OWNER = NS_MUC + '#owner'
NS_USER = NS_MUC + '#user'
NS_REQUEST = NS_MUC + '#request'
NS_REGISTER = 'jabber:iq:register'
NS_DISCO = 'http://jabber.org/protocol/disco'
FSI, PDI = '\u2068', '\u2069'


class Server(harness.Server):
    """With registration, presence and the MUC service."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  roster:\n  presence:\n  muc:\n'
                    '  register:\n    allow_registration: true\n')


SERVER = Server()


def setup():
    for name in ('alice', 'bob', 'carol'):
        SERVER.adduser('%s@%s' % (name, D), PASSWORD)


def logged_in(user, lang):
    stream = harness.RawStream(SERVER.c2s_port, lang=lang)
    stream.open()
    stream.login(user, PASSWORD, 'forms')
    stream.send('<presence/>')
    return stream


def expect_stanza(stream, name, pred=lambda e: True):
    """The next stanza called name that pred accepts (others are skipped)."""
    for _ in range(50):
        elem = stream.next_element()
        if elem.tag == harness.qname(harness.NS_CLIENT, name) and pred(elem):
            return elem
    raise AssertionError('no matching <%s/>' % name)


def join(stream, room, nick):
    stream.send("<presence to='%s/%s'><x xmlns='%s'/></presence>" % (room, nick, NS_MUC))
    return expect_stanza(stream, 'presence', lambda p: p.get('from') == '%s/%s' % (room, nick))


def iq(stream, iq_type, to, payload, iq_id, lang=None):
    lang_attr = " xml:lang='%s'" % lang if lang else ''
    stream.send("<iq type='%s' to='%s' id='%s'%s>%s</iq>" % (iq_type, to, iq_id, lang_attr,
                                                             payload))
    reply = expect_stanza(stream, 'iq', lambda e: e.get('id') == iq_id)
    assert reply.get('type') == 'result', harness.tostring(reply)
    return reply


def fields(form):
    return {f.get('var'): f for f in form.findall('{%s}field' % NS_DATA)}


def config_form(stream, room, iq_id, lang=None):
    reply = iq(stream, 'get', room, "<query xmlns='%s'/>" % NS_OWNER, iq_id, lang)
    return reply.find('{%s}query/{%s}x' % (NS_OWNER, NS_DATA))


def submit_config(stream, room, values, iq_id):
    inner = "<field var='FORM_TYPE'><value>%s#roomconfig</value></field>" % NS_MUC + ''.join(
        "<field var='%s'><value>%s</value></field>" % item for item in values.items())
    iq(stream, 'set', room, "<query xmlns='%s'><x xmlns='%s' type='submit'>%s</x></query>"
       % (NS_OWNER, NS_DATA, inner), iq_id)


def test_room_configuration_form_in_russian_and_persian():
    room = 'salon@' + MUC
    alice = logged_in('alice', 'ru')
    try:
        join(alice, room, 'Alice')
        form = config_form(alice, room, 'c1')
        assert form.findtext('{%s}title' % NS_DATA) == 'Настройка комнаты', harness.tostring(form)
        f = fields(form)
        assert f['muc#roomconfig_persistentroom'].get('label') == 'Постоянная'
        assert f['muc#roomconfig_maxusers'].get('label') == 'Максимальное число участников'
        options = {o.findtext('{%s}value' % NS_DATA): o.get('label')
                   for o in f['muc#roomconfig_allowpm'].findall('{%s}option' % NS_DATA)}
        assert options == {'anyone': 'Все', 'participants': 'Участники с правом голоса',
                           'moderators': 'Модераторы', 'none': 'Никто'}, options
        # the values are the protocol's, whatever the language
        assert f['muc#roomconfig_whois'].findtext('{%s}value' % NS_DATA) == 'moderators'

        # an iq's own xml:lang wins over the stream's
        form = config_form(alice, room, 'c2', lang='fa')
        assert form.findtext('{%s}title' % NS_DATA) == 'پیکربندی اتاق'
        label = fields(form)['muc#roomconfig_whois'].get('label')
        assert label == 'چه کسی %sJID%sهای واقعی را می‌بیند' % (FSI, PDI), label
    finally:
        alice.close()


def test_registration_form_in_chinese_submitted_as_a_data_form():
    stream = harness.RawStream(SERVER.c2s_port, lang='zh')
    try:
        stream.open()
        stream.starttls()
        stream.send("<iq type='get' id='r1'><query xmlns='%s'/></iq>" % NS_REGISTER)
        reply = stream.expect(harness.qname(harness.NS_CLIENT, 'iq'))
        query = reply.find('{%s}query' % NS_REGISTER)
        assert query.findtext('{%s}instructions' % NS_REGISTER) == '请为此服务器选择用户名和密码。'
        form = query.find('{%s}x' % NS_DATA)
        assert form.findtext('{%s}title' % NS_DATA) == '注册账户', harness.tostring(form)
        f = fields(form)
        assert f['username'].get('label') == '用户名' and f['password'].get('label') == '密码'
        assert f['username'].find('{%s}required' % NS_DATA) is not None

        stream.send("<iq type='set' id='r2'><query xmlns='%s'><x xmlns='%s' type='submit'>"
                    "<field var='FORM_TYPE'><value>%s</value></field>"
                    "<field var='username'><value>dmitri</value></field>"
                    "<field var='password'><value>dmitri-password</value></field>"
                    "</x></query></iq>" % (NS_REGISTER, NS_DATA, NS_REGISTER))
        reply = stream.expect(harness.qname(harness.NS_CLIENT, 'iq'))
        assert reply.get('type') == 'result', harness.tostring(reply)
        stream.auth_plain('dmitri', 'dmitri-password')
        assert stream.bind('zh') == 'dmitri@%s/zh' % D
    finally:
        stream.close()


def test_voice_request_reaches_a_moderator_in_their_language():
    room = 'tribune@' + MUC
    alice = logged_in('alice', 'ru')
    bob = logged_in('bob', 'en')
    try:
        join(alice, room, 'Alice')
        submit_config(alice, room, {'muc#roomconfig_moderatedroom': '1'}, 'v1')
        join(bob, room, 'Bob')  # a visitor in a moderated room
        bob.send("<message to='%s'><x xmlns='%s' type='submit'>"
                 "<field var='FORM_TYPE'><value>%s</value></field>"
                 "<field var='muc#role' type='list-single'><value>participant</value></field>"
                 "</x></message>" % (room, NS_DATA, NS_REQUEST))
        msg = expect_stanza(alice, 'message', lambda m: m.find('{%s}x' % NS_DATA) is not None)
        form = msg.find('{%s}x' % NS_DATA)
        assert form.findtext('{%s}title' % NS_DATA) == 'Запрос права голоса', (
            harness.tostring(msg))
        assert fields(form)['muc#request_allow'].get('label') == 'Дать этому человеку право голоса?'
    finally:
        alice.close()
        bob.close()


def test_invitation_body_in_the_inviters_language():
    room = 'gostinaya@' + MUC
    alice = logged_in('alice', 'ru')
    carol = logged_in('carol', 'en')
    try:
        join(alice, room, 'Alice')
        submit_config(alice, room, {}, 'i1')
        alice.send("<message to='%s'><x xmlns='%s'><invite to='carol@%s'>"
                   "<reason>чай</reason></invite></x></message>" % (room, NS_USER, D))
        msg = expect_stanza(carol, 'message', lambda m: m.get('from') == room)
        body = msg.findtext('{%s}body' % harness.NS_CLIENT)
        assert body == 'alice@%s приглашает вас в комнату %s: чай' % (D, room), body
    finally:
        alice.close()
        carol.close()


def test_service_names_in_russian():
    stream = logged_in('alice', 'ru')
    try:
        reply = iq(stream, 'get', D, "<query xmlns='%s#items'/>" % NS_DISCO, 'd1')
        names = {i.get('jid'): i.get('name')
                 for i in reply.iter('{%s#items}item' % NS_DISCO)}
        assert names.get(MUC) == 'Комнаты для бесед', names
        reply = iq(stream, 'get', MUC, "<query xmlns='%s#info'/>" % NS_DISCO, 'd2')
        identity = reply.find('{%s#info}query/{%s#info}identity' % (NS_DISCO, NS_DISCO))
        assert identity.get('name') == 'Комнаты для бесед', harness.tostring(reply)
    finally:
        stream.close()


def test_xml_parser_stream_error_in_persian():
    stream = harness.RawStream(SERVER.c2s_port, lang='fa')
    try:
        stream.open()
        stream.features()
        stream.send('<!-- a comment -->')
        error = stream.expect_stream_error('restricted-xml')
        text = error.find('{urn:ietf:params:xml:ns:xmpp-streams}text')
        assert text is not None and text.text == 'توضیحات (%scomment%s) مجاز نیستند' % (
            FSI, PDI), harness.tostring(error)
        assert text.get('{http://www.w3.org/XML/1998/namespace}lang') == 'fa'
    finally:
        stream.close()


def ctl(env_lang, *args):
    env = dict(os.environ, LC_ALL='C.UTF-8')
    env.pop('LANG', None)
    env.pop('LANGUAGE', None)
    if env_lang:
        env['LANGUAGE'] = env_lang
    else:
        env['LC_ALL'] = 'C'
    return subprocess.run([SERVER.ctl, '-c', SERVER.config_path, *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_vestnikctl_speaks_the_users_language():
    run = ctl('ru', 'adduser', 'not-an-account')
    assert run.returncode == 2, run
    assert run.stderr == 'vestnikctl: not-an-account — не JID учётной записи (user@host)\n', (
        run.stderr)
    run = ctl('zh_CN', 'deluser', 'nobody@example.net')
    assert run.stderr == 'vestnikctl：example.net 不是 %s 中的主机\n' % SERVER.config_path, (
        run.stderr)
    # the C locale (as the other tests run it): English
    run = ctl(None, 'adduser', 'not-an-account')
    assert run.stderr.startswith(
        'vestnikctl: not-an-account is not an account JID (user@host)\n'), run.stderr


if __name__ == '__main__':
    harness.run([test_room_configuration_form_in_russian_and_persian,
                 test_registration_form_in_chinese_submitted_as_a_data_form,
                 test_voice_request_reaches_a_moderator_in_their_language,
                 test_invitation_body_in_the_inviters_language,
                 test_service_names_in_russian,
                 test_xml_parser_stream_error_in_persian,
                 test_vestnikctl_speaks_the_users_language],
                server=SERVER, setup=setup)
