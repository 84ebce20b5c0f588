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

int64_t weave__deadline_in(int64_t amount, int64_t unit_ns)
{
    if (amount < -1)
        return -EINVAL;
    if (amount == -1 || amount > INT64_MAX / unit_ns)
        return WEAVE__NO_DEADLINE; /* forever, or beyond any deadline */
    return weave__deadline_after(amount * unit_ns);
}

/* Sleep for amount units of unit_ns (-1: until cancelled; 0: yield). */
static int sleep_for(int64_t amount, int64_t unit_ns)
{
    struct weave__sched *s = weave__tls;
    int64_t deadline = weave__deadline_in(amount, unit_ns);
    int r;

    if (deadline < 0)
        return -EINVAL;
    if (!s)
        return -EPERM;
    if (weave__cancelled(s))
        return -ECANCELED;
    if (amount == 0) {
        weave__yield(s);
        return 0;
    }
    r = weave__park(s, deadline);
    return r == -ETIMEDOUT ? 0 : r;
}

int weave_sleep_us(int64_t us)
{
    return weave__ret(sleep_for(us, 1000));
}

int weave_sleep(int64_t ms)
{
    return weave__ret(sleep_for(ms, 1000000));
}
