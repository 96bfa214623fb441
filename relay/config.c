/*
 * config.c
 *      One table describes every option: its flag, its environment variable,
 *      its default and its help text, read by the parser commerce-http uses
 *      too (frontend/options.h), so --help cannot drift from it.
 */
#include "config.h"

#include "log_line.h"
#include "options.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

relay_config_t relay_config;

typedef enum option_id {
	OPT_DB, OPT_BROKERS, OPT_TOPIC_PREFIX, OPT_BATCH, OPT_LEASE_MS, OPT_DELIVERY_TIMEOUT_MS,
	OPT_IDLE_MS, OPT_MAX_BACKOFF_MS, OPT_LAG_INTERVAL_MS, OPT_STATS_INTERVAL_MS, OPT_METRICS_LISTEN,
	OPT_KAFKA,
	OPT__COUNT
} option_id_t;

/*
 * Why the defaults are what they are:
 * - batch 1000: one claim and one ack (two short UPDATEs of 1,000 rows) per
 *   thousand events keeps the database's share small, and a thousand
 *   messages are what librdkafka batches into a few produce requests anyway.
 * - lease 30 s, extended every 10 s while a batch waits for Kafka: a live
 *   relay's batch is never taken by another, so two live relays never
 *   deliver the same event; a dead or stalled relay's batch is taken again
 *   after at most 30 s.
 * - delivery timeout 0 (none): while Kafka is down, librdkafka keeps
 *   retrying the same messages, which the idempotent broker takes once when
 *   it is back; a message given up and produced anew could be a duplicate.
 * - idle 50 ms: with nothing to send, a relay asks twenty times a second, one
 *   index probe each; an event waits 25 ms on average for its round.
 */
static const option_spec_t option_specs[OPT__COUNT] = {
	[OPT_DB] = {"db", "COMMERCE_RELAY_DB", "CONNINFO", NULL, 0, 0,
		"libpq conninfo of a login role in commerce_relay", "libpq's PGHOST, PGPORT, PGUSER ... environment"},
	[OPT_BROKERS] = {"brokers", "COMMERCE_RELAY_BROKERS", "HOST:PORT,...", "127.0.0.1:9092", 0, 0,
		"Kafka bootstrap servers", NULL},
	[OPT_TOPIC_PREFIX] = {"topic-prefix", "COMMERCE_RELAY_TOPIC_PREFIX", "PREFIX", "commerce.", 0, 0,
		"order events go to PREFIXorders, coupon events to PREFIXcoupons", NULL},
	[OPT_BATCH] = {"batch", "COMMERCE_RELAY_BATCH", "N", "1000", 1, 10000,
		"events claimed, produced and acknowledged together", NULL},
	[OPT_LEASE_MS] = {"lease-ms", "COMMERCE_RELAY_LEASE_MS", "MS", "30000", 1000, 3600000,
		"a claimed batch neither acknowledged nor extended within MS may be claimed by another relay "
		"(the relay extends it every MS/3 while it waits for Kafka)", NULL},
	[OPT_DELIVERY_TIMEOUT_MS] = {"delivery-timeout-ms", "COMMERCE_RELAY_DELIVERY_TIMEOUT_MS", "MS", "0",
		0, 3600000,
		"an event Kafka has not confirmed within MS counts as failed: the batch is released and "
		"retried (some of it may then be delivered twice); 0: wait for Kafka, however long it is down",
		NULL},
	[OPT_IDLE_MS] = {"idle-ms", "COMMERCE_RELAY_IDLE_MS", "MS", "50", 1, 60000,
		"wait after a round that found no event", NULL},
	[OPT_MAX_BACKOFF_MS] = {"max-backoff-ms", "COMMERCE_RELAY_MAX_BACKOFF_MS", "MS", "5000", 10, 600000,
		"longest wait between failed rounds (the wait doubles from 100 ms after each failure)", NULL},
	[OPT_LAG_INTERVAL_MS] = {"lag-interval-ms", "COMMERCE_RELAY_LAG_INTERVAL_MS", "MS", "5000", 100, 3600000,
		"how often the backlog (undelivered events, age of the oldest) is measured", NULL},
	[OPT_STATS_INTERVAL_MS] = {"stats-interval-ms", "COMMERCE_RELAY_STATS_INTERVAL_MS", "MS", "60000", 0,
		86400000, "a stats line on stderr every MS; 0: none", NULL},
	[OPT_METRICS_LISTEN] = {"metrics-listen", "COMMERCE_RELAY_METRICS_LISTEN", "HOST:PORT", NULL, 0, 0,
		"serve Prometheus metrics on http://HOST:PORT/metrics", "none"},
	[OPT_KAFKA] = {"kafka", "COMMERCE_RELAY_KAFKA", "NAME=VALUE[,...]", NULL, 0, 0,
		"librdkafka producer settings (e.g. security.protocol=SSL); may be repeated; "
		"enable.idempotence and acks=all cannot be turned off", "none"},
};

/* "a=1,b=2" adds two settings; each must be NAME=VALUE. */
static void
parse_kafka_settings(const char *argv0, const char *value)
{
	char *copy = strdup(value), *save = NULL;

	if (copy == NULL) {
		fprintf(stderr, "%s: out of memory\n", argv0);
		exit(1);
	}
	/* copy is never freed: the settings point into it for the process's life */
	for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		if (strchr(item, '=') == NULL || item[0] == '=')
			options_die(argv0, OPT_KAFKA, item, "expected NAME=VALUE");
		if (relay_config.n_kafka_settings == RELAY_MAX_KAFKA_SETTINGS)
			options_die(argv0, OPT_KAFKA, item, "too many settings");
		relay_config.kafka_settings[relay_config.n_kafka_settings++] = item;
	}
}

static void
apply_option(const char *argv0, int id, const char *value)
{
	switch (id) {
	case OPT_DB: relay_config.conninfo = value; break;
	case OPT_BROKERS: relay_config.brokers = value; break;
	case OPT_TOPIC_PREFIX: relay_config.topic_prefix = value; break;
	case OPT_BATCH: relay_config.batch = (int) options_number(argv0, id, value); break;
	case OPT_LEASE_MS: relay_config.lease_ms = (int) options_number(argv0, id, value); break;
	case OPT_DELIVERY_TIMEOUT_MS: relay_config.delivery_timeout_ms = (int) options_number(argv0, id, value); break;
	case OPT_IDLE_MS: relay_config.idle_ms = (int) options_number(argv0, id, value); break;
	case OPT_MAX_BACKOFF_MS: relay_config.max_backoff_ms = (int) options_number(argv0, id, value); break;
	case OPT_LAG_INTERVAL_MS: relay_config.lag_interval_ms = (int) options_number(argv0, id, value); break;
	case OPT_STATS_INTERVAL_MS: relay_config.stats_interval_ms = (int) options_number(argv0, id, value); break;
	case OPT_METRICS_LISTEN:
		options_host_port(argv0, id, value, relay_config.metrics_host, sizeof(relay_config.metrics_host),
						  &relay_config.metrics_port);
		break;
	case OPT_KAFKA: parse_kafka_settings(argv0, value); break;
	}
}

void
relay_config_load(int argc, char **argv)
{
	static const option_table_t table = {
		option_specs, OPT__COUNT,
		"commerce-relay: delivers pg_commerce's outbox (commerce.outbox) to Kafka, at least once,\n"
		"in order per aggregate (librdkafka idempotent producer + libpq).\n",
		"Topics, message keys, headers and the event schema: docs/events.md.\n"
		"SIGTERM or SIGINT: finish the batch in flight (deliver and acknowledge it), exit 0.\n",
		apply_option
	};
	memset(&relay_config, 0, sizeof(relay_config));
	options_load(&table, argc, argv);
}

void
relay_log(relay_severity_t severity, const char *fmt, ...)
{
	static const char *const words[] = {"ERROR", "WARNING", "LOG"};
	va_list ap;

	va_start(ap, fmt);
	log_line("commerce-relay", words[severity], fmt, ap);
	va_end(ap);
}
