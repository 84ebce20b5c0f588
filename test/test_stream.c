/*
 * test_stream.c - buffered streams (weave_stream_*): lines, records, exact
 * reads, peeking and skipping; buffered writes, flush and close; timeouts,
 * deadline scopes and cancellation, which must never lose a byte; bad
 * arguments; and a server loop that bounds the time to read a request
 * head however slowly its bytes come.
 *
 * Streams run over pipes and socketpairs made inside the test. A "feeder"
 * task writes scripted pieces with pauses between them, so a reader sees
 * data arrive in parts.
 *
 * Check timeouts: "read" 10 s x 12, "file" 10 s x 1, "write" 10 s x 5,
 * "interrupt" 10 s x 7, "args" 10 s x 2 = 270 s; the CTest timeout in CMakeLists.txt (330 s)
 * is above their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weave_test.h"

/* Bytes moved by the large transfers. */
#define BIG ((size_t)(WT_ON_VALGRIND ? 256 : 2048) * 1024)

/* ---- helpers ------------------------------------------------------------ */

/* A task that writes pieces to fd, pausing pause_ms before each, then
 * closes fd if asked. */
struct feeder {
    int fd;
    const char *pieces[8]; /* NULL-terminated */
    int64_t pause_ms;
    int close_after;
};

static void *feeder_task(void *arg)
{
    struct feeder *f = arg;

    for (int i = 0; f->pieces[i]; i++) {
        size_t len = strlen(f->pieces[i]);

        if (f->pause_ms > 0)
            ck_assert_int_eq(weave_sleep(f->pause_ms), 0);
        ck_assert_int_eq(weave_write(f->fd, f->pieces[i], len), (ssize_t)len);
    }
    if (f->close_after)
        ck_assert_int_eq(weave_close(f->fd), 0);
    return NULL;
}

/* Write text to fd (with no pause) and close it: a finished input. */
static void put_and_close(int fd, const char *text)
{
    size_t len = strlen(text);

    ck_assert_int_eq(weave_write(fd, text, len), (ssize_t)len);
    ck_assert_int_eq(weave_close(fd), 0);
}

static weave_stream *stream_with(int fd, size_t read_size, size_t line_max)
{
    weave_stream_opts o = {.read_size = read_size, .line_max = line_max};
    weave_stream *s = weave_stream_new(fd, &o);

    ck_assert_msg(s != NULL, "weave_stream_new: errno %d", errno);
    return s;
}

static weave_stream *stream_of(int fd)
{
    weave_stream *s = weave_stream_new(fd, NULL);

    ck_assert_msg(s != NULL, "weave_stream_new: errno %d", errno);
    return s;
}

/* Read a line and assert what came. */
static void expect_line(weave_stream *s, const char *want)
{
    char buf[256];
    ssize_t n = weave_stream_read_line(s, buf, sizeof(buf));

    ck_assert_msg(n == (ssize_t)strlen(want), "read_line gave %zd (errno %d), expected %zu", n,
                  errno, strlen(want));
    ck_assert_str_eq(buf, want);
}

static unsigned char pattern_at(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

/* ---- reading ------------------------------------------------------------ */

WT_TEST(lines_lf_and_crlf)
{
    int p[2];
    weave_stream *s;
    char buf[8];

    wt_make_pipe(p, O_NONBLOCK);
    put_and_close(p[1], "one\ntwo\r\n\n\r\nlast");
    s = stream_of(p[0]);
    expect_line(s, "one\n");
    expect_line(s, "two\r\n"); /* CRLF is kept whole */
    expect_line(s, "\n");
    expect_line(s, "\r\n");
    expect_line(s, "last"); /* the last line, cut by end of file */
    ck_assert_int_eq(weave_stream_read_line(s, buf, sizeof(buf)), 0);
    ck_assert_int_eq(weave_stream_read_line(s, buf, sizeof(buf)), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
    WT_ASSERT_IDLE();
}

/* Lines that come a byte at a time over a socketpair are put together. */
WT_TEST(lines_trickled)
{
    int sv[2];
    struct feeder f = {0, {"G", "E", "T", " /", "\r", "\n", "x\n", NULL}, 1, 1};
    weave_task *t;
    weave_stream *s;

    wt_make_socketpair(sv, SOCK_STREAM);
    f.fd = sv[1];
    t = WT_SPAWN(feeder_task, &f);
    s = stream_of(sv[0]);
    expect_line(s, "GET /\r\n");
    expect_line(s, "x\n");
    WT_JOIN(t);
    ck_assert_int_eq(weave_stream_close(s), 0);
    WT_ASSERT_IDLE();
}

/* A line longer than the limit fails with EMSGSIZE and loses nothing:
 * a larger buffer, or plain reads, still get every byte. */
WT_TEST(line_too_long)
{
    int p[2];
    weave_stream *s;
    char small[6], big[64];

    wt_make_pipe(p, O_NONBLOCK);
    put_and_close(p[1], "0123456789\nabcdefghijklmnopqrstuvwxyz\nend\n");
    s = stream_with(p[0], 32, 16);

    /* cap limits: 11 bytes do not fit in 5 + NUL; a larger buf takes them. */
    WT_FAILS(weave_stream_read_line(s, small, sizeof(small)), EMSGSIZE);
    WT_FAILS(weave_stream_read_line(s, small, sizeof(small)), EMSGSIZE);
    expect_line(s, "0123456789\n");

    /* line_max (16) limits, whatever the buffer: the bytes stay. */
    WT_FAILS(weave_stream_read_line(s, big, sizeof(big)), EMSGSIZE);
    ck_assert_uint_ge(weave_stream_buffered(s), 16);
    ck_assert_int_eq(weave_stream_read_exact(s, big, 11), 11);
    ck_assert_int_eq(memcmp(big, "abcdefghijk", 11), 0);
    expect_line(s, "lmnopqrstuvwxyz\n");
    expect_line(s, "end\n");
    ck_assert_int_eq(weave_stream_read_line(s, big, sizeof(big)), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
}

/* A line of exactly the limit is accepted; one byte more is not. */
WT_TEST(line_limit_edge)
{
    int p[2];
    weave_stream *s;
    char buf[64];

    wt_make_pipe(p, O_NONBLOCK);
    put_and_close(p[1], "abcdefghijklmno\nABCDEFGHIJKLMNOP\n");
    s = stream_with(p[0], 16, 0); /* line_max = read_size = 16 */
    expect_line(s, "abcdefghijklmno\n");
    WT_FAILS(weave_stream_read_line(s, buf, sizeof(buf)), EMSGSIZE);
    ck_assert_int_eq(weave_stream_skip(s, 17), 17);
    ck_assert_int_eq(weave_stream_read_line(s, buf, sizeof(buf)), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
}

/* read_exact: in pieces, across the buffer's size, and short at EOF. */
WT_TEST(read_exact)
{
    int p[2];
    struct feeder f = {0, {"abc", "defg", "hij", "klmnopqrstuvwxyz", NULL}, 2, 1};
    weave_task *t;
    weave_stream *s;
    char buf[32];

    wt_make_pipe(p, O_NONBLOCK);
    f.fd = p[1];
    t = WT_SPAWN(feeder_task, &f);
    s = stream_with(p[0], 16, 0);
    ck_assert_int_eq(weave_stream_read_exact(s, buf, 5), 5);
    ck_assert_int_eq(memcmp(buf, "abcde", 5), 0);
    /* 17 > the buffer's 16: read straight into buf. */
    ck_assert_int_eq(weave_stream_read_exact(s, buf, 17), 17);
    ck_assert_int_eq(memcmp(buf, "fghijklmnopqrstuv", 17), 0);
    /* 4 left, 8 asked: the 4 come, then end of file. */
    memset(buf, 0, sizeof(buf));
    ck_assert_int_eq(weave_stream_read_exact(s, buf, 8), 4);
    ck_assert_str_eq(buf, "wxyz");
    ck_assert_int_eq(weave_stream_read_exact(s, buf, 8), 0);
    WT_JOIN(t);
    ck_assert_int_eq(weave_stream_close(s), 0);
}

/* read_until with a delimiter of several bytes, split across arrivals. */
WT_TEST(read_until)
{
    int sv[2];
    struct feeder f = {0, {"GET / HTTP/1.1\r\nHost: a\r", "\n\r", "\nrest", NULL}, 2, 1};
    weave_task *t;
    weave_stream *s;
    char buf[64];
    ssize_t n;

    wt_make_socketpair(sv, SOCK_STREAM);
    f.fd = sv[1];
    t = WT_SPAWN(feeder_task, &f);
    s = stream_of(sv[0]);
    n = weave_stream_read_until(s, "\r\n\r\n", 4, buf, sizeof(buf));
    ck_assert_int_eq(n, 27);
    ck_assert_int_eq(memcmp(buf, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27), 0);
    /* No delimiter before end of file: the rest, then 0. */
    n = weave_stream_read_until(s, "\r\n\r\n", 4, buf, sizeof(buf));
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(memcmp(buf, "rest", 4), 0);
    ck_assert_int_eq(weave_stream_read_until(s, "\r\n\r\n", 4, buf, sizeof(buf)), 0);
    WT_JOIN(t);
    ck_assert_int_eq(weave_stream_close(s), 0);
}

/* peek waits for n bytes without consuming; peek_until + skip read a
 * record in place. */
WT_TEST(peek_and_skip)
{
    int p[2];
    struct feeder f = {0, {"ab", "cd", "ef;gh", NULL}, 2, 1};
    weave_task *t;
    weave_stream *s;
    const void *data;
    char buf[8];

    wt_make_pipe(p, O_NONBLOCK);
    f.fd = p[1];
    t = WT_SPAWN(feeder_task, &f);
    s = stream_with(p[0], 16, 0);
    ck_assert_int_eq(weave_stream_peek(s, 0, &data), 0); /* nothing yet, no wait */
    ck_assert_int_ge(weave_stream_peek(s, 3, &data), 3);
    ck_assert_int_eq(memcmp(data, "abc", 3), 0);
    ck_assert_int_ge(weave_stream_peek(s, 1, &data), 3); /* still there */
    ck_assert_int_eq(weave_stream_read_exact(s, buf, 2), 2);
    ck_assert_int_eq(weave_stream_peek_until(s, ";", 1, &data), 5);
    ck_assert_int_eq(memcmp(data, "cdef;", 5), 0);
    ck_assert_int_eq(weave_stream_skip(s, 5), 5);
    ck_assert_int_eq(weave_stream_peek(s, 4, &data), 2); /* short: end of file */
    ck_assert_int_eq(memcmp(data, "gh", 2), 0);
    ck_assert_int_eq(weave_stream_read(s, buf, sizeof(buf)), 2);
    ck_assert_int_eq(weave_stream_peek(s, 1, &data), 0);
    ck_assert_ptr_nonnull(data);
    WT_JOIN(t);
    ck_assert_int_eq(weave_stream_close(s), 0);
}

/* weave_stream_read returns what is there (at least a byte) and 0 at end
 * of file; a large request with nothing buffered reads straight in. */
WT_TEST(read_some)
{
    int p[2];
    weave_stream *s;
    char buf[64];

    wt_make_pipe(p, O_NONBLOCK);
    ck_assert_int_eq(write(p[1], "hello world", 11), 11);
    s = stream_with(p[0], 16, 0);
    ck_assert_int_eq(weave_stream_read(s, buf, 5), 5);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    ck_assert_int_eq(weave_stream_read(s, buf, sizeof(buf)), 6); /* the buffered rest */
    ck_assert_int_eq(memcmp(buf, " world", 6), 0);
    ck_assert_int_eq(write(p[1], "0123456789abcdefghij", 20), 20);
    ck_assert_int_eq(weave_stream_read(s, buf, sizeof(buf)), 20); /* direct */
    ck_assert_uint_eq(weave_stream_buffered(s), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    ck_assert_int_eq(weave_stream_read(s, buf, sizeof(buf)), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
}

/* A regular file is not pollable: a read with nothing buffered goes
 * straight to the file, never waits for an event, and its end of file
 * comes back as 0 every time it is asked. */
WT_TEST(regular_file)
{
    static const char text[] = "one\ntwo\nthree";
    int fd = memfd_create("wt-stream", MFD_CLOEXEC);
    weave_stream *s;
    char buf[16];

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    s = stream_with(fd, 16, 0);
    expect_line(s, "one\n");
    expect_line(s, "two\n");
    expect_line(s, "three");
    ck_assert_int_eq(weave_stream_read_line(s, buf, sizeof(buf)), 0);
    ck_assert_int_eq(weave_stream_read(s, buf, sizeof(buf)), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
}

/* A task that writes BIG bytes of the pattern to fd, then closes it. */
static void *big_writer(void *arg)
{
    int fd = (int)wt_int(arg);
    unsigned char *data = malloc(BIG);

    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = pattern_at(i);
    ck_assert_int_eq(weave_write(fd, data, BIG), (ssize_t)BIG);
    free(data);
    ck_assert_int_eq(weave_close(fd), 0);
    return NULL;
}

/* skip discards across many fills; reads after it carry on at the right
 * byte, and a skip past the end stops short at end of file. */
WT_TEST(skip_many)
{
    int sv[2];
    weave_task *t;
    weave_stream *s;
    unsigned char buf[16];

    wt_make_socketpair(sv, SOCK_STREAM);
    t = WT_SPAWN(big_writer, wt_ptr(sv[1]));
    s = stream_with(sv[0], 1024, 0);
    ck_assert_int_eq(weave_stream_skip(s, 3), 3);
    ck_assert_int_eq(weave_stream_read_exact(s, buf, 1), 1);
    ck_assert_int_eq(buf[0], pattern_at(3));
    ck_assert_int_eq(weave_stream_skip(s, (int64_t)BIG / 2), (int64_t)BIG / 2);
    ck_assert_int_eq(weave_stream_read_exact(s, buf, 1), 1);
    ck_assert_int_eq(buf[0], pattern_at(4 + BIG / 2));
    ck_assert_int_eq(weave_stream_skip(s, INT64_MAX), (int64_t)(BIG - 5 - BIG / 2));
    ck_assert_int_eq(weave_stream_skip(s, 1), 0);
    WT_JOIN(t);
    ck_assert_int_eq(weave_stream_close(s), 0);
    WT_ASSERT_IDLE();
}

/* ---- writing ------------------------------------------------------------ */

/* Writes stay buffered until flush; close flushes before it closes. */
WT_TEST(write_flush_close)
{
    int p[2];
    weave_stream *s;
    char buf[64];

    wt_make_pipe(p, O_NONBLOCK);
    s = stream_of(p[1]);
    ck_assert_int_eq(weave_stream_write(s, "ab", 2), 2);
    ck_assert_int_eq(weave_stream_printf(s, "%d-%s", 42, "x"), 4);
    errno = 0;
    ck_assert_int_eq(read(p[0], buf, sizeof(buf)), -1); /* nothing written yet */
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(weave_stream_flush(s), 0);
    ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 6);
    ck_assert_int_eq(memcmp(buf, "ab42-x", 6), 0);
    ck_assert_int_eq(weave_stream_flush(s), 0); /* nothing to do */
    ck_assert_int_eq(weave_stream_write(s, "tail", 4), 4);
    ck_assert_int_eq(weave_stream_close(s), 0);
    ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 4);
    ck_assert_int_eq(memcmp(buf, "tail", 4), 0);
    ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 0); /* the write end is closed */
    close(p[0]);
}

/* weave_stream_free flushes and leaves the fd open. */
WT_TEST(free_keeps_fd)
{
    int p[2];
    weave_stream *s;
    char buf[8];

    wt_make_pipe(p, O_NONBLOCK);
    s = stream_of(p[1]);
    ck_assert_int_eq(weave_stream_write(s, "xyz", 3), 3);
    ck_assert_int_eq(weave_stream_free(s), 0);
    ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 3);
    ck_assert_int_ne(fcntl(p[1], F_GETFD), -1);
    ck_assert_int_eq(weave_close(p[0]), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
}

/* A task that reads everything from fd and checks it against the pattern
 * after a prefix; returns the bytes read. */
struct sink {
    int fd;
    const char *prefix;
};

static void *sink_task(void *arg)
{
    struct sink *k = arg;
    size_t plen = strlen(k->prefix), total = 0;
    unsigned char buf[8192];
    ssize_t n;

    while ((n = weave_read(k->fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++, total++) {
            unsigned char want =
                total < plen ? (unsigned char)k->prefix[total] : pattern_at(total - plen);
            if (buf[i] != want)
                ck_abort_msg("byte %zu is 0x%02x, expected 0x%02x", total, buf[i], want);
        }
    }
    ck_assert_int_eq(n, 0);
    return wt_ptr((intptr_t)total);
}

/* A write larger than the buffer flushes what is buffered first, then goes
 * straight to the fd: order is kept. Then a large printf. */
WT_TEST(big_write)
{
    int sv[2];
    struct sink k = {0, "head:"};
    weave_task *t;
    weave_stream *s;
    unsigned char *data = malloc(BIG);

    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = pattern_at(i);
    wt_make_socketpair(sv, SOCK_STREAM);
    k.fd = sv[1];
    t = WT_SPAWN(sink_task, &k);
    s = stream_with(sv[0], 0, 0);
    ck_assert_int_eq(weave_stream_write(s, "head:", 5), 5);
    ck_assert_int_eq(weave_stream_write(s, data, 10), 10);
    ck_assert_int_eq(weave_stream_write(s, data + 10, BIG - 10), (ssize_t)(BIG - 10));
    ck_assert_int_eq(weave_stream_close(s), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t)), (intptr_t)(BIG + 5));
    ck_assert_int_eq(weave_close(sv[1]), 0);
    free(data);
    WT_ASSERT_IDLE();
}

/* printf results that fit, that fit only after a flush, and that are
 * larger than the whole buffer. */
WT_TEST(printf_sizes)
{
    int p[2];
    weave_stream_opts o = {.write_size = 16};
    weave_stream *s;
    weave_stream *r;
    char line[128];

    wt_make_pipe(p, O_NONBLOCK);
    s = weave_stream_new(p[1], &o);
    ck_assert_ptr_nonnull(s);
    r = stream_of(p[0]);
    ck_assert_int_eq(weave_stream_printf(s, "%s", "0123456789"), 10);
    ck_assert_int_eq(weave_stream_printf(s, "%s\n", "abcdefghij"), 11); /* flushes first */
    ck_assert_int_eq(weave_stream_printf(s, "%040d\n", 7), 41);         /* larger than 16 */
    ck_assert_int_eq(weave_stream_printf(s, "%s", ""), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
    expect_line(r, "0123456789abcdefghij\n");
    ck_assert_int_eq(weave_stream_read_line(r, line, sizeof(line)), 41);
    ck_assert_int_eq(line[39], '7');
    ck_assert_int_eq(weave_stream_read_line(r, line, sizeof(line)), 0);
    ck_assert_int_eq(weave_stream_close(r), 0);
}

/* A line protocol both ways over one socketpair: a stream per side. */
static void *echo_peer(void *arg)
{
    weave_stream *s = stream_of((int)wt_int(arg));
    char line[64];
    ssize_t n;

    while ((n = weave_stream_read_line(s, line, sizeof(line))) > 0) {
        ck_assert_int_eq(weave_stream_printf(s, "echo %s", line), n + 5);
        if (weave_stream_buffered(s) == 0)
            ck_assert_int_eq(weave_stream_flush(s), 0);
    }
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
    return NULL;
}

WT_TEST(line_protocol)
{
    int sv[2];
    weave_task *t;
    weave_stream *s;

    wt_make_socketpair(sv, SOCK_STREAM);
    t = WT_SPAWN(echo_peer, wt_ptr(sv[1]));
    s = stream_of(sv[0]);
    for (int i = 0; i < 100; i++) {
        char want[32];

        ck_assert_int_eq(weave_stream_printf(s, "line %d\n", i),
                         (int)strlen("line \n") + (i < 10 ? 1 : 2));
        ck_assert_int_eq(weave_stream_flush(s), 0);
        snprintf(want, sizeof(want), "echo line %d\n", i);
        expect_line(s, want);
    }
    ck_assert_int_eq(shutdown(sv[0], SHUT_WR), 0);
    WT_JOIN(t);
    ck_assert_int_eq(weave_stream_close(s), 0);
    WT_ASSERT_IDLE();
}

/* ---- timeouts, deadlines, cancellation ------------------------------------ */

/* Half a line, a timeout, the other half: the second read gets the whole
 * line (the stream's own timeout). */
WT_TEST(timeout_keeps_partial_line)
{
    int sv[2];
    weave_stream *s;
    char buf[32];
    int64_t t0;

    wt_make_socketpair(sv, SOCK_STREAM);
    s = stream_of(sv[0]);
    ck_assert_int_eq(weave_write(sv[1], "hel", 3), 3);
    ck_assert_int_eq(weave_stream_set_timeout(s, 50), 0);
    t0 = wt_now_ns();
    WT_FAILS(weave_stream_read_line(s, buf, sizeof(buf)), ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), 50);
    ck_assert_uint_eq(weave_stream_buffered(s), 3);
    WT_FAILS(weave_stream_read_line(s, buf, sizeof(buf)), ETIMEDOUT); /* again: still kept */
    ck_assert_uint_eq(weave_stream_buffered(s), 3);
    ck_assert_int_eq(weave_write(sv[1], "lo\n", 3), 3);
    expect_line(s, "hello\n");
    ck_assert_int_eq(weave_close(sv[1]), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
    WT_ASSERT_IDLE();
}

/* The same under a deadline scope, for read_exact; and a scope of 0 fails
 * a call that would have to read, while buffered bytes are still had. */
WT_TEST(deadline_scope_keeps_partial)
{
    int p[2];
    weave_stream *s;
    weave_deadline d;
    char buf[16];
    int64_t t0;

    wt_make_pipe(p, O_NONBLOCK);
    s = stream_of(p[0]);
    ck_assert_int_eq(weave_write(p[1], "1234", 4), 4);
    t0 = wt_now_ns();
    weave_deadline_begin(&d, 50);
    WT_FAILS(weave_stream_read_exact(s, buf, 8), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_int_ge(wt_ms_since(t0), 50);
    ck_assert_uint_eq(weave_stream_buffered(s), 4);

    weave_deadline_begin(&d, 0);
    ck_assert_int_eq(weave_stream_read_exact(s, buf, 2), 2); /* buffered: no wait */
    WT_FAILS(weave_stream_read_exact(s, buf, 4), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);

    ck_assert_int_eq(weave_write(p[1], "5678", 4), 4);
    ck_assert_int_eq(weave_stream_read_exact(s, buf, 6), 6);
    ck_assert_int_eq(memcmp(buf, "345678", 6), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
}

/* A reader cancelled in the middle of a line: ECANCELED, and the stream
 * (handed to another task) still has the first half. */
struct half_reader {
    weave_stream *s;
    int err;
};

static void *half_reader_task(void *arg)
{
    struct half_reader *h = arg;
    char buf[32];

    errno = 0;
    ck_assert_int_eq(weave_stream_read_line(h->s, buf, sizeof(buf)), -1);
    h->err = errno;
    return NULL;
}

WT_TEST(cancel_keeps_partial)
{
    int sv[2];
    struct half_reader h = {NULL, 0};
    weave_task *t;

    wt_make_socketpair(sv, SOCK_STREAM);
    h.s = stream_of(sv[0]);
    t = WT_SPAWN(half_reader_task, &h);
    ck_assert_int_eq(weave_write(sv[1], "ha", 2), 2);
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(h.err, ECANCELED);
    ck_assert_uint_eq(weave_stream_buffered(h.s), 2);
    ck_assert_int_eq(weave_write(sv[1], "lf\n", 3), 3);
    expect_line(h.s, "half\n");
    ck_assert_int_eq(weave_close(sv[1]), 0);
    ck_assert_int_eq(weave_stream_close(h.s), 0);
    WT_ASSERT_IDLE();
}

/* A cancelled task's stream calls fail with ECANCELED at once, and close
 * still closes the fd and frees (valgrind and ASan check the freeing). */
WT_TEST(cancelled_close)
{
    int p[2];
    weave_stream *s;
    char buf[8];

    wt_make_pipe(p, O_NONBLOCK);
    s = stream_of(p[1]);
    ck_assert_int_eq(weave_stream_write(s, "x", 1), 1);
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    WT_FAILS(weave_stream_flush(s), ECANCELED);
    WT_FAILS(weave_stream_close(s), ECANCELED); /* the output is lost */
    errno = 0;
    ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 0); /* closed, nothing came */
    close(p[0]);
}

/* A flush that times out keeps its bytes; the next one writes them. */
static void *drain_task(void *arg)
{
    int fd = (int)wt_int(arg);
    char buf[4096], last[3] = {0};
    size_t total = 0;
    ssize_t n;

    while ((n = weave_read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            last[0] = last[1];
            last[1] = last[2];
            last[2] = buf[i];
        }
        total += (size_t)n;
    }
    ck_assert_int_eq(memcmp(last, "abc", 3), 0);
    return wt_ptr((intptr_t)total);
}

WT_TEST(flush_timeout_keeps_output)
{
    int sv[2];
    size_t filled;
    weave_task *t;
    weave_stream *s;

    wt_make_socketpair(sv, SOCK_STREAM);
    filled = wt_fill(sv[0]);
    s = stream_of(sv[0]);
    ck_assert_int_eq(weave_stream_set_timeout(s, 50), 0);
    ck_assert_int_eq(weave_stream_write(s, "abc", 3), 3);
    WT_FAILS(weave_stream_flush(s), ETIMEDOUT);
    ck_assert_int_eq(weave_stream_set_timeout(s, -1), 0);
    t = WT_SPAWN(drain_task, wt_ptr(sv[1]));
    ck_assert_int_eq(weave_stream_close(s), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(t)), (intptr_t)(filled + 3));
    ck_assert_int_eq(weave_close(sv[1]), 0);
    WT_ASSERT_IDLE();
}

/*
 * Slowloris: a server that reads a request head (lines up to an empty one)
 * inside one deadline scope is not held by a client that sends a byte
 * every few milliseconds, though every byte comes well within any per-read
 * timeout.
 */
struct slow_client {
    int fd;
    int stop;
};

static void *slow_client_task(void *arg)
{
    struct slow_client *c = arg;
    const char *head = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    for (size_t i = 0; !c->stop; i++) {
        if (weave_write(c->fd, &head[i % strlen(head)], 1) != 1)
            break;
        if (weave_sleep(10) != 0)
            break;
    }
    return NULL;
}

/* Read one head within head_ms. Returns the lines read, or -1 (errno). */
static int read_head(weave_stream *s, int64_t head_ms)
{
    weave_deadline d;
    char line[256];
    int lines = 0;
    ssize_t n;

    weave_deadline_begin(&d, head_ms);
    while ((n = weave_stream_read_line(s, line, sizeof(line))) > 0 && strcmp(line, "\r\n") != 0)
        lines++;
    (void)weave_deadline_end(&d);
    return n < 0 ? -1 : lines;
}

WT_TEST(slowloris_head_bound)
{
    int sv[2];
    struct slow_client c = {0, 0};
    weave_task *t;
    weave_stream *s;
    int64_t t0;

    wt_make_socketpair(sv, SOCK_STREAM);
    c.fd = sv[1];
    t = WT_SPAWN(slow_client_task, &c);
    s = stream_of(sv[0]);
    ck_assert_int_eq(weave_stream_set_timeout(s, 1000), 0); /* per call: never reached */
    t0 = wt_now_ns();
    WT_FAILS(read_head(s, 300), ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), 300);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS + 300);
    c.stop = 1;
    WT_JOIN(t);
    ck_assert_int_eq(weave_close(sv[1]), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
    WT_ASSERT_IDLE();
}

/* ---- arguments ---------------------------------------------------------- */

WT_TEST(bad_arguments)
{
    int p[2];
    weave_stream *s;
    weave_stream_opts o;
    const void *data;
    char buf[8];

    WT_FAILS_NULL(weave_stream_new(-1, NULL), EBADF);
    wt_make_pipe(p, O_NONBLOCK);
    o = (weave_stream_opts){.read_size = WEAVE_STREAM_BUF_MIN - 1};
    WT_FAILS_NULL(weave_stream_new(p[0], &o), EINVAL);
    o = (weave_stream_opts){.write_size = WEAVE_STREAM_BUF_MAX + 1};
    WT_FAILS_NULL(weave_stream_new(p[0], &o), EINVAL);
    o = (weave_stream_opts){.read_size = 64, .line_max = 65};
    WT_FAILS_NULL(weave_stream_new(p[0], &o), EINVAL);
    o = (weave_stream_opts){.flags = 1u << 7};
    WT_FAILS_NULL(weave_stream_new(p[0], &o), EINVAL);
    o = (weave_stream_opts){0};
    o.reserved[3] = 1; /* room for a later version: must be zero */
    WT_FAILS_NULL(weave_stream_new(p[0], &o), EINVAL);

    /* NULL streams */
    WT_FAILS(weave_stream_close(NULL), EINVAL);
    WT_FAILS(weave_stream_free(NULL), EINVAL);
    WT_FAILS(weave_stream_fd(NULL), EINVAL);
    WT_FAILS(weave_stream_set_timeout(NULL, 1), EINVAL);
    ck_assert_uint_eq(weave_stream_buffered(NULL), 0);
    WT_FAILS(weave_stream_read(NULL, buf, 1), EINVAL);
    WT_FAILS(weave_stream_read_exact(NULL, buf, 1), EINVAL);
    WT_FAILS(weave_stream_read_line(NULL, buf, sizeof(buf)), EINVAL);
    WT_FAILS(weave_stream_read_until(NULL, ";", 1, buf, sizeof(buf)), EINVAL);
    WT_FAILS(weave_stream_peek(NULL, 1, &data), EINVAL);
    WT_FAILS(weave_stream_peek_until(NULL, ";", 1, &data), EINVAL);
    WT_FAILS(weave_stream_skip(NULL, 1), EINVAL);
    WT_FAILS(weave_stream_write(NULL, "x", 1), EINVAL);
    WT_FAILS(weave_stream_printf(NULL, "x"), EINVAL);
    WT_FAILS(weave_stream_flush(NULL), EINVAL);

    /* NULL buffers and zero sizes */
    o = (weave_stream_opts){.read_size = 32};
    s = weave_stream_new(p[0], &o);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weave_stream_fd(s), p[0]);
    WT_FAILS(weave_stream_set_timeout(s, -2), EINVAL);
    WT_FAILS(weave_stream_read(s, NULL, 1), EINVAL);
    WT_FAILS(weave_stream_read(s, buf, 0), EINVAL);
    WT_FAILS(weave_stream_read_exact(s, NULL, 1), EINVAL);
    WT_FAILS(weave_stream_read_exact(s, buf, 0), EINVAL);
    WT_FAILS(weave_stream_read_line(s, NULL, 8), EINVAL);
    WT_FAILS(weave_stream_read_line(s, buf, 1), EINVAL);
    WT_FAILS(weave_stream_read_line(s, buf, 0), EINVAL);
    WT_FAILS(weave_stream_read_until(s, NULL, 1, buf, sizeof(buf)), EINVAL);
    WT_FAILS(weave_stream_read_until(s, ";", 0, buf, sizeof(buf)), EINVAL);
    WT_FAILS(weave_stream_read_until(s, ";", 1, NULL, sizeof(buf)), EINVAL);
    WT_FAILS(weave_stream_read_until(s, ";", 1, buf, 0), EINVAL);
    WT_FAILS(weave_stream_read_until(s, buf, 33, buf, sizeof(buf)), EINVAL); /* > line_max */
    WT_FAILS(weave_stream_peek(s, 1, NULL), EINVAL);
    WT_FAILS(weave_stream_peek(s, 33, &data), EINVAL); /* > the buffer */
    WT_FAILS(weave_stream_peek_until(s, NULL, 1, &data), EINVAL);
    WT_FAILS(weave_stream_peek_until(s, ";", 0, &data), EINVAL);
    WT_FAILS(weave_stream_peek_until(s, ";", 1, NULL), EINVAL);
    WT_FAILS(weave_stream_skip(s, -1), EINVAL);
    ck_assert_int_eq(weave_stream_skip(s, 0), 0);
    WT_FAILS(weave_stream_write(s, NULL, 1), EINVAL);
    ck_assert_int_eq(weave_stream_write(s, NULL, 0), 0);
    WT_FAILS(weave_stream_printf(s, NULL), EINVAL);
    ck_assert_int_eq(weave_stream_close(s), 0);
    ck_assert_int_eq(weave_close(p[1]), 0);
}

/* Outside a task, every call that reads or writes is EPERM; making,
 * closing and freeing a stream with nothing to flush work. */
START_TEST(outside_a_task)
{
    int p[2];
    weave_stream *s;
    const void *data;
    char buf[8];

    wt_make_pipe(p, O_NONBLOCK);
    s = stream_of(p[0]);
    WT_FAILS(weave_stream_read(s, buf, 1), EPERM);
    WT_FAILS(weave_stream_read_exact(s, buf, 1), EPERM);
    WT_FAILS(weave_stream_read_line(s, buf, sizeof(buf)), EPERM);
    WT_FAILS(weave_stream_read_until(s, ";", 1, buf, sizeof(buf)), EPERM);
    WT_FAILS(weave_stream_peek(s, 1, &data), EPERM);
    WT_FAILS(weave_stream_peek_until(s, ";", 1, &data), EPERM);
    WT_FAILS(weave_stream_skip(s, 1), EPERM);
    WT_FAILS(weave_stream_write(s, "x", 1), EPERM);
    WT_FAILS(weave_stream_printf(s, "x"), EPERM);
    WT_FAILS(weave_stream_flush(s), EPERM);
    ck_assert_int_eq(weave_stream_free(s), 0);
    s = stream_of(p[0]);
    ck_assert_int_eq(weave_stream_close(s), 0);
    ck_assert_int_eq(fcntl(p[0], F_GETFD), -1);
    close(p[1]);
}
END_TEST

/* Keeping the buffers changes nothing a caller sees. */
WT_TEST(keep_buffers)
{
    int p[2];
    weave_stream_opts o = {.read_size = 16, .write_size = 16, .flags = WEAVE_STREAM_KEEP_BUFFERS};
    weave_stream *r, *w;
    char buf[64];

    wt_make_pipe(p, O_NONBLOCK);
    r = weave_stream_new(p[0], &o);
    w = weave_stream_new(p[1], &o);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_nonnull(w);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(weave_stream_printf(w, "row %02d\n", i), 7);
        ck_assert_int_eq(weave_stream_flush(w), 0);
        snprintf(buf, sizeof(buf), "row %02d\n", i);
        expect_line(r, buf);
    }
    ck_assert_int_eq(weave_stream_close(w), 0);
    ck_assert_int_eq(weave_stream_read_line(r, buf, sizeof(buf)), 0);
    ck_assert_int_eq(weave_stream_close(r), 0);
}

/* The buffers come from the scheduler's cache: the read buffer a stream
 * gave back once its bytes were consumed is the one its next read takes,
 * even when a malloc of the same size came in between (without the cache,
 * that malloc would have been given the freed block). The bytes a reused
 * buffer holds are only the new ones. */
WT_TEST(buffers_reused)
{
    int p[2];
    weave_stream *s;
    const void *first, *again;
    void *between;

    wt_make_pipe(p, O_NONBLOCK);
    s = stream_of(p[0]);
    ck_assert_int_eq(weave_write(p[1], "ab", 2), 2);
    ck_assert_int_eq(weave_stream_peek(s, 2, &first), 2);
    ck_assert_int_eq(weave_stream_skip(s, 2), 2); /* empty: the buffer goes back */
    ck_assert_uint_eq(weave_stream_buffered(s), 0);
    between = malloc(WEAVE_STREAM_BUF_DEFAULT);
    ck_assert_ptr_nonnull(between);
    memset(between, 'z', WEAVE_STREAM_BUF_DEFAULT);
    ck_assert_int_eq(weave_write(p[1], "c", 1), 1);
    ck_assert_int_eq(weave_stream_peek(s, 1, &again), 1);
    ck_assert_ptr_eq(again, first);
    ck_assert_int_eq(memcmp(again, "c", 1), 0);
    free(between);
    ck_assert_int_eq(weave_close(p[1]), 0);
    ck_assert_int_eq(weave_stream_skip(s, 1), 1);
    ck_assert_int_eq(weave_stream_peek(s, 1, &again), 0);
    ck_assert_int_eq(weave_stream_close(s), 0);
}

/* A stream's own timeout of 0: what is buffered is still had, and a call
 * that would have to read fails at once, though input is waiting in the
 * fd. */
WT_TEST(timeout_zero_serves_buffer)
{
    int sv[2];
    weave_stream *s;
    const void *data;
    char line[16];

    wt_make_socketpair(sv, SOCK_STREAM);
    s = stream_of(sv[0]);
    ck_assert_int_eq(weave_write(sv[1], "ab\ncd", 5), 5);
    ck_assert_int_eq(weave_stream_set_timeout(s, 0), 0);
    WT_FAILS(weave_stream_peek(s, 1, &data), ETIMEDOUT);
    ck_assert_int_eq(weave_stream_set_timeout(s, -1), 0);
    expect_line(s, "ab\n");
    ck_assert_int_eq(weave_stream_set_timeout(s, 0), 0);
    ck_assert_int_eq(weave_stream_peek(s, 2, &data), 2); /* buffered: no wait */
    ck_assert_int_eq(memcmp(data, "cd", 2), 0);
    WT_FAILS(weave_stream_read_line(s, line, sizeof(line)), ETIMEDOUT);
    ck_assert_uint_eq(weave_stream_buffered(s), 2);
    ck_assert_int_eq(weave_stream_write(s, "x", 1), 1); /* buffered: no write yet */
    WT_FAILS(weave_stream_flush(s), ETIMEDOUT);
    ck_assert_int_eq(weave_stream_set_timeout(s, -1), 0);
    ck_assert_int_eq(weave_write(sv[1], "\n", 1), 1);
    expect_line(s, "cd\n");
    ck_assert_int_eq(weave_stream_close(s), 0); /* flushes the x */
    ck_assert_int_eq(weave_read(sv[1], line, sizeof(line)), 1);
    ck_assert_int_eq(line[0], 'x');
    ck_assert_int_eq(weave_close(sv[1]), 0);
    WT_ASSERT_IDLE();
}

/* A stream that still holds input when its weave_run ends can be freed
 * afterwards, outside any scheduler: its buffer, taken from the ended
 * scheduler's cache, is an ordinary allocation (ASan and valgrind check). */
static void *fill_stream(void *arg)
{
    weave_stream *s = arg;
    const void *data;

    ck_assert_int_eq(weave_stream_peek(s, 3, &data), 3);
    ck_assert_int_eq(weave_stream_printf(s, "%s", "unflushed"), 9);
    return NULL;
}

START_TEST(stream_outlives_run)
{
    int p[2];
    weave_stream *s;

    wt_make_pipe(p, O_NONBLOCK);
    ck_assert_int_eq(write(p[1], "abc", 3), 3);
    s = stream_of(p[0]);
    WT_RUN(fill_stream, s);
    ck_assert_uint_eq(weave_stream_buffered(s), 3);
    WT_FAILS(weave_stream_free(s), EPERM); /* the output needs a task to flush */
    close(p[0]);
    close(p[1]);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *rd = tcase_create("read");
    TCase *wr = tcase_create("write");
    TCase *in = tcase_create("interrupt");
    TCase *args = tcase_create("args");
    TCase *file = tcase_create("file");

    tcase_add_test(rd, lines_lf_and_crlf);
    tcase_add_test(rd, lines_trickled);
    tcase_add_test(rd, line_too_long);
    tcase_add_test(rd, line_limit_edge);
    tcase_add_test(rd, read_exact);
    tcase_add_test(rd, read_until);
    tcase_add_test(rd, peek_and_skip);
    tcase_add_test(rd, read_some);
    tcase_add_test(rd, skip_many);
    tcase_add_test(rd, keep_buffers);
    tcase_add_test(rd, buffers_reused);
    tcase_add_test(rd, stream_outlives_run);
    tcase_set_timeout(rd, 10);
    suite_add_tcase(s, rd);

    tcase_add_test(wr, write_flush_close);
    tcase_add_test(wr, free_keeps_fd);
    tcase_add_test(wr, big_write);
    tcase_add_test(wr, printf_sizes);
    tcase_add_test(wr, line_protocol);
    tcase_set_timeout(wr, 10);
    suite_add_tcase(s, wr);

    tcase_add_test(in, timeout_keeps_partial_line);
    tcase_add_test(in, deadline_scope_keeps_partial);
    tcase_add_test(in, cancel_keeps_partial);
    tcase_add_test(in, cancelled_close);
    tcase_add_test(in, flush_timeout_keeps_output);
    tcase_add_test(in, slowloris_head_bound);
    tcase_add_test(in, timeout_zero_serves_buffer);
    tcase_set_timeout(in, 10);
    suite_add_tcase(s, in);

    /* A regular file goes to the offload pool's threads, which qemu-user
     * does not run reliably. */
    wt_tag_native(file);
    tcase_add_test(file, regular_file);
    tcase_set_timeout(file, 10);
    suite_add_tcase(s, file);

    tcase_add_test(args, bad_arguments);
    tcase_add_test(args, outside_a_task);
    tcase_set_timeout(args, 10);
    suite_add_tcase(s, args);
    return s;
}

int main(void)
{
    return wt_main(stream_suite());
}
