/*
 * metrics.c
 *      The relay's counters in the Prometheus text format.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "counter.h"

relay_metrics_t relay_metrics = {.backlog_events = -1};

static const int64_t latency_bounds_ms[RELAY_LATENCY_BUCKETS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000
};

void
metrics_observe_latency(int64_t ms)
{
	int i = 0;

	if (ms < 0)
		ms = 0;					/* clocks of two hosts; never a negative sum */
	while (i < RELAY_LATENCY_BUCKETS && ms > latency_bounds_ms[i])
		i++;
	if (i < RELAY_LATENCY_BUCKETS)
		COUNTER_BUMP(relay_metrics.latency_buckets[i]);
	COUNTER_BUMP(relay_metrics.latency_count);
	COUNTER_ADD(relay_metrics.latency_sum_ms, (uint64_t) ms);
}

typedef struct out {
	char *buf;
	size_t len, cap;
	int failed;
} out_t;

static void __attribute__((format(printf, 2, 3)))
out_printf(out_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t) n < o->cap - o->len)
			break;
		{
			size_t cap = (o->cap + (size_t) n) * 2;
			char *grown = realloc(o->buf, cap);

			if (grown == NULL) {
				o->failed = 1;
				return;
			}
			o->buf = grown;
			o->cap = cap;
		}
	}
	o->len += (size_t) n;
}

static void
counter(out_t *o, const char *name, const char *help, uint64_t value)
{
	out_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
			   (unsigned long long) value);
}

static void
gauge(out_t *o, const char *name, const char *help, double value)
{
	out_printf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %.3f\n", name, help, name, name, value);
}

char *
metrics_render(size_t *len)
{
	out_t o = {.cap = 4096};
	uint64_t cumulative = 0;
	int64_t backlog = COUNTER_LOAD(relay_metrics.backlog_events);

	if ((o.buf = malloc(o.cap)) == NULL)
		return NULL;
	counter(&o, "commerce_relay_events_delivered_total",
			"Events Kafka confirmed and the outbox recorded as delivered", COUNTER_LOAD(relay_metrics.events_delivered));
	counter(&o, "commerce_relay_events_failed_total",
			"Events whose delivery report was an error (their batch was released and retried)",
			COUNTER_LOAD(relay_metrics.events_failed));
	counter(&o, "commerce_relay_batches_acked_total", "Batches delivered whole and acknowledged",
			COUNTER_LOAD(relay_metrics.batches_acked));
	counter(&o, "commerce_relay_batches_released_total",
			"Batches released for a retry after a failed delivery", COUNTER_LOAD(relay_metrics.batches_released));
	counter(&o, "commerce_relay_acks_failed_total",
			"Batches delivered but not acknowledged (they are delivered again when their lease ends)",
			COUNTER_LOAD(relay_metrics.acks_failed));
	counter(&o, "commerce_relay_db_errors_total", "Failed database calls and connection attempts",
			COUNTER_LOAD(relay_metrics.db_errors));
	counter(&o, "commerce_relay_kafka_errors_total", "Errors librdkafka reported (brokers down, ...)",
			COUNTER_LOAD(relay_metrics.kafka_errors));
	counter(&o, "commerce_relay_producer_restarts_total", "Producers recreated after a fatal error",
			COUNTER_LOAD(relay_metrics.producer_restarts));
	gauge(&o, "commerce_relay_db_connected", "1 while the relay's database connection is good",
		  (double) COUNTER_LOAD(relay_metrics.db_connected));
	/* -1 until the first measurement: absent rather than a made-up zero */
	if (backlog >= 0) {
		gauge(&o, "commerce_relay_backlog_events", "Undelivered events in commerce.outbox (all relays)",
			  (double) backlog);
		gauge(&o, "commerce_relay_backlog_oldest_seconds",
			  "Age of the oldest undelivered event; 0 when there is none",
			  (double) COUNTER_LOAD(relay_metrics.backlog_oldest_ms) / 1000.0);
	}
	out_printf(&o, "# HELP commerce_relay_delivery_seconds From the event's transaction to Kafka's acknowledgement\n"
			   "# TYPE commerce_relay_delivery_seconds histogram\n");
	for (int i = 0; i < RELAY_LATENCY_BUCKETS; i++) {
		cumulative += COUNTER_LOAD(relay_metrics.latency_buckets[i]);
		out_printf(&o, "commerce_relay_delivery_seconds_bucket{le=\"%g\"} %llu\n",
				   (double) latency_bounds_ms[i] / 1000.0, (unsigned long long) cumulative);
	}
	out_printf(&o, "commerce_relay_delivery_seconds_bucket{le=\"+Inf\"} %llu\n"
			   "commerce_relay_delivery_seconds_sum %.3f\ncommerce_relay_delivery_seconds_count %llu\n",
			   (unsigned long long) COUNTER_LOAD(relay_metrics.latency_count),
			   (double) COUNTER_LOAD(relay_metrics.latency_sum_ms) / 1000.0,
			   (unsigned long long) COUNTER_LOAD(relay_metrics.latency_count));
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
