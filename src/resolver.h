/*
 * resolver.h - asynchronous DNS for federation: c-ares on the libuv loop.
 *
 * Finding a peer server (RFC 6120 §3.2.1, XEP-0368): the SRV records of
 * _xmpps-server._tcp (direct TLS) and _xmpp-server._tcp (STARTTLS) are
 * looked up together and merged into one list in RFC 2782 order (priority,
 * then weighted random within a priority). Without any SRV record the
 * domain itself on port 5269 is the one target; a single "." target means
 * the domain offers no XMPP service. Each target's addresses (A and AAAA)
 * come from a second lookup, which also accepts IP literals.
 *
 * Names under ".invalid" (RFC 6761) fail at once without a query.
 */
#ifndef VESTNIK_RESOLVER_H
#define VESTNIK_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "vestnik/util.h"

#define VN_XMPP_SERVER_PORT 5269

typedef struct vn_srv_record {
    char *target; /* host name */
    uint16_t priority, weight, port;
    bool direct_tls; /* from _xmpps-server._tcp */
} vn_srv_record;

/* A random number in 0..max inclusive; ud is the caller's. */
typedef uint32_t (*vn_random_fn)(uint32_t max, void *ud);

/* RFC 2782 order, in place: ascending priority; within a priority,
 * repeated weighted random choice (weight-0 records only get a chance in
 * proportion to nothing: they come first in the running sum, so they are
 * picked when the draw is 0). random NULL uses arc4random_uniform. */
void vn_srv_order(vn_srv_record *records, size_t n, vn_random_fn random, void *ud);

typedef struct vn_resolve vn_resolve;

/* Targets for a domain, in order; borrowed for the call. error is NULL
 * on success (n >= 1), else a short text for the log ("no XMPP service"). */
typedef void (*vn_server_cb)(void *ud, const vn_srv_record *targets, size_t n, const char *error);
/* Addresses of a host with port filled in; borrowed for the call; n == 0
 * with error on failure. */
typedef void (*vn_address_cb)(void *ud, const struct sockaddr_storage *addrs, size_t n,
                              const char *error);

int vn_resolver_init(uv_loop_t *loop, vn_buf *err); /* 0, or -1 with a message */
/* Cancel nothing: the owners cancel their lookups first. */
void vn_resolver_shutdown(void);

/* Start a lookup; the callback runs later from the loop, never from
 * inside the call, unless cancelled first. */
vn_resolve *vn_resolve_xmpp_server(const char *domain, vn_server_cb cb, void *ud);
vn_resolve *vn_resolve_address(const char *host, uint16_t port, vn_address_cb cb, void *ud);
/* The callback will not run; q is freed once c-ares lets go of it. */
void vn_resolve_cancel(vn_resolve *q);

#endif
