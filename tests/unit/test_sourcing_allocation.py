"""The allocation policy: the scenario follows the order, and an order is sourced whole or not at
all."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint
from domain.orders import DeliveryMethod, OrderLine
from sourcing import ChosenPlan, ChosenShipment, Scenario, choose_sources, scenario_for
from tests.support.candidates import HOME, lines, node

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)


@dataclass(frozen=True)
class Order:
    lines: list[OrderLine]
    order_id: str = "o-1"
    destination: GeoPoint = field(default_factory=lambda: HOME)
    delivery_method: DeliveryMethod = DeliveryMethod.HOME
    pickup_node_id: str | None = None
    excluded_nodes: list[str] = field(default_factory=list)
    channel: str = ""


@pytest.mark.parametrize(
    ("priority", "method", "scenario"),
    [
        (9, DeliveryMethod.PICKUP, Scenario.LOCAL),
        (7, DeliveryMethod.HOME, Scenario.FASTEST),
        (6, DeliveryMethod.HOME, Scenario.CHEAPEST),
        (0, DeliveryMethod.HOME, Scenario.CHEAPEST),
    ],
)
def test_the_scenario_follows_the_order(
    priority: int, method: DeliveryMethod, scenario: Scenario
) -> None:
    assert scenario_for(priority, method) == scenario


def test_a_whole_order_is_planned_at_the_node_that_holds_it() -> None:
    order = Order(lines(("TEE", 2)))
    plan = choose_sources(order, [node("N1", 10, {"TEE": 5})], 5, NOW)

    assert plan == ChosenPlan([ChosenShipment("N1", order.lines)], plan.explanation)
    assert plan.explanation


def test_an_order_that_cannot_be_served_whole_has_no_plan() -> None:
    order = Order(lines(("TEE", 2), ("CAP", 1)))

    with pytest.raises(NoSourceAvailable) as refused:
        choose_sources(order, [node("N1", 10, {"TEE": 5})], 5, NOW)

    assert "CAP" in str(refused.value)


def test_an_order_no_node_can_serve_at_all_has_no_plan() -> None:
    with pytest.raises(NoSourceAvailable):
        choose_sources(Order(lines(("TEE", 2))), [], 5, NOW)
