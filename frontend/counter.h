/*
 * counter.h
 *      The one discipline for numbers a thread writes and the metrics scrape
 *      reads from another thread: only the owning thread writes (a relaxed
 *      store, so a read is never torn), any thread reads with a relaxed
 *      load.  A scrape may be a few events behind; it never sees half a
 *      number.  No read-modify-write atomics are needed with one writer.
 */
#ifndef COMMERCE_HTTP_COUNTER_H
#define COMMERCE_HTTP_COUNTER_H

#define COUNTER_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define COUNTER_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define COUNTER_ADD(x, n) COUNTER_SET(x, (x) + (n))
#define COUNTER_BUMP(x) COUNTER_ADD(x, 1)

#endif
