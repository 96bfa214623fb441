/*
 * commerce_token.c
 *      commerce-token: mints the JSON Web Tokens that commerce-http accepts,
 *      with libjwt (the same library that verifies them), for make run, the
 *      tests, the load scenarios and the benchmarks.  A shop's real tokens
 *      come from its identity provider; this tool is for fixtures and for
 *      trying the API with curl.
 *
 *   commerce-token --key FILE [--alg ALG] [--ttl S] [--admin] ... SUB
 *   commerce-token --key FILE ... --users FIRST-LAST     one token per line
 *
 * The key file is used byte for byte, as commerce-http --jwt-key reads it:
 * the HMAC secret for HS256, a PEM private key for RS256 / ES256.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *argv0 = "commerce-token";

static void
usage(FILE *out)
{
	fprintf(out,
			"Usage: %s --key FILE [OPTION]... SUB\n"
			"       %s --key FILE [OPTION]... --users FIRST-LAST\n"
			"Prints a signed JWT for user SUB (or one per line for users FIRST..LAST).\n\n"
			"  --key FILE          HS256 secret, or PEM private key for RS256/ES256 (used byte for byte)\n"
			"  --alg ALG           HS256 (default), RS256, ES256, or none (for tests only)\n"
			"  --ttl SECONDS       exp = now + SECONDS (default 3600)\n"
			"  --nbf-in SECONDS    add nbf = now + SECONDS\n"
			"  --issuer ISS        add iss\n"
			"  --audience AUD      add aud\n"
			"  --admin             add role: \"admin\" (an operator)\n"
			"  --claims JSON       an object merged over the claims above; a null value removes that claim\n"
			"  --help              print this help and exit\n",
			argv0, argv0);
}

static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", argv0);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see --help)\n");
	exit(2);
}

static long long
parse_integer(const char *value, const char *option)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0')
		die("invalid %s", option);
	return n;
}

/* The whole file; *len its size.  Exits on error. */
static unsigned char *
read_key(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0;

	if (f == NULL)
		die("cannot open --key %s", path);
	*len = 0;
	for (;;) {
		size_t n;

		if (*len == cap) {
			unsigned char *bigger = realloc(buf, cap = cap ? cap * 2 : 4096);

			if (bigger == NULL)
				die("out of memory reading %s", path);
			buf = bigger;
		}
		n = fread(buf + *len, 1, cap - *len, f);
		if (n == 0)
			break;
		*len += n;
	}
	if (ferror(f))
		die("cannot read --key %s", path);
	fclose(f);
	return buf;
}

typedef struct token_spec {
	jwt_alg_t alg;
	const unsigned char *key;
	size_t key_len;
	long long ttl;
	int has_nbf;
	long long nbf_in;
	const char *issuer;
	const char *audience;
	int admin;
	json_t *overrides;			/* NULL or an object */
} token_spec_t;

static int
print_token(const token_spec_t *spec, const char *sub)
{
	time_t now = time(NULL);
	json_t *claims = json_pack("{s:s,s:I,s:I}", "sub", sub, "iat", (json_int_t) now,
							   "exp", (json_int_t) (now + spec->ttl));
	const char *name;
	json_t *value;
	char *claims_text, *token;
	jwt_t *jwt = NULL;
	int rc = 1;

	if (claims == NULL)
		return 1;
	if (spec->has_nbf)
		json_object_set_new(claims, "nbf", json_integer((json_int_t) (now + spec->nbf_in)));
	if (spec->issuer != NULL)
		json_object_set_new(claims, "iss", json_string(spec->issuer));
	if (spec->audience != NULL)
		json_object_set_new(claims, "aud", json_string(spec->audience));
	if (spec->admin)
		json_object_set_new(claims, "role", json_string("admin"));
	if (spec->overrides != NULL)
		json_object_foreach(spec->overrides, name, value) {
		if (json_is_null(value))
			json_object_del(claims, name);
		else
			json_object_set(claims, name, value);
		}
	claims_text = json_dumps(claims, JSON_COMPACT);
	json_decref(claims);
	if (claims_text == NULL)
		return 1;
	if (jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, claims_text) == 0 &&
		jwt_set_alg(jwt, spec->alg, spec->alg == JWT_ALG_NONE ? NULL : spec->key,
					spec->alg == JWT_ALG_NONE ? 0 : (int) spec->key_len) == 0 &&
		(token = jwt_encode_str(jwt)) != NULL) {
		printf("%s\n", token);
		free(token);
		rc = 0;
	} else {
		fprintf(stderr, "%s: cannot sign the token (is --key right for --alg?)\n", argv0);
	}
	jwt_free(jwt);
	free(claims_text);
	return rc;
}

int
main(int argc, char **argv)
{
	enum { O_KEY = 1, O_ALG, O_TTL, O_NBF, O_ISS, O_AUD, O_ADMIN, O_CLAIMS, O_USERS, O_HELP };
	static const struct option options[] = {
		{"key", required_argument, NULL, O_KEY}, {"alg", required_argument, NULL, O_ALG},
		{"ttl", required_argument, NULL, O_TTL}, {"nbf-in", required_argument, NULL, O_NBF},
		{"issuer", required_argument, NULL, O_ISS}, {"audience", required_argument, NULL, O_AUD},
		{"admin", no_argument, NULL, O_ADMIN}, {"claims", required_argument, NULL, O_CLAIMS},
		{"users", required_argument, NULL, O_USERS}, {"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0}
	};
	token_spec_t spec = {.alg = JWT_ALG_HS256, .ttl = 3600};
	unsigned char *key = NULL;
	const char *key_path = NULL, *users = NULL;
	int opt, rc = 0;

	argv0 = argv[0];
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case O_KEY: key_path = optarg; break;
		case O_ALG:
			spec.alg = strcmp(optarg, "none") == 0 ? JWT_ALG_NONE : jwt_str_alg(optarg);
			if (spec.alg != JWT_ALG_NONE && spec.alg != JWT_ALG_HS256 && spec.alg != JWT_ALG_RS256 &&
				spec.alg != JWT_ALG_ES256)
				die("--alg %s: expected HS256, RS256, ES256 or none", optarg);
			break;
		case O_TTL: spec.ttl = parse_integer(optarg, "--ttl"); break;
		case O_NBF: spec.has_nbf = 1; spec.nbf_in = parse_integer(optarg, "--nbf-in"); break;
		case O_ISS: spec.issuer = optarg; break;
		case O_AUD: spec.audience = optarg; break;
		case O_ADMIN: spec.admin = 1; break;
		case O_CLAIMS:
			spec.overrides = json_loads(optarg, 0, NULL);
			if (!json_is_object(spec.overrides))
				die("--claims %s: expected a JSON object", optarg);
			break;
		case O_USERS: users = optarg; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (key_path == NULL && spec.alg != JWT_ALG_NONE)
		die("%s", "--key is required");
	if ((users == NULL) == (optind >= argc) || argc - optind > 1)
		die("%s", "give one SUB or --users FIRST-LAST");
	if (key_path != NULL)
		key = read_key(key_path, &spec.key_len);
	spec.key = key;

	if (users == NULL) {
		rc = print_token(&spec, argv[optind]);
	} else {
		long long first, last;
		char tail;

		if (sscanf(users, "%lld-%lld%c", &first, &last, &tail) != 2 || first < 1 || last < first)
			die("--users %s: expected FIRST-LAST with 1 <= FIRST <= LAST", users);
		for (long long u = first; u <= last && rc == 0; u++) {
			char sub[24];

			snprintf(sub, sizeof(sub), "%lld", u);
			rc = print_token(&spec, sub);
		}
	}
	json_decref(spec.overrides);
	free(key);
	return rc;
}
