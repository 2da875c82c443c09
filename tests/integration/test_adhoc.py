#!/usr/bin/env python3
"""test_adhoc.py - the server's menu of Ad-Hoc Commands (XEP-0050).

A client lists the commands of the server's JID (disco#items of the
commands node, names in the request's language), looks one up (disco#info
of its node), runs "Language": the form offers each language by its own
name, the submitted choice is saved with a completed note, and a later
stream that names no xml:lang gets the server's texts in that language.
Sessions belong to the full JID that opened them, unknown ones are
bad-sessionid, cancel ends one, and a stranger's server gets no commands.
"""

import harness

D = harness.DOMAIN
PASSWORD = 'secret-password'
NS_COMMANDS = 'http://jabber.org/protocol/commands'
NS_DATA = 'jabber:x:data'
NS_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_INFO = 'http://jabber.org/protocol/disco#info'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
C = '{jabber:client}'


class Server(harness.Server):
    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  private:\n  adhoc:\n    max_sessions: 2\n')


SERVER = Server()


def setup():
    for name in ('alice', 'bob'):
        SERVER.adduser('%s@%s' % (name, D), PASSWORD)


def stream(user='alice', lang=None, resource=None):
    s = harness.RawStream(SERVER.c2s_port, lang=lang)
    s.open()
    s.login(user, PASSWORD, resource)
    return s


def iq(s, body, type_='set', lang=None, to=D):
    attr = " xml:lang='%s'" % lang if lang else ''
    attr += " to='%s'" % to if to else ''
    s.send("<iq type='%s' id='q'%s>%s</iq>" % (type_, attr, body))
    return s.expect(C + 'iq')


def execute(s, node='language', lang=None):
    reply = iq(s, "<command xmlns='%s' node='%s' action='execute'/>" % (NS_COMMANDS, node),
               lang=lang)
    assert reply.get('type') == 'result', harness.tostring(reply)
    return reply.find('{%s}command' % NS_COMMANDS)


def submit(s, sessionid, value, node='language'):
    return iq(s, "<command xmlns='%s' node='%s' sessionid='%s' action='complete'>"
                 "<x xmlns='%s' type='submit'><field var='language'><value>%s</value></field>"
                 "</x></command>" % (NS_COMMANDS, node, sessionid, NS_DATA, value))


def error_condition(reply):
    error = reply.find(C + 'error')
    assert reply.get('type') == 'error' and error is not None, harness.tostring(reply)
    return [child.tag.split('}')[1] for child in error if child.tag != '{%s}text' % NS_STANZAS]


def test_commands_are_listed_in_the_request_language():
    s = stream()
    try:
        reply = iq(s, "<query xmlns='%s' node='%s'/>" % (NS_ITEMS, NS_COMMANDS), 'get',
                   lang='ru')
        items = reply.findall('{%s}query/{%s}item' % (NS_ITEMS, NS_ITEMS))
        assert [(i.get('jid'), i.get('node'), i.get('name')) for i in items] == \
            [(D, 'language', 'Язык')], harness.tostring(reply)
        info = iq(s, "<query xmlns='%s' node='language'/>" % NS_INFO, 'get')
        identity = info.find('{%s}query/{%s}identity' % (NS_INFO, NS_INFO))
        assert identity.get('category') == 'automation' and identity.get('type') == 'command-node'
        features = [f.get('var') for f in info.findall('{%s}query/{%s}feature' % (NS_INFO, NS_INFO))]
        assert NS_COMMANDS in features and NS_DATA in features
        host = iq(s, "<query xmlns='%s'/>" % NS_INFO, 'get')
        assert NS_COMMANDS in [f.get('var') for f in
                               host.findall('{%s}query/{%s}feature' % (NS_INFO, NS_INFO))]
    finally:
        s.close()


def test_language_command_saves_the_choice():
    s = stream()
    try:
        command = execute(s, lang='zh')
        assert command.get('status') == 'executing', harness.tostring(command)
        form = command.find('{%s}x' % NS_DATA)
        assert form.get('type') == 'form'
        assert form.findtext('{%s}title' % NS_DATA) == '语言'
        options = {o.findtext('{%s}value' % NS_DATA): o.get('label')
                   for o in form.findall('{%s}field/{%s}option' % (NS_DATA, NS_DATA))}
        assert options == {'en': 'English', 'ru': 'Русский', 'zh-CN': '中文（简体）',
                           'fa': 'فارسی'}, options
        reply = submit(s, command.get('sessionid'), 'fa')
        done = reply.find('{%s}command' % NS_COMMANDS)
        assert done.get('status') == 'completed', harness.tostring(reply)
        note = done.find('{%s}note' % NS_COMMANDS)
        assert note.get('type') == 'info' and note.text == 'Language saved', harness.tostring(reply)
    finally:
        s.close()
    # A stream that names no language now gets Persian texts.
    s = stream()
    try:
        reply = iq(s, "<query xmlns='jabber:iq:private'/>", 'get', to=None)
        text = reply.find('%serror/{%s}text' % (C, NS_STANZAS))
        assert text.text == 'عنصری را که باید گرفته شود نام ببرید', harness.tostring(reply)
    finally:
        s.close()
    # One that names its language still gets that one.
    s = stream(lang='en')
    try:
        reply = iq(s, "<query xmlns='jabber:iq:private'/>", 'get', to=None)
        assert reply.find('%serror/{%s}text' % (C, NS_STANZAS)).text == 'Name the element to get'
    finally:
        s.close()


def test_a_value_not_offered_is_refused():
    s = stream()
    try:
        command = execute(s)
        done = submit(s, command.get('sessionid'), 'xx').find('{%s}command' % NS_COMMANDS)
        note = done.find('{%s}note' % NS_COMMANDS)
        assert done.get('status') == 'completed' and note.get('type') == 'error'
    finally:
        s.close()


def test_sessions_belong_to_their_full_jid():
    phone, laptop = stream(resource='phone'), stream(resource='laptop')
    try:
        command = execute(phone)
        reply = submit(laptop, command.get('sessionid'), 'ru')
        assert 'bad-sessionid' in error_condition(reply), harness.tostring(reply)
        reply = submit(phone, 'no-such-session', 'ru')
        assert error_condition(reply)[:2] == ['bad-request', 'bad-sessionid']
        reply = iq(phone, "<command xmlns='%s' node='language' sessionid='%s' action='cancel'/>"
                   % (NS_COMMANDS, command.get('sessionid')))
        assert reply.find('{%s}command' % NS_COMMANDS).get('status') == 'canceled'
        reply = submit(phone, command.get('sessionid'), 'ru')
        assert 'bad-sessionid' in error_condition(reply)
    finally:
        phone.close()
        laptop.close()


def test_open_sessions_are_bounded():
    s = stream()
    try:
        execute(s)
        execute(s)
        reply = iq(s, "<command xmlns='%s' node='language' action='execute'/>" % NS_COMMANDS)
        assert error_condition(reply)[0] == 'resource-constraint', harness.tostring(reply)
    finally:
        s.close()


def test_unknown_command_is_item_not_found():
    s = stream()
    try:
        reply = iq(s, "<command xmlns='%s' node='no-such' action='execute'/>" % NS_COMMANDS)
        assert error_condition(reply)[0] == 'item-not-found'
    finally:
        s.close()


if __name__ == '__main__':
    harness.run([test_commands_are_listed_in_the_request_language,
                 test_language_command_saves_the_choice,
                 test_a_value_not_offered_is_refused,
                 test_sessions_belong_to_their_full_jid,
                 test_open_sessions_are_bounded,
                 test_unknown_command_is_item_not_found],
                server=SERVER, setup=setup)
