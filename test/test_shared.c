/*
 * test_shared.c - shared channels (weave_chan_new_shared): the channel
 * contract across schedulers and plain threads; and what belongs to one
 * scheduler (a local channel, mutex, semaphore, event, condition, group,
 * stream) refused to every other thread.
 *
 * Contract ("contract"): rendezvous and buffered transfer between tasks of
 * schedulers on other threads and threads with none, with each sender's
 * elements received exactly in the order sent (three senders, one
 * receiver, capacities 0, 1 and 16, every send and receive made one of
 * four ways); try_send and try_recv (EAGAIN; a rendezvous completed with a
 * waiter on another thread; no cancellation point; EPIPE once closed); the
 * _timeout variants in tasks (ETIMEDOUT no earlier than asked, leaving
 * nothing behind; 0 never waits; a timed call completed in time) and on a
 * thread with no scheduler; close waking waiting receivers and senders
 * on two schedulers and on plain threads with EPIPE, whoever closes, and
 * receivers draining the buffer first; weave_chan_free EBUSY while a
 * task, a thread or a select waits, and the channel still working; signal
 * channels (elem_size 0); a task of another scheduler cancelled while it
 * waits (ECANCELED, leaving nothing behind); deadline scopes and shields;
 * and races of cancels and of deadlines against transfers from other
 * threads, after which every element whose send returned 0 arrived exactly
 * once and no other did.
 *
 * Select ("select"): shared and local channels, an fd and a task in one
 * select of a task, each case waking it in turn and leaving no waiter
 * behind; select from a plain thread over shared channels (it waits in the
 * kernel, is completed by another scheduler's tasks either way, times
 * out, sees EPIPE) and EPERM when it names a local channel, an fd or a
 * task; fairness between two always-ready cases (two shared, shared and
 * local), from a task and from a plain thread.
 *
 * Million ("million"): 10^6 sequence-numbered messages over a rendezvous
 * and a buffered shared channel, sent by tasks of 3 schedulers (each on a
 * thread of its own, with weave_run) and by 2 plain threads, received by
 * tasks of the 3 schedulers (recv, select, timed recv) and by a plain
 * thread (select), while a chaos task on each scheduler cancels random
 * receivers, which are restarted. Every message arrives exactly once, and
 * each receiving slot (a receiver and the restarts that follow it) sees
 * each sender's messages in increasing order. 10^5 under valgrind and
 * ThreadSanitizer (fewer cancels there: every task is a thread).
 *
 * Misuse ("misuse"): two schedulers on two threads share a local mutex
 * and two local channels for 300 rounds: the first thread whose task used
 * them owns them; every call from the other thread, and from a thread with
 * no scheduler, fails with EPERM and changes nothing (the owner's lock is
 * still held and unlocks, no element appears or goes), and no increment
 * made under the mutex is lost; the same for a local semaphore, event,
 * condition, group and stream. Under ThreadSanitizer (the tsan preset)
 * the suite also shows that deciding the refusal reads nothing racy.
 * Last, weave_group_free from another thread while a task of the group's
 * own scheduler waits in weave_group_wait: EPERM.
 *
 * Times are asserted as lower bounds; upper bounds (BOUND_MS, WT_PROMPT_MS)
 * only catch hangs.
 *
 * Check timeouts: "contract" 20 s x 15, "select" 20 s x 3, "million"
 * 120 s x 1, "misuse" 30 s x 3 = 570 s; the CTest timeout in
 * CMakeLists.txt (600 s) is above their sum.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "weave_test.h"

/* A bound on waits that only catches hangs; below every Check timeout
 * here (20 s, times CK_TIMEOUT_MULTIPLIER), so that the wait that hung is
 * named. */
#define BOUND_MS ((int64_t)(WT_ON_VALGRIND ? 60000 : WT_TSAN ? 30000 : 10000))
#define SENTINEL UINT64_C(0xdeadbeefdeadbeef) /* a receive buffer nothing wrote */

/* Fail unless expr holds. For hot loops: a passing ck_assert writes to
 * Check's pipe each time, which would dominate a stress test. */
#define REQUIRE(expr)                                                                              \
    do {                                                                                           \
        if (!(expr))                                                                               \
            ck_abort_msg("line %d: %s (errno %d)", __LINE__, #expr, errno);                        \
    } while (0)

/* ---- waiting for other threads ------------------------------------------------ */

/* Let a millisecond pass: a sleep in a task, else a sleep of the thread. */
static void nap(void)
{
    struct timespec ts = {0, 1000000};

    if (weave_self() != NULL)
        REQUIRE(weave_sleep(1) == 0);
    else
        nanosleep(&ts, NULL);
}

/* Wait until *flag reaches want (from a task or a thread); what is what
 * the flag means, for the message if it never does. */
static void await_flag(atomic_int *flag, int want, const char *what)
{
    int64_t t0 = wt_now_ns();

    while (atomic_load(flag) < want) {
        ck_assert_msg(wt_ms_since(t0) < BOUND_MS, "waited %lld ms for %s (%d of %d)",
                      (long long)BOUND_MS, what, atomic_load(flag), want);
        nap();
    }
}

/* In a task: wait until task t of this scheduler is parked on `what`. */
static void await_parked(weave_task *t, weave_wait_kind what)
{
    uint64_t id = weave_task_id(t);
    int64_t t0 = wt_now_ns();
    weave_task_info info[64];

    ck_assert_uint_ne(id, 0);
    for (;;) {
        ssize_t n = weave_tasks(info, 64);

        ck_assert_int_ge(n, 0);
        for (ssize_t k = 0; k < n && k < 64; k++)
            if (info[k].id == id && info[k].state == WEAVE_TASK_PARKED && info[k].wait == what)
                return;
        ck_assert_msg(wt_ms_since(t0) < BOUND_MS, "task %llu never parked", (unsigned long long)id);
        ck_assert_int_eq(weave_sleep(1), 0);
    }
}

/*
 * Wait until plain thread th (kernel id tid) waits for a shared channel:
 * asleep in the kernel in FUTEX_WAIT_PRIVATE for a word that is 0 and lies
 * on its own stack. A thread with no scheduler waits on a word of its
 * call's own (its party, a local: shared.c) until it is no longer 0, while
 * a lock it might wait for (the channel's) lies elsewhere and is waited
 * for while 2, and valgrind's lies elsewhere. (Under ASan's
 * detect_stack_use_after_return, locals live on a fake stack elsewhere:
 * there the word's place is not checked.) Threads have no weave_tasks:
 * this is the kernel's view of one, /proc/self/task/<tid>/syscall.
 */
static void await_thread_parked(pthread_t th, pid_t tid)
{
    char path[64], line[256] = "";
    int64_t t0 = wt_now_ns();
    pthread_attr_t attr;
    uintptr_t lo;
    size_t size;
    void *stack;

    ck_assert_int_eq(pthread_getattr_np(th, &attr), 0);
    ck_assert_int_eq(pthread_attr_getstack(&attr, &stack, &size), 0);
    pthread_attr_destroy(&attr);
    lo = (uintptr_t)stack;
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    for (;;) {
        FILE *f = fopen(path, "r");
        char *end;
        long nr = -1;
        uintptr_t word = 0, op = 0, val = 1;

        ck_assert_msg(f != NULL, "%s: errno %d", path, errno);
        if (fgets(line, sizeof(line), f)) {
            nr = strtol(line, &end, 10);
            word = (uintptr_t)strtoull(end, &end, 16);
            op = (uintptr_t)strtoull(end, &end, 16);
            val = (uintptr_t)strtoull(end, &end, 16);
        }
        fclose(f);
        if (nr == SYS_futex && op == (FUTEX_WAIT | FUTEX_PRIVATE_FLAG) && val == 0 &&
            (WT_ASAN || (word >= lo && word - lo < size)))
            return;
        ck_assert_msg(wt_ms_since(t0) < BOUND_MS, "thread %d never waited (%s: %s)", (int)tid, path,
                      line);
        nap();
    }
}

/* The CPU time thread th has used, ns. */
static int64_t thread_cpu_ns(pthread_t th)
{
    clockid_t id;
    struct timespec ts;

    ck_assert_int_eq(pthread_getcpuclockid(th, &id), 0);
    ck_assert_int_eq(clock_gettime(id, &ts), 0);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- schedulers on threads of their own ---------------------------------------- */

/*
 * A scheduler that runs on a thread of its own until stopped: the test
 * hands it work with weave_post (a job, below) and asks it things with
 * weave_call, which runs on its thread, among its tasks.
 */
struct remote {
    weave_sched *s;
    weave_chan *stop; /* shared, closed to end its main */
    pthread_t th;
    int ret, err;
};

static void *remote_main(void *arg)
{
    struct remote *r = arg;

    WT_FAILS(weave_chan_recv(r->stop, NULL), EPIPE);
    return NULL;
}

static void *remote_thread(void *arg)
{
    struct remote *r = arg;

    errno = 0;
    r->ret = weave_sched_run(r->s, remote_main, r, NULL);
    r->err = errno;
    return NULL;
}

static void remote_start(struct remote *r)
{
    memset(r, 0, sizeof(*r));
    ck_assert_ptr_nonnull(r->s = weave_sched_new(NULL));
    ck_assert_ptr_nonnull(r->stop = weave_chan_new_shared(0, 0));
    ck_assert_int_eq(pthread_create(&r->th, NULL, remote_thread, r), 0);
}

/* Stop r and wait for its thread: its tasks must have ended. */
static void remote_stop(struct remote *r)
{
    ck_assert_int_eq(weave_chan_close(r->stop), 0);
    ck_assert_int_eq(pthread_join(r->th, NULL), 0);
    ck_assert_msg(r->ret == 0, "weave_sched_run: errno %d", r->err);
    ck_assert_int_eq(weave_chan_free(r->stop), 0);
    ck_assert_int_eq(weave_sched_free(r->s), 0);
}

/* ---- jobs: one channel call, by a task of some scheduler or by a thread ---------- */

enum job_op { J_SEND, J_RECV, J_SELECT };

#define PLAIN INT64_MIN /* struct job: the plain call, not the _timeout variant */

struct job {
    enum job_op op;
    weave_chan *c;
    weave_chan *c2;   /* J_SELECT: receive on c or c2 */
    bool null_elem;   /* pass NULL as the element */
    int64_t timeout;  /* PLAIN, or the _timeout variant's */
    uint64_t val;     /* send: the element; receive: what came */
    weave_task *self; /* the task doing it (NULL: a thread) */
    atomic_int tid;   /* the thread doing it */
    pthread_t th;     /* for a job on a plain thread */
    int ret, err;     /* the call's result and errno */
    int64_t took_ms;
    atomic_int done;
};

static struct job job(enum job_op op, weave_chan *c, uint64_t val)
{
    struct job j;

    memset(&j, 0, sizeof(j));
    j.op = op;
    j.c = c;
    j.timeout = PLAIN;
    j.val = op == J_SEND ? val : SENTINEL;
    j.ret = -42;
    return j;
}

static void *job_fn(void *arg)
{
    struct job *j = arg;
    void *elem = j->null_elem ? NULL : &j->val;
    int64_t t0 = wt_now_ns();

    j->self = weave_self();
    atomic_store(&j->tid, gettid());
    errno = 0;
    if (j->op == J_SELECT) {
        weave_select_case k[2];

        memset(k, 0, sizeof(k));
        k[0].op = k[1].op = WEAVE_CASE_RECV;
        k[0].chan = j->c;
        k[1].chan = j->c2;
        k[0].elem = k[1].elem = elem;
        j->ret = weave_select(k, 2, j->timeout == PLAIN ? -1 : j->timeout);
        j->err = j->ret >= 0 ? k[j->ret].err : errno;
    } else if (j->op == J_SEND) {
        j->ret = j->timeout == PLAIN ? weave_chan_send(j->c, elem)
                                     : weave_chan_send_timeout(j->c, elem, j->timeout);
        j->err = errno;
    } else {
        j->ret = j->timeout == PLAIN ? weave_chan_recv(j->c, elem)
                                     : weave_chan_recv_timeout(j->c, elem, j->timeout);
        j->err = errno;
    }
    j->took_ms = wt_ms_since(t0);
    atomic_store(&j->done, 1);
    return NULL;
}

/* Run j as a task of r (posted). */
static void post_job(struct remote *r, struct job *j)
{
    ck_assert_int_eq(weave_post(r->s, job_fn, j), 0);
}

/* Run j on a plain thread of its own (joined by job_wait). */
static void thread_job(struct job *j)
{
    ck_assert_int_eq(pthread_create(&j->th, NULL, job_fn, j), 0);
}

/* On the job's scheduler: wait until its task waits in its call. */
static void *parked_on_home(void *arg)
{
    struct job *j = arg;
    int64_t t0 = wt_now_ns();

    while (!j->self) {
        ck_assert_msg(wt_ms_since(t0) < BOUND_MS, "the job never started");
        nap();
    }
    ck_assert_msg(!atomic_load(&j->done), "the job did not wait: it returned %d, errno %d", j->ret,
                  j->err);
    await_parked(j->self, j->op == J_SELECT ? WEAVE_WAIT_SELECT : WEAVE_WAIT_CHAN);
    return NULL;
}

/* Wait until j waits in its call: a task of r (r not NULL), or a thread. */
static void job_parked(struct remote *r, struct job *j)
{
    if (r) {
        ck_assert_int_eq(weave_call(r->s, parked_on_home, j, NULL), 0);
        return;
    }
    while (!atomic_load(&j->tid))
        nap();
    ck_assert_msg(!atomic_load(&j->done), "the job did not wait: it returned %d, errno %d", j->ret,
                  j->err);
    await_thread_parked(j->th, atomic_load(&j->tid));
}

static void *cancel_on_home(void *arg)
{
    struct job *j = arg;

    ck_assert_int_eq(weave_cancel(j->self), 0);
    return NULL;
}

/* Cancel the task of j, a job of r that is still in its call. */
static void job_cancel(struct remote *r, struct job *j)
{
    ck_assert_int_eq(weave_call(r->s, cancel_on_home, j, NULL), 0);
}

/* Wait until j has returned; assert that it returned ret with errno err
 * (err is not checked when ret is 0). */
static void job_wait(struct job *j, int ret, int err)
{
    await_flag(&j->done, 1, j->op == J_SEND ? "a send to return" : "a receive to return");
    if (j->th)
        ck_assert_int_eq(pthread_join(j->th, NULL), 0);
    j->th = 0;
    ck_assert_msg(j->ret == ret, "job returned %d (errno %d), not %d", j->ret, j->err, ret);
    if (ret < 0 || j->op == J_SELECT)
        ck_assert_int_eq(j->err, err);
}

static weave_chan *new_shared(size_t elem_size, size_t cap)
{
    weave_chan *c = weave_chan_new_shared(elem_size, cap);

    ck_assert_ptr_nonnull(c);
    return c;
}

/* ==== the contract ================================================================ */

/* ---- FIFO per sender, rendezvous and buffered ------------------------------------- */

/* Each of three senders (a task of another scheduler, a task of a third,
 * a plain thread) sends FIFO_N elements (sender << 32 | seq), each send
 * made a different way (send, send_timeout, a select, try_send); one task
 * receives them all, a different way each time as well. With one
 * receiver, each sender's elements must come exactly in order 0, 1, 2 ...
 * on every capacity. */
#define FIFO_SENDERS 3
#define FIFO_N       (WT_ON_VALGRIND ? 300 : WT_TSAN ? 2000 : 5000)

static const size_t fifo_caps[] = {0, 1, 16};

struct fifo_sender {
    weave_chan *c;
    uint64_t id;
    atomic_int done;
};

/* Send elem on c the k-th way of four. */
static void send_kth_way(weave_chan *c, uint64_t elem, unsigned k)
{
    weave_select_case sc;

    switch (k % 4) {
    case 0:
        REQUIRE(weave_chan_send(c, &elem) == 0);
        break;
    case 1:
        REQUIRE(weave_chan_send_timeout(c, &elem, 60000) == 0);
        break;
    case 2:
        memset(&sc, 0, sizeof(sc));
        sc.op = WEAVE_CASE_SEND;
        sc.chan = c;
        sc.elem = &elem;
        REQUIRE(weave_select(&sc, 1, -1) == 0 && sc.err == 0);
        break;
    default:
        /* try_send until it is taken: a few times, then wait. */
        for (int i = 0; weave_chan_try_send(c, &elem) != 0; i++) {
            REQUIRE(errno == EAGAIN);
            if (i == 20) {
                REQUIRE(weave_chan_send(c, &elem) == 0);
                break;
            }
            if (weave_self())
                REQUIRE(weave_yield() == 0);
            else
                sched_yield();
        }
        break;
    }
}

static void *fifo_send(void *arg)
{
    struct fifo_sender *fs = arg;

    for (unsigned seq = 0; seq < (unsigned)FIFO_N; seq++)
        send_kth_way(fs->c, fs->id << 32 | seq, seq + (unsigned)fs->id);
    atomic_store(&fs->done, 1);
    return NULL;
}

/* Receive one element of c the k-th way of four. */
static uint64_t recv_kth_way(weave_chan *c, unsigned k)
{
    uint64_t v = SENTINEL;
    weave_select_case sc;

    switch (k % 4) {
    case 0:
        REQUIRE(weave_chan_recv(c, &v) == 0);
        break;
    case 1:
        REQUIRE(weave_chan_recv_timeout(c, &v, 60000) == 0);
        break;
    case 2:
        memset(&sc, 0, sizeof(sc));
        sc.op = WEAVE_CASE_RECV;
        sc.chan = c;
        sc.elem = &v;
        REQUIRE(weave_select(&sc, 1, -1) == 0 && sc.err == 0);
        break;
    default:
        if (weave_chan_try_recv(c, &v) != 0) {
            REQUIRE(errno == EAGAIN);
            REQUIRE(weave_chan_recv(c, &v) == 0);
        }
        break;
    }
    return v;
}

static void *m_fifo(void *arg)
{
    size_t cap = fifo_caps[wt_int(arg)];
    struct fifo_sender fs[FIFO_SENDERS];
    unsigned next[FIFO_SENDERS] = {0};
    struct remote r[2];
    pthread_t th;
    uint64_t v;
    weave_chan *c = new_shared(sizeof(uint64_t), cap);

    for (int i = 0; i < FIFO_SENDERS; i++) {
        fs[i].c = c;
        fs[i].id = (uint64_t)i;
        atomic_init(&fs[i].done, 0);
    }
    for (int i = 0; i < 2; i++) {
        remote_start(&r[i]);
        ck_assert_int_eq(weave_post(r[i].s, fifo_send, &fs[i]), 0);
    }
    ck_assert_int_eq(pthread_create(&th, NULL, fifo_send, &fs[2]), 0);
    for (unsigned k = 0; k < (unsigned)(FIFO_SENDERS * FIFO_N); k++) {
        uint64_t id;

        v = recv_kth_way(c, k);
        id = v >> 32;
        REQUIRE(id < FIFO_SENDERS);
        if ((v & 0xffffffffu) != next[id])
            ck_abort_msg("capacity %zu: sender %llu's element %llu came after %u", cap,
                         (unsigned long long)id, (unsigned long long)(v & 0xffffffffu),
                         next[id] - 1);
        next[id]++;
    }
    for (int i = 0; i < FIFO_SENDERS; i++)
        ck_assert_uint_eq(next[i], FIFO_N);
    /* Nothing more: every sender is done, nothing is buffered. */
    WT_FAILS(weave_chan_try_recv(c, &v), EAGAIN);
    ck_assert_uint_eq(weave_chan_len(c), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    for (int i = 0; i < 2; i++) {
        await_flag(&fs[i].done, 1, "a sender to end");
        remote_stop(&r[i]);
    }
    ck_assert_int_eq(weave_chan_close(c), 0);
    WT_FAILS(weave_chan_recv(c, &v), EPIPE);
    ck_assert_int_eq(weave_chan_free(c), 0);
    return NULL;
}

START_TEST(fifo_per_sender_across_threads)
{
    WT_RUN(m_fifo, wt_ptr(_i));
}
END_TEST

/* ---- try_send and try_recv ------------------------------------------------------- */

/* What try_send and try_recv do on an idle rendezvous channel and a
 * buffered one of capacity 2, from a task or a thread alike. */
static void try_on_idle(weave_chan *c0, weave_chan *c2)
{
    uint64_t v = SENTINEL, a = 1, b = 2, x = 3;

    WT_FAILS(weave_chan_try_recv(c0, &v), EAGAIN);
    WT_FAILS(weave_chan_try_send(c0, &a), EAGAIN); /* no receiver waits */
    WT_FAILS(weave_chan_try_recv(c2, &v), EAGAIN);
    ck_assert_int_eq(weave_chan_try_send(c2, &a), 0);
    ck_assert_int_eq(weave_chan_try_send(c2, &b), 0);
    WT_FAILS(weave_chan_try_send(c2, &x), EAGAIN); /* full */
    ck_assert_uint_eq(weave_chan_len(c2), 2);
    ck_assert_int_eq(weave_chan_try_recv(c2, &v), 0);
    ck_assert_uint_eq(v, 1);
    ck_assert_int_eq(weave_chan_try_recv(c2, &v), 0);
    ck_assert_uint_eq(v, 2);
    WT_FAILS(weave_chan_try_recv(c2, &v), EAGAIN);
    ck_assert_uint_eq(v, 2); /* a refused call leaves the buffer alone */
}

static void *try_from_thread(void *arg)
{
    weave_chan **c = arg;

    try_on_idle(c[0], c[1]);
    return NULL;
}

static void *m_try(void *arg)
{
    weave_chan *c[2] = {new_shared(sizeof(uint64_t), 0), new_shared(sizeof(uint64_t), 2)};
    struct job j;
    struct remote r;
    pthread_t th;
    uint64_t v = 5;

    (void)arg;
    try_on_idle(c[0], c[1]);
    ck_assert_int_eq(pthread_create(&th, NULL, try_from_thread, c), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);

    /* A rendezvous try_send succeeds exactly when a receiver waits: a
     * task of another scheduler. */
    remote_start(&r);
    j = job(J_RECV, c[0], 0);
    post_job(&r, &j);
    job_parked(&r, &j);
    ck_assert_int_eq(weave_chan_try_send(c[0], &v), 0);
    job_wait(&j, 0, 0);
    ck_assert_uint_eq(j.val, 5);
    WT_FAILS(weave_chan_try_send(c[0], &v), EAGAIN);
    /* And try_recv takes from a sender waiting there (a plain thread). */
    j = job(J_SEND, c[0], 6);
    thread_job(&j);
    job_parked(NULL, &j);
    ck_assert_int_eq(weave_chan_try_recv(c[0], &v), 0);
    ck_assert_uint_eq(v, 6);
    job_wait(&j, 0, 0);
    WT_FAILS(weave_chan_try_recv(c[0], &v), EAGAIN);

    /* try_* are no cancellation points: a cancelled task still uses them. */
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    v = 7;
    ck_assert_int_eq(weave_chan_try_send(c[1], &v), 0);
    ck_assert_int_eq(weave_chan_try_recv(c[1], &v), 0);
    ck_assert_uint_eq(v, 7);
    WT_FAILS(weave_chan_recv_timeout(c[1], &v, 0), ECANCELED);

    /* Closed: try_send fails at once, try_recv once the buffer is drained. */
    ck_assert_int_eq(weave_chan_try_send(c[1], &v), 0);
    ck_assert_int_eq(weave_chan_close(c[1]), 0);
    WT_FAILS(weave_chan_try_send(c[1], &v), EPIPE);
    v = 0;
    ck_assert_int_eq(weave_chan_try_recv(c[1], &v), 0); /* drained first */
    ck_assert_uint_eq(v, 7);
    WT_FAILS(weave_chan_try_recv(c[1], &v), EPIPE);
    remote_stop(&r);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(weave_chan_free(c[i]), 0);
    return NULL;
}

START_TEST(try_ops_eagain)
{
    WT_RUN(m_try, NULL);
}
END_TEST

/* ---- the _timeout variants ------------------------------------------------------- */

#define TIMEOUT_MS 60

/* In a task, with the channel's other side on other threads. */
static void *m_timeouts_task(void *arg)
{
    weave_chan *c0 = new_shared(sizeof(uint64_t), 0), *c1 = new_shared(sizeof(uint64_t), 1);
    uint64_t v = 9, w = SENTINEL;
    struct remote r;
    struct job j;
    int64_t t0;

    (void)arg;
    /* Nobody comes: ETIMEDOUT, no earlier than asked. */
    t0 = wt_now_ns();
    WT_FAILS(weave_chan_recv_timeout(c0, &w, TIMEOUT_MS), ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), TIMEOUT_MS);
    ck_assert_uint_eq(w, SENTINEL);
    t0 = wt_now_ns();
    WT_FAILS(weave_chan_send_timeout(c0, &v, TIMEOUT_MS), ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), TIMEOUT_MS);
    ck_assert_int_eq(weave_chan_try_send(c1, &v), 0);
    t0 = wt_now_ns();
    WT_FAILS(weave_chan_send_timeout(c1, &v, TIMEOUT_MS), ETIMEDOUT); /* full */
    ck_assert_int_ge(wt_ms_since(t0), TIMEOUT_MS);
    /* The sends that timed out left nothing behind: a plain thread finds
     * no sender on c0 and one element in c1. */
    j = job(J_RECV, c0, 0);
    j.timeout = 0;
    thread_job(&j);
    job_wait(&j, -1, ETIMEDOUT);
    ck_assert_uint_eq(weave_chan_len(c1), 1);

    /* 0 never waits, and completes what it can at once. */
    WT_FAILS(weave_chan_recv_timeout(c0, &w, 0), ETIMEDOUT);
    WT_FAILS(weave_chan_send_timeout(c1, &v, 0), ETIMEDOUT);
    ck_assert_int_eq(weave_chan_recv_timeout(c1, &w, 0), 0);
    ck_assert_uint_eq(w, 9);
    WT_FAILS(weave_chan_recv_timeout(c0, &w, -2), EINVAL);

    /* A timed call that another thread completes in time returns 0: a
     * receive of this task, completed by a plain thread; a send of a task
     * of another scheduler, taken by this task. */
    j = job(J_SEND, c0, 11);
    thread_job(&j);
    w = SENTINEL;
    t0 = wt_now_ns();
    ck_assert_int_eq(weave_chan_recv_timeout(c0, &w, BOUND_MS), 0);
    ck_assert_int_lt(wt_ms_since(t0), WT_PROMPT_MS);
    ck_assert_uint_eq(w, 11);
    job_wait(&j, 0, 0);
    remote_start(&r);
    j = job(J_SEND, c0, 12);
    j.timeout = BOUND_MS;
    post_job(&r, &j);
    job_parked(&r, &j);
    ck_assert_int_eq(weave_chan_recv(c0, &w), 0);
    ck_assert_uint_eq(w, 12);
    job_wait(&j, 0, 0);
    /* And a timed receive of the other scheduler's task times out there. */
    j = job(J_RECV, c0, 0);
    j.timeout = TIMEOUT_MS;
    post_job(&r, &j);
    job_wait(&j, -1, ETIMEDOUT);
    ck_assert_int_ge(j.took_ms, TIMEOUT_MS);
    ck_assert_uint_eq(j.val, SENTINEL);
    remote_stop(&r);
    ck_assert_int_eq(weave_chan_free(c0), 0);
    ck_assert_int_eq(weave_chan_free(c1), 0);
    return NULL;
}

START_TEST(timeouts_in_tasks)
{
    WT_RUN(m_timeouts_task, NULL);
}
END_TEST

/*
 * From a thread with no scheduler, a _timeout call must time out too
 * (weave.h: the whole channel contract, "the _try and _timeout variants",
 * for any thread). The call runs on a thread of its own; if it has not
 * returned well after its timeout, the channel is closed to release it
 * and the test fails.
 */
static void timed_on_thread(enum job_op op, weave_chan *c, int64_t timeout)
{
    struct job j = job(op, c, 1);
    int64_t t0 = wt_now_ns();

    j.timeout = timeout;
    thread_job(&j);
    while (!atomic_load(&j.done) && wt_ms_since(t0) < timeout + WT_PROMPT_MS)
        nap();
    if (!atomic_load(&j.done)) {
        ck_assert_int_eq(weave_chan_close(c), 0);
        job_wait(&j, -1, EPIPE);
        ck_abort_msg("weave_chan_%s_timeout(%lld ms) on a thread with no scheduler had not "
                     "returned after %lld ms (it waits with no timeout)",
                     op == J_SEND ? "send" : "recv", (long long)timeout,
                     (long long)(timeout + WT_PROMPT_MS));
    }
    job_wait(&j, -1, ETIMEDOUT);
    ck_assert_int_ge(j.took_ms, timeout);
}

START_TEST(timeouts_on_plain_thread)
{
    weave_chan *c0 = new_shared(sizeof(uint64_t), 0), *c1 = new_shared(sizeof(uint64_t), 1);
    uint64_t v = 1;

    /* 0 never waits. */
    timed_on_thread(J_RECV, c0, 0);
    timed_on_thread(J_SEND, c0, 0);
    ck_assert_int_eq(weave_chan_try_send(c1, &v), 0);
    timed_on_thread(J_SEND, c1, 0);
    /* A real timeout. */
    timed_on_thread(J_RECV, c0, TIMEOUT_MS);
    timed_on_thread(J_SEND, c1, TIMEOUT_MS);
    ck_assert_uint_eq(weave_chan_len(c1), 1);
    ck_assert_int_eq(weave_chan_free(c0), 0);
    ck_assert_int_eq(weave_chan_free(c1), 0);
}
END_TEST

/* ---- close ----------------------------------------------------------------------- */

/*
 * Close wakes every waiter, wherever it waits: receivers of r0 (a task of
 * scheduler A, a task of B, a plain thread) and senders of s0 (a task of
 * A, a plain thread) and of s1, full (a task of B). r0 is closed by this
 * task, s0 by a plain thread, s1 by a task of B. Every one gets EPIPE.
 */
static void *close_on_home(void *arg)
{
    ck_assert_int_eq(weave_chan_close(arg), 0);
    return NULL;
}

static void *close_from_thread(void *arg)
{
    ck_assert_int_eq(weave_chan_close(arg), 0);
    return NULL;
}

static void *m_close_wakes(void *arg)
{
    weave_chan *r0 = new_shared(sizeof(uint64_t), 0), *s0 = new_shared(sizeof(uint64_t), 0);
    weave_chan *s1 = new_shared(sizeof(uint64_t), 1);
    struct remote a, b;
    struct job rj[3], sj[3];
    uint64_t v = 1;
    pthread_t th;

    (void)arg;
    remote_start(&a);
    remote_start(&b);
    ck_assert_int_eq(weave_chan_try_send(s1, &v), 0); /* full */
    rj[0] = job(J_RECV, r0, 0);
    rj[1] = job(J_RECV, r0, 0);
    rj[2] = job(J_RECV, r0, 0);
    sj[0] = job(J_SEND, s0, 10);
    sj[1] = job(J_SEND, s0, 11);
    sj[2] = job(J_SEND, s1, 12);
    post_job(&a, &rj[0]);
    post_job(&b, &rj[1]);
    thread_job(&rj[2]);
    post_job(&a, &sj[0]);
    thread_job(&sj[1]);
    post_job(&b, &sj[2]);
    job_parked(&a, &rj[0]);
    job_parked(&b, &rj[1]);
    job_parked(NULL, &rj[2]);
    job_parked(&a, &sj[0]);
    job_parked(NULL, &sj[1]);
    job_parked(&b, &sj[2]);

    ck_assert_int_eq(weave_chan_close(r0), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, close_from_thread, s0), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(weave_call(b.s, close_on_home, s1, NULL), 0);
    for (int i = 0; i < 3; i++) {
        job_wait(&rj[i], -1, EPIPE);
        ck_assert_uint_eq(rj[i].val, SENTINEL);
        job_wait(&sj[i], -1, EPIPE);
    }
    /* s1 still holds its element for receivers, then EPIPE. */
    v = 0;
    ck_assert_int_eq(weave_chan_recv(s1, &v), 0);
    ck_assert_uint_eq(v, 1);
    WT_FAILS(weave_chan_recv(s1, &v), EPIPE);
    /* Closed is closed for everyone, from anywhere. */
    WT_FAILS(weave_chan_close(r0), EPIPE);
    WT_FAILS(weave_chan_send(r0, &v), EPIPE);
    WT_FAILS(weave_chan_send_timeout(r0, &v, 0), EPIPE);
    sj[0] = job(J_SEND, r0, 1);
    thread_job(&sj[0]);
    job_wait(&sj[0], -1, EPIPE);
    rj[0] = job(J_RECV, s0, 0);
    post_job(&a, &rj[0]);
    job_wait(&rj[0], -1, EPIPE);
    remote_stop(&a);
    remote_stop(&b);
    ck_assert_int_eq(weave_chan_free(r0), 0);
    ck_assert_int_eq(weave_chan_free(s0), 0);
    ck_assert_int_eq(weave_chan_free(s1), 0);
    return NULL;
}

START_TEST(close_wakes_waiters_everywhere)
{
    WT_RUN(m_close_wakes, NULL);
}
END_TEST

/*
 * Receivers drain the buffer before they see EPIPE: three elements in a
 * closed channel go to three receivers on three threads (tasks of A and B,
 * a plain thread, each receiving until EPIPE), each exactly once; and one
 * receiver alone gets them in order.
 */
struct drainer {
    weave_chan *c;
    uint64_t got[4];
    int n;
    atomic_int done;
};

static void *drain_until_epipe(void *arg)
{
    struct drainer *d = arg;
    uint64_t v;

    while (weave_chan_recv(d->c, &v) == 0) {
        REQUIRE(d->n < 4);
        d->got[d->n++] = v;
        if (weave_self())
            REQUIRE(weave_yield() == 0); /* let the others have some */
        else
            sched_yield();
    }
    REQUIRE(errno == EPIPE);
    atomic_store(&d->done, 1);
    return NULL;
}

static void *m_drain_first(void *arg)
{
    weave_chan *c = new_shared(sizeof(uint64_t), 4);
    struct drainer d[3];
    struct remote a, b;
    int count[3] = {0};
    uint64_t v;
    pthread_t th;

    (void)arg;
    for (v = 0; v < 3; v++)
        ck_assert_int_eq(weave_chan_send(c, &v), 0);
    ck_assert_int_eq(weave_chan_close(c), 0);
    WT_FAILS(weave_chan_send(c, &v), EPIPE);
    ck_assert_uint_eq(weave_chan_len(c), 3);
    memset(d, 0, sizeof(d));
    for (int i = 0; i < 3; i++)
        d[i].c = c;
    remote_start(&a);
    remote_start(&b);
    ck_assert_int_eq(weave_post(a.s, drain_until_epipe, &d[0]), 0);
    ck_assert_int_eq(weave_post(b.s, drain_until_epipe, &d[1]), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, drain_until_epipe, &d[2]), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    for (int i = 0; i < 3; i++) {
        await_flag(&d[i].done, 1, "a receiver to see EPIPE");
        for (int k = 0; k < d[i].n; k++) {
            ck_assert_uint_lt(d[i].got[k], 3);
            if (k > 0) /* one receiver: in order */
                ck_assert_uint_gt(d[i].got[k], d[i].got[k - 1]);
            count[d[i].got[k]]++;
        }
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(count[i], 1);
    ck_assert_uint_eq(weave_chan_len(c), 0);
    remote_stop(&a);
    remote_stop(&b);
    ck_assert_int_eq(weave_chan_free(c), 0);
    return NULL;
}

START_TEST(close_drains_buffer_first)
{
    WT_RUN(m_drain_first, NULL);
}
END_TEST

/* ---- free while waited on ---------------------------------------------------------- */

static void *free_busy_on_home(void *arg)
{
    WT_FAILS(weave_chan_free(arg), EBUSY);
    return NULL;
}

static void *m_free_busy(void *arg)
{
    weave_chan *c0 = new_shared(sizeof(uint64_t), 0), *c1 = new_shared(sizeof(uint64_t), 0);
    weave_chan *c2 = new_shared(sizeof(uint64_t), 0), *c3 = new_shared(sizeof(uint64_t), 0);
    struct remote b;
    struct job j;
    uint64_t v = 5;

    (void)arg;
    remote_start(&b);
    /* A task of another scheduler waits on c0: EBUSY from here, and the
     * channel still works; once served, it frees. */
    j = job(J_RECV, c0, 0);
    post_job(&b, &j);
    job_parked(&b, &j);
    WT_FAILS(weave_chan_free(c0), EBUSY);
    ck_assert_int_eq(weave_chan_send(c0, &v), 0);
    ck_assert_int_eq(weave_chan_free(c0), 0); /* at once, its waiter maybe not out yet */
    job_wait(&j, 0, 0);
    ck_assert_uint_eq(j.val, 5);

    /* A plain thread waits on c1: EBUSY from a task of the other
     * scheduler; closed, the thread gets EPIPE, and c1 frees. */
    j = job(J_RECV, c1, 0);
    thread_job(&j);
    job_parked(NULL, &j);
    ck_assert_int_eq(weave_call(b.s, free_busy_on_home, c1, NULL), 0);
    ck_assert_int_eq(weave_chan_close(c1), 0);
    ck_assert_int_eq(weave_chan_free(c1), 0);
    job_wait(&j, -1, EPIPE);

    /* A select of a task of B waits on c2 (and c3): EBUSY for both. */
    j = job(J_SELECT, c2, 0);
    j.c2 = c3;
    post_job(&b, &j);
    job_parked(&b, &j);
    WT_FAILS(weave_chan_free(c2), EBUSY);
    WT_FAILS(weave_chan_free(c3), EBUSY);
    v = 6;
    ck_assert_int_eq(weave_chan_send(c3, &v), 0);
    job_wait(&j, 1, 0);
    ck_assert_uint_eq(j.val, 6);
    ck_assert_int_eq(weave_chan_free(c2), 0);
    ck_assert_int_eq(weave_chan_free(c3), 0);
    remote_stop(&b);
    return NULL;
}

START_TEST(free_busy_while_waited_on)
{
    WT_RUN(m_free_busy, NULL);
}
END_TEST

/* ---- elem_size 0 ------------------------------------------------------------------- */

#define SIGNALS 200

static void *signal_many(void *arg)
{
    for (int i = 0; i < SIGNALS; i++)
        REQUIRE(weave_chan_send(arg, NULL) == 0);
    return NULL;
}

static void *m_elem_zero(void *arg)
{
    weave_chan *c0 = new_shared(0, 0), *c3 = new_shared(0, 3);
    weave_chan *big = new_shared(sizeof(uint64_t), 1);
    weave_select_case k;
    struct job j;
    pthread_t th;

    (void)arg;
    /* Signals from a plain thread, counted here, on both capacities. */
    for (int c = 0; c < 2; c++) {
        weave_chan *ch = c ? c3 : c0;

        ck_assert_int_eq(pthread_create(&th, NULL, signal_many, ch), 0);
        for (int i = 0; i < SIGNALS; i++)
            REQUIRE(weave_chan_recv(ch, NULL) == 0);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        WT_FAILS(weave_chan_try_recv(ch, NULL), EAGAIN);
    }
    /* A buffer of signals counts them. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weave_chan_try_send(c3, NULL), 0);
    WT_FAILS(weave_chan_try_send(c3, NULL), EAGAIN);
    ck_assert_uint_eq(weave_chan_len(c3), 3);
    /* Select with NULL elements, both ways. */
    memset(&k, 0, sizeof(k));
    k.op = WEAVE_CASE_RECV;
    k.chan = c3;
    ck_assert_int_eq(weave_select(&k, 1, 0), 0);
    ck_assert_int_eq(k.err, 0);
    ck_assert_uint_eq(weave_chan_len(c3), 2);
    j = job(J_RECV, c0, 0);
    j.null_elem = true;
    thread_job(&j);
    job_parked(NULL, &j);
    k.op = WEAVE_CASE_SEND;
    k.chan = c0;
    ck_assert_int_eq(weave_select(&k, 1, BOUND_MS), 0);
    job_wait(&j, 0, 0);
    /* NULL is an element only where elements are empty. */
    WT_FAILS(weave_chan_send(big, NULL), EINVAL);
    WT_FAILS(weave_chan_try_send(big, NULL), EINVAL);
    j = job(J_SEND, big, 0);
    j.null_elem = true;
    thread_job(&j);
    job_wait(&j, -1, EINVAL);
    ck_assert_int_eq(weave_chan_close(c3), 0);
    ck_assert_int_eq(weave_chan_recv(c3, NULL), 0);
    ck_assert_int_eq(weave_chan_recv(c3, NULL), 0);
    WT_FAILS(weave_chan_recv(c3, NULL), EPIPE);
    ck_assert_int_eq(weave_chan_free(c0), 0);
    ck_assert_int_eq(weave_chan_free(c3), 0);
    ck_assert_int_eq(weave_chan_free(big), 0);
    return NULL;
}

START_TEST(elem_size_zero)
{
    WT_RUN(m_elem_zero, NULL);
}
END_TEST

/* ---- cancellation ------------------------------------------------------------------- */

/*
 * A task of another scheduler waiting on a shared channel, cancelled
 * there, returns ECANCELED and leaves nothing: a waiting receiver takes
 * nothing (a later try_send finds no receiver), a waiting sender gives
 * nothing (a later try_recv finds neither its element nor a sender), a
 * sender waiting on a full buffer leaves the buffer as it was.
 */
static void *m_cancel_waiter(void *arg)
{
    weave_chan *c0 = new_shared(sizeof(uint64_t), 0), *c1 = new_shared(sizeof(uint64_t), 1);
    struct remote b;
    struct job j;
    uint64_t v = 1;

    (void)arg;
    remote_start(&b);
    j = job(J_RECV, c0, 0);
    post_job(&b, &j);
    job_parked(&b, &j);
    job_cancel(&b, &j);
    job_wait(&j, -1, ECANCELED);
    ck_assert_uint_eq(j.val, SENTINEL);
    WT_FAILS(weave_chan_try_send(c0, &v), EAGAIN);

    j = job(J_SEND, c0, 77);
    post_job(&b, &j);
    job_parked(&b, &j);
    job_cancel(&b, &j);
    job_wait(&j, -1, ECANCELED);
    WT_FAILS(weave_chan_try_recv(c0, &v), EAGAIN);
    ck_assert_uint_eq(v, 1);

    ck_assert_int_eq(weave_chan_try_send(c1, &v), 0);
    j = job(J_SEND, c1, 78);
    post_job(&b, &j);
    job_parked(&b, &j);
    job_cancel(&b, &j);
    job_wait(&j, -1, ECANCELED);
    v = 0;
    ck_assert_int_eq(weave_chan_try_recv(c1, &v), 0);
    ck_assert_uint_eq(v, 1);
    WT_FAILS(weave_chan_try_recv(c1, &v), EAGAIN);

    /* A select of shared channels, cancelled, likewise. */
    j = job(J_SELECT, c0, 0);
    j.c2 = c1;
    post_job(&b, &j);
    job_parked(&b, &j);
    job_cancel(&b, &j);
    job_wait(&j, -1, ECANCELED);
    WT_FAILS(weave_chan_try_send(c0, &v), EAGAIN);
    remote_stop(&b);
    ck_assert_int_eq(weave_chan_free(c0), 0);
    ck_assert_int_eq(weave_chan_free(c1), 0);
    return NULL;
}

START_TEST(cancelled_waiter_leaves_nothing)
{
    WT_RUN(m_cancel_waiter, NULL);
}
END_TEST

/*
 * Races of cancellation against transfers from other threads. Tasks of
 * scheduler A send 1, 2, 3 ... on a shared channel (a rendezvous, then a
 * buffered one) and are cancelled at random moments by A's main; a plain
 * thread and tasks of scheduler B receive, B's receivers also cancelled at
 * random moments and restarted. Each value whose send returned 0 must be
 * received exactly once; a value whose send failed, never.
 */
#define RACE_VALUES      (WT_ON_VALGRIND ? 500 : WT_TSAN ? 1000 : 6000)
#define RACE_TASKS       4   /* senders on A; receivers on B */
#define RACE_MAX_CANCELS 300 /* by each scheduler, under ThreadSanitizer */

struct race {
    weave_chan *c;
    atomic_uint next;                   /* the next value to send */
    unsigned char *accepted, *received; /* [value]: atomic bytes */
    atomic_int senders_done, recv_stop; /* every value taken; B stops */
    uint64_t rng_a, rng_b;              /* each scheduler's own */
    atomic_long cancels;
};

static struct race race;

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dull;
}

static void got(unsigned char *ledger, uint64_t v)
{
    REQUIRE(v >= 1 && v < (uint64_t)RACE_VALUES + 1);
    REQUIRE(__atomic_fetch_add(&ledger[v], 1, __ATOMIC_RELAXED) == 0);
}

/* A's sender: sends until the values run out or it is cancelled. */
static void *race_sender(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t v = atomic_fetch_add(&race.next, 1);
        int r;

        if (v > (uint64_t)RACE_VALUES)
            return NULL;
        errno = 0;
        r = v % 3 == 0 ? weave_chan_send_timeout(race.c, &v, 1) : weave_chan_send(race.c, &v);
        if (r == 0)
            got(race.accepted, v);
        else if (errno == ECANCELED)
            return NULL;
        else
            REQUIRE(errno == ETIMEDOUT);
    }
}

/* B's receiver (and the plain thread's loop): receive until stopped or
 * cancelled; the caller restarts it. */
static void *race_receiver(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t v = SENTINEL;
        int r;

        errno = 0;
        r = weave_chan_recv_timeout(race.c, &v, 5);
        if (r == 0) {
            got(race.received, v);
            continue;
        }
        REQUIRE(v == SENTINEL);
        if (errno == ECANCELED || errno == EPIPE)
            return NULL;
        REQUIRE(errno == ETIMEDOUT);
        if (atomic_load(&race.recv_stop))
            return NULL;
    }
}

static void *race_thread_receiver(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t v = SENTINEL;

        if (weave_chan_recv(race.c, &v) != 0) {
            REQUIRE(errno == EPIPE && v == SENTINEL);
            return NULL;
        }
        got(race.received, v);
    }
}

/* Run RACE_TASKS tasks of fn and keep them running, cancelling one at
 * random every now and then and starting another in its place, until
 * *stop. Under ThreadSanitizer, where every task is a thread and a process
 * may make some 8000, the cancels are fewer. */
static void race_chaos(weave_fn fn, uint64_t *rng, atomic_int *stop)
{
    weave_task *t[RACE_TASKS];
    long cancels = 0;

    for (int i = 0; i < RACE_TASKS; i++)
        t[i] = WT_SPAWN(fn, NULL);
    while (!atomic_load(stop)) {
        int i = (int)(xorshift(rng) % RACE_TASKS);

        if (WT_TSAN)
            REQUIRE(weave_sleep_us((int64_t)(xorshift(rng) % 3000)) == 0);
        else if (xorshift(rng) % 8 != 0)
            REQUIRE(weave_yield() == 0); /* often, between the others' steps */
        else
            REQUIRE(weave_sleep_us((int64_t)(xorshift(rng) % 200)) == 0);
        if (WT_TSAN && cancels >= RACE_MAX_CANCELS)
            continue;
        REQUIRE(weave_cancel(t[i]) == 0);
        REQUIRE(weave_join(t[i], NULL) == 0);
        cancels++;
        t[i] = weave_spawn(fn, NULL);
        REQUIRE(t[i] != NULL);
    }
    atomic_fetch_add(&race.cancels, cancels);
    for (int i = 0; i < RACE_TASKS; i++)
        WT_JOIN(t[i]);
}

/* A's watcher: A's senders are done once every value was taken. */
static void *race_a_watch(void *arg)
{
    (void)arg;
    while (atomic_load(&race.next) <= (unsigned)RACE_VALUES)
        nap();
    atomic_store(&race.senders_done, 1);
    return NULL;
}

static void *race_a_main(void *arg)
{
    weave_task *w = WT_SPAWN(race_a_watch, NULL);

    (void)arg;
    race_chaos(race_sender, &race.rng_a, &race.senders_done);
    WT_JOIN(w);
    return NULL;
}

static void *race_b_main(void *arg)
{
    (void)arg;
    race_chaos(race_receiver, &race.rng_b, &race.recv_stop);
    return NULL;
}

/* A thread that runs a scheduler with main task arg. */
static void *run_on_thread(void *arg)
{
    errno = 0;
    ck_assert_msg(weave_run((weave_fn)arg, NULL, NULL) == 0, "weave_run: errno %d", errno);
    return NULL;
}

START_TEST(cancel_races_lose_nothing)
{
    size_t caps[] = {0, 4};

    for (int k = 0; k < 2; k++) {
        pthread_t a, b, p;

        memset(&race, 0, sizeof(race));
        atomic_init(&race.next, 1);
        race.rng_a = 0x1234567u + (uint64_t)k;
        race.rng_b = 0x7654321u + (uint64_t)k;
        race.c = new_shared(sizeof(uint64_t), caps[k]);
        race.accepted = calloc((size_t)RACE_VALUES + 1, 1);
        race.received = calloc((size_t)RACE_VALUES + 1, 1);
        ck_assert_ptr_nonnull(race.accepted);
        ck_assert_ptr_nonnull(race.received);
        ck_assert_int_eq(pthread_create(&b, NULL, run_on_thread, (void *)race_b_main), 0);
        ck_assert_int_eq(pthread_create(&p, NULL, race_thread_receiver, NULL), 0);
        ck_assert_int_eq(pthread_create(&a, NULL, run_on_thread, (void *)race_a_main), 0);
        ck_assert_int_eq(pthread_join(a, NULL), 0);
        /* Every send has returned: the receivers take what is buffered. */
        atomic_store(&race.recv_stop, 1);
        ck_assert_int_eq(pthread_join(b, NULL), 0);
        ck_assert_int_eq(weave_chan_close(race.c), 0);
        ck_assert_int_eq(pthread_join(p, NULL), 0);
        for (int v = 1; v <= RACE_VALUES; v++)
            if (race.accepted[v] != race.received[v])
                ck_abort_msg("capacity %zu: value %d sent %d times, received %d times", caps[k], v,
                             race.accepted[v], race.received[v]);
        ck_assert_int_gt(atomic_load(&race.cancels), 0);
        ck_assert_int_eq(weave_chan_free(race.c), 0);
        free(race.accepted);
        free(race.received);
    }
}
END_TEST

/* ---- deadline scopes and shields ---------------------------------------------------- */

static void *m_scopes(void *arg)
{
    weave_chan *c0 = new_shared(sizeof(uint64_t), 0);
    uint64_t v = 0;
    struct job j;
    weave_deadline d;
    weave_shield sh;
    int64_t t0;

    (void)arg;
    /* A scope's deadline ends a wait on a shared channel, no earlier. */
    t0 = wt_now_ns();
    weave_deadline_begin(&d, TIMEOUT_MS);
    WT_FAILS(weave_chan_recv(c0, &v), ETIMEDOUT);
    ck_assert_int_ge(wt_ms_since(t0), TIMEOUT_MS);
    ck_assert_int_eq(weave_deadline_end(&d), 1);

    /* A scope that does not expire lets a transfer from a thread through. */
    j = job(J_SEND, c0, 21);
    thread_job(&j);
    weave_deadline_begin(&d, BOUND_MS);
    ck_assert_int_eq(weave_chan_recv(c0, &v), 0);
    ck_assert_int_eq(weave_deadline_end(&d), 0);
    ck_assert_uint_eq(v, 21);
    job_wait(&j, 0, 0);

    /* Past its deadline, a call fails at once even though a receiver (a
     * plain thread) waits: that receiver gets the next element, not this. */
    j = job(J_RECV, c0, 0);
    thread_job(&j);
    job_parked(NULL, &j);
    weave_deadline_begin(&d, 0);
    v = 22;
    WT_FAILS(weave_chan_send(c0, &v), ETIMEDOUT);
    WT_FAILS(weave_chan_send_timeout(c0, &v, BOUND_MS), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    v = 23;
    ck_assert_int_eq(weave_chan_send(c0, &v), 0);
    job_wait(&j, 0, 0);
    ck_assert_uint_eq(j.val, 23);

    /* A shield lets a cancelled task still take from a plain thread... */
    j = job(J_SEND, c0, 24);
    thread_job(&j);
    ck_assert_int_eq(weave_cancel(weave_self()), 0);
    weave_shield_begin(&sh);
    ck_assert_int_eq(weave_chan_recv(c0, &v), 0);
    ck_assert_uint_eq(v, 24);
    /* ...and a scope inside it still bounds the wait. */
    t0 = wt_now_ns();
    weave_deadline_begin(&d, TIMEOUT_MS);
    WT_FAILS(weave_chan_recv(c0, &v), ETIMEDOUT);
    ck_assert_int_eq(weave_deadline_end(&d), 1);
    ck_assert_int_ge(wt_ms_since(t0), TIMEOUT_MS);
    job_wait(&j, 0, 0); /* its naps are sleeps: inside the shield */
    weave_shield_end(&sh);
    WT_FAILS(weave_chan_recv(c0, &v), ECANCELED);
    ck_assert_int_eq(weave_chan_free(c0), 0);
    return NULL;
}

START_TEST(deadline_scopes_and_shields)
{
    WT_RUN(m_scopes, NULL);
}
END_TEST

/*
 * Deadlines racing with transfers from another thread: a task receives
 * in deadline scopes of 0 to 2 ms while a plain thread, pausing 0 to 2.5
 * ms between tries, try_sends 1, 2, 3 ... (which succeeds only on a
 * receiver that waits, or into the buffer): so scopes often expire just
 * as the thread hands an element over. Each receive must either take the
 * element (0) or leave it to the thread (ETIMEDOUT, its buffer untouched,
 * and the thread's try_send fails): what the thread counted sent is
 * exactly what the task counted received.
 */
#define SCOPE_RACES  (WT_ON_VALGRIND ? 300 : 2000)
#define SCOPE_VALUES (4 * (size_t)SCOPE_RACES + 1000) /* the thread tries fewer */

struct scope_race {
    weave_chan *c;
    atomic_int stop;
    unsigned char *sent;
};

static void *scope_race_sender(void *arg)
{
    struct scope_race *sr = arg;
    uint64_t rng = 42;

    for (uint64_t v = 1; v < SCOPE_VALUES && !atomic_load(&sr->stop); v++) {
        struct timespec ts = {0, (long)(xorshift(&rng) % 2500) * 1000};

        nanosleep(&ts, NULL);
        if (weave_chan_try_send(sr->c, &v) == 0)
            sr->sent[v] = 1;
        else
            REQUIRE(errno == EAGAIN || errno == EPIPE);
    }
    return NULL;
}

static void *m_scope_race(void *arg)
{
    struct scope_race sr;
    unsigned char *got_v;
    uint64_t v, n_got = 0, rng = 99;
    pthread_t th;

    memset(&sr, 0, sizeof(sr));
    sr.c = new_shared(sizeof(uint64_t), (size_t)wt_int(arg));
    sr.sent = calloc(SCOPE_VALUES, 1);
    got_v = calloc(SCOPE_VALUES, 1);
    ck_assert_ptr_nonnull(sr.sent);
    ck_assert_ptr_nonnull(got_v);
    ck_assert_int_eq(pthread_create(&th, NULL, scope_race_sender, &sr), 0);
    for (int i = 0; i < SCOPE_RACES; i++) {
        weave_deadline d;
        int r;

        weave_deadline_begin(&d, (int64_t)(xorshift(&rng) % 3));
        v = SENTINEL;
        r = weave_chan_recv(sr.c, &v);
        (void)weave_deadline_end(&d);
        if (r == 0) {
            REQUIRE(v != SENTINEL && got_v[v] == 0);
            got_v[v] = 1;
            n_got++;
        } else {
            REQUIRE(errno == ETIMEDOUT && v == SENTINEL);
        }
    }
    atomic_store(&sr.stop, 1);
    ck_assert_int_eq(weave_chan_close(sr.c), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    /* Drain what the buffer holds. */
    while (weave_chan_recv(sr.c, &v) == 0) {
        REQUIRE(got_v[v] == 0);
        got_v[v] = 1;
    }
    for (size_t i = 0; i < SCOPE_VALUES; i++)
        if (sr.sent[i] != got_v[i])
            ck_abort_msg("value %zu: sent %d, received %d", i, sr.sent[i], got_v[i]);
    ck_assert_uint_gt(n_got, 0);
    ck_assert_int_eq(weave_chan_free(sr.c), 0);
    free(sr.sent);
    free(got_v);
    return NULL;
}

START_TEST(deadlines_race_transfers)
{
    WT_RUN(m_scope_race, wt_ptr(_i == 0 ? 0 : 2));
}
END_TEST

/* ==== select ====================================================================== */

/* A select, by a task or a plain thread, and how it ended. */
struct sel {
    weave_select_case k[5];
    size_t n;
    int64_t timeout;
    int ret, err;
    int64_t took_ms;
    atomic_int tid;
    atomic_int done;
    pthread_t th;
};

static weave_select_case recv_case(weave_chan *c, uint64_t *elem)
{
    weave_select_case k;

    memset(&k, 0, sizeof(k));
    k.op = WEAVE_CASE_RECV;
    k.chan = c;
    k.elem = elem;
    return k;
}

static weave_select_case send_case(weave_chan *c, uint64_t *elem)
{
    weave_select_case k = recv_case(c, elem);

    k.op = WEAVE_CASE_SEND;
    return k;
}

static void *sel_fn(void *arg)
{
    struct sel *s = arg;
    int64_t t0 = wt_now_ns();

    atomic_store(&s->tid, gettid());
    errno = 0;
    s->ret = weave_select(s->k, s->n, s->timeout);
    s->err = errno;
    s->took_ms = wt_ms_since(t0);
    atomic_store(&s->done, 1);
    return NULL;
}

/* Select on a plain thread of its own; sel_join waits for it. */
static void sel_thread(struct sel *s)
{
    atomic_store(&s->done, 0);
    atomic_store(&s->tid, 0);
    ck_assert_int_eq(pthread_create(&s->th, NULL, sel_fn, s), 0);
}

static void sel_join(struct sel *s)
{
    ck_assert_int_eq(pthread_join(s->th, NULL), 0);
}

/* Spawn a task that selects; wait until it is parked in the select. */
static weave_task *sel_task_parked(struct sel *s)
{
    weave_task *t;

    atomic_store(&s->done, 0);
    t = WT_SPAWN(sel_fn, s);
    await_parked(t, WEAVE_WAIT_SELECT);
    return t;
}

static void *send_from_thread(void *arg)
{
    struct job *j = arg;

    REQUIRE(weave_chan_send(j->c, &j->val) == 0);
    return NULL;
}

static void *wait_for_word(void *arg)
{
    uint64_t v;

    ck_assert_int_eq(weave_chan_recv(arg, &v), 0);
    return wt_ptr(7);
}

/* Neither shared channel keeps a waiter of a select that has returned: a
 * plain thread finds no receiver on s1 and no sender on s2. */
static void *no_select_left(void *arg)
{
    weave_chan **c = arg;
    uint64_t v = 1;

    WT_FAILS(weave_chan_try_send(c[0], &v), EAGAIN);
    WT_FAILS(weave_chan_try_recv(c[1], &v), EAGAIN);
    return NULL;
}

static void check_no_select_left(weave_chan *s1, weave_chan *s2)
{
    weave_chan *c[2] = {s1, s2};
    pthread_t th;

    ck_assert_int_eq(pthread_create(&th, NULL, no_select_left, c), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
}

/*
 * One select of a task over a shared receive (s1), a local receive, an fd,
 * a task's end and a shared send (s2), parked each time, woken in turn by:
 * a plain thread's send on s1, a local send, a byte in the pipe, the
 * task's end, a task of another scheduler receiving from s2, and s1's
 * close by a plain thread. Each wake completes its case alone.
 */
static void *m_select_mix(void *arg)
{
    weave_chan *s1 = new_shared(sizeof(uint64_t), 0), *s2 = new_shared(sizeof(uint64_t), 0);
    weave_chan *local = weave_chan_new(sizeof(uint64_t), 0);
    weave_chan *kctl = weave_chan_new(sizeof(uint64_t), 1);
    uint64_t in0 = SENTINEL, in1 = SENTINEL, out = 43, v = 42;
    struct sel s;
    struct job j;
    struct remote b;
    weave_task *t, *k;
    pthread_t th;
    char byte;
    int p[2];

    (void)arg;
    ck_assert_ptr_nonnull(local);
    ck_assert_ptr_nonnull(kctl);
    wt_make_pipe(p, O_NONBLOCK);
    k = WT_SPAWN(wait_for_word, kctl);
    memset(&s, 0, sizeof(s));
    s.k[0] = recv_case(s1, &in0);
    s.k[1] = recv_case(local, &in1);
    s.k[2].op = WEAVE_CASE_FD;
    s.k[2].fd = p[0];
    s.k[2].events = WEAVE_IN;
    s.k[3].op = WEAVE_CASE_TASK;
    s.k[3].task = k;
    s.k[4] = send_case(s2, &out);
    s.n = 5;
    s.timeout = -1;

    /* A plain thread's send on s1. */
    t = sel_task_parked(&s);
    j = job(J_SEND, s1, 41);
    ck_assert_int_eq(pthread_create(&th, NULL, send_from_thread, &j), 0);
    WT_JOIN(t);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(s.ret, 0);
    ck_assert_int_eq(s.k[0].err, 0);
    ck_assert_uint_eq(in0, 41);
    ck_assert_uint_eq(in1, SENTINEL);
    check_no_select_left(s1, s2);

    /* A local send. */
    t = sel_task_parked(&s);
    ck_assert_int_eq(weave_chan_send(local, &v), 0);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 1);
    ck_assert_uint_eq(in1, 42);
    check_no_select_left(s1, s2);

    /* The fd. */
    t = sel_task_parked(&s);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 2);
    ck_assert_int_eq(s.k[2].events & WEAVE_IN, WEAVE_IN);
    ck_assert_int_eq(read(p[0], &byte, 1), 1);
    check_no_select_left(s1, s2);

    /* The task's end; it stays joinable. */
    t = sel_task_parked(&s);
    ck_assert_int_eq(weave_chan_send(kctl, &v), 0);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 3);
    ck_assert_int_eq((int)wt_int(WT_JOIN(k)), 7);
    check_no_select_left(s1, s2);

    /* The shared send, taken by a task of another scheduler; the task case
     * goes (its task is joined). */
    s.k[3] = s.k[4];
    s.n = 4;
    remote_start(&b);
    t = sel_task_parked(&s);
    j = job(J_RECV, s2, 0);
    post_job(&b, &j);
    job_wait(&j, 0, 0);
    ck_assert_uint_eq(j.val, 43);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 3);
    ck_assert_int_eq(s.k[3].err, 0);
    remote_stop(&b);
    check_no_select_left(s1, s2);

    /* s1 closed by a plain thread: EPIPE in its case. */
    t = sel_task_parked(&s);
    ck_assert_int_eq(pthread_create(&th, NULL, close_from_thread, s1), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    WT_JOIN(t);
    ck_assert_int_eq(s.ret, 0);
    ck_assert_int_eq(s.k[0].err, EPIPE);

    ck_assert_int_eq(weave_chan_free(s1), 0);
    ck_assert_int_eq(weave_chan_free(s2), 0);
    ck_assert_int_eq(weave_chan_free(local), 0);
    ck_assert_int_eq(weave_chan_free(kctl), 0);
    close(p[0]);
    close(p[1]);
    return NULL;
}

START_TEST(select_mixes_shared_local_fd_task)
{
    WT_RUN(m_select_mix, NULL);
}
END_TEST

/* What a thread with no scheduler may not name in a select. */
struct not_here {
    weave_chan *shared, *local;
    weave_task *task;
    int fd;
};

static void *select_eperm(void *arg)
{
    struct not_here *nh = arg;
    uint64_t v = 1;
    weave_select_case k[2];

    k[0] = recv_case(nh->shared, &v);
    k[1] = recv_case(nh->local, &v);
    WT_FAILS(weave_select(k, 2, 0), EPERM);
    k[1] = send_case(nh->local, &v);
    WT_FAILS(weave_select(k, 2, 0), EPERM);
    memset(&k[1], 0, sizeof(k[1]));
    k[1].op = WEAVE_CASE_FD;
    k[1].fd = nh->fd;
    k[1].events = WEAVE_IN;
    WT_FAILS(weave_select(k, 2, 0), EPERM);
    memset(&k[1], 0, sizeof(k[1]));
    k[1].op = WEAVE_CASE_TASK;
    k[1].task = nh->task;
    WT_FAILS(weave_select(k, 2, 0), EPERM);
    WT_FAILS(weave_select(NULL, 0, 0), EPERM); /* a sleep: a task's */
    return NULL;
}

/*
 * select from a thread with no scheduler, over shared channels: it blocks
 * the thread in the kernel (it uses no CPU while it waits), is completed
 * by tasks of another scheduler either way (a receive there takes its
 * send, a send there fills its receive), times out no earlier than asked,
 * sees a closed channel (EPIPE); naming a local channel, an fd or a task is
 * EPERM.
 */
static void *m_select_thread(void *arg)
{
    weave_chan *s1 = new_shared(sizeof(uint64_t), 0), *s2 = new_shared(sizeof(uint64_t), 0);
    weave_chan *local = weave_chan_new(sizeof(uint64_t), 1);
    uint64_t in = SENTINEL, out = 7, v = 99;
    struct not_here nh;
    struct remote b;
    struct sel s;
    struct job j;
    int64_t cpu0, wall0;
    pthread_t th;
    int p[2];

    (void)arg;
    remote_start(&b);
    memset(&s, 0, sizeof(s));
    s.k[0] = recv_case(s1, &in);
    s.k[1] = send_case(s2, &out);
    s.n = 2;
    s.timeout = -1;

    /* Parked in the kernel: a fifth of a second costs it far less CPU. */
    sel_thread(&s);
    while (!atomic_load(&s.tid))
        nap();
    await_thread_parked(s.th, atomic_load(&s.tid));
    cpu0 = thread_cpu_ns(s.th);
    wall0 = wt_now_ns();
    while (wt_ms_since(wall0) < 200)
        nap();
    ck_assert_int_eq(atomic_load(&s.done), 0);
    ck_assert_int_lt((thread_cpu_ns(s.th) - cpu0) / 1000000, 100);
    /* A task of B receives from s2: the thread's send case. */
    j = job(J_RECV, s2, 0);
    post_job(&b, &j);
    job_wait(&j, 0, 0);
    ck_assert_uint_eq(j.val, 7);
    sel_join(&s);
    ck_assert_int_eq(s.ret, 1);
    ck_assert_int_eq(s.k[1].err, 0);
    ck_assert_uint_eq(in, SENTINEL);

    /* A task of B sends on s1: the thread's receive case. */
    sel_thread(&s);
    j = job(J_SEND, s1, 8);
    post_job(&b, &j);
    job_wait(&j, 0, 0);
    sel_join(&s);
    ck_assert_int_eq(s.ret, 0);
    ck_assert_uint_eq(in, 8);
    check_no_select_left(s1, s2);

    /* Timeouts. */
    s.timeout = TIMEOUT_MS;
    sel_thread(&s);
    sel_join(&s);
    ck_assert_int_eq(s.ret, -1);
    ck_assert_int_eq(s.err, ETIMEDOUT);
    ck_assert_int_ge(s.took_ms, TIMEOUT_MS);
    s.timeout = 0;
    sel_thread(&s);
    sel_join(&s);
    ck_assert_int_eq(s.ret, -1);
    ck_assert_int_eq(s.err, ETIMEDOUT);
    check_no_select_left(s1, s2);

    /* Local channels, fds, tasks: EPERM, and the local channel untouched. */
    ck_assert_int_eq(weave_chan_send(local, &v), 0);
    wt_make_pipe(p, O_NONBLOCK);
    nh.shared = s1;
    nh.local = local;
    nh.task = weave_self();
    nh.fd = p[0];
    ck_assert_int_eq(pthread_create(&th, NULL, select_eperm, &nh), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    v = 0;
    ck_assert_int_eq(weave_chan_recv(local, &v), 0);
    ck_assert_uint_eq(v, 99);

    /* Closed s1: its case completes at once with EPIPE. */
    ck_assert_int_eq(weave_chan_close(s1), 0);
    s.timeout = -1;
    sel_thread(&s);
    sel_join(&s);
    ck_assert_int_eq(s.ret, 0);
    ck_assert_int_eq(s.k[0].err, EPIPE);

    remote_stop(&b);
    close(p[0]);
    close(p[1]);
    ck_assert_int_eq(weave_chan_free(s1), 0);
    ck_assert_int_eq(weave_chan_free(s2), 0);
    ck_assert_int_eq(weave_chan_free(local), 0);
    return NULL;
}

START_TEST(select_from_plain_thread)
{
    WT_RUN(m_select_thread, NULL);
}
END_TEST

/*
 * Fairness: between two cases that are always ready, select picks at
 * random, so both are chosen often: two shared receives, from a task and
 * from a plain thread, and a shared receive against a local one. Of
 * FAIR_N picks, each case gets well over a quarter (a fair coin gives
 * half, give or take a few percent).
 */
#define FAIR_N (WT_ON_VALGRIND ? 400 : 4000)

/* Select FAIR_N times over two receives whose channels are kept full;
 * count the picks. */
static void fair_picks(weave_chan *a, weave_chan *b, int picks[2])
{
    uint64_t in = 0, one = 1;
    weave_select_case k[2] = {recv_case(a, &in), recv_case(b, &in)};

    picks[0] = picks[1] = 0;
    REQUIRE(weave_chan_try_send(a, &one) == 0);
    REQUIRE(weave_chan_try_send(b, &one) == 0);
    for (int i = 0; i < FAIR_N; i++) {
        int r = weave_select(k, 2, 0);

        REQUIRE(r == 0 || r == 1);
        REQUIRE(k[r].err == 0);
        picks[r]++;
        REQUIRE(weave_chan_try_send(r == 0 ? a : b, &one) == 0);
    }
    REQUIRE(weave_chan_try_recv(a, &in) == 0);
    REQUIRE(weave_chan_try_recv(b, &in) == 0);
}

struct fair {
    weave_chan *a, *b;
    int picks[2];
};

static void *fair_on_thread(void *arg)
{
    struct fair *f = arg;

    fair_picks(f->a, f->b, f->picks);
    return NULL;
}

static void *m_select_fair(void *arg)
{
    const int quarter = FAIR_N / 4;
    struct fair f = {new_shared(sizeof(uint64_t), 1), new_shared(sizeof(uint64_t), 1), {0, 0}};
    weave_chan *local = weave_chan_new(sizeof(uint64_t), 1);
    pthread_t th;
    int picks[2];

    (void)arg;
    fair_picks(f.a, f.b, picks);
    ck_assert_int_gt(picks[0], quarter);
    ck_assert_int_gt(picks[1], quarter);
    fair_picks(f.a, local, picks);
    ck_assert_int_gt(picks[0], quarter);
    ck_assert_int_gt(picks[1], quarter);
    ck_assert_int_eq(pthread_create(&th, NULL, fair_on_thread, &f), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_gt(f.picks[0], quarter);
    ck_assert_int_gt(f.picks[1], quarter);
    ck_assert_int_eq(weave_chan_free(f.a), 0);
    ck_assert_int_eq(weave_chan_free(f.b), 0);
    ck_assert_int_eq(weave_chan_free(local), 0);
    return NULL;
}

START_TEST(select_fair_between_ready_cases)
{
    WT_RUN(m_select_fair, NULL);
}
END_TEST

/* ==== a million messages ============================================================ */

/*
 * Senders: BIG_TSENDERS tasks on each of BIG_SCHEDS schedulers (each on a
 * thread of its own, with weave_run) and BIG_PSENDERS plain threads; sender
 * s sends its messages (s << 32 | seq) on channel s % 2 (a rendezvous and
 * a buffered one), each one of four ways. Receivers: BIG_SLOTS slots on
 * each scheduler, each slot run by one receiver task at a time, which
 * receives with recv (from one channel), select (both) or a timed recv
 * (both in turn); and a plain thread that selects over both. A chaos task
 * on each scheduler cancels random receivers; a cancelled receiver ends
 * and its scheduler's main starts another for the slot, which goes on
 * with the slot's record of what it saw. Before any message is sent,
 * each chaos task has cancelled one receiver.
 *
 * Exactly once: each message is marked in a ledger as it arrives (a
 * second mark fails), and at the end every mark is there. Order: the
 * receives of one slot happen one after another, so each sender's
 * messages must arrive at a slot in increasing order (not without gaps:
 * other slots take some).
 */
#define BIG_SCHEDS      3
#define BIG_TSENDERS    2
#define BIG_PSENDERS    2
#define BIG_SENDERS     (BIG_SCHEDS * BIG_TSENDERS + BIG_PSENDERS)
#define BIG_SLOTS       4
#define BIG_TOTAL       (WT_ON_VALGRIND ? 100000 : WT_TSAN ? 100000 : 1000000)
#define BIG_MAX_CANCELS (WT_TSAN ? 500 : 1000000) /* by each scheduler */

struct big_sched;

struct big_slot {
    int index, mode;            /* mode: 0, 1 recv on that channel; 2 select; 3 timed */
    uint32_t next[BIG_SENDERS]; /* per sender: the lowest seq it may see next */
    weave_task *task;           /* its receiver, NULL between two */
    int end_err;                /* how the last one ended: ECANCELED or EPIPE */
    struct big_sched *home;
};

struct big_sched {
    int index;
    weave_chan *ended; /* local: indexes of slots whose receiver ended */
    struct big_slot slot[BIG_SLOTS];
    uint64_t rng;
    long received, cancels, restarts;
};

static struct {
    weave_chan *ch[2];
    uint32_t per;        /* messages per sender */
    unsigned char *seen; /* [sender * per + seq]: atomic bytes */
    atomic_int senders_left, chaos_ready, closed;
    struct big_sched sched[BIG_SCHEDS];
    uint32_t thread_next[BIG_SENDERS]; /* the plain receiver's */
    long thread_received;
} big;

static void big_got(uint32_t *next, uint64_t v)
{
    uint32_t s = (uint32_t)(v >> 32), q = (uint32_t)v;

    REQUIRE(s < BIG_SENDERS && q < big.per);
    if (q < next[s])
        ck_abort_msg("sender %u's message %u came after its message %u", s, q, next[s] - 1);
    next[s] = q + 1;
    if (__atomic_fetch_add(&big.seen[(size_t)s * big.per + q], 1, __ATOMIC_RELAXED) != 0)
        ck_abort_msg("sender %u's message %u came twice", s, q);
}

static void big_send(weave_chan *c, uint64_t v, unsigned k)
{
    weave_select_case sc;

    switch (k % 8) {
    case 5:
        while (weave_chan_send_timeout(c, &v, 5) != 0)
            REQUIRE(errno == ETIMEDOUT); /* and it was not delivered */
        break;
    case 6:
        sc = send_case(c, &v);
        REQUIRE(weave_select(&sc, 1, -1) == 0 && sc.err == 0);
        break;
    case 7:
        if (weave_chan_try_send(c, &v) != 0) {
            REQUIRE(errno == EAGAIN);
            REQUIRE(weave_chan_send(c, &v) == 0);
        }
        break;
    default:
        REQUIRE(weave_chan_send(c, &v) == 0);
        break;
    }
}

static void *big_sender(void *arg)
{
    uint32_t s = (uint32_t)wt_int(arg);
    weave_chan *c = big.ch[s % 2];

    await_flag(&big.chaos_ready, BIG_SCHEDS, "every chaos task's first cancel");
    for (uint32_t q = 0; q < big.per; q++)
        big_send(c, (uint64_t)s << 32 | q, q * 7 + s);
    if (atomic_fetch_sub(&big.senders_left, 1) == 1) {
        atomic_store(&big.closed, 1);
        ck_assert_int_eq(weave_chan_close(big.ch[0]), 0);
        ck_assert_int_eq(weave_chan_close(big.ch[1]), 0);
    }
    return NULL;
}

/* One receive by a slot's receiver from the open channels: 0 and *v, or
 * -1 with errno; *which says which channel closed (EPIPE). */
static int big_recv_one(struct big_slot *sl, const bool open[2], unsigned *turn, uint64_t *v,
                        int *which)
{
    weave_select_case k[2];
    int r;

    if (sl->mode == 2 && open[0] && open[1]) {
        k[0] = recv_case(big.ch[0], v);
        k[1] = recv_case(big.ch[1], v);
        if ((r = weave_select(k, 2, -1)) < 0)
            return -1;
        *which = r;
        errno = k[r].err;
        return k[r].err ? -1 : 0;
    }
    *which = open[0] && open[1] ? (int)((*turn)++ & 1) : open[0] ? 0 : 1;
    if (sl->mode == 3)
        return weave_chan_recv_timeout(big.ch[*which], v, 2);
    return weave_chan_recv(big.ch[*which], v);
}

static void *big_receiver(void *arg)
{
    struct big_slot *sl = arg;
    bool open[2] = {sl->mode != 1, sl->mode != 0};
    unsigned turn = 0;
    int err = EPIPE;

    while (open[0] || open[1]) {
        uint64_t v = SENTINEL;
        int which = 0;

        if (big_recv_one(sl, open, &turn, &v, &which) == 0) {
            big_got(sl->next, v);
            sl->home->received++;
            continue;
        }
        REQUIRE(v == SENTINEL);
        if (errno == EPIPE) {
            open[which] = false;
        } else if (errno != ETIMEDOUT || sl->mode != 3) {
            err = errno;
            REQUIRE(err == ECANCELED);
            break;
        }
    }
    sl->end_err = err;
    /* Not a cancellation point: a cancelled receiver reports too. */
    REQUIRE(weave_chan_try_send(sl->home->ended, &sl->index) == 0);
    return NULL;
}

static void *big_chaos(void *arg)
{
    struct big_sched *bs = arg;
    bool first = true;

    while (!atomic_load(&big.closed)) {
        struct big_slot *sl = &bs->slot[xorshift(&bs->rng) % BIG_SLOTS];

        if (!first)
            REQUIRE(weave_sleep_us((int64_t)(xorshift(&bs->rng) % 500)) == 0);
        if (!sl->task || bs->cancels >= BIG_MAX_CANCELS)
            continue;
        REQUIRE(weave_cancel(sl->task) == 0);
        bs->cancels++;
        if (first)
            atomic_fetch_add(&big.chaos_ready, 1);
        first = false;
    }
    return NULL;
}

static void *big_sched_main(void *arg)
{
    struct big_sched *bs = arg;
    weave_task *senders[BIG_TSENDERS], *chaos;
    int done = 0, idx;

    ck_assert_ptr_nonnull(bs->ended = weave_chan_new(sizeof(int), BIG_SLOTS));
    for (int i = 0; i < BIG_SLOTS; i++) {
        struct big_slot *sl = &bs->slot[i];

        sl->index = i;
        sl->mode = i % 4;
        sl->home = bs;
        sl->task = WT_SPAWN(big_receiver, sl);
    }
    chaos = WT_SPAWN(big_chaos, bs);
    for (int i = 0; i < BIG_TSENDERS; i++)
        senders[i] = WT_SPAWN(big_sender, wt_ptr(bs->index * BIG_TSENDERS + i));
    /* Restart cancelled receivers until every slot saw both channels end. */
    while (done < BIG_SLOTS) {
        struct big_slot *sl;

        REQUIRE(weave_chan_recv(bs->ended, &idx) == 0);
        sl = &bs->slot[idx];
        REQUIRE(weave_join(sl->task, NULL) == 0);
        sl->task = NULL;
        if (sl->end_err == EPIPE) {
            done++;
            continue;
        }
        bs->restarts++;
        sl->task = weave_spawn(big_receiver, sl);
        REQUIRE(sl->task != NULL);
    }
    for (int i = 0; i < BIG_TSENDERS; i++)
        WT_JOIN(senders[i]);
    WT_JOIN(chaos);
    ck_assert_int_eq(weave_chan_free(bs->ended), 0);
    WT_ASSERT_IDLE();
    return NULL;
}

static void *big_sched_thread(void *arg)
{
    errno = 0;
    ck_assert_msg(weave_run(big_sched_main, arg, NULL) == 0, "weave_run: errno %d", errno);
    return NULL;
}

static void *big_thread_sender(void *arg)
{
    return big_sender(arg);
}

static void *big_thread_receiver(void *arg)
{
    bool open[2] = {true, true};
    uint64_t v;

    (void)arg;
    while (open[0] || open[1]) {
        weave_select_case k[2];
        int n = 0, r;

        if (open[0])
            k[n++] = recv_case(big.ch[0], &v);
        if (open[1])
            k[n++] = recv_case(big.ch[1], &v);
        v = SENTINEL;
        r = weave_select(k, (size_t)n, -1);
        REQUIRE(r >= 0);
        if (k[r].err) {
            REQUIRE(k[r].err == EPIPE && v == SENTINEL);
            open[k[r].chan == big.ch[0] ? 0 : 1] = false;
            continue;
        }
        big_got(big.thread_next, v);
        big.thread_received++;
    }
    return NULL;
}

START_TEST(million_messages)
{
    pthread_t sched_th[BIG_SCHEDS], send_th[BIG_PSENDERS], recv_th;
    int64_t t0 = wt_now_ns();
    long received, cancels = 0, restarts = 0;
    size_t total;

    memset(&big, 0, sizeof(big));
    big.per = (uint32_t)(BIG_TOTAL / BIG_SENDERS);
    total = (size_t)big.per * BIG_SENDERS;
    ck_assert_ptr_nonnull(big.seen = calloc(total, 1));
    big.ch[0] = new_shared(sizeof(uint64_t), 0);
    big.ch[1] = new_shared(sizeof(uint64_t), 32);
    atomic_init(&big.senders_left, BIG_SENDERS);
    for (int i = 0; i < BIG_SCHEDS; i++) {
        big.sched[i].index = i;
        big.sched[i].rng = 0x5eed0000u + (uint64_t)i;
    }
    for (int i = 0; i < BIG_SCHEDS; i++)
        ck_assert_int_eq(pthread_create(&sched_th[i], NULL, big_sched_thread, &big.sched[i]), 0);
    for (int i = 0; i < BIG_PSENDERS; i++)
        ck_assert_int_eq(pthread_create(&send_th[i], NULL, big_thread_sender,
                                        wt_ptr(BIG_SCHEDS * BIG_TSENDERS + i)),
                         0);
    ck_assert_int_eq(pthread_create(&recv_th, NULL, big_thread_receiver, NULL), 0);
    for (int i = 0; i < BIG_SCHEDS; i++)
        ck_assert_int_eq(pthread_join(sched_th[i], NULL), 0);
    for (int i = 0; i < BIG_PSENDERS; i++)
        ck_assert_int_eq(pthread_join(send_th[i], NULL), 0);
    ck_assert_int_eq(pthread_join(recv_th, NULL), 0);

    received = big.thread_received;
    for (int i = 0; i < BIG_SCHEDS; i++) {
        received += big.sched[i].received;
        cancels += big.sched[i].cancels;
        restarts += big.sched[i].restarts;
    }
    for (size_t i = 0; i < total; i++)
        if (big.seen[i] != 1)
            ck_abort_msg("sender %zu's message %zu came %d times", i / big.per, i % big.per,
                         big.seen[i]);
    ck_assert_int_eq(received, (long)total);
    /* The chaos struck: each one's first cancel, before any message, ended
     * a receiver that was then restarted. */
    ck_assert_int_ge(restarts, BIG_SCHEDS);
    fprintf(stderr,
            "million: %zu messages in %.2f s; %ld cancels, %ld receivers restarted, %ld "
            "received by the plain thread\n",
            total, (double)(wt_now_ns() - t0) / 1e9, cancels, restarts, big.thread_received);
    ck_assert_int_eq(weave_chan_free(big.ch[0]), 0);
    ck_assert_int_eq(weave_chan_free(big.ch[1]), 0);
    free(big.seen);
}
END_TEST

/* ==== misuse: local objects used from another thread ================================ */

/* The call must fail with EPERM (a hot-loop assert, as REQUIRE). */
#define REFUSED(call)                                                                              \
    do {                                                                                           \
        errno = 0;                                                                                 \
        if ((call) != -1 || errno != EPERM)                                                        \
            ck_abort_msg("line %d: %s: not EPERM (errno %d)", __LINE__, #call, errno);             \
    } while (0)

#define REFUSED_NULL(call)                                                                         \
    do {                                                                                           \
        errno = 0;                                                                                 \
        if ((call) != NULL || errno != EPERM)                                                      \
            ck_abort_msg("line %d: %s: not EPERM (errno %d)", __LINE__, #call, errno);             \
    } while (0)

/*
 * A local mutex and two local channels (one made outside any scheduler,
 * claimed by its first use; one made by a task) belong to scheduler A,
 * whose tasks used them first. For MU_ROUNDS rounds:
 *
 *   1. A's main holds the mutex and has put one element in each channel;
 *      B's task (and, every tenth round, a plain thread) tries every call
 *      on them: lock, trylock, timed lock, unlock, send, receive, try and
 *      timed variants, close, select. Each is EPERM; then A still holds the
 *      mutex (its unlock succeeds), and each channel holds its one element.
 *   2. A's workers take the mutex in turn and increment a counter under
 *      it, yielding in between, while B keeps trying the same calls (the
 *      mutex free or held, the channels empty or not); B's calls change
 *      nothing and no increment is lost.
 */
#define MU_ROUNDS  300
#define MU_WORKERS 3
#define MU_INCS    4
#define MU_HAMMER  10 /* passes of B's calls in phase 2 of a round */

static struct {
    weave_mutex m;
    weave_chan *lc, *lc2;
    long count;         /* incremented under m by A's workers */
    atomic_int a_state; /* round r: 2r + 1 phase 1, 2r + 2 phase 2 */
    atomic_int b_ack;   /* the same numbers, once B has done its part */
    atomic_int claimed; /* A has used them all */
} mu = {.m = WEAVE_MUTEX_INIT};

/* Every call on the mutex and the channels, from a thread that does not
 * own them. */
static void mu_refused(void)
{
    weave_chan *cs[2] = {mu.lc, mu.lc2};
    uint64_t v = 5;

    REFUSED(weave_mutex_lock(&mu.m));
    REFUSED(weave_mutex_trylock(&mu.m));
    REFUSED(weave_mutex_lock_timeout(&mu.m, 0));
    REFUSED(weave_mutex_lock_timeout(&mu.m, 1));
    REFUSED(weave_mutex_unlock(&mu.m));
    for (int i = 0; i < 2; i++) {
        weave_select_case k[2] = {recv_case(cs[i], &v), send_case(cs[i], &v)};

        REFUSED(weave_chan_send(cs[i], &v));
        REFUSED(weave_chan_recv(cs[i], &v));
        REFUSED(weave_chan_try_send(cs[i], &v));
        REFUSED(weave_chan_try_recv(cs[i], &v));
        REFUSED(weave_chan_send_timeout(cs[i], &v, 0));
        REFUSED(weave_chan_recv_timeout(cs[i], &v, 1));
        REFUSED(weave_chan_close(cs[i]));
        REFUSED(weave_select(k, 1, 0));
        REFUSED(weave_select(&k[1], 1, -1));
        REFUSED(weave_select(k, 2, 1));
    }
    REQUIRE(v == 5); /* nothing was received into it */
}

static void *mu_refused_thread(void *arg)
{
    (void)arg;
    mu_refused();
    return NULL;
}

static void *mu_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < MU_INCS; i++) {
        long c;

        REQUIRE(weave_mutex_lock(&mu.m) == 0);
        c = mu.count;
        REQUIRE(weave_yield() == 0); /* the others try meanwhile */
        mu.count = c + 1;
        REQUIRE(weave_mutex_unlock(&mu.m) == 0);
        REQUIRE(weave_yield() == 0);
    }
    return NULL;
}

static void *mu_a_main(void *arg)
{
    uint64_t v = 0;

    (void)arg;
    /* First uses: A's from now on. */
    ck_assert_int_eq(weave_mutex_lock(&mu.m), 0);
    ck_assert_int_eq(weave_mutex_unlock(&mu.m), 0);
    ck_assert_int_eq(weave_chan_try_send(mu.lc, &v), 0);
    ck_assert_int_eq(weave_chan_try_recv(mu.lc, &v), 0);
    ck_assert_ptr_nonnull(mu.lc2 = weave_chan_new(sizeof(uint64_t), 4));
    atomic_store(&mu.claimed, 1);

    for (int r = 0; r < MU_ROUNDS; r++) {
        weave_task *w[MU_WORKERS];
        uint64_t e = (uint64_t)r;

        REQUIRE(weave_mutex_lock(&mu.m) == 0);
        REQUIRE(weave_chan_send(mu.lc, &e) == 0);
        REQUIRE(weave_chan_send(mu.lc2, &e) == 0);
        atomic_store(&mu.a_state, 2 * r + 1);
        await_flag(&mu.b_ack, 2 * r + 1, "B to try its calls");
        /* Still ours, as it was. */
        REQUIRE(weave_mutex_unlock(&mu.m) == 0);
        REQUIRE(weave_chan_len(mu.lc) == 1 && weave_chan_len(mu.lc2) == 1);
        REQUIRE(weave_chan_recv(mu.lc, &v) == 0 && v == e);
        REQUIRE(weave_chan_recv(mu.lc2, &v) == 0 && v == e);
        REQUIRE(weave_chan_try_recv(mu.lc, &v) == -1 && errno == EAGAIN);
        REQUIRE(weave_chan_try_recv(mu.lc2, &v) == -1 && errno == EAGAIN);

        atomic_store(&mu.a_state, 2 * r + 2);
        for (int i = 0; i < MU_WORKERS; i++)
            REQUIRE((w[i] = weave_spawn(mu_worker, NULL)) != NULL);
        for (int i = 0; i < MU_WORKERS; i++)
            REQUIRE(weave_join(w[i], NULL) == 0);
        /* The channels went back and forth too. */
        REQUIRE(weave_chan_try_send(mu.lc2, &e) == 0);
        REQUIRE(weave_chan_try_recv(mu.lc2, &v) == 0 && v == e);
        await_flag(&mu.b_ack, 2 * r + 2, "B to try its calls");
    }
    ck_assert_int_eq(mu.count, (long)MU_ROUNDS * MU_WORKERS * MU_INCS);
    ck_assert_int_eq(weave_mutex_trylock(&mu.m), 0); /* free, and still ours */
    ck_assert_int_eq(weave_mutex_unlock(&mu.m), 0);
    ck_assert_int_eq(weave_chan_close(mu.lc2), 0);
    ck_assert_int_eq(weave_chan_free(mu.lc2), 0);
    return NULL;
}

static void *mu_b_main(void *arg)
{
    (void)arg;
    await_flag(&mu.claimed, 1, "A to use its objects");
    for (int r = 0; r < MU_ROUNDS; r++) {
        await_flag(&mu.a_state, 2 * r + 1, "A's next phase");
        mu_refused();
        if (r % 10 == 0) { /* and from a thread with no scheduler */
            pthread_t th;

            REQUIRE(pthread_create(&th, NULL, mu_refused_thread, NULL) == 0);
            REQUIRE(pthread_join(th, NULL) == 0);
        }
        atomic_store(&mu.b_ack, 2 * r + 1);
        await_flag(&mu.a_state, 2 * r + 2, "A's next phase");
        for (int i = 0; i < MU_HAMMER; i++) {
            mu_refused();
            REQUIRE(weave_yield() == 0);
        }
        atomic_store(&mu.b_ack, 2 * r + 2);
    }
    return NULL;
}

START_TEST(local_mutex_and_channels_stay_home)
{
    pthread_t a, b;

    ck_assert_ptr_nonnull(mu.lc = weave_chan_new(sizeof(uint64_t), 4)); /* no scheduler yet */
    ck_assert_int_eq(pthread_create(&a, NULL, run_on_thread, (void *)mu_a_main), 0);
    ck_assert_int_eq(pthread_create(&b, NULL, run_on_thread, (void *)mu_b_main), 0);
    ck_assert_int_eq(pthread_join(a, NULL), 0);
    ck_assert_int_eq(pthread_join(b, NULL), 0);
    ck_assert_int_eq(weave_chan_free(mu.lc), 0);
}
END_TEST

/*
 * A local semaphore, event, condition, group and stream, used first by
 * scheduler A: from a task of B and from a plain thread every call that
 * takes, gives, waits or wakes is EPERM and changes nothing: the
 * semaphore keeps its permits, the event its state, the condition's
 * waiter (of A) stays parked, the group its members (none cancelled, none
 * added), the streams their buffered input and output.
 */
static struct {
    weave_sem sem;
    weave_event ev;
    weave_cond cond;
    weave_mutex am; /* A's, for the condition */
    weave_group *g;
    weave_stream *rs, *ws; /* A's reader and writer over one pipe */
    atomic_int a_ready, b_done;
} lo = {.sem = WEAVE_SEM_INIT(2),
        .ev = WEAVE_EVENT_INIT,
        .cond = WEAVE_COND_INIT,
        .am = WEAVE_MUTEX_INIT};

static void lo_refused(void)
{
    weave_mutex bm = WEAVE_MUTEX_INIT; /* the caller's own */
    char buf[16];
    const void *data;
    int own = weave_self() != NULL;

    REFUSED(weave_sem_acquire(&lo.sem));
    REFUSED(weave_sem_acquire_timeout(&lo.sem, 0));
    REFUSED(weave_sem_acquire_timeout(&lo.sem, 10));
    REFUSED(weave_sem_try_acquire(&lo.sem));
    REFUSED(weave_sem_release(&lo.sem));
    REFUSED(weave_event_set(&lo.ev));
    REFUSED(weave_event_clear(&lo.ev));
    REFUSED(weave_event_wait(&lo.ev));
    REFUSED(weave_event_wait_timeout(&lo.ev, 10));
    REFUSED(weave_cond_signal(&lo.cond));
    REFUSED(weave_cond_broadcast(&lo.cond));
    if (own) /* a task of B, holding a mutex of its own */
        REQUIRE(weave_mutex_lock(&bm) == 0);
    REFUSED(weave_cond_wait(&lo.cond, &bm));
    REFUSED(weave_cond_wait_timeout(&lo.cond, &bm, 10));
    REFUSED(weave_cond_wait(&lo.cond, &lo.am));
    if (own)
        REQUIRE(weave_mutex_unlock(&bm) == 0);
    REFUSED_NULL(weave_group_spawn(lo.g, wt_nothing, NULL));
    REFUSED_NULL(weave_group_spawn_detached(lo.g, wt_nothing, NULL));
    REFUSED(weave_group_fail(lo.g, EIO));
    REFUSED(weave_group_cancel(lo.g));
    REFUSED(weave_group_wait(lo.g, 0));
    REFUSED(weave_group_wait(lo.g, 10));
    REFUSED(weave_group_free(lo.g));
    REFUSED(weave_stream_read(lo.rs, buf, sizeof(buf)));
    REFUSED(weave_stream_read_exact(lo.rs, buf, 2));
    REFUSED(weave_stream_read_line(lo.rs, buf, sizeof(buf)));
    REFUSED(weave_stream_read_until(lo.rs, "\n", 1, buf, sizeof(buf)));
    REFUSED(weave_stream_peek(lo.rs, 1, &data));
    REFUSED(weave_stream_peek_until(lo.rs, "\n", 1, &data));
    REFUSED(weave_stream_skip(lo.rs, 1));
    REFUSED(weave_stream_write(lo.ws, "x", 1));
    REFUSED(weave_stream_printf(lo.ws, "%d", 1));
    REFUSED(weave_stream_flush(lo.ws));
    /* Even the calls that only look are refused while A's scheduler runs
     * (they would read what A's tasks write): EPERM, or 0 for a count. */
    REFUSED(weave_sem_value(&lo.sem));
    REFUSED(weave_event_is_set(&lo.ev));
    REQUIRE(weave_group_size(lo.g) == 0);
    REQUIRE(weave_stream_buffered(lo.rs) == 0);
}

static void *lo_refused_thread(void *arg)
{
    (void)arg;
    lo_refused();
    return NULL;
}

static void *lo_cond_waiter(void *arg)
{
    (void)arg;
    ck_assert_int_eq(weave_mutex_lock(&lo.am), 0);
    ck_assert_int_eq(weave_cond_wait(&lo.cond, &lo.am), 0); /* woken by A's signal alone */
    ck_assert_int_eq(weave_mutex_unlock(&lo.am), 0);
    return NULL;
}

static void *sleep_until_cancelled(void *arg)
{
    (void)arg;
    WT_FAILS(weave_sleep(-1), ECANCELED);
    return NULL;
}

static void *lo_a_main(void *arg)
{
    weave_task *waiter, *member;
    char line[16];
    int p[2];

    (void)arg;
    /* First uses. */
    ck_assert_int_eq(weave_sem_acquire(&lo.sem), 0);
    ck_assert_int_eq(weave_sem_release(&lo.sem), 0);
    ck_assert_int_eq(weave_event_set(&lo.ev), 0);
    ck_assert_int_eq(weave_event_clear(&lo.ev), 0);
    ck_assert_int_eq(weave_cond_signal(&lo.cond), 0);
    ck_assert_ptr_nonnull(lo.g = weave_group_new());
    ck_assert_ptr_nonnull(member = weave_group_spawn(lo.g, sleep_until_cancelled, NULL));
    wt_make_pipe(p, O_NONBLOCK);
    ck_assert_ptr_nonnull(lo.rs = weave_stream_new(p[0], NULL));
    ck_assert_ptr_nonnull(lo.ws = weave_stream_new(p[1], NULL));
    ck_assert_int_eq(weave_stream_write(lo.ws, "hello\nworld\n", 12), 12);
    ck_assert_int_eq(weave_stream_flush(lo.ws), 0);
    ck_assert_int_eq(weave_stream_read_line(lo.rs, line, sizeof(line)), 6); /* "world\n" stays */
    ck_assert_int_eq(weave_stream_write(lo.ws, "abc", 3), 3);               /* buffered */
    waiter = WT_SPAWN(lo_cond_waiter, NULL);
    await_parked(waiter, WEAVE_WAIT_COND);

    atomic_store(&lo.a_ready, 1);
    await_flag(&lo.b_done, 1, "B to try its calls");

    /* Nothing changed. */
    ck_assert_int_eq(weave_sem_value(&lo.sem), 2);
    ck_assert_int_eq(weave_event_is_set(&lo.ev), 0);
    await_parked(waiter, WEAVE_WAIT_COND); /* still */
    ck_assert_int_eq(weave_cond_signal(&lo.cond), 0);
    WT_JOIN(waiter);
    ck_assert_uint_eq(weave_group_size(lo.g), 1);
    ck_assert_int_eq(weave_cancelled(member), 0);
    ck_assert_int_eq(weave_group_cancel(lo.g), 0);
    WT_FAILS(weave_group_wait(lo.g, -1), ECANCELED);
    ck_assert_int_eq(weave_group_cancelled(lo.g, 0), 1);
    ck_assert_int_eq(weave_group_free(lo.g), 0);
    ck_assert_uint_eq(weave_stream_buffered(lo.rs), 6);
    ck_assert_int_eq(weave_stream_read_line(lo.rs, line, sizeof(line)), 6);
    ck_assert_str_eq(line, "world\n");
    ck_assert_int_eq(weave_stream_flush(lo.ws), 0); /* "abc", once */
    ck_assert_int_eq(weave_stream_read(lo.rs, line, sizeof(line)), 3);
    ck_assert_int_eq(memcmp(line, "abc", 3), 0);
    ck_assert_int_eq(weave_stream_close(lo.ws), 0);
    ck_assert_int_eq(weave_stream_read(lo.rs, line, sizeof(line)), 0); /* and nothing else */
    ck_assert_int_eq(weave_stream_close(lo.rs), 0);
    return NULL;
}

static void *lo_b_main(void *arg)
{
    pthread_t th;

    (void)arg;
    await_flag(&lo.a_ready, 1, "A to use its objects");
    lo_refused();
    ck_assert_int_eq(pthread_create(&th, NULL, lo_refused_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    atomic_store(&lo.b_done, 1);
    return NULL;
}

START_TEST(other_local_objects_stay_home)
{
    pthread_t a, b;

    ck_assert_int_eq(pthread_create(&a, NULL, run_on_thread, (void *)lo_a_main), 0);
    ck_assert_int_eq(pthread_create(&b, NULL, run_on_thread, (void *)lo_b_main), 0);
    ck_assert_int_eq(pthread_join(a, NULL), 0);
    ck_assert_int_eq(pthread_join(b, NULL), 0);
}
END_TEST

/*
 * A group whose members are left belongs to its scheduler: weave_group_free
 * from another thread is EPERM ("members are left and the caller is not a
 * task of their scheduler"; API.md: a call from another thread fails with
 * EPERM, decided without a data race, and never changes the object),
 * whatever A's own tasks are doing with the group meanwhile, here one of
 * them waiting in weave_group_wait.
 */
static struct {
    weave_group *g;
    atomic_int a_ready, b_done;
    int free_ret, free_err;
} gw;

static void *gw_waiter(void *arg)
{
    (void)arg;
    WT_FAILS(weave_group_wait(gw.g, -1), ECANCELED);
    return NULL;
}

static void *gw_a_main(void *arg)
{
    weave_task *waiter;

    (void)arg;
    ck_assert_ptr_nonnull(gw.g = weave_group_new());
    ck_assert_ptr_nonnull(weave_group_spawn(gw.g, sleep_until_cancelled, NULL));
    waiter = WT_SPAWN(gw_waiter, NULL);
    await_parked(waiter, WEAVE_WAIT_GROUP);
    atomic_store(&gw.a_ready, 1);
    await_flag(&gw.b_done, 1, "B to try its call");
    ck_assert_int_eq(weave_group_cancel(gw.g), 0);
    WT_JOIN(waiter);
    ck_assert_int_eq(weave_group_free(gw.g), 0);
    return NULL;
}

static void *gw_b_main(void *arg)
{
    (void)arg;
    await_flag(&gw.a_ready, 1, "A's waiter");
    errno = 0;
    gw.free_ret = weave_group_free(gw.g);
    gw.free_err = errno;
    atomic_store(&gw.b_done, 1);
    return NULL;
}

START_TEST(group_free_from_other_thread_eperm)
{
    pthread_t a, b;

    ck_assert_int_eq(pthread_create(&a, NULL, run_on_thread, (void *)gw_a_main), 0);
    ck_assert_int_eq(pthread_create(&b, NULL, run_on_thread, (void *)gw_b_main), 0);
    ck_assert_int_eq(pthread_join(b, NULL), 0);
    ck_assert_int_eq(pthread_join(a, NULL), 0);
    ck_assert_msg(gw.free_ret == -1 && gw.free_err == EPERM,
                  "weave_group_free from another thread, while a task of the group's own "
                  "scheduler waits in weave_group_wait: returned %d, errno %d (%s), not EPERM",
                  gw.free_ret, gw.free_err, strerror(gw.free_err));
}
END_TEST

/* ---- the suite -------------------------------------------------------------------- */

int main(void)
{
    Suite *s = suite_create("shared");
    TCase *tc = tcase_create("contract");

    wt_tag_native(tc); /* threads */
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, fifo_per_sender_across_threads, 0, 3);
    tcase_add_test(tc, try_ops_eagain);
    tcase_add_test(tc, timeouts_in_tasks);
    tcase_add_test(tc, timeouts_on_plain_thread);
    tcase_add_test(tc, close_wakes_waiters_everywhere);
    tcase_add_test(tc, close_drains_buffer_first);
    tcase_add_test(tc, free_busy_while_waited_on);
    tcase_add_test(tc, elem_size_zero);
    tcase_add_test(tc, cancelled_waiter_leaves_nothing);
    tcase_add_test(tc, cancel_races_lose_nothing);
    tcase_add_test(tc, deadline_scopes_and_shields);
    tcase_add_loop_test(tc, deadlines_race_transfers, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("select");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, select_mixes_shared_local_fd_task);
    tcase_add_test(tc, select_from_plain_thread);
    tcase_add_test(tc, select_fair_between_ready_cases);
    suite_add_tcase(s, tc);

    tc = tcase_create("million");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, million_messages);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    wt_tag_native(tc);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, local_mutex_and_channels_stay_home);
    tcase_add_test(tc, other_local_objects_stay_home);
    tcase_add_test(tc, group_free_from_other_thread_eperm);
    suite_add_tcase(s, tc);
    return wt_main(s);
}
