/*
 * many.c - a scheduler per core: weave_run_threads starts n schedulers on n
 * threads (the calling thread runs the first), each running the same main
 * with its index, and waits for every one.
 *
 * They share nothing but a stop: the first SIGINT or SIGTERM that one of
 * them takes (weave_cancel_on_signals) cancels its own main and is posted
 * to the others, each of which then stops as if it had taken it itself,
 * and cleans up in its own tasks. A process-directed signal is taken by
 * one thread only, which is why it is passed on.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/common.h"
#include "io/signal.h"
#include "run/run.h"

struct member {
    struct weave_sched *sched;
    struct group *g;
    unsigned index;
    int rc;  /* weave_sched_run's */
    int err; /* its errno */
    pthread_t thread;
    bool started;
};

struct group {
    struct member *members;
    unsigned n;
    weave_indexed_fn fn;
    void *arg;
    int stopped; /* atomic: a member took a stop signal */
};

/* A stop, passed on to another member. */
struct stop {
    struct weave__msg msg; /* first */
    int sig;
};

static void stop_taken(struct weave__sched *s, struct weave__msg *m)
{
    struct stop *st = (struct stop *)m;

    weave__signal_stopped(s, st->sig);
    free(st);
}

static void post_stop(struct weave_sched *to, int sig)
{
    struct stop *st = malloc(sizeof(*st));

    if (!st)
        return;
    st->msg.fn = stop_taken;
    st->sig = sig;
    if (weave__inbox_send(&to->core.inbox, &st->msg) < 0)
        free(st); /* that one has stopped already */
}

/* Member s took a stop signal: the first of the group tells the others;
 * one after it is a second (true), which ends the process. */
static bool pass_stop(struct weave__sched *s, int sig)
{
    struct group *g = weave__run_of(s)->group;

    if (__atomic_exchange_n(&g->stopped, 1, __ATOMIC_ACQ_REL))
        return true;
    for (unsigned i = 0; i < g->n; i++)
        if (&g->members[i].sched->core != s)
            post_stop(g->members[i].sched, sig);
    return false;
}

static void *member_main(void *p)
{
    struct member *m = p;

    return m->g->fn(m->index, m->g->arg);
}

static void *member_thread(void *p)
{
    struct member *m = p;

    m->rc = weave_sched_run(m->sched, member_main, m, NULL);
    m->err = errno;
    return NULL;
}

int weave_run_threads(unsigned n, const weave_run_opts *opts, weave_indexed_fn main_fn, void *arg)
{
    struct group g = {.fn = main_fn, .arg = arg};
    sigset_t stops, old_mask;
    int rc = 0, err = 0;
    unsigned i;

    if (!main_fn)
        return weave__ret(-EINVAL);
    if (weave__run_bound() || weave__tls)
        return weave__ret(-EBUSY);
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        n = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (n > WEAVE_THREADS_MAX)
        return weave__ret(-EINVAL);
    if (!(g.members = calloc(n, sizeof(*g.members))))
        return weave__ret(-ENOMEM);
    g.n = n;
    for (i = 0; i < n; i++) {
        struct member *m = &g.members[i];

        if (!(m->sched = weave_sched_new(opts))) {
            rc = -1;
            err = errno;
            break;
        }
        m->sched->group = &g;
        m->sched->core.reachable = false; /* only its siblings post to it: a
                                             deadlock is still one */
        m->sched->core.on_stop = pass_stop;
        m->g = &g;
        m->index = i;
    }
    /* The others on threads of their own, the first on this one. They
     * start with SIGINT and SIGTERM blocked, so that a Ctrl-C before their
     * main calls weave_cancel_on_signals cannot take a worker's default
     * action: it goes to this thread, as it would without weave. */
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, &old_mask);
    for (i = 1; rc == 0 && i < n; i++) {
        if (pthread_create(&g.members[i].thread, NULL, member_thread, &g.members[i]) != 0) {
            rc = -1;
            err = EAGAIN;
            break;
        }
        g.members[i].started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (rc == 0)
        member_thread(&g.members[0]);
    else
        for (unsigned k = 1; k < n; k++) /* stop those started */
            if (g.members[k].started)
                post_stop(g.members[k].sched, SIGTERM);
    for (i = 1; i < n; i++)
        if (g.members[i].started)
            pthread_join(g.members[i].thread, NULL);
    for (i = 0; i < n; i++) {
        struct member *m = &g.members[i];

        if (rc == 0 && m->rc != 0) {
            rc = -1;
            err = m->err;
        }
        if (m->sched)
            (void)weave_sched_free(m->sched);
    }
    free(g.members);
    if (rc != 0)
        errno = err;
    return rc;
}
