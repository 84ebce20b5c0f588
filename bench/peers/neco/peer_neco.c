/*
 * peer_neco.c - switch_bench's, chan_bench's and scale_bench's figures
 * measured with neco (tidwall/neco), the way weave's benches measure them
 * (peer.h says how). run.sh compiles neco.c from the tree given by path
 * beside this file; nothing of neco is copied here.
 *
 * What neco offers, and how each figure uses it:
 *
 *   yield handoff   two coroutines calling neco_yield;
 *   spawn + join    neco_start(empty, 0), neco_join(neco_lastid()).
 *                   neco_start switches to the new coroutine at once and
 *                   returns when it blocks or ends, so the empty coroutine
 *                   has ended before neco_start returns (one switch per
 *                   task, where weave's spawn + join makes two), and
 *                   neco_join, which returns at once for a coroutine that
 *                   is no more, only looks it up. neco_join waits for the
 *                   coroutine to end; it does not cancel it;
 *   channels        neco_chan_make(&c, 8, 0) (rendezvous) and (&c, 8, 64)
 *                   (buffered), neco_chan_send and neco_chan_recv;
 *   mutex handoff   neco_mutex_lock and neco_mutex_unlock;
 *   sleepers        neco_sleep(ms * NECO_MILLISECOND); the barrier is a
 *                   neco_waitgroup of count 1 every sleeper waits on, the
 *                   end a second waitgroup counting the sleepers.
 *
 * Stacks: neco's own, NECO_STACKSIZE bytes (8 MiB unless the build says
 * otherwise; run.sh gives 128 KiB, weave's default), carved from shared
 * anonymous mappings of up to 8192 stacks each, with a gap of
 * NECO_GAPSIZE (1 MiB) between stacks that is not a guard unless neco is
 * built with NECO_USEGUARDS. neco's own threads (its I/O workers) are not
 * used by any of these figures.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "neco.h"
#include "peer.h"

/* The stack size neco.c was compiled with (its own default otherwise). */
#ifndef NECO_STACKSIZE
#define NECO_STACKSIZE 8388608
#endif
#define STRING_(x) #x
#define STRING(x)  STRING_(x)

static void check(int rc, const char *what)
{
    if (rc != NECO_OK)
        peer_die(what, neco_strerror(rc));
}

/* Start fn(side) for each side of p and wait until both end. */
static void run_pair(struct peer_pair *p, void (*fn)(int, void **))
{
    struct peer_side sa = {p, 1}, sb = {p, 2};
    int64_t a, b;

    check(neco_start(fn, 1, &sa), "neco_start");
    a = neco_lastid();
    check(neco_start(fn, 1, &sb), "neco_start");
    b = neco_lastid();
    check(neco_join(a), "neco_join");
    check(neco_join(b), "neco_join");
}

/* ---- yield handoff -------------------------------------------------------- */

static void yielder(int argc, void **argv)
{
    struct peer_side *s = argv[0];
    struct peer_pair *p = s->p;

    (void)argc;
    peer_begin(p);
    for (uint64_t i = 0; i < p->n; i++) {
        check(neco_yield(), "neco_yield");
        peer_seen(p, s->me);
    }
    peer_end(p);
}

static void fig_yield(struct peer_pair *p)
{
    run_pair(p, yielder);
}

/* ---- spawn + join --------------------------------------------------------- */

static void empty_task(int argc, void **argv)
{
    (void)argc;
    (void)argv;
}

static void fig_spawn(struct peer_pair *p)
{
    p->t0 = peer_now_ns();
    for (uint64_t i = 0; i < p->n; i++) {
        check(neco_start(empty_task, 0), "neco_start");
        check(neco_join(neco_lastid()), "neco_join");
    }
    p->t1 = peer_now_ns();
}

/* ---- channels ------------------------------------------------------------- */

struct chans {
    neco_chan *ping; /* A -> B */
    neco_chan *pong; /* B -> A (ping-pong only) */
};

/* A sends i on ping and waits for it back on pong; B echoes. */
static void pinger(int argc, void **argv)
{
    struct peer_side *s = argv[0];
    struct peer_pair *p = s->p;
    struct chans *c = p->lib;
    uint64_t v = 0;

    (void)argc;
    peer_begin(p);
    for (uint64_t i = 0; i < p->n; i++) {
        if (s->me == 1) {
            check(neco_chan_send(c->ping, &i), "neco_chan_send");
            peer_seen(p, s->me);
            check(neco_chan_recv(c->pong, &v), "neco_chan_recv");
        } else {
            check(neco_chan_recv(c->ping, &v), "neco_chan_recv");
            peer_seen(p, s->me);
            check(neco_chan_send(c->pong, &v), "neco_chan_send");
        }
        peer_seen(p, s->me);
        if (v != i)
            peer_die("ping-pong", "a message out of order");
    }
    peer_end(p);
}

/* A sends 2n numbers on ping, B receives them. */
static void streamer(int argc, void **argv)
{
    struct peer_side *s = argv[0];
    struct peer_pair *p = s->p;
    struct chans *c = p->lib;
    uint64_t v;

    (void)argc;
    peer_begin(p);
    for (uint64_t i = 0; i < 2 * p->n; i++) {
        if (s->me == 1) {
            check(neco_chan_send(c->ping, &i), "neco_chan_send");
        } else {
            check(neco_chan_recv(c->ping, &v), "neco_chan_recv");
            if (v != i)
                peer_die("one way", "a message out of order");
        }
        peer_seen(p, s->me);
    }
    peer_end(p);
}

static void run_chans(struct peer_pair *p, size_t capacity, bool pong, void (*fn)(int, void **))
{
    struct chans c = {NULL, NULL};

    check(neco_chan_make(&c.ping, sizeof(uint64_t), capacity), "neco_chan_make");
    if (pong)
        check(neco_chan_make(&c.pong, sizeof(uint64_t), 0), "neco_chan_make");
    p->lib = &c;
    run_pair(p, fn);
    check(neco_chan_release(c.ping), "neco_chan_release");
    if (pong)
        check(neco_chan_release(c.pong), "neco_chan_release");
}

static void fig_rdv_ping(struct peer_pair *p)
{
    run_chans(p, 0, true, pinger);
}

static void fig_rdv_oneway(struct peer_pair *p)
{
    run_chans(p, 0, false, streamer);
}

static void fig_buf_oneway(struct peer_pair *p)
{
    run_chans(p, p->capacity, false, streamer);
}

/* ---- mutex handoff -------------------------------------------------------- */

struct lock {
    neco_mutex m;
    bool holding; /* A holds the lock, B may queue */
};

/*
 * As chan_bench's locker: each task unlocks (the other waits for the lock)
 * and locks again (waiting until the other unlocks). A takes the lock
 * first and lets B queue behind it.
 */
static void locker(int argc, void **argv)
{
    struct peer_side *s = argv[0];
    struct peer_pair *p = s->p;
    struct lock *l = p->lib;

    (void)argc;
    peer_begin(p);
    if (s->me == 1) {
        check(neco_mutex_lock(&l->m), "neco_mutex_lock");
        l->holding = true;
        check(neco_yield(), "neco_yield"); /* B runs and queues for the lock */
    } else {
        while (!l->holding)
            check(neco_yield(), "neco_yield");
        check(neco_mutex_lock(&l->m), "neco_mutex_lock");
    }
    for (uint64_t i = 0; i < p->n; i++) {
        check(neco_mutex_unlock(&l->m), "neco_mutex_unlock");
        check(neco_mutex_lock(&l->m), "neco_mutex_lock");
        peer_seen(p, s->me);
    }
    check(neco_mutex_unlock(&l->m), "neco_mutex_unlock");
    peer_end(p);
}

static void fig_mutex(struct peer_pair *p)
{
    struct lock l;

    memset(&l, 0, sizeof(l));
    check(neco_mutex_init(&l.m), "neco_mutex_init");
    p->lib = &l;
    run_pair(p, locker);
}

/* ---- sleepers ------------------------------------------------------------- */

struct sleepers {
    neco_waitgroup barrier; /* count 1 until released */
    neco_waitgroup all;     /* sleepers not yet ended */
};

static struct sleepers sl;

static void sleeper(int argc, void **argv)
{
    struct peer_scale *s = argv[0];

    (void)argc;
    s->waiting++;
    if (s->barrier && neco_waitgroup_wait(&sl.barrier) != NECO_OK)
        s->sleep_errors++;
    s->sleeping++;
    if (neco_sleep((int64_t)s->sleep_ms * NECO_MILLISECOND) != NECO_OK)
        s->sleep_errors++;
    s->ended++;
    if (neco_waitgroup_done(&sl.all) != NECO_OK)
        s->sleep_errors++;
}

static void scale_begin(struct peer_scale *s)
{
    (void)s;
    check(neco_waitgroup_init(&sl.barrier), "neco_waitgroup_init");
    check(neco_waitgroup_init(&sl.all), "neco_waitgroup_init");
    check(neco_waitgroup_add(&sl.barrier, 1), "neco_waitgroup_add");
}

static int scale_spawn(struct peer_scale *s)
{
    int rc;

    check(neco_waitgroup_add(&sl.all, 1), "neco_waitgroup_add");
    rc = neco_start(sleeper, 1, s);
    if (rc == NECO_OK)
        return 0;
    check(neco_waitgroup_done(&sl.all), "neco_waitgroup_done");
    if (rc == NECO_NOMEM)
        errno = ENOMEM;
    else if (rc != NECO_ERROR) /* NECO_ERROR: errno says */
        errno = EINVAL;
    return -1;
}

static void scale_yield(void)
{
    check(neco_yield(), "neco_yield");
}

static void scale_release(struct peer_scale *s)
{
    (void)s;
    check(neco_waitgroup_done(&sl.barrier), "neco_waitgroup_done");
}

static void scale_join_all(struct peer_scale *s)
{
    (void)s;
    check(neco_waitgroup_wait(&sl.all), "neco_waitgroup_wait");
}

/* ---- main ----------------------------------------------------------------- */

static const struct peer_lib lib = {
    .prog = "peer_neco",
    .library = "neco",
    .stack_note = "neco's, " STRING(NECO_STACKSIZE) " bytes each, in shared mappings of up to "
                                                    "8192, a 1 MiB gap between (no guard)",
    .stack_size = NECO_STACKSIZE,
    .figure = {fig_yield, fig_spawn, fig_rdv_ping, fig_rdv_oneway, fig_buf_oneway, fig_mutex},
    .scale = {scale_begin, scale_spawn, scale_yield, scale_release, scale_join_all},
};

struct main_args {
    int argc;
    char **argv;
    int status;
};

/* The program runs as neco's first coroutine. */
static void main_task(int argc, void **argv)
{
    struct main_args *m = argv[0];

    (void)argc;
    m->status = peer_main(m->argc, m->argv, &lib);
}

int main(int argc, char **argv)
{
    struct main_args m = {argc, argv, 1};
    int rc = neco_start(main_task, 1, &m);

    if (rc != NECO_OK) {
        (void)fprintf(stderr, "peer_neco: neco_start: %s\n", neco_strerror(rc));
        return 1;
    }
    return m.status;
}
