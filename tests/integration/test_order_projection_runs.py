"""The orders read model across workflow runs (audit L8), on real SQLite and PostgreSQL.

A Temporal reset (or a re-run of a closed order's workflow id) starts a new run whose versions
count again from the reset point, or from 1. Within one run a projection only replaces an older
version (activity retries arrive late); a projection from another run than the stored one is
the newer run's, and replaces it whatever its version."""

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from domain.orders import OrderState, OrderStatus, Shipment, ShipmentStatus
from ledger import orders_view
from ledger.db import transaction
from tests.support.orders_api import ledger_order

ORDER_ID = "order-web-reset"


def _document(version: int, run_id: str | None, status: OrderStatus) -> dict:
    order = ledger_order("reset", ["TEE"], datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    shipment = Shipment(
        shipment_id=f"{ORDER_ID}-S1",
        node_id="N1",
        node_type="warehouse",
        lines=order.lines,
        status=ShipmentStatus.SHIPPED,
    )
    state = OrderState(order=order, status=status, version=version, shipments=[shipment])
    document = state.model_dump(mode="json")
    if run_id is not None:
        document[orders_view.RUN_ID] = run_id
    return document


def _project(engine: Engine, document: dict) -> bool:
    with transaction(engine) as session:
        return orders_view.project(session, document)


def _stored(engine: Engine) -> tuple[int, str]:
    with transaction(engine) as session:
        state = orders_view.get_order(session, ORDER_ID)
    assert state is not None
    return state.version, state.status


def test_a_reset_runs_projections_replace_the_old_runs_at_lower_versions(
    ledger_engine: Engine,
) -> None:
    _project(ledger_engine, _document(7, "run-a", OrderStatus.BACKORDERED))

    reset = _project(ledger_engine, _document(3, "run-b", OrderStatus.ALLOCATED))
    following = _project(ledger_engine, _document(4, "run-b", OrderStatus.IN_FULFILLMENT))
    late_retry = _project(ledger_engine, _document(3, "run-b", OrderStatus.ALLOCATED))

    assert (reset, following, late_retry) == (True, True, False)
    assert _stored(ledger_engine) == (4, OrderStatus.IN_FULFILLMENT)


def test_projections_without_a_run_id_keep_the_version_rule(ledger_engine: Engine) -> None:
    _project(ledger_engine, _document(7, None, OrderStatus.BACKORDERED))

    older = _project(ledger_engine, _document(3, None, OrderStatus.ALLOCATED))
    newer_with_run = _project(ledger_engine, _document(8, "run-a", OrderStatus.ALLOCATED))

    assert (older, newer_with_run) == (False, True)
    assert _stored(ledger_engine) == (8, OrderStatus.ALLOCATED)


def test_a_delivery_scan_keeps_the_run_that_projected_the_order(ledger_engine: Engine) -> None:
    _project(ledger_engine, _document(9, "run-a", OrderStatus.COMPLETED))
    with transaction(ledger_engine) as session:
        orders_view.record_delivery(session, ORDER_ID, f"{ORDER_ID}-S1", "ups")

    late_retry = _project(ledger_engine, _document(8, "run-a", OrderStatus.COMPLETED))
    rerun = _project(ledger_engine, _document(1, "run-b", OrderStatus.RECEIVED))

    assert (late_retry, rerun) == (False, True)
    assert _stored(ledger_engine) == (1, OrderStatus.RECEIVED)


def test_a_delivery_scan_after_the_order_closed_dates_the_delivery(ledger_engine: Engine) -> None:
    _project(ledger_engine, _document(9, "run-a", OrderStatus.COMPLETED))
    with transaction(ledger_engine) as session:
        orders_view.record_delivery(session, ORDER_ID, f"{ORDER_ID}-S1", "ups")

    with Session(ledger_engine) as session:
        state = orders_view.get_order(session, ORDER_ID)
    assert state is not None
    [shipment] = state.shipments
    assert shipment.status == "DELIVERED" and shipment.delivered_at is not None
