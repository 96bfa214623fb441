"""Open-loop HTTP load for the fault suite: orders and coupon requests sent at
a fixed arrival rate whatever the answers, each with its own Idempotency-Key,
and every request whose answer was lost or unavailable retried with the same
key until it has a definite answer.

Open loop: request i leaves at start + i / rate, even when earlier requests
have no answer yet (a client that waits for answers would slow down with the
system and hide overload).  Each request is a task on its own keep-alive
connection taken from an idle list (or a new one), so a slow answer never
delays the next departure.

A request's *outcome* is the first definite answer: 201, or a 4xx refusal
(out of stock, sold out, coupon already issued ...).  503, 504 and a lost
answer (connection reset, closed, or no answer within the client timeout)
are not outcomes: the request goes back in line and is sent again with the
same key after Retry-After (or a short pause).
"""
import asyncio
import json
import random
import time

import harness

from dataclasses import dataclass, field


@dataclass
class Attempt:
    sent: float          # monotonic seconds since the load began
    latency: float       # seconds until the answer or the loss
    status: int          # HTTP status, or 0 when the answer was lost
    code: str = None     # the error code of a JSON error body
    retry_after: str = None  # the Retry-After header, if any
    wall: float = 0.0    # time.time() when sent, to compare with the database's now()


@dataclass
class Request:
    kind: str            # 'order' or 'coupon'
    key: str
    user_id: int
    body: dict
    attempts: list = field(default_factory=list)
    outcome: int = None  # status of the first definite answer
    answer: dict = None  # its JSON body

    @property
    def acked(self):
        return self.outcome == 201


class Connections:
    """Idle keep-alive connections to one address."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.idle = []
        self.opened = 0

    async def take(self):
        while self.idle:
            reader, writer = self.idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    def give_back(self, conn):
        self.idle.append(conn)

    def close_all(self):
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def http_call(conns, method, path, body, headers, timeout, drop_after_send=False):
    """One HTTP/1.1 exchange.  Returns (status, headers, body bytes); status 0
    when the answer was lost.  drop_after_send: close the connection right
    after the request is written, as a client that dies would."""
    data = json.dumps(body).encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(data)}"]
    if body is not None:
        head.append("Content-Type: application/json")
    head += [f"{k}: {v}" for k, v in headers.items()]
    wire = ("\r\n".join(head) + "\r\n\r\n").encode() + data
    try:
        reader, writer = await asyncio.wait_for(conns.take(), timeout)
    except (OSError, asyncio.TimeoutError):
        return 0, {}, b""
    try:
        writer.write(wire)
        await writer.drain()
        if drop_after_send:
            writer.transport.abort()
            return 0, {}, b""
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        length = int(hdrs.get("content-length", "0"))
        payload = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
        if hdrs.get("connection", "").lower() == "close":
            writer.close()
        else:
            conns.give_back((reader, writer))
        return status, hdrs, payload
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            ValueError, IndexError):
        writer.transport.abort()
        return 0, {}, b""


class Load:
    """Builds the requests of one run and sends them.

    fixture: dict with user_ids, product_ids, coupon_id (from seed.py).
    coupon_share: fraction of requests that ask for the coupon.
    drop_share: fraction of first attempts whose connection is dropped right
    after sending (the lost-ack case).
    lines: the least and most lines of an order (distinct products).
    retry_after_load: hold every retry until the last departure, so that
    the offered rate is exactly `rate` (the overload case)."""

    def __init__(self, port, fixture, rate, seconds, coupon_share=0.3, drop_share=0.0,
                 timeout=10.0, retry_for=60.0, seed=1, host="127.0.0.1", prefix="f", lines=(1, 2),
                 retry_after_load=False):
        self.port, self.rate, self.seconds = port, rate, seconds
        self.retry_after_load = retry_after_load
        self.timeout, self.retry_for, self.drop_share = timeout, retry_for, drop_share
        self.conns = Connections(host, port)
        self.rng = random.Random(seed)
        self.requests = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.t0 = None
        users, products = fixture["user_ids"], fixture["product_ids"]
        coupon_users = list(users)
        self.rng.shuffle(coupon_users)
        n = int(rate * seconds)
        for i in range(n):
            key = f"{prefix}-{seed}-{i}"
            if self.rng.random() < coupon_share and coupon_users:
                uid = coupon_users.pop()
                self.requests.append(Request("coupon", key, uid, {"userId": uid, "couponId": fixture["coupon_id"]}))
            else:
                uid = self.rng.choice(users)
                items = [{"productId": pid, "quantity": self.rng.randint(1, 3)}
                         for pid in sorted(self.rng.sample(products, self.rng.randint(*lines)))]
                self.requests.append(Request("order", key, uid, {"userId": uid, "items": items}))

    def now(self):
        return time.monotonic() - self.t0

    async def attempt(self, req, first):
        path = "/api/orders" if req.kind == "order" else "/api/coupons/issue"
        drop = first and self.drop_share and self.rng.random() < self.drop_share
        sent, wall = self.now(), time.time()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        # an operator's token acts for every user of the load (one token, so
        # that minting thousands does not slow the fault's timing)
        status, hdrs, payload = await http_call(self.conns, "POST", path, req.body,
                                                {"Idempotency-Key": req.key,
                                                 "Authorization": "Bearer " + harness.ADMIN_TOKEN},
                                                self.timeout, drop)
        self.in_flight -= 1
        try:
            answer = json.loads(payload) if payload else None
        except ValueError:
            answer = None
        code = (answer or {}).get("error", {}).get("code") if isinstance(answer, dict) else None
        req.attempts.append(Attempt(sent, self.now() - sent, status, code, hdrs.get("retry-after"), wall))
        return status, hdrs, answer

    async def run_request(self, req):
        first = True
        while True:
            status, hdrs, answer = await self.attempt(req, first)
            first = False
            if status not in (0, 503, 504):
                req.outcome, req.answer = status, answer
                return
            if self.now() > self.seconds + self.retry_for:
                return      # left unresolved: the checks count it
            # exponential backoff with jitter, never sooner than Retry-After
            # says (as a well-behaved client does: retries that come back at
            # once would multiply an overload)
            pause = min(0.1 * 2 ** len(req.attempts), 3.0)
            if status == 503 and hdrs.get("retry-after", "").isdigit():
                pause = max(pause, min(float(hdrs["retry-after"]), 3.0))
            pause *= 0.5 + self.rng.random()
            if self.retry_after_load:
                # spread over the 5 s after the last departure, not all at once
                pause = max(pause, self.seconds - self.now() + 5 * self.rng.random())
            await asyncio.sleep(pause)

    async def run(self, during=None):
        """Sends every request at its departure time; `during` is a coroutine
        (the fault) run beside the load, given this Load."""
        self.t0 = time.monotonic()
        tasks = []
        fault = asyncio.ensure_future(during(self)) if during else None
        for i, req in enumerate(self.requests):
            delay = i / self.rate - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(self.run_request(req)))
        await asyncio.gather(*tasks)
        if fault:
            await fault
        self.conns.close_all()

    async def run_closed(self, concurrency):
        """Closed loop, for measuring capacity: `concurrency` clients each send
        the next request as soon as the previous one is answered."""
        self.t0 = time.monotonic()
        pending = iter(self.requests)

        async def client():
            for req in pending:
                await self.run_request(req)
        await asyncio.gather(*(client() for _ in range(concurrency)))
        self.conns.close_all()
        return self.now()

    # -- figures ---------------------------------------------------------

    def figures(self):
        attempts = [a for r in self.requests for a in r.attempts]
        ok = sorted(a.sent + a.latency for a in attempts if 200 <= a.status < 300)
        gaps = [b - a for a, b in zip(ok, ok[1:])]
        return {
            "requests": len(self.requests),
            "attempts": len(attempts),
            "acked": sum(r.acked for r in self.requests),
            "refused_4xx": sum(1 for r in self.requests if r.outcome and 400 <= r.outcome < 500),
            "unresolved": sum(1 for r in self.requests if r.outcome is None),
            # 503 UNAVAILABLE: not sent, nothing happened; OUTCOME_UNKNOWN (503
            # connection lost, 504 late): sent, may have taken effect
            "status_503": sum(a.status == 503 for a in attempts),
            "unavailable_503": sum(a.status == 503 and a.code == "UNAVAILABLE" for a in attempts),
            "outcome_unknown_503": sum(a.status == 503 and a.code == "OUTCOME_UNKNOWN" for a in attempts),
            "status_504": sum(a.status == 504 for a in attempts),
            "status_500": sum(a.status >= 500 and a.status not in (503, 504) for a in attempts),
            "lost_answers": sum(a.status == 0 for a in attempts),
            "retried_requests": sum(len(r.attempts) > 1 for r in self.requests),
            # the longest stretch with no successful answer while the load ran
            "seconds_without_service": round(max(gaps, default=0.0), 2),
            "max_in_flight": self.max_in_flight,
        }

    def first_success_after(self, t):
        """When the first success was answered at or after t."""
        times = [a.sent + a.latency for r in self.requests for a in r.attempts
                 if 200 <= a.status < 300 and a.sent + a.latency >= t]
        return min(times, default=None)

    def successes_sent_after(self, t):
        """The successful attempts sent at or after t (so not answered by
        whatever served before a fault at t)."""
        return [a for r in self.requests for a in r.attempts if 200 <= a.status < 300 and a.sent >= t]

    def first_success_sent_after(self, t):
        """When the first success sent at or after t was answered."""
        return min((a.sent + a.latency for a in self.successes_sent_after(t)), default=None)
