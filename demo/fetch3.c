/*
 * fetch3.c - the asyncio tutorial's motivating story: three slow fetches,
 * first one after another, then at the same time.
 *
 * A second thread runs its own weave_run with three tiny HTTP servers on
 * 127.0.0.1 (ports chosen by the kernel). Each answers every request after
 * a fixed delay: server 1 after 1 s, server 2 after 3 s, server 3 after
 * 1 s. The main thread's weave_run then fetches one page from each server:
 *
 *   1. one after another, in one task: each fetch waits for the one before,
 *      so the delays add up (about 1 + 3 + 1 = 5 s);
 *   2. concurrently, one task per fetch: the waits overlap and the whole
 *      lasts as long as the slowest server (about 3 s).
 *
 * The code of one fetch is the same in both parts and reads top to bottom:
 * weave_tcp_connect, weave_write the request, weave_read until the server
 * closes. Only the way the fetches are started differs, as in asyncio:
 *
 *     async def main():                         # part 1
 *         for url in urls:
 *             await fetch(url)
 *
 *     async def main():                         # part 2
 *         async with asyncio.TaskGroup() as tg:
 *             for url in urls:
 *                 tg.create_task(fetch(url))
 *
 * Usage: fetch3 [--delay-ms N]   (the 1 s unit, default 1000: delays are
 *                                 N, 3N and N milliseconds)
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "weave.h"

#define NSERVERS      3
#define CONNECT_MS    10000 /* give up on a connection after this long */
#define REQUEST_LIMIT 4096  /* bytes of request the servers read at most */

/* The server thread's side: three listeners and what they answer. */
struct servers {
    int64_t delay_ms[NSERVERS]; /* how long each server waits before answering */
    int port[NSERVERS];         /* bound ports, once ready */
    int stop_rd;                /* read end of the stop pipe (server thread's) */
    pthread_mutex_t lock;       /* guards ready, err, what */
    pthread_cond_t cond;        /* signalled when ready or failed */
    int ready;                  /* 1: ports are set; -1: start-up failed */
    int err;                    /* errno of the failure */
    const char *what;           /* the call that failed */
};

/* One listener's accept loop. */
struct listener {
    int fd;
    int index; /* 0-based server number */
    int64_t delay_ms;
};

/* One accepted connection, owned (and freed) by its task. */
struct conn {
    int fd;
    int index;
    int64_t delay_ms;
};

/* One fetch by the client. */
struct fetch {
    int index; /* 0-based server number */
    int port;
    int64_t origin_ms; /* start of the part, for the elapsed column */
    int err;           /* errno of a failure, 0 if none */
    const char *what;  /* the call that failed */
};

/* ---- the servers (second thread) ---------------------------------------- */

/* Read the request up to its blank line (or REQUEST_LIMIT bytes, or EOF),
 * wait the server's delay, answer and hang up. */
static void *serve_conn(void *arg)
{
    struct conn *c = arg;
    char req[REQUEST_LIMIT + 1];
    size_t len = 0;
    char body[96], resp[256];
    int blen, rlen;

    while (len < REQUEST_LIMIT) {
        ssize_t n = weave_read(c->fd, req + len, REQUEST_LIMIT - len);
        if (n <= 0)
            goto out; /* the client went away, or we are shutting down */
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    if (weave_sleep(c->delay_ms) != 0)
        goto out;
    blen = snprintf(body, sizeof(body), "hello from server %d, after %lld ms\n", c->index + 1,
                    (long long)c->delay_ms);
    rlen = snprintf(resp, sizeof(resp),
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                    "Connection: close\r\n\r\n%s",
                    blen, body);
    (void)weave_write(c->fd, resp, (size_t)rlen);
out:
    weave_close(c->fd);
    free(c);
    return NULL;
}

static void *accept_loop(void *arg)
{
    struct listener *l = arg;

    for (;;) {
        struct conn *c;
        weave_task *t;
        int fd = weave_accept(l->fd, NULL, NULL);

        if (fd < 0) {
            if (errno == ECANCELED || errno == EBADF)
                break;
            /* EMFILE and friends: let connections finish, then retry. */
            if (weave_sleep(10) != 0)
                break;
            continue;
        }
        c = malloc(sizeof(*c));
        if (c) {
            c->fd = fd;
            c->index = l->index;
            c->delay_ms = l->delay_ms;
        }
        if (!c || !(t = weave_spawn(serve_conn, c))) {
            weave_close(fd);
            free(c);
            continue;
        }
        (void)weave_detach(t);
    }
    return NULL;
}

static void servers_publish(struct servers *sv, int ready, const char *what, int err)
{
    pthread_mutex_lock(&sv->lock);
    sv->ready = ready;
    sv->what = what;
    sv->err = err;
    pthread_cond_signal(&sv->cond);
    pthread_mutex_unlock(&sv->lock);
}

/* The server thread's first task: listen, announce the ports, serve until
 * the stop pipe is closed. */
static void *servers_main(void *arg)
{
    struct servers *sv = arg;
    struct listener ls[NSERVERS];
    weave_task *tasks[NSERVERS] = {NULL, NULL, NULL};
    const char *what = NULL;
    int err = 0, n = 0;
    char byte;

    for (; n < NSERVERS; n++) {
        struct sockaddr_in sa;
        socklen_t salen = sizeof(sa);

        memset(&sa, 0, sizeof(sa));
        ls[n].index = n;
        ls[n].delay_ms = sv->delay_ms[n];
        ls[n].fd = weave_tcp_listen("127.0.0.1", "0", 16);
        if (ls[n].fd < 0) {
            what = "weave_tcp_listen";
            err = errno;
            break;
        }
        if (getsockname(ls[n].fd, (struct sockaddr *)&sa, &salen) != 0) {
            what = "getsockname";
            err = errno;
            weave_close(ls[n].fd);
            break;
        }
        sv->port[n] = ntohs(sa.sin_port);
        if (!(tasks[n] = weave_spawn(accept_loop, &ls[n]))) {
            what = "weave_spawn";
            err = errno;
            weave_close(ls[n].fd);
            break;
        }
    }
    if (what) {
        servers_publish(sv, -1, what, err);
    } else {
        servers_publish(sv, 1, NULL, 0);
        /* The client closes the write end when it is done: EOF here. */
        (void)weave_read(sv->stop_rd, &byte, 1);
    }
    for (int i = 0; i < n; i++) {
        (void)weave_cancel(tasks[i]);
        (void)weave_join(tasks[i], NULL);
        weave_close(ls[i].fd);
    }
    weave_close(sv->stop_rd);
    sv->stop_rd = -1;
    /* Connections still being served are cancelled by weave_run. */
    return NULL;
}

static void *servers_thread(void *arg)
{
    struct servers *sv = arg;

    if (weave_run(servers_main, sv, NULL) != 0) {
        int err = errno;

        pthread_mutex_lock(&sv->lock);
        if (sv->ready == 0) {
            sv->ready = -1;
            sv->what = "weave_run";
            sv->err = err;
            pthread_cond_signal(&sv->cond);
        }
        pthread_mutex_unlock(&sv->lock);
    }
    if (sv->stop_rd >= 0)
        close(sv->stop_rd); /* servers_main never ran */
    return NULL;
}

/* ---- the client (main thread) ------------------------------------------- */

static double since_s(int64_t origin_ms)
{
    return (double)(weave_now() - origin_ms) / 1000.0;
}

static void print_clock(const char *what)
{
    time_t now = time(NULL);
    struct tm tm;
    char buf[16];

    if (!localtime_r(&now, &tm) || strftime(buf, sizeof(buf), "%H:%M:%S", &tm) == 0)
        (void)snprintf(buf, sizeof(buf), "@%lld", (long long)now);
    printf("%s at %s\n", what, buf);
}

static int fetch_fail(struct fetch *f, const char *what)
{
    f->err = errno;
    f->what = what;
    return -1;
}

/* GET / from server f->index and print the status line and body. */
static int fetch(struct fetch *f)
{
    char port[16], req[128], resp[1024];
    const char *status_end, *body;
    size_t len = 0;
    int64_t start = weave_now();
    int fd, rlen;

    (void)snprintf(port, sizeof(port), "%d", f->port);
    fd = weave_tcp_connect("127.0.0.1", port, CONNECT_MS);
    if (fd < 0)
        return fetch_fail(f, "weave_tcp_connect");
    rlen = snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n", port);
    if (weave_write(fd, req, (size_t)rlen) != rlen) {
        fetch_fail(f, "weave_write");
        weave_close(fd);
        return -1;
    }
    /* The server closes the connection after its answer. */
    for (;;) {
        ssize_t n = weave_read(fd, resp + len, sizeof(resp) - 1 - len);
        if (n < 0) {
            fetch_fail(f, "weave_read");
            weave_close(fd);
            return -1;
        }
        if (n == 0 || (len += (size_t)n) == sizeof(resp) - 1)
            break;
    }
    weave_close(fd);
    resp[len] = '\0';

    status_end = strstr(resp, "\r\n");
    body = strstr(resp, "\r\n\r\n");
    if (!status_end || !body) {
        errno = EPROTO;
        return fetch_fail(f, "parsing the answer");
    }
    body += 4;
    printf("  [%6.3f s] server %d (port %d) answered in %.3f s: %.*s: %.*s\n",
           since_s(f->origin_ms), f->index + 1, f->port, since_s(start), (int)(status_end - resp),
           resp, (int)strcspn(body, "\n"), body);
    return 0;
}

static void *fetch_task(void *arg)
{
    (void)fetch(arg);
    return NULL;
}

/* What the client's first task needs. */
struct client {
    const struct servers *sv;
    int err;          /* errno of the first failure, 0 if none */
    const char *what; /* the call that failed */
};

static void client_fail(struct client *c, const char *what, int err)
{
    if (!c->err) {
        c->err = err;
        c->what = what;
    }
}

static void fetch_init(struct fetch *f, const struct servers *sv, int i, int64_t origin)
{
    f->index = i;
    f->port = sv->port[i];
    f->origin_ms = origin;
    f->err = 0;
    f->what = NULL;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct fetch f[NSERVERS];
    weave_task *tasks[NSERVERS] = {NULL, NULL, NULL};
    int64_t origin;

    printf("=== Part 1: one after another (each fetch waits for the one before) ===\n");
    print_clock("started");
    origin = weave_now();
    for (int i = 0; i < NSERVERS; i++) {
        fetch_init(&f[i], c->sv, i, origin);
        if (fetch(&f[i]) != 0) {
            client_fail(c, f[i].what, f[i].err);
            return NULL;
        }
    }
    print_clock("finished");
    printf("Total time: %.2f s\n\n", since_s(origin));

    printf("=== Part 2: concurrently (one weave task per fetch) ===\n");
    print_clock("started");
    origin = weave_now();
    for (int i = 0; i < NSERVERS; i++) {
        fetch_init(&f[i], c->sv, i, origin);
        if (!(tasks[i] = weave_spawn(fetch_task, &f[i]))) {
            client_fail(c, "weave_spawn", errno);
            break;
        }
    }
    for (int i = 0; i < NSERVERS; i++) {
        if (tasks[i] && weave_join(tasks[i], NULL) != 0)
            client_fail(c, "weave_join", errno);
        if (f[i].err)
            client_fail(c, f[i].what, f[i].err);
    }
    if (!c->err) {
        print_clock("finished");
        printf("Total time: %.2f s\n", since_s(origin));
    }
    return NULL;
}

static int parse_delay(int argc, char **argv, int64_t *delay_ms)
{
    *delay_ms = 1000;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        char *end;
        long long n;

        if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc)
            v = argv[++i];
        else if (strncmp(argv[i], "--delay-ms=", 11) == 0)
            v = argv[i] + 11;
        else
            return -1;
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < 0 || n > 600000)
            return -1;
        *delay_ms = n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct servers sv;
    struct client cl = {&sv, 0, NULL};
    pthread_t thread;
    int64_t unit;
    int stop[2], r, status = 0;

    if (parse_delay(argc, argv, &unit) != 0) {
        (void)fprintf(stderr, "usage: fetch3 [--delay-ms N]   (N: 0..600000, default 1000;\n"
                              "       the servers answer after N, 3N and N ms)\n");
        return 2;
    }
    (void)setvbuf(stdout, NULL, _IOLBF, 0);

    memset(&sv, 0, sizeof(sv));
    sv.delay_ms[0] = unit;
    sv.delay_ms[1] = 3 * unit;
    sv.delay_ms[2] = unit;
    if (pipe2(stop, O_CLOEXEC) != 0) {
        perror("fetch3: pipe2");
        return 1;
    }
    sv.stop_rd = stop[0];
    pthread_mutex_init(&sv.lock, NULL);
    pthread_cond_init(&sv.cond, NULL);
    if ((r = pthread_create(&thread, NULL, servers_thread, &sv)) != 0) {
        (void)fprintf(stderr, "fetch3: pthread_create: %s\n", strerror(r));
        return 1;
    }
    pthread_mutex_lock(&sv.lock);
    while (sv.ready == 0)
        pthread_cond_wait(&sv.cond, &sv.lock);
    pthread_mutex_unlock(&sv.lock);

    if (sv.ready < 0) {
        (void)fprintf(stderr, "fetch3: servers: %s: %s\n", sv.what, strerror(sv.err));
        status = 1;
    } else {
        printf("Three servers on 127.0.0.1 answer after %.1f s (port %d), %.1f s (port %d) and "
               "%.1f s (port %d).\n\n",
               (double)sv.delay_ms[0] / 1000.0, sv.port[0], (double)sv.delay_ms[1] / 1000.0,
               sv.port[1], (double)sv.delay_ms[2] / 1000.0, sv.port[2]);
        if (weave_run(client_main, &cl, NULL) != 0) {
            (void)fprintf(stderr, "fetch3: weave_run: %s\n", strerror(errno));
            status = 1;
        } else if (cl.err) {
            (void)fprintf(stderr, "fetch3: %s: %s\n", cl.what, strerror(cl.err));
            status = 1;
        }
    }
    /* Closing the write end wakes the server thread's main task with EOF. */
    close(stop[1]);
    pthread_join(thread, NULL);
    pthread_cond_destroy(&sv.cond);
    pthread_mutex_destroy(&sv.lock);
    return status;
}
