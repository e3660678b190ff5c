"""The nearest-node policy (the checkout's sourcing rule), called directly: no Temporal, no
database."""

import pytest

from domain.errors import NoSourceAvailable
from domain.network import NodeType
from domain.orders import DeliveryMethod
from sourcing.nearest import SourcingRequest, plan_nearest_node
from tests.support.candidates import HOME, lines, node


def test_prefers_the_nearest_node_holding_every_line() -> None:
    request = SourcingRequest(lines=lines(("A", 1), ("B", 1)), destination=HOME)
    candidates = [
        node("far", 200, {"A": 5, "B": 5}),
        node("near-partial", 1, {"A": 5}),
        node("near", 10, {"A": 5, "B": 5}),
    ]

    plan = plan_nearest_node(request, candidates)

    assert [s.node_id for s in plan.shipments] == ["near"]
    assert "nearest of 2 node(s) holding every line" in plan.explanation


def test_excluded_nodes_are_never_chosen() -> None:
    request = SourcingRequest(lines=lines(("A", 1)), destination=HOME, excluded_nodes=["near"])

    plan = plan_nearest_node(request, [node("near", 1, {"A": 5}), node("far", 100, {"A": 5})])

    assert plan.shipments[0].node_id == "far"


def test_splits_into_fewest_shipments_when_no_node_has_everything() -> None:
    request = SourcingRequest(lines=lines(("A", 1), ("B", 1), ("C", 1)), destination=HOME)
    candidates = [
        node("a-only", 1, {"A": 5}),
        node("bc", 50, {"B": 5, "C": 5}),
        node("a-far", 100, {"A": 5}),
    ]

    plan = plan_nearest_node(request, candidates)

    assert [(s.node_id, [ln.sku for ln in s.lines]) for s in plan.shipments] == [
        ("bc", ["B", "C"]),
        ("a-only", ["A"]),
    ]


def test_a_line_no_node_can_serve_in_full_is_reported_by_number() -> None:
    request = SourcingRequest(lines=lines(("A", 1), ("B", 9)), destination=HOME)

    with pytest.raises(NoSourceAvailable) as refusal:
        plan_nearest_node(request, [node("x", 1, {"A": 5, "B": 5}), node("y", 2, {"B": 5})])

    assert [ln.line_no for ln in refusal.value.lines] == [2]
    assert "line 2 (9 x B)" in str(refusal.value)


def test_click_and_collect_uses_the_pickup_store_stock_when_it_has_every_line() -> None:
    request = SourcingRequest(
        lines=lines(("A", 1)),
        destination=HOME,
        delivery_method=DeliveryMethod.PICKUP,
        pickup_node_id="store",
    )
    candidates = [
        node("dc", 1, {"A": 5}),
        node("store", 20, {"A": 1}, node_type=NodeType.STORE, can_pickup=True, can_ship=False),
    ]

    plan = plan_nearest_node(request, candidates)

    assert plan.shipments[0].node_id == "store"
    assert "click & collect" in plan.explanation


def test_click_and_collect_ships_to_the_store_when_it_lacks_stock() -> None:
    request = SourcingRequest(
        lines=lines(("A", 2)),
        destination=HOME,
        delivery_method=DeliveryMethod.PICKUP,
        pickup_node_id="store",
    )
    candidates = [
        node("dc", 1, {"A": 5}),
        node("store", 0, {"A": 1}, node_type=NodeType.STORE, can_pickup=True, can_ship=False),
    ]

    assert plan_nearest_node(request, candidates).shipments[0].node_id == "dc"


def test_same_input_gives_the_same_plan() -> None:
    request = SourcingRequest(lines=lines(("A", 1)), destination=HOME)
    candidates = [node("n2", 10, {"A": 5}), node("n1", 10, {"A": 5})]

    plans = {plan_nearest_node(request, candidates).model_dump_json() for _ in range(5)}

    assert len(plans) == 1
    assert plan_nearest_node(request, candidates).shipments[0].node_id == "n1"
