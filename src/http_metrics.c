/*
 * http_metrics.c - GET /metrics: this node's counters in Prometheus' text
 * exposition format (version 0.0.4), for one scrape target per node.
 *
 * Off unless http.metrics is true: the numbers say how busy the server
 * is, which an operator may not want to show on a public listener.
 */
#include <string.h>

#include "c2s.h"
#include "cluster.h"
#include "metrics.h"
#include "server.h"
#include "sessions.h"
#include "vestnik/http.h"
#include "vestnik/module.h"

vn_metrics_counters vn_metrics;

static void metric(vn_buf *out, const char *name, const char *type, const char *help,
                   unsigned long long value)
{
    vn_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                  value);
}

static void on_request(vn_http_request *req, void *ud)
{
    const char *method = vn_http_request_method(req);
    if (strcmp(vn_http_request_path(req), "/metrics") != 0) {
        vn_http_respond(req, 404, "text/plain", "not found\n", 10);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        vn_http_response_header(req, "Allow", "GET, HEAD");
        vn_http_respond(req, 405, "text/plain", "method not allowed\n", 19);
        return;
    }
    vn_buf out;
    vn_buf_init(&out);
    metric(&out, "vestnik_sessions", "gauge", "Client resources bound on this node.",
           vn_sessions_count());
    metric(&out, "vestnik_c2s_connections", "gauge", "Client connections to this node.",
           vn_c2s_count());
    metric(&out, "vestnik_stanzas_routed_total", "counter", "Stanzas this node routed.",
           vn_metrics.routed);
    metric(&out, "vestnik_stanzas_delivered_total", "counter",
           "Stanzas written to this node's clients.", vn_metrics.delivered);
    metric(&out, "vestnik_uptime_seconds", "gauge", "Seconds since this node started.",
           (unsigned long long)((vn_now_us() - vn_srv.started_us) / 1000000));
    vn_cluster_metrics(&out);
    vn_http_respond(req, 200, "text/plain; version=0.0.4", out.data, out.len);
    vn_buf_free(&out);
}

static const vn_http_handler metrics_handler = {.on_request = on_request};

void vn_metrics_init(void)
{
    if (vn_srv.cfg->http_metrics && vn_http_route_add("/metrics", &metrics_handler, NULL) < 0)
        vn_log_error("http: /metrics is taken by another route");
}
