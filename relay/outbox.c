/*
 * outbox.c
 *      Claims, acknowledgements and releases over one libpq connection, with
 *      prepared statements.  The message itself is built in the claim
 *      statement (jsonb_build_object), so the relay never parses JSON.
 */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "counter.h"
#include "metrics.h"

/*
 * The envelope of docs/events.md around the payload the order's own
 * transaction wrote.  claim_events returns its batch in id order; ORDER BY
 * says so here too, because the order per aggregate depends on it.
 */
static const char claim_sql[] =
	"SELECT e.event_id, e.event_id::text, e.event_type, e.aggregate_id::text,"
	" pg_catalog.jsonb_build_object("
	"   'schema_version', " RELAY_SCHEMA_VERSION ", 'event_id', e.event_id, 'event_type', e.event_type,"
	"   'aggregate_id', e.aggregate_id, 'occurred_at', e.created_at, 'data', e.payload)::text,"
	" (extract(epoch FROM e.created_at) * 1000)::bigint"
	" FROM commerce.claim_events($1::integer, $2::bigint * interval '1 millisecond') e"
	" ORDER BY e.event_id";
static const char ack_sql[] = "SELECT commerce.ack_events($1::bigint[])";
static const char release_sql[] = "SELECT commerce.release_events($1::bigint[])";
static const char extend_sql[] = "SELECT commerce.extend_events($1::bigint[], $2::bigint * interval '1 millisecond')";
static const char lag_sql[] =
	"SELECT l.pending,"
	" COALESCE((extract(epoch FROM pg_catalog.clock_timestamp() - l.oldest_pending_at) * 1000)::bigint, 0)"
	" FROM commerce.outbox_lag() l";

static const struct {
	const char *name, *sql;
} statements[] = {
	{"claim", claim_sql}, {"ack", ack_sql}, {"release", release_sql}, {"extend", extend_sql}, {"lag", lag_sql},
};

static void
db_error(outbox_t *o, const char *what, const PGresult *res)
{
	const char *message = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(o->conn);

	COUNTER_BUMP(relay_metrics.db_errors);
	relay_log(RELAY_WARNING, "%s: %s", what, message != NULL && message[0] != '\0' ? message : "failed");
	if (PQstatus(o->conn) != CONNECTION_OK) {
		relay_log(RELAY_WARNING, "database connection lost; reconnecting");
		outbox_close(o);
	}
}

int
outbox_connect(outbox_t *o)
{
	const char *keywords[] = {"dbname", "fallback_application_name", NULL};
	const char *values[] = {relay_config.conninfo, "commerce-relay", NULL};
	PGresult *res;

	outbox_close(o);
	o->conn = PQconnectdbParams(keywords, values, 1);
	if (o->conn == NULL) {
		COUNTER_BUMP(relay_metrics.db_errors);
		relay_log(RELAY_WARNING, "cannot connect to the database: out of memory");
		return -1;
	}
	if (PQstatus(o->conn) != CONNECTION_OK) {
		COUNTER_BUMP(relay_metrics.db_errors);
		relay_log(RELAY_WARNING, "cannot connect to the database: %s", PQerrorMessage(o->conn));
		outbox_close(o);
		return -1;
	}
	/* occurred_at in UTC whatever the role's or the server's time zone */
	res = PQexec(o->conn, "SET TimeZone = 'UTC'");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		db_error(o, "SET TimeZone", res);
		PQclear(res);
		outbox_close(o);
		return -1;
	}
	PQclear(res);
	for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
		res = PQprepare(o->conn, statements[i].name, statements[i].sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			/* e.g. the extension older than 0.7.0, or the role not in commerce_relay */
			relay_log(RELAY_ERROR, "cannot prepare the %s statement: %s", statements[i].name,
					  PQresultErrorMessage(res));
			COUNTER_BUMP(relay_metrics.db_errors);
			PQclear(res);
			outbox_close(o);
			return -1;
		}
		PQclear(res);
	}
	COUNTER_SET(relay_metrics.db_connected, 1);
	return 0;
}

int
outbox_connected(const outbox_t *o)
{
	return o->conn != NULL && PQstatus(o->conn) == CONNECTION_OK;
}

void
outbox_close(outbox_t *o)
{
	if (o->conn != NULL)
		PQfinish(o->conn);
	o->conn = NULL;
	COUNTER_SET(relay_metrics.db_connected, 0);
}

int
outbox_claim(outbox_t *o, int limit, int lease_ms, relay_batch_t *b)
{
	char limit_text[16], lease_text[16];
	const char *params[2] = {limit_text, lease_text};
	PGresult *res;

	memset(b, 0, sizeof(*b));
	snprintf(limit_text, sizeof(limit_text), "%d", limit);
	snprintf(lease_text, sizeof(lease_text), "%d", lease_ms);
	res = PQexecPrepared(o->conn, "claim", 2, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_error(o, "claim_events", res);
		PQclear(res);
		return -1;
	}
	b->result = res;
	b->n = PQntuples(res);
	if (b->n == 0)
		return 0;
	if ((b->events = calloc((size_t) b->n, sizeof(*b->events))) == NULL) {
		/* the claim stands: its lease runs out and the events are claimed again */
		relay_log(RELAY_WARNING, "out of memory for a batch of %d events", b->n);
		batch_free(b);
		return -1;
	}
	for (int i = 0; i < b->n; i++) {
		relay_event_t *e = &b->events[i];

		e->batch = b;
		e->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		e->id_text = PQgetvalue(res, i, 1);
		e->type = PQgetvalue(res, i, 2);
		e->key = PQgetvalue(res, i, 3);
		e->value = PQgetvalue(res, i, 4);
		e->value_len = (size_t) PQgetlength(res, i, 4);
		e->created_ms = strtoll(PQgetvalue(res, i, 5), NULL, 10);
	}
	return 0;
}

/* "{1,2,3}": the batch's ids as one bigint[] parameter. */
static char *
id_array(const relay_batch_t *b)
{
	size_t cap = (size_t) b->n * 21 + 3, len = 0;
	char *text = malloc(cap);

	if (text == NULL)
		return NULL;
	text[len++] = '{';
	for (int i = 0; i < b->n; i++)
		len += (size_t) snprintf(text + len, cap - len, "%s%" PRId64, i > 0 ? "," : "", b->events[i].id);
	text[len++] = '}';
	text[len] = '\0';
	return text;
}

/* The statement with the batch's ids as $1 and, when given, second as $2. */
static int
call_with_ids(outbox_t *o, const char *statement, const char *what, const relay_batch_t *b, const char *second)
{
	char *ids = id_array(b);
	const char *params[2] = {ids, second};
	PGresult *res;
	int ok;

	if (ids == NULL) {
		relay_log(RELAY_WARNING, "%s: out of memory", what);
		return -1;
	}
	if (!outbox_connected(o)) {
		free(ids);
		return -1;
	}
	res = PQexecPrepared(o->conn, statement, second != NULL ? 2 : 1, params, NULL, NULL, 0);
	free(ids);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		db_error(o, what, res);
	PQclear(res);
	return ok ? 0 : -1;
}

int
outbox_ack(outbox_t *o, const relay_batch_t *b)
{
	return call_with_ids(o, "ack", "ack_events", b, NULL);
}

int
outbox_release(outbox_t *o, const relay_batch_t *b)
{
	return call_with_ids(o, "release", "release_events", b, NULL);
}

int
outbox_extend(outbox_t *o, const relay_batch_t *b, int lease_ms)
{
	char lease_text[16];

	snprintf(lease_text, sizeof(lease_text), "%d", lease_ms);
	return call_with_ids(o, "extend", "extend_events", b, lease_text);
}

int
outbox_lag(outbox_t *o, int64_t *pending, int64_t *oldest_ms)
{
	PGresult *res = PQexecPrepared(o->conn, "lag", 0, NULL, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		db_error(o, "outbox_lag", res);
		PQclear(res);
		return -1;
	}
	*pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*oldest_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return 0;
}

void
batch_free(relay_batch_t *b)
{
	free(b->events);
	if (b->result != NULL)
		PQclear(b->result);
	memset(b, 0, sizeof(*b));
}
