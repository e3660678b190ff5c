"""Checkout-check benchmark: 10,000 SKUs x 200 nodes, 50 concurrent clients over HTTP.

Prints the throughput and p50 / p99 latency of `POST /v1/checkout/check` beside a trivial FastAPI
endpoint (`GET /healthz`) served by the same process in the same run: the framework's own ceiling
on this machine. Run:

    .venv/bin/python -m benchmarks.checkout_bench                 # SQLite
    .venv/bin/python -m benchmarks.checkout_bench --db postgres   # PostgreSQL at 127.0.0.1:5432/test
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

from sqlalchemy import insert, text

from benchmarks.loadgen import LoadResult, http_request, run_load
from ledger.db import create_schema, make_engine
from ledger.tables import Node, Sku, StockMovement, StockPosition
from stack.servers import free_port

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def seed(url: str, skus: int, nodes: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    if url.startswith("postgres"):
        os.environ["PGOPTIONS"] = "-c search_path=opendom_bench"
        with make_engine(url).begin() as c:
            c.execute(text("drop schema if exists opendom_bench cascade"))
            c.execute(text("create schema opendom_bench"))
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
    engine.dispose()


def carts(skus: int, count: int = 2000, seed: int = 2) -> list[bytes]:
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
            http_request("POST", "/v1/checkout/check", "bench", json.dumps(body).encode())
        )
    return bodies


def start_api(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "OPENDOM_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    if url.startswith("postgres"):
        env["PGOPTIONS"] = "-c search_path=opendom_bench"
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


async def measure(port: int, skus: int, clients: int, seconds: float) -> list[LoadResult]:
    trivial = [http_request("GET", "/healthz", "bench")]
    results = []
    for name, requests in (
        ("trivial GET /healthz", trivial),
        ("POST /v1/checkout/check", carts(skus)),
    ):
        results.append(await run_load(name, "127.0.0.1", port, requests, clients, seconds))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="opendom-bench-")
    url = f"sqlite:///{workdir}/bench.db" if args.db == "sqlite" else POSTGRES_URL
    started = time.perf_counter()
    seed(url, args.skus, args.nodes)
    print(f"seeded {args.skus} SKUs x {args.nodes} nodes = {args.skus * args.nodes:,} positions "
          f"on {args.db} in {time.perf_counter() - started:.1f} s")  # fmt: skip
    port = free_port()
    api = start_api(url, port)
    try:
        started = time.perf_counter()
        asyncio.run(wait_ready(port))
        print(f"API ready (availability cache loaded) in {time.perf_counter() - started:.1f} s")
        results = asyncio.run(measure(port, args.skus, args.clients, args.seconds))
    finally:
        api.terminate()
        api.wait()
    ceiling, checkout = results
    print(
        f"\n{args.clients} concurrent clients, {args.seconds:g} s each, one API process ({args.db})"
    )
    for result in results:
        print(" ", result.row())
    print(f"  checkout throughput = {checkout.throughput / ceiling.throughput:.0%} of the ceiling; "
          f"goal: p99 <= 20 ms and >= 50 %")  # fmt: skip


if __name__ == "__main__":
    main()
