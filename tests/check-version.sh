#!/usr/bin/env bash
# The one version string agrees in the Makefile, the control file and META.json.
set -euo pipefail
cd "$(dirname "$0")/.."
make_version=$(sed -n 's/^EXTVERSION = //p' Makefile)
control_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" extension/pg_commerce.control)
meta_version=$(python3 -c 'import json; m = json.load(open("META.json")); print(m["version"]); assert m["provides"]["pg_commerce"]["version"] == m["version"]')
echo "Makefile $make_version, control $control_version, META.json $meta_version"
[ -n "$make_version" ] && [ "$make_version" = "$control_version" ] && [ "$make_version" = "$meta_version" ]
# every earlier version has an upgrade path to this one
for f in sql/pg_commerce--*--*.sql; do
	[ -e "$f" ] || continue
	echo "upgrade script: $f"
done
