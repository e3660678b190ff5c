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
from datetime import date
from typing import Any, Final

import numpy as np

from domain.orders import DeliveryMethod, OrderLine
from sourcing.costs import package_terms, unit_rates, unserved_cost
from sourcing.model import Rule, Ruleset, Scenario, SourcingOrder, SourcingPolicy
from sourcing.optimizer import (
    NODE_TYPES,
    SERVE_FIRST,
    PreparedNodes,
    _carriers,
    _holds_all,
    _OrderPass,
    _promised,
)
from sourcing.rules import DEFAULT_RULESET, shipment_limit
from sourcing.search import _subset_matrix

MAX_LINES = 3
# Far above the float noise of summing a few costs in another order (~1e-13), far below any cost
# difference a plan is chosen by, and above the search's 9-decimal rounding of ties.
TIE_MARGIN = 1e-6


class _Undecided:
    """The fast path cannot be sure of optimize's plan here: ask optimize."""


UNDECIDED: Final = _Undecided()

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
    of sourcing.checkout.QuotedShipment in the plan's order; None where optimize's plan would not
    serve every line (or there is none); UNDECIDED where the fast path cannot be sure.

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
        shared = _Shared.of(nodes.order_pass(first), policy, rule)
        for at, quote in zip(
            group, _quotes([orders[i] for i in group], shared, policy), strict=True
        ):
            quotes[at] = quote
    return quotes


@dataclass
class _Shared:
    """One delivery point's candidates, priced as far as no scenario changes the figures (the
    steps of sourcing.optimizer._priced and _problem, in the same arithmetic)."""

    context: _OrderPass
    kept: np.ndarray  # index into the pass's arrays
    ids: list[str]  # the pass's node ids (index with `kept`)
    km: np.ndarray
    collect: np.ndarray
    collected: np.ndarray
    types: np.ndarray
    handling: np.ndarray
    store_penalty: np.ndarray
    rejection_rate: np.ndarray
    lateness_rate: np.ndarray
    bids: np.ndarray | float  # (candidate, line), or 0.0 without bid prices
    qty: np.ndarray
    misfit: np.ndarray  # (candidate, group): the node cannot hold the group in one package
    served: bool  # every line fits somewhere

    @classmethod
    def of(cls, context: _OrderPass, policy: SourcingPolicy, rule: Rule) -> "_Shared | None":
        """None: no candidate at all (optimize's NoFeasiblePlan)."""
        order = context.order
        kept = context.eligible(rule)
        if order.scenario == Scenario.LOCAL and order.delivery_method == DeliveryMethod.PICKUP:
            # As _OrderPass.candidates: the pickup store alone when it holds every line.
            store = kept[context.collect[kept]]
            if len(store) and _holds_all(context.arrays.stock[store[0]], order):
                kept = store[:1]
        if not len(kept):
            return None
        arrays = context.arrays
        types = arrays.types[kept]
        handling = arrays.handling[kept]
        store_penalty = arrays.store_penalty[kept]
        defaults = np.isnan(handling)
        if defaults.any():
            by_type = np.array([policy.handling_rate(t) for t in NODE_TYPES], dtype=float)
            handling = np.where(defaults, by_type[types], handling)
        defaults = np.isnan(store_penalty)
        if defaults.any():
            by_type = np.array([policy.store_penalty_rate(t) for t in NODE_TYPES], dtype=float)
            store_penalty = np.where(defaults, by_type[types], store_penalty)
        ids = arrays.ids
        lines = order.lines
        skus = arrays.skus
        line_sku = [skus.index(ln.sku) for ln in lines]
        qty = np.array([ln.quantity for ln in lines], dtype=float)
        fits = arrays.stock[kept][:, line_sku] >= qty[None, :]
        bids: np.ndarray | float = 0.0
        if policy.bid_prices:
            none: dict[str, float] = {}
            bids = np.array(
                [
                    [prices.get(ln.sku, 0.0) for ln in lines]
                    for prices in (policy.bid_prices.get(ids[i], none) for i in kept.tolist())
                ],
                dtype=float,
            ).reshape(len(kept), len(lines))
        km = context.km[kept]
        collect = context.collect[kept]
        return cls(
            context=context,
            kept=kept,
            ids=ids,
            km=km,
            collect=collect,
            collected=collect.astype(float),
            types=types,
            handling=handling,
            store_penalty=store_penalty,
            rejection_rate=arrays.rejection_rate[kept],
            lateness_rate=arrays.lateness_rate[kept],
            bids=bids,
            qty=qty,
            # Distinct SKUs: a group fits where each of its lines fits (search._group_costs).
            misfit=((~fits).astype(float) @ _subset_matrix(len(lines))) > 0,
            served=bool(fits.any(axis=0).all()),
        )


def _quotes(
    orders: list[SourcingOrder], shared: "_Shared | None", policy: SourcingPolicy
) -> list[Quote]:
    """The orders' quotes over their shared pricing: the scenarios' figures side by side, as
    rows of one array (each entry worked out by the same arithmetic as one order alone)."""
    if shared is None:
        return [None] * len(orders)  # NoFeasiblePlan
    if not shared.served:
        return [None] * len(orders)  # some line no candidate serves: optimize leaves it unfilled
    k, count = len(orders), len(shared.kept)
    carriers, offsets, services = [], [], []
    for order in orders:
        carrier, served_by = _carriers(order, shared.km, shared.collect)
        carriers.append(carrier + len(services))
        offsets.append(len(services))
        services.extend(served_by)
    # One pass over the calendars and transit bands for every scenario (the same `now`).
    ship_by, promised = _promised(
        orders[0],
        shared.context.arrays,
        np.tile(shared.kept, k),
        policy,
        np.tile(shared.km, k),
        np.concatenate(carriers),
        services,
    )
    ship_by, promised = ship_by.reshape(k, count), promised.reshape(k, count)
    n = len(orders[0].lines)
    subsets = _subset_matrix(n)
    costs = np.empty((k, count, subsets.shape[1]))
    for row, order in enumerate(orders):
        # policy.weights builds its default before looking: look first.
        weights = policy.scenarios.get(order.scenario)
        if weights is None:
            weights = policy.weights(order.scenario)
        to_deliver = (promised[row] - order.now.date().toordinal()).astype(float)
        if order.requested_date is not None:
            late = np.maximum(promised[row] - order.requested_date.toordinal(), 0).astype(float)
        else:
            late = np.zeros(count)
        package = package_terms(
            policy,
            weights,
            shared.collected,
            shared.rejection_rate,
            shared.lateness_rate,
            to_deliver,
            late,
        ).total
        rates = unit_rates(
            policy, weights, shared.handling, shared.store_penalty, shared.km, shared.collected
        ).total
        line_cost = shared.qty[None, :] * (np.asarray(rates)[:, None] + shared.bids)
        costs[row] = np.asarray(package)[:, None] + line_cost @ subsets
    costs[:, shared.misfit] = np.inf
    # Leaving a line unfilled costs its unserved penalty plus the serve-first surcharge.
    lines = orders[0].lines
    unfilled = min(unserved_cost(policy, ln) + SERVE_FIRST * ln.quantity for ln in lines)
    quotes: list[Quote] = []
    for row, picked in enumerate(_cheapest_partitions(costs, n, unfilled)):
        if not isinstance(picked, list):
            quotes.append(picked)
            continue
        shipments = []
        for cand, mask in picked:
            service = services[int(carriers[row][cand])]
            shipments.append(
                {
                    "node_id": shared.ids[int(shared.kept[cand])],
                    "node_type": str(NODE_TYPES[int(shared.types[cand])]),
                    "lines": [ln for i, ln in enumerate(lines) if mask >> i & 1],
                    "distance_km": round(float(shared.km[cand]), 1),
                    "carrier": service.carrier,
                    "service": service.service,
                    "ship_by": date.fromordinal(int(ship_by[row, cand])),
                    "promised_date": date.fromordinal(int(promised[row, cand])),
                }
            )
        quotes.append(shipments)
    return quotes


def _cheapest_partitions(
    costs: np.ndarray, n: int, unfilled: float
) -> list[list[tuple[int, int]] | _Undecided]:
    """Per row of `costs` (scenario, candidate, group): the plan as (candidate, line mask)
    sorted by mask, as the search's groups; UNDECIDED when another plan comes within
    TIE_MARGIN (see the module's docstring)."""
    k, count, width = costs.shape
    if costs.min() < 0:
        return [UNDECIDED] * k  # the bounds below assume costs of at least 0
    best_node = np.argmin(costs, axis=1)  # the lowest index among equal costs, as the search
    first = np.take_along_axis(costs, best_node[:, None, :], axis=1)[:, 0, :]
    one = count == 1
    second = np.full((k, width), np.inf) if one else np.partition(costs, 1, axis=1)[:, 1, :]
    # What giving a group any other node costs at least (inf: no other node, or none at all).
    gap = np.full((k, width), np.inf)
    np.subtract(second, first, out=gap, where=np.isfinite(first))
    return [
        _decided(f, g, b, n, unfilled)
        for f, g, b in zip(first.tolist(), gap.tolist(), best_node.tolist(), strict=True)
    ]


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
