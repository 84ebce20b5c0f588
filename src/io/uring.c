/*
 * uring.c - one io_uring per scheduler, for the reads, writes and syncs of
 * regular files and block devices that cannot be served at once.
 *
 * The ring is made by the first call that needs it (file.c asks, through
 * weave__uring_on), never at scheduler start, so a program that does no
 * file I/O pays nothing. Where it cannot be made (built without liburing,
 * the kernel refuses, WEAVE_NO_IO_URING, valgrind) the scheduler notes the
 * pool as its path, once, and file.c sends every such call there.
 *
 * A call's life. The task fills an op record in its own frame, takes an
 * entry of the ring (or waits for one, FIFO, in `room`), puts one SQE that
 * points at the record (user_data) and at the task's own buffers, submits
 * it at once and parks in the record's queue. Completions reach the loop
 * through an eventfd registered with the ring and with the poller behind
 * a watcher, like any other fd event: the watcher reads the CQ ring, stores
 * each result in its record and wakes the task. A call that completes
 * inline (during the submit) is seen right after it, without parking. No
 * malloc, copy or dup is made per call.
 *
 * Stopping early. The kernel may use the task's buffers until the call's
 * CQE is posted, so a task that stops waiting (cancelled, a deadline, its
 * fd weave_close'd) submits an ASYNC_CANCEL for the record and waits under
 * a shield for that CQE before it returns; the call's own result wins if it
 * completed first.
 *
 * Accounting. `calls` counts the calls holding an entry (at most depth);
 * cancels and the no-ops a failed submission leaves behind (below) are
 * extra, so the CQ ring (twice depth) never overflows in practice, and the
 * kernel keeps overflowed CQEs anyway (IORING_FEAT_NODROP, required).
 *
 * A failed submission. io_uring_submit publishes the SQ tail before it
 * enters the kernel; if the kernel takes nothing, the SQE stays in the ring
 * and the next submission would carry it, pointing into a frame that has
 * returned. So the SQE is rewritten as a no-op with no record, and the call
 * runs on the pool instead (WEAVE__URING_FALLBACK).
 *
 * Position: reads and writes use offset -1, the fd's current position (the
 * kernel's IORING_FEAT_RW_CUR_POS, required), so that weave_read and
 * weave_write keep read(2)'s and write(2)'s meaning, O_APPEND included.
 */
#include "base/common.h"
#include "core/wait.h"
#include "io/uring.h"

#include <stdlib.h>
#include <string.h>

#ifdef WEAVE_HAVE_IO_URING
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>
#ifdef WEAVE_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif
#endif

/* Most bytes one read or write asks for (an SQE's length is 32 bits): a
 * larger call returns a short count, as read(2) may. */
#define URING_MAX_LEN ((size_t)1 << 30)

const char *weave__uring_op_name(const void *object)
{
    return object ? *(const char *const *)object : NULL;
}

/* Whether the environment forces the pool: WEAVE_NO_IO_URING set, and not
 * "" or "0". */
static bool env_says_pool(void)
{
    const char *v = getenv("WEAVE_NO_IO_URING");

    return v && *v && strcmp(v, "0") != 0;
}

#ifdef WEAVE_HAVE_IO_URING

/* What a task waiting for an entry shows in weave_tasks. */
static const char *const ring_full = "ring-full";

struct weave__uring {
    struct weave__watcher watcher; /* first: the eventfd's, for the poll step */
    struct io_uring ring;
    int efd;                 /* eventfd: a CQE was posted */
    unsigned depth;          /* calls in the ring at once, at most */
    unsigned calls;          /* calls holding an entry (<= depth) */
    struct weave_waitq room; /* tasks waiting for an entry, FIFO */
    uint64_t waiters;        /* tasks parked on the ring or for room */
    uint64_t ops;            /* calls submitted */
    uint64_t full;           /* times a call waited for room */
};

/* One call, in the parked task's frame. */
struct uring_op {
    const char *name;        /* first: weave__uring_op_name reads it */
    struct weave_waitq done; /* the task, until the CQE comes */
    int res;                 /* the CQE's result, once completed */
    bool completed;
};

static const char *const op_names[] = {
    [WEAVE__URING_READ] = "read",
    [WEAVE__URING_WRITE] = "write",
    [WEAVE__URING_FSYNC] = "fsync",
    [WEAVE__URING_FDATASYNC] = "fdatasync",
};

/* An entry was given back: hand it to the first task waiting for one (it
 * then holds it), else free it. */
static void release(struct weave__sched *s, struct weave__uring *u)
{
    struct weave__waiter *w = weave__queue_first(&u->room);

    if (w)
        weave__wake_waiter(s, w, 0); /* the entry passes to it */
    else
        u->calls--;
}

/* Take in every CQE posted: store each result in its record and wake its
 * task. Records are NULL for cancels and no-ops. */
static void reap(struct weave__sched *s, struct weave__uring *u)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        struct uring_op *op = io_uring_cqe_get_data(cqe);

        n++;
        if (!op)
            continue;
        op->res = cqe->res;
        op->completed = true;
        weave__queue_wake_all(s, &op->done, 0);
        release(s, u);
    }
    io_uring_cq_advance(&u->ring, n);
}

/* The eventfd fired: read it first, so that a CQE posted after the reap
 * below writes it again and makes a new edge. */
static void ring_event(struct weave__sched *s, struct weave__watcher *w, int mask)
{
    struct weave__uring *u = weave__container_of(w, struct weave__uring, watcher);
    uint64_t count;

    (void)mask;
    (void)!read(u->efd, &count, sizeof(count));
    reap(s, u);
}

/* Submit the SQE just filled (sqe). Returns 0, or -errno with the SQE
 * made a no-op with no record if the kernel did not take it. */
static int submit(struct weave__uring *u, struct io_uring_sqe *sqe)
{
    int r;

    do
        r = io_uring_submit(&u->ring);
    while (r == -EINTR);
    if (r >= 0 && io_uring_sq_ready(&u->ring) == 0)
        return 0;
    /* Not taken: entries are taken in order and ours is the newest. */
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, NULL);
    return r < 0 ? r : -EAGAIN;
}

/* The ring's size: WEAVE__URING_DEPTH, or WEAVE_IO_URING_ENTRIES (1 to
 * 4096) from the environment, a knob for the tests that fill the ring. */
static unsigned ring_depth(void)
{
    const char *v = getenv("WEAVE_IO_URING_ENTRIES");
    char *end;
    unsigned long n;

    if (!v || !*v)
        return WEAVE__URING_DEPTH;
    errno = 0;
    n = strtoul(v, &end, 10);
    return errno == 0 && *end == '\0' && n >= 1 && n <= 4096 ? (unsigned)n : WEAVE__URING_DEPTH;
}

/* Make the ring. Returns 0 or -errno. */
static int ring_make(struct weave__sched *s)
{
    struct weave__uring *u = calloc(1, sizeof(*u));
    struct io_uring_params p;
    unsigned depth = ring_depth();
    int r;

    if (!u)
        return -ENOMEM;
    memset(&p, 0, sizeof(p));
    r = io_uring_queue_init_params(depth, &u->ring, &p);
    if (r < 0) {
        free(u);
        return r;
    }
    if (!(p.features & IORING_FEAT_RW_CUR_POS) || !(p.features & IORING_FEAT_NODROP)) {
        r = -ENOSYS; /* before Linux 5.6 */
        goto fail_ring;
    }
    u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (u->efd < 0) {
        r = -errno;
        goto fail_ring;
    }
    if ((r = io_uring_register_eventfd(&u->ring, u->efd)) < 0)
        goto fail_efd;
    u->watcher.fn = ring_event;
    if ((r = weave__poller_add(&s->poller, u->efd, &u->watcher, 1)) < 0)
        goto fail_efd;
    u->depth = depth;
    weave__queue_init(&u->room);
    s->uring = u;
    return 0;
fail_efd:
    close(u->efd);
fail_ring:
    io_uring_queue_exit(&u->ring);
    free(u);
    return r;
}

bool weave__uring_start(struct weave__sched *s)
{
    bool pool;

    if (s->file_io_path != WEAVE_FILE_IO_UNDECIDED)
        return s->file_io_path == WEAVE_FILE_IO_URING;
    pool = env_says_pool();
#ifdef WEAVE_HAVE_VALGRIND_H
    /* valgrind knows little of io_uring: it cannot see what the kernel
     * writes into a buffer through the ring, so memcheck would report the
     * bytes read as undefined. Its runs test the pool. */
    pool = pool || RUNNING_ON_VALGRIND;
#endif
    s->file_io_path = WEAVE_FILE_IO_POOL;
    if (!pool && ring_make(s) == 0)
        s->file_io_path = WEAVE_FILE_IO_URING;
    return s->file_io_path == WEAVE_FILE_IO_URING;
}

/* Fill sqe for op on fd. */
static void prep(struct io_uring_sqe *sqe, int op, int fd, const struct iovec *iov, int iovcnt)
{
    const uint64_t here = (uint64_t)-1; /* the fd's current position */

    switch (op) {
    case WEAVE__URING_READ:
    case WEAVE__URING_WRITE:
        if (iovcnt == 1) {
            size_t len = iov[0].iov_len < URING_MAX_LEN ? iov[0].iov_len : URING_MAX_LEN;

            if (op == WEAVE__URING_READ)
                io_uring_prep_read(sqe, fd, iov[0].iov_base, (unsigned)len, here);
            else
                io_uring_prep_write(sqe, fd, iov[0].iov_base, (unsigned)len, here);
        } else if (op == WEAVE__URING_READ) {
            io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, here);
        } else {
            io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, here);
        }
        break;
    default:
        io_uring_prep_fsync(sqe, fd, op == WEAVE__URING_FDATASYNC ? IORING_FSYNC_DATASYNC : 0);
        break;
    }
}

/* The task stopped waiting for op before it completed: ask the ring to
 * cancel it, then wait, shielded from cancellation and deadlines, until
 * its CQE has come; the kernel may write into the buffers until then. */
static void cancel_and_wait(struct weave__sched *s, struct weave__uring *u, struct uring_op *op)
{
    struct weave__task *t = s->current;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    int64_t deadline = t->deadline;

    if (sqe) {
        io_uring_prep_cancel(sqe, op, 0);
        io_uring_sqe_set_data(sqe, NULL);
        /* If it fails, the call still completes on its own: wait. */
        (void)submit(u, sqe);
        reap(s, u);
    }
    t->shields++;
    t->deadline = WEAVE__NO_DEADLINE;
    while (!op->completed) {
        struct weave__waiter w;
        struct weave__wait wait;

        weave__queue_push(s, &op->done, &w, NULL);
        weave__wait_init(&wait, &w, 1, WEAVE__NO_DEADLINE, WEAVE_WAIT_IO_URING, op);
        (void)weave__park(s, &wait);
    }
    t->deadline = deadline;
    t->shields--;
}

ssize_t weave__uring_call(struct weave__sched *s, int op, int fd, const struct iovec *iov,
                          int iovcnt, struct weave_waitq *also)
{
    struct weave__uring *u = s->uring;
    struct uring_op rec;
    struct io_uring_sqe *sqe;
    struct weave__waiter w[2];
    struct weave__wait wait;
    int why, r;

    if ((r = weave__checkpoint(s)) < 0)
        return r;
    u->waiters++;
    s->io_waiters++;
    if (u->calls >= u->depth || !weave__queue_empty(&u->room)) {
        /* Full: wait for an entry, in turn; release hands it over. */
        u->full++;
        why = weave__wait_in(s, WEAVE_WAIT_IO_URING, &ring_full, &u->room, NULL, WEAVE__NO_DEADLINE,
                             NULL);
        if (why != WEAVE__WHY_EVENT) {
            r = weave__why_errno(why);
            goto out;
        }
    } else {
        u->calls++;
    }
    if (!(sqe = io_uring_get_sqe(&u->ring))) {
        /* The SQ ring holds only no-ops left by failed submissions, and
         * the kernel takes none: let the pool have this call. */
        release(s, u);
        r = WEAVE__URING_FALLBACK;
        goto out;
    }
    rec.name = op_names[op];
    rec.completed = false;
    rec.res = 0;
    weave__queue_init(&rec.done);
    prep(sqe, op, fd, iov, iovcnt);
    io_uring_sqe_set_data(sqe, &rec);
    if (submit(u, sqe) < 0) {
        release(s, u);
        r = WEAVE__URING_FALLBACK;
        goto out;
    }
    u->ops++;
    reap(s, u); /* done inline, most likely, if the page cache had room */
    if (!rec.completed) {
        weave__queue_push(s, &rec.done, &w[0], NULL);
        if (also)
            weave__queue_push(s, also, &w[1], NULL);
        weave__wait_init(&wait, w, also ? 2 : 1, WEAVE__NO_DEADLINE, WEAVE_WAIT_IO_URING, &rec);
        why = weave__park(s, &wait);
        if (!rec.completed) {
            cancel_and_wait(s, u, &rec);
            if (rec.res < 0) {
                r = weave__why_errno(why); /* CLOSED: -EBADF */
                goto out;
            }
        }
    }
    r = rec.res;
out:
    s->io_waiters--;
    u->waiters--;
    return r;
}

void weave__uring_term(struct weave__sched *s)
{
    struct weave__uring *u = s->uring;

    if (!u)
        return;
    /* Every task has ended, and none leaves a call in the ring: only the
     * CQEs of cancels and no-ops may be left. */
    weave__poller_del(&s->poller, u->efd);
    io_uring_queue_exit(&u->ring);
    close(u->efd);
    free(u);
    s->uring = NULL;
}

void weave__uring_stats(const struct weave__sched *s, weave_stats *st)
{
    const struct weave__uring *u = s->uring;

    st->file_io_path = (weave_file_io_path)s->file_io_path;
    if (u) {
        st->file_ring_ops = u->ops;
        st->file_ring_waiters = u->waiters;
        st->file_ring_full = u->full;
    }
}

#else /* !WEAVE_HAVE_IO_URING: the pool, always */

bool weave__uring_start(struct weave__sched *s)
{
    (void)env_says_pool;
    s->file_io_path = WEAVE_FILE_IO_POOL;
    return false;
}

ssize_t weave__uring_call(struct weave__sched *s, int op, int fd, const struct iovec *iov,
                          int iovcnt, struct weave_waitq *also)
{
    (void)s, (void)op, (void)fd, (void)iov, (void)iovcnt, (void)also;
    return WEAVE__URING_FALLBACK;
}

void weave__uring_term(struct weave__sched *s)
{
    (void)s;
}

void weave__uring_stats(const struct weave__sched *s, weave_stats *st)
{
    st->file_io_path = (weave_file_io_path)s->file_io_path;
}

#endif /* WEAVE_HAVE_IO_URING */
