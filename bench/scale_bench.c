/*
 * scale_bench.c - many tasks alive at once, each sleeping once.
 *
 * The main task spawns N tasks, yields once so that every one of them runs
 * into its sleep (the peak: all N alive, each having touched its stack),
 * takes its readings there, then joins them all. Reported: how fast tasks
 * are spawned, how long the whole thing takes against the one sleep, what
 * a task costs in resident memory, and how the library's stacks look at the
 * peak (stacks in use, bytes of slab mappings, the guard page mechanism,
 * and the number of mappings of the process: slabs keep it small, which
 * matters against vm.max_map_count).
 *
 * The guard below each stack (--guard-kib, weave_run_opts.guard_size) costs
 * no memory but address space and page tables: the per-task figures at the
 * end of the table give page-table bytes (VmPTE at the peak - before the
 * first spawn) and virtual address space (VmSize, likewise) per task.
 *
 * RSS per task = (VmHWM after the run - VmRSS before the first spawn) / N:
 * everything the run added, the library's task records, handle table and
 * timer heap included. The bench's own array of handles is touched before
 * the baseline is read, so it is not counted.
 *
 * With --barrier, every task first waits on a weave_event until all N are
 * spawned and parked; the main task then sets it (the release) and every
 * task begins its sleep. weave runs no task before the main task yields,
 * so all N are alive at once either way; the barrier is there so that the
 * work is the same as that of the peers (bench/peers/), whose new tasks
 * may run, and sleep, while the spawning goes on. It costs each task one
 * more park and wake, and the release is counted in the wall time. The
 * default stays without it, so that figures stay comparable with earlier
 * runs. ended_before_last_sleep (JSON) counts the tasks that had ended
 * when the last one began its sleep: 0 says all were alive at once.
 *
 * If a spawn fails, the bench reports how many tasks were alive, errno and
 * the mapping count, cancels and joins what it spawned, and exits with 1.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "weave.h"

#define MAX_TASKS    100000000u
#define MAX_SLEEP_MS 3600000u

struct options {
    uint64_t ntasks;
    uint64_t sleep_ms;
    uint64_t stack_size; /* 0: the library's default */
    uint64_t guard_kib;  /* 0: the library's default */
    bool barrier;        /* tasks wait until all are spawned, then sleep */
    bool json;
};

struct scale {
    const struct options *o;
    weave_task **handles;
    uint64_t spawned;      /* tasks spawned so far */
    int64_t spawn_ns;      /* the N spawns */
    int64_t first_run_ns;  /* after the spawns, until every task sleeps (or waits) */
    int64_t release_ns;    /* --barrier: the event set until every task sleeps */
    int64_t t0;            /* CLOCK_MONOTONIC ns of the first spawn */
    int64_t first_wake;    /* ns since t0 when the first sleep ended, or 0 */
    int64_t drain_ns;      /* first wake-up until every task is joined */
    int64_t wall_ns;       /* first spawn until every task is joined */
    int64_t rss_base_kib;  /* VmRSS before the first spawn */
    int64_t pte_base_kib;  /* VmPTE before the first spawn */
    int64_t vm_base_kib;   /* VmSize before the first spawn */
    int64_t pte_peak_kib;  /* VmPTE at the peak */
    int64_t vm_peak_kib;   /* VmSize at the peak */
    long minflt_base;      /* minor page faults before the first spawn */
    long minflt_end;       /* and after the last join */
    int64_t rss_peak_kib;  /* VmHWM after the run */
    int64_t maps_lines;    /* lines of /proc/self/maps at the peak */
    weave_stats peak;      /* weave_get_stats at the peak */
    weave_event start;     /* --barrier: set once every task waits on it */
    uint64_t sleeping;     /* tasks that have begun their sleep */
    uint64_t ended;        /* tasks whose sleep is over */
    uint64_t ended_early;  /* tasks ended when the last one began its sleep */
    uint64_t sleep_errors; /* barrier waits and sleeps that did not return 0 */
    int sleep_err;         /* errno of the last of them */
    int err;               /* errno of the first failure */
    const char *what;      /* the call that failed */
};

static void usage(FILE *f)
{
    (void)fprintf(f,
                  "usage: scale_bench [--tasks N] [--sleep-ms M] [--stack-size BYTES] "
                  "[--guard-kib N] [--barrier] [--json]\n"
                  "  --tasks N           tasks alive at once (1..%u, default 100000)\n"
                  "  --sleep-ms M        each task's one sleep in ms (0..%u, default 1000)\n"
                  "  --stack-size BYTES  stack of each task: 0 = the library's default (%zu),\n"
                  "                      else %zu..%zu (default 0)\n"
                  "  --guard-kib N       guard below each stack in KiB: 0 = the library's\n"
                  "                      default (%zu), else 1..%zu (default 0)\n"
                  "  --barrier           every task waits until all N are spawned, then\n"
                  "                      sleeps (the work the peers in bench/peers do)\n"
                  "  --json              one JSON object instead of the table\n",
                  MAX_TASKS, MAX_SLEEP_MS, WEAVE_STACK_DEFAULT, WEAVE_STACK_MIN, WEAVE_STACK_MAX,
                  WEAVE_GUARD_DEFAULT / 1024, WEAVE_GUARD_MAX / 1024);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    const struct bench_opt opts[] = {
        {.name = "--json", .flag = &o->json},
        {.name = "--barrier", .flag = &o->barrier},
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
        {.name = "--stack-size",
         .u64 = &o->stack_size,
         .min = WEAVE_STACK_MIN,
         .max = WEAVE_STACK_MAX,
         .zero_ok = true,
         .bad = "--stack-size wants 0 or a byte count from 16384 to 1073741824, not '%s'"},
        {.name = "--guard-kib",
         .u64 = &o->guard_kib,
         .min = 1,
         .max = WEAVE_GUARD_MAX / 1024,
         .zero_ok = true,
         .bad = "--guard-kib wants 0 or a KiB count from 1 to 65536, not '%s'"},
    };

    o->ntasks = 100000;
    o->sleep_ms = 1000;
    o->stack_size = 0;
    o->guard_kib = 0;
    o->barrier = false;
    o->json = false;
    bench_parse_args(argc, argv, "scale_bench", usage, opts, sizeof(opts) / sizeof(opts[0]), NULL);
}

static void fail(struct scale *s, const char *what, int err)
{
    if (!s->err) {
        s->err = err;
        s->what = what;
    }
}

static void *sleeper(void *arg)
{
    struct scale *s = arg;

    if (s->o->barrier && weave_event_wait(&s->start) != 0) {
        s->sleep_errors++;
        s->sleep_err = errno;
    }
    s->sleeping++;
    if (weave_sleep((int64_t)s->o->sleep_ms) != 0) {
        s->sleep_errors++;
        s->sleep_err = errno;
    }
    s->ended++;
    if (s->first_wake == 0)
        s->first_wake = bench_now_ns() - s->t0;
    return NULL;
}

/* vm.max_map_count, or -1 if it cannot be read. */
static long max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = -1;

    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        (void)fclose(f);
    }
    return v;
}

static void report_spawn_failure(struct scale *s, int err)
{
    weave_stats st;
    int64_t maps = bench_maps_lines();

    (void)fprintf(stderr, "scale_bench: weave_spawn failed after %llu spawns: %s (%s)\n",
                  (unsigned long long)s->spawned, strerror(err), bench_errno_name(err));
    if (weave_get_stats(&st) == 0)
        (void)fprintf(stderr,
                      "scale_bench: tasks alive %llu (main included), stacks in use %llu, "
                      "stack bytes mapped %llu\n",
                      (unsigned long long)st.tasks_live, (unsigned long long)st.stacks_in_use,
                      (unsigned long long)st.stack_bytes_mapped);
    (void)fprintf(stderr, "scale_bench: /proc/self/maps lines %lld, vm.max_map_count %ld\n",
                  (long long)maps, max_map_count());
}

static long minor_faults(void)
{
    struct rusage ru;

    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : -1;
}

/*
 * What a first touch of a page costs on this machine, without weave: in a
 * child process, map n pages at the stride of the stacks and write one byte
 * to each, the way each task's first page is touched. Measured after the
 * weave run, so that weave meets memory as fresh as a new process does;
 * the child then likely gets pages the run just gave back, which makes
 * this figure, if anything, lower. Returns ns per page, or -1.
 */
static double raw_first_touch_ns(uint64_t n, size_t stride)
{
    int p[2];
    double ns = -1;
    pid_t pid;

    if (pipe(p) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        char *m = mmap(NULL, n * stride, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        int64_t t0;
        double r = -1;

        if (m != MAP_FAILED) {
            (void)madvise(m, n * stride, MADV_NOHUGEPAGE);
            t0 = bench_now_ns();
            for (uint64_t i = 0; i < n; i++)
                m[i * stride + stride - 64] = 1;
            r = (double)(bench_now_ns() - t0) / (double)n;
        }
        (void)!write(p[1], &r, sizeof(r));
        _exit(0);
    }
    close(p[1]);
    if (pid > 0 && read(p[0], &ns, sizeof(ns)) != (ssize_t)sizeof(ns))
        ns = -1;
    close(p[0]);
    if (pid > 0)
        (void)waitpid(pid, NULL, 0);
    return ns;
}

static void *scale_main(void *arg)
{
    struct scale *s = arg;
    weave_task_opts topts;
    int64_t t0, t1, t2, end;

    if (weave_event_init(&s->start) != 0) {
        fail(s, "weave_event_init", errno);
        return NULL;
    }
    memset(&topts, 0, sizeof(topts));
    topts.stack_size = (size_t)s->o->stack_size;
    s->rss_base_kib = bench_proc_status_kib("VmRSS");
    s->pte_base_kib = bench_proc_status_kib("VmPTE");
    s->vm_base_kib = bench_proc_status_kib("VmSize");
    s->minflt_base = minor_faults();

    t0 = s->t0 = bench_now_ns();
    for (; s->spawned < s->o->ntasks; s->spawned++) {
        weave_task *t = weave_spawn_with(&topts, sleeper, s);

        if (!t) {
            int err = errno;

            report_spawn_failure(s, err);
            fail(s, "weave_spawn", err);
            break;
        }
        s->handles[s->spawned] = t;
    }
    t1 = bench_now_ns();
    s->spawn_ns = t1 - t0;

    if (!s->err) {
        /* One round: every task runs until it parks in its sleep. */
        if (weave_yield() != 0)
            fail(s, "weave_yield", errno);
        t2 = bench_now_ns();
        s->first_run_ns = t2 - t1;
        if (weave_get_stats(&s->peak) != 0)
            fail(s, "weave_get_stats", errno);
        s->maps_lines = bench_maps_lines();
        s->pte_peak_kib = bench_proc_status_kib("VmPTE");
        s->vm_peak_kib = bench_proc_status_kib("VmSize");
    }
    if (!s->err && s->o->barrier) {
        /* The release: every task wakes and runs into its sleep. */
        int64_t t3 = bench_now_ns();

        if (weave_event_set(&s->start) != 0)
            fail(s, "weave_event_set", errno);
        while (!s->err && s->sleeping < s->spawned)
            if (weave_yield() != 0)
                fail(s, "weave_yield", errno);
        s->release_ns = bench_now_ns() - t3;
    }
    s->ended_early = s->ended;

    for (uint64_t i = 0; i < s->spawned; i++) {
        if (s->err && weave_cancel(s->handles[i]) != 0)
            fail(s, "weave_cancel", errno);
        if (weave_join(s->handles[i], NULL) != 0)
            fail(s, "weave_join", errno);
    }
    end = bench_now_ns();
    s->wall_ns = end - t0;
    s->drain_ns = s->first_wake ? s->wall_ns - s->first_wake : 0;
    s->rss_peak_kib = bench_proc_status_kib("VmHWM");
    s->minflt_end = minor_faults();
    if (!s->err && s->sleep_errors)
        fail(s, s->o->barrier ? "weave_event_wait or weave_sleep" : "weave_sleep", s->sleep_err);
    if (weave_event_destroy(&s->start) != 0)
        fail(s, "weave_event_destroy", errno);
    return NULL;
}

static const char *guard_name(int mode)
{
    switch (mode) {
    case 1:
        return "madvise";
    case 2:
        return "mprotect";
    default:
        return "unknown";
    }
}

int main(int argc, char **argv)
{
    struct options o;
    struct scale s;
    weave_run_opts run_opts = {0};
    size_t stack = 0, guard;
    double pte_per_task, vm_per_task_kib;
    double per_task_kib, spawn_rate, faults_per_task, touch_ns, spawn_per_task_ns;
    int status = 0;

    parse_args(argc, argv, &o);
    memset(&s, 0, sizeof(s));
    s.o = &o;
    s.handles = malloc((size_t)o.ntasks * sizeof(weave_task *));
    if (!s.handles) {
        (void)fprintf(stderr, "scale_bench: no memory for %llu handles\n",
                      (unsigned long long)o.ntasks);
        return 1;
    }
    /* Touch it now, so that the baseline RSS already holds it. */
    memset(s.handles, 0, (size_t)o.ntasks * sizeof(weave_task *));

    run_opts.guard_size = (size_t)o.guard_kib * 1024;
    if (weave_run_with(&run_opts, scale_main, &s, NULL) != 0) {
        (void)fprintf(stderr, "scale_bench: weave_run: %s (%s)\n", strerror(errno),
                      bench_errno_name(errno));
        free(s.handles);
        return 1;
    }
    free(s.handles);
    if (s.err) {
        (void)fprintf(stderr, "scale_bench: %s: %s (%s)\n", s.what, strerror(s.err),
                      bench_errno_name(s.err));
        return 1;
    }
    if (s.rss_base_kib < 0 || s.rss_peak_kib < 0 || s.maps_lines < 0 || s.pte_base_kib < 0 ||
        s.pte_peak_kib < 0 || s.vm_base_kib < 0 || s.vm_peak_kib < 0) {
        (void)fprintf(stderr, "scale_bench: cannot read /proc/self: %s\n", strerror(errno));
        return 1;
    }

    stack = o.stack_size ? (size_t)o.stack_size : WEAVE_STACK_DEFAULT;
    guard = o.guard_kib ? (size_t)o.guard_kib * 1024 : WEAVE_GUARD_DEFAULT;
    pte_per_task = (double)(s.pte_peak_kib - s.pte_base_kib) * 1024.0 / (double)o.ntasks;
    vm_per_task_kib = (double)(s.vm_peak_kib - s.vm_base_kib) / (double)o.ntasks;
    per_task_kib = (double)(s.rss_peak_kib - s.rss_base_kib) / (double)o.ntasks;
    spawn_rate = s.spawn_ns > 0 ? (double)o.ntasks * 1e9 / (double)s.spawn_ns : 0.0;
    spawn_per_task_ns = (double)s.spawn_ns / (double)o.ntasks;
    faults_per_task = (double)(s.minflt_end - s.minflt_base) / (double)o.ntasks;
    touch_ns = raw_first_touch_ns(o.ntasks, stack + 8192);

    if (o.json) {
        printf("{\"bench\":\"scale_bench\",\"tasks\":%llu,\"sleep_ms\":%llu,\"stack_size\":%zu,"
               "\"guard_size\":%zu,\"pte_bytes_per_task\":%.1f,\"vm_per_task_kib\":%.1f,"
               "\"spawn_ms\":%.3f,\"spawn_rate_per_s\":%.0f,\"first_run_ms\":%.3f,"
               "\"drain_ms\":%.3f,\"wall_ms\":%.3f,\"rss_baseline_kib\":%lld,\"rss_peak_kib\":%lld,"
               "\"rss_per_task_kib\":%.2f,\"stacks_in_use\":%llu,\"stack_bytes_mapped\":%llu,"
               "\"guard_mode\":\"%s\",\"maps_lines\":%lld,\"max_map_count\":%ld,"
               "\"context\":\"%s\",\"minor_faults_per_task\":%.2f,\"raw_first_touch_ns\":%.0f,"
               "\"barrier\":%s,\"release_ms\":%.3f,\"ended_before_last_sleep\":%llu}\n",
               (unsigned long long)o.ntasks, (unsigned long long)o.sleep_ms, stack, guard,
               pte_per_task, vm_per_task_kib, (double)s.spawn_ns / 1e6, spawn_rate,
               (double)s.first_run_ns / 1e6, (double)s.drain_ns / 1e6, (double)s.wall_ns / 1e6,
               (long long)s.rss_base_kib, (long long)s.rss_peak_kib, per_task_kib,
               (unsigned long long)s.peak.stacks_in_use,
               (unsigned long long)s.peak.stack_bytes_mapped, guard_name(s.peak.guard_mode),
               (long long)s.maps_lines, max_map_count(), weave_context_backend(), faults_per_task,
               touch_ns, o.barrier ? "true" : "false", (double)s.release_ns / 1e6,
               (unsigned long long)s.ended_early);
    } else {
        printf("scale_bench: many tasks alive at once, each sleeping once\n");
        printf("parameters: tasks=%llu, sleep_ms=%llu, stack_size=%zu bytes%s, "
               "guard=%zu KiB%s; vm.max_map_count %ld; context %s%s\n\n",
               (unsigned long long)o.ntasks, (unsigned long long)o.sleep_ms, stack,
               o.stack_size ? "" : " (library default)", guard / 1024,
               o.guard_kib ? "" : " (library default)", max_map_count(), weave_context_backend(),
               o.barrier ? "; start barrier" : "");
        printf("%-24s %14s  %-8s %s\n", "what", "value", "unit", "note");
        printf("%-24s %14.3f  %-8s %s\n", "spawn time", (double)s.spawn_ns / 1e6, "ms",
               "all spawns, back to back");
        printf("%-24s %14.0f  %-8s %s\n", "spawn rate", spawn_rate, "tasks/s",
               "tasks / spawn time");
        printf("%-24s %14.2f  %-8s %s\n", "spawn per task", spawn_per_task_ns / 1e3, "us",
               "spawn time / tasks");
        printf("%-24s %14.2f  %-8s %s\n", "raw first touch", touch_ns / 1e3, "us",
               "a page written first, without weave (same run)");
        printf("%-24s %14.2f  %-8s %s\n", "spawn / first touch",
               touch_ns > 0 ? spawn_per_task_ns / touch_ns : 0.0, "x",
               "1.0: spawning costs its page fault");
        printf("%-24s %14.3f  %-8s %s\n", "first run", (double)s.first_run_ns / 1e6, "ms",
               o.barrier ? "after the spawns, until every task waits"
                         : "after the spawns, until every task sleeps");
        if (o.barrier) {
            printf("%-24s %14.3f  %-8s %s\n", "release", (double)s.release_ns / 1e6, "ms",
                   "barrier set until every task sleeps");
            printf("%-24s %14llu  %-8s %s\n", "ended early", (unsigned long long)s.ended_early, "",
                   "tasks ended when the last began its sleep");
        }
        printf("%-24s %14.3f  %-8s %s\n", "wake-ups and joins", (double)s.drain_ns / 1e6, "ms",
               "first sleep's end until all joined");
        printf("%-24s %14.3f  %-8s %s\n", "wall time", (double)s.wall_ns / 1e6, "ms",
               "first spawn until all joined");
        printf("%-24s %14.3f  %-8s %s\n", "wall - sleep",
               (double)s.wall_ns / 1e6 - (double)o.sleep_ms, "ms", "the cost of the crowd");
        printf("%-24s %14lld  %-8s %s\n", "baseline RSS", (long long)s.rss_base_kib, "KiB",
               "VmRSS before the first spawn");
        printf("%-24s %14lld  %-8s %s\n", "peak RSS", (long long)s.rss_peak_kib, "KiB",
               "VmHWM after the run");
        printf("%-24s %14.2f  %-8s %s\n", "RSS per task", per_task_kib, "KiB",
               "(peak - baseline) / tasks");
        printf("%-24s %14.2f  %-8s %s\n", "minor faults per task", faults_per_task, "",
               "getrusage, the whole run / tasks");
        printf("%-24s %14llu  %-8s %s\n", "stacks in use", (unsigned long long)s.peak.stacks_in_use,
               "", "at the peak, main's included");
        printf("%-24s %14.1f  %-8s %s\n", "stack bytes mapped",
               (double)s.peak.stack_bytes_mapped / (1024.0 * 1024.0), "MiB",
               "virtual, all slabs, at the peak");
        printf("%-24s %14s  %-8s %s\n", "guard mode", guard_name(s.peak.guard_mode), "",
               "how guard pages are made");
        printf("%-24s %14lld  %-8s %s\n", "/proc/self/maps lines", (long long)s.maps_lines, "",
               "mappings of the process, at the peak");
        printf("\nper task, guard %zu KiB:\n", guard / 1024);
        printf("%-24s %14.2f  %-8s %s\n", "spawn", spawn_per_task_ns / 1e3, "us",
               "spawn time / tasks");
        printf("%-24s %14.2f  %-8s %s\n", "RSS", per_task_kib, "KiB", "(peak - baseline) / tasks");
        printf("%-24s %14.1f  %-8s %s\n", "page tables", pte_per_task, "bytes",
               "VmPTE (peak - baseline) / tasks");
        printf("%-24s %14.1f  %-8s %s\n", "address space", vm_per_task_kib, "KiB",
               "VmSize (peak - baseline) / tasks");
    }
    if (fflush(stdout) != 0) {
        perror("scale_bench: stdout");
        status = 1;
    }
    return status;
}
