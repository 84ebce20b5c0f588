/*
 * procs.c - three programs at once, under one deadline: print what each
 * says as it ends, and kill the one that misses the deadline.
 *
 * gather.c's story with child processes instead of servers. Three shell
 * commands stand for three slow jobs: the first ends after 1 s, the second
 * after 3 s, the third after 1 s. Each runs in a task of its own, which
 * starts the command with its stdout and stderr on pipes and collects both
 * until it ends (weave_proc_communicate: no full pipe can stall it). The
 * main task gives the three 2 s:
 *
 *     weave_group *g = weave_group_new();
 *     for each command:
 *         weave_group_spawn(g, run_job, &job[i]);       one task per child
 *
 *     weave_deadline_begin(&d, 2000);                   a 2 s deadline scope
 *     weave_group_wait(g, -1);                          -1/ETIMEDOUT at 2 s
 *     weave_deadline_end(&d);
 *     weave_group_free(g);                              cancels the late one
 *
 * and a job's task does, top to bottom:
 *
 *     p = weave_proc_spawn("sh", argv, &opts);          stdout, stderr: pipes
 *     if (weave_proc_communicate(p, NULL, 0, &out) == 0)
 *         print its output and exit status
 *     else                                              ECANCELED: too late
 *         weave_proc_kill(p, SIGTERM), then weave_proc_wait under a shield
 *     weave_proc_free(p);
 *
 * Cancelling a task that waits for a child never stops the child: the job
 * kills it itself, and waits for it (shielded, with a timeout of its own,
 * then SIGKILL) so that nothing is left running or unreaped.
 *
 * In asyncio:
 *
 *     async def job(cmd):
 *         p = await asyncio.create_subprocess_exec(*cmd, stdout=PIPE, stderr=PIPE)
 *         try:
 *             out, err = await p.communicate()
 *         except asyncio.CancelledError:
 *             p.terminate(); await p.wait(); raise
 *
 *     async with asyncio.timeout(2):
 *         async with asyncio.TaskGroup() as tg:
 *             for cmd in cmds: tg.create_task(job(cmd))
 *
 * Usage: procs [--delay-ms N] [--timeout-ms T]
 *        (the jobs take N, 3N and N ms, default N = 1000; the deadline is
 *        T ms, default 2N)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "weave.h"

#define NJOBS   3
#define MAX_MS  600000 /* largest --delay-ms and --timeout-ms */
#define TERM_MS 1000   /* how long a killed job gets to end before SIGKILL */

/* One job: its command, and when the whole began (for the time column). */
struct job {
    int index;         /* 0-based */
    char cmd[160];     /* the shell command */
    int64_t origin_ms; /* weave_now when the jobs started */
};

static double since(const struct job *j)
{
    return (double)(weave_now() - j->origin_ms) / 1000.0;
}

/* Print each line of text (len bytes) with the job's prefix. */
static void print_lines(const struct job *j, const char *stream, const char *text, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;

        printf("           job %d %s: %.*s\n", j->index + 1, stream, (int)n, text);
        n += nl != NULL;
        text += n;
        len -= n;
    }
}

/* The late job's end: SIGTERM, a short wait, SIGKILL if need be. Shielded,
 * since the task is cancelled: else every wait would fail at once. */
static int kill_and_reap(weave_proc *p)
{
    weave_shield sh;
    int status = 0;

    weave_shield_begin(&sh);
    (void)weave_proc_kill(p, SIGTERM);
    if (weave_proc_wait_timeout(p, &status, TERM_MS) < 0 && errno == ETIMEDOUT) {
        (void)weave_proc_kill(p, SIGKILL);
        (void)weave_proc_wait(p, &status);
    }
    weave_shield_end(&sh);
    return status;
}

static void *run_job(void *arg)
{
    struct job *j = arg;
    char *argv[] = {"sh", "-c", j->cmd, NULL};
    weave_proc_opts opts = {.stdio = {WEAVE_PROC_NULL, WEAVE_PROC_PIPE, WEAVE_PROC_PIPE}};
    weave_proc_output out;
    weave_proc *p = weave_proc_spawn("sh", argv, &opts);

    if (!p) {
        printf("[%5.2f s] job %d: cannot start: %s\n", since(j), j->index + 1, strerror(errno));
        return NULL;
    }
    printf("[%5.2f s] job %d: started, pid %ld: %s\n", since(j), j->index + 1,
           (long)weave_proc_pid(p), j->cmd);
    if (weave_proc_communicate(p, NULL, 0, &out) == 0) {
        printf("[%5.2f s] job %d: exited with status %d\n", since(j), j->index + 1,
               WIFEXITED(out.status) ? WEXITSTATUS(out.status) : 128 + WTERMSIG(out.status));
        print_lines(j, "stdout", out.out, out.out_len);
        print_lines(j, "stderr", out.err, out.err_len);
        free(out.out);
        free(out.err);
    } else if (errno == ECANCELED) {
        int status = kill_and_reap(p);

        printf("[%5.2f s] job %d: missed the deadline: killed by %s\n", since(j), j->index + 1,
               WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "nothing (it had ended)");
    } else {
        printf("[%5.2f s] job %d: %s\n", since(j), j->index + 1, strerror(errno));
        (void)kill_and_reap(p);
    }
    (void)weave_proc_free(p);
    return NULL;
}

struct config {
    int64_t delay_ms, timeout_ms;
};

static void *main_task(void *arg)
{
    const struct config *c = arg;
    const int64_t delay[NJOBS] = {c->delay_ms, 3 * c->delay_ms, c->delay_ms};
    struct job job[NJOBS];
    weave_group *g = weave_group_new();
    weave_deadline d;
    int64_t origin = weave_now();

    if (!g) {
        perror("procs: weave_group_new");
        return (void *)1;
    }
    printf("three jobs of %lld, %lld and %lld ms, under a deadline of %lld ms\n",
           (long long)delay[0], (long long)delay[1], (long long)delay[2], (long long)c->timeout_ms);
    for (int i = 0; i < NJOBS; i++) {
        job[i].index = i;
        job[i].origin_ms = origin;
        snprintf(job[i].cmd, sizeof(job[i].cmd),
                 "sleep %lld.%03lld; echo 'job %d done after %lld ms'; echo 'a note on stderr' >&2",
                 (long long)(delay[i] / 1000), (long long)(delay[i] % 1000), i + 1,
                 (long long)delay[i]);
        if (!weave_group_spawn(g, run_job, &job[i])) {
            perror("procs: weave_group_spawn");
            break;
        }
    }
    weave_deadline_begin(&d, c->timeout_ms);
    if (weave_group_wait(g, -1) < 0 && errno == ETIMEDOUT)
        printf("[%5.2f s] the deadline passed: the late jobs are cancelled\n",
               (double)(weave_now() - origin) / 1000.0);
    weave_deadline_end(&d);
    (void)weave_group_free(g); /* cancels those still running, and waits for them */
    printf("[%5.2f s] done\n", (double)(weave_now() - origin) / 1000.0);
    return NULL;
}

static int parse_ms(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > MAX_MS)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct config c = {1000, -1};
    void *res = NULL;

    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--delay-ms") == 0 &&
            parse_ms(argv[i + 1], &c.delay_ms) == 0)
            i++;
        else if (i + 1 < argc && strcmp(argv[i], "--timeout-ms") == 0 &&
                 parse_ms(argv[i + 1], &c.timeout_ms) == 0)
            i++;
        else {
            fprintf(stderr, "usage: procs [--delay-ms N] [--timeout-ms T] (0 <= N, T <= %d)\n",
                    MAX_MS);
            return 2;
        }
    }
    if (c.timeout_ms < 0)
        c.timeout_ms = 2 * c.delay_ms;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (weave_run(main_task, &c, &res) < 0) {
        perror("procs: weave_run");
        return 1;
    }
    return res == NULL ? 0 : 1;
}
