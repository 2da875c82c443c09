/*
 * cred_http.c - issuer metadata, status lists and one-time links on the
 * http listener (cred_http.h).
 *
 * The routes answer from the module's callbacks at request time and keep
 * nothing but the one-time links, which are in memory, bounded in number
 * and size, and dropped on expiry (checked on every access, no timer).
 */
#include "cred_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>
#include <vestnik/http.h>
#include <vestnik/i18n.h>
#include <vestnik/log.h>
#include <vestnik/util.h>

#include "cred_error.h"
#include "cred_internal.h"

#define WELL_KNOWN "/.well-known/jwt-vc-issuer"
#define DEFAULT_STATUS_PREFIX "/credentials/status/"
#define DEFAULT_LINK_PREFIX "/credentials/link/"
#define DEFAULT_MAX_LINKS 1000
#define DEFAULT_MAX_LINK_SIZE (64 * 1024)
#define METADATA_MAX_AGE 300
#define TOKEN_BYTES 16
#define MAX_LINK_TTL (7 * 86400) /* a one-time link is short-lived by design */

typedef struct link {
    char *token;
    char *content_type;
    unsigned char *body;
    size_t len;
    int64_t expires;
    unsigned uses_left;
    UT_hash_handle hh;
} link;

static struct {
    bool started;
    char *status_prefix;
    char *link_prefix;
    size_t max_links;
    size_t max_link_size;
    const vn_cred_http_ops *ops;
    void *ud;
    link *links;
} http;

static const vn_http_cors cors = {.methods = "GET, HEAD"};

static void respond_error(vn_http_request *req, int status, const char *error,
                          const char *description)
{
    /* The server's language: the request names none a route could trust. */
    json_t *body =
        json_pack("{s:s, s:s}", "error", error, "error_description", vn_tr(NULL, description));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    vn_http_response_header(req, "Cache-Control", "no-store");
    vn_http_respond(req, status, "application/json", text, strlen(text));
    free(text);
}

/* GET and HEAD only; false (answered) otherwise. */
static bool method_ok(vn_http_request *req)
{
    const char *m = vn_http_request_method(req);
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return true;
    vn_http_response_header(req, "Allow", "GET, HEAD");
    respond_error(req, 405, "method_not_allowed", N_("Only GET and HEAD are served here."));
    return false;
}

static void set_max_age(vn_http_request *req, int64_t max_age)
{
    char value[48];
    if (max_age > 0)
        snprintf(value, sizeof(value), "max-age=%lld", (long long)max_age);
    else
        snprintf(value, sizeof(value), "no-cache");
    vn_http_response_header(req, "Cache-Control", value);
}

/* ---- issuer metadata ---- */

static void on_metadata(vn_http_request *req, void *ud)
{
    (void)ud;
    if (!method_ok(req))
        return;
    const char *rest = vn_http_request_path(req) + strlen(WELL_KNOWN);
    if (*rest && *rest != '/') {
        respond_error(req, 404, "not_found", N_("No such issuer."));
        return;
    }
    json_t *doc = http.ops->issuer_metadata
                      ? http.ops->issuer_metadata(*rest ? rest + 1 : "", http.ud)
                      : NULL;
    if (!doc) {
        respond_error(req, 404, "not_found", N_("No such issuer."));
        return;
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    set_max_age(req, METADATA_MAX_AGE);
    vn_http_respond(req, 200, "application/json", text, strlen(text));
    free(text);
}

/* ---- status lists ---- */

static void on_status(vn_http_request *req, void *ud)
{
    (void)ud;
    if (!method_ok(req))
        return;
    const char *id = vn_http_request_path(req) + strlen(http.status_prefix);
    int64_t max_age = 0;
    char *jwt = *id && http.ops->status_list ? http.ops->status_list(id, &max_age, http.ud) : NULL;
    if (!jwt) {
        respond_error(req, 404, "not_found", N_("No such status list."));
        return;
    }
    set_max_age(req, max_age);
    vn_http_respond(req, 200, "application/statuslist+jwt", jwt, strlen(jwt));
    free(jwt);
}

/* ---- one-time links ---- */

static void link_free(link *l)
{
    HASH_DEL(http.links, l);
    free(l->token);
    free(l->content_type);
    free(l->body);
    free(l);
}

static void links_expire(int64_t now)
{
    link *l, *tmp;
    HASH_ITER(hh, http.links, l, tmp)
    {
        if (l->expires <= now)
            link_free(l);
    }
}

static void on_link(vn_http_request *req, void *ud)
{
    (void)ud;
    if (!method_ok(req))
        return;
    links_expire((int64_t)time(NULL));
    const char *token = vn_http_request_path(req) + strlen(http.link_prefix);
    link *l = NULL;
    HASH_FIND_STR(http.links, token, l);
    if (!l) {
        respond_error(req, 404, "not_found", N_("This link has expired or was already used."));
        return;
    }
    /* req is gone once answered (vestnik/http.h): read it first. A HEAD
     * shows the link is there without using it up. */
    bool used = strcmp(vn_http_request_method(req), "GET") == 0;
    vn_http_response_header(req, "Cache-Control", "no-store");
    vn_http_respond(req, 200, l->content_type, l->body, l->len);
    if (used && --l->uses_left == 0)
        link_free(l);
}

static const vn_http_handler metadata_handler = {.on_request = on_metadata, .cors = &cors};
static const vn_http_handler status_handler = {.on_request = on_status, .cors = &cors};
static const vn_http_handler link_handler = {.on_request = on_link, .cors = &cors};

int vn_cred_http_start(const vn_cred_http_config *cfg, const vn_cred_http_ops *ops, void *ud)
{
    if (http.started || !ops)
        return VN_CRED_EINVAL;
    const char *sp = cfg && cfg->status_prefix ? cfg->status_prefix : DEFAULT_STATUS_PREFIX;
    const char *lp = cfg && cfg->link_prefix ? cfg->link_prefix : DEFAULT_LINK_PREFIX;
    if (sp[0] != '/' || lp[0] != '/' || strcmp(sp, lp) == 0)
        return VN_CRED_EINVAL;
    if (vn_http_route_add(WELL_KNOWN, &metadata_handler, NULL) != 0)
        return VN_CRED_EINVAL;
    if (vn_http_route_add(sp, &status_handler, NULL) != 0) {
        vn_http_route_remove(WELL_KNOWN);
        return VN_CRED_EINVAL;
    }
    if (vn_http_route_add(lp, &link_handler, NULL) != 0) {
        vn_http_route_remove(WELL_KNOWN);
        vn_http_route_remove(sp);
        return VN_CRED_EINVAL;
    }
    http.started = true;
    http.status_prefix = vn_strdup(sp);
    http.link_prefix = vn_strdup(lp);
    http.max_links = cfg && cfg->max_links ? cfg->max_links : DEFAULT_MAX_LINKS;
    http.max_link_size = cfg && cfg->max_link_size ? cfg->max_link_size : DEFAULT_MAX_LINK_SIZE;
    http.ops = ops;
    http.ud = ud;
    return 0;
}

void vn_cred_http_stop(void)
{
    if (!http.started)
        return;
    vn_http_route_remove(WELL_KNOWN);
    vn_http_route_remove(http.status_prefix);
    vn_http_route_remove(http.link_prefix);
    while (http.links)
        link_free(http.links);
    free(http.status_prefix);
    free(http.link_prefix);
    memset(&http, 0, sizeof(http));
}

int vn_cred_http_link_create(const char *content_type, const void *body, size_t len, int64_t ttl,
                             unsigned max_uses, char **path)
{
    *path = NULL;
    if (!http.started || !content_type || (!body && len) || ttl <= 0 || ttl > MAX_LINK_TTL)
        return VN_CRED_EINVAL;
    if (len > http.max_link_size)
        return VN_CRED_ETOOLARGE;
    int64_t now = (int64_t)time(NULL);
    links_expire(now);
    if (HASH_COUNT(http.links) >= http.max_links)
        return VN_CRED_EINVAL;
    link *l = vn_alloc(sizeof(*l));
    l->token = vn_cred_random_b64url(TOKEN_BYTES);
    l->content_type = vn_strdup(content_type);
    l->body = vn_alloc(len + 1);
    if (len)
        memcpy(l->body, body, len);
    l->len = len;
    l->expires = now + ttl;
    l->uses_left = max_uses ? max_uses : 1;
    HASH_ADD_KEYPTR(hh, http.links, l->token, strlen(l->token), l);
    *path = vn_asprintf("%s%s", http.link_prefix, l->token);
    return 0;
}

void vn_cred_http_link_remove(const char *path)
{
    if (!http.started || !path || strncmp(path, http.link_prefix, strlen(http.link_prefix)) != 0)
        return;
    link *l = NULL;
    HASH_FIND_STR(http.links, path + strlen(http.link_prefix), l);
    if (l)
        link_free(l);
}

/* ---- metadata documents ---- */

json_t *vn_cred_issuer_metadata(const char *issuer, const vn_cred_key *const *keys, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *jwk = keys[i] ? vn_cred_key_to_jwk(keys[i], true) : NULL;
        if (jwk)
            json_array_append_new(arr, jwk);
    }
    return json_pack("{s:s, s:{s:o}}", "issuer", issuer ? issuer : "", "jwks", "keys", arr);
}

char *vn_cred_issuer_path(const char *issuer)
{
    const char *scheme = "https://";
    if (!issuer || strncmp(issuer, scheme, strlen(scheme)) != 0 || strpbrk(issuer, "?#"))
        return NULL;
    const char *host = issuer + strlen(scheme), *slash = strchr(host, '/');
    if (slash == host)
        return NULL;
    if (!slash)
        return vn_strdup("");
    const char *path = slash + 1;
    size_t len = strlen(path);
    while (len && path[len - 1] == '/')
        len--;
    return vn_strndup(path, len);
}
