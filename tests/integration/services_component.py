"""services_component.py - a service as providers write them: a slixmpp
component (XEP-0114) speaking the services bus's acknowledgements
(xeps/services-bus.md, "Durable delivery"), and the server it runs against.

AckingComponent enables XEP-0198 acknowledgements on its stream as its
first element, answers the server's <r/> with how many stanzas it has
handled, asks for acks of what it sends and keeps what the server has not
acknowledged, to send again on its next connection (a real service keeps
that outbox on disk; here the next instance takes it over).
"""

import asyncio

import slixmpp
from slixmpp.plugins.xep_0198 import stanza as sm
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness

NS_SM = 'urn:xmpp:sm:3'
STANZAS = ('message', 'presence', 'iq')


class ServicesServer(harness.Server):
    """vestnikd with a component listener, components and the modules a
    service's users need (roster, presence, offline storage, ad-hoc)."""

    def __init__(self, components, modules='', limits_options=None, handshake_timeout=2):
        self.component_port = harness.free_ports(1)[0]
        self.components = components
        self.modules = modules
        super().__init__(limits_options=limits_options, handshake_timeout=handshake_timeout)

    def write_config(self):
        super().write_config()
        with open(self.config_path) as f:
            text = f.read()
        text = text.replace('listeners:\n', 'listeners:\n  - type: component\n'
                            '    address: 127.0.0.1\n    port: %d\n' % self.component_port, 1)
        text += '  roster:\n  presence:\n  offline:\n  adhoc:\n' + self.modules
        text += 'components:\n' + ''.join(
            '  - domain: %s\n    secret: %s\n    name: %s\n' % c for c in self.components)
        with open(self.config_path, 'w') as f:
            f.write(text)


class AckingComponent(slixmpp.ComponentXMPP):
    def __init__(self, server, domain, secret, outbox=()):
        super().__init__(domain, secret, '127.0.0.1', server.component_port)
        self.answering = True     # answers <r/>; False: a service about to crash
        self.handled = 0          # stanzas received on this stream
        self.acked_out = 0        # of ours, acknowledged by the server
        self.outbox = list(outbox)  # sent, not acknowledged (oldest first)
        self.messages = asyncio.Queue()
        self.enabled = asyncio.get_event_loop().create_future()
        self.all_acked = asyncio.Event()
        for cls in (sm.Enabled, sm.Failed, sm.RequestAck, sm.Ack):
            self.register_stanza(cls)
        self.register_handler(Callback('sm enabled', MatchXPath(sm.Enabled.tag_name()),
                                       self._on_enabled))
        self.register_handler(Callback('sm failed', MatchXPath(sm.Failed.tag_name()),
                                       self._on_failed))
        self.register_handler(Callback('sm r', MatchXPath(sm.RequestAck.tag_name()),
                                       self._on_r))
        self.register_handler(Callback('sm a', MatchXPath(sm.Ack.tag_name()), self._on_a))
        self.add_filter('in', self._count_in)
        self.add_filter('out', self._keep_out)
        self.add_event_handler('session_start', self._on_session_start)
        self.add_event_handler('message', self.messages.put_nowait)

    def _count_in(self, stanza):
        if stanza.name in STANZAS:
            self.handled += 1
        return stanza

    def _keep_out(self, stanza):
        if stanza.name in STANZAS and stanza.namespace != NS_SM:
            self.outbox.append(stanza)
            self.all_acked.clear()
        return stanza

    def _on_session_start(self, _event):
        self.send_raw("<enable xmlns='%s'/>" % NS_SM)

    def _on_enabled(self, _el):
        pending, self.outbox = self.outbox, []
        for stanza in pending:      # what the last connection left unacknowledged
            self.send(stanza)
        if pending:
            self.send_raw("<r xmlns='%s'/>" % NS_SM)
        else:
            self.all_acked.set()
        self.enabled.set_result(True)

    def _on_failed(self, el):
        if not self.enabled.done():
            self.enabled.set_exception(AssertionError('enable failed: %s' % el))

    def _on_r(self, _el):
        if self.answering:
            self.send_raw("<a xmlns='%s' h='%d'/>" % (NS_SM, self.handled))

    def _on_a(self, el):
        h = int(el.xml.get("h"))
        newly = h - self.acked_out
        assert 0 <= newly <= len(self.outbox), (h, self.acked_out, len(self.outbox))
        del self.outbox[:newly]
        self.acked_out = h
        if self.outbox:
            self.send_raw("<r xmlns='%s'/>" % NS_SM)
        else:
            self.all_acked.set()

    def send_acked(self, stanza):
        """Send, then ask the server to acknowledge."""
        stanza.send()
        self.send_raw("<r xmlns='%s'/>" % NS_SM)

    async def start(self, timeout=10):
        self.connect()
        await asyncio.wait_for(self.enabled, timeout)
        return self

    def crash(self):
        """Gone without a word, as a killed process."""
        self.abort()
