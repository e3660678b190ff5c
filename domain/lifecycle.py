"""Order status from its shipments, and which support actions each state allows."""

from domain.orders import (
    MOVABLE_SHIPMENT_STATUSES,
    OPEN_SHIPMENT_STATUSES,
    TERMINAL_ORDER_STATUSES,
    OrderStatus,
    Shipment,
    ShipmentStatus,
)


def derive_status(
    current: OrderStatus, shipments: list[Shipment], unallocated_lines: int, backordered: bool
) -> OrderStatus:
    """Status of an order that is neither cancelled nor rejected (those are set explicitly)."""
    if current in TERMINAL_ORDER_STATUSES:
        return current
    live = [s for s in shipments if s.status in OPEN_SHIPMENT_STATUSES | _SHIPPED]
    shipped = [s for s in live if s.status in _SHIPPED]
    if backordered:
        return OrderStatus.BACKORDERED
    if live and len(shipped) == len(live) and unallocated_lines == 0:
        return OrderStatus.COMPLETED
    if shipped:
        return OrderStatus.PARTIALLY_SHIPPED
    if any(s.status in _IN_FULFILLMENT for s in live):
        return OrderStatus.IN_FULFILLMENT
    if any(s.status == ShipmentStatus.RELEASED for s in live):
        return OrderStatus.RELEASED
    if live:
        return OrderStatus.ALLOCATED
    return OrderStatus.RECEIVED


_SHIPPED = frozenset({ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED})
_IN_FULFILLMENT = frozenset(
    {ShipmentStatus.ACCEPTED, ShipmentStatus.PICKED, ShipmentStatus.LABELLED}
)


def cancel_refusal(status: OrderStatus, shipments: list[Shipment]) -> str | None:
    """Why an order cannot be cancelled now, or None if it can."""
    if status in TERMINAL_ORDER_STATUSES:
        return f"order is already {status}"
    if any(s.status in _SHIPPED for s in shipments):
        return "order has shipped; raise a return instead"
    if any(s.status == ShipmentStatus.LABELLED for s in shipments):
        # The label is at the node: the parcel may be leaving as we speak.
        return "a shipment is labelled and being handed to the carrier; raise a return instead"
    return None


def movable_shipments(shipments: list[Shipment], node_id: str | None) -> list[Shipment]:
    """Shipments support may reallocate: not yet picked, optionally at one node."""
    return [
        s
        for s in shipments
        if s.status in MOVABLE_SHIPMENT_STATUSES and (node_id is None or s.node_id == node_id)
    ]
