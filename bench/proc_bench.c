/*
 * proc_bench.c - children per second: weave_proc_spawn against Python's
 * asyncio.create_subprocess_exec, in the same run.
 *
 * Each cell starts a program (/bin/true by default) --children times and
 * waits for every one, either one at a time or with --concurrency tasks
 * (coroutines) at once, each child with stdout on a pipe that is read to
 * its end (what a caller of the output does). The cells:
 *
 *   posix_spawn + waitpid    the floor: no scheduler, one at a time, stdout
 *                            on a pipe read to its end
 *   weave                    weave_proc_spawn, weave_proc_communicate,
 *                            weave_proc_free
 *   python asyncio           create_subprocess_exec(stdout=PIPE) and
 *                            communicate(), run as a child python3 process
 *                            that prints its own figure (skipped when no
 *                            python3 is found)
 *
 * Rounds interleave the cells, so that a noisy machine slows them alike;
 * each figure is the median of --rounds. With --json, one object per cell:
 * {"what", "concurrency", "children", "per_s", "us_per_child"}.
 *
 * Usage: proc_bench [--children N] [--concurrency C] [--rounds R]
 *                   [--program PATH] [--json]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "weave.h"

extern char **environ;

#define MAX_ROUNDS 15

struct opts {
    uint32_t children, concurrency, rounds;
    const char *program;
    bool json;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: proc_bench [--children N] [--concurrency C] [--rounds R]\n"
               "                  [--program PATH] [--json]\n"
               "  --children N     children per cell (default 1000)\n"
               "  --concurrency C  children at once in the concurrent cells (default 16)\n"
               "  --rounds R       rounds, interleaved; figures are medians (default 3)\n"
               "  --program PATH   the program started, without arguments (default /bin/true)\n"
               "  --json           one JSON object per cell instead of the table\n");
}

/* ---- the floor -------------------------------------------------------------- */

/* Start program with stdout on a pipe, read it to its end, reap it. */
static int plain_one(const char *program)
{
    char *argv[] = {(char *)program, NULL};
    posix_spawn_file_actions_t fa;
    int pp[2], status;
    char buf[4096];
    pid_t pid;
    int r;

    if (pipe2(pp, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pp[1], 1);
    r = posix_spawn(&pid, program, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pp[1]);
    if (r != 0) {
        close(pp[0]);
        errno = r;
        return -1;
    }
    while (read(pp[0], buf, sizeof(buf)) > 0)
        ;
    close(pp[0]);
    return waitpid(pid, &status, 0) == pid && status == 0 ? 0 : -1;
}

static double plain_cell(const struct opts *o)
{
    int64_t t0 = bench_now_ns();

    for (uint32_t i = 0; i < o->children; i++)
        if (plain_one(o->program) < 0) {
            perror("proc_bench: posix_spawn");
            exit(1);
        }
    return (double)(bench_now_ns() - t0) / 1e9;
}

/* ---- weave ------------------------------------------------------------------- */

struct share {
    const struct opts *o;
    uint32_t left; /* children still to start */
    int failed;    /* errno of the first failure */
};

static void *starter(void *arg)
{
    struct share *sh = arg;
    char *argv[] = {(char *)sh->o->program, NULL};
    weave_proc_opts po = {.stdio = {WEAVE_PROC_INHERIT, WEAVE_PROC_PIPE, WEAVE_PROC_INHERIT}};

    while (sh->left > 0 && !sh->failed) {
        weave_proc_output out;
        weave_proc *p;

        sh->left--;
        if (!(p = weave_proc_spawn(sh->o->program, argv, &po)) ||
            weave_proc_communicate(p, NULL, 0, &out) < 0) {
            sh->failed = errno;
            if (p)
                (void)weave_proc_free(p);
            break;
        }
        free(out.out);
        (void)weave_proc_free(p);
        if (out.status != 0)
            sh->failed = ECHILD;
    }
    return NULL;
}

struct weave_cell {
    const struct opts *o;
    uint32_t concurrency;
    double seconds;
};

static void *weave_main(void *arg)
{
    struct weave_cell *c = arg;
    struct share sh = {c->o, c->o->children, 0};
    weave_task *t[1024];
    int64_t t0 = bench_now_ns();

    for (uint32_t i = 0; i < c->concurrency; i++)
        if (!(t[i] = weave_spawn(starter, &sh))) {
            perror("proc_bench: weave_spawn");
            exit(1);
        }
    for (uint32_t i = 0; i < c->concurrency; i++)
        (void)weave_join(t[i], NULL);
    c->seconds = (double)(bench_now_ns() - t0) / 1e9;
    if (sh.failed) {
        fprintf(stderr, "proc_bench: weave: %s\n", strerror(sh.failed));
        exit(1);
    }
    return NULL;
}

static double weave_cell(const struct opts *o, uint32_t concurrency)
{
    struct weave_cell c = {o, concurrency, 0};

    if (weave_run(weave_main, &c, NULL) < 0) {
        perror("proc_bench: weave_run");
        exit(1);
    }
    return c.seconds;
}

/* ---- python asyncio ------------------------------------------------------------ */

static const char python_script[] =
    "import asyncio, sys, time\n"
    "prog, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
    "async def starter(left):\n"
    "    while left[0] > 0:\n"
    "        left[0] -= 1\n"
    "        p = await asyncio.create_subprocess_exec(prog, stdout=asyncio.subprocess.PIPE)\n"
    "        await p.communicate()\n"
    "        assert p.returncode == 0\n"
    "async def main():\n"
    "    left = [n]\n"
    "    t0 = time.monotonic()\n"
    "    await asyncio.gather(*(starter(left) for _ in range(conc)))\n"
    "    print(time.monotonic() - t0)\n"
    "asyncio.run(main())\n";

/* Seconds python took, or a negative number if it could not run. */
static double python_cell(const struct opts *o, uint32_t concurrency)
{
    char cmd[1024], out[64];
    double s = -1;
    FILE *f;

    snprintf(cmd, sizeof(cmd), "python3 -c '%s' '%s' %u %u 2>/dev/null", python_script, o->program,
             o->children, concurrency);
    if (!(f = popen(cmd, "r")))
        return -1;
    if (fgets(out, sizeof(out), f))
        s = strtod(out, NULL);
    if (pclose(f) != 0)
        return -1;
    return s > 0 ? s : -1;
}

/* ---- the table --------------------------------------------------------------- */

enum { PLAIN, WEAVE_1, WEAVE_C, PY_1, PY_C, NCELLS };

int main(int argc, char **argv)
{
    struct opts o = {1000, 16, 3, "/bin/true", false};
    const struct bench_opt opts[] = {
        {.name = "--json", .flag = &o.json},
        {.name = "--children",
         .u32 = &o.children,
         .min = 1,
         .max = 1000000,
         .bad = "--children wants a whole number from 1 to 1000000, not '%s'"},
        {.name = "--concurrency",
         .u32 = &o.concurrency,
         .min = 1,
         .max = 1024,
         .bad = "--concurrency wants a whole number from 1 to 1024, not '%s'"},
        {.name = "--rounds",
         .u32 = &o.rounds,
         .min = 1,
         .max = MAX_ROUNDS,
         .bad = "--rounds wants a whole number from 1 to 15, not '%s'"},
        {.name = "--program", .str = &o.program, .bad = "--program wants a path, not '%s'"},
    };
    static const char *const names[NCELLS] = {"posix_spawn + waitpid", "weave", "weave",
                                              "python asyncio", "python asyncio"};
    double secs[NCELLS][MAX_ROUNDS], med[NCELLS];
    uint32_t conc[NCELLS];
    bool have_python = true;

    bench_parse_args(argc, argv, "proc_bench", usage, opts, sizeof(opts) / sizeof(opts[0]), NULL);
    if (strchr(o.program, '\'')) {
        fprintf(stderr, "proc_bench: --program may not hold a quote\n");
        return 2;
    }
    conc[PLAIN] = conc[WEAVE_1] = conc[PY_1] = 1;
    conc[WEAVE_C] = conc[PY_C] = o.concurrency;
    for (uint32_t r = 0; r < o.rounds; r++) {
        secs[PLAIN][r] = plain_cell(&o);
        secs[WEAVE_1][r] = weave_cell(&o, 1);
        secs[WEAVE_C][r] = weave_cell(&o, o.concurrency);
        if (have_python) {
            secs[PY_1][r] = python_cell(&o, 1);
            secs[PY_C][r] = python_cell(&o, o.concurrency);
            have_python = secs[PY_1][r] > 0 && secs[PY_C][r] > 0;
        }
    }
    for (int c = 0; c < NCELLS; c++) {
        qsort(secs[c], o.rounds, sizeof(double), bench_cmp_double);
        med[c] = bench_median(secs[c], o.rounds);
    }
    if (!o.json) {
        printf("proc_bench: %s, %u children per cell, median of %u interleaved rounds\n\n",
               o.program, o.children, o.rounds);
        printf("%-24s %11s %12s %11s %15s\n", "what", "at once", "children/s", "us/child",
               "vs asyncio");
    }
    for (int c = 0; c < NCELLS; c++) {
        double per_s = o.children / med[c], us = med[c] * 1e6 / o.children;
        int py = conc[c] == 1 ? PY_1 : PY_C;

        if ((c == PY_1 || c == PY_C) && !have_python) {
            if (!o.json)
                printf("%-24s %11u %12s %11s %15s\n", names[c], conc[c], "-", "-", "no python3");
            continue;
        }
        if (o.json) {
            printf("{\"what\":\"%s\",\"concurrency\":%u,\"children\":%u,\"per_s\":%.1f,"
                   "\"us_per_child\":%.1f}\n",
                   names[c], conc[c], o.children, per_s, us);
            continue;
        }
        if (have_python && c != PLAIN)
            printf("%-24s %11u %12.0f %11.1f %14.2fx\n", names[c], conc[c], per_s, us,
                   med[py] / med[c]);
        else
            printf("%-24s %11u %12.0f %11.1f %15s\n", names[c], conc[c], per_s, us, "");
    }
    return 0;
}
