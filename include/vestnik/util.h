/*
 * util.h - allocation that never returns NULL, and a growable byte buffer.
 *
 * The server treats running out of memory as fatal (as Redis and nginx's
 * worker do): every allocation goes through these wrappers, which abort with
 * a message instead of handing NULL to code that cannot recover anyway.
 */
#ifndef VESTNIK_UTIL_H
#define VESTNIK_UTIL_H

#include <stdarg.h>
#include <stddef.h>

void *vn_alloc(size_t size); /* zeroed */
void *vn_realloc(void *ptr, size_t size);
char *vn_strdup(const char *s); /* NULL in, NULL out */
char *vn_strndup(const char *s, size_t n);
char *vn_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable buffer; data is always NUL-terminated (not counted in len). */
typedef struct vn_buf {
    char *data;
    size_t len;
    size_t cap;
} vn_buf;

void vn_buf_init(vn_buf *b);
void vn_buf_free(vn_buf *b);
void vn_buf_reset(vn_buf *b); /* len = 0, keeps memory */
void vn_buf_append(vn_buf *b, const void *data, size_t len);
void vn_buf_append_str(vn_buf *b, const char *s);
void vn_buf_printf(vn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s with XML escaping (&, <, >, ', ") for text and attribute values. */
void vn_buf_append_xml_escaped(vn_buf *b, const char *s, size_t len);
/* Hand the buffer's memory to the caller (NUL-terminated); b is reset. */
char *vn_buf_steal(vn_buf *b, size_t *len);

#endif
