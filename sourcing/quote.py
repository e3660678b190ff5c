"""The checkout's fast path: a small cart's plans by enumerating its line groups, exactly the
plans `optimize` gives, without its search, runner-ups and explanation.

Same model, fewer steps. The candidates, their distances, carriers, dates and cost terms are the
optimizer's own steps (`_OrderPass`, `_carriers`, `_promised`, sourcing.costs, the arithmetic
of `_priced`, `_problem` and `search._group_costs`). What changes is how the cheapest plan is found among them, for a cart of at most
MAX_LINES lines of distinct SKUs under a one-rule ruleset without split limits:

- A plan partitions the lines into groups and ships each group from one node; its cost is the
  sum over groups of the node's group cost (package + line costs). For a fixed partition the
  cheapest plan gives every group its argmin node, and the group costs are independent.
- A partition whose argmin nodes repeat a node has no argmin plan (the search never opens a
  node twice); any other plan of a partition gives at least one group a node other than its
  argmin, so it costs at least the argmin sum plus that group's gap to its second-cheapest node.
  (Merging two groups at one node saves a package, so a repeated node is rarely worth anything;
  with a free package, as collecting at the pickup store can be, the bound still holds.)
- The search ranks plans by (cost to 9 decimals, packages, nodes) and prunes on cost only
  against its K-th best plan found; when the cheapest plan beats every other plan by more than
  TIE_MARGIN, it is the search's first whatever the search order or ties further down. So the
  fast path answers only then: every other partition's argmin plan, and every plan other than
  argmin ones (by the bound above), must cost more by TIE_MARGIN. Plans that leave a line
  unfilled cost at least the serve-first surcharge, so they lose whenever the best plan costs
  less (all costs being at least 0). A near tie, a negative cost, a policy that may ration
  stock, or any cart or ruleset outside those bounds is UNDECIDED: the caller asks `optimize`.

tests/unit/test_checkout_fast_path_equivalence.py checks this against `optimize` on thousands of
random carts and networks.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import numpy as np

from domain.carriers import (
    COLLECT_CARRIER,
    EXPRESS_PRIORITY,
    LONG_HAUL_KM,
    CarrierService,
    choose_carrier_service,
)
from domain.geo import EARTH_RADIUS_KM, GeoPoint
from domain.orders import DeliveryMethod, OrderLine
from sourcing.costs import unserved_cost
from sourcing.model import (
    ProcessingCalendar,
    Rule,
    Ruleset,
    Scenario,
    ScenarioWeights,
    SourcingOrder,
    SourcingPolicy,
)
from sourcing.optimizer import (
    _SERVICES,
    NODE_TYPES,
    SERVE_FIRST,
    NodeArrays,
    PreparedNodes,
    _index_of,
)
from sourcing.promise import _bands, add_carrier_days, ship_date
from sourcing.rules import DEFAULT_RULESET, shipment_limit
from sourcing.search import _subset_matrix

MAX_LINES = 3
# Far above the float noise of summing a few costs in another order (~1e-13), far below any cost
# difference a plan is chosen by, and above the search's 9-decimal rounding of ties.
TIE_MARGIN = 1e-6


class _Undecided:
    """The fast path cannot be sure of optimize's plan here: ask optimize."""


UNDECIDED: Final = _Undecided()
# Some line no candidate holds whole: optimize may divide it between nodes (sourcing/splits.py).
TO_DIVIDE: Final = _Undecided()


def asks_optimize(quote: "Quote") -> bool:
    """The fast path leaves this order to optimize (UNDECIDED or TO_DIVIDE)."""
    return isinstance(quote, _Undecided)


# The set partitions of the lines {0 .. n-1} as bit masks, for n = 1 .. MAX_LINES.
PARTITIONS: dict[int, list[tuple[int, ...]]] = {
    1: [(1,)],
    2: [(3,), (1, 2)],
    3: [(7,), (1, 6), (2, 5), (4, 3), (1, 2, 4)],
}


def fast_path_applies(
    lines: list[OrderLine], policy: SourcingPolicy, ruleset: Ruleset | None
) -> bool:
    """The carts and rulesets the fast path decides (otherwise every option goes to optimize)."""
    if not 1 <= len(lines) <= MAX_LINES or len({ln.sku for ln in lines}) != len(lines):
        return False
    if policy.ration_stock:
        return False  # a plan may then leave a servable line unfilled: optimize weighs that
    rules = (ruleset or DEFAULT_RULESET).rules
    if len(rules) != 1:
        return False
    rule = rules[0]
    return (
        rule.max_splits is None and rule.min_shipment_value is None and not rule.keep_lines_together
    )


Quote = list[dict[str, Any]] | _Undecided | None


def quoted_plans(
    orders: list[SourcingOrder],
    nodes: PreparedNodes,
    policy: SourcingPolicy,
    ruleset: Ruleset | None,
) -> list[Quote]:
    """Per order: the shipments of the plan optimize gives it (every line served), as the fields
    of sourcing.checkout.QuotedShipment in the plan's order; UNDECIDED where the fast path
    cannot be sure; TO_DIVIDE where some line no candidate holds whole (optimize's to divide
    between nodes, or to find no plan for).

    Orders to the same delivery point with the same lines (the checkout's home fast and home
    economy) share one pass and everything in their pricing that no scenario changes: which
    nodes are eligible, distances, node rates, which groups of lines each node can hold."""
    rule = (ruleset or DEFAULT_RULESET).rules[0]
    quotes: list[Quote] = [UNDECIDED] * len(orders)
    together: dict[tuple[object, ...], list[int]] = {}
    for at, order in enumerate(orders):
        if shipment_limit(order, rule) is not None or order.excluded_nodes:
            continue
        key = (order.destination.lat, order.destination.lon, order.delivery_method, order.scenario)
        if order.scenario != Scenario.LOCAL or order.delivery_method != DeliveryMethod.PICKUP:
            key = key[:3]  # only the local pickup narrows the candidates by scenario
        together.setdefault(key, []).append(at)
    for group in together.values():
        first = orders[group[0]]
        shared = _Shared.of(first, nodes.arrays, policy, rule)
        for at, quote in zip(
            group, _quotes([orders[i] for i in group], shared, policy), strict=True
        ):
            quotes[at] = quote
    return quotes


@dataclass
class _Shared:
    """One delivery point's candidates, priced as far as no scenario changes the figures (the
    steps of sourcing.optimizer._OrderPass, _priced and _problem, in the same arithmetic: a
    scenario's package and unit rates are these parts plus its own terms, summed in
    unit_rates' and CostTerms.total's order)."""

    arrays: NodeArrays
    kept: np.ndarray  # index into the arrays
    km: np.ndarray
    kind: list[int]  # per candidate: long haul * 2 + collected (the carrier's inputs)
    kinds: list[int]  # the kinds present, in order
    kind_at: np.ndarray  # per candidate: its kind's index in `kinds`
    parcel: np.ndarray  # package terms but the scenario's: shipping + reliability
    base_rate: np.ndarray  # unit rates' shipping + handling
    store_rate: np.ndarray  # the store penalty rate, before the scenario's factor
    per_km_shipped: np.ndarray  # (1 - collected) * unit cost per km * km
    bids: np.ndarray | None  # (candidate, line), or None without bid prices
    qty: np.ndarray
    units: np.ndarray  # per group of lines: its units
    misfit: np.ndarray  # (candidate, group): 0, or inf where the node cannot hold the group

    @classmethod
    def of(
        cls, order: SourcingOrder, arrays: NodeArrays, policy: SourcingPolicy, rule: Rule
    ) -> "_Shared | _Undecided":
        """TO_DIVIDE: some line no candidate holds whole (or none at all)."""
        static = _Static.of(arrays, policy)
        lines = order.lines
        n = len(lines)
        skus = arrays.skus
        line_sku = [skus.index(ln.sku) for ln in lines]
        stock = arrays.stock if line_sku == _IN_ORDER.get(len(skus)) else arrays.stock[:, line_sku]
        qty = np.array([ln.quantity for ln in lines], dtype=float)
        # Distinct SKUs: a group fits where each of its lines fits (search._group_costs).
        held = (stock >= qty) @ _BITS[:n]
        # _OrderPass and its eligible(rule): the nodes that may ship (or the pickup store that
        # collects), hold some line, are not at daily capacity and pass the rule's filters.
        # (When some line is held whole nowhere, optimize also takes in nodes holding part of
        # it: the fast path then answers TO_DIVIDE, whatever they are.)
        pickup = None
        if order.delivery_method == DeliveryMethod.PICKUP:
            pickup = _index_of(arrays.ids, order.pickup_node_id)
        allowed = static.allowed
        if pickup is not None and arrays.can_pickup[pickup] and not static.full[pickup]:
            allowed = allowed.copy()
            allowed[pickup] = True
        point = order.destination
        if pickup is not None:
            point = GeoPoint.model_construct(
                lat=float(arrays.lat[pickup]), lon=float(arrays.lon[pickup])
            )
        every_km = None
        if rule.node_types is not None or rule.node_ids is not None:
            allowed = allowed & _rule_filter(arrays, rule)
        if rule.max_distance_km is not None:
            every_km = _distances(point, *static.matrix[:3])
            near = every_km <= rule.max_distance_km
            if pickup is not None:
                near[pickup] = True
            allowed = allowed & near
        kept = (allowed & (held > 0)).nonzero()[0]
        held_kept = held[kept]
        whole = (1 << n) - 1
        if not len(kept) or np.bitwise_or.reduce(held_kept) != whole:
            return TO_DIVIDE  # optimize divides the line, or finds no plan
        collect = None
        if pickup is not None and arrays.can_pickup[pickup]:
            at = np.flatnonzero(kept == pickup)
            if len(at):
                if order.scenario == Scenario.LOCAL and held_kept[at[0]] == whole:
                    kept = kept[at]  # the pickup store alone serves a local pickup it holds
                    held_kept = held_kept[at]
                collect = kept == pickup
        # One gather for every per-node figure (rows of the static matrix).
        lat, lon, cos_lat, parcel, handling, store_rate, reliability = static.matrix[:, kept]
        km = _distances(point, lat, lon, cos_lat) if every_km is None else every_km[kept]
        if pickup is not None:
            km[kept == pickup] = 0.0  # the parcel is already where it is going
        per_km = policy.unit_cost_per_km * km
        if collect is None:  # every candidate ships (1 - collected is 1.0: the same figures)
            base_rate = (policy.unit_cost + per_km) + handling
            per_km_shipped = per_km
            kind_array = (km > LONG_HAUL_KM) * 2
        else:
            ships = 1 - collect.astype(float)
            parcel = ships * policy.package_cost + reliability
            base_rate = ships * (policy.unit_cost + per_km) + handling
            per_km_shipped = ships * per_km
            kind_array = (km > LONG_HAUL_KM) * 2 + collect
        bids = None
        if policy.bid_prices:
            none: dict[str, float] = {}
            ids = arrays.ids
            bids = np.array(
                [
                    [prices.get(ln.sku, 0.0) for ln in lines]
                    for prices in (policy.bid_prices.get(ids[i], none) for i in kept.tolist())
                ],
                dtype=float,
            ).reshape(len(kept), n)
        kind = kind_array.tolist()
        kinds = sorted(set(kind))
        return cls(
            arrays=arrays,
            kept=kept,
            km=km,
            kind=kind,
            kinds=kinds,
            kind_at=np.searchsorted(kinds, kind_array),
            parcel=parcel,
            base_rate=base_rate,
            store_rate=store_rate,
            per_km_shipped=per_km_shipped,
            bids=bids,
            qty=qty,
            units=qty @ _subset_matrix(n),
            misfit=_MISFIT[n][held_kept],
        )


@dataclass
class _Static:
    """What the fast path reads of every node whatever the order, for one policy: worked out
    once per NodeArrays whose node fields stay the same objects (the availability cache passes
    its network snapshot's), else per call."""

    fields: tuple[object, ...]
    policy: SourcingPolicy
    full: np.ndarray  # at daily capacity
    allowed: np.ndarray  # may ship and is not at daily capacity
    # Per node, as rows: latitude and longitude in radians, the cosine of the latitude,
    # package_terms' shipping + reliability for a parcel shipped, the unit handling rate and
    # store penalty rate (the policy's for the type where the node sets none), and
    # package_terms' reliability.
    matrix: np.ndarray

    @classmethod
    def of(cls, arrays: NodeArrays, policy: SourcingPolicy) -> "_Static":
        fields = _static_fields(arrays)
        if _STATIC:
            known = _STATIC[0]
            if known.policy is policy and all(
                a is b for a, b in zip(known.fields, fields, strict=True)
            ):
                return known
        handling_by_type, store_by_type = _type_rates(policy)
        handling = arrays.handling
        defaults = np.isnan(handling)
        if defaults.any():
            handling = np.where(defaults, handling_by_type[arrays.types], handling)
        store_rate = arrays.store_penalty
        defaults = np.isnan(store_rate)
        if defaults.any():
            store_rate = np.where(defaults, store_by_type[arrays.types], store_rate)
        full = arrays.load >= arrays.capacity
        reliability = (
            arrays.rejection_rate * policy.rejection_cost
            + arrays.lateness_rate * policy.lateness_cost
        )
        lat = np.radians(arrays.lat)
        rows = (
            lat, np.radians(arrays.lon), np.cos(lat), 1.0 * policy.package_cost + reliability,
            handling, store_rate, reliability,
        )  # fmt: skip
        built = cls(
            fields=fields,
            policy=policy,
            full=full,
            allowed=arrays.can_ship & ~full,
            matrix=np.array(rows, dtype=float).reshape(len(rows), len(arrays)),
        )
        _STATIC[:] = [built]
        return built


def _distances(
    point: GeoPoint, lat: np.ndarray, lon: np.ndarray, cos_lat: np.ndarray
) -> np.ndarray:
    """optimizer._distances_km, in its arithmetic, from the radians worked out already."""
    lat0, lon0 = np.radians(point.lat), np.radians(point.lon)
    h = np.sin((lat0 - lat) / 2) ** 2 + cos_lat * np.cos(lat0) * np.sin((lon0 - lon) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(h))


_STATIC: list[_Static] = []  # the last one built
_IN_ORDER = {k: list(range(k)) for k in range(1, MAX_LINES + 1)}


def _static_fields(arrays: NodeArrays) -> tuple[object, ...]:
    return (
        arrays.lat, arrays.lon, arrays.types, arrays.can_ship, arrays.handling,
        arrays.store_penalty, arrays.capacity, arrays.load, arrays.rejection_rate,
        arrays.lateness_rate,
    )  # fmt: skip


def _rule_filter(arrays: NodeArrays, rule: Rule) -> np.ndarray:
    """_OrderPass.eligible's node type and node id filters."""
    allowed = np.ones(len(arrays), dtype=bool)
    if rule.node_types is not None:
        wanted = np.zeros(len(NODE_TYPES), dtype=bool)
        wanted[[NODE_TYPES.index(t) for t in rule.node_types]] = True
        allowed &= wanted[arrays.types]
    if rule.node_ids is not None:
        group = set(rule.node_ids)
        allowed &= np.array([i in group for i in arrays.ids], dtype=bool)
    return allowed


# Line i's bit, to read a node's fitting lines as one mask.
_BITS = np.array([1 << i for i in range(MAX_LINES)], dtype=np.int64)
# By lines n: misfit[held mask, group] = inf where the group has a line outside the held mask.
_MISFIT = {
    n: np.array(
        [
            [0.0 if group & ~held == 0 else np.inf for group in range(1 << n)]
            for held in range(1 << n)
        ]
    )
    for n in range(1, MAX_LINES + 1)
}
_TYPE_RATES: list[tuple[SourcingPolicy, np.ndarray, np.ndarray]] = []


def _type_rates(policy: SourcingPolicy) -> tuple[np.ndarray, np.ndarray]:
    """The policy's handling and store penalty rate per node type (the last policy's, kept)."""
    if _TYPE_RATES and _TYPE_RATES[0][0] is policy:
        return _TYPE_RATES[0][1], _TYPE_RATES[0][2]
    handling = np.array([policy.handling_rate(t) for t in NODE_TYPES], dtype=float)
    store = np.array([policy.store_penalty_rate(t) for t in NODE_TYPES], dtype=float)
    _TYPE_RATES[:] = [(policy, handling, store)]
    return handling, store


def _quotes(
    orders: list[SourcingOrder], shared: "_Shared | _Undecided", policy: SourcingPolicy
) -> list[Quote]:
    """The orders' quotes over their shared pricing: the scenarios' figures side by side, as
    rows of one array (each entry worked out by the same arithmetic as one order alone)."""
    if not isinstance(shared, _Shared):
        return [shared] * len(orders)
    first = orders[0]
    n = len(first.lines)
    # Per scenario the carrier service of each kind of shipment (optimizer._carriers), and the
    # carrier days of each distinct service over every candidate (transit_days_many).
    services: list[list[CarrierService]] = []
    days_by_service: dict[tuple[str, str], np.ndarray] = {}
    day_rows = []
    for order in orders:
        by_kind = _services(order, shared.kinds)
        services.append(by_kind)
        row = []
        for service in by_kind:
            key = (service.carrier, service.service)
            days = days_by_service.get(key)
            if days is None:
                days = days_by_service[key] = _transit_days(policy, service, shared.km)
            row.append(days)
        if len(row) == 1 or all(days is row[0] for days in row):
            day_rows.append(row[0])
        else:
            day_rows.append(np.choose(shared.kind_at, row))
    ship_by, promised = _dates(first.now, shared.arrays, shared.kept, np.stack(day_rows))
    weights = [_weights(policy, order.scenario) for order in orders]
    per_day = np.array([[w.cost_per_day] for w in weights])
    to_deliver = (promised - first.now.date().toordinal()).astype(float)
    package = per_day * to_deliver
    if first.requested_date is not None:
        late = np.maximum(promised - first.requested_date.toordinal(), 0).astype(float)
        package = package + policy.late_day_cost * late
    package = shared.parcel + package
    factor = np.array([[w.store_penalty_factor] for w in weights])
    detour = np.array([[w.distance_factor - 1.0] for w in weights])
    rates = (shared.base_rate + shared.store_rate * factor) + shared.per_km_shipped * detour
    if shared.bids is None:
        group = rates[:, :, None] * shared.units
    else:
        group = (shared.qty * (rates[:, :, None] + shared.bids)) @ _subset_matrix(n)
    costs = package[:, :, None] + group
    costs += shared.misfit
    # Leaving a line unfilled costs its unserved penalty plus the serve-first surcharge.
    lines = first.lines
    unfilled = min(unserved_cost(policy, ln) + SERVE_FIRST * ln.quantity for ln in lines)
    quotes: list[Quote] = []
    ship_rows, promised_rows = ship_by.tolist(), promised.tolist()
    ids, types, kept = shared.arrays.ids, shared.arrays.types, shared.kept.tolist()
    for row, picked in enumerate(_cheapest_partitions(costs, n, unfilled)):
        if not isinstance(picked, list):
            quotes.append(picked)
            continue
        shipments = []
        by_kind = services[row]
        for cand, mask in picked:
            service = by_kind[shared.kinds.index(shared.kind[cand])]
            shipments.append(
                {
                    "node_id": ids[kept[cand]],
                    "node_type": str(NODE_TYPES[types[kept[cand]]]),
                    "lines": [ln for i, ln in enumerate(lines) if mask >> i & 1],
                    "distance_km": round(float(shared.km[cand]), 1),
                    "carrier": service.carrier,
                    "service": service.service,
                    "ship_by": date.fromordinal(ship_rows[cand]),
                    "promised_date": date.fromordinal(promised_rows[row][cand]),
                }
            )
        quotes.append(shipments)
    return quotes


def _transit_days(policy: SourcingPolicy, service: CarrierService, km: np.ndarray) -> np.ndarray:
    """promise.transit_days_many, its bands read once per transit table and service."""
    key = (id(policy.transit), service.carrier, service.service)
    known = _BANDS.get(key)
    if known is None or known[0] is not policy.transit:
        if len(_BANDS) >= 64:
            _BANDS.clear()
        limits = np.array([band.max_km for band in _bands(policy.transit, service)], dtype=float)
        if service.carrier == COLLECT_CARRIER:
            days = np.zeros(len(limits) + 1, dtype=int)
        else:
            found = [band.days for band in _bands(policy.transit, service)]
            # A distance beyond every limit takes the last band (np.minimum in the original).
            days = np.array([*found, found[-1]], dtype=int)
        known = _BANDS[key] = (policy.transit, limits, days)
    return known[2][known[1].searchsorted(km, side="left")]


_BANDS: dict[tuple[int, str, str], tuple[object, np.ndarray, np.ndarray]] = {}


def _weights(policy: SourcingPolicy, scenario: Scenario) -> ScenarioWeights:
    # policy.weights builds its default before looking: look first.
    weights = policy.scenarios.get(scenario)
    return policy.weights(scenario) if weights is None else weights


def _services(order: SourcingOrder, kinds: list[int]) -> list[CarrierService]:
    """optimizer._carriers' service for each kind of shipment present (long haul or not,
    collected or not), from its table of services asked already."""
    priority = order.priority
    if order.scenario == Scenario.FASTEST:
        priority = max(priority, EXPRESS_PRIORITY)
    services = []
    for kind in kinds:
        key = (priority, kind >= 2, order.delivery_method, bool(kind & 1))
        service = _SERVICES.get(key)
        if service is None:
            distance = LONG_HAUL_KM + 1.0 if kind >= 2 else 0.0
            service = choose_carrier_service(
                priority, distance, order.delivery_method, kind & 1 == 1
            )
            if len(_SERVICES) < 1000:
                _SERVICES[key] = service
        services.append(service)
    return services


# (calendar, local date, hour) -> the ship date's ordinal; (ship ordinal, carrier days) -> the
# arrival's: both change only with the clock, so a few entries serve every check for a while.
_SHIP_DAY: dict[tuple[int, date, int], tuple[ProcessingCalendar, int]] = {}
_ARRIVAL: dict[tuple[int, int], int] = {}
_DATE_CACHE_SIZE = 4096


def _dates(
    now: datetime, arrays: NodeArrays, kept: np.ndarray, days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """optimizer._promised for scenarios side by side (`days`: scenario, candidate): ship dates
    per candidate and promised dates per scenario and candidate, as day ordinals."""
    calendars = arrays.calendars
    longest = int(days.max(initial=0))
    if len(calendars) == 1:
        ship = _ship_ordinal(now, calendars[0])
        table = np.array([_arrival(ship, d) for d in range(longest + 1)], dtype=int)
        return np.full(len(kept), ship, dtype=int), table[days]
    calendar = arrays.calendar[kept]
    present = np.unique(calendar).tolist()
    ships = np.zeros(len(calendars), dtype=int)
    table = np.zeros((len(calendars), longest + 1), dtype=int)
    for c in present:
        ship = ships[c] = _ship_ordinal(now, calendars[c])
        table[c] = [_arrival(ship, d) for d in range(longest + 1)]
    return ships[calendar], table[calendar, days]


def _ship_ordinal(now: datetime, calendar: ProcessingCalendar) -> int:
    key = (id(calendar), now.date(), now.hour)
    known = _SHIP_DAY.get(key)
    if known is not None and known[0] is calendar:
        return known[1]
    if len(_SHIP_DAY) >= _DATE_CACHE_SIZE:
        _SHIP_DAY.clear()
    ordinal = ship_date(now, calendar).toordinal()
    _SHIP_DAY[key] = (calendar, ordinal)  # the calendar kept: its id is not reused meanwhile
    return ordinal


def _arrival(ship: int, days: int) -> int:
    arrival = _ARRIVAL.get((ship, days))
    if arrival is None:
        if len(_ARRIVAL) >= _DATE_CACHE_SIZE:
            _ARRIVAL.clear()
        arrival = _ARRIVAL[ship, days] = add_carrier_days(date.fromordinal(ship), days).toordinal()
    return arrival


def _cheapest_partitions(
    costs: np.ndarray, n: int, unfilled: float
) -> list[list[tuple[int, int]] | _Undecided]:
    """Per row of `costs` (scenario, candidate, group): the plan as (candidate, line mask)
    sorted by mask, as the search's groups; UNDECIDED when another plan comes within
    TIE_MARGIN (see the module's docstring)."""
    k, count, width = costs.shape
    best_node = np.argmin(costs, axis=1).tolist()  # the lowest index among equal costs
    if count == 1:
        first = costs[:, 0, :].tolist()
        second = [[np.inf] * width] * k
    else:
        two = np.partition(costs, 1, axis=1)
        first, second = two[:, 0, :].tolist(), two[:, 1, :].tolist()
    inf = np.inf
    decided: list[list[tuple[int, int]] | _Undecided] = []
    for f, s, b in zip(first, second, best_node, strict=True):
        if min(f) < 0:
            decided.append(UNDECIDED)  # the bounds below assume costs of at least 0
            continue
        # What giving a group any other node costs at least (inf: no other node, or none).
        gap = [b_ - a if a < inf else inf for a, b_ in zip(f, s, strict=True)]
        decided.append(_decided(f, gap, b, n, unfilled))
    return decided


def _decided(
    first_of: list[float], gap_of: list[float], node_of: list[int], n: int, unfilled: float
) -> list[tuple[int, int]] | _Undecided:
    best, chosen, groups = np.inf, [], ()
    bounds = []  # per partition: its argmin plan's cost (inf: no plan), any other plan's bound
    for partition in PARTITIONS[n]:
        nodes_of = [node_of[g] for g in partition]
        cost_of = sum(first_of[g] for g in partition)
        other = cost_of + min(gap_of[g] for g in partition)
        if len(set(nodes_of)) < len(nodes_of):
            bounds.append((np.inf, other))  # a node opened twice: the search never offers it
            continue
        bounds.append((cost_of, other))
        if cost_of < best:
            best, chosen, groups = cost_of, nodes_of, partition
    if not chosen:
        return UNDECIDED
    # A plan leaving any line unfilled costs at least that line's unfilled cost.
    if not best + TIE_MARGIN < unfilled:
        return UNDECIDED
    for partition, (plan_cost, other_bound) in zip(PARTITIONS[n], bounds, strict=True):
        if partition != groups and plan_cost <= best + TIE_MARGIN:
            return UNDECIDED
        if other_bound <= best + TIE_MARGIN:
            return UNDECIDED
    return sorted(zip(chosen, groups, strict=True), key=lambda group: group[1])
