"""The allocation policy: the scenario an order is sourced under, whole orders only, and the
promise the order was sold with.

The scenario follows the checkout option the customer chose (fast = fastest by express, economy
= cheapest, pickup = local); an order without one follows its own kind: click & collect is local,
a priority of EXPRESS_PRIORITY (7) or more (paid express, VIP) is fastest, everything else is
cheapest. The optimizer may leave lines unfilled; an order is reserved whole, so a plan with
unfilled lines counts as no plan (unless the caller asks for `partial` plans: the sourcing
benchmark, which serves what it can, and a ship-partial order).

The promise: an order that brings a promised date is planned with it as its requested date, so
the plan the checkout quoted (same scenario, same candidates, same costs) is found again while
stock allows. When stock moved and the plan under the scenario arrives later, the fastest plan
is tried; if it keeps the date it is taken (upgraded to express), else the promise is at risk
and the plan says by when it can arrive.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Protocol

from domain.carriers import EXPRESS_PRIORITY, CarrierService
from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint, distance_km
from domain.network import CandidateNode
from domain.orders import DeliveryMethod, DeliveryOptionCode, OrderLine
from sourcing.errors import NoFeasiblePlan
from sourcing.model import (
    LpClassPlan,
    LpMethod,
    NodeProfile,
    Plan,
    Ruleset,
    Scenario,
    SourcingOrder,
    SourcingPolicy,
    basket_key,
)
from sourcing.optimizer import DEFAULT_POLICY, optimize

OPTION_SCENARIOS = {
    DeliveryOptionCode.HOME_FAST: Scenario.FASTEST,
    DeliveryOptionCode.HOME_ECONOMY: Scenario.CHEAPEST,
    DeliveryOptionCode.PICKUP: Scenario.LOCAL,
    DeliveryOptionCode.PREORDER: Scenario.CHEAPEST,  # shipped from the receipt, the cheapest way
}


class OrderToSource(Protocol):
    """The order as the allocation policy reads it (services.allocation.AllocationRequest)."""

    @property
    def order_id(self) -> str: ...
    @property
    def lines(self) -> list[OrderLine]: ...
    @property
    def destination(self) -> GeoPoint: ...
    @property
    def delivery_method(self) -> DeliveryMethod: ...
    @property
    def pickup_node_id(self) -> str | None: ...
    @property
    def excluded_nodes(self) -> list[str]: ...
    @property
    def channel(self) -> str: ...
    @property
    def delivery_option(self) -> DeliveryOptionCode | None: ...
    @property
    def promised_date(self) -> date | None: ...


@dataclass(frozen=True, slots=True)
class ChosenShipment:
    node_id: str
    lines: list[OrderLine]
    carrier: CarrierService | None = None
    ship_by: date | None = None
    promised_date: date | None = None


@dataclass(frozen=True, slots=True)
class ChosenPlan:
    shipments: list[ChosenShipment]
    explanation: str
    promised_date: date | None = None
    # Later than the order's promised date: no plan could keep it.
    at_risk: bool = False
    # Lines no node serves: only ever non-empty for a `partial` plan.
    unfilled_lines: list[OrderLine] = field(default_factory=list)


def scenario_for(
    priority: int, delivery_method: DeliveryMethod, option: DeliveryOptionCode | None = None
) -> Scenario:
    if option is not None:
        return OPTION_SCENARIOS[option]
    if delivery_method == DeliveryMethod.PICKUP:
        return Scenario.LOCAL
    if priority >= EXPRESS_PRIORITY:
        return Scenario.FASTEST
    return Scenario.CHEAPEST


def sourcing_order(
    request: OrderToSource, priority: int, now: datetime, scenario: Scenario | None = None
) -> SourcingOrder:
    return SourcingOrder(
        order_id=request.order_id,
        lines=request.lines,
        destination=request.destination,
        delivery_method=request.delivery_method,
        pickup_node_id=request.pickup_node_id,
        scenario=scenario
        or scenario_for(priority, request.delivery_method, request.delivery_option),
        priority=priority,
        excluded_nodes=request.excluded_nodes,
        requested_date=request.promised_date,
        now=now,
        channel=request.channel or None,
    )


def choose_sources(
    request: OrderToSource,
    candidates: Sequence[NodeProfile | CandidateNode],
    priority: int,
    now: datetime,
    policy: SourcingPolicy = DEFAULT_POLICY,
    ruleset: Ruleset | None = None,
    *,
    partial: bool = False,
) -> ChosenPlan:
    """Raises NoSourceAvailable (naming the lines) when the order cannot be served whole; with
    `partial`, returns the plan with its unfilled lines instead (every line, when no node can
    serve any)."""
    order = sourcing_order(request, priority, now)
    followed = follow_lp(order, candidates, policy, ruleset)
    if followed is not None:
        plan = followed[0]
    elif partial:
        try:
            plan = optimize(order, candidates, policy, ruleset)
        except NoFeasiblePlan:
            return ChosenPlan([], "no node can serve any line", unfilled_lines=list(order.lines))
    else:
        plan = _whole(order, candidates, policy, ruleset)
    promise = request.promised_date
    if promise is None or _keeps(plan, promise):
        return _chosen(plan, plan.explanation, at_risk=False)
    if order.scenario != Scenario.FASTEST:
        fastest = order.model_copy(update={"scenario": Scenario.FASTEST})
        try:
            quick = _whole(fastest, candidates, policy, ruleset)
        except NoSourceAvailable:
            quick = None
        if quick is not None and _keeps(quick, promise):
            why = f"{quick.explanation}; by express to keep the promised date {promise}"
            return _chosen(quick, why, at_risk=False)
    why = f"{plan.explanation}; promise at risk: arrives {plan.promised_date}, promised {promise}"
    return _chosen(plan, why, at_risk=True)


def lp_class(order: SourcingOrder, policy: SourcingPolicy) -> LpClassPlan | None:
    """The LP demand class the order belongs to: its basket's, in the nearest region whose point
    lies within the class's radius of the destination. None without `lp_plans`, for any
    scenario but the cheapest (the LP prices cost alone) and for pickups."""
    if not policy.lp_plans or order.scenario != Scenario.CHEAPEST:
        return None
    if order.delivery_method == DeliveryMethod.PICKUP:
        return None
    quantities: dict[str, int] = {}
    for line in order.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    best, best_km = None, float("inf")
    for plan in policy.lp_plans.get(basket_key(quantities), []):
        km = distance_km(order.destination, plan.destination)
        if km <= plan.radius_km and km < best_km:
            best, best_km = plan, km
    return best


def follow_lp(
    order: SourcingOrder,
    candidates: Sequence[NodeProfile | CandidateNode],
    policy: SourcingPolicy,
    ruleset: Ruleset | None = None,
) -> tuple[Plan, LpMethod] | None:
    """The plan that follows the method the fluid LP uses most for the order's class among
    those still feasible: some of the class's LP orders left to it, every SKU in stock at its
    node, no node excluded, and the optimizer (rules, capacity, dates) serving every line from
    exactly those nodes. None when no method is (the caller plans as usual).

    Why: at the LP's exact prices many plans cost the same to an order, and the bid-price
    optimizer picks among them without regard to the others' needs; the LP's own split is
    the one that leaves stock where the rest of the horizon's demand needs it (Jasin & Sinha
    2015, a deterministic variant of their randomised rounding)."""
    cls = lp_class(order, policy)
    if cls is None:
        return None
    by_id = {(c.node if isinstance(c, NodeProfile) else c).node_id: c for c in candidates}
    need: dict[str, int] = {}
    for line in order.lines:
        need[line.sku] = need.get(line.sku, 0) + line.quantity
    excluded = set(order.excluded_nodes)
    for method in cls.methods:
        if method.orders <= 0 or excluded.intersection(method.nodes.values()):
            continue
        restricted = _restricted(method, need, by_id)
        if restricted is None:
            continue
        try:
            plan = optimize(order, restricted, policy, ruleset)
        except NoFeasiblePlan:
            continue
        shipped = {line.sku: s.node_id for s in plan.shipments for line in s.lines}
        if plan.unfilled_lines or shipped != method.nodes:
            continue
        why = f"{plan.explanation}; follows the fluid LP's plan for its class ({cls.region})"
        return plan.model_copy(update={"explanation": why}), method
    return None


def _restricted(
    method: LpMethod,
    need: dict[str, int],
    by_id: dict[str, NodeProfile | CandidateNode],
) -> list[NodeProfile | CandidateNode] | None:
    """The method's nodes, each offering only the SKUs the method takes from it; None when a
    node is not a candidate or is short of a SKU."""
    skus_at: dict[str, dict[str, int]] = {}
    for sku, node_id in method.nodes.items():
        candidate = by_id.get(node_id)
        if candidate is None or sku not in need:
            return None
        node = candidate.node if isinstance(candidate, NodeProfile) else candidate
        if node.available.get(sku, 0) < need[sku]:
            return None
        skus_at.setdefault(node_id, {})[sku] = node.available[sku]
    restricted: list[NodeProfile | CandidateNode] = []
    for node_id, available in skus_at.items():
        candidate = by_id[node_id]
        if isinstance(candidate, NodeProfile):
            node = replace(candidate.node, available=available)
            restricted.append(candidate.model_copy(update={"node": node}))
        else:
            restricted.append(replace(candidate, available=available))
    return restricted


def date_shipments(
    order: SourcingOrder,
    shipments: Sequence[tuple[NodeProfile, list[OrderLine]]],
    policy: SourcingPolicy = DEFAULT_POLICY,
) -> list[ChosenShipment]:
    """Dates for shipments already chosen (a converted hold, an earlier attempt's reservations),
    by the optimizer's own arithmetic: each node priced alone for its lines."""
    dated = []
    for profile, lines in shipments:
        need: dict[str, int] = {}
        for line in lines:
            need[line.sku] = need.get(line.sku, 0) + line.quantity
        node = profile.node
        alone = CandidateNode(
            node.node_id, node.node_type, node.location, True, node.can_pickup, node.priority,
            need,
        )  # fmt: skip
        # Dated as it stands: excluded nodes, capacity and rules decided at planning, not here.
        one = order.model_copy(update={"lines": lines, "excluded_nodes": []})
        single = profile.model_copy(update={"node": alone, "daily_capacity": None})
        plan = optimize(one, [single], policy)
        shipment = plan.shipments[0]
        dated.append(
            ChosenShipment(
                node.node_id, lines, shipment.carrier, shipment.ship_by, shipment.promised_date
            )
        )
    return dated


def _whole(
    order: SourcingOrder,
    candidates: Sequence[NodeProfile | CandidateNode],
    policy: SourcingPolicy,
    ruleset: Ruleset | None,
) -> Plan:
    try:
        plan = optimize(order, candidates, policy, ruleset)
    except NoFeasiblePlan as exc:
        raise NoSourceAvailable(lines=order.lines, excluded_nodes=order.excluded_nodes) from exc
    if plan.unfilled_lines:
        # The order's own lines: a line divided in part is still wanted whole.
        short = {ln.line_no for ln in plan.unfilled_lines}
        lines = [ln for ln in order.lines if ln.line_no in short]
        raise NoSourceAvailable(lines=lines, excluded_nodes=order.excluded_nodes)
    return plan


def _keeps(plan: Plan, promise: date) -> bool:
    return plan.promised_date is not None and plan.promised_date <= promise


def _chosen(plan: Plan, explanation: str, at_risk: bool) -> ChosenPlan:
    return ChosenPlan(
        shipments=[
            ChosenShipment(s.node_id, s.lines, s.carrier, s.ship_by, s.promised_date)
            for s in plan.shipments
        ],
        explanation=explanation,
        promised_date=plan.promised_date,
        at_risk=at_risk,
        unfilled_lines=list(plan.unfilled_lines),
    )
