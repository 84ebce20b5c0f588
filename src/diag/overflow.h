/*
 * overflow.h - naming the task a fatal signal kills (overflow.c).
 */
#ifndef WEAVE_OVERFLOW_H
#define WEAVE_OVERFLOW_H

/* Install the fatal-signal handlers (once per process), have them name the
 * tasks of this thread's scheduler, and give the thread an alternate signal
 * stack. Returns a token for weave__overflow_thread_end, which must follow
 * (with NULL too) when the scheduler ends. */
void *weave__overflow_thread_begin(void);
void weave__overflow_thread_end(void *token);

#endif /* WEAVE_OVERFLOW_H */
