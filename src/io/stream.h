/*
 * stream.h - what the io layer needs of buffered streams (stream.c) beyond
 * the public calls.
 */
#ifndef WEAVE_STREAM_H
#define WEAVE_STREAM_H

#include "weave.h"

/* Free s without flushing or closing its fd: what it buffered is lost. For
 * an owner that closes the fd itself, also when no task can wait (the end
 * of a scheduler). */
void weave__stream_drop(weave_stream *s);

#endif /* WEAVE_STREAM_H */
