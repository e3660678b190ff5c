"""Following the fluid LP's own methods per demand class (sourcing.allocation.follow_lp)."""

import pytest

from domain.geo import GeoPoint
from sourcing import choose_sources
from sourcing.bid_prices import DemandClass, class_plans, solve_fluid_lp
from sourcing.model import LpClassPlan, LpMethod, SourcingPolicy, basket_key
from tests.support.candidates import HOME, lines, node
from tests.unit.test_sourcing_allocation import NOW, Order

CHEAPEST_PRIORITY = 5  # a home order below express priority is sourced at least cost
CANDIDATES = [node("NEAR", 10, {"TEE": 5, "CAP": 5}), node("FAR", 300, {"TEE": 5, "CAP": 5})]


def policy(*methods: LpMethod, basket: dict[str, int] | None = None) -> SourcingPolicy:
    plan = LpClassPlan(region="paris", destination=HOME, methods=list(methods))
    return SourcingPolicy(lp_plans={basket_key(basket or {"TEE": 1}): [plan]})


def test_an_order_of_an_lp_class_follows_the_method_the_lp_uses_most() -> None:
    lp = policy(LpMethod(nodes={"TEE": "FAR"}, orders=3), LpMethod(nodes={"TEE": "NEAR"}, orders=1))

    alone = choose_sources(Order(lines(("TEE", 1))), CANDIDATES, CHEAPEST_PRIORITY, NOW)
    followed = choose_sources(Order(lines(("TEE", 1))), CANDIDATES, CHEAPEST_PRIORITY, NOW, lp)

    assert [s.node_id for s in alone.shipments] == ["NEAR"]
    assert [s.node_id for s in followed.shipments] == ["FAR"]
    assert "fluid LP" in followed.explanation and followed.promised_date is not None


def test_a_method_whose_node_is_short_gives_way_to_the_next_one() -> None:
    lp = policy(
        LpMethod(nodes={"TEE": "FAR", "CAP": "FAR"}, orders=3),
        LpMethod(nodes={"TEE": "NEAR", "CAP": "FAR"}, orders=1),
        basket={"TEE": 1, "CAP": 1},
    )
    short = [node("NEAR", 10, {"TEE": 5, "CAP": 5}), node("FAR", 300, {"TEE": 0, "CAP": 5})]

    plan = choose_sources(Order(lines(("TEE", 1), ("CAP", 1))), short, CHEAPEST_PRIORITY, NOW, lp)

    assert {s.node_id: [line.sku for line in s.lines] for s in plan.shipments} == {
        "NEAR": ["TEE"],
        "FAR": ["CAP"],
    }


def test_a_method_with_no_lp_orders_left_is_not_followed() -> None:
    lp = policy(LpMethod(nodes={"TEE": "FAR"}, orders=0))

    plan = choose_sources(Order(lines(("TEE", 1))), CANDIDATES, CHEAPEST_PRIORITY, NOW, lp)

    assert [s.node_id for s in plan.shipments] == ["NEAR"]
    assert "fluid LP" not in plan.explanation


@pytest.mark.parametrize(
    "order",
    [
        Order(lines(("TEE", 2))),  # another basket
        Order(lines(("TEE", 1)), destination=GeoPoint(lat=HOME.lat + 1, lon=HOME.lon)),  # 111 km
        Order(lines(("TEE", 1)), excluded_nodes=["FAR"]),
    ],
    ids=["other basket", "other region", "node excluded"],
)
def test_an_order_outside_the_class_or_its_nodes_is_planned_as_usual(order: Order) -> None:
    lp = policy(LpMethod(nodes={"TEE": "FAR"}, orders=3))

    plan = choose_sources(order, CANDIDATES, CHEAPEST_PRIORITY, NOW, lp)

    assert [s.node_id for s in plan.shipments] == ["NEAR"]


def test_an_express_order_is_not_held_to_the_lp_plan() -> None:
    lp = policy(LpMethod(nodes={"TEE": "FAR"}, orders=3))

    plan = choose_sources(Order(lines(("TEE", 1))), CANDIDATES, 9, NOW, lp)

    assert "fluid LP" not in plan.explanation


def test_class_plans_carry_the_lp_split_most_used_first() -> None:
    # 10 orders, 6 units at the cheap node: the LP sends 6 orders there and 4 to the dear one.
    demand = [DemandClass(region="paris", skus={"TEE": 1}, expected_orders=10)]
    inventory = {("NEAR", "TEE"): 6.0, ("FAR", "TEE"): 10.0}
    lanes = {("NEAR", "paris"): 1.0, ("FAR", "paris"): 2.0}
    solution = solve_fluid_lp(demand, inventory, lanes, package_cost=8.0, unserved_unit_penalty=50)

    plans = class_plans(solution, demand, {"paris": HOME})

    [paris] = plans[basket_key({"TEE": 1})]
    assert [(m.nodes, round(m.orders, 6)) for m in paris.methods] == [
        ({"TEE": "NEAR"}, 6.0),
        ({"TEE": "FAR"}, 4.0),
    ]
    assert sum(solution.basis_orders) == pytest.approx(10)


def test_class_plans_leave_out_methods_that_leave_a_line_unserved() -> None:
    demand = [DemandClass(region="paris", skus={"TEE": 1}, expected_orders=10)]
    solution = solve_fluid_lp(
        demand, {("NEAR", "TEE"): 4.0}, {("NEAR", "paris"): 1.0}, 8.0, unserved_unit_penalty=50
    )

    plans = class_plans(solution, demand, {"paris": HOME})

    assert [m.nodes for m in plans[basket_key({"TEE": 1})][0].methods] == [{"TEE": "NEAR"}]
