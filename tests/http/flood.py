"""Flash-sale floods through commerce-http, for the figures of issue 3's bar
(not part of run.sh: they take longer and want the machine to themselves).

  python3 tests/http/flood.py coupon URL COUPON_ID FIRST_USER N
  python3 tests/http/flood.py order  URL PRODUCT_ID FIRST_USER N

N clients connect at once (one connection each, distinct users) and send
one request; prints the count per (status, code), average / p95 / p99 /
max latency and the wall time.  Exit status 0 always; the caller checks.
FLOOD_TOKENS names a file of bearer tokens, line u for user u (as
frontend/commerce-token --users 1-N writes it): each request then carries
its user's token."""
import asyncio
import json
import os
import resource
import sys
import time
from urllib.parse import urlsplit


async def one(host, port, path, body, results, start_gate, auth):
    await start_gate.wait()
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        data = json.dumps(body).encode()
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}"
                     f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        await writer.drain()
        raw = await reader.read()
        writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        code = None
        if status >= 400:
            code = json.loads(payload).get("error", {}).get("code")
        results.append((status, code, time.perf_counter() - t0))
    except Exception as e:  # a failure is a result too
        results.append((0, type(e).__name__, time.perf_counter() - t0))


async def main():
    kind, url, target, first_user, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    u = urlsplit(url)
    if kind == "coupon":
        path, make = "/api/coupons/issue", lambda i: {"userId": first_user + i, "couponId": target}
    else:
        path, make = "/api/orders", lambda i: {"userId": first_user + i, "productId": target, "quantity": 1}
    tokens = []
    if os.environ.get("FLOOD_TOKENS"):
        with open(os.environ["FLOOD_TOKENS"]) as f:
            tokens = f.read().split()
    auth = lambda i: f"Authorization: Bearer {tokens[first_user + i - 1]}\r\n" if tokens else ""
    results, gate = [], asyncio.Event()
    tasks = [asyncio.create_task(one(u.hostname, u.port, path, make(i), results, gate, auth(i))) for i in range(n)]
    await asyncio.sleep(0.1)
    t0 = time.perf_counter()
    gate.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    counts = {}
    for status, code, _ in results:
        counts[f"{status} {code or ''}".strip()] = counts.get(f"{status} {code or ''}".strip(), 0) + 1
    lat = sorted(r[2] for r in results)
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(json.dumps({"requests": n, "counts": counts, "avg_s": round(sum(lat) / len(lat), 3),
                      "p95_s": round(pct(0.95), 3), "p99_s": round(pct(0.99), 3), "max_s": round(lat[-1], 3),
                      "wall_s": round(wall, 3), "rps": round(n / wall)}))


asyncio.run(main())
