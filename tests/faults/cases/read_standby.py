"""read-standby: the catalogue reads on the synchronous standby
(--db-read), under an order load.  While the standby replays, product reads
go to it and a user's own orders stay on the primary; when its replay is
paused (what a standby that falls behind looks like), no product read may be
staler than --db-read-max-lag-ms: a write acknowledged that long ago must be
seen, read-your-writes holds for the user's own order, and the daemon reads
from the primary instead; when replay resumes, it reads from the standby
again.  The daemon is never restarted."""
import asyncio
import os
import re
import subprocess
import time

import harness
import system

DESCRIPTION = "catalogue reads from the standby; a standby whose replay stops is left within the lag bound"
HA = True

MAX_LAG_MS = 500
THREADS, READ_POOL = 2, 2
READ_CONNINFO = (f"host={harness.PG_HOSTS} port={harness.PG_PORT} user=commerce_http dbname=postgres"
                 " target_session_attrs=prefer-standby")


def node_value(node, sql):
    """One value from SQL run as the superuser on node 1 or 2 itself."""
    env = dict(harness.pg_env(), PGHOST=harness.SOCK, PGPORT=harness.PG_PORT.split(",")[node - 1])
    env.pop("PGTARGETSESSIONATTRS", None)
    return subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def metrics():
    text = harness.get("/metrics", token=None).raw
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(commerce_http_\S+) (\S+)$", text, re.M)}


def reads(m, database):
    return m.get(f'commerce_http_catalogue_reads_total{{database="{database}"}}', 0)


def wait_for(predicate, timeout):
    """Seconds until predicate() held, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return round(time.monotonic() - started, 2)
        time.sleep(0.05)
    return None


def product_stock(product_id):
    return harness.get(f"/api/products/{product_id}").json["stock"]


def phases(fixture, standby, leader):
    """The checks and figures of one round, run while the load goes on."""
    checks, figures = [], {}
    product = fixture["product_ids"][0]
    user = fixture["user_ids"][0]
    sessions = node_value(standby, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'commerce-http'")
    checks.append(("the --db-read pool is connected to the standby", int(sessions) == THREADS * READ_POOL,
                   f"{sessions} commerce-http sessions on node{standby}"))
    in_use = wait_for(lambda: metrics().get("commerce_http_db_read_standby_in_use") == THREADS, 10)
    checks.append(("every thread reads the catalogue from the standby", in_use is not None, f"after {in_use} s"))

    before = metrics()
    for _ in range(20):
        product_stock(product)
    after = metrics()
    checks.append(("catalogue reads go to the standby while it replays",
                   reads(after, "standby") - reads(before, "standby") == 20
                   and reads(after, "primary") == reads(before, "primary"),
                   f"{reads(after, 'standby') - reads(before, 'standby'):.0f} of 20 to the standby"))

    # Patroni resumes a paused replay on a PG 14+ replica at its next loop
    # (up to loop_wait, 2 s, later): in maintenance mode it leaves it paused
    system.ha("maintenance", "on")
    node_value(standby, "SELECT pg_wal_replay_pause()")
    paused_at = time.monotonic()
    try:
        placed = harness.post("/api/orders", {"userId": user, "items": [{"productId": product, "quantity": 1}]})
        acked_at = time.monotonic()
        stock_after_write = int(node_value(leader, f"SELECT stock FROM commerce.get_product({product})"))
        own = harness.get(f"/api/orders/{placed.json['orderId']}") if placed.status == 201 else None
        checks.append(("read-your-writes: the user's own order is there at once, with replay stopped",
                       placed.status == 201 and own.status == 200, f"POST {placed.status}, GET {own and own.status}"))
        # a read within the bound may still come from the stopped standby: what the bound allows
        figures["stale_read_seen_within_bound"] = product_stock(product) > stock_after_write
        time.sleep(max(0.0, acked_at + MAX_LAG_MS / 1000 + 0.05 - time.monotonic()))
        fresh = product_stock(product)
        checks.append(("a read --db-read-max-lag-ms after an acknowledged write sees it",
                       fresh <= stock_after_write, f"stock {fresh}, the primary had {stock_after_write} after the write"))
        # the gauge follows the worker's 100 ms tick; the read above was routed on the exact bound
        left = wait_for(lambda: metrics().get("commerce_http_db_read_standby_in_use") == 0, 1.0)
        m = metrics()
        checks.append(("the lagging standby is not used", left is not None and reads(m, "primary") > reads(after, "primary"),
                       f"in use on {m.get('commerce_http_db_read_standby_in_use'):.0f} threads, lag bound "
                       f"{m.get('commerce_http_db_read_lag_bound_seconds')} s, "
                       f"{reads(m, 'primary') - reads(after, 'primary'):.0f} reads sent to the primary"))
        figures["seconds_to_leave_the_standby"] = round(time.monotonic() - paused_at, 2)
    finally:
        node_value(standby, "SELECT pg_wal_replay_resume()")
        system.ha("maintenance", "off")
    back = wait_for(lambda: metrics().get("commerce_http_db_read_standby_in_use") == THREADS, 10)
    checks.append(("the standby is read from again once it has caught up", back is not None, f"after {back} s"))
    figures["seconds_back_on_the_standby"] = back
    return checks, figures


def run(ctx):
    rounds = []
    timings = [1.0] if ctx.short else [1.0, 2.5, 4.0]
    fixture = ctx.fresh_shop()
    ctx.start_daemon("--db-read", READ_CONNINFO, "--db-read-pool-size", str(READ_POOL),
                     "--db-read-max-lag-ms", str(MAX_LAG_MS), threads=THREADS)
    for i, at in enumerate(timings):
        result = {}

        async def fault(load):
            await asyncio.sleep(at)
            leader = await ctx.blocking(system.ha_leader)
            result["checks"], result["figures"] = await ctx.blocking(phases, fixture, 3 - leader, leader)

        load = ctx.run(ctx.load(rate=100, seconds=8, seed=500 + i, prefix=f"readstandby{i}"), fault)
        rnd = ctx.round(load, result.get("checks", [("the read phases ran", False, "no result")]),
                        **result.get("figures", {}))
        rounds.append(rnd)
    return rounds
