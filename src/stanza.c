/*
 * stanza.c - the element tree: storage, lookup, building and serialization.
 *
 * The layout is chosen for many small, long-lived trees (offline queues,
 * idle sessions, MUC fan-out): an element is one allocation holding its name
 * and namespace, each attribute is one allocation "name\0value\0", and a
 * text node is one allocation with its bytes inline. An element's text is
 * served straight from its text node when it has a single one, so the
 * concatenation cache is only ever allocated for mixed content.
 */
#include "vestnik/stanza.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vestnik/i18n.h"
#include "vestnik/util.h"

/* Common head of elements and text nodes, so one sibling list holds both. */
typedef struct vn_node {
    struct vn_node *next;
    bool is_text;
} vn_node;

typedef struct vn_text_node {
    vn_node node; /* must stay first */
    size_t len;
    char data[]; /* len bytes and a NUL */
} vn_text_node;

/* The serialization of a fanned-out stanza without its top-level 'to'
 * (vn_stanza_share_serialization): written once, spliced per recipient. */
typedef struct wire_cache {
    bool valid;
    bool changed;          /* changed since vn_stanza_shared_changed last asked */
    const char *stream_ns; /* the stream namespace it was written for */
    size_t head_len;       /* "<name": where " to='...'" goes */
    vn_buf bytes;
} wire_cache;

static size_t shared_count; /* stanzas with a wire cache: 0 skips tracking */

struct vn_stanza {
    vn_node node;     /* must stay first */
    wire_cache *wire; /* top-level stanzas being fanned out only */
    vn_stanza *parent;
    vn_node *first_child;
    vn_node *last_child;
    char **attrs; /* each "name\0value\0", in document order */
    uint32_t attr_count;
    uint32_t attr_cap;
    char *text_cache; /* concatenation of several text children, or NULL */
    const char *ns;   /* into name's storage, a static string, or NULL */
    char name[];      /* "name\0ns\0" */
};

static vn_stanza *as_element(vn_node *n)
{
    return (vn_stanza *)n;
}

static vn_text_node *as_text(vn_node *n)
{
    return (vn_text_node *)n;
}

static bool ns_equal(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* A change anywhere in a tree invalidates its root's wire cache. */
static void touch(vn_stanza *st)
{
    if (shared_count == 0)
        return;
    while (st->parent)
        st = st->parent;
    if (st->wire) {
        st->wire->valid = false;
        st->wire->changed = true;
    }
}

vn_stanza *vn_stanza_new(const char *name, const char *ns)
{
    size_t name_size = strlen(name) + 1;
    size_t ns_size = ns ? strlen(ns) + 1 : 0;
    vn_stanza *st = vn_alloc(sizeof *st + name_size + ns_size);

    memcpy(st->name, name, name_size);
    if (ns) {
        memcpy(st->name + name_size, ns, ns_size);
        st->ns = st->name + name_size;
    }
    return st;
}

static void element_free(vn_stanza *st)
{
    vn_node *n = st->first_child;

    while (n) {
        vn_node *next = n->next;
        if (n->is_text)
            free(n);
        else
            element_free(as_element(n));
        n = next;
    }
    for (uint32_t i = 0; i < st->attr_count; i++)
        free(st->attrs[i]);
    free(st->attrs);
    free(st->text_cache);
    if (st->wire) {
        vn_buf_free(&st->wire->bytes);
        free(st->wire);
        shared_count--;
    }
    free(st);
}

void vn_stanza_free(vn_stanza *st)
{
    if (!st)
        return;
    vn_stanza_detach(st);
    element_free(st);
}

static void link_child(vn_stanza *parent, vn_node *n)
{
    n->next = NULL;
    if (parent->last_child)
        parent->last_child->next = n;
    else
        parent->first_child = n;
    parent->last_child = n;
}

static size_t attr_block_size(const char *block)
{
    size_t name_len = strlen(block);
    return name_len + 1 + strlen(block + name_len + 1) + 1;
}

static const char *attr_value_of(const char *block)
{
    return block + strlen(block) + 1;
}

static void attrs_reserve(vn_stanza *st, uint32_t count)
{
    if (count <= st->attr_cap)
        return;
    uint32_t cap = st->attr_cap ? st->attr_cap : 2;
    while (cap < count)
        cap *= 2;
    st->attrs = vn_realloc(st->attrs, cap * sizeof *st->attrs);
    st->attr_cap = cap;
}

static void copy_attrs(vn_stanza *dst, const vn_stanza *src)
{
    attrs_reserve(dst, src->attr_count);
    for (uint32_t i = 0; i < src->attr_count; i++) {
        size_t size = attr_block_size(src->attrs[i]);
        dst->attrs[i] = vn_alloc(size);
        memcpy(dst->attrs[i], src->attrs[i], size);
    }
    dst->attr_count = src->attr_count;
}

static vn_node *copy_node(vn_node *n)
{
    if (n->is_text) {
        vn_text_node *text = as_text(n);
        size_t size = sizeof *text + text->len + 1;
        vn_text_node *dup = vn_alloc(size);
        memcpy(dup, text, size);
        return &dup->node;
    }
    return &vn_stanza_copy(as_element(n))->node;
}

static void copy_children(vn_stanza *dst, const vn_stanza *src)
{
    for (vn_node *n = src->first_child; n; n = n->next) {
        vn_node *dup = copy_node(n);
        if (!dup->is_text)
            as_element(dup)->parent = dst;
        link_child(dst, dup);
    }
}

vn_stanza *vn_stanza_copy(const vn_stanza *st)
{
    vn_stanza *dup = vn_stanza_new(st->name, st->ns);

    copy_attrs(dup, st);
    copy_children(dup, st);
    return dup;
}

const char *vn_stanza_name(const vn_stanza *st)
{
    return st->name;
}

const char *vn_stanza_ns(const vn_stanza *st)
{
    return st->ns;
}

bool vn_stanza_is(const vn_stanza *st, const char *name, const char *ns)
{
    if (!st)
        return false;
    if (name && strcmp(name, st->name) != 0)
        return false;
    return !ns || (st->ns && strcmp(ns, st->ns) == 0);
}

vn_stanza *vn_stanza_parent(const vn_stanza *st)
{
    return st->parent;
}

static int attr_find(const vn_stanza *st, const char *name)
{
    for (uint32_t i = 0; i < st->attr_count; i++)
        if (strcmp(st->attrs[i], name) == 0)
            return (int)i;
    return -1;
}

const char *vn_stanza_attr(const vn_stanza *st, const char *name)
{
    if (!st)
        return NULL;
    int i = attr_find(st, name);
    return i < 0 ? NULL : attr_value_of(st->attrs[i]);
}

void vn_stanza_set_attr(vn_stanza *st, const char *name, const char *value)
{
    int i = attr_find(st, name);

    if (st->parent || strcmp(name, "to") != 0) /* a cache leaves out the top 'to' */
        touch(st);
    if (!value) {
        if (i < 0)
            return;
        free(st->attrs[i]);
        st->attr_count--;
        memmove(st->attrs + i, st->attrs + i + 1, (st->attr_count - (uint32_t)i) * sizeof(char *));
        return;
    }
    /* Build the new block before freeing the old one: value may point into it. */
    size_t name_size = strlen(name) + 1;
    size_t value_size = strlen(value) + 1;
    char *block = vn_alloc(name_size + value_size);
    memcpy(block, name, name_size);
    memcpy(block + name_size, value, value_size);
    if (i >= 0) {
        free(st->attrs[i]);
        st->attrs[i] = block;
        return;
    }
    attrs_reserve(st, st->attr_count + 1);
    st->attrs[st->attr_count++] = block;
}

size_t vn_stanza_attr_count(const vn_stanza *st)
{
    return st->attr_count;
}

bool vn_stanza_attr_at(const vn_stanza *st, size_t i, const char **name, const char **value)
{
    if (i >= st->attr_count)
        return false;
    *name = st->attrs[i];
    *value = attr_value_of(st->attrs[i]);
    return true;
}

static vn_stanza *element_from(vn_node *n)
{
    while (n && n->is_text)
        n = n->next;
    return n ? as_element(n) : NULL;
}

vn_stanza *vn_stanza_child(const vn_stanza *st, const char *name, const char *ns)
{
    if (!st)
        return NULL;
    for (vn_stanza *c = element_from(st->first_child); c; c = element_from(c->node.next))
        if (vn_stanza_is(c, name, ns))
            return c;
    return NULL;
}

vn_stanza *vn_stanza_first_element(const vn_stanza *st)
{
    return st ? element_from(st->first_child) : NULL;
}

vn_stanza *vn_stanza_next_element(const vn_stanza *st)
{
    return element_from(st->node.next);
}

void vn_stanza_replace_ns(vn_stanza *st, const char *from, const char *to_static)
{
    touch(st);
    if (ns_equal(st->ns, from))
        st->ns = to_static;
    for (vn_stanza *c = element_from(st->first_child); c; c = element_from(c->node.next))
        vn_stanza_replace_ns(c, from, to_static);
}

size_t vn_stanza_element_count(const vn_stanza *st)
{
    size_t count = 0;
    if (!st)
        return 0;
    for (vn_stanza *c = element_from(st->first_child); c; c = element_from(c->node.next))
        count++;
    return count;
}

vn_stanza *vn_stanza_add_child(vn_stanza *parent, const char *name, const char *ns)
{
    vn_stanza *child = vn_stanza_new(name, ns);
    vn_stanza_append(parent, child);
    return child;
}

void vn_stanza_append(vn_stanza *parent, vn_stanza *child)
{
    vn_stanza_detach(child);
    touch(parent);
    child->parent = parent;
    link_child(parent, &child->node);
}

void vn_stanza_add_text(vn_stanza *st, const char *text, size_t len)
{
    if (len == 0)
        return;
    touch(st);
    free(st->text_cache);
    st->text_cache = NULL;

    vn_node *last = st->last_child;
    if (last && last->is_text) {
        /* Grow the trailing text node in place of adding a sibling. */
        vn_node **link = &st->first_child;
        while (*link != last)
            link = &(*link)->next;
        size_t old_len = as_text(last)->len;
        vn_text_node *grown = vn_realloc(last, sizeof *grown + old_len + len + 1);
        memcpy(grown->data + old_len, text, len);
        grown->len = old_len + len;
        grown->data[grown->len] = '\0';
        *link = &grown->node;
        st->last_child = &grown->node;
        return;
    }
    vn_text_node *node = vn_alloc(sizeof *node + len + 1);
    node->node.is_text = true;
    node->len = len;
    memcpy(node->data, text, len);
    link_child(st, &node->node);
}

vn_stanza *vn_stanza_add_text_child(vn_stanza *parent, const char *name, const char *ns,
                                    const char *text)
{
    vn_stanza *child = vn_stanza_add_child(parent, name, ns);
    if (text)
        vn_stanza_add_text(child, text, strlen(text));
    return child;
}

void vn_stanza_detach(vn_stanza *child)
{
    vn_stanza *parent = child->parent;
    if (!parent)
        return;
    touch(parent);

    vn_node *prev = NULL;
    vn_node **link = &parent->first_child;
    while (*link != &child->node) {
        prev = *link;
        link = &prev->next;
    }
    *link = child->node.next;
    if (parent->last_child == &child->node)
        parent->last_child = prev;
    child->node.next = NULL;
    child->parent = NULL;
}

void vn_stanza_remove(vn_stanza *child)
{
    vn_stanza_free(child);
}

const char *vn_stanza_text(const vn_stanza *st)
{
    const vn_text_node *only = NULL;
    size_t text_nodes = 0;

    if (st->text_cache)
        return st->text_cache;
    for (vn_node *n = st->first_child; n; n = n->next) {
        if (n->is_text) {
            only = as_text(n);
            text_nodes++;
        }
    }
    if (text_nodes == 0)
        return "";
    if (text_nodes == 1)
        return only->data;

    vn_buf joined;
    vn_buf_init(&joined);
    for (vn_node *n = st->first_child; n; n = n->next)
        if (n->is_text)
            vn_buf_append(&joined, as_text(n)->data, as_text(n)->len);
    /* The cache is logically part of the text, not of the element's state. */
    vn_stanza *mutable_st = (vn_stanza *)st;
    mutable_st->text_cache = vn_buf_steal(&joined, NULL);
    return mutable_st->text_cache;
}

const char *vn_stanza_child_text(const vn_stanza *st, const char *name, const char *ns)
{
    const vn_stanza *child = vn_stanza_child(st, name, ns);
    return child ? vn_stanza_text(child) : NULL;
}

/*
 * Escapes text or an attribute value. C0 controls other than tab, LF and CR
 * are not XML 1.0 characters and are dropped. CR (and, inside attribute
 * values, tab and LF) are written as character references so that the
 * reader's line-end and attribute-value normalization gives them back.
 */
static void append_escaped(vn_buf *out, const char *s, size_t len, bool in_attr)
{
    size_t run_start = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 || (!in_attr && (c == '\t' || c == '\n')))
            continue;
        vn_buf_append_xml_escaped(out, s + run_start, i - run_start);
        switch (c) {
        case '\t': vn_buf_append_str(out, "&#9;"); break;
        case '\n': vn_buf_append_str(out, "&#10;"); break;
        case '\r': vn_buf_append_str(out, "&#13;"); break;
        default: break; /* not an XML character: dropped */
        }
        run_start = i + 1;
    }
    vn_buf_append_xml_escaped(out, s + run_start, len - run_start);
}

static void write_attr_value(vn_buf *out, const char *value)
{
    vn_buf_append(out, "='", 2);
    append_escaped(out, value, strlen(value), true);
    vn_buf_append(out, "'", 1);
}

static void write_attrs(const vn_stanza *st, const char *skip, vn_buf *out)
{
    unsigned prefix_no = 0;

    for (uint32_t i = 0; i < st->attr_count; i++) {
        const char *name = st->attrs[i];
        const char *value = attr_value_of(name);
        /* Namespace declarations are the serializer's to write. */
        if (strcmp(name, "xmlns") == 0 || strncmp(name, "xmlns:", 6) == 0 ||
            (skip && strcmp(name, skip) == 0))
            continue;
        const char *sep = strrchr(name, '|');
        if (sep) {
            vn_buf_printf(out, " xmlns:n%u='", prefix_no);
            append_escaped(out, name, (size_t)(sep - name), true);
            vn_buf_printf(out, "' n%u:%s", prefix_no, sep + 1);
            prefix_no++;
        } else {
            vn_buf_append(out, " ", 1);
            vn_buf_append_str(out, name);
        }
        write_attr_value(out, value);
    }
}

static void write_name(const vn_stanza *st, bool in_streams_ns, vn_buf *out)
{
    if (in_streams_ns)
        vn_buf_append(out, "stream:", 7);
    vn_buf_append_str(out, st->name);
}

/* default_ns is the default namespace in scope where st is written;
 * skip_attr (top level only) an attribute left out. */
static void write_element(const vn_stanza *st, const char *default_ns, const char *skip_attr,
                          vn_buf *out)
{
    bool in_streams_ns = st->ns && strcmp(st->ns, VN_NS_STREAMS) == 0;
    const char *children_default_ns = default_ns;

    vn_buf_append(out, "<", 1);
    write_name(st, in_streams_ns, out);
    if (!in_streams_ns && !ns_equal(st->ns, default_ns)) {
        vn_buf_append_str(out, " xmlns");
        write_attr_value(out, st->ns ? st->ns : "");
        children_default_ns = st->ns;
    }
    write_attrs(st, skip_attr, out);
    if (!st->first_child) {
        vn_buf_append(out, "/>", 2);
        return;
    }
    vn_buf_append(out, ">", 1);
    for (vn_node *n = st->first_child; n; n = n->next) {
        if (n->is_text)
            append_escaped(out, as_text(n)->data, as_text(n)->len, false);
        else
            write_element(as_element(n), children_default_ns, NULL, out);
    }
    vn_buf_append(out, "</", 2);
    write_name(st, in_streams_ns, out);
    vn_buf_append(out, ">", 1);
}

void vn_stanza_share_serialization(vn_stanza *st)
{
    if (st->wire || st->parent)
        return;
    st->wire = vn_alloc(sizeof *st->wire);
    vn_buf_init(&st->wire->bytes);
    shared_count++;
}

bool vn_stanza_shared_changed(vn_stanza *st)
{
    bool changed = st->wire && st->wire->changed;
    if (st->wire)
        st->wire->changed = false;
    return changed;
}

/* The cached form, without 'to', rebuilt when the tree or stream changed;
 * 'to' is spliced in after the element name. */
static void write_shared(const vn_stanza *st, const char *default_ns, const char *stream_ns,
                         vn_buf *out)
{
    wire_cache *w = st->wire;
    const char *to = vn_stanza_attr(st, "to");

    if (!w->valid || !ns_equal(w->stream_ns, stream_ns)) {
        vn_buf_reset(&w->bytes);
        write_element(st, default_ns, "to", &w->bytes);
        w->head_len = 1 + strlen(st->name) + (st->ns && strcmp(st->ns, VN_NS_STREAMS) == 0 ? 7 : 0);
        w->stream_ns = stream_ns;
        w->valid = true;
    }
    vn_buf_append(out, w->bytes.data, w->head_len);
    if (to) {
        vn_buf_append(out, " to", 3);
        write_attr_value(out, to);
    }
    vn_buf_append(out, w->bytes.data + w->head_len, w->bytes.len - w->head_len);
}

void vn_stanza_serialize_to(const vn_stanza *st, const char *stream_ns, vn_buf *out)
{
    /* A stanza takes the stream's namespace, and so do its descendants
     * written in the stanza's own namespace. */
    const char *default_ns = vn_stanza_is_stanza_ns(st->ns) ? st->ns : stream_ns;
    if (st->wire)
        write_shared(st, default_ns, stream_ns, out);
    else
        write_element(st, default_ns, NULL, out);
}

char *vn_stanza_serialize(const vn_stanza *st, const char *stream_ns, size_t *len)
{
    vn_buf out;

    vn_buf_init(&out);
    vn_stanza_serialize_to(st, stream_ns, &out);
    return vn_buf_steal(&out, len);
}

bool vn_stanza_is_stanza_ns(const char *ns)
{
    return ns && (strcmp(ns, VN_NS_CLIENT) == 0 || strcmp(ns, VN_NS_SERVER) == 0 ||
                  strcmp(ns, VN_NS_COMPONENT) == 0);
}

vn_stanza *vn_stanza_error_reply(const vn_stanza *st, const char *type, const char *condition,
                                 const char *text)
{
    const char *original_type = vn_stanza_attr(st, "type");
    if (original_type && strcmp(original_type, "error") == 0)
        return NULL;

    vn_stanza *reply = vn_stanza_new(st->name, st->ns);
    copy_attrs(reply, st);
    vn_stanza_set_attr(reply, "from", vn_stanza_attr(st, "to"));
    vn_stanza_set_attr(reply, "to", vn_stanza_attr(st, "from"));
    vn_stanza_set_attr(reply, "type", "error");
    copy_children(reply, st);

    vn_stanza *error = vn_stanza_add_child(reply, "error", st->ns);
    vn_stanza_set_attr(error, "type", type);
    vn_stanza_add_child(error, condition, VN_NS_STANZA_ERRORS);
    if (text) {
        /* In the language of the stanza being answered (vestnik/i18n.h). */
        const char *lang = vn_stanza_attr(st, "xml:lang");
        vn_stanza *t =
            vn_stanza_add_text_child(error, "text", VN_NS_STANZA_ERRORS, vn_tr(lang, text));
        vn_stanza_set_attr(t, "xml:lang", vn_tr_lang(lang));
    }
    return reply;
}

vn_stanza *vn_stanza_iq_result(const vn_stanza *iq)
{
    vn_stanza *result = vn_stanza_new("iq", iq->ns);

    vn_stanza_set_attr(result, "type", "result");
    vn_stanza_set_attr(result, "id", vn_stanza_attr(iq, "id"));
    vn_stanza_set_attr(result, "from", vn_stanza_attr(iq, "to"));
    vn_stanza_set_attr(result, "to", vn_stanza_attr(iq, "from"));
    return result;
}
