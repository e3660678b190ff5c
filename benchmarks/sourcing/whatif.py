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

Shadow mode on the retailer's own history:

    .venv/bin/python -m benchmarks.sourcing.whatif --database URL --since 2026-11-01 \
        --channel web [--until DATE] [--candidate bid-prices|default] [--limit N]

replays the channel's recorded orders (OrderView documents, oldest first) through the live
allocation's decision (services.allocation.plan_allocation, with the nodes' calendars) twice:
under the policy the channel uses now (services.sourcing_policy.policy_for) and under the
candidate (default: the latest stored bid prices; `default`: DEFAULT_POLICY). Each replay starts
from today's available stock plus what the replayed orders' own reservations took, and each plan
takes its stock. Prints cost paid (the tariff's shipping + handling, the opportunity cost left
out: it is not money), packages per order, promised dates and unfilled units side by side.
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlmodel import Session, col, select

from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint, distance_km
from domain.network import CandidateNode, NodeType
from domain.orders import OrderState
from ledger import stock as ledger_stock
from ledger.availability import channel_pool
from ledger.db import make_engine
from ledger.tables import OrderView, Reservation
from services.allocation import AllocationRequest, plan_allocation
from services.sourcing_inputs import with_calendars
from services.sourcing_policy import latest_prices_policy, policy_for
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
from sourcing.optimizer import DEFAULT_POLICY

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
    if argv is None:
        argv = sys.argv[1:]
    if "--database" in argv:
        return replay_database(_database_arguments(argv))
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


# ------------------------------------------------------------------ shadow mode on the database


@dataclass
class ReplayKpis:
    orders: int = 0
    cost_paid: float = 0.0
    packages: int = 0
    unfilled_units: int = 0
    days_to_promise: list[int] = field(default_factory=list)
    nodes: list[tuple[str, ...]] = field(default_factory=list)
    promised: list[str | None] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        n = max(self.orders, 1)
        days = self.days_to_promise or [0]
        return {
            "orders": self.orders,
            "cost_paid": round(self.cost_paid, 2),
            "cost_per_order": round(self.cost_paid / n, 3),
            "packages_per_order": round(self.packages / n, 3),
            "mean_days_to_promise": round(float(np.mean(days)), 3),
            "unfilled_units": self.unfilled_units,
        }


def replay_database(args: argparse.Namespace) -> int:
    """Shadow mode: the channel's recorded orders under its live policy and a candidate."""
    since = datetime.fromisoformat(args.since).replace(tzinfo=UTC)
    until = datetime.fromisoformat(args.until).replace(tzinfo=UTC) if args.until else None
    engine = make_engine(args.database)
    with Session(engine) as session:  # a read: no write lock on the live database
        query = select(OrderView).where(
            col(OrderView.channel) == args.channel, col(OrderView.created_at) >= since
        )
        if until is not None:
            query = query.where(col(OrderView.created_at) < until)
        views = session.exec(
            query.order_by(col(OrderView.created_at), col(OrderView.order_id)).limit(args.limit)
        ).all()
        states = [OrderState.model_validate(v.document) for v in views]
        ids = [s.order.order_id for s in states]
        taken: dict[tuple[str, str], int] = {}
        for chunk in range(0, len(ids), 500):
            for r in session.exec(
                select(Reservation).where(
                    col(Reservation.order_id).in_(ids[chunk : chunk + 500]),
                    col(Reservation.status) != "released",
                )
            ):
                taken[(r.node_id, r.sku)] = taken.get((r.node_id, r.sku), 0) + r.quantity
        skus = sorted({ln.sku for s in states for ln in s.order.lines})
        pool = channel_pool(session, args.channel)
        candidates = ledger_stock.candidate_nodes(session, skus, pool) if skus else []
        profiles, now = with_calendars(session, candidates, datetime.now(UTC))
        live = policy_for(session, args.channel)
        run_id, priced = latest_prices_policy(session)
    engine.dispose()
    candidate = priced if args.candidate == "bid-prices" else DEFAULT_POLICY
    start = {(p.node_id, sku): q for p in profiles for sku, q in p.node.available.items()}
    for key, units in taken.items():
        start[key] = start.get(key, 0) + units
    requests = [
        AllocationRequest(
            order_id=s.order.order_id,
            lines=s.order.lines,
            destination=s.order.ship_to.location,
            delivery_method=s.order.delivery_method,
            channel=s.order.channel,
            priority=s.order.priority,
            pickup_node_id=s.order.pickup_node_id,
            delivery_option=s.order.delivery_option,
        )
        for s in states
    ]
    results = {
        name: _replay(requests, profiles, now, policy, dict(start))
        for name, policy in (("live", live), ("candidate", candidate))
    }
    run = f", run {run_id}" if run_id and args.candidate == "bid-prices" else ""
    label = {
        "live": "live (bid prices)" if live.bid_prices else "live (default)",
        "candidate": f"candidate ({args.candidate}{run})",
    }
    print(f"{len(requests)} orders of channel {args.channel} since {args.since}")
    rows = {name: kpis.summary() for name, kpis in results.items()}
    print(f"{'':24}  {label['live']:>24}  {label['candidate']:>44}")
    for key in rows["live"]:
        print(f"{key:24}  {rows['live'][key]:>24}  {rows['candidate'][key]:>44}")
    a, b = results["live"], results["candidate"]
    moved = sum(x != y for x, y in zip(a.nodes, b.nodes, strict=True))
    dated = sum(x != y for x, y in zip(a.promised, b.promised, strict=True))
    print(f"orders sourced from other nodes: {moved}; with another promised date: {dated}")
    if args.out:
        document = {"labels": label, "kpis": rows, "orders": ids}
        Path(args.out).write_text(json.dumps(document, indent=2))
    return 0


def _replay(
    requests: list[Any],
    profiles: list[NodeProfile],
    now: datetime,
    policy: SourcingPolicy,
    stock: dict[tuple[str, str], int],
) -> ReplayKpis:
    """Each order through the live decision on the stock the earlier ones left."""
    kpis = ReplayKpis()
    tariff = SourcingPolicy()
    for request in requests:
        current = [
            p.model_copy(update={"node": replace(p.node, available=_left(stock, p.node))})
            for p in profiles
        ]
        by_node = {p.node_id: p for p in current}
        kpis.orders += 1
        try:
            plan = plan_allocation(request, current, now, policy)
        except NoSourceAvailable:
            kpis.unfilled_units += sum(ln.quantity for ln in request.lines)
            kpis.nodes.append(())
            kpis.promised.append(None)
            continue
        for shipment in plan.shipments:
            node = by_node[shipment.node_id].node
            km = distance_km(node.location, request.destination)
            units = sum(ln.quantity for ln in shipment.lines)
            kpis.cost_paid += tariff.package_cost + units * (
                tariff.unit_cost
                + tariff.unit_cost_per_km * km
                + tariff.handling_rate(node.node_type)
            )
            for line in shipment.lines:
                stock[(shipment.node_id, line.sku)] -= line.quantity
        kpis.packages += len(plan.shipments)
        kpis.unfilled_units += sum(ln.quantity for ln in plan.unfilled_lines)
        kpis.nodes.append(tuple(sorted(s.node_id for s in plan.shipments)))
        kpis.promised.append(plan.promised_date.isoformat() if plan.promised_date else None)
        if plan.promised_date is not None:
            kpis.days_to_promise.append((plan.promised_date - now.date()).days)
    return kpis


def _left(stock: dict[tuple[str, str], int], node: CandidateNode) -> dict[str, int]:
    return {sku: stock.get((node.node_id, sku), 0) for sku in node.available}


def _database_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="what-if on the recorded orders of a channel")
    parser.add_argument("--database", required=True, help="the ledger's database URL")
    parser.add_argument("--since", required=True, help="ISO date: orders created from then")
    parser.add_argument("--until", help="ISO date: orders created before then")
    parser.add_argument("--channel", required=True)
    parser.add_argument("--candidate", choices=["bid-prices", "default"], default="bid-prices")
    parser.add_argument("--limit", type=int, default=10_000, help="orders replayed at most")
    parser.add_argument("--out", help="write both policies' KPIs as JSON here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
