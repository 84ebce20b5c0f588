/*
 * bench_util.h - helpers shared by the benchmark programs: argument
 * parsing, the monotonic clock, percentiles and /proc readings.
 *
 * Nothing here knows about weave; every bench links it next to the library.
 */
#ifndef WEAVE_BENCH_UTIL_H
#define WEAVE_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/*
 * Parse s as a decimal unsigned number in [min, max]: digits only (no sign,
 * no spaces, no suffix). Returns 0 and stores it in *out, or -1.
 */
int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* qsort comparator for int64_t, ascending. */
int bench_cmp_i64(const void *a, const void *b);

/*
 * The nearest-rank percentile p (0 < p <= 100) of sorted[0..n): the
 * smallest value that at least p% of the samples do not exceed. n > 0.
 */
int64_t bench_percentile(const int64_t *sorted, size_t n, double p);

/* The median of sorted[0..n) (mean of the two middle values when n is
 * even). n > 0. */
double bench_median(const double *sorted, size_t n);

/* qsort comparator for double, ascending. */
int bench_cmp_double(const void *a, const void *b);

/*
 * The value in KiB of a "Key:   1234 kB" line of /proc/self/status (key
 * without the colon, e.g. "VmHWM"). Returns it, or -1 with errno set.
 */
int64_t bench_proc_status_kib(const char *key);

/* Lines of /proc/self/maps (one per mapping), or -1 with errno set. */
int64_t bench_maps_lines(void);

/* The symbolic name of err ("ENOMEM", ...) for the values weave and the
 * benches can meet; "E?" for any other. */
const char *bench_errno_name(int err);

/*
 * One command-line option of a bench, for bench_parse_args. Exactly one of
 * the destinations is set, and says what the option takes:
 *   flag      nothing: "--name" sets *flag to true;
 *   u64, u32  a whole number from min to max (bench_parse_u64), or 0 as
 *             well with zero_ok;
 *   str       a string that is not empty;
 *   choice    one of choices[] (NULL-terminated): *choice is its index.
 * A value comes as "--name VALUE" or "--name=VALUE". bad is what is said of
 * a missing or bad value: a printf format whose one %s is the value.
 */
struct bench_opt {
    const char *name;
    bool *flag;
    uint64_t *u64;
    uint32_t *u32;
    const char **str;
    int *choice;
    const char *const *choices;
    uint64_t min, max;
    bool zero_ok;
    const char *bad;
};

/*
 * Print "prog: ", then fmt with arg ("(missing)" when NULL) for its one %s,
 * then the usage, on stderr, and exit with status 2.
 */
_Noreturn void bench_bad_usage(const char *prog, void (*usage)(FILE *), const char *fmt,
                               const char *arg);

/*
 * Parse argv[1..argc) against opts[0..nopts), storing each option's value
 * as it comes (a later one wins). "--help" and "-h" print the usage on
 * stdout and exit 0. An argument that is no option fails with unknown (a
 * format whose %s is the argument; NULL: "unknown argument '%s'"), a bad
 * value with its option's bad, through bench_bad_usage.
 */
void bench_parse_args(int argc, char **argv, const char *prog, void (*usage)(FILE *),
                      const struct bench_opt *opts, size_t nopts, const char *unknown);

#endif /* WEAVE_BENCH_UTIL_H */
