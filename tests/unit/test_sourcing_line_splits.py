"""A line no single node holds whole is divided between nodes (issue 14, item 1). Pure: the
optimizer called directly, no Temporal, no database."""

import numpy as np
import pytest

from domain.network import NodeType
from domain.orders import OrderLine, OrderState, OrderStatus, ShipmentStatus
from sourcing import NoFeasiblePlan, Rule, Ruleset, SourcingPolicy, check_cart, optimize
from sourcing.splits import divide
from tests.unit.test_ship_partial_status import _order, _shipment
from tests.unit.test_sourcing_optimizer import HOME, MONDAY_9AM, PARCELS_ONLY, node, order


def pieces(plan) -> dict[str, int]:
    return {s.node_id: sum(ln.quantity for ln in s.lines if ln.sku == "X") for s in plan.shipments}


def test_a_line_no_single_node_holds_is_split_across_two_nodes() -> None:
    # 678 units; the network holds 2,737 but no shelf holds 678.
    network = [
        node("A", 50, {"X": 400}),
        node("B", 300, {"X": 300}),
        node("C", 900, {"X": 600}),
        node("D", 1500, {"X": 600}),
        node("E", 2000, {"X": 600}),
        node("F", 2500, {"X": 237}),
    ]

    plan = optimize(order(("X", 678)), network)

    assert pieces(plan) == {"A": 400, "B": 278}
    assert plan.unfilled_lines == []
    assert all(ln.line_no == 1 for s in plan.shipments for ln in s.lines)
    assert "SKU X: no single node holds 678; 400 from A, 278 from B" in plan.explanation


def test_a_line_some_node_holds_whole_is_not_split() -> None:
    network = [node("A", 50, {"X": 400}), node("B", 60, {"X": 300}), node("far", 2000, {"X": 700})]

    plan = optimize(order(("X", 678)), network)

    assert pieces(plan) == {"far": 678}
    assert "no single node holds" not in plan.explanation


def test_a_split_takes_units_from_a_node_already_shipping_the_order() -> None:
    # Y is only at "F"; F's parcel is paid for, so F's X beats the slightly nearer M's.
    network = [
        node("N", 20, {"X": 400}),
        node("M", 300, {"X": 300}),
        node("F", 320, {"X": 300, "Y": 5}),
    ]

    plan = optimize(order(("X", 678), ("Y", 2)), network, PARCELS_ONLY)

    assert pieces(plan) == {"N": 400, "F": 278}
    assert plan.packages == 2
    f = next(s for s in plan.shipments if s.node_id == "F")
    assert sorted((ln.line_no, ln.quantity) for ln in f.lines) == [(1, 278), (2, 2)]


def test_a_split_uses_the_fewest_nodes_when_units_cost_the_same() -> None:
    network = [node("A", 100, {"X": 500}), node("B", 100, {"X": 300}), node("C", 100, {"X": 300})]

    plan = optimize(order(("X", 678)), network, PARCELS_ONLY)

    assert plan.packages == 2
    assert sum(pieces(plan).values()) == 678


def test_the_order_and_rule_split_limits_bound_the_pieces() -> None:
    network = [node("A", 50, {"X": 300}), node("B", 60, {"X": 300}), node("C", 70, {"X": 300})]

    two = optimize(order(("X", 678), max_splits=2), network)
    by_rule = optimize(
        order(("X", 678)),
        network,
        ruleset=Ruleset(name="r", rules=[Rule(name="two", max_splits=2)]),
    )

    for plan in (two, by_rule):
        assert plan.packages == 2
        assert sum(pieces(plan).values()) == 600
        assert [(ln.line_no, ln.quantity) for ln in plan.unfilled_lines] == [(1, 78)]
        assert "78 unfilled" in plan.explanation
    unlimited = optimize(order(("X", 678)), network)
    assert unlimited.packages == 3 and unlimited.unfilled_lines == []


def test_keeping_lines_together_or_one_box_never_splits_a_line() -> None:
    network = [node("A", 50, {"X": 400}), node("B", 60, {"X": 300})]
    together = Ruleset(name="r", rules=[Rule(name="one box", keep_lines_together=True)])

    with pytest.raises(NoFeasiblePlan):
        optimize(order(("X", 678), allow_split=False), network)
    with pytest.raises(NoFeasiblePlan):
        optimize(order(("X", 678)), network, ruleset=together)


def test_when_the_network_holds_less_than_the_line_every_unit_is_served_and_the_rest_unfilled() -> (
    None
):
    network = [node("A", 50, {"X": 400}), node("B", 60, {"X": 200})]

    plan = optimize(order(("X", 678)), network)

    assert pieces(plan) == {"A": 400, "B": 200}
    assert [(ln.line_no, ln.sku, ln.quantity) for ln in plan.unfilled_lines] == [(1, "X", 78)]
    assert "SKU X: no single node holds 678; 400 from A, 200 from B, 78 unfilled" in (
        plan.explanation
    )


def test_a_piece_below_the_rules_minimum_shipment_value_is_not_shipped_alone() -> None:
    network = [node("A", 50, {"X": 400}), node("B", 60, {"X": 300})]
    worth_300 = Ruleset(name="r", rules=[Rule(name="min", min_shipment_value=300.0)])

    plan = optimize(order(("X", 678), unit_prices={"X": 1.0}), network, ruleset=worth_300)

    assert pieces(plan) == {"A": 400}  # 278 x $1 is not worth a parcel of its own
    assert [(ln.line_no, ln.quantity) for ln in plan.unfilled_lines] == [(1, 278)]


def test_a_policy_that_does_not_split_lines_leaves_the_line_unfilled() -> None:
    network = [node("A", 50, {"X": 400}), node("B", 60, {"X": 300}), node("Y", 10, {"Y": 3})]

    plan = optimize(order(("X", 678), ("Y", 1)), network, SourcingPolicy(split_lines=False))

    assert plan.node_ids == ["Y"]
    assert [ln.quantity for ln in plan.unfilled_lines] == [678]


def test_a_split_line_goes_to_the_cheaper_stores_and_warehouses_by_unit_cost() -> None:
    # The store costs more per unit (handling and the store penalty): the warehouses go first.
    network = [
        node("store", 10, {"X": 600}, node_type=NodeType.STORE),
        node("wh-1", 40, {"X": 400}),
        node("wh-2", 45, {"X": 400}),
    ]

    plan = optimize(order(("X", 678)), network)

    assert pieces(plan) == {"wh-1": 400, "wh-2": 278}


def test_divide_counts_a_new_nodes_parcel_and_not_a_planned_ones() -> None:
    available = np.array([400.0, 300.0, 300.0])
    unit = np.array([1.0, 1.0, 1.02])
    package = np.array([9.0, 9.0, 9.0])
    in_plan = np.array([True, False, True])

    assert divide(678, available, unit, package, in_plan, None) == [(0, 400), (2, 278)]
    assert divide(678, available, unit, package, np.zeros(3, dtype=bool), 1) == [(0, 400)]
    assert divide(678, available, unit, package, in_plan, 0) == [(0, 400), (2, 278)]
    assert divide(5, np.zeros(3), unit, package, in_plan, None) == []


def test_a_divided_lines_units_add_up_over_its_shipments_in_the_orders_progress() -> None:
    def piece(units: int) -> OrderLine:
        return OrderLine(line_no=2, sku="CAP-NAVY", quantity=units)

    state = OrderState(
        order=_order(),  # line 2: 5 x CAP-NAVY
        status=OrderStatus.PARTIALLY_BACKORDERED,
        shipments=[
            _shipment("S1", ShipmentStatus.SHIPPED, piece(2)),
            _shipment("S2", ShipmentStatus.REJECTED, piece(2)),  # moved away: not counted
            _shipment("S3", ShipmentStatus.ACCEPTED, piece(2)),  # S2's piece, sourced again
        ],
    )

    [line] = [p for p in state.line_progress if p.line_no == 2]
    assert (line.ordered, line.allocated, line.shipped, line.backordered) == (5, 2, 2, 1)


@pytest.mark.parametrize("fast", [True, False])  # the fast path asks optimize for such a cart
def test_the_checkout_offers_a_cart_whose_line_no_single_node_holds_divided(fast: bool) -> None:
    network = [node("A", 50, {"X": 400}), node("B", 300, {"X": 300})]

    answer = check_cart(
        [OrderLine(line_no=1, sku="X", quantity=678)], HOME, network, MONDAY_9AM, fast=fast
    )

    economy = next(o for o in answer.options if o.code == "home_economy")
    assert sorted((s.node_id, s.lines[0].quantity) for s in economy.shipments) == [
        ("A", 400),
        ("B", 278),
    ]
