/*
 * access_log.h
 *      One JSON line per answered request (--access-log FILE, or - for
 *      stderr; off by default):
 *
 *   {"time":"2026-12-02T16:12:02.123Z","id":"0-4711","method":"POST",
 *    "route":"POST /api/orders","status":201,"ms":3.214,"user":42,"addr":"127.0.0.1"}
 *
 * time is when the answer was sent (UTC), id the request id also sent back
 * as X-Request-Id (thread - sequence), ms the time from the request's
 * arrival, user the token's sub (null without one).  Each thread buffers its
 * lines and writes them with one write(2) when the buffer fills and every
 * 100 ms, so a line costs a format and a copy, not a system call.
 */
#ifndef COMMERCE_HTTP_ACCESS_LOG_H
#define COMMERCE_HTTP_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#define ACCESS_LOG_BUFFER 65536

typedef struct access_log_buffer {
	char data[ACCESS_LOG_BUFFER];
	size_t len;
	uint64_t sequence;			/* the thread's request counter, for ids */
} access_log_buffer_t;

/* Opens --access-log at start (before the threads); exits 2 on failure. */
void access_log_open(const char *argv0);

/* Whether lines are written at all. */
int access_log_enabled(void);

/* Appends one line; writes the buffer first if the line would not fit. */
void access_log_append(access_log_buffer_t *buf, const char *line, size_t len);

/* Writes what the buffer holds (the worker's tick, and at exit). */
void access_log_flush(access_log_buffer_t *buf);

#endif
