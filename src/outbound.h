/*
 * outbound.h - the one place that decides whether vestnikd may reach out
 * to the network (network.allow_outbound), and remembers where it did.
 *
 * A national deployment must be able to show that the server talks to
 * nobody it was not told to. Every path that leaves the machine asks here
 * first: the router before it starts federating with a domain, the
 * resolver before each DNS query, and vn_conn_connect before each TCP
 * connection, so that a path added later without its own check is still
 * stopped at the socket. Policies:
 *   all         anything (the default);
 *   federation  server-to-server only: s2s streams and the DNS they need;
 *   none        no outbound traffic at all: a closed, single-site server.
 */
#ifndef VN_OUTBOUND_H
#define VN_OUTBOUND_H

#include <stdbool.h>

#include "vestnik/util.h"

typedef enum {
    VN_OUTBOUND_FEDERATION, /* an s2s stream to a remote domain */
    VN_OUTBOUND_DNS,        /* a query for a name (SRV, A/AAAA) */
    VN_OUTBOUND_CONNECT,    /* a TCP connection to an address */
    VN_OUTBOUND_SERVICE,    /* an HTTP call to a configured service (push, webhooks) */
} vn_outbound_kind;

/* True if the policy lets this through. Each destination is logged the
 * first time it is allowed (info) or refused (warn) and counted for
 * vn_outbound_describe. dest: a domain, a name or "address:port". */
bool vn_outbound_permit(vn_outbound_kind kind, const char *dest);

/* "outbound: POLICY; reached: KIND DEST xN, ...; refused: ..." for
 * vestnikctl status. */
void vn_outbound_describe(vn_buf *out);

/* Forget what was seen (server stop). */
void vn_outbound_reset(void);

#endif
