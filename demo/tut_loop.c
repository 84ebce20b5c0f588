/*
 * tut_loop.c - the tutorial's first step: weave_run is the event loop.
 *
 * weave_run(main_task, arg, &result) starts a scheduler on the calling
 * thread, runs main_task(arg) as its first task and returns when that task
 * returns, with its return value in result: asyncio.run(main()). Every
 * blocking weave call (weave_sleep here) works only inside it, where there
 * is a scheduler to run something else while the caller waits; outside, it
 * fails with EPERM instead of blocking the thread.
 *
 * Usage: tut_loop
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "weave.h"

static void *main_task(void *arg)
{
    const char *name = arg;
    int64_t start = weave_now();

    printf("main task: hello, %s\n", name);
    if (weave_sleep(500) != 0) /* the loop waits on a timer: no CPU used */
        return NULL;
    printf("main task: slept %lld ms, returning\n", (long long)(weave_now() - start));
    return "the main task's result";
}

int main(void)
{
    void *result = NULL;

    /* Line-buffered even into a pipe, so each line shows when it happens. */
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    if (weave_sleep(500) != 0)
        printf("weave_sleep outside weave_run: %s\n", strerror(errno));

    printf("calling weave_run\n");
    if (weave_run(main_task, "weave", &result) != 0) {
        (void)fprintf(stderr, "tut_loop: weave_run: %s\n", strerror(errno));
        return 1;
    }
    printf("weave_run returned: %s\n", result ? (const char *)result : "(none)");
    return result ? 0 : 1;
}
