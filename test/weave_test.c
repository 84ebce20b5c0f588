/*
 * weave_test.c - the helper functions shared by weave's Check suites, built
 * into every suite executable; weave_test.h declares them.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weave_test.h"

#if WT_ASAN
/* A task that overflows its stack under ASan is reported by ASan, which
 * then exits with status 1 unless abort_on_error is set. The tests expect
 * SIGABRT, as without ASan, so make that the default here; ASAN_OPTIONS
 * still overrides it. */
const char *__asan_default_options(void)
{
    return "abort_on_error=1";
}
#endif

/* ---- tasks and the scheduler ---------------------------------------------- */

void *wt_nothing(void *arg)
{
    return arg;
}

weave_stats wt_stats(void)
{
    weave_stats st;

    ck_assert_int_eq(weave_get_stats(&st), 0);
    return st;
}

void wt_assert_idle_offload(void)
{
    WT_ASSERT_IDLE();
    ck_assert_uint_eq(wt_stats().offload_waiters, 0);
    ck_assert_uint_eq(wt_stats().file_ring_waiters, 0);
}

void *wt_ticker_task(void *ticker)
{
    struct wt_ticker *tk = ticker;

    while (!tk->stop) {
        ck_assert_int_eq(weave_sleep(tk->period_ms), 0);
        tk->ticks++;
    }
    return NULL;
}

static volatile size_t no_limit = SIZE_MAX;

/* Recurse until the stack runs out (no_limit keeps the compiler from
 * proving the recursion infinite). */
static size_t overflow(size_t depth)
{
    volatile char frame[512];

    frame[0] = (char)depth;
    if (depth >= no_limit)
        return 0;
    return overflow(depth + 1) + (size_t)frame[0];
}

void *wt_overflow_task(void *arg)
{
    (void)arg;
    return wt_ptr((intptr_t)overflow(0));
}

/* ---- fds ------------------------------------------------------------------ */

int wt_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

int wt_is_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    ck_assert_int_ge(fl, 0);
    return (fl & O_NONBLOCK) != 0;
}

void wt_make_pipe(int p[2], int flags)
{
    ck_assert_int_eq(pipe2(p, flags | O_CLOEXEC), 0);
}

void wt_make_socketpair(int sv[2], int type)
{
    ck_assert_int_eq(socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

size_t wt_fill(int fd)
{
    static char buf[65536];
    size_t total = 0;
    ssize_t n;

    memset(buf, 'f', sizeof(buf));
    while ((n = write(fd, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    ck_assert_int_eq((int)n, -1);
    ck_assert_int_eq(errno, EAGAIN);
    return total;
}

size_t wt_drain(int fd)
{
    static char buf[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    return total;
}

/* ---- socket addresses ----------------------------------------------------- */

struct sockaddr_storage wt_local_addr(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss;
}

unsigned wt_port_of_addr(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    ck_assert_int_eq(ss->ss_family, AF_INET6);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

unsigned wt_port_of(int fd)
{
    struct sockaddr_storage ss = wt_local_addr(fd);

    return wt_port_of_addr(&ss);
}

struct wt_port_str wt_port_str(int fd)
{
    struct wt_port_str p;

    snprintf(p.s, sizeof(p.s), "%u", wt_port_of(fd));
    return p;
}

/* ---- scratch directories -------------------------------------------------- */

/* This test's scratch directory, and the TCase's base directory it is in. */
static char tmpdir[256];
static char tmpbase[200];

void wt_tmpbase_make(const char *name)
{
    const char *base = getenv("TMPDIR");

    snprintf(tmpbase, sizeof(tmpbase), "%s/%s-XXXXXX", base && *base ? base : "/tmp", name);
    if (!mkdtemp(tmpbase))
        tmpbase[0] = '\0'; /* wt_tmp_make fails then */
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void wt_tmpbase_remove(void)
{
    if (tmpbase[0])
        nftw(tmpbase, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void wt_tmp_make(void)
{
    ck_assert_msg(tmpbase[0] != '\0', "no scratch directory");
    snprintf(tmpdir, sizeof(tmpdir), "%s/t-XXXXXX", tmpbase);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

const char *wt_tmp_dir(void)
{
    return tmpdir;
}

void wt_tmp_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", tmpdir, name);

    ck_assert(n > 0 && (size_t)n < cap);
}

void wt_tmp_cleanup(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[768];

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        wt_tmp_path(path, sizeof(path), e->d_name);
        ck_assert_int_eq(unlink(path), 0);
    }
    closedir(d);
    ck_assert_int_eq(rmdir(tmpdir), 0);
}

/* ---- the offload gate ----------------------------------------------------- */

void wt_gate_init(struct wt_gate *g)
{
    ck_assert_int_eq(pipe2(g->p, O_CLOEXEC), 0);
}

void wt_gate_open(struct wt_gate *g, int calls)
{
    for (int i = 0; i < calls; i++)
        ck_assert_int_eq((int)write(g->p[1], "x", 1), 1);
}

void wt_gate_destroy(struct wt_gate *g)
{
    close(g->p[0]);
    close(g->p[1]);
}

void wt_gate_pass(struct wt_gate *g)
{
    char c;

    ck_assert_int_eq((int)read(g->p[0], &c, 1), 1);
}

void *wt_gate_fn(void *gate)
{
    wt_gate_pass(gate);
    return NULL;
}

void *wt_gate_task(void *gate)
{
    ck_assert_int_eq(weave_offload(wt_gate_fn, gate, NULL), 0);
    return NULL;
}
