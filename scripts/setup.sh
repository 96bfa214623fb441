#!/usr/bin/env bash
# Installs what pg_commerce needs, when it is missing: Debian packages with
# apt-get, and for the tests k6 and Kafka's jars too.  Safe to run again;
# prints what it does.
#
#   scripts/setup.sh          what `make run` needs: build and run the product
#                             (the extension, pg_cron, the HTTP daemon and the
#                             event relay, which links librdkafka)
#   scripts/setup.sh --tests  that, and what only the tests use (pgTAP, Python,
#                             wrk, Patroni and etcd, podman with runc, catatonit (a pod's pause process) and
#                             mmdebstrap, OpenJDK 17, Maven and kcat for a Kafka
#                             broker, whose jars scripts/kafka.sh fetch copies
#                             from Maven Central, and k6, which `go install`
#                             builds: Go >= 1.25 must be on PATH for it)
set -euo pipefail

packages=(
	build-essential pkg-config
	postgresql-15 postgresql-server-dev-15 postgresql-15-cron
	libpq-dev libh2o-evloop-dev libjansson-dev libjwt-dev libssl-dev libuv1-dev zlib1g-dev openssl
	librdkafka-dev
	curl
)
tests=0
case "${1:-}" in
--tests)
	tests=1
	packages+=(
		postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
		jq wrk python3 python3-venv gnuplot-nox time
		patroni etcd-server
		podman runc mmdebstrap catatonit
		openjdk-17-jre-headless maven kcat
	) ;;
"") ;;
*) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

# The private clusters and the Perl TAP tests run as the postgres user inside
# this tree, so postgres must be able to reach it: give "search" (o+x) to each
# parent directory that withholds it, and say so.
let_postgres_in() {
	local top dir=""
	top=$(cd "$(dirname "$0")/.." && pwd)
	[ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1 || return 0
	runuser -u postgres -- test -r "$top/Makefile" && return 0
	# from / down, so that only the directories that really withhold it change
	local IFS=/
	for part in ${top#/}; do
		dir=$dir/$part
		if ! runuser -u postgres -- test -x "$dir"; then
			echo "setup: chmod o+x $dir (the postgres user must reach $top)"
			chmod o+x "$dir"
		fi
	done
}

install_k6() {
	# k6 for tests/load: a pinned release built with `go install` (Go >= 1.25)
	[ "$tests" -eq 1 ] || return 0
	"$(dirname "$0")/install-k6.sh" >/dev/null
}

install_kafka() {
	# Kafka 4.1.1's jars for the broker of tests/events, copied from Maven
	# Central into a per-user cache once (needs openjdk and maven, above)
	[ "$tests" -eq 1 ] || return 0
	"$(dirname "$0")/kafka.sh" fetch
}

if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: all Debian packages present"
	let_postgres_in
	install_k6
	install_kafka
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing packages: ${missing[*]}; run as root (apt-get install)" >&2
	exit 1
fi
echo "setup: installing with apt-get: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's postgresql-common would create and start a system cluster on 5432;
# we run private clusters only, so keep it from creating one.
mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pg_commerce.conf
apt-get install -y -qq --no-install-recommends "${missing[@]}"
let_postgres_in
install_k6
install_kafka
echo "setup: done"
