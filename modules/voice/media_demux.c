/* media_demux.c - what a datagram on a leg's port is, by its first byte
 * (RFC 7983 §7, with RFC 5761 §4 to tell RTCP from RTP on an rtcp-mux port).
 * Anything else (ZRTP, TURN channels, garbage) is dropped. */
#include "media_internal.h"

vc_demux vc_demux_classify(const uint8_t *buf, size_t len)
{
    if (len < 1)
        return VC_DEMUX_DROP;
    uint8_t b = buf[0];
    if (b <= 3)
        return len >= 20 ? VC_DEMUX_STUN : VC_DEMUX_DROP;
    if (b >= 20 && b <= 63)
        return len >= 13 ? VC_DEMUX_DTLS : VC_DEMUX_DROP;
    if (b >= 128 && b <= 191) {
        if (len < 8)
            return VC_DEMUX_DROP;
        uint8_t pt = buf[1] & 0x7f;
        if (pt >= 64 && pt <= 95) /* RTCP packet types 192..223 */
            return VC_DEMUX_RTCP;
        return len >= 12 ? VC_DEMUX_RTP : VC_DEMUX_DROP;
    }
    return VC_DEMUX_DROP;
}
