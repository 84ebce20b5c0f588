/*
 * timer_bench.c - which wake-up mechanism gives the most precise timed wait.
 *
 * weave blocks in epoll_wait with no timeout and ends the wait with a
 * timerfd armed at the earliest deadline; this bench shows why, on the
 * machine it runs on. Each mechanism waits 1 ms (--wait-us) many times and the
 * overshoot (wake-up time minus deadline, CLOCK_MONOTONIC) is reported as
 * min, p50, p99 and max:
 *
 *   epoll_wait                 millisecond timeout (the wait rounded up to
 *                              whole ms, as weave's fallback does), default
 *                              timer slack
 *   epoll_pwait2               nanosecond timeout, default slack
 *   epoll_pwait2, slack 1 ns   the same with PR_SET_TIMERSLACK at 1 ns
 *   timerfd + epoll_wait(-1)   a timerfd armed at an absolute deadline, what
 *                              weave does
 *   weave_sleep_us             through weave, the thread's slack as it is
 *   weave_sleep_us, slack 1 ns through weave, the thread's slack at 1 ns
 *                              (it should make no difference)
 *
 * Worth knowing when reading the figures: the kernel gives a poll, select
 * or epoll timeout a slack of max(timer slack, timeout / 1000) (0.5% for a
 * niced thread; fs/select.c, select_estimate_accuracy), so PR_SET_TIMERSLACK
 * alone only helps waits shorter than about 50 ms; a timerfd's hrtimer gets
 * no slack at all. Try --wait-us 50000 or 1000000 to see it.
 *
 * The raw variants wait on an epoll set that never becomes ready (or only
 * through the timerfd), without weave. The mechanisms take turns in rounds
 * of a few samples each, so that a noisy spell of the machine falls on all
 * of them alike. The thread's timer slack is restored after every round of
 * a variant that changes it.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "base/timer.h" /* the heap itself, for the second table */
#include "weave.h"

#ifdef WEAVE_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

#define ROUND       50u /* samples a variant takes per turn */
#define MAX_SAMPLES 10000000u
#define MAX_WAIT_US 10000000u /* 10 s */
#define MAX_HEAP    10000000u
#define HEAP_OPS    200000u /* operations timed per heap size */
#define TIMER_GAP   128     /* bytes between timers: each in a record of its own */

/* The wait of every sample, in ns (--wait-us). */
static int64_t wait_ns = 1000000;

enum variant {
    V_EPOLL_WAIT,
    V_PWAIT2,
    V_PWAIT2_SLACK1,
    V_TIMERFD,
    V_WEAVE,
    V_WEAVE_SLACK1,
    NVARIANTS
};

static const char *const variant_name[NVARIANTS] = {
    "epoll_wait (ms timeout)",  "epoll_pwait2 (ns timeout)",
    "epoll_pwait2, slack 1 ns", "timerfd abs + epoll_wait(-1)",
    "weave_sleep_us",           "weave_sleep_us, slack 1 ns",
};

static const char *const variant_key[NVARIANTS] = {
    "epoll_wait",         "epoll_pwait2",   "epoll_pwait2_slack1",
    "timerfd_epoll_wait", "weave_sleep_us", "weave_sleep_us_slack1",
};

struct options {
    uint64_t samples;
    uint64_t wait_us;
    uint64_t heap_max; /* the largest heap of the second table */
    bool json;
};

/* One variant's samples and what became of it. */
struct variant_run {
    int64_t *over;   /* [samples] overshoot, ns */
    uint64_t taken;  /* samples so far */
    long slack_ns;   /* timer slack in effect while it waited */
    int unavailable; /* errno that ruled it out (ENOSYS), or 0 */
};

/* What the raw variants wait on. */
struct raw_fds {
    int epfd;     /* an epoll set with nothing in it */
    int tfd;      /* a timerfd ... */
    int tfd_epfd; /* ... and an epoll set holding it */
};

/* Arguments of the weave variants' main task. */
struct weave_round {
    struct variant_run *v;
    uint64_t n;
    int err;
};

static void usage(FILE *f)
{
    (void)fprintf(
        f,
        "usage: timer_bench [--samples N] [--wait-us US] [--heap-max N] [--json]\n"
        "  --samples N   waits per mechanism (1..%u, default 500)\n"
        "  --wait-us US  the wait, in us (1..%u, default 1000)\n"
        "  --heap-max N  the heap table goes from 1000 pending timers up to N, by tens\n"
        "                (0 skips it; up to %u, default 1000000)\n"
        "  --json        one JSON object per mechanism, one per line, instead of the table\n",
        MAX_SAMPLES, MAX_WAIT_US, MAX_HEAP);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    const struct bench_opt opts[] = {
        {.name = "--json", .flag = &o->json},
        {.name = "--samples",
         .u64 = &o->samples,
         .min = 1,
         .max = MAX_SAMPLES,
         .bad = "--samples wants a whole number from 1 to 10000000, not '%s'"},
        {.name = "--wait-us",
         .u64 = &o->wait_us,
         .min = 1,
         .max = MAX_WAIT_US,
         .bad = "--wait-us wants a whole number from 1 to 10000000, not '%s'"},
        {.name = "--heap-max",
         .u64 = &o->heap_max,
         .min = 1000,
         .max = MAX_HEAP,
         .zero_ok = true,
         .bad = "--heap-max wants 0 or a whole number from 1000 to 10000000, not '%s'"},
    };

    o->samples = 500;
    o->wait_us = 1000;
    o->heap_max = 1000000;
    o->json = false;
    bench_parse_args(argc, argv, "timer_bench", usage, opts, sizeof(opts) / sizeof(opts[0]), NULL);
}

static long get_slack(void)
{
    return prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
}

static int set_slack(long ns)
{
    return prctl(PR_SET_TIMERSLACK, (unsigned long)ns, 0, 0, 0);
}

/* ---- raw samples: 0 and the overshoot in *over, or -errno --------------- */

static int sample_epoll_wait(const struct raw_fds *fds, int64_t *over)
{
    struct epoll_event ev;
    int64_t t0 = bench_now_ns(), t1;

    if (epoll_wait(fds->epfd, &ev, 1, (int)((wait_ns + 999999) / 1000000)) < 0)
        return -errno;
    t1 = bench_now_ns();
    *over = t1 - t0 - wait_ns;
    return 0;
}

static int sample_pwait2(const struct raw_fds *fds, int64_t *over)
{
    struct epoll_event ev;
    struct timespec ts = {(time_t)(wait_ns / 1000000000), (long)(wait_ns % 1000000000)};
    int64_t t0 = bench_now_ns(), t1;

    if (syscall(SYS_epoll_pwait2, fds->epfd, &ev, 1, &ts, NULL, 0) < 0)
        return -errno;
    t1 = bench_now_ns();
    *over = t1 - t0 - wait_ns;
    return 0;
}

static int sample_timerfd(const struct raw_fds *fds, int64_t *over)
{
    struct itimerspec its;
    struct epoll_event ev;
    uint64_t expirations;
    int64_t deadline = bench_now_ns() + wait_ns, t1;
    int n;

    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(deadline / 1000000000);
    its.it_value.tv_nsec = (long)(deadline % 1000000000);
    if (timerfd_settime(fds->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        return -errno;
    n = epoll_wait(fds->tfd_epfd, &ev, 1, -1);
    t1 = bench_now_ns();
    if (n < 0)
        return -errno;
    if (read(fds->tfd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
        return -errno;
    *over = t1 - deadline;
    return 0;
}

/* Take n samples of raw variant v. A wait cut short by a signal is taken
 * again. Returns 0 or -errno. */
static int raw_round(enum variant v, const struct raw_fds *fds, struct variant_run *vr, uint64_t n,
                     long default_slack)
{
    int r = 0;

    if (v == V_PWAIT2_SLACK1 && set_slack(1) != 0)
        return -errno;
    vr->slack_ns = get_slack();
    for (uint64_t k = 0; k < n; k++) {
        int64_t over = 0;

        switch (v) {
        case V_EPOLL_WAIT:
            r = sample_epoll_wait(fds, &over);
            break;
        case V_PWAIT2:
        case V_PWAIT2_SLACK1:
            r = sample_pwait2(fds, &over);
            break;
        default:
            r = sample_timerfd(fds, &over);
            break;
        }
        if (r == -EINTR) {
            k--;
            continue;
        }
        if (r < 0)
            break;
        vr->over[vr->taken++] = over;
    }
    if (v == V_PWAIT2_SLACK1 && set_slack(default_slack) != 0 && r == 0)
        r = -errno;
    return r;
}

/* ---- weave samples ------------------------------------------------------ */

static void *weave_round_main(void *arg)
{
    struct weave_round *w = arg;

    w->v->slack_ns = get_slack();
    for (uint64_t k = 0; k < w->n; k++) {
        int64_t t0 = bench_now_ns(), t1;

        if (weave_sleep_us(wait_ns / 1000) != 0) {
            w->err = errno;
            break;
        }
        t1 = bench_now_ns();
        w->v->over[w->v->taken++] = t1 - t0 - wait_ns;
    }
    return NULL;
}

static int weave_round(enum variant v, struct variant_run *vr, uint64_t n)
{
    struct weave_round w;
    long slack = get_slack();
    int r = 0;

    w.v = vr;
    w.n = n;
    w.err = 0;
    if (v == V_WEAVE_SLACK1 && set_slack(1) != 0)
        return -errno;
    if (weave_run(weave_round_main, &w, NULL) != 0)
        r = -errno;
    if (v == V_WEAVE_SLACK1 && set_slack(slack) != 0 && r == 0)
        r = -errno;
    return r < 0 ? r : -w.err;
}

/* ---- main --------------------------------------------------------------- */

static int open_raw_fds(struct raw_fds *fds)
{
    struct epoll_event ev;

    fds->epfd = epoll_create1(EPOLL_CLOEXEC);
    fds->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    fds->tfd_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (fds->epfd < 0 || fds->tfd < 0 || fds->tfd_epfd < 0)
        return -1;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    return epoll_ctl(fds->tfd_epfd, EPOLL_CTL_ADD, fds->tfd, &ev);
}

static void close_raw_fds(struct raw_fds *fds)
{
    if (fds->epfd >= 0)
        close(fds->epfd);
    if (fds->tfd >= 0)
        close(fds->tfd);
    if (fds->tfd_epfd >= 0)
        close(fds->tfd_epfd);
}

static void print_results(const struct options *o, struct variant_run *vr, long default_slack)
{
    int64_t p50[NVARIANTS], p99[NVARIANTS], mx[NVARIANTS], mn[NVARIANTS];
    int best50 = -1, best99 = -1;

    for (int v = 0; v < NVARIANTS; v++) {
        if (vr[v].unavailable)
            continue;
        qsort(vr[v].over, (size_t)vr[v].taken, sizeof(int64_t), bench_cmp_i64);
        p50[v] = bench_percentile(vr[v].over, (size_t)vr[v].taken, 50);
        p99[v] = bench_percentile(vr[v].over, (size_t)vr[v].taken, 99);
        mx[v] = vr[v].over[vr[v].taken - 1];
        mn[v] = vr[v].over[0];
        if (best50 < 0 || p50[v] < p50[best50])
            best50 = v;
        if (best99 < 0 || p99[v] < p99[best99])
            best99 = v;
    }

    if (o->json) {
        for (int v = 0; v < NVARIANTS; v++) {
            printf("{\"bench\":\"timer_bench\",\"mechanism\":\"%s\",\"samples\":%llu,"
                   "\"wait_us\":%llu,",
                   variant_key[v], (unsigned long long)o->samples, (unsigned long long)o->wait_us);
            if (vr[v].unavailable)
                printf("\"unavailable\":\"%s\"}\n", bench_errno_name(vr[v].unavailable));
            else
                printf("\"timer_slack_ns\":%ld,\"overshoot_us_min\":%.1f,"
                       "\"overshoot_us_p50\":%.1f,\"overshoot_us_p99\":%.1f,"
                       "\"overshoot_us_max\":%.1f}\n",
                       vr[v].slack_ns, (double)mn[v] / 1e3, (double)p50[v] / 1e3,
                       (double)p99[v] / 1e3, (double)mx[v] / 1e3);
        }
        return;
    }

    printf("timer_bench: overshoot of a timed wait, by wake-up mechanism\n");
    printf("parameters: samples=%llu per mechanism, wait=%llu us, taken in turns of %u, "
           "default timer slack %ld ns\n",
           (unsigned long long)o->samples, (unsigned long long)o->wait_us, ROUND, default_slack);
    printf("overshoot = wake-up time - deadline, CLOCK_MONOTONIC\n\n");
    printf("%-34s %10s   %9s %9s %9s %9s\n", "mechanism", "slack", "min", "p50", "p99", "max");
    printf("%-34s %10s   %9s %9s %9s %9s\n", "", "(ns)", "(us)", "(us)", "(us)", "(us)");
    for (int v = 0; v < NVARIANTS; v++) {
        if (vr[v].unavailable) {
            printf("%-34s %10s   unavailable here (%s)\n", variant_name[v], "-",
                   bench_errno_name(vr[v].unavailable));
            continue;
        }
        printf("%-34s %10ld   %9.1f %9.1f %9.1f %9.1f\n", variant_name[v], vr[v].slack_ns,
               (double)mn[v] / 1e3, (double)p50[v] / 1e3, (double)p99[v] / 1e3,
               (double)mx[v] / 1e3);
    }
    if (best50 >= 0)
        printf("\nlowest p50: %s; lowest p99: %s\n", variant_name[best50], variant_name[best99]);
    printf("note: the kernel lets an epoll timeout of this length end up to "
           "max(timer slack, wait / 1000) = %lld ns late with slack 1 ns (%lld ns with the "
           "default); a timerfd gets no slack\n",
           (long long)(wait_ns / 1000 > 1 ? wait_ns / 1000 : 1),
           (long long)(wait_ns / 1000 > default_slack ? wait_ns / 1000 : default_slack));
}

/* ---- the heap: insert + fire, and insert + cancel, with n pending ---------- */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ns per insert + fire (fire = cancel when cancel is set) with n timers
 * pending, in a steady state: each operation takes one timer out and puts
 * one back at a random later deadline. -1 if out of memory. */
static double heap_cost(uint64_t n, bool cancel)
{
    struct weave__timers h;
    char *mem = calloc(n + 1, TIMER_GAP);
    int64_t now = 0, t0;
    double ns = -1;

    weave__timers_init(&h);
    if (!mem || weave__timers_reserve(&h, n + 1) != 0)
        goto out;
    for (uint64_t i = 0; i < n; i++) {
        struct weave__timer *t = (struct weave__timer *)(void *)(mem + i * TIMER_GAP);
        t->index = WEAVE__TIMER_IDLE;
        weave__timers_add(&h, t, (int64_t)(rnd() % (1ull << 40)));
    }
    t0 = bench_now_ns();
    for (uint64_t k = 0; k < HEAP_OPS; k++) {
        struct weave__timer *t;

        if (cancel) {
            t = (struct weave__timer *)(void *)(mem + (rnd() % n) * TIMER_GAP);
            weave__timers_remove(&h, t);
        } else {
            now = weave__timers_next(&h);
            t = weave__timers_expired(&h, now);
        }
        weave__timers_add(&h, t, now + (int64_t)(rnd() % (1ull << 40)));
    }
    ns = (double)(bench_now_ns() - t0) / HEAP_OPS;
out:
    weave__timers_term(&h);
    free(mem);
    return ns;
}

static void print_heap(const struct options *o)
{
    if (o->heap_max == 0)
        return;
    if (!o->json) {
        printf("\ntimer heap (4-ary, keys beside the pointers): one timer out, one back in, "
               "%u times\n\n",
               HEAP_OPS);
        printf("%-12s %16s %18s %10s\n", "pending", "insert + fire", "insert + cancel", "log2(n)");
        printf("%-12s %16s %18s %10s\n", "", "(ns)", "(ns)", "");
    }
    for (uint64_t n = 1000; n <= o->heap_max; n *= 10) {
        double fire = heap_cost(n, false), cancel = heap_cost(n, true);
        double lg = 0;

        for (uint64_t v = n; v > 1; v >>= 1)
            lg++;
        if (o->json)
            printf("{\"bench\":\"timer_bench\",\"heap_pending\":%llu,\"insert_fire_ns\":%.1f,"
                   "\"insert_cancel_ns\":%.1f}\n",
                   (unsigned long long)n, fire, cancel);
        else
            printf("%-12llu %16.1f %18.1f %10.0f\n", (unsigned long long)n, fire, cancel, lg);
    }
}

int main(int argc, char **argv)
{
    struct options o;
    struct variant_run vr[NVARIANTS];
    struct raw_fds fds = {-1, -1, -1};
    long default_slack;
    int status = 0;

    parse_args(argc, argv, &o);
    wait_ns = (int64_t)o.wait_us * 1000;
    memset(vr, 0, sizeof(vr));
    default_slack = get_slack();
    if (default_slack < 0) {
        perror("timer_bench: PR_GET_TIMERSLACK");
        return 1;
    }
    if (open_raw_fds(&fds) != 0) {
        perror("timer_bench: epoll/timerfd setup");
        status = 1;
        goto out;
    }
    for (int v = 0; v < NVARIANTS; v++) {
        vr[v].over = malloc((size_t)o.samples * sizeof(int64_t));
        if (!vr[v].over) {
            (void)fprintf(stderr, "timer_bench: out of memory\n");
            status = 1;
            goto out;
        }
    }

    /* valgrind 3.19 lacks epoll_pwait2: it would answer ENOSYS anyway, after
     * a warning on stderr. */
    if (RUNNING_ON_VALGRIND)
        vr[V_PWAIT2].unavailable = vr[V_PWAIT2_SLACK1].unavailable = ENOSYS;
    for (uint64_t done = 0; done < o.samples; done += ROUND) {
        uint64_t n = o.samples - done < ROUND ? o.samples - done : ROUND;

        for (int v = 0; v < NVARIANTS; v++) {
            int r;

            if (vr[v].unavailable)
                continue;
            if (v == V_WEAVE || v == V_WEAVE_SLACK1)
                r = weave_round((enum variant)v, &vr[v], n);
            else
                r = raw_round((enum variant)v, &fds, &vr[v], n, default_slack);
            if (r == -ENOSYS && (v == V_PWAIT2 || v == V_PWAIT2_SLACK1)) {
                vr[v].unavailable = ENOSYS; /* an old kernel, or valgrind */
                continue;
            }
            if (r < 0) {
                (void)fprintf(stderr, "timer_bench: %s: %s (%s)\n", variant_name[v], strerror(-r),
                              bench_errno_name(-r));
                status = 1;
                goto out;
            }
            if (get_slack() != default_slack) {
                (void)fprintf(stderr, "timer_bench: %s left the timer slack at %ld ns, not %ld\n",
                              variant_name[v], get_slack(), default_slack);
                status = 1;
                goto out;
            }
        }
    }

    print_results(&o, vr, default_slack);
    print_heap(&o);
    if (fflush(stdout) != 0) {
        perror("timer_bench: stdout");
        status = 1;
    }
out:
    close_raw_fds(&fds);
    for (int v = 0; v < NVARIANTS; v++)
        free(vr[v].over);
    return status;
}
