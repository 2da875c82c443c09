#!/usr/bin/env python3
"""test_i18n.py - the server's texts in the reader's language.

The catalogs first: every text the sources mark for people (the keywords of
Makefile.am's VN_XGETTEXT_KEYWORDS, extracted here with xgettext as `make
update-po` does) is translated in po/en.po, ru.po, zh_CN.po and fa.po, each
catalog passes `msgfmt --check` (format strings match their msgid), and
every left-to-right run in a Persian text (a placeholder, an element name,
a protocol word) sits inside Unicode bidi isolates.

Then a real vestnikd answers in the language a client asks for: streams
opened with xml:lang='ru', 'zh' and 'fa' get stanza errors and stream
errors in Russian, Chinese and Persian (with xml:lang on the <text/>), a
stanza's own xml:lang wins over its stream's, and a stream without one gets
the configured `language`.
"""

import os
import re
import subprocess
import tempfile

import harness

D = harness.DOMAIN
PASSWORD = 'secret-password'
LANGS = ('en', 'ru', 'zh_CN', 'fa')
NS_PRIVATE = 'jabber:iq:private'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_STREAMS_ERR = 'urn:ietf:params:xml:ns:xmpp-streams'
XML_LANG = '{http://www.w3.org/XML/1998/namespace}lang'
FSI, PDI = '\u2068', '\u2069'

# What mod_private answers to a get that names no element, in each language.
NAME_THE_ELEMENT = {
    'ru': 'Укажите элемент, который нужно получить',
    'zh-CN': '请指定要获取的元素',
    'fa': 'عنصری را که باید گرفته شود نام ببرید',
    'en': 'Name the element to get',
}


def po_path(lang):
    return os.path.join(harness.srcdir(), 'po', lang + '.po')


def xgettext_keywords():
    """The keywords Makefile.am gives xgettext (one definition for both)."""
    with open(os.path.join(harness.srcdir(), 'Makefile.am')) as f:
        text = f.read()
    match = re.search(r'^VN_XGETTEXT_KEYWORDS\s*=((?:.*\\\n)*.*)$', text, re.M)
    assert match, 'VN_XGETTEXT_KEYWORDS is missing from Makefile.am'
    return match.group(1).replace('\\\n', ' ').split()


def extract_pot(path):
    src = harness.srcdir()
    sources = sorted(os.path.relpath(os.path.join(d, f), src)
                     for top in ('src', 'modules')
                     for d, _, files in os.walk(os.path.join(src, top))
                     for f in files if f.endswith('.c'))
    subprocess.run(['xgettext', '--from-code=UTF-8', '--language=C', '--no-wrap',
                    '-o', path] + xgettext_keywords() + sources,
                   cwd=src, check=True, capture_output=True)


def po_entries(lang):
    """(msgid, msgstr) of a catalog written with --no-wrap (one line each)."""
    out = subprocess.run(['msgcat', '--no-wrap', po_path(lang)], check=True,
                         capture_output=True, text=True).stdout
    pairs = re.findall(r'^msgid "((?:[^"\\]|\\.)*)"\nmsgstr "((?:[^"\\]|\\.)*)"', out, re.M)
    def unescape(text):
        return re.sub(r'\\(.)', lambda m: {'n': '\n', 't': '\t'}.get(m.group(1), m.group(1)),
                      text)
    return [(unescape(i), unescape(s)) for i, s in pairs if i]


def test_every_marked_text_is_translated_in_every_catalog():
    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, 'vestnik.pot')
        extract_pot(pot)
        problems = []
        for lang in LANGS:
            # msgcmp: every msgid of the sources has a translation here.
            run = subprocess.run(['msgcmp', po_path(lang), pot], capture_output=True, text=True)
            if run.returncode != 0:
                problems.append('%s.po:\n%s' % (lang, run.stderr))
        assert not problems, '\n'.join(problems) + '\n(run `make update-po` and translate)'


def test_catalogs_pass_msgfmt_check():
    for lang in LANGS:
        run = subprocess.run(['msgfmt', '--check', '-o', os.devnull, po_path(lang)],
                             capture_output=True, text=True)
        assert run.returncode == 0, '%s.po: %s' % (lang, run.stderr)
        fuzzy = subprocess.run(['msgattrib', '--only-fuzzy', po_path(lang)],
                               capture_output=True, text=True).stdout
        assert 'msgid' not in fuzzy, '%s.po has fuzzy entries:\n%s' % (lang, fuzzy)


def test_persian_isolates_left_to_right_runs():
    bad = []
    for msgid, msgstr in po_entries('fa'):
        outside = re.sub(FSI + '[^' + PDI + ']*' + PDI, '', msgstr)
        if re.search(r'[A-Za-z0-9%<>]', outside):
            bad.append('%r -> %r' % (msgid, msgstr))
        assert msgstr.count(FSI) == msgstr.count(PDI), msgstr
    assert not bad, 'LTR runs outside U+2068..U+2069 isolates:\n' + '\n'.join(bad)


class Server(harness.Server):
    """With private storage, and Russian for streams that name no language."""

    def write_config(self):
        super().write_config()
        with open(self.config_path, 'a') as f:
            f.write('  private:\nlanguage: ru\n')


SERVER = Server()
USERS = {}


def setup():
    for name in ('alice', 'bob'):
        SERVER.adduser('%s@%s' % (name, D), PASSWORD)


def logged_in(lang, user='alice'):
    stream = harness.RawStream(SERVER.c2s_port, lang=lang)
    stream.open()
    stream.login(user, PASSWORD)
    return stream


def error_text(stream, iq_lang=None):
    lang = " xml:lang='%s'" % iq_lang if iq_lang else ''
    stream.send("<iq type='get' id='p1'%s><query xmlns='%s'/></iq>" % (lang, NS_PRIVATE))
    iq = stream.expect(harness.qname(harness.NS_CLIENT, 'iq'))
    assert iq.get('type') == 'error', harness.tostring(iq)
    text = iq.find('{jabber:client}error/{%s}text' % NS_STANZAS)
    assert text is not None, harness.tostring(iq)
    return text.text, text.get(XML_LANG)


def check_stanza_error(stream_lang, want_lang):
    stream = logged_in(stream_lang)
    try:
        assert error_text(stream) == (NAME_THE_ELEMENT[want_lang], want_lang)
    finally:
        stream.close()


def test_stanza_error_in_russian():
    check_stanza_error('ru', 'ru')


def test_stanza_error_in_chinese():
    check_stanza_error('zh', 'zh-CN')
    check_stanza_error('zh-Hans-CN', 'zh-CN')


def test_stanza_error_in_persian():
    check_stanza_error('fa-IR', 'fa')


def test_stanza_error_in_english():
    check_stanza_error('en', 'en')


def test_stanza_lang_wins_over_the_stream():
    stream = logged_in('en')
    try:
        assert error_text(stream, iq_lang='fa') == (NAME_THE_ELEMENT['fa'], 'fa')
        assert error_text(stream) == (NAME_THE_ELEMENT['en'], 'en')
    finally:
        stream.close()


def test_stream_without_lang_gets_the_configured_language():
    check_stanza_error(None, 'ru')


def test_unknown_language_gets_the_configured_language():
    check_stanza_error('de', 'ru')


def test_stream_error_in_chinese():
    stream = harness.RawStream(SERVER.c2s_port, lang='zh')
    try:
        stream.open()
        stream.starttls()
        stream.auth_plain('bob', PASSWORD)
        stream.send("<message to='alice@%s'><body>hi</body></message>" % D)
        error = stream.expect_stream_error('not-authorized')
        text = error.find('{%s}text' % NS_STREAMS_ERR)
        assert text is not None and text.text == '请先绑定资源', harness.tostring(error)
        assert text.get(XML_LANG) == 'zh-CN'
    finally:
        stream.close()


if __name__ == '__main__':
    harness.run([test_every_marked_text_is_translated_in_every_catalog,
                 test_catalogs_pass_msgfmt_check,
                 test_persian_isolates_left_to_right_runs,
                 test_stanza_error_in_russian,
                 test_stanza_error_in_chinese,
                 test_stanza_error_in_persian,
                 test_stanza_error_in_english,
                 test_stanza_lang_wins_over_the_stream,
                 test_stream_without_lang_gets_the_configured_language,
                 test_unknown_language_gets_the_configured_language,
                 test_stream_error_in_chinese],
                server=SERVER, setup=setup)
