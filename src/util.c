/*
 * util.c - allocation wrappers that abort on exhaustion, and vn_buf.
 */
#include "vestnik/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t size)
{
    fprintf(stderr, "vestnik: out of memory allocating %zu bytes\n", size);
    abort();
}

void *vn_alloc(size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *vn_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

char *vn_strdup(const char *s)
{
    return s ? vn_strndup(s, strlen(s)) : NULL;
}

char *vn_strndup(const char *s, size_t n)
{
    char *p = vn_alloc(n + 1);
    memcpy(p, s, n);
    return p;
}

char *vn_asprintf(const char *fmt, ...)
{
    vn_buf b;
    va_list ap;

    vn_buf_init(&b);
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return vn_strdup("");
    b.data = vn_alloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b.data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return b.data;
}

void vn_buf_init(vn_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void vn_buf_free(vn_buf *b)
{
    free(b->data);
    vn_buf_init(b);
}

void vn_buf_reset(vn_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static void buf_reserve(vn_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = vn_realloc(b->data, cap);
    b->cap = cap;
}

void vn_buf_append(vn_buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void vn_buf_append_str(vn_buf *b, const char *s)
{
    vn_buf_append(b, s, strlen(s));
}

void vn_buf_printf(vn_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void vn_buf_append_xml_escaped(vn_buf *b, const char *s, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i < len; i++) {
        const char *rep;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '\'': rep = "&apos;"; break;
        case '"': rep = "&quot;"; break;
        default: continue;
        }
        vn_buf_append(b, s + start, i - start);
        vn_buf_append_str(b, rep);
        start = i + 1;
    }
    vn_buf_append(b, s + start, len - start);
}

char *vn_buf_steal(vn_buf *b, size_t *len)
{
    if (!b->data)
        buf_reserve(b, 0), b->data[0] = '\0';
    char *p = b->data;
    if (len)
        *len = b->len;
    vn_buf_init(b);
    return p;
}
