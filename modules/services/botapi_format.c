/*
 * botapi_format.c - parse_mode: text a bot formats with Telegram's HTML or
 * Markdown, written for XMPP clients as XEP-0393 message styling, which
 * the common clients show (and the others show readably as it is).
 *
 * HTML: <b>/<strong> become *bold*, <i>/<em> _italic_, <s>/<strike>/<del>
 * ~strike~, <code>/<pre> `code`, <a href="u">t</a> "t (u)"; other tags
 * (<u>, <span>, <tg-spoiler>, <blockquote>) are dropped, their text kept;
 * &lt; &gt; &amp; &quot; and numeric character references are decoded.
 * A '<' without its '>' is refused, as Telegram refuses it.
 * MarkdownV2 and Markdown already use XEP-0393's *, _, ~ and `: their
 * backslash escapes are undone, [t](u) becomes "t (u)", and MarkdownV2's
 * __underline__ and ||spoiler|| markers are dropped.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "botapi.h"

typedef struct tag_style {
    const char *name;
    const char *mark;
} tag_style;

static const tag_style tag_styles[] = {
    {"b", "*"},      {"strong", "*"}, {"i", "_"},    {"em", "_"},  {"s", "~"},
    {"strike", "~"}, {"del", "~"},    {"code", "`"}, {"pre", "`"},
};

static const char *tag_mark(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof tag_styles / sizeof *tag_styles; i++)
        if (strlen(tag_styles[i].name) == len && strncasecmp(tag_styles[i].name, name, len) == 0)
            return tag_styles[i].mark;
    return "";
}

/* The UTF-8 of code point cp into out. */
static void append_code_point(vn_buf *out, unsigned long cp)
{
    char b[4];
    size_t n;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    vn_buf_append(out, b, n);
}

/* An entity at s ('&'): decoded into out, returns its length; 0 if none. */
static size_t append_entity(vn_buf *out, const char *s)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < sizeof named / sizeof *named; i++) {
        size_t len = strlen(named[i].name);
        if (strncmp(s, named[i].name, len) == 0) {
            vn_buf_append(out, &named[i].c, 1);
            return len;
        }
    }
    if (s[1] != '#')
        return 0;
    bool hex = s[2] == 'x' || s[2] == 'X';
    char *end;
    unsigned long cp = strtoul(s + (hex ? 3 : 2), &end, hex ? 16 : 10);
    if (end == s + (hex ? 3 : 2) || *end != ';' || end - s > 12)
        return 0;
    append_code_point(out, cp);
    return (size_t)(end - s) + 1;
}

/* The href of an <a ...> tag's text, or NULL. */
static char *tag_href(const char *tag, size_t len)
{
    const char *end = tag + len;
    for (const char *p = tag; p + 5 < end; p++) {
        if (strncasecmp(p, "href=", 5) != 0)
            continue;
        p += 5;
        char quote = *p == '"' || *p == '\'' ? *p++ : ' ';
        const char *stop = p;
        while (stop < end && *stop != quote && !(quote == ' ' && *stop == '>'))
            stop++;
        return vn_strndup(p, (size_t)(stop - p));
    }
    return NULL;
}

static const char *from_html(const char *text, vn_buf *out)
{
    char *href = NULL; /* of the <a> being read */
    for (const char *p = text; *p;) {
        if (*p == '&') {
            size_t used = append_entity(out, p);
            if (used) {
                p += used;
                continue;
            }
        }
        if (*p != '<') {
            vn_buf_append(out, p++, 1);
            continue;
        }
        const char *close = strchr(p, '>');
        if (!close) {
            free(href);
            return "Bad Request: can't parse entities: unclosed start tag";
        }
        const char *name = p + 1;
        bool end_tag = *name == '/';
        if (end_tag)
            name++;
        size_t name_len = 0;
        while (name + name_len < close &&
               (isalnum((unsigned char)name[name_len]) || name[name_len] == '-'))
            name_len++;
        if (name_len == 1 && tolower((unsigned char)name[0]) == 'a') {
            if (!end_tag) {
                free(href);
                href = tag_href(name, (size_t)(close - name));
            } else if (href) {
                vn_buf_printf(out, " (%s)", href);
                free(href);
                href = NULL;
            }
        } else if (name_len == 2 && strncasecmp(name, "br", 2) == 0) {
            vn_buf_append(out, "\n", 1);
        } else {
            vn_buf_append_str(out, tag_mark(name, name_len));
        }
        p = close + 1;
    }
    free(href);
    return NULL;
}

static void from_markdown(const char *text, bool v2, vn_buf *out)
{
    /* The next "](" and the ')' after it, found once for all the '[' before
     * them: linear in the text, however many '[' it has. */
    const char *mid = NULL, *end = NULL;
    bool no_more_links = false;
    for (const char *p = text; *p;) {
        if (*p == '\\' && p[1] && (v2 || strchr("_*`[", p[1]))) {
            vn_buf_append(out, p + 1, 1);
            p += 2;
        } else if (v2 && ((p[0] == '_' && p[1] == '_') || (p[0] == '|' && p[1] == '|'))) {
            p += 2;
        } else if (*p == '[' && !no_more_links) {
            if (!mid || mid < p) {
                mid = strstr(p, "](");
                end = mid ? strchr(mid, ')') : NULL;
                no_more_links = !end;
            }
            if (!end) {
                vn_buf_append(out, p++, 1);
                continue;
            }
            vn_buf_append(out, p + 1, (size_t)(mid - p - 1));
            vn_buf_append_str(out, " (");
            vn_buf_append(out, mid + 2, (size_t)(end - mid - 2));
            vn_buf_append_str(out, ")");
            p = end + 1;
        } else {
            vn_buf_append(out, p++, 1);
        }
    }
}

const char *botapi_format(const char *text, const char *parse_mode, char **out)
{
    vn_buf buf;
    const char *problem = NULL;
    *out = NULL;
    if (!text)
        return NULL;
    vn_buf_init(&buf);
    if (!parse_mode || !parse_mode[0])
        vn_buf_append_str(&buf, text);
    else if (strcasecmp(parse_mode, "HTML") == 0)
        problem = from_html(text, &buf);
    else if (strcasecmp(parse_mode, "MarkdownV2") == 0)
        from_markdown(text, true, &buf);
    else if (strcasecmp(parse_mode, "Markdown") == 0)
        from_markdown(text, false, &buf);
    else
        problem = "Bad Request: unsupported parse_mode";
    if (problem) {
        vn_buf_free(&buf);
        return problem;
    }
    *out = vn_buf_steal(&buf, NULL);
    return NULL;
}
