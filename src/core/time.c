/*
 * time.c - the monotonic clock and sleeping.
 *
 * A sleep is a wait with no clause and a timeout: it costs the task's one
 * timer and nothing else. Only the sleep's own timeout is a success; a
 * deadline scope that passes first fails it with ETIMEDOUT.
 */
#include "base/common.h"
#include "core/scope.h"
#include "core/sched.h"
#include "core/time.h"
#include "core/wait.h"

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
    int64_t timeout = weave__deadline_in(amount, unit_ns);
    struct weave__wait w;
    int r;

    if (timeout < 0)
        return -EINVAL;
    if (!s)
        return -EPERM;
    if ((r = weave__checkpoint(s)) < 0)
        return r;
    if (amount == 0) {
        weave__yield(s);
        return 0;
    }
    weave__wait_init(&w, NULL, 0, timeout, WEAVE_WAIT_SLEEP, NULL);
    r = weave__park(s, &w);
    return r == WEAVE__WHY_TIMEOUT ? 0 : weave__why_errno(r);
}

WEAVE__ENTRY int weave_sleep_us(int64_t us)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(sleep_for(us, 1000));
}

WEAVE__ENTRY int weave_sleep(int64_t ms)
{
    WEAVE__SCOPES_CHECK();
    return weave__ret(sleep_for(ms, 1000000));
}
