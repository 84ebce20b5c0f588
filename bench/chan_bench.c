/*
 * chan_bench.c - what a channel message and a mutex handoff cost, next to
 * the plain weave_yield handoff they are built on.
 *
 * Five figures, each between two tasks and each measured in every
 * repetition (interleaved, in an order that rotates from one repetition to
 * the next, so that the noise of a busy machine falls on all of them
 * alike):
 *
 *   weave_yield handoff         two tasks calling weave_yield in a loop:
 *                               every yield hands the thread to the other
 *                               task; ns per yield (switch_bench's figure);
 *   rendezvous chan, ping-pong  two rendezvous channels: A sends on one and
 *                               receives on the other, B receives and sends
 *                               back (libdill's perf/chan); ns per message,
 *                               a round trip being two messages;
 *   rendezvous chan, one way    A sends, B receives (producer/consumer);
 *                               ns per message;
 *   buffered chan, one way      the same through a channel of capacity C
 *                               (--capacity, default 64); ns per message;
 *   mutex handoff, ping-pong    A and B each unlock a weave_mutex the other
 *                               waits for, then lock it again; ns per
 *                               handoff (per lock acquisition).
 *
 * How switches are counted. A task switch is the expensive part (on some
 * machines swapcontext makes a system call), so the design goal is one
 * switch per message: the sender copies its element straight into a
 * waiting receiver and only switches when it must wait itself. The bench
 * counts the switches it sees (every time the other task is found to have
 * run since this one's last operation) and prints them per message: 1.00
 * for the yield, the rendezvous channels and the mutex; about 2/(C+1) for
 * the buffered channel, where the producer fills the buffer before it
 * waits and the consumer empties it. The "x yield" column divides each
 * figure by the yield handoff of the same repetition (the median of those
 * ratios is shown): for the one-switch figures, it is what a message or a
 * handoff costs beyond the switch itself. (The count costs a compare and a
 * store per operation, in every figure alike.)
 *
 * Where a switch is expensive the ratios sit close to 1 whatever the
 * channel does, so the last lines also give the overhead in nanoseconds:
 * a rendezvous message minus a yield handoff, and the buffered channel's
 * cost per message once its share of switches is taken out.
 *
 * The first repetition warms caches and the stack pool and is not counted;
 * the median and the minimum of the others are printed.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "weave.h"

#define MAX_ITERATIONS   1000000000u
#define MAX_REPS         1000u
#define MAX_CAPACITY     1000000u
#define GOAL_RATIO       1.50 /* the goal: a rendezvous message <= 1.5 yield handoffs */
#define GOAL_MUTEX_RATIO 1.30 /* ... and a mutex handoff <= 1.3 */

enum { YIELD, RDV_PING, RDV_ONEWAY, BUF_ONEWAY, MUTEX, NFIG };

static const char *const fig_what[NFIG] = {"weave_yield handoff", "rendezvous chan, ping-pong",
                                           "rendezvous chan, one way", "buffered chan, one way",
                                           "mutex handoff, ping-pong"};
static const char *const fig_unit[NFIG] = {"ns/handoff", "ns/message", "ns/message", "ns/message",
                                           "ns/handoff"};
static const char *const fig_key[NFIG] = {"yield_handoff", "chan_rendezvous_pingpong",
                                          "chan_rendezvous_oneway", "chan_buffered_oneway",
                                          "mutex_handoff"};

struct options {
    uint64_t iterations;
    uint64_t reps;
    uint64_t capacity;
    bool json;
};

static void usage(FILE *f)
{
    (void)fprintf(f,
                  "usage: chan_bench [--iterations N] [--repetitions R] [--capacity C] [--json]\n"
                  "  --iterations N   operations per task, figure and repetition: every figure\n"
                  "                   passes 2N messages or handoffs (1..%u, default 100000)\n"
                  "  --repetitions R  counted repetitions, after one warm-up (1..%u, default 7)\n"
                  "  --capacity C     of the buffered channel (1..%u, default 64)\n"
                  "  --json           one JSON object instead of the table\n",
                  MAX_ITERATIONS, MAX_REPS, MAX_CAPACITY);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    const struct bench_opt opts[] = {
        {.name = "--json", .flag = &o->json},
        {.name = "--iterations",
         .u64 = &o->iterations,
         .min = 1,
         .max = MAX_ITERATIONS,
         .bad = "--iterations wants a whole number from 1 to 1000000000, not '%s'"},
        {.name = "--repetitions",
         .u64 = &o->reps,
         .min = 1,
         .max = MAX_REPS,
         .bad = "--repetitions wants a whole number from 1 to 1000, not '%s'"},
        {.name = "--capacity",
         .u64 = &o->capacity,
         .min = 1,
         .max = MAX_CAPACITY,
         .bad = "--capacity wants a whole number from 1 to 1000000, not '%s'"},
    };

    o->iterations = 100000;
    o->reps = 7;
    o->capacity = 64;
    o->json = false;
    bench_parse_args(argc, argv, "chan_bench", usage, opts, sizeof(opts) / sizeof(opts[0]), NULL);
}

/* ---- the two tasks of one figure ------------------------------------------ */

/* What the two tasks of a figure share. */
struct pair {
    uint64_t n;          /* operations per task */
    weave_chan *ping;    /* A -> B */
    weave_chan *pong;    /* B -> A (ping-pong only) */
    weave_mutex lock;    /* the mutex figure's */
    bool holding;        /* mutex figure: A holds the lock, B may queue */
    int started;         /* tasks that have begun */
    int finished;        /* tasks that have ended */
    int64_t t0, t1;      /* first task's start, last task's end */
    int last;            /* the task seen running last: 1 (A) or 2 (B) */
    uint64_t switches;   /* times the other task was found to have run */
    weave_task *task[2]; /* A's and B's */
    int err;             /* errno of the first failure, 0 if none */
    const char *what;    /* the call that failed */
};

/* One task's argument: its pair and which side it is. */
struct side {
    struct pair *p;
    int me; /* 1: A, 2: B */
};

static void pair_begin(struct pair *p)
{
    if (p->started++ == 0)
        p->t0 = bench_now_ns();
}

static void pair_end(struct pair *p)
{
    if (++p->finished == 2)
        p->t1 = bench_now_ns();
}

/* Called after every operation: count a switch if the other task ran. */
static inline void seen(struct pair *p, int me)
{
    if (p->last != me) {
        p->switches++;
        p->last = me;
    }
}

/* Record a failure and stop; cancelling the other task keeps it from
 * waiting forever for a partner that is gone. */
static void *side_fail(const struct side *s, const char *what)
{
    struct pair *p = s->p;

    if (!p->err) {
        p->err = errno;
        p->what = what;
    }
    (void)weave_cancel(p->task[2 - s->me]); /* it may have ended: harmless */
    pair_end(p);
    return NULL;
}

static void *yielder(void *arg)
{
    struct side *s = arg;
    struct pair *p = s->p;

    pair_begin(p);
    for (uint64_t i = 0; i < p->n; i++) {
        if (weave_yield() != 0)
            return side_fail(s, "weave_yield");
        seen(p, s->me);
    }
    pair_end(p);
    return NULL;
}

/* A sends i on ping and waits for it back on pong; B echoes. */
static void *pinger(void *arg)
{
    struct side *s = arg;
    struct pair *p = s->p;
    uint64_t v;

    pair_begin(p);
    for (uint64_t i = 0; i < p->n; i++) {
        if (s->me == 1) {
            if (weave_chan_send(p->ping, &i) != 0)
                return side_fail(s, "weave_chan_send");
            seen(p, s->me);
            if (weave_chan_recv(p->pong, &v) != 0)
                return side_fail(s, "weave_chan_recv");
        } else {
            if (weave_chan_recv(p->ping, &v) != 0)
                return side_fail(s, "weave_chan_recv");
            seen(p, s->me);
            if (weave_chan_send(p->pong, &v) != 0)
                return side_fail(s, "weave_chan_send");
        }
        seen(p, s->me);
        if (v != i) {
            errno = EPROTO;
            return side_fail(s, "a message out of order");
        }
    }
    pair_end(p);
    return NULL;
}

/* A sends 2n numbers on ping, B receives them. */
static void *streamer(void *arg)
{
    struct side *s = arg;
    struct pair *p = s->p;
    uint64_t v;

    pair_begin(p);
    for (uint64_t i = 0; i < 2 * p->n; i++) {
        if (s->me == 1) {
            if (weave_chan_send(p->ping, &i) != 0)
                return side_fail(s, "weave_chan_send");
        } else {
            if (weave_chan_recv(p->ping, &v) != 0)
                return side_fail(s, "weave_chan_recv");
            if (v != i) {
                errno = EPROTO;
                return side_fail(s, "a message out of order");
            }
        }
        seen(p, s->me);
    }
    pair_end(p);
    return NULL;
}

/*
 * The lock goes back and forth: each task unlocks (handing the lock to the
 * other, which waits for it) and locks again (waiting until the other
 * unlocks). A takes the lock first and lets B queue behind it; B waits
 * until A holds it, so the order in which they start does not matter.
 */
static void *locker(void *arg)
{
    struct side *s = arg;
    struct pair *p = s->p;

    pair_begin(p);
    if (s->me == 1) {
        if (weave_mutex_lock(&p->lock) != 0)
            return side_fail(s, "weave_mutex_lock");
        p->holding = true;
        if (weave_yield() != 0) /* B runs and queues for the lock */
            return side_fail(s, "weave_yield");
    } else {
        while (!p->holding)
            if (weave_yield() != 0)
                return side_fail(s, "weave_yield");
        if (weave_mutex_lock(&p->lock) != 0)
            return side_fail(s, "weave_mutex_lock");
    }
    for (uint64_t i = 0; i < p->n; i++) {
        if (weave_mutex_unlock(&p->lock) != 0)
            return side_fail(s, "weave_mutex_unlock");
        if (weave_mutex_lock(&p->lock) != 0)
            return side_fail(s, "weave_mutex_lock");
        seen(p, s->me);
    }
    if (weave_mutex_unlock(&p->lock) != 0)
        return side_fail(s, "weave_mutex_unlock");
    pair_end(p);
    return NULL;
}

/* ---- one repetition ------------------------------------------------------- */

/* One repetition's figures, filled by rep_main. */
struct rep {
    uint64_t iterations;
    size_t capacity;
    int first; /* the figure measured first in this repetition */
    double ns[NFIG];
    double switches[NFIG]; /* per message or handoff */
    int err;
    const char *what;
};

static void rep_fail(struct rep *r, const char *what, int err)
{
    if (!r->err) {
        r->err = err;
        r->what = what;
    }
}

/* Run figure f's two tasks to the end; 0, or -1 with r's error set. */
static int measure(struct rep *r, int f)
{
    static const weave_fn fns[NFIG] = {yielder, pinger, streamer, streamer, locker};
    struct pair p;
    struct side sa, sb;
    weave_task *a, *b;
    int rc = 0;

    memset(&p, 0, sizeof(p));
    p.n = r->iterations;
    sa.p = sb.p = &p;
    sa.me = 1;
    sb.me = 2;
    if (weave_mutex_init(&p.lock) != 0) {
        rep_fail(r, "weave_mutex_init", errno);
        return -1;
    }
    if (f == RDV_PING || f == RDV_ONEWAY || f == BUF_ONEWAY) {
        p.ping = weave_chan_new(sizeof(uint64_t), f == BUF_ONEWAY ? r->capacity : 0);
        if (!p.ping || (f == RDV_PING && !(p.pong = weave_chan_new(sizeof(uint64_t), 0)))) {
            rep_fail(r, "weave_chan_new", errno);
            rc = -1;
            goto out;
        }
    }
    if (!(a = weave_spawn(fns[f], &sa))) {
        rep_fail(r, "weave_spawn", errno);
        rc = -1;
        goto out;
    }
    if (!(b = weave_spawn(fns[f], &sb))) {
        rep_fail(r, "weave_spawn", errno);
        (void)weave_cancel(a);
        (void)weave_join(a, NULL);
        rc = -1;
        goto out;
    }
    p.task[0] = a; /* neither has run yet: they start when we wait */
    p.task[1] = b;
    if (weave_join(a, NULL) != 0 || weave_join(b, NULL) != 0) {
        rep_fail(r, "weave_join", errno);
        rc = -1;
        goto out;
    }
    if (p.err) {
        rep_fail(r, p.what, p.err);
        rc = -1;
        goto out;
    }
    r->ns[f] = (double)(p.t1 - p.t0) / (2.0 * (double)p.n);
    r->switches[f] = (double)p.switches / (2.0 * (double)p.n);
out:
    if ((p.ping && weave_chan_free(p.ping) != 0) || (p.pong && weave_chan_free(p.pong) != 0) ||
        weave_mutex_destroy(&p.lock) != 0) {
        rep_fail(r, "freeing a channel or the mutex", errno);
        rc = -1;
    }
    return rc;
}

static void *rep_main(void *arg)
{
    struct rep *r = arg;

    for (int k = 0; k < NFIG; k++)
        if (measure(r, (r->first + k) % NFIG) != 0)
            break;
    return NULL;
}

/* ---- main ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct options o;
    double *samples[NFIG + NFIG] = {NULL}; /* ns, then ratios to the yield */
    double med[NFIG], min[NFIG], ratio[NFIG], sw[NFIG];
    int status = 0;

    parse_args(argc, argv, &o);
    for (int f = 0; f < 2 * NFIG; f++) {
        if (!(samples[f] = calloc((size_t)o.reps, sizeof(double)))) {
            (void)fprintf(stderr, "chan_bench: out of memory\n");
            status = 1;
            goto out;
        }
    }

    /* Repetition 0 is the warm-up. */
    for (uint64_t k = 0; k <= o.reps; k++) {
        struct rep r;

        memset(&r, 0, sizeof(r));
        r.iterations = o.iterations;
        r.capacity = (size_t)o.capacity;
        r.first = (int)(k % NFIG);
        if (weave_run(rep_main, &r, NULL) != 0) {
            (void)fprintf(stderr, "chan_bench: weave_run: %s (%s)\n", strerror(errno),
                          bench_errno_name(errno));
            status = 1;
            goto out;
        }
        if (r.err) {
            (void)fprintf(stderr, "chan_bench: %s: %s (%s)\n", r.what, strerror(r.err),
                          bench_errno_name(r.err));
            status = 1;
            goto out;
        }
        if (k == 0)
            continue;
        for (int f = 0; f < NFIG; f++) {
            samples[f][k - 1] = r.ns[f];
            samples[NFIG + f][k - 1] = r.ns[f] / r.ns[YIELD];
            sw[f] = r.switches[f]; /* the same in every repetition */
        }
    }
    for (int f = 0; f < 2 * NFIG; f++)
        qsort(samples[f], (size_t)o.reps, sizeof(double), bench_cmp_double);
    for (int f = 0; f < NFIG; f++) {
        med[f] = bench_median(samples[f], (size_t)o.reps);
        min[f] = samples[f][0];
        ratio[f] = bench_median(samples[NFIG + f], (size_t)o.reps);
    }

    if (o.json) {
        printf("{\"bench\":\"chan_bench\",\"iterations\":%llu,\"repetitions\":%llu,"
               "\"capacity\":%llu",
               (unsigned long long)o.iterations, (unsigned long long)o.reps,
               (unsigned long long)o.capacity);
        for (int f = 0; f < NFIG; f++)
            printf(",\"%s_ns_median\":%.2f,\"%s_ns_min\":%.2f,\"%s_over_yield\":%.3f,"
                   "\"%s_switches\":%.3f",
                   fig_key[f], med[f], fig_key[f], min[f], fig_key[f], ratio[f], fig_key[f], sw[f]);
        printf("}\n");
    } else {
        printf("chan_bench: a channel message and a mutex handoff between two tasks, next to "
               "a yield handoff\n");
        printf("parameters: iterations=%llu per task (2N messages or handoffs per figure), "
               "repetitions=%llu (after 1 warm-up),\n"
               "            figures interleaved (order rotates), buffered channel capacity "
               "%llu, 8-byte elements\n\n",
               (unsigned long long)o.iterations, (unsigned long long)o.reps,
               (unsigned long long)o.capacity);
        printf("%-28s %-11s %9s %9s %8s %9s\n", "what", "unit", "median", "min", "x yield",
               "switches");
        for (int f = 0; f < NFIG; f++)
            printf("%-28s %-11s %9.1f %9.1f %7.3fx %9.3f\n", fig_what[f], fig_unit[f], med[f],
                   min[f], ratio[f], sw[f]);
        printf("\nx yield: the figure over the yield handoff of the same repetition (median of "
               "the ratios);\n"
               "switches: task switches seen per message or handoff.\n");
        printf("rendezvous ping-pong message / yield handoff: %.3fx (goal <= %.2fx: %s), "
               "%+.1f ns per message\n",
               ratio[RDV_PING], GOAL_RATIO, ratio[RDV_PING] <= GOAL_RATIO ? "met" : "NOT met",
               med[RDV_PING] - med[YIELD]);
        printf("mutex handoff / yield handoff: %.3fx (goal <= %.2fx: %s), %+.1f ns per handoff\n",
               ratio[MUTEX], GOAL_MUTEX_RATIO, ratio[MUTEX] <= GOAL_MUTEX_RATIO ? "met" : "NOT met",
               med[MUTEX] - med[YIELD]);
        printf("buffered channel without its share of switches: about %.1f ns per message "
               "(send + receive)\n",
               med[BUF_ONEWAY] - sw[BUF_ONEWAY] * med[YIELD]);
    }
    if (fflush(stdout) != 0) {
        perror("chan_bench: stdout");
        status = 1;
    }
out:
    for (int f = 0; f < 2 * NFIG; f++)
        free(samples[f]);
    return status;
}
