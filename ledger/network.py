"""Node status changes as they are recorded: the node row and its audit trail."""

from sqlmodel import Session

from domain.errors import UnknownReference
from domain.node_status import NodeStatus, takes_new_orders
from domain.orders import MOVABLE_SHIPMENT_STATUSES, TERMINAL_ORDER_STATUSES
from ledger.orders_view import open_orders
from ledger.tables import Node, NodeStatusChange


def set_node_status(
    session: Session, node_id: str, status: NodeStatus, reason: str, automatic: bool = False
) -> NodeStatusChange:
    """Set the node's status and record the change; returns the change (its id is set).
    A deactivated node (`enabled` false) stays out of sourcing whatever its status."""
    node = session.get(Node, node_id)
    if node is None:
        raise UnknownReference("node_id", [node_id])
    node.status = status
    node.status_reason = reason
    node.active = node.enabled and takes_new_orders(status)
    session.add(node)
    change = NodeStatusChange(node_id=node_id, status=status, reason=reason, automatic=automatic)
    session.add(change)
    session.flush()
    return change


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
