/*
 * test_stack_pool.c - the stack pool (src/stack.c) on its own: slabs,
 * guards, reuse, the front of last freed stacks, handing pages back,
 * keeping spare slabs.
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

/* Whether a write to p faults: made in a child, which dies of SIGSEGV, or
 * of SIGABRT where ASan reports the fault first. */
static int write_faults(char *p)
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        *(volatile char *)p = 1;
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT);
}

START_TEST(guard_page_below_every_stack_faults)
{
    struct weave__stack_pool pool;
    struct weave__stack st[3];

    weave__stack_pool_init(&pool);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
    ck_assert_int_ne(pool.guard_mode, WEAVE__GUARD_UNKNOWN);
    for (int i = 0; i < 3; i++) {
        st[i].lo[0] = 1; /* the stack itself is writable */
        ck_assert_msg(write_faults(st[i].lo - 1), "writing below stack %d did not fault", i);
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

/* ---- the front: the last freed stacks, in front of the slabs ------------- */

/* The pool's counts, checked against what the test knows it holds. */
static void assert_counts(const struct weave__stack_pool *pool, uint64_t in_use, uint64_t cached,
                          uint64_t hot)
{
    ck_assert_uint_eq(pool->in_use, in_use);
    ck_assert_uint_eq(pool->cached, cached);
    ck_assert_uint_eq(pool->hot, hot);
}

/* Stacks freed go to the front and come back last freed first; every count
 * is exact on the way, whether a stack is in the front, in its slab, or
 * handed out. */
START_TEST(front_keeps_the_counts)
{
    enum { N = WEAVE__STACK_FRONT + 8 };
    struct weave__stack_pool pool;
    struct weave__stack st[N];
    char *lo[N];
    uint64_t cached0;

    weave__stack_pool_init(&pool);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
        lo[i] = st[i].lo;
    }
    cached0 = pool.cached; /* never-used stacks of the slabs mapped so far */
    assert_counts(&pool, N, cached0, 0);
    for (int i = 0; i < N; i++) {
        weave__stack_free(&pool, &st[i]);
        ck_assert_ptr_null(st[i].lo);
        assert_counts(&pool, (uint64_t)(N - 1 - i), cached0 + (uint64_t)i + 1, (uint64_t)i + 1);
    }
    ck_assert_uint_eq(pool.nfront, WEAVE__STACK_FRONT); /* the rest went to their slabs */
    /* The front gives its stacks back last freed first, and hot. */
    for (int i = WEAVE__STACK_FRONT - 1; i >= 0; i--) {
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
        ck_assert_ptr_eq(st[i].lo, lo[i]);
        ck_assert_uint_eq(st[i].size, SIZE);
        ck_assert_uint_eq(st[i].guard, pool.guard);
        assert_counts(&pool, (uint64_t)(WEAVE__STACK_FRONT - i),
                      cached0 + (uint64_t)(N - WEAVE__STACK_FRONT + i),
                      (uint64_t)(N - WEAVE__STACK_FRONT + i));
    }
    ck_assert_uint_eq(pool.nfront, 0);
    /* Then the slabs, hot ones first. */
    for (int i = WEAVE__STACK_FRONT; i < N; i++)
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
    assert_counts(&pool, N, cached0, 0);
    for (int i = 0; i < N; i++) {
        memset(st[i].lo, 3, st[i].size); /* every stack handed out is whole and writable */
        weave__stack_free(&pool, &st[i]);
    }
    assert_counts(&pool, 0, cached0 + N, N);
    weave__stack_pool_term(&pool);
    assert_counts(&pool, 0, 0, 0);
    ck_assert_uint_eq(pool.mapped_bytes, 0);
}
END_TEST

/* A stack of another class, freed, sends the front's stacks back to their
 * slabs and takes the front over; a stack asked for in another class never
 * comes from the front. */
START_TEST(front_follows_the_class_of_the_last_free)
{
    struct weave__stack_pool pool;
    struct weave__stack a[3], big, b;
    uint64_t cached0;

    weave__stack_pool_init(&pool);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &a[i]), 0);
    ck_assert_int_eq(weave__stack_alloc(&pool, 4 * SIZE, &big), 0);
    cached0 = pool.cached;
    for (int i = 0; i < 3; i++)
        weave__stack_free(&pool, &a[i]);
    ck_assert_uint_eq(pool.nfront, 3);
    /* Another size from the front's class: never a stack of the front. */
    ck_assert_int_eq(weave__stack_alloc(&pool, 2 * SIZE, &b), 0);
    ck_assert_uint_eq(b.size, 2 * SIZE);
    ck_assert_uint_eq(pool.nfront, 3);
    weave__stack_free(&pool, &b); /* the front is now b's class */
    ck_assert_uint_eq(pool.nfront, 1);
    ck_assert_uint_eq(pool.front_size, 2 * SIZE);
    weave__stack_free(&pool, &big);
    ck_assert_uint_eq(pool.nfront, 1);
    ck_assert_uint_eq(pool.front_size, 4 * SIZE);
    /* b's slab mapped more stacks; what matters is that the counts add up. */
    ck_assert_uint_eq(pool.in_use, 0);
    ck_assert_uint_ge(pool.cached, cached0 + 5);
    ck_assert_uint_eq(pool.hot, 5);
    /* The three SIZE stacks are in their slab again, hot, and come back. */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &a[i]), 0);
        ck_assert_uint_eq(a[i].size, SIZE);
        memset(a[i].lo, 1, a[i].size);
    }
    ck_assert_uint_eq(pool.hot, 2);
    ck_assert_int_eq(weave__stack_alloc(&pool, 4 * SIZE, &big), 0); /* from the front */
    ck_assert_uint_eq(pool.nfront, 0);
    ck_assert_uint_eq(pool.hot, 1);
    weave__stack_free(&pool, &big);
    for (int i = 0; i < 3; i++)
        weave__stack_free(&pool, &a[i]);
    ck_assert_uint_eq(pool.in_use, 0);
    ck_assert_uint_eq(pool.hot, 5);
    weave__stack_pool_term(&pool);
}
END_TEST

/* Trim counts the front's stacks among those a class keeps hot: with
 * HOT_MAX stacks hot in the slabs and the front full, it hands back the
 * pages of a front's worth of them. */
START_TEST(trim_counts_the_front)
{
    enum { N = WEAVE__STACK_HOT_MAX + WEAVE__STACK_FRONT };
    struct weave__stack_pool pool;
    struct weave__stack st[N];
    char *lo[N];
    long resident = 0;

    weave__stack_pool_init(&pool);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
        lo[i] = st[i].lo;
        memset(lo[i], 7, SIZE);
    }
    for (int i = 0; i < N; i++)
        weave__stack_free(&pool, &st[i]);
    ck_assert_uint_eq(pool.nfront, WEAVE__STACK_FRONT);
    ck_assert_uint_eq(pool.hot, N);
    ck_assert(weave__stack_trim_due(&pool));
    weave__stack_trim(&pool);
    ck_assert_uint_eq(pool.hot, WEAVE__STACK_HOT_MAX);
    ck_assert(!weave__stack_trim_due(&pool));
    for (int i = 0; i < N; i++)
        resident += resident_pages(lo[i], SIZE) > 0;
    ck_assert_int_eq(resident, WEAVE__STACK_HOT_MAX);
    /* The front kept its stacks (the first freed: later frees found it
     * full), with their pages. */
    ck_assert_uint_eq(pool.nfront, WEAVE__STACK_FRONT);
    for (int i = 0; i < WEAVE__STACK_FRONT; i++)
        ck_assert_int_eq(resident_pages(pool.front[i].lo, SIZE), (long)(SIZE / pool.page));
    weave__stack_pool_term(&pool);
}
END_TEST

/* The front serves only its class: a size that rounds to the front's is
 * served from it, but not the same size with another guard, nor after the
 * default guard has changed. */
START_TEST(front_serves_only_its_class)
{
    struct weave__stack_pool pool;
    struct weave__stack a, b;
    char *lo;

    weave__stack_pool_init(&pool);
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &a), 0);
    lo = a.lo;
    weave__stack_free(&pool, &a);
    ck_assert_uint_eq(pool.nfront, 1);
    /* Unrounded, but of the front's class. */
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE - 1, &a), 0);
    ck_assert_ptr_eq(a.lo, lo);
    ck_assert_uint_eq(a.size, SIZE);
    weave__stack_free(&pool, &a);
    /* The front's size, another guard. */
    ck_assert_int_eq(weave__stack_alloc_guarded(&pool, SIZE, 4 * pool.page, &b), 0);
    ck_assert_ptr_ne(b.lo, lo);
    ck_assert_uint_eq(b.guard, 4 * pool.page);
    ck_assert_uint_eq(pool.nfront, 1);
    /* The same guard, asked for by size: the front's stack. */
    ck_assert_int_eq(weave__stack_alloc_guarded(&pool, SIZE, pool.guard, &a), 0);
    ck_assert_ptr_eq(a.lo, lo);
    weave__stack_free(&pool, &a);
    /* Another default guard: a stack of the new class. */
    weave__stack_set_guard(&pool, 4 * pool.page);
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &a), 0);
    ck_assert_ptr_ne(a.lo, lo);
    ck_assert_uint_eq(a.guard, 4 * pool.page);
    ck_assert_uint_eq(pool.nfront, 1);
    ck_assert_uint_eq(pool.in_use, 2);
    weave__stack_free(&pool, &a);
    weave__stack_free(&pool, &b);
    ck_assert_uint_eq(pool.in_use, 0);
    ck_assert_uint_eq(pool.nfront, 2);
    ck_assert_uint_eq(pool.front_guard, 4 * pool.page);
    weave__stack_pool_term(&pool);
}
END_TEST

/* Term unmaps the front's stacks with their slabs and empties the front: a
 * pool used again after term maps a fresh slab rather than hand out a stack
 * that is gone. */
START_TEST(term_unmaps_the_front)
{
    struct weave__stack_pool pool;
    struct weave__stack st[4];
    char *lo[4];

    weave__stack_pool_init(&pool);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[i]), 0);
        lo[i] = st[i].lo;
        memset(lo[i], 5, SIZE);
    }
    for (int i = 0; i < 4; i++)
        weave__stack_free(&pool, &st[i]);
    ck_assert_uint_eq(pool.nfront, 4);
    weave__stack_pool_term(&pool);
    assert_counts(&pool, 0, 0, 0);
    ck_assert_uint_eq(pool.mapped_bytes, 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(resident_pages(lo[i], SIZE), -1);
    /* Used again: a new slab, and a stack that can be written. */
    ck_assert_int_eq(weave__stack_alloc(&pool, SIZE, &st[0]), 0);
    ck_assert_uint_gt(pool.mapped_bytes, 0);
    ck_assert_uint_eq(pool.in_use, 1);
    memset(st[0].lo, 1, st[0].size);
    weave__stack_free(&pool, &st[0]);
    weave__stack_pool_term(&pool);
    ck_assert_uint_eq(pool.mapped_bytes, 0);
}
END_TEST

/* A stack that went through the front keeps its guard, all of it: a write
 * just below it and one at the guard's lowest byte both fault, for the
 * default guard and for a larger one. */
START_TEST(guard_below_a_stack_from_the_front_faults)
{
    struct weave__stack_pool pool;
    struct weave__stack st;
    size_t guards[2];
    char *lo;

    weave__stack_pool_init(&pool);
    guards[0] = pool.guard;
    guards[1] = 16 * pool.page;
    for (int g = 0; g < 2; g++) {
        ck_assert_int_eq(weave__stack_alloc_guarded(&pool, SIZE, guards[g], &st), 0);
        lo = st.lo;
        memset(lo, 1, st.size);
        weave__stack_free(&pool, &st);
        ck_assert_uint_eq(pool.nfront, 1);
        ck_assert_int_eq(weave__stack_alloc_guarded(&pool, SIZE, guards[g], &st), 0);
        ck_assert_ptr_eq(st.lo, lo); /* from the front */
        ck_assert_uint_eq(st.guard, guards[g]);
        st.lo[0] = 1;
        ck_assert_msg(write_faults(st.lo - 1), "writing below a guard of %zu did not fault",
                      guards[g]);
        ck_assert_msg(write_faults(st.lo - guards[g]),
                      "writing at the bottom of a guard of %zu did not fault", guards[g]);
        weave__stack_free(&pool, &st);
    }
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
    tcase_add_test(tc, front_keeps_the_counts);
    tcase_add_test(tc, front_follows_the_class_of_the_last_free);
    tcase_add_test(tc, front_serves_only_its_class);
    tcase_add_test(tc, trim_counts_the_front);
    tcase_add_test(tc, term_unmaps_the_front);
    suite_add_tcase(s, tc);

    tc = tcase_create("fault");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, guard_page_below_every_stack_faults);
    tcase_add_test(tc, guard_below_a_stack_from_the_front_faults);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wt_main(stack_pool_suite());
}
