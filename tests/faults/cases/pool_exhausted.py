"""pool-exhausted: other clients hold every database connection slot (the
seed's scenario A, where the naive design answered 500).  The daemon loses
its connections while the hogs hold all slots, so it cannot reconnect
("too many clients"); it must answer 503 with Retry-After, never 500, and
serve again by itself once the slots are free."""
import asyncio
import signal

import harness
import system

DESCRIPTION = "other clients hold every connection slot while the daemon reconnects, under load"


def take_every_slot(daemon):
    """Freezes the daemon for a moment so that it cannot reconnect at once,
    ends its sessions, lets pgbench hogs take every free slot, and thaws it:
    from then on each of its reconnects is refused."""
    daemon.proc.send_signal(signal.SIGSTOP)
    try:
        harness.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'commerce_http'")
        harness.psql("SELECT pg_sleep(0.2)")
        hogs = system.ConnectionHogs(system.free_connection_slots())
        hogs.__enter__()
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    return hogs


def run(ctx):
    ctx.fresh_shop()
    ctx.start_daemon()
    marks = {}

    async def fault(load):
        await asyncio.sleep(1.5)
        marks["taken"] = load.now()
        hogs = await ctx.blocking(take_every_slot, ctx.daemon)
        marks["hogs"] = hogs.count
        marks["held_from"] = load.now()
        await asyncio.sleep(2.0 if ctx.short else 6.0)
        await ctx.blocking(hogs.__exit__, None, None, None)
        marks["freed"] = load.now()

    load = ctx.run(ctx.load(rate=200, seconds=6 if ctx.short else 12, prefix="pool"), fault)
    held = [a for r in load.requests for a in r.attempts
            if marks["held_from"] + 0.5 <= a.sent < marks["freed"] and a.status]
    no_retry_after = [a for r in load.requests for a in r.attempts if a.status == 503 and not a.retry_after]
    back = load.first_success_after(marks["freed"])
    checks = [
        ("while every slot is held, calls get 503", bool(held) and all(a.status == 503 for a in held),
         f"{sum(a.status == 503 for a in held)} x 503 of {len(held)} answers while held"),
        ("every 503 carries Retry-After", not no_retry_after, f"{len(no_retry_after)} without"),
        ("service is back once the slots are free", back is not None,
         f"{back - marks['freed']:.2f} s" if back else "never"),
    ]
    return [ctx.round(load, checks, hog_connections=marks["hogs"],
                      held_s=round(marks["freed"] - marks["held_from"], 2),
                      seconds_to_recover=round(back - marks["freed"], 2) if back else None)]
