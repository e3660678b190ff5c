"""Re-solve the inventory-aware policy's bid prices from recent demand and current stock.

Demand is the order history in the orders read model (ledger.bid_prices.order_history: one row
per order at intake, backorders included, re-allocations not double-counted), counted by
destination region and basket over the window and scaled to the horizon the stock on hand must
last. Stock is what each active shipping node has available now. The LP (sourcing.bid_prices,
pure) prices each (node, SKU); the prices and a run row are stored in one transaction, replacing
the previous prices. services.sourcing_policy serves them to inventory-aware channels.

The prices stored are the new LP's averaged with those in force (sourcing.bid_prices.
smoothed_bid_prices, `smoothing` of the old): with stock close to demand the LP's duals jump
between equally optimal vertices from one re-solve to the next, and the average decides better
(benchmarks/README.md). A refresh for a time no later than the prices in force changes nothing,
so a retried refresh does not average twice.

Bounded, so one run takes seconds, never the worker's timeout:
- at most MAX_ORDERS orders (the newest of the window);
- only SKUs with demand in the window, at most MAX_SKUS of them (the most ordered units);
- baskets of more than MAX_BASKET_SKUS SKUs count as one class per SKU (the LP's pricing step is
  exponential in a class's SKUs), and at most MAX_CLASSES (region, basket) classes: the least
  frequent beyond it count per SKU too, which only loses their consolidation;
- regions are REGION_DEGREES x REGION_DEGREES cells of latitude and longitude (about 110 km), each
  costed from the centroid of its orders: at most one region per cell that had an order.
"""

import logging
import math
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session

from domain.geo import GeoPoint, distance_km
from domain.network import CandidateNode
from ledger import bid_prices as store
from ledger import stock
from ledger.db import transaction
from ledger.tables import BidPriceRun
from services.sourcing_policy import forget_cached_policies
from sourcing.bid_prices import (
    DEFAULT_SMOOTHING,
    DemandClass,
    FluidLpFailed,
    smoothed_bid_prices,
    solve_fluid_lp,
)
from sourcing.model import SourcingPolicy
from sourcing.optimizer import DEFAULT_POLICY

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(days=28)
# How long the stock on hand has to last: a week's replenishment cycle. Demand counted over the
# window is scaled by horizon / window.
DEFAULT_HORIZON = timedelta(days=7)
MAX_ORDERS = 200_000
MAX_SKUS = 2_000
MAX_BASKET_SKUS = 4
MAX_CLASSES = 20_000
REGION_DEGREES = 1.0


class BidPriceRefresh(BaseModel):
    """What one refresh counted and stored."""

    run_id: str
    status: str
    orders_counted: int
    regions: int
    classes: int
    nodes: int
    skus: int
    prices: int = 0
    solve_seconds: float = 0.0
    error: str | None = None


Region = tuple[int, int]


def region_of(lat: float, lon: float) -> Region:
    return (math.floor(lat / REGION_DEGREES), math.floor(lon / REGION_DEGREES))


def region_name(region: Region) -> str:
    return f"cell:{region[0]}:{region[1]}"


def refresh_bid_prices(
    engine: Engine,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    horizon: timedelta = DEFAULT_HORIZON,
    policy: SourcingPolicy = DEFAULT_POLICY,
    smoothing: float = DEFAULT_SMOOTHING,
) -> BidPriceRefresh:
    """One re-solve: read the window's orders and the stock, solve, store the run and prices
    (averaged with those in force)."""
    start = now - window
    # A read, not ledger.db.transaction: that is a write transaction (SQLite's write lock), and
    # allocations must not queue behind reading a month of orders.
    with Session(engine) as session:
        in_force = store.latest_run(session)
        if in_force is not None and _aware(in_force.solved_at) >= _aware(now):
            return _already_refreshed(in_force, store.prices_of(session, in_force.run_id))
        in_force_prices = store.prices_of(session, in_force.run_id) if in_force else {}
        history = store.order_history(session, start, now, MAX_ORDERS)
        demand, centroids, skus = demand_classes(history, horizon / window)
        nodes = [n for n in stock.candidate_nodes(session, skus) if n.can_ship] if skus else []
    inventory = {(n.node_id, sku): float(q) for n in nodes for sku, q in n.available.items()}
    run = BidPriceRun(
        run_id=f"bp-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        solved_at=now,
        window_start=start,
        window_end=now,
        orders_counted=len(history),
        nodes=len({n for n, _ in inventory}),
        skus=len(skus),
    )
    prices: dict[tuple[str, str], float] = {}
    started = time.perf_counter()
    try:
        if demand and inventory:
            prices = solve_fluid_lp(
                demand,
                inventory,
                lane_costs(nodes, centroids, policy),
                policy.package_cost,
                policy.unserved_unit_penalty,
            ).bid_prices
            prices = smoothed_bid_prices(in_force_prices, prices, smoothing)
        run.status = store.RUN_OK
    except FluidLpFailed as exc:
        run.status, run.error = store.RUN_FAILED, str(exc)
        log.warning("bid prices not refreshed, previous ones stay: %s", exc)
    run.solve_seconds = round(time.perf_counter() - started, 4)
    with transaction(engine) as session:
        store.store_run(session, run, prices)
    forget_cached_policies()  # this process serves the new prices at once; others within seconds
    return BidPriceRefresh(
        run_id=run.run_id,
        status=run.status,
        orders_counted=run.orders_counted,
        regions=len(centroids),
        classes=len(demand),
        nodes=run.nodes,
        skus=run.skus,
        prices=sum(1 for p in prices.values() if p > 0),
        solve_seconds=run.solve_seconds,
        error=run.error,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _already_refreshed(run: BidPriceRun, prices: dict[tuple[str, str], float]) -> BidPriceRefresh:
    """The run in force answers a refresh for its time or an earlier one (a retry, a late run)."""
    return BidPriceRefresh(
        run_id=run.run_id,
        status=run.status,
        orders_counted=run.orders_counted,
        regions=0,
        classes=0,
        nodes=run.nodes,
        skus=run.skus,
        prices=len(prices),
        solve_seconds=run.solve_seconds,
    )


def demand_classes(
    history: list[store.HistoryOrder], scale: float
) -> tuple[list[DemandClass], dict[str, GeoPoint], list[str]]:
    """The LP's demand classes (expected orders over the horizon), each region's centroid, and
    the SKUs counted (see the module's bounds)."""
    units: Counter[str] = Counter()
    for order in history:
        units.update(order.skus)
    kept = {sku for sku, _ in units.most_common(MAX_SKUS)}
    baskets: Counter[tuple[Region, tuple[tuple[str, int], ...]]] = Counter()
    points: dict[Region, list[tuple[float, float]]] = defaultdict(list)
    for order in history:
        basket = tuple(sorted((s, q) for s, q in order.skus.items() if s in kept))
        if not basket:
            continue
        region = region_of(order.lat, order.lon)
        points[region].append((order.lat, order.lon))
        if len(basket) > MAX_BASKET_SKUS:
            baskets.update((region, (line,)) for line in basket)
        else:
            baskets[(region, basket)] += 1
    if len(baskets) > MAX_CLASSES:
        # Half the room for the most frequent baskets; the rest count per SKU, and what still
        # does not fit (the rarest region x SKU pairs) is left out.
        ranked = baskets.most_common()
        merged = Counter(dict(ranked[: MAX_CLASSES // 2]))
        for (region, basket), count in ranked[MAX_CLASSES // 2 :]:
            for line in basket:
                merged[(region, (line,))] += count
        baskets = Counter(dict(merged.most_common(MAX_CLASSES)))
    demand = [
        DemandClass(region=region_name(region), skus=dict(basket), expected_orders=count * scale)
        for (region, basket), count in sorted(baskets.items())
    ]
    centroids = {
        region_name(region): GeoPoint(
            lat=sum(p[0] for p in pts) / len(pts), lon=sum(p[1] for p in pts) / len(pts)
        )
        for region, pts in points.items()
    }
    return demand, centroids, sorted(kept)


def lane_costs(
    nodes: list[CandidateNode], centroids: dict[str, GeoPoint], policy: SourcingPolicy
) -> dict[tuple[str, str], float]:
    """One unit from a node to a region, as the optimizer's cheapest scenario prices it:
    shipping by distance, the node type's handling and (for stores) the store penalty."""
    return {
        (node.node_id, region): policy.unit_cost
        + policy.unit_cost_per_km * distance_km(node.location, centre)
        + policy.handling_rate(node.node_type)
        + policy.store_penalty_rate(node.node_type)
        for node in nodes
        for region, centre in centroids.items()
    }
