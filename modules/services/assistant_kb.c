/*
 * assistant_kb.c - the assistant's knowledge base, read from the
 * operator's YAML file with libyaml's document API:
 *
 *   services:
 *     - id: passport-replacement
 *       title: {en: Replacing a passport, ru: Замена паспорта}
 *       keywords: {en: [passport, replace], ru: [паспорт, замен]}
 *       requirements: {en: [...], ru: [...]}
 *       steps: {en: [...], ru: [...]}
 *       documents:
 *         - type: identity
 *           claims: [given_name, family_name]
 *           purpose: {en: ..., ru: ...}
 *       result: {en: ..., ru: ...}
 *
 * Keywords are stems: one matches a word of the question that starts with
 * it ("замен" matches "замена", "заменить"). Errors name the line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "assistant.h"

typedef struct loader {
    yaml_document_t doc;
    char *error;
} loader;

static void fail(loader *ld, const yaml_node_t *node, const char *what)
{
    if (!ld->error)
        ld->error = vn_asprintf("line %zu: %s", node ? node->start_mark.line + 1 : 0, what);
}

static yaml_node_t *node_at(loader *ld, int index)
{
    return yaml_document_get_node(&ld->doc, index);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The value of key in a mapping node, or NULL. */
static yaml_node_t *map_get(loader *ld, const yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(node_at(ld, p->key));
        if (k && strcmp(k, key) == 0)
            return node_at(ld, p->value);
    }
    return NULL;
}

static char **string_list(loader *ld, const yaml_node_t *n)
{
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        fail(ld, n, "expected a list of texts");
        return NULL;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **items = vn_alloc((count + 1) * sizeof *items);
    size_t k = 0;
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        const char *s = scalar(node_at(ld, *i));
        if (!s) {
            fail(ld, node_at(ld, *i), "expected a text");
            continue;
        }
        items[k++] = vn_strdup(s);
    }
    return items;
}

static void free_strings(char **items)
{
    for (size_t i = 0; items && items[i]; i++)
        free(items[i]);
    free(items);
}

/* {lang: text, ...} */
static void load_text(loader *ld, const yaml_node_t *n, kb_text *out, bool required,
                      const char *what)
{
    if (!n) {
        if (required)
            fail(ld, NULL, what);
        return;
    }
    if (n->type != YAML_MAPPING_NODE) {
        fail(ld, n, "expected texts by language, e.g. {en: ..., ru: ...}");
        return;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *lang = scalar(node_at(ld, p->key)), *text = scalar(node_at(ld, p->value));
        if (!lang || !text) {
            fail(ld, node_at(ld, p->value), "expected a text");
            continue;
        }
        out->langs = vn_realloc(out->langs, (out->n + 1) * sizeof *out->langs);
        out->texts = vn_realloc(out->texts, (out->n + 1) * sizeof *out->texts);
        out->langs[out->n] = vn_strdup(lang);
        out->texts[out->n++] = vn_strdup(text);
    }
}

/* {lang: [item, ...], ...} */
static void load_list(loader *ld, const yaml_node_t *n, kb_list *out)
{
    if (!n)
        return;
    if (n->type != YAML_MAPPING_NODE) {
        fail(ld, n, "expected lists by language, e.g. {en: [...], ru: [...]}");
        return;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *lang = scalar(node_at(ld, p->key));
        char **items = string_list(ld, node_at(ld, p->value));
        if (!lang || !items) {
            free_strings(items);
            continue;
        }
        out->langs = vn_realloc(out->langs, (out->n + 1) * sizeof *out->langs);
        out->items = vn_realloc(out->items, (out->n + 1) * sizeof *out->items);
        out->langs[out->n] = vn_strdup(lang);
        out->items[out->n++] = items;
    }
}

static void free_text(kb_text *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->langs[i]);
        free(t->texts[i]);
    }
    free(t->langs);
    free(t->texts);
}

static void free_list(kb_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->langs[i]);
        free_strings(l->items[i]);
    }
    free(l->langs);
    free(l->items);
}

static void load_entry(loader *ld, const yaml_node_t *n, kb_entry *e)
{
    const char *id = scalar(map_get(ld, n, "id"));
    if (!id) {
        fail(ld, n, "every service needs an id");
        return;
    }
    e->id = vn_strdup(id);
    load_text(ld, map_get(ld, n, "title"), &e->title, true, "every service needs a title");
    load_list(ld, map_get(ld, n, "keywords"), &e->keywords);
    if (e->keywords.n == 0)
        fail(ld, n, "every service needs keywords");
    load_list(ld, map_get(ld, n, "requirements"), &e->requirements);
    load_list(ld, map_get(ld, n, "steps"), &e->steps);
    load_text(ld, map_get(ld, n, "result"), &e->result, false, NULL);
    const yaml_node_t *docs = map_get(ld, n, "documents");
    if (!docs)
        return;
    if (docs->type != YAML_SEQUENCE_NODE) {
        fail(ld, docs, "documents is a list");
        return;
    }
    for (yaml_node_item_t *i = docs->data.sequence.items.start; i < docs->data.sequence.items.top;
         i++) {
        const yaml_node_t *d = node_at(ld, *i);
        const char *type = scalar(map_get(ld, d, "type"));
        if (!type) {
            fail(ld, d, "a document needs a type");
            continue;
        }
        e->documents = vn_realloc(e->documents, (e->n_documents + 1) * sizeof *e->documents);
        kb_document *doc = &e->documents[e->n_documents++];
        memset(doc, 0, sizeof *doc);
        doc->type = vn_strdup(type);
        doc->claims = string_list(ld, map_get(ld, d, "claims"));
        load_text(ld, map_get(ld, d, "purpose"), &doc->purpose, true, "a document needs a purpose");
    }
}

static void free_entry(kb_entry *e)
{
    free(e->id);
    free_text(&e->title);
    free_list(&e->keywords);
    free_list(&e->requirements);
    free_list(&e->steps);
    free_text(&e->result);
    for (size_t i = 0; i < e->n_documents; i++) {
        free(e->documents[i].type);
        free_strings(e->documents[i].claims);
        free_text(&e->documents[i].purpose);
    }
    free(e->documents);
}

void kb_free(kb *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        free_entry(&k->entries[i]);
    free(k->entries);
    free(k);
}

kb *kb_load(const char *path, char **error)
{
    loader ld = {.error = NULL};
    yaml_parser_t parser;
    FILE *f = fopen(path, "rb");

    *error = NULL;
    if (!f) {
        *error = vn_asprintf("cannot open it");
        return NULL;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &ld.doc)) {
        *error = vn_asprintf("line %zu: %s", parser.problem_mark.line + 1,
                             parser.problem ? parser.problem : "not YAML");
        yaml_parser_delete(&parser);
        fclose(f);
        return NULL;
    }
    yaml_parser_delete(&parser);
    fclose(f);

    kb *k = vn_alloc(sizeof *k);
    const yaml_node_t *list = map_get(&ld, yaml_document_get_root_node(&ld.doc), "services");
    if (!list || list->type != YAML_SEQUENCE_NODE) {
        fail(&ld, yaml_document_get_root_node(&ld.doc), "expected a list under 'services'");
    } else {
        for (yaml_node_item_t *i = list->data.sequence.items.start;
             i < list->data.sequence.items.top && !ld.error; i++) {
            k->entries = vn_realloc(k->entries, (k->n + 1) * sizeof *k->entries);
            memset(&k->entries[k->n], 0, sizeof *k->entries);
            load_entry(&ld, node_at(&ld, *i), &k->entries[k->n++]);
        }
    }
    yaml_document_delete(&ld.doc);
    if (ld.error) {
        kb_free(k);
        *error = ld.error;
        return NULL;
    }
    return k;
}

/* The index of lang in langs: exact, then the primary subtag ("ru-RU" ->
 * "ru"), then English, then 0; -1 if there is nothing. */
static long pick(char *const *langs, size_t n, const char *lang)
{
    if (n == 0)
        return -1;
    size_t primary = lang ? strcspn(lang, "-_") : 0;
    for (size_t i = 0; lang && i < n; i++)
        if (strcmp(langs[i], lang) == 0)
            return (long)i;
    for (size_t i = 0; lang && i < n; i++)
        if (strlen(langs[i]) == primary && strncmp(langs[i], lang, primary) == 0)
            return (long)i;
    for (size_t i = 0; i < n; i++)
        if (strcmp(langs[i], "en") == 0)
            return (long)i;
    return 0;
}

const char *kb_text_in(const kb_text *t, const char *lang)
{
    long i = pick(t->langs, t->n, lang);
    return i < 0 ? "" : t->texts[i];
}

char *const *kb_list_in(const kb_list *l, const char *lang)
{
    long i = pick(l->langs, l->n, lang);
    return i < 0 ? NULL : l->items[i];
}
