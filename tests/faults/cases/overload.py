"""overload: new requests arrive at 3x the rate the system sustains.  The
daemon must shed the excess at once with 503 + Retry-After, keep the
accepted calls' p99 under the deadline, and keep answering 201 at >= 80% of
its capacity (no collapse into timeouts).

The system under test is one event loop and one PostgreSQL connection, and
the orders have 40 to 60 lines each, so that capacity is a few hundred
orders a second and this suite's Python client can offer three times that
on the same two cores.  Capacity is measured first, in the same run, by a
closed loop of 64 clients."""
import asyncio

DESCRIPTION = "3x the sustainable arrival rate: shed with 503, no collapse"

DEADLINE_MS = 2000
# The daemon's own defaults otherwise: the waiting queue (16384 calls) is far
# longer than a deadline's worth of work; what keeps accepted calls fast is
# that a call is refused once the oldest waiting call has waited a quarter
# of the deadline (frontend/db.c, db_submit).
LINES = (40, 60)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else None


def run(ctx):
    ctx.fresh_shop(products=80, hot_stock=10 ** 6, coupon_quantity=10 ** 6)
    ctx.start_daemon("--deadline-ms", str(DEADLINE_MS), threads=1, pool_size=1)

    calib = ctx.load(rate=1, seconds=800, coupon_share=0.0, lines=LINES, prefix="cap")
    elapsed = asyncio.run(calib.run_closed(64))
    capacity = calib.figures()["acked"] / elapsed
    ctx.loads.append(calib)     # its orders are checked too

    seconds = 6 if ctx.short else 12
    rate = int(capacity * 3)
    load = ctx.run(ctx.load(rate=rate, seconds=seconds, coupon_share=0.0, lines=LINES, prefix="over",
                            retry_after_load=True), None)
    # 201s answered while new requests kept arriving, after the first second
    window = (1.0, seconds)
    ok_times = [a.sent + a.latency for r in load.requests for a in r.attempts if a.status == 201]
    in_window = sum(window[0] <= t < window[1] for t in ok_times)
    goodput = in_window / (window[1] - window[0])
    accepted = [a.latency for r in load.requests for a in r.attempts
                if a.status in (201, 409, 402) and window[0] <= a.sent < window[1]]
    p99 = percentile(accepted, 0.99)
    shed = [a for r in load.requests for a in r.attempts if a.status == 503]
    late_start = [r for r in load.requests if r.attempts and r.attempts[0].sent - load.requests.index(r) / rate > 0.5]
    checks = [
        ("the client offered the rate it aimed at (departures at most 0.5 s late)", not late_start,
         f"{len(late_start)} requests left late"),
        ("the excess is shed with 503 + Retry-After", bool(shed) and all(a.retry_after for a in shed),
         f"{len(shed)} x 503, {sum(1 for a in shed if not a.retry_after)} without Retry-After"),
        ("accepted calls keep p99 under the deadline", p99 is not None and p99 < DEADLINE_MS / 1000,
         f"p99 {p99:.3f} s" if p99 is not None else "no accepted call"),
        ("no collapse: 201s at >= 80% of capacity while overloaded", goodput >= 0.8 * capacity,
         f"{goodput:.0f}/s = {goodput / capacity:.0%} of {capacity:.0f}/s"),
        ("no 504", load.figures()["status_504"] == 0, f"{load.figures()['status_504']} x 504"),
    ]
    return [ctx.round(load, checks, capacity_per_s=round(capacity), offered_per_s=rate,
                      ok_per_s_overloaded=round(goodput), accepted_p99_s=round(p99, 3) if p99 else None,
                      shed_503=len(shed))]
