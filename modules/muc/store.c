/*
 * store.c - persistent rooms survive restarts.
 *
 * A persistent room's configuration, subject, occupant-id key and
 * affiliation list (with registered nicks) are one XML document, key
 * "config" in store "muc_room", under the service domain and the room's
 * localpart; it is rewritten whenever any of them changes. At load every
 * such document becomes a room again, unlocked and empty. The room's
 * archive and tombstones live under the same (domain, localpart), so
 * deleting that "user" removes everything the room left behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "muc.h"

#define ROOM_STORE "muc_room"
#define ROOM_KEY "config"
#define NS_ROOM_DOC "urn:vestnik:muc:0"

static const char *const pm_names[] = {"anyone", "participants", "moderators", "none"};

static void set_bool(vn_stanza *st, const char *name, bool value)
{
    vn_stanza_set_attr(st, name, value ? "1" : "0");
}

static void set_int(vn_stanza *st, const char *name, long long value)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", value);
    vn_stanza_set_attr(st, name, text);
}

static vn_stanza *room_document(const muc_room *room)
{
    const muc_config *cfg = &room->config;
    unsigned char secret[64];
    vn_stanza *doc = vn_stanza_new("room", NS_ROOM_DOC);

    if (cfg->name)
        vn_stanza_set_attr(doc, "name", cfg->name);
    if (cfg->description)
        vn_stanza_set_attr(doc, "description", cfg->description);
    if (cfg->password)
        vn_stanza_set_attr(doc, "password", cfg->password);
    set_bool(doc, "public", cfg->public_room);
    set_bool(doc, "members-only", cfg->members_only);
    set_bool(doc, "moderated", cfg->moderated);
    set_bool(doc, "password-protected", cfg->password_protected);
    set_bool(doc, "whois-anyone", cfg->whois_anyone);
    set_bool(doc, "change-subject", cfg->change_subject);
    set_bool(doc, "allow-invites", cfg->allow_invites);
    set_bool(doc, "logging", cfg->logging);
    vn_stanza_set_attr(doc, "allow-pm", pm_names[cfg->allow_pm]);
    set_int(doc, "max-occupants", cfg->max_occupants);
    set_int(doc, "history-length", cfg->history_length);
    if (room->creator)
        vn_stanza_set_attr(doc, "creator", room->creator);
    EVP_EncodeBlock(secret, room->secret, sizeof room->secret);
    vn_stanza_set_attr(doc, "secret", (const char *)secret);
    if (room->subject) {
        vn_stanza *subject = vn_stanza_add_text_child(doc, "subject", NS_ROOM_DOC, room->subject);
        if (room->subject_nick)
            vn_stanza_set_attr(subject, "nick", room->subject_nick);
    }
    for (const muc_member *m = room->members; m; m = m->hh.next) {
        vn_stanza *member = vn_stanza_add_child(doc, "member", NS_ROOM_DOC);
        vn_stanza_set_attr(member, "jid", m->jid);
        vn_stanza_set_attr(member, "affiliation", muc_affiliation_name(m->affiliation));
        if (m->nick)
            vn_stanza_set_attr(member, "nick", m->nick);
        if (m->reason)
            vn_stanza_set_attr(member, "reason", m->reason);
    }
    return doc;
}

void muc_store_save(const muc_room *room)
{
    vn_store *store = vn_server_store();
    const char *domain = room->service->domain;

    if (!room->config.persistent) {
        if (vn_store_delete(store, domain, room->local, ROOM_STORE, ROOM_KEY) != VN_STORE_OK)
            vn_log_error("muc: cannot forget the configuration of %s", room->jid->bare);
        return;
    }
    vn_stanza *doc = room_document(room);
    size_t len = 0;
    char *xml = vn_stanza_serialize(doc, NULL, &len);
    if (vn_store_put(store, domain, room->local, ROOM_STORE, ROOM_KEY, xml, len) != VN_STORE_OK)
        vn_log_error("muc: cannot store the configuration of %s", room->jid->bare);
    free(xml);
    vn_stanza_free(doc);
}

void muc_store_delete(const muc_room *room)
{
    if (vn_store_delete_user(vn_server_store(), room->service->domain, room->local) != VN_STORE_OK)
        vn_log_error("muc: cannot delete what %s stored", room->jid->bare);
}

/* ---- loading ---- */

static bool get_bool(const vn_stanza *doc, const char *name)
{
    const char *value = vn_stanza_attr(doc, name);
    return value && strcmp(value, "1") == 0;
}

static long long get_int(const vn_stanza *doc, const char *name, long long fallback, long long max)
{
    const char *value = vn_stanza_attr(doc, name);
    long long n = value ? strtoll(value, NULL, 10) : fallback;
    return n < 0 ? fallback : n > max ? max : n;
}

static void restore_room(muc_service *svc, const char *local, const vn_stanza *doc)
{
    muc_room *room = muc_room_create(svc, local, vn_stanza_attr(doc, "creator"));
    muc_config *cfg = &room->config;

    cfg->persistent = true;
    cfg->name = vn_strdup(vn_stanza_attr(doc, "name"));
    cfg->description = vn_strdup(vn_stanza_attr(doc, "description"));
    cfg->password = vn_strdup(vn_stanza_attr(doc, "password"));
    cfg->public_room = get_bool(doc, "public");
    cfg->members_only = get_bool(doc, "members-only");
    cfg->moderated = get_bool(doc, "moderated");
    cfg->password_protected = get_bool(doc, "password-protected") && cfg->password;
    cfg->whois_anyone = get_bool(doc, "whois-anyone");
    cfg->change_subject = get_bool(doc, "change-subject");
    cfg->allow_invites = get_bool(doc, "allow-invites");
    /* Rooms stored before logging could be turned off were logged. */
    cfg->logging = !vn_stanza_attr(doc, "logging") || get_bool(doc, "logging");
    const char *pm = vn_stanza_attr(doc, "allow-pm");
    for (size_t i = 0; pm && i < sizeof pm_names / sizeof *pm_names; i++)
        if (strcmp(pm, pm_names[i]) == 0)
            cfg->allow_pm = (muc_pm_policy)i;
    cfg->max_occupants =
        get_int(doc, "max-occupants", svc->limits->max_occupants, svc->limits->max_occupants);
    cfg->history_length = get_int(doc, "history-length", svc->limits->max_history_messages,
                                  svc->limits->max_history_messages);

    const char *secret = vn_stanza_attr(doc, "secret");
    unsigned char decoded[64];
    if (secret && strlen(secret) == 44 &&
        EVP_DecodeBlock(decoded, (const unsigned char *)secret, 44) == 33)
        memcpy(room->secret, decoded, sizeof room->secret);

    const vn_stanza *subject = vn_stanza_child(doc, "subject", NS_ROOM_DOC);
    if (subject) {
        room->subject = vn_strdup(vn_stanza_text(subject));
        room->subject_nick = vn_strdup(vn_stanza_attr(subject, "nick"));
    }
    for (const vn_stanza *m = vn_stanza_first_element(doc); m; m = vn_stanza_next_element(m)) {
        muc_affiliation aff;
        if (!vn_stanza_is(m, "member", NS_ROOM_DOC) ||
            !muc_affiliation_parse(vn_stanza_attr(m, "affiliation"), &aff))
            continue;
        /* Affiliations are looked up by the canonical bare JID: a document
         * imported or written by hand may spell it otherwise. */
        vn_jid *jid = vn_jid_parse(vn_stanza_attr(m, "jid"));
        if (!jid) {
            vn_log_warn("muc: %s lists an affiliation of something that is not a JID",
                        room->jid->bare);
            continue;
        }
        muc_room_set_affiliation(room, jid->bare, aff == MUC_AFF_NONE ? MUC_AFF_MEMBER : aff,
                                 vn_stanza_attr(m, "reason"));
        muc_member *member = muc_room_member(room, jid->bare);
        member->affiliation = aff;
        free(member->nick);
        member->nick =
            vn_stanza_attr(m, "nick") ? vn_jid_prep_resource(vn_stanza_attr(m, "nick")) : NULL;
        vn_jid_free(jid);
    }
}

typedef struct load_ctx {
    muc_service *svc;
    size_t loaded;
} load_ctx;

static bool load_one(const char *local, void *ud)
{
    load_ctx *ctx = ud;
    vn_store *store = vn_server_store();
    vn_buf buf;

    vn_buf_init(&buf);
    if (vn_store_get(store, ctx->svc->domain, local, ROOM_STORE, ROOM_KEY, &buf) == VN_STORE_OK) {
        vn_stanza *doc = vn_stanza_parse(buf.data, buf.len);
        if (doc && vn_stanza_is(doc, "room", NS_ROOM_DOC) && !muc_room_find(ctx->svc, local)) {
            restore_room(ctx->svc, local, doc);
            ctx->loaded++;
        } else {
            vn_log_error("muc: the stored configuration of %s@%s is unreadable", local,
                         ctx->svc->domain);
        }
        vn_stanza_free(doc);
    }
    vn_buf_free(&buf);
    return true;
}

void muc_store_load(muc_service *svc)
{
    load_ctx ctx = {.svc = svc};
    if (vn_store_foreach_user(vn_server_store(), svc->domain, ROOM_STORE, load_one, &ctx) !=
        VN_STORE_OK)
        vn_log_error("muc: cannot list the persistent rooms of %s", svc->domain);
    vn_log_info("muc: %s serves %zu persistent room(s)", svc->domain, ctx.loaded);
}
