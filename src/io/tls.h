/*
 * tls.h - what the rest of weave may ask of a TLS connection (tls.c)
 * beyond the public calls.
 *
 * A buffered stream over a TLS connection reads and writes through the
 * public calls, weave_tls_read and weave_tls_write, which bring the
 * connection's timeout, turn-taking on the fd, cancellation and deadline
 * scopes with them. One thing it must not take from the fd: readiness.
 * OpenSSL may hold decrypted bytes, or the rest of a record, that a read
 * returns without the fd ever becoming readable again, so a stream that
 * waits for the fd (weave_wait_fd) before it reads must first ask
 * weave__tls_has_pending, and read at once when it says so.
 */
#ifndef WEAVE_TLS_H
#define WEAVE_TLS_H

#include <stdbool.h>

#include "weave.h"

/* Whether a weave_tls_read of t could return data (or the end) without
 * the fd being readable: OpenSSL holds received bytes not yet returned.
 * false for NULL, and in a build without OpenSSL. Never blocks. */
bool weave__tls_has_pending(const struct weave_tls *t);

#endif /* WEAVE_TLS_H */
