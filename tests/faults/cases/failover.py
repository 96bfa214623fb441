"""failover: the primary's whole node is lost (kill -9 of its Patroni and of
every PostgreSQL process) under an open-loop order load; Patroni promotes
the synchronous standby, commerce-http finds it by its multi-host conninfo
(target_session_attrs=read-write), and the data is checked on the promoted
node: what was acknowledged must be there, since it was on both."""
import asyncio
import time

import harness
import system

DESCRIPTION = "kill -9 of the primary's node (Patroni and PostgreSQL) under load; the standby is promoted"
HA = True


def readyz_until_ready(timeout=60):
    """Polls /readyz from the moment the node died until it answers 200;
    returns (status, seconds since the first poll) of each change of answer."""
    changes, started = [], time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            status = harness.get("/readyz", timeout=2).status
        except OSError:
            status = 0
        if not changes or changes[-1][0] != status:
            changes.append((status, time.monotonic() - started))
        if status == 200 and len(changes) > 1:
            break
        time.sleep(0.1)
    return changes


def run(ctx):
    rounds = []
    # when in the load the node dies: different timing each round
    timings = [1.5] if ctx.short else [1.5, 2.3, 1.1, 3.0, 1.8]
    ctx.fresh_shop()
    ctx.start_daemon()
    for i, at in enumerate(timings):
        marks = {}

        async def fault(load):
            await asyncio.sleep(at)
            marks["lost"] = await ctx.blocking(system.ha_leader)
            marks["cut"] = load.now()
            await ctx.blocking(system.ha, "kill-node", marks["lost"])
            marks["killed"] = load.now()

            async def promoted():
                marks["promoted"] = await ctx.blocking(system.ha_wait_leader)
                marks["promoted_at"] = load.now()
            marks["readyz"], _ = await asyncio.gather(ctx.blocking(readyz_until_ready), promoted())

        load = ctx.run(ctx.load(rate=150, seconds=16, seed=200 + i, prefix=f"failover{i}"), fault)
        # the first 201 to a request sent once the node was dead: from the new primary
        back = load.first_success_sent_after(marks["killed"])
        statuses = [status for status, _ in marks["readyz"]]
        checks = [("the standby was promoted", marks["promoted"] not in (None, marks["lost"]),
                   f"node{marks['lost']} lost, node{marks['promoted']} leads"),
                  ("/readyz answered 503 while there was no primary, then 200",
                   503 in statuses and statuses[-1] == 200 and 200 not in statuses[:statuses.index(503)],
                   " then ".join(f"{s} at {t:.1f} s" for s, t in marks["readyz"]))]
        # the data is checked on the promoted node, before the lost one returns
        rnd = ctx.round(load, checks, lost_node=marks["lost"], cut_at_s=round(marks["cut"], 2),
                        seconds_to_new_leader=round(marks["promoted_at"] - marks["cut"], 2),
                        seconds_to_first_201=round(back - marks["cut"], 2) if back else None)
        rnd["figures"]["seconds_to_rejoin"] = system.ha_rejoin(marks["lost"])
        rounds.append(rnd)
    return rounds
