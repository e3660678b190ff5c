"""The allocation policy: the scenario an order is sourced under, and whole orders only.

The scenario follows the order: click & collect is local, a priority of EXPRESS_PRIORITY (7) or
more (paid express, VIP) is fastest, everything else is cheapest. The optimizer may leave lines
unfilled; an order is reserved whole, so a plan with unfilled lines counts as no plan.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.carriers import EXPRESS_PRIORITY
from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint
from domain.network import CandidateNode
from domain.orders import DeliveryMethod, OrderLine
from sourcing.errors import NoFeasiblePlan
from sourcing.model import Scenario, SourcingOrder
from sourcing.optimizer import optimize


class OrderToSource(Protocol):
    """The order as the allocation policy reads it (services.allocation.AllocationRequest)."""

    @property
    def order_id(self) -> str: ...
    @property
    def lines(self) -> list[OrderLine]: ...
    @property
    def destination(self) -> GeoPoint: ...
    @property
    def delivery_method(self) -> DeliveryMethod: ...
    @property
    def pickup_node_id(self) -> str | None: ...
    @property
    def excluded_nodes(self) -> list[str]: ...
    @property
    def channel(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ChosenShipment:
    node_id: str
    lines: list[OrderLine]


@dataclass(frozen=True, slots=True)
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
    request: OrderToSource, candidates: Sequence[CandidateNode], priority: int, now: datetime
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
