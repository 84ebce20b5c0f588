/*
 * embed.c - weave tasks inside a loop that is not weave's: a plain poll(2)
 * loop that reads stdin.
 *
 * The program's own loop is the boss. It watches two fds: stdin, which it
 * reads itself, and the scheduler's fd (weave_sched_fd), which becomes
 * readable when the scheduler has something to do: a post came, or a
 * timer or an fd event of one of its tasks is due. When that fd is
 * readable, or when the time weave_sched_step asked for has passed, the
 * loop calls weave_sched_step, which runs what can run and returns at
 * once; the loop never blocks anywhere but in poll.
 *
 * Tasks enter the scheduler through weave_post: a ticker, posted before
 * the loop starts, prints a line every second; each line read from stdin
 * is posted as a task that waits 400 ms (weave_sleep: only that task
 * waits) and prints the line uppercased. At the end of the input the
 * loop frees the scheduler: the tasks still alive are cancelled, and each
 * cleans up (a line still waiting says it was not answered).
 *
 * Usage: embed [--demo]
 *   --demo  instead of stdin, read a pipe that a thread of this program
 *           writes three lines into, about a second apart, then closes
 *           (for the tutorial, which runs it without a terminal)
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weave.h"

#define ANSWER_MS 400  /* a line's task waits this long before answering */
#define TICK_MS   1000 /* the ticker's period */
#define LINE_MAX_ 1024 /* longer lines are cut into pieces of this size */

/* What the tasks and the loop share. Both run on this thread (the tasks
 * only inside weave_sched_step or weave_sched_free), so no locking. */
static struct {
    int64_t t0_ms;       /* the start, CLOCK_MONOTONIC */
    unsigned read;       /* lines read */
    unsigned answered;   /* lines answered */
    unsigned unanswered; /* line tasks cancelled before their answer */
    unsigned ticks;
} st;

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds since the start, for the margin of each line. */
static long long ms(void)
{
    return (long long)(now_ms() - st.t0_ms);
}

/* ---- the tasks ---------------------------------------------------------- */

/* A ticker: a line every TICK_MS, until weave_sched_free cancels it. */
static void *ticker(void *arg)
{
    (void)arg;
    while (weave_sleep(TICK_MS) == 0)
        printf("[%5lld ms] ticker: tick %u\n", ms(), ++st.ticks);
    return NULL;
}

/* One line of input, owned by the task that answers it. */
struct line {
    size_t len;
    char text[]; /* len bytes and a NUL */
};

static void *answer(void *arg)
{
    struct line *l = arg;

    if (weave_sleep(ANSWER_MS) == 0) {
        for (size_t i = 0; i < l->len; i++)
            l->text[i] = (char)toupper((unsigned char)l->text[i]);
        printf("[%5lld ms] task: %s\n", ms(), l->text);
        st.answered++;
    } else { /* cancelled: the scheduler is being freed */
        printf("[%5lld ms] task: \"%s\" not answered: %s\n", ms(), l->text, strerror(errno));
        st.unanswered++;
    }
    free(l);
    return NULL;
}

/* ---- the loop ----------------------------------------------------------- */

/* Hand one line to the scheduler as a new task. */
static void post_line(weave_sched *s, const char *text, size_t len)
{
    struct line *l = malloc(sizeof(*l) + len + 1);

    st.read++;
    if (!l) {
        (void)fprintf(stderr, "embed: out of memory\n");
        return;
    }
    l->len = len;
    memcpy(l->text, text, len);
    l->text[len] = '\0';
    printf("[%5lld ms] loop: read \"%s\", posted it\n", ms(), l->text);
    if (weave_post(s, answer, l) != 0) {
        (void)fprintf(stderr, "embed: weave_post: %s\n", strerror(errno));
        free(l);
    }
}

/* Read what fd has and post every whole line; at the end of the input,
 * the rest as a last line. Returns false at the end of the input. */
static bool read_input(weave_sched *s, int fd, char *buf, size_t *have)
{
    ssize_t n = read(fd, buf + *have, LINE_MAX_ - *have);
    char *nl;

    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    *have += (size_t)n;
    while ((nl = memchr(buf, '\n', *have)) || *have == LINE_MAX_ || (n == 0 && *have > 0)) {
        size_t len = nl ? (size_t)(nl - buf) : *have;
        size_t used = nl ? len + 1 : len;

        post_line(s, buf, len > 0 && buf[len - 1] == '\r' ? len - 1 : len);
        memmove(buf, buf + used, *have - used);
        *have -= used;
    }
    return n > 0;
}

/* Poll stdin and the scheduler's fd; step the scheduler when its fd is
 * readable or the time it asked for has passed. Returns at the end of the
 * input, with the number of steps made. */
static unsigned long run_loop(weave_sched *s, int in_fd)
{
    char buf[LINE_MAX_];
    size_t have = 0;
    int64_t next_ms = 0, due = now_ms(); /* step at once: the ticker is posted */
    unsigned long steps = 0;

    for (;;) {
        struct pollfd p[2] = {{.fd = in_fd, .events = POLLIN},
                              {.fd = weave_sched_fd(s), .events = POLLIN}};
        int64_t left = due - now_ms();
        int timeout = next_ms < 0 ? -1 : left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        int n = poll(p, 2, timeout);

        if (n < 0 && errno != EINTR) {
            perror("embed: poll");
            break;
        }
        if (n > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) &&
            !read_input(s, in_fd, buf, &have)) {
            printf("[%5lld ms] loop: end of input: freeing the scheduler\n", ms());
            break;
        }
        if ((n > 0 && (p[1].revents & POLLIN)) || (next_ms >= 0 && now_ms() >= due)) {
            /* It returns the number of tasks alive, which this loop does
             * not need: the scheduler lives until the end of the input. */
            if (weave_sched_step(s, &next_ms) < 0) {
                perror("embed: weave_sched_step");
                break;
            }
            steps++;
            due = now_ms() + (next_ms > 0 ? next_ms : 0);
        }
    }
    return steps;
}

/* ---- --demo: the input comes from a thread ------------------------------ */

/* What the feeder thread writes, and when (ms after the start). The
 * times keep 200 ms or more between the lines the program prints, so that
 * their order is the same on a busy machine. */
static const struct {
    int64_t at_ms;
    const char *text; /* NULL: close the pipe, the end of the input */
} feed[] = {{200, "hello"}, {1300, "weave"}, {2300, "bye"}, {2500, NULL}};

static void *feeder(void *arg)
{
    int fd = (int)(intptr_t)arg;

    for (size_t i = 0; i < sizeof(feed) / sizeof(feed[0]); i++) {
        int64_t at = st.t0_ms + feed[i].at_ms;
        struct timespec ts = {(time_t)(at / 1000), (long)(at % 1000) * 1000000L};

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            continue;
        if (!feed[i].text || write(fd, feed[i].text, strlen(feed[i].text)) < 0 ||
            write(fd, "\n", 1) < 0)
            break;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    bool demo = argc == 2 && strcmp(argv[1], "--demo") == 0;
    int in_fd = STDIN_FILENO, pfd[2];
    pthread_t feed_thread;
    unsigned long steps;
    weave_sched *s;

    if (argc > 2 || (argc == 2 && !demo)) {
        (void)fprintf(stderr, "usage: embed [--demo]\n");
        return 2;
    }
    (void)setvbuf(stdout, NULL, _IOLBF, 0);
    /* With stdin closed, the scheduler's own fds could take its number. */
    if (!demo && fcntl(STDIN_FILENO, F_GETFD) < 0) {
        perror("embed: stdin");
        return 1;
    }
    if (!(s = weave_sched_new(NULL))) {
        perror("embed: weave_sched_new");
        return 1;
    }
    /* Posts made before the first step wait for it. */
    if (weave_post(s, ticker, NULL) != 0) {
        perror("embed: weave_post");
        (void)weave_sched_free(s);
        return 1;
    }
    st.t0_ms = now_ms();
    if (demo) {
        if (pipe(pfd) != 0 ||
            pthread_create(&feed_thread, NULL, feeder, (void *)(intptr_t)pfd[1]) != 0) {
            perror("embed: starting the feeder");
            (void)weave_sched_free(s);
            return 1;
        }
        in_fd = pfd[0];
    }
    printf("embed: a poll(2) loop reads %s and steps a weave scheduler; each line is posted\n"
           "       to the scheduler as a task that answers it %d ms later\n",
           demo ? "a pipe (--demo)" : "stdin", ANSWER_MS);

    steps = run_loop(s, in_fd);

    /* The tasks still alive are cancelled and run to their end here. */
    if (weave_sched_free(s) != 0)
        perror("embed: weave_sched_free");
    if (demo) {
        pthread_join(feed_thread, NULL);
        close(pfd[0]);
    }
    printf("embed: scheduler freed after %lu steps: %u lines read, %u answered, %u not; "
           "%u ticks\n",
           steps, st.read, st.answered, st.unanswered, st.ticks);
    return 0;
}
