/*
 * http_hello.c - a small HTTP/1.1 server with keep-alive: "hello\n" to all.
 *
 * One task per connection, written as a blocking server would be, on a
 * buffered stream (weave_stream) over the socket:
 *
 *     loop:
 *         wait (at most the idle timeout) for the next request to begin
 *         read its head, line by line, within the head timeout
 *         answer it into the stream's write buffer
 *         flush once no further (pipelined) request is buffered
 *
 * What it honours of HTTP/1.1 (RFC 9112):
 *   - GET and HEAD answer 200 "hello\n" (HEAD without the body); other
 *     methods 405 with an Allow header. Any target is accepted.
 *   - Persistent connections: HTTP/1.1 keeps the connection unless the
 *     request says "Connection: close"; HTTP/1.0 closes it unless the
 *     request says "Connection: keep-alive". Pipelined requests are
 *     answered in order, their responses gathered into one write.
 *   - A body announced by Content-Length (up to 2^63 - 1) is thrown away as
 *     it comes; Transfer-Encoding is answered 501. A malformed request, a
 *     missing Host in HTTP/1.1 or a bad Content-Length gets 400, a head
 *     over HEAD_MAX bytes 431, an HTTP major version other than 1 gets
 *     505; then the connection closes.
 *   - A NUL, a CR not followed by LF, or any other control character but
 *     HTAB, in the request line or a header line, gets 400 and the
 *     connection closes, as nginx does (RFC 9110 section 5.5, RFC 9112
 *     section 2.2): a proxy or a log behind a server that let them through
 *     could read the head differently from it.
 *
 * Against slow clients, and for memory:
 *   - No request begins within --idle-ms, or a body stalls that long: the
 *     connection is closed.
 *   - The whole head must arrive within --head-ms (a deadline scope around
 *     reading it), however slowly its bytes trickle in, so a client sending
 *     a byte every 50 ms cannot hold a connection (slowloris).
 *   - The stream holds buffers only while a request is in flight, and the
 *     task has a small stack: an idle connection costs about 4.5 KB.
 *   - Closing "lingers": the server shuts down its sending side and drains
 *     the client's input for a moment before close, so that unread input
 *     cannot turn the close into a reset that destroys the last response.
 *
 * Ctrl-C (SIGINT) and SIGTERM stop the server: weave_cancel_on_signals
 * turns the first one into cancellation of the main task, which closes the
 * listening socket; weave_run then cancels the connections still open, and
 * once every one has closed, main prints the stop line: connections,
 * requests answered, idle and head timeouts, and how many were open.
 *
 * A scheduler per core (--threads N, by default one per online CPU): N
 * schedulers on N threads (weave_run_threads), each running the server
 * above with a listening socket of its own on the same port
 * (WEAVE_LISTEN_REUSEPORT), so the kernel spreads connections among them.
 * A connection stays on the scheduler that accepted it. Ctrl-C stops every
 * scheduler, each cleaning up its own connections, and the stop line adds
 * up their figures. --threads 1 is the plain weave_run server.
 *
 * HTTPS (--tls CERT KEY): the same server over TLS (weave_tls_accept in the
 * connection's task, then a stream over the connection, weave_stream_tls),
 * on a larger stack for OpenSSL; the handshake must end within --head-ms,
 * and a closing connection sends close_notify instead of lingering.
 *
 * Usage: http_hello [--host H] [--port P] [--idle-ms MS] [--head-ms MS]
 *                   [--threads N] [--tls CERT KEY]
 *        (default 127.0.0.1, port 8080, 5000 ms, 10000 ms, one scheduler
 *        per online CPU; --port 0 picks a free port)
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "weave.h"

#define BACKLOG      1024
#define HEAD_MAX     8192         /* request head (line + headers) limit, bytes */
#define OUT_MAX      8192         /* responses gathered before one write */
#define CONN_STACK   (32 * 1024)  /* a connection task's stack, bytes */
#define TLS_STACK    (128 * 1024) /* the same over TLS: OpenSSL's handshake is deep */
#define HANDSHAKES   16           /* TLS handshakes under way at once, at most */
#define LINGER_MS    1000         /* drain time for a closing connection */
#define LINGER_BYTES 65536
#define BODY_PIECE   65536 /* bytes of a body discarded per timeout */
#define EMFILE_PAUSE 50    /* ms to wait after accept runs out of fds */

struct server {
    int listen_fd;
    weave_tls_config *tls; /* --tls: the certificate and key, shared by every scheduler */
    weave_sem handshakes;  /* --tls: turns to handshake, HANDSHAKES of them (FIFO) */
    int64_t idle_ms;
    int64_t head_ms;
    uint64_t accepted;     /* connections */
    uint64_t active;       /* open now */
    uint64_t requests;     /* responses made */
    uint64_t idle_close;   /* connections closed by the idle timeout */
    uint64_t head_close;   /* connections closed by the head timeout */
    uint64_t emfile;       /* times accept ran out of fds */
    uint64_t open_at_stop; /* connections open when the stop came */
    time_t date_sec;       /* the second date_hdr was made for */
    char date_hdr[64];     /* "Date: ...\r\n" */
    int caught;            /* SIGINT or SIGTERM, once one came */
    bool failed;           /* it could not start: the exit status is 1 */
    bool stopped;          /* it ran and has stopped: main prints its figures */
};

/* One parsed request head. */
struct request {
    bool get, head;      /* the method is GET, HEAD */
    int minor;           /* HTTP/1.minor */
    bool conn_close;     /* Connection: close */
    bool conn_keepalive; /* Connection: keep-alive */
    bool has_host;
    bool chunked;        /* any Transfer-Encoding */
    int64_t content_len; /* -1 if absent */
};

struct conn {
    struct server *srv;
    int fd;          /* the connection's socket */
    weave_stream *s; /* over it (made by the task after the handshake, over TLS) */
};

/* The streams' sizes: a head fits in the read buffer, and responses are
 * gathered in the write buffer until a flush. */
static const weave_stream_opts stream_opts = {.read_size = HEAD_MAX, .write_size = OUT_MAX};

/* ---- parsing ------------------------------------------------------------ */

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
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

/* A byte a field value may hold: a visible character, obs-text (0x80 and
 * up), SP or HTAB (RFC 9110 section 5.5). Every other control character,
 * NUL and a bare CR among them, is refused rather than passed on. */
static bool is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= ' ' && c != 0x7f);
}

/* request-line = method SP request-target SP HTTP-version. Returns 0, or
 * the status to answer with (400, 505). No part of it may hold a control
 * character: the method is a token, the target has no byte at or below SP
 * nor DEL, and the version is matched byte by byte, so a NUL or a bare CR
 * anywhere in the line is a 400 like any other malformed line. */
static int parse_request_line(const char *line, size_t n, struct request *rq)
{
    const char *sp1 = memchr(line, ' ', n), *sp2, *ver;

    if (!sp1 || sp1 == line)
        return 400;
    for (const char *c = line; c < sp1; c++)
        if (!is_tchar((unsigned char)*c))
            return 400;
    rq->get = sp1 - line == 3 && memcmp(line, "GET", 3) == 0;
    rq->head = sp1 - line == 4 && memcmp(line, "HEAD", 4) == 0;
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
    return 0;
}

/* field-line = field-name ":" OWS field-value OWS. Returns 0 or 400. */
static int parse_field(const char *line, size_t n, struct request *rq)
{
    const char *colon = memchr(line, ':', n), *v;
    size_t vlen;

    if (!colon || colon == line)
        return 400; /* also rejects obsolete line folding */
    for (const char *c = line; c < colon; c++)
        if (!is_tchar((unsigned char)*c))
            return 400; /* includes whitespace before the colon */
    v = colon + 1;
    vlen = (size_t)(line + n - v);
    for (size_t i = 0; i < vlen; i++)
        if (!is_field_byte((unsigned char)v[i]))
            return 400; /* a NUL, a bare CR, another control character */
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
            /* Every value up to INT64_MAX is taken; one digit more is not. */
            if (v[i] < '0' || v[i] > '9' || cl > (INT64_MAX - (v[i] - '0')) / 10)
                return 400;
            cl = cl * 10 + (v[i] - '0');
        }
        if (rq->content_len >= 0 && rq->content_len != cl)
            return 400;
        rq->content_len = cl;
    }
    return 0;
}

/*
 * Read one request head from s, line by line, and parse it into rq. Each
 * line is looked at in the stream's buffer (weave_stream_peek_until) and
 * then consumed, so nothing is copied onto the task's stack. Returns 0, a
 * status to answer with before closing (400, 431, 501, 505), or -1 to close
 * without an answer: end of file, an error, or the head deadline.
 */
static int read_head(weave_stream *s, struct request *rq)
{
    size_t total = 0;
    bool first = true;

    memset(rq, 0, sizeof(*rq));
    rq->content_len = -1;
    for (;;) {
        const void *p;
        const char *line;
        ssize_t n = weave_stream_peek_until(s, "\n", 1, &p);
        size_t len;
        int status;

        if (n < 0)
            return errno == EMSGSIZE ? 431 : -1;
        line = p;
        if (n == 0 || line[n - 1] != '\n')
            return -1; /* the client hung up in the middle */
        if ((total += (size_t)n) > HEAD_MAX)
            return 431;
        /* Lines end in CRLF or, leniently, LF. Only that one CR is taken
         * off: a CR left in the line is bare, and the parsers refuse it. */
        len = (size_t)n - 1;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (!first && len == 0) {
            (void)weave_stream_skip(s, n); /* the blank line ends the head */
            break;
        }
        /* Empty lines before the request line are ignored. */
        status = first ? (len ? parse_request_line(line, len, rq) : 0) : parse_field(line, len, rq);
        first = first && len == 0;
        if (status != 0)
            return status;
        (void)weave_stream_skip(s, n); /* buffered: never waits */
    }
    if (rq->minor >= 1 && !rq->has_host)
        return 400;
    return rq->chunked ? 501 : 0;
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

/* The answers, by status; the last one is the default. */
static const struct answer {
    int status;
    const char *reason, *body, *extra;
} answers[] = {
    {200, "OK", "hello\n", ""},
    {405, "Method Not Allowed", "method not allowed\n", "Allow: GET, HEAD\r\n"},
    {431, "Request Header Fields Too Large", "request header fields too large\n", ""},
    {501, "Not Implemented", "transfer codings are not implemented\n", ""},
    {505, "HTTP Version Not Supported", "HTTP version not supported\n", ""},
    {400, "Bad Request", "bad request\n", ""},
};

/* Buffer one response on s. */
static int respond(struct server *srv, weave_stream *s, int status, bool head_only, bool keep_alive,
                   bool say_keep_alive)
{
    const struct answer *a = answers;

    while (a->status != status && a->status != 400)
        a++;
    srv->requests++;
    return weave_stream_printf(
        s,
        "HTTP/1.1 %d %s\r\nServer: weave-http_hello\r\n%sContent-Type: text/plain\r\n"
        "Content-Length: %zu\r\n%s%s\r\n%s",
        a->status, a->reason, date_header(srv), strlen(a->body), a->extra,
        !keep_alive      ? "Connection: close\r\n"
        : say_keep_alive ? "Connection: keep-alive\r\n"
                         : "",
        head_only ? "" : a->body);
}

/* ---- one connection ----------------------------------------------------- */

/* Throw a body away as it comes, a piece per stream timeout: a body may be
 * as long as it likes, but must not stall. Returns whether all of it came. */
static bool discard_body(weave_stream *s, int64_t len)
{
    while (len > 0) {
        int64_t n = weave_stream_skip(s, len < BODY_PIECE ? len : BODY_PIECE);

        if (n <= 0)
            return false;
        len -= n;
    }
    return true;
}

/* Shut down our side and drain the peer's input for a moment (a deadline
 * scope bounds the whole drain), then close: closing with unread input
 * would send a reset, which can destroy the response on its way. */
static void linger_close(weave_stream *s, bool tls)
{
    weave_deadline d;

    if (tls) {
        (void)weave_stream_close(s); /* close_notify says the response is whole */
        return;
    }
    if (shutdown(weave_stream_fd(s), SHUT_WR) == 0) {
        weave_deadline_begin(&d, LINGER_MS);
        (void)weave_stream_skip(s, LINGER_BYTES);
        (void)weave_deadline_end(&d); /* 1 if the time ran out: either way, done */
    }
    (void)weave_stream_close(s);
}

static void *serve_conn(void *arg)
{
    struct conn *c = arg;
    struct server *srv = c->srv;
    weave_stream *s = c->s;
    bool keep_alive = true; /* false once we decided to close */

    if (!s) {
        /* TLS: the handshake in the connection's own task, within the
         * head timeout (the wait for a turn included); a client that fails
         * it is closed. A handshake is CPU work: with thousands arriving at
         * once, running them all side by side would finish none in time,
         * so they take turns, a few at a time, first come first served. */
        weave_tls *t = NULL;
        weave_deadline d;

        weave_deadline_begin(&d, srv->head_ms);
        if (weave_sem_acquire(&srv->handshakes) == 0) {
            t = weave_tls_accept(srv->tls, c->fd, -1);
            (void)weave_sem_release(&srv->handshakes);
        }
        (void)weave_deadline_end(&d);

        if (!t || !(s = weave_stream_tls(t, &stream_opts))) {
            if (t)
                (void)weave_tls_close(t);
            else
                weave_close(c->fd);
            srv->active--;
            free(c);
            return NULL;
        }
    }
    /* Every call on the stream that waits (for a request to begin, for a
     * piece of a body, for the client to take our output) gives up after
     * the idle timeout. */
    (void)weave_stream_set_timeout(s, srv->idle_ms);
    while (keep_alive) {
        const void *p;
        struct request rq;
        weave_deadline d;
        int status;

        /* Between requests: send the responses gathered so far, then wait
         * for the next request to begin. A pipelined one is buffered
         * already. */
        if (weave_stream_buffered(s) == 0 && weave_stream_flush(s) < 0)
            break;
        if (weave_stream_buffered(s) == 0) {
            ssize_t got = weave_stream_peek(s, 1, &p);

            /* errno says why only when the call failed: at end of file
             * (0) it holds whatever an earlier call left there. */
            if (got < 0 && errno == ETIMEDOUT)
                srv->idle_close++;
            if (got <= 0)
                break; /* idle too long, the client hung up, or an error */
        }

        /* The whole head within the head timeout, however slow its bytes. */
        weave_deadline_begin(&d, srv->head_ms);
        status = read_head(s, &rq);
        if (weave_deadline_end(&d) == 1 && status < 0)
            srv->head_close++;
        if (status < 0)
            break;

        if (status == 0) {
            status = rq.get || rq.head ? 200 : 405;
            keep_alive = rq.minor >= 1 ? !rq.conn_close : rq.conn_keepalive && !rq.conn_close;
        } else {
            keep_alive = false;
        }
        if (respond(srv, s, status, rq.head, keep_alive, keep_alive && rq.minor == 0) < 0)
            break;
        /* The body is not needed: send the answer first, then drop it. */
        if (keep_alive && rq.content_len > 0 &&
            (weave_stream_flush(s) < 0 || !discard_body(s, rq.content_len)))
            break;
    }
    /* After an answer that closes, linger; otherwise just close. */
    if (!keep_alive && weave_stream_flush(s) == 0 && !weave_cancelled(weave_self()))
        linger_close(s, srv->tls != NULL);
    else
        (void)weave_stream_close(s);
    srv->active--;
    free(c);
    return NULL;
}

/* ---- accepting, start and stop ------------------------------------------ */

static void *accept_loop(void *arg)
{
    struct server *srv = arg;
    weave_task_opts small = {.stack_size = srv->tls ? TLS_STACK : CONN_STACK};
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
        /* A small stack: the task parses lines in the stream's buffer, so
         * it touches a page or two of it. */
        if ((c = malloc(sizeof(*c)))) {
            c->srv = srv;
            c->fd = fd;
            c->s = srv->tls ? NULL : weave_stream_new(fd, &stream_opts);
        }
        if (!c || (!c->s && !srv->tls) || !(t = weave_spawn_with(&small, serve_conn, c))) {
            if (c && c->s)
                (void)weave_stream_free(c->s);
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

/*
 * The settings, and one server per scheduler. With --threads N > 1 every
 * scheduler listens on the same port with SO_REUSEPORT and the kernel
 * spreads the connections among them; nothing else is shared: each has
 * its own counters, connections and cleanup, and main adds the counters up
 * at the end.
 *
 * The port is chosen once, by scheduler 0, which sends it to the others
 * through a shared channel; each of them listens on it and answers on a
 * second channel, and scheduler 0 prints the listening line once they all
 * have, so that a client that read it reaches every scheduler.
 */
struct options {
    const char *host;
    const char *port;
    int64_t idle_ms;
    int64_t head_ms;
    unsigned threads;       /* schedulers, each on a thread of its own */
    weave_tls_config *tls;  /* --tls CERT KEY, or NULL */
    weave_chan *port_chan;  /* scheduler 0 -> the others: the port, char[NI_MAXSERV] */
    weave_chan *ready_chan; /* the others -> scheduler 0: 0 listening, or an errno */
    /* Here, in main's memory, not in a task's frame: connection tasks
     * still use their server while weave_run cancels them, after
     * serve returned. */
    struct server *srv; /* threads of them */
};

/* How start_listening went. */
enum { LISTENING, FAILED, STOPPED };

/* The address fd is bound to, numeric, into host and port. */
static int bound_to(int fd, struct sockaddr_storage *sa, char host[NI_MAXHOST],
                    char port[NI_MAXSERV])
{
    socklen_t salen = sizeof(*sa);

    memset(sa, 0, sizeof(*sa));
    if (getsockname(fd, (struct sockaddr *)sa, &salen) != 0)
        return -1;
    return getnameinfo((struct sockaddr *)sa, salen, host, NI_MAXHOST, port, NI_MAXSERV,
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
static int choose_port(const struct options *o, char port[NI_MAXSERV])
{
    struct sockaddr_storage sa;
    char host[NI_MAXHOST];
    int fd = weave_tcp_listen(o->host, o->port, BACKLOG), r;

    if (fd < 0)
        return -1;
    r = bound_to(fd, &sa, host, port);
    weave_close(fd);
    return r;
}

/* Listen as scheduler index; with several, share the port as described
 * above. Prints the listening line (once). Returns LISTENING; FAILED (said
 * on stderr); or STOPPED: Ctrl-C came first, or scheduler 0 could not
 * listen (and said so). */
static int start_listening(struct options *o, unsigned index, struct server *srv)
{
    char port[NI_MAXSERV], host[NI_MAXHOST];
    struct sockaddr_storage sa;
    unsigned listening = 1;
    int err = 0;

    if (o->threads == 1) {
        srv->listen_fd = weave_tcp_listen(o->host, o->port, BACKLOG);
    } else if (index > 0) { /* on the port scheduler 0 chose */
        if (weave_chan_recv(o->port_chan, port) != 0)
            return STOPPED; /* EPIPE: scheduler 0 could not listen; ECANCELED */
        srv->listen_fd = weave_tcp_listen_with(o->host, port, BACKLOG, WEAVE_LISTEN_REUSEPORT);
    } else if (choose_port(o, port) != 0) {
        srv->listen_fd = -1;
    } else {
        srv->listen_fd = weave_tcp_listen_with(o->host, port, BACKLOG, WEAVE_LISTEN_REUSEPORT);
    }
    if (srv->listen_fd < 0 || bound_to(srv->listen_fd, &sa, host, port) != 0) {
        err = errno;
        (void)fprintf(stderr, "http_hello: cannot listen on %s:%s: %s\n", o->host ? o->host : "*",
                      o->threads > 1 && index > 0 ? port : o->port, strerror(err));
        if (srv->listen_fd >= 0)
            weave_close(srv->listen_fd);
    }
    if (index > 0) {
        (void)weave_chan_send(o->ready_chan, &err); /* room for all: never waits */
        return err ? FAILED : LISTENING;
    }
    if (err) {
        if (o->port_chan)
            (void)weave_chan_close(o->port_chan); /* the others stop */
        return FAILED;
    }
    for (unsigned i = 1; i < o->threads; i++)
        (void)weave_chan_send(o->port_chan, port);
    for (unsigned i = 1; i < o->threads; i++) {
        if (weave_chan_recv(o->ready_chan, &err) != 0) { /* stopped meanwhile */
            weave_close(srv->listen_fd);
            return STOPPED;
        }
        listening += err == 0;
    }
    printf("http_hello: listening on %s://%s%s%s:%s/ (idle timeout %lld ms, head timeout "
           "%lld ms",
           o->tls ? "https" : "http", sa.ss_family == AF_INET6 ? "[" : "", host,
           sa.ss_family == AF_INET6 ? "]" : "", port, (long long)o->idle_ms, (long long)o->head_ms);
    if (o->threads > 1 && listening == o->threads)
        printf("; %u schedulers)\n", o->threads);
    else if (o->threads > 1)
        printf("; %u of %u schedulers)\n", listening, o->threads);
    else
        printf(")\n");
    return LISTENING;
}

/* One scheduler's server: its main task. */
static void *serve(struct options *o, unsigned index)
{
    struct server *srv = &o->srv[index];
    weave_task *acceptor;
    weave_shield shield;
    int how;

    (void)weave_cancel_on_signals(&srv->caught);
    srv->idle_ms = o->idle_ms;
    srv->head_ms = o->head_ms;
    srv->tls = o->tls;
    (void)weave_sem_init(&srv->handshakes, HANDSHAKES);
    srv->date_sec = -1;
    if ((how = start_listening(o, index, srv)) != LISTENING) {
        srv->failed = how == FAILED;
        return NULL;
    }
    if (!(acceptor = weave_spawn(accept_loop, srv))) {
        (void)fprintf(stderr, "http_hello: weave_spawn: %s\n", strerror(errno));
        weave_close(srv->listen_fd);
        srv->failed = true;
        return NULL;
    }
    /* Serve until Ctrl-C cancels this task; then clean up in a shield. */
    (void)weave_join(acceptor, NULL);
    weave_shield_begin(&shield);
    (void)weave_cancel(acceptor);
    (void)weave_join(acceptor, NULL);
    /* No connection comes after this: those open are the ones the stop
     * cancels. */
    srv->open_at_stop = srv->active;
    srv->stopped = true;
    weave_close(srv->listen_fd);
    weave_shield_end(&shield);
    /* weave_run cancels the connections still open and returns once every
     * one has closed; main prints the figures then, so that they count
     * what those connections did up to their end. */
    return NULL;
}

static void *server_main(void *arg)
{
    return serve(arg, 0);
}

static void *server_main_indexed(unsigned index, void *arg)
{
    return serve(arg, index);
}

/* The stop line, printed once weave_run has returned: every connection has
 * ended by then. With several schedulers, their figures added up.
 * SIGPIPE is no longer blocked, as weave_run blocks it only while it runs;
 * ignore it, so that a stdout nobody reads any more (a pipe closed early)
 * makes the line fail with EPIPE instead of killing the process and hiding
 * its exit status. */
static void print_stop(const struct options *o, int caught)
{
    struct server t;

    memset(&t, 0, sizeof(t));
    for (unsigned i = 0; i < o->threads; i++) {
        t.accepted += o->srv[i].accepted;
        t.requests += o->srv[i].requests;
        t.idle_close += o->srv[i].idle_close;
        t.head_close += o->srv[i].head_close;
        t.open_at_stop += o->srv[i].open_at_stop;
    }
    (void)signal(SIGPIPE, SIG_IGN);
    printf("\nhttp_hello: %s, stopped: %llu connections, %llu requests, %llu idle timeouts, "
           "%llu head timeouts, %llu open at the stop\n",
           caught == SIGINT    ? "SIGINT"
           : caught == SIGTERM ? "SIGTERM"
                               : "accept failed",
           (unsigned long long)t.accepted, (unsigned long long)t.requests,
           (unsigned long long)t.idle_close, (unsigned long long)t.head_close,
           (unsigned long long)t.open_at_stop);
}

static _Noreturn void usage(int status)
{
    (void)fprintf(status ? stderr : stdout,
                  "usage: http_hello [--host H] [--port P] [--idle-ms MS] [--head-ms MS] "
                  "[--threads N] [--tls CERT KEY]\n"
                  "  --host H      address to listen on (default 127.0.0.1; '' = every address)\n"
                  "  --port P      port (default 8080; 0 picks a free one)\n"
                  "  --idle-ms MS  close a connection idle this long (1..3600000, default 5000)\n"
                  "  --head-ms MS  time to receive a request's whole head (1..3600000, default\n"
                  "                10000); a client slower than that is disconnected\n"
                  "  --threads N   schedulers, each on a thread of its own, all listening on\n"
                  "                the port (SO_REUSEPORT) (1..%d, default: one per online CPU)\n"
                  "  --tls CERT KEY  serve HTTPS: the certificate chain and its key, PEM files\n",
                  WEAVE_THREADS_MAX);
    exit(status);
}

/* A whole number option from min to max. */
static int64_t parse_num(const char *arg, long long min, long long max)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(arg, &end, 10);
    if (errno || *end || end == arg || v < min || v > max)
        usage(2);
    return v;
}

/* Run the servers: one on this thread as weave_run, or o->threads of them
 * (weave_run_threads). Returns what that returned. */
static int run(struct options *o)
{
    if (o->threads == 1)
        return weave_run(server_main, o, NULL);
    o->port_chan = weave_chan_new_shared(NI_MAXSERV, o->threads - 1);
    o->ready_chan = weave_chan_new_shared(sizeof(int), o->threads - 1);
    if (!o->port_chan || !o->ready_chan) {
        perror("http_hello: weave_chan_new_shared");
        exit(1);
    }
    return weave_run_threads(o->threads, NULL, server_main_indexed, o);
}

int main(int argc, char **argv)
{
    struct options o;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    bool stopped = false, failed = false;
    int rc, err, caught = 0;

    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.port = "8080";
    o.idle_ms = 5000;
    o.head_ms = 10000;
    o.threads = cpus < 1 ? 1 : cpus > WEAVE_THREADS_MAX ? WEAVE_THREADS_MAX : (unsigned)cpus;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(0);
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            o.host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            o.port = argv[++i];
        } else if (strcmp(argv[i], "--idle-ms") == 0 && i + 1 < argc) {
            o.idle_ms = parse_num(argv[++i], 1, 3600000);
        } else if (strcmp(argv[i], "--head-ms") == 0 && i + 1 < argc) {
            o.head_ms = parse_num(argv[++i], 1, 3600000);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            o.threads = (unsigned)parse_num(argv[++i], 1, WEAVE_THREADS_MAX);
        } else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            weave_tls_opts to = {.cert_file = argv[i + 1], .key_file = argv[i + 2]};

            if (!(o.tls = weave_tls_server_config(&to))) {
                (void)fprintf(stderr, "http_hello: --tls %s %s: %s (%s)\n", argv[i + 1],
                              argv[i + 2], strerror(errno), weave_tls_error());
                return 1;
            }
            i += 2;
        } else {
            usage(2);
        }
    }
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    if (!(o.srv = calloc(o.threads, sizeof(*o.srv)))) {
        perror("http_hello");
        return 1;
    }
    rc = run(&o);
    err = errno;
    for (unsigned i = 0; i < o.threads; i++) {
        stopped |= o.srv[i].stopped;
        failed |= o.srv[i].failed;
        if (!caught)
            caught = o.srv[i].caught;
    }
    if (stopped)
        print_stop(&o, caught);
    if (o.port_chan)
        (void)weave_chan_free(o.port_chan);
    if (o.ready_chan)
        (void)weave_chan_free(o.ready_chan);
    free(o.srv);
    weave_tls_config_free(o.tls);
    if (rc != 0 && err == EINTR) /* stopped by a signal: say so, as the shell expects */
        return failed ? 1 : 128 + caught;
    if (rc != 0) {
        errno = err;
        perror(o.threads == 1 ? "http_hello: weave_run" : "http_hello: weave_run_threads");
        return 1;
    }
    return failed;
}
