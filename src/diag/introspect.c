/*
 * introspect.c - seeing inside a scheduler: the task list (weave_tasks),
 * its text form (weave_dump), and the report when weave_run finds a
 * deadlock; and the run options that ask for more: a dump on a signal (read
 * by signal.c's signalfd) and the watchdog (watchdog.c).
 *
 * Every parked task's struct weave__wait says what it waits on (kind,
 * object, fd) and since when (the poll step's clock), so listing costs the
 * hot paths nothing but two stores per park.
 */
#include "base/common.h"
#include "core/task.h"
#include "diag/introspect.h"
#include "diag/watchdog.h"
#include "io/signal.h"
#include "io/uring.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the task list ----------------------------------------------------------- */

/* Bytes of t's stack ever touched: from the lowest resident page to the
 * top. Pages stay resident once touched until the pool hands them back. */
static size_t stack_used(const struct weave__sched *s, const struct weave__task *t)
{
    size_t page = s->stacks.page, pages = t->stack.size / page;
    unsigned char vec[256];

    for (size_t i = 0; i < pages; i += sizeof(vec)) {
        size_t n = pages - i < sizeof(vec) ? pages - i : sizeof(vec);

        if (mincore(t->stack.lo + i * page, n * page, vec) != 0)
            return 0; /* cannot tell */
        for (size_t k = 0; k < n; k++)
            if (vec[k] & 1)
                return (pages - i - k) * page;
    }
    return 0;
}

static void task_info(const struct weave__sched *s, struct weave__task *t, int64_t now,
                      weave_task_info *out)
{
    static const weave_task_state states[] = {
        [WEAVE__READY] = WEAVE_TASK_READY,
        [WEAVE__RUNNING] = WEAVE_TASK_RUNNING,
        [WEAVE__PARKED] = WEAVE_TASK_PARKED,
        [WEAVE__DONE] = WEAVE_TASK_ENDED,
    };
    const struct weave__wait *w = t->state == WEAVE__PARKED ? t->wait : NULL;

    memset(out, 0, sizeof(*out));
    out->id = t->id;
    memcpy(out->name, weave__task_name(t), sizeof(out->name));
    out->state = states[t->state];
    out->wait_fd = -1;
    out->timeout_us = -1;
    if (w) {
        int64_t at = w->timeout < t->deadline ? w->timeout : t->deadline;

        out->wait = (weave_wait_kind)w->kind;
        out->wait_object = w->object;
        out->wait_fd = w->fd;
        if (w->kind == WEAVE_WAIT_JOIN)
            out->wait_task = ((const struct weave__task *)w->object)->id;
        if (w->kind == WEAVE_WAIT_IO_URING)
            out->wait_op = weave__uring_op_name(w->object);
        out->parked_us = now > w->since ? (now - w->since) / 1000 : 0;
        if (at != WEAVE__NO_DEADLINE)
            out->timeout_us = at > now ? (at - now) / 1000 : 0;
    }
    /* The top page holds the record, and the first frames beside it. */
    out->stack_size = t->stack.size - s->stacks.page;
    out->stack_used = t->stack.lo ? stack_used(s, t) : 0;
    if (out->stack_used > out->stack_size)
        out->stack_used = out->stack_size;
    out->flags = (t->flags & WEAVE__MAIN ? WEAVE_TASK_MAIN : 0u) |
                 (t->flags & WEAVE__CANCELLED ? WEAVE_TASK_CANCELLED : 0u) |
                 (t->flags & WEAVE__DETACHED ? WEAVE_TASK_DETACHED : 0u) |
                 (t->shields ? WEAVE_TASK_SHIELDED : 0u);
}

/* Call fn on every task of s: the live ones in spawn order, then the ended
 * ones nobody joined yet, in handle-slot order. Stops early, returning
 * fn's nonzero result. */
typedef int each_fn(struct weave__sched *s, struct weave__task *t, void *ctx);

static int each_task(struct weave__sched *s, each_fn *fn, void *ctx)
{
    struct weave_link *n, *tmp;
    int r;

    weave__list_each(n, tmp, &s->live)
        if ((r = fn(s, weave__container_of(n, struct weave__task, live), ctx)) != 0)
            return r;
    for (uint32_t i = 0; i < s->handles.nslots; i++) {
        struct weave__task *t = s->handles.slots[i].task;

        if (t && t->state == WEAVE__DONE && (r = fn(s, t, ctx)) != 0)
            return r;
    }
    return 0;
}

struct list_ctx {
    weave_task_info *out;
    size_t cap, count;
    int64_t now;
};

static int list_one(struct weave__sched *s, struct weave__task *t, void *ctx)
{
    struct list_ctx *c = ctx;

    if (c->count < c->cap)
        task_info(s, t, c->now, &c->out[c->count]);
    c->count++;
    return 0;
}

ssize_t weave_tasks(weave_task_info *out, size_t n)
{
    struct weave__sched *s = weave__tls;
    struct list_ctx c = {out, n, 0, 0};

    if (!s)
        return weave__ret(-EPERM);
    if (!out && n > 0)
        return weave__ret(-EINVAL);
    c.now = weave__clock_ns();
    (void)each_task(s, list_one, &c);
    return (ssize_t)c.count;
}

/* ---- weave_dump ------------------------------------------------------------------ */

struct dump_ctx {
    int fd;
    int err;    /* the first write error, as a negative errno */
    size_t len; /* bytes in buf */
    int64_t now;
    char buf[4096];
};

static void dump_flush(struct dump_ctx *d)
{
    size_t off = 0;

    while (off < d->len && d->err == 0) {
        ssize_t n = write(d->fd, d->buf + off, d->len - off);

        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EINTR)
            d->err = -errno;
    }
    d->len = 0;
}

static void dump_printf(struct dump_ctx *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void dump_printf(struct dump_ctx *d, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sizeof(d->buf) - d->len < 512)
        dump_flush(d);
    va_start(ap, fmt);
    /* va_start above: clang-tidy 14's analyzer misreads GCC's va_list. */
    // NOLINTNEXTLINE(clang-analyzer-valist.*)
    n = vsnprintf(d->buf + d->len, sizeof(d->buf) - d->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        d->len += (size_t)n < sizeof(d->buf) - d->len ? (size_t)n : sizeof(d->buf) - d->len - 1;
}

/* A duration in µs as "1.204 s", "12.5 ms" or "830 us" into out. */
static const char *fmt_us(char *out, size_t cap, int64_t us)
{
    if (us < 0)
        (void)snprintf(out, cap, "-");
    else if (us >= 1000000)
        (void)snprintf(out, cap, "%.3f s", (double)us / 1e6);
    else if (us >= 1000)
        (void)snprintf(out, cap, "%.1f ms", (double)us / 1e3);
    else
        (void)snprintf(out, cap, "%lld us", (long long)us);
    return out;
}

static const char *wait_name(weave_wait_kind k)
{
    static const char *const names[] = {
        [WEAVE_WAIT_NONE] = "-",        [WEAVE_WAIT_SLEEP] = "sleep",
        [WEAVE_WAIT_FD] = "fd",         [WEAVE_WAIT_JOIN] = "join",
        [WEAVE_WAIT_GROUP] = "group",   [WEAVE_WAIT_CHAN] = "chan",
        [WEAVE_WAIT_SELECT] = "select", [WEAVE_WAIT_MUTEX] = "mutex",
        [WEAVE_WAIT_COND] = "cond",     [WEAVE_WAIT_SEM] = "sem",
        [WEAVE_WAIT_EVENT] = "event",   [WEAVE_WAIT_OFFLOAD] = "offload",
        [WEAVE_WAIT_SIGNAL] = "signal", [WEAVE_WAIT_CALL] = "call",
        [WEAVE_WAIT_PROC] = "process",  [WEAVE_WAIT_IO_URING] = "io_uring",
    };

    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

/* What i waits on, as text: "join task 2", "fd 7", "chan 0x55..." */
static const char *waits_on(char *out, size_t cap, const weave_task_info *i)
{
    if (i->wait == WEAVE_WAIT_JOIN)
        (void)snprintf(out, cap, "join task %llu", (unsigned long long)i->wait_task);
    else if (i->wait == WEAVE_WAIT_FD)
        (void)snprintf(out, cap, "fd %d", i->wait_fd);
    else if (i->wait == WEAVE_WAIT_IO_URING && i->wait_op)
        (void)snprintf(out, cap, "io_uring %s", i->wait_op);
    else if (i->wait == WEAVE_WAIT_PROC && i->wait_object)
        (void)snprintf(out, cap, "process %ld", (long)weave_proc_pid(i->wait_object));
    else if (i->wait_object && i->wait != WEAVE_WAIT_OFFLOAD && i->wait != WEAVE_WAIT_SELECT)
        (void)snprintf(out, cap, "%s %p", wait_name(i->wait), i->wait_object);
    else
        (void)snprintf(out, cap, "%s", wait_name(i->wait));
    return out;
}

static int dump_one(struct weave__sched *s, struct weave__task *t, void *ctx)
{
    static const char *const states[] = {"running", "ready", "parked", "ended"};
    struct dump_ctx *d = ctx;
    weave_task_info i;
    char what[64], parked[24], left[24];

    task_info(s, t, d->now, &i);
    dump_printf(d, "%8llu  %-20s %-8s %-26s %10s %10s %6zu/%zu KiB%s%s%s\n",
                (unsigned long long)i.id, i.name, states[i.state], waits_on(what, sizeof(what), &i),
                i.state == WEAVE_TASK_PARKED ? fmt_us(parked, sizeof(parked), i.parked_us) : "-",
                fmt_us(left, sizeof(left), i.timeout_us), i.stack_used / 1024, i.stack_size / 1024,
                i.flags & WEAVE_TASK_MAIN ? " main" : "",
                i.flags & WEAVE_TASK_CANCELLED ? " cancelled" : "",
                i.flags & WEAVE_TASK_SHIELDED ? " shielded" : "");
    return d->err;
}

static int count_one(struct weave__sched *s, struct weave__task *t, void *ctx)
{
    size_t *by_state = ctx;

    (void)s;
    by_state[t->state]++;
    return 0;
}

int weave__dump(struct weave__sched *s, int fd)
{
    struct dump_ctx *d = malloc(sizeof(*d));
    size_t by_state[4] = {0, 0, 0, 0};
    int r;

    if (!d)
        return -ENOMEM;
    d->fd = fd;
    d->err = 0;
    d->len = 0;
    d->now = weave__clock_ns();
    (void)each_task(s, count_one, by_state);
    dump_printf(d,
                "weave: %zu tasks: %zu running, %zu ready, %zu parked, %zu ended (not joined)%s; "
                "scheduler %p, thread %ld\n",
                by_state[0] + by_state[1] + by_state[2] + by_state[3], by_state[WEAVE__RUNNING],
                by_state[WEAVE__READY], by_state[WEAVE__PARKED], by_state[WEAVE__DONE],
                s->vclock ? "; virtual clock" : "", (void *)s, (long)gettid());
    dump_printf(d, "%8s  %-20s %-8s %-26s %10s %10s %s\n", "id", "name", "state", "waits on", "for",
                "timeout", "stack used/size");
    (void)each_task(s, dump_one, d);
    dump_flush(d);
    r = d->err;
    free(d);
    return r;
}

int weave_dump(int fd)
{
    struct weave__sched *s = weave__tls;

    if (!s)
        return weave__ret(-EPERM);
    if (fd < 0)
        return weave__ret(-EBADF);
    return weave__ret(weave__dump(s, fd));
}

/* The core found a deadlock (struct weave__sched.on_deadlock): print the
 * task list on stderr, before the tasks are cancelled to unwind. */
static void deadlock_report(struct weave__sched *s)
{
    static const char head[] = "weave: deadlock: every task is waiting and none can ever be "
                               "woken (no timer, fd or worker call pending); the tasks:\n";

    if (write(STDERR_FILENO, head, sizeof(head) - 1) < 0)
        return;
    (void)weave__dump(s, STDERR_FILENO);
}

/* ---- set-up from weave_run_opts ------------------------------------------------------ */

int weave__introspect_check(const weave_run_opts *o)
{
    int sig = o->dump_signal;

    if (o->watchdog_ms < 0)
        return -EINVAL;
    if (sig != 0 && (sig < 1 || sig >= NSIG || weave__signal_refused(sig)))
        return -EINVAL;
    return 0;
}

/* The run's dump signal came (weave__signal_watch). */
static void dump_on_signal(struct weave__sched *s, int sig)
{
    (void)sig;
    (void)weave__dump(s, STDERR_FILENO);
}

int weave__introspect_start(struct weave__sched *s, const weave_run_opts *o)
{
    int r;

    if (o->dump_signal && (r = weave__signal_watch(s, o->dump_signal, dump_on_signal)) < 0)
        return r;
    if (o->watchdog_ms > 0 && (r = weave__watchdog_start(s, o->watchdog_ms)) < 0)
        return r; /* the signal module goes with weave__signal_term */
    if (!(o->flags & WEAVE_NO_DEADLOCK_DUMP))
        s->on_deadlock = deadlock_report;
    return 0;
}

void weave__introspect_stop(struct weave__sched *s)
{
    weave__watchdog_stop(s);
}
