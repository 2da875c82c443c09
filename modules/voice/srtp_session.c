/* srtp_session.c - a leg's SRTP and SRTCP contexts (libsrtp2), keyed from
 * DTLS. One session holds both directions: the inbound stream takes any SSRC
 * the remote uses, the outbound one is our SSRC. libsrtp2's replay window and
 * authentication check drop forged, damaged and replayed packets; we count
 * them and go on. */
#include <pthread.h>
#include <string.h>

#include "media_internal.h"

static pthread_once_t srtp_once = PTHREAD_ONCE_INIT;

static void srtp_global(void)
{
    srtp_init();
}

void vc_srtp_global_init(void)
{
    pthread_once(&srtp_once, srtp_global);
}

int vc_srtp_start(vc_leg *leg, bool gcm, const uint8_t *tx_key, const uint8_t *rx_key)
{
    srtp_policy_t in, out;
    uint8_t rx[32], tx[32];

    memset(&in, 0, sizeof(in));
    memset(&out, 0, sizeof(out));
    memcpy(rx, rx_key, gcm ? 28 : 30);
    memcpy(tx, tx_key, gcm ? 28 : 30);
    if (gcm) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&in.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&in.rtcp);
    } else {
        srtp_crypto_policy_set_rtp_default(&in.rtp);
        srtp_crypto_policy_set_rtcp_default(&in.rtcp);
    }
    out.rtp = in.rtp;
    out.rtcp = in.rtcp;
    in.ssrc.type = ssrc_any_inbound;
    in.key = rx;
    in.window_size = 1024;
    in.next = &out;
    out.ssrc.type = ssrc_specific; /* one wildcard per session: the inbound one */
    out.ssrc.value = leg->ssrc;
    out.key = tx;
    out.window_size = 1024;
    int rc = srtp_create(&leg->srtp, &in) == srtp_err_status_ok ? 0 : -1;
    memset(rx, 0, sizeof(rx));
    memset(tx, 0, sizeof(tx));
    if (rc != 0)
        leg->srtp = NULL;
    return rc;
}

int vc_srtp_protect(vc_leg *leg, uint8_t *buf, size_t *len, bool rtcp)
{
    int n = (int)*len;
    srtp_err_status_t st =
        rtcp ? srtp_protect_rtcp(leg->srtp, buf, &n) : srtp_protect(leg->srtp, buf, &n);

    if (st != srtp_err_status_ok)
        return -1;
    *len = (size_t)n;
    return 0;
}

int vc_srtp_unprotect(vc_leg *leg, uint8_t *buf, size_t *len, bool rtcp)
{
    int n = (int)*len;
    srtp_err_status_t st =
        rtcp ? srtp_unprotect_rtcp(leg->srtp, buf, &n) : srtp_unprotect(leg->srtp, buf, &n);

    if (st != srtp_err_status_ok) {
        atomic_fetch_add(&leg->st.srtp_failures, 1);
        atomic_fetch_add(&leg->e->srtp_failures, 1);
        return -1;
    }
    *len = (size_t)n;
    return 0;
}
