"""Checkout-check benchmark: 10,000 SKUs x 200 nodes, 50 concurrent clients over HTTP.

Measures `POST /v1/checkout/check` beside a trivial FastAPI endpoint (`GET /healthz`) served by the
same process in the same run: the framework's own ceiling on this machine. Both calls carry the
same channel API key; the trivial endpoint ignores it. Two measurements, each endpoint in turn:

1. Saturation (closed loop): 50 connections, each sending its next request as soon as the last
   answer arrives. Gives the most each endpoint can serve; the goal is a checkout throughput of at
   least half the ceiling's. Latency here is queueing, not service time: with 50 requests always
   in flight, mean latency = 50 / throughput (Little's law), so p99 <= 20 ms would need more than
   ~2,500 req/s with a narrow spread, which the trivial endpoint itself may not give on a 2-core
   machine where client and server share the cores.
2. Paced (open loop per connection): the same 50 connections at a fixed offered rate, by default
   half the ceiling's measured throughput (the throughput goal), each request sent at its scheduled
   time and its latency counted from that time, so queueing behind a slow answer is not hidden.
   This is the checkout latency a production caller sees at that traffic; the goal is
   p99 <= 20 ms. The trivial endpoint is paced at the same rate for comparison.

Each endpoint's time is split into `--rounds` slices taken alternately (trivial, checkout,
trivial, ...), so other work on a shared machine weighs on both alike.

Run:

    .venv/bin/python -m benchmarks.checkout_bench                 # SQLite
    .venv/bin/python -m benchmarks.checkout_bench --db postgres   # PostgreSQL at 127.0.0.1:5432/test
    .venv/bin/python -m benchmarks.checkout_bench --in-process    # µs per check, no HTTP

`--in-process` times the API's own function (services.checkout.answer_from_cache) on the same
carts over a loaded availability cache, CPU time per check, with the checkout's fast path
(sourcing.quote) and with every option from the optimizer (`fast=False`), alternately.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from benchmarks.databases import POSTGRES_URL, fresh_postgres_schema
from benchmarks.loadgen import LoadResult, http_request, merged, run_load, run_paced
from ledger.db import create_schema, make_engine, transaction
from ledger.tables import Node, Sku, StockMovement, StockPosition
from security.keys import issue_key
from security.roles import Role
from stack.servers import free_port


def seed(url: str, skus: int, nodes: int, seed: int = 1) -> str:
    """Seeds the network and returns a channel API key for channel `web`."""
    rng = random.Random(seed)
    if url.startswith("postgres"):
        fresh_postgres_schema("opendom_bench")
    engine = make_engine(url)
    create_schema(engine)
    node_rows = [
        {
            "node_id": f"N{n:03d}",
            "name": f"node {n}",
            "node_type": "warehouse" if n < 10 else "store",
            "lat": rng.uniform(30, 47),
            "lon": rng.uniform(-120, -75),
            "can_ship": True,
            "can_pickup": n >= 10,
            "daily_capacity": 1000,
            "priority": 100,
            "active": True,
            "system_url": "http://127.0.0.1:1",
        }
        for n in range(nodes)
    ]
    with engine.begin() as c:
        c.execute(insert(Node), node_rows)
        c.execute(insert(Sku), [{"sku": f"SKU{s:05d}", "name": f"sku {s}", "unit_price": 10.0}
                                for s in range(skus)])  # fmt: skip
        for n in range(nodes):
            rows = [
                {"node_id": f"N{n:03d}", "sku": f"SKU{s:05d}",
                 "on_hand": rng.choice((0, 0, 1, 3, 10, 50)), "reserved": 0, "held": 0,
                 "safety_stock": 0}
                for s in range(skus)
            ]  # fmt: skip
            c.execute(insert(StockPosition), rows)
            c.execute(
                insert(StockMovement),
                [{"node_id": r["node_id"], "sku": r["sku"], "kind": "snapshot",
                  "cause": "bench seed", "d_on_hand": r["on_hand"]} for r in rows if r["on_hand"]],
            )  # fmt: skip
    with transaction(engine) as session:
        key = issue_key(session, "bench web", Role.CHANNEL, channel="web").key
    engine.dispose()
    return key


def carts(skus: int, key: str, count: int = 2000, seed: int = 2) -> list[bytes]:
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        picked = rng.sample(range(skus), k=rng.choice((1, 2, 3)))
        body = {
            "channel": "web",
            "destination": {"lat": rng.uniform(30, 47), "lon": rng.uniform(-120, -75)},
            "lines": [
                {"line_no": i + 1, "sku": f"SKU{s:05d}", "quantity": 1}
                for i, s in enumerate(picked)
            ],
        }
        bodies.append(
            http_request("POST", "/v1/checkout/check", "bench", json.dumps(body).encode(), key)
        )
    return bodies


def start_api(url: str, port: int) -> subprocess.Popen:
    # PGOPTIONS, set by fresh_postgres_schema, is inherited with the environment.
    env = {**os.environ, "DATABASE_URL": url, "OPENDOM_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        env=env, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip


async def wait_ready(port: int, seconds: float = 300) -> None:
    """Until /readyz says the availability cache is loaded."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(http_request("GET", "/readyz", "bench"))
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            if head[9:12] == b"200":
                return
        except OSError:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError("API did not become ready")


async def measure(
    port: int, skus: int, key: str, clients: int, seconds: float, rate: float | None,
    fraction: float, rounds: int,
) -> tuple[list[LoadResult], list[LoadResult], float]:  # fmt: skip
    """Saturation results, paced results, and the paced rate. Each endpoint's time is split into
    `rounds` slices taken alternately, so other work on the machine weighs on both alike."""
    endpoints = (
        ("trivial GET /healthz", [http_request("GET", "/healthz", "bench", key=key)]),
        ("POST /v1/checkout/check", carts(skus, key)),
    )
    slice_seconds = seconds / rounds
    saturated: list[list[LoadResult]] = [[], []]
    for _ in range(rounds):
        for i, (name, requests) in enumerate(endpoints):
            saturated[i].append(
                await run_load(name, "127.0.0.1", port, requests, clients, slice_seconds)
            )
    ceiling, checkout = merged(saturated[0]), merged(saturated[1])
    rate = rate or fraction * ceiling.throughput
    paced: list[list[LoadResult]] = [[], []]
    for _ in range(rounds):
        for i, (name, requests) in enumerate(endpoints):
            paced[i].append(
                await run_paced(name, "127.0.0.1", port, requests, clients, rate, slice_seconds)
            )
    return [ceiling, checkout], [merged(paced[0]), merged(paced[1])], rate


def in_process(url: str, skus: int, rounds: int) -> None:
    """CPU µs per checkout check from the availability cache, fast path and optimizer alike."""
    from datetime import UTC, datetime

    from domain.geo import GeoPoint
    from domain.orders import OrderLine
    from ledger.availability_cache import AvailabilityCache
    from services.checkout import answer_from_cache

    engine = make_engine(url)
    cache = AvailabilityCache(engine)
    cache.load()
    requests = []
    for body in carts(skus, "unused"):
        cart = json.loads(body.split(b"\r\n\r\n", 1)[1])
        lines = [OrderLine(**line) for line in cart["lines"]]
        requests.append((lines, GeoPoint(**cart["destination"])))
    now = datetime.now(UTC)
    best = {True: float("inf"), False: float("inf")}
    for _ in range(rounds):
        for fast in (True, False):
            started = time.process_time()
            for lines, destination in requests:
                answer_from_cache(cache, "web", lines, destination, now, fast=fast)
            spent = (time.process_time() - started) / len(requests) * 1e6
            best[fast] = min(best[fast], spent)
    engine.dispose()
    print(f"in process, {len(requests)} carts, best of {rounds} rounds (CPU time per check):")
    print(f"  fast path (sourcing.quote)        {best[True]:6.0f} us")
    print(f"  every option from optimize        {best[False]:6.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--fraction", type=float, default=0.5, help="paced rate as a fraction of the ceiling's"
    )
    parser.add_argument("--rate", type=float, help="paced rate in req/s (overrides --fraction)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternate the endpoints in this many slices"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="µs per check without HTTP (see above)"
    )
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="opendom-bench-")
    url = f"sqlite:///{workdir}/bench.db" if args.db == "sqlite" else POSTGRES_URL
    started = time.perf_counter()
    key = seed(url, args.skus, args.nodes)
    print(f"seeded {args.skus} SKUs x {args.nodes} nodes = {args.skus * args.nodes:,} positions "
          f"on {args.db} in {time.perf_counter() - started:.1f} s")  # fmt: skip
    if args.in_process:
        in_process(url, args.skus, max(args.rounds, 3))
        return
    port = free_port()
    api = start_api(url, port)
    try:
        started = time.perf_counter()
        asyncio.run(wait_ready(port))
        print(f"API ready (availability cache loaded) in {time.perf_counter() - started:.1f} s")
        saturated, paced, rate = asyncio.run(
            measure(
                port,
                args.skus,
                key,
                args.clients,
                args.seconds,
                args.rate,
                args.fraction,
                args.rounds,
            )
        )
    finally:
        api.terminate()
        api.wait()
    ceiling, checkout = saturated
    print(f"\nsaturation: {args.clients} closed-loop clients, {args.seconds:g} s per endpoint "
          f"in {args.rounds} alternating slices, one API process ({args.db})")  # fmt: skip
    for result in saturated:
        print(" ", result.row())
    print(f"  checkout throughput = {checkout.throughput / ceiling.throughput:.0%} of the ceiling "
          f"(goal >= 50 %)")  # fmt: skip
    print(f"\npaced: the same {args.clients} clients offering {rate:,.0f} req/s in all "
          f"({rate / ceiling.throughput:.0%} of the ceiling), latency from the scheduled send")  # fmt: skip
    for result in paced:
        print(" ", result.row())
    print(f"  checkout p99 at {rate:,.0f} req/s = {paced[1].percentile(0.99):.1f} ms "
          f"(goal <= 20 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
