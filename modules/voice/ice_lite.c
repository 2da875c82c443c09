/* ice_lite.c - the bridge's side of ICE: a lite agent (RFC 8445 §2.5) on host
 * candidates, built on libnice's exported STUN library.
 *
 * A lite agent sends no checks; it answers the full agent's (the client's)
 * binding requests when they carry our ufrag and are signed with our ice-pwd
 * (MESSAGE-INTEGRITY, FINGERPRINT), with a success response carrying the
 * request's source as XOR-MAPPED-ADDRESS, sent from the address the request
 * was sent to. Every pair that passes such a check is remembered as checked.
 * A request with USE-CANDIDATE nominates its pair: it becomes the leg's peer,
 * where DTLS and media go, until DTLS or SRTP arrive; from then on the peer is
 * the checked pair they last came from (media_leg.c), as in other lite
 * servers: a browser nominates every pair it finds writable, alternately, and
 * sends on the one it selected, so following nominations would flip the peer
 * under a handshake. Later checks are the remote's consent freshness
 * (RFC 7675): the leg is alive while they keep coming from the peer. Anything
 * unauthenticated is dropped without a reply, so the port does not answer
 * strangers.
 */
#include <string.h>

#include <netinet/in.h>
#include <stun/usages/ice.h>

#include "media_internal.h"

static const uint16_t known_attributes[] = {
    STUN_ATTRIBUTE_USERNAME,        STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
    STUN_ATTRIBUTE_FINGERPRINT,     STUN_ATTRIBUTE_PRIORITY,
    STUN_ATTRIBUTE_USE_CANDIDATE,   STUN_ATTRIBUTE_ICE_CONTROLLED,
    STUN_ATTRIBUTE_ICE_CONTROLLING, 0};

void vc_ice_init(vc_leg *leg)
{
    stun_agent_init(&leg->stun, known_attributes, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    vc_random(&leg->tie, sizeof(leg->tie));
}

bool vc_same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

bool vc_ice_checked(const vc_leg *leg, const struct sockaddr *remote)
{
    for (unsigned i = 0; i < VC_ICE_PATHS; i++)
        if (leg->checked[i].remote_len &&
            vc_same_addr(remote, (const struct sockaddr *)&leg->checked[i].remote))
            return true;
    return false;
}

static void remember(vc_leg *leg, const vc_path *path)
{
    for (unsigned i = 0; i < VC_ICE_PATHS; i++) {
        if (leg->checked[i].remote_len &&
            vc_same_addr((const struct sockaddr *)&path->remote,
                         (const struct sockaddr *)&leg->checked[i].remote)) {
            leg->checked[i] = *path;
            return;
        }
    }
    leg->checked[leg->next_checked] = *path; /* the oldest one goes */
    leg->next_checked = (leg->next_checked + 1) % VC_ICE_PATHS;
}

void vc_ice_input(vc_leg *leg, const uint8_t *buf, size_t len, const vc_path *path)
{
    const struct sockaddr *from = (const struct sockaddr *)&path->remote;
    socklen_t fromlen = path->remote_len;
    StunMessage req, resp;
    StunDefaultValidaterData creds[2] = {
        {(uint8_t *)leg->username, strlen(leg->username), (uint8_t *)leg->lpwd, strlen(leg->lpwd)},
        {NULL, 0, NULL, 0},
    };

    if (stun_agent_validate(&leg->stun, &req, buf, len, stun_agent_default_validater, creds) !=
        STUN_VALIDATION_SUCCESS)
        return;
    if (stun_message_get_class(&req) != STUN_REQUEST ||
        stun_message_get_method(&req) != STUN_BINDING)
        return;

    uint8_t out[512];
    size_t outlen = sizeof(out);
    bool controlling = false; /* a lite agent is always the controlled one */
    struct sockaddr_storage src;
    memset(&src, 0, sizeof(src));
    memcpy(&src, from, fromlen);
    StunUsageIceReturn r = stun_usage_ice_conncheck_create_reply(
        &leg->stun, &req, &resp, out, &outlen, &src, fromlen, &controlling, leg->tie,
        STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
    if (r != STUN_USAGE_ICE_RETURN_SUCCESS && r != STUN_USAGE_ICE_RETURN_ROLE_CONFLICT)
        return;

    remember(leg, path);
    bool nominate = stun_usage_ice_conncheck_use_candidate(&req);
    bool is_peer =
        leg->peer.remote_len && vc_same_addr(from, (const struct sockaddr *)&leg->peer.remote);
    if (nominate && !leg->peer_heard) {
        leg->peer = *path;
        is_peer = true;
    }
    if (outlen) /* the reply goes back where the request came from, nominated or not */
        vc_leg_send_to(leg, out, outlen, path);
    if (is_peer) {
        leg->last_consent_ms = vc_now_ms();
        if (leg->state == VC_LEG_CHECKING) {
            leg->state = VC_LEG_DTLS;
            vc_dtls_start(leg);
        }
    }
}
