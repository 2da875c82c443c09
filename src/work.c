/*
 * work.c - jobs on libuv's worker threads (vn_work_queue in module.h).
 *
 * The work function runs on a worker thread; the done function runs
 * afterwards on the loop thread, where it may use the module API again.
 *
 * Jobs are never cancelled, so a module's jobs may outlive its unload: the
 * pending ones are kept in a list, and before a module is unloaded
 * vn_work_drain_module runs the loop until none of its code is left to run
 * (a webhook POST, a file written for an upload).
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "vestnik/module.h"
#include "work.h"

typedef struct work_job {
    uv_work_t req;
    vn_work_fn work;
    vn_work_fn done;
    void *ud;
    struct work_job *prev, *next;
} work_job;

static work_job *pending; /* queued or running, done not yet called */

static void job_run(uv_work_t *req)
{
    work_job *job = req->data;

    job->work(job->ud);
}

/* Jobs are never cancelled, so status is always 0 here. */
static void job_done(uv_work_t *req, int status)
{
    work_job *job = req->data;

    if (job->prev)
        job->prev->next = job->next;
    else
        pending = job->next;
    if (job->next)
        job->next->prev = job->prev;
    if (job->done)
        job->done(job->ud);
    free(job);
}

void vn_work_queue(vn_work_fn work, vn_work_fn done, void *ud)
{
    work_job *job = vn_alloc(sizeof *job);
    int rc;

    job->work = work;
    job->done = done;
    job->ud = ud;
    job->req.data = job;
    job->prev = NULL;
    job->next = pending;
    if (pending)
        pending->prev = job;
    pending = job;
    rc = uv_queue_work(vn_srv.loop, &job->req, job_run, job_done);
    if (rc != 0) {
        /* Only a NULL work function makes libuv refuse: a programming error. */
        vn_log_error("vn_work_queue: %s", uv_strerror(rc));
        abort();
    }
}

static bool in_module(vn_work_fn fn, const void *module_base)
{
    Dl_info info;
    void *addr;

    if (!fn)
        return false;
    /* A function pointer as an address: what dladdr takes (POSIX allows it). */
    memcpy(&addr, &fn, sizeof addr);
    return dladdr(addr, &info) && info.dli_fbase == module_base;
}

static bool module_has_jobs(const void *module_base)
{
    for (const work_job *job = pending; job; job = job->next)
        if (in_module(job->work, module_base) || in_module(job->done, module_base))
            return true;
    return false;
}

void vn_work_drain_module(const void *module_base)
{
    if (!vn_srv.loop || !module_has_jobs(module_base))
        return;
    vn_log_info("waiting for the worker jobs of a module being unloaded");
    while (module_has_jobs(module_base))
        uv_run(vn_srv.loop, UV_RUN_ONCE);
}
