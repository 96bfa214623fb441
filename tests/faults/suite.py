"""The fault suite's driver: runs the named cases (tests/faults/cases/NAME.py)
and prints, per case, its figures and every check; exits non-zero when any
check failed.  Run through tests/faults/run, which sets up the cluster and
the environment.

A case is a module with DESCRIPTION and run(ctx) -> list of rounds; each
round is a dict with "figures" (numbers to print) and "checks" (a list of
(name, ok, detail)).  Adding a case is adding a file: ctx gives it the
fixture, the daemon and the common checks."""
import argparse
import asyncio
import importlib
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))   # harness.py
sys.path.insert(0, HERE)

import harness                     # noqa: E402
import system                      # noqa: E402
from load import Load              # noqa: E402

# a case NAME is the file cases/NAME.py, with "-" in the name for "_" in the file
CASES = sorted(f[:-3].replace("_", "-") for f in os.listdir(os.path.join(HERE, "cases"))
               if f.endswith(".py") and f[0] != "_")
# what `make test` runs (--short); the rest only with `make faults`
SHORT_CASES = ["crash", "daemon-crash", "stall", "pool-exhausted", "lost-ack", "failover", "read-standby"]


def case_module(name):
    return importlib.import_module("cases." + name.replace("-", "_"))


def group_of(name):
    """"ha": the case runs against scripts/ha.sh's primary and standby (its
    module says HA = True); "single": against one private cluster."""
    return "ha" if getattr(case_module(name), "HA", False) else "single"


class Context:
    """What a case gets: the size of the run, a daemon, the load, the checks."""

    def __init__(self, short, daemon_binary, round_seed):
        self.short = short
        self.daemon_binary = daemon_binary
        self.seed = round_seed
        self.daemon = None
        self.fixture = None

    def fresh_shop(self, **sizes):
        self.fixture = system.seed(**sizes)
        self.loads = []     # every load run against this shop, for the checks
        return self.fixture

    def start_daemon(self, *args, threads=2, pool_size=2):
        self.daemon = harness.Daemon(*args, threads=threads, pool_size=pool_size)
        self.daemon.args[0] = self.daemon_binary
        return self.daemon.start()

    def stop_daemon(self):
        """Stops the daemon; a check fails on a non-zero exit or a sanitizer report."""
        if self.daemon is None or self.daemon.proc.poll() is not None:
            return []
        status = self.daemon.stop()
        report = self.daemon.sanitizer_report()
        return [("daemon exits 0 on SIGTERM, no sanitizer report", status == 0 and report is None,
                 f"exit {status}" + (f", report: {report[-1500:]}" if report else ""))]

    def load(self, rate, seconds, **kw):
        kw.setdefault("seed", self.seed)
        return Load(harness.HTTP_PORT, self.fixture, rate, seconds, **kw)

    @staticmethod
    def run(load, fault):
        asyncio.run(load.run(fault))
        return load

    @staticmethod
    async def blocking(fn, *args):
        """Runs a blocking step of a fault (pg_ctl, waiting for a port) off the
        load's event loop, so that departures keep their times."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def round(self, load, checks, **figures):
        """Figures and checks of one load; the data checks cover every load
        run against this shop so far (rounds of one case share it)."""
        f = load.figures()
        f.update(figures)
        self.loads.append(load)
        return {"figures": f, "checks": system.check_data(self.loads) + checks}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short versions make test runs")
    parser.add_argument("--daemon", default=os.path.join(harness.ROOT, "frontend", "commerce-http"))
    parser.add_argument("--json", help="also write every figure and check to this file")
    parser.add_argument("--list", action="store_true",
                        help="print the selected cases, one 'GROUP NAME' line each (group: single or ha), and exit")
    parser.add_argument("names", nargs="+", help=f"cases: {', '.join(CASES)}, or all")
    args = parser.parse_args()
    names = (SHORT_CASES if args.short else CASES) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown}; cases: {', '.join(CASES)}")
    if args.list:
        for name in names:
            print(group_of(name), name)
        return 0

    passed = failed = 0
    report = {}
    for name in names:
        case = case_module(name)
        print(f"=== {name}: {case.DESCRIPTION}", flush=True)
        started = time.time()
        ctx = Context(args.short, args.daemon, round_seed=1)
        try:
            rounds = case.run(ctx)
        except Exception as e:          # a case that cannot finish is a failed case, not a crash of the suite
            import traceback
            traceback.print_exc()
            rounds = [{"figures": {}, "checks": [("case ran to the end", False, repr(e))]}]
        finally:
            rounds_extra = ctx.stop_daemon()
        if rounds_extra:
            rounds[-1]["checks"] += rounds_extra
        for i, rnd in enumerate(rounds, 1):
            print(f"--- {name} round {i}/{len(rounds)}: " +
                  ", ".join(f"{k} {v}" for k, v in rnd["figures"].items()), flush=True)
            for check, ok, detail in rnd["checks"]:
                print(f"    {'ok  ' if ok else 'FAIL'} {check}: {detail}")
        bad = [c for rnd in rounds for c in rnd["checks"] if not c[1]]
        print(f"case {name}: {'FAILED' if bad else 'ok'} ({time.time() - started:.0f} s)", flush=True)
        report[name] = rounds
        if bad:
            failed += 1
        else:
            passed += 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
