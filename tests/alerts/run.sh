#!/usr/bin/env bash
# tests/alerts/run.sh — the Prometheus alert rules of commerce-http.
#
#   1. promtool check rules ops/prometheus/pg_commerce-alerts.yml (syntax,
#      PromQL, templates);
#   2. promtool test rules tests/alerts/pg_commerce-alerts.test.yml: synthetic
#      series, each alert firing when it should and silent when it should not;
#   3. every alert has summary, description and a runbook into
#      docs/failure-response.md with a known anchor, and at least one firing
#      and one silent expectation in the unit tests;
#   4. every metric name and state/reason label value they use is one that
#      frontend/metrics.c exposes;
#   5. the unit tests can fail: for each alert, a copy of the rules where it
#      never fires, and one where its `for` is 0s, must make them fail.
#
# Needs promtool: scripts/install-promtool.sh unpacks it from Debian's
# "prometheus" package when it is not on PATH.  No cluster, no daemon.
# Last line: "N passed, M failed"; exit status non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rules=$root/ops/prometheus/pg_commerce-alerts.yml
tests=$here/pg_commerce-alerts.test.yml
# the sections of docs/failure-response.md an alert may point at
anchors="a-connections-run-out b-coupon-duplicates c-negative-stock crash daemon-crash stall pool-exhausted
overload lost-ack disk-full"

# promtool alone, unpacked from Debian's package on first use (see the script)
promtool_bin=$("$root/scripts/install-promtool.sh" | tail -n 1) || {
	echo "tests/alerts: could not get promtool (scripts/install-promtool.sh)" >&2
	echo "0 passed, 1 failed"
	exit 1
}
promtool() { "$promtool_bin" "$@"; }

passed=0 failed=0
check() {
	local name=$1; shift
	if "$@"; then
		echo "ok: $name"
		passed=$((passed + 1))
	else
		echo "FAILED: $name"
		failed=$((failed + 1))
	fi
}

check "promtool check rules" promtool check rules "$rules"
check "promtool test rules" promtool test rules "$tests"

# One block per alert: from its "- alert:" line to the next.
alert_block() {
	awk -v a="$1" '/^ *- alert: / { cur = $3 } cur == a' "$rules"
}

alert_is_documented() {
	local a=$1 block anchor ok=0
	block=$(alert_block "$a")
	for key in summary description; do
		if ! grep -qE "^ +$key: " <<<"$block"; then
			echo "  $a: no $key annotation"
			ok=1
		fi
	done
	anchor=$(sed -n 's|^ *runbook: "docs/failure-response\.md#\([a-z0-9-]*\)"$|\1|p' <<<"$block")
	if [ -z "$anchor" ]; then
		echo "  $a: no runbook annotation pointing at docs/failure-response.md#..."
		ok=1
	elif ! grep -qw -- "$anchor" <<<"$anchors"; then
		echo "  $a: unknown runbook anchor #$anchor"
		ok=1
	fi
	return $ok
}

# In the unit tests, a case of this alert with "exp_alerts: []" (silent) and
# one with a list (firing).
alert_is_tested() {
	local a=$1 cases
	cases=$(awk -v a="$1" '/alertname: / { cur = $2 } cur == a && /exp_alerts:/ { print ($2 == "[]" ? "silent" : "firing") }' "$tests")
	grep -qx silent <<<"$cases" || { echo "  $a: no case where it must stay silent"; return 1; }
	grep -qx firing <<<"$cases" || { echo "  $a: no case where it must fire"; return 1; }
}

# The names the rules and the synthetic series use are the daemon's: each
# has its "# TYPE" line in frontend/metrics.c (a histogram's _bucket series
# under the histogram's name), and so has each state= and reason= label value.
names_are_the_daemons() {
	local src=$root/frontend/metrics.c ok=0 name label
	for name in $(grep -ohE 'commerce_http_[a-z0-9_]+' "$rules" "$tests" | sort -u); do
		if ! grep -qE "# TYPE (${name}|${name%_bucket}) " "$src"; then
			echo "  $name: not a metric of frontend/metrics.c"
			ok=1
		fi
	done
	for label in $(grep -ohE '(state|reason)="[a-z_]+"' "$rules" "$tests" | sort -u); do
		if ! grep -qF "${label//\"/\\\"}" "$src"; then
			echo "  $label: not a label value of frontend/metrics.c"
			ok=1
		fi
	done
	return $ok
}
check "metric names and labels are frontend/metrics.c's" names_are_the_daemons

mutant_dir=$(mktemp -d)
trap 'rm -rf "$mutant_dir"' EXIT
cp "$tests" "$mutant_dir/test.yml"
sed -i "s|^  - \.\./\.\./ops/prometheus/pg_commerce-alerts\.yml$|  - rules.yml|" "$mutant_dir/test.yml"

# The copy of the tests must pass against an unchanged copy of the rules,
# else a failure below would prove nothing.
cp "$rules" "$mutant_dir/rules.yml"
check "the copied tests pass against the copied rules" promtool test rules "$mutant_dir/test.yml"

# The unit tests must fail against the mutated rules in $mutant_dir/rules.yml.
tests_fail() {
	if promtool test rules "$mutant_dir/test.yml" >/dev/null 2>&1; then
		echo "  the unit tests still pass"
		return 1
	fi
}

alerts=$(sed -n 's/^ *- alert: //p' "$rules")
[ -n "$alerts" ] || { echo "no alert in $rules"; failed=$((failed + 1)); }
for a in $alerts; do
	check "$a: summary, description, runbook" alert_is_documented "$a"
	check "$a: firing and silent cases" alert_is_tested "$a"

	sed "s/^\( *- alert: \)$a\$/\1${a}Mutant/" "$rules" >"$mutant_dir/rules.yml"
	check "$a: tests fail when it never fires" tests_fail

	if grep -qE '^ +for: ' <<<"$(alert_block "$a")"; then
		awk -v a="$a" '/^ *- alert: / { cur = $3 } cur == a && /^ +for: / { sub(/for: .*/, "for: 0s") } { print }' \
			"$rules" >"$mutant_dir/rules.yml"
		check "$a: tests fail when it fires without waiting its 'for'" tests_fail
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
