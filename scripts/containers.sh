#!/usr/bin/env bash
# scripts/containers.sh: the product in containers, with podman (the same
# Dockerfiles serve `docker build`).
#
#   scripts/containers.sh build
#       the local base images (scripts/container-base.sh, cached) and the
#       images, tagged with the extension's version: pg_commerce-db:V,
#       pg_commerce-http:V, and pg_commerce-loadtest:V (k6 with the load
#       scenarios, their seeds and checks; k6 from scripts/install-k6.sh).
#   scripts/containers.sh up DIR [PG_PORT [HTTP_PORT]]
#       starts the database (a fresh volume, passwords made for the run, no
#       demo data) and commerce-http in front of it, each with the seed's
#       limits `-m 1g --cpus 1`, on host networking: PostgreSQL on PG_PORT
#       (5490), the daemon on 127.0.0.1:HTTP_PORT (18190), verifying HS256
#       tokens with DIR/jwt.key.  Waits until both are ready, then prints
#       the environment that reaches them (BASE_URL, PG* as the superuser,
#       JWT_KEY), as tests/load/run's external mode wants it.
#   scripts/containers.sh down DIR
#       stops (SIGTERM, a fast shutdown for the database) and removes the
#       containers and the volume `up` made, by the ids it kept in DIR, and
#       nothing else.
#
# CONTAINERS_CONF defaults to docker/containers.conf (runc, cgroupfs, host
# networking, the ulimits this machine allows).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/docker/containers.conf}
version=$(sed -n 's/^EXTVERSION = //p' "$root/Makefile")
limits=(--memory 1g --cpus 1)
# (--no-healthcheck below: the images' checks would want systemd timers; up polls readiness itself)
say() { echo "containers: $*" >&2; }

build() {
	"$root/scripts/container-base.sh" >&2
	local image
	for image in db:postgres http:http; do
		say "building pg_commerce-${image%%:*}:$version"
		podman build --quiet --format docker --pull=never --network host -f "$root/docker/${image#*:}.Dockerfile" \
			--ignorefile "$root/docker/${image#*:}.Dockerfile.dockerignore" \
			-t "pg_commerce-${image%%:*}:$version" "$root" >/dev/null
	done
	# the load image's context: k6 (built on the host, pinned) and the scenarios
	local k6 ctx
	k6=$("$root/scripts/install-k6.sh" | tail -n 1)
	ctx=$(mktemp -d)
	mkdir -p "$ctx/tests"
	cp "$k6" "$ctx/k6"
	cp -r "$root/tests/load" "$ctx/tests/load"
	cp "$root/tests/invariants.sql" "$root/tests/invariant_input.sql" "$ctx/tests/"
	say "building pg_commerce-loadtest:$version"
	podman build --quiet --format docker --pull=never --network host -f "$root/docker/loadtest.Dockerfile" \
		--build-arg HTTP_IMAGE="pg_commerce-http:$version" -t "pg_commerce-loadtest:$version" "$ctx" >/dev/null ||
		{ rm -rf "$ctx"; return 1; }
	rm -rf "$ctx"
}

up() {
	local dir=$1 pg_port=${2:-5490} http_port=${3:-18190} pw http_pw
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	http_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	head -c 48 /dev/urandom >"$dir/jwt.key"
	chmod 644 "$dir/jwt.key"			# read by the daemon's user, nobody
	podman volume create "pg_commerce-data-$(basename "$dir")-$$" >"$dir/volume"
	podman run --detach --no-healthcheck --name "pg_commerce-db-$$" "${limits[@]}" \
		-e POSTGRES_PASSWORD="$pw" -e COMMERCE_HTTP_PASSWORD="$http_pw" -e DEMO_DATA=0 -e PGPORT="$pg_port" \
		-v "$(cat "$dir/volume")":/var/lib/postgresql/data \
		"pg_commerce-db:$version" -c max_connections=200 -c shared_buffers=256MB >"$dir/db.id"
	for _ in $(seq 1 300); do
		pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
		[ "$(podman inspect --format '{{.State.Running}}' "$(cat "$dir/db.id")")" = true ] ||
			{ podman logs "$(cat "$dir/db.id")" >&2; say "the database container stopped"; return 1; }
		sleep 0.2
	done
	pg_isready -q -h 127.0.0.1 -p "$pg_port" || { say "the database did not become ready"; return 1; }
	podman run --detach --no-healthcheck --name "pg_commerce-http-$$" "${limits[@]}" \
		-v "$dir/jwt.key":/run/secrets/jwt_key:ro \
		-e COMMERCE_HTTP_LISTEN="127.0.0.1:$http_port" -e COMMERCE_HTTP_THREADS=2 -e COMMERCE_HTTP_POOL_SIZE=8 \
		-e COMMERCE_HTTP_DB="host=127.0.0.1 port=$pg_port dbname=postgres user=commerce_http password=$http_pw" \
		"pg_commerce-http:$version" >"$dir/http.id"
	for _ in $(seq 1 100); do
		curl -fs -o /dev/null "http://127.0.0.1:$http_port/readyz" && break
		sleep 0.1
	done
	curl -fs -o /dev/null "http://127.0.0.1:$http_port/readyz" ||
		{ podman logs "$(cat "$dir/http.id")" >&2; say "commerce-http did not become ready"; return 1; }
	say "up: database $(cut -c1-12 "$dir/db.id") on $pg_port, commerce-http $(cut -c1-12 "$dir/http.id") on $http_port, each -m 1g --cpus 1"
	echo "export BASE_URL=http://127.0.0.1:$http_port PGHOST=127.0.0.1 PGPORT=$pg_port PGUSER=postgres" \
		"PGPASSWORD=$pw PGDATABASE=postgres JWT_KEY=$dir/jwt.key"
}

down() {
	local dir=$1 id
	for id in http db; do
		[ -s "$dir/$id.id" ] || continue
		podman stop --time 20 "$(cat "$dir/$id.id")" >/dev/null 2>&1 || true
		podman rm --force "$(cat "$dir/$id.id")" >/dev/null 2>&1 || true
		rm -f "$dir/$id.id"
	done
	if [ -s "$dir/volume" ]; then
		podman volume rm --force "$(cat "$dir/volume")" >/dev/null 2>&1 || true
		rm -f "$dir/volume"
	fi
}

case "${1:-}" in
build) build ;;
up) [ $# -ge 2 ] || { echo "usage: $0 up DIR [PG_PORT [HTTP_PORT]]" >&2; exit 2; }; shift; up "$@" ;;
down) [ $# -eq 2 ] || { echo "usage: $0 down DIR" >&2; exit 2; }; down "$2" ;;
*) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0" >&2; exit 2 ;;
esac
