/*
 * peer.c - the harness of the C peer programs: options, repetitions,
 * medians, the sleepers' procedure and the output (see peer.h).
 */
#define _GNU_SOURCE

#include "peer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define MAX_ITERATIONS 1000000000u
#define MAX_REPS       1000u
#define MAX_CAPACITY   1000000u
#define MAX_TASKS      100000000u
#define MAX_SLEEP_MS   3600000u

static const char *const fig_what[PEER_NFIG] = {"yield handoff",
                                                "spawn + join, empty task",
                                                "rendezvous chan, ping-pong",
                                                "rendezvous chan, one way",
                                                "buffered chan, one way",
                                                "mutex handoff, ping-pong"};
static const char *const fig_unit[PEER_NFIG] = {"ns/handoff", "ns/task",    "ns/message",
                                                "ns/message", "ns/message", "ns/handoff"};
/* The keys of switch_bench and chan_bench, so that one reader reads all. */
static const char *const fig_key[PEER_NFIG] = {
    "yield_handoff",          "spawn_join",           "chan_rendezvous_pingpong",
    "chan_rendezvous_oneway", "chan_buffered_oneway", "mutex_handoff"};

struct options {
    uint64_t iterations;
    uint64_t reps;
    uint64_t capacity;
    uint64_t ntasks; /* 0: the figures, else the sleepers */
    uint64_t sleep_ms;
    bool barrier;
    bool json;
};

static const char *prog = "peer";

int64_t peer_now_ns(void)
{
    return bench_now_ns();
}

_Noreturn void peer_die(const char *what, const char *why)
{
    (void)fflush(stdout);
    (void)fprintf(stderr, "%s: %s: %s\n", prog, what, why);
    exit(1);
}

static void usage(FILE *f)
{
    (void)fprintf(f,
                  "usage: %s [--iterations N] [--repetitions R] [--capacity C] [--json]\n"
                  "       %s --tasks N [--sleep-ms M] [--barrier] [--json]\n"
                  "  --iterations N   operations per task, figure and repetition (1..%u,\n"
                  "                   default 100000): N yields per task, N spawn+joins,\n"
                  "                   2N messages or lock handoffs\n"
                  "  --repetitions R  counted repetitions, after one warm-up (1..%u, default 7)\n"
                  "  --capacity C     of the buffered channel (1..%u, default 64)\n"
                  "  --tasks N        instead of the figures: N tasks each sleeping once\n"
                  "                   (1..%u)\n"
                  "  --sleep-ms M     each task's sleep (0..%u, default 1000)\n"
                  "  --barrier        every task waits until all N are spawned, then sleeps\n"
                  "  --json           one JSON object instead of the table\n",
                  prog, prog, MAX_ITERATIONS, MAX_REPS, MAX_CAPACITY, MAX_TASKS, MAX_SLEEP_MS);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    const struct bench_opt opts[] = {
        {.name = "--json", .flag = &o->json},
        {.name = "--barrier", .flag = &o->barrier},
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
        {.name = "--tasks",
         .u64 = &o->ntasks,
         .min = 1,
         .max = MAX_TASKS,
         .bad = "--tasks wants a whole number from 1 to 100000000, not '%s'"},
        {.name = "--sleep-ms",
         .u64 = &o->sleep_ms,
         .min = 0,
         .max = MAX_SLEEP_MS,
         .bad = "--sleep-ms wants a whole number from 0 to 3600000, not '%s'"},
    };

    o->iterations = 100000;
    o->reps = 7;
    o->capacity = 64;
    o->ntasks = 0;
    o->sleep_ms = 1000;
    o->barrier = false;
    o->json = false;
    bench_parse_args(argc, argv, prog, usage, opts, sizeof(opts) / sizeof(opts[0]), NULL);
}

/* ---- the figures ---------------------------------------------------------- */

static int figures(const struct options *o, const struct peer_lib *lib)
{
    double *samples[PEER_NFIG] = {NULL};
    double med[PEER_NFIG], min[PEER_NFIG], sw[PEER_NFIG];
    int status = 0;

    for (int f = 0; f < PEER_NFIG; f++) {
        if (lib->figure[f] && !(samples[f] = calloc((size_t)o->reps, sizeof(double))))
            peer_die("figures", "out of memory");
    }

    /* Repetition 0 is the warm-up; the order of the figures rotates. */
    for (uint64_t k = 0; k <= o->reps; k++) {
        for (int i = 0; i < PEER_NFIG; i++) {
            int f = (int)((k + (uint64_t)i) % PEER_NFIG);
            struct peer_pair p;
            double ops;

            if (!lib->figure[f])
                continue;
            memset(&p, 0, sizeof(p));
            p.n = o->iterations;
            p.capacity = (size_t)o->capacity;
            lib->figure[f](&p);
            ops = f == PEER_SPAWN ? (double)p.n : 2.0 * (double)p.n;
            if (k > 0)
                samples[f][k - 1] = (double)(p.t1 - p.t0) / ops;
            sw[f] = (double)p.switches / ops; /* the same in every repetition */
        }
    }
    for (int f = 0; f < PEER_NFIG; f++) {
        if (!lib->figure[f])
            continue;
        qsort(samples[f], (size_t)o->reps, sizeof(double), bench_cmp_double);
        med[f] = bench_median(samples[f], (size_t)o->reps);
        min[f] = samples[f][0];
    }

    if (o->json) {
        printf("{\"bench\":\"%s\",\"library\":\"%s\",\"iterations\":%llu,\"repetitions\":%llu,"
               "\"capacity\":%llu,\"stack_size\":%zu",
               lib->prog, lib->library, (unsigned long long)o->iterations,
               (unsigned long long)o->reps, (unsigned long long)o->capacity, lib->stack_size);
        for (int f = 0; f < PEER_NFIG; f++) {
            if (!lib->figure[f])
                continue;
            printf(",\"%s_ns_median\":%.2f,\"%s_ns_min\":%.2f", fig_key[f], med[f], fig_key[f],
                   min[f]);
            if (f != PEER_SPAWN)
                printf(",\"%s_switches\":%.3f", fig_key[f], sw[f]);
        }
        printf("}\n");
    } else {
        printf("%s: switch_bench's and chan_bench's figures, measured with %s\n", lib->prog,
               lib->library);
        printf("parameters: iterations=%llu per task (2N messages or handoffs per figure), "
               "repetitions=%llu (after 1 warm-up),\n"
               "            figures interleaved (order rotates), buffered channel capacity "
               "%llu, 8-byte elements\n"
               "            stacks: %s\n\n",
               (unsigned long long)o->iterations, (unsigned long long)o->reps,
               (unsigned long long)o->capacity, lib->stack_note);
        printf("%-28s %-11s %9s %9s %9s\n", "what", "unit", "median", "min", "switches");
        for (int f = 0; f < PEER_NFIG; f++) {
            if (!lib->figure[f])
                printf("%-28s %-11s %9s %9s %9s\n", fig_what[f], fig_unit[f], "-", "-", "-");
            else if (f == PEER_SPAWN)
                printf("%-28s %-11s %9.1f %9.1f %9s\n", fig_what[f], fig_unit[f], med[f], min[f],
                       "");
            else
                printf("%-28s %-11s %9.1f %9.1f %9.3f\n", fig_what[f], fig_unit[f], med[f], min[f],
                       sw[f]);
        }
        printf("\nswitches: task switches seen per message or handoff ('-': %s has no such "
               "thing).\n",
               lib->library);
    }
    if (fflush(stdout) != 0) {
        perror("stdout");
        status = 1;
    }
    for (int f = 0; f < PEER_NFIG; f++)
        free(samples[f]);
    return status;
}

/* ---- the sleepers --------------------------------------------------------- */

static void scale_head(const struct options *o, const struct peer_lib *lib)
{
    printf("{\"bench\":\"%s_scale\",\"library\":\"%s\",\"tasks\":%llu,\"sleep_ms\":%llu,"
           "\"barrier\":%s,\"stack_size\":%zu",
           lib->prog, lib->library, (unsigned long long)o->ntasks, (unsigned long long)o->sleep_ms,
           o->barrier ? "true" : "false", lib->stack_size);
}

/* A spawn failed: say so (in the JSON line too) and end, leaving the
 * sleepers as they are. */
static _Noreturn void scale_failed(const struct options *o, const struct peer_lib *lib,
                                   const struct peer_scale *s, int err)
{
    if (o->json) {
        scale_head(o, lib);
        printf(",\"spawned\":%llu,\"failed\":\"spawn: %s (%s)\"}\n", (unsigned long long)s->spawned,
               strerror(err), bench_errno_name(err));
    }
    (void)fflush(stdout);
    (void)fprintf(stderr, "%s: spawn failed after %llu tasks: %s (%s)\n", prog,
                  (unsigned long long)s->spawned, strerror(err), bench_errno_name(err));
    exit(1);
}

static int sleepers(const struct options *o, const struct peer_lib *lib)
{
    const struct peer_scale_ops *ops = &lib->scale;
    struct peer_scale s;
    int64_t rss_base, rss_peak, t0, t1, t2;
    double per_task;

    memset(&s, 0, sizeof(s));
    s.ntasks = o->ntasks;
    s.sleep_ms = o->sleep_ms;
    s.barrier = o->barrier;
    ops->begin(&s);
    rss_base = bench_proc_status_kib("VmRSS");

    t0 = peer_now_ns();
    for (; s.spawned < s.ntasks; s.spawned++) {
        if (ops->spawn(&s) != 0)
            scale_failed(o, lib, &s, errno);
    }
    t1 = peer_now_ns();
    s.spawn_ns = t1 - t0;
    while (s.waiting < s.spawned) /* the library may run a new task at once */
        ops->yield();
    t2 = peer_now_ns();
    s.first_run_ns = t2 - t1;
    if (s.barrier) {
        ops->release(&s);
        while (s.sleeping < s.spawned)
            ops->yield();
        s.release_ns = peer_now_ns() - t2;
    }
    s.ended_early = s.ended;
    ops->join_all(&s);
    s.wall_ns = peer_now_ns() - t0;
    rss_peak = bench_proc_status_kib("VmHWM");
    if (rss_base < 0 || rss_peak < 0)
        peer_die("/proc/self/status", strerror(errno));
    if (s.sleep_errors)
        peer_die("sleepers", "a barrier wait or a sleep failed");
    per_task = (double)(rss_peak - rss_base) / (double)s.ntasks;

    if (o->json) {
        scale_head(o, lib);
        printf(",\"spawn_ms\":%.3f,\"first_run_ms\":%.3f,\"release_ms\":%.3f,\"wall_ms\":%.3f,"
               "\"ended_before_last_sleep\":%llu,\"rss_baseline_kib\":%lld,"
               "\"rss_peak_kib\":%lld,\"rss_per_task_kib\":%.2f}\n",
               (double)s.spawn_ns / 1e6, (double)s.first_run_ns / 1e6, (double)s.release_ns / 1e6,
               (double)s.wall_ns / 1e6, (unsigned long long)s.ended_early, (long long)rss_base,
               (long long)rss_peak, per_task);
    } else {
        printf("%s: many tasks alive at once, each sleeping once, with %s\n", lib->prog,
               lib->library);
        printf("parameters: tasks=%llu, sleep_ms=%llu, barrier %s; stacks: %s\n\n",
               (unsigned long long)o->ntasks, (unsigned long long)o->sleep_ms,
               o->barrier ? "on" : "off", lib->stack_note);
        printf("%-24s %14s  %-8s %s\n", "what", "value", "unit", "note");
        printf("%-24s %14.3f  %-8s %s\n", "spawn time", (double)s.spawn_ns / 1e6, "ms",
               "all spawns, back to back");
        printf("%-24s %14.3f  %-8s %s\n", "first run", (double)s.first_run_ns / 1e6, "ms",
               "after the spawns, until every task is parked");
        printf("%-24s %14.3f  %-8s %s\n", "release", (double)s.release_ns / 1e6, "ms",
               "barrier opened until every task sleeps");
        printf("%-24s %14.3f  %-8s %s\n", "wall time", (double)s.wall_ns / 1e6, "ms",
               "first spawn until all ended");
        printf("%-24s %14llu  %-8s %s\n", "ended early", (unsigned long long)s.ended_early, "",
               "tasks ended when the last began its sleep");
        printf("%-24s %14lld  %-8s %s\n", "baseline RSS", (long long)rss_base, "KiB",
               "VmRSS before the first spawn");
        printf("%-24s %14lld  %-8s %s\n", "peak RSS", (long long)rss_peak, "KiB",
               "VmHWM after the run");
        printf("%-24s %14.2f  %-8s %s\n", "RSS per task", per_task, "KiB",
               "(peak - baseline) / tasks");
    }
    if (fflush(stdout) != 0) {
        perror("stdout");
        return 1;
    }
    return 0;
}

int peer_main(int argc, char **argv, const struct peer_lib *lib)
{
    struct options o;

    prog = lib->prog;
    parse_args(argc, argv, &o);
    return o.ntasks ? sleepers(&o, lib) : figures(&o, lib);
}
