/*
 * validate.h
 *      Strict input checks.  Each function either yields a value or answers
 *      the call (400 naming the field, 413, or 415) and says so; handlers
 *      stop at the first answer.
 */
#ifndef COMMERCE_HTTP_VALIDATE_H
#define COMMERCE_HTTP_VALIDATE_H

#include <stdint.h>
#include <jansson.h>
#include "call.h"

#include "commerce_limits.h"

#define VALIDATE_MAX_DEPTH 8
/* the longest query-string value (category, keyword) */
#define VALIDATE_MAX_TEXT COMMERCE_MAX_CATEGORY

enum { FIELD_ANSWERED = -1, FIELD_ABSENT = 0, FIELD_OK = 1 };

/*
 * The body as a JSON object with only allowed keys (NULL-terminated list);
 * no body at all is {}.  A body must come as Content-Type application/json.
 */
json_t *validate_body(call_t *call, const char *const *allowed);

/* A positive 64-bit integer; JSON null counts as absent. */
int validate_id(call_t *call, json_t *obj, const char *key, int required, int64_t *out);
int validate_integer(call_t *call, json_t *obj, const char *key, int required,
					 int64_t min, int64_t max, int64_t *out);
/*
 * One order line, {productId, quantity} and nothing else: a positive id and
 * 1..COMMERCE_MAX_LINE_QUANTITY; where names it in messages ("items[2]").
 */
int validate_item(call_t *call, json_t *item, const char *where, int64_t *product_id, int64_t *quantity);
int validate_path_id(call_t *call, h2o_iovec_t segment, const char *name, int64_t *out);
/* A JSON string of min..max characters (code points); *out points into obj. */
int validate_text(call_t *call, json_t *obj, const char *key, int required, size_t min_chars, size_t max_chars,
				  const char **out);
/* An optional RFC 3339 date-time string; *out points into obj. */
int validate_timestamp(call_t *call, json_t *obj, const char *key, const char **out);

typedef struct query_param {
	const char *name;
	int present;
	char value[VALIDATE_MAX_TEXT * 4 + 1];
} query_param_t;

/* Parses the query string into params; unknown or repeated names are 400. */
int validate_query(call_t *call, query_param_t *params, int nparams);
int validate_query_integer(call_t *call, query_param_t *p, int64_t min, int64_t max, int64_t *out);
int validate_query_text(call_t *call, query_param_t *p);

#endif
