/*
 * metrics.c
 *      Prometheus text exposition of every worker's counters and gauges.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "counter.h"
#include "worker.h"

static const int status_codes[METRICS_STATUS__COUNT] = {
#define METRICS_STATUS_CODE(code) code,
	METRICS_STATUS_LIST(METRICS_STATUS_CODE)
#undef METRICS_STATUS_CODE
	0,
};

static const uint64_t latency_bounds_us[METRICS_LATENCY_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000
};

void
metrics_record(metrics_t *m, route_id_t route, int status, uint64_t latency_us)
{
	int s = METRICS_STATUS_OTHER;
	int b = 0;

	for (int i = 0; i < METRICS_STATUS_OTHER; i++)
		if (status_codes[i] == status)
			s = i;
	COUNTER_BUMP(m->requests[route][s]);
	while (b < METRICS_LATENCY_BUCKETS && latency_us > latency_bounds_us[b])
		b++;
	COUNTER_BUMP(m->latency_buckets[b]);
	COUNTER_BUMP(m->latency_count);
	COUNTER_ADD(m->latency_sum_us, latency_us);
}

void
metrics_count_coupon_duplicate(metrics_t *m)
{
	COUNTER_BUMP(m->coupon_duplicates);
}

void
metrics_count_refused_connection(metrics_t *m, refused_connection_t reason)
{
	COUNTER_BUMP(m->rejected_connections[reason]);
}

typedef struct text {
	char *buf;
	size_t len, cap;
} text_t;

static void __attribute__((format(printf, 2, 3)))
text_printf(text_t *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t) n < t->cap - t->len)
			break;
		t->cap = t->cap * 2 + (size_t) n;
		t->buf = realloc(t->buf, t->cap);
	}
	t->len += (size_t) n;
}

char *
metrics_render(size_t *len)
{
	text_t t = {malloc(16384), 0, 16384};
	uint64_t cumulative = 0, count = 0, sum = 0;

	text_printf(&t, "# HELP commerce_http_requests_total HTTP requests answered, by route and status.\n"
				"# TYPE commerce_http_requests_total counter\n");
	for (int r = 0; r < ROUTE__COUNT; r++)
		for (int s = 0; s < METRICS_STATUS__COUNT; s++) {
			uint64_t n = 0;

			for (int w = 0; w < worker_count; w++)
				n += COUNTER_LOAD(workers[w].metrics.requests[r][s]);
			if (n == 0)
				continue;
			if (status_codes[s] != 0)
				text_printf(&t, "commerce_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
							route_labels[r], status_codes[s], (unsigned long long) n);
			else
				text_printf(&t, "commerce_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
							route_labels[r], (unsigned long long) n);
		}

	text_printf(&t, "# HELP commerce_http_request_duration_seconds Time from routing to response.\n"
				"# TYPE commerce_http_request_duration_seconds histogram\n");
	for (int b = 0; b <= METRICS_LATENCY_BUCKETS; b++) {
		for (int w = 0; w < worker_count; w++)
			cumulative += COUNTER_LOAD(workers[w].metrics.latency_buckets[b]);
		if (b < METRICS_LATENCY_BUCKETS)
			text_printf(&t, "commerce_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
						(double) latency_bounds_us[b] / 1e6, (unsigned long long) cumulative);
		else
			text_printf(&t, "commerce_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
						(unsigned long long) cumulative);
	}
	for (int w = 0; w < worker_count; w++) {
		count += COUNTER_LOAD(workers[w].metrics.latency_count);
		sum += COUNTER_LOAD(workers[w].metrics.latency_sum_us);
	}
	text_printf(&t, "commerce_http_request_duration_seconds_sum %.6f\n"
				"commerce_http_request_duration_seconds_count %llu\n",
				(double) sum / 1e6, (unsigned long long) count);

	{
		db_pool_stats_t db = {0}, standby = {0};
		uint64_t queue_full = 0, unavailable = 0, timeouts = 0, open = 0, calls = 0, duplicates = 0;
		uint64_t connection_cap = 0, address_cap = 0;
		uint64_t reads_standby = 0, reads_primary = 0, standby_in_use = 0;
		int64_t lag_bound_ms = -1;

		for (int w = 0; w < worker_count; w++) {
			worker_t *wk = &workers[w];

			db_pool_stats_add(&wk->db, &db);
			if (wk->replica.enabled) {
				int64_t lag = COUNTER_LOAD(wk->replica.lag_bound_ms);

				db_pool_stats_add(&wk->replica.pool, &standby);
				reads_standby += COUNTER_LOAD(wk->replica.reads_standby);
				reads_primary += COUNTER_LOAD(wk->replica.reads_primary);
				standby_in_use += (uint64_t) COUNTER_LOAD(wk->replica.in_use);
				/* the worst thread's bound; not known on one thread: not known */
				if (w == 0 || (lag_bound_ms >= 0 && (lag < 0 || lag > lag_bound_ms)))
					lag_bound_ms = lag;
			}
			queue_full += COUNTER_LOAD(wk->metrics.rejected_queue_full);
			unavailable += COUNTER_LOAD(wk->metrics.rejected_unavailable);
			timeouts += COUNTER_LOAD(wk->metrics.timeouts);
			connection_cap += COUNTER_LOAD(wk->metrics.rejected_connections[REFUSED_CONNECTION_CAP]);
			address_cap += COUNTER_LOAD(wk->metrics.rejected_connections[REFUSED_ADDRESS_CAP]);
			duplicates += COUNTER_LOAD(wk->metrics.coupon_duplicates);
			open += (uint64_t) COUNTER_LOAD(wk->open_connections);
			calls += (uint64_t) COUNTER_LOAD(wk->calls_in_flight);
		}
		text_printf(&t,
					"# HELP commerce_http_db_connections Database connections per state.\n"
					"# TYPE commerce_http_db_connections gauge\n"
					"commerce_http_db_connections{state=\"ready\"} %llu\n"
					"commerce_http_db_connections{state=\"configured\"} %llu\n"
					"# HELP commerce_http_db_queries_in_flight Statements sent and not yet answered.\n"
					"# TYPE commerce_http_db_queries_in_flight gauge\n"
					"commerce_http_db_queries_in_flight %llu\n"
					"# HELP commerce_http_queue_waiting Calls waiting for a connection.\n"
					"# TYPE commerce_http_queue_waiting gauge\n"
					"commerce_http_queue_waiting %llu\n"
					"# HELP commerce_http_calls_in_flight Requests accepted and not yet answered.\n"
					"# TYPE commerce_http_calls_in_flight gauge\n"
					"commerce_http_calls_in_flight %llu\n"
					"# HELP commerce_http_open_connections Open client connections.\n"
					"# TYPE commerce_http_open_connections gauge\n"
					"commerce_http_open_connections %llu\n"
					"# HELP commerce_http_db_reconnects_total Connection attempts after a failure.\n"
					"# TYPE commerce_http_db_reconnects_total counter\n"
					"commerce_http_db_reconnects_total %llu\n"
					"# HELP commerce_http_db_connection_failures_total Connections lost or not established.\n"
					"# TYPE commerce_http_db_connection_failures_total counter\n"
					"commerce_http_db_connection_failures_total %llu\n"
					"# HELP commerce_http_db_retries_total Calls run again after a deadlock or serialization failure.\n"
					"# TYPE commerce_http_db_retries_total counter\n"
					"commerce_http_db_retries_total %llu\n"
					"# HELP commerce_http_rejected_total Calls answered 503/504 without a database answer.\n"
					"# TYPE commerce_http_rejected_total counter\n"
					"commerce_http_rejected_total{reason=\"queue_full\"} %llu\n"
					"commerce_http_rejected_total{reason=\"unavailable\"} %llu\n"
					"commerce_http_rejected_total{reason=\"timeout\"} %llu\n"
					"commerce_http_rejected_total{reason=\"connection_cap\"} %llu\n"
					"commerce_http_rejected_total{reason=\"address_cap\"} %llu\n"
					"# HELP commerce_http_coupon_duplicate_attempts_total Coupon issue requests refused "
					"because the user already holds the coupon.\n"
					"# TYPE commerce_http_coupon_duplicate_attempts_total counter\n"
					"commerce_http_coupon_duplicate_attempts_total %llu\n",
					(unsigned long long) db.ready, (unsigned long long) db.configured,
					(unsigned long long) db.in_flight, (unsigned long long) db.waiting,
					(unsigned long long) calls, (unsigned long long) open,
					(unsigned long long) db.reconnects, (unsigned long long) db.connect_failures,
					(unsigned long long) db.retries,
					(unsigned long long) queue_full, (unsigned long long) unavailable,
					(unsigned long long) timeouts, (unsigned long long) connection_cap,
					(unsigned long long) address_cap,
					(unsigned long long) duplicates);
		if (commerce_config.read_conninfo != NULL)
			text_printf(&t,
						"# HELP commerce_http_db_read_connections Connections to the --db-read standby per state.\n"
						"# TYPE commerce_http_db_read_connections gauge\n"
						"commerce_http_db_read_connections{state=\"ready\"} %llu\n"
						"commerce_http_db_read_connections{state=\"configured\"} %llu\n"
						"# HELP commerce_http_db_read_lag_bound_seconds How far the standby may be behind the "
						"primary at most (the worst thread; -1: not known yet).\n"
						"# TYPE commerce_http_db_read_lag_bound_seconds gauge\n"
						"commerce_http_db_read_lag_bound_seconds %.3f\n"
						"# HELP commerce_http_db_read_standby_in_use Threads whose catalogue reads go to the standby.\n"
						"# TYPE commerce_http_db_read_standby_in_use gauge\n"
						"commerce_http_db_read_standby_in_use %llu\n"
						"# HELP commerce_http_catalogue_reads_total Catalogue reads by the database they were sent to.\n"
						"# TYPE commerce_http_catalogue_reads_total counter\n"
						"commerce_http_catalogue_reads_total{database=\"standby\"} %llu\n"
						"commerce_http_catalogue_reads_total{database=\"primary\"} %llu\n",
						(unsigned long long) standby.ready, (unsigned long long) standby.configured,
						lag_bound_ms < 0 ? -1.0 : (double) lag_bound_ms / 1e3,
						(unsigned long long) standby_in_use,
						(unsigned long long) reads_standby, (unsigned long long) reads_primary);
	}
	*len = t.len;
	return t.buf;
}
