/*
 * shaper.c - stanza rate shaping by back-pressure (see shaper.h).
 *
 * The bucket may run into debt: a transport that cannot pause keeps
 * delivering, and the stanza that finds the bucket empty has been read
 * already. A pause lasts until the bucket holds a tenth of a second's worth
 * of stanzas (at least one, at most the burst), so a stream at its limit
 * is paused about ten times a second rather than once per stanza.
 *
 * An episode of throttling starts with a pause and lasts while pauses
 * follow each other; a stream that has been read for EPISODE_GAP_MS
 * without needing another pause has caught up, and its episode is over.
 */
#include "shaper.h"

#include <utlist.h>

#include "server.h"
#include "vestnik/log.h"

#define EPISODE_GAP_MS 1000

static vn_shaper *in_episode; /* shapers whose episode may still be going on */
static uint64_t episodes_total, closed_total;

void vn_shaper_init(vn_shaper *sh, const char *what, vn_shaper_pause_fn pause, void *ud)
{
    *sh = (vn_shaper){.pause = pause, .ud = ud, .what = what};
}

static void episode_end(vn_shaper *sh)
{
    if (!sh->throttled_since)
        return;
    sh->throttled_since = 0;
    DL_DELETE(in_episode, sh);
}

void vn_shaper_cleanup(vn_shaper *sh)
{
    if (sh->resume_timer)
        vn_timer_stop(sh->resume_timer);
    sh->resume_timer = NULL;
    sh->paused = false;
    episode_end(sh);
}

static bool episode_over(const vn_shaper *sh, uint64_t now)
{
    return !sh->paused && now > sh->paused_until + EPISODE_GAP_MS;
}

static void on_resume(vn_timer *t, void *ud)
{
    vn_shaper *sh = ud;

    sh->resume_timer = NULL;
    sh->paused = false;
    sh->pause(sh->ud, false); /* may pause again; touch nothing after */
}

bool vn_shaper_stanza(vn_shaper *sh, const vn_shaper_limits *lim, const char *peer)
{
    uint64_t now;
    double target;
    uint64_t wait_ms;

    if (!lim->rate)
        return true;
    now = uv_now(vn_srv.loop);
    if (!sh->started) {
        sh->started = true;
        sh->tokens = lim->burst;
    } else if (now > sh->refilled_ms) {
        sh->tokens += (double)(now - sh->refilled_ms) * lim->rate / 1000.0;
        if (sh->tokens > lim->burst)
            sh->tokens = lim->burst;
    }
    sh->refilled_ms = now;
    sh->tokens -= 1.0;
    if (sh->tokens < -(double)lim->burst)
        sh->tokens = -(double)lim->burst;
    if (sh->tokens >= 1.0 || sh->paused)
        return true;

    if (!sh->throttled_since || episode_over(sh, now)) {
        episode_end(sh);
        sh->throttled_since = now ? now : 1;
        DL_APPEND(in_episode, sh);
        episodes_total++;
        vn_log_info("%s %s: over its stanza rate (%u/s): reading slowed down", sh->what, peer,
                    lim->rate);
    } else if (lim->max_throttle_s && now - sh->throttled_since >= lim->max_throttle_s * 1000ULL) {
        closed_total++;
        vn_log_warn("%s %s: over its stanza rate (%u/s) for %u s without a break: closing",
                    sh->what, peer, lim->rate, lim->max_throttle_s);
        episode_end(sh);
        return false;
    }
    target = lim->burst < lim->rate / 10 ? lim->burst : lim->rate / 10;
    if (target < 1.0)
        target = 1.0;
    wait_ms = (uint64_t)((target - sh->tokens) * 1000.0 / lim->rate) + 1;
    sh->paused_until = now + wait_ms;
    if (sh->pause) {
        sh->paused = true;
        sh->resume_timer = vn_timer_start(wait_ms, 0, on_resume, sh);
        sh->pause(sh->ud, true);
    }
    return true;
}

void vn_shaper_get_stats(vn_shaper_stats *out)
{
    uint64_t now = uv_now(vn_srv.loop);
    vn_shaper *next;

    out->throttled_now = 0;
    for (vn_shaper *sh = in_episode; sh; sh = next) {
        next = sh->next;
        if (episode_over(sh, now))
            episode_end(sh);
        else
            out->throttled_now++;
    }
    out->episodes = episodes_total;
    out->closed = closed_total;
}
