"""The outbox relay against a real Kafka broker: every case starts a shop of
its own (a database in the suite's cluster, topics of its own), runs a load
of orders, cancellations and coupon issues through the extension's API with
pgbench while commerce-relay delivers, does something to the relay or the
broker, and then reads every topic back with kcat and checks:

  - every event the outbox holds (every committed transaction's) is in
    Kafka, with the outbox's payload, and every message is one of them:
    nothing of a rolled-back transaction (events.rolled_back lists orders
    placed and rolled back on purpose);
  - each aggregate's events sit in one partition, first copies in event id
    order (an order's order_placed before its order_cancelled);
  - duplicates only where a relay was killed, and then the same message;
  - topic, key, headers and envelope as docs/events.md says.

Run by tests/events/run, which starts the cluster and the broker."""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
PGBIN = "/usr/lib/postgresql/15/bin"
PG_DIR = os.environ["EVENTS_PG_DIR"]
PG_PORT = os.environ["EVENTS_PG_PORT"]
KAFKA_DIR = os.environ["EVENTS_KAFKA_DIR"]
KAFKA_PORT = os.environ["EVENTS_KAFKA_PORT"]
BROKER = "127.0.0.1:" + KAFKA_PORT
METRICS_PORT = int(os.environ.get("EVENTS_METRICS_PORT", "18186"))
RELAY = os.environ.get("EVENTS_RELAY", os.path.join(ROOT, "relay", "commerce-relay"))
LOG_DIR = os.environ["EVENTS_LOG_DIR"]
SOCK = os.path.join(PG_DIR, "sock")
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")
PARTITIONS = 4


class CheckFailed(Exception):
    pass


def say(msg):
    print(msg, flush=True)


def psql(sql, db="postgres"):
    return subprocess.run([f"{PGBIN}/psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p", PG_PORT,
                           "-U", "postgres", "-d", db, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def psql_file(path, db):
    subprocess.run([f"{PGBIN}/psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p", PG_PORT,
                    "-U", "postgres", "-d", db, "-f", path], check=True, capture_output=True, text=True)


def new_shop(name):
    """A database with the extension and the fixture, and its two topics."""
    db = "events_" + name.replace("-", "_")
    psql(f"DROP DATABASE IF EXISTS {db}")
    psql(f"CREATE DATABASE {db}")
    psql("CREATE EXTENSION pg_commerce", db)
    # the relays' login role: commerce_relay's rights and no others (roles are per cluster)
    psql("DO $$ BEGIN CREATE ROLE events_relay LOGIN IN ROLE commerce_relay; "
         "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    psql_file(os.path.join(HERE, "fixture.sql"), db)
    prefix = f"{name}-{int(time.time())}."
    for topic in ("orders", "coupons"):
        subprocess.run([KAFKA_SH, "topic", KAFKA_DIR, prefix + topic, str(PARTITIONS)], check=True,
                       capture_output=True, text=True)
    return db, prefix


class Relay:
    """One commerce-relay process, its log in LOG_DIR."""
    count = 0
    running = []

    def __init__(self, db, prefix, name, **options):
        Relay.count += 1
        self.name = name
        self.port = METRICS_PORT + Relay.count
        args = [RELAY, "--db", f"host={SOCK} port={PG_PORT} user=events_relay dbname={db}",
                "--brokers", BROKER, "--topic-prefix", prefix,
                "--metrics-listen", f"127.0.0.1:{self.port}", "--lag-interval-ms", "500",
                "--stats-interval-ms", "5000"]
        for key, value in options.items():
            args += ["--" + key.replace("_", "-"), str(value)]
        self.log_path = os.path.join(LOG_DIR, f"relay-{prefix}{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        Relay.running.append(self)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                self.metrics()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise CheckFailed(f"relay {name} exited at start; see {self.log_path}")
                time.sleep(0.05)
        raise CheckFailed(f"relay {name} does not serve /metrics; see {self.log_path}")

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self):
        """SIGTERM: the relay finishes its batch and exits 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise CheckFailed(f"relay {self.name} did not stop within 30 s of SIGTERM")
            self.log.close()
            if code != 0:
                raise CheckFailed(f"relay {self.name} exited {code} after SIGTERM; see {self.log_path}")


def kill_leftover_relays():
    """After a failed case: every relay this suite started and did not stop."""
    for relay in Relay.running:
        if relay.proc.poll() is None:
            relay.proc.kill()
            relay.proc.wait()
    Relay.running.clear()


def pgbench(db, script, clients, seconds):
    """A pgbench run in the background; .result() waits and gives (transactions, tps)."""
    proc = subprocess.Popen([f"{PGBIN}/pgbench", "-n", "-h", SOCK, "-p", PG_PORT, "-U", "postgres",
                             "-c", str(clients), "-j", "2", "-T", str(seconds), "-f",
                             os.path.join(HERE, script), db],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def result():
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise CheckFailed("pgbench failed:\n" + out[-2000:])
        done = tps = None
        for line in out.splitlines():
            if line.startswith("number of transactions actually processed:"):
                done = int(line.split(":")[1].split("/")[0])
            if line.startswith("tps = "):
                tps = float(line.split()[2])
        return done, tps
    proc.result = result
    return proc


def pending(db):
    return int(psql("SELECT count(*) FROM commerce.outbox WHERE acked_at IS NULL", db))


def drain(db, timeout=120):
    """Waits until every event is acknowledged; returns the seconds it took."""
    start = time.time()
    while pending(db) > 0:
        if time.time() - start > timeout:
            raise CheckFailed(f"{pending(db)} events still undelivered {timeout} s after the load")
        time.sleep(0.2)
    return time.time() - start


def consume(prefix):
    """Every message of the shop's topics: dicts with topic, partition, offset, key, timestamp, headers, value."""
    messages = []
    for topic in ("orders", "coupons"):
        out = subprocess.run(["kcat", "-b", BROKER, "-C", "-t", prefix + topic, "-o", "beginning", "-e", "-q",
                              "-f", "%p\t%o\t%k\t%T\t%h\t%s\n"],
                             check=True, capture_output=True, text=True, timeout=120).stdout
        for line in out.splitlines():
            if not line:
                continue
            p, o, k, ts, h, value = line.split("\t", 5)
            headers = dict(item.split("=", 1) for item in h.split(",") if "=" in item)
            messages.append({"topic": topic, "partition": int(p), "offset": int(o), "key": k,
                             "timestamp": int(ts), "headers": headers, "value": value})
    return messages


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def check_delivery(db, prefix, duplicates_allowed, mixed=True, latency_upto=None):
    """The checks of the module's docstring; returns figures for the report."""
    outbox = {}
    for line in psql("SELECT id, event_type, aggregate_id, payload::text FROM commerce.outbox", db).splitlines():
        i, t, a, payload = line.split("|", 3)
        outbox[int(i)] = (t, int(a), json.loads(payload))
    rolled_back = {int(x) for x in psql("SELECT order_id FROM events.rolled_back", db).split()}
    messages = consume(prefix)
    failures = []
    by_id = {}
    latencies = []
    for m in messages:
        envelope = json.loads(m["value"])
        event_id = envelope["event_id"]
        if event_id in by_id:
            if by_id[event_id]["value"] != m["value"]:
                failures.append(f"event {event_id} delivered twice with different contents")
            by_id[event_id]["copies"] += 1
            continue
        m["copies"] = 1
        m["event"] = envelope
        by_id[event_id] = m
        if event_id not in outbox:
            failures.append(f"message for event {event_id}, which no committed transaction wrote")
            continue
        event_type, aggregate_id, payload = outbox[event_id]
        expected_topic = event_type.split("_")[0] + "s"
        if (envelope["event_type"] != event_type or envelope["aggregate_id"] != aggregate_id
                or envelope["data"] != payload or envelope["schema_version"] != 1):
            failures.append(f"event {event_id}: envelope {envelope} differs from the outbox's {outbox[event_id]}")
        if m["topic"] != expected_topic or m["key"] != str(aggregate_id):
            failures.append(f"event {event_id} in topic {m['topic']} with key {m['key']}")
        if m["headers"] != {"event_id": str(event_id), "event_type": event_type, "schema_version": "1"}:
            failures.append(f"event {event_id}: headers {m['headers']}")
        if event_type.startswith("order_") and aggregate_id in rolled_back:
            failures.append(f"event {event_id} of order {aggregate_id}, which was rolled back")
        occurred = datetime.fromisoformat(envelope["occurred_at"]).timestamp() * 1000
        if latency_upto is None or event_id <= latency_upto:
            latencies.append(m["timestamp"] - occurred)
    missing = sorted(set(outbox) - set(by_id))
    if missing:
        failures.append(f"{len(missing)} committed events never reached Kafka, e.g. {missing[:10]}")
    duplicates = sum(m["copies"] - 1 for m in by_id.values())
    if duplicates and not duplicates_allowed:
        failures.append(f"{duplicates} duplicate messages where no relay crashed")
    # the order per aggregate: one partition, first copies in id order
    streams = {}
    for m in sorted(messages, key=lambda m: (m["topic"], m["partition"], m["offset"])):
        streams.setdefault((m["topic"], m["key"]), []).append(m)
    out_of_order = 0
    for (topic, key), ms in streams.items():
        if len({m["partition"] for m in ms}) != 1:
            failures.append(f"{topic} key {key} spread over partitions {sorted({m['partition'] for m in ms})}")
        seen, firsts = set(), []
        for m in ms:
            event_id = json.loads(m["value"])["event_id"]
            if event_id not in seen:
                seen.add(event_id)
                firsts.append(event_id)
        if firsts != sorted(firsts):
            out_of_order += 1
            if out_of_order <= 5:
                failures.append(f"{topic} key {key}: events in the order {firsts}")
    cancelled = sum(1 for t, _, _ in outbox.values() if t == "order_cancelled")
    coupons = sum(1 for t, _, _ in outbox.values() if t == "coupon_issued")
    if mixed and not (cancelled and coupons and rolled_back):
        failures.append(f"the load was not mixed: {cancelled} cancellations, {coupons} coupons issued, "
                        f"{len(rolled_back)} orders rolled back")
    if failures:
        raise CheckFailed("; ".join(failures[:20]))
    return {"events": len(outbox), "messages": len(messages), "duplicates": duplicates,
            "cancelled": cancelled, "coupons": coupons, "rolled_back": len(rolled_back),
            "latency_p50_ms": percentile(latencies, 0.50), "latency_p99_ms": percentile(latencies, 0.99)}


def report(name, figures):
    say(f"  {name}: " + ", ".join(f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in figures.items()))


# -- the cases -------------------------------------------------------------

def case_deliver(short):
    """A mixed load with one relay: everything delivered once, in order."""
    db, prefix = new_shop("deliver")
    relay = Relay(db, prefix, "a")
    clients, seconds = (16, 10) if short else (64, 60)
    done, tps = pgbench(db, "load.sql", clients, seconds).result()
    drained = drain(db)
    relay.stop()
    figures = check_delivery(db, prefix, duplicates_allowed=False)
    figures.update({"steps": done, "steps_per_s": tps, "drain_s_after_load": drained})
    report("deliver", figures)


def claimed_now(db):
    return int(psql("SELECT count(*) FROM commerce.outbox WHERE acked_at IS NULL AND claimed_until > now()", db))


def case_relay_kill(short):
    """kill -9 of the relay mid-batch: its lease runs out, another relay takes the batch."""
    db, prefix = new_shop("relay-kill")
    lease = dict(lease_ms=3000, batch=200)
    first = Relay(db, prefix, "a", **lease)
    load = pgbench(db, "load.sql", 16, 8 if short else 30)
    time.sleep(3)
    # kill it while it holds a claimed batch that is not acknowledged: frozen (SIGSTOP) the
    # moment one is claimed, checked to still hold it, then killed
    delivered_before = first.metrics().get("commerce_relay_events_delivered_total", 0)
    deadline = time.time() + 20
    stranded = 0
    while stranded == 0:
        if time.time() > deadline:
            raise CheckFailed("the relay never held a batch to be killed in")
        if claimed_now(db) > 0:
            first.proc.send_signal(signal.SIGSTOP)
            stranded = claimed_now(db)
            if stranded == 0:
                first.proc.send_signal(signal.SIGCONT)
        else:
            time.sleep(0.002)
    first.kill9()
    time.sleep(1)
    second = Relay(db, prefix, "b", **lease)
    load.result()
    drained = drain(db)
    second.stop()
    figures = check_delivery(db, prefix, duplicates_allowed=True)
    if delivered_before == 0:
        raise CheckFailed("the first relay had delivered nothing before it was killed")
    figures.update({"claimed_by_the_killed_relay": stranded, "drain_s_after_load": drained})
    report("relay-kill", figures)


def case_broker_down(short):
    """The broker stopped under load, then started: orders go on, the backlog grows, then drains."""
    db, prefix = new_shop("broker-down")
    relay = Relay(db, prefix, "a")
    outage = 10 if short else 30
    load = pgbench(db, "load.sql", 16, outage + 15)
    time.sleep(4)
    subprocess.run([KAFKA_SH, "stop", KAFKA_DIR], check=True, capture_output=True, text=True)
    orders_at_stop = int(psql("SELECT count(*) FROM commerce.orders", db))
    time.sleep(outage)
    orders_at_start = int(psql("SELECT count(*) FROM commerce.orders", db))
    at_restart = relay.metrics()
    backlog = at_restart.get("commerce_relay_backlog_events", 0)
    oldest = at_restart.get("commerce_relay_backlog_oldest_seconds", 0)
    started = time.time()
    subprocess.run([KAFKA_SH, "start", KAFKA_DIR, KAFKA_PORT], check=True, capture_output=True, text=True)
    restart_s = time.time() - started
    load.result()
    drained = drain(db, timeout=180)
    relay.stop()
    if orders_at_start <= orders_at_stop:
        raise CheckFailed(f"no order placed while Kafka was down ({orders_at_stop} -> {orders_at_start})")
    if backlog < 100 or oldest < outage / 2:
        raise CheckFailed(f"the backlog metric did not grow while Kafka was down ({backlog} events, {oldest} s)")
    figures = check_delivery(db, prefix, duplicates_allowed=False)
    figures.update({"orders_during_outage": orders_at_start - orders_at_stop, "backlog_at_restart": backlog,
                    "oldest_s_at_restart": oldest, "broker_restart_s": restart_s,
                    "drain_s_after_load": drained})
    report("broker-down", figures)


def case_two_relays(short):
    """Two relays at once share the outbox: every event once, in order per aggregate."""
    db, prefix = new_shop("two-relays")
    relays = [Relay(db, prefix, name, batch=300) for name in ("a", "b")]
    done, tps = pgbench(db, "load.sql", 16, 10 if short else 60).result()
    drained = drain(db)
    shares = [r.metrics().get("commerce_relay_events_delivered_total", 0) for r in relays]
    for r in relays:
        r.stop()
    figures = check_delivery(db, prefix, duplicates_allowed=False)
    if min(shares) == 0:
        raise CheckFailed(f"one relay did all the work: {shares}")
    figures.update({"relay_a": shares[0], "relay_b": shares[1], "drain_s_after_load": drained})
    report("two-relays", figures)


def histogram_quantile(metrics, q):
    """The upper bound of the bucket of commerce_relay_delivery_seconds holding quantile q, in ms."""
    buckets = sorted((float(name.split('le="')[1].rstrip('"}')), count) for name, count in metrics.items()
                     if name.startswith("commerce_relay_delivery_seconds_bucket") and "+Inf" not in name)
    total = metrics.get("commerce_relay_delivery_seconds_count", 0)
    for bound, count in buckets:
        if count >= q * total:
            return bound * 1000
    return float("inf")


def case_throughput(short):
    """place_order at 64 clients: with the relay running (does it keep up, how long does an event
    wait), then without it, and the relay's rate on the backlog that left, in one run."""
    db, prefix = new_shop("throughput")
    seconds = 10 if short else 30
    relay = Relay(db, prefix, "a")
    done, tps = pgbench(db, "orders.sql", 64, seconds).result()
    backlog_at_end = pending(db)
    drain(db)
    last_with_relay = int(psql("SELECT max(id) FROM commerce.outbox", db))
    metrics = relay.metrics()
    relay.stop()
    # the same load with no relay, then the relay alone on its backlog
    backlog_orders, backlog_tps = pgbench(db, "orders.sql", 64, seconds).result()
    backlog = pending(db)
    relay = Relay(db, prefix, "b")
    drained = drain(db)
    relay.stop()
    drain_rate = backlog / drained
    figures = check_delivery(db, prefix, duplicates_allowed=False, mixed=False, latency_upto=last_with_relay)
    report("throughput", {"orders_per_s": tps, "backlog_at_end_of_load": backlog_at_end,
                          "relay_p50_ms": histogram_quantile(metrics, 0.5),
                          "relay_p99_ms": histogram_quantile(metrics, 0.99),
                          "produce_p50_ms": figures["latency_p50_ms"], "produce_p99_ms": figures["latency_p99_ms"],
                          "orders_per_s_without_relay": backlog_tps, "backlog": backlog,
                          "relay_drain_per_s": drain_rate, "drain_to_orders_ratio_x100": 100 * drain_rate / backlog_tps})
    if drain_rate < backlog_tps:
        raise CheckFailed(f"the relay delivers {drain_rate:.0f}/s, less than place_order's {backlog_tps:.0f}/s")


def table_counts(db):
    line = psql("SELECT (SELECT count(*) FROM commerce.outbox), (SELECT count(*) FROM commerce.idempotency_keys),"
                " (SELECT count(*) FROM commerce.sales_stats), (SELECT count(*) FROM commerce.orders)", db)
    return dict(zip(("outbox", "idempotency_keys", "sales_stats", "orders"), map(int, line.split("|"))))


def case_retention(short):
    """A sustained mixed load with the relay and housekeeping: delivered events and expired
    idempotency keys are removed, so those tables stay bounded while orders grow.  With
    --short the test calls commerce.run_housekeeping() every 5 s (retention 10 s) and checks that
    pg_cron ran the scheduled job at least once; in full, pg_cron alone runs it, every minute
    (retention 30 s), for 5 minutes."""
    db, prefix = new_shop("retention")
    retention = "10s" if short else "30s"
    psql(f"ALTER DATABASE {db} SET pg_commerce.outbox_retention = '{retention}'")
    psql(f"ALTER DATABASE {db} SET pg_commerce.idempotency_ttl = '{retention}'")
    subprocess.run([f"{PGBIN}/psql", "-XAtq", "-h", SOCK, "-p", PG_PORT, "-U", "postgres", "-d", "postgres",
                    "-v", f"shop={db}", "-f", os.path.join(ROOT, "ops", "sql", "schedule-housekeeping.sql")],
                   check=True, capture_output=True, text=True)
    relay = Relay(db, prefix, "a")
    seconds, every = (70, 5) if short else (300, 30)
    load = pgbench(db, "load.sql", 8, seconds)
    started = time.time()
    series = []
    while load.poll() is None:
        time.sleep(every)
        if short:
            psql("CALL commerce.run_housekeeping()", db)
        series.append((time.time() - started, table_counts(db)))
        say(f"    {series[-1][0]:4.0f} s  " + "  ".join(f"{k} {v}" for k, v in series[-1][1].items()))
    load.result()
    drain(db)
    relay.stop()
    runs = psql("SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)"
                f" WHERE j.jobname = 'pg_commerce-housekeeping@{db}' AND d.status = 'succeeded'", "postgres")
    psql(f"SELECT cron.unschedule(jobname) FROM cron.job WHERE jobname LIKE 'pg_commerce-%@{db}'", "postgres")
    if int(runs) == 0:
        raise CheckFailed("pg_cron never ran the housekeeping job successfully")
    # bounded: the second half of the run holds no more than the first half's peak, and a half
    # more for the noise of when housekeeping ran; without it the second half holds twice as many
    half = [c for t, c in series if t > seconds / 2]
    first = [c for t, c in series if seconds / 6 < t <= seconds / 2]
    for table in ("outbox", "idempotency_keys"):
        peak_first = max(c[table] for c in first)
        peak_second = max(c[table] for c in half)
        if peak_second > 1.5 * peak_first:
            raise CheckFailed(f"{table} grows without bound: {peak_first} rows at most in the first half, "
                              f"{peak_second} in the second")
    orders = [c["orders"] for t, c in series]
    if orders[-1] <= 2 * orders[len(orders) // 4]:
        raise CheckFailed(f"the load did not go on: orders {orders}")
    report("retention", {"housekeeping_runs_by_pg_cron": int(runs), "orders": orders[-1],
                         "outbox_at_most": max(c["outbox"] for t, c in series),
                         "idempotency_keys_at_most": max(c["idempotency_keys"] for t, c in series),
                         "sales_stats_at_most": max(c["sales_stats"] for t, c in series)})


CASES = {"deliver": case_deliver, "relay-kill": case_relay_kill, "broker-down": case_broker_down,
         "two-relays": case_two_relays, "throughput": case_throughput, "retention": case_retention}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    names = list(CASES) if not args.names or args.names == ["all"] else args.names
    passed = failed = 0
    for name in names:
        say(f"case {name} ...")
        started = time.time()
        try:
            CASES[name](args.short)
            say(f"case {name} ... ok ({time.time() - started:.0f} s)")
            passed += 1
        except (CheckFailed, subprocess.CalledProcessError, OSError) as e:
            detail = e.stderr if isinstance(e, subprocess.CalledProcessError) else ""
            say(f"case {name} ... FAILED: {e} {detail or ''}")
            failed += 1
        kill_leftover_relays()
    say(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
