/*
 * echo_bench.c - a weave echo server against a plain epoll echo server.
 *
 * One client drives C connections over loopback; each connection plays
 * ping-pong: send S bytes, read the S echoed bytes, send again, for T
 * seconds. The same client code, in the same process, runs against two
 * servers, each on a thread of its own, one after the other:
 *
 *   weave  one task per connection: weave_read, weave_write, loop; the
 *          server a user of weave would write. With --stream, the task
 *          reads through a weave_stream instead, as demo/echo_server does
 *          (peek what came, write it back, skip it): the stream's buffer
 *          is taken when input comes and given back once it is echoed.
 *   epoll  one thread, level-triggered epoll, non-blocking sockets: read
 *          what is there, write it back, and only on a short write keep
 *          the rest and wait for EPOLLOUT; the way a careful C programmer
 *          writes it without a library.
 *
 * Both servers read at most BUF_SIZE bytes at a time and set TCP_NODELAY.
 *
 * The client is one thread with plain epoll (not weave), so that it loads
 * both servers the same way and costs as little as it can: one outstanding
 * message per connection, level-triggered, a read per readiness. On two
 * cores the client may well be the bottleneck, so besides messages per
 * second the bench reports CPU time per message, of the server thread
 * (CLOCK_THREAD_CPUTIME_ID read in the server thread at its start and end,
 * divided by every message it echoed) and of the client thread (over the
 * timed window). The figure that compares the servers' efficiency is the
 * server's CPU per message; messages per second compare them only when the
 * server, not the client, is saturated (server CPU near 100% of wall).
 *
 * --runs N runs the pair N times, alternating which server goes first, and
 * reports the median of each column.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "weave.h"

#define BUF_SIZE    16384 /* bytes a server reads at once */
#define MAX_EVENTS  256   /* events per epoll_wait, both servers and the client */
#define MAX_CONNS   20000u
#define MAX_SIZE    (1u << 20)
#define MAX_SECONDS 3600u
#define MAX_RUNS    101u
#define BACKLOG     4096

enum kind { WEAVE, EPOLL, NKINDS };

static const char *const kind_names[NKINDS] = {"weave", "epoll"};

struct options {
    uint32_t conns;
    uint32_t size;    /* bytes per message */
    uint32_t seconds; /* timed window */
    uint32_t runs;
    bool json;
    bool stream; /* the weave server reads through a weave_stream */
};

/* One server thread. */
struct server {
    enum kind kind;
    bool stream;      /* weave: connections read through a weave_stream */
    int listen_fd;    /* made by main, listening */
    int stop_fd;      /* eventfd: main writes it to stop the server */
    int64_t cpu_ns;   /* the thread's CPU time from start to end */
    int err;          /* errno of a failure, 0 if none */
    const char *what; /* what failed */
};

/* What one run of the client measured. */
struct result {
    double msgs_per_s;     /* messages echoed in the window / window */
    double server_cpu_us;  /* server thread CPU per message echoed */
    double server_cpu_pct; /* server thread CPU / window wall */
    double client_cpu_us;  /* client thread CPU per message, in the window */
    double client_cpu_pct; /* client thread CPU / window wall */
    uint64_t window_msgs;  /* messages echoed in the window */
    uint64_t total_msgs;   /* every message echoed, drain included */
};

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void server_fail(struct server *sv, const char *what, int err)
{
    if (!sv->err) {
        sv->err = err;
        sv->what = what;
    }
}

static void set_nodelay(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- the weave server --------------------------------------------------- */

static void *weave_conn(void *arg)
{
    int fd = *(int *)arg;
    char buf[BUF_SIZE];

    free(arg);
    for (;;) {
        ssize_t n = weave_read(fd, buf, sizeof(buf));
        if (n <= 0 || weave_write(fd, buf, (size_t)n) != n)
            break;
    }
    weave_close(fd);
    return NULL;
}

/* The same over a stream (demo/echo_server's loop): write back what the
 * stream's buffer holds, then consume it. */
static void *weave_stream_conn(void *arg)
{
    int fd = *(int *)arg;
    weave_stream_opts so = {.read_size = BUF_SIZE};
    weave_stream *in = weave_stream_new(fd, &so);
    const void *data;
    ssize_t n;

    free(arg);
    while (in && (n = weave_stream_peek(in, 1, &data)) > 0 && weave_write(fd, data, (size_t)n) == n)
        (void)weave_stream_skip(in, n);
    (void)(in ? weave_stream_close(in) : weave_close(fd));
    return NULL;
}

static void *weave_acceptor(void *arg)
{
    struct server *sv = arg;

    for (;;) {
        weave_task *t;
        int *p, fd = weave_accept(sv->listen_fd, NULL, NULL);

        if (fd < 0) {
            if (errno != ECANCELED)
                server_fail(sv, "weave_accept", errno);
            break;
        }
        set_nodelay(fd);
        if (!(p = malloc(sizeof(*p)))) {
            server_fail(sv, "malloc", ENOMEM);
            weave_close(fd);
            continue;
        }
        *p = fd;
        if (!(t = weave_spawn(sv->stream ? weave_stream_conn : weave_conn, p))) {
            server_fail(sv, "weave_spawn", errno);
            weave_close(fd);
            free(p);
            continue;
        }
        (void)weave_detach(t);
    }
    return NULL;
}

static void *weave_server_main(void *arg)
{
    struct server *sv = arg;
    weave_task *acceptor = weave_spawn(weave_acceptor, sv);
    uint64_t v;

    if (!acceptor) {
        server_fail(sv, "weave_spawn", errno);
        return NULL;
    }
    if (weave_read(sv->stop_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
        server_fail(sv, "weave_read (stop eventfd)", errno);
    (void)weave_cancel(acceptor);
    (void)weave_join(acceptor, NULL);
    (void)weave_fd_forget(sv->listen_fd);
    (void)weave_fd_forget(sv->stop_fd);
    return NULL; /* weave_run cancels the connections left */
}

static void *weave_server_thread(void *arg)
{
    struct server *sv = arg;
    int64_t c0 = thread_cpu_ns();

    if (weave_run(weave_server_main, sv, NULL) != 0)
        server_fail(sv, "weave_run", errno);
    sv->cpu_ns = thread_cpu_ns() - c0;
    return NULL;
}

/* ---- the plain epoll server --------------------------------------------- */

/* A connection of the epoll server, with what is left to write back
 * after a short write. */
struct econn {
    bool open;
    char *buf; /* pending bytes; NULL when nothing is pending */
    size_t len;
    size_t off;
};

struct epoll_server {
    int epfd;
    struct econn *conns; /* indexed by fd */
    size_t cap;          /* entries of conns */
};

static int es_track(struct epoll_server *es, int fd)
{
    size_t need = (size_t)fd + 1;

    if (need > es->cap) {
        size_t n = es->cap ? es->cap : 1024;
        struct econn *v;

        while (n < need)
            n *= 2;
        if (!(v = realloc(es->conns, n * sizeof(*v))))
            return -1;
        memset(v + es->cap, 0, (n - es->cap) * sizeof(*v));
        es->conns = v;
        es->cap = n;
    }
    es->conns[fd].open = true;
    return 0;
}

static void es_close(struct epoll_server *es, int fd)
{
    struct econn *c = &es->conns[fd];

    free(c->buf);
    c->buf = NULL;
    c->open = false;
    close(fd); /* also drops it from the epoll set */
}

/* Write what is pending on fd. 1 if all of it went, 0 if some is left, -1
 * on an error. */
static int es_flush(struct econn *p, int fd)
{
    while (p->off < p->len) {
        ssize_t w = write(fd, p->buf + p->off, p->len - p->off);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        p->off += (size_t)w;
    }
    free(p->buf);
    p->buf = NULL;
    return 1;
}

static void es_accept(struct epoll_server *es, struct server *sv)
{
    for (;;) {
        struct epoll_event ev;
        int fd = accept4(sv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR)
                server_fail(sv, "accept4", errno);
            if (errno != ECONNABORTED && errno != EINTR)
                return;
            continue;
        }
        set_nodelay(fd);
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (es_track(es, fd) != 0 || epoll_ctl(es->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            server_fail(sv, "epoll_ctl", errno);
            close(fd);
            if ((size_t)fd < es->cap)
                es->conns[fd].open = false;
        }
    }
}

/* Readiness on a connection: flush what is pending, else read and echo. */
static void es_conn(struct epoll_server *es, int fd, uint32_t events, char *buf)
{
    struct econn *p = &es->conns[fd];
    struct epoll_event ev;
    ssize_t n, w;

    if (p->buf) {
        int r = es_flush(p, fd);
        if (r < 0) {
            es_close(es, fd);
        } else if (r > 0) {
            ev.events = EPOLLIN;
            ev.data.fd = fd;
            (void)epoll_ctl(es->epfd, EPOLL_CTL_MOD, fd, &ev);
        }
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    n = read(fd, buf, BUF_SIZE);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            es_close(es, fd);
        return;
    }
    w = write(fd, buf, (size_t)n);
    if (w == n)
        return;
    if (w < 0) {
        if (errno != EAGAIN) {
            es_close(es, fd);
            return;
        }
        w = 0;
    }
    /* Short write: keep the rest, stop reading until it is out. */
    p->len = (size_t)(n - w);
    p->off = 0;
    if (!(p->buf = malloc(p->len))) {
        es_close(es, fd);
        return;
    }
    memcpy(p->buf, buf + w, p->len);
    ev.events = EPOLLOUT;
    ev.data.fd = fd;
    (void)epoll_ctl(es->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void *epoll_server_thread(void *arg)
{
    struct server *sv = arg;
    struct epoll_server es = {-1, NULL, 0};
    struct epoll_event ev, events[MAX_EVENTS];
    int64_t c0 = thread_cpu_ns();
    char *buf = malloc(BUF_SIZE);
    bool stop = false;
    int fl;

    es.epfd = epoll_create1(EPOLL_CLOEXEC);
    es.cap = 1024; /* grown by es_track as fds come */
    es.conns = calloc(es.cap, sizeof(*es.conns));
    if (!buf || !es.conns || es.epfd < 0) {
        es.cap = 0;
        server_fail(sv, "epoll_create1", errno);
        goto out;
    }
    fl = fcntl(sv->listen_fd, F_GETFL);
    (void)fcntl(sv->listen_fd, F_SETFL, fl | O_NONBLOCK);
    ev.events = EPOLLIN;
    ev.data.fd = sv->listen_fd;
    if (epoll_ctl(es.epfd, EPOLL_CTL_ADD, sv->listen_fd, &ev) != 0) {
        server_fail(sv, "epoll_ctl", errno);
        goto out;
    }
    ev.data.fd = sv->stop_fd;
    if (epoll_ctl(es.epfd, EPOLL_CTL_ADD, sv->stop_fd, &ev) != 0) {
        server_fail(sv, "epoll_ctl", errno);
        goto out;
    }
    while (!stop) {
        int n = epoll_wait(es.epfd, events, MAX_EVENTS, -1);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            server_fail(sv, "epoll_wait", errno);
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;

            if (fd == sv->listen_fd)
                es_accept(&es, sv);
            else if (fd == sv->stop_fd)
                stop = true;
            else if ((size_t)fd < es.cap && es.conns[fd].open)
                es_conn(&es, fd, events[i].events, buf);
        }
    }
out:
    for (size_t fd = 0; fd < es.cap; fd++)
        if (es.conns[fd].open)
            es_close(&es, (int)fd);
    free(es.conns);
    if (es.epfd >= 0)
        close(es.epfd);
    free(buf);
    sv->cpu_ns = thread_cpu_ns() - c0;
    return NULL;
}

/* ---- the client --------------------------------------------------------- */

/* One connection of the client: a message goes out, its echo comes back. */
struct cconn {
    int fd;
    uint32_t sent; /* bytes of the current message written */
    uint32_t got;  /* bytes of its echo read */
    bool want_out; /* registered for EPOLLOUT (a short write) */
};

struct client {
    const struct options *o;
    struct cconn *c;
    int epfd;
    const char *msg; /* the message, size bytes */
    char *rbuf;      /* size bytes */
    uint64_t msgs;   /* echoes received in full */
    int err;
    const char *what;
};

static int client_fail(struct client *cl, const char *what, int err)
{
    if (!cl->err) {
        cl->err = err;
        cl->what = what;
    }
    return -1;
}

static int watch(struct client *cl, uint32_t i, bool out)
{
    struct epoll_event ev;

    ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
    ev.data.u32 = i;
    cl->c[i].want_out = out;
    return epoll_ctl(cl->epfd, EPOLL_CTL_MOD, cl->c[i].fd, &ev);
}

/* Write the rest of connection i's message. */
static int send_rest(struct client *cl, uint32_t i)
{
    struct cconn *c = &cl->c[i];

    while (c->sent < cl->o->size) {
        ssize_t w = write(c->fd, cl->msg + c->sent, cl->o->size - c->sent);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return client_fail(cl, "write", errno);
            if (!c->want_out && watch(cl, i, true) != 0)
                return client_fail(cl, "epoll_ctl", errno);
            return 0;
        }
        c->sent += (uint32_t)w;
    }
    if (c->want_out && watch(cl, i, false) != 0)
        return client_fail(cl, "epoll_ctl", errno);
    return 0;
}

static int client_connect(struct client *cl, int port)
{
    struct sockaddr_in sa;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (uint32_t i = 0; i < cl->o->conns; i++) {
        struct epoll_event ev;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
            return client_fail(cl, "socket", errno);
        cl->c[i].fd = fd;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
            return client_fail(cl, "connect", errno);
        set_nodelay(fd);
        if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
            return client_fail(cl, "fcntl", errno);
        ev.events = EPOLLIN;
        ev.data.u32 = i;
        if (epoll_ctl(cl->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            return client_fail(cl, "epoll_ctl", errno);
    }
    return 0;
}

/* Read what connection i has; count and resend a complete echo (unless
 * stopping). Returns 1 when the connection's last echo is in and it is
 * idle, 0 to go on, -1 on an error. */
static int on_input(struct client *cl, uint32_t i, bool stopping)
{
    struct cconn *c = &cl->c[i];
    ssize_t n = read(c->fd, cl->rbuf + c->got, cl->o->size - c->got);

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : client_fail(cl, "read", errno);
    if (n == 0)
        return client_fail(cl, "read (the server hung up)", ECONNRESET);
    c->got += (uint32_t)n;
    if (c->got < cl->o->size)
        return 0;
    /* A cheap check that the echo is the message: its two ends. */
    if (cl->rbuf[0] != cl->msg[0] || cl->rbuf[cl->o->size - 1] != cl->msg[cl->o->size - 1])
        return client_fail(cl, "checking the echo", EPROTO);
    cl->msgs++;
    c->got = 0;
    c->sent = 0;
    if (stopping)
        return 1;
    return send_rest(cl, i);
}

/* Connect, play ping-pong for the window, drain, hang up. */
static int run_client(struct client *cl, int port, struct result *res)
{
    const struct options *o = cl->o;
    struct epoll_event events[MAX_EVENTS];
    int64_t t0, deadline, t_end = 0, cpu0, cpu_end = 0;
    uint64_t outstanding = o->conns, window_msgs = 0;
    bool stopping = false;

    if (client_connect(cl, port) != 0)
        return -1;
    cpu0 = thread_cpu_ns();
    t0 = bench_now_ns();
    deadline = t0 + (int64_t)o->seconds * 1000000000;
    for (uint32_t i = 0; i < o->conns; i++)
        if (send_rest(cl, i) != 0)
            return -1;
    while (outstanding > 0) {
        int64_t now = bench_now_ns();
        int timeout, n;

        if (!stopping && now >= deadline) {
            stopping = true;
            t_end = now;
            cpu_end = thread_cpu_ns();
            window_msgs = cl->msgs;
        }
        /* Round the wait up to whole ms so it never ends before the
         * deadline; after it, the echoes in flight arrive at once. */
        timeout = stopping ? 10000 : (int)((deadline - now + 999999) / 1000000);
        n = epoll_wait(cl->epfd, events, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return client_fail(cl, "epoll_wait", errno);
        }
        if (n == 0 && stopping)
            return client_fail(cl, "waiting for the last echoes", ETIMEDOUT);
        for (int k = 0; k < n; k++) {
            uint32_t i = events[k].data.u32;
            int r = 0;

            if ((events[k].events & EPOLLOUT) && cl->c[i].sent < o->size)
                r = send_rest(cl, i);
            if (r == 0 && (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                r = on_input(cl, i, stopping);
            if (r < 0)
                return -1;
            outstanding -= (uint64_t)r;
        }
    }
    res->window_msgs = window_msgs;
    res->total_msgs = cl->msgs;
    res->msgs_per_s = (double)window_msgs / ((double)(t_end - t0) / 1e9);
    res->client_cpu_us = window_msgs ? (double)(cpu_end - cpu0) / 1e3 / (double)window_msgs : 0;
    res->client_cpu_pct = 100.0 * (double)(cpu_end - cpu0) / (double)(t_end - t0);
    return 0;
}

static void client_hangup(struct client *cl)
{
    for (uint32_t i = 0; i < cl->o->conns; i++) {
        if (cl->c[i].fd >= 0)
            close(cl->c[i].fd);
        cl->c[i].fd = -1;
        cl->c[i].sent = cl->c[i].got = 0;
        cl->c[i].want_out = false;
    }
}

/* ---- one run ------------------------------------------------------------ */

/* A listening socket on 127.0.0.1, port chosen by the kernel. */
static int listen_loopback(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Start a server of the given kind, run the client against it, stop it. */
static int run_one(enum kind kind, struct client *cl, struct result *res)
{
    struct server sv;
    pthread_t thread;
    uint64_t one = 1;
    int port = 0, r, status = 0;

    memset(&sv, 0, sizeof(sv));
    memset(res, 0, sizeof(*res));
    sv.kind = kind;
    sv.stream = cl->o->stream;
    sv.listen_fd = listen_loopback(&port);
    if (sv.listen_fd < 0) {
        (void)fprintf(stderr, "echo_bench: listen: %s\n", strerror(errno));
        return -1;
    }
    sv.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sv.stop_fd < 0) {
        (void)fprintf(stderr, "echo_bench: eventfd: %s\n", strerror(errno));
        close(sv.listen_fd);
        return -1;
    }
    r = pthread_create(&thread, NULL, kind == WEAVE ? weave_server_thread : epoll_server_thread,
                       &sv);
    if (r != 0) {
        (void)fprintf(stderr, "echo_bench: pthread_create: %s\n", strerror(r));
        close(sv.stop_fd);
        close(sv.listen_fd);
        return -1;
    }

    cl->msgs = 0;
    cl->err = 0;
    if (run_client(cl, port, res) != 0) {
        (void)fprintf(stderr, "echo_bench: %s server: client: %s: %s\n", kind_names[kind], cl->what,
                      strerror(cl->err));
        status = -1;
    }
    client_hangup(cl);

    if (write(sv.stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        (void)fprintf(stderr, "echo_bench: eventfd write: %s\n", strerror(errno));
    pthread_join(thread, NULL);
    close(sv.stop_fd);
    close(sv.listen_fd);
    if (sv.err) {
        (void)fprintf(stderr, "echo_bench: %s server: %s: %s\n", kind_names[kind], sv.what,
                      strerror(sv.err));
        status = -1;
    }
    if (status == 0 && res->total_msgs > 0) {
        double window_s = (double)res->window_msgs / res->msgs_per_s;

        res->server_cpu_us = (double)sv.cpu_ns / 1e3 / (double)res->total_msgs;
        /* The server thread lives a little longer than the window (start,
         * connect, drain, stop); its share of the window's wall time is
         * estimated from its CPU per message and the window's messages. */
        res->server_cpu_pct =
            100.0 * res->server_cpu_us * (double)res->window_msgs / 1e6 / window_s;
    }
    return status;
}

/* ---- output ------------------------------------------------------------- */

static void usage(FILE *f)
{
    (void)fprintf(f,
                  "usage: echo_bench [--connections C] [--size S] [--seconds T] [--runs N] "
                  "[--stream] [--json]\n"
                  "  --connections C  concurrent connections (1..%u, default 100)\n"
                  "  --size S         bytes per message (1..%u, default 64)\n"
                  "  --seconds T      timed window of each run (1..%u, default 5)\n"
                  "  --runs N         weave/epoll pairs, alternating; medians reported (1..%u, "
                  "default 3)\n"
                  "  --stream         the weave server reads through a weave_stream (as\n"
                  "                   demo/echo_server) instead of weave_read\n"
                  "  --json           one JSON object per line instead of the table\n",
                  MAX_CONNS, MAX_SIZE, MAX_SECONDS, MAX_RUNS);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    const struct bench_opt opts[] = {
        {.name = "--json", .flag = &o->json},
        {.name = "--stream", .flag = &o->stream},
        {.name = "--connections",
         .u32 = &o->conns,
         .min = 1,
         .max = MAX_CONNS,
         .bad = "bad value for --connections: '%s'"},
        {.name = "--size",
         .u32 = &o->size,
         .min = 1,
         .max = MAX_SIZE,
         .bad = "bad value for --size: '%s'"},
        {.name = "--seconds",
         .u32 = &o->seconds,
         .min = 1,
         .max = MAX_SECONDS,
         .bad = "bad value for --seconds: '%s'"},
        {.name = "--runs",
         .u32 = &o->runs,
         .min = 1,
         .max = MAX_RUNS,
         .bad = "bad value for --runs: '%s'"},
    };

    o->conns = 100;
    o->size = 64;
    o->seconds = 5;
    o->runs = 3;
    o->json = false;
    o->stream = false;
    bench_parse_args(argc, argv, "echo_bench", usage, opts, sizeof(opts) / sizeof(opts[0]), NULL);
}

/* The median of one column over the runs of one kind. */
static double median_of(const struct result *res, uint32_t runs, size_t offset)
{
    double v[MAX_RUNS];

    for (uint32_t r = 0; r < runs; r++)
        v[r] = *(const double *)(const void *)((const char *)&res[r] + offset);
    qsort(v, runs, sizeof(v[0]), bench_cmp_double);
    return bench_median(v, runs);
}

static void median_result(const struct result *res, uint32_t runs, struct result *m)
{
    memset(m, 0, sizeof(*m));
    m->msgs_per_s = median_of(res, runs, offsetof(struct result, msgs_per_s));
    m->server_cpu_us = median_of(res, runs, offsetof(struct result, server_cpu_us));
    m->server_cpu_pct = median_of(res, runs, offsetof(struct result, server_cpu_pct));
    m->client_cpu_us = median_of(res, runs, offsetof(struct result, client_cpu_us));
    m->client_cpu_pct = median_of(res, runs, offsetof(struct result, client_cpu_pct));
}

static void print_row(const char *label, const char *kind, const struct result *r)
{
    printf("%-8s %-6s %12.0f %12.3f %10.0f%% %12.3f %10.0f%%\n", label, kind, r->msgs_per_s,
           r->server_cpu_us, r->server_cpu_pct, r->client_cpu_us, r->client_cpu_pct);
}

static void print_table(const struct options *o, struct result *const res[NKINDS],
                        const struct result med[NKINDS])
{
    printf("echo_bench: TCP echo over loopback, ping-pong, weave server vs plain epoll server\n");
    printf("parameters: connections=%u, size=%u B, seconds=%u per run, runs=%u (alternating "
           "which server goes first; medians below)\n",
           o->conns, o->size, o->seconds, o->runs);
    printf("client: 1 thread, plain epoll (level-triggered), one message in flight per "
           "connection; servers read %d B at a time; TCP_NODELAY everywhere\n",
           BUF_SIZE);
    printf("weave server: %s\n", o->stream ? "a weave_stream per connection (--stream): peek, "
                                             "weave_write, skip"
                                           : "weave_read and weave_write per connection");
    printf("server CPU: CLOCK_THREAD_CPUTIME_ID of the server thread over its life / messages "
           "echoed; client CPU: over the timed window\n\n");
    printf("%-8s %-6s %12s %12s %11s %12s %11s\n", "run", "server", "messages/s", "server CPU",
           "server CPU", "client CPU", "client CPU");
    printf("%-8s %-6s %12s %12s %11s %12s %11s\n", "", "", "(1/s)", "(us/msg)", "(% wall)",
           "(us/msg)", "(% wall)");
    for (uint32_t r = 0; r < o->runs; r++) {
        char label[16];
        int first = r % 2 == 0 ? WEAVE : EPOLL;

        (void)snprintf(label, sizeof(label), "%u", r + 1);
        for (int k = 0; k < NKINDS; k++) {
            int kind = k == 0 ? first : 1 - first;
            print_row(label, kind_names[kind], &res[kind][r]);
        }
    }
    for (int k = 0; k < NKINDS; k++)
        print_row("median", kind_names[k], &med[k]);
    printf("\nweave (%s switch) / epoll: messages/s %.3f (goal >= %s), server CPU per message "
           "%.3f (lower is better for weave)\n",
           weave_context_backend(), med[WEAVE].msgs_per_s / med[EPOLL].msgs_per_s,
           strcmp(weave_context_backend(), "asm") == 0 ? "0.95" : "0.85",
           med[WEAVE].server_cpu_us / med[EPOLL].server_cpu_us);
}

static void print_json_row(const struct options *o, const char *label, const char *kind,
                           const struct result *r)
{
    printf("{\"bench\":\"echo_bench\",\"run\":%s,\"server\":\"%s\",\"weave_stream\":%s,"
           "\"connections\":%u,"
           "\"size\":%u,\"seconds\":%u,\"msgs_per_s\":%.1f,\"server_cpu_us_per_msg\":%.4f,"
           "\"server_cpu_pct\":%.1f,\"client_cpu_us_per_msg\":%.4f,\"client_cpu_pct\":%.1f}\n",
           label, kind, o->stream ? "true" : "false", o->conns, o->size, o->seconds, r->msgs_per_s,
           r->server_cpu_us, r->server_cpu_pct, r->client_cpu_us, r->client_cpu_pct);
}

static void print_json(const struct options *o, struct result *const res[NKINDS],
                       const struct result med[NKINDS])
{
    for (uint32_t r = 0; r < o->runs; r++) {
        char label[16];

        (void)snprintf(label, sizeof(label), "%u", r + 1);
        for (int k = 0; k < NKINDS; k++)
            print_json_row(o, label, kind_names[k], &res[k][r]);
    }
    for (int k = 0; k < NKINDS; k++)
        print_json_row(o, "\"median\"", kind_names[k], &med[k]);
    printf("{\"bench\":\"echo_bench\",\"run\":\"ratio\",\"connections\":%u,\"size\":%u,"
           "\"seconds\":%u,\"runs\":%u,\"msgs_per_s_weave_over_epoll\":%.4f,"
           "\"server_cpu_weave_over_epoll\":%.4f}\n",
           o->conns, o->size, o->seconds, o->runs, med[WEAVE].msgs_per_s / med[EPOLL].msgs_per_s,
           med[WEAVE].server_cpu_us / med[EPOLL].server_cpu_us);
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct options o;
    struct client cl;
    struct result *res[NKINDS] = {NULL, NULL}, med[NKINDS];
    char *msg = NULL;
    int status = 0;

    parse_args(argc, argv, &o);
    memset(&cl, 0, sizeof(cl));
    cl.o = &o;
    cl.epfd = epoll_create1(EPOLL_CLOEXEC);
    cl.c = calloc(o.conns, sizeof(*cl.c));
    msg = malloc(o.size);
    cl.rbuf = malloc(o.size);
    res[WEAVE] = calloc(o.runs, sizeof(struct result));
    res[EPOLL] = calloc(o.runs, sizeof(struct result));
    if (cl.epfd < 0 || !cl.c || !msg || !cl.rbuf || !res[WEAVE] || !res[EPOLL]) {
        (void)fprintf(stderr, "echo_bench: out of memory or fds\n");
        status = 1;
        goto out;
    }
    for (uint32_t i = 0; i < o.conns; i++)
        cl.c[i].fd = -1;
    for (uint32_t j = 0; j < o.size; j++)
        msg[j] = (char)('a' + j % 26);
    cl.msg = msg;

    for (uint32_t r = 0; r < o.runs && status == 0; r++) {
        int first = r % 2 == 0 ? WEAVE : EPOLL;

        for (int k = 0; k < NKINDS && status == 0; k++) {
            int kind = k == 0 ? first : 1 - first;
            if (run_one((enum kind)kind, &cl, &res[kind][r]) != 0)
                status = 1;
        }
    }
    if (status == 0) {
        for (int k = 0; k < NKINDS; k++)
            median_result(res[k], o.runs, &med[k]);
        if (o.json)
            print_json(&o, res, med);
        else
            print_table(&o, res, med);
        if (fflush(stdout) != 0)
            status = 1;
    }
out:
    if (cl.epfd >= 0)
        close(cl.epfd);
    free(cl.c);
    free(msg);
    free(cl.rbuf);
    free(res[WEAVE]);
    free(res[EPOLL]);
    return status;
}
