/*
 * mod_webclient.c - a web client served by vestnik itself: Converse.js on
 * the http and https listeners, at modules.webclient.path (default "/").
 *
 * Under that path: the page (the path itself and index.html), the script
 * that starts Converse for this server and the style with the configured
 * colours (page.c), the configured logo, and everything else from the
 * root directory, where `make install` puts Converse's dist/ (files.c).
 * GET and HEAD only (405 otherwise); 404 for anything else. Every answer
 * carries a Content-Security-Policy that lets the page load and connect
 * to its own origin only, nosniff, no referrer and no framing.
 *
 * The WebSocket, BOSH, host-meta and upload paths are longer prefixes and
 * stay with their own routes.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vestnik/http.h>
#include <vestnik/module.h>

#include "webclient.h"

#ifndef VN_WEBCLIENT_DIR
#define VN_WEBCLIENT_DIR "/usr/local/share/vestnik/webclient"
#endif

#define OMEMO_WASM "curve25519_compiled.wasm"

typedef struct webclient {
    wc_conf conf;
    char *path;   /* conf.path, with its trailing '/' */
    char *prefix; /* what the route claims: path without the '/', or "/" */
    char *logo_name;
    wc_doc html, script, style;
    wc_files *files, *logo;
} webclient;

static webclient wc;

static void respond_text(vn_http_request *req, int status, const char *text)
{
    vn_http_response_header(req, "Cache-Control", "no-cache");
    vn_http_respond(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* What every answer of the module carries. */
static void security_headers(vn_http_request *req, const char *csp)
{
    vn_http_response_header(req, "X-Content-Type-Options", "nosniff");
    vn_http_response_header(req, "Referrer-Policy", "no-referrer");
    vn_http_response_header(req, "X-Frame-Options", "DENY");
    vn_http_response_header(req, "Content-Security-Policy", csp);
}

static void respond_doc(vn_http_request *req, const wc_doc *doc)
{
    const char *match = vn_http_request_header(req, "If-None-Match");

    /* Generated from the config: a reload may change it at any time. */
    vn_http_response_header(req, "Cache-Control", "no-cache");
    vn_http_response_header(req, "ETag", doc->etag);
    if (wc_etag_matches(match, doc->etag))
        vn_http_respond(req, 304, NULL, NULL, 0);
    else
        vn_http_respond(req, 200, doc->type, doc->body, doc->len);
}

static void on_request(vn_http_request *req, void *ud)
{
    const char *method = vn_http_request_method(req);
    const char *path = vn_http_request_path(req);
    size_t path_len = strlen(wc.path);

    char *csp = wc_page_csp(&wc.conf, req);
    security_headers(req, csp);
    free(csp);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        vn_http_response_header(req, "Allow", "GET, HEAD");
        respond_text(req, 405, "405 Method Not Allowed\n");
        return;
    }
    if (strcmp(path, wc.prefix) == 0 && strcmp(wc.prefix, wc.path) != 0) {
        vn_http_response_header(req, "Location", wc.path); /* "/chat" to "/chat/" */
        respond_text(req, 301, "301 Moved Permanently\n");
        return;
    }
    if (strncmp(path, wc.path, path_len) != 0) { /* "/chatroom" under "/chat" */
        respond_text(req, 404, "404 Not Found\n");
        return;
    }
    const char *rel = path + path_len;
    if (rel[0] == '\0' || strcmp(rel, "index.html") == 0) {
        respond_doc(req, &wc.html);
    } else if (strcmp(rel, WC_SCRIPT_NAME) == 0) {
        respond_doc(req, &wc.script);
    } else if (strcmp(rel, WC_STYLE_NAME) == 0) {
        respond_doc(req, &wc.style);
    } else if (strcmp(rel, OMEMO_WASM) == 0) {
        /* libomemo asks for it next to the page, not next to itself. */
        wc_files_serve(wc.files, req, "dist/" OMEMO_WASM, wc.conf.max_age);
    } else if (strcmp(rel, WC_LOGO_NAME) == 0 && wc.logo) {
        wc_files_serve(wc.logo, req, wc.logo_name, wc.conf.max_age);
    } else {
        char *file = wc_files_decode_path(rel);
        if (file)
            wc_files_serve(wc.files, req, file, wc.conf.max_age);
        else
            respond_text(req, 404, "404 Not Found\n");
        free(file);
    }
}

static void on_writable(vn_http_request *req, void *ud)
{
    wc_files_on_writable(req);
}

static void on_abort(vn_http_request *req, void *ud)
{
    wc_files_on_abort(req);
}

static const vn_http_handler handler = {
    .on_request = on_request,
    .on_writable = on_writable,
    .on_abort = on_abort,
};

/* ---- configuration ----
 * Every value is checked by the config loader (at start, on reload and by
 * --check-config) with these functions, so read_conf trusts them. */

/* "/", or "/a/b" or "/a/b/" of plain segments, nothing percent-encoded. */
static const char *check_path(const char *path)
{
    size_t len = strlen(path);

    if (path[0] != '/')
        return "must start with /";
    if (len == 1)
        return NULL;
    char *given = vn_strndup(path + 1, len - 1 - (path[len - 1] == '/'));
    char *rel = wc_files_decode_path(given);
    bool ok = rel && strcmp(rel, given) == 0;
    free(rel);
    free(given);
    return ok ? NULL : "must be a path of plain segments (no '.', '..', '//' or %-escapes)";
}

static const char *check_logo(const char *logo)
{
    if (logo[0] && (logo[0] != '/' || logo[strlen(logo) - 1] == '/'))
        return "must be the absolute name of a file";
    return NULL;
}

/* A Converse locale: "ru", "fa", "zh_CN"; "zh" stands for "zh_CN". */
static const char *check_language(const char *lang)
{
    static const char lower[] = "abcdefghijklmnopqrstuvwxyz";
    size_t len = strlen(lang);

    if ((len == 2 && strspn(lang, lower) == 2) ||
        (len == 5 && strspn(lang, lower) == 2 && lang[2] == '_' &&
         strspn(lang + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 2))
        return NULL;
    return "must be a locale such as en, ru, zh, zh_TW or fa";
}

static const char *check_colour(const char *colour)
{
    return !colour[0] || wc_page_colour_ok(colour) ? NULL : "must be #rgb or #rrggbb, or empty";
}

static const char *check_transports(const char *value)
{
    char *list = vn_strdup(value);
    char *save = NULL;
    size_t count = 0;
    bool valid = true;

    for (char *t = strtok_r(list, ", ", &save); t && valid; t = strtok_r(NULL, ", ", &save)) {
        valid = strcmp(t, "websocket") == 0 || strcmp(t, "bosh") == 0;
        count++;
    }
    free(list);
    if (!valid)
        return "names a transport other than websocket and bosh";
    return count ? NULL : "must name websocket, bosh or both";
}

/* Origins for the CSP: "https://cdn.example.org https://media.example.org". */
static const char *check_sources(const char *sources)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789.-:/[]* ";

    return strspn(sources, allowed) == strlen(sources) ? NULL
                                                       : "must be origins separated by spaces";
}

static const char *const themes[] = {"classic", "dracula", "cyberpunk", "nordic", NULL};

static const vn_config_key keys[] = {
    {.name = "path", .type = VN_CONF_STRING, .default_value = "/", .check = check_path},
    {.name = "root", .type = VN_CONF_STRING, .default_value = VN_WEBCLIENT_DIR},
    {.name = "name", .type = VN_CONF_STRING, .default_value = "vestnik"},
    {.name = "logo", .type = VN_CONF_STRING, .default_value = "", .check = check_logo},
    {.name = "language", .type = VN_CONF_STRING, .default_value = "en", .check = check_language},
    {.name = "theme", .type = VN_CONF_STRING, .default_value = "classic", .choices = themes},
    {.name = "primary_color", .type = VN_CONF_STRING, .default_value = "", .check = check_colour},
    {.name = "chat_color", .type = VN_CONF_STRING, .default_value = "", .check = check_colour},
    {.name = "muc_color", .type = VN_CONF_STRING, .default_value = "", .check = check_colour},
    {.name = "muc_domain", .type = VN_CONF_STRING, .default_value = ""},
    {.name = "transports",
     .type = VN_CONF_STRING,
     .default_value = "websocket,bosh",
     .check = check_transports},
    {.name = "allow_registration", .type = VN_CONF_BOOL, .default_value = "false"},
    {.name = "extra_sources", .type = VN_CONF_STRING, .default_value = "", .check = check_sources},
    {.name = "max_age", .type = VN_CONF_INT, .default_value = "86400", .min = 0, .max = 31536000},
    {.name = "max_file_size",
     .type = VN_CONF_INT,
     .default_value = "16777216",
     .min = 1024,
     .max = 1073741824},
    {.name = "cache_size",
     .type = VN_CONF_INT,
     .default_value = "67108864",
     .min = 0,
     .max = 4294967296LL},
    {.name = NULL},
};

static void read_conf(vn_module *m, wc_conf *c)
{
    const char *transports = vn_module_config_string(m, "transports");

    c->path = vn_module_config_string(m, "path");
    c->root = vn_module_config_string(m, "root");
    c->name = vn_module_config_string(m, "name");
    c->logo = vn_module_config_string(m, "logo");
    c->language = vn_module_config_string(m, "language");
    c->theme = vn_module_config_string(m, "theme");
    c->primary_color = vn_module_config_string(m, "primary_color");
    c->chat_color = vn_module_config_string(m, "chat_color");
    c->muc_color = vn_module_config_string(m, "muc_color");
    c->muc_domain = vn_module_config_string(m, "muc_domain");
    c->extra_sources = vn_module_config_string(m, "extra_sources");
    c->allow_registration = vn_module_config_bool(m, "allow_registration");
    c->max_age = vn_module_config_int(m, "max_age");
    c->websocket = strstr(transports, "websocket") != NULL;
    c->bosh = strstr(transports, "bosh") != NULL;
    if (strcmp(c->language, "zh") == 0)
        c->language = "zh_CN";
}

static void stop(void)
{
    if (wc.prefix)
        vn_http_route_remove(wc.prefix);
    wc_doc_free(&wc.html);
    wc_doc_free(&wc.script);
    wc_doc_free(&wc.style);
    wc_files_free(wc.files);
    wc_files_free(wc.logo);
    free(wc.path);
    free(wc.prefix);
    free(wc.logo_name);
    memset(&wc, 0, sizeof wc);
}

static int start(vn_module *m)
{
    read_conf(m, &wc.conf);
    size_t len = strlen(wc.conf.path);
    bool slash = wc.conf.path[len - 1] == '/';
    wc.path = slash ? vn_strdup(wc.conf.path) : vn_asprintf("%s/", wc.conf.path);
    wc.prefix = len > 1 && slash ? vn_strndup(wc.conf.path, len - 1) : vn_strdup(wc.conf.path);
    wc.conf.path = wc.path;
    if (vn_http_route_add(wc.prefix, &handler, NULL) < 0) {
        vn_log_error("webclient: the HTTP path %s is taken", wc.prefix);
        free(wc.prefix);
        wc.prefix = NULL;
        stop();
        return -1;
    }
    size_t max_file = (size_t)vn_module_config_int(m, "max_file_size");
    size_t cache = (size_t)vn_module_config_int(m, "cache_size");
    wc.files = wc_files_new(wc.conf.root, max_file, cache);
    if (wc.conf.logo[0]) {
        const char *base = strrchr(wc.conf.logo, '/') + 1;
        char *dir = vn_strndup(wc.conf.logo, (size_t)(base - wc.conf.logo));
        wc.logo = wc_files_new(dir, max_file, cache);
        wc.logo_name = vn_strdup(base);
        free(dir);
    }
    wc_page_build(&wc.conf, &wc.html, &wc.script, &wc.style);
    char *probe = vn_asprintf("%s/dist/converse.min.js", wc.conf.root);
    if (access(probe, R_OK) != 0)
        vn_log_warn("webclient: %s is missing: install Converse.js there (make install does)",
                    probe);
    free(probe);
    vn_log_info("webclient: Converse.js at %s on the http(s) listeners", wc.path);
    return 0;
}

static int webclient_load(vn_module *m)
{
    return start(m);
}

static void webclient_unload(vn_module *m)
{
    stop();
}

/* New settings, and the files read afresh. */
static void webclient_reload(vn_module *m)
{
    stop();
    if (start(m) < 0)
        vn_log_error("webclient: not serving the web client (see above)");
}

VN_MODULE("webclient", "Converse.js web client on the http(s) listeners", keys, webclient_load,
          webclient_unload, webclient_reload);
