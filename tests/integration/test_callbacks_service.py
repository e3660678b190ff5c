"""services.callbacks on SQLite and PostgreSQL: what a callback names, as the read model knows it,
and the events of an order whose workflow has closed, kept in the read model (audit M2, M9)."""

from sqlalchemy import Engine

from domain.orders import (
    NodeEventType,
    OrderState,
    OrderStatus,
    Shipment,
    ShipmentStatus,
)
from ledger import orders_view
from ledger.db import transaction
from services.callbacks import record_after_close, shipment_ref
from tests.support.orders_api import ledger_order

ORDER_ID = "order-web-late-1"
SHIPMENT_ID = f"{ORDER_ID}-S1"


def _completed_order(engine: Engine) -> None:
    order = ledger_order("late-1", ["TEE"])
    shipment = Shipment(
        shipment_id=SHIPMENT_ID,
        node_id="WH-1",
        node_type="warehouse",
        lines=order.lines,
        status=ShipmentStatus.SHIPPED,
        tracking_number="1Z1",
    )
    state = OrderState(order=order, status=OrderStatus.COMPLETED, version=9, shipments=[shipment])
    with transaction(engine) as session:
        orders_view.project(session, state.model_dump(mode="json"))


def _state(engine: Engine) -> OrderState:
    with transaction(engine) as session:
        state = orders_view.get_order(session, ORDER_ID)
    assert state is not None
    return state


def test_a_callback_names_the_order_its_shipment_and_their_statuses(ledger_engine) -> None:
    _completed_order(ledger_engine)

    with transaction(ledger_engine) as session:
        known = shipment_ref(session, ORDER_ID, SHIPMENT_ID)
        unknown_shipment = shipment_ref(session, ORDER_ID, f"{ORDER_ID}-S9")
        unknown_order = shipment_ref(session, "order-web-none", SHIPMENT_ID)

    assert known is not None and known.node_id == "WH-1"
    assert known.order_status == OrderStatus.COMPLETED
    assert known.already_taken(NodeEventType.PICKED) and not known.already_taken(
        NodeEventType.DELIVERED
    )
    assert unknown_shipment is not None and unknown_shipment.node_id is None
    assert unknown_order is None


def test_a_late_event_is_kept_once_on_the_timeline_even_with_a_nul_byte(ledger_engine) -> None:
    _completed_order(ledger_engine)

    for _ in range(2):  # the partner resends it
        assert record_after_close(
            ledger_engine, ORDER_ID, SHIPMENT_ID, "WH-1", NodeEventType.REJECTED, "dam\x00aged"
        )

    state = _state(ledger_engine)
    [entry] = [e for e in state.timeline if e.event == "late_event"]
    assert "rejected from WH-1" in entry.detail and "damaged" in entry.detail
    assert state.status == OrderStatus.COMPLETED
    assert state.shipments[0].status == ShipmentStatus.SHIPPED


def test_a_late_delivery_marks_the_shipment_delivered(ledger_engine) -> None:
    _completed_order(ledger_engine)

    assert record_after_close(ledger_engine, ORDER_ID, SHIPMENT_ID, "WH-1", NodeEventType.DELIVERED)
    assert not record_after_close(
        ledger_engine, ORDER_ID, f"{ORDER_ID}-S9", "WH-1", NodeEventType.SHIPPED
    )

    assert _state(ledger_engine).shipments[0].status == ShipmentStatus.DELIVERED
