"""Per-order sourcing: the cheapest plan over the nodes a ruleset leaves, with its runner-ups.

Decisions, in one place:
- A line ships whole from one node when an eligible node holds it. A line none holds whole is
  divided between nodes (sourcing/splits.py; SourcingPolicy.split_lines): its pieces are lines
  of the same line number, searched like any line, and a shipment's pieces of one line are one
  line again. `allow_split` and `max_splits` bound how many nodes (shipments) one order may use.
- What no eligible node can serve (within the split limit) is returned in `Plan.unfilled_lines`
  (a whole line, or the part of a divided one the nodes lack), priced at the policy's
  unserved-unit penalty; the caller backorders it.
  Only when no line at all can be served is NoFeasiblePlan raised. A line some node can serve
  is never left unfilled to save cost, unless the policy asks to ration stock (ration_stock).
- Rules are tried in order; the first whose plan fills every line wins. When none does, the plan
  with the fewest unfilled units is returned (the earliest rule on ties).
- A node at its daily capacity is skipped, whatever its type.
- Click & collect: the pickup store's own stock is collected in store (no parcel, no transit);
  other nodes ship to the store. In the local scenario the pickup store alone serves the order
  when it holds every line.
- The search is exact within a budget of evaluations (see search.py), then greedy.

How it is fast (the checkout asks three scenarios per cart over a couple of hundred nodes): the
nodes are read once into arrays (`NodeArrays`), every rule filter, distance, carrier, date and
cost is worked out for all of them at once, and the search runs on the exact shortlist of
`search.shortlist` — the handful of nodes it can ever pick — rather than on every candidate.
The plans are the same as the per-node loops of commit fbe1241 gave
(tests/unit/test_optimizer_equivalence.py compares them with a frozen copy).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from operator import attrgetter
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel

from domain.carriers import EXPRESS_PRIORITY, LONG_HAUL_KM, CarrierService, choose_carrier_service
from domain.geo import EARTH_RADIUS_KM, GeoPoint
from domain.network import CandidateNode, NodeType
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
from sourcing.explain import SplitLine, explain
from sourcing.model import (
    DEFAULT_CALENDAR,
    Alternative,
    CostBreakdown,
    NodeProfile,
    Plan,
    ProcessingCalendar,
    Reliability,
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
from sourcing.search import (
    UNFILLED,
    SearchProblem,
    Solution,
    search,
)
from sourcing.splits import divide, merged_lines

DEFAULT_POLICY = SourcingPolicy()
DEFAULT_BUDGET = SearchBudget()
# Added, inside the search only, to leaving a line unfilled that some node could serve, so that
# serving comes first and cost second (see SourcingPolicy.ration_stock).
SERVE_FIRST = 1e6

NODE_TYPES = list(NodeType)
_TYPE_CODE = {t: i for i, t in enumerate(NODE_TYPES)}
STORE_CODE = _TYPE_CODE[NodeType.STORE]
_NO_RELIABILITY = Reliability()
# What a bare CandidateNode is costed with: NodeProfile's defaults.
_NO_PROFILE = (None, None, None, 0, _NO_RELIABILITY, DEFAULT_CALENDAR)
_NODE_FIELDS = attrgetter("node_id", "node_type", "location", "can_ship", "can_pickup", "available")
_PROFILE_FIELDS = attrgetter(
    "handling_cost_per_unit",
    "store_penalty_per_unit",
    "daily_capacity",
    "current_load",
    "reliability",
    "calendar",
)
_LAT_LON = attrgetter("lat", "lon")


@dataclass
class NodeArrays:
    """Every node optimize is given, one entry per node in tie-break order (priority, node id),
    with what sourcing reads of it as arrays. `stock` columns are the order's SKUs, sorted.

    Built from NodeProfile / CandidateNode objects by `node_arrays`, or directly by a caller that
    keeps its network as arrays (the checkout's availability cache)."""

    ids: list[str]
    skus: list[str]  # the stock columns, sorted
    types: np.ndarray  # index into NODE_TYPES
    lat: np.ndarray
    lon: np.ndarray
    can_ship: np.ndarray
    can_pickup: np.ndarray
    stock: np.ndarray  # (node, sku)
    handling: np.ndarray  # per-unit override, NaN: the policy's figure for the type
    store_penalty: np.ndarray  # likewise
    capacity: np.ndarray  # shipments per day, inf: none
    load: np.ndarray
    rejection_rate: np.ndarray
    lateness_rate: np.ndarray
    calendars: list[ProcessingCalendar]
    calendar: np.ndarray  # index into calendars

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class _Candidates:
    """The nodes left for one rule, as arrays: every candidate is priced at once."""

    at: np.ndarray  # index into the NodeArrays
    ids: list[str]
    types: np.ndarray
    stock: np.ndarray  # (candidate, sku of the order in sorted order)
    km: np.ndarray
    collect: np.ndarray
    carrier: np.ndarray  # index into services
    services: list[CarrierService]
    promised: np.ndarray  # date ordinals
    ship_by: np.ndarray
    package: CostTerms  # of arrays, one entry per candidate
    rates: UnitRates  # of arrays

    def __len__(self) -> int:
        return len(self.ids)


_Entry = tuple[CandidateNode, NodeProfile | None]
_M = TypeVar("_M", bound=BaseModel)
_set = object.__setattr__


def _built(cls: type[_M], fields: dict[str, Any]) -> _M:
    """`cls.model_construct(**fields)` given every field of a plain model (no aliases, extras,
    private attributes or post-init): the steps pydantic takes, without looking for defaults.
    The plan's models are built from values already of their fields' types."""
    model = cls.__new__(cls)
    # In the fields' declared order, as validation would store them (JSON keeps that order).
    _set(model, "__dict__", {name: fields[name] for name in cls.model_fields})
    _set(model, "__pydantic_fields_set__", set(fields))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


class _NothingServed(Exception):
    """No rule's plan serves any line: optimize words the NoFeasiblePlan."""


def optimize(
    order: SourcingOrder,
    nodes: Sequence[NodeProfile | CandidateNode],
    policy: SourcingPolicy = DEFAULT_POLICY,
    ruleset: Ruleset | None = None,
    budget: SearchBudget = DEFAULT_BUDGET,
) -> Plan:
    """The plan for one order. Raises NoFeasiblePlan when no line can be served at all.

    A bare CandidateNode is costed with the policy's defaults for its type. `nodes` may be
    `PreparedNodes`: the plan is then worked out from its arrays."""
    ruleset = ruleset or DEFAULT_RULESET
    if isinstance(nodes, PreparedNodes):
        return nodes.optimize(order, policy, ruleset, budget)
    entries: list[_Entry] = [
        (n.node, n) if isinstance(n, NodeProfile) else (n, None) for n in nodes
    ]
    entries.sort(key=lambda e: (e[0].priority, e[0].node_id))
    arrays = node_arrays(entries, _skus(order))
    try:
        return plan_over(order, arrays, policy, ruleset, budget)
    except _NothingServed:
        point = _delivery_point(order, arrays)
        raise NoFeasiblePlan(
            lines=list(order.lines),
            excluded_nodes=list(order.excluded_nodes),
            rejected_nodes=_reasons(
                order, entries, ruleset, _distances_km(arrays.lat, arrays.lon, point)
            ),
            ruleset=ruleset.name,
        ) from None


class PreparedNodes(tuple):  # type: ignore[type-arg]
    """A node sequence whose nodes optimize reads from arrays: for a caller that keeps its
    network as arrays (the checkout's availability cache), so that no object is built per node.

    The tuple holds whichever node objects the caller's other code needs to iterate (the
    checkout's pickup stores); `arrays` holds every node, as `node_arrays` would read them from
    their profiles, in tie-break order, with at least the order's SKUs as stock columns. The
    plan is the one `optimize` gives over those profiles; the work that depends only on the
    order's lines and delivery point is shared between orders (the checkout's scenarios).
    NoFeasiblePlan then names the reasons of the tuple's nodes only."""

    arrays: NodeArrays
    _passes: dict[tuple[object, ...], "_OrderPass"]

    def __new__(
        cls, nodes: Sequence[NodeProfile | CandidateNode], arrays: NodeArrays
    ) -> "PreparedNodes":
        prepared = super().__new__(cls, nodes)
        prepared.arrays = arrays
        prepared._passes = {}
        return prepared

    def order_pass(self, order: SourcingOrder) -> "_OrderPass":
        """The order's pass over the arrays, shared with every earlier order to the same place
        with the same lines (the checkout's scenarios)."""
        key = (
            tuple((ln.line_no, ln.sku, ln.quantity) for ln in order.lines),
            order.destination.lat,
            order.destination.lon,
            order.delivery_method,
            order.pickup_node_id,
            tuple(order.excluded_nodes),
        )
        context = self._passes.get(key)
        if context is None:
            context = self._passes[key] = _OrderPass(order, _columns(self.arrays, _skus(order)))
        return context.for_order(order)

    def optimize(
        self, order: SourcingOrder, policy: SourcingPolicy, ruleset: Ruleset, budget: SearchBudget
    ) -> Plan:
        try:
            return plan_over(order, self.order_pass(order), policy, ruleset, budget)
        except _NothingServed:
            entries = [(n.node, n) if isinstance(n, NodeProfile) else (n, None) for n in self]
            km = np.zeros(len(entries))  # distances are not what the tuple's nodes are for
            raise NoFeasiblePlan(
                lines=list(order.lines),
                excluded_nodes=list(order.excluded_nodes),
                rejected_nodes=_reasons(order, entries, ruleset, km),
                ruleset=ruleset.name,
            ) from None


def prepared(nodes: Sequence[NodeProfile | CandidateNode], skus: list[str]) -> PreparedNodes:
    """`nodes` read into arrays once (stock columns: `skus`, sorted), for several orders over
    them (the checkout's fast path): optimize plans the same over the result as over `nodes`
    (only NoFeasiblePlan's reasons are worded without distances)."""
    if isinstance(nodes, PreparedNodes):
        return nodes
    entries: list[_Entry] = [
        (n.node, n) if isinstance(n, NodeProfile) else (n, None) for n in nodes
    ]
    entries.sort(key=lambda e: (e[0].priority, e[0].node_id))
    return PreparedNodes(nodes, node_arrays(entries, sorted(set(skus))))


def _columns(arrays: NodeArrays, skus: list[str]) -> NodeArrays:
    """`arrays` with the stock of `skus` only, in that order."""
    if arrays.skus == skus:
        return arrays
    at = [arrays.skus.index(sku) for sku in skus]  # ValueError: a SKU the arrays do not hold
    return replace(arrays, skus=skus, stock=arrays.stock[:, at])


def plan_over(
    order: SourcingOrder,
    arrays: "NodeArrays | _OrderPass",
    policy: SourcingPolicy,
    ruleset: Ruleset,
    budget: SearchBudget,
) -> Plan:
    """`optimize` over nodes already read into arrays (in tie-break order)."""
    context = arrays if isinstance(arrays, _OrderPass) else _OrderPass(order, arrays)
    partial: list[Plan] = []
    for position, rule in enumerate(ruleset.rules):
        candidates = context.candidates(policy, rule)
        if not len(candidates):
            continue
        earlier = [r.name for r in ruleset.rules[:position]]
        plan = _best_plan(order, candidates, policy, rule, budget, context.skipped(), earlier)
        if not plan.unfilled_lines:
            return plan
        partial.append(plan)
    served = [p for p in partial if p.shipments]
    if not served:
        raise _NothingServed
    return min(served, key=lambda p: (p.unfilled_units, round(p.total_cost, 6)))


class _OrderPass:
    """What one order works out once over the nodes, whatever the rule: where parcels go, the
    distances, which nodes hold some line, which are excluded or at daily capacity."""

    def __init__(self, order: SourcingOrder, arrays: NodeArrays) -> None:
        self.order = order
        self.arrays = arrays
        n = len(arrays)
        self.pickup = _pickup_index(order, arrays)
        self.is_pickup = np.zeros(n, dtype=bool)
        if self.pickup is not None:
            self.is_pickup[self.pickup] = True
        point = _delivery_point(order, arrays)
        self.km = _distances_km(arrays.lat, arrays.lon, point)
        self.km[self.is_pickup] = 0.0  # the parcel is already where it is going
        self.collect = self.is_pickup & arrays.can_pickup
        self.excluded = np.zeros(n, dtype=bool)
        if order.excluded_nodes:
            banned = set(order.excluded_nodes)
            self.excluded = np.array([i in banned for i in arrays.ids], dtype=bool)
        self.full = arrays.load >= arrays.capacity
        self.at_capacity_mask = ~self.excluded & self.full
        self.holds_some = self._holds_some()
        self._eligible: dict[int, tuple[Rule, np.ndarray]] = {}

    def for_order(self, order: SourcingOrder) -> "_OrderPass":
        """The same pass for another order to the same place with the same lines (another
        scenario or priority): everything here depends on neither."""
        other = object.__new__(_OrderPass)
        other.__dict__.update(self.__dict__)
        other.order = order
        return other

    def _holds_some(self) -> np.ndarray:
        """Nodes holding some line whole, and, for a line no node holds whole, any of its
        units (the line may be divided between them)."""
        skus = _skus(self.order)
        line_sku = [skus.index(ln.sku) for ln in self.order.lines]
        qty = np.array([ln.quantity for ln in self.order.lines], dtype=float)
        stock = self.arrays.stock[:, line_sku]
        whole = stock >= qty[None, :]
        holds = whole.any(axis=1)
        short = ~whole.any(axis=0)
        if short.any():
            holds |= (stock[:, short] > 0).any(axis=1)
        return holds

    def skipped(self) -> dict[str, str]:
        """The nodes at daily capacity, as the explanation names them."""
        arrays = self.arrays
        if not self.at_capacity_mask.any():
            return {}
        return {
            arrays.ids[i]: f"at daily capacity ({int(arrays.load[i])}/{int(arrays.capacity[i])})"
            for i in np.flatnonzero(self.at_capacity_mask).tolist()
        }

    def eligible(self, rule: Rule) -> np.ndarray:
        """`sourcing.rules.rejection`'s tests and the rule's distance, on every node at once."""
        known = self._eligible.get(id(rule))
        if known is not None and known[0] is rule:
            return known[1]
        arrays = self.arrays
        allowed = arrays.can_ship | (self.is_pickup & arrays.can_pickup)
        if rule.node_types is not None:
            wanted = np.zeros(len(NODE_TYPES), dtype=bool)
            wanted[[_TYPE_CODE[t] for t in rule.node_types]] = True
            allowed = allowed & wanted[arrays.types]
        if rule.node_ids is not None:
            group = set(rule.node_ids)
            allowed = allowed & np.array([i in group for i in arrays.ids], dtype=bool)
        mask = allowed & self.holds_some & ~self.excluded & ~self.full
        if rule.max_distance_km is not None:
            mask &= (self.km <= rule.max_distance_km) | self.is_pickup
        kept = np.flatnonzero(mask)
        self._eligible[id(rule)] = (rule, kept)
        return kept

    def candidates(self, policy: SourcingPolicy, rule: Rule) -> "_Candidates":
        kept = self.eligible(rule)
        order = self.order
        if order.scenario == Scenario.LOCAL and order.delivery_method == DeliveryMethod.PICKUP:
            # The pickup store alone serves a local pickup when it holds every line.
            store = kept[self.collect[kept]]
            if len(store) and _holds_all(self.arrays.stock[store[0]], order):
                kept = store[:1]
        return _priced(order, self.arrays, kept, policy, self.km[kept], self.collect[kept])


def node_arrays(entries: Sequence[_Entry], skus: list[str]) -> NodeArrays:
    """The nodes read once, attribute by attribute (C-level getters, not a Python loop body)."""
    if not entries:
        return _empty_arrays(skus)
    ids, types, locations, ship, pickup, available = zip(
        *map(_NODE_FIELDS, (n for n, _ in entries)), strict=True
    )
    profiles = [_NO_PROFILE if p is None else _PROFILE_FIELDS(p) for _, p in entries]
    handling, store, capacity, load, reliability, calendars = zip(*profiles, strict=True)
    lat_lon = np.array(list(map(_LAT_LON, locations)), dtype=float).reshape(len(entries), 2)
    stock = np.array(
        [[units.get(sku, 0) for units in available] for sku in skus], dtype=float
    ).reshape(len(skus), len(entries))
    distinct_reliability = {id(r): r for r in reliability}
    if len(distinct_reliability) == 1:
        only = next(iter(distinct_reliability.values()))
        rejection_rate = np.full(len(entries), float(only.rejection_rate))
        lateness_rate = np.full(len(entries), float(only.lateness_rate))
    else:
        rejection_rate = np.array([r.rejection_rate for r in reliability], dtype=float)
        lateness_rate = np.array([r.lateness_rate for r in reliability], dtype=float)
    calendar_index: dict[int, int] = {}
    distinct_calendars: list[ProcessingCalendar] = []
    for calendar in calendars:
        if id(calendar) not in calendar_index:
            calendar_index[id(calendar)] = len(distinct_calendars)
            distinct_calendars.append(calendar)
    return NodeArrays(
        ids=list(ids),
        skus=list(skus),
        types=np.array([_TYPE_CODE[t] for t in types], dtype=int),
        lat=lat_lon[:, 0],
        lon=lat_lon[:, 1],
        can_ship=np.array(ship, dtype=bool),
        can_pickup=np.array(pickup, dtype=bool),
        stock=stock.T,
        handling=np.array(handling, dtype=float),  # None becomes NaN
        store_penalty=np.array(store, dtype=float),
        capacity=np.array([np.inf if c is None else c for c in capacity], dtype=float),
        load=np.array(load, dtype=float),
        rejection_rate=rejection_rate,
        lateness_rate=lateness_rate,
        calendars=distinct_calendars,
        calendar=np.array([calendar_index[id(c)] for c in calendars], dtype=int),
    )


def _empty_arrays(skus: list[str]) -> NodeArrays:
    n_skus = len(skus)
    empty = np.zeros(0)
    return NodeArrays(
        ids=[], skus=list(skus), types=np.zeros(0, dtype=int), lat=empty, lon=empty,
        can_ship=np.zeros(0, dtype=bool), can_pickup=np.zeros(0, dtype=bool),
        stock=np.zeros((0, n_skus)), handling=empty, store_penalty=empty, capacity=empty,
        load=empty, rejection_rate=empty, lateness_rate=empty, calendars=[],
        calendar=np.zeros(0, dtype=int),
    )  # fmt: skip


def _pickup_index(order: SourcingOrder, arrays: NodeArrays) -> int | None:
    if order.delivery_method != DeliveryMethod.PICKUP:
        return None
    return _index_of(arrays.ids, order.pickup_node_id)


def _index_of(ids: list[str], node_id: str | None) -> int | None:
    """The first position of `node_id` (list.index: a C loop, not a Python one), or None."""
    try:
        return ids.index(node_id)  # type: ignore[arg-type]
    except ValueError:
        return None


def _delivery_point(order: SourcingOrder, arrays: NodeArrays) -> GeoPoint:
    """Where parcels go: the customer, or for click & collect the pickup store (when the caller
    passed it among the nodes; otherwise `destination` is taken to be the store's address)."""
    if order.delivery_method == DeliveryMethod.PICKUP:
        store = _index_of(arrays.ids, order.pickup_node_id)
        if store is not None:
            return GeoPoint.model_construct(
                lat=float(arrays.lat[store]), lon=float(arrays.lon[store])
            )
    return order.destination


def _distances_km(lat: np.ndarray, lon: np.ndarray, point: GeoPoint) -> np.ndarray:
    """Haversine, as domain.geo.distance_km, for many nodes at once."""
    lat = np.radians(lat)
    lon = np.radians(lon)
    lat0, lon0 = np.radians(point.lat), np.radians(point.lon)
    h = np.sin((lat0 - lat) / 2) ** 2 + np.cos(lat) * np.cos(lat0) * np.sin((lon0 - lon) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(h))


def _reasons(
    order: SourcingOrder, entries: list[_Entry], ruleset: Ruleset, km: np.ndarray
) -> dict[str, str]:
    """Why each node was left out under each rule, for NoFeasiblePlan: the rare path, in plain
    loops, node by node as `rules.rejection` words it."""
    pickup_id = order.pickup_node_id if order.delivery_method == DeliveryMethod.PICKUP else None
    reasons: dict[str, list[str]] = {}
    for rule in ruleset.rules:
        for (node, profile), distance in zip(entries, km.tolist(), strict=True):
            is_pickup = node.node_id == pickup_id
            reason = rejection(order, rule, node, profile, is_pickup)
            if reason is None and not any(
                node.can_serve(ln.sku, ln.quantity) for ln in order.lines
            ):
                reason = "holds none of the lines"
            far = rule.max_distance_km is not None and not is_pickup
            if reason is None and far and distance > rule.max_distance_km:
                reason = distance_rejection(rule, distance)
            if reason is not None:
                reasons.setdefault(node.node_id, []).append(reason)
    return {node: "; ".join(dict.fromkeys(r)) for node, r in reasons.items()}


def _skus(order: SourcingOrder) -> list[str]:
    return sorted({ln.sku for ln in order.lines})


def _priced(
    order: SourcingOrder,
    arrays: NodeArrays,
    kept: np.ndarray,
    policy: SourcingPolicy,
    km: np.ndarray,
    collect: np.ndarray,
) -> _Candidates:
    weights = policy.weights(order.scenario)
    carrier, services = _carriers(order, km, collect)
    ship_by, promised = _promised(order, arrays, kept, policy, km, carrier, services)
    to_deliver = (promised - order.now.date().toordinal()).astype(float)
    if order.requested_date is not None:
        late = np.maximum(promised - order.requested_date.toordinal(), 0).astype(float)
    else:
        late = np.zeros(len(kept))
    types = arrays.types[kept]
    handling = arrays.handling[kept]
    store = arrays.store_penalty[kept]
    defaults = np.isnan(handling)
    if defaults.any():
        by_type = np.array([policy.handling_rate(t) for t in NODE_TYPES], dtype=float)
        handling = np.where(defaults, by_type[types], handling)
    defaults = np.isnan(store)
    if defaults.any():
        by_type = np.array([policy.store_penalty_rate(t) for t in NODE_TYPES], dtype=float)
        store = np.where(defaults, by_type[types], store)
    collected = collect.astype(float)
    package = package_terms(
        policy,
        weights,
        collected,
        arrays.rejection_rate[kept],
        arrays.lateness_rate[kept],
        to_deliver,
        late,
    )
    rates = unit_rates(policy, weights, handling, store, km, collected)
    return _Candidates(
        at=kept,
        ids=[arrays.ids[i] for i in kept.tolist()],
        types=types,
        stock=arrays.stock[kept],
        km=km,
        collect=collect,
        carrier=carrier,
        services=services,
        promised=promised,
        ship_by=ship_by,
        package=CostTerms(*(_per_candidate(t, len(kept)) for t in package)),
        rates=UnitRates(*(_per_candidate(r, len(kept)) for r in rates)),
    )


def _per_candidate(term: object, n: int) -> np.ndarray | float:
    """A cost term as one float per candidate; a term no node changes stays one float (adding
    it to an array gives the same figures as adding an array of it)."""
    if isinstance(term, np.ndarray) and term.shape == (n,):
        return term.astype(float, copy=False)
    if isinstance(term, np.ndarray):
        return np.broadcast_to(term, (n,)).astype(float)
    return float(term)  # type: ignore[arg-type]


# choose_carrier_service by what it reads: priority, long haul or not, how, collected or not.
_SERVICES: dict[tuple[int, bool, DeliveryMethod, bool], CarrierService] = {}


def _carriers(
    order: SourcingOrder, km: np.ndarray, collect: np.ndarray
) -> tuple[np.ndarray, list[CarrierService]]:
    """The domain's carrier choice, asked once per kind of shipment (long haul or not, collected
    or not) rather than per node: per candidate, an index into the services asked."""
    # The fastest scenario goes by express, whatever the order's priority: it is what the
    # checkout's fast option sells (orders sourced fastest by priority are express already).
    priority = order.priority
    if order.scenario == Scenario.FASTEST:
        priority = max(priority, EXPRESS_PRIORITY)
    kind = (km > LONG_HAUL_KM).astype(int) * 2 + collect
    present = np.bincount(kind, minlength=4)
    services: list[CarrierService] = []
    lookup = np.zeros(4, dtype=int)
    for k in np.flatnonzero(present).tolist():
        key = (priority, k >= 2, order.delivery_method, bool(k & 1))
        service = _SERVICES.get(key)
        if service is None:
            distance = LONG_HAUL_KM + 1.0 if k >= 2 else 0.0
            service = choose_carrier_service(priority, distance, order.delivery_method, k & 1 == 1)
            if len(_SERVICES) < 1000:
                _SERVICES[key] = service
        lookup[k] = len(services)
        services.append(service)
    return lookup[kind], services


def _promised(
    order: SourcingOrder,
    arrays: NodeArrays,
    kept: np.ndarray,
    policy: SourcingPolicy,
    km: np.ndarray,
    carrier: np.ndarray,
    services: list[CarrierService],
) -> tuple[np.ndarray, np.ndarray]:
    """Ship dates and promised dates as day ordinals: ship date per calendar, carrier days per
    service, each worked out once per order."""
    if len(services) == 1:
        days = transit_days_many(policy.transit, services[0], km)
    else:
        days = np.zeros(len(kept), dtype=int)
        for index, service in enumerate(services):
            same = carrier == index
            days[same] = transit_days_many(policy.transit, service, km[same])
    days = np.asarray(days, dtype=int)
    calendars = arrays.calendars
    if len(calendars) == 1:
        groups = [(ship_date(order.now, calendars[0]), None)]
    else:
        calendar = arrays.calendar[kept]
        groups = [
            (ship_date(order.now, calendars[c]), calendar == c)
            for c in np.flatnonzero(np.bincount(calendar, minlength=len(calendars))).tolist()
        ]
    start = np.zeros(len(kept), dtype=int)
    arrival = np.zeros(len(kept), dtype=int)
    # One add_carrier_days per distinct (ship date, transit days).
    for day, same in groups:
        these = days if same is None else days[same]
        table = np.zeros(int(these.max(initial=0)) + 1, dtype=int)
        for d in np.flatnonzero(np.bincount(these)).tolist():
            table[d] = add_carrier_days(day, d).toordinal()
        if same is None:
            start[:] = day.toordinal()
            arrival = table[these]
        else:
            start[same] = day.toordinal()
            arrival[same] = table[these]
    return start, arrival


def _holds_all(stock: np.ndarray, order: SourcingOrder) -> bool:
    skus = _skus(order)
    need = np.zeros(len(skus))
    for line in order.lines:
        need[skus.index(line.sku)] += line.quantity
    return bool((stock >= need).all())


def _best_plan(
    order: SourcingOrder,
    candidates: _Candidates,
    policy: SourcingPolicy,
    rule: Rule,
    budget: SearchBudget,
    skipped: dict[str, str],
    earlier_rules: list[str],
) -> Plan:
    whole = order
    problem, surcharge = _problem(order, candidates, policy, rule)
    exact = len(order.lines) <= budget.max_exact_lines
    # The search reads the candidates through their group costs only: per group its k cheapest
    # and per line its cheapest (the exact shortlist, see search.shortlist), so it runs on all
    # of them at the cost of one sort; no copy of the shortlist's arrays is needed.
    result = search(problem, budget.alternatives + 1, budget.max_evaluations, exact)
    best, *others = [_without_surcharge(s, surcharge) for s in result.ranked]
    pieces = _split_lines(order, candidates, policy, problem, best) if policy.split_lines else None
    if pieces is not None:
        # A line no node holds whole, divided (sourcing/splits.py): searched again with its
        # pieces as lines, so they are grouped and costed with the others like any line.
        order = pieces
        problem, surcharge = _problem(order, candidates, policy, rule)
        exact = len(order.lines) <= budget.max_exact_lines
        result = search(problem, budget.alternatives + 1, budget.max_evaluations, exact)
        best, *others = [_without_surcharge(s, surcharge) for s in result.ranked]
    if not policy.ration_stock:
        # Turning away a line the chosen plan serves is no alternative an operator would take.
        others = [o for o in others if not o.unfilled_mask & ~best.unfilled_mask]
    shipments = _shipments(order, candidates, policy, best)
    unfilled = merged_lines([ln for i, ln in enumerate(order.lines) if best.unfilled_mask >> i & 1])
    unfilled_cost = sum(unserved_cost(policy, ln) for ln in unfilled)
    total = float(round(sum(s.cost.total for s in shipments) + unfilled_cost, 4))
    alternatives = [_alternative(order, candidates, best, other) for other in others]
    splits = _splits(whole, shipments, unfilled) if pieces is not None else []
    divided = {s.line_no for s in splits}
    return _built(
        Plan,
        dict(
            order_id=order.order_id,
            shipments=shipments,
            unfilled_lines=unfilled,
            unfilled_cost=float(round(unfilled_cost, 4)),
            total_cost=total,
            promised_date=max((s.promised_date for s in shipments), default=None),
            explanation=explain(
                scenario=order.scenario,
                rule=rule.name,
                shipments=shipments,
                # A divided line's unfilled part is in its split's sentence.
                unfilled_line_nos=[ln.line_no for ln in unfilled if ln.line_no not in divided],
                total_cost=total,
                alternatives=alternatives,
                splits=splits,
                skipped_at_capacity=skipped,
                earlier_rules=earlier_rules,
                exhaustive=result.exhaustive,
            ),
            alternatives=alternatives,
            rule=rule.name,
            exhaustive=result.exhaustive,
            evaluated=result.evaluated,
        ),
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
    none: dict[str, float] = {}
    return np.array(
        [
            [prices.get(ln.sku, 0.0) for ln in order.lines]
            for prices in (policy.bid_prices.get(i, none) for i in candidates.ids)
        ],
        dtype=float,
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
        node_id = candidates.ids[cand]
        rates = candidates.rates.at(cand)
        lines = [ln for i, ln in enumerate(order.lines) if mask >> i & 1]
        terms = candidates.package.at(cand)
        for ln in lines:
            terms = terms.plus(line_terms(rates, ln.quantity, policy.bid_price(node_id, ln.sku)))
        lines = merged_lines(lines)
        shipments.append(
            _built(
                SourcedShipment,
                dict(
                    node_id=node_id,
                    node_type=NODE_TYPES[int(candidates.types[cand])],
                    lines=lines,
                    distance_km=round(float(candidates.km[cand]), 1),
                    carrier=candidates.services[int(candidates.carrier[cand])],
                    promised_date=date.fromordinal(int(candidates.promised[cand])),
                    ship_by=date.fromordinal(int(candidates.ship_by[cand])),
                    cost=_built(
                        CostBreakdown, {k: round(v, 4) for k, v in terms._asdict().items()}
                    ),
                ),
            )
        )
    return shipments


def _alternative(
    order: SourcingOrder, candidates: _Candidates, best: Solution, other: Solution
) -> Alternative:
    return _built(
        Alternative,
        dict(
            node_ids=sorted(candidates.ids[c] for c in other.candidates),
            total_cost=float(round(other.cost, 4)),
            cost_difference=float(round(other.cost - best.cost, 4)),
            unfilled_line_nos=list(
                dict.fromkeys(
                    ln.line_no for i, ln in enumerate(order.lines) if other.unfilled_mask >> i & 1
                )
            ),
        ),
    )


def _split_lines(
    order: SourcingOrder,
    candidates: _Candidates,
    policy: SourcingPolicy,
    problem: SearchProblem,
    best: Solution,
) -> SourcingOrder | None:
    """The order with each line no candidate holds whole replaced by its pieces (sourcing/
    splits.py), around the nodes the best whole-line plan ships from; None when no line needs
    dividing, or the order may ship from one node only."""
    if problem.limit == 1:
        return None
    stock = candidates.stock
    line_sku = problem.line_sku
    qty = np.asarray(problem.line_qty, dtype=float)
    whole = (stock[:, line_sku] >= qty[None, :]).any(axis=0)
    some = (stock[:, line_sku] > 0).any(axis=0)
    short = (~whole & some).tolist()
    if not any(short):
        return None
    n = len(candidates)
    left = stock.copy()
    in_plan = np.zeros(n, dtype=bool)
    for cand, mask in best.groups:
        if cand == UNFILLED:
            continue
        in_plan[cand] = True
        for i in range(len(line_sku)):
            if mask >> i & 1:
                left[cand, line_sku[i]] -= problem.line_qty[i]
    unit = np.broadcast_to(np.asarray(candidates.rates.total, dtype=float), (n,))
    unit = unit[:, None] + _bids(order, candidates, policy)
    package = np.broadcast_to(np.asarray(candidates.package.total, dtype=float), (n,))
    opened = int(in_plan.sum())
    lines: list[OrderLine] = []
    for i, line in enumerate(order.lines):
        if not short[i]:
            lines.append(line)
            continue
        room = None if problem.limit is None else problem.limit - opened
        sku = line_sku[i]
        pieces = divide(line.quantity, left[:, sku], unit[:, i], package, in_plan, room)
        if not pieces:
            lines.append(line)
            continue
        for cand, units in pieces:
            left[cand, sku] -= units
            if not in_plan[cand]:
                in_plan[cand] = True
                opened += 1
            lines.append(OrderLine(line_no=line.line_no, sku=line.sku, quantity=units))
        rest = line.quantity - sum(units for _, units in pieces)
        if rest > 0:
            lines.append(OrderLine(line_no=line.line_no, sku=line.sku, quantity=rest))
    return order.model_copy(update={"lines": lines})


def _splits(
    whole: SourcingOrder, shipments: list[SourcedShipment], unfilled: list[OrderLine]
) -> list[SplitLine]:
    """The lines the plan divides between nodes (or serves in part), as the explanation says."""
    splits = []
    for line in whole.lines:
        parts = [
            (s.node_id, ln.quantity)
            for s in shipments
            for ln in s.lines
            if ln.line_no == line.line_no
        ]
        rest = sum(ln.quantity for ln in unfilled if ln.line_no == line.line_no)
        if len(parts) > 1 or (parts and rest):
            splits.append(SplitLine(line.sku, line.quantity, parts, rest, line.line_no))
    return splits
