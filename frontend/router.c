/*
 * router.c
 *      Everything between h2o and the handlers.  First the request's framing
 *      is checked against RFC 9112 (h2o 2.2.5 frames a body by rules of its
 *      own, see framing_refusal); then the path is matched against routes.h's
 *      table segment by segment.  A path that matches some pattern under
 *      another method is 405 with Allow; one that matches none is 404.
 *      Last, a response filter turns the plain-text errors h2o answers by
 *      itself into the daemon's JSON error shape.
 */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "call.h"
#include "config.h"
#include "handlers.h"
#include "rate_limit.h"

typedef void (*route_handler_t) (call_t *call, h2o_iovec_t id);

typedef struct route {
	const char *method;
	const char *pattern;
	route_handler_t handler;
	route_access_t access;
	route_reads_t reads;
} route_t;

static const route_t routes[] = {
#define ROUTE_ROW(name, method, pattern, handler, access, reads) \
	{method, pattern, handler, ROUTE_ACCESS_##access, ROUTE_READS_##reads},
	ROUTE_TABLE(ROUTE_ROW)
#undef ROUTE_ROW
};

/* 1 when path (no query string) matches pattern; *id receives "{id}". */
static int
path_matches(const char *pattern, h2o_iovec_t path, h2o_iovec_t *id)
{
	const char *p = path.base, *end = path.base + path.len;

	*id = h2o_iovec_init("", 0);
	while (*pattern != '\0') {
		if (strncmp(pattern, "{id}", 4) == 0) {
			const char *slash = memchr(p, '/', (size_t) (end - p));
			const char *stop = slash != NULL ? slash : end;

			if (stop == p)
				return 0;
			*id = h2o_iovec_init(p, (size_t) (stop - p));
			p = stop;
			pattern += 4;
			continue;
		}
		if (p == end || *p != *pattern)
			return 0;
		p++;
		pattern++;
	}
	return p == end;
}

/* ---- framing (RFC 9112 §3.2, §5.2, §6.1, §6.3) -------------------------- */

/*
 * h2o 2.2.5 frames a request body by rules of its own: any Transfer-Encoding
 * header wins over Content-Length and only the last one counts (so
 * "identity" then "chunked" is chunked), the first of several
 * Content-Lengths wins, and a header line folded onto the next (obs-fold)
 * ends its header parsing early, dropping a Content-Length seen before it.
 * A front proxy that frames the same bytes by the RFC then sees a different
 * request boundary: the bytes h2o leaves over run as a second, smuggled
 * request.  Such requests are refused here, with the connection closed after
 * the answer so that nothing after them on the connection is read.
 *
 * h2o keeps Content-Length, Transfer-Encoding, Host, Expect and Upgrade out
 * of req->headers (its init_headers consumes them), so the check reads the
 * head as the client sent it: in h2o 2.2.5 the HTTP/1 connection's input
 * buffer still begins with this request's head when the handler runs (it is
 * consumed only once the response is done) and the body, a chunked one
 * decoded in place, follows it.  raw_head verifies that layout rather than
 * trusting it.
 */

/* a header name (ASCII, case-insensitive) */
static int
name_is(const char *name, size_t len, const char *lower)
{
	return len == strlen(lower) && strncasecmp(name, lower, len) == 0;
}

/*
 * The next line of [p, end): picohttpparser, which h2o uses, ends a line at
 * LF with an optional CR before it, and so does this.  Returns the start of
 * the line after it, or NULL when no LF is left.
 */
static const char *
next_line(const char *p, const char *end, h2o_iovec_t *line)
{
	const char *lf = memchr(p, '\n', (size_t) (end - p));

	if (lf == NULL)
		return NULL;
	*line = h2o_iovec_init(p, (size_t) (lf - p));
	if (line->len > 0 && line->base[line->len - 1] == '\r')
		line->len--;
	return lf + 1;
}

/*
 * This request's head in the connection's input buffer: the request line and
 * the header lines, each with its line end, without the empty line that ends
 * the head.  -1 if the buffer is not laid out as described above.
 */
static int
raw_head(h2o_req_t *req, h2o_iovec_t *head)
{
	h2o_socket_t *sock;
	const char *p, *end, *start;
	h2o_iovec_t line;

	if (req->conn->callbacks->get_socket == NULL || (sock = req->conn->callbacks->get_socket(req->conn)) == NULL ||
		sock->input == NULL)
		return -1;
	p = sock->input->bytes;
	end = p + sock->input->size;
	/* picohttpparser skips empty lines before the request line */
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	start = p;
	if ((p = next_line(p, end, &line)) == NULL ||
		line.len < req->input.method.len + 1 + req->input.path.len + 1 ||
		memcmp(line.base, req->input.method.base, req->input.method.len) != 0 ||
		line.base[req->input.method.len] != ' ' ||
		memcmp(line.base + req->input.method.len + 1, req->input.path.base, req->input.path.len) != 0 ||
		line.base[req->input.method.len + 1 + req->input.path.len] != ' ')
		return -1;
	for (;;) {
		const char *line_start = p;

		if ((p = next_line(p, end, &line)) == NULL)
			return -1;
		if (line.len == 0) {
			/* the body, if any, starts right after the head */
			if (req->entity.base != NULL && req->entity.base != p)
				return -1;
			*head = h2o_iovec_init(start, (size_t) (line_start - start));
			return 0;
		}
	}
}

/* The value of a header line without the whitespace around it (RFC 9110 §5.5). */
static h2o_iovec_t
field_value(const char *colon, h2o_iovec_t line)
{
	const char *v = colon + 1, *end = line.base + line.len;

	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return h2o_iovec_init(v, (size_t) (end - v));
}

/*
 * 0 if the request is framed as RFC 9112 requires; 1 with *why naming the
 * header if not (a 400 that closes the connection); -1 if the head cannot
 * be found to check.
 */
static int
framing_refusal(h2o_req_t *req, const char **why)
{
	int n_length = 0, n_encoding = 0, n_host = 0;
	h2o_iovec_t head, line, length = {NULL, 0}, encoding = {NULL, 0};
	const char *p, *end;

#define REFUSE(msg) do { *why = (msg); return 1; } while (0)
	if (raw_head(req, &head) != 0)
		return -1;
	/* every line of head ends with its LF; the request line was matched by raw_head */
	end = head.base + head.len;
	p = next_line(head.base, end, &line);
	while (p != NULL && p < end) {
		const char *colon;
		h2o_iovec_t name;

		p = next_line(p, end, &line);
		if (line.len > 0 && (line.base[0] == ' ' || line.base[0] == '\t'))
			REFUSE("a header line starts with whitespace (obs-fold is not accepted)");
		if ((colon = memchr(line.base, ':', line.len)) == NULL)
			REFUSE("a header line has no ':'");
		name = h2o_iovec_init(line.base, (size_t) (colon - line.base));
		if (name.len == 0 || name.base[name.len - 1] == ' ' || name.base[name.len - 1] == '\t')
			REFUSE("whitespace before ':' in a header line");
		if (name_is(name.base, name.len, "content-length")) {
			n_length++;
			length = field_value(colon, line);
		} else if (name_is(name.base, name.len, "transfer-encoding")) {
			n_encoding++;
			encoding = field_value(colon, line);
		} else if (name_is(name.base, name.len, "host")) {
			n_host++;
		}
	}
	if (n_encoding > 0 && n_length > 0)
		REFUSE("Content-Length and Transfer-Encoding must not be sent together");
	if (n_encoding > 1)
		REFUSE("Transfer-Encoding: given more than once");
	/* transfer-coding names are case-insensitive (RFC 9112 §7); h2o compares so too */
	if (n_encoding == 1 && !(encoding.len == 7 && strncasecmp(encoding.base, "chunked", 7) == 0))
		REFUSE("Transfer-Encoding: only a single 'chunked' is accepted");
	if (n_encoding == 1 && req->version < 0x101)
		REFUSE("Transfer-Encoding: not allowed in HTTP/1.0");
	if (n_length > 1)
		REFUSE("Content-Length: given more than once");
	if (n_length == 1) {
		if (length.len == 0)
			REFUSE("Content-Length: not a decimal number");
		for (size_t i = 0; i < length.len; i++)
			if (length.base[i] < '0' || length.base[i] > '9')
				REFUSE("Content-Length: not a decimal number");
	}
	if (n_host > 1)
		REFUSE("Host: given more than once");
	if (n_host == 0 && req->version >= 0x101)
		REFUSE("Host: required in HTTP/1.1");
#undef REFUSE
	return 0;
}

/* ---- routing ------------------------------------------------------------ */

/*
 * An operator route needs an operator's token (any caller with --auth none)
 * and the pool of --operator-db; 0 after answering 403 without them.
 */
static int
operator_route_allowed(call_t *call)
{
	if (call->caller.authenticated && !call->caller.is_admin) {
		call_refuse(call, COMMERCE_FORBIDDEN, "operator routes need a token with role admin");
		return 0;
	}
	if (commerce_config.operator_conninfo == NULL) {
		call_refuse(call, COMMERCE_FORBIDDEN, "operator routes are off: commerce-http runs without --operator-db");
		return 0;
	}
	call->operator = 1;
	return 1;
}

/* 0 after answering 429 when the caller (a customer) has used up its rate. */
static int
within_rate_limit(call_t *call)
{
	rate_class_t cls = h2o_memis(call->req->method.base, call->req->method.len, H2O_STRLIT("GET"))
		? RATE_CLASS_READ : RATE_CLASS_WRITE;
	char retry[16];
	int wait_s, n;

	if (!call->caller.authenticated || call->caller.is_admin)
		return 1;
	if ((wait_s = rate_limit_take(call->caller.user_id, cls)) == 0)
		return 1;
	n = snprintf(retry, sizeof(retry), "%d", wait_s);
	h2o_add_header(&call->req->pool, &call->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
				   h2o_strdup(&call->req->pool, retry, (size_t) n).base, (size_t) n);
	call_refuse(call, COMMERCE_TOO_MANY_REQUESTS, "more than %d %s requests per second from this user",
				cls == RATE_CLASS_READ ? commerce_config.rate_limit_reads : commerce_config.rate_limit_writes,
				cls == RATE_CLASS_READ ? "GET" : "POST");
	return 0;
}

/*
 * Fills call->caller from the request's bearer token; 0 after answering 401
 * when there is no valid one.  WWW-Authenticate carries error="invalid_token"
 * (RFC 6750 §3.1) and the reason, which names what was wrong but nothing
 * that would help forge a token.
 */
static int
authenticate(call_t *call)
{
	const char *why = NULL;
	char challenge[160];
	int n;

	if (auth_verify_request(call->req, &call->caller, &why) == 0)
		return 1;
	n = snprintf(challenge, sizeof(challenge), "Bearer realm=\"pg_commerce\", error=\"invalid_token\", "
				 "error_description=\"%s\"", why);
	h2o_add_header(&call->req->pool, &call->req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
				   h2o_strdup(&call->req->pool, challenge, (size_t) n).base, (size_t) n);
	call_refuse(call, COMMERCE_UNAUTHENTICATED, "%s", why);
	return 0;
}

int
router_on_req(h2o_handler_t *self, h2o_req_t *req)
{
	h2o_iovec_t path = req->path_normalized;
	char allow[64] = "";
	size_t allow_len = 0;

	(void) self;
	{
		const char *why = NULL;
		int rc = framing_refusal(req, &why);

		if (rc != 0) {
			call_t *call = call_new(req, ROUTE_UNMATCHED);
			static int warned;

			/* what follows on this connection cannot be told apart from this request */
			req->http1_is_persistent = 0;
			if (rc > 0) {
				call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s", why);
				return 0;
			}
			/* only if h2o's buffer is not laid out as in 2.2.5: refuse rather than guess */
			if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
				commerce_log(COMMERCE_ERROR, "cannot find the request head in h2o's input buffer: refusing requests (500)");
			call_reply_error(call, 500, "INTERNAL", "cannot check the request's framing");
			return 0;
		}
	}
	/* a trailing slash is not a different resource */
	if (path.len > 1 && path.base[path.len - 1] == '/')
		path.len--;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		h2o_iovec_t id;

		if (!path_matches(routes[i].pattern, path, &id))
			continue;
		if (h2o_memis(req->method.base, req->method.len, routes[i].method, strlen(routes[i].method))) {
			call_t *call = call_new(req, (route_id_t) i);

			call->standby_read = routes[i].reads == ROUTE_READS_STANDBY;

			if (routes[i].access != ROUTE_ACCESS_OPEN && (!authenticate(call) || !within_rate_limit(call)))
				return 0;
			if (routes[i].access == ROUTE_ACCESS_ADMIN && !operator_route_allowed(call))
				return 0;
			routes[i].handler(call, id);
			return 0;
		}
		if (strstr(allow, routes[i].method) == NULL && allow_len + 8 < sizeof(allow))
			allow_len += (size_t) snprintf(allow + allow_len, sizeof(allow) - allow_len, "%s%s",
										   allow_len > 0 ? ", " : "", routes[i].method);
	}
	{
		call_t *call = call_new(req, ROUTE_UNMATCHED);

		if (allow_len > 0) {
			h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
						   h2o_strdup(&req->pool, allow, allow_len).base, allow_len);
			call_reply_error(call, 405, "METHOD_NOT_ALLOWED", "%.*s not allowed here; allowed: %s",
							 (int) (req->method.len > 16 ? 16 : req->method.len), req->method.base, allow);
		} else {
			call_refuse(call, COMMERCE_NOT_FOUND, "no such route");
		}
	}
	return 0;
}

/* ---- h2o's own errors as JSON ------------------------------------------- */

/*
 * h2o answers some requests before any handler runs, with a text/plain body:
 * a request line or header it cannot parse ("Bad Request"), a head over
 * H2O_MAX_REQLEN ("line too long"), a Content-Length that is no number, a
 * Transfer-Encoding other than chunked, a broken chunked body, a body over
 * globalconf.max_request_entity_size (413) and an Expect other than
 * 100-continue (417).  All of them go through h2o_send_error_generic, whose
 * response passes the path's filters like any other (a request not yet
 * routed gets the host's fallback path): this filter, installed on both,
 * swaps such a body for the daemon's JSON error shape.  Only h2o writes
 * "text/plain; charset=utf-8" with an error status; the daemon's own errors
 * are application/json already.
 */

typedef struct h2o_error_map {
	int status;
	const char *h2o_body;		/* as h2o 2.2.5 words it */
	const char *code;
	const char *message;		/* NULL: the 413 message, which names --max-body */
} h2o_error_map_t;

static const h2o_error_map_t h2o_error_maps[] = {
	{400, "Bad Request", "INVALID_ARGUMENT", "malformed request line or header (HTTP/1.x only)"},
	{400, "line too long", "INVALID_ARGUMENT", "request line and headers too long"},
	{400, "broken content-length header", "INVALID_ARGUMENT", "Content-Length: not a decimal number"},
	{400, "unknown transfer-encoding", "INVALID_ARGUMENT", "Transfer-Encoding: only a single 'chunked' is accepted"},
	{400, "broken chunked-encoding", "INVALID_ARGUMENT", "Transfer-Encoding: malformed chunked body"},
	{413, "request entity is too large", "PAYLOAD_TOO_LARGE", NULL},
	{417, "unknown expectation", "INVALID_ARGUMENT", "Expect: only 100-continue is supported"},
};

typedef struct h2o_error_ostream {
	h2o_ostream_t super;
	int replaced;
} h2o_error_ostream_t;

/* The code for an h2o error this table does not know (a newer h2o's). */
static const char *
code_of_status(int status)
{
	switch (status) {
	case 404: return "NOT_FOUND";
	case 405: return "METHOD_NOT_ALLOWED";
	case 413: return "PAYLOAD_TOO_LARGE";
	case 503: return "UNAVAILABLE";
	default: return status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
	}
}

/*
 * {"error":{"code":...,"message":...}} for h2o's text, as call_reply_error
 * writes it (jansson, compact), in the request's pool.
 */
static h2o_iovec_t
h2o_error_json(h2o_req_t *req, const char *text, size_t text_len)
{
	static const char oom[] = "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"cannot encode response\"}}";
	const char *code = code_of_status(req->res.status);
	char message[160];
	json_t *body;
	char *dumped;
	h2o_iovec_t out;
	size_t i;

	for (i = 0; i < sizeof(h2o_error_maps) / sizeof(h2o_error_maps[0]); i++)
		if (h2o_error_maps[i].status == req->res.status &&
			h2o_memis(text, text_len, h2o_error_maps[i].h2o_body, strlen(h2o_error_maps[i].h2o_body)))
			break;
	if (i < sizeof(h2o_error_maps) / sizeof(h2o_error_maps[0])) {
		code = h2o_error_maps[i].code;
		if (h2o_error_maps[i].message != NULL)
			snprintf(message, sizeof(message), "%s", h2o_error_maps[i].message);
		else
			snprintf(message, sizeof(message), "request body over %zu bytes", commerce_config.max_body);
	} else {
		/* h2o's texts are ASCII literals; keep only the printable part anyway */
		size_t n = (size_t) snprintf(message, sizeof(message), "refused by the HTTP layer: ");

		for (size_t j = 0; j < text_len && n + 1 < sizeof(message); j++)
			message[n++] = text[j] >= 0x20 && text[j] < 0x7f ? text[j] : '?';
		message[n] = '\0';
	}
	body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
	dumped = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (dumped == NULL)
		return h2o_iovec_init(oom, sizeof(oom) - 1);
	out = h2o_strdup(&req->pool, dumped, strlen(dumped));
	free(dumped);
	return out;
}

static void
h2o_error_do_send(h2o_ostream_t *_self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
	h2o_error_ostream_t *self = (h2o_error_ostream_t *) _self;
	char text[128];
	size_t text_len = 0;
	h2o_iovec_t json;

	if (self->replaced) {
		/* h2o_send_inline sends its body in one final call; nothing more is expected */
		h2o_ostream_send_next(&self->super, req, NULL, 0, state);
		return;
	}
	self->replaced = 1;
	for (size_t i = 0; i < bufcnt; i++) {
		size_t n = bufs[i].len < sizeof(text) - text_len ? bufs[i].len : sizeof(text) - text_len;

		memcpy(text + text_len, bufs[i].base, n);
		text_len += n;
	}
	json = h2o_error_json(req, text, text_len);
	/* the head is written by the final ostream on this first send: the length can still change */
	req->res.content_length = json.len;
	metrics_record(&worker_of_req(req)->metrics, ROUTE_UNMATCHED, req->res.status, 0);
	/* HEAD: h2o sends no body, and neither does this */
	h2o_ostream_send_next(&self->super, req, bufcnt > 0 ? &json : NULL, bufcnt > 0 ? 1 : 0, state);
}

static void
h2o_error_on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
	ssize_t at;

	(void) self;
	if (req->res.status >= 400 &&
		(at = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1)) >= 0 &&
		h2o_memis(req->res.headers.entries[at].value.base, req->res.headers.entries[at].value.len,
				  H2O_STRLIT("text/plain; charset=utf-8"))) {
		h2o_error_ostream_t *ostr = (h2o_error_ostream_t *) h2o_add_ostream(req, sizeof(*ostr), slot);

		ostr->super.do_send = h2o_error_do_send;
		ostr->replaced = 0;
		req->res.headers.entries[at].value = h2o_iovec_init(H2O_STRLIT("application/json"));
		slot = &ostr->super.next;
	}
	h2o_setup_next_ostream(req, slot);
}

void
router_register_json_errors(h2o_pathconf_t *pathconf)
{
	h2o_filter_t *filter = h2o_create_filter(pathconf, sizeof(*filter));

	filter->on_setup_ostream = h2o_error_on_setup_ostream;
}
