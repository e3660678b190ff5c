"""Reading positions for the availability math in domain.availability."""

from collections.abc import Iterable

from sqlalchemy import select
from sqlmodel import Session, col

from domain.availability import ChannelPoolRule, PositionFigures
from ledger.tables import ChannelPool, Node, StockPosition

_FIELDS = ("node_id", "node_type", "sku", "on_hand", "reserved", "held", "safety_stock")


_FIELDS = ("node_id", "node_type", "sku", "on_hand", "reserved", "held", "safety_stock")


def positions_for(
    session: Session, skus: Iterable[str], node_ids: Iterable[str] | None = None
) -> list[PositionFigures]:
    """Positions of these SKUs at active nodes, as plain figures (one query, no ORM objects)."""
    query = (
        select(
            StockPosition.node_id,
            Node.node_type,
            StockPosition.sku,
            StockPosition.on_hand,
            StockPosition.reserved,
            StockPosition.held,
            StockPosition.safety_stock,
        )
        .join(Node, col(Node.node_id) == col(StockPosition.node_id))
        .where(col(StockPosition.sku).in_(list(skus)), col(Node.active).is_(True))
        .order_by(col(StockPosition.sku), col(StockPosition.node_id))
    )
    if node_ids is not None:
        query = query.where(col(StockPosition.node_id).in_(list(node_ids)))
    return [
        PositionFigures(**dict(zip(_FIELDS, row, strict=True))) for row in session.execute(query)
    ]


def channel_pool(session: Session, channel: str) -> ChannelPoolRule | None:
    row = session.get(ChannelPool, channel)
    return pool_rule(row) if row is not None else None


def pool_rule(row: ChannelPool) -> ChannelPoolRule:
    return ChannelPoolRule(
        channel=row.channel,
        node_types=row.node_types,
        node_ids=row.node_ids,
        share_by_node_type=row.share_by_node_type or {},
        cap_by_node_type=row.cap_by_node_type or {},
    )
