/*
 * replica.c
 *      The standby's lag bound and the choice of pool for a catalogue read;
 *      see replica.h for why the bound is sound.
 */
#include "replica.h"

#include <stdlib.h>

#include "config.h"
#include "counter.h"

static void probe_standby(replica_t *r);

/* The wal_position column of a probe's one row; -1 when there is none. */
static int64_t
wal_position_of(db_outcome_t outcome, PGresult *res)
{
	if (outcome != DB_RESULT || res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK ||
		PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		return -1;
	return strtoll(PQgetvalue(res, 0, 0), NULL, 10);
}

static void
on_primary_position(void *owner, db_outcome_t outcome, PGresult *res)
{
	replica_t *r = owner;
	int64_t position = wal_position_of(outcome, res);

	if (position >= 0) {
		r->samples[r->next_sample] = (replica_sample_t) {position, r->primary_asked_at};
		r->next_sample = (r->next_sample + 1) % REPLICA_SAMPLES;
		if (r->n_samples < REPLICA_SAMPLES)
			r->n_samples++;
	}
	r->primary_asked_at = 0;
	/* asked second, so that the sample just taken can already count */
	probe_standby(r);
}

static void
on_standby_position(void *owner, db_outcome_t outcome, PGresult *res)
{
	replica_t *r = owner;
	int64_t replayed = wal_position_of(outcome, res);

	r->standby_probe_in_flight = 0;
	if (replayed < 0)
		return;
	for (int i = 0; i < r->n_samples; i++)
		if (r->samples[i].wal_position <= replayed && r->samples[i].asked_at > r->caught_up_to)
			r->caught_up_to = r->samples[i].asked_at;
}

static void
probe_standby(replica_t *r)
{
	db_query_t *q = db_query_new(DB_STMT_STANDBY_WAL_POSITION, 0, NULL);

	if (q == NULL)
		return;
	r->standby_probe_in_flight = 1;
	if (db_submit(&r->pool, q, r, on_standby_position) != 0)
		r->standby_probe_in_flight = 0;		/* no connection ready: the bound grows */
}

static void
probe_primary(replica_t *r)
{
	db_query_t *q = db_query_new(DB_STMT_PRIMARY_WAL_POSITION, 0, NULL);

	if (q == NULL)
		return;
	r->primary_asked_at = h2o_now(r->pool.loop);
	if (db_submit(r->primary, q, r, on_primary_position) != 0) {
		/* the primary is away: the standby is still compared with the samples taken before */
		r->primary_asked_at = 0;
		probe_standby(r);
	}
}

void
replica_init(replica_t *r, int id, h2o_evloop_t *loop, db_pool_t *primary)
{
	r->primary = primary;
	r->lag_bound_ms = -1;
	r->enabled = commerce_config.read_conninfo != NULL;
	if (r->enabled)
		db_pool_init(&r->pool, id, loop, commerce_config.read_conninfo, commerce_config.read_pool_size,
					 commerce_config.pipeline_depth, commerce_config.queue_size, commerce_config.deadline_ms);
}

/* Whether a read sent now may go to the standby. */
static int
standby_usable(replica_t *r, uint64_t now)
{
	return r->caught_up_to != 0 && r->pool.n_ready > 0 &&
		now - r->caught_up_to <= (uint64_t) commerce_config.read_max_lag_ms;
}

void
replica_tick(replica_t *r)
{
	uint64_t now;
	int usable;

	if (!r->enabled)
		return;
	now = h2o_now(r->pool.loop);
	if (r->caught_up_to != 0)
		COUNTER_SET(r->lag_bound_ms, (int64_t) (now - r->caught_up_to));
	usable = standby_usable(r, now);
	if (usable != r->in_use) {
		commerce_log(COMMERCE_LOG, "thread %d: catalogue reads now go to the %s", r->pool.id,
					 usable ? "standby (--db-read)"
					 : "primary: the standby has no connection ready or may lag too far behind");
		COUNTER_SET(r->in_use, usable);
	}
	if (r->primary_asked_at != 0 || r->standby_probe_in_flight || now - r->last_probe_at < REPLICA_PROBE_MS)
		return;
	r->last_probe_at = now;
	probe_primary(r);
}

db_pool_t *
replica_pool_for_read(replica_t *r)
{
	if (!r->enabled)
		return r->primary;
	/* decided afresh: the bound grows between ticks */
	if (standby_usable(r, h2o_now(r->pool.loop))) {
		COUNTER_BUMP(r->reads_standby);
		return &r->pool;
	}
	COUNTER_BUMP(r->reads_primary);
	return r->primary;
}
