/*
 * xthread_bench.c - what crossing threads costs: posts, the wake-up of an
 * idle scheduler, shared channels and weave_call, each beside a floor
 * measured in the same run.
 *
 * The figures, and what each is set beside:
 *
 *   post, 1 and 3 posting threads
 *        plain threads call weave_post as fast as they can, --posts tasks
 *        in all (split among them), into one scheduler on a thread of its
 *        own whose tasks do nothing but count; posts/s from the release
 *        of the posters to the end of the last task. Beside it: the same
 *        tasks made by weave_spawn on that scheduler itself (a task spawns
 *        them in batches of 256 and yields), so the difference is what
 *        crossing threads costs. The posters' own cost per call (ns) is
 *        printed as well.
 *   post-to-start latency, p50 and p99
 *        a plain thread posts a task and notes the time; the task notes
 *        the time it starts (CLOCK_MONOTONIC, the clock weave_now_us reads,
 *        in ns); the thread waits until it has started, then --gap-us
 *        more, so that the scheduler is asleep in epoll_wait before each
 *        post. Beside it: a plain thread asleep in epoll_wait on an eventfd
 *        that the other writes, timed the same way: the kernel's wake-up,
 *        which a post to an idle scheduler cannot beat.
 *   shared channel, 2 schedulers (rendezvous, and buffered of --capacity)
 *        a task on one scheduler sends --xmessages 8-byte elements to a
 *        task on another (weave_run_threads: two threads); ns per message,
 *        timed by the receiver from its first element to its last. Beside
 *        it: two plain threads passing the same elements through a mutex
 *        and two condition variables (a ring of the same capacity; for
 *        the rendezvous, a sender that waits until its element is taken).
 *        bench/peers/run.sh prints Go's channels between two goroutines
 *        (GOMAXPROCS=2) next to these.
 *   shared channel, 1 scheduler (rendezvous, buffered)
 *        the same between two tasks of one scheduler, --messages elements;
 *        beside it, a local channel of the same kind in the same run. The
 *        ratio shared / local is the figure: the goal is <= 1.5x.
 *   weave_call round trip, from a plain thread and from a task of another
 *        scheduler, into a scheduler asleep between calls; --calls calls
 *        of a function that returns its argument; ns per call. Beside it:
 *        a round trip between two plain threads through two eventfds (two
 *        wake-ups of a sleeping thread, the least such a call needs).
 *
 * Each repetition measures everything once, in an order that rotates from
 * one repetition to the next; the first repetition warms up and is not
 * counted. The table gives the median and the best repetition of each
 * figure, and the median of the per-repetition ratios to the figure beside
 * it. Threads are not pinned: on a machine with fewer cores than threads
 * (3 posters and a scheduler on 2 cores), they share them as the kernel
 * decides, which is part of what is measured.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "weave.h"

#define MAX_COUNT     100000000u
#define MAX_SAMPLES   1000000u
#define MAX_GAP_US    1000000u
#define MAX_REPS      1000u
#define MAX_CAPACITY  1000000u
#define SPAWN_BATCH   256  /* the local floor spawns this many, then yields */
#define MAX_POSTERS   3    /* the most posting threads of any figure */
#define GOAL_SHARED_1 1.50 /* shared / local channel within one scheduler */

/* Every figure; some are measured together (the p50 and p99 of one set of
 * samples, the four channels of one scheduler). */
enum fig {
    POST1,        /* posts/s, 1 posting thread */
    POST3,        /* posts/s, 3 posting threads */
    POST1_CALL,   /* ns per weave_post call, poster side, 1 thread */
    POST3_CALL,   /* the same, 3 threads (each) */
    SPAWN,        /* tasks/s by weave_spawn on the scheduler itself */
    LAT_P50,      /* post-to-start, us */
    LAT_P99,      /* */
    EFD_P50,      /* eventfd wake-up of a thread in epoll_wait, us */
    EFD_P99,      /* */
    X_RDV,        /* shared rendezvous chan, 2 schedulers, ns/msg */
    X_BUF,        /* shared buffered chan, 2 schedulers */
    PT_RDV,       /* mutex+cond handoff, 2 threads */
    PT_BUF,       /* mutex+cond ring, 2 threads */
    L_RDV_SHARED, /* shared rendezvous chan, 1 scheduler */
    L_RDV_LOCAL,  /* local rendezvous chan, 1 scheduler */
    L_BUF_SHARED, /* shared buffered chan, 1 scheduler */
    L_BUF_LOCAL,  /* local buffered chan, 1 scheduler */
    CALL_THREAD,  /* weave_call from a plain thread, ns */
    CALL_TASK,    /* weave_call from another scheduler's task */
    EFD_PP,       /* eventfd ping-pong between two plain threads, ns */
    NFIG
};

static const char *const fig_key[NFIG] = {
    "post_1_thread_per_s",    "post_3_threads_per_s",  "post_call_1_thread_ns",
    "post_call_3_threads_ns", "spawn_local_per_s",     "post_to_start_p50_us",
    "post_to_start_p99_us",   "eventfd_wake_p50_us",   "eventfd_wake_p99_us",
    "shared_rdv_2_sched_ns",  "shared_buf_2_sched_ns", "pthread_handoff_ns",
    "pthread_ring_ns",        "shared_rdv_1_sched_ns", "local_rdv_1_sched_ns",
    "shared_buf_1_sched_ns",  "local_buf_1_sched_ns",  "call_from_thread_ns",
    "call_from_task_ns",      "eventfd_pingpong_ns"};

/* Rates are better higher; every other figure lower. */
static bool is_rate(int f)
{
    return f == POST1 || f == POST3 || f == SPAWN;
}

struct options {
    uint64_t posts;     /* tasks posted per post figure, all posters together */
    uint64_t window;    /* posts in flight at most (posted, not yet run); 0: no limit */
    uint64_t samples;   /* latency samples per repetition */
    uint64_t gap_us;    /* pause after a sample's task started */
    uint64_t messages;  /* per channel figure within one scheduler */
    uint64_t xmessages; /* per channel figure across threads */
    uint64_t calls;     /* per weave_call figure */
    uint64_t capacity;  /* of the buffered channels and the ring */
    uint64_t reps;
    int only; /* ONLY_ALL, or the one group of figures to measure */
    bool json;
};

/* --only: a group of figures, each measured with the figures beside it. */
enum { ONLY_ALL, ONLY_POST, ONLY_LATENCY, ONLY_XCHAN, ONLY_CHAN, ONLY_CALL };
static const char *const only_names[] = {"all", "post", "latency", "xchan", "chan", "call", NULL};

static void usage(FILE *f)
{
    (void)fprintf(
        f,
        "usage: xthread_bench [--posts N] [--samples N] [--gap-us U] [--messages N]\n"
        "                     [--xmessages N] [--calls N] [--capacity C] [--repetitions R] "
        "[--json]\n"
        "  --posts N        tasks posted per post figure, posters together (default 200000)\n"
        "  --window W       posts in flight at most, posted but not yet run (default 64;\n"
        "                   0: no limit, every post may be queued at once)\n"
        "  --samples N      post-to-start samples per repetition (default 400)\n"
        "  --gap-us U       pause between samples once the last one started (default 1000)\n"
        "  --messages N     elements per channel figure within one scheduler (default 200000)\n"
        "  --xmessages N    elements per channel figure across threads (default 50000)\n"
        "  --calls N        weave_call round trips per figure (default 10000)\n"
        "  --capacity C     of the buffered channels and the ring (default 64)\n"
        "  --repetitions R  counted repetitions, after one warm-up (default 5)\n"
        "  --only G         measure one group: post, latency, xchan (2 schedulers), chan\n"
        "                   (1 scheduler) or call (default all); the others print as 0\n"
        "  --json           one JSON object instead of the table\n"
        "  (counts 1..%u, samples 1..%u, gap 0..%u us, capacity 1..%u, repetitions 1..%u)\n",
        MAX_COUNT, MAX_SAMPLES, MAX_GAP_US, MAX_CAPACITY, MAX_REPS);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    const struct bench_opt opts[] = {
        {.name = "--json", .flag = &o->json},
        {.name = "--posts",
         .u64 = &o->posts,
         .min = 3,
         .max = MAX_COUNT,
         .bad = "bad --posts '%s'"},
        {.name = "--window",
         .u64 = &o->window,
         .min = 0,
         .max = MAX_COUNT,
         .zero_ok = true,
         .bad = "bad --window '%s'"},
        {.name = "--samples",
         .u64 = &o->samples,
         .min = 1,
         .max = MAX_SAMPLES,
         .bad = "bad --samples '%s'"},
        {.name = "--gap-us",
         .u64 = &o->gap_us,
         .min = 0,
         .max = MAX_GAP_US,
         .zero_ok = true,
         .bad = "bad --gap-us '%s'"},
        {.name = "--messages",
         .u64 = &o->messages,
         .min = 2,
         .max = MAX_COUNT,
         .bad = "bad --messages '%s'"},
        {.name = "--xmessages",
         .u64 = &o->xmessages,
         .min = 2,
         .max = MAX_COUNT,
         .bad = "bad --xmessages '%s'"},
        {.name = "--calls",
         .u64 = &o->calls,
         .min = 1,
         .max = MAX_COUNT,
         .bad = "bad --calls '%s'"},
        {.name = "--capacity",
         .u64 = &o->capacity,
         .min = 1,
         .max = MAX_CAPACITY,
         .bad = "bad --capacity '%s'"},
        {.name = "--only",
         .choice = &o->only,
         .choices = only_names,
         .bad = "--only wants all, post, latency, xchan, chan or call, not '%s'"},
        {.name = "--repetitions",
         .u64 = &o->reps,
         .min = 1,
         .max = MAX_REPS,
         .bad = "bad --repetitions '%s'"},
    };

    o->posts = 200000;
    o->window = 64;
    o->samples = 400;
    o->gap_us = 1000;
    o->messages = 200000;
    o->xmessages = 50000;
    o->calls = 10000;
    o->capacity = 64;
    o->reps = 5;
    o->only = ONLY_ALL;
    o->json = false;
    bench_parse_args(argc, argv, "xthread_bench", usage, opts, sizeof(opts) / sizeof(opts[0]),
                     NULL);
}

/* ---- failures ------------------------------------------------------------- */

/* The first failure of a repetition: what failed, and its errno. Written
 * by whichever thread fails first. */
static struct {
    pthread_mutex_t mu;
    int err;
    const char *what;
} failure = {PTHREAD_MUTEX_INITIALIZER, 0, NULL};

static void fail(const char *what, int err)
{
    pthread_mutex_lock(&failure.mu);
    if (!failure.err) {
        failure.err = err ? err : EIO;
        failure.what = what;
    }
    pthread_mutex_unlock(&failure.mu);
}

static bool failed(void)
{
    bool f;

    pthread_mutex_lock(&failure.mu);
    f = failure.err != 0;
    pthread_mutex_unlock(&failure.mu);
    return f;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

/* ---- a scheduler on a thread of its own ---------------------------------- */

/* A scheduler run on its own thread, its main task waiting for done, which
 * its tasks set (a posted task, when the stop comes from outside). */
struct remote {
    weave_sched *s;
    pthread_t thread;
    weave_event done; /* used by s's tasks only */
    int rc, err;      /* weave_sched_run's */
};

static void *remote_main(void *arg)
{
    struct remote *r = arg;

    if (weave_event_wait(&r->done) != 0)
        fail("weave_event_wait", errno);
    return NULL;
}

static void *remote_thread(void *arg)
{
    struct remote *r = arg;

    r->rc = weave_sched_run(r->s, remote_main, r, NULL);
    r->err = errno;
    return NULL;
}

static void *noop(void *arg)
{
    return arg;
}

/* Start r; it has started (its main waits) when this returns 0. */
static int remote_start(struct remote *r)
{
    int e;

    memset(r, 0, sizeof(*r));
    if (weave_event_init(&r->done) != 0 || !(r->s = weave_sched_new(NULL))) {
        fail("weave_sched_new", errno);
        return -1;
    }
    if ((e = pthread_create(&r->thread, NULL, remote_thread, r)) != 0) {
        fail("pthread_create", e);
        (void)weave_sched_free(r->s);
        return -1;
    }
    /* A call waits until the scheduler runs, so that nothing measured
     * includes its start. */
    if (weave_call(r->s, noop, NULL, NULL) != 0)
        fail("weave_call (start)", errno);
    return 0;
}

static void *set_done(void *arg)
{
    struct remote *r = arg;

    (void)weave_event_set(&r->done);
    return NULL;
}

/* Stop r (its main returns) and free it. */
static void remote_stop(struct remote *r)
{
    if (weave_post(r->s, set_done, r) != 0)
        fail("weave_post (stop)", errno);
    pthread_join(r->thread, NULL);
    if (r->rc != 0)
        fail("weave_sched_run", r->err);
    if (weave_sched_free(r->s) != 0)
        fail("weave_sched_free", errno);
    (void)weave_event_destroy(&r->done);
}

/* ---- posts ---------------------------------------------------------------- */

struct posts {
    struct remote *r;
    uint64_t total;               /* tasks to run */
    uint64_t ran;                 /* tasks that ran (r's thread only) */
    atomic_uint_fast64_t ran_pub; /* ran, for the posters to read */
    atomic_uint_fast64_t posted;  /* posts made, all posters */
    uint64_t window;              /* posts in flight at most; 0: no limit */
    int64_t t_end;                /* when the last one ran */
    pthread_barrier_t go;         /* the posters and the timing thread */
    unsigned nposters;
    uint64_t per_poster;          /* posts each poster makes (the first makes the rest too) */
    int64_t call_ns[MAX_POSTERS]; /* each poster's time in weave_post (waits left out) */
    uint64_t made[MAX_POSTERS];   /* posts each made */
};

static void *counted(void *arg)
{
    struct posts *p = arg;

    atomic_store_explicit(&p->ran_pub, ++p->ran, memory_order_relaxed);
    if (p->ran == p->total) {
        p->t_end = bench_now_ns();
        (void)weave_event_set(&p->r->done); /* main returns */
    }
    return NULL;
}

struct poster {
    struct posts *p;
    unsigned index;
};

static void *poster_thread(void *arg)
{
    struct poster *me = arg;
    struct posts *p = me->p;
    /* The first poster makes what the division leaves over as well. */
    uint64_t n = p->per_poster + (me->index == 0 ? p->total - p->per_poster * p->nposters : 0);
    int64_t t0, busy = 0;

    (void)pthread_barrier_wait(&p->go);
    t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        /* With the window full, wait (asleep: the scheduler needs the CPU)
         * until the scheduler has run some; the wait is not counted in the
         * posters' cost per call. */
        if (p->window && atomic_load_explicit(&p->posted, memory_order_relaxed) -
                                 atomic_load_explicit(&p->ran_pub, memory_order_relaxed) >=
                             p->window) {
            busy += bench_now_ns() - t0;
            while (atomic_load_explicit(&p->posted, memory_order_relaxed) -
                       atomic_load_explicit(&p->ran_pub, memory_order_relaxed) >=
                   p->window)
                sleep_ns(20000);
            t0 = bench_now_ns();
        }
        atomic_fetch_add_explicit(&p->posted, 1, memory_order_relaxed);
        if (weave_post(p->r->s, counted, p) != 0) {
            fail("weave_post", errno);
            break;
        }
    }
    p->call_ns[me->index] = busy + bench_now_ns() - t0;
    p->made[me->index] = n;
    return NULL;
}

/* nposters threads post o->posts tasks in all. Sets the rate and the
 * posters' mean cost per call. */
static void measure_posts(const struct options *o, unsigned nposters, double *rate, double *call_ns)
{
    struct remote r;
    struct posts p;
    struct poster who[MAX_POSTERS];
    pthread_t th[MAX_POSTERS];
    unsigned started = 0;
    int64_t t0;
    double sum = 0;

    memset(&p, 0, sizeof(p));
    p.r = &r;
    p.total = o->posts;
    p.nposters = nposters;
    p.per_poster = o->posts / nposters;
    p.window = o->window;
    if (remote_start(&r) != 0)
        return;
    (void)pthread_barrier_init(&p.go, NULL, nposters + 1);
    for (unsigned i = 0; i < nposters; i++) {
        int e;

        who[i].p = &p;
        who[i].index = i;
        if ((e = pthread_create(&th[i], NULL, poster_thread, &who[i])) != 0) {
            fail("pthread_create", e);
            break;
        }
        started++;
    }
    if (started < nposters) { /* cannot go on: those started wait at the barrier */
        (void)fprintf(stderr, "xthread_bench: pthread_create failed\n");
        exit(1);
    }
    (void)pthread_barrier_wait(&p.go);
    t0 = bench_now_ns();
    for (unsigned i = 0; i < nposters; i++)
        pthread_join(th[i], NULL);
    pthread_join(r.thread, NULL); /* main returns after the last task */
    if (r.rc != 0)
        fail("weave_sched_run", r.err);
    if (weave_sched_free(r.s) != 0)
        fail("weave_sched_free", errno);
    (void)weave_event_destroy(&r.done);
    (void)pthread_barrier_destroy(&p.go);
    if (p.ran != p.total) {
        fail("posted tasks lost", EPROTO);
        return;
    }
    for (unsigned i = 0; i < nposters; i++)
        sum += (double)p.call_ns[i] / (double)p.made[i];
    *rate = (double)p.total / ((double)(p.t_end - t0) / 1e9);
    *call_ns = sum / nposters;
}

/* The floor: the same tasks spawned on the scheduler by one of its tasks,
 * SPAWN_BATCH at a time, each batch run before the next is made. */
struct spawns {
    uint64_t total, ran;
    int64_t t0, t1;
    weave_event done;
};

static void *spawned(void *arg)
{
    struct spawns *sp = arg;

    if (++sp->ran == sp->total) {
        sp->t1 = bench_now_ns();
        (void)weave_event_set(&sp->done);
    }
    return NULL;
}

static void *spawn_main(void *arg)
{
    struct spawns *sp = arg;

    sp->t0 = bench_now_ns();
    for (uint64_t i = 0; i < sp->total; i++) {
        weave_task *t = weave_spawn(spawned, sp);

        if (!t || weave_detach(t) != 0) {
            fail("weave_spawn", errno);
            return NULL;
        }
        if ((i + 1) % SPAWN_BATCH == 0 && weave_yield() != 0) {
            fail("weave_yield", errno);
            return NULL;
        }
    }
    if (weave_event_wait(&sp->done) != 0)
        fail("weave_event_wait", errno);
    return NULL;
}

static void measure_spawn(const struct options *o, double *rate)
{
    struct spawns sp;

    memset(&sp, 0, sizeof(sp));
    sp.total = o->posts;
    (void)weave_event_init(&sp.done);
    if (weave_run(spawn_main, &sp, NULL) != 0)
        fail("weave_run", errno);
    else if (sp.ran == sp.total)
        *rate = (double)sp.total / ((double)(sp.t1 - sp.t0) / 1e9);
    (void)weave_event_destroy(&sp.done);
}

/* ---- post-to-start latency ------------------------------------------------ */

/* One sample: posted at post_ns, started at start_ns. */
struct sample {
    int64_t post_ns;
    int64_t start_ns;
    atomic_int started;
};

static void *note_start(void *arg)
{
    struct sample *sm = arg;

    sm->start_ns = bench_now_ns();
    atomic_store_explicit(&sm->started, 1, memory_order_release);
    return NULL;
}

/* Wait (sleeping, not spinning: the other side needs the CPU) until the
 * sample's start is noted; false after 10 s. */
static bool wait_started(struct sample *sm)
{
    for (int i = 0; i < 200000; i++) {
        if (atomic_load_explicit(&sm->started, memory_order_acquire))
            return true;
        sleep_ns(50000);
    }
    return false;
}

/* p50 and p99 in us of the latencies of sm[0..n). */
static void percentiles(const struct sample *sm, size_t n, double *p50, double *p99)
{
    int64_t *d = malloc(n * sizeof(*d));

    if (!d) {
        fail("malloc", ENOMEM);
        return;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = sm[i].start_ns - sm[i].post_ns;
    qsort(d, n, sizeof(*d), bench_cmp_i64);
    *p50 = (double)bench_percentile(d, n, 50) / 1e3;
    *p99 = (double)bench_percentile(d, n, 99) / 1e3;
    free(d);
}

static void measure_latency(const struct options *o, double *p50, double *p99)
{
    struct remote r;
    struct sample *sm = calloc((size_t)o->samples, sizeof(*sm));

    if (!sm) {
        fail("calloc", ENOMEM);
        return;
    }
    if (remote_start(&r) != 0) {
        free(sm);
        return;
    }
    sleep_ns((int64_t)o->gap_us * 1000);
    for (uint64_t i = 0; i < o->samples && !failed(); i++) {
        sm[i].post_ns = bench_now_ns();
        if (weave_post(r.s, note_start, &sm[i]) != 0) {
            fail("weave_post", errno);
            break;
        }
        if (!wait_started(&sm[i])) {
            fail("a posted task that never started", ETIMEDOUT);
            break;
        }
        sleep_ns((int64_t)o->gap_us * 1000);
    }
    remote_stop(&r);
    if (!failed())
        percentiles(sm, (size_t)o->samples, p50, p99);
    free(sm);
}

/* The floor: a plain thread asleep in epoll_wait on an eventfd. */
struct efd_waker {
    int efd, epfd;
    struct sample *sm; /* the sample being taken; NULL: stop */
    atomic_int stop;
};

static void *efd_sleeper(void *arg)
{
    struct efd_waker *w = arg;
    uint64_t v;

    for (;;) {
        struct epoll_event ev;
        int n = epoll_wait(w->epfd, &ev, 1, -1);
        struct sample *sm;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail("epoll_wait", errno);
            return NULL;
        }
        if (atomic_load_explicit(&w->stop, memory_order_acquire))
            return NULL;
        sm = w->sm; /* written before the eventfd was */
        sm->start_ns = bench_now_ns();
        if (read(w->efd, &v, sizeof(v)) != (ssize_t)sizeof(v))
            fail("read (eventfd)", errno);
        atomic_store_explicit(&sm->started, 1, memory_order_release);
    }
}

static void measure_efd_latency(const struct options *o, double *p50, double *p99)
{
    struct efd_waker w;
    struct epoll_event ev = {.events = EPOLLIN};
    struct sample *sm = calloc((size_t)o->samples, sizeof(*sm));
    uint64_t one = 1;
    pthread_t th;
    int e;

    memset(&w, 0, sizeof(w));
    w.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!sm || w.efd < 0 || w.epfd < 0 || epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.efd, &ev) != 0) {
        fail("eventfd or epoll", errno);
        goto out;
    }
    if ((e = pthread_create(&th, NULL, efd_sleeper, &w)) != 0) {
        fail("pthread_create", e);
        goto out;
    }
    sleep_ns((int64_t)o->gap_us * 1000);
    for (uint64_t i = 0; i < o->samples && !failed(); i++) {
        w.sm = &sm[i];
        sm[i].post_ns = bench_now_ns();
        if (write(w.efd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
            fail("write (eventfd)", errno);
            break;
        }
        if (!wait_started(&sm[i])) {
            fail("an eventfd wake-up that never came", ETIMEDOUT);
            break;
        }
        sleep_ns((int64_t)o->gap_us * 1000);
    }
    atomic_store_explicit(&w.stop, 1, memory_order_release);
    if (write(w.efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        fail("write (eventfd)", errno);
    pthread_join(th, NULL);
    if (!failed())
        percentiles(sm, (size_t)o->samples, p50, p99);
out:
    if (w.efd >= 0)
        close(w.efd);
    if (w.epfd >= 0)
        close(w.epfd);
    free(sm);
}

/* ---- channels across threads ---------------------------------------------- */

/* n + 1 elements go from a sender to a receiver, which times the last n:
 * from its first receive to its last, so that no start-up is counted. */
struct xfer {
    weave_chan *c;
    uint64_t n;
    int64_t t0, t1; /* the receiver's */
};

static void *xfer_send(struct xfer *x)
{
    for (uint64_t i = 0; i <= x->n; i++)
        if (weave_chan_send(x->c, &i) != 0) {
            fail("weave_chan_send", errno);
            (void)weave_chan_close(x->c); /* the receiver stops too */
            break;
        }
    return NULL;
}

static void *xfer_recv(struct xfer *x)
{
    uint64_t v;

    for (uint64_t i = 0; i <= x->n; i++) {
        if (weave_chan_recv(x->c, &v) != 0) {
            fail("weave_chan_recv", errno);
            (void)weave_chan_close(x->c); /* the sender stops too */
            break;
        }
        if (v != i) {
            fail("an element out of order", EPROTO);
            (void)weave_chan_close(x->c);
            break;
        }
        if (i == 0)
            x->t0 = bench_now_ns();
    }
    x->t1 = bench_now_ns();
    return NULL;
}

static void *xfer_indexed(unsigned index, void *arg)
{
    return index == 0 ? xfer_send(arg) : xfer_recv(arg);
}

/* Two schedulers, two threads: ns per element through a shared channel. */
static void measure_xchan(const struct options *o, size_t capacity, double *ns)
{
    struct xfer x;

    memset(&x, 0, sizeof(x));
    x.n = o->xmessages;
    if (!(x.c = weave_chan_new_shared(sizeof(uint64_t), capacity))) {
        fail("weave_chan_new_shared", errno);
        return;
    }
    if (weave_run_threads(2, NULL, xfer_indexed, &x) != 0)
        fail("weave_run_threads", errno);
    else if (!failed())
        *ns = (double)(x.t1 - x.t0) / (double)x.n;
    if (weave_chan_free(x.c) != 0)
        fail("weave_chan_free", errno);
}

/* The floor: a ring under a mutex, two condition variables; with
 * rendezvous, a sender waits until its element has been taken. */
struct ring {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full; /* not_full also: an element was taken */
    uint64_t *buf;
    size_t cap, head, len;
    bool rendezvous;
    uint64_t sent, taken;
    uint64_t n;
    int64_t t0, t1;
};

static void ring_send(struct ring *q, uint64_t v)
{
    uint64_t mine;

    pthread_mutex_lock(&q->mu);
    while (q->len == q->cap)
        pthread_cond_wait(&q->not_full, &q->mu);
    q->buf[(q->head + q->len) % q->cap] = v;
    q->len++;
    mine = ++q->sent;
    pthread_cond_signal(&q->not_empty);
    while (q->rendezvous && q->taken < mine)
        pthread_cond_wait(&q->not_full, &q->mu);
    pthread_mutex_unlock(&q->mu);
}

static uint64_t ring_recv(struct ring *q)
{
    uint64_t v;

    pthread_mutex_lock(&q->mu);
    while (q->len == 0)
        pthread_cond_wait(&q->not_empty, &q->mu);
    v = q->buf[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    q->taken++;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return v;
}

static void *ring_sender(void *arg)
{
    struct ring *q = arg;

    for (uint64_t i = 0; i <= q->n; i++)
        ring_send(q, i);
    return NULL;
}

static void measure_ring(const struct options *o, bool rendezvous, double *ns)
{
    struct ring q;
    pthread_t th;
    int e;

    memset(&q, 0, sizeof(q));
    q.n = o->xmessages;
    q.rendezvous = rendezvous;
    q.cap = rendezvous ? 1 : (size_t)o->capacity;
    if (!(q.buf = calloc(q.cap, sizeof(*q.buf)))) {
        fail("calloc", ENOMEM);
        return;
    }
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.not_empty, NULL);
    pthread_cond_init(&q.not_full, NULL);
    if ((e = pthread_create(&th, NULL, ring_sender, &q)) != 0) {
        fail("pthread_create", e);
    } else {
        for (uint64_t i = 0; i <= q.n; i++) {
            if (ring_recv(&q) != i)
                fail("an element out of order", EPROTO);
            if (i == 0)
                q.t0 = bench_now_ns();
        }
        q.t1 = bench_now_ns();
        pthread_join(th, NULL);
        *ns = (double)(q.t1 - q.t0) / (double)q.n;
    }
    pthread_cond_destroy(&q.not_full);
    pthread_cond_destroy(&q.not_empty);
    pthread_mutex_destroy(&q.mu);
    free(q.buf);
}

/* ---- channels within one scheduler ---------------------------------------- */

static void *task_send(void *arg)
{
    return xfer_send(arg);
}

static void *task_recv(void *arg)
{
    return xfer_recv(arg);
}

struct local_run {
    const struct options *o;
    int first; /* which of the four goes first */
    double ns[4];
};

/* The four within one scheduler, in the order L_RDV_SHARED .. L_BUF_LOCAL. */
static void *local_main(void *arg)
{
    struct local_run *lr = arg;

    for (int k = 0; k < 4 && !failed(); k++) {
        int which = (lr->first + k) % 4;
        bool shared = which % 2 == 0;
        size_t cap = which < 2 ? 0 : (size_t)lr->o->capacity;
        struct xfer x;
        weave_task *a, *b;

        memset(&x, 0, sizeof(x));
        x.n = lr->o->messages;
        x.c = shared ? weave_chan_new_shared(sizeof(uint64_t), cap)
                     : weave_chan_new(sizeof(uint64_t), cap);
        if (!x.c) {
            fail("weave_chan_new", errno);
            break;
        }
        a = weave_spawn(task_recv, &x);
        b = weave_spawn(task_send, &x);
        if (!a || !b || weave_join(a, NULL) != 0 || weave_join(b, NULL) != 0)
            fail("weave_spawn or weave_join", errno);
        else
            lr->ns[which] = (double)(x.t1 - x.t0) / (double)x.n;
        if (weave_chan_free(x.c) != 0)
            fail("weave_chan_free", errno);
    }
    return NULL;
}

/* ---- weave_call ----------------------------------------------------------- */

struct calls {
    struct remote *r;
    uint64_t n;
    double ns;
};

static void *echo(void *arg)
{
    return arg;
}

static void call_loop(struct calls *c)
{
    int64_t t0 = bench_now_ns();

    for (uint64_t i = 0; i < c->n; i++) {
        void *res = NULL;

        if (weave_call(c->r->s, echo, (void *)(uintptr_t)(i + 1), &res) != 0) {
            fail("weave_call", errno);
            return;
        }
        if (res != (void *)(uintptr_t)(i + 1)) {
            fail("weave_call returned another result", EPROTO);
            return;
        }
    }
    c->ns = (double)(bench_now_ns() - t0) / (double)c->n;
}

static void *call_task(void *arg)
{
    call_loop(arg);
    return NULL;
}

/* From this thread (plain) or from a task of a scheduler run here. */
static void measure_call(const struct options *o, bool from_task, double *ns)
{
    struct remote r;
    struct calls c = {&r, o->calls, 0};

    if (remote_start(&r) != 0)
        return;
    if (!from_task)
        call_loop(&c);
    else if (weave_run(call_task, &c, NULL) != 0)
        fail("weave_run", errno);
    remote_stop(&r);
    if (!failed())
        *ns = c.ns;
}

/* The floor: two plain threads, each blocked in read(2) on its eventfd,
 * waking each other in turn. */
struct pingpong {
    int to_b, to_a; /* eventfds */
    uint64_t n;
};

static void *pong_thread(void *arg)
{
    struct pingpong *pp = arg;
    uint64_t v;

    for (uint64_t i = 0; i < pp->n; i++)
        if (read(pp->to_b, &v, sizeof(v)) != (ssize_t)sizeof(v) ||
            write(pp->to_a, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
            fail("eventfd ping-pong", errno);
            break;
        }
    return NULL;
}

static void measure_pingpong(const struct options *o, double *ns)
{
    struct pingpong pp = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC), o->calls};
    uint64_t one = 1, v;
    pthread_t th;
    int64_t t0;
    int e;

    if (pp.to_b < 0 || pp.to_a < 0) {
        fail("eventfd", errno);
        goto out;
    }
    if ((e = pthread_create(&th, NULL, pong_thread, &pp)) != 0) {
        fail("pthread_create", e);
        goto out;
    }
    t0 = bench_now_ns();
    for (uint64_t i = 0; i < pp.n; i++)
        if (write(pp.to_b, &one, sizeof(one)) != (ssize_t)sizeof(one) ||
            read(pp.to_a, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
            fail("eventfd ping-pong", errno);
            break;
        }
    *ns = (double)(bench_now_ns() - t0) / (double)pp.n;
    pthread_join(th, NULL);
out:
    if (pp.to_b >= 0)
        close(pp.to_b);
    if (pp.to_a >= 0)
        close(pp.to_a);
}

/* ---- one repetition ------------------------------------------------------- */

/* What a repetition measures, one step at a time. */
enum step {
    S_POST1,
    S_POST3,
    S_SPAWN,
    S_LAT,
    S_EFD_LAT,
    S_X_RDV,
    S_X_BUF,
    S_PT_RDV,
    S_PT_BUF,
    S_LOCAL,
    S_CALL_THREAD,
    S_CALL_TASK,
    S_PINGPONG,
    NSTEPS
};

/* The --only group of each step. */
static const int step_group[NSTEPS] = {
    ONLY_POST,  ONLY_POST,  ONLY_POST, ONLY_LATENCY, ONLY_LATENCY, ONLY_XCHAN, ONLY_XCHAN,
    ONLY_XCHAN, ONLY_XCHAN, ONLY_CHAN, ONLY_CALL,    ONLY_CALL,    ONLY_CALL};

static void run_step(const struct options *o, int step, int rep, double *v)
{
    struct local_run lr;

    if (o->only != ONLY_ALL && step_group[step] != o->only)
        return;
    switch (step) {
    case S_POST1:
        measure_posts(o, 1, &v[POST1], &v[POST1_CALL]);
        break;
    case S_POST3:
        measure_posts(o, 3, &v[POST3], &v[POST3_CALL]);
        break;
    case S_SPAWN:
        measure_spawn(o, &v[SPAWN]);
        break;
    case S_LAT:
        measure_latency(o, &v[LAT_P50], &v[LAT_P99]);
        break;
    case S_EFD_LAT:
        measure_efd_latency(o, &v[EFD_P50], &v[EFD_P99]);
        break;
    case S_X_RDV:
        measure_xchan(o, 0, &v[X_RDV]);
        break;
    case S_X_BUF:
        measure_xchan(o, (size_t)o->capacity, &v[X_BUF]);
        break;
    case S_PT_RDV:
        measure_ring(o, true, &v[PT_RDV]);
        break;
    case S_PT_BUF:
        measure_ring(o, false, &v[PT_BUF]);
        break;
    case S_LOCAL:
        memset(&lr, 0, sizeof(lr));
        lr.o = o;
        lr.first = rep % 4;
        if (weave_run(local_main, &lr, NULL) != 0)
            fail("weave_run", errno);
        for (int k = 0; k < 4; k++)
            v[L_RDV_SHARED + k] = lr.ns[k];
        break;
    case S_CALL_THREAD:
        measure_call(o, false, &v[CALL_THREAD]);
        break;
    case S_CALL_TASK:
        measure_call(o, true, &v[CALL_TASK]);
        break;
    default:
        measure_pingpong(o, &v[EFD_PP]);
        break;
    }
}

/* ---- output --------------------------------------------------------------- */

/* A row of the table: a figure, its unit, and the figure beside it. */
struct row {
    int fig;
    const char *what;
    const char *unit;
    int beside; /* -1: none */
    const char *beside_what;
};

static const struct row rows[] = {
    {POST1, "post, 1 posting thread", "posts/s", SPAWN, "weave_spawn on the scheduler itself"},
    {POST3, "post, 3 posting threads", "posts/s", SPAWN, "weave_spawn on the scheduler itself"},
    {POST1_CALL, "  weave_post call, 1 thread", "ns/call", -1, ""},
    {POST3_CALL, "  weave_post call, 3 threads", "ns/call", -1, ""},
    {LAT_P50, "post-to-start, idle sched, p50", "us", EFD_P50, "eventfd wake, epoll_wait, p50"},
    {LAT_P99, "post-to-start, idle sched, p99", "us", EFD_P99, "eventfd wake, epoll_wait, p99"},
    {X_RDV, "shared chan rdv, 2 scheds", "ns/msg", PT_RDV, "mutex+cond handoff, 2 threads"},
    {X_BUF, "shared chan buf, 2 scheds", "ns/msg", PT_BUF, "mutex+cond ring, 2 threads"},
    {L_RDV_SHARED, "shared chan rdv, 1 sched", "ns/msg", L_RDV_LOCAL, "local chan rdv, 1 sched"},
    {L_BUF_SHARED, "shared chan buf, 1 sched", "ns/msg", L_BUF_LOCAL, "local chan buf, 1 sched"},
    {CALL_THREAD, "weave_call from a thread", "ns/call", EFD_PP, "eventfd ping-pong, 2 threads"},
    {CALL_TASK, "weave_call from a task", "ns/call", EFD_PP, "eventfd ping-pong, 2 threads"},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* The row of figure f (it has one). */
static size_t row_of(int f)
{
    size_t r = 0;

    while (r < NROWS - 1 && rows[r].fig != f)
        r++;
    return r;
}

int main(int argc, char **argv)
{
    struct options o;
    double *samples[NFIG] = {NULL}, *ratios[NROWS] = {NULL};
    double med[NFIG], best[NFIG], ratio[NROWS];
    int status = 0;

    parse_args(argc, argv, &o);
    for (int f = 0; f < NFIG; f++)
        if (!(samples[f] = calloc((size_t)o.reps, sizeof(double)))) {
            (void)fprintf(stderr, "xthread_bench: out of memory\n");
            return 1;
        }
    for (size_t r = 0; r < NROWS; r++)
        if (!(ratios[r] = calloc((size_t)o.reps, sizeof(double)))) {
            (void)fprintf(stderr, "xthread_bench: out of memory\n");
            return 1;
        }

    /* Repetition 0 is the warm-up. */
    for (uint64_t k = 0; k <= o.reps; k++) {
        double v[NFIG];

        memset(v, 0, sizeof(v));
        for (int i = 0; i < NSTEPS && !failed(); i++)
            run_step(&o, (int)((k + (uint64_t)i) % NSTEPS), (int)k, v);
        if (failed()) {
            (void)fprintf(stderr, "xthread_bench: %s: %s (%s)\n", failure.what,
                          strerror(failure.err), bench_errno_name(failure.err));
            status = 1;
            goto out;
        }
        if (k == 0)
            continue;
        for (int f = 0; f < NFIG; f++)
            samples[f][k - 1] = v[f];
        for (size_t r = 0; r < NROWS; r++)
            if (rows[r].beside >= 0 && v[rows[r].beside] > 0)
                ratios[r][k - 1] = v[rows[r].fig] / v[rows[r].beside];
    }
    for (int f = 0; f < NFIG; f++) {
        qsort(samples[f], (size_t)o.reps, sizeof(double), bench_cmp_double);
        med[f] = bench_median(samples[f], (size_t)o.reps);
        best[f] = is_rate(f) ? samples[f][o.reps - 1] : samples[f][0];
    }
    for (size_t r = 0; r < NROWS; r++) {
        qsort(ratios[r], (size_t)o.reps, sizeof(double), bench_cmp_double);
        ratio[r] = bench_median(ratios[r], (size_t)o.reps);
    }

    if (o.json) {
        printf("{\"bench\":\"xthread_bench\",\"only\":\"%s\",\"switch\":\"%s\",\"posts\":%llu,"
               "\"window\":%llu,"
               "\"samples\":%llu,"
               "\"gap_us\":%llu,\"messages\":%llu,\"xmessages\":%llu,\"calls\":%llu,"
               "\"capacity\":%llu,\"repetitions\":%llu",
               only_names[o.only], weave_context_backend(), (unsigned long long)o.posts,
               (unsigned long long)o.window, (unsigned long long)o.samples,
               (unsigned long long)o.gap_us, (unsigned long long)o.messages,
               (unsigned long long)o.xmessages, (unsigned long long)o.calls,
               (unsigned long long)o.capacity, (unsigned long long)o.reps);
        for (int f = 0; f < NFIG; f++)
            printf(",\"%s_median\":%.2f,\"%s_best\":%.2f", fig_key[f], med[f], fig_key[f], best[f]);
        for (size_t r = 0; r < NROWS; r++)
            if (rows[r].beside >= 0)
                printf(",\"%s_over_%s\":%.3f", fig_key[rows[r].fig], fig_key[rows[r].beside],
                       ratio[r]);
        printf("}\n");
    } else {
        printf("xthread_bench: crossing threads: posts, waking an idle scheduler, shared "
               "channels, weave_call\n");
        printf("parameters: %s switch, posts=%llu per figure (window %llu in flight), "
               "samples=%llu (gap %llu us),\n"
               "            messages=%llu (1 sched), "
               "xmessages=%llu (2 threads), calls=%llu, capacity=%llu,\n"
               "            repetitions=%llu (after 1 warm-up; order rotates)\n\n",
               weave_context_backend(), (unsigned long long)o.posts, (unsigned long long)o.window,
               (unsigned long long)o.samples, (unsigned long long)o.gap_us,
               (unsigned long long)o.messages, (unsigned long long)o.xmessages,
               (unsigned long long)o.calls, (unsigned long long)o.capacity,
               (unsigned long long)o.reps);
        printf("%-33s %-8s %11s %11s   %-31s %11s %8s\n", "what", "unit", "median", "best",
               "beside it (same run)", "median", "ratio");
        for (size_t r = 0; r < NROWS; r++) {
            const struct row *w = &rows[r];

            if (o.only != ONLY_ALL && med[w->fig] == 0)
                continue; /* not measured (--only) */
            printf("%-33s %-8s %11.1f %11.1f", w->what, w->unit, med[w->fig], best[w->fig]);
            if (w->beside >= 0)
                printf("   %-31s %11.1f %7.2fx\n", w->beside_what, med[w->beside], ratio[r]);
            else
                printf("\n");
        }
        printf("\nbest: the best repetition (highest rate, lowest time); ratio: the figure over "
               "the one beside it,\n"
               "median of the per-repetition ratios. rdv: rendezvous (capacity 0); buf: "
               "capacity %llu.\n",
               (unsigned long long)o.capacity);
        if (o.only == ONLY_ALL || o.only == ONLY_CHAN)
            printf("shared / local channel within one scheduler: rendezvous %.2fx, buffered %.2fx "
                   "(goal <= %.2fx: %s)\n",
                   ratio[row_of(L_RDV_SHARED)], ratio[row_of(L_BUF_SHARED)], GOAL_SHARED_1,
                   ratio[row_of(L_RDV_SHARED)] <= GOAL_SHARED_1 &&
                           ratio[row_of(L_BUF_SHARED)] <= GOAL_SHARED_1
                       ? "met"
                       : "NOT met");
    }
    if (fflush(stdout) != 0) {
        perror("xthread_bench: stdout");
        status = 1;
    }
out:
    for (int f = 0; f < NFIG; f++)
        free(samples[f]);
    for (size_t r = 0; r < NROWS; r++)
        free(ratios[r]);
    return status;
}
