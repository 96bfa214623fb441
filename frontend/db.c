/*
 * db.c
 *      Connection state machine and result dispatch of the per-thread pool.
 *
 * Per connection: DOWN -(backoff timer)-> CONNECTING -(PQconnectPoll ok)->
 * PREPARING -(the prepare batch's Sync)-> READY; any failure goes back to
 * DOWN, failing every in-flight query with DB_LOST.  h2o watches a
 * dup() of the libpq socket (an h2o socket closes its fd) created with
 * DONT_READ so that h2o never reads libpq's bytes; the dup is re-made
 * whenever PQsocket() changes during connection.
 */
#include "db.h"

#include "config.h"
#include "counter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const statement_names[] = {
#define DB_STATEMENT_NAME(name, sql, nparams) #name,
	DB_STATEMENT_TABLE(DB_STATEMENT_NAME)
#undef DB_STATEMENT_NAME
};

static const char *const statement_sql[] = {
#define DB_STATEMENT_SQL(name, sql, nparams) sql,
	DB_STATEMENT_TABLE(DB_STATEMENT_SQL)
#undef DB_STATEMENT_SQL
};

static const int statement_nparams[] = {
#define DB_STATEMENT_NPARAMS(name, sql, nparams) nparams,
	DB_STATEMENT_TABLE(DB_STATEMENT_NPARAMS)
#undef DB_STATEMENT_NPARAMS
};

/*
 * Capped at one second: after a crash the server is usually back within a
 * second or two, and every step of backoff beyond that is time without
 * service once it is (measured with tests/faults/run crash: a 3.2 s cap left
 * 3.2 s without service even when the restart was immediate).  One attempt a
 * second per connection is no load for a server that is starting.
 */
static const uint64_t backoff_ms[DB_BACKOFF_STEPS] = {50, 100, 200, 400, 800, 1000};

#define CONNECT_TIMEOUT_MS 5000

static void conn_start(db_conn_t *conn);
static void conn_fail(db_conn_t *conn, const char *why);
static void on_conn_io(h2o_socket_t *sock, const char *err);
static void pool_dispatch_waiting(db_pool_t *pool);

static db_conn_t *
conn_of_entry(h2o_timeout_entry_t *entry)
{
	return H2O_STRUCT_FROM_MEMBER(db_conn_t, retry, entry);
}

static db_query_t *
query_of_link(h2o_linklist_t *link)
{
	return H2O_STRUCT_FROM_MEMBER(db_query_t, link, link);
}

static db_query_t *
query_of_deadline(h2o_timeout_entry_t *entry)
{
	return H2O_STRUCT_FROM_MEMBER(db_query_t, deadline, entry);
}

static void
query_free(db_query_t *q)
{
	if (h2o_timeout_is_linked(&q->deadline))
		h2o_timeout_unlink(&q->deadline);
	if (q->result != NULL)
		PQclear(q->result);
	free(q);
}

/* Runs the owner's callback at most once; the query is detached first. */
static void
query_complete(db_query_t *q, db_outcome_t outcome)
{
	void *owner = q->owner;

	if (h2o_timeout_is_linked(&q->deadline))
		h2o_timeout_unlink(&q->deadline);
	q->owner = NULL;
	if (owner != NULL)
		q->on_result(owner, outcome, outcome == DB_RESULT ? q->result : NULL);
}

db_query_t *
db_query_new(db_statement_t stmt, int nparams, const char *const *values)
{
	size_t total = 0;
	db_query_t *q;
	char *p;

	for (int i = 0; i < nparams; i++)
		if (values[i] != NULL)
			total += strlen(values[i]) + 1;
	q = calloc(1, sizeof(*q) + total);
	if (q == NULL)
		return NULL;
	q->stmt = (int) stmt;
	q->nparams = nparams;
	p = q->storage;
	for (int i = 0; i < nparams; i++) {
		if (values[i] == NULL) {
			q->values[i] = NULL;
			continue;
		}
		size_t len = strlen(values[i]) + 1;

		memcpy(p, values[i], len);
		q->values[i] = p;
		p += len;
	}
	return q;
}

/* ---- socket plumbing ---------------------------------------------------- */

static void
conn_close_socket(db_conn_t *conn)
{
	if (conn->sock != NULL) {
		h2o_socket_read_stop(conn->sock);
		h2o_socket_close(conn->sock);
		conn->sock = NULL;
	}
	conn->pg_fd = -1;
}

/* Makes conn->sock mirror PQsocket(); 0 on success. */
static int
conn_sync_socket(db_conn_t *conn)
{
	int fd = PQsocket(conn->pg);
	int copy;

	if (fd < 0)
		return -1;
	if (conn->sock != NULL && fd == conn->pg_fd)
		return 0;
	conn_close_socket(conn);
	copy = dup(fd);
	if (copy < 0)
		return -1;
	conn->sock = h2o_evloop_socket_create(conn->pool->loop, copy, H2O_SOCKET_FLAG_DONT_READ);
	conn->sock->data = conn;
	conn->pg_fd = fd;
	return 0;
}

static void
conn_want_write(db_conn_t *conn)
{
	if (conn->sock != NULL && !h2o_socket_is_writing(conn->sock))
		h2o_socket_notify_write(conn->sock, on_conn_io);
}

static int
conn_flush(db_conn_t *conn)
{
	int r = PQflush(conn->pg);

	if (r < 0)
		return -1;
	if (r > 0)
		conn_want_write(conn);
	return 0;
}

/* ---- connecting --------------------------------------------------------- */

static void
on_retry_timer(h2o_timeout_entry_t *entry)
{
	db_conn_t *conn = conn_of_entry(entry);

	if (conn->state == DB_CONN_DOWN)
		conn_start(conn);
	else if (conn->state == DB_CONN_CONNECTING)
		conn_fail(conn, "connection attempt timed out");
}

static void
on_prepared(void *owner, db_outcome_t outcome, PGresult *res)
{
	db_conn_t *conn = owner;

	if (outcome != DB_RESULT || res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		conn_fail(conn, res != NULL ? PQresultErrorMessage(res) : "prepare failed");
		return;
	}
	if (conn->backoff_step > 0)
		commerce_log(COMMERCE_LOG, "database connection %d.%d: ready again", conn->pool->id, conn->index);
	conn->state = DB_CONN_READY;
	conn->backoff_step = 0;
	conn->ever_ready = 1;
	COUNTER_BUMP(conn->pool->n_ready);
	pool_dispatch_waiting(conn->pool);
}

/*
 * What every session sets before it prepares the statements:
 * - The statements name every function, operator and type by its schema;
 *   the pinned search_path is the second wall, so that nothing another role
 *   can create (in public, say, where PostgreSQL <= 14 let every role create
 *   objects) is ever resolved in this session's own SQL.  pg_temp last, so
 *   that not even a temporary object shadows pg_catalog.
 * - The extension's bucket functions run at READ COMMITTED only; pinning it
 *   keeps a database whose default_transaction_isolation is another level
 *   from failing every order (READ_COMMITTED_REQUIRED).
 */
static const char *const session_settings[] = {
	"SET search_path = pg_catalog, pg_temp",
	"SET default_transaction_isolation = 'read committed'",
};

static void
conn_send_prepares(db_conn_t *conn)
{
	db_query_t *batch;
	char set_timeout[64];

	if (PQsetnonblocking(conn->pg, 1) != 0 || PQenterPipelineMode(conn->pg) != 1) {
		conn_fail(conn, PQerrorMessage(conn->pg));
		return;
	}
	/*
	 * A statement still running when its call's deadline passes must not
	 * commit later unseen.  The backend cancels any statement after three
	 * quarters of the deadline; a call waits at most a quarter before it is
	 * sent (pool_dispatch_waiting), so a statement that started within that
	 * quarter has committed or been cancelled by the time its 504 is sent.
	 * (One behind others in the same pipeline may start later; its 504 still
	 * says "outcome unknown", and its retry with the same key finds it.)
	 */
	snprintf(set_timeout, sizeof(set_timeout), "SET statement_timeout = %d", conn->pool->statement_timeout_ms);
	if (!PQsendQueryParams(conn->pg, set_timeout, 0, NULL, NULL, NULL, NULL, 0)) {
		conn_fail(conn, PQerrorMessage(conn->pg));
		return;
	}
	for (size_t i = 0; i < sizeof(session_settings) / sizeof(session_settings[0]); i++) {
		if (!PQsendQueryParams(conn->pg, session_settings[i], 0, NULL, NULL, NULL, NULL, 0)) {
			conn_fail(conn, PQerrorMessage(conn->pg));
			return;
		}
	}
	for (int i = 0; i < DB_STMT__COUNT; i++) {
		if (!PQsendPrepare(conn->pg, statement_names[i], statement_sql[i], statement_nparams[i], NULL)) {
			conn_fail(conn, PQerrorMessage(conn->pg));
			return;
		}
	}
	if (!PQpipelineSync(conn->pg)) {
		conn_fail(conn, PQerrorMessage(conn->pg));
		return;
	}
	batch = db_query_new(0, 0, NULL);
	batch->stmt = -1;
	batch->pool = conn->pool;
	batch->conn = conn;
	batch->owner = conn;
	batch->on_result = on_prepared;
	h2o_linklist_insert(&conn->in_flight, &batch->link);
	COUNTER_BUMP(conn->n_in_flight);
	conn->state = DB_CONN_PREPARING;
	if (conn_flush(conn) != 0)
		conn_fail(conn, PQerrorMessage(conn->pg));
}

static void
conn_poll_connect(db_conn_t *conn)
{
	switch (PQconnectPoll(conn->pg)) {
	case PGRES_POLLING_READING:
		if (conn_sync_socket(conn) != 0) {
			conn_fail(conn, "no socket");
			return;
		}
		if (!h2o_socket_is_reading(conn->sock))
			h2o_socket_read_start(conn->sock, on_conn_io);
		break;
	case PGRES_POLLING_WRITING:
		if (conn_sync_socket(conn) != 0) {
			conn_fail(conn, "no socket");
			return;
		}
		conn_want_write(conn);
		break;
	case PGRES_POLLING_OK:
		if (h2o_timeout_is_linked(&conn->retry))
			h2o_timeout_unlink(&conn->retry);
		if (conn_sync_socket(conn) != 0) {
			conn_fail(conn, "no socket");
			return;
		}
		if (!h2o_socket_is_reading(conn->sock))
			h2o_socket_read_start(conn->sock, on_conn_io);
		conn_send_prepares(conn);
		break;
	default:
		conn_fail(conn, PQerrorMessage(conn->pg));
		break;
	}
}

static void
conn_start(db_conn_t *conn)
{
	/*
	 * TCP keepalives notice a vanished server in about a minute rather than
	 * hours; they come first so that the user's conninfo overrides them.
	 */
	const char *keys[] = {"keepalives_idle", "keepalives_interval", "keepalives_count",
		"dbname", "fallback_application_name", NULL};
	const char *values[] = {"30", "10", "3", conn->pool->conninfo, "commerce-http", NULL};

	if (conn->ever_ready || conn->backoff_step > 0)
		COUNTER_BUMP(conn->pool->reconnects);
	conn->state = DB_CONN_CONNECTING;
	h2o_timeout_link(conn->pool->loop, &conn->pool->connect_timeout, &conn->retry);
	conn->pg = PQconnectStartParams(keys, values, 1);
	if (conn->pg == NULL || PQstatus(conn->pg) == CONNECTION_BAD) {
		conn_fail(conn, conn->pg != NULL ? PQerrorMessage(conn->pg) : "out of memory");
		return;
	}
	conn_poll_connect(conn);
}

/*
 * Drops the connection, fails what was sent on it and schedules the next
 * attempt.  When no connection is left ready, the waiting queue is failed
 * too: answering 503 now beats answering 504 later.
 */
static void
conn_fail(db_conn_t *conn, const char *why)
{
	db_pool_t *pool = conn->pool;
	int was_ready = conn->state == DB_CONN_READY;

	if (conn->state == DB_CONN_DOWN)
		return;
	/*
	 * One line when a connection is lost and one each time the reason of a
	 * streak of failed attempts changes ("server closed the connection",
	 * then "too many clients already"): the operator sees why it cannot
	 * reconnect without a line per attempt.
	 */
	{
		char msg[sizeof(conn->last_error)];

		snprintf(msg, sizeof(msg), "%s", why != NULL ? why : "unknown error");
		msg[strcspn(msg, "\n")] = '\0';
		if (was_ready || conn->backoff_step == 0 || strcmp(msg, conn->last_error) != 0)
			commerce_log(COMMERCE_WARNING, "database connection %d.%d: %s", pool->id, conn->index, msg);
		memcpy(conn->last_error, msg, sizeof(msg));
	}
	COUNTER_BUMP(pool->connect_failures);
	conn->state = DB_CONN_DOWN;
	if (was_ready)
		COUNTER_ADD(pool->n_ready, -1);
	conn_close_socket(conn);
	if (conn->pg != NULL) {
		PQfinish(conn->pg);
		conn->pg = NULL;
	}
	while (!h2o_linklist_is_empty(&conn->in_flight)) {
		db_query_t *q = query_of_link(conn->in_flight.next);

		h2o_linklist_unlink(&q->link);
		COUNTER_ADD(conn->n_in_flight, -1);
		/* sent (or being sent): it may have committed before the loss */
		query_complete(q, DB_LOST);
		query_free(q);
	}
	COUNTER_SET(conn->n_in_flight, 0);
	if (pool->n_ready == 0) {
		while (!h2o_linklist_is_empty(&pool->waiting)) {
			db_query_t *q = query_of_link(pool->waiting.next);

			h2o_linklist_unlink(&q->link);
			COUNTER_ADD(pool->n_waiting, -1);
			query_complete(q, DB_UNAVAILABLE);
			query_free(q);
		}
	}
	if (h2o_timeout_is_linked(&conn->retry))
		h2o_timeout_unlink(&conn->retry);
	h2o_timeout_link(pool->loop, &pool->backoff[conn->backoff_step], &conn->retry);
	if (conn->backoff_step < DB_BACKOFF_STEPS - 1)
		conn->backoff_step++;
}

/* ---- results ------------------------------------------------------------ */

static int conn_send(db_conn_t *conn, db_query_t *q);

/*
 * A deadlock or serialization failure rolled the whole call back (each call
 * is one statement in its own implicit transaction), so running it again is
 * safe and is what PostgreSQL's documentation asks of clients.
 */
static int
query_should_retry(db_query_t *q)
{
	const char *sqlstate;

	if (q->stmt < 0 || q->owner == NULL || q->retries >= DB_MAX_RETRIES || q->result == NULL ||
		PQresultStatus(q->result) != PGRES_FATAL_ERROR)
		return 0;
	sqlstate = PQresultErrorField(q->result, PG_DIAG_SQLSTATE);
	return sqlstate != NULL && (strcmp(sqlstate, "40P01") == 0 || strcmp(sqlstate, "40001") == 0);
}

/*
 * Reads every complete result.  In pipeline mode each query yields its
 * result(s), a NULL, and then the PGRES_PIPELINE_SYNC of its own Sync, which
 * is where the FIFO head is completed.  The first error of a query wins over
 * the PIPELINE_ABORTED results that follow it.
 */
static void
conn_drain_results(db_conn_t *conn)
{
	while (!h2o_linklist_is_empty(&conn->in_flight) && !PQisBusy(conn->pg)) {
		db_query_t *head = query_of_link(conn->in_flight.next);
		PGresult *res = PQgetResult(conn->pg);
		ExecStatusType status;

		if (res == NULL)
			continue;
		status = PQresultStatus(res);
		if (status == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			conn->progress_at = h2o_now(conn->pool->loop);
			h2o_linklist_unlink(&head->link);
			COUNTER_ADD(conn->n_in_flight, -1);
			if (query_should_retry(head)) {
				PQclear(head->result);
				head->result = NULL;
				head->retries++;
				COUNTER_BUMP(conn->pool->retries);
				if (conn_send(conn, head) == 0)
					continue;
				if (!h2o_linklist_is_linked(&head->link)) {
					query_complete(head, DB_UNAVAILABLE);
					query_free(head);
				}
				conn_fail(conn, PQerrorMessage(conn->pg));
				return;
			}
			query_complete(head, DB_RESULT);
			query_free(head);
			if (conn->state == DB_CONN_DOWN)
				return;			/* the callback failed the connection */
			continue;
		}
		if (head->result == NULL ||
			(PQresultStatus(head->result) != PGRES_FATAL_ERROR && status == PGRES_FATAL_ERROR)) {
			if (head->result != NULL)
				PQclear(head->result);
			head->result = res;
		} else {
			PQclear(res);
		}
	}
}

static void
on_conn_io(h2o_socket_t *sock, const char *err)
{
	db_conn_t *conn = sock->data;
	db_pool_t *pool = conn->pool;

	(void) err;
	if (conn->state == DB_CONN_CONNECTING) {
		conn_poll_connect(conn);
		return;
	}
	if (conn->state == DB_CONN_DOWN)
		return;
	if (PQflush(conn->pg) < 0) {
		conn_fail(conn, PQerrorMessage(conn->pg));
		return;
	}
	if (!PQconsumeInput(conn->pg)) {
		conn_fail(conn, PQerrorMessage(conn->pg));
		return;
	}
	conn_drain_results(conn);
	if (conn->state == DB_CONN_DOWN)
		return;
	if (PQstatus(conn->pg) == CONNECTION_BAD) {
		conn_fail(conn, PQerrorMessage(conn->pg));
		return;
	}
	if (PQisnonblocking(conn->pg) && PQflush(conn->pg) > 0)
		conn_want_write(conn);
	pool_dispatch_waiting(pool);
}

/* ---- submitting --------------------------------------------------------- */

static int
conn_send(db_conn_t *conn, db_query_t *q)
{
	if (conn->n_in_flight == 0)
		conn->progress_at = h2o_now(conn->pool->loop);
	if (!PQsendQueryPrepared(conn->pg, statement_names[q->stmt], q->nparams, q->values, NULL, NULL, 0) ||
		!PQpipelineSync(conn->pg))
		return -1;
	q->conn = conn;
	h2o_linklist_insert(&conn->in_flight, &q->link);
	COUNTER_BUMP(conn->n_in_flight);
	return conn_flush(conn);
}

/*
 * The connection for the next call: ready, with room in its pipeline, and
 * making progress.  A connection whose last answer is older than
 * DB_STALL_MS while calls are in flight is probably waiting on a lock; every
 * call pipelined behind that one would wait too (head-of-line blocking), so
 * new calls go elsewhere or wait in the queue for the first connection that
 * moves.  Among the rest, the one with the fewest calls in flight.
 */
static db_conn_t *
pool_pick(db_pool_t *pool)
{
	uint64_t now = h2o_now(pool->loop);
	db_conn_t *best = NULL;

	for (int i = 0; i < pool->size; i++) {
		db_conn_t *c = &pool->conns[i];

		if (c->state != DB_CONN_READY || c->n_in_flight >= pool->pipeline_depth)
			continue;
		if (c->n_in_flight > 0 && now - c->progress_at > DB_STALL_MS)
			continue;
		if (best == NULL || c->n_in_flight < best->n_in_flight)
			best = c;
	}
	return best;
}

/*
 * Sends waiting calls, oldest first, while a connection can take one.  A call
 * that has waited longer than max_wait is not sent but refused (503, nothing
 * happened): under overload this keeps every call that reaches the database
 * within max_wait of its arrival, so accepted calls answer well inside the
 * deadline instead of all of them timing out (CoDel's head drop, with a
 * fixed target).
 */
static void
pool_dispatch_waiting(db_pool_t *pool)
{
	uint64_t now = h2o_now(pool->loop);

	while (!h2o_linklist_is_empty(&pool->waiting)) {
		db_conn_t *conn = pool_pick(pool);
		db_query_t *q;

		if (conn == NULL)
			return;
		q = query_of_link(pool->waiting.next);
		h2o_linklist_unlink(&q->link);
		COUNTER_ADD(pool->n_waiting, -1);
		if (now - q->submitted_at > pool->max_wait_ms) {
			query_complete(q, DB_NOT_SENT);
			query_free(q);
			continue;
		}
		if (conn_send(conn, q) != 0) {
			/* q is in the FIFO when the failure came from the flush */
			if (!h2o_linklist_is_linked(&q->link)) {
				query_complete(q, DB_UNAVAILABLE);
				query_free(q);
			}
			conn_fail(conn, PQerrorMessage(conn->pg));
		}
	}
}

static void
on_deadline(h2o_timeout_entry_t *entry)
{
	db_query_t *q = query_of_deadline(entry);

	if (q->conn == NULL) {
		/* never sent: nothing happened, and nothing will come back for it */
		query_complete(q, DB_NOT_SENT);
		h2o_linklist_unlink(&q->link);
		COUNTER_ADD(q->pool->n_waiting, -1);
		query_free(q);
		return;
	}
	query_complete(q, DB_TIMEOUT);
}

int
db_submit(db_pool_t *pool, db_query_t *q, void *owner, db_result_cb on_result)
{
	db_conn_t *conn;

	q->pool = pool;
	q->owner = owner;
	q->on_result = on_result;
	q->deadline.cb = on_deadline;
	q->submitted_at = h2o_now(pool->loop);
	if (pool->n_ready == 0) {
		free(q);
		return -1;
	}
	/* straight to a connection only when nobody is waiting: calls leave in arrival order */
	conn = pool->n_waiting == 0 ? pool_pick(pool) : NULL;
	if (conn == NULL && (pool->n_waiting >= pool->queue_size ||
						 (pool->n_waiting > 0 &&
						  q->submitted_at - query_of_link(pool->waiting.next)->submitted_at > pool->max_wait_ms))) {
		free(q);
		return -2;
	}
	/* armed first: a failing send below may complete (and free) q at once */
	h2o_timeout_link(pool->loop, &pool->deadline_timeout, &q->deadline);
	if (conn == NULL) {
		h2o_linklist_insert(&pool->waiting, &q->link);
		COUNTER_BUMP(pool->n_waiting);
		return 0;
	}
	if (conn_send(conn, q) != 0) {
		if (!h2o_linklist_is_linked(&q->link)) {
			query_complete(q, DB_UNAVAILABLE);
			query_free(q);
		}
		conn_fail(conn, PQerrorMessage(conn->pg));
	}
	return 0;
}

void
db_query_detach(db_query_t *q)
{
	q->owner = NULL;
	if (h2o_timeout_is_linked(&q->deadline))
		h2o_timeout_unlink(&q->deadline);
	if (q->conn == NULL && h2o_linklist_is_linked(&q->link)) {
		h2o_linklist_unlink(&q->link);
		COUNTER_ADD(q->pool->n_waiting, -1);
		query_free(q);
	}
}

void
db_pool_stats_add(db_pool_t *pool, db_pool_stats_t *stats)
{
	stats->ready += (uint64_t) COUNTER_LOAD(pool->n_ready);
	stats->configured += (uint64_t) pool->size;
	stats->waiting += (uint64_t) COUNTER_LOAD(pool->n_waiting);
	for (int i = 0; i < pool->size; i++)
		stats->in_flight += (uint64_t) COUNTER_LOAD(pool->conns[i].n_in_flight);
	stats->reconnects += COUNTER_LOAD(pool->reconnects);
	stats->connect_failures += COUNTER_LOAD(pool->connect_failures);
	stats->retries += COUNTER_LOAD(pool->retries);
}

void
db_pool_init(db_pool_t *pool, int id, h2o_evloop_t *loop, const char *conninfo, int size,
			 int pipeline_depth, int queue_size, int deadline_ms)
{
	memset(pool, 0, sizeof(*pool));
	pool->loop = loop;
	pool->id = id;
	pool->conninfo = conninfo;
	pool->size = size;
	pool->pipeline_depth = pipeline_depth;
	pool->queue_size = queue_size;
	h2o_linklist_init_anchor(&pool->waiting);
	h2o_timeout_init(loop, &pool->deadline_timeout, (uint64_t) deadline_ms);
	pool->max_wait_ms = (uint64_t) deadline_ms / 4;
	pool->statement_timeout_ms = deadline_ms - deadline_ms / 4;
	if (pool->statement_timeout_ms < 1)
		pool->statement_timeout_ms = 1;	/* 0 would mean no timeout at all */
	h2o_timeout_init(loop, &pool->connect_timeout, CONNECT_TIMEOUT_MS);
	for (int i = 0; i < DB_BACKOFF_STEPS; i++)
		h2o_timeout_init(loop, &pool->backoff[i], backoff_ms[i]);
	pool->conns = calloc((size_t) size, sizeof(db_conn_t));
	for (int i = 0; i < size; i++) {
		db_conn_t *conn = &pool->conns[i];

		conn->pool = pool;
		conn->index = i;
		conn->pg_fd = -1;
		conn->state = DB_CONN_DOWN;
		conn->retry.cb = on_retry_timer;
		h2o_linklist_init_anchor(&conn->in_flight);
		conn_start(conn);
	}
}
