"""The fast optimizer gives the plans the per-node loops of commit fbe1241 gave.

tests/support/optimizer_reference.py is that optimizer, frozen. Random orders (fixed seeds) over
random networks of 5 to 200 nodes, in the three scenarios, home and pickup, with excluded nodes,
rules (distance, node types, node groups, splits, minimum shipment value), bid prices, node
profiles (capacity, calendars, reliability, cost overrides) and repeated SKUs: the whole plan
must be the same, field by field, and an order neither can serve must fail alike.

The reference never divides a line, so most random policies do not either (split_lines=False);
the default policy, which divides a line no eligible node holds whole, is compared on networks
where every node with some of a line holds it whole: there it must give the reference's plan.
"""

import random
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import DeliveryMethod, OrderLine
from sourcing import (
    NodeProfile,
    NoFeasiblePlan,
    Plan,
    ProcessingCalendar,
    Rule,
    Ruleset,
    Scenario,
    SearchBudget,
    SourcingOrder,
    SourcingPolicy,
    optimize,
)
from tests.support import optimizer_reference
from tests.support.candidates import random_profile

ORDERS = 300
SKUS = [f"S{i:02d}" for i in range(12)]
MONDAY_9AM = datetime(2026, 11, 30, 9, 0)
CALENDARS = [
    ProcessingCalendar(),
    ProcessingCalendar(cutoff_hour=8, processing_days=1),
    ProcessingCalendar(working_days=[0, 1, 2, 3, 4, 5], holidays=[date(2026, 12, 1)]),
]


def network(rng: random.Random, size: int) -> list[NodeProfile | CandidateNode]:
    """Nodes around the US; some bare, some with profiles; a few sharing a site (cost ties)."""
    nodes: list[NodeProfile | CandidateNode] = []
    for n in range(size):
        node_type = rng.choice(list(NodeType))
        if nodes and rng.random() < 0.05:
            twin = nodes[-1].node if isinstance(nodes[-1], NodeProfile) else nodes[-1]
            location = twin.location
        else:
            location = GeoPoint(lat=rng.uniform(25, 48), lon=rng.uniform(-122, -70))
        node = CandidateNode(
            node_id=f"N{n:03d}",
            node_type=node_type,
            location=location,
            can_ship=rng.random() < 0.93,
            can_pickup=node_type == NodeType.STORE,
            priority=rng.choice((100, 100, 100, 50)),
            available={s: rng.choice((1, 2, 5, 20)) for s in SKUS if rng.random() < 0.4},
        )
        shape = rng.random()
        if shape < 0.4:
            nodes.append(node)
        elif shape < 0.6:
            nodes.append(NodeProfile.of(node))
        else:
            nodes.append(random_profile(rng, node, CALENDARS))
    rng.shuffle(nodes)
    return nodes


def random_order(
    rng: random.Random, k: int, nodes: list[NodeProfile | CandidateNode]
) -> SourcingOrder:
    n_lines = rng.choice((1, 1, 2, 2, 3, 3, 4, 5))
    skus = rng.sample(SKUS, n_lines)
    if n_lines > 1 and rng.random() < 0.1:
        skus[-1] = skus[0]  # a repeated SKU: stock shared between lines at one node
    lines = [
        OrderLine(line_no=i + 1, sku=s, quantity=rng.choice((1, 1, 2, 3)))
        for i, s in enumerate(skus)
    ]
    plain = [n.node if isinstance(n, NodeProfile) else n for n in nodes]
    stores = [n for n in plain if n.can_pickup]
    pickup = stores and rng.random() < 0.25
    excluded = [n.node_id for n in rng.sample(plain, min(len(plain), rng.choice((0, 0, 1, 3))))]
    return SourcingOrder(
        order_id=f"eq-{k}",
        lines=lines,
        destination=GeoPoint(lat=rng.uniform(25, 48), lon=rng.uniform(-122, -70)),
        delivery_method=DeliveryMethod.PICKUP if pickup else DeliveryMethod.HOME,
        pickup_node_id=rng.choice(stores).node_id if pickup else None,
        scenario=rng.choice(list(Scenario)),
        priority=rng.randint(0, 9),
        allow_split=rng.random() < 0.9,
        max_splits=rng.choice((None, None, 1, 2)),
        excluded_nodes=excluded,
        requested_date=rng.choice((None, MONDAY_9AM.date() + timedelta(days=2))),
        now=MONDAY_9AM + timedelta(hours=rng.choice((0, 6, 30))),
        unit_prices={s: rng.choice((5.0, 40.0)) for s in SKUS},
    )


def random_ruleset(rng: random.Random, nodes: list[NodeProfile | CandidateNode]) -> Ruleset | None:
    if rng.random() < 0.4:
        return None
    ids = [(n.node if isinstance(n, NodeProfile) else n).node_id for n in nodes]
    first = Rule(
        name="near stores and warehouses",
        node_types=rng.choice((None, [NodeType.STORE, NodeType.WAREHOUSE], [NodeType.DC])),
        node_ids=rng.choice((None, rng.sample(ids, max(1, len(ids) // 3)))),
        max_distance_km=rng.choice((None, 400.0, 1500.0)),
        max_splits=rng.choice((None, 1, 2)),
        min_shipment_value=rng.choice((None, None, 30.0)),
        keep_lines_together=rng.random() < 0.1,
    )
    return Ruleset(name="random", rules=[first, Rule(name="anywhere")])


def random_policy(rng: random.Random, nodes: list[NodeProfile | CandidateNode]) -> SourcingPolicy:
    shape = rng.random()
    if shape < 0.5:
        return SourcingPolicy(split_lines=False)  # the reference never divides a line
    prices = {}
    for n in nodes:
        node = n.node if isinstance(n, NodeProfile) else n
        for sku in node.available:
            if rng.random() < 0.3:
                prices[(node.node_id, sku)] = rng.choice((0.5, 3.0, 12.0))
    return SourcingPolicy(
        ration_stock=shape > 0.85,
        unserved_unit_penalty=rng.choice((40.0, 500.0)),
        split_lines=False,
    ).with_bid_prices(prices)


def holding_lines_whole(
    nodes: list[NodeProfile | CandidateNode], order: SourcingOrder
) -> list[NodeProfile | CandidateNode]:
    """The network with every node that has some of an order's SKU holding all the order wants
    of it: whatever nodes a rule, an exclusion or a capacity leaves, a line one of them can
    serve in part, some node holds whole, so no line is ever divided."""
    wanted: dict[str, int] = {}
    for line in order.lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity

    def topped_up(node: CandidateNode) -> CandidateNode:
        available = {
            sku: max(units, wanted.get(sku, 0)) if units > 0 else units
            for sku, units in node.available.items()
        }
        return replace(node, available=available)

    return [
        n.model_copy(update={"node": topped_up(n.node)})
        if isinstance(n, NodeProfile)
        else topped_up(n)
        for n in nodes
    ]


def outcome(solve, order, nodes, policy, ruleset, budget) -> Plan | tuple[str, dict]:
    try:
        return solve(order, nodes, policy, ruleset, budget)
    except NoFeasiblePlan as exc:
        return ("no feasible plan", exc.rejected_nodes)


@pytest.mark.parametrize("seed", range(6))
def test_the_fast_optimizer_gives_the_reference_plan_field_by_field(seed: int) -> None:
    rng = random.Random(seed)
    compared = 0
    for k in range(ORDERS // 6):
        nodes = network(rng, rng.choice((5, 12, 40, 120, 200)))
        order = random_order(rng, k, nodes)
        policy = random_policy(rng, nodes)
        ruleset = random_ruleset(rng, nodes)
        budget = rng.choice(
            (SearchBudget(), SearchBudget(alternatives=1), SearchBudget(max_evaluations=30))
        )

        expected = outcome(optimizer_reference.optimize, order, nodes, policy, ruleset, budget)
        got = outcome(optimize, order, nodes, policy, ruleset, budget)

        if isinstance(expected, Plan):
            assert isinstance(got, Plan), order
            assert got.model_dump() == expected.model_dump(), order
            assert got.model_dump_json() == expected.model_dump_json()  # floats stay floats
            assert [s.node_id for s in got.shipments] == [s.node_id for s in expected.shipments]
            compared += 1
        else:
            assert got == expected, order
    assert compared > ORDERS // 12  # most orders are served: plans, not errors, are compared


@pytest.mark.parametrize("seed", range(3))
def test_the_default_policy_gives_the_reference_plan_where_some_node_holds_every_line_whole(
    seed: int,
) -> None:
    """The default policy (split_lines on, with or without bid prices and rationing) over
    random networks, orders, rules and budgets whose lines some eligible node holds whole."""
    rng = random.Random(1000 + seed)
    compared = 0
    for k in range(ORDERS // 6):
        nodes = network(rng, rng.choice((5, 12, 40, 120, 200)))
        order = random_order(rng, k, nodes)
        nodes = holding_lines_whole(nodes, order)
        random_choice = random_policy(rng, nodes)
        policy = random_choice.model_copy(update={"split_lines": SourcingPolicy().split_lines})
        assert policy.split_lines
        ruleset = random_ruleset(rng, nodes)
        budget = rng.choice(
            (SearchBudget(), SearchBudget(alternatives=1), SearchBudget(max_evaluations=30))
        )

        expected = outcome(optimizer_reference.optimize, order, nodes, policy, ruleset, budget)
        got = outcome(optimize, order, nodes, policy, ruleset, budget)

        if isinstance(expected, Plan):
            assert isinstance(got, Plan), order
            assert got.model_dump() == expected.model_dump(), order
            assert got.model_dump_json() == expected.model_dump_json()
            compared += 1
        else:
            assert got == expected, order
    assert compared > ORDERS // 12


def test_the_checkout_scenarios_over_200_nodes_match_the_reference() -> None:
    """The checkout's three questions (fastest, cheapest, local pickup) on a dense network."""
    rng = random.Random(99)
    nodes = network(rng, 200)
    plain = [n.node if isinstance(n, NodeProfile) else n for n in nodes]
    stores = [n.node_id for n in plain if n.can_pickup]
    for k in range(40):
        lines = [
            OrderLine(line_no=i + 1, sku=s, quantity=1)
            for i, s in enumerate(rng.sample(SKUS, rng.choice((1, 2, 3))))
        ]
        destination = GeoPoint(lat=rng.uniform(25, 48), lon=rng.uniform(-122, -70))
        for scenario in Scenario:
            pickup = scenario == Scenario.LOCAL
            order = SourcingOrder(
                order_id=f"co-{k}", lines=lines, destination=destination, now=MONDAY_9AM,
                scenario=scenario,
                delivery_method=DeliveryMethod.PICKUP if pickup else DeliveryMethod.HOME,
                pickup_node_id=rng.choice(stores) if pickup else None,
            )  # fmt: skip
            expected = outcome(
                optimizer_reference.optimize, order, nodes, SourcingPolicy(), None, SearchBudget()
            )
            got = outcome(optimize, order, nodes, SourcingPolicy(), None, SearchBudget())
            if isinstance(expected, Plan):
                assert got.model_dump() == expected.model_dump()
            else:
                assert got == expected


def test_the_search_needs_only_the_exact_shortlist_of_each_rule() -> None:
    """search.shortlist's claim: optimize over the shortlisted nodes alone (with the pickup
    store and the nodes at capacity, which the plan names) gives the plan it gives over all."""
    from sourcing.optimizer import _OrderPass, _problem, node_arrays
    from sourcing.rules import DEFAULT_RULESET
    from sourcing.search import shortlist

    rng = random.Random(2024)
    checked = 0
    for k in range(120):
        nodes = network(rng, rng.choice((40, 120, 200)))
        order = random_order(rng, k, nodes)
        if len({ln.sku for ln in order.lines}) < len(order.lines):
            continue
        policy = random_policy(rng, nodes)
        full = outcome(optimize, order, nodes, policy, None, SearchBudget())
        if not isinstance(full, Plan) or not full.exhaustive:
            continue
        entries = sorted(
            ((n.node, n) if isinstance(n, NodeProfile) else (n, None) for n in nodes),
            key=lambda e: (e[0].priority, e[0].node_id),
        )
        arrays = node_arrays(entries, sorted({ln.sku for ln in order.lines}))
        context = _OrderPass(order, arrays)
        keep = set(context.skipped()) | {order.pickup_node_id}
        for rule in DEFAULT_RULESET.rules:
            candidates = context.candidates(policy, rule)
            problem, _ = _problem(order, candidates, policy, rule)
            listed = shortlist(problem, SearchBudget().alternatives + 1).tolist()
            keep |= {candidates.ids[i] for i in listed}
        few = [n for n in nodes if _node_id(n) in keep]

        assert len(few) < len(nodes)
        assert optimize(order, few, policy).model_dump() == full.model_dump()
        checked += 1
    assert checked > 40


def _node_id(n: NodeProfile | CandidateNode) -> str:
    return (n.node if isinstance(n, NodeProfile) else n).node_id
