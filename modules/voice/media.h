/* media.h - the conference bridge's media engine, as the signalling sees it.
 *
 * mod_voice (Jingle on the XMPP loop) and the media engine (ICE-lite, DTLS-SRTP,
 * Opus, jitter buffers and the mixer on a thread of its own) meet here and
 * nowhere else. The contract:
 *
 * - Every function below is called on the thread that runs `loop` (the XMPP
 *   loop), never from the media thread. None of them blocks on the media thread
 *   beyond a short mutex; vc_leg_open() binds the leg's UDP port itself, so it
 *   can fill `local` synchronously and the session-accept can go out at once.
 * - Events come back on the same loop thread (through a uv_async), in the order
 *   they happened for each leg. The callback may call vc_leg_close() and
 *   vc_leg_set_muted(), but not vc_engine_stop().
 * - A leg is one participant: one ICE-lite host port (rtcp-mux, RFC 7983
 *   demultiplexing of STUN, DTLS and SRTP on it), one DTLS-SRTP session, one
 *   Opus stream each way. Legs opened with the same `conf` number hear each
 *   other: each hears the mix of everyone else's voice, never its own.
 * - A failed leg (VC_EV_FAILED) sends and mixes nothing more, but keeps its id
 *   until the caller closes it with vc_leg_close(); no event follows a close.
 * - Every limit is in vc_engine_config; a zero field takes the default named
 *   next to it (vc_engine_config_defaults() fills them in).
 *
 * Errors are negative vc_error values, with vc_strerror() for each.
 */
#ifndef VN_VOICE_MEDIA_H
#define VN_VOICE_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef enum vc_error {
    VC_OK = 0,
    VC_EINVAL = -1,       /* a missing or malformed argument (ufrag, fingerprint...) */
    VC_ENOMEM = -2,       /* out of memory */
    VC_EFULL = -3,        /* max_legs or max_legs_per_conf reached */
    VC_ENOPORT = -4,      /* no free UDP port left in [port_min, port_max] */
    VC_EFINGERPRINT = -5, /* unsupported fingerprint hash (sha-1/224/256/384/512 are) */
    VC_ESYS = -6,         /* a system call failed (socket, thread...) */
    VC_ECRYPTO = -7,      /* OpenSSL or libsrtp2 could not be set up */
    VC_ENOENT = -8,       /* no such leg */
} vc_error;

const char *vc_strerror(int err);

#define VC_MAX_ADDRESSES 8

typedef struct vc_engine_config {
    /* Addresses offered as host candidates (IPv4 or IPv6 literals). None: every
     * up, non-loopback interface address of the machine, plus 127.0.0.1. */
    const char *addresses[VC_MAX_ADDRESSES];
    size_t n_addresses;
    uint16_t port_min;           /* default 40000 */
    uint16_t port_max;           /* default 40999 */
    unsigned max_legs;           /* default 1000 legs in all calls */
    unsigned max_legs_per_conf;  /* default 500 */
    unsigned opus_bitrate;       /* bit/s of the mixes we send, default 32000 */
    unsigned opus_complexity;    /* 1..10, default 5 */
    unsigned max_speakers;       /* voices mixed at once, loudest first, default 3 */
    unsigned connect_timeout_ms; /* ICE + DTLS must complete in it, default 15000 */
    unsigned consent_timeout_ms; /* RFC 7675 consent lost after, default 30000 */
    unsigned jitter_max_ms;      /* jitter buffer ceiling, default 200 */
    unsigned rtcp_interval_ms;   /* sender/receiver reports, default 1000 */
} vc_engine_config;

void vc_engine_config_defaults(vc_engine_config *cfg);

typedef struct vc_engine vc_engine;
typedef uint32_t vc_leg_id; /* 0 is never a leg */

typedef enum vc_event_type {
    VC_EV_CONNECTED, /* ICE nominated and DTLS-SRTP keyed: media flows */
    VC_EV_FAILED,    /* see reason; the leg is dead, close it */
    VC_EV_SPEAKING,  /* the leg became one of the mixed voices */
    VC_EV_SILENT,    /* ... and stopped being one */
} vc_event_type;

typedef enum vc_fail_reason {
    VC_FAIL_NONE = 0,
    VC_FAIL_ICE_TIMEOUT, /* no valid connectivity check within connect_timeout_ms */
    VC_FAIL_DTLS,        /* handshake failed, timed out, or fingerprint mismatch */
    VC_FAIL_CONSENT,     /* no consent check within consent_timeout_ms (RFC 7675) */
    VC_FAIL_INTERNAL,    /* a socket or crypto error on our side */
} vc_fail_reason;

typedef struct vc_event {
    vc_event_type type;
    vc_leg_id leg;
    uint64_t conf;
    vc_fail_reason reason; /* VC_EV_FAILED only */
    const char *detail;    /* VC_EV_FAILED only: static text for logs, may be NULL */
} vc_event;

typedef void (*vc_event_cb)(const vc_event *ev, void *ud);

/* Starts the media thread. NULL on failure with a message in err. */
vc_engine *vc_engine_start(const vc_engine_config *cfg, uv_loop_t *loop, vc_event_cb cb, void *ud,
                           char *err, size_t errlen);
/* Closes every leg, joins the media thread, frees the engine. No event after. */
void vc_engine_stop(vc_engine *e);

/* The sha-256 fingerprint ("AB:CD:...", 95 characters) of the engine's DTLS
 * certificate, an ECDSA P-256 key generated at start. */
const char *vc_engine_fingerprint(const vc_engine *e);

typedef enum vc_setup {
    VC_SETUP_ACTPASS = 0, /* the remote lets us choose: we are the DTLS client */
    VC_SETUP_ACTIVE,      /* the remote is the DTLS client, we are the server */
    VC_SETUP_PASSIVE,     /* the remote is the DTLS server, we are the client */
} vc_setup;

/* What the remote signalled (session-initiate). Strings are copied. */
typedef struct vc_remote {
    const char *ice_ufrag;        /* required */
    const char *ice_pwd;          /* required */
    const char *fingerprint_hash; /* "sha-256" ... (required) */
    const char *fingerprint;      /* "AB:CD:..." (required) */
    vc_setup setup;
    uint8_t opus_pt;        /* payload type of opus/48000/2, e.g. 111 */
    bool opus_fec;          /* useinbandfec=1: the remote decodes FEC */
    uint8_t audio_level_id; /* RFC 6464 extmap id, 0 none */
    uint32_t ssrc;          /* the remote's ssrc when signalled, else 0 */
} vc_remote;

#define VC_MAX_CANDIDATES (VC_MAX_ADDRESSES + 1)

typedef struct vc_candidate {
    char ip[46];
    uint16_t port;
    uint32_t priority;
    char foundation[12];
    unsigned component; /* always 1: rtcp-mux */
} vc_candidate;

/* What we answer (session-accept), filled by vc_leg_open(). */
typedef struct vc_local {
    char ice_ufrag[9];
    char ice_pwd[25];
    uint32_t ssrc;
    char cname[17];
    vc_setup setup;               /* VC_SETUP_ACTIVE or VC_SETUP_PASSIVE, as we play it */
    const char *fingerprint_hash; /* "sha-256" */
    char fingerprint[96];
    uint8_t opus_pt; /* echoes remote->opus_pt */
    vc_candidate candidates[VC_MAX_CANDIDATES];
    size_t n_candidates;
} vc_local;

/* Opens a leg in call `conf`; 0 and *leg set, or a negative vc_error. */
int vc_leg_open(vc_engine *e, uint64_t conf, const vc_remote *remote, vc_local *local,
                vc_leg_id *leg);
/* A muted leg (moderator mute) is heard by nobody; it still hears the call. */
int vc_leg_set_muted(vc_engine *e, vc_leg_id leg, bool muted);
int vc_leg_close(vc_engine *e, vc_leg_id leg);

typedef struct vc_leg_stats {
    uint64_t conf;
    bool connected;
    bool speaking;
    bool muted;
    uint64_t packets_in; /* SRTP packets accepted */
    uint64_t packets_out;
    uint64_t packets_lost;      /* never arrived in time */
    uint64_t packets_concealed; /* played out by PLC */
    uint64_t packets_recovered; /* decoded from the next packet's in-band FEC (libopus
                                 * conceals instead when that packet carries none) */
    uint64_t srtp_failures;     /* auth or replay failures, dropped */
    unsigned jitter_ms;         /* RFC 3550 interarrival jitter */
    unsigned buffer_ms;         /* the jitter buffer's current target delay */
} vc_leg_stats;

int vc_leg_stats_get(vc_engine *e, vc_leg_id leg, vc_leg_stats *out);

typedef struct vc_stats {
    unsigned legs;
    unsigned legs_connected;
    unsigned confs;
    uint64_t ticks;
    uint64_t packets_in;
    uint64_t packets_out;
    uint64_t packets_lost; /* lost, concealed, recovered: summed over the open legs */
    uint64_t packets_concealed;
    uint64_t packets_recovered;
    uint64_t srtp_failures;
    uint64_t decodes;    /* Opus frames decoded (only speakers are) */
    uint64_t encodes;    /* Opus frames encoded: one per distinct mix per tick */
    uint64_t late_ticks; /* mixer ticks that ran more than 10 ms late */
    uint64_t cpu_ns;     /* CPU time of the media thread */
    uint64_t forwards;   /* frames of a lone voice passed through unmixed */
} vc_stats;

void vc_engine_stats(vc_engine *e, vc_stats *out);

#endif
