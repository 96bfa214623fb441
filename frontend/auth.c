/*
 * auth.c
 *      Bearer tokens (RFC 6750) carrying JWTs (RFC 7519), verified by libjwt.
 *
 * libjwt 1.10's jwt_decode verifies the signature with the algorithm the
 * token's own header names: given an RSA public key it also accepts an
 * HS256 token whose HMAC secret is that key's PEM text, which anyone can
 * compute.  So the algorithm is compared with the configured one after
 * decoding, and only then are the claims trusted.  jwt_decode checks no
 * claim at all; exp, nbf, iss, aud and sub are checked here.
 *
 * Verifying costs about as much as the rest of a cached GET (measured with
 * make bench-http: 0.79x the rate without authentication), and a client
 * sends the same token with every request until it expires.  So each thread
 * keeps the tokens it verified last in a small direct-mapped cache: a token
 * found there with the very same bytes passed every check before, with the
 * one key of this process, and only its expiry can have changed since.
 */
#include "auth.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"

/* RFC 7518 §3.2: an HS256 key must have at least the hash's 256 bits. */
#define AUTH_MIN_HMAC_KEY 32
/* Longer Authorization values are refused unread; real JWTs are < 2 KiB. */
#define AUTH_MAX_TOKEN 4096

static unsigned char *key;
static size_t key_len;
static jwt_alg_t accepted_alg;

/* ---- the per-thread cache of verified tokens ----------------------------- */

#define AUTH_CACHE_SLOTS 65536	/* a power of two: 3.5 MiB of slots per thread, plus the tokens */

typedef struct cached_token {
	uint64_t hash;
	char *token;				/* NULL: empty slot */
	size_t len;
	json_int_t exp;
	auth_principal_t who;
} cached_token_t;

static pthread_key_t cache_key;

static void
cache_free(void *arg)
{
	cached_token_t *cache = arg;

	for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++)
		free(cache[i].token);
	free(cache);
}

/* FNV-1a: the slot of a token */
static uint64_t
token_hash(const char *token, size_t len)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char) token[i]) * 1099511628211ULL;
	return h;
}

/* This thread's slot for the token (NULL if the cache cannot be had). */
static cached_token_t *
cache_slot(uint64_t hash)
{
	cached_token_t *cache = pthread_getspecific(cache_key);

	if (cache == NULL) {
		cache = calloc(AUTH_CACHE_SLOTS, sizeof(*cache));
		if (cache == NULL || pthread_setspecific(cache_key, cache) != 0) {
			free(cache);
			return NULL;
		}
	}
	return &cache[hash & (AUTH_CACHE_SLOTS - 1)];
}

static void
cache_store(cached_token_t *slot, uint64_t hash, const char *token, size_t len, json_int_t exp,
			const auth_principal_t *who)
{
	char *copy;

	if (slot == NULL || (copy = malloc(len)) == NULL)
		return;					/* no cache: the next request verifies again */
	memcpy(copy, token, len);
	free(slot->token);
	*slot = (cached_token_t) {.hash = hash, .token = copy, .len = len, .exp = exp, .who = *who};
}

static void
die(const char *argv0, const char *what, const char *detail)
{
	fprintf(stderr, "%s: --jwt-key %s: %s%s%s\n", argv0, commerce_config.jwt_key_file, what,
			detail ? ": " : "", detail ? detail : "");
	exit(2);
}

static void
read_key_file(const char *argv0)
{
	FILE *f = fopen(commerce_config.jwt_key_file, "rb");
	size_t cap = 0;

	if (f == NULL)
		die(argv0, "cannot open", strerror(errno));
	for (;;) {
		size_t n;

		if (key_len == cap) {
			unsigned char *bigger;

			if (cap >= 1024 * 1024)
				die(argv0, "larger than 1 MiB", NULL);
			bigger = realloc(key, cap = cap ? cap * 2 : 4096);
			if (bigger == NULL)
				die(argv0, "out of memory", NULL);
			key = bigger;
		}
		n = fread(key + key_len, 1, cap - key_len, f);
		if (n == 0)
			break;
		key_len += n;
	}
	if (ferror(f))
		die(argv0, "cannot read", strerror(errno));
	fclose(f);
}

/* An RS256 / ES256 key must be a PEM public key of the algorithm's type. */
static void
check_public_key(const char *argv0, int want_type)
{
	BIO *bio = BIO_new_mem_buf(key, (int) key_len);
	EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	int type = pkey != NULL ? EVP_PKEY_get_base_id(pkey) : EVP_PKEY_NONE;

	EVP_PKEY_free(pkey);
	BIO_free(bio);
	if (type == EVP_PKEY_NONE)
		die(argv0, "not a PEM public key (-----BEGIN PUBLIC KEY-----)", NULL);
	if (type != want_type)
		die(argv0, want_type == EVP_PKEY_RSA ? "not an RSA key, as RS256 needs" : "not an EC key, as ES256 needs",
			NULL);
}

void
auth_init(const char *argv0)
{
	if (commerce_config.auth == COMMERCE_AUTH_NONE) {
		commerce_log(COMMERCE_WARNING, "--auth none: requests are not authenticated; any caller may act as any user");
		return;
	}
	if (pthread_key_create(&cache_key, cache_free) != 0) {
		fprintf(stderr, "%s: cannot create the token cache\n", argv0);
		exit(2);
	}
	accepted_alg = jwt_str_alg(commerce_config.jwt_alg);
	read_key_file(argv0);
	if (accepted_alg == JWT_ALG_HS256 && key_len < AUTH_MIN_HMAC_KEY)
		die(argv0, "an HS256 secret must be at least 32 bytes", NULL);
	if (accepted_alg == JWT_ALG_RS256)
		check_public_key(argv0, EVP_PKEY_RSA);
	if (accepted_alg == JWT_ALG_ES256)
		check_public_key(argv0, EVP_PKEY_EC);
}

/* The token of "Bearer <token>" into buf (NUL-terminated), or NULL. */
static const char *
bearer_token(h2o_iovec_t value, char *buf, size_t size)
{
	size_t at = 6, start;

	if (value.len < 7 || strncasecmp(value.base, "Bearer", 6) != 0 || value.base[6] != ' ')
		return NULL;
	while (at < value.len && value.base[at] == ' ')
		at++;
	start = at;
	/* a compact JWT: base64url segments separated by dots */
	for (; at < value.len; at++) {
		char c = value.base[at];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '_' || c == '.'))
			return NULL;
	}
	if (at == start || at - start >= size)
		return NULL;
	memcpy(buf, value.base + start, at - start);
	buf[at - start] = '\0';
	return buf;
}

/*
 * A NumericDate claim (RFC 7519 §2) as whole seconds: 0 absent, 1 present,
 * -1 present but not an integer (fractions are legal JWT but no issuer of
 * ours writes them; refusing is the safe reading).
 */
static int
date_claim(json_t *claims, const char *name, json_int_t *out)
{
	json_t *v = json_object_get(claims, name);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 1;
}

/* sub: a user id as a decimal string without sign or leading zeros. */
static int
user_id_claim(json_t *claims, int64_t *out)
{
	const char *sub = json_string_value(json_object_get(claims, "sub"));
	int64_t n = 0;

	if (sub == NULL || sub[0] < '1' || sub[0] > '9' || strlen(sub) > 19)
		return -1;
	for (const char *p = sub; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || n > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		n = n * 10 + (*p - '0');
	}
	*out = n;
	return 0;
}

/* aud is one string or an array of strings (RFC 7519 §4.1.3). */
static int
audience_matches(json_t *claims, const char *want)
{
	json_t *aud = json_object_get(claims, "aud");
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	json_array_foreach(aud, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
			return 1;
	return 0;
}

static const char *
check_claims(json_t *claims, auth_principal_t *out, json_int_t *exp_out)
{
	json_int_t now = (json_int_t) time(NULL), exp, nbf;
	const char *role;
	int has;

	if (!json_is_object(claims))
		return "token: malformed, or its signature does not verify";
	if ((has = date_claim(claims, "exp", &exp)) == 0)
		return "token: exp is required";
	if (has < 0)
		return "token: exp must be an integer (seconds since 1970)";
	if (now - AUTH_LEEWAY_SECONDS > exp)	/* not exp + leeway: exp may be near INT64_MAX */
		return "token: expired";
	if ((has = date_claim(claims, "nbf", &nbf)) < 0)
		return "token: nbf must be an integer (seconds since 1970)";
	if (has > 0 && now + AUTH_LEEWAY_SECONDS < nbf)
		return "token: not valid yet (nbf)";
	if (commerce_config.jwt_issuer != NULL) {
		const char *iss = json_string_value(json_object_get(claims, "iss"));

		if (iss == NULL || strcmp(iss, commerce_config.jwt_issuer) != 0)
			return "token: wrong issuer";
	}
	if (commerce_config.jwt_audience != NULL && !audience_matches(claims, commerce_config.jwt_audience))
		return "token: wrong audience";
	if (user_id_claim(claims, &out->user_id) != 0)
		return "token: sub must be a user id (a positive decimal string)";
	role = json_string_value(json_object_get(claims, "role"));
	out->is_admin = role != NULL && strcmp(role, "admin") == 0;
	out->authenticated = 1;
	*exp_out = exp;
	return NULL;
}

int
auth_verify_request(h2o_req_t *req, auth_principal_t *out, const char **why)
{
	char token[AUTH_MAX_TOKEN];
	ssize_t at;
	jwt_t *jwt = NULL;
	size_t len;
	uint64_t hash;
	cached_token_t *slot;
	json_int_t exp = 0;

	memset(out, 0, sizeof(*out));
	if (commerce_config.auth == COMMERCE_AUTH_NONE)
		return 0;
	at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
	if (at < 0) {
		*why = "Authorization: a bearer token is required";
		return -1;
	}
	if (h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, at) >= 0) {
		*why = "Authorization: given more than once";
		return -1;
	}
	if (bearer_token(req->headers.entries[at].value, token, sizeof(token)) == NULL) {
		*why = "Authorization: expected 'Bearer <JWT>'";
		return -1;
	}
	len = strlen(token);
	hash = token_hash(token, len);
	slot = cache_slot(hash);
	if (slot != NULL && slot->token != NULL && slot->hash == hash && slot->len == len &&
		memcmp(slot->token, token, len) == 0) {
		if ((json_int_t) time(NULL) - AUTH_LEEWAY_SECONDS > slot->exp) {
			*why = "token: expired";
			return -1;
		}
		*out = slot->who;
		return 0;
	}
	if (jwt_decode(&jwt, token, key, (int) key_len) != 0 || jwt == NULL) {
		*why = "token: malformed, or its signature does not verify";
		return -1;
	}
	if (jwt_get_alg(jwt) != accepted_alg) {
		*why = "token: signed with an algorithm this server does not accept";
	} else {
		/* the verified claims, parsed once (libjwt's getters blur types) */
		char *text = jwt_get_grants_json(jwt, NULL);
		json_t *claims = text != NULL ? json_loads(text, 0, NULL) : NULL;

		*why = check_claims(claims, out, &exp);
		json_decref(claims);
		free(text);
	}
	jwt_free(jwt);
	if (*why != NULL) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	cache_store(slot, hash, token, len, exp, out);
	return 0;
}
