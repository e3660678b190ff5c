"""How long one bid-price refresh takes (services.bid_prices.refresh_bid_prices: read the order
history and the stock, solve the fluid LP, store the prices), on a fresh SQLite file.

    .venv/bin/python -m benchmarks.bid_price_refresh [--demo-orders 2000] [--seed 1]

Two networks: the demo network (11 nodes, 12 SKUs, stack.demo_data) with `--demo-orders`
recorded orders of 1-3 lines to its 12 customer cities; and the sourcing benchmark's (10
centres, 20 SKUs, 100 US cities, its 4,000-order horizon and its stock at `--supply` x expected
demand), its orders recorded and counted over a window equal to the horizon.
"""

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from benchmarks.sourcing.instance import build_instance
from domain.orders import Order, OrderState, OrderStatus
from ledger import stock
from ledger.db import create_schema, make_engine, transaction
from ledger.orders_view import project
from ledger.tables import Node, Sku
from services.bid_prices import refresh_bid_prices
from stack.demo_data import DEMO_DESTINATIONS, DEMO_SKUS, seed_demo_network

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
WINDOW = timedelta(days=28)


def _order(i: int, lat: float, lon: float, skus: dict[str, int], at: datetime) -> dict:
    order = Order(
        order_id=f"order-web-bench-{i}",
        channel="web",
        external_id=f"bench-{i}",
        order_type="dtc",
        priority=5,
        customer={"customer_id": "C-1"},
        ship_to={"name": "A", "line1": "1 Main St", "city": "X", "postal_code": "1",
                 "country": "US", "location": {"lat": lat, "lon": lon}},
        delivery_method="home",
        lines=[{"line_no": n, "sku": s, "quantity": q}
               for n, (s, q) in enumerate(sorted(skus.items()), start=1)],
        submitted_at=at,
    )  # fmt: skip
    return OrderState(order=order, status=OrderStatus.COMPLETED).model_dump(mode="json")


def _record(engine: Engine, documents: list[dict]) -> None:
    with transaction(engine) as session:
        for document in documents:
            project(session, document)


def demo(folder: Path, orders: int, seed: int) -> Engine:
    engine = make_engine(f"sqlite:///{folder / 'demo.db'}")
    create_schema(engine)
    seed_demo_network(engine, "http://127.0.0.1:8100", seed=seed)
    rng = random.Random(seed)
    skus = sorted(DEMO_SKUS)
    documents = []
    for i in range(orders):
        _, _, lat, lon = rng.choice(DEMO_DESTINATIONS)
        basket = {s: rng.randint(1, 2) for s in rng.sample(skus, rng.randint(1, 3))}
        at = NOW - WINDOW * rng.random()
        documents.append(_order(i, lat, lon, basket, at))
    _record(engine, documents)
    return engine


def benchmark_network(folder: Path, seed: int, supply: float) -> tuple[Engine, int]:
    instance = build_instance(seed, 4000, supply_factor=supply)
    engine = make_engine(f"sqlite:///{folder / f'centres-{seed}.db'}")
    create_schema(engine)
    with transaction(engine) as session:
        session.add_all(Sku(sku=s, name=s) for s in instance.skus)
        session.add_all(
            Node(node_id=n.node_id, name=n.node_id, node_type="warehouse", lat=n.location.lat,
                 lon=n.location.lon, system_url="http://sim")
            for n in instance.nodes
        )  # fmt: skip
        session.flush()
        for i, node in enumerate(instance.nodes):
            for j, sku in enumerate(instance.skus):
                if instance.inventory[i, j] > 0:
                    stock.open_position(session, node.node_id, sku, int(instance.inventory[i, j]))
    step = WINDOW / len(instance.orders)
    documents = []
    for i, order in enumerate(instance.orders):
        city = instance.cities[order.region].location
        basket = {instance.skus[s]: 1 for s in order.skus}
        documents.append(_order(i, city.lat, city.lon, basket, NOW - WINDOW + step * i))
    _record(engine, documents)
    return engine, len(instance.orders)


def _measure(name: str, engine: Engine, horizon: timedelta, repeats: int) -> None:
    for attempt in range(repeats):
        started = time.perf_counter()
        result = refresh_bid_prices(engine, NOW, window=WINDOW, horizon=horizon)
        total = time.perf_counter() - started
        print(
            f"{name} #{attempt + 1}: {result.orders_counted} orders, {result.regions} regions, "
            f"{result.classes} classes, {result.nodes} nodes x {result.skus} SKUs -> "
            f"{result.prices} prices; LP {result.solve_seconds:.2f} s, refresh {total:.2f} s"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-orders", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--supply", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        _measure("demo", demo(Path(folder), args.demo_orders, 1), timedelta(days=7), args.repeats)
        for seed in range(1, args.seeds + 1):
            engine, _ = benchmark_network(Path(folder), seed, args.supply)
            # Horizon = window: the LP sees the benchmark's whole 4,000-order horizon.
            _measure(f"10 centres seed {seed}", engine, WINDOW, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
