/*
 * test_uring.c - regular-file I/O through the scheduler's io_uring, and
 * its fallback, the offload pool: which path a scheduler takes, fsync,
 * calls stopped mid-flight (no byte of the buffer moves after the call has
 * returned), more calls than ring entries, no fd left behind, and what
 * weave_tasks shows of a task parked on the ring.
 *
 * CTest runs this suite twice: as uring, and as uring_pool with
 * WEAVE_NO_IO_URING=1 in the environment, where every test holds on the
 * pool (expect_ring() says which one this run should see).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "weave_test.h"

/* Bytes of the large file the cancellation tests read and write. */
#define BIG ((size_t)(WT_ON_VALGRIND ? 1 : 32) << 20)

/* More calls at once than the ring has entries (256). */
#define MANY 300

static void tmpbase_make(void)
{
    wt_tmpbase_make("weave-uring");
}

static int open_tmp(const char *name, int flags)
{
    char path[512];
    int fd;

    wt_tmp_path(path, sizeof(path), name);
    fd = open(path, flags | O_CREAT | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* Whether this run should see the ring: a build with liburing, a kernel
 * that lets this process set up a ring, no WEAVE_NO_IO_URING, no valgrind. */
static bool expect_ring(void)
{
    const char *env = getenv("WEAVE_NO_IO_URING");
    struct io_uring_params p;
    int fd;

    if (!WEAVE_TEST_IO_URING || WT_ON_VALGRIND || (env && *env && strcmp(env, "0") != 0))
        return false;
    memset(&p, 0, sizeof(p));
    fd = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (fd < 0)
        return false;
    close(fd);
    return (p.features & IORING_FEAT_RW_CUR_POS) != 0;
}

static weave_file_io_path expected_path(void)
{
    return expect_ring() ? WEAVE_FILE_IO_URING : WEAVE_FILE_IO_POOL;
}

/* Write n bytes of c with plain write(2), sync them and drop them from the
 * page cache, then rewind. */
static void fill_uncached(int fd, size_t n, unsigned char c)
{
    size_t chunk = (size_t)1 << 20, off = 0;
    unsigned char *b = malloc(chunk);

    ck_assert_ptr_nonnull(b);
    memset(b, c, chunk);
    while (off < n) {
        ssize_t k = write(fd, b, n - off < chunk ? n - off : chunk);
        ck_assert_int_gt(k, 0);
        off += (size_t)k;
    }
    free(b);
    ck_assert_int_eq(fdatasync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
}

/* The index of the first byte of b[0..n) that is not c, or n. */
static size_t first_not(const unsigned char *b, size_t n, unsigned char c)
{
    size_t i = 0;

    while (i < n && b[i] == c)
        i++;
    return i;
}

/* ---- which path --------------------------------------------------------------- */

WT_TEST(stats_name_the_path)
{
    int fd;

    /* Nothing is decided, and no ring made, before a file call needs it. */
    ck_assert_int_eq(wt_stats().file_io_path, WEAVE_FILE_IO_UNDECIDED);
    wt_tmp_make();
    fd = open_tmp("f", O_RDWR | O_TRUNC);
    ck_assert_int_eq(weave_write(fd, "hello", 5), 5);
    /* fsync cannot be answered from the page cache: it always decides. */
    ck_assert_int_eq(weave_fsync(fd), 0);
    ck_assert_int_eq(wt_stats().file_io_path, expected_path());
    if (expect_ring()) {
        ck_assert_uint_ge(wt_stats().file_ring_ops, 1);
        ck_assert_uint_eq(wt_stats().offload_threads, 0);
    } else {
        ck_assert_uint_eq(wt_stats().file_ring_ops, 0);
        ck_assert_uint_ge(wt_stats().offload_threads, 1);
    }
    ck_assert_int_eq(weave_close(fd), 0);
    wt_tmp_cleanup();
    wt_assert_idle_offload();
}

/* The run flag forces the pool from the start, whatever the kernel offers. */
WT_TEST_WITH(run_flag_forces_pool, .flags = WEAVE_NO_IO_URING)
{
    char buf[8];
    int fd;

    ck_assert_int_eq(wt_stats().file_io_path, WEAVE_FILE_IO_POOL);
    wt_tmp_make();
    fd = open_tmp("f", O_RDWR | O_TRUNC);
    fill_uncached(fd, 4096, 'a');
    ck_assert_int_eq(weave_write(fd, "xyz", 3), 3);
    ck_assert_int_eq(weave_fdatasync(fd), 0);
    ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(weave_read(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    ck_assert_int_eq(memcmp(buf, "xyzaaaaa", 8), 0);
    ck_assert_int_eq(wt_stats().file_io_path, WEAVE_FILE_IO_POOL);
    ck_assert_uint_eq(wt_stats().file_ring_ops, 0);
    ck_assert_uint_ge(wt_stats().offload_threads, 1);
    ck_assert_int_eq(weave_close(fd), 0);
    wt_tmp_cleanup();
    wt_assert_idle_offload();
}

/* ---- fsync and fdatasync ------------------------------------------------------ */

WT_TEST(fsync_and_fdatasync)
{
    int fd, p[2];

    wt_tmp_make();
    fd = open_tmp("f", O_RDWR | O_TRUNC);
    ck_assert_int_eq(weave_write(fd, "data", 4), 4);
    ck_assert_int_eq(weave_fsync(fd), 0);
    ck_assert_int_eq(weave_fdatasync(fd), 0);
    /* A directory can be synced too. */
    {
        int dir = open(wt_tmp_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        ck_assert_int_ge(dir, 0);
        ck_assert_int_eq(weave_fsync(dir), 0);
        ck_assert_int_eq(weave_close(dir), 0);
    }
    /* A pipe cannot be synced: fsync's own EINVAL. */
    wt_make_pipe(p, 0);
    WT_FAILS(weave_fsync(p[1]), EINVAL);
    WT_FAILS(weave_fdatasync(p[0]), EINVAL);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    ck_assert_int_eq(weave_close(fd), 0);
    WT_FAILS(weave_fsync(fd), EBADF);
    WT_FAILS(weave_fsync(-1), EBADF);
    wt_tmp_cleanup();
    wt_assert_idle_offload();
}

START_TEST(fsync_outside_a_task_eperm)
{
    WT_FAILS(weave_fsync(0), EPERM);
    WT_FAILS(weave_fdatasync(0), EPERM);
}
END_TEST

/* ---- calls stopped while the kernel works on them --------------------------- */

struct big_call {
    int fd;
    unsigned char *buf;
    size_t len;
    bool write;
    int64_t deadline_ms; /* -1: none; else a deadline scope around the call */
    ssize_t ret;
    int err;
};

static void *big_call_task(void *arg)
{
    struct big_call *c = arg;
    weave_deadline d;

    if (c->deadline_ms >= 0)
        weave_deadline_begin(&d, c->deadline_ms);
    c->ret = c->write ? weave_write(c->fd, c->buf, c->len) : weave_read(c->fd, c->buf, c->len);
    c->err = c->ret < 0 ? errno : 0;
    if (c->deadline_ms >= 0)
        (void)weave_deadline_end(&d);
    return NULL;
}

/* A large read of a cold file, stopped at once (cancelled, or by a
 * deadline): once the call has returned, no byte of the buffer changes.
 * The buffer holds a guard pattern the file does not have. */
static void read_stopped(bool by_deadline)
{
    struct big_call c;
    unsigned char *snap;
    weave_task *t;
    size_t moved;

    wt_tmp_make();
    c = (struct big_call){.fd = open_tmp("cold", O_RDWR | O_TRUNC),
                          .buf = malloc(BIG),
                          .len = BIG,
                          .deadline_ms = by_deadline ? 1 : -1};
    snap = malloc(BIG);
    ck_assert_ptr_nonnull(c.buf);
    ck_assert_ptr_nonnull(snap);
    fill_uncached(c.fd, BIG, 'F');
    memset(c.buf, 0xA5, BIG);
    t = WT_SPAWN(big_call_task, &c);
    ck_assert_int_eq(weave_yield(), 0); /* it starts the read and parks */
    if (!by_deadline)
        ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    if (c.ret < 0) {
        ck_assert_int_eq(c.err, by_deadline ? ETIMEDOUT : ECANCELED);
        moved = 0;
    } else {
        /* It completed before the cancel reached it: its result stands. */
        moved = (size_t)c.ret;
        ck_assert_uint_le(moved, BIG);
        ck_assert_uint_eq(first_not(c.buf, moved, 'F'), moved);
    }
    /* Nothing past what the call reports was written. */
    ck_assert_uint_eq(first_not(c.buf + moved, BIG - moved, 0xA5), BIG - moved);
    if (getenv("WEAVE_TEST_VERBOSE"))
        fprintf(stderr, "read_stopped(%d): ret %zd err %d\n", by_deadline, c.ret, c.err);
    memcpy(snap, c.buf, BIG);
    /* Nothing writes into the buffer once the call has returned. */
    ck_assert_int_eq(weave_sleep(WT_ON_VALGRIND ? 200 : 100), 0);
    ck_assert_int_eq(memcmp(snap, c.buf, BIG), 0);
    ck_assert_uint_eq(wt_stats().file_ring_waiters, 0);
    ck_assert_int_eq(weave_close(c.fd), 0);
    wt_tmp_cleanup();
    free(snap);
    free(c.buf);
    wt_assert_idle_offload();
}

WT_TEST(cancel_mid_read_no_write_after_return)
{
    read_stopped(false);
}

WT_TEST(deadline_mid_read_no_write_after_return)
{
    read_stopped(true);
}

/* A large write, cancelled at once: once it has returned, the file no
 * longer changes (on the ring), and the buffer, overwritten then, never
 * reaches it (on either path). */
WT_TEST(cancel_mid_write_file_stable_after_return)
{
    struct big_call c;
    struct stat before, after;
    unsigned char *back;
    weave_task *t;

    wt_tmp_make();
    c = (struct big_call){.fd = open_tmp("w", O_RDWR | O_TRUNC),
                          .buf = malloc(BIG),
                          .len = BIG,
                          .write = true,
                          .deadline_ms = -1};
    ck_assert_ptr_nonnull(c.buf);
    memset(c.buf, 'W', BIG);
    t = WT_SPAWN(big_call_task, &c);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    if (c.ret < 0)
        ck_assert_int_eq(c.err, ECANCELED);
    else
        ck_assert_uint_le((size_t)c.ret, BIG);
    if (getenv("WEAVE_TEST_VERBOSE"))
        fprintf(stderr, "write cancelled: ret %zd err %d\n", c.ret, c.err);
    ck_assert_int_eq(fstat(c.fd, &before), 0);
    if (c.ret >= 0)
        ck_assert_int_eq(before.st_size, (off_t)c.ret);
    memset(c.buf, 0x5A, BIG);
    ck_assert_int_eq(weave_sleep(WT_ON_VALGRIND ? 200 : 100), 0);
    ck_assert_int_eq(fstat(c.fd, &after), 0);
    /* The ring returns once the kernel is done; a worker of the pool may
     * still finish a write handed to it, from its own copy (weave.h). */
    if (expect_ring())
        ck_assert_int_eq(after.st_size, before.st_size);
    back = malloc((size_t)after.st_size + 1);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(pread(c.fd, back, (size_t)after.st_size, 0), (ssize_t)after.st_size);
    ck_assert_uint_eq(first_not(back, (size_t)after.st_size, 'W'), (size_t)after.st_size);
    ck_assert_uint_eq(wt_stats().file_ring_waiters, 0);
    ck_assert_int_eq(weave_close(c.fd), 0);
    wt_tmp_cleanup();
    free(back);
    free(c.buf);
    wt_assert_idle_offload();
}

/* weave_close of the fd while a read is in the ring: the reader gets its
 * result or EBADF, and only once the kernel is done with its buffer. */
WT_TEST(close_mid_read)
{
    struct big_call c;
    weave_task *t;

    wt_tmp_make();
    c = (struct big_call){.fd = open_tmp("cold", O_RDWR | O_TRUNC),
                          .buf = malloc(BIG),
                          .len = BIG,
                          .deadline_ms = -1};
    ck_assert_ptr_nonnull(c.buf);
    fill_uncached(c.fd, BIG, 'F');
    t = WT_SPAWN(big_call_task, &c);
    ck_assert_int_eq(weave_yield(), 0);
    ck_assert_int_eq(weave_close(c.fd), 0);
    WT_JOIN(t);
    if (c.ret < 0)
        ck_assert_int_eq(c.err, EBADF);
    else
        ck_assert_uint_le((size_t)c.ret, BIG);
    wt_tmp_cleanup();
    free(c.buf);
    wt_assert_idle_offload();
}

/* No fd is left behind by the ring (its own fd and eventfd) or by calls
 * stopped in it, once weave_run has returned. */
static void *m_ring_and_cancel(void *arg)
{
    (void)arg;
    read_stopped(false);
    return NULL;
}

START_TEST(no_fd_leaked)
{
    int fds = wt_fd_count();

    WT_RUN(m_ring_and_cancel, NULL);
    ck_assert_int_eq(wt_fd_count(), fds);
}
END_TEST

/* ---- more calls than entries ------------------------------------------------ */

struct appender {
    int fd;
    weave_event *go;
    ssize_t ret;
};

static void *append_task(void *arg)
{
    struct appender *a = arg;
    char line[100];

    memset(line, 'L', sizeof(line));
    line[sizeof(line) - 1] = '\n';
    ck_assert_int_eq(weave_event_wait(a->go), 0);
    a->ret = weave_write(a->fd, line, sizeof(line));
    return NULL;
}

/* n tasks, each with its own fd of one O_DSYNC log file, append at the
 * same moment: each write takes a journal commit and the kernel runs them
 * one after the other, so with more tasks than ring entries (entries: the
 * ring's size, set through WEAVE_IO_URING_ENTRIES before the scheduler's
 * first file call, or 0 for the default of 256) calls wait for an entry.
 * weave_tasks shows who waits for what, and every call completes. */
static void appenders(int n, int entries)
{
    static struct appender a[MANY];
    static weave_task *t[MANY];
    static weave_task_info info[MANY + 8];
    weave_event go = WEAVE_EVENT_INIT;
    int writing = 0, full = 0, depth = entries ? entries : 256;
    char path[512];
    struct stat sb;
    ssize_t k;

    if (entries) {
        char v[16];

        (void)snprintf(v, sizeof(v), "%d", entries);
        ck_assert_int_eq(setenv("WEAVE_IO_URING_ENTRIES", v, 1), 0);
    }
    wt_tmp_make();
    for (int i = 0; i < n; i++) {
        a[i] = (struct appender){.fd = open_tmp("log", O_WRONLY | O_APPEND | O_DSYNC), .go = &go};
        t[i] = WT_SPAWN(append_task, &a[i]);
    }
    ck_assert_int_eq(weave_yield(), 0); /* all wait at the gate */
    ck_assert_int_eq(weave_event_set(&go), 0);
    ck_assert_int_eq(weave_yield(), 0); /* all have called weave_write */
    k = weave_tasks(info, MANY + 8);
    ck_assert_int_ge(k, 1);
    for (ssize_t i = 0; i < k && i < MANY + 8; i++) {
        if (info[i].wait != WEAVE_WAIT_IO_URING)
            continue;
        ck_assert_ptr_nonnull(info[i].wait_op);
        if (strcmp(info[i].wait_op, "write") == 0)
            writing++;
        else if (strcmp(info[i].wait_op, "ring-full") == 0)
            full++;
        else
            ck_abort_msg("unexpected op %s", info[i].wait_op);
    }
    if (expect_ring()) {
        ck_assert_int_le(writing, depth);
        /* A small ring fills whatever the timing: a journal commit takes
         * far longer than a round of these tasks. The default one may
         * not, on a slow (sanitizer) build. */
        if (entries && n > depth) {
            ck_assert_int_ge(writing, 1);
            ck_assert_int_ge(full, 1);
            ck_assert_uint_ge(wt_stats().file_ring_full, 1);
        }
    } else {
        ck_assert_int_eq(writing + full, 0);
    }
    for (int i = 0; i < n; i++) {
        WT_JOIN(t[i]);
        ck_assert_int_eq(a[i].ret, 100);
        ck_assert_int_eq(weave_close(a[i].fd), 0);
    }
    wt_tmp_path(path, sizeof(path), "log");
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_size, (off_t)n * 100);
    if (expect_ring())
        ck_assert_uint_ge(wt_stats().file_ring_ops, (uint64_t)n);
    wt_tmp_cleanup();
    wt_assert_idle_offload();
}

WT_TEST(more_calls_than_entries_all_complete)
{
    appenders(WT_ON_VALGRIND ? 20 : MANY, 0);
}

WT_TEST(small_ring_full_waiters_queue_and_complete)
{
    appenders(WT_ON_VALGRIND ? 20 : 64, 4);
}

/* What a task parked in the ring shows: kind io_uring, its operation, and
 * the dump names it. */
WT_TEST(tasks_show_the_ring_and_op)
{
    struct big_call c;
    weave_task_info info[4];
    weave_task *t;
    ssize_t k;

    wt_tmp_make();
    c = (struct big_call){.fd = open_tmp("cold", O_RDWR | O_TRUNC),
                          .buf = malloc(BIG),
                          .len = BIG,
                          .deadline_ms = -1};
    ck_assert_ptr_nonnull(c.buf);
    fill_uncached(c.fd, BIG, 'F');
    t = WT_SPAWN(big_call_task, &c);
    ck_assert_int_eq(weave_yield(), 0);
    k = weave_tasks(info, 4);
    ck_assert_int_eq(k, 2);
    if (expect_ring() && info[1].state == WEAVE_TASK_PARKED) {
        ck_assert_int_eq(info[1].wait, WEAVE_WAIT_IO_URING);
        ck_assert_str_eq(info[1].wait_op, "read");
    } else if (info[1].state == WEAVE_TASK_PARKED) {
        ck_assert_int_eq(info[1].wait, WEAVE_WAIT_OFFLOAD);
        ck_assert_ptr_null(info[1].wait_op);
    }
    ck_assert_ptr_null(info[0].wait_op);
    WT_JOIN(t);
    ck_assert_int_gt(c.ret, 0); /* completed: nobody stopped it */
    ck_assert_int_eq(weave_close(c.fd), 0);
    wt_tmp_cleanup();
    free(c.buf);
    wt_assert_idle_offload();
}

static Suite *uring_suite(void)
{
    Suite *s = suite_create("uring");
    TCase *tc = tcase_create("uring");

    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, tmpbase_make, wt_tmpbase_remove);
    tcase_add_test(tc, stats_name_the_path);
    tcase_add_test(tc, run_flag_forces_pool);
    tcase_add_test(tc, fsync_and_fdatasync);
    tcase_add_test(tc, fsync_outside_a_task_eperm);
    tcase_add_test(tc, cancel_mid_read_no_write_after_return);
    tcase_add_test(tc, deadline_mid_read_no_write_after_return);
    tcase_add_test(tc, cancel_mid_write_file_stable_after_return);
    tcase_add_test(tc, close_mid_read);
    tcase_add_test(tc, no_fd_leaked);
    tcase_add_test(tc, more_calls_than_entries_all_complete);
    tcase_add_test(tc, small_ring_full_waiters_queue_and_complete);
    tcase_add_test(tc, tasks_show_the_ring_and_op);
    wt_tag_native(tc); /* io_uring and the offload pool: neither under qemu-user */
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wt_main(uring_suite());
}
