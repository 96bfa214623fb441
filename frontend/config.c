/*
 * config.c
 *      One table describes every option: its flag, its environment variable,
 *      its default and its help text (options.h), so --help cannot drift
 *      from the parser.
 */
#include "config.h"

#include "log_line.h"
#include "options.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

commerce_config_t commerce_config;

typedef enum option_id {
	OPT_LISTEN, OPT_DB, OPT_THREADS, OPT_POOL_SIZE, OPT_PIPELINE_DEPTH, OPT_QUEUE_SIZE,
	OPT_DEADLINE_MS, OPT_MAX_BODY, OPT_MAX_CONNECTIONS, OPT_MAX_CONNECTIONS_PER_ADDRESS, OPT_HEADER_TIMEOUT_MS,
	OPT_DRAIN_MS, OPT_LOG_LEVEL, OPT_AUTH, OPT_JWT_KEY, OPT_JWT_ALG, OPT_JWT_ISSUER, OPT_JWT_AUDIENCE,
	OPT_RATE_LIMIT_READS, OPT_RATE_LIMIT_WRITES, OPT_ACCESS_LOG, OPT_OPERATOR_DB, OPT_OPERATOR_POOL_SIZE,
	OPT_DB_READ, OPT_DB_READ_POOL_SIZE, OPT_DB_READ_MAX_LAG_MS,
	OPT__COUNT
} option_id_t;

/*
 * Why the defaults are what they are:
 * - header-timeout-ms: h2o's default is 10 s.  A real client sends its head
 *   and a body of at most --max-body in milliseconds, and 5 s still leaves
 *   slow mobile links room; every second less is a second less that a slow
 *   client holds one of --max-connections.  It is also the idle keep-alive
 *   limit (h2o 2.2.5 has one timer for both), equal to the default deadline.
 * - rate-limit-reads/-writes: a person clicking and scrolling makes a few
 *   requests a second at most.
 * - db-read-max-lag-ms: a second is what a shopper cannot tell from "now" on
 *   a product page, and ten times what a streaming standby lags under the
 *   sale's load.
 */
static const option_spec_t option_specs[OPT__COUNT] = {
	[OPT_LISTEN] = {"listen", "COMMERCE_HTTP_LISTEN", "HOST:PORT", "127.0.0.1:8080", 0, 0,
		"address to listen on; every thread binds it with SO_REUSEPORT", NULL},
	[OPT_DB] = {"db", "COMMERCE_HTTP_DB", "CONNINFO", NULL, 0, 0,
		"libpq conninfo string or postgresql:// URI", "libpq's PGHOST, PGPORT, PGUSER ... environment"},
	[OPT_THREADS] = {"threads", "COMMERCE_HTTP_THREADS", "N", NULL, 1, 256,
		"event-loop threads, each with its own listener and connections", "the number of cores"},
	[OPT_POOL_SIZE] = {"pool-size", "COMMERCE_HTTP_POOL_SIZE", "N", "4", 1, 256,
		"PostgreSQL connections per thread", NULL},
	[OPT_PIPELINE_DEPTH] = {"pipeline-depth", "COMMERCE_HTTP_PIPELINE_DEPTH", "N", "16", 1, 1024,
		"REST calls pipelined on one connection at a time", NULL},
	[OPT_QUEUE_SIZE] = {"queue-size", "COMMERCE_HTTP_QUEUE_SIZE", "N", "16384", 0, 1000000,
		"calls per thread waiting for a free connection; beyond it: 503 + Retry-After", NULL},
	[OPT_DEADLINE_MS] = {"deadline-ms", "COMMERCE_HTTP_DEADLINE_MS", "MS", "5000", 1, 3600000,
		"a call not answered by the database within MS gets 504 TIMEOUT", NULL},
	[OPT_MAX_BODY] = {"max-body", "COMMERCE_HTTP_MAX_BODY", "BYTES", "65536", 64, 16777216,
		"largest accepted request body; larger ones get 413", NULL},
	[OPT_MAX_CONNECTIONS] = {"max-connections", "COMMERCE_HTTP_MAX_CONNECTIONS", "N", "16384", 1, 1000000,
		"open client connections over all threads; beyond it a new connection is answered "
		"503 + Retry-After and closed", NULL},
	[OPT_MAX_CONNECTIONS_PER_ADDRESS] = {"max-connections-per-address", "COMMERCE_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
		"N", "0", 0, 1000000,
		"open connections one client IP address may hold; beyond it 503 + Retry-After and closed; "
		"0: no limit", "behind a proxy every client has the proxy's address"},
	[OPT_HEADER_TIMEOUT_MS] = {"header-timeout-ms", "COMMERCE_HTTP_HEADER_TIMEOUT_MS", "MS", "5000", 100, 3600000,
		"a connection that has not sent a whole request (head and body) within MS of connecting "
		"or of its last answer is closed", NULL},
	[OPT_DRAIN_MS] = {"drain-ms", "COMMERCE_HTTP_DRAIN_MS", "MS", "10000", 0, 3600000,
		"on SIGTERM, longest wait for in-flight calls before exiting", NULL},
	[OPT_LOG_LEVEL] = {"log-level", "COMMERCE_HTTP_LOG_LEVEL", "LEVEL", "warning", 0, 0,
		"warning or info; info adds a line per refused duplicate coupon attempt (user, coupon)", NULL},
	[OPT_AUTH] = {"auth", "COMMERCE_HTTP_AUTH", "MODE", "jwt", 0, 0,
		"jwt: every /api route needs 'Authorization: Bearer <JWT>'; none: no authentication, "
		"the user is whoever the request names (development only; logged as a warning)", NULL},
	[OPT_JWT_KEY] = {"jwt-key", "COMMERCE_HTTP_JWT_KEY", "FILE", NULL, 0, 0,
		"the key tokens are verified with, used byte for byte: the HMAC secret (at least 32 bytes) "
		"for HS256, a PEM public key for RS256 or ES256", "none; required with --auth jwt"},
	[OPT_JWT_ALG] = {"jwt-alg", "COMMERCE_HTTP_JWT_ALG", "ALG", "HS256", 0, 0,
		"the one accepted signing algorithm: HS256, RS256 or ES256; a token signed otherwise is refused", NULL},
	[OPT_JWT_ISSUER] = {"jwt-issuer", "COMMERCE_HTTP_JWT_ISSUER", "ISS", NULL, 0, 0,
		"when given, a token's iss claim must equal it", "iss not checked"},
	[OPT_JWT_AUDIENCE] = {"jwt-audience", "COMMERCE_HTTP_JWT_AUDIENCE", "AUD", NULL, 0, 0,
		"when given, a token's aud claim must be or contain it", "aud not checked"},
	[OPT_RATE_LIMIT_READS] = {"rate-limit-reads", "COMMERCE_HTTP_RATE_LIMIT_READS", "N", "50", 0, 1000000,
		"GET requests per second one customer's token may make, in bursts of 2N; beyond it "
		"429 + Retry-After; operators are not limited; 0: no limit", NULL},
	[OPT_RATE_LIMIT_WRITES] = {"rate-limit-writes", "COMMERCE_HTTP_RATE_LIMIT_WRITES", "N", "20", 0, 1000000,
		"POST requests per second one customer's token may make, in bursts of 2N; beyond it "
		"429 + Retry-After; operators are not limited; 0: no limit", NULL},
	[OPT_ACCESS_LOG] = {"access-log", "COMMERCE_HTTP_ACCESS_LOG", "FILE", NULL, 0, 0,
		"append one JSON line per request to FILE (- for stderr): time, request id (also sent as "
		"X-Request-Id), method, route, status, ms, user, client address", "no access log"},
	[OPT_OPERATOR_DB] = {"operator-db", "COMMERCE_HTTP_OPERATOR_DB", "CONNINFO", NULL, 0, 0,
		"libpq conninfo of a login role in commerce_operator, for the /api/admin routes only (their "
		"own small pool, so the customer pool never holds operator rights)", "none: those routes answer 403"},
	[OPT_OPERATOR_POOL_SIZE] = {"operator-pool-size", "COMMERCE_HTTP_OPERATOR_POOL_SIZE", "N", "1", 1, 64,
		"PostgreSQL connections per thread for the operator routes", NULL},
	[OPT_DB_READ] = {"db-read", "COMMERCE_HTTP_DB_READ", "CONNINFO", NULL, 0, 0,
		"libpq conninfo of a standby (e.g. target_session_attrs=prefer-standby) for the catalogue "
		"reads only: product list, product, popular products; a user's own orders, balance and "
		"coupons stay on --db", "none: every read on --db"},
	[OPT_DB_READ_POOL_SIZE] = {"db-read-pool-size", "COMMERCE_HTTP_DB_READ_POOL_SIZE", "N", "4", 1, 256,
		"PostgreSQL connections per thread to the --db-read standby", NULL},
	[OPT_DB_READ_MAX_LAG_MS] = {"db-read-max-lag-ms", "COMMERCE_HTTP_DB_READ_MAX_LAG_MS", "MS", "1000", 1, 3600000,
		"a standby that may be more than MS behind the primary is not used: its reads go to --db "
		"until it catches up", NULL},
};

static void
apply_option(const char *argv0, int id, const char *value)
{
	switch (id) {
	case OPT_LISTEN:
		options_host_port(argv0, id, value, commerce_config.listen_host, sizeof(commerce_config.listen_host),
						  &commerce_config.listen_port);
		break;
	case OPT_DB: commerce_config.conninfo = value; break;
	case OPT_THREADS: commerce_config.threads = (int) options_number(argv0, id, value); break;
	case OPT_POOL_SIZE: commerce_config.pool_size = (int) options_number(argv0, id, value); break;
	case OPT_PIPELINE_DEPTH: commerce_config.pipeline_depth = (int) options_number(argv0, id, value); break;
	case OPT_QUEUE_SIZE: commerce_config.queue_size = (int) options_number(argv0, id, value); break;
	case OPT_DEADLINE_MS: commerce_config.deadline_ms = (int) options_number(argv0, id, value); break;
	case OPT_MAX_BODY: commerce_config.max_body = (size_t) options_number(argv0, id, value); break;
	case OPT_MAX_CONNECTIONS: commerce_config.max_connections = (int) options_number(argv0, id, value); break;
	case OPT_MAX_CONNECTIONS_PER_ADDRESS:
		commerce_config.max_connections_per_address = (int) options_number(argv0, id, value);
		break;
	case OPT_HEADER_TIMEOUT_MS: commerce_config.header_timeout_ms = (int) options_number(argv0, id, value); break;
	case OPT_DRAIN_MS: commerce_config.drain_ms = (int) options_number(argv0, id, value); break;
	case OPT_LOG_LEVEL:
		/* in the order of commerce_log_level_t */
		commerce_config.log_level = options_choice(argv0, id, value, (const char *[]) {"warning", "info", NULL});
		break;
	case OPT_AUTH:
		/* in the order of commerce_auth_t */
		commerce_config.auth = options_choice(argv0, id, value, (const char *[]) {"jwt", "none", NULL});
		break;
	case OPT_JWT_KEY: commerce_config.jwt_key_file = value; break;
	case OPT_JWT_ALG:
		{
			static const char *const algs[] = {"HS256", "RS256", "ES256", NULL};

			commerce_config.jwt_alg = algs[options_choice(argv0, id, value, algs)];
		}
		break;
	case OPT_JWT_ISSUER: commerce_config.jwt_issuer = value; break;
	case OPT_JWT_AUDIENCE: commerce_config.jwt_audience = value; break;
	case OPT_RATE_LIMIT_READS: commerce_config.rate_limit_reads = (int) options_number(argv0, id, value); break;
	case OPT_RATE_LIMIT_WRITES: commerce_config.rate_limit_writes = (int) options_number(argv0, id, value); break;
	case OPT_ACCESS_LOG: commerce_config.access_log = value; break;
	case OPT_OPERATOR_DB: commerce_config.operator_conninfo = value; break;
	case OPT_OPERATOR_POOL_SIZE: commerce_config.operator_pool_size = (int) options_number(argv0, id, value); break;
	case OPT_DB_READ: commerce_config.read_conninfo = value; break;
	case OPT_DB_READ_POOL_SIZE: commerce_config.read_pool_size = (int) options_number(argv0, id, value); break;
	case OPT_DB_READ_MAX_LAG_MS: commerce_config.read_max_lag_ms = (int) options_number(argv0, id, value); break;
	}
}

void
commerce_config_load(int argc, char **argv)
{
	static const option_table_t table = {
		option_specs, OPT__COUNT,
		"commerce-http: the REST front of pg_commerce (h2o + libpq pipeline mode).\n",
		"Routes, error codes and shapes: docs/openapi.yaml.\n"
		"SIGTERM or SIGINT: stop accepting, finish in-flight requests, exit 0.\n",
		apply_option
	};
	const char *argv0 = argv[0];
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	/* the defaults no string can say, then the table's */
	memset(&commerce_config, 0, sizeof(commerce_config));
	commerce_config.threads = cores > 0 ? (int) (cores > 256 ? 256 : cores) : 1;
	options_load(&table, argc, argv);
	if (commerce_config.auth == COMMERCE_AUTH_JWT && commerce_config.jwt_key_file == NULL) {
		fprintf(stderr, "%s: --auth jwt (the default) needs --jwt-key FILE; "
				"--auth none turns authentication off (see --help)\n", argv0);
		exit(2);
	}
}

void
commerce_log(commerce_severity_t severity, const char *fmt, ...)
{
	static const char *const words[] = {"ERROR", "WARNING", "LOG", "INFO"};
	va_list ap;

	va_start(ap, fmt);
	log_line("commerce-http", words[severity], fmt, ap);
	va_end(ap);
}
