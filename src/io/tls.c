/*
 * tls.c - TLS connections over OpenSSL 3: configs (an SSL_CTX each, shared
 * and refcounted) and connections (an SSL over a non-blocking fd).
 *
 * OpenSSL does the protocol and weave the waiting. Every call that talks
 * to the peer (handshake, read, write, close_notify) goes through drive():
 * it takes both sides of the fd (OpenSSL may write while reading, and read
 * while writing: a TLS 1.3 key update, session tickets), runs the OpenSSL
 * call, and on SSL_ERROR_WANT_READ / WANT_WRITE parks the task on the fd
 * with weave__fd_park, as the other I/O calls do on EAGAIN, so
 * cancellation, deadline scopes and weave_close reach it the same way.
 * OpenSSL's socket BIO reports WANT_* only after read(2) or write(2) said
 * EAGAIN, which is what the edge-triggered poller needs before a park.
 *
 * Settings that matter here: SSL_MODE_ENABLE_PARTIAL_WRITE stays off (a
 * write writes everything), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER is on,
 * SSL_MODE_RELEASE_BUFFERS is on (an idle connection gives its record
 * buffers back, about 34 KB), and SSL_OP_IGNORE_UNEXPECTED_EOF stays off, so that a peer that closes
 * without close_notify (a truncation) is an error, never an end of file.
 *
 * Failures become errnos (translate) and a static message on the
 * scheduler for weave_tls_error: OpenSSL's verification string
 * (X509_verify_cert_error_string) or reason string, or strerror's text.
 * OpenSSL's per-thread error queue is cleared before each call and after
 * each failure, so nothing of one connection's failure is left for
 * another's.
 *
 * Built without OpenSSL (no pkg-config openssl, or WEAVE_TLS=OFF), the
 * public calls are still here and fail with ENOTSUP.
 */
#include "base/common.h"
#include "core/deadline.h"
#include "core/scope.h"
#include "core/sched.h"
#include "core/wait.h"
#include "io/tls.h"

#include <string.h>

#ifdef WEAVE_HAVE_OPENSSL

#include "io/fd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

struct weave_tls_config {
    SSL_CTX *ctx;
    unsigned char *alpn; /* ALPN names in wire format (length-prefixed), or NULL */
    size_t alpn_len;     /* bytes at alpn */
    int refs;            /* the user's reference + one per connection (atomic) */
    bool server;         /* made by weave_tls_server_config */
    unsigned flags;      /* WEAVE_TLS_* */
};

struct weave_tls {
    SSL *ssl;              /* the connection's state; owns no fd */
    weave_tls_config *cfg; /* its config, referenced while it lives */
    int fd;                /* the socket, owned once the handshake is done */
    int dead;              /* errno of a fatal failure (positive), else 0 */
    const char *dead_why;  /* its message */
    bool eof;              /* the peer's close_notify came */
    bool write_stuck;      /* a write was interrupted part way: no more */
    int64_t timeout_ms;    /* per read or write; -1 none */
    const void *home;      /* the thread whose tasks use it (weave__claim) */
    char alpn[256];        /* the protocol ALPN chose, "" if none */
};

enum tls_op { OP_HANDSHAKE, OP_READ, OP_WRITE, OP_SHUTDOWN };

/* Record why for weave_tls_error (NULL: strerror's text of err, a
 * negative errno) and return err. */
static int failed(struct weave__sched *s, int err, const char *why)
{
    if (s)
        s->tls_error = why ? why : strerrordesc_np(-err);
    return err;
}

/* Set errno from err (a negative errno, recorded already) for NULL. */
static void *fail_null(int err)
{
    errno = -err;
    return NULL;
}

/* ---- configs -------------------------------------------------------------- */

/* Whether path can be opened for reading: 0 or -errno, for a clear ENOENT
 * or EACCES before OpenSSL says only that it could not load it. */
static int readable(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

/* The reason of OpenSSL's latest error as -errno (ENOMEM for an allocation,
 * else EPROTO), recorded with its message; the queue is cleared. */
static int ssl_failure(struct weave__sched *s, const char *fallback)
{
    unsigned long code = ERR_peek_last_error();
    const char *why = code ? ERR_reason_error_string(code) : NULL;
    int err = code && ERR_GET_REASON(code) == ERR_R_MALLOC_FAILURE ? -ENOMEM : -EPROTO;

    ERR_clear_error();
    return failed(s, err, why ? why : fallback);
}

/* list (NULL-terminated) in ALPN's wire format, into *out (malloc'd). */
static int alpn_wire(const char *const *list, unsigned char **out, size_t *len)
{
    size_t total = 0, at = 0;

    *out = NULL;
    *len = 0;
    if (!list)
        return 0;
    for (size_t i = 0; list[i]; i++) {
        size_t n = strlen(list[i]);

        if (n == 0 || n > 255)
            return -EINVAL;
        total += 1 + n;
        if (total > 65535)
            return -EINVAL;
    }
    if (total == 0)
        return -EINVAL; /* an empty list: pass NULL for no ALPN */
    if (!(*out = malloc(total)))
        return -ENOMEM;
    for (size_t i = 0; list[i]; i++) {
        size_t n = strlen(list[i]);

        (*out)[at++] = (unsigned char)n;
        memcpy(*out + at, list[i], n);
        at += n;
    }
    *len = total;
    return 0;
}

/* The server's ALPN choice: its own first name that the client offered.
 * None in common is no failure: the connection goes on without ALPN. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    const weave_tls_config *c = arg;
    unsigned char *chosen;

    (void)ssl;
    if (SSL_select_next_proto(&chosen, outlen, c->alpn, (unsigned)c->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

static void config_unref(weave_tls_config *c)
{
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    SSL_CTX_free(c->ctx);
    free(c->alpn);
    free(c);
}

/* What both kinds of config share: the checks of o, the context, ALPN. */
static int config_new(struct weave__sched *s, const weave_tls_opts *o, bool server,
                      weave_tls_config **out)
{
    weave_tls_config *c;
    int r;

    *out = NULL;
    if (!weave__all_zero(o->reserved, sizeof(o->reserved)) ||
        (o->flags & ~(unsigned)WEAVE_TLS_NO_VERIFY))
        return failed(s, -EINVAL, NULL);
    if (!(c = calloc(1, sizeof(*c))))
        return failed(s, -ENOMEM, NULL);
    c->refs = 1;
    c->server = server;
    c->flags = o->flags;
    if ((r = alpn_wire(o->alpn, &c->alpn, &c->alpn_len)) < 0) {
        free(c);
        return failed(s, r, NULL);
    }
    if (!(c->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()))) {
        r = ssl_failure(s, "cannot make an SSL_CTX");
        config_unref(c);
        return r;
    }
    (void)SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_clear_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_clear_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION);
    *out = c;
    return 0;
}

static weave_tls_config *config_done(weave_tls_config *c, int r)
{
    if (r < 0) {
        config_unref(c);
        return fail_null(r);
    }
    return c;
}

weave_tls_config *weave_tls_client_config(const weave_tls_opts *o)
{
    struct weave__sched *s = weave__tls;
    const weave_tls_opts none = {0};
    weave_tls_config *c;
    int r;

    if (!o)
        o = &none;
    if (o->cert_file || o->key_file)
        return fail_null(failed(s, -EINVAL, NULL));
    if ((r = config_new(s, o, false, &c)) < 0)
        return fail_null(r);
    if (o->flags & WEAVE_TLS_NO_VERIFY) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    }
    /* SSL_CTX_set_alpn_protos returns 0 on success, unlike its kin. */
    if (c->alpn && SSL_CTX_set_alpn_protos(c->ctx, c->alpn, (unsigned)c->alpn_len) != 0)
        return config_done(c, ssl_failure(s, "cannot set the ALPN protocols"));
    if (!o->ca_file && !o->ca_path) {
        if (SSL_CTX_set_default_verify_paths(c->ctx) != 1)
            r = ssl_failure(s, "cannot load the system's CAs");
        return config_done(c, r);
    }
    if ((o->ca_file && (r = readable(o->ca_file)) < 0) ||
        (o->ca_path && (r = readable(o->ca_path)) < 0))
        return config_done(c, failed(s, r, NULL));
    if (SSL_CTX_load_verify_locations(c->ctx, o->ca_file, o->ca_path) != 1)
        r = ssl_failure(s, "cannot load the CAs");
    return config_done(c, r);
}

weave_tls_config *weave_tls_server_config(const weave_tls_opts *o)
{
    struct weave__sched *s = weave__tls;
    weave_tls_config *c;
    int r;

    if (!o || !o->cert_file || !o->key_file || o->ca_file || o->ca_path ||
        (o->flags & WEAVE_TLS_NO_VERIFY))
        return fail_null(failed(s, -EINVAL, NULL));
    if ((r = config_new(s, o, true, &c)) < 0)
        return fail_null(r);
    if ((r = readable(o->cert_file)) < 0 || (r = readable(o->key_file)) < 0)
        return config_done(c, failed(s, r, NULL));
    if (SSL_CTX_use_certificate_chain_file(c->ctx, o->cert_file) != 1)
        r = ssl_failure(s, "cannot load the certificate chain");
    else if (SSL_CTX_use_PrivateKey_file(c->ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
        r = ssl_failure(s, "cannot load the private key");
    else if (SSL_CTX_check_private_key(c->ctx) != 1)
        r = ssl_failure(s, "the key is not the certificate's");
    if (r == 0 && c->alpn)
        SSL_CTX_set_alpn_select_cb(c->ctx, alpn_select, c);
    return config_done(c, r);
}

void weave_tls_config_free(weave_tls_config *c)
{
    if (c)
        config_unref(c);
}

/* ---- driving OpenSSL -------------------------------------------------------- */

/* The errno of an OpenSSL call that failed with SSL_get_error's e (sys:
 * errno right after it), with its message recorded. */
static int translate(struct weave__sched *s, const weave_tls *t, int e, int sys)
{
    unsigned long code = ERR_peek_last_error();
    const char *why;
    int err;

    if (code == 0) {
        if (e == SSL_ERROR_SYSCALL && sys != 0 && sys != EAGAIN)
            return failed(s, -sys, NULL);
        /* A syscall failure with nothing to say is an end of file that
         * OpenSSL did not report as such. */
        return failed(s, e == SSL_ERROR_SYSCALL ? -ECONNRESET : -EPROTO,
                      e == SSL_ERROR_SYSCALL ? "unexpected eof while reading" : "TLS failure");
    }
    if (ERR_SYSTEM_ERROR(code)) {
        err = ERR_GET_REASON(code);
        ERR_clear_error();
        return failed(s, err > 0 ? -err : -EIO, NULL);
    }
    why = ERR_reason_error_string(code);
    err = -EPROTO;
    if (ERR_GET_LIB(code) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(code)) {
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            err = -EKEYREJECTED;
            why = X509_verify_cert_error_string(SSL_get_verify_result(t->ssl));
            break;
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            err = -ECONNRESET;
            break;
        default:
            break;
        }
    }
    if (ERR_GET_REASON(code) == ERR_R_MALLOC_FAILURE)
        err = -ENOMEM;
    ERR_clear_error();
    return failed(s, err, why ? why : "TLS failure");
}

/* One OpenSSL call of op: 1 done (*done: bytes moved), else its result for
 * SSL_get_error. */
static int call_once(weave_tls *t, int op, void *buf, size_t n, size_t *done)
{
    int r;

    switch (op) {
    case OP_HANDSHAKE:
        return SSL_do_handshake(t->ssl);
    case OP_READ:
        return SSL_read_ex(t->ssl, buf, n, done);
    case OP_WRITE:
        return SSL_write_ex(t->ssl, buf, n, done);
    default:
        /* 0: ours is sent and the peer's has not come, which is not
         * waited for; 1: both. */
        r = SSL_shutdown(t->ssl);
        return r >= 0 ? 1 : r;
    }
}

/*
 * Run op on t until OpenSSL is done with it, holding both sides of the fd
 * and parking whenever OpenSSL waits for it. Returns 0 (for a read, *done
 * 0 means close_notify came) or -errno, recorded for weave_tls_error. A
 * protocol failure makes t dead; an interrupted write makes it stuck.
 */
static int drive(struct weave__sched *s, weave_tls *t, int op, void *buf, size_t n, size_t *done)
{
    struct weave__fd *st;
    int r, err;

    *done = 0;
    if ((r = weave__checkpoint(s)) < 0)
        return failed(s, r, NULL);
    if (!(st = weave__fd_prepare(s, t->fd, &err)))
        return failed(s, err, NULL);
    if ((r = weave__fd_lock(s, st, WEAVE_IN | WEAVE_OUT, WEAVE__NO_DEADLINE)) < 0)
        return failed(s, r, NULL);
    for (;;) {
        int ret, e, sys;

        ERR_clear_error();
        errno = 0;
        ret = call_once(t, op, buf, n, done);
        if (ret == 1) {
            r = 0;
            break;
        }
        sys = errno;
        e = SSL_get_error(t->ssl, ret);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            r = weave__fd_park(s, st, e == SSL_ERROR_WANT_READ ? WEAVE_IN : WEAVE_OUT,
                               WEAVE__NO_DEADLINE);
            if (r >= 0)
                continue;
            if (op == OP_WRITE)
                t->write_stuck = true;
            r = failed(s, r, NULL);
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN && op == OP_READ) {
            t->eof = true;
            r = 0;
            break;
        }
        r = translate(s, t, e, sys);
        t->dead = -r;
        t->dead_why = s->tls_error;
        break;
    }
    weave__fd_unlock(s, st, WEAVE_IN | WEAVE_OUT);
    ERR_clear_error();
    return r;
}

/* drive, bounded by t's own timeout. */
static int drive_timed(struct weave__sched *s, weave_tls *t, int op, void *buf, size_t n,
                       size_t *done)
{
    weave_deadline d;
    int r;

    if (t->timeout_ms < 0)
        return drive(s, t, op, buf, n, done);
    weave_deadline_begin(&d, t->timeout_ms);
    r = drive(s, t, op, buf, n, done);
    (void)weave_deadline_end(&d);
    return r;
}

static void conn_free(weave_tls *t)
{
    SSL_free(t->ssl);
    config_unref(t->cfg);
    free(t);
}

/* Name the server for SNI (not an IP literal, RFC 6066) and, unless told
 * not to verify, for the check of its certificate. */
static int set_host(weave_tls *t, const char *host)
{
    unsigned char ip[16];
    bool literal;

    if (!host)
        return 0;
    literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (!literal && SSL_set_tlsext_host_name(t->ssl, host) != 1)
        return -ENOMEM;
    if (t->cfg->flags & WEAVE_TLS_NO_VERIFY)
        return 0;
    SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (literal)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1 ? 0 : -EINVAL;
    return SSL_set1_host(t->ssl, host) == 1 ? 0 : -ENOMEM;
}

/* The handshake of weave_tls_connect (host, client) and weave_tls_accept. */
static weave_tls *handshake(weave_tls_config *c, int fd, const char *host, int64_t timeout_ms,
                            bool server)
{
    struct weave__sched *s = weave__tls;
    const unsigned char *proto;
    unsigned int plen;
    weave_deadline d;
    weave_tls *t;
    size_t done;
    int r;

    if (!c || c->server != server || timeout_ms < -1 ||
        (!server && (host ? !*host : !(c->flags & WEAVE_TLS_NO_VERIFY))))
        return fail_null(failed(s, -EINVAL, NULL));
    if (fd < 0)
        return fail_null(failed(s, -EBADF, NULL));
    if (!s)
        return fail_null(-EPERM);
    if (!(t = calloc(1, sizeof(*t))))
        return fail_null(failed(s, -ENOMEM, NULL));
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
    t->cfg = c;
    t->fd = fd;
    t->timeout_ms = -1;
    (void)weave__claim(&t->home, s);
    if (!(t->ssl = SSL_new(c->ctx)) || SSL_set_fd(t->ssl, fd) != 1) {
        r = ssl_failure(s, "cannot make an SSL");
        conn_free(t);
        return fail_null(r);
    }
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if ((r = set_host(t, host)) < 0) {
            ERR_clear_error();
            conn_free(t);
            return fail_null(failed(s, r, NULL));
        }
    }
    if (timeout_ms >= 0)
        weave_deadline_begin(&d, timeout_ms);
    r = drive(s, t, OP_HANDSHAKE, NULL, 0, &done);
    if (timeout_ms >= 0)
        (void)weave_deadline_end(&d);
    if (r < 0) {
        conn_free(t); /* the fd stays the caller's */
        return fail_null(r);
    }
    SSL_get0_alpn_selected(t->ssl, &proto, &plen);
    if (proto && plen > 0 && plen < sizeof(t->alpn)) {
        memcpy(t->alpn, proto, plen);
        t->alpn[plen] = '\0';
    }
    return t;
}

WEAVE__ENTRY weave_tls *weave_tls_connect(weave_tls_config *c, int fd, const char *host,
                                          int64_t timeout_ms)
{
    WEAVE__SCOPES_CHECK();
    return handshake(c, fd, host, timeout_ms, false);
}

WEAVE__ENTRY weave_tls *weave_tls_accept(weave_tls_config *c, int fd, int64_t timeout_ms)
{
    WEAVE__SCOPES_CHECK();
    return handshake(c, fd, NULL, timeout_ms, true);
}

/* The checks of a read or write of n bytes at buf: 0 to go on, else the
 * result to return (-errno, recorded). */
static int io_enter(struct weave__sched *s, weave_tls *t, const void *buf, size_t n)
{
    int r;

    if (!t || (!buf && n > 0) || n > SSIZE_MAX)
        return failed(s, -EINVAL, NULL);
    if (!s)
        return -EPERM;
    if ((r = weave__claim(&t->home, s)) < 0 || (r = weave__checkpoint(s)) < 0)
        return failed(s, r, NULL);
    if (t->dead)
        return failed(s, -t->dead, t->dead_why);
    return 0;
}

WEAVE__ENTRY ssize_t weave_tls_read(weave_tls *t, void *buf, size_t n)
{
    struct weave__sched *s = weave__tls;
    size_t done = 0;
    int r;

    WEAVE__SCOPES_CHECK();
    if ((r = io_enter(s, t, buf, n)) < 0)
        return weave__ret(r);
    if (n == 0 || t->eof)
        return 0;
    if ((r = drive_timed(s, t, OP_READ, buf, n, &done)) < 0)
        return weave__ret(r);
    return (ssize_t)done;
}

WEAVE__ENTRY ssize_t weave_tls_write(weave_tls *t, const void *buf, size_t n)
{
    struct weave__sched *s = weave__tls;
    size_t done = 0;
    int r;

    WEAVE__SCOPES_CHECK();
    if ((r = io_enter(s, t, buf, n)) < 0)
        return weave__ret(r);
    if (t->write_stuck)
        return weave__ret(
            failed(s, -EPIPE, "a write was interrupted: the connection can only be closed"));
    if (n == 0)
        return 0;
    if ((r = drive_timed(s, t, OP_WRITE, (void *)(uintptr_t)buf, n, &done)) < 0)
        return weave__ret(r);
    return (ssize_t)n;
}

int weave_tls_set_timeout(weave_tls *t, int64_t timeout_ms)
{
    int r;

    if (!t || timeout_ms < -1)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&t->home)) < 0)
        return weave__ret(r);
    t->timeout_ms = timeout_ms;
    return 0;
}

int weave_tls_fd(const weave_tls *t)
{
    return t ? t->fd : weave__ret(-EINVAL);
}

const char *weave_tls_alpn(const weave_tls *t)
{
    return t && t->alpn[0] ? t->alpn : NULL;
}

WEAVE__ENTRY int weave_tls_close(weave_tls *t)
{
    struct weave__sched *s = weave__tls;
    int r = 0, c;

    WEAVE__SCOPES_CHECK();
    if (!t)
        return weave__ret(-EINVAL);
    if ((r = weave__at_home(&t->home)) < 0)
        return weave__ret(r); /* another thread's tasks use it: left alone */
    if (s && !t->dead && !t->write_stuck) {
        weave_shield sh;
        weave_deadline d;
        size_t done;

        weave_shield_begin(&sh);
        weave_deadline_begin(&d, WEAVE_TLS_CLOSE_TIMEOUT_MS);
        r = drive(s, t, OP_SHUTDOWN, NULL, 0, &done);
        (void)weave_deadline_end(&d);
        weave_shield_end(&sh);
        if (t->eof)
            r = 0; /* the peer closed first: ours is a courtesy it need not get */
    }
    c = weave_close(t->fd) < 0 ? -errno : 0;
    conn_free(t);
    return weave__ret(r < 0 ? r : c);
}

bool weave__tls_has_pending(const struct weave_tls *t)
{
    return t && SSL_has_pending(t->ssl) == 1;
}

#else /* no OpenSSL: every call fails with ENOTSUP */

static const char no_tls[] = "weave was built without TLS (OpenSSL 3 not found)";

static void *no_tls_null(void)
{
    struct weave__sched *s = weave__tls;

    if (s)
        s->tls_error = no_tls;
    errno = ENOTSUP;
    return NULL;
}

static int no_tls_int(void)
{
    (void)no_tls_null();
    return -1;
}

weave_tls_config *weave_tls_client_config(const weave_tls_opts *o)
{
    (void)o;
    return no_tls_null();
}

weave_tls_config *weave_tls_server_config(const weave_tls_opts *o)
{
    (void)o;
    return no_tls_null();
}

void weave_tls_config_free(weave_tls_config *c)
{
    (void)c;
}

weave_tls *weave_tls_connect(weave_tls_config *c, int fd, const char *host, int64_t timeout_ms)
{
    (void)c;
    (void)fd;
    (void)host;
    (void)timeout_ms;
    return no_tls_null();
}

weave_tls *weave_tls_accept(weave_tls_config *c, int fd, int64_t timeout_ms)
{
    (void)c;
    (void)fd;
    (void)timeout_ms;
    return no_tls_null();
}

ssize_t weave_tls_read(weave_tls *t, void *buf, size_t n)
{
    (void)t;
    (void)buf;
    (void)n;
    return no_tls_int();
}

ssize_t weave_tls_write(weave_tls *t, const void *buf, size_t n)
{
    (void)t;
    (void)buf;
    (void)n;
    return no_tls_int();
}

int weave_tls_set_timeout(weave_tls *t, int64_t timeout_ms)
{
    (void)t;
    (void)timeout_ms;
    return no_tls_int();
}

int weave_tls_fd(const weave_tls *t)
{
    (void)t;
    return no_tls_int();
}

const char *weave_tls_alpn(const weave_tls *t)
{
    (void)t;
    return NULL;
}

int weave_tls_close(weave_tls *t)
{
    (void)t;
    return no_tls_int();
}

bool weave__tls_has_pending(const struct weave_tls *t)
{
    (void)t;
    return false;
}

#endif /* WEAVE_HAVE_OPENSSL */

const char *weave_tls_error(void)
{
    struct weave__sched *s = weave__tls;

    return s && s->tls_error ? s->tls_error : "";
}
