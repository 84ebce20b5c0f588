/*
 * stream.c - buffered streams over an fd: lines, records, exact reads and
 * peeking on the read side; gathered writes and printf on the write side.
 *
 * Built on the public I/O calls alone (weave_read, weave_write,
 * weave_wait_fd, weave_close) and deadline scopes, so cancellation,
 * deadlines and fd turn-taking come from there. The stream's own rules:
 *
 *   - Unread input is rbuf[rpos, rend). A call consumes bytes only once
 *     it has all it wants; an error on the way returns with the bytes
 *     still buffered, so an interrupted call loses nothing.
 *   - Output is wbuf[0, wlen). A flush takes from the front what the fd
 *     accepted and keeps the rest.
 *   - Each buffer is taken on first use and, unless
 *     WEAVE_STREAM_KEEP_BUFFERS, given back at the end of any call that
 *     leaves it empty (settle). Buffers come from and go back to the
 *     scheduler's cache (bufcache.h), so this costs no malloc per message.
 *   - A read with nothing buffered gives its buffer back and takes one only
 *     once input is there (weave__read_lazy): a stream parked for input
 *     holds no buffer, and a stream whose last read emptied the fd parks
 *     at once, with no system call before the input event.
 *   - The stream's timeout is a deadline scope in the frame of the call,
 *     begun only when the call is about to read or write the fd (arm): a
 *     call served from the buffers alone needs none, and reads no clock.
 *
 * Internals return a count or a negative errno; the public functions set
 * errno once, on the way out.
 */
#include "base/common.h"
#include "core/deadline.h"
#include "core/scope.h"
#include "core/sched.h"
#include "core/wait.h"
#include "io/bufcache.h"
#include "io/fd.h"
#include "io/io.h"
#include "io/stream.h"
#include "io/tls.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct weave_stream {
    int fd;             /* the fd read and written */
    unsigned flags;     /* WEAVE_STREAM_KEEP_BUFFERS */
    size_t rsize;       /* read buffer size, bytes */
    size_t wsize;       /* write buffer size, bytes */
    size_t line_max;    /* longest record of the line and until calls, bytes */
    int64_t timeout_ms; /* per-call timeout; -1 none */
    char *rbuf;         /* read buffer [rsize], or NULL while empty */
    size_t rpos;        /* first unread byte */
    size_t rend;        /* end of the unread bytes */
    char *wbuf;         /* write buffer [wsize], or NULL while empty */
    size_t wlen;        /* bytes waiting to be written */
    const void *home;   /* the thread whose tasks use it (weave__claim) */
    struct call *call;  /* the call in progress on it, or NULL */
    weave_tls *tls;     /* the TLS connection over fd, or NULL: plain */
};

/* A call in progress that may read or write the fd, in its frame: the
 * stream's timeout as a deadline scope, once begun (arm). */
struct call {
    weave_deadline d; /* the scope, if on */
    bool on;          /* begun: the call's end ends it */
};

/* What a peek at nothing points to, so *data is never left dangling. */
static const char no_bytes[1];

static ssize_t ret(ssize_t r)
{
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static size_t avail(const weave_stream *s)
{
    return s->rend - s->rpos;
}

static void consume(weave_stream *s, size_t n)
{
    s->rpos += n;
    if (s->rpos == s->rend)
        s->rpos = s->rend = 0;
}

/* Read or write the fd, through TLS where the stream sits on it. As
 * weave_read and weave_write: the count, or -1 with errno. */
static ssize_t read_some(weave_stream *s, void *buf, size_t n)
{
    return s->tls ? weave_tls_read(s->tls, buf, n) : weave_read(s->fd, buf, n);
}

static ssize_t write_all(weave_stream *s, const void *buf, size_t n)
{
    return s->tls ? weave_tls_write(s->tls, buf, n) : weave_write(s->fd, buf, n);
}

/* A buffer of size bytes, from the running scheduler's cache; NULL if out
 * of memory. Only called inside a task. */
static void *take(size_t size)
{
    return weave__buf_take(weave__bufs(weave__tls), size);
}

/* Give buf (of size bytes, or NULL) back to the running scheduler's cache,
 * or free it if none runs here (a stream freed after its weave_run). */
static void drop(void *buf, size_t size)
{
    struct weave__sched *sched = weave__tls;

    if (sched && sched->fds)
        weave__buf_give(weave__bufs(sched), buf, size);
    else
        free(buf);
}

/* Give back the buffers that are empty, unless told to keep them. */
static void settle(weave_stream *s)
{
    if (s->flags & WEAVE_STREAM_KEEP_BUFFERS)
        return;
    if (s->rbuf && avail(s) == 0) {
        drop(s->rbuf, s->rsize);
        s->rbuf = NULL;
    }
    if (s->wbuf && s->wlen == 0) {
        drop(s->wbuf, s->wsize);
        s->wbuf = NULL;
    }
}

/* The start of a call that may read or write: a task of the thread whose
 * tasks use the stream. The timeout waits for arm. */
static int enter(weave_stream *s, struct call *c)
{
    struct weave__sched *sched = weave__tls;
    int r;

    c->on = false;
    if (!sched)
        return -EPERM;
    if ((r = weave__claim(&s->home, sched)) < 0)
        return r;
    s->call = c;
    return 0;
}

/* Before the call's first read or write of the fd: begin the stream's
 * timeout, counted from now. Until then the call has only looked at its
 * buffers, which takes no time that a timeout is meant to bound. */
static void arm(weave_stream *s)
{
    struct call *c = s->call;

    if (c && !c->on && s->timeout_ms >= 0) {
        weave_deadline_begin(&c->d, s->timeout_ms);
        c->on = true;
    }
}

/* The end of such a call: end the scope, settle the buffers, set errno. */
static ssize_t leave(weave_stream *s, struct call *c, ssize_t r)
{
    if (c->on)
        (void)weave_deadline_end(&c->d);
    s->call = NULL;
    settle(s);
    return ret(r);
}

/* fill with nothing buffered, over TLS: wait for the fd before taking a
 * buffer, unless OpenSSL holds bytes already (the fd would not tell). A
 * record that arrives in pieces is waited for with the buffer taken. */
static ssize_t fill_tls(weave_stream *s)
{
    ssize_t n;

    if (!weave__tls_has_pending(s->tls) && weave_wait_fd(s->fd, WEAVE_IN, -1) < 0)
        return -errno;
    if (!(s->rbuf = take(s->rsize)))
        return -ENOMEM;
    if ((n = weave_tls_read(s->tls, s->rbuf, s->rsize)) > 0) {
        s->rend = (size_t)n;
        return n;
    }
    n = n < 0 ? -errno : 0;
    drop(s->rbuf, s->rsize);
    s->rbuf = NULL;
    return n;
}

/* Read once more from the fd into the read buffer, which has room for at
 * least one byte after compaction (the callers ask for more only while
 * fewer than rsize bytes are buffered). Returns the bytes read, 0 at end
 * of file, or -errno. */
static ssize_t fill(weave_stream *s)
{
    ssize_t n;

    arm(s);
    if (avail(s) == 0 && !(s->flags & WEAVE_STREAM_KEEP_BUFFERS)) {
        void *buf;

        /* Nothing buffered: hold no buffer while waiting, and take one
         * only once input is there. */
        drop(s->rbuf, s->rsize);
        s->rbuf = NULL;
        s->rpos = s->rend = 0;
        if (s->tls)
            return fill_tls(s);
        if ((n = weave__read_lazy(s->fd, s->rsize, &buf)) > 0) {
            s->rbuf = buf;
            s->rend = (size_t)n;
        }
        return n;
    }
    if (!s->rbuf) {
        if (!(s->rbuf = take(s->rsize)))
            return -ENOMEM;
        s->rpos = s->rend = 0;
    }
    if (s->rend == s->rsize) {
        memmove(s->rbuf, s->rbuf + s->rpos, avail(s));
        s->rend -= s->rpos;
        s->rpos = 0;
    }
    n = read_some(s, s->rbuf + s->rend, s->rsize - s->rend);
    if (n < 0)
        return -errno;
    s->rend += (size_t)n;
    return n;
}

/* Buffer at least n bytes (n <= rsize). Returns what is buffered: n or
 * more, fewer only at end of file; or -errno. */
static ssize_t want(weave_stream *s, size_t n)
{
    while (avail(s) < n) {
        ssize_t r = fill(s);

        if (r <= 0) {
            if (r < 0)
                return r;
            break;
        }
    }
    return (ssize_t)avail(s);
}

/*
 * Buffer a record ending in delim, of at most limit bytes (limit <=
 * rsize). Returns its length, delimiter included; at end of file without a
 * delimiter, the bytes left (0 if none); -EMSGSIZE when the first limit
 * bytes buffered hold no delimiter; or -errno. Consumes nothing.
 */
static ssize_t until(weave_stream *s, const char *delim, size_t dlen, size_t limit)
{
    size_t scanned = 0; /* bytes known to hold no delimiter's end */

    for (;;) {
        size_t have = avail(s), look = min_size(have, limit);
        ssize_t r;

        if (look >= dlen) {
            size_t from = scanned >= dlen - 1 ? scanned - (dlen - 1) : 0;
            const char *base = s->rbuf + s->rpos;
            const char *hit = dlen == 1 ? memchr(base + from, delim[0], look - from)
                                        : memmem(base + from, look - from, delim, dlen);
            if (hit)
                return hit - base + (ssize_t)dlen;
            scanned = look;
        }
        if (have >= limit)
            return -EMSGSIZE;
        if ((r = fill(s)) < 0)
            return r;
        if (r == 0)
            return (ssize_t)avail(s);
    }
}

/* Write out the write buffer. Returns 0 or -errno, with what was not
 * written still buffered. */
static int flush(weave_stream *s)
{
    if (s->wlen > 0)
        arm(s);
    while (s->wlen > 0) {
        ssize_t n = write_all(s, s->wbuf, s->wlen);

        if (n < 0)
            return -errno;
        /* A short count means an error stopped the write: the next round
         * reports it. */
        memmove(s->wbuf, s->wbuf + n, s->wlen - (size_t)n);
        s->wlen -= (size_t)n;
    }
    return 0;
}

/* Write n bytes of buf straight to the fd, as weave_write. */
static ssize_t write_direct(weave_stream *s, const void *buf, size_t n)
{
    ssize_t w;

    arm(s);
    w = write_all(s, buf, n);
    return w < 0 ? -errno : w;
}

/* Buffer n bytes (flushing first when they do not fit), or write them
 * straight through when they are at least a buffer's worth. */
static ssize_t put(weave_stream *s, const void *buf, size_t n)
{
    int r;

    if (n > s->wsize - s->wlen) {
        if ((r = flush(s)) < 0)
            return r;
        if (n >= s->wsize)
            return write_direct(s, buf, n);
    }
    if (!s->wbuf && !(s->wbuf = take(s->wsize)))
        return -ENOMEM;
    memcpy(s->wbuf + s->wlen, buf, n);
    s->wlen += n;
    return (ssize_t)n;
}

/* ---- making and ending ---------------------------------------------------- */

static int check_size(size_t *size, size_t dflt)
{
    if (*size == 0)
        *size = dflt;
    return *size < WEAVE_STREAM_BUF_MIN || *size > WEAVE_STREAM_BUF_MAX ? -EINVAL : 0;
}

weave_stream *weave_stream_tls(weave_tls *t, const weave_stream_opts *opts)
{
    int fd = t ? weave_tls_fd(t) : -1;
    weave_stream *s;

    if (!t) {
        errno = EINVAL;
        return NULL;
    }
    if (fd < 0 || !(s = weave_stream_new(fd, opts)))
        return NULL; /* errno set: ENOTSUP without TLS, EINVAL, ENOMEM */
    s->tls = t;
    return s;
}

weave_stream *weave_stream_new(int fd, const weave_stream_opts *opts)
{
    weave_stream_opts o = {0};
    weave_stream *s;

    if (opts)
        o = *opts;
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    if (check_size(&o.read_size, WEAVE_STREAM_BUF_DEFAULT) < 0 ||
        check_size(&o.write_size, WEAVE_STREAM_BUF_DEFAULT) < 0 || o.line_max > o.read_size ||
        (o.flags & ~(unsigned)WEAVE_STREAM_KEEP_BUFFERS) ||
        !weave__all_zero(o.reserved, sizeof(o.reserved))) {
        errno = EINVAL;
        return NULL;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        errno = ENOMEM;
        return NULL;
    }
    s->fd = fd;
    s->flags = o.flags;
    s->rsize = o.read_size;
    s->wsize = o.write_size;
    s->line_max = o.line_max ? o.line_max : o.read_size;
    s->timeout_ms = -1;
    return s;
}

/* Flush what is buffered (if anything: with nothing to write, no task is
 * needed) and free s. Returns 0 or -errno of the flush. */
static int release(weave_stream *s)
{
    int r = 0;

    if (s->wlen > 0) {
        struct call c;

        if ((r = enter(s, &c)) == 0) {
            r = flush(s);
            if (c.on)
                (void)weave_deadline_end(&c.d);
            s->call = NULL;
        }
    }
    drop(s->rbuf, s->rsize);
    drop(s->wbuf, s->wsize);
    free(s);
    return r;
}

WEAVE__ENTRY int weave_stream_close(weave_stream *s)
{
    weave_tls *tls;
    int fd, r, c;

    WEAVE__SCOPES_CHECK();
    if (!s)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&s->home)) < 0)
        return weave__ret(r); /* another thread's tasks use it: left alone */
    fd = s->fd;
    tls = s->tls;
    r = release(s);
    if (tls)
        c = weave_tls_close(tls) < 0 ? -errno : 0; /* close_notify, then the fd */
    else
        c = weave_close(fd) < 0 ? -errno : 0;
    return weave__ret(r < 0 ? r : c);
}

WEAVE__ENTRY int weave_stream_free(weave_stream *s)
{
    int r;

    WEAVE__SCOPES_CHECK();
    if (!s)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&s->home)) < 0)
        return weave__ret(r); /* another thread's tasks use it: left alone */
    return weave__ret(release(s));
}

int weave_stream_fd(const weave_stream *s)
{
    return s ? s->fd : weave__ret(-EINVAL);
}

int weave_stream_set_timeout(weave_stream *s, int64_t timeout_ms)
{
    int r;

    if (!s || timeout_ms < -1)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&s->home)) < 0)
        return weave__ret(r);
    s->timeout_ms = timeout_ms;
    return 0;
}

size_t weave_stream_buffered(const weave_stream *s)
{
    return s && weave__at_home(&s->home) == 0 ? avail(s) : 0;
}

/* ---- reading -------------------------------------------------------------- */

WEAVE__ENTRY ssize_t weave_stream_read(weave_stream *s, void *buf, size_t n)
{
    struct call c;
    ssize_t r;

    WEAVE__SCOPES_CHECK();
    if (!s || !buf || n == 0 || n > SSIZE_MAX)
        return ret(-EINVAL);
    if ((r = enter(s, &c)) < 0)
        return ret(r);
    if (avail(s) == 0 && n >= s->rsize) {
        arm(s);
        r = weave_read(s->fd, buf, n);
        r = r < 0 ? -errno : r;
    } else if (avail(s) > 0 || (r = fill(s)) > 0) {
        r = (ssize_t)min_size(avail(s), n);
        memcpy(buf, s->rbuf + s->rpos, (size_t)r);
        consume(s, (size_t)r);
    }
    return leave(s, &c, r);
}

WEAVE__ENTRY ssize_t weave_stream_read_exact(weave_stream *s, void *buf, size_t n)
{
    struct call c;
    ssize_t r;

    WEAVE__SCOPES_CHECK();
    if (!s || !buf || n == 0 || n > SSIZE_MAX)
        return ret(-EINVAL);
    if ((r = enter(s, &c)) < 0)
        return ret(r);
    if (n <= s->rsize) {
        /* All of it gathers in the buffer first, so a failure consumes
         * nothing. */
        if ((r = want(s, n)) > 0) {
            r = (ssize_t)min_size((size_t)r, n);
            memcpy(buf, s->rbuf + s->rpos, (size_t)r);
            consume(s, (size_t)r);
        }
    } else {
        size_t got = min_size(avail(s), n);

        if (got > 0) {
            memcpy(buf, s->rbuf + s->rpos, got);
            consume(s, got);
        }
        arm(s);
        for (r = 0; got < n; got += (size_t)r) {
            if ((r = weave_read(s->fd, (char *)buf + got, n - got)) <= 0)
                break;
        }
        r = r < 0 && got == 0 ? -errno : (ssize_t)got;
    }
    return leave(s, &c, r);
}

/* The line and until calls: a record of at most limit bytes, copied into
 * buf and consumed. */
static ssize_t read_record(weave_stream *s, const char *delim, size_t dlen, void *buf, size_t limit)
{
    struct call c;
    ssize_t r;

    if ((r = enter(s, &c)) < 0)
        return ret(r);
    if ((r = until(s, delim, dlen, min_size(limit, s->line_max))) > 0) {
        memcpy(buf, s->rbuf + s->rpos, (size_t)r);
        consume(s, (size_t)r);
    }
    return leave(s, &c, r);
}

WEAVE__ENTRY ssize_t weave_stream_read_line(weave_stream *s, char *buf, size_t cap)
{
    ssize_t r;

    WEAVE__SCOPES_CHECK();
    if (!s || !buf || cap < 2)
        return ret(-EINVAL);
    if ((r = read_record(s, "\n", 1, buf, cap - 1)) >= 0)
        buf[r] = '\0';
    return r;
}

WEAVE__ENTRY ssize_t weave_stream_read_until(weave_stream *s, const void *delim, size_t dlen,
                                             void *buf, size_t cap)
{
    WEAVE__SCOPES_CHECK();
    if (!s || !delim || !buf || cap == 0 || dlen == 0 || dlen > s->line_max)
        return ret(-EINVAL);
    return read_record(s, delim, dlen, buf, cap);
}

WEAVE__ENTRY ssize_t weave_stream_peek(weave_stream *s, size_t n, const void **data)
{
    struct call c;
    ssize_t r;

    WEAVE__SCOPES_CHECK();
    if (!s || !data || n > s->rsize)
        return ret(-EINVAL);
    if ((r = enter(s, &c)) < 0)
        return ret(r);
    r = want(s, n);
    *data = s->rbuf && avail(s) > 0 ? s->rbuf + s->rpos : no_bytes;
    return leave(s, &c, r);
}

WEAVE__ENTRY ssize_t weave_stream_peek_until(weave_stream *s, const void *delim, size_t dlen,
                                             const void **data)
{
    struct call c;
    ssize_t r;

    WEAVE__SCOPES_CHECK();
    if (!s || !delim || !data || dlen == 0 || dlen > s->line_max)
        return ret(-EINVAL);
    if ((r = enter(s, &c)) < 0)
        return ret(r);
    r = until(s, delim, dlen, s->line_max);
    *data = s->rbuf && avail(s) > 0 ? s->rbuf + s->rpos : no_bytes;
    return leave(s, &c, r);
}

WEAVE__ENTRY int64_t weave_stream_skip(weave_stream *s, int64_t n)
{
    struct call c;
    int64_t done = 0;
    ssize_t r;

    WEAVE__SCOPES_CHECK();
    if (!s || n < 0)
        return ret(-EINVAL);
    if (n == 0)
        return 0;
    if ((r = enter(s, &c)) < 0)
        return ret(r);
    for (;;) {
        size_t take = (size_t)(n - done) < avail(s) ? (size_t)(n - done) : avail(s);

        consume(s, take);
        done += (int64_t)take;
        if (done == n || (r = fill(s)) <= 0)
            break;
    }
    if (r < 0 && done == 0)
        return leave(s, &c, r);
    (void)leave(s, &c, 0);
    return done; /* a short count: end of file, or an error the next call reports */
}

/* ---- writing -------------------------------------------------------------- */

WEAVE__ENTRY ssize_t weave_stream_write(weave_stream *s, const void *buf, size_t n)
{
    struct call c;
    ssize_t r;

    WEAVE__SCOPES_CHECK();
    if (!s || (!buf && n > 0) || n > SSIZE_MAX)
        return ret(-EINVAL);
    if ((r = enter(s, &c)) < 0)
        return ret(r);
    return leave(s, &c, n > 0 ? put(s, buf, n) : 0);
}

WEAVE__ENTRY int weave_stream_printf(weave_stream *s, const char *fmt, ...)
{
    struct call c;
    va_list ap, again;
    ssize_t r;
    int len;

    WEAVE__SCOPES_CHECK();
    if (!s || !fmt)
        return weave__ret(-EINVAL);
    if ((r = enter(s, &c)) < 0)
        return weave__ret((int)r);
    if (!s->wbuf && !(s->wbuf = take(s->wsize))) {
        r = -ENOMEM;
        goto out;
    }
    /* Format into the free room; if it does not fit, flush and format
     * again into the whole buffer, or into an allocation of its own. */
    va_start(ap, fmt);
    va_copy(again, ap);
    /* va_start above: clang-tidy 14's analyzer misreads GCC's va_list. */
    // NOLINTNEXTLINE(clang-analyzer-valist.*)
    len = vsnprintf(s->wbuf + s->wlen, s->wsize - s->wlen, fmt, ap);
    va_end(ap);
    if (len < 0) {
        r = -EOVERFLOW;
    } else if ((size_t)len < s->wsize - s->wlen) {
        s->wlen += (size_t)len;
        r = len;
    } else if ((size_t)len < s->wsize) {
        if ((r = flush(s)) == 0) {
            (void)vsnprintf(s->wbuf, s->wsize, fmt, again);
            s->wlen = (size_t)len;
            r = len;
        }
    } else {
        char *tmp = malloc((size_t)len + 1);

        if (!tmp) {
            r = -ENOMEM;
        } else {
            (void)vsnprintf(tmp, (size_t)len + 1, fmt, again);
            r = put(s, tmp, (size_t)len);
            free(tmp);
        }
    }
    va_end(again);
out:
    return (int)leave(s, &c, r);
}

WEAVE__ENTRY int weave_stream_flush(weave_stream *s)
{
    struct call c;
    ssize_t r;

    WEAVE__SCOPES_CHECK();
    if (!s)
        return weave__ret(-EINVAL);
    if ((r = enter(s, &c)) < 0)
        return weave__ret((int)r);
    return (int)leave(s, &c, flush(s));
}

void weave__stream_drop(weave_stream *s)
{
    drop(s->rbuf, s->rsize);
    drop(s->wbuf, s->wsize);
    free(s);
}
