"""Test networks: every test builds its own nodes and SKUs (unique ids), so tests sharing one
database and one stack never see each other's stock."""

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ledger.db import transaction
from ledger.stock import open_position
from ledger.tables import Node, Sku

# Coordinates around Lyon; the customer in tests lives in the city centre.
CUSTOMER = {"lat": 45.7640, "lon": 4.8357}


@dataclass
class TestNetwork:
    prefix: str
    nodes: dict[str, str] = field(default_factory=dict)  # short name -> node id
    skus: dict[str, str] = field(default_factory=dict)  # short name -> sku

    def node(self, name: str) -> str:
        return self.nodes[name]

    def sku(self, name: str) -> str:
        return self.skus[name]


def build_network(
    engine: Engine,
    simulator_url: str,
    nodes: dict[str, dict],
    stock: dict[tuple[str, str], int],
) -> TestNetwork:
    """nodes: name -> {type, km_east, can_pickup, accept_sla_seconds...}; stock: (node, sku) -> units."""
    net = TestNetwork(prefix=uuid.uuid4().hex[:8])
    with transaction(engine) as session:
        for name, spec in nodes.items():
            node_id = f"{name}-{net.prefix}"
            net.nodes[name] = node_id
            spec = dict(spec)
            km_east = spec.pop("km_east", 0.0)
            session.add(
                Node(
                    node_id=node_id,
                    name=f"Test {name}",
                    node_type=spec.pop("type", "warehouse"),
                    lat=CUSTOMER["lat"],
                    lon=CUSTOMER["lon"] + km_east / 78.0,  # ~78 km per degree at this latitude
                    system_url=f"{simulator_url}/nodes/{node_id}",
                    **spec,
                )
            )
        for sku_name in sorted({sku for _, sku in stock}):
            sku = f"{sku_name}-{net.prefix}"
            net.skus[sku_name] = sku
            session.add(Sku(sku=sku, name=f"Test {sku_name}"))
        session.flush()
        for (node_name, sku_name), units in stock.items():
            open_position(session, net.nodes[node_name], net.skus[sku_name], units)
    return net
