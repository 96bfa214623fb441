"""crash: kill -9 of the postmaster and every backend at once (a power cut
of the database server), then a restart with crash recovery, under load."""
import asyncio

import system

DESCRIPTION = "kill -9 of the postmaster and every backend at once, restart, under load"


def run(ctx):
    rounds = []
    # different timing each round: when in the load the cut comes, and how
    # long the database stays down
    timings = [(1.5, 0.5)] if ctx.short else [(1.5, 0.5), (2.2, 1.0), (1.1, 0.2), (2.9, 1.5), (1.8, 0.0)]
    ctx.fresh_shop()
    ctx.start_daemon()
    for i, (at, down) in enumerate(timings):
        marks = {}

        async def fault(load):
            await asyncio.sleep(at)
            marks["cut"] = load.now()
            marks["backends_killed"] = len(await ctx.blocking(system.power_cut))
            await asyncio.sleep(down)
            await ctx.blocking(system.start_postgres)
            marks["restarted"] = load.now()

        load = ctx.run(ctx.load(rate=250, seconds=5 if ctx.short else 6, seed=100 + i, prefix=f"crash{i}"),
                       fault)
        back = load.first_success_after(marks["restarted"])
        rounds.append(ctx.round(load, [], cut_at_s=round(marks["cut"], 2), down_s=down,
                                processes_killed=marks["backends_killed"],
                                seconds_to_recover=round(back - marks["restarted"], 2) if back else None))
    return rounds
