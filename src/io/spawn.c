/*
 * spawn.c - starting a child as weave_proc_opts says (for proc.c): the
 * check of the program and working directory before the child starts, the
 * pipes, and posix_spawn's file actions and attributes.
 *
 * The child is started with posix_spawn (glibc clones with CLONE_VM |
 * CLONE_VFORK, so nothing of a large parent is copied). What exec would
 * report (ENOENT, EACCES, ENOTDIR) is found before, in the parent: glibc
 * reports it from the child too, but not under every tool (valgrind makes
 * the clone a fork, and the child then exits 127). The PATH search that
 * finds it is not made twice: the file found is what is started.
 */
#include "base/common.h"
#include "io/spawn.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define PROC_FLAGS WEAVE_PROC_NEW_GROUP /* every flag weave_proc_opts.flags may carry */

int weave__spawn_check_opts(const weave_proc_opts *o)
{
    if ((o->flags & ~(unsigned)PROC_FLAGS) || !weave__all_zero(o->reserved, sizeof(o->reserved)))
        return -EINVAL;
    for (int i = 0; i < 3; i++)
        if (o->stdio[i] != WEAVE_PROC_INHERIT && o->stdio[i] != WEAVE_PROC_NULL &&
            o->stdio[i] != WEAVE_PROC_PIPE)
            return -EINVAL;
    return 0;
}

/* What exec would say of the file at path: 0, or -errno. */
static int runnable(const char *path)
{
    struct stat sb;

    if (stat(path, &sb) < 0)
        return -errno;
    if (S_ISDIR(sb.st_mode))
        return -EACCES; /* as execve(2) says of a directory */
    return access(path, X_OK) < 0 ? -errno : 0;
}

/* dir/name into buf (cap bytes); -ENAMETOOLONG if it does not fit. */
static int join_path(char *buf, size_t cap, const char *dir, size_t dlen, const char *name)
{
    int n = snprintf(buf, cap, "%.*s%s%s", (int)dlen, dir, dlen && dir[dlen - 1] != '/' ? "/" : "",
                     name);

    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/*
 * The error exec would report for path in the child, found before the child
 * starts: the C library reports it from the child too, but not under every
 * tool (valgrind turns the vfork-style clone into a fork, and the child then
 * exits with 127). A path without a slash is looked up in PATH, as
 * posix_spawnp does (in the child, after the change of directory: a
 * relative entry, or a relative path, is taken from cwd). 0 if some file
 * would do. Whatever changes between this look and the exec is reported by
 * posix_spawnp, or by the child's exit status.
 */
static int exec_check(const char *path, const char *cwd, char found[PATH_MAX])
{
    char buf[PATH_MAX], dir[PATH_MAX];
    const char *list, *e;
    int r, seen = -ENOENT;

    if (!*path)
        return -ENOENT;
    if (strchr(path, '/')) {
        if (path[0] == '/' || !cwd)
            return runnable(path);
        if ((r = join_path(buf, sizeof(buf), cwd, strlen(cwd), path)) < 0)
            return r;
        return runnable(buf);
    }
    if (!(list = getenv("PATH")))
        list = "/bin:/usr/bin"; /* what glibc searches without one */
    for (;; list = e + 1) {
        size_t len;
        int n;

        e = strchrnul(list, ':');
        len = (size_t)(e - list);
        /* The entry as a directory the child would search: an empty one
         * is its working directory, a relative one is taken from there. */
        if (len > 0 && list[0] == '/')
            n = snprintf(dir, sizeof(dir), "%.*s", (int)len, list);
        else
            n = snprintf(dir, sizeof(dir), "%s%s%.*s", cwd ? cwd : ".", "/", (int)len, list);
        if (n >= 0 && (size_t)n < sizeof(dir) &&
            join_path(buf, sizeof(buf), dir, (size_t)n, path) == 0) {
            if ((r = runnable(buf)) == 0) {
                memcpy(found, buf, strlen(buf) + 1);
                return 0;
            }
            if (r == -EACCES)
                seen = r; /* execvp reports EACCES if nothing better is found */
        }
        if (!*e)
            return seen;
    }
}

/* The pipes of a spawn: parent[i] is weave's end, child[i] the child's. */
struct plumbing {
    int parent[3];
    int child[3];
};

static void plumbing_close(struct plumbing *pl, bool parent_too)
{
    for (int i = 0; i < 3; i++) {
        if (pl->child[i] >= 0)
            close(pl->child[i]);
        if (parent_too && pl->parent[i] >= 0)
            close(pl->parent[i]);
        pl->child[i] = -1;
        if (parent_too)
            pl->parent[i] = -1;
    }
}

/* Make the pipes opts asks for. The child's ends are numbered 3 or more, so
 * that no dup2 onto 0, 1 or 2 in the child can overwrite another before it
 * is copied; every end is close-on-exec, and weave's non-blocking. */
static int plumb(const weave_proc_opts *o, struct plumbing *pl)
{
    for (int i = 0; i < 3; i++)
        pl->parent[i] = pl->child[i] = -1;
    for (int i = 0; i < 3; i++) {
        int pp[2];

        if (o->stdio[i] != WEAVE_PROC_PIPE)
            continue;
        if (pipe2(pp, O_CLOEXEC) < 0)
            goto fail;
        pl->child[i] = pp[i == 0 ? 0 : 1];
        pl->parent[i] = pp[i == 0 ? 1 : 0];
        if (pl->child[i] < 3) {
            int moved = fcntl(pl->child[i], F_DUPFD_CLOEXEC, 3);

            if (moved < 0)
                goto fail;
            close(pl->child[i]);
            pl->child[i] = moved;
        }
        if (fcntl(pl->parent[i], F_SETFL, O_NONBLOCK) < 0)
            goto fail;
    }
    return 0;
fail : {
    int err = -errno;

    plumbing_close(pl, true);
    return err;
}
}

/* What the child does before exec, and with what attributes. */
static int prepare(const weave_proc_opts *o, const struct plumbing *pl,
                   posix_spawn_file_actions_t *fa, posix_spawnattr_t *at)
{
    static const char *const null_path = "/dev/null";
    sigset_t none, dflt;
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    int r = 0;

    for (int i = 0; i < 3 && r == 0; i++) {
        if (o->stdio[i] == WEAVE_PROC_PIPE)
            r = posix_spawn_file_actions_adddup2(fa, pl->child[i], i);
        else if (o->stdio[i] == WEAVE_PROC_NULL)
            r = posix_spawn_file_actions_addopen(fa, i, null_path, i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
    if (r == 0 && o->cwd)
        r = posix_spawn_file_actions_addchdir_np(fa, o->cwd);
    /* weave blocks SIGPIPE (and the signals tasks wait for) on its thread:
     * the child starts with none blocked, and SIGPIPE at its default. */
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    if (o->flags & WEAVE_PROC_NEW_GROUP)
        flags |= POSIX_SPAWN_SETPGROUP;
    if (r == 0)
        r = posix_spawnattr_setsigmask(at, &none);
    if (r == 0)
        r = posix_spawnattr_setsigdefault(at, &dflt);
    if (r == 0)
        r = posix_spawnattr_setpgroup(at, 0);
    if (r == 0)
        r = posix_spawnattr_setflags(at, flags);
    return -r;
}

static int cwd_check(const char *cwd)
{
    struct stat sb;

    if (stat(cwd, &sb) < 0)
        return -errno;
    if (!S_ISDIR(sb.st_mode))
        return -ENOTDIR;
    return access(cwd, X_OK) < 0 ? -errno : 0;
}

int weave__spawn(const char *path, char *const argv[], const weave_proc_opts *o, int fds[3],
                 pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    struct plumbing pl;
    char found[PATH_MAX] = "";
    int r;

    if ((o->cwd && (r = cwd_check(o->cwd)) < 0) || (r = exec_check(path, o->cwd, found)) < 0)
        return r;
    if ((r = plumb(o, &pl)) < 0)
        return r;
    if ((r = posix_spawn_file_actions_init(&fa)) != 0) {
        plumbing_close(&pl, true);
        return -r;
    }
    if ((r = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        plumbing_close(&pl, true);
        return -r;
    }
    /* The PATH search is done: the file it found, where that names it
     * from anywhere (an absolute directory of PATH), is started as it is,
     * without posix_spawnp searching again. */
    if ((r = prepare(o, &pl, &fa, &at)) == 0)
        r = found[0] == '/' ? -posix_spawn(pid, found, &fa, &at, argv, o->envp ? o->envp : environ)
                            : -posix_spawnp(pid, path, &fa, &at, argv, o->envp ? o->envp : environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    plumbing_close(&pl, r < 0); /* the child's ends are the child's now */
    for (int i = 0; i < 3; i++)
        fds[i] = r < 0 ? -1 : pl.parent[i];
    return r;
}
