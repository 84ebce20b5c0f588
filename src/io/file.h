/*
 * file.h - regular files and block devices, which cannot be polled
 * (file.c): reads from the page cache, the rest through the io_uring or
 * on the offload pool.
 */
#ifndef WEAVE_FILE_H
#define WEAVE_FILE_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/sched.h"
#include "io/fd.h"

/* The bytes iov[0..n) describe. */
size_t weave__iov_total(const struct iovec *iov, int n);

/* One read (or write) of a regular file or block device st, iov as for
 * readv. Returns the count or -errno. */
ssize_t weave__file_io(struct weave__sched *s, int fd, struct weave__fd *st,
                       const struct iovec *iov, int iovcnt, bool is_write);

/* fsync (or fdatasync) of a regular file or block device st, holding its
 * output side. Returns 0 or -errno. */
int weave__file_sync(struct weave__sched *s, int fd, struct weave__fd *st, bool datasync);

#endif /* WEAVE_FILE_H */
