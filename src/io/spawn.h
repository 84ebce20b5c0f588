/*
 * spawn.h - starting a child (spawn.c), for proc.c.
 */
#ifndef WEAVE_SPAWN_H
#define WEAVE_SPAWN_H

#include <sys/types.h>

#include "weave.h"

/* 0 if o's flags, stdio choices and reserved fields are valid, else -EINVAL. */
int weave__spawn_check_opts(const weave_proc_opts *o);

/*
 * Start path with argv as o says (o checked already). Returns 0 with the
 * child's pid in *pid and weave's ends of the pipes in fds[0..2] (-1 where
 * that stdio is no pipe; close-on-exec and non-blocking), or -errno with
 * nothing left open: the errors of weave_proc_spawn.
 */
int weave__spawn(const char *path, char *const argv[], const weave_proc_opts *o, int fds[3],
                 pid_t *pid);

#endif /* WEAVE_SPAWN_H */
