/*
 * calls: an error-tolerant load driver for scripts/bench-sql.sh.
 *
 *   calls [-c CLIENTS] [-j THREADS] (-t TXS | -T SECONDS) [-e SQLSTATE,...]
 *         [-w WARMUP_SQL]... SQL
 *
 * pgbench aborts a client at its first SQL error, so it cannot call a
 * function whose refusal is an error (commerce.issue_coupon's PC410 coupon
 * sold out, decrement_stock's PC409 out of stock) the way an application
 * does: a plain statement, the refusal coming back to the client as an
 * error.  This driver does, and counts each transaction by its outcome:
 * success, or the SQLSTATE of its error.  The SQLSTATEs given with -e are
 * answers (refusals the caller expects) and count as processed
 * transactions; any other error is a failure: it is reported on stderr and
 * makes the driver exit 1, as does a lost connection (its client stops).
 * Exit 2 is a usage error.
 *
 * One connection per client (so -c 64 is 64 sessions at once), made from the
 * usual PG* environment variables (or -d CONNINFO) with application_name
 * pgbench, so that what samples pgbench's backends samples these too.  The
 * statement is prepared once per connection (PQprepare); each transaction is
 * one PQsendQueryPrepared in autocommit.  Each -w statement runs once on
 * every connection before the clock starts (its answer, an error included,
 * is not counted): a shop's pooled connections have run the API before a
 * sale starts, so a backend's first-call work (planning its statements,
 * loading its caches) is not what a flash sale measures.  Each of the -j threads drives its
 * share of the connections asynchronously: it keeps one statement in flight
 * on every one of them and waits for answers with poll().
 *
 * The output has the lines of pgbench's that bench-sql.sh reads ("number of
 * clients", "number of transactions actually processed", "number of failed
 * transactions", "tps = ... (without initial connection time)"), computed
 * as pgbench computes them, and one more:
 *
 *   outcomes: success=1000 PC410=9000
 *
 * success first, then every -e SQLSTATE in the order given (even at 0),
 * then any unexpected SQLSTATE ("none" for an error without one, such as a
 * lost connection), so that a script can compare the line with what it
 * expects.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define STATEMENT "calls"
#define MAX_CODES 64		/* distinct SQLSTATEs counted; more go to "other" */
#define MAX_EXPECTED 16
#define MAX_REPORTED 10		/* unexpected errors printed in full */
#define MAX_WARMUPS 8

typedef struct Outcome
{
	char		code[6];		/* SQLSTATE, "" for success */
	long		count;
} Outcome;

typedef struct Client
{
	PGconn	   *conn;
	int			id;
	long		done;			/* transactions finished */
	bool		busy;			/* a statement in flight */
	bool		dead;			/* connection lost: no more transactions */
	char		error[6];		/* SQLSTATE of the transaction in flight, "" if none yet */
	bool		errored;
} Client;

typedef struct Thread
{
	pthread_t	tid;
	int			index;
	Client	   *clients;
	int			nclients;
	Outcome		outcomes[MAX_CODES];
	int			noutcomes;
	long		other;			/* outcomes beyond MAX_CODES distinct ones */
	long		processed;		/* successes and expected refusals */
	long		failed;			/* unexpected errors */
	long		lost;			/* connections lost during the run */
	bool		setup_failed;
	double		connect_seconds;	/* this thread's connections and prepares */
	double		start;			/* after every connection is made */
	double		end;			/* last answer */
} Thread;

static const char *sql;
static const char *conninfo;
static int	nclients = 1;
static int	nthreads = 1;
static long txs_per_client = -1;
static long seconds = -1;
static char expected[MAX_EXPECTED][6];
static int	nexpected;
static const char *warmups[MAX_WARMUPS];
static int	nwarmups;

static pthread_barrier_t connected;
static atomic_bool setup_failed;
static atomic_int reported;

static void
usage(FILE *out)
{
	fprintf(out,
			"usage: calls [-c CLIENTS] [-j THREADS] (-t TXS | -T SECONDS) [-e SQLSTATE,...] [-w SQL]... [-d CONNINFO] SQL\n"
			"  -c N         clients (one connection each; default 1)\n"
			"  -j N         threads driving them (default 1)\n"
			"  -t N         transactions per client\n"
			"  -T N         run N seconds instead\n"
			"  -e LIST      SQLSTATEs that are answers, not failures (e.g. PC410,PC409)\n"
			"  -w SQL       run once on every connection before the clock starts (repeatable)\n"
			"  -d CONNINFO  connection string (default: the PG* environment variables)\n"
			"Each transaction runs SQL once (prepared, autocommit).\n");
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool
parse_long(const char *s, long min, long *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min)
		return false;
	*out = v;
	return true;
}

static bool
is_sqlstate(const char *s, size_t len)
{
	if (len != 5)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

static bool
parse_expected(const char *list)
{
	const char *p = list;

	while (*p)
	{
		size_t		len = strcspn(p, ",");

		if (!is_sqlstate(p, len) || nexpected == MAX_EXPECTED)
			return false;
		memcpy(expected[nexpected], p, 5);
		expected[nexpected][5] = '\0';
		nexpected++;
		p += len;
		if (*p == ',')
			p++;
	}
	return nexpected > 0;
}

static bool
is_expected(const char *code)
{
	for (int i = 0; i < nexpected; i++)
		if (strcmp(expected[i], code) == 0)
			return true;
	return false;
}

static void
count_outcome(Thread *t, const char *code)
{
	for (int i = 0; i < t->noutcomes; i++)
		if (strcmp(t->outcomes[i].code, code) == 0)
		{
			t->outcomes[i].count++;
			return;
		}
	if (t->noutcomes == MAX_CODES)
	{
		t->other++;
		return;
	}
	snprintf(t->outcomes[t->noutcomes].code, sizeof t->outcomes[0].code, "%s", code);
	t->outcomes[t->noutcomes].count = 1;
	t->noutcomes++;
}

/* an unexpected error, printed in full for the first MAX_REPORTED of them */
static void
report(const Client *c, const char *what, const char *message)
{
	int			n = atomic_fetch_add(&reported, 1);

	if (n < MAX_REPORTED)
		fprintf(stderr, "calls: client %d: %s: %s%s", c->id, what, message,
				(*message && message[strlen(message) - 1] == '\n') ? "" : "\n");
	else if (n == MAX_REPORTED)
		fprintf(stderr, "calls: further unexpected errors are counted, not printed\n");
}

static bool
connect_client(Client *c)
{
	const char *const keys[] = {"dbname", "application_name", NULL};
	const char *const values[] = {conninfo, "pgbench", NULL};
	PGresult   *res;

	c->conn = PQconnectdbParams(keys, values, 1);
	if (c->conn == NULL)
	{
		fprintf(stderr, "calls: client %d: out of memory connecting\n", c->id);
		return false;
	}
	if (PQstatus(c->conn) != CONNECTION_OK)
	{
		fprintf(stderr, "calls: client %d: %s", c->id, PQerrorMessage(c->conn));
		return false;
	}
	for (int i = 0; i < nwarmups; i++)
	{
		res = PQexec(c->conn, warmups[i]);
		if (res == NULL || PQstatus(c->conn) != CONNECTION_OK)
		{
			fprintf(stderr, "calls: client %d: warm-up lost the connection: %s", c->id,
					PQerrorMessage(c->conn));
			PQclear(res);
			return false;
		}
		PQclear(res);			/* a refusal warms up as well as a success */
	}
	res = PQprepare(c->conn, STATEMENT, sql, 0, NULL);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "calls: client %d: cannot prepare the statement: %s", c->id,
				res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn));
		PQclear(res);
		return false;
	}
	PQclear(res);
	return true;
}

static bool
wants_more(const Thread *t, const Client *c)
{
	if (c->dead)
		return false;
	if (txs_per_client >= 0)
		return c->done < txs_per_client;
	return now() < t->start + seconds;
}

/* start the client's next transaction; false (the client stops) if it cannot */
static bool
send_next(Thread *t, Client *c)
{
	if (!PQsendQueryPrepared(c->conn, STATEMENT, 0, NULL, NULL, NULL, 0))
	{
		report(c, "cannot send", PQerrorMessage(c->conn));
		t->failed++;
		count_outcome(t, "none");
		c->done++;
		c->dead = true;
		t->lost++;
		return false;
	}
	c->busy = true;
	c->errored = false;
	c->error[0] = '\0';
	return true;
}

/* one result of the transaction in flight: the first error is its outcome */
static void
take_result(Client *c, PGresult *res)
{
	const char *code;

	switch (PQresultStatus(res))
	{
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
			break;
		case PGRES_FATAL_ERROR:
			if (c->errored)
				break;			/* the first error is the transaction's */
			c->errored = true;
			code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			snprintf(c->error, sizeof c->error, "%s", code && *code ? code : "none");
			if (!is_expected(c->error))
				report(c, c->error, PQresultErrorMessage(res));
			break;
		default:
			if (!c->errored)
			{
				c->errored = true;
				snprintf(c->error, sizeof c->error, "none");
				report(c, "unexpected result", PQresStatus(PQresultStatus(res)));
			}
			break;
	}
}

/* the transaction in flight has ended (PQgetResult gave NULL) */
static void
finish(Thread *t, Client *c)
{
	c->busy = false;
	c->done++;
	if (!c->errored)
	{
		t->processed++;
		count_outcome(t, "");
	}
	else
	{
		if (is_expected(c->error))
			t->processed++;
		else
			t->failed++;
		count_outcome(t, c->error);
	}
	t->end = now();
}

/*
 * The connection is gone.  The transaction in flight, if any, failed: with
 * the SQLSTATE of the error the server sent before closing, when libpq
 * still hands it out, else "none".
 */
static void
lost(Thread *t, Client *c, const char *what)
{
	report(c, what, PQerrorMessage(c->conn));
	if (c->busy)
	{
		PGresult   *res;

		/* libpq ends an interrupted query with NULL after at most a few results */
		for (int i = 0; i < 16 && (res = PQgetResult(c->conn)) != NULL; i++)
		{
			take_result(c, res);
			PQclear(res);
		}
		if (!c->errored)
		{
			c->errored = true;
			snprintf(c->error, sizeof c->error, "none");
		}
		finish(t, c);
	}
	c->dead = true;
	t->lost++;
}

static void
drive(Thread *t)
{
	struct pollfd *fds;
	Client	  **polled;
	int			busy = 0;

	fds = calloc(t->nclients, sizeof *fds);
	polled = calloc(t->nclients, sizeof *polled);
	if (fds == NULL || polled == NULL)
	{
		fprintf(stderr, "calls: thread %d: out of memory\n", t->index);
		t->setup_failed = true;
		free(fds);
		free(polled);
		return;
	}
	t->end = t->start;
	for (int i = 0; i < t->nclients; i++)
		if (wants_more(t, &t->clients[i]) && send_next(t, &t->clients[i]))
			busy++;
	while (busy > 0)
	{
		int			n = 0;
		int			ready;

		for (int i = 0; i < t->nclients; i++)
		{
			Client	   *c = &t->clients[i];

			if (!c->busy)
				continue;
			if (PQsocket(c->conn) < 0)
			{
				lost(t, c, "no socket");
				busy--;
				continue;
			}
			fds[n].fd = PQsocket(c->conn);
			fds[n].events = POLLIN;
			fds[n].revents = 0;
			polled[n++] = c;
		}
		ready = poll(fds, n, 1000);
		if (ready < 0)
		{
			if (errno == EINTR)
				continue;
			perror("calls: poll");
			t->setup_failed = true;
			break;
		}
		for (int i = 0; i < n && ready > 0; i++)
		{
			Client	   *c = polled[i];

			if (fds[i].revents == 0)
				continue;
			ready--;
			if (!PQconsumeInput(c->conn))
			{
				lost(t, c, "connection lost");
				busy--;
				continue;
			}
			while (c->busy && !PQisBusy(c->conn))
			{
				PGresult   *res = PQgetResult(c->conn);

				if (res != NULL)
				{
					take_result(c, res);
					PQclear(res);
					continue;
				}
				finish(t, c);
				if (PQstatus(c->conn) == CONNECTION_BAD)
					lost(t, c, "connection lost");
				else if (wants_more(t, c) && send_next(t, c))
					break;
				busy--;
			}
		}
	}
	free(fds);
	free(polled);
}

static void *
thread_main(void *arg)
{
	Thread	   *t = arg;
	double		t0 = now();

	for (int i = 0; i < t->nclients; i++)
		if (!connect_client(&t->clients[i]))
		{
			t->setup_failed = true;
			atomic_store(&setup_failed, true);
			break;
		}
	t->connect_seconds = now() - t0;
	pthread_barrier_wait(&connected);
	if (!atomic_load(&setup_failed))
	{
		t->start = now();
		drive(t);
	}
	for (int i = 0; i < t->nclients; i++)
		PQfinish(t->clients[i].conn);	/* NULL-safe */
	return NULL;
}

int
main(int argc, char **argv)
{
	Thread	   *threads;
	Client	   *clients;
	Outcome		total[MAX_CODES];
	int			ntotal = 0;
	long		processed = 0,
				failed = 0,
				other = 0,
				refusals = 0,
				nlost = 0;
	double		start = 0,
				end = 0,
				connect_seconds = 0;
	int			opt;
	int			status = 0;
	long		v;

	while ((opt = getopt(argc, argv, "c:j:t:T:e:w:d:h")) != -1)
	{
		switch (opt)
		{
			case 'c':
				if (!parse_long(optarg, 1, &v) || v > 10000)
					goto bad;
				nclients = (int) v;
				break;
			case 'j':
				if (!parse_long(optarg, 1, &v) || v > 1000)
					goto bad;
				nthreads = (int) v;
				break;
			case 't':
				if (!parse_long(optarg, 1, &txs_per_client))
					goto bad;
				break;
			case 'T':
				if (!parse_long(optarg, 1, &seconds))
					goto bad;
				break;
			case 'e':
				if (!parse_expected(optarg))
				{
					fprintf(stderr, "calls: -e wants SQLSTATEs of five digits or capitals, separated by commas (at most %d)\n",
							MAX_EXPECTED);
					return 2;
				}
				break;
			case 'w':
				if (nwarmups == MAX_WARMUPS)
				{
					fprintf(stderr, "calls: at most %d -w statements\n", MAX_WARMUPS);
					return 2;
				}
				warmups[nwarmups++] = optarg;
				break;
			case 'd':
				conninfo = optarg;
				break;
			case 'h':
				usage(stdout);
				return 0;
			default:
				goto bad;
		}
	}
	if (optind != argc - 1 || (txs_per_client < 0) == (seconds < 0))
		goto bad;
	sql = argv[optind];
	if (nthreads > nclients)
		nthreads = nclients;

	threads = calloc(nthreads, sizeof *threads);
	clients = calloc(nclients, sizeof *clients);
	if (threads == NULL || clients == NULL)
	{
		fprintf(stderr, "calls: out of memory\n");
		return 1;
	}
	/* thread i drives clients i*c/j .. (i+1)*c/j - 1 */
	for (int i = 0; i < nclients; i++)
		clients[i].id = i;
	for (int i = 0; i < nthreads; i++)
	{
		int			first = (int) ((long) i * nclients / nthreads);
		int			last = (int) ((long) (i + 1) * nclients / nthreads);

		threads[i].index = i;
		threads[i].clients = &clients[first];
		threads[i].nclients = last - first;
	}
	errno = pthread_barrier_init(&connected, NULL, nthreads);
	if (errno != 0)
	{
		perror("calls: pthread_barrier_init");
		return 1;
	}
	for (int i = 0; i < nthreads; i++)
	{
		errno = pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]);
		if (errno != 0)
		{
			/* the barrier would wait for this thread for ever */
			perror("calls: pthread_create");
			_exit(1);
		}
	}
	for (int i = 0; i < nthreads; i++)
	{
		errno = pthread_join(threads[i].tid, NULL);
		if (errno != 0)
		{
			perror("calls: pthread_join");
			return 1;
		}
	}
	pthread_barrier_destroy(&connected);
	if (atomic_load(&setup_failed))
	{
		fprintf(stderr, "calls: could not set up every connection\n");
		return 1;
	}

	for (int i = 0; i < nthreads; i++)
	{
		Thread	   *t = &threads[i];

		if (t->setup_failed)
			status = 1;
		processed += t->processed;
		failed += t->failed;
		other += t->other;
		nlost += t->lost;
		if (i == 0 || t->start < start)
			start = t->start;
		if (i == 0 || t->end > end)
			end = t->end;
		if (t->connect_seconds > connect_seconds)
			connect_seconds = t->connect_seconds;
		for (int k = 0; k < t->noutcomes; k++)
		{
			int			j;

			for (j = 0; j < ntotal; j++)
				if (strcmp(total[j].code, t->outcomes[k].code) == 0)
					break;
			if (j == ntotal)
			{
				if (ntotal == MAX_CODES)
				{
					other += t->outcomes[k].count;
					continue;
				}
				total[ntotal] = t->outcomes[k];
				total[ntotal].count = 0;
				ntotal++;
			}
			total[j].count += t->outcomes[k].count;
		}
	}
	free(clients);
	free(threads);

	printf("transaction type: %s\n", sql);
	printf("number of clients: %d\n", nclients);
	printf("number of threads: %d\n", nthreads);
	if (txs_per_client >= 0)
	{
		printf("number of transactions per client: %ld\n", txs_per_client);
		printf("number of transactions actually processed: %ld/%ld\n", processed,
			   txs_per_client * nclients);
	}
	else
	{
		printf("duration: %ld s\n", seconds);
		printf("number of transactions actually processed: %ld\n", processed);
	}
	printf("number of failed transactions: %ld (%.3f%%)\n", failed,
		   processed + failed > 0 ? 100.0 * failed / (processed + failed) : 0.0);
	for (int j = 0; j < ntotal; j++)
		if (is_expected(total[j].code))
			refusals += total[j].count;
	printf("number of expected refusals among them: %ld\n", refusals);
	if (processed > 0 && end > start)
		printf("latency average = %.3f ms\n", 1000.0 * (end - start) * nclients / processed);
	printf("initial connection time = %.3f ms\n", 1000.0 * connect_seconds);
	printf("tps = %f (without initial connection time)\n",
		   end > start ? processed / (end - start) : 0.0);

	/* success, then each -e SQLSTATE in the order given, then the rest */
	{
		long		success = 0;

		for (int j = 0; j < ntotal; j++)
			if (total[j].code[0] == '\0')
				success = total[j].count;
		printf("outcomes: success=%ld", success);
		for (int e = 0; e < nexpected; e++)
		{
			long		n = 0;

			for (int j = 0; j < ntotal; j++)
				if (strcmp(total[j].code, expected[e]) == 0)
					n = total[j].count;
			printf(" %s=%ld", expected[e], n);
		}
		for (int j = 0; j < ntotal; j++)
			if (total[j].code[0] != '\0' && !is_expected(total[j].code))
				printf(" %s=%ld", total[j].code, total[j].count);
		if (other > 0)
			printf(" other=%ld", other);
		printf("\n");
	}
	if (fflush(stdout) != 0 || ferror(stdout))
	{
		perror("calls: stdout");
		return 1;
	}
	if (failed > 0 || other > 0)
	{
		fprintf(stderr, "calls: %ld transactions failed with an unexpected error\n", failed);
		status = 1;
	}
	if (nlost > 0)
	{
		fprintf(stderr, "calls: %ld connections were lost during the run\n", nlost);
		status = 1;
	}
	return status;

bad:
	usage(stderr);
	return 2;
}
