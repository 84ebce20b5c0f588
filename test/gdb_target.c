/*
 * gdb_target.c - the program the gdb helper (tools/weave-gdb.py) is tested
 * on, by gdb_test.cmake.
 *
 * The main task spawns tasks that each stop somewhere a debugger should be
 * able to find them, then calls wt_gdb_stop_here, where gdb has a
 * breakpoint. At that moment:
 *
 *     main         RUNNING  in wt_gdb_stop_here
 *     sleeper      PARKED   weave_sleep in wt_gdb_sleeper
 *     receiver     PARKED   weave_chan_recv in wt_gdb_receiver
 *     joiner       PARKED   weave_join (of receiver) in wt_gdb_joiner
 *     yielder      READY    weave_yield in wt_gdb_yielder
 *     task-<id>    DONE     unnamed, ended, not joined yet
 *
 * Then main lets every task finish and joins them all, so that the program
 * also runs to a clean exit without a debugger (exit status 0).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <weave.h>

/* Tasks that reached the point where they stop (the yielder counts once). */
static int arrived;
/* Set by main after the breakpoint: the yielder may end. */
static bool released;

static weave_chan *chan;
static weave_task *receiver;

void wt_gdb_stop_here(void);
void *wt_gdb_sleeper(void *arg);
void *wt_gdb_receiver(void *arg);
void *wt_gdb_joiner(void *arg);
void *wt_gdb_yielder(void *arg);
void *wt_gdb_finisher(void *arg);

/* Where gdb stops. noinline and an empty asm, so that the call is kept and
 * the function has a frame of its own at every optimisation level. */
__attribute__((noinline)) void wt_gdb_stop_here(void)
{
    __asm__ volatile("" ::: "memory");
}

/* Sleeps for a minute, unless cancelled (main cancels it). */
__attribute__((noinline)) void *wt_gdb_sleeper(void *arg)
{
    (void)arg;
    arrived++;
    weave_sleep(60 * 1000);
    return NULL;
}

/* Waits for one value on the channel. */
__attribute__((noinline)) void *wt_gdb_receiver(void *arg)
{
    int value = 0;

    (void)arg;
    arrived++;
    if (weave_chan_recv(chan, &value) < 0)
        return (void *)(intptr_t)-1;
    return (void *)(intptr_t)value;
}

/* Joins the receiver. */
__attribute__((noinline)) void *wt_gdb_joiner(void *arg)
{
    void *result = NULL;

    (void)arg;
    arrived++;
    if (weave_join(receiver, &result) < 0)
        return (void *)(intptr_t)-1;
    return result;
}

/* Stays runnable, yielding, until main releases it. */
__attribute__((noinline)) void *wt_gdb_yielder(void *arg)
{
    (void)arg;
    arrived++;
    while (!released)
        weave_yield();
    return NULL;
}

/* Ends at once; main joins it only after the breakpoint. */
__attribute__((noinline)) void *wt_gdb_finisher(void *arg)
{
    (void)arg;
    arrived++;
    return NULL;
}

static weave_task *spawn(const char *name, weave_fn fn)
{
    weave_task_opts opts = {.name = name};
    weave_task *t = weave_spawn_with(&opts, fn, NULL);

    if (!t) {
        perror("weave_spawn_with");
        exit(1);
    }
    return t;
}

static void *main_task(void *arg)
{
    weave_task *sleeper, *joiner, *yielder, *finisher;
    void *result = NULL;
    int value = 42, failed = 0;

    (void)arg;
    if (!(chan = weave_chan_new(sizeof(int), 0))) {
        perror("weave_chan_new");
        exit(1);
    }
    sleeper = spawn("sleeper", wt_gdb_sleeper);
    receiver = spawn("receiver", wt_gdb_receiver);
    joiner = spawn("joiner", wt_gdb_joiner);
    yielder = spawn("yielder", wt_gdb_yielder);
    finisher = spawn(NULL, wt_gdb_finisher);

    /* Run queue order is FIFO: once every task has counted itself, each one
     * has also stopped where it stops (it parks right after counting). */
    while (arrived < 5)
        weave_yield();

    wt_gdb_stop_here();

    released = true;
    failed |= weave_cancel(sleeper) < 0;
    failed |= weave_chan_send(chan, &value) < 0;
    failed |= weave_join(sleeper, NULL) < 0;
    failed |= weave_join(joiner, &result) < 0 || (intptr_t)result != 42;
    failed |= weave_join(yielder, NULL) < 0;
    failed |= weave_join(finisher, NULL) < 0;
    failed |= weave_chan_free(chan) < 0;
    return (void *)(intptr_t)failed;
}

int main(void)
{
    void *result = NULL;

    if (weave_run(main_task, NULL, &result) < 0) {
        perror("weave_run");
        return 1;
    }
    if (result) {
        fprintf(stderr, "gdb_target: the tasks did not end as expected\n");
        return 1;
    }
    return 0;
}
