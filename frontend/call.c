/*
 * call.c
 *      Answering a call: JSON bodies, the error body, the SQLSTATE -> HTTP
 *      mapping (from extension/commerce_errors.h, the one table), and the
 *      conversion of rows into camelCase JSON.
 */
#include "call.h"

#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "access_log.h"
#include "commerce_errors.h"
#include "counter.h"

/* libpq type OIDs the encoder distinguishes (pg_type.h is server-side) */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_JSON 114
#define OID_JSONB 3802

typedef struct error_row {
	const char *sqlstate;
	const char *code;
	int http_status;
	const char *condition;
} error_row_t;

static const error_row_t error_rows[] = {
#define ERROR_ROW(name, sqlstate, status, condition) {sqlstate, #name, status, condition},
	COMMERCE_ERROR_TABLE(ERROR_ROW)
#undef ERROR_ROW
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static const char *
status_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 402: return "Payment Required";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

static void
on_call_dispose(void *p)
{
	call_t *call = p;

	if (call->query != NULL) {
		db_query_detach(call->query);
		call->query = NULL;
	}
	if (!call->answered) {
		/* the client went away first */
		call->answered = 1;
		COUNTER_ADD(call->worker->calls_in_flight, -1);
	}
}

call_t *
call_new(h2o_req_t *req, route_id_t route)
{
	call_t *call = h2o_mem_alloc_shared(&req->pool, sizeof(*call), on_call_dispose);

	memset(call, 0, sizeof(*call));
	call->req = req;
	call->worker = worker_of_req(req);
	call->route = route;
	call->started_us = now_us();
	call->ok_status = 200;
	COUNTER_BUMP(call->worker->calls_in_flight);
	return call;
}

/* The method as the log shows it: an HTTP token as sent, or "-" if odd. */
static void
log_method(h2o_iovec_t m, char *out, size_t size)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";

	if (m.len == 0 || m.len >= size)
		goto odd;
	for (size_t i = 0; i < m.len; i++) {
		char c = m.base[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  (c != '\0' && strchr(tchar, c) != NULL)))
			goto odd;
	}
	memcpy(out, m.base, m.len);
	out[m.len] = '\0';
	return;
odd:
	strcpy(out, "-");
}

/*
 * One access_log.h line.  The time prefix is formatted once per second per
 * thread; everything else comes from the call.
 */
static void
log_access(call_t *call, int status, uint64_t latency_us)
{
	static __thread time_t prefix_second = -1;
	static __thread char prefix[32];
	worker_t *w = call->worker;
	struct timespec ts;
	struct sockaddr_storage sa;
	char method[24], addr[INET6_ADDRSTRLEN] = "-", user[24] = "null", line[1024];
	socklen_t salen;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != prefix_second) {
		struct tm tm;

		gmtime_r(&ts.tv_sec, &tm);
		strftime(prefix, sizeof(prefix), "%Y-%m-%dT%H:%M:%S", &tm);
		prefix_second = ts.tv_sec;
	}
	log_method(call->req->method, method, sizeof(method));
	salen = call->req->conn->callbacks->get_peername(call->req->conn, (struct sockaddr *) &sa);
	if (salen > 0 && sa.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *) &sa)->sin_addr, addr, sizeof(addr));
	else if (salen > 0 && sa.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &sa)->sin6_addr, addr, sizeof(addr));
	if (call->caller.authenticated)
		snprintf(user, sizeof(user), "%" PRId64, call->caller.user_id);
	n = snprintf(line, sizeof(line),
				 "{\"time\":\"%s.%03ldZ\",\"id\":\"%s\",\"method\":\"%s\",\"route\":\"%s\","
				 "\"status\":%d,\"ms\":%.3f,\"user\":%s,\"addr\":\"%s\"}\n",
				 prefix, ts.tv_nsec / 1000000, call->request_id, method, route_labels[call->route],
				 status, (double) latency_us / 1000.0, user, addr);
	if (n > 0 && (size_t) n < sizeof(line))
		access_log_append(&w->access_log, line, (size_t) n);
}

static void
call_finish(call_t *call, int status)
{
	uint64_t latency_us = now_us() - call->started_us;

	call->answered = 1;
	COUNTER_ADD(call->worker->calls_in_flight, -1);
	metrics_record(&call->worker->metrics, call->route, status, latency_us);
	if (access_log_enabled()) {
		snprintf(call->request_id, sizeof(call->request_id), "%d-%" PRIu64, call->worker->index,
				 ++call->worker->access_log.sequence);
		log_access(call, status, latency_us);
	}
}

void
call_reply_text(call_t *call, int status, const char *content_type, const char *body, size_t len)
{
	h2o_req_t *req = call->req;

	if (call->answered)
		return;
	call_finish(call, status);
	req->res.status = status;
	req->res.reason = status_reason(status);
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
				   content_type, strlen(content_type));
	if (status == 503)
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
	if (call->idempotency_key != NULL)
		h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("idempotency-key"), 0, NULL,
							  call->idempotency_key, strlen(call->idempotency_key));
	if (call->request_id[0] != '\0')
		h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
							  h2o_strdup(&req->pool, call->request_id, SIZE_MAX).base, strlen(call->request_id));
	/* without a length h2o chunks 200s and closes the connection after any other status */
	req->res.content_length = len;
	if (call->worker->stopping)
		req->http1_is_persistent = 0;	/* draining: let keep-alive clients go elsewhere */
	h2o_send_inline(req, body, len);
}

void
call_reply_json(call_t *call, int status, json_t *body)
{
	char *text;

	if (call->answered) {
		json_decref(body);
		return;
	}
	text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text == NULL) {
		static const char oom[] = "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"cannot encode response\"}}";

		call_reply_text(call, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	call_reply_text(call, status, "application/json", text, strlen(text));
	free(text);
}

static void reply_error_va(call_t *call, int status, const char *code, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static void
reply_error_va(call_t *call, int status, const char *code, const char *fmt, va_list ap)
{
	char message[512];

	vsnprintf(message, sizeof(message), fmt, ap);
	/* messages may echo client bytes, cut anywhere: JSON strings must be UTF-8 */
	{
		json_t *probe = json_string(message);

		if (probe != NULL)
			json_decref(probe);
		else
			for (char *p = message; *p != '\0'; p++)
				if ((unsigned char) *p >= 0x80)
					*p = '?';
	}
	call_reply_json(call, status,
					json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}

void
call_reply_error(call_t *call, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_va(call, status, code, fmt, ap);
	va_end(ap);
}

void
call_refuse(call_t *call, CommerceError error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_va(call, error_rows[error].http_status, error_rows[error].code, fmt, ap);
	va_end(ap);
}

/* ---- database results --------------------------------------------------- */

static int
sqlstate_is_unavailable(const char *s)
{
	return strncmp(s, "08", 2) == 0	/* connection exception */
		|| strncmp(s, "53", 2) == 0	/* insufficient resources, too many connections */
		|| strncmp(s, "57", 2) == 0	/* operator intervention: shutdown, cancel */
		|| strncmp(s, "40", 2) == 0	/* serialization failure, deadlock: retry later */
		|| strcmp(s, "55P03") == 0;	/* lock not available */
}

static int
field_is(PGresult *res, int field, const char *expected)
{
	const char *value = PQresultErrorField(res, field);

	return value != NULL && strcmp(value, expected) == 0;
}

/*
 * Whether the error refuses a duplicate coupon attempt: the user already
 * holds the coupon.  That is the extension's COUPON_ALREADY_ISSUED, or the
 * unique key (coupon_id, user_id) of issued_coupons should a duplicate ever
 * get past the advisory lock and ON CONFLICT.  Each one is counted (abuse or
 * a client retrying blindly shows as a rising rate); the log line with the
 * ids is written only at --log-level info, since a flash sale refuses
 * thousands a second.  commerce_log is a single write(2) of one line to
 * stderr: cheap, not interleaved between threads, and it could only stall
 * the loop if stderr were a pipe nobody reads, a risk taken only by an
 * operator who asked for info.
 */
static int
coupon_duplicate(call_t *call, PGresult *res, const char *sqlstate)
{
	const char *how;

	if (call->route != ROUTE_COUPONS_ISSUE)
		return 0;
	if (strcmp(sqlstate, error_rows[COMMERCE_COUPON_ALREADY_ISSUED].sqlstate) == 0)
		how = "";
	else if (strcmp(sqlstate, "23505") == 0 && field_is(res, PG_DIAG_SCHEMA_NAME, "commerce") &&
			 field_is(res, PG_DIAG_TABLE_NAME, "issued_coupons"))
		how = " (unique key)";
	else
		return 0;
	metrics_count_coupon_duplicate(&call->worker->metrics);
	if (commerce_config.log_level >= COMMERCE_LOG_INFO)
		commerce_log(COMMERCE_INFO, "coupon already issued%s: user %" PRId64 " coupon %" PRId64,
					 how, call->coupon_user_id, call->coupon_id);
	return 1;
}

static void
reply_pg_error(call_t *call, PGresult *res)
{
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (sqlstate == NULL)
		sqlstate = "";
	if (primary == NULL)
		primary = "database error";
	if (coupon_duplicate(call, res, sqlstate)) {
		const error_row_t *row = &error_rows[COMMERCE_COUPON_ALREADY_ISSUED];

		/* the unique key's own message names an index, not what the client did */
		call_refuse(call, COMMERCE_COUPON_ALREADY_ISSUED, "%s",
					strcmp(sqlstate, row->sqlstate) == 0 ? primary : row->condition);
		return;
	}
	if (strncmp(sqlstate, COMMERCE_SQLSTATE_CLASS, 2) == 0) {
		for (int i = 0; i < COMMERCE_ERROR_COUNT; i++)
			if (strcmp(error_rows[i].sqlstate, sqlstate) == 0) {
				call_refuse(call, (CommerceError) i, "%s", primary);
				return;
			}
	}
	if (strcmp(sqlstate, "57014") == 0) {
		/* cancelled by the session's statement_timeout (db.c): rolled back */
		call_refuse(call, COMMERCE_UNAVAILABLE, "the database did not finish in time; nothing was changed, retry later");
		return;
	}
	if (sqlstate_is_unavailable(sqlstate)) {
		commerce_log(COMMERCE_WARNING, "%s: database error %s: %s", route_labels[call->route], sqlstate, primary);
		call_refuse(call, COMMERCE_UNAVAILABLE, "database unavailable, retry later");
		return;
	}
	if (strncmp(sqlstate, "22", 2) == 0) {
		/* data exception: a value the database could not take */
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s", primary);
		return;
	}
	commerce_log(COMMERCE_ERROR, "%s: unexpected database error %s: %s",
			route_labels[call->route], sqlstate, primary);
	call_reply_error(call, 500, "INTERNAL", "internal error");
}

/* Whether the call can change data (every POST route does): its lost answer
 * means "outcome unknown" rather than "unavailable". */
static int
call_writes(const call_t *call)
{
	return h2o_memis(call->req->method.base, call->req->method.len, H2O_STRLIT("POST"));
}

static void
on_query_result(void *owner, db_outcome_t outcome, PGresult *res)
{
	call_t *call = owner;

	call->query = NULL;
	switch (outcome) {
	case DB_UNAVAILABLE:
		COUNTER_BUMP(call->worker->metrics.rejected_unavailable);
		call_refuse(call, COMMERCE_UNAVAILABLE, "database connection lost, retry later");
		return;
	case DB_NOT_SENT:
		COUNTER_BUMP(call->worker->metrics.rejected_queue_full);
		call_refuse(call, COMMERCE_UNAVAILABLE, "overloaded: not sent to the database in time, retry later");
		return;
	case DB_LOST:
		COUNTER_BUMP(call->worker->metrics.rejected_unavailable);
		if (call_writes(call))
			call_reply_error(call, 503, "OUTCOME_UNKNOWN", "database connection lost after the call was sent: "
							 "it may have taken effect; retry with the same Idempotency-Key");
		else
			call_refuse(call, COMMERCE_UNAVAILABLE, "database connection lost, retry later");
		return;
	case DB_TIMEOUT:
		COUNTER_BUMP(call->worker->metrics.timeouts);
		if (call_writes(call))
			call_reply_error(call, 504, "OUTCOME_UNKNOWN", "no answer from the database within the deadline: "
							 "it may still take effect; retry with the same Idempotency-Key");
		else
			call_reply_error(call, 504, "TIMEOUT", "no answer from the database within the deadline");
		return;
	case DB_RESULT:
		break;
	}
	if (res == NULL) {
		call_reply_error(call, 500, "INTERNAL", "no result");
		return;
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		call->on_rows(call, res);
		return;
	}
	reply_pg_error(call, res);
}

void
call_query(call_t *call, db_statement_t stmt, int nparams, const char *const *values)
{
	worker_t *w = call->worker;
	db_pool_t *pool;
	db_query_t *q;
	int rc;

	if (w->stopping) {
		call_refuse(call, COMMERCE_UNAVAILABLE, "shutting down");
		return;
	}
	q = db_query_new(stmt, nparams, values);
	if (q == NULL) {
		call_refuse(call, COMMERCE_UNAVAILABLE, "out of memory");
		return;
	}
	call->query = q;
	if (call->operator)
		pool = &w->operator_db;
	else if (call->standby_read)
		pool = replica_pool_for_read(&w->replica);
	else
		pool = &w->db;
	rc = db_submit(pool, q, call, on_query_result);
	if (rc == 0)
		return;
	call->query = NULL;
	if (rc == -2) {
		COUNTER_BUMP(w->metrics.rejected_queue_full);
		call_refuse(call, COMMERCE_UNAVAILABLE, "overloaded: request queue full, retry later");
	} else {
		COUNTER_BUMP(w->metrics.rejected_unavailable);
		call_refuse(call, COMMERCE_UNAVAILABLE, "database unavailable, retry later");
	}
}

/* ---- rows -> JSON ------------------------------------------------------- */

static void
camel_case(const char *in, char *out, size_t size)
{
	size_t n = 0;
	int upper = 0;

	for (; *in != '\0' && n + 1 < size; in++) {
		if (*in == '_') {
			upper = 1;
			continue;
		}
		out[n++] = upper ? (char) (*in >= 'a' && *in <= 'z' ? *in - 32 : *in) : *in;
		upper = 0;
	}
	out[n] = '\0';
}

/* Rewrites the keys of objects (at any depth) from snake_case to camelCase. */
static json_t *
camel_case_json(json_t *v)
{
	if (json_is_object(v)) {
		json_t *out = json_object();
		const char *key;
		json_t *value;
		char name[128];

		json_object_foreach(v, key, value) {
			camel_case(key, name, sizeof(name));
			json_object_set_new(out, name, camel_case_json(value));
		}
		return out;
	}
	if (json_is_array(v)) {
		json_t *out = json_array();
		size_t i;
		json_t *value;

		json_array_foreach(v, i, value)
			json_array_append_new(out, camel_case_json(value));
		return out;
	}
	return json_incref(v);
}

json_t *
row_to_object(PGresult *res, int row)
{
	json_t *obj = json_object();
	int ncols = PQnfields(res);

	for (int col = 0; col < ncols; col++) {
		char name[128];
		const char *text = PQgetvalue(res, row, col);
		json_t *value;

		camel_case(PQfname(res, col), name, sizeof(name));
		if (PQgetisnull(res, row, col)) {
			value = json_null();
		} else {
			switch (PQftype(res, col)) {
			case OID_INT2:
			case OID_INT4:
			case OID_INT8:
				value = json_integer(strtoll(text, NULL, 10));
				break;
			case OID_BOOL:
				value = json_boolean(text[0] == 't');
				break;
			case OID_JSON:
			case OID_JSONB:
				{
					json_t *parsed = json_loads(text, JSON_DECODE_ANY, NULL);

					value = parsed != NULL ? camel_case_json(parsed) : json_null();
					json_decref(parsed);
					break;
				}
			default:
				value = json_string(text);
				if (value == NULL)	/* not UTF-8: cannot happen with a UTF8 database */
					value = json_null();
				break;
			}
		}
		json_object_set_new(obj, name, value);
	}
	return obj;
}

void
rows_reply_single(call_t *call, PGresult *res)
{
	json_t *obj;

	if (PQntuples(res) < 1) {
		call_refuse(call, COMMERCE_NOT_FOUND, "%s", call->not_found != NULL ? call->not_found : "not found");
		return;
	}
	/* the statement's columns are the answer, in the API's key order (docs/openapi.yaml) */
	obj = row_to_object(res, 0);
	call_reply_json(call, call->ok_status, obj);
}

/*
 * The answer commerce.keyed_call gives: (status, body, replayed), the body
 * being the stored JSON text; it is parsed and written out like every other
 * answer, so a replay is byte for byte the first answer.
 */
void
rows_reply_keyed(call_t *call, PGresult *res)
{
	json_t *body;
	int status;

	if (PQntuples(res) != 1 || PQnfields(res) != 3 ||
		(body = json_loads(PQgetvalue(res, 0, 1), 0, NULL)) == NULL) {
		commerce_log(COMMERCE_ERROR, "%s: keyed_call gave no answer to parse", route_labels[call->route]);
		call_reply_error(call, 500, "INTERNAL", "unexpected answer from the database");
		return;
	}
	status = atoi(PQgetvalue(res, 0, 0));
	if (strcmp(PQgetvalue(res, 0, 2), "t") == 0)
		h2o_add_header_by_str(&call->req->pool, &call->req->res.headers, H2O_STRLIT("idempotent-replayed"), 0,
							  NULL, H2O_STRLIT("true"));
	if (call->route == ROUTE_COUPONS_ISSUE && status == 409) {
		const char *code = json_string_value(json_object_get(json_object_get(body, "error"), "code"));

		if (code != NULL && strcmp(code, error_rows[COMMERCE_COUPON_ALREADY_ISSUED].code) == 0)
			metrics_count_coupon_duplicate(&call->worker->metrics);
	}
	call_reply_json(call, status, body);
}

void
rows_reply_list(call_t *call, PGresult *res)
{
	json_t *items = json_array();
	json_t *body;
	int n = PQntuples(res);

	for (int row = 0; row < n; row++)
		json_array_append_new(items, row_to_object(res, row));
	body = json_pack("{s:o}", "items", items);
	if (call->page_limit > 0) {
		int id_col = PQfnumber(res, call->page_key != NULL ? call->page_key : "id");
		json_t *next = json_null();

		if (n == call->page_limit && id_col >= 0)
			next = json_integer(strtoll(PQgetvalue(res, n - 1, id_col), NULL, 10));
		json_object_set_new(body, "next", next);
	}
	call_reply_json(call, call->ok_status, body);
}
