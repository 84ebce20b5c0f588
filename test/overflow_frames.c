/*
 * overflow_frames.c - user code as a user's compiler might build it, for the
 * overflow suite: without -fstack-clash-protection (Debian gcc's default),
 * so that a large frame moves the stack pointer in one step, as far as it
 * likes, and touches nothing on the way; and without UBSan's checks, so
 * that a NULL store or a division by zero reaches the processor and raises
 * its signal. test/CMakeLists.txt sets those flags on this file alone.
 */
#include <alloca.h>
#include <signal.h>
#include <stddef.h>

#include "overflow_frames.h"

/* Write every byte of buf, lowest address first: the first write lands
 * where the frame reaches deepest. */
static size_t fill(volatile char *buf, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        buf[i] = (char)i;
    return (size_t)buf[bytes / 2];
}

size_t wt_frame_alloca(size_t bytes)
{
    volatile char *buf = alloca(bytes);

    return fill(buf, bytes);
}

size_t wt_frame_vla(size_t bytes)
{
    char buf[bytes];

    return fill(buf, bytes);
}

static int *volatile null_pointer;
static volatile int zero;

void wt_store_through_null(void)
{
    *null_pointer = 1;
}

int wt_divide_by_zero(int x)
{
#if defined(__x86_64__) || defined(__i386__)
    return x / zero;
#else
    /* Elsewhere (aarch64) an integer division by zero does not trap. */
    (void)raise(SIGFPE);
    return x + zero;
#endif
}

void wt_illegal_instruction(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_trap(); /* ud2 */
#elif defined(__aarch64__)
    __asm__ volatile("udf #0"); /* __builtin_trap is brk here: SIGTRAP */
#else
    (void)raise(SIGILL);
#endif
}
