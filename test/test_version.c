/*
 * test_version.c - the library reports the version its header declares:
 * weave_version() spells the WEAVE_VERSION_* macros, weave_version_number()
 * equals WEAVE_VERSION_NUMBER, and the build's own version (the CMake
 * project version, which the build reads from weave.h) is the same one.
 * Both calls work outside weave_run and leave errno alone.
 *
 * Check timeouts: "version" 5 s x 4 tests = 20 s; the CTest timeout in
 * CMakeLists.txt (30 s) is above it.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weave.h"

/* The number must work in #if, where a program picks code by version. */
#if !defined(WEAVE_VERSION_NUMBER) || WEAVE_VERSION_NUMBER != WEAVE_VERSION_MAJOR * 10000 +        \
                                                                  WEAVE_VERSION_MINOR * 100 +      \
                                                                  WEAVE_VERSION_PATCH
#error "WEAVE_VERSION_NUMBER does not follow WEAVE_VERSION_MAJOR/MINOR/PATCH"
#endif

static void header_version(char *buf, size_t size)
{
    int n = snprintf(buf, size, "%d.%d.%d", WEAVE_VERSION_MAJOR, WEAVE_VERSION_MINOR,
                     WEAVE_VERSION_PATCH);

    ck_assert(n > 0 && (size_t)n < size);
}

START_TEST(string_matches_header)
{
    char want[32];
    const char *got;

    header_version(want, sizeof want);
    got = weave_version();
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(number_matches_header)
{
    ck_assert_int_eq(weave_version_number(), WEAVE_VERSION_NUMBER);
    ck_assert_int_eq(weave_version_number(),
                     WEAVE_VERSION_MAJOR * 10000 + WEAVE_VERSION_MINOR * 100 + WEAVE_VERSION_PATCH);
}
END_TEST

/* The build read its version from the header: what CMake calls the project
 * version (and so the soname, the package version and weave.pc's Version)
 * is what the library reports. */
START_TEST(build_version_matches_library)
{
    ck_assert_str_eq(weave_version(), WEAVE_TEST_PROJECT_VERSION);
}
END_TEST

START_TEST(static_string_no_errno)
{
    const char *first;

    errno = 1234;
    first = weave_version();
    ck_assert_int_eq(weave_version_number(), WEAVE_VERSION_NUMBER);
    ck_assert_ptr_eq(weave_version(), first);
    ck_assert_int_eq(errno, 1234);
}
END_TEST

static Suite *version_suite(void)
{
    Suite *s = suite_create("version");
    TCase *tc = tcase_create("version");

    tcase_set_timeout(tc, 5);
    tcase_add_test(tc, string_matches_header);
    tcase_add_test(tc, number_matches_header);
    tcase_add_test(tc, build_version_matches_library);
    tcase_add_test(tc, static_string_no_errno);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(version_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
