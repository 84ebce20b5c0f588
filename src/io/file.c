/*
 * file.c - reads, writes and syncs of regular files and block devices,
 * which cannot be polled.
 *
 * A read or write first tries preadv2/pwritev2(RWF_NOWAIT), which answers
 * at once from the page cache (buffered writes refuse RWF_NOWAIT on most
 * filesystems, ext4 included: then the fd is not asked again). What would
 * block goes to the scheduler's io_uring (uring.c), which moves the bytes
 * straight from the task's buffer; where there is no ring (see uring.c),
 * or a submission fails, to the offload pool. The pool's worker uses a dup
 * of the fd and a buffer of its own, at most FILE_CHUNK bytes, so a task
 * that is cancelled may return at once: the worker never touches the
 * caller's buffer or an fd number the caller may have closed.
 */
#include "base/common.h"
#include "io/file.h"
#include "io/offload.h"
#include "io/uring.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_CHUNK ((size_t)1 << 20) /* most bytes one offloaded call moves */

/* A read or write run on a worker, through a dup of the fd and a buffer of
 * its own. Freed by the task, or by discard if the task stopped waiting. */
struct file_call {
    int fd;     /* the dup; closed by the worker when it is done */
    bool write; /* write, else read */
    char *buf;  /* len bytes */
    size_t len;
    ssize_t n; /* the result */
    int err;   /* errno if n < 0 */
};

static void *file_run(void *p)
{
    struct file_call *c = p;

    do
        c->n = c->write ? write(c->fd, c->buf, c->len) : read(c->fd, c->buf, c->len);
    while (c->n < 0 && errno == EINTR);
    c->err = c->n < 0 ? errno : 0;
    close(c->fd);
    c->fd = -1;
    return NULL;
}

static void file_discard(void *result, void *p)
{
    struct file_call *c = p;

    (void)result;
    if (c->fd >= 0)
        close(c->fd); /* it never ran */
    free(c->buf);
    free(c);
}

size_t weave__iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;

    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* Copy between iov and a flat buffer, at most len bytes. */
static void iov_gather(char *dst, const struct iovec *iov, int n, size_t len)
{
    for (int i = 0; i < n && len > 0; i++) {
        size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;
        memcpy(dst, iov[i].iov_base, k);
        dst += k;
        len -= k;
    }
}

static void iov_scatter(const struct iovec *iov, int n, const char *src, size_t len)
{
    for (int i = 0; i < n && len > 0; i++) {
        size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;
        memcpy(iov[i].iov_base, src, k);
        src += k;
        len -= k;
    }
}

static ssize_t file_offload(struct weave__sched *s, int fd, struct weave__fd *st,
                            const struct iovec *iov, int iovcnt, bool is_write)
{
    size_t len = weave__iov_total(iov, iovcnt);
    int d = is_write;
    struct file_call *c;
    ssize_t n;
    int r;

    if (len > FILE_CHUNK)
        len = FILE_CHUNK; /* a short count, as read and write may return */
    if (!(c = calloc(1, sizeof(*c))) || !(c->buf = malloc(len ? len : 1))) {
        free(c);
        return -ENOMEM;
    }
    c->write = is_write;
    c->len = len;
    if (c->write)
        iov_gather(c->buf, iov, iovcnt, len);
    if ((c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        r = -errno;
        free(c->buf);
        free(c);
        return r;
    }
    /* Wait in the fd's ready queue of this side as well, so that
     * weave_close(fd) wakes us with EBADF as it wakes any task waiting on
     * an fd. A regular file is never registered: nothing else wakes it. */
    r = weave__offload(s, file_run, c, NULL, file_discard, WEAVE__NO_DEADLINE, &st->ready[d]);
    if (r == -ECANCELED || r == -ETIMEDOUT || r == -EBADF)
        return r; /* c belongs to file_discard now */
    if (r < 0) {
        file_discard(NULL, c);
        return r;
    }
    n = c->n;
    if (n < 0)
        n = -c->err;
    else if (!c->write)
        iov_scatter(iov, iovcnt, c->buf, (size_t)n);
    free(c->buf);
    free(c);
    return n;
}

/* One read or write on a regular file: from the page cache if it can be
 * had at once, else on the pool. */
ssize_t weave__file_io(struct weave__sched *s, int fd, struct weave__fd *st,
                       const struct iovec *iov, int iovcnt, bool is_write)
{
    bool wr = is_write;
    uint8_t *unsupported = wr ? &st->no_nowait_write : &st->no_nowait_read;

    while (!*unsupported) {
        ssize_t n = wr ? pwritev2(fd, iov, iovcnt, -1, RWF_NOWAIT)
                       : preadv2(fd, iov, iovcnt, -1, RWF_NOWAIT);
        if (n >= 0)
            return n;
        if (errno == EAGAIN)
            break;
        if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)
            *unsupported = 1; /* not this fd (filesystem, kernel): ask no more */
        else if (errno != EINTR)
            return -errno;
    }
    if (weave__uring_on(s)) {
        ssize_t n = weave__uring_call(s, wr ? WEAVE__URING_WRITE : WEAVE__URING_READ, fd, iov,
                                      iovcnt, &st->ready[wr]);
        if (n != WEAVE__URING_FALLBACK)
            return n;
    }
    return file_offload(s, fd, st, iov, iovcnt, is_write);
}

/* An fsync or fdatasync run on a worker, on a dup of the fd. */
struct sync_call {
    int fd;        /* the dup; closed by the worker */
    bool datasync; /* fdatasync, else fsync */
    int err;       /* 0, or the errno */
};

static void *sync_run(void *p)
{
    struct sync_call *c = p;

    c->err = (c->datasync ? fdatasync(c->fd) : fsync(c->fd)) == 0 ? 0 : errno;
    close(c->fd);
    c->fd = -1;
    return NULL;
}

static void sync_discard(void *result, void *p)
{
    struct sync_call *c = p;

    (void)result;
    if (c->fd >= 0)
        close(c->fd); /* it never ran */
    free(c);
}

int weave__file_sync(struct weave__sched *s, int fd, struct weave__fd *st, bool datasync)
{
    struct sync_call *c;
    int r;

    if (weave__uring_on(s)) {
        ssize_t n = weave__uring_call(s, datasync ? WEAVE__URING_FDATASYNC : WEAVE__URING_FSYNC, fd,
                                      NULL, 0, &st->ready[1]);
        if (n != WEAVE__URING_FALLBACK)
            return (int)n;
    }
    if (!(c = calloc(1, sizeof(*c))))
        return -ENOMEM;
    c->datasync = datasync;
    if ((c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        r = -errno;
        free(c);
        return r;
    }
    r = weave__offload(s, sync_run, c, NULL, sync_discard, WEAVE__NO_DEADLINE, &st->ready[1]);
    if (r == -ECANCELED || r == -ETIMEDOUT || r == -EBADF)
        return r; /* c belongs to sync_discard now */
    if (r == 0)
        r = -c->err;
    sync_discard(NULL, c);
    return r;
}
