#!/usr/bin/env bash
# pgTAP suite: schema, constraints, privileges and the error table.
#
# Runs against an already-running cluster named by the PG* environment
# (PGHOST, PGPORT, PGUSER: a superuser), with pg_commerce installed in its
# sharedir.  Creates a fresh database, installs pgtap and pg_commerce there,
# runs pg_prove over tests/pgtap/*.sql and drops the database again.
# Exits non-zero when any test fails.  Extra arguments go to pg_prove
# (e.g. -v).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"	# the tests read docs/errors.md relative to the top directory
db=pgtap_commerce_$$

psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
cleanup() { psql -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; }
trap cleanup EXIT

psql -d postgres -c "CREATE DATABASE $db"
psql -d "$db" -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION pg_commerce"

pg_prove --nocolor -d "$db" "$@" tests/pgtap/*.sql
