/*
 * common.h - what every layer shares: the error convention, and the check
 * of reserved option fields.
 *
 * errno is set only at the public boundary (weave__ret): internals return
 * 0 (or a count) or a negative errno value.
 */
#ifndef WEAVE_COMMON_H
#define WEAVE_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether the n bytes at p are all zero: the reserved fields of an options
 * struct, which a later version may give a meaning. */
static inline bool weave__all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Set errno from a negative errno code and return -1 (or pass r >= 0). */
static inline int weave__ret(int r)
{
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return r;
}

#endif /* WEAVE_COMMON_H */
