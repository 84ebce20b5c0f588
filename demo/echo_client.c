/*
 * echo_client.c - drive an echo server with many connections at once.
 *
 * Each of C connections is one task that sends M messages of S bytes, one
 * at a time, and reads every echo back in full before sending the next,
 * checking each byte. Every message carries a pattern that depends on the
 * connection, the message and the offset, so a byte echoed to the wrong
 * connection or in the wrong place is caught.
 *
 * A message larger than the socket buffers cannot be written in full before
 * its echo is read (both sides' buffers would fill and nobody would read),
 * so above INLINE_MAX bytes the connection's task spawns a writer task for
 * the message and reads the echo while the writer writes: two tasks on one
 * fd, one per direction.
 *
 * Usage: echo_client [--host H] --port P [--connections C] [--messages M]
 *                    [--size S]
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weave.h"

#define CONNECT_MS 10000           /* give up connecting after this long */
#define INLINE_MAX ((size_t)65536) /* larger messages get a writer task */
#define MAX_CONNS  100000u
#define MAX_SIZE   ((size_t)64 << 20)

struct options {
    const char *host;
    const char *port;
    uint32_t conns;
    uint64_t messages; /* per connection */
    size_t size;       /* bytes per message */
};

/* One connection's task and its results. */
struct conn {
    const struct options *o;
    uint32_t index;
    int fd;
    unsigned char *out; /* the message being sent */
    unsigned char *in;  /* its echo */
    uint64_t done;      /* messages echoed and checked */
    int64_t rtt_sum_us; /* sum of round-trip times */
    int64_t rtt_max_us;
    int err;          /* errno of a failure, 0 if none */
    const char *what; /* what failed */
};

/* The byte at offset j of message m on connection c. */
static unsigned char pattern(uint32_t c, uint64_t m, size_t j)
{
    return (unsigned char)(c * 131u + (uint32_t)m * 7u + (uint32_t)j * 13u + (uint32_t)(j >> 8));
}

static int conn_fail(struct conn *c, const char *what, int err)
{
    if (!c->err) {
        c->err = err;
        c->what = what;
    }
    return -1;
}

/* Write the whole message (a task of its own for large messages). */
static void *write_message(void *arg)
{
    struct conn *c = arg;

    if (weave_write(c->fd, c->out, c->o->size) != (ssize_t)c->o->size)
        conn_fail(c, "weave_write", errno ? errno : EPIPE);
    return NULL;
}

/* Read exactly the message's size back. */
static int read_echo(struct conn *c)
{
    size_t got = 0;

    while (got < c->o->size) {
        ssize_t n = weave_read(c->fd, c->in + got, c->o->size - got);
        if (n < 0)
            return conn_fail(c, "weave_read", errno);
        if (n == 0)
            return conn_fail(c, "weave_read (the server closed the connection)", ECONNRESET);
        got += (size_t)n;
    }
    return 0;
}

static int check_echo(struct conn *c, uint64_t m)
{
    size_t j;

    if (memcmp(c->out, c->in, c->o->size) == 0)
        return 0;
    for (j = 0; c->out[j] == c->in[j]; j++)
        ;
    (void)fprintf(stderr,
                  "echo_client: connection %u, message %llu: byte %zu is 0x%02x, sent 0x%02x\n",
                  c->index, (unsigned long long)m, j, c->in[j], c->out[j]);
    return conn_fail(c, "checking the echo", EPROTO);
}

static int one_message(struct conn *c, uint64_t m)
{
    weave_task *writer = NULL;
    int64_t t0 = weave_now_us(), rtt;

    for (size_t j = 0; j < c->o->size; j++)
        c->out[j] = pattern(c->index, m, j);
    if (c->o->size > INLINE_MAX) {
        if (!(writer = weave_spawn(write_message, c)))
            return conn_fail(c, "weave_spawn", errno);
    } else {
        write_message(c);
        if (c->err)
            return -1;
    }
    if (read_echo(c) != 0 && writer)
        (void)weave_cancel(writer); /* it may be stuck on a full buffer */
    if (writer && weave_join(writer, NULL) != 0)
        conn_fail(c, "weave_join", errno);
    if (c->err)
        return -1;
    rtt = weave_now_us() - t0;
    c->rtt_sum_us += rtt;
    if (rtt > c->rtt_max_us)
        c->rtt_max_us = rtt;
    return check_echo(c, m);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;

    c->fd = weave_tcp_connect(c->o->host, c->o->port, CONNECT_MS);
    if (c->fd < 0) {
        conn_fail(c, "weave_tcp_connect", errno);
        return NULL;
    }
    for (uint64_t m = 0; m < c->o->messages; m++) {
        if (one_message(c, m) != 0)
            break;
        c->done++;
    }
    weave_close(c->fd);
    return NULL;
}

/* What the first task reports back to main. */
struct run {
    const struct options *o;
    struct conn *conns;
    int64_t elapsed_us;
    int failed; /* connections that failed */
};

static void *client_main(void *arg)
{
    struct run *r = arg;
    const struct options *o = r->o;
    weave_task **tasks = calloc(o->conns, sizeof(weave_task *));
    int64_t t0 = weave_now_us();
    uint32_t started = 0;

    if (!tasks) {
        (void)fprintf(stderr, "echo_client: no memory for %u tasks\n", o->conns);
        r->failed = 1;
        return NULL;
    }
    for (; started < o->conns; started++) {
        if (!(tasks[started] = weave_spawn(conn_main, &r->conns[started]))) {
            (void)fprintf(stderr, "echo_client: weave_spawn: %s\n", strerror(errno));
            r->failed++;
            break;
        }
    }
    for (uint32_t i = 0; i < started; i++)
        (void)weave_join(tasks[i], NULL);
    r->elapsed_us = weave_now_us() - t0;
    for (uint32_t i = 0; i < started; i++) {
        const struct conn *c = &r->conns[i];
        if (c->err) {
            /* Print the first few failures; the count says the rest. */
            if (r->failed < 5)
                (void)fprintf(stderr, "echo_client: connection %u: %s: %s\n", i, c->what,
                              strerror(c->err));
            r->failed++;
        }
    }
    free(tasks);
    return NULL;
}

static _Noreturn void usage(int status)
{
    (void)fprintf(status ? stderr : stdout,
                  "usage: echo_client [--host H] --port P [--connections C] [--messages M] "
                  "[--size S]\n"
                  "  --host H         server address (default 127.0.0.1)\n"
                  "  --port P         server port (required)\n"
                  "  --connections C  connections at once (1..%u, default 10)\n"
                  "  --messages M     messages per connection (default 1000)\n"
                  "  --size S         bytes per message (1..%zu, default 64)\n",
                  MAX_CONNS, MAX_SIZE);
    exit(status);
}

static uint64_t parse_num(const char *opt, const char *v, uint64_t min, uint64_t max)
{
    char *end;
    unsigned long long n;

    errno = 0;
    n = v && *v >= '0' && *v <= '9' ? strtoull(v, &end, 10) : 0;
    if (!v || *v < '0' || *v > '9' || errno || *end || n < min || n > max) {
        (void)fprintf(stderr, "echo_client: %s wants a number from %llu to %llu\n", opt,
                      (unsigned long long)min, (unsigned long long)max);
        usage(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    struct options o = {"127.0.0.1", NULL, 10, 1000, 64};
    struct run r;
    uint64_t total, bytes;
    double secs;
    int status;

    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            usage(0);
        if (!v)
            usage(2);
        if (strcmp(argv[i], "--host") == 0)
            o.host = v;
        else if (strcmp(argv[i], "--port") == 0)
            o.port = v;
        else if (strcmp(argv[i], "--connections") == 0)
            o.conns = (uint32_t)parse_num(argv[i], v, 1, MAX_CONNS);
        else if (strcmp(argv[i], "--messages") == 0)
            o.messages = parse_num(argv[i], v, 0, UINT32_MAX);
        else if (strcmp(argv[i], "--size") == 0)
            o.size = (size_t)parse_num(argv[i], v, 1, MAX_SIZE);
        else
            usage(2);
        i++;
    }
    if (!o.port)
        usage(2);

    memset(&r, 0, sizeof(r));
    r.o = &o;
    r.conns = calloc(o.conns, sizeof(*r.conns));
    if (!r.conns) {
        (void)fprintf(stderr, "echo_client: no memory for %u connections\n", o.conns);
        return 1;
    }
    for (uint32_t i = 0; i < o.conns; i++) {
        r.conns[i].o = &o;
        r.conns[i].index = i;
        r.conns[i].fd = -1;
        r.conns[i].out = malloc(o.size);
        r.conns[i].in = malloc(o.size);
        if (!r.conns[i].out || !r.conns[i].in) {
            (void)fprintf(stderr, "echo_client: no memory for the buffers\n");
            o.conns = i + 1;
            r.failed = 1;
            break;
        }
    }
    if (!r.failed && weave_run(client_main, &r, NULL) != 0) {
        perror("echo_client: weave_run");
        r.failed = 1;
    }

    total = 0;
    for (uint32_t i = 0; i < o.conns; i++)
        total += r.conns[i].done;
    bytes = total * o.size;
    secs = (double)r.elapsed_us / 1e6;
    if (r.elapsed_us > 0) {
        int64_t sum = 0, max = 0;

        for (uint32_t i = 0; i < o.conns; i++) {
            sum += r.conns[i].rtt_sum_us;
            if (r.conns[i].rtt_max_us > max)
                max = r.conns[i].rtt_max_us;
        }
        printf("echo_client: %s:%s, %u connections x %llu messages x %zu bytes\n", o.host, o.port,
               o.conns, (unsigned long long)o.messages, o.size);
        printf("  messages  %llu echoed and checked (%llu expected)\n", (unsigned long long)total,
               (unsigned long long)o.messages * o.conns);
        printf("  bytes     %llu each way\n", (unsigned long long)bytes);
        printf("  elapsed   %.3f s\n", secs);
        printf("  rate      %.0f messages/s, %.2f MB/s each way\n", (double)total / secs,
               (double)bytes / secs / 1e6);
        if (total > 0)
            printf("  round trip  mean %.1f us, max %.1f us\n", (double)sum / (double)total,
                   (double)max);
    }
    status = r.failed || total != o.messages * o.conns;
    if (r.failed)
        printf("  FAILED: %d connection(s) reported an error\n", r.failed);
    for (uint32_t i = 0; i < o.conns; i++) {
        free(r.conns[i].out);
        free(r.conns[i].in);
    }
    free(r.conns);
    return status;
}
