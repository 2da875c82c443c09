/*
 * component.h - external components (XEP-0114, jabber:component:accept).
 *
 * A component (a school's diary bot, a bank's service) connects to the
 * component listener, proves it knows its domain's shared secret, and then
 * receives every stanza for that domain and may send from any JID at it.
 */
#ifndef VESTNIK_COMPONENT_H
#define VESTNIK_COMPONENT_H

#include "config.h"
#include "conn.h"
#include "vestnik/jid.h"
#include "vestnik/stanza.h"

/* Accept callback for component listeners. */
void vn_component_accept(vn_conn *c, const vn_listener_conf *lc, void *ud);
/* Take the configured components (start and reload): new ones are
 * listed in their host's disco#items, removed ones are disconnected. */
void vn_components_configure(const vn_config *cfg);
/* A stanza for a component's domain: delivered, or bounced with
 * service-unavailable while the component is not connected. false if no
 * component serves to->domain. The stanza stays the caller's. */
bool vn_components_route(const vn_stanza *st, const vn_jid *to);
/* Disconnect every component (shutdown) and forget the configuration. */
void vn_components_shutdown(void);

#endif
