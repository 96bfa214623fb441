/*
 * db.h
 *      A per-thread pool of non-blocking libpq connections in pipeline mode.
 *
 * Vocabulary.  A *query* is one REST call's statement: it is sent as
 * Bind/Execute plus its own Sync, so a failing call never aborts the calls
 * pipelined behind it.  A connection's *in-flight FIFO* holds the queries
 * sent on it in order; each PGRES_PIPELINE_SYNC completes the head.  The
 * pool's *waiting queue* holds queries for which every ready connection
 * already has pipeline-depth queries in flight or seems stuck on a lock; it
 * is bounded, and a query that does not fit is refused (the caller answers
 * 503).
 *
 * Ownership.  The pool owns every query from db_submit() on.  Its owner (the
 * HTTP request) may vanish at any time: db_query_detach() cuts the link, and
 * a detached query that is already on the wire stays in the FIFO until its
 * Sync arrives and is then freed unseen.  The result callback runs at most
 * once, and the query is detached before it runs.
 *
 * Everything here runs on its thread's event loop; nothing blocks and
 * nothing is shared between threads except the read-only configuration.
 */
#ifndef COMMERCE_HTTP_DB_H
#define COMMERCE_HTTP_DB_H

#include <stdint.h>
#include <libpq-fe.h>
#include "h2o_includes.h"
#include "statements.h"

#define DB_MAX_PARAMS 9			/* the most of any statement (create_coupon) */
#define DB_BACKOFF_STEPS 6
#define DB_STALL_MS 20			/* no answer for this long: avoid piling calls on it */
#define DB_MAX_RETRIES 2			/* of a call that failed with a deadlock or serialization failure */

typedef enum db_outcome {
	DB_RESULT,					/* res is the statement's result (ok or error) */
	DB_UNAVAILABLE,				/* not sent: no connection ready, or lost before sending: 503 */
	DB_NOT_SENT,				/* shed from the waiting queue, never sent: 503 */
	DB_LOST,					/* sent, then the connection was lost: outcome unknown, 503 */
	DB_TIMEOUT					/* sent, and the deadline passed first: outcome unknown, 504 */
} db_outcome_t;

typedef void (*db_result_cb) (void *owner, db_outcome_t outcome, PGresult *res);

typedef struct db_pool db_pool_t;
typedef struct db_conn db_conn_t;

typedef struct db_query {
	h2o_linklist_t link;		/* in a conn's FIFO or the pool's waiting queue */
	db_conn_t *conn;			/* NULL while waiting */
	db_pool_t *pool;
	void *owner;				/* NULL once detached */
	db_result_cb on_result;
	h2o_timeout_entry_t deadline;
	PGresult *result;
	uint64_t submitted_at;		/* loop time of db_submit */
	int stmt;					/* db_statement_t, or -1 for the prepare batch */
	int retries;
	int nparams;
	const char *values[DB_MAX_PARAMS];
	char storage[];
} db_query_t;

typedef enum db_conn_state {
	DB_CONN_DOWN, DB_CONN_CONNECTING, DB_CONN_PREPARING, DB_CONN_READY
} db_conn_state_t;

struct db_conn {
	db_pool_t *pool;
	int index;
	PGconn *pg;
	h2o_socket_t *sock;			/* owns a dup() of PQsocket(pg) */
	int pg_fd;					/* the PQsocket the h2o socket mirrors */
	db_conn_state_t state;
	h2o_linklist_t in_flight;
	int n_in_flight;
	int backoff_step;
	int ever_ready;
	uint64_t progress_at;		/* loop time of the last answer (or first send) */
	char last_error[256];		/* the reason last logged for this connection */
	h2o_timeout_entry_t retry;	/* backoff while DOWN, connect timeout while CONNECTING */
};

struct db_pool {
	h2o_evloop_t *loop;
	int id;						/* the worker's index, for log lines */
	const char *conninfo;
	db_conn_t *conns;
	int size;
	int pipeline_depth;
	int queue_size;
	uint64_t max_wait_ms;		/* a quarter of the deadline: longest wait before being sent */
	int statement_timeout_ms;	/* three quarters of the deadline: see conn_send_prepares */
	h2o_linklist_t waiting;
	int n_waiting;
	int n_ready;
	uint64_t reconnects;
	uint64_t connect_failures;
	uint64_t retries;
	h2o_timeout_t deadline_timeout;
	h2o_timeout_t connect_timeout;
	h2o_timeout_t backoff[DB_BACKOFF_STEPS];
};

void db_pool_init(db_pool_t *pool, int id, h2o_evloop_t *loop, const char *conninfo, int size,
				  int pipeline_depth, int queue_size, int deadline_ms);

/* Copies values; NULL entries are SQL NULLs. */
db_query_t *db_query_new(db_statement_t stmt, int nparams, const char *const *values);

/*
 * Hands q to the pool.  0: the callback will run exactly once (result,
 * unavailable, not sent or timeout) unless detached first.  -1: no
 * connection is ready; -2: the waiting queue is full, or its oldest call has
 * waited longer than a quarter of the deadline (the database is not keeping
 * up: a call queued now would likely time out, so it is refused at once and
 * the calls already accepted keep their latency).  On failure q has been
 * freed.
 */
int db_submit(db_pool_t *pool, db_query_t *q, void *owner, db_result_cb on_result);

void db_query_detach(db_query_t *q);

/* A pool's figures for /metrics. */
typedef struct db_pool_stats {
	uint64_t ready;				/* connections ready */
	uint64_t configured;		/* connections it keeps */
	uint64_t in_flight;			/* statements sent and not yet answered */
	uint64_t waiting;			/* calls waiting for a connection */
	uint64_t reconnects;
	uint64_t connect_failures;
	uint64_t retries;
} db_pool_stats_t;

/*
 * Adds pool's figures to *stats.  Safe from any thread: the pool's own
 * thread writes them with relaxed stores and this reads with relaxed loads
 * (counter.h), so a figure may be a moment old but never torn.
 */
void db_pool_stats_add(db_pool_t *pool, db_pool_stats_t *stats);

#endif
