/*
 * echo_server.c - a TCP echo server, one task per connection.
 *
 * Every connection gets a task that reads (through a weave_stream, which
 * holds a buffer only while data is in flight) and writes back until the
 * peer hangs up; the code reads like the blocking server one would write
 * with a thread per connection, but everything runs on one thread.
 *
 * Three details a real server needs:
 *
 *   - Running out of fds. accept fails with EMFILE (or ENFILE) while the
 *     connection stays queued, so retrying at once would spin. The accept
 *     loop sleeps briefly instead, letting other connections finish and
 *     free their fds, then tries again.
 *   - Stopping. weave_cancel_on_signals turns Ctrl-C (SIGINT) and SIGTERM
 *     into cancellation of the main task, as asyncio.run does. The main
 *     task then cleans up in a shield: it cancels the accept loop, and
 *     weave_group_free cancels the connections (detached members of one
 *     group, which holds memory only for the connections open) and waits
 *     until each has closed its socket. A second Ctrl-C ends the process
 *     at once.
 *   - The bound port is printed, so "--port 0" works for scripts.
 *
 * A scheduler per core (--threads N, by default one per online CPU): N
 * schedulers on N threads (weave_run_threads), each running the server
 * above with a listening socket of its own on the same port
 * (WEAVE_LISTEN_REUSEPORT); the kernel spreads connections among them, and
 * a connection stays on the scheduler that accepted it. Scheduler 0
 * chooses the port (--port 0 included) and sends it to the others through
 * a shared channel. Ctrl-C stops every scheduler, each cancelling its own
 * connections; the stop lines add up their figures. --threads 1 is the
 * plain weave_run server.
 *
 * Usage: echo_server [--host H] [--port P] [--threads N]
 *        (default 127.0.0.1:7000, one scheduler per online CPU)
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weave.h"

#define BACKLOG      512
#define EMFILE_PAUSE 50 /* ms to wait after accept runs out of fds */

/* The settings, shared by every scheduler (read only while they run). */
struct config {
    const char *host;
    const char *port;
    unsigned threads;       /* schedulers, each on a thread of its own */
    weave_chan *port_chan;  /* scheduler 0 -> the others: the port, char[NI_MAXSERV] */
    weave_chan *ready_chan; /* the others -> scheduler 0: 0 listening, or an errno */
};

/* One scheduler's server: its counters, shared by its tasks (one thread:
 * no locking). It lives in main's memory, not in a task's frame:
 * connection tasks still use it while weave_run cancels them, after
 * server_main returned. */
struct server {
    const struct config *cfg;
    unsigned index; /* of its scheduler, 0 .. threads-1 */
    int caught;     /* SIGINT or SIGTERM, once one came */
    int err;        /* 1 if the server could not start */
    bool stopped;   /* it served, and has stopped: the figures below count */
    int listen_fd;
    weave_group *conns;                   /* the connection tasks */
    uint64_t accepted;                    /* connections accepted so far */
    uint64_t active;                      /* connections being served now */
    uint64_t bytes;                       /* bytes echoed */
    uint64_t emfile;                      /* times accept ran out of fds */
    uint64_t open_at_stop, bytes_at_stop; /* active and bytes when the stop came */
};

struct conn {
    struct server *srv;
    int fd;
};

static void *serve_conn(void *arg)
{
    struct conn *c = arg;
    weave_stream *in = weave_stream_new(c->fd, NULL);
    const void *data;
    ssize_t n;

    /* Write back what the stream's buffer holds, then consume it; until EOF,
     * an error such as ECONNRESET, or ECANCELED at shutdown. */
    while (in && (n = weave_stream_peek(in, 1, &data)) > 0 &&
           weave_write(c->fd, data, (size_t)n) == n)
        c->srv->bytes += (uint64_t)weave_stream_skip(in, n);
    (void)(in ? weave_stream_close(in) : weave_close(c->fd));
    c->srv->active--;
    free(c);
    return NULL;
}

static void *accept_loop(void *arg)
{
    struct server *srv = arg;

    for (;;) {
        struct conn *c;
        int fd = weave_accept(srv->listen_fd, NULL, NULL);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The connection stays queued; try again once others
                 * have had time to finish. */
                if (srv->emfile++ == 0)
                    (void)fprintf(stderr, "echo_server: accept: %s; pausing %d ms\n",
                                  strerror(errno), EMFILE_PAUSE);
                if (weave_sleep(EMFILE_PAUSE) != 0)
                    break;
                continue;
            }
            if (errno == ECONNABORTED || errno == EPERM || errno == EPROTO)
                continue; /* that connection is gone; the next one may be fine */
            if (errno != ECANCELED)
                (void)fprintf(stderr, "echo_server: accept: %s\n", strerror(errno));
            break;
        }
        c = malloc(sizeof(*c));
        if (c) {
            c->srv = srv;
            c->fd = fd;
        }
        if (!c || !weave_group_spawn_detached(srv->conns, serve_conn, c)) {
            weave_close(fd); /* no memory for this one: refuse it */
            free(c);
            continue;
        }
        srv->accepted++;
        srv->active++;
    }
    return NULL;
}

/* How start_listening went. */
enum { LISTENING, FAILED, STOPPED };

/* The address fd is bound to, numeric, into host and port. */
static int bound_to(int fd, struct sockaddr_storage *sa, char host[NI_MAXHOST],
                    char port[NI_MAXSERV])
{
    socklen_t len = sizeof(*sa);

    memset(sa, 0, sizeof(*sa));
    if (getsockname(fd, (struct sockaddr *)sa, &len) != 0)
        return -1;
    return getnameinfo((struct sockaddr *)sa, len, host, NI_MAXHOST, port, NI_MAXSERV,
                       NI_NUMERICHOST | NI_NUMERICSERV) == 0
               ? 0
               : -1;
}

/*
 * Scheduler 0's port, when there are several: SO_REUSEPORT lets any socket
 * of the same user join a port, so a second copy of this server would share
 * the port with the first instead of failing. So the port is taken first
 * without SO_REUSEPORT, which fails with EADDRINUSE if anyone listens there
 * (and picks the port for --port 0), then given back for the sockets that
 * share it. Returns 0 with the port in port, or -1 with errno.
 */
static int choose_port(const struct config *cfg, char port[NI_MAXSERV])
{
    struct sockaddr_storage sa;
    char host[NI_MAXHOST];
    int fd = weave_tcp_listen(cfg->host, cfg->port, BACKLOG), r;

    if (fd < 0)
        return -1;
    r = bound_to(fd, &sa, host, port);
    weave_close(fd);
    return r;
}

/*
 * Listen as scheduler srv->index. One scheduler listens on --port. With
 * several, scheduler 0 chooses the port and sends it to the others through
 * a shared channel; each listens on it with SO_REUSEPORT and answers on a
 * second channel; scheduler 0 prints the listening line once all have, so
 * that a client that read it reaches every scheduler. Returns LISTENING;
 * FAILED (said on stderr); or STOPPED: Ctrl-C came first, or scheduler 0
 * could not listen (and said so).
 */
static int start_listening(struct server *srv)
{
    const struct config *cfg = srv->cfg;
    char port[NI_MAXSERV], host[NI_MAXHOST];
    struct sockaddr_storage sa;
    unsigned listening = 1;
    int err = 0;

    if (cfg->threads == 1) {
        srv->listen_fd = weave_tcp_listen(cfg->host, cfg->port, BACKLOG);
    } else if (srv->index > 0) {
        if (weave_chan_recv(cfg->port_chan, port) != 0)
            return STOPPED; /* EPIPE: scheduler 0 could not listen; ECANCELED */
        srv->listen_fd = weave_tcp_listen_with(cfg->host, port, BACKLOG, WEAVE_LISTEN_REUSEPORT);
    } else if (choose_port(cfg, port) != 0) {
        srv->listen_fd = -1;
    } else {
        srv->listen_fd = weave_tcp_listen_with(cfg->host, port, BACKLOG, WEAVE_LISTEN_REUSEPORT);
    }
    if (srv->listen_fd < 0) {
        err = errno;
        (void)fprintf(stderr, "echo_server: cannot listen on %s:%s: %s\n",
                      cfg->host ? cfg->host : "*", srv->index > 0 ? port : cfg->port,
                      strerror(err));
    }
    if (srv->index > 0) {
        (void)weave_chan_send(cfg->ready_chan, &err); /* room for all: never waits */
        return err ? FAILED : LISTENING;
    }
    if (err) {
        if (cfg->port_chan)
            (void)weave_chan_close(cfg->port_chan); /* the others stop */
        return FAILED;
    }
    for (unsigned i = 1; i < cfg->threads; i++)
        (void)weave_chan_send(cfg->port_chan, port);
    for (unsigned i = 1; i < cfg->threads; i++) {
        if (weave_chan_recv(cfg->ready_chan, &err) != 0) { /* stopped meanwhile */
            weave_close(srv->listen_fd);
            return STOPPED;
        }
        listening += err == 0;
    }
    if (bound_to(srv->listen_fd, &sa, host, port) != 0)
        printf("echo_server: listening\n");
    else if (cfg->threads == 1)
        printf("echo_server: listening on %s%s%s port %s (Ctrl-C to stop)\n",
               sa.ss_family == AF_INET6 ? "[" : "", host, sa.ss_family == AF_INET6 ? "]" : "",
               port);
    else
        printf("echo_server: listening on %s%s%s port %s, %u of %u schedulers (Ctrl-C to stop)\n",
               sa.ss_family == AF_INET6 ? "[" : "", host, sa.ss_family == AF_INET6 ? "]" : "", port,
               listening, cfg->threads);
    return LISTENING;
}

/* The stop lines' first half: the figures when the stop came. */
static void print_stopping(int caught, uint64_t accepted, uint64_t open, uint64_t bytes)
{
    printf("\necho_server: %s, stopping: %llu connections served, %llu still open, %llu bytes "
           "echoed\n",
           caught == SIGINT    ? "SIGINT"
           : caught == SIGTERM ? "SIGTERM"
                               : "accept failed",
           (unsigned long long)accepted, (unsigned long long)open, (unsigned long long)bytes);
}

static void *server_main(void *arg)
{
    struct server *srv = arg;
    bool alone = srv->cfg->threads == 1;
    weave_task *acceptor;
    weave_shield shield;
    int how;

    (void)weave_cancel_on_signals(&srv->caught);
    if ((how = start_listening(srv)) != LISTENING) {
        srv->err = how == FAILED;
        return NULL;
    }
    if (!(srv->conns = weave_group_new()) || !(acceptor = weave_spawn(accept_loop, srv))) {
        (void)fprintf(stderr, "echo_server: %s\n", strerror(errno));
        weave_group_free(srv->conns);
        weave_close(srv->listen_fd);
        srv->err = 1;
        return NULL;
    }

    /* Serve until Ctrl-C cancels this task (or the accept loop fails). */
    (void)weave_join(acceptor, NULL);

    /* The cleanup still waits: a shield keeps the cancellation out of it. */
    weave_shield_begin(&shield);
    srv->stopped = true;
    srv->open_at_stop = srv->active;
    srv->bytes_at_stop = srv->bytes;
    if (alone) /* with several schedulers, main prints their sums at the end */
        print_stopping(srv->caught, srv->accepted, srv->active, srv->bytes);
    (void)weave_cancel(acceptor);
    (void)weave_join(acceptor, NULL);
    weave_close(srv->listen_fd);
    /* Cancel the connections and wait until each has closed its socket. */
    (void)weave_group_free(srv->conns);
    if (alone)
        printf("echo_server: every connection closed\n");
    weave_shield_end(&shield);
    return NULL;
}

static void *server_main_indexed(unsigned index, void *arg)
{
    struct server *srv = (struct server *)arg + index;

    return server_main(srv);
}

static _Noreturn void usage(int status)
{
    (void)fprintf(status ? stderr : stdout,
                  "usage: echo_server [--host H] [--port P] [--threads N]\n"
                  "       (default 127.0.0.1:7000; --host '' listens on every address, --port 0\n"
                  "       picks a free port; N schedulers on N threads share the port, 1..%d,\n"
                  "       default one per online CPU)\n",
                  WEAVE_THREADS_MAX);
    exit(status);
}

/* Run the servers: one on this thread (weave_run), or cfg->threads of them
 * (weave_run_threads). Returns what that returned. */
static int run(struct config *cfg, struct server *srv)
{
    if (cfg->threads == 1)
        return weave_run(server_main, srv, NULL);
    cfg->port_chan = weave_chan_new_shared(NI_MAXSERV, cfg->threads - 1);
    cfg->ready_chan = weave_chan_new_shared(sizeof(int), cfg->threads - 1);
    if (!cfg->port_chan || !cfg->ready_chan) {
        perror("echo_server: weave_chan_new_shared");
        exit(1);
    }
    return weave_run_threads(cfg->threads, NULL, server_main_indexed, srv);
}

int main(int argc, char **argv)
{
    struct config cfg = {"127.0.0.1", "7000", 1, NULL, NULL};
    struct server *srv, sum;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int rc, err;

    memset(&sum, 0, sizeof(sum));
    cfg.threads = cpus < 1 ? 1 : cpus > WEAVE_THREADS_MAX ? WEAVE_THREADS_MAX : (unsigned)cpus;
    for (int i = 1; i < argc; i++) {
        uint64_t n;
        char *end;

        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            cfg.host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            cfg.port = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            errno = 0;
            n = strtoull(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || argv[i][0] == '-' || n < 1 ||
                n > WEAVE_THREADS_MAX)
                usage(2);
            cfg.threads = (unsigned)n;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(0);
        } else {
            usage(2);
        }
    }
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    if (!(srv = calloc(cfg.threads, sizeof(*srv)))) {
        perror("echo_server");
        return 1;
    }
    for (unsigned i = 0; i < cfg.threads; i++) {
        srv[i].cfg = &cfg;
        srv[i].index = i;
        srv[i].listen_fd = -1;
    }

    rc = run(&cfg, srv);
    err = errno;
    for (unsigned i = 0; i < cfg.threads; i++) {
        sum.stopped |= srv[i].stopped;
        sum.err |= srv[i].err;
        sum.caught = sum.caught ? sum.caught : srv[i].caught;
        sum.accepted += srv[i].accepted;
        sum.open_at_stop += srv[i].open_at_stop;
        sum.bytes_at_stop += srv[i].bytes_at_stop;
    }
    if (cfg.threads > 1 && sum.stopped) {
        print_stopping(sum.caught, sum.accepted, sum.open_at_stop, sum.bytes_at_stop);
        printf("echo_server: every connection closed (%u schedulers)\n", cfg.threads);
    }
    if (cfg.port_chan)
        (void)weave_chan_free(cfg.port_chan);
    if (cfg.ready_chan)
        (void)weave_chan_free(cfg.ready_chan);
    free(srv);
    if (rc != 0) {
        if (err == EINTR) /* stopped by a signal: say so, as the shell expects */
            return sum.err ? 1 : 128 + sum.caught;
        errno = err;
        perror(cfg.threads == 1 ? "echo_server: weave_run" : "echo_server: weave_run_threads");
        return 1;
    }
    return sum.err;
}
