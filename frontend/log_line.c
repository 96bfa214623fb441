/*
 * log_line.c
 *      See log_line.h.
 */
#include "log_line.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

void
log_line(const char *program, const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec now;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = (int) strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t) n, ".%03ldZ %s %s: ", now.tv_nsec / 1000000, program, level);
	n += vsnprintf(line + n, sizeof(line) - (size_t) n - 1, fmt, ap);
	/* a longer line is cut, its newline kept */
	if (n > (int) sizeof(line) - 2)
		n = (int) sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t) n) < 0) {
		/* nowhere left to say it */
	}
}
