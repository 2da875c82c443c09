/*
 * botapi.c - the Bot API part of mod_services: its routes on the HTTP
 * server and its lifetime.
 */
#include <string.h>

#include <vestnik/http.h>

#include "botapi.h"

#define UNAUTHORIZED "{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}"

static void botapi_request(vn_http_request *req, void *ud)
{
    vn_http_respond(req, 401, "application/json", UNAUTHORIZED, strlen(UNAUTHORIZED));
}

static const vn_http_handler botapi_handler = {.on_request = botapi_request};

int botapi_start(vn_module *m)
{
    return vn_http_route_add("/bot", &botapi_handler, NULL);
}

void botapi_stop(vn_module *m)
{
    vn_http_route_remove("/bot");
}

void botapi_reload(vn_module *m)
{
}
