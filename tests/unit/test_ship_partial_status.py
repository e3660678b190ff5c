"""Ship-partial's status and per-line quantities: what the API shows of a partial order."""

from datetime import UTC, datetime

from domain.geo import GeoPoint
from domain.lifecycle import derive_status, retry_refusal
from domain.orders import (
    Address,
    Customer,
    DeliveryMethod,
    Order,
    OrderLine,
    OrderState,
    OrderStatus,
    OrderType,
    Shipment,
    ShipmentStatus,
)

LINES = [
    OrderLine(line_no=1, sku="TEE-WHT-M", quantity=3),
    OrderLine(line_no=2, sku="CAP-NAVY", quantity=5),
    OrderLine(line_no=3, sku="MUG-BLK", quantity=2),
]


def _order() -> Order:
    return Order(
        order_id="order-b2b-1",
        channel="b2b",
        external_id="1",
        order_type=OrderType.B2B,
        priority=5,
        customer=Customer(customer_id="c1"),
        ship_to=Address(
            name="A",
            line1="1 Main St",
            city="Reno",
            postal_code="89501",
            country="US",
            location=GeoPoint(lat=39.5, lon=-119.8),
        ),
        delivery_method=DeliveryMethod.HOME,
        lines=LINES,
        submitted_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def _shipment(sid: str, status: ShipmentStatus, *lines: OrderLine) -> Shipment:
    return Shipment(
        shipment_id=sid, node_id="WH-RENO", node_type="warehouse", lines=list(lines), status=status
    )


def test_a_backorder_with_shipments_on_their_way_is_partially_backordered() -> None:
    going = [_shipment("S1", ShipmentStatus.RELEASED, LINES[0])]
    status = derive_status(OrderStatus.ALLOCATED, going, 2, backordered=True, says_partial=True)
    assert status == OrderStatus.PARTIALLY_BACKORDERED


def test_a_backorder_with_a_shipped_shipment_stays_partially_backordered() -> None:
    gone = [_shipment("S1", ShipmentStatus.SHIPPED, LINES[0])]
    status = derive_status(OrderStatus.PARTIALLY_SHIPPED, gone, 1, True, says_partial=True)
    assert status == OrderStatus.PARTIALLY_BACKORDERED


def test_a_backorder_with_nothing_on_its_way_is_backordered() -> None:
    moved = [_shipment("S1", ShipmentStatus.REJECTED, LINES[0])]
    status = derive_status(OrderStatus.ALLOCATED, moved, 3, backordered=True, says_partial=True)
    assert status == OrderStatus.BACKORDERED


def test_orders_started_before_the_patch_say_backordered_as_they_did() -> None:
    going = [_shipment("S1", ShipmentStatus.RELEASED, LINES[0])]
    assert derive_status(OrderStatus.ALLOCATED, going, 2, True) == OrderStatus.BACKORDERED


def test_a_partially_backordered_order_can_be_retried() -> None:
    assert retry_refusal(OrderStatus.PARTIALLY_BACKORDERED, retry_in_progress=False) is None


def test_line_progress_counts_units_allocated_shipped_and_backordered_per_line() -> None:
    state = OrderState(
        order=_order(),
        status=OrderStatus.PARTIALLY_BACKORDERED,
        shipments=[
            _shipment("S1", ShipmentStatus.SHIPPED, LINES[0]),
            _shipment(
                "S2", ShipmentStatus.ACCEPTED, OrderLine(line_no=2, sku="CAP-NAVY", quantity=2)
            ),
            # Moved away: its units are neither on their way nor shipped.
            _shipment("S3", ShipmentStatus.REJECTED, LINES[2]),
        ],
    )
    progress = {p.line_no: (p.allocated, p.shipped, p.backordered) for p in state.line_progress}
    assert progress == {1: (0, 3, 0), 2: (2, 0, 3), 3: (0, 0, 2)}
    # In the API's document too (a computed field), and a stored document reads back.
    document = state.model_dump(mode="json")
    assert document["line_progress"][1]["backordered"] == 3
    assert OrderState.model_validate(document).line_progress == state.line_progress
