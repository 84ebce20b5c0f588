/*
 * bench_util.c - helpers shared by the benchmark programs.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s)
        return -1;
    for (const char *p = s; *p; p++) {
        unsigned d;

        if (*p < '0' || *p > '9')
            return -1;
        d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int64_t bench_percentile(const int64_t *sorted, size_t n, double p)
{
    /* Rank ceil(p/100 * n), 1-based, computed without floating-point
     * rounding surprises for the usual p (50, 99). */
    double exact = p / 100.0 * (double)n;
    size_t rank = (size_t)exact;

    if ((double)rank < exact)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

double bench_median(const double *sorted, size_t n)
{
    if (n % 2)
        return sorted[n / 2];
    return (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
}

int64_t bench_proc_status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t klen = strlen(key);
    int64_t v = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *end;
            long long x = strtoll(line + klen + 1, &end, 10);

            if (end != line + klen + 1 && x >= 0)
                v = (int64_t)x;
            break;
        }
    }
    (void)fclose(f);
    if (v < 0)
        errno = ENOENT;
    return v;
}

int64_t bench_maps_lines(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char buf[4096];
    int64_t lines = 0;
    size_t n;

    if (!f)
        return -1;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    if (ferror(f)) {
        (void)fclose(f);
        errno = EIO;
        return -1;
    }
    (void)fclose(f);
    return lines;
}

const char *bench_errno_name(int err)
{
    switch (err) {
    case EINVAL:
        return "EINVAL";
    case EPERM:
        return "EPERM";
    case ECANCELED:
        return "ECANCELED";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case EDEADLK:
        return "EDEADLK";
    case EBADF:
        return "EBADF";
    case ENOMEM:
        return "ENOMEM";
    case EBUSY:
        return "EBUSY";
    case ESRCH:
        return "ESRCH";
    case EMFILE:
        return "EMFILE";
    case ENFILE:
        return "ENFILE";
    case ENOSYS:
        return "ENOSYS";
    default:
        return "E?";
    }
}

/*
 * Match argv[*i] against a long option that takes a value, given either as
 * "--name VALUE" or "--name=VALUE". On a match, store the value in *val
 * (NULL when "--name" is the last argument), move *i to the last argument
 * used and return 1; otherwise return 0 and touch nothing.
 */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 < argc) {
        ++*i;
        *val = argv[*i];
    } else {
        *val = NULL;
    }
    return 1;
}

/* Store v (NULL when missing) as o's value; 0, or -1 if it is bad. */
static int opt_store(const struct bench_opt *o, const char *v)
{
    uint64_t n;

    if (o->str) {
        if (!v || !*v)
            return -1;
        *o->str = v;
        return 0;
    }
    if (o->choice) {
        for (int c = 0; v && o->choices[c]; c++) {
            if (strcmp(v, o->choices[c]) == 0) {
                *o->choice = c;
                return 0;
            }
        }
        return -1;
    }
    if (bench_parse_u64(v, 0, o->max, &n) != 0 || (n < o->min && !(o->zero_ok && n == 0)))
        return -1;
    if (o->u64)
        *o->u64 = n;
    else
        *o->u32 = (uint32_t)n;
    return 0;
}

_Noreturn void bench_bad_usage(const char *prog, void (*usage)(FILE *), const char *fmt,
                               const char *arg)
{
    (void)fprintf(stderr, "%s: ", prog);
    (void)fprintf(stderr, fmt, arg ? arg : "(missing)");
    (void)fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

void bench_parse_args(int argc, char **argv, const char *prog, void (*usage)(FILE *),
                      const struct bench_opt *opts, size_t nopts, const char *unknown)
{
    for (int i = 1; i < argc; i++) {
        const struct bench_opt *o = NULL;
        const char *v = NULL;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        for (size_t k = 0; k < nopts && !o; k++) {
            if (opts[k].flag ? strcmp(argv[i], opts[k].name) == 0
                             : opt_value(argc, argv, &i, opts[k].name, &v))
                o = &opts[k];
        }
        if (!o)
            bench_bad_usage(prog, usage, unknown ? unknown : "unknown argument '%s'", argv[i]);
        if (o->flag)
            *o->flag = true;
        else if (opt_store(o, v) != 0)
            bench_bad_usage(prog, usage, o->bad, v);
    }
}
