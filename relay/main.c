/*
 * main.c
 *      commerce-relay: delivers commerce.outbox to Kafka.
 *
 * One thread does the work, round after round:
 *
 *   claim a batch (commerce.claim_events: SKIP LOCKED, with a lease; an event
 *     waits while an earlier event of its aggregate is undelivered elsewhere)
 *   produce every event, in id order, keyed by its aggregate id
 *   wait for every delivery report (extending the lease meanwhile)
 *   all delivered: acknowledge the batch (commerce.ack_events)
 *   any failed:    release it (commerce.release_events) and back off
 *
 * Delivery is at least once: a relay that dies between Kafka's confirmation
 * and the ack leaves its batch to be delivered again when the lease ends;
 * consumers drop duplicates by event id (docs/events.md).  Several relays
 * share the outbox, each claiming what the others have not.  A second thread
 * serves /metrics when --metrics-listen is given.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "counter.h"
#include "metrics.h"
#include "outbox.h"
#include "producer.h"

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits ms, serving librdkafka's callbacks, and returns early on SIGTERM. */
static void
wait_ms(producer_t *p, int ms)
{
	int64_t until = monotonic_ms() + ms;

	while (!stop_requested) {
		int64_t left = until - monotonic_ms();

		if (left <= 0)
			break;
		producer_poll(p, left > 100 ? 100 : (int) left);
	}
}

/* After a failure: 100 ms, doubling up to --max-backoff-ms; 0 again after a success. */
static int
next_backoff(int backoff)
{
	int next = backoff == 0 ? 100 : backoff * 2;

	return next > relay_config.max_backoff_ms ? relay_config.max_backoff_ms : next;
}

static void
measure_lag(outbox_t *o)
{
	int64_t pending, oldest_ms;

	if (outbox_lag(o, &pending, &oldest_ms) == 0) {
		COUNTER_SET(relay_metrics.backlog_events, pending);
		COUNTER_SET(relay_metrics.backlog_oldest_ms, oldest_ms);
	}
}

static void
log_stats(void)
{
	static uint64_t last_delivered;
	static int64_t last_at;
	int64_t now = monotonic_ms();
	uint64_t delivered = COUNTER_LOAD(relay_metrics.events_delivered);
	double seconds = last_at == 0 ? 0 : (double) (now - last_at) / 1000.0;

	relay_log(RELAY_LOG, "stats: delivered %llu (%.0f/s), failed %llu, backlog %lld (oldest %.1f s), "
			  "db errors %llu, kafka errors %llu",
			  (unsigned long long) delivered,
			  seconds > 0 ? (double) (delivered - last_delivered) / seconds : 0.0,
			  (unsigned long long) COUNTER_LOAD(relay_metrics.events_failed),
			  (long long) COUNTER_LOAD(relay_metrics.backlog_events),
			  (double) COUNTER_LOAD(relay_metrics.backlog_oldest_ms) / 1000.0,
			  (unsigned long long) COUNTER_LOAD(relay_metrics.db_errors),
			  (unsigned long long) COUNTER_LOAD(relay_metrics.kafka_errors));
	last_delivered = delivered;
	last_at = now;
}

/*
 * After SIGTERM, how long a batch may still wait for Kafka before it is
 * given up (purged, released): a stop must not wait for a broker that is down.
 */
#define STOP_GRACE_MS 10000

/* The backlog measurement and the stats line, when they are due; also while a batch waits. */
static void
periodic(outbox_t *o)
{
	static int64_t lag_due, stats_due;
	int64_t now = monotonic_ms();

	if (stats_due == 0)
		stats_due = now + relay_config.stats_interval_ms;
	if (now >= lag_due && outbox_connected(o)) {
		measure_lag(o);
		lag_due = now + relay_config.lag_interval_ms;
	}
	if (relay_config.stats_interval_ms > 0 && now >= stats_due) {
		log_stats();
		stats_due = now + relay_config.stats_interval_ms;
	}
}

/* One round with a claimed, non-empty batch; returns 0 when it was acknowledged. */
static int
deliver(outbox_t *o, producer_t *p, relay_batch_t *b)
{
	int64_t extend_at = monotonic_ms() + relay_config.lease_ms / 3, give_up_at = 0;

	producer_produce(p, b);
	/*
	 * Wait for every report.  While Kafka is down librdkafka retries the same
	 * messages (with --delivery-timeout-ms 0, until Kafka is back), so the
	 * idempotent broker takes each once; meanwhile the lease is extended, so
	 * that no other relay takes the batch and sends it a second time.
	 */
	while (!producer_wait(p, b, 100)) {
		int64_t now = monotonic_ms();

		periodic(o);
		if (now >= extend_at) {
			if (outbox_extend(o, b, relay_config.lease_ms) != 0)
				relay_log(RELAY_WARNING, "could not extend the lease of a batch still waiting for Kafka");
			extend_at = now + relay_config.lease_ms / 3;
		}
		if (stop_requested && give_up_at == 0)
			give_up_at = now + STOP_GRACE_MS;
		else if (give_up_at != 0 && now >= give_up_at) {
			relay_log(RELAY_WARNING, "stopping: Kafka has not confirmed %d events in %d ms; giving them up",
					  b->n - b->delivered - b->failed, STOP_GRACE_MS);
			producer_purge(p);
			give_up_at = INT64_MAX;
		}
	}
	if (b->failed > 0) {
		COUNTER_ADD(relay_metrics.events_failed, (uint64_t) b->failed);
		relay_log(RELAY_WARNING, "Kafka did not take %d of %d events (%s); releasing the batch for a retry",
				  b->failed, b->n, b->first_error != NULL ? b->first_error : "not produced");
		/* if the release fails too, the lease runs out and the batch is claimed again */
		if (outbox_release(o, b) == 0)
			COUNTER_BUMP(relay_metrics.batches_released);
		return -1;
	}
	if (outbox_ack(o, b) != 0) {
		/* in Kafka already: delivered again when the lease runs out (at least once) */
		COUNTER_BUMP(relay_metrics.acks_failed);
		return -1;
	}
	COUNTER_ADD(relay_metrics.events_delivered, (uint64_t) b->n);
	COUNTER_BUMP(relay_metrics.batches_acked);
	return 0;
}

int
main(int argc, char **argv)
{
	struct sigaction stop = {.sa_handler = on_stop_signal};
	outbox_t outbox = {0};
	producer_t producer;
	int backoff = 0;

	relay_config_load(argc, argv);
	sigemptyset(&stop.sa_mask);
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGINT, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (relay_config.metrics_host[0] != '\0' &&
		metrics_server_start(relay_config.metrics_host, relay_config.metrics_port) != 0)
		return 1;
	if (producer_open(&producer) != 0)
		return 1;
	relay_log(RELAY_LOG, "delivering to %s (topics %sorders, %scoupons), batches of %d, lease %d ms",
			  relay_config.brokers, relay_config.topic_prefix, relay_config.topic_prefix,
			  relay_config.batch, relay_config.lease_ms);

	while (!stop_requested) {
		relay_batch_t batch;
		int delivered;

		if (producer.fatal) {
			producer_close(&producer, 0);
			COUNTER_BUMP(relay_metrics.producer_restarts);
			if (producer_open(&producer) != 0)
				return 1;
		}
		if (!outbox_connected(&outbox)) {
			if (outbox_connect(&outbox) != 0) {
				backoff = next_backoff(backoff);
				wait_ms(&producer, backoff);
				continue;
			}
			relay_log(RELAY_LOG, "connected to the database");
		}
		periodic(&outbox);
		if (outbox_claim(&outbox, relay_config.batch, relay_config.lease_ms, &batch) != 0) {
			backoff = next_backoff(backoff);
			wait_ms(&producer, backoff);
			continue;
		}
		if (batch.n == 0) {
			batch_free(&batch);
			backoff = 0;
			wait_ms(&producer, relay_config.idle_ms);
			continue;
		}
		/* a claimed batch is finished even after SIGTERM: that is the drain */
		delivered = deliver(&outbox, &producer, &batch) == 0;
		batch_free(&batch);
		if (delivered)
			backoff = 0;
		else {
			backoff = next_backoff(backoff);
			wait_ms(&producer, backoff);
		}
	}

	relay_log(RELAY_LOG, "stopping");
	if (relay_config.stats_interval_ms > 0)
		log_stats();
	producer_close(&producer, 1000);
	outbox_close(&outbox);
	relay_log(RELAY_LOG, "stopped");
	return 0;
}
