/*
 * outbox.h
 *      The relay's side of commerce.outbox, through the extension's
 *      functions only (the commerce_relay role may call nothing else):
 *      claim a batch with a lease, acknowledge it once Kafka has every event,
 *      release it when a delivery failed, and measure the backlog.
 */
#ifndef COMMERCE_RELAY_OUTBOX_H
#define COMMERCE_RELAY_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* the version of the message format (docs/events.md); a header and a JSON field */
#define RELAY_SCHEMA_VERSION "1"

struct relay_batch;

/* One claimed event, as it will be produced.  The strings point into the batch's result. */
typedef struct relay_event {
	struct relay_batch *batch;
	int64_t id;
	const char *id_text;
	const char *type;			/* order_placed, order_cancelled, coupon_issued, ... */
	const char *key;			/* the aggregate id: one aggregate's events share a partition */
	const char *value;			/* the JSON message (docs/events.md) */
	size_t value_len;
	int64_t created_ms;			/* the event's transaction time, ms since the epoch */
} relay_event_t;

/* A claimed batch, in event id order (the order per aggregate). */
typedef struct relay_batch {
	PGresult *result;
	relay_event_t *events;
	int n;
	int delivered;				/* delivery reports without error */
	int failed;					/* delivery reports with an error, and events not produced */
	const char *first_error;	/* the first failure's reason, for the log */
} relay_batch_t;

typedef struct outbox {
	PGconn *conn;				/* NULL or bad: connect again */
} outbox_t;

/* Connects (blocking: the relay has no other work while it has no database) and prepares. */
int outbox_connect(outbox_t *o);
int outbox_connected(const outbox_t *o);
void outbox_close(outbox_t *o);

/* Claims up to `limit` events for lease_ms; 0 with b->n == 0 when there is none; -1 on error. */
int outbox_claim(outbox_t *o, int limit, int lease_ms, relay_batch_t *b);
/* Marks the batch's events delivered. */
int outbox_ack(outbox_t *o, const relay_batch_t *b);
/* Ends the batch's lease now, so that any relay retries it at once. */
int outbox_release(outbox_t *o, const relay_batch_t *b);
/* Extends the batch's lease to lease_ms from now, while Kafka has not confirmed it yet. */
int outbox_extend(outbox_t *o, const relay_batch_t *b, int lease_ms);
/* The number of undelivered events and the age of the oldest in ms (0 if none). */
int outbox_lag(outbox_t *o, int64_t *pending, int64_t *oldest_ms);

void batch_free(relay_batch_t *b);

#endif
