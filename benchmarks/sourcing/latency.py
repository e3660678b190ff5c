"""Decision time on a 200-node network: 10 fulfilment centres and 190 stores, orders of 1-5 lines.

The nodes are built once per order as the allocation activity receives them (CandidateNode with
what each node can promise for the order's SKUs); the clock measures `optimize` alone, with the
default policy (handling, store penalties, promise dates all on).
"""

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from benchmarks.sourcing.instance import HUBS, top_us_cities
from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import OrderLine
from sourcing import NoFeasiblePlan, SourcingOrder, optimize

STORES = 190
SKUS = 200
WARM_UP = 20  # first calls pay for imports and numpy's first allocations


@dataclass
class Latency:
    nodes: int
    orders: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_packages: float


def measure(orders: int, seed: int) -> Latency:
    rng = np.random.default_rng(seed)
    stores = _store_sites(rng)
    skus = [f"SKU-{i:03d}" for i in range(SKUS)]
    timings: list[float] = []
    packages: list[int] = []
    for k in range(orders + WARM_UP):
        n_lines = int(rng.integers(1, 6))
        chosen = [skus[i] for i in rng.choice(SKUS, n_lines, replace=False)]
        nodes = _network(rng, stores, chosen)
        city = top_us_cities()[int(rng.integers(0, 100))]
        request = SourcingOrder(
            order_id=f"lat-{k}",
            lines=[OrderLine(line_no=i + 1, sku=s, quantity=1) for i, s in enumerate(chosen)],
            destination=city.location,
            now=datetime(2025, 3, 3, 9, 0),
            priority=int(rng.integers(0, 10)),
        )
        started = time.perf_counter()
        try:
            plan = optimize(request, nodes)
            shipped = plan.packages
        except NoFeasiblePlan:
            shipped = 0
        elapsed = (time.perf_counter() - started) * 1000
        if k >= WARM_UP:
            timings.append(elapsed)
            packages.append(shipped)
    return Latency(
        nodes=len(HUBS) + STORES,
        orders=orders,
        p50_ms=float(np.percentile(timings, 50)),
        p99_ms=float(np.percentile(timings, 99)),
        max_ms=float(np.max(timings)),
        mean_packages=float(np.mean(packages)),
    )


def _store_sites(rng: np.random.Generator) -> list[GeoPoint]:
    """Stores in the big cities, the biggest getting several, a few km apart."""
    cities = top_us_cities()
    sites = []
    for i in range(STORES):
        city = cities[i % len(cities)].location
        sites.append(
            GeoPoint(
                lat=city.lat + float(rng.normal(0, 0.05)), lon=city.lon + float(rng.normal(0, 0.05))
            )
        )
    return sites


def _network(
    rng: np.random.Generator, stores: list[GeoPoint], skus: list[str]
) -> list[CandidateNode]:
    """Sparse stock, so that five-line orders often need two or three packages and the search
    has real work to do: a centre holds each SKU with probability 0.5, a store 0.25."""
    centres = [
        CandidateNode(
            node_id=name,
            node_type=NodeType.WAREHOUSE,
            location=GeoPoint(lat=lat, lon=lon),
            can_ship=True,
            can_pickup=False,
            available=_stock(rng, skus, 0.5, 40),
        )
        for name, lat, lon in HUBS
    ]
    shops = [
        CandidateNode(
            node_id=f"ST-{i:03d}",
            node_type=NodeType.STORE,
            location=site,
            can_ship=True,
            can_pickup=True,
            available=_stock(rng, skus, 0.25, 3),
        )
        for i, site in enumerate(stores)
    ]
    return centres + shops


def _stock(rng: np.random.Generator, skus: list[str], p: float, most: int) -> dict[str, int]:
    held = rng.random(len(skus)) < p
    units = rng.integers(1, most + 1, len(skus))
    return {s: int(q) for s, q, h in zip(skus, units, held, strict=True) if h}
