/*
 * key_lookup.c
 *      Reading rows of the commerce tables by key, straight from a btree
 *      index, without the planner and executor.
 *
 * Why: a refused request (sold out, already issued) and the price check of
 * an order only read a few rows by primary or unique key.  Through SPI each
 * such statement costs an executor start-up, subplans and projections, which
 * measured as a quarter of a refused issue_coupon call; an index probe here
 * is a few microseconds.  Rows that are locked or written still go through
 * SPI (spi_util.c), where PostgreSQL's executor handles concurrent updates.
 *
 * Every lookup reads with the snapshot the caller passes, so several
 * lookups can see the database at one instant (as one statement would); the
 * caller takes it with pg_commerce_snapshot_begin() and ends it with
 * pg_commerce_snapshot_end().
 *
 * Keys are bigint and compared to the index's leading columns.  Values read
 * are copied into the caller's memory context.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "parser/parse_relation.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pg_commerce.h"

/*
 * The index each lookup goes through, by table.  The names are the ones
 * PostgreSQL gave the primary keys and UNIQUE (coupon_id, user_id) in the
 * base script (sql/pg_commerce--0.1.0.sql); released, they do not change.
 */
static const struct
{
	const char *table;
	const char *index;
	int			nkeys;			/* bigint key columns the lookup compares */
}			lookup_defs[] =
{
	[LOOKUP_USER] = {"users", "users_pkey", 1},
	[LOOKUP_PRODUCT] = {"products", "products_pkey", 1},
	[LOOKUP_STOCK_BUCKETS] = {"stock_buckets", "stock_buckets_pkey", 1},
	[LOOKUP_COUPON] = {"coupons", "coupons_pkey", 1},
	[LOOKUP_COUPON_BUCKETS] = {"coupon_buckets", "coupon_buckets_pkey", 1},
	[LOOKUP_ISSUED_COUPON] = {"issued_coupons", "issued_coupons_coupon_id_user_id_key", 2},
};

/*
 * The OIDs of each lookup's table and index, and the attribute numbers of
 * the columns read from it, resolved by name once per backend rather than
 * on every lookup (a namespace, two relation and one attribute search per
 * call).  Any relcache invalidation of one of them (DROP EXTENSION, ALTER
 * TABLE, a recreated index) or of all relations forgets them all; the next
 * lookup resolves them again.  pg_cron caches its job table the same way.
 */
#define LOOKUP_MAX_COLUMNS 8

typedef struct LookupCache
{
	bool		valid;
	Oid			heap;
	Oid			index;
	int			ncolumns;
	const char *columns[LOOKUP_MAX_COLUMNS];	/* the callers' string constants */
	AttrNumber	attnums[LOOKUP_MAX_COLUMNS];
} LookupCache;

static LookupCache lookup_cache[lengthof(lookup_defs)];
static bool lookup_callback_registered = false;

static void
lookup_cache_invalidate(Datum arg, Oid relid)
{
	(void) arg;
	for (size_t i = 0; i < lengthof(lookup_cache); i++)
		if (relid == InvalidOid || relid == lookup_cache[i].heap || relid == lookup_cache[i].index)
			lookup_cache[i].valid = false;
}

Snapshot
pg_commerce_snapshot_begin(void)
{
	/*
	 * What SPI does for every statement: at READ COMMITTED a new snapshot,
	 * at REPEATABLE READ and above the transaction's.
	 */
	return RegisterSnapshot(GetTransactionSnapshot());
}

void
pg_commerce_snapshot_end(Snapshot snapshot)
{
	UnregisterSnapshot(snapshot);
}

static Oid
commerce_relid(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "relation commerce.%s does not exist", name);
	return relid;
}

static LookupCache *
lookup_cache_get(LookupTable which)
{
	LookupCache *cache = &lookup_cache[which];

	if (!lookup_callback_registered)
	{
		CacheRegisterRelcacheCallback(lookup_cache_invalidate, (Datum) 0);
		lookup_callback_registered = true;
	}
	if (!cache->valid)
	{
		Oid			nsp = get_namespace_oid("commerce", false);

		cache->heap = commerce_relid(nsp, lookup_defs[which].table);
		cache->index = commerce_relid(nsp, lookup_defs[which].index);
		cache->ncolumns = 0;
		cache->valid = true;
	}
	return cache;
}

void
pg_commerce_lookup_begin(KeyLookup *lookup, LookupTable which, Snapshot snapshot,
						 const int64 *keys)
{
	ScanKeyData scankeys[2];
	int			nkeys = lookup_defs[which].nkeys;
	LookupCache *cache = lookup_cache_get(which);

	Assert(nkeys <= lengthof(scankeys));
	lookup->which = which;
	/*
	 * Invalidations are processed at every transaction start and lock, so
	 * OIDs of relations dropped before this transaction are forgotten by now;
	 * one dropped concurrently makes the open fail, as it would by name.
	 */
	lookup->heap = table_open(cache->heap, AccessShareLock);
	lookup->index = index_open(cache->index, AccessShareLock);
	for (int i = 0; i < nkeys; i++)
		ScanKeyInit(&scankeys[i], i + 1, BTEqualStrategyNumber, F_INT8EQ,
					Int64GetDatum(keys[i]));
	lookup->slot = table_slot_create(lookup->heap, NULL);
	lookup->scan = index_beginscan(lookup->heap, lookup->index, snapshot, nkeys, 0);
	index_rescan(lookup->scan, scankeys, nkeys, NULL, 0);
}

bool
pg_commerce_lookup_next(KeyLookup *lookup)
{
	return index_getnext_slot(lookup->scan, ForwardScanDirection, lookup->slot);
}

/* column's attribute number in the lookup's table, from the cache when it is there */
static AttrNumber
lookup_attnum(KeyLookup *lookup, const char *column)
{
	LookupCache *cache = &lookup_cache[lookup->which];
	AttrNumber	attnum;

	if (cache->valid)
		for (int i = 0; i < cache->ncolumns; i++)
			if (cache->columns[i] == column || strcmp(cache->columns[i], column) == 0)
				return cache->attnums[i];
	attnum = attnameAttNum(lookup->heap, column, false);
	if (attnum == InvalidAttrNumber)
		elog(ERROR, "column \"%s\" of %s does not exist", column,
			 RelationGetRelationName(lookup->heap));
	if (cache->valid && cache->ncolumns < LOOKUP_MAX_COLUMNS)
	{
		cache->columns[cache->ncolumns] = column;
		cache->attnums[cache->ncolumns] = attnum;
		cache->ncolumns++;
	}
	return attnum;
}

Datum
pg_commerce_lookup_value(KeyLookup *lookup, const char *column, bool *isnull)
{
	AttrNumber	attnum = lookup_attnum(lookup, column);
	Form_pg_attribute att;
	Datum		value;

	att = TupleDescAttr(RelationGetDescr(lookup->heap), attnum - 1);
	value = slot_getattr(lookup->slot, attnum, isnull);
	/* a by-reference value points into the buffer: copy it out */
	return *isnull ? (Datum) 0 : datumCopy(value, att->attbyval, att->attlen);
}

void
pg_commerce_lookup_end(KeyLookup *lookup)
{
	index_endscan(lookup->scan);
	ExecDropSingleTupleTableSlot(lookup->slot);
	/* keep the locks until the transaction ends, as a statement would */
	index_close(lookup->index, NoLock);
	table_close(lookup->heap, NoLock);
}

bool
pg_commerce_row_exists(LookupTable which, Snapshot snapshot, const int64 *keys)
{
	KeyLookup	lookup;
	bool		found;

	pg_commerce_lookup_begin(&lookup, which, snapshot, keys);
	found = pg_commerce_lookup_next(&lookup);
	pg_commerce_lookup_end(&lookup);
	return found;
}

/*
 * Whether id's buckets hold at least `needed` (> 0) units under the
 * snapshot.  It stops at the first buckets that add up to enough, so on a
 * quantity that is far from sold out it reads one row instead of all of
 * them.  *empty: the id has buckets and all of them hold 0 (what may set a
 * sold-out hint).
 */
bool
pg_commerce_buckets_hold(LookupTable which, Snapshot snapshot, int64 id, int64 needed,
						 bool *empty)
{
	KeyLookup	lookup;
	int64		sum = 0;
	int			rows = 0;

	Assert(which == LOOKUP_STOCK_BUCKETS || which == LOOKUP_COUPON_BUCKETS);
	Assert(needed > 0);
	pg_commerce_lookup_begin(&lookup, which, snapshot, &id);
	while (sum < needed && pg_commerce_lookup_next(&lookup))
	{
		bool		isnull;

		sum += DatumGetInt32(pg_commerce_lookup_value(&lookup, "quantity", &isnull));
		rows++;
	}
	pg_commerce_lookup_end(&lookup);
	/* sum < needed: the loop read every row */
	*empty = rows > 0 && sum == 0;
	return sum >= needed;
}

/* The OID of a lookup's table (the key of its sold-out hints). */
Oid
pg_commerce_lookup_relid(LookupTable which)
{
	return lookup_cache_get(which)->heap;
}
