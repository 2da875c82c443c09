/*
 * webclient.h - the web client module's private interface, shared by its
 * three files: mod_webclient.c (config, the HTTP route, what each path
 * is), page.c (the page, script and style generated from the config) and
 * files.c (Converse.js's static files from the data directory).
 */
#ifndef VESTNIK_WEBCLIENT_H
#define VESTNIK_WEBCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <vestnik/http.h>

/* The module's settings (modules.webclient), checked by the config loader. */
typedef struct wc_conf {
    const char *path; /* where the page is, ends with '/' */
    const char *root; /* directory holding dist/ */
    const char *name;
    const char *logo; /* a file, or "" */
    const char *language;
    const char *theme;
    const char *primary_color, *chat_color, *muc_color; /* "#rgb"/"#rrggbb" or "" */
    const char *muc_domain;                             /* "" : conference.<host> */
    const char *extra_sources;                          /* CSP origins, space-separated */
    bool websocket, bosh;
    bool allow_registration;
    long long max_age;
} wc_conf;

/* ---- page.c: documents generated from the config ---- */
typedef struct wc_doc {
    const char *type; /* Content-Type */
    char *body;
    size_t len;
    char etag[24]; /* quoted, from the content */
} wc_doc;

/* Names, under the page's path, of the generated script and style. */
#define WC_SCRIPT_NAME "vestnik-webclient.js"
#define WC_STYLE_NAME "vestnik-webclient.css"
#define WC_LOGO_NAME "logo"

void wc_page_build(const wc_conf *conf, wc_doc *html, wc_doc *script, wc_doc *style);
void wc_doc_free(wc_doc *doc);
/* The Content-Security-Policy for a request (its Host names the WebSocket
 * origin); the caller frees it. */
char *wc_page_csp(const wc_conf *conf, vn_http_request *req);
/* A colour the style may use: "#rgb" or "#rrggbb". */
bool wc_page_colour_ok(const char *colour);

/* ---- files.c: static files, read on worker threads and cached ---- */
typedef struct wc_files wc_files;

wc_files *wc_files_new(const char *root, size_t max_file_size, size_t cache_size);
void wc_files_free(wc_files *files); /* requests in flight finish first */
/* Answer GET/HEAD for rel, a path inside the root as wc_files_decode_path
 * returns it: 200 (or 304 for a matching If-None-Match) with the file, 404
 * when there is none, 500 when it cannot be read. Cache-Control from
 * max_age. */
void wc_files_serve(wc_files *files, vn_http_request *req, const char *rel, long long max_age);
/* The route's on_writable and on_abort, for responses wc_files_serve began. */
void wc_files_on_writable(vn_http_request *req);
void wc_files_on_abort(vn_http_request *req);
/* If-None-Match (may be NULL) names this ETag (quoted), or is "*". */
bool wc_etag_matches(const char *if_none_match, const char *etag);
/* Percent-decode a request path below the page; NULL when it is not a
 * plain relative path (empty or dot segments, hidden files, NUL, '\'). */
char *wc_files_decode_path(const char *raw);

#endif
