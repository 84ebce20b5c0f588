/*
 * test_xthread.c - schedulers as objects, posts and calls across threads,
 * stepping a scheduler from another loop (weave.h, "Schedulers, threads
 * and embedding").
 *
 * Check timeouts: "xthread" 30 s a test; the CTest timeout in
 * CMakeLists.txt is above their sum.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "weave_test.h"

static int ran;

static void *note_ran(void *arg)
{
    __atomic_add_fetch(&ran, 1, __ATOMIC_RELAXED);
    return arg;
}

static weave_sched *target;

static void *post_from_thread(void *arg)
{
    ck_assert_int_eq(weave_post(target, note_ran, NULL), 0);
    return arg;
}

static void *wait_for_post(void *arg)
{
    while (__atomic_load_n(&ran, __ATOMIC_RELAXED) == 0)
        ck_assert_int_eq(weave_sleep(1), 0);
    return arg;
}

/* A post from a thread with no scheduler runs on the target. */
START_TEST(post_from_a_plain_thread)
{
    pthread_t t;

    ck_assert_ptr_nonnull(target = weave_sched_new(NULL));
    ck_assert_int_eq(pthread_create(&t, NULL, post_from_thread, NULL), 0);
    ck_assert_int_eq(weave_sched_run(target, wait_for_post, NULL, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(ran, 1);
    WT_FAILS(weave_post(target, note_ran, NULL), ESRCH);
    ck_assert_int_eq(weave_sched_free(target), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("xthread");
    TCase *tc = tcase_create("xthread");

    wt_tag_native(tc); /* threads */
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, post_from_a_plain_thread);
    suite_add_tcase(s, tc);
    return wt_main(s);
}
