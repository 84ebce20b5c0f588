/*
 * tut_server.c - the tutorial's last step: a small line server on buffered
 * streams, stopped gracefully by Ctrl-C.
 *
 * The server answers each line with its length and the line in capitals.
 * Each connection is a task that reads through a weave_stream: a line at
 * a time, at most 64 bytes, with 2 s to send each one. For the tutorial,
 * the clients run in the same program (one after another, so the output
 * is always in the same order), and the program sends itself SIGINT once
 * they are done, leaving one client connected and idle: Ctrl-C without a
 * terminal.
 *
 * Shutdown is asyncio.run's: weave_cancel_on_signals makes the first
 * SIGINT cancel the main task; it cleans up inside a shield (stop
 * accepting, cancel the connections, wait until each has closed), and
 * weave_run returns -1 with EINTR. A real server would exit with
 * 128 + the signal (130); this one exits 0 so that the tutorial's check
 * can run it.
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weave.h"

#define LINE_MAX_BYTES 64

struct server {
    int listen_fd;
    char port[16];
    weave_group *conns; /* one detached task per connection */
    int served, open;
    int caught; /* the signal that stopped us */
};

struct conn {
    struct server *srv;
    int fd;
};

/* One connection: a line in, its length and capitals out, until EOF. */
static void *serve(void *arg)
{
    struct conn *c = arg;
    struct server *srv = c->srv;
    weave_stream_opts opts = {0};
    weave_stream *s;
    char line[LINE_MAX_BYTES + 2];
    ssize_t n;

    opts.line_max = LINE_MAX_BYTES;
    s = weave_stream_new(c->fd, &opts);
    if (!s)
        weave_close(c->fd);
    free(c);
    if (!s)
        return NULL;
    srv->served++;
    srv->open++;
    (void)weave_stream_set_timeout(s, 2000); /* each line within 2 s */
    while ((n = weave_stream_read_line(s, line, sizeof(line))) > 0) {
        size_t len = strcspn(line, "\r\n");

        for (size_t i = 0; i < len; i++)
            line[i] = (char)toupper((unsigned char)line[i]);
        line[len] = '\0';
        if (weave_stream_printf(s, "%zu %s\n", len, line) < 0 || weave_stream_flush(s) < 0)
            break;
    }
    if (n == 0)
        printf("server: connection closed by the client\n");
    else if (errno == ECANCELED)
        printf("server: connection cancelled: the server is stopping\n");
    else if (errno == EMSGSIZE && weave_stream_printf(s, "line too long\n") >= 0)
        printf("server: a line over %d bytes: refused, connection closed\n", LINE_MAX_BYTES);
    else
        printf("server: connection failed: %s\n", strerror(errno));
    (void)weave_stream_close(s); /* flushes, then closes */
    srv->open--;
    return NULL;
}

/* Accept forever: each connection gets a task in the group. */
static void *acceptor(void *arg)
{
    struct server *srv = arg;

    for (;;) {
        struct conn *c = malloc(sizeof(*c));

        if (!c || (c->fd = weave_accept(srv->listen_fd, NULL, NULL)) < 0) {
            free(c); /* ECANCELED: the server is stopping */
            return NULL;
        }
        c->srv = srv;
        if (!weave_group_spawn_detached(srv->conns, serve, c)) {
            weave_close(c->fd);
            free(c);
        }
    }
}

/* A client: connect, send each line, print the answers. */
static void client(struct server *srv, const char *const *lines, weave_stream **keep)
{
    int fd = weave_tcp_connect("127.0.0.1", srv->port, 1000);
    weave_stream *s = fd >= 0 ? weave_stream_new(fd, NULL) : NULL;
    char answer[128];

    if (!s) {
        perror("client");
        return;
    }
    for (; *lines; lines++) {
        (void)weave_stream_printf(s, "%s\n", *lines);
        (void)weave_stream_flush(s);
        if (weave_stream_read_line(s, answer, sizeof(answer)) <= 0)
            break;
        printf("client: sent \"%s\", got \"%.*s\"\n", *lines, (int)strcspn(answer, "\n"), answer);
    }
    if (keep)
        *keep = s; /* stays connected, idle */
    else
        (void)weave_stream_close(s);
}

static void *server_main(void *arg)
{
    static const char *const first[] = {"hello", "weave", NULL};
    static const char *const second[] = {
        "this line is longer than the 64 bytes the server takes, so it is refused", NULL};
    static const char *const third[] = {"still here", NULL};
    struct server *srv = arg;
    weave_task *acc;
    weave_stream *idle = NULL;
    weave_shield shield;

    (void)weave_cancel_on_signals(&srv->caught);
    srv->listen_fd = weave_tcp_listen("127.0.0.1", "0", 64);
    srv->conns = weave_group_new();
    if (srv->listen_fd < 0 || !srv->conns || !(acc = weave_spawn(acceptor, srv))) {
        perror("server");
        return NULL;
    }
    {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);

        (void)getsockname(srv->listen_fd, (struct sockaddr *)&sa, &len);
        (void)snprintf(srv->port, sizeof(srv->port), "%u",
                       ntohs(((struct sockaddr_in *)&sa)->sin_port));
    }
    printf("server: listening on 127.0.0.1:%s\n", srv->port);

    client(srv, first, NULL);
    client(srv, second, NULL);
    client(srv, third, &idle);
    (void)weave_sleep(50); /* let the server print the closes */
    printf("main: %d connections served, %d open; sending myself SIGINT\n", srv->served, srv->open);
    (void)kill(getpid(), SIGINT);

    /* Wait for the acceptor: forever, until the signal cancels this task. */
    if (weave_join(acc, NULL) != 0 && errno == ECANCELED)
        printf("main: cancelled by SIGINT, cleaning up\n");

    weave_shield_begin(&shield); /* the cleanup waits, so keep cancellation out */
    (void)weave_cancel(acc);
    (void)weave_join(acc, NULL);
    weave_close(srv->listen_fd);
    (void)weave_group_free(srv->conns); /* cancels the connections, waits for them */
    printf("main: every connection closed (%d open)\n", srv->open);
    weave_shield_end(&shield);
    if (idle)
        (void)weave_stream_close(idle);
    return NULL;
}

int main(void)
{
    struct server srv = {.listen_fd = -1};

    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    if (weave_run(server_main, &srv, NULL) != 0 && errno == EINTR) {
        printf("weave_run: stopped by %s\n", strsignal(srv.caught));
        return 0; /* a real server: return 128 + srv.caught */
    }
    printf("weave_run: ended without a signal\n");
    return 1;
}
