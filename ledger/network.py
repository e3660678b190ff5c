"""Node operational status: a node that is down or degraded takes no new orders."""

from enum import StrEnum

from sqlmodel import Session

from domain.errors import DomainError, UnknownReference
from domain.orders import MOVABLE_SHIPMENT_STATUSES, TERMINAL_ORDER_STATUSES
from ledger.orders_view import open_orders
from ledger.tables import Node, NodeStatusChange


class NodeStatus(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


class InvalidStatusChange(DomainError):
    code = "invalid_request"


def reallocates_unpicked(status: NodeStatus, asked: bool | None) -> bool:
    """Whether a status change moves the node's unpicked orders away: when ops ask, else when the
    node goes down (degraded finishes what it has and takes nothing new). Never when it comes up."""
    if status == NodeStatus.UP:
        if asked:
            raise InvalidStatusChange("reallocate_unpicked: a node coming up keeps its orders")
        return False
    return asked if asked is not None else status == NodeStatus.DOWN


def set_node_status(
    session: Session, node_id: str, status: NodeStatus, reason: str, automatic: bool = False
) -> Node:
    node = session.get(Node, node_id)
    if node is None:
        raise UnknownReference("node_id", [node_id])
    node.status = status
    node.status_reason = reason
    node.active = status == NodeStatus.UP
    session.add(node)
    session.add(
        NodeStatusChange(node_id=node_id, status=status, reason=reason, automatic=automatic)
    )
    session.flush()
    return node


def orders_movable_from(session: Session, node_id: str) -> list[str]:
    """Open orders with a shipment at this node that has not been picked yet."""
    return [
        state.order.order_id
        for state in open_orders(session)
        if state.status not in TERMINAL_ORDER_STATUSES
        and any(
            s.node_id == node_id and s.status in MOVABLE_SHIPMENT_STATUSES for s in state.shipments
        )
    ]
