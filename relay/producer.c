/*
 * producer.c
 *      librdkafka set up for at-least-once delivery in order per key.
 */
#include "producer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "counter.h"
#include "metrics.h"

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Called from rd_kafka_poll, in the relay's thread: one call per message. */
static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	relay_event_t *e = msg->_private;
	relay_batch_t *b = e->batch;

	(void) rk;
	(void) opaque;
	if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (b->failed++ == 0)
			b->first_error = rd_kafka_err2str(msg->err);
		return;
	}
	b->delivered++;
	metrics_observe_latency(now_ms() - e->created_ms);
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	producer_t *p = opaque;
	char fatal_reason[512];

	COUNTER_BUMP(relay_metrics.kafka_errors);
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, fatal_reason, sizeof(fatal_reason));
		relay_log(RELAY_ERROR, "Kafka producer: fatal error: %s (the producer is recreated)", fatal_reason);
		p->fatal = 1;
		return;
	}
	/* librdkafka retries on its own; its log line (on_log) says why nothing arrives meanwhile */
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		relay_log(RELAY_WARNING, "Kafka: %s", reason);
}

/* librdkafka's own log lines, in the relay's format (syslog levels: 3 error, 4 warning) */
static void
on_log(const rd_kafka_t *rk, int level, const char *facility, const char *message)
{
	(void) rk;
	relay_log(level <= 3 ? RELAY_ERROR : level == 4 ? RELAY_WARNING : RELAY_LOG, "Kafka %s: %s", facility, message);
}

static int
set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char why[512];

	if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		relay_log(RELAY_ERROR, "Kafka setting %s=%s: %s", name, value, why);
		return -1;
	}
	return 0;
}

int
producer_open(producer_t *p)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char timeout[16], why[512];

	memset(p, 0, sizeof(*p));
	if (conf == NULL) {
		relay_log(RELAY_ERROR, "Kafka: out of memory");
		return -1;
	}
	/* 0: librdkafka retries a message until Kafka takes it */
	snprintf(timeout, sizeof(timeout), "%d", relay_config.delivery_timeout_ms);
	/* the operator's settings first, so that ours below win where they must */
	for (int i = 0; i < relay_config.n_kafka_settings; i++) {
		char name[128];
		const char *setting = relay_config.kafka_settings[i], *eq = strchr(setting, '=');
		size_t len = (size_t) (eq - setting);

		if (len >= sizeof(name)) {
			relay_log(RELAY_ERROR, "Kafka setting name too long: %s", setting);
			rd_kafka_conf_destroy(conf);
			return -1;
		}
		memcpy(name, setting, len);
		name[len] = '\0';
		if (set(conf, name, eq + 1) != 0) {
			rd_kafka_conf_destroy(conf);
			return -1;
		}
	}
	/*
	 * Idempotence: no duplicate from librdkafka's own retries, and the order
	 * of one partition kept across them (it also implies acks=all, which we
	 * say anyway: an event counts as delivered once every in-sync replica
	 * has it).  linger.ms 5: a batch of a thousand events goes out in a few
	 * requests rather than a thousand.
	 */
	if (set(conf, "bootstrap.servers", relay_config.brokers) != 0 ||
		set(conf, "enable.idempotence", "true") != 0 ||
		set(conf, "acks", "all") != 0 ||
		set(conf, "message.timeout.ms", timeout) != 0 ||
		set(conf, "linger.ms", "5") != 0 ||
		set(conf, "client.id", "commerce-relay") != 0) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_log_cb(conf, on_log);
	rd_kafka_conf_set_opaque(conf, p);
	/* rd_kafka_new owns conf from here on, whether it succeeds or not */
	if ((p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why))) == NULL) {
		relay_log(RELAY_ERROR, "cannot create the Kafka producer: %s", why);
		return -1;
	}
	return 0;
}

void
producer_close(producer_t *p, int timeout_ms)
{
	if (p->rk == NULL)
		return;
	if (rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
		relay_log(RELAY_WARNING, "Kafka: %d messages not confirmed at close", rd_kafka_outq_len(p->rk));
	rd_kafka_destroy(p->rk);
	p->rk = NULL;
}

/* "order_placed" -> "<prefix>orders": one topic per kind of aggregate. */
static void
topic_of(const char *type, char *topic, size_t size)
{
	size_t kind = strcspn(type, "_");

	snprintf(topic, size, "%s%.*ss", relay_config.topic_prefix, (int) kind, type);
}

static void
produce_one(producer_t *p, relay_event_t *e)
{
	relay_batch_t *b = e->batch;
	char topic[256];
	rd_kafka_resp_err_t err;

	topic_of(e->type, topic, sizeof(topic));
	for (;;) {
		err = rd_kafka_producev(p->rk,
								RD_KAFKA_V_TOPIC(topic),
								RD_KAFKA_V_KEY(e->key, strlen(e->key)),
								RD_KAFKA_V_VALUE((void *) e->value, e->value_len),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_HEADER("event_id", e->id_text, -1),
								RD_KAFKA_V_HEADER("event_type", e->type, -1),
								RD_KAFKA_V_HEADER("schema_version", RELAY_SCHEMA_VERSION, -1),
								RD_KAFKA_V_OPAQUE(e),
								RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		/* librdkafka's queue is full: serve delivery reports until there is room */
		rd_kafka_poll(p->rk, 100);
	}
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR && b->failed++ == 0)
		b->first_error = rd_kafka_err2str(err);
}

void
producer_produce(producer_t *p, relay_batch_t *b)
{
	for (int i = 0; i < b->n; i++) {
		/*
		 * Once one event of the batch failed, later ones of its aggregate
		 * must not overtake it: stop producing (the batch is released whole).
		 */
		if (b->failed > 0) {
			b->failed += b->n - i;
			break;
		}
		produce_one(p, &b->events[i]);
	}
}

int
producer_wait(producer_t *p, relay_batch_t *b, int ms)
{
	if (b->delivered + b->failed < b->n)
		rd_kafka_poll(p->rk, ms);
	return b->delivered + b->failed == b->n;
}

void
producer_purge(producer_t *p)
{
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

void
producer_poll(producer_t *p, int ms)
{
	rd_kafka_poll(p->rk, ms);
}
