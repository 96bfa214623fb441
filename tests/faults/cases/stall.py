"""stall: the database frozen (SIGSTOP of the postmaster and every backend)
for longer than the request deadline.  Every call gets an answer within the
deadline (504 for a call sent, 503 for one that could not be queued), the
daemon's memory does not grow without bound, and service comes back after
SIGCONT; the orders answered 504 that committed after all are found by
their retries under the same key."""
import asyncio
import signal

import system

DESCRIPTION = "the database frozen with SIGSTOP for 2.5x the deadline, under load"

DEADLINE_MS = 1000


def run(ctx):
    ctx.fresh_shop()
    ctx.start_daemon("--deadline-ms", str(DEADLINE_MS), "--queue-size", "2048")
    marks = {}

    async def fault(load):
        await asyncio.sleep(1.5)
        marks["rss_before_kb"] = system.daemon_rss_kb(ctx.daemon)
        marks["stopped"] = load.now()
        system.signal_postgres(signal.SIGSTOP)
        await asyncio.sleep(2.5 * DEADLINE_MS / 1000)
        marks["rss_stalled_kb"] = system.daemon_rss_kb(ctx.daemon)
        system.signal_postgres(signal.SIGCONT)
        marks["resumed"] = load.now()

    load = ctx.run(ctx.load(rate=250, seconds=5 if ctx.short else 12, prefix="stall"), fault)
    rss_after = system.daemon_rss_kb(ctx.daemon)
    answered = [a for r in load.requests for a in r.attempts if a.status]
    slowest = max(a.latency for a in answered)
    in_stall = [a for a in answered if marks["stopped"] <= a.sent < marks["resumed"]]
    # the deadline is measured from the call's submission; allow the event
    # loop's timer granularity and this client's own scheduling on a busy
    # two-core machine
    bound = DEADLINE_MS / 1000 + 0.5
    back = load.first_success_after(marks["resumed"])
    growth_kb = max(marks["rss_stalled_kb"], rss_after) - marks["rss_before_kb"]
    checks = [
        ("no hang: every answer within the deadline + 0.5 s", slowest <= bound,
         f"slowest answer {slowest:.2f} s (bound {bound} s)"),
        ("no answer lost to a client timeout", load.figures()["lost_answers"] == 0,
         f"{load.figures()['lost_answers']} lost"),
        ("calls during the stall got 504 or 503", all(a.status in (503, 504) for a in in_stall if a.sent
                                                       < marks["resumed"] - bound) and bool(in_stall),
         f"{sum(a.status == 504 for a in in_stall)} x 504, {sum(a.status == 503 for a in in_stall)} x 503"
         f" of {len(in_stall)} sent during the stall"),
        ("the daemon's memory does not grow without bound (< 64 MiB)", growth_kb < 65536,
         f"RSS {marks['rss_before_kb']} kB before, {marks['rss_stalled_kb']} kB stalled, {rss_after} kB after"),
        ("service is back after SIGCONT", back is not None, f"{back - marks['resumed']:.2f} s" if back else "never"),
    ]
    return [ctx.round(load, checks, stalled_s=round(marks["resumed"] - marks["stopped"], 2),
                      slowest_answer_s=round(slowest, 2),
                      seconds_to_recover=round(back - marks["resumed"], 2) if back else None)]
