/*
 * context.h - execution contexts, announced to AddressSanitizer,
 * ThreadSanitizer and (through stack.c) valgrind.
 *
 * A context is a saved register set plus the stack it runs on. The thread's
 * own stack gets a root context; every task gets one made on its own stack.
 * Each context has its own errno: a switch saves the leaving context's and
 * restores it when that context resumes; a new context starts with 0.
 *
 * This module knows nothing of tasks or schedulers: it makes contexts and
 * switches between them.
 *
 * Two backends behind the same functions, chosen when weave is configured
 * (-DWEAVE_CONTEXT=ucontext|asm):
 *
 *   ucontext  (the default) makecontext/swapcontext from the C library. A
 *             switch also saves and restores the signal mask, which costs
 *             a system call.
 *   asm       a hand-written switch (context_x86_64.S, context_aarch64.S):
 *             the callee-saved registers, the stack pointer and the
 *             floating-point control state (MXCSR and the x87 control word
 *             on x86-64, FPCR on aarch64) and nothing else. The signal mask
 *             is the thread's, shared by every task: what weave_run sets
 *             (SIGPIPE blocked) holds for all of them; a task that changes
 *             the mask changes it for the others too.
 *
 * The signal mask under ucontext: every context carries its own, which a
 * switch to it restores, so a mask change made by a running task lasts
 * only until the next switch. A signal that must stay blocked for the
 * whole scheduler (signal.c reads it through a signalfd) is therefore
 * blocked on the thread, in the template, and in every saved context that
 * will be resumed: weave__ctx_sigblock_tmpl and weave__ctx_sigblock. Under
 * asm both are no-ops: blocking it on the thread is enough.
 */
#ifndef WEAVE_CONTEXT_H
#define WEAVE_CONTEXT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "weave_build.h"

#ifndef WEAVE_CONTEXT_ASM
#include <ucontext.h>
#endif

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

#ifdef WEAVE_CONTEXT_ASM
/* What every new context starts with: the thread's floating-point control
 * state when the scheduler began. */
struct weave__ctx_tmpl {
    uint64_t fpstate; /* MXCSR | x87 control word << 32, or FPCR */
};
#else
struct weave__ctx_tmpl {
    ucontext_t uc; /* getcontext once; copied into every new context */
};
#endif

struct weave__ctx {
#ifdef WEAVE_CONTEXT_ASM
    void *sp; /* saved stack pointer, while switched away */
#else
    ucontext_t uc; /* registers, signal mask, uc_stack */
#endif
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

/* Fill *tmpl from the calling thread, so that making a task context is a
 * copy (ucontext: instead of a getcontext system call). Returns 0, or -1
 * with errno set. */
int weave__ctx_template(struct weave__ctx_tmpl *tmpl);

/* Make *root describe the calling thread's own stack. */
void weave__ctx_root(struct weave__ctx *root);

/*
 * Make *ctx run entry(arg) on [lo, lo + size) when first switched to. entry
 * must never return: it leaves with weave__ctx_exit.
 */
void weave__ctx_make(struct weave__ctx *ctx, const struct weave__ctx_tmpl *tmpl, void *lo,
                     size_t size, void (*entry)(void *), void *arg);

/* Save the running context in *from and resume *to; returns when something
 * switches back to *from. */
void weave__ctx_switch(struct weave__ctx *from, struct weave__ctx *to);

/* Leave *from for good and resume *to. *from's stack may be reused as soon
 * as *to runs. */
_Noreturn void weave__ctx_exit(struct weave__ctx *from, struct weave__ctx *to);

/* Add set to the signal mask of every context made from *tmpl from now on
 * (ucontext; nothing to do under asm). */
void weave__ctx_sigblock_tmpl(struct weave__ctx_tmpl *tmpl, const sigset_t *set);

/* Add set to the signal mask *ctx resumes with, if it is switched away
 * (ucontext; nothing to do under asm). Harmless on the running context,
 * whose mask is the thread's and is saved afresh at its next switch. */
void weave__ctx_sigblock(struct weave__ctx *ctx, const sigset_t *set);

/* Release what a made context holds besides its memory (its TSan fiber). */
void weave__ctx_destroy(struct weave__ctx *ctx);

/* The backend's name, "ucontext" or "asm", for benches and tests. */
const char *weave__ctx_backend(void);

#endif /* WEAVE_CONTEXT_H */
