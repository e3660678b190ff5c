"""What-if: run a batch of orders through the optimizer against a network and its stock.

    .venv/bin/python -m benchmarks.sourcing.whatif NETWORK.json INVENTORY.json ORDERS.json \\
        [--policy myopic|bid-prices] [--resolve-every N] [--out plans.json]

Orders are sourced one after another and each plan takes its stock, as the live system would.
Prints one line per order and the KPIs (total cost, packages per order, single-package share,
unfilled units, p50/p99 decision time); `--out` writes every plan and the KPIs as JSON. See
benchmarks/sourcing/examples/ for the three files' shapes.

NETWORK.json: {"nodes": [{"node_id", "node_type", "lat", "lon", "can_ship", "can_pickup",
  "priority"?, "handling_cost_per_unit"?, "store_penalty_per_unit"?, "daily_capacity"?,
  "current_load"?, "reliability"?, "calendar"?}], "policy"?: SourcingPolicy fields,
  "rulesets"?: [Ruleset], "regions"?: [{"name", "lat", "lon"}],
  "forecast"?: [{"region", "skus": {sku: units}, "expected_orders"}]}
INVENTORY.json: {node_id: {sku: units}}
ORDERS.json: {"now": ISO datetime, "orders": [SourcingOrder fields without "now"]}
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from domain.geo import GeoPoint, distance_km
from domain.network import CandidateNode, NodeType
from sourcing import (
    DemandClass,
    NodeProfile,
    NoFeasiblePlan,
    Plan,
    ProcessingCalendar,
    Reliability,
    Ruleset,
    SourcingOrder,
    SourcingPolicy,
    optimize,
    select_ruleset,
    solve_fluid_lp,
)
from sourcing.bid_prices import FluidSolution

PROFILE_FIELDS = ("handling_cost_per_unit", "store_penalty_per_unit", "daily_capacity")


class Region(BaseModel):
    name: str
    lat: float
    lon: float


class Network(BaseModel):
    nodes: list[dict[str, Any]]
    policy: SourcingPolicy = SourcingPolicy()
    rulesets: list[Ruleset] = []
    regions: list[Region] = []
    forecast: list[DemandClass] = []


@dataclass
class Batch:
    """The network as the batch goes: stock and daily load move with every plan."""

    network: Network
    stock: dict[str, dict[str, int]]
    load: dict[str, int] = field(default_factory=dict)

    def profiles(self) -> list[NodeProfile]:
        return [self._profile(spec) for spec in self.network.nodes]

    def _profile(self, spec: dict[str, Any]) -> NodeProfile:
        node_id = spec["node_id"]
        node = CandidateNode(
            node_id=node_id,
            node_type=NodeType(spec["node_type"]),
            location=GeoPoint(lat=spec["lat"], lon=spec["lon"]),
            can_ship=spec.get("can_ship", True),
            can_pickup=spec.get("can_pickup", False),
            priority=spec.get("priority", 100),
            available=dict(self.stock.get(node_id, {})),
        )
        return NodeProfile(
            node=node,
            current_load=spec.get("current_load", 0) + self.load.get(node_id, 0),
            reliability=Reliability(**spec.get("reliability", {})),
            calendar=ProcessingCalendar(**spec.get("calendar", {})),
            **{k: spec[k] for k in PROFILE_FIELDS if k in spec},
        )

    def take(self, plan: Plan) -> None:
        for shipment in plan.shipments:
            self.load[shipment.node_id] = self.load.get(shipment.node_id, 0) + 1
            held = self.stock.setdefault(shipment.node_id, {})
            for line in shipment.lines:
                held[line.sku] = held.get(line.sku, 0) - line.quantity


@dataclass
class Kpis:
    orders: int = 0
    total_cost: float = 0.0
    packages: int = 0
    single_package_orders: int = 0
    unfilled_units: int = 0
    decision_ms: list[float] = field(default_factory=list)

    def add(self, plan: Plan | None, units: int, ms: float) -> None:
        self.orders += 1
        self.decision_ms.append(ms)
        if plan is None:
            self.unfilled_units += units
            return
        self.total_cost += plan.total_cost
        self.packages += plan.packages
        self.single_package_orders += plan.packages == 1
        self.unfilled_units += plan.unfilled_units

    def summary(self) -> dict[str, float]:
        n = max(self.orders, 1)
        ms = self.decision_ms or [0.0]
        return {
            "orders": self.orders,
            "total_cost": round(self.total_cost, 2),
            "packages_per_order": round(self.packages / n, 3),
            "single_package_share": round(self.single_package_orders / n, 3),
            "unfilled_units": self.unfilled_units,
            "p50_decision_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_decision_ms": round(float(np.percentile(ms, 99)), 3),
        }


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    network = Network.model_validate_json(Path(args.network).read_text())
    stock = json.loads(Path(args.inventory).read_text())
    batch_file = json.loads(Path(args.orders).read_text())
    now = datetime.fromisoformat(batch_file["now"])
    orders = [SourcingOrder(now=now, **o) for o in batch_file["orders"]]
    plans, kpis = run(network, stock, orders, args.policy, args.resolve_every)
    for order, plan in zip(orders, plans, strict=True):
        print(f"{order.order_id}: {plan.explanation if plan else 'no node can serve any line'}")
    summary = kpis.summary()
    print(json.dumps({"policy": args.policy, **summary}, indent=2))
    if args.out:
        document = {
            "policy": args.policy,
            "kpis": summary,
            "plans": [p.model_dump(mode="json") if p else None for p in plans],
        }
        Path(args.out).write_text(json.dumps(document, indent=2))
    return 0


def run(
    network: Network,
    stock: dict[str, dict[str, int]],
    orders: list[SourcingOrder],
    policy_name: str,
    resolve_every: int,
) -> tuple[list[Plan | None], Kpis]:
    batch = Batch(network, {node: dict(skus) for node, skus in stock.items()})
    kpis = Kpis()
    plans: list[Plan | None] = []
    policy = network.policy
    previous: FluidSolution | None = None
    for i, order in enumerate(orders):
        if policy_name == "bid-prices" and i % max(resolve_every, 1) == 0:
            previous = _bid_prices(network, batch.stock, len(orders) - i, len(orders), previous)
            policy = network.policy.with_bid_prices(previous.bid_prices)
        ruleset = select_ruleset(network.rulesets, order.channel, order.order_type)
        nodes = batch.profiles()
        started = time.perf_counter()
        try:
            plan: Plan | None = optimize(order, nodes, policy, ruleset)
        except NoFeasiblePlan:
            plan = None
        kpis.add(plan, sum(ln.quantity for ln in order.lines), _ms_since(started))
        if plan is not None:
            batch.take(plan)
        plans.append(plan)
    return plans, kpis


def _bid_prices(
    network: Network,
    stock: dict[str, dict[str, int]],
    remaining: int,
    total: int,
    previous: FluidSolution | None,
) -> FluidSolution:
    """The forecast covers the whole batch; what is left of it is the remaining share."""
    if not network.forecast or not network.regions:
        raise SystemExit("--policy bid-prices needs 'regions' and 'forecast' in the network file")
    share = remaining / total
    demand = [
        d.model_copy(update={"expected_orders": d.expected_orders * share})
        for d in network.forecast
    ]
    inventory = {(n, s): float(q) for n, skus in stock.items() for s, q in skus.items()}
    policy = network.policy
    lanes = {
        (spec["node_id"], region.name): policy.unit_cost
        + policy.unit_cost_per_km
        * distance_km(
            GeoPoint(lat=spec["lat"], lon=spec["lon"]), GeoPoint(lat=region.lat, lon=region.lon)
        )
        for spec in network.nodes
        if spec.get("can_ship", True)
        for region in network.regions
    }
    return solve_fluid_lp(
        demand,
        inventory,
        lanes,
        policy.package_cost,
        policy.unserved_unit_penalty,
        warm_start=previous,
    )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network")
    parser.add_argument("inventory")
    parser.add_argument("orders")
    parser.add_argument("--policy", choices=["myopic", "bid-prices"], default="myopic")
    parser.add_argument("--resolve-every", type=int, default=50, help="orders between LP solves")
    parser.add_argument("--out", help="write plans and KPIs as JSON here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
