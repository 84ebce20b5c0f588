/*
 * time.c - the monotonic clock and sleeping.
 */
#include "internal.h"

int64_t weave_now(void)
{
    return weave__clock_ns() / 1000000;
}

int64_t weave_now_us(void)
{
    return weave__clock_ns() / 1000;
}

int weave__deadline_ms(int64_t timeout_ms, int64_t *deadline)
{
    if (timeout_ms < -1)
        return -EINVAL;
    if (timeout_ms == -1 || timeout_ms > INT64_MAX / 1000000)
        *deadline = WEAVE__NO_DEADLINE;
    else
        *deadline = weave__deadline_after(timeout_ms * 1000000);
    return 0;
}

/* Sleep for us microseconds (-1: until cancelled). */
static int sleep_us(int64_t us)
{
    struct weave__sched *s = weave__tls;
    int64_t deadline;
    int r;

    if (us < -1)
        return -EINVAL;
    if (!s)
        return -EPERM;
    if (weave__cancelled(s))
        return -ECANCELED;
    if (us == 0) {
        weave__yield(s);
        return 0;
    }
    if (us == -1 || us > INT64_MAX / 1000)
        deadline = WEAVE__NO_DEADLINE;
    else
        deadline = weave__deadline_after(us * 1000);
    r = weave__park(s, deadline);
    return r == -ETIMEDOUT ? 0 : r;
}

int weave_sleep_us(int64_t us)
{
    return weave__ret(sleep_us(us));
}

int weave_sleep(int64_t ms)
{
    if (ms > INT64_MAX / 1000)
        ms = -1; /* beyond any representable deadline */
    return weave__ret(sleep_us(ms < 0 ? ms : ms * 1000));
}
