/*
 * options.c
 *      The option table's parser (options.h).
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the table options_load is reading, for the helpers' messages */
static const option_table_t *current;

static void
print_help(FILE *out, const char *argv0)
{
	fprintf(out, "Usage: %s [OPTION]...\n%s\n", argv0, current->about);
	for (int i = 0; i < current->count; i++) {
		const option_spec_t *o = &current->specs[i];
		char flag[64];

		snprintf(flag, sizeof(flag), "--%s %s", o->flag, o->metavar);
		fprintf(out, "  %-28s %s (default", flag, o->help);
		if (o->default_value != NULL)
			fprintf(out, " %s%s%s)\n", o->default_value, o->default_note != NULL ? ": " : "",
					o->default_note != NULL ? o->default_note : "");
		else
			fprintf(out, ": %s)\n", o->default_note);
		fprintf(out, "  %-28s [env %s]\n", "", o->env);
	}
	fprintf(out, "  %-28s %s\n\n", "--help", "print this help and exit");
	fprintf(out, "A command-line option wins over its environment variable.\n%s", current->notes);
}

void
options_die(const char *argv0, int id, const char *value, const char *why)
{
	fprintf(stderr, "%s: invalid --%s '%s': %s (see --help)\n", argv0, current->specs[id].flag, value, why);
	exit(2);
}

long
options_number(const char *argv0, int id, const char *value)
{
	const option_spec_t *o = &current->specs[id];
	char *end;
	long n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0')
		options_die(argv0, id, value, "not a number");
	if (n < o->min || n > o->max) {
		char why[96];

		snprintf(why, sizeof(why), "must be between %ld and %ld", o->min, o->max);
		options_die(argv0, id, value, why);
	}
	return n;
}

int
options_choice(const char *argv0, int id, const char *value, const char *const *choices)
{
	char why[128] = "expected one of:";

	for (int i = 0; choices[i] != NULL; i++)
		if (strcmp(value, choices[i]) == 0)
			return i;
	for (int i = 0; choices[i] != NULL; i++)
		snprintf(why + strlen(why), sizeof(why) - strlen(why), " %s", choices[i]);
	options_die(argv0, id, value, why);
}

void
options_host_port(const char *argv0, int id, const char *value, char *host, size_t host_size,
				  unsigned short *port)
{
	const char *colon = strrchr(value, ':');
	const char *start = value;
	size_t host_len;
	char *end;
	long n;

	if (colon == NULL)
		options_die(argv0, id, value, "expected HOST:PORT");
	host_len = (size_t) (colon - value);
	if (host_len >= 2 && value[0] == '[' && value[host_len - 1] == ']') {
		start++;				/* [::1]:8080 */
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= host_size)
		options_die(argv0, id, value, "bad host");
	errno = 0;
	n = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || n < 1 || n > 65535)
		options_die(argv0, id, value, "bad port");
	memcpy(host, start, host_len);
	host[host_len] = '\0';
	*port = (unsigned short) n;
}

void
options_load(const option_table_t *table, int argc, char **argv)
{
	struct option *long_options = calloc((size_t) table->count + 2, sizeof(*long_options));
	const char *argv0 = argv[0];

	if (long_options == NULL) {
		fprintf(stderr, "%s: out of memory\n", argv0);
		exit(1);
	}
	current = table;
	for (int i = 0; i < table->count; i++)
		if (table->specs[i].default_value != NULL)
			table->apply(argv0, i, table->specs[i].default_value);

	for (int i = 0; i < table->count; i++) {
		const char *value = getenv(table->specs[i].env);

		if (value != NULL && value[0] != '\0')
			table->apply(argv0, i, value);
	}

	for (int i = 0; i < table->count; i++)
		long_options[i] = (struct option) {table->specs[i].flag, required_argument, NULL, i};
	long_options[table->count] = (struct option) {"help", no_argument, NULL, 'h'};

	for (;;) {
		int c = getopt_long(argc, argv, "h", long_options, NULL);

		if (c == -1)
			break;
		if (c == 'h') {
			print_help(stdout, argv0);
			exit(0);
		}
		if (c < 0 || c >= table->count) {
			print_help(stderr, argv0);
			exit(2);
		}
		table->apply(argv0, c, optarg);
	}
	free(long_options);
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", argv0, argv[optind]);
		exit(2);
	}
}
