"""The system under a fault: the private PostgreSQL cluster and commerce-http,
with the ways to hurt them (kill -9, SIGSTOP, connection hogs), the fixture
a case loads against, and the checks of the data afterwards.

The cluster, daemon and psql helpers are tests/http/harness.py's (tests/
faults/run points it at this suite's own directory and ports); this module
adds what only faults need."""
import os
import signal
import subprocess
import time

import harness
from harness import PG_DIR, ROOT, psql, psql_value

DATA = os.path.join(PG_DIR, "data")


# -- the database ---------------------------------------------------------

def postmaster_pid():
    with open(os.path.join(DATA, "postmaster.pid")) as f:
        return int(f.readline())


def postgres_pids():
    """The postmaster and every process it started (backends, checkpointer,
    walwriter ...), read from /proc."""
    pm = postmaster_pid()
    pids = [pm]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pm:
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def signal_postgres(sig):
    """Sends sig to the postmaster and all its children, children first
    for SIGSTOP (so that the postmaster never sees a child change state
    before it is stopped itself) and all in one pass."""
    pids = postgres_pids()
    for pid in reversed(pids) if sig == signal.SIGSTOP else pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


def power_cut():
    """kill -9 of the postmaster and every backend at once."""
    pids = signal_postgres(signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.02)
    return pids


def start_postgres():
    """Starts the cluster after a crash (crash recovery runs first)."""
    harness.pg_start()


def wait_ready(timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            psql("SELECT 1")
            return True
        except subprocess.CalledProcessError:
            time.sleep(0.1)
    return False


class ConnectionHogs:
    """Other clients holding every connection slot PostgreSQL gives to
    non-superusers: pgbench sessions of role fault_hog that sleep until
    stopped.  `count` connections, all opened before pgbench starts its
    transactions."""

    def __init__(self, count):
        self.count = count
        self.proc = None

    def __enter__(self):
        script = os.path.join(PG_DIR, "hog.sql")
        with open(script, "w") as f:
            f.write("SELECT pg_sleep(0.5);\n")
        env = harness.pg_env()
        env["PGUSER"] = "fault_hog"
        # The check below is itself a (superuser) session and takes a slot
        # while it runs: if it overlaps pgbench's last connect, that hog is
        # refused and pgbench exits.  So it waits before looking, and the
        # whole start is tried again if pgbench lost that race.
        for _ in range(3):
            self.proc = subprocess.Popen(
                ["pgbench", "-n", "-c", str(self.count), "-j", "1", "-T", "600", "-f", script, "postgres"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 20
            time.sleep(1.0)
            while time.time() < deadline and self.proc.poll() is None:
                n = int(psql_value("SELECT count(*) FROM pg_stat_activity WHERE usename = 'fault_hog'"))
                if n >= self.count:
                    return self
                time.sleep(0.2)
            if self.proc.poll() is None:
                break
            error = self.proc.stderr.read()
            if "reserved for" not in error:
                raise RuntimeError("pgbench hogs exited: " + error)
        self.__exit__(None, None, None)
        raise RuntimeError("hogs did not get their connections")

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_connection_slots():
    """Slots left for non-superusers once this query's own session is gone."""
    return int(psql_value(
        "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
        " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        "    AND pid <> pg_backend_pid())"))


# -- the daemon -----------------------------------------------------------

def daemon_rss_kb(daemon):
    with open(f"/proc/{daemon.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# -- the fixture ----------------------------------------------------------

def seed(users=2000, products=20, hot_stock=60, coupon_quantity=200):
    """A fresh shop in database postgres: `users` users with ample money,
    `products` products with ample stock plus one hot product of hot_stock
    units, and a first-come coupon of coupon_quantity units.  Records the
    initial stock for tests/invariants.sql."""
    psql("DROP EXTENSION IF EXISTS pg_commerce CASCADE; DROP SCHEMA IF EXISTS invariant_input CASCADE;"
         " CREATE EXTENSION pg_commerce;")
    subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-f", os.path.join(ROOT, "tests", "invariant_input.sql")],
                   env=harness.pg_env(), check=True, capture_output=True)
    psql(f"""
        SELECT commerce.charge_balance(commerce.create_user('fault-' || i), 1000000000)
        FROM generate_series(1, {users}) i;
        SELECT commerce.create_product('fault-product-' || i, 1000 + i, 1000000, 'fault', 8)
        FROM generate_series(1, {products}) i;
        SELECT commerce.create_product('fault-hot', 9900, {hot_stock}, 'fault', 16);
        SELECT commerce.create_coupon('FAULT', 'fixed', 500, {coupon_quantity});
        INSERT INTO invariant_input.initial_stock
            SELECT product_id, sum(quantity) FROM commerce.stock_buckets GROUP BY product_id;
    """)
    return {
        "user_ids": [int(r[0]) for r in psql("SELECT id FROM commerce.users ORDER BY id")],
        "product_ids": [int(r[0]) for r in psql("SELECT id FROM commerce.products ORDER BY id")],
        "coupon_id": int(psql_value("SELECT id FROM commerce.coupons")),
    }


# -- the checks -----------------------------------------------------------

def check_data(loads):
    """Re-checks the data against what the clients were told, in every load
    run against this shop so far.  Returns a list of (name, ok, detail)."""
    results = []
    requests = [r for load in loads for r in load.requests]
    orders = [r for r in requests if r.kind == "order"]
    coupons = [r for r in requests if r.kind == "coupon"]

    unresolved = [r.key for r in requests if r.outcome is None]
    results.append(("every request got a definite answer", not unresolved,
                    f"{len(unresolved)} unresolved, e.g. {unresolved[:3]}" if unresolved else "ok"))
    server_errors = [(r.key, a.status) for r in requests for a in r.attempts
                     if a.status >= 500 and a.status not in (503, 504)]
    results.append(("no 5xx other than 503/504", not server_errors,
                    f"{len(server_errors)}, e.g. {server_errors[:3]}" if server_errors else "ok"))

    # Orders: what the database holds for this run's keys, against the answers.
    stored = {row[0]: row for row in psql(
        "SELECT idempotency_key, id, user_id, total_amount, paid_amount, status, count(*) OVER (PARTITION BY"
        " user_id, idempotency_key), extract(epoch FROM created_at) FROM commerce.orders"
        " WHERE idempotency_key IS NOT NULL")}
    lost, wrong, extra, doubled, unavailable_but_done = [], [], [], [], []
    for r in orders:
        row = stored.get(r.key)
        if row and int(row[6]) > 1:
            doubled.append(r.key)
        if row:
            # the order's transaction began inside one attempt's window; that
            # attempt must not have been told "UNAVAILABLE: nothing happened"
            began = float(row[7])
            unavailable_but_done += [(r.key, a.code) for a in r.attempts if a.status == 503
                                     and a.code == "UNAVAILABLE" and a.wall <= began <= a.wall + a.latency]
        if r.acked:
            a = r.answer or {}
            if row is None:
                lost.append(r.key)
            elif (int(row[1]), int(row[2]), int(row[3]), int(row[4])) != (
                    a.get("orderId"), r.user_id, a.get("totalAmount"), a.get("paidAmount")):
                wrong.append((r.key, a, row))
        elif r.outcome is not None and row is not None:
            extra.append((r.key, r.outcome, row[1]))
    results.append(("every acknowledged order is stored, for its user, with its amounts", not lost and not wrong,
                    f"{len(lost)} missing {lost[:3]}, {len(wrong)} different {wrong[:2]}" if lost or wrong else
                    f"ok ({sum(r.acked for r in orders)} orders)"))
    results.append(("no order was placed by an attempt answered 503 UNAVAILABLE", not unavailable_but_done,
                    f"{len(unavailable_but_done)}, e.g. {unavailable_but_done[:3]}" if unavailable_but_done else "ok"))
    results.append(("exactly one order per key", not doubled,
                    f"{len(doubled)} keys with two orders: {doubled[:3]}" if doubled else "ok"))
    results.append(("a refused order left nothing behind", not extra,
                    f"{len(extra)}, e.g. {extra[:3]}" if extra else "ok"))

    # Coupons: holders in the database = users answered 201 or "already issued".
    held = {int(r[0]): int(r[1]) for r in psql(
        "SELECT user_id, id FROM commerce.issued_coupons WHERE coupon_id = (SELECT id FROM commerce.coupons"
        " WHERE code = 'FAULT')")}
    told_yes = {r.user_id: r for r in coupons if r.acked or (r.answer or {}).get("error", {}).get("code")
                == "COUPON_ALREADY_ISSUED"}
    missing = [u for u, r in told_yes.items() if u not in held or (r.acked and held[u] != r.answer.get("issuedCouponId"))]
    unexpected = [u for u in held if u not in told_yes]
    results.append(("every acknowledged coupon is held by its user, and only those",
                    not missing and not unexpected,
                    f"{len(missing)} missing {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}"
                    if missing or unexpected else f"ok ({len(held)} coupons)"))

    # the invariants of docs/design.md over the whole database, with the acknowledged orders recorded.
    psql("TRUNCATE invariant_input.acked_orders")
    acked = [(r.answer["orderId"], r.user_id, r.answer["paidAmount"]) for r in orders if r.acked]
    for i in range(0, len(acked), 1000):
        psql("INSERT INTO invariant_input.acked_orders VALUES " +
             ",".join(f"({o},{u},{p})" for o, u, p in acked[i:i + 1000]))
    out = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", "\t", "-f",
                          os.path.join(ROOT, "tests", "invariants.sql")],
                         env=harness.pg_env(), capture_output=True, text=True)
    if out.returncode != 0:
        results.append(("the invariants of docs/design.md", False, out.stderr.strip()))
    else:
        for line in out.stdout.splitlines():
            name, ok, detail = line.split("\t")
            results.append(("invariant: " + name, ok == "t", detail))
    return results


# -- the HA pair (scripts/ha.sh), for failover, standby-lost, switchover ---

def ha(command, *args, timeout=180):
    """Runs scripts/ha.sh COMMAND PG_DIR ARGS...; returns its stdout."""
    return subprocess.run([os.path.join(ROOT, "scripts", "ha.sh"), command, PG_DIR, *map(str, args)],
                          check=True, capture_output=True, text=True, timeout=timeout).stdout.strip()


def ha_leader():
    """The node (1 or 2) Patroni has as the leader, or None while none is."""
    try:
        return int(ha("leader"))
    except subprocess.CalledProcessError:
        return None


def ha_wait_leader(timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = ha_leader()
        if n is not None:
            return n
        time.sleep(0.2)
    return None


def ha_rejoin(node):
    """Starts node's Patroni again (it rejoins as a standby, rewound when it
    must be) and waits until a synchronous standby streams, so the next
    round starts from two nodes again.  Returns the seconds it took."""
    started = time.time()
    ha("start-node", node)
    ha("wait-sync")
    return round(time.time() - started, 1)

