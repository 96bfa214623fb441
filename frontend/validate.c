/*
 * validate.c
 *      Bodies are parsed by jansson with duplicate keys rejected, after a
 *      cheap scan that bounds nesting (jansson's own bound is 2048).
 */
#include "validate.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"

static int
nesting_depth_ok(const char *p, size_t len)
{
	int depth = 0, in_string = 0;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			in_string = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > VALIDATE_MAX_DEPTH)
				return 0;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return 1;
}

/*
 * Content-Type names application/json, in any case, with or without
 * parameters ("; charset=utf-8": JSON is UTF-8 anyway, RFC 8259 §8.1).
 */
static int
is_json_media_type(h2o_req_t *req)
{
	static const char json_type[] = "application/json";
	ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
	h2o_iovec_t v;
	size_t n = sizeof(json_type) - 1;

	if (at < 0 || h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, at) >= 0)
		return 0;
	v = req->headers.entries[at].value;
	if (v.len < n || strncasecmp(v.base, json_type, n) != 0)
		return 0;
	while (n < v.len && (v.base[n] == ' ' || v.base[n] == '\t'))
		n++;
	return n == v.len || v.base[n] == ';';
}

json_t *
validate_body(call_t *call, const char *const *allowed)
{
	h2o_req_t *req = call->req;
	json_error_t error;
	json_t *body;
	const char *key;
	json_t *value;

	if (req->entity.len > commerce_config.max_body) {
		call_reply_error(call, 413, "PAYLOAD_TOO_LARGE", "request body over %zu bytes", commerce_config.max_body);
		return NULL;
	}
	/* no body is {}: with a token, a cancel names nothing but the order */
	if (req->entity.base == NULL || req->entity.len == 0)
		return json_object();
	if (!is_json_media_type(req)) {
		call_refuse(call, COMMERCE_UNSUPPORTED_MEDIA_TYPE, "Content-Type: the body must be sent as application/json");
		return NULL;
	}
	if (!nesting_depth_ok(req->entity.base, req->entity.len)) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "body: JSON nested deeper than %d levels", VALIDATE_MAX_DEPTH);
		return NULL;
	}
	body = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &error);
	if (body == NULL) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "body: invalid JSON: %s", error.text);
		return NULL;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "body: must be a JSON object");
		return NULL;
	}
	json_object_foreach(body, key, value) {
		int known = 0;

		for (const char *const *a = allowed; *a != NULL; a++)
			if (strcmp(*a, key) == 0)
				known = 1;
		if (!known) {
			call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%.64s: unknown field", key);
			json_decref(body);
			return NULL;
		}
	}
	return body;
}

/* obj[key] as an integer in min..max; messages name it label (key, or "items[2].quantity"). */
static int
integer_field(call_t *call, json_t *obj, const char *key, const char *label, int required,
			  int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	json_int_t n;

	if (v == NULL || json_is_null(v)) {
		if (!required)
			return FIELD_ABSENT;
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s is required", label);
		return FIELD_ANSWERED;
	}
	if (!json_is_integer(v)) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s must be an integer", label);
		return FIELD_ANSWERED;
	}
	n = json_integer_value(v);
	if (n < min || n > max) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s must be between %lld and %lld", label,
					(long long) min, (long long) max);
		return FIELD_ANSWERED;
	}
	*out = n;
	return FIELD_OK;
}

static int
id_field(call_t *call, json_t *obj, const char *key, const char *label, int required, int64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (v != NULL && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 1)) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s must be a positive integer", label);
		return FIELD_ANSWERED;
	}
	return integer_field(call, obj, key, label, required, 1, INT64_MAX, out);
}

int
validate_integer(call_t *call, json_t *obj, const char *key, int required,
				 int64_t min, int64_t max, int64_t *out)
{
	return integer_field(call, obj, key, key, required, min, max, out);
}

int
validate_id(call_t *call, json_t *obj, const char *key, int required, int64_t *out)
{
	return id_field(call, obj, key, key, required, out);
}

int
validate_item(call_t *call, json_t *item, const char *where, int64_t *product_id, int64_t *quantity)
{
	char label[64];
	const char *key;
	json_t *value;

	if (!json_is_object(item)) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s must be an object", where);
		return FIELD_ANSWERED;
	}
	json_object_foreach(item, key, value) {
		if (strcmp(key, "productId") != 0 && strcmp(key, "quantity") != 0) {
			call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s.%.64s: unknown field", where, key);
			return FIELD_ANSWERED;
		}
	}
	snprintf(label, sizeof(label), "%s.productId", where);
	if (id_field(call, item, "productId", label, 1, product_id) == FIELD_ANSWERED)
		return FIELD_ANSWERED;
	snprintf(label, sizeof(label), "%s.quantity", where);
	if (integer_field(call, item, "quantity", label, 1, 1, COMMERCE_MAX_LINE_QUANTITY, quantity) == FIELD_ANSWERED)
		return FIELD_ANSWERED;
	return FIELD_OK;
}

static int
parse_positive(const char *p, size_t len, int64_t *out)
{
	uint64_t n = 0;

	if (len == 0 || len > 19 || p[0] == '0')
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		n = n * 10 + (uint64_t) (p[i] - '0');
	}
	if (n > INT64_MAX)
		return 0;
	*out = (int64_t) n;
	return 1;
}

int
validate_path_id(call_t *call, h2o_iovec_t segment, const char *name, int64_t *out)
{
	if (!parse_positive(segment.base, segment.len, out)) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s must be a positive integer", name);
		return FIELD_ANSWERED;
	}
	return FIELD_OK;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes (and '+' -> ' ') into out; 0 on a bad escape, NUL or overflow. */
static int
url_decode(const char *p, size_t len, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return 0;
			hi = hex_value(p[i + 1]);
			lo = hex_value(p[i + 2]);
			if (hi < 0 || lo < 0)
				return 0;
			c = (char) (hi * 16 + lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == '\0' || n + 1 >= size)
			return 0;
		out[n++] = c;
	}
	out[n] = '\0';
	return 1;
}

int
validate_query(call_t *call, query_param_t *params, int nparams)
{
	h2o_req_t *req = call->req;
	const char *p, *end;

	if (req->query_at == SIZE_MAX)
		return FIELD_OK;
	p = req->path.base + req->query_at + 1;
	end = req->path.base + req->path.len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t) (end - p));
		const char *stop = amp != NULL ? amp : end;
		const char *eq = memchr(p, '=', (size_t) (stop - p));
		size_t name_len = (size_t) ((eq != NULL ? eq : stop) - p);
		query_param_t *match = NULL;

		if (stop == p) {
			p = stop + 1;
			continue;
		}
		for (int i = 0; i < nparams; i++)
			if (strlen(params[i].name) == name_len && memcmp(params[i].name, p, name_len) == 0)
				match = &params[i];
		if (match == NULL) {
			call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%.*s: unknown query parameter",
						(int) (name_len > 64 ? 64 : name_len), p);
			return FIELD_ANSWERED;
		}
		if (match->present) {
			call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s: given more than once", match->name);
			return FIELD_ANSWERED;
		}
		if (eq == NULL || !url_decode(eq + 1, (size_t) (stop - eq - 1), match->value, sizeof(match->value))) {
			call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s: missing or malformed value", match->name);
			return FIELD_ANSWERED;
		}
		match->present = 1;
		p = stop + 1;
	}
	return FIELD_OK;
}

int
validate_query_integer(call_t *call, query_param_t *p, int64_t min, int64_t max, int64_t *out)
{
	int64_t n;

	if (!p->present)
		return FIELD_ABSENT;
	if (!parse_positive(p->value, strlen(p->value), &n) || n < min || n > max) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s must be an integer between %lld and %lld",
					p->name, (long long) min, (long long) max);
		return FIELD_ANSWERED;
	}
	*out = n;
	return FIELD_OK;
}

static int
utf8_length(const char *s)
{
	int count = 0;

	for (const unsigned char *p = (const unsigned char *) s; *p != '\0'; count++) {
		int extra;

		if (*p < 0x80)
			extra = 0;
		else if ((*p & 0xE0) == 0xC0 && *p >= 0xC2)
			extra = 1;
		else if ((*p & 0xF0) == 0xE0)
			extra = 2;
		else if ((*p & 0xF8) == 0xF0 && *p <= 0xF4)
			extra = 3;
		else
			return -1;
		p++;
		for (int i = 0; i < extra; i++, p++)
			if ((*p & 0xC0) != 0x80)
				return -1;
	}
	return count;
}

int
validate_query_text(call_t *call, query_param_t *p)
{
	int len;

	if (!p->present)
		return FIELD_ABSENT;
	len = utf8_length(p->value);
	if (len < 1 || len > VALIDATE_MAX_TEXT) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s must be 1 to %d UTF-8 characters",
					p->name, VALIDATE_MAX_TEXT);
		return FIELD_ANSWERED;
	}
	return FIELD_OK;
}

int
validate_text(call_t *call, json_t *obj, const char *key, int required, size_t min_chars, size_t max_chars,
			  const char **out)
{
	json_t *v = json_object_get(obj, key);
	int n;

	if (v == NULL || json_is_null(v)) {
		if (!required)
			return FIELD_ABSENT;
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s is required", key);
		return FIELD_ANSWERED;
	}
	if (!json_is_string(v)) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s must be a string", key);
		return FIELD_ANSWERED;
	}
	n = utf8_length(json_string_value(v));	/* jansson's strings are valid UTF-8 */
	if (n < 0 || (size_t) n < min_chars || (size_t) n > max_chars) {
		call_refuse(call, COMMERCE_INVALID_ARGUMENT, "%s must be %zu to %zu characters", key, min_chars, max_chars);
		return FIELD_ANSWERED;
	}
	*out = json_string_value(v);
	return FIELD_OK;
}

/* digits at s[0..n) */
static int
digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/*
 * RFC 3339's date-time: 2026-12-24T09:00:00Z, fractions and offsets
 * allowed (2026-12-24T18:00:00.5+09:00); PostgreSQL checks the calendar.
 */
int
validate_timestamp(call_t *call, json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);
	const char *t;
	size_t len, at = 19;

	if (v == NULL || json_is_null(v))
		return FIELD_ABSENT;
	t = json_is_string(v) ? json_string_value(v) : "";
	len = strlen(t);
	if (len < 20 || len > 40 || !digits(t, 4) || t[4] != '-' || !digits(t + 5, 2) || t[7] != '-' ||
		!digits(t + 8, 2) || (t[10] != 'T' && t[10] != 't') || !digits(t + 11, 2) || t[13] != ':' ||
		!digits(t + 14, 2) || t[16] != ':' || !digits(t + 17, 2))
		goto bad;
	if (t[at] == '.') {
		at++;
		if (!digits(t + at, 1))
			goto bad;
		while (at < len && t[at] >= '0' && t[at] <= '9')
			at++;
	}
	if ((t[at] == 'Z' || t[at] == 'z') && at + 1 == len)
		goto good;
	if ((t[at] == '+' || t[at] == '-') && at + 6 == len && digits(t + at + 1, 2) && t[at + 3] == ':' &&
		digits(t + at + 4, 2))
		goto good;
bad:
	call_refuse(call, COMMERCE_INVALID_ARGUMENT,
				"%s must be an RFC 3339 date-time such as 2026-12-24T09:00:00Z", key);
	return FIELD_ANSWERED;
good:
	*out = t;
	return FIELD_OK;
}

