/*
 * text.c - case folding and word matching for what people type in the
 * directory's search and to the assistant: ASCII, Latin-1 letters and
 * Cyrillic (Russian, Ukrainian, Belarusian...) are lowercased, and "ё" is
 * read as "е", as Russian speakers type it. Other scripts pass unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

/* One UTF-8 sequence at s: its code point and length (1 for a bad byte). */
static uint32_t utf8_next(const unsigned char *s, size_t *len)
{
    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
        *len = 2;
        return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        *len = 3;
        return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *len = 1;
    return s[0];
}

static uint32_t fold(uint32_t c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7))
        return c + 0x20;
    if (c >= 0x410 && c <= 0x42F) /* А-Я */
        return c + 0x20;
    if (c >= 0x400 && c <= 0x40F) /* Ѐ-Џ */
        c += 0x50;
    if (c == 0x451) /* ё */
        return 0x435;
    return c;
}

static void utf8_put(vn_buf *out, uint32_t c)
{
    char b[3];
    if (c < 0x80) {
        b[0] = (char)c;
        vn_buf_append(out, b, 1);
    } else if (c < 0x800) {
        b[0] = (char)(0xC0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3F));
        vn_buf_append(out, b, 2);
    } else {
        b[0] = (char)(0xE0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        b[2] = (char)(0x80 | (c & 0x3F));
        vn_buf_append(out, b, 3);
    }
}

char *text_fold(const char *s)
{
    vn_buf out;
    vn_buf_init(&out);
    vn_buf_append(&out, "", 0);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t len;
        uint32_t c = utf8_next(p, &len);
        if (len == 1 && *p >= 0x80)
            vn_buf_append(&out, p, 1); /* not UTF-8: kept as it is */
        else
            utf8_put(&out, fold(c));
        p += len;
    }
    return vn_buf_steal(&out, NULL);
}

/* A letter or digit (anything not ASCII counts as a letter). */
static bool word_char(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

bool text_has_word_prefix(const char *text, const char *word)
{
    size_t len = strlen(word);
    if (len == 0)
        return true;
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word))
        if (p == text || !word_char((unsigned char)p[-1]))
            return true;
    return false;
}
