/*
 * conf_tree.c - libyaml's event stream turned into a tree with line numbers.
 *
 * Only the plain subset of YAML that a config file needs is accepted: one
 * document of maps, sequences and scalars. Anchors, aliases, explicit tags
 * other than the default ones, non-scalar keys and duplicate keys are
 * refused, each with the line it occurs on, so that the loader never has to
 * second-guess what the operator meant.
 */
#include "conf_tree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* An open map or sequence while its events are read. In a map, a key waits
 * in `key` until its value arrives; `discard_value` drops the value of a key
 * that was refused (duplicate or non-scalar), keeping the rest of the map. */
typedef struct open_node {
    vn_conf_node *node;
    char *key;
    int key_line;
    bool has_key;
    bool discard_value;
} open_node;

typedef struct tree_builder {
    const char *name; /* file name for messages */
    const char *text; /* the whole input, to locate reader errors */
    vn_buf *err;
    bool failed;
    vn_conf_node *root;
    open_node *stack;
    size_t depth;
    size_t stack_cap;
} tree_builder;

static void report(tree_builder *b, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(tree_builder *b, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vn_buf_printf(b->err, "%s:%d: %s\n", b->name, line, msg);
    b->failed = true;
}

static vn_conf_node *node_new(vn_node_type type, int line)
{
    vn_conf_node *n = vn_alloc(sizeof *n);
    n->type = type;
    n->line = line;
    return n;
}

void vn_conf_node_free(vn_conf_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->count; i++) {
        vn_conf_node_free(n->items[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->key_lines);
    free(n->value);
    free(n);
}

/* Room for one more item. The capacity is implicit: 4, then doubling, so
 * the arrays are full exactly when count is 0, 4 or a larger power of two. */
static void node_reserve(vn_conf_node *n)
{
    size_t count = n->count;
    bool full = count == 0 || (count >= 4 && (count & (count - 1)) == 0);
    if (!full)
        return;
    size_t cap = count ? count * 2 : 4;
    n->items = vn_realloc(n->items, cap * sizeof *n->items);
    if (n->type == VN_NODE_MAP) {
        n->keys = vn_realloc(n->keys, cap * sizeof *n->keys);
        n->key_lines = vn_realloc(n->key_lines, cap * sizeof *n->key_lines);
    }
}

static int key_index(const vn_conf_node *map, const char *key)
{
    for (size_t i = 0; i < map->count; i++)
        if (strcmp(map->keys[i], key) == 0)
            return (int)i;
    return -1;
}

/* A finished node goes to the open container on top of the stack (or
 * becomes the root). In a map it is alternately a key and a value. */
static void attach(tree_builder *b, vn_conf_node *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    open_node *top = &b->stack[b->depth - 1];
    vn_conf_node *parent = top->node;

    if (parent->type == VN_NODE_SEQ) {
        node_reserve(parent);
        parent->items[parent->count++] = n;
        return;
    }
    if (!top->has_key) {
        top->has_key = true;
        if (n->type != VN_NODE_SCALAR) {
            report(b, n->line, "map keys must be plain scalars");
            top->discard_value = true;
        } else {
            int first = key_index(parent, n->value);
            if (first >= 0) {
                report(b, n->line, "duplicate key '%s' (first at line %d)", n->value,
                       parent->key_lines[first]);
                top->discard_value = true;
            } else {
                top->key = n->value;
                top->key_line = n->line;
                n->value = NULL;
            }
        }
        vn_conf_node_free(n);
        return;
    }
    if (top->discard_value) {
        vn_conf_node_free(n);
    } else {
        node_reserve(parent);
        parent->keys[parent->count] = top->key;
        parent->key_lines[parent->count] = top->key_line;
        parent->items[parent->count++] = n;
    }
    top->key = NULL;
    top->has_key = false;
    top->discard_value = false;
}

static void push(tree_builder *b, vn_conf_node *n)
{
    if (b->depth == b->stack_cap) {
        b->stack_cap = b->stack_cap ? b->stack_cap * 2 : 8;
        b->stack = vn_realloc(b->stack, b->stack_cap * sizeof *b->stack);
    }
    b->stack[b->depth++] = (open_node){.node = n};
}

static void pop(tree_builder *b)
{
    open_node top = b->stack[--b->depth];
    attach(b, top.node);
}

/* Anchors and tags can appear on any node; both are refused. Default tags
 * (as libyaml resolves "!!str", "!!map", "!!seq") are harmless and allowed. */
static void check_node_props(tree_builder *b, int line, const yaml_char_t *anchor,
                             const yaml_char_t *tag, const char *default_tag)
{
    if (anchor)
        report(b, line, "anchors and aliases are not supported (&%s)", (const char *)anchor);
    if (tag && strcmp((const char *)tag, default_tag) != 0)
        report(b, line, "tags are not supported (%s)", (const char *)tag);
}

static int line_of_offset(const char *text, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && text[i]; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

static void report_parser_error(tree_builder *b, const yaml_parser_t *parser)
{
    const char *problem = parser->problem ? parser->problem : "malformed YAML";

    if (parser->error == YAML_READER_ERROR) {
        report(b, line_of_offset(b->text, parser->problem_offset), "%s", problem);
    } else if (parser->context) {
        report(b, (int)parser->problem_mark.line + 1, "%s (%s at line %d)", problem,
               parser->context, (int)parser->context_mark.line + 1);
    } else {
        report(b, (int)parser->problem_mark.line + 1, "%s", problem);
    }
}

/* Handles one event; false when the stream is over or cannot go on. */
static bool handle_event(tree_builder *b, const yaml_event_t *ev, int *documents)
{
    int line = (int)ev->start_mark.line + 1;
    vn_conf_node *n;

    switch (ev->type) {
    case YAML_STREAM_END_EVENT: return false;
    case YAML_DOCUMENT_START_EVENT:
        if (++*documents > 1) {
            report(b, line, "only one YAML document is allowed");
            return false;
        }
        return true;
    case YAML_ALIAS_EVENT:
        report(b, line, "anchors and aliases are not supported (*%s)",
               (const char *)ev->data.alias.anchor);
        attach(b, node_new(VN_NODE_SCALAR, line)); /* keeps the structure in step */
        return true;
    case YAML_SCALAR_EVENT:
        check_node_props(b, line, ev->data.scalar.anchor, ev->data.scalar.tag, YAML_STR_TAG);
        n = node_new(VN_NODE_SCALAR, line);
        n->value = vn_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        attach(b, n);
        return true;
    case YAML_MAPPING_START_EVENT:
        check_node_props(b, line, ev->data.mapping_start.anchor, ev->data.mapping_start.tag,
                         YAML_MAP_TAG);
        push(b, node_new(VN_NODE_MAP, line));
        return true;
    case YAML_SEQUENCE_START_EVENT:
        check_node_props(b, line, ev->data.sequence_start.anchor, ev->data.sequence_start.tag,
                         YAML_SEQ_TAG);
        push(b, node_new(VN_NODE_SEQ, line));
        return true;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT: pop(b); return true;
    default: return true; /* stream start, document end, no event */
    }
}

vn_conf_node *vn_conf_parse_string(const char *text, const char *name, vn_buf *err)
{
    tree_builder b = {.name = name, .text = text, .err = err};
    yaml_parser_t parser;
    yaml_event_t ev;
    int documents = 0;

    if (!yaml_parser_initialize(&parser)) {
        report(&b, 1, "cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            report_parser_error(&b, &parser);
            break;
        }
        bool more = handle_event(&b, &ev, &documents);
        yaml_event_delete(&ev);
        if (!more)
            break;
    }
    yaml_parser_delete(&parser);

    /* After an error the stack may still hold open containers. */
    while (b.depth > 0) {
        open_node *top = &b.stack[--b.depth];
        free(top->key);
        vn_conf_node_free(top->node);
    }
    free(b.stack);
    if (b.failed) {
        vn_conf_node_free(b.root);
        return NULL;
    }
    /* An empty file is an empty map, so that the loader can name what is missing. */
    return b.root ? b.root : node_new(VN_NODE_MAP, 1);
}

vn_conf_node *vn_conf_parse_file(const char *path, vn_buf *err)
{
    FILE *f = fopen(path, "rb");
    vn_buf text;
    char chunk[8192];
    size_t n;

    if (!f) {
        vn_buf_printf(err, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    vn_buf_init(&text);
    vn_buf_append(&text, "", 0); /* an empty file still has a string */
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        vn_buf_append(&text, chunk, n);
    if (ferror(f)) {
        vn_buf_printf(err, "%s: %s\n", path, strerror(errno));
        fclose(f);
        vn_buf_free(&text);
        return NULL;
    }
    fclose(f);
    /* The parser reads a C string: a NUL would silently end the file. */
    const char *nul = memchr(text.data, '\0', text.len);
    if (nul) {
        vn_buf_printf(err, "%s:%d: NUL byte in the file\n", path,
                      line_of_offset(text.data, (size_t)(nul - text.data)));
        vn_buf_free(&text);
        return NULL;
    }
    vn_conf_node *root = vn_conf_parse_string(text.data, path, err);
    vn_buf_free(&text);
    return root;
}

const vn_conf_node *vn_conf_map_get(const vn_conf_node *map, const char *key)
{
    if (!map || map->type != VN_NODE_MAP)
        return NULL;
    int i = key_index(map, key);
    return i >= 0 ? map->items[i] : NULL;
}

bool vn_conf_is_null(const vn_conf_node *n)
{
    if (!n)
        return true;
    if (n->type != VN_NODE_SCALAR || n->quoted)
        return false;
    return n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
           strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0;
}

bool vn_conf_as_int(const vn_conf_node *n, long long *out)
{
    if (!n || n->type != VN_NODE_SCALAR || n->quoted)
        return false;
    const char *s = n->value;
    const char *digits = (*s == '+' || *s == '-') ? s + 1 : s;
    if (*digits < '0' || *digits > '9')
        return false; /* also refuses strtoll's leading whitespace */
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return false;
    *out = v;
    return true;
}

bool vn_conf_as_bool(const vn_conf_node *n, bool *out)
{
    static const char *const truthy[] = {"true", "yes", "on"};
    static const char *const falsy[] = {"false", "no", "off"};

    if (!n || n->type != VN_NODE_SCALAR || n->quoted)
        return false;
    for (size_t i = 0; i < sizeof truthy / sizeof truthy[0]; i++) {
        if (strcasecmp(n->value, truthy[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(n->value, falsy[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static const vn_config_key *find_key(const vn_config_key *keys, const char *name)
{
    for (const vn_config_key *k = keys; k && k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* A string key's declared choices and check. */
static const char *check_string(const vn_config_key *key, const char *value, char *buf, size_t size)
{
    if (key->choices) {
        size_t used = (size_t)snprintf(buf, size, "must be one of");
        for (const char *const *choice = key->choices; *choice; choice++) {
            if (strcmp(*choice, value) == 0)
                return key->check ? key->check(value) : NULL;
            if (used < size)
                used += (size_t)snprintf(buf + used, size - used, "%s %s",
                                         choice == key->choices ? "" : ",", *choice);
        }
        return buf;
    }
    return key->check ? key->check(value) : NULL;
}

const char *vn_conf_check_value(const vn_config_key *key, const vn_conf_node *value, char *buf,
                                size_t size)
{
    long long num;
    bool flag;

    switch (key->type) {
    case VN_CONF_INT:
        if (key->min != key->max) {
            if (vn_conf_as_int(value, &num) && num >= key->min && num <= key->max)
                return NULL;
            snprintf(buf, size, "must be an integer between %lld and %lld", key->min, key->max);
            return buf;
        }
        return vn_conf_as_int(value, &num) ? NULL : "must be an integer";
    case VN_CONF_BOOL: return vn_conf_as_bool(value, &flag) ? NULL : "must be true or false";
    case VN_CONF_STRING:
        if (value->type == VN_NODE_SCALAR && !vn_conf_is_null(value))
            return check_string(key, value->value, buf, size);
        return "must be a string";
    }
    return "has an unknown type";
}

bool vn_conf_validate_keys(const vn_conf_node *options, const vn_config_key *keys,
                           const char *module, const char *file, vn_buf *err)
{
    bool valid = true;
    char why[256];

    if (vn_conf_is_null(options))
        return true;
    if (options->type != VN_NODE_MAP) {
        vn_buf_printf(err, "%s:%d: modules.%s: options must be a map of keys\n", file,
                      options->line, module);
        return false;
    }
    for (size_t i = 0; i < options->count; i++) {
        const vn_config_key *key = find_key(keys, options->keys[i]);
        const char *problem;

        if (!key) {
            vn_buf_printf(err, "%s:%d: modules.%s: unknown key '%s'\n", file, options->key_lines[i],
                          module, options->keys[i]);
            valid = false;
        } else if ((problem = vn_conf_check_value(key, options->items[i], why, sizeof why))) {
            vn_buf_printf(err, "%s:%d: modules.%s: key '%s' %s\n", file, options->key_lines[i],
                          module, key->name, problem);
            valid = false;
        }
    }
    return valid;
}
