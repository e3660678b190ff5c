"""Concurrency on real SQLite and PostgreSQL: many buyers, few units, nothing oversold; receipts
racing orders, holds and feeds: nothing received twice, counters equal to what movements rebuild."""

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import Engine
from sqlmodel import select

from activities.ledger import LedgerActivities
from contracts.activities import AllocateInput
from domain.geo import GeoPoint
from domain.orders import DeliveryMethod, OrderLine
from domain.sla import default_sla_policy
from ledger import holds, stock
from ledger.audit import ledger_imbalances, reconcile
from ledger.db import transaction
from ledger.errors import InsufficientStock
from ledger.feeds import DeltaLine, apply_deltas
from ledger.tables import IncomingLine, StockPosition
from services import incoming
from services.feeds import FeedRefused
from tests.support.ledger_fixtures import position, seed

NETWORK = {"N1": 20, "N2": 20, "N3": 10}  # 50 units of one SKU over 3 nodes
BUYERS = 200


def _allocate(ledger: LedgerActivities, order_id: str):
    return ledger.allocate_stock(
        AllocateInput(
            order_id=order_id,
            lines=[OrderLine(line_no=1, sku="TEE", quantity=1)],
            destination=GeoPoint(lat=0, lon=0),
            delivery_method=DeliveryMethod.HOME,
        )
    )


def test_200_concurrent_orders_reserve_exactly_the_50_units_there_are(ledger_engine) -> None:
    seed(ledger_engine, NETWORK)
    ledger = LedgerActivities(ledger_engine, default_sla_policy())

    def buy(i: int) -> str:
        try:
            return "reserved" if _allocate(ledger, f"O{i}").shipments else "backordered"
        except InsufficientStock:
            return "retry"  # Temporal would retry the activity; it changed nothing

    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(buy, range(BUYERS)))

    assert outcomes.count("reserved") == 50
    assert outcomes.count("backordered") + outcomes.count("retry") == BUYERS - 50
    assert sum(position(ledger_engine, n)[1] for n in NETWORK) == 50
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []


def test_200_concurrent_checkout_holds_hold_exactly_the_50_units_there_are(ledger_engine) -> None:
    seed(ledger_engine, NETWORK)
    expires = datetime.now(UTC) + timedelta(minutes=10)

    def hold(i: int) -> bool:
        node = list(NETWORK)[i % 3]
        try:
            with transaction(ledger_engine) as session:
                line = holds.HoldRequestLine(1, node, "TEE", 1)
                holds.place_hold(session, f"H{i}", "web", [line], expires)
            return True
        except InsufficientStock:
            return False

    with ThreadPoolExecutor(max_workers=32) as pool:
        won = sum(pool.map(hold, range(BUYERS)))

    assert won == 50
    assert [position(ledger_engine, n)[2] for n in NETWORK] == [20, 20, 10]
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []


def test_mixed_holds_orders_cancels_expiries_and_feeds_rebuild_from_the_ledger(
    ledger_engine,
) -> None:
    seed(ledger_engine, NETWORK)
    ledger = LedgerActivities(ledger_engine, default_sla_policy())
    now = datetime.now(UTC)

    def act(i: int) -> None:
        rng = random.Random(i)
        node = list(NETWORK)[i % 3]
        choice = i % 6
        try:
            if choice == 0:
                _allocate(ledger, f"O{i}")
            elif choice == 1:
                _allocate(ledger, f"O{i}")
                with transaction(ledger_engine) as session:
                    stock.release(session, f"O{i}")  # cancelled
            elif choice == 2:
                expiry = now - timedelta(seconds=1) if rng.random() < 0.5 else now + timedelta(1)
                with transaction(ledger_engine) as session:
                    line = holds.HoldRequestLine(1, node, "TEE", 1)
                    holds.place_hold(session, f"H{i}", "web", [line], expiry)
            elif choice == 3:
                with transaction(ledger_engine) as session:
                    holds.expire_holds(session, datetime.now(UTC))
            elif choice == 4:
                line = DeltaLine(f"d{i}", node, "TEE", rng.choice([-1, 1, 2]), now)
                with transaction(ledger_engine) as session:
                    apply_deltas(session, "erp", [line])
            else:
                with transaction(ledger_engine) as session:
                    holds.release_hold(session, f"H{i - 3}")
        except InsufficientStock:
            pass

    with ThreadPoolExecutor(max_workers=24) as pool:
        list(pool.map(act, range(300)))

    with transaction(ledger_engine) as session:
        assert reconcile(session) == []
        assert ledger_imbalances(session) == []
    for node in NETWORK:
        on_hand, reserved, held = position(ledger_engine, node)
        assert reserved + held <= on_hand


# --- incoming stock: receipts racing each other, deltas, orders and holds ---


def _incoming_line(reference: str, node: str, quantity: int, event_id: str) -> SimpleNamespace:
    return SimpleNamespace(
        event_id=event_id, action="upsert", kind="purchase_order", reference=reference, line=1,
        node_id=node, sku="TEE", quantity=quantity, expected_date=datetime.now(UTC).date(), from_node_id=None,
    )  # fmt: skip


def _receipt(reference: str, quantity: int, event_id: str) -> SimpleNamespace:
    return SimpleNamespace(
        event_id=event_id, kind="purchase_order", reference=reference, line=1,
        quantity=quantity, received_at=datetime.now(UTC),
    )  # fmt: skip


def _incoming_state(engine: Engine) -> tuple[list[tuple[str, int, int, int, int]], int]:
    """Per node (node, on hand, reserved, held, incoming), and the units received on lines."""
    with transaction(engine) as session:
        positions = [
            (p.node_id, p.on_hand, p.reserved, p.held, p.incoming)
            for p in session.exec(select(StockPosition).order_by(StockPosition.node_id))
        ]
        received = sum(line.received for line in session.exec(select(IncomingLine)))
    return positions, received


def test_100_concurrent_receipts_of_one_line_receive_exactly_its_quantity(ledger_engine) -> None:
    seed(ledger_engine, {"N1": 0})
    incoming.push_incoming(ledger_engine, "erp", [_incoming_line("PO-1", "N1", 30, "e1")])

    def receive(i: int) -> bool:
        try:
            incoming.push_receipts(ledger_engine, "wms", [_receipt("PO-1", 1, f"r{i}")])
            return True
        except FeedRefused:
            return False  # over-receipt: the line had nothing open left

    with ThreadPoolExecutor(max_workers=32) as pool:
        accepted = sum(pool.map(receive, range(100)))

    assert accepted == 30
    assert _incoming_state(ledger_engine) == ([("N1", 30, 0, 0, 0)], 30)
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []


def test_receipts_incoming_changes_deltas_orders_and_holds_racing_oversell_nothing(
    ledger_engine,
) -> None:
    seed(ledger_engine, NETWORK)
    ledger = LedgerActivities(ledger_engine, default_sla_policy())
    nodes = list(NETWORK)
    incoming.push_incoming(
        ledger_engine,
        "erp",
        [_incoming_line(f"PO-{n}", n, 15, f"e-{n}") for n in nodes],
    )
    now = datetime.now(UTC)

    def act(i: int) -> None:
        rng = random.Random(i)
        node = nodes[i % 3]
        choice = i % 6
        try:
            if choice == 0:
                _allocate(ledger, f"O{i}")
            elif choice == 1:
                incoming.push_receipts(
                    ledger_engine, "wms", [_receipt(f"PO-{node}", rng.choice([1, 2]), f"r{i}")]
                )
            elif choice == 2:
                with transaction(ledger_engine) as session:
                    line = holds.HoldRequestLine(1, node, "TEE", 1)
                    holds.place_hold(session, f"H{i}", "web", [line], now + timedelta(1))
            elif choice == 3:
                line = DeltaLine(f"d{i}", node, "TEE", rng.choice([-1, 1]), now)
                with transaction(ledger_engine) as session:
                    apply_deltas(session, "erp", [line])
            elif choice == 4:  # the ERP raises the order: more incoming
                more = _incoming_line(f"PO-{node}", node, 15 + rng.randint(0, 5), f"u{i}")
                incoming.push_incoming(ledger_engine, "erp", [more])
            else:
                _allocate(ledger, f"O{i}")
                with transaction(ledger_engine) as session:
                    stock.release(session, f"O{i}")  # cancelled
        except (InsufficientStock, FeedRefused):
            pass  # refused as a whole: it changed nothing

    with ThreadPoolExecutor(max_workers=24) as pool:
        list(pool.map(act, range(300)))

    with transaction(ledger_engine) as session:
        assert reconcile(session) == []
        assert ledger_imbalances(session) == []
    positions, received = _incoming_state(ledger_engine)
    assert received > 0
    for node, on_hand, reserved, held, coming in positions:
        assert reserved + held <= on_hand, node
        assert coming >= 0, node
