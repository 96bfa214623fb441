/*
 * log_line.h
 *      The one format of both daemons' stderr lines,
 *      "2026-12-03T07:15:00.123Z PROGRAM LEVEL: text", written with one
 *      write(2) so that threads do not interleave their lines.
 */
#ifndef COMMERCE_LOG_LINE_H
#define COMMERCE_LOG_LINE_H

#include <stdarg.h>

void log_line(const char *program, const char *level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#endif
