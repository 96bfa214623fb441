/*
 * metrics.h
 *      Per-thread counters, written only by their own thread and summed at
 *      scrape time (counter.h's discipline: a scrape may be a few requests
 *      behind, never torn).
 */
#ifndef COMMERCE_HTTP_METRICS_H
#define COMMERCE_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "routes.h"

/* The statuses the daemon answers with; anything else counts as "other". */
#define METRICS_STATUS_LIST(X) \
	X(200) X(201) X(400) X(401) X(402) X(403) X(404) X(405) X(409) X(413) X(415) X(422) X(429) \
	X(500) X(503) X(504)

enum {
#define METRICS_STATUS_ENUM(code) METRICS_STATUS_##code,
	METRICS_STATUS_LIST(METRICS_STATUS_ENUM)
#undef METRICS_STATUS_ENUM
	METRICS_STATUS_OTHER,
	METRICS_STATUS__COUNT
};

/* Upper bounds in microseconds of the latency histogram's buckets. */
#define METRICS_LATENCY_BUCKETS 12

/* Why a connection was refused at accept: the reason label of rejected_total. */
typedef enum refused_connection {
	REFUSED_CONNECTION_CAP,		/* --max-connections open */
	REFUSED_ADDRESS_CAP,		/* --max-connections-per-address open from its address */
	REFUSED__COUNT
} refused_connection_t;

typedef struct metrics {
	uint64_t requests[ROUTE__COUNT][METRICS_STATUS__COUNT];
	uint64_t latency_buckets[METRICS_LATENCY_BUCKETS + 1];	/* last: +Inf */
	uint64_t latency_count;
	uint64_t latency_sum_us;
	uint64_t rejected_queue_full;
	uint64_t rejected_unavailable;
	uint64_t timeouts;
	uint64_t coupon_duplicates;	/* issue refused: the user already holds the coupon */
	uint64_t rejected_connections[REFUSED__COUNT];	/* answered 503 and closed at accept */
} metrics_t;

void metrics_record(metrics_t *m, route_id_t route, int status, uint64_t latency_us);
/* One refused duplicate coupon attempt (PC411, or 23505 on issued_coupons). */
void metrics_count_coupon_duplicate(metrics_t *m);
/* One connection answered 503 and closed at accept, for the reason given. */
void metrics_count_refused_connection(metrics_t *m, refused_connection_t reason);

/* Renders every thread's counters and gauges; the caller frees the result. */
char *metrics_render(size_t *len);

#endif
