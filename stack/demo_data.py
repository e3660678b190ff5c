"""The demo network: warehouses, a DC, stores, a 3PL and a supplier across the US, with SKUs and
stock. Seeding is idempotent: existing rows are left as they are."""

import random
from dataclasses import dataclass

from sqlalchemy import Engine

from ledger.db import transaction
from ledger.stock import open_position
from ledger.tables import Node, Sku, StockPosition


@dataclass(frozen=True)
class DemoNode:
    node_id: str
    name: str
    node_type: str
    lat: float
    lon: float
    can_pickup: bool = False


DEMO_NODES = [
    DemoNode("WH-RENO", "Reno fulfilment centre", "warehouse", 39.5296, -119.8138),
    DemoNode("WH-MEMPHIS", "Memphis fulfilment centre", "warehouse", 35.1495, -90.0490),
    DemoNode("WH-ALLENTOWN", "Allentown fulfilment centre", "warehouse", 40.6023, -75.4714),
    DemoNode("DC-DALLAS", "Dallas regional DC", "dc", 32.7767, -96.7970),
    DemoNode("3PL-ATLANTA", "Atlanta 3PL", "3pl", 33.7490, -84.3880),
    DemoNode("SUP-COLUMBUS", "Columbus supplier (drop-ship)", "supplier", 39.9612, -82.9988),
    DemoNode("ST-NYC", "Store New York 5th Ave", "store", 40.7549, -73.9840, can_pickup=True),
    DemoNode("ST-CHICAGO", "Store Chicago Loop", "store", 41.8818, -87.6231, can_pickup=True),
    DemoNode("ST-LA", "Store Los Angeles Grove", "store", 34.0719, -118.3575, can_pickup=True),
    DemoNode("ST-SF", "Store San Francisco Union Sq", "store", 37.7880, -122.4075, can_pickup=True),
    DemoNode("ST-SEATTLE", "Store Seattle Pike", "store", 47.6097, -122.3422, can_pickup=True),
]

DEMO_SKUS = {
    "TEE-WHT-M": ("Organic tee, white, M", 19.0),
    "TEE-BLK-L": ("Organic tee, black, L", 19.0),
    "HOODIE-GRY-M": ("Hoodie, grey, M", 59.0),
    "JEANS-32-32": ("Slim jeans 32/32", 79.0),
    "SNEAKER-42": ("Court sneaker 42", 99.0),
    "SNEAKER-44": ("Court sneaker 44", 99.0),
    "CAP-NAVY": ("Cap, navy", 25.0),
    "SOCKS-3PK": ("Socks, 3-pack", 12.0),
    "JACKET-RAIN-L": ("Rain jacket, L", 149.0),
    "BAG-TOTE": ("Canvas tote bag", 29.0),
    "BOTTLE-750": ("Steel bottle 750 ml", 32.0),
    "BEANIE-RED": ("Beanie, red", 22.0),
}

# Customers the demo orders ship to (city centres).
DEMO_DESTINATIONS = [
    ("New York", "10001", 40.7128, -74.0060),
    ("Los Angeles", "90012", 34.0522, -118.2437),
    ("Chicago", "60601", 41.8781, -87.6298),
    ("Houston", "77002", 29.7604, -95.3698),
    ("Phoenix", "85004", 33.4484, -112.0740),
    ("Philadelphia", "19103", 39.9526, -75.1652),
    ("San Antonio", "78205", 29.4241, -98.4936),
    ("San Diego", "92101", 32.7157, -117.1611),
    ("Denver", "80202", 39.7392, -104.9903),
    ("Seattle", "98101", 47.6062, -122.3321),
    ("Boston", "02108", 42.3601, -71.0589),
    ("Miami", "33131", 25.7617, -80.1918),
]


def seed_demo_network(engine: Engine, simulator_url: str, seed: int = 42) -> int:
    """Insert the demo network if absent; returns how many stock positions were created."""
    rng = random.Random(seed)
    created = 0
    with transaction(engine) as session:
        for sku, (name, price) in DEMO_SKUS.items():
            if session.get(Sku, sku) is None:
                session.add(Sku(sku=sku, name=name, unit_price=price))
        for demo in DEMO_NODES:
            if session.get(Node, demo.node_id) is None:
                session.add(_node(demo, simulator_url))
        session.flush()
        for demo in DEMO_NODES:
            for sku in DEMO_SKUS:
                if session.get(Node, demo.node_id) and not _has_position(
                    session, demo.node_id, sku
                ):
                    on_hand, safety = _opening_stock(demo, rng)
                    open_position(session, demo.node_id, sku, on_hand, safety_override=safety)
                    created += 1
    return created


def _node(demo: DemoNode, simulator_url: str) -> Node:
    return Node(
        node_id=demo.node_id,
        name=demo.name,
        node_type=demo.node_type,
        lat=demo.lat,
        lon=demo.lon,
        can_ship=True,
        can_pickup=demo.can_pickup,
        daily_capacity=200 if demo.node_type == "store" else 5000,
        priority=50 if demo.node_type in ("warehouse", "dc") else 100,
        system_url=f"{simulator_url}/nodes/{demo.node_id}",
    )


def _has_position(session, node_id: str, sku: str) -> bool:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    query = select(StockPosition).where(StockPosition.node_id == node_id, StockPosition.sku == sku)
    return session.exec(query).first() is not None


def _opening_stock(demo: DemoNode, rng: random.Random) -> tuple[int, int]:
    if demo.node_type == "store":
        return rng.choice([0, 2, 5, 8, 12]), 1
    return rng.randint(150, 600), 5
