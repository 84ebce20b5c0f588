/*
 * factorial.c - the asyncio tutorial's factorial program, with weave.
 *
 * Two tasks compute factorials one multiplication at a time and sleep after
 * announcing each step: A computes factorial(3), B factorial(4). The
 * program runs them twice, both times as weave tasks under weave_run:
 *
 *   1. with a blocking sleep (nanosleep): it stops the whole thread, so
 *      while A sleeps, B cannot run either; the five sleeps happen one after
 *      the other (about 5 s);
 *   2. with weave_sleep: only the calling task waits, so A's and B's sleeps
 *      overlap and the run lasts as long as B's three sleeps (about 3 s).
 *
 * The Python original, for comparison:
 *
 *     async def factorial(name, number):
 *         f = 1
 *         for i in range(2, number + 1):
 *             print(f"Task {name}: Compute factorial({i})")
 *             await custom_sleep()         # prints SLEEP and the time
 *             f *= i
 *         print(f"Task {name}: factorial({number}) is {f}\n")
 *
 * Usage: factorial [--step-ms N]   (the sleep of each step, default 1000)
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weave.h"

/* One factorial task. */
struct job {
    const char *name; /* "A", "B" */
    int number;       /* compute factorial(number) */
    int blocking;     /* 1: nanosleep, 0: weave_sleep */
    int64_t step_ms;  /* sleep of each step */
    int err;          /* errno of a failed sleep, 0 if none */
};

/* What main passes to the run's first task. */
struct demo {
    int blocking;
    int64_t step_ms;
    double seconds; /* the run's duration, for the last line */
    int err;        /* errno of the first failure, 0 if none */
    const char *what;
};

static double monotonic_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Print "SLEEP" and the wall-clock time with microseconds, as Python's
 * print('SLEEP', datetime.now()) does. */
static void print_sleep_line(void)
{
    struct timespec ts;
    struct tm tm;
    char when[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    if (!localtime_r(&ts.tv_sec, &tm) ||
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
        (void)snprintf(when, sizeof(when), "@%lld", (long long)ts.tv_sec);
    printf("SLEEP %s.%06ld\n", when, ts.tv_nsec / 1000);
}

/* The blocking sleep: the whole thread stops, every task with it. */
static int blocking_sleep(int64_t ms)
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

static int custom_sleep(const struct job *j)
{
    print_sleep_line();
    if (j->blocking)
        return blocking_sleep(j->step_ms);
    return weave_sleep(j->step_ms); /* only this task waits */
}

static void *factorial(void *arg)
{
    struct job *j = arg;
    uint64_t f = 1;

    for (int i = 2; i <= j->number; i++) {
        printf("Task %s: Compute factorial(%d)\n", j->name, i);
        if (custom_sleep(j) != 0) {
            j->err = errno;
            return NULL;
        }
        f *= (uint64_t)i;
    }
    printf("Task %s: factorial(%d) is %llu\n\n", j->name, j->number, (unsigned long long)f);
    return NULL;
}

/* The first task: start A and B, wait for both, time the whole. */
static void *demo_main(void *arg)
{
    struct demo *d = arg;
    struct job jobs[2] = {
        {"A", 3, d->blocking, d->step_ms, 0},
        {"B", 4, d->blocking, d->step_ms, 0},
    };
    weave_task *tasks[2] = {NULL, NULL};
    double start = monotonic_s();

    for (int i = 0; i < 2; i++) {
        tasks[i] = weave_spawn(factorial, &jobs[i]);
        if (!tasks[i]) {
            d->err = errno;
            d->what = "weave_spawn";
            break;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (tasks[i] && weave_join(tasks[i], NULL) != 0 && !d->err) {
            d->err = errno;
            d->what = "weave_join";
        }
    }
    for (int i = 0; i < 2; i++) {
        if (jobs[i].err && !d->err) {
            d->err = jobs[i].err;
            d->what = d->blocking ? "nanosleep" : "weave_sleep";
        }
    }
    d->seconds = monotonic_s() - start;
    return NULL;
}

static int run_part(int blocking, int64_t step_ms)
{
    struct demo d = {blocking, step_ms, 0.0, 0, NULL};

    if (blocking)
        printf("=== Part 1: blocking sleep (nanosleep stops the whole thread) ===\n\n");
    else
        printf("=== Part 2: weave_sleep (only the sleeping task waits) ===\n\n");
    if (weave_run(demo_main, &d, NULL) != 0) {
        (void)fprintf(stderr, "factorial: weave_run: %s\n", strerror(errno));
        return -1;
    }
    if (d.err) {
        (void)fprintf(stderr, "factorial: %s: %s\n", d.what, strerror(d.err));
        return -1;
    }
    printf("Total time: %.2f s\n\n", d.seconds);
    return 0;
}

static int parse_step(int argc, char **argv, int64_t *step_ms)
{
    *step_ms = 1000;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        char *end;
        long long n;

        if (strcmp(argv[i], "--step-ms") == 0 && i + 1 < argc)
            v = argv[++i];
        else if (strncmp(argv[i], "--step-ms=", 10) == 0)
            v = argv[i] + 10;
        else
            return -1;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < 0 || n > 3600000)
            return -1;
        *step_ms = n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int64_t step_ms;

    if (parse_step(argc, argv, &step_ms) != 0) {
        (void)fprintf(stderr, "usage: factorial [--step-ms N]   (N: 0..3600000, default 1000)\n");
        return 2;
    }
    /* Line-buffered even into a pipe, so each line shows when it happens. */
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    printf("Tasks A and B compute factorial(3) and factorial(4), sleeping %lld ms per step.\n\n",
           (long long)step_ms);
    if (run_part(1, step_ms) != 0 || run_part(0, step_ms) != 0)
        return 1;
    return 0;
}
