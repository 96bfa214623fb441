#!/usr/bin/env bash
# The error table in README.md and docs/errors.md is the one the code has
# (commerce.error_codes(), built from extension/commerce_errors.h).
set -euo pipefail
cd "$(dirname "$0")/.."
db=check_error_table
psql -q -X -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
psql -q -X -d "$db" -c "CREATE EXTENSION pg_commerce" >/dev/null
expected=$(psql -X -At -d "$db" -F ' | ' -c "SELECT '| ' || code, http_status, sqlstate, condition || ' |' FROM commerce.error_codes()")
psql -q -X -c "DROP DATABASE $db" >/dev/null
status=0
for doc in README.md docs/errors.md; do
	actual=$(grep -E '^\| [A-Z_]+ \| [0-9]{3} \| PC[0-9A-Z]{3} \|' "$doc" || true)
	if [ "$actual" = "$expected" ]; then
		echo "$doc: error table matches ($(echo "$expected" | wc -l) rows)"
	else
		echo "$doc: error table differs from commerce.error_codes():"
		diff <(echo "$expected") <(echo "$actual") || true
		status=1
	fi
done
exit $status
