/*
 * pep_caps_ver.c - the XEP-0115 §5.1 verification string of a disco#info
 * answer and its sha-1 ver, with the §5.4 checks that make an answer
 * unfit for a cache shared by ver.
 *
 * Its own file because the order is easy to get wrong: every list is
 * sorted on its values (identities by category, type, xml:lang, then name;
 * features by var; forms by FORM_TYPE, a form's fields by var, a field's
 * values by value) BEFORE the '<' separators go in. Sorting
 * "vcard-temp:x:update<" against "vcard-temp<" puts them the wrong way
 * round, which is how the caps of most real clients failed to verify.
 * Strings compare as octets (i;octet). tests/unit/test_caps.c checks this
 * against XEP-0115's own examples and real clients' answers.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "pep.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"

static const char *attr_or_empty(const vn_stanza *e, const char *name)
{
    const char *value = vn_stanza_attr(e, name);
    return value ? value : "";
}

static int string_order(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void append_item(vn_buf *s, const char *item)
{
    vn_buf_append_str(s, item);
    vn_buf_append_str(s, "<");
}

/* ---- identities and features ---- */

typedef struct identity {
    const char *category, *type, *lang, *name;
} identity;

static int identity_order(const void *a, const void *b)
{
    const identity *x = a, *y = b;
    int c = strcmp(x->category, y->category);
    if (!c)
        c = strcmp(x->type, y->type);
    if (!c)
        c = strcmp(x->lang, y->lang);
    return c ? c : strcmp(x->name, y->name);
}

/* ---- forms (XEP-0128) ---- */

typedef struct form_field {
    const char *var;
    const char **values;
    size_t n_values;
} form_field;

typedef struct form {
    const char *form_type;
    form_field *fields;
    size_t n_fields;
} form;

static int field_order(const void *a, const void *b)
{
    return strcmp(((const form_field *)a)->var, ((const form_field *)b)->var);
}

static int form_order(const void *a, const void *b)
{
    return strcmp(((const form *)a)->form_type, ((const form *)b)->form_type);
}

static void form_free(form *f)
{
    for (size_t i = 0; i < f->n_fields; i++)
        free(f->fields[i].values);
    free(f->fields);
}

/* The <value/> texts of a field, in document order. */
static const char **field_values(const vn_stanza *field, size_t *count)
{
    const char **values = NULL;

    *count = 0;
    for (const vn_stanza *v = vn_stanza_first_element(field); v; v = vn_stanza_next_element(v)) {
        if (!vn_stanza_is(v, "value", NS_DATA_FORMS))
            continue;
        values = vn_realloc(values, (*count + 1) * sizeof *values);
        values[(*count)++] = vn_stanza_text(v);
    }
    return values;
}

/* Reads x into *out. False: the whole answer is invalid (a FORM_TYPE with
 * differing values, §5.4 3.4). A form without a hidden FORM_TYPE is left
 * out of the string (out->form_type NULL, §5.4 3.5). */
static bool read_form(const vn_stanza *x, form *out)
{
    *out = (form){NULL, NULL, 0};
    for (const vn_stanza *f = vn_stanza_first_element(x); f; f = vn_stanza_next_element(f)) {
        if (!vn_stanza_is(f, "field", NS_DATA_FORMS))
            continue;
        size_t n;
        const char **values = field_values(f, &n);
        const char *var = attr_or_empty(f, "var");
        if (strcmp(var, "FORM_TYPE") != 0) {
            out->fields = vn_realloc(out->fields, (out->n_fields + 1) * sizeof *out->fields);
            out->fields[out->n_fields++] = (form_field){var, values, n};
            continue;
        }
        for (size_t i = 1; i < n; i++) {
            if (strcmp(values[i], values[0]) != 0) {
                free(values);
                form_free(out);
                return false;
            }
        }
        if (n && strcmp(attr_or_empty(f, "type"), "hidden") == 0)
            out->form_type = values[0];
        free(values);
    }
    if (!out->form_type) {
        form_free(out);
        *out = (form){NULL, NULL, 0};
    }
    return true;
}

static void append_form(vn_buf *s, form *f)
{
    append_item(s, f->form_type);
    if (f->n_fields > 1)
        qsort(f->fields, f->n_fields, sizeof *f->fields, field_order);
    for (size_t i = 0; i < f->n_fields; i++) {
        form_field *field = &f->fields[i];
        append_item(s, field->var);
        if (field->n_values > 1)
            qsort(field->values, field->n_values, sizeof *field->values, string_order);
        for (size_t j = 0; j < field->n_values; j++)
            append_item(s, field->values[j]);
    }
}

/* ---- the string ---- */

typedef struct answer {
    identity *identities;
    size_t n_identities;
    const char **features;
    size_t n_features;
    form *forms;
    size_t n_forms;
} answer;

static void answer_free(answer *a)
{
    for (size_t i = 0; i < a->n_forms; i++)
        form_free(&a->forms[i]);
    free(a->forms);
    free(a->features);
    free(a->identities);
}

static bool read_answer(const vn_stanza *query, answer *a)
{
    for (const vn_stanza *e = vn_stanza_first_element(query); e; e = vn_stanza_next_element(e)) {
        if (vn_stanza_is(e, "identity", NS_DISCO_INFO)) {
            a->identities =
                vn_realloc(a->identities, (a->n_identities + 1) * sizeof *a->identities);
            a->identities[a->n_identities++] =
                (identity){attr_or_empty(e, "category"), attr_or_empty(e, "type"),
                           attr_or_empty(e, "xml:lang"), attr_or_empty(e, "name")};
        } else if (vn_stanza_is(e, "feature", NS_DISCO_INFO)) {
            a->features = vn_realloc(a->features, (a->n_features + 1) * sizeof *a->features);
            a->features[a->n_features++] = attr_or_empty(e, "var");
        } else if (vn_stanza_is(e, "x", NS_DATA_FORMS)) {
            form f;
            if (!read_form(e, &f))
                return false;
            if (!f.form_type)
                continue;
            a->forms = vn_realloc(a->forms, (a->n_forms + 1) * sizeof *a->forms);
            a->forms[a->n_forms++] = f;
        }
    }
    return true;
}

/* Sorted, with no two entries alike (§5.4 3.1 to 3.3). */
static bool sort_answer(answer *a)
{
    if (a->n_identities > 1)
        qsort(a->identities, a->n_identities, sizeof *a->identities, identity_order);
    if (a->n_features > 1)
        qsort(a->features, a->n_features, sizeof *a->features, string_order);
    if (a->n_forms > 1)
        qsort(a->forms, a->n_forms, sizeof *a->forms, form_order);
    for (size_t i = 1; i < a->n_identities; i++)
        if (identity_order(&a->identities[i - 1], &a->identities[i]) == 0)
            return false;
    for (size_t i = 1; i < a->n_features; i++)
        if (strcmp(a->features[i - 1], a->features[i]) == 0)
            return false;
    for (size_t i = 1; i < a->n_forms; i++)
        if (form_order(&a->forms[i - 1], &a->forms[i]) == 0)
            return false;
    return true;
}

char *pep_caps_ver_string(const vn_stanza *query)
{
    answer a = {0};
    vn_buf s;

    if (!read_answer(query, &a) || !sort_answer(&a)) {
        answer_free(&a);
        return NULL;
    }
    vn_buf_init(&s);
    for (size_t i = 0; i < a.n_identities; i++) {
        const identity *id = &a.identities[i];
        vn_buf_printf(&s, "%s/%s/%s/%s<", id->category, id->type, id->lang, id->name);
    }
    for (size_t i = 0; i < a.n_features; i++)
        append_item(&s, a.features[i]);
    for (size_t i = 0; i < a.n_forms; i++)
        append_form(&s, &a.forms[i]);
    answer_free(&a);
    return vn_buf_steal(&s, NULL);
}

bool pep_caps_sha1_ver(const vn_stanza *query, char ver[PEP_CAPS_SHA1_VER_SIZE])
{
    char *s = pep_caps_ver_string(query);
    unsigned char digest[SHA_DIGEST_LENGTH];

    if (!s)
        return false;
    SHA1((const unsigned char *)s, strlen(s), digest);
    EVP_EncodeBlock((unsigned char *)ver, digest, sizeof digest);
    free(s);
    return true;
}
