/*
 * rate_limit.h
 *      Per-user token buckets, one per route class, shared by all threads.
 *
 * A customer's token may spend --rate-limit-reads requests per second on
 * GET routes and --rate-limit-writes on POST routes, with bursts of twice
 * that; beyond it the answer is 429 TOO_MANY_REQUESTS with Retry-After.  The
 * defaults are rates a person never reaches, so only scripts are slowed.
 * Operators (role admin) are not limited.  0 turns a class's limit off.
 */
#ifndef COMMERCE_HTTP_RATE_LIMIT_H
#define COMMERCE_HTTP_RATE_LIMIT_H

#include <stdint.h>

typedef enum rate_class {
	RATE_CLASS_READ,
	RATE_CLASS_WRITE,
	RATE_CLASS__COUNT
} rate_class_t;

/* Allocates the table once at start (before the threads); exits on failure. */
void rate_limit_init(void);

/* 0 when the user may make one more request of the class now; otherwise
 * the whole seconds until it may (for Retry-After, at least 1). */
int rate_limit_take(int64_t user_id, rate_class_t cls);

#endif
