/*
 * metrics.h
 *      What commerce-relay counts, written by the relay's one working thread
 *      and read by the /metrics thread (frontend/counter.h's discipline: one
 *      writer, relaxed loads and stores).
 */
#ifndef COMMERCE_RELAY_METRICS_H
#define COMMERCE_RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* upper bounds of the latency histogram's buckets, in milliseconds */
#define RELAY_LATENCY_BUCKETS 14

typedef struct relay_metrics {
	uint64_t events_delivered;		/* confirmed by Kafka and acknowledged in the outbox */
	uint64_t events_failed;			/* delivery reports with an error (their batch was released) */
	uint64_t batches_acked;
	uint64_t batches_released;		/* a delivery failed: released for any relay to retry */
	uint64_t acks_failed;			/* delivered, but the ack did not reach the database */
	uint64_t db_errors;				/* failed claims, acks, releases, lag queries, connections */
	uint64_t kafka_errors;			/* librdkafka's error callback (broker down, ...) */
	uint64_t producer_restarts;		/* after a fatal idempotent-producer error */
	int64_t backlog_events;			/* undelivered events at the last measurement; -1: unknown */
	int64_t backlog_oldest_ms;		/* age of the oldest undelivered event then; 0: none */
	uint64_t db_connected;			/* 1 while the database connection is good */
	/* commit (the event's transaction) to Kafka's acknowledgement */
	uint64_t latency_buckets[RELAY_LATENCY_BUCKETS];	/* not cumulative; rendered cumulative */
	uint64_t latency_count;
	uint64_t latency_sum_ms;
} relay_metrics_t;

extern relay_metrics_t relay_metrics;

/* Counts one delivered event that waited ms since its transaction. */
void metrics_observe_latency(int64_t ms);

/* The Prometheus text exposition; malloc'd, the caller frees; NULL when out of memory. */
char *metrics_render(size_t *len);

/* Serves GET /metrics on host:port from a thread of its own; -1 if it cannot listen. */
int metrics_server_start(const char *host, unsigned short port);

#endif
