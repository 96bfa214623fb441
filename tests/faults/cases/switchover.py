"""switchover: a planned switchover (patronictl switchover: the primary
shuts down cleanly, the synchronous standby is promoted, the old primary
follows it) under load, as an operator does for maintenance."""
import asyncio
import time

import system

DESCRIPTION = "planned switchover to the synchronous standby under load"
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
            marks["old"] = await ctx.blocking(system.ha_leader)
            marks["cut"] = load.now()
            await ctx.blocking(system.ha, "switchover")
            marks["switched_at"] = load.now()

        load = ctx.run(ctx.load(rate=150, seconds=10, seed=400 + i, prefix=f"switchover{i}"), fault)
        new = system.ha_wait_leader()
        back = load.first_success_sent_after(marks["switched_at"])
        checks = [("the standby took over", new not in (None, marks["old"]), f"node{marks['old']} → node{new}")]
        rnd = ctx.round(load, checks, cut_at_s=round(marks["cut"], 2),
                        seconds_switching=round(marks["switched_at"] - marks["cut"], 2),
                        seconds_to_first_201_after=round(back - marks["switched_at"], 2) if back else None)
        started = time.time()
        system.ha("wait-sync")
        rnd["figures"]["seconds_to_sync_again"] = round(time.time() - started, 1)
        rounds.append(rnd)
    return rounds
