/*
 * http_hello.c - a small HTTP/1.1 server with keep-alive: "hello\n" to all.
 *
 * One task per connection, written as a blocking server would be:
 *
 *     loop:
 *         wait (at most the idle timeout) for input, read it
 *         for every complete request in the buffer:   (pipelining)
 *             parse the request line and the headers
 *             append the response to the output buffer
 *         write the output buffer in one call
 *
 * What it honours of HTTP/1.1 (RFC 9112):
 *   - GET and HEAD answer 200 "hello\n" (HEAD without the body); other
 *     methods 405 with an Allow header. Any target is accepted.
 *   - Persistent connections: HTTP/1.1 keeps the connection unless the
 *     request says "Connection: close"; HTTP/1.0 closes it unless the
 *     request says "Connection: keep-alive".
 *   - Pipelined requests arriving in one read are all answered, in order,
 *     with one write.
 *   - A request body announced by Content-Length is read and discarded;
 *     Transfer-Encoding is answered 501 and the connection closed.
 *   - A malformed request line or header, a missing Host in HTTP/1.1 or a
 *     bad Content-Length gets 400, a header block over IN_MAX bytes 431, an
 *     HTTP major version other than 1 gets 505; then the connection closes.
 *   - An idle connection (no request for --idle-ms) is closed: the wait for
 *     input is weave_wait_fd with a timeout.
 *   - Closing is "lingering": the server shuts down its sending side and
 *     drains the client's input for a moment (a deadline scope around the
 *     reads) before close, so that unread pipelined input cannot turn the
 *     close into a reset that destroys the last response on its way.
 *
 * SIGINT and SIGTERM stop the server through a signalfd read by the main
 * task (no weave call in a signal handler).
 *
 * Usage: http_hello [--host H] [--port P] [--idle-ms MS]
 *        (default 127.0.0.1, port 8080, 5000 ms; --port 0 picks a free port)
 */
#define _GNU_SOURCE

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "weave.h"

#define BACKLOG      1024
#define IN_MAX       8192 /* request head (line + headers) limit, bytes */
#define OUT_MAX      8192 /* responses gathered before one write */
#define RESP_MAX     512  /* the longest single response we build */
#define LINGER_MS    1000 /* drain time for a closing connection */
#define LINGER_BYTES 65536
#define EMFILE_PAUSE 50 /* ms to wait after accept runs out of fds */

static const char hello[] = "hello\n";

struct server {
    int listen_fd;
    int64_t idle_ms;
    uint64_t accepted;   /* connections */
    uint64_t active;     /* open now */
    uint64_t requests;   /* responses sent */
    uint64_t idle_close; /* connections closed by the idle timeout */
    uint64_t emfile;     /* times accept ran out of fds */
    time_t date_sec;     /* the second date_hdr was made for */
    char date_hdr[64];   /* "Date: ...\r\n" */
};

/* One parsed request head. */
struct request {
    const char *method;
    size_t method_len;
    int minor;           /* HTTP/1.minor */
    bool conn_close;     /* Connection: close */
    bool conn_keepalive; /* Connection: keep-alive */
    bool has_host;
    bool chunked;        /* any Transfer-Encoding */
    int64_t content_len; /* -1 if absent */
};

struct conn {
    struct server *srv;
    int fd;
};

/* ---- parsing ------------------------------------------------------------ */

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Offset just past the blank line ending the head in buf[0..len), or 0 if
 * the head is not complete yet. Lines end in CRLF or, leniently, LF. */
static size_t head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* The line starting at *p (before end), without its CRLF or LF; moves *p
 * past it. */
static size_t next_line(const char **p, const char *end, const char **line)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t len;

    *line = *p;
    if (!nl)
        nl = end;
    len = (size_t)(nl - *p);
    if (len > 0 && (*p)[len - 1] == '\r')
        len--;
    *p = nl < end ? nl + 1 : end;
    return len;
}

/* Whether the comma-separated list v[0..len) holds token tok (any case). */
static bool list_has(const char *v, size_t len, const char *tok)
{
    size_t tlen = strlen(tok);
    size_t i = 0;

    while (i < len) {
        size_t start, stop;

        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        start = i;
        while (i < len && v[i] != ',')
            i++;
        stop = i;
        while (stop > start && (v[stop - 1] == ' ' || v[stop - 1] == '\t'))
            stop--;
        if (stop - start == tlen && strncasecmp(v + start, tok, tlen) == 0)
            return true;
    }
    return false;
}

static bool name_is(const char *n, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(n, want, len) == 0;
}

/* Parse the head in buf[0..len) (which ends with the blank line). Returns
 * 0, or the HTTP status to answer with before closing (400, 501, 505). */
static int parse_head(const char *buf, size_t len, struct request *rq)
{
    const char *p = buf, *end = buf + len, *line, *sp1, *sp2, *ver;
    size_t n = next_line(&p, end, &line);

    memset(rq, 0, sizeof(*rq));
    rq->content_len = -1;

    /* request-line = method SP request-target SP HTTP-version */
    sp1 = memchr(line, ' ', n);
    if (!sp1 || sp1 == line)
        return 400;
    for (const char *c = line; c < sp1; c++)
        if (!is_tchar((unsigned char)*c))
            return 400;
    rq->method = line;
    rq->method_len = (size_t)(sp1 - line);
    sp2 = memchr(sp1 + 1, ' ', (size_t)(line + n - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1)
        return 400;
    for (const char *c = sp1 + 1; c < sp2; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return 400;
    ver = sp2 + 1;
    if (line + n - ver != 8 || memcmp(ver, "HTTP/", 5) != 0 || ver[5] < '0' || ver[5] > '9' ||
        ver[6] != '.' || ver[7] < '0' || ver[7] > '9')
        return 400;
    if (ver[5] != '1')
        return 505;
    rq->minor = ver[7] - '0';

    /* field-line = field-name ":" OWS field-value OWS */
    while ((n = next_line(&p, end, &line)) > 0) {
        const char *colon = memchr(line, ':', n), *v;
        size_t vlen;

        if (!colon || colon == line)
            return 400; /* also rejects obsolete line folding */
        for (const char *c = line; c < colon; c++)
            if (!is_tchar((unsigned char)*c))
                return 400; /* includes whitespace before the colon */
        v = colon + 1;
        vlen = (size_t)(line + n - v);
        while (vlen > 0 && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;

        if (name_is(line, (size_t)(colon - line), "connection")) {
            rq->conn_close |= list_has(v, vlen, "close");
            rq->conn_keepalive |= list_has(v, vlen, "keep-alive");
        } else if (name_is(line, (size_t)(colon - line), "host")) {
            if (rq->has_host)
                return 400; /* two Hosts */
            rq->has_host = true;
        } else if (name_is(line, (size_t)(colon - line), "transfer-encoding")) {
            rq->chunked = true;
        } else if (name_is(line, (size_t)(colon - line), "content-length")) {
            int64_t cl = 0;

            if (vlen == 0)
                return 400;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9' || cl > (INT64_MAX - 9) / 10)
                    return 400;
                cl = cl * 10 + (v[i] - '0');
            }
            if (rq->content_len >= 0 && rq->content_len != cl)
                return 400;
            rq->content_len = cl;
        }
    }
    if (rq->minor >= 1 && !rq->has_host)
        return 400;
    if (rq->chunked)
        return 501;
    return 0;
}

/* ---- responses ---------------------------------------------------------- */

/* "Date: <IMF-fixdate>\r\n", remade once a second. */
static const char *date_header(struct server *srv)
{
    time_t now = time(NULL);
    struct tm tm;

    if (now != srv->date_sec && gmtime_r(&now, &tm)) {
        if (strftime(srv->date_hdr, sizeof(srv->date_hdr), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
                     &tm) == 0)
            srv->date_hdr[0] = '\0';
        srv->date_sec = now;
    }
    return srv->date_hdr;
}

/* Append one response to out (room for RESP_MAX bytes is guaranteed). */
static size_t build_response(struct server *srv, char *out, int status, bool head_only,
                             bool keep_alive, bool say_keep_alive)
{
    const char *reason, *body, *extra = "";
    int n;

    switch (status) {
    case 200:
        reason = "OK";
        body = hello;
        break;
    case 405:
        reason = "Method Not Allowed";
        body = "method not allowed\n";
        extra = "Allow: GET, HEAD\r\n";
        break;
    case 431:
        reason = "Request Header Fields Too Large";
        body = "request header fields too large\n";
        break;
    case 501:
        reason = "Not Implemented";
        body = "transfer codings are not implemented\n";
        break;
    case 505:
        reason = "HTTP Version Not Supported";
        body = "HTTP version not supported\n";
        break;
    default:
        reason = "Bad Request";
        body = "bad request\n";
        break;
    }
    n = snprintf(out, RESP_MAX,
                 "HTTP/1.1 %d %s\r\nServer: weave-http_hello\r\n%sContent-Type: text/plain\r\n"
                 "Content-Length: %zu\r\n%s%s\r\n%s",
                 status, reason, date_header(srv), strlen(body), extra,
                 !keep_alive      ? "Connection: close\r\n"
                 : say_keep_alive ? "Connection: keep-alive\r\n"
                                  : "",
                 head_only ? "" : body);
    return n > 0 && n < RESP_MAX ? (size_t)n : 0;
}

/* ---- one connection ----------------------------------------------------- */

/* Shut down our side and drain the peer's input for a moment, then close:
 * closing with unread input would send a reset, which can destroy the
 * response still on its way to the client. The deadline scope bounds the
 * whole drain, however many reads it takes. */
static void linger_close(int fd)
{
    char sink[4096];
    size_t drained = 0;
    weave_deadline d;
    ssize_t n;

    if (shutdown(fd, SHUT_WR) == 0) {
        weave_deadline_begin(&d, LINGER_MS);
        while (drained < LINGER_BYTES && (n = weave_read(fd, sink, sizeof(sink))) > 0)
            drained += (size_t)n;
        (void)weave_deadline_end(&d); /* 1 if the time ran out: either way, done */
    }
    weave_close(fd);
}

static void *serve_conn(void *arg)
{
    struct conn *c = arg;
    struct server *srv = c->srv;
    char in[IN_MAX], out[OUT_MAX];
    size_t have = 0;          /* bytes in in[] */
    int64_t body_left = 0;    /* request body bytes still to discard */
    bool keep_alive = true;   /* false once we decided to close */
    bool peer_closed = false; /* the client sent EOF */

    while (keep_alive) {
        size_t used = 0, outlen = 0;
        ssize_t n;

        /* Wait for input at most the idle timeout, then read what came. */
        if (weave_wait_fd(c->fd, WEAVE_IN, srv->idle_ms) < 0) {
            if (errno == ETIMEDOUT)
                srv->idle_close++;
            break;
        }
        n = weave_read(c->fd, in + have, sizeof(in) - have);
        if (n <= 0) {
            peer_closed = true;
            break;
        }
        have += (size_t)n;

        /* Answer every complete request in the buffer. */
        while (keep_alive) {
            struct request rq;
            size_t hlen;
            int status;
            bool head_only = false;

            if (body_left > 0) {
                size_t k = have - used < (uint64_t)body_left ? have - used : (size_t)body_left;
                used += k;
                body_left -= (int64_t)k;
                if (body_left > 0)
                    break;
            }
            /* Empty lines before a request line are to be ignored. */
            while (used < have && (in[used] == '\r' || in[used] == '\n'))
                used++;
            if (used == have)
                break;
            hlen = head_end(in + used, have - used);
            if (hlen == 0) {
                if (used == 0 && have == sizeof(in)) {
                    outlen += build_response(srv, out + outlen, 431, false, false, false);
                    keep_alive = false;
                }
                break; /* incomplete: read more */
            }
            status = parse_head(in + used, hlen, &rq);
            used += hlen;
            if (status != 0) {
                keep_alive = false;
            } else {
                bool get = rq.method_len == 3 && memcmp(rq.method, "GET", 3) == 0;
                head_only = rq.method_len == 4 && memcmp(rq.method, "HEAD", 4) == 0;
                status = get || head_only ? 200 : 405;
                keep_alive = rq.minor >= 1 ? !rq.conn_close : rq.conn_keepalive && !rq.conn_close;
                body_left = rq.content_len > 0 ? rq.content_len : 0;
            }
            outlen += build_response(srv, out + outlen, status, head_only, keep_alive,
                                     keep_alive && rq.minor == 0);
            srv->requests++;
            if (OUT_MAX - outlen < RESP_MAX) {
                if (weave_write(c->fd, out, outlen) != (ssize_t)outlen)
                    goto gone;
                outlen = 0;
            }
        }
        if (outlen > 0 && weave_write(c->fd, out, outlen) != (ssize_t)outlen)
            goto gone;
        memmove(in, in + used, have - used);
        have -= used;
    }
    if (!peer_closed && !keep_alive && !weave_cancelled(weave_self())) {
        linger_close(c->fd);
        c->fd = -1;
    }
gone:
    if (c->fd >= 0)
        weave_close(c->fd);
    srv->active--;
    free(c);
    return NULL;
}

/* ---- accepting, start and stop ------------------------------------------ */

static void *accept_loop(void *arg)
{
    struct server *srv = arg;
    int one = 1;

    for (;;) {
        struct conn *c;
        weave_task *t;
        int fd = weave_accept(srv->listen_fd, NULL, NULL);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                if (srv->emfile++ == 0)
                    (void)fprintf(stderr, "http_hello: accept: %s; pausing %d ms\n",
                                  strerror(errno), EMFILE_PAUSE);
                if (weave_sleep(EMFILE_PAUSE) != 0)
                    break;
                continue;
            }
            if (errno == ECONNABORTED || errno == EPERM || errno == EPROTO)
                continue;
            if (errno != ECANCELED)
                (void)fprintf(stderr, "http_hello: accept: %s\n", strerror(errno));
            break;
        }
        /* Responses are written whole: no reason to wait for more. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = malloc(sizeof(*c));
        if (c) {
            c->srv = srv;
            c->fd = fd;
        }
        if (!c || !(t = weave_spawn(serve_conn, c))) {
            weave_close(fd);
            free(c);
            continue;
        }
        (void)weave_detach(t);
        srv->accepted++;
        srv->active++;
    }
    return NULL;
}

struct options {
    const char *host;
    const char *port;
    int64_t idle_ms;
    int sigfd;
    int err;
    /* Here, in main's frame, not in server_main's: connection tasks still
     * use it while weave_run cancels them, after server_main returned. */
    struct server srv;
};

static void *server_main(void *arg)
{
    struct options *o = arg;
    struct server *srv = &o->srv;
    struct signalfd_siginfo si;
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    char host[NI_MAXHOST], port[NI_MAXSERV];
    weave_task *acceptor;
    ssize_t n;

    memset(srv, 0, sizeof(*srv));
    memset(&sa, 0, sizeof(sa));
    srv->idle_ms = o->idle_ms;
    srv->date_sec = -1;
    srv->listen_fd = weave_tcp_listen(o->host, o->port, BACKLOG);
    if (srv->listen_fd < 0) {
        (void)fprintf(stderr, "http_hello: cannot listen on %s:%s: %s\n", o->host ? o->host : "*",
                      o->port, strerror(errno));
        o->err = 1;
        return NULL;
    }
    if (getsockname(srv->listen_fd, (struct sockaddr *)&sa, &salen) == 0 &&
        getnameinfo((struct sockaddr *)&sa, salen, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        printf("http_hello: listening on http://%s%s%s:%s/ (idle timeout %lld ms)\n",
               sa.ss_family == AF_INET6 ? "[" : "", host, sa.ss_family == AF_INET6 ? "]" : "", port,
               (long long)o->idle_ms);
    if (!(acceptor = weave_spawn(accept_loop, srv))) {
        (void)fprintf(stderr, "http_hello: weave_spawn: %s\n", strerror(errno));
        weave_close(srv->listen_fd);
        o->err = 1;
        return NULL;
    }
    n = weave_read(o->sigfd, &si, sizeof(si));
    if (n == (ssize_t)sizeof(si))
        printf("\nhttp_hello: %s, stopping: %llu connections, %llu requests, %llu idle "
               "timeouts, %llu still open\n",
               si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long)srv->accepted,
               (unsigned long long)srv->requests, (unsigned long long)srv->idle_close,
               (unsigned long long)srv->active);
    else
        (void)fprintf(stderr, "http_hello: signalfd: %s\n", n < 0 ? strerror(errno) : "short");
    (void)weave_cancel(acceptor);
    (void)weave_join(acceptor, NULL);
    weave_close(srv->listen_fd);
    /* weave_run cancels the connections still open; they close as they go. */
    return NULL;
}

static _Noreturn void usage(int status)
{
    (void)fprintf(status ? stderr : stdout,
                  "usage: http_hello [--host H] [--port P] [--idle-ms MS]\n"
                  "  --host H      address to listen on (default 127.0.0.1; '' = every address)\n"
                  "  --port P      port (default 8080; 0 picks a free one)\n"
                  "  --idle-ms MS  close a connection idle this long (1..3600000, default 5000)\n");
    exit(status);
}

int main(int argc, char **argv)
{
    struct options o;
    sigset_t mask;

    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.port = "8080";
    o.idle_ms = 5000;
    o.sigfd = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(0);
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            o.host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            o.port = argv[++i];
        } else if (strcmp(argv[i], "--idle-ms") == 0 && i + 1 < argc) {
            char *end;
            long long v;

            errno = 0;
            v = strtoll(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || v < 1 || v > 3600000)
                usage(2);
            o.idle_ms = v;
        } else {
            usage(2);
        }
    }
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (o.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        perror("http_hello: signalfd");
        return 1;
    }
    if (weave_run(server_main, &o, NULL) != 0) {
        perror("http_hello: weave_run");
        o.err = 1;
    }
    close(o.sigfd);
    return o.err;
}
