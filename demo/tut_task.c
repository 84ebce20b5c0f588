/*
 * tut_task.c - the tutorial's second step: tasks.
 *
 * weave_spawn(fn, arg) makes a task and puts it at the back of the run
 * queue; the caller goes on (asyncio.create_task). weave_join(t, &result)
 * waits for t to end and takes its return value (await task). While one
 * task sleeps the others run, so two counters that sleep 100 ms per count
 * take turns. A task nobody will join is detached instead (weave_detach).
 * weave_cancel(t) makes t's blocking call return -1 with ECANCELED, and t
 * then runs to its end, cleaning up on the way. A task still running when
 * the main task returns is cancelled the same way by weave_run, which
 * returns only once it has ended.
 *
 * Usage: tut_task
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "weave.h"

/* What a counter counts to, and what it prints. */
struct counter {
    const char *name;
    int to;
};

static void *count(void *arg)
{
    const struct counter *c = arg;

    for (int i = 1; i <= c->to; i++) {
        printf("%s: %d\n", c->name, i);
        if (weave_sleep(100) != 0)
            return NULL;
    }
    return (void *)(intptr_t)(c->to * 10);
}

/* Wait for an event that never comes, then clean up. */
static void *sleeper(void *arg)
{
    const char *name = arg;

    if (weave_sleep(-1) != 0) /* -1: until cancelled */
        printf("%s: woke up with %s, cleaning up\n", name, strerror(errno));
    return NULL;
}

static void *main_task(void *arg)
{
    struct counter a = {"A", 3}, b = {"B", 2};
    weave_task *ta = weave_spawn(count, &a);
    weave_task *tb = weave_spawn(count, &b);
    weave_task *s1, *s2;
    void *ra = NULL, *rb = NULL;

    if (!ta || !tb)
        return NULL; /* weave_run cancels whichever did start */
    printf("main: spawned A and B; they run once main waits\n");
    if (weave_join(ta, &ra) != 0 || weave_join(tb, &rb) != 0)
        return NULL;
    printf("main: joined A (%d) and B (%d)\n", (int)(intptr_t)ra, (int)(intptr_t)rb);

    s1 = weave_spawn(sleeper, "sleeper 1");
    s2 = weave_spawn(sleeper, "sleeper 2");
    if (!s1 || !s2 || weave_detach(s2) != 0) /* nobody will join sleeper 2 */
        return NULL;
    if (weave_sleep(100) != 0)
        return NULL;
    printf("main: cancelling sleeper 1\n");
    if (weave_cancel(s1) != 0 || weave_join(s1, NULL) != 0)
        return NULL;
    printf("main: sleeper 1 has ended; returning with sleeper 2 still asleep\n");
    return arg;
}

int main(void)
{
    void *ok = NULL;

    /* Line-buffered even into a pipe, so each line shows when it happens. */
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    if (weave_run(main_task, "ok", &ok) != 0) {
        (void)fprintf(stderr, "tut_task: weave_run: %s\n", strerror(errno));
        return 1;
    }
    printf("weave_run returned: every task has ended\n");
    return ok ? 0 : 1;
}
