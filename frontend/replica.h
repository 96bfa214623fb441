/*
 * replica.h
 *      Catalogue reads from a standby (--db-read), used only while it is
 *      known to be close behind the primary.
 *
 * How far behind a standby is, without trusting clocks or replay
 * timestamps (which stop moving when the primary is idle and keep looking
 * fresh when the standby has lost its primary): every REPLICA_PROBE_MS the
 * worker asks the primary where its WAL ends and remembers (position, the
 * loop time it asked) in a small ring, then asks the standby how far it has
 * replayed.  If the standby has replayed up to a sample's position, it
 * holds every commit that was visible on the primary when that sample was
 * asked for; so "now minus the time of the newest such sample" is an upper
 * bound of how stale a read from it can be.  An idle primary keeps the
 * bound at one probe interval; a standby cut off from its primary sees the
 * bound grow as soon as the primary writes anything.
 *
 * A catalogue read goes to the standby only while the bound is at most
 * --db-read-max-lag-ms and the standby pool has a connection ready; else it
 * goes to the primary (--db), counted apart in /metrics.  Everything here
 * runs on its worker's thread; the scrape reads the gauges with relaxed
 * loads (counter.h).
 */
#ifndef COMMERCE_HTTP_REPLICA_H
#define COMMERCE_HTTP_REPLICA_H

#include <stdint.h>
#include "db.h"

#define REPLICA_PROBE_MS 200
#define REPLICA_SAMPLES 32			/* 6.4 s of primary positions */

typedef struct replica_sample {
	int64_t wal_position;		/* bytes, as pg_current_wal_lsn() - '0/0' */
	uint64_t asked_at;			/* loop time the question was sent */
} replica_sample_t;

typedef struct replica {
	db_pool_t pool;				/* connections to the standby */
	db_pool_t *primary;			/* the worker's --db pool, asked for positions */
	int enabled;				/* --db-read given */
	replica_sample_t samples[REPLICA_SAMPLES];
	int n_samples;
	int next_sample;			/* the ring's slot the next sample goes to */
	uint64_t caught_up_to;		/* asked_at of the newest sample the standby has replayed; 0: none */
	uint64_t primary_asked_at;	/* the primary probe in flight was sent then; 0: none in flight */
	int standby_probe_in_flight;
	uint64_t last_probe_at;
	/* for /metrics, written by the worker only */
	int64_t lag_bound_ms;		/* as of the last probe answer; -1: not known */
	int in_use;					/* as of the last tick, reads would go to the standby */
	uint64_t reads_standby;		/* catalogue reads sent to the standby */
	uint64_t reads_primary;		/* catalogue reads sent to the primary instead */
} replica_t;

void replica_init(replica_t *r, int id, h2o_evloop_t *loop, db_pool_t *primary);

/* Called on the worker's tick: sends the next pair of probes when due. */
void replica_tick(replica_t *r);

/* The pool a catalogue read goes to: the standby when fresh enough, else the primary. */
db_pool_t *replica_pool_for_read(replica_t *r);

#endif
