"""The checkout check: its delivery options are the optimizer's scenarios over the candidates
allocation sees, and an order sold with an option is allocated to the same plan and date."""

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from domain.geo import GeoPoint
from domain.network import NodeType
from domain.orders import DeliveryMethod, DeliveryOptionCode, OrderLine
from sourcing import NodeProfile, Scenario, SourcingOrder, check_cart, choose_sources, optimize
from sourcing.checkout import PICKUP_RADIUS_KM
from tests.support.candidates import HOME, lines, node

TUESDAY_10 = datetime(2026, 11, 24, 10, tzinfo=UTC)


@dataclass(frozen=True)
class SoldOrder:
    """An order as allocation reads it, sold with a checkout option."""

    lines: list[OrderLine]
    destination: GeoPoint
    delivery_option: DeliveryOptionCode | None
    promised_date: date | None
    delivery_method: DeliveryMethod = DeliveryMethod.HOME
    pickup_node_id: str | None = None
    order_id: str = "o-1"
    excluded_nodes: list[str] = field(default_factory=list)
    channel: str = "web"


def test_each_option_is_the_optimizers_plan_under_its_scenario() -> None:
    candidates = [
        node("STORE-NEAR", 5, {"TEE": 3}, node_type=NodeType.STORE, can_pickup=True),
        node("WH-MID", 300, {"TEE": 50}),
        node("WH-FAR", 1500, {"TEE": 50}),
    ]
    answer = check_cart(lines(("TEE", 1)), HOME, candidates, TUESDAY_10)

    by_code = {o.code: o for o in answer.options}
    assert set(by_code) == set(DeliveryOptionCode) - {DeliveryOptionCode.PREORDER}
    for code, scenario in (
        (DeliveryOptionCode.HOME_FAST, Scenario.FASTEST),
        (DeliveryOptionCode.HOME_ECONOMY, Scenario.CHEAPEST),
    ):
        plan = optimize(
            SourcingOrder(lines=lines(("TEE", 1)), destination=HOME, scenario=scenario,
                          now=TUESDAY_10),
            candidates,
        )  # fmt: skip
        option = by_code[code]
        assert [s.node_id for s in option.shipments] == plan.node_ids
        assert option.promised_date == plan.promised_date
    assert by_code[DeliveryOptionCode.HOME_FAST].shipments[0].service == "express"
    pickup = by_code[DeliveryOptionCode.PICKUP]
    assert pickup.pickup_node_id == "STORE-NEAR"
    assert pickup.promised_date == pickup.shipments[0].ship_by == date(2026, 11, 24)


def test_no_pickup_is_offered_beyond_the_radius_or_without_the_whole_cart_in_store() -> None:
    far_store = node(
        "STORE-FAR", PICKUP_RADIUS_KM + 20, {"TEE": 3}, node_type=NodeType.STORE, can_pickup=True
    )
    thin_store = node("STORE-THIN", 2, {"TEE": 3}, node_type=NodeType.STORE, can_pickup=True)
    warehouse = node("WH", 100, {"TEE": 5, "CAP": 5})

    far = check_cart(lines(("TEE", 1)), HOME, [far_store, warehouse], TUESDAY_10)
    thin = check_cart(lines(("TEE", 1), ("CAP", 1)), HOME, [thin_store, warehouse], TUESDAY_10)

    assert DeliveryOptionCode.PICKUP not in {o.code for o in far.options}
    assert DeliveryOptionCode.PICKUP not in {o.code for o in thin.options}


def test_a_cart_no_node_can_serve_whole_is_not_sellable_and_has_no_option() -> None:
    answer = check_cart(lines(("TEE", 9)), HOME, [node("WH", 10, {"TEE": 2})], TUESDAY_10)

    assert not answer.sellable and answer.options == []
    assert answer.lines[0].units_available == 2


def test_a_node_calendar_moves_the_quoted_date_as_it_moves_the_allocation() -> None:
    closed_today = NodeProfile.of(node("WH", 10, {"TEE": 5})).model_copy(
        update={"calendar": NodeProfile.of(node("X", 0, {})).calendar.model_copy(
            update={"working_days": [2, 3, 4]})}  # Wednesday to Friday
    )  # fmt: skip
    answer = check_cart(lines(("TEE", 1)), HOME, [closed_today], TUESDAY_10)

    economy = next(o for o in answer.options if o.code == DeliveryOptionCode.HOME_ECONOMY)
    assert economy.shipments[0].ship_by == date(2026, 11, 25)  # Wednesday
    assert economy.promised_date == date(2026, 11, 26)


@pytest.mark.parametrize("seed", range(6))
def test_an_order_sold_with_an_option_is_allocated_to_the_quoted_nodes_and_date(seed: int) -> None:
    rng = random.Random(seed)
    skus = [f"SKU{i}" for i in range(6)]
    candidates = [
        node(
            f"N{n:02d}", rng.uniform(-900, 900), {s: rng.choice((0, 0, 1, 4)) for s in skus},
            node_type=NodeType.STORE if n % 3 else NodeType.WAREHOUSE, can_pickup=n % 3 != 0,
        )
        for n in range(25)
    ]  # fmt: skip
    for _ in range(20):
        cart = lines(*((s, 1) for s in rng.sample(skus, rng.choice((1, 2, 3)))))
        destination = GeoPoint(lat=HOME.lat + rng.uniform(-2, 2), lon=HOME.lon)
        answer = check_cart(cart, destination, candidates, TUESDAY_10)
        for option in answer.options:
            pickup = option.code == DeliveryOptionCode.PICKUP
            sold = SoldOrder(
                lines=cart,
                destination=destination,
                delivery_option=option.code,
                promised_date=option.promised_date,
                delivery_method=DeliveryMethod.PICKUP if pickup else DeliveryMethod.HOME,
                pickup_node_id=option.pickup_node_id,
            )
            plan = choose_sources(sold, candidates, 5, TUESDAY_10)
            quoted = {(s.node_id, ln.line_no) for s in option.shipments for ln in s.lines}
            allocated = {(s.node_id, ln.line_no) for s in plan.shipments for ln in s.lines}
            assert allocated == quoted, (option.code, cart)
            assert plan.promised_date == option.promised_date and not plan.at_risk
