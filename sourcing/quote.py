"""The checkout's fast path: a small cart's plans by enumerating its line groups, exactly the
plans `optimize` gives, without its search, runner-ups and explanation.

Same model, fewer steps. The candidates, their distances, carriers, dates and cost terms are the
optimizer's own (`_OrderPass.candidates`, `_problem`, `search._group_costs`: the very arrays the
search reads). What changes is how the cheapest plan is found among them, for a cart of at most
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

from datetime import date
from typing import Any, Final

import numpy as np

from domain.orders import OrderLine
from sourcing.model import Ruleset, SourcingOrder, SourcingPolicy
from sourcing.optimizer import NODE_TYPES, PreparedNodes, _problem
from sourcing.rules import DEFAULT_RULESET, shipment_limit
from sourcing.search import _group_costs

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


def quoted_plan(
    order: SourcingOrder, nodes: PreparedNodes, policy: SourcingPolicy, ruleset: Ruleset | None
) -> list[dict[str, Any]] | _Undecided | None:
    """The shipments of the plan optimize gives `order` (every line served), as the fields of
    sourcing.checkout.QuotedShipment in the plan's order; None where optimize's plan would not
    serve every line (or there is none), UNDECIDED where the fast path cannot be sure."""
    rule = (ruleset or DEFAULT_RULESET).rules[0]
    if shipment_limit(order, rule) is not None or order.excluded_nodes:
        return UNDECIDED
    candidates = nodes.order_pass(order).candidates(policy, rule)
    if not len(candidates):
        return None  # NoFeasiblePlan
    problem, _ = _problem(order, candidates, policy, rule)
    cost = _group_costs(problem)  # (candidate, group mask); inf where stock cannot serve
    n = len(order.lines)
    singles = cost[:, [1 << i for i in range(n)]]
    if not np.isfinite(singles).any(axis=0).all():
        return None  # some line no candidate serves: optimize's plan leaves it unfilled
    finite = np.isfinite(cost)
    if (cost[finite] < 0).any():
        return UNDECIDED  # the merge and unfilled arguments assume costs of at least 0
    best_node = np.argmin(cost, axis=0)  # the lowest index among equal costs, as the search
    columns = np.arange(cost.shape[1])
    first = cost[best_node, columns]
    if len(candidates) > 1:
        second = np.partition(cost, 1, axis=0)[1]
    else:
        second = np.full(cost.shape[1], np.inf)
    # What giving a group any other node costs at least (inf: no other node, or none at all).
    gap = np.full(cost.shape[1], np.inf)
    np.subtract(second, first, out=gap, where=np.isfinite(first))
    best, chosen, groups = np.inf, [], ()
    bounds = []  # per partition: its argmin plan's cost (or inf: no plan), any other plan's bound
    for partition in PARTITIONS[n]:
        nodes_of = [int(best_node[g]) for g in partition]
        cost_of = sum(float(first[g]) for g in partition)
        if len(set(nodes_of)) < len(nodes_of):
            bounds.append((np.inf, cost_of + min(float(gap[g]) for g in partition)))
            continue  # a node opened twice: the search never offers it
        bounds.append((cost_of, cost_of + min(float(gap[g]) for g in partition)))
        if cost_of < best:
            best, chosen, groups = cost_of, nodes_of, partition
    if not chosen:
        return UNDECIDED
    # A plan leaving any line unfilled costs at least that line's unfilled cost (serve-first).
    if not best + TIE_MARGIN < float(problem.unfilled.min()):
        return UNDECIDED
    for partition, (plan_cost, other_bound) in zip(PARTITIONS[n], bounds, strict=True):
        if partition != groups and plan_cost <= best + TIE_MARGIN:
            return UNDECIDED
        if other_bound <= best + TIE_MARGIN:
            return UNDECIDED
    shipments = []
    for cand, mask in sorted(zip(chosen, groups, strict=True), key=lambda s: s[1]):
        service = candidates.services[int(candidates.carrier[cand])]
        shipments.append(
            {
                "node_id": candidates.ids[cand],
                "node_type": str(NODE_TYPES[int(candidates.types[cand])]),
                "lines": [ln for i, ln in enumerate(order.lines) if mask >> i & 1],
                "distance_km": round(float(candidates.km[cand]), 1),
                "carrier": service.carrier,
                "service": service.service,
                "ship_by": date.fromordinal(int(candidates.ship_by[cand])),
                "promised_date": date.fromordinal(int(candidates.promised[cand])),
            }
        )
    return shipments
