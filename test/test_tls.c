/*
 * test_tls.c - TLS over OpenSSL: weave's client and server against peers
 * written by others (openssl s_server and s_client, Python's ssl module,
 * curl), the ways a handshake or a connection goes wrong, and the
 * arguments.
 *
 * Certificates are made when the suite starts (tls_certs.sh, with the
 * openssl command, into a temporary directory; an unchecked fixture, so
 * once per TCase in the parent): a CA, "localhost" and 127.0.0.1 signed by
 * it, the same name expired since 2020, and a second CA nobody trusts.
 * Peers are started with posix_spawn on a port of their own choosing
 * (s_server, told 127.0.0.1:0, prints it) or on a weave listener's port
 * 0. Nothing leaves the machine.
 *
 * Every bad case runs against a weave server (in a task, a task per
 * connection, as a user would write one), or makes the server's side
 * fail, and then checks that the same server still serves a good client.
 *
 * Built without TLS (WEAVE_TEST_TLS 0), the suite checks that every call
 * fails with ENOTSUP instead.
 *
 * Streams: a buffered stream on each side of a connection, with a read
 * buffer smaller than a record, so that the bytes OpenSSL holds are read
 * without the fd telling.
 *
 * Check timeouts: "interop" 30 s x 4, "bad" 30 s x 9, "api" 30 s x 4 =
 * 510 s; the CTest timeout in CMakeLists.txt (540 s) is above it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weave_test.h"

extern char **environ;

#if WEAVE_TEST_TLS

/* ---- certificates ----------------------------------------------------------- */

static char certs[PATH_MAX]; /* the directory tls_certs.sh filled */

static void certs_make(void)
{
    const char *base = getenv("TMPDIR");
    char cmd[PATH_MAX * 2];

    snprintf(certs, sizeof(certs), "%s/weave-tls-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(certs)) {
        certs[0] = '\0';
        return;
    }
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", WEAVE_TEST_TLS_CERTS, certs);
    if (system(cmd) != 0)
        certs[0] = '\0'; /* every test fails on its first cert() */
}

static void certs_remove(void)
{
    char cmd[PATH_MAX + 16];

    if (!certs[0])
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
    if (system(cmd) != 0)
        fprintf(stderr, "test_tls: could not remove %s\n", certs);
}

/* The path of a file tls_certs.sh made (a few live at once). */
static const char *cert(const char *name)
{
    static char paths[8][PATH_MAX + 64];
    static unsigned next;
    char *p = paths[next++ % 8];

    ck_assert_msg(certs[0], "the certificates could not be made (tls_certs.sh)");
    ck_assert_uint_lt(strlen(name), 64);
    snprintf(p, sizeof(paths[0]), "%s/%s", certs, name);
    return p;
}

/* ---- peers started by the test ---------------------------------------------- */

struct peer {
    pid_t pid;
    int in;  /* its stdin (write end), or -1 */
    int out; /* its stdout (read end) */
};

/* Start argv[0] (a path) with stdin from a pipe (or /dev/null), stdout to a
 * pipe, and stderr to ours if keep_stderr, else to /dev/null. */
static void peer_start(struct peer *p, char *const argv[], bool want_stdin, bool keep_stderr)
{
    posix_spawn_file_actions_t fa;
    int in[2] = {-1, -1}, out[2];

    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    if (want_stdin)
        ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
    if (want_stdin)
        ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, in[0], 0), 0);
    else
        ck_assert_int_eq(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, out[1], 1), 0);
    if (!keep_stderr)
        ck_assert_int_eq(posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0), 0);
    ck_assert_msg(posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ) == 0, "cannot start %s",
                  argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    p->out = out[0];
    p->in = -1;
    if (want_stdin) {
        close(in[0]);
        p->in = in[1];
    }
}

/* Read the peer's stdout until end of file (or cap - 1 bytes, or 30 s),
 * NUL-terminated; returns the length. */
static size_t peer_read_all(struct peer *p, char *buf, size_t cap)
{
    weave_deadline d;
    size_t len = 0;
    ssize_t n;

    weave_deadline_begin(&d, 30000);
    while (len + 1 < cap && (n = weave_read(p->out, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    (void)weave_deadline_end(&d);
    buf[len] = '\0';
    return len;
}

/* Read the peer's stdout up to the line that starts with prefix; returns
 * what follows prefix on it (NUL-terminated, without the newline). */
static void peer_read_line(struct peer *p, const char *prefix, char *out, size_t cap)
{
    char line[512];
    size_t len = 0;
    weave_deadline d;

    weave_deadline_begin(&d, 30000);
    for (;;) {
        char c;
        ssize_t n = weave_read(p->out, &c, 1);

        ck_assert_msg(n == 1, "the peer ended before printing %s", prefix);
        if (c != '\n') {
            if (len + 1 < sizeof(line))
                line[len++] = c;
            continue;
        }
        line[len] = '\0';
        len = 0;
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            snprintf(out, cap, "%s", line + strlen(prefix));
            break;
        }
    }
    (void)weave_deadline_end(&d);
}

/* Wait for the peer to exit (killing it first if kill_it); its status. */
static int peer_end(struct peer *p, bool kill_it)
{
    int status = -1;

    if (kill_it)
        kill(p->pid, SIGTERM);
    if (p->in >= 0)
        weave_close(p->in);
    weave_close(p->out);
    ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
    return status;
}

/* ---- a weave server: a listener task, a task per connection ----------------- */

enum serve_mode {
    SERVE_ECHO,     /* echo until the client's close_notify, then close */
    SERVE_HTTP,     /* read a request, answer "hello", close */
    SERVE_TRUNCATE, /* send half a record, then close without close_notify */
    SERVE_CUT       /* send one record, then close without close_notify */
};

struct server {
    weave_tls_config *cfg;
    int mode;           /* enum serve_mode */
    int64_t hs_timeout; /* weave_tls_accept's timeout, ms */
    int lfd;
    struct wt_port_str port;
    weave_task *task;
    int served;         /* connections that got through their handshake */
    int failed;         /* handshakes that failed */
    int last_err;       /* errno of the last failed handshake */
    char last_why[128]; /* and weave_tls_error's words */
    char alpn[32];      /* the protocol the last connection chose */
};

struct conn {
    struct server *srv;
    int fd;
};

static void serve_http(weave_tls *t)
{
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
                                "Connection: close\r\n\r\nhello\n";
    char req[4096];
    size_t len = 0;
    ssize_t n;

    while (len + 1 < sizeof(req) && (n = weave_tls_read(t, req + len, sizeof(req) - 1 - len)) > 0) {
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    ck_assert_ptr_nonnull(strstr(req, "\r\n\r\n"));
    ck_assert_int_eq(weave_tls_write(t, reply, sizeof(reply) - 1), (ssize_t)sizeof(reply) - 1);
}

static void *conn_task(void *arg)
{
    struct conn *c = arg;
    struct server *srv = c->srv;
    weave_tls *t;
    char buf[1024];
    ssize_t n;

    errno = 0;
    t = weave_tls_accept(srv->cfg, c->fd, srv->hs_timeout);
    if (!t) {
        srv->failed++;
        srv->last_err = errno;
        snprintf(srv->last_why, sizeof(srv->last_why), "%s", weave_tls_error());
        weave_close(c->fd);
        free(c);
        return NULL;
    }
    free(c);
    srv->served++;
    snprintf(srv->alpn, sizeof(srv->alpn), "%s", weave_tls_alpn(t) ? weave_tls_alpn(t) : "");
    switch (srv->mode) {
    case SERVE_ECHO:
        while ((n = weave_tls_read(t, buf, sizeof(buf))) > 0)
            ck_assert_int_eq(weave_tls_write(t, buf, (size_t)n), n);
        break;
    case SERVE_HTTP:
        serve_http(t);
        break;
    case SERVE_TRUNCATE:
    case SERVE_CUT: {
        /* Behind OpenSSL's back: a record's header and a few bytes of its
         * body, or a whole record; then the fd is shut down, so the
         * close_notify of weave_tls_close cannot go. */
        static const unsigned char half[] = {0x17, 0x03, 0x03, 0x00, 0x40, 1, 2, 3, 4, 5, 6, 7};

        if (srv->mode == SERVE_CUT)
            ck_assert_int_eq(weave_tls_write(t, "whole\n", 6), 6);
        else
            ck_assert_int_eq(weave_write(weave_tls_fd(t), half, sizeof(half)),
                             (ssize_t)sizeof(half));
        ck_assert_int_eq(shutdown(weave_tls_fd(t), SHUT_RDWR), 0);
        break;
    }
    default:
        break;
    }
    (void)weave_tls_close(t);
    return NULL;
}

static void *server_task(void *arg)
{
    struct server *srv = arg;
    weave_group *g = weave_group_new();
    int fd;

    ck_assert_ptr_nonnull(g);
    while ((fd = weave_accept(srv->lfd, NULL, NULL)) >= 0) {
        struct conn *c = malloc(sizeof(*c));

        ck_assert_ptr_nonnull(c);
        c->srv = srv;
        c->fd = fd;
        ck_assert_ptr_nonnull(weave_group_spawn(g, conn_task, c));
    }
    ck_assert_int_eq(errno, ECANCELED);
    ck_assert_int_eq(weave_group_free(g), 0);
    return NULL;
}

/* Start a server on 127.0.0.1 with cert_file (and server.key). */
static void server_start(struct server *srv, const char *cert_file, int mode,
                         const char *const *alpn)
{
    weave_tls_opts o = {.cert_file = cert_file, .key_file = cert("server.key"), .alpn = alpn};

    memset(srv, 0, sizeof(*srv));
    srv->mode = mode;
    srv->hs_timeout = -1;
    srv->cfg = weave_tls_server_config(&o);
    ck_assert_msg(srv->cfg != NULL, "server config: %s (%s)", strerror(errno), weave_tls_error());
    srv->lfd = weave_tcp_listen("127.0.0.1", "0", 16);
    ck_assert_int_ge(srv->lfd, 0);
    srv->port = wt_port_str(srv->lfd);
    srv->task = WT_SPAWN(server_task, srv);
}

/* Wait until the server has handled count connections (the last one's
 * task may still be closing it: a yield or two more). */
static void server_wait(const struct server *srv, int count)
{
    for (int i = 0; i < 30000 && srv->served + srv->failed < count; i++)
        ck_assert_int_eq(weave_sleep(1), 0);
    ck_assert_int_ge(srv->served + srv->failed, count);
}

static void server_stop(struct server *srv)
{
    ck_assert_int_eq(weave_cancel(srv->task), 0);
    WT_JOIN(srv->task);
    ck_assert_int_eq(weave_close(srv->lfd), 0);
    weave_tls_config_free(srv->cfg);
}

/* ---- a weave client --------------------------------------------------------- */

/* A client config trusting ca (a file name in the certificates, or NULL
 * for no verification), offering alpn. */
static weave_tls_config *client_config(const char *ca, const char *const *alpn)
{
    weave_tls_opts o = {.alpn = alpn};
    weave_tls_config *c;

    if (ca)
        o.ca_file = cert(ca);
    else
        o.flags = WEAVE_TLS_NO_VERIFY;
    c = weave_tls_client_config(&o);
    ck_assert_msg(c != NULL, "client config: %s (%s)", strerror(errno), weave_tls_error());
    return c;
}

/* Connect to port on 127.0.0.1 and run the handshake naming host; NULL
 * with errno on a failed handshake (the fd closed). */
static weave_tls *client_connect(weave_tls_config *c, const char *port, const char *host,
                                 int64_t timeout)
{
    int fd = weave_tcp_connect("127.0.0.1", port, 5000);
    weave_tls *t;
    int err;

    ck_assert_int_ge(fd, 0);
    errno = 0;
    if ((t = weave_tls_connect(c, fd, host, timeout)))
        return t;
    err = errno;
    ck_assert_int_eq(weave_close(fd), 0); /* still the caller's */
    errno = err;
    return NULL;
}

/* Read exactly n bytes from t. */
static void read_exact(weave_tls *t, char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = weave_tls_read(t, buf + got, n - got);

        ck_assert_msg(r > 0, "read: %zd, %s (%s)", r, strerror(errno), weave_tls_error());
        got += (size_t)r;
    }
}

/* A round trip through an echo server, and a clean close. */
static void echo_once(weave_tls *t)
{
    char buf[16];

    ck_assert_int_eq(weave_tls_write(t, "ping\n", 5), 5);
    read_exact(t, buf, 5);
    ck_assert_int_eq(memcmp(buf, "ping\n", 5), 0);
    ck_assert_int_eq(weave_tls_close(t), 0);
}

/* The proof that srv still serves: a good client's round trip. */
static void good_client(struct server *srv, const char *ca)
{
    weave_tls_config *c = client_config(ca, NULL);
    weave_tls *t = client_connect(c, srv->port.s, "localhost", 10000);

    ck_assert_msg(t != NULL, "good client: %s (%s)", strerror(errno), weave_tls_error());
    echo_once(t);
    weave_tls_config_free(c);
}

/* A plain TCP connection to srv. */
static int raw_connect(struct server *srv)
{
    int fd = weave_tcp_connect("127.0.0.1", srv->port.s, 5000);

    ck_assert_int_ge(fd, 0);
    return fd;
}

/* ---- interop ------------------------------------------------------------------ */

WT_TEST(client_against_openssl_s_server)
{
    static const char *const alpn[] = {"h2", "http/1.1", NULL};
    char *argv[] = {WEAVE_TEST_OPENSSL,
                    "s_server",
                    "-accept",
                    "127.0.0.1:0",
                    "-cert",
                    (char *)cert("server.crt"),
                    "-key",
                    (char *)cert("server.key"),
                    "-rev",
                    "-alpn",
                    "x-weave,http/1.1",
                    NULL};
    weave_tls_config *c = client_config("ca.crt", alpn);
    struct peer p;
    char port[64], buf[32];
    weave_tls *t;

    peer_start(&p, argv, false, false);
    peer_read_line(&p, "ACCEPT 127.0.0.1:", port, sizeof(port));
    t = client_connect(c, port, "localhost", 10000);
    ck_assert_msg(t != NULL, "%s (%s)", strerror(errno), weave_tls_error());
    ck_assert_str_eq(weave_tls_alpn(t), "http/1.1");
    /* s_server -rev answers each line reversed. */
    ck_assert_int_eq(weave_tls_write(t, "hello tls\n", 10), 10);
    read_exact(t, buf, 10);
    ck_assert_int_eq(memcmp(buf, "slt olleh\n", 10), 0);
    ck_assert_int_eq(weave_tls_close(t), 0);
    (void)peer_end(&p, true);
    weave_tls_config_free(c);
    WT_ASSERT_IDLE();
}

WT_TEST(server_against_openssl_s_client)
{
    static const char *const alpn[] = {"http/1.1", NULL};
    struct server srv;
    char connect[64];
    struct peer p;

    server_start(&srv, cert("chain.crt"), SERVE_ECHO, alpn);
    snprintf(connect, sizeof(connect), "127.0.0.1:%s", srv.port.s);
    {
        char *argv[] = {WEAVE_TEST_OPENSSL,
                        "s_client",
                        "-connect",
                        connect,
                        "-servername",
                        "localhost",
                        "-verify_hostname",
                        "localhost",
                        "-CAfile",
                        (char *)cert("ca.crt"),
                        "-verify_return_error",
                        "-alpn",
                        "x-other,http/1.1",
                        "-quiet",
                        NULL};

        peer_start(&p, argv, true, false);
    }
    /* -quiet: stdin goes to the server, the server's data to stdout. */
    ck_assert_int_eq(weave_write(p.in, "ping from s_client\n", 19), 19);
    {
        char line[32];
        size_t len = 0;

        while (len < 19) {
            ssize_t n = weave_read(p.out, line + len, 19 - len);

            ck_assert_int_gt(n, 0);
            len += (size_t)n;
        }
        ck_assert_int_eq(memcmp(line, "ping from s_client\n", 19), 0);
    }
    (void)peer_end(&p, true); /* -quiet ignores the end of its input: ended here */
    server_wait(&srv, 1);
    ck_assert_int_eq(srv.served, 1);
    ck_assert_str_eq(srv.alpn, "http/1.1");
    server_stop(&srv);
    WT_ASSERT_IDLE();
}

WT_TEST(server_against_python_ssl)
{
    static const char *const alpn[] = {"h2", "http/1.1", NULL};
    static const char script[] =
        "import socket, ssl, sys\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
        "ctx.set_alpn_protocols(['http/1.1'])\n"
        "with socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=60) as s:\n"
        "    with ctx.wrap_socket(s, server_hostname='localhost') as t:\n"
        "        t.sendall(b'ping from python\\n')\n"
        "        got = b''\n"
        "        while len(got) < 17:\n"
        "            got += t.recv(64)\n"
        "        print(t.selected_alpn_protocol(), got.decode().strip(), t.version())\n"
        "        t.unwrap()\n";
    struct server srv;
    char out[256];
    struct peer p;
    int status;

    server_start(&srv, cert("chain.crt"), SERVE_ECHO, alpn);
    {
        char *argv[] = {WEAVE_TEST_PYTHON,      "-c",       (char *)script,
                        (char *)cert("ca.crt"), srv.port.s, NULL};

        peer_start(&p, argv, false, true);
    }
    peer_read_all(&p, out, sizeof(out));
    status = peer_end(&p, false);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "python: status %d, said: %s",
                  status, out);
    ck_assert_msg(strncmp(out, "http/1.1 ping from python TLSv1.3", 33) == 0, "python said: %s",
                  out);
    server_wait(&srv, 1);
    ck_assert_int_eq(srv.served, 1);
    server_stop(&srv);
    WT_ASSERT_IDLE();
}

WT_TEST(server_against_curl)
{
    static const char *const alpn[] = {"http/1.1", NULL};
    struct server srv;
    char url[64], out[256];
    struct peer p;
    int status;

    server_start(&srv, cert("chain.crt"), SERVE_HTTP, alpn);
    snprintf(url, sizeof(url), "https://localhost:%s/", srv.port.s);
    {
        char *argv[] = {
            WEAVE_TEST_CURL,        "-sS", "-4", "--noproxy", "*", "--max-time", "60", "--cacert",
            (char *)cert("ca.crt"), url,   NULL};

        peer_start(&p, argv, false, true);
    }
    peer_read_all(&p, out, sizeof(out));
    status = peer_end(&p, false);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "curl: status %d", status);
    ck_assert_str_eq(out, "hello\n");
    server_wait(&srv, 1);
    ck_assert_int_eq(srv.served, 1);
    ck_assert_str_eq(srv.alpn, "http/1.1"); /* curl offers h2 too, if it can */
    server_stop(&srv);
    WT_ASSERT_IDLE();
}

/* ---- what goes wrong ------------------------------------------------------------ */

/* A client that expects a verification failure naming why. */
static void client_rejects(struct server *srv, const char *host, const char *why)
{
    weave_tls_config *c = client_config("ca.crt", NULL);

    errno = 0;
    ck_assert_ptr_null(client_connect(c, srv->port.s, host, 10000));
    ck_assert_int_eq(errno, EKEYREJECTED);
    ck_assert_msg(strstr(weave_tls_error(), why), "weave_tls_error: %s", weave_tls_error());
    weave_tls_config_free(c);
}

WT_TEST(expired_certificate)
{
    struct server srv;

    server_start(&srv, cert("expired.crt"), SERVE_ECHO, NULL);
    client_rejects(&srv, "localhost", "certificate has expired");
    server_wait(&srv, 1);
    ck_assert_int_eq(srv.failed, 1);
    ck_assert_int_eq(srv.last_err, EPROTO); /* the client's alert */
    ck_assert_msg(strstr(srv.last_why, "expired"), "server saw: %s", srv.last_why);
    good_client(&srv, NULL); /* one that does not look */
    server_stop(&srv);
    WT_ASSERT_IDLE();
}

WT_TEST(wrong_hostname)
{
    struct server srv;

    server_start(&srv, cert("chain.crt"), SERVE_ECHO, NULL);
    client_rejects(&srv, "not-localhost.example", "hostname mismatch");
    client_rejects(&srv, "127.0.0.2", "IP address mismatch");
    {
        /* The certificate names 127.0.0.1 too. */
        weave_tls_config *c = client_config("ca.crt", NULL);
        weave_tls *t = client_connect(c, srv.port.s, "127.0.0.1", 10000);

        ck_assert_msg(t != NULL, "%s (%s)", strerror(errno), weave_tls_error());
        echo_once(t);
        weave_tls_config_free(c);
    }
    good_client(&srv, "ca.crt");
    server_stop(&srv);
    WT_ASSERT_IDLE();
}

WT_TEST(unknown_ca)
{
    struct server srv;

    /* Signed by other-ca, whom the client does not trust. */
    server_start(&srv, cert("other.crt"), SERVE_ECHO, NULL);
    client_rejects(&srv, "localhost", "unable to get local issuer certificate");
    server_wait(&srv, 1);
    ck_assert_int_eq(srv.last_err, EPROTO);
    ck_assert_msg(strstr(srv.last_why, "unknown ca"), "server saw: %s", srv.last_why);
    good_client(&srv, "other-ca.crt");
    server_stop(&srv);
    WT_ASSERT_IDLE();
}

/* A plain-text server: answers anything with an HTTP error and closes. */
static void *plain_server_task(void *arg)
{
    int lfd = (int)wt_int(arg), fd;
    char buf[512];

    fd = weave_accept(lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    (void)weave_read(fd, buf, sizeof(buf));
    (void)weave_write(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    ck_assert_int_eq(weave_close(fd), 0);
    return NULL;
}

WT_TEST(plain_text_peers)
{
    weave_tls_config *c = client_config("ca.crt", NULL);
    int lfd = weave_tcp_listen("127.0.0.1", "0", 4), fd;
    struct wt_port_str port = wt_port_str(lfd);
    weave_task *plain = WT_SPAWN(plain_server_task, wt_ptr(lfd));
    struct server srv;
    char buf[64];

    /* weave's client, a plain-text server. */
    ck_assert_ptr_null(client_connect(c, port.s, "localhost", 10000));
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_str_ne(weave_tls_error(), "");
    WT_JOIN(plain);
    ck_assert_int_eq(weave_close(lfd), 0);
    weave_tls_config_free(c);

    /* weave's server, a plain-text client. */
    server_start(&srv, cert("chain.crt"), SERVE_ECHO, NULL);
    fd = raw_connect(&srv);
    ck_assert_int_eq(weave_write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
    server_wait(&srv, 1);
    ck_assert_int_eq(srv.failed, 1);
    ck_assert_int_eq(srv.last_err, EPROTO);
    ck_assert_msg(strstr(srv.last_why, "http request"), "server saw: %s", srv.last_why);
    (void)weave_read(fd, buf, sizeof(buf)); /* an alert, then the end */
    ck_assert_int_eq(weave_close(fd), 0);
    good_client(&srv, "ca.crt");
    server_stop(&srv);
    WT_ASSERT_IDLE();
}

WT_TEST(garbage_before_handshake)
{
    static const unsigned char junk[] = {0x00, 0xff, 0x13, 0x37, 'g',  'a',  'r',
                                         'b',  'a',  'g',  'e',  0x16, 0x03, 0x01,
                                         0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00};
    struct server srv;
    int fd;

    server_start(&srv, cert("chain.crt"), SERVE_ECHO, NULL);
    fd = raw_connect(&srv);
    ck_assert_int_eq(weave_write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    server_wait(&srv, 1);
    ck_assert_int_eq(srv.failed, 1);
    ck_assert_int_eq(srv.last_err, EPROTO);
    ck_assert_str_ne(srv.last_why, "");
    ck_assert_int_eq(weave_close(fd), 0);
    good_client(&srv, "ca.crt");
    ck_assert_int_eq(srv.served, 1);
    server_stop(&srv);
    WT_ASSERT_IDLE();
}

/* A task that tries a handshake with a server that never answers. */
struct stuck {
    weave_tls_config *cfg;
    const char *port;
    int64_t timeout;  /* weave_tls_connect's */
    int64_t deadline; /* a deadline scope around it, or -1 */
    int err;
};

static void *stuck_client_task(void *arg)
{
    struct stuck *k = arg;
    int fd = weave_tcp_connect("127.0.0.1", k->port, 5000);
    weave_deadline d;

    ck_assert_int_ge(fd, 0);
    if (k->deadline >= 0)
        weave_deadline_begin(&d, k->deadline);
    errno = 0;
    ck_assert_ptr_null(weave_tls_connect(k->cfg, fd, "localhost", k->timeout));
    k->err = errno;
    if (k->deadline >= 0)
        ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_int_eq(weave_close(fd), 0); /* still ours */
    return NULL;
}

/* After a stuck client: the silent server's side is there to accept and
 * close, and nothing is left of the client. */
static void stuck_end(int lfd, weave_tls_config *c)
{
    int peer = weave_accept(lfd, NULL, NULL);

    ck_assert_int_ge(peer, 0);
    ck_assert_int_eq(weave_close(peer), 0);
    ck_assert_int_eq(weave_close(lfd), 0);
    weave_tls_config_free(c);
    WT_ASSERT_IDLE();
}

WT_TEST(stalled_handshake_times_out)
{
    /* A ClientHello's record header and a few bytes of it, then nothing. */
    static const unsigned char part[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
    weave_tls_config *c = client_config("ca.crt", NULL);
    int lfd = weave_tcp_listen("127.0.0.1", "0", 4), fd, peer;
    struct wt_port_str port = wt_port_str(lfd);
    struct stuck k = {.cfg = c, .port = port.s, .timeout = 200, .deadline = -1};
    struct server srv;
    int64_t t0;

    /* The server's side: a client stalls mid-handshake; the accept's
     * timeout ends it, and the server goes on. */
    server_start(&srv, cert("chain.crt"), SERVE_ECHO, NULL);
    srv.hs_timeout = 300;
    fd = raw_connect(&srv);
    ck_assert_int_eq(weave_write(fd, part, sizeof(part)), (ssize_t)sizeof(part));
    t0 = wt_now_ns();
    server_wait(&srv, 1);
    ck_assert_int_ge(wt_ms_since(t0), 250);
    ck_assert_int_eq(srv.last_err, ETIMEDOUT);
    ck_assert_int_eq(weave_close(fd), 0);
    srv.hs_timeout = 10000; /* a good handshake under valgrind may take 300 ms */
    good_client(&srv, "ca.crt");
    server_stop(&srv);

    /* The client's side: a server that accepts and says nothing. The
     * handshake's own timeout, then a deadline scope around it. */
    t0 = wt_now_ns();
    WT_JOIN(WT_SPAWN(stuck_client_task, &k));
    ck_assert_int_eq(k.err, ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), 200);
    peer = weave_accept(lfd, NULL, NULL);
    ck_assert_int_ge(peer, 0);
    ck_assert_int_eq(weave_close(peer), 0);
    k.timeout = -1;
    k.deadline = 150;
    t0 = wt_now_ns();
    WT_JOIN(WT_SPAWN(stuck_client_task, &k));
    ck_assert_int_eq(k.err, ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), 150);
    stuck_end(lfd, c);
}

WT_TEST(cancelled_handshake)
{
    weave_tls_config *c = client_config("ca.crt", NULL);
    int lfd = weave_tcp_listen("127.0.0.1", "0", 4);
    struct wt_port_str port = wt_port_str(lfd);
    struct stuck k = {.cfg = c, .port = port.s, .timeout = -1, .deadline = -1};
    weave_task *t = WT_SPAWN(stuck_client_task, &k);

    ck_assert_int_eq(weave_sleep(50), 0);
    ck_assert_int_eq(weave_cancel(t), 0);
    WT_JOIN(t);
    ck_assert_int_eq(k.err, ECANCELED);
    stuck_end(lfd, c);
}

WT_TEST(truncated_record)
{
    weave_tls_config *c = client_config("ca.crt", NULL);
    struct server srv;
    weave_tls *t;
    char buf[64];

    /* Half a record, then the end without close_notify. */
    server_start(&srv, cert("chain.crt"), SERVE_TRUNCATE, NULL);
    t = client_connect(c, srv.port.s, "localhost", 10000);
    ck_assert_ptr_nonnull(t);
    WT_FAILS(weave_tls_read(t, buf, sizeof(buf)), ECONNRESET);
    ck_assert_str_eq(weave_tls_error(), "unexpected eof while reading");
    WT_FAILS(weave_tls_read(t, buf, sizeof(buf)), ECONNRESET); /* and from then on */
    WT_FAILS(weave_tls_write(t, "x", 1), ECONNRESET);
    ck_assert_int_eq(weave_tls_close(t), 0); /* no close_notify to send */

    /* Whole records, then the end without close_notify: what came is
     * read, and the end is not taken for one. */
    srv.mode = SERVE_CUT;
    t = client_connect(c, srv.port.s, "localhost", 10000);
    ck_assert_ptr_nonnull(t);
    read_exact(t, buf, 6);
    ck_assert_int_eq(memcmp(buf, "whole\n", 6), 0);
    WT_FAILS(weave_tls_read(t, buf, sizeof(buf)), ECONNRESET);
    ck_assert_int_eq(weave_tls_close(t), 0);

    /* And a clean end, for contrast: 0, as often as asked. */
    srv.mode = SERVE_ECHO;
    t = client_connect(c, srv.port.s, "localhost", 10000);
    ck_assert_ptr_nonnull(t);
    echo_once(t);
    server_wait(&srv, 3);
    ck_assert_int_eq(srv.served, 3);
    server_stop(&srv);
    weave_tls_config_free(c);
    WT_ASSERT_IDLE();
}

/* A task that reads from a TLS connection until it ends, counting bytes. */
struct reader {
    weave_tls *t;
    ssize_t last;
    int err;
};

static void *reader_task(void *arg)
{
    struct reader *r = arg;
    char buf[256];

    errno = 0;
    r->last = weave_tls_read(r->t, buf, sizeof(buf));
    r->err = errno;
    return NULL;
}

/* A task that writes len bytes of a pattern to a TLS connection. */
struct writer {
    weave_tls *t;
    size_t len;
    ssize_t result;
};

static void *writer_task(void *arg)
{
    struct writer *w = arg;
    char *out = malloc(w->len);

    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < w->len; i++)
        out[i] = (char)('a' + i % 26);
    w->result = weave_tls_write(w->t, out, w->len);
    free(out);
    return NULL;
}

/* A task that is cancelled (by its spawner, before it runs), sees it, and
 * closes the connection arg; returns close's result. */
static void *cancelled_closer_task(void *arg)
{
    WT_FAILS(weave_sleep(1000), ECANCELED);
    return wt_ptr(weave_tls_close(arg));
}

/* The server's end of a connection made in-process, both sides in tasks. */
struct pair_side {
    weave_tls_config *cfg;
    int fd;
    weave_tls *t;
};

static void *accept_side_task(void *arg)
{
    struct pair_side *p = arg;

    p->t = weave_tls_accept(p->cfg, p->fd, 10000);
    ck_assert_msg(p->t != NULL, "%s (%s)", strerror(errno), weave_tls_error());
    return NULL;
}

/* A connected pair over a socketpair: *client and *server. */
static void make_pair(weave_tls_config *cc, weave_tls_config *sc, weave_tls **client,
                      weave_tls **server)
{
    struct pair_side s = {.cfg = sc};
    weave_task *a;
    int sv[2];

    wt_make_socketpair(sv, SOCK_STREAM);
    s.fd = sv[1];
    a = WT_SPAWN(accept_side_task, &s);
    *client = weave_tls_connect(cc, sv[0], "localhost", 10000);
    ck_assert_msg(*client != NULL, "%s (%s)", strerror(errno), weave_tls_error());
    WT_JOIN(a);
    *server = s.t;
}

WT_TEST(timeouts_cancellation_and_close_notify)
{
    weave_tls_opts so = {.cert_file = cert("chain.crt"), .key_file = cert("server.key")};
    weave_tls_config *sc = weave_tls_server_config(&so);
    weave_tls_config *cc = client_config("ca.crt", NULL);
    struct reader r = {0};
    weave_tls *a, *b;
    weave_task *task;
    char buf[64];
    int64_t t0;

    ck_assert_ptr_nonnull(sc);
    make_pair(cc, sc, &a, &b);
    ck_assert_int_ge(weave_tls_fd(a), 0);
    ck_assert_ptr_null(weave_tls_alpn(a));

    /* The connection's timeout: a read of a silent peer ends, and loses
     * nothing: the next read gets what comes. */
    ck_assert_int_eq(weave_tls_set_timeout(a, 100), 0);
    t0 = wt_now_ns();
    WT_FAILS(weave_tls_read(a, buf, sizeof(buf)), ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), 100);
    ck_assert_int_eq(weave_tls_write(b, "later\n", 6), 6);
    read_exact(a, buf, 6);
    ck_assert_int_eq(memcmp(buf, "later\n", 6), 0);
    ck_assert_int_eq(weave_tls_set_timeout(a, -1), 0);

    /* A deadline scope ends a read too. */
    {
        weave_deadline d;

        weave_deadline_begin(&d, 50);
        WT_FAILS(weave_tls_read(a, buf, sizeof(buf)), ETIMEDOUT);
        ck_assert_int_eq(weave_deadline_end(&d), 1);
    }

    /* Cancellation ends a parked read. */
    r.t = a;
    task = WT_SPAWN(reader_task, &r);
    ck_assert_int_eq(weave_sleep(20), 0);
    ck_assert_int_eq(weave_cancel(task), 0);
    WT_JOIN(task);
    ck_assert_int_eq(r.last, -1);
    ck_assert_int_eq(r.err, ECANCELED);

    /* A write larger than the socket's buffers, read on the other side
     * while it is written. */
    {
        struct writer w = {.t = b, .len = 256 * 1024};
        char *in = malloc(w.len);
        size_t got = 0;

        ck_assert_ptr_nonnull(in);
        task = WT_SPAWN(writer_task, &w);
        while (got < w.len) {
            ssize_t n = weave_tls_read(a, in + got, w.len - got);

            ck_assert_int_gt(n, 0);
            got += (size_t)n;
        }
        WT_JOIN(task);
        ck_assert_int_eq(w.result, (ssize_t)w.len);
        for (size_t i = 0; i < w.len; i++)
            ck_assert_int_eq(in[i], (char)('a' + i % 26));
        free(in);
    }

    /* A cancelled task's close still sends close_notify (under its
     * shield): the peer reads a clean end, 0, again and again. */
    task = WT_SPAWN(cancelled_closer_task, b);
    ck_assert_int_eq(weave_cancel(task), 0);
    ck_assert_int_eq(wt_int(WT_JOIN(task)), 0);
    ck_assert_int_eq(weave_tls_read(a, buf, sizeof(buf)), 0);
    ck_assert_int_eq(weave_tls_read(a, buf, sizeof(buf)), 0);
    ck_assert_int_eq(weave_tls_close(a), 0);

    /* A write the peer does not read: the connection's timeout ends it
     * part way, and the connection cannot be written again. */
    make_pair(cc, sc, &a, &b);
    {
        size_t len = 4 * 1024 * 1024;
        char *big = calloc(1, len);

        ck_assert_ptr_nonnull(big);
        ck_assert_int_eq(weave_tls_set_timeout(b, 100), 0);
        WT_FAILS(weave_tls_write(b, big, len), ETIMEDOUT);
        WT_FAILS(weave_tls_write(b, "x", 1), EPIPE);
        free(big);
    }
    ck_assert_int_eq(weave_tls_close(b), 0); /* no close_notify: just the fd */
    (void)weave_tls_close(a);                /* its close_notify may find no peer: EPIPE */
    weave_tls_config_free(cc);
    weave_tls_config_free(sc);
    WT_ASSERT_IDLE();
}

/* ---- arguments and files -------------------------------------------------------- */

/* The echo side of streams_over_tls: takes in LINES lines, then sends
 * them all back in one flush (so in one TLS record), then waits for the
 * end. */
#define LINES 200

static void *stream_echo_task(void *arg)
{
    weave_stream *s = weave_stream_tls(arg, NULL);
    char line[256];

    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < LINES; i++) {
        ssize_t n = weave_stream_read_line(s, line, sizeof(line));

        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(weave_stream_printf(s, "echo: %s", line), (int)n + 6);
    }
    ck_assert_int_eq(weave_stream_flush(s), 0);
    ck_assert_int_eq(weave_stream_read_line(s, line, sizeof(line)), 0); /* close_notify */
    ck_assert_int_eq(weave_stream_close(s), 0);
    return NULL;
}

WT_TEST(streams_over_tls)
{
    weave_tls_opts so = {.cert_file = cert("chain.crt"), .key_file = cert("server.key")};
    weave_tls_config *sc = weave_tls_server_config(&so);
    weave_tls_config *cc = client_config("ca.crt", NULL);
    /* A read buffer far smaller than the record the echoes come in, and
     * echoed lines of 32 bytes: every other line leaves the buffer empty
     * while OpenSSL holds the rest of the record, which the fd cannot
     * tell of. */
    weave_stream_opts small = {.read_size = 64};
    weave_stream *s;
    weave_tls *a, *b;
    weave_task *echo;
    char line[256];

    ck_assert_ptr_nonnull(sc);
    make_pair(cc, sc, &a, &b);
    echo = WT_SPAWN(stream_echo_task, b);
    ck_assert_ptr_nonnull(s = weave_stream_tls(a, &small));
    ck_assert_int_eq(weave_stream_fd(s), weave_tls_fd(a));
    /* Many lines in one flush, read back one by one. */
    for (int i = 0; i < LINES; i++)
        ck_assert_int_eq(weave_stream_printf(s, "line %03d of a talk, TLS!!\n", i), 26);
    ck_assert_int_eq(weave_stream_flush(s), 0);
    for (int i = 0; i < LINES; i++) {
        char want[64];

        snprintf(want, sizeof(want), "echo: line %03d of a talk, TLS!!\n", i);
        ck_assert_int_eq(weave_stream_read_line(s, line, sizeof(line)), 32);
        ck_assert_str_eq(line, want);
    }
    ck_assert_int_eq(weave_stream_close(s), 0); /* sends close_notify, frees a */
    WT_JOIN(echo);
    WT_FAILS_NULL(weave_stream_tls(NULL, NULL), EINVAL);
    weave_tls_config_free(cc);
    weave_tls_config_free(sc);
    WT_ASSERT_IDLE();
}

WT_TEST(bad_arguments)
{
    weave_tls_opts o = {0};
    weave_tls_config *cc = client_config("ca.crt", NULL);
    weave_tls_config *sc;
    static const char *const empty_name[] = {"", NULL};
    char buf[4];

    o.cert_file = cert("server.crt");
    WT_FAILS_NULL(weave_tls_server_config(NULL), EINVAL);
    WT_FAILS_NULL(weave_tls_server_config(&o), EINVAL); /* no key */
    o.key_file = cert("server.key");
    o.flags = WEAVE_TLS_NO_VERIFY;
    WT_FAILS_NULL(weave_tls_server_config(&o), EINVAL);
    o.flags = 0;
    o.reserved[1] = &o;
    WT_FAILS_NULL(weave_tls_server_config(&o), EINVAL);
    o.reserved[1] = NULL;
    o.alpn = empty_name;
    WT_FAILS_NULL(weave_tls_server_config(&o), EINVAL);
    o.alpn = NULL;
    WT_FAILS_NULL(weave_tls_client_config(&o), EINVAL); /* a server's files */
    o.flags = 1u << 9;
    WT_FAILS_NULL(weave_tls_server_config(&o), EINVAL);
    o.flags = 0;
    sc = weave_tls_server_config(&o);
    ck_assert_ptr_nonnull(sc);

    WT_FAILS_NULL(weave_tls_connect(NULL, 0, "localhost", -1), EINVAL);
    WT_FAILS_NULL(weave_tls_connect(sc, 0, "localhost", -1), EINVAL); /* a server's */
    WT_FAILS_NULL(weave_tls_accept(cc, 0, -1), EINVAL);               /* a client's */
    WT_FAILS_NULL(weave_tls_connect(cc, 0, NULL, -1), EINVAL);
    WT_FAILS_NULL(weave_tls_connect(cc, 0, "", -1), EINVAL);
    WT_FAILS_NULL(weave_tls_connect(cc, 0, "localhost", -2), EINVAL);
    WT_FAILS_NULL(weave_tls_connect(cc, -1, "localhost", -1), EBADF);
    WT_FAILS(weave_tls_read(NULL, buf, 1), EINVAL);
    WT_FAILS(weave_tls_write(NULL, buf, 1), EINVAL);
    WT_FAILS(weave_tls_set_timeout(NULL, 1), EINVAL);
    WT_FAILS(weave_tls_fd(NULL), EINVAL);
    WT_FAILS(weave_tls_close(NULL), EINVAL);
    ck_assert_ptr_null(weave_tls_alpn(NULL));
    ck_assert_str_eq(weave_tls_error(), "Invalid argument");
    weave_tls_config_free(NULL);
    weave_tls_config_free(sc);
    weave_tls_config_free(cc);
    WT_ASSERT_IDLE();
}

WT_TEST(file_errors)
{
    weave_tls_opts o = {.ca_file = "/nonexistent/ca.pem"};

    WT_FAILS_NULL(weave_tls_client_config(&o), ENOENT);
    o.ca_file = cert("server.key"); /* PEM, but no certificate */
    WT_FAILS_NULL(weave_tls_client_config(&o), EPROTO);
    ck_assert_str_ne(weave_tls_error(), "");
    o.ca_file = NULL;
    o.cert_file = cert("server.crt");
    o.key_file = "/nonexistent/key.pem";
    WT_FAILS_NULL(weave_tls_server_config(&o), ENOENT);
    o.key_file = cert("other-ca.key"); /* not the certificate's */
    WT_FAILS_NULL(weave_tls_server_config(&o), EPROTO);
    ck_assert_msg(strstr(weave_tls_error(), "mismatch"), "%s", weave_tls_error());
    o.cert_file = cert("server.key");
    o.key_file = cert("server.key");
    WT_FAILS_NULL(weave_tls_server_config(&o), EPROTO);
    WT_ASSERT_IDLE();
}

/* Outside a task: configs can be made; connections cannot. */
START_TEST(outside_a_task)
{
    weave_tls_config *c = weave_tls_client_config(NULL); /* the system's CAs */

    ck_assert_ptr_nonnull(c);
    WT_FAILS_NULL(weave_tls_connect(c, 0, "localhost", -1), EPERM);
    ck_assert_str_eq(weave_tls_error(), "");
    weave_tls_config_free(c);
}
END_TEST

#else /* built without TLS */

WT_TEST(every_call_is_enotsup)
{
    weave_tls_opts o = {0};
    char buf[4];

    WT_FAILS_NULL(weave_tls_client_config(&o), ENOTSUP);
    ck_assert_str_ne(weave_tls_error(), "");
    WT_FAILS_NULL(weave_tls_server_config(&o), ENOTSUP);
    WT_FAILS_NULL(weave_tls_connect(NULL, 0, "localhost", -1), ENOTSUP);
    WT_FAILS_NULL(weave_tls_accept(NULL, 0, -1), ENOTSUP);
    WT_FAILS(weave_tls_read(NULL, buf, 1), ENOTSUP);
    WT_FAILS(weave_tls_write(NULL, buf, 1), ENOTSUP);
    WT_FAILS(weave_tls_set_timeout(NULL, 1), ENOTSUP);
    WT_FAILS(weave_tls_fd(NULL), ENOTSUP);
    WT_FAILS(weave_tls_close(NULL), ENOTSUP);
    WT_FAILS_NULL(weave_stream_tls(NULL, NULL), EINVAL);
    ck_assert_ptr_null(weave_tls_alpn(NULL));
    weave_tls_config_free(NULL);
    WT_ASSERT_IDLE();
}

#endif

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
#if WEAVE_TEST_TLS
    TCase *interop = tcase_create("interop");
    TCase *bad = tcase_create("bad");
    TCase *api = tcase_create("api");

    /* They spawn programs, and run weave_run in a child each. */
    wt_tag_native(interop);
    wt_tag_native(bad);
    tcase_set_timeout(interop, 30);
    tcase_add_unchecked_fixture(interop, certs_make, certs_remove);
    tcase_add_test(interop, client_against_openssl_s_server);
    tcase_add_test(interop, server_against_openssl_s_client);
    tcase_add_test(interop, server_against_python_ssl);
    tcase_add_test(interop, server_against_curl);
    suite_add_tcase(s, interop);

    tcase_set_timeout(bad, 30);
    tcase_add_unchecked_fixture(bad, certs_make, certs_remove);
    tcase_add_test(bad, expired_certificate);
    tcase_add_test(bad, wrong_hostname);
    tcase_add_test(bad, unknown_ca);
    tcase_add_test(bad, plain_text_peers);
    tcase_add_test(bad, garbage_before_handshake);
    tcase_add_test(bad, stalled_handshake_times_out);
    tcase_add_test(bad, cancelled_handshake);
    tcase_add_test(bad, truncated_record);
    tcase_add_test(bad, timeouts_cancellation_and_close_notify);
    suite_add_tcase(s, bad);

    tcase_set_timeout(api, 30);
    tcase_add_unchecked_fixture(api, certs_make, certs_remove);
    tcase_add_test(api, streams_over_tls);
    tcase_add_test(api, bad_arguments);
    tcase_add_test(api, file_errors);
    tcase_add_test(api, outside_a_task);
    suite_add_tcase(s, api);
#else
    TCase *tc = tcase_create("notls");

    tcase_add_test(tc, every_call_is_enotsup);
    suite_add_tcase(s, tc);
#endif
    return s;
}

int main(void)
{
    return wt_main(tls_suite());
}
