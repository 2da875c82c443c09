/* media_rtp.c - RTP and RTCP on a connected leg (RFC 3550, rtcp-mux).
 *
 * In: decrypt, parse the header, take the RFC 6464 audio level out of the
 * RFC 8285 header extension when the remote negotiated one, keep RFC 3550 §A.3
 * reception statistics for our receiver reports, and hand the Opus payload to
 * the leg's jitter buffer. Anything that is not the negotiated Opus stream
 * (another payload type, another SSRC) is dropped. Out: one RTP packet per
 * mix the leg hears, and every rtcp_interval_ms a compound SR + RR + SDES
 * CNAME, which is what browsers expect before they report getStats figures.
 */
#include <string.h>
#include <time.h>

#include "media_internal.h"

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint8_t vc_rtp_audio_level(const uint8_t *ext, size_t len, uint16_t profile, uint8_t id)
{
    size_t i = 0;

    if (profile == 0xBEDE) { /* one-byte headers */
        while (i < len) {
            uint8_t b = ext[i];
            if (b == 0) {
                i++;
                continue;
            }
            uint8_t eid = b >> 4;
            size_t elen = (size_t)(b & 0x0f) + 1;
            if (eid == 15 || i + 1 + elen > len)
                break;
            if (eid == id)
                return ext[i + 1] & 0x7f;
            i += 1 + elen;
        }
    } else if ((profile & 0xfff0) == 0x1000) { /* two-byte headers */
        while (i + 1 < len) {
            uint8_t eid = ext[i];
            if (eid == 0) {
                i++;
                continue;
            }
            size_t elen = ext[i + 1];
            if (i + 2 + elen > len)
                break;
            if (eid == id && elen >= 1)
                return ext[i + 2] & 0x7f;
            i += 2 + elen;
        }
    }
    return VC_LEVEL_UNKNOWN;
}

/* A packet that passed SRTP: its Opus payload to the jitter buffer. */
static void rtp_payload(vc_leg *leg, const uint8_t *buf, size_t len, uint64_t arrival_ms)
{
    if (len < 12 || buf[0] >> 6 != 2)
        return;
    size_t off = 12 + 4 * (size_t)(buf[0] & 0x0f), end = len;
    uint8_t pt = buf[1] & 0x7f, level = VC_LEVEL_UNKNOWN;
    uint16_t seq = rd16(buf + 2);
    uint32_t ts = rd32(buf + 4), ssrc = rd32(buf + 8);

    if (buf[0] & 0x10) { /* header extension */
        if (off + 4 > len)
            return;
        uint16_t profile = rd16(buf + off);
        size_t elen = 4 * (size_t)rd16(buf + off + 2);
        if (off + 4 + elen > len)
            return;
        if (leg->level_id)
            level = vc_rtp_audio_level(buf + off + 4, elen, profile, leg->level_id);
        off += 4 + elen;
    }
    if (off > len)
        return;
    if (buf[0] & 0x20) { /* padding */
        uint8_t pad = buf[len - 1];
        if (pad == 0 || pad > end - off)
            return;
        end -= pad;
    }
    if (pt != leg->opus_pt)
        return;
    if (!leg->have_ssrc) {
        leg->remote_ssrc = ssrc;
        leg->have_ssrc = true;
    } else if (ssrc != leg->remote_ssrc) {
        return;
    }

    if (!leg->rx_started) {
        leg->rx_base = leg->rx_max = seq;
        leg->rx_started = true;
    } else if ((int16_t)(uint16_t)(seq - leg->rx_max) > 0) {
        if (seq < leg->rx_max)
            leg->rx_cycles += 65536;
        leg->rx_max = seq;
    }
    leg->rx_received++;
    atomic_fetch_add(&leg->st.in, 1);
    atomic_fetch_add(&leg->e->packets_in, 1);
    if (end > off)
        vc_jb_put(&leg->jb, seq, ts, arrival_ms, buf + off, end - off, level);
}

bool vc_rtp_input(vc_leg *leg, uint8_t *buf, size_t len, uint64_t arrival_ms)
{
    if (leg->state != VC_LEG_CONNECTED || vc_srtp_unprotect(leg, buf, &len, false) != 0)
        return false;
    rtp_payload(leg, buf, len, arrival_ms);
    return true;
}

bool vc_rtcp_input(vc_leg *leg, uint8_t *buf, size_t len)
{
    if (leg->state != VC_LEG_CONNECTED || vc_srtp_unprotect(leg, buf, &len, true) != 0)
        return false;
    for (size_t off = 0; off + 4 <= len;) {
        size_t plen = 4 * ((size_t)rd16(buf + off + 2) + 1);
        if (buf[off] >> 6 != 2 || off + plen > len)
            break;
        if (buf[off + 1] == 200 && plen >= 28) { /* SR: for the LSR/DLSR of our RR */
            leg->rx_lsr = rd32(buf + off + 10);
            leg->rx_lsr_ms = vc_now_ms();
        }
        off += plen;
    }
    return true;
}

void vc_rtp_send(vc_leg *leg, const uint8_t *payload, size_t len)
{
    uint8_t pkt[12 + VC_JB_PAYLOAD_MAX + VC_SRTP_TRAILER];
    size_t n = 12 + len;

    if (len > VC_JB_PAYLOAD_MAX || leg->state != VC_LEG_CONNECTED)
        return;
    pkt[0] = 0x80;
    pkt[1] = (uint8_t)((leg->marker ? 0x80 : 0) | leg->opus_pt);
    wr16(pkt + 2, leg->seq);
    wr32(pkt + 4, leg->ts);
    wr32(pkt + 8, leg->ssrc);
    memcpy(pkt + 12, payload, len);
    if (vc_srtp_protect(leg, pkt, &n, false) != 0)
        return;
    leg->seq++;
    leg->marker = false;
    if (vc_leg_send(leg, pkt, n) == 0) {
        leg->tx_packets++;
        leg->tx_octets += len;
        atomic_fetch_add(&leg->st.out, 1);
        atomic_fetch_add(&leg->e->packets_out, 1);
    }
}

/* The report block about the remote's stream (RFC 3550 §6.4.1, §A.3). */
static void report_block(vc_leg *leg, uint8_t *p, uint64_t now_ms)
{
    uint32_t ext_max = leg->rx_cycles + leg->rx_max;
    uint64_t expected = (uint64_t)(ext_max - leg->rx_base) + 1;
    int64_t lost = (int64_t)expected - (int64_t)leg->rx_received;
    uint64_t exp_int = expected - leg->rx_expected_prior;
    int64_t lost_int = (int64_t)exp_int - (int64_t)(leg->rx_received - leg->rx_received_prior);
    uint8_t fraction = exp_int && lost_int > 0 ? (uint8_t)(((uint64_t)lost_int << 8) / exp_int) : 0;

    leg->rx_expected_prior = expected;
    leg->rx_received_prior = leg->rx_received;
    if (lost > 0x7fffff)
        lost = 0x7fffff;
    if (lost < -0x800000)
        lost = -0x800000;
    wr32(p, leg->remote_ssrc);
    wr32(p + 4, (uint32_t)fraction << 24 | ((uint32_t)lost & 0xffffff));
    wr32(p + 8, ext_max);
    wr32(p + 12, vc_jb_jitter_ms(&leg->jb) * 48);
    wr32(p + 16, leg->rx_lsr);
    wr32(p + 20, leg->rx_lsr ? (uint32_t)((now_ms - leg->rx_lsr_ms) * 65536 / 1000) : 0);
}

void vc_rtcp_send(vc_leg *leg)
{
    uint8_t pkt[28 + 24 + 28 + VC_SRTP_TRAILER + 4];
    struct timespec wall;
    uint64_t now_ms = vc_now_ms();
    unsigned rc = leg->rx_started ? 1 : 0;
    size_t n = 0;

    clock_gettime(CLOCK_REALTIME, &wall);
    pkt[n] = (uint8_t)(0x80 | rc);
    pkt[n + 1] = 200;
    wr16(pkt + n + 2, (uint16_t)((28 + 24 * rc) / 4 - 1));
    wr32(pkt + n + 4, leg->ssrc);
    wr32(pkt + n + 8, (uint32_t)((uint64_t)wall.tv_sec + 2208988800u)); /* NTP epoch */
    wr32(pkt + n + 12, (uint32_t)(((uint64_t)wall.tv_nsec << 32) / 1000000000u));
    wr32(pkt + n + 16, leg->ts);
    wr32(pkt + n + 20, (uint32_t)leg->tx_packets);
    wr32(pkt + n + 24, (uint32_t)leg->tx_octets);
    n += 28;
    if (rc) {
        report_block(leg, pkt + n, now_ms);
        n += 24;
    }
    /* SDES: one chunk, CNAME, END, padded to 32 bits: 4 + 2 + 16 + 1 + 1 */
    pkt[n] = 0x81;
    pkt[n + 1] = 202;
    wr16(pkt + n + 2, 6);
    wr32(pkt + n + 4, leg->ssrc);
    pkt[n + 8] = 1;
    pkt[n + 9] = 16;
    memcpy(pkt + n + 10, leg->cname, 16);
    pkt[n + 26] = 0;
    pkt[n + 27] = 0;
    n += 28;
    if (vc_srtp_protect(leg, pkt, &n, true) == 0)
        vc_leg_send(leg, pkt, n);
}
