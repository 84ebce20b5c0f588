/*
 * context.h - execution contexts: makecontext/swapcontext, announced to
 * AddressSanitizer, ThreadSanitizer and (through stack.c) valgrind.
 *
 * A context is a saved register set plus the stack it runs on. The thread's
 * own stack gets a root context; every task gets one made on its own stack.
 * This module knows nothing of tasks or schedulers: it makes contexts and
 * switches between them.
 */
#ifndef WEAVE_CONTEXT_H
#define WEAVE_CONTEXT_H

#include <stddef.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#define WEAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEAVE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEAVE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEAVE_TSAN 1
#endif
#endif

struct weave__ctx {
    ucontext_t uc;         /* registers, signal mask, uc_stack */
    void (*entry)(void *); /* first function run on a made context */
    void *arg;             /* its argument */
#ifdef WEAVE_ASAN
    const void *asan_lo; /* bottom of the stack, as ASan sees it */
    size_t asan_size;    /* its size; 0 until known (root context) */
    void *asan_fake;     /* fake stack saved while switched away */
#endif
#ifdef WEAVE_TSAN
    void *tsan_fiber; /* TSan's fiber for this context */
    int tsan_owned;   /* 1 if made here (destroyed with it) */
#endif
};

/* Fill *tmpl with the calling thread's context once, so that making a task
 * context is a copy instead of a getcontext system call. */
int weave__ctx_template(ucontext_t *tmpl);

/* Make *root describe the calling thread's own stack. */
void weave__ctx_root(struct weave__ctx *root);

/*
 * Make *ctx run entry(arg) on [lo, lo + size) when first switched to. entry
 * must never return: it leaves with weave__ctx_exit.
 */
void weave__ctx_make(struct weave__ctx *ctx, const ucontext_t *tmpl, void *lo, size_t size,
                     void (*entry)(void *), void *arg);

/* Save the running context in *from and resume *to; returns when something
 * switches back to *from. */
void weave__ctx_switch(struct weave__ctx *from, struct weave__ctx *to);

/* Leave *from for good and resume *to. *from's stack may be reused as soon
 * as *to runs. */
_Noreturn void weave__ctx_exit(struct weave__ctx *from, struct weave__ctx *to);

/* Release what a made context holds besides its memory (its TSan fiber). */
void weave__ctx_destroy(struct weave__ctx *ctx);

#endif /* WEAVE_CONTEXT_H */
