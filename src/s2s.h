/*
 * s2s.h - server-to-server federation (RFC 6120, XEP-0220, XEP-0368).
 *
 * Stanzas for a remote domain go out over one outgoing stream per remote
 * domain, found through DNS SRV (or an s2s_peers override), secured with
 * TLS and authenticated with SASL EXTERNAL or Server Dialback; while that
 * is under way they wait in a bounded queue, and if it fails they bounce
 * with remote-server-not-found or remote-server-timeout. Incoming streams
 * on the s2s listeners deliver stanzas from the domains they
 * authenticated, and nothing else.
 */
#ifndef VESTNIK_S2S_H
#define VESTNIK_S2S_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "conn.h"
#include "vestnik/jid.h"
#include "vestnik/stanza.h"

/* Bring up the resolver and the dialback secret; -1 with a message. */
int vn_s2s_start(uv_loop_t *loop, vn_buf *err);
/* Accept callback for the s2s and s2s_tls listeners. */
void vn_s2s_accept(vn_conn *c, const vn_listener_conf *lc, void *ud);
/* A stanza for a domain that is neither local nor a component's: sent or
 * queued for to->domain (the stanza stays the caller's), or bounced with
 * an error. false if federation does not apply (the sender is not one of
 * our domains, or the target is). */
bool vn_s2s_route(const vn_stanza *st, const vn_jid *from, const vn_jid *to);
/* Close every s2s stream (system-shutdown), drop the queues, stop DNS. */
void vn_s2s_stop(void);

#endif
