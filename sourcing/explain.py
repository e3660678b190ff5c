"""The sentence an operator reads to see why the plan is what it is."""

from collections.abc import Sequence
from typing import NamedTuple

from sourcing.model import Alternative, Scenario, SourcedShipment

MAX_SKIPPED_NAMED = 3


class SplitLine(NamedTuple):
    """A line no single node holds whole, divided: units per node, and those left unfilled."""

    sku: str
    quantity: int
    parts: list[tuple[str, int]]  # (node id, units)
    unfilled: int = 0
    line_no: int = 0


def explain(
    scenario: Scenario,
    rule: str,
    shipments: list[SourcedShipment],
    unfilled_line_nos: list[int],
    total_cost: float,
    alternatives: list[Alternative],
    skipped_at_capacity: dict[str, str],
    earlier_rules: list[str],
    exhaustive: bool,
    splits: Sequence[SplitLine] = (),
) -> str:
    parts = [f"{scenario.value} scenario, rule '{rule}': {_shipments(shipments)}"]
    parts.extend(_split(s) for s in splits)
    if unfilled_line_nos:
        parts.append(
            f"line(s) {_nos(unfilled_line_nos)} unfilled: no eligible node holds them whole"
        )
    parts.append(f"total cost {total_cost:.2f}")
    opportunity = _opportunity(shipments)
    if opportunity:
        parts.append(opportunity)
    parts.append(_runner_up(alternatives))
    if skipped_at_capacity:
        parts.append(_skipped(skipped_at_capacity))
    if earlier_rules:
        names = ", ".join(f"'{r}'" for r in earlier_rules)
        parts.append(f"rule(s) {names} could not fill every line")
    if not exhaustive:
        parts.append("search budget ran out: best of the partial search and a greedy plan")
    return "; ".join(parts)


def _shipments(shipments: list[SourcedShipment]) -> str:
    if not shipments:
        return "nothing shipped"
    return " + ".join(
        f"{s.node_id} ({s.node_type}, {s.distance_km:.0f} km, {s.carrier.service}, "
        f"by {s.promised_date.isoformat()}) line(s) {_nos([ln.line_no for ln in s.lines])}"
        for s in shipments
    )


def _split(line: SplitLine) -> str:
    pieces = [f"{units} from {node}" for node, units in line.parts]
    if line.unfilled:
        pieces.append(f"{line.unfilled} unfilled")
    return f"SKU {line.sku}: no single node holds {line.quantity}; {', '.join(pieces)}"


def _runner_up(alternatives: list[Alternative]) -> str:
    if not alternatives:
        return "no other feasible plan"
    best = alternatives[0]
    nodes = " + ".join(best.node_ids) or "nothing shipped"
    if best.unfilled_line_nos:
        nodes += f" (line(s) {_nos(best.unfilled_line_nos)} unfilled)"
    return (
        f"runner-up {nodes} costs {best.total_cost:.2f}, {best.cost_difference:.2f} more"
        if best.cost_difference > 0
        else f"runner-up {nodes} costs the same ({best.total_cost:.2f}); ties go to fewer packages"
    )


def _opportunity(shipments: list[SourcedShipment]) -> str:
    """The bid prices' share of the cost: what the units taken are worth to the orders still to
    come (inventory-aware policy). Named so an operator sees why a nearer node was passed over
    or why this plan costs more than its shipping."""
    charged = [(s.node_id, s.cost.opportunity) for s in shipments if s.cost.opportunity > 0]
    if not charged:
        return ""
    total = sum(cost for _, cost in charged)
    nodes = ", ".join(f"{node} {cost:.2f}" for node, cost in charged)
    return f"includes opportunity cost {total:.2f} of scarce stock (bid prices: {nodes})"


def _skipped(skipped: dict[str, str]) -> str:
    named = sorted(skipped)[:MAX_SKIPPED_NAMED]
    text = ", ".join(f"{node} {skipped[node]}" for node in named)
    more = len(skipped) - len(named)
    return f"skipped {text}" + (f" and {more} more" if more > 0 else "")


def _nos(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in sorted(numbers))
