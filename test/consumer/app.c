/*
 * app.c - the program every consumer test builds against weave, the way a
 * user's program would: it runs a few tasks that sleep and yield, joins
 * them, and checks that the library it runs with is the version its header
 * declares. It prints one line saying what it did, and exits non-zero if
 * anything went wrong.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <weave.h>

enum { APP_TASKS = 3, APP_STEPS = 4 };

static void *worker(void *arg)
{
    int *steps = arg;

    for (int i = 0; i < APP_STEPS; i++) {
        if (weave_sleep(1) != 0 || weave_yield() != 0)
            return "a sleep or a yield failed";
        ++*steps;
    }
    return NULL;
}

static void *app_main(void *arg)
{
    int *steps = arg;
    weave_task *t[APP_TASKS];
    void *failed = NULL;

    for (int i = 0; i < APP_TASKS; i++) {
        t[i] = weave_spawn(worker, &steps[i]);
        if (t[i] == NULL)
            return "weave_spawn failed";
    }
    for (int i = 0; i < APP_TASKS; i++) {
        void *r;

        if (weave_join(t[i], &r) != 0)
            return "weave_join failed";
        if (r != NULL)
            failed = r;
    }
    return failed;
}

int main(int argc, char **argv)
{
    const char *slash = strrchr(argv[0], '/');
    const char *name = slash != NULL ? slash + 1 : argv[0];
    char header[32];
    int steps[APP_TASKS] = {0};
    void *failed = NULL;
    int total = 0;

    (void)argc;
    (void)snprintf(header, sizeof header, "%d.%d.%d", WEAVE_VERSION_MAJOR, WEAVE_VERSION_MINOR,
                   WEAVE_VERSION_PATCH);
    if (strcmp(weave_version(), header) != 0 || weave_version_number() != WEAVE_VERSION_NUMBER) {
        (void)fprintf(stderr, "%s: the library is weave %s (%d), the header %s (%d)\n", name,
                      weave_version(), weave_version_number(), header, WEAVE_VERSION_NUMBER);
        return 1;
    }
    if (weave_run(app_main, steps, &failed) != 0) {
        perror("weave_run");
        return 1;
    }
    if (failed != NULL) {
        (void)fprintf(stderr, "%s: %s\n", name, (const char *)failed);
        return 1;
    }
    for (int i = 0; i < APP_TASKS; i++)
        total += steps[i];
    if (total != APP_TASKS * APP_STEPS) {
        (void)fprintf(stderr, "%s: %d steps of %d\n", name, total, APP_TASKS * APP_STEPS);
        return 1;
    }
    printf("%s: weave %s (header %s): %d tasks slept and yielded %d times each, all joined\n", name,
           weave_version(), header, APP_TASKS, APP_STEPS);
    return 0;
}
