# pg_commerce — top-level Makefile.
#
# The extension builds with PGXS (make, make install, make installcheck);
# the targets below the PGXS include drive everything else.  `make help`
# lists them.

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

# The one version string; extension/pg_commerce.control and META.json must
# agree with it (tests/check-version.sh checks).
EXTVERSION = 0.8.0

MODULE_big = pg_commerce
OBJS = \
	extension/module.o \
	extension/errors.o \
	extension/spi_util.o \
	extension/key_lookup.o \
	extension/sold_out_hint.o \
	extension/buckets.o \
	extension/stock.o \
	extension/coupon.o \
	extension/order_items.o \
	extension/order.o

MODULEDIR = extension
# One source for the schema, as in pg_cron and PostgreSQL's contrib: the
# first release's full script (the base) and one upgrade script per release
# since.  The current version's full script is the base followed by every
# upgrade script in order, built below, so a fresh install runs exactly the
# SQL an upgraded one ran.  tests/check-version.sh checks that the upgrade
# scripts form one unbroken chain, so version order (sort -V) is its order.
UPGRADE_SCRIPTS = $(shell ls sql/pg_commerce--*--*.sql | sort -V)
DATA = extension/pg_commerce.control sql/pg_commerce--0.1.0.sql $(UPGRADE_SCRIPTS)
DATA_built = sql/pg_commerce--$(EXTVERSION).sql

# -isystem: PostgreSQL's headers are third-party code here; warnings in them
# (unused parameters in inline functions) are not ours to fix.
PG_CPPFLAGS = -Iextension -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CFLAGS = -Wall -Wextra $(EXTRA_CFLAGS)

REGRESS = $(sort $(basename $(notdir $(wildcard tests/regress/sql/*.sql))))
REGRESS_OPTS = --inputdir=tests/regress --outputdir=tests/regress
ISOLATION = $(sort $(basename $(notdir $(wildcard tests/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=tests/isolation --outputdir=tests/isolation

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: a change to extension/*.h (the error
# table, say) must rebuild every object, or the module mixes old and new.
$(OBJS) $(OBJS:.o=.bc): $(wildcard extension/*.h)

# PGXS's EXTENSION wants the control file beside the Makefile; ours lives in
# extension/, so it is plain DATA and MODULEDIR puts it in share/extension.
sql/pg_commerce--$(EXTVERSION).sql: sql/pg_commerce--0.1.0.sql $(UPGRADE_SCRIPTS)
	cat $^ > $@

.PHONY: help deps prepare run test load faults events bench-sql bench-http bench-read bench-pgbouncer containers
help:
	@echo "make            build the extension"
	@echo "make install    install it into $$($(PG_CONFIG) --sharedir)"
	@echo "make run        install what is missing, start a private cluster with demo data and commerce-http"
	@echo "make test       install what is missing and run every test"
	@echo "make load       the four k6 scenarios of the event sale (tests/load/run all)"
	@echo "make faults     every fault case at full size (tests/faults/run all)"
	@echo "make events     commerce-relay against a Kafka broker, full size (tests/events/run all)"
	@echo "make containers the images built and the seed's scenarios at full size in them (tests/containers/run --full)"
	@echo "make bench-sql  pgbench figures for the SQL hot paths against naive designs"
	@echo "make bench-http commerce-http (wrk) against pgbench on the same SQL function"
	@echo "make bench-read catalogue reads on the primary against --db-read on its standby (Patroni pair)"
	@echo "make bench-pgbouncer  the SQL and commerce-http through PgBouncer's transaction and session pools"

deps:
	scripts/setup.sh --tests

run:
	scripts/run.sh

test:
	scripts/test.sh

# what the load tests and benchmarks need first on a fresh machine
prepare:
	scripts/setup.sh --tests
	$(MAKE) install

load: prepare
	tests/load/run all

faults: prepare
	tests/faults/run all

events: prepare
	tests/events/run all

bench-sql: prepare
	scripts/bench-sql.sh

bench-http: prepare
	scripts/bench-http.sh

bench-read: prepare
	scripts/bench-read-standby.sh

bench-pgbouncer: prepare
	scripts/bench-pgbouncer.sh

containers: prepare
	tests/containers/run --full
