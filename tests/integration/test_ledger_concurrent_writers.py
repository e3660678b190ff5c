"""Two writers at the same moment on real PostgreSQL (READ COMMITTED, row locks): a delta batch
and a reservation on the same positions, two carrier scans of one order.

Each thread is held at a barrier right after its first statement of interest, so both are
inside their transactions together, the interleaving the audit describes (M7). A writer that
is blocked by the other's row lock never reaches the barrier; the other then passes it after
a short timeout and finishes first, which is the serialised outcome the fix must give."""

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event

from domain.orders import OrderState, OrderStatus, Shipment, ShipmentStatus
from ledger import orders_view, stock
from ledger.audit import ledger_imbalances
from ledger.db import transaction
from ledger.feeds import DeltaLine, apply_deltas
from ledger.tables import OrderView, StockPosition
from services.orders import record_delivery_scan
from tests.support.ledger_fixtures import position, seed
from tests.support.orders_api import ledger_order

ON_POSTGRES = pytest.mark.parametrize(
    "ledger_engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
BARRIER_SECONDS = 3


@contextmanager
def both_inside_after_first(engine: Engine, matches: Callable[[str], bool]) -> Iterator[None]:
    """Hold each of two threads, after its first statement that `matches`, until the other
    has run its own (or BARRIER_SECONDS passed: the other is waiting on a lock)."""
    barrier = threading.Barrier(2)
    held: set[int] = set()

    def after(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        me = threading.get_ident()
        if me in held or not matches(statement):
            return
        held.add(me)
        with suppress(threading.BrokenBarrierError):  # the other waits on our lock
            barrier.wait(timeout=BARRIER_SECONDS)

    event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", after)


def _updates_a_position(statement: str) -> bool:
    return statement.lstrip().upper().startswith("UPDATE") and (
        StockPosition.__tablename__ in statement
    )


def _reads_an_order(statement: str) -> bool:
    return statement.lstrip().upper().startswith("SELECT") and OrderView.__tablename__ in statement


@ON_POSTGRES
def test_a_delta_batch_and_a_reservation_on_the_same_positions_both_commit(
    ledger_engine: Engine,
) -> None:
    seed(ledger_engine, {"A": 10}, skus=("S1", "S2"))
    now = datetime.now(UTC)
    # The feed lists S2 before S1; the reservation locks S1 then S2.
    batch = [DeltaLine("d2", "A", "S2", 5, now), DeltaLine("d1", "A", "S1", 5, now)]
    order = [
        stock.ReservationRequest("O1", "O1-S1", 1, "A", "S1", 2),
        stock.ReservationRequest("O1", "O1-S1", 2, "A", "S2", 2),
    ]

    def feed() -> int:
        with transaction(ledger_engine) as session:
            return apply_deltas(session, "erp", batch).applied

    def reserve() -> int:
        with transaction(ledger_engine) as session:
            stock.reserve(session, order)
        return 2

    with (
        both_inside_after_first(ledger_engine, _updates_a_position),
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        outcomes = [pool.submit(feed), pool.submit(reserve)]
        results = [f.result() for f in outcomes]  # a deadlock raises here

    assert results == [2, 2]
    assert position(ledger_engine, "A", "S1") == position(ledger_engine, "A", "S2") == (15, 2, 0)
    with transaction(ledger_engine) as session:
        assert ledger_imbalances(session) == []


def _order_with_two_shipped_parcels() -> dict:
    order = ledger_order("scan", ["SKU-1", "SKU-2"])
    shipments = [
        Shipment(
            shipment_id=f"order-web-scan-S{i}",
            node_id=f"N{i}",
            node_type="warehouse",
            lines=[order.lines[i - 1]],
            status=ShipmentStatus.SHIPPED,
            tracking_number=f"TRK-{i}",
        )
        for i in (1, 2)
    ]
    state = OrderState(order=order, status=OrderStatus.COMPLETED, version=9, shipments=shipments)
    return state.model_dump(mode="json")


@ON_POSTGRES
def test_two_delivery_scans_of_one_order_at_once_both_mark_their_shipment_delivered(
    ledger_engine: Engine,
) -> None:
    with transaction(ledger_engine) as session:
        orders_view.project(session, _order_with_two_shipped_parcels())

    def scan(shipment_id: str) -> None:
        record_delivery_scan(ledger_engine, "order-web-scan", shipment_id, "ups")

    with (
        both_inside_after_first(ledger_engine, _reads_an_order),
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        for done in [pool.submit(scan, f"order-web-scan-S{i}") for i in (1, 2)]:
            done.result()

    with transaction(ledger_engine) as session:
        state = orders_view.get_order(session, "order-web-scan")
    assert state is not None
    assert [s.status for s in state.shipments] == [ShipmentStatus.DELIVERED] * 2
    assert sum(1 for e in state.timeline if e.event == "delivered") == 2
