/*
 * test_resolve.c - name resolution failures get errnos of their own, and
 * weave_resolve_error tells the resolver's message.
 *
 * The machine has no network, so the resolver's answers are made here:
 * the suite is linked with -Wl,--wrap=getaddrinfo, and __wrap_getaddrinfo
 * below returns the EAI_* code a test asks for (for lookups of names only,
 * or for every call), else hands the call to the real getaddrinfo. One
 * test asks the real resolver about a name under the reserved .invalid
 * top-level domain, which never exists; numeric hosts and "localhost"
 * (from /etc/hosts) must still connect.
 *
 * Check timeouts: "resolve" 15 s x 6 tests = 90 s; the CTest timeout in
 * CMakeLists.txt (110 s) is above it.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "weave_test.h"

int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);

/* The code the next lookups return (0: the real resolver's answer), the
 * errno that goes with EAI_SYSTEM, and whether numeric parses (hints with
 * AI_NUMERICHOST, made on the scheduler's thread) fail too. Lookups of
 * names run on offload threads: atomics. */
static atomic_int forced_rc;
static atomic_int forced_errno;
static atomic_bool force_numeric;
static atomic_int lookups; /* calls that returned the forced code */

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    int rc = atomic_load(&forced_rc);
    bool numeric = hints && (hints->ai_flags & AI_NUMERICHOST);

    if (rc == 0 || (numeric && !atomic_load(&force_numeric)))
        return __real_getaddrinfo(node, service, hints, res);
    atomic_fetch_add(&lookups, 1);
    errno = atomic_load(&forced_errno);
    return rc;
}

static void force(int rc, int err, bool numeric)
{
    atomic_store(&forced_rc, rc);
    atomic_store(&forced_errno, err);
    atomic_store(&force_numeric, numeric);
    atomic_store(&lookups, 0);
}

/* What each resolver failure must give. */
static const struct {
    int rc;    /* getaddrinfo's answer */
    int err;   /* errno with it (EAI_SYSTEM) */
    int want;  /* the errno weave must set */
    bool name; /* a "no such name" failure */
} cases[] = {
    {EAI_NONAME, 0, ENXIO, true},        {EAI_NODATA, 0, ENXIO, true},
    {EAI_ADDRFAMILY, 0, ENXIO, true},    {EAI_AGAIN, 0, EAGAIN, false},
    {EAI_FAIL, 0, EIO, false},           {EAI_MEMORY, 0, ENOMEM, false},
    {EAI_SYSTEM, EMFILE, EMFILE, false}, {EAI_SYSTEM, 0, EIO, false},
    {EAI_SERVICE, 0, EINVAL, false},     {EAI_FAMILY, 0, EINVAL, false},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* The errnos a failed socket, bind or connect of a TCP socket can give
 * (connect(2), bind(2), socket(2), and the ICMP and reset errors a TCP
 * connection reports in SO_ERROR): "no such name", "try again" and "the
 * resolver failed" must be none of them. EAGAIN is connect's only for a
 * full Unix backlog (or a routing cache), which weave waits out. */
static bool is_connection_errno(int e)
{
    static const int conn[] = {
        EACCES,     EPERM,        EADDRINUSE,  EADDRNOTAVAIL, EAFNOSUPPORT,   EALREADY,
        EBADF,      ECONNREFUSED, EINPROGRESS, EINTR,         EISCONN,        ENETUNREACH,
        ENOTSOCK,   EPROTOTYPE,   ETIMEDOUT,   EHOSTUNREACH,  EHOSTDOWN,      ENETDOWN,
        ECONNRESET, ENOBUFS,      EMFILE,      ENFILE,        EPROTONOSUPPORT};

    for (size_t i = 0; i < sizeof(conn) / sizeof(conn[0]); i++)
        if (conn[i] == e)
            return true;
    return false;
}

START_TEST(no_such_name_errno_is_no_connection_errno)
{
    for (size_t i = 0; i < NCASES; i++)
        if (cases[i].name || cases[i].rc == EAI_AGAIN || cases[i].rc == EAI_FAIL)
            ck_assert_msg(!is_connection_errno(cases[i].want), "case %zu: errno %d", i,
                          cases[i].want);
}
END_TEST

static void *m_each_code(void *arg)
{
    (void)arg;
    ck_assert_str_eq(weave_resolve_error(), "");
    for (size_t i = 0; i < NCASES; i++) {
        const char *msg = gai_strerror(cases[i].rc);

        /* A name: the lookup runs on the pool. */
        force(cases[i].rc, cases[i].err, false);
        WT_FAILS(weave_tcp_connect("db.example.test", "5432", 5000), cases[i].want);
        ck_assert_str_eq(weave_resolve_error(), msg);
        ck_assert_int_eq(atomic_load(&lookups), 1);
        WT_FAILS(weave_tcp_listen("db.example.test", "0", 4), cases[i].want);
        ck_assert_str_eq(weave_resolve_error(), msg);
        /* A wildcard listener with a service name: on the pool too. */
        WT_FAILS(weave_tcp_listen(NULL, "postgresql", 4), cases[i].want);
        ck_assert_str_eq(weave_resolve_error(), msg);
        /* The in-place parse of a numeric host fails the same way (for
         * EAI_NONAME it then asks the pool, which fails too). */
        force(cases[i].rc, cases[i].err, true);
        WT_FAILS(weave_tcp_connect("127.0.0.1", "5432", 5000), cases[i].want);
        ck_assert_str_eq(weave_resolve_error(), msg);
        force(0, 0, false);
        /* Reset the message to another code's so that each case shows. */
        force(EAI_FAIL, 0, false);
        WT_FAILS(weave_tcp_connect("db.example.test", "5432", 5000), EIO);
        force(0, 0, false);
    }
    wt_assert_idle_offload();
    return NULL;
}

START_TEST(each_resolver_failure_has_its_errno_and_message)
{
    weave_run_opts o = {.offload_threads = 1};

    ck_assert_int_eq(weave_run_with(&o, m_each_code, NULL, NULL), 0);
}
END_TEST

static void *m_message_kept(void *arg)
{
    int l, c;

    (void)arg;
    force(EAI_NONAME, 0, false);
    WT_FAILS(weave_tcp_connect("db.example.test", "5432", 5000), ENXIO);
    force(0, 0, false);
    /* Success does not clear it. */
    l = weave_tcp_listen("localhost", "0", 4);
    ck_assert_int_ge(l, 0);
    c = weave_tcp_connect("localhost", wt_port_str(l).s, 5000);
    ck_assert_int_ge(c, 0);
    ck_assert_str_eq(weave_resolve_error(), gai_strerror(EAI_NONAME));
    ck_assert_int_eq(weave_close(c), 0);
    ck_assert_int_eq(weave_close(l), 0);
    /* Errors that are not the resolver's leave it too. */
    WT_FAILS(weave_tcp_connect("localhost", NULL, 5000), EINVAL);
    ck_assert_str_eq(weave_resolve_error(), gai_strerror(EAI_NONAME));
    wt_assert_idle_offload();
    return NULL;
}

START_TEST(message_lasts_until_the_next_failure_and_the_run)
{
    ck_assert_str_eq(weave_resolve_error(), "");
    WT_RUN(m_message_kept, NULL);
    /* The record went with the scheduler. */
    ck_assert_str_eq(weave_resolve_error(), "");
    /* Outside a run, resolving a name is EPERM, not a resolver failure. */
    WT_FAILS(weave_tcp_listen("localhost", "0", 4), EPERM);
    ck_assert_str_eq(weave_resolve_error(), "");
}
END_TEST

/* Each scheduler has its own record: one on another thread sees "". */
static void *m_other_thread(void *arg)
{
    (void)arg;
    ck_assert_str_eq(weave_resolve_error(), "");
    return NULL;
}

static void *other_thread(void *arg)
{
    (void)arg;
    return wt_ptr(weave_run(m_other_thread, NULL, NULL));
}

WT_TEST(message_is_per_scheduler)
{
    pthread_t th;
    void *r;

    force(EAI_AGAIN, 0, false);
    WT_FAILS(weave_tcp_connect("db.example.test", "5432", 5000), EAGAIN);
    force(0, 0, false);
    ck_assert_int_eq(pthread_create(&th, NULL, other_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(th, &r), 0);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(weave_resolve_error(), gai_strerror(EAI_AGAIN));
    wt_assert_idle_offload();
}

/* The real resolver: a name under .invalid (RFC 2606) never exists. */
WT_TEST(real_invalid_name_is_no_such_name)
{
    int e;

    errno = 0;
    ck_assert_int_eq(weave_tcp_connect("no.such.host.invalid", "80", 10000), -1);
    e = errno;
    ck_assert_msg(e == ENXIO || e == EAGAIN, "errno %d (%s)", e, strerror(e));
    ck_assert_int_ne(e, EADDRNOTAVAIL);
    ck_assert_str_ne(weave_resolve_error(), "");
    errno = 0;
    ck_assert_int_eq(weave_tcp_listen("no.such.host.invalid", "0", 4), -1);
    ck_assert_msg(errno == ENXIO || errno == EAGAIN, "errno %d", errno);
    wt_assert_idle_offload();
}

WT_TEST(numeric_and_localhost_still_connect)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost"};

    for (size_t i = 0; i < 2; i++) {
        int l = weave_tcp_listen(hosts[i], "0", 4), c, s;

        ck_assert_int_ge(l, 0);
        c = weave_tcp_connect(hosts[i], wt_port_str(l).s, 5000);
        ck_assert_msg(c >= 0, "%s: errno %d, %s", hosts[i], errno, weave_resolve_error());
        s = weave_accept(l, NULL, NULL);
        ck_assert_int_ge(s, 0);
        ck_assert_int_eq(weave_write(c, "hi", 2), 2);
        {
            char buf[2];
            ck_assert_int_eq(weave_read(s, buf, 2), 2);
            ck_assert_int_eq(memcmp(buf, "hi", 2), 0);
        }
        ck_assert_int_eq(weave_close(s), 0);
        ck_assert_int_eq(weave_close(c), 0);
        ck_assert_int_eq(weave_close(l), 0);
    }
    ck_assert_str_eq(weave_resolve_error(), "");
    wt_assert_idle_offload();
}

static Suite *resolve_suite(void)
{
    Suite *s = suite_create("resolve");
    TCase *tc = tcase_create("resolve");

    tcase_set_timeout(tc, 15);
    tcase_add_test(tc, no_such_name_errno_is_no_connection_errno);
    tcase_add_test(tc, each_resolver_failure_has_its_errno_and_message);
    tcase_add_test(tc, message_lasts_until_the_next_failure_and_the_run);
    tcase_add_test(tc, message_is_per_scheduler);
    tcase_add_test(tc, real_invalid_name_is_no_such_name);
    tcase_add_test(tc, numeric_and_localhost_still_connect);
    wt_tag_native(tc); /* the offload pool and a second thread */
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wt_main(resolve_suite());
}
