/*
 * shaper.h - load shaping of a stream's input (client, component, s2s).
 *
 * A stream over its stanza rate is not disconnected: it stops being read
 * (the socket is left unread, TCP back-pressure slows the sender) until its
 * token bucket has refilled, and nothing it sent is lost. Only a stream
 * that keeps us throttling it for limits.max_throttle_time seconds without
 * a break (sustained excess, not a burst) is closed with policy-violation.
 *
 * The stanza that empties the bucket is still handled; the owner's pause
 * callback then stops its parser after that stanza and its connection
 * from being read, and the shaper calls it again, from a timer, to resume.
 * A transport that cannot pause passes NULL: its stream is only accounted
 * (and closed after sustained excess).
 */
#ifndef VESTNIK_SHAPER_H
#define VESTNIK_SHAPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vestnik/module.h"

/* paused true: stop reading after the current stanza; false: read again
 * (the callback may handle buffered stanzas, and so pause again). */
typedef void (*vn_shaper_pause_fn)(void *ud, bool paused);

typedef struct vn_shaper {
    double tokens;
    uint64_t refilled_ms; /* when tokens was last brought up to date */
    bool started;
    bool paused;              /* stopped reading, resume_timer pending */
    uint64_t paused_until;    /* end of the last (or current) pause */
    uint64_t throttled_since; /* start of the current episode; 0: none */
    vn_timer *resume_timer;
    vn_shaper_pause_fn pause;
    void *ud;
    const char *what;              /* "c2s", "component", "s2s": for the log */
    struct vn_shaper *prev, *next; /* list of shapers in an episode */
} vn_shaper;

/* The limits a stream type gets from the config. */
typedef struct vn_shaper_limits {
    unsigned rate;           /* stanzas per second; 0: no limit */
    unsigned burst;          /* bucket size */
    unsigned max_throttle_s; /* sustained excess before closing; 0: never */
} vn_shaper_limits;

void vn_shaper_init(vn_shaper *sh, const char *what, vn_shaper_pause_fn pause, void *ud);
/* Stops a pending resume; the owner is being freed. */
void vn_shaper_cleanup(vn_shaper *sh);

/* One stanza arrived. false: the stream has exceeded its rate for
 * max_throttle_s without a break and must be closed (logged here, with
 * peer naming it). Otherwise the stanza is to be handled; the shaper may
 * have paused the stream. */
bool vn_shaper_stanza(vn_shaper *sh, const vn_shaper_limits *lim, const char *peer);

/* For vestnikctl status: streams being throttled now, throttle episodes
 * since start, streams closed for sustained excess. */
typedef struct vn_shaper_stats {
    size_t throttled_now;
    uint64_t episodes;
    uint64_t closed;
} vn_shaper_stats;
void vn_shaper_get_stats(vn_shaper_stats *out);

#endif
