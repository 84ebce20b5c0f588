/*
 * test_stack_pool.c - the stack pool (src/stack.c) on its own: slabs,
 * guards, reuse, handing pages back, keeping spare slabs.
 *
 * Residency is read with mincore(2), which reports exactly which pages of a
 * mapping are in memory, whatever sanitizer or valgrind runs the test.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/stack.h"
#include "weave_test.h"

#define SIZE ((size_t)64 * 1024)

/* Pages of [p, p + len) in memory; -1 if any of it is not mapped. */
static long resident_pages(const char *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = len / page;
    unsigned char *vec = malloc(n);
    long count = 0;

    ck_assert_ptr_nonnull(vec);
    if (mincore((void *)(uintptr_t)p, len, vec) != 0) {
        free(vec);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        count += vec[i] & 1;
    free(vec);
    return count;
}

START_TEST(free_stack_is_reused_first)
{
    struct weave__stack_pool pool;
    struct weave__stack a, b;
    uint64_t mapped;

    weave__stack_pool_init(&pool);
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &a), 0);
    ck_assert_uint_ge(a.size, SIZE);
    ck_assert_uint_eq((uintptr_t)a.lo % pool.page, 0);
    mapped = pool.mapped_bytes;
    char *lo = a.lo;
    memset(lo, 1, a.size);
    weave__stack_free(&pool, &a);
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &b), 0);
    ck_assert_ptr_eq(b.lo, lo); /* the hot stack comes back first */
    ck_assert_uint_eq(pool.mapped_bytes, mapped);
    ck_assert_uint_eq(pool.in_use, 1);
    weave__stack_free(&pool, &b);
    weave__stack_pool_term(&pool);
    ck_assert_uint_eq(pool.mapped_bytes, 0);
    ck_assert_int_eq(resident_pages(lo, SIZE), -1); /* unmapped */
}
END_TEST

START_TEST(sizes_are_rounded_and_overflow_refused)
{
    struct weave__stack_pool pool;
    struct weave__stack st;

    weave__stack_pool_init(&pool);
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE + 1, &st), 0);
    ck_assert_uint_eq(st.size, SIZE + pool.page);
    weave__stack_free(&pool, &st);
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE_MAX, &st), -ENOMEM);
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE_MAX - pool.page, &st), -ENOMEM);
    ck_assert_uint_eq(weave__stack_round(&pool, SIZE_MAX), 0);
    ck_assert_uint_eq(pool.in_use, 0);
    weave__stack_pool_term(&pool);
}
END_TEST

START_TEST(guard_page_below_every_stack_faults)
{
    struct weave__stack_pool pool;
    struct weave__stack st[3];
    int status;
    pid_t pid;

    weave__stack_pool_init(&pool);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
    ck_assert_int_ne(pool.guard_mode, WEAVE__GUARD_UNKNOWN);
    for (int i = 0; i < 3; i++) {
        st[i].lo[0] = 1; /* the stack itself is writable */
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            signal(SIGSEGV, SIG_DFL);
            *(volatile char *)(st[i].lo - 1) = 1; /* the guard */
            _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        /* SIGSEGV, or SIGABRT where ASan reports the fault first. */
        ck_assert_msg(WIFSIGNALED(status) &&
                          (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT),
                      "writing below stack %d did not fault (status %#x)", i, status);
    }
    for (int i = 0; i < 3; i++)
        weave__stack_free(&pool, &st[i]);
    weave__stack_pool_term(&pool);
}
END_TEST

START_TEST(trim_hands_back_pages_of_spare_stacks)
{
    enum { N = 300 };
    struct weave__stack_pool pool;
    struct weave__stack st[N];
    char *lo[N];
    long resident = 0, mapped_stacks = 0;

    weave__stack_pool_init(&pool);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
        lo[i] = st[i].lo;
        memset(lo[i], 7, SIZE); /* commit every page */
    }
    for (int i = 0; i < N; i++)
        weave__stack_free(&pool, &st[i]);
    /* Freeing makes no system call: the pages are still there (but for
     * slabs that became entirely free beyond the spare capacity kept, which
     * were unmapped whole). */
    ck_assert_uint_gt(pool.hot, WEAVE__STACK_HOT_MAX);
    ck_assert_uint_le(pool.hot, N);
    ck_assert(weave__stack_trim_due(&pool));
    ck_assert_int_eq(resident_pages(lo[N - 1], SIZE), (long)(SIZE / pool.page));
    weave__stack_trim(&pool);
    ck_assert_uint_le(pool.hot, WEAVE__STACK_HOT_MAX);
    ck_assert(!weave__stack_trim_due(&pool));
    for (int i = 0; i < N; i++) {
        long r = resident_pages(lo[i], SIZE);
        if (r < 0)
            continue; /* its slab was unmapped */
        mapped_stacks++;
        resident += r > 0;
    }
    ck_assert_int_gt(mapped_stacks, WEAVE__STACK_HOT_MAX);
    ck_assert_int_le(resident, WEAVE__STACK_HOT_MAX);
    /* A trimmed stack is still a good stack, with its guard. */
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[0]), 0);
    memset(st[0].lo, 1, SIZE);
    weave__stack_free(&pool, &st[0]);
    weave__stack_pool_term(&pool);
}
END_TEST

START_TEST(bursts_reuse_slabs_and_big_ones_are_returned)
{
    enum { BURST = 200, BIG = 5000 };
    struct weave__stack_pool pool;
    struct weave__stack *st = calloc(BIG, sizeof(*st));
    uint64_t mapped;
    size_t stride;

    ck_assert_ptr_nonnull(st);
    weave__stack_pool_init(&pool);
    stride = SIZE + pool.guard;
    for (int i = 0; i < BURST; i++)
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
    for (int i = 0; i < BURST; i++)
        weave__stack_free(&pool, &st[i]);
    mapped = pool.mapped_bytes;
    /* The same burst again maps nothing new, and unmaps nothing. */
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < BURST; i++)
            ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
        ck_assert_uint_eq(pool.mapped_bytes, mapped);
        for (int i = 0; i < BURST; i++)
            weave__stack_free(&pool, &st[i]);
        ck_assert_uint_eq(pool.mapped_bytes, mapped);
    }
    /* After a big burst, the spare capacity kept is bounded: a few hundred
     * stacks, not thousands. */
    for (int i = 0; i < BIG; i++)
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
    ck_assert_uint_ge(pool.mapped_bytes, (uint64_t)BIG * stride);
    for (int i = 0; i < BIG; i++)
        weave__stack_free(&pool, &st[i]);
    ck_assert_uint_eq(pool.in_use, 0);
    ck_assert_uint_le(pool.mapped_bytes, (uint64_t)1024 * stride);
    ck_assert_uint_le(pool.cached, 1024);
    weave__stack_pool_term(&pool);
    free(st);
}
END_TEST

START_TEST(sizes_have_separate_pools)
{
    struct weave__stack_pool pool;
    struct weave__stack small, big;

    weave__stack_pool_init(&pool);
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &small), 0);
    ck_assert_int_eq(weave__stack_alloc(&pool, 16 * SIZE, &big), 0);
    ck_assert_uint_eq(small.size, SIZE);
    ck_assert_uint_eq(big.size, 16 * SIZE);
    memset(big.lo, 1, big.size);
    memset(small.lo, 1, small.size);
    weave__stack_free(&pool, &small);
    weave__stack_free(&pool, &big);
    ck_assert_int_eq(weave__stack_alloc(&pool, 16 * SIZE, &big), 0);
    ck_assert_uint_eq(big.size, 16 * SIZE);
    weave__stack_free(&pool, &big);
    weave__stack_pool_term(&pool);
}
END_TEST

static Suite *stack_pool_suite(void)
{
    Suite *s = suite_create("stack_pool");
    TCase *tc = tcase_create("pool");

    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, free_stack_is_reused_first);
    tcase_add_test(tc, sizes_are_rounded_and_overflow_refused);
    tcase_add_test(tc, trim_hands_back_pages_of_spare_stacks);
    tcase_add_test(tc, bursts_reuse_slabs_and_big_ones_are_returned);
    tcase_add_test(tc, sizes_have_separate_pools);
    suite_add_tcase(s, tc);

    tc = tcase_create("fault");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, guard_page_below_every_stack_faults);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wt_main(stack_pool_suite());
}
