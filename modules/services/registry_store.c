/*
 * registry_store.c - the service registry's records in the store (the
 * layout is in registry_store.h), for mod_services and vestnikctl alike.
 */
#include "registry_store.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vestnik/module.h>
#include <vestnik/stanza.h>
#include <vestnik/util.h>

/* The profile's fields: element name, longest value, required. */
typedef struct profile_field {
    const char *name;
    size_t offset;
    size_t max_len;
    bool required;
} profile_field;

#define FIELD(n, member, max, req)                                                                 \
    {                                                                                              \
        n, offsetof(service_record, member), max, req                                              \
    }
static const profile_field fields[] = {
    FIELD("name", name, 128, true),
    FIELD("description", description, 2048, false),
    FIELD("category", category, 64, true),
    FIELD("avatar", avatar, 2048, false),
    FIELD("operator", operator_name, 256, false),
    FIELD("privacy", privacy, 2048, false),
};
#define FIELD_COUNT (sizeof fields / sizeof fields[0])

static char **field_ptr(service_record *r, size_t i)
{
    return (char **)((char *)r + fields[i].offset);
}

static const char *field_value(const service_record *r, size_t i)
{
    return *(char *const *)((const char *)r + fields[i].offset);
}

void service_record_free(service_record *r)
{
    free(r->jid);
    for (size_t i = 0; i < FIELD_COUNT; i++)
        free(*field_ptr(r, i));
    memset(r, 0, sizeof *r);
}

static uint64_t attr_u64(const vn_stanza *el, const char *name)
{
    const char *v = vn_stanza_attr(el, name);
    return v ? strtoull(v, NULL, 10) : 0;
}

static bool attr_true(const vn_stanza *el, const char *name)
{
    const char *v = vn_stanza_attr(el, name);
    return v && strcmp(v, "true") == 0;
}

static void from_element(service_record *r, const vn_stanza *el)
{
    r->jid = vn_strdup(vn_stanza_attr(el, "jid"));
    r->verified = attr_true(el, "verified");
    r->suspended = attr_true(el, "suspended");
    r->sent = attr_u64(el, "sent");
    r->received = attr_u64(el, "received");
    r->refused = attr_u64(el, "refused");
    r->broadcasts = attr_u64(el, "broadcasts");
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const vn_stanza *child = vn_stanza_child(el, fields[i].name, NS_SERVICES);
        if (child)
            *field_ptr(r, i) = vn_strdup(vn_stanza_text(child));
    }
}

int service_record_get(vn_store *s, const char *host, const char *jid, service_record *r)
{
    vn_buf value;
    vn_buf_init(&value);
    memset(r, 0, sizeof *r);
    int rc = vn_store_get(s, host, "", REGISTRY_STORE, jid, &value);
    if (rc == VN_STORE_OK) {
        vn_stanza *el = vn_stanza_parse(value.data, value.len);
        if (el && vn_stanza_attr(el, "jid"))
            from_element(r, el);
        else
            rc = VN_STORE_ERROR;
        vn_stanza_free(el);
    }
    vn_buf_free(&value);
    return rc;
}

void service_record_add_profile(const service_record *r, vn_stanza *el)
{
    for (size_t i = 0; i < FIELD_COUNT; i++)
        if (field_value(r, i))
            vn_stanza_add_text_child(el, fields[i].name, NS_SERVICES, field_value(r, i));
}

int service_record_put(vn_store *s, const char *host, const service_record *r)
{
    vn_stanza *el = vn_stanza_new("service", NS_SERVICES);
    char num[24];

    vn_stanza_set_attr(el, "jid", r->jid);
    vn_stanza_set_attr(el, "verified", r->verified ? "true" : "false");
    vn_stanza_set_attr(el, "suspended", r->suspended ? "true" : "false");
    const struct {
        const char *name;
        uint64_t value;
    } counters[] = {{"sent", r->sent},
                    {"received", r->received},
                    {"refused", r->refused},
                    {"broadcasts", r->broadcasts}};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        snprintf(num, sizeof num, "%" PRIu64, counters[i].value);
        vn_stanza_set_attr(el, counters[i].name, num);
    }
    service_record_add_profile(r, el);
    size_t len;
    char *xml = vn_stanza_serialize(el, NULL, &len);
    int rc = vn_store_put(s, host, "", REGISTRY_STORE, r->jid, xml, len);
    free(xml);
    vn_stanza_free(el);
    return rc;
}

bool service_record_set_profile(service_record *r, const vn_stanza *profile)
{
    const char *values[FIELD_COUNT];

    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const vn_stanza *child = vn_stanza_child(profile, fields[i].name, NS_SERVICES);
        values[i] = child ? vn_stanza_text(child) : NULL;
        if (values[i] && !*values[i])
            values[i] = NULL;
        if ((fields[i].required && !values[i]) ||
            (values[i] && strlen(values[i]) > fields[i].max_len))
            return false;
    }
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        free(*field_ptr(r, i));
        *field_ptr(r, i) = vn_strdup(values[i]);
    }
    return true;
}

typedef struct foreach_ctx {
    service_record_cb cb;
    void *ud;
} foreach_ctx;

static bool each_record(const char *key, const void *value, size_t len, void *ud)
{
    foreach_ctx *ctx = ud;
    vn_stanza *el = vn_stanza_parse(value, len);
    bool go_on = true;

    if (el && vn_stanza_attr(el, "jid")) {
        service_record r = {0};
        from_element(&r, el);
        go_on = ctx->cb(&r, ctx->ud);
        service_record_free(&r);
    }
    vn_stanza_free(el);
    return go_on;
}

int service_record_foreach(vn_store *s, const char *host, service_record_cb cb, void *ud)
{
    foreach_ctx ctx = {cb, ud};
    return vn_store_foreach(s, host, "", REGISTRY_STORE, each_record, &ctx);
}

static bool log_line(const vn_archive_item *item, void *ud)
{
    char when[VN_DATETIME_SIZE];
    vn_datetime_format(item->ts_us, when);
    vn_buf_printf(ud, "%s\t%s\t%.*s\n", when, item->with, (int)item->len, (const char *)item->data);
    return true;
}

int service_log_lines(vn_store *s, const char *host, const char *jid, size_t limit, vn_buf *out)
{
    char *archive = vn_asprintf(AUDIT_ARCHIVE_PREFIX "%s", jid);
    vn_archive_query q = {.limit = limit, .reverse = true};
    int rc = vn_archive_query_items(s, host, "", archive, &q, log_line, out, NULL);
    free(archive);
    return rc == VN_STORE_OK ? VN_STORE_OK : VN_STORE_ERROR;
}
