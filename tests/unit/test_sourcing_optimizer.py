"""The sourcing optimizer, called directly: plain data in, a plan out. No Temporal, no database."""

import itertools
import random
from datetime import date, datetime

import pytest

from domain.carriers import COLLECT_CARRIER
from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import DeliveryMethod, OrderLine
from sourcing import (
    DemandClass,
    NodeProfile,
    NoFeasiblePlan,
    ProcessingCalendar,
    Rule,
    Ruleset,
    Scenario,
    SearchBudget,
    SourcingOrder,
    SourcingPolicy,
    compute_bid_prices,
    optimize,
    select_ruleset,
    ship_date,
)
from sourcing.model import TransitTable
from sourcing.promise import promised_date

HOME = GeoPoint(lat=41.88, lon=-87.63)  # Chicago
MONDAY_9AM = datetime(2025, 3, 3, 9, 0)
# A tariff with nothing but parcels, so expected costs can be worked out by hand.
PARCELS_ONLY = SourcingPolicy(
    handling_cost_per_unit={t: 0.0 for t in NodeType},
    store_penalty_per_unit=0.0,
    rejection_cost=0.0,
    lateness_cost=0.0,
    late_day_cost=0.0,
)


def node(
    node_id: str,
    km_east: float,
    stock: dict[str, int],
    node_type: NodeType = NodeType.WAREHOUSE,
    can_pickup: bool = False,
) -> CandidateNode:
    """A node `km_east` km east of HOME (about 83 km per degree of longitude there)."""
    return CandidateNode(
        node_id=node_id,
        node_type=node_type,
        location=GeoPoint(lat=HOME.lat, lon=HOME.lon + km_east / 82.9),
        can_ship=True,
        can_pickup=can_pickup,
        available=stock,
    )


def order(*items: tuple[str, int], **fields) -> SourcingOrder:
    lines = [OrderLine(line_no=i, sku=s, quantity=q) for i, (s, q) in enumerate(items, 1)]
    return SourcingOrder(lines=lines, destination=HOME, now=MONDAY_9AM, **fields)


def test_a_split_that_is_cheaper_than_one_box_is_chosen() -> None:
    # 40 units travelling 2,000 km cost far more than a second $8.76 package from nearby.
    candidates = [
        node("near-a", 20, {"A": 50}),
        node("near-b", 30, {"B": 50}),
        node("far-both", 2000, {"A": 50, "B": 50}),
    ]

    plan = optimize(order(("A", 20), ("B", 20)), candidates, PARCELS_ONLY)

    assert sorted(plan.node_ids) == ["near-a", "near-b"]
    one_box = next(a for a in plan.alternatives if a.node_ids == ["far-both"])
    # 40 units x 1,980 km x $0.000336/km = $26.6 of extra distance, less the $8.76 saved box.
    assert one_box.cost_difference == pytest.approx(26.6 - 8.76, abs=0.3)


def test_one_box_wins_when_splitting_saves_less_than_a_package() -> None:
    candidates = [
        node("near-a", 20, {"A": 5}),
        node("near-b", 30, {"B": 5}),
        node("farther-both", 300, {"A": 5, "B": 5}),
    ]

    plan = optimize(order(("A", 1), ("B", 1)), candidates, PARCELS_ONLY)

    assert plan.node_ids == ["farther-both"]
    assert plan.packages == 1


def test_a_store_over_its_daily_cap_is_skipped() -> None:
    full_store = NodeProfile(
        node=node("store-next-door", 1, {"A": 5}, NodeType.STORE),
        daily_capacity=40,
        current_load=40,
    )
    warehouse = node("warehouse", 400, {"A": 5})

    plan = optimize(order(("A", 1)), [full_store, warehouse], PARCELS_ONLY)

    assert plan.node_ids == ["warehouse"]
    assert "skipped store-next-door at daily capacity (40/40)" in plan.explanation


def test_a_store_below_its_daily_cap_still_serves() -> None:
    store = NodeProfile(
        node=node("store-next-door", 1, {"A": 5}, NodeType.STORE),
        daily_capacity=40,
        current_load=39,
    )

    plan = optimize(order(("A", 1)), [store, node("warehouse", 400, {"A": 5})], PARCELS_ONLY)

    assert plan.node_ids == ["store-next-door"]


def test_click_and_collect_uses_the_pickup_stores_own_stock() -> None:
    store = node("store-7", 15, {"A": 3, "B": 3}, NodeType.STORE, can_pickup=True)
    nearer_warehouse = node("warehouse", 2, {"A": 9, "B": 9})
    pickup = order(
        ("A", 1), ("B", 1), delivery_method=DeliveryMethod.PICKUP, pickup_node_id="store-7"
    )

    plan = optimize(pickup, [nearer_warehouse, store])

    assert plan.node_ids == ["store-7"]
    shipment = plan.shipments[0]
    assert shipment.carrier.carrier == COLLECT_CARRIER
    assert shipment.cost.shipping == 0
    assert shipment.promised_date == date(2025, 3, 3)  # picked today, collected today


def test_click_and_collect_in_the_local_scenario_keeps_to_the_pickup_store() -> None:
    # The store's own stock is pricier than usual here, but local means the store serves it.
    store = NodeProfile(
        node=node("store-7", 15, {"A": 3}, NodeType.STORE, can_pickup=True),
        handling_cost_per_unit=50.0,
    )
    pickup = order(
        ("A", 1),
        delivery_method=DeliveryMethod.PICKUP,
        pickup_node_id="store-7",
        scenario=Scenario.LOCAL,
    )

    plan = optimize(pickup, [node("warehouse", 16, {"A": 9}), store])

    assert plan.node_ids == ["store-7"]
    assert plan.alternatives == []


def test_click_and_collect_ships_to_the_store_when_its_shelves_are_empty() -> None:
    store = node("store-7", 15, {}, NodeType.STORE, can_pickup=True)
    pickup = order(("A", 1), delivery_method=DeliveryMethod.PICKUP, pickup_node_id="store-7")

    plan = optimize(pickup, [store, node("warehouse", 300, {"A": 9})])

    assert plan.node_ids == ["warehouse"]
    assert plan.shipments[0].carrier.service == "store-transfer"
    assert plan.shipments[0].distance_km == pytest.approx(285, abs=2)  # to the store, not HOME


def test_a_rules_max_distance_keeps_far_nodes_out_and_falls_back_when_it_must() -> None:
    ruleset = Ruleset(
        name="regional first",
        rules=[Rule(name="within 100 km", max_distance_km=100), Rule(name="anywhere")],
    )
    cheap_far = node("far", 500, {"A": 5, "B": 5})
    near = node("near", 50, {"A": 5})

    plan = optimize(order(("A", 1)), [cheap_far, near], PARCELS_ONLY, ruleset)
    fallback = optimize(order(("A", 1), ("B", 1)), [cheap_far, near], PARCELS_ONLY, ruleset)

    assert (plan.rule, plan.node_ids) == ("within 100 km", ["near"])
    assert fallback.rule == "anywhere"
    assert "rule(s) 'within 100 km' could not fill every line" in fallback.explanation


def test_a_rules_node_types_leave_stores_out() -> None:
    ruleset = Ruleset(name="no stores", rules=[Rule(name="dc only", node_types=[NodeType.DC])])
    store = node("store", 1, {"A": 5}, NodeType.STORE)
    dc = node("dc", 800, {"A": 5}, NodeType.DC)

    plan = optimize(order(("A", 1)), [store, dc], PARCELS_ONLY, ruleset)

    assert plan.node_ids == ["dc"]


def test_a_rules_max_splits_caps_the_number_of_shipments() -> None:
    candidates = [
        node("a", 10, {"A": 50}),
        node("b", 10, {"B": 50}),
        node("c", 10, {"C": 50}),
        node("ab", 1500, {"A": 50, "B": 50}),
    ]
    two_boxes = Ruleset(name="two boxes", rules=[Rule(name="max 2", max_splits=2)])
    heavy = order(("A", 20), ("B", 20), ("C", 20))

    free = optimize(heavy, candidates, PARCELS_ONLY)
    capped = optimize(heavy, candidates, PARCELS_ONLY, two_boxes)

    assert free.packages == 3
    assert sorted(capped.node_ids) == ["ab", "c"]


def test_keeping_lines_together_and_disallowing_splits_both_mean_one_box() -> None:
    candidates = [
        node("a", 10, {"A": 50}),
        node("b", 10, {"B": 50}),
        node("ab", 900, {"A": 50, "B": 50}),
    ]
    together = Ruleset(name="together", rules=[Rule(name="one box", keep_lines_together=True)])

    by_rule = optimize(order(("A", 20), ("B", 20)), candidates, PARCELS_ONLY, together)
    by_order = optimize(order(("A", 20), ("B", 20), allow_split=False), candidates, PARCELS_ONLY)

    assert by_rule.node_ids == by_order.node_ids == ["ab"]


def test_a_minimum_shipment_value_forbids_splitting_off_a_cheap_line() -> None:
    candidates = [
        node("a", 10, {"A": 50}),
        node("b", 10, {"B": 50}),
        node("ab", 900, {"A": 50, "B": 50}),
    ]
    ruleset = Ruleset(name="value", rules=[Rule(name="min $30", min_shipment_value=30)])
    priced = order(("A", 20), ("B", 20), unit_prices={"A": 10.0, "B": 1.0})

    plan = optimize(priced, candidates, PARCELS_ONLY, ruleset)

    assert plan.node_ids == ["ab"]  # B's box would be worth $20


def test_the_ruleset_is_chosen_by_channel_and_order_type() -> None:
    web = Ruleset(name="web", channels=["web"], rules=[Rule(name="r")])
    b2b = Ruleset(name="b2b", order_types=["b2b"], rules=[Rule(name="r")])

    assert select_ruleset([web, b2b], "web", None).name == "web"
    assert select_ruleset([web, b2b], "edi", "b2b").name == "b2b"
    assert select_ruleset([web, b2b], "pos", "dtc").name == "default"


def test_the_explanation_names_the_runner_up_and_the_cost_difference() -> None:
    candidates = [node("near", 50, {"A": 5}), node("farther", 700, {"A": 5})]

    plan = optimize(order(("A", 2)), candidates, PARCELS_ONLY)

    runner_up = plan.alternatives[0]
    assert runner_up.node_ids == ["farther"]
    assert runner_up.cost_difference == pytest.approx(2 * 0.000541 * 650 / 1.609344, abs=0.01)
    assert f"runner-up farther costs {runner_up.total_cost:.2f}, " in plan.explanation
    assert f"{runner_up.cost_difference:.2f} more" in plan.explanation


def test_the_same_input_gives_the_same_plan_whatever_the_node_order() -> None:
    rng = random.Random(7)
    skus = ["A", "B", "C", "D", "E"]
    candidates = [
        node(f"n{i:02d}", rng.uniform(0, 3000), {s: rng.randint(0, 3) for s in skus})
        for i in range(40)
    ]
    request = order(*((s, 1) for s in skus))

    first = optimize(request, candidates)
    again = optimize(request, candidates)
    shuffled = optimize(request, rng.sample(candidates, len(candidates)))

    assert first == again == shuffled


def test_the_search_finds_the_brute_force_optimum() -> None:
    rng = random.Random(11)
    for _ in range(25):
        skus = rng.sample(["A", "B", "C", "D", "E", "F"], rng.randint(1, 4))
        candidates = [
            node(f"n{i}", rng.uniform(0, 2500), {s: rng.randint(0, 2) for s in skus})
            for i in range(6)
        ]
        request = order(*((s, rng.randint(1, 2)) for s in skus))
        try:
            plan = optimize(request, candidates, PARCELS_ONLY)
        except NoFeasiblePlan:
            continue
        assert plan.total_cost == pytest.approx(_brute_force(request, candidates), abs=1e-3)


def _brute_force(request: SourcingOrder, candidates: list[CandidateNode]) -> float:
    """Every assignment of lines to nodes or to 'unfilled', costed from scratch."""
    policy = PARCELS_ONLY
    best = float("inf")
    options = [*candidates, None]
    for pick in itertools.product(options, repeat=len(request.lines)):
        used: dict[str, dict[str, int]] = {}
        cost, feasible = 0.0, True
        for line, n in zip(request.lines, pick, strict=True):
            if n is None:
                cost += policy.unserved_unit_penalty * line.quantity
                continue
            taken = used.setdefault(n.node_id, {})
            taken[line.sku] = taken.get(line.sku, 0) + line.quantity
            feasible &= n.available.get(line.sku, 0) >= taken[line.sku]
            km = _km_east(n)
            cost += line.quantity * (policy.unit_cost + policy.unit_cost_per_km * km)
        if feasible:
            best = min(best, cost + policy.package_cost * len(used))
    return best


def _km_east(n: CandidateNode) -> float:
    from domain.geo import distance_km

    return distance_km(n.location, HOME)


def test_a_line_no_node_holds_is_returned_unfilled() -> None:
    plan = optimize(order(("A", 1), ("ZZZ", 1)), [node("a", 10, {"A": 5})])

    assert plan.node_ids == ["a"]
    assert [ln.sku for ln in plan.unfilled_lines] == ["ZZZ"]
    assert "line(s) 2 unfilled" in plan.explanation


def test_an_order_nothing_can_serve_raises_with_the_reasons() -> None:
    excluded = order(("A", 1), excluded_nodes=["a"])

    with pytest.raises(NoFeasiblePlan) as raised:
        optimize(excluded, [node("a", 10, {"A": 5}), node("b", 10, {"B": 5})])

    assert raised.value.rejected_nodes == {
        "a": "excluded by the order",
        "b": "holds none of the lines",
    }
    assert raised.value.lines == excluded.lines


def test_a_spent_budget_falls_back_to_a_greedy_plan_that_still_serves_everything() -> None:
    rng = random.Random(3)
    skus = ["A", "B", "C", "D", "E"]
    candidates = [
        node(f"n{i:02d}", rng.uniform(0, 3000), {s: rng.randint(0, 1) for s in skus})
        for i in range(30)
    ]

    plan = optimize(
        order(*((s, 1) for s in skus)), candidates, budget=SearchBudget(max_evaluations=3)
    )

    assert not plan.exhaustive
    assert plan.unfilled_lines == []
    assert "search budget ran out" in plan.explanation


def test_an_order_before_the_cut_off_ships_the_same_day() -> None:
    friday_noon = datetime(2025, 3, 7, 12, 0)

    assert ship_date(friday_noon, ProcessingCalendar(cutoff_hour=14)) == date(2025, 3, 7)


def test_an_order_after_the_cut_off_on_friday_ships_on_monday() -> None:
    friday_late = datetime(2025, 3, 7, 15, 0)

    assert ship_date(friday_late, ProcessingCalendar(cutoff_hour=14)) == date(2025, 3, 10)


def test_processing_days_and_carrier_days_skip_the_weekend() -> None:
    thursday_noon = datetime(2025, 3, 6, 12, 0)
    calendar = ProcessingCalendar(cutoff_hour=14, processing_days=1)  # ships Friday
    ground = SourcingPolicy().transit  # 2 carrier days for 400 km
    from domain.carriers import CarrierService

    arrives = promised_date(
        thursday_noon, calendar, ground, CarrierService(carrier="X", service="ground"), 400
    )

    assert arrives == date(2025, 3, 11)  # Friday + Monday + Tuesday


def test_a_saturday_working_store_ships_on_saturday() -> None:
    saturday = datetime(2025, 3, 8, 10, 0)
    six_days = ProcessingCalendar(working_days=[0, 1, 2, 3, 4, 5])

    assert ship_date(saturday, six_days) == date(2025, 3, 8)
    assert ship_date(saturday, ProcessingCalendar()) == date(2025, 3, 10)


def test_the_plan_promises_the_later_of_its_shipments() -> None:
    slow = NodeProfile(
        node=node("slow", 10, {"A": 5}), calendar=ProcessingCalendar(processing_days=3)
    )
    fast = node("fast", 10, {"B": 5})

    plan = optimize(order(("A", 1), ("B", 1)), [slow, fast], PARCELS_ONLY)

    assert plan.promised_date == max(s.promised_date for s in plan.shipments)
    assert plan.promised_date == date(2025, 3, 7)  # Thursday start + 1 ground day


def test_the_fastest_scenario_pays_for_an_earlier_date() -> None:
    slow_but_near = NodeProfile(
        node=node("slow", 10, {"A": 5}), calendar=ProcessingCalendar(processing_days=4)
    )
    quick_but_far = node("quick", 600, {"A": 5})

    cheapest = optimize(order(("A", 1)), [slow_but_near, quick_but_far], PARCELS_ONLY)
    fastest = optimize(
        order(("A", 1), scenario=Scenario.FASTEST), [slow_but_near, quick_but_far], PARCELS_ONLY
    )

    assert cheapest.node_ids == ["slow"]
    assert fastest.node_ids == ["quick"]


def test_bid_prices_are_higher_for_scarce_stock_than_for_plentiful_stock() -> None:
    # Two regions each served best by their own node; "scarce" holds less than its region needs,
    # so every unit there spares a long, costly trip from the other node.
    demand = [
        DemandClass(region="east", skus={"A": 1}, expected_orders=100),
        DemandClass(region="west", skus={"A": 1}, expected_orders=100),
    ]
    inventory = {("scarce", "A"): 60.0, ("plenty", "A"): 500.0}
    lanes = {("scarce", "east"): 0.5, ("scarce", "west"): 2.0, ("plenty", "west"): 0.5,
             ("plenty", "east"): 2.0}  # fmt: skip

    prices = compute_bid_prices(
        demand, inventory, lanes, package_cost=8.76, unserved_unit_penalty=30
    )

    assert prices[("scarce", "A")] == pytest.approx(1.5)
    assert prices[("plenty", "A")] == 0.0


def test_bid_prices_steer_an_order_away_from_scarce_stock() -> None:
    candidates = [node("scarce", 10, {"A": 5}), node("plenty", 60, {"A": 500})]
    priced = PARCELS_ONLY.with_bid_prices({("scarce", "A"): 1.5, ("plenty", "A"): 0.0})

    myopic = optimize(order(("A", 1)), candidates, PARCELS_ONLY)
    aware = optimize(order(("A", 1)), candidates, priced)

    assert myopic.node_ids == ["scarce"]
    assert aware.node_ids == ["plenty"]
    assert aware.shipments[0].cost.opportunity == 0.0
    assert aware.alternatives[0].node_ids == ["scarce"]


def test_multi_item_bid_prices_come_from_an_lp_that_counts_packages() -> None:
    demand = [DemandClass(region="r", skus={"A": 1, "B": 1}, expected_orders=10)]
    inventory = {("ab", "A"): 10.0, ("ab", "B"): 10.0, ("a", "A"): 10.0, ("b", "B"): 10.0}
    lanes = {("ab", "r"): 1.0, ("a", "r"): 0.5, ("b", "r"): 0.5}

    from sourcing.bid_prices import solve_fluid_lp

    solution = solve_fluid_lp(demand, inventory, lanes, package_cost=8.0, unserved_unit_penalty=50)

    assert solution.objective == pytest.approx(10 * (8.0 + 2 * 1.0))  # one box beats two
    assert solution.expected_packages == pytest.approx(10)


def test_the_default_transit_table_has_a_band_for_any_distance() -> None:
    table = TransitTable()

    assert table.ground[-1].max_km > 40_000
