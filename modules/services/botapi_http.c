/*
 * botapi_http.c - the Bot API's outgoing HTTP requests with libcurl:
 * webhook POSTs and fetching the files users send by URL. One request is
 * one blocking curl_easy_perform on a worker thread (vn_work_queue), with
 * the timeout, response size limit and CA file of the configuration, no
 * redirects, and only https (or http where the configuration allows it).
 * Fetching a URL a user gave (their file) refuses loopback, private and
 * link-local addresses unless bot_file_fetch_private allows them, so a
 * user cannot make the server read its own network for a bot.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "botapi.h"

botapi_fetch *botapi_fetch_new(const char *url, const char *json_body, const char *secret,
                               size_t max_response)
{
    botapi_fetch *f = vn_alloc(sizeof *f);
    f->url = vn_strdup(url);
    f->json_body = vn_strdup(json_body);
    f->secret = vn_strdup(secret);
    f->ca_file = botapi_conf.ca_file[0] ? vn_strdup(botapi_conf.ca_file) : NULL;
    f->allow_http = botapi_conf.webhook_allow_http;
    f->timeout_s = botapi_conf.webhook_timeout;
    f->max_response = max_response;
    vn_buf_init(&f->response);
    return f;
}

void botapi_fetch_free(botapi_fetch *f)
{
    free(f->url);
    free(f->json_body);
    free(f->secret);
    free(f->ca_file);
    vn_buf_free(&f->response);
    free(f);
}

/* Loopback, private (RFC 1918, RFC 4193), link-local, unspecified. */
static bool address_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 24) == 0 ||
               (a >> 20) == (172 << 4 | 1) || (a >> 16) == (192 << 8 | 168) ||
               (a >> 16) == (169 << 8 | 254);
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, a->s6_addr + 12, 4);
            return address_private((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               (a->s6_addr[0] & 0xfe) == 0xfc;
    }
    return true;
}

static curl_socket_t open_public_socket(void *ud, curlsocktype purpose,
                                        struct curl_sockaddr *address)
{
    botapi_fetch *f = ud;
    if (address_private(&address->addr)) {
        f->refused_private = true;
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

static size_t on_data(char *data, size_t size, size_t n, void *ud)
{
    botapi_fetch *f = ud;
    if (f->response.len + n > f->max_response) {
        f->too_large = true;
        return 0; /* ends the transfer */
    }
    vn_buf_append(&f->response, data, n);
    return n;
}

void botapi_fetch_run(botapi_fetch *f)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    CURL *curl = curl_easy_init();
    if (!curl) {
        snprintf(f->error, sizeof f->error, "cannot start a request");
        return;
    }
    curl_easy_setopt(curl, CURLOPT_URL, f->url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, f->timeout_s);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, f->allow_http ? "https,http" : "https");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS,
                     f->allow_http ? CURLPROTO_HTTPS | CURLPROTO_HTTP : CURLPROTO_HTTPS);
#endif
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "vestnik-botapi");
    if (f->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, f->ca_file);
    if (f->public_only) {
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
        curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, f);
    }
    if (f->json_body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, f->json_body);
    }
    if (f->secret) {
        char *line = vn_asprintf("X-Telegram-Bot-Api-Secret-Token: %s", f->secret);
        headers = curl_slist_append(headers, line);
        free(line);
    }
    if (headers)
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &f->status);
    else if (f->too_large)
        snprintf(f->error, sizeof f->error, "response too large");
    else if (f->refused_private)
        snprintf(f->error, sizeof f->error, "a private address (bot_file_fetch_private)");
    else
        snprintf(f->error, sizeof f->error, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
}
