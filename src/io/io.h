/*
 * io.h - what the helpers need of the I/O calls (io.c).
 */
#ifndef WEAVE_IO_H
#define WEAVE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/sched.h"

/* Connect fd, waiting until timeout for a connection in progress. Returns 0
 * or -errno. */
int weave__connect(struct weave__sched *s, int fd, const struct sockaddr *addr, socklen_t addrlen,
                   int64_t timeout);

/*
 * Read at most size bytes of fd into a buffer of size bytes taken from the
 * running scheduler's cache (bufcache.h) only once input is there; as
 * weave_read otherwise (a cancellation point, in turn with the fd's other
 * readers). While the fd is known to be empty (its last read came back
 * short where that means so, or said EAGAIN, and no input event came
 * since) the task parks at once, holding no buffer and making no system
 * call; a read that says EAGAIN gives its buffer back before it parks.
 * Returns the count read, with *buf set to the buffer, which is the
 * caller's to give back (weave__buf_give); or 0 at end of file, or -errno,
 * with *buf NULL.
 */
ssize_t weave__read_lazy(int fd, size_t size, void **buf);

#endif /* WEAVE_IO_H */
