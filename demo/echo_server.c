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
 * Usage: echo_server [--host H] [--port P]   (default 127.0.0.1:7000)
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "weave.h"

#define BACKLOG      512
#define EMFILE_PAUSE 50 /* ms to wait after accept runs out of fds */

/* The server's settings and counters, shared by the tasks (one thread: no
 * locking). It lives in main's frame, not in a task's: connection tasks
 * still use it while weave_run cancels them, after server_main returned. */
struct server {
    const char *host;
    const char *port;
    int caught; /* SIGINT or SIGTERM, once one came */
    int err;    /* 1 if the server could not start */
    int listen_fd;
    weave_group *conns; /* the connection tasks */
    uint64_t accepted;  /* connections accepted so far */
    uint64_t active;    /* connections being served now */
    uint64_t bytes;     /* bytes echoed */
    uint64_t emfile;    /* times accept ran out of fds */
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

static void print_bound(int fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    char host[NI_MAXHOST], port[NI_MAXSERV];

    memset(&sa, 0, sizeof(sa));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 ||
        getnameinfo((struct sockaddr *)&sa, len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        printf("echo_server: listening\n");
        return;
    }
    printf("echo_server: listening on %s%s%s port %s (Ctrl-C to stop)\n",
           sa.ss_family == AF_INET6 ? "[" : "", host, sa.ss_family == AF_INET6 ? "]" : "", port);
}

static void *server_main(void *arg)
{
    struct server *srv = arg;
    weave_task *acceptor;
    weave_shield shield;

    (void)weave_cancel_on_signals(&srv->caught);
    srv->listen_fd = weave_tcp_listen(srv->host, srv->port, BACKLOG);
    if (srv->listen_fd < 0) {
        (void)fprintf(stderr, "echo_server: cannot listen on %s:%s: %s\n",
                      srv->host ? srv->host : "*", srv->port, strerror(errno));
        srv->err = 1;
        return NULL;
    }
    print_bound(srv->listen_fd);
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
    printf("\necho_server: %s, stopping: %llu connections served, %llu still open, %llu bytes "
           "echoed\n",
           srv->caught == SIGINT    ? "SIGINT"
           : srv->caught == SIGTERM ? "SIGTERM"
                                    : "accept failed",
           (unsigned long long)srv->accepted, (unsigned long long)srv->active,
           (unsigned long long)srv->bytes);
    (void)weave_cancel(acceptor);
    (void)weave_join(acceptor, NULL);
    weave_close(srv->listen_fd);
    /* Cancel the connections and wait until each has closed its socket. */
    (void)weave_group_free(srv->conns);
    printf("echo_server: every connection closed\n");
    weave_shield_end(&shield);
    return NULL;
}

static _Noreturn void usage(int status)
{
    (void)fprintf(status ? stderr : stdout,
                  "usage: echo_server [--host H] [--port P]   (default 127.0.0.1:7000;\n"
                  "       --host '' listens on every address, --port 0 picks a free port)\n");
    exit(status);
}

int main(int argc, char **argv)
{
    struct server srv = {"127.0.0.1", "7000", 0, 0, -1, NULL, 0, 0, 0, 0};

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            srv.host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            srv.port = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            usage(0);
        else
            usage(2);
    }
    (void)setvbuf(stdout, NULL, _IOLBF, 0);

    if (weave_run(server_main, &srv, NULL) != 0) {
        if (errno == EINTR) /* stopped by a signal: say so, as the shell expects */
            return srv.err ? 1 : 128 + srv.caught;
        perror("echo_server: weave_run");
        return 1;
    }
    return srv.err;
}
