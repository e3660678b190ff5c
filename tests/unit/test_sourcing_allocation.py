"""The allocation policy: the scenario follows the order, and an order is sourced whole or not at
all."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint
from domain.orders import DeliveryMethod, DeliveryOptionCode, OrderLine
from sourcing import Scenario, choose_sources, scenario_for
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
    delivery_option: DeliveryOptionCode | None = None
    promised_date: date | None = None


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

    assert [(s.node_id, s.lines) for s in plan.shipments] == [("N1", order.lines)]
    assert plan.explanation and not plan.at_risk
    # Tuesday 10:00 before the cut-off: handed over today, one ground day for 10 km.
    assert plan.shipments[0].ship_by == date(2026, 11, 25)
    assert plan.promised_date == plan.shipments[0].promised_date == date(2026, 11, 26)


def test_an_order_that_cannot_be_served_whole_has_no_plan() -> None:
    order = Order(lines(("TEE", 2), ("CAP", 1)))

    with pytest.raises(NoSourceAvailable) as refused:
        choose_sources(order, [node("N1", 10, {"TEE": 5})], 5, NOW)

    assert "CAP" in str(refused.value)


def test_an_order_no_node_can_serve_at_all_has_no_plan() -> None:
    with pytest.raises(NoSourceAvailable):
        choose_sources(Order(lines(("TEE", 2))), [], 5, NOW)


@pytest.mark.parametrize(
    ("option", "scenario"),
    [
        (DeliveryOptionCode.HOME_FAST, Scenario.FASTEST),
        (DeliveryOptionCode.HOME_ECONOMY, Scenario.CHEAPEST),
        (DeliveryOptionCode.PICKUP, Scenario.LOCAL),
        (DeliveryOptionCode.PREORDER, Scenario.CHEAPEST),  # shipped from the receipt
    ],
)
def test_the_scenario_follows_the_checkout_option_over_the_priority(
    option: DeliveryOptionCode, scenario: Scenario
) -> None:
    assert scenario_for(9, DeliveryMethod.HOME, option) == scenario


def test_a_promise_the_plan_keeps_is_not_at_risk() -> None:
    order = Order(lines(("TEE", 1)), promised_date=date(2026, 11, 26))
    plan = choose_sources(order, [node("N1", 10, {"TEE": 5})], 5, NOW)

    assert plan.promised_date == date(2026, 11, 26) and not plan.at_risk


def test_a_promise_only_express_can_keep_is_kept_by_express() -> None:
    # 600 km: ground takes 3 days, express 1; the economy promise was quoted from a node nearby.
    order = Order(lines(("TEE", 1)), promised_date=date(2026, 11, 26))
    plan = choose_sources(order, [node("FAR", 600, {"TEE": 5})], 5, NOW)

    assert plan.promised_date == date(2026, 11, 26) and not plan.at_risk
    assert plan.shipments[0].carrier is not None
    assert plan.shipments[0].carrier.service == "express"
    assert "keep the promised date" in plan.explanation


def test_a_promise_no_plan_can_keep_is_recorded_at_risk_with_the_new_date() -> None:
    order = Order(lines(("TEE", 1)), promised_date=date(2026, 11, 25))
    plan = choose_sources(order, [node("N1", 10, {"TEE": 5})], 5, NOW)

    assert plan.at_risk and plan.promised_date == date(2026, 11, 26)
    assert "promise at risk" in plan.explanation


def test_a_partial_plan_ships_what_it_can_and_names_the_unfilled_lines() -> None:
    order = Order(lines(("TEE", 2), ("CAP", 1)))
    plan = choose_sources(order, [node("N1", 10, {"TEE": 5})], 5, NOW, partial=True)

    assert [(s.node_id, [ln.sku for ln in s.lines]) for s in plan.shipments] == [("N1", ["TEE"])]
    assert [ln.sku for ln in plan.unfilled_lines] == ["CAP"]


def test_a_partial_plan_no_node_can_serve_leaves_every_line_unfilled() -> None:
    order = Order(lines(("TEE", 2), ("CAP", 1)))
    plan = choose_sources(order, [node("N1", 10, {"MUG": 5})], 5, NOW, partial=True)

    assert plan.shipments == [] and plan.unfilled_lines == order.lines


def test_a_whole_plan_has_no_unfilled_lines() -> None:
    order = Order(lines(("TEE", 2), ("CAP", 1)))
    plan = choose_sources(order, [node("N1", 10, {"TEE": 5, "CAP": 1})], 5, NOW)

    assert plan.unfilled_lines == [] and len(plan.shipments) == 1
