"""lost-ack: the client's connection dies right after the request is sent;
the retry with the same Idempotency-Key must yield one order."""

DESCRIPTION = "a third of the clients drop the connection right after sending; retries with the same key"


def run(ctx):
    ctx.fresh_shop()
    ctx.start_daemon()
    load = ctx.run(ctx.load(rate=200, seconds=4 if ctx.short else 10, drop_share=0.35, prefix="lost"), None)
    dropped = sum(1 for r in load.requests if r.attempts and r.attempts[0].status == 0)
    # a dropped request that was then answered "already done": the first
    # attempt had committed and the retry returned it
    return [ctx.round(load, [("some first attempts were dropped", dropped > 0, f"{dropped} dropped")],
                      dropped_first_attempts=dropped)]
