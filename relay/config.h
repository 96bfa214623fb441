/*
 * config.h
 *      Options of commerce-relay: command line first, then environment, then
 *      defaults.  Read once in main() and immutable afterwards, so the
 *      metrics thread reads it without locks.
 */
#ifndef COMMERCE_RELAY_CONFIG_H
#define COMMERCE_RELAY_CONFIG_H

#define RELAY_MAX_KAFKA_SETTINGS 32

typedef struct relay_config {
	const char *conninfo;		/* NULL: libpq's PG* environment */
	const char *brokers;		/* Kafka bootstrap.servers */
	const char *topic_prefix;	/* topics are <prefix>orders and <prefix>coupons */
	int batch;					/* events claimed per round */
	int lease_ms;				/* how long a claimed batch is ours */
	int delivery_timeout_ms;	/* librdkafka message.timeout.ms */
	int idle_ms;				/* wait after a round that found nothing */
	int max_backoff_ms;			/* longest wait between failed rounds */
	int lag_interval_ms;		/* how often the backlog is measured */
	int stats_interval_ms;		/* a stats line on stderr every so often; 0: none */
	char metrics_host[256];		/* "": no /metrics listener */
	unsigned short metrics_port;
	const char *kafka_settings[RELAY_MAX_KAFKA_SETTINGS];	/* "name=value", librdkafka's names */
	int n_kafka_settings;
} relay_config_t;

extern relay_config_t relay_config;

typedef enum relay_severity {
	RELAY_ERROR,				/* the relay cannot do what it should (and may exit) */
	RELAY_WARNING,				/* it goes on, but something is wrong */
	RELAY_LOG					/* start, stop, a connection back, stats */
} relay_severity_t;

/* One line on stderr, "2026-12-03T07:15:00.123Z commerce-relay LEVEL: text". */
void relay_log(relay_severity_t severity, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Exits the process on --help (0) or on a bad option (2). */
void relay_config_load(int argc, char **argv);

#endif
