/*
 * history.c - the room's archive and what is served from it.
 *
 * Every groupchat message a room reflects is appended to the room's
 * archive (store archive "muc" under the service domain and the room's
 * localpart); the archive id is the message's stanza-id (XEP-0359). From
 * it come the discussion history a joining occupant gets (XEP-0045 §7.2.14
 * with maxchars/maxstanzas/seconds/since, capped by the room's history
 * length) and MAM queries on the room JID (XEP-0313 with RSM paging).
 * Moderation (XEP-0425, versions 0 and 1) and retraction by the author
 * (XEP-0424) put a tombstone in place of the message: the store has no
 * in-place update, so the tombstone is a document keyed by the archive id
 * ("muc_tombstones") that every read of the archive substitutes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muc.h"

#define ARCHIVE "muc"
#define TOMBSTONES "muc_tombstones"
#define MAM_DEFAULT_PAGE 50
#define MAM_MAX_PAGE 250

void muc_add_delay(vn_stanza *st, const char *from, int64_t ts_us)
{
    char stamp[VN_DATETIME_SIZE];
    vn_datetime_format(ts_us, stamp);
    vn_stanza *delay = vn_stanza_add_child(st, "delay", NS_DELAY);
    vn_stanza_set_attr(delay, "from", from);
    vn_stanza_set_attr(delay, "stamp", stamp);
}

/* ---- the archive ---- */

static vn_store *store(void)
{
    return vn_server_store();
}

bool muc_archive_message(muc_room *room, const vn_stanza *msg, const char *real_bare, uint64_t *id)
{
    size_t len = 0;
    char *xml = vn_stanza_serialize(msg, NULL, &len);
    int rc = vn_archive_append(store(), room->service->domain, room->local, ARCHIVE, 0, real_bare,
                               xml, len, id);
    free(xml);
    if (rc != VN_STORE_OK)
        vn_log_error("muc: cannot archive a message in %s", room->jid->bare);
    return rc == VN_STORE_OK;
}

/* One archived message as it is served: the tombstone if there is one,
 * with the room's stanza-id. NULL if unreadable. */
static vn_stanza *served_message(const muc_room *room, const vn_archive_item *item)
{
    char key[24];
    vn_buf tomb;
    vn_stanza *msg;

    snprintf(key, sizeof key, "%llu", (unsigned long long)item->id);
    vn_buf_init(&tomb);
    if (vn_store_get(store(), room->service->domain, room->local, TOMBSTONES, key, &tomb) ==
        VN_STORE_OK)
        msg = vn_stanza_parse(tomb.data, tomb.len);
    else
        msg = vn_stanza_parse(item->data, item->len);
    vn_buf_free(&tomb);
    if (!msg)
        return NULL;
    vn_stanza *sid = vn_stanza_add_child(msg, "stanza-id", NS_SID);
    vn_stanza_set_attr(sid, "id", key);
    vn_stanza_set_attr(sid, "by", room->jid->bare);
    return msg;
}

typedef struct found_item {
    uint64_t id;
    int64_t ts_us;
    char *with;
    vn_stanza *msg;
} found_item;

typedef struct item_list {
    const muc_room *room;
    found_item *items;
    size_t count;
    size_t max_chars; /* 0: no limit */
    size_t chars;
} item_list;

static void item_list_free(item_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        vn_stanza_free(list->items[i].msg);
        free(list->items[i].with);
    }
    free(list->items);
}

static bool collect(const vn_archive_item *item, void *ud)
{
    item_list *list = ud;
    vn_stanza *msg = served_message(list->room, item);
    if (!msg)
        return true;
    if (list->max_chars) {
        size_t len = 0;
        free(vn_stanza_serialize(msg, NULL, &len));
        if (list->chars + len > list->max_chars) {
            vn_stanza_free(msg);
            return false;
        }
        list->chars += len;
    }
    list->items = vn_realloc(list->items, (list->count + 1) * sizeof *list->items);
    list->items[list->count++] = (found_item){item->id, item->ts_us, vn_strdup(item->with), msg};
    return true;
}

/* The archived message with this stanza-id, or false. */
static bool find_item(const muc_room *room, const char *id_text, found_item *out)
{
    char *end = NULL;
    unsigned long long id = id_text ? strtoull(id_text, &end, 10) : 0;
    if (!id_text || !*id_text || *end || id == 0)
        return false;
    vn_archive_query q = {.after_id = id - 1, .limit = 1};
    item_list list = {.room = room};
    vn_archive_query_items(store(), room->service->domain, room->local, ARCHIVE, &q, collect, &list,
                           NULL);
    bool found = list.count == 1 && list.items[0].id == id;
    if (found) {
        *out = list.items[0];
        list.count = 0;
    }
    item_list_free(&list);
    return found;
}

static void put_tombstone(const muc_room *room, uint64_t id, const vn_stanza *tombstone)
{
    char key[24];
    size_t len = 0;
    snprintf(key, sizeof key, "%llu", (unsigned long long)id);
    char *xml = vn_stanza_serialize(tombstone, NULL, &len);
    if (vn_store_put(store(), room->service->domain, room->local, TOMBSTONES, key, xml, len) !=
        VN_STORE_OK)
        vn_log_error("muc: cannot store the tombstone of %s in %s", key, room->jid->bare);
    free(xml);
}

/* ---- history on joining ---- */

static long long attr_count(const vn_stanza *history, const char *name, long long fallback)
{
    const char *value = history ? vn_stanza_attr(history, name) : NULL;
    char *end = NULL;
    if (!value)
        return fallback;
    long long n = strtoll(value, &end, 10);
    return (*value && !*end && n >= 0) ? n : fallback;
}

void muc_send_history(muc_room *room, const vn_jid *to, const vn_stanza *history)
{
    long long limit = room->config.history_length;
    if (limit > room->service->limits->max_history_messages)
        limit = room->service->limits->max_history_messages;
    long long max_stanzas = attr_count(history, "maxstanzas", limit);
    if (max_stanzas < limit)
        limit = max_stanzas;
    long long max_chars = attr_count(history, "maxchars", -1);
    if (limit == 0 || max_chars == 0)
        return;

    vn_archive_query q = {.limit = (size_t)limit, .reverse = true};
    long long seconds = attr_count(history, "seconds", -1);
    int64_t since = 0;
    if (seconds >= 0)
        q.start_us = vn_now_us() - seconds * 1000000;
    else if (history && vn_datetime_parse(vn_stanza_attr(history, "since"), &since))
        q.start_us = since > 0 ? since : 1;

    item_list list = {.room = room, .max_chars = max_chars > 0 ? (size_t)max_chars : 0};
    if (vn_archive_query_items(store(), room->service->domain, room->local, ARCHIVE, &q, collect,
                               &list, NULL) != VN_STORE_OK)
        vn_log_error("muc: cannot read the history of %s", room->jid->bare);
    for (size_t i = list.count; i-- > 0;) {
        vn_stanza *msg = list.items[i].msg;
        list.items[i].msg = NULL;
        vn_stanza_set_attr(msg, "to", to->full);
        muc_add_delay(msg, room->jid->bare, list.items[i].ts_us);
        vn_route(msg);
    }
    item_list_free(&list);
}

/* ---- MAM (XEP-0313) on the room JID ---- */

/* XEP-0313 §5.1.2: the archive is for those who may enter the room. */
static bool may_read_archive(const muc_room *room, const vn_jid *who)
{
    muc_affiliation aff = muc_room_affiliation(room, who->bare);
    bool occupant = muc_occupant_by_session(room, who) != NULL;
    if (aff == MUC_AFF_OUTCAST)
        return false;
    if (room->config.members_only && aff < MUC_AFF_MEMBER)
        return false;
    /* Everyone but an owner enters a password-protected room with the
     * password: being in the room is what proves having it. */
    if (room->config.password_protected && aff < MUC_AFF_OWNER && !occupant)
        return false;
    return room->config.members_only || room->config.public_room || aff >= MUC_AFF_MEMBER ||
           occupant;
}

static void mam_form(vn_event *ev)
{
    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *x = vn_stanza_add_child(vn_stanza_add_child(reply, "query", NS_MAM), "x", NS_DATA);
    vn_stanza_set_attr(x, "type", "form");
    static const char *const vars[][2] = {{"FORM_TYPE", "hidden"},
                                          {"with", "jid-single"},
                                          {"start", "text-single"},
                                          {"end", "text-single"}};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        vn_stanza *field = vn_stanza_add_child(x, "field", NS_DATA);
        vn_stanza_set_attr(field, "var", vars[i][0]);
        vn_stanza_set_attr(field, "type", vars[i][1]);
        if (i == 0)
            vn_stanza_add_text_child(field, "value", NS_DATA, NS_MAM);
    }
    vn_route(reply);
}

/* The archive is indexed by the sender's real bare JID. 'with' names an
 * occupant JID (room@service/nick: the messages of whoever now holds or
 * has reserved the nick, which occupant ids tell anyway), the room itself
 * (everything) or, for those the room shows real JIDs to, an account.
 * *with is set (malloc'd, or NULL: no filter) or an error sent. No sender
 * has the room's own JID as real JID: it stands for "nobody". */
static bool mam_with(const muc_room *room, vn_event *ev, const char *value, char **with)
{
    vn_jid *jid = vn_jid_parse(value);
    if (!jid) {
        muc_iq_error(ev, "modify", "jid-malformed", "with is a JID");
        return false;
    }
    if (vn_jid_bare_equal(jid, room->jid) && jid->resource) {
        const muc_occupant *occ = muc_occupant_find(room, jid->resource);
        const char *owner = muc_room_nick_owner(room, jid->resource);
        *with = vn_strdup(occ ? occ->real_bare->bare : owner ? owner : room->jid->bare);
    } else if (!vn_jid_bare_equal(jid, room->jid)) {
        const muc_occupant *asking = muc_occupant_by_session(room, ev->from);
        bool sees = room->config.whois_anyone ||
                    muc_room_affiliation(room, ev->from->bare) >= MUC_AFF_ADMIN ||
                    (asking && muc_can_see_jids(room, asking));
        if (!sees) {
            vn_jid_free(jid);
            muc_iq_error(ev, "auth", "forbidden",
                         "This room does not tell you who its occupants are: ask by nick");
            return false;
        }
        *with = vn_strdup(jid->bare);
    }
    vn_jid_free(jid);
    return true;
}

/* Fills q from the query's form; false (error sent) if it asks for
 * something this archive cannot do. */
static bool mam_filters(const muc_room *room, vn_event *ev, const vn_stanza *query,
                        vn_archive_query *q, char **with)
{
    const vn_stanza *form = vn_stanza_child(query, "x", NS_DATA);
    for (const vn_stanza *field = form ? vn_stanza_first_element(form) : NULL; field;
         field = vn_stanza_next_element(field)) {
        const char *var = vn_stanza_attr(field, "var");
        const char *value = vn_stanza_child_text(field, "value", NS_DATA);
        if (!var || !value || strcmp(var, "FORM_TYPE") == 0)
            continue;
        if (strcmp(var, "with") == 0) {
            free(*with);
            *with = NULL;
            if (!mam_with(room, ev, value, with))
                return false;
            q->with = *with;
            continue;
        }
        if (strcmp(var, "start") == 0 || strcmp(var, "end") == 0) {
            int64_t when;
            if (!vn_datetime_parse(value, &when)) {
                muc_iq_error(ev, "modify", "bad-request", "start and end are DateTimes");
                return false;
            }
            /* Any DateTime, the epoch and before too (Dino asks from
             * 1970-01-01): a start that early bounds nothing, an end that
             * early leaves nothing (the archive knows no 0, its "none"). */
            if (var[0] == 's')
                q->start_us = when > 0 ? when : 0;
            else
                q->end_us = when > 0 ? when : 1;
            continue;
        }
        muc_iq_error(ev, "modify", "feature-not-implemented",
                     "This archive filters by with, start and end only");
        return false;
    }
    return true;
}

static bool parse_id(const char *text, uint64_t *out)
{
    char *end = NULL;
    unsigned long long id = strtoull(text, &end, 10);
    if (!*text || *end)
        return false;
    *out = id;
    return true;
}

/* RSM (XEP-0059): max, after, before (empty: the last page). */
static bool mam_paging(vn_event *ev, const vn_stanza *query, vn_archive_query *q)
{
    const vn_stanza *set = vn_stanza_child(query, "set", NS_RSM);
    const char *max = set ? vn_stanza_child_text(set, "max", NS_RSM) : NULL;
    const char *after = set ? vn_stanza_child_text(set, "after", NS_RSM) : NULL;
    const char *before = set ? vn_stanza_child_text(set, "before", NS_RSM) : NULL;
    long long page = MAM_DEFAULT_PAGE;

    if (max) {
        char *end = NULL;
        page = strtoll(max, &end, 10);
        if (!*max || *end || page < 0) {
            muc_iq_error(ev, "modify", "bad-request", "max is a whole number");
            return false;
        }
    }
    q->limit = page > MAM_MAX_PAGE ? MAM_MAX_PAGE : (size_t)page;
    if ((after && !parse_id(after, &q->after_id)) ||
        (before && *before && !parse_id(before, &q->before_id))) {
        muc_iq_error(ev, "cancel", "item-not-found", "No such archive id");
        return false;
    }
    q->reverse = before != NULL;
    return true;
}

void muc_handle_mam(muc_room *room, vn_event *ev)
{
    const vn_stanza *query = vn_stanza_child(ev->stanza, "query", NS_MAM);
    vn_archive_query q = {0};

    if (!may_read_archive(room, ev->from)) {
        muc_iq_error(ev, "auth", "forbidden", "Only members read this room's archive");
        return;
    }
    if (muc_is_type(vn_stanza_attr(ev->stanza, "type"), "get")) {
        mam_form(ev);
        return;
    }
    char *with = NULL;
    if (!mam_filters(room, ev, query, &q, &with) || !mam_paging(ev, query, &q)) {
        free(with);
        return;
    }
    size_t total = 0;
    bool complete = false;
    item_list list = {.room = room};
    if (q.limit > 0 && vn_archive_query_items(store(), room->service->domain, room->local, ARCHIVE,
                                              &q, collect, &list, &complete) != VN_STORE_OK) {
        item_list_free(&list);
        free(with);
        muc_iq_error(ev, "wait", "internal-server-error", "The archive cannot be read");
        return;
    }
    vn_archive_query count_q = q;
    count_q.after_id = count_q.before_id = 0;
    vn_archive_count(store(), room->service->domain, room->local, ARCHIVE, &count_q, &total);
    free(with);
    q.with = count_q.with = NULL;

    const char *query_id = query ? vn_stanza_attr(query, "queryid") : NULL;
    char first[24] = "", last[24] = "";
    for (size_t n = 0; n < list.count; n++) {
        found_item *it = &list.items[q.reverse ? list.count - 1 - n : n];
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)it->id);
        if (n == 0)
            snprintf(first, sizeof first, "%s", id);
        snprintf(last, sizeof last, "%s", id);
        vn_stanza *msg = muc_new_stanza("message", room->jid->bare, ev->from->full, NULL);
        vn_stanza *result = vn_stanza_add_child(msg, "result", NS_MAM);
        if (query_id)
            vn_stanza_set_attr(result, "queryid", query_id);
        vn_stanza_set_attr(result, "id", id);
        vn_stanza *forwarded = vn_stanza_add_child(result, "forwarded", NS_FORWARD);
        muc_add_delay(forwarded, room->jid->bare, it->ts_us);
        vn_stanza_append(forwarded, it->msg);
        it->msg = NULL;
        vn_route(msg);
    }
    item_list_free(&list);

    vn_stanza *reply = vn_stanza_iq_result(ev->stanza);
    vn_stanza *fin = vn_stanza_add_child(reply, "fin", NS_MAM);
    if (complete || q.limit == 0)
        vn_stanza_set_attr(fin, "complete", "true");
    vn_stanza *set = vn_stanza_add_child(fin, "set", NS_RSM);
    if (*first) {
        vn_stanza_add_text_child(set, "first", NS_RSM, first);
        vn_stanza_add_text_child(set, "last", NS_RSM, last);
    }
    char count[24];
    snprintf(count, sizeof count, "%zu", total);
    vn_stanza_add_text_child(set, "count", NS_RSM, count);
    vn_route(reply);
}

/* ---- moderation (XEP-0425) and retraction (XEP-0424) ---- */

static void occupant_jid(const muc_room *room, const char *nick, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", room->jid->bare, nick);
}

/* The tombstone of original: from, type, id and occupant-id kept, the
 * content replaced by marker. */
static vn_stanza *tombstone(const vn_stanza *original, vn_stanza *marker)
{
    vn_stanza *tomb =
        muc_new_stanza("message", vn_stanza_attr(original, "from"), NULL, "groupchat");
    if (vn_stanza_attr(original, "id"))
        vn_stanza_set_attr(tomb, "id", vn_stanza_attr(original, "id"));
    vn_stanza_append(tomb, marker);
    const vn_stanza *oid = vn_stanza_child(original, "occupant-id", NS_OCCUPANT_ID);
    if (oid)
        vn_stanza_append(tomb, vn_stanza_copy(oid));
    return tomb;
}

static void stamp_now(vn_stanza *st)
{
    char stamp[VN_DATETIME_SIZE];
    vn_datetime_format(vn_now_us(), stamp);
    vn_stanza_set_attr(st, "stamp", stamp);
}

/* Reflects and archives a message from the room itself. */
static void broadcast_from_room(muc_room *room, vn_stanza *msg)
{
    uint64_t id = 0;
    if (room->config.logging && muc_archive_message(room, msg, "", &id)) {
        char key[24];
        snprintf(key, sizeof key, "%llu", (unsigned long long)id);
        vn_stanza *sid = vn_stanza_add_child(msg, "stanza-id", NS_SID);
        vn_stanza_set_attr(sid, "id", key);
        vn_stanza_set_attr(sid, "by", room->jid->bare);
    }
    muc_broadcast(room, msg);
}

void muc_handle_moderate(muc_room *room, vn_event *ev)
{
    const vn_stanza *v1 = vn_stanza_child(ev->stanza, "moderate", NS_MODERATE_1);
    const vn_stanza *apply_to = vn_stanza_child(ev->stanza, "apply-to", NS_FASTEN);
    const vn_stanza *v0 = apply_to ? vn_stanza_child(apply_to, "moderate", NS_MODERATE_0) : NULL;
    const char *id = v1         ? vn_stanza_attr(v1, "id")
                     : apply_to ? vn_stanza_attr(apply_to, "id")
                                : NULL;
    const char *reason = v1   ? vn_stanza_child_text(v1, "reason", NS_MODERATE_1)
                         : v0 ? vn_stanza_child_text(v0, "reason", NS_MODERATE_0)
                              : NULL;
    muc_occupant *moderator = muc_occupant_by_session(room, ev->from);
    found_item item;

    if (!v1 && !v0) {
        muc_iq_error(ev, "modify", "bad-request", "Expected <moderate/>");
        return;
    }
    if ((v1 && !vn_stanza_child(v1, "retract", NS_RETRACT_1)) ||
        (v0 && !vn_stanza_child(v0, "retract", NS_RETRACT_0))) {
        muc_iq_error(ev, "cancel", "feature-not-implemented", "Only retraction is supported");
        return;
    }
    if (!moderator || moderator->role != MUC_ROLE_MODERATOR) {
        muc_iq_error(ev, "auth", "forbidden", "Only moderators moderate messages");
        return;
    }
    if (!find_item(room, id, &item)) {
        muc_iq_error(ev, "cancel", "item-not-found", "No such message in the archive");
        return;
    }
    char by[2048];
    occupant_jid(room, moderator->nick, by, sizeof by);
    vn_stanza *moderated, *marker;
    vn_stanza *notice = muc_new_stanza("message", room->jid->bare, NULL, "groupchat");
    if (v1) {
        marker = vn_stanza_new("retracted", NS_RETRACT_1);
        stamp_now(marker);
        moderated = vn_stanza_add_child(marker, "moderated", NS_MODERATE_1);
        vn_stanza_set_attr(moderated, "by", by);
        vn_stanza_set_attr(vn_stanza_add_child(moderated, "occupant-id", NS_OCCUPANT_ID), "id",
                           moderator->occupant_id);
        if (reason)
            vn_stanza_add_text_child(marker, "reason", NS_RETRACT_1, reason);
        vn_stanza *retract = vn_stanza_add_child(notice, "retract", NS_RETRACT_1);
        vn_stanza_set_attr(retract, "id", id);
        vn_stanza_append(retract, vn_stanza_copy(moderated));
        if (reason)
            vn_stanza_add_text_child(retract, "reason", NS_RETRACT_1, reason);
    } else {
        marker = vn_stanza_new("moderated", NS_MODERATE_0);
        vn_stanza_set_attr(marker, "by", by);
        stamp_now(vn_stanza_add_child(marker, "retracted", NS_RETRACT_0));
        if (reason)
            vn_stanza_add_text_child(marker, "reason", NS_MODERATE_0, reason);
        vn_stanza *apply = vn_stanza_add_child(notice, "apply-to", NS_FASTEN);
        vn_stanza_set_attr(apply, "id", id);
        moderated = vn_stanza_add_child(apply, "moderated", NS_MODERATE_0);
        vn_stanza_set_attr(moderated, "by", by);
        vn_stanza_add_child(moderated, "retract", NS_RETRACT_0);
        if (reason)
            vn_stanza_add_text_child(moderated, "reason", NS_MODERATE_0, reason);
    }
    vn_stanza *tomb = tombstone(item.msg, marker);
    put_tombstone(room, item.id, tomb);
    vn_stanza_free(tomb);
    vn_log_info("muc: %s moderated message %s in %s", ev->from->full, id, room->jid->bare);
    vn_stanza_free(item.msg);
    free(item.with);

    vn_route(vn_stanza_iq_result(ev->stanza));
    broadcast_from_room(room, notice);
    vn_stanza_free(notice);
}

bool muc_check_retraction(muc_room *room, const muc_occupant *occ, vn_event *ev)
{
    const vn_stanza *v1 = vn_stanza_child(ev->stanza, "retract", NS_RETRACT_1);
    const vn_stanza *apply_to = vn_stanza_child(ev->stanza, "apply-to", NS_FASTEN);
    const vn_stanza *v0 = apply_to ? vn_stanza_child(apply_to, "retract", NS_RETRACT_0) : NULL;
    const char *id = v1 ? vn_stanza_attr(v1, "id") : v0 ? vn_stanza_attr(apply_to, "id") : NULL;
    found_item item;

    if (!v1 && !v0)
        return true;
    if (!find_item(room, id, &item)) {
        vn_route_error(ev->stanza, "cancel", "item-not-found", "No such message in the archive");
        return false;
    }
    bool own = item.with && strcmp(item.with, occ->real_bare->bare) == 0;
    if (own) {
        vn_stanza *marker = vn_stanza_new("retracted", v1 ? NS_RETRACT_1 : NS_RETRACT_0);
        stamp_now(marker);
        vn_stanza *tomb = tombstone(item.msg, marker);
        put_tombstone(room, item.id, tomb);
        vn_stanza_free(tomb);
    }
    vn_stanza_free(item.msg);
    free(item.with);
    if (!own)
        vn_route_error(ev->stanza, "auth", "forbidden", "You may only retract your own messages");
    return own;
}
