/*
 * producer.h
 *      Kafka's side: librdkafka's idempotent producer (enable.idempotence,
 *      acks=all), one message per event, keyed by the aggregate id so that
 *      one order's events land in one partition in the order produced.
 */
#ifndef COMMERCE_RELAY_PRODUCER_H
#define COMMERCE_RELAY_PRODUCER_H

#include <librdkafka/rdkafka.h>

#include "outbox.h"

typedef struct producer {
	rd_kafka_t *rk;
	volatile int fatal;			/* a fatal error: this producer can send no more */
} producer_t;

int producer_open(producer_t *p);
/* Waits for what is still queued (at most timeout_ms), then frees. */
void producer_close(producer_t *p, int timeout_ms);

/* Produces every event of the batch, in order (stopping at the first refused one). */
void producer_produce(producer_t *p, relay_batch_t *b);

/*
 * Serves delivery reports for up to ms; returns 1 once every event has its
 * report (b->delivered + b->failed == b->n).  The batch may be acknowledged
 * only when b->failed == 0.
 */
int producer_wait(producer_t *p, relay_batch_t *b, int ms);

/* Gives up on every queued and in-flight message: each gets a failed report. */
void producer_purge(producer_t *p);

/* Serves librdkafka's callbacks for up to ms (the relay's idle wait). */
void producer_poll(producer_t *p, int ms);

#endif
