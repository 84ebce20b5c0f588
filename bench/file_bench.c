/*
 * file_bench.c - what regular-file I/O costs through weave.
 *
 * Regular files cannot be polled, so weave_read first tries
 * preadv2(RWF_NOWAIT), which answers at once from the page cache, and hands
 * what would block, and every weave_write on filesystems that refuse
 * RWF_NOWAIT writes (ext4), to the scheduler's io_uring, or where there is
 * none to the offload pool (a worker thread reads or writes through a dup
 * of the fd and a buffer of its own, at most 1 MiB a call). The first part
 * puts numbers on the default path (the ring, where the kernel has it), for
 * a temporary
 * file (default 64 MiB, in a mkdtemp directory under --dir, default
 * $TMPDIR or /tmp) and block sizes of 4 KiB, 64 KiB and 1 MiB, comparing
 * plain read()/write() with weave_read()/weave_write() on the same file:
 *
 *   cached  sequential reads of the whole file, its pages in the cache:
 *           weave's RWF_NOWAIT fast path;
 *   cold    the same after dropping the file's pages (fdatasync, then
 *           posix_fadvise POSIX_FADV_DONTNEED; mincore checks that they
 *           are gone): what RWF_NOWAIT cannot serve goes to the ring;
 *   write   buffered writes of a new file of the same size (no fsync in the
 *           timing): every call goes to the ring.
 *
 * Each cell is the median of --passes passes, plain and weave alternating.
 * Per call: elapsed time / calls. Per-call p50 and p99 of the weave calls
 * tell the fast path (about the plain cost) from the offloaded one.
 *
 * Then the point of offloading: a ticker task sleeps 1 ms in a loop and
 * records the gaps between its wake-ups while another task moves the whole
 * file in 1 MiB blocks (cold read; write plus fdatasync), yielding between
 * blocks. With weave calls the ticker keeps ticking while a block is on a
 * worker; with plain calls every block, and the fdatasync, stalls the whole
 * thread, and the largest gap shows it.
 *
 * Everything runs inside one weave_run, plain calls included (nothing else
 * runs while they block, except in the ticker part).
 *
 * Last, the two paths side by side, each in a weave_run of its own (the
 * pool forced in the second with WEAVE_NO_IO_URING), on a cell grid:
 *
 *   append       100-byte weave_write appends to a log file opened
 *                O_APPEND, by 1 task and by 100 tasks sharing the fd (as
 *                a server's tasks share its log), against plain write(2)
 *                appends of the same size in the same run: over_plain_write
 *                is weave's time per append over plain write's;
 *   cold_read    4 KiB weave_read at random page-aligned offsets (each page
 *                once, POSIX_FADV_RANDOM, after POSIX_FADV_DONTNEED), by
 *                1, 16 and 64 tasks, each with its own fd;
 *   cached_read  the same with the file in the page cache: RWF_NOWAIT
 *                serves these on either path.
 *
 * Per cell: wall time per operation, operations per second, and CPU per
 * operation (getrusage of the whole process, user + system, over the
 * cell: the pool's workers and the kernel's io_uring workers included).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bench_util.h"
#include "weave.h"

#define MIB          ((uint64_t)1 << 20)
#define MAX_SIZE_MIB 65536u
#define MAX_PASSES   101u
#define NBLOCKS      3
#define TICK_US      1000 /* the ticker's sleep */

static const size_t block_sizes[NBLOCKS] = {4096, 65536, 1 << 20};

enum kase { CACHED, COLD, WRITE, NCASES };
enum mode { PLAIN, WEAVE, NMODES };

static const char *const case_names[NCASES] = {"cached", "cold", "write"};
static const char *const mode_names[NMODES] = {"plain", "weave"};

struct options {
    uint64_t size_mib;
    uint32_t passes;
    const char *dir;
    bool json;
    bool paths_only; /* only the io_uring-against-pool grid */
};

/* ---- the two paths, cell by cell ---------------------------------------- */

enum path { PATH_URING, PATH_POOL, NPATHS };
enum pop { OP_APPEND, OP_COLD, OP_CACHED, NPOPS };

static const char *const path_names[NPATHS] = {"io_uring", "pool"};
static const char *const pop_names[NPOPS] = {"append", "cold_read", "cached_read"};

#define APPEND_LEN  100
#define APPEND_OPS  20000u
#define READ_LEN    4096
#define NPATH_CELLS 7
#define MAX_TASKS   100

/* The grid: op and tasks of each cell, in print order. */
static const struct {
    enum pop op;
    unsigned tasks;
} path_grid[NPATH_CELLS] = {
    {OP_APPEND, 1}, {OP_APPEND, 100}, {OP_COLD, 1},    {OP_COLD, 16},
    {OP_COLD, 64},  {OP_CACHED, 1},   {OP_CACHED, 64},
};

struct path_cell {
    uint64_t ops;
    double us_per_op;     /* wall time / ops */
    double ops_per_s;     /* ops / wall time */
    double cpu_us_per_op; /* (user + system) / ops, whole process */
    double plain_us;      /* appends: plain write(2) of the same size, us per call */
    double resident_pct;  /* reads: file pages cached before the cell */
    const char *seen;     /* the path weave_stats reported */
};

/* One measured transfer (or the median of several). */
struct cell {
    double us_per_call;
    double mb_per_s;
    double p50_us; /* per-call latency */
    double p99_us;
    uint64_t calls;
    double resident_pct; /* cold: file pages still cached before the pass (max) */
};

/* One ticker experiment. */
struct tick_result {
    const char *what;
    double transfer_ms;
    double mb_per_s;
    uint64_t ticks;
    double max_gap_ms;
    double p99_gap_ms;
};

#define NTICKS 4

struct bench {
    const struct options *o;
    char dir[4096];     /* the mkdtemp directory */
    char data[4200];    /* the file read by the read cases */
    char scratch[4200]; /* the file the write cases make */
    uint64_t size;      /* bytes */
    char *buf;          /* 1 MiB, page-aligned */
    int64_t *lat;       /* per-call latencies of one pass, ns */
    uint64_t max_calls; /* entries of lat */
    struct cell cells[NCASES][NBLOCKS][NMODES];
    struct tick_result ticks[NTICKS];
    const char *fs; /* the directory's filesystem, by name */
    struct path_cell paths[NPATHS][NPATH_CELLS];
    char log[4200]; /* the append cells' log file */
    int err;
    const char *what;
};

static int fail(struct bench *b, const char *what)
{
    if (!b->err) {
        b->err = errno ? errno : EIO;
        b->what = what;
    }
    return -1;
}

/* ---- helpers ------------------------------------------------------------ */

static const char *fs_name(const char *path)
{
    struct statfs sf;

    if (statfs(path, &sf) != 0)
        return "unknown";
    switch ((unsigned long)sf.f_type) {
    case 0xEF53:
        return "ext2/3/4";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x01021994:
        return "tmpfs (page cache cannot be dropped: cold = cached)";
    case 0x794c7630:
        return "overlayfs";
    default:
        return "other";
    }
}

/* Percentage of fd's pages (size bytes) in the page cache, or -1. */
static double resident_pct(int fd, uint64_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (size_t)((size + (uint64_t)page - 1) / (uint64_t)page);
    unsigned char *vec = malloc(pages);
    void *map;
    size_t in = 0;

    if (!vec)
        return -1;
    map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        free(vec);
        return -1;
    }
    if (mincore(map, (size_t)size, vec) == 0)
        for (size_t i = 0; i < pages; i++)
            in += vec[i] & 1;
    else
        in = SIZE_MAX;
    munmap(map, (size_t)size);
    free(vec);
    return in == SIZE_MAX ? -1 : 100.0 * (double)in / (double)pages;
}

/* Write back and drop fd's pages from the page cache. */
static int drop_cache(int fd)
{
    int r;

    if (fdatasync(fd) != 0)
        return -1;
    r = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (r != 0) {
        errno = r;
        return -1;
    }
    return 0;
}

static double ns_to_us(int64_t ns)
{
    return (double)ns / 1e3;
}

/* ---- the measured transfers --------------------------------------------- */

/*
 * Read the whole file from offset 0 (or write size bytes) in blocks of bs,
 * with plain calls or weave's, timing every call. Fills *c.
 */
static int transfer(struct bench *b, int fd, enum kase k, enum mode m, size_t bs, struct cell *c)
{
    uint64_t done = 0, calls = 0;
    int64_t t0, t1;

    if (k != WRITE && lseek(fd, 0, SEEK_SET) != 0)
        return fail(b, "lseek");
    t0 = bench_now_ns();
    while (done < b->size) {
        size_t want = b->size - done < bs ? (size_t)(b->size - done) : bs;
        int64_t s = bench_now_ns();
        ssize_t n;

        if (k == WRITE)
            n = m == PLAIN ? write(fd, b->buf, want) : weave_write(fd, b->buf, want);
        else
            n = m == PLAIN ? read(fd, b->buf, want) : weave_read(fd, b->buf, want);
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* the file is shorter than it should be */
            return fail(b, k == WRITE ? "write" : "read");
        }
        if (calls < b->max_calls)
            b->lat[calls] = bench_now_ns() - s;
        calls++;
        done += (uint64_t)n;
    }
    t1 = bench_now_ns();
    c->calls = calls;
    c->us_per_call = ns_to_us(t1 - t0) / (double)calls;
    c->mb_per_s = (double)b->size / ((double)(t1 - t0) / 1e9) / 1e6;
    if (calls > b->max_calls)
        calls = b->max_calls;
    qsort(b->lat, (size_t)calls, sizeof(*b->lat), bench_cmp_i64);
    c->p50_us = ns_to_us(bench_percentile(b->lat, (size_t)calls, 50));
    c->p99_us = ns_to_us(bench_percentile(b->lat, (size_t)calls, 99));
    return 0;
}

/* One pass of case k, block bs, mode m. */
static int one_pass(struct bench *b, int rfd, enum kase k, enum mode m, size_t bs, struct cell *c)
{
    int fd, r;

    c->resident_pct = 0;
    if (k == CACHED)
        return transfer(b, rfd, k, m, bs, c);
    if (k == COLD) {
        if (drop_cache(rfd) != 0)
            return fail(b, "dropping the page cache");
        c->resident_pct = resident_pct(rfd, b->size);
        return transfer(b, rfd, k, m, bs, c);
    }
    fd = open(b->scratch, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(b, "open (scratch file)");
    r = transfer(b, fd, k, m, bs, c);
    /* Untimed: write the pages back, so that passes start alike. */
    if (r == 0 && fdatasync(fd) != 0)
        r = fail(b, "fdatasync");
    weave_close(fd);
    if (unlink(b->scratch) != 0 && r == 0)
        r = fail(b, "unlink");
    return r;
}

static int cmp_cell_time(const void *x, const void *y)
{
    double a = ((const struct cell *)x)->us_per_call, c = ((const struct cell *)y)->us_per_call;

    return (a > c) - (a < c);
}

/* The pass with the median time (the lower middle one for even counts),
 * with the highest residency seen over all passes. */
static void median_cell(struct cell *passes, uint32_t n, struct cell *out)
{
    double res = 0;

    for (uint32_t i = 0; i < n; i++)
        if (passes[i].resident_pct > res)
            res = passes[i].resident_pct;
    qsort(passes, n, sizeof(*passes), cmp_cell_time);
    *out = passes[(n - 1) / 2];
    out->resident_pct = res;
}

static int measure_all(struct bench *b, int rfd)
{
    struct cell *passes[NMODES];
    int r = 0;

    passes[PLAIN] = calloc(b->o->passes, sizeof(struct cell));
    passes[WEAVE] = calloc(b->o->passes, sizeof(struct cell));
    if (!passes[PLAIN] || !passes[WEAVE]) {
        free(passes[PLAIN]);
        free(passes[WEAVE]);
        errno = ENOMEM;
        return fail(b, "calloc");
    }
    for (int k = 0; k < NCASES && r == 0; k++) {
        struct cell warm;

        if (k == CACHED && transfer(b, rfd, CACHED, PLAIN, MIB, &warm) != 0)
            r = -1; /* bring the whole file into the cache */
        for (int bi = 0; bi < NBLOCKS && r == 0; bi++) {
            for (uint32_t p = 0; p < b->o->passes && r == 0; p++) {
                /* Alternate which mode goes first, pass by pass. */
                enum mode first = p % 2 == 0 ? PLAIN : WEAVE;
                enum mode second = first == PLAIN ? WEAVE : PLAIN;

                r = one_pass(b, rfd, (enum kase)k, first, block_sizes[bi], &passes[first][p]);
                if (r == 0)
                    r = one_pass(b, rfd, (enum kase)k, second, block_sizes[bi], &passes[second][p]);
            }
            for (int m = 0; m < NMODES && r == 0; m++)
                median_cell(passes[m], b->o->passes, &b->cells[k][bi][m]);
        }
    }
    free(passes[PLAIN]);
    free(passes[WEAVE]);
    return r;
}

/* ---- the ticker --------------------------------------------------------- */

struct ticker {
    int64_t *at; /* when each wake-up happened, ns */
    size_t cap;
    size_t n;
};

static void *ticker_main(void *arg)
{
    struct ticker *t = arg;

    while (weave_sleep_us(TICK_US) == 0)
        if (t->n < t->cap)
            t->at[t->n++] = bench_now_ns();
    return NULL;
}

/* An fdatasync's outcome. */
struct sync_call {
    int fd;
    int rc;  /* fdatasync's result */
    int err; /* its errno */
};

static void *fdatasync_call(void *arg)
{
    struct sync_call *c = arg;

    c->rc = fdatasync(c->fd);
    c->err = errno;
    return NULL;
}

/*
 * Move the whole file in 1 MiB blocks while the ticker runs: read it cold
 * (writing = false) or write it and fdatasync (writing = true), with weave's
 * calls or plain ones (yielding after every block).
 */
static int ticker_run(struct bench *b, int rfd, bool writing, enum mode m, struct tick_result *res)
{
    struct ticker t = {NULL, 0, 0};
    weave_task *task;
    uint64_t done = 0;
    int64_t t0, t1;
    int fd = rfd, r = 0;

    if (writing) {
        fd = open(b->scratch, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            return fail(b, "open (scratch file)");
    } else if (drop_cache(rfd) != 0 || lseek(rfd, 0, SEEK_SET) != 0) {
        return fail(b, "dropping the page cache");
    }
    t.cap = 1000000;
    t.at = malloc((t.cap + 2) * sizeof(*t.at)); /* room for t0 and t1 */
    if (!t.at || !(task = weave_spawn(ticker_main, &t))) {
        free(t.at);
        if (writing)
            weave_close(fd);
        return fail(b, "starting the ticker");
    }
    (void)weave_sleep_us((int64_t)3 * TICK_US); /* let it settle into its rhythm */
    t.n = 0;
    t.at[t.n++] = t0 = bench_now_ns(); /* gaps count from the start... */
    while (done < b->size && r == 0) {
        ssize_t n;

        if (writing)
            n = m == WEAVE ? weave_write(fd, b->buf, MIB) : (ssize_t)write(fd, b->buf, MIB);
        else
            n = m == WEAVE ? weave_read(fd, b->buf, MIB) : read(fd, b->buf, MIB);
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            r = fail(b, writing ? "write" : "read");
            break;
        }
        done += (uint64_t)n;
        /* Both modes yield between blocks: a weave_read served from the
         * cache returns without letting other tasks run, as read() does. */
        (void)weave_yield();
    }
    if (r == 0 && writing) {
        /* On this task's stack: nothing cancels this task while it waits. */
        struct sync_call sc = {fd, 0, 0};

        if (m == WEAVE) {
            sc.rc = weave_fdatasync(fd);
            sc.err = errno;
        } else {
            fdatasync_call(&sc);
        }
        if (r == 0 && sc.rc != 0) {
            errno = sc.err;
            r = fail(b, "fdatasync");
        }
    }
    t1 = bench_now_ns();
    (void)weave_cancel(task);
    (void)weave_join(task, NULL);
    if (writing) {
        weave_close(fd);
        (void)unlink(b->scratch);
    }
    if (r == 0) {
        res->what = writing ? (m == WEAVE ? "weave_write x1MiB + weave_fdatasync"
                                          : "write() x1MiB + fdatasync(), in a task")
                            : (m == WEAVE ? "weave_read x1MiB, cold cache"
                                          : "read() x1MiB, cold cache, in a task");
        res->transfer_ms = (double)(t1 - t0) / 1e6;
        res->mb_per_s = (double)b->size / ((double)(t1 - t0) / 1e9) / 1e6;
        res->ticks = t.n - 1;
        t.at[t.n++] = t1; /* ...to the end, so a stall at either end counts */
        for (size_t i = 0; i + 1 < t.n; i++)
            t.at[i] = t.at[i + 1] - t.at[i];
        qsort(t.at, t.n - 1, sizeof(*t.at), bench_cmp_i64);
        res->max_gap_ms = (double)t.at[t.n - 2] / 1e6;
        res->p99_gap_ms = (double)bench_percentile(t.at, t.n - 1, 99) / 1e6;
    }
    free(t.at);
    return r;
}

/* ---- the two paths -------------------------------------------------------- */

struct path_run {
    struct bench *b;
    enum path path;
    int err; /* first failure's errno in a worker task, or 0 */
    const char *what;
};

struct worker {
    struct path_run *pr;
    enum pop op;
    int fd;             /* appends: the shared log fd; reads: -1 (opens its own) */
    const off_t *offs;  /* reads: this task's offsets */
    uint64_t n;         /* calls to make */
    char buf[READ_LEN]; /* reads land here; appends write from here */
};

static void worker_fail(struct path_run *pr, const char *what)
{
    if (!pr->err) {
        pr->err = errno ? errno : EIO;
        pr->what = what;
    }
}

static void *path_worker(void *arg)
{
    struct worker *w = arg;
    int fd = w->fd;

    if (w->op != OP_APPEND) {
        fd = open(w->pr->b->data, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            worker_fail(w->pr, "open (data file)");
            return NULL;
        }
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM); /* no readahead */
    }
    for (uint64_t i = 0; i < w->n && !w->pr->err; i++) {
        ssize_t n;

        if (w->op == OP_APPEND) {
            n = weave_write(fd, w->buf, APPEND_LEN);
            if (n != APPEND_LEN)
                worker_fail(w->pr, "weave_write (append)");
            continue;
        }
        if (lseek(fd, w->offs[i], SEEK_SET) != w->offs[i]) {
            worker_fail(w->pr, "lseek");
            break;
        }
        n = weave_read(fd, w->buf, READ_LEN);
        if (n != READ_LEN) {
            if (n >= 0)
                errno = EIO;
            worker_fail(w->pr, "weave_read");
        }
    }
    if (w->op != OP_APPEND)
        weave_close(fd);
    return NULL;
}

static double cpu_us(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

/* Plain write(2) appends of APPEND_LEN bytes, us per call (on the thread:
 * nothing else runs meanwhile). */
static double plain_append_us(struct bench *b)
{
    char line[APPEND_LEN];
    int fd = open(b->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    int64_t t0;
    double us;

    if (fd < 0)
        return -1;
    memset(line, 'p', sizeof(line));
    t0 = bench_now_ns();
    for (unsigned i = 0; i < APPEND_OPS; i++)
        if (write(fd, line, sizeof(line)) != (ssize_t)sizeof(line)) {
            close(fd);
            return -1;
        }
    us = (double)(bench_now_ns() - t0) / 1e3 / APPEND_OPS;
    close(fd);
    return us;
}

/* One cell: spawn the tasks, time them, fill *c. */
static int path_cell_run(struct path_run *pr, enum pop op, unsigned tasks, struct path_cell *c)
{
    struct bench *b = pr->b;
    static struct worker workers[MAX_TASKS];
    weave_task *t[MAX_TASKS];
    uint64_t pages = b->size / READ_LEN, total;
    off_t *offs = NULL;
    int log = -1, rfd = -1;
    int64_t t0, t1;
    double cpu0;
    weave_stats st;

    memset(c, 0, sizeof(*c));
    if (op == OP_APPEND) {
        total = APPEND_OPS;
        c->plain_us = plain_append_us(b);
        log = open(b->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        if (c->plain_us < 0 || log < 0)
            return fail(b, "open (log file)");
    } else {
        /* Each page at most once per cell: a page read before is cached. */
        total = op == OP_CACHED ? 50000 : (uint64_t)(tasks == 1 ? 1000 : tasks == 16 ? 4000 : 8000);
        if (total > pages && op == OP_COLD)
            total = pages;
        offs = malloc(total * sizeof(*offs));
        rfd = open(b->data, O_RDONLY | O_CLOEXEC);
        if (!offs || rfd < 0) {
            free(offs);
            if (rfd >= 0)
                close(rfd);
            return fail(b, "setting up the reads");
        }
        {
            /* A random permutation's first `total` pages (cached: any). */
            uint64_t *perm = malloc(pages * sizeof(*perm)), x = 0x2545f4914f6cdd1du + tasks;

            if (!perm) {
                free(offs);
                close(rfd);
                errno = ENOMEM;
                return fail(b, "malloc");
            }
            for (uint64_t i = 0; i < pages; i++)
                perm[i] = i;
            for (uint64_t i = pages - 1; i > 0; i--) {
                uint64_t j, tmp;

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                j = x % (i + 1);
                tmp = perm[i];
                perm[i] = perm[j];
                perm[j] = tmp;
            }
            for (uint64_t i = 0; i < total; i++)
                offs[i] = (off_t)(perm[i % pages] * READ_LEN);
            free(perm);
        }
        if (op == OP_COLD) {
            if (drop_cache(rfd) != 0) {
                free(offs);
                close(rfd);
                return fail(b, "dropping the page cache");
            }
        } else {
            struct cell warm;

            if (transfer(b, rfd, CACHED, PLAIN, MIB, &warm) != 0) {
                free(offs);
                close(rfd);
                return -1;
            }
        }
        c->resident_pct = resident_pct(rfd, b->size);
    }
    for (unsigned i = 0; i < tasks; i++) {
        workers[i] = (struct worker){.pr = pr,
                                     .op = op,
                                     .fd = log,
                                     .offs = offs ? offs + (total / tasks) * i : NULL,
                                     .n = total / tasks};
        memset(workers[i].buf, 'w', sizeof(workers[i].buf));
    }
    total = (total / tasks) * tasks;
    cpu0 = cpu_us();
    t0 = bench_now_ns();
    for (unsigned i = 0; i < tasks; i++)
        if (!(t[i] = weave_spawn(path_worker, &workers[i]))) {
            worker_fail(pr, "weave_spawn");
            tasks = i;
            break;
        }
    for (unsigned i = 0; i < tasks; i++)
        (void)weave_join(t[i], NULL);
    t1 = bench_now_ns();
    c->cpu_us_per_op = (cpu_us() - cpu0) / (double)total;
    c->ops = total;
    c->us_per_op = (double)(t1 - t0) / 1e3 / (double)total;
    c->ops_per_s = (double)total / ((double)(t1 - t0) / 1e9);
    c->seen = "undecided";
    if (weave_get_stats(&st) == 0 && st.file_io_path != WEAVE_FILE_IO_UNDECIDED)
        c->seen = st.file_io_path == WEAVE_FILE_IO_URING ? "io_uring" : "pool";
    free(offs);
    if (rfd >= 0)
        close(rfd);
    if (log >= 0)
        weave_close(log);
    if (pr->err) {
        errno = pr->err;
        return fail(b, pr->what);
    }
    return 0;
}

static void *paths_main(void *arg)
{
    struct path_run *pr = arg;

    for (int i = 0; i < NPATH_CELLS; i++)
        if (path_cell_run(pr, path_grid[i].op, path_grid[i].tasks, &pr->b->paths[pr->path][i]) != 0)
            break;
    return NULL;
}

/* Both paths, each in a scheduler of its own. */
static int measure_paths(struct bench *b)
{
    for (int p = 0; p < NPATHS && !b->err; p++) {
        weave_run_opts o;
        struct path_run pr = {b, (enum path)p, 0, NULL};

        memset(&o, 0, sizeof(o));
        o.flags = p == PATH_POOL ? WEAVE_NO_IO_URING : 0;
        if (weave_run_with(&o, paths_main, &pr, NULL) != 0)
            return fail(b, "weave_run_with");
    }
    (void)unlink(b->log);
    return b->err ? -1 : 0;
}

static void print_paths(const struct bench *b)
{
    printf("\npaths: io_uring against the offload pool (forced with WEAVE_NO_IO_URING), each in a "
           "weave_run of its own\n"
           "       append      = %d-byte weave_write to one O_APPEND log fd shared by the tasks, "
           "%u in all;\n"
           "                     plain = write(2) of the same size in the same run\n"
           "       cold_read   = %d KiB weave_read at random offsets, each page once, after "
           "POSIX_FADV_DONTNEED (own fd per task)\n"
           "       cached_read = the same, file in the page cache (RWF_NOWAIT on both paths)\n"
           "       us/op = wall / ops; CPU us/op = getrusage user+sys of the process / ops "
           "(workers included)\n\n",
           APPEND_LEN, APPEND_OPS, READ_LEN / 1024);
    printf("%-9s %-12s %5s %7s %9s %10s %9s %9s %9s %9s\n", "path", "op", "tasks", "ops", "us/op",
           "ops/s", "CPU us/op", "plain", "over", "resident");
    printf("%-9s %-12s %5s %7s %9s %10s %9s %9s %9s %9s\n", "", "", "", "", "", "", "", "us/write",
           "plain", "(%)");
    for (int p = 0; p < NPATHS; p++)
        for (int i = 0; i < NPATH_CELLS; i++) {
            const struct path_cell *c = &b->paths[p][i];
            char plain[16] = "-", over[16] = "-", res[16] = "-";

            if (path_grid[i].op == OP_APPEND) {
                (void)snprintf(plain, sizeof(plain), "%.2f", c->plain_us);
                (void)snprintf(over, sizeof(over), "%.2f", c->us_per_op / c->plain_us);
            } else {
                (void)snprintf(res, sizeof(res), "%.1f", c->resident_pct);
            }
            printf("%-9s %-12s %5u %7llu %9.2f %10.0f %9.2f %9s %9s %9s%s\n", path_names[p],
                   pop_names[path_grid[i].op], path_grid[i].tasks, (unsigned long long)c->ops,
                   c->us_per_op, c->ops_per_s, c->cpu_us_per_op, plain, over, res,
                   strcmp(c->seen, path_names[p]) != 0 ? "  (ran on the pool: no ring)" : "");
        }
    printf("\nio_uring over pool (throughput):");
    for (int i = 0; i < NPATH_CELLS; i++)
        printf("  %s/%u %.2fx", pop_names[path_grid[i].op], path_grid[i].tasks,
               b->paths[PATH_URING][i].ops_per_s / b->paths[PATH_POOL][i].ops_per_s);
    printf("\n");
}

static void print_paths_json(const struct bench *b)
{
    for (int p = 0; p < NPATHS; p++)
        for (int i = 0; i < NPATH_CELLS; i++) {
            const struct path_cell *c = &b->paths[p][i];

            printf("{\"bench\":\"file_bench\",\"path\":\"%s\",\"op\":\"%s\",\"tasks\":%u,"
                   "\"ops\":%llu,\"us_per_op\":%.3f,\"ops_per_s\":%.1f,\"cpu_us_per_op\":%.3f,"
                   "\"path_seen\":\"%s\"",
                   path_names[p], pop_names[path_grid[i].op], path_grid[i].tasks,
                   (unsigned long long)c->ops, c->us_per_op, c->ops_per_s, c->cpu_us_per_op,
                   c->seen);
            if (path_grid[i].op == OP_APPEND)
                printf(",\"bytes\":%d,\"plain_write_us\":%.3f,\"over_plain_write\":%.3f",
                       APPEND_LEN, c->plain_us, c->us_per_op / c->plain_us);
            else
                printf(",\"bytes\":%d,\"resident_pct\":%.1f,\"over_pool\":%.3f", READ_LEN,
                       c->resident_pct, c->ops_per_s / b->paths[PATH_POOL][i].ops_per_s);
            printf("}\n");
        }
}

/* ---- setup and the main task -------------------------------------------- */

static int make_data_file(struct bench *b)
{
    int fd = open(b->data, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    uint64_t done = 0, x = 0x9e3779b97f4a7c15u;

    if (fd < 0)
        return fail(b, "open (data file)");
    while (done < b->size) {
        size_t want = b->size - done < MIB ? (size_t)(b->size - done) : (size_t)MIB;
        ssize_t n;

        /* Bytes that no filesystem can compress or deduplicate away. */
        for (size_t i = 0; i + 8 <= want; i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(b->buf + i, &x, 8);
        }
        n = write(fd, b->buf, want);
        if (n <= 0) {
            close(fd);
            return fail(b, "write (data file)");
        }
        done += (uint64_t)n;
    }
    if (fdatasync(fd) != 0) {
        close(fd);
        return fail(b, "fdatasync (data file)");
    }
    close(fd);
    return 0;
}

static void *bench_main(void *arg)
{
    struct bench *b = arg;
    int rfd = open(b->data, O_RDONLY | O_CLOEXEC);
    static const bool tick_write[NTICKS] = {false, false, true, true};
    static const enum mode tick_mode[NTICKS] = {WEAVE, PLAIN, WEAVE, PLAIN};

    if (rfd < 0) {
        fail(b, "open (data file)");
        return NULL;
    }
    if (b->o->paths_only) {
        weave_close(rfd);
        return NULL;
    }
    if (measure_all(b, rfd) == 0)
        for (int i = 0; i < NTICKS; i++)
            if (ticker_run(b, rfd, tick_write[i], tick_mode[i], &b->ticks[i]) != 0)
                break;
    weave_close(rfd);
    return NULL;
}

/* ---- output ------------------------------------------------------------- */

static void block_name(size_t bs, char *buf, size_t len)
{
    if (bs >= MIB)
        (void)snprintf(buf, len, "%zu MiB", bs / (size_t)MIB);
    else
        (void)snprintf(buf, len, "%zu KiB", bs / 1024);
}

static void print_table(const struct bench *b)
{
    const struct options *o = b->o;

    if (o->paths_only) {
        printf("file_bench: regular-file I/O through weave, file=%llu MiB in %s (%s)\n",
               (unsigned long long)o->size_mib, b->dir, b->fs);
        print_paths(b);
        return;
    }

    printf("file_bench: regular-file I/O, plain read()/write() vs weave_read()/weave_write() "
           "(weave's path: %s)\n",
           b->paths[PATH_URING][0].seen ? b->paths[PATH_URING][0].seen : "?");
    printf("parameters: file=%llu MiB in %s (%s), blocks 4 KiB / 64 KiB / 1 MiB, passes=%u "
           "(median, plain and weave alternating), offload threads=4 (default)\n",
           (unsigned long long)o->size_mib, b->dir, b->fs, o->passes);
    printf("cases: cached = sequential reads, file in the page cache (weave: "
           "preadv2(RWF_NOWAIT) fast path)\n"
           "       cold   = the same after fdatasync + POSIX_FADV_DONTNEED (weave: io_uring, "
           "else the pool, for what RWF_NOWAIT cannot serve);\n"
           "                'resident' = the file's pages still cached before a pass (mincore, "
           "max over passes)\n"
           "       write  = buffered writes of a new file, no fsync timed (weave: every call "
           "through io_uring, else the pool)\n"
           "us/call = elapsed / calls; MB/s = 10^6 bytes per second; p50/p99 = per-call "
           "latency of the weave calls\n\n");
    printf("%-7s %-7s %7s %9s %9s %7s %9s %9s %9s %9s %9s\n", "case", "block", "calls", "plain",
           "weave", "weave/", "plain", "weave", "weave", "weave", "resident");
    printf("%-7s %-7s %7s %9s %9s %7s %9s %9s %9s %9s %9s\n", "", "", "", "(us/call)", "(us/call)",
           "plain", "(MB/s)", "(MB/s)", "p50 (us)", "p99 (us)", "(%)");
    for (int k = 0; k < NCASES; k++) {
        for (int bi = 0; bi < NBLOCKS; bi++) {
            const struct cell *p = &b->cells[k][bi][PLAIN], *w = &b->cells[k][bi][WEAVE];
            char bn[32], res[16] = "-";

            block_name(block_sizes[bi], bn, sizeof(bn));
            if (k == COLD)
                (void)snprintf(res, sizeof(res), "%.1f",
                               p->resident_pct > w->resident_pct ? p->resident_pct
                                                                 : w->resident_pct);
            printf("%-7s %-7s %7llu %9.2f %9.2f %7.2f %9.0f %9.0f %9.2f %9.2f %9s\n", case_names[k],
                   bn, (unsigned long long)w->calls, p->us_per_call, w->us_per_call,
                   w->us_per_call / p->us_per_call, p->mb_per_s, w->mb_per_s, w->p50_us, w->p99_us,
                   res);
        }
    }
    printf("\nticker: a task sleeping %d us in a loop while another task moves the whole file "
           "in 1 MiB blocks;\n"
           "        gap = time between two ticker wake-ups (ideal %.1f ms); the mover yields "
           "between blocks\n\n",
           TICK_US, TICK_US / 1000.0);
    printf("%-44s %10s %8s %7s %7s %10s %10s\n", "transfer", "time", "", "ticks", "ticks",
           "max gap", "p99 gap");
    printf("%-44s %10s %8s %7s %7s %10s %10s\n", "", "(ms)", "(MB/s)", "", "(ideal)", "(ms)",
           "(ms)");
    for (int i = 0; i < NTICKS; i++) {
        const struct tick_result *t = &b->ticks[i];
        printf("%-44s %10.1f %8.0f %7llu %7.0f %10.2f %10.2f\n", t->what, t->transfer_ms,
               t->mb_per_s, (unsigned long long)t->ticks, t->transfer_ms * 1000.0 / TICK_US,
               t->max_gap_ms, t->p99_gap_ms);
    }
    print_paths(b);
}

static void print_json(const struct bench *b)
{
    print_paths_json(b);
    if (b->o->paths_only)
        return;
    for (int k = 0; k < NCASES; k++)
        for (int bi = 0; bi < NBLOCKS; bi++)
            for (int m = 0; m < NMODES; m++) {
                const struct cell *c = &b->cells[k][bi][m];
                printf("{\"bench\":\"file_bench\",\"case\":\"%s\",\"mode\":\"%s\",\"block\":%zu,"
                       "\"size_mib\":%llu,\"passes\":%u,\"calls\":%llu,\"us_per_call\":%.3f,"
                       "\"mb_per_s\":%.1f,\"p50_us\":%.3f,\"p99_us\":%.3f,"
                       "\"resident_pct\":%.1f}\n",
                       case_names[k], mode_names[m], block_sizes[bi],
                       (unsigned long long)b->o->size_mib, b->o->passes,
                       (unsigned long long)c->calls, c->us_per_call, c->mb_per_s, c->p50_us,
                       c->p99_us, c->resident_pct);
            }
    for (int i = 0; i < NTICKS; i++) {
        const struct tick_result *t = &b->ticks[i];
        printf("{\"bench\":\"file_bench\",\"case\":\"ticker\",\"transfer\":\"%s\","
               "\"size_mib\":%llu,\"tick_us\":%d,\"time_ms\":%.3f,\"mb_per_s\":%.1f,"
               "\"ticks\":%llu,\"max_gap_ms\":%.3f,\"p99_gap_ms\":%.3f}\n",
               t->what, (unsigned long long)b->o->size_mib, TICK_US, t->transfer_ms, t->mb_per_s,
               (unsigned long long)t->ticks, t->max_gap_ms, t->p99_gap_ms);
    }
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
    (void)fprintf(
        f,
        "usage: file_bench [--size-mib N] [--passes P] [--dir D] [--json] [--paths-only]\n"
        "  --size-mib N  size of the temporary file (1..%u, default 64)\n"
        "  --passes P    passes per cell, median reported (1..%u, default 3)\n"
        "  --dir D       where to make the temporary directory (default $TMPDIR or "
        "/tmp;\n"
        "                a disk, not tmpfs, for the cold case to mean anything)\n"
        "  --json        one JSON object per line instead of the tables\n"
        "  --paths-only  only the io_uring-against-pool grid\n",
        MAX_SIZE_MIB, MAX_PASSES);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    const char *tmp = getenv("TMPDIR");
    const struct bench_opt opts[] = {
        {.name = "--json", .flag = &o->json},
        {.name = "--paths-only", .flag = &o->paths_only},
        {.name = "--size-mib",
         .u64 = &o->size_mib,
         .min = 1,
         .max = MAX_SIZE_MIB,
         .bad = "bad argument list"},
        {.name = "--passes",
         .u32 = &o->passes,
         .min = 1,
         .max = MAX_PASSES,
         .bad = "bad argument list"},
        {.name = "--dir", .str = &o->dir, .bad = "bad argument list"},
    };

    o->size_mib = 64;
    o->passes = 3;
    o->dir = tmp && *tmp ? tmp : "/tmp";
    o->json = false;
    o->paths_only = false;
    bench_parse_args(argc, argv, "file_bench", usage, opts, sizeof(opts) / sizeof(opts[0]),
                     "bad argument list");
}

int main(int argc, char **argv)
{
    struct options o;
    struct bench *b = calloc(1, sizeof(struct bench));
    void *buf = NULL;
    int status = 0, rc;

    parse_args(argc, argv, &o);
    if (!b) {
        (void)fprintf(stderr, "file_bench: out of memory\n");
        return 1;
    }
    b->o = &o;
    b->size = o.size_mib * MIB;
    b->max_calls = b->size / block_sizes[0] + 1;
    b->lat = malloc((size_t)b->max_calls * sizeof(*b->lat));
    rc = posix_memalign(&buf, 4096, (size_t)MIB);
    if (rc != 0 || !b->lat) {
        (void)fprintf(stderr, "file_bench: out of memory\n");
        free(b->lat);
        free(b);
        return 1;
    }
    b->buf = buf;
    if ((size_t)snprintf(b->dir, sizeof(b->dir), "%s/weave-file-bench.XXXXXX", o.dir) >=
            sizeof(b->dir) ||
        !mkdtemp(b->dir)) {
        (void)fprintf(stderr, "file_bench: cannot make a directory in %s: %s\n", o.dir,
                      strerror(errno));
        free(b->lat);
        free(buf);
        free(b);
        return 1;
    }
    (void)snprintf(b->data, sizeof(b->data), "%s/data", b->dir);
    (void)snprintf(b->scratch, sizeof(b->scratch), "%s/scratch", b->dir);
    (void)snprintf(b->log, sizeof(b->log), "%s/log", b->dir);
    b->fs = fs_name(b->dir);

    if (make_data_file(b) == 0 && weave_run(bench_main, b, NULL) != 0)
        fail(b, "weave_run");
    if (!b->err)
        (void)measure_paths(b);
    if (b->err) {
        (void)fprintf(stderr, "file_bench: %s: %s\n", b->what, strerror(b->err));
        status = 1;
    } else {
        if (o.json)
            print_json(b);
        else
            print_table(b);
        if (fflush(stdout) != 0)
            status = 1;
    }
    (void)unlink(b->scratch);
    (void)unlink(b->log);
    (void)unlink(b->data);
    (void)rmdir(b->dir);
    free(b->lat);
    free(buf);
    free(b);
    return status;
}
