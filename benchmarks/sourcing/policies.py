"""The policies the benchmark compares: two baselines written independently of the optimizer,
and OpenDOM's live allocation decision without and with LP bid prices."""

import itertools
import time
from dataclasses import replace
from datetime import datetime
from typing import Protocol

import numpy as np

from benchmarks.sourcing.instance import PACKAGE_COST, Instance, Order
from domain.network import CandidateNode, NodeType
from domain.orders import DeliveryMethod, OrderLine
from services.allocation import AllocationRequest, plan_allocation
from sourcing import NodeProfile, SourcingPolicy
from sourcing.allocation import ChosenShipment
from sourcing.bid_prices import (
    DEFAULT_SMOOTHING,
    FluidSolution,
    class_plans,
    smoothed_bid_prices,
    solve_fluid_lp,
)
from sourcing.model import MILES_PER_KM, LpClassPlan, basket_key

NOW = datetime(2025, 3, 3, 9, 0)

Assignment = list[int | None]  # per item of the order: node index, or None when unfilled


class Policy(Protocol):
    name: str

    def start(self, instance: Instance) -> None: ...

    def before_order(self, t: int, inventory: np.ndarray) -> None: ...

    def decide(self, order: Order, inventory: np.ndarray) -> Assignment: ...


def tariff_policy(instance: Instance) -> SourcingPolicy:
    """The benchmark charges only the parcel tariff: no handling, store or reliability terms."""
    return SourcingPolicy(
        package_cost=PACKAGE_COST,
        unit_cost=0.423,
        unit_cost_per_km=0.000541 * MILES_PER_KM,
        unserved_unit_penalty=instance.unserved_unit_penalty,
        handling_cost_per_unit={t: 0.0 for t in NodeType},
        store_penalty_per_unit=0.0,
        rejection_cost=0.0,
        lateness_cost=0.0,
        late_day_cost=0.0,
    )


class NearestPerItem:
    """Baseline: every item from the nearest centre that has it (items that meet share a box)."""

    name = "nearest node per item (baseline)"

    def start(self, instance: Instance) -> None:
        self.instance = instance

    def before_order(self, t: int, inventory: np.ndarray) -> None:
        pass

    def decide(self, order: Order, inventory: np.ndarray) -> Assignment:
        km = self.instance.km[:, order.region]
        picks: Assignment = []
        for sku in order.skus:
            holders = np.flatnonzero(inventory[:, sku] >= 1)
            picks.append(int(holders[np.argmin(km[holders])]) if holders.size else None)
        return picks


class MyopicBruteForce:
    """Baseline: the per-order optimum found by trying every set of centres (vectorised)."""

    name = "myopic per-order optimum (baseline)"

    def start(self, instance: Instance) -> None:
        self.instance = instance
        n = len(instance.nodes)
        subsets = [()]
        for size in range(1, 6):
            subsets += list(itertools.combinations(range(n), size))
        self.sizes = np.array([len(s) for s in subsets])
        self.masks = np.zeros((len(subsets), n), dtype=bool)
        for row, subset in enumerate(subsets):
            self.masks[row, list(subset)] = True
        self.cost = np.array(
            [[instance.unit_cost(j, c) for c in range(len(instance.cities))] for j in range(n)]
        )

    def before_order(self, t: int, inventory: np.ndarray) -> None:
        pass

    def decide(self, order: Order, inventory: np.ndarray) -> Assignment:
        skus = list(order.skus)
        pen = self.instance.unserved_unit_penalty
        item_cost = np.where(
            inventory[:, skus] >= 1, self.cost[:, order.region][:, None], np.inf
        )  # (node, item)
        usable = self.sizes <= len(skus)
        masks = self.masks[usable]
        per_item = np.where(masks[:, :, None], item_cost[None], np.inf).min(axis=1)
        per_item = np.minimum(per_item, pen)
        totals = PACKAGE_COST * self.sizes[usable] + per_item.sum(axis=1)
        best = masks[int(np.argmin(totals))]  # subsets are listed smallest first
        picks: Assignment = []
        for item in range(len(skus)):
            costs = np.where(best, item_cost[:, item], np.inf)
            node = int(np.argmin(costs))
            picks.append(node if costs[node] < pen else None)
        return picks


class OpenDomOptimizer:
    """OpenDOM's live allocation decision, `services.allocation.plan_allocation`, with the
    benchmark's tariff as the channel's policy: one AllocationRequest per order and the
    centres' NodeProfiles from the simulated stock, nothing else in between. Orders are planned
    `partial` (the benchmark serves what it can; live allocation reserves whole orders).

    With `resolve_every` set, LP bid prices are recomputed at that fraction of the horizon from
    the remaining stock and the remaining expected demand, as the live Schedule re-solves from
    recent demand and current stock, and the policy carries them (`with_bid_prices`), averaged
    with the prices in force as the live refresh stores them (`smoothing`, its default).

    With `follow_lp` the policy also carries the LP's methods per demand class (`lp_plans`), and
    an order follows the one its class uses most that stock can still serve. Between re-solves
    each order that followed a method takes one order off that method's share, as the live
    Schedule would count the allocations made since it stored the plans.
    """

    def __init__(
        self,
        name: str,
        resolve_every: float | None = None,
        initial: FluidSolution | None = None,
        follow_lp: bool = False,
        smoothing: float = DEFAULT_SMOOTHING,
    ) -> None:
        """`initial`: the LP already solved for the start of the horizon (the bound's LP)."""
        self.name = name
        self.resolve_every = resolve_every
        self.initial = initial
        self.follow_lp = follow_lp
        self.smoothing = smoothing
        self.lp_seconds = 0.0
        self.lp_solves = 0

    def start(self, instance: Instance) -> None:
        self.instance = instance
        self.base = tariff_policy(instance)
        self.policy = self.base
        self.lanes = instance.lane_costs()
        self.lp_seconds = 0.0
        self.lp_solves = 0
        self.previous: FluidSolution | None = None
        self.prices: dict[tuple[str, str], float] = {}
        n = len(instance.orders)
        step = max(1, round(n * self.resolve_every)) if self.resolve_every else None
        self.resolve_at = set(range(0, n, step)) if step else set()
        self.templates = [
            CandidateNode(
                node_id=node.node_id,
                node_type=NodeType.WAREHOUSE,
                location=node.location,
                can_ship=True,
                can_pickup=False,
                available={},
            )
            for node in instance.nodes
        ]
        self.index = {node.node_id: i for i, node in enumerate(instance.nodes)}
        self.points = {city.name: city.location for city in instance.cities}
        self.classes: dict[tuple[str, str], LpClassPlan] = {}

    def before_order(self, t: int, inventory: np.ndarray) -> None:
        if t not in self.resolve_at:
            return
        if t == 0 and self.initial is not None:
            solution = self.initial
        else:
            started = time.perf_counter()
            solution = solve_fluid_lp(
                self.instance.expected_classes(t),
                self.instance.inventory_map(inventory),
                self.lanes,
                PACKAGE_COST,
                self.instance.unserved_unit_penalty,
                warm_start=self.previous,
            )
            self.lp_seconds += time.perf_counter() - started
            self.lp_solves += 1
        self.previous = solution
        # As the live refresh stores them: averaged with the prices in force (t = 0: none).
        self.prices = smoothed_bid_prices(self.prices, solution.bid_prices, self.smoothing)
        self.policy = self.base.with_bid_prices(self.prices)
        if self.follow_lp:
            demand = self.instance.expected_classes(t)
            plans = class_plans(solution, demand, self.points)
            self.policy = self.policy.model_copy(update={"lp_plans": plans})
            self.classes = {(c.region, key): c for key, cs in plans.items() for c in cs}

    def decide(self, order: Order, inventory: np.ndarray) -> Assignment:
        plan = plan_allocation(
            self._request(order), self._profiles(order, inventory), NOW, self.policy, partial=True
        )
        picks: Assignment = [None] * len(order.skus)
        for shipment in plan.shipments:
            for line in shipment.lines:
                picks[line.line_no - 1] = self.index[shipment.node_id]
        if self.classes:
            self._count_followed(order, plan.shipments)
        return picks

    def _count_followed(self, order: Order, shipments: list[ChosenShipment]) -> None:
        skus = self.instance.skus
        key = basket_key({skus[s]: 1 for s in order.skus})
        cls = self.classes.get((self.instance.cities[order.region].name, key))
        if cls is None:
            return
        shipped = {line.sku: s.node_id for s in shipments for line in s.lines}
        for method in cls.methods:
            if method.nodes == shipped:
                method.orders = max(0.0, method.orders - 1.0)
                return

    def _request(self, order: Order) -> AllocationRequest:
        skus = self.instance.skus
        return AllocationRequest(
            order_id=order.order_id,
            lines=[
                OrderLine(line_no=i + 1, sku=skus[s], quantity=1) for i, s in enumerate(order.skus)
            ],
            destination=self.instance.cities[order.region].location,
            delivery_method=DeliveryMethod.HOME,
            channel="benchmark",
        )

    def _profiles(self, order: Order, inventory: np.ndarray) -> list[NodeProfile]:
        skus = self.instance.skus
        return [
            NodeProfile.of(
                replace(template, available={skus[s]: int(inventory[n, s]) for s in order.skus})
            )
            for n, template in enumerate(self.templates)
        ]
