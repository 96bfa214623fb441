"""daemon-crash: kill -9 of commerce-http under load, then a restart."""
import asyncio
import signal

DESCRIPTION = "kill -9 of commerce-http under load, restart"


def run(ctx):
    ctx.fresh_shop()
    ctx.start_daemon()
    marks = {}

    async def fault(load):
        await asyncio.sleep(1.5)
        marks["killed"] = load.now()
        ctx.daemon.proc.send_signal(signal.SIGKILL)
        await ctx.blocking(ctx.daemon.proc.wait)
        ctx.daemon.log.close()
        await asyncio.sleep(0.3)
        await ctx.blocking(ctx.start_daemon)
        marks["restarted"] = load.now()

    load = ctx.run(ctx.load(rate=250, seconds=5 if ctx.short else 10, prefix="dcrash"), fault)
    back = load.first_success_after(marks["restarted"])
    return [ctx.round(load, [], killed_at_s=round(marks["killed"], 2),
                      restarted_after_s=round(marks["restarted"] - marks["killed"], 2),
                      seconds_to_recover=round(back - marks["restarted"], 2) if back else None)]
