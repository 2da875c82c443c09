/*
 * sessions.c - the table of bound client resources.
 *
 * Two uthash tables: full JID → session, and bare JID → the list of that
 * account's sessions. Routing looks up the first for full-JID stanzas and
 * walks the second for bare-JID delivery (RFC 6121 §8.5).
 *
 * In a cluster (cluster.h) the tables also hold the sessions of the other
 * nodes, as remote entries with no stream: every lookup, bare-JID rule and
 * module walking an account's resources sees the whole cluster, and
 * vn_session_send of a remote entry publishes the stanza to its node.
 */
#include <dlfcn.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "c2s.h"
#include "cluster.h"
#include "metrics.h"
#include "server.h"
#include "sessions.h"
#include "vestnik/module.h"

typedef struct session_slot {
    const void *key;
    void *data;
    void (*free_fn)(void *);
} session_slot;

struct vn_session {
    vn_jid *jid;
    struct vn_c2s *stream; /* NULL for a remote session */
    char *node;            /* the node holding a remote session, else NULL */
    int priority;
    bool available;
    session_slot *slots;
    size_t n_slots;
    struct vn_session *next_of_account; /* same bare JID; the graveyard's link once dead */
    bool dead;                          /* unbound, freed on the next loop turn */
    UT_hash_handle hh;                  /* keyed by jid->full */
};

typedef struct account_sessions {
    char *bare;
    vn_session *first;
    UT_hash_handle hh;
} account_sessions;

static vn_session *by_full;
/* Unbound sessions wait here for the next loop turn: code up the stack
 * (a broadcast walking an account's sessions) may still hold them. */
static vn_session *graveyard;
static vn_timer *reaper;
static account_sessions *by_bare;
static size_t session_count; /* local ones */
static size_t remote_count;

static char *generate_resource(void)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[12];
    char *res = vn_alloc(sizeof "vn-" + sizeof rnd);

    if (RAND_bytes(rnd, sizeof rnd) != 1)
        abort();
    memcpy(res, "vn-", 3);
    for (size_t i = 0; i < sizeof rnd; i++)
        res[3 + i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
    return res;
}

/* limits.max_resources_per_account: does the account have all it may? */
static bool resources_exhausted(const char *bare)
{
    unsigned limit = vn_srv.cfg->max_resources_per_account;
    account_sessions *acct = NULL;
    unsigned bound = 0;

    if (!limit)
        return false;
    HASH_FIND_STR(by_bare, bare, acct);
    for (const vn_session *s = acct ? acct->first : NULL; s && bound < limit;
         s = s->next_of_account)
        bound++;
    return bound >= limit;
}

static void link_session(vn_session *s)
{
    HASH_ADD_KEYPTR(hh, by_full, s->jid->full, strlen(s->jid->full), s);

    account_sessions *acct = NULL;
    HASH_FIND_STR(by_bare, s->jid->bare, acct);
    if (!acct) {
        acct = vn_alloc(sizeof *acct);
        acct->bare = vn_strdup(s->jid->bare);
        HASH_ADD_KEYPTR(hh, by_bare, acct->bare, strlen(acct->bare), acct);
    }
    s->next_of_account = acct->first;
    acct->first = s;
}

static void unlink_session(vn_session *s)
{
    HASH_DEL(by_full, s);
    account_sessions *acct = NULL;
    HASH_FIND_STR(by_bare, s->jid->bare, acct);
    if (acct) {
        vn_session **p = &acct->first;
        while (*p && *p != s)
            p = &(*p)->next_of_account;
        if (*p)
            *p = s->next_of_account;
        if (!acct->first) {
            HASH_DEL(by_bare, acct);
            free(acct->bare);
            free(acct);
        }
    }
}

static void run_session_hook(const char *name, vn_session *s, void *data)
{
    vn_event ev = {.session = s, .from = s->jid, .host = s->jid->domain, .data = data};
    vn_hook_run(name, &ev);
}

vn_session *vn_sessions_bind(struct vn_c2s *stream, const char *host, const char *user,
                             const char *resource, const char **condition)
{
    char *generated = NULL;
    vn_jid *jid;

    if (!resource || !*resource)
        resource = generated = generate_resource();
    jid = vn_jid_make(user, host, resource);
    free(generated);
    if (!jid) {
        *condition = "bad-request";
        return NULL;
    }

    vn_session *old = NULL;
    HASH_FIND_STR(by_full, jid->full, old);
    if (old && old->node) {
        /* Bound on another node: ours is the newer one, and that node
         * closes its own when our announcement reaches it. */
        vn_sessions_drop_remote(old->node, jid->full);
        old = NULL;
    }
    if (!old && resources_exhausted(jid->bare)) {
        /* A conflict replaces a resource; a new one must fit the limit. */
        vn_log_info("%s has %u resources bound: refusing another", jid->bare,
                    vn_srv.cfg->max_resources_per_account);
        vn_jid_free(jid);
        *condition = "resource-constraint";
        return NULL;
    }
    if (old) {
        /* RFC 6120 §7.7.2.2: the newer connection wins. Closing the old
         * stream unbinds its session synchronously. */
        vn_log_info("resource conflict for %s: closing the older session", jid->full);
        vn_c2s_close(old->stream, "conflict", "Replaced by a new connection");
    }

    vn_session *s = vn_alloc(sizeof *s);
    s->jid = jid;
    s->stream = stream;
    link_session(s);
    session_count++;

    vn_log_info("session bound: %s", jid->full);
    vn_cluster_session_changed(s, false);
    run_session_hook("session/bound", s, NULL);
    return s;
}

static void session_free(vn_session *s)
{
    for (size_t i = 0; i < s->n_slots; i++)
        if (s->slots[i].free_fn)
            s->slots[i].free_fn(s->slots[i].data);
    free(s->slots);
    free(s->node);
    vn_jid_free(s->jid);
    free(s);
}

/* Free and forget the slots of s whose free function lives in the shared
 * object loaded at base. */
static void drop_slots_from(vn_session *s, const void *base)
{
    size_t kept = 0;

    for (size_t i = 0; i < s->n_slots; i++) {
        Dl_info info;
        if (s->slots[i].free_fn && dladdr((void *)s->slots[i].free_fn, &info) &&
            info.dli_fbase == base) {
            s->slots[i].free_fn(s->slots[i].data);
            continue;
        }
        s->slots[kept++] = s->slots[i];
    }
    s->n_slots = kept;
}

void vn_sessions_drop_module_data(const void *module_base)
{
    for (vn_session *s = by_full; s; s = s->hh.next)
        drop_slots_from(s, module_base);
    for (vn_session *s = graveyard; s; s = s->next_of_account)
        drop_slots_from(s, module_base);
}

void vn_sessions_reap(void)
{
    if (reaper) {
        vn_timer_stop(reaper);
        reaper = NULL;
    }
    while (graveyard) {
        vn_session *s = graveyard;
        graveyard = s->next_of_account;
        session_free(s);
    }
}

static void reap(vn_timer *t, void *ud)
{
    reaper = NULL; /* a one-shot timer frees itself */
    vn_sessions_reap();
}

/* To the graveyard: freed on the next loop turn. */
static void bury(vn_session *s)
{
    s->dead = true;
    s->next_of_account = graveyard;
    graveyard = s;
    if (!reaper)
        reaper = vn_timer_start(0, 0, reap, NULL);
}

void vn_sessions_unbind(vn_session *s, const char *reason)
{
    run_session_hook("session/closed", s, (void *)reason);
    vn_cluster_session_changed(s, true);

    unlink_session(s);
    session_count--;
    vn_log_info("session closed: %s%s%s", s->jid->full, reason ? ": " : "", reason ? reason : "");
    bury(s);
}

/* ---- remote sessions (cluster) ---- */

vn_session *vn_sessions_put_remote(const char *node, const char *full, int priority, bool available)
{
    vn_session *s = NULL;
    HASH_FIND_STR(by_full, full, s);
    if (s && !s->node) {
        /* The same resource bound again on another node: the newer wins
         * (RFC 6120 §7.7.2.2), as on one node. */
        vn_log_info("resource conflict for %s: bound on node %s", full, node);
        vn_c2s_close(s->stream, "conflict", "Replaced by a new connection");
        s = NULL;
        HASH_FIND_STR(by_full, full, s);
        if (s && !s->node)
            return NULL;
    }
    if (!s) {
        vn_jid *jid = vn_jid_parse(full);
        if (!jid || !jid->local || !jid->resource) {
            vn_jid_free(jid);
            return NULL;
        }
        s = vn_alloc(sizeof *s);
        s->jid = jid;
        s->node = vn_strdup(node);
        link_session(s);
        remote_count++;
    } else if (strcmp(s->node, node) != 0) {
        free(s->node);
        s->node = vn_strdup(node);
    }
    s->priority = priority;
    s->available = available;
    return s;
}

void vn_sessions_drop_remote(const char *node, const char *full)
{
    vn_session *s = NULL;
    HASH_FIND_STR(by_full, full, s);
    if (!s || !s->node || strcmp(s->node, node) != 0)
        return;
    unlink_session(s);
    remote_count--;
    bury(s);
}

size_t vn_sessions_drop_node(const char *node)
{
    size_t dropped = 0;
    vn_session *s, *tmp;
    HASH_ITER(hh, by_full, s, tmp)
    {
        if (s->node && strcmp(s->node, node) == 0) {
            unlink_session(s);
            remote_count--;
            bury(s);
            dropped++;
        }
    }
    return dropped;
}

void vn_sessions_foreach_of_node(const char *node, vn_session_cb cb, void *ud)
{
    vn_session *s, *tmp;
    HASH_ITER(hh, by_full, s, tmp)
    {
        bool of_node = node ? s->node && strcmp(s->node, node) == 0 : !s->node;
        if (of_node && !cb(s, ud))
            break;
    }
}

size_t vn_sessions_count_remote(const char *node)
{
    size_t n = 0;
    if (!node)
        return remote_count;
    for (vn_session *s = by_full; s; s = s->hh.next)
        n += s->node && strcmp(s->node, node) == 0;
    return n;
}

const char *vn_session_node(const vn_session *s)
{
    return s->node;
}

bool vn_session_is_remote(const vn_session *s)
{
    return s->node != NULL;
}

struct vn_c2s *vn_session_stream(const vn_session *s)
{
    return s->stream;
}

void vn_session_set_stream(vn_session *s, struct vn_c2s *stream)
{
    s->stream = stream;
}

void vn_sessions_kick_user(const char *host, const char *user, const char *condition)
{
    vn_cluster_kick_user(host, user, condition); /* the other nodes close theirs */
    vn_sessions_kick_user_here(host, user, condition);
}

void vn_sessions_kick_user_here(const char *host, const char *user, const char *condition)
{
    vn_jid *bare = vn_jid_make(user, host, NULL);
    if (!bare)
        return;
    account_sessions *acct = NULL;
    HASH_FIND_STR(by_bare, bare->bare, acct);
    /* Each close unbinds one session and may free acct: restart the
     * lookup. Remote sessions are their nodes' to close. */
    while (acct) {
        vn_session *local = acct->first;
        while (local && local->node)
            local = local->next_of_account;
        if (!local)
            break;
        vn_c2s_close(local->stream, condition, "Account removed");
        acct = NULL;
        HASH_FIND_STR(by_bare, bare->bare, acct);
    }
    vn_jid_free(bare);
}

/* ---- the module API's session functions ---- */

const vn_jid *vn_session_jid(const vn_session *s)
{
    return s->jid;
}

const char *vn_session_host(const vn_session *s)
{
    return s->jid->domain;
}

void vn_session_send(vn_session *s, const vn_stanza *st)
{
    if (s->dead)
        return;
    if (s->node) {
        vn_cluster_forward(s->node, s->jid->full, st);
        return;
    }
    vn_event ev = {.stanza = (vn_stanza *)st, .session = s, .host = s->jid->domain};
    if (vn_hook_run("stanza/out", &ev) == VN_HANDLED)
        return;
    vn_metrics.delivered++;
    vn_c2s_write_stanza(s->stream, st);
}

int vn_session_priority(const vn_session *s)
{
    return s->priority;
}

void vn_session_set_priority(vn_session *s, int priority)
{
    bool changed = s->priority != priority;
    s->priority = priority;
    if (changed && !s->node && !s->dead)
        vn_cluster_session_changed(s, false);
}

bool vn_session_available(const vn_session *s)
{
    return s->available;
}

void vn_session_set_available(vn_session *s, bool available)
{
    bool changed = s->available != available;
    s->available = available;
    if (changed && !s->node && !s->dead)
        vn_cluster_session_changed(s, false);
}

bool vn_session_hibernating(const vn_session *s)
{
    return s->stream && vn_c2s_hibernating(s->stream);
}

bool vn_session_can_take_more(const vn_session *s)
{
    return !s->dead && (!s->stream || vn_c2s_can_take_more(s->stream));
}

void *vn_session_get_data(const vn_session *s, const void *key)
{
    for (size_t i = 0; i < s->n_slots; i++)
        if (s->slots[i].key == key)
            return s->slots[i].data;
    return NULL;
}

void vn_session_set_data(vn_session *s, const void *key, void *data, void (*free_fn)(void *))
{
    for (size_t i = 0; i < s->n_slots; i++) {
        if (s->slots[i].key != key)
            continue;
        if (s->slots[i].free_fn && s->slots[i].data != data)
            s->slots[i].free_fn(s->slots[i].data);
        s->slots[i].data = data;
        s->slots[i].free_fn = free_fn;
        return;
    }
    s->slots = vn_realloc(s->slots, (s->n_slots + 1) * sizeof *s->slots);
    s->slots[s->n_slots++] = (session_slot){key, data, free_fn};
}

vn_session *vn_session_find(const vn_jid *full)
{
    vn_session *s = NULL;
    if (full && full->resource)
        HASH_FIND_STR(by_full, full->full, s);
    return s;
}

void vn_sessions_foreach(const vn_jid *bare, vn_session_cb cb, void *ud)
{
    account_sessions *acct = NULL;
    vn_session *inline_list[16], **list = inline_list;
    size_t n = 0;

    HASH_FIND_STR(by_bare, bare->bare, acct);
    if (!acct)
        return;
    /* A snapshot: callbacks may bind or close sessions of this account. */
    for (vn_session *s = acct->first; s; s = s->next_of_account)
        n++;
    if (n > sizeof inline_list / sizeof inline_list[0])
        list = vn_alloc(n * sizeof *list);
    n = 0;
    for (vn_session *s = acct->first; s; s = s->next_of_account)
        list[n++] = s;
    for (size_t i = 0; i < n; i++)
        if (!list[i]->dead && !cb(list[i], ud))
            break;
    if (list != inline_list)
        free(list);
}

size_t vn_sessions_count(void)
{
    return session_count;
}
