/*
 * store_batch.c - group commit: the writes of a loop turn become one
 * batch, a writer thread makes it durable, and the callbacks waiting for
 * it run back on the loop.
 *
 * Why a writer thread that owns the write transactions, rather than
 * committing on the loop without sync and leaving mdb_env_sync to a sync
 * thread: LMDB writes a commit's data pages and then its meta page, and
 * only a synced commit orders the two on disk. With MDB_NOSYNC commits
 * the kernel may write a meta page before the pages it points to, and a
 * power loss (not a kill -9) then leaves a corrupt environment, losing
 * what was acknowledged long before. An LMDB write transaction must also
 * begin and end on one thread. So the writer thread begins, fills and
 * commits each batch with LMDB's ordinary durable commit; the loop never
 * touches a write transaction and never waits for the disk, and the
 * pending view (store_pending.c) gives it read-your-writes meanwhile.
 *
 * At most one batch is with the writer. Writes issued while it commits
 * gather in the next batch, which goes as soon as the writer is done, so
 * the batch size follows the load: one write per commit when idle, every
 * write of a fsync's duration under load. A batch with the writer is
 * immutable; the loop keeps reading its ops for the pending view until the
 * result is back. Sequence numbers name batches: the open batch is
 * open_seq, every batch up to durable_seq is on disk.
 *
 * Loop handles: a prepare handle hands the open batch over at the end of
 * each loop turn (after every callback of the turn, before the loop
 * blocks) and runs callbacks that were due already; an idle handle keeps
 * the loop from blocking while it has something to do; an async handle
 * brings the writer's result back. All three are unreferenced: the store
 * alone does not keep the loop running, and vn_store_flush drains it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store_backend.h"
#include "store_pending.h"
#include "vestnik/log.h"

struct vn_store_waiter {
    vn_store_durable_cb cb;
    void *arg;
    uint64_t from;   /* durable_seq when registered */
    uint64_t target; /* the batch holding every write issued before */
    struct vn_store_waiter *prev, *next;
};

struct vn_store_batcher {
    vn_store *s;
    uv_prepare_t prepare;
    uv_idle_t idle;
    uv_async_t async;
    int open_handles;

    /* loop thread */
    vn_store_op *open_head, *open_tail;
    uint64_t open_seq;
    vn_store_op *inflight;
    uint64_t inflight_seq;
    uint64_t durable_seq, failed_seq;
    vn_store_waiter *waiters, *waiters_tail; /* by target */

    /* shared with the writer, under mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    vn_store_op *submitted;
    bool have_result, stop;
    int result;
};

static void *writer_main(void *arg)
{
    vn_store_batcher *b = arg;

    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->submitted && !b->stop)
            pthread_cond_wait(&b->work, &b->mu);
        if (!b->submitted)
            break;
        vn_store_op *ops = b->submitted;
        pthread_mutex_unlock(&b->mu);
        int rc = b->s->ops->apply(b->s->impl, ops);
        pthread_mutex_lock(&b->mu);
        b->submitted = NULL;
        b->result = rc;
        b->have_result = true;
        pthread_cond_signal(&b->done);
        uv_async_send(&b->async);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Only its being active matters: the loop does not block. */
static void on_idle(uv_idle_t *h)
{
    (void)h;
}

static void wake(vn_store_batcher *b)
{
    if (!uv_is_active((uv_handle_t *)&b->idle))
        uv_idle_start(&b->idle, on_idle);
}

static void submit(vn_store_batcher *b)
{
    if (b->inflight || !b->open_head)
        return;
    b->inflight = b->open_head;
    b->inflight_seq = b->open_seq++;
    b->open_head = b->open_tail = NULL;
    pthread_mutex_lock(&b->mu);
    b->submitted = b->inflight;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->mu);
}

static void unlink_waiter(vn_store_batcher *b, vn_store_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        b->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        b->waiters_tail = w->prev;
}

/* In registration order; a callback may register or cancel others. */
static void run_due_waiters(vn_store_batcher *b)
{
    vn_store_waiter *w;

    while ((w = b->waiters) && w->target <= b->durable_seq) {
        unlink_waiter(b, w);
        bool failed = b->failed_seq > w->from && b->failed_seq <= w->target;
        w->cb(failed ? VN_STORE_ERROR : VN_STORE_OK, w->arg);
        free(w);
    }
}

/* The writer's result, if there is one: the batch is done. */
static void complete(vn_store_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    bool have = b->have_result;
    int rc = b->result;
    b->have_result = false;
    pthread_mutex_unlock(&b->mu);
    if (!have)
        return;

    vn_store *s = b->s;
    vn_store_op *ops = b->inflight;
    uint64_t seq = b->inflight_seq;
    b->inflight = NULL;
    if (rc != VN_STORE_OK) {
        b->failed_seq = seq;
        vn_log_error("store: a batch of writes failed; what waited for it is told so");
    }
    if (s->ops->refresh(s->impl) != VN_STORE_OK)
        vn_log_error("store: cannot renew the read snapshot");
    vn_pending_drop(s->pending, seq);
    while (ops) {
        vn_store_op *next = ops->next;
        vn_store_op_free(ops);
        ops = next;
    }
    b->durable_seq = seq;
    run_due_waiters(b);
    submit(b);
}

static void on_async(uv_async_t *h)
{
    complete(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
    vn_store_batcher *b = h->data;

    uv_idle_stop(&b->idle);
    submit(b);
    run_due_waiters(b);
}

uint64_t vn_store_batch_seq(vn_store *s)
{
    return s->batcher->open_seq;
}

void vn_store_batch_queue(vn_store *s, vn_store_op *op)
{
    vn_store_batcher *b = s->batcher;

    op->next = NULL;
    if (b->open_tail)
        b->open_tail->next = op;
    else
        b->open_head = op;
    b->open_tail = op;
    if (!b->inflight)
        wake(b);
}

vn_store_waiter *vn_store_when_durable(vn_store *s, vn_store_durable_cb cb, void *arg)
{
    vn_store_batcher *b = s ? s->batcher : NULL;

    if (!b) {
        cb(s ? VN_STORE_OK : VN_STORE_ERROR, arg);
        return NULL;
    }
    vn_store_waiter *w = vn_alloc(sizeof *w);
    w->cb = cb;
    w->arg = arg;
    w->from = b->durable_seq;
    w->target = b->open_head ? b->open_seq : b->inflight ? b->inflight_seq : b->durable_seq;
    w->prev = b->waiters_tail;
    if (b->waiters_tail)
        b->waiters_tail->next = w;
    else
        b->waiters = w;
    b->waiters_tail = w;
    if (w->target <= b->durable_seq)
        wake(b);
    return w;
}

void vn_store_cancel(vn_store *s, vn_store_waiter *w)
{
    if (!w || !s || !s->batcher)
        return;
    unlink_waiter(s->batcher, w);
    free(w);
}

void vn_store_flush(vn_store *s)
{
    vn_store_batcher *b = s ? s->batcher : NULL;

    if (!b)
        return;
    do {
        submit(b);
        while (b->inflight) {
            pthread_mutex_lock(&b->mu);
            while (!b->have_result)
                pthread_cond_wait(&b->done, &b->mu);
            pthread_mutex_unlock(&b->mu);
            complete(b); /* hands the next batch over, if any */
        }
        run_due_waiters(b); /* which may write again */
    } while (b->open_head);
}

static void on_handle_closed(uv_handle_t *h)
{
    vn_store_batcher *b = h->data;

    if (--b->open_handles > 0)
        return;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->work);
    pthread_cond_destroy(&b->done);
    free(b);
}

/* The batcher is freed once the loop has run the close callbacks. */
static void close_handles(vn_store_batcher *b)
{
    uv_close((uv_handle_t *)&b->prepare, on_handle_closed);
    uv_close((uv_handle_t *)&b->idle, on_handle_closed);
    uv_close((uv_handle_t *)&b->async, on_handle_closed);
}

vn_store_batcher *vn_store_batcher_new(vn_store *s, uv_loop_t *loop, int *err)
{
    vn_store_batcher *b = vn_alloc(sizeof *b);

    b->s = s;
    b->open_seq = 1;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->work, NULL);
    pthread_cond_init(&b->done, NULL);
    *err = uv_async_init(loop, &b->async, on_async);
    if (*err) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->work);
        pthread_cond_destroy(&b->done);
        free(b);
        return NULL;
    }
    uv_prepare_init(loop, &b->prepare);
    uv_idle_init(loop, &b->idle);
    b->async.data = b->prepare.data = b->idle.data = b;
    b->open_handles = 3;
    uv_unref((uv_handle_t *)&b->async);
    uv_unref((uv_handle_t *)&b->prepare);
    uv_unref((uv_handle_t *)&b->idle);
    uv_prepare_start(&b->prepare, on_prepare);
    *err = -pthread_create(&b->thread, NULL, writer_main, b);
    if (*err) {
        close_handles(b);
        return NULL;
    }
    pthread_setname_np(b->thread, "vn-store"); /* for top -H and perf */
    return b;
}

/* Flushes, stops the writer and closes the handles. */
void vn_store_batcher_free(vn_store *s)
{
    vn_store_batcher *b = s->batcher;

    vn_store_flush(s);
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    s->batcher = NULL;
    close_handles(b);
}
