/*
 * metrics.h - counters of the core for /metrics (http_metrics.c).
 *
 * Plain counters bumped on the loop thread, read by the same thread when
 * /metrics is asked: no atomics needed.
 */
#ifndef VESTNIK_METRICS_H
#define VESTNIK_METRICS_H

#include <stdint.h>

typedef struct vn_metrics_counters {
    uint64_t routed;    /* stanzas through vn_route and fan-out */
    uint64_t delivered; /* stanzas written to local clients */
} vn_metrics_counters;

extern vn_metrics_counters vn_metrics;

/* Claim /metrics on the http listeners if http.metrics is true. */
void vn_metrics_init(void);

#endif
