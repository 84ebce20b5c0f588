/*
 * net.c - TCP and Unix socket helpers, and name resolution.
 *
 * getaddrinfo can block for seconds on DNS, so it never runs on the
 * scheduler's thread with a name to look up: a numeric address (and a
 * numeric port) is parsed in place with AI_NUMERICHOST | AI_NUMERICSERV,
 * which never blocks, and anything else is resolved on the offload pool.
 *
 * A failed resolution has errnos of its own, ones that no socket, bind or
 * connect of a TCP socket gives, so that "no such name" is never mistaken
 * for a connection error:
 *
 *   EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY   ENXIO   no such name (or no
 *                                                    address for it)
 *   EAI_AGAIN                                EAGAIN  try again later
 *   EAI_FAIL                                 EIO     the resolver failed
 *   EAI_MEMORY                               ENOMEM
 *   EAI_SYSTEM                               its errno
 *   EAI_SERVICE, EAI_BADFLAGS, EAI_FAMILY,   EINVAL  a bad argument (a
 *   EAI_SOCKTYPE                                     service name unknown)
 *
 * ENXIO ("No such device or address") is in none of the error lists of
 * socket(2), bind(2), connect(2) or the SO_ERROR of a TCP connection;
 * EADDRNOTAVAIL, which resolution gave before, is bind's and connect's
 * ("Cannot assign requested address": no free local port). EAGAIN from
 * connect means a full Unix backlog, which weave__connect waits out, so a
 * TCP helper returns it only from resolution. EIO is what a device gives
 * for a failure it cannot recover from; no TCP call gives it. The
 * resolver's own message is kept on the scheduler for weave_resolve_error.
 */
#include "base/common.h"
#include "core/scope.h"
#include "core/time.h"
#include "io/fd.h"
#include "io/io.h"
#include "io/offload.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A getaddrinfo call handed to the pool. */
struct lookup {
    char *host; /* NULL for a passive wildcard */
    char *port;
    struct addrinfo hints;
    struct addrinfo *res; /* the answer, when rc == 0 */
    int rc;               /* getaddrinfo's return value */
    int err;              /* errno for EAI_SYSTEM */
};

static void *lookup_run(void *p)
{
    struct lookup *l = p;

    l->rc = getaddrinfo(l->host, l->port, &l->hints, &l->res);
    l->err = errno;
    return NULL;
}

static void lookup_free(void *result, void *p)
{
    struct lookup *l = p;

    (void)result;
    if (l->rc == 0 && l->res)
        freeaddrinfo(l->res);
    free(l->host);
    free(l->port);
    free(l);
}

/* The negative errno of getaddrinfo's failure rc (err: errno after it),
 * as the table above says; its message is kept for weave_resolve_error. */
static int gai_errno(struct weave__sched *s, int rc, int err)
{
    if (s)
        s->resolve_error = gai_strerror(rc);
    switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENXIO;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return err > 0 ? -err : -EIO;
    case EAI_SERVICE:
    case EAI_BADFLAGS:
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
        return -EINVAL;
    default: /* EAI_FAIL, and any code glibc may add */
        return -EIO;
    }
}

const char *weave_resolve_error(void)
{
    struct weave__sched *s = weave__tls;

    return s && s->resolve_error ? s->resolve_error : "";
}

/* A port is a number from 0 to 65535 or a service name; getaddrinfo would
 * take 65536 as 0 and 99999 as 34463. */
static int check_port(const char *port)
{
    unsigned long v = 0;

    if (!port || !*port)
        return -EINVAL;
    for (const char *p = port; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0; /* a service name, for getaddrinfo */
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535)
            return -EINVAL;
    }
    return 0;
}

/* Resolve host:port for a stream socket. *res is freed with freeaddrinfo. */
static int resolve(const char *host, const char *port, bool passive, int64_t deadline,
                   struct addrinfo **res)
{
    struct weave__sched *s = weave__tls;
    struct addrinfo hints;
    struct lookup *l;
    int rc, r;

    if ((r = check_port(port)) < 0)
        return r;
    if (host && !*host)
        host = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICHOST | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, res);
    if (rc == 0)
        return 0;
    if (rc != EAI_NONAME)
        return gai_errno(s, rc, errno);
    /* A name (of the host or the service): look it up on the pool. */
    if (!s)
        return -EPERM;
    if ((r = weave__checkpoint(s)) < 0)
        return r;
    if (!(l = calloc(1, sizeof(*l))))
        return -ENOMEM;
    l->host = host ? strdup(host) : NULL;
    l->port = strdup(port);
    if ((host && !l->host) || !l->port) {
        lookup_free(NULL, l);
        return -ENOMEM;
    }
    l->hints = hints;
    l->hints.ai_flags &= ~(AI_NUMERICHOST | AI_NUMERICSERV);
    r = weave__offload(s, lookup_run, l, NULL, lookup_free, deadline, NULL);
    if (r == -ECANCELED || r == -ETIMEDOUT)
        return r; /* l belongs to lookup_free now */
    if (r == 0 && (r = l->rc == 0 ? 0 : gai_errno(s, l->rc, l->err)) == 0) {
        *res = l->res;
        l->res = NULL;
    }
    lookup_free(NULL, l);
    return r;
}

/* A non-blocking, close-on-exec stream socket, its weave state fresh. */
static int stream_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    weave__fd_fresh(fd, family == AF_INET || family == AF_INET6);
    return fd;
}

static int close_ret(int fd, int r)
{
    weave_close(fd);
    return r;
}

static int listen_on(const struct sockaddr *addr, socklen_t len, int backlog, bool dual,
                     unsigned flags)
{
    int one = 1, zero = 0;
    int fd = stream_socket(addr->sa_family);

    if (fd < 0)
        return fd;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        return close_ret(fd, -errno);
    if ((flags & WEAVE_LISTEN_REUSEPORT) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        return close_ret(fd, -errno);
    if (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0)
        return close_ret(fd, -errno);
    if (bind(fd, addr, len) != 0 || listen(fd, backlog) != 0)
        return close_ret(fd, -errno);
    return fd;
}

static int tcp_listen(const char *host, const char *port, int backlog, unsigned flags)
{
    struct addrinfo *res, *ai;
    int fd = -EADDRNOTAVAIL, r;

    if (backlog < 0 || check_port(port) < 0 || (flags & ~(unsigned)WEAVE_LISTEN_REUSEPORT))
        return -EINVAL;
    if (!host || !*host) {
        /* Every address: one IPv6 socket that takes IPv4 too, where the
         * system has IPv6; else IPv4 alone. */
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof(a6));
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_any;
        if ((r = resolve(NULL, port, true, WEAVE__NO_DEADLINE, &res)) < 0)
            return r;
        for (ai = res; ai; ai = ai->ai_next) {
            if (ai->ai_family == AF_INET6) {
                a6.sin6_port = ((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_port;
                break;
            } else if (ai->ai_family == AF_INET) {
                a6.sin6_port = ((struct sockaddr_in *)(void *)ai->ai_addr)->sin_port;
            }
        }
        fd = listen_on((struct sockaddr *)&a6, sizeof(a6), backlog, true, flags);
        if (fd == -EAFNOSUPPORT) {
            for (ai = res; ai; ai = ai->ai_next)
                if (ai->ai_family == AF_INET &&
                    (fd = listen_on(ai->ai_addr, ai->ai_addrlen, backlog, false, flags)) >= 0)
                    break;
        }
        freeaddrinfo(res);
        return fd;
    }
    if ((r = resolve(host, port, true, WEAVE__NO_DEADLINE, &res)) < 0)
        return r;
    for (ai = res; ai; ai = ai->ai_next)
        if ((fd = listen_on(ai->ai_addr, ai->ai_addrlen, backlog, false, flags)) >= 0)
            break;
    freeaddrinfo(res);
    return fd;
}

WEAVE__ENTRY int weave_tcp_listen(const char *host, const char *port, int backlog)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(tcp_listen(host, port, backlog, 0));
}

WEAVE__ENTRY int weave_tcp_listen_with(const char *host, const char *port, int backlog,
                                       unsigned flags)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(tcp_listen(host, port, backlog, flags));
}

static int tcp_connect(const char *host, const char *port, int64_t timeout_ms)
{
    struct weave__sched *s = weave__tls;
    struct addrinfo *res, *ai;
    int64_t deadline;
    int r, last = -EADDRNOTAVAIL;

    if (check_port(port) < 0 || (deadline = weave__deadline_in(timeout_ms, 1000000)) < 0)
        return -EINVAL;
    if (!s)
        return -EPERM;
    if ((r = weave__checkpoint(s)) < 0)
        return r;
    if ((r = resolve(host, port, false, deadline, &res)) < 0)
        return r;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = stream_socket(ai->ai_family);

        if (fd < 0) {
            last = fd;
            continue;
        }
        r = weave__connect(s, fd, ai->ai_addr, ai->ai_addrlen, deadline);
        if (r == 0) {
            freeaddrinfo(res);
            return fd;
        }
        weave_close(fd);
        last = r;
        if (r == -ETIMEDOUT || r == -ECANCELED)
            break; /* no time left for the next address */
    }
    freeaddrinfo(res);
    return last;
}

WEAVE__ENTRY int weave_tcp_connect(const char *host, const char *port, int64_t timeout_ms)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(tcp_connect(host, port, timeout_ms));
}

static int unix_addr(const char *path, struct sockaddr_un *a)
{
    size_t n;

    if (!path || !*path)
        return -EINVAL;
    n = strlen(path);
    if (n >= sizeof(a->sun_path))
        return -ENAMETOOLONG;
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, path, n + 1);
    return 0;
}

static int unix_listen(const char *path, int backlog)
{
    struct sockaddr_un a;
    int fd, r;

    if (backlog < 0)
        return -EINVAL;
    if ((r = unix_addr(path, &a)) < 0)
        return r;
    if ((fd = stream_socket(AF_UNIX)) < 0)
        return fd;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, backlog) != 0)
        return close_ret(fd, -errno);
    return fd;
}

int weave_unix_listen(const char *path, int backlog)
{
    return weave__ret(unix_listen(path, backlog));
}

static int unix_connect(const char *path)
{
    struct weave__sched *s = weave__tls;
    struct sockaddr_un a;
    int fd, r;

    if ((r = unix_addr(path, &a)) < 0)
        return r;
    if (!s)
        return -EPERM;
    if ((fd = stream_socket(AF_UNIX)) < 0)
        return fd;
    r = weave__connect(s, fd, (struct sockaddr *)&a, sizeof(a), WEAVE__NO_DEADLINE);
    return r < 0 ? close_ret(fd, r) : fd;
}

WEAVE__ENTRY int weave_unix_connect(const char *path)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(unix_connect(path));
}
