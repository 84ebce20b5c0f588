/*
 * version.c - the version of the library itself, as weave.h spelled it when
 * the library was built. A program compares it with the WEAVE_VERSION_*
 * macros of the header it was compiled against.
 */
#include "weave.h"

#define WEAVE_STR_(x) #x
#define WEAVE_STR(x)  WEAVE_STR_(x)

const char *weave_version(void)
{
    return WEAVE_STR(WEAVE_VERSION_MAJOR) "." WEAVE_STR(WEAVE_VERSION_MINOR) "." WEAVE_STR(
        WEAVE_VERSION_PATCH);
}

int weave_version_number(void)
{
    return WEAVE_VERSION_NUMBER;
}
