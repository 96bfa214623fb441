/*
 * worker.h
 *      One thread = one h2o event loop, one SO_REUSEPORT listener, one
 *      database pool and one set of metrics.  Nothing here is shared between
 *      threads except through relaxed atomic reads by the metrics scrape and
 *      the process-wide stop flag.
 */
#ifndef COMMERCE_HTTP_WORKER_H
#define COMMERCE_HTTP_WORKER_H

#include <pthread.h>
#include "h2o_includes.h"
#include "access_log.h"
#include "db.h"
#include "metrics.h"
#include "replica.h"

typedef struct worker {
	h2o_context_t ctx;			/* first: req->conn->ctx leads back here */
	h2o_accept_ctx_t accept_ctx;
	h2o_evloop_t *loop;
	h2o_socket_t *listener;
	int index;
	pthread_t thread;
	db_pool_t db;
	db_pool_t operator_db;		/* the /api/admin routes' pool, when --operator-db is given */
	replica_t replica;			/* the catalogue reads' standby, when --db-read is given */
	metrics_t metrics;
	int open_connections;		/* of this thread; the cap is on all threads' sum */
	int calls_in_flight;		/* requests accepted and not yet answered */
	int stopping;
	uint64_t stop_deadline;
	h2o_timeout_t tick_timeout;
	h2o_timeout_entry_t tick;
	access_log_buffer_t access_log;	/* this thread's unwritten lines */
} worker_t;

extern worker_t *workers;
extern int worker_count;
extern volatile int commerce_stop_requested;

static inline worker_t *
worker_of_req(h2o_req_t *req)
{
	return (worker_t *) req->conn->ctx;
}

/* Sets up every worker (listener sockets included) and starts its thread. */
int workers_start(h2o_globalconf_t *globalconf);
/* Returns once every worker has drained (the threads stay parked). */
void workers_join(void);

#endif
