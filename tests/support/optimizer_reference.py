"""A frozen copy of sourcing/optimizer.py at commit fbe1241 (imports adjusted only): the
reference the faster optimizer is proved equal to in tests/unit/test_optimizer_equivalence.py
and timed against in benchmarks/optimizer_micro.py. Do not improve it.

Per-order sourcing: the cheapest plan over the nodes a ruleset leaves, with its runner-ups.

Decisions, in one place:
- A line ships whole from one node; quantities are never divided between nodes. `allow_split`
  and `max_splits` bound how many nodes (shipments) one order may use.
- A line no eligible node can serve whole (within the split limit) is returned in
  `Plan.unfilled_lines`, priced at the policy's unserved-unit penalty; the caller backorders it.
  Only when no line at all can be served is NoFeasiblePlan raised. A line some node can serve
  is never left unfilled to save cost, unless the policy asks to ration stock (ration_stock).
- Rules are tried in order; the first whose plan fills every line wins. When none does, the plan
  with the fewest unfilled units is returned (the earliest rule on ties).
- A node at its daily capacity is skipped, whatever its type.
- Click & collect: the pickup store's own stock is collected in store (no parcel, no transit);
  other nodes ship to the store. In the local scenario the pickup store alone serves the order
  when it holds every line.
- The search is exact within a budget of evaluations (see search.py), then greedy.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from domain.carriers import EXPRESS_PRIORITY, LONG_HAUL_KM, CarrierService, choose_carrier_service
from domain.geo import EARTH_RADIUS_KM, GeoPoint
from domain.network import CandidateNode
from domain.orders import DeliveryMethod, OrderLine
from sourcing.costs import (
    CostTerms,
    UnitRates,
    line_terms,
    package_terms,
    unit_rates,
    unserved_cost,
)
from sourcing.errors import NoFeasiblePlan
from sourcing.explain import explain
from sourcing.model import (
    DEFAULT_CALENDAR,
    Alternative,
    CostBreakdown,
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
from sourcing.promise import add_carrier_days, ship_date, transit_days_many
from sourcing.rules import DEFAULT_RULESET, distance_rejection, rejection, shipment_limit
from tests.support.search_reference import UNFILLED, SearchProblem, Solution, search

DEFAULT_POLICY = SourcingPolicy()
DEFAULT_BUDGET = SearchBudget()
# Added, inside the search only, to leaving a line unfilled that some node could serve, so that
# serving comes first and cost second (see SourcingPolicy.ration_stock).
SERVE_FIRST = 1e6


@dataclass
class _Candidates:
    """The nodes left for one rule, as arrays: every candidate is priced at once."""

    nodes: list[CandidateNode]
    stock: np.ndarray  # (candidate, sku of the order in sorted order)
    km: np.ndarray
    collect: np.ndarray
    carriers: list[CarrierService]
    promised: list[date]
    ship_by: list[date]
    package: CostTerms  # of arrays, one entry per candidate
    rates: UnitRates  # of arrays

    def __len__(self) -> int:
        return len(self.nodes)

    def only(self, keep: list[int]) -> "_Candidates":
        return _Candidates(
            nodes=[self.nodes[i] for i in keep],
            stock=self.stock[keep],
            km=self.km[keep],
            collect=self.collect[keep],
            carriers=[self.carriers[i] for i in keep],
            promised=[self.promised[i] for i in keep],
            ship_by=[self.ship_by[i] for i in keep],
            package=CostTerms(*(term[keep] for term in self.package)),
            rates=UnitRates(*(rate[keep] for rate in self.rates)),
        )


_Entry = tuple[CandidateNode, NodeProfile | None]


def optimize(
    order: SourcingOrder,
    nodes: Sequence[NodeProfile | CandidateNode],
    policy: SourcingPolicy = DEFAULT_POLICY,
    ruleset: Ruleset | None = None,
    budget: SearchBudget = DEFAULT_BUDGET,
) -> Plan:
    """The plan for one order. Raises NoFeasiblePlan when no line can be served at all.

    A bare CandidateNode is costed with the policy's defaults for its type."""
    ruleset = ruleset or DEFAULT_RULESET
    entries: list[_Entry] = [
        (n.node, n) if isinstance(n, NodeProfile) else (n, None) for n in nodes
    ]
    entries.sort(key=lambda e: (e[0].priority, e[0].node_id))
    point = _delivery_point(order, entries)
    partial: list[Plan] = []
    reasons: dict[str, list[str]] = {}
    for position, rule in enumerate(ruleset.rules):
        candidates, rejected = _candidates(order, entries, policy, rule, point)
        for node_id, reason in rejected.items():
            reasons.setdefault(node_id, []).append(reason)
        if not len(candidates):
            continue
        earlier = [r.name for r in ruleset.rules[:position]]
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


def _delivery_point(order: SourcingOrder, entries: list[_Entry]) -> GeoPoint:
    """Where parcels go: the customer, or for click & collect the pickup store (when the caller
    passed it among the nodes; otherwise `destination` is taken to be the store's address)."""
    if order.delivery_method == DeliveryMethod.PICKUP:
        store = next((n for n, _ in entries if n.node_id == order.pickup_node_id), None)
        if store is not None:
            return store.location
    return order.destination


def _candidates(
    order: SourcingOrder,
    entries: list[_Entry],
    policy: SourcingPolicy,
    rule: Rule,
    point: GeoPoint,
) -> tuple[_Candidates, dict[str, str]]:
    pickup_id = order.pickup_node_id if order.delivery_method == DeliveryMethod.PICKUP else None
    kept, rows, rejected = _eligible(order, entries, rule, pickup_id)
    stock = np.array(rows, dtype=float).reshape(len(kept), len(_skus(order)))
    km = _distances_km([n.location for n, _ in kept], point)
    is_pickup = np.array([n.node_id == pickup_id for n, _ in kept], dtype=bool)
    km[is_pickup] = 0.0  # the parcel is already where it is going
    if rule.max_distance_km is not None:
        too_far = (km > rule.max_distance_km) & ~is_pickup
        for i in np.flatnonzero(too_far):
            rejected[kept[i][0].node_id] = distance_rejection(rule, float(km[i]))
        near = np.flatnonzero(~too_far)
        kept, km, is_pickup = [kept[i] for i in near], km[near], is_pickup[near]
        stock = stock[near]
    collect = is_pickup & np.array([n.can_pickup for n, _ in kept], dtype=bool)
    candidates = _priced(order, kept, policy, km, collect, stock)
    return _local_pickup(order, candidates), rejected


def _eligible(
    order: SourcingOrder, entries: list[_Entry], rule: Rule, pickup_id: str | None
) -> tuple[list[_Entry], list[list[int]], dict[str, str]]:
    """The nodes the rule leaves, with their stock of the order's SKUs (in `_skus` order)."""
    kept: list[_Entry] = []
    stock: list[list[int]] = []
    rejected: dict[str, str] = {}
    skus = _skus(order)
    wanted = [(skus.index(ln.sku), ln.quantity) for ln in order.lines]
    for node, profile in entries:
        reason = rejection(order, rule, node, profile, node.node_id == pickup_id)
        if reason is not None:
            rejected[node.node_id] = reason
            continue
        row = [node.available.get(sku, 0) for sku in skus]
        if any(row[i] >= q for i, q in wanted):
            kept.append((node, profile))
            stock.append(row)
        else:
            rejected[node.node_id] = "holds none of the lines"
    return kept, stock, rejected


def _skus(order: SourcingOrder) -> list[str]:
    return sorted({ln.sku for ln in order.lines})


def _distances_km(locations: list[GeoPoint], point: GeoPoint) -> np.ndarray:
    """Haversine, as domain.geo.distance_km, for many nodes at once."""
    lat = np.radians([p.lat for p in locations])
    lon = np.radians([p.lon for p in locations])
    lat0, lon0 = np.radians(point.lat), np.radians(point.lon)
    h = np.sin((lat0 - lat) / 2) ** 2 + np.cos(lat) * np.cos(lat0) * np.sin((lon0 - lon) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(h))


def _priced(
    order: SourcingOrder,
    kept: list[_Entry],
    policy: SourcingPolicy,
    km: np.ndarray,
    collect: np.ndarray,
    stock: np.ndarray,
) -> _Candidates:
    weights = policy.weights(order.scenario)
    carriers = _carriers(order, km, collect)
    ship_by, promised = _promised(order, kept, policy, km, carriers)
    today = order.now.date()
    to_deliver = np.array([(d - today).days for d in promised], dtype=float)
    late = np.zeros(len(kept))
    if order.requested_date is not None:
        late = np.array([max((d - order.requested_date).days, 0) for d in promised], dtype=float)
    profiles = [p for _, p in kept]
    handling = [
        policy.handling_rate(n.node_type, p.handling_cost_per_unit if p else None) for n, p in kept
    ]
    store = [
        policy.store_penalty_rate(n.node_type, p.store_penalty_per_unit if p else None)
        for n, p in kept
    ]
    collected = collect.astype(float)
    package = package_terms(
        policy,
        weights,
        collected,
        np.array([p.reliability.rejection_rate if p else 0.0 for p in profiles]),
        np.array([p.reliability.lateness_rate if p else 0.0 for p in profiles]),
        to_deliver,
        late,
    )
    rates = unit_rates(policy, weights, np.array(handling), np.array(store), km, collected)
    return _Candidates(
        nodes=[n for n, _ in kept],
        stock=stock,
        km=km,
        collect=collect,
        carriers=carriers,
        promised=promised,
        ship_by=ship_by,
        package=CostTerms(*(np.broadcast_to(t, km.shape).astype(float) for t in package)),
        rates=UnitRates(*(np.broadcast_to(r, km.shape).astype(float) for r in rates)),
    )


def _carriers(order: SourcingOrder, km: np.ndarray, collect: np.ndarray) -> list[CarrierService]:
    """The domain's carrier choice, asked once per kind of shipment rather than per node."""
    seen: dict[tuple[bool, bool], CarrierService] = {}
    carriers = []
    # The fastest scenario goes by express, whatever the order's priority: it is what the
    # checkout's fast option sells (orders sourced fastest by priority are express already).
    priority = order.priority
    if order.scenario == Scenario.FASTEST:
        priority = max(priority, EXPRESS_PRIORITY)
    for distance, at_store in zip(km.tolist(), collect.tolist(), strict=True):
        key = (distance > LONG_HAUL_KM, at_store)
        if key not in seen:
            seen[key] = choose_carrier_service(priority, distance, order.delivery_method, at_store)
        carriers.append(seen[key])
    return carriers


def _promised(
    order: SourcingOrder,
    kept: list[_Entry],
    policy: SourcingPolicy,
    km: np.ndarray,
    carriers: list[CarrierService],
) -> tuple[list[date], list[date]]:
    """Ship dates and promised dates: ship date per calendar, carrier days per service, each
    worked out once per order."""
    days = np.zeros(len(kept), dtype=int)
    for carrier in {id(c): c for c in carriers}.values():
        same = np.array([c is carrier for c in carriers], dtype=bool)
        days[same] = transit_days_many(policy.transit, carrier, km[same])
    starts: dict[int, date] = {}
    arrivals: dict[tuple[date, int], date] = {}
    promised = []
    ship_by = []
    for (_, profile), transit in zip(kept, days.tolist(), strict=True):
        calendar = profile.calendar if profile is not None else DEFAULT_CALENDAR
        start = starts.get(id(calendar))
        if start is None:
            start = starts[id(calendar)] = ship_date(order.now, calendar)
        arrival = arrivals.get((start, transit))
        if arrival is None:
            arrival = arrivals[(start, transit)] = add_carrier_days(start, transit)
        promised.append(arrival)
        ship_by.append(start)
    return ship_by, promised


def _local_pickup(order: SourcingOrder, candidates: _Candidates) -> _Candidates:
    if order.scenario != Scenario.LOCAL or order.delivery_method != DeliveryMethod.PICKUP:
        return candidates
    store = next((i for i in range(len(candidates)) if candidates.collect[i]), None)
    if store is not None and _holds_all(candidates.nodes[store], order.lines):
        return candidates.only([store])
    return candidates


def _holds_all(node: CandidateNode, lines: list[OrderLine]) -> bool:
    need: dict[str, int] = {}
    for line in lines:
        need[line.sku] = need.get(line.sku, 0) + line.quantity
    return all(node.available.get(sku, 0) >= qty for sku, qty in need.items())


def _best_plan(
    order: SourcingOrder,
    candidates: _Candidates,
    policy: SourcingPolicy,
    rule: Rule,
    budget: SearchBudget,
    rejected: dict[str, str],
    earlier_rules: list[str],
) -> Plan:
    problem, surcharge = _problem(order, candidates, policy, rule)
    exact = len(order.lines) <= budget.max_exact_lines
    result = search(problem, budget.alternatives + 1, budget.max_evaluations, exact)
    best, *others = [_without_surcharge(s, surcharge) for s in result.ranked]
    if not policy.ration_stock:
        # Turning away a line the chosen plan serves is no alternative an operator would take.
        others = [o for o in others if not o.unfilled_mask & ~best.unfilled_mask]
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
            scenario=order.scenario,
            rule=rule.name,
            shipments=shipments,
            unfilled_line_nos=[ln.line_no for ln in unfilled],
            total_cost=total,
            alternatives=alternatives,
            skipped_at_capacity=skipped,
            earlier_rules=earlier_rules,
            exhaustive=result.exhaustive,
        ),
        alternatives=alternatives,
        rule=rule.name,
        exhaustive=result.exhaustive,
        evaluated=result.evaluated,
    )


def _without_surcharge(solution: Solution, surcharge: list[float]) -> Solution:
    mask = solution.unfilled_mask
    extra = sum(s for i, s in enumerate(surcharge) if mask >> i & 1)
    return Solution(cost=solution.cost - extra, groups=solution.groups)


def _problem(
    order: SourcingOrder, candidates: _Candidates, policy: SourcingPolicy, rule: Rule
) -> tuple[SearchProblem, list[float]]:
    """The search's arrays, and the serve-first surcharge its unfilled costs carry per line."""
    sku_index = {sku: i for i, sku in enumerate(_skus(order))}
    stock = candidates.stock
    line_sku = [sku_index[ln.sku] for ln in order.lines]
    qty = np.array([ln.quantity for ln in order.lines], dtype=float)
    costs = qty[None, :] * (candidates.rates.total[:, None] + _bids(order, candidates, policy))
    servable = (stock[:, line_sku] >= qty[None, :]).any(axis=0)
    surcharge = [
        0.0 if policy.ration_stock or not can else SERVE_FIRST * ln.quantity
        for ln, can in zip(order.lines, servable.tolist(), strict=True)
    ]
    unfilled = [
        unserved_cost(policy, ln) + extra for ln, extra in zip(order.lines, surcharge, strict=True)
    ]
    problem = SearchProblem(
        package=np.asarray(candidates.package.total, dtype=float),
        line_cost=costs,
        unfilled=np.array(unfilled, dtype=float),
        stock=stock,
        line_sku=line_sku,
        line_qty=[ln.quantity for ln in order.lines],
        limit=shipment_limit(order, rule),
        split_group_ok=_min_value_check(order, rule),
    )
    return problem, surcharge


def _bids(order: SourcingOrder, candidates: _Candidates, policy: SourcingPolicy) -> np.ndarray:
    if not policy.bid_prices:
        return np.zeros((len(candidates), len(order.lines)))
    return np.array(
        [
            [policy.bid_price(node.node_id, ln.sku) for ln in order.lines]
            for node in candidates.nodes
        ]
    ).reshape(len(candidates), len(order.lines))


def _min_value_check(order: SourcingOrder, rule: Rule) -> Callable[[int], bool] | None:
    minimum = rule.min_shipment_value
    if minimum is None:
        return None
    values = [order.line_value(ln) for ln in order.lines]

    def worth_a_package(mask: int) -> bool:
        return sum(v for i, v in enumerate(values) if mask >> i & 1) >= minimum

    return worth_a_package


def _shipments(
    order: SourcingOrder, candidates: _Candidates, policy: SourcingPolicy, best: Solution
) -> list[SourcedShipment]:
    shipments = []
    for cand, mask in best.groups:
        if cand == UNFILLED:
            continue
        node = candidates.nodes[cand]
        rates = candidates.rates.at(cand)
        lines = [ln for i, ln in enumerate(order.lines) if mask >> i & 1]
        terms = candidates.package.at(cand)
        for ln in lines:
            terms = terms.plus(
                line_terms(rates, ln.quantity, policy.bid_price(node.node_id, ln.sku))
            )
        shipments.append(
            SourcedShipment(
                node_id=node.node_id,
                node_type=node.node_type,
                lines=lines,
                distance_km=round(float(candidates.km[cand]), 1),
                carrier=candidates.carriers[cand],
                promised_date=candidates.promised[cand],
                ship_by=candidates.ship_by[cand],
                cost=CostBreakdown(**{k: round(v, 4) for k, v in terms._asdict().items()}),
            )
        )
    return shipments


def _alternative(
    order: SourcingOrder, candidates: _Candidates, best: Solution, other: Solution
) -> Alternative:
    return Alternative(
        node_ids=sorted(candidates.nodes[c].node_id for c in other.candidates),
        total_cost=round(other.cost, 4),
        cost_difference=round(other.cost - best.cost, 4),
        unfilled_line_nos=[
            ln.line_no for i, ln in enumerate(order.lines) if other.unfilled_mask >> i & 1
        ],
    )
