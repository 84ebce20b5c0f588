/*
 * bench_util.h - helpers shared by the benchmark programs: argument
 * parsing, the monotonic clock, percentiles and /proc readings.
 *
 * Nothing here knows about weave; every bench links it next to the library.
 */
#ifndef WEAVE_BENCH_UTIL_H
#define WEAVE_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

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
 * Match argv[*i] against a long option that takes a value, given either as
 * "--name VALUE" or "--name=VALUE". On a match, store the value in *val
 * (NULL when "--name" is the last argument), move *i to the last argument
 * used and return 1; otherwise return 0 and touch nothing.
 */
int bench_opt_value(int argc, char **argv, int *i, const char *name, const char **val);

#endif /* WEAVE_BENCH_UTIL_H */
