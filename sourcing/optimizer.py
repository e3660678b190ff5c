"""Per-order sourcing: the cheapest plan over the nodes a ruleset leaves, with its runner-ups.

Decisions, in one place:
- A line ships whole from one node; quantities are never divided between nodes. `allow_split`
  and `max_splits` bound how many nodes (shipments) one order may use.
- A line no eligible node can serve whole is returned in `Plan.unfilled_lines` (priced at the
  policy's unserved-unit penalty, which is also what lets the optimizer ration scarce stock when
  bid prices exceed it). Only when no line at all can be served is NoFeasiblePlan raised.
- Rules are tried in order; the first whose plan fills every line wins. When none does, the plan
  with the fewest unfilled units is returned (the earliest rule on ties).
- A node at its daily capacity is skipped, whatever its type.
- Click & collect: the pickup store's own stock is collected in store (no parcel, no transit);
  other nodes ship to the store. In the local scenario the pickup store alone serves the order
  when it holds every line.
- The search is exact within a budget of evaluations (see search.py), then greedy.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from domain.carriers import LONG_HAUL_KM, CarrierService, choose_carrier_service
from domain.geo import GeoPoint, distance_km
from domain.orders import DeliveryMethod, OrderLine
from sourcing.costs import (
    CostTerms,
    UnitRates,
    line_cost,
    line_terms,
    package_terms,
    unit_rates,
    unserved_cost,
)
from sourcing.errors import NoFeasiblePlan
from sourcing.explain import explain
from sourcing.model import (
    Alternative,
    NodeProfile,
    Plan,
    Rule,
    Ruleset,
    Scenario,
    SearchBudget,
    SourcedShipment,
    SourcingOrder,
    SourcingPolicy,
)
from sourcing.promise import add_carrier_days, ship_date, transit_days
from sourcing.rules import DEFAULT_RULESET, rejection, shipment_limit
from sourcing.search import UNFILLED, SearchProblem, Solution, search

DEFAULT_POLICY = SourcingPolicy()
DEFAULT_BUDGET = SearchBudget()


@dataclass(frozen=True)
class _Candidate:
    profile: NodeProfile
    distance_km: float
    collect: bool
    carrier: CarrierService
    promised: date
    package: CostTerms
    rates: UnitRates


def optimize(
    order: SourcingOrder,
    nodes: Sequence[NodeProfile],
    policy: SourcingPolicy = DEFAULT_POLICY,
    ruleset: Ruleset | None = None,
    budget: SearchBudget = DEFAULT_BUDGET,
) -> Plan:
    """The plan for one order. Raises NoFeasiblePlan when no line can be served at all."""
    ruleset = ruleset or DEFAULT_RULESET
    point = _delivery_point(order, nodes)
    ordered = sorted(nodes, key=lambda p: (p.node.priority, p.node_id))
    partial: list[Plan] = []
    reasons: dict[str, list[str]] = {}
    for rule in ruleset.rules:
        candidates, rejected = _candidates(order, ordered, policy, rule, point)
        for node_id, reason in rejected.items():
            reasons.setdefault(node_id, []).append(reason)
        if not candidates:
            continue
        earlier = [r.name for r in ruleset.rules[: ruleset.rules.index(rule)]]
        plan = _best_plan(order, candidates, policy, rule, budget, rejected, earlier)
        if not plan.unfilled_lines:
            return plan
        partial.append(plan)
    served = [p for p in partial if p.shipments]
    if not served:
        raise NoFeasiblePlan(
            lines=list(order.lines),
            excluded_nodes=list(order.excluded_nodes),
            rejected_nodes={node: "; ".join(dict.fromkeys(r)) for node, r in reasons.items()},
            ruleset=ruleset.name,
        )
    return min(served, key=lambda p: (p.unfilled_units, round(p.total_cost, 6)))


def _delivery_point(order: SourcingOrder, nodes: Sequence[NodeProfile]) -> GeoPoint:
    """Where parcels go: the customer, or for click & collect the pickup store (when the caller
    passed it among the nodes; otherwise `destination` is taken to be the store's address)."""
    if order.delivery_method == DeliveryMethod.PICKUP:
        store = next((p for p in nodes if p.node_id == order.pickup_node_id), None)
        if store is not None:
            return store.node.location
    return order.destination


def _candidates(
    order: SourcingOrder,
    nodes: Sequence[NodeProfile],
    policy: SourcingPolicy,
    rule: Rule,
    point: GeoPoint,
) -> tuple[list[_Candidate], dict[str, str]]:
    weights = policy.weights(order.scenario)
    carriers: dict[tuple[bool, bool], CarrierService] = {}
    starts: dict[tuple, date] = {}
    candidates: list[_Candidate] = []
    rejected: dict[str, str] = {}
    for profile in nodes:
        is_pickup_store = (
            order.delivery_method == DeliveryMethod.PICKUP
            and profile.node_id == order.pickup_node_id
        )
        km = 0.0 if is_pickup_store else distance_km(profile.node.location, point)
        reason = rejection(order, rule, profile, km, is_pickup_store)
        if reason is None and not any(_holds(profile, ln) for ln in order.lines):
            reason = "holds none of the lines"
        if reason is not None:
            rejected[profile.node_id] = reason
            continue
        collect = is_pickup_store and profile.node.can_pickup
        key = (km > LONG_HAUL_KM, collect)
        if key not in carriers:
            carriers[key] = choose_carrier_service(order.priority, km, order.delivery_method, collect)
        carrier = carriers[key]
        calendar_key = profile.calendar.key()
        if calendar_key not in starts:
            starts[calendar_key] = ship_date(order.now, profile.calendar)
        promised = add_carrier_days(starts[calendar_key], transit_days(policy.transit, carrier, km))
        days_late = (promised - order.requested_date).days if order.requested_date else 0
        package = package_terms(
            policy, weights, profile, collect, (promised - order.now.date()).days, max(days_late, 0)
        )
        rates = unit_rates(policy, weights, profile, km, collect)
        candidates.append(_Candidate(profile, km, collect, carrier, promised, package, rates))
    return _local_pickup(order, candidates), rejected


def _local_pickup(order: SourcingOrder, candidates: list[_Candidate]) -> list[_Candidate]:
    if order.scenario != Scenario.LOCAL or order.delivery_method != DeliveryMethod.PICKUP:
        return candidates
    store = next((c for c in candidates if c.collect), None)
    if store is not None and _holds_all(store.profile, order.lines):
        return [store]
    return candidates


def _holds(profile: NodeProfile, line: OrderLine) -> bool:
    return profile.node.available.get(line.sku, 0) >= line.quantity


def _holds_all(profile: NodeProfile, lines: list[OrderLine]) -> bool:
    need: dict[str, int] = {}
    for line in lines:
        need[line.sku] = need.get(line.sku, 0) + line.quantity
    return all(profile.node.available.get(sku, 0) >= qty for sku, qty in need.items())


def _best_plan(
    order: SourcingOrder,
    candidates: list[_Candidate],
    policy: SourcingPolicy,
    rule: Rule,
    budget: SearchBudget,
    rejected: dict[str, str],
    earlier_rules: list[str],
) -> Plan:
    problem = _problem(order, candidates, policy, rule)
    exact = len(order.lines) <= budget.max_exact_lines
    result = search(problem, budget.alternatives + 1, budget.max_evaluations, exact)
    best, *others = result.ranked
    shipments = _shipments(order, candidates, policy, best)
    unfilled = [ln for i, ln in enumerate(order.lines) if best.unfilled_mask >> i & 1]
    unfilled_cost = sum(unserved_cost(policy, ln) for ln in unfilled)
    total = round(sum(s.cost.total for s in shipments) + unfilled_cost, 4)
    alternatives = [_alternative(order, candidates, best, other) for other in others]
    skipped = {n: r for n, r in rejected.items() if r.startswith("at daily capacity")}
    return Plan(
        order_id=order.order_id,
        shipments=shipments,
        unfilled_lines=unfilled,
        unfilled_cost=round(unfilled_cost, 4),
        total_cost=total,
        promised_date=max((s.promised_date for s in shipments), default=None),
        explanation=explain(
            order.scenario, rule.name, shipments, [ln.line_no for ln in unfilled], total,
            alternatives, skipped, earlier_rules, result.exhaustive,
        ),  # fmt: skip
        alternatives=alternatives,
        rule=rule.name,
        exhaustive=result.exhaustive,
        evaluated=result.evaluated,
    )


def _problem(
    order: SourcingOrder, candidates: list[_Candidate], policy: SourcingPolicy, rule: Rule
) -> SearchProblem:
    skus = sorted({ln.sku for ln in order.lines})
    sku_index = {sku: i for i, sku in enumerate(skus)}
    stock = np.array(
        [[c.profile.node.available.get(sku, 0) for sku in skus] for c in candidates], dtype=float
    ).reshape(len(candidates), len(skus))
    costs = np.array(
        [
            [
                line_cost(c.rates, ln.quantity, policy.bid_price(c.profile.node_id, ln.sku))
                for ln in order.lines
            ]
            for c in candidates
        ]
    ).reshape(len(candidates), len(order.lines))
    return SearchProblem(
        package=np.array([c.package.total for c in candidates], dtype=float),
        line_cost=costs,
        unfilled=np.array([unserved_cost(policy, ln) for ln in order.lines], dtype=float),
        stock=stock,
        line_sku=[sku_index[ln.sku] for ln in order.lines],
        line_qty=[ln.quantity for ln in order.lines],
        limit=shipment_limit(order, rule),
        split_group_ok=_min_value_check(order, rule),
    )


def _min_value_check(order: SourcingOrder, rule: Rule):  # noqa: ANN202 - a closure or None
    minimum = rule.min_shipment_value
    if minimum is None:
        return None
    values = [order.line_value(ln) for ln in order.lines]

    def worth_a_package(mask: int) -> bool:
        return sum(v for i, v in enumerate(values) if mask >> i & 1) >= minimum

    return worth_a_package


def _shipments(
    order: SourcingOrder, candidates: list[_Candidate], policy: SourcingPolicy, best: Solution
) -> list[SourcedShipment]:
    shipments = []
    for cand, mask in best.groups:
        if cand == UNFILLED:
            continue
        c = candidates[cand]
        lines = [ln for i, ln in enumerate(order.lines) if mask >> i & 1]
        terms = c.package
        for ln in lines:
            bid = policy.bid_price(c.profile.node_id, ln.sku)
            terms = terms.plus(line_terms(c.rates, ln.quantity, bid))
        shipments.append(
            SourcedShipment(
                node_id=c.profile.node_id,
                node_type=c.profile.node.node_type,
                lines=lines,
                distance_km=round(c.distance_km, 1),
                carrier=c.carrier,
                promised_date=c.promised,
                cost=terms.breakdown(),
            )
        )
    return shipments


def _alternative(
    order: SourcingOrder, candidates: list[_Candidate], best: Solution, other: Solution
) -> Alternative:
    return Alternative(
        node_ids=sorted(candidates[c].profile.node_id for c in other.candidates),
        total_cost=round(other.cost, 4),
        cost_difference=round(other.cost - best.cost, 4),
        unfilled_line_nos=[
            ln.line_no for i, ln in enumerate(order.lines) if other.unfilled_mask >> i & 1
        ],
    )
