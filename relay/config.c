/*
 * config.c
 *      One table describes every option: its flag, its environment variable,
 *      its default and its help text, so --help cannot drift from the parser
 *      (the same discipline as commerce-http's frontend/config.c).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
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

typedef struct option_spec {
	const char *flag;
	const char *env;
	const char *metavar;
	const char *default_value;	/* applied before the environment and the command line; NULL: unset */
	long min, max;				/* numeric options only (max > 0) */
	const char *help;
	const char *default_note;	/* --help's words on the default, after it or instead of it */
} option_spec_t;

/*
 * Why the defaults are what they are:
 * - batch 1000: one claim and one ack (two short UPDATEs of 1,000 rows) per
 *   thousand events keeps the database's share small, and a thousand
 *   messages are what librdkafka batches into a few produce requests anyway.
 * - lease 30 s against a delivery timeout of 10 s: a batch is acknowledged or
 *   released long before another relay may take it, so two live relays never
 *   deliver the same batch; only a dead or stalled relay's batch is taken
 *   again, after at most 30 s.
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
		"a claimed batch not acknowledged within MS may be claimed by another relay "
		"(must exceed --delivery-timeout-ms)", NULL},
	[OPT_DELIVERY_TIMEOUT_MS] = {"delivery-timeout-ms", "COMMERCE_RELAY_DELIVERY_TIMEOUT_MS", "MS", "10000",
		100, 3600000,
		"an event Kafka has not confirmed within MS counts as failed: the batch is released and "
		"retried", NULL},
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

static void
print_help(FILE *out, const char *argv0)
{
	fprintf(out,
			"Usage: %s [OPTION]...\n"
			"commerce-relay: delivers pg_commerce's outbox (commerce.outbox) to Kafka, at least once,\n"
			"in order per aggregate (librdkafka idempotent producer + libpq).\n\n",
			argv0);
	for (int i = 0; i < OPT__COUNT; i++) {
		const option_spec_t *o = &option_specs[i];
		char flag[64];

		snprintf(flag, sizeof(flag), "--%s %s", o->flag, o->metavar);
		fprintf(out, "  %-28s %s (default", flag, o->help);
		if (o->default_value != NULL)
			fprintf(out, " %s%s%s)\n", o->default_value, o->default_note != NULL ? ": " : "",
					o->default_note != NULL ? o->default_note : "");
		else
			fprintf(out, ": %s)\n", o->default_note);
		fprintf(out, "  %-28s [env %s]\n", "", o->env);
	}
	fprintf(out, "  %-28s %s\n\n", "--help", "print this help and exit");
	fprintf(out, "A command-line option wins over its environment variable.\n"
			"Topics, message keys, headers and the event schema: docs/events.md.\n"
			"SIGTERM or SIGINT: finish the batch in flight (deliver and acknowledge it), exit 0.\n");
}

static void
die_option(const char *argv0, int id, const char *value, const char *why)
{
	fprintf(stderr, "%s: invalid --%s '%s': %s (see --help)\n", argv0, option_specs[id].flag, value, why);
	exit(2);
}

static int
parse_number(const char *argv0, int id, const char *value)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0')
		die_option(argv0, id, value, "not a number");
	if (n < option_specs[id].min || n > option_specs[id].max) {
		char why[96];

		snprintf(why, sizeof(why), "must be between %ld and %ld", option_specs[id].min, option_specs[id].max);
		die_option(argv0, id, value, why);
	}
	return (int) n;
}

static void
parse_listen(const char *argv0, const char *value)
{
	const char *colon = strrchr(value, ':');
	size_t host_len;
	char *end;
	long port;

	if (colon == NULL)
		die_option(argv0, OPT_METRICS_LISTEN, value, "expected HOST:PORT");
	host_len = (size_t) (colon - value);
	if (host_len == 0 || host_len >= sizeof(relay_config.metrics_host))
		die_option(argv0, OPT_METRICS_LISTEN, value, "bad host");
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
		die_option(argv0, OPT_METRICS_LISTEN, value, "bad port");
	memcpy(relay_config.metrics_host, value, host_len);
	relay_config.metrics_host[host_len] = '\0';
	relay_config.metrics_port = (unsigned short) port;
}

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
			die_option(argv0, OPT_KAFKA, item, "expected NAME=VALUE");
		if (relay_config.n_kafka_settings == RELAY_MAX_KAFKA_SETTINGS)
			die_option(argv0, OPT_KAFKA, item, "too many settings");
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
	case OPT_BATCH: relay_config.batch = parse_number(argv0, id, value); break;
	case OPT_LEASE_MS: relay_config.lease_ms = parse_number(argv0, id, value); break;
	case OPT_DELIVERY_TIMEOUT_MS: relay_config.delivery_timeout_ms = parse_number(argv0, id, value); break;
	case OPT_IDLE_MS: relay_config.idle_ms = parse_number(argv0, id, value); break;
	case OPT_MAX_BACKOFF_MS: relay_config.max_backoff_ms = parse_number(argv0, id, value); break;
	case OPT_LAG_INTERVAL_MS: relay_config.lag_interval_ms = parse_number(argv0, id, value); break;
	case OPT_STATS_INTERVAL_MS: relay_config.stats_interval_ms = parse_number(argv0, id, value); break;
	case OPT_METRICS_LISTEN: parse_listen(argv0, value); break;
	case OPT_KAFKA: parse_kafka_settings(argv0, value); break;
	}
}

void
relay_config_load(int argc, char **argv)
{
	struct option long_options[OPT__COUNT + 2];
	const char *argv0 = argv[0];

	memset(&relay_config, 0, sizeof(relay_config));
	for (int i = 0; i < OPT__COUNT; i++)
		if (option_specs[i].default_value != NULL)
			apply_option(argv0, i, option_specs[i].default_value);

	for (int i = 0; i < OPT__COUNT; i++) {
		const char *value = getenv(option_specs[i].env);

		if (value != NULL && value[0] != '\0')
			apply_option(argv0, i, value);
	}

	for (int i = 0; i < OPT__COUNT; i++)
		long_options[i] = (struct option) {option_specs[i].flag, required_argument, NULL, i};
	long_options[OPT__COUNT] = (struct option) {"help", no_argument, NULL, 'h'};
	long_options[OPT__COUNT + 1] = (struct option) {NULL, 0, NULL, 0};

	for (;;) {
		int c = getopt_long(argc, argv, "h", long_options, NULL);

		if (c == -1)
			break;
		if (c == 'h') {
			print_help(stdout, argv0);
			exit(0);
		}
		if (c < 0 || c >= OPT__COUNT) {
			print_help(stderr, argv0);
			exit(2);
		}
		apply_option(argv0, c, optarg);
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", argv0, argv[optind]);
		exit(2);
	}
	/* a batch still being delivered must not be taken by another relay */
	if (relay_config.lease_ms <= relay_config.delivery_timeout_ms + 1000) {
		fprintf(stderr, "%s: --lease-ms %d must exceed --delivery-timeout-ms %d by more than a second "
				"(see --help)\n", argv0, relay_config.lease_ms, relay_config.delivery_timeout_ms);
		exit(2);
	}
}

void
relay_log(relay_severity_t severity, const char *fmt, ...)
{
	static const char *const words[] = {"ERROR", "WARNING", "LOG"};
	char line[1024];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = (int) strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t) n, ".%03ldZ commerce-relay %s: ",
				  now.tv_nsec / 1000000, words[severity]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
	va_end(ap);
	if (n > (int) sizeof(line) - 2)
		n = (int) sizeof(line) - 2;
	line[n++] = '\n';
	/* one write(2): the metrics thread's lines do not interleave with ours */
	if (write(STDERR_FILENO, line, (size_t) n) < 0) {
		/* nowhere left to say it */
	}
}
