#!/usr/bin/env bash
# First start of the container: the extension, the daemon's login role
# (password from COMMERCE_HTTP_PASSWORD) and, unless DEMO_DATA=0, demo data.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v pw="${COMMERCE_HTTP_PASSWORD:-commerce}" <<'SQL'
CREATE EXTENSION pg_commerce;
CREATE ROLE commerce_http LOGIN IN ROLE commerce_api PASSWORD :'pw';
SQL
if [ "${DEMO_DATA:-1}" != 0 ]; then
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
		-f /docker-entrypoint-initdb.d/demo-data.sql.in
fi
