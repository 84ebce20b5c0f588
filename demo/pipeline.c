/*
 * pipeline.c - a producer, a pool of workers and a collector joined by
 * channels, and shut down by closing them.
 *
 *     producer --work--> worker 1..W --results--> collector
 *
 * The producer sends the numbers 0 .. N-1 on the work channel. Each worker
 * receives a number, computes a checksum of it (a stand-in for real work)
 * and sends {number, checksum, worker} on the results channel. The
 * collector receives the results, checks each checksum and ticks the number
 * off in a bitmap, so that a number lost or delivered twice is caught.
 *
 * Nobody sends a "stop" message: closing a channel is the message.
 *
 *   1. The producer closes the work channel after its last number.
 *   2. A worker's weave_chan_recv returns -1 with EPIPE once the work
 *      channel is closed and drained (the numbers already in it are still
 *      delivered), and the worker exits. The last worker out closes the
 *      results channel: a plain counter tells which one is last, since all
 *      tasks run on one thread and only switch inside weave calls.
 *   3. The collector's weave_chan_recv returns EPIPE once every result has
 *      been received: the pipeline is done.
 *
 * Every task is a member of one task group, and main just waits for the
 * group. If a task fails, weave_group_fail cancels all the others, so that
 * none is left waiting forever on a channel that nobody will close.
 *
 * The Go version would read the same: "for x := range work { ... }" is the
 * receive loop that ends on close, and a sync.WaitGroup closes results.
 *
 * With a buffered channel (--capacity C > 0) a sender runs on until the
 * buffer is full, so the tasks switch once per batch rather than once per
 * item; --capacity 0 makes rendezvous channels, where every item is handed
 * from one task to another.
 *
 * The count of numbers each worker did is printed at the end, and it is
 * uneven: the work here never waits, so the worker that runs first goes on
 * taking numbers as long as there are some, and the others only get those
 * that come while it waits for room in the results channel. All the tasks
 * share one thread: more workers help only when the work itself waits (for
 * I/O, a timer, weave_offload), since a waiting worker lets another run.
 *
 * Usage: pipeline [--items N] [--workers W] [--capacity C]
 *        (default 1000000 items, 4 workers, capacity 64)
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weave.h"

#define MAX_ITEMS    1000000000ull /* the bitmap then takes 125 MB */
#define MAX_WORKERS  1000u
#define MAX_CAPACITY 1000000u

/* What a worker sends to the collector. */
struct result {
    uint64_t item;   /* the number received from the producer */
    uint64_t check;  /* checksum(item), as the worker computed it */
    uint32_t worker; /* 0-based index of the worker that did it */
};

/* Everything the tasks share (one thread: no locking). */
struct pipeline {
    uint64_t items;      /* numbers to send */
    uint32_t workers;    /* workers to start */
    size_t capacity;     /* of both channels */
    weave_chan *work;    /* producer -> workers: uint64_t */
    weave_chan *results; /* workers -> collector: struct result */
    weave_group *group;  /* every task of the pipeline */
    uint32_t running;    /* workers that have not exited yet */
    uint64_t *done_by;   /* [workers] items each worker processed */
    uint8_t *seen;       /* bitmap of the numbers the collector received */
    uint64_t received;   /* results received */
    uint64_t duplicates; /* numbers received more than once */
    uint64_t bad;        /* results with a wrong checksum or number */
    int64_t start_us;    /* when the pipeline started */
    int64_t end_us;      /* when the collector saw the results channel close */
    int err;             /* errno of the first failure, 0 if none */
    const char *what;    /* the call that failed */
};

/* A worker's argument. */
struct worker {
    struct pipeline *p;
    uint32_t id;
};

/* The "work": a 64-bit mix (splitmix64's finaliser). */
static uint64_t checksum(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void say(const struct pipeline *p, const char *who, const char *what)
{
    printf("[%7.3f s] %s: %s\n", (double)(weave_now_us() - p->start_us) / 1e6, who, what);
}

/* Record the first real failure and cancel the whole pipeline. A task that
 * was cancelled because another one failed only leaves. */
static void fail(struct pipeline *p, const char *what, int err)
{
    if (err != ECANCELED && !p->err) {
        p->err = err;
        p->what = what;
    }
    if (weave_group_fail(p->group, err) != 0 && !p->err) {
        p->err = errno;
        p->what = "weave_group_fail";
    }
}

static void *producer(void *arg)
{
    struct pipeline *p = arg;
    char line[96];

    (void)snprintf(line, sizeof(line), "sending %llu numbers", (unsigned long long)p->items);
    say(p, "producer", line);
    for (uint64_t i = 0; i < p->items; i++) {
        if (weave_chan_send(p->work, &i) != 0) {
            fail(p, "producer: weave_chan_send", errno);
            return NULL;
        }
    }
    say(p, "producer", "sent the last number, closing the work channel");
    if (weave_chan_close(p->work) != 0)
        fail(p, "producer: weave_chan_close", errno);
    return NULL;
}

static void *worker(void *arg)
{
    struct worker *w = arg;
    struct pipeline *p = w->p;
    const char *what = NULL;
    char who[32], line[96];
    uint64_t item, n = 0;
    int err = 0;

    for (;;) {
        struct result r;

        if (weave_chan_recv(p->work, &item) != 0) {
            if (errno != EPIPE) { /* EPIPE: closed and drained, the normal end */
                err = errno;
                what = "worker: weave_chan_recv";
            }
            break;
        }
        r.item = item;
        r.check = checksum(item);
        r.worker = w->id;
        if (weave_chan_send(p->results, &r) != 0) {
            err = errno;
            what = "worker: weave_chan_send";
            break;
        }
        n++;
    }
    p->done_by[w->id] = n;
    (void)snprintf(who, sizeof(who), "worker %u", w->id + 1);
    if (what) {
        fail(p, what, err);
    } else {
        (void)snprintf(line, sizeof(line), "work channel closed and drained; %llu numbers done",
                       (unsigned long long)n);
        say(p, who, line);
    }
    if (--p->running == 0) {
        if (!p->err)
            say(p, who, "last worker out, closing the results channel");
        if (weave_chan_close(p->results) != 0)
            fail(p, "worker: weave_chan_close", errno);
    }
    return NULL;
}

static void *collector(void *arg)
{
    struct pipeline *p = arg;
    struct result r;
    char line[96];

    while (weave_chan_recv(p->results, &r) == 0) {
        uint8_t bit;

        p->received++;
        if (r.item >= p->items || r.check != checksum(r.item) || r.worker >= p->workers) {
            p->bad++;
            continue;
        }
        bit = (uint8_t)(1u << (r.item % 8));
        if (p->seen[r.item / 8] & bit)
            p->duplicates++;
        p->seen[r.item / 8] |= bit;
    }
    if (errno != EPIPE) {
        fail(p, "collector: weave_chan_recv", errno);
        return NULL;
    }
    p->end_us = weave_now_us();
    (void)snprintf(line, sizeof(line), "results channel closed and drained after %llu results",
                   (unsigned long long)p->received);
    say(p, "collector", line);
    return NULL;
}

/* Spawn one member of the pipeline's group; on failure, cancel the rest. */
static int spawn(struct pipeline *p, const char *name, weave_fn fn, void *arg)
{
    weave_task_opts opts = {.name = name};

    if (weave_group_spawn_with(p->group, &opts, fn, arg))
        return 0;
    fail(p, "weave_group_spawn", errno);
    return -1;
}

static void *pipeline_main(void *arg)
{
    struct pipeline *p = arg;
    struct worker *ws = calloc(p->workers, sizeof(*ws));

    if (!ws)
        p->what = "calloc";
    else if (!(p->work = weave_chan_new(sizeof(uint64_t), p->capacity)) ||
             !(p->results = weave_chan_new(sizeof(struct result), p->capacity)))
        p->what = "weave_chan_new";
    else if (!(p->group = weave_group_new()))
        p->what = "weave_group_new";
    if (p->what) {
        p->err = errno;
        goto out;
    }
    p->running = p->workers;
    p->start_us = weave_now_us();
    if (spawn(p, "producer", producer, p) == 0) {
        for (uint32_t i = 0; i < p->workers; i++) {
            char name[WEAVE_NAME_MAX];

            ws[i].p = p;
            ws[i].id = i;
            (void)snprintf(name, sizeof(name), "worker-%u", i + 1);
            if (spawn(p, name, worker, &ws[i]) != 0)
                break;
        }
        if (!p->err)
            (void)spawn(p, "collector", collector, p);
    }
    /* -1 here means a member failed: fail() has recorded what. */
    if (weave_group_wait(p->group, -1) != 0 && !p->err) {
        p->err = errno;
        p->what = "weave_group_wait";
    }
out:
    /* The members have all ended: nothing waits on the channels. */
    if (p->group && weave_group_free(p->group) != 0 && !p->err) {
        p->err = errno;
        p->what = "weave_group_free";
    }
    if (p->work && weave_chan_free(p->work) != 0 && !p->err) {
        p->err = errno;
        p->what = "weave_chan_free";
    }
    if (p->results && weave_chan_free(p->results) != 0 && !p->err) {
        p->err = errno;
        p->what = "weave_chan_free";
    }
    free(ws);
    return NULL;
}

/* Parse "--name N" or "--name=N" at argv[*i]: 1 and *out set if it is that
 * option with a good value, 0 if it is another option, -1 if the value is
 * bad. */
static int opt_u64(int argc, char **argv, int *i, const char *name, uint64_t min, uint64_t max,
                   uint64_t *out)
{
    size_t len = strlen(name);
    const char *v;
    char *end;
    unsigned long long n;

    if (strncmp(argv[*i], name, len) != 0)
        return 0;
    if (argv[*i][len] == '=')
        v = argv[*i] + len + 1;
    else if (argv[*i][len] == '\0' && *i + 1 < argc)
        v = argv[++*i];
    else
        return argv[*i][len] == '\0' ? -1 : 0;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-' || n < min || n > max)
        return -1;
    *out = n;
    return 1;
}

static _Noreturn void usage(int status)
{
    (void)fprintf(status ? stderr : stdout,
                  "usage: pipeline [--items N] [--workers W] [--capacity C]\n"
                  "  --items N     numbers to send through the pipeline (1..%llu, default "
                  "1000000)\n"
                  "  --workers W   worker tasks (1..%u, default 4)\n"
                  "  --capacity C  elements each channel buffers (0..%u, default 64;\n"
                  "                0 makes rendezvous channels)\n",
                  MAX_ITEMS, MAX_WORKERS, MAX_CAPACITY);
    exit(status);
}

int main(int argc, char **argv)
{
    struct pipeline p;
    uint64_t items = 1000000, workers = 4, capacity = 64, missing = 0;
    double secs;

    for (int i = 1; i < argc; i++) {
        int r;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            usage(0);
        if ((r = opt_u64(argc, argv, &i, "--items", 1, MAX_ITEMS, &items)) == 0 &&
            (r = opt_u64(argc, argv, &i, "--workers", 1, MAX_WORKERS, &workers)) == 0)
            r = opt_u64(argc, argv, &i, "--capacity", 0, MAX_CAPACITY, &capacity);
        if (r != 1)
            usage(2);
    }
    /* Line-buffered even into a pipe, so each line shows when it happens. */
    (void)setvbuf(stdout, NULL, _IOLBF, 0);

    memset(&p, 0, sizeof(p));
    p.items = items;
    p.workers = (uint32_t)workers;
    p.capacity = (size_t)capacity;
    p.done_by = calloc(p.workers, sizeof(*p.done_by));
    p.seen = calloc((size_t)((items + 7) / 8), 1);
    if (!p.done_by || !p.seen) {
        (void)fprintf(stderr, "pipeline: out of memory for %llu items\n",
                      (unsigned long long)items);
        free(p.done_by);
        free(p.seen);
        return 1;
    }
    printf("pipeline: 1 producer -> %u workers -> 1 collector, %llu numbers, channels of "
           "capacity %zu%s\n\n",
           p.workers, (unsigned long long)p.items, p.capacity,
           p.capacity == 0 ? " (rendezvous)" : "");

    if (weave_run(pipeline_main, &p, NULL) != 0) {
        p.err = errno;
        p.what = "weave_run";
    }
    if (p.err) {
        (void)fprintf(stderr, "pipeline: %s: %s\n", p.what, strerror(p.err));
        free(p.done_by);
        free(p.seen);
        return 1;
    }

    for (uint64_t i = 0; i < p.items; i++)
        missing += !(p.seen[i / 8] & (1u << (i % 8)));
    printf("\nwork done per worker:");
    for (uint32_t i = 0; i < p.workers; i++)
        printf(" %llu", (unsigned long long)p.done_by[i]);
    printf("\nchecked: %llu of %llu numbers arrived, %llu missing, %llu duplicates, %llu bad "
           "checksums: %s\n",
           (unsigned long long)(p.items - missing), (unsigned long long)p.items,
           (unsigned long long)missing, (unsigned long long)p.duplicates, (unsigned long long)p.bad,
           missing || p.duplicates || p.bad ? "FAILED" : "every number exactly once");
    secs = (double)(p.end_us - p.start_us) / 1e6;
    printf("throughput: %.0f items/s (%.3f s; %.0f ns per item, which crossed two channels)\n",
           secs > 0 ? (double)p.items / secs : 0.0, secs, secs * 1e9 / (double)p.items);
    free(p.done_by);
    free(p.seen);
    return missing || p.duplicates || p.bad ? 1 : 0;
}
