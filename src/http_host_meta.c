/*
 * http_host_meta.c - XEP-0156: /.well-known/host-meta (XRD) and
 * /.well-known/host-meta.json, so that web clients given only a JID find
 * the WebSocket and BOSH endpoints of this server.
 *
 * The links use the scheme and authority the client reached us with (its
 * Host header) when that names one of our hosts, else the first host and
 * the first listener of the request's kind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "vestnik/http.h"
#include "vestnik/module.h"
#include "web_transports.h"

#define HOST_META_PATH "/.well-known/host-meta"

/* "host" or "host:port" as the client named us, if it is ours. */
static char *authority(vn_http_request *req, bool tls)
{
    const char *given = vn_http_request_header(req, "Host");

    if (given) {
        size_t host_len = strcspn(given, ":");
        char *host = vn_strndup(given, host_len);
        char *domain = vn_jid_prep_domain(host);
        bool ours = domain && vn_is_local_host(domain);
        free(host);
        free(domain);
        if (ours)
            return vn_strdup(given);
    }
    return vn_asprintf("%s:%d", vn_local_hosts()[0], vn_http_listener_port(tls));
}

static void on_request(vn_http_request *req, void *ud)
{
    const char *path = vn_http_request_path(req);
    bool json = strcmp(path, HOST_META_PATH ".json") == 0;
    bool tls = vn_http_request_is_tls(req);
    vn_buf body;

    if (!json && strcmp(path, HOST_META_PATH) != 0) {
        vn_http_respond(req, 404, "text/plain", "not found\n", 10);
        return;
    }
    char *auth = authority(req, tls);
    char *websocket =
        vn_asprintf("%s://%s%s", tls ? "wss" : "ws", auth, vn_srv.cfg->websocket_path);
    char *bosh = vn_asprintf("%s://%s%s", tls ? "https" : "http", auth, vn_srv.cfg->bosh_path);
    vn_buf_init(&body);
    if (json) {
        /* Both URLs come from the config and a checked host name: no
         * character in them needs JSON escaping beyond what XML needs. */
        vn_buf_printf(&body,
                      "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\","
                      "\"href\":\"%s\"},{\"rel\":\"urn:xmpp:alt-connections:xbosh\","
                      "\"href\":\"%s\"}]}\n",
                      websocket, bosh);
    } else {
        vn_buf_append_str(&body, "<?xml version='1.0' encoding='utf-8'?>\n"
                                 "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n"
                                 "  <Link rel='urn:xmpp:alt-connections:websocket' href='");
        vn_buf_append_xml_escaped(&body, websocket, strlen(websocket));
        vn_buf_append_str(&body, "'/>\n  <Link rel='urn:xmpp:alt-connections:xbosh' href='");
        vn_buf_append_xml_escaped(&body, bosh, strlen(bosh));
        vn_buf_append_str(&body, "'/>\n</XRD>\n");
    }
    vn_http_respond(req, 200, json ? "application/json" : "application/xrd+xml", body.data,
                    body.len);
    vn_buf_free(&body);
    free(websocket);
    free(bosh);
    free(auth);
}

/* Web clients on other origins read it (XEP-0156 §3). */
static const vn_http_cors host_meta_cors = {.methods = "GET, HEAD"};

static const vn_http_handler host_meta_handler = {.on_request = on_request,
                                                  .cors = &host_meta_cors};

void vn_host_meta_init(void)
{
    if (vn_http_route_add(HOST_META_PATH, &host_meta_handler, NULL) < 0)
        vn_log_error("http: %s is taken by another route", HOST_META_PATH);
}
