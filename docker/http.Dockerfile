# commerce-http on Debian bookworm's libh2o-evloop 2.2.5, built with the same
# `make -C frontend` as CI.
#   scripts/containers.sh build      (or: docker build -f docker/http.Dockerfile -t pg_commerce-http:0.8.0 .)
ARG BASE=debian:bookworm
ARG BASE_SLIM=debian:bookworm-slim
FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config \
      libh2o-evloop-dev libjansson-dev libjwt-dev libpq-dev libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
COPY frontend /src/frontend
COPY extension/commerce_errors.h extension/commerce_limits.h /src/extension/
RUN make -C /src/frontend

FROM ${BASE_SLIM}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libh2o-evloop0.13 libjansson4 libjwt0 libpq5 curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/frontend/commerce-http /src/frontend/commerce-token /usr/local/bin/
USER nobody
EXPOSE 8080
# every option also reads COMMERCE_HTTP_* from the environment (see --help)
ENV COMMERCE_HTTP_LISTEN=0.0.0.0:8080
# the JWT key (HS256 secret or PEM public key): mount it here, see compose.yaml
ENV COMMERCE_HTTP_JWT_KEY=/run/secrets/jwt_key
# the listen address is COMMERCE_HTTP_LISTEN's (compose sets its own check)
HEALTHCHECK --interval=5s --timeout=2s CMD curl -fs "http://${COMMERCE_HTTP_LISTEN:-0.0.0.0:8080}/readyz" || exit 1
ENTRYPOINT ["/usr/local/bin/commerce-http"]
