# PostgreSQL 15 with pg_commerce installed, built with the same `make &&
# make install` as CI.  The init script creates the extension, the daemon's
# login role and the demo data on first start.
#   docker build -f docker/postgres.Dockerfile -t pg_commerce-db:0.1.0 .
FROM postgres:15-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential postgresql-server-dev-15 \
 && rm -rf /var/lib/apt/lists/*

COPY . /src/pg_commerce
RUN cd /src/pg_commerce && make clean && make && make install

COPY docker/initdb.sh /docker-entrypoint-initdb.d/10-pg_commerce.sh
COPY scripts/demo-data.sql /docker-entrypoint-initdb.d/demo-data.sql.in
