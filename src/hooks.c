/*
 * hooks.c - named events with prioritised handlers (vn_hook_* in module.h).
 *
 * Each hook name maps to an array of handlers kept sorted by priority,
 * highest first, registration order among equals. Handlers may add and
 * remove handlers (their own included) while the hook runs, so the array
 * is never reshaped under a run in progress: a removal only marks the entry
 * dead (it is skipped from then on), an addition is appended past the
 * sorted part and takes part from the next run. When the outermost run of
 * the hook returns, the array is settled: dead entries dropped, new ones
 * sorted into place, and a hook left without handlers is deleted.
 */
#include "hooks.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "vestnik/module.h"

typedef struct hook_handler {
    vn_hook_fn fn;
    void *ud;
    int priority;
    unsigned long seq; /* registration order, breaks priority ties */
    bool dead;         /* removed while the hook was running */
} hook_handler;

typedef struct hook {
    char *name;
    hook_handler *handlers;
    size_t count; /* entries in handlers, dead and new included */
    size_t cap;
    size_t ordered; /* handlers[0..ordered) are sorted: what a run calls */
    unsigned depth; /* runs of this hook in progress (handlers may nest) */
    bool unsettled; /* dead or new entries wait for the runs to finish */
    UT_hash_handle hh;
} hook;

static hook *hooks;
static unsigned long next_seq;

static int handler_order(const void *a, const void *b)
{
    const hook_handler *x = a, *y = b;

    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void hook_free(hook *h)
{
    HASH_DEL(hooks, h);
    free(h->handlers);
    free(h->name);
    free(h);
}

/* Drop dead entries and sort new ones in; only with no run in progress. */
static void hook_settle(hook *h)
{
    size_t live = 0;

    for (size_t i = 0; i < h->count; i++)
        if (!h->handlers[i].dead)
            h->handlers[live++] = h->handlers[i];
    h->count = live;
    qsort(h->handlers, h->count, sizeof *h->handlers, handler_order);
    h->ordered = h->count;
    h->unsettled = false;
    if (h->count == 0)
        hook_free(h);
}

void vn_hook_add(const char *name, int priority, vn_hook_fn fn, void *ud)
{
    hook *h;

    HASH_FIND_STR(hooks, name, h);
    if (!h) {
        h = vn_alloc(sizeof *h);
        h->name = vn_strdup(name);
        HASH_ADD_KEYPTR(hh, hooks, h->name, strlen(h->name), h);
    }
    if (h->count == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 4;
        h->handlers = vn_realloc(h->handlers, h->cap * sizeof *h->handlers);
    }
    h->handlers[h->count++] =
        (hook_handler){.fn = fn, .ud = ud, .priority = priority, .seq = next_seq++, .dead = false};
    h->unsettled = true;
    if (h->depth == 0)
        hook_settle(h);
}

void vn_hook_remove(const char *name, vn_hook_fn fn, void *ud)
{
    hook *h;

    HASH_FIND_STR(hooks, name, h);
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++) {
        hook_handler *entry = &h->handlers[i];
        if (!entry->dead && entry->fn == fn && entry->ud == ud) {
            entry->dead = true;
            h->unsettled = true;
            if (h->depth == 0)
                hook_settle(h);
            return;
        }
    }
}

vn_hook_result vn_hook_run(const char *name, vn_event *ev)
{
    vn_hook_result result = VN_PASS;
    hook *h;

    HASH_FIND_STR(hooks, name, h);
    if (!h)
        return VN_PASS;

    /* handlers[] may be reallocated by an add inside a handler: index it
     * afresh each time and copy the entry out before calling. The sorted
     * prefix stays put until the outermost run settles the hook. */
    size_t ordered = h->ordered;
    h->depth++;
    for (size_t i = 0; i < ordered && result != VN_HANDLED; i++) {
        hook_handler entry = h->handlers[i];
        if (!entry.dead)
            result = entry.fn(ev, entry.ud);
    }
    h->depth--;
    if (h->depth == 0 && h->unsettled)
        hook_settle(h);
    return result;
}

void vn_hooks_clear(void)
{
    while (hooks)
        hook_free(hooks);
    next_seq = 0;
}
