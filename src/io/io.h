/*
 * io.h - what the helpers need of the I/O calls (io.c).
 */
#ifndef WEAVE_IO_H
#define WEAVE_IO_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/sched.h"

/* Connect fd, waiting until timeout for a connection in progress. Returns 0
 * or -errno. */
int weave__connect(struct weave__sched *s, int fd, const struct sockaddr *addr, socklen_t addrlen,
                   int64_t timeout);

#endif /* WEAVE_IO_H */
