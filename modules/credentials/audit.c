/*
 * audit.c - the per-account log of everything done with its documents:
 * issuances, revocations, deletions, requests, disclosures, refusals,
 * signatures and in-person showings (xeps/documents.md §14).
 *
 * An archive of the account ("credentials_audit"), one JSON item per event
 * with the other party as the item's "with", so it goes with the account
 * and only the account reads it: as "History" (everything) and "Who saw
 * what" (what was disclosed, to whom, why). It keeps the newest
 * max_audit_entries.
 */
#include <stdlib.h>
#include <string.h>
#include <vestnik/i18n.h>

#include "mod_credentials.h"

#define AUDIT_ARCHIVE "credentials_audit"

static bool last_id(const vn_archive_item *it, void *ud)
{
    *(uint64_t *)ud = it->id;
    return true;
}

/* Beyond max_audit_entries, the oldest entries go. */
static void trim(const char *host, const char *user)
{
    vn_store *s = vn_server_store();
    size_t count = 0;
    if (vn_archive_count(s, host, user, AUDIT_ARCHIVE, NULL, &count) != VN_STORE_OK ||
        count <= cred.limits.max_audit)
        return;
    vn_archive_query q = {.limit = count - cred.limits.max_audit};
    uint64_t cut = 0;
    if (vn_archive_query_items(s, host, user, AUDIT_ARCHIVE, &q, last_id, &cut, NULL) ==
            VN_STORE_OK &&
        cut)
        vn_archive_delete_before(s, host, user, AUDIT_ARCHIVE, (int64_t)cut + 1);
}

void audit_log(const char *host, const char *user, const char *event, const char *with,
               json_t *detail)
{
    json_t *item = detail ? detail : json_object();
    json_object_set_new(item, "event", json_string(event));
    char *text = json_dumps(item, JSON_COMPACT);
    if (vn_archive_append(vn_server_store(), host, user, AUDIT_ARCHIVE, 0, with ? with : "", text,
                          strlen(text), NULL) != VN_STORE_OK)
        vn_log_error("credentials: cannot write the audit log of %s@%s", user, host);
    else
        trim(host, user);
    free(text);
    json_decref(item);
}

typedef struct audit_reader {
    vn_buf out;
    const char *lang;
    bool who_saw;
    size_t left;
} audit_reader;

static void append_claims(vn_buf *out, const json_t *claims, const char *lang)
{
    size_t i;
    const json_t *c;
    json_array_foreach(claims, i, c)
    {
        vn_buf_printf(out, "%s%s", i ? ", " : "",
                      vn_tr(lang, cred_claim_label(json_string_value(c))));
    }
}

static bool read_item(const vn_archive_item *it, void *ud)
{
    audit_reader *r = ud;
    json_t *e = json_loadb(it->data, it->len, 0, NULL);
    const char *event = json_string_value(json_object_get(e, "event"));
    if (!event || (r->who_saw && strcmp(event, "disclosed") != 0 && strcmp(event, "shown") != 0)) {
        json_decref(e);
        return true;
    }
    const char *lang = r->lang;
    char when[VN_DATETIME_SIZE];
    vn_datetime_format(it->ts_us, when);
    when[16] = '\0'; /* to the minute: 2026-12-04T21:50 */
    when[10] = ' ';
    const cred_type *t = cred_type_find(json_string_value(json_object_get(e, "type")));
    const char *type = t ? vn_tr(lang, t->label) : "";
    const char *purpose = json_string_value(json_object_get(e, "purpose"));
    const char *title = json_string_value(json_object_get(e, "title"));
    vn_buf *out = &r->out;
    vn_buf_printf(out, "%s UTC  ", when);
    if (strcmp(event, "issued") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("%s issued you: %s")), it->with, type);
    } else if (strcmp(event, "revoked") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("%s revoked: %s")), it->with, type);
    } else if (strcmp(event, "suspended") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("%s suspended: %s")), it->with, type);
    } else if (strcmp(event, "reinstated") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("%s made valid again: %s")), it->with, type);
    } else if (strcmp(event, "deleted") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("You deleted: %s")), type);
    } else if (strcmp(event, "requested") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("%s asked for: ")), it->with);
        append_claims(out, json_object_get(e, "claims"), lang);
        vn_buf_printf(out, vn_tr(lang, N_(". Purpose: %s")), purpose ? purpose : "");
    } else if (strcmp(event, "disclosed") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("%s saw from your %s: ")), it->with, type);
        append_claims(out, json_object_get(e, "claims"), lang);
        vn_buf_printf(out, vn_tr(lang, N_(". Purpose: %s")), purpose ? purpose : "");
    } else if (strcmp(event, "shown") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("Shown in person from your %s: ")), type);
        append_claims(out, json_object_get(e, "claims"), lang);
    } else if (strcmp(event, "declined") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("You shared nothing with %s")), it->with);
    } else if (strcmp(event, "signed") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("You signed \"%s\" for %s")), title ? title : "",
                      it->with);
    } else if (strcmp(event, "refused") == 0) {
        vn_buf_printf(out, vn_tr(lang, N_("You did not sign \"%s\" for %s")), title ? title : "",
                      it->with);
    } else {
        vn_buf_append_str(out, event);
    }
    vn_buf_append_str(out, "\n");
    json_decref(e);
    return --r->left > 0;
}

char *audit_text(const char *host, const char *user, bool who_saw, size_t limit, const char *lang)
{
    audit_reader r = {.lang = lang, .who_saw = who_saw, .left = limit ? limit : 1};
    vn_buf_init(&r.out);
    vn_archive_query q = {.reverse = true};
    vn_archive_query_items(vn_server_store(), host, user, AUDIT_ARCHIVE, &q, read_item, &r, NULL);
    if (r.out.len && r.out.data[r.out.len - 1] == '\n')
        r.out.data[--r.out.len] = '\0';
    char *text = vn_buf_steal(&r.out, NULL);
    return text ? text : vn_strdup("");
}
