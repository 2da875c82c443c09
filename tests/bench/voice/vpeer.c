/* vpeer.c - the simulated participant (see vpeer.h). Written against the
 * libraries a WebRTC stack is made of, not against the engine's code: the
 * only thing it shares with the bridge is media.h's signalling structures. */
#include "vpeer.h"

#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/srtp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stun/usages/ice.h>

#define FRAME 960
#define CHECK_MS 50

static SSL_CTX *peer_ctx;
static char peer_fp[96];

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static int verify_any(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static void fingerprint_of(X509 *x, char *out, size_t outlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    size_t pos = 0;

    X509_digest(x, EVP_sha256(), md, &n);
    for (unsigned i = 0; i < n && pos + 3 < outlen; i++)
        pos += (size_t)snprintf(out + pos, outlen - pos, i ? ":%02X" : "%02X", md[i]);
}

int vp_global_init(char *err, size_t errlen)
{
    if (peer_ctx)
        return 0;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"vpeer", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, key, EVP_sha256());
    fingerprint_of(x, peer_fp, sizeof(peer_fp));
    peer_ctx = SSL_CTX_new(DTLS_method());
    if (!peer_ctx || SSL_CTX_use_certificate(peer_ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(peer_ctx, key) != 1 ||
        SSL_CTX_set_tlsext_use_srtp(peer_ctx, "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80") !=
            0) {
        snprintf(err, errlen, "vpeer: DTLS setup failed");
        return -1;
    }
    SSL_CTX_set_verify(peer_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_any);
    X509_free(x);
    EVP_PKEY_free(key);
    srtp_init();
    return 0;
}

int16_t vp_signal_sample(const vp_config *cfg, uint64_t n)
{
    double t = (double)n / 48000.0, a = cfg->amplitude * 32767.0;

    switch (cfg->signal) {
    case VP_TONE: return (int16_t)(a * sin(2 * M_PI * cfg->tone_hz * t));
    case VP_SPEECHLIKE: {
        /* 0.25 s syllables at 4 Hz in 2 s phrases with a 0.5 s pause; pitch glides 120..220 Hz */
        double phrase = fmod(t, 2.0);
        if (phrase > 1.5)
            return 0;
        double env = sin(M_PI * fmod(t * 4.0, 1.0));
        double f0 = 170.0 + 50.0 * sin(2 * M_PI * 0.7 * t);
        double phase = 2 * M_PI * (170.0 * t - 50.0 / (2 * M_PI * 0.7) * cos(2 * M_PI * 0.7 * t));
        double v = 0.0;
        for (int h = 1; h <= 12; h++)
            v += sin(h * phase) / h * (h * f0 < 4000.0 ? 1.0 : 0.2);
        return (int16_t)(a * 0.5 * env * v);
    }
    case VP_SILENCE: break;
    }
    return 0;
}

static void rtp_level_ext(uint8_t *p, uint8_t id, uint8_t level)
{
    p[0] = 0xBE;
    p[1] = 0xDE;
    p[2] = 0;
    p[3] = 1;
    p[4] = (uint8_t)(id << 4);
    p[5] = (uint8_t)((level < 127 ? 0x80 : 0) | level);
    p[6] = p[7] = 0;
}

static uint8_t level_of(const int16_t *pcm, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)pcm[i] * pcm[i];
    if (sum <= 0)
        return 127;
    double db = -20.0 * log10(sqrt(sum / (double)n) / 32768.0);
    return db > 127 ? 127 : db < 0 ? 0 : (uint8_t)(db + 0.5);
}

static void send_raw(vp_peer *p, const void *buf, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    uv_udp_try_send(&p->udp, &b, 1, (const struct sockaddr *)&p->bridge);
}

typedef struct delayed {
    uv_timer_t t;
    vp_peer *p;
    size_t len;
    uint8_t buf[1600];
} delayed;

static void delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void delayed_fire(uv_timer_t *t)
{
    delayed *d = t->data;
    if (!d->p->closed)
        send_raw(d->p, d->buf, d->len);
    uv_close((uv_handle_t *)t, delayed_closed);
}

/* The impairment stage: loss, then jitter. */
static void send_impaired(vp_peer *p, const uint8_t *buf, size_t len)
{
    uint32_t r = 0;
    if (p->cfg.loss <= 0 && p->cfg.jitter_ms == 0) {
        send_raw(p, buf, len); /* no impairment: no random number either */
        return;
    }
    RAND_bytes((unsigned char *)&r, sizeof(r));
    if (p->cfg.loss > 0 && (double)r / 4294967296.0 < p->cfg.loss) {
        p->tx_dropped++;
        return;
    }
    unsigned delay = p->cfg.jitter_ms ? (r >> 8) % (p->cfg.jitter_ms + 1) : 0;
    if (delay == 0) {
        send_raw(p, buf, len);
        return;
    }
    delayed *d = malloc(sizeof(*d));
    if (!d)
        return;
    d->p = p;
    d->len = len;
    memcpy(d->buf, buf, len);
    uv_timer_init(p->loop, &d->t);
    d->t.data = d;
    uv_timer_start(&d->t, delayed_fire, delay, 0);
}

static void flush_dtls(vp_peer *p)
{
    uint8_t buf[4096];
    int n;
    while ((n = BIO_read(SSL_get_wbio(p->ssl), buf, sizeof(buf))) > 0)
        send_raw(p, buf, (size_t)n);
}

static void send_check(vp_peer *p)
{
    StunMessage msg;
    uint8_t buf[512];
    size_t len = stun_usage_ice_conncheck_create(
        &p->stun, &msg, buf, sizeof(buf), (const uint8_t *)p->username, strlen(p->username),
        (const uint8_t *)p->rpwd, strlen(p->rpwd), true, true, 0x6e7f00ff, p->tie, NULL,
        STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
    if (len)
        send_raw(p, buf, len);
    p->last_check_ms = now_ms();
}

static void keys_ready(vp_peer *p)
{
    char fp[96];
    X509 *x = SSL_get1_peer_certificate(p->ssl);
    if (!x) {
        p->dtls_failed = true;
        return;
    }
    fingerprint_of(x, fp, sizeof(fp));
    X509_free(x);
    if (strcmp(fp, p->bridge_fp) != 0) {
        p->dtls_failed = true;
        return;
    }
    const SRTP_PROTECTION_PROFILE *prof = SSL_get_selected_srtp_profile(p->ssl);
    bool gcm = prof && prof->id == SRTP_AEAD_AES_128_GCM;
    size_t salt = gcm ? 12 : 14;
    uint8_t mat[60], rx[30], tx[30];
    SSL_export_keying_material(p->ssl, mat, 2 * (16 + salt), "EXTRACTOR-dtls_srtp", 19, NULL, 0, 0);
    /* client key, server key, client salt, server salt (RFC 5764 §4.2) */
    bool client = p->cfg.dtls_client;
    memcpy(rx, mat + (client ? 16 : 0), 16);
    memcpy(tx, mat + (client ? 0 : 16), 16);
    memcpy(rx + 16, mat + 32 + (client ? salt : 0), salt);
    memcpy(tx + 16, mat + 32 + (client ? 0 : salt), salt);
    p->srtp_gcm = gcm;
    srtp_policy_t in, out;
    memset(&in, 0, sizeof(in));
    memset(&out, 0, sizeof(out));
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
    in.window_size = 128;
    in.next = &out;
    out.ssrc.type = ssrc_specific;
    out.ssrc.value = p->ssrc;
    out.key = tx;
    out.window_size = 128;
    if (srtp_create(&p->srtp, &in) == srtp_err_status_ok)
        p->keyed = true;
    else
        p->dtls_failed = true;
}

/* Decoded audio into the recording, by RTP time, and into the heard envelope,
 * by arrival time. */
static void keep(vp_peer *p, uint32_t ts, const int16_t *pcm, int got)
{
    size_t at = (size_t)(uint32_t)(ts - p->ts0);
    if (at + (size_t)got <= p->rx_cap) {
        memcpy(p->rx + at, pcm, sizeof(int16_t) * (size_t)got);
        if (at + (size_t)got > p->rx_end)
            p->rx_end = at + (size_t)got;
    }
    uint64_t t = now_ms() - p->cfg.t0_ms;
    for (int k = 0; k < got; k++) {
        size_t bin = (size_t)t + (size_t)k / 48;
        if (bin < p->env_cap)
            p->env_heard[bin] += (float)abs(pcm[k]) / 48.0f;
    }
}

static void on_rtp(vp_peer *p, uint8_t *buf, size_t len)
{
    int n = (int)len;
    if (!p->cfg.record) { /* a load generator's listener: counting is enough */
        p->rx_packets++;
        return;
    }
    if (srtp_unprotect(p->srtp, buf, &n) != srtp_err_status_ok) {
        p->rx_srtp_failures++;
        return;
    }
    p->rx_packets++;
    if (n < 12)
        return;
    size_t off = 12 + 4 * (size_t)(buf[0] & 0x0f);
    if ((buf[0] & 0x10) && off + 4 <= (size_t)n)
        off += 4 + 4 * (size_t)(buf[off + 2] << 8 | buf[off + 3]);
    if (off >= (size_t)n)
        return;
    uint16_t seq = (uint16_t)(buf[2] << 8 | buf[3]);
    uint32_t ts = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
    int16_t pcm[5760];
    if (!p->have_ts0) {
        p->ts0 = ts;
        p->rx_seq = (uint16_t)(seq - 1);
        p->have_ts0 = true;
    }
    /* a gap in the sequence is loss, as a browser sees it: conceal all but the
     * last missing frame, rebuild that one from this packet's FEC */
    int16_t gap = (int16_t)(uint16_t)(seq - p->rx_seq - 1);
    if (gap < 0)
        return; /* late or repeated */
    for (int g = gap; g >= 1 && g <= 10; g--) {
        bool fec = g == 1;
        int got = opus_decode(p->dec, fec ? buf + off : NULL, fec ? n - (int)off : 0, pcm, 960,
                              fec ? 1 : 0);
        if (got > 0)
            keep(p, ts - 960u * (uint32_t)g, pcm, got);
    }
    p->rx_seq = seq;
    int got = opus_decode(p->dec, buf + off, n - (int)off, pcm, 5760, 0);
    if (got > 0)
        keep(p, ts, pcm, got);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rx[2048];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rx, sizeof(rx));
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    vp_peer *p = h->data;
    (void)flags;
    if (nread <= 0 || !addr || p->closed)
        return;
    uint8_t *b = (uint8_t *)buf->base;
    size_t n = (size_t)nread;
    if (b[0] <= 3) { /* STUN: our check's answer */
        StunMessage msg;
        StunDefaultValidaterData creds[2] = {
            {(uint8_t *)p->username, strlen(p->username), (uint8_t *)p->rpwd, strlen(p->rpwd)},
            {NULL, 0, NULL, 0}};
        if (stun_agent_validate(&p->stun, &msg, b, n, stun_agent_default_validater, creds) ==
                STUN_VALIDATION_SUCCESS &&
            stun_message_get_class(&msg) == STUN_RESPONSE) {
            struct sockaddr_storage mapped;
            socklen_t mlen = sizeof(mapped);
            if (stun_usage_ice_conncheck_process(&msg, &mapped, &mlen,
                                                 STUN_USAGE_ICE_COMPATIBILITY_RFC5245) ==
                STUN_USAGE_ICE_RETURN_SUCCESS)
                p->ice_ok = true;
        }
    } else if (b[0] >= 20 && b[0] <= 63) {
        BIO_write(SSL_get_rbio(p->ssl), b, (int)n);
        if (!p->keyed && !p->dtls_failed) {
            int r = SSL_do_handshake(p->ssl);
            if (r == 1)
                keys_ready(p);
            else if (SSL_get_error(p->ssl, r) != SSL_ERROR_WANT_READ)
                p->dtls_failed = true;
        } else {
            uint8_t scratch[256];
            SSL_read(p->ssl, scratch, sizeof(scratch));
        }
        flush_dtls(p);
    } else if (b[0] >= 128 && b[0] <= 191 && p->keyed) {
        uint8_t pt = b[1] & 0x7f;
        if (pt >= 64 && pt <= 95) {
            int len = (int)n;
            if (srtp_unprotect_rtcp(p->srtp, b, &len) != srtp_err_status_ok)
                p->rx_srtp_failures++;
        } else {
            on_rtp(p, b, n);
        }
    }
}

static void send_media(vp_peer *p)
{
    uint8_t pkt[12 + 8 + 1276 + 64];
    int16_t pcm[FRAME];
    uint8_t level;
    size_t len;

    if (p->cfg.precoded) {
        size_t i = (size_t)(p->sample / FRAME) % 50;
        len = p->pre_len[i];
        level = p->pre_level[i];
        memcpy(pkt + 20, p->pre[i], len);
    } else {
        for (int k = 0; k < FRAME; k++)
            pcm[k] = vp_signal_sample(&p->cfg, p->sample + (uint64_t)k);
        level = level_of(pcm, FRAME);
        opus_int32 n = opus_encode(p->enc, pcm, FRAME, pkt + 20, 1276);
        len = n > 0 ? (size_t)n : 0;
        if (p->cfg.record) {
            uint64_t t = now_ms() - p->cfg.t0_ms;
            for (int k = 0; k < FRAME; k++) {
                size_t bin = (size_t)t + (size_t)k / 48;
                if (bin < p->env_cap)
                    p->env_sent[bin] += (float)abs(pcm[k]) / 48.0f;
            }
        }
    }
    p->sample += FRAME;
    if (len == 0)
        return;
    size_t hdr = p->cfg.level_id ? 20 : 12;
    if (!p->cfg.level_id)
        memmove(pkt + 12, pkt + 20, len);
    pkt[0] = p->cfg.level_id ? 0x90 : 0x80;
    pkt[1] = 111;
    pkt[2] = (uint8_t)(p->seq >> 8);
    pkt[3] = (uint8_t)p->seq;
    pkt[4] = (uint8_t)(p->ts >> 24);
    pkt[5] = (uint8_t)(p->ts >> 16);
    pkt[6] = (uint8_t)(p->ts >> 8);
    pkt[7] = (uint8_t)p->ts;
    pkt[8] = (uint8_t)(p->ssrc >> 24);
    pkt[9] = (uint8_t)(p->ssrc >> 16);
    pkt[10] = (uint8_t)(p->ssrc >> 8);
    pkt[11] = (uint8_t)p->ssrc;
    if (p->cfg.level_id)
        rtp_level_ext(pkt + 12, p->cfg.level_id, level);
    p->seq++;
    p->ts += FRAME;
    int n = (int)(hdr + len);
    if (srtp_protect(p->srtp, pkt, &n) != srtp_err_status_ok)
        return;
    p->tx_packets++;
    memcpy(p->last_rtp, pkt, (size_t)n);
    p->last_rtp_len = (size_t)n;
    send_impaired(p, pkt, (size_t)n);
}

static void on_timer(uv_timer_t *t)
{
    vp_peer *p = t->data;
    uint64_t now = now_ms();

    if (p->closed)
        return;
    if (!p->cfg.no_checks && !p->checks_stopped &&
        now - p->last_check_ms >= (p->ice_ok ? p->cfg.consent_ms : CHECK_MS))
        send_check(p);
    if (!p->keyed && !p->dtls_failed && p->ice_ok) {
        if (p->cfg.dtls_client && !p->hello_sent) { /* we are active: the ClientHello */
            SSL_do_handshake(p->ssl);
            p->hello_sent = true;
        }
        DTLSv1_handle_timeout(p->ssl);
        flush_dtls(p);
    }
    if (p->keyed)
        send_media(p);
}

int vp_peer_init(vp_peer *p, uv_loop_t *loop, const vp_config *cfg)
{
    static const uint16_t attrs[] = {STUN_ATTRIBUTE_USERNAME,    STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                     STUN_ATTRIBUTE_FINGERPRINT, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS,
                                     STUN_ATTRIBUTE_ERROR_CODE,  0};
    int err;

    memset(p, 0, sizeof(*p));
    p->cfg = *cfg;
    if (!p->cfg.record_ms)
        p->cfg.record_ms = 10000;
    if (!p->cfg.consent_ms)
        p->cfg.consent_ms = 1000;
    p->loop = loop;
    unsigned char r[64];
    RAND_bytes(r, sizeof(r));
    for (int i = 0; i < 8; i++)
        p->ufrag[i] = "abcdefghijklmnopqrstuvwxyz012345"[r[i] % 32];
    for (int i = 0; i < 24; i++)
        p->pwd[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ678901"[r[8 + i] % 32];
    memcpy(&p->ssrc, r + 32, 4);
    memcpy(&p->seq, r + 36, 2);
    memcpy(&p->ts, r + 38, 4);
    memcpy(&p->tie, r + 42, 8);
    stun_agent_init(&p->stun, attrs, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);

    p->enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    p->dec = opus_decoder_create(48000, 1, &err);
    if (!p->enc || !p->dec)
        return -1;
    opus_encoder_ctl(p->enc, OPUS_SET_BITRATE(32000));
    opus_encoder_ctl(p->enc, OPUS_SET_COMPLEXITY(5));
    opus_encoder_ctl(p->enc, OPUS_SET_INBAND_FEC(1));
    opus_encoder_ctl(p->enc, OPUS_SET_PACKET_LOSS_PERC(15));
    if (p->cfg.precoded) {
        p->pre = calloc(50, sizeof(*p->pre));
        p->pre_len = calloc(50, sizeof(*p->pre_len));
        p->pre_level = calloc(50, sizeof(*p->pre_level));
        if (!p->pre || !p->pre_len || !p->pre_level)
            return -1;
        for (int i = 0; i < 50; i++) {
            int16_t pcm[FRAME];
            for (int k = 0; k < FRAME; k++)
                pcm[k] = vp_signal_sample(&p->cfg, (uint64_t)i * FRAME + (uint64_t)k);
            opus_int32 n = opus_encode(p->enc, pcm, FRAME, p->pre[i], 1276);
            p->pre_len[i] = (uint16_t)(n > 0 ? n : 0);
            p->pre_level[i] = level_of(pcm, FRAME);
        }
    }
    if (p->cfg.record) {
        p->rx_cap = (size_t)p->cfg.record_ms * 48;
        p->env_cap = p->cfg.record_ms + 60000;
        p->rx = calloc(p->rx_cap, sizeof(*p->rx));
        p->env_sent = calloc(p->env_cap, sizeof(float));
        p->env_heard = calloc(p->env_cap, sizeof(float));
        if (!p->rx || !p->env_sent || !p->env_heard)
            return -1;
    }

    p->ssl = SSL_new(peer_ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(p->ssl, rb, wb);
    if (p->cfg.dtls_client)
        SSL_set_connect_state(p->ssl);
    else
        SSL_set_accept_state(p->ssl);
    if (p->cfg.srtp_cm_only && SSL_set_tlsext_use_srtp(p->ssl, "SRTP_AES128_CM_SHA1_80") != 0)
        return -1;

    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (uv_udp_init(loop, &p->udp) != 0 || uv_udp_bind(&p->udp, (struct sockaddr *)&a, 0) != 0)
        return -1;
    p->udp.data = p;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    return 0;
}

void vp_peer_remote(const vp_peer *p, vc_remote *out)
{
    static const char wrong[] = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
                                "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
    memset(out, 0, sizeof(*out));
    out->ice_ufrag = p->ufrag;
    out->ice_pwd = p->pwd;
    out->fingerprint_hash = "sha-256";
    out->fingerprint = p->cfg.wrong_fingerprint ? wrong : peer_fp;
    out->setup = p->cfg.dtls_client ? VC_SETUP_ACTIVE : VC_SETUP_ACTPASS;
    out->opus_pt = 111;
    out->opus_fec = true;
    out->audio_level_id = p->cfg.level_id;
    out->ssrc = p->ssrc;
}

int vp_peer_connect(vp_peer *p, const vc_local *local, const char *bridge_fingerprint)
{
    const vc_candidate *c = NULL;
    for (size_t i = 0; i < local->n_candidates; i++)
        if (strcmp(local->candidates[i].ip, "127.0.0.1") == 0)
            c = &local->candidates[i];
    if (!c)
        return -1;
    p->bridge.sin_family = AF_INET;
    p->bridge.sin_port = htons(c->port);
    p->bridge.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t ulen = strlen(local->ice_ufrag) + strlen(p->ufrag) + 2;
    p->username = malloc(ulen);
    if (!p->username)
        return -1;
    snprintf(p->username, ulen, "%s:%s", local->ice_ufrag, p->ufrag);
    snprintf(p->rpwd, sizeof(p->rpwd), "%s", local->ice_pwd);
    snprintf(p->bridge_fp, sizeof(p->bridge_fp), "%s", bridge_fingerprint);
    uv_udp_recv_start(&p->udp, on_alloc, on_recv);
    uv_timer_start(&p->timer, on_timer, 1, 20);
    return 0;
}

void vp_peer_stop_checks(vp_peer *p)
{
    p->checks_stopped = true;
}

void vp_peer_replay_last_packet_to_bridge(vp_peer *p)
{
    if (p->last_rtp_len)
        send_raw(p, p->last_rtp, p->last_rtp_len);
}

void vp_peer_send_raw(vp_peer *p, const void *buf, size_t len)
{
    send_raw(p, buf, len);
}

static void freed(uv_handle_t *h)
{
    (void)h;
}

void vp_peer_close(vp_peer *p)
{
    if (p->closed)
        return;
    p->closed = true;
    uv_close((uv_handle_t *)&p->udp, freed);
    uv_close((uv_handle_t *)&p->timer, freed);
    SSL_free(p->ssl);
    if (p->srtp)
        srtp_dealloc(p->srtp);
    opus_encoder_destroy(p->enc);
    opus_decoder_destroy(p->dec);
    free(p->username);
    free(p->pre);
    free(p->pre_len);
    free(p->pre_level);
    free(p->rx);
    free(p->env_sent);
    free(p->env_heard);
}

double vp_goertzel(const int16_t *pcm, size_t n, double hz)
{
    double w = 2 * M_PI * hz / 48000.0, c = 2 * cos(w), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s = pcm[i] / 32768.0 + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    double power = s1 * s1 + s2 * s2 - c * s1 * s2;
    return n ? power / ((double)n * (double)n / 4.0) : 0.0;
}

int vp_latency_ms(const vp_peer *from, const vp_peer *to, size_t start_ms, size_t end_ms,
                  int max_ms)
{
    double best = -1.0;
    int best_lag = -1;
    if (!from->env_sent || !to->env_heard)
        return -1;
    for (int lag = 0; lag <= max_ms; lag++) {
        double xy = 0, xx = 0, yy = 0;
        for (size_t t = start_ms; t < end_ms && t + (size_t)lag < to->env_cap; t++) {
            double x = from->env_sent[t], y = to->env_heard[t + (size_t)lag];
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        double c = xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : 0;
        if (c > best) {
            best = c;
            best_lag = lag;
        }
    }
    return best_lag;
}
