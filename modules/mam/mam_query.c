/*
 * mam_query.c - one Message Archive Management query (XEP-0313 §4): the
 * data form and Result Set Management (XEP-0059) paging read from the
 * <query/>, the archive read through the store's archive interface, and
 * the result messages and <fin/> built from the page.
 *
 * Archive ids are the store's item ids, written in decimal. A page is one
 * range read of the store: forward from <after/> (or the start), or, for
 * <before/>, backward from there (or from the end) and put back in
 * chronological order unless the client asked for <flip-page/>.
 */
#include "mam_query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vestnik/i18n.h>

#define NS_DATA "jabber:x:data"
#define NS_RSM "http://jabber.org/protocol/rsm"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_DELAY "urn:xmpp:delay"

/* An id that is not a decimal number was never issued by the store; it
 * stands as UINT64_MAX, which no item has, so it is "not found". */
#define UNKNOWN_ID UINT64_MAX

/* ---- parsing ---- */

static uint64_t parse_id(const char *text)
{
    char *end;

    if (!text || text[0] < '0' || text[0] > '9')
        return UNKNOWN_ID;
    errno = 0;
    unsigned long long id = strtoull(text, &end, 10);
    if (errno || *end || id == 0)
        return UNKNOWN_ID;
    return (uint64_t)id;
}

static int compare_ids(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const char *parse_ids_field(const vn_stanza *field, mam_query *q, const char **text)
{
    for (const vn_stanza *value = vn_stanza_first_element(field); value;
         value = vn_stanza_next_element(value)) {
        if (!vn_stanza_is(value, "value", NS_DATA))
            continue;
        if (q->n_ids == MAM_MAX_IDS) {
            *text = N_("Too many ids");
            return "bad-request";
        }
        q->ids = vn_realloc(q->ids, (q->n_ids + 1) * sizeof *q->ids);
        q->ids[q->n_ids++] = parse_id(vn_stanza_text(value));
    }
    if (q->n_ids == 0) {
        *text = N_("The ids field has no value");
        return "bad-request";
    }
    qsort(q->ids, q->n_ids, sizeof *q->ids, compare_ids);
    size_t unique = 1;
    for (size_t i = 1; i < q->n_ids; i++)
        if (q->ids[i] != q->ids[unique - 1])
            q->ids[unique++] = q->ids[i];
    q->n_ids = unique;
    return NULL;
}

/* One field of the submitted form (XEP-0313 §4.1, §4.1.1 extended). */
static const char *parse_field(const vn_stanza *field, mam_query *q, const char **text)
{
    const char *var = vn_stanza_attr(field, "var");
    const char *value = vn_stanza_child_text(field, "value", NS_DATA);
    int64_t when;

    if (!var) {
        *text = N_("A form field has no var");
        return "bad-request";
    }
    if (strcmp(var, "ids") == 0)
        return parse_ids_field(field, q, text);
    if (!value) {
        *text = N_("A form field has no value");
        return "bad-request";
    }
    if (strcmp(var, "FORM_TYPE") == 0) {
        if (strcmp(value, MAM_NS) == 0)
            return NULL;
        *text = N_("FORM_TYPE is not urn:xmpp:mam:2");
    } else if (strcmp(var, "with") == 0) {
        free(q->with);
        q->with = vn_jid_normalize(value);
        if (q->with)
            return NULL;
        *text = N_("The with field is not a JID");
    } else if (strcmp(var, "start") == 0) {
        /* Every archived stamp is after the epoch: a start at or before it
         * (Dino asks for 1970-01-01T00:00:00Z) bounds nothing. */
        if (vn_datetime_parse(value, &when)) {
            q->start_us = when > 0 ? when : 0;
            return NULL;
        }
        *text = N_("The start field is not a DateTime");
    } else if (strcmp(var, "end") == 0) {
        /* ...and an end at or before it leaves nothing. */
        if (vn_datetime_parse(value, &when)) {
            q->end_us = when > 0 ? when : 0;
            q->before_epoch = when <= 0;
            return NULL;
        }
        *text = N_("The end field is not a DateTime");
    } else if (strcmp(var, "after-id") == 0) {
        q->form_after = parse_id(value);
        return NULL;
    } else if (strcmp(var, "before-id") == 0) {
        q->form_before = parse_id(value);
        return NULL;
    } else {
        *text = N_("Unknown form field");
    }
    return "bad-request";
}

static const char *parse_form(const vn_stanza *form, mam_query *q, const char **text)
{
    const char *type = vn_stanza_attr(form, "type");

    if (type && strcmp(type, "submit") != 0) {
        *text = N_("The form is not of type submit");
        return "bad-request";
    }
    for (const vn_stanza *field = vn_stanza_first_element(form); field;
         field = vn_stanza_next_element(field)) {
        if (!vn_stanza_is(field, "field", NS_DATA))
            continue;
        const char *condition = parse_field(field, q, text);
        if (condition)
            return condition;
    }
    return NULL;
}

/* XEP-0059: <max/>, <after/>, <before/> (empty: the last page). */
static const char *parse_rsm(const vn_stanza *set, size_t max_page, mam_query *q, const char **text)
{
    const char *max = vn_stanza_child_text(set, "max", NS_RSM);
    const vn_stanza *after = vn_stanza_child(set, "after", NS_RSM);
    const vn_stanza *before = vn_stanza_child(set, "before", NS_RSM);

    if (max) {
        char *end;
        errno = 0;
        long long wanted = strtoll(max, &end, 10);
        if (errno || end == max || *end || wanted < 0) {
            *text = N_("RSM max is not a non-negative integer");
            return "bad-request";
        }
        q->max = (unsigned long long)wanted < max_page ? (size_t)wanted : max_page;
    }
    if (after)
        q->rsm_after = parse_id(vn_stanza_text(after));
    if (before) {
        q->backward = true;
        if (vn_stanza_text(before)[0])
            q->rsm_before = parse_id(vn_stanza_text(before));
    }
    return NULL;
}

const char *mam_query_parse(const vn_stanza *query, size_t max_page, mam_query *q,
                            const char **text)
{
    memset(q, 0, sizeof *q);
    q->max = MAM_DEFAULT_PAGE < max_page ? MAM_DEFAULT_PAGE : max_page;
    q->queryid = vn_strdup(vn_stanza_attr(query, "queryid"));
    q->flip = vn_stanza_child(query, "flip-page", MAM_NS) != NULL;

    const vn_stanza *form = vn_stanza_child(query, "x", NS_DATA);
    const char *condition = form ? parse_form(form, q, text) : NULL;
    const vn_stanza *set = vn_stanza_child(query, "set", NS_RSM);
    if (!condition && set)
        condition = parse_rsm(set, max_page, q, text);
    return condition;
}

void mam_query_free(mam_query *q)
{
    free(q->queryid);
    free(q->with);
    free(q->ids);
    memset(q, 0, sizeof *q);
}

/* ---- running ---- */

static uint64_t later_bound(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static uint64_t earlier_bound(uint64_t a, uint64_t b)
{
    if (!a || !b)
        return a ? a : b;
    return a < b ? a : b;
}

static bool collect_result(const vn_archive_item *item, void *ud)
{
    mam_page *page = ud;
    vn_stanza *msg = vn_stanza_parse(item->data, item->len);

    if (msg && !vn_stanza_is(msg, "message", VN_NS_CLIENT)) {
        vn_stanza_free(msg);
        msg = NULL;
    }
    if (!msg)
        vn_log_warn("mam: archived item %llu does not parse", (unsigned long long)item->id);
    page->items = vn_realloc(page->items, (page->count + 1) * sizeof *page->items);
    page->items[page->count++] = (mam_result){item->id, item->ts_us, msg};
    return true;
}

/* The one item with this id matching filter: appended to page. */
static int read_one(vn_store *s, const char *host, const char *user, const vn_archive_query *filter,
                    uint64_t id, mam_page *page)
{
    if (id == UNKNOWN_ID || id <= filter->after_id ||
        (filter->before_id && id >= filter->before_id))
        return VN_STORE_OK;
    vn_archive_query point = *filter;
    point.after_id = id - 1;
    point.before_id = id + 1;
    point.limit = 1;
    point.reverse = false;
    return vn_archive_query_items(s, host, user, MAM_ARCHIVE, &point, collect_result, page, NULL);
}

static bool id_exists(vn_store *s, const char *host, const char *user, uint64_t id, int *rc)
{
    mam_page found = {0};

    *rc = VN_STORE_OK;
    if (id == UNKNOWN_ID)
        return false;
    vn_archive_query point = {.after_id = id - 1, .before_id = id + 1, .limit = 1};
    *rc = vn_archive_query_items(s, host, user, MAM_ARCHIVE, &point, collect_result, &found, NULL);
    bool exists = found.count == 1;
    mam_page_free(&found);
    return exists;
}

static void reverse_items(mam_page *page)
{
    for (size_t i = 0, j = page->count; i + 1 < j; i++, j--) {
        mam_result swap = page->items[i];
        page->items[i] = page->items[j - 1];
        page->items[j - 1] = swap;
    }
}

/* The 'ids' filter: read each named item, then page over them in memory. */
static int run_ids(vn_store *s, const char *host, const char *user, const mam_query *q,
                   const vn_archive_query *filter, mam_page *page)
{
    mam_page matched = {0};

    for (size_t i = 0; i < q->n_ids; i++) {
        int rc = read_one(s, host, user, filter, q->ids[i], &matched);
        if (rc != VN_STORE_OK) {
            mam_page_free(&matched);
            return rc;
        }
    }
    size_t lo = 0, hi = matched.count;
    while (lo < hi && q->rsm_after && matched.items[lo].id <= q->rsm_after)
        lo++;
    while (hi > lo && q->rsm_before && matched.items[hi - 1].id >= q->rsm_before)
        hi--;
    size_t take = hi - lo < q->max ? hi - lo : q->max;
    size_t first = q->backward ? hi - take : lo;

    page->total = matched.count;
    page->has_total = true;
    page->complete = q->backward ? first == lo : first + take == hi;
    page->items = vn_alloc((take ? take : 1) * sizeof *page->items);
    for (size_t i = 0; i < matched.count; i++) {
        if (i >= first && i < first + take)
            page->items[page->count++] = matched.items[i];
        else
            vn_stanza_free(matched.items[i].message);
    }
    free(matched.items);
    if (q->flip)
        reverse_items(page);
    return VN_STORE_OK;
}

int mam_query_run(vn_store *s, const char *host, const char *user, const mam_query *q,
                  mam_page *page)
{
    const uint64_t named[] = {q->form_after, q->form_before, q->rsm_after, q->rsm_before};
    int rc = VN_STORE_OK;

    memset(page, 0, sizeof *page);
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (named[i] && !id_exists(s, host, user, named[i], &rc))
            return rc == VN_STORE_OK ? VN_STORE_NOT_FOUND : rc;
    if (q->before_epoch) { /* the store has no way to say "ends before 1970" */
        page->has_total = page->complete = true;
        return VN_STORE_OK;
    }

    vn_archive_query filter = {.with = q->with,
                               .start_us = q->start_us,
                               .end_us = q->end_us,
                               .after_id = q->form_after,
                               .before_id = q->form_before};
    if (q->n_ids)
        return run_ids(s, host, user, q, &filter, page);

    bool filtered = q->with || q->start_us || q->end_us || q->form_after || q->form_before;
    if (!filtered) {
        rc = vn_archive_count(s, host, user, MAM_ARCHIVE, NULL, &page->total);
        if (rc != VN_STORE_OK)
            return rc;
        page->has_total = true;
    }
    if (q->max == 0) { /* XEP-0059 §2.6: the client asks for the count only */
        if (!page->has_total)
            rc = vn_archive_count(s, host, user, MAM_ARCHIVE, &filter, &page->total);
        page->has_total = rc == VN_STORE_OK;
        page->complete = page->total == 0;
        return rc;
    }
    vn_archive_query range = filter;
    range.after_id = later_bound(q->form_after, q->rsm_after);
    range.before_id = earlier_bound(q->form_before, q->rsm_before);
    range.limit = q->max;
    range.reverse = q->backward;
    rc = vn_archive_query_items(s, host, user, MAM_ARCHIVE, &range, collect_result, page,
                                &page->complete);
    if (q->backward != q->flip)
        reverse_items(page);
    if (!page->has_total && page->complete && !q->rsm_after && !q->rsm_before) {
        page->total = page->count;
        page->has_total = true;
    }
    return rc;
}

void mam_page_free(mam_page *page)
{
    for (size_t i = 0; i < page->count; i++)
        vn_stanza_free(page->items[i].message);
    free(page->items);
    memset(page, 0, sizeof *page);
}

/* ---- answering ---- */

vn_stanza *mam_result_message(const mam_query *q, const mam_result *r, const char *archive_jid,
                              const char *to)
{
    char id[24], stamp[VN_DATETIME_SIZE];

    if (!r->message)
        return NULL;
    snprintf(id, sizeof id, "%llu", (unsigned long long)r->id);
    vn_datetime_format(r->ts_us, stamp);

    vn_stanza *msg = vn_stanza_new("message", VN_NS_CLIENT);
    vn_stanza_set_attr(msg, "from", archive_jid);
    vn_stanza_set_attr(msg, "to", to);
    vn_stanza *result = vn_stanza_add_child(msg, "result", MAM_NS);
    if (q->queryid)
        vn_stanza_set_attr(result, "queryid", q->queryid);
    vn_stanza_set_attr(result, "id", id);
    vn_stanza *forwarded = vn_stanza_add_child(result, "forwarded", NS_FORWARD);
    vn_stanza *delay = vn_stanza_add_child(forwarded, "delay", NS_DELAY);
    vn_stanza_set_attr(delay, "stamp", stamp);
    vn_stanza_append(forwarded, vn_stanza_copy(r->message));
    return msg;
}

vn_stanza *mam_fin(const vn_stanza *iq, const mam_page *page)
{
    char number[24];
    vn_stanza *reply = vn_stanza_iq_result(iq);
    vn_stanza *fin = vn_stanza_add_child(reply, "fin", MAM_NS);
    vn_stanza_set_attr(fin, "complete", page->complete ? "true" : "false");
    vn_stanza *set = vn_stanza_add_child(fin, "set", NS_RSM);

    if (page->count) {
        snprintf(number, sizeof number, "%llu", (unsigned long long)page->items[0].id);
        vn_stanza_add_text_child(set, "first", NS_RSM, number);
        snprintf(number, sizeof number, "%llu",
                 (unsigned long long)page->items[page->count - 1].id);
        vn_stanza_add_text_child(set, "last", NS_RSM, number);
    }
    if (page->has_total) {
        snprintf(number, sizeof number, "%zu", page->total);
        vn_stanza_add_text_child(set, "count", NS_RSM, number);
    }
    return reply;
}
