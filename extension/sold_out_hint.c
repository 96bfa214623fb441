/*
 * sold_out_hint.c
 *      A shared-memory note of which coupons and products are sold out, so
 *      that the nine refusals in ten of a flash sale read no bucket at all.
 *
 * Without it a refusal reads every bucket of the quantity (up to 64 rows)
 * to learn that their committed sum is 0.  With it, the first caller that
 * reads a committed sum of 0 sets a hint, and the callers after it answer
 * "sold out" from one spinlock-protected slot.
 *
 * The table: pg_commerce.sold_out_hints slots in shared memory, allocated
 * only when the library is in shared_preload_libraries (the table cannot be
 * created later).  Without it, or with the setting 0, every function here
 * answers "no hint" and the extension behaves as if the file did not exist.
 * A slot is chosen by hashing (database, bucket table, id); two keys of one
 * slot only push each other's hint out: a hint is never read for a key it
 * was not set for.  Shared memory is created afresh at every start and after
 * every crash, so no hint outlives either; the database and the table's OID
 * are part of the key, so hints are per database and a restored or recreated
 * table starts without any.
 *
 * Why it never says a false "sold out".  A hint may only be set from a
 * committed sum of 0 read by a snapshot that (a) holds no uncommitted take
 * of the reader's own (its transaction has no xid yet, so an abort of its own
 * cannot give units back behind the hint), and (b) was taken after a ticket
 * that the setter read from the slot before the snapshot.  Everything that
 * can make units available again (a bucket's quantity raised by a restock, a
 * cancelled order or a DBA; a bucket inserted, deleted or moved to another
 * key; a TRUNCATE) runs the trigger commerce.sold_out_hint_give_back(), which
 * in the giver's transaction, before it can commit:
 *   - clears the slot's hint and raises its generation, so a setter whose
 *     ticket is older fails (its snapshot may predate the give-back), and
 *   - counts the giver in the slot's `givers` until its transaction has
 *     ended; a ticket read while givers > 0 cannot set.  The count is
 *     lowered by the transaction callback, which PostgreSQL runs after the
 *     commit became visible (or after the abort), so any ticket read after
 *     that is followed by a snapshot that sees the units given back.
 * Takes that abort cannot lie either: the hint comes from a committed sum,
 * which an uncommitted take never lowered.  Reading a hint set under these
 * rules is therefore what reading the buckets would have answered, without
 * the read.  A transaction that PREPAREs after giving back leaves its slots
 * counted (no hint on them) until the next restart, the safe side.
 *
 * Hints are not used during recovery: a hot standby replays changes without
 * running triggers.  pg_restore --disable-triggers and ALTER TABLE ... DISABLE
 * TRIGGER bypass the give-back; commerce.forget_sold_out_hints() is for after
 * such a change.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "pg_commerce.h"

typedef struct SoldOutKey
{
	Oid			dbid;
	Oid			relid;			/* the bucket table */
	int64		id;				/* the product or coupon */
} SoldOutKey;

typedef struct SoldOutSlot
{
	slock_t		mutex;
	bool		sold_out;		/* `key` was sold out, see the file header */
	uint32		givers;			/* open transactions that gave units back here */
	uint64		generation;		/* raised by every give-back and its end */
	SoldOutKey	key;
} SoldOutSlot;

int			pg_commerce_sold_out_hint_slots = 8192;

static SoldOutSlot *slots = NULL;	/* NULL: hints are off in this server */
static int	nslots = 0;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * The slots this backend's open transaction counted itself in (givers++),
 * to uncount at its end.  A transaction that gives back in more slots than
 * fit counts itself in all of them once (`gave_everywhere`): a bulk restock
 * or data load pauses every hint until it ends, which is cheap and safe.
 */
#define MAX_GIVEN_SLOTS 1024
static int	given[MAX_GIVEN_SLOTS];
static int	ngiven = 0;
static bool gave_everywhere = false;

static Size
hint_shmem_size(void)
{
	return mul_size(sizeof(SoldOutSlot), pg_commerce_sold_out_hint_slots);
}

static void
hint_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(hint_shmem_size());
}

static void
hint_shmem_startup(void)
{
	bool		found;
	SoldOutSlot *table;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	table = ShmemInitStruct("pg_commerce sold-out hints", hint_shmem_size(), &found);
	if (!found)
	{
		for (int i = 0; i < pg_commerce_sold_out_hint_slots; i++)
		{
			SpinLockInit(&table[i].mutex);
			table[i].sold_out = false;
			table[i].givers = 0;
			table[i].generation = 0;
			memset(&table[i].key, 0, sizeof(SoldOutKey));
		}
	}
	LWLockRelease(AddinShmemInitLock);
	slots = table;
	nslots = pg_commerce_sold_out_hint_slots;
}

/*
 * A giver's start in one slot: no hint from before it stands, no ticket from
 * before it may set one, and (unless it is counted there already) no ticket
 * until its end may either.
 */
static void
count_giver(SoldOutSlot *slot, bool already_counted)
{
	SpinLockAcquire(&slot->mutex);
	if (!already_counted)
		slot->givers++;
	slot->sold_out = false;
	slot->generation++;
	SpinLockRelease(&slot->mutex);
}

/* A giver's end in one slot, after its outcome became visible. */
static void
uncount_giver(SoldOutSlot *slot)
{
	SpinLockAcquire(&slot->mutex);
	slot->givers--;
	slot->generation++;
	SpinLockRelease(&slot->mutex);
}

/* Releases this transaction's counts; see the file header. */
static void
uncount_givers(void)
{
	if (gave_everywhere)
		for (int i = 0; i < nslots; i++)
			uncount_giver(&slots[i]);
	else
		for (int i = 0; i < ngiven; i++)
			uncount_giver(&slots[given[i]]);
	ngiven = 0;
	gave_everywhere = false;
}

static void
hint_xact_callback(XactEvent event, void *arg)
{
	(void) arg;
	if (ngiven == 0 && !gave_everywhere)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* after ProcArrayEndTransaction: the outcome is visible now */
			uncount_givers();
			break;
		case XACT_EVENT_PREPARE:
			/* its outcome comes later, in another backend: stay counted */
			ereport(LOG,
					(errmsg("pg_commerce: a prepared transaction gave units back; "
							"sold-out hints stay off for %s until the server restarts",
							gave_everywhere ? "every product and coupon" : "some products or coupons")));
			ngiven = 0;
			gave_everywhere = false;
			break;
		default:
			break;
	}
}

/*
 * Called from _PG_init.  Only a preloaded library may define the setting
 * (PGC_POSTMASTER: the table's size is fixed at start) and create the
 * table; loaded later, the module keeps no hints.
 */
void
pg_commerce_sold_out_hint_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("pg_commerce.sold_out_hints",
							"Number of slots of the shared sold-out hint table (0 turns hints off).",
							"Each slot remembers one sold-out product or coupon, so refusing it "
							"reads no bucket; takes effect only with pg_commerce in "
							"shared_preload_libraries.",
							&pg_commerce_sold_out_hint_slots,
							8192, 0, 1048576,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	if (pg_commerce_sold_out_hint_slots == 0)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = hint_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = hint_shmem_startup;
	RegisterXactCallback(hint_xact_callback, NULL);
}

static bool
hints_usable(void)
{
	return slots != NULL && !RecoveryInProgress();
}

static int
slot_of(const SoldOutKey *key)
{
	return (int) (hash_bytes((const unsigned char *) key, sizeof(SoldOutKey)) % (uint32) nslots);
}

static void
make_key(SoldOutKey *key, Oid relid, int64 id)
{
	memset(key, 0, sizeof(*key));	/* hashed as bytes */
	key->dbid = MyDatabaseId;
	key->relid = relid;
	key->id = id;
}

/*
 * Whether id of the bucket table is hinted sold out; also fills the ticket
 * a later pg_commerce_sold_out_set needs.  Read it before the snapshot whose
 * committed sum may set the hint.
 */
bool
pg_commerce_sold_out_look(LookupTable buckets, int64 id, SoldOutTicket *ticket)
{
	SoldOutKey	key;
	SoldOutSlot *slot;
	bool		sold_out;

	ticket->slot = -1;
	ticket->settable = false;
	if (!hints_usable())
		return false;
	make_key(&key, pg_commerce_lookup_relid(buckets), id);
	ticket->slot = slot_of(&key);
	slot = &slots[ticket->slot];
	SpinLockAcquire(&slot->mutex);
	sold_out = slot->sold_out && memcmp(&slot->key, &key, sizeof(key)) == 0;
	ticket->generation = slot->generation;
	ticket->settable = slot->givers == 0;
	SpinLockRelease(&slot->mutex);
	ticket->key_relid = key.relid;
	ticket->id = id;
	return sold_out;
}

/*
 * Sets the hint of the ticket's key after a snapshot taken since the ticket
 * saw a committed sum of 0 in at least one bucket.  Does nothing when the
 * rules of the file header do not allow it.
 */
void
pg_commerce_sold_out_set(const SoldOutTicket *ticket)
{
	SoldOutSlot *slot;

	if (ticket->slot < 0 || !ticket->settable || !hints_usable())
		return;
	/* an uncommitted take of our own could still give units back by aborting */
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	slot = &slots[ticket->slot];
	SpinLockAcquire(&slot->mutex);
	if (slot->generation == ticket->generation && slot->givers == 0)
	{
		make_key(&slot->key, ticket->key_relid, ticket->id);
		slot->sold_out = true;
	}
	SpinLockRelease(&slot->mutex);
}

/* Counts this transaction in every slot it is not counted in yet. */
static void
give_back_everywhere(void)
{
	bool	   *counted = palloc0(sizeof(bool) * nslots);

	for (int j = 0; j < ngiven; j++)
		counted[given[j]] = true;
	for (int i = 0; i < nslots; i++)
		count_giver(&slots[i], counted[i]);
	pfree(counted);
	ngiven = 0;
	gave_everywhere = true;
}

/* Units of (relid, id) may become available: see the file header. */
static void
give_back(Oid relid, int64 id)
{
	SoldOutKey	key;
	int			index;

	if (slots == NULL || gave_everywhere)
		return;					/* off, or every slot is counted already */
	make_key(&key, relid, id);
	index = slot_of(&key);
	/* counted once: no hint can have been set here since */
	for (int i = ngiven - 1; i >= 0; i--)
		if (given[i] == index)
			return;
	if (ngiven == MAX_GIVEN_SLOTS)
	{
		give_back_everywhere();
		return;
	}
	count_giver(&slots[index], false);
	given[ngiven++] = index;
}

static int64
key_of(TriggerData *trigdata, HeapTuple tuple, int attnum)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, RelationGetDescr(trigdata->tg_relation), &isnull);

	if (isnull)
		elog(ERROR, "sold_out_hint_give_back: the key column is null");
	return DatumGetInt64(value);
}

/*
 * commerce.sold_out_hint_give_back() RETURNS trigger
 *
 * AFTER INSERT, UPDATE (only those raising a quantity or moving a row to
 * another key: the trigger's WHEN clause), DELETE FOR EACH ROW and AFTER
 * TRUNCATE FOR EACH STATEMENT on the bucket tables.  Argument: the name of
 * the bigint key column (product_id, coupon_id).
 */
PG_FUNCTION_INFO_V1(pg_commerce_sold_out_hint_give_back);
Datum
pg_commerce_sold_out_hint_give_back(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Oid			relid;
	int			attnum;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		trigdata->tg_trigger->tgnargs != 1)
		elog(ERROR, "sold_out_hint_give_back: must be an AFTER trigger with the key column as argument");
	relid = RelationGetRelid(trigdata->tg_relation);

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		if (slots != NULL && !gave_everywhere)
			give_back_everywhere();
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "sold_out_hint_give_back: must be FOR EACH ROW (or FOR EACH STATEMENT on TRUNCATE)");

	attnum = SPI_fnumber(RelationGetDescr(trigdata->tg_relation), trigdata->tg_trigger->tgargs[0]);
	if (attnum <= 0)
		elog(ERROR, "sold_out_hint_give_back: no column \"%s\"", trigdata->tg_trigger->tgargs[0]);
	give_back(relid, key_of(trigdata, trigdata->tg_trigtuple, attnum));
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		give_back(relid, key_of(trigdata, trigdata->tg_newtuple, attnum));
	return PointerGetDatum(NULL);
}

/*
 * commerce.sold_out_hints() RETURNS TABLE (kind text, id bigint)
 *
 * The products ('stock') and coupons ('coupon') of this database that are
 * hinted sold out now.
 */
PG_FUNCTION_INFO_V1(pg_commerce_sold_out_hints);
Datum
pg_commerce_sold_out_hints(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			stock;
	Oid			coupon;

	InitMaterializedSRF(fcinfo, 0);
	if (!hints_usable())
		return (Datum) 0;
	stock = pg_commerce_lookup_relid(LOOKUP_STOCK_BUCKETS);
	coupon = pg_commerce_lookup_relid(LOOKUP_COUPON_BUCKETS);
	for (int i = 0; i < nslots; i++)
	{
		SoldOutKey	key;
		bool		sold_out;
		Datum		values[2];
		bool		nulls[2] = {false, false};

		SpinLockAcquire(&slots[i].mutex);
		sold_out = slots[i].sold_out;
		key = slots[i].key;
		SpinLockRelease(&slots[i].mutex);
		if (!sold_out || key.dbid != MyDatabaseId || (key.relid != stock && key.relid != coupon))
			continue;
		values[0] = CStringGetTextDatum(key.relid == stock ? "stock" : "coupon");
		values[1] = Int64GetDatum(key.id);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * commerce.sold_out_hints_active() RETURNS boolean: whether this server
 * keeps hints (preloaded, pg_commerce.sold_out_hints > 0, not in recovery).
 */
PG_FUNCTION_INFO_V1(pg_commerce_sold_out_hints_active);
Datum
pg_commerce_sold_out_hints_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hints_usable());
}

/*
 * commerce.forget_sold_out_hints() RETURNS integer: clears every hint of
 * this database (after a change made with the give-back trigger disabled)
 * and returns how many there were.  Only clears: a setter whose ticket is
 * older than this call fails, because the generation moved.
 */
PG_FUNCTION_INFO_V1(pg_commerce_forget_sold_out_hints);
Datum
pg_commerce_forget_sold_out_hints(PG_FUNCTION_ARGS)
{
	int32		forgotten = 0;

	if (slots == NULL)
		PG_RETURN_INT32(0);
	for (int i = 0; i < nslots; i++)
	{
		SpinLockAcquire(&slots[i].mutex);
		if (slots[i].sold_out && slots[i].key.dbid == MyDatabaseId)
		{
			slots[i].sold_out = false;
			forgotten++;
		}
		slots[i].generation++;
		SpinLockRelease(&slots[i].mutex);
	}
	PG_RETURN_INT32(forgotten);
}
