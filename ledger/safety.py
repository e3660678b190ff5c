"""Safety stock: a position's own override, else its node's, else its node type's default.
The effective figure is stored on the position so reservations stay a single-row UPDATE."""

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from ledger.positions import record_movements
from ledger.tables import MovementKind, Node, NodeTypePolicy, StockPosition


def effective_safety_stock(session: Session, node_id: str, override: int | None) -> int:
    if override is not None:
        return override
    node = session.get(Node, node_id)
    if node is not None and node.safety_stock is not None:
        return node.safety_stock
    policy = session.get(NodeTypePolicy, node.node_type) if node else None
    return policy.safety_stock if policy else 0


def refresh_safety_stock(session: Session, node_id: str | None = None) -> int:
    """Recompute effective safety stock after a node or node-type default changed; each
    position whose figure changed gets a zero-delta SAFETY movement, so what tails the movements
    (the availability cache) sees its new available-to-promise. Returns how many changed."""
    positions = select(StockPosition.id, StockPosition.safety_stock)
    if node_id is not None:
        positions = positions.where(col(StockPosition.node_id) == node_id)
    before = dict(session.execute(positions).tuples().all())
    node_safety = (
        select(Node.safety_stock)
        .where(col(Node.node_id) == col(StockPosition.node_id))
        .scalar_subquery()
    )
    type_safety = (
        select(NodeTypePolicy.safety_stock)
        .join(Node, col(Node.node_type) == col(NodeTypePolicy.node_type))
        .where(col(Node.node_id) == col(StockPosition.node_id))
        .scalar_subquery()
    )
    statement = update(StockPosition).values(
        safety_stock=func.coalesce(col(StockPosition.safety_override), node_safety, type_safety, 0)
    )
    if node_id is not None:
        statement = statement.where(col(StockPosition.node_id) == node_id)
    session.execute(statement)
    after = select(StockPosition.id, StockPosition.node_id, StockPosition.sku,
                   StockPosition.safety_stock)  # fmt: skip
    if node_id is not None:
        after = after.where(col(StockPosition.node_id) == node_id)
    changed = [
        {
            "node_id": node,
            "sku": sku,
            "kind": MovementKind.SAFETY,
            "cause": f"safety stock {safety}",
        }
        for position_id, node, sku, safety in session.execute(after).tuples()
        if before.get(position_id) != safety
    ]
    record_movements(session, changed)
    return len(changed)
