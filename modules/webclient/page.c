/*
 * page.c - what the web client module generates from the config: the HTML
 * page, the module script that starts Converse.js for this server, the
 * style sheet with the configured colours, and the Content-Security-Policy.
 *
 * The script finds the WebSocket and BOSH paths in the server's own
 * /.well-known/host-meta.json (XEP-0156) and joins them to the page's own
 * origin, so the page only ever talks to the server it came from, whatever
 * name or address the browser used. Everything Converse would fetch from
 * other sites is turned off here: connection discovery on the user's
 * domain, the providers list of its registration form, emoji images
 * (system emoji instead), embedded players, media from foreign hosts, and
 * the sponsors' logos in its footer (the footer and brand elements are
 * replaced by ours before Converse registers its own).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vestnik/module.h>

#include "webclient.h"

/* ---- escaping ---- */

/* s as a JSON string (also a JavaScript literal): quotes, backslashes and
 * control characters escaped, and '<', '>', '&' and U+2028/U+2029 too, so
 * that nothing in it can end a script or a line. */
static void append_json_string(vn_buf *b, const char *s)
{
    vn_buf_append_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            vn_buf_append(b, esc, 2);
        } else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
            vn_buf_printf(b, "\\u%04x", *p);
        } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            vn_buf_printf(b, "\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
            p += 2;
        } else {
            vn_buf_append(b, p, 1);
        }
    }
    vn_buf_append_str(b, "\"");
}

static void append_html(vn_buf *b, const char *s)
{
    vn_buf_append_xml_escaped(b, s, strlen(s));
}

bool wc_page_colour_ok(const char *colour)
{
    size_t len = strlen(colour);

    if (colour[0] != '#' || (len != 4 && len != 7))
        return false;
    return strspn(colour + 1, "0123456789abcdefABCDEF") == len - 1;
}

/* ---- the documents ---- */

/* FNV-1a over the body: the ETag of a generated document. */
static void set_etag(wc_doc *doc)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < doc->len; i++)
        h = (h ^ (unsigned char)doc->body[i]) * 0x100000001b3ULL;
    snprintf(doc->etag, sizeof doc->etag, "\"%016llx\"", (unsigned long long)h);
}

static void finish(wc_doc *doc, const char *type, vn_buf *b)
{
    doc->type = type;
    doc->body = vn_buf_steal(b, &doc->len);
    set_etag(doc);
}

static void build_html(const wc_conf *conf, wc_doc *doc)
{
    vn_buf b;

    vn_buf_init(&b);
    vn_buf_append_str(&b, "<!DOCTYPE html>\n<html lang=\"");
    char *tag = vn_strdup(conf->language); /* BCP 47: "zh-CN", not "zh_CN" */
    for (char *p = strchr(tag, '_'); p; p = strchr(p, '_'))
        *p = '-';
    append_html(&b, tag);
    free(tag);
    vn_buf_append_str(&b, "\">\n<head>\n<meta charset=\"utf-8\">\n"
                          "<meta name=\"viewport\" content=\"width=device-width, "
                          "initial-scale=1\">\n<title>");
    append_html(&b, conf->name);
    vn_buf_append_str(&b, "</title>\n");
    vn_buf_printf(&b, "<link rel=\"icon\" href=\"%s\">\n",
                  conf->logo[0] ? WC_LOGO_NAME : "dist/images/favicon.ico");
    vn_buf_append_str(&b, "<link rel=\"stylesheet\" href=\"dist/converse.min.css\">\n"
                          "<link rel=\"stylesheet\" href=\"" WC_STYLE_NAME "\">\n"
                          "<script type=\"module\" src=\"" WC_SCRIPT_NAME "\"></script>\n"
                          "</head>\n<body class=\"converse-fullscreen\">\n"
                          "<noscript>");
    append_html(&b, conf->name);
    vn_buf_append_str(&b, ": this web client needs JavaScript.</noscript>\n</body>\n</html>\n");
    finish(doc, "text/html; charset=utf-8", &b);
}

/* The site's settings as one JSON object for the script. */
static void append_site(vn_buf *b, const wc_conf *conf)
{
    const char *const *hosts = vn_local_hosts();

    vn_buf_append_str(b, "{\n  \"name\": ");
    append_json_string(b, conf->name);
    vn_buf_append_str(b, ",\n  \"logo\": ");
    append_json_string(b, conf->logo[0] ? WC_LOGO_NAME : "");
    vn_buf_append_str(b, ",\n  \"assets\": ");
    char *assets = vn_asprintf("%sdist", conf->path);
    append_json_string(b, assets);
    free(assets);
    vn_buf_append_str(b, ",\n  \"hosts\": [");
    for (size_t i = 0; hosts[i]; i++) {
        if (i)
            vn_buf_append_str(b, ", ");
        append_json_string(b, hosts[i]);
    }
    vn_buf_append_str(b, "],\n  \"language\": ");
    append_json_string(b, conf->language);
    vn_buf_append_str(b, ",\n  \"theme\": ");
    append_json_string(b, conf->theme);
    vn_buf_append_str(b, ",\n  \"muc_domain\": ");
    append_json_string(b, conf->muc_domain);
    vn_buf_printf(b,
                  ",\n  \"websocket\": %s,\n  \"bosh\": %s,\n  \"allow_registration\": %s\n"
                  "}",
                  conf->websocket ? "true" : "false", conf->bosh ? "true" : "false",
                  conf->allow_registration ? "true" : "false");
}

static const char script_head[] =
    "// Generated by vestnik's webclient module (modules.webclient in the\n"
    "// server's config): Converse.js set up for this server, talking to\n"
    "// nothing but the origin this page came from.\n"
    "import converse from './dist/converse.min.js';\n\n"
    "const site = ";

static const char script_body[] =
    ";\n\n"
    "// Our name and logo instead of Converse's, and no footer: Converse's\n"
    "// shows its sponsors' logos from conversejs.org. Defined before\n"
    "// converse.initialize(), so Converse keeps these.\n"
    "class BrandLogo extends HTMLElement {\n"
    "  connectedCallback() {\n"
    "    if (this.childElementCount) return;\n"
    "    const span = (cls) => Object.assign(document.createElement('span'), { className: cls });\n"
    "    const heading = span('brand-heading vestnik-brand');\n"
    "    const wrapper = span('brand-name-wrapper brand-name-wrapper--fullscreen');\n"
    "    if (site.logo) {\n"
    "      const img = document.createElement('img');\n"
    "      img.src = new URL(site.logo, import.meta.url).pathname;\n"
    "      img.alt = '';\n"
    "      img.className = 'vestnik-logo';\n"
    "      wrapper.append(img);\n"
    "    }\n"
    "    const name = span('brand-name');\n"
    "    const text = span('brand-name__text');\n"
    "    text.textContent = site.name;\n"
    "    name.append(text);\n"
    "    wrapper.append(name);\n"
    "    heading.append(wrapper);\n"
    "    this.append(heading);\n"
    "  }\n"
    "}\n"
    "customElements.define('converse-brand-logo', BrandLogo);\n"
    "customElements.define('converse-footer', class extends HTMLElement {});\n\n"
    "// The paths of the server's WebSocket and BOSH endpoints (XEP-0156),\n"
    "// on this page's own origin.\n"
    "async function endpoints() {\n"
    "  try {\n"
    "    const answer = await fetch('/.well-known/host-meta.json', { cache: 'no-cache' });\n"
    "    return (await answer.json()).links || [];\n"
    "  } catch (e) {\n"
    "    console.error('vestnik: /.well-known/host-meta.json:', e);\n"
    "    return [];\n"
    "  }\n"
    "}\n"
    "const links = await endpoints();\n"
    "function endpoint(rel, scheme) {\n"
    "  const link = links.find((l) => l.rel === rel);\n"
    "  return link ? scheme + '//' + location.host + new URL(link.href).pathname : "
    "undefined;\n"
    "}\n"
    "const secure = location.protocol === 'https:';\n"
    "const domain = site.hosts.includes(location.hostname) ? location.hostname : "
    "site.hosts[0];\n"
    "const own_hosts = [location.hostname, ...site.hosts];\n\n"
    "converse.initialize({\n"
    "  assets_path: site.assets,\n"
    "  websocket_url: site.websocket\n"
    "    ? endpoint('urn:xmpp:alt-connections:websocket', secure ? 'wss:' : 'ws:') : "
    "undefined,\n"
    "  bosh_service_url: site.bosh\n"
    "    ? endpoint('urn:xmpp:alt-connections:xbosh', location.protocol) : undefined,\n"
    "  discover_connection_methods: false,\n"
    "  default_domain: domain,\n"
    "  domain_placeholder: domain,\n"
    "  muc_domain: site.muc_domain || 'conference.' + domain,\n"
    "  allow_registration: site.allow_registration,\n"
    "  xmpp_providers_url: '',\n"
    "  autocomplete_providers_url: '',\n"
    "  i18n: site.language,\n"
    "  theme: site.theme,\n"
    "  view_mode: 'fullscreen',\n"
    "  use_system_emojis: true,\n"
    "  emoji_image_path: site.assets + '/images/',\n"
    "  embed_3rd_party_media_players: false,\n"
    "  allowed_image_domains: own_hosts,\n"
    "  allowed_audio_domains: own_hosts,\n"
    "  allowed_video_domains: own_hosts,\n"
    "  play_sounds: false,\n"
    "  sounds_path: site.assets + '/sounds/',\n"
    "});\n";

static void build_script(const wc_conf *conf, wc_doc *doc)
{
    vn_buf b;

    vn_buf_init(&b);
    vn_buf_append_str(&b, script_head);
    append_site(&b, conf);
    vn_buf_append_str(&b, script_body);
    finish(doc, "text/javascript; charset=utf-8", &b);
}

static void build_style(const wc_conf *conf, wc_doc *doc)
{
    vn_buf b;

    vn_buf_init(&b);
    vn_buf_append_str(&b, "/* Generated by vestnik's webclient module. */\n"
                          ".vestnik-brand .brand-name-wrapper { gap: 0.5em; }\n"
                          ".vestnik-logo { max-height: 3em; max-width: 12em; }\n");
    if (conf->primary_color[0] || conf->chat_color[0] || conf->muc_color[0]) {
        /* Over the theme's own values (selectors of one class and one
         * attribute, some marked important). */
        vn_buf_append_str(&b, "body .conversejs[data-converse-theme] {\n");
        if (conf->primary_color[0])
            vn_buf_printf(&b,
                          "  --primary-color: %1$s !important;\n"
                          "  --controlbox-color: %1$s !important;\n"
                          "  --heading-color: %1$s !important;\n"
                          "  --brand-heading-color: %1$s !important;\n",
                          conf->primary_color);
        if (conf->chat_color[0])
            vn_buf_printf(&b, "  --chat-color: %s !important;\n", conf->chat_color);
        if (conf->muc_color[0])
            vn_buf_printf(&b, "  --muc-color: %s !important;\n", conf->muc_color);
        vn_buf_append_str(&b, "}\n");
    }
    finish(doc, "text/css; charset=utf-8", &b);
}

void wc_page_build(const wc_conf *conf, wc_doc *html, wc_doc *script, wc_doc *style)
{
    build_html(conf, html);
    build_script(conf, script);
    build_style(conf, style);
}

void wc_doc_free(wc_doc *doc)
{
    free(doc->body);
    memset(doc, 0, sizeof *doc);
}

/* ---- Content-Security-Policy ---- */

/* The Host header, if it is a plain host[:port] that may go into a header. */
static bool host_ok(const char *host)
{
    return host && host[0] && strlen(host) < 256 &&
           strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
               strlen(host);
}

char *wc_page_csp(const wc_conf *conf, vn_http_request *req)
{
    const char *host = vn_http_request_header(req, "Host");
    const char *extra = conf->extra_sources;
    const char *sep = extra[0] ? " " : "";
    char *ws = host_ok(host)
                   ? vn_asprintf(" %s://%s", vn_http_request_is_tls(req) ? "wss" : "ws", host)
                   : vn_strdup("");
    char *csp =
        vn_asprintf("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; "
                    "style-src 'self' 'unsafe-inline'; font-src 'self'; "
                    "img-src 'self' data: blob:%s%s; media-src 'self' blob:%s%s; "
                    "connect-src 'self'%s%s%s; worker-src 'self' blob:; manifest-src 'self'; "
                    "form-action 'self'; base-uri 'self'; frame-ancestors 'none'",
                    sep, extra, sep, extra, ws, sep, extra);
    free(ws);
    return csp;
}
