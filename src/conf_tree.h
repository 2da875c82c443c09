/*
 * conf_tree.h - a YAML document as a small tree with line numbers.
 *
 * libyaml's event stream is turned into maps, sequences and scalars so that
 * the config loader and module option validation can walk it and name the
 * line of every error. Anchors/aliases and multi-document files are refused.
 */
#ifndef VESTNIK_CONF_TREE_H
#define VESTNIK_CONF_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "vestnik/module.h"
#include "vestnik/util.h"

typedef enum { VN_NODE_SCALAR, VN_NODE_MAP, VN_NODE_SEQ } vn_node_type;

typedef struct vn_conf_node vn_conf_node;
struct vn_conf_node {
    vn_node_type type;
    int line;       /* 1-based line in the file */
    char *value;    /* scalar text */
    bool quoted;    /* scalar was quoted ('...' or "...") */
    char **keys;    /* map: keys[i] names items[i] */
    int *key_lines; /* map: line of each key */
    vn_conf_node **items;
    size_t count;
};

/* Parse a file; NULL on failure, with one "file:line: message\n" appended to
 * err per problem found. An empty document is an empty map. */
vn_conf_node *vn_conf_parse_file(const char *path, vn_buf *err);
vn_conf_node *vn_conf_parse_string(const char *text, const char *name, vn_buf *err);
void vn_conf_node_free(vn_conf_node *n);

const vn_conf_node *vn_conf_map_get(const vn_conf_node *map, const char *key);

/* Typed reads of unquoted scalars; false on a wrong type (the caller names
 * n->line in its message). */
bool vn_conf_as_int(const vn_conf_node *n, long long *out); /* decimal, optional sign */
bool vn_conf_as_bool(const vn_conf_node *n, bool *out);     /* true/false/yes/no/on/off */
/* Absent, or an unquoted empty value, "~" or "null" (`ping:`). */
bool vn_conf_is_null(const vn_conf_node *n);

/* NULL if value fits key (its type, range, choices and check), else why
 * not ("must be ..."), possibly written into buf. */
const char *vn_conf_check_value(const vn_config_key *key, const vn_conf_node *value, char *buf,
                                size_t size);

/* Check a module's options map (NULL = empty) against its declared keys:
 * unknown keys and values that do not fit are errors. file names the
 * config file in messages. Returns true if valid. */
bool vn_conf_validate_keys(const vn_conf_node *options, const vn_config_key *keys,
                           const char *module, const char *file, vn_buf *err);

#endif
