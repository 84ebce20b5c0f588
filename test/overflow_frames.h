/*
 * overflow_frames.h - the overflow suite's user code, built without
 * -fstack-clash-protection and without UBSan (see overflow_frames.c).
 */
#ifndef WT_OVERFLOW_FRAMES_H
#define WT_OVERFLOW_FRAMES_H

#include <stddef.h>

/* A frame of bytes made with alloca, or a VLA, then written whole from its
 * lowest byte up. Returns one of the bytes written. */
size_t wt_frame_alloca(size_t bytes);
size_t wt_frame_vla(size_t bytes);

/* A store through a NULL pointer: SIGSEGV. */
void wt_store_through_null(void);

/* x / 0 on a processor where that traps (x86), so SIGFPE; elsewhere the
 * signal is raised. */
int wt_divide_by_zero(int x);

/* An undefined instruction: SIGILL. */
void wt_illegal_instruction(void);

#endif /* WT_OVERFLOW_FRAMES_H */
