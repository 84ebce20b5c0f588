/*
 * offload.c - a bounded pool of worker threads for blocking calls.
 *
 * A task hands a call (fn, arg) to the pool and parks; a worker runs it,
 * puts it on the done list and, if that list was empty, writes the pool's
 * eventfd. The eventfd is registered with the scheduler's poller, so the
 * scheduler learns of finished calls in its ordinary poll step, on its own
 * thread, and wakes their tasks there: nothing but the queue, the done list
 * and the eventfd is shared between threads, and the queue and the list are
 * guarded by one mutex.
 *
 * A job's life: QUEUED, then RUNNING and DONE (set by the worker, under the
 * lock), then collected (by the scheduler, on its own thread), which wakes
 * the task waiting in the job's queue. The task that submitted it owns it
 * again once it is collected (or, if it stopped waiting while the job was
 * still QUEUED: it takes it off the queue). A task that stops waiting for
 * a RUNNING or DONE job abandons it: the scheduler then passes the result
 * to the job's discard function and frees the job when it collects it.
 *
 * The pool belongs to the scheduler (weave__offload_init/term); its
 * eventfd carries a watcher, which the poll step calls like any other.
 *
 * The pool is made on the first call and stopped by weave_run's end, after
 * every task has ended: workers finish the job they run (weave_run waits
 * for them), abandoned results are discarded, and the threads are joined.
 */
#include "base/common.h"
#include "core/scope.h"
#include "core/wait.h"
#include "io/offload.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifdef WEAVE_TSAN
#include <sanitizer/tsan_interface.h>
/* The mutex already orders a job's writes on the worker before its reads on
 * the scheduler; these state the handoff itself, which the eventfd carries
 * and which TSan cannot see. */
#define tsan_release(p) __tsan_release(p)
#define tsan_acquire(p) __tsan_acquire(p)
#else
#define tsan_release(p) ((void)(p))
#define tsan_acquire(p) ((void)(p))
#endif

enum job_state { QUEUED, RUNNING, DONE };

struct job {
    struct weave_link link; /* the queue or the done list, under the lock */
    weave_fn fn;            /* the call */
    void *arg;
    void *result;              /* fn's return value, once DONE */
    weave_discard_fn discard;  /* for an abandoned job's result, or NULL */
    struct weave_waitq waiter; /* scheduler thread only: the task waiting */
    int state;                 /* enum job_state, under the lock */
    bool collected;            /* scheduler thread only: handed back */
    bool abandoned;            /* scheduler thread only: nobody will take it */
};

struct weave__offload {
    struct weave__watcher watcher; /* the eventfd's, for the poll step */
    pthread_mutex_t lock;
    pthread_cond_t work;    /* signalled when a job is queued or at stop */
    struct weave_link jobs; /* queued jobs, FIFO */
    struct weave_link done; /* finished jobs not yet collected */
    pthread_t *threads;     /* [max], once started */
    unsigned nthreads;      /* started */
    unsigned idle;          /* waiting for work */
    unsigned running;       /* running a call */
    unsigned queued;        /* calls in the queue */
    unsigned max;           /* most threads */
    bool stop;              /* weave_run is ending */
    int efd;                /* eventfd: the done list became non-empty; -1 before */
    uint64_t waiters;       /* tasks waiting for a call */
};

static void *worker(void *p)
{
    struct weave__offload *pool = p;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        struct job *j;
        bool was_empty;

        while (weave__list_empty(&pool->jobs) && !pool->stop) {
            pool->idle++;
            pthread_cond_wait(&pool->work, &pool->lock);
            pool->idle--;
        }
        if (weave__list_empty(&pool->jobs))
            break; /* stopping, and the queue is drained */
        j = weave__container_of(weave__list_pop(&pool->jobs), struct job, link);
        pool->queued--;
        pool->running++;
        j->state = RUNNING;
        pthread_mutex_unlock(&pool->lock);

        j->result = j->fn(j->arg);

        pthread_mutex_lock(&pool->lock);
        pool->running--;
        j->state = DONE;
        tsan_release(j);
        was_empty = weave__list_empty(&pool->done);
        weave__list_push(&pool->done, &j->link);
        pthread_mutex_unlock(&pool->lock);
        if (was_empty) {
            uint64_t one = 1;
            /* Cannot fail short of a bug: the counter is far from its
             * limit because the scheduler reads it on every event. */
            (void)!write(pool->efd, &one, sizeof(one));
        }
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static void pool_event(struct weave__sched *s, struct weave__watcher *w, int mask);

int weave__offload_init(struct weave__sched *s, unsigned max_threads)
{
    struct weave__offload *pool = calloc(1, sizeof(*pool));

    if (!pool)
        return -ENOMEM;
    pool->max = max_threads;
    pool->efd = -1;
    pool->watcher.fn = pool_event;
    weave__list_init(&pool->jobs);
    weave__list_init(&pool->done);
    s->offload = pool;
    return 0;
}

/* Make the pool's eventfd and thread table on the first call. Returns 0
 * or -errno. */
static int pool_start(struct weave__sched *s, struct weave__offload *pool)
{
    int r;

    if (pool->efd >= 0)
        return 0;
    if (!pool->threads && !(pool->threads = calloc(pool->max, sizeof(*pool->threads))))
        return -ENOMEM;
    pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pool->efd < 0)
        return errno > 0 ? -errno : -EMFILE;
    /* Input only: reading the eventfd makes it writable again, and an
     * output edge would wake the scheduler for nothing. */
    r = weave__poller_add(&s->poller, pool->efd, &pool->watcher, 1);
    if (r < 0) {
        close(pool->efd);
        pool->efd = -1;
        return r == -EMFILE || r == -ENFILE ? r : -ENOMEM; /* memory, or epoll watches */
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    return 0;
}

/* Start one more worker, with every signal blocked so that signals meant
 * for the process are never handled on a worker. Called with the lock. */
static int start_worker(struct weave__offload *pool)
{
    sigset_t all, old;
    int r;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&pool->threads[pool->nthreads], NULL, worker, pool);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        return -r;
    /* Named here, not by the thread itself, so that it carries its name
     * (for top and gdb) from the moment it exists. */
    (void)pthread_setname_np(pool->threads[pool->nthreads], "weave-offload");
    pool->nthreads++;
    return 0;
}

/* Queue j, starting a worker if none is idle. Returns 0, or -EAGAIN if no
 * worker exists and none could be started. */
static int submit(struct weave__offload *pool, struct job *j)
{
    bool wake;
    int r = 0;

    pthread_mutex_lock(&pool->lock);
    j->state = QUEUED;
    weave__list_push(&pool->jobs, &j->link);
    pool->queued++;
    wake = pool->idle > 0;
    /* A thread not running a call is idle or about to look at the queue
     * again: start one more only when the queue outgrows those. */
    if (pool->queued > pool->nthreads - pool->running && pool->nthreads < pool->max &&
        start_worker(pool) < 0 && pool->nthreads == 0) {
        /* Nobody would ever run it: take it back. */
        weave__list_del(&j->link);
        pool->queued--;
        r = -EAGAIN;
    }
    pthread_mutex_unlock(&pool->lock);
    /* Signalled after the unlock, so the woken worker does not block on the
     * mutex we still hold. */
    if (wake)
        pthread_cond_signal(&pool->work);
    return r;
}

static void job_discard(struct job *j)
{
    if (j->discard)
        j->discard(j->state == QUEUED ? NULL : j->result, j->arg);
    free(j);
}

int weave__offload(struct weave__sched *s, weave_fn fn, void *arg, void **result,
                   weave_discard_fn discard, int64_t timeout, struct weave_waitq *also)
{
    struct weave__offload *pool = s->offload;
    struct weave__waiter w[2];
    struct weave__wait wait;
    struct job *j;
    int r, state;

    if ((r = pool_start(s, pool)) < 0)
        return r;
    if (!(j = calloc(1, sizeof(*j))))
        return -ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->discard = discard;
    weave__queue_init(&j->waiter);
    if ((r = submit(pool, j)) < 0) {
        free(j);
        return r;
    }
    weave__queue_push(s, &j->waiter, &w[0], NULL);
    if (also)
        weave__queue_push(s, also, &w[1], NULL);
    weave__wait_init(&wait, w, also ? 2 : 1, timeout, WEAVE_WAIT_OFFLOAD, j);
    pool->waiters++;
    s->io_waiters++;
    r = weave__park(s, &wait);
    s->io_waiters--;
    pool->waiters--;
    if (j->collected) {
        /* Finished, even if a cancellation or the deadline came too. */
        tsan_acquire(j);
        if (result)
            *result = j->result;
        free(j);
        return 0;
    }
    pthread_mutex_lock(&pool->lock);
    state = j->state;
    if (state == QUEUED) {
        weave__list_del(&j->link);
        pool->queued--;
    }
    pthread_mutex_unlock(&pool->lock);
    if (state == QUEUED)
        job_discard(j); /* never ran */
    else
        j->abandoned = true; /* running or done: discarded when collected */
    r = weave__why_errno(r);
    return r < 0 ? r : -EBADF; /* an event on `also` means its fd is gone */
}

/* The eventfd fired: hand finished calls back to their tasks. */
static void pool_event(struct weave__sched *s, struct weave__watcher *w, int mask)
{
    struct weave__offload *pool = weave__container_of(w, struct weave__offload, watcher);
    struct weave_link done, *n;
    uint64_t count;

    (void)mask;
    (void)!read(pool->efd, &count, sizeof(count));
    weave__list_init(&done);
    pthread_mutex_lock(&pool->lock);
    while ((n = weave__list_pop(&pool->done)) != NULL)
        weave__list_push(&done, n);
    pthread_mutex_unlock(&pool->lock);
    while ((n = weave__list_pop(&done)) != NULL) {
        struct job *j = weave__container_of(n, struct job, link);

        j->collected = true;
        if (j->abandoned) {
            tsan_acquire(j);
            job_discard(j);
        } else {
            weave__queue_wake_all(s, &j->waiter, 0);
        }
    }
}

void weave__offload_term(struct weave__sched *s)
{
    struct weave__offload *pool = s->offload;
    struct weave_link *n;

    if (!pool)
        return;
    if (pool->efd >= 0) {
        pthread_mutex_lock(&pool->lock);
        pool->stop = true;
        pthread_cond_broadcast(&pool->work);
        pthread_mutex_unlock(&pool->lock);
        for (unsigned i = 0; i < pool->nthreads; i++)
            pthread_join(pool->threads[i], NULL);
        /* Every task has ended, so whatever finished was abandoned. */
        while ((n = weave__list_pop(&pool->done)) != NULL) {
            struct job *j = weave__container_of(n, struct job, link);
            tsan_acquire(j);
            job_discard(j);
        }
        weave__poller_del(&s->poller, pool->efd);
        close(pool->efd);
        pthread_cond_destroy(&pool->work);
        pthread_mutex_destroy(&pool->lock);
    }
    free(pool->threads);
    free(pool);
    s->offload = NULL;
}

void weave__offload_stats(const struct weave__sched *s, weave_stats *st)
{
    st->offload_waiters = s->offload->waiters;
    st->offload_threads = s->offload->nthreads;
}

static int offload(weave_fn fn, void *arg, void **result, weave_discard_fn discard)
{
    struct weave__sched *s = weave__tls;
    int r;

    if (!fn)
        return -EINVAL;
    if (!s)
        return -EPERM;
    if ((r = weave__checkpoint(s)) < 0) {
        /* ECANCELED (and ETIMEDOUT) always mean that discard has (or will
         * have) the arg, so that the caller never has to guess who frees
         * it. */
        if (discard)
            discard(NULL, arg);
        return r;
    }
    return weave__offload(s, fn, arg, result, discard, WEAVE__NO_DEADLINE, NULL);
}

WEAVE__ENTRY int weave_offload(weave_fn fn, void *arg, void **result)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(offload(fn, arg, result, NULL));
}

WEAVE__ENTRY int weave_offload_with(weave_fn fn, void *arg, void **result, weave_discard_fn discard)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(offload(fn, arg, result, discard));
}

WEAVE__ENTRY int weave_offload_ex(weave_fn fn, void *arg, void **result, weave_discard_fn discard)
{
    WEAVE__SCOPES_CHECK();
    return weave_offload_with(fn, arg, result, discard);
}
