/*
 * context.c - makecontext/swapcontext with sanitizer annotations.
 *
 * Every switch is announced to AddressSanitizer (start before, finish after,
 * NULL fake-stack slot on a final exit) so that ASan knows which stack is
 * live; without that, __asan_handle_no_return and the fake-stack garbage
 * collector treat task stacks as part of the thread stack and report false
 * errors. ThreadSanitizer gets one fiber per context. valgrind is told about
 * stacks where they are allocated (stack.c).
 *
 * makecontext passes only int arguments, so the context pointer travels as
 * two 32-bit halves and is put back together in the trampoline.
 */
#include "context.h"

#include <stdint.h>
#include <string.h>

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
#else
#define asan_start(from, to, final) ((void)(from), (void)(to), (void)(final))
#define asan_finish(fake)           ((void)0)
#endif

#ifdef WEAVE_TSAN
#include <sanitizer/tsan_interface.h>
#define tsan_switch(to) __tsan_switch_to_fiber((to)->tsan_fiber, 0)
#else
#define tsan_switch(to) ((void)0)
#endif

int weave__ctx_template(ucontext_t *tmpl)
{
    return getcontext(tmpl);
}

void weave__ctx_root(struct weave__ctx *root)
{
    memset(root, 0, sizeof(*root));
#ifdef WEAVE_TSAN
    root->tsan_fiber = __tsan_get_current_fiber();
#endif
}

static void trampoline(unsigned int lo, unsigned int hi)
{
    struct weave__ctx *ctx = (struct weave__ctx *)(((uintptr_t)hi << 32) | (uintptr_t)lo);

    asan_finish(NULL);
    ctx->entry(ctx->arg);
}

void weave__ctx_make(struct weave__ctx *ctx, const ucontext_t *tmpl, void *lo, size_t size,
                     void (*entry)(void *), void *arg)
{
    uintptr_t p = (uintptr_t)ctx;

    memcpy(&ctx->uc, tmpl, sizeof(ctx->uc));
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
#ifdef WEAVE_ASAN
    ctx->asan_lo = lo;
    ctx->asan_size = size;
    ctx->asan_fake = NULL;
#endif
#ifdef WEAVE_TSAN
    ctx->tsan_fiber = __tsan_create_fiber(0);
    ctx->tsan_owned = 1;
#endif
    makecontext(&ctx->uc, (void (*)(void))trampoline, 2, (unsigned int)(p & 0xffffffffu),
                (unsigned int)(p >> 32));
}

void weave__ctx_switch(struct weave__ctx *from, struct weave__ctx *to)
{
    asan_start(from, to, 0);
    tsan_switch(to);
    swapcontext(&from->uc, &to->uc);
#ifdef WEAVE_ASAN
    asan_finish(from->asan_fake);
#endif
}

void weave__ctx_exit(struct weave__ctx *from, struct weave__ctx *to)
{
    asan_start(from, to, 1);
    tsan_switch(to);
    setcontext(&to->uc);
    __builtin_unreachable();
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
