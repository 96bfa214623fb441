/*
 * options.h
 *      The option table both daemons (commerce-http, commerce-relay) read
 *      their settings with: one row per option gives its flag, environment
 *      variable, default and help text, so --help cannot drift from the
 *      parser.  Precedence: command line, then environment, then default.
 */
#ifndef COMMERCE_OPTIONS_H
#define COMMERCE_OPTIONS_H

#include <stddef.h>

typedef struct option_spec {
	const char *flag;
	const char *env;
	const char *metavar;
	const char *default_value;	/* applied before the environment and the command line; NULL: unset */
	long min, max;				/* numeric options only (max > 0) */
	const char *help;
	const char *default_note;	/* --help's words on the default, after it or instead of it */
} option_spec_t;

typedef struct option_table {
	const option_spec_t *specs;
	int count;
	const char *about;			/* --help's paragraph after the usage line */
	const char *notes;			/* --help's last lines */
	/* stores one option's value; calls the helpers below to parse and refuse */
	void (*apply)(const char *argv0, int id, const char *value);
} option_table_t;

/*
 * Applies every default, then every environment variable set, then the
 * command line, each through table->apply.  Exits 0 after --help, 2 on a bad
 * option or a stray argument.
 */
void options_load(const option_table_t *table, int argc, char **argv);

/* For table->apply, during options_load only: */
void options_die(const char *argv0, int id, const char *value, const char *why) __attribute__((noreturn));
long options_number(const char *argv0, int id, const char *value);
/* The index of value in choices (NULL-terminated); exits naming them all. */
int options_choice(const char *argv0, int id, const char *value, const char *const *choices);
/* HOST:PORT (or [V6]:PORT) into host (of host_size) and *port. */
void options_host_port(const char *argv0, int id, const char *value, char *host, size_t host_size,
					   unsigned short *port);

#endif
