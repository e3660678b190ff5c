"""How a line no single node holds whole is divided between nodes.

The optimizer's search gives each line to one node. A line whose quantity no eligible node holds
(678 units where the biggest shelf has 500) would stay unfilled, although the network holds it
several times over. `divide` chooses the pieces: which nodes, how many units each, within the
shipments the order may still open. The optimizer then searches again with the line replaced by
its pieces (each an order line of the same line number), so the pieces are costed, grouped with
the order's other lines and ranked like any line.

What `divide` minimises, per line:
- units left unserved first (a piece of the line is better than none, for a ship-partial order),
- then cost: a node already in the plan adds only its per-unit cost (its parcel is paid for); a
  new node adds its parcel as well, so the cheapest per unit *including the parcel* win,
- then the fewest pieces, then the lower candidates (the tie-break order).
Given the nodes, the cheapest units are taken first; the node sets tried are every set of up to
EXACT_NEW_NODES new nodes from a shortlist (cheapest per unit, largest shelves, cheapest per
unit with the parcel), extended greedily when more are needed and allowed. Pure arithmetic.
"""

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from domain.orders import OrderLine

# New nodes per line tried exhaustively (sets of this many from the shortlist), then greedy.
EXACT_NEW_NODES = 3
# Per criterion, how many new nodes enter the shortlist (at most three times as many in all).
SHORTLIST_EACH = 6
TIE_DECIMALS = 9


def divide(
    quantity: int,
    available: np.ndarray,
    unit_cost: np.ndarray,
    package_cost: np.ndarray,
    in_plan: np.ndarray,
    new_nodes: int | None,
) -> list[tuple[int, int]]:
    """Pieces of a line of `quantity` units as (candidate, units), biggest first; their units may
    sum to less than `quantity` when the nodes allowed hold less (the rest goes unfilled).

    Per candidate: `available` units of the line's SKU (after what the plan takes there for
    other lines), `unit_cost` per unit, `package_cost` per parcel, `in_plan` whether the plan
    ships from it already. `new_nodes`: how many nodes not in the plan may be added (None: any).
    """
    holders = np.flatnonzero(available > 0)
    if quantity <= 0 or not len(holders):
        return []
    planned = [int(c) for c in holders if in_plan[c]]
    others = [int(c) for c in holders if not in_plan[c]]
    room = len(others) if new_nodes is None else min(max(new_nodes, 0), len(others))
    shortlist = _shortlist(quantity, others, available, unit_cost, package_cost)
    best: tuple[tuple[float, ...], list[tuple[int, int]]] | None = None
    for size in range(min(room, EXACT_NEW_NODES) + 1):
        for added in combinations(shortlist, size):
            pieces = _fill(quantity, planned + list(added), available, unit_cost)
            taken = {c for c, _ in pieces}
            if any(c not in taken for c in added):
                continue  # a node that takes nothing: the smaller set was tried already
            key = _rank(quantity, pieces, added, unit_cost, package_cost)
            if best is None or key < best[0]:
                best = (key, pieces)
    assert best is not None  # the empty set of new nodes is always tried
    pieces = best[1]
    served = sum(units for _, units in pieces)
    if served < quantity and room > EXACT_NEW_NODES:
        pieces = _extend(quantity, pieces, others, room, available, unit_cost, package_cost)
    return sorted(pieces, key=lambda p: (-p[1], p[0]))


def _shortlist(
    quantity: int,
    others: list[int],
    available: np.ndarray,
    unit_cost: np.ndarray,
    package_cost: np.ndarray,
) -> list[int]:
    if len(others) <= SHORTLIST_EACH * 3:
        return others
    at = np.array(others)
    take = np.minimum(available[at], quantity)
    criteria = (
        unit_cost[at],
        -available[at],
        unit_cost[at] + package_cost[at] / take,
    )
    listed: set[int] = set()
    for values in criteria:
        order = np.argsort(values, kind="stable")[:SHORTLIST_EACH]
        listed.update(int(c) for c in at[order])
    return sorted(listed)


def _fill(
    quantity: int, nodes: list[int], available: np.ndarray, unit_cost: np.ndarray
) -> list[tuple[int, int]]:
    """The cheapest units first, from these nodes only."""
    left = quantity
    pieces = []
    for c in sorted(nodes, key=lambda c: (round(float(unit_cost[c]), TIE_DECIMALS), c)):
        if left == 0:
            break
        units = min(int(available[c]), left)
        if units > 0:
            pieces.append((c, units))
            left -= units
    return pieces


def _rank(
    quantity: int,
    pieces: list[tuple[int, int]],
    added: tuple[int, ...],
    unit_cost: np.ndarray,
    package_cost: np.ndarray,
) -> tuple[float, ...]:
    served = sum(units for _, units in pieces)
    cost = sum(float(package_cost[c]) for c in added)
    cost += sum(units * float(unit_cost[c]) for c, units in pieces)
    return (
        float(quantity - served),
        round(cost, TIE_DECIMALS),
        float(len(pieces)),
        *sorted(float(c) for c, _ in pieces),
    )


def _extend(
    quantity: int,
    pieces: list[tuple[int, int]],
    others: list[int],
    room: int,
    available: np.ndarray,
    unit_cost: np.ndarray,
    package_cost: np.ndarray,
) -> list[tuple[int, int]]:
    """More new nodes, one at a time, the cheapest per unit with its parcel first."""
    pieces = list(pieces)
    used = {c for c, _ in pieces}
    added = len(used.intersection(others))
    left = quantity - sum(units for _, units in pieces)
    while left > 0 and added < room:
        best: tuple[float, int, int] | None = None
        for c in others:
            if c in used:
                continue
            units = min(int(available[c]), left)
            per_unit = (float(package_cost[c]) + units * float(unit_cost[c])) / units
            if best is None or round(per_unit, TIE_DECIMALS) < round(best[0], TIE_DECIMALS):
                best = (per_unit, c, units)
        if best is None:
            break
        _, c, units = best
        pieces.append((c, units))
        used.add(c)
        added += 1
        left -= units
    return pieces


def merged_lines(lines: Sequence[OrderLine]) -> list[OrderLine]:
    """Pieces of one line made one line again, its units added up (a shipment's pieces, the
    unfilled ones, or the pieces of a line sourced again together), in the order lines first
    appear."""
    if len({ln.line_no for ln in lines}) == len(lines):
        return list(lines)
    units: dict[int, OrderLine] = {}
    for ln in lines:
        known = units.get(ln.line_no)
        units[ln.line_no] = (
            ln
            if known is None
            else OrderLine(line_no=ln.line_no, sku=ln.sku, quantity=known.quantity + ln.quantity)
        )
    return list(units.values())
