/*
 * test_chan.c - placeholder; the suite is being written.
 */
#include "weave_test.h"

START_TEST(placeholder)
{
    ck_assert_int_eq(0, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, placeholder);
    suite_add_tcase(s, tc);
    return wt_main(s);
}
