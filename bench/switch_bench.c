/*
 * switch_bench.c - what a task switch costs.
 *
 * Three figures, each measured in every repetition (interleaved, so that
 * the noise of a busy machine falls on all three alike):
 *
 *   raw swapcontext      two plain ucontexts ping-ponging with swapcontext,
 *                        one on a malloc'd stack, no weave at all: the
 *                        floor, since weave switches with swapcontext too;
 *   weave_yield handoff  two tasks calling weave_yield in a loop; every
 *                        yield hands the thread to the other task, so
 *                        handoffs = total yields;
 *   spawn + join         weave_spawn of an empty task, then weave_join
 *                        (two switches, a stack from the pool, a record).
 *
 * The first repetition warms caches and the stack pool and is not counted;
 * the median and the minimum of the others are printed. The ratio yield
 * handoff / raw swapcontext is the scheduler's own overhead.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "bench_util.h"
#include "weave.h"

#ifdef WEAVE_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define BENCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_ASAN 1
#endif
#endif
#ifdef BENCH_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define RAW_STACK_BYTES ((size_t)64 * 1024)
#define MAX_ITERATIONS  1000000000u
#define MAX_REPS        1000u

enum { RAW, REG, REG_ERRNO, YIELD, SPAWN, NFIG };

static const char *const fig_what[NFIG] = {"raw swapcontext", "raw register switch",
                                           "  the same, errno kept", "weave_yield handoff",
                                           "spawn + join, empty task"};
static const char *const fig_unit[NFIG] = {"ns/switch", "ns/switch", "ns/switch", "ns/handoff",
                                           "ns/task"};
static const char *const fig_key[NFIG] = {"raw_swapcontext_ns", "raw_register_switch_ns",
                                          "raw_register_switch_errno_ns", "yield_handoff_ns",
                                          "spawn_join_ns"};

struct options {
    uint64_t iterations;
    uint64_t reps;
    bool json;
};

static void usage(FILE *f)
{
    (void)fprintf(f,
                  "usage: switch_bench [--iterations N] [--repetitions R] [--json]\n"
                  "  --iterations N   switches per figure and repetition: N yields per task,\n"
                  "                   N spawn+joins, N raw round trips (1..%u, default 200000)\n"
                  "  --repetitions R  counted repetitions, after one warm-up (1..%u, default 7)\n"
                  "  --json           one JSON object instead of the table\n",
                  MAX_ITERATIONS, MAX_REPS);
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
    };

    o->iterations = 200000;
    o->reps = 7;
    o->json = false;
    bench_parse_args(argc, argv, "switch_bench", usage, opts, sizeof(opts) / sizeof(opts[0]), NULL);
}

/* ---- raw swapcontext, no weave ------------------------------------------ */

static ucontext_t raw_main_uc, raw_co_uc;
static bool raw_stop;
#ifdef BENCH_ASAN
static void *raw_stack_lo;
static const void *raw_main_lo; /* the thread's stack, learnt on the first switch */
static size_t raw_main_size;
#endif

/* Tell ASan which stack the next context runs on (nothing without ASan). */
static void raw_switch(ucontext_t *from, ucontext_t *to, bool to_co)
{
#ifdef BENCH_ASAN
    void *fake = NULL;

    if (to_co)
        __sanitizer_start_switch_fiber(&fake, raw_stack_lo, RAW_STACK_BYTES);
    else
        __sanitizer_start_switch_fiber(&fake, raw_main_lo, raw_main_size);
    swapcontext(from, to);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    (void)to_co;
    swapcontext(from, to);
#endif
}

static void raw_co(void)
{
#ifdef BENCH_ASAN
    /* First entry: learn the bounds of the stack we came from. */
    __sanitizer_finish_switch_fiber(NULL, &raw_main_lo, &raw_main_size);
#endif
    while (!raw_stop)
        raw_switch(&raw_co_uc, &raw_main_uc, false);
#ifdef BENCH_ASAN
    /* Leaving for good: uc_link resumes the main context. */
    __sanitizer_start_switch_fiber(NULL, raw_main_lo, raw_main_size);
#endif
}

/* ns per swapcontext over 2 * iterations switches, or -1 with errno set. */
static double raw_measure(uint64_t iterations)
{
    char *stack = malloc(RAW_STACK_BYTES);
    int64_t t0, t1;
#ifdef WEAVE_HAVE_VALGRIND_H
    unsigned vg_id;
#endif

    if (!stack)
        return -1;
    if (getcontext(&raw_co_uc) != 0) {
        free(stack);
        return -1;
    }
#ifdef WEAVE_HAVE_VALGRIND_H
    vg_id = VALGRIND_STACK_REGISTER(stack, stack + RAW_STACK_BYTES);
#endif
#ifdef BENCH_ASAN
    raw_stack_lo = stack;
#endif
    raw_co_uc.uc_stack.ss_sp = stack;
    raw_co_uc.uc_stack.ss_size = RAW_STACK_BYTES;
    raw_co_uc.uc_link = &raw_main_uc;
    makecontext(&raw_co_uc, raw_co, 0);
    raw_stop = false;

    t0 = bench_now_ns();
    for (uint64_t i = 0; i < iterations; i++)
        raw_switch(&raw_main_uc, &raw_co_uc, true);
    t1 = bench_now_ns();

    /* One more round trip lets raw_co return through uc_link. */
    raw_stop = true;
    raw_switch(&raw_main_uc, &raw_co_uc, true);
#ifdef WEAVE_HAVE_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(vg_id);
#endif
    free(stack);
    return (double)(t1 - t0) / (2.0 * (double)iterations);
}

/* ---- the floor: a bare register switch ------------------------------------ */

/*
 * The least a stackful switch can do: push the callee-saved registers, swap
 * stack pointers, pop, return (no signal mask, no floating-point control
 * state, no bookkeeping). The bench's own, so that the figure does not
 * depend on how weave was built. x86-64 and aarch64; not under ASan, which
 * would need the switch announced.
 */
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(BENCH_ASAN)
#define HAVE_REG_SWITCH 1
void bench_reg_swap(void **save, void *load);
void bench_reg_boot(void);
#if defined(__x86_64__)
__asm__(".text\n"
        ".p2align 4\n"
        "bench_reg_swap:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        "bench_reg_boot:\n"
        "  callq *%r12\n"
        "  ud2\n");
#define REG_FRAME_WORDS 7 /* r15 r14 r13 r12 rbx rbp, return address */
#define REG_FRAME_FN    3 /* r12 */
#define REG_FRAME_RET   6
#define REG_FRAME_BELOW 2 /* words left above: the call is 16-aligned */
#else
__asm__(".text\n"
        ".p2align 4\n"
        "bench_reg_swap:\n"
        "  sub sp, sp, #160\n"
        "  stp x19, x20, [sp, #0]\n  stp x21, x22, [sp, #16]\n  stp x23, x24, [sp, #32]\n"
        "  stp x25, x26, [sp, #48]\n  stp x27, x28, [sp, #64]\n  stp x29, x30, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n  stp d12, d13, [sp, #128]\n"
        "  stp d14, d15, [sp, #144]\n"
        "  mov x9, sp\n  str x9, [x0]\n  mov sp, x1\n"
        "  ldp x19, x20, [sp, #0]\n  ldp x21, x22, [sp, #16]\n  ldp x23, x24, [sp, #32]\n"
        "  ldp x25, x26, [sp, #48]\n  ldp x27, x28, [sp, #64]\n  ldp x29, x30, [sp, #80]\n"
        "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n  ldp d12, d13, [sp, #128]\n"
        "  ldp d14, d15, [sp, #144]\n"
        "  add sp, sp, #160\n  ret\n"
        "bench_reg_boot:\n"
        "  blr x19\n"
        "  brk #0\n");
#define REG_FRAME_WORDS 20
#define REG_FRAME_FN    0  /* x19 */
#define REG_FRAME_RET   11 /* x30 */
#define REG_FRAME_BELOW 0
#endif

static void *reg_main_sp, *reg_co_sp;

static void reg_co(void)
{
    for (;;)
        bench_reg_swap(&reg_co_sp, reg_main_sp);
}

/* A switch that keeps each side's errno, as weave's does: what that costs
 * is the difference to the bare one, in the same run. */
static void reg_swap_errno(void **save, void *load)
{
    int *ep = &errno, saved = *ep;

    bench_reg_swap(save, load);
    *ep = saved;
}

static void reg_co_errno(void)
{
    for (;;)
        reg_swap_errno(&reg_co_sp, reg_main_sp);
}

/* ns per register switch over 2 * iterations switches (each keeping its
 * side's errno if keep_errno), or -1. */
static double reg_measure(uint64_t iterations, bool keep_errno)
{
    char *stack = malloc(RAW_STACK_BYTES);
    uint64_t *frame;
    int64_t t0, t1;
#ifdef WEAVE_HAVE_VALGRIND_H
    unsigned vg_id;
#endif

    if (!stack)
        return -1;
#ifdef WEAVE_HAVE_VALGRIND_H
    vg_id = VALGRIND_STACK_REGISTER(stack, stack + RAW_STACK_BYTES);
#endif
    frame = (uint64_t *)(void *)(((uintptr_t)stack + RAW_STACK_BYTES) & ~(uintptr_t)15) -
            REG_FRAME_BELOW - REG_FRAME_WORDS;
    memset(frame, 0, REG_FRAME_WORDS * sizeof(*frame));
    frame[REG_FRAME_FN] = (uint64_t)(uintptr_t)(keep_errno ? reg_co_errno : reg_co);
    frame[REG_FRAME_RET] = (uint64_t)(uintptr_t)bench_reg_boot;
    reg_co_sp = frame;
    t0 = bench_now_ns();
    if (keep_errno)
        for (uint64_t i = 0; i < iterations; i++)
            reg_swap_errno(&reg_main_sp, reg_co_sp);
    else
        for (uint64_t i = 0; i < iterations; i++)
            bench_reg_swap(&reg_main_sp, reg_co_sp);
    t1 = bench_now_ns();
#ifdef WEAVE_HAVE_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(vg_id);
#endif
    free(stack); /* reg_co is left parked on it for good */
    return (double)(t1 - t0) / (2.0 * (double)iterations);
}
#else
static double reg_measure(uint64_t iterations, bool keep_errno)
{
    (void)iterations;
    (void)keep_errno;
    return 0; /* not measured here */
}
#endif

/* ---- weave -------------------------------------------------------------- */

/* The two yielding tasks' shared state. */
struct yield_pair {
    uint64_t iterations; /* yields per task */
    int started;         /* tasks that have begun */
    int finished;        /* tasks that have ended */
    int64_t t0, t1;      /* first task's start, last task's end */
    int err;             /* errno of a failed weave_yield */
};

/* One repetition's weave figures, filled by rep_main. */
struct rep {
    uint64_t iterations;
    double ns[NFIG];
    int err;
    const char *what;
};

static void *yielder(void *arg)
{
    struct yield_pair *y = arg;

    if (y->started++ == 0)
        y->t0 = bench_now_ns();
    for (uint64_t i = 0; i < y->iterations; i++) {
        if (weave_yield() != 0) {
            y->err = errno;
            break;
        }
    }
    if (++y->finished == 2)
        y->t1 = bench_now_ns();
    return NULL;
}

static void *empty_task(void *arg)
{
    return arg;
}

static void rep_fail(struct rep *r, const char *what, int err)
{
    if (!r->err) {
        r->err = err;
        r->what = what;
    }
}

static void *rep_main(void *arg)
{
    struct rep *r = arg;
    struct yield_pair y;
    weave_task *a, *b;
    int64_t t0, t1;

    memset(&y, 0, sizeof(y));
    y.iterations = r->iterations;
    a = weave_spawn(yielder, &y);
    if (!a) {
        rep_fail(r, "weave_spawn", errno);
        return NULL;
    }
    b = weave_spawn(yielder, &y);
    if (!b) {
        rep_fail(r, "weave_spawn", errno);
        if (weave_cancel(a) != 0 || weave_join(a, NULL) != 0)
            rep_fail(r, "weave_join", errno);
        return NULL;
    }
    if (weave_join(a, NULL) != 0 || weave_join(b, NULL) != 0) {
        rep_fail(r, "weave_join", errno);
        return NULL;
    }
    if (y.err) {
        rep_fail(r, "weave_yield", y.err);
        return NULL;
    }
    r->ns[YIELD] = (double)(y.t1 - y.t0) / (2.0 * (double)r->iterations);

    t0 = bench_now_ns();
    for (uint64_t i = 0; i < r->iterations; i++) {
        weave_task *t = weave_spawn(empty_task, NULL);

        if (!t) {
            rep_fail(r, "weave_spawn", errno);
            return NULL;
        }
        if (weave_join(t, NULL) != 0) {
            rep_fail(r, "weave_join", errno);
            return NULL;
        }
    }
    t1 = bench_now_ns();
    r->ns[SPAWN] = (double)(t1 - t0) / (double)r->iterations;
    return NULL;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct options o;
    double *samples[NFIG] = {NULL};
    double med[NFIG], min[NFIG];
    int status = 0;

    parse_args(argc, argv, &o);
    for (int f = 0; f < NFIG; f++) {
        samples[f] = calloc((size_t)o.reps, sizeof(double));
        if (!samples[f]) {
            (void)fprintf(stderr, "switch_bench: out of memory\n");
            status = 1;
            goto out;
        }
    }

    /* Repetition 0 is the warm-up. */
    for (uint64_t k = 0; k <= o.reps; k++) {
        struct rep r;
        double raw = raw_measure(o.iterations), reg = reg_measure(o.iterations, false);
        double reg_errno = reg_measure(o.iterations, true);

        if (raw < 0) {
            (void)fprintf(stderr, "switch_bench: raw swapcontext setup: %s\n", strerror(errno));
            status = 1;
            goto out;
        }
        memset(&r, 0, sizeof(r));
        r.iterations = o.iterations;
        if (weave_run(rep_main, &r, NULL) != 0) {
            (void)fprintf(stderr, "switch_bench: weave_run: %s (%s)\n", strerror(errno),
                          bench_errno_name(errno));
            status = 1;
            goto out;
        }
        if (r.err) {
            (void)fprintf(stderr, "switch_bench: %s: %s (%s)\n", r.what, strerror(r.err),
                          bench_errno_name(r.err));
            status = 1;
            goto out;
        }
        if (k == 0)
            continue;
        samples[RAW][k - 1] = raw;
        samples[REG][k - 1] = reg;
        samples[REG_ERRNO][k - 1] = reg_errno;
        samples[YIELD][k - 1] = r.ns[YIELD];
        samples[SPAWN][k - 1] = r.ns[SPAWN];
    }
    for (int f = 0; f < NFIG; f++) {
        qsort(samples[f], (size_t)o.reps, sizeof(double), bench_cmp_double);
        med[f] = bench_median(samples[f], (size_t)o.reps);
        min[f] = samples[f][0];
    }

    if (o.json) {
        printf("{\"bench\":\"switch_bench\",\"iterations\":%llu,\"repetitions\":%llu",
               (unsigned long long)o.iterations, (unsigned long long)o.reps);
        for (int f = 0; f < NFIG; f++)
            printf(",\"%s_median\":%.2f,\"%s_min\":%.2f", fig_key[f], med[f], fig_key[f], min[f]);
        printf(",\"yield_over_raw\":%.3f,\"spawn_join_over_raw\":%.3f,\"context\":\"%s\"}\n",
               med[YIELD] / med[RAW], med[SPAWN] / med[RAW], weave_context_backend());
    } else {
        printf("switch_bench: cost of a task switch, one thread; weave's switch: %s\n",
               weave_context_backend());
        printf("parameters: iterations=%llu per figure and repetition, repetitions=%llu "
               "(after 1 warm-up), figures interleaved\n",
               (unsigned long long)o.iterations, (unsigned long long)o.reps);
        printf("            task stack %zu bytes (weave default), raw stack %zu bytes "
               "(malloc)\n\n",
               WEAVE_STACK_DEFAULT, RAW_STACK_BYTES);
        printf("%-26s %-11s %10s %10s\n", "what", "unit", "median", "min");
        for (int f = 0; f < NFIG; f++) {
            if ((f == REG || f == REG_ERRNO) && med[f] <= 0)
                printf("%-26s %-11s %10s %10s\n", fig_what[f], fig_unit[f], "-", "-");
            else
                printf("%-26s %-11s %10.1f %10.1f\n", fig_what[f], fig_unit[f], med[f], min[f]);
        }
        if (strcmp(weave_context_backend(), "ucontext") == 0)
            printf("\nyield handoff / raw swapcontext: %.2fx; spawn + join / raw swapcontext: "
                   "%.2fx (medians)\n",
                   med[YIELD] / med[RAW], med[SPAWN] / med[RAW]);
        else
            printf("\n");
        if (med[REG] > 0)
            printf("yield handoff / raw register switch: %.2fx; scheduler's own cost %+.1f ns "
                   "per handoff\n"
                   "keeping errno (weave's switches do): %+.2f ns per switch (medians)\n",
                   med[YIELD] / med[REG], med[YIELD] - med[REG], med[REG_ERRNO] - med[REG]);
    }
    if (fflush(stdout) != 0) {
        perror("switch_bench: stdout");
        status = 1;
    }
out:
    for (int f = 0; f < NFIG; f++)
        free(samples[f]);
    return status;
}
