/*
 * timers.c - module timers on the server loop (vn_timer_* in module.h).
 *
 * A vn_timer wraps a uv_timer_t on vn_srv.loop. Live timers are kept on a
 * list so that shutdown can stop whatever the modules left running. A
 * one-shot timer leaves the list when it fires and is closed (and freed)
 * once its callback returns; a stopped timer is closed at once. Memory is
 * released in the close callback, as libuv requires.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <utlist.h>

#include "hooks.h"
#include "server.h"
#include "vestnik/module.h"

struct vn_timer {
    uv_timer_t handle;
    vn_timer_cb cb;
    void *ud;
    bool one_shot;
    bool fired; /* a one-shot timer inside or past its callback */
    vn_timer *prev, *next;
};

static vn_timer *live_timers;

static void timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void timer_close(vn_timer *t)
{
    uv_timer_stop(&t->handle);
    uv_close((uv_handle_t *)&t->handle, timer_closed);
}

static void timer_fired(uv_timer_t *handle)
{
    vn_timer *t = handle->data;

    if (!t->one_shot) {
        t->cb(t, t->ud);
        return;
    }
    t->fired = true;
    DL_DELETE(live_timers, t);
    t->cb(t, t->ud);
    timer_close(t);
}

vn_timer *vn_timer_start(uint64_t timeout_ms, uint64_t repeat_ms, vn_timer_cb cb, void *ud)
{
    vn_timer *t = vn_alloc(sizeof *t);

    t->cb = cb;
    t->ud = ud;
    t->one_shot = repeat_ms == 0;
    uv_timer_init(vn_srv.loop, &t->handle);
    t->handle.data = t;
    uv_timer_start(&t->handle, timer_fired, timeout_ms, repeat_ms);
    DL_APPEND(live_timers, t);
    return t;
}

void vn_timer_stop(vn_timer *t)
{
    /* A one-shot timer stopping itself from its own callback: it is
     * closed as soon as the callback returns anyway. */
    if (t->fired)
        return;
    DL_DELETE(live_timers, t);
    timer_close(t);
}

void vn_timers_stop_all(void)
{
    vn_timer *t, *tmp;

    DL_FOREACH_SAFE(live_timers, t, tmp)
    {
        DL_DELETE(live_timers, t);
        timer_close(t);
    }
}
