/*
 * botapi_request.c - a method call's parameters, from the query string and
 * from a body in any of the three shapes bot frameworks send: JSON
 * (grammY, telegraf), application/x-www-form-urlencoded
 * (node-telegram-bot-api) and multipart/form-data (all three, for files;
 * grammY leaves file names unquoted). Parameters become one JSON object:
 * form values are strings there, and the getters below accept a number or
 * a JSON document written as a string wherever Telegram does.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "botapi.h"

static const char *find(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
    if (needle_len == 0 || hay_len < needle_len)
        return NULL;
    for (const char *p = hay, *last = hay + hay_len - needle_len; p <= last; p++) {
        p = memchr(p, needle[0], (size_t)(last - p) + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, needle_len) == 0)
            return p;
    }
    return NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decoding with '+' as space, in place; false on a bad escape. */
static bool url_decode(char *s, size_t *len)
{
    size_t out = 0;
    for (size_t i = 0; i < *len; i++) {
        if (s[i] == '+') {
            s[out++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < *len ? hex_value(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
            if (lo < 0)
                return false;
            s[out++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            s[out++] = s[i];
        }
    }
    *len = out;
    return true;
}

static bool set_string(json_t *params, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    if (memchr(name, '\0', name_len))
        return false;
    json_t *v = json_stringn(value, value_len); /* NULL if not UTF-8 */
    char *key = vn_strndup(name, name_len);
    /* set_new takes v even when it fails (a key that is not UTF-8). */
    bool ok = v && json_object_set_new(params, key, v) == 0;
    free(key);
    return ok;
}

static const char *parse_urlencoded(json_t *params, const char *text, size_t len)
{
    const char *end = text + len;
    while (text < end) {
        const char *amp = memchr(text, '&', (size_t)(end - text));
        const char *pair_end = amp ? amp : end;
        const char *eq = memchr(text, '=', (size_t)(pair_end - text));
        if (pair_end > text) {
            char *name = vn_strndup(text, (size_t)((eq ? eq : pair_end) - text));
            char *value = eq ? vn_strndup(eq + 1, (size_t)(pair_end - eq - 1)) : vn_strdup("");
            size_t name_len = strlen(name), value_len = strlen(value);
            bool ok = url_decode(name, &name_len) && url_decode(value, &value_len) &&
                      set_string(params, name, name_len, value, value_len);
            free(name);
            free(value);
            if (!ok)
                return "Bad Request: invalid form parameter";
        }
        text = pair_end + 1;
    }
    return NULL;
}

/* A parameter of a header value: name="quoted" or name=token. */
static char *header_param(const char *header, size_t len, const char *name)
{
    size_t name_len = strlen(name);
    const char *end = header + len;
    for (const char *p = header; p < end; p++) {
        p = memchr(p, ';', (size_t)(end - p));
        if (!p)
            return NULL;
        const char *q = p + 1;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if ((size_t)(end - q) <= name_len || strncasecmp(q, name, name_len) != 0 ||
            q[name_len] != '=')
            continue;
        q += name_len + 1;
        if (q < end && *q == '"') {
            const char *close = memchr(q + 1, '"', (size_t)(end - q - 1));
            return close ? vn_strndup(q + 1, (size_t)(close - q - 1)) : NULL;
        }
        const char *stop = q;
        while (stop < end && *stop != ';' && *stop != ' ' && *stop != '\r')
            stop++;
        return vn_strndup(q, (size_t)(stop - q));
    }
    return NULL;
}

/* The value of header name in a part's header block, or NULL. */
static const char *part_header(const char *block, size_t len, const char *name, size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *end = block + len;
    for (const char *line = block; line < end;) {
        const char *eol = find(line, (size_t)(end - line), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > name_len && strncasecmp(line, name, name_len) == 0 &&
            line[name_len] == ':') {
            const char *v = line + name_len + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *value_len = (size_t)(eol - v);
            return v;
        }
        line = eol + 2;
    }
    return NULL;
}

static const char *parse_part(botapi_call *call, const char *part, size_t len)
{
    const char *sep = find(part, len, "\r\n\r\n", 4);
    if (!sep)
        return "Bad Request: malformed multipart body";
    size_t headers_len = (size_t)(sep - part) + 2;
    const char *content = sep + 4;
    size_t content_len = len - (size_t)(content - part);
    size_t disposition_len, type_len = 0;
    const char *disposition =
        part_header(part, headers_len, "Content-Disposition", &disposition_len);
    const char *type = part_header(part, headers_len, "Content-Type", &type_len);
    char *name = disposition ? header_param(disposition, disposition_len, "name") : NULL;
    if (!name)
        return "Bad Request: multipart part without a name";
    char *filename = header_param(disposition, disposition_len, "filename");
    if (!filename && (!type || strncasecmp(type, "text/plain", 10) == 0)) {
        bool ok = set_string(call->params, name, strlen(name), content, content_len);
        free(name);
        return ok ? NULL : "Bad Request: invalid form parameter";
    }
    botapi_upload *up = vn_alloc(sizeof *up);
    up->field = name;
    up->filename = filename;
    up->content_type = type ? vn_strndup(type, type_len) : vn_strdup("application/octet-stream");
    up->data = vn_alloc(content_len + 1);
    memcpy(up->data, content, content_len);
    up->len = content_len;
    up->next = call->uploads;
    call->uploads = up;
    return NULL;
}

static const char *parse_multipart(botapi_call *call, const char *content_type, const char *body,
                                   size_t len)
{
    char *boundary = header_param(content_type, strlen(content_type), "boundary");
    if (!boundary || !boundary[0] || strlen(boundary) > 200) {
        free(boundary);
        return "Bad Request: multipart body without a boundary";
    }
    char *delim = vn_asprintf("\r\n--%s", boundary);
    size_t delim_len = strlen(delim);
    free(boundary);
    const char *problem = NULL;
    const char *end = body + len;
    /* The first boundary may start the body, without the CRLF before it. */
    const char *p = len >= delim_len - 2 && memcmp(body, delim + 2, delim_len - 2) == 0
                        ? body + delim_len - 2
                        : NULL;
    if (!p) {
        const char *first = find(body, len, delim, delim_len);
        p = first ? first + delim_len : NULL;
    }
    while (p && !problem) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* the closing boundary */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            problem = "Bad Request: malformed multipart body";
            break;
        }
        p += 2;
        const char *next = find(p, (size_t)(end - p), delim, delim_len);
        if (!next) {
            problem = "Bad Request: multipart body without its closing boundary";
            break;
        }
        problem = parse_part(call, p, (size_t)(next - p));
        p = next + delim_len;
    }
    if (!p && !problem)
        problem = "Bad Request: malformed multipart body";
    free(delim);
    return problem;
}

const char *botapi_request_parse(botapi_call *call, const char *query, const char *content_type,
                                 const char *body, size_t len)
{
    call->params = json_object();
    if (query) {
        const char *problem = parse_urlencoded(call->params, query, strlen(query));
        if (problem)
            return problem;
    }
    if (len == 0)
        return NULL;
    if (!content_type)
        content_type = "";
    if (strncasecmp(content_type, "application/json", 16) == 0) {
        json_error_t error;
        json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
        if (!doc || !json_is_object(doc)) {
            json_decref(doc);
            return "Bad Request: can't parse JSON";
        }
        json_object_update(call->params, doc);
        json_decref(doc);
        return NULL;
    }
    if (strncasecmp(content_type, "application/x-www-form-urlencoded", 33) == 0)
        return parse_urlencoded(call->params, body, len);
    if (strncasecmp(content_type, "multipart/form-data", 19) == 0)
        return parse_multipart(call, content_type, body, len);
    return "Bad Request: unsupported Content-Type";
}

/* ---- parameters ---- */

bool botapi_param_int(const botapi_call *call, const char *name, int64_t *out)
{
    json_t *v = json_object_get(call->params, name);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (!json_is_string(v))
        return false;
    const char *text = json_string_value(v);
    char *end;
    long long n = strtoll(text, &end, 10);
    if (end == text || *end)
        return false;
    *out = n;
    return true;
}

const char *botapi_param_string(const botapi_call *call, const char *name)
{
    json_t *v = json_object_get(call->params, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool botapi_param_bool(const botapi_call *call, const char *name)
{
    json_t *v = json_object_get(call->params, name);
    if (json_is_boolean(v))
        return json_is_true(v);
    const char *text = json_is_string(v) ? json_string_value(v) : "";
    return strcmp(text, "true") == 0 || strcmp(text, "1") == 0;
}

json_t *botapi_param_json(const botapi_call *call, const char *name)
{
    json_t *v = json_object_get(call->params, name);
    if (json_is_object(v) || json_is_array(v))
        return v;
    if (!json_is_string(v))
        return NULL;
    json_t *doc = json_loads(json_string_value(v), 0, NULL);
    if (!json_is_object(doc) && !json_is_array(doc)) {
        json_decref(doc);
        return NULL;
    }
    /* Parsed once: keep it in place of the text, so the reference stays
     * borrowed from params. */
    json_object_set_new(call->params, name, doc);
    return doc;
}

const botapi_upload *botapi_param_upload(const botapi_call *call, const char *name)
{
    const char *attach = botapi_param_string(call, name);
    /* "attach://<field>" names a part; otherwise the part has the name. */
    if (attach && strncmp(attach, "attach://", 9) == 0)
        name = attach + 9;
    for (const botapi_upload *up = call->uploads; up; up = up->next)
        if (strcmp(up->field, name) == 0)
            return up;
    return NULL;
}
