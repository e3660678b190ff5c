"""The baseline sourcing rule, called directly: no Temporal, no database."""

import pytest

from domain.errors import NoSourceAvailable
from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import DeliveryMethod, OrderLine
from domain.sourcing import SourcingRequest, plan_sourcing

HOME = GeoPoint(lat=48.8566, lon=2.3522)  # Paris


def node(node_id: str, km_east: float, stock: dict[str, int], **kw) -> CandidateNode:
    return CandidateNode(
        node_id=node_id,
        node_type=kw.pop("node_type", NodeType.WAREHOUSE),
        location=GeoPoint(lat=HOME.lat, lon=HOME.lon + km_east / 73.0),
        can_ship=kw.pop("can_ship", True),
        can_pickup=kw.pop("can_pickup", False),
        available=stock,
        **kw,
    )


def lines(*items: tuple[str, int]) -> list[OrderLine]:
    return [OrderLine(line_no=i, sku=s, quantity=q) for i, (s, q) in enumerate(items, 1)]


def test_prefers_the_nearest_node_holding_every_line() -> None:
    request = SourcingRequest(lines=lines(("A", 1), ("B", 1)), destination=HOME)
    candidates = [
        node("far", 200, {"A": 5, "B": 5}),
        node("near-partial", 1, {"A": 5}),
        node("near", 10, {"A": 5, "B": 5}),
    ]

    plan = plan_sourcing(request, candidates)

    assert [s.node_id for s in plan.shipments] == ["near"]
    assert "nearest of 2 node(s) holding every line" in plan.explanation


def test_excluded_nodes_are_never_chosen() -> None:
    request = SourcingRequest(lines=lines(("A", 1)), destination=HOME, excluded_nodes=["near"])

    plan = plan_sourcing(request, [node("near", 1, {"A": 5}), node("far", 100, {"A": 5})])

    assert plan.shipments[0].node_id == "far"


def test_splits_into_fewest_shipments_when_no_node_has_everything() -> None:
    request = SourcingRequest(lines=lines(("A", 1), ("B", 1), ("C", 1)), destination=HOME)
    candidates = [
        node("a-only", 1, {"A": 5}),
        node("bc", 50, {"B": 5, "C": 5}),
        node("a-far", 100, {"A": 5}),
    ]

    plan = plan_sourcing(request, candidates)

    assert [(s.node_id, [ln.sku for ln in s.lines]) for s in plan.shipments] == [
        ("bc", ["B", "C"]),
        ("a-only", ["A"]),
    ]


def test_a_line_no_node_can_serve_in_full_is_reported_by_number() -> None:
    request = SourcingRequest(lines=lines(("A", 1), ("B", 9)), destination=HOME)

    with pytest.raises(NoSourceAvailable) as refusal:
        plan_sourcing(request, [node("x", 1, {"A": 5, "B": 5}), node("y", 2, {"B": 5})])

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

    plan = plan_sourcing(request, candidates)

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

    assert plan_sourcing(request, candidates).shipments[0].node_id == "dc"


def test_same_input_gives_the_same_plan() -> None:
    request = SourcingRequest(lines=lines(("A", 1)), destination=HOME)
    candidates = [node("n2", 10, {"A": 5}), node("n1", 10, {"A": 5})]

    plans = {plan_sourcing(request, candidates).model_dump_json() for _ in range(5)}

    assert len(plans) == 1
    assert plan_sourcing(request, candidates).shipments[0].node_id == "n1"


def test_pruning_candidates_never_changes_the_checkout_answer() -> None:
    import random
    from datetime import UTC, datetime

    from domain.checkout import check_cart, relevant_candidates, shippable_totals

    rng = random.Random(5)
    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    for _ in range(200):
        candidates = [
            node(
                f"n{i}",
                rng.uniform(0, 400),
                {s: rng.choice((0, 1, 3)) for s in "ABC"},
                node_type=NodeType.STORE if i % 2 else NodeType.WAREHOUSE,
                can_pickup=bool(i % 2),
            )
            for i in range(12)
        ]
        cart = lines(*[(s, rng.choice((1, 2))) for s in rng.sample("ABC", rng.choice((1, 2)))])
        relevant = relevant_candidates(cart, HOME, candidates)

        full = check_cart(cart, HOME, candidates, now)
        pruned = check_cart(cart, HOME, relevant, now, shippable_totals(candidates))

        assert pruned == full
