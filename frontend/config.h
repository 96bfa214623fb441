/*
 * config.h
 *      Options of commerce-http: command line first, then environment, then
 *      defaults.  Read once in main() and immutable afterwards, so every
 *      thread reads it without locks.
 */
#ifndef COMMERCE_HTTP_CONFIG_H
#define COMMERCE_HTTP_CONFIG_H

#include <stddef.h>

/* --log-level: what goes to stderr beyond errors and warnings. */
typedef enum commerce_log_level {
	COMMERCE_LOG_WARNING,		/* default: errors, warnings, start and stop */
	COMMERCE_LOG_INFO			/* also one line per refused duplicate coupon attempt */
} commerce_log_level_t;

/* --auth: who the caller is. */
typedef enum commerce_auth {
	COMMERCE_AUTH_JWT,			/* default: a verified bearer token names the user */
	COMMERCE_AUTH_NONE			/* explicit only: the request names the user */
} commerce_auth_t;

typedef struct commerce_config {
	char listen_host[256];
	unsigned short listen_port;
	const char *conninfo;		/* NULL: libpq's PG* environment */
	int threads;
	int pool_size;				/* database connections per thread */
	int pipeline_depth;			/* REST calls in flight per connection */
	int queue_size;				/* calls waiting for a connection, per thread */
	int deadline_ms;			/* request deadline, answered 504 */
	size_t max_body;			/* larger request bodies get 413 */
	int max_connections;		/* open client connections, all threads */
	int max_connections_per_address;	/* of one client IP address; 0: no limit */
	int header_timeout_ms;		/* longest wait for a request (head and body) or between requests */
	int drain_ms;				/* SIGTERM: longest wait for in-flight calls */
	commerce_log_level_t log_level;
	commerce_auth_t auth;
	const char *jwt_key_file;	/* required with COMMERCE_AUTH_JWT */
	const char *jwt_alg;		/* "HS256", "RS256" or "ES256" */
	const char *jwt_issuer;		/* NULL: iss not checked */
	const char *jwt_audience;	/* NULL: aud not checked */
	int rate_limit_reads;		/* GET requests per second per customer; 0: off */
	int rate_limit_writes;		/* POST requests per second per customer; 0: off */
	const char *access_log;		/* NULL: none; "-": stderr */
	const char *operator_conninfo;	/* NULL: the /api/admin routes are off */
	int operator_pool_size;		/* its connections per thread */
	const char *read_conninfo;	/* NULL: the catalogue reads run on conninfo too */
	int read_pool_size;			/* its connections per thread */
	int read_max_lag_ms;		/* a standby possibly further behind is not read from */
} commerce_config_t;

extern commerce_config_t commerce_config;

/* The severity a log line is marked with (PostgreSQL's words). */
typedef enum commerce_severity {
	COMMERCE_ERROR,				/* the daemon cannot do what it should (and may exit) */
	COMMERCE_WARNING,			/* it goes on, but something is wrong */
	COMMERCE_LOG,				/* start, stop, a connection back: for the operator */
	COMMERCE_INFO				/* --log-level info only: one line per event of a flood */
} commerce_severity_t;

/*
 * One line on stderr, "2026-12-02T20:15:00.123Z commerce-http LEVEL: text",
 * written with one write(2) so that threads do not interleave.  Callers of
 * COMMERCE_INFO check --log-level themselves.
 */
void commerce_log(commerce_severity_t severity, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Exits the process on --help (0) or on a bad option (2). */
void commerce_config_load(int argc, char **argv);

#endif
