#!/usr/bin/env bash
# `make test`: install what is missing, build, and run every test suite
# against a private PostgreSQL cluster.  Prints one line per suite and ends
# with "N passed, M failed"; exits non-zero if any suite failed.
#
# Environment: TEST_PGPORT (default 5439) for the private cluster;
# CI=true adds -Werror to the build (warnings are errors in CI only).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
port=${TEST_PGPORT:-5439}
rundir=$top/.run/test
logdir=$top/.run/test-logs

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
scripts/setup.sh --tests || exit 1

step "build and install the extension"
cflags=""
[ "${CI:-}" = "true" ] && cflags="-Werror"
make -s EXTRA_CFLAGS="$cflags" >/dev/null || { echo "build failed"; exit 1; }
make -s install >/dev/null || { echo "install failed"; exit 1; }

step "private cluster on port $port"
# (captured first: eval of a failed command substitution would succeed)
cluster_env=$(scripts/pg-cluster.sh fresh "$rundir" "$port") ||
	{ echo "cannot start the private cluster on port $port (in use? TEST_PGPORT picks another)"; exit 1; }
eval "$cluster_env"
trap 'scripts/pg-cluster.sh stop "$rundir"' EXIT
rm -rf "$logdir"; mkdir -p "$logdir"

passed=0
failed=0
# pg_regress and prove ("name ... ok"), unittest, the fault and load runners
progress='(\.\.\.? *(ok|FAILED|FAIL|ERROR|not ok|skipped)\b)|^(=== |--- |case |scenario |all scenarios|ok   |FAIL )|[0-9]+ passed, [0-9]+ failed'

failed_names=()
suite() {
	local name=$1 status; shift
	step "$name"
	# the whole output to the suite's log; on the console, as they come, the
	# lines that mark a test file or case starting or ending
	"$@" 2>&1 | tee "$logdir/$name.log" | { grep --line-buffered -E "$progress" || true; } |
		sed -u 's/^/  | /'
	status=${PIPESTATUS[0]}
	if [ "$status" -eq 0 ]; then
		tail -n 3 "$logdir/$name.log"
		echo "suite $name: ok"
		passed=$((passed + 1))
	else
		tail -n 60 "$logdir/$name.log"
		echo "suite $name: FAILED (full log: $logdir/$name.log)"
		failed=$((failed + 1))
		failed_names+=("$name")
	fi
}

suite version      tests/check-version.sh
suite error-table  tests/check-error-table.sh
suite limits       tests/check-limits.py
suite alerts       tests/alerts/run.sh
suite regress      make installcheck ISOLATION=
suite isolation    make installcheck REGRESS=
# suites contributed by tests/*/run.sh, in order; each gets PG* from above
# (backup starts clusters of its own)
for runner in tests/pgtap/run.sh tests/tap/run.sh tests/backup/run.sh tests/http/run.sh; do
	[ -x "$runner" ] && suite "$(basename "$(dirname "$runner")")" "$runner"
done
# docs/openapi.yaml against the live daemon (cluster and daemon of its own)
suite schemathesis tests/schemathesis/run.sh
# the short fault cases, each against a cluster and daemon of its own
suite faults-short tests/faults/run --short all
# commerce-relay against a real Kafka broker (one KRaft node it starts)
suite events tests/events/run --short
if [ -x tests/load/run ]; then
	suite load-small tests/load/run --small all
fi
# the images built, the seed's scenarios in containers under -m 1g --cpus 1,
# the pod file run (tests/containers/run --full: the scenarios at full size)
suite containers tests/containers/run

echo
[ "$failed" -gt 0 ] && echo "failed suites: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
