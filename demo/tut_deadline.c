/*
 * tut_deadline.c - the tutorial's sixth step: timeouts with deadline scopes.
 *
 * A deadline scope gives a stretch of code a time limit (asyncio.timeout):
 * between weave_deadline_begin(&d, ms) and weave_deadline_end(&d), every
 * blocking call fails with -1/ETIMEDOUT once the ms have passed, the call
 * waiting at that moment included. The slow peer here is a pipe that
 * nobody writes to.
 *
 *   1. One scope bounds several calls: a short sleep finishes, the read
 *      that follows times out at the deadline, and a call made after the
 *      deadline fails at once.
 *   2. Scopes nest and the nearest deadline wins; ending the inner scope
 *      gives back the outer one, whose time has not run out.
 *   3. A shield keeps cancellation out, so a cancelled task can still wait
 *      while it cleans up; a deadline begun inside the shield bounds that.
 *
 * Usage: tut_deadline
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "weave.h"

/* The slow peer, and the time column's origin. */
struct peer {
    int fd;           /* read end of a pipe nobody writes to */
    int64_t start_ms; /* when the main task began */
};

/* Print what a call returned, and when. */
static void report(const struct peer *p, const char *call, long long ret)
{
    printf("[%4lld ms] %-26s -> %lld%s%s\n", (long long)(weave_now() - p->start_ms), call, ret,
           ret < 0 ? " " : "", ret < 0 ? strerror(errno) : "");
}

static void one_scope(const struct peer *p)
{
    weave_deadline d;
    char c;

    printf("1. one scope, 300 ms, around three calls\n");
    weave_deadline_begin(&d, 300);
    report(p, "weave_sleep(100)", weave_sleep(100));
    report(p, "weave_read(pipe)", (long long)weave_read(p->fd, &c, 1));
    report(p, "weave_read(pipe) again", (long long)weave_read(p->fd, &c, 1));
    report(p, "weave_deadline_end", weave_deadline_end(&d)); /* 1: it passed */
}

static void nested_scopes(const struct peer *p)
{
    weave_deadline outer, inner;
    char c;

    printf("2. a 200 ms scope inside a 1000 ms one\n");
    weave_deadline_begin(&outer, 1000);
    weave_deadline_begin(&inner, 200);
    report(p, "weave_read(pipe)", (long long)weave_read(p->fd, &c, 1));
    report(p, "weave_deadline_end(inner)", weave_deadline_end(&inner));
    report(p, "weave_sleep(100)", weave_sleep(100)); /* the outer scope has time left */
    report(p, "weave_deadline_end(outer)", weave_deadline_end(&outer));
}

/* Read from the pipe until cancelled, then say goodbye (a sleep stands in
 * for a last exchange with the peer). */
static void *reader(void *arg)
{
    const struct peer *p = arg;
    weave_shield s;
    weave_deadline d;
    char c;

    report(p, "reader: weave_read(pipe)", (long long)weave_read(p->fd, &c, 1));
    report(p, "reader: weave_sleep(50)", weave_sleep(50)); /* cancelled: fails at once */
    weave_shield_begin(&s);
    weave_deadline_begin(&d, 100); /* cleanup gets 100 ms at most */
    report(p, "reader: shielded sleep(50)", weave_sleep(50));
    (void)weave_deadline_end(&d);
    weave_shield_end(&s);
    return NULL;
}

static void shielded_cleanup(const struct peer *p)
{
    weave_task *t;

    printf("3. a cancelled task cleans up inside a shield\n");
    if (!(t = weave_spawn(reader, (void *)p)) || weave_sleep(100) != 0)
        return;
    report(p, "weave_cancel(reader)", weave_cancel(t));
    report(p, "weave_join(reader)", weave_join(t, NULL));
}

static void *main_task(void *arg)
{
    struct peer peer;
    int fds[2];

    (void)arg;
    if (pipe(fds) != 0) {
        perror("tut_deadline: pipe");
        return NULL;
    }
    peer.fd = fds[0];
    peer.start_ms = weave_now();
    one_scope(&peer);
    nested_scopes(&peer);
    shielded_cleanup(&peer);
    weave_close(fds[0]);
    weave_close(fds[1]);
    return "ok";
}

int main(void)
{
    void *ok = NULL;

    /* Line-buffered even into a pipe, so each line shows when it happens. */
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    if (weave_run(main_task, NULL, &ok) != 0) {
        (void)fprintf(stderr, "tut_deadline: weave_run: %s\n", strerror(errno));
        return 1;
    }
    return ok ? 0 : 1;
}
