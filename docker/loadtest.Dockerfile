# k6 with the load scenarios (tests/load): their seed data, their variables
# and the invariant checks, run by tests/load/run against a running shop
# (its external mode: BASE_URL, PG* of a superuser, JWT_KEY).  k6 is the
# pinned release scripts/install-k6.sh builds (no registry serves its image
# here), passed in by scripts/containers.sh build as the build context's
# k6; commerce-token comes from the daemon's image.
#   scripts/containers.sh build      (builds pg_commerce-loadtest:0.8.0 after the other two)
ARG BASE_SLIM=debian:bookworm-slim
ARG HTTP_IMAGE=pg_commerce-http:0.8.0
FROM ${HTTP_IMAGE} AS http

FROM ${BASE_SLIM}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 jq curl ca-certificates gawk \
      libjansson4 libjwt0 gnuplot-nox \
 && rm -rf /var/lib/apt/lists/*
COPY k6 /usr/local/bin/k6
COPY --from=http /usr/local/bin/commerce-token /pg_commerce/frontend/commerce-token
COPY tests/load /pg_commerce/tests/load
COPY tests/invariants.sql tests/invariant_input.sql /pg_commerce/tests/
ENV K6=/usr/local/bin/k6 RESULTS_DIR=/results
WORKDIR /pg_commerce
VOLUME /results
ENTRYPOINT ["/pg_commerce/tests/load/run"]
CMD ["--small", "event-orders", "coupon-flood", "hot-stock"]
