/*
 * test_drift.c - scale without drift: memory stays flat across many tasks,
 * falls back after a burst, and an echo soak loses no byte.
 *
 *   - spawn_exit_flat: 10^6 spawn/exit cycles (spawn and join in batches of
 *     100) leave RSS flat: after a warm-up of 10 batches, which brings the
 *     stack pool, the handle table and malloc's arenas to their working
 *     size, RSS at the end is within FLAT_TOL_KIB (1 MiB) of RSS after the
 *     warm-up. A leak of one stack page per 100 batches would add 4 MiB, of
 *     16 bytes per task 16 MiB. (Batches of 1,000 cost some 17 times more
 *     per cycle on a virtual machine with shadow paging, as every batch
 *     touches 2,000 pages the TLB cannot hold; no page fault is involved.)
 *
 *   - sleep_burst: a burst of BURST tasks (10^5 in CI, 10^6 in the long
 *     run: WEAVE_DRIFT_BURST=1000000), all alive at once, each
 *     sleeping 1 to 50 ms under the virtual clock, then a moment of idle.
 *     The test relies on how src/stack.c trims: a freed stack stays "hot"
 *     (its pages committed) for reuse, and whenever the scheduler is about
 *     to wait with no task runnable (the idle poll step, also under the
 *     virtual clock) it hands back the pages of hot stacks beyond
 *     WEAVE__STACK_HOT_MAX (64) per stack size with MADV_DONTNEED; slabs
 *     left entirely free are unmapped past RETAIN (256) free stacks. One
 *     weave_sleep of the main task, with nothing else to run, is that idle
 *     step. So RSS after the burst must be within 10% of RSS before it,
 *     plus the spare stacks the pool may keep committed: 64 hot stacks of
 *     the burst's stack size, all pages of each counted. The handle table
 *     and the timer heap keep their peak size until weave_run returns (they
 *     never shrink); 16 and 24 bytes per task of the peak, they are allowed
 *     for too, and after weave_run returns RSS must be within 10% of where
 *     it was before weave_run.
 *
 *   - echo_soak: CONNS (1,000) socketpairs, each with a writer and a reader
 *     task on one end and an echo task on the other. The writer sends
 *     messages of random size (1 B to 64 KiB) cut from the connection's own
 *     PRNG byte stream for SOAK_SECONDS (5 s, or WEAVE_SOAK_SECONDS), then
 *     shuts its side down; the echo task writes back all it reads until end
 *     of file; the reader checks every byte against the same stream and
 *     that the count matches: zero lost. RLIMIT_NOFILE's soft limit is
 *     raised to the hard limit first. Real time (fd waits follow it).
 *
 * Sizes: the plain Debug build runs 10^6 cycles, a burst of 10^5 (10^6
 * tasks cost some 4 GiB and minutes of first touches of fresh pages, so
 * they are the long run's) and 1,000 connections for 5 s. Under valgrind
 * (20-50 times slower) 10^4 cycles, a burst of 3,000 and 50 connections for
 * 1 s; under ASan (whose allocator and shadow memory change RSS) 10^5
 * cycles, a burst of 3x10^4 and 200 connections for 3 s. WEAVE_DRIFT_CYCLES,
 * WEAVE_DRIFT_BURST, WEAVE_DRIFT_CONNS and WEAVE_SOAK_SECONDS override them.
 * Under ASan and valgrind the RSS figures are printed but not asserted:
 * ASan's quarantine holds freed memory back and the shadow of every stack
 * ever used stays resident, and valgrind's RSS is mostly its own; their
 * leak checkers look for leaks there instead.
 *
 * The long run (a burst of 10^6, a soak of 60 s):
 *
 *     WEAVE_DRIFT_BURST=1000000 WEAVE_SOAK_SECONDS=60 CK_TIMEOUT_MULTIPLIER=4 \
 *         build/debug/test/test_drift
 *
 * Each test prints its RSS figures (start, peak, end, in KiB) on stderr.
 *
 * Check timeouts: "flat" 60 s, "burst" 90 s, "soak" 30 s (scaled with
 * WEAVE_SOAK_SECONDS) = 180 s; the CTest timeout in CMakeLists.txt (240 s)
 * is above it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weave_test.h"

/* Sizes: the default here, or the environment's (see the top). */
#define CYCLES       size("WEAVE_DRIFT_CYCLES", WT_ON_VALGRIND ? 10000 : WT_ASAN ? 100000 : 1000000)
#define BATCH        100
#define WARMUP       10 /* batches */
#define FLAT_TOL_KIB 1024

#define BURST         size("WEAVE_DRIFT_BURST", WT_ON_VALGRIND ? 3000 : WT_ASAN ? 30000 : 100000)
#define BURST_STACK   WEAVE_STACK_MIN
#define HOT_KEPT      64 /* WEAVE__STACK_HOT_MAX in src/stack.h */
#define AFTER_TOL_KIB 4096

#define CONNS        size("WEAVE_DRIFT_CONNS", WT_ON_VALGRIND ? 50 : WT_ASAN ? 200 : 1000)
#define SOAK_SECONDS size("WEAVE_SOAK_SECONDS", WT_ON_VALGRIND ? 1 : WT_ASAN ? 3 : 5)
#define MSG_MAX      65536

static long size(const char *name, long dflt)
{
    const char *s = getenv(name);
    char *end;
    long v;

    if (!s || !*s)
        return dflt;
    v = strtol(s, &end, 10);
    ck_assert_msg(*end == '\0' && v > 0, "%s: not a positive number: %s", name, s);
    return v;
}

/* ---- RSS ----------------------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

struct rss {
    long start, peak, end;
};

static void rss_peak(struct rss *r)
{
    long now = rss_kib();

    if (now > r->peak)
        r->peak = now;
}

static void rss_print(const char *test, const struct rss *r, const char *extra)
{
    fprintf(stderr, "drift: %s: rss start=%ld KiB peak=%ld KiB end=%ld KiB%s\n", test, r->start,
            r->peak, r->end, extra);
}

/* ---- 10^6 spawn/exit cycles ------------------------------------------------------ */

static struct rss flat;

static void *flat_main(void *arg)
{
    static weave_task *t[BATCH];
    long batches = (long)wt_int(arg) / BATCH;

    for (long b = 0; b < batches; b++) {
        for (int i = 0; i < BATCH; i++)
            t[i] = WT_SPAWN(wt_nothing, wt_ptr(i));
        for (int i = 0; i < BATCH; i++)
            ck_assert_ptr_eq(WT_JOIN(t[i]), wt_ptr(i));
        if (b + 1 == WARMUP)
            flat.start = flat.peak = rss_kib();
        else if (b >= WARMUP && b % 16 == 0)
            rss_peak(&flat);
    }
    flat.end = rss_kib();
    rss_peak(&flat);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(spawn_exit_flat)
{
    long n = CYCLES;
    char extra[64];

    ck_assert_int_gt(n, (WARMUP + 1) * BATCH);
    WT_RUN(flat_main, wt_ptr(n));
    snprintf(extra, sizeof(extra), " (%ld cycles, after %d warm-up)", n, WARMUP * BATCH);
    rss_print("spawn_exit", &flat, extra);
    if (WT_ASAN || WT_ON_VALGRIND)
        return; /* see the top: RSS means little there */
    ck_assert_msg(flat.end <= flat.start + FLAT_TOL_KIB,
                  "RSS grew by %ld KiB over %ld spawn/exit cycles", flat.end - flat.start, n);
}
END_TEST

/* ---- a burst of sleeping tasks ---------------------------------------------------- */

static struct rss burst;
static long burst_woke;

static void *sleeper(void *arg)
{
    ck_assert_int_eq(weave_sleep((int64_t)wt_int(arg)), 0);
    burst_woke++;
    return NULL;
}

static void *burst_main(void *arg)
{
    weave_task_opts o = {.stack_size = BURST_STACK, .name = NULL, .guard_size = 0};
    uint64_t x = 42;
    long n = (long)wt_int(arg);
    weave_stats st;

    burst.start = burst.peak = rss_kib();
    for (long i = 0; i < n; i++) {
        weave_task *t;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        t = weave_spawn_with(&o, sleeper, wt_ptr((intptr_t)(1 + x % 50)));
        ck_assert_msg(t != NULL, "spawn %ld of the burst: errno %d", i, errno);
        ck_assert_int_eq(weave_detach(t), 0);
    }
    rss_peak(&burst);
    ck_assert_int_eq(weave_sleep(100), 0); /* every sleeper wakes and ends */
    ck_assert_int_eq(burst_woke, n);
    ck_assert_int_eq(weave_sleep(1), 0); /* an idle poll step: the trim */
    st = wt_stats();
    ck_assert_uint_eq(st.tasks_live, 1);
    ck_assert_uint_le(st.stacks_cached, (uint64_t)n);
    burst.end = rss_kib();
    return NULL;
}

START_TEST(sleep_burst)
{
    weave_run_opts o;
    long before = rss_kib(), after, spare, tables, bound, n = BURST;
    char extra[160];

    memset(&o, 0, sizeof(o));
    o.flags = WEAVE_VIRTUAL_CLOCK;
    ck_assert_int_eq(weave_run_with(&o, burst_main, wt_ptr(n), NULL), 0);
    after = rss_kib();
    /* Spare stacks kept committed (all their pages, and the task record's
     * page above each), and the handle table and timer heap at their peak
     * (each a power of two at least n entries of 16 and 24 bytes). After
     * weave_run, malloc may keep a few MiB of what was freed. */
    spare = HOT_KEPT * (long)(BURST_STACK + 4096) / 1024;
    tables = 2 * n * (16 + 24) / 1024;
    bound = burst.start + burst.start / 10 + spare + tables;
    snprintf(extra, sizeof(extra),
             " (%ld tasks; bound %ld KiB; before weave_run %ld KiB, after %ld KiB)", n, bound,
             before, after);
    rss_print("sleep_burst", &burst, extra);
    if (WT_ASAN || WT_ON_VALGRIND)
        return;
    ck_assert_msg(burst.end <= bound, "RSS after the burst: %ld KiB, more than %ld KiB", burst.end,
                  bound);
    ck_assert_msg(after <= before + before / 10 + AFTER_TOL_KIB,
                  "RSS after weave_run: %ld KiB, before %ld KiB", after, before);
}
END_TEST

/* ---- the echo soak ------------------------------------------------------------------ */

/* A connection's byte stream: splitmix64 output, 8 bytes a word, low byte
 * first. */
struct stream {
    uint64_t x, word;
    int left; /* bytes of word not used yet */
};

static uint64_t stream_word(struct stream *s)
{
    uint64_t z = (s->x += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* The next n bytes of the stream into buf. */
static void stream_fill(struct stream *s, uint8_t *buf, size_t n)
{
    size_t i = 0;

    while (i < n && s->left > 0) {
        buf[i++] = (uint8_t)s->word;
        s->word >>= 8;
        s->left--;
    }
    for (; n - i >= 8; i += 8) {
        uint64_t w = stream_word(s);

        memcpy(buf + i, &w, 8); /* writer and reader cut it alike */
    }
    if (i < n) {
        s->word = stream_word(s);
        s->left = 8;
        while (i < n) {
            buf[i++] = (uint8_t)s->word;
            s->word >>= 8;
            s->left--;
        }
    }
}

struct conn {
    int fd[2]; /* fd[0]: writer and reader; fd[1]: echo */
    uint64_t seed;
    uint64_t sent, received, messages;
    int64_t until_ns; /* the writer stops then */
};

static uint8_t *soak_buf(void)
{
    uint8_t *b = malloc(MSG_MAX);

    ck_assert_ptr_nonnull(b);
    return b;
}

static void *soak_writer(void *arg)
{
    struct conn *c = arg;
    struct stream data = {c->seed, 0, 0};
    uint64_t sizes = c->seed ^ UINT64_C(0x5a5a5a5a5a5a5a5a);
    uint8_t *buf = soak_buf();

    do { /* one message at least, however late the writer starts */
        size_t n;

        sizes ^= sizes << 13, sizes ^= sizes >> 7, sizes ^= sizes << 17;
        n = 1 + (size_t)(sizes % MSG_MAX);
        stream_fill(&data, buf, n);
        ck_assert_int_eq(weave_write(c->fd[0], buf, n), (ssize_t)n);
        c->sent += n;
        c->messages++;
    } while (wt_now_ns() < c->until_ns);
    ck_assert_int_eq(shutdown(c->fd[0], SHUT_WR), 0);
    free(buf);
    return NULL;
}

static void *soak_echo(void *arg)
{
    struct conn *c = arg;
    uint8_t *buf = soak_buf();
    ssize_t n;

    while ((n = weave_read(c->fd[1], buf, MSG_MAX)) > 0)
        ck_assert_int_eq(weave_write(c->fd[1], buf, (size_t)n), n);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(shutdown(c->fd[1], SHUT_WR), 0);
    free(buf);
    return NULL;
}

static void *soak_reader(void *arg)
{
    struct conn *c = arg;
    struct stream want = {c->seed, 0, 0};
    uint8_t *buf = soak_buf(), *expect = soak_buf();
    ssize_t n;

    while ((n = weave_read(c->fd[0], buf, MSG_MAX)) > 0) {
        stream_fill(&want, expect, (size_t)n);
        if (memcmp(buf, expect, (size_t)n) != 0) {
            ssize_t i = 0;

            while (buf[i] == expect[i])
                i++;
            ck_abort_msg("connection %" PRIu64 ": byte %" PRIu64 " is %u, not %u", c->seed,
                         c->received + (uint64_t)i, buf[i], expect[i]);
        }
        c->received += (uint64_t)n;
    }
    ck_assert_int_eq(n, 0);
    free(buf);
    free(expect);
    return NULL;
}

static struct rss soak;

static void *soak_main(void *arg)
{
    long nconn = CONNS;
    struct conn *conns = calloc((size_t)nconn, sizeof(*conns));
    weave_task **t = calloc(3 * (size_t)nconn, sizeof(*t));
    int64_t secs = (int64_t)wt_int(arg);
    int64_t until = wt_now_ns() + secs * 1000000000;
    uint64_t sent = 0, msgs = 0;

    ck_assert_ptr_nonnull(conns);
    ck_assert_ptr_nonnull(t);
    soak.start = soak.peak = rss_kib();
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];

        wt_make_socketpair(c->fd, SOCK_STREAM);
        c->seed = (uint64_t)i + 1;
        c->until_ns = until;
        t[3 * i] = WT_SPAWN(soak_writer, c);
        t[3 * i + 1] = WT_SPAWN(soak_echo, c);
        t[3 * i + 2] = WT_SPAWN(soak_reader, c);
    }
    while (wt_now_ns() < until) {
        ck_assert_int_eq(weave_sleep(100), 0);
        rss_peak(&soak);
    }
    for (int i = 0; i < 3 * nconn; i++)
        WT_JOIN(t[i]);
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];

        ck_assert_msg(c->received == c->sent,
                      "connection %d: %" PRIu64 " bytes sent, %" PRIu64 " echoed back", i, c->sent,
                      c->received);
        ck_assert_uint_gt(c->messages, 0);
        sent += c->sent;
        msgs += c->messages;
        ck_assert_int_eq(weave_close(c->fd[0]), 0);
        ck_assert_int_eq(weave_close(c->fd[1]), 0);
    }
    rss_peak(&soak);
    soak.end = rss_kib();
    fprintf(stderr,
            "drift: echo_soak: %ld connections, %" PRId64 " s: %" PRIu64 " messages, %" PRIu64
            " bytes echoed and checked, none lost\n",
            nconn, secs, msgs, sent);
    free(conns);
    free(t);
    WT_ASSERT_IDLE();
    return NULL;
}

START_TEST(echo_soak)
{
    struct rlimit rl;
    long secs = SOAK_SECONDS;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_cur >= (rlim_t)(2 * CONNS + 64), "RLIMIT_NOFILE %lu: too few fds",
                  (unsigned long)rl.rlim_cur);
    WT_RUN(soak_main, wt_ptr(secs));
    rss_print("echo_soak", &soak, "");
}
END_TEST

static Suite *drift_suite(void)
{
    Suite *s = suite_create("drift");
    TCase *flat_tc = tcase_create("flat");
    TCase *burst_tc = tcase_create("burst");
    TCase *soak_tc = tcase_create("soak");
    const char *env = getenv("WEAVE_SOAK_SECONDS");
    long secs = env && *env ? atol(env) : 0;

    tcase_set_timeout(flat_tc, 60);
    tcase_add_test(flat_tc, spawn_exit_flat);
    suite_add_tcase(s, flat_tc);

    tcase_set_timeout(burst_tc, 90);
    /* The RSS it bounds is qemu-user's own under emulation, where madvise
     * hands no page back. */
    wt_tag_native(burst_tc);
    tcase_add_test(burst_tc, sleep_burst);
    suite_add_tcase(s, burst_tc);

    tcase_set_timeout(soak_tc, (double)(secs > 5 ? secs : 5) + 25);
    tcase_add_test(soak_tc, echo_soak);
    suite_add_tcase(s, soak_tc);
    return s;
}

int main(void)
{
    return wt_main(drift_suite());
}
