# PostgreSQL 15 with pg_commerce: Debian bookworm's postgresql-15, and the
# extension built with the same `make && make install` as CI.  Based on
# debian:bookworm rather than the official postgres image so that it builds
# where no registry is reachable (scripts/container-base.sh makes the base
# from Debian's mirror; where Docker Hub is reachable its debian images of
# the same names serve).  docker/db-entrypoint.sh does what users expect of
# the official image's entrypoint for this use: initdb with
# POSTGRES_PASSWORD on first start, the /docker-entrypoint-initdb.d scripts
# (the extension, the daemon's role, the demo data), PGPORT, data in the
# volume, SIGTERM as a fast shutdown.
#   scripts/containers.sh build        (or: docker build -f docker/postgres.Dockerfile -t pg_commerce-db:0.8.0 .)
ARG BASE=debian:bookworm
ARG BASE_SLIM=debian:bookworm-slim
ARG PG_MAJOR=15

FROM ${BASE} AS build
ARG PG_MAJOR
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential postgresql-server-dev-${PG_MAJOR} \
 && rm -rf /var/lib/apt/lists/*
COPY Makefile /src/
COPY extension /src/extension
COPY sql /src/sql
RUN make -C /src PG_CONFIG=/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config \
 && make -C /src PG_CONFIG=/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config install DESTDIR=/out

FROM ${BASE_SLIM}
ARG PG_MAJOR
# Debian's packaging would create and start a cluster of its own: neither,
# the entrypoint makes the one in the volume
RUN mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-${PG_MAJOR} \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
COPY --from=build /out/ /
COPY docker/db-entrypoint.sh /usr/local/bin/db-entrypoint.sh
COPY docker/initdb.sh /docker-entrypoint-initdb.d/10-pg_commerce.sh
COPY scripts/demo-data.sql /docker-entrypoint-initdb.d/demo-data.sql.in
ENV PG_MAJOR=${PG_MAJOR} PGDATA=/var/lib/postgresql/data PGPORT=5432
VOLUME /var/lib/postgresql/data
EXPOSE 5432
HEALTHCHECK --interval=2s --timeout=2s --retries=30 CMD pg_isready -h /run/postgresql -p "$PGPORT" -U postgres
ENTRYPOINT ["/usr/local/bin/db-entrypoint.sh"]
