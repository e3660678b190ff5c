"""The backorder sweep's choice (services.backorders.orders_to_retry) on real SQLite and
PostgreSQL: which backordered orders of the read model are retried when stock arrives, in
which order, and how many per run."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import Engine, update
from sqlmodel import Session, col

from domain.orders import (
    Address,
    Customer,
    DeliveryMethod,
    FulfilmentPolicy,
    Order,
    OrderLine,
    OrderState,
    OrderStatus,
    OrderType,
    Shipment,
    ShipmentStatus,
)
from ledger import holds, orders_view, stock
from ledger.db import transaction
from ledger.tables import ChannelPool, Node, OrderView, Sku, StockMovement
from services import housekeeping, incoming
from services.backorders import orders_to_retry

DAY = timedelta(days=1)
NOW = datetime.now(UTC)
LYON = {"lat": 45.764, "lon": 4.8357}
ADA = Address(
    name="Ada", line1="1 Place Bellecour", city="Lyon", postal_code="69002", country="FR",
    location=LYON,
)  # fmt: skip


def _network(engine: Engine, stock_by_node: dict[str, dict[str, int]], **node: object) -> None:
    """Nodes and their stock, as it was an hour ago: before any order below last looked."""
    skus = sorted({sku for units in stock_by_node.values() for sku in units} | {"TEE", "MUG"})
    with transaction(engine) as session:
        for sku in skus:
            session.add(Sku(sku=sku, name=sku))
        for node_id in stock_by_node:
            spec = {"node_type": "warehouse", **node}
            session.add(
                Node(node_id=node_id, name=node_id, lat=LYON["lat"], lon=LYON["lon"],
                     system_url="http://sim", **spec)
            )  # fmt: skip
        session.flush()
        for node_id, units in stock_by_node.items():
            for sku in skus:
                stock.open_position(session, node_id, sku, units.get(sku, 0))
        session.execute(update(StockMovement).values(at=NOW - timedelta(hours=1)))


def _backordered(
    engine: Engine,
    name: str,
    lines: list[tuple[str, int]],
    priority: int = 5,
    age: timedelta = timedelta(hours=2),
    channel: str = "web",
    shipments: list[Shipment] | None = None,
    excluded_at: dict[str, datetime] | None = None,
    fulfilment_policy: FulfilmentPolicy | None = None,
) -> str:
    """A backordered order in the read model, submitted `age` ago, last projected 30 min ago."""
    order = Order(
        order_id=f"order-{channel}-{name}",
        channel=channel,
        external_id=name,
        order_type=OrderType.DTC,
        priority=priority,
        customer=Customer(customer_id="C-1"),
        ship_to=ADA,
        delivery_method=DeliveryMethod.HOME,
        lines=[OrderLine(line_no=i, sku=s, quantity=q) for i, (s, q) in enumerate(lines, 1)],
        submitted_at=NOW - age,
        fulfilment_policy=fulfilment_policy,
    )
    with Session(engine) as session:  # what its last allocation read: the stock as it is now
        seen = stock.last_movement_id(session)
    state = OrderState(
        order=order,
        status=OrderStatus.BACKORDERED,
        version=1,
        shipments=shipments or [],
        excluded_nodes=sorted(excluded_at or {}),
        excluded_at=excluded_at or {},
        stock_seen_movement=seen,
    )
    with transaction(engine) as session:
        orders_view.project(session, state.model_dump(mode="json"))
        session.execute(
            update(OrderView)
            .where(col(OrderView.order_id) == order.order_id)
            .values(updated_at=NOW - timedelta(minutes=30))
        )
    return order.order_id


def _receive(engine: Engine, node_id: str, sku: str, units: int) -> None:
    with transaction(engine) as session:
        stock.adjust_on_hand(session, node_id, sku, units, cause="goods received")


def _picked(engine: Engine, limit: int = 50, forget: timedelta = DAY) -> list[str]:
    return [r.order_id for r in orders_to_retry(engine, limit, forget)]


def test_orders_are_retried_by_priority_then_age_once_their_stock_arrives(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}})
    older = _backordered(ledger_engine, "older", [("TEE", 1)], age=timedelta(hours=3))
    younger = _backordered(ledger_engine, "younger", [("TEE", 1)], age=timedelta(hours=1))
    urgent = _backordered(ledger_engine, "urgent", [("TEE", 1)], priority=9)
    assert _picked(ledger_engine) == []  # no stock yet: nothing to retry

    _receive(ledger_engine, "W1", "TEE", 10)

    retries = orders_to_retry(ledger_engine, 50, DAY)
    assert [r.order_id for r in retries] == [urgent, older, younger]
    assert {r.reason for r in retries} == {"stock arrived: TEE"}


def test_a_sweep_retries_at_most_its_batch(ledger_engine: Engine) -> None:
    _network(ledger_engine, {"W1": {}})
    orders = [
        _backordered(ledger_engine, f"o{i}", [("TEE", 1)], age=timedelta(hours=10 - i))
        for i in range(5)
    ]
    _receive(ledger_engine, "W1", "TEE", 100)

    assert _picked(ledger_engine, limit=2) == orders[:2]


def test_units_that_arrived_retry_only_as_many_orders_as_they_can_serve(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}})
    big = _backordered(ledger_engine, "big", [("TEE", 2)], priority=7)
    small = [_backordered(ledger_engine, f"s{i}", [("TEE", 1)], age=timedelta(hours=i + 1)) for i in range(3)]  # fmt: skip

    _receive(ledger_engine, "W1", "TEE", 3)

    assert _picked(ledger_engine) == [big, small[2]]  # 2 + 1 units; the oldest small one first


def test_only_orders_whose_every_missing_line_the_network_can_serve_are_retried(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}, "W2": {}})
    _backordered(ledger_engine, "both", [("TEE", 1), ("MUG", 1)], priority=9)
    five = _backordered(ledger_engine, "five", [("TEE", 5)], priority=8)
    one_tee = _backordered(ledger_engine, "one", [("TEE", 1)])
    _backordered(ledger_engine, "two", [("TEE", 2)], age=timedelta(hours=1))

    _receive(ledger_engine, "W1", "TEE", 3)
    _receive(ledger_engine, "W2", "TEE", 3)

    # No MUG anywhere. No node holds 5 TEE, but the network's 6 do (a line is divided between
    # nodes): 3 + 2 for `five`, the last one for the older `one`, none left for `two`.
    assert _picked(ledger_engine) == [five, one_tee]


def test_a_ship_partial_order_is_retried_when_any_line_it_waits_for_can_go(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}})
    partial = _backordered(
        ledger_engine, "partial", [("TEE", 1), ("MUG", 1)],
        fulfilment_policy=FulfilmentPolicy.SHIP_PARTIAL,
    )  # fmt: skip
    _backordered(ledger_engine, "whole", [("TEE", 1), ("MUG", 1)])

    _receive(ledger_engine, "W1", "TEE", 5)  # no MUG yet

    assert _picked(ledger_engine) == [partial]  # `whole` waits for its MUG


def test_lines_already_on_their_way_are_not_looked_for_again(ledger_engine: Engine) -> None:
    _network(ledger_engine, {"W1": {}})
    on_its_way = Shipment(
        shipment_id="S1",
        node_id="W1",
        node_type="warehouse",
        lines=[OrderLine(line_no=1, sku="MUG", quantity=4)],
        status=ShipmentStatus.ACCEPTED,
    )
    order = _backordered(ledger_engine, "rest", [("MUG", 4), ("TEE", 1)], shipments=[on_its_way])

    _receive(ledger_engine, "W1", "TEE", 1)

    assert _picked(ledger_engine) == [order]


def test_stock_that_was_there_when_the_order_last_looked_retries_nothing(
    ledger_engine: Engine,
) -> None:
    # The order saw this stock (an hour-old movement) and could not use it, for a reason this
    # check does not model (a ruleset, a node's capacity): it is not retried again for it.
    _network(ledger_engine, {"W1": {"TEE": 10}})
    _backordered(ledger_engine, "saw-it", [("TEE", 1)])

    assert _picked(ledger_engine) == []


def test_stock_taken_or_counted_out_is_not_an_arrival(ledger_engine: Engine) -> None:
    _network(ledger_engine, {"W1": {"TEE": 10}})
    _backordered(ledger_engine, "waits", [("TEE", 20)])

    _receive(ledger_engine, "W1", "TEE", -5)

    assert _picked(ledger_engine) == []


def test_stock_at_a_node_the_order_excluded_recently_does_not_count(ledger_engine: Engine) -> None:
    _network(ledger_engine, {"W1": {}})
    order = _backordered(
        ledger_engine, "rejected", [("TEE", 1)], excluded_at={"W1": NOW - timedelta(hours=2)}
    )
    _receive(ledger_engine, "W1", "TEE", 5)

    assert _picked(ledger_engine, forget=timedelta(hours=3)) == []  # excluded 2 h ago: still
    assert _picked(ledger_engine, forget=timedelta(hours=1)) == [order]


def test_an_exclusion_that_ran_out_retries_the_order_without_new_stock(
    ledger_engine: Engine,
) -> None:
    # W1 rejected the order 2 h ago; its stock never moved. After 90 min the exclusion ended.
    _network(ledger_engine, {"W1": {"TEE": 5}})
    order = _backordered(
        ledger_engine, "forgiven", [("TEE", 1)], excluded_at={"W1": NOW - timedelta(hours=2)}
    )

    retries = orders_to_retry(ledger_engine, 50, timedelta(minutes=90))

    assert [(r.order_id, r.reason) for r in retries] == [(order, "exclusion expired: W1")]
    assert _picked(ledger_engine, forget=timedelta(hours=3)) == []


def test_only_stock_the_orders_channel_may_sell_counts(ledger_engine: Engine) -> None:
    _network(ledger_engine, {"W1": {}, "W2": {}})
    with transaction(ledger_engine) as session:
        session.add(ChannelPool(channel="b2b", node_ids=["W2"]))
    b2b = _backordered(ledger_engine, "pro", [("TEE", 2)], channel="b2b", priority=9)
    web = _backordered(ledger_engine, "web", [("TEE", 2)])

    _receive(ledger_engine, "W1", "TEE", 2)
    assert _picked(ledger_engine) == [web]

    _receive(ledger_engine, "W2", "TEE", 2)
    assert _picked(ledger_engine) == [b2b, web]


def test_a_purchase_order_retries_its_waiting_orders_when_received_not_when_announced(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}})
    order = _backordered(ledger_engine, "waits-for-po", [("TEE", 3)])
    po = {
        "event_id": "PO-1-1", "action": "upsert", "kind": "purchase_order", "reference": "PO-1",
        "line": 1, "node_id": "W1", "sku": "TEE", "quantity": 3,
        "expected_date": (NOW + DAY).date(), "from_node_id": None,
    }  # fmt: skip
    incoming.push_incoming(ledger_engine, "erp", [SimpleNamespace(**po)])
    assert _picked(ledger_engine) == []  # incoming is not stock to sell now

    receipt = {
        "event_id": "GR-1", "kind": "purchase_order", "reference": "PO-1", "line": 1,
        "quantity": 3, "received_at": NOW,
    }  # fmt: skip
    incoming.push_receipts(ledger_engine, "erp", [SimpleNamespace(**receipt)])

    assert [(r.order_id, r.reason) for r in orders_to_retry(ledger_engine, 50, DAY)] == [
        (order, "stock arrived: TEE")
    ]


def test_a_receipt_dated_before_the_orders_last_look_but_recorded_after_it_retries_the_order(
    ledger_engine: Engine,
) -> None:
    """A WMS posting receipts late, dated when the goods came in (before the order last looked):
    the movement's date is the business time, the order's look is by movement id."""
    _network(ledger_engine, {"W1": {}})
    order = _backordered(ledger_engine, "waits-for-goods", [("TEE", 3)])
    po = {
        "event_id": "PO-2-1", "action": "upsert", "kind": "purchase_order", "reference": "PO-2",
        "line": 1, "node_id": "W1", "sku": "TEE", "quantity": 3,
        "expected_date": NOW.date(), "from_node_id": None,
    }  # fmt: skip
    incoming.push_incoming(ledger_engine, "erp", [SimpleNamespace(**po)])
    receipt = {
        "event_id": "GR-2", "kind": "purchase_order", "reference": "PO-2", "line": 1,
        "quantity": 3, "received_at": NOW - timedelta(minutes=45),  # before the 30-min-old look
    }  # fmt: skip

    incoming.push_receipts(ledger_engine, "wms", [SimpleNamespace(**receipt)])

    assert [(r.order_id, r.reason) for r in orders_to_retry(ledger_engine, 50, DAY)] == [
        (order, "stock arrived: TEE")
    ]


def test_an_order_projected_again_after_its_allocation_still_sees_what_arrived_since(
    ledger_engine: Engine,
) -> None:
    """A ship-partial order's live shipment is picked (a new projection) after stock arrived
    for the line it waits for: the news is measured from its allocation, not its projection."""
    _network(ledger_engine, {"W1": {}})
    order = _backordered(ledger_engine, "picked-meanwhile", [("TEE", 1)])
    _receive(ledger_engine, "W1", "TEE", 2)
    with transaction(ledger_engine) as session:  # projected again: updated now, same allocation
        session.execute(
            update(OrderView).where(col(OrderView.order_id) == order).values(updated_at=NOW)
        )

    assert _picked(ledger_engine) == [order]


def test_an_order_without_a_recorded_read_is_judged_by_its_projection_date(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {}})
    order = _backordered(ledger_engine, "older-document", [("TEE", 1)])
    with transaction(ledger_engine) as session:  # a document projected before issue 14
        view = session.get(OrderView, order)
        assert view is not None
        view.document = {**view.document, "stock_seen_movement": None}
        session.add(view)
    _receive(ledger_engine, "W1", "TEE", 2)

    assert _picked(ledger_engine) == [order]


def test_an_expired_checkout_hold_gives_its_units_to_the_waiting_order(
    ledger_engine: Engine,
) -> None:
    _network(ledger_engine, {"W1": {"TEE": 1}})
    with transaction(ledger_engine) as session:
        line = holds.HoldRequestLine(line_no=1, node_id="W1", sku="TEE", quantity=1)
        holds.place_hold(session, "H-1", "web", [line], expires_at=NOW - timedelta(minutes=1))
        session.execute(update(StockMovement).values(at=NOW - timedelta(hours=1)))
    order = _backordered(ledger_engine, "waits-for-hold", [("TEE", 1)])
    assert _picked(ledger_engine) == []  # the one unit is held at a checkout

    assert housekeeping.expire_due_holds(ledger_engine, batch=100) == 1

    assert _picked(ledger_engine) == [order]
