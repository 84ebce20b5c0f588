/*
 * peer_libdill.c - switch_bench's, chan_bench's and scale_bench's figures
 * measured with libdill (sustrik/libdill, 2.x API), the way weave's benches
 * measure them (peer.h says how). Built by bench/peers/run.sh against a
 * libdill tree given by path; nothing of libdill is copied here.
 *
 * What libdill offers, and how each figure uses it:
 *
 *   yield handoff   two coroutines in one bundle calling dill_yield;
 *   spawn + join    dill_go(empty()), dill_bundle_wait(h, -1), dill_hclose(h).
 *                   dill_go switches to the new coroutine at once and
 *                   returns when it blocks or ends, so an empty coroutine
 *                   has ended (and its stack is back in libdill's cache)
 *                   before dill_go returns: one switch per task where
 *                   weave's spawn + join makes two. The handle dill_go
 *                   returns is a bundle of one. dill_hclose on it is not a
 *                   join: if the coroutine has not ended, hclose cancels it
 *                   (its blocking calls fail with ECANCELED from then on)
 *                   and waits until it returns. The join, waiting for the
 *                   coroutine to end on its own, is dill_bundle_wait; here
 *                   it finds the bundle empty and returns at once;
 *   rendezvous      dill_chmake channels, dill_chsend and dill_chrecv of 8
 *                   bytes (libdill's channels are unbuffered: there is no
 *                   buffered figure); a send to a waiting receiver copies
 *                   the element and lets the sender go on;
 *   mutex           libdill has none;
 *   sleepers        one bundle; dill_msleep(dill_now() + ms); the barrier
 *                   is a channel every sleeper receives from, closed for
 *                   all at once with dill_chdone (their receives fail with
 *                   EPIPE).
 *
 * Stacks: libdill's own, 256 KiB each (a constant of stack.c), cached up to
 * 64 when freed. With guard pages (its default where mprotect exists) each
 * stack is a posix_memalign'd block with one mprotect'ed page, two
 * mappings a stack, which vm.max_map_count (65530) stops near 32,000
 * coroutines; run.sh builds libdill with -DDILL_NOGUARD, so that stacks
 * are plain malloc blocks and the sleepers can pass that.
 */
#define _GNU_SOURCE
#define DILL_DISABLE_RAW_NAMES

#include <errno.h>
#include <libdill.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"

#define DILL_STACK_SIZE ((size_t)256 * 1024) /* stack.c's dill_stack_size */

/* run.sh builds libdill and this program with the same -DDILL_NOGUARD. */
#ifdef DILL_NOGUARD
#define STACK_NOTE "libdill's, 256 KiB each, malloc'd, no guard page (-DDILL_NOGUARD)"
#else
#define STACK_NOTE "libdill's, 256 KiB each, and a guard page each (mprotect)"
#endif

static void check(int rc, const char *what)
{
    if (rc < 0)
        peer_die(what, strerror(errno));
}

/* Run both sides of a figure in one bundle and wait until both end. */
#define RUN_PAIR(p, fn)                                                                            \
    do {                                                                                           \
        struct peer_side sa_ = {(p), 1}, sb_ = {(p), 2};                                           \
        int b_ = dill_bundle();                                                                    \
                                                                                                   \
        check(b_, "dill_bundle");                                                                  \
        check(dill_bundle_go(b_, fn(&sa_)), "dill_bundle_go");                                     \
        check(dill_bundle_go(b_, fn(&sb_)), "dill_bundle_go");                                     \
        check(dill_bundle_wait(b_, -1), "dill_bundle_wait");                                       \
        check(dill_hclose(b_), "dill_hclose");                                                     \
    } while (0)

/* ---- yield handoff -------------------------------------------------------- */

static dill_coroutine void yielder(struct peer_side *s)
{
    struct peer_pair *p = s->p;

    peer_begin(p);
    for (uint64_t i = 0; i < p->n; i++) {
        check(dill_yield(), "dill_yield");
        peer_seen(p, s->me);
    }
    peer_end(p);
}

static void fig_yield(struct peer_pair *p)
{
    RUN_PAIR(p, yielder);
}

/* ---- spawn + join --------------------------------------------------------- */

static dill_coroutine void empty_task(void)
{
}

static void fig_spawn(struct peer_pair *p)
{
    p->t0 = peer_now_ns();
    for (uint64_t i = 0; i < p->n; i++) {
        int h = dill_go(empty_task());

        check(h, "dill_go");
        check(dill_bundle_wait(h, -1), "dill_bundle_wait");
        check(dill_hclose(h), "dill_hclose");
    }
    p->t1 = peer_now_ns();
}

/* ---- channels ------------------------------------------------------------- */

/* A figure's channels: what is sent on [0] is received from [1]. */
struct chans {
    int ping[2]; /* A -> B */
    int pong[2]; /* B -> A (ping-pong only) */
};

/* A sends i on ping and waits for it back on pong; B echoes. */
static dill_coroutine void pinger(struct peer_side *s)
{
    struct peer_pair *p = s->p;
    struct chans *c = p->lib;
    uint64_t v = 0;

    peer_begin(p);
    for (uint64_t i = 0; i < p->n; i++) {
        if (s->me == 1) {
            check(dill_chsend(c->ping[0], &i, sizeof(i), -1), "dill_chsend");
            peer_seen(p, s->me);
            check(dill_chrecv(c->pong[1], &v, sizeof(v), -1), "dill_chrecv");
        } else {
            check(dill_chrecv(c->ping[1], &v, sizeof(v), -1), "dill_chrecv");
            peer_seen(p, s->me);
            check(dill_chsend(c->pong[0], &v, sizeof(v), -1), "dill_chsend");
        }
        peer_seen(p, s->me);
        if (v != i)
            peer_die("ping-pong", "a message out of order");
    }
    peer_end(p);
}

/* A sends 2n numbers on ping, B receives them. */
static dill_coroutine void streamer(struct peer_side *s)
{
    struct peer_pair *p = s->p;
    struct chans *c = p->lib;
    uint64_t v;

    peer_begin(p);
    for (uint64_t i = 0; i < 2 * p->n; i++) {
        if (s->me == 1) {
            check(dill_chsend(c->ping[0], &i, sizeof(i), -1), "dill_chsend");
        } else {
            check(dill_chrecv(c->ping[1], &v, sizeof(v), -1), "dill_chrecv");
            if (v != i)
                peer_die("one way", "a message out of order");
        }
        peer_seen(p, s->me);
    }
    peer_end(p);
}

static void close_chans(struct chans *c)
{
    check(dill_hclose(c->ping[0]), "dill_hclose");
    check(dill_hclose(c->ping[1]), "dill_hclose");
    check(dill_hclose(c->pong[0]), "dill_hclose");
    check(dill_hclose(c->pong[1]), "dill_hclose");
}

static void fig_rdv_ping(struct peer_pair *p)
{
    struct chans c;

    check(dill_chmake(c.ping), "dill_chmake");
    check(dill_chmake(c.pong), "dill_chmake");
    p->lib = &c;
    RUN_PAIR(p, pinger);
    close_chans(&c);
}

static void fig_rdv_oneway(struct peer_pair *p)
{
    struct chans c;

    check(dill_chmake(c.ping), "dill_chmake");
    check(dill_chmake(c.pong), "dill_chmake");
    p->lib = &c;
    RUN_PAIR(p, streamer);
    close_chans(&c);
}

/* ---- sleepers ------------------------------------------------------------- */

struct sleepers {
    int bundle;     /* every sleeper */
    int barrier[2]; /* sleepers receive from [1]; chdone([0]) opens it */
};

static struct sleepers sl;

static dill_coroutine void sleeper(struct peer_scale *s)
{
    char c;

    s->waiting++;
    if (s->barrier && (dill_chrecv(sl.barrier[1], &c, 1, -1) == 0 || errno != EPIPE))
        s->sleep_errors++;
    s->sleeping++;
    if (dill_msleep(dill_now() + (int64_t)s->sleep_ms) != 0)
        s->sleep_errors++;
    s->ended++;
}

static void scale_begin(struct peer_scale *s)
{
    (void)s;
    sl.bundle = dill_bundle();
    check(sl.bundle, "dill_bundle");
    check(dill_chmake(sl.barrier), "dill_chmake");
}

static int scale_spawn(struct peer_scale *s)
{
    return dill_bundle_go(sl.bundle, sleeper(s));
}

static void scale_yield(void)
{
    check(dill_yield(), "dill_yield");
}

static void scale_release(struct peer_scale *s)
{
    (void)s;
    check(dill_chdone(sl.barrier[0]), "dill_chdone");
}

static void scale_join_all(struct peer_scale *s)
{
    (void)s;
    check(dill_bundle_wait(sl.bundle, -1), "dill_bundle_wait");
    check(dill_hclose(sl.bundle), "dill_hclose");
    check(dill_hclose(sl.barrier[0]), "dill_hclose");
    check(dill_hclose(sl.barrier[1]), "dill_hclose");
}

int main(int argc, char **argv)
{
    static const struct peer_lib lib = {
        .prog = "peer_libdill",
        .library = "libdill",
        .stack_note = STACK_NOTE,
        .stack_size = DILL_STACK_SIZE,
        .figure = {[PEER_YIELD] = fig_yield,
                   [PEER_SPAWN] = fig_spawn,
                   [PEER_RDV_PING] = fig_rdv_ping,
                   [PEER_RDV_ONEWAY] = fig_rdv_oneway},
        .scale = {scale_begin, scale_spawn, scale_yield, scale_release, scale_join_all},
    };

    return peer_main(argc, argv, &lib);
}
