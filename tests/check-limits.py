#!/usr/bin/env python3
"""The bounds of extension/commerce_limits.h are the ones the install script
(sql/pg_commerce--0.1.0.sql and the upgrade scripts after it) and
docs/openapi.yaml write as literals.  Every place
that states a bound is found by its pattern and compared with the header;
a pattern that matches nothing fails too, so a reworded bound cannot slip
out of the check.  The C of both programs uses the header itself, except
the two popular-products bounds that frontend/handlers.c writes as
literals, which are checked here like the SQL's."""
import glob
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def read(path):
    if path == "the install script":
        return "".join(read(p) for p in SCRIPTS)
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


LIMITS = {m.group(1): int(m.group(2)) for m in
          re.finditer(r"^#define\s+(COMMERCE_MAX_\w+)\s+(\d+)", read("extension/commerce_limits.h"), re.M)}

def version_key(path):
    """pg_commerce--0.4.0--0.5.0.sql -> (0, 4, 0): the chain's order."""
    return tuple(int(n) for n in re.search(r"--(\d+)\.(\d+)\.(\d+)--", path).groups())


# the current install script, as the Makefile builds it: the base, then every upgrade script in order
SCRIPTS = ["sql/pg_commerce--0.1.0.sql"] + sorted(
    (os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "sql", "pg_commerce--*--*.sql"))), key=version_key)
SQL, API, HTTP = "the install script", "docs/openapi.yaml", "frontend/handlers.c"
# (what, file, pattern whose group "n" is the bound, the header's name)
PLACES = [
    ("idempotency key", SQL, r"length\((?:idempotency_)?key\) (?:NOT )?BETWEEN 1 AND (?P<n>\d+)",
     "COMMERCE_MAX_IDEMPOTENCY_KEY"),
    ("idempotency key", SQL, r"idempotency_key must be 1 to (?P<n>\d+) characters", "COMMERCE_MAX_IDEMPOTENCY_KEY"),
    ("idempotency key", API, r"1-(?P<n>\d+) visible ASCII characters", "COMMERCE_MAX_IDEMPOTENCY_KEY"),
    ("idempotency key", API, r"maxLength: (?P<n>\d+), pattern: '\^\[\\x21-\\x7e\]\+\$'",
     "COMMERCE_MAX_IDEMPOTENCY_KEY"),
    ("name", SQL, r"length\(name\) (?:NOT )?BETWEEN 1 AND (?P<n>\d+)", "COMMERCE_MAX_NAME"),
    ("name", SQL, r"name must be 1 to (?P<n>\d+) characters", "COMMERCE_MAX_NAME"),
    ("name", API, r"name: \{type: string, minLength: 1, maxLength: (?P<n>\d+)", "COMMERCE_MAX_NAME"),
    ("category", SQL, r"length\(category\) (?:NOT )?BETWEEN 1 AND (?P<n>\d+)", "COMMERCE_MAX_CATEGORY"),
    ("keyword", SQL, r"length\(keyword\) > (?P<n>\d+)", "COMMERCE_MAX_CATEGORY"),
    ("category, keyword", API, r"(?:category|keyword)[:,].*?maxLength: (?P<n>\d+)", "COMMERCE_MAX_CATEGORY"),
    ("coupon code", SQL, r"length\(code\) (?:NOT )?BETWEEN 1 AND (?P<n>\d+)", "COMMERCE_MAX_COUPON_CODE"),
    ("coupon code", API, r"(?:couponCode|code): \{type: string, minLength: 1, maxLength: (?P<n>\d+)",
     "COMMERCE_MAX_COUPON_CODE"),
    ("order lines", API, r"items: \{type: array, minItems: 1, maxItems: (?P<n>\d+)", "COMMERCE_MAX_ORDER_LINES"),
    # an order line's quantity, in the component schemas (restock's quantity, further in, is another bound)
    ("line quantity", API, r"(?m)^        quantity: \{type: integer, minimum: 1, maximum: (?P<n>\d+)\}",
     "COMMERCE_MAX_LINE_QUANTITY"),
    # popular_products: its longest window (also how long housekeeping keeps sales_stats and the
    # range of the precomputed windows) and its largest limit (also the depth of the ranking)
    ("popular days", SQL, r"days (?:NOT )?BETWEEN 1 AND (?P<n>\d+)", "COMMERCE_MAX_POPULAR_DAYS"),
    ("popular days", SQL, r"days must be between 1 and (?P<n>\d+)", "COMMERCE_MAX_POPULAR_DAYS"),
    ("sales_stats retention", SQL, r"o\.hour < date_trunc\('hour', now\(\) - make_interval\(days => (?P<n>\d+)\)\)",
     "COMMERCE_MAX_POPULAR_DAYS"),
    ("popular days", API, r"name: days, in: query, schema: \{type: integer, minimum: 1, maximum: (?P<n>\d+)",
     "COMMERCE_MAX_POPULAR_DAYS"),
    ("popular days", HTTP, r"validate_query_integer\(call, &params\[0\], 1, (?P<n>\d+), &days\)",
     "COMMERCE_MAX_POPULAR_DAYS"),
    # each definition of popular_products, up to its own limit check
    ("popular limit", SQL, r"(?s)FUNCTION commerce\.popular_products\(.*?lim NOT BETWEEN 1 AND (?P<n>\d+)",
     "COMMERCE_MAX_POPULAR_LIMIT"),
    ("popular ranking depth", SQL, r"rank BETWEEN 1 AND (?P<n>\d+)", "COMMERCE_MAX_POPULAR_LIMIT"),
    ("popular ranking depth", SQL, r"r\.rank <= (?P<n>\d+)", "COMMERCE_MAX_POPULAR_LIMIT"),
    ("popular limit", API, r"(?s)/api/products/popular:.*?name: limit, in: query, schema: "
     r"\{type: integer, minimum: 1, maximum: (?P<n>\d+)", "COMMERCE_MAX_POPULAR_LIMIT"),
    ("popular limit", HTTP, r"validate_query_integer\(call, &params\[1\], 1, (?P<n>\d+), &limit\)",
     "COMMERCE_MAX_POPULAR_LIMIT"),
]


def main():
    failed = 0
    for what, path, pattern, name in PLACES:
        want = LIMITS.get(name)
        found = [int(m.group("n")) for m in re.finditer(pattern, read(path))]
        wrong = sorted({n for n in found if n != want})
        if want is None or not found or wrong:
            failed += 1
            why = (f"{name} is not in the header" if want is None else
                   f"nothing matches /{pattern}/" if not found else f"says {wrong}, {name} is {want}")
            print(f"FAIL {what} in {path}: {why}")
        else:
            print(f"ok   {what} in {path}: {want} ({len(found)} places)")
    print(f"{len(PLACES) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
