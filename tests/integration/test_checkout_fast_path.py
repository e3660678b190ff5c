"""The checkout hot path (numpy arrays in ledger/availability_cache.py) gives the same answers as
the scalar functions and the database: the same channel shares, the same candidates, the same
checkout answer for every cart."""

import random
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import Engine, insert, update
from sqlmodel import Session, col

from domain.availability import ChannelPoolRule, ChannelShares, channel_share
from domain.geo import GeoPoint
from domain.network import CandidateNode, NodeType
from domain.orders import OrderLine
from ledger import stock
from ledger.availability import channel_pool
from ledger.availability_cache import AvailabilityCache
from ledger.db import transaction
from ledger.errors import UnknownPosition
from ledger.tables import ChannelPool, Node, Sku, StockPosition
from services.checkout import _node_arrays, _static_arrays, answer_from_cache, run_checkout_check
from services.sourcing_inputs import with_calendars
from sourcing.optimizer import NodeArrays, node_arrays

TYPES = [t.value for t in NodeType]
NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)


def random_pool(rng: random.Random, node_ids: list[str]) -> ChannelPoolRule | None:
    if rng.random() < 0.2:
        return None
    return ChannelPoolRule(
        channel="c",
        node_types=rng.choice([None, rng.sample(TYPES, rng.randint(0, len(TYPES)))]),
        node_ids=rng.choice([None, rng.sample(node_ids, rng.randint(0, len(node_ids)))]),
        share_by_node_type={
            t: rng.choice([0.0, 0.1, 1 / 3, 0.5, 0.7, 0.99, 1.0, rng.random()])
            for t in rng.sample(TYPES, rng.randint(0, len(TYPES)))
        },
        cap_by_node_type={
            t: rng.choice([0, 1, 2, 5, 100]) for t in rng.sample(TYPES, rng.randint(0, 3))
        },
    )


def test_vectorised_channel_share_equals_the_scalar_function() -> None:
    rng = random.Random(11)
    for _ in range(300):
        node_ids = [f"n{i}" for i in range(rng.randint(1, 25))]
        node_types = [rng.choice(TYPES) for _ in node_ids]
        pool = random_pool(rng, node_ids)
        shares = ChannelShares(node_ids, node_types, pool)
        nodes = np.array(
            rng.sample(range(len(node_ids)), rng.randint(0, len(node_ids))), dtype=np.int64
        )
        units = np.array([rng.choice((0, 1, 2, 3, 7, 10, 999, 10**9)) for _ in nodes])
        expected = [
            channel_share(int(u), node_ids[n], node_types[n], pool)
            for u, n in zip(units.tolist(), nodes.tolist(), strict=True)
        ]
        assert shares.apply(units.astype(np.int64), nodes).tolist() == expected


# ------------------------------------------------------------------ the cache against the database
SKUS = [f"S{i}" for i in range(6)]
POOLS = {
    "stores-only": ChannelPool(channel="stores-only", node_types=["store"]),
    "shared": ChannelPool(
        channel="shared",
        share_by_node_type={"warehouse": 0.5, "store": 0.34},
        cap_by_node_type={"store": 2, "dc": 7},
    ),
    "listed": ChannelPool(channel="listed", node_ids=[f"N{i:02d}" for i in range(0, 30, 3)]),
}
CHANNELS = ["web", *POOLS]


def seed_network(engine: Engine, rng: random.Random) -> list[str]:
    # A 1-degree square so pickup (50 km) is sometimes possible, and a few nodes sharing a
    # location so ties in distance are exercised.
    spots = [(40 + rng.random(), -75 + rng.random()) for _ in range(22)]
    node_ids = []
    with transaction(engine) as session:
        for s in SKUS:
            session.add(Sku(sku=s, name=s))
        for i in range(30):
            node_type = rng.choice(["warehouse", "store", "store", "dc", "3pl"])
            lat, lon = rng.choice(spots)
            session.add(
                Node(
                    node_id=f"N{i:02d}", name=f"n{i}", node_type=node_type, lat=lat, lon=lon,
                    can_ship=rng.random() < 0.8, can_pickup=node_type == "store",
                    active=rng.random() < 0.9, priority=rng.choice((50, 100)),
                    system_url="http://sim",
                )
            )  # fmt: skip
            node_ids.append(f"N{i:02d}")
        for pool in POOLS.values():
            session.add(ChannelPool.model_validate(pool.model_dump()))
        session.flush()
        rows = []
        for n in node_ids:
            for s in SKUS:
                if rng.random() < 0.8:  # some positions do not exist at all
                    reserved, held = rng.choice((0, 0, 0, 1)), rng.choice((0, 0, 1))
                    rows.append(
                        {"node_id": n, "sku": s, "reserved": reserved, "held": held,
                         "on_hand": reserved + held + rng.choice((0, 0, 1, 2, 3, 5, 20)),
                         "safety_stock": rng.choice((0, 0, 1))}
                    )  # fmt: skip
        session.execute(insert(StockPosition), rows)
    return node_ids


def summary(candidates: list[CandidateNode]) -> list[tuple]:
    return [
        (c.node_id, c.node_type, c.location.lat, c.location.lon, c.can_ship, c.can_pickup,
         c.priority, dict(sorted(c.available.items())))
        for c in candidates
    ]  # fmt: skip


def assert_same_answers(engine: Engine, cache: AvailabilityCache, rng: random.Random) -> int:
    checked = 0
    for _ in range(150):
        channel = rng.choice(CHANNELS)
        picked = rng.sample(SKUS, rng.randint(1, 3))
        picked += rng.sample(picked, rng.randint(0, 1))  # the same SKU on two lines
        lines = [
            OrderLine(line_no=i + 1, sku=s, quantity=rng.choice((1, 1, 2, 3, 40)))
            for i, s in enumerate(picked)
        ]
        destination = GeoPoint(lat=40 + rng.uniform(-0.3, 1.3), lon=-75 + rng.uniform(-0.3, 1.3))
        with Session(engine) as session:
            pool = channel_pool(session, channel)
            from_db = stock.candidate_nodes(session, set(picked), pool)

        assert summary(cache.candidates(set(picked), channel)) == summary(
            [c for c in from_db if c.available]
        )
        with transaction(engine) as session:
            from_database, _ = run_checkout_check(session, channel, lines, destination, NOW)
        assert answer_from_cache(cache, channel, lines, destination, NOW) == from_database
        checked += 1
    return checked


def test_checkout_from_the_cache_equals_checkout_from_the_database(ledger_engine: Engine) -> None:
    rng = random.Random(3)
    node_ids = seed_network(ledger_engine, rng)
    cache = AvailabilityCache(ledger_engine)
    cache.load()

    assert assert_same_answers(ledger_engine, cache, rng) == 150

    # Stock moves (tailed from the movements), a node goes down and one comes back (network
    # reload): the cache follows and still agrees.
    with transaction(ledger_engine) as session:
        for _ in range(40):
            node_id, sku = rng.choice(node_ids), rng.choice(SKUS)
            try:
                stock.adjust_on_hand(session, node_id, sku, rng.choice((1, 2, 6)))
            except UnknownPosition:
                stock.open_position(session, node_id, sku, rng.choice((1, 4)))
        session.execute(update(Node).where(col(Node.node_id) == "N01").values(active=False))
        session.execute(update(Node).where(col(Node.node_id) == "N02").values(active=True))
    cache.refresh()
    cache._load_network()

    assert assert_same_answers(ledger_engine, cache, rng) == 150


def test_stock_seen_before_its_node_is_left_to_the_database(ledger_engine: Engine) -> None:
    """A node and its stock created within one network refresh: the positions are tailed at once,
    the node only at the next reload. Until then the database answers, not the cache."""
    cache = AvailabilityCache(ledger_engine)
    cache.load()  # an empty network
    with transaction(ledger_engine) as session:
        session.add(Sku(sku="NEW", name="new"))
        session.add(Node(node_id="NEW-DC", name="new", node_type="dc", lat=40.0, lon=-74.0,
                         system_url="http://sim"))  # fmt: skip
        session.flush()
        stock.open_position(session, "NEW-DC", "NEW", 5)
    cache.refresh()  # within NETWORK_REFRESH_SECONDS: the stock, not yet the node
    lines = [OrderLine(line_no=1, sku="NEW", quantity=1)]

    destination = GeoPoint(lat=40.5, lon=-74.5)

    assert cache.candidates({"NEW"}, "web") == []
    # Not "unavailable": the database answers until the cache knows the node.
    assert answer_from_cache(cache, "web", lines, destination, NOW) is None
    cache._load_network()
    answer = answer_from_cache(cache, "web", lines, destination, NOW)
    assert [c.node_id for c in cache.candidates({"NEW"}, "web")] == ["NEW-DC"]
    assert answer is not None and answer.options[0].shipments[0].node_id == "NEW-DC"


def test_a_retired_sku_is_not_answered_from_the_cache(ledger_engine: Engine) -> None:
    rng = random.Random(5)
    seed_network(ledger_engine, rng)
    cache = AvailabilityCache(ledger_engine)
    cache.load()
    assert cache.knows("S1")

    with transaction(ledger_engine) as session:
        session.execute(update(Sku).where(col(Sku.sku) == "S1").values(active=False))
    cache._load_network()

    assert not cache.knows("S1")
    assert cache.knows("S2")


def test_a_node_safety_stock_change_reaches_the_cache(ledger_engine: Engine) -> None:
    """Safety stock moves no counter, yet changes what is available: the cache must see it."""
    from domain.configuration import NodeSpec
    from services.configuration import apply_nodes, node_spec

    rng = random.Random(11)
    seed_network(ledger_engine, rng)
    cache = AvailabilityCache(ledger_engine)
    cache.load()
    node_id = cache.candidates(set(SKUS), "web")[0].node_id
    with Session(ledger_engine) as session:
        node = session.get(Node, node_id)
        assert node is not None
        spec = node_spec(node)
    held_back = NodeSpec(**{**spec.model_dump(), "safety_stock": 10_000})

    with transaction(ledger_engine) as session:
        apply_nodes(session, [held_back], "test")
    cache.refresh()

    assert all(c.node_id != node_id for c in cache.candidates(set(SKUS), "web"))
    assert_same_answers(ledger_engine, cache, rng)


# ------------------------------------------------------------ the shortlist on a larger network
def seed_wide_network(
    engine: Engine, rng: random.Random, nodes: int = 150, zones: tuple[str, ...] = ("UTC",)
) -> None:
    """Warehouses and stores over a 4-degree square, most SKUs at most nodes, calendars of
    their own in `zones`."""
    with transaction(engine) as session:
        for s in SKUS:
            session.add(Sku(sku=s, name=s))
        for i in range(nodes):
            node_type = "warehouse" if i % 15 == 0 else rng.choice(["store", "store", "dc"])
            session.add(
                Node(
                    node_id=f"W{i:03d}", name=f"w{i}", node_type=node_type,
                    lat=39 + 4 * rng.random(), lon=-77 + 4 * rng.random(),
                    can_ship=rng.random() < 0.9, can_pickup=node_type == "store",
                    priority=rng.choice((50, 100, 100)), system_url="http://sim",
                    cutoff_time=rng.choice(("14:00", "14:00", "09:00")),
                    processing_days=rng.choice((0, 0, 1)), timezone=rng.choice(zones),
                )
            )  # fmt: skip
        session.flush()
        rows = [
            {"node_id": f"W{i:03d}", "sku": s, "reserved": 0, "held": 0,
             "on_hand": rng.choice((0, 1, 2, 5, 30)), "safety_stock": 0}
            for i in range(nodes) for s in SKUS if rng.random() < 0.85
        ]  # fmt: skip
        session.execute(insert(StockPosition), rows)


def same_arrays(a: NodeArrays, b: NodeArrays) -> bool:
    plain = ("ids", "skus")
    arrays = ("types", "lat", "lon", "can_ship", "can_pickup", "stock", "handling",
              "store_penalty", "capacity", "load", "rejection_rate", "lateness_rate")  # fmt: skip
    return (
        all(getattr(a, f) == getattr(b, f) for f in plain)
        and all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True) for f in arrays)
        and [a.calendars[i] for i in a.calendar] == [b.calendars[i] for i in b.calendar]
    )


@pytest.mark.parametrize(
    "zones", [("UTC",), ("Europe/Paris",), ("UTC", "America/New_York", "America/Chicago")]
)
def test_the_cache_plans_from_arrays_what_the_database_plans_from_every_node(
    ledger_engine: Engine, zones: tuple[str, ...]
) -> None:
    """150 nodes, 1-3 lines: the cache hands the optimizer arrays, not a node object per
    candidate; they are the arrays the optimizer reads from the database path's profiles, and
    the answers are the same, options and plans alike, `now` read on the clock of every
    candidate (one zone, or several that do not share one), with the checkout's fast path or
    with every option from optimize."""
    rng = random.Random(17)
    seed_wide_network(ledger_engine, rng, zones=zones)
    cache = AvailabilityCache(ledger_engine)
    cache.load()
    for k in range(50):
        picked = rng.sample(SKUS, rng.choice((1, 2, 3)))
        lines = [
            OrderLine(line_no=i + 1, sku=s, quantity=rng.choice((1, 1, 2, 4)))
            for i, s in enumerate(picked)
        ]
        destination = GeoPoint(lat=39 + 4 * rng.random(), lon=-77 + 4 * rng.random())
        now = NOW.replace(hour=rng.choice((8, 10, 16)), day=rng.choice((25, 27, 28)))

        with transaction(ledger_engine) as session:
            from_database, _ = run_checkout_check(session, "web", lines, destination, now)
            candidates = stock.candidate_nodes(session, set(picked), channel_pool(session, "web"))
            profiles, _ = with_calendars(session, candidates, now)
        from_cache = answer_from_cache(cache, "web", lines, destination, now)

        assert from_cache == from_database, k
        # The checkout's fast path (sourcing.quote) over the cache's arrays, and optimize.
        assert answer_from_cache(cache, "web", lines, destination, now, fast=False) == from_cache
        assert [o.code for o in from_cache.options][:2] == ["home_fast", "home_economy"]
        found = cache.checkout_rows(picked, "web")
        read = _node_arrays(_static_arrays(found.table, cache.calendar_columns()), found)
        # The database lists nodes with no units too; the optimizer leaves them out at once.
        entries = sorted(
            ((p.node, p) for p in profiles if p.node.available),
            key=lambda e: (e[0].priority, e[0].node_id),
        )
        assert same_arrays(read, node_arrays(entries, sorted(set(picked))))
        assert len(read) > 50  # candidates by the dozen, not a shortlist
