"""Order status and support-action rules, called directly."""

from domain.lifecycle import cancel_refusal, derive_status, movable_shipments
from domain.orders import OrderLine, OrderStatus, Shipment, ShipmentStatus


def shipment(sid: str, status: ShipmentStatus, node: str = "N1") -> Shipment:
    line = OrderLine(line_no=1, sku="A", quantity=1)
    return Shipment(
        shipment_id=sid, node_id=node, node_type="warehouse", lines=[line], status=status
    )


def test_order_completes_only_when_every_live_shipment_shipped_and_nothing_waits() -> None:
    shipped = [shipment("S1", ShipmentStatus.SHIPPED), shipment("S2", ShipmentStatus.REJECTED)]

    assert derive_status(OrderStatus.IN_FULFILLMENT, shipped, 0, False) == OrderStatus.COMPLETED
    assert derive_status(OrderStatus.IN_FULFILLMENT, shipped, 1, False) == (
        OrderStatus.PARTIALLY_SHIPPED
    )


def test_backorder_wins_over_shipments_in_flight() -> None:
    open_ = [shipment("S1", ShipmentStatus.ACCEPTED)]

    assert derive_status(OrderStatus.ALLOCATED, open_, 1, True) == OrderStatus.BACKORDERED


def test_terminal_statuses_never_change() -> None:
    assert derive_status(OrderStatus.CANCELLED, [], 0, False) == OrderStatus.CANCELLED


def test_cancel_is_refused_after_shipping_and_when_closed() -> None:
    shipped = [shipment("S1", ShipmentStatus.SHIPPED)]

    assert cancel_refusal(OrderStatus.PARTIALLY_SHIPPED, shipped) is not None
    assert "COMPLETED" in (cancel_refusal(OrderStatus.COMPLETED, []) or "")
    assert (
        cancel_refusal(OrderStatus.IN_FULFILLMENT, [shipment("S1", ShipmentStatus.PICKED)]) is None
    )


def test_only_unpicked_shipments_can_move() -> None:
    shipments = [
        shipment("S1", ShipmentStatus.ACCEPTED, "N1"),
        shipment("S2", ShipmentStatus.PICKED, "N2"),
        shipment("S3", ShipmentStatus.RELEASED, "N3"),
    ]

    assert [s.shipment_id for s in movable_shipments(shipments, None)] == ["S1", "S3"]
    assert [s.shipment_id for s in movable_shipments(shipments, "N2")] == []
