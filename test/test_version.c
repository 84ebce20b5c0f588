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

/* The public structs users allocate keep their size: new fields take
 * reserved room (these are the x86-64 and aarch64 sizes). */
_Static_assert(sizeof(void *) != 8 || sizeof(weave_run_opts) == 104, "weave_run_opts changed size");
_Static_assert(sizeof(void *) != 8 || sizeof(weave_task_opts) == 64,
               "weave_task_opts changed size");
_Static_assert(sizeof(void *) != 8 || sizeof(weave_stats) == 160, "weave_stats changed size");
_Static_assert(sizeof(void *) != 8 || sizeof(weave_stream_opts) == 64,
               "weave_stream_opts changed size");
_Static_assert(sizeof(void *) != 8 || sizeof(weave_task_info) == 144,
               "weave_task_info changed size");

static void *nothing(void *arg)
{
    return arg;
}

/* Spawns with a reserved field set: returns the errno (0 if it spawned). */
static void *spawn_reserved(void *arg)
{
    weave_task_opts to = {0};
    weave_task *t;

    (void)arg;
    to.reserved[0] = 1;
    errno = 0;
    t = weave_spawn_with(&to, nothing, NULL);
    if (t) {
        (void)weave_join(t, NULL);
        return (void *)(intptr_t)0;
    }
    return (void *)(intptr_t)errno;
}

/* Reserved room must be zero: a later version may give it a meaning. */
START_TEST(reserved_fields_must_be_zero)
{
    weave_run_opts ro = {0};
    void *res = NULL;

    ro.reserved[7] = 1;
    errno = 0;
    ck_assert_int_eq(weave_run_with(&ro, nothing, NULL, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ro.reserved[7] = 0;
    ck_assert_int_eq(weave_run_with(&ro, nothing, NULL, NULL), 0);
    ck_assert_int_eq(weave_run_with(NULL, spawn_reserved, NULL, &res), 0);
    ck_assert_int_eq((int)(intptr_t)res, EINVAL);
}
END_TEST

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
    tcase_add_test(tc, reserved_fields_must_be_zero);
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
