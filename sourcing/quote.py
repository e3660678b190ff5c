"""The checkout's fast path: a small cart's plans by enumerating its line groups, exactly the
plans `optimize` gives, without its search, runner-ups and explanation.

Same model, fewer steps. The candidates, their distances, carriers, dates and cost terms are the
optimizer's steps (`_OrderPass.eligible`, `_distances_km`, `_carriers`, `_promised`,
sourcing.costs, the arithmetic of `_priced`, `_problem` and `search._group_costs`), taken in the
same arithmetic (distances and dates to the bit; costs in an order that differs by float noise,
far below TIE_MARGIN) with fewer array calls: what no cart changes is worked out once per
network snapshot (`_Static`), the dates once per hour (`_Dates`), the carrier days of every
service with one search (`_Bands`). What changes is how the cheapest plan is found among them,
for a cart of at most MAX_LINES lines of distinct SKUs under a one-rule ruleset without split
limits:

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
- A line no candidate holds whole is TO_DIVIDE: `optimize` divides it between nodes
  (sourcing/splits.py), which this enumeration of whole lines does not price.

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
    TransitTable,
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
    collect: np.ndarray | None  # per candidate: collected at the pickup store; None: none is
    # The kinds of shipment present (long haul * 2 + collected: the carrier's inputs), in
    # order, and per candidate its kind's index in them.
    kinds: list[int]
    kind_at: np.ndarray
    parcel: np.ndarray  # package terms but the scenario's: shipping + reliability
    base_rate: np.ndarray  # unit rates' shipping + handling
    store_rate: np.ndarray  # the store penalty rate, before the scenario's factor
    per_km_shipped: np.ndarray  # (1 - collected) * unit cost per km * km
    bids: np.ndarray | None  # (candidate, line), or None without bid prices
    qty: np.ndarray
    units: np.ndarray  # per group of lines: its units
    misfit: np.ndarray  # (group, candidate): 0, or inf where the node cannot hold the group

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
        # Line by line over the nodes: a (line, node) comparison is the fast one when the stock
        # is laid out SKU by SKU, as node_arrays and the cache build it.
        by_sku = arrays.stock.T
        by_line = by_sku if line_sku == _IN_ORDER.get(len(skus)) else by_sku[line_sku]
        quantities = tuple(ln.quantity for ln in lines)
        known = _QUANTITIES.get(quantities)
        if known is None:
            if len(_QUANTITIES) >= 4096:
                _QUANTITIES.clear()
            qty = np.array(quantities, dtype=float)
            known = _QUANTITIES[quantities] = (qty, qty[:, None], qty @ _subset_matrix(n))
        qty, qty_column, units = known
        # Distinct SKUs: a group fits where each of its lines fits (search._group_costs).
        held = _BITS[:n] @ (by_line >= qty_column)
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
        long_haul = km > LONG_HAUL_KM
        if collect is None:  # every candidate ships (1 - collected is 1.0: the same figures)
            base_rate = (policy.unit_cost + per_km) + handling
            per_km_shipped = per_km
            if not long_haul.any():
                kinds, kind_at = [0], long_haul
            elif long_haul.all():
                kinds, kind_at = [2], ~long_haul
            else:
                kinds, kind_at = [0, 2], long_haul
        else:
            ships = 1 - collect.astype(float)
            parcel = ships * policy.package_cost + reliability
            base_rate = ships * (policy.unit_cost + per_km) + handling
            per_km_shipped = ships * per_km
            kind_array = long_haul * 2 + collect
            kinds = sorted(set(kind_array.tolist()))
            kind_at = np.searchsorted(kinds, kind_array)
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
        return cls(
            arrays=arrays,
            kept=kept,
            km=km,
            collect=collect,
            kinds=kinds,
            kind_at=kind_at,
            parcel=parcel,
            base_rate=base_rate,
            store_rate=store_rate,
            per_km_shipped=per_km_shipped,
            bids=bids,
            qty=qty,
            units=units,
            misfit=_MISFIT[n][:, held_kept],
        )

    def kind(self, cand: int) -> int:
        """The candidate's kind of shipment (long haul * 2 + collected)."""
        collected = self.collect is not None and bool(self.collect[cand])
        return (float(self.km[cand]) > LONG_HAUL_KM) * 2 + collected


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
        if _STATIC:
            known = _STATIC[0]
            f = known.fields
            if (
                known.policy is policy and f[0] is arrays.lat and f[1] is arrays.lon
                and f[2] is arrays.types and f[3] is arrays.can_ship and f[4] is arrays.handling
                and f[5] is arrays.store_penalty and f[6] is arrays.capacity
                and f[7] is arrays.load and f[8] is arrays.rejection_rate
                and f[9] is arrays.lateness_rate
            ):  # fmt: skip
                return known
        fields = _static_fields(arrays)
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
# A cart's quantities -> them as an array, and the units of each group of its lines.
_QUANTITIES: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
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
# By lines n: misfit[group, held mask] = inf where the group has a line outside the held mask.
_MISFIT = {
    n: np.array(
        [
            [0.0 if group & ~held == 0 else np.inf for held in range(1 << n)]
            for group in range(1 << n)
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
    services = [_services(order, shared.kinds) for order in orders]
    bands = _Bands.of(policy.transit)
    band = bands.limits.searchsorted(shared.km)  # one search for every service's bands
    days_of: dict[tuple[str, str], np.ndarray] = {}
    days = np.empty((len(orders), len(shared.kept)), dtype=int)
    for at, by_kind in enumerate(services):
        row = []
        for service in by_kind:
            found = days_of.get((service.carrier, service.service))
            if found is None:
                found = days_of[service.carrier, service.service] = bands.days(service)[band]
            row.append(found)
        if len(row) == 1 or all(found is row[0] for found in row):
            days[at] = row[0]
        elif len(row) == 2:
            days[at] = np.where(shared.kind_at, row[1], row[0])
        else:
            days[at] = np.choose(shared.kind_at, row)
    dates = _Dates.of(first.now, shared.arrays.calendars, policy.transit)
    if dates.one:
        to_deliver = dates.to_deliver[0][days]
        calendar = None
    else:
        calendar = shared.arrays.calendar[shared.kept]
        to_deliver = dates.to_deliver[calendar, days]
    per_day, factor, detour = _scenario_columns(policy, [order.scenario for order in orders])
    package = per_day * to_deliver
    if first.requested_date is not None:
        promised = (to_deliver + first.now.date().toordinal()).astype(int)
        late = np.maximum(promised - first.requested_date.toordinal(), 0).astype(float)
        package = package + policy.late_day_cost * late
    package = shared.parcel + package
    rates = (shared.base_rate + shared.store_rate * factor) + shared.per_km_shipped * detour
    # costs[scenario, group, candidate]: package + the group's line costs (search._group_costs).
    if shared.bids is None:
        group = rates[:, None, :] * shared.units[:, None]
    else:
        lined = shared.qty * (rates[:, :, None] + shared.bids)
        group = np.ascontiguousarray((lined @ _subset_matrix(n)).transpose(0, 2, 1))
    costs = package[:, None, :] + group
    costs += shared.misfit
    # Leaving a line unfilled costs its unserved penalty plus the serve-first surcharge.
    lines = first.lines
    unfilled = min(unserved_cost(policy, ln) + SERVE_FIRST * ln.quantity for ln in lines)
    quotes: list[Quote] = []
    arrays = shared.arrays
    for row, picked in enumerate(_cheapest_partitions(costs, n, unfilled)):
        if not isinstance(picked, list):
            quotes.append(picked)
            continue
        shipments = []
        by_kind = services[row]
        for cand, mask in picked:
            at = int(shared.kept[cand])
            service = by_kind[shared.kinds.index(shared.kind(cand))]
            c = 0 if calendar is None else int(calendar[cand])
            shipments.append(
                {
                    "node_id": arrays.ids[at],
                    "node_type": str(NODE_TYPES[int(arrays.types[at])]),
                    "lines": [ln for i, ln in enumerate(lines) if mask >> i & 1],
                    "distance_km": round(float(shared.km[cand]), 1),
                    "carrier": service.carrier,
                    "service": service.service,
                    "ship_by": dates.ship_by[c],
                    "promised_date": dates.arrival[c][int(days[row, cand])],
                }
            )
        quotes.append(shipments)
    return quotes


_COLUMNS: dict[tuple[object, ...], tuple[SourcingPolicy, np.ndarray, np.ndarray, np.ndarray]] = {}


def _scenario_columns(
    policy: SourcingPolicy, scenarios: list[Scenario]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per scenario (rows) its weights' cost per day, store penalty factor and distance factor
    less one, as columns to scale the candidates' rows by."""
    key = (id(policy), *scenarios)
    known = _COLUMNS.get(key)
    if known is None or known[0] is not policy:
        if len(_COLUMNS) >= 64:
            _COLUMNS.clear()
        weights = [_weights(policy, scenario) for scenario in scenarios]
        known = _COLUMNS[key] = (
            policy,
            np.array([[w.cost_per_day] for w in weights]),
            np.array([[w.store_penalty_factor] for w in weights]),
            np.array([[w.distance_factor - 1.0] for w in weights]),
        )
    return known[1], known[2], known[3]


@dataclass(frozen=True)
class _Bands:
    """A transit table's bands (promise.transit_days_many) over the union of every service's
    limits: one search gives each distance's place among them, and per service the carrier
    days of each place (the last: beyond every limit, the service's last band)."""

    transit: TransitTable
    limits: np.ndarray
    by_service: dict[tuple[str, str], np.ndarray]

    @classmethod
    def of(cls, transit: TransitTable) -> "_Bands":
        known = _BANDS.get(id(transit))
        if known is not None and known.transit is transit:
            return known
        if len(_BANDS) >= 64:
            _BANDS.clear()
        every = (transit.ground, transit.express, transit.store_transfer)
        limits = sorted({band.max_km for bands in every for band in bands})
        built = _BANDS[id(transit)] = cls(transit, np.array(limits, dtype=float), {})
        return built

    def days(self, service: CarrierService) -> np.ndarray:
        key = (service.carrier, service.service)
        days = self.by_service.get(key)
        if days is None:
            if service.carrier == COLLECT_CARRIER:
                days = np.zeros(len(self.limits) + 1, dtype=int)
            else:
                bands = _bands(self.transit, service)
                # Each place's first band whose limit covers it (the limits include the
                # band's own); past them all, the last band, as transit_days_many takes it.
                found = [next((b.days for b in bands if at <= b.max_km), bands[-1].days)
                         for at in self.limits.tolist()]  # fmt: skip
                days = np.array([*found, bands[-1].days], dtype=int)
            self.by_service[key] = days
        return days


_BANDS: dict[int, _Bands] = {}


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


@dataclass(frozen=True)
class _Dates:
    """optimizer._promised's dates for one `now` (its local date and hour) and one list of
    calendars: per calendar its ship date, and the arrival after each number of carrier days
    up to the transit table's longest, also as days from today (the package cost's days to
    deliver). Kept for a while: they change only with the hour."""

    calendars: list[ProcessingCalendar]
    transit: TransitTable
    one: bool  # a single calendar
    ship_by: list[date]
    arrival: list[list[date]]  # (calendar, carrier days)
    to_deliver: np.ndarray  # (calendar, carrier days), float

    @classmethod
    def of(
        cls, now: datetime, calendars: list[ProcessingCalendar], transit: TransitTable
    ) -> "_Dates":
        key = (id(calendars), id(transit), now.date(), now.hour)
        known = _DATES.get(key)
        if known is not None and known.calendars is calendars and known.transit is transit:
            return known
        if len(_DATES) >= 256:
            _DATES.clear()
        longest = max(
            band.days for bands in (transit.ground, transit.express, transit.store_transfer)
            for band in bands
        )  # fmt: skip
        today = now.date().toordinal()
        ships = [ship_date(now, calendar) for calendar in calendars]
        arrival = [[add_carrier_days(day, d) for d in range(longest + 1)] for day in ships]
        built = _DATES[key] = cls(
            calendars=calendars,  # kept: their ids are not reused meanwhile
            transit=transit,
            one=len(calendars) == 1,
            ship_by=ships,
            arrival=arrival,
            to_deliver=np.array(
                [[float(day.toordinal() - today) for day in row] for row in arrival]
            ).reshape(len(calendars), longest + 1),
        )
        return built


_DATES: dict[tuple[object, ...], _Dates] = {}


def _cheapest_partitions(
    costs: np.ndarray, n: int, unfilled: float
) -> list[list[tuple[int, int]] | _Undecided]:
    """Per row of `costs` (scenario, group, candidate; changed here): the plan as (candidate,
    line mask) sorted by mask, as the search's groups; UNDECIDED when another plan comes within
    TIE_MARGIN (see the module's docstring)."""
    k, width, count = costs.shape
    best_node = costs.argmin(axis=2)  # the lowest index among equal costs, as the search
    first = costs.min(axis=2).tolist()
    if count == 1:
        second = [[np.inf] * width] * k
    else:
        # The second cheapest: the cheapest once the cheapest is out.
        costs[_ROWS[k], _COLUMNS_OF[width], best_node] = np.inf
        second = costs.min(axis=2).tolist()
    inf = np.inf
    decided: list[list[tuple[int, int]] | _Undecided] = []
    for f, s, b in zip(first, second, best_node.tolist(), strict=True):
        if min(f) < 0:
            decided.append(UNDECIDED)  # the bounds below assume costs of at least 0
            continue
        # What giving a group any other node costs at least (inf: no other node, or none).
        gap = [b_ - a if a < inf else inf for a, b_ in zip(f, s, strict=True)]
        decided.append(_decided(f, gap, b, n, unfilled))
    return decided


_ROWS = {k: np.arange(k)[:, None] for k in range(1, 4)}
_COLUMNS_OF = {1 << n: np.arange(1 << n)[None, :] for n in range(1, MAX_LINES + 1)}


def _decided(
    first_of: list[float], gap_of: list[float], node_of: list[int], n: int, unfilled: float
) -> list[tuple[int, int]] | _Undecided:
    inf = np.inf
    best, chosen, groups = inf, (), ()
    plans = []  # per partition: its argmin plan's cost (inf: no plan), any other plan's bound
    for partition in PARTITIONS[n]:
        if len(partition) == 1:
            (g,) = partition
            cost = first_of[g]
            plans.append((cost, cost + gap_of[g]))
            nodes: tuple[int, ...] = (node_of[g],)
        else:
            cost = 0.0
            gap = inf
            nodes = ()
            for g in partition:
                cost += first_of[g]
                if gap_of[g] < gap:
                    gap = gap_of[g]
                nodes += (node_of[g],)
            if len(set(nodes)) < len(nodes):
                plans.append((inf, cost + gap))  # a node opened twice: the search never offers it
                continue
            plans.append((cost, cost + gap))
        if cost < best:
            best, chosen, groups = cost, nodes, partition
    if not chosen:
        return UNDECIDED
    bar = best + TIE_MARGIN
    # A plan leaving any line unfilled costs at least that line's unfilled cost.
    if not bar < unfilled:
        return UNDECIDED
    for partition, (plan_cost, other_bound) in zip(PARTITIONS[n], plans, strict=True):
        if other_bound <= bar or (plan_cost <= bar and partition != groups):
            return UNDECIDED
    return sorted(zip(chosen, groups, strict=True), key=lambda group: group[1])
