/*
 * test_proc.c - child processes (weave_proc_*).
 *
 * Life: exit codes, death by a signal, a killed process group, several
 * waiters, timeouts, deadline scopes and cancellation of a wait (which
 * leaves the child running), a handle freed before its child ends, and
 * weave_run ending with children still running: each child is reaped
 * exactly once, by weave, and no zombie is left (/proc tells). 1,000 short
 * children in a row leave no fd and no child behind.
 *
 * Pipes: streams over stdin and stdout, environment and working directory,
 * communicate with megabytes on stdout and stderr at once and a child that
 * closes its stdin early, /dev/null. The program's own SIGCHLD handling is
 * left alone, and one that reaps every child itself gets ECHILD.
 *
 * Misuse: bad arguments, missing and non-executable programs, a bad
 * working directory, calls outside a task.
 *
 * Check timeouts: "life" 15 s x 10, "pipes" 15 s x 7, "misuse" 15 s x 3 =
 * 300 s; the CTest timeout in CMakeLists.txt (330 s) is above their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weave_test.h"

/* A child running the shell command cmd, with stdio as given. */
static weave_proc *shell(const char *cmd, int in, int out, int err)
{
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    weave_proc_opts o = {.stdio = {in, out, err}};
    weave_proc *p = weave_proc_spawn("sh", argv, &o);

    ck_assert_msg(p != NULL, "spawn of sh -c '%s': errno %d", cmd, errno);
    return p;
}

/* Whether a process pid exists, a zombie included. */
static bool exists(pid_t pid)
{
    char path[64];
    struct stat sb;

    snprintf(path, sizeof(path), "/proc/%ld", (long)pid);
    return stat(path, &sb) == 0;
}

/* Whether pid is a zombie (ended, not reaped). */
static bool zombie(pid_t pid)
{
    char path[64], buf[256];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((fd = open(path, O_RDONLY)) < 0)
        return false;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strstr(buf, ") Z ") != NULL;
}

/* ---- life ------------------------------------------------------------------ */

WT_TEST(exit_codes)
{
    static const int codes[] = {0, 1, 3, 42, 255};
    int status = -1;

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        char cmd[32];
        weave_proc *p;

        snprintf(cmd, sizeof(cmd), "exit %d", codes[i]);
        p = shell(cmd, WEAVE_PROC_INHERIT, WEAVE_PROC_INHERIT, WEAVE_PROC_INHERIT);
        ck_assert_int_gt(weave_proc_pid(p), 0);
        ck_assert_int_eq(weave_proc_wait(p, &status), 0);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), codes[i]);
        /* Reaped once: later waits give the same status at once. */
        status = -1;
        ck_assert_int_eq(weave_proc_wait_timeout(p, &status, 0), 0);
        ck_assert_int_eq(WEXITSTATUS(status), codes[i]);
        ck_assert(!exists(weave_proc_pid(p)));
        ck_assert_int_eq(weave_proc_free(p), 0);
    }
    WT_ASSERT_IDLE();
}

WT_TEST(killed_by_a_signal)
{
    char *argv[] = {"sleep", "30", NULL};
    weave_proc *p = weave_proc_spawn("sleep", argv, NULL);
    int status = 0;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(weave_proc_kill(p, 0), 0); /* it can be signalled */
    ck_assert_int_eq(weave_proc_kill(p, SIGTERM), 0);
    ck_assert_int_eq(weave_proc_wait(p, &status), 0);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(WTERMSIG(status), SIGTERM);
    /* Reaped: the pid may belong to someone else now. */
    WT_FAILS(weave_proc_kill(p, SIGTERM), ESRCH);
    ck_assert_int_eq(weave_proc_free(p), 0);
}

WT_TEST(a_new_group_is_killed_whole)
{
    /* The shell starts a sleep that inherits the stdout pipe: end of file
     * comes only once both are dead. */
    weave_proc_opts o = {.stdio = {WEAVE_PROC_NULL, WEAVE_PROC_PIPE, WEAVE_PROC_INHERIT},
                         .flags = WEAVE_PROC_NEW_GROUP};
    char *argv[] = {"sh", "-c", "sleep 30 & echo started; wait", NULL};
    weave_proc *p = weave_proc_spawn("sh", argv, &o);
    weave_stream *out;
    char line[64];
    int status = 0;
    int64_t t0;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(getpgid(weave_proc_pid(p)), weave_proc_pid(p));
    ck_assert_ptr_nonnull(out = weave_proc_stream(p, 1));
    ck_assert_ptr_eq(weave_proc_stream(p, 1), out); /* the same one */
    ck_assert_int_eq(weave_stream_read_line(out, line, sizeof(line)), 8);
    ck_assert_str_eq(line, "started\n");
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_proc_kill(p, SIGKILL), 0);
    ck_assert_int_eq(weave_stream_read(out, line, sizeof(line)), 0); /* the sleep died too */
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    ck_assert_int_eq(weave_proc_wait(p, &status), 0);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert_int_eq(weave_proc_free(p), 0);
}

static void *waiter(void *arg)
{
    int status = -1;

    if (weave_proc_wait(arg, &status) < 0)
        return wt_ptr(-errno);
    return wt_ptr(WIFEXITED(status) ? WEXITSTATUS(status) : 1000);
}

WT_TEST(every_waiter_gets_the_status)
{
    weave_proc *p = shell("sleep 0.1; exit 7", 0, 0, 0);
    weave_task *t[3];

    for (int i = 0; i < 3; i++)
        t[i] = WT_SPAWN(waiter, p);
    ck_assert_int_eq(weave_sleep(10), 0); /* they are waiting now */
    WT_FAILS(weave_proc_free(p), EBUSY);  /* they wait for it */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(wt_int(WT_JOIN(t[i])), 7);
    ck_assert_int_eq(weave_proc_free(p), 0);
}

WT_TEST(timeouts_and_scopes_leave_it_running)
{
    weave_proc *p = shell("sleep 30", 0, 0, 0);
    weave_deadline d;
    int64_t t0 = wt_now_ns();
    int status = 0;

    WT_FAILS(weave_proc_wait_timeout(p, &status, 0), ETIMEDOUT);
    WT_FAILS(weave_proc_wait_timeout(p, &status, 50), ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), 50); /* never early */
    weave_deadline_begin(&d, 30);
    WT_FAILS(weave_proc_wait(p, &status), ETIMEDOUT);
    weave_deadline_end(&d);
    ck_assert(exists(weave_proc_pid(p)) && !zombie(weave_proc_pid(p)));
    ck_assert_int_eq(weave_proc_kill(p, SIGKILL), 0);
    ck_assert_int_eq(weave_proc_wait(p, &status), 0);
    ck_assert_int_eq(WTERMSIG(status), SIGKILL);
    ck_assert_int_eq(weave_proc_free(p), 0);
}

WT_TEST(cancelling_a_wait_leaves_it_running)
{
    weave_proc *p = shell("sleep 30", 0, 0, 0);
    weave_task *t = WT_SPAWN(waiter, p);
    weave_task_info info[4];
    ssize_t n;
    bool seen = false;
    int status = 0;

    /* weave_tasks tells what it waits on (without a pidfd the waiter wakes
     * now and then to look, so it may be caught between two waits). */
    for (int64_t t0 = wt_now_ns(); !seen && wt_ms_since(t0) < WT_PROMPT_MS;) {
        ck_assert_int_eq(weave_sleep(5), 0);
        ck_assert_int_ge(n = weave_tasks(info, 4), 2);
        for (ssize_t i = 0; i < n; i++)
            if (info[i].wait == WEAVE_WAIT_PROC && info[i].wait_object == p)
                seen = true;
    }
    ck_assert(seen);
    ck_assert_int_eq(weave_cancel(t), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t)), -ECANCELED);
    ck_assert(exists(weave_proc_pid(p)) && !zombie(weave_proc_pid(p)));
    ck_assert_int_eq(weave_proc_kill(p, SIGKILL), 0);
    ck_assert_int_eq(weave_proc_wait(p, &status), 0);
    ck_assert_int_eq(weave_proc_free(p), 0);
}

WT_TEST(a_freed_handle_is_reaped_when_its_child_ends)
{
    weave_proc *p = shell("sleep 0.1", 0, 0, 0);
    pid_t pid = weave_proc_pid(p);
    char *argv[] = {"true", NULL};
    int64_t t0 = wt_now_ns();

    ck_assert_int_eq(weave_proc_free(p), 0);
    ck_assert(exists(pid)); /* still running: free kills nothing */
    while (exists(pid) && !zombie(pid) && wt_ms_since(t0) < WT_PROMPT_MS + 100)
        ck_assert_int_eq(weave_sleep(10), 0);
    /* With a pidfd, weave reaps it as it ends; without one (kernels before
     * 5.3, and valgrind, which knows no pidfd_open), at the next spawn. */
    ck_assert_ptr_nonnull(p = weave_proc_spawn("true", argv, NULL));
    ck_assert_int_eq(weave_proc_wait(p, NULL), 0);
    ck_assert_int_eq(weave_proc_free(p), 0);
    ck_assert(!exists(pid)); /* reaped by weave, not left a zombie */
    WT_ASSERT_IDLE();
}

/* pids of children started by the run that ends with them still running. */
static pid_t left_running[2];

static void *start_and_leave(void *arg)
{
    weave_proc *kept = shell("sleep 0.3", WEAVE_PROC_PIPE, WEAVE_PROC_PIPE, 0);
    weave_proc *freed = shell("sleep 0.3", 0, 0, 0);

    (void)arg;
    left_running[0] = weave_proc_pid(kept);
    left_running[1] = weave_proc_pid(freed);
    ck_assert_int_eq(weave_proc_free(freed), 0);
    return NULL; /* kept is left to the end of the run */
}

START_TEST(the_run_ends_with_children_running)
{
    int64_t t0;
    int fds = wt_fd_count();

    WT_RUN(start_and_leave, NULL);
    ck_assert(exists(left_running[0]) && exists(left_running[1])); /* not killed */
    ck_assert_int_le(wt_fd_count(), fds + 2); /* the reaper holds their pidfds, if any */
    t0 = wt_now_ns();
    while ((exists(left_running[0]) || exists(left_running[1])) &&
           wt_ms_since(t0) < WT_PROMPT_MS + 300)
        usleep(10000);
    /* Reaped, and by weave: this process was never asked to. */
    ck_assert(!exists(left_running[0]) && !exists(left_running[1]));
    usleep(20000); /* the reaper closes the pidfds before it ends */
    ck_assert_int_eq(wt_fd_count(), fds);
}
END_TEST

WT_TEST(a_thousand_children_leave_nothing)
{
    int n = WT_ON_VALGRIND ? 100 : 1000, fds = wt_fd_count(), status;

    for (int i = 0; i < n; i++) {
        char *argv[] = {"true", NULL};
        weave_proc_opts o = {.stdio = {WEAVE_PROC_PIPE, WEAVE_PROC_PIPE, WEAVE_PROC_NULL}};
        weave_proc *p = weave_proc_spawn("/bin/true", argv, &o);

        ck_assert_msg(p != NULL, "spawn %d: errno %d", i, errno);
        ck_assert_int_eq(weave_proc_wait(p, &status), 0);
        ck_assert_int_eq(status, 0);
        ck_assert_int_eq(weave_proc_free(p), 0);
    }
    ck_assert_int_eq(wt_fd_count(), fds);
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* no child at all */
    ck_assert_int_eq(errno, ECHILD);
    WT_ASSERT_IDLE();
}

static volatile sig_atomic_t chld_seen;

static void on_chld(int sig)
{
    (void)sig;
    chld_seen = 1;
}

static void reap_all(int sig)
{
    int saved = errno;

    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

WT_TEST(sigchld_stays_the_programs)
{
    struct sigaction sa, now;
    weave_proc *p;
    int status;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_chld;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGCHLD, &sa, NULL), 0);
    p = shell("exit 5", 0, 0, 0);
    ck_assert_int_eq(weave_proc_wait(p, &status), 0);
    ck_assert_int_eq(WEXITSTATUS(status), 5);
    ck_assert_int_eq(sigaction(SIGCHLD, NULL, &now), 0);
    ck_assert_ptr_eq((void *)now.sa_handler, (void *)on_chld); /* untouched */
    ck_assert_int_eq(chld_seen, 1);                            /* and delivered */
    ck_assert_int_eq(weave_proc_free(p), 0);

    /* A program that reaps every child itself takes weave's too. */
    sa.sa_handler = reap_all;
    ck_assert_int_eq(sigaction(SIGCHLD, &sa, NULL), 0);
    p = shell("exit 5", 0, 0, 0);
    WT_FAILS(weave_proc_wait(p, &status), ECHILD);
    ck_assert_int_eq(weave_proc_free(p), 0);
}

/* ---- pipes ------------------------------------------------------------------ */

WT_TEST(streams_both_ways)
{
    weave_proc *p = shell("cat", WEAVE_PROC_PIPE, WEAVE_PROC_PIPE, WEAVE_PROC_INHERIT);
    weave_stream *in = weave_proc_stream(p, 0), *out = weave_proc_stream(p, 1);
    char line[64];
    int status;

    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_ge(weave_proc_fd(p, 0), 0);
    WT_FAILS(weave_proc_fd(p, 2), EBADF); /* inherited: no pipe */
    for (int i = 0; i < 3; i++) {
        char want[32];

        ck_assert_int_eq(weave_stream_printf(in, "line %d\n", i), 7);
        ck_assert_int_eq(weave_stream_flush(in), 0);
        snprintf(want, sizeof(want), "line %d\n", i);
        ck_assert_int_eq(weave_stream_read_line(out, line, sizeof(line)), 7);
        ck_assert_str_eq(line, want);
    }
    ck_assert_int_eq(weave_stream_printf(in, "unflushed\n"), 10);
    ck_assert_int_eq(weave_proc_close(p, 0), 0); /* flushed, then end of file */
    WT_FAILS(weave_proc_close(p, 0), EBADF);
    WT_FAILS(weave_proc_fd(p, 0), EBADF);
    ck_assert_int_eq(weave_stream_read_line(out, line, sizeof(line)), 10);
    ck_assert_int_eq(weave_stream_read_line(out, line, sizeof(line)), 0);
    ck_assert_int_eq(weave_proc_wait(p, &status), 0);
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(weave_proc_free(p), 0);
}

WT_TEST(environment_and_directory)
{
    char *argv[] = {"sh", "-c", "echo \"$GREETING\"; pwd; ls marker", NULL};
    char *envp[] = {"GREETING=hello there", "PATH=/usr/bin:/bin", NULL};
    char dir[] = "/tmp/weave-proc-XXXXXX", marker[64];
    weave_proc_opts o = {.envp = envp, .cwd = dir, .stdio = {0, WEAVE_PROC_PIPE, 0}};
    weave_proc_output r;
    weave_proc *p;
    char want[128];
    int fd;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    ck_assert_int_ge(fd = open(marker, O_CREAT | O_WRONLY, 0600), 0);
    close(fd);
    ck_assert_ptr_nonnull(p = weave_proc_spawn("sh", argv, &o));
    ck_assert_int_eq(weave_proc_communicate(p, NULL, 0, &r), 0);
    snprintf(want, sizeof(want), "hello there\n%s\nmarker\n", dir);
    ck_assert_str_eq(r.out, want);
    ck_assert_ptr_null(r.err); /* no pipe */
    ck_assert_int_eq(r.status, 0);
    free(r.out);
    ck_assert_int_eq(weave_proc_free(p), 0);
    unlink(marker);
    rmdir(dir);
}

WT_TEST(big_outputs_on_both_pipes_at_once)
{
    /* Each writes more than a pipe holds (64 KiB) while the other waits to
     * be read, alternating: a reader of one pipe at a time would stall. */
    weave_proc *p = shell("for i in 1 2 3 4; do head -c 500000 /dev/zero | tr '\\0' o; "
                          "head -c 500000 /dev/zero | tr '\\0' e >&2; done",
                          WEAVE_PROC_NULL, WEAVE_PROC_PIPE, WEAVE_PROC_PIPE);
    weave_proc_output r;

    ck_assert_int_eq(weave_proc_communicate(p, NULL, 0, &r), 0);
    ck_assert_uint_eq(r.out_len, 2000000);
    ck_assert_uint_eq(r.err_len, 2000000);
    ck_assert_uint_eq(strspn(r.out, "o"), 2000000);
    ck_assert_uint_eq(strspn(r.err, "e"), 2000000);
    ck_assert_int_eq(r.status, 0);
    free(r.out);
    free(r.err);
    WT_FAILS(weave_proc_fd(p, 1), EBADF); /* read to its end and closed */
    ck_assert_int_eq(weave_proc_free(p), 0);
}

WT_TEST(input_and_output_together)
{
    size_t n = 3u << 20;
    char *in = malloc(n);
    weave_proc *p = shell("cat; echo done >&2", WEAVE_PROC_PIPE, WEAVE_PROC_PIPE, WEAVE_PROC_PIPE);
    weave_proc_output r;

    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    ck_assert_int_eq(weave_proc_communicate(p, in, n, &r), 0);
    ck_assert_uint_eq(r.out_len, n);
    ck_assert_int_eq(memcmp(r.out, in, n), 0);
    ck_assert_str_eq(r.err, "done\n");
    free(r.out);
    free(r.err);
    free(in);
    ck_assert_int_eq(weave_proc_free(p), 0);
}

WT_TEST(a_child_that_closes_stdin_early)
{
    size_t n = 1u << 20;
    char *in = calloc(1, n);
    weave_proc *p = shell("head -c 10", WEAVE_PROC_PIPE, WEAVE_PROC_PIPE, WEAVE_PROC_NULL);
    weave_proc_output r;
    int status;

    ck_assert_ptr_nonnull(in);
    memset(in, 'x', n);
    ck_assert_int_eq(weave_proc_communicate(p, in, n, &r), 0); /* EPIPE is no error */
    ck_assert_uint_eq(r.out_len, 10);
    ck_assert_str_eq(r.out, "xxxxxxxxxx");
    ck_assert_int_eq(r.status, 0);
    free(r.out);
    ck_assert_int_eq(weave_proc_free(p), 0);

    /* Writing by hand: EPIPE once the child is gone, and no SIGPIPE. */
    p = shell("exec 0<&-; exit 0", WEAVE_PROC_PIPE, 0, 0);
    ck_assert_int_eq(weave_proc_wait(p, &status), 0);
    WT_FAILS(weave_write(weave_proc_fd(p, 0), in, 100), EPIPE);
    ck_assert_int_eq(weave_proc_free(p), 0);
    free(in);
}

WT_TEST(communicate_is_cancellable)
{
    weave_proc *p = shell("sleep 30", WEAVE_PROC_NULL, WEAVE_PROC_PIPE, WEAVE_PROC_PIPE);
    weave_proc_output r;
    weave_deadline d;
    int status;

    weave_deadline_begin(&d, 50);
    WT_FAILS(weave_proc_communicate(p, NULL, 0, &r), ETIMEDOUT);
    weave_deadline_end(&d);
    ck_assert(exists(weave_proc_pid(p)) && !zombie(weave_proc_pid(p)));
    ck_assert_int_eq(weave_proc_kill(p, SIGTERM), 0);
    ck_assert_int_eq(weave_proc_wait(p, &status), 0);
    ck_assert_int_eq(WTERMSIG(status), SIGTERM);
    ck_assert_int_eq(weave_proc_free(p), 0);
    WT_ASSERT_IDLE();
}

WT_TEST(dev_null_reads_nothing)
{
    weave_proc *p = shell("cat; echo $?", WEAVE_PROC_NULL, WEAVE_PROC_PIPE, WEAVE_PROC_NULL);
    weave_proc_output r;

    ck_assert_int_eq(weave_proc_communicate(p, NULL, 0, &r), 0);
    ck_assert_str_eq(r.out, "0\n");
    free(r.out);
    ck_assert_int_eq(weave_proc_free(p), 0);
}

/* ---- misuse ----------------------------------------------------------------- */

WT_TEST(bad_arguments)
{
    char *argv[] = {"x", NULL}, *none[] = {NULL};
    weave_proc_opts bad = {.stdio = {0, 3, 0}}, flags = {.flags = 0x80};
    weave_proc_opts res = {.reserved = {1}}, nodir = {.cwd = "/nonexistent/dir"};
    weave_proc_opts filedir = {.cwd = "/etc/passwd"};
    weave_proc_output r;
    weave_proc *p;

    WT_FAILS_NULL(weave_proc_spawn(NULL, argv, NULL), EINVAL);
    WT_FAILS_NULL(weave_proc_spawn("true", NULL, NULL), EINVAL);
    WT_FAILS_NULL(weave_proc_spawn("true", none, NULL), EINVAL);
    WT_FAILS_NULL(weave_proc_spawn("true", argv, &bad), EINVAL);
    WT_FAILS_NULL(weave_proc_spawn("true", argv, &flags), EINVAL);
    WT_FAILS_NULL(weave_proc_spawn("true", argv, &res), EINVAL);
    WT_FAILS_NULL(weave_proc_spawn("no-such-program-here", argv, NULL), ENOENT);
    WT_FAILS_NULL(weave_proc_spawn("/no/such/program", argv, NULL), ENOENT);
    WT_FAILS_NULL(weave_proc_spawn("/etc/passwd", argv, NULL), EACCES); /* not executable */
    WT_FAILS_NULL(weave_proc_spawn("/etc", argv, NULL), EACCES);        /* a directory */
    WT_FAILS_NULL(weave_proc_spawn("/etc/passwd/x", argv, NULL), ENOTDIR);
    WT_FAILS_NULL(weave_proc_spawn("true", argv, &nodir), ENOENT);
    WT_FAILS_NULL(weave_proc_spawn("true", argv, &filedir), ENOTDIR);

    ck_assert_ptr_nonnull(p = weave_proc_spawn("true", argv, NULL));
    WT_FAILS(weave_proc_fd(p, 3), EINVAL);
    WT_FAILS(weave_proc_fd(p, -1), EINVAL);
    WT_FAILS(weave_proc_fd(p, 1), EBADF);
    WT_FAILS_NULL(weave_proc_stream(p, 1), EBADF);
    WT_FAILS(weave_proc_close(p, 5), EINVAL);
    WT_FAILS(weave_proc_kill(p, -1), EINVAL);
    WT_FAILS(weave_proc_kill(p, 100000), EINVAL);
    WT_FAILS(weave_proc_wait_timeout(p, NULL, -2), EINVAL);
    WT_FAILS(weave_proc_communicate(p, "x", 1, &r), EINVAL); /* no stdin pipe */
    WT_FAILS(weave_proc_communicate(p, NULL, 0, NULL), EINVAL);
    ck_assert_int_eq(weave_proc_wait(p, NULL), 0);
    ck_assert_int_eq(weave_proc_free(p), 0);

    WT_FAILS(weave_proc_pid(NULL), EINVAL);
    WT_FAILS(weave_proc_wait(NULL, NULL), EINVAL);
    WT_FAILS(weave_proc_kill(NULL, 0), EINVAL);
    WT_FAILS(weave_proc_free(NULL), EINVAL);
    WT_FAILS(weave_proc_close(NULL, 0), EINVAL);
    WT_FAILS(weave_proc_fd(NULL, 0), EINVAL);
    WT_ASSERT_IDLE();
}

START_TEST(outside_a_task)
{
    char *argv[] = {"true", NULL};

    WT_FAILS_NULL(weave_proc_spawn("true", argv, NULL), EPERM);
}
END_TEST

/* A program that is executable but no program at all. */
WT_TEST(not_a_program)
{
    char path[] = "/tmp/weave-noexec-XXXXXX";
    char *argv[] = {path, NULL};
    int fd = mkstemp(path);
    weave_proc *p;
    int status = 0;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd,
                           "\x7f"
                           "ELF garbage",
                           12),
                     12);
    ck_assert_int_eq(fchmod(fd, 0700), 0);
    close(fd);
    errno = 0;
    p = weave_proc_spawn(path, argv, NULL);
    if (p) {
        /* Under valgrind the exec fails in a forked child: exit 127. */
        ck_assert_int_eq(weave_proc_wait(p, &status), 0);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 127);
        ck_assert_int_eq(weave_proc_free(p), 0);
    } else {
        ck_assert_int_eq(errno, ENOEXEC);
    }
    unlink(path);
}

static Suite *proc_suite(void)
{
    Suite *s = suite_create("proc");
    TCase *life = tcase_create("life"), *pipes = tcase_create("pipes");
    TCase *mis = tcase_create("misuse");

    /* Children of an emulated process are the emulator's business
     * (qemu-user cannot clone with CLONE_VFORK): native runs only. */
    wt_tag_native(life);
    wt_tag_native(pipes);
    wt_tag_native(mis);
    tcase_set_timeout(life, 15);
    tcase_add_test(life, exit_codes);
    tcase_add_test(life, killed_by_a_signal);
    tcase_add_test(life, a_new_group_is_killed_whole);
    tcase_add_test(life, every_waiter_gets_the_status);
    tcase_add_test(life, timeouts_and_scopes_leave_it_running);
    tcase_add_test(life, cancelling_a_wait_leaves_it_running);
    tcase_add_test(life, a_freed_handle_is_reaped_when_its_child_ends);
    tcase_add_test(life, the_run_ends_with_children_running);
    tcase_add_test(life, a_thousand_children_leave_nothing);
    tcase_add_test(life, sigchld_stays_the_programs);
    suite_add_tcase(s, life);

    tcase_set_timeout(pipes, 15);
    tcase_add_test(pipes, streams_both_ways);
    tcase_add_test(pipes, environment_and_directory);
    tcase_add_test(pipes, big_outputs_on_both_pipes_at_once);
    tcase_add_test(pipes, input_and_output_together);
    tcase_add_test(pipes, a_child_that_closes_stdin_early);
    tcase_add_test(pipes, communicate_is_cancellable);
    tcase_add_test(pipes, dev_null_reads_nothing);
    suite_add_tcase(s, pipes);

    tcase_set_timeout(mis, 15);
    tcase_add_test(mis, bad_arguments);
    tcase_add_test(mis, outside_a_task);
    tcase_add_test(mis, not_a_program);
    suite_add_tcase(s, mis);
    return s;
}

int main(void)
{
    return wt_main(proc_suite());
}
