/*
 * sleep_bench.c - blocking sleep against weave's sleep, on the asyncio
 * tutorial's workload.
 *
 * Task i (from 0) computes factorial(i + 3) one multiplication per step,
 * sleeping sleep_ms in every step, so it takes i + 2 steps. Both modes run
 * the same tasks under weave_run; only the sleep differs:
 *
 *   blocking  nanosleep: the whole thread stops, so the tasks run one after
 *             the other (ideal wall time: all steps times sleep_ms);
 *   async     weave_sleep: only the calling task waits, so the sleeps
 *             overlap (ideal wall time: the longest task's steps times
 *             sleep_ms).
 *
 * Every sleep is timed on CLOCK_MONOTONIC; its overshoot (elapsed minus
 * requested) is reported as p50, p99 and max.
 *
 * The floor of that overshoot is the kernel's: how late a timer wakes a
 * thread on this machine. So that the async figure can be judged against
 * it, a plain thread takes bare timerfd waits of the same length while the
 * modes run (it sleeps nearly all the time, so it adds no wall time and
 * hardly any load): the "timerfd" row. weave's own waits end by a
 * timerfd too, which gets no timer slack, so weave leaves the thread's
 * slack as it is; the printed slack only matters to the blocking mode's
 * nanosleep (see timer_bench for every mechanism side by side).
 *
 * Memory is O(total steps): two timestamps per sleep (kept for --timeline)
 * and one overshoot per sleep, nothing per step beyond that. --tasks 1000
 * --sleep-ms 10 is 501,500 steps in blocking mode (about 84 minutes); the
 * program prints nothing until the end.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "weave.h"

#define MAX_TASKS    10000u           /* 50,015,000 steps, 16 bytes each per mode */
#define MAX_SLEEP_MS 3600000u         /* one hour */
#define CHART_COLS   72               /* timeline width, in columns */
#define CHART_ROWS   24               /* timeline height, in tasks at most */
#define CHART_TICK   (CHART_COLS / 4) /* columns between two axis ticks */

enum mode { MODE_BLOCKING, MODE_ASYNC };

static const char *const mode_names[] = {"blocking", "async"};

/* One sleep: when it began and ended, in ns since the run's origin. */
struct sleep_rec {
    int64_t start;
    int64_t end;
};

struct run;

/* One task of a run. */
struct task_rec {
    struct run *run;
    uint32_t index;     /* i: computes factorial(i + 3) */
    uint32_t nsteps;    /* i + 2 */
    uint64_t first;     /* index of its first sleep in run->sleeps */
    int64_t began;      /* ns since origin when it first ran */
    int64_t ended;      /* ns since origin when it finished */
    uint64_t factorial; /* the result, modulo 2^64 (not printed) */
    int err;            /* errno of a failed sleep, 0 if none failed */
};

/* One mode's run and its results. */
struct run {
    enum mode mode;
    uint32_t ntasks;
    uint64_t sleep_ms;
    uint64_t nsteps;          /* total sleeps of all tasks */
    int64_t origin;           /* CLOCK_MONOTONIC ns just before the first spawn */
    int64_t wall_ns;          /* first spawn until every task is joined */
    long slack_ns;            /* the thread's timer slack while tasks ran */
    struct sleep_rec *sleeps; /* [nsteps], task by task */
    struct task_rec *tasks;   /* [ntasks] */
    weave_task **handles;     /* [ntasks] */
    int64_t over_p50;         /* overshoot, ns */
    int64_t over_p99;
    int64_t over_max;
    int err;          /* errno of the first failure, 0 if none */
    const char *what; /* the call that failed */
};

struct options {
    uint32_t ntasks;
    uint64_t sleep_ms;
    bool run_mode[2]; /* indexed by enum mode */
    bool json;
    bool timeline;
};

static void usage(FILE *f)
{
    (void)fprintf(f,
                  "usage: sleep_bench [--tasks N] [--sleep-ms M] [--mode blocking|async|both]\n"
                  "                   [--json | --timeline]\n"
                  "  --tasks N      tasks; task i (from 0) computes factorial(i+3) in i+2 steps\n"
                  "                 (1..%u, default 2)\n"
                  "  --sleep-ms M   sleep of every step in ms (0..%u, default 1000)\n"
                  "  --mode MODE    blocking (nanosleep), async (weave_sleep) or both (default)\n"
                  "  --json         one JSON object per mode, one per line, instead of the table\n"
                  "  --timeline     also draw when each task slept and when it computed\n",
                  MAX_TASKS, MAX_SLEEP_MS);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    /* --mode's values: the enum mode ones by index, then "both". */
    static const char *const modes[] = {"blocking", "async", "both", NULL};
    int mode = 2; /* both */
    const struct bench_opt opts[] = {
        {.name = "--json", .flag = &o->json},
        {.name = "--timeline", .flag = &o->timeline},
        {.name = "--tasks",
         .u32 = &o->ntasks,
         .min = 1,
         .max = MAX_TASKS,
         .bad = "--tasks wants a whole number from 1 to 10000, not '%s'"},
        {.name = "--sleep-ms",
         .u64 = &o->sleep_ms,
         .min = 0,
         .max = MAX_SLEEP_MS,
         .bad = "--sleep-ms wants a whole number from 0 to 3600000, not '%s'"},
        {.name = "--mode",
         .choice = &mode,
         .choices = modes,
         .bad = "--mode wants blocking, async or both, not '%s'"},
    };

    o->ntasks = 2;
    o->sleep_ms = 1000;
    o->json = o->timeline = false;
    bench_parse_args(argc, argv, "sleep_bench", usage, opts, sizeof(opts) / sizeof(opts[0]), NULL);
    o->run_mode[MODE_BLOCKING] = mode != MODE_ASYNC; /* "blocking" or "both" */
    o->run_mode[MODE_ASYNC] = mode != MODE_BLOCKING; /* "async" or "both" */
    if (o->json && o->timeline)
        bench_bad_usage("sleep_bench", usage, "--json and --timeline do not mix%s", "");
}

/* ---- the tasks ---------------------------------------------------------- */

/* nanosleep for ms, resumed after signals: blocks the whole thread. */
static int blocking_sleep(uint64_t ms)
{
    struct timespec req, rem;

    req.tv_sec = (time_t)(ms / 1000);
    req.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&req, &rem) != 0) {
        if (errno != EINTR)
            return -1;
        req = rem;
    }
    return 0;
}

static void *task_main(void *arg)
{
    struct task_rec *t = arg;
    struct run *r = t->run;
    uint64_t f = 1;

    t->began = bench_now_ns() - r->origin;
    for (uint32_t k = 0; k < t->nsteps; k++) {
        struct sleep_rec *sl = &r->sleeps[t->first + k];
        int rc;

        f *= (uint64_t)k + 2; /* factorial(k + 2) so far */
        sl->start = bench_now_ns() - r->origin;
        if (r->mode == MODE_BLOCKING)
            rc = blocking_sleep(r->sleep_ms);
        else
            rc = weave_sleep((int64_t)r->sleep_ms);
        sl->end = bench_now_ns() - r->origin;
        if (rc != 0) {
            t->err = errno;
            break;
        }
    }
    t->factorial = f;
    t->ended = bench_now_ns() - r->origin;
    return NULL;
}

static void run_fail(struct run *r, const char *what, int err)
{
    if (!r->err) {
        r->err = err;
        r->what = what;
    }
}

/* The main task of one run: spawn every task, then join them in order. */
static void *run_main(void *arg)
{
    struct run *r = arg;
    uint32_t spawned = 0;

    r->slack_ns = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    r->origin = bench_now_ns();
    for (; spawned < r->ntasks; spawned++) {
        r->handles[spawned] = weave_spawn(task_main, &r->tasks[spawned]);
        if (!r->handles[spawned]) {
            run_fail(r, "weave_spawn", errno);
            break;
        }
    }
    for (uint32_t i = 0; i < spawned; i++) {
        /* After a failed spawn, stop the others instead of waiting. */
        if (r->err && weave_cancel(r->handles[i]) != 0)
            run_fail(r, "weave_cancel", errno);
        if (weave_join(r->handles[i], NULL) != 0)
            run_fail(r, "weave_join", errno);
    }
    r->wall_ns = bench_now_ns() - r->origin;
    for (uint32_t i = 0; i < spawned; i++)
        if (r->tasks[i].err)
            run_fail(r, r->mode == MODE_BLOCKING ? "nanosleep" : "weave_sleep", r->tasks[i].err);
    return NULL;
}

/* Sleeps of all tasks: sum of (i + 2) for i < ntasks. */
static uint64_t total_steps(uint32_t ntasks)
{
    uint64_t n = ntasks;

    return n * (n + 3) / 2;
}

static int run_init(struct run *r, enum mode mode, const struct options *o)
{
    uint64_t first = 0;

    memset(r, 0, sizeof(*r));
    r->mode = mode;
    r->ntasks = o->ntasks;
    r->sleep_ms = o->sleep_ms;
    r->nsteps = total_steps(o->ntasks);
    r->sleeps = calloc((size_t)r->nsteps, sizeof(*r->sleeps));
    r->tasks = calloc(r->ntasks, sizeof(*r->tasks));
    r->handles = calloc(r->ntasks, sizeof(weave_task *));
    if (!r->sleeps || !r->tasks || !r->handles)
        return -1;
    for (uint32_t i = 0; i < r->ntasks; i++) {
        r->tasks[i].run = r;
        r->tasks[i].index = i;
        r->tasks[i].nsteps = i + 2;
        r->tasks[i].first = first;
        first += i + 2;
    }
    return 0;
}

static void run_free(struct run *r)
{
    free(r->sleeps);
    free(r->tasks);
    free(r->handles);
    r->sleeps = NULL;
    r->tasks = NULL;
    r->handles = NULL;
}

/* Overshoot percentiles of every sleep of r. */
static int run_summarize(struct run *r)
{
    int64_t *over = malloc((size_t)r->nsteps * sizeof(*over));
    int64_t req = (int64_t)r->sleep_ms * 1000000;

    if (!over)
        return -1;
    for (uint64_t k = 0; k < r->nsteps; k++)
        over[k] = r->sleeps[k].end - r->sleeps[k].start - req;
    qsort(over, (size_t)r->nsteps, sizeof(*over), bench_cmp_i64);
    r->over_p50 = bench_percentile(over, (size_t)r->nsteps, 50);
    r->over_p99 = bench_percentile(over, (size_t)r->nsteps, 99);
    r->over_max = over[r->nsteps - 1];
    free(over);
    return 0;
}

static uint64_t ideal_ms(const struct run *r)
{
    /* Blocking: every step in turn. Async: the longest task, whose steps
     * are ntasks + 1. */
    if (r->mode == MODE_BLOCKING)
        return r->nsteps * r->sleep_ms;
    return ((uint64_t)r->ntasks + 1) * r->sleep_ms;
}

/* ---- the timerfd baseline ------------------------------------------------ */

struct baseline {
    int64_t wait_ns; /* each wait */
    uint64_t n;      /* waits to take */
    int64_t *over;   /* [n] overshoots, ns */
    uint64_t taken;  /* waits taken */
    int err;         /* errno of a failure, or 0 */
    int64_t p50, p99, max;
};

/* Bare timerfd waits, one after the other, on a thread of their own. */
static void *baseline_thread(void *arg)
{
    struct baseline *b = arg;
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};

    if (tfd < 0 || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) != 0) {
        b->err = errno;
        goto out;
    }
    for (; b->taken < b->n; b->taken++) {
        int64_t deadline = bench_now_ns() + b->wait_ns;
        struct itimerspec its = {{0, 0}, {(time_t)(deadline / 1000000000), deadline % 1000000000}};
        uint64_t expirations;

        if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0 ||
            epoll_wait(epfd, &ev, 1, -1) != 1 || read(tfd, &expirations, 8) != 8) {
            b->err = errno ? errno : EIO;
            break;
        }
        b->over[b->taken] = bench_now_ns() - deadline;
    }
out:
    if (tfd >= 0)
        close(tfd);
    if (epfd >= 0)
        close(epfd);
    return NULL;
}

static void baseline_summarize(struct baseline *b)
{
    if (b->taken == 0)
        return;
    qsort(b->over, (size_t)b->taken, sizeof(*b->over), bench_cmp_i64);
    b->p50 = bench_percentile(b->over, (size_t)b->taken, 50);
    b->p99 = bench_percentile(b->over, (size_t)b->taken, 99);
    b->max = b->over[b->taken - 1];
}

/* ---- output ------------------------------------------------------------- */

static double ns_to_ms(int64_t ns)
{
    return (double)ns / 1e6;
}

static double ns_to_us(int64_t ns)
{
    return (double)ns / 1e3;
}

static void print_table(const struct run *runs[2], const struct options *o,
                        const struct baseline *b)
{
    const struct run *any = runs[MODE_BLOCKING] ? runs[MODE_BLOCKING] : runs[MODE_ASYNC];

    printf("sleep_bench: blocking sleep (nanosleep) vs async sleep (weave_sleep), tasks under "
           "weave_run\n");
    printf("parameters: tasks=%u, steps=%llu (task i computes factorial(i+3) in i+2 steps), "
           "sleep_ms=%llu, mode=%s\n",
           o->ntasks, (unsigned long long)total_steps(o->ntasks), (unsigned long long)o->sleep_ms,
           runs[MODE_BLOCKING] && runs[MODE_ASYNC] ? "both"
           : runs[MODE_BLOCKING]                   ? "blocking"
                                                   : "async");
    printf("timer slack in the tasks: %ld ns; overshoot = elapsed - requested, every sleep, "
           "CLOCK_MONOTONIC\n",
           any->slack_ns);
    printf("ideal: blocking = steps x sleep, async = longest task's steps x sleep; "
           "speed-up = blocking wall / async wall\n\n");
    printf("%-10s %7s %9s %12s %12s %9s   %10s %10s %10s\n", "", "", "", "wall", "ideal", "",
           "overshoot", "overshoot", "overshoot");
    printf("%-10s %7s %9s %12s %12s %9s   %10s %10s %10s\n", "mode", "tasks", "steps", "(ms)",
           "(ms)", "speed-up", "p50 (us)", "p99 (us)", "max (us)");
    for (int m = 0; m < 2; m++) {
        const struct run *r = runs[m];
        char speedup[32] = "-";

        if (!r)
            continue;
        if (m == MODE_ASYNC && runs[MODE_BLOCKING] && r->wall_ns > 0)
            (void)snprintf(speedup, sizeof(speedup), "%.2fx",
                           (double)runs[MODE_BLOCKING]->wall_ns / (double)r->wall_ns);
        printf("%-10s %7u %9llu %12.3f %12.3f %9s   %10.1f %10.1f %10.1f\n", mode_names[m],
               r->ntasks, (unsigned long long)r->nsteps, ns_to_ms(r->wall_ns), (double)ideal_ms(r),
               speedup, ns_to_us(r->over_p50), ns_to_us(r->over_p99), ns_to_us(r->over_max));
    }
    if (b->taken > 0) {
        printf("%-10s %7s %9llu %12s %12s %9s   %10.1f %10.1f %10.1f\n", "timerfd", "-",
               (unsigned long long)b->taken, "-", "-", "-", ns_to_us(b->p50), ns_to_us(b->p99),
               ns_to_us(b->max));
        if (runs[MODE_ASYNC])
            printf("\nasync overshoot p50 - bare timerfd p50 (same run): %+.1f us\n",
                   ns_to_us(runs[MODE_ASYNC]->over_p50 - b->p50));
    }
}

static void print_json(const struct run *runs[2], const struct baseline *b)
{
    for (int m = 0; m < 2; m++) {
        const struct run *r = runs[m];
        char speedup[32] = "null";

        if (!r)
            continue;
        if (m == MODE_ASYNC && runs[MODE_BLOCKING] && r->wall_ns > 0)
            (void)snprintf(speedup, sizeof(speedup), "%.4f",
                           (double)runs[MODE_BLOCKING]->wall_ns / (double)r->wall_ns);
        printf("{\"bench\":\"sleep_bench\",\"mode\":\"%s\",\"tasks\":%u,\"steps\":%llu,"
               "\"sleep_ms\":%llu,\"wall_ms\":%.3f,\"ideal_ms\":%llu,\"speedup\":%s,"
               "\"overshoot_us_p50\":%.1f,\"overshoot_us_p99\":%.1f,\"overshoot_us_max\":%.1f,"
               "\"timer_slack_ns\":%ld}\n",
               mode_names[m], r->ntasks, (unsigned long long)r->nsteps,
               (unsigned long long)r->sleep_ms, ns_to_ms(r->wall_ns),
               (unsigned long long)ideal_ms(r), speedup, ns_to_us(r->over_p50),
               ns_to_us(r->over_p99), ns_to_us(r->over_max), r->slack_ns);
    }
    if (b->taken > 0)
        printf("{\"bench\":\"sleep_bench\",\"mode\":\"timerfd\",\"waits\":%llu,"
               "\"overshoot_us_p50\":%.1f,\"overshoot_us_p99\":%.1f,\"overshoot_us_max\":%.1f}\n",
               (unsigned long long)b->taken, ns_to_us(b->p50), ns_to_us(b->p99), ns_to_us(b->max));
}

/* A time on the chart's axis: seconds from 1 s up, milliseconds below. */
static void fmt_axis_time(char *buf, size_t len, int64_t ns, int64_t span_ns)
{
    if (span_ns >= 1000000000)
        (void)snprintf(buf, len, "%.2f s", (double)ns / 1e9);
    else if (span_ns >= 10000000)
        (void)snprintf(buf, len, "%.0f ms", (double)ns / 1e6);
    else
        (void)snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
}

/* Write s into line at column col (clipped to the line's length). */
static void put_label(char *line, size_t len, size_t col, const char *s)
{
    for (; *s && col < len; s++, col++)
        line[col] = *s;
}

/* Clamp the overlap of [a, b) with [c0, c1) to a length. */
static int64_t overlap(int64_t a, int64_t b, int64_t c0, int64_t c1)
{
    int64_t lo = a > c0 ? a : c0, hi = b < c1 ? b : c1;

    return hi > lo ? hi - lo : 0;
}

/* Add [a, b) to per-column totals: O(columns the interval spans). */
static void add_span(int64_t *cols, int64_t a, int64_t b, int64_t cell)
{
    int64_t c;

    if (b <= a)
        return;
    for (c = a / cell; c < CHART_COLS && c * cell < b; c++)
        cols[c] += overlap(a, b, c * cell, (c + 1) * cell);
}

#define LABEL_W 11 /* "task 9999 " plus the bar */

static void print_chart(const struct run *r, int64_t cell)
{
    uint32_t rows = r->ntasks < CHART_ROWS ? r->ntasks : CHART_ROWS;

    printf("%s: wall %.1f ms\n", mode_names[r->mode], ns_to_ms(r->wall_ns));
    for (uint32_t row = 0; row < rows; row++) {
        /* Evenly spaced tasks, the first and the last included. */
        uint32_t i = rows > 1 ? (uint32_t)((uint64_t)row * (r->ntasks - 1) / (rows - 1)) : 0;
        const struct task_rec *t = &r->tasks[i];
        int64_t alive[CHART_COLS] = {0}, asleep[CHART_COLS] = {0};
        bool resolved = (int64_t)r->sleep_ms * 1000000 >= 2 * cell;
        char cells[CHART_COLS + 1];

        add_span(alive, t->began, t->ended, cell);
        for (uint32_t k = 0; k < t->nsteps; k++)
            add_span(asleep, r->sleeps[t->first + k].start, r->sleeps[t->first + k].end, cell);
        for (int c = 0; c < CHART_COLS; c++) {
            int64_t awake = alive[c] - asleep[c];

            /* When a sleep spans two columns or more, the moment of
             * computing between two sleeps gets its own mark; when steps
             * are finer than that, a column shows what took most of it. */
            if (awake > 0 && (awake >= asleep[c] || resolved))
                cells[c] = '#';
            else
                cells[c] = asleep[c] > 0 ? '-' : ' ';
        }
        cells[CHART_COLS] = '\0';
        printf("task %-5u |%s|\n", i, cells);
    }
    if (rows < r->ntasks)
        printf("%*s(%u of %u tasks shown, evenly spaced; %u left out)\n", LABEL_W, "", rows,
               r->ntasks, r->ntasks - rows);
}

/* The column of the axis under time boundary c (0..CHART_COLS): the bars
 * at either end, and in between the first column of the cell starting there. */
static size_t tick_col(int c)
{
    if (c == 0)
        return LABEL_W;
    if (c == CHART_COLS)
        return LABEL_W + CHART_COLS + 1;
    return LABEL_W + 1 + (size_t)c;
}

static void print_timeline(const struct run *runs[2])
{
    int64_t span = 0, cell;
    char axis[LABEL_W + CHART_COLS + 3], labels[LABEL_W + CHART_COLS + 3];
    const size_t len = LABEL_W + CHART_COLS + 2;

    for (int m = 0; m < 2; m++)
        if (runs[m] && runs[m]->wall_ns > span)
            span = runs[m]->wall_ns;
    /* Whole nanoseconds per column, rounded up so the longest run fits. */
    cell = span / CHART_COLS + 1;

    memset(axis, ' ', sizeof(axis));
    memset(labels, ' ', sizeof(labels));
    memset(axis + LABEL_W, '-', CHART_COLS + 2);
    for (int c = 0; c <= CHART_COLS; c += CHART_TICK) {
        char buf[32];
        size_t w, col = tick_col(c);

        axis[col] = '+';
        fmt_axis_time(buf, sizeof(buf), (int64_t)c * cell, span);
        w = strlen(buf);
        /* The first label starts at its tick, the last ends at it, the
         * others are centred on theirs. */
        if (c == CHART_COLS)
            col = col + 1 - w;
        else if (c > 0)
            col -= w / 2;
        put_label(labels, len, col, buf);
    }
    axis[len] = labels[len] = '\0';
    for (size_t k = len; k > 0 && labels[k - 1] == ' '; k--)
        labels[k - 1] = '\0';

    printf("\ntimeline: one row per task, time across; both charts share one scale\n");
    printf("legend: '#' computing or runnable  '-' sleeping  ' ' not started yet, or done\n");
    printf("        (a column holding several steps shows what took most of it)\n");
    printf("scale: one column = %.3f ms, %d columns = %.1f ms\n\n", ns_to_ms(cell), CHART_COLS,
           ns_to_ms(cell * CHART_COLS));
    for (int m = 0; m < 2; m++) {
        if (!runs[m])
            continue;
        print_chart(runs[m], cell);
        printf("%s\n%s\n\n", axis, labels);
    }
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct options o;
    struct run storage[2];
    const struct run *runs[2] = {NULL, NULL};
    struct baseline base;
    pthread_t base_thread;
    bool base_started = false;
    int status = 0;

    parse_args(argc, argv, &o);
    memset(storage, 0, sizeof(storage));
    memset(&base, 0, sizeof(base));
    for (int m = 0; m < 2 && status == 0; m++) {
        struct run *r = &storage[m];

        if (!o.run_mode[m])
            continue;
        if (!base_started) {
            /* As many bare waits as fit in the ideal time of the modes to
             * run, less one: they span both, so that a drift of the
             * machine's timer latency falls on all three rows alike. */
            uint64_t ideal = 0;

            for (int k = m; k < 2; k++) {
                struct run probe;

                probe.mode = (enum mode)k;
                probe.ntasks = o.ntasks;
                probe.sleep_ms = o.sleep_ms;
                probe.nsteps = total_steps(o.ntasks);
                if (o.run_mode[k])
                    ideal += ideal_ms(&probe);
            }
            base.wait_ns = (int64_t)o.sleep_ms * 1000000;
            base.n = o.sleep_ms ? ideal / o.sleep_ms - 1 : 0;
            if (base.n > 1000)
                base.n = 1000;
            base.over = base.n ? calloc((size_t)base.n, sizeof(*base.over)) : NULL;
            base_started =
                base.over && pthread_create(&base_thread, NULL, baseline_thread, &base) == 0;
        }
        if (run_init(r, (enum mode)m, &o) != 0) {
            (void)fprintf(stderr, "sleep_bench: no memory for %llu sleep records\n",
                          (unsigned long long)total_steps(o.ntasks));
            status = 1;
            break;
        }
        if (weave_run(run_main, r, NULL) != 0) {
            (void)fprintf(stderr, "sleep_bench: %s mode: weave_run: %s (%s)\n", mode_names[m],
                          strerror(errno), bench_errno_name(errno));
            status = 1;
        } else if (r->err) {
            (void)fprintf(stderr, "sleep_bench: %s mode: %s: %s (%s)\n", mode_names[m], r->what,
                          strerror(r->err), bench_errno_name(r->err));
            status = 1;
        } else if (run_summarize(r) != 0) {
            (void)fprintf(stderr, "sleep_bench: no memory to sort %llu overshoots\n",
                          (unsigned long long)r->nsteps);
            status = 1;
        } else {
            runs[m] = r;
        }
    }
    if (base_started) {
        pthread_join(base_thread, NULL);
        baseline_summarize(&base);
    }
    if (status == 0) {
        if (o.json) {
            print_json(runs, &base);
        } else {
            print_table(runs, &o, &base);
            if (o.timeline)
                print_timeline(runs);
        }
        if (fflush(stdout) != 0) {
            perror("sleep_bench: stdout");
            status = 1;
        }
    }
    for (int m = 0; m < 2; m++)
        run_free(&storage[m]);
    free(base.over);
    return status;
}
