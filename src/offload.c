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
 * lock), then collected (by the scheduler, on its own thread). The task
 * that submitted it owns it again once it is collected
 * (or, if cancelled, while it is still QUEUED: it takes it off the queue).
 * A task that stops waiting for a RUNNING or DONE job abandons it: the
 * scheduler then passes the result to the job's discard function and frees
 * the job when it collects it.
 *
 * The pool is made on the first call and stopped by weave_run's end, after
 * every task has ended: workers finish the job they run (weave_run waits
 * for them), abandoned results are discarded, and the threads are joined.
 */
#include "internal.h"

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
    struct job *next; /* queue or done list */
    weave_fn fn;      /* the call */
    void *arg;
    void *result;                    /* fn's return value, once DONE */
    void (*discard)(void *, void *); /* for an abandoned job's result, or NULL */
    struct weave_task *waiter;       /* scheduler thread only; NULL = abandoned */
    int state;                       /* enum job_state, under the pool's lock */
    bool collected;                  /* scheduler thread only: handed back */
};

struct weave__pool {
    pthread_mutex_t lock;
    pthread_cond_t work;               /* signalled when a job is queued or at stop */
    struct job *head, *tail;           /* queued jobs, FIFO */
    struct job *done_head, *done_tail; /* finished jobs not yet collected */
    pthread_t *threads;                /* [max] */
    unsigned nthreads;                 /* started */
    unsigned idle;                     /* waiting for work */
    unsigned running;                  /* running a call */
    unsigned queued;                   /* calls in the queue */
    unsigned max;                      /* most threads */
    bool stop;                         /* weave_run is ending */
    int efd;                           /* eventfd: the done list became non-empty */
};

static void *worker(void *p)
{
    struct weave__pool *pool = p;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        struct job *j;
        bool was_empty;

        while (!pool->head && !pool->stop) {
            pool->idle++;
            pthread_cond_wait(&pool->work, &pool->lock);
            pool->idle--;
        }
        if (!pool->head)
            break; /* stopping, and the queue is drained */
        j = pool->head;
        pool->head = j->next;
        if (!pool->head)
            pool->tail = NULL;
        pool->queued--;
        pool->running++;
        j->state = RUNNING;
        pthread_mutex_unlock(&pool->lock);

        j->result = j->fn(j->arg);

        pthread_mutex_lock(&pool->lock);
        pool->running--;
        j->state = DONE;
        j->next = NULL;
        tsan_release(j);
        was_empty = pool->done_head == NULL;
        if (pool->done_tail)
            pool->done_tail->next = j;
        else
            pool->done_head = j;
        pool->done_tail = j;
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

/* Start s's pool (no thread yet: they start as calls need them). Returns
 * it, or NULL with *err set to a negative errno. */
static struct weave__pool *pool_new(struct weave__sched *s, int *err)
{
    struct weave__pool *pool = calloc(1, sizeof(*pool));

    if (!pool) {
        *err = -ENOMEM;
        return NULL;
    }
    pool->max = s->offload_threads;
    pool->threads = calloc(pool->max, sizeof(*pool->threads));
    if (!pool->threads) {
        *err = -ENOMEM;
        free(pool);
        return NULL;
    }
    pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pool->efd < 0) {
        *err = errno > 0 ? -errno : -EMFILE;
        free(pool->threads);
        free(pool);
        return NULL;
    }
    /* Input only: reading the eventfd makes it writable again, and an
     * output edge would wake the scheduler for nothing. */
    *err = weave__poller_add(&s->poller, pool->efd, WEAVE__COOKIE_OFFLOAD, 1);
    if (*err < 0) {
        if (*err != -EMFILE && *err != -ENFILE)
            *err = -ENOMEM; /* out of memory or of epoll watches */
        close(pool->efd);
        free(pool->threads);
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    s->pool = pool;
    return pool;
}

/* Start one more worker, with every signal blocked so that signals meant
 * for the process are never handled on a worker. Called with the lock. */
static int start_worker(struct weave__pool *pool)
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
static int submit(struct weave__pool *pool, struct job *j)
{
    bool wake;
    int r = 0;

    pthread_mutex_lock(&pool->lock);
    j->state = QUEUED;
    j->next = NULL;
    if (pool->tail)
        pool->tail->next = j;
    else
        pool->head = j;
    pool->tail = j;
    pool->queued++;
    wake = pool->idle > 0;
    /* A thread not running a call is idle or about to look at the queue
     * again: start one more only when the queue outgrows those. */
    if (pool->queued > pool->nthreads - pool->running && pool->nthreads < pool->max &&
        start_worker(pool) < 0 && pool->nthreads == 0) {
        /* Nobody would ever run it: take it back. With no worker, every
         * earlier submit failed the same way, so j is alone in the queue. */
        pool->head = pool->tail = NULL;
        pool->queued = 0;
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
                   void (*discard)(void *, void *), int64_t deadline)
{
    struct weave__pool *pool = s->pool;
    struct job *j;
    int r, state;

    if (!pool && !(pool = pool_new(s, &r)))
        return r;
    if (!(j = calloc(1, sizeof(*j))))
        return -ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->discard = discard;
    j->waiter = s->current;
    if ((r = submit(pool, j)) < 0) {
        free(j);
        return r;
    }
    s->external++;
    r = weave__park(s, deadline);
    s->external--;
    if (j->collected) {
        /* Finished, even if a cancellation or the deadline came too. */
        tsan_acquire(j);
        if (result)
            *result = j->result;
        free(j);
        return 0;
    }
    pthread_mutex_lock(&s->pool->lock);
    state = j->state;
    if (state == QUEUED) {
        struct job **pp = &s->pool->head, *prev = NULL;
        while (*pp != j) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        *pp = j->next;
        if (s->pool->tail == j)
            s->pool->tail = prev;
        s->pool->queued--;
    }
    pthread_mutex_unlock(&s->pool->lock);
    if (state == QUEUED)
        job_discard(j); /* never ran */
    else
        j->waiter = NULL; /* running or done: collected later */
    return r < 0 ? r : -ECANCELED;
}

void weave__offload_event(struct weave__sched *s)
{
    struct weave__pool *pool = s->pool;
    struct job *j, *next;
    uint64_t count;

    (void)!read(pool->efd, &count, sizeof(count));
    pthread_mutex_lock(&pool->lock);
    j = pool->done_head;
    pool->done_head = pool->done_tail = NULL;
    pthread_mutex_unlock(&pool->lock);
    for (; j; j = next) {
        next = j->next;
        j->collected = true;
        if (j->waiter) {
            weave__wake(s, j->waiter, 0);
        } else {
            tsan_acquire(j);
            job_discard(j);
        }
    }
}

void weave__offload_term(struct weave__sched *s)
{
    struct weave__pool *pool = s->pool;
    struct job *j, *next;

    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stop = true;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    /* Every task has ended, so whatever finished was abandoned. */
    for (j = pool->done_head; j; j = next) {
        next = j->next;
        tsan_acquire(j);
        job_discard(j);
    }
    weave__poller_del(&s->poller, pool->efd);
    close(pool->efd);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
    s->pool = NULL;
}

unsigned weave__offload_threads(const struct weave__sched *s)
{
    return s->pool ? s->pool->nthreads : 0;
}

static int offload(weave_fn fn, void *arg, void **result, void (*discard)(void *, void *))
{
    struct weave__sched *s = weave__tls;

    if (!fn)
        return -EINVAL;
    if (!s)
        return -EPERM;
    if (weave__cancelled(s)) {
        /* ECANCELED always means that discard has (or will have) the arg,
         * so that the caller never has to guess who frees it. */
        if (discard)
            discard(NULL, arg);
        return -ECANCELED;
    }
    return weave__offload(s, fn, arg, result, discard, WEAVE__NO_DEADLINE);
}

int weave_offload(weave_fn fn, void *arg, void **result)
{
    return weave__ret(offload(fn, arg, result, NULL));
}

int weave_offload_ex(weave_fn fn, void *arg, void **result,
                     void (*discard)(void *result, void *arg))
{
    return weave__ret(offload(fn, arg, result, discard));
}
