/*
 * peer.h - what the C peer programs share (peer_libdill.c, peer_neco.c):
 * the repetitions, medians and output of switch_bench's and chan_bench's
 * figures, and the bookkeeping of scale_bench's sleepers, so that each
 * program holds only the calls of its own library.
 *
 * A figure is measured exactly as weave's bench measures it:
 *
 *   yield handoff        two tasks yielding n times each; ns per yield
 *                        (switch_bench: first start to last end / 2n);
 *   spawn + join         n times: spawn an empty task, wait for its end;
 *                        ns per task (switch_bench);
 *   rendezvous ping-pong A sends on one unbuffered channel and receives on
 *                        another, B echoes, n round trips; ns per message
 *                        (chan_bench: first start to last end / 2n);
 *   rendezvous one way   A sends 2n, B receives; ns per message;
 *   buffered one way     the same with capacity C (64); ns per message;
 *   mutex handoff        A and B each unlock a mutex the other waits for
 *                        and lock it again, n times each; ns per lock.
 *
 * As in chan_bench, a task counts a switch whenever it finds that the
 * other task ran since its own last operation; the count per message or
 * handoff says whether a figure is what its name claims (1.00 for a true
 * handoff). Each repetition measures every figure the library has, in an
 * order that rotates; repetition 0 is a warm-up and is not counted.
 *
 * Sleepers (--tasks N): N tasks each sleep once (--sleep-ms, 1000); with
 * --barrier each first waits until all N are spawned, so that all are
 * alive at once. Reported like scale_bench: spawn time, the time until
 * every task is parked, wall time (first spawn to last end) and RSS per
 * task ((VmHWM after - VmRSS before) / N).
 *
 * A failure ends the program with a message and status 1; a sleepers run
 * that fails to spawn says so in its JSON line first ("failed", "spawned").
 */
#ifndef WEAVE_BENCH_PEER_H
#define WEAVE_BENCH_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    PEER_YIELD,
    PEER_SPAWN,
    PEER_RDV_PING,
    PEER_RDV_ONEWAY,
    PEER_BUF_ONEWAY,
    PEER_MUTEX,
    PEER_NFIG
};

/* What the two tasks of a figure share; for spawn + join, only n, t0, t1. */
struct peer_pair {
    uint64_t n;        /* operations per task */
    size_t capacity;   /* of the buffered figure's channel */
    int started;       /* tasks that have begun */
    int finished;      /* tasks that have ended */
    int64_t t0, t1;    /* first task's start, last task's end (ns) */
    int last;          /* the task seen running last: 1 (A) or 2 (B) */
    uint64_t switches; /* times the other task was found to have run */
    void *lib;         /* the library's own objects (channels, mutex) */
};

/* One task's argument: its pair and which side it is. */
struct peer_side {
    struct peer_pair *p;
    int me; /* 1: A, 2: B */
};

/*
 * The sleepers' run, driven by peer.c through the library's scale calls:
 * options in, counters kept by the sleepers, readings out.
 */
struct peer_scale {
    uint64_t ntasks;       /* tasks to spawn */
    uint64_t sleep_ms;     /* each task's one sleep */
    bool barrier;          /* wait until all are spawned before sleeping */
    uint64_t spawned;      /* tasks spawned */
    uint64_t waiting;      /* sleepers at their barrier wait (or sleep, without one) */
    uint64_t sleeping;     /* sleepers that have begun their sleep */
    uint64_t ended;        /* sleepers whose sleep is over */
    uint64_t sleep_errors; /* sleeps or barrier waits that failed */
    uint64_t ended_early;  /* sleepers ended when the last one began its sleep */
    int64_t spawn_ns;      /* the N spawns, back to back */
    int64_t first_run_ns;  /* after the spawns, until every sleeper is parked */
    int64_t release_ns;    /* barrier opened until every sleeper sleeps */
    int64_t wall_ns;       /* first spawn until every sleeper has ended */
};

/*
 * What a sleeper does, in the library's calls: s->waiting++; with
 * s->barrier, wait for the barrier; s->sleeping++; sleep s->sleep_ms;
 * s->ended++. A failed wait or sleep counts in s->sleep_errors.
 */
struct peer_scale_ops {
    void (*begin)(struct peer_scale *s);    /* before the first spawn */
    int (*spawn)(struct peer_scale *s);     /* one sleeper; 0, or -1 with errno */
    void (*yield)(void);                    /* let the runnable tasks run */
    void (*release)(struct peer_scale *s);  /* open the barrier to all */
    void (*join_all)(struct peer_scale *s); /* wait for every sleeper to end */
};

/* The library a program measures. */
struct peer_lib {
    const char *prog;       /* "peer_libdill": messages, JSON "bench" */
    const char *library;    /* "libdill" */
    const char *stack_note; /* how the library's stacks are made, for the table */
    size_t stack_size;      /* bytes of each task's stack */
    /* Run figure f once with p->n (and p->capacity) set: start both tasks
     * (or, for spawn + join, the n tasks), set p->t0 and p->t1, wait until
     * all have ended. NULL: the library has no such thing. */
    void (*figure[PEER_NFIG])(struct peer_pair *p);
    struct peer_scale_ops scale; /* the sleepers' calls */
};

/* CLOCK_MONOTONIC in ns. */
int64_t peer_now_ns(void);

/* Report "prog: what: why" on stderr and exit with status 1. */
_Noreturn void peer_die(const char *what, const char *why);

static inline void peer_begin(struct peer_pair *p)
{
    if (p->started++ == 0)
        p->t0 = peer_now_ns();
}

static inline void peer_end(struct peer_pair *p)
{
    if (++p->finished == 2)
        p->t1 = peer_now_ns();
}

/* Called after every operation: count a switch if the other task ran. */
static inline void peer_seen(struct peer_pair *p, int me)
{
    if (p->last != me) {
        p->switches++;
        p->last = me;
    }
}

/*
 * The whole program: parse the options, run the figures or the sleepers
 * with lib's calls, print the table or the JSON line. Call it from a task
 * of the library (its main coroutine). Returns the exit status.
 */
int peer_main(int argc, char **argv, const struct peer_lib *lib);

#endif /* WEAVE_BENCH_PEER_H */
