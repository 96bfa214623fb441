"""standby-lost: the synchronous standby's node is lost (kill -9 of its
Patroni and PostgreSQL) under load.  Commits wait for the standby until
Patroni notices and lets the primary go on alone (synchronous_mode without
strict); writes that waited past the deadline are OUTCOME_UNKNOWN and their
retries with the same key get the first result.  Then the node returns."""
import asyncio

import system

DESCRIPTION = "kill -9 of the synchronous standby's node under load; the primary goes on alone"
HA = True


def run(ctx):
    rounds = []
    timings = [1.5] if ctx.short else [1.5, 2.3, 1.1, 3.0, 1.8]
    ctx.fresh_shop()
    ctx.start_daemon()
    for i, at in enumerate(timings):
        marks = {}

        async def fault(load):
            await asyncio.sleep(at)
            leader = await ctx.blocking(system.ha_leader)
            marks["leader"], marks["lost"] = leader, 3 - leader
            marks["cut"] = load.now()
            await ctx.blocking(system.ha, "kill-node", marks["lost"])

        load = ctx.run(ctx.load(rate=150, seconds=12, seed=300 + i, prefix=f"standby{i}"), fault)
        after = load.successes_sent_after(marks["cut"])
        checks = [("the primary kept its role", system.ha_leader() == marks["leader"],
                   f"node{marks['leader']} led, node{system.ha_leader()} leads"),
                  ("orders were acknowledged after the standby was lost", bool(after), f"{len(after)} after")]
        rnd = ctx.round(load, checks, lost_node=marks["lost"], cut_at_s=round(marks["cut"], 2))
        rnd["figures"]["seconds_to_rejoin"] = system.ha_rejoin(marks["lost"])
        rounds.append(rnd)
    return rounds
