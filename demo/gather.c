/*
 * gather.c - three slow fetches at once, in a task group, under one
 * deadline: keep the answers that came in time, cancel the rest.
 *
 * fetch3.c's story with a time limit. Three tiny HTTP servers on 127.0.0.1
 * answer after 1 s, 3 s and 1 s. The program fetches a page from each, all
 * three at once, and gives the whole gathering 2 s:
 *
 *     weave_group *g = weave_group_new();
 *     for each server:
 *         weave_group_spawn(g, fetch_task, &f[i]);      one task per fetch
 *
 *     weave_deadline_begin(&d, 2000);                   a 2 s deadline scope
 *     weave_group_wait(g, -1);                          -1/ETIMEDOUT at 2 s
 *     weave_deadline_end(&d);
 *
 *     for each member i:
 *         weave_group_result(g, i, &r);                 0: it has ended
 *     weave_group_free(g);                              cancels the others
 *
 * After 1 s the answers of servers 1 and 3 are in; at 2 s the deadline
 * passes, weave_group_wait returns -1 with ETIMEDOUT, the fetch from server
 * 2 is cancelled (its weave_read returns ECANCELED, and it closes its socket
 * on the way out) and the program ends after about 2 s, not 3.
 *
 * Two things to notice:
 *
 *   - A deadline scope applies to the task that began it, not to the tasks
 *     it spawned: the deadline stops main's weave_group_wait, and main
 *     decides what happens to the fetches still running (here: cancel them;
 *     it could also let them finish in the background).
 *   - A scope bounds every blocking call inside it, however many there are.
 *     For the one call here, weave_group_wait(g, 2000) would do the same;
 *     a scope is what you use when the time limit covers several steps.
 *
 * In asyncio:
 *
 *     async with asyncio.timeout(2):
 *         async with asyncio.TaskGroup() as tg:
 *             tasks = [tg.create_task(fetch(url)) for url in urls]
 *
 * except that asyncio throws every result away on a timeout, and this keeps
 * the ones that arrived.
 *
 * The servers are tasks of the same program (another task group), to make
 * the demo self-contained; they could be anywhere.
 *
 * Usage: gather [--delay-ms N] [--timeout-ms T]
 *        (the servers answer after N, 3N and N ms, default N = 1000; the
 *        deadline is T ms, default 2N)
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "weave.h"

#define NSERVERS      3
#define CONNECT_MS    10000  /* give up on a connection after this long */
#define REQUEST_LIMIT 4096   /* bytes of request the servers read at most */
#define MAX_MS        600000 /* largest --delay-ms and --timeout-ms */

/* One server: a listener and the delay of its answers. */
struct server {
    int index; /* 0-based */
    int fd;    /* listening socket */
    int port;
    int64_t delay_ms;
    weave_group *group; /* the servers' tasks: accept loops and connections */
};

/* One connection accepted by a server, owned (and freed) by its task. */
struct conn {
    const struct server *sv;
    int fd;
};

/* One fetch, and what came of it. */
struct fetch {
    int index; /* 0-based server number */
    int port;
    int64_t origin_us; /* when the gathering started, for the time column */
    int64_t took_us;   /* how long the answer took */
    char body[96];     /* the first line of the answer's body */
    int err;           /* errno of a failure (ECANCELED: cancelled), 0 if none */
    const char *what;  /* the call that failed */
};

/* ---- the servers ------------------------------------------------------- */

/* Read the request up to its blank line, wait the server's delay, answer
 * and hang up. Errors end the connection: the client may be gone. */
static void *serve_conn(void *arg)
{
    struct conn *c = arg;
    char req[REQUEST_LIMIT + 1], body[96], resp[256];
    size_t len = 0;
    int blen, rlen;

    while (len < REQUEST_LIMIT) {
        ssize_t n = weave_read(c->fd, req + len, REQUEST_LIMIT - len);
        if (n <= 0)
            goto out; /* the client went away, or the servers are stopping */
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    if (weave_sleep(c->sv->delay_ms) != 0)
        goto out;
    blen = snprintf(body, sizeof(body), "hello from server %d, after %lld ms\n", c->sv->index + 1,
                    (long long)c->sv->delay_ms);
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
    struct server *sv = arg;

    for (;;) {
        struct conn *c;
        int fd = weave_accept(sv->fd, NULL, NULL);

        if (fd < 0) {
            if (errno == ECANCELED)
                break; /* the servers are stopping */
            (void)fprintf(stderr, "gather: server %d: weave_accept: %s\n", sv->index + 1,
                          strerror(errno));
            if (weave_sleep(10) != 0) /* EMFILE and the like: retry a bit later */
                break;
            continue;
        }
        c = malloc(sizeof(*c));
        if (c) {
            c->sv = sv;
            c->fd = fd;
        }
        if (!c || !weave_group_spawn(sv->group, serve_conn, c)) {
            (void)fprintf(stderr, "gather: server %d: cannot serve a connection: %s\n",
                          sv->index + 1, strerror(c ? errno : ENOMEM));
            weave_close(fd);
            free(c);
        }
    }
    return NULL;
}

/* Listen on 127.0.0.1 with a port the kernel picks, and start accepting.
 * Returns 0, or -1 with *what set and errno. */
static int server_start(struct server *sv, const char **what)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);

    memset(&sa, 0, sizeof(sa));
    if ((sv->fd = weave_tcp_listen("127.0.0.1", "0", 16)) < 0) {
        *what = "weave_tcp_listen";
        return -1;
    }
    if (getsockname(sv->fd, (struct sockaddr *)&sa, &salen) != 0) {
        *what = "getsockname";
        return -1;
    }
    sv->port = ntohs(sa.sin_port);
    if (!weave_group_spawn(sv->group, accept_loop, sv)) {
        *what = "weave_group_spawn";
        return -1;
    }
    return 0;
}

/* ---- the client -------------------------------------------------------- */

static double since_s(int64_t origin_us)
{
    return (double)(weave_now_us() - origin_us) / 1e6;
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

static int fetch_fail(struct fetch *f, const char *what, int fd)
{
    f->err = errno;
    f->what = what;
    if (fd >= 0)
        weave_close(fd);
    if (f->err == ECANCELED)
        printf("  [%6.3f s] server %d: fetch cancelled in %s%s\n", since_s(f->origin_us),
               f->index + 1, what, fd >= 0 ? ", socket closed" : "");
    return -1;
}

/* GET / from server f->index; keep the first line of the body. */
static int fetch(struct fetch *f)
{
    char port[16], req[128], resp[1024];
    const char *body;
    size_t len = 0;
    int64_t start = weave_now_us();
    int fd, rlen;

    (void)snprintf(port, sizeof(port), "%d", f->port);
    if ((fd = weave_tcp_connect("127.0.0.1", port, CONNECT_MS)) < 0)
        return fetch_fail(f, "weave_tcp_connect", -1);
    rlen = snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n", port);
    if (weave_write(fd, req, (size_t)rlen) != rlen)
        return fetch_fail(f, "weave_write", fd);
    for (;;) { /* the server closes the connection after its answer */
        ssize_t n = weave_read(fd, resp + len, sizeof(resp) - 1 - len);
        if (n < 0)
            return fetch_fail(f, "weave_read", fd);
        if (n == 0 || (len += (size_t)n) == sizeof(resp) - 1)
            break;
    }
    weave_close(fd);
    resp[len] = '\0';
    if (strncmp(resp, "HTTP/1.0 200 ", 13) != 0 || !(body = strstr(resp, "\r\n\r\n"))) {
        errno = EPROTO;
        return fetch_fail(f, "parsing the answer", -1);
    }
    body += 4;
    (void)snprintf(f->body, sizeof(f->body), "%.*s", (int)strcspn(body, "\n"), body);
    f->took_us = weave_now_us() - start;
    printf("  [%6.3f s] server %d answered: %s\n", since_s(f->origin_us), f->index + 1, f->body);
    return 0;
}

/* A group member: its result (weave_group_result) is f if the page
 * arrived, NULL if not. */
static void *fetch_task(void *arg)
{
    return fetch(arg) == 0 ? arg : NULL;
}

/* The main task's settings and outcome. */
struct gather {
    int64_t delay_ms; /* the 1 s unit: delays are N, 3N, N */
    int64_t timeout_ms;
    int err;          /* errno of the first failure, 0 if none */
    const char *what; /* the call that failed */
};

static void gather_fail(struct gather *g, const char *what, int err)
{
    if (!g->err) {
        g->err = err;
        g->what = what;
    }
}

/* Fetch from every server at once, under one deadline. */
static void fetch_all(struct gather *gt, const struct server *sv)
{
    struct fetch f[NSERVERS];
    weave_group *g = weave_group_new();
    weave_deadline d;
    int64_t origin = weave_now_us();
    void *res[NSERVERS] = {NULL, NULL, NULL};
    int r, wait_err, arrived = 0, cancelled = 0;

    if (!g) {
        gather_fail(gt, "weave_group_new", errno);
        return;
    }
    print_clock("started");
    for (int i = 0; i < NSERVERS; i++) {
        char name[WEAVE_NAME_MAX];
        weave_task_opts opts = {.name = name};

        memset(&f[i], 0, sizeof(f[i]));
        f[i].index = i;
        f[i].port = sv[i].port;
        f[i].origin_us = origin;
        (void)snprintf(name, sizeof(name), "fetch-%d", i + 1);
        if (!weave_group_spawn_with(g, &opts, fetch_task, &f[i])) {
            gather_fail(gt, "weave_group_spawn", errno);
            (void)weave_group_free(g); /* cancels the fetches spawned so far */
            return;
        }
    }

    /* Wait for every fetch, but no longer than the deadline. */
    weave_deadline_begin(&d, gt->timeout_ms);
    r = weave_group_wait(g, -1);
    wait_err = errno;
    if (weave_deadline_end(&d) < 0)
        gather_fail(gt, "weave_deadline_end", errno);

    if (r == 0) {
        printf("  [%6.3f s] every fetch ended before the deadline\n", since_s(origin));
    } else if (wait_err == ETIMEDOUT) {
        int running = 0;

        for (int i = 0; i < NSERVERS; i++)
            running += weave_group_result(g, (size_t)i, NULL) != 0;
        printf("  [%6.3f s] deadline: %d of %d fetches still running, cancelling %s\n",
               since_s(origin), running, NSERVERS, running == 1 ? "it" : "them");
    } else {
        gather_fail(gt, "weave_group_wait", wait_err);
    }

    /* Keep what arrived: a member that has ended has a result (here: its
     * struct fetch if the page came, NULL if the fetch failed). */
    for (int i = 0; i < NSERVERS; i++)
        if (weave_group_result(g, (size_t)i, &res[i]) == 0 && res[i])
            arrived++;
    /* Cancel the rest, and wait for them to unwind (close their sockets). */
    if (weave_group_cancel(g) != 0)
        gather_fail(gt, "weave_group_cancel", errno);
    if (weave_group_free(g) != 0)
        gather_fail(gt, "weave_group_free", errno);
    print_clock("finished");

    printf("\nSummary (deadline %.3f s):\n", (double)gt->timeout_ms / 1000.0);
    for (int i = 0; i < NSERVERS; i++) {
        printf("  server %d (answers after %.3f s): ", i + 1, (double)sv[i].delay_ms / 1000.0);
        if (res[i]) {
            printf("arrived in %.3f s: \"%s\"\n", (double)f[i].took_us / 1e6, f[i].body);
        } else if (f[i].err == ECANCELED) {
            printf("cancelled at the deadline\n");
            cancelled++;
        } else if (f[i].err) {
            printf("failed: %s: %s\n", f[i].what, strerror(f[i].err));
            gather_fail(gt, f[i].what, f[i].err);
        } else {
            printf("arrived too late, while it was being cancelled\n");
        }
    }
    printf("%d of %d answers arrived in time, %d cancelled. Total time: %.2f s\n", arrived,
           NSERVERS, cancelled, since_s(origin));
}

static void *gather_main(void *arg)
{
    struct gather *gt = arg;
    struct server sv[NSERVERS];
    weave_group *servers = weave_group_new();
    const char *what = NULL;
    int started = 0;

    if (!servers) {
        gather_fail(gt, "weave_group_new", errno);
        return NULL;
    }
    for (; started < NSERVERS && !what; started++) {
        sv[started].index = started;
        sv[started].delay_ms = started == 1 ? 3 * gt->delay_ms : gt->delay_ms;
        sv[started].group = servers;
        if (server_start(&sv[started], &what) != 0)
            gather_fail(gt, what, errno);
    }
    if (!what) {
        printf("Three servers on 127.0.0.1 answer after %.3f s (port %d), %.3f s (port %d) and "
               "%.3f s (port %d).\n",
               (double)sv[0].delay_ms / 1000.0, sv[0].port, (double)sv[1].delay_ms / 1000.0,
               sv[1].port, (double)sv[2].delay_ms / 1000.0, sv[2].port);
        printf("Fetching from all three at once, in a task group, with a deadline of %.3f s.\n\n",
               (double)gt->timeout_ms / 1000.0);
        fetch_all(gt, sv);
    }
    /* Stop the servers: cancel their accept loops and connections, wait for
     * them, then close the listeners. */
    if (weave_group_free(servers) != 0)
        gather_fail(gt, "weave_group_free", errno);
    for (int i = 0; i < started; i++)
        if (sv[i].fd >= 0)
            weave_close(sv[i].fd);
    return NULL;
}

/* Parse "--name N" or "--name=N" at argv[*i] (N: 0 .. MAX_MS): 1 and *out
 * set if it is that option, 0 if it is another one, -1 if the value is bad. */
static int opt_ms(int argc, char **argv, int *i, const char *name, int64_t *out)
{
    size_t len = strlen(name);
    const char *v;
    char *end;
    long long n;

    if (strncmp(argv[*i], name, len) != 0)
        return 0;
    if (argv[*i][len] == '=')
        v = argv[*i] + len + 1;
    else if (argv[*i][len] == '\0' && *i + 1 < argc)
        v = argv[++*i];
    else
        return argv[*i][len] == '\0' ? -1 : 0;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0 || n > MAX_MS)
        return -1;
    *out = n;
    return 1;
}

static _Noreturn void usage(int status)
{
    (void)fprintf(status ? stderr : stdout,
                  "usage: gather [--delay-ms N] [--timeout-ms T]\n"
                  "  --delay-ms N    the servers answer after N, 3N and N ms (0..%d, default "
                  "1000)\n"
                  "  --timeout-ms T  the deadline of the whole gathering (0..%d, default 2N)\n",
                  MAX_MS, MAX_MS);
    exit(status);
}

int main(int argc, char **argv)
{
    struct gather gt = {1000, -1, 0, NULL};

    for (int i = 1; i < argc; i++) {
        int r;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            usage(0);
        if ((r = opt_ms(argc, argv, &i, "--delay-ms", &gt.delay_ms)) == 0)
            r = opt_ms(argc, argv, &i, "--timeout-ms", &gt.timeout_ms);
        if (r != 1)
            usage(2);
    }
    if (gt.timeout_ms < 0)
        gt.timeout_ms = 2 * gt.delay_ms;
    /* Line-buffered even into a pipe, so each line shows when it happens. */
    (void)setvbuf(stdout, NULL, _IOLBF, 0);

    if (weave_run(gather_main, &gt, NULL) != 0)
        gather_fail(&gt, "weave_run", errno);
    if (gt.err) {
        (void)fprintf(stderr, "gather: %s: %s\n", gt.what, strerror(gt.err));
        return 1;
    }
    return 0;
}
