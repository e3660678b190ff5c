"""Reading positions for the availability math in domain.availability."""

from collections.abc import Iterable

from sqlalchemy import select, tuple_
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


def lock_positions(session: Session, keys: Iterable[tuple[str, str]]) -> None:
    """PostgreSQL: lock these (node, SKU) positions for the rest of the transaction, in the
    (node, SKU) order every writer takes them in, so figures read next stay true until commit.
    A check that the conditional UPDATE does not make (a channel's pool share) is otherwise
    read under READ COMMITTED, and two transactions both pass it. SQLite has one writer."""
    wanted = sorted(set(keys))
    if not wanted or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        select(StockPosition.node_id)
        .where(tuple_(col(StockPosition.node_id), col(StockPosition.sku)).in_(wanted))
        .order_by(col(StockPosition.node_id), col(StockPosition.sku))
        .with_for_update()
    ).all()


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
