"""A channel's maximum shipments per order, applied live on real SQLite and PostgreSQL: the
allocation plans its orders under that limit (a line no single node holds whole is backordered,
or with ship-partial waits while the lines one node holds ship, where an unlimited channel
divides it), its checkout quotes no option beyond it (the cache as the database does, a pre-order
too), and the backorder sweep skips an order the limit cannot serve."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine

from domain.configuration import ChannelSpec
from domain.geo import GeoPoint
from domain.orders import DeliveryMethod, DeliveryOptionCode, OrderLine, OrderType
from domain.sla import uniform_sla_policy
from ledger.availability_cache import AvailabilityCache
from ledger.db import transaction
from services import allocation, checkout, incoming, preorders
from services.allocation import AllocationRequest
from services.backorders import orders_to_retry
from services.configuration import apply_channels
from services.sourcing_policy import forget_cached_policies
from tests.integration.test_backorder_sweep import DAY, NOW, _backordered, _network, _receive
from tests.support.ledger_checks import assert_ledger_balances
from tests.support.ledger_fixtures import position, seed

SLA = uniform_sla_policy(60)
HERE = GeoPoint(lat=0, lon=0)
PREORDER_NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)  # a Tuesday; the purchase orders: Thursday
DUE = date(2026, 12, 3)


@pytest.fixture(autouse=True)
def _no_limits_left_cached() -> Iterator[None]:
    """A later test on the same engine must not plan under these channels' cached limits."""
    yield
    forget_cached_policies()
    preorders.forget_preorder_channels()


def _channels(engine: Engine, **limits: int | None) -> None:
    specs = [
        ChannelSpec(channel=name, name=name, channel_type=OrderType.B2B,
                    max_shipments_per_order=limit)
        for name, limit in limits.items()
    ]  # fmt: skip
    with transaction(engine) as session:
        apply_channels(session, specs, "test")


def _request(
    channel: str, quantity: int = 0, lines: list[OrderLine] | None = None, **fields: object
) -> AllocationRequest:
    return AllocationRequest(
        order_id=f"o-{channel}-{quantity}",
        channel=channel,
        lines=lines or [OrderLine(line_no=1, sku="TEE", quantity=quantity)],
        destination=HERE,
        delivery_method=DeliveryMethod.HOME,
        **fields,  # type: ignore[arg-type]
    )


def _nodes(result: allocation.Allocation) -> list[tuple[str, int]]:
    return sorted((s.node_id, ln.quantity) for s in result.shipments for ln in s.lines)


def test_a_channel_limited_to_one_shipment_backorders_a_line_an_unlimited_channel_divides(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300})
    _channels(ledger_engine, b2b=1, web=None)

    backordered = allocation.allocate(ledger_engine, SLA, _request("b2b", 678))
    assert backordered.backordered and backordered.shipments == []
    assert [position(ledger_engine, n)[1] for n in ("WH-A", "WH-B")] == [0, 0]

    divided = allocation.allocate(ledger_engine, SLA, _request("web", 678))
    assert _nodes(divided) == [("WH-A", 400), ("WH-B", 278)]
    assert_ledger_balances(ledger_engine)


def test_a_ship_partial_order_of_a_one_shipment_channel_ships_the_lines_one_node_holds_whole(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300}, skus=("TEE", "MUG"))
    _channels(ledger_engine, b2b=1, web=None)
    lines = [
        OrderLine(line_no=1, sku="TEE", quantity=678),
        OrderLine(line_no=2, sku="MUG", quantity=5),
    ]

    limited = allocation.allocate(ledger_engine, SLA, _request("b2b", lines=lines, partial=True))
    unlimited = allocation.allocate(ledger_engine, SLA, _request("web", lines=lines, partial=True))

    # One node: the mugs go, the tees (no node holds 678) wait; unlimited: the tees are divided.
    assert len(limited.shipments) == 1 and limited.unfilled_lines == [lines[0]]
    assert [(ln.sku, ln.quantity) for s in limited.shipments for ln in s.lines] == [("MUG", 5)]
    assert unlimited.unfilled_lines == [] and len(unlimited.shipments) == 2
    assert_ledger_balances(ledger_engine)


def test_a_channel_limited_to_two_shipments_divides_a_line_between_two_nodes_only(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 30, "WH-B": 30, "WH-C": 30})
    _channels(ledger_engine, b2b=2, web=None)

    assert allocation.allocate(ledger_engine, SLA, _request("b2b", 90)).backordered
    unlimited = allocation.allocate(ledger_engine, SLA, _request("web", 90))
    assert len(unlimited.shipments) == 3
    allocation.release_reservations(
        ledger_engine, "o-web-90", [s.shipment_id for s in unlimited.shipments]
    )

    assert len(allocation.allocate(ledger_engine, SLA, _request("b2b", 60)).shipments) == 2
    assert_ledger_balances(ledger_engine)


def test_the_checkout_of_a_one_shipment_channel_quotes_no_divided_option(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300})
    _channels(ledger_engine, b2b=1, web=None)
    cart = [OrderLine(line_no=1, sku="TEE", quantity=678)]

    limited = checkout.check_in_database(ledger_engine, "b2b", cart, HERE, NOW).answer
    unlimited = checkout.check_in_database(ledger_engine, "web", cart, HERE, NOW).answer

    assert limited.options == []
    assert unlimited.options and all(len(o.shipments) == 2 for o in unlimited.options)
    whole = [OrderLine(line_no=1, sku="TEE", quantity=300)]
    quoted = checkout.check_in_database(ledger_engine, "b2b", whole, HERE, NOW).answer
    assert quoted.options and all(len(o.shipments) == 1 for o in quoted.options)


def test_the_cache_quotes_a_limited_channels_carts_as_the_database_does(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 400, "WH-B": 300})
    _channels(ledger_engine, b2b=1, two=2, web=None)
    cache = AvailabilityCache(ledger_engine)
    cache.load()

    for channel in ("b2b", "two", "web"):
        for quantity in (10, 678):
            cart = [OrderLine(line_no=1, sku="TEE", quantity=quantity)]
            cached = checkout.answer_from_cache(cache, channel, cart, HERE, NOW)
            database = checkout.check_in_database(ledger_engine, channel, cart, HERE, NOW).answer
            assert cached is not None
            assert cached.model_dump() == database.model_dump(), (channel, quantity)
            divided = any(len(o.shipments) > 1 for o in cached.options)
            assert divided == (quantity == 678 and channel != "b2b"), (channel, quantity)


def test_the_sweep_skips_an_order_its_channels_limit_cannot_serve(ledger_engine: Engine) -> None:
    _network(ledger_engine, {"W1": {}, "W2": {}})
    _channels(ledger_engine, b2b=1, web=None)
    limited = _backordered(ledger_engine, "big", [("TEE", 8)], priority=9, channel="b2b")
    unlimited = _backordered(ledger_engine, "big", [("TEE", 8)], priority=1, channel="web")
    _receive(ledger_engine, "W1", "TEE", 5)  # 8 only from both nodes
    _receive(ledger_engine, "W2", "TEE", 5)

    picked = [r.order_id for r in orders_to_retry(ledger_engine, 50, DAY)]

    assert picked == [unlimited] and limited not in picked


def test_a_one_shipment_channel_is_offered_no_preorder_from_two_nodes(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"WH-A": 0, "WH-B": 0}, skus=("TEE", "MUG"))
    specs = [
        ChannelSpec(channel=name, name=name, channel_type=OrderType.B2B, allow_preorders=True,
                    max_shipments_per_order=limit)
        for name, limit in (("b2b", 1), ("web", None))
    ]  # fmt: skip
    with transaction(ledger_engine) as session:
        apply_channels(session, specs, "test")
    lines = [  # the tees come to WH-A, the mugs to WH-B
        SimpleNamespace(
            event_id=f"PO-{sku}", action="upsert", kind="purchase_order", reference=f"PO-{sku}",
            line=1, node_id=node_id, sku=sku, quantity=10, expected_date=DUE, from_node_id=None,
        )
        for sku, node_id in (("TEE", "WH-A"), ("MUG", "WH-B"))
    ]  # fmt: skip
    incoming.push_incoming(ledger_engine, "erp", lines)
    cart = [
        OrderLine(line_no=1, sku="TEE", quantity=2),
        OrderLine(line_no=2, sku="MUG", quantity=2),
    ]

    limited = checkout.check_in_database(ledger_engine, "b2b", cart, HERE, PREORDER_NOW).answer
    unlimited = checkout.check_in_database(ledger_engine, "web", cart, HERE, PREORDER_NOW).answer

    assert limited.options == []
    (preorder,) = unlimited.options
    assert preorder.code == DeliveryOptionCode.PREORDER and len(preorder.shipments) == 2
