/*
 * call.h
 *      One REST call: the request, its route, its start time and the
 *      database query it waits for.  A call lives in the request's memory
 *      pool as a shared allocation whose dispose callback detaches the query,
 *      so a client that goes away while its query is queued or on the wire
 *      leaves nothing pointing at freed memory.
 */
#ifndef COMMERCE_HTTP_CALL_H
#define COMMERCE_HTTP_CALL_H

#include <stdint.h>
#include <jansson.h>
#include "h2o_includes.h"
#include "auth.h"
#include "commerce_errors.h"
#include "db.h"
#include "routes.h"
#include "worker.h"

typedef struct call call_t;
typedef void (*call_on_rows) (call_t *call, PGresult *res);

struct call {
	h2o_req_t *req;
	worker_t *worker;
	route_id_t route;
	auth_principal_t caller;	/* who sent it (TOKEN routes; zero otherwise) */
	uint64_t started_us;
	db_query_t *query;
	int answered;
	/* how to turn the query's rows into the response */
	call_on_rows on_rows;
	int ok_status;
	int page_limit;				/* list routes: the limit asked for, to compute "next" */
	const char *page_key;		/* the column "next" is taken from (default "id") */
	int operator;				/* an /api/admin route: runs on the operator pool */
	int standby_read;			/* a catalogue read: may run on the --db-read standby */
	int64_t coupon_user_id;		/* POST /api/coupons/issue: who asked for which coupon (0: by */
	int64_t coupon_id;			/* code), for the log line when the user already holds it */
	const char *idempotency_key;	/* sent back on every answer (in req->pool), or NULL */
	const char *not_found;		/* rows_reply_single's message when no row came back */
	char request_id[32];		/* with --access-log: "thread-sequence", sent as X-Request-Id */
};

call_t *call_new(h2o_req_t *req, route_id_t route);

/* Each answers once; later calls are ignored.  body is stolen. */
void call_reply_json(call_t *call, int status, json_t *body);
/*
 * A refusal of the error table (commerce_errors.h): its status and code come
 * from the table's row, so the daemon and the database answer alike.
 */
void call_refuse(call_t *call, CommerceError error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An answer about the transport, outside the table: OUTCOME_UNKNOWN (503 or 504), TIMEOUT, INTERNAL, ... */
void call_reply_error(call_t *call, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void call_reply_text(call_t *call, int status, const char *content_type, const char *body, size_t len);

/* Sends the statement; the answer is produced by call->on_rows or an error reply. */
void call_query(call_t *call, db_statement_t stmt, int nparams, const char *const *values);

/* Row -> object with camelCase keys, typed by column type. */
json_t *row_to_object(PGresult *res, int row);
void rows_reply_single(call_t *call, PGresult *res);
void rows_reply_list(call_t *call, PGresult *res);
/* commerce.keyed_call's (status, body, replayed) as the answer. */
void rows_reply_keyed(call_t *call, PGresult *res);

#endif
