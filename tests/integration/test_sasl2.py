#!/usr/bin/env python3
"""test_sasl2.py - the login methods: SASL2 (XEP-0388), Bind 2 (XEP-0386),
FAST (XEP-0484), and which mechanisms each transport offers.

TCP streams offer SCRAM-*-PLUS with their XEP-0440 channel binding types;
WebSocket and BOSH do not, because a browser cannot bind to the TLS
channel and web clients that pick -PLUS when offered then fail
(c2s.web_channel_binding turns it on); PLAIN is offered on both, over
https. SASL2 is driven with raw streams (its failures, -PLUS downgrade
protection, Bind 2 enabling carbons, CSI and stream management, FAST
tokens: rotation, reuse, binding to the client instance and mechanism,
replay counts, invalidation, a password change) and with a real client
library, xmpp.js, when VN_XMPP_JS_DIR is set.
"""

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import socket
import struct
import subprocess
import time
import xml.etree.ElementTree as ET

import harness
from harness import NS_SASL, NS_STREAM, qname, tostring

D = harness.DOMAIN
PASSWORD = 'secret-password'
NS_SASL_CB = 'urn:xmpp:sasl-cb:0'
NS_HTTPBIND = 'http://jabber.org/protocol/httpbind'
NS_XBOSH = 'urn:xmpp:xbosh'
NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'
NS_SASL2 = 'urn:xmpp:sasl:2'
NS_BIND2 = 'urn:xmpp:bind:0'
NS_FAST = 'urn:xmpp:fast:0'
NS_SM = 'urn:xmpp:sm:3'
NS_CARBONS = 'urn:xmpp:carbons:2'
NS_CSI = 'urn:xmpp:csi:0'


class Server(harness.Server):
    """The harness server with an https listener, carbons and CSI, and a
    FAST token rotated at every use (auth.fast_rotate_after: 0)."""

    def __init__(self, **kwargs):
        self.https_port, = harness.free_ports(1)
        super().__init__(**kwargs)

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('c2s:\n', f"""  - type: https
    address: 127.0.0.1
    port: {self.https_port}
c2s:
""", 1)
        text = text.replace('limits:\n', 'auth:\n  fast_rotate_after: 0\nlimits:\n', 1)
        text = text.replace('modules:\n', 'modules:\n  carbons:\n  csi:\n', 1)
        with open(self.config_path, 'w') as f:
            f.write(text)


# Every test fails logins on purpose, all from 127.0.0.1: no back-off here
# (test_login_policy.py has it).
server = Server(limits_options={'login_max_failures': 0})


def setup():
    for user in ('alice', 'bob', 'carol', 'dave'):
        server.adduser('%s@%s' % (user, D), PASSWORD)


def mechanisms(features, ns=NS_SASL):
    return [m.text for m in features.iter(qname(ns, 'mechanism'))]


def cb_types(features):
    return [c.get('type') for c in features.iter(qname(NS_SASL_CB, 'channel-binding'))]


def bosh_post(body):
    conn = http.client.HTTPSConnection('127.0.0.1', server.https_port, timeout=10,
                                       context=harness.insecure_tls_context())
    try:
        conn.request('POST', '/http-bind', body=body,
                     headers={'Content-Type': 'text/xml; charset=utf-8'})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    assert response.status == 200, (response.status, data)
    return ET.fromstring(data)


def bosh_session():
    """A new BOSH session (XEP-0206): (sid, rid, its stream features)."""
    rid = random.randrange(1 << 20, 1 << 40)
    reply = bosh_post("<body xmlns='%s' rid='%d' to='%s' wait='2' hold='1' ver='1.6'"
                      " xmlns:xmpp='%s' xmpp:version='1.0'/>" % (NS_HTTPBIND, rid, D, NS_XBOSH))
    features = reply.find(qname(NS_STREAM, 'features'))
    assert features is not None, ET.tostring(reply)
    return reply.get('sid'), rid, features


def bosh_features():
    return bosh_session()[2]


class WebSocket:
    """Just enough of a WebSocket client (RFC 6455, RFC 7395) for a login:
    text frames each carrying one element."""

    def __init__(self):
        raw = socket.create_connection(('127.0.0.1', server.https_port), timeout=10)
        self.sock = harness.insecure_tls_context().wrap_socket(raw, server_hostname=D)
        self.buffer = b''
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(('GET /xmpp-websocket HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n'
                           'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
                           'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n'
                           % (D, key)).encode())
        while b'\r\n\r\n' not in self.buffer:
            self._read()
        head, self.buffer = self.buffer.split(b'\r\n\r\n', 1)
        assert head.startswith(b'HTTP/1.1 101'), head

    def _read(self):
        data = self.sock.recv(65536)
        assert data, 'WebSocket connection closed'
        self.buffer += data

    def _need(self, count):
        while len(self.buffer) < count:
            self._read()

    def send(self, xml):
        payload = xml.encode()
        mask = os.urandom(4)
        length = (bytes([0x80 | len(payload)]) if len(payload) < 126
                  else bytes([0x80 | 126]) + struct.pack('!H', len(payload)))
        self.sock.sendall(bytes([0x81]) + length + mask +
                          bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self):
        self._need(2)
        length, offset = self.buffer[1] & 0x7f, 2
        if length == 126:
            self._need(4)
            length, offset = struct.unpack('!H', self.buffer[2:4])[0], 4
        self._need(offset + length)
        payload = self.buffer[offset:offset + length]
        self.buffer = self.buffer[offset + length:]
        return ET.fromstring(payload.decode())

    def features(self):
        self.send("<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, D))
        assert self.recv().tag == qname(NS_FRAMING, 'open')
        features = self.recv()
        assert features.tag == qname(NS_STREAM, 'features'), tostring(features)
        return features

    def close(self):
        self.sock.close()


def websocket_features():
    ws = WebSocket()
    try:
        return ws.features()
    finally:
        ws.close()


def tcp_features():
    s = harness.RawStream(server.c2s_port)
    try:
        s.open()
        return s.starttls()
    finally:
        s.close()


def test_web_transports_offer_no_channel_binding():
    tcp = tcp_features()
    assert mechanisms(tcp)[:2] == ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'], tostring(tcp)
    assert cb_types(tcp) == ['tls-exporter', 'tls-server-end-point'], tostring(tcp)
    for web in (websocket_features(), bosh_features()):
        assert mechanisms(web) == ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'], tostring(web)
        assert cb_types(web) == [], tostring(web)


# ---------------------------------------------------------------- SASL2 raw

def tls_stream():
    """A stream past STARTTLS: (stream, features)."""
    s = harness.RawStream(server.c2s_port)
    s.open()
    return s, s.starttls()


def b64(data):
    return base64.b64encode(data).decode()


def authenticate(s, mechanism, initial=None, children=''):
    inner = '<initial-response>%s</initial-response>' % b64(initial) if initial is not None else ''
    s.send("<authenticate xmlns='%s' mechanism='%s'>%s%s</authenticate>"
           % (NS_SASL2, mechanism, inner, children))
    return s.next_element()


def plain(user, password):
    return b'\0' + user.encode() + b'\0' + password.encode()


def condition(failure):
    assert failure.tag == qname(NS_SASL2, 'failure'), tostring(failure)
    return [c.tag.split('}')[1] for c in failure if c.tag.startswith('{%s}' % NS_SASL)]


def user_agent(ua_id):
    return ("<user-agent id='%s'><software>test_sasl2</software><device>raw</device>"
            "</user-agent>" % ua_id)


def ht_initial(user, token):
    return user.encode() + b'\0' + hmac.new(token.encode(), b'Initiator', hashlib.sha256).digest()


def fast_login(user, token, ua_id, mechanism='HT-SHA-256-NONE', fast_attrs='', extra=''):
    """A FAST login on a new stream: ('success', <success/>) or
    ('failure', its conditions)."""
    s, _ = tls_stream()
    try:
        el = authenticate(s, mechanism, ht_initial(user, token),
                          user_agent(ua_id) + "<fast xmlns='%s'%s/>" % (NS_FAST, fast_attrs) + extra)
        if el.tag == qname(NS_SASL2, 'failure'):
            return 'failure', condition(el)
        assert el.tag == qname(NS_SASL2, 'success'), tostring(el)
        responder = hmac.new(token.encode(), b'Responder', hashlib.sha256).digest()
        assert el.findtext(qname(NS_SASL2, 'additional-data')) == b64(responder), tostring(el)
        return 'success', el
    finally:
        s.close()


def token_of(success):
    el = success.find(qname(NS_FAST, 'token'))
    assert el is not None, tostring(success)
    assert len(el.get('token')) >= 64 and el.get('expiry', '').endswith('Z'), tostring(el)
    return el.get('token')


def request_token(user, ua_id):
    """A password login (PLAIN in SASL2) asking for a FAST token."""
    s, _ = tls_stream()
    try:
        el = authenticate(s, 'PLAIN', plain(user, PASSWORD),
                          user_agent(ua_id) +
                          "<request-token xmlns='%s' mechanism='HT-SHA-256-NONE'/>" % NS_FAST)
        assert el.tag == qname(NS_SASL2, 'success'), tostring(el)
        return token_of(el)
    finally:
        s.close()


def test_sasl2_feature_lists_the_same_mechanisms_and_inline_features():
    s, features = tls_stream()
    s.close()
    auth = features.find(qname(NS_SASL2, 'authentication'))
    assert auth is not None, tostring(features)
    assert mechanisms(auth, NS_SASL2) == mechanisms(features), tostring(features)
    inline = auth.find(qname(NS_SASL2, 'inline'))
    bind_features = [f.get('var') for f in inline.iter(qname(NS_BIND2, 'feature'))]
    assert sorted(bind_features) == sorted([NS_SM, NS_CARBONS, NS_CSI]), tostring(inline)
    fast = [m.text for m in inline.iter(qname(NS_FAST, 'mechanism'))]
    assert fast == ['HT-SHA-256-EXPR', 'HT-SHA-256-ENDP', 'HT-SHA-256-NONE'], tostring(inline)


def test_sasl2_scram_with_bind2_enabling_carbons_csi_and_sm():
    s, _ = tls_stream()
    scram = harness.Scram('sha256', 'alice', PASSWORD)
    challenge = authenticate(s, 'SCRAM-SHA-256', scram.client_first(),
                             user_agent('a1b2') +
                             "<bind xmlns='%s'><tag>Raw</tag><enable xmlns='%s'/>"
                             "<inactive xmlns='%s'/><enable xmlns='%s' resume='true'/></bind>"
                             % (NS_BIND2, NS_CARBONS, NS_CSI, NS_SM))
    assert challenge.tag == qname(NS_SASL2, 'challenge'), tostring(challenge)
    final = scram.client_final(base64.b64decode(challenge.text))
    s.send("<response xmlns='%s'>%s</response>" % (NS_SASL2, b64(final)))
    success = s.expect(qname(NS_SASL2, 'success'))
    scram.verify_server_final(base64.b64decode(success.findtext(qname(NS_SASL2,
                                                                       'additional-data'))))
    jid = success.findtext(qname(NS_SASL2, 'authorization-identifier'))
    assert jid.startswith('alice@%s/Raw/' % D) and len(jid.split('/')[2]) == 12, jid
    bound = success.find(qname(NS_BIND2, 'bound'))
    enabled = bound.find(qname(NS_SM, 'enabled'))
    assert enabled is not None and enabled.get('resume') == 'true', tostring(success)
    # No restart: the features of the bound stream follow, without bind or sm.
    features = s.features()
    assert features.find(qname(harness.NS_BIND, 'bind')) is None, tostring(features)
    assert features.find(qname(NS_SM, 'sm')) is None, tostring(features)
    s.send("<iq type='get' id='p1' to='%s'><ping xmlns='urn:xmpp:ping'/></iq><r xmlns='%s'/>"
           % (D, NS_SM))
    assert s.expect(qname(harness.NS_CLIENT, 'iq')).get('id') == 'p1'
    el = s.next_element()
    if el.tag == qname(NS_SM, 'r'):  # the server asks about its iq result
        el = s.next_element()
    assert el.tag == qname(NS_SM, 'a') and el.get('h') == '1', tostring(el)
    log = server.log_text()
    assert 'authenticated alice@%s with SCRAM-SHA-256 (SASL2; software test_sasl2, device raw)' \
        % D in log
    assert 'carbons: enable for %s (Bind 2)' % jid in log
    assert 'csi: %s is inactive' % jid in log
    # The same client instance gets the same resource next time.
    s.close()
    t, _ = tls_stream()
    success = authenticate(t, 'PLAIN', plain('alice', PASSWORD),
                           user_agent('a1b2') + "<bind xmlns='%s'><tag>Raw</tag></bind>" % NS_BIND2)
    assert success.findtext(qname(NS_SASL2, 'authorization-identifier')) == jid
    t.close()


def test_sasl2_failures():
    s, _ = tls_stream()
    assert condition(authenticate(s, 'NOPE', b'x')) == ['invalid-mechanism']
    assert condition(authenticate(s, 'PLAIN', plain('bob', 'wrong'))) == ['not-authorized']
    # Three wrong credentials close the stream, as in SASL.
    assert condition(authenticate(s, 'PLAIN', plain('bob', 'wrong'))) == ['not-authorized']
    assert condition(authenticate(s, 'PLAIN', plain('bob', 'wrong'))) == ['not-authorized']
    s.expect_stream_error('policy-violation')
    s, _ = tls_stream()
    s.send("<authenticate xmlns='%s' mechanism='PLAIN'><initial-response>***"
           "</initial-response></authenticate>" % NS_SASL2)
    assert condition(s.next_element()) == ['incorrect-encoding']
    # A FAST mechanism without a token the server knows.
    assert condition(authenticate(s, 'HT-SHA-256-NONE', ht_initial('bob', 'x' * 80),
                                  user_agent('nothing'))) == ['not-authorized']
    s.send("<abort xmlns='%s'/>" % NS_SASL2)
    assert condition(s.next_element()) == ['aborted']
    s.close()
    s, _ = tls_stream()
    # Downgrade protection as in SASL: a 'y' client while -PLUS was offered.
    scram = harness.Scram('sha256', 'bob', PASSWORD)
    first = b'y' + scram.client_first()[1:]
    el = authenticate(s, 'SCRAM-SHA-256', first)
    assert el.tag == qname(NS_SASL2, 'failure'), tostring(el)
    # Right credentials, no bind: a bare JID, the features offer bind.
    el = authenticate(s, 'PLAIN', plain('bob', PASSWORD))
    assert el.findtext(qname(NS_SASL2, 'authorization-identifier')) == 'bob@' + D, tostring(el)
    assert s.features().find(qname(harness.NS_BIND, 'bind')) is not None
    # Once authenticated, another <authenticate/> is a stream error.
    s.send("<authenticate xmlns='%s' mechanism='PLAIN'/>" % NS_SASL2)
    s.expect_stream_error('policy-violation')


def test_sasl2_with_channel_binding():
    """SCRAM-SHA-256-PLUS in SASL2, and a FAST token requested for and used
    with HT-SHA-256-ENDP, both bound to tls-server-end-point."""
    s, _ = tls_stream()
    cb = harness.tls_server_end_point(s.sock.getpeercert(binary_form=True))
    scram = harness.Scram('sha256', 'bob', PASSWORD, 'tls-server-end-point', cb)
    challenge = authenticate(s, 'SCRAM-SHA-256-PLUS', scram.client_first(),
                             user_agent('bound-client') +
                             "<request-token xmlns='%s' mechanism='HT-SHA-256-ENDP'/>" % NS_FAST)
    assert challenge.tag == qname(NS_SASL2, 'challenge'), tostring(challenge)
    s.send("<response xmlns='%s'>%s</response>"
           % (NS_SASL2, b64(scram.client_final(base64.b64decode(challenge.text)))))
    success = s.expect(qname(NS_SASL2, 'success'))
    token = token_of(success)
    s.close()
    t, _ = tls_stream()
    cb = harness.tls_server_end_point(t.sock.getpeercert(binary_form=True))
    initiator = hmac.new(token.encode(), b'Initiator' + cb, hashlib.sha256).digest()
    el = authenticate(t, 'HT-SHA-256-ENDP', b'bob\0' + initiator,
                      user_agent('bound-client') + "<fast xmlns='%s'/>" % NS_FAST)
    assert el.tag == qname(NS_SASL2, 'success'), tostring(el)
    responder = hmac.new(token.encode(), b'Responder' + cb, hashlib.sha256).digest()
    assert el.findtext(qname(NS_SASL2, 'additional-data')) == b64(responder), tostring(el)
    t.close()
    # Without the channel binding data the same token fails.
    assert fast_login('bob', token, 'bound-client', 'HT-SHA-256-ENDP') == \
        ('failure', ['not-authorized'])


def test_sasl2_over_bosh():
    """SASL2 and Bind 2 over BOSH: no restart request, the bound stream's
    features come in the same session."""
    sid, rid, features = bosh_session()
    assert features.find(qname(NS_SASL2, 'authentication')) is not None, tostring(features)
    got = []
    reply = bosh_post("<body xmlns='%s' rid='%d' sid='%s'><authenticate xmlns='%s'"
                      " mechanism='PLAIN'><initial-response>%s</initial-response>%s"
                      "<bind xmlns='%s'><tag>Bosh</tag></bind></authenticate></body>"
                      % (NS_HTTPBIND, rid + 1, sid, NS_SASL2, b64(plain('alice', PASSWORD)),
                         user_agent('web-tab'), NS_BIND2))
    got += list(reply)
    if not any(el.tag == qname(NS_STREAM, 'features') for el in got):
        got += list(bosh_post("<body xmlns='%s' rid='%d' sid='%s'/>" % (NS_HTTPBIND, rid + 2, sid)))
    tags = [el.tag for el in got]
    assert tags == [qname(NS_SASL2, 'success'), qname(NS_STREAM, 'features')], tags
    jid = got[0].findtext(qname(NS_SASL2, 'authorization-identifier'))
    assert jid.startswith('alice@%s/Bosh/' % D), tostring(got[0])


def test_sasl2_inline_resume():
    """XEP-0198 <resume/> inside <authenticate/>: one round trip gives the
    old session back, with what it had not acknowledged."""
    s, _ = tls_stream()
    success = authenticate(s, 'PLAIN', plain('dave', PASSWORD),
                           user_agent('phone') + "<bind xmlns='%s'><tag>Phone</tag>"
                           "<enable xmlns='%s' resume='true'/></bind>" % (NS_BIND2, NS_SM))
    jid = success.findtext(qname(NS_SASL2, 'authorization-identifier'))
    previd = success.find('%s/%s' % (qname(NS_BIND2, 'bound'), qname(NS_SM, 'enabled'))).get('id')
    s.features()
    sender = harness.RawStream(server.c2s_port)
    sender.open()
    sender.login('bob', PASSWORD, 'sender')
    sender.send("<message to='%s' type='chat' id='lost1'><body>while you were away</body>"
                "</message>" % jid)
    msg = s.expect(qname(harness.NS_CLIENT, 'message'))
    assert msg.get('id') == 'lost1', tostring(msg)
    s.close()  # the phone loses its connection, never acknowledging it
    deadline = time.monotonic() + 5
    while 'session %s hibernates' % jid not in server.log_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)

    t, features = tls_stream()
    inline = features.find('%s/%s' % (qname(NS_SASL2, 'authentication'), qname(NS_SASL2, 'inline')))
    assert inline.find(qname(NS_SM, 'sm')) is not None, tostring(features)
    success = authenticate(t, 'PLAIN', plain('dave', PASSWORD),
                           user_agent('phone') + "<resume xmlns='%s' previd='%s' h='0'/>"
                           "<bind xmlns='%s'><tag>Phone</tag></bind>" % (NS_SM, previd, NS_BIND2))
    assert success.tag == qname(NS_SASL2, 'success'), tostring(success)
    resumed = success.find(qname(NS_SM, 'resumed'))
    assert resumed is not None and resumed.get('previd') == previd, tostring(success)
    assert success.find(qname(NS_BIND2, 'bound')) is None, 'a resumed session binds nothing'
    assert success.findtext(qname(NS_SASL2, 'authorization-identifier')) == jid
    features = t.features()
    assert features.find(qname(harness.NS_BIND, 'bind')) is None, tostring(features)
    msg = t.expect(qname(harness.NS_CLIENT, 'message'))
    assert msg.get('id') == 'lost1', tostring(msg)
    # A second resumption of the same id fails inline and binds instead.
    t.close()
    u, _ = tls_stream()
    success = authenticate(u, 'PLAIN', plain('dave', PASSWORD),
                           "<resume xmlns='%s' previd='nonexistent' h='0'/>"
                           "<bind xmlns='%s'/>" % (NS_SM, NS_BIND2))
    failed = success.find(qname(NS_SM, 'failed'))
    assert failed is not None and failed.find(qname(harness.NS_STANZA_ERRORS, 'item-not-found')) \
        is not None, tostring(success)
    assert success.find(qname(NS_BIND2, 'bound')) is not None, tostring(success)
    u.close()
    sender.close()


def test_fast_tokens():
    ua = 'c0ffee-instance'
    t1 = request_token('carol', ua)
    # The token logs in in one step; used, it is rotated (fast_rotate_after
    # 0): t2 waits in the 'new' slot, t1 keeps working until t2 is used.
    result, success = fast_login('carol', t1, ua)
    assert result == 'success', success
    t2 = token_of(success)
    assert fast_login('carol', t1, ua)[0] == 'success'
    result, success = fast_login('carol', t2, ua)
    assert result == 'success'
    t3 = token_of(success)
    # t2's use retired t1: a reused old token fails.
    assert fast_login('carol', t1, ua) == ('failure', ['not-authorized'])
    # Bound to the client instance, the account and the mechanism.
    assert fast_login('carol', t2, 'another-instance') == ('failure', ['not-authorized'])
    assert fast_login('dave', t2, ua) == ('failure', ['not-authorized'])
    assert fast_login('carol', t2, ua, 'HT-SHA-256-ENDP') == ('failure', ['not-authorized'])
    # A replay counter must grow.
    assert fast_login('carol', t3, ua, fast_attrs=" count='5'")[0] == 'success'
    assert fast_login('carol', t3, ua, fast_attrs=" count='5'") == ('failure', ['not-authorized'])
    # Invalidation: the login succeeds, the token is gone, no new one.
    result, success = fast_login('carol', t3, ua, fast_attrs=" count='6' invalidate='true'")
    assert result == 'success' and success.find(qname(NS_FAST, 'token')) is None
    assert fast_login('carol', t3, ua) == ('failure', ['not-authorized'])
    # A password change forgets every token of the account.
    t4 = request_token('carol', ua)
    assert fast_login('carol', t4, ua)[0] == 'success'
    result = subprocess.run([server.ctl, '-c', server.config_path, 'passwd', 'carol@' + D,
                             PASSWORD], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert fast_login('carol', t4, ua) == ('failure', ['not-authorized'])


async def test_xmpp_js_sasl2_bind2_and_fast_reconnect():
    """The done-when of issue 18: xmpp.js logs in with SASL2 + Bind 2 and
    reconnects with its FAST token in one round trip."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'xmpp_js_fast.mjs')
    env = dict(os.environ, NODE_TLS_REJECT_UNAUTHORIZED='0')
    node = await asyncio.create_subprocess_exec(
        'node', '--experimental-websocket', '--no-warnings', script,
        'wss://127.0.0.1:%d/xmpp-websocket' % server.https_port, D, 'alice', PASSWORD,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(node.communicate(), 30)
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    assert node.returncode == 0, (out, err)
    first, second = [json.loads(line) for line in out.decode().splitlines()]
    # Password login: SCRAM inside SASL2 (challenge, response), a token
    # requested; Bind 2 gave a resource "<tag>/<id>", no <iq> bind.
    assert first['mechanism'] == 'SCRAM-SHA-1' and first['token'], first
    assert first['sent'] == ['authenticate', 'response'], first
    assert first['jid'].startswith('alice@%s/fastjs/' % D), first
    # Reconnect: the token, one element sent before being online, and the
    # same resource (derived from the client's user-agent id).
    assert second['mechanism'] == 'HT-SHA-256-NONE', second
    assert second['sent'] == ['authenticate'], second
    assert second['jid'] == first['jid'], (first, second)
    log = server.log_text()
    assert 'authenticated alice@%s with HT-SHA-256-NONE (SASL2' % D in log


if __name__ == '__main__':
    tests = [test_web_transports_offer_no_channel_binding,
             test_sasl2_feature_lists_the_same_mechanisms_and_inline_features,
             test_sasl2_scram_with_bind2_enabling_carbons_csi_and_sm,
             test_sasl2_failures,
             test_sasl2_with_channel_binding,
             test_sasl2_over_bosh,
             test_sasl2_inline_resume,
             test_fast_tokens]
    if os.environ.get('VN_XMPP_JS_DIR'):
        tests.append(test_xmpp_js_sasl2_bind2_and_fast_reconnect)
    harness.run(tests, server=server, setup=setup)
