/*
 * context.c - making and switching contexts, with sanitizer annotations,
 * for both backends (context.h).
 *
 * Every switch is announced to AddressSanitizer (start before, finish after,
 * NULL fake-stack slot on a final exit) so that ASan knows which stack is
 * live; without that, __asan_handle_no_return and the fake-stack garbage
 * collector treat task stacks as part of the thread stack and report false
 * errors. ThreadSanitizer gets one fiber per context. valgrind is told about
 * stacks where they are allocated (stack.c).
 *
 * ucontext: makecontext passes only int arguments, so the context pointer
 * travels as two 32-bit halves and is put back together in the trampoline.
 *
 * asm: weave__ctx_swap (context_<arch>.S) pushes the callee-saved registers
 * and the floating-point control state on the running stack, stores the
 * stack pointer, loads the other one and pops the same. A new context's
 * stack is given a frame that such a pop turns into a call of
 * weave__ctx_start(ctx), through the assembly trampoline weave__ctx_boot.
 *
 * errno belongs to the context: a switch keeps the leaving context's errno
 * on that context's own stack and puts it back when the context resumes,
 * so a task sees its own errno across every wait, as a thread would; a new
 * context starts with errno 0. &errno is the thread's, and a context never
 * changes threads, so it is looked up once per thread (errno_at) rather
 * than through a call of __errno_location on every switch.
 */
#include "base/context.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* The thread's &errno, once a switch has looked it up (initial-exec, as
 * weave__tls: one load from the thread pointer). */
static _Thread_local int *errno_at __attribute__((tls_model("initial-exec")));

static inline int *errno_loc(void)
{
    int *p = errno_at;

    if (__builtin_expect(p == NULL, 0))
        errno_at = p = &errno;
    return p;
}

#ifdef WEAVE_ASAN
#include <sanitizer/common_interface_defs.h>
/* The context being left by the switch in progress on this thread. The code
 * that runs next learns from ASan where that context's stack lies, which is
 * how the root context (the thread's stack) gets its bounds. */
static _Thread_local struct weave__ctx *asan_leaving;

static void asan_start(struct weave__ctx *from, struct weave__ctx *to, int final)
{
    asan_leaving = from;
    __sanitizer_start_switch_fiber(final ? NULL : &from->asan_fake, to->asan_lo, to->asan_size);
}

static void asan_finish(void *fake)
{
    const void *lo;
    size_t size;

    __sanitizer_finish_switch_fiber(fake, &lo, &size);
    if (asan_leaving && asan_leaving->asan_size == 0) {
        asan_leaving->asan_lo = lo;
        asan_leaving->asan_size = size;
    }
}

static void asan_made(struct weave__ctx *ctx, void *lo, size_t size)
{
    ctx->asan_lo = lo;
    ctx->asan_size = size;
    ctx->asan_fake = NULL;
}
#else
#define asan_start(from, to, final) ((void)(from), (void)(to), (void)(final))
#define asan_finish(fake)           ((void)0)
#define asan_made(ctx, lo, size)    ((void)(ctx), (void)(lo), (void)(size))
#endif

#ifdef WEAVE_TSAN
#include <sanitizer/tsan_interface.h>
#define tsan_switch(to) __tsan_switch_to_fiber((to)->tsan_fiber, 0)

static void tsan_made(struct weave__ctx *ctx)
{
    ctx->tsan_fiber = __tsan_create_fiber(0);
    ctx->tsan_owned = 1;
}
#else
#define tsan_switch(to) ((void)0)
#define tsan_made(ctx)  ((void)(ctx))
#endif

void weave__ctx_root(struct weave__ctx *root)
{
    memset(root, 0, sizeof(*root));
#ifdef WEAVE_TSAN
    root->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void weave__ctx_destroy(struct weave__ctx *ctx)
{
#ifdef WEAVE_TSAN
    if (ctx->tsan_owned)
        __tsan_destroy_fiber(ctx->tsan_fiber);
    ctx->tsan_owned = 0;
#else
    (void)ctx;
#endif
}

#ifdef WEAVE_CONTEXT_ASM

/* context_<arch>.S */
void weave__ctx_swap(void **save_sp, void *load_sp);
_Noreturn void weave__ctx_load(void *load_sp);
void weave__ctx_boot(void);
void weave__ctx_start(struct weave__ctx *ctx);

#if defined(__x86_64__)
/* The frame weave__ctx_swap leaves: the control state, r15, r14, r13, r12,
 * rbx, rbp, then the return address. */
enum { FRAME_WORDS = 8, FRAME_FP = 0, FRAME_ARG = 3, FRAME_FN = 4, FRAME_RET = 7 };
#define FRAME_BELOW 16 /* the return lands 16 below the top, aligned for a call */

static uint64_t fpstate_now(void)
{
    uint32_t mxcsr;
    uint16_t fpucw;

    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    return mxcsr | (uint64_t)fpucw << 32;
}
#elif defined(__aarch64__)
/* The frame: x19 .. x28, x29, x30, d8 .. d15, FPCR, padding. */
enum { FRAME_WORDS = 22, FRAME_FN = 0, FRAME_ARG = 1, FRAME_RET = 11, FRAME_FP = 20 };
#define FRAME_BELOW 0

static uint64_t fpstate_now(void)
{
    uint64_t fpcr;

    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
}
#else
#error "WEAVE_CONTEXT=asm supports x86-64 and aarch64; configure with WEAVE_CONTEXT=ucontext"
#endif

const char *weave__ctx_backend(void)
{
    return "asm";
}

int weave__ctx_template(struct weave__ctx_tmpl *tmpl)
{
    tmpl->fpstate = fpstate_now();
    return 0;
}

void weave__ctx_start(struct weave__ctx *ctx)
{
    asan_finish(NULL);
    errno = 0;
    ctx->entry(ctx->arg);
}

void weave__ctx_make(struct weave__ctx *ctx, const struct weave__ctx_tmpl *tmpl, void *lo,
                     size_t size, void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - FRAME_BELOW) - FRAME_WORDS;

    memset(frame, 0, FRAME_WORDS * sizeof(*frame));
    frame[FRAME_FP] = tmpl->fpstate;
    frame[FRAME_FN] = (uint64_t)(uintptr_t)weave__ctx_start;
    frame[FRAME_ARG] = (uint64_t)(uintptr_t)ctx;
    frame[FRAME_RET] = (uint64_t)(uintptr_t)weave__ctx_boot;
    ctx->sp = frame;
    ctx->entry = entry;
    ctx->arg = arg;
    asan_made(ctx, lo, size);
    tsan_made(ctx);
}

void weave__ctx_switch(struct weave__ctx *from, struct weave__ctx *to)
{
    int *ep = errno_loc(), saved = *ep; /* this context's errno (see the top) */

    asan_start(from, to, 0);
    tsan_switch(to);
    weave__ctx_swap(&from->sp, to->sp);
#ifdef WEAVE_ASAN
    asan_finish(from->asan_fake);
#endif
    *ep = saved;
}

void weave__ctx_exit(struct weave__ctx *from, struct weave__ctx *to)
{
    asan_start(from, to, 1);
    tsan_switch(to);
    weave__ctx_load(to->sp);
}

/* The signal mask is the thread's alone: the switch never touches it. */
void weave__ctx_sigblock_tmpl(struct weave__ctx_tmpl *tmpl, const sigset_t *set)
{
    (void)tmpl;
    (void)set;
}

void weave__ctx_sigblock(struct weave__ctx *ctx, const sigset_t *set)
{
    (void)ctx;
    (void)set;
}

#else /* ucontext */

const char *weave__ctx_backend(void)
{
    return "ucontext";
}

int weave__ctx_template(struct weave__ctx_tmpl *tmpl)
{
    return getcontext(&tmpl->uc);
}

static void trampoline(unsigned int lo, unsigned int hi)
{
    struct weave__ctx *ctx = (struct weave__ctx *)(((uintptr_t)hi << 32) | (uintptr_t)lo);

    asan_finish(NULL);
    errno = 0;
    ctx->entry(ctx->arg);
}

void weave__ctx_make(struct weave__ctx *ctx, const struct weave__ctx_tmpl *tmpl, void *lo,
                     size_t size, void (*entry)(void *), void *arg)
{
    uintptr_t p = (uintptr_t)ctx;

    memcpy(&ctx->uc, &tmpl->uc, sizeof(ctx->uc));
#if defined(__x86_64__)
    /* The copy's fpregs still point into the template; point them at the
     * copy's own save area. */
    ctx->uc.uc_mcontext.fpregs = &ctx->uc.__fpregs_mem;
#endif
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_stack.ss_flags = 0;
    ctx->uc.uc_link = NULL;
    ctx->entry = entry;
    ctx->arg = arg;
    asan_made(ctx, lo, size);
    tsan_made(ctx);
    makecontext(&ctx->uc, (void (*)(void))trampoline, 2, (unsigned int)(p & 0xffffffffu),
                (unsigned int)(p >> 32));
}

void weave__ctx_switch(struct weave__ctx *from, struct weave__ctx *to)
{
    int *ep = errno_loc(), saved = *ep; /* this context's errno (see the top) */

    asan_start(from, to, 0);
    tsan_switch(to);
    swapcontext(&from->uc, &to->uc);
#ifdef WEAVE_ASAN
    asan_finish(from->asan_fake);
#endif
    *ep = saved;
}

void weave__ctx_exit(struct weave__ctx *from, struct weave__ctx *to)
{
    asan_start(from, to, 1);
    tsan_switch(to);
    setcontext(&to->uc);
    __builtin_unreachable();
}

/* swapcontext and setcontext load uc_sigmask into the thread: a saved
 * context that lacks set would unblock it again when resumed. */
void weave__ctx_sigblock_tmpl(struct weave__ctx_tmpl *tmpl, const sigset_t *set)
{
    sigorset(&tmpl->uc.uc_sigmask, &tmpl->uc.uc_sigmask, set);
}

void weave__ctx_sigblock(struct weave__ctx *ctx, const sigset_t *set)
{
    sigorset(&ctx->uc.uc_sigmask, &ctx->uc.uc_sigmask, set);
}

#endif /* WEAVE_CONTEXT_ASM */
