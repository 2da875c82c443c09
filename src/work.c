/*
 * work.c - jobs on libuv's worker threads (vn_work_queue in module.h).
 *
 * The work function runs on a worker thread; the done function runs
 * afterwards on the loop thread, where it may use the module API again.
 */
#include <stdlib.h>

#include "server.h"
#include "vestnik/module.h"

typedef struct work_job {
    uv_work_t req;
    vn_work_fn work;
    vn_work_fn done;
    void *ud;
} work_job;

static void job_run(uv_work_t *req)
{
    work_job *job = req->data;

    job->work(job->ud);
}

/* Jobs are never cancelled, so status is always 0 here. */
static void job_done(uv_work_t *req, int status)
{
    work_job *job = req->data;

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
    rc = uv_queue_work(vn_srv.loop, &job->req, job_run, job_done);
    if (rc != 0) {
        /* Only a NULL work function makes libuv refuse: a programming error. */
        vn_log_error("vn_work_queue: %s", uv_strerror(rc));
        abort();
    }
}
