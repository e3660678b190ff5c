"""One `optimize` call over 200 nodes, before and after: the frozen reference copy of the
optimizer (tests/support/optimizer_reference.py, sourcing/optimizer.py at fbe1241) beside
`sourcing.optimize`, on the same orders in the same run, timed call by call in turn.

The network is the checkout benchmark's (benchmarks/checkout_bench.py): 10 warehouses and 190
stores spread over the US, each holding a SKU with units drawn from (0, 0, 1, 3, 10, 50), carts of
1-3 lines of one unit each to a random US point, so about two nodes in three hold each line.
Each order is asked in the three scenarios (fastest, cheapest, local). Nodes are passed as
allocation passes them: `NodeProfile.of(CandidateNode)` with the order's SKUs only; the third row
times the checkout cache's way, `PreparedNodes` (the same nodes already read into arrays, which
the cache builds from its own arrays outside this clock).

Run:

    .venv/bin/python -m benchmarks.optimizer_micro                # 2,000 orders x 3 scenarios
    .venv/bin/python -m benchmarks.optimizer_micro --orders 300 --lines 3
"""

import argparse
import random
import time
from datetime import datetime

import numpy as np

from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import OrderLine
from sourcing import NodeProfile, Plan, Scenario, SourcingOrder, optimize
from sourcing.optimizer import PreparedNodes, node_arrays
from tests.support import optimizer_reference

UNITS = (0, 0, 1, 3, 10, 50)
NOW = datetime(2026, 12, 1, 10, 0)
WARM_UP = 30


def network(rng: random.Random, nodes: int, skus: int) -> tuple[list[tuple], np.ndarray]:
    """Node sites and a (node, sku) stock matrix, as the checkout benchmark seeds them."""
    sites = [
        (f"N{n:03d}", n < 10, rng.uniform(30, 47), rng.uniform(-120, -75)) for n in range(nodes)
    ]
    stock = np.array([[rng.choice(UNITS) for _ in range(skus)] for _ in range(nodes)])
    return sites, stock


def candidates(sites: list[tuple], stock: np.ndarray, skus: list[int]) -> list[NodeProfile]:
    out = []
    for n, (node_id, warehouse, lat, lon) in enumerate(sites):
        available = {f"SKU{s:05d}": int(stock[n, s]) for s in skus if stock[n, s] > 0}
        node = CandidateNode(
            node_id=node_id,
            node_type=NodeType.WAREHOUSE if warehouse else NodeType.STORE,
            location=GeoPoint(lat=lat, lon=lon),
            can_ship=True,
            can_pickup=not warehouse,
            available=available,
        )
        out.append(NodeProfile.of(node))
    return out


def same(a: Plan, b: Plan) -> bool:
    return a.model_dump() == b.model_dump()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--skus", type=int, default=500)
    parser.add_argument("--lines", type=int, help="every cart this many lines (default 1-3)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    sites, stock = network(rng, args.nodes, args.skus)
    timings: dict[str, list[float]] = {
        "reference": [],
        "optimize": [],
        "optimize, PreparedNodes": [],
    }
    differ = 0
    for k in range(args.orders + WARM_UP):
        n_lines = args.lines or rng.choice((1, 2, 3))
        picked = rng.sample(range(args.skus), k=n_lines)
        nodes = candidates(sites, stock, picked)
        lines = [
            OrderLine(line_no=i + 1, sku=f"SKU{s:05d}", quantity=1) for i, s in enumerate(picked)
        ]
        destination = GeoPoint(lat=rng.uniform(30, 47), lon=rng.uniform(-120, -75))
        entries = sorted(((n.node, n) for n in nodes), key=lambda e: (e[0].priority, e[0].node_id))
        arrays = node_arrays(entries, sorted({ln.sku for ln in lines}))
        for scenario in Scenario:
            order = SourcingOrder(
                order_id=f"micro-{k}", lines=lines, destination=destination, now=NOW,
                scenario=scenario,
            )  # fmt: skip
            started = time.perf_counter_ns()
            before = optimizer_reference.optimize(order, nodes)
            middle = time.perf_counter_ns()
            after = optimize(order, nodes)
            ended = time.perf_counter_ns()
            prepared = optimize(order, PreparedNodes((), arrays))
            last = time.perf_counter_ns()
            if k >= WARM_UP:
                timings["reference"].append((middle - started) / 1e6)
                timings["optimize"].append((ended - middle) / 1e6)
                timings["optimize, PreparedNodes"].append((last - ended) / 1e6)
                differ += (not same(before, after)) + (not same(before, prepared))
    calls = len(timings["optimize"])
    print(
        f"{calls} optimize calls ({args.orders} orders x 3 scenarios), {args.nodes} nodes, "
        f"{args.lines or '1-3'} line(s), plans that differ: {differ}"
    )
    print("| optimizer | p50 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|")
    for name, values in timings.items():
        p50, p99 = np.percentile(values, [50, 99])
        print(f"| {name} | {p50:.3f} | {p99:.3f} | {np.mean(values):.3f} |")
    for name in ("optimize", "optimize, PreparedNodes"):
        ratio = np.median(timings["reference"]) / np.median(timings[name])
        print(f"median speed-up, {name}: {ratio:.1f}x")


if __name__ == "__main__":
    main()
