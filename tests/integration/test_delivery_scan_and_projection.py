"""A carrier's delivery scan recorded in the read model, and the order's workflow projecting its
state after it, on real SQLite and PostgreSQL (chaos: "every delivered scan in the read model").

The API records a scan in the read model once that model shows the order closed; the workflow
may still project after that (its own last publish, the final settling loop, or a workflow task
retried after a worker died re-running its projection at a higher version). That projection does
not know the scan: it must not un-record it."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event, text

from domain.orders import NodeEventType, OrderState, OrderStatus, Shipment, ShipmentStatus
from ledger import orders_view
from ledger.db import transaction
from services.callbacks import record_after_close
from tests.support.orders_api import ledger_order

ORDER_ID = "order-web-lost-scan"
S1, S2 = f"{ORDER_ID}-S1", f"{ORDER_ID}-S2"


def _document(
    version: int,
    run_id: str = "run-a",
    status: OrderStatus = OrderStatus.COMPLETED,
    shipment_statuses: tuple[ShipmentStatus, ShipmentStatus] = (ShipmentStatus.SHIPPED,) * 2,
    tracking: tuple[str, str] = ("TRK-1", "TRK-2"),
) -> dict:
    order = ledger_order("lost-scan", ["SKU-1", "SKU-2"], datetime(2026, 12, 1, 9, tzinfo=UTC))
    shipments = [
        Shipment(
            shipment_id=f"{ORDER_ID}-S{i}",
            node_id=f"N{i}",
            node_type="warehouse",
            lines=[order.lines[i - 1]],
            status=shipment_statuses[i - 1],
            tracking_number=tracking[i - 1],
        )
        for i in (1, 2)
    ]
    state = OrderState(order=order, status=status, version=version, shipments=shipments)
    return state.model_dump(mode="json") | {orders_view.RUN_ID: run_id}


def _project(engine: Engine, document: dict) -> bool:
    with transaction(engine) as session:
        return orders_view.project(session, document)


def _scan(engine: Engine, shipment_id: str) -> bool:
    """The carrier callback's path for an order the read model shows closed."""
    return record_after_close(engine, ORDER_ID, shipment_id, "ups", NodeEventType.DELIVERED)


def _stored(engine: Engine) -> OrderState:
    with transaction(engine) as session:
        state = orders_view.get_order(session, ORDER_ID)
    assert state is not None
    return state


def _delivered(state: OrderState) -> dict[str, bool]:
    return {
        s.shipment_id: s.status == ShipmentStatus.DELIVERED and s.delivered_at is not None
        for s in state.shipments
    }


def test_a_delivery_scan_survives_a_later_projection_of_the_order(ledger_engine: Engine) -> None:
    _project(ledger_engine, _document(9000))
    assert _scan(ledger_engine, S1)

    # The workflow's last publish (or its retry after a worker died) lands after the scan.
    later = _project(ledger_engine, _document(12000))

    state = _stored(ledger_engine)
    assert later and state.version == 12000
    assert _delivered(state) == {S1: True, S2: False}
    assert [e.event for e in state.timeline].count("delivered") == 1


def test_every_later_projection_keeps_the_scan_and_the_workflows_own_deliveries(
    ledger_engine: Engine,
) -> None:
    _project(ledger_engine, _document(9000))
    _scan(ledger_engine, S1)
    _project(ledger_engine, _document(12000))

    # The workflow took S2's scan itself, and projects again: still without S1's.
    own = _document(15000, shipment_statuses=(ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED))
    own["shipments"][1]["delivered_at"] = "2026-12-03T10:00:00Z"
    _project(ledger_engine, own)
    late_retry = _project(ledger_engine, _document(12000))

    state = _stored(ledger_engine)
    assert not late_retry and state.version == 15000
    assert _delivered(state) == {S1: True, S2: True}
    assert str(state.shipments[1].delivered_at) == "2026-12-03 10:00:00+00:00"


def test_a_scan_resent_after_a_later_projection_is_recorded_once(ledger_engine: Engine) -> None:
    _project(ledger_engine, _document(9000))
    _scan(ledger_engine, S1)
    first = _stored(ledger_engine).shipments[0].delivered_at
    _project(ledger_engine, _document(12000))
    _scan(ledger_engine, S1)

    state = _stored(ledger_engine)
    assert state.shipments[0].delivered_at == first
    assert [e.event for e in state.timeline].count("delivered") == 1


def test_another_runs_projection_keeps_a_scan_of_the_parcel_it_still_shows_shipped(
    ledger_engine: Engine,
) -> None:
    _project(ledger_engine, _document(9000))
    _scan(ledger_engine, S1)
    _scan(ledger_engine, S2)

    # A reset's run counts versions from 1 again: S1 is the same parcel, S2 was labelled anew.
    reset = _document(
        3000,
        run_id="run-b",
        status=OrderStatus.IN_FULFILLMENT,
        shipment_statuses=(ShipmentStatus.SHIPPED, ShipmentStatus.LABELLED),
        tracking=("TRK-1", "TRK-9"),
    )
    assert _project(ledger_engine, reset)

    state = _stored(ledger_engine)
    assert (state.version, state.status) == (3000, OrderStatus.IN_FULFILLMENT)
    assert _delivered(state) == {S1: True, S2: False}
    assert state.shipments[1].status == ShipmentStatus.LABELLED


ON_POSTGRES = pytest.mark.parametrize(
    "ledger_engine", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def _wait_until_a_statement_waits_on_a_lock(engine: Engine, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text("select count(*) from pg_stat_activity where wait_event_type = 'Lock'")
            ).scalar_one()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the projection never waited on the scan's row lock")


@ON_POSTGRES
def test_a_scan_and_a_projection_at_the_same_moment_both_land(ledger_engine: Engine) -> None:
    """The scan holds the order's row (read, changed, not yet committed) while the projection
    runs its update: the projection waits for the lock, then keeps the scan."""
    _project(ledger_engine, _document(9000))
    read_the_row = threading.Event()
    projection_sent = threading.Event()

    def after(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "FOR UPDATE" in statement and not read_the_row.is_set():
            read_the_row.set()
            with suppress(TimeoutError):
                projection_sent.wait(timeout=2)  # the projection is blocked on our lock

    event.listen(ledger_engine, "after_cursor_execute", after)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            scan = pool.submit(_scan, ledger_engine, S1)
            assert read_the_row.wait(timeout=5)
            projection = pool.submit(_project, ledger_engine, _document(12000))
            _wait_until_a_statement_waits_on_a_lock(ledger_engine)
            projection_sent.set()
            assert scan.result() and projection.result()
    finally:
        event.remove(ledger_engine, "after_cursor_execute", after)

    state = _stored(ledger_engine)
    assert state.version == 12000
    assert _delivered(state) == {S1: True, S2: False}


def test_a_projection_without_a_run_id_keeps_the_scan_too(ledger_engine: Engine) -> None:
    without_run = _document(9000)
    del without_run[orders_view.RUN_ID]
    _project(ledger_engine, without_run)
    _scan(ledger_engine, S1)

    later = _document(12000)
    del later[orders_view.RUN_ID]
    assert _project(ledger_engine, later)
    assert not _project(ledger_engine, without_run)

    assert _delivered(_stored(ledger_engine)) == {S1: True, S2: False}


def test_a_scan_the_read_model_shows_from_a_workflow_task_that_never_completed_survives_its_retry(
    ledger_engine: Engine,
) -> None:
    """Chaos seed 11: a worker took the scan's first send (an update), projected S1 DELIVERED
    and died before its workflow task completed; the API answered 503, the carrier sent the
    scan again, the read model already showed it delivered. The task's retry never saw the
    update and projects S1 SHIPPED at a higher version."""
    attempt = _document(66000, shipment_statuses=(ShipmentStatus.DELIVERED, ShipmentStatus.SHIPPED))
    attempt["shipments"][0]["delivered_at"] = "2026-12-01T23:58:35Z"
    _project(ledger_engine, attempt)
    assert _scan(ledger_engine, S1)

    retry = _project(ledger_engine, _document(72000))

    state = _stored(ledger_engine)
    assert retry and state.version == 72000
    assert _delivered(state) == {S1: True, S2: False}
    assert str(state.shipments[0].delivered_at) == "2026-12-01 23:58:35+00:00"
    assert [e.event for e in state.timeline].count("delivered") == 1
