/*
 * access_log.c
 *      The file side of access_log.h: one descriptor opened with O_APPEND,
 *      shared by every thread.  Each write(2) carries whole lines only, and
 *      O_APPEND makes each one land after the previous, so threads never
 *      interleave within a line.
 *
 * The write happens on the event loop.  For a log file it goes to the page
 * cache and returns in microseconds (as nginx's and h2o's own access logs
 * do); a write that fails or is cut short drops the rest of that buffer and
 * counts it on stderr rather than waiting.  A pipe reader that stalls (for
 * "-" piped into a slow program) would stall the loop: log to a file there.
 */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static int log_fd = -1;

void
access_log_open(const char *argv0)
{
	const char *path = commerce_config.access_log;

	if (path == NULL)
		return;
	if (strcmp(path, "-") == 0) {
		log_fd = STDERR_FILENO;
		return;
	}
	log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (log_fd < 0) {
		fprintf(stderr, "%s: --access-log %s: %s\n", argv0, path, strerror(errno));
		exit(2);
	}
}

int
access_log_enabled(void)
{
	return log_fd >= 0;
}

void
access_log_flush(access_log_buffer_t *buf)
{
	size_t done = 0;

	while (done < buf->len) {
		ssize_t n = write(log_fd, buf->data + done, buf->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			commerce_log(COMMERCE_WARNING, "access log: write failed (%s): %zu bytes of lines dropped",
						 n < 0 ? strerror(errno) : "nothing written", buf->len - done);
			break;
		}
		done += (size_t) n;
	}
	buf->len = 0;
}

void
access_log_append(access_log_buffer_t *buf, const char *line, size_t len)
{
	if (len > sizeof(buf->data))
		return;					/* cannot happen: lines are formatted into 1 KiB */
	if (buf->len + len > sizeof(buf->data))
		access_log_flush(buf);
	memcpy(buf->data + buf->len, line, len);
	buf->len += len;
}
