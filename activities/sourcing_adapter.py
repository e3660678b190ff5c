"""Translate an allocation request into the optimizer's terms and its plan back.

The scenario follows the order: click & collect is local, a priority of 7 or more (paid express,
VIP) is fastest, everything else is cheapest. The optimizer may leave lines unfilled; the order
workflow reserves whole orders, so a plan with unfilled lines counts as no plan.
"""

from dataclasses import dataclass
from datetime import datetime

from contracts.activities import AllocateInput
from domain.carriers import EXPRESS_PRIORITY
from domain.errors import NoSourceAvailable
from domain.network import CandidateNode
from domain.orders import DeliveryMethod, OrderLine
from sourcing import NoFeasiblePlan, Scenario, SourcingOrder, optimize


@dataclass(frozen=True)
class ChosenShipment:
    node_id: str
    lines: list[OrderLine]


@dataclass(frozen=True)
class ChosenPlan:
    shipments: list[ChosenShipment]
    explanation: str


def scenario_for(priority: int, delivery_method: DeliveryMethod) -> Scenario:
    if delivery_method == DeliveryMethod.PICKUP:
        return Scenario.LOCAL
    if priority >= EXPRESS_PRIORITY:
        return Scenario.FASTEST
    return Scenario.CHEAPEST


def choose_sources(
    request: AllocateInput, candidates: list[CandidateNode], priority: int, now: datetime
) -> ChosenPlan:
    """Raises NoSourceAvailable (naming the lines) when the order cannot be served whole."""
    order = SourcingOrder(
        order_id=request.order_id,
        lines=request.lines,
        destination=request.destination,
        delivery_method=request.delivery_method,
        pickup_node_id=request.pickup_node_id,
        scenario=scenario_for(priority, request.delivery_method),
        priority=priority,
        excluded_nodes=request.excluded_nodes,
        now=now,
        channel=request.channel or None,
    )
    try:
        plan = optimize(order, candidates)
    except NoFeasiblePlan as exc:
        raise NoSourceAvailable(lines=request.lines, excluded_nodes=request.excluded_nodes) from exc
    if plan.unfilled_lines:
        raise NoSourceAvailable(lines=plan.unfilled_lines, excluded_nodes=request.excluded_nodes)
    return ChosenPlan(
        shipments=[ChosenShipment(s.node_id, s.lines) for s in plan.shipments],
        explanation=plan.explanation,
    )
