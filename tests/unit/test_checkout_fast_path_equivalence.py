"""The checkout's fast path (sourcing.quote) gives exactly the options `optimize` gives.

Thousands of random carts over random networks of 1 to 200 nodes — stores, warehouses and the
other types, some sharing a site (cost ties), pickup stores near the customer and far, node
calendars, profiles (cost overrides, capacity, reliability), bid prices, one-rule and two-rule
rulesets — checked with `check_cart` twice: the fast path, and `fast=False` (every option from
`optimize`). The whole answer must be the same, option by option, shipment by shipment.
"""

import random
from dataclasses import replace
from datetime import date, datetime, timedelta

from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import DeliveryOptionCode, OrderLine
from sourcing import NodeProfile, ProcessingCalendar, Rule, Ruleset, SourcingPolicy
from sourcing.checkout import _order, check_cart, pickup_store
from sourcing.optimizer import prepared
from sourcing.quote import TO_DIVIDE, UNDECIDED, fast_path_applies, quoted_plans
from tests.support.candidates import HOME, node, random_profile
from tests.support.candidates import lines as cart_of

SKUS = [f"S{i:02d}" for i in range(8)]
MONDAY_9AM = datetime(2026, 11, 30, 9, 0)
CALENDARS = [
    ProcessingCalendar(),
    ProcessingCalendar(cutoff_hour=8, processing_days=1),
    ProcessingCalendar(working_days=[0, 1, 2, 3, 4, 5], holidays=[date(2026, 12, 1)]),
    ProcessingCalendar(cutoff_hour=20, processing_days=2, working_days=[1, 2, 3]),
]
NETWORKS = 150
CARTS_PER_NETWORK = 20


def network(rng: random.Random) -> list[NodeProfile | CandidateNode]:
    size = rng.choice((1, 2, 5, 20, 60, 200))
    nodes: list[NodeProfile | CandidateNode] = []
    for n in range(size):
        node_type = rng.choice(
            [NodeType.STORE, NodeType.STORE, NodeType.WAREHOUSE, rng.choice(list(NodeType))]
        )
        if nodes and rng.random() < 0.1:
            # A twin on the same site, of the same kind and as bare: equal costs, the tie
            # broken by the nodes' order.
            twin = nodes[-1].node if isinstance(nodes[-1], NodeProfile) else nodes[-1]
            nodes.append(replace(twin, node_id=f"N{n:03d}", available=dict(twin.available)))
            continue
        location = GeoPoint(lat=rng.uniform(25, 48), lon=rng.uniform(-122, -70))
        node = CandidateNode(
            node_id=f"N{n:03d}",
            node_type=node_type,
            location=location,
            can_ship=rng.random() < 0.93,
            can_pickup=node_type == NodeType.STORE,
            priority=rng.choice((100, 100, 100, 50)),
            available={s: rng.choice((1, 2, 5, 20)) for s in SKUS if rng.random() < 0.5},
        )
        shape = rng.random()
        if shape < 0.3:
            nodes.append(node)
        elif shape < 0.6:
            nodes.append(NodeProfile.of(node).model_copy(update={"calendar": CALENDARS[0]}))
        else:
            nodes.append(random_profile(rng, node, CALENDARS))
    rng.shuffle(nodes)
    return nodes


def policy(rng: random.Random, nodes: list[NodeProfile | CandidateNode]) -> SourcingPolicy:
    shape = rng.random()
    if shape < 0.6:
        return SourcingPolicy()
    if shape < 0.9:
        ids = [(n.node if isinstance(n, NodeProfile) else n).node_id for n in nodes]
        prices = {
            (node_id, sku): rng.choice((0.0, 0.5, 3.0, 12.0))
            for node_id in ids
            for sku in SKUS
            if rng.random() < 0.3
        }
        return SourcingPolicy().with_bid_prices(prices)
    return SourcingPolicy(ration_stock=True)


def ruleset(rng: random.Random) -> Ruleset | None:
    shape = rng.random()
    if shape < 0.6:
        return None
    rule = Rule(
        name="a filter",
        node_types=rng.choice((None, [NodeType.STORE, NodeType.WAREHOUSE], [NodeType.STORE])),
        max_distance_km=rng.choice((None, 400.0, 1500.0)),
        max_splits=rng.choice((None, None, None, 1)),
    )
    if shape < 0.85:
        return Ruleset(name="one rule", rules=[rule])
    return Ruleset(name="two rules", rules=[rule, Rule(name="anywhere")])


def cart(rng: random.Random) -> list[OrderLine]:
    n_lines = rng.choice((1, 1, 2, 2, 3, 3, 3, 4))
    skus = rng.sample(SKUS, n_lines)
    if n_lines > 1 and rng.random() < 0.08:
        skus[-1] = skus[0]  # a repeated SKU: the fast path leaves it to optimize
    return [
        OrderLine(line_no=i + 1, sku=s, quantity=rng.choice((1, 1, 1, 2, 3)))
        for i, s in enumerate(skus)
    ]


def destination(rng: random.Random, nodes: list[NodeProfile | CandidateNode]) -> GeoPoint:
    """Anywhere, or a few km from a store (a pickup in reach)."""
    stores = [
        n.node if isinstance(n, NodeProfile) else n
        for n in nodes
        if (n.node if isinstance(n, NodeProfile) else n).can_pickup
    ]
    if stores and rng.random() < 0.5:
        near = rng.choice(stores).location
        return GeoPoint(
            lat=near.lat + rng.uniform(-0.2, 0.2), lon=near.lon + rng.uniform(-0.2, 0.2)
        )
    return GeoPoint(lat=rng.uniform(25, 48), lon=rng.uniform(-122, -70))


def scenarios(seed: int):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    for _ in range(NETWORKS):
        nodes = network(rng)
        chosen_policy = policy(rng, nodes)
        chosen_rules = ruleset(rng)
        for _ in range(CARTS_PER_NETWORK):
            now = MONDAY_9AM + timedelta(hours=rng.choice((0, 6, 30, 100)))
            yield cart(rng), destination(rng, nodes), nodes, now, chosen_policy, chosen_rules


def test_the_fast_path_gives_the_options_optimize_gives() -> None:
    compared = options = 0
    for lines, to, nodes, now, chosen_policy, chosen_rules in scenarios(seed=8):
        fast = check_cart(lines, to, nodes, now, chosen_policy, ruleset=chosen_rules)
        slow = check_cart(lines, to, nodes, now, chosen_policy, ruleset=chosen_rules, fast=False)
        assert fast.model_dump() == slow.model_dump(), (lines, to, now)
        compared += 1
        options += len(slow.options)
    assert compared == NETWORKS * CARTS_PER_NETWORK
    assert options > compared  # most carts have options: the comparison is not of empty lists


def test_the_fast_path_decides_nearly_every_small_cart_itself() -> None:
    """Near ties are left to optimize; they must stay rare, or the fast path is no fast path.
    So is a cart with a line no node holds whole: optimize may divide it between nodes."""
    decided = undecided = pickups = to_divide = 0
    for lines, to, nodes, now, chosen_policy, chosen_rules in scenarios(seed=9):
        if not fast_path_applies(lines, chosen_policy, chosen_rules):
            continue
        arrays = prepared(nodes, [ln.sku for ln in lines])
        plain = [n.node if isinstance(n, NodeProfile) else n for n in nodes]
        orders = [
            _order(lines, to, now, code, None)
            for code in (DeliveryOptionCode.HOME_FAST, DeliveryOptionCode.HOME_ECONOMY)
        ]
        store = pickup_store(lines, to, plain)
        if store is not None:
            orders.append(
                _order(lines, store.location, now, DeliveryOptionCode.PICKUP, None, store)
            )
            pickups += 1
        for quote in quoted_plans(orders, arrays, chosen_policy, chosen_rules):
            if quote is TO_DIVIDE:
                to_divide += 1  # a line no candidate holds whole: optimize may divide it
            elif quote is UNDECIDED:
                undecided += 1
            else:
                decided += 1
    assert pickups > 100 and to_divide > 50
    assert undecided <= 0.1 * (decided + undecided), (decided, undecided)


def test_a_line_no_node_holds_whole_is_quoted_as_optimize_divides_it() -> None:
    """The fast path leaves such a cart to optimize (TO_DIVIDE), whose plan divides the line
    between nodes (sourcing/splits.py): the option is that plan, not "no option"."""
    nodes = [node("WH-NEAR", 100, {"TEE": 2, "CAP": 5}), node("WH-FAR", 400, {"TEE": 2})]
    cart = cart_of(("TEE", 3), ("CAP", 1))
    orders = [
        _order(cart, HOME, MONDAY_9AM, code, None)
        for code in (DeliveryOptionCode.HOME_FAST, DeliveryOptionCode.HOME_ECONOMY)
    ]

    quotes = quoted_plans(orders, prepared(nodes, ["TEE", "CAP"]), SourcingPolicy(), None)
    fast = check_cart(cart, HOME, nodes, MONDAY_9AM)

    assert quotes == [TO_DIVIDE, TO_DIVIDE]
    assert fast == check_cart(cart, HOME, nodes, MONDAY_9AM, fast=False)
    economy = next(o for o in fast.options if o.code == DeliveryOptionCode.HOME_ECONOMY)
    tee = [(s.node_id, ln.quantity) for s in economy.shipments for ln in s.lines if ln.sku == "TEE"]
    assert sorted(tee) == [("WH-FAR", 1), ("WH-NEAR", 2)]
