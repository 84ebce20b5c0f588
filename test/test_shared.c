/*
 * test_shared.c - shared channels: the channel contract across schedulers
 * and plain threads; and what belongs to one scheduler staying safe from
 * the others.
 *
 * Check timeouts: "shared" 60 s a test; the CTest timeout in
 * CMakeLists.txt is above their sum.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "weave_test.h"

static weave_chan *sc;

static void *recv_one(void *arg)
{
    long v = 0;

    (void)arg;
    ck_assert_int_eq(weave_chan_recv(sc, &v), 0);
    return wt_ptr(v);
}

static void *run_receiver(void *arg)
{
    void *r = NULL;

    (void)arg;
    ck_assert_int_eq(weave_run(recv_one, NULL, &r), 0);
    return r;
}

/* A rendezvous between a plain thread (sending) and a task of another
 * thread's scheduler. */
START_TEST(thread_to_task_rendezvous)
{
    pthread_t t;
    long v = 42;
    void *r;

    ck_assert_ptr_nonnull(sc = weave_chan_new_shared(sizeof(long), 0));
    ck_assert_int_eq(pthread_create(&t, NULL, run_receiver, NULL), 0);
    ck_assert_int_eq(weave_chan_send(sc, &v), 0);
    ck_assert_int_eq(pthread_join(t, &r), 0);
    ck_assert_int_eq(wt_int(r), 42);
    ck_assert_int_eq(weave_chan_free(sc), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shared");
    TCase *tc = tcase_create("shared");

    wt_tag_native(tc); /* threads */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, thread_to_task_rendezvous);
    suite_add_tcase(s, tc);
    return wt_main(s);
}
