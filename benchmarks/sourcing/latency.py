"""Decision time on a 200-node network: 10 fulfilment centres and 190 stores, orders of 1-5 lines.

The nodes are built once per order as the allocation activity receives them (NodeProfiles with
what each node can promise for the order's SKUs); the clock measures the live decision,
`services.allocation.plan_allocation`, with the default policy (handling, store penalties,
promise dates all on) carrying a bid price for every node/SKU pair of the network, so every
unit the search considers pays for its price lookup.
"""

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from benchmarks.sourcing.instance import HUBS, top_us_cities
from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import DeliveryMethod, OrderLine
from services.allocation import AllocationRequest, plan_allocation
from sourcing import DEFAULT_POLICY, NodeProfile, SourcingPolicy

STORES = 190
SKUS = 200
NOW = datetime(2025, 3, 3, 9, 0)
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
    policy = _priced(rng, stores, skus)
    timings: list[float] = []
    packages: list[int] = []
    for k in range(orders + WARM_UP):
        n_lines = int(rng.integers(1, 6))
        chosen = [skus[i] for i in rng.choice(SKUS, n_lines, replace=False)]
        nodes = _network(rng, stores, chosen)
        city = top_us_cities()[int(rng.integers(0, 100))]
        request = AllocationRequest(
            order_id=f"lat-{k}",
            lines=[OrderLine(line_no=i + 1, sku=s, quantity=1) for i, s in enumerate(chosen)],
            destination=city.location,
            delivery_method=DeliveryMethod.HOME,
            priority=int(rng.integers(0, 10)),
        )
        profiles = [NodeProfile.of(n) for n in nodes]
        started = time.perf_counter()
        # Partial, as the benchmark plans: the same search, and packages counted for orders the
        # sparse stock cannot fill whole.
        plan = plan_allocation(request, profiles, NOW, policy, partial=True)
        shipped = len(plan.shipments)
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


def _priced(rng: np.random.Generator, stores: list[GeoPoint], skus: list[str]) -> SourcingPolicy:
    """A bid price on every node/SKU pair (200 x 200), as a re-solve over the whole network
    stores them."""
    node_ids = [name for name, _, _ in HUBS] + [f"ST-{i:03d}" for i in range(len(stores))]
    prices = rng.uniform(0.01, 3.0, (len(node_ids), len(skus)))
    return DEFAULT_POLICY.with_bid_prices(
        {(n, s): float(prices[i, j]) for i, n in enumerate(node_ids) for j, s in enumerate(skus)}
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
