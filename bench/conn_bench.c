/*
 * conn_bench.c - what an idle keep-alive connection costs a server.
 *
 * Starts the server program (demo/http_hello by default) as a child on a
 * free port, reads the port from the line it prints, and reads its resident
 * memory (VmRSS of /proc/<pid>/status). Then it opens C connections, sends
 * one HTTP request on each and reads the response, and leaves them all
 * open and idle; after a moment to settle, it reads the server's VmRSS
 * again. The difference, divided by C, is what one idle connection costs
 * the server: its task's stack pages, its buffers, its records, and the
 * allocator's slack around them (kernel socket memory is not counted).
 *
 * The file-descriptor limit is raised to its hard limit first; the server
 * inherits it. The server runs with an idle timeout of an hour, so that no
 * connection closes during the measurement.
 *
 * Usage: conn_bench [--server PATH] [--conns C] [--settle-ms MS] [--runs R]
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

static void usage(FILE *f)
{
    (void)fprintf(f, "usage: conn_bench [--server PATH] [--conns C] [--settle-ms MS] [--runs R]\n"
                     "  --server PATH   the server to measure (default: ../demo/http_hello\n"
                     "                  next to this program); it is run with --port 0\n"
                     "  --conns C       idle connections to open (default 5000)\n"
                     "  --settle-ms MS  pause before the second reading (default 500)\n"
                     "  --runs R        start the server R times; report each (default 1)\n");
}

/* VmRSS of process pid, in KiB; -1 if unreadable. */
static int64_t rss_kib(pid_t pid)
{
    char path[64], line[256];
    int64_t kib = -1;
    FILE *f;

    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    (void)fclose(f);
    return kib;
}

/* Start the server; return its pid and store the port it listens on. */
static pid_t start_server(const char *path, int *port)
{
    int out[2];
    pid_t pid;
    FILE *f;
    char line[512];

    if (pipe(out) != 0)
        return -1;
    if ((pid = fork()) == 0) {
        (void)dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execl(path, path, "--port", "0", "--idle-ms", "3600000", (char *)NULL);
        perror("conn_bench: exec");
        _exit(127);
    }
    close(out[1]);
    if (pid < 0 || !(f = fdopen(out[0], "r"))) {
        close(out[0]);
        return -1;
    }
    *port = 0;
    while (*port == 0 && fgets(line, sizeof(line), f)) {
        /* "...listening on http://127.0.0.1:PORT/ ..." */
        char *u = strstr(line, "http://"), *colon, *slash;

        if (u && (slash = strchr(u + 7, '/')) && (colon = memrchr(u, ':', (size_t)(slash - u))))
            *port = atoi(colon + 1);
    }
    /* The server's later output is not read: it prints a line or two at
     * most, and a write to the closed pipe fails with EPIPE. */
    (void)fclose(f);
    return *port > 0 ? pid : -1;
}

/* Connect, send one request and read the whole response. Returns the fd,
 * or -1. */
static int one_conn(int port)
{
    struct sockaddr_in a;
    struct timeval tv = {10, 0};
    char buf[1024];
    size_t have = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, request, sizeof(request) - 1) != (ssize_t)(sizeof(request) - 1))
        goto fail;
    /* The response ends with the body "hello\n". */
    while (have < 6 || memcmp(buf + have - 6, "hello\n", 6) != 0) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - have);

        if (n <= 0 || (have += (size_t)n) == sizeof(buf))
            goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

int main(int argc, char **argv)
{
    char exe[PATH_MAX], deflt[PATH_MAX + 32];
    const char *server = NULL;
    uint32_t conns = 5000, settle = 500, runs = 1;
    struct rlimit rl;
    ssize_t n;
    const struct bench_opt opts[] = {
        {.name = "--server", .str = &server, .bad = "bad --server '%s'"},
        {.name = "--conns", .u32 = &conns, .min = 1, .max = 1000000, .bad = "bad --conns '%s'"},
        {.name = "--settle-ms",
         .u32 = &settle,
         .max = 60000,
         .zero_ok = true,
         .bad = "bad --settle-ms '%s'"},
        {.name = "--runs", .u32 = &runs, .min = 1, .max = 100, .bad = "bad --runs '%s'"},
    };
    int *fds;

    bench_parse_args(argc, argv, "conn_bench", usage, opts, sizeof(opts) / sizeof(opts[0]), NULL);
    if (!server) {
        if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0) {
            perror("conn_bench: /proc/self/exe");
            return 1;
        }
        exe[n] = '\0';
        (void)snprintf(deflt, sizeof(deflt), "%s/../demo/http_hello", dirname(exe));
        server = deflt;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < (rlim_t)conns + 64) {
        (void)fprintf(stderr, "conn_bench: the fd limit (%llu) is too low for %u connections\n",
                      (unsigned long long)rl.rlim_cur, conns);
        return 1;
    }
    if (!(fds = calloc(conns, sizeof(*fds))))
        return 1;
    (void)signal(SIGPIPE, SIG_IGN);

    printf("conn_bench: %s, %u connections, one request each, then idle; settle %u ms\n", server,
           conns, settle);
    printf("%4s %12s %12s %12s %16s\n", "run", "conns", "rss_before", "rss_after", "per_conn");
    printf("%4s %12s %12s %12s %16s\n", "", "", "KiB", "KiB", "bytes");
    for (uint32_t r = 0; r < runs; r++) {
        int port, status;
        int64_t before, after;
        uint32_t open = 0;
        pid_t pid = start_server(server, &port);

        if (pid < 0) {
            (void)fprintf(stderr, "conn_bench: could not start %s\n", server);
            return 1;
        }
        usleep(100000);
        before = rss_kib(pid);
        for (; open < conns; open++)
            if ((fds[open] = one_conn(port)) < 0) {
                (void)fprintf(stderr, "conn_bench: connection %u failed: %s\n", open,
                              strerror(errno));
                break;
            }
        usleep(settle * 1000u);
        after = rss_kib(pid);
        printf("%4u %12u %12lld %12lld %16.0f\n", r + 1, open, (long long)before, (long long)after,
               open ? (double)(after - before) * 1024.0 / open : 0.0);
        for (uint32_t i = 0; i < open; i++)
            close(fds[i]);
        (void)kill(pid, SIGTERM);
        (void)waitpid(pid, &status, 0);
        if (open < conns)
            return 1;
    }
    free(fds);
    return 0;
}
