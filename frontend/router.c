/*
 * router.c
 *      Matches the path against router.h's table segment by segment.  A path
 *      that matches some pattern under another method is 405 with Allow;
 *      one that matches none is 404.
 */
#include "router.h"

#include <string.h>

#include "call.h"
#include "handlers.h"

typedef void (*route_handler_t) (call_t *call, h2o_iovec_t id);

typedef struct route {
	const char *method;
	const char *pattern;
	route_handler_t handler;
} route_t;

static const route_t routes[] = {
#define ROUTE_ROW(name, method, pattern, handler) {method, pattern, handler},
	ROUTE_TABLE(ROUTE_ROW)
#undef ROUTE_ROW
};

const char *const route_labels[ROUTE__COUNT] = {
#define ROUTE_LABEL(name, method, pattern, handler) method " " pattern,
	ROUTE_TABLE(ROUTE_LABEL)
#undef ROUTE_LABEL
	"unmatched",
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

int
router_on_req(h2o_handler_t *self, h2o_req_t *req)
{
	h2o_iovec_t path = req->path_normalized;
	char allow[64] = "";
	size_t allow_len = 0;

	(void) self;
	/* a trailing slash is not a different resource */
	if (path.len > 1 && path.base[path.len - 1] == '/')
		path.len--;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		h2o_iovec_t id;

		if (!path_matches(routes[i].pattern, path, &id))
			continue;
		if (h2o_memis(req->method.base, req->method.len, routes[i].method, strlen(routes[i].method))) {
			routes[i].handler(call_new(req, (route_id_t) i), id);
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
			call_reply_error(call, 404, "NOT_FOUND", "no such route");
		}
	}
	return 0;
}
